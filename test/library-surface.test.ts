import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from '../src/index.js';

test('the library surface round-trips an L observation through a worker server and client', async (t) => {
  const server = new lib.WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'demo' });
  server.register('inference', (data) => lib.demoPolicy(data));
  await server.start();
  t.after(() => server.close());
  const client = new lib.WorkerClient({ endpoint: server.endpoint });
  t.after(() => client.close());
  const image = lib.Tensor.of(new Uint8Array(224 * 224 * 3), [224, 224, 3]);
  const reply = await client.inference({ images: { a: image, b: image, c: image }, state: lib.Tensor.of(new Float32Array(14)) });
  const action = (reply.result as { action: lib.Tensor }).action;
  assert.deepEqual(action.shape, [16, 14]);
  assert.ok(Math.abs((action.data[0] as number) - 0.01) < 1e-7);
});
