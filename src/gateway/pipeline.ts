// One request pipeline shared by every front door. A door turns its transport's bytes into a request header
// (decode) and the pipeline's reply header back into its own bytes (encode); everything in between happens here,
// once, in this order: admission (closing), authorisation of control types, decode (timed, its errors mapped like
// any other; it includes mapping a peer's observation to the standard one, protocol/observation-mapping.ts),
// metrics, server span, routing (deadline, framework, launch), stage timing, error mapping, encode (with the
// original ROBOTIS client's health status, protocol/original-health.ts).
//
// Adding a front door (openpi's websocket, GR00T's ZMQ protocol, ...):
//   1. a module under src/gateway/ that owns its socket or server and, per request, builds a `DoorRequest`: its
//      transport label, a `decode()` into a RequestHeader (tensors as views on the received bytes), the token the
//      transport carries if any, and an `encode()` of the ReplyHeader (success or error) into its own format;
//   2. `await pipeline.handle(request)` and send what it returns; stop taking requests on close and wait for
//      the ones in flight (see zmq-front.ts);
//   3. build it in src/build-gateway.ts (after the router, closed before it) and add it to the contract suite in
//      test/contract/ so the same behaviour is asserted through it.
//
// Observing exchanges (the recorder, src/recording/): an optional `observer` is asked `wants(framework, type)` once
// a request has decoded, and handed one `ExchangeRecord` after its reply is encoded: the decoded request data and the
// worker's result as they are (tensors stay views on the received bytes; nothing is copied here), the outcome and
// the stage timings. It runs on the request path, so it must only enqueue and return; it never throws into here.
import { context } from '@opentelemetry/api';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Codec } from '../protocol/codec.js';
import type { ExchangeRecord } from '../protocol/exchange.js';
import { PROTOCOL_VERSION, type ReplyHeader, type RequestHeader } from '../protocol/messages.js';
import { mapInferenceData, ROBOTIS_MAPPING, type ObservationMappingSpec } from '../protocol/observation-mapping.js';
import { healthSaysReady, isOriginalHealthCheck, originalHealthReply, type OriginalHealthReply } from '../protocol/original-health.js';
import type { RouteResult, Router } from '../router/router.js';
import type { GatewayMetrics, RequestObservation, Transport } from '../telemetry/metrics.js';
import { startServerSpan, type RequestSpan } from '../telemetry/tracing.js';
import type { AuthPolicy } from './auth.js';
import { frameworkLabel, routeStages, successReply, type RouteStages } from './front-door.js';

/** A decoded request as a door hands it to the pipeline. */
export interface DoorDecoded {
  header: RequestHeader;
  /** The codec the caller used (the reply uses the same). */
  codec: Codec;
  /** Tensor bytes the decode had to copy (misaligned inline data); 0 on the binary path. */
  copiedBytes: number;
}

/** What the pipeline tells a door's encoder beside the reply header. */
export interface ReplyContext {
  codec: Codec;
  /** Set when the reply is an error. */
  error?: GatewayError;
  /** Set on success. */
  result?: RouteResult;
  /** The request's id as the reply carries it. */
  requestId: string | undefined;
  /** Time from arrival to the start of encoding, ms. */
  elapsedMs: number;
}

export interface DoorRequest<Out> {
  transport: Transport;
  /** The codec before decoding (the door's best guess from the first bytes or the content type). */
  codec: Codec;
  /** Size of the request as received, bytes. */
  requestBytes: number;
  /** performance.now() when the bytes arrived. */
  receivedAt: number;
  /** The request id the transport carries (HTTP x-request-id); the header's request_id wins. */
  requestId?: string;
  /** Framework named by the transport (HTTP path); the header's, if any, must match. */
  framework?: string;
  /** Message type named by the transport (HTTP path); control types are then authorised before decoding. */
  type?: string;
  /** Token carried by the transport (HTTP `Authorization: Bearer`); the header's `auth_token` counts too. */
  token?: string;
  /** W3C trace context carried by the transport; the header's fields win. */
  trace?: { traceparent?: string; tracestate?: string };
  /** The caller's cancellation (client gone, door closing). */
  signal?: AbortSignal;
  /** True when `signal` is a long-lived door signal shared by every request (see RouteOptions). */
  sharedSignal?: boolean;
  /** Decodes and validates the request; throws GatewayError (`bad_request`, `too_large`). */
  decode(): DoorDecoded | Promise<DoorDecoded>;
  /** The request id of bytes that did not decode, when the door can find it. */
  peekRequestId?(): string | undefined;
  /** Encodes the reply in the door's own format; returns what to send and its size. */
  encode(reply: ReplyHeader | OriginalHealthReply, ctx: ReplyContext): { out: Out; bytes: number };
}

export type { ExchangeRecord };

/** Sees every decoded exchange (see the opening comment). Both calls run on the request path: keep them cheap. */
export interface PipelineObserver {
  wants(framework: string, type: string): boolean;
  exchange(record: ExchangeRecord): void;
}

/** Takes `train` requests as jobs (src/jobs/job-manager.ts): validates, queues, answers with the job's record. */
export interface TrainSubmitter {
  /** Whether the framework's `train` requests become jobs (else they pass to the worker as they are). */
  handles(framework: string | undefined): boolean;
  submit(framework: string | undefined, data: unknown): Promise<unknown>;
}

/** Message types that change a worker's state: they need the token whenever the door's policy says so. */
export const CONTROL_TYPES: ReadonlySet<string> = new Set(['train', 'command']);

export interface RequestPipelineOptions {
  router: Router;
  /** Auth policy per transport (a door's bind decides whether control needs a token). */
  auth: Partial<Record<Transport, AuthPolicy>>;
  /** Observation mapping per framework name (frameworks.<name>.observation); others get ROBOTIS_MAPPING. */
  mappings?: ReadonlyMap<string, ObservationMappingSpec>;
  metrics?: GatewayMetrics;
  log?: Logger;
  /** Sees each decoded exchange after its reply is encoded (the recorder). */
  observer?: PipelineObserver;
  /** When given, `train` requests become jobs here instead of being passed to the worker as they are. */
  jobs?: TrainSubmitter;
  /** Answers `lease` requests (the direct path's control plane); without it they go to the worker like any type. */
  leases?: LeaseIssuer;
}

/** The part of the lease service the pipeline uses (lease-service.ts). */
export interface LeaseIssuer {
  issue(framework: string | undefined): unknown;
}

export class RequestPipeline {
  readonly router: Router;
  readonly #auth: Partial<Record<Transport, AuthPolicy>>;
  readonly #metrics: GatewayMetrics | undefined;
  readonly #mappings: ReadonlyMap<string, ObservationMappingSpec>;
  readonly #log: Logger;
  readonly #observer: PipelineObserver | undefined;
  readonly #jobs: TrainSubmitter | undefined;
  readonly #leases: LeaseIssuer | undefined;
  #closing = false;

  constructor({ router, auth, mappings = new Map(), metrics, log = silentLogger, observer, jobs, leases }: RequestPipelineOptions) {
    this.#leases = leases;
    this.router = router;
    this.#jobs = jobs;
    this.#mappings = mappings;
    this.#auth = auth;
    this.#metrics = metrics;
    this.#observer = observer;
    this.#log = log.child({ component: 'gateway.pipeline' });
  }

  /** New requests are answered `unavailable` from now on (requests in flight go on). */
  stopAdmitting(): void {
    this.#closing = true;
  }

  /** Runs one request through every stage and returns the door's encoded reply. Never throws. */
  async handle<Out>(req: DoorRequest<Out>): Promise<Out> {
    const { router } = this;
    const metrics = this.#metrics;
    const { transport, receivedAt } = req;
    let codec = req.codec;
    let requestId = req.requestId;
    let framework = req.framework;
    let obs: RequestObservation | undefined;
    let span: RequestSpan | undefined;
    let copiedBytes = 0;
    let decodeMs: number | undefined;
    let stages: RouteStages | undefined;
    let result: RouteResult | undefined;
    let error: GatewayError | undefined;
    let originalHealth = false;
    // Set once the header decoded and the observer wants this exchange.
    let observed: { type: string; data: unknown } | undefined;
    try {
      if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
      // A transport that names the framework is observed from the first byte, so refusals count as requests too.
      if (framework !== undefined) obs = metrics?.requestStarted({ framework: frameworkLabel(router, framework), transport, codec });
      if (framework !== undefined && !router.registry.has(framework)) {
        throw new GatewayError('unknown_framework', `unknown framework '${framework}' (configured: ${router.registry.names.join(', ') || 'none'})`);
      }
      if (req.type !== undefined && CONTROL_TYPES.has(req.type)) this.#authorise(transport, req.type, req.token);
      const decodeStart = performance.now();
      const decoded = await req.decode();
      codec = decoded.codec;
      copiedBytes = decoded.copiedBytes;
      const header = decoded.header;
      if (typeof header.request_id === 'string') requestId = header.request_id;
      if (header.framework !== undefined && framework !== undefined && header.framework !== framework) {
        throw new GatewayError('bad_request', `envelope framework '${header.framework}' does not match the path's '${framework}'`, { path: '/framework' });
      }
      framework = header.framework ?? framework ?? router.defaultFramework;
      originalHealth = isOriginalHealthCheck(header, codec);
      // Every framework takes the standard observation; peers' observations are mapped here, once, for all doors,
      // with the framework's configured mapping (openpi, GR00T, ...; see observation-mapping.ts).
      const data = header.type === 'inference' ? mapInferenceData(header.data ?? {}, this.#mappings.get(framework!) ?? ROBOTIS_MAPPING) : (header.data ?? {});
      const decodedAt = performance.now();
      decodeMs = decodedAt - decodeStart;
      if (this.#observer?.wants(framework ?? '', header.type)) observed = { type: header.type, data };
      const label = frameworkLabel(router, framework);
      obs ??= metrics?.requestStarted({ framework: label, transport, codec });
      const traceparent = header.traceparent ?? req.trace?.traceparent;
      const tracestate = header.traceparent !== undefined ? header.tracestate : req.trace?.tracestate;
      span = startServerSpan({ framework: label, transport, codec, requestId }, { traceparent, tracestate }, receivedAt);
      if (req.type === undefined && CONTROL_TYPES.has(header.type)) this.#authorise(transport, header.type, header.auth_token ?? req.token);
      // The direct path's lease: answered by the gateway itself (the control plane), never by a worker.
      if (header.type === 'lease' && this.#leases) {
        result = { header: { status: 'success' }, result: this.#leases.issue(framework), timing: undefined, codec, sizeBytes: 0, roundTripMs: 0, endpoint: 'gateway', framework: framework! };
      } else result = header.type === 'train' && this.#jobs?.handles(framework) ? await this.#submitJob(framework, data, codec) : await context.with(
        span.context,
        router.route, // with `router` as `this`: no closure per request
        router,
        // `shm` (same-host shared memory) travels on as it came: descriptors and the lease key; no bytes here.
        header.shm === undefined ? { type: header.type, data, framework, traceparent, tracestate } : { type: header.type, data, framework, traceparent, tracestate, shm: header.shm },
        { signal: req.signal, sharedSignal: req.sharedSignal === true, timeoutMs: header.timeout_ms },
      );
      // The original client reads a not-ready framework from `status` alone: answer it with an error then.
      if (originalHealth && !healthSaysReady(result.result)) {
        result = undefined;
        throw new GatewayError('unavailable', `framework '${framework}' is not ready`);
      }
      stages = routeStages(result, performance.now() - decodedAt);
    } catch (err) {
      error = toGatewayError(err);
      requestId ??= req.peekRequestId?.();
      const fields = { event: 'request_failed', transport, requestId, framework, code: error.code, message: error.message };
      if (error.code === 'internal') this.#log.error({ ...fields, err });
      else this.#log.debug(fields);
    }

    const ours: ReplyHeader = result ? successReply(result, requestId) : errorReply(error!, requestId);
    const reply = originalHealth ? originalHealthReply(ours) : ours;
    const encodeStart = performance.now();
    let encoded: { out: Out; bytes: number };
    try {
      encoded = req.encode(reply, { codec, requestId, elapsedMs: encodeStart - receivedAt, ...(result ? { result } : { error: error! }) });
    } catch (err) {
      // A reply that cannot be encoded (a worker's result the codec refuses) becomes an `internal` error reply.
      result = undefined;
      error = new GatewayError('internal', `cannot encode the reply: ${(err as Error).message}`);
      this.#log.error({ event: 'reply_encode_failed', transport, requestId, err });
      encoded = req.encode(errorReply(error, requestId), { codec, requestId, error, elapsedMs: encodeStart - receivedAt });
    }
    const encodeMs = performance.now() - encodeStart;
    const outcome = error ? error.code : 'ok';
    const label = frameworkLabel(router, result?.framework ?? framework);
    if (metrics) {
      obs ??= metrics.requestStarted({ framework: label, transport, codec });
      obs.end({ outcome, framework: label, codec, requestBytes: req.requestBytes, responseBytes: encoded.bytes, copiedBytes, stagesMs: { decode: decodeMs, ...stages, encode: encodeMs } });
    }
    span ??= startServerSpan({ framework: label, transport, codec, requestId }, req.trace, receivedAt);
    span.end(outcome, error?.message);
    if (observed) {
      try {
        this.#observer!.exchange({
          receivedAt, transport, codec, framework: label, requestId, type: observed.type, data: observed.data, result: result?.result,
          outcome, errorMessage: error?.message, stagesMs: { decode: decodeMs, ...stages, encode: encodeMs },
          totalMs: encodeStart + encodeMs - receivedAt, requestBytes: req.requestBytes, responseBytes: encoded.bytes,
        });
      } catch (err) {
        this.#log.error({ event: 'observer_failed', requestId, err });
      }
    }
    return encoded.out;
  }

  /** A `train` request as a job: the reply's result is the job's record (answered at once, never after training). */
  async #submitJob(framework: string | undefined, data: unknown, codec: Codec): Promise<RouteResult> {
    const started = performance.now();
    const result = await this.#jobs!.submit(framework, data);
    const name = this.router.registry.resolve(framework).name;
    return { framework: name, result, header: { status: 'success', result }, timing: undefined, codec, sizeBytes: 0, roundTripMs: performance.now() - started, endpoint: 'gateway' };
  }

  #authorise(transport: Transport, type: string, token: string | undefined): void {
    const policy = this.#auth[transport];
    policy?.check(token, `'${type}' on the ${transport} front door`);
  }
}

/** The error reply envelope (the same fields on every door). */
export function errorReply(error: GatewayError, requestId: string | undefined): ReplyHeader {
  const wire = error.toWire();
  if (requestId !== undefined) wire.request_id = requestId;
  return { status: 'error', error: wire, request_id: requestId, timestamp: Date.now() / 1000, version: PROTOCOL_VERSION };
}
