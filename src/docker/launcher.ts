// Frameworks on demand: the router's FrameworkLauncher on top of the DockerManager. Starts a framework's
// container when a request needs it and says where its worker listens; whether the worker is ready is the
// router's pool's business (health over its own long-lived sockets), not this module's. Announces containers
// that end (with their last log lines when they crash), stops idle frameworks, and optionally keeps only one
// GPU framework running at a time.
import { abortError, Deadline, deferred, throwIfAborted, type Deferred } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { portIsFree } from '../lib/ports.js';
import { IdleHolds, type Release } from '../lib/idle-holds.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { FrameworkControl, FrameworkLauncher, Launch } from '../router/framework-launcher.js';
import type { ContainerStatsSnapshot, LaunchState, LaunchStatus, ManagedContainer } from './types.js';
import { DockerError, isDockerError } from './docker-error.js';
import { DockerManager, type ContainerEvent, type ResourceSample } from './docker-manager.js';
import { DEFAULT_READY_TIMEOUT_MS, containerNameFor, imageBuildHint, remoteEngineHost, usesGpu, validateFrameworkSpec, type FrameworkSpec } from './framework-spec.js';

export interface DockerLauncherOptions {
  manager: DockerManager;
  specs: readonly FrameworkSpec[];
  log?: Logger;
  /** Stop a framework once nothing has held it (requests, starts, jobs: hold()) for this long; 0 or absent: never. */
  idleStopMs?: number;
  /** Keep at most one GPU framework running: starting one stops the others first. */
  oneGpuFrameworkAtATime?: boolean;
  /** Stop the frameworks' containers on close(); default false (they keep running). */
  stopOnClose?: boolean;
  /** Log lines attached to the error of a container that crashed; default 30. */
  logTailLines?: number;
  /** Where containers() finds each container's last resource sample (the sampler, container-watch.ts). */
  stats?: { lastStats(container: string): ResourceSample | undefined };
}

export type LauncherEvent =
  | { type: 'starting'; framework: string }
  | { type: 'running'; framework: string; endpoints: string[]; startMs: number }
  | { type: 'start_failed'; framework: string; error: string }
  | { type: 'stopped'; framework: string; reason: 'idle' | 'switch' | 'request' | 'close' }
  | { type: 'exited'; framework: string; exitCode: number | undefined; expected: boolean; error?: string }
  | { type: 'oom'; framework: string }
  | { type: 'unhealthy'; framework: string };

/** A sample as GET /v1/containers shows it: ISO time, null for what is not known, no container id. */
function snapshotOf({ containerId: _containerId, time, cpuPercent, pids, ...counters }: ResourceSample): ContainerStatsSnapshot {
  return { time: time.toISOString(), cpuPercent: cpuPercent ?? null, ...counters, pids: pids ?? null };
}

/** Waits for `promise`, but rejects as soon as `signal` aborts (the work itself goes on). */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class DockerLauncher implements FrameworkLauncher, FrameworkControl {
  readonly #manager: DockerManager;
  readonly #specs = new Map<string, FrameworkSpec>();
  readonly #log: Logger;
  readonly #opts: DockerLauncherOptions;
  readonly #starting = new Map<string, Promise<Launch>>();
  /** Frameworks known running, with their launch; kept only while the events watcher runs (it clears them on die/stop). */
  readonly #running = new Map<string, Launch>();
  /** The `ended` promise of each running container we launched, by container id, settled by its die/stop/destroy event. */
  readonly #ends = new Map<string, { framework: string; end: Deferred<GatewayError> }>();
  /** Busy frameworks (requests in flight, starts, jobs) and the idle clock of the others. */
  readonly #holds: IdleHolds;
  /** Stops we asked for, so their die/stop events are not reported as crashes. */
  readonly #stopping = new Set<string>();
  readonly #events = new EventStream<LauncherEvent>();
  readonly #closeController = new AbortController();
  /** Container events already handled (own subscription and noteContainerEvent may both deliver one). */
  readonly #seenEvents = new Set<string>();
  #watching: Promise<unknown> | undefined;
  #watchAlive = false;
  #closing: Promise<void> | undefined;

  constructor(options: DockerLauncherOptions) {
    this.#opts = options;
    this.#manager = options.manager;
    for (const spec of options.specs) {
      const valid = validateFrameworkSpec(spec);
      if (valid.mode === 'service') throw new GatewayError('bad_request', `framework "${valid.name}" is mode 'service': the ServiceLauncher runs it`);
      if (this.#specs.has(valid.name)) throw new GatewayError('bad_request', `framework "${valid.name}" is specified twice`);
      this.#specs.set(valid.name, valid);
    }
    this.#log = (options.log ?? silentLogger).child({ component: 'docker.launcher' });
    this.#holds = new IdleHolds(options.idleStopMs ?? 0, (framework) => this.#idleStop(framework));
  }

  /** Lifecycle events: starting, running, stopped, exited (crash or stop), oom, unhealthy. */
  events(): AsyncIterable<LauncherEvent> {
    return this.#events;
  }

  onEvent(listener: (event: LauncherEvent) => void): () => void {
    return this.#events.on(listener);
  }

  frameworks(): string[] {
    return [...this.#specs.keys()];
  }

  #spec(framework: string): FrameworkSpec {
    const spec = this.#specs.get(framework);
    if (!spec) throw new GatewayError('unknown_framework', `unknown framework "${framework}"; configured: ${[...this.#specs.keys()].join(', ') || 'none'}`);
    return spec;
  }

  /**
   * Makes sure the framework's container runs (starting it if needed) and resolves with where its worker listens
   * and a promise of the container's end. It does not wait for the worker to be ready: the caller's pool does,
   * by health, and races that with `ended`. Concurrent calls share one start. The caller's signal bounds only its
   * own wait: a start that outlives it goes on (bounded by the spec's readyTimeoutMs).
   */
  async ensureRunning(framework: string, signal: AbortSignal): Promise<Launch> {
    const spec = this.#spec(framework);
    if (this.#closing) throw new GatewayError('unavailable', 'launcher is closed');
    throwIfAborted(signal, `start ${framework}`);
    const known = this.#running.get(framework);
    if (known && this.#watchAlive) {
      // Asked again when the pool found no ready worker: check the container is still there, since a die event
      // may still be on its way.
      const info = await this.#manager.inspect(containerNameFor(spec)).catch(() => undefined);
      if (info?.State.Running) return known;
      this.#running.delete(framework);
    }
    let start = this.#starting.get(framework);
    if (!start) {
      start = this.#start(spec).finally(() => this.#starting.delete(framework));
      this.#starting.set(framework, start);
      start.catch(() => undefined); // a caller that gave up must not leave an unhandled rejection
    }
    return raceSignal(start, signal, `start ${framework}`);
  }

  /**
   * Keeps the framework busy until the returned release (idempotent): it is stopped only once nothing has held it
   * for idleStopMs. The router holds it for each request (and each launch until a worker is ready), the job
   * manager while a job is queued or runs there; the launcher itself while it starts the container.
   */
  hold(framework: string): Release {
    if (this.#closing || !this.#specs.has(framework)) return () => undefined;
    return this.#holds.hold(framework);
  }

  #idleStop(framework: string): void {
    this.#stop(framework, 'idle').catch((err: unknown) => this.#log.warn({ event: 'docker.idle_stop_failed', framework, err }));
  }

  /** Stops a framework's container (kept for a fast restart); not running is not an error. */
  async stop(framework: string, signal?: AbortSignal): Promise<void> {
    this.#spec(framework);
    throwIfAborted(signal, `stop ${framework}`);
    await (signal ? raceSignal(this.#stop(framework, 'request'), signal, `stop ${framework}`) : this.#stop(framework, 'request'));
  }

  async #stop(framework: string, reason: 'idle' | 'switch' | 'request' | 'close'): Promise<void> {
    const spec = this.#spec(framework);
    this.#holds.disarm(framework);
    if (reason !== 'idle') this.#running.delete(framework);
    const name = containerNameFor(spec);
    const info = await this.#manager.inspect(name);
    // A request or a job that came while the container was inspected keeps it (the router still had it ready).
    if (reason === 'idle' && this.#holds.held(framework)) return this.#log.info({ event: 'docker.idle_stop_skipped', framework });
    this.#running.delete(framework);
    if (!info?.State.Running) return;
    if (reason === 'idle') this.#log.info({ event: 'docker.framework_idle_stop', framework, idleMs: this.#opts.idleStopMs });
    this.#stopping.add(framework);
    try {
      await this.#manager.stop(name, spec.stopTimeoutS === undefined ? {} : { timeoutS: spec.stopTimeoutS });
    } finally {
      this.#stopping.delete(framework);
    }
    this.#events.emit({ type: 'stopped', framework, reason });
  }

  /** Where each framework stands (one inspect per framework). */
  async status(): Promise<LaunchStatus[]> {
    return Promise.all(
      [...this.#specs.values()].map(async (spec) => {
        const container = containerNameFor(spec);
        const info = await this.#manager.inspect(container);
        let state: LaunchState = 'absent';
        if (info) state = info.State.Running ? 'running' : 'stopped';
        if (this.#starting.has(spec.name)) state = 'starting';
        const endpoint = info?.State.Running ? await this.#manager.endpointFor(spec).catch(() => undefined) : undefined;
        return { framework: spec.name, state, container, containerId: info?.Id, endpoint, image: spec.image };
      }),
    );
  }

  /** Every container labelled as ours: state, health, image, endpoint (ours to launch), memory limit, last stats. */
  async containers(): Promise<ManagedContainer[]> {
    const byName = new Map([...this.#specs.values()].map((s) => [containerNameFor(s), s]));
    const list = await this.#manager.listContainers();
    const rows = await Promise.all(
      list.map(async (c): Promise<ManagedContainer | undefined> => {
        const info = await this.#manager.inspect(c.id).catch(() => undefined);
        if (!info) return undefined; // removed meanwhile
        const spec = byName.get(c.name);
        const running = info.State.Running;
        const endpoint = spec && running ? await this.#manager.endpointFor(spec).catch(() => undefined) : undefined;
        const health = (info.State as { Health?: { Status?: string } }).Health?.Status;
        const memory = info.HostConfig.Memory ?? 0;
        const stats = running ? this.#opts.stats?.lastStats(c.name) : undefined;
        return {
          framework: c.framework ?? null,
          name: c.name,
          id: c.id,
          state: info.State.Status,
          health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : 'none',
          image: c.image,
          endpoint: endpoint ?? null,
          memoryLimitBytes: memory > 0 ? memory : null,
          startedAt: running ? info.State.StartedAt : null,
          exitCode: running ? null : info.State.ExitCode,
          oomKilled: info.State.OOMKilled,
          lastStats: stats ? snapshotOf(stats) : null,
        };
      }),
    );
    return rows.filter((r): r is ManagedContainer => r !== undefined);
  }

  /**
   * A lifecycle event of one of our containers seen elsewhere (the sampler's subscription): a die/stop/destroy/oom
   * of a framework's container forgets its readiness, so the next request starts it again. Idempotent per event.
   */
  noteContainerEvent(e: ContainerEvent): void {
    const key = `${e.type}:${e.containerId}:${e.time.getTime()}:${e.health ?? ''}`;
    if (this.#seenEvents.has(key)) return;
    this.#seenEvents.add(key);
    if (this.#seenEvents.size > 256) this.#seenEvents.delete(this.#seenEvents.values().next().value!);
    const spec = [...this.#specs.values()].find((s) => containerNameFor(s) === e.name);
    if (!spec || spec.name !== e.framework) return;
    const framework = spec.name;
    if (e.type === 'die' || e.type === 'stop' || e.type === 'destroy') {
      this.#running.delete(framework);
      if (e.type === 'die') void this.#reportExit(spec, e);
      else this.#settleEnd(e.containerId, new GatewayError('unavailable', `framework ${framework}: container ${e.name} ${e.type === 'stop' ? 'stopped' : 'was removed'}`));
    } else if (e.type === 'oom') {
      this.#running.delete(framework);
      this.#events.emit({ type: 'oom', framework });
    } else if (e.type === 'health' && e.health === 'unhealthy') {
      this.#events.emit({ type: 'unhealthy', framework });
    }
  }

  /** A container died: its `ended` promise settles and an `exited` event goes out, with the log tail when nobody asked for it. */
  async #reportExit(spec: FrameworkSpec, e: ContainerEvent): Promise<void> {
    const framework = spec.name;
    const expected = this.#stopping.has(framework);
    let error: string | undefined;
    if (!expected) {
      const lines = await this.#manager.logs(e.containerId, { tail: this.#opts.logTailLines ?? 30 }).catch(() => [] as string[]);
      error = `framework ${framework}: container ${e.name} exited with code ${e.exitCode ?? 'unknown'}` + (lines.length ? `; last log lines:\n${lines.join('\n')}` : ' (no log output)');
      this.#log.warn({ event: 'docker.framework_exited', framework, exitCode: e.exitCode });
      this.#settleEnd(e.containerId, new DockerError('unavailable', 'exited_while_starting', error, { logLines: lines }));
    } else {
      this.#settleEnd(e.containerId, new GatewayError('unavailable', `framework ${framework}: container ${e.name} was stopped`));
    }
    this.#events.emit({ type: 'exited', framework, exitCode: e.exitCode, expected, ...(error ? { error } : {}) });
  }

  #settleEnd(containerId: string, reason: GatewayError): void {
    const entry = this.#ends.get(containerId);
    if (!entry) return;
    this.#ends.delete(containerId);
    entry.end.resolve(reason);
  }

  /** The `ended` promise of a running container; settles soon when it is already gone (a die event we may have missed). */
  #endOf(spec: FrameworkSpec, containerId: string): Promise<GatewayError> {
    let entry = this.#ends.get(containerId);
    if (!entry) {
      entry = { framework: spec.name, end: deferred<GatewayError>() };
      this.#ends.set(containerId, entry);
      void this.#checkStillRunning(spec, containerId);
    }
    return entry.end.promise;
  }

  async #checkStillRunning(spec: FrameworkSpec, containerId: string): Promise<void> {
    const info = await this.#manager.inspect(containerId).catch(() => undefined);
    if (!info?.State.Running) {
      const lines = info ? await this.#manager.logs(containerId, { tail: this.#opts.logTailLines ?? 30 }).catch(() => [] as string[]) : [];
      const exit = info ? `exited with code ${info.State.ExitCode}${info.State.OOMKilled ? ' (out of memory)' : ''}` : 'was removed';
      this.#settleEnd(containerId, new DockerError('unavailable', 'exited_while_starting', `framework ${spec.name}: container ${containerNameFor(spec)} ${exit}` + (lines.length ? `; last log lines:\n${lines.join('\n')}` : ' (no log output)'), { logLines: lines }));
    }
  }

  async #start(spec: FrameworkSpec): Promise<Launch> {
    const t0 = performance.now();
    const framework = spec.name;
    const name = containerNameFor(spec);
    const readyMs = spec.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const deadline = new Deadline(readyMs, this.#closeController.signal);
    const signal = deadline.signal;
    // Starting is busy: an idle clock starts at the earliest when the container runs, and only if nobody (the
    // router, until its worker is ready) holds the framework then.
    const release = this.#holds.hold(framework);
    this.#events.emit({ type: 'starting', framework });
    try {
      const watchError = await this.#watchEvents();
      if (isDockerError(watchError, 'no_engine')) throw watchError;
      if (this.#opts.oneGpuFrameworkAtATime && usesGpu(spec)) await this.#stopOtherGpuFrameworks(framework);
      let info = await this.#manager.inspect(name);
      if (info && !DockerManager.isOurs(info)) {
        throw new DockerError('unavailable', 'not_ours', `framework ${framework}: the name ${name} belongs to a container that physical-ai-gateway did not create; it is left untouched (remove or rename it, or set containerName)`);
      }
      if (!info?.State.Running) {
        await this.#preflight(spec);
        let created = false;
        if (!info) {
          await this.#manager.createContainer(this.#manager.containerOptionsFor(spec));
          created = true;
        }
        try {
          await this.#manager.start(name);
        } catch (err) {
          if (created && isDockerError(err, 'gpu_unavailable')) await this.#manager.remove(name).catch(() => undefined);
          throw err;
        }
        info = await this.#manager.inspect(name);
      }
      if (!info) throw new DockerError('unavailable', 'exited_while_starting', `framework ${framework}: container ${name} was removed while starting`);
      const endpoints = [await this.#manager.endpointFor(spec)];
      throwIfAborted(signal, `start ${framework}`);
      const launch: Launch = { endpoints, ended: this.#endOf(spec, info.Id) };
      const startMs = Math.round(performance.now() - t0);
      if (this.#watchAlive) this.#running.set(framework, launch);
      this.#log.info({ event: 'docker.framework_running', framework, endpoints, startMs, containerId: info.Id });
      this.#events.emit({ type: 'running', framework, endpoints, startMs });
      return launch;
    } catch (err) {
      let error = signal.aborted && !isDockerError(err) ? this.#abortReason(spec, signal, readyMs) : err;
      if (isDockerError(error, 'no_engine')) {
        error = new DockerError('unavailable', 'no_engine', `framework ${framework} runs in Docker and cannot start: ${error.message}`, { cause: error });
      }
      this.#events.emit({ type: 'start_failed', framework, error: error instanceof Error ? error.message : String(error) });
      // no default engine: said once at start-up (see docker-support.ts); each request's failure is not news. A remote
      // engine is not checked at start-up, so its failure (ssh agent, host key, its engine down) is logged each time.
      if (isDockerError(error, 'no_engine') && !remoteEngineHost(spec.engine)) this.#log.debug({ event: 'docker.framework_start_failed', framework, err: error });
      else this.#log.warn({ event: 'docker.framework_start_failed', framework, err: error });
      throw error;
    } finally {
      deadline.dispose();
      release();
    }
  }

  #abortReason(spec: FrameworkSpec, signal: AbortSignal, readyMs: number): GatewayError {
    if (this.#closeController.signal.aborted) return new GatewayError('cancelled', `start ${spec.name}: launcher closed`);
    return new DockerError('unavailable', 'not_ready', `framework ${spec.name}: container not running within ${readyMs} ms (readyTimeoutMs)`, { cause: signal.reason });
  }

  /** Checks what would make a start fail in a confusing way: the image, the runtime, the port. */
  async #preflight(spec: FrameworkSpec): Promise<void> {
    if (!(await this.#manager.inspectImage(spec.image))) {
      throw new DockerError(
        'unavailable',
        'image_missing',
        `framework ${spec.name}: image ${spec.image} is not on this Docker engine; build it first: ` +
          imageBuildHint(spec.image, spec.name) +
          ` (or pull it: docker pull ${spec.image})`,
      );
    }
    if (spec.runtime !== undefined) {
      const runtimes = await this.#manager.runtimes();
      if (!runtimes.includes(spec.runtime)) {
        throw new DockerError(
          'unavailable',
          'runtime_unavailable',
          `framework ${spec.name}: it needs the "${spec.runtime}" runtime, which this Docker engine does not have (it has: ${runtimes.join(', ')}); install the NVIDIA container toolkit`,
        );
      }
    }
    if (spec.networkMode === 'host' && spec.port !== undefined && !remoteEngineHost(spec.engine) && !(await portIsFree('127.0.0.1', spec.port))) {
      throw new DockerError(
        'unavailable',
        'port_in_use',
        `framework ${spec.name}: port ${spec.port} on 127.0.0.1 is already in use by another process; stop it or give the framework another port`,
      );
    }
  }

  async #stopOtherGpuFrameworks(framework: string): Promise<void> {
    const others = [...this.#specs.values()].filter((s) => s.name !== framework && usesGpu(s));
    for (const other of others) {
      const info = await this.#manager.inspect(containerNameFor(other));
      if (info?.State.Running && DockerManager.isOurs(info)) {
        this.#log.info({ event: 'docker.framework_switch', stopping: other.name, starting: framework });
        await this.#stop(other.name, 'switch');
      }
    }
  }

  /** Subscribes once to our containers' events; they clear readiness on die/stop and are re-emitted. Resolves with the failure, if any. */
  #watchEvents(): Promise<unknown> {
    return (this.#watching ??= (async () => {
      try {
        const events = await this.#manager.events({ signal: this.#closeController.signal });
        this.#watchAlive = true;
        void this.#consume(events);
        return undefined;
      } catch (err) {
        this.#watching = undefined; // try again on the next start
        if (isDockerError(err, 'no_engine')) this.#log.debug({ event: 'docker.events_unavailable', err });
        else this.#log.warn({ event: 'docker.events_unavailable', err });
        return err;
      }
    })());
  }

  async #consume(events: AsyncIterable<ContainerEvent>): Promise<void> {
    try {
      for await (const e of events) this.noteContainerEvent(e);
    } catch (err) {
      this.#log.warn({ event: 'docker.events_ended', err });
    } finally {
      this.#watchAlive = false;
      this.#watching = undefined;
      this.#running.clear();
    }
  }

  /** Stops timers and the events stream; stops containers only with `stopOnClose`. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#holds.close();
      this.#closeController.abort(new GatewayError('cancelled', 'launcher closed'));
      await Promise.allSettled([...this.#starting.values()]);
      for (const id of [...this.#ends.keys()]) this.#settleEnd(id, new GatewayError('cancelled', 'launcher closed'));
      if (this.#opts.stopOnClose) {
        await Promise.allSettled([...this.#specs.keys()].map((f) => this.#stop(f, 'close')));
      }
      this.#events.close();
    })());
  }
}
