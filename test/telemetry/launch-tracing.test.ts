// A request that starts a framework on demand is one trace: the door's server span and the hop to the worker.
// The pool's health checks during the start run outside the request's trace (they used to add a handful of
// error-status child spans to the first request after a cold start).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, SpanKind } from '@opentelemetry/api';
import { parseConfig } from '../../src/config.js';
import { FrameworkRegistry } from '../../src/router/framework-registry.js';
import { Router } from '../../src/router/router.js';
import { startServerSpan } from '../../src/telemetry/tracing.js';
import { registerInMemoryTracing } from '../../bench/lib/in-memory-tracing.js';
import { InProcessLauncher } from '../support/in-process-launcher.js';

test('a cold start traces the request and its worker hop only, not the readiness checks', async (t) => {
  const tracing = registerInMemoryTracing();
  t.after(() => tracing.close());
  const launcher = new InProcessLauncher(200);
  t.after(() => launcher.close());
  const config = parseConfig({ frameworks: { pi0: { launcher: 'pi0', timeoutMs: 10_000 } } });
  const router = new Router({ registry: new FrameworkRegistry({ frameworks: Object.values(config.frameworks), launcher, healthIntervalMs: 100 }) });
  t.after(() => router.close());
  await router.registry.start();

  const span = startServerSpan({ framework: 'pi0', transport: 'http', codec: 'json' });
  await context.with(span.context, () => router.route({ type: 'inference', data: { state: [1, 2] } }));
  span.end('ok');

  const traceId = span.context && (await import('@opentelemetry/api')).trace.getSpanContext(span.context)?.traceId;
  const inTrace = tracing.exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const described = inTrace.map((s) => `${s.name} ${JSON.stringify(s.attributes)}`).join('; ');
  // The door's span, its hop to the worker, and the (in-process) worker's span of that inference: nothing else.
  assert.deepEqual(inTrace.map((s) => s.name).sort(), ['gateway.request', 'gateway.worker_request', 'worker.request'], described);
  assert.ok(!inTrace.some((s) => s.attributes['rpc.method'] === 'health'), `no health check in the request's trace: ${described}`);
  assert.equal(inTrace.filter((s) => s.kind === SpanKind.CLIENT).length, 1);
  assert.ok(inTrace.every((s) => s.status.code !== 2), 'no error spans in the request trace');
});
