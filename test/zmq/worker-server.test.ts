import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { DEFAULT_LIMITS } from '../../src/protocol/codec.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import { sleep } from '../../src/lib/abort.js';
import { freePort } from '../support/endpoints.js';

async function serverAndDealer(t: { after(fn: () => unknown): void }, limits = DEFAULT_LIMITS) {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'test', limits, capacity: 2 });
  server.register('echo', (data) => data);
  server.register('wait', (_data, { signal }) => sleep(300, signal).then(() => 'done'));
  await server.start();
  t.after(() => server.close());
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 5_000 });
  dealer.connect(server.endpoint);
  t.after(() => dealer.close());
  const ask = async (...frames: Array<Buffer | string>) => {
    await dealer.send(['', ...frames]);
    const [delimiter, header] = await dealer.receive();
    assert.equal(delimiter!.byteLength, 0, 'the routing envelope is echoed');
    return header![0] === 0x7b ? JSON.parse(header!.toString()) : (decode(header!) as Record<string, any>);
  };
  return { server, ask };
}

const bin = (v: unknown) => Buffer.from(encode(v));
const tensor = (extra: object) => ({ __tensor__: true, dtype: 'float32', shape: [2], frame: 1, ...extra });

test('every malformed message gets an error reply naming the problem, and the worker keeps serving', async (t) => {
  const { ask } = await serverAndDealer(t, { ...DEFAULT_LIMITS, maxMessageBytes: 4096 });
  const cases: Array<[string, Array<Buffer | string>, string, RegExp]> = [
    ['invalid msgpack', [Buffer.from([0xc1, 0x00])], 'bad_request', /msgpack/],
    ['invalid JSON', ['{"type": "echo"'], 'bad_request', /JSON/],
    ['missing type', [bin({ data: {}, request_id: 'a' })], 'bad_request', /'type'/],
    ['unknown type', [bin({ type: 'teleport', request_id: 'a' })], 'bad_request', /unknown message type 'teleport'.*echo/],
    ['wrong tensor frame count', [bin({ type: 'echo', data: tensor({}) })], 'bad_request', /refers to frame 1/],
    ['unreferenced frame', [bin({ type: 'echo', data: {} }), Buffer.alloc(8)], 'bad_request', /1 tensor frames but the header references 0/],
    ['dtype outside the list', [bin({ type: 'echo', data: tensor({ dtype: 'object' }) }), Buffer.alloc(8)], 'bad_request', /unknown dtype/],
    ['byte length not shape x item size', [bin({ type: 'echo', data: tensor({}) }), Buffer.alloc(9)], 'bad_request', /needs 8 bytes, got 9/],
    ['message above the size limit', [bin({ type: 'echo', data: tensor({ shape: [1250] }) }), Buffer.alloc(5000)], 'too_large', /limit is 4096/],
  ];
  for (const [name, frames, code, message] of cases) {
    const reply = await ask(...frames);
    assert.equal(reply.status, 'error', name);
    assert.equal(reply.error.code, code, name);
    assert.match(reply.error.message, message, name);
    // still serving
    const ok = await ask(bin({ type: 'echo', data: { after: name }, request_id: 'z' }));
    assert.deepEqual(ok.result, { after: name });
    assert.equal(ok.request_id, 'z');
  }
});

test('a frame far above the limit is dropped by ZeroMQ; the worker keeps serving others', async (t) => {
  const { server, ask } = await serverAndDealer(t, { ...DEFAULT_LIMITS, maxMessageBytes: 4096 });
  const hostile = new zmq.Dealer({ linger: 0, receiveTimeout: 300 });
  t.after(() => hostile.close());
  hostile.connect(server.endpoint);
  await hostile.send(['', bin({ type: 'echo' }), Buffer.alloc(100_000)]);
  await assert.rejects(hostile.receive(), { code: 'EAGAIN' });
  const after = await ask(bin({ type: 'echo', data: 1 }));
  assert.equal(after.result, 1);
});

test('a message too large to decode is still answered with its request id', async (t) => {
  const { ask } = await serverAndDealer(t, { ...DEFAULT_LIMITS, maxMessageBytes: 4096 });
  const reply = await ask(bin({ type: 'echo', request_id: 'big-1', data: tensor({ shape: [1250] }) }), Buffer.alloc(5000));
  assert.equal(reply.error.code, 'too_large');
  assert.equal(reply.request_id, 'big-1');
});

test('a throwing handler becomes worker_error with its text; over capacity is overloaded', async (t) => {
  const { server, ask } = await serverAndDealer(t);
  server.register('boom', () => {
    throw new Error('CUDA out of memory');
  });
  const boom = await ask(bin({ type: 'boom', request_id: 'b' }));
  assert.deepEqual([boom.status, boom.error.code, boom.error.message, boom.request_id], ['error', 'worker_error', 'CUDA out of memory', 'b']);
  assert.equal(boom.error.retryable, false);
});

test('handlers run concurrently up to capacity; beyond it requests get overloaded; health still answers', async (t) => {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'test', capacity: 2 });
  server.register('wait', (_d, { signal }) => sleep(300, signal).then(() => 'done'));
  await server.start();
  t.after(() => server.close());
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(server.endpoint);
  t.after(() => dealer.close());
  for (const id of ['1', '2', '3']) await dealer.send(['', bin({ type: 'wait', request_id: id })]);
  await dealer.send(['', bin({ type: 'health', request_id: 'h' })]);
  const replies = new Map<string, any>();
  const started = performance.now();
  for (let i = 0; i < 4; i++) {
    const [, header] = await dealer.receive();
    const r = decode(header!) as any;
    replies.set(r.request_id, r);
  }
  assert.equal(replies.get('3').error.code, 'overloaded');
  assert.equal(replies.get('h').result.in_flight, 2);
  assert.equal(replies.get('1').result, 'done');
  assert.equal(replies.get('2').result, 'done');
  assert.ok(performance.now() - started < 600 + 2_000, 'the two waits overlapped');
});

test('binding a port already taken fails with a clear unavailable error', async (t) => {
  const port = await freePort();
  const a = new WorkerServer({ endpoint: `tcp://127.0.0.1:${port}`, framework: 'a' });
  await a.start();
  t.after(() => a.close());
  const b = new WorkerServer({ endpoint: `tcp://127.0.0.1:${port}`, framework: 'b' });
  await assert.rejects(b.start(), { code: 'unavailable', message: /address already in use/ });
  await b.close();
});
