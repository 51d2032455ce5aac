// Training jobs on a framework with several workers (Swarm replicas), with real Python workers (the SDK's JobRunner,
// replica_jobs.py) and a stand-in trainer (fake_trainer.py: no LeRobot needed):
//   - a job's polls and cancel reach the worker that runs it, never another replica; a pool request that names an
//     endpoint is answered by that endpoint or fails, it is not retried elsewhere
//   - a restarted gateway lists the recent finished jobs (state, error, checkpoints), within both bounds (the worker's
//     max_finished and the gateway's jobs.maxFinished)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { JobManager, type JobEvent, type JobRecord, type JobTransport } from '../../src/jobs/job-manager.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const HANDLERS = { train: 'replica_jobs:train', jobs: 'replica_jobs:jobs', cancel_job: 'replica_jobs:cancel_job' };

async function worker(t: TestContext, env: Record<string, string> = {}): Promise<PythonWorker> {
  const out = mkdtempSync(join(tmpdir(), 'paig-replica-jobs-'));
  const w = await spawnPythonWorker({ framework: 'trainer', handlers: HANDLERS, pythonPath: [HERE], env: { REPLICA_OUTPUT_ROOT: out, ...env } });
  t.after(async () => {
    await w.close();
    rmSync(out, { recursive: true, force: true });
  });
  return w;
}

async function gateway(t: TestContext, endpoints: string[], jobs: Record<string, number> = {}): Promise<Gateway> {
  const config = parseConfig(
    { healthIntervalMs: 200, jobs: { pollIntervalMs: 100, waitMs: 2_000, maxPerDevice: 4, ...jobs }, frameworks: { trainer: { endpoints, timeoutMs: 10_000, training: true } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const g = await buildGateway(config, { metrics: createMetrics(new Registry()) });
  t.after(() => g.close(200));
  await g.router.registry.resolve('trainer').pool.whenReady(AbortSignal.timeout(20_000));
  return g;
}

/** Resolves with the next job event that `match` accepts. */
function until(g: Gateway, match: (e: JobEvent) => boolean): Promise<JobEvent> {
  return new Promise((resolve) => {
    const off = g.jobs.onEvent((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });
}
const ended = (id: string) => (e: JobEvent) => e.type === 'state' && e.job.id === id && ['succeeded', 'failed', 'cancelled'].includes(e.job.state);

async function direct(endpoint: string, type: string, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const client = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  try {
    return (await client.request({ type, data })).result as Record<string, unknown>;
  } finally {
    await client.close();
  }
}
const jobIds = (query: Record<string, unknown>) => (query.jobs as Array<{ job_id: string }>).map((j) => j.job_id).sort();
const LONG = { dataset: 'local/x', policy_type: 'act', policy_device: 'cpu', steps: 1_000_000 };

test('two replicas: each job is polled and cancelled at the worker that runs it; a named endpoint is never swapped for another', async (t) => {
  const [w1, w2] = await Promise.all([worker(t), worker(t)]);
  // A job already running on the second replica (started before this gateway): adopted from w2 only.
  await direct(w2.endpoint, 'train', { job_id: 'on-w2', ...LONG, output_folder_name: 'on-w2' });
  const g = await gateway(t, [w1.endpoint, w2.endpoint]);
  const adopted = g.jobs.list().find((j) => j.id === 'on-w2') ?? ((await until(g, (e) => e.type === 'state' && e.job.id === 'on-w2')) as { job: JobRecord }).job;
  assert.equal(adopted.endpoint, w2.endpoint);
  assert.equal(adopted.adopted, true);

  // A job started through the gateway records the worker that took it, and that worker has it.
  const started = await g.jobs.submit('trainer', { ...LONG, output_folder_name: 'via-gateway' });
  assert.ok(started.endpoint === w1.endpoint || started.endpoint === w2.endpoint, `endpoint ${started.endpoint}`);
  assert.ok(jobIds(await direct(started.endpoint!, 'jobs', {})).includes(started.id));

  // Progress arrives for both (with per-framework polling, a poll answered by the other replica would fail a job
  // as "no longer known").
  await Promise.all(['on-w2', started.id].map((id) => until(g, (e) => e.type === 'progress' && e.job_id === id && (e.step ?? 0) >= 2)));
  for (const job of g.jobs.list()) assert.equal(job.state, 'running', `${job.id}: ${job.error}`);

  // The pool itself: a request naming an endpoint goes there, every time, and is never retried elsewhere.
  const pool = g.router.registry.resolve('trainer').pool;
  for (let i = 0; i < 4; i++) {
    const reply = await pool.request({ type: 'jobs', framework: 'trainer', data: {} }, { endpoint: w2.endpoint, timeoutMs: 5_000 });
    assert.equal(reply.endpoint, w2.endpoint);
    assert.ok(jobIds(reply.result as Record<string, unknown>).includes('on-w2'));
  }
  await assert.rejects(pool.request({ type: 'jobs', framework: 'trainer', data: {} }, { endpoint: 'tcp://127.0.0.1:1', timeoutMs: 1_000 }), { name: 'GatewayError', code: 'unavailable' });

  // Cancel reaches each job's own worker.
  const ends = ['on-w2', started.id].map((id) => until(g, ended(id)));
  await g.jobs.cancel('on-w2');
  await g.jobs.cancel(started.id);
  for (const end of (await Promise.all(ends)) as Array<{ job: JobRecord }>) assert.equal(end.job.state, 'cancelled', `${end.job.id}: ${end.job.error}`);

  // w2 gone: a request naming it fails rather than being answered by w1.
  await w2.kill('SIGKILL');
  await assert.rejects(pool.request({ type: 'jobs', framework: 'trainer', data: {} }, { endpoint: w2.endpoint, timeoutMs: 1_000 }), (err: { code: string }) => ['unavailable', 'timeout'].includes(err.code));
  await assert.rejects(pool.request({ type: 'cancel_job', framework: 'trainer', data: { job_id: 'on-w2' } }, { endpoint: w2.endpoint, timeoutMs: 1_000 }), (err: { code: string }) => ['unavailable', 'timeout'].includes(err.code));
});

test('a restarted gateway lists the recent finished jobs with their state, error and checkpoints, within both bounds', async (t) => {
  const w = await worker(t, { REPLICA_MAX_FINISHED: '2' });
  const first = await gateway(t, [w.endpoint], { maxPerDevice: 1, maxFinished: 2 });
  // One device, so they run one after another: a (succeeds), c (succeeds), b (refused at start), in that order.
  const jobs: JobRecord[] = [];
  for (const [name, policy] of [['a', 'act'], ['c', 'act'], ['b', 'refuse']] as const) {
    jobs.push(await first.jobs.submit('trainer', { dataset: 'local/x', policy_type: policy, policy_device: 'cpu', steps: 3, output_folder_name: name }));
  }
  const [a, c, b] = jobs as [JobRecord, JobRecord, JobRecord];
  if (first.jobs.list().find((j) => j.id === b.id)?.state !== 'failed') await until(first, ended(b.id));
  assert.deepEqual(first.jobs.list().map((j) => j.id).sort(), [b.id, c.id].sort(), 'the gateway keeps jobs.maxFinished = 2');
  assert.deepEqual(jobIds(await direct(w.endpoint, 'jobs', {})), [b.id, c.id].sort(), 'the worker keeps max_finished = 2');
  await first.close(200);

  const second = await gateway(t, [w.endpoint], { maxFinished: 3 });
  const listed = await listedSoon(second, 2);
  const byId = new Map(listed.map((j) => [j.id, j]));
  assert.equal(byId.has(a.id), false, 'a: forgotten by the worker');
  const cAgain = byId.get(c.id)!;
  assert.equal(cAgain.state, 'succeeded');
  assert.equal(cAgain.adopted, true);
  assert.equal(cAgain.progress.step, 3);
  assert.equal(cAgain.checkpoints.length, 1);
  assert.match(cAgain.checkpoints[0]!, /\/c\/checkpoints\/000003\/pretrained_model$/);
  const bAgain = byId.get(b.id)!;
  assert.equal(bAgain.state, 'failed');
  assert.match(bAgain.error!, /^fake-train: error: policy type 'refuse' is refused \(output: /);
  await second.close(200);

  // A job manager of its own over a real pool, subscribed before it starts: it adopts the finished jobs without
  // replaying their old progress events as news.
  await using pool = new WorkerPool({ framework: 'trainer', endpoints: [w.endpoint] });
  await pool.start();
  await pool.whenReady(AbortSignal.timeout(20_000));
  const transport: JobTransport = {
    request: async (framework, type, data, { timeoutMs, endpoint, signal }) => {
      const reply = await pool.request({ type, data, framework }, { timeoutMs, ...(endpoint ? { endpoint } : {}), ...(signal ? { signal } : {}) });
      return { result: reply.result, endpoint: reply.endpoint };
    },
    readyWorkers: () => [{ framework: 'trainer', endpoint: w.endpoint }],
    trains: () => true,
    onReady: () => () => undefined,
    resolve: (name) => name ?? 'trainer',
  };
  const third = new JobManager({ transport, maxFinished: 1 });
  t.after(() => third.close());
  const seen: JobEvent[] = [];
  const adopted = new Promise<void>((resolve) => third.onEvent((e) => (seen.push(e), e.type === 'state' && resolve())));
  third.start();
  await adopted;
  await third.close(); // nothing runs: the adoption poll was its last
  assert.deepEqual(third.list().map((j) => j.id), [b.id], 'jobs.maxFinished = 1: the most recent only');
  assert.deepEqual(seen.filter((e) => e.type !== 'state'), [], 'no old progress replayed');
});

/** The gateway's list once it holds `n` jobs (adoption runs when the worker's endpoint is ready). */
async function listedSoon(g: Gateway, n: number): Promise<JobRecord[]> {
  while (g.jobs.list().length < n) await until(g, (e) => e.type === 'state');
  return g.jobs.list();
}

test('jobs.waitMs and jobs.maxFinished: defaults, and out-of-range values named in one ConfigError', () => {
  const defaults = parseConfig({}, {}).jobs;
  assert.equal(defaults.waitMs, 10_000);
  assert.equal(defaults.maxFinished, 100);
  assert.throws(() => parseConfig({ jobs: { waitMs: -1, maxFinished: 'many' } }, {}), (err: Error) => err.name === 'ConfigError' && /jobs\.waitMs/.test(err.message) && /jobs\.maxFinished/.test(err.message));
});
