// A real Prometheus scrapes a REAL gateway (buildGateway with embedded demo workers) under a short load through
// its HTTP and ZMQ front doors: ok, bad_request and timeout outcomes, late replies from a slow worker. Every
// dashboard query and alert signal must return data. Container samples are fed through recordContainerStats,
// as the Docker manager does (no containers run in this test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { sampleObservation, sampleState } from '../../src/cli/sample.js';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { freePort } from '../support/endpoints.js';
import { startPrometheus } from '../support/prometheus.js';
import { ALERTS_FILE, allExpressions, expressionsWithoutData } from './observability-files.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('a real Prometheus scrapes a real gateway under load over HTTP and ZMQ; every dashboard and alert query returns data', async (t) => {
  const metrics = createMetrics(new Registry());
  const config = parseConfig({
    http: { port: 0 },
    zmq: { endpoint: `tcp://127.0.0.1:${await freePort()}` },
    healthIntervalMs: 500,
    defaultFramework: 'demo',
    frameworks: {
      demo: { embedded: true, timeoutMs: 10_000 },
      // Answers after its deadline: timeouts at the gateway, then late replies from the worker.
      slow: { embedded: true, embeddedDelayMs: 300, timeoutMs: 100 },
    },
  });
  const gateway = await buildGateway(config, { metrics });
  t.after(() => gateway.close(1_000));
  const port = Number(new URL(gateway.httpUrl).port);

  const prom = await startPrometheus({ targets: [`127.0.0.1:${port}`], scrapeIntervalS: 1, rulesFiles: [ALERTS_FILE] });
  t.after(() => prom.close());
  await prom.waitForTargetsUp();
  // What the Docker manager reports for a framework container.
  metrics.recordContainerStats({ framework: 'demo', container: 'pag-demo', cpuCores: 0.4, memoryBytes: 300e6, memoryLimitBytes: 2e9 });
  // No trainer runs behind the demo (test/jobs/training.test.ts runs real LeRobot jobs): the dashboard's training row
  // gets its series through the metrics API, as the job manager reports a job's progress and end.
  metrics.recordTrainingProgress('demo', 1, 0.9);
  metrics.jobFinished('demo', 'succeeded');

  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, framework: 'gateway', timeoutMs: 10_000 });
  t.after(() => zmq.close());
  const L = sampleObservation('L');
  const counts = new Map<string, number>();
  const count = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  let stop = false;
  const load = (async () => {
    let i = 0;
    while (!stop) {
      const jobs: Array<Promise<unknown>> = [
        zmq.request({ type: 'inference', framework: 'demo', data: L }).then(() => count('zmq ok')),
        fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ data: { state: Array.from(sampleState()) } }),
        }).then(async (r) => {
          await r.arrayBuffer();
          count(`http ${r.status}`);
        }),
      ];
      if (i % 5 === 0) {
        jobs.push(
          fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{}}' }).then(async (r) => {
            await r.arrayBuffer();
            count(`http ${r.status}`);
          }),
        );
      }
      if (i % 8 === 0) {
        jobs.push(
          zmq.request({ type: 'inference', framework: 'slow', data: { state: Array.from(sampleState()) } }).then(
            () => count('slow ok'),
            (err: { code?: string }) => count(`slow ${err.code}`),
          ),
        );
      }
      await Promise.all(jobs);
      i++;
      await sleep(5);
    }
  })();
  try {
    assert.ok((await prom.waitForData('sum(gateway_requests_total{outcome="timeout"})', 30_000)).length > 0, 'timeouts scraped');
    await prom.waitForData('sum(gateway_late_replies_total) > 0', 30_000);
    metrics.recordContainerOom({ framework: 'demo', container: 'pag-demo' });
    metrics.recordTrainingProgress('demo', 2, 0.7);
    metrics.jobFinished('demo', 'succeeded');
    await sleep(3_000);
    const failures = await expressionsWithoutData(prom, allExpressions(), 30_000);
    assert.deepEqual(failures, [], `queries without data:\n${failures.join('\n')}`);

    // Both transports and the outcomes we caused are visible.
    const byLabels = await prom.query('sum by (transport, outcome) (gateway_requests_total)');
    const seen = new Set(byLabels.map((s) => `${s.metric.transport} ${s.metric.outcome}`));
    for (const want of ['zmq ok', 'http ok', 'http bad_request', 'zmq timeout']) assert.ok(seen.has(want), `${want} in ${[...seen].join(', ')}`);
    const up = await prom.query('gateway_worker_up');
    assert.deepEqual(up.map((s) => s.value[1]).sort(), ['1', '1'], 'both embedded workers ready');
    const late = await prom.query('sum(gateway_late_replies_total{framework="slow"})');
    assert.ok(Number(late[0]?.value[1]) > 0, 'late replies counted');
  } finally {
    stop = true;
    await load;
  }
  assert.ok((counts.get('zmq ok') ?? 0) > 10, `load: ${JSON.stringify([...counts])}`);
  assert.ok((counts.get('http 400') ?? 0) > 0, `load: ${JSON.stringify([...counts])}`);
});
