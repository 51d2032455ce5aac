// Routes a request to its framework's pool: default framework, per-framework concurrency limit and deadline,
// on-demand start through the launcher, and in-flight counts that always return to zero. Owns each framework's
// state (ready, starting, stopped, down), derived from its pool's and its launcher's events and announced as
// events of its own; nothing here polls or sleeps.
import { setMaxListeners } from 'node:events';
import { abortError, Deadline, unboundedController } from '../lib/abort.js';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Codec } from '../protocol/codec.js';
import type { EndpointStatus, OutgoingRequest, Reply } from '../zmq/types.js';
import type { FrameworkLauncher, LaunchEvent, LaunchWorker } from './framework-launcher.js';
import type { FrameworkEntry, FrameworkRegistry, FrameworkState } from './framework-registry.js';

export type { FrameworkState };

/** A framework's state changed: `stopped` is stopped on purpose (idle, switch, request) and is not an outage. */
export interface FrameworkStateEvent {
  type: 'framework_state';
  framework: string;
  state: FrameworkState;
  reason?: string;
}

/** A GatewayError that tells the caller when to try again (HTTP Retry-After). */
export class RetryLaterError extends GatewayError {
  constructor(
    code: 'overloaded' | 'unavailable',
    message: string,
    readonly retryAfterS: number,
  ) {
    super(code, message);
  }
}

/** Seconds to wait before retrying after `err`, when it says so. */
export function retryAfterSeconds(err: unknown): number | undefined {
  return err instanceof RetryLaterError ? err.retryAfterS : undefined;
}

export interface RouteOptions {
  /** The caller's cancellation (client went away, gateway closing). */
  signal?: AbortSignal;
  /**
   * True when `signal` is long-lived and shared by many requests (a front door's close signal): the router then
   * combines it with its own close signal once and reuses that, and leaves the deadline to the worker client's
   * timer, so a request to a running framework costs no AbortController, timer or listeners here.
   */
  sharedSignal?: boolean;
  /** The caller's own budget, ms (`timeout_ms` in the header); the framework's timeout caps it. */
  timeoutMs?: number;
  /** Codec towards the worker; defaults to the framework's. */
  codec?: Codec;
}

export interface RouteResult extends Reply {
  framework: string;
}

export interface FrameworkStatus {
  name: string;
  default: boolean;
  endpoints: EndpointStatus[];
  /** `ready`: some worker is ready; `starting`: a launch is in progress; `stopped`: launchable, stopped on purpose or never started; `down`: none ready. */
  state: FrameworkState;
  ready: boolean;
  inFlight: number;
  maxConcurrency: number;
  timeoutMs: number;
  recentLatencyMs: number | undefined;
  requests: { ok: number; errors: number; overloaded: number };
  launcher: boolean;
}

export interface RouterOptions {
  registry: FrameworkRegistry;
  log?: Logger;
}

const LATENCY_WEIGHT = 0.1;

export class Router {
  readonly registry: FrameworkRegistry;
  readonly #log: Logger;
  /** Aborts everything in flight on close: every waiting request listens to it, so it has no listener cap. */
  readonly #closeController = unboundedController();
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  readonly #combined = new WeakMap<AbortSignal, AbortSignal>();
  readonly #events = new EventStream<FrameworkStateEvent>();
  readonly #unsubscribe: Array<() => void> = [];

  constructor({ registry, log = silentLogger }: RouterOptions) {
    this.registry = registry;
    this.#log = log.child({ component: 'router' });
    const launchers = new Set<FrameworkLauncher>();
    for (const entry of registry.entries()) {
      entry.state = this.#stateOf(entry);
      this.#unsubscribe.push(entry.pool.onEvent(() => this.#refresh(entry)));
      if (entry.launcher) launchers.add(entry.launcher);
    }
    for (const launcher of launchers) this.#unsubscribe.push(launcher.onEvent((e) => this.#onLaunchEvent(e as LaunchEvent)));
  }

  /** Framework state changes, in order (subscribe, then read status() for the states before). */
  onEvent(listener: (event: FrameworkStateEvent) => void): () => void {
    return this.#events.on(listener);
  }

  events(): AsyncIterable<FrameworkStateEvent> {
    return this.#events;
  }

  #stateOf(e: FrameworkEntry): FrameworkState {
    if (e.pool.isReady()) return 'ready';
    if (e.launching) return 'starting';
    if (e.launcher && e.pool.endpoints.length === 0) return 'stopped';
    return 'down';
  }

  #refresh(e: FrameworkEntry, reason?: string): void {
    const state = this.#stateOf(e);
    if (state === e.state) return;
    e.state = state;
    this.#events.emit({ type: 'framework_state', framework: e.name, state, ...(reason ? { reason } : {}) });
  }

  /**
   * A framework stopped on purpose leaves the pool (no reconnects, not "down"); one that crashed stays in it, is
   * checked at once, and is started again by the next request.
   */
  #onLaunchEvent(e: LaunchEvent): void {
    if (!this.registry.has(e.framework)) return;
    const entry = this.registry.resolve(e.framework);
    if (e.type === 'stopped') {
      this.#log.info({ event: 'router.framework_stopped', framework: e.framework, reason: e.reason });
      void Promise.all(entry.pool.endpoints.map((ep) => entry.pool.removeEndpoint(ep))).then(() => this.#refresh(entry, e.reason));
    } else if (e.type === 'exited' && !e.expected) {
      void entry.pool.checkHealth().catch(() => undefined);
    } else if (e.type === 'workers') {
      void this.#applyWorkers(entry, e.workers, e.drainMs);
    }
  }

  /**
   * The framework's replicas changed: new workers join the pool (they serve once healthy); the others are drained
   * (no new requests; those in flight finish for up to `drainMs`, an idempotent one left over goes to another).
   */
  async #applyWorkers(entry: FrameworkEntry, workers: readonly LaunchWorker[], drainMs: number): Promise<void> {
    const wanted = new Set(workers.map((w) => w.endpoint));
    const drained = entry.pool.endpoints.filter((ep) => !wanted.has(ep));
    for (const w of workers) entry.pool.addEndpoint(w.endpoint, { labels: { host: w.host, task: w.task } });
    if (drained.length) this.#log.info({ event: 'router.workers_drained', framework: entry.name, endpoints: drained, drainMs });
    await Promise.all(drained.map((ep) => entry.pool.removeEndpoint(ep, { graceMs: drainMs })));
    this.#refresh(entry);
  }

  get defaultFramework(): string | undefined {
    return this.registry.defaultFramework;
  }

  /** Requests in flight over every framework. */
  get inFlight(): number {
    let n = 0;
    for (const e of this.registry.entries()) n += e.inFlight;
    return n;
  }

  /**
   * Sends `req` to the framework it names (or the default one) and resolves with the worker's reply.
   * Rejects with a GatewayError: `unknown_framework`, `overloaded` (RetryLaterError), `unavailable`,
   * `timeout`, `cancelled`, or the worker's own code.
   */
  async route(req: OutgoingRequest, opts: RouteOptions = {}): Promise<RouteResult> {
    if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
    const entry = this.registry.resolve(req.framework);
    const { config } = entry;
    if (entry.inFlight >= config.maxConcurrency) {
      entry.counts.overloaded++;
      const retryAfterS = Math.max(1, Math.ceil(((entry.latencyEmaMs ?? config.timeoutMs) * entry.inFlight) / config.maxConcurrency / 1000));
      throw new RetryLaterError('overloaded', `framework '${entry.name}' has ${entry.inFlight} requests in flight (limit ${config.maxConcurrency}); retry in ${retryAfterS}s`, retryAfterS);
    }
    const budgetMs = Math.min(config.timeoutMs, opts.timeoutMs ?? Infinity);
    const startedAt = performance.now();
    // Fast path (a running framework, no per-request caller signal): the pool's client enforces the budget with
    // its own timer and listens to one long-lived signal. Otherwise one deadline for the launch and the request.
    const fast = (opts.signal === undefined || opts.sharedSignal === true) && !(entry.launcher && !entry.pool.isReady());
    const deadline = fast ? undefined : new Deadline(budgetMs, this.#closeController.signal, opts.signal);
    const signal = deadline ? deadline.signal : this.#sharedSignal(opts.signal);
    entry.inFlight++;
    // Busy for the whole request, a launch's ready wait included: no idle stop while it is in flight.
    const release = entry.launcher?.hold?.(entry.name);
    try {
      if (signal.aborted) throw abortError(signal, `request to ${entry.name}`);
      if (entry.launcher && !entry.pool.isReady()) await this.#ensureRunning(entry, signal);
      const remainingMs = Math.max(1, budgetMs - (performance.now() - startedAt));
      // A launched framework is meant to be running: with no worker ready this moment (a task replaced, a check
      // missed under load) the request waits for one within its deadline rather than failing at once.
      const reply = await entry.pool.request({ ...req, framework: entry.name }, { signal, timeoutMs: remainingMs, codec: opts.codec ?? config.codec, waitForReady: entry.launcher !== undefined });
      const ms = performance.now() - startedAt;
      entry.latencyEmaMs = entry.latencyEmaMs === undefined ? ms : (1 - LATENCY_WEIGHT) * entry.latencyEmaMs + LATENCY_WEIGHT * ms;
      entry.counts.ok++;
      return { ...reply, framework: entry.name };
    } catch (err) {
      entry.counts.errors++;
      // An abort raced with the pool: report it by the signal's reason (timeout vs cancelled).
      const error = signal.aborted && !(err instanceof GatewayError && err.code !== 'cancelled') ? abortError(signal, `request to ${entry.name}`) : toGatewayError(err);
      throw error;
    } finally {
      deadline?.dispose();
      release?.();
      entry.inFlight--;
      if (this.#idle && this.inFlight === 0) this.#idle();
    }
  }

  /** The router's close signal combined with a long-lived caller signal, made once per caller signal. */
  #sharedSignal(caller: AbortSignal | undefined): AbortSignal {
    const own = this.#closeController.signal;
    if (!caller) return own;
    let combined = this.#combined.get(caller);
    if (!combined) {
      // Lives as long as the caller's signal (a front door's close signal): no timer, listeners never removed.
      const linked = new Deadline(Infinity, own, caller);
      setMaxListeners(0, linked.signal); // every request in flight listens to it
      this.#combined.set(caller, (combined = linked.signal));
    }
    return combined;
  }

  /**
   * Starts a launchable framework (if it is not ready) and resolves once one of its workers is ready, with its
   * endpoints. The HTTP control route `start` uses it.
   */
  async startFramework(name: string, signal: AbortSignal): Promise<string[]> {
    if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
    const entry = this.registry.resolve(name);
    if (!entry.launcher) throw new GatewayError('unknown_framework', `framework '${name}' has no launcher`);
    if (!entry.pool.isReady()) await this.#ensureRunning(entry, signal);
    return entry.pool.endpoints;
  }

  /** Starts the framework through its launcher (one launch shared by every waiting request), within `signal`. */
  async #ensureRunning(entry: FrameworkEntry, signal: AbortSignal): Promise<void> {
    if (!entry.launching) {
      entry.launching = this.#launch(entry).finally(() => {
        entry.launching = undefined;
        this.#refresh(entry);
      });
      entry.launching.catch(() => undefined); // every waiter gets the error; none left unhandled
      this.#refresh(entry);
    }
    const launch = entry.launching;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(abortError(signal, `start of framework '${entry.name}'`));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      launch.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /**
   * The launcher starts the container and names its endpoints; the pool connects and announces the first ready
   * worker by event. A container that ends first fails the launch with its reason (exit code, last log lines).
   */
  async #launch(entry: FrameworkEntry): Promise<void> {
    const launcher = entry.launcher!;
    // Busy until a worker is ready (or the launch fails): started and never used becomes idle from ready on, also
    // when every request that waited for it gave up.
    const release = launcher.hold?.(entry.name);
    // The launch has its own deadline: a request that gives up does not stop a start others may need.
    const deadline = new Deadline(entry.config.startTimeoutMs, this.#closeController.signal);
    const signal = deadline.signal;
    const log = this.#log.child({ framework: entry.name });
    const startedAt = performance.now();
    log.info({ event: 'router.launch_start' });
    try {
      const { endpoints, ended, workers } = await launcher.ensureRunning(entry.name, signal);
      for (const ep of entry.pool.endpoints) if (!endpoints.includes(ep)) await entry.pool.removeEndpoint(ep);
      const labels = new Map(workers?.map((w) => [w.endpoint, { host: w.host, task: w.task }]));
      for (const ep of endpoints) entry.pool.addEndpoint(ep, labels.has(ep) ? { labels: labels.get(ep)! } : {});
      void entry.pool.checkHealth().catch(() => undefined); // now, not at the next health interval
      await new Promise<void>((resolve, reject) => {
        entry.pool.whenReady(signal).then(resolve, reject);
        void ended.then(reject); // `ended` never rejects; after a ready worker this reject is a no-op
      });
      log.info({ event: 'router.launch_ready', endpoints, ms: Math.round(performance.now() - startedAt) });
    } catch (err) {
      const error = signal.aborted ? abortError(signal, `start of framework '${entry.name}'`) : toGatewayError(err);
      log.warn({ event: 'router.launch_failed', err: error });
      throw error.code === 'timeout' || error.code === 'cancelled' ? error : new GatewayError('unavailable', `framework '${entry.name}' could not be started: ${error.message}`, { cause: error });
    } finally {
      deadline.release(); // the readiness wait that lost the race to `ended` lets go of the pool
      release?.();
    }
  }

  /** Status of every framework, for /v1/frameworks and the CLI. */
  status(): FrameworkStatus[] {
    return this.registry.entries().map((e) => {
      const pool = e.pool.stats();
      const ready = pool.ready;
      const state = this.#stateOf(e);
      return {
        name: e.name,
        default: e.name === this.registry.defaultFramework,
        endpoints: pool.endpoints,
        state,
        ready,
        inFlight: e.inFlight,
        maxConcurrency: e.config.maxConcurrency,
        timeoutMs: e.config.timeoutMs,
        recentLatencyMs: e.latencyEmaMs,
        requests: { ...e.counts },
        launcher: e.launcher !== undefined,
      };
    });
  }

  /** Frameworks configured without a launcher must have a ready worker; launchable ones are ready once started. */
  notReady(): string[] {
    return this.registry.entries().filter((e) => !e.pool.isReady()).map((e) => e.name);
  }

  /** Stops admitting requests, waits up to `graceMs` for those in flight, then cancels the rest and closes the pools. Idempotent. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  async #shutdown(graceMs: number): Promise<void> {
    if (this.inFlight > 0 && graceMs > 0) {
      const idle = new Promise<void>((resolve) => (this.#idle = resolve));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.#closeController.abort(new GatewayError('cancelled', 'the gateway is shutting down'));
    for (const stop of this.#unsubscribe) stop();
    await this.registry.close();
    this.#events.close();
    if (this.inFlight !== 0) this.#log.warn({ event: 'router.closed_with_in_flight', inFlight: this.inFlight });
  }
}
