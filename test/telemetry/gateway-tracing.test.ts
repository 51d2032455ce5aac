// The gateway wired end to end, in one process with the in-memory exporter: a caller's span → the HTTP and ZMQ
// front doors' server spans → the gateway's client span → the TS WorkerServer's span, one trace id and correct
// parents; the Python SDK worker receives the gateway client span's traceparent (no OpenTelemetry installed there);
// and the stage metrics hold data for decode, worker_compute, transport and encode after requests through each door.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter, ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { Registry } from 'prom-client';
import { sampleObservation, sampleState } from '../../src/cli/sample.js';
import { parseConfig } from '../../src/config.js';
import { buildGateway, type Gateway, type GatewayEnvironment } from '../../src/build-gateway.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { CLIENT_SPAN_NAME, formatTraceparent, getTracer, SERVER_SPAN_NAME, WORKER_SPAN_NAME } from '../../src/telemetry/tracing.js';
import { createDemoWorker } from '../../src/worker/demo-worker.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { spawnPythonWorker } from '../support/python-worker.js';
import { registerInMemoryTracing } from '../../bench/lib/in-memory-tracing.js';

const PROBE_DIR = fileURLToPath(new URL('../python-sdk/', import.meta.url));

function registerInMemory(t: TestContext): InMemorySpanExporter {
  const sdk = registerInMemoryTracing();
  t.after(() => sdk.close());
  return sdk.exporter;
}

async function gatewayFor(t: TestContext, endpoint: string, deps: GatewayEnvironment = {}, codec = 'binary'): Promise<Gateway> {
  const config = parseConfig(
    { healthIntervalMs: 200, defaultFramework: 'demo', frameworks: { demo: { endpoints: [endpoint], codec, timeoutMs: 10_000 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const gateway = await buildGateway(config, deps);
  t.after(() => gateway.close(500));
  const until = Date.now() + 10_000;
  while (gateway.router.notReady().length > 0) {
    assert.ok(Date.now() < until, 'the worker became ready');
    await new Promise((r) => setTimeout(r, 20));
  }
  return gateway;
}

const spanId = (s: ReadableSpan) => s.spanContext().spanId;
const traceIdOf = (s: ReadableSpan) => s.spanContext().traceId;

test('one trace from the caller through the HTTP and ZMQ front doors and the gateway client span to the TS worker', async (t) => {
  const exporter = registerInMemory(t);
  const worker = createDemoWorker({ endpoint: 'tcp://127.0.0.1:*' });
  await worker.start();
  t.after(() => worker.close());
  const gateway = await gatewayFor(t, worker.endpoint);
  exporter.reset(); // health checks made no spans to speak of; start clean

  const tracer = getTracer();
  // --- ZMQ: the caller's span is active; its WorkerClient hop to the gateway is a client span under it.
  const callerZmq = tracer.startSpan('robot.tick.zmq', { kind: SpanKind.INTERNAL });
  const caller = new WorkerClient({ endpoint: gateway.zmqEndpoint, framework: 'caller', timeoutMs: 10_000 });
  t.after(() => caller.close());
  const zmqReply = await context.with(trace.setSpan(ROOT_CONTEXT, callerZmq), () =>
    caller.request({ type: 'inference', framework: 'demo', data: sampleObservation('S') }),
  );
  callerZmq.end();
  assert.equal((zmqReply.result as { model: string }).model, 'demo-v1');

  // --- HTTP: the caller sends its span's context in the W3C `traceparent` header.
  const callerHttp = tracer.startSpan('robot.tick.http', { kind: SpanKind.CLIENT });
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: formatTraceparent(callerHttp.spanContext()) },
    body: JSON.stringify({ data: { state: Array.from(sampleState()) }, request_id: 'http-traced' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.arrayBuffer();
  callerHttp.end();

  // --- HTTP error: unknown framework still gets a server span in the caller's trace, marked as an error.
  const callerBad = tracer.startSpan('robot.tick.bad');
  const bad = await fetch(`${gateway.httpUrl}/v1/frameworks/nope/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: formatTraceparent(callerBad.spanContext()) },
    body: '{"data":{}}',
  });
  assert.equal(bad.status, 404);
  await bad.arrayBuffer();
  callerBad.end();

  const spans = exporter.getFinishedSpans();
  const names = spans.map((s) => `${s.name}(${traceIdOf(s).slice(0, 6)})`).join(', ');
  const inTrace = (root: { spanContext(): { traceId: string } }) => spans.filter((s) => traceIdOf(s) === root.spanContext().traceId);

  // ZMQ chain: caller → caller hop → gateway server → gateway hop → worker.
  {
    const chain = inTrace(callerZmq);
    const root = chain.find((s) => s.name === 'robot.tick.zmq');
    const callerHop = chain.find((s) => s.name === CLIENT_SPAN_NAME && s.attributes['server.address'] === gateway.zmqEndpoint);
    const server = chain.find((s) => s.name === SERVER_SPAN_NAME);
    const hop = chain.find((s) => s.name === CLIENT_SPAN_NAME && s.attributes['server.address'] === worker.endpoint);
    const workerSpan = chain.find((s) => s.name === WORKER_SPAN_NAME);
    assert.ok(root && callerHop && server && hop && workerSpan, `ZMQ trace complete: ${names}`);
    assert.equal(chain.length, 5, `exactly five spans in the ZMQ trace: ${names}`);
    assert.equal(callerHop.parentSpanContext?.spanId, spanId(root));
    assert.equal(server.parentSpanContext?.spanId, spanId(callerHop));
    assert.equal(hop.parentSpanContext?.spanId, spanId(server));
    assert.equal(workerSpan.parentSpanContext?.spanId, spanId(hop));
    assert.equal(server.kind, SpanKind.SERVER);
    assert.equal(hop.kind, SpanKind.CLIENT);
    assert.equal(workerSpan.kind, SpanKind.SERVER);
    assert.deepEqual([server.attributes.transport, server.attributes.framework, server.attributes.codec, server.attributes.outcome], ['zmq', 'demo', 'binary', 'ok']);
    assert.equal(hop.attributes.framework, 'demo');
    assert.deepEqual([workerSpan.attributes['rpc.method'], workerSpan.attributes.outcome], ['inference', 'ok']);
    // The hop lies within the server span (the server span starts when the message arrived, before decode).
    // The SDK anchors spans without an explicit start on Date.now(), to the millisecond: allow that much.
    const ms = (hr: [number, number]) => hr[0] * 1e3 + hr[1] / 1e6;
    assert.ok(ms(server.startTime) <= ms(hop.startTime) + 1.5, `hop starts within the server span (${ms(server.startTime)} vs ${ms(hop.startTime)})`);
    assert.ok(ms(hop.endTime) <= ms(server.endTime) + 1.5, `hop ends within the server span (${ms(hop.endTime)} vs ${ms(server.endTime)})`);
  }
  // HTTP chain: caller → gateway server (from the traceparent header) → gateway hop → worker.
  {
    const chain = inTrace(callerHttp);
    const server = chain.find((s) => s.name === SERVER_SPAN_NAME);
    const hop = chain.find((s) => s.name === CLIENT_SPAN_NAME);
    const workerSpan = chain.find((s) => s.name === WORKER_SPAN_NAME);
    assert.ok(server && hop && workerSpan, `HTTP trace complete: ${names}`);
    assert.equal(server.parentSpanContext?.spanId, callerHttp.spanContext().spanId);
    assert.equal(hop.parentSpanContext?.spanId, spanId(server));
    assert.equal(workerSpan.parentSpanContext?.spanId, spanId(hop));
    assert.deepEqual([server.attributes.transport, server.attributes.codec, server.attributes.request_id, server.attributes.outcome], ['http', 'json', 'http-traced', 'ok']);
  }
  // The refused request: one server span, error status, no hop.
  {
    const chain = inTrace(callerBad);
    const server = chain.find((s) => s.name === SERVER_SPAN_NAME);
    assert.ok(server, `HTTP error span: ${names}`);
    assert.equal(server.parentSpanContext?.spanId, callerBad.spanContext().spanId);
    assert.deepEqual([server.attributes.framework, server.attributes.outcome, server.status.code], ['unknown', 'unknown_framework', 2]);
    assert.equal(chain.filter((s) => s.name === CLIENT_SPAN_NAME).length, 0);
  }
  // The pool's periodic health checks start no root spans of their own.
  assert.deepEqual(spans.filter((s) => s.attributes['rpc.method'] === 'health' || (s.name === CLIENT_SPAN_NAME && !s.parentSpanContext)), []);
});

test('the Python SDK worker receives the traceparent of the gateway client span (and the caller\'s without an SDK)', async (t) => {
  // The test handler answers inference with what its RequestContext holds (OpenTelemetry is not installed there).
  const py = await spawnPythonWorker({ pythonPath: [PROBE_DIR], extraArgs: ['--policy', 'zero_copy_probe:context'] });
  t.after(() => py.close());
  const gateway = await gatewayFor(t, py.endpoint, {}, 'msgpack');
  const caller = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  t.after(() => caller.close());
  const callerTraceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  // No SDK anywhere: the caller's traceparent passes through the gateway unchanged.
  const plain = await caller.request({ type: 'inference', data: { state: [1, 2] }, traceparent: callerTraceparent, tracestate: 'v=1' });
  assert.deepEqual([(plain.result as Record<string, unknown>).traceparent, (plain.result as Record<string, unknown>).tracestate], [callerTraceparent, 'v=1']);

  // With the SDK: the worker sees the gateway's client span, in the caller's trace.
  const exporter = registerInMemory(t);
  const traced = await caller.request({ type: 'inference', data: { state: [1, 2] }, traceparent: callerTraceparent });
  const seen = (traced.result as Record<string, unknown>).traceparent as string;
  const hop = exporter.getFinishedSpans().find((s) => s.name === CLIENT_SPAN_NAME && s.attributes['server.address'] === py.endpoint);
  assert.ok(hop, 'the gateway made a client span for the hop to the Python worker');
  assert.equal(seen, formatTraceparent(hop.spanContext()));
  assert.equal(hop.spanContext().traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(seen, callerTraceparent);
});

test('stage metrics hold data for decode, queue, worker_compute, transport and encode through each front door', async (t) => {
  const worker = createDemoWorker({ endpoint: 'tcp://127.0.0.1:*' });
  await worker.start();
  t.after(() => worker.close());
  const metrics = createMetrics(new Registry());
  const gateway = await gatewayFor(t, worker.endpoint, { metrics });
  const stageCounts = async (): Promise<Record<string, number>> => {
    const text = await metrics.registry.metrics();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^gateway_stage_duration_seconds_count\{framework="demo",stage="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };
  const series = async (name: string, labels: string): Promise<number> => {
    const m = new RegExp(`^${name}\\{${labels}\\} ([0-9.e+]+)$`, 'm').exec(await metrics.registry.metrics());
    return m ? Number(m[1]) : 0;
  };
  const STAGES = ['decode', 'queue', 'worker_compute', 'transport', 'encode'];

  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  t.after(() => zmq.close());
  for (let i = 0; i < 3; i++) await zmq.request({ type: 'inference', data: sampleObservation('S') });
  const afterZmq = await stageCounts();
  for (const stage of STAGES) assert.equal(afterZmq[stage], 3, `ZMQ: stage ${stage} observed per request (${JSON.stringify(afterZmq)})`);
  assert.ok((await series('gateway_request_bytes_total', 'framework="demo",transport="zmq"')) >= 3 * 150);
  assert.ok((await series('gateway_response_bytes_total', 'framework="demo",transport="zmq"')) > 3 * 100);

  for (const encoding of ['json', 'msgpack'] as const) {
    const body = encoding === 'json' ? JSON.stringify({ data: { state: Array.from(sampleState()) } }) : undefined;
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, {
      method: 'POST',
      headers: { 'content-type': encoding === 'json' ? 'application/json' : 'application/msgpack' },
      body: body ?? (await import('../../src/protocol/codec.js')).encodeMessage({ data: sampleObservation('S') }, 'msgpack')[0]! as Uint8Array<ArrayBuffer>,
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.arrayBuffer();
  }
  const afterHttp = await stageCounts();
  for (const stage of STAGES) assert.equal(afterHttp[stage], 5, `HTTP: stage ${stage} observed per request (${JSON.stringify(afterHttp)})`);
  assert.ok((await series('gateway_request_bytes_total', 'framework="demo",transport="http"')) > 100);
  assert.ok((await series('gateway_response_bytes_total', 'framework="demo",transport="http"')) > 100);

  // worker_compute is the worker's own timing; transport is positive and smaller than the whole request.
  const text = await metrics.registry.metrics();
  const sum = (stage: string) => Number(new RegExp(`^gateway_stage_duration_seconds_sum\\{framework="demo",stage="${stage}"\\} ([0-9.e+-]+)$`, 'm').exec(text)![1]);
  const total = Number(/^gateway_request_duration_seconds_sum\{framework="demo",transport="zmq",codec="binary",outcome="ok"\} ([0-9.e+-]+)$/m.exec(text)![1]);
  for (const stage of STAGES) assert.ok(sum(stage) > 0, `stage ${stage} has a positive sum`);
  assert.ok(sum('transport') > 0 && total > 0);

  // Errors on both doors are counted: unknown framework on HTTP and ZMQ, bad request on ZMQ.
  const nope = await fetch(`${gateway.httpUrl}/v1/frameworks/nope/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{}}' });
  assert.equal(nope.status, 404);
  await nope.arrayBuffer();
  await assert.rejects(zmq.request({ type: 'inference', framework: 'made-up', data: {} }), { code: 'unknown_framework' });
  await assert.rejects(zmq.request({ type: 'inference', data: { images: {} } }), { code: 'bad_request' });
  assert.equal(await series('gateway_errors_total', 'framework="unknown",transport="http",code="unknown_framework"'), 1);
  assert.equal(await series('gateway_errors_total', 'framework="unknown",transport="zmq",code="unknown_framework"'), 1);
  assert.equal(await series('gateway_errors_total', 'framework="demo",transport="zmq",code="bad_request"'), 1);
  assert.doesNotMatch(await metrics.registry.metrics(), /made-up|nope/, 'unconfigured names never become labels');
  assert.equal(await series('gateway_requests_in_flight', 'framework="demo",transport="zmq"'), 0);
});
