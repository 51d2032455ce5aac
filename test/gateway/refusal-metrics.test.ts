// A request refused before it decodes (a body over the limit, bytes that are no message, a missing token) is still
// a request: it counts in gateway_requests_total and the duration histogram with its error code as outcome, on
// both doors, not only in gateway_errors_total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import * as zmq from 'zeromq';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { metricValue } from '../support/docker.js';
import { startTestGateway } from '../support/gateway.js';

test('refusals before decoding count as requests with their outcome, on HTTP and ZMQ', async (t) => {
  const metrics = createMetrics(new Registry());
  const gateway = await startTestGateway(t, { authToken: 'refusal-token-0123456789', http: { bodyLimitBytes: 2048 } }, { metrics });
  const post = (path: string, body: string) => fetch(`${gateway.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.equal((await post('/v1/frameworks/demo/inference', JSON.stringify({ state: new Array(4000).fill(0) }))).status, 413);
  assert.equal((await post('/v1/frameworks/demo/command', '{"command":"x"}')).status, 401);

  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 5_000 });
  t.after(() => dealer.close());
  dealer.connect(gateway.zmqEndpoint);
  await dealer.send(['', Buffer.from([0xc1, 0x00, 0xff])]);
  const [, reply] = await dealer.receive();
  assert.ok(reply && reply.byteLength > 0, 'an error reply to bytes that are no message');

  const text = await metrics.registry.metrics();
  const count = (labels: Record<string, string>) => metricValue(text, 'gateway_requests_total', labels);
  assert.equal(count({ framework: 'demo', transport: 'http', outcome: 'too_large' }), 1);
  assert.equal(count({ framework: 'demo', transport: 'http', outcome: 'unauthorized' }), 1);
  // Bytes that never decoded name no framework: the 'unknown' label (callers cannot create series).
  assert.equal(count({ framework: 'unknown', transport: 'zmq', outcome: 'bad_request' }), 1, text.split('\n').filter((l) => l.startsWith('gateway_requests_total')).join('\n'));
  assert.ok((metricValue(text, 'gateway_request_duration_seconds_count', { framework: 'demo', transport: 'http', outcome: 'too_large' }) ?? 0) >= 1);
});
