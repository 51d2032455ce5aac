// A Docker engine that goes away under load and comes back: requests to the framework in Docker end with
// `unavailable` (or `timeout`) while it is gone, never hang, and once an engine answers again the next requests
// start the framework and are served, with no manual start. The test runs a private dockerd of its own (own
// socket, data and exec roots, no bridge, no iptables) so it can kill and restart it without touching the engine
// the rest of the suite uses; the test image is copied into it with docker save | docker load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { ensureDockerAndImage, testSpec } from '../support/docker.js';
import { loadImage, startEngine, stopEngine } from '../support/private-engine.js';

test('a Docker engine stopped and restarted under load: requests fail fast while it is gone, then the framework serves again by itself', { timeout: 240_000 }, async (t) => {
  ensureDockerAndImage();
  let engine = await startEngine();
  const dir = engine.dir;
  let gatewayClose: () => Promise<void> = async () => undefined;
  // One clean-up, in order: the gateway, then the engine (its containers stop with it), then its folder.
  t.after(async () => {
    await gatewayClose();
    // A mount of the private engine copied into a container started meanwhile elsewhere can keep a layer busy
    // for a moment; what cannot be removed now is only a temp folder.
    for (const left of await stopEngine(engine)) t.diagnostic(`left: ${left}`);
  });
  await loadImage(engine);

  const manager = new DockerManager({ docker: { socketPath: engine.socket } });
  const spec = await testSpec('lerobot', { stopTimeoutS: 1 });
  const config = parseConfig(
    { healthIntervalMs: 200, frameworks: { lerobot: { launcher: 'lerobot', timeoutMs: 3_000, startTimeoutMs: 30_000 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const gateway = await buildGateway(config, { metrics: createMetrics(new Registry()), docker: { specs: [spec], manager } });
  gatewayClose = async () => {
    await gateway.close(500);
    await manager.close();
  };

  const infer = async (): Promise<{ status: number; code?: string }> => {
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/lerobot/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1,2]}' });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, ...(body.error ? { code: body.error.code } : {}) };
  };
  assert.deepEqual(await infer(), { status: 200 }, 'the first request starts the framework on the private engine');

  // Load: four clients in a loop until told to stop; every request must end (reply or error), none hang.
  let phase: 'before' | 'gone' | 'back' = 'before';
  const outcomes = { before: new Map<string, number>(), gone: new Map<string, number>(), back: new Map<string, number>() };
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  // Each finished request wakes the waiters (outcomes are announced by the requests themselves, not polled).
  let wake: Array<() => void> = [];
  const until = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
    const end = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > end) return false;
      await new Promise<void>((resolve) => wake.push(resolve));
    }
    return true;
  };
  let running = true;
  const clients = Array.from({ length: 4 }, async () => {
    while (running) {
      const r = await infer();
      const key = r.code ?? String(r.status);
      const m = outcomes[phase];
      m.set(key, (m.get(key) ?? 0) + 1);
      const waiting = wake;
      wake = [];
      for (const w of waiting) w();
    }
  });

  // The engine goes away (it stops its containers on the way out).
  engine.process.kill('SIGTERM');
  await engine.exited;
  phase = 'gone';
  // While it is gone every request ends with unavailable or timeout (the deadline is 3 s; none hangs).
  assert.ok(await until(() => total(outcomes.gone) >= 8, 60_000), 'requests end while the engine is gone');
  for (const code of outcomes.gone.keys()) assert.ok(['unavailable', 'timeout'].includes(code), `while the engine is gone: ${code}`);

  // An engine answers again (same data root: the stopped container is still there) ...
  engine = await startEngine({ dir });
  phase = 'back';
  // ... and the framework serves again without a manual start: requests succeed within its start timeout.
  const served = await until(() => (outcomes.back.get('200') ?? 0) >= 4, 60_000);
  running = false;
  await Promise.all(clients);
  t.diagnostic(`outcomes before: ${JSON.stringify([...outcomes.before])}, engine gone: ${JSON.stringify([...outcomes.gone])}, engine back: ${JSON.stringify([...outcomes.back])}`);
  assert.ok(served, `the framework served again after the engine came back: ${JSON.stringify([...outcomes.back])}`);
  assert.equal(gateway.router.status()[0]!.state, 'ready');
  assert.equal(gateway.router.inFlight, 0);
});
