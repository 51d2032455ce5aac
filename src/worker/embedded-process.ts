// Runs the demo worker (src/worker/main.ts) as a child process, so the gateway crosses a real ZMQ hop exactly
// as it does to a framework container. The child binds an ipc:// socket in a private temp dir (no port to
// collide with a real LeRobot worker on 5555, reachable only from this machine). A child that dies is
// restarted with backoff on the same endpoint until close().
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger, type LogLevel } from '../lib/log.js';
import type { WorkerReadyMessage } from './main.js';
import { RUNTIME_NODE_FLAGS } from '../lib/node-flags.js';

export interface EmbeddedWorkerOptions {
  /** Where the worker binds; default ipc://<temp dir>/demo.sock. */
  endpoint?: string;
  framework?: string;
  delayMs?: number;
  /** How long the child may take to report ready, ms. */
  startTimeoutMs?: number;
  /** Log level of the child (its JSON lines go to this process's stderr). */
  logLevel?: LogLevel;
  log?: Logger;
}

export interface EmbeddedWorker {
  readonly endpoint: string;
  /** Pid of the current child. */
  readonly pid: number | undefined;
  /** Times the child was restarted after dying. */
  readonly restarts: number;
  close(): Promise<void>;
}

/** The worker entry next to this file: main.ts under tsx, main.js when built. */
function workerEntry(): { path: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  return { path: join(self, '..', ts ? 'main.ts' : 'main.js'), execArgv: [...RUNTIME_NODE_FLAGS, ...(ts ? ['--import', 'tsx'] : [])] };
}

function spawnChild(endpoint: string, opts: EmbeddedWorkerOptions): ChildProcess {
  const { path, execArgv } = workerEntry();
  const args = ['--endpoint', endpoint, '--framework', opts.framework ?? 'demo', '--delay-ms', String(opts.delayMs ?? 0), '--log-level', opts.logLevel ?? 'warn'];
  return fork(path, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function waitReady(child: ChildProcess, timeoutMs: number): Promise<WorkerReadyMessage> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error, msg?: WorkerReadyMessage) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(msg!);
    };
    const onMessage = (msg: unknown) => {
      if (msg && typeof msg === 'object' && (msg as WorkerReadyMessage).type === 'ready') done(undefined, msg as WorkerReadyMessage);
    };
    const onExit = (code: number | null, signal: string | null) => done(new GatewayError('unavailable', `demo worker exited before it was ready (code ${code}, signal ${signal})`));
    const onError = (err: Error) => done(new GatewayError('unavailable', `cannot start the demo worker: ${err.message}`, { cause: err }));
    const timer = setTimeout(() => done(new GatewayError('timeout', `demo worker not ready after ${timeoutMs} ms`)), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts the demo worker child and resolves once it is bound and serving. */
export async function startEmbeddedWorker(opts: EmbeddedWorkerOptions = {}): Promise<EmbeddedWorker> {
  const log = (opts.log ?? silentLogger).child({ component: 'worker.embedded' });
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  let dir: string | undefined;
  let endpoint = opts.endpoint;
  if (!endpoint) {
    dir = await mkdtemp(join(tmpdir(), 'paig-'));
    endpoint = `ipc://${join(dir, 'demo.sock')}`;
  }
  let child: ChildProcess = spawnChild(endpoint, opts);
  let closing: Promise<void> | undefined;
  let restarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  try {
    const ready = await waitReady(child, startTimeoutMs);
    endpoint = ready.endpoint;
  } catch (err) {
    await stopChild(child, 1_000);
    if (dir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  log.info({ event: 'embedded_worker.ready', endpoint, pid: child.pid });

  const supervise = (c: ChildProcess) => {
    c.once('exit', (code, signal) => {
      if (closing) return;
      const delayMs = Math.min(5_000, 200 * 2 ** Math.min(restarts, 5));
      log.warn({ event: 'embedded_worker.exited', code, signal, restartInMs: delayMs });
      restartTimer = setTimeout(() => {
        if (closing) return;
        restarts++;
        child = spawnChild(endpoint!, opts);
        supervise(child);
        waitReady(child, startTimeoutMs).then(
          () => log.info({ event: 'embedded_worker.restarted', pid: child.pid, restarts }),
          (err: unknown) => log.error({ event: 'embedded_worker.restart_failed', err }),
        );
      }, delayMs);
      restartTimer.unref();
    });
  };
  supervise(child);

  return {
    endpoint,
    get pid() {
      return child.pid;
    },
    get restarts() {
      return restarts;
    },
    close() {
      return (closing ??= (async () => {
        clearTimeout(restartTimer);
        await stopChild(child, 3_000);
        if (dir) await rm(dir, { recursive: true, force: true });
        log.info({ event: 'embedded_worker.closed' });
      })());
    },
  };
}
