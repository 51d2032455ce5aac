// Compatibility with the original ROBOTIS design: its JSON clients against our workers, and our client
// against a server of the original kind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import * as zmq from 'zeromq';
import { asTensor, Tensor } from '../../src/protocol/tensor.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';

test('a client of the original design (REQ, one JSON frame, nested lists) gets correct replies from our TS worker', async (t) => {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'demo' });
  server.register('inference', (data) => {
    const state = asTensor((data as { robot_state: unknown }).robot_state, 'float32', '/data/robot_state');
    return { action: Tensor.of(Float32Array.from(state.data as Float32Array, (v) => v * 2), [1, state.data.length]) };
  });
  await server.start();
  t.after(() => server.close());
  const req = new zmq.Request({ linger: 0, receiveTimeout: 5_000 });
  req.connect(server.endpoint);
  t.after(() => req.close());
  const ask = async (msg: object) => {
    await req.send(JSON.stringify(msg));
    const [frame] = await req.receive();
    return JSON.parse(frame!.toString()) as Record<string, any>;
  };
  const id = randomUUID();
  const reply = await ask({ type: 'inference', data: { image: [[[0, 0, 0]]], robot_state: [0.5, 1.5] }, timestamp: Date.now() / 1000, request_id: id });
  assert.equal(reply.status, 'success');
  assert.equal(reply.request_id, id);
  assert.deepEqual(reply.result.action, [[1, 3]]);
  const unknown = await ask({ type: 'dance', data: {}, request_id: 'u' });
  assert.equal(unknown.status, 'error');
  assert.equal(unknown.error.code, 'bad_request');
  // health answers status: success (the original's client looked for 'ok' and so never passed)
  const health = await ask({ type: 'health', data: {}, request_id: 'h' });
  assert.equal(health.status, 'success');
  assert.equal(health.result.ready, true);
});

test('our client works against a REP server of the original kind (JSON codec), and reads its string errors', async (t) => {
  const child = spawn('/usr/bin/python3', [new URL('../fixtures/original_rep_server.py', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const [line] = await (async () => {
    for await (const l of createInterface({ input: child.stdout })) return [l];
    throw new Error('server exited');
  })();
  const { endpoint } = JSON.parse(line!) as { endpoint: string };
  const client = new WorkerClient({ endpoint, codec: 'json', timeoutMs: 5_000 });
  t.after(() => client.close());
  const reply = await client.inference({ image: [[[1, 2, 3]]], robot_state: [1, 2] });
  assert.deepEqual((reply.result as { action: unknown }).action, [[1.5, 2.5]]);
  assert.equal(reply.codec, 'json');
  // Several in flight against a one-at-a-time REP server: each still gets its own reply.
  const many = await Promise.all([1, 2, 3, 4, 5].map((v) => client.inference({ robot_state: [v] })));
  assert.deepEqual(many.map((r) => (r.result as { action: number[][] }).action[0]![0]), [1.5, 2.5, 3.5, 4.5, 5.5]);
  await assert.rejects(client.request({ type: 'dance' }), { code: 'worker_error', message: 'Unknown message type: dance' });
  // Tensors sent to a JSON server arrive as nested lists.
  const t2 = await client.inference({ robot_state: Tensor.of(Float32Array.from([3, 4])) });
  assert.deepEqual((t2.result as { action: unknown }).action, [[3.5, 4.5]]);
});
