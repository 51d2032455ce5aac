import assert from 'node:assert/strict';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { compressedMsgToTensor, loadJpegDecoder } from '../../src/ros-bridge/image.js';

test('a sensor_msgs/CompressedImage JPEG becomes an RGB uint8 tensor, resized when asked', async () => {
  const decoder = await loadJpegDecoder();
  assert.ok(decoder, 'jpeg-js is a dependency, so the decoder loads');
  const width = 64;
  const height = 48;
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([200, 40, 10, 255], i * 4); // a flat orange frame
  const { data } = jpeg.encode({ width, height, data: rgba }, 95);
  const msg = { header: { stamp: { sec: 1, nanosec: 0 }, frame_id: 'cam' }, format: 'jpeg', data: new Uint8Array(data) };
  const full = compressedMsgToTensor(msg, decoder);
  assert.deepEqual(full.shape, [48, 64, 3]);
  const [r, g, b] = [full.data[0] as number, full.data[1] as number, full.data[2] as number];
  assert.ok(Math.abs(r - 200) < 6 && Math.abs(g - 40) < 6 && Math.abs(b - 10) < 6, `pixel ${r},${g},${b}`);
  const small = compressedMsgToTensor(msg, decoder, { width: 32, height: 24, method: 'bilinear' });
  assert.deepEqual(small.shape, [24, 32, 3]);
  assert.throws(() => compressedMsgToTensor({ ...msg, data: new Uint8Array([1, 2, 3]) }, decoder), { code: 'bad_request' });
  assert.throws(() => compressedMsgToTensor({ ...msg, format: 'png' }, decoder), { code: 'bad_request' });
});
