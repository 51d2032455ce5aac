// Inference latency while a training job runs in the same worker, against the same worker idle. A real LeRobot
// worker (docker/lerobot/serve_policy.py, .venv-lerobot, one torch thread) serves a tiny ACT (32×32 camera, state 6)
// and trains another with LeRobot's own loop (train_job.py) on the test dataset (test/jobs/training_fixture.py);
// inference goes through the gateway's ZMQ door. Phases, each `--seconds` of sequential inferences (long enough to
// span many training steps), repeated `--rounds` times: idle → training, progress by long poll (jobs.waitMs 10 s) → idle → training, polling every 500 ms.
// Prints median and p90 per kind of phase (rounds pooled), the ratio of each to the idle median, and the training
// steps per second LeRobot reported during the training phases.
//
//   nice node --import tsx bench/training-load.ts [--seconds 20] [--rounds 2]
//
// Everything on 127.0.0.1; every process it starts is stopped, every folder it makes is removed.
import { execFile } from 'node:child_process';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { buildGateway } from '../src/build-gateway.js';
import { parseConfig } from '../src/config.js';
import type { JobEvent } from '../src/jobs/job-manager.js';
import { Tensor } from '../src/protocol/tensor.js';
import { WorkerClient } from '../src/zmq/worker-client.js';
import { ensureLerobot, LEROBOT_PYTHON, startLerobotWorker, tempDir } from './lib/lerobot-env.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, rounds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const FIXTURE = fileURLToPath(new URL('../test/jobs/training_fixture.py', import.meta.url));
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

console.error(await ensureLerobot());
const scratch = tempDir();
const { stdout } = await promisify(execFile)(LEROBOT_PYTHON, [FIXTURE, 'setup', scratch.dir], { env: { ...process.env, HF_HUB_OFFLINE: '1', OMP_NUM_THREADS: '1' }, maxBuffer: 16 << 20 });
const setup = JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { hf_lerobot_home: string; repo_id: string; policy: string; extra_args: string[] };
const worker = await startLerobotWorker({ policyPath: setup.policy, env: { HF_LEROBOT_HOME: setup.hf_lerobot_home, LEROBOT_OUTPUT_ROOT: join(scratch.dir, 'outputs') } });
const data = { images: { top: new Tensor('uint8', [32, 32, 3], new Uint8Array(32 * 32 * 3).map((_, i) => (i * 37) % 251)) }, state: Tensor.of(new Float32Array([0.3, -0.1, 0.5, 0.2, -0.4, 0.1])) };
const rows: Array<{ phase: string; times: number[]; steps?: number; seconds?: number }> = [];
const loadBefore = loadavg();

async function phase(name: string, jobs: { waitMs: number; pollIntervalMs: number }, train: boolean): Promise<void> {
  const config = parseConfig({ healthIntervalMs: 1_000, jobs, frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 60_000, training: true } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const gateway = await buildGateway(config);
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 60_000 });
  try {
    await gateway.router.registry.resolve('lerobot').pool.whenReady(AbortSignal.timeout(120_000));
    let jobId: string | undefined;
    if (train) {
      const firstStep = new Promise<void>((resolve) => gateway.jobs.onEvent((e: JobEvent) => e.type === 'progress' && resolve()));
      const job = await gateway.jobs.submit('lerobot', {
        dataset: setup.repo_id, policy_type: 'act', output_folder_name: `bench-${Date.now()}`, policy_device: 'cpu', seed: 1, num_workers: 0, batch_size: 4,
        steps: 1_000_000, eval_freq: 0, log_freq: 100, save_freq: 1_000_000, extra_args: setup.extra_args,
      });
      jobId = job.id;
      await firstStep; // LeRobot's loop is running
    }
    const stepAt = () => (jobId ? (gateway.jobs.get(jobId).progress.step ?? 0) : 0);
    const firstStepNo = stepAt();
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
      const start = performance.now();
      await client.request({ type: 'inference', framework: 'lerobot', data });
      if (i >= 3) times.push(performance.now() - start);
    }
    rows.push({ phase: name, times, ...(train ? { steps: stepAt() - firstStepNo, seconds: (performance.now() - t0) / 1000 } : {}) });
    if (jobId) {
      const ended = new Promise<void>((resolve) => gateway.jobs.onEvent((e) => e.type === 'state' && e.job.id === jobId && e.job.state !== 'running' && resolve()));
      await gateway.jobs.cancel(jobId);
      await ended;
    }
  } finally {
    await client.close();
    await gateway.close(0);
  }
}

try {
  for (let r = 0; r < rounds; r++) {
    await phase('idle', { waitMs: 10_000, pollIntervalMs: 500 }, false);
    await phase('training, progress by long poll (waitMs 10 s)', { waitMs: 10_000, pollIntervalMs: 500 }, true);
    await phase('idle', { waitMs: 0, pollIntervalMs: 500 }, false);
    await phase('training, progress by polling every 500 ms', { waitMs: 0, pollIntervalMs: 500 }, true);
  }
  const kinds = [...new Set(rows.map((r) => r.phase))];
  const pooled = (kind: string) => rows.filter((r) => r.phase === kind);
  const idle = quantile(pooled('idle').flatMap((r) => r.times), 0.5);
  console.log(`\ninference through the gateway (ZMQ door, tiny ACT, one torch thread) while LeRobot trains in the same worker; ${seconds} s per phase, ${rounds} rounds`);
  console.log(`machine: ${cpus()[0]?.model ?? '?'} × ${cpus().length}, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadavg().map((l) => l.toFixed(2)).join(' ')} after, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log('| phase | samples | median ms | p90 ms | median / idle median | training steps/s |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const kind of kinds) {
    const rs = pooled(kind);
    const xs = rs.flatMap((r) => r.times);
    const med = quantile(xs, 0.5);
    const train = rs[0]!.steps !== undefined ? (rs.reduce((n, r) => n + r.steps!, 0) / rs.reduce((n, r) => n + r.seconds!, 0)).toFixed(1) : '–';
    console.log(`| ${kind} | ${xs.length} | ${med.toFixed(1)} | ${quantile(xs, 0.9).toFixed(1)} | ${(med / idle).toFixed(2)} | ${train} |`);
  }
} finally {
  await worker.close();
  scratch.remove();
}
