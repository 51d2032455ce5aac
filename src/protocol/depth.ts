// Nesting depth of a header, measured on its bytes before a parser builds anything from them. Pure: no I/O.
//
// Why scan first: JSON.parse has no depth limit and @msgpack/msgpack 3.1's Decoder has none either (both are
// iterative, so they happily build a 16 MB tower of lists), while everything that walks a header afterwards
// (resolve() in codec.ts, the encoders, a Python worker) recurses and would end in a stack overflow, an
// `internal` error instead of `bad_request`. A scan stops at the first byte past the limit and allocates nothing.
//
// Depth counts containers: `{}` is 1, `{"a":[1]}` is 2. The scans judge nothing else: syntax, lengths and trailing
// bytes are left to the parser that runs next, so a well-formed header within the limit is never rejected here.

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

// +1 for `[` and `{`, -1 for `]` and `}`, 0 for every other byte: one table load and one add per byte, no branch
// on the bracket kind. (Measured on the 1.9 MB JSON header of three 224x224x3 images: about 3.5 ms, against
// about 40 ms for TextDecoder + JSON.parse of the same bytes; a compare-per-bracket loop took about 6 ms.)
const DEPTH_STEP = new Int8Array(256);
DEPTH_STEP[0x5b] = 1;
DEPTH_STEP[0x7b] = 1;
DEPTH_STEP[0x5d] = -1;
DEPTH_STEP[0x7d] = -1;

/** True when JSON text opens more than `maxDepth` lists/objects at once. Brackets inside strings do not count. */
export function jsonDepthExceeds(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === QUOTE) {
      // Skip to the closing quote; a backslash escapes the next byte (UTF-8 continuation bytes are >= 0x80,
      // so they can never be taken for a quote or a backslash).
      for (i++; i < n; i++) {
        const c = bytes[i]!;
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) break;
      }
      continue;
    }
    depth += DEPTH_STEP[b]!;
    if (depth > maxDepth) return true;
  }
  return false;
}

/**
 * True when msgpack bytes nest more than `maxDepth` arrays/maps. Walks value headers only: the payloads of
 * strings, binaries and extensions are skipped by their length, so their bytes are never read as structure.
 */
export function msgpackDepthExceeds(bytes: Uint8Array, maxDepth: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  // left[d]: values still to come in the container open at depth d; left[0] is the one top-level value.
  const left: number[] = [1];
  let pos = 0;
  // Reads a big-endian length of `size` bytes at pos, or -1 when the input ends first (the parser reports that).
  const length = (size: 1 | 2 | 4): number => {
    if (pos + size > n) return -1;
    const v = size === 1 ? view.getUint8(pos) : size === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += size;
    return v;
  };
  // An extension's payload is its length plus one type byte.
  const extLength = (size: 1 | 2 | 4): number => {
    const l = length(size);
    return l < 0 ? -1 : l + 1;
  };
  while (left.length > 0 && pos < n) {
    const b = bytes[pos++]!;
    let items = -1; // a container with this many values (a map's keys and values both count)
    let skip = 0; // payload bytes after the value's header
    if (b <= 0x7f || b >= 0xe0) skip = 0; // positive and negative fixint
    else if (b <= 0x8f) items = (b & 0x0f) * 2; // fixmap
    else if (b <= 0x9f) items = b & 0x0f; // fixarray
    else if (b <= 0xbf) skip = b & 0x1f; // fixstr
    else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, false, true
        case 0xc4: case 0xd9: skip = length(1); break; // bin 8, str 8
        case 0xc5: case 0xda: skip = length(2); break; // bin 16, str 16
        case 0xc6: case 0xdb: skip = length(4); break; // bin 32, str 32
        case 0xc7: skip = extLength(1); break; // ext 8
        case 0xc8: skip = extLength(2); break; // ext 16
        case 0xc9: skip = extLength(4); break; // ext 32
        case 0xcc: case 0xd0: skip = 1; break; // uint 8, int 8
        case 0xcd: case 0xd1: skip = 2; break; // uint 16, int 16
        case 0xca: case 0xce: case 0xd2: skip = 4; break; // float 32, uint 32, int 32
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break; // float 64, uint 64, int 64
        case 0xd4: skip = 2; break; // fixext 1 (type byte + 1)
        case 0xd5: skip = 3; break; // fixext 2
        case 0xd6: skip = 5; break; // fixext 4
        case 0xd7: skip = 9; break; // fixext 8
        case 0xd8: skip = 17; break; // fixext 16
        case 0xdc: items = length(2); break; // array 16
        case 0xdd: items = length(4); break; // array 32
        case 0xde: items = length(2) * 2; break; // map 16
        case 0xdf: items = length(4) * 2; break; // map 32
        default: return false; // 0xc1 is never used: not msgpack, the parser says so
      }
      if (skip < 0 || items < -1) return false; // input ended inside a length: truncated
    }
    pos += skip;
    left[left.length - 1]!--; // this value fills one slot of the container it is in
    if (items >= 0) {
      if (left.length > maxDepth) return true; // the new container sits at depth left.length
      if (items > 0) left.push(items);
    }
    while (left.length > 0 && left[left.length - 1] === 0) left.pop();
  }
  return false;
}
