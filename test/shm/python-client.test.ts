// The Python SDK's clients on the one-host fast paths, with real processes: the SDK venv's python drives ZMQClient
// with an ShmArena and DirectClient (test/shm/py_client_driver.py, one JSON command per line), against a real
// gateway and real Python workers. Checked byte for byte (sha256 of what was sent against what the worker saw, and
// of the image echoed back through the reply area): through the gateway, straight to the worker, and under a gateway
// lease; the fall-back to frames when realms differ or the worker refuses at /shm; a stale generation refused; bad
// inputs refused with clear errors; lease refusals (revoked, expired) answered by one new lease; a SIGKILLed Python
// client's folder removed by the TS gateway's janitor and by a Python worker, while a live one is kept.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { sweepRoot } from '../../src/shm/shm-root.js';
import { venvPython } from '../python-sdk/venv.js';
import { freePort } from '../support/endpoints.js';
import { startTestGateway } from '../support/gateway.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const DRIVER = join(HERE, 'py_client_driver.py');
const REPLY = { reply_bytes: 1 << 20 };

function shmRoot(t: TestContext): string {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-pyshm-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function shmWorker(t: TestContext, dir: string | undefined, extra: Partial<Parameters<typeof spawnPythonWorker>[0]> = {}): Promise<PythonWorker> {
  const worker = await spawnPythonWorker({
    pythonPath: [HERE],
    handlers: { digest: 'shm_probe:digest' },
    ...extra,
    extraArgs: [...(dir ? ['--shm-dir', dir] : []), ...(extra.extraArgs ?? [])],
  });
  t.after(() => worker.close());
  return worker;
}

interface Driver {
  child: ChildProcess;
  call(cmd: Record<string, unknown>): Promise<Record<string, any>>;
  kill(): Promise<void>;
}

/** The Python driver on the SDK venv (the pip install, not the source folder). */
async function driver(t: TestContext): Promise<Driver> {
  const python = await venvPython();
  const child = spawn(python, [DRIVER], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PYTHONPATH: '', PYTHONDONTWRITEBYTECODE: '1' } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  });
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(line));
  return {
    child,
    call(cmd) {
      return new Promise((resolve, reject) => {
        const onExit = () => reject(new Error(`driver exited during ${JSON.stringify(cmd)}`));
        child.once('exit', onExit);
        waiting.push((line) => {
          child.off('exit', onExit);
          resolve(JSON.parse(line) as Record<string, any>);
        });
        child.stdin!.write(JSON.stringify(cmd) + '\n');
      });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Every array the worker saw has the bytes we sent; images ≥ 4 KiB were mapped views (or frames when `mapped` is false). */
function checkBytes(r: Record<string, any>, { mapped }: { mapped: boolean }): void {
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  assert.equal(r.worker_shm, mapped, 'the worker read shared memory');
  for (const [path, hash] of Object.entries(r.sent as Record<string, string>)) {
    const seen = r.seen[path];
    assert.equal(seen?.sha256, hash, `${path}: the worker saw our bytes`);
    if (path !== '/data/state') assert.equal(seen.mapped, mapped, `${path}: a view on the mapped slot: ${mapped}`);
  }
  assert.equal(r.seen['/data/state'].mapped, false, 'the 56-byte state stays a frame');
  assert.equal(r.echo, r.sent['/data/images/cam_high'], 'the echoed image came back intact');
  assert.equal(r.action_ok, true, 'the demo action for our state');
}

test('Python client → gateway → Python worker, and straight to the worker, through shared memory: exact bytes, reply area, one slot reused', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000 } } });
  const d = await driver(t);
  for (const [id, endpoint] of [['gw', gateway.zmqEndpoint!], ['w', worker.endpoint]] as const) {
    await d.call({ op: 'client', id, endpoint, shm_dir: dir, arena: REPLY });
    let folder = '';
    for (let seed = 0; seed < 4; seed++) {
      const r = await d.call({ op: 'digest', id, seed, framework: 'lerobot', odd: seed % 2 === 1 });
      checkBytes(r, { mapped: true });
      assert.equal(r.state, 'on', `${id}: negotiated`);
      assert.deepEqual([r.stats.slots, r.stats.free], [1, 1], `${id}: one slot, given back after each request`);
      folder = r.folder;
      assert.ok(existsSync(folder));
    }
    await d.call({ op: 'close', id });
    assert.equal(existsSync(folder), false, `${id}: close removes the client folder`);
  }
});

function secretFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'paig-pyshm-lease-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lerobot.secret');
  writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return file;
}

test('Python DirectClient under a gateway lease, with shared memory: exact bytes; revoked and expired leases refused, one new lease each; the gateway counts the requests', async (t) => {
  const dir = shmRoot(t);
  const secret = secretFile(t);
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  await shmWorker(t, dir, { framework: 'lerobot', endpoint, extraArgs: ['--lease-secret-file', secret] });
  const ttl = 1_500;
  const gateway = await startTestGateway(t, {
    frameworks: { lerobot: { endpoints: [endpoint], timeoutMs: 10_000, direct: { secretFile: secret, leaseTtlMs: ttl, collectIntervalMs: 60_000 } }, demo: { embedded: true } },
    defaultFramework: 'demo',
  });
  const d = await driver(t);
  // renew_before_ms far negative: the client keeps using a lease past its expiry, so the worker's refusal is what
  // makes it take a new one (the path under test); by default it renews 20% of the length before expiry.
  await d.call({ op: 'direct', id: 'd', gateway: gateway.zmqEndpoint, framework: 'lerobot', shm_dir: dir, arena: REPLY, renew_before_ms: -600_000 });
  const first = await d.call({ op: 'digest', id: 'd', seed: 1, odd: true });
  checkBytes(first, { mapped: true });
  assert.equal(first.state, 'on');
  assert.equal(first.leases_obtained, 1);

  await gateway.leases!.revoke('lerobot');
  const second = await d.call({ op: 'digest', id: 'd', seed: 2 });
  checkBytes(second, { mapped: true });
  assert.equal(second.leases_obtained, 2, 'refused as revoked: one new lease');
  assert.notEqual(second.lease_id, first.lease_id);

  await d.call({ op: 'sleep', ms: ttl + 100 });
  const third = await d.call({ op: 'digest', id: 'd', seed: 3 });
  checkBytes(third, { mapped: true });
  assert.equal(third.leases_obtained, 3, 'refused as expired: one new lease');

  // The default margin renews before expiry, without a refusal.
  await d.call({ op: 'direct', id: 'p', gateway: gateway.zmqEndpoint, framework: 'lerobot', shm_dir: dir, arena: REPLY });
  checkBytes(await d.call({ op: 'digest', id: 'p', seed: 4 }), { mapped: true });
  await d.call({ op: 'sleep', ms: ttl * 0.85 });
  const renewed = await d.call({ op: 'digest', id: 'p', seed: 5 });
  checkBytes(renewed, { mapped: true });
  assert.equal(renewed.leases_obtained, 2);

  assert.ok((await gateway.leases!.collect('lerobot')) >= 5, 'the worker reported the direct requests to the gateway');

  // Refusals come back as WorkerError codes.
  await d.call({ op: 'direct', id: 'x', gateway: gateway.zmqEndpoint, framework: 'demo' });
  const noDirect = await d.call({ op: 'digest', id: 'x', seed: 6 });
  assert.equal(noDirect.error.code, 'bad_request');
  assert.match(noDirect.error.message, /no direct path/);
  await d.call({ op: 'client', id: 'bare', endpoint });
  const bare = await d.call({ op: 'digest', id: 'bare', seed: 7 });
  assert.equal(bare.error.code, 'unauthorized', 'straight to the worker without a lease');
  assert.equal(bare.error.path, '/lease');
});

test('fall-back to frames: a worker on another memory (realm) or none; a refusal at /shm turns shared memory off for the connection', async (t) => {
  const dir = shmRoot(t);
  const other = shmRoot(t);
  const d = await driver(t);
  for (const [i, workerDir] of [other, undefined].entries()) {
    const worker = await shmWorker(t, workerDir);
    const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000 } } });
    await d.call({ op: 'client', id: `f${i}`, endpoint: gateway.zmqEndpoint, shm_dir: dir, arena: REPLY });
    const r = await d.call({ op: 'digest', id: `f${i}`, seed: i, framework: 'lerobot', odd: true });
    checkBytes(r, { mapped: false });
    assert.equal(r.state, 'off', `worker shm dir ${workerDir}: frames`);
  }
  const worker = await shmWorker(t, dir);
  await d.call({ op: 'client', id: 'r', endpoint: worker.endpoint, shm_dir: dir, arena: REPLY });
  const on = await d.call({ op: 'digest', id: 'r', seed: 1 });
  checkBytes(on, { mapped: true });
  // The worker stops seeing our folder (as on another host behind a gateway): it refuses at /shm/client.
  rmSync(on.folder, { recursive: true, force: true });
  const off = await d.call({ op: 'digest', id: 'r', seed: 2 });
  checkBytes(off, { mapped: false });
  assert.equal(off.state, 'off');
  assert.deepEqual(off.fallback, { code: 'bad_request', path: '/shm/client' });
  checkBytes(await d.call({ op: 'digest', id: 'r', seed: 3 }), { mapped: false });
});

test('a stale generation is refused; bad inputs get clear errors', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const d = await driver(t);
  const stale = await d.call({ op: 'stale', endpoint: worker.endpoint, shm_dir: dir });
  assert.equal(stale.refused?.code, 'bad_request');
  assert.match(stale.refused.path, /\/shm\/generation$/);
  assert.match(stale.refused.message, /stale descriptor/);
  assert.equal(stale.ok_shm, true, 'the current generation is accepted');
  assert.equal(stale.generation, 2);

  const bad = await d.call({ op: 'bad', shm_dir: dir });
  assert.equal(bad.dtype?.type, 'EncodeError');
  assert.match(bad.dtype.message, /^\/data\/images\/cam: dtype complex64 is not in the protocol's dtype list/);
  assert.equal(bad.too_large?.code, 'too_large');
  assert.match(bad.too_large.message, /max_bytes=262144/);
  assert.equal(bad.options.length, 2);
});

test('SIGKILL of a Python client: the TS gateway\'s janitor and a Python worker remove its folder; a live client with a short lease is kept (it renews)', async (t) => {
  const dir = shmRoot(t);
  for (const janitor of ['gateway', 'python worker'] as const) {
    const d = await driver(t);
    const { folder } = await d.call({ op: 'arena', shm_dir: dir, lease_ms: 300 });
    assert.ok(existsSync(join(folder, 'lease.json')));
    // Three lease lengths later the lease is still fresh: sweeping keeps it.
    await d.call({ op: 'sleep', ms: 900 });
    assert.deepEqual(sweepRoot(dir).removed, [], 'a live client is never swept');
    await d.kill();
    assert.ok(existsSync(folder), 'the killed client left its folder');
    if (janitor === 'gateway') await startTestGateway(t, { sharedMemory: { dir, sweepIntervalMs: 100 } });
    else await shmWorker(t, dir);
    assert.equal(existsSync(folder), false, `${janitor}: the killed client's folder is gone once it started`);
  }
});
