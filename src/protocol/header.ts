// Parse a header frame (JSON text or msgpack) into plain values, enforcing the header limits. Pure: no I/O.
// Meant for every door that reads a header (the codec's decodeMessage, and the HTTP door's JSON body through
// parseJsonHeader), so malformed bytes get the same `bad_request`/`too_large` answer whichever door they came through.
import { Decoder } from '@msgpack/msgpack';
import { GatewayError } from '../lib/errors.js';
import { jsonDepthExceeds, msgpackDepthExceeds } from './depth.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';

const JSON_FIRST_BYTE = 0x7b; // '{'

// fatal: invalid UTF-8 is an error, not silently replaced with U+FFFD (which would hand a handler text the
// client never sent).
const utf8 = new TextDecoder('utf-8', { fatal: true });

function checkSize(bytes: Uint8Array, limits: Limits): void {
  if (bytes.byteLength > limits.maxHeaderBytes) {
    throw new GatewayError('too_large', `header is ${bytes.byteLength} bytes; the limit is ${limits.maxHeaderBytes}`);
  }
}

function tooDeep(limits: Limits): GatewayError {
  return new GatewayError('bad_request', `header is nested deeper than ${limits.maxDepth} levels (the limit)`, { path: '/' });
}

/**
 * JSON text (any JSON value, not only an object) → value. Throws `too_large` above `maxHeaderBytes`, and
 * `bad_request` for invalid UTF-8, nesting deeper than `maxDepth`, or text that is not JSON.
 */
export function parseJsonHeader(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): unknown {
  checkSize(bytes, limits);
  // Depth first: the scan is cheaper than decoding, and a hostile header is rejected before it is turned into text.
  if (jsonDepthExceeds(bytes, limits.maxDepth)) throw tooDeep(limits);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (err) {
    throw new GatewayError('bad_request', 'header is not valid UTF-8', { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GatewayError('bad_request', `header is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function msgpackDecoder(limits: Limits): Decoder {
  return new Decoder({
    maxStrLength: limits.maxHeaderBytes,
    maxBinLength: limits.maxMessageBytes,
    maxArrayLength: limits.maxMessageBytes,
    maxMapLength: 1 << 20,
    maxExtLength: 0,
  });
}
// One Decoder per limits object: it holds a reusable buffer and key cache.
const decoders = new WeakMap<Limits, Decoder>();
const decoderFor = (limits: Limits) => {
  let d = decoders.get(limits);
  if (!d) decoders.set(limits, (d = msgpackDecoder(limits)));
  return d;
};

/** msgpack bytes → value. Throws `too_large` above `maxHeaderBytes`, `bad_request` when too deep or not msgpack. */
export function parseMsgpackHeader(bytes: Uint8Array, limits: Limits = DEFAULT_LIMITS): unknown {
  checkSize(bytes, limits);
  if (msgpackDepthExceeds(bytes, limits.maxDepth)) throw tooDeep(limits);
  try {
    return decoderFor(limits).decode(bytes);
  } catch (err) {
    throw new GatewayError('bad_request', `header is not valid msgpack: ${(err as Error).message}`, { cause: err });
  }
}

/** A header frame of either kind, told apart by its first byte (a JSON header starts with `{`, msgpack never does). */
export function parseHeader(frame: Uint8Array, limits: Limits = DEFAULT_LIMITS): { raw: unknown; json: boolean } {
  if (frame[0] === JSON_FIRST_BYTE) return { raw: parseJsonHeader(frame, limits), json: true };
  return { raw: parseMsgpackHeader(frame, limits), json: false };
}
