// The one pool policy for every backend protocol (native workers: worker-pool.ts; unmodified peer servers:
// groot-pool.ts, backends/openpi-pool.ts): endpoints added and removed at run time, least-in-flight choice among ready
// ones, periodic health checks and their counting, the typed state events the router's readiness follows, retries of
// idempotent requests on another endpoint, waiting for readiness within a deadline, and a draining close. What
// differs per protocol (transport, wire, one-at-a-time or pipelined) lives behind `PoolConnection`.
// No zeromq here: the openpi backend imports this module.
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { HealthResult } from '../protocol/messages.js';
import { outsideTrace } from '../telemetry/tracing.js';
import { whenReadyEvent } from './ready-event.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type EndpointState, type EndpointStatus, type OutgoingRequest, type PoolEvent, type PoolStats, type Reply, type RequestOptions, type WorkerLabels } from './types.js';

/** One connection to one endpoint (WorkerClient; a peer server's connection). Constructors do no I/O; `start()` connects. */
export interface PoolConnection {
  readonly endpoint: string;
  /** Requests queued or running on this connection. */
  readonly inFlight: number;
  /** True while the transport is up. */
  readonly connected: boolean;
  start(): void;
  /** Asks the endpoint whether it serves. Throws a GatewayError (`unauthorized` when it refuses the gateway). */
  health(opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<HealthResult>;
  request(req: OutgoingRequest, opts: RequestOptions & { timeoutMs: number }): Promise<Reply>;
  onEvent(listener: (event: PoolEvent) => void): () => void;
  /** Lets requests in flight finish for up to `graceMs`, then cancels the rest and closes. */
  close(opts: { graceMs: number }): Promise<void>;
}

/** The options every pool takes, whatever its protocol. */
export interface PoolOptions {
  framework: string;
  endpoints?: readonly string[];
  /** Default request deadline, ms. */
  timeoutMs?: number;
  /** Time between health checks of each endpoint, ms (0 disables the periodic checks). */
  healthIntervalMs?: number;
  /** Deadline of one health check, ms. */
  healthTimeoutMs?: number;
  /** Failed checks in a row after which a connected endpoint is `down` (a disconnected one is down at once). */
  downAfterFailures?: number;
  log?: Logger;
}

export interface EndpointPoolOptions<C extends PoolConnection> extends PoolOptions {
  /** Makes the connection for an endpoint (no I/O). */
  connect: (endpoint: string) => C;
  /** What an endpoint is, for messages: 'worker', 'openpi server'. */
  noun: string;
  /** Log component, e.g. 'zmq.pool'. */
  component: string;
}

/** Pool request options: those of one connection, and whether to wait for a ready endpoint. */
export interface PoolRequestOptions extends RequestOptions {
  /**
   * With no endpoint ready to take the request (all starting, restarting, unhealthy, or already tried), wait within the
   * deadline for one to turn ready instead of failing at once with `unavailable`. For frameworks meant to be running
   * (launched replicas): a task replaced or a health check missed under load is a moment, not an outage. A pool with
   * no endpoints at all (stopped) still fails at once.
   */
  waitForReady?: boolean;
}

/**
 * Request types that may be sent again to another endpoint when theirs went away or was not ready: they change no
 * state (a peer server's inference is a pure function of the observation). `train` and `command` are never retried
 * (they may have started); nor are `jobs` and `cancel_job`, which concern the jobs of one worker (the job manager
 * names its endpoint).
 */
const IDEMPOTENT_TYPES: ReadonlySet<string> = new Set(['inference', 'health', 'status']);

/** Requests go to a ready endpoint; with none ready, to one still connecting; never to one that is down. */
const PREFERENCE: readonly EndpointState[] = ['ready', 'connecting'];

interface Member<C> {
  conn: C;
  state: EndpointState;
  failures: number;
  lastHealth?: HealthResult;
  lastError?: GatewayError;
  latencyEmaMs?: number;
  /** When the endpoint last answered a request (performance.now()). */
  lastReplyAt?: number;
  /** When it last answered anything (a request, a passed health check). */
  answeredAt?: number;
  /** A request to it timed out and it answered nothing the whole time: busy is then no excuse for a missed check. */
  stalled?: boolean;
  /** Host and task of a replica (Swarm task, remote container). */
  labels?: WorkerLabels;
  unsubscribe: () => void;
}

const asGatewayError = (err: unknown) => (err instanceof GatewayError ? err : new GatewayError('unavailable', (err as Error).message, { cause: err }));

export class EndpointPool<C extends PoolConnection = PoolConnection> implements AsyncDisposable {
  readonly framework: string;
  readonly #options: EndpointPoolOptions<C>;
  readonly #members = new Map<string, Member<C>>();
  readonly #events = new EventStream<PoolEvent>();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closing: Promise<void> | undefined;
  #lateReplies = 0;
  #checking: Promise<EndpointStatus[]> | undefined;

  constructor(options: EndpointPoolOptions<C>) {
    if (!options.framework) throw new GatewayError('bad_request', "a pool needs a 'framework' name");
    this.framework = options.framework;
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: options.component, framework: options.framework });
    for (const endpoint of options.endpoints ?? []) this.addEndpoint(endpoint);
  }

  /** Connects every endpoint, runs a first health check and starts the periodic ones. */
  async start({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    if (this.#started) return;
    this.#started = true;
    for (const member of this.#members.values()) member.conn.start();
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
    const conn = this.#options.connect(endpoint);
    const member: Member<C> = { conn, state: 'connecting', failures: 0, unsubscribe: () => undefined, ...(labels ? { labels } : {}) };
    member.unsubscribe = conn.onEvent((event) => this.#onConnectionEvent(member, event));
    this.#members.set(endpoint, member);
    if (this.#started) conn.start();
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
    await member.conn.close({ graceMs });
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
    for (const m of this.#members.values()) n += m.conn.inFlight;
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
   * Sends a request to the least-busy ready endpoint. An idempotent request (inference, health, status) whose endpoint
   * goes away (disconnected, removed, drained past its grace) or answers `unavailable` (not ready, shutting down) is
   * sent to another ready endpoint within the same deadline. `unavailable` when none can take it (with `waitForReady`,
   * when none turned ready within the deadline; `unauthorized` when one refused the gateway's token). With
   * `opts.endpoint`, only that endpoint is asked (whatever its load or health state, unless down), and never another.
   */
  async request(req: OutgoingRequest, opts: PoolRequestOptions = {}): Promise<Reply> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    const budgetMs = opts.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const { waitForReady = false, endpoint, ...connOpts } = opts;
    if (endpoint !== undefined) return this.#requestAt(endpoint, req, { ...connOpts, timeoutMs: budgetMs });
    const startedAt = performance.now();
    const tried = new Set<Member<C>>();
    for (;;) {
      const member = this.#pick(tried);
      if (!member) {
        const leftMs = budgetMs - (performance.now() - startedAt);
        if (waitForReady && this.#members.size > 0 && leftMs > 1 && (await this.#nextReady(tried, leftMs, opts.signal))) continue;
        throw this.#noneReady();
      }
      if (!this.#started) member.conn.start();
      const sentAt = performance.now();
      const remainingMs = budgetMs - (sentAt - startedAt);
      try {
        const reply = await member.conn.request(req, { ...connOpts, timeoutMs: Math.max(1, remainingMs) });
        member.latencyEmaMs = member.latencyEmaMs === undefined ? reply.roundTripMs : 0.9 * member.latencyEmaMs + 0.1 * reply.roundTripMs;
        member.lastReplyAt = member.answeredAt = performance.now();
        member.stalled = false;
        if (member.labels) this.#events.emit({ type: 'served', framework: this.framework, endpoint: member.conn.endpoint, labels: member.labels });
        return reply;
      } catch (err) {
        // Timed out with no answer of any kind while it waited (one queued behind slow work that still completes is not stalled).
        if (err instanceof GatewayError && err.code === 'timeout' && (member.answeredAt ?? -Infinity) < sentAt) member.stalled = true;
        if (!this.#mayRetry(req, err, member, opts.signal) || budgetMs - (performance.now() - startedAt) <= 1) throw err;
        tried.add(member);
        const code = (err as GatewayError).code;
        this.#log.info({ event: 'pool.retry', endpoint: member.conn.endpoint, code, requestType: req.type });
        this.#events.emit({ type: 'retry', framework: this.framework, endpoint: member.conn.endpoint, code, ...(member.labels ? { labels: member.labels } : {}) });
      }
    }
  }

  /** No endpoint can take a request: `unauthorized` with the server's words when one refused our token, else `unavailable` naming every state. */
  #noneReady(): GatewayError {
    const members = [...this.#members.values()];
    const refused = members.find((m) => m.lastError?.code === 'unauthorized');
    const noun = this.#options.noun;
    if (refused) return new GatewayError('unauthorized', `the ${noun} at ${refused.conn.endpoint} refused the gateway's token: ${refused.lastError!.message}`);
    const states = members.map((m) => `${m.conn.endpoint}: ${m.state}${m.lastError ? ` (${m.lastError.message})` : ''}`).join(', ');
    return new GatewayError('unavailable', `framework '${this.framework}' has no ready ${noun} (${states || 'no endpoints'})`);
  }

  /**
   * Sends to one named endpoint: no choice, no retry (the job manager's polls and cancels of a job on that worker;
   * the lease service's revocations and record collection, which every worker must get).
   */
  async #requestAt(endpoint: string, req: OutgoingRequest, opts: RequestOptions & { timeoutMs: number }): Promise<Reply> {
    const member = this.#members.get(endpoint);
    if (!member || member.state === 'down') {
      const why = member ? `it is down (${member.lastError?.message ?? 'disconnected'})` : `it has no such endpoint (${this.endpoints.join(', ') || 'none'})`;
      throw new GatewayError('unavailable', `framework '${this.framework}' cannot reach the ${this.#options.noun} at ${endpoint}: ${why}`);
    }
    if (!this.#started) member.conn.start();
    const reply = await member.conn.request(req, opts);
    member.lastReplyAt = performance.now();
    return reply;
  }

  /**
   * Waits (announced by the pool's own events, no polling) until an endpoint turns ready or a new one is added;
   * one already tried that turns ready again may be tried again. False when `waitMs` passes, the caller's signal
   * aborts or the pool closes first.
   */
  #nextReady(tried: Set<Member<C>>, waitMs: number, signal: AbortSignal | undefined): Promise<boolean> {
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

  /** A failure another endpoint may fix: the request changes nothing, the caller still waits, and its endpoint went away or was not ready. */
  #mayRetry(req: OutgoingRequest, err: unknown, member: Member<C>, signal: AbortSignal | undefined): boolean {
    if (!IDEMPOTENT_TYPES.has(req.type) || signal?.aborted || this.#closing || !(err instanceof GatewayError)) return false;
    if (err.code === 'unavailable') return true;
    // An endpoint removed (drained past its grace) cancels what it still had: that was the pool's doing, not the caller's.
    return err.code === 'cancelled' && this.#members.get(member.conn.endpoint) !== member;
  }

  #pick(exclude: ReadonlySet<Member<C>>): Member<C> | undefined {
    for (const state of PREFERENCE) {
      let best: Member<C> | undefined;
      for (const m of this.#members.values()) {
        if (m.state !== state || exclude.has(m)) continue;
        if (!best || m.conn.inFlight < best.conn.inFlight) best = m;
      }
      if (best) return best;
    }
    return undefined;
  }

  /** Checks every endpoint now (one health check each, in parallel) and returns their status. */
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
          const health = await member.conn.health({ timeoutMs, signal });
          if (this.#members.get(member.conn.endpoint) !== member || this.#closing) return; // removed meanwhile: no state to change
          member.lastHealth = health;
          member.failures = 0;
          member.lastError = undefined;
          member.answeredAt = performance.now();
          member.stalled = false;
          this.#setState(member, health.ready ? 'ready' : 'unhealthy', health.ready ? undefined : `${this.#options.noun} not ready`);
        } catch (err) {
          if (this.#members.get(member.conn.endpoint) !== member || this.#closing) return;
          this.#checkFailed(member, asGatewayError(err), sentAt, timeoutMs);
        }
      }),
    );
    return this.stats().endpoints;
  }

  #checkFailed(member: Member<C>, error: GatewayError, sentAt: number, timeoutMs: number): void {
    // Reachable but refusing us (a bad token) is an answer, not a missed check: unhealthy, with the server's words.
    if (error.code === 'unauthorized') {
      member.lastError = error;
      this.#setState(member, 'unhealthy', error.message);
      return;
    }
    // An endpoint that serves one request at a time answers health only between requests: while it is connected and
    // busy (requests in flight, or a reply within the last two check periods), a check that timed out is not a failure.
    // Unless its requests time out too, with no answer since: then it is stalled (a stopped or wedged process keeps
    // its connection), and under steady traffic it would otherwise stay in rotation forever, failing every request.
    const recentlyAnswered = member.lastReplyAt !== undefined && performance.now() - member.lastReplyAt < 2 * (timeoutMs + (this.#options.healthIntervalMs ?? 1_000));
    const timedOut = error.code === 'timeout' && member.conn.connected;
    if (timedOut && !member.stalled && (member.conn.inFlight > 0 || recentlyAnswered)) {
      member.lastError = new GatewayError('timeout', `health check timed out while the ${this.#options.noun} was busy`);
      return;
    }
    // The timer fired far later than it was set for: the gateway itself did not run (CPU starved, a long pause), and
    // the answer may be sitting unread in the socket. That says nothing about the endpoint.
    if (timedOut && performance.now() - sentAt > 2 * timeoutMs) {
      member.lastError = new GatewayError('timeout', 'health check timed out while the gateway was not running (event loop late)');
      return;
    }
    member.failures++;
    member.lastError = error;
    const down = member.failures >= (this.#options.downAfterFailures ?? 2) || !member.conn.connected;
    // A ready endpoint that is still connected stays in rotation until `downAfterFailures` checks in a row have
    // failed: one missed check under load is not a dead endpoint (a dead one disconnects, and is down at once).
    if (down) this.#setState(member, 'down', error.message);
    else if (member.state !== 'ready') this.#setState(member, 'unhealthy', error.message);
  }

  stats(): PoolStats {
    const endpoints: EndpointStatus[] = [...this.#members.values()].map((m) => ({
      endpoint: m.conn.endpoint,
      ...(m.labels ? { labels: m.labels } : {}),
      state: m.state,
      inFlight: m.conn.inFlight,
      ...(m.lastHealth ? { lastHealth: m.lastHealth } : {}),
      ...(m.lastError ? { lastError: m.lastError.message } : {}),
      ...(m.failures > 0 ? { failedChecks: m.failures } : {}),
      ...(m.latencyEmaMs !== undefined ? { recentLatencyMs: m.latencyEmaMs } : {}),
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

  /** Stops health checks and new requests, lets requests in flight finish for up to `graceMs`, closes every connection. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#members.values()].map((m) => m.conn.close({ graceMs })));
    this.#events.emit({ type: 'closed', framework: this.framework });
    this.#events.close();
  }

  #setState(member: Member<C>, to: EndpointState, reason?: string): void {
    const from = member.state;
    if (from === to) return;
    member.state = to;
    const endpoint = member.conn.endpoint;
    this.#events.emit({ type: 'state', framework: this.framework, endpoint, from, to, ...(reason ? { reason } : {}) });
    const log = to === 'ready' || to === 'removed' ? this.#log.info : this.#log.warn;
    log({ event: 'pool.endpoint_state', endpoint, from, to, reason });
  }

  #onConnectionEvent(member: Member<C>, event: PoolEvent): void {
    if (this.#members.get(member.conn.endpoint) !== member) return;
    if (event.type === 'late_reply') {
      // slow but alive: an answer, even one its caller no longer waited for
      this.#lateReplies++;
      member.answeredAt = performance.now();
      member.stalled = false;
    }
    if (event.type === 'disconnected') this.#setState(member, 'down', 'disconnected');
    this.#events.emit(event);
    // An endpoint that (re)connects is checked at once rather than at the next interval.
    if (event.type === 'connected' && this.#started && !this.#closing) void this.checkHealth().catch(() => undefined);
  }
}
