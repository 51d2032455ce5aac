// Property-based fuzzing of the TypeScript decoders, shared by test/protocol/fuzz.test.ts (a bounded run in the
// suite) and scripts/fuzz-long.ts (a million inputs and more, by hand).
//
// The one property: whatever the frames, decodeMessage/decodeRequest/decodeReply either decode or throw a
// GatewayError whose code is on the closed list. Any other exception (RangeError from a stack overflow, TypeError
// from a value of an unexpected shape) fails it, and so does a hang (the callers bound the time).
import fc from 'fast-check';
import { ERROR_CODES, GatewayError, type ErrorCode } from '../../src/lib/errors.js';
import { decodeMessage, decodeReply, decodeRequest, DEFAULT_LIMITS, encodeMessage, type Codec, type Frame, type Limits } from '../../src/protocol/codec.js';
import { Tensor } from '../../src/protocol/tensor.js';

/** Small limits, so that generated inputs reach the limit checks as well as the defaults. */
export const SMALL_LIMITS: Readonly<Limits> = Object.freeze({ maxMessageBytes: 64 * 1024, maxFrames: 4, maxHeaderBytes: 32 * 1024, maxDepth: 8 });
const limitsArb = fc.constantFrom<Readonly<Limits>>(SMALL_LIMITS, DEFAULT_LIMITS);

/** `ok`, or the code of the GatewayError each decoder threw. Rethrows anything else. */
export function decodeOutcome(frames: readonly Frame[], limits: Readonly<Limits>): ErrorCode | 'ok' {
  let outcome: ErrorCode | 'ok' = 'ok';
  for (const decode of [decodeMessage, decodeRequest, decodeReply]) {
    try {
      decode(frames, limits);
    } catch (err) {
      if (!(err instanceof GatewayError) || !(ERROR_CODES as readonly string[]).includes(err.code)) throw err;
      outcome = err.code;
    }
  }
  return outcome;
}

// Random bytes almost never nest deeply, so some inputs are made of short pieces repeated up to 20,000 times, and
// some are well-formed towers (open^n leaf close^n): deep enough to overflow the stack of any recursive walk (V8
// runs out after roughly 10,000 frames), and balanced, so that a parser without a depth limit accepts them.
const repeats = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 20_000 }));
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const MSGPACK_REQUEST_PREFIX = latin1(Uint8Array.of(0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x78, 0xa4, ...Buffer.from('data'))); // {type: 'x', data: …
const JSON_REQUEST_PREFIX = '{"type":"x","data":';

const msgpackPieces = fc.oneof(
  fc.constantFrom(Uint8Array.of(0x91), Uint8Array.of(0x81, 0xa1, 0x61), Uint8Array.of(0xdc, 0x00, 0x01), Uint8Array.of(0xc0)),
  fc.uint8Array({ maxLength: 4 }),
);
const byteRuns = fc
  .array(fc.tuple(msgpackPieces, repeats), { maxLength: 6 })
  .map((parts) => Buffer.from(parts.map(([piece, times]) => latin1(piece).repeat(times)).join(''), 'latin1'));
const msgpackTowers = fc
  .tuple(fc.constantFrom(Uint8Array.of(0x91), Uint8Array.of(0x81, 0xa1, 0x61), Uint8Array.of(0xdc, 0x00, 0x01), Uint8Array.of(0xde, 0x00, 0x01, 0xa1, 0x61)), repeats, fc.uint8Array({ minLength: 1, maxLength: 3 }))
  .map(([open, times, leaf]) => Buffer.from(MSGPACK_REQUEST_PREFIX + latin1(open).repeat(times) + latin1(leaf), 'latin1'));

const JSON_ALPHABET = '{}[]",:\\ 0123456789.-eEtrufalsné';
const jsonPieces = fc.oneof(fc.constantFrom('[', '{"a":', '[1,', ']', '}', '"', '\\'), fc.string({ unit: fc.constantFrom(...JSON_ALPHABET), maxLength: 6 }));
const jsonRuns = fc
  .array(fc.tuple(jsonPieces, repeats), { maxLength: 6 })
  .map((parts) => Buffer.from(JSON_REQUEST_PREFIX + parts.map(([piece, times]) => piece.repeat(times)).join(''), 'utf8'));
const jsonTowers = fc
  .tuple(fc.constantFrom(['[', ']'], ['{"a":', '}'], ['[1,', ']'], ['[{"b":[', ']}]']), repeats, fc.constantFrom('1', '"s"', 'null', '[]', ''))
  .map(([[open, close], times, leaf]) => Buffer.from(`${JSON_REQUEST_PREFIX}${open!.repeat(times)}${leaf}${close!.repeat(times)}}`, 'utf8'));

/** Arbitrary frames: random bytes, msgpack-ish runs and towers, JSON-ish runs and towers. */
export const arbitraryFrames = fc.tuple(
  fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), byteRuns, msgpackTowers, jsonRuns, jsonTowers), { minLength: 0, maxLength: 5 }),
  limitsArb,
);

/** Any JSON-like value, nested on both sides of SMALL_LIMITS.maxDepth, sent as a request's data in each codec. */
export const nestedValues = fc.tuple(
  fc.anything({ maxDepth: 12, withNullPrototype: true, withTypedArray: true, withBigInt: false, withMap: false, withSet: false }),
  fc.constantFrom<Codec>('binary', 'msgpack', 'json'),
  limitsArb,
);

/** The frames of a header; undefined when the encoder itself refuses it (not the decoders' business). */
function tryEncode(header: object, codec: Codec): Frame[] | undefined {
  try {
    return encodeMessage(header, codec);
  } catch {
    return undefined;
  }
}

const tensorArb = fc.oneof(
  fc.float32Array({ maxLength: 8 }).map((a) => Tensor.of(a)),
  fc.uint8Array({ maxLength: 12 }).map((a) => new Tensor('uint8', [a.length], a)),
  fc.bigInt64Array({ maxLength: 3 }).map((a) => Tensor.of(a)),
);
const requestArb = fc.record(
  {
    type: fc.oneof(fc.constantFrom('inference', 'health', ''), fc.string({ maxLength: 70 })),
    data: fc.record({ state: tensorArb, images: fc.dictionary(fc.string({ maxLength: 3 }), tensorArb, { maxKeys: 2 }), instruction: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }),
    request_id: fc.string({ maxLength: 130 }),
    version: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.double()),
    timeout_ms: fc.oneof(fc.integer({ min: -5, max: 5_000_000 }), fc.double()),
  },
  { requiredKeys: ['type'] },
);
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), frame: fc.nat(), pos: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), frame: fc.nat(), pos: fc.nat() }),
  fc.record({ kind: fc.constant('drop' as const), frame: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), frame: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** Applies mutations to copies of the frames (byte overwrite, truncation, dropping or duplicating a frame). */
export function mutate(frames: readonly Frame[], mutations: readonly Mutation[]): Frame[] {
  const out = frames.map((f) => Uint8Array.from(f));
  for (const m of mutations) {
    if (out.length === 0) break;
    const i = m.frame % out.length;
    const f = out[i]!;
    if (m.kind === 'set' && f.length > 0) f[m.pos % f.length] = m.byte;
    else if (m.kind === 'truncate') out[i] = f.subarray(0, m.pos % (f.length + 1));
    else if (m.kind === 'drop') out.splice(i, 1);
    else if (m.kind === 'duplicate') out.splice(i, 0, Uint8Array.from(f));
  }
  return out;
}

/** Valid requests (tensors included) in each codec, then mutated. */
export const mutatedRequests = fc.tuple(requestArb, fc.constantFrom<Codec>('binary', 'msgpack', 'json'), fc.array(mutation, { maxLength: 6 }), limitsArb);

/** Runs one property with the given fast-check parameters (seed, numRuns); never throws, returns the details. */
export type PropertyRun = (params: { seed: number; numRuns: number }) => fc.RunDetails<unknown>;
const runner = <T extends [unknown, ...unknown[]]>(property: fc.IProperty<T>): PropertyRun => (params) => fc.check(property, params) as fc.RunDetails<unknown>;

/** Every property, by name; each holds when decodeOutcome never throws. */
export const PROPERTIES: Readonly<Record<string, PropertyRun>> = {
  'arbitrary frames': runner(
    fc.property(arbitraryFrames, ([frames, limits]) => {
      decodeOutcome(frames, limits);
    }),
  ),
  // Well-formed messages are decoded or refused for a reason of the input (too deep, too large, not a request).
  'nested values in each codec': runner(
    fc.property(nestedValues, ([value, codec, limits]) => {
      const frames = tryEncode({ type: 'x', data: value }, codec);
      if (!frames) return;
      const outcome = decodeOutcome(frames, limits);
      if (outcome !== 'ok' && outcome !== 'bad_request' && outcome !== 'too_large') throw new Error(`a well-formed message got ${outcome}`);
    }),
  ),
  'mutated valid requests': runner(
    fc.property(mutatedRequests, ([request, codec, mutations, limits]) => {
      const frames = tryEncode(request, codec);
      if (frames) decodeOutcome(mutate(frames, mutations), limits);
    }),
  ),
};
