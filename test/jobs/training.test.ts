// Training jobs with real LeRobot (.venv-lerobot, CPU): a tiny ACT trained by LeRobot's own lerobot-train loop on a
// LeRobotDataset the fixture writes locally (training_fixture.py; no hub). The worker is docker/lerobot/serve_policy.py
// as a host process; the gateway starts jobs in it, follows their progress and cancels them.
//   - the CLI's train command runs a job to its end (exit 0, live progress line); the losses it reported are the ones
//     LeRobot logged for the same steps; `load_policy` then serves its checkpoint, and the next inference gives
//     what LeRobot itself computes with that checkpoint (and differs from the untrained policy's)
//   - bad options: one bad_request listing every bad field
//   - a gateway restarted while a job runs finds it again (adopted) and cancels it; the cancelled run stops and
//     leaves only complete checkpoints
//   - a worker killed mid-job: the job fails, saying its worker stopped answering
//   - LeRobot refusing to start (a dataset that is not there, an unknown policy type, an out-of-range option): the
//     job fails with LeRobot's own error line, not a traceback
// Training budget: 8 steps to the end, plus two runs stopped after their first checkpoint, plus three runs that
// stop before their first step.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { runTrain } from '../../src/cli/train-command.js';
import { parseConfig } from '../../src/config.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { Registry } from 'prom-client';
import type { JobEvent, JobRecord } from '../../src/jobs/job-manager.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { ensureLerobot, LEROBOT_PYTHON, referenceChunks, startLerobotWorker, tempDir, type LerobotWorker } from '../../bench/lib/lerobot-env.js';

const run = promisify(execFile);
const FIXTURE = fileURLToPath(new URL('./training_fixture.py', import.meta.url));
const SIZE = 32;
const STATE = [0.3, -0.1, 0.5, 0.2, -0.4, 0.1];

let scratch: { dir: string; remove(): void };
let setup: { hf_lerobot_home: string; repo_id: string; policy: string; extra_args: string[] };
let outputs: string;
let image: { tensor: Tensor; file: string };

before(async () => {
  process.stderr.write(`${await ensureLerobot()}\n`);
  scratch = tempDir();
  outputs = join(scratch.dir, 'outputs');
  const { stdout } = await run(LEROBOT_PYTHON, [FIXTURE, 'setup', scratch.dir], { env: { ...process.env, HF_HUB_OFFLINE: '1', OMP_NUM_THREADS: '1' }, maxBuffer: 16 << 20, timeout: 300_000 });
  setup = JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
  const data = new Uint8Array(SIZE * SIZE * 3).map((_, i) => (i * 37) % 251);
  const file = join(scratch.dir, 'top.u8');
  (await import('node:fs')).writeFileSync(file, data);
  image = { tensor: new Tensor('uint8', [SIZE, SIZE, 3], data), file };
}, { timeout: 25 * 60_000 });

after(() => scratch?.remove());

async function worker(t: TestContext): Promise<LerobotWorker> {
  const w = await startLerobotWorker({ policyPath: setup.policy, env: { HF_LEROBOT_HOME: setup.hf_lerobot_home, LEROBOT_OUTPUT_ROOT: outputs } });
  t.after(() => w.close());
  return w;
}

async function gateway(t: TestContext, frameworks: Record<string, string>, jobs: Record<string, number> = {}): Promise<Gateway> {
  const config = parseConfig(
    { healthIntervalMs: 200, jobs: { pollIntervalMs: 200, waitMs: 2_000, cancelGraceS: 30, ...jobs }, frameworks: Object.fromEntries(Object.entries(frameworks).map(([name, endpoint]) => [name, { endpoints: [endpoint], timeoutMs: 60_000, training: true }])) },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const g = await buildGateway(config, { metrics: createMetrics(new Registry()) });
  t.after(() => g.close(500));
  for (const e of g.router.registry.entries()) await e.pool.whenReady(AbortSignal.timeout(120_000));
  return g;
}

/** Resolves with the first job event (or the current record) that `match` accepts. */
function nextEvent(g: Gateway, match: (e: JobEvent) => boolean): Promise<JobEvent> {
  return new Promise((resolve) => {
    const off = g.jobs.onEvent((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });
}
const stateOf = (id: string, ...states: string[]) => (e: JobEvent) => e.type === 'state' && e.job.id === id && states.includes(e.job.state);

const options = (name: string, steps: number, extra: Record<string, unknown> = {}) => ({
  dataset: setup.repo_id, policy_type: 'act', output_folder_name: name, policy_device: 'cpu', seed: 1, num_workers: 0, batch_size: 4,
  steps, eval_freq: 0, log_freq: 1, save_freq: 2, extra_args: setup.extra_args, ...extra,
});

async function post(g: Gateway, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${g.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every checkpoint folder is complete and `last` (if any) points at one of them. */
function assertConsistentCheckpoints(outputDir: string): string[] {
  const folder = join(outputDir, 'checkpoints');
  if (!existsSync(folder)) return [];
  const steps = readdirSync(folder).filter((d) => d !== 'last');
  for (const d of steps) {
    for (const f of ['pretrained_model/config.json', 'pretrained_model/model.safetensors', 'training_state/training_step.json']) {
      assert.ok(existsSync(join(folder, d, f)), `checkpoint ${d} is missing ${f}`);
    }
  }
  if (existsSync(join(folder, 'last'))) assert.ok(steps.includes(readlinkSync(join(folder, 'last'))), 'last points at a complete checkpoint');
  return steps;
}

async function infer(g: Gateway): Promise<number[][]> {
  const client = new WorkerClient({ endpoint: g.zmqEndpoint, codec: 'binary', timeoutMs: 60_000 });
  try {
    const reply = await client.request({ type: 'inference', framework: 'lerobot', data: { images: { top: image.tensor }, state: Tensor.of(new Float32Array(STATE)) } });
    return (reply.result as { action: Tensor }).action.toNested() as number[][];
  } finally {
    await client.close();
  }
}

test('the CLI trains to the end with live progress and LeRobot\'s own losses; the checkpoint is then served: actions are what LeRobot computes with it', async (t) => {
  const w = await worker(t);
  const g = await gateway(t, { lerobot: w.endpoint });

  // bad options: every bad field in one error
  const bad = await post(g, '/v1/frameworks/lerobot/train', { data: { policy_type: 'act', steps: 0, policy_device: 'gpu', batch_size: 'eight', extra_args: ['--output_dir=/etc'], colour: 'red' } });
  assert.equal(bad.status, 400);
  const message = (bad.body.error as { message: string }).message;
  for (const field of ['dataset', 'steps', 'policy_device', 'batch_size', 'extra_args[0]', 'colour']) assert.match(message, new RegExp(`(^|[ (;])${field.replace(/[[\]]/g, '\\$&')} `), `${field} listed in: ${message}`);
  assert.equal(g.jobs.list().length, 0, 'no job for refused options');

  const before = await infer(g);
  const lines: string[] = [];
  const drawn: string[] = [];
  const code = await runTrain(
    { url: g.httpUrl, framework: 'lerobot', options: options('cli-run', 8) },
    { out: (l) => lines.push(l), err: (l) => lines.push(l) },
    { isTTY: true, write: (s) => drawn.push(s) },
  );
  assert.equal(code, 0, lines.join('\n'));
  assert.ok(drawn.some((s) => /\] 8\/8 loss \d+\.\d{4}/.test(s)), `a live progress line: ${drawn.slice(-3).join(' | ')}`);
  const job = g.jobs.list()[0]!;
  assert.equal(job.state, 'succeeded');
  assert.equal(job.progress.step, 8);
  t.diagnostic(`CLI: ${lines.join(' / ')}`);

  // The losses reported are the ones LeRobot logged (log_freq 1: its log line per step, 3 decimals).
  const logged = new Map([...readFileSync(`${job.output_dir}.log`, 'utf8').matchAll(/step:(\d+) .*? loss:([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]));
  assert.equal(logged.size, 8, 'LeRobot logged every step');
  assert.ok(Math.abs(job.progress.loss! - logged.get(8)!) <= 0.0005, `final loss ${job.progress.loss} vs LeRobot's ${logged.get(8)}`);

  const steps = assertConsistentCheckpoints(job.output_dir!);
  assert.deepEqual(steps.sort(), ['000002', '000004', '000006', '000008']);
  const checkpoint = job.checkpoints.at(-1)!;
  assert.equal(checkpoint, join(job.output_dir!, 'checkpoints', '000008', 'pretrained_model'));

  // The loop closed: serve the checkpoint, and the next inference is LeRobot's own answer with it.
  const switched = await post(g, '/v1/frameworks/lerobot/command', { data: { command: 'load_policy', policy_path: checkpoint } });
  assert.equal(switched.status, 200, JSON.stringify(switched.body));
  const afterSwitch = await infer(g);
  const [expected] = (await referenceChunks([{ policy: checkpoint, observation: { state: STATE, task: '', seed: null, images: { 'observation.images.top': { file: image.file, shape: [SIZE, SIZE, 3] } } } }], scratch.dir)) as [number[][]];
  const diff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
  assert.ok(diff(afterSwitch, expected) <= 1e-5, `served checkpoint vs LeRobot: ${diff(afterSwitch, expected)}`);
  assert.ok(diff(afterSwitch, before) > 1e-3, `the actions changed with the trained policy (max change ${diff(afterSwitch, before)})`);
  t.diagnostic(`trained policy: max change of the chunk ${diff(afterSwitch, before).toExponential(2)}; vs LeRobot ${diff(afterSwitch, expected).toExponential(2)}`);

  // metrics: the last step and LeRobot's loss, the job states
  const text = await (await fetch(`${g.httpUrl}/metrics`)).text();
  assert.match(text, /^gateway_training_step\{framework="lerobot"\} 8$/m);
  assert.match(text, new RegExp(`^gateway_training_loss\\{framework="lerobot"\\} ${job.progress.loss}`, 'm'));
  assert.match(text, /^gateway_jobs\{state="succeeded"\} 1$/m);
  assert.match(text, /^gateway_jobs_finished_total\{framework="lerobot",state="succeeded"\} 1$/m);
});

test('a restarted gateway finds the job still running in the worker (SSE shows its progress), and cancels it: the run stops and leaves complete checkpoints only', async (t) => {
  const w = await worker(t);
  const first = await gateway(t, { lerobot: w.endpoint });
  const started = await post(first, '/v1/frameworks/lerobot/train', { data: options('restart-run', 10_000) });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const job = started.body.result as JobRecord;
  assert.equal(job.state, 'running');
  await nextEvent(first, (e) => e.type === 'checkpoint' && e.job_id === job.id);
  await first.close(500);

  const second = await gateway(t, { lerobot: w.endpoint });
  const adopted = second.jobs.list().find((j) => j.id === job.id) ?? ((await nextEvent(second, stateOf(job.id, 'running'))) as { job: JobRecord }).job;
  assert.equal(adopted.adopted, true);
  assert.equal(adopted.options.output_folder_name, 'restart-run');

  // live progress over HTTP: server-sent events
  const res = await fetch(`${second.httpUrl}/v1/jobs/${job.id}/events`);
  assert.equal(res.headers.get('content-type')?.split(';')[0], 'text/event-stream');
  const reader = res.body!.getReader();
  let text = '';
  while (!/event: progress\ndata: .*"loss":/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  const cancelled = nextEvent(second, stateOf(job.id, 'cancelled', 'failed', 'succeeded'));
  const cancel = await post(second, `/v1/jobs/${job.id}/cancel`);
  assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
  const end = (await cancelled) as { job: JobRecord };
  assert.equal(end.job.state, 'cancelled', end.job.error);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.match(text, /event: state\ndata: \{[^\n]*"state":"cancelled"/, 'the stream ends with the final state');
  const steps = assertConsistentCheckpoints(end.job.output_dir!);
  assert.ok(steps.length >= 1, 'the checkpoints written before the cancel are kept');
  assert.ok(end.job.progress.step! < 10_000);
});

test('a worker killed mid-job: the job fails, saying its worker stopped answering', async (t) => {
  const w = await worker(t);
  const g = await gateway(t, { lerobot: w.endpoint });
  const started = await post(g, '/v1/frameworks/lerobot/train', { data: options('killed-run', 10_000) });
  const job = started.body.result as JobRecord;
  await nextEvent(g, (e) => e.type === 'progress' && e.job_id === job.id);
  const failed = nextEvent(g, stateOf(job.id, 'failed', 'succeeded', 'cancelled'));
  process.kill(w.pid!, 'SIGKILL');
  const end = (await failed) as { job: JobRecord };
  assert.equal(end.job.state, 'failed');
  assert.match(end.job.error!, /worker of framework 'lerobot' stopped answering while the job ran/);
  t.diagnostic(end.job.error!);
});

test('LeRobot refusing to start (missing dataset, unknown policy type, out-of-range option): the job fails with LeRobot\'s own error line', async (t) => {
  const w = await worker(t);
  const g = await gateway(t, { lerobot: w.endpoint }, { maxPerDevice: 3 });
  const cases = [
    { name: 'missing-dataset', options: options('refused-dataset', 2, { dataset: 'local/no_such_dataset' }), line: /^huggingface_hub\.errors\.\w+: .*local\/no_such_dataset/ },
    { name: 'unknown-policy', options: options('refused-policy', 2, { policy_type: 'no_such_policy', extra_args: [] }), line: /^lerobot-train: error: argument --policy\.type: invalid choice: 'no_such_policy' \(choose from 'act', / },
    { name: 'out-of-range', options: options('refused-range', 2, { extra_args: [...setup.extra_args.filter((a) => !a.startsWith('--policy.n_action_steps=')), '--policy.n_action_steps=50'] }), line: /^error: `policy`: ValueError: The chunk size is the upper bound for the number of action steps per model invocation\. Got 50 for `n_action_steps` and 10 for `chunk_size`\./ },
  ];
  const started = await Promise.all(cases.map((c) => g.jobs.submit('lerobot', c.options)));
  const ends = await Promise.all(started.map((job) => (g.jobs.get(job.id).state === 'failed' ? { job: g.jobs.get(job.id) } : nextEvent(g, stateOf(job.id, 'failed', 'succeeded', 'cancelled'))) as Promise<{ job: JobRecord }>));
  for (const [i, c] of cases.entries()) {
    const job = ends[i]!.job;
    assert.equal(job.state, 'failed', c.name);
    assert.match(job.error!, c.line, c.name);
    assert.doesNotMatch(job.error!, /Traceback|File "/, `${c.name}: a line, not a stack`);
    assert.match(job.error!, /\(output: \S+\.log\)$/, `${c.name}: names the run's log`);
    t.diagnostic(`${c.name}: ${job.error}`);
  }
});
