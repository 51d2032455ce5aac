// W3C trace context in the envelope: parse/format, pass-through without an SDK, one trace across the hop with
// the in-memory exporter, and with the real OTLP/HTTP exporter into a local receiver across two processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { context, ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import type { RequestHeader } from '../../src/protocol/messages.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { resolveTelemetryConfig, startTelemetry } from '../../src/telemetry/sdk.js';
import {
  CLIENT_SPAN_NAME,
  extractTraceContext,
  formatTraceparent,
  getTracer,
  injectTraceContext,
  parseTraceparent,
  SERVER_SPAN_NAME,
  startClientSpan,
  startServerSpan,
  type TraceCarrier,
} from '../../src/telemetry/tracing.js';
import { startOtlpReceiver } from '../../bench/lib/otlp-receiver.js';
import { registerInMemoryTracing } from '../../bench/lib/in-memory-tracing.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

test('traceparent parse/format follows W3C TraceContext', () => {
  const sc = parseTraceparent(TRACEPARENT, 'vendor=abc,other=1');
  assert.ok(sc);
  assert.equal(sc.traceId, TRACE_ID);
  assert.equal(sc.spanId, SPAN_ID);
  assert.equal(sc.traceFlags, TraceFlags.SAMPLED);
  assert.equal(sc.isRemote, true);
  assert.equal(sc.traceState?.get('vendor'), 'abc');
  assert.equal(formatTraceparent(sc), TRACEPARENT);
  assert.equal(formatTraceparent({ ...sc, traceFlags: TraceFlags.NONE }), `00-${TRACE_ID}-${SPAN_ID}-00`);
  for (const bad of [
    undefined,
    '',
    `00-${'0'.repeat(32)}-${SPAN_ID}-01`, // all-zero trace id
    `00-${TRACE_ID}-${'0'.repeat(16)}-01`, // all-zero span id
    `ff-${TRACE_ID}-${SPAN_ID}-01`, // forbidden version
    `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`, // uppercase hex
    `00-${TRACE_ID}-${SPAN_ID}-01-extra`, // version 00 has four fields
    `00-${TRACE_ID}-${SPAN_ID}`,
  ]) {
    assert.equal(parseTraceparent(bad), undefined, `rejects ${bad}`);
  }
  // A future version may append fields; the first four still count.
  assert.equal(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01-future`)?.traceId, TRACE_ID);
});

test('without an SDK: spans are no-ops and a caller traceparent passes through to the worker unchanged', () => {
  assert.equal(getTracer().startSpan('x').isRecording(), false);
  const incoming: RequestHeader = { type: 'inference', traceparent: TRACEPARENT, tracestate: 'vendor=abc' };
  const server = startServerSpan({ framework: 'demo', transport: 'zmq', codec: 'binary', requestId: 'r1' }, incoming);
  const outgoing: RequestHeader = { type: 'inference' };
  const client = startClientSpan(outgoing, { framework: 'demo', endpoint: 'tcp://127.0.0.1:5555' }, server.context);
  assert.equal(outgoing.traceparent, TRACEPARENT);
  assert.equal(outgoing.tracestate, 'vendor=abc');
  client.end('ok');
  server.end('ok');
  // No caller context: nothing is invented.
  const bare: RequestHeader = { type: 'inference' };
  startClientSpan(bare, { framework: 'demo', endpoint: 'e' }).end('ok');
  assert.equal(bare.traceparent, undefined);
  assert.equal(injectTraceContext<TraceCarrier>({}, ROOT_CONTEXT).traceparent, undefined);
});

test('in-memory exporter: caller span → header → gateway server span → client span → worker span, one trace', async (t) => {
  const sdk = registerInMemoryTracing();
  t.after(() => sdk.close());
  const tracer = getTracer();

  // Caller side: a parent span, its context injected into the request header.
  const callerSpan = tracer.startSpan('robot.tick', { kind: SpanKind.CLIENT });
  const header = injectTraceContext<RequestHeader>({ type: 'inference', request_id: 'req-1' }, trace.setSpan(ROOT_CONTEXT, callerSpan));
  assert.equal(header.traceparent, `00-${callerSpan.spanContext().traceId}-${callerSpan.spanContext().spanId}-01`);

  // Gateway: extract on the other side of the wire (after a JSON round trip, as the header travels).
  const received = JSON.parse(JSON.stringify(header)) as RequestHeader;
  const server = startServerSpan({ framework: 'demo', transport: 'zmq', codec: 'json', requestId: 'req-1' }, received);
  const forward: RequestHeader = { type: 'inference', request_id: 'req-1', traceparent: received.traceparent };
  // The front door runs the router under the server span's context; the ZMQ client finds it active.
  const client = context.with(server.context, () =>
    startClientSpan(forward, { framework: 'demo', endpoint: 'tcp://127.0.0.1:5555', requestId: 'req-1' }),
  );

  // Worker: continues from the forwarded header.
  const workerCtx = extractTraceContext(JSON.parse(JSON.stringify(forward)) as RequestHeader);
  const workerSpan = tracer.startSpan('worker.infer', { kind: SpanKind.SERVER }, workerCtx);
  workerSpan.end();
  client.end('ok');
  server.end('timeout', 'deadline passed');
  callerSpan.end();

  const spans = sdk.exporter.getFinishedSpans();
  const byName = new Map(spans.map((s) => [s.name, s]));
  const caller = byName.get('robot.tick')!;
  const gw = byName.get(SERVER_SPAN_NAME)!;
  const hop = byName.get(CLIENT_SPAN_NAME)!;
  const worker = byName.get('worker.infer')!;
  assert.ok(caller && gw && hop && worker, `all four spans exported: ${spans.map((s) => s.name).join(', ')}`);
  const traceId = caller.spanContext().traceId;
  for (const s of [gw, hop, worker]) assert.equal(s.spanContext().traceId, traceId, `${s.name} shares the trace id`);
  assert.equal(gw.parentSpanContext?.spanId, caller.spanContext().spanId);
  assert.equal(hop.parentSpanContext?.spanId, gw.spanContext().spanId);
  assert.equal(worker.parentSpanContext?.spanId, hop.spanContext().spanId);
  assert.equal(gw.kind, SpanKind.SERVER);
  assert.equal(hop.kind, SpanKind.CLIENT);
  assert.deepEqual(
    { framework: gw.attributes.framework, transport: gw.attributes.transport, codec: gw.attributes.codec, request_id: gw.attributes.request_id, outcome: gw.attributes.outcome },
    { framework: 'demo', transport: 'zmq', codec: 'json', request_id: 'req-1', outcome: 'timeout' },
  );
  assert.equal(gw.status.code, 2 /* ERROR */);
  assert.equal(hop.attributes['server.address'], 'tcp://127.0.0.1:5555');
});

test('OTEL_* configuration: off by default, on with an endpoint or exporter, OTEL_SDK_DISABLED wins', async () => {
  assert.deepEqual(resolveTelemetryConfig('gw', {}).tracesExporters, []);
  assert.deepEqual(resolveTelemetryConfig('gw', {}).metricsExporters, []);
  const on = resolveTelemetryConfig('gw', {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/',
    OTEL_SERVICE_NAME: 'edge-gw',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-token=a%20b,k=v',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=lab',
  });
  assert.deepEqual(on.tracesExporters, ['otlp']);
  assert.deepEqual(on.metricsExporters, ['otlp']);
  assert.equal(on.tracesEndpoint, 'http://127.0.0.1:4318/v1/traces');
  assert.equal(on.metricsEndpoint, 'http://127.0.0.1:4318/v1/metrics');
  assert.equal(on.serviceName, 'edge-gw');
  assert.deepEqual(on.tracesHeaders, { 'x-token': 'a b', k: 'v' });
  assert.equal(on.resourceAttributes['deployment.environment'], 'lab');
  const tracesOnly = resolveTelemetryConfig('gw', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
  assert.deepEqual(tracesOnly.tracesExporters, ['otlp']);
  assert.deepEqual(tracesOnly.metricsExporters, []);
  assert.equal(tracesOnly.tracesEndpoint, 'http://127.0.0.1:4318/v1/traces');
  assert.equal(tracesOnly.warnings.length, 1);
  assert.deepEqual(resolveTelemetryConfig('gw', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_TRACES_EXPORTER: 'none' }).tracesExporters, []);

  const disabled = startTelemetry({ serviceName: 'gw', env: { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' } });
  assert.equal(disabled.tracesEnabled, false);
  assert.equal(getTracer().startSpan('x').isRecording(), false);
  await disabled.shutdown();
  const none = startTelemetry({ serviceName: 'gw', env: {} });
  assert.equal(none.tracesEnabled || none.metricsEnabled, false);
  await none.shutdown();
});

test('real OTLP/HTTP exporters: one trace id across gateway and a worker process; request metrics over OTLP', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const telemetry = startTelemetry({
    serviceName: 'test-gateway',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_METRIC_EXPORT_INTERVAL: '200' },
  });
  t.after(() => telemetry.shutdown());
  assert.equal(telemetry.tracesEnabled, true);
  assert.equal(telemetry.metricsEnabled, true);
  // The registry goes out over OTLP at each export (a MetricProducer reads it; nothing per request).
  const metrics = createMetrics(new Registry());
  telemetry.exportMetrics(metrics.registry);

  // Caller's traceparent arrives at the gateway front door.
  const incoming: RequestHeader = { type: 'inference', request_id: 'otlp-1', traceparent: TRACEPARENT };
  const obs = metrics.requestStarted({ framework: 'demo', transport: 'http', codec: 'binary' });
  const server = startServerSpan({ framework: 'demo', transport: 'http', codec: 'binary', requestId: 'otlp-1' }, incoming);
  const forward: RequestHeader = { type: 'inference', request_id: 'otlp-1' };
  const client = startClientSpan(forward, { framework: 'demo', endpoint: 'tcp://127.0.0.1:5555', requestId: 'otlp-1' }, server.context);

  // The worker side is another process with its own SDK and exporter.
  const fixture = fileURLToPath(new URL('./fixtures/worker-span.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, receiver.url], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(JSON.stringify(forward));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `worker process failed: ${err}`);
  const workerIds = JSON.parse(out) as { traceId: string; spanId: string };

  client.end('ok');
  server.end('ok');
  obs.end({ outcome: 'ok', requestBytes: 10, responseBytes: 20, stagesMs: { worker_compute: 1 } });
  await telemetry.forceFlush();

  const spans = await receiver.waitForSpans((s) => s.length >= 3);
  const gw = spans.find((s) => s.name === SERVER_SPAN_NAME);
  const hop = spans.find((s) => s.name === CLIENT_SPAN_NAME);
  const worker = spans.find((s) => s.name === 'worker.infer');
  assert.ok(gw && hop && worker, `spans received: ${spans.map((s) => s.name).join(', ')}`);
  assert.equal(gw.serviceName, 'test-gateway');
  assert.equal(worker.serviceName, 'test-worker');
  for (const s of [gw, hop, worker]) assert.equal(s.traceId, TRACE_ID, `${s.name} continues the caller's trace`);
  assert.equal(gw.parentSpanId, SPAN_ID);
  assert.equal(hop.parentSpanId, gw.spanId);
  assert.equal(worker.parentSpanId, hop.spanId);
  assert.equal(worker.spanId, workerIds.spanId);
  assert.equal(gw.attributes.request_id, 'otlp-1');
  assert.equal(gw.attributes.outcome, 'ok');

  const received = await receiver.waitForMetrics((m) => m.some((x) => x.name === 'gateway_request_duration_seconds'));
  const duration = received.find((m) => m.name === 'gateway_request_duration_seconds')!;
  assert.equal(duration.serviceName, 'test-gateway');
  assert.ok(duration.points.some((p) => p.framework === 'demo' && p.outcome === 'ok' && p.transport === 'http'));
  assert.deepEqual(receiver.rejected, []);
});
