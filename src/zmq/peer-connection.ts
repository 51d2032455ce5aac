// What the connections to unmodified peer servers share (openpi's websocket server: backends/openpi-pool.ts; GR00T's
// ZMQ service: groot-pool.ts), as the `PoolConnection` of endpoint-pool.ts: both servers answer one request at a time
// and correlate by order (openpi) or by REQ/REP lockstep (GR00T), so each connection queues its requests in a
// `SerialLane` and never pipelines them; both take inference and health only, and drain their lane on close.
// No zeromq here: the openpi backend imports this module.
import { abortError, deferred, Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, type Limits } from '../protocol/codec.js';
import type { HealthResult, WorkerTiming } from '../protocol/messages.js';
import type { OutboundMappingSpec } from '../protocol/outbound-mapping.js';
import type { PoolConnection, PoolOptions } from './endpoint-pool.js';
import type { OutgoingRequest, PoolEvent, Reply } from './types.js';

/** The options of a pool of peer-server connections (the protocol's own come on top). */
export interface PeerPoolOptions extends PoolOptions {
  endpoints: readonly string[];
  limits?: Limits;
  /** How the standard observation becomes the peer's keys, and its action keys come back. */
  outbound: OutboundMappingSpec;
}

export const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);

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

  /** Resolves once every request queued now has ended, or after `graceMs`, whichever comes first. */
  async drain(graceMs: number): Promise<void> {
    if (graceMs > 0 && this.#waiting > 0) await this.run('drain', graceMs, [], () => Promise.resolve()).catch(() => undefined);
  }
}

/** Resolves with `p`, or rejects with the signal's GatewayError; the listener is removed either way. */
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

/** What one inference on a peer server gave: our result (with `action`), the peer's timing, the reply's size. */
export interface PeerAnswer {
  result: Record<string, unknown>;
  timing?: WorkerTiming | undefined;
  sizeBytes: number;
}

/**
 * The part of a peer-server connection that is the same for every peer protocol: the lane, the events, the request
 * types a peer takes, the reply shape and the draining close. A protocol adds its transport (`start`, `connected`,
 * `teardown`), its health check and one inference.
 */
export abstract class PeerConnection<O extends PeerPoolOptions = PeerPoolOptions> implements PoolConnection {
  readonly endpoint: string;
  protected readonly options: O;
  protected readonly limits: Limits;
  protected readonly log: Logger;
  /** Requests wait here and go one at a time. */
  protected readonly lane = new SerialLane();
  protected readonly events = new EventStream<PoolEvent>();
  readonly #close = new AbortController();
  #closed = false;

  /** `noun` names the server in messages ('openpi server'); `component` is the log's. */
  constructor(
    endpoint: string,
    options: O,
    readonly noun: string,
    component: string,
  ) {
    this.endpoint = endpoint;
    this.options = options;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.log = (options.log ?? silentLogger).child({ component, framework: options.framework, endpoint });
  }

  get inFlight(): number {
    return this.lane.size;
  }

  abstract get connected(): boolean;

  /** True once `close()` was called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** Aborts with `cancelled` when the connection closes: ends every wait in the lane and every exchange. */
  protected get closeSignal(): AbortSignal {
    return this.#close.signal;
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    return this.events.on(listener);
  }

  protected emit(type: 'connected' | 'disconnected'): void {
    this.events.emit({ type, framework: this.options.framework, endpoint: this.endpoint });
  }

  abstract start(): void;
  abstract health(opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<HealthResult>;
  /** One inference through the lane, within `timeoutMs` and `signal`. */
  protected abstract infer(data: unknown, timeoutMs: number, signal: AbortSignal | undefined): Promise<PeerAnswer>;
  /** Closes the transport (the lane has drained or been cancelled). */
  protected abstract teardown(): Promise<void>;

  async request(req: OutgoingRequest, { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<Reply> {
    const startedAt = performance.now();
    if (req.type === 'health') {
      const health = await this.health({ timeoutMs, signal });
      return this.#reply({ result: health, sizeBytes: 0 }, startedAt);
    }
    if (req.type !== 'inference') throw new GatewayError('bad_request', `the ${this.noun} at ${this.endpoint} takes inference requests only (got '${req.type}')`, { path: '/type' });
    if (this.#closed) throw new GatewayError('unavailable', `connection to ${this.endpoint} is closed`);
    return this.#reply(await this.infer(req.data, timeoutMs, signal), startedAt);
  }

  #reply({ result, timing, sizeBytes }: { result: unknown; timing?: WorkerTiming | undefined; sizeBytes: number }, startedAt: number): Reply {
    return {
      header: { status: 'success', result, ...(timing ? { timing } : {}) },
      result,
      timing,
      codec: 'binary',
      sizeBytes,
      roundTripMs: performance.now() - startedAt,
      endpoint: this.endpoint,
    };
  }

  async close({ graceMs }: { graceMs: number }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.lane.drain(graceMs);
    this.#close.abort(new GatewayError('cancelled', `connection to ${this.endpoint} closed`));
    await this.teardown();
    this.events.close();
  }
}
