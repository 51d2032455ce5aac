// Tensors: a closed dtype table, typed-array views on received bytes, and shape/size checks.
import { GatewayError } from '../lib/errors.js';

export const DTYPES = ['bool', 'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64'] as const;
export type DType = (typeof DTYPES)[number];

type TypedArrayCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | BigUint64ArrayConstructor
  | BigInt64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

const CTORS: Readonly<Record<DType, TypedArrayCtor>> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
  float32: Float32Array,
  float64: Float64Array,
};

export const MAX_RANK = 8;

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

export function itemSize(dtype: DType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** The dtype a typed array maps to (Uint8Array → uint8; use `new Tensor('bool', ...)` for booleans). */
export function dtypeOf(array: TypedArray): DType {
  if (array instanceof Uint8Array) return 'uint8';
  if (array instanceof Int8Array) return 'int8';
  if (array instanceof Uint16Array) return 'uint16';
  if (array instanceof Int16Array) return 'int16';
  if (array instanceof Uint32Array) return 'uint32';
  if (array instanceof Int32Array) return 'int32';
  if (array instanceof BigUint64Array) return 'uint64';
  if (array instanceof BigInt64Array) return 'int64';
  if (array instanceof Float32Array) return 'float32';
  return 'float64';
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a shape is a list of at most MAX_RANK non-negative integers; `path` names it in the error. */
export function checkShape(shape: unknown, path: string): asserts shape is number[] {
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new GatewayError('bad_request', `${path}: shape must be a list of at most ${MAX_RANK} non-negative integers`, { path });
  }
}

/** An n-dimensional array: dtype, shape and a typed array holding exactly prod(shape) elements. */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;

  constructor(dtype: DType, shape: readonly number[], data: TypedArray) {
    if (data.length !== elementCount(shape)) {
      throw new GatewayError('bad_request', `tensor of shape [${shape.join(', ')}] needs ${elementCount(shape)} elements, got ${data.length}`);
    }
    if (itemSize(dtype) !== data.BYTES_PER_ELEMENT) {
      throw new GatewayError('bad_request', `dtype ${dtype} does not match a ${data.constructor.name}`);
    }
    this.dtype = dtype;
    this.shape = shape;
    this.data = data;
  }

  /** A tensor over an existing typed array (no copy); the shape defaults to 1-D. */
  static of(data: TypedArray, shape: readonly number[] = [data.length]): Tensor {
    return new Tensor(dtypeOf(data), shape, data);
  }

  get byteLength(): number {
    return this.data.byteLength;
  }

  /** The tensor's bytes as a Uint8Array view on the same memory. */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** Nested number lists in C order, as the JSON codec and the original design send them. */
  toNested(): unknown {
    const flat = Array.from(this.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
    const values = this.dtype === 'bool' ? flat.map((v) => v !== 0) : flat;
    if (this.shape.length === 0) return values[0];
    return nest(values, this.shape, 0, 0).value;
  }
}

function nest(values: unknown[], shape: readonly number[], dim: number, offset: number): { value: unknown; next: number } {
  const size = shape[dim]!;
  if (dim === shape.length - 1) return { value: values.slice(offset, offset + size), next: offset + size };
  const out: unknown[] = new Array(size);
  let at = offset;
  for (let i = 0; i < size; i++) {
    const { value, next } = nest(values, shape, dim + 1, at);
    out[i] = value;
    at = next;
  }
  return { value: out, next: at };
}

export interface ViewResult {
  tensor: Tensor;
  /** Bytes copied because the source was not aligned for the element type (0 when a view was possible). */
  copiedBytes: number;
}

/**
 * A tensor view on `bytes` (no copy) after checking dtype, shape and length. When `bytes` is not aligned
 * for the element size, the bytes are copied once and the copy is reported.
 */
export function viewTensor(dtype: unknown, shape: unknown, bytes: Uint8Array, path: string): ViewResult {
  if (!isDType(dtype)) {
    throw new GatewayError('bad_request', `${path}: unknown dtype ${JSON.stringify(dtype)}; expected one of ${DTYPES.join(', ')}`, { path });
  }
  checkShape(shape, path);
  const size = itemSize(dtype);
  const expected = elementCount(shape) * size;
  if (bytes.byteLength !== expected) {
    throw new GatewayError(
      'bad_request',
      `${path}: ${dtype} [${shape.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength}`,
      { path },
    );
  }
  const Ctor = CTORS[dtype];
  if (bytes.byteOffset % size === 0) {
    return { tensor: new Tensor(dtype, shape, new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, expected / size)), copiedBytes: 0 };
  }
  const copy = new Uint8Array(expected);
  copy.set(bytes);
  return { tensor: new Tensor(dtype, shape, new Ctor(copy.buffer, 0, expected / size)), copiedBytes: expected };
}

/** Converts a nested number list (JSON codec) into a tensor of `dtype`, checking it is rectangular. Copies. */
export function tensorFromNested(value: unknown, dtype: DType, path = 'value'): Tensor {
  const shape: number[] = [];
  for (let v: unknown = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    if (v.length === 0) break;
  }
  const flat = (value as unknown[]).flat?.(Infinity) ?? [value];
  const data = new CTORS[dtype](elementCount(shape));
  if (flat.length !== data.length) throw new GatewayError('bad_request', `${path}: nested list is not rectangular`, { path });
  const big = dtype === 'int64' || dtype === 'uint64';
  for (let i = 0; i < flat.length; i++) {
    const x = flat[i];
    if (typeof x === 'number' || typeof x === 'boolean') (data as { [i: number]: number | bigint })[i] = big ? BigInt(Math.trunc(Number(x))) : Number(x);
    else throw new GatewayError('bad_request', `${path}: element ${i} is not a number`, { path });
  }
  return new Tensor(dtype, Array.isArray(value) ? shape : [], data);
}

/** A tensor from either a Tensor (returned as is when the dtype matches) or a nested list (JSON codec). */
export function asTensor(value: unknown, dtype: DType, path = 'value'): Tensor {
  if (value instanceof Tensor) {
    if (value.dtype === dtype) return value;
    throw new GatewayError('bad_request', `${path}: expected ${dtype}, got ${value.dtype}`, { path });
  }
  if (Array.isArray(value)) return tensorFromNested(value, dtype, path);
  throw new GatewayError('bad_request', `${path}: expected an array`, { path });
}
