// openpi's wire format (openpi-client's msgpack_numpy.py): msgpack in which an ndarray is a map whose keys are
// msgpack *bin*, not str: {b"__ndarray__": true, b"data": <C-order bytes>, b"dtype": "<f4", b"shape": [2, 3]}, and a
// numpy scalar is {b"__npgeneric__": true, b"data": <python scalar>, b"dtype": ...}. Pure: no I/O.
//
// Decoding: @msgpack/msgpack refuses bin map keys by default, so keys are converted to text; arrays become
// Tensors that are views on the received bytes (copied once when misaligned, and the copy is counted); dtypes a
// typed array cannot view are refused (numpy-dtype.ts). Encoding is written by hand because no msgpack library
// here emits bin keys from plain values (the openpi side checks `b"__ndarray__" in obj`; a str key would arrive as
// a plain dict), and it lets tensor bytes go in without an intermediate copy.
import { Decoder } from '@msgpack/msgpack';
import { GatewayError } from '../lib/errors.js';
import { msgpackDepthExceeds } from './depth.js';
import type { Limits } from './limits.js';
import { dtypeFromNumpy, numpyDtype } from './numpy-dtype.js';
import { pointer } from './observation-mapping.js';
import { Tensor, viewTensor } from './tensor.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function keyToString(key: unknown): string | number {
  if (key instanceof Uint8Array) return utf8.decode(key);
  if (typeof key === 'string' || typeof key === 'number') return key;
  throw new GatewayError('bad_request', 'map keys must be strings, bytes or numbers');
}

const decoders = new WeakMap<Limits, Decoder>();
function decoderFor(limits: Limits): Decoder {
  let d = decoders.get(limits);
  if (!d) {
    d = new Decoder({ mapKeyConverter: keyToString, maxStrLength: limits.maxHeaderBytes, maxBinLength: limits.maxMessageBytes, maxArrayLength: limits.maxMessageBytes, maxMapLength: 1 << 20, maxExtLength: 0 });
    decoders.set(limits, d);
  }
  return d;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * One openpi message → plain values with Tensors for its ndarrays. Throws `too_large` above the message limit and
 * `bad_request` for bytes that are not msgpack, nest too deep or hold an array this gateway cannot take.
 */
export function decodeOpenpi(bytes: Uint8Array, limits: Limits): { value: unknown; copiedBytes: number } {
  if (bytes.byteLength > limits.maxMessageBytes) throw new GatewayError('too_large', `message is ${bytes.byteLength} bytes; the limit is ${limits.maxMessageBytes}`);
  if (msgpackDepthExceeds(bytes, limits.maxDepth)) throw new GatewayError('bad_request', `message is nested deeper than ${limits.maxDepth} levels (the limit)`, { path: '/' });
  let raw: unknown;
  try {
    raw = decoderFor(limits).decode(bytes);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('bad_request', `message is not valid msgpack: ${(err as Error).message}`, { path: '/', cause: err });
  }
  const state = { copiedBytes: 0 };
  return { value: revive(raw, '', state), copiedBytes: state.copiedBytes };
}

function revive(value: unknown, path: string, state: { copiedBytes: number }): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i], pointer(path, i), state);
    return value;
  }
  if (!isMap(value)) return value;
  if (value.__ndarray__ === true) {
    const at = path || '/';
    if (!(value.data instanceof Uint8Array)) throw new GatewayError('bad_request', `${at}: an ndarray's data must be bytes`, { path: at });
    const { tensor, copiedBytes } = viewTensor(dtypeFromNumpy(value.dtype, at), value.shape, value.data, at);
    state.copiedBytes += copiedBytes;
    return tensor;
  }
  if (value.__npgeneric__ === true) return value.data; // a numpy scalar: its Python value is what a handler wants
  for (const key of Object.keys(value)) value[key] = revive(value[key], pointer(path, key), state);
  return value;
}

/** Collects msgpack pieces; tensor bytes are kept as views and copied once, into the final buffer. */
class Writer {
  readonly parts: Uint8Array[] = [];
  size = 0;
  #scratch = Buffer.alloc(9);

  head(tag: number, length: number, bytes: 0 | 1 | 2 | 4 | 8): void {
    const b = this.#scratch;
    b[0] = tag;
    if (bytes === 1) b.writeUInt8(length, 1);
    else if (bytes === 2) b.writeUInt16BE(length, 1);
    else if (bytes === 4) b.writeUInt32BE(length, 1);
    this.raw(Buffer.from(b.subarray(0, 1 + bytes)));
  }
  raw(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.byteLength;
  }
  str(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    const n = bytes.byteLength;
    if (n < 32) this.head(0xa0 | n, 0, 0);
    else if (n < 0x100) this.head(0xd9, n, 1);
    else if (n < 0x10000) this.head(0xda, n, 2);
    else this.head(0xdb, n, 4);
    this.raw(bytes);
  }
  bin(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    if (n < 0x100) this.head(0xc4, n, 1);
    else if (n < 0x10000) this.head(0xc5, n, 2);
    else this.head(0xc6, n, 4);
    this.raw(bytes);
  }
  mapHeader(n: number): void {
    if (n < 16) this.head(0x80 | n, 0, 0);
    else if (n < 0x10000) this.head(0xde, n, 2);
    else this.head(0xdf, n, 4);
  }
  arrayHeader(n: number): void {
    if (n < 16) this.head(0x90 | n, 0, 0);
    else if (n < 0x10000) this.head(0xdc, n, 2);
    else this.head(0xdd, n, 4);
  }
  number(x: number): void {
    const b = Buffer.alloc(9);
    if (Number.isSafeInteger(x) && x >= 0) {
      if (x < 128) b[0] = x;
      else return this.raw(writeInt(b, 0xcf, BigInt(x)));
      return this.raw(b.subarray(0, 1));
    }
    if (Number.isSafeInteger(x)) return this.raw(writeInt(b, 0xd3, BigInt(x)));
    b[0] = 0xcb;
    b.writeDoubleBE(x, 1);
    this.raw(b);
  }
}

function writeInt(b: Buffer, tag: 0xcf | 0xd3, x: bigint): Buffer {
  b[0] = tag;
  if (tag === 0xcf) b.writeBigUInt64BE(x, 1);
  else b.writeBigInt64BE(x, 1);
  return b;
}

const NDARRAY = Buffer.from('__ndarray__');
const DATA = Buffer.from('data');
const DTYPE = Buffer.from('dtype');
const SHAPE = Buffer.from('shape');

function write(w: Writer, value: unknown, depth: number): void {
  if (depth > 100) throw new GatewayError('internal', 'reply nests too deep to encode');
  if (value === null || value === undefined) return w.raw(Uint8Array.of(0xc0));
  if (typeof value === 'boolean') return w.raw(Uint8Array.of(value ? 0xc3 : 0xc2));
  if (typeof value === 'number') return w.number(value);
  if (typeof value === 'bigint') return w.raw(writeInt(Buffer.alloc(9), value >= 0n ? 0xcf : 0xd3, value));
  if (typeof value === 'string') return w.str(value);
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array) && !(value instanceof DataView)) value = Tensor.of(value as Float32Array);
  if (value instanceof Tensor) {
    // The ndarray map with bin keys, in openpi's key order.
    w.mapHeader(4);
    w.bin(NDARRAY);
    w.raw(Uint8Array.of(0xc3));
    w.bin(DATA);
    w.bin(value.bytes());
    w.bin(DTYPE);
    w.str(numpyDtype(value.dtype));
    w.bin(SHAPE);
    w.arrayHeader(value.shape.length);
    for (const d of value.shape) w.number(d);
    return;
  }
  if (value instanceof Uint8Array) return w.bin(value);
  if (Array.isArray(value)) {
    w.arrayHeader(value.length);
    for (const v of value) write(w, v, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    w.mapHeader(entries.length);
    for (const [k, v] of entries) {
      w.str(k);
      write(w, v, depth + 1);
    }
    return;
  }
  throw new GatewayError('internal', `cannot encode a ${typeof value} for an openpi client`);
}

/** Plain values with Tensors (or typed arrays) → one openpi msgpack message; tensors become bin-keyed ndarray maps. */
export function encodeOpenpi(value: unknown): Buffer {
  const w = new Writer();
  write(w, value, 0);
  return Buffer.concat(w.parts, w.size);
}
