// Worker side of the protocol: a ROUTER socket serving handlers registered by message type, concurrently,
// answering every message (unknown types, throwing handlers and bad frames get error replies).
import { context } from '@opentelemetry/api';
import { abortError, Deadline, unboundedController } from '../lib/abort.js';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, decodeRequest, encodeMessage, peekRequestId, type Codec, type Frame, type Limits } from '../protocol/codec.js';
import { GATEWAY_LEASE_ID, type LeaseClaims } from '../protocol/lease-token.js';
import { LeaseGuard } from '../protocol/lease-guard.js';
import { PROTOCOL_VERSION, type HealthResult, type ReplyHeader, type RequestHeader } from '../protocol/messages.js';
import { ShmReader } from '../shm/shm-reader.js';
import { startWorkerSpan, type RequestSpan } from '../telemetry/tracing.js';
import { RouterServer } from './router-server.js';

export interface HandlerContext {
  requestId: string | undefined;
  header: RequestHeader;
  /** Aborts when the request's `timeout_ms` passes or the server closes. */
  signal: AbortSignal;
}

export type Handler = (data: unknown, ctx: HandlerContext) => unknown;

export interface WorkerServerOptions {
  /** Where to bind: tcp://127.0.0.1:5555, tcp://127.0.0.1:* (any free port), ipc:///path. */
  endpoint: string;
  framework: string;
  model?: string;
  /** Requests handled at once; more get `overloaded`. */
  capacity?: number;
  limits?: Limits;
  log?: Logger;
  /** Whether health reports ready from the start (false: call setReady(true) once warmed). */
  ready?: boolean;
  /** Take tensors in shared memory from clients on this host: the shared-memory root (see src/shm/shm-reader.ts). */
  sharedMemoryDir?: string;
  /** The direct path: refuse requests (health aside) without a valid lease signed with this secret (lease-guard.ts). */
  leaseSecret?: string | Buffer;
}

const SDK = 'physical-ai-gateway-ts/0.1.0';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/** Serves registered handlers on a ROUTER socket. `await start()` binds; `close()` drains and unbinds. */
export class WorkerServer implements AsyncDisposable {
  readonly framework: string;
  readonly #options: WorkerServerOptions;
  readonly #handlers = new Map<string, Handler>();
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly #server: RouterServer;
  /** Aborts everything in flight on close: every waiting request listens to it, so it has no listener cap. */
  readonly #closeController = unboundedController();
  readonly #startedAt = performance.now();
  #ready: boolean;
  /** Handlers running now, health checks excluded. */
  #busy = 0;
  #closing: Promise<void> | undefined;
  #shm: ShmReader | undefined;
  readonly #lease: LeaseGuard | undefined;

  constructor(options: WorkerServerOptions) {
    this.#options = options;
    this.framework = options.framework;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#capacity = options.capacity ?? 64;
    this.#ready = options.ready ?? true;
    this.#log = (options.log ?? silentLogger).child({ component: 'zmq.worker', framework: options.framework });
    this.#server = new RouterServer({
      endpoint: options.endpoint,
      name: 'worker',
      limits: this.#limits,
      handle: (frames) => this.#handle(frames),
      log: this.#log,
    });
    this.register('health', () => this.#health());
    if (options.leaseSecret !== undefined) {
      const guard = (this.#lease = new LeaseGuard(options.leaseSecret, options.framework));
      this.register('lease.metrics', () => guard.collect());
      this.register('lease.revoke', (data) => guard.revoke((data as { not_before_ms?: unknown } | undefined)?.not_before_ms));
    }
  }

  /** Registers the handler for a message type (replacing any before it). Returns this for chaining. */
  register(type: string, handler: Handler): this {
    this.#handlers.set(type, handler);
    return this;
  }

  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  /** The bound endpoint (with the real port when bound to `*`). */
  get endpoint(): string {
    return this.#server.endpoint;
  }

  get inFlight(): number {
    return this.#server.inFlight;
  }

  /** Binds the socket and starts serving. Resolves with the bound endpoint. */
  async start(): Promise<string> {
    if (this.#closing) throw new GatewayError('unavailable', 'worker server is closed');
    if (this.#options.sharedMemoryDir !== undefined) this.#shm ??= new ShmReader(this.#options.sharedMemoryDir);
    const endpoint = await this.#server.start();
    this.#log.info({ event: 'worker.listening', endpoint });
    return endpoint;
  }

  /** Stops receiving, lets handlers in flight finish for up to `graceMs`, then closes the socket. Idempotent. */
  close({ graceMs = 1_000 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    await this.#server.drain(graceMs);
    this.#closeController.abort(new GatewayError('cancelled', 'worker server closed'));
    await this.#server.close();
    this.#shm?.close();
  }

  #health(): HealthResult {
    return {
      ready: this.#ready,
      framework: this.framework,
      model: this.#options.model ?? this.framework,
      capacity: this.#capacity,
      in_flight: this.#busy,
      uptime_s: (performance.now() - this.#startedAt) / 1000,
      version: PROTOCOL_VERSION,
      sdk: SDK,
      ...(this.#shm ? { shm_realm: this.#shm.realm } : {}),
    };
  }

  async #handle(frames: Buffer[]): Promise<Frame[]> {
    const receivedAt = performance.now();
    let codec: Codec = frames[0]?.[0] === 0x7b ? 'json' : 'binary';
    let requestId: string | undefined;
    let reply: ReplyHeader;
    let span: RequestSpan | undefined;
    let leased: { claims: LeaseClaims; type: string; computeMs: number } | undefined;
    try {
      if (this.#closing) throw new GatewayError('unavailable', 'the worker is shutting down');
      const decoded = decodeRequest(frames, this.#limits);
      codec = decoded.codec;
      const header = decoded.header;
      requestId = header.request_id;
      const decodedAt = performance.now();
      // Continues the trace of the gateway's client span (the header's traceparent); handlers run under it.
      span = startWorkerSpan({ framework: this.framework, type: header.type, requestId }, header, receivedAt);
      let data: unknown = header.data ?? {};
      let shmCheck: (() => void) | undefined;
      if (this.#lease && header.type !== 'health') {
        const claims = this.#lease.check(header.lease);
        const control = header.type === 'lease.metrics' || header.type === 'lease.revoke';
        if (control && claims.id !== GATEWAY_LEASE_ID) throw new GatewayError('unauthorized', `lease: ${header.type} is for the gateway only`, { path: '/type' });
        if (claims.id !== GATEWAY_LEASE_ID) leased = { claims, type: header.type, computeMs: 0 };
      }
      if (header.shm !== undefined) {
        if (!this.#shm) throw new GatewayError('bad_request', 'a shared-memory request, but this worker takes no shared memory', { path: '/shm' });
        ({ data, check: shmCheck } = this.#shm.resolve(data, header.shm));
      }
      const handler = this.#handlers.get(header.type);
      if (!handler) {
        throw new GatewayError('bad_request', `unknown message type '${header.type}'; this worker handles: ${[...this.#handlers.keys()].join(', ')}`, { path: '/type' });
      }
      if (header.type !== 'health' && this.#busy >= this.#capacity) {
        throw new GatewayError('overloaded', `worker is at capacity (${this.#capacity} requests)`);
      }
      const closeSignal = this.#closeController.signal;
      if (closeSignal.aborted) throw abortError(closeSignal, `request ${requestId ?? ''}`);
      if (header.timeout_ms !== undefined && !(header.timeout_ms - (decodedAt - receivedAt) > 0)) {
        throw new GatewayError('timeout', `request ${requestId ?? ''}: deadline passed`, { cause: new DOMException('deadline passed', 'TimeoutError') });
      }
      // The request's deadline is made only when used: when the handler reads ctx.signal or returns a promise.
      // A synchronous handler that ignores the signal (the demo policy) costs no timer, controller or listener.
      let deadline: Deadline | undefined;
      let settled = false;
      const timeoutMs = header.timeout_ms;
      const deadlineSignal = (): AbortSignal => {
        // Read after the handler ended: a signal that never aborts, as a disposed deadline's.
        if (settled && !deadline) return new AbortController().signal;
        return (deadline ??= new Deadline(timeoutMs === undefined ? Infinity : timeoutMs - (performance.now() - receivedAt), closeSignal)).signal;
      };
      const counted = header.type !== 'health';
      if (leased) this.#lease!.enter(leased.claims);
      if (counted) this.#busy++;
      let result: unknown;
      try {
        const ctx: HandlerContext = {
          requestId,
          header,
          get signal() {
            return deadlineSignal();
          },
        };
        const out = context.with(span.context, handler, undefined, data, ctx);
        if (isThenable(out)) {
          const signal = deadlineSignal();
          result = await new Promise((resolve, reject) => {
            // The handler gets the signal; a handler that ignores it is still cut off at the deadline.
            const onAbort = () => reject(abortError(signal, 'handler'));
            if (signal.aborted) return onAbort();
            signal.addEventListener('abort', onAbort, { once: true });
            const done = () => signal.removeEventListener('abort', onAbort);
            out.then(
              (value) => {
                done();
                resolve(value);
              },
              (err: unknown) => {
                done();
                reject(err);
              },
            );
          });
        } else {
          result = out;
        }
      } finally {
        settled = true;
        deadline?.dispose();
        if (counted) this.#busy--;
        if (leased) this.#lease!.leave(leased.claims);
      }
      const doneAt = performance.now();
      if (leased) leased.computeMs = doneAt - decodedAt;
      // The client may have given up and reused its slot meanwhile: never answer from its new data.
      shmCheck?.();
      reply = {
        status: 'success',
        result,
        request_id: requestId,
        timestamp: Date.now() / 1000,
        version: PROTOCOL_VERSION,
        timing: { decode_ms: decodedAt - receivedAt, compute_ms: doneAt - decodedAt, total_ms: doneAt - receivedAt },
      };
      span.end('ok');
    } catch (err) {
      requestId ??= frames[0] ? peekRequestId(frames[0]) : undefined;
      reply = this.#errorReply(err, requestId, receivedAt);
      if (span) {
        const wire = reply.error;
        span.end(typeof wire === 'object' ? wire.code : 'internal', typeof wire === 'object' ? wire.message : wire);
      }
    }
    const encoded = this.#encode(reply, codec);
    const out = encoded.frames;
    reply = encoded.reply;
    if (leased) {
      // The gateway collects these (lease.metrics) so its dashboards count direct requests too.
      let requestBytes = 0;
      let responseBytes = 0;
      for (const f of frames) requestBytes += f.byteLength;
      for (const f of out) responseBytes += f.byteLength;
      const wire = reply.error;
      this.#lease!.record({
        lease: leased.claims.id, type: leased.type, outcome: reply.status === 'success' ? 'ok' : typeof wire === 'object' ? wire.code : 'worker_error',
        latency_ms: performance.now() - receivedAt, compute_ms: leased.computeMs, request_bytes: requestBytes, response_bytes: responseBytes,
      });
    }
    return out;
  }

  #errorReply(err: unknown, requestId: string | undefined, receivedAt: number): ReplyHeader {
    let error = toGatewayError(err);
    if (error.code === 'internal' && !(err instanceof GatewayError)) {
      // A handler's own exception is the worker's error, reported with its text.
      error = new GatewayError('worker_error', err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (error.code === 'worker_error' || error.code === 'internal') this.#log.warn({ event: 'worker.handler_failed', requestId, err });
    const wire = error.toWire();
    if (requestId !== undefined) wire.request_id = requestId;
    const total = performance.now() - receivedAt;
    return { status: 'error', error: wire, request_id: requestId, timestamp: Date.now() / 1000, version: PROTOCOL_VERSION, timing: { compute_ms: 0, total_ms: total } };
  }

  /** The reply's frames and the reply sent (its outcome is recorded): a result that cannot be encoded becomes a `worker_error` reply. */
  #encode(reply: ReplyHeader, codec: Codec): { frames: Frame[]; reply: ReplyHeader } {
    try {
      return { frames: encodeMessage(reply, codec), reply };
    } catch (err) {
      const refusal = this.#errorReply(new GatewayError('worker_error', `cannot encode the result: ${(err as Error).message}`), reply.request_id, performance.now());
      return { frames: encodeMessage(refusal, codec), reply: refusal };
    }
  }
}
