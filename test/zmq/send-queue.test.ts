// Sends queued in one turn of the event loop (src/zmq/send-queue.ts): every message arrives whole, in the order it
// was queued, and each request through a client and a worker that both batch gets its own reply's bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zmq from 'zeromq';
import { Tensor } from '../../src/protocol/tensor.js';
import { SendQueue } from '../../src/zmq/send-queue.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';

test('messages queued in one turn arrive whole and in order', async (t) => {
  const router = new zmq.Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  const dealer = new zmq.Dealer({ linger: 0, sendTimeout: 0 });
  t.after(() => (dealer.close(), router.close()));
  dealer.connect(router.lastEndpoint!);
  const queue = new SendQueue(dealer);
  const failures: Error[] = [];
  const count = 100;
  for (let i = 0; i < count; i++) {
    // Frames of several sizes: small ones ZeroMQ copies, large ones it sends from our memory.
    queue.send([Buffer.from(`m${i}`), Buffer.alloc(i % 3 === 0 ? 200_000 : 10, i)], (err) => failures.push(err));
  }
  assert.equal(queue.queued, count, 'nothing leaves before the turn ends');
  for (let i = 0; i < count; i++) {
    const [, name, body] = await router.receive();
    assert.equal(name!.toString(), `m${i}`);
    assert.equal(body!.byteLength, i % 3 === 0 ? 200_000 : 10);
    assert.ok(body!.every((b) => b === (i & 0xff)));
  }
  assert.deepEqual(failures, []);
  assert.equal(queue.queued, 0);
});

test('a message still queued when the socket closes is reported as failed, not lost silently', async () => {
  const dealer = new zmq.Dealer({ linger: 0, sendTimeout: 0 });
  const queue = new SendQueue(dealer);
  const failed = new Promise<Error>((resolve) => queue.send([Buffer.from('late')], resolve));
  dealer.close();
  const err = await failed;
  assert.match(err.message, /closed/);
});

test('32 requests in flight, 20 rounds: each reply carries the chunk computed from its own request', async (t) => {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'test', capacity: 64 });
  server.register('inference', (data) => {
    const state = (data as { state: Tensor }).state.data as Float32Array;
    const action = new Float32Array(16 * 14);
    for (let k = 0; k < 16; k++) for (let j = 0; j < 14; j++) action[k * 14 + j] = state[j]! * 2 + k;
    return { action: Tensor.of(action, [16, 14]) };
  });
  await server.start();
  t.after(() => server.close());
  const client = new WorkerClient({ endpoint: server.endpoint, timeoutMs: 20_000 });
  t.after(() => client.close());
  for (let round = 0; round < 20; round++) {
    await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const state = Float32Array.from({ length: 14 }, (_, j) => round * 1000 + i * 14 + j);
        const reply = await client.inference({ state: Tensor.of(state) });
        const action = (reply.result as { action: Tensor }).action;
        assert.deepEqual(action.shape, [16, 14]);
        const got = action.data as Float32Array;
        for (let k = 0; k < 16; k++) for (let j = 0; j < 14; j++) assert.equal(got[k * 14 + j], state[j]! * 2 + k);
      }),
    );
  }
  assert.equal(client.stats().unmatchedReplies, 0);
  assert.equal(client.stats().sent, 20 * 32);
});
