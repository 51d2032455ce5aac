// Frameworks as Swarm services behind the router's FrameworkLauncher: deploys a framework's service when a request
// needs it, and keeps announcing its workers (one per running task, with host and task) as the engine's events say
// tasks start, die, are replaced, scaled or rolled. The pool connects, health-checks and drains; nothing here knows
// ZeroMQ. Tasks on other nodes are not in this engine's container events: while a task is on its way (desired running,
// not yet started) the tasks are listed again every second, and a slow re-list (`resyncMs`) catches the rest.
import { abortError, deferred, throwIfAborted, type Deferred } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { IdleHolds, type Release } from '../lib/idle-holds.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { FrameworkControl, FrameworkLauncher, Launch, LaunchWorker } from '../router/framework-launcher.js';
import type { DockerManager } from './docker-manager.js';
import { DEFAULT_STOP_TIMEOUT_S, serviceNameFor, validateFrameworkSpec, type FrameworkSpec } from './framework-spec.js';
import { SwarmServices, type DeployOutcome, type ServiceTask } from './swarm-services.js';

export interface ServiceLauncherOptions {
  manager: DockerManager;
  specs: readonly FrameworkSpec[];
  log?: Logger;
  /** Re-list the tasks this often besides the events (tasks on other nodes); 0 disables. Default 10 s. */
  resyncMs?: number;
  /** Remove the services on close(); default false (they keep running). */
  stopOnClose?: boolean;
  /** Scale a framework's service to 0 once nothing has held it (requests, starts, jobs: hold()) for this long; 0 or absent: never. */
  idleStopMs?: number;
}

/** How soon the tasks are listed again while one is on its way (pending, assigned, preparing on any node). */
const CONVERGING_RELIST_MS = 1_000;

export type ServiceLauncherEvent =
  | { type: 'deployed'; framework: string; outcome: DeployOutcome }
  | { type: 'workers'; framework: string; workers: LaunchWorker[]; drainMs: number }
  | { type: 'stopped'; framework: string; reason: 'request' | 'idle' | 'close' }
  | { type: 'exited'; framework: string; expected: boolean; error?: string };

/** Tasks whose worker the pool should use: desired running, container started (healthy or still starting). */
function isServing(t: ServiceTask): boolean {
  return t.desiredState === 'running' && (t.state === 'running' || t.state === 'starting');
}

export class ServiceLauncher implements FrameworkLauncher, FrameworkControl {
  readonly #services: SwarmServices;
  readonly #specs = new Map<string, FrameworkSpec>();
  readonly #log: Logger;
  readonly #opts: ServiceLauncherOptions;
  readonly #events = new EventStream<ServiceLauncherEvent>();
  readonly #close = new AbortController();
  /** The workers last announced per framework (a launched one), and the end of its service. */
  readonly #active = new Map<string, { workers: LaunchWorker[]; key: string; ended: Deferred<GatewayError>; lastErrors: string[] }>();
  readonly #waiters = new Set<() => void>();
  readonly #reconciling = new Map<string, { run: Promise<void>; again: boolean }>();
  /** Busy frameworks (requests in flight, starts, jobs) and the idle clock of the others. */
  readonly #holds: IdleHolds;
  #watching: Promise<void> | undefined;
  #resync: NodeJS.Timeout | undefined;
  /** Per framework: the next re-list while a task is on its way. */
  readonly #relist = new Map<string, NodeJS.Timeout>();
  #closing: Promise<void> | undefined;

  constructor(options: ServiceLauncherOptions) {
    this.#opts = options;
    for (const spec of options.specs) {
      const valid = validateFrameworkSpec(spec);
      if (valid.mode !== 'service') throw new GatewayError('bad_request', `framework "${valid.name}" is not mode 'service'`);
      this.#specs.set(valid.name, valid);
    }
    this.#log = (options.log ?? silentLogger).child({ component: 'docker.services' });
    this.#services = new SwarmServices(options.manager, { log: options.log ?? silentLogger });
    this.#holds = new IdleHolds(options.idleStopMs ?? 0, (framework) => this.#idleStop(framework));
  }

  get services(): SwarmServices {
    return this.#services;
  }

  frameworks(): string[] {
    return [...this.#specs.keys()];
  }

  spec(framework: string): FrameworkSpec {
    const spec = this.#specs.get(framework);
    if (!spec) throw new GatewayError('unknown_framework', `unknown framework "${framework}"; configured: ${[...this.#specs.keys()].join(', ') || 'none'}`);
    return spec;
  }

  onEvent(listener: (event: ServiceLauncherEvent) => void): () => void {
    return this.#events.on(listener);
  }

  events(): AsyncIterable<ServiceLauncherEvent> {
    return this.#events;
  }

  /**
   * Deploys the framework's service (created, or rolled/scaled to its spec) and resolves once at least one task's
   * container runs, with every such task's endpoint. Later changes come as `workers` events.
   */
  async ensureRunning(framework: string, signal: AbortSignal): Promise<Launch> {
    const spec = this.spec(framework);
    if (this.#closing) throw new GatewayError('unavailable', 'launcher is closed');
    throwIfAborted(signal, `start ${framework}`);
    // Deploying is busy: the idle clock starts at the earliest when a task runs, if nobody (the router, until a
    // worker is ready) holds the framework then.
    const release = this.#holds.hold(framework);
    try {
      return await this.#ensureRunning(spec, signal);
    } finally {
      release();
    }
  }

  async #ensureRunning(spec: FrameworkSpec, signal: AbortSignal): Promise<Launch> {
    const framework = spec.name;
    await this.#watch();
    const outcome = await this.#services.deploy(spec, signal);
    if (outcome !== 'unchanged') this.#events.emit({ type: 'deployed', framework, outcome });
    let active = this.#active.get(framework);
    if (!active) {
      active = { workers: [], key: '', ended: deferred<GatewayError>(), lastErrors: [] };
      this.#active.set(framework, active);
    }
    await this.#reconcile(framework);
    const entry = active;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (entry.workers.length > 0) done(resolve);
        else if (signal.aborted) {
          const why = entry.lastErrors.length ? ` (tasks: ${entry.lastErrors.join('; ')})` : '';
          const err = abortError(signal, `start ${framework}`);
          done(() => reject(new GatewayError(err.code, `${err.message}${why}`, { cause: err })));
        }
      };
      const done = (settle: () => void) => {
        this.#waiters.delete(check);
        signal.removeEventListener('abort', check);
        settle();
      };
      this.#waiters.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
    return { endpoints: entry.workers.map((w) => w.endpoint), workers: entry.workers, ended: entry.ended.promise };
  }

  /**
   * Keeps the framework busy until the returned release (idempotent): its service is scaled to 0 (kept: the next
   * request scales it back) only once nothing has held it for idleStopMs, as an idle container is stopped. The
   * router holds it for each request and each launch until a worker is ready, the job manager while a job is
   * queued or runs there.
   */
  hold(framework: string): Release {
    if (this.#closing || !this.#specs.has(framework)) return () => undefined;
    return this.#holds.hold(framework);
  }

  #idleStop(framework: string): void {
    if (!this.#active.has(framework)) return;
    this.#log.info({ event: 'swarm.framework_idle_stop', framework, idleMs: this.#opts.idleStopMs });
    this.#stop(framework, 'idle').catch((err: unknown) => this.#log.warn({ event: 'swarm.idle_stop_failed', framework, err }));
  }

  /** Rolls the framework's tasks to a changed image, env or command (one at a time; the pool drains each). */
  async update(framework: string, change: Partial<Pick<FrameworkSpec, 'image' | 'env' | 'command'>>): Promise<DeployOutcome> {
    const spec = validateFrameworkSpec({ ...this.spec(framework), ...change });
    this.#specs.set(framework, spec);
    const outcome = await this.#services.deploy(spec);
    this.#events.emit({ type: 'deployed', framework, outcome });
    return outcome;
  }

  /** Sets the framework's replica count (its spec keeps the new count). */
  async scale(framework: string, replicas: number): Promise<void> {
    const spec = validateFrameworkSpec({ ...this.spec(framework), replicas });
    this.#specs.set(framework, spec);
    await this.#services.scale(spec, replicas);
    // Swarm marks the tasks it will stop (desired state no longer running) when it takes the update, before their
    // node stops them: list now, so the pool drains them instead of learning it from their exit.
    if (this.#active.has(framework)) await this.#reconcile(framework);
  }

  /** Scales the service to zero (kept, so the next start only scales it back); not running is not an error. */
  async stop(framework: string, signal?: AbortSignal): Promise<void> {
    this.spec(framework);
    throwIfAborted(signal, `stop ${framework}`);
    await this.#stop(framework, 'request');
  }

  async #stop(framework: string, reason: 'request' | 'idle'): Promise<void> {
    const spec = this.spec(framework);
    this.#holds.disarm(framework);
    if (!(await this.#services.inspect(spec))) return;
    // A request or a job that came while the service was inspected keeps it (the router still had it ready).
    if (reason === 'idle' && this.#holds.held(framework)) return this.#log.info({ event: 'swarm.idle_stop_skipped', framework });
    await this.#services.scale(spec, 0);
    this.#forget(framework, new GatewayError('unavailable', `framework ${framework}: service stopped`));
    this.#events.emit({ type: 'stopped', framework, reason });
  }

  /** Removes the framework's service. Returns whether it existed. */
  async remove(framework: string): Promise<boolean> {
    const removed = await this.#services.remove(this.spec(framework));
    this.#forget(framework, new GatewayError('unavailable', `framework ${framework}: service removed`));
    if (removed) this.#events.emit({ type: 'stopped', framework, reason: 'request' });
    return removed;
  }

  async status(): Promise<Array<{ framework: string; state: string; container?: string; image?: string; mode: 'service'; replicas: number; workers: LaunchWorker[]; updateState?: string }>> {
    const services = await this.#services.list();
    return Promise.all(
      [...this.#specs.values()].map(async (spec) => {
        const service = services.find((s) => s.name === serviceNameFor(spec));
        const tasks = service ? await this.#services.tasks(spec) : [];
        const serving = tasks.filter(isServing);
        const state = !service ? 'absent' : serving.some((t) => t.state === 'running') ? 'running' : service.replicas === 0 ? 'stopped' : 'starting';
        return {
          framework: spec.name,
          state,
          container: serviceNameFor(spec),
          image: service?.image ?? spec.image,
          mode: 'service' as const,
          replicas: service?.replicas ?? 0,
          workers: serving.map((t) => ({ endpoint: t.endpoint, host: t.host, task: t.id })),
          ...(service?.updateState ? { updateState: service.updateState } : {}),
        };
      }),
    );
  }

  /** Every task of our services (current and recent), as rows for GET /v1/containers and `ps`. */
  async containers(): Promise<Array<{ framework: string; name: string; id: string; state: string; desiredState: string; node: string; endpoint: string; error: string | null }>> {
    const rows = await Promise.all(
      [...this.#specs.values()].map(async (spec) =>
        (await this.#services.tasks(spec)).map((t) => ({ framework: spec.name, name: `${serviceNameFor(spec)}.${t.slot}`, id: t.id, state: t.state, desiredState: t.desiredState, node: t.host, endpoint: t.endpoint, error: t.error ?? null })),
      ),
    );
    return rows.flat();
  }

  #forget(framework: string, reason: GatewayError): void {
    const active = this.#active.get(framework);
    if (!active) return;
    this.#active.delete(framework);
    active.ended.resolve(reason);
  }

  /** One subscription to the engine's events for every framework here, started by the first launch. */
  async #watch(): Promise<void> {
    if (this.#watching) return this.#watching;
    this.#watching = (async () => {
      const changes = await this.#services.changes({ signal: this.#close.signal });
      void (async () => {
        try {
          for await (const change of changes) {
            const spec = [...this.#specs.values()].find((s) => serviceNameFor(s) === change.service);
            if (spec && this.#active.has(spec.name)) void this.#reconcile(spec.name);
          }
        } catch (err) {
          if (!this.#closing) this.#log.warn({ event: 'swarm.events_ended', err });
        } finally {
          this.#watching = undefined; // the next launch subscribes again
        }
      })();
      const every = this.#opts.resyncMs ?? 10_000;
      if (every > 0 && !this.#resync) {
        this.#resync = setInterval(() => {
          for (const framework of this.#active.keys()) void this.#reconcile(framework);
        }, every);
        this.#resync.unref();
      }
    })();
    this.#watching.catch(() => (this.#watching = undefined));
    return this.#watching;
  }

  /** Re-lists a framework's tasks (one run at a time; changes meanwhile run it once more) and announces a changed set. */
  #reconcile(framework: string): Promise<void> {
    const running = this.#reconciling.get(framework);
    if (running) {
      running.again = true;
      return running.run;
    }
    const state = { run: Promise.resolve(), again: false };
    state.run = (async () => {
      do {
        state.again = false;
        await this.#listOnce(framework).catch((err: unknown) => this.#log.warn({ event: 'swarm.tasks_failed', framework, err }));
      } while (state.again && !this.#closing);
    })().finally(() => this.#reconciling.delete(framework));
    this.#reconciling.set(framework, state);
    return state.run;
  }

  async #listOnce(framework: string): Promise<void> {
    const active = this.#active.get(framework);
    if (!active) return;
    const spec = this.spec(framework);
    const tasks = await this.#services.tasks(spec);
    if (tasks.length === 0 && !(await this.#services.inspect(spec))) {
      this.#log.warn({ event: 'swarm.service_gone', framework });
      this.#forget(framework, new GatewayError('unavailable', `framework ${framework}: service ${serviceNameFor(spec)} was removed`));
      this.#events.emit({ type: 'exited', framework, expected: false, error: `service ${serviceNameFor(spec)} was removed` });
      return;
    }
    active.lastErrors = tasks.filter((t) => t.desiredState === 'running' && t.error).map((t) => `${t.slot}: ${t.state}: ${t.error}`);
    // A task on its way may start on a node whose container events this engine does not see: look again soon.
    const onItsWay = tasks.some((t) => t.desiredState === 'running' && !isServing(t)) || (tasks.length === 0 && spec.replicas !== 0);
    if (onItsWay) this.#relistSoon(framework);
    const workers = tasks.filter(isServing).map((t) => ({ endpoint: t.endpoint, host: t.host, task: t.id }));
    const key = workers.map((w) => `${w.endpoint}@${w.task}`).sort().join(',');
    if (key !== active.key) {
      active.workers = workers;
      active.key = key;
      this.#log.info({ event: 'swarm.workers', framework, workers: workers.map((w) => `${w.endpoint} (${w.task.slice(0, 12)})`) });
      this.#events.emit({ type: 'workers', framework, workers, drainMs: (spec.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S) * 1000 });
    }
    for (const wake of [...this.#waiters]) wake();
  }

  #relistSoon(framework: string): void {
    if (this.#closing || this.#relist.has(framework)) return;
    const timer = setTimeout(() => {
      this.#relist.delete(framework);
      void this.#reconcile(framework);
    }, CONVERGING_RELIST_MS);
    timer.unref();
    this.#relist.set(framework, timer);
  }

  /** Ends the events subscription and timers; removes the services only with `stopOnClose`. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      clearInterval(this.#resync);
      for (const timer of this.#relist.values()) clearTimeout(timer);
      this.#relist.clear();
      this.#holds.close();
      this.#close.abort(new GatewayError('cancelled', 'launcher closed'));
      for (const wake of [...this.#waiters]) wake();
      await Promise.allSettled([...this.#reconciling.values()].map((r) => r.run));
      if (this.#opts.stopOnClose) {
        await Promise.allSettled([...this.#specs.keys()].map(async (f) => {
          if (await this.#services.remove(this.spec(f))) this.#events.emit({ type: 'stopped', framework: f, reason: 'close' });
        }));
      }
      for (const f of [...this.#active.keys()]) this.#forget(f, new GatewayError('cancelled', 'launcher closed'));
      this.#events.close();
    })());
  }
}
