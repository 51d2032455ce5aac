// Shared memory into a container: the launcher's spec mounts the root at the same path and sets WORKER_SHM_DIR; the
// Python worker in the container maps the host client's slots (the realm file proves it is the same memory). The
// SDK comes from this checkout (mounted at /sdk into the base image: Debian's python3 with zmq and numpy), so the
// test checks the code under review, not an image's copy.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { CONTAINER_LEASE_SECRET, validateFrameworkSpec, type FrameworkSpec } from '../../src/docker/framework-spec.js';
import { ShmTensorRef } from '../../src/protocol/shm-descriptor.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { ShmArena } from '../../src/shm/shm-arena.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { BASE_IMAGE, freePort, runLabels, testManager, uniqueName, waitWorkerReady } from '../support/docker.js';

test('a worker in a container reads the host client’s shared memory through the mounted root, and answers through it', async (t) => {
  const dir = mkdtempSync('/dev/shm/paig-shm-docker-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manager = testManager(t);
  const port = await freePort();
  const spec: FrameworkSpec = {
    name: 'shmdemo', image: BASE_IMAGE, networkMode: 'host', port, containerName: uniqueName('shm'), labels: runLabels(),
    command: ['python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}', '--framework', 'shmdemo', '--handler', 'digest=shm_probe:digest'],
    env: { PYTHONPATH: '/sdk:/probe' },
    mounts: [
      { hostPath: new URL('../../docker/worker-sdk/', import.meta.url).pathname, containerPath: '/sdk', readOnly: true },
      { hostPath: new URL('.', import.meta.url).pathname, containerPath: '/probe', readOnly: true },
    ],
    sharedMemoryDir: dir,
  };
  const options = manager.containerOptionsFor(validateFrameworkSpec(spec));
  assert.equal(options.env?.WORKER_SHM_DIR, dir);
  assert.ok(options.binds?.some((b) => b.hostPath === dir && b.containerPath === dir));
  // The direct path's secret reaches a launched worker the same way (checked on the options; no lease here).
  const leased = manager.containerOptionsFor(validateFrameworkSpec({ ...spec, leaseSecretFile: '/etc/paig/x.secret' }));
  assert.equal(leased.env?.WORKER_LEASE_SECRET_FILE, CONTAINER_LEASE_SECRET);
  assert.ok(leased.binds?.some((b) => b.hostPath === '/etc/paig/x.secret' && b.containerPath === CONTAINER_LEASE_SECRET && b.readOnly));
  await manager.createContainer(options);
  await manager.start(spec.containerName!);
  const endpoint = `tcp://127.0.0.1:${port}`;
  await waitWorkerReady(endpoint);

  const arena = new ShmArena({ dir, replyBytes: 1 << 20 });
  const client = new WorkerClient({ endpoint, timeoutMs: 10_000, sharedMemory: arena });
  t.after(() => client.close());
  const image = new Tensor('uint8', [224, 224, 3], new Uint8Array(randomBytes(224 * 224 * 3)));
  const reply = await client.request({ type: 'digest', data: { images: { cam: image }, state: Tensor.of(new Float32Array(14).fill(0.25)) } });
  assert.equal(client.sharedMemoryState, 'on', 'the container reports the host root’s realm');
  const result = reply.result as { arrays: Record<string, { sha256: string; mapped: boolean }>; echo: Tensor };
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  assert.equal(result.arrays['/data/images/cam']!.sha256, sha(image.bytes()));
  assert.equal(result.arrays['/data/images/cam']!.mapped, true);
  assert.ok((reply.header.result as { echo: unknown }).echo instanceof ShmTensorRef);
  assert.equal(sha(result.echo.bytes()), sha(image.bytes()));
  await client.close();
  assert.deepEqual(readdirSync(dir), ['realm'], 'nothing left once the client closed');
});
