// A real Prometheus scrapes a real HTTP server (hono) that serves an injected registry and runs requests through
// the observer API under a short load; every dashboard query and alert signal must return data, and the rules
// that should fire (worker down, OOM) reach pending/firing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { createMetrics, type GatewayMetrics } from '../../src/telemetry/metrics.js';
import { startServerSpan } from '../../src/telemetry/tracing.js';
import { startPrometheus } from '../support/prometheus.js';
import { ALERTS_FILE, allExpressions, expressionsWithoutData } from './observability-files.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small stand-in for the gateway: /metrics plus an infer route that goes through the observer API. */
function metricsApp(metrics: GatewayMetrics): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
  app.post('/infer/:framework/:transport', async (c) => {
    const framework = c.req.param('framework');
    const transport = c.req.param('transport') === 'zmq' ? 'zmq' : 'http';
    const outcome = c.req.query('outcome') ?? 'ok';
    const obs = metrics.requestStarted({ framework, transport, codec: 'binary' });
    const span = startServerSpan({ framework, transport, codec: 'binary' }, { traceparent: c.req.header('traceparent') });
    const body = new Uint8Array(await c.req.arrayBuffer());
    const computeMs = 1 + Math.random() * 3;
    await sleep(computeMs);
    const reply = outcome === 'ok' ? JSON.stringify({ status: 'success' }) : JSON.stringify({ status: 'error', error: { code: outcome } });
    span.end(outcome);
    obs.end({
      outcome,
      requestBytes: body.byteLength,
      responseBytes: reply.length,
      stagesMs: { decode: 0.05, queue: 0.01, worker_compute: computeMs, transport: 0.2, encode: 0.02 },
      copiedBytes: c.req.query('copy') ? 16 : 0,
    });
    return c.body(reply, outcome === 'ok' ? 200 : 504);
  });
  return app;
}

test('a real Prometheus scrapes the metrics under load; every dashboard and alert query returns data', async (t) => {
  const metrics = createMetrics(new Registry());
  const app = metricsApp(metrics);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  assert.ok(port > 0);

  const prom = await startPrometheus({ targets: [`127.0.0.1:${port}`], scrapeIntervalS: 1, rulesFiles: [ALERTS_FILE] });
  t.after(() => prom.close());
  await prom.waitForTargetsUp();

  // Pool and container state, as the pool's events and the Docker manager would report them.
  for (const framework of ['demo', 'lerobot']) {
    metrics.observePoolEvent({ type: 'endpoint_added', framework, endpoint: `tcp://127.0.0.1:555${framework === 'demo' ? 5 : 6}` });
    metrics.observePoolEvent({ type: 'state', framework, endpoint: `tcp://127.0.0.1:555${framework === 'demo' ? 5 : 6}`, from: 'connecting', to: 'ready' });
  }
  metrics.observePoolEvent({ type: 'endpoint_added', framework: 'lerobot', endpoint: 'tcp://127.0.0.1:5560' });
  metrics.observePoolEvent({ type: 'state', framework: 'lerobot', endpoint: 'tcp://127.0.0.1:5560', from: 'connecting', to: 'unhealthy', reason: 'test' });
  metrics.observePoolEvent({ type: 'reconnect', framework: 'lerobot', endpoint: 'tcp://127.0.0.1:5560', attempt: 1 });
  metrics.recordContainerStats({ framework: 'lerobot', container: 'pag-lerobot', cpuCores: 0.75, memoryBytes: 900e6, memoryLimitBytes: 1e9 });
  // Framework states as the router announces them: pi0 stopped on purpose (idle stop) must not alert.
  metrics.recordFrameworkState('demo', 'ready');
  metrics.recordFrameworkState('lerobot', 'ready');
  metrics.recordFrameworkState('pi0', 'stopped');
  // Training progress and a finished job, as the job manager reports them (test/jobs/training.test.ts runs real ones).
  metrics.recordTrainingProgress('lerobot', 1, 0.9);
  metrics.jobFinished('lerobot', 'succeeded');

  // Short load: ok and error outcomes on both transports, some late replies, until the checks are done.
  let stop = false;
  let sent = 0;
  const base = `http://127.0.0.1:${port}`;
  const load = (async () => {
    let i = 0;
    while (!stop) {
      const framework = i % 2 ? 'demo' : 'lerobot';
      const transport = i % 3 ? 'zmq' : 'http';
      const outcome = i % 10 === 0 ? 'timeout' : i % 15 === 0 ? 'worker_error' : 'ok';
      const res = await fetch(`${base}/infer/${framework}/${transport}?outcome=${outcome}${i % 20 === 0 ? '&copy=1' : ''}`, {
        method: 'POST',
        body: new Uint8Array(1024 + (i % 7) * 100),
      });
      await res.arrayBuffer();
      if (i % 25 === 0) metrics.observePoolEvent({ type: 'late_reply', framework, endpoint: 'tcp://127.0.0.1:5555', requestId: `r${i}` });
      if (i % 50 === 0) {
        metrics.recordContainerStats({ framework: 'lerobot', container: 'pag-lerobot', cpuCores: Math.random(), memoryBytes: 920e6, memoryLimitBytes: 1e9 });
      }
      i++;
      sent++;
      await sleep(2);
    }
  })();
  try {
    assert.ok((await prom.waitForData('sum(gateway_requests_total)', 30_000)).length > 0, `no request data scraped:\n${prom.output()}`);
    // The container is killed after Prometheus has seen it alive (its OOM counter at 0).
    metrics.recordContainerOom({ framework: 'lerobot', container: 'pag-lerobot' });
    metrics.recordTrainingProgress('lerobot', 2, 0.7);
    metrics.jobFinished('lerobot', 'succeeded');
    await sleep(3_000); // at least two scrapes inside every rate window
    const failures = await expressionsWithoutData(prom, allExpressions(), 30_000);
    assert.deepEqual(failures, [], `queries without data:\n${failures.join('\n')}`);

    // Rules load and evaluate; the ones whose condition holds now are pending or firing.
    const until = Date.now() + 20_000;
    let states = new Map<string, { state: string; health: string; lastError?: string }>();
    for (;;) {
      const res = await fetch(`${prom.url}/api/v1/rules`);
      const body = (await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; state: string; health: string; lastError?: string }> }> } };
      states = new Map(body.data.groups.flatMap((g) => g.rules).map((r) => [r.name, r]));
      const active = (name: string) => ['pending', 'firing'].includes(states.get(name)?.state ?? '');
      if (active('GatewayWorkerDown') && active('GatewayContainerOOMKilled') && active('GatewayContainerMemoryNearLimit')) break;
      if (Date.now() > until) break;
      await sleep(500);
    }
    for (const [name, rule] of states) assert.equal(rule.health, 'ok', `rule ${name}: ${rule.lastError ?? ''}`);
    assert.ok(states.size >= 8, `rules loaded: ${[...states.keys()].join(', ')}`);
    for (const name of ['GatewayWorkerDown', 'GatewayContainerOOMKilled', 'GatewayContainerMemoryNearLimit']) {
      assert.ok(['pending', 'firing'].includes(states.get(name)?.state ?? ''), `${name} is ${states.get(name)?.state}`);
    }
    assert.equal(states.get('GatewayDown')?.state, 'inactive');
    assert.equal(states.get('GatewayFrameworkUnavailable')?.state, 'inactive', 'a framework stopped on purpose (pi0) is not unavailable');
  } finally {
    stop = true;
    await load;
  }
  assert.ok(sent > 20, `load sent ${sent} requests`);
});
