import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/lib/errors.js';
import * as messages from '../../src/protocol/messages.js';
import { loadSchemas, isValid } from '../../src/protocol/schemas.js';
import { DTYPES } from '../../src/protocol/tensor.js';

const schemas = loadSchemas();
const keys = (o: object) => Object.keys(o).sort();
const props = (s: { properties?: Record<string, unknown> }) => keys(s.properties ?? {});

test('TypeScript envelope types list exactly the schema fields', () => {
  assert.deepEqual(keys(messages.REQUEST_HEADER_FIELDS), props(schemas.request));
  assert.deepEqual(keys(messages.REPLY_HEADER_FIELDS), props(schemas.reply));
  assert.deepEqual(keys(messages.WORKER_TIMING_FIELDS), props((schemas.reply.definitions as Record<string, { properties: Record<string, unknown> }>).timing!));
  assert.deepEqual(keys(messages.WIRE_ERROR_FIELDS), props(schemas.error));
  assert.deepEqual(keys(messages.OBSERVATION_FIELDS), props(schemas.observation));
  assert.deepEqual(keys(messages.ACTION_CHUNK_FIELDS), props(schemas['action-chunk']));
  assert.deepEqual(keys(messages.HEALTH_RESULT_FIELDS), props(schemas.health));
});

test('the protocol version this side speaks is one the request schema accepts', () => {
  const version = (schemas.request.properties as Record<string, { enum: number[] }>).version!;
  assert.deepEqual(version.enum, [messages.PROTOCOL_VERSION]);
});

test('closed lists (dtypes, error codes) match the schemas', () => {
  const tensorDefs = schemas.tensor.definitions as Record<string, { enum: string[] }>;
  assert.deepEqual([...DTYPES].sort(), [...tensorDefs.dtype!.enum].sort());
  const errorProps = schemas.error.properties as Record<string, { enum: string[] }>;
  assert.deepEqual([...ERROR_CODES].sort(), [...errorProps.code!.enum].sort());
});

test('schemas accept the original envelope and reject a broken one', () => {
  assert.ok(isValid('request', { type: 'inference', data: { image: [[1]], robot_state: [0.1] }, timestamp: 1.5, request_id: 'abc' }));
  assert.ok(isValid('reply', { status: 'error', error: 'Unknown message type: foo', request_id: 'abc', timestamp: 2 }));
  assert.ok(!isValid('request', { data: {} }));
  assert.ok(!isValid('reply', { status: 'ok' }));
  assert.ok(isValid('health', { ready: true, framework: 'demo' }));
  assert.ok(!isValid('tensor', { __tensor__: true, dtype: 'float32', shape: [1], frame: 1, data: new Uint8Array(4) }));
});
