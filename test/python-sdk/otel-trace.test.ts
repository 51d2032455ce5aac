// One trace across the gateway and the Python SDK worker, through a real OTLP/HTTP receiver: the gateway (in this
// process, OpenTelemetry SDK exporting OTLP JSON) forwards a caller's request to the pip-installed Python worker
// (the [otel] extra, turned on only by OTEL_EXPORTER_OTLP_ENDPOINT, exporting with the standard protobuf exporter
// through otlp-protobuf.ts). The worker's span must be the child of the gateway's client span, in the caller's trace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startOtlpReceiver } from '../../bench/lib/otlp-receiver.js';
import { CLIENT_SPAN_NAME, SERVER_SPAN_NAME, WORKER_SPAN_NAME } from '../../src/telemetry/tracing.js';
import { startTelemetry } from '../../src/telemetry/sdk.js';
import { startTestGateway } from '../support/gateway.js';
import { spawnPythonWorker } from '../support/python-worker.js';
import { startProtobufBridge } from './otlp-protobuf.js';
import { logLines, venvPython, waitForLog } from './venv.js';

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const SPAN_KIND_SERVER = 2;

test('the Python worker span continues the trace as the child of the gateway client span (both seen by an OTLP receiver)', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const bridge = await startProtobufBridge(receiver.url);
  t.after(() => bridge.close());

  // Short batch delays: the spans arrive while the test waits for them, not only at shutdown.
  const telemetry = startTelemetry({
    serviceName: 'gateway-under-test',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_METRICS_EXPORTER: 'none' },
  });
  t.after(() => telemetry.shutdown());
  assert.equal(telemetry.tracesEnabled, true);

  const worker = await spawnPythonWorker({
    python: await venvPython(),
    framework: 'lerobot',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: bridge.url, OTEL_SERVICE_NAME: 'python-worker-under-test', OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  t.after(() => worker.close());

  const gateway = await startTestGateway(t, { defaultFramework: 'lerobot', frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000 } } });
  await gateway.router.registry.resolve('lerobot').pool.whenReady(AbortSignal.timeout(15_000));

  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/lerobot/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: 'robot=arm1' },
    body: JSON.stringify({ data: { state: [0, 0.1, 0.2] }, request_id: 'traced-1' }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  await res.arrayBuffer();

  const inTrace = await receiver.waitForSpans(
    (spans) => spans.some((s) => s.traceId === CALLER_TRACE && s.name === WORKER_SPAN_NAME) && spans.some((s) => s.traceId === CALLER_TRACE && s.name === CLIENT_SPAN_NAME),
  );
  const spans = inTrace.filter((s) => s.traceId === CALLER_TRACE);
  const names = spans.map((s) => `${s.serviceName}:${s.name}`).join(', ');
  const server = spans.find((s) => s.name === SERVER_SPAN_NAME);
  const client = spans.find((s) => s.name === CLIENT_SPAN_NAME);
  const pyWorker = spans.find((s) => s.name === WORKER_SPAN_NAME && s.serviceName === 'python-worker-under-test');
  assert.ok(server && client && pyWorker, `gateway server, gateway client and Python worker spans in the caller's trace: ${names}`);

  assert.equal(server.serviceName, 'gateway-under-test');
  assert.equal(server.parentSpanId, CALLER_SPAN);
  assert.equal(client.serviceName, 'gateway-under-test');
  assert.equal(client.parentSpanId, server.spanId);
  // The point of the test: the Python process's span hangs under the gateway's client span.
  assert.equal(pyWorker.traceId, client.traceId);
  assert.equal(pyWorker.parentSpanId, client.spanId);
  assert.equal(pyWorker.kind, SPAN_KIND_SERVER);
  assert.deepEqual(
    { framework: pyWorker.attributes.framework, method: pyWorker.attributes['rpc.method'], system: pyWorker.attributes['rpc.system'], outcome: pyWorker.attributes.outcome },
    { framework: 'lerobot', method: 'inference', system: 'zeromq', outcome: 'ok' },
  );
  // Health checks carry no trace context and the worker exports nothing else: one Python span in all.
  assert.deepEqual(
    receiver.spans.filter((s) => s.serviceName === 'python-worker-under-test').map((s) => s.traceId),
    [CALLER_TRACE],
  );
  assert.deepEqual(receiver.rejected, []);
  assert.ok(logLines(worker).some((l) => l.event === 'worker.tracing' && l.service_name === 'python-worker-under-test'), worker.stderr());
});

test('without OTEL_EXPORTER_OTLP_ENDPOINT the worker sets up no exporter, even with the [otel] extra installed', async (t) => {
  const env: Record<string, string> = {};
  for (const name of Object.keys(process.env)) if (name.startsWith('OTEL_')) env[name] = ''; // empty counts as unset
  const worker = await spawnPythonWorker({ python: await venvPython(), env });
  t.after(() => worker.close());
  // The exporter is set up before the start line is logged: once the start line is there, the question is settled.
  await waitForLog(worker, (l) => l.event === 'worker.listening');
  assert.deepEqual(logLines(worker).filter((l) => String(l.event).startsWith('worker.tracing')), []);
});
