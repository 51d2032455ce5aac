// Test helpers for the Python worker SDK (docker/worker-sdk): start `python3 -m physical_ai_worker` as a real
// child process and wait until it listens; free tcp endpoints and short-lived ipc endpoints.
//
// Stable API (other tests use it):
//   spawnPythonWorker(options?) → Promise<PythonWorker>
//   freeTcpEndpoint() → Promise<'tcp://127.0.0.1:<free port>'>
//   ipcEndpoint(t?) → 'ipc://<tmpdir>/w-<n>.sock' (dir removed after the test, or at process exit)
//   PYTHON, SDK_DIR
//
// @example
//   await using worker = await spawnPythonWorker({ endpoint: ipcEndpoint(t), delayMs: 20 });
//   // ... talk to worker.endpoint ...
import { spawn, type ChildProcess } from 'node:child_process';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './endpoints.js';

export { ipcEndpoint } from './endpoints.js';

/** Debian's Python with python3-zmq, python3-msgpack and python3-numpy (the `python3` on PATH may lack them). */
export const PYTHON = '/usr/bin/python3';
/** The folder that holds the `physical_ai_worker` package (put on PYTHONPATH). */
export const SDK_DIR = fileURLToPath(new URL('../../docker/worker-sdk/', import.meta.url));

export type WorkerBehaviour = 'normal' | 'silent' | 'crash';

export interface PythonWorkerOptions {
  /**
   * The interpreter. Default `PYTHON` (Debian's, with the SDK's source folder on PYTHONPATH: what the offline worker
   * image runs). Any other interpreter runs the SDK installed in its environment (e.g. the pip-installed .venv from
   * scripts/ensure-python-env.sh, see test/python-sdk/venv.ts): the source folder is then not put on PYTHONPATH.
   */
  python?: string;
  /** Bind address. Default `tcp://127.0.0.1:*`: a free port chosen by the worker, read back into `endpoint`. */
  endpoint?: string;
  /** Framework name reported by health. Default `demo`. */
  framework?: string;
  /** Sleep before each inference answer (emulates compute). Default 0. */
  delayMs?: number;
  /** `silent`: inference requests never get an answer (health still does); `crash`: the process exits(1) on inference. */
  behaviour?: WorkerBehaviour;
  /** Health says ready=false (and inference gets `unavailable`) for this long after start. */
  readyAfterMs?: number;
  /** Requests served at once; >1 runs handlers in a thread pool. Default 1. */
  capacity?: number;
  /** Extra handlers: message type → `module:function`, e.g. `{ 'debug.views': 'zero_copy_probe:views' }`. */
  handlers?: Record<string, string>;
  /** Extra folders for PYTHONPATH (modules named by `handlers`). */
  pythonPath?: string[];
  /** More command line arguments (see `python3 -m physical_ai_worker --help`). */
  extraArgs?: string[];
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** How long to wait for the listening line. Default 20 s. */
  startTimeoutMs?: number;
}

export interface PythonWorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PythonWorker extends AsyncDisposable {
  /** The bound endpoint (a `*` port resolved). */
  readonly endpoint: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<PythonWorkerExit>;
  /** Everything the worker wrote to stderr so far (its JSON log lines). */
  stderr(): string;

  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGSTOP/SIGCONT resolve at once). */
  kill(signal?: NodeJS.Signals): Promise<PythonWorkerExit | undefined>;
  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. Idempotent. */
  close(): Promise<PythonWorkerExit>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Safety net: never leave a worker behind when a test process ends without closing it.
  process.once('exit', () => {
    for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

function buildArgs(o: PythonWorkerOptions): string[] {
  const args = ['-m', 'physical_ai_worker', '--endpoint', o.endpoint ?? 'tcp://127.0.0.1:*', '--framework', o.framework ?? 'demo', '--policy', 'demo'];
  if (o.delayMs !== undefined) args.push('--delay-ms', String(o.delayMs));
  if (o.readyAfterMs !== undefined) args.push('--ready-after-ms', String(o.readyAfterMs));
  if (o.behaviour !== undefined) args.push('--behaviour', o.behaviour);
  if (o.capacity !== undefined) args.push('--capacity', String(o.capacity));
  for (const [type, target] of Object.entries(o.handlers ?? {})) args.push('--handler', `${type}=${target}`);
  args.push(...(o.extraArgs ?? []));
  return args;
}

/** Starts `<python> -m physical_ai_worker ...` (default /usr/bin/python3) and resolves once it prints its listening line. */
export async function spawnPythonWorker(options: PythonWorkerOptions = {}): Promise<PythonWorker> {
  installExitHook();
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const python = options.python ?? PYTHON;
  const sourcePath = python === PYTHON ? [SDK_DIR] : [];
  const child = spawn(python, buildArgs(options), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...options.env,
      PYTHONPATH: [...sourcePath, ...(options.pythonPath ?? [])].join(delimiter),
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
    },
  });
  live.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<PythonWorkerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  // The stream must keep flowing after the listening line, or a chatty worker would block on a full pipe.
  let stdout = '';
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: string) => {
      stdout += chunk;
      let nl: number;
      while ((nl = stdout.indexOf('\n')) >= 0) {
        const line = stdout.slice(0, nl);
        stdout = stdout.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { event?: string; endpoint?: string };
          if (msg.event === 'worker.listening' && typeof msg.endpoint === 'string') resolve(msg.endpoint);
        } catch {
          // not a JSON line: ignore
        }
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.once('error', reject);
    void exited.then(({ code, signal }) => reject(new Error(`python worker exited before listening (code ${code}, signal ${signal})`)));
  });

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`python worker did not listen within ${startTimeoutMs} ms`)), startTimeoutMs);
  });
  let endpoint: string;
  try {
    endpoint = await Promise.race([listening, deadline]);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    throw new Error(`${(err as Error).message}; ${python} ${buildArgs(options).join(' ')}; stderr:\n${stderr}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }

  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<PythonWorkerExit | undefined> => {
    if (running()) child.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return undefined;
    return exited;
  };
  let closing: Promise<PythonWorkerExit> | undefined;
  const close = (): Promise<PythonWorkerExit> =>
    (closing ??= (async () => {
      if (running()) {
        child.kill('SIGCONT'); // a stopped process would not act on SIGTERM
        child.kill('SIGTERM');
      }
      let killTimer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          exited,
          new Promise<PythonWorkerExit>((resolve) => {
            killTimer = setTimeout(() => {
              if (running()) child.kill('SIGKILL');
              resolve(exited);
            }, 3_000);
          }),
        ]);
      } finally {
        clearTimeout(killTimer);
      }
    })());
  return {
    endpoint,
    process: child,
    pid: child.pid!,
    exited,
    stderr: () => stderr,
    kill,
    close,
    [Symbol.asyncDispose]: async () => {
      await close();
    },
  };
}

/** `tcp://127.0.0.1:<port>` with a port that was free a moment ago (the OS may reuse it; bind soon). */
export async function freeTcpEndpoint(): Promise<string> {
  return `tcp://127.0.0.1:${await freePort()}`;
}

