// One DEALER connection to one worker endpoint: many requests in flight, replies matched by request_id,
// a deadline and a signal on every request, and clean failure when the worker dies or restarts.
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { abortError, deferred, type Deferred } from '../lib/abort.js';
import { GatewayError, fromWireError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, decodeReply, encodeMessage, type Codec, type Frame, type Limits } from '../protocol/codec.js';
import { PROTOCOL_VERSION, type HealthResult, type ReplyHeader, type RequestHeader } from '../protocol/messages.js';
import type { Placement, ShmArena } from '../shm/shm-arena.js';
import { startClientSpan } from '../telemetry/tracing.js';
import { parseEndpoint } from './addresses.js';
import type { CurveClientKeys } from './curve-keys.js';
import { socketFrameLimit } from './router-server.js';
import { SendQueue } from './send-queue.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, type ClientStats, type OutgoingRequest, type PoolEvent, type Reply, type RequestOptions } from './types.js';

/** How many ended request ids are remembered to tell a late reply from a stray one. */
const ENDED_MEMORY = 4_096;
const EMPTY = Buffer.alloc(0);
/** Time given to replies already received when the connection drops, before the rest fail as unavailable. */
const DISCONNECT_GRACE_MS = 25;

export interface WorkerClientOptions {
  endpoint: string;
  /** Framework name, for events and logs. */
  framework?: string;
  /** Default deadline per request, ms. */
  timeoutMs?: number;
  /** Default codec for requests. `json` speaks to workers of the original design. */
  codec?: Codec;
  limits?: Limits;
  log?: Logger;
  /** ZMQ reconnect backoff: first interval and cap, ms. */
  reconnectIntervalMs?: number;
  reconnectMaxIntervalMs?: number;
  /** Outgoing messages queued per peer before requests fail with `overloaded` (ZMQ_SNDHWM). */
  sendHighWaterMark?: number;
  /**
   * CURVE: encrypt the connection and prove this client's key to the worker (Z85 keys: the worker's public key and
   * this client's pair). The client counts as connected once the handshake succeeds; a failed one (wrong server
   * key, or the worker refused our key) is logged and requests end with `unavailable` or `timeout`.
   */
  curve?: CurveClientKeys;
  /**
   * Same-host shared memory for large tensors (see src/shm/shm-arena.ts). Negotiated on the first request: the
   * client asks the worker (through a gateway: the worker behind it) for its `shm_realm` and uses the arena only
   * when it equals the arena's own; otherwise, and after any refusal that names `/shm`, it sends frames. The
   * arena is opened here and closed by `close()` (unless `keepSharedMemoryOpen`).
   */
  sharedMemory?: ShmArena;
  /** The arena belongs to the caller (shared by several clients): `close()` leaves it open. */
  keepSharedMemoryOpen?: boolean;
  /** Direct path: a lease token sent in every request's `lease` field (see src/protocol/lease-token.ts). */
  leaseToken?: string;
}

/** Whether shared memory is in use: unknown until negotiated, then on or off for the connection's life. */
export type ShmState = 'off' | 'unknown' | 'on';

interface Pending {
  requestId: string;
  reply: Deferred<Reply>;
  startedAt: number;
}

/** A request/reply client for one worker (REP or ROUTER). Construct, then `request()`; `close()` when done. */
export class WorkerClient implements AsyncDisposable {
  readonly endpoint: string;
  readonly framework: string;
  readonly #timeoutMs: number;
  readonly #codec: Codec;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #options: WorkerClientOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #ended = new Set<string>();
  readonly #events = new EventStream<PoolEvent>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #socket: zmq.Dealer | undefined;
  #sends: SendQueue | undefined;
  #connected = false;
  #shmState: ShmState;
  #negotiating: Promise<void> | undefined;
  /** After a failed negotiation, the next one waits until then (performance.now()): frames meanwhile. */
  #negotiateAfter = 0;
  #closing: Promise<void> | undefined;
  #stats = { sent: 0, replies: 0, errors: 0, timeouts: 0, lateReplies: 0, unmatchedReplies: 0 };

  constructor(options: WorkerClientOptions) {
    parseEndpoint(options.endpoint);
    this.endpoint = options.endpoint;
    this.framework = options.framework ?? '';
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#codec = options.codec ?? 'binary';
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#log = (options.log ?? silentLogger).child({ component: 'zmq.client', endpoint: options.endpoint });
    this.#options = options;
    this.#shmState = options.sharedMemory ? 'unknown' : 'off';
  }

  /** Shared memory: `on` once negotiated with a worker on the same memory, `off` without it or after a fall-back. */
  get sharedMemoryState(): ShmState {
    return this.#shmState;
  }

  /** Asks the worker for its realm, once at a time; a failed ask leaves the state unknown (frames meanwhile). */
  #negotiate(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const arena = this.#options.sharedMemory!;
    return (this.#negotiating ??= (async () => {
      try {
        const realm = arena.open();
        const health = await this.health({ timeoutMs, ...(signal ? { signal } : {}) });
        if (this.#shmState !== 'unknown') return;
        this.#shmState = health.shm_realm === realm ? 'on' : 'off';
        this.#log.info({ event: 'shm.negotiated', state: this.#shmState, realm, workerRealm: health.shm_realm ?? null });
      } catch (err) {
        // A worker that does not answer yet: frames for a second, then ask again (not on every request).
        this.#negotiateAfter = performance.now() + 1_000;
        this.#log.warn({ event: 'shm.negotiation_failed', err });
      } finally {
        this.#negotiating = undefined;
      }
    })());
  }

  /** Turns shared memory off for this connection after the worker refused it. */
  #fallBack(err: GatewayError): void {
    if (this.#shmState === 'off') return;
    this.#shmState = 'off';
    this.#log.warn({ event: 'shm.fallback', code: err.code, path: err.path, message: err.message });
  }

  /** Opens the socket and starts connecting (ZMQ connects in the background). Idempotent; `request()` calls it. */
  start(): void {
    if (this.#socket || this.#closing) return;
    const socket = new zmq.Dealer({
      linger: 0,
      sendTimeout: 0,
      sendHighWaterMark: this.#options.sendHighWaterMark ?? 1_000,
      reconnectInterval: this.#options.reconnectIntervalMs ?? 100,
      reconnectMaxInterval: this.#options.reconnectMaxIntervalMs ?? 2_000,
      maxMessageSize: socketFrameLimit(this.#limits),
      ...(this.#options.curve ? { curveServerKey: this.#options.curve.serverKey, curvePublicKey: this.#options.curve.publicKey, curveSecretKey: this.#options.curve.secretKey } : {}),
    });
    this.#socket = socket;
    this.#sends = new SendQueue(socket);
    void this.#watch(socket);
    socket.connect(this.endpoint);
    void this.#receive(socket);
  }

  /** True while a connection to the worker is up (from the socket's monitor events). */
  get connected(): boolean {
    return this.#connected;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /** State events: connected, disconnected, reconnect, late_reply. */
  events(): AsyncIterable<PoolEvent> {
    return this.#events;
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    return this.#events.on(listener);
  }

  /**
   * Sends one request and resolves with the worker's successful reply. Rejects with a GatewayError:
   * the worker's error code for error replies, `timeout` when the deadline passes, `cancelled` when the
   * caller aborts, `unavailable` when the worker disconnects or the client is closed.
   */
  async request(req: OutgoingRequest, opts: RequestOptions = {}): Promise<Reply> {
    const arena = this.#options.sharedMemory;
    // A request that carries its own `shm` field (forwarded as it came) is not placed again: one field per request.
    if (!arena || req.type === 'health' || req.data === undefined || req.shm !== undefined) return this.#request(req, opts, undefined);
    // One deadline for the whole call: negotiation and a fall-back retry spend from the request's own budget.
    const startedAt = performance.now();
    const budgetMs = opts.timeoutMs ?? this.#timeoutMs;
    const left = (): RequestOptions => ({ ...opts, timeoutMs: budgetMs - (performance.now() - startedAt) });
    if (this.#shmState === 'unknown' && performance.now() >= this.#negotiateAfter) await this.#negotiate(budgetMs, opts.signal);
    const placement = this.#shmState === 'on' && !this.#closing ? arena.place(req.data) : undefined;
    if (!placement) return this.#request(req, left(), undefined);
    try {
      return await this.#request({ ...req, data: placement.data, shm: placement.shm }, left(), placement);
    } catch (err) {
      // A worker that cannot reach our memory (another host behind the gateway) names /shm: send frames from now on.
      if (!(err instanceof GatewayError) || !err.path?.startsWith('/shm')) throw err;
      this.#fallBack(err);
      placement.release();
      return this.#request(req, left(), undefined);
    } finally {
      placement.release();
    }
  }

  async #request(req: OutgoingRequest, opts: RequestOptions, placement: Placement | undefined): Promise<Reply> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const parent = opts.signal;
    if (this.#closing) throw new GatewayError('unavailable', `client for ${this.endpoint} is closed`);
    if (parent?.aborted) throw abortError(parent, `request to ${this.endpoint}`);
    if (!(timeoutMs > 0)) throw new GatewayError('timeout', `request to ${this.endpoint}: no time left (timeoutMs ${timeoutMs})`);
    this.start();
    const requestId = randomUUID();
    const lease = this.#options.leaseToken;
    const header: RequestHeader = {
      ...req,
      ...(lease !== undefined && req.lease === undefined ? { lease } : {}),
      request_id: requestId,
      timestamp: Date.now() / 1000,
      version: PROTOCOL_VERSION,
      timeout_ms: timeoutMs,
    };
    // The hop to the worker is a client span; its context replaces the caller's traceparent in the header.
    const span = startClientSpan(header, { framework: this.framework, endpoint: this.endpoint, requestId });
    let frames: Frame[];
    try {
      frames = encodeMessage(header, opts.codec ?? this.#codec);
    } catch (err) {
      span.end('bad_request');
      throw err instanceof GatewayError ? err : new GatewayError('bad_request', `cannot encode request: ${(err as Error).message}`, { cause: err });
    }
    const pending: Pending = { requestId, reply: deferred<Reply>(), startedAt: performance.now() };
    this.#pending.set(requestId, pending);
    // One timer and (when the caller passed a signal) one listener per request, both removed on every exit.
    const timer = setTimeout(
      () => this.#end(requestId, new GatewayError('timeout', `no reply from the worker at ${this.endpoint} within ${timeoutMs} ms`)),
      Math.ceil(timeoutMs),
    );
    const onAbort = parent && (() => this.#end(requestId, abortError(parent, `request to the worker at ${this.endpoint}`)));
    if (onAbort) parent.addEventListener('abort', onAbort, { once: true });
    try {
      // Queued, not sent here: it goes out with the other messages of this turn (send-queue.ts). A refusal
      // (EAGAIN: the worker's queue is full) ends this request at the flush.
      frames.unshift(EMPTY);
      this.#stats.sent++;
      this.#sends!.send(frames, (err) => {
        this.#stats.sent--;
        const error =
          err.code === 'EAGAIN'
            ? new GatewayError('overloaded', `send queue to ${this.endpoint} is full`, { cause: err })
            : new GatewayError('unavailable', `cannot send to ${this.endpoint}: ${err.message}`, { cause: err });
        this.#end(requestId, error);
      });
      let reply = await pending.reply.promise;
      if (placement) reply = { ...reply, result: placement.readResult(reply.result) };
      span.end('ok');
      return reply;
    } catch (err) {
      span.end(err instanceof GatewayError ? err.code : 'internal', (err as Error).message);
      throw err;
    } finally {
      clearTimeout(timer);
      if (onAbort) parent.removeEventListener('abort', onAbort);
    }
  }

  inference(data: unknown, opts?: RequestOptions): Promise<Reply> {
    return this.request({ type: 'inference', data }, opts);
  }

  train(data: unknown, opts?: RequestOptions): Promise<Reply> {
    return this.request({ type: 'train', data }, opts);
  }

  command(data: unknown, opts?: RequestOptions): Promise<Reply> {
    return this.request({ type: 'command', data }, opts);
  }

  /** Asks the worker whether it is ready (model loaded and warmed). */
  async health(opts?: RequestOptions): Promise<HealthResult> {
    const reply = await this.request({ type: 'health', data: {} }, opts);
    const result = reply.result as Partial<HealthResult> | undefined;
    if (!result || typeof result.ready !== 'boolean') {
      throw new GatewayError('worker_error', `health reply from ${this.endpoint} has no boolean 'ready'`);
    }
    return result as HealthResult;
  }

  stats(): ClientStats {
    const { sent, replies, errors, timeouts, lateReplies, unmatchedReplies } = this.#stats;
    return { endpoint: this.endpoint, inFlight: this.#pending.size, sent, replies, errors, timeouts, lateReplies, unmatchedReplies, connected: this.#connected };
  }

  /**
   * Stops new requests, lets in-flight ones finish for up to `graceMs`, rejects the rest with `cancelled`,
   * and closes the socket. Idempotent: a second call returns the same promise.
   */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    if (graceMs > 0 && this.#pending.size > 0) {
      const all = Promise.allSettled([...this.#pending.values()].map((p) => p.reply.promise));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const id of [...this.#pending.keys()]) this.#end(id, new GatewayError('cancelled', `client for ${this.endpoint} closed`));
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#socket?.close();
    if (!this.#options.keepSharedMemoryOpen) this.#options.sharedMemory?.close();
    this.#connected = false;
    this.#events.close();
  }

  /** Ends a request once: settles it, forgets it, and remembers its id so a late reply is recognised. */
  #end(requestId: string, outcome: GatewayError | Reply): void {
    const pending = this.#pending.get(requestId);
    if (!pending) return;
    this.#pending.delete(requestId);
    this.#ended.add(requestId);
    if (this.#ended.size > ENDED_MEMORY) this.#ended.delete(this.#ended.values().next().value!);
    if (outcome instanceof GatewayError) {
      outcome.requestId ??= requestId;
      if (outcome.code === 'timeout') this.#stats.timeouts++;
      else this.#stats.errors++;
      pending.reply.reject(outcome);
    } else {
      this.#stats.replies++;
      pending.reply.resolve(outcome);
    }
  }

  async #receive(socket: zmq.Dealer): Promise<void> {
    try {
      for await (const message of socket) this.#onMessage(message);
    } catch (err) {
      if (!socket.closed) this.#log.error({ event: 'zmq.receive_failed', err });
    }
  }

  #onMessage(message: Buffer[]): void {
    // REP and ROUTER workers echo our empty delimiter; skip it.
    const frames = message[0]?.byteLength === 0 ? message.slice(1) : message;
    const now = performance.now();
    let header: ReplyHeader;
    let codec: Codec;
    let sizeBytes: number;
    try {
      ({ header, codec, sizeBytes } = decodeReply(frames, this.#limits));
    } catch (err) {
      this.#stats.unmatchedReplies++;
      this.#log.warn({ event: 'zmq.bad_reply', err });
      return;
    }
    const requestId = header.request_id;
    const pending = requestId === undefined ? undefined : this.#pending.get(requestId);
    if (!pending) {
      if (requestId !== undefined && this.#ended.has(requestId)) {
        this.#stats.lateReplies++;
        this.#events.emit({ type: 'late_reply', framework: this.framework, endpoint: this.endpoint, requestId });
      } else {
        this.#stats.unmatchedReplies++;
        this.#log.warn({ event: 'zmq.unmatched_reply', requestId });
      }
      return;
    }
    if (header.status !== 'success') {
      this.#end(pending.requestId, fromWireError(header.error, pending.requestId));
      return;
    }
    this.#end(pending.requestId, {
      header,
      result: header.result,
      timing: header.timing,
      codec,
      sizeBytes,
      roundTripMs: now - pending.startedAt,
      endpoint: this.endpoint,
    });
  }

  async #watch(socket: zmq.Dealer): Promise<void> {
    let attempt = 0;
    const curve = this.#options.curve;
    // With CURVE a connection carries requests only after the handshake; one failure is logged per streak.
    const upEvent = curve ? 'handshake' : 'connect';
    let handshakeFailureLogged = false;
    try {
      for await (const event of socket.events) {
        if (event.type === 'handshake:error:protocol' || event.type === 'handshake:error:auth' || event.type === 'handshake:error:other') {
          if (!handshakeFailureLogged) {
            handshakeFailureLogged = true;
            const refused = event.type === 'handshake:error:auth';
            this.#log.warn({
              event: 'zmq.curve_handshake_failed',
              framework: this.framework,
              serverKey: curve?.serverKey,
              publicKey: curve?.publicKey,
              reason: event.error.message,
              hint: refused ? 'the worker does not accept this client key' : 'check the worker public key (serverPublicKeyFile)',
            });
          }
        } else if (event.type === upEvent) {
          attempt = 0;
          handshakeFailureLogged = false;
          this.#connected = true;
          this.#events.emit({ type: 'connected', framework: this.framework, endpoint: this.endpoint });
        } else if (event.type === 'disconnect') {
          this.#connected = false;
          this.#events.emit({ type: 'disconnected', framework: this.framework, endpoint: this.endpoint });
          // Requests on the dead connection will get no reply: fail them now rather than at their deadline,
          // after a short grace so that replies already received (the monitor runs beside the data socket) are read first.
          const stranded = [...this.#pending.keys()];
          const timer = setTimeout(() => {
            this.#timers.delete(timer);
            for (const id of stranded) this.#end(id, new GatewayError('unavailable', `worker at ${this.endpoint} disconnected`));
          }, DISCONNECT_GRACE_MS);
          this.#timers.add(timer);
        } else if (event.type === 'connect:retry') {
          attempt++;
          this.#events.emit({ type: 'reconnect', framework: this.framework, endpoint: this.endpoint, attempt });
        }
      }
    } catch (err) {
      if (!socket.closed) this.#log.warn({ event: 'zmq.monitor_failed', err });
    }
  }
}
