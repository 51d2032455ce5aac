// The observation mapping on its own (pure): what the worker receives for the original ROBOTIS observation, what
// passes through untouched (no copy of tensors), and the field each refusal names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../../src/lib/errors.js';
import { mapInferenceData, pointer, ROBOTIS_MAPPING, type ObservationMappingSpec } from '../../src/protocol/observation-mapping.js';
import { Tensor } from '../../src/protocol/tensor.js';

type Obj = Record<string, unknown>;

function refusedAt(data: unknown, path: string, spec: ObservationMappingSpec = ROBOTIS_MAPPING): void {
  assert.throws(() => mapInferenceData(data, spec), (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'bad_request');
    assert.equal(err.path, path);
    return true;
  });
}

test('the original client\'s data {observation: {image, robot_state}, **kwargs} → standard observation with the kwargs beside it', () => {
  const image = [[[0, 128, 255], [1, 2, 3]]];
  const data = { observation: { image, robot_state: [0.5, -1], joint_names: ['a', 'b'] }, speed: 2, instruction: 'go' };
  const before = JSON.stringify(data);
  const out = mapInferenceData(data, ROBOTIS_MAPPING) as Obj;
  assert.deepEqual(Object.keys(out).sort(), ['images', 'instruction', 'joint_names', 'speed', 'state']);
  const img = (out.images as Obj).image as Tensor;
  assert.equal(img.dtype, 'uint8');
  assert.deepEqual(img.shape, [1, 2, 3]);
  assert.deepEqual(img.toNested(), image);
  const state = out.state as Tensor;
  assert.equal(state.dtype, 'float32');
  assert.deepEqual(Array.from(state.data as Float32Array), [0.5, -1]);
  assert.equal(out.speed, 2);
  assert.equal(out.instruction, 'go');
  assert.deepEqual(out.joint_names, ['a', 'b'], 'unmapped observation keys pass through');
  assert.equal(JSON.stringify(data), before, 'the input is not changed');
});

test('the observation at the top of data ({image, robot_state}) is mapped the same way', () => {
  const out = mapInferenceData({ image: [[[1, 2, 3]]], robot_state: [7] }, ROBOTIS_MAPPING) as Obj;
  assert.deepEqual(Object.keys(out).sort(), ['images', 'state']);
  assert.deepEqual((out.state as Tensor).toNested(), [7]);
});

test('a standard observation, and tensors that arrive typed, pass through as the same objects (no copy)', () => {
  const standard = { images: { head: [[[1, 2, 3]]] }, state: [1, 2] };
  assert.equal(mapInferenceData(standard, ROBOTIS_MAPPING), standard);
  const image = new Tensor('uint8', [2, 2, 3], new Uint8Array(12));
  const state = Tensor.of(new Float32Array([1, 2, 3]));
  const out = mapInferenceData({ observation: { image, robot_state: state } }, ROBOTIS_MAPPING) as Obj;
  assert.equal((out.images as Obj).image, image);
  assert.equal(out.state, state);
  for (const other of [undefined, null, 'text', [1, 2], 3]) assert.equal(mapInferenceData(other, ROBOTIS_MAPPING), other);
});

test('a state tensor of another numeric dtype becomes float32', () => {
  const out = mapInferenceData({ robot_state: Tensor.of(new Float64Array([0.25, 4])) }, ROBOTIS_MAPPING) as Obj;
  const state = out.state as Tensor;
  assert.equal(state.dtype, 'float32');
  assert.deepEqual(Array.from(state.data as Float32Array), [0.25, 4]);
});

test('an image camera from the mapping joins the cameras already under images', () => {
  const wrist = new Tensor('uint8', [1, 1, 3], new Uint8Array(3));
  const out = mapInferenceData({ image: [[[1, 2, 3]]], images: { wrist }, robot_state: [1] }, ROBOTIS_MAPPING) as Obj;
  assert.deepEqual(Object.keys(out.images as Obj).sort(), ['image', 'wrist']);
});

test('each bad input is a bad_request naming the field', () => {
  const obs = (o: Obj) => ({ observation: { robot_state: [1], ...o } });
  refusedAt(obs({ image: [[[0, 0, 256]]] }), '/data/observation/image/0/0/2');
  refusedAt(obs({ image: [[[0, 0.5, 0]]] }), '/data/observation/image/0/0/1');
  refusedAt(obs({ image: [[[0, 0, 0]], [[-1, 0, 0]]] }), '/data/observation/image/1/0/0');
  refusedAt(obs({ image: [[[0, 0, '1']]] }), '/data/observation/image/0/0/2');
  refusedAt(obs({ image: [[[0, 0, 0], [0, 0]]] }), '/data/observation/image/0/1');
  refusedAt(obs({ image: [[[0, 0, 0]], [[0, 0, [0]]]] }), '/data/observation/image/1/0/2');
  refusedAt(obs({ image: [[0, 0, 0]] }), '/data/observation/image');
  refusedAt(obs({ image: [[[0, 0, 0, 0]]] }), '/data/observation/image');
  refusedAt(obs({ image: 'pixels' }), '/data/observation/image');
  refusedAt(obs({ image: new Tensor('float32', [1, 1, 3], new Float32Array(3)) }), '/data/observation/image');
  refusedAt(obs({ image: [[[0, 0, 0]]], images: { image: [[[0, 0, 0]]] } }), '/data/observation/image');
  refusedAt(obs({ image: [[[0, 0, 0]]], images: 'x' }), '/data/observation/images');
  refusedAt({ observation: { robot_state: [1, 'x'] } }, '/data/observation/robot_state/1');
  refusedAt({ observation: { robot_state: [[1, 2]] } }, '/data/observation/robot_state');
  refusedAt({ observation: { robot_state: 3 } }, '/data/observation/robot_state');
  refusedAt({ observation: { robot_state: Tensor.of(new Float32Array(4), [2, 2]) } }, '/data/observation/robot_state');
  refusedAt({ observation: { robot_state: [1], state: [1] } }, '/data/observation/robot_state');
  refusedAt({ observation: 'not an object' }, '/data/observation');
  refusedAt({ observation: { robot_state: [1] }, state: [2] }, '/data/state');
});

test('a spec with other peers\' keys (openpi-style: slashes, several state parts, a prompt) maps them the same way', () => {
  const spec: ObservationMappingSpec = { images: { 'observation/image': 'base' }, state: ['observation/joints', 'observation/gripper'], instruction: 'prompt' };
  const out = mapInferenceData({ 'observation/image': [[[9, 9, 9]]], 'observation/joints': [1, 2], 'observation/gripper': [0.5], prompt: 'fold' }, spec) as Obj;
  assert.deepEqual(Object.keys(out).sort(), ['images', 'instruction', 'state']);
  assert.deepEqual((out.state as Tensor).toNested(), [1, 2, 0.5]);
  assert.equal(out.instruction, 'fold');
  assert.deepEqual(((out.images as Obj).base as Tensor).toNested(), [[[9, 9, 9]]]);
  refusedAt({ 'observation/joints': [1] }, '/data/observation~1gripper', spec);
  refusedAt({ 'observation/image': [[[300, 0, 0]]] }, '/data/observation~1image/0/0/0', spec);
  refusedAt({ prompt: 3 }, '/data/prompt', spec);
  refusedAt({ prompt: 'a', instruction: 'b' }, '/data/prompt', spec);
});

test('pointer escapes ~ and / as RFC 6901 says', () => {
  assert.equal(pointer('/data', 'a/b~c'), '/data/a~1b~0c');
  assert.equal(pointer('/data', 3), '/data/3');
});
