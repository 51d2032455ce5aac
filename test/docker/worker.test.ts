// The Python SDK worker inside a real container, reached from the host over tcp://127.0.0.1 (host network)
// and over ipc:// in a mounted folder (no network); and a worker started by exec in a running container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { WorkerProcess } from '../../src/docker/worker-process.js';
import { endpointsFor, validateFrameworkSpec, type FrameworkSpec } from '../../src/docker/framework-spec.js';
import type { DockerManager } from '../../src/docker/docker-manager.js';
import { TEST_IMAGE, freePort, ipcDir, runLabels, testManager, uniqueName, waitWorkerReady } from '../support/docker.js';

async function client(t: TestContext, endpoint: string): Promise<WorkerClient> {
  const c = new WorkerClient({ endpoint, timeoutMs: 10_000 });
  t.after(() => c.close());
  return c;
}

const waitReady = (endpoint: string, signal: AbortSignal) => WorkerPool.waitUntilReady([endpoint], { signal });

async function runSpec(t: TestContext, manager: DockerManager, spec: FrameworkSpec): Promise<{ endpoint: string; readyMs: number; firstInferenceMs: number }> {
  await manager.createContainer(manager.containerOptionsFor(validateFrameworkSpec(spec)));
  const t0 = performance.now();
  await manager.start(spec.containerName!);
  const endpoint = await manager.endpointFor(spec);
  await waitWorkerReady(endpoint);
  const readyMs = performance.now() - t0;
  const c = await client(t, endpoint);
  const health = await c.health();
  assert.equal(health.ready, true);
  assert.equal(health.framework, spec.name);
  const t1 = performance.now();
  const reply = await c.inference({ state: new Float32Array([0.5, -1, 2]), instruction: 'pick' });
  const firstInferenceMs = performance.now() - t1;
  const result = reply.result as { action: { shape: number[]; data: Float32Array }; model: string; instruction: string };
  assert.deepEqual(result.action.shape, [16, 3]);
  assert.equal(result.model, 'demo-v1');
  assert.equal(result.instruction, 'pick');
  assert.ok(Math.abs(result.action.data[0]! - 0.51) < 1e-6);
  assert.ok(Math.abs(result.action.data[15 * 3 + 2]! - 2.16) < 1e-6);
  return { endpoint, readyMs, firstInferenceMs };
}

test('SDK worker in a container, host network, tcp://127.0.0.1', async (t) => {
  const manager = testManager(t);
  const port = await freePort();
  const spec: FrameworkSpec = { name: 'demo', image: TEST_IMAGE, networkMode: 'host', port, containerName: uniqueName('tcp'), labels: runLabels() };
  const { endpoint, readyMs, firstInferenceMs } = await runSpec(t, manager, spec);
  assert.equal(endpoint, `tcp://127.0.0.1:${port}`);
  t.diagnostic(`host network: container start→ready ${readyMs.toFixed(0)} ms, first inference ${firstInferenceMs.toFixed(1)} ms`);
});

test('SDK worker in a container without network, ipc:// in a mounted folder', async (t) => {
  const manager = testManager(t);
  const dir = await ipcDir(t);
  const spec: FrameworkSpec = { name: 'demo', image: TEST_IMAGE, networkMode: 'none', ipcDir: dir, containerName: uniqueName('ipc'), labels: runLabels() };
  const { endpoint, readyMs, firstInferenceMs } = await runSpec(t, manager, spec);
  assert.equal(endpoint, `ipc://${dir}/demo.sock`);
  assert.equal(endpointsFor(spec).container, 'ipc:///ipc/demo.sock');
  assert.equal((await manager.inspect(spec.containerName!))?.HostConfig.NetworkMode, 'none');
  t.diagnostic(`ipc: container start→ready ${readyMs.toFixed(0)} ms, first inference ${firstInferenceMs.toFixed(1)} ms`);
});

test('worker process started by exec: ready by health, monitored, stopped', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('proc');
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: ['sleep', '3600'], networkMode: 'host', labels: runLabels() });
  await manager.start(name);
  const port = await freePort();
  const endpoint = `tcp://127.0.0.1:${port}`;
  const proc = await WorkerProcess.start({
    manager,
    container: name,
    argv: ['python3', '-m', 'physical_ai_worker', '--endpoint', endpoint, '--framework', 'exec-demo', '--policy', 'demo'],
    endpoint,
    waitReady,
  });
  t.after(() => proc.close());
  assert.equal(proc.alive, true);
  assert.ok(proc.pid !== undefined && proc.pid > 1);
  const c = await client(t, endpoint);
  assert.equal((await c.health()).framework, 'exec-demo');
  assert.ok(proc.lastLines().some((l) => l.includes('"worker.listening"')));
  assert.equal(await proc.stop(), 0, 'the SDK exits 0 on SIGTERM');
  assert.equal(proc.alive, false);
  assert.equal(proc.exitCode, 0);

  // a worker that cannot start: the error carries its output
  await assert.rejects(
    WorkerProcess.start({ manager, container: name, argv: ['python3', '-c', 'import sys; print("no checkpoint at /models/x"); sys.exit(4)'], endpoint: `tcp://127.0.0.1:${await freePort()}`, waitReady }),
    (err: Error & { reason?: string; logLines?: string[] }) => {
      assert.equal(err.reason, 'exited_while_starting');
      assert.match(err.message, /exited with code 4/);
      assert.deepEqual(err.logLines, ['no checkpoint at /models/x']);
      return true;
    },
  );
});

test('framework entry-point glue (docker/common/serve_common.py) serves a stand-in policy in the offline image', async (t) => {
  const manager = testManager(t);
  const port = await freePort();
  const commonDir = new URL('../../docker/common/', import.meta.url).pathname;
  // the framework's load/infer replaced by a stand-in: load takes a moment (health says not ready meanwhile)
  const script = [
    'import sys, time, numpy as np',
    'sys.path.insert(0, "/app")',
    'from serve_common import serve',
    'def load(args): time.sleep(0.5); return {"gain": 2.0}',
    'def infer(policy, obs): return np.tile(obs["state"] * policy["gain"], (4, 1))',
    'sys.exit(serve("standin", "standin-v0", load, infer))',
  ].join('\n');
  const spec: FrameworkSpec = {
    name: 'standin', image: TEST_IMAGE, networkMode: 'host', port, containerName: uniqueName('glue'), labels: runLabels(),
    command: ['python3', '-c', script, '--endpoint', '{endpoint}'],
    mounts: [{ hostPath: commonDir, containerPath: '/app', readOnly: true }],
  };
  await manager.createContainer(manager.containerOptionsFor(validateFrameworkSpec(spec)));
  await manager.start(spec.containerName!);
  const endpoint = await manager.endpointFor(spec);
  await waitWorkerReady(endpoint);
  const c = await client(t, endpoint);
  const reply = await c.inference({ images: { front: new Tensor('uint8', [2, 2, 3], new Uint8Array(12)) }, state: new Float32Array([1, -0.5]), instruction: 'stack' });
  const result = reply.result as { action: { shape: number[]; data: Float32Array }; model: string; instruction: string };
  assert.deepEqual(result.action.shape, [4, 2]);
  assert.deepEqual([...result.action.data.slice(0, 2)], [2, -1]);
  assert.equal(result.model, 'standin-v0');
  assert.equal(result.instruction, 'stack');
  await assert.rejects(c.inference({ images: {} }), { code: 'bad_request' });
});
