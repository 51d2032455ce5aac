import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { decodeMessage, decodeRequest, encodeMessage, DEFAULT_LIMITS, type Frame } from '../../src/protocol/codec.js';
import { Tensor, asTensor, viewTensor } from '../../src/protocol/tensor.js';

const image = () => Tensor.of(Uint8Array.from({ length: 224 * 224 * 3 }, (_, i) => i % 251), [224, 224, 3]);
const state = () => Tensor.of(Float32Array.from({ length: 14 }, (_, i) => i / 10));
const asBuffers = (frames: Frame[]) => frames.map((f) => Buffer.from(f)); // as received: fresh memory per frame

describe('binary codec', () => {
  test('round trip of the L observation keeps dtype, shape and values', () => {
    const obs = { images: { a: image(), b: image(), c: image() }, state: state(), instruction: 'pick' };
    const frames = encodeMessage({ type: 'inference', data: obs, request_id: 'r1' }, 'binary');
    assert.equal(frames.length, 5);
    const { header, codec, copiedBytes } = decodeRequest(asBuffers(frames));
    assert.equal(codec, 'binary');
    assert.equal(copiedBytes, 0);
    const data = header.data as { images: Record<string, Tensor>; state: Tensor; instruction: string };
    assert.deepEqual(data.images.b!.shape, [224, 224, 3]);
    assert.equal(data.images.b!.dtype, 'uint8');
    assert.deepEqual([...data.images.c!.data.slice(0, 5)], [0, 1, 2, 3, 4]);
    assert.deepEqual([...data.state.data], [...state().data]);
    assert.equal(data.instruction, 'pick');
  });

  test('decoded tensors are views that share the received frame memory (no copy)', () => {
    const frames = asBuffers(encodeMessage({ result: { action: Tensor.of(new Float32Array(16 * 14).fill(1), [16, 14]) } }));
    const { header } = decodeMessage(frames);
    const action = (header.result as { action: Tensor }).action;
    assert.equal(action.data.buffer, frames[1]!.buffer);
    assert.equal(action.data.byteOffset, frames[1]!.byteOffset);
    new Float32Array(frames[1]!.buffer, frames[1]!.byteOffset, 1)[0] = 42; // write through the frame...
    assert.equal(action.data[0], 42); // ...and the tensor sees it
  });

  test('encoding puts the tensor bytes in a frame without copying them', () => {
    const t = state();
    const frames = encodeMessage({ data: { state: t } });
    assert.equal(frames[1]!.buffer, t.data.buffer);
  });

  test('bool, int64 and 0-d tensors survive', () => {
    const b = new Tensor('bool', [3], Uint8Array.from([1, 0, 1]));
    const i = Tensor.of(BigInt64Array.from([-5n, 9007199254740993n]), [2]);
    const s = Tensor.of(Float64Array.from([Math.PI]), []);
    const { header } = decodeMessage(asBuffers(encodeMessage({ b, i, s })));
    assert.equal((header.b as Tensor).dtype, 'bool');
    assert.deepEqual([...(header.i as Tensor).data], [-5n, 9007199254740993n]);
    assert.deepEqual((header.s as Tensor).shape, []);
    assert.equal((header.s as Tensor).data[0], Math.PI);
  });
});

describe('msgpack (inline) codec', () => {
  test('round trip; a misaligned inline tensor is copied once and counted', () => {
    const frames = encodeMessage({ result: { action: Tensor.of(Float32Array.from([1, 2, 3, 4]), [2, 2]) } }, 'msgpack');
    assert.equal(frames.length, 1);
    const aligned = Buffer.alloc(frames[0]!.byteLength + 8);
    let decoded: ReturnType<typeof decodeMessage> | undefined;
    // Try every start offset: the inline bytes land on an aligned address for some and not for others.
    const copies = new Set<number>();
    for (let shift = 0; shift < 4; shift++) {
      const view = aligned.subarray(shift, shift + frames[0]!.byteLength);
      view.set(frames[0]!);
      decoded = decodeMessage([view]);
      copies.add(decoded.copiedBytes);
      assert.equal(decoded.codec, 'msgpack');
      assert.deepEqual([...((decoded.header.result as { action: Tensor }).action.data)], [1, 2, 3, 4]);
    }
    assert.deepEqual([...copies].sort(), [0, 16]);
  });
});

describe('json codec', () => {
  test('tensors become nested lists, as the original design sends them', () => {
    const frames = encodeMessage({ status: 'success', result: { action: Tensor.of(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]) } }, 'json');
    assert.equal(frames.length, 1);
    const text = Buffer.from(frames[0]!).toString();
    assert.deepEqual(JSON.parse(text).result.action, [[1, 2, 3], [4, 5, 6]]);
    const { header, codec } = decodeMessage(frames);
    assert.equal(codec, 'json');
    assert.deepEqual(asTensor((header.result as { action: unknown }).action, 'float32').shape, [2, 3]);
  });

  test('a ragged nested list is a bad_request', () => {
    assert.throws(() => asTensor([[1, 2], [3]], 'float32', '/data/state'), { code: 'bad_request', path: '/data/state' });
  });
});

describe('bad input gets a typed error naming what is wrong', () => {
  const ref = (extra: object) => ({ __tensor__: true, dtype: 'float32', shape: [2], frame: 1, ...extra });
  const cases: Array<[string, Frame[], string, RegExp]> = [
    ['empty message', [], 'bad_request', /empty message/],
    ['invalid msgpack', [Buffer.from([0xc1])], 'bad_request', /not valid msgpack/],
    ['invalid JSON', [Buffer.from('{"type": ')], 'bad_request', /not valid JSON/],
    ['header not a map', [Buffer.from(encode([1, 2]))], 'bad_request', /must be a map/],
    ['missing type', [Buffer.from(encode({ data: {} }))], 'bad_request', /missing required field 'type'/],
    ['unknown dtype', [Buffer.from(encode({ type: 'x', data: ref({ dtype: 'complex64' }) })), Buffer.alloc(8)], 'bad_request', /unknown dtype "complex64"/],
    ['byte length not shape x item size', [Buffer.from(encode({ type: 'x', data: ref({}) })), Buffer.alloc(7)], 'bad_request', /needs 8 bytes, got 7/],
    ['missing tensor frame', [Buffer.from(encode({ type: 'x', data: ref({ frame: 2 }) })), Buffer.alloc(8)], 'bad_request', /refers to frame 2/],
    ['extra tensor frame', [Buffer.from(encode({ type: 'x', data: ref({}) })), Buffer.alloc(8), Buffer.alloc(8)], 'bad_request', /2 tensor frames but the header references 1/],
    ['bad shape', [Buffer.from(encode({ type: 'x', data: ref({ shape: [-1] }) })), Buffer.alloc(8)], 'bad_request', /shape must be/],
    ['too many frames', [Buffer.from(encode({ type: 'x' })), ...Array.from({ length: 64 }, () => Buffer.alloc(1))], 'too_large', /limit is 64/],
  ];
  for (const [name, frames, code, message] of cases) {
    test(name, () => assert.throws(() => decodeRequest(frames), (err: { code: string; message: string }) => err.code === code && message.test(err.message)));
  }

  test('message above the size limit', () => {
    const limits = { ...DEFAULT_LIMITS, maxMessageBytes: 1000 };
    assert.throws(() => decodeRequest([Buffer.from(encode({ type: 'x' })), Buffer.alloc(1000)], limits), { code: 'too_large' });
  });

  test('viewTensor rejects a dtype outside the closed list', () => {
    assert.throws(() => viewTensor('float16', [1], new Uint8Array(2), '/x'), { code: 'bad_request', path: '/x' });
  });
});
