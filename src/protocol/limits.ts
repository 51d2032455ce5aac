// The limits every receiver enforces on a message before it builds anything from it. Pure: no I/O.
import { GatewayError } from '../lib/errors.js';

export interface Limits {
  /** Largest message, all frames together, in bytes. */
  maxMessageBytes: number;
  /** Most frames in one message (header included). */
  maxFrames: number;
  /** Largest header frame in bytes. */
  maxHeaderBytes: number;
  /** Deepest nesting of lists and maps in a header; the header object itself is level 1. */
  maxDepth: number;
}

/**
 * The highest `maxDepth` a receiver may be configured with. Every walk of a header recurses (resolve, the encoders,
 * a Python worker's code), so the ceiling keeps them all far from the end of their stacks; `encodeMessage`'s
 * msgpack Encoder is set up from it so that whatever a receiver accepts can be re-encoded and forwarded.
 */
export const MAX_DEPTH_CEILING = 100;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxMessageBytes: 64 * 1024 * 1024,
  maxFrames: 64,
  // Room for clients of the original design, which send whole observations as nested lists in the JSON
  // header (three 224x224x3 images are about 2 MB of text).
  maxHeaderBytes: 16 * 1024 * 1024,
  // An observation sent as nested lists is about 7 levels deep (header, data, images, camera, H, W, C); 64
  // leaves room for handler-defined payloads while keeping every recursive walk of a header (ours, the
  // encoders', a Python worker's under its 1000-frame recursion limit) far from its stack's end.
  maxDepth: 64,
});

/** A message frame as it is sent or received: a Buffer from zeromq, or any byte view. */
export type Frame = Uint8Array;

/** Throws `too_large` or `bad_request` when the frames break a limit. Returns the total byte size. */
export function checkLimits(frames: readonly Frame[], limits: Limits = DEFAULT_LIMITS): number {
  if (frames.length === 0) throw new GatewayError('bad_request', 'empty message: no header frame');
  if (frames.length > limits.maxFrames) {
    throw new GatewayError('too_large', `message has ${frames.length} frames; the limit is ${limits.maxFrames}`);
  }
  if (frames[0]!.byteLength > limits.maxHeaderBytes) {
    throw new GatewayError('too_large', `header is ${frames[0]!.byteLength} bytes; the limit is ${limits.maxHeaderBytes}`);
  }
  let size = 0;
  for (const f of frames) size += f.byteLength;
  if (size > limits.maxMessageBytes) {
    throw new GatewayError('too_large', `message is ${size} bytes; the limit is ${limits.maxMessageBytes}`);
  }
  return size;
}
