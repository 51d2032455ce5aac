// GR00T's wire format (Isaac-GR00T's MsgSerializer, msgpack since PR #329): a request is
// {"endpoint": str, "data"?: map, "api_token"?: str}; an ndarray is {"__ndarray_class__": true, "as_npy": <.npy bytes>}
// (npy.ts); a ModalityConfig is {"__ModalityConfig_class__": true, "as_json": <JSON text (N1.5) | map (N1.6)>}.
// Errors go back as {"error": "<message>"}. Pure: no I/O.
//
// Observations come in two shapes. N1.5 sends flat keys (`video.<cam>` (T,H,W,3), `state.<group>` (T,D),
// `annotation.human.action.task_description` [str]) and reads flat `action.<group>` (16,D). N1.6 sends
// `{observation: {video: {cam: (B,T,H,W,3)}, state: {k: (B,T,D)}, language: {k: [[str]]}}, options}` and reads
// `[{k: (B,T,D)}, info]`. The N1.6 shape is turned into the N1.5 one here (batch of one, its first element as a view),
// so one observation mapping (the `groot-n15` preset) serves both.
import { Decoder, Encoder } from '@msgpack/msgpack';
import { GatewayError } from '../lib/errors.js';
import { msgpackDepthExceeds } from './depth.js';
import type { Limits } from './limits.js';
import { readNpy, writeNpy } from './npy.js';
import { pointer } from './observation-mapping.js';
import { Tensor } from './tensor.js';

export interface GrootRequest {
  endpoint: string;
  data: Record<string, unknown> | undefined;
  apiToken: string | undefined;
}

/** The instruction key of GR00T N1.5's flat observation (what the `groot-n15` mapping reads). */
export const GROOT_N15_INSTRUCTION = 'annotation.human.action.task_description';

const decoders = new WeakMap<Limits, Decoder>();
function decoderFor(limits: Limits): Decoder {
  let d = decoders.get(limits);
  if (!d) decoders.set(limits, (d = new Decoder({ maxStrLength: limits.maxHeaderBytes, maxBinLength: limits.maxMessageBytes, maxArrayLength: limits.maxMessageBytes, maxMapLength: 1 << 20, maxExtLength: 0 })));
  return d;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor);
}

/** One GR00T request message. Throws `too_large`, or `bad_request` for bytes that are not a GR00T request. */
export function decodeGroot(bytes: Uint8Array, limits: Limits): { request: GrootRequest; copiedBytes: number } {
  if (bytes.byteLength > limits.maxMessageBytes) throw new GatewayError('too_large', `message is ${bytes.byteLength} bytes; the limit is ${limits.maxMessageBytes}`);
  if (msgpackDepthExceeds(bytes, limits.maxDepth)) throw new GatewayError('bad_request', `message is nested deeper than ${limits.maxDepth} levels (the limit)`, { path: '/' });
  let raw: unknown;
  try {
    raw = decoderFor(limits).decode(bytes);
  } catch (err) {
    throw new GatewayError('bad_request', `message is not valid msgpack: ${(err as Error).message}`, { path: '/', cause: err });
  }
  if (!isMap(raw)) throw new GatewayError('bad_request', 'a request is a map {endpoint, data?, api_token?}', { path: '/' });
  const { endpoint = 'get_action', data, api_token: apiToken } = raw;
  if (typeof endpoint !== 'string') throw new GatewayError('bad_request', 'endpoint must be a string', { path: '/endpoint' });
  if (data !== undefined && data !== null && !isMap(data)) throw new GatewayError('bad_request', 'data must be a map', { path: '/data' });
  if (apiToken !== undefined && apiToken !== null && typeof apiToken !== 'string') throw new GatewayError('bad_request', 'api_token must be a string', { path: '/api_token' });
  const state = { copiedBytes: 0 };
  const revived = isMap(data) ? (revive(data, '/data', state) as Record<string, unknown>) : undefined;
  return { request: { endpoint, data: revived, apiToken: apiToken ?? undefined }, copiedBytes: state.copiedBytes };
}

function revive(value: unknown, path: string, state: { copiedBytes: number }): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i], pointer(path, i), state);
    return value;
  }
  if (!isMap(value)) return value;
  if (value.__ndarray_class__ === true) {
    if (!(value.as_npy instanceof Uint8Array)) throw new GatewayError('bad_request', `${path}: an ndarray's as_npy must be bytes`, { path });
    const { tensor, copiedBytes } = readNpy(value.as_npy, path);
    state.copiedBytes += copiedBytes;
    return tensor;
  }
  for (const key of Object.keys(value)) value[key] = revive(value[key], pointer(path, key), state);
  return value;
}

/** True when get_action's data has N1.6's nested shape `{observation: {video, state, language}, options?}`. */
export function isNestedObservation(data: Record<string, unknown> | undefined): boolean {
  return data !== undefined && isMap(data.observation);
}

/** The first element of a batch (B,...) as a view, refused unless B is 1. */
function onlyOfBatch(value: unknown, path: string): unknown {
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new GatewayError('bad_request', `${path}: a batch of ${value.length}; this gateway serves one observation per request (B = 1)`, { path });
    return value[0];
  }
  if (!(value instanceof Tensor) || value.shape.length === 0) return value;
  if (value.shape[0] !== 1) throw new GatewayError('bad_request', `${path}: a batch of ${value.shape[0]}; this gateway serves one observation per request (B = 1)`, { path });
  return new Tensor(value.dtype, value.shape.slice(1), value.data);
}

/** N1.6's nested observation → N1.5's flat keys (views, no copies). */
export function flattenNestedObservation(data: Record<string, unknown>): Record<string, unknown> {
  const obs = data.observation as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const at = '/data/observation';
  for (const modality of ['video', 'state'] as const) {
    const group = obs[modality];
    if (group === undefined) continue;
    if (!isMap(group)) throw new GatewayError('bad_request', `${at}/${modality} must map names to arrays`, { path: `${at}/${modality}` });
    for (const [key, value] of Object.entries(group)) out[`${modality}.${key}`] = onlyOfBatch(value, pointer(pointer(at, modality), key));
  }
  const language = obs.language;
  if (language !== undefined) {
    if (!isMap(language) || Object.keys(language).length !== 1) throw new GatewayError('bad_request', `${at}/language must hold exactly one key`, { path: `${at}/language` });
    const [key, value] = Object.entries(language)[0]!;
    out[GROOT_N15_INSTRUCTION] = onlyOfBatch(value, pointer(pointer(at, 'language'), key));
  }
  return out;
}

/** Plain values with Tensors → GR00T's encoding of them (ndarrays as .npy bytes). */
function prepare(value: unknown): unknown {
  if (value instanceof Tensor) return { __ndarray_class__: true, as_npy: writeNpy(value) };
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array) && !(value instanceof DataView)) return prepare(Tensor.of(value as Float32Array));
  if (Array.isArray(value)) return value.map(prepare);
  if (isMap(value)) return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, prepare(v)]));
  return value;
}

const encoder = new Encoder({ ignoreUndefined: true, maxDepth: 101 });

/** A reply (any value) in GR00T's msgpack. */
export function encodeGroot(value: unknown): Buffer {
  const bytes = encoder.encode(prepare(value));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A ModalityConfig as N1.5 sends it: `as_json` is JSON text (pydantic's model_dump_json). */
export function modalityConfig(config: Record<string, unknown>): Record<string, unknown> {
  return { __ModalityConfig_class__: true, as_json: JSON.stringify(config) };
}

/** A request to a GR00T server (the gateway as its client): `{endpoint, data?, api_token?}` in GR00T's msgpack. */
export function encodeGrootRequest(endpoint: string, data?: Record<string, unknown>, apiToken?: string): Buffer {
  return encodeGroot({ endpoint, ...(data !== undefined ? { data } : {}), ...(apiToken !== undefined ? { api_token: apiToken } : {}) });
}

/** A ModalityConfig's content: N1.5 sends `as_json` as JSON text, N1.6 as a map. */
function reviveModalityConfig(value: Record<string, unknown>, path: string): unknown {
  const body = value.as_json;
  if (isMap(body)) return body;
  if (typeof body !== 'string') throw new GatewayError('worker_error', `${path}: a ModalityConfig's as_json is neither JSON text nor a map`);
  try {
    return JSON.parse(body) as unknown;
  } catch (err) {
    throw new GatewayError('worker_error', `${path}: a ModalityConfig's as_json is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

function reviveReply(value: unknown, path: string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => reviveReply(v, pointer(path, i)));
  if (!isMap(value)) return value;
  if (value.__ndarray_class__ === true) {
    if (!(value.as_npy instanceof Uint8Array)) throw new GatewayError('worker_error', `${path}: an ndarray's as_npy must be bytes`);
    return readNpy(value.as_npy, path).tensor;
  }
  if (value.__ModalityConfig_class__ === true) return reviveModalityConfig(value, path);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = reviveReply(v, pointer(path, k));
  return out;
}

/**
 * A GR00T server's reply → plain values with Tensors (ndarrays) and plain maps (ModalityConfigs). Throws
 * `too_large`, or `worker_error` for bytes that are not a GR00T reply (the peer is at fault, not the caller).
 */
export function decodeGrootReply(bytes: Uint8Array, limits: Limits): unknown {
  if (bytes.byteLength > limits.maxMessageBytes) throw new GatewayError('too_large', `reply is ${bytes.byteLength} bytes; the limit is ${limits.maxMessageBytes}`);
  if (msgpackDepthExceeds(bytes, limits.maxDepth)) throw new GatewayError('worker_error', `reply is nested deeper than ${limits.maxDepth} levels (the limit)`);
  let raw: unknown;
  try {
    raw = decoderFor(limits).decode(bytes);
  } catch (err) {
    throw new GatewayError('worker_error', `the GR00T server's reply is not valid msgpack: ${(err as Error).message}`, { cause: err });
  }
  try {
    return reviveReply(raw, '');
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'bad_request') throw new GatewayError('worker_error', `the GR00T server's reply: ${err.message}`, { cause: err });
    throw err;
  }
}
