// Shared-memory tensor descriptors: the wire form of a tensor whose bytes sit in a slot file of a client's folder
// under the shared-memory root (src/shm/), and the request's `shm` field that says whose slots they are. Pure: the
// gateway decodes a descriptor into a ShmTensorRef and encodes it again unchanged; it never maps the memory.
//
//   tensor:  {"__tensor__": true, "dtype", "shape", "shm": {"segment": "<client>/<slot>", "offset", "generation"}}
//   request: "shm": {"client", "key", "reply"?: {"segment", "offset", "bytes", "generation", "min_bytes"?}}
//
// A slot file starts with a 64-byte header (magic, layout version, generation as u64 little-endian); tensor bytes
// start at 64 or later. The generation changes each time the owner reuses the slot, so a reader holding an old
// descriptor sees a mismatch and refuses instead of reading someone else's newer data.
import { GatewayError } from '../lib/errors.js';
import { checkShape, elementCount, isDType, itemSize, type DType } from './tensor.js';

/** Bytes before the first tensor in a slot file: magic u32, layout u32, generation u64, reserved. */
export const SLOT_HEADER_BYTES = 64;
/** "PAIS" little-endian: the first four bytes of every slot file. */
export const SLOT_MAGIC = 0x53494150;
/** Byte offset of the u64 generation inside the slot header. */
export const SLOT_GENERATION_OFFSET = 8;
/** `<client folder>/<slot file>`: names without separators, bounded (as request.schema.json's shm.client). */
const SEGMENT = /^([A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})\/([A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})$/;
const MAX_OFFSET = 2 ** 40;

export interface ShmLocation {
  /** `<client folder>/<slot file>`, relative to the shared-memory root. */
  segment: string;
  /** Byte offset of the data inside the slot file (>= SLOT_HEADER_BYTES). */
  offset: number;
  /** The slot's generation when the descriptor was written. */
  generation: number;
}

/** A tensor that lives in shared memory: what the gateway forwards in place of the bytes. */
export class ShmTensorRef {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly shm: Readonly<ShmLocation>;

  constructor(dtype: DType, shape: readonly number[], shm: ShmLocation) {
    this.dtype = dtype;
    this.shape = shape;
    this.shm = Object.freeze({ ...shm });
  }

  get byteLength(): number {
    return elementCount(this.shape) * itemSize(this.dtype);
  }

  /** The client folder the bytes belong to. */
  get client(): string {
    return this.shm.segment.slice(0, this.shm.segment.indexOf('/'));
  }

  /** The wire placeholder (the same on every codec: JSON carries it as it is). */
  toWire(): Record<string, unknown> {
    return { __tensor__: true, dtype: this.dtype, shape: this.shape, shm: { ...this.shm } };
  }
}

/** The reply area a client lends the worker for result tensors (the action chunk) in one of its slots. */
export interface ShmReplyArea extends ShmLocation {
  /** Room, in bytes, from `offset`. */
  bytes: number;
  /** Result tensors smaller than this go back as frames (default 0: every one that fits). */
  min_bytes?: number;
}

/** The request's `shm` field: whose slots the descriptors point into, the proof (the lease key), the reply area. */
export interface ShmRequestField {
  client: string;
  key: string;
  reply?: ShmReplyArea;
}

function bad(path: string, what: string): GatewayError {
  return new GatewayError('bad_request', `${path}: ${what}`, { path });
}

function isCount(v: unknown, max = MAX_OFFSET): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
}

/** Checks a `{segment, offset, generation}` object; `path` names it in errors. */
export function parseShmLocation(value: unknown, path: string): ShmLocation {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(path, 'must be an object {segment, offset, generation}');
  const { segment, offset, generation } = value as Record<string, unknown>;
  if (typeof segment !== 'string' || !SEGMENT.test(segment) || segment.includes('..')) {
    throw bad(`${path}/segment`, `must be '<client>/<slot>' (letters, digits, '_', '-', '.'; no '..'), got ${JSON.stringify(segment)?.slice(0, 80)}`);
  }
  if (!isCount(offset) || (offset as number) < SLOT_HEADER_BYTES) throw bad(`${path}/offset`, `must be an integer >= ${SLOT_HEADER_BYTES}`);
  if (!isCount(generation, Number.MAX_SAFE_INTEGER)) throw bad(`${path}/generation`, 'must be a non-negative integer');
  return { segment, offset: offset as number, generation: generation as number };
}

/** A tensor placeholder carrying `shm` → a ShmTensorRef, after checking dtype, shape and location. */
export function shmTensorFromWire(ref: Record<string, unknown>, path: string): ShmTensorRef {
  const { dtype, shape, shm } = ref;
  if (!isDType(dtype)) throw bad(path, `unknown dtype ${JSON.stringify(dtype)}`);
  checkShape(shape, path);
  return new ShmTensorRef(dtype, shape, parseShmLocation(shm, `${path}/shm`));
}
