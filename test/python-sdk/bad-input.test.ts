// Every malformed message gets an error reply that names what is wrong, and the Python worker keeps serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encode } from '@msgpack/msgpack';
import { decodeReply, encodeMessage, type Frame } from '../../src/protocol/codec.js';
import type { ErrorCode, WireError } from '../../src/lib/errors.js';
import { spawnPythonWorker } from '../support/python-worker.js';
import { demoAction, RawDealer, sPayload } from './raw-client.js';
import { INTERPRETERS, pythonFor, venvPython } from './venv.js';

// The hostile cases run on both interpreters (venv.ts): msgpack 1.0.3 (Debian, the offline image) and the newest
// from PyPI (the pip install) differ in how they parse, and both must refuse the same way.

const mp = (v: unknown): Frame => encode(v);
const text = (s: string): Frame => Buffer.from(s, 'utf8');
const tref = (extra: Record<string, unknown> = {}) => ({ __tensor__: true, dtype: 'float32', shape: [14], frame: 1, ...extra });
const f32 = (n: number) => new Uint8Array(n * 4);

interface Case {
  name: string;
  frames: Frame[];
  code: ErrorCode;
  message: RegExp;
  path?: string;
  requestId?: string;
}

const LIMITS = { maxMessageBytes: 1_000_000, maxFrames: 8, maxHeaderBytes: 65_536 };
const HOSTILE_DIR = fileURLToPath(new URL('.', import.meta.url));
const MSGPACK_TYPE_X = [0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x78, 0xa4, ...Buffer.from('data')]; // {type: 'x', data: ...
/** A msgpack request whose data is `levels` nested arrays of one (0x91) around nil. */
const deepArrays = (levels: number): Frame => Buffer.concat([Buffer.from(MSGPACK_TYPE_X), Buffer.alloc(levels, 0x91), Buffer.from([0xc0])]);
/** ... or `levels` nested maps {a: {a: ...}}. */
const deepMaps = (levels: number): Frame => Buffer.concat([Buffer.from(MSGPACK_TYPE_X), Buffer.from(Array.from({ length: levels }, () => [0x81, 0xa1, 0x61]).flat()), Buffer.from([0xc0])]);

const CASES: Case[] = [
  { name: 'empty message (delimiter only)', frames: [], code: 'bad_request', message: /empty message/ },
  { name: 'invalid msgpack', frames: [Uint8Array.of(0xc1)], code: 'bad_request', message: /not valid msgpack/ },
  { name: 'truncated msgpack', frames: [Uint8Array.of(0x82, 0xa4, 0x74, 0x79)], code: 'bad_request', message: /not valid msgpack/ },
  { name: 'invalid JSON', frames: [text('{"type": "inference", ')], code: 'bad_request', message: /not valid JSON/ },
  { name: 'header not a map', frames: [mp([1, 2, 3])], code: 'bad_request', message: /must be a map/ },
  { name: 'missing type', frames: [mp({ data: {}, request_id: 'm' })], code: 'bad_request', message: /'type'/ },
  { name: 'type not a string', frames: [mp({ type: 5 })], code: 'bad_request', message: /\/type/, path: '/type' },
  { name: 'request_id not a string', frames: [mp({ type: 'inference', request_id: 7 })], code: 'bad_request', message: /request_id/, path: '/request_id' },
  { name: 'bad traceparent', frames: [mp({ type: 'inference', traceparent: 'zz' })], code: 'bad_request', message: /traceparent/, path: '/traceparent' },
  { name: 'unknown type', frames: [mp({ type: 'dance', data: {} })], code: 'bad_request', message: /'dance'.*health, inference/, path: '/type' },
  { name: 'dtype outside the list', frames: [mp({ type: 'inference', data: { state: tref({ dtype: 'float16' }) } }), f32(14)], code: 'bad_request', message: /unknown dtype "float16"/, path: '/data/state' },
  { name: 'byte length ≠ shape × item size', frames: [mp({ type: 'inference', data: { state: tref() } }), new Uint8Array(55)], code: 'bad_request', message: /needs 56 bytes, got 55/, path: '/data/state' },
  { name: 'invalid shape', frames: [mp({ type: 'inference', data: { state: tref({ shape: [-14] }) } }), f32(14)], code: 'bad_request', message: /shape must be/, path: '/data/state' },
  { name: 'placeholder refers to a missing frame', frames: [mp({ type: 'inference', data: { state: tref({ frame: 2 }) } }), f32(14)], code: 'bad_request', message: /refers to frame 2 but the message has 1 tensor frames/ },
  { name: 'tensor frame not referenced', frames: [mp({ type: 'inference', data: { state: tref() } }), f32(14), f32(1)], code: 'bad_request', message: /2 tensor frames but the header references 1/ },
  { name: 'frame referenced twice', frames: [mp({ type: 'inference', data: { state: tref(), b: tref() } }), f32(14)], code: 'bad_request', message: /referenced twice/ },
  { name: 'both frame and data', frames: [mp({ type: 'inference', data: { state: tref({ data: f32(14) }) } }), f32(14)], code: 'bad_request', message: /either 'frame' or 'data'/ },
  { name: 'inline data of the wrong size', frames: [mp({ type: 'inference', data: { state: { __tensor__: true, dtype: 'float32', shape: [14], data: new Uint8Array(3) } } })], code: 'bad_request', message: /needs 56 bytes, got 3/ },
  { name: 'message above the size limit', frames: [mp({ type: 'inference', data: { state: tref({ dtype: 'uint8', shape: [1_000_001] }) } }), new Uint8Array(1_000_001)], code: 'too_large', message: /limit is 1000000/ },
  { name: 'too many frames', frames: [mp({ type: 'inference' }), ...Array.from({ length: 8 }, () => f32(1))], code: 'too_large', message: /9 frames; the limit is 8/ },
  { name: 'JSON header nested 30,000 deep (within the header limit)', frames: [text(`{"type":"inference","request_id":"deep-1","data":${'['.repeat(30_000)}${']'.repeat(30_000)}}`)], code: 'bad_request', message: /nested deeper than 64/, requestId: 'deep-1' },
  { name: 'JSON header with 60,000 unclosed lists', frames: [text(`{"type":"inference","data":${'['.repeat(60_000)}`)], code: 'bad_request', message: /nested deeper than 64/ },
  { name: 'JSON header one level over the depth limit', frames: [text(`{"type":"inference","data":${'['.repeat(64)}${']'.repeat(64)}}`)], code: 'bad_request', message: /nested deeper than 64/ },
  { name: 'msgpack arrays nested 60,000 deep', frames: [deepArrays(60_000)], code: 'bad_request', message: /nested deeper than 64/ },
  { name: 'msgpack maps nested 1,000 deep (within msgpack\'s own stack, past Python\'s recursion limit)', frames: [deepMaps(1_000)], code: 'bad_request', message: /nested deeper than 64/ },
  { name: 'msgpack arrays nested 1,000 deep', frames: [deepArrays(1_000)], code: 'bad_request', message: /nested deeper than 64/ },
  { name: 'JSON header that is not UTF-8', frames: [Buffer.concat([text('{"type":"inference","instruction":"'), Buffer.from([0xff, 0xfe]), text('"}')])], code: 'bad_request', message: /UTF-8/ },
  { name: 'timeout_ms of 0', frames: [mp({ type: 'inference', timeout_ms: 0 })], code: 'bad_request', message: /timeout_ms/, path: '/timeout_ms' },
  { name: 'negative timeout_ms', frames: [mp({ type: 'inference', timeout_ms: -5 })], code: 'bad_request', message: /timeout_ms/, path: '/timeout_ms' },
  { name: 'infinite timeout_ms', frames: [mp({ type: 'inference', timeout_ms: Number.POSITIVE_INFINITY })], code: 'bad_request', message: /timeout_ms/, path: '/timeout_ms' },
  { name: 'NaN timeout_ms', frames: [mp({ type: 'inference', timeout_ms: Number.NaN })], code: 'bad_request', message: /timeout_ms/, path: '/timeout_ms' },
  { name: 'timeout_ms above one hour', frames: [mp({ type: 'inference', timeout_ms: 3_600_001 })], code: 'bad_request', message: /timeout_ms/, path: '/timeout_ms' },
  { name: 'unknown protocol version', frames: [mp({ type: 'inference', version: 2 })], code: 'bad_request', message: /version/, path: '/version' },
  { name: 'handler whose result is nested past Python\'s recursion limit', frames: [mp({ type: 'debug.deep_result', request_id: 'h-1' })], code: 'worker_error', message: /cannot be encoded/, requestId: 'h-1' },
  { name: 'handler raising an exception that cannot be printed', frames: [mp({ type: 'debug.unprintable_error', request_id: 'h-2' })], code: 'worker_error', message: /_Unprintable/, requestId: 'h-2' },
  { name: 'handler raising a BaseException', frames: [mp({ type: 'debug.base_exception', request_id: 'h-3' })], code: 'internal', message: /_NotAnException/, requestId: 'h-3' },
  { name: 'header above the limit', frames: [mp({ type: 'inference', pad: 'x'.repeat(70_000) })], code: 'too_large', message: /header is \d+ bytes; the limit is 65536/ },
  { name: 'header above the limit, with a request id', frames: [mp({ type: 'inference', request_id: 'big-1', pad: 'x'.repeat(70_000) })], code: 'too_large', message: /the limit is 65536/, requestId: 'big-1' },
  { name: 'demo policy without state', frames: [mp({ type: 'inference', data: { images: {} } })], code: 'bad_request', message: /state/, path: '/data/state' },
  { name: 'demo policy with a 2-D state', frames: [mp({ type: 'inference', data: { state: tref({ shape: [2, 7] }) } }), f32(14)], code: 'bad_request', message: /1-D/, path: '/data/state' },
  { name: 'demo policy with an empty state', frames: [mp({ type: 'inference', data: { state: [] } })], code: 'bad_request', message: /empty/, path: '/data/state' },
];

for (const interpreter of INTERPRETERS) test(`${interpreter}: each malformed message gets the right error code, and the worker still serves afterwards`, async (t) => {
  const worker = await spawnPythonWorker({
    python: await pythonFor(interpreter),
    pythonPath: [HOSTILE_DIR],
    handlers: {
      'debug.deep_result': 'hostile_handlers:deep_result',
      'debug.unprintable_error': 'hostile_handlers:unprintable_error',
      'debug.base_exception': 'hostile_handlers:base_exception',
    },
    extraArgs: ['--max-message-bytes', String(LIMITS.maxMessageBytes), '--max-frames', String(LIMITS.maxFrames), '--max-header-bytes', String(LIMITS.maxHeaderBytes)],
  });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const state = sPayload();

  for (const c of CASES) {
    await t.test(c.name, async () => {
      await dealer.sendFrames(c.frames);
      const frames = await dealer.receiveFrames();
      const reply = decodeReply(frames); // the error reply itself is a valid reply (proto-json/v1/reply.schema.json)
      assert.equal(reply.header.status, 'error');
      const error = reply.header.error as WireError;
      assert.equal(error.code, c.code, error.message);
      assert.match(error.message, c.message);
      assert.equal(error.retryable, false);
      if (c.path !== undefined) assert.equal(error.path, c.path);
      if (c.requestId !== undefined) assert.equal(reply.header.request_id, c.requestId, 'undecodable messages are still answered with their request id');
      // ...and the next good request is served
      const ok = await dealer.request({ type: 'inference', data: { state } });
      assert.equal(ok.header.status, 'success');
      assert.deepEqual(Array.from((ok.header.result as { action: { data: Float32Array } }).action.data), Array.from(demoAction(state.data as Float32Array)));
    });
  }
  assert.equal(worker.process.exitCode, null, 'the worker is still running');
});

test('a JSON request that is malformed gets a JSON error reply (so a JSON client can read it)', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython() });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  await dealer.sendFrames([text('{"type": "inference", "data": {"robot_state": [1, 2]}')]);
  const [frame] = await dealer.receiveFrames();
  assert.equal(frame![0], 0x7b);
  const reply = JSON.parse(frame!.toString('utf8')) as { status: string; error: WireError };
  assert.equal(reply.error.code, 'bad_request');
  // a request id in a good JSON request is echoed in the error
  await dealer.sendFrames(encodeMessage({ type: 'inference', data: { robot_state: 'nope' }, request_id: 'j1' }, 'json'));
  const [second] = await dealer.receiveFrames();
  const err = JSON.parse(second!.toString('utf8')) as { request_id: string; error: WireError };
  assert.equal(err.request_id, 'j1');
  assert.equal(err.error.code, 'bad_request');
  assert.equal(err.error.request_id, 'j1');
});
