// Encode and decode protocol messages: a header (msgpack or JSON) plus raw tensor frames. Pure: no I/O.
import { Encoder } from '@msgpack/msgpack';
import { GatewayError } from '../lib/errors.js';
import { Tensor, viewTensor, type TypedArray } from './tensor.js';
import { parseHeader } from './header.js';
import { ShmTensorRef, shmTensorFromWire } from './shm-descriptor.js';
import { checkLimits, DEFAULT_LIMITS, MAX_DEPTH_CEILING, type Frame, type Limits } from './limits.js';
import type { ReplyHeader, RequestHeader } from './messages.js';
import { validate } from './schemas.js';

/** `binary`: msgpack header + one raw frame per tensor. `msgpack`: tensors inline, one frame. `json`: nested lists. */
export type Codec = 'binary' | 'msgpack' | 'json';
export const CODECS: readonly Codec[] = ['binary', 'msgpack', 'json'];

export { checkLimits, DEFAULT_LIMITS, MAX_DEPTH_CEILING, type Frame, type Limits } from './limits.js';
export { parseJsonHeader, parseMsgpackHeader } from './header.js';

export interface Decoded<H> {
  header: H;
  /** The codec the sender used; a reply should use the same. */
  codec: Codec;
  /** Bytes copied because inline tensor data was misaligned (0 on the binary codec). */
  copiedBytes: number;
  /** Total size of the message in bytes. */
  sizeBytes: number;
}

const TENSOR_KEY = '__tensor__';

// Whatever a receiver accepts must be encodable again to be forwarded. The Encoder counts every value, scalars
// included, so the scalars inside a container at depth MAX_DEPTH_CEILING sit at MAX_DEPTH_CEILING + 1.
const encoder = new Encoder({ ignoreUndefined: true, maxDepth: MAX_DEPTH_CEILING + 1 });

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor) && !(v instanceof ShmTensorRef);
}

interface ResolveState {
  frames: readonly Frame[];
  used: Set<number>;
  copiedBytes: number;
  inline: number;
}

function resolveTensor(ref: Record<string, unknown>, state: ResolveState, path: string): Tensor | ShmTensorRef {
  const { frame, data, dtype, shape, shm } = ref;
  if ([frame, data, shm].filter((v) => v !== undefined).length > 1) {
    throw new GatewayError('bad_request', `${path}: a tensor has either 'frame' or 'data' or 'shm', not several`, { path });
  }
  // Shared memory: a descriptor, checked and passed on as it is; its bytes are never touched here.
  if (shm !== undefined) return shmTensorFromWire(ref, path);
  if (frame !== undefined) {
    if (!Number.isInteger(frame) || (frame as number) < 1) {
      throw new GatewayError('bad_request', `${path}: 'frame' must be an integer >= 1`, { path });
    }
    const index = frame as number;
    const bytes = state.frames[index];
    if (bytes === undefined) {
      throw new GatewayError('bad_request', `${path}: refers to frame ${index} but the message has ${state.frames.length - 1} tensor frames`, { path });
    }
    if (state.used.has(index)) throw new GatewayError('bad_request', `${path}: frame ${index} is referenced twice`, { path });
    state.used.add(index);
    const { tensor, copiedBytes } = viewTensor(dtype, shape, bytes, path);
    state.copiedBytes += copiedBytes;
    return tensor;
  }
  if (data instanceof Uint8Array) {
    state.inline++;
    const { tensor, copiedBytes } = viewTensor(dtype, shape, data, path);
    state.copiedBytes += copiedBytes;
    return tensor;
  }
  throw new GatewayError('bad_request', `${path}: a tensor needs 'frame' (binary codec), 'data' bytes (msgpack codec) or 'shm' (shared memory)`, { path });
}

function resolve(value: unknown, state: ResolveState, path: string): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] === 'number') return value; // a number list: nothing inside to resolve
    for (let i = 0; i < value.length; i++) value[i] = resolve(value[i], state, `${path}/${i}`);
    return value;
  }
  if (!isPlainObject(value)) return value;
  if (value[TENSOR_KEY] === true) return resolveTensor(value, state, path);
  for (const key of Object.keys(value)) value[key] = resolve(value[key], state, `${path}/${key}`);
  return value;
}

/**
 * Decodes any of the three codecs into a header object in which tensor placeholders are replaced by Tensors
 * that are views on the frames (no copy). Throws `too_large` or `bad_request` naming what is wrong.
 */
export function decodeMessage(frames: readonly Frame[], limits: Limits = DEFAULT_LIMITS): Decoded<Record<string, unknown>> {
  const sizeBytes = checkLimits(frames, limits);
  const { raw, json } = parseHeader(frames[0]!, limits);
  if (!isPlainObject(raw)) throw new GatewayError('bad_request', 'header must be a map/object', { path: '/' });
  const state: ResolveState = { frames, used: new Set(), copiedBytes: 0, inline: 0 };
  const header = resolve(raw, state, '') as Record<string, unknown>;
  if (state.used.size !== frames.length - 1) {
    throw new GatewayError(
      'bad_request',
      `message has ${frames.length - 1} tensor frames but the header references ${state.used.size}`,
    );
  }
  const codec: Codec = json ? 'json' : state.inline > 0 && frames.length === 1 ? 'msgpack' : 'binary';
  return { header, codec, copiedBytes: state.copiedBytes, sizeBytes };
}

/** Decodes and validates a request header against proto-json/v1/request.schema.json. */
export function decodeRequest(frames: readonly Frame[], limits: Limits = DEFAULT_LIMITS): Decoded<RequestHeader> {
  const decoded = decodeMessage(frames, limits);
  validate('request', decoded.header);
  return decoded as unknown as Decoded<RequestHeader>;
}

/** Decodes and validates a reply header against proto-json/v1/reply.schema.json. */
export function decodeReply(frames: readonly Frame[], limits: Limits = DEFAULT_LIMITS): Decoded<ReplyHeader> {
  const decoded = decodeMessage(frames, limits);
  validate('reply', decoded.header);
  return decoded as unknown as Decoded<ReplyHeader>;
}

function asTensorValue(value: unknown): Tensor | undefined {
  if (value instanceof Tensor) return value;
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array) && !(value instanceof DataView)) {
    return Tensor.of(value as TypedArray);
  }
  return undefined;
}

function prepare(value: unknown, codec: Codec, frames: Frame[]): unknown {
  if (value instanceof ShmTensorRef) return value.toWire();
  const tensor = asTensorValue(value);
  if (tensor) {
    if (codec === 'json') return tensor.toNested();
    if (codec === 'msgpack') return { [TENSOR_KEY]: true, dtype: tensor.dtype, shape: tensor.shape, data: tensor.bytes() };
    frames.push(tensor.bytes());
    return { [TENSOR_KEY]: true, dtype: tensor.dtype, shape: tensor.shape, frame: frames.length - 1 };
  }
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] === 'number') return value;
    return value.map((v) => prepare(v, codec, frames));
  }
  if (value instanceof Uint8Array) return codec === 'json' ? Array.from(value) : value;
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (v !== undefined) out[key] = prepare(v, codec, frames);
  }
  return out;
}

/**
 * Encodes a header whose values may hold Tensors (or typed arrays, taken as 1-D tensors). On `binary` each
 * tensor's bytes become their own frame without a copy; `msgpack` puts them inline; `json` writes nested lists.
 */
export function encodeMessage(header: object, codec: Codec = 'binary'): Frame[] {
  const frames: Frame[] = [new Uint8Array(0)];
  const prepared = prepare(header, codec, frames);
  if (codec === 'json') {
    frames[0] = Buffer.from(JSON.stringify(prepared), 'utf8');
  } else {
    const bytes = encoder.encode(prepared);
    frames[0] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return frames;
}

const PEEK_BYTES = 2048;
const JSON_ID = /"request_id"\s*:\s*"([^"\\]{1,128})"/;
const MSGPACK_KEY = Buffer.from([0xaa, ...Buffer.from('request_id')]);

/**
 * Best-effort request_id of a header that could not be decoded (too large, malformed), read from its first and
 * last bytes only, so that a DEALER client can match the error reply instead of waiting for its deadline.
 */
export function peekRequestId(frame: Uint8Array): string | undefined {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const parts = buf.length <= 2 * PEEK_BYTES ? [buf] : [buf.subarray(0, PEEK_BYTES), buf.subarray(buf.length - PEEK_BYTES)];
  for (const part of parts) {
    if (buf[0] === 0x7b) {
      const m = JSON_ID.exec(part.toString('latin1'));
      if (m) return m[1];
      continue;
    }
    const at = part.indexOf(MSGPACK_KEY);
    if (at < 0) continue;
    let i = at + MSGPACK_KEY.length;
    let len: number | undefined;
    const tag = part[i];
    if (tag !== undefined && tag >= 0xa0 && tag <= 0xbf) {
      len = tag & 0x1f;
      i += 1;
    } else if (tag === 0xd9 && part[i + 1] !== undefined) {
      len = part[i + 1];
      i += 2;
    }
    if (len !== undefined && len > 0 && len <= 128 && i + len <= part.length) return part.subarray(i, i + len).toString('utf8');
  }
  return undefined;
}
