// The workers of one framework: endpoints added and removed at run time, least-in-flight choice among
// ready ones, periodic health checks (healthy means ready), typed state events, and a draining close.
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { whenReadyEvent } from './ready-event.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Codec, Limits } from '../protocol/codec.js';
import type { HealthResult } from '../protocol/messages.js';
import { outsideTrace } from '../telemetry/tracing.js';
import type { CurveClientKeys } from './curve-keys.js';
import { WorkerClient, DEFAULT_REQUEST_TIMEOUT_MS } from './worker-client.js';
import type { EndpointState, EndpointStatus, OutgoingRequest, PoolEvent, PoolStats, Reply, RequestOptions, WorkerLabels } from './types.js';

/**
 * Request types that may be sent again to another worker when theirs went away or was not ready: they change no
 * state. `train` and `command` are never retried (they may have started); nor are `jobs` and `cancel_job`, which
 * concern the jobs of one worker (the job manager names its endpoint).
 */
const IDEMPOTENT_TYPES: ReadonlySet<string> = new Set(['inference', 'health', 'status']);

export interface WorkerPoolOptions {
  framework: string;
  endpoints?: readonly string[];
  /** Default request deadline, ms. */
  timeoutMs?: number;
  codec?: Codec;
  limits?: Limits;
  /** Time between health checks of each endpoint, ms (0 disables the periodic checks). */
  healthIntervalMs?: number;
  /** Deadline of one health check, ms. */
  healthTimeoutMs?: number;
  /** Failed checks in a row after which an endpoint is `down`. */
  downAfterFailures?: number;
  log?: Logger;
  /** CURVE towards every endpoint of the pool (Z85: the workers' public key and the gateway's client pair). */
  curve?: CurveClientKeys;
  /** A lease token sent with every request (the gateway's own token towards workers that enforce leases). */
  leaseToken?: string;
}

interface Member {
  client: WorkerClient;
  state: EndpointState;
  failures: number;
  lastHealth?: HealthResult;
  lastError?: string;
  latencyEmaMs?: number;
  /** When the endpoint last answered a request (performance.now()). */
  lastReplyAt?: number;
  /** Host and task of a replica (Swarm task, remote container). */
  labels?: WorkerLabels;
  unsubscribe: () => void;
}

/** Pool request options: those of one client, and whether to wait for a ready worker. */
export interface PoolRequestOptions extends RequestOptions {
  /**
   * With no worker ready to take the request (all starting, restarting, unhealthy, or already tried), wait within the
   * deadline for one to turn ready instead of failing at once with `unavailable`. For frameworks meant to be running
   * (launched replicas): a task replaced or a health check missed under load is a moment, not an outage. A pool with
   * no endpoints at all (stopped) still fails at once.
   */
  waitForReady?: boolean;
}

/** Requests go to a ready endpoint; with none ready, to one still connecting; never to one that is down. */
const PREFERENCE: readonly EndpointState[] = ['ready', 'connecting'];

export class WorkerPool implements AsyncDisposable {
  readonly framework: string;
  readonly #options: WorkerPoolOptions;
  readonly #members = new Map<string, Member>();
  readonly #events = new EventStream<PoolEvent>();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closing: Promise<void> | undefined;
  #lateReplies = 0;
  #checking: Promise<EndpointStatus[]> | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!options.framework) throw new GatewayError('bad_request', "WorkerPool needs a 'framework' name");
    this.framework = options.framework;
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: 'zmq.pool', framework: options.framework });
    for (const endpoint of options.endpoints ?? []) this.addEndpoint(endpoint);
  }

  /** Connects every endpoint, runs a first health check and starts the periodic ones. */
  async start({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    if (this.#started) return;
    this.#started = true;
    for (const member of this.#members.values()) member.client.start();
    const interval = this.#options.healthIntervalMs ?? 1_000;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.checkHealth().catch(() => undefined), interval);
      this.#timer.unref();
    }
    await this.checkHealth({ signal });
  }

  /**
   * Adds an endpoint (present: only its labels change, e.g. a new task on the same slot). It serves requests once a
   * health check finds it ready.
   */
  addEndpoint(endpoint: string, { labels }: { labels?: WorkerLabels } = {}): void {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    const present = this.#members.get(endpoint);
    if (present) {
      if (labels) present.labels = labels;
      return;
    }
    const o = this.#options;
    const client = new WorkerClient({ endpoint, framework: this.framework, timeoutMs: o.timeoutMs, codec: o.codec, limits: o.limits, log: o.log, ...(o.curve ? { curve: o.curve } : {}), ...(o.leaseToken ? { leaseToken: o.leaseToken } : {}) });
    const member: Member = { client, state: 'connecting', failures: 0, unsubscribe: () => undefined, ...(labels ? { labels } : {}) };
    member.unsubscribe = client.onEvent((event) => this.#onClientEvent(member, event));
    this.#members.set(endpoint, member);
    if (this.#started) client.start();
    this.#events.emit({ type: 'endpoint_added', framework: this.framework, endpoint, ...(labels ? { labels } : {}) });
    this.#log.info({ event: 'pool.endpoint_added', endpoint, ...labels });
  }

  /** Removes an endpoint; its requests in flight may finish for up to `graceMs`. */
  async removeEndpoint(endpoint: string, { graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    const member = this.#members.get(endpoint);
    if (!member) return;
    this.#members.delete(endpoint);
    this.#setState(member, 'removed');
    member.unsubscribe();
    this.#events.emit({ type: 'endpoint_removed', framework: this.framework, endpoint });
    await member.client.close({ graceMs });
  }

  get endpoints(): string[] {
    return [...this.#members.keys()];
  }

  /** True when at least one endpoint is ready. */
  isReady(): boolean {
    for (const m of this.#members.values()) if (m.state === 'ready') return true;
    return false;
  }

  get inFlight(): number {
    let n = 0;
    for (const m of this.#members.values()) n += m.client.inFlight;
    return n;
  }

  /**
   * Resolves as soon as some endpoint is ready (at once if one is), announced by the pool's own state events:
   * no polling. Rejects with the signal's `timeout`/`cancelled`, or `unavailable` when the pool closes first.
   * The listener is removed on every exit.
   */
  whenReady(signal: AbortSignal): Promise<void> {
    return whenReadyEvent(this, this.#closing !== undefined, signal);
  }

  /**
   * Waits until one of `endpoints` answers health with ready=true, using a pool of its own that is closed on
   * every exit: what a command-line `up` or an exec'd worker needs without a running gateway.
   */
  static async waitUntilReady(endpoints: readonly string[], { framework = 'worker', signal, healthIntervalMs = 250, log }: { framework?: string; signal: AbortSignal; healthIntervalMs?: number; log?: Logger }): Promise<void> {
    const pool = new WorkerPool({ framework, endpoints, healthIntervalMs, ...(log ? { log } : {}) });
    try {
      await pool.start({ signal }).catch(() => undefined); // the first check may fail while the worker binds
      await pool.whenReady(signal);
    } finally {
      await pool.close();
    }
  }

  /**
   * Sends a request to the least-busy ready endpoint. An idempotent request (inference, health, status) whose worker
   * goes away (disconnected, removed, drained past its grace) or answers `unavailable` (not ready, shutting down) is
   * sent to another ready worker within the same deadline. `unavailable` when none can take it (with `waitForReady`,
   * when none turned ready within the deadline). With `opts.endpoint`, only that worker is asked (whatever its
   * load or health state, unless down), and never another.
   */
  async request(req: OutgoingRequest, opts: PoolRequestOptions = {}): Promise<Reply> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    if (opts.endpoint !== undefined) return this.#requestAt(opts.endpoint, req, opts);
    const budgetMs = opts.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const startedAt = performance.now();
    const tried = new Set<Member>();
    const { waitForReady = false, ...clientOpts } = opts;
    for (;;) {
      const member = this.#pick(tried);
      if (!member) {
        const leftMs = budgetMs - (performance.now() - startedAt);
        if (waitForReady && this.#members.size > 0 && leftMs > 1 && (await this.#nextReady(tried, leftMs, opts.signal))) continue;
        const states = [...this.#members.values()].map((m) => `${m.client.endpoint}: ${m.state}`).join(', ');
        throw new GatewayError('unavailable', `framework '${this.framework}' has no ready worker (${states || 'no endpoints'})`);
      }
      if (!this.#started) member.client.start();
      const remainingMs = budgetMs - (performance.now() - startedAt);
      try {
        const reply = await member.client.request(req, { ...clientOpts, timeoutMs: Math.max(1, remainingMs) });
        member.latencyEmaMs = member.latencyEmaMs === undefined ? reply.roundTripMs : 0.9 * member.latencyEmaMs + 0.1 * reply.roundTripMs;
        member.lastReplyAt = performance.now();
        if (member.labels) this.#events.emit({ type: 'served', framework: this.framework, endpoint: member.client.endpoint, labels: member.labels });
        return reply;
      } catch (err) {
        if (!this.#mayRetry(req, err, member, opts.signal) || budgetMs - (performance.now() - startedAt) <= 1) throw err;
        tried.add(member);
        const code = (err as GatewayError).code;
        this.#log.info({ event: 'pool.retry', endpoint: member.client.endpoint, code, requestType: req.type });
        this.#events.emit({ type: 'retry', framework: this.framework, endpoint: member.client.endpoint, code, ...(member.labels ? { labels: member.labels } : {}) });
      }
    }
  }

  /**
   * Sends to one named endpoint: no choice, no retry (the job manager's polls and cancels of a job on that worker;
   * the lease service's revocations and record collection, which every worker must get).
   */
  async #requestAt(endpoint: string, req: OutgoingRequest, opts: RequestOptions): Promise<Reply> {
    const member = this.#members.get(endpoint);
    if (!member || member.state === 'down') {
      const why = member ? `it is down (${member.lastError ?? 'disconnected'})` : `it has no such endpoint (${this.endpoints.join(', ') || 'none'})`;
      throw new GatewayError('unavailable', `framework '${this.framework}' cannot reach the worker at ${endpoint}: ${why}`);
    }
    if (!this.#started) member.client.start();
    const { endpoint: _named, ...clientOpts } = opts;
    const reply = await member.client.request(req, clientOpts);
    member.lastReplyAt = performance.now();
    return reply;
  }

  /**
   * Waits (announced by the pool's own events, no polling) until an endpoint turns ready or a new one is added;
   * one already tried that turns ready again may be tried again. False when `waitMs` passes, the caller's signal
   * aborts or the pool closes first.
   */
  #nextReady(tried: Set<Member>, waitMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    const deadline = new Deadline(waitMs, signal);
    return new Promise<boolean>((resolve) => {
      const finish = (found: boolean) => {
        off();
        deadline.signal.removeEventListener('abort', onAbort);
        deadline.dispose();
        resolve(found);
      };
      const onAbort = () => finish(false);
      const off = this.#events.on((event) => {
        if (event.type === 'closed') return finish(false);
        if (event.type === 'endpoint_added') return finish(true);
        if (event.type !== 'state' || event.to !== 'ready') return;
        const member = this.#members.get(event.endpoint);
        if (member) tried.delete(member);
        finish(true);
      });
      if (deadline.signal.aborted || this.#closing) return finish(false);
      deadline.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A failure another worker may fix: the request changes nothing, the caller still waits, and its worker went away or was not ready. */
  #mayRetry(req: OutgoingRequest, err: unknown, member: Member, signal: AbortSignal | undefined): boolean {
    if (!IDEMPOTENT_TYPES.has(req.type) || signal?.aborted || this.#closing || !(err instanceof GatewayError)) return false;
    if (err.code === 'unavailable') return true;
    // A worker removed (drained past its grace) cancels what it still had: that was the pool's doing, not the caller's.
    return err.code === 'cancelled' && this.#members.get(member.client.endpoint) !== member;
  }

  #pick(exclude?: ReadonlySet<Member>): Member | undefined {
    for (const state of PREFERENCE) {
      let best: Member | undefined;
      for (const m of this.#members.values()) {
        if (m.state !== state || exclude?.has(m)) continue;
        if (!best || m.client.inFlight < best.client.inFlight) best = m;
      }
      if (best) return best;
    }
    return undefined;
  }

  /** Checks every endpoint now (one health request each, in parallel) and returns their status. */
  checkHealth({ signal }: { signal?: AbortSignal } = {}): Promise<EndpointStatus[]> {
    // Checks that overlap share one round; they belong to no request's trace (see outsideTrace).
    return (this.#checking ??= outsideTrace(() => this.#checkAll(signal)).finally(() => (this.#checking = undefined)));
  }

  async #checkAll(signal: AbortSignal | undefined): Promise<EndpointStatus[]> {
    const timeoutMs = this.#options.healthTimeoutMs ?? 1_000;
    await Promise.all(
      [...this.#members.values()].map(async (member) => {
        const sentAt = performance.now();
        try {
          const health = await member.client.health({ timeoutMs, signal });
          if (this.#members.get(member.client.endpoint) !== member) return; // removed meanwhile: no state to change
          member.lastHealth = health;
          member.failures = 0;
          member.lastError = undefined;
          this.#setState(member, health.ready ? 'ready' : 'unhealthy', health.ready ? undefined : 'worker not ready');
        } catch (err) {
          if (this.#members.get(member.client.endpoint) !== member || this.#closing) return;
          // A worker that serves one request at a time answers health only between requests: while it is
          // connected and busy (requests in flight, or a reply within the last two check periods), a check
          // that timed out is not a failure.
          const recentlyAnswered = member.lastReplyAt !== undefined && performance.now() - member.lastReplyAt < 2 * (timeoutMs + (this.#options.healthIntervalMs ?? 1_000));
          const timedOut = (err as GatewayError).code === 'timeout' && member.client.connected;
          if (timedOut && (member.client.inFlight > 0 || recentlyAnswered)) {
            member.lastError = 'health check timed out while the worker was busy';
            return;
          }
          // The timer fired far later than it was set for: the gateway itself did not run (CPU starved, a long
          // pause), and the answer may be sitting unread in the socket. That says nothing about the worker.
          if (timedOut && performance.now() - sentAt > 2 * timeoutMs) {
            member.lastError = 'health check timed out while the gateway was not running (event loop late)';
            return;
          }
          member.failures++;
          member.lastError = (err as Error).message;
          const down = member.failures >= (this.#options.downAfterFailures ?? 2) || !member.client.connected;
          // A ready worker that is still connected stays in rotation until `downAfterFailures` checks in a row have
          // failed: one missed check under load is not a dead worker (a dead one disconnects, and is down at once).
          if (down) this.#setState(member, 'down', member.lastError);
          else if (member.state !== 'ready') this.#setState(member, 'unhealthy', member.lastError);
        }
      }),
    );
    return this.stats().endpoints;
  }

  stats(): PoolStats {
    const endpoints: EndpointStatus[] = [...this.#members.values()].map((m) => ({
      endpoint: m.client.endpoint,
      ...(m.labels ? { labels: m.labels } : {}),
      state: m.state,
      inFlight: m.client.inFlight,
      lastHealth: m.lastHealth,
      lastError: m.lastError,
      recentLatencyMs: m.latencyEmaMs,
    }));
    return { framework: this.framework, inFlight: this.inFlight, ready: this.isReady(), endpoints, lateReplies: this.#lateReplies };
  }

  /** State events of every endpoint, in order; the iteration ends when the pool closes. */
  events(): AsyncIterable<PoolEvent> {
    return this.#events;
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    return this.#events.on(listener);
  }

  /** Stops health checks and new requests, lets requests in flight finish for up to `graceMs`, closes every client. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#members.values()].map((m) => m.client.close({ graceMs })));
    this.#events.emit({ type: 'closed', framework: this.framework });
    this.#events.close();
  }

  #setState(member: Member, to: EndpointState, reason?: string): void {
    const from = member.state;
    if (from === to) return;
    member.state = to;
    const endpoint = member.client.endpoint;
    this.#events.emit({ type: 'state', framework: this.framework, endpoint, from, to, reason });
    const log = to === 'ready' || to === 'removed' ? this.#log.info : this.#log.warn;
    log({ event: 'pool.endpoint_state', endpoint, from, to, reason });
  }

  #onClientEvent(member: Member, event: PoolEvent): void {
    if (this.#members.get(member.client.endpoint) !== member) return;
    if (event.type === 'late_reply') this.#lateReplies++;
    if (event.type === 'disconnected') this.#setState(member, 'down', 'disconnected');
    this.#events.emit(event);
    // A worker that (re)connects is checked at once rather than at the next interval.
    if (event.type === 'connected' && this.#started && !this.#closing) void this.checkHealth().catch(() => undefined);
  }
}
