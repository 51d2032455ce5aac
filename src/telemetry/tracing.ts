// Spans of the gateway and W3C trace context in the wire envelope (`traceparent`/`tracestate` header fields).
// Uses @opentelemetry/api only: without a registered SDK every call here is the API's no-op, and a caller's
// traceparent still passes through unchanged to the worker.
import { context, createTraceState, INVALID_SPAN_CONTEXT, isSpanContextValid, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, SpanContext, Tracer, TracerProvider } from '@opentelemetry/api';
import { INSTRUMENTATION_NAME } from './metrics.js';
import type { Transport } from './metrics.js';

/** The two envelope fields that carry W3C trace context (a RequestHeader has both; so can an HTTP header map). */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** Span names used by the gateway. */
export const SERVER_SPAN_NAME = 'gateway.request';
export const CLIENT_SPAN_NAME = 'gateway.worker_request';
export const WORKER_SPAN_NAME = 'worker.request';

/** The message type whose hops start no trace of their own (periodic health probes would flood the exporter). */
const HEALTH_TYPE = 'health';

/** A span that records nothing, for a hop that is not traced; its context is the parent unchanged. */
const NOT_TRACED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const noopEnd = (): void => {};
/** What an unregistered global tracer provider delegates to (the API's no-op provider singleton). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * True once an SDK tracer provider is registered. Without one the span helpers skip the no-op span machinery
 * (its contexts and wrappers) and only carry the caller's trace context through.
 */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/** A RequestSpan that records nothing and carries `ctx`. */
function untraced(ctx: Context): RequestSpan {
  return { span: NOT_TRACED, context: ctx, end: noopEnd };
}

/** The gateway's tracer (a proxy: it starts recording once an SDK registers, see sdk.ts). */
export function getTracer(): Tracer {
  // trace.getTracer() allocates a new ProxyTracer per call; keep one per global provider (a new one after
  // trace.disable() and a re-registration, as tests and the SDK's shutdown do).
  const provider = trace.getTracerProvider();
  if (provider !== cachedProvider) {
    cachedProvider = provider;
    cachedTracer = provider.getTracer(INSTRUMENTATION_NAME);
  }
  return cachedTracer!;
}
let cachedProvider: TracerProvider | undefined;
let cachedTracer: Tracer | undefined;

/** Starts a span named `name` under `parentContext` (default: the active context). */
export function startRequestSpan(name: string, attributes: Attributes, parentContext: Context = context.active(), kind: SpanKind = SpanKind.INTERNAL): Span {
  return getTracer().startSpan(name, { kind, attributes }, parentContext);
}

/** True when s[from, to) is lower-case hex and not all zeros. */
function isHexId(s: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 48) continue; // '0'
    if (!((c > 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    nonZero = true;
  }
  return nonZero;
}

function isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Parses a W3C `traceparent` (and optional `tracestate`); undefined when absent or invalid. */
export function parseTraceparent(traceparent: string | undefined, tracestate?: string): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const tp = traceparent.trim();
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2): 55 characters; later versions may append "-...".
  if (tp.length < 55 || tp[2] !== '-' || tp[35] !== '-' || tp[52] !== '-') return undefined;
  if (!isHex(tp, 0, 2) || tp.startsWith('ff') || !isHex(tp, 53, 55)) return undefined;
  if (tp.length > 55 && (tp.startsWith('00') || tp[55] !== '-')) return undefined;
  if (!isHexId(tp, 3, 35) || !isHexId(tp, 36, 52)) return undefined;
  const spanContext: SpanContext = {
    traceId: tp.slice(3, 35),
    spanId: tp.slice(36, 52),
    traceFlags: parseInt(tp.slice(53, 55), 16),
    isRemote: true,
  };
  if (typeof tracestate === 'string' && tracestate.length > 0) spanContext.traceState = createTraceState(tracestate);
  return spanContext;
}

/** Formats a span context as a version-00 `traceparent`. */
export function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * Writes the span context of `ctx` (default: the active context) into `carrier.traceparent`/`tracestate`.
 * Leaves the carrier untouched when `ctx` holds no valid span context. Returns the carrier.
 */
export function injectTraceContext<C extends TraceCarrier>(carrier: C, ctx: Context = context.active()): C {
  const spanContext = trace.getSpanContext(ctx);
  if (!spanContext || !isSpanContextValid(spanContext)) return carrier;
  carrier.traceparent = formatTraceparent(spanContext);
  const state = spanContext.traceState?.serialize();
  if (state) carrier.tracestate = state;
  // `delete` would turn the header into a slow dictionary-mode object; the codecs drop undefined fields.
  else if (carrier.tracestate !== undefined) carrier.tracestate = undefined;
  return carrier;
}

/** A context holding the remote span context found in `carrier`, or `base` unchanged when there is none. */
export function extractTraceContext(carrier: TraceCarrier | undefined, base: Context = ROOT_CONTEXT): Context {
  const spanContext = parseTraceparent(carrier?.traceparent, carrier?.tracestate);
  return spanContext ? trace.setSpanContext(base, spanContext) : base;
}

/** A span started by the helpers below, with the context to run or propagate the request under. */
export interface RequestSpan {
  readonly span: Span;
  /** Context with this span active: pass it to the next hop (or `context.with`). */
  readonly context: Context;
  /** Sets `outcome` (`ok` or an error code), marks errors, ends the span. Later calls are ignored. */
  end(outcome: string, message?: string): void;
}

/**
 * `startedAt`: the span was given an explicit start time; the SDK then takes a millisecond `Date.now()` as the end
 * unless told otherwise, so the end is given as a `performance.now()` reading too (same clock as the start).
 */
function requestSpan(span: Span, ctx: Context, startedAt?: number): RequestSpan {
  let ended = false;
  return {
    span,
    context: ctx,
    end(outcome, message) {
      if (ended) return;
      ended = true;
      if (span.isRecording()) {
        span.setAttribute('outcome', outcome);
        if (outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? outcome });
      }
      span.end(startedAt === undefined ? undefined : performance.now());
    },
  };
}

export interface ServerSpanAttributes {
  framework: string;
  transport: Transport;
  codec: string;
  requestId?: string;
}

/** Time the span started, as a `performance.now()` reading (default: now). */
export type SpanStartTime = number | undefined;

/**
 * The front doors' span: a SERVER span continuing the caller's trace from `carrier` (the request header,
 * or `{ traceparent, tracestate }` from HTTP headers). Without an SDK this is a non-recording span that
 * still carries the caller's context, so injecting it forwards the caller's traceparent unchanged.
 */
export function startServerSpan(attrs: ServerSpanAttributes, carrier?: TraceCarrier, startTime?: SpanStartTime): RequestSpan {
  const parent = extractTraceContext(carrier, context.active());
  if (!tracingEnabled()) return untraced(parent);
  const span = getTracer().startSpan(
    SERVER_SPAN_NAME,
    {
      kind: SpanKind.SERVER,
      startTime,
      attributes: {
        framework: attrs.framework,
        transport: attrs.transport,
        codec: attrs.codec,
        ...(attrs.requestId === undefined ? {} : { request_id: attrs.requestId }),
      },
    },
    parent,
  );
  return requestSpan(span, trace.setSpan(parent, span), startTime);
}

export interface ClientSpanAttributes {
  framework: string;
  endpoint: string;
  requestId?: string;
}

/**
 * The ZMQ client's span around one hop to a worker: a CLIENT span whose parent is `parent`, else the active
 * span (the front door runs the request under `context.with(serverSpan.context, ...)`), else the trace context
 * already in `header` (forwarded from the caller), else none. Writes the span's context
 * into `header.traceparent`/`tracestate` so the worker continues the same trace.
 */
/**
 * Runs `fn` outside any trace: background work started while a request's span is active (a pool's health checks
 * during an on-demand start) must not become children of that request.
 */
export function outsideTrace<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}

export function startClientSpan(header: TraceCarrier & { type?: string }, attrs: ClientSpanAttributes, parent?: Context): RequestSpan {
  let parentCtx = parent;
  let fromHeader = false;
  if (!parentCtx) {
    const active = context.active();
    const activeSpan = trace.getSpanContext(active);
    fromHeader = !(activeSpan && isSpanContextValid(activeSpan));
    parentCtx = fromHeader ? extractTraceContext(header, active) : active;
  }
  // A health probe outside any trace (the pool's periodic checks) is not traced: no root span every second.
  if (header.type === HEALTH_TYPE && !hasValidSpan(parentCtx)) return untraced(parentCtx);
  if (!tracingEnabled()) {
    // No SDK: the parent's context goes to the worker as it is (a header's own traceparent stays untouched).
    if (!fromHeader) injectTraceContext(header, parentCtx);
    return untraced(parentCtx);
  }
  const span = getTracer().startSpan(
    CLIENT_SPAN_NAME,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        framework: attrs.framework,
        'server.address': attrs.endpoint,
        ...(attrs.requestId === undefined ? {} : { request_id: attrs.requestId }),
      },
    },
    parentCtx,
  );
  const ctx = trace.setSpan(parentCtx, span);
  injectTraceContext(header, ctx);
  return requestSpan(span, ctx);
}

function hasValidSpan(ctx: Context): boolean {
  const sc = trace.getSpanContext(ctx);
  return sc !== undefined && isSpanContextValid(sc);
}

export interface WorkerSpanAttributes {
  framework: string;
  /** Message type (inference, train, ...). */
  type: string;
  requestId?: string;
}

/**
 * The worker's SERVER span for one request, continuing the trace in the request header (`traceparent`, written by
 * the gateway's client span); run the handler under `context` so its own spans are children. A health probe
 * without trace context gets a non-recording span.
 */
export function startWorkerSpan(attrs: WorkerSpanAttributes, header: TraceCarrier, startTime?: SpanStartTime): RequestSpan {
  if (!tracingEnabled()) return untraced(context.active());
  // A worker continues only the trace its caller sent on the wire: whatever context its receive loop happened to
  // start in (a worker started inside a request, in the same process) is not its caller.
  const parent = extractTraceContext(header, ROOT_CONTEXT);
  if (attrs.type === HEALTH_TYPE && !hasValidSpan(parent)) return untraced(parent);
  const span = getTracer().startSpan(
    WORKER_SPAN_NAME,
    {
      kind: SpanKind.SERVER,
      startTime,
      attributes: {
        framework: attrs.framework,
        'rpc.system': 'zeromq',
        'rpc.method': attrs.type,
        ...(attrs.requestId === undefined ? {} : { request_id: attrs.requestId }),
      },
    },
    parent,
  );
  return requestSpan(span, trace.setSpan(parent, span), startTime);
}
