// Idle stop never stops a busy framework, on the real engine with the gateway's DockerLauncher: a worker that takes
// several idleStopMs to become ready, a request in flight for several idleStopMs, and a training job (the SDK's
// JobRunner with the stand-in trainer test/jobs/fake_trainer.py) all keep the container; each is stopped
// idleStopMs after the last of them ends, and a framework started and never used stops idleStopMs after ready.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LauncherEvent } from '../../src/docker/launcher.js';
import type { JobEvent } from '../../src/jobs/job-manager.js';
import { startDockerGateway, testSpec, type DockerGateway } from '../support/docker.js';

const IDLE_MS = 1_000;
/** Ready this long after start and each inference this long: 3.5 idle periods. */
const SLOW_MS = 3_500;
const FIXTURES = fileURLToPath(new URL('../jobs/', import.meta.url));

/** A worker of the offline image: ready `readyMs` after start, each inference `delayMs`, with the replica tests' training handlers. */
async function workerGateway(t: TestContext, framework: string, { readyMs = 0, delayMs = 0 }: { readyMs?: number; delayMs?: number }): Promise<{ g: DockerGateway; stops: Array<LauncherEvent & { at: number }> }> {
  const out = await mkdtemp(join(tmpdir(), 'pag-idle-hold-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const spec = await testSpec(framework, {
    command: [
      'python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}', '--framework', '{framework}', '--capacity', '4',
      '--ready-after-ms', String(readyMs), '--delay-ms', String(delayMs),
      '--handler', 'train=replica_jobs:train', '--handler', 'jobs=replica_jobs:jobs', '--handler', 'cancel_job=replica_jobs:cancel_job',
    ],
    env: { PYTHONPATH: '/opt/worker-sdk:/opt/worker-sdk/src:/fixtures', REPLICA_OUTPUT_ROOT: '/out' },
    mounts: [{ hostPath: FIXTURES, containerPath: '/fixtures', readOnly: true }, { hostPath: out, containerPath: '/out' }],
  });
  const g = await startDockerGateway(t, {
    specs: [spec],
    config: { frameworks: { [framework]: { launcher: framework, timeoutMs: 60_000, training: true } }, docker: { idleStopMs: IDLE_MS }, jobs: { pollIntervalMs: 100, waitMs: 2_000 } },
  });
  const stops: Array<LauncherEvent & { at: number }> = [];
  g.support.containers.onEvent((e) => e.type === 'stopped' && stops.push({ ...e, at: performance.now() }));
  return { g, stops };
}

/** Resolves at the next `stopped` event of the launcher, with when it came. */
function nextStop(g: DockerGateway): Promise<{ event: LauncherEvent; at: number }> {
  return new Promise((resolve) => {
    const off = g.support.containers.onEvent((event) => {
      if (event.type !== 'stopped') return;
      off();
      resolve({ event, at: performance.now() });
    });
  });
}

async function running(g: DockerGateway, framework: string): Promise<boolean> {
  return (await g.support.containers.status()).find((s) => s.framework === framework)?.state === 'running';
}

test('a worker slow to become ready is not stopped while it loads; started and never used, it stops idleStopMs after ready', async (t) => {
  const { g, stops } = await workerGateway(t, 'slowload', { readyMs: SLOW_MS });
  const router = g.gateway.router;

  // Started by the control API, no request: the launch holds it until the worker is ready (3.5 idle periods).
  const startedAt = performance.now();
  const unusedStop = nextStop(g);
  await router.startFramework('slowload', AbortSignal.timeout(60_000));
  const readyAt = performance.now();
  assert.ok(readyAt - startedAt >= SLOW_MS, 'the worker became ready only after its load');
  assert.deepEqual(stops, [], 'not stopped while it loaded');
  const first = await unusedStop;
  assert.deepEqual(first.event, { type: 'stopped', framework: 'slowload', reason: 'idle' });
  assert.ok(first.at - readyAt >= IDLE_MS - 20, `stopped ${(first.at - readyAt).toFixed(0)} ms after ready`);

  // A request to the stopped framework waits for the start and the load: it holds the framework meanwhile.
  const requestStop = nextStop(g);
  const reply = await router.route({ type: 'inference', data: { state: [1, 2] } });
  const repliedAt = performance.now();
  assert.deepEqual((reply.result as { action: { shape: number[] } }).action.shape, [16, 2]);
  assert.equal(stops.length, 1, `no stop while the request waited for the load (stops: ${JSON.stringify(stops)})`);
  const second = await requestStop;
  assert.equal((second.event as { reason: string }).reason, 'idle');
  assert.ok(second.at - repliedAt >= IDLE_MS - 20, `stopped ${(second.at - repliedAt).toFixed(0)} ms after the reply`);
});

test('a request in flight for several idleStopMs is not cut; the framework stops idleStopMs after its reply', async (t) => {
  const { g, stops } = await workerGateway(t, 'slowinfer', { delayMs: SLOW_MS });
  const router = g.gateway.router;
  const stop = nextStop(g);
  const sentAt = performance.now();
  const reply = await router.route({ type: 'inference', data: { state: [1, 2] } });
  const repliedAt = performance.now();
  assert.deepEqual((reply.result as { action: { shape: number[] } }).action.shape, [16, 2]);
  assert.ok(repliedAt - sentAt >= SLOW_MS, 'the inference took its 3.5 idle periods');
  assert.deepEqual(stops, [], 'not stopped while the request was in flight');
  const { event, at } = await stop;
  assert.deepEqual(event, { type: 'stopped', framework: 'slowinfer', reason: 'idle' });
  assert.ok(at - repliedAt >= IDLE_MS - 20, `stopped ${(at - repliedAt).toFixed(0)} ms after the reply`);
  assert.equal(router.inFlight, 0);
});

test('a running training job holds the framework; it stops idleStopMs after the job ends', async (t) => {
  const { g, stops } = await workerGateway(t, 'trainer', {});
  const events: JobEvent[] = [];
  g.gateway.jobs.onEvent((e) => events.push(e));
  /** Resolves at the first job event `match` accepts (also among those already seen). */
  const until = (match: (e: JobEvent) => boolean) =>
    new Promise<JobEvent>((resolve) => {
      const seen = events.find(match);
      if (seen) return resolve(seen);
      const off = g.gateway.jobs.onEvent((e) => {
        if (!match(e)) return;
        off();
        resolve(e);
      });
    });

  const finished = (e: JobEvent) => e.type === 'state' && e.job.id === job.id && ['succeeded', 'failed', 'cancelled'].includes(e.job.state);
  // The `train` request starts the container; the job then runs until cancelled, polled beside the router.
  const job = await g.gateway.jobs.submit('trainer', { dataset: 'local/x', policy_type: 'act', policy_device: 'cpu', steps: 1_000_000, output_folder_name: 'held' });
  assert.equal(job.state, 'running', job.error);
  // The stand-in trainer reports a step every 20 ms: step 200 is at least four idle periods after the start.
  const window = await until((e) => (e.type === 'progress' && e.job_id === job.id && (e.step ?? 0) >= 200) || finished(e));
  assert.equal(window.type, 'progress', `the job ended early: ${JSON.stringify(window)}`);
  assert.deepEqual(stops, [], 'not stopped while the job ran');
  assert.equal(await running(g, 'trainer'), true);

  const stop = nextStop(g);
  await g.gateway.jobs.cancel(job.id);
  const ended = await until(finished);
  const endedAt = performance.now();
  assert.equal((ended as { job: { state: string } }).job.state, 'cancelled');
  const { event, at } = await stop;
  assert.deepEqual(event, { type: 'stopped', framework: 'trainer', reason: 'idle' });
  assert.ok(at - endedAt >= IDLE_MS - 20, `stopped ${(at - endedAt).toFixed(0)} ms after the job ended`);
  assert.equal(await running(g, 'trainer'), false);
});
