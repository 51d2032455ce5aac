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
// Per-framework mappings (next): openpi and GR00T name their inputs differently. Add a field such as
// `observationMapping?: ObservationMappingSpec | 'robotis' | 'openpi' | 'groot'` to the framework config, and
// let the pipeline pass `mappingFor(framework)` instead of ROBOTIS_MAPPING. Source keys are literal keys (no
// path syntax), so the peers' flat keys fit as they are:
//   openpi  {images: {'observation/image': 'image', 'observation/wrist_image': 'wrist_image'},
//            state: ['observation/state'], instruction: 'prompt'}
//   GR00T   {images: {'video.ego_view': 'ego_view'}, state: ['state.left_arm', 'state.right_arm'],
//            instruction: 'annotation.human.action.task_description'}
// GR00T sends arrays with a leading time axis ((T,H,W,3), (T,D)) and the task as `[str]`; the spec will need a
// `squeezeTime` flag and list-of-one instructions for it. Pure: no I/O, no state.
import { GatewayError } from '../lib/errors.js';
import { Tensor, type TypedArray } from './tensor.js';

/** A declarative mapping from a peer's observation keys to the standard observation. */
export interface ObservationMappingSpec {
  /** Source key → camera name under `images`; the value must be uint8 [H,W,3]. */
  readonly images?: Readonly<Record<string, string>>;
  /** Source keys of 1-D number arrays, concatenated in this order into `state` (float32). All or none must be present. */
  readonly state?: readonly string[];
  /** Source key of the instruction text. */
  readonly instruction?: string;
}

/** The original ROBOTIS example observation `{image: [H][W][3], robot_state: [dof]}`. */
export const ROBOTIS_MAPPING: ObservationMappingSpec = Object.freeze({
  images: Object.freeze({ image: 'image' }),
  state: Object.freeze(['robot_state']),
});

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor);
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

/** Maps one observation object (at `path`) with `spec`; returns it unchanged when no source key is present. */
export function mapObservation(obs: Obj, spec: ObservationMappingSpec, path: string): Obj {
  const imageKeys = Object.keys(spec.images ?? {}).filter((k) => obs[k] !== undefined);
  const stateKeys = (spec.state ?? []).filter((k) => obs[k] !== undefined);
  const instructionKey = spec.instruction !== undefined && obs[spec.instruction] !== undefined ? spec.instruction : undefined;
  if (imageKeys.length === 0 && stateKeys.length === 0 && instructionKey === undefined) return obs;

  const sources = new Set<string>([...imageKeys, ...stateKeys, ...(instructionKey !== undefined ? [instructionKey] : [])]);
  const out: Obj = {};
  for (const [key, value] of Object.entries(obs)) if (!sources.has(key)) out[key] = value;

  if (imageKeys.length > 0) {
    if (out.images !== undefined && !isObject(out.images)) throw bad('images must map camera names to uint8 [H,W,3] arrays', pointer(path, 'images'));
    const images: Obj = { ...(out.images as Obj | undefined) };
    for (const key of imageKeys) {
      const camera = spec.images![key]!;
      const at = pointer(path, key);
      if (images[camera] !== undefined) throw bad(`camera '${camera}' is given twice: as '${key}' and as images.${camera}`, at);
      images[camera] = toImage(obs[key], at);
    }
    out.images = images;
  }

  if (stateKeys.length > 0) {
    const all = spec.state!;
    const missing = all.find((k) => obs[k] === undefined);
    if (missing !== undefined) throw bad(`missing: the state is made of ${all.join(', ')}`, pointer(path, missing));
    if (out.state !== undefined) throw bad(`both '${stateKeys[0]}' and 'state' are given; send one`, pointer(path, stateKeys[0]!));
    out.state = toState(all.map((k) => ({ value: obs[k], path: pointer(path, k) })));
  }

  if (instructionKey !== undefined) {
    const at = pointer(path, instructionKey);
    if (typeof obs[instructionKey] !== 'string') throw bad('the instruction must be a string', at);
    if (out.instruction !== undefined) throw bad(`both '${instructionKey}' and 'instruction' are given; send one`, at);
    out.instruction = obs[instructionKey];
  }
  return out;
}

/** An image as uint8 [H,W,3]: a uint8 tensor as is, or nested lists of integers 0..255 packed into one. */
function toImage(value: unknown, path: string): Tensor {
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
