// numpy's `dtype.str` ('<f4', '|u1', ...) and the gateway's closed dtype table, both ways, for the peers' wire
// formats (openpi's msgpack-numpy, GR00T's .npy). Only what a typed array can view on this (little-endian) host
// is accepted: big-endian data would need a swap of every element, and object, string, complex, void, datetime
// and float16 arrays have no typed array at all; each is refused with a `bad_request` that says what to send.
import { GatewayError } from '../lib/errors.js';
import type { DType } from './tensor.js';

const BY_STR: Readonly<Record<string, DType>> = {
  '|b1': 'bool',
  '|u1': 'uint8',
  '|i1': 'int8',
  '<u2': 'uint16',
  '<i2': 'int16',
  '<u4': 'uint32',
  '<i4': 'int32',
  '<u8': 'uint64',
  '<i8': 'int64',
  '<f4': 'float32',
  '<f8': 'float64',
};

const TO_STR: Readonly<Record<DType, string>> = Object.fromEntries(Object.entries(BY_STR).map(([s, d]) => [d, s])) as Record<DType, string>;

/** The gateway dtype of a numpy `dtype.str`; throws `bad_request` at `path` for anything it cannot view. */
export function dtypeFromNumpy(descr: unknown, path: string): DType {
  if (typeof descr !== 'string') throw new GatewayError('bad_request', `${path}: dtype must be a numpy dtype string such as '<f4'`, { path });
  // '<u1' and '=u1' mean the same as '|u1' for one-byte types; '=' is native order, little-endian here.
  const normal = descr.replace(/^[<=](?=[bui]1$)/, '|').replace(/^=/, '<');
  const dtype = BY_STR[normal];
  if (dtype !== undefined) return dtype;
  const why = descr.startsWith('>') ? 'big-endian arrays are not accepted (send arr.astype(arr.dtype.newbyteorder("<")))' : 'unsupported dtype';
  throw new GatewayError('bad_request', `${path}: ${why}: ${JSON.stringify(descr.slice(0, 32))}; accepted: ${Object.keys(BY_STR).join(' ')}`, { path });
}

/** numpy's `dtype.str` of a gateway dtype. */
export function numpyDtype(dtype: DType): string {
  return TO_STR[dtype];
}
