// The HTTP front door on hono: framework requests in JSON (the original envelope or a bare observation) or
// msgpack with inline tensors, answered in the same encoding; status, readiness, OpenAPI and docs. No listen():
// server.ts serves it, tests call app.request().
import { randomUUID } from 'node:crypto';
import { context } from '@opentelemetry/api';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { GatewayError, toGatewayError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { DEFAULT_LIMITS, decodeMessage, encodeMessage, type Limits } from '../../protocol/codec.js';
import type { RequestHeader } from '../../protocol/messages.js';
import { validate } from '../../protocol/schemas.js';
import { retryAfterSeconds, type Router } from '../../router/router.js';
import type { GatewayMetrics, RequestObservation } from '../../telemetry/metrics.js';
import { startServerSpan, type RequestSpan } from '../../telemetry/tracing.js';
import { frameworkLabel, routeStages, successReply, tokenMatches, UNKNOWN_FRAMEWORK } from '../front-door.js';
import { DOCS_HTML } from './docs-page.js';
import { buildOpenApi } from './openapi.js';

/** What /metrics needs from a prom-client Registry. */
export interface MetricsRegistryLike {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface HttpAppOptions {
  router: Router;
  /** Largest request body, bytes; above it: 413 too_large. */
  bodyLimitBytes?: number;
  limits?: Limits;
  /** Bearer token for control endpoints (train, command, container control). */
  authToken?: string;
  /** Control endpoints need the token (true when listening on a non-loopback host). Defaults to `authToken !== undefined`. */
  requireAuth?: boolean;
  log?: Logger;
  /** Served at /metrics when given. */
  metricsRegistry?: MetricsRegistryLike;
  /** Request metrics (the telemetry module's observer); its registry is served at /metrics. */
  metrics?: GatewayMetrics;
  version?: string;
  /** Lets other modules add routes (e.g. container control); `requireToken` guards control routes. */
  extend?: (app: Hono, helpers: { requireToken: MiddlewareHandler }) => void;
}

type Encoding = 'json' | 'msgpack';
const MSGPACK_TYPES = new Set(['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack']);
const POST_TYPES = ['inference', 'train', 'command', 'status', 'health'] as const;
const CONTROL_TYPES: ReadonlySet<string> = new Set(['train', 'command']);

function encodingOf(c: Context): Encoding {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return MSGPACK_TYPES.has(type) ? 'msgpack' : 'json';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function contentType(encoding: Encoding): string {
  return encoding === 'msgpack' ? 'application/msgpack' : 'application/json';
}

function encodeBody(value: object, encoding: Encoding): Uint8Array {
  return encodeMessage(value, encoding)[0]!;
}

/** The caller's `x-request-id` (at most 128 characters), else a new one. */
export function requestIdOf(c: Context): string {
  return c.req.header('x-request-id')?.slice(0, 128) || randomUUID();
}

/** The JSON/msgpack error body `{error:{code,message,retryable,request_id,path?}}` with its status and headers. */
export function errorResponse(c: Context, err: unknown, requestId: string, encoding: Encoding = 'json'): Response {
  return errorReply(c, toGatewayError(err), requestId, encoding).response;
}

function errorReply(c: Context, error: GatewayError, requestId: string, encoding: Encoding): { response: Response; bytes: number } {
  const wire = { ...error.toWire(), request_id: requestId };
  const headers: Record<string, string> = { 'content-type': contentType(encoding), 'x-request-id': requestId };
  if (error.code === 'overloaded' || retryAfterSeconds(error) !== undefined) headers['retry-after'] = String(retryAfterSeconds(error) ?? 1);
  if (error.code === 'unauthorized') headers['www-authenticate'] = 'Bearer';
  const body = encodeBody({ error: wire }, encoding);
  return { response: c.body(body as Uint8Array<ArrayBuffer>, error.httpStatus as 400, headers), bytes: body.byteLength };
}

export function createHttpApp(options: HttpAppOptions): Hono {
  const { router, limits = DEFAULT_LIMITS, authToken, metrics } = options;
  const bodyLimitBytes = options.bodyLimitBytes ?? limits.maxMessageBytes;
  const requireAuth = options.requireAuth ?? authToken !== undefined;
  const log = (options.log ?? silentLogger).child({ component: 'gateway.http' });
  const registry = options.metricsRegistry ?? metrics?.registry;
  const app = new Hono();
  let openapi: Record<string, unknown> | undefined;

  /** Counts a request refused before its handler ran (token, body limit). */
  const recordRefused = (c: Context, code: string) => metrics?.recordError({ framework: frameworkLabel(router, c.req.param('name')), transport: 'http', code });

  const requireToken: MiddlewareHandler = async (c, next) => {
    if (!requireAuth) return next();
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (authToken === undefined || !match || !tokenMatches(match[1]!.trim(), authToken)) {
      recordRefused(c, 'unauthorized');
      return errorResponse(c, new GatewayError('unauthorized', 'this endpoint needs Authorization: Bearer <token>'), requestIdOf(c), encodingOf(c));
    }
    return next();
  };

  app.onError((err, c) => {
    const error = toGatewayError(err);
    if (error.code === 'internal') log.error({ event: 'http.unhandled', path: c.req.path, err });
    return errorResponse(c, error, requestIdOf(c), encodingOf(c));
  });
  // No code of the closed list means "no such route"; the status says it, the code says the request was wrong.
  app.notFound((c) => c.json({ error: { code: 'bad_request', message: `no route for ${c.req.method} ${c.req.path}; see /docs`, retryable: false, request_id: requestIdOf(c) } }, 404));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const notReady = router.notReady();
    const body = { ready: notReady.length === 0, frameworks: router.status().map((f) => ({ name: f.name, state: f.state, ready: f.ready })), not_ready: notReady };
    return c.json(body, notReady.length === 0 ? 200 : 503);
  });
  app.get('/v1/frameworks', (c) => c.json({ default: router.defaultFramework ?? null, frameworks: router.status() }));
  app.get('/v1/frameworks/:name', (c) => {
    const status = router.status().find((f) => f.name === c.req.param('name'));
    if (!status) return errorResponse(c, new GatewayError('unknown_framework', `unknown framework '${c.req.param('name')}'`), requestIdOf(c));
    return c.json(status);
  });
  app.get('/openapi.json', (c) => c.json((openapi ??= buildOpenApi({ version: options.version, controlNeedsToken: requireAuth }))));
  app.get('/docs', (c) => c.html(DOCS_HTML));
  app.get('/metrics', async (c) => {
    if (!registry) return c.text('metrics are not enabled on this gateway\n', 404);
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });

  const limit = bodyLimit({
    maxSize: bodyLimitBytes,
    onError: (c) => {
      recordRefused(c, 'too_large');
      return errorResponse(c, new GatewayError('too_large', `request body is larger than ${bodyLimitBytes} bytes`), requestIdOf(c), encodingOf(c));
    },
  });

  const handle = async (c: Context, type: string, hasBody: boolean): Promise<Response> => {
    const receivedAt = performance.now();
    const name = c.req.param('name')!;
    const encoding = encodingOf(c);
    const codec = encoding === 'msgpack' ? 'msgpack' : 'json';
    const label = frameworkLabel(router, name);
    let requestId = requestIdOf(c);
    // Every request is observed, an unknown framework under the `unknown` label.
    const obs: RequestObservation | undefined = metrics?.requestStarted({ framework: label, transport: 'http', codec });
    let span: RequestSpan | undefined;
    let requestBytes = 0;
    let copiedBytes = 0;
    let decodeMs: number | undefined;
    try {
      if (label === UNKNOWN_FRAMEWORK) throw new GatewayError('unknown_framework', `unknown framework '${name}' (configured: ${router.registry.names.join(', ')})`);
      let header: RequestHeader = { type, data: {} };
      if (hasBody) {
        const bytes = new Uint8Array(await c.req.arrayBuffer());
        const decodeStart = performance.now();
        requestBytes = bytes.byteLength;
        if (bytes.byteLength > bodyLimitBytes) throw new GatewayError('too_large', `request body is larger than ${bodyLimitBytes} bytes`);
        let body: Record<string, unknown>;
        if (bytes.byteLength === 0) body = {};
        else if (encoding === 'msgpack') {
          const decoded = decodeMessage([bytes], { ...limits, maxMessageBytes: Math.max(limits.maxMessageBytes, bodyLimitBytes), maxHeaderBytes: Math.max(limits.maxHeaderBytes, bodyLimitBytes) });
          body = decoded.header;
          copiedBytes = decoded.copiedBytes;
        } else {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
          } catch (err) {
            throw new GatewayError('bad_request', `body is not valid JSON: ${(err as Error).message}`, { path: '/', cause: err });
          }
          if (!isRecord(parsed)) throw new GatewayError('bad_request', 'body must be a JSON object (an envelope {type?, data, request_id?} or the data itself)', { path: '/' });
          body = parsed;
        }
        // The original envelope has `data`; anything else is the data itself (a bare observation).
        const envelope = 'data' in body ? body : { data: body };
        if (envelope.type !== undefined && envelope.type !== type) {
          throw new GatewayError('bad_request', `envelope type '${String(envelope.type)}' does not match the path's '${type}'`, { path: '/type' });
        }
        header = { ...envelope, type } as RequestHeader;
        if (typeof header.request_id === 'string') requestId = header.request_id;
        validate('request', header);
        if (header.framework !== undefined && header.framework !== name) {
          throw new GatewayError('bad_request', `envelope framework '${header.framework}' does not match the path's '${name}'`, { path: '/framework' });
        }
        decodeMs = performance.now() - decodeStart;
      }
      // The caller's trace context: the envelope's fields, else the W3C `traceparent`/`tracestate` HTTP headers.
      const traceparent = header.traceparent ?? c.req.header('traceparent');
      const tracestate = header.traceparent !== undefined ? header.tracestate : c.req.header('tracestate');
      span = startServerSpan({ framework: label, transport: 'http', codec, requestId }, { traceparent, tracestate }, receivedAt);
      const routeStart = performance.now();
      const result = await context.with(
        span.context,
        router.route, // with `router` as `this`: no closure per request
        router,
        { type, data: header.data ?? {}, framework: name, traceparent, tracestate },
        { signal: c.req.raw.signal, timeoutMs: header.timeout_ms },
      );
      const stages = routeStages(result, performance.now() - routeStart);
      const reply = successReply(result, requestId);
      const encodeStart = performance.now();
      const body = encodeBody(reply, encoding);
      const doneAt = performance.now();
      const totalMs = doneAt - receivedAt;
      obs?.end({
        outcome: 'ok',
        requestBytes,
        responseBytes: body.byteLength,
        copiedBytes,
        stagesMs: { decode: decodeMs, ...stages, encode: doneAt - encodeStart },
      });
      span.end('ok');
      log.debug({ event: 'http.request', requestId, framework: name, type, encoding, ms: totalMs });
      const serverTiming = [`gateway;dur=${totalMs.toFixed(3)}`, ...(result.timing ? [`worker;dur=${result.timing.total_ms.toFixed(3)}`] : [])].join(', ');
      return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'content-type': contentType(encoding), 'x-request-id': requestId, 'server-timing': serverTiming });
    } catch (err) {
      const error = toGatewayError(err);
      if (error.code === 'internal') log.error({ event: 'http.request_failed', requestId, framework: name, type, err });
      else log.debug({ event: 'http.request_failed', requestId, framework: name, type, code: error.code, message: error.message });
      // A request that failed before its span started (unknown framework, bad body) still gets one, from the HTTP headers.
      span ??= startServerSpan({ framework: label, transport: 'http', codec, requestId }, { traceparent: c.req.header('traceparent'), tracestate: c.req.header('tracestate') }, receivedAt);
      const encodeStart = performance.now();
      const { response, bytes } = errorReply(c, error, requestId, encoding);
      obs?.end({ outcome: error.code, requestBytes, responseBytes: bytes, copiedBytes, stagesMs: { decode: decodeMs, encode: performance.now() - encodeStart } });
      span.end(error.code, error.message);
      return response;
    }
  };

  for (const type of POST_TYPES) {
    const guard: MiddlewareHandler = CONTROL_TYPES.has(type) ? requireToken : (_c, next) => next();
    app.post(`/v1/frameworks/:name/${type}`, guard, limit, (c) => handle(c, type, true));
  }
  app.get('/v1/frameworks/:name/health', (c) => handle(c, 'health', false));
  app.get('/v1/frameworks/:name/status', (c) => handle(c, 'status', false));

  options.extend?.(app, { requireToken });
  return app;
}
