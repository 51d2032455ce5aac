// The observer API writes the right series on an injected registry (real prom-client, real text format).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { PoolEvent } from '../../src/zmq/types.js';
import { DataPointType, type HistogramMetricData, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { toOtlpMetric } from '../../src/telemetry/sdk.js';
import {
  createMetrics,
  DURATION_BUCKETS_SECONDS,
  METRIC_NAMES,
  type PoolEventLike,
} from '../../src/telemetry/metrics.js';

// Compile-time: every PoolEvent of the ZMQ layer is accepted by observePoolEvent.
const acceptsPoolEvent = (e: PoolEvent): PoolEventLike => e;
void acceptsPoolEvent;

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} registered`);
  const data = await metric.get();
  const hit = data.values.find(
    (v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want) && (v as { metricName?: string }).metricName === undefined,
  );
  return hit?.value;
}

test('every metric follows Prometheus naming and is registered on the injected registry only', async () => {
  const registry = new Registry();
  createMetrics(registry);
  const names = registry.getMetricsAsArray().map((m) => m.name).sort();
  assert.deepEqual(names, [...METRIC_NAMES].sort());
  for (const name of names) {
    assert.match(name, /^gateway_[a-z_]+$/);
    const type = String((await registry.getSingleMetric(name)!.get()).type);
    if (type === 'counter') assert.ok(name.endsWith('_total'), `${name} is a counter and ends in _total`);
    if (type === 'histogram') assert.ok(name.endsWith('_seconds'), `${name} is in seconds`);
  }
  assert.equal(DURATION_BUCKETS_SECONDS[0], 0.0001);
  assert.equal(DURATION_BUCKETS_SECONDS.at(-1), 10);
  // A second gateway in the same process gets its own counters.
  const other = new Registry();
  const m2 = createMetrics(other);
  m2.requestStarted({ framework: 'demo', transport: 'zmq', codec: 'binary' }).end({ outcome: 'ok' });
  assert.equal(await value(registry, 'gateway_requests_total', { framework: 'demo' }), undefined);
  assert.equal(await value(other, 'gateway_requests_total', { framework: 'demo', outcome: 'ok' }), 1);
});

test('requestStarted/end records duration, outcome, errors, bytes, stages and in-flight', async () => {
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const labels = { framework: 'demo', transport: 'http', codec: 'json' } as const;
  const a = metrics.requestStarted(labels);
  const b = metrics.requestStarted(labels);
  assert.equal(await value(registry, 'gateway_requests_in_flight', { framework: 'demo', transport: 'http' }), 2);
  const seconds = a.end({ outcome: 'ok', requestBytes: 100, responseBytes: 40, stagesMs: { decode: 0.2, worker_compute: 3, transport: 0.5 } });
  assert.ok(seconds >= 0);
  b.end({ outcome: 'timeout', requestBytes: 50 });
  b.end({ outcome: 'ok' }); // ignored: a request ends once
  assert.equal(await value(registry, 'gateway_requests_in_flight', { framework: 'demo', transport: 'http' }), 0);
  assert.equal(await value(registry, 'gateway_requests_total', { outcome: 'ok', codec: 'json' }), 1);
  assert.equal(await value(registry, 'gateway_requests_total', { outcome: 'timeout' }), 1);
  assert.equal(await value(registry, 'gateway_errors_total', { code: 'timeout', transport: 'http' }), 1);
  assert.equal(await value(registry, 'gateway_errors_total', { code: 'ok' }), undefined);
  assert.equal(await value(registry, 'gateway_request_bytes_total', { framework: 'demo' }), 150);
  assert.equal(await value(registry, 'gateway_response_bytes_total', { framework: 'demo' }), 40);

  const text = await registry.metrics();
  assert.match(text, /gateway_request_duration_seconds_count\{framework="demo",transport="http",codec="json",outcome="ok"\} 1/);
  assert.match(text, /gateway_request_duration_seconds_bucket\{le="0.0001",framework="demo"/);
  assert.match(text, /gateway_stage_duration_seconds_sum\{framework="demo",stage="worker_compute"\} 0.003/);
  assert.match(text, /gateway_stage_duration_seconds_count\{framework="demo",stage="decode"\} 1/);
  assert.doesNotMatch(text, /stage="queue"/);

  // Framework and codec resolved after the start (request without `framework` → default).
  metrics.requestStarted({ framework: 'unknown', transport: 'zmq', codec: 'binary' }).end({ outcome: 'ok', framework: 'demo', codec: 'msgpack', copiedBytes: 12 });
  assert.equal(await value(registry, 'gateway_requests_total', { framework: 'demo', transport: 'zmq', codec: 'msgpack' }), 1);
  assert.equal(await value(registry, 'gateway_requests_in_flight', { framework: 'unknown', transport: 'zmq' }), 0);
  assert.equal(await value(registry, 'gateway_tensor_copies_total', { framework: 'demo', transport: 'zmq' }), 1);
  assert.equal(await value(registry, 'gateway_tensor_copied_bytes_total', { framework: 'demo', transport: 'zmq' }), 12);
});

test('pool events drive worker_up, pool_endpoints, late replies and reconnects', async () => {
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const events: PoolEvent[] = [
    { type: 'endpoint_added', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5557' },
    { type: 'endpoint_added', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5558' },
    { type: 'state', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5557', from: 'connecting', to: 'ready' },
    { type: 'state', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5558', from: 'connecting', to: 'unhealthy', reason: 'missed health' },
    { type: 'reconnect', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5558', attempt: 1 },
    { type: 'late_reply', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5557', requestId: 'r1' },
    { type: 'connected', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5557' },
  ];
  for (const e of events) metrics.observePoolEvent(e);
  const up = (endpoint: string) => value(registry, 'gateway_worker_up', { framework: 'pi0', endpoint });
  assert.equal(await up('tcp://127.0.0.1:5557'), 1);
  assert.equal(await up('tcp://127.0.0.1:5558'), 0);
  const state = (s: string) => value(registry, 'gateway_pool_endpoints', { framework: 'pi0', state: s });
  assert.equal(await state('ready'), 1);
  assert.equal(await state('unhealthy'), 1);
  assert.equal(await state('connecting'), 0);
  assert.equal(await state('down'), 0);
  assert.equal(await value(registry, 'gateway_late_replies_total', { framework: 'pi0' }), 1);
  assert.equal(await value(registry, 'gateway_reconnects_total', { framework: 'pi0' }), 1);

  metrics.observePoolEvent({ type: 'endpoint_removed', framework: 'pi0', endpoint: 'tcp://127.0.0.1:5558' });
  assert.equal(await up('tcp://127.0.0.1:5558'), undefined);
  assert.equal(await state('unhealthy'), 0);
  metrics.observePoolEvent({ type: 'closed', framework: 'pi0' });
  assert.equal(await up('tcp://127.0.0.1:5557'), undefined);
  assert.equal(await state('ready'), 0);
});

test('container stats: gauges from a sample, OOM counter, removal', async () => {
  const registry = new Registry();
  const metrics = createMetrics(registry);
  metrics.recordContainerStats({ framework: 'groot', container: 'pag-groot', cpuCores: 1, memoryBytes: 500 * 2 ** 20, memoryLimitBytes: 2 ** 30 });
  metrics.recordContainerOom({ framework: 'groot', container: 'pag-groot' });
  const labels = { framework: 'groot', container: 'pag-groot' };
  assert.equal(await value(registry, 'gateway_container_cpu_cores', labels), 1);
  assert.equal(await value(registry, 'gateway_container_memory_bytes', labels), 500 * 2 ** 20);
  assert.equal(await value(registry, 'gateway_container_memory_limit_bytes', labels), 2 ** 30);
  assert.equal(await value(registry, 'gateway_container_oom_total', labels), 1);
  metrics.removeContainer(labels);
  assert.equal(await value(registry, 'gateway_container_memory_bytes', labels), undefined);
});

test('the registry converts to OTLP data: per-bucket histogram counts, counters without _total, units', async () => {
  const metrics = createMetrics(new Registry());
  for (const ms of [0.05, 0.3, 0.3, 40]) {
    metrics.requestStarted({ framework: 'demo', transport: 'zmq', codec: 'binary' }).end({ outcome: 'ok', stagesMs: { worker_compute: ms } });
  }
  metrics.requestStarted({ framework: 'demo', transport: 'http', codec: 'json' }).end({ outcome: 'timeout' });
  const json = await metrics.registry.getMetricsAsJSON();
  const t: [number, number] = [1, 0];
  const stage = toOtlpMetric(json.find((m) => m.name === 'gateway_stage_duration_seconds')!, t, t) as HistogramMetricData;
  assert.equal(stage.dataPointType, DataPointType.HISTOGRAM);
  assert.equal(stage.descriptor.unit, 's');
  const point = stage.dataPoints.find((p) => p.attributes.stage === 'worker_compute')!;
  assert.deepEqual(point.value.buckets.boundaries, DURATION_BUCKETS_SECONDS);
  assert.equal(point.value.count, 4);
  assert.ok(Math.abs(point.value.sum! - 0.04065) < 1e-9);
  const counts = point.value.buckets.counts;
  assert.equal(counts.length, DURATION_BUCKETS_SECONDS.length + 1);
  assert.equal(counts.reduce((a, b) => a + b, 0), 4);
  assert.equal(counts[DURATION_BUCKETS_SECONDS.indexOf(0.0001)], 1); // 50 µs
  assert.equal(counts[DURATION_BUCKETS_SECONDS.indexOf(0.0005)], 2); // 300 µs
  assert.equal(counts[DURATION_BUCKETS_SECONDS.indexOf(0.05)], 1); // 40 ms
  const requests = toOtlpMetric(json.find((m) => m.name === 'gateway_requests_total')!, t, t) as SumMetricData;
  assert.equal(requests.descriptor.name, 'gateway_requests');
  assert.equal(requests.isMonotonic, true);
  assert.deepEqual(
    requests.dataPoints.map((p) => [p.attributes.transport, p.attributes.outcome, p.value]).sort(),
    [['http', 'timeout', 1], ['zmq', 'ok', 4]],
  );
  const bytes = toOtlpMetric(json.find((m) => m.name === 'gateway_request_bytes_total')!, t, t)!;
  assert.equal(bytes.descriptor.unit, 'By');
});

test('runtime metrics (process, event-loop lag, GC, heap) on request, on the injected registry only', async () => {
  const withRuntime = new Registry();
  createMetrics(withRuntime, { runtime: true });
  const text = await withRuntime.metrics();
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  const without = new Registry();
  createMetrics(without);
  assert.doesNotMatch(await without.metrics(), /^# TYPE process_cpu_seconds_total /m);
});
