// Camera frames converted in the image worker threads: the same bytes as on the loop's thread, errors with their
// codes, the caller's message left intact, and nothing left running after close.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import type { ResizeSpec } from '../../src/ros-bridge/config.js';
import { loadJpegDecoder } from '../../src/ros-bridge/image.js';
import { ImageWorkerPool, inThreadConverter } from '../../src/ros-bridge/image-pool.js';
import type { CompressedImageMsg, ImageMsg } from '../../src/ros-bridge/ros-adapter.js';

const header = { stamp: { sec: 1, nanosec: 0 }, frame_id: 'cam' };

/** A textured RGBA picture (gradients and XOR pattern), so decoding and resizing have real work to get wrong. */
function picture(width: number, height: number, seed: number): Buffer {
  const rgba = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba.set([(x * 3 + seed) & 255, (y * 5) & 255, (x ^ y ^ seed) & 255, 255], i);
    }
  }
  return rgba;
}

function jpegMsg(width: number, height: number, seed: number): CompressedImageMsg {
  return { header, format: 'jpeg', data: new Uint8Array(jpeg.encode({ width, height, data: picture(width, height, seed) }, 85).data) };
}

/** A raw frame with `pad` bytes of padding per row. */
function rawMsg(encoding: 'rgb8' | 'bgra8' | 'mono8', width: number, height: number, pad: number): ImageMsg {
  const ch = encoding === 'mono8' ? 1 : encoding === 'rgb8' ? 3 : 4;
  const step = width * ch + pad;
  const data = new Uint8Array(step * height);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 5)) & 255;
  return { header, height, width, encoding, is_bigendian: 0, step, data };
}

test('frames converted in the worker threads are byte-equal to the loop thread’s conversion (JPEG and raw, resized or not)', async (t) => {
  const decoder = await loadJpegDecoder();
  assert.ok(decoder);
  const pool = new ImageWorkerPool({ size: 2 });
  t.after(() => pool.close());
  pool.start();
  await pool.ready();
  const here = inThreadConverter(decoder);
  const resizes: (ResizeSpec | undefined)[] = [undefined, { width: 224, height: 224, method: 'bilinear' }, { width: 96, height: 64, method: 'nearest' }];
  const cases: { name: string; type: 'image' | 'compressed'; msg: ImageMsg | CompressedImageMsg }[] = [
    { name: 'jpeg 640x480', type: 'compressed', msg: jpegMsg(640, 480, 1) },
    { name: 'jpeg 333x171', type: 'compressed', msg: jpegMsg(333, 171, 2) },
    { name: 'rgb8 padded', type: 'image', msg: rawMsg('rgb8', 320, 240, 4) },
    { name: 'bgra8', type: 'image', msg: rawMsg('bgra8', 64, 48, 0) },
    { name: 'mono8 padded', type: 'image', msg: rawMsg('mono8', 50, 30, 2) },
  ];
  for (const c of cases) {
    for (const resize of resizes) {
      const before = Buffer.from(c.msg.data);
      const [off, on] = await Promise.all([pool.toTensor(c.type, c.msg, resize), here.toTensor(c.type, c.msg, resize)]);
      const what = `${c.name} ${resize ? `${resize.width}x${resize.height} ${resize.method}` : 'as is'}`;
      assert.equal(off.dtype, 'uint8', what);
      assert.deepEqual(off.shape, on.shape, what);
      assert.ok(Buffer.from(off.bytes()).equals(Buffer.from(on.bytes())), `${what}: byte-equal`);
      // The message still belongs to ROS and other subscribers: its bytes were copied, not transferred away.
      assert.equal(c.msg.data.byteLength, before.byteLength, `${what}: message not detached`);
      assert.ok(Buffer.from(c.msg.data).equals(before), `${what}: message unchanged`);
    }
  }
});

test('conversion errors come back from the worker with their code; after close, conversions are refused', async () => {
  const pool = new ImageWorkerPool({ size: 1 });
  pool.start();
  await pool.ready();
  await assert.rejects(pool.toTensor('compressed', { header, format: 'jpeg', data: new Uint8Array([1, 2, 3]) }, undefined), { code: 'bad_request', message: /JPEG decode failed/ });
  await assert.rejects(pool.toTensor('compressed', { header, format: 'png', data: new Uint8Array([1]) }, undefined), { code: 'bad_request', message: /only JPEG/ });
  const ok = await pool.toTensor('image', rawMsg('rgb8', 4, 4, 0), undefined);
  assert.deepEqual(ok.shape, [4, 4, 3], 'the worker still answers after errors');
  await pool.close();
  await pool.close(); // idempotent
  await assert.rejects(pool.toTensor('image', rawMsg('rgb8', 4, 4, 0), undefined), { code: 'cancelled' });
});

test('a pool whose workers cannot load their decoder still converts raw frames and refuses JPEG with install instructions', async () => {
  const pool = new ImageWorkerPool({ size: 1, jpegModule: 'no-such-jpeg-decoder' });
  pool.start();
  try {
    await pool.ready();
    await assert.rejects(pool.toTensor('compressed', jpegMsg(8, 8, 0), undefined), { code: 'unavailable', message: /npm install jpeg-js/ });
    assert.deepEqual((await pool.toTensor('image', rawMsg('mono8', 3, 2, 0), undefined)).shape, [2, 3, 3]);
  } finally {
    await pool.close();
  }
});

test('close() ends every worker thread: no handles left', async () => {
  const before = process.getActiveResourcesInfo().sort();
  const pool = new ImageWorkerPool({ size: 3 });
  pool.start();
  await pool.ready();
  assert.ok(process.getActiveResourcesInfo().length > before.length, 'the workers are visible while running');
  const pending = assert.rejects(pool.toTensor('compressed', jpegMsg(640, 480, 3), undefined), { code: 'cancelled' });
  await pool.close();
  await pending;
  assert.deepEqual(process.getActiveResourcesInfo().sort(), before);
});
