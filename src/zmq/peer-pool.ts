// The pool half shared by the backends that speak a peer's protocol to an unmodified peer server (openpi's websocket
// server: src/backends/openpi-pool.ts; GR00T's ZMQ service: groot-pool.ts): endpoints added and removed at run time,
// least-in-flight choice among ready ones, periodic health checks, the same typed state events as WorkerPool (so the
// router's readiness and framework state work unchanged), and a draining close. What differs per protocol lives
// behind `PeerConnection`. Also `SerialLane`: both peer servers answer one request at a time and correlate by order
// (openpi) or by REQ/REP lockstep (GR00T), so each connection queues its requests and never pipelines them.
// No zeromq here: the openpi backend imports this module.
import { abortError, deferred, Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { whenReadyEvent } from './ready-event.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { HealthResult } from '../protocol/messages.js';
import type { EndpointState, EndpointStatus, OutgoingRequest, PoolEvent, PoolStats, Reply, RequestOptions } from './types.js';

/** One connection to one peer server endpoint. Constructors do no I/O; `start()` connects. */
export interface PeerConnection {
  readonly endpoint: string;
  /** Requests queued or running on this connection. */
  readonly inFlight: number;
  /** True while the transport is up (websocket open and metadata read; ZMQ peer connected). */
  readonly connected: boolean;
  start(): void;
  /** Asks the peer whether it serves (openpi: /healthz or the open socket; GR00T: ping). Throws a GatewayError. */
  check(opts: { timeoutMs: number; signal?: AbortSignal }): Promise<HealthResult>;
  request(req: OutgoingRequest, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<Reply>;
  onEvent(listener: (event: PoolEvent) => void): () => void;
  close(opts: { graceMs: number }): Promise<void>;
}

/**
 * One request at a time, in arrival order. A request that gives up while waiting leaves the queue without
 * disturbing the others; `run` gets a signal that ends with the request's deadline, caller or lane close.
 */
export class SerialLane {
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;

  /** Requests queued or running. */
  get size(): number {
    return this.#waiting;
  }

  async run<T>(what: string, timeoutMs: number, signals: Array<AbortSignal | undefined>, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = new Deadline(timeoutMs, ...signals);
    const prev = this.#tail;
    const mine = deferred<void>();
    this.#tail = mine.promise;
    this.#waiting++;
    try {
      await waitFor(prev, deadline.signal, what);
      return await fn(deadline.signal);
    } finally {
      deadline.dispose();
      this.#waiting--;
      // Our turn passes on only after the one before ours ended (we may have left the queue early).
      void prev.then(() => mine.resolve());
    }
  }
}

/** Resolves with `p` (which never rejects), or rejects with the signal's GatewayError; the listener is removed either way. */
export function waitFor<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

export interface PeerPoolOptions {
  framework: string;
  endpoints?: readonly string[];
  /** Default request deadline, ms. */
  timeoutMs?: number;
  /** Time between health checks of each endpoint, ms (0 disables the periodic checks). */
  healthIntervalMs?: number;
  /** Deadline of one health check, ms. */
  healthTimeoutMs?: number;
  log?: Logger;
  /** Makes the connection for an endpoint (no I/O). */
  connect: (endpoint: string) => PeerConnection;
  /** For logs and messages, e.g. 'openpi'. */
  protocol: string;
}

interface Member {
  conn: PeerConnection;
  state: EndpointState;
  lastHealth?: HealthResult;
  lastError?: GatewayError;
  latencyEmaMs?: number;
  unsubscribe: () => void;
}

const PREFERENCE: readonly EndpointState[] = ['ready', 'connecting'];

/** A pool of peer-server connections with WorkerPool's surface (the router's `FrameworkPool`). */
export class PeerPool implements AsyncDisposable {
  readonly framework: string;
  readonly #options: PeerPoolOptions;
  readonly #members = new Map<string, Member>();
  readonly #events = new EventStream<PoolEvent>();
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closing: Promise<void> | undefined;
  #checking: Promise<EndpointStatus[]> | undefined;

  constructor(options: PeerPoolOptions) {
    this.framework = options.framework;
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: `peer.${options.protocol}`, framework: options.framework });
    for (const endpoint of options.endpoints ?? []) this.addEndpoint(endpoint);
  }

  async start({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    if (this.#started) return;
    this.#started = true;
    for (const m of this.#members.values()) m.conn.start();
    const interval = this.#options.healthIntervalMs ?? 1_000;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.checkHealth().catch(() => undefined), interval);
      this.#timer.unref();
    }
    await this.checkHealth({ signal });
  }

  addEndpoint(endpoint: string): void {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    if (this.#members.has(endpoint)) return;
    const conn = this.#options.connect(endpoint);
    const member: Member = { conn, state: 'connecting', unsubscribe: () => undefined };
    member.unsubscribe = conn.onEvent((event) => this.#onConnectionEvent(member, event));
    this.#members.set(endpoint, member);
    if (this.#started) conn.start();
    this.#events.emit({ type: 'endpoint_added', framework: this.framework, endpoint });
  }

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

  isReady(): boolean {
    for (const m of this.#members.values()) if (m.state === 'ready') return true;
    return false;
  }

  get inFlight(): number {
    let n = 0;
    for (const m of this.#members.values()) n += m.conn.inFlight;
    return n;
  }

  whenReady(signal: AbortSignal): Promise<void> {
    return whenReadyEvent(this, this.#closing !== undefined, signal);
  }

  /** Sends to the ready endpoint with the fewest requests queued. `unavailable` (or the peer's `unauthorized`) when none can take it. */
  async request(req: OutgoingRequest, opts: RequestOptions = {}): Promise<Reply> {
    if (this.#closing) throw new GatewayError('unavailable', `pool ${this.framework} is closed`);
    const member = this.#pick();
    if (!member) {
      const members = [...this.#members.values()];
      const refused = members.find((m) => m.lastError?.code === 'unauthorized');
      if (refused) throw new GatewayError('unauthorized', `the ${this.#options.protocol} server at ${refused.conn.endpoint} refused the gateway's token: ${refused.lastError!.message}`);
      const states = members.map((m) => `${m.conn.endpoint}: ${m.state}${m.lastError ? ` (${m.lastError.message})` : ''}`).join(', ');
      throw new GatewayError('unavailable', `framework '${this.framework}' has no ready ${this.#options.protocol} server (${states || 'no endpoints'})`);
    }
    if (!this.#started) member.conn.start();
    const reply = await member.conn.request(req, { timeoutMs: opts.timeoutMs ?? this.#options.timeoutMs ?? 2_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    member.latencyEmaMs = member.latencyEmaMs === undefined ? reply.roundTripMs : 0.9 * member.latencyEmaMs + 0.1 * reply.roundTripMs;
    return reply;
  }

  #pick(): Member | undefined {
    for (const state of PREFERENCE) {
      let best: Member | undefined;
      for (const m of this.#members.values()) {
        if (m.state !== state || !m.conn.connected) continue;
        if (!best || m.conn.inFlight < best.conn.inFlight) best = m;
      }
      if (best) return best;
    }
    return undefined;
  }

  checkHealth({ signal }: { signal?: AbortSignal } = {}): Promise<EndpointStatus[]> {
    return (this.#checking ??= this.#checkAll(signal).finally(() => (this.#checking = undefined)));
  }

  async #checkAll(signal: AbortSignal | undefined): Promise<EndpointStatus[]> {
    const timeoutMs = this.#options.healthTimeoutMs ?? 1_000;
    await Promise.all(
      [...this.#members.values()].map(async (member) => {
        try {
          const health = await member.conn.check({ timeoutMs, ...(signal ? { signal } : {}) });
          if (!this.#members.has(member.conn.endpoint) || this.#closing) return;
          member.lastHealth = health;
          member.lastError = undefined;
          this.#setState(member, health.ready ? 'ready' : 'connecting', health.ready ? undefined : 'connecting');
        } catch (err) {
          if (!this.#members.has(member.conn.endpoint) || this.#closing) return;
          const error = err instanceof GatewayError ? err : new GatewayError('unavailable', (err as Error).message);
          member.lastError = error;
          // Reachable but refusing us (a bad token) is unhealthy, with the server's words; unreachable is down.
          this.#setState(member, member.conn.connected || error.code === 'unauthorized' ? 'unhealthy' : 'down', error.message);
        }
      }),
    );
    return this.stats().endpoints;
  }

  stats(): PoolStats {
    const endpoints: EndpointStatus[] = [...this.#members.values()].map((m) => ({
      endpoint: m.conn.endpoint,
      state: m.state,
      inFlight: m.conn.inFlight,
      ...(m.lastHealth ? { lastHealth: m.lastHealth } : {}),
      ...(m.lastError ? { lastError: m.lastError.message } : {}),
      ...(m.latencyEmaMs !== undefined ? { recentLatencyMs: m.latencyEmaMs } : {}),
    }));
    return { framework: this.framework, inFlight: this.inFlight, ready: this.isReady(), endpoints, lateReplies: 0 };
  }

  events(): AsyncIterable<PoolEvent> {
    return this.#events;
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    return this.#events.on(listener);
  }

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

  #setState(member: Member, to: EndpointState, reason?: string): void {
    const from = member.state;
    if (from === to) return;
    member.state = to;
    const endpoint = member.conn.endpoint;
    this.#events.emit({ type: 'state', framework: this.framework, endpoint, from, to, ...(reason ? { reason } : {}) });
    const log = to === 'ready' || to === 'removed' ? this.#log.info : this.#log.warn;
    log({ event: 'peer.endpoint_state', endpoint, from, to, reason });
  }

  #onConnectionEvent(member: Member, event: PoolEvent): void {
    if (this.#members.get(member.conn.endpoint) !== member) return;
    if (event.type === 'disconnected') this.#setState(member, 'down', 'disconnected');
    this.#events.emit(event);
    // A peer that (re)connects is checked at once rather than at the next interval.
    if (event.type === 'connected' && this.#started && !this.#closing) void this.checkHealth().catch(() => undefined);
  }
}
