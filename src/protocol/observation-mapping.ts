// Turns a peer's inference data into the standard observation, once, at the gateway's edge (the request pipeline
// calls it for every inference on every door, before routing), so no door and no policy has to know peer formats:
//
//   standard observation   {images?: {<camera>: uint8 [H,W,3]}, state: float32 [dof], instruction?: string}
//
// Where the observation is: the original ROBOTIS client sends `data = {observation: <obs>, **kwargs}`, so when
// `data.observation` is present it is the observation and the other keys of `data` are the caller's kwargs; else
// `data` itself is the observation (our own clients and the bare HTTP body). Either way the worker receives one
// flat object: the mapped observation's fields plus the kwargs beside them, unchanged (a key in both is a
// `bad_request`: silently letting one win would hand the policy input the caller did not mean).
//
// What a mapping does (an `ObservationMappingSpec`, declarative so it can come from the config):
//   - a source key listed in `images` becomes `images.<camera>`: uint8 [H,W,3]; nested lists are checked
//     (rectangular, integers 0..255) and packed into a Uint8Array; a uint8 tensor passes as is (no copy);
//   - the source keys listed in `state` (1-D numbers each) are concatenated in order into `state`: float32;
//   - the source key named by `instruction` (a string) becomes `instruction`;
//   - every other key passes through unchanged (the standard keys too: validating them is the worker's job, and
//     a policy may need keys no mapping knows). Whether state is required is also the worker's call.
// Every refusal is a `bad_request` whose `path` is a JSON pointer to where the caller put the bad value.
//
// Per-framework mappings: each framework's config names one (`frameworks.<name>.observation`: a preset below or a
// spec of its own), checked at start (config.ts); the pipeline maps with the framework's, or ROBOTIS_MAPPING when
// none is named. Source keys are literal keys (no path syntax), so the peers' flat keys fit as they are. The peers'
// own shapes need three more spec fields:
//   - `imagePrefix` / `statePrefix`: every key starting with it is a camera (named by the rest of the key) / a part
//     of the state (in the order the keys arrive: Python dicts keep insertion order; list `state` to fix it);
//   - `timeAxis`: GR00T sends a leading time axis ((T,H,W,3), (T,D)) and the task as `[str]`; the latest step
//     (a view, no copy) and the one string are taken, since the standard observation is one step;
//   - `imageLayout: 'chw'`: openpi's ALOHA sends images as (3,H,W); they are transposed (one copy) to [H,W,3],
//     those under the standard `images` key included.
// Pure: no I/O, no state.
import { GatewayError } from '../lib/errors.js';
import { ShmTensorRef } from './shm-descriptor.js';
import { Tensor, type TypedArray } from './tensor.js';

/** A declarative mapping from a peer's observation keys to the standard observation. */
export interface ObservationMappingSpec {
  /** Source key → camera name under `images`; the value must be uint8 [H,W,3]. */
  readonly images?: Readonly<Record<string, string>>;
  /** Every source key starting with this is an image, its camera named by the rest of the key (GR00T: `video.`). */
  readonly imagePrefix?: string;
  /** Source keys of 1-D number arrays, concatenated in this order into `state` (float32). All or none must be present. */
  readonly state?: readonly string[];
  /** When `state` is not listed: every source key starting with this is a state part, in arrival order (GR00T: `state.`). */
  readonly statePrefix?: string;
  /** Source key of the instruction text. */
  readonly instruction?: string;
  /** Arrays carry a leading time axis and the instruction is a list of one string (GR00T): take the latest step. */
  readonly timeAxis?: boolean;
  /** Images arrive as [3,H,W] (openpi ALOHA) and are transposed to [H,W,3]. Default `hwc`. */
  readonly imageLayout?: 'hwc' | 'chw';
}

/** Fields of an ObservationMappingSpec (config.ts checks a spec against them). */
export const OBSERVATION_SPEC_FIELDS = ['images', 'imagePrefix', 'state', 'statePrefix', 'instruction', 'timeAxis', 'imageLayout'] as const;

/** The original ROBOTIS example observation `{image: [H][W][3], robot_state: [dof]}`. */
export const ROBOTIS_MAPPING: ObservationMappingSpec = Object.freeze({
  images: Object.freeze({ image: 'image' }),
  state: Object.freeze(['robot_state']),
});

/**
 * Named mappings for the peers' published observations (openpi: src/openpi/policies/*_policy.py and
 * docs/remote_inference.md; GR00T N1.5: scripts/inference_service.py).
 */
export const OBSERVATION_PRESETS: Readonly<Record<string, ObservationMappingSpec>> = Object.freeze({
  robotis: ROBOTIS_MAPPING,
  'openpi-droid': Object.freeze({
    images: Object.freeze({ 'observation/exterior_image_1_left': 'exterior_image_1_left', 'observation/wrist_image_left': 'wrist_image_left' }),
    state: Object.freeze(['observation/joint_position', 'observation/gripper_position']),
    instruction: 'prompt',
  }),
  // ALOHA sends the standard `state` and `images: {cam_high, ...}` already, but channels first.
  'openpi-aloha': Object.freeze({ instruction: 'prompt', imageLayout: 'chw' as const }),
  'openpi-generic': Object.freeze({
    images: Object.freeze({ 'observation/image': 'image', 'observation/wrist_image': 'wrist_image' }),
    state: Object.freeze(['observation/state']),
    instruction: 'prompt',
  }),
  'groot-n15': Object.freeze({ imagePrefix: 'video.', statePrefix: 'state.', instruction: 'annotation.human.action.task_description', timeAxis: true }),
});

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor) && !(v instanceof ShmTensorRef);
}

/** `path` extended by one key, escaped as RFC 6901 says ('~' → '~0', '/' → '~1'): openpi's keys contain '/'. */
export function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function bad(message: string, path: string): GatewayError {
  return new GatewayError('bad_request', `${path}: ${message}`, { path });
}

/**
 * Maps an inference request's `data` (at `path`, normally `/data`) with `spec`. Returns `data` itself when there
 * is nothing to map, else a new object; never mutates its input. Throws `bad_request` naming the field.
 * @example mapInferenceData({observation: {image: [[[0, 0, 0]]], robot_state: [1, 2]}, speed: 2}, ROBOTIS_MAPPING)
 *          // → {images: {image: uint8 [1,1,3]}, state: float32 [2], speed: 2}
 */
export function mapInferenceData(data: unknown, spec: ObservationMappingSpec, path = '/data'): unknown {
  if (!isObject(data)) return data; // not an observation at all: the worker answers for it
  if (data.observation === undefined) return mapObservation(data, spec, path);
  const obsPath = pointer(path, 'observation');
  if (!isObject(data.observation)) throw bad('the observation must be an object of named arrays', obsPath);
  const mapped = mapObservation(data.observation, spec, obsPath);
  const out: Obj = { ...(mapped as Obj) };
  for (const [key, value] of Object.entries(data)) {
    if (key === 'observation') continue;
    if (key in out) throw bad(`'${key}' is both a keyword argument and a field of the (mapped) observation`, pointer(path, key));
    out[key] = value;
  }
  return out;
}

/** Maps one observation object (at `path`) with `spec`; returns it unchanged when there is nothing to map. */
export function mapObservation(obs: Obj, spec: ObservationMappingSpec, path: string): Obj {
  const { imagePrefix, statePrefix } = spec;
  const keys = Object.keys(obs);
  const imageKeys = Object.keys(spec.images ?? {}).filter((k) => obs[k] !== undefined);
  if (imagePrefix) for (const k of keys) if (k.startsWith(imagePrefix) && k.length > imagePrefix.length && !imageKeys.includes(k)) imageKeys.push(k);
  const listed = spec.state !== undefined;
  const stateKeys = listed ? spec.state!.filter((k) => obs[k] !== undefined) : statePrefix ? keys.filter((k) => k.startsWith(statePrefix) && obs[k] !== undefined) : [];
  const instructionKey = spec.instruction !== undefined && obs[spec.instruction] !== undefined ? spec.instruction : undefined;
  const chw = spec.imageLayout === 'chw';
  if (imageKeys.length === 0 && stateKeys.length === 0 && instructionKey === undefined && !(chw && obs.images !== undefined)) return obs;

  const sources = new Set<string>([...imageKeys, ...stateKeys, ...(instructionKey !== undefined ? [instructionKey] : [])]);
  const out: Obj = {};
  for (const [key, value] of Object.entries(obs)) if (!sources.has(key)) out[key] = value;
  const step = (value: unknown, rank: number) => (spec.timeAxis ? latestStep(value, rank) : value);

  if (imageKeys.length > 0 || (chw && out.images !== undefined)) {
    if (out.images !== undefined && !isObject(out.images)) throw bad('images must map camera names to uint8 [H,W,3] arrays', pointer(path, 'images'));
    const images: Obj = { ...(out.images as Obj | undefined) };
    if (chw) for (const [camera, image] of Object.entries(images)) images[camera] = toImage(image, pointer(pointer(path, 'images'), camera), true);
    for (const key of imageKeys) {
      const camera = spec.images?.[key] ?? key.slice(imagePrefix!.length);
      const at = pointer(path, key);
      if (images[camera] !== undefined) throw bad(`camera '${camera}' is given twice: as '${key}' and as images.${camera}`, at);
      images[camera] = toImage(step(obs[key], 3), at, chw);
    }
    out.images = images;
  }

  if (stateKeys.length > 0) {
    const all = listed ? spec.state! : stateKeys;
    const missing = all.find((k) => obs[k] === undefined);
    if (missing !== undefined) throw bad(`missing: the state is made of ${all.join(', ')}`, pointer(path, missing));
    if (out.state !== undefined) throw bad(`both '${stateKeys[0]}' and 'state' are given; send one`, pointer(path, stateKeys[0]!));
    out.state = toState(all.map((k) => ({ value: step(obs[k], 1), path: pointer(path, k) })));
  }

  if (instructionKey !== undefined) {
    const at = pointer(path, instructionKey);
    let text = obs[instructionKey];
    if (spec.timeAxis && Array.isArray(text) && text.length === 1) text = text[0];
    if (typeof text !== 'string') throw bad(spec.timeAxis ? 'the instruction must be a string or a list of one string' : 'the instruction must be a string', at);
    if (out.instruction !== undefined) throw bad(`both '${instructionKey}' and 'instruction' are given; send one`, at);
    out.instruction = text;
  }
  return out;
}

/** The latest step of a tensor with a leading time axis (a view), when it has one more axis than `rank`. */
function latestStep(value: unknown, rank: number): unknown {
  if (!(value instanceof Tensor) || value.shape.length !== rank + 1 || value.shape[0] === 0) return value;
  const shape = value.shape.slice(1);
  let n = 1;
  for (const d of shape) n *= d;
  const start = (value.shape[0]! - 1) * n;
  return new Tensor(value.dtype, shape, value.data.subarray(start, start + n));
}

/** A uint8 [3,H,W] tensor transposed to [H,W,3] (one copy). */
function fromChannelsFirst(value: Tensor, path: string): Tensor {
  const [c, h, w] = value.shape;
  if (value.dtype !== 'uint8' || value.shape.length !== 3 || c !== 3 || !h || !w) {
    throw bad(`an image must be uint8 [3,H,W] (channels first), got ${value.dtype} [${value.shape.join(', ')}]`, path);
  }
  const src = value.data as Uint8Array;
  const out = new Uint8Array(src.length);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    out[3 * i] = src[i]!;
    out[3 * i + 1] = src[plane + i]!;
    out[3 * i + 2] = src[2 * plane + i]!;
  }
  return new Tensor('uint8', [h, w, 3], out);
}

/** An image as uint8 [H,W,3]: a uint8 tensor as is (transposed when channels first), or nested lists of integers 0..255 packed into one. */
function toImage(value: unknown, path: string, channelsFirst = false): Tensor | ShmTensorRef {
  // In shared memory: renamed as it is when already uint8 [H,W,3] (the gateway never reads its bytes).
  if (value instanceof ShmTensorRef && !channelsFirst && value.dtype === 'uint8' && value.shape.length === 3 && value.shape[2] === 3) return value;
  if (value instanceof Tensor && channelsFirst) return fromChannelsFirst(value, path);
  if (value instanceof Tensor) {
    const [h, w, c] = value.shape;
    if (value.dtype !== 'uint8' || value.shape.length !== 3 || c !== 3 || !h || !w) {
      throw bad(`an image must be uint8 [H,W,3], got ${value.dtype} [${value.shape.join(', ')}]`, path);
    }
    return value;
  }
  if (!Array.isArray(value)) throw bad('an image must be a uint8 [H,W,3] array (nested lists of integers 0..255)', path);
  const shape = shapeOf(value);
  if (shape.length !== 3 || shape[2] !== 3 || shape[0] === 0 || shape[1] === 0) {
    throw bad(`an image must be [H,W,3] (H, W >= 1), got [${shape.join(', ')}]`, path);
  }
  const pixels = new Uint8Array(shape[0]! * shape[1]! * 3);
  fill(value, shape, pixels, path, (x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 255, 'an integer 0..255');
  return new Tensor('uint8', shape, pixels);
}

/** The state as float32 [dof] from one or more 1-D parts (float32 tensors pass as is when alone). */
function toState(parts: Array<{ value: unknown; path: string }>): Tensor {
  const arrays: ArrayLike<number | bigint>[] = parts.map(({ value, path }) => {
    if (value instanceof Tensor) {
      if (value.shape.length !== 1) throw bad(`the state must be 1-D, got [${value.shape.join(', ')}]`, path);
      return value.data;
    }
    if (!Array.isArray(value)) throw bad('the state must be a list of numbers', path);
    const shape = shapeOf(value);
    if (shape.length !== 1) throw bad(`the state must be a flat list of numbers, got shape [${shape.join(', ')}]`, path);
    const values = new Float32Array(shape[0]!);
    fill(value, shape, values, path, (x) => typeof x === 'number' && Number.isFinite(x), 'a finite number');
    return values;
  });
  const only = parts[0]!.value;
  if (parts.length === 1 && only instanceof Tensor && only.dtype === 'float32') return only;
  if (parts.length === 1 && arrays[0] instanceof Float32Array) return Tensor.of(arrays[0]);
  // A tensor of another dtype, or several parts: one float32 copy of dof values (never image-sized).
  let n = 0;
  for (const a of arrays) n += a.length;
  const state = new Float32Array(n);
  let at = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) state[at++] = Number(a[i]);
  return Tensor.of(state);
}

/** A short description of a bad element for an error message (never the whole of a large value). */
function describe(x: unknown): string {
  if (Array.isArray(x)) return 'a list';
  if (x !== null && typeof x === 'object') return 'an object';
  return typeof x === 'string' ? JSON.stringify(x.slice(0, 32)) : String(x);
}

/** The shape a nested list claims by its first elements (checked in full by fill). */
function shapeOf(value: unknown[]): number[] {
  const shape: number[] = [];
  for (let v: unknown = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    if (v.length === 0) break;
  }
  return shape;
}

/**
 * Copies a nested list of exactly `shape` into `out` (C order), checking every length and every leaf with
 * `ok`. The error path names the first offending element, e.g. `/data/observation/image/3/7/1`.
 */
function fill(value: unknown[], shape: readonly number[], out: TypedArray, path: string, ok: (x: unknown) => boolean, what: string): void {
  const rank = shape.length;
  const index: number[] = new Array<number>(rank).fill(0);
  const where = (depth: number) => index.slice(0, depth + 1).reduce<string>((p, i) => `${p}/${i}`, path);
  let at = 0;
  const walk = (list: unknown, depth: number): void => {
    if (!Array.isArray(list) || list.length !== shape[depth]) {
      const got = Array.isArray(list) ? `${list.length} elements` : typeof list;
      throw bad(`not rectangular: expected a list of ${shape[depth]} here, got ${got}`, depth === 0 ? path : where(depth - 1));
    }
    if (depth === rank - 1) {
      for (let i = 0; i < list.length; i++) {
        const x: unknown = list[i];
        if (!ok(x)) {
          index[depth] = i;
          throw bad(`${describe(x)} is not ${what}`, where(depth));
        }
        (out as unknown as number[])[at++] = x as number;
      }
      return;
    }
    for (let i = 0; i < list.length; i++) {
      index[depth] = i;
      walk(list[i], depth + 1);
    }
  };
  walk(value, 0);
}
