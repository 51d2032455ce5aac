// The rule that recognises the original ROBOTIS client's health request, and the reply it gets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestHeader } from '../../src/protocol/messages.js';
import { healthSaysReady, isOriginalHealthCheck, originalHealthReply } from '../../src/protocol/original-health.js';

const original: RequestHeader = { type: 'health', data: {}, timestamp: 1_700_000_000.5, request_id: '6f1c0d1e-0000-4000-8000-000000000000' };

test('only the original envelope on JSON is the original client\'s health check', () => {
  assert.equal(isOriginalHealthCheck(original, 'json'), true);
  const { data: _data, ...withoutData } = original;
  assert.equal(isOriginalHealthCheck(withoutData, 'json'), true);
  // Not the original client: another codec, another type, a missing or mistyped original field, any field of ours.
  assert.equal(isOriginalHealthCheck(original, 'binary'), false);
  assert.equal(isOriginalHealthCheck(original, 'msgpack'), false);
  assert.equal(isOriginalHealthCheck({ ...original, type: 'inference' }, 'json'), false);
  const { timestamp: _t, ...noTimestamp } = original;
  assert.equal(isOriginalHealthCheck(noTimestamp, 'json'), false);
  const { request_id: _r, ...noId } = original;
  assert.equal(isOriginalHealthCheck(noId, 'json'), false);
  assert.equal(isOriginalHealthCheck({ ...original, timestamp: '1' as unknown as number }, 'json'), false);
  for (const extra of [{ version: 1 }, { framework: 'demo' }, { timeout_ms: 100 }, { auth_token: 'x' }, { other: true }]) {
    assert.equal(isOriginalHealthCheck({ ...original, ...extra }, 'json'), false, JSON.stringify(extra));
  }
});

test('a success reply becomes status "ok" with every other field kept; an error reply stays as it is', () => {
  const success = { status: 'success' as const, result: { ready: true }, request_id: 'r', timestamp: 2, version: 1 };
  assert.deepEqual(originalHealthReply(success), { ...success, status: 'ok' });
  const error = { status: 'error' as const, error: { code: 'unavailable' as const, message: 'not ready', retryable: true }, request_id: 'r' };
  assert.equal(originalHealthReply(error), error);
});

test('only ready: true is ready', () => {
  assert.equal(healthSaysReady({ ready: true }), true);
  for (const r of [{ ready: false }, { ready: 'yes' }, {}, null, undefined, true]) assert.equal(healthSaysReady(r), false);
});
