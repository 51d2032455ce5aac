// A framework as a Swarm service with CURVE on a private single-node swarm (test/support/swarm.ts): the key file and
// the allowed clients are in the worker's argv, not its env, and Swarm's own health probe still speaks CURVE (with the
// worker's key), so the task turns healthy; a client whose key the worker does not know is refused; `logs --follow`
// streams the tasks' lines; the gateway scales the idle service to 0 and the next request scales it back; a held
// service (a job) is not scaled to 0 until the hold ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { logs } from '../../src/docker/commands.js';
import { sleep } from '../../src/lib/abort.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import type { ServiceLauncher } from '../../src/docker/service-launcher.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { generateCurveKeyPair, readCurveKeyFileSync, writeCurveKeyFiles } from '../../src/zmq/curve-keys.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { TEST_IMAGE } from '../support/docker.js';
import { engineState, freePortRange, startSwarm } from '../support/swarm.js';

test('a CURVE service: healthy through its CURVE probe, a stranger key refused, logs --follow, scaled to 0 when idle and back on the next request', { timeout: 280_000 }, async (t) => {
  const swarm = await startSwarm(t);
  const { engine, manager, log } = swarm;
  const keys = join(engine.dir, 'keys'); // removed with the engine's folder
  await mkdir(join(keys, 'clients'), { recursive: true });
  await writeCurveKeyFiles(keys, 'worker');
  await writeCurveKeyFiles(keys, 'gateway');
  await copyFile(join(keys, 'gateway.pub'), join(keys, 'clients', 'gateway.pub'));
  const securePort = await freePortRange(1);
  const secureSpec: FrameworkSpec = {
    name: 'secure',
    image: TEST_IMAGE,
    networkMode: 'host',
    mode: 'service',
    bindHost: '127.0.0.1',
    port: securePort,
    replicas: 1,
    readyTimeoutMs: 60_000,
    stopTimeoutS: 5,
    command: ['python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}', '--framework', '{framework}', '--policy', 'demo', '--curve-secret-key-file', '/keys/worker.key', '--curve-clients-dir', '/keys/clients'],
    mounts: [{ hostPath: keys, containerPath: '/keys', readOnly: true }],
  };
  const secureConfig = parseConfig(
    {
      healthIntervalMs: 300,
      docker: { idleStopMs: 3_000 },
      frameworks: { secure: { launcher: 'lerobot', timeoutMs: 60_000, startTimeoutMs: 90_000, curve: { serverPublicKeyFile: join(keys, 'worker.pub'), secretKeyFile: join(keys, 'gateway.key') } } },
    },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const secure = await buildGateway(secureConfig, { metrics: createMetrics(new Registry()), log, docker: { specs: [secureSpec], manager } });
  const secureLauncher = secure.docker!.launcher.launcherOf('secure') as ServiceLauncher;
  swarm.track(secure, secureLauncher, ['secure']);
  const stoppedIdle = new Promise<string>((resolve) => secureLauncher.onEvent((e) => e.type === 'stopped' && resolve(e.reason)));
  const inferSecure = async () => (await fetch(`${secure.httpUrl}/v1/frameworks/secure/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1]}' })).status;
  assert.equal(await inferSecure(), 200, 'the first request starts the CURVE service and is served over CURVE');
  // A client keeps using it (so it is not idle) until the checks below are done; a failed request counts as 0.
  let inUse = true;
  const secureStatuses: number[] = [];
  const secureClient = (async () => {
    while (inUse) secureStatuses.push(await inferSecure().catch(() => 0));
  })();
  try {
    // Swarm counts the task running only once its health probe passed (the probe connects with CURVE).
    const secureState = await engineState(secureLauncher, 'secure', (st) => st.state === 'running');
    assert.equal(secureState.state, 'running', 'the CURVE task passed its health probe');
    const [secureTask] = (await secureLauncher.services.tasks(secureSpec)).filter((task) => task.desiredState === 'running');
    assert.equal(await engine.cli('inspect', '--format', '{{.State.Health.Status}}', secureTask!.containerId!), 'healthy');
    // A client whose key is not among the worker's allowed clients gets no answer (refused in the handshake).
    const stranger = generateCurveKeyPair();
    const workerPub = readCurveKeyFileSync(join(keys, 'worker.pub'), { secret: false }).publicKey;
    await using strangerPool = new WorkerPool({ framework: 'secure', endpoints: [`tcp://127.0.0.1:${securePort}`], healthIntervalMs: 0, timeoutMs: 1_500, curve: { serverKey: workerPub, ...stranger } });
    await strangerPool.start().catch(() => undefined);
    await assert.rejects(strangerPool.request({ type: 'inference', data: { state: [1] } }), (err: { code?: string }) => ['unavailable', 'timeout'].includes(err.code ?? ''));
    // logs --follow for a service: streams the task's lines until aborted.
    const follow = new AbortController();
    const followed: string[] = [];
    const giveUp = setTimeout(() => follow.abort(), 60_000); // the assertion below says what was missing
    t.after(() => clearTimeout(giveUp));
    await logs({ manager, specs: [secureSpec], signal: follow.signal, out: (line) => (followed.push(line), line.includes('worker.listening') && follow.abort()) }, 'secure', { follow: true, tail: 50 });
    clearTimeout(giveUp);
    assert.ok(followed.some((l) => l.includes('worker.listening')), `logs --follow streamed the task's lines:\n${followed.join('\n')}`);
  } finally {
    inUse = false;
    await secureClient;
  }
  assert.ok(secureStatuses.length > 0 && secureStatuses.every((st) => st === 200), `served over CURVE meanwhile: ${secureStatuses.join(',')}`);
  // Idle for idleStopMs: scaled to 0 (the service is kept); the next request scales it back within its deadline
  // (60 s here: the start counts against it).
  assert.equal(await stoppedIdle, 'idle');
  assert.equal((await secureLauncher.services.list()).find((svc) => svc.framework === 'secure')?.replicas, 0, 'an idle service is scaled to 0');
  // Held (what the job manager does for a queued or running job; no request in flight) before the next request:
  // the request scales it back, and it is not scaled to 0 across three idle periods after that request ended.
  const stops: string[] = [];
  secureLauncher.onEvent((e) => e.type === 'stopped' && stops.push(e.reason));
  const release = secureLauncher.hold('secure');
  assert.equal(await inferSecure(), 200, 'the next request scales it back');
  assert.equal((await secureLauncher.services.list()).find((svc) => svc.framework === 'secure')?.replicas, 1);
  await sleep(3 * 3_000);
  assert.deepEqual(stops, [], 'a held service is not scaled to 0');
  const idleAgain = new Promise<string>((resolve) => secureLauncher.onEvent((e) => e.type === 'stopped' && resolve(e.reason)));
  release();
  release(); // idempotent
  assert.equal(await idleAgain, 'idle', 'scaled to 0 idleStopMs after the hold ends');
  assert.equal((await secureLauncher.services.list()).find((svc) => svc.framework === 'secure')?.replicas, 0);
  swarm.passed();
});
