// A framework as a Docker Swarm service with replicas behind the gateway's pool, on a private single-node swarm
// (test/support/swarm.ts): requests spread over the tasks; a task killed under load, a rolling update of the image
// under load and scaling down and up lose no inference; metrics count requests per host and task; everything the
// test made is removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { down, logs, ps } from '../../src/docker/commands.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import type { ServiceLauncher } from '../../src/docker/service-launcher.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { TEST_IMAGE, metricValue } from '../support/docker.js';
import { engineState, freePortRange, startSwarm } from '../support/swarm.js';

const FRAMEWORK = 'policy';
const V2_IMAGE = 'pag-swarm-test/worker:v2';

test('a framework as a Swarm service: spread over replicas, a task killed and a rolling update under load lose no inference, scale down and up, all cleaned up', { timeout: 290_000 }, async (t) => {
  const swarm = await startSwarm(t);
  const { engine, manager, log } = swarm;
  await engine.cli('tag', TEST_IMAGE, V2_IMAGE);

  const port = await freePortRange(3);
  const spec: FrameworkSpec = {
    name: FRAMEWORK,
    image: TEST_IMAGE,
    networkMode: 'host',
    port,
    mode: 'service',
    replicas: 3,
    bindHost: '127.0.0.1',
    command: ['python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}', '--framework', '{framework}', '--policy', 'demo', '--delay-ms', '10'],
    readyTimeoutMs: 60_000,
    stopTimeoutS: 5,
    update: { delayMs: 200, monitorMs: 500 },
  };
  const config = parseConfig(
    { healthIntervalMs: 300, frameworks: { [FRAMEWORK]: { launcher: 'lerobot', timeoutMs: 5_000, startTimeoutMs: 90_000, maxConcurrency: 64 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const metrics = createMetrics(new Registry());
  const gateway = await buildGateway(config, { metrics, log, docker: { specs: [spec], manager } });
  const launcher = gateway.docker!.launcher.launcherOf(FRAMEWORK) as ServiceLauncher;
  swarm.track(gateway, launcher, [FRAMEWORK]);
  const entry = gateway.router.registry.resolve(FRAMEWORK);
  const pool = entry.pool;

  // Waits announced by the pool's and launcher's own events (no polling): each event re-checks the condition.
  const until = (what: string, condition: () => boolean, timeoutMs = 90_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: not within ${timeoutMs} ms; pool: ${JSON.stringify(pool.stats().endpoints.map((e) => [e.endpoint, e.state, e.labels?.task.slice(0, 8)]))}`));
      }, timeoutMs);
      const offPool = pool.onEvent(check);
      const offLauncher = launcher.onEvent(check);
      const done = () => {
        clearTimeout(timer);
        offPool();
        offLauncher();
      };
      check();
    });
  const readyTasks = () => pool.stats().endpoints.filter((e) => e.state === 'ready').map((e) => e.labels?.task ?? '');

  const infer = async (): Promise<string> => {
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/${FRAMEWORK}/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1,2]}' });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    return res.status === 200 ? 'ok' : `${res.status} ${body.error?.code}: ${body.error?.message}`;
  };

  // Starting deploys the service (as the first request would, within its own deadline); the pool learns its three
  // tasks and serves once one is ready.
  const started = await fetch(`${gateway.httpUrl}/v1/frameworks/${FRAMEWORK}/start`, { method: 'POST', signal: AbortSignal.timeout(120_000) });
  assert.equal(started.status, 200, await started.text());
  assert.equal(await infer(), 'ok');
  await until('three ready tasks', () => readyTasks().length === 3);
  const hosts = new Set(pool.stats().endpoints.map((e) => e.labels?.host));
  assert.deepEqual([...hosts], ['127.0.0.1'], 'each task is reached at its node address');

  // Spread: concurrent requests go to every task (least in flight).
  const spread = await Promise.all(Array.from({ length: 60 }, () => infer()));
  assert.deepEqual(spread.filter((r) => r !== 'ok'), []);
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  for (const task of readyTasks()) {
    const n = metricValue(text, 'gateway_worker_requests_total', { framework: FRAMEWORK, host: '127.0.0.1', task }) ?? 0;
    assert.ok(n > 0, `task ${task} served requests (metrics by host and task): ${n}`);
  }

  // Load: four clients until told to stop; every failure is kept.
  const failures: string[] = [];
  let served = 0;
  let load: { stop(): Promise<void> } | undefined;
  const startLoad = () => {
    let running = true;
    const clients = Array.from({ length: 4 }, async () => {
      while (running) {
        const r = await infer();
        if (r === 'ok') served++;
        else failures.push(r);
      }
    });
    return {
      async stop() {
        running = false;
        await Promise.all(clients);
      },
    };
  };

  // A task killed under load: its requests go to the others; Swarm replaces it and the pool adds the new task.
  load = startLoad();
  const before = new Set(readyTasks());
  const victim = (await launcher.services.tasks(spec)).find((task) => task.desiredState === 'running' && task.containerId !== undefined);
  assert.ok(victim, 'a running task to kill');
  t.diagnostic(`killing task ${victim.id} (${victim.state})`);
  await engine.cli('kill', victim.containerId!);
  await until('the killed task replaced and ready', () => {
    const now = readyTasks();
    return now.length === 3 && !now.includes(victim.id) && now.some((task) => !before.has(task));
  });
  await load.stop();
  t.diagnostic(`task killed under load: ${served} served, failures: ${failures.length}`);
  assert.deepEqual(failures, [], 'no inference failed while a task was killed');

  // A rolling update (new image) under load: one task at a time, each drained; zero failures.
  served = 0;
  load = startLoad();
  const old = new Set(readyTasks());
  assert.equal(await launcher.update(FRAMEWORK, { image: V2_IMAGE }), 'updated');
  await until('every task rolled to the new image and ready', () => {
    const now = readyTasks();
    return now.length === 3 && now.every((task) => !old.has(task));
  }, 180_000);
  await load.stop();
  t.diagnostic(`rolling update under load: ${served} served, failures: ${failures.length}`);
  assert.deepEqual(failures, [], 'no inference failed during the rolling update');
  const tasks = (await launcher.services.tasks(spec)).filter((task) => task.desiredState === 'running');
  assert.equal(tasks.length, 3);
  const images = (await launcher.services.list()).map((s) => s.image);
  assert.ok(images[0]!.startsWith(V2_IMAGE), `the service runs ${V2_IMAGE}: ${images.join(', ')}`);

  // Scale down to one and back up to two, under load.
  served = 0;
  load = startLoad();
  await launcher.scale(FRAMEWORK, 1);
  await until('one task left in the pool', () => pool.endpoints.length === 1 && readyTasks().length === 1);
  await launcher.scale(FRAMEWORK, 2);
  await until('two ready tasks', () => readyTasks().length === 2);
  await load.stop();
  t.diagnostic(`scale 3 → 1 → 2 under load: ${served} served, failures: ${failures.length}`);
  assert.deepEqual(failures, [], 'no inference failed while scaling');
  // The pool may find a task ready before the engine reports it running (Swarm's own health probe runs later):
  // read the engine's view until it catches up.
  const status = await engineState(launcher, FRAMEWORK, (st) => st.state === 'running');
  assert.equal(status.state, 'running');
  assert.equal(status.replicas, 2);
  assert.equal(gateway.router.inFlight, 0);

  // The CLI's ps, logs and down work on the service too.
  const lines: string[] = [];
  const ctx = { manager, specs: [spec], out: (line: string) => lines.push(line) };
  await ps(ctx);
  assert.ok(lines.some((l) => /physical-ai-gateway-policy\s+2\s/.test(l)), `ps shows the service with 2 replicas:\n${lines.join('\n')}`);
  lines.length = 0;
  await logs(ctx, FRAMEWORK, { tail: 5 });
  assert.ok(lines.some((l) => l.includes('worker.listening')), `logs shows the tasks' lines:\n${lines.join('\n')}`);
  assert.equal(await down(ctx, FRAMEWORK), 1);
  assert.equal((await launcher.services.list()).length, 0, 'down removed the service');

  swarm.passed();
});
