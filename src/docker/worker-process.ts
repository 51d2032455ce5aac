// A framework worker started as a process inside a running container (docker exec), ready when the caller's
// readiness wait says so (the protocol's health request, over the ZMQ layer; this module does not speak it), and
// watched afterwards: alive, exit code, last log lines.
import { abortError, Deadline } from '../lib/abort.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DockerError } from './docker-error.js';
import type { DockerManager } from './docker-manager.js';

export interface WorkerProcessOptions {
  manager: DockerManager;
  /** A running container of ours (id or name). */
  container: string;
  /** The worker's argv, run as is (no shell interpretation of its arguments). */
  argv: readonly string[];
  /** The endpoint the gateway reaches the worker at (host side). */
  endpoint: string;
  env?: Readonly<Record<string, string>>;
  /** Resolves once the worker at `endpoint` is ready (e.g. WorkerPool.waitUntilReady); rejects on the signal. */
  waitReady: (endpoint: string, signal: AbortSignal) => Promise<void>;
  /** Longest wait until ready; default 30 s. */
  readyTimeoutMs?: number;
  /** How many output lines to keep; default 200. */
  keepLines?: number;
  log?: Logger;
  signal?: AbortSignal;
}

const PID_MARK = '__physical_ai_gateway_pid=';

export class WorkerProcess {
  readonly endpoint: string;
  readonly container: string;
  readonly exited: Promise<number>;
  #exitCode: number | undefined;
  #pid: number | undefined;
  readonly #lines: string[] = [];
  readonly #keep: number;
  readonly #manager: DockerManager;
  #stopping: Promise<number> | undefined;

  private constructor(manager: DockerManager, container: string, endpoint: string, exited: Promise<number>, keep: number) {
    this.#manager = manager;
    this.container = container;
    this.endpoint = endpoint;
    this.#keep = keep;
    this.exited = exited.then((code) => (this.#exitCode = code));
  }

  /**
   * Starts the worker and resolves once it answers health with ready=true. Rejects `exited_while_starting`
   * (with its last output lines) when it exits first, `not_ready` when the time runs out (the process is stopped).
   */
  static async start(opts: WorkerProcessOptions): Promise<WorkerProcess> {
    const { manager, container, argv, endpoint, env, readyTimeoutMs = 30_000, keepLines = 200, signal } = opts;
    const log = (opts.log ?? silentLogger).child({ component: 'docker.worker_process', container });
    const { waitReady } = opts;
    // `sh -c 'echo PID; exec "$@"'` tells us the process id inside the container (to stop it later) while the
    // worker's own arguments stay an argv: they are positional parameters, never parsed by the shell.
    const wrapped = ['sh', '-c', `echo ${PID_MARK}$$; exec "$@"`, 'physical-ai-worker', ...argv];
    const running = await manager.startExec(container, wrapped, env ? { env } : {});
    let pidSeen: () => void = () => undefined;
    const pidKnown = new Promise<void>((r) => (pidSeen = r));
    const exitedDone = running.exited;
    const proc = new WorkerProcess(manager, container, endpoint, exitedDone, keepLines);
    void (async () => {
      for await (const { line } of running.lines) {
        if (proc.#pid === undefined && line.startsWith(PID_MARK)) {
          proc.#pid = Number(line.slice(PID_MARK.length));
          pidSeen();
          continue;
        }
        proc.#lines.push(line);
        if (proc.#lines.length > proc.#keep) proc.#lines.shift();
      }
      pidSeen();
    })();
    await pidKnown;

    const ready = new Deadline(readyTimeoutMs, signal);
    const deadline = ready.signal;
    const t0 = performance.now();
    try {
      // Ready, exited first, or out of time: whichever happens first.
      const outcome = await Promise.race([waitReady(endpoint, deadline).then(() => 'ready' as const, () => 'aborted' as const), proc.exited.then(() => 'exited' as const)]);
      if (outcome === 'exited') {
        const lines = proc.lastLines(30);
        throw new DockerError('unavailable', 'exited_while_starting', `worker in ${container} exited with code ${proc.#exitCode} before it was ready; last output:\n${lines.join('\n')}`, { logLines: lines });
      }
      if (outcome === 'aborted') {
        if (signal?.aborted) throw abortError(signal, `start worker in ${container}`);
        throw new DockerError('unavailable', 'not_ready', `worker in ${container} not ready within ${readyTimeoutMs} ms`, { logLines: proc.lastLines(30) });
      }
    } catch (err) {
      await proc.stop().catch(() => undefined);
      throw err;
    } finally {
      ready.release(); // a readiness wait that lost the race stops here
    }
    log.info({ event: 'docker.worker_process_ready', endpoint, pid: proc.#pid, readyMs: Math.round(performance.now() - t0) });
    return proc;
  }

  get alive(): boolean {
    return this.#exitCode === undefined;
  }

  /** Exit code once it ended (the exec's code: 128+signal when killed by a signal). */
  get exitCode(): number | undefined {
    return this.#exitCode;
  }

  /** Process id inside the container. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** The last `n` lines of its stdout and stderr. */
  lastLines(n = 50): string[] {
    return this.#lines.slice(-n);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. Idempotent. */
  stop({ graceMs = 5_000 }: { graceMs?: number } = {}): Promise<number> {
    return (this.#stopping ??= (async () => {
      if (this.#exitCode !== undefined || this.#pid === undefined) return this.exited;
      const pid = String(this.#pid);
      await this.#manager.exec(this.container, ['kill', '-TERM', pid]).catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs)));
      try {
        if ((await Promise.race([this.exited, late])) === 'late') {
          await this.#manager.exec(this.container, ['kill', '-KILL', pid]).catch(() => undefined);
        }
      } finally {
        clearTimeout(timer);
      }
      return this.exited;
    })());
  }

  close(): Promise<void> {
    return this.stop().then(() => undefined);
  }
}
