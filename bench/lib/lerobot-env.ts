// The real LeRobot environment for test/frameworks/lerobot.test.ts and bench/real-act.ts (kept in bench/lib: bench never imports test/): .venv-lerobot set up
// by scripts/ensure-lerobot.sh (lerobot + torch from PyPI), policies built and saved by lerobot_fixture.py, and
// the project's LeRobot worker (docker/lerobot/serve_policy.py) started as a host process on that venv.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { collectOutput, type ChildOutput } from './child-output.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('../../test/frameworks/', import.meta.url));
export const LEROBOT_PYTHON = join(ROOT, '.venv-lerobot/bin/python');
const FIXTURE = join(HERE, 'lerobot_fixture.py');
const SERVE_POLICY = join(ROOT, 'docker/lerobot/serve_policy.py');
// One torch thread: on 2 shared cores, torch's default of one OpenMP thread per core spin-waits against the other
// processes (measured here: ACT inference 1.2-2 s with 2 threads under load, 0.13 s with 1).
const OFFLINE = { HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' };

/** Runs scripts/ensure-lerobot.sh (idempotent; minutes on a fresh machine). Rejects with its output when it fails. */
export async function ensureLerobot(): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', [join(ROOT, 'scripts/ensure-lerobot.sh')], { maxBuffer: 16 << 20, timeout: 20 * 60_000 });
    return `${stdout}${stderr}`.trim();
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`scripts/ensure-lerobot.sh failed: the LeRobot tests need it\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

async function fixture(args: string[]): Promise<unknown> {
  const { stdout } = await run(LEROBOT_PYTHON, [FIXTURE, ...args], { env: { ...process.env, ...OFFLINE }, maxBuffer: 16 << 20, timeout: 5 * 60_000 });
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`lerobot_fixture.py ${args[0]} printed no JSON:\n${stdout}`);
  return JSON.parse(line);
}

export interface BuiltPolicies {
  dir: string;
  act: string;
  diffusion: string;
  probe: string;
  remove(): void;
}

/** Builds and saves the ACT, Diffusion and probe policies (seeded weights, synthetic stats) in a temp folder. */
export async function buildPolicies(imageSize = 96): Promise<BuiltPolicies> {
  const dir = mkdtempSync(join(tmpdir(), 'paig-lerobot-'));
  try {
    await fixture(['build', dir, '--image-size', String(imageSize)]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, act: join(dir, 'act'), diffusion: join(dir, 'diffusion'), probe: join(dir, 'probe'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ReferenceObservation {
  state: number[];
  task: string;
  seed: number | null;
  /** policy image key → raw uint8 H×W×3 file */
  images: Record<string, { file: string; shape: [number, number, number] }>;
}

/** What LeRobot itself returns for each (policy folder, observation): n_action_steps rows of select_action from reset. */
export async function referenceChunks(jobs: { policy: string; observation: ReferenceObservation }[], dir: string): Promise<number[][][]> {
  const path = join(dir, `jobs-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path, JSON.stringify(jobs));
  return ((await fixture(['reference', path])) as { chunks: number[][][] }).chunks;
}

export interface LerobotWorker {
  readonly endpoint: string;
  /** The worker process (tests kill it to see a job fail). */
  readonly pid: number | undefined;
  readonly output: ChildOutput;
  readonly exitCode: number | null;
  close(): Promise<void>;
}

export interface LerobotWorkerOptions {
  policyPath: string;
  /** LEROBOT_CAMERAS */
  cameras?: string;
  /** LEROBOT_SEED */
  seed?: number;
  /** LEROBOT_PLUGINS (modules on PYTHONPATH; test/frameworks is on it) */
  plugins?: string;
  /** More environment (training: HF_LEROBOT_HOME, LEROBOT_OUTPUT_ROOT). */
  env?: Record<string, string>;
  /** Endpoint to bind (default tcp://127.0.0.1:*). */
  endpoint?: string;
}

/**
 * Starts `.venv-lerobot/bin/python docker/lerobot/serve_policy.py` (POLICY_DEVICE=cpu, HF_HUB_OFFLINE=1) on
 * tcp://127.0.0.1:* and resolves once it prints its listening line (it is not ready until the policy is loaded).
 */
export async function startLerobotWorker(o: LerobotWorkerOptions): Promise<LerobotWorker> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...OFFLINE,
    POLICY_PATH: o.policyPath,
    POLICY_DEVICE: 'cpu',
    PYTHONUNBUFFERED: '1',
    PYTHONPATH: [join(ROOT, 'docker/worker-sdk'), HERE].join(':'),
    WORKER_LOG_LEVEL: 'WARNING',
  };
  if (o.cameras !== undefined) env.LEROBOT_CAMERAS = o.cameras;
  if (o.seed !== undefined) env.LEROBOT_SEED = String(o.seed);
  if (o.plugins !== undefined) env.LEROBOT_PLUGINS = o.plugins;
  Object.assign(env, o.env);
  const child = spawn(LEROBOT_PYTHON, [SERVE_POLICY, '--endpoint', o.endpoint ?? 'tcp://127.0.0.1:*'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await output.waitFor(/"event": "worker.listening"/, 60_000, 'the LeRobot worker listening');
  } catch (err) {
    await close();
    throw err;
  }
  const endpoint = /"endpoint": "([^"]+)"/.exec(output.stdout)![1]!;
  return {
    endpoint,
    pid: child.pid,
    output,
    get exitCode() {
      return child.exitCode;
    },
    close,
  };
}

/** A temp folder removed by `remove()`. */
export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'paig-lerobot-obs-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
