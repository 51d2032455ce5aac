// The container sampler on the real engine: stats of running containers of ours, lifecycle events (die, oom)
// into the metrics, and nothing sampled once a container is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { ContainerEvent } from '../../src/docker/docker-manager.js';
import { watchContainers, type ContainerStats } from '../../src/docker/container-watch.js';
import { startDockerSupport } from '../../src/docker/docker-support.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { RUN_ID, RUN_LABEL, TEST_IMAGE, eventually, metricValue, runLabels, testManager, uniqueName } from '../support/docker.js';

const MiB = 1024 * 1024;

test('watchContainers: stats of running containers on its timer, die events, nothing for a stopped one', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('watch');
  await manager.createContainer({ name, image: TEST_IMAGE, framework: 'watched', labels: runLabels(), cmd: ['sleep', '300'], memoryBytes: 64 * MiB, stopTimeoutS: 1 });
  await manager.start(name);
  const stats: ContainerStats[] = [];
  const events: ContainerEvent[] = [];
  const watch = watchContainers({ manager, intervalMs: 300, labels: [`${RUN_LABEL}=${RUN_ID}`], onStats: (s) => stats.push(s) });
  watch.onEvent((e) => events.push(e));
  t.after(() => watch.close());

  const first = await eventually(async () => stats.find((s) => s.container === name), 30_000);
  assert.equal(first.framework, 'watched');
  assert.equal(first.sample.memoryLimitBytes, 64 * MiB);
  assert.ok(first.sample.memoryUsedBytes > 0);
  assert.equal(typeof first.sample.networkRxBytes, 'number');
  assert.equal(watch.lastStats(name)?.memoryLimitBytes, 64 * MiB);
  await eventually(async () => (stats.filter((s) => s.container === name).length >= 2 ? true : undefined), 30_000);
  await eventually(async () => (watch.eventsConnected ? true : undefined));

  await manager.stop(name, { timeoutS: 1 });
  const died = await eventually(async () => events.find((e) => e.type === 'die' && e.name === name));
  assert.equal(died.framework, 'watched');
  assert.equal(watch.lastStats(name), undefined);
  await watch.sampleNow();
  const count = stats.length;
  await watch.sampleNow();
  assert.equal(stats.length, count, 'no samples of a stopped container');
  await watch.close();
  await watch.close();
});

test('a container killed for memory: the oom event counts in gateway_container_oom_total and its gauges go', async (t) => {
  const manager = testManager(t);
  const metrics = createMetrics(new Registry());
  const support = await startDockerSupport({ specs: [], manager, metrics, statsIntervalMs: 60_000, labels: [`${RUN_LABEL}=${RUN_ID}`] });
  t.after(() => support.close());
  await eventually(async () => (support.watch.eventsConnected ? true : undefined));
  const seen: ContainerEvent[] = [];
  support.watch.onEvent((e) => seen.push(e));
  const name = uniqueName('oom');
  // allocates and touches 256 MiB in a 32 MiB container (Docker's default swap: as much again)
  await manager.createContainer({
    name,
    image: TEST_IMAGE,
    framework: 'hungry',
    labels: runLabels(),
    memoryBytes: 32 * MiB,
    cmd: ['python3', '-c', 'import time\nb = bytearray(256 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(60)'],
  });
  await manager.start(name);
  const labels = { framework: 'hungry', container: name };
  const text = await eventually(async () => {
    const m = await metrics.registry.metrics();
    return metricValue(m, 'gateway_container_oom_total', labels) === 1 ? m : undefined;
  }, 30_000);
  assert.equal(metricValue(text, 'gateway_container_memory_bytes', labels), undefined);
  const info = await manager.inspect(name);
  assert.equal(info?.State.OOMKilled, true);
  // Docker sends its oom events before the die event: once die is in, the count is final, and one kill is one.
  await eventually(async () => (seen.some((e) => e.type === 'die' && e.name === name) ? true : undefined), 30_000);
  t.diagnostic(`oom events from Docker for one kill: ${seen.filter((e) => e.type === 'oom' && e.name === name).length}`);
  assert.equal(metricValue(await metrics.registry.metrics(), 'gateway_container_oom_total', labels), 1);
});
