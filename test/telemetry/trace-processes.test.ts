// Across processes with the real OTLP/HTTP exporter: a caller sends requests with its traceparent to a gateway
// run as `serve` in a child process (OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local receiver); the gateway and its
// embedded worker child both export, and every span carries the caller's trace id. The batch delay is set longer
// than the test, so the spans arrive only through the flush on shutdown (SIGTERM) of both processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { sampleObservation, sampleState } from '../../src/cli/sample.js';
import { CLIENT_SPAN_NAME, SERVER_SPAN_NAME, WORKER_SPAN_NAME } from '../../src/telemetry/tracing.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { collectOutput } from '../../bench/lib/child-output.js';
import { freePort } from '../support/endpoints.js';
import { startOtlpReceiver } from '../../bench/lib/otlp-receiver.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ZMQ_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const HTTP_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = '00f067aa0ba902b7';

test('a gateway process and its embedded worker process export spans over OTLP/HTTP in the caller\'s trace', async (t) => {
  const receiver = await startOtlpReceiver();
  t.after(() => receiver.close());
  const httpPort = await freePort();
  const zmqPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PAIG_HTTP_PORT: String(httpPort),
      PAIG_ZMQ_ENDPOINT: `tcp://127.0.0.1:${zmqPort}`,
      PAIG_LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'gw-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '600000', // only the shutdown flush exports
      OTEL_METRIC_EXPORT_INTERVAL: '300',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const output = collectOutput(child);
  await output.waitFor(/^try: /m, 60_000, 'the gateway did not come up');

  // No SDK in this process: the caller's traceparent goes out as written.
  const zmq = new WorkerClient({ endpoint: `tcp://127.0.0.1:${zmqPort}`, timeoutMs: 20_000 });
  t.after(() => zmq.close());
  const reply = await zmq.request({ type: 'inference', framework: 'demo', data: sampleObservation('L'), traceparent: `00-${ZMQ_TRACE}-${CALLER_SPAN}-01` });
  assert.equal((reply.result as { model: string }).model, 'demo-v1');
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/frameworks/demo/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${HTTP_TRACE}-${CALLER_SPAN}-01` },
    body: JSON.stringify({ data: { state: Array.from(sampleState()) } }),
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  // Request metrics go out over OTLP on their own interval.
  const metrics = await receiver.waitForMetrics((m) => m.some((x) => x.name === 'gateway_stage_duration_seconds' && x.points.some((p) => p.stage === 'transport')), 20_000);
  assert.ok(metrics.some((m) => m.name === 'gateway_request_duration_seconds' && m.serviceName === 'gw-under-test'));
  assert.equal(receiver.spans.filter((s) => s.traceId === ZMQ_TRACE).length, 0, 'spans wait in the batch until shutdown');

  child.kill('SIGTERM');
  assert.equal(await exited, 0, `exit code; stderr:\n${output.stderr}`);
  const spans = await receiver.waitForSpans((s) => s.filter((x) => x.name === WORKER_SPAN_NAME).length >= 2, 15_000);
  const describe = spans.map((s) => `${s.serviceName}:${s.name}:${s.traceId.slice(0, 6)}`).join(', ');
  for (const traceId of [ZMQ_TRACE, HTTP_TRACE]) {
    const trace = spans.filter((s) => s.traceId === traceId);
    const server = trace.find((s) => s.name === SERVER_SPAN_NAME);
    const hop = trace.find((s) => s.name === CLIENT_SPAN_NAME);
    const worker = trace.find((s) => s.name === WORKER_SPAN_NAME);
    assert.ok(server && hop && worker, `trace ${traceId}: server, hop and worker spans (${describe})`);
    assert.equal(server.serviceName, 'gw-under-test');
    assert.equal(hop.serviceName, 'gw-under-test');
    assert.equal(worker.serviceName, 'gw-under-test-worker', 'the worker child exported its own span');
    assert.equal(server.parentSpanId, CALLER_SPAN);
    assert.equal(hop.parentSpanId, server.spanId);
    assert.equal(worker.parentSpanId, hop.spanId);
    assert.equal(server.attributes.outcome, 'ok');
  }
  assert.deepEqual(receiver.rejected, []);
});
