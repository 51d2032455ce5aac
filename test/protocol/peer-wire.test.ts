// The peers' wire formats at the byte level: openpi's msgpack-numpy (the golden 77 bytes from its encoder, bin keys),
// and .npy as GR00T sends it (versions 1-3, Fortran order, refusals). The real clients are in test/peers/.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GatewayError } from '../../src/lib/errors.js';
import { DEFAULT_LIMITS } from '../../src/protocol/codec.js';
import { readNpy, writeNpy } from '../../src/protocol/npy.js';
import { decodeOpenpi, encodeOpenpi } from '../../src/protocol/openpi-msgpack.js';
import { mapInferenceData, OBSERVATION_PRESETS } from '../../src/protocol/observation-mapping.js';
import { Tensor } from '../../src/protocol/tensor.js';

// openpi_client.msgpack_numpy.packb({"actions": np.arange(6, dtype=np.float32).reshape(2, 3)})
const GOLDEN = Buffer.concat([
  Buffer.from([0x81, 0xa7]), Buffer.from('actions'),
  Buffer.from([0x84, 0xc4, 0x0b]), Buffer.from('__ndarray__'), Buffer.from([0xc3]),
  Buffer.from([0xc4, 0x04]), Buffer.from('data'), Buffer.from([0xc4, 0x18]), Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer),
  Buffer.from([0xc4, 0x05]), Buffer.from('dtype'), Buffer.from([0xa3]), Buffer.from('<f4'),
  Buffer.from([0xc4, 0x05]), Buffer.from('shape'), Buffer.from([0x92, 0x02, 0x03]),
]);

test("openpi: encoding gives openpi's own bytes (bin keys), and decoding them gives the tensor back", () => {
  assert.equal(GOLDEN.byteLength, 77);
  const encoded = encodeOpenpi({ actions: new Tensor('float32', [2, 3], new Float32Array([0, 1, 2, 3, 4, 5])) });
  assert.deepEqual(encoded, GOLDEN);
  const { value } = decodeOpenpi(GOLDEN, DEFAULT_LIMITS);
  const actions = (value as { actions: Tensor }).actions;
  assert.ok(actions instanceof Tensor);
  assert.deepEqual(actions.toNested(), [[0, 1, 2], [3, 4, 5]]);
});

test('openpi: a message above the limit is too_large before decoding', () => {
  assert.throws(() => decodeOpenpi(GOLDEN, { ...DEFAULT_LIMITS, maxMessageBytes: 64 }), (e: GatewayError) => e.code === 'too_large');
});

/** A .npy file as numpy writes it, with a header of our choosing. */
function npy(major: 1 | 2 | 3, header: string, data: Uint8Array): Uint8Array {
  const lengthBytes = major === 1 ? 2 : 4;
  const pre = 8 + lengthBytes;
  header += ' '.repeat(64 - ((pre + header.length + 1) % 64 || 64)) + '\n';
  const out = new Uint8Array(pre + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), pre);
  out.set(data, pre + header.length);
  return out;
}

test('npy: writes what numpy writes (data at a multiple of 64) and reads versions 1-3 as views', () => {
  const t = new Tensor('float32', [2, 3], new Float32Array([0, 1, 2, 3, 4, 5]));
  const file = writeNpy(t);
  assert.equal(file.byteLength - t.byteLength, 128);
  assert.match(Buffer.from(file.subarray(10, 128)).toString('latin1'), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} +\n$/);
  for (const major of [1, 2, 3] as const) {
    const { tensor, copiedBytes } = readNpy(npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", t.bytes()), '/x');
    assert.deepEqual(tensor.toNested(), [[0, 1, 2], [3, 4, 5]]);
    assert.equal(copiedBytes, 0);
  }
  assert.deepEqual(readNpy(npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(new BigInt64Array([1n, 2n, 3n]).buffer)), '/x').tensor.toNested(), [1, 2, 3]);
});

test('npy: Fortran order is read into C order; structured, big-endian, object and short data are refused', () => {
  // [[0, 1, 2], [3, 4, 5]] in Fortran order is 0 3 1 4 2 5.
  const f = npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", new Uint8Array(new Float32Array([0, 3, 1, 4, 2, 5]).buffer));
  assert.deepEqual(readNpy(f, '/x').tensor.toNested(), [[0, 1, 2], [3, 4, 5]]);
  const refuse = (file: Uint8Array) => assert.throws(() => readNpy(file, '/x'), (e: GatewayError) => e.code === 'bad_request' && e.path === '/x');
  refuse(npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)));
  refuse(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)));
  refuse(npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)));
  refuse(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(8)));
  refuse(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
});

test('groot-n15 mapping: video/state prefixes, the latest time step as a view, [str] task', () => {
  const video = new Tensor('uint8', [2, 1, 1, 3], new Uint8Array([1, 1, 1, 9, 9, 9]));
  const arm = new Tensor('float32', [1, 2], new Float32Array([0.5, 1.5]));
  const data = mapInferenceData({ 'video.ego': video, 'state.arm': arm, 'state.waist': new Tensor('float64', [1, 1], new Float64Array([2])), 'annotation.human.action.task_description': ['go'] }, OBSERVATION_PRESETS['groot-n15']!) as Record<string, unknown>;
  const ego = (data.images as Record<string, Tensor>).ego!;
  assert.deepEqual(ego.shape, [1, 1, 3]);
  assert.deepEqual(Array.from(ego.data as Uint8Array), [9, 9, 9]);
  assert.equal(ego.data.buffer, video.data.buffer, 'a view on the received bytes');
  assert.deepEqual(Array.from((data.state as Tensor).data as Float32Array), [0.5, 1.5, 2]);
  assert.equal(data.instruction, 'go');
});
