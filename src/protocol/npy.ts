// The .npy file format (numpy's np.save / np.load), as GR00T puts one inside each array it sends. Pure: no I/O.
//
//   \x93NUMPY <major> <minor> <header length: uint16 LE (v1) | uint32 LE (v2, v3)> <header> <data>
//   header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
//           spaces to a multiple of 64 bytes and ending in '\n' (v3 allows UTF-8; we only read ASCII fields)
//
// Reading gives a Tensor that is a view on the given bytes when they are aligned for the element type (numpy pads
// the header so the data starts at a multiple of 64 inside the file); Fortran-ordered data (np.save writes it for
// F-contiguous arrays) is copied once into C order, since every consumer of a Tensor reads C order.
import { GatewayError } from '../lib/errors.js';
import { dtypeFromNumpy, numpyDtype } from './numpy-dtype.js';
import { checkShape, Tensor, viewTensor, type TypedArray } from './tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

function bad(message: string, path: string): GatewayError {
  return new GatewayError('bad_request', `${path}: ${message}`, { path });
}

/** The header dict's three fields, read from the literal numpy writes (not a general Python parser). */
function parseHeader(text: string, path: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw bad("the .npy header lacks 'descr', 'fortran_order' or 'shape' (structured dtypes are not accepted)", path);
  }
  const parts = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!parts.every((s) => /^\d+$/.test(s))) throw bad(`the .npy shape (${shapeText}) is not a tuple of integers`, path);
  const shape = parts.map(Number);
  checkShape(shape, path);
  return { descr, fortran: fortran === 'True', shape };
}

/** A tensor from a complete .npy file; a view on `bytes` when aligned. Throws `bad_request` naming `path`. */
export function readNpy(bytes: Uint8Array, path: string): { tensor: Tensor; copiedBytes: number } {
  if (bytes.byteLength < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw bad('not a .npy file (no \\x93NUMPY magic)', path);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw bad(`unsupported .npy version ${major}.${bytes[7]}`, path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (dataStart > bytes.byteLength) throw bad('the .npy header runs past the end of the bytes', path);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lengthBytes, dataStart));
  const { descr, fortran, shape } = parseHeader(header, path);
  const dtype = dtypeFromNumpy(descr, path);
  const data = bytes.subarray(dataStart);
  const { tensor, copiedBytes } = viewTensor(dtype, shape, data, path);
  // Rank 0 and 1 read the same in both orders; numpy writes fortran_order False for them anyway.
  if (!fortran || shape.length < 2) return { tensor, copiedBytes };
  return { tensor: toCOrder(tensor), copiedBytes: copiedBytes + tensor.byteLength };
}

/** The same elements, reordered from Fortran (first index fastest) to C order (last index fastest). */
function toCOrder(f: Tensor): Tensor {
  const { shape } = f;
  const rank = shape.length;
  const fStride: number[] = [];
  for (let k = 0, s = 1; k < rank; k++) {
    fStride.push(s);
    s *= shape[k]!;
  }
  const src = f.data as unknown as ArrayLike<number>;
  const out = new (f.data.constructor as new (n: number) => TypedArray)(f.data.length);
  const dst = out as unknown as number[];
  const index = new Array<number>(rank).fill(0);
  for (let c = 0; c < out.length; c++) {
    let at = 0;
    for (let k = 0; k < rank; k++) at += index[k]! * fStride[k]!;
    dst[c] = src[at]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k]! < shape[k]!) break;
      index[k] = 0;
    }
  }
  return new Tensor(f.dtype, shape, out);
}

/** A complete .npy v1.0 file of a tensor (C order), as np.save writes it: one copy of the data. */
export function writeNpy(tensor: Tensor): Uint8Array {
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(', ')})`;
  let header = `{'descr': '${numpyDtype(tensor.dtype)}', 'fortran_order': False, 'shape': ${shape}, }`;
  const preamble = MAGIC.length + 4;
  header += ' '.repeat(ALIGN - ((preamble + header.length + 1) % ALIGN || ALIGN)) + '\n';
  const out = new Uint8Array(preamble + header.length + tensor.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), preamble);
  out.set(tensor.bytes(), preamble + header.length);
  return out;
}
