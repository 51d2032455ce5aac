// A framework on a remote Docker engine reached over ssh://, for real: OpenSSH's sshd (run in the foreground with
// its own config, host key and authorized_keys in a temp folder) and ssh-agent with a fresh key.
// 1. Two network namespaces joined by a veth pair stand for two hosts. Host B runs a private dockerd (unix socket
//    only) and sshd, whose sessions get DOCKER_HOST pointing at that engine; the gateway runs in host A (a Node
//    process under `ip netns exec`, SSH_AUTH_SOCK only in its env), names B's engine `ssh://root@B:port` with B's
//    host key pinned, starts the framework's container there and reaches its worker across the veth pair with CURVE.
// 2. Against sshd on 127.0.0.1 whose sessions use another private engine: requests one after another share one ssh
//    session, exec works through it, the host key verified by known_hosts files that ssh-keyscan wrote (hashed and
//    plain `[127.0.0.1]:PORT`), the engine stopped under a kept-alive session is reported on the next request, and
//    the failures (an unknown host, a changed host key, ...) are each one line naming the engine and what to do.
// Everything (sshd, agents, namespaces, engine, temp folders) is removed afterwards, also when the test fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import { engineOptions } from '../../src/docker/engine-url.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import { createLogger } from '../../src/lib/log.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { writeCurveKeyFiles } from '../../src/zmq/curve-keys.js';
import { BASE_IMAGE, ensureDockerAndImage, TEST_IMAGE } from '../support/docker.js';
import { freePort } from '../support/endpoints.js';
import { HostPair } from '../support/host-pair.js';
import { loadImage, run, startEngine, stopEngine, type PrivateEngine } from '../support/private-engine.js';
import { makeKey, startAgent, startSshd, type SshAgent, type Sshd } from '../support/private-sshd.js';

const ROOT = resolve(import.meta.dirname, '../..');

test('a framework on a remote engine over ssh:// in another network namespace, its worker reached over a veth pair with CURVE', { timeout: 300_000 }, async (t) => {
  ensureDockerAndImage();
  const id = randomBytes(3).toString('hex');
  const hosts = new HostPair(id);
  const { nsA, nsB, ipB } = hosts;
  const dir = await mkdtemp('/tmp/pag-ssh-');
  const made: { engine?: PrivateEngine; sshd?: Sshd; agent?: SshAgent } = {};
  t.after(async () => {
    await made.sshd?.stop();
    await made.agent?.stop();
    if (made.engine) assert.deepEqual(await stopEngine(made.engine), [], 'the engine of host B is gone');
    assert.deepEqual(await hosts.remove(), [], 'no namespace or veth of the test is left');
    await rm(dir, { recursive: true, force: true });
  });

  // Two "hosts" joined by a veth pair.
  await hosts.create();

  // Host B: its engine (unix socket only), the test image loaded into it, and sshd whose sessions use that engine.
  made.engine = await startEngine({ dir: join(dir, 'engine'), prefix: HostPair.enter(nsB) });
  await loadImage(made.engine);
  const gatewayKey = await makeKey(join(dir, 'gateway_key'));
  const sshPort = randomInt(2_000, 3_000);
  made.sshd = await startSshd({ dir: join(dir, 'sshd'), address: ipB, ports: [sshPort], authorizedKeys: [gatewayKey], setEnv: { DOCKER_HOST: made.engine.host }, prefix: HostPair.enter(nsB) });
  // Host A: the agent holding the gateway's key.
  made.agent = await startAgent(dir);
  await made.agent.add(join(dir, 'gateway_key'));

  const keys = join(dir, 'keys');
  await run('mkdir', ['-p', keys]);
  await writeCurveKeyFiles(keys, 'worker');
  await writeCurveKeyFiles(keys, 'gateway');
  const port = randomInt(20_000, 30_000);
  const spec: FrameworkSpec = {
    name: 'remote',
    image: TEST_IMAGE,
    networkMode: 'host',
    port,
    engine: `ssh://root@${ipB}:${sshPort}`,
    sshHostKey: made.sshd.hostKey,
    bindHost: ipB,
    containerName: `pag-test-ssh-${id}`,
    env: { WORKER_CURVE_SECRET_KEY_FILE: '/keys/worker.key' },
    mounts: [{ hostPath: keys, containerPath: '/keys', readOnly: true }],
    readyTimeoutMs: 60_000,
    stopTimeoutS: 2,
  };
  const settings = { spec, curve: { serverPublicKeyFile: join(keys, 'worker.pub'), secretKeyFile: join(keys, 'gateway.key') } };
  const out = await run('ip', ['netns', 'exec', nsA, process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/remote-engine-client.ts'), JSON.stringify(settings)], { env: { SSH_AUTH_SOCK: made.agent.socket } });
  const result = JSON.parse(out.split('\n').pop()!) as { start?: number; inference?: number[]; endpoints?: string[]; containers?: string[]; stop?: number; error?: string };
  t.diagnostic(`gateway in ${nsA}: ${JSON.stringify(result)}`);
  assert.equal(result.error, undefined);
  assert.equal(result.start, 200, 'the framework started on the engine reached over ssh');
  assert.deepEqual(result.inference, [200, 200, 200, 200, 200], 'inference crossed the veth pair (CURVE)');
  assert.deepEqual(result.endpoints, [`tcp://${ipB}:${port}`], "the gateway reaches the worker at host B's address");
  assert.ok(result.containers?.some((c) => c.startsWith(`pag-test-ssh-${id}:`)), `the container is listed from the remote engine: ${String(result.containers)}`);
  assert.equal(result.stop, 200);
  // The container is on B's engine, not on the shared one.
  const remote = await made.engine.cli('ps', '-a', '--format', '{{.Names}} {{.Status}}');
  assert.match(remote, new RegExp(`pag-test-ssh-${id} Exited`));
  assert.equal(await run('docker', ['ps', '-aq', '--filter', `name=pag-test-ssh-${id}`]), '', 'nothing reached the shared engine');
});

test('ssh:// on 127.0.0.1: one ssh session for requests in a row; failures are one line naming the engine and what to do', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp('/tmp/pag-ssh-');
  const made: { engine?: PrivateEngine; sshd?: Sshd; agents: SshAgent[]; managers: DockerManager[] } = { agents: [], managers: [] };
  t.after(async () => {
    for (const m of made.managers) await m.close();
    await made.sshd?.stop();
    for (const a of made.agents) await a.stop();
    if (made.engine) assert.deepEqual(await stopEngine(made.engine), [], 'the private engine is gone');
    await rm(dir, { recursive: true, force: true });
  });
  const [port, portNoDocker, closedPort] = [await freePort(), await freePort(), await freePort()];
  const accepted = await makeKey(join(dir, 'accepted_key'));
  await makeKey(join(dir, 'other_key'));
  // Sessions use a private engine; on the second port the forced command runs with no docker CLI on the PATH.
  made.engine = await startEngine({ dir: join(dir, 'engine') });
  made.sshd = await startSshd({
    dir: join(dir, 'sshd'),
    address: '127.0.0.1',
    ports: [port, portNoDocker],
    authorizedKeys: [accepted],
    setEnv: { DOCKER_HOST: made.engine.host },
    forceCommand: { [portNoDocker]: 'PATH=/nonexistent; docker system dial-stdio' },
    ecdsaHostKey: true,
  });
  const agent = async (name: string, key?: string) => {
    const a = await startAgent(dir, name);
    made.agents.push(a);
    if (key) await a.add(join(dir, key));
    return a.socket;
  };
  const withKey = await agent('with-key.sock', 'accepted_key');
  const empty = await agent('empty.sock');
  const otherKey = await agent('other-key.sock', 'other_key');
  type Access = { sshAuthSock: string; sshHostKey?: string; sshKnownHosts?: string };
  // the known_hosts file when a case names none (ssh-keyscan -H writes it below): never the real ~/.ssh
  const hashedFile = join(dir, 'known_hosts.hashed');
  const manager = async (url: string, access: Access) => {
    const m = new DockerManager({ docker: await engineOptions(url, access.sshHostKey || access.sshKnownHosts ? access : { ...access, sshKnownHosts: hashedFile }) });
    made.managers.push(m);
    return m;
  };
  const ping = async (url: string, access: Access) => (await manager(url, access)).ping();
  const url = `ssh://root@127.0.0.1:${port}`;
  const seen: string[] = [];
  const oneLine = (pattern: RegExp) => (err: Error & { code?: string; reason?: string }) => {
    seen.push(err.message);
    assert.equal(err.code, 'unavailable');
    assert.equal(err.reason, 'no_engine');
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  };
  const at = (u: string) => `^engine '${u.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}': `;
  const engineDown = new RegExp(`${at(url)}the docker CLI on root@127\\.0\\.0\\.1 cannot reach its engine \\(.*\\); start dockerd there, or set DOCKER_HOST for ssh sessions$`);

  // Requests one after another reuse one ssh session (kept alive by the agent; a handshake costs far more).
  const good = await manager(url, { sshAuthSock: withKey, sshHostKey: made.sshd.hostKey });
  const version = await made.engine.cli('version', '--format', '{{.Server.Version}}');
  for (let i = 0; i < 5; i++) assert.equal((await good.version()).version, version, 'the private engine answers');
  assert.equal(made.sshd.accepted(), 1, 'five requests, one ssh session');
  // Not pinned: the host key is checked against known_hosts (here temp files, never ~/.ssh), as ssh checks it.
  // What `ssh-keyscan -H` writes (hashed names) verifies the host, and so does its plain `[127.0.0.1]:PORT` line.
  await writeFile(hashedFile, `${await run('ssh-keyscan', ['-H', '-p', String(port), '127.0.0.1'])}\n`);
  assert.match(await readFile(hashedFile, 'utf8'), /^\|1\|\S+ ssh-ed25519 /m, 'ssh-keyscan -H wrote a hashed line');
  await ping(url, { sshAuthSock: withKey, sshKnownHosts: hashedFile });
  const plainFile = join(dir, 'known_hosts.plain');
  await writeFile(plainFile, `# scanned\n${await run('ssh-keyscan', ['-p', String(port), '127.0.0.1'])}\n`);
  assert.match(await readFile(plainFile, 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${port} ssh-ed25519 `, 'm'), 'ssh-keyscan wrote the [host]:port form');
  await ping(url, { sshAuthSock: withKey, sshKnownHosts: plainFile });
  // listed with its ecdsa key only: that type is asked for first (ssh2 would prefer ed25519), as ssh does
  const ecdsaFile = join(dir, 'known_hosts.ecdsa');
  await writeFile(ecdsaFile, `[127.0.0.1]:${port} ${made.sshd.ecdsaHostKey!.split(' ').slice(0, 2).join(' ')}\n`);
  await ping(url, { sshAuthSock: withKey, sshKnownHosts: ecdsaFile });
  assert.equal(made.sshd.accepted(), 4, 'each logged in');
  // exec (a hijacked HTTP connection, as jobs' worker processes use) works through a session too
  await loadImage(made.engine, BASE_IMAGE);
  const box = await good.createContainer({ name: `pag-test-ssh-exec-${randomBytes(3).toString('hex')}`, image: BASE_IMAGE, cmd: ['sleep', '300'] });
  await good.start(box);
  assert.deepEqual(await good.exec(box, ['sh', '-c', 'echo over-ssh; echo err >&2; exit 3']), { exitCode: 3, stdout: 'over-ssh\n', stderr: 'err\n' });
  await good.remove(box);
  // The engine stops while that session is kept: the session ends, and the next request says the engine is down.
  assert.deepEqual(await stopEngine(made.engine), [], 'the private engine is gone');
  delete made.engine;
  await made.sshd.allDisconnected();
  await assert.rejects(good.version(), oneLine(engineDown));

  // no agent at all: refused when the engine's manager is made (the gateway does not start)
  await assert.rejects(engineOptions(url, { sshAuthSock: '' }), /no ssh agent \(SSH_AUTH_SOCK is not set\); start ssh-agent/);
  // an agent without keys, one whose key the host refuses, and a socket where no agent answers
  await assert.rejects(ping(url, { sshAuthSock: empty }), oneLine(new RegExp(`${at(url)}the ssh agent at SSH_AUTH_SOCK=\\S+empty\\.sock holds no key; ssh-add the key root@127\\.0\\.0\\.1 accepts$`)));
  await assert.rejects(ping(url, { sshAuthSock: otherKey }), oneLine(new RegExp(`${at(url)}root@127\\.0\\.0\\.1:${port} refused every key of the ssh agent \\(SHA256:[A-Za-z0-9+/]{43}\\); add one of them to that user's authorized_keys there$`)));
  await assert.rejects(ping(url, { sshAuthSock: join(dir, 'no-agent.sock') }), oneLine(/the ssh agent at SSH_AUTH_SOCK=\S+no-agent\.sock does not answer \(.+\); start ssh-agent/));
  // a host key other than the pinned one
  const wrongKey = `SHA256:${'A'.repeat(43)}`;
  await assert.rejects(ping(url, { sshAuthSock: withKey, sshHostKey: wrongKey }), oneLine(new RegExp(`${at(url)}the host's key is ${made.sshd.hostKey.replace(/[+/]/g, '\\$&')}, not the pinned sshHostKey ${wrongKey}`)));
  // not in known_hosts (an empty file; one that does not exist is the same): refused, with the key it presented
  const loggedIn = made.sshd.accepted();
  const emptyFile = join(dir, 'known_hosts.empty');
  await writeFile(emptyFile, '# nothing yet\n');
  const hostKey = made.sshd.hostKey.replace(/[+/]/g, '\\$&');
  for (const file of [emptyFile, join(dir, 'no-such-known-hosts')]) {
    await assert.rejects(ping(url, { sshAuthSock: withKey, sshKnownHosts: file }), oneLine(new RegExp(`${at(url)}127\\.0\\.0\\.1:${port} is not in known_hosts \\(${file}\\); it presented the ssh-ed25519 key ${hostKey}: .*'ssh-keyscan -H -p ${port} 127\\.0\\.0\\.1 >> ${file}' or pin sshHostKey: "${hostKey}"$`)));
  }
  // listed with another key: the host key changed, the file and line named
  const changedFile = join(dir, 'known_hosts.changed');
  const otherPub = (await readFile(join(dir, 'other_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(changedFile, `# an old key\n[127.0.0.1]:${port} ${otherPub}\n`);
  await assert.rejects(ping(url, { sshAuthSock: withKey, sshKnownHosts: changedFile }), oneLine(new RegExp(`${at(url)}the host key of 127\\.0\\.0\\.1:${port} changed: it presented ssh-ed25519 ${hostKey}, but known_hosts lists ssh-ed25519 SHA256:\\S+ \\(${changedFile}:2\\); `)));
  assert.equal(made.sshd.accepted(), loggedIn, 'no refused host was logged into');
  // no sshd on the port
  const closed = `ssh://root@127.0.0.1:${closedPort}`;
  await assert.rejects(ping(closed, { sshAuthSock: withKey }), oneLine(new RegExp(`${at(closed)}cannot reach sshd at 127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED; is sshd running there`)));
  // logged in (with the pinned host key), but no docker CLI there / a new session to the stopped engine
  const noDocker = `ssh://root@127.0.0.1:${portNoDocker}`;
  await assert.rejects(ping(noDocker, { sshAuthSock: withKey, sshHostKey: made.sshd.hostKey }), oneLine(new RegExp(`${at(noDocker)}there is no docker CLI on root@127\\.0\\.0\\.1 \\(.*docker.*not found\\); install it there, on the PATH of ssh sessions$`)));
  await assert.rejects(ping(url, { sshAuthSock: withKey, sshHostKey: made.sshd.hostKey }), oneLine(engineDown));
  t.diagnostic(seen.join('\n'));

  // Through the gateway: starting the framework answers 503 with that line; the host key is not checked here
  // (accept-any, asked for explicitly), which the gateway says at start.
  const spec: FrameworkSpec = { name: 'far', image: TEST_IMAGE, networkMode: 'host', port: 5999, engine: url, sshHostKeyCheck: 'accept-any' };
  const logLines: string[] = [];
  const config = parseConfig({ frameworks: { far: { launcher: 'lerobot', timeoutMs: 5_000, startTimeoutMs: 30_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const saved = process.env.SSH_AUTH_SOCK;
  process.env.SSH_AUTH_SOCK = withKey;
  const gateway = await buildGateway(config, { metrics: createMetrics(new Registry()), log: createLogger({ write: (line) => void logLines.push(line) }), docker: { specs: [spec] } }).finally(() => {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
  });
  try {
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/far/start`, { method: 'POST' });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    assert.equal(res.status, 503);
    t.diagnostic(body.error?.message ?? '');
    assert.ok(logLines.some((l) => l.includes('"docker.ssh_host_key_unchecked"') && l.includes(url)), 'the unchecked host key is logged at start');
    assert.ok(logLines.some((l) => l.includes('"docker.framework_start_failed"') && l.includes('"level":"warn"') && l.includes('cannot reach its engine')), `a remote engine's failure is logged as a warning: ${logLines.join('')}`);
    assert.match(body.error?.message ?? '', new RegExp(`framework far .*engine '${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}': the docker CLI on root@127\\.0\\.0\\.1 cannot reach its engine`));
  } finally {
    await gateway.close(500);
  }
});
