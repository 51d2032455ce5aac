// The Python SDK worker as a real child process, over real tcp and ipc sockets, driven by raw zeromq.js
// sockets and src/protocol/codec.ts: the demo policy on every codec, and the original JSON envelope over REQ.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import * as zmq from 'zeromq';
import { Tensor } from '../../src/protocol/tensor.js';
import { demoPolicy } from '../../src/worker/default-policy.js';
import { ipcEndpoint, spawnPythonWorker } from '../support/python-worker.js';
import { demoAction, lPayload, RawDealer, sPayload } from './raw-client.js';
import { INTERPRETERS, pythonFor, venvPython } from './venv.js';

// The L payload runs on both interpreters (venv.ts): the pip install users get, and Debian's python the offline
// worker image runs; the other tests use the pip install.

for (const interpreter of INTERPRETERS) for (const transport of ['tcp', 'ipc'] as const) {
  test(`${interpreter}: L payload over ${transport}: three 224x224x3 images + 14 float32 → 16x14 float32 demo action`, async (t) => {
    const python = await pythonFor(interpreter);
    const worker = await spawnPythonWorker({ python, ...(transport === 'ipc' ? { endpoint: ipcEndpoint(t) } : {}) });
    t.after(() => worker.close());
    assert.match(worker.endpoint, transport === 'ipc' ? /^ipc:\/\// : /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const dealer = new RawDealer(worker.endpoint);
    t.after(() => dealer.close());

    const data = { ...lPayload(), instruction: 'fold the towel' };
    const reply = await dealer.request({ type: 'inference', data, timeout_ms: 10_000 });
    assert.equal(reply.codec, 'binary');
    const h = reply.header;
    assert.equal(h.status, 'success', JSON.stringify(h.error));
    assert.equal(h.version, 1);
    assert.ok(h.timing && h.timing.total_ms >= h.timing.compute_ms && h.timing.compute_ms >= 0);
    const result = h.result as { action: Tensor; dt_s: number; model: string; instruction: string };
    assert.ok(result.action instanceof Tensor);
    assert.equal(result.action.dtype, 'float32');
    assert.deepEqual(result.action.shape, [16, 14]);
    assert.deepEqual(Array.from(result.action.data as Float32Array), Array.from(demoAction(data.state.data as Float32Array)));
    assert.equal(result.dt_s, 1 / 30);
    assert.equal(result.model, 'demo-v1');
    assert.equal(result.instruction, 'fold the towel');

    const exit = await worker.close();
    assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM ends the worker with exit code 0');
  });
}

test('the same request on the msgpack (inline) and json codecs gets a reply in the same codec', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython() });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const state = sPayload();
  const expected = Array.from(demoAction(state.data as Float32Array));

  const inline = await dealer.request({ type: 'inference', data: { state } }, 'msgpack');
  assert.equal(inline.codec, 'msgpack');
  const action = (inline.header.result as { action: Tensor }).action;
  assert.ok(action instanceof Tensor);
  assert.deepEqual(Array.from(action.data as Float32Array), expected);

  const json = await dealer.request({ type: 'inference', data: { state, instruction: 'x' } }, 'json');
  assert.equal(json.codec, 'json');
  const nested = (json.header.result as { action: number[][] }).action;
  assert.equal(nested.length, 16);
  assert.deepEqual(nested.flat(), expected);
  assert.equal((json.header.result as { instruction: string }).instruction, 'x');
});

test('a client of the original design (REQ socket, one JSON frame, image + robot_state) reads result.action', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython() });
  t.after(() => worker.close());
  const req = new zmq.Request({ linger: 0, receiveTimeout: 15_000 });
  req.connect(worker.endpoint);
  t.after(() => req.close());
  const robotState = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
  const image = Array.from({ length: 4 }, (_, y) => Array.from({ length: 4 }, (_, x) => [x, y, 0]));
  const id = randomUUID();
  await req.send(JSON.stringify({ type: 'inference', data: { image, robot_state: robotState }, timestamp: Date.now() / 1000, request_id: id }));
  const frames = await req.receive();
  assert.equal(frames.length, 1, 'REQ gets exactly one frame: the JSON reply');
  assert.equal(frames[0]![0], 0x7b);
  const reply = JSON.parse(frames[0]!.toString('utf8')) as { status: string; request_id: string; result: { action: number[][] } };
  assert.equal(reply.status, 'success');
  assert.equal(reply.request_id, id);
  assert.equal(reply.result.action.length, 16);
  assert.deepEqual(reply.result.action.flat(), Array.from(demoAction(Float32Array.from(robotState))));

  // health answers status: success with ready, over the same REQ socket
  await req.send(JSON.stringify({ type: 'health', data: {}, timestamp: Date.now() / 1000, request_id: 'h1' }));
  const health = JSON.parse((await req.receive())[0]!.toString('utf8')) as { status: string; result: Record<string, unknown> };
  assert.equal(health.status, 'success');
  assert.equal(health.result.ready, true);
});

test('the Python demo policy answers bit for bit what the TypeScript demo policy (src/worker) computes', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython() });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 6; // deterministic, [-3, 3)
  const state = Tensor.of(Float32Array.from({ length: 2_000 }, random));
  const reply = await dealer.request({ type: 'inference', data: { state, instruction: 'same' } });
  const python = reply.header.result as { action: Tensor; dt_s: number; model: string; instruction: string };
  const ts = demoPolicy({ state, instruction: 'same' });
  assert.deepEqual(python.action.shape, ts.action.shape);
  assert.deepEqual(Buffer.from(python.action.bytes()), Buffer.from(ts.action.bytes()), 'identical float32 bytes');
  assert.deepEqual({ dt_s: python.dt_s, model: python.model, instruction: python.instruction }, { dt_s: ts.dt_s, model: ts.model, instruction: ts.instruction });
});
