// A Docker engine that goes away under load and comes back: requests to the framework in Docker end with
// `unavailable` (or `timeout`) while it is gone, never hang, and once an engine answers again the next requests
// start the framework and are served, with no manual start. The test runs a private dockerd of its own (own
// socket, data and exec roots, no bridge, no iptables) so it can kill and restart it without touching the engine
// the rest of the suite uses; the test image is copied into it with docker save | docker load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { TEST_IMAGE, ensureDockerAndImage, testSpec } from '../support/docker.js';

interface Engine {
  socket: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts dockerd on `dir` and resolves once its log says the API listens (an event, not a poll). */
function startEngine(dir: string): Promise<Engine> {
  const socket = join(dir, 'docker.sock');
  const child = spawn(
    'dockerd',
    [`--host=unix://${socket}`, `--data-root=${join(dir, 'root')}`, `--exec-root=${join(dir, 'exec')}`, `--pidfile=${join(dir, 'docker.pid')}`, '--storage-driver=overlay2', '--iptables=false', '--bridge=none'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`dockerd did not listen within 60 s:\n${log.slice(-2000)}`)), 60_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('API listen on')) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ socket, process: child, exited });
      }
    });
    void exited.then((code) => fail(new Error(`dockerd exited with ${code} before listening:\n${log.slice(-2000)}`)));
  });
}

function run(cmd: string, args: string[], input?: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (input) input.stdout!.pipe(child.stdin!);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** Unmounts what a stopped dockerd leaves under `dir` (its netns mount), so the folder can be removed. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
  for (const m of mounts.sort().reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}

test('a Docker engine stopped and restarted under load: requests fail fast while it is gone, then the framework serves again by itself', { timeout: 240_000 }, async (t) => {
  ensureDockerAndImage();
  const dir = await mkdtemp('/tmp/pag-engine-');
  let engine = await startEngine(dir);
  let gatewayClose: () => Promise<void> = async () => undefined;
  // One clean-up, in order: the gateway, then the engine (its containers stop with it), then its folder.
  t.after(async () => {
    await gatewayClose();
    engine.process.kill('SIGTERM');
    await engine.exited;
    await unmountUnder(dir);
    // A mount of the private engine copied into a container started meanwhile elsewhere can keep a layer busy
    // for a moment; what cannot be removed now is only a temp folder.
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) => t.diagnostic(`left ${dir}: ${String(err)}`));
  });
  // The test image into the private engine.
  const save = spawn('docker', ['save', TEST_IMAGE], { stdio: ['ignore', 'pipe', 'inherit'] });
  await run('docker', ['-H', `unix://${engine.socket}`, 'load'], save);

  const manager = new DockerManager({ docker: { socketPath: engine.socket } });
  const spec = await testSpec('lerobot', { stopTimeoutS: 1 });
  const config = parseConfig(
    { healthIntervalMs: 200, frameworks: { lerobot: { launcher: 'lerobot', timeoutMs: 3_000, startTimeoutMs: 30_000 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const gateway = await buildGateway(config, { metrics: createMetrics(new Registry()), docker: { specs: [spec], manager } });
  gatewayClose = async () => {
    await gateway.close(500);
    await manager.close();
  };

  const infer = async (): Promise<{ status: number; code?: string }> => {
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/lerobot/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1,2]}' });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, ...(body.error ? { code: body.error.code } : {}) };
  };
  assert.deepEqual(await infer(), { status: 200 }, 'the first request starts the framework on the private engine');

  // Load: four clients in a loop until told to stop; every request must end (reply or error), none hang.
  let phase: 'before' | 'gone' | 'back' = 'before';
  const outcomes = { before: new Map<string, number>(), gone: new Map<string, number>(), back: new Map<string, number>() };
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  // Each finished request wakes the waiters (outcomes are announced by the requests themselves, not polled).
  let wake: Array<() => void> = [];
  const until = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
    const end = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > end) return false;
      await new Promise<void>((resolve) => wake.push(resolve));
    }
    return true;
  };
  let running = true;
  const clients = Array.from({ length: 4 }, async () => {
    while (running) {
      const r = await infer();
      const key = r.code ?? String(r.status);
      const m = outcomes[phase];
      m.set(key, (m.get(key) ?? 0) + 1);
      const waiting = wake;
      wake = [];
      for (const w of waiting) w();
    }
  });

  // The engine goes away (it stops its containers on the way out).
  engine.process.kill('SIGTERM');
  await engine.exited;
  phase = 'gone';
  // While it is gone every request ends with unavailable or timeout (the deadline is 3 s; none hangs).
  assert.ok(await until(() => total(outcomes.gone) >= 8, 60_000), 'requests end while the engine is gone');
  for (const code of outcomes.gone.keys()) assert.ok(['unavailable', 'timeout'].includes(code), `while the engine is gone: ${code}`);

  // An engine answers again (same data root: the stopped container is still there) ...
  engine = await startEngine(dir);
  phase = 'back';
  // ... and the framework serves again without a manual start: requests succeed within its start timeout.
  const served = await until(() => (outcomes.back.get('200') ?? 0) >= 4, 60_000);
  running = false;
  await Promise.all(clients);
  t.diagnostic(`outcomes before: ${JSON.stringify([...outcomes.before])}, engine gone: ${JSON.stringify([...outcomes.gone])}, engine back: ${JSON.stringify([...outcomes.back])}`);
  assert.ok(served, `the framework served again after the engine came back: ${JSON.stringify([...outcomes.back])}`);
  assert.equal(gateway.router.status()[0]!.state, 'ready');
  assert.equal(gateway.router.inFlight, 0);
});
