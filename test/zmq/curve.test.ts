// CURVE between processes over tcp: the TS client and a Python SDK worker, a wrong server key, the gateway's ZMQ
// door with a ZAP allow list, a gateway framework reached over CURVE, and the `keys` command. Real sockets, real
// processes; refusals are read from the logs they write, waited for as they arrive.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildGateway } from '../../src/build-gateway.js';
import { loadConfig } from '../../src/config.js';
import { Deadline } from '../../src/lib/abort.js';
import { createLogger } from '../../src/lib/log.js';
import { readCurveKeyFile, writeCurveKeyFiles, type CurveCertificate, type CurveClientKeys } from '../../src/zmq/curve-keys.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { PYTHON, SDK_DIR, spawnPythonWorker } from '../support/python-worker.js';
import { pythonFor, REPO_ROOT, waitForLog } from '../python-sdk/venv.js';

const observation = () => ({ state: Array.from({ length: 14 }, (_, i) => i / 10), instruction: 'pick' });

/** A temp folder with key pairs made by the same code as the `keys` command; removed after the test. */
async function keyFolder(t: TestContext, ...names: string[]): Promise<{ dir: string; keys: Record<string, Required<CurveCertificate>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'paig-curve-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keys: Record<string, Required<CurveCertificate>> = {};
  for (const name of names) {
    const { keyFile } = await writeCurveKeyFiles(dir, name);
    keys[name] = (await readCurveKeyFile(keyFile, { secret: true })) as Required<CurveCertificate>;
  }
  return { dir, keys };
}

/** A folder of allowed clients: copies of their .pub files. */
async function clientsDir(dir: string, ...names: string[]): Promise<string> {
  const clients = join(dir, 'clients');
  await mkdir(clients, { recursive: true });
  for (const name of names) await writeFile(join(clients, `${name}.pub`), await readFile(join(dir, `${name}.pub`)));
  return clients;
}

const clientKeys = (server: CurveCertificate, own: Required<CurveCertificate>): CurveClientKeys => ({ serverKey: server.publicKey, publicKey: own.publicKey, secretKey: own.secretKey });

/** Log lines captured from a real logger, and a wait for the first that matches (resolved as it is written). */
function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  const log = createLogger({
    level: 'debug',
    write: (text) => {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const w of [...waiters]) if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    },
  });
  const waitFor = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const found = lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`)), timeoutMs);
      waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  return { log, lines, waitFor, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
}

/** Requests that cannot complete the handshake end within their deadline with one of these codes. */
const NO_HANDSHAKE = /^(timeout|unavailable)$/;

describe('CURVE: TypeScript client and the Python SDK worker', () => {
  for (const which of ['debian', 'venv'] as const) {
    test(`(${which}) a listed client key gets inference over an encrypted link; a plain client gets nothing`, async (t) => {
      const { dir, keys } = await keyFolder(t, 'worker', 'gateway');
      const clients = await clientsDir(dir, 'gateway');
      await using worker = await spawnPythonWorker({
        python: await pythonFor(which),
        extraArgs: ['--curve-secret-key-file', join(dir, 'worker.key'), '--curve-clients-dir', clients],
      });
      const client = new WorkerClient({ endpoint: worker.endpoint, curve: clientKeys(keys.worker!, keys.gateway!), timeoutMs: 10_000 });
      t.after(() => client.close());
      const reply = await client.inference(observation());
      assert.equal((reply.result as { instruction: string }).instruction, 'pick');
      // Without CURVE the worker never answers: no plaintext path to it.
      const plain = new WorkerClient({ endpoint: worker.endpoint, timeoutMs: 500 });
      t.after(() => plain.close());
      await assert.rejects(plain.inference(observation()), { code: NO_HANDSHAKE });
      // The container healthcheck works against the CURVE worker with the worker's own key file.
      const { stdout } = await promisify(execFile)(await pythonFor(which), ['-m', 'physical_ai_worker.healthcheck', '--endpoint', worker.endpoint], {
        env: { ...process.env, WORKER_CURVE_SECRET_KEY_FILE: join(dir, 'worker.key'), PYTHONPATH: which === 'debian' ? SDK_DIR : '' },
      });
      assert.equal((JSON.parse(stdout) as { ready: boolean }).ready, true);
    });
  }

  test('a client with the wrong server key: its request ends within the deadline, both sides log it, the worker serves a right-key client', async (t) => {
    const { dir, keys } = await keyFolder(t, 'worker', 'gateway', 'impostor');
    await using worker = await spawnPythonWorker({ extraArgs: ['--curve-secret-key-file', join(dir, 'worker.key')] });
    const capture = captureLog();
    // The gateway's client believes the worker's public key is the impostor's.
    const wrong = new WorkerClient({ endpoint: worker.endpoint, curve: clientKeys(keys.impostor!, keys.gateway!), timeoutMs: 1_500, log: capture.log });
    t.after(() => wrong.close());
    await assert.rejects(wrong.inference(observation()), { code: NO_HANDSHAKE });
    assert.equal(wrong.stats().inFlight, 0);
    const clientSide = await capture.waitFor((l) => l.event === 'zmq.curve_handshake_failed');
    assert.equal(clientSide.serverKey, keys.impostor!.publicKey);
    await waitForLog(worker, (l) => l.event === 'worker.curve_handshake_failed');
    assert.equal(worker.process.exitCode, null);

    const right = new WorkerClient({ endpoint: worker.endpoint, curve: clientKeys(keys.worker!, keys.gateway!), timeoutMs: 10_000 });
    t.after(() => right.close());
    const reply = await right.inference(observation());
    assert.equal((reply.result as { instruction: string }).instruction, 'pick');
    assert.ok(!capture.text().includes(keys.gateway!.secretKey), 'no secret key in the log');
  });

  test('a client key missing from --curve-clients-dir is refused, and the worker logs its public key', async (t) => {
    const { dir, keys } = await keyFolder(t, 'worker', 'gateway', 'stranger');
    const clients = await clientsDir(dir, 'gateway');
    await using worker = await spawnPythonWorker({ extraArgs: ['--curve-secret-key-file', join(dir, 'worker.key'), '--curve-clients-dir', clients] });
    const stranger = new WorkerClient({ endpoint: worker.endpoint, curve: clientKeys(keys.worker!, keys.stranger!), timeoutMs: 1_500 });
    t.after(() => stranger.close());
    await assert.rejects(stranger.inference(observation()), { code: NO_HANDSHAKE });
    const refused = await waitForLog(worker, (l) => l.event === 'worker.curve_refused');
    assert.equal(refused.client_key, keys.stranger!.publicKey);
    assert.ok(!worker.stderr().includes(keys.worker!.secretKey), 'the worker never logs its secret key');
  });
});

/** Writes a gateway config file beside the keys (relative key paths: relative to the file) and loads it. */
async function gatewayFromFile(t: TestContext, dir: string, yaml: string, log: ReturnType<typeof createLogger>) {
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, yaml);
  const config = await loadConfig({ file, overrides: { httpPort: 0 } });
  const gateway = await buildGateway(config, { log });
  t.after(() => gateway.close(500));
  return gateway;
}

describe('CURVE: the gateway', () => {
  test('the ZMQ door with clientKeysDir serves a listed client and refuses an unlisted one, logging its key', async (t) => {
    const { dir, keys } = await keyFolder(t, 'door', 'robot', 'stranger');
    await clientsDir(dir, 'robot');
    const capture = captureLog();
    const gateway = await gatewayFromFile(t, dir, ['zmq:', '  endpoint: tcp://127.0.0.1:*', '  curve:', '    secretKeyFile: door.key', '    clientKeysDir: clients', ''].join('\n'), capture.log);

    const robot = new WorkerClient({ endpoint: gateway.zmqEndpoint, curve: clientKeys(keys.door!, keys.robot!), timeoutMs: 10_000 });
    t.after(() => robot.close());
    const reply = await robot.inference(observation());
    assert.ok(reply.result && typeof reply.result === 'object');

    const stranger = new WorkerClient({ endpoint: gateway.zmqEndpoint, curve: clientKeys(keys.door!, keys.stranger!), timeoutMs: 1_500 });
    t.after(() => stranger.close());
    await assert.rejects(stranger.inference(observation()), { code: NO_HANDSHAKE });
    const refused = await capture.waitFor((l) => l.event === 'zmq.curve_refused');
    assert.equal(refused.clientKey, keys.stranger!.publicKey);
    assert.equal(refused.server, 'ZMQ front door');

    // A client that has the wrong door key never completes the handshake; the door logs the failure.
    const lost = new WorkerClient({ endpoint: gateway.zmqEndpoint, curve: clientKeys(keys.stranger!, keys.robot!), timeoutMs: 1_500 });
    t.after(() => lost.close());
    await assert.rejects(lost.inference(observation()), { code: NO_HANDSHAKE });
    await capture.waitFor((l) => l.event === 'zmq.curve_handshake_failed' && l.server === 'ZMQ front door');

    // The listed client still gets answers, and no secret key reached the log.
    await robot.inference(observation());
    for (const k of Object.values(keys)) assert.ok(!capture.text().includes(k.secretKey), 'no secret key in the log');
    const listening = await capture.waitFor((l) => l.event === 'zmq_front.listening');
    assert.deepEqual(listening.curve, { publicKey: keys.door!.publicKey, clientKeys: 1 });
  });

  test('a framework with curve reaches a CURVE Python worker that accepts only the gateway key', async (t) => {
    const { dir, keys } = await keyFolder(t, 'worker', 'gateway');
    const clients = await clientsDir(dir, 'gateway');
    await using worker = await spawnPythonWorker({ framework: 'remote', extraArgs: ['--curve-secret-key-file', join(dir, 'worker.key'), '--curve-clients-dir', clients] });
    const capture = captureLog();
    const gateway = await gatewayFromFile(
      t,
      dir,
      ['zmq:', '  endpoint: tcp://127.0.0.1:*', 'frameworks:', '  remote:', `    endpoints: ["${worker.endpoint}"]`, '    curve:', '      serverPublicKeyFile: worker.pub', '      secretKeyFile: gateway.key', ''].join('\n'),
      capture.log,
    );
    using deadline = new Deadline(15_000);
    await gateway.router.registry.resolve('remote').pool.whenReady(deadline.signal);
    const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
    t.after(() => client.close());
    const reply = await client.request({ type: 'inference', framework: 'remote', data: observation() });
    assert.equal((reply.result as { instruction: string }).instruction, 'pick');
    assert.ok(!capture.text().includes(keys.gateway!.secretKey));
  });

  test('config: every bad CURVE field is listed at once', async (t) => {
    const { dir } = await keyFolder(t, 'door', 'worker');
    await writeFile(join(dir, 'broken.key'), 'curve\n    public-key = "short"\n');
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      ['zmq:', '  curve:', '    secretKeyFile: door.pub', '    clientKeysDir: nowhere', 'frameworks:', '  a:', '    endpoints: ["tcp://10.0.0.2:5555"]', '    curve:', '      serverPublicKeyFile: broken.key', '  b:', '    endpoints: ["tcp://10.0.0.3:5555"]', '    curve: { serverPublicKeyFile: worker.pub, secretKeyFile: missing.key, extra: 1 }', ''].join('\n'),
    );
    await assert.rejects(loadConfig({ file }), (err: Error & { issues?: Array<{ path: string; message: string }> }) => {
      const paths = (err.issues ?? []).map((i) => i.path).sort();
      assert.deepEqual(paths, ['frameworks.a.curve.secretKeyFile', 'frameworks.a.curve.serverPublicKeyFile', 'frameworks.b.curve.extra', 'frameworks.b.curve.secretKeyFile', 'zmq.curve.clientKeysDir', 'zmq.curve.secretKeyFile']);
      assert.match(err.message, /holds no secret-key/);
      assert.match(err.message, /broken\.key:2: public-key must be a 40-character Z85 key/);
      return true;
    });
  });
});

describe('CURVE: the keys command', () => {
  const cli = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'keys', ...args], { cwd: REPO_ROOT }).then(
      (r) => ({ code: 0, ...r }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );

  test('writes <name>.key (0600) and <name>.pub (0644) that pyzmq reads, and refuses to overwrite without --force', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'paig-keys-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const first = await cli(['robot', '--dir', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await stat(join(dir, 'robot.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'robot.pub'))).mode & 0o777, 0o644);
    const key = await readCurveKeyFile(join(dir, 'robot.key'), { secret: true });
    const pub = await readCurveKeyFile(join(dir, 'robot.pub'));
    assert.equal(pub.publicKey, key.publicKey);
    assert.equal(pub.secretKey, undefined);
    assert.ok(first.stdout.includes(key.publicKey) && !first.stdout.includes(key.secretKey!), 'prints the public key, never the secret');
    // pyzmq's own reader (what the Python SDK uses) reads both files the same way.
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', 'import json, sys, zmq.auth; print(json.dumps([[k and k.decode() for k in zmq.auth.load_certificate(p)] for p in sys.argv[1:]]))', join(dir, 'robot.key'), join(dir, 'robot.pub')]);
    assert.deepEqual(JSON.parse(stdout), [[key.publicKey, key.secretKey], [key.publicKey, null]]);

    const again = await cli(['robot', '--dir', dir]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /exists; pass --force/);
    assert.deepEqual(await readCurveKeyFile(join(dir, 'robot.key'), { secret: true }), key, 'the old key is untouched');

    const forced = await cli(['robot', '--dir', dir, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const replaced = await readCurveKeyFile(join(dir, 'robot.key'), { secret: true });
    assert.notEqual(replaced.publicKey, key.publicKey);
    assert.equal((await stat(join(dir, 'robot.key'))).mode & 0o777, 0o600);
  });
});
