// Camera conversion (encodings, row padding, resizing, JPEG without a decoder) and the chunk player's blending
// and clamping, on hand-computed values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkPlayer, trajectoryForGroup } from '../../src/ros-bridge/chunk-player.js';
import type { BlendingSpec } from '../../src/ros-bridge/config.js';
import { compressedMsgToTensor, imageMsgToTensor, missingJpegDecoder } from '../../src/ros-bridge/image.js';
import type { ImageMsg } from '../../src/ros-bridge/ros-adapter.js';

const header = { stamp: { sec: 1, nanosec: 0 }, frame_id: 'cam' };
const image = (encoding: string, width: number, height: number, step: number, data: number[]): ImageMsg => ({
  header,
  height,
  width,
  encoding,
  is_bigendian: 0,
  step,
  data: Uint8Array.from(data),
});

test('rgb8, bgr8 and mono8 become RGB uint8 [H, W, 3]; row padding (step) is skipped', () => {
  // 2x2, step 8 (2 bytes of padding per row).
  const rgb = imageMsgToTensor(image('rgb8', 2, 2, 8, [1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99]));
  assert.deepEqual(rgb.shape, [2, 2, 3]);
  assert.equal(rgb.dtype, 'uint8');
  assert.deepEqual([...rgb.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const bgr = imageMsgToTensor(image('bgr8', 2, 1, 6, [1, 2, 3, 4, 5, 6]));
  assert.deepEqual([...bgr.data], [3, 2, 1, 6, 5, 4]);
  const mono = imageMsgToTensor(image('mono8', 3, 1, 3, [10, 20, 30]));
  assert.deepEqual([...mono.data], [10, 10, 10, 20, 20, 20, 30, 30, 30]);
});

test('bad images are refused with bad_request, naming the problem', () => {
  assert.throws(() => imageMsgToTensor(image('rgb16', 1, 1, 6, [0, 0, 0, 0, 0, 0])), { code: 'bad_request', message: /rgb16.*not supported/ });
  assert.throws(() => imageMsgToTensor(image('rgb8', 2, 2, 6, [1, 2, 3])), { code: 'bad_request', message: /needs 12 bytes, got 3/ });
});

test('resize: nearest picks pixel centres, bilinear interpolates with half-pixel centres', () => {
  // 4x1 mono gradient 0, 100, 200, 255 → 2x1.
  const src = image('mono8', 4, 1, 4, [0, 100, 200, 255]);
  const nearest = imageMsgToTensor(src, { width: 2, height: 1, method: 'nearest' });
  assert.deepEqual(nearest.shape, [1, 2, 3]);
  assert.deepEqual([...nearest.data], [100, 100, 100, 255, 255, 255]);
  const bilinear = imageMsgToTensor(src, { width: 2, height: 1, method: 'bilinear' });
  // Output x=0 samples source 0.5 → (0+100)/2 = 50; x=1 samples 2.5 → (200+255)/2 = 227.5 → 228.
  assert.deepEqual([...bilinear.data], [50, 50, 50, 228, 228, 228]);
  // Upscale 2x2 → 224x224 keeps corners and the shape.
  const up = imageMsgToTensor(image('rgb8', 2, 2, 6, [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]), { width: 224, height: 224, method: 'bilinear' });
  assert.deepEqual(up.shape, [224, 224, 3]);
  assert.deepEqual([...up.data.subarray(0, 3)], [0, 0, 0]);
  assert.deepEqual([...up.data.subarray(up.data.length - 3)], [0, 0, 255]);
});

test('CompressedImage without a JPEG decoder is refused with `unavailable` and says what to install', () => {
  const msg = { header, format: 'rgb8; jpeg compressed bgr8', data: new Uint8Array([0xff, 0xd8]) };
  assert.throws(() => compressedMsgToTensor(msg, missingJpegDecoder), { code: 'unavailable', message: /npm install jpeg-js/ });
  assert.throws(() => compressedMsgToTensor({ ...msg, format: 'png' }, missingJpegDecoder), { code: 'bad_request', message: /only JPEG/ });
});

const blending = (method: BlendingSpec['method'], extra: Partial<BlendingSpec> = {}): BlendingSpec => ({ method, spliceWindow: 6, ensembleCoefficient: 0.01, ...extra });
/** A chunk whose step k for joint j is base[j] + slope * (k + 1). */
const chunk = (base: number[], slope: number, horizon: number, obsMs: number, dtMs = 100) => {
  const action = new Float32Array(horizon * base.length);
  for (let k = 0; k < horizon; k++) for (let j = 0; j < base.length; j++) action[k * base.length + j] = base[j]! + slope * (k + 1);
  return { action, horizon, dof: base.length, dtMs, obsMs };
};

test('replace: step k of a chunk is due at obs + (k+1)·dt; steps already due are dropped; trajectory time_from_start = k·dt', () => {
  const player = new ChunkPlayer({ joints: ['a', 'b'], blending: blending('replace') });
  const r = player.accept(chunk([0, 1], 0.5, 4, 1000), 1150, 1200, Float64Array.from([0, 1]));
  assert.equal(r.steps, 3); // step 0 (due 1100) is past at 1150
  assert.deepEqual(player.steps.map((s) => s.tMs), [1200, 1300, 1400]);
  assert.deepEqual([...player.steps[0]!.pos], [1, 2]);
  const msg = trajectoryForGroup(player.steps, { name: 'g', topic: '/g', type: 'joint_trajectory', joints: ['b', 'a'] }, [1, 0], { sec: 7, nanosec: 5 }, 1000, 1150);
  assert.deepEqual(msg.header.stamp, { sec: 7, nanosec: 5 });
  assert.deepEqual(msg.joint_names, ['b', 'a']);
  assert.deepEqual(msg.points.map((p) => p.time_from_start), [
    { sec: 0, nanosec: 200_000_000 },
    { sec: 0, nanosec: 300_000_000 },
    { sec: 0, nanosec: 400_000_000 },
  ]);
  assert.deepEqual(msg.points[0]!.positions, [2, 1]);
  assert.equal(player.remaining(1250), 2);
  player.advance(1300);
  assert.deepEqual([...player.lastCommanded!], [1.5, 2.5]);
  assert.equal(player.remaining(1300), 1);
});

test('nearest_splice: the new chunk starts at the step (among its first N) nearest to the last command, at the next tick', () => {
  const player = new ChunkPlayer({ joints: ['a'], blending: blending('nearest_splice', { spliceWindow: 3 }) });
  player.accept(chunk([0], 1, 5, 0), 0, 100); // targets 1..5 at 100..500
  player.advance(300); // last commanded = 3
  // New chunk 1.2, 2.2, 3.2, 4.2, ...: nearest to 3 among the first 3 is index 1 (2.2)? |2.2-3|=0.8, |3.2-3|=0.2 → index 2.
  const r = player.accept(chunk([0.2], 1, 6, 250), 310, 400);
  assert.equal(r.spliceIndex, 2);
  assert.deepEqual(player.steps.map((s) => s.tMs), [400, 500, 600, 700]);
  assert.ok(Math.abs(player.steps[0]!.pos[0]! - 3.2) < 1e-6);
});

test('weighted_average: overlapping steps average old and new with exp(-m·count) weights (LeRobot temporal ensembling)', () => {
  const m = 0.5;
  const player = new ChunkPlayer({ joints: ['a'], blending: blending('weighted_average', { ensembleCoefficient: m }) });
  player.accept(chunk([0], 0, 4, 0), 0, 100); // all targets 0 at 100..400
  player.accept(chunk([1], 0, 4, 100), 150, 200); // targets 1 at 200..500 (step at 200 is > 150)
  const w = Math.exp(-m * 1);
  const steps = player.steps;
  assert.deepEqual(steps.map((s) => s.tMs), [200, 300, 400, 500]);
  for (const s of steps.slice(0, 3)) assert.ok(Math.abs(s.pos[0]! - w / (1 + w)) < 1e-9, `${s.pos[0]}`);
  assert.equal(steps[3]!.pos[0], 1); // only the new chunk covers 500
  assert.equal(steps[0]!.count, 2);
});

test('clamps: positions to [min, max], then each step to at most maxVelocity·dt from the previous target', () => {
  const player = new ChunkPlayer({
    joints: ['a', 'b'],
    blending: blending('replace'),
    limits: { a: { min: -1, max: 0.25 }, b: { maxVelocity: 1 } }, // b: 1 unit/s = 0.1 per 100 ms step
  });
  const r = player.accept(chunk([0, 0], 0.1, 5, 0, 100), 0, 100, Float64Array.from([0, -0.5]));
  const a = player.steps.map((s) => s.pos[0]!);
  const b = player.steps.map((s) => s.pos[1]!);
  assert.deepEqual(a.map((x) => Math.round(x * 1e6) / 1e6), [0.1, 0.2, 0.25, 0.25, 0.25]);
  // b wants 0.1..0.5 but starts from the measured -0.5 and may move 0.1 per step.
  assert.deepEqual(b.map((x) => Math.round(x * 1e6) / 1e6 + 0), [-0.4, -0.3, -0.2, -0.1, 0]);
  assert.equal(r.clampedValues, 3 + 5);
});

test('CompressedImage goes through the pluggable decoder, then colour conversion and resizing', () => {
  const seen: string[] = [];
  // A decoder for a trivial test format (the real one is jpeg-js, loaded when installed).
  const decoder = {
    name: 'test',
    decode(format: string, data: Uint8Array) {
      seen.push(format);
      return { width: 2, height: 1, stride: 6, encoding: 'bgr8', data };
    },
  };
  const tensor = compressedMsgToTensor({ header, format: 'bgr8; jpeg compressed bgr8', data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }, decoder, { width: 1, height: 1, method: 'nearest' });
  assert.deepEqual(seen, ['bgr8; jpeg compressed bgr8']);
  assert.deepEqual(tensor.shape, [1, 1, 3]);
  assert.deepEqual([...tensor.data], [6, 5, 4]);
});
