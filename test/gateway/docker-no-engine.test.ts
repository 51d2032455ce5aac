// No Docker engine: a gateway with a framework in Docker logs one clear error at start, serves the frameworks that
// need no Docker, and answers requests (and control calls) for the Docker one with 503 `unavailable` saying Docker
// is not reachable. The manager points at a socket path that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { createLogger } from '../../src/lib/log.js';
import { createMetrics } from '../../src/telemetry/metrics.js';

test('no Docker engine: one clear error at start, demo still served, the Docker framework answers 503 unavailable', async (t) => {
  const socketPath = join(tmpdir(), `pag-no-docker-${process.pid}.sock`);
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'debug', write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = createMetrics(new Registry());
  const config = parseConfig(
    { healthIntervalMs: 200, docker: { statsIntervalMs: 500 }, frameworks: { demo: { embedded: true }, lerobot: { launcher: 'lerobot', timeoutMs: 10_000 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const gateway = await buildGateway(config, {
    log,
    metrics,
    docker: {
      connection: { socketPath },
      specs: [{ name: 'lerobot', image: 'physical-ai-gateway/worker:local', networkMode: 'host', port: 59_123, readyTimeoutMs: 5_000 }],
    },
  });
  t.after(() => gateway.close(500));
  assert.equal(gateway.docker?.engine.reachable, false);
  const post = async (path: string, body?: unknown) => {
    const res = await fetch(`${gateway.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    return { status: res.status, body: (await res.json()) as { status?: string; error?: { code: string; message: string; retryable: boolean } } };
  };

  const demo = await post('/v1/frameworks/demo/inference', { data: { state: [1, 2] } });
  assert.equal(demo.status, 200);
  assert.equal(demo.body.status, 'success');

  for (let i = 0; i < 2; i++) {
    const docker = await post('/v1/frameworks/lerobot/inference', { data: { state: [1, 2] } });
    assert.equal(docker.status, 503);
    assert.equal(docker.body.error?.code, 'unavailable');
    assert.equal(docker.body.error?.retryable, true);
    assert.match(docker.body.error!.message, /framework lerobot runs in Docker and cannot start: .*Docker is not reachable: no Docker engine answers at .*pag-no-docker-\d+\.sock/);
  }
  const control = await post('/v1/frameworks/lerobot/start');
  assert.equal(control.status, 503);
  assert.match(control.body.error!.message, /Docker is not reachable/);
  const containers = await fetch(`${gateway.httpUrl}/v1/containers`);
  assert.equal(containers.status, 503);
  assert.match(((await containers.json()) as { error: { message: string } }).error.message, /Docker is not reachable/);

  // demo still served after the failures; a wait for the sampler's retries shows they do not add log errors
  assert.equal((await post('/v1/frameworks/demo/inference', { data: { state: [3] } })).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  const errors = lines.filter((l) => l.level === 'error');
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0]!.event, 'docker.engine_unavailable');
  assert.match(String(errors[0]!.message), /^Docker is not reachable; frameworks lerobot will answer 503 unavailable until an engine answers/);
  const dockerWarnings = lines.filter((l) => l.level === 'warn' && String(l.event).startsWith('docker.'));
  assert.deepEqual(dockerWarnings, [], 'no Docker warnings beyond the one error');
});
