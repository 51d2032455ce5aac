// The gateway with frameworks in Docker, end to end on the real engine: the first request starts the container
// and is answered by the demo policy, the HTTP control API (start, containers, stop), `up` then inference then
// `down`, a container killed from outside (event, metrics, restart on demand), container metrics on /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { down, up } from '../../src/docker/commands.js';
import type { LauncherEvent } from '../../src/docker/launcher.js';
import { dockerCli, eventually, metricValue, startDockerGateway, testSpec, type DockerGateway } from '../support/docker.js';

const MiB = 1024 * 1024;
const TOKEN = 'test-token-0123456789abcdef';

interface InferenceBody {
  status: string;
  result: { action: unknown; dt_s: number; model: string };
}

/** The action rows of a JSON reply: nested lists, or a tensor object with data. */
function actionRows(action: unknown): number[][] {
  if (Array.isArray(action)) return action as number[][];
  throw new Error(`unexpected action encoding: ${JSON.stringify(action).slice(0, 200)}`);
}

/** Checks the reply is the demo policy's action chunk for `state`: action[k][j] = state[j] + 0.01 (k + 1). */
function assertDemoChunk(body: Record<string, unknown>, state: number[]): void {
  const reply = body as unknown as InferenceBody;
  assert.equal(reply.status, 'success', JSON.stringify(body).slice(0, 500));
  assert.equal(reply.result.model, 'demo-v1');
  const rows = actionRows(reply.result.action);
  assert.equal(rows.length, 16);
  rows.forEach((row, k) => {
    assert.equal(row.length, state.length);
    row.forEach((v, j) => assert.ok(Math.abs(v - Math.fround(state[j]! + 0.01 * (k + 1))) < 1e-5, `action[${k}][${j}] = ${v}`));
  });
}

const infer = (g: DockerGateway, framework: string, state: number[]) => g.http('POST', `/v1/frameworks/${framework}/inference`, { data: { state } });

test('on demand: the first inference request for a stopped framework starts its container and gets the action chunk', async (t) => {
  const spec = await testSpec('lerobot', { memoryBytes: 256 * MiB });
  const g = await startDockerGateway(t, { specs: [spec], config: { frameworks: { lerobot: { launcher: 'lerobot', timeoutMs: 60_000 } } } });
  const events: LauncherEvent[] = [];
  g.support.containers.onEvent((e) => events.push(e));
  assert.equal((await g.support.manager.inspect(spec.containerName!)), undefined, 'no container before the first request');
  assert.equal(g.gateway.router.status()[0]!.state, 'stopped');

  const t0 = performance.now();
  const first = await infer(g, 'lerobot', [0.5, -1, 2]);
  const firstMs = performance.now() - t0;
  assert.equal(first.status, 200);
  assertDemoChunk(first.body, [0.5, -1, 2]);
  const t1 = performance.now();
  const second = await infer(g, 'lerobot', [1, 2, 3]);
  const secondMs = performance.now() - t1;
  assert.equal(second.status, 200);
  assertDemoChunk(second.body, [1, 2, 3]);

  const info = await g.support.manager.inspect(spec.containerName!);
  assert.equal(info?.State.Running, true);
  assert.equal(info?.HostConfig.NetworkMode, 'host');
  assert.equal(info?.HostConfig.Memory, 256 * MiB);
  assert.deepEqual(g.gateway.router.status()[0]!.endpoints.map((e) => e.endpoint), [`tcp://127.0.0.1:${spec.port}`]);
  assert.equal(events.filter((e) => e.type === 'starting').length, 1);
  const running = events.find((e): e is Extract<LauncherEvent, { type: 'running' }> => e.type === 'running');
  const later: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t2 = performance.now();
    assert.equal((await infer(g, 'lerobot', [i])).status, 200);
    later.push(performance.now() - t2);
  }
  later.sort((a, b) => a - b);
  t.diagnostic(`gateway on demand: first request (container create+start+ready+inference) ${firstMs.toFixed(0)} ms ` +
    `(container create+start ${running?.startMs} ms), second request ${secondMs.toFixed(1)} ms, next 10: median ${later[5]!.toFixed(1)} ms`);
});

test('HTTP control API: start within a deadline, containers with memory limit and stats, metrics, stop; token and errors', async (t) => {
  const spec = await testSpec('groot', { memoryBytes: 200 * MiB });
  const noImage = await testSpec('pi0', { image: 'physical-ai-gateway/noimage:local' });
  const g = await startDockerGateway(t, {
    specs: [spec, noImage],
    config: { authToken: TOKEN, frameworks: { demo: { embedded: true }, groot: { launcher: 'groot', timeoutMs: 60_000 }, pi0: { launcher: 'pi0' } } },
  });
  const auth = { authorization: `Bearer ${TOKEN}` };

  const refused = await g.http('POST', '/v1/frameworks/groot/start');
  assert.equal(refused.status, 401);
  assert.equal((refused.body.error as { code: string }).code, 'unauthorized');
  assert.equal((await g.http('GET', '/v1/containers')).status, 401);
  assert.equal(await g.support.manager.inspect(spec.containerName!), undefined, 'a refused start starts nothing');

  const t0 = performance.now();
  const started = await g.http('POST', '/v1/frameworks/groot/start', { timeout_ms: 60_000 }, auth);
  const startMs = performance.now() - t0;
  assert.equal(started.status, 200, JSON.stringify(started.body));
  assert.equal(started.body.framework, 'groot');
  assert.equal(started.body.state, 'ready');
  assert.deepEqual(started.body.endpoints, [`tcp://127.0.0.1:${spec.port}`]);
  assert.equal(started.body.container, spec.containerName);
  t.diagnostic(`control start (create+start+ready) ${startMs.toFixed(0)} ms`);

  // the sampler's round: stats of our running container into the launcher's view and the metrics
  await g.support.watch.sampleNow();
  const listed = await g.http('GET', '/v1/containers', undefined, auth);
  assert.equal(listed.status, 200);
  const containers = listed.body.containers as Array<Record<string, unknown>>;
  const mine = containers.find((c) => c.name === spec.containerName);
  assert.ok(mine, JSON.stringify(containers));
  assert.equal(mine.framework, 'groot');
  assert.equal(mine.state, 'running');
  assert.equal(mine.image, spec.image);
  assert.equal(mine.endpoint, `tcp://127.0.0.1:${spec.port}`);
  assert.equal(mine.memoryLimitBytes, 200 * MiB);
  assert.ok(['healthy', 'starting', 'unhealthy', 'none'].includes(mine.health as string));
  const stats = mine.lastStats as { memoryUsedBytes: number; memoryLimitBytes: number } | null;
  assert.ok(stats && stats.memoryUsedBytes > 0, JSON.stringify(mine));
  assert.equal(stats.memoryLimitBytes, 200 * MiB);
  // the wire shape: ISO time, null (never absent) for what is unknown, no internal container id
  assert.deepEqual(Object.keys(stats).sort(), ['blockReadBytes', 'blockWriteBytes', 'cpuPercent', 'memoryLimitBytes', 'memoryUsedBytes', 'networkRxBytes', 'networkTxBytes', 'pids', 'time']);
  assert.ok(!Number.isNaN(Date.parse((stats as unknown as { time: string }).time)), JSON.stringify(stats));
  const frameworks = listed.body.frameworks as Array<{ framework: string; state: string }>;
  assert.deepEqual(frameworks.map((f) => [f.framework, f.state]), [['groot', 'running'], ['pi0', 'absent']], 'container states; readiness is the router\'s (GET /v1/frameworks)');

  const text = await g.metricsText();
  const labels = { framework: 'groot', container: spec.containerName! };
  assert.ok((metricValue(text, 'gateway_container_memory_bytes', labels) ?? 0) > 0, 'memory gauge of the running container');
  assert.equal(metricValue(text, 'gateway_container_memory_limit_bytes', labels), 200 * MiB);
  assert.equal(metricValue(text, 'gateway_container_oom_total', labels), 0);

  // inference is not a control route: no token needed; the started framework serves it
  const answer = await infer(g, 'groot', [3]);
  assert.equal(answer.status, 200);
  assertDemoChunk(answer.body, [3]);

  // errors in the protocol's codes
  const unknown = await g.http('POST', '/v1/frameworks/nope/start', undefined, auth);
  assert.equal(unknown.status, 404);
  assert.equal((unknown.body.error as { code: string }).code, 'unknown_framework');
  const notLaunchable = await g.http('POST', '/v1/frameworks/demo/start', undefined, auth);
  assert.equal(notLaunchable.status, 404);
  assert.match((notLaunchable.body.error as { message: string }).message, /not started by this gateway.*launcher: groot, pi0/);
  const missing = await g.http('POST', '/v1/frameworks/pi0/start', undefined, auth);
  assert.equal(missing.status, 503);
  assert.equal((missing.body.error as { code: string }).code, 'unavailable');
  assert.match((missing.body.error as { message: string }).message, /image physical-ai-gateway\/noimage:local is not on this Docker engine; build it first: docker build -t physical-ai-gateway\/noimage:local/);
  const badTimeout = await g.http('POST', '/v1/frameworks/groot/start', { timeout_ms: -1 }, auth);
  assert.equal(badTimeout.status, 400);

  const stopped = await g.http('POST', '/v1/frameworks/groot/stop', undefined, auth);
  assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
  assert.equal(stopped.body.state, 'stopped');
  assert.equal((await g.support.manager.inspect(spec.containerName!))?.State.Running, false);
  const after = await g.http('GET', '/v1/containers', undefined, auth);
  const gone = (after.body.containers as Array<Record<string, unknown>>).find((c) => c.name === spec.containerName);
  assert.equal(gone?.state, 'exited');
  assert.equal(gone?.lastStats, null);
  assert.equal(gone?.endpoint, null);
  // the die event drops the container's gauges
  await eventually(async () => (metricValue(await g.metricsText(), 'gateway_container_memory_bytes', labels) === undefined ? true : undefined));
  // stopping what is stopped is not an error
  assert.equal((await g.http('POST', '/v1/frameworks/groot/stop', undefined, auth)).status, 200);
});

test('`up <framework>` starts it and the gateway serves inference from that container; `down` removes it', async (t) => {
  const spec = await testSpec('pi0');
  const g = await startDockerGateway(t, { specs: [spec], config: { frameworks: { pi0: { launcher: 'pi0', timeoutMs: 60_000 } } } });
  const out: string[] = [];
  const ctx = { manager: g.support.manager, specs: [spec], out: (l: string) => void out.push(l) };
  assert.equal(await up(ctx, 'pi0'), `tcp://127.0.0.1:${spec.port}`);
  const id = (await g.support.manager.inspect(spec.containerName!))?.Id;
  assert.ok(id);
  const t0 = performance.now();
  const answer = await infer(g, 'pi0', [0.25, 0.75]);
  t.diagnostic(`first request to a framework started by 'up': ${(performance.now() - t0).toFixed(1)} ms; ${out.at(-1)}`);
  assert.equal(answer.status, 200);
  assertDemoChunk(answer.body, [0.25, 0.75]);
  assert.equal((await g.support.manager.inspect(spec.containerName!))?.Id, id, 'served by the container up started');
  assert.equal(await down(ctx, 'pi0'), 1);
  assert.equal(await g.support.manager.inspect(spec.containerName!), undefined);
});

test('a container killed from outside: the event is seen, the metrics drop it, the next request starts it again', async (t) => {
  const spec = await testSpec('lerobot');
  const g = await startDockerGateway(t, { specs: [spec], config: { frameworks: { lerobot: { launcher: 'lerobot', timeoutMs: 60_000 } } } });
  const events: LauncherEvent[] = [];
  g.support.containers.onEvent((e) => events.push(e));
  assert.equal((await infer(g, 'lerobot', [1])).status, 200);
  await g.support.watch.sampleNow();
  const labels = { framework: 'lerobot', container: spec.containerName! };
  assert.ok((metricValue(await g.metricsText(), 'gateway_container_memory_bytes', labels) ?? 0) > 0);
  const endpoint = `tcp://127.0.0.1:${spec.port}`;
  assert.equal(metricValue(await g.metricsText(), 'gateway_worker_up', { framework: 'lerobot', endpoint }), 1);

  await dockerCli('kill', spec.containerName!);
  const exited = await eventually(async () => events.find((e): e is Extract<LauncherEvent, { type: 'exited' }> => e.type === 'exited'));
  assert.deepEqual([exited.framework, exited.exitCode, exited.expected], ['lerobot', 137, false]);
  assert.equal(events.filter((e) => e.type === 'exited').length, 1, 'one exit, though two subscriptions saw it');
  const text = await eventually(async () => {
    const m = await g.metricsText();
    return metricValue(m, 'gateway_container_memory_bytes', labels) === undefined && metricValue(m, 'gateway_worker_up', { framework: 'lerobot', endpoint }) === 0 ? m : undefined;
  });
  assert.equal(metricValue(text, 'gateway_container_oom_total', labels), 0, 'killed, not out of memory');
  assert.equal((await g.support.launcher.status())[0]!.state, 'stopped');

  const t0 = performance.now();
  const again = await infer(g, 'lerobot', [2]);
  assert.equal(again.status, 200);
  assertDemoChunk(again.body, [2]);
  t.diagnostic(`request after the kill (restart of the stopped container + inference): ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(events.filter((e) => e.type === 'running').length, 2);
  assert.equal((await g.support.manager.inspect(spec.containerName!))?.State.Running, true);
});
