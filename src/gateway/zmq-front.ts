// The gateway's ZMQ front door: a ROUTER socket speaking the worker protocol. The header names the framework
// (absent: the default one); tensors arrive as views on the received frames and go to the worker as the same
// bytes (the header is re-encoded, tensor bytes never are); the reply goes back in the caller's codec with the
// caller's request_id. Any bytes get an answer or are dropped; none stop the loop.
import { context } from '@opentelemetry/api';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, decodeRequest, encodeMessage, peekRequestId, type Codec, type Frame, type Limits } from '../protocol/codec.js';
import { PROTOCOL_VERSION, type ReplyHeader, type RequestHeader } from '../protocol/messages.js';
import type { Router } from '../router/router.js';
import type { GatewayMetrics, RequestObservation } from '../telemetry/metrics.js';
import { startServerSpan, type RequestSpan } from '../telemetry/tracing.js';
import { RouterServer } from '../zmq/router-server.js';
import { frameworkLabel, routeStages, successReply, tokenMatches, type RouteStages } from './front-door.js';

export interface ZmqFrontOptions {
  /** Where to bind, e.g. tcp://127.0.0.1:5550 or tcp://127.0.0.1:* (any free port). */
  endpoint: string;
  router: Router;
  limits?: Limits;
  log?: Logger;
  metrics?: GatewayMetrics;
  /** When set, `train` and `command` need `auth_token` in the header equal to it (non-loopback binds). */
  controlToken?: string;
  /** When true, `train` and `command` are refused (non-loopback bind without a token). */
  refuseControl?: boolean;
}

const CONTROL_TYPES: ReadonlySet<string> = new Set(['train', 'command']);

export class ZmqFront implements AsyncDisposable {
  readonly #options: ZmqFrontOptions;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #server: RouterServer;
  readonly #closeController = new AbortController();
  #closing: Promise<void> | undefined;
  #counts = { requests: 0, errors: 0, dropped: 0 };

  constructor(options: ZmqFrontOptions) {
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#log = (options.log ?? silentLogger).child({ component: 'gateway.zmq' });
    // Linger: replies queued at close still go out (briefly).
    this.#server = new RouterServer({
      endpoint: options.endpoint,
      name: 'ZMQ front door',
      limits: this.#limits,
      lingerMs: 500,
      handle: (frames) => this.#handle(frames),
      log: this.#log,
    });
  }

  get endpoint(): string {
    return this.#server.endpoint;
  }

  get inFlight(): number {
    return this.#server.inFlight;
  }

  stats(): { requests: number; errors: number; dropped: number; inFlight: number } {
    return { ...this.#counts, dropped: this.#counts.dropped + this.#server.dropped, inFlight: this.#server.inFlight };
  }

  /** Binds and starts serving; resolves with the bound endpoint (real port when bound to `*`). */
  async start(): Promise<string> {
    if (this.#closing) throw new GatewayError('unavailable', 'ZMQ front door is closed');
    const endpoint = await this.#server.start();
    this.#log.info({ event: 'zmq_front.listening', endpoint });
    return endpoint;
  }

  /** Stops receiving, lets requests in flight finish for up to `graceMs` (the router cancels the rest), closes the socket. Idempotent. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Waits for requests in flight (they end by reply, error or router close), up to `graceMs`. */
  drain(graceMs: number): Promise<void> {
    return this.#server.drain(graceMs);
  }

  async #shutdown(graceMs: number): Promise<void> {
    await this.drain(graceMs);
    this.#closeController.abort(new GatewayError('cancelled', 'the gateway is shutting down'));
    // Let the cancelled requests send their error replies, and the peers read them, before the socket goes.
    await this.drain(500);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await this.#server.close();
    this.#log.info({ event: 'zmq_front.closed' });
  }

  async #handle(frames: Buffer[]): Promise<Frame[]> {
    const receivedAt = performance.now();
    this.#counts.requests++;
    const { router, metrics } = this.#options;
    let codec: Codec = frames[0]![0] === 0x7b ? 'json' : 'binary';
    let requestId: string | undefined;
    let reply: ReplyHeader;
    let obs: RequestObservation | undefined;
    let span: RequestSpan | undefined;
    let framework = '';
    let copiedBytes = 0;
    let requestBytes = 0;
    let decodeMs: number | undefined;
    let stages: RouteStages | undefined;
    for (const f of frames) requestBytes += f.byteLength;
    try {
      if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
      const decoded = decodeRequest(frames, this.#limits);
      const decodedAt = performance.now();
      decodeMs = decodedAt - receivedAt;
      codec = decoded.codec;
      copiedBytes = decoded.copiedBytes;
      const header: RequestHeader = decoded.header;
      requestId = header.request_id;
      framework = header.framework ?? router.defaultFramework ?? '';
      const label = frameworkLabel(router, framework);
      obs = metrics?.requestStarted({ framework: label, transport: 'zmq', codec });
      span = startServerSpan({ framework: label, transport: 'zmq', codec, requestId }, header, receivedAt);
      this.#authorise(header);
      const result = await context.with(
        span.context,
        router.route, // with `router` as `this`: no closure per request
        router,
        { type: header.type, data: header.data, framework: header.framework, traceparent: header.traceparent, tracestate: header.tracestate },
        { signal: this.#closeController.signal, sharedSignal: true, timeoutMs: header.timeout_ms },
      );
      stages = routeStages(result, performance.now() - decodedAt);
      reply = successReply(result, requestId);
      this.#log.debug({ event: 'zmq_front.request', requestId, framework: result.framework, type: header.type, codec, ms: performance.now() - receivedAt });
    } catch (err) {
      const error = toGatewayError(err);
      requestId ??= peekRequestId(frames[0]!);
      this.#counts.errors++;
      if (!obs) metrics?.recordError({ framework: frameworkLabel(router, framework), transport: 'zmq', code: error.code });
      const level = error.code === 'internal' ? 'error' : 'debug';
      this.#log[level]({ event: 'zmq_front.request_failed', requestId, code: error.code, message: error.message, ...(error.code === 'internal' ? { err } : {}) });
      const wire = error.toWire();
      if (requestId !== undefined) wire.request_id = requestId;
      reply = { status: 'error', error: wire, request_id: requestId, timestamp: Date.now() / 1000, version: PROTOCOL_VERSION };
    }
    const encodeStart = performance.now();
    const out = this.#encode(reply, codec);
    const encodeMs = performance.now() - encodeStart;
    const outcome = reply.status === 'success' ? 'ok' : typeof reply.error === 'object' ? reply.error.code : 'internal';
    if (obs) {
      let responseBytes = 0;
      for (const f of out) responseBytes += f.byteLength;
      obs.end({
        outcome,
        requestBytes,
        responseBytes,
        copiedBytes,
        stagesMs: { decode: decodeMs, ...stages, encode: encodeMs },
      });
    }
    span?.end(outcome, outcome === 'ok' ? undefined : typeof reply.error === 'object' ? reply.error.message : undefined);
    return out;
  }

  #authorise(header: RequestHeader): void {
    if (!CONTROL_TYPES.has(header.type)) return;
    const { controlToken, refuseControl } = this.#options;
    if (refuseControl) throw new GatewayError('unauthorized', `'${header.type}' is refused on a non-loopback ZMQ front door without a configured token`);
    if (controlToken === undefined) return;
    if (!tokenMatches(header.auth_token, controlToken)) {
      throw new GatewayError('unauthorized', `'${header.type}' needs a valid 'auth_token' in the header on this front door`);
    }
  }

  /** The reply's frames; a reply that cannot be encoded becomes an `internal` error reply. */
  #encode(reply: ReplyHeader, codec: Codec): Frame[] {
    try {
      return encodeMessage(reply, codec);
    } catch (err) {
      const wire = new GatewayError('internal', `cannot encode the reply: ${(err as Error).message}`).toWire();
      reply.status = 'error';
      reply.error = wire;
      delete reply.result;
      return encodeMessage({ status: 'error', error: wire, request_id: reply.request_id, timestamp: Date.now() / 1000, version: PROTOCOL_VERSION }, codec);
    }
  }
}
