// The other direction of observation-mapping.ts: when a framework is served by an unmodified peer SERVER (openpi's
// websocket policy server, GR00T's ZMQ inference service), the standard observation a request carries is turned into
// the peer's keys on the way out, and the peer's reply back into the standard action chunk. Pure: no I/O.
//
//   standard observation   {images?: {<camera>: uint8 [H,W,3]}, state: float32 [dof], instruction?: string, ...}
//   openpi (generic)       {observation/<camera>: (H,W,3), observation/state: (dof,), prompt: str}
//                          → reply {actions: (horizon, dof), policy_timing?, server_timing?, ...}
//   GR00T N1.5             {video.<camera>: (1,H,W,3), state.<group>: (1,width) per configured group,
//                           annotation.human.action.task_description: [str]}
//                          → reply {action.<group>: (horizon, width), ...}, concatenated in order into (horizon, dof)
//
// An `OutboundMappingSpec` (declarative, from the config's `frameworks.<name>.outbound`) says:
//   - `images`: camera → peer key; those cameras are required (the peer's policy reads them); `imagePrefix`: any other
//     camera goes to <prefix><camera>; cameras neither names are not sent;
//   - `state`: one peer key for the whole state, or groups `{key: width}` in order that split it (widths must add up);
//   - `instruction`: the peer key of the instruction text;
//   - `timeAxis`: GR00T's leading time axis of 1 on images and state, and the instruction as a list of one string;
//   - `actions`: the reply keys concatenated (last axis) into the chunk, in order; GR00T's default is the modality
//     config's action keys, else every `action.` key in reply order.
// Keys of the request besides images/state/instruction/stamp pass through unchanged (a caller may add peer-specific
// ones). Every refusal is a `bad_request` whose path points at the caller's field.
import { GatewayError } from '../lib/errors.js';
import { pointer } from './observation-mapping.js';
import { Tensor, tensorFromNested } from './tensor.js';

export const PEER_PROTOCOLS = ['native', 'openpi', 'groot'] as const;
export type PeerProtocol = (typeof PEER_PROTOCOLS)[number];

export interface StateGroup {
  readonly key: string;
  readonly width: number;
}

export interface OutboundMappingSpec {
  readonly images?: Readonly<Record<string, string>>;
  readonly imagePrefix?: string;
  /** One peer key for the whole state, or the groups that split it in order. */
  readonly state?: string | readonly StateGroup[];
  readonly instruction?: string;
  readonly timeAxis?: boolean;
  readonly actions?: readonly string[];
}

export const OUTBOUND_SPEC_FIELDS = ['images', 'imagePrefix', 'state', 'instruction', 'timeAxis', 'actions'] as const;

/** What each backend protocol gets when the config names no field of its own (a config's fields replace these one by one). */
export const DEFAULT_OUTBOUND: Readonly<Record<'openpi' | 'groot', OutboundMappingSpec>> = Object.freeze({
  // openpi's docs/remote_inference.md example keys.
  openpi: Object.freeze({ imagePrefix: 'observation/', state: 'observation/state', instruction: 'prompt', actions: Object.freeze(['actions']) }),
  // GR00T N1.5's scripts/inference_service.py keys; state groups have no default (their widths are the robot's).
  groot: Object.freeze({ imagePrefix: 'video.', instruction: 'annotation.human.action.task_description', timeAxis: true }),
});

type Obj = Record<string, unknown>;
const STANDARD = new Set(['images', 'state', 'instruction', 'stamp']);

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor);
}

function bad(message: string, path: string): GatewayError {
  return new GatewayError('bad_request', `${path}: ${message}`, { path });
}

export interface PeerObservation {
  /** The peer's observation map (tensors as views where no conversion was needed). */
  observation: Obj;
  /** Peer key → where in the request it came from (for errors that name a peer key). */
  sources: Map<string, string>;
}

function withTime(t: Tensor, timeAxis: boolean | undefined): Tensor {
  return timeAxis ? new Tensor(t.dtype, [1, ...t.shape], t.data) : t;
}

function toFloat32(value: unknown, path: string): Tensor {
  let t: Tensor;
  if (value instanceof Tensor) t = value;
  else if (Array.isArray(value)) t = tensorFromNested(value, 'float32', path);
  else throw bad('the state must be a 1-D array of numbers', path);
  if (t.shape.length !== 1) throw bad(`the state must be 1-D, got [${t.shape.join(', ')}]`, path);
  if (t.dtype === 'float32') return t;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return Tensor.of(out);
}

function toImage(value: unknown, path: string): Tensor {
  const t = value instanceof Tensor ? value : Array.isArray(value) ? tensorFromNested(value, 'uint8', path) : undefined;
  if (!t || t.dtype !== 'uint8' || t.shape.length !== 3 || t.shape[2] !== 3) {
    throw bad(`an image must be uint8 [H,W,3]${t ? `, got ${t.dtype} [${t.shape.join(', ')}]` : ''}`, path);
  }
  return t;
}

/**
 * The standard observation in `data` (at `path`) → the peer's keys. Throws `bad_request` naming the caller's field
 * when a required camera, the state, or a state of the wrong width is missing.
 */
export function toPeerObservation(data: unknown, spec: OutboundMappingSpec, path = '/data'): PeerObservation {
  if (!isObject(data)) throw bad('an inference request carries an observation object {images?, state, instruction?}', path);
  const out: Obj = {};
  const sources = new Map<string, string>();
  for (const [key, value] of Object.entries(data)) {
    if (STANDARD.has(key)) continue;
    out[key] = value;
    sources.set(key, pointer(path, key));
  }
  const imagesPath = pointer(path, 'images');
  if (data.images !== undefined && !isObject(data.images)) throw bad('images must map camera names to uint8 [H,W,3] arrays', imagesPath);
  const images = (data.images ?? {}) as Obj;
  for (const [camera, key] of Object.entries(spec.images ?? {})) {
    if (images[camera] === undefined) throw bad(`missing: the peer's policy needs camera '${camera}' (sent as '${key}')`, pointer(imagesPath, camera));
  }
  for (const [camera, value] of Object.entries(images)) {
    const key = spec.images?.[camera] ?? (spec.imagePrefix !== undefined ? `${spec.imagePrefix}${camera}` : undefined);
    if (key === undefined) continue;
    const at = pointer(imagesPath, camera);
    out[key] = withTime(toImage(value, at), spec.timeAxis);
    sources.set(key, at);
  }
  const statePath = pointer(path, 'state');
  if (spec.state !== undefined) {
    if (data.state === undefined) throw bad(`missing: the peer's policy needs the state (sent as ${typeof spec.state === 'string' ? `'${spec.state}'` : spec.state.map((g) => `'${g.key}'`).join(', ')})`, statePath);
    const state = toFloat32(data.state, statePath);
    if (typeof spec.state === 'string') {
      out[spec.state] = withTime(state, spec.timeAxis);
      sources.set(spec.state, statePath);
    } else {
      const total = spec.state.reduce((n, g) => n + g.width, 0);
      if (state.shape[0] !== total) {
        throw bad(`the state has ${state.shape[0]} values but the peer's state groups (${spec.state.map((g) => `${g.key}: ${g.width}`).join(', ')}) take ${total}`, statePath);
      }
      let first = 0;
      for (const { key, width } of spec.state) {
        const part = new Tensor('float32', [width], (state.data as Float32Array).subarray(first, first + width));
        out[key] = withTime(part, spec.timeAxis);
        sources.set(key, statePath);
        first += width;
      }
    }
  } else if (data.state !== undefined) {
    out.state = data.state;
    sources.set('state', statePath);
  }
  if (data.instruction !== undefined) {
    const at = pointer(path, 'instruction');
    if (typeof data.instruction !== 'string') throw bad('the instruction must be a string', at);
    const key = spec.instruction ?? 'instruction';
    out[key] = spec.timeAxis ? [data.instruction] : data.instruction;
    sources.set(key, at);
  }
  return { observation: out, sources };
}

/** A reply value as a float32 [horizon, width] chunk (a leading batch axis of 1 is dropped). */
function chunkOf(value: unknown, key: string): Tensor {
  let t = value instanceof Tensor ? value : Array.isArray(value) ? tensorFromNested(value, 'float64', key) : undefined;
  if (t && t.shape.length === 3 && t.shape[0] === 1) t = new Tensor(t.dtype, t.shape.slice(1), t.data);
  if (t && t.shape.length === 1) t = new Tensor(t.dtype, [t.shape[0]!, 1], t.data);
  if (!t || t.shape.length !== 2) throw new GatewayError('worker_error', `the peer's reply '${key}' is not a [horizon, dof] array`);
  return t;
}

/** The peer's reply → float32 [horizon, dof]: the values under `keys` concatenated along their last axis, in order. */
export function actionFromPeer(reply: Obj, keys: readonly string[]): Tensor {
  if (keys.length === 0) throw new GatewayError('worker_error', "the peer's reply holds no action keys");
  const parts = keys.map((key) => {
    if (reply[key] === undefined) throw new GatewayError('worker_error', `the peer's reply has no '${key}' (it has: ${Object.keys(reply).join(', ') || 'nothing'})`);
    return { key, t: chunkOf(reply[key], key) };
  });
  const horizon = parts[0]!.t.shape[0]!;
  const mismatch = parts.find((p) => p.t.shape[0] !== horizon);
  if (mismatch) throw new GatewayError('worker_error', `the peer's action parts differ in horizon: '${parts[0]!.key}' has ${horizon} steps, '${mismatch.key}' ${mismatch.t.shape[0]}`);
  const dof = parts.reduce((n, p) => n + p.t.shape[1]!, 0);
  const out = new Float32Array(horizon * dof);
  let first = 0;
  for (const { t } of parts) {
    const width = t.shape[1]!;
    const src = t.data;
    for (let k = 0; k < horizon; k++) for (let j = 0; j < width; j++) out[k * dof + first + j] = Number(src[k * width + j]);
    first += width;
  }
  return new Tensor('float32', [horizon, dof], out);
}
