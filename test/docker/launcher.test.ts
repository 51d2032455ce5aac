// Frameworks on demand with a real engine: the first request starts the container, concurrent requests share
// one start, a crash while starting carries its logs, idle frameworks stop, a killed one is reported and restarted.
// The launcher only says "running, here are the endpoints"; readiness is waited for over ZMQ by the caller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { TestContext } from 'node:test';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { DockerLauncher, type LauncherEvent } from '../../src/docker/launcher.js';
import { down, logs, ps, up } from '../../src/docker/commands.js';
import type { DockerManager } from '../../src/docker/docker-manager.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { TEST_IMAGE, dockerCli, eventually, freePort, runLabels, testManager, uniqueName, waitWorkerReady } from '../support/docker.js';

function demoSpec(name: string, port: number, extra: Partial<FrameworkSpec> = {}): FrameworkSpec {
  return { name, image: TEST_IMAGE, networkMode: 'host', port, containerName: uniqueName(name), labels: runLabels(), readyTimeoutMs: 30_000, stopTimeoutS: 2, ...extra };
}

function launcherFor(t: TestContext, manager: DockerManager, specs: FrameworkSpec[], extra: { idleStopMs?: number } = {}) {
  const launcher = new DockerLauncher({ manager, specs, ...extra });
  const events: LauncherEvent[] = [];
  launcher.onEvent((e) => events.push(e));
  t.after(() => launcher.close());
  return { launcher, events };
}

const longSignal = () => AbortSignal.timeout(60_000);

test('on demand: the first request starts the framework, concurrent requests share the start, inference works', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('lerobot', await freePort());
  const { launcher, events } = launcherFor(t, manager, [spec]);
  assert.equal((await launcher.status())[0]!.state, 'absent');

  const t0 = performance.now();
  const all = (await Promise.all([1, 2, 3].map(() => launcher.ensureRunning('lerobot', longSignal())))).map((l) => l.endpoints);
  const runningMs = performance.now() - t0;
  assert.deepEqual(all, [[`tcp://127.0.0.1:${spec.port}`], [`tcp://127.0.0.1:${spec.port}`], [`tcp://127.0.0.1:${spec.port}`]]);
  await waitWorkerReady(all[0]![0]!);
  const readyMs = performance.now() - t0;
  assert.equal(events.filter((e) => e.type === 'starting').length, 1, 'one start for three callers');
  assert.equal((await manager.listContainers({ framework: 'lerobot', labels: [`physical-ai-gateway.test-run=${runLabels()['physical-ai-gateway.test-run']}`] })).length, 1);

  const client = new WorkerClient({ endpoint: all[0]![0]!, timeoutMs: 10_000 });
  t.after(() => client.close());
  const t1 = performance.now();
  const reply = await client.inference({ state: new Float32Array([1, 2]) });
  const firstMs = performance.now() - t1;
  assert.deepEqual((reply.result as { action: { shape: number[] } }).action.shape, [16, 2]);
  t.diagnostic(`on demand: ensureRunning (create+start) ${runningMs.toFixed(0)} ms, worker ready ${readyMs.toFixed(0)} ms, first inference ${firstMs.toFixed(1)} ms`);

  assert.equal((await launcher.status())[0]!.state, 'running');
  await launcher.stop('lerobot');
  assert.equal((await launcher.status())[0]!.state, 'stopped');
  // a stopped framework is started again by the next request
  const t2 = performance.now();
  assert.deepEqual((await launcher.ensureRunning('lerobot', longSignal())).endpoints, [`tcp://127.0.0.1:${spec.port}`]);
  t.diagnostic(`restart of a stopped framework: ${(performance.now() - t2).toFixed(0)} ms`);
  assert.equal((await client.health({ timeoutMs: 10_000 })).ready, true);

  await assert.rejects(launcher.ensureRunning('nope', longSignal()), { code: 'unknown_framework' });
});

test('a caller whose deadline is shorter than the start gets timeout; the start goes on', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('groot', await freePort());
  const { launcher } = launcherFor(t, manager, [spec]);
  await assert.rejects(launcher.ensureRunning('groot', AbortSignal.timeout(50)), { code: 'timeout' });
  const ac = new AbortController();
  const cancelled = launcher.ensureRunning('groot', ac.signal);
  ac.abort();
  await assert.rejects(cancelled, { code: 'cancelled' });
  assert.deepEqual((await launcher.ensureRunning('groot', longSignal())).endpoints, [`tcp://127.0.0.1:${spec.port}`]);
});

test('a framework killed from outside is reported, and the next request restarts it', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('pi0', await freePort());
  const { launcher, events } = launcherFor(t, manager, [spec]);
  const { ended } = await launcher.ensureRunning('pi0', longSignal());
  await dockerCli('kill', spec.containerName!);
  const reason = await ended;
  assert.equal(reason.code, 'unavailable');
  assert.match(reason.message, /exited with code 137/);
  const exited = events.find((e) => e.type === 'exited');
  assert.ok(exited && exited.type === 'exited');
  assert.deepEqual([exited.framework, exited.exitCode, exited.expected], ['pi0', 137, false]);
  assert.match(exited.error ?? '', /pi0: container .* exited with code 137/);
  assert.equal((await launcher.status())[0]!.state, 'stopped');
  assert.deepEqual((await launcher.ensureRunning('pi0', longSignal())).endpoints, [`tcp://127.0.0.1:${spec.port}`]);
  assert.equal(events.filter((e) => e.type === 'running').length, 2);
});

test('a container that exits while starting: the error carries its last log lines', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('broken', await freePort(), {
    command: ['python3', '-c', 'import sys; print("loading policy from /models/missing", flush=True); print("FileNotFoundError: /models/missing", file=sys.stderr, flush=True); sys.exit(3)'],
  });
  const { launcher } = launcherFor(t, manager, [spec]);
  // The container starts, then dies: its `ended` promise carries the exit code and the last log lines.
  const { ended } = await launcher.ensureRunning('broken', longSignal());
  const err = (await ended) as Error & { code?: string; reason?: string; logLines?: string[] };
  assert.equal(err.code, 'unavailable');
  assert.equal(err.reason, 'exited_while_starting');
  assert.match(err.message, /exited with code 3/);
  assert.ok(err.logLines?.includes('FileNotFoundError: /models/missing'), String(err.logLines));
  assert.ok(err.logLines?.includes('loading policy from /models/missing'));
});

test('bad starts: missing image, port taken, GPU without NVIDIA runtime, Jetson runtime missing', async (t) => {
  const manager = testManager(t);
  const blocker = createServer();
  const busyPort = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const specs = [
    demoSpec('noimage', await freePort(), { image: 'physical-ai-gateway/noimage:local' }),
    demoSpec('busy', busyPort),
    demoSpec('gpu', await freePort(), { gpus: 'all' }),
    demoSpec('jetson', await freePort(), { runtime: 'nvidia' }),
  ];
  const { launcher } = launcherFor(t, manager, specs);
  await assert.rejects(launcher.ensureRunning('noimage', longSignal()), (err: Error & { reason?: string }) => {
    assert.equal(err.reason, 'image_missing');
    // A framework of the user's own has no docker/<name>/ folder here: the hint names the CLI's build command.
    assert.match(err.message, /physical-ai-gateway build <your image's folder> --tag physical-ai-gateway\/noimage:local/);
    return true;
  });
  await assert.rejects(launcher.ensureRunning('busy', longSignal()), (err: Error & { reason?: string }) => {
    assert.equal(err.reason, 'port_in_use');
    assert.match(err.message, new RegExp(`port ${busyPort} on 127.0.0.1 is already in use`));
    return true;
  });
  await assert.rejects(launcher.ensureRunning('gpu', longSignal()), { code: 'unavailable', reason: 'gpu_unavailable' });
  assert.equal(await manager.inspect(specs[2]!.containerName!), undefined, 'the container created for the failed GPU start is removed');
  await assert.rejects(launcher.ensureRunning('jetson', longSignal()), { reason: 'runtime_unavailable' });
});

test('an idle framework stops after idleStopMs without requests', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('idle', await freePort());
  const { launcher, events } = launcherFor(t, manager, [spec], { idleStopMs: 1_000 });
  await launcher.ensureRunning('idle', longSignal());
  const stopped = await eventually(async () => events.find((e) => e.type === 'stopped'), 30_000);
  assert.deepEqual(stopped, { type: 'stopped', framework: 'idle', reason: 'idle' });
  assert.equal((await manager.inspect(spec.containerName!))?.State.Running, false);
});

test('CLI commands: up, ps, logs, down', async (t) => {
  const manager = testManager(t);
  const spec = demoSpec('clidemo', await freePort());
  const out: string[] = [];
  const ctx = { manager, specs: [spec], out: (l: string) => void out.push(l), waitReady: (eps: string[], signal: AbortSignal) => WorkerPool.waitUntilReady(eps, { signal }) };
  assert.equal(await up(ctx, 'clidemo'), `tcp://127.0.0.1:${spec.port}`);
  assert.match(out.at(-1)!, /^clidemo ready at tcp:\/\/127\.0\.0\.1:\d+ in \d+ ms$/);
  out.length = 0;
  await ps(ctx);
  assert.match(out[0]!, /^FRAMEWORK\s+CONTAINER\s+STATE\s+IMAGE\s+STATUS$/);
  assert.ok(out.some((l) => l.includes(spec.containerName!) && /\brunning\b/.test(l)));
  out.length = 0;
  await logs(ctx, 'clidemo', { tail: 50 });
  assert.ok(out.some((l) => l.includes('worker.listening')), out.join('\n'));
  out.length = 0;
  assert.equal(await down(ctx, 'clidemo'), 1);
  assert.equal(await manager.inspect(spec.containerName!), undefined);
  await assert.rejects(up(ctx, 'unknown'), { code: 'unknown_framework' });
});
