// Header parsing at the edges: nesting depth, invalid UTF-8, and the request fields whose range the schema bounds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { ConfigError, parseConfig } from '../../src/config.js';
import { decodeMessage, decodeRequest, DEFAULT_LIMITS, encodeMessage, MAX_DEPTH_CEILING, parseJsonHeader, type Frame } from '../../src/protocol/codec.js';

const text = (s: string): Frame => Buffer.from(s, 'utf8');
/** A JSON request whose `data` is `levels` nested lists: the header's depth is levels + 1. */
const jsonNested = (levels: number): Frame => text(`{"type":"x","data":${'['.repeat(levels)}${']'.repeat(levels)}}`);
/** The same in msgpack: {type: 'x', data: [[...[nil]...]]} with `levels` arrays (0x91: an array of one). */
const msgpackNestedArrays = (levels: number): Frame =>
  Buffer.concat([Buffer.from([0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x78, 0xa4, ...Buffer.from('data')]), Buffer.alloc(levels, 0x91), Buffer.from([0xc0])]);
/** {type: 'x', data: {a: {a: ... nil}}} with `levels` maps (0x81: a map of one, 0xa1 0x61: the key 'a'). */
const msgpackNestedMaps = (levels: number): Frame => {
  const body = Buffer.alloc(levels * 3);
  for (let i = 0; i < levels; i++) body.set([0x81, 0xa1, 0x61], i * 3);
  return Buffer.concat([Buffer.from([0x82, 0xa4, ...Buffer.from('type'), 0xa1, 0x78, 0xa4, ...Buffer.from('data')]), body, Buffer.from([0xc0])]);
};
const badRequest = { code: 'bad_request', name: 'GatewayError' };

describe('nesting depth', () => {
  test('100,000 nested JSON lists are a bad_request (not a stack overflow)', () => {
    assert.throws(() => decodeRequest([jsonNested(100_000)]), badRequest);
  });

  test('100,000 nested msgpack arrays, and maps, are a bad_request', () => {
    assert.throws(() => decodeRequest([msgpackNestedArrays(100_000)]), badRequest);
    assert.throws(() => decodeRequest([msgpackNestedMaps(100_000)]), badRequest);
  });

  test('a header exactly at the limit decodes; one level more does not (every codec)', () => {
    const max = DEFAULT_LIMITS.maxDepth;
    assert.equal(decodeRequest([jsonNested(max - 1)]).header.type, 'x');
    assert.throws(() => decodeRequest([jsonNested(max)]), badRequest);
    assert.equal(decodeRequest([msgpackNestedArrays(max - 1)]).header.type, 'x');
    assert.throws(() => decodeRequest([msgpackNestedArrays(max)]), badRequest);
    assert.equal(decodeRequest([msgpackNestedMaps(max - 1)]).header.type, 'x');
    assert.throws(() => decodeRequest([msgpackNestedMaps(max)]), badRequest);
  });

  test('empty containers count as a level', () => {
    const limits = { ...DEFAULT_LIMITS, maxDepth: 2 };
    assert.doesNotThrow(() => decodeMessage([text('{"a":[]}')], limits));
    assert.throws(() => decodeMessage([text('{"a":[[]]}')], limits), badRequest);
    assert.doesNotThrow(() => decodeMessage([Buffer.from(encode({ a: [] }))], limits));
    assert.throws(() => decodeMessage([Buffer.from(encode({ a: [[]] }))], limits), badRequest);
    assert.throws(() => decodeMessage([Buffer.from(encode({ a: { b: {} } }))], limits), badRequest);
  });

  test('the limit is configurable', () => {
    const header = { type: 'x', data: { a: { b: [1, 2] } } }; // depth 4
    for (const codec of ['binary', 'json'] as const) {
      const frames = encodeMessage(header, codec);
      assert.doesNotThrow(() => decodeRequest(frames, { ...DEFAULT_LIMITS, maxDepth: 4 }));
      assert.throws(() => decodeRequest(frames, { ...DEFAULT_LIMITS, maxDepth: 3 }), badRequest);
    }
  });

  test('whatever the highest configurable limit accepts can be encoded again (to be forwarded)', () => {
    const limits = { ...DEFAULT_LIMITS, maxDepth: MAX_DEPTH_CEILING };
    for (const frame of [jsonNested(MAX_DEPTH_CEILING - 1), msgpackNestedArrays(MAX_DEPTH_CEILING - 1), msgpackNestedMaps(MAX_DEPTH_CEILING - 1)]) {
      const { header } = decodeRequest([frame], limits);
      for (const codec of ['binary', 'msgpack', 'json'] as const) assert.deepEqual(decodeRequest(encodeMessage(header, codec), limits).header, header);
    }
  });

  test('the gateway config takes limits.maxDepth, between 1 and the ceiling', () => {
    assert.equal(parseConfig(undefined).limits.maxDepth, DEFAULT_LIMITS.maxDepth);
    assert.equal(parseConfig({ limits: { maxDepth: 8 } }).limits.maxDepth, 8);
    assert.throws(() => parseConfig({ limits: { maxDepth: 0 } }), ConfigError);
    assert.throws(() => parseConfig({ limits: { maxDepth: MAX_DEPTH_CEILING + 1 } }), ConfigError);
  });

  test('brackets inside JSON strings, escaped quotes included, do not count', () => {
    const s = JSON.stringify({ type: 'x', instruction: `${'['.repeat(500)} \\" ${'{'.repeat(500)}"\\`, after: [[1]] });
    assert.equal(decodeRequest([text(s)]).header.type, 'x');
    assert.throws(() => decodeRequest([text(s)], { ...DEFAULT_LIMITS, maxDepth: 2 }), badRequest); // `after` is at depth 3
  });

  test('strings, binaries and extension payloads inside msgpack are skipped, not read as structure', () => {
    const looksNested = Buffer.alloc(1000, 0x91);
    const header = { type: 'x', s: looksNested.toString('latin1'), b: looksNested, n: [1.5, -3, 2 ** 40, 'é'] };
    assert.equal(decodeRequest([Buffer.from(encode(header))], { ...DEFAULT_LIMITS, maxDepth: 2 }).header.type, 'x');
  });
});

describe('parseJsonHeader (the shared JSON door: ZMQ and HTTP)', () => {
  test('parses JSON text into a value', () => {
    assert.deepEqual(parseJsonHeader(text('{"type":"health","data":[1,{"a":null}]}'), DEFAULT_LIMITS), { type: 'health', data: [1, { a: null }] });
  });

  test('invalid UTF-8 is a bad_request, not replaced with U+FFFD', () => {
    const bytes = Buffer.concat([text('{"type":"x","instruction":"'), Buffer.from([0xff, 0xfe]), text('"}')]);
    assert.throws(() => parseJsonHeader(bytes, DEFAULT_LIMITS), badRequest);
    assert.throws(() => decodeRequest([bytes]), badRequest);
  });

  test('an overlong encoding and a lone surrogate are invalid UTF-8', () => {
    assert.throws(() => parseJsonHeader(Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]), DEFAULT_LIMITS), badRequest);
    assert.throws(() => parseJsonHeader(Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]), DEFAULT_LIMITS), badRequest);
  });

  test('too deep, not JSON, and too large give their codes', () => {
    assert.throws(() => parseJsonHeader(text('['.repeat(100_000)), DEFAULT_LIMITS), badRequest);
    assert.throws(() => parseJsonHeader(text('{"type": '), DEFAULT_LIMITS), badRequest);
    assert.throws(() => parseJsonHeader(text('{"pad":"xxxxxxxxxx"}'), { ...DEFAULT_LIMITS, maxHeaderBytes: 10 }), { code: 'too_large' });
  });
});

describe('request fields with a bounded range', () => {
  const request = (extra: Record<string, unknown>) => [Buffer.from(encode({ type: 'inference', ...extra }))];

  test('timeout_ms must be a finite number of milliseconds in (0, 1 hour]', () => {
    for (const timeout_ms of [0, -1, -0.5, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 3_600_001, 1e300, 'soon', true]) {
      assert.throws(() => decodeRequest(request({ timeout_ms })), { code: 'bad_request', path: '/timeout_ms' }, `timeout_ms ${String(timeout_ms)}`);
    }
    for (const timeout_ms of [0.5, 1, 2_000, 3_600_000]) assert.doesNotThrow(() => decodeRequest(request({ timeout_ms })));
  });

  test('only known protocol versions are accepted', () => {
    for (const version of [0, 2, 99, 1.5, -1, '1']) {
      assert.throws(() => decodeRequest(request({ version })), { code: 'bad_request', path: '/version' }, `version ${String(version)}`);
    }
    assert.doesNotThrow(() => decodeRequest(request({ version: 1 })));
  });

  test('requests without version or timeout_ms stay valid (clients of the original design)', () => {
    assert.equal(decodeRequest(request({})).header.type, 'inference');
    assert.equal(decodeRequest([text('{"type":"inference","data":{"image":[[1]],"robot_state":[0.1]}}')]).header.type, 'inference');
  });
});
