// The HTTP front door on hono: a thin adapter around the shared request pipeline (../pipeline.ts) for framework
// requests in JSON (the original envelope or a bare observation) or msgpack with inline tensors, answered in the
// same encoding; plus status, readiness, OpenAPI and docs. No listen(): server.ts serves it, tests call app.request().
import { randomUUID } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { GatewayError, toGatewayError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { DEFAULT_LIMITS, decodeMessage, encodeMessage, parseJsonHeader, type Limits } from '../../protocol/codec.js';
import type { RequestHeader } from '../../protocol/messages.js';
import { validate } from '../../protocol/schemas.js';
import { retryAfterSeconds } from '../../router/router.js';
import type { GatewayMetrics } from '../../telemetry/metrics.js';
import type { AuthPolicy } from '../auth.js';
import type { DoorDecoded, RequestPipeline } from '../pipeline.js';
import { DOCS_HTML } from './docs-page.js';
import { buildOpenApi } from './openapi.js';

/** What /metrics needs from a prom-client Registry. */
export interface MetricsRegistryLike {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface HttpAppOptions {
  pipeline: RequestPipeline;
  /** Who may use control endpoints (train, command, container control) on this door. */
  auth: AuthPolicy;
  /** Largest request body, bytes; above it: 413 too_large. */
  bodyLimitBytes?: number;
  limits?: Limits;
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

/** A hono route path (`/v1/frameworks/:name/start`) as a RegExp matching concrete paths. */
function routePattern(path: string): RegExp {
  return new RegExp(`^${path.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}/?$`);
}

/**
 * A request id as an HTTP header value. The id comes from the client's envelope and may hold any Unicode; a header
 * takes Latin-1 only (undici throws on more, which surfaced as a 500). Printable ASCII passes as it is, anything else
 * is percent-encoded; the body keeps the id exactly.
 */
function headerSafeId(id: string): string {
  return /^[\x20-\x7e]*$/.test(id) ? id : encodeURIComponent(id);
}

/** The bearer token of the request, if any. */
function bearerOf(c: Context): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
  return match ? match[1]!.trim() : undefined;
}

/**
 * A request HTTP itself cannot take: no such route (404), a known path with another method (405, with `Allow`),
 * a body type other than JSON or msgpack (415). The code stays `bad_request` from the closed list (the wire
 * protocol has no routing codes); the HTTP status says which.
 */
export class HttpRequestError extends GatewayError {
  constructor(
    readonly status: 404 | 405 | 415,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super('bad_request', message);
  }
}

function errorReply(c: Context, error: GatewayError, requestId: string, encoding: Encoding): { response: Response; bytes: number } {
  const wire = { ...error.toWire(), request_id: requestId };
  const headers: Record<string, string> = { 'content-type': contentType(encoding), 'x-request-id': headerSafeId(requestId) };
  if (error instanceof HttpRequestError) Object.assign(headers, error.headers);
  if (error.code === 'overloaded' || retryAfterSeconds(error) !== undefined) headers['retry-after'] = String(retryAfterSeconds(error) ?? 1);
  if (error.code === 'unauthorized') headers['www-authenticate'] = 'Bearer';
  const body = encodeBody({ error: wire }, encoding);
  const status = error instanceof HttpRequestError ? error.status : error.httpStatus;
  return { response: c.body(body as Uint8Array<ArrayBuffer>, status as 400, headers), bytes: body.byteLength };
}

/** The content types a framework request body may have; none (an empty body) counts as JSON. */
function acceptedBodyType(c: Context): boolean {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/json' || type.endsWith('+json') || MSGPACK_TYPES.has(type);
}

/** The request header of a POST body: the original envelope (with `data`) or a bare observation, validated. */
function decodeBody(bytes: Uint8Array, encoding: Encoding, type: string, limits: Limits): DoorDecoded {
  let body: Record<string, unknown>;
  let copiedBytes = 0;
  if (bytes.byteLength === 0) body = {};
  else if (encoding === 'msgpack') {
    const decoded = decodeMessage([bytes], { ...limits, maxHeaderBytes: Math.max(limits.maxHeaderBytes, bytes.byteLength) });
    body = decoded.header;
    copiedBytes = decoded.copiedBytes;
  } else {
    // The ZMQ door's JSON parser: size, depth (scanned before parsing), strict UTF-8, then JSON.
    let parsed: unknown;
    try {
      parsed = parseJsonHeader(bytes, limits);
    } catch (err) {
      const error = err as GatewayError;
      throw error.code === 'bad_request' ? new GatewayError('bad_request', `body: ${error.message}`, { path: '/', cause: err }) : error;
    }
    if (!isRecord(parsed)) throw new GatewayError('bad_request', 'body must be a JSON object (an envelope {type?, data, request_id?} or the data itself)', { path: '/' });
    body = parsed;
  }
  // The original envelope has `data`; anything else is the data itself (a bare observation).
  const envelope = 'data' in body ? body : { data: body };
  if (envelope.type !== undefined && envelope.type !== type) {
    throw new GatewayError('bad_request', `envelope type '${String(envelope.type)}' does not match the path's '${type}'`, { path: '/type' });
  }
  const header = { ...envelope, type } as RequestHeader;
  validate('request', header);
  return { header, codec: encoding, copiedBytes };
}

export function createHttpApp(options: HttpAppOptions): Hono {
  const { pipeline, auth, limits = DEFAULT_LIMITS, metrics } = options;
  const router = pipeline.router;
  const bodyLimitBytes = options.bodyLimitBytes ?? limits.maxMessageBytes;
  const log = (options.log ?? silentLogger).child({ component: 'gateway.http' });
  const registry = options.metricsRegistry ?? metrics?.registry;
  const app = new Hono();
  let openapi: Record<string, unknown> | undefined;

  /** Runs a framework request through the pipeline; `body` reads and decodes it (absent: a GET without body). */
  const handle = (c: Context, type: string, readBody: (() => Promise<Uint8Array>) | undefined, refusal?: GatewayError): Promise<Response> => {
    const encoding = encodingOf(c);
    let requestBytes = Number(c.req.header('content-length')) || 0;
    return pipeline.handle<Response>({
      transport: 'http',
      codec: encoding,
      requestBytes,
      receivedAt: performance.now(),
      requestId: requestIdOf(c),
      framework: c.req.param('name'),
      type,
      token: bearerOf(c),
      trace: { traceparent: c.req.header('traceparent'), tracestate: c.req.header('tracestate') },
      signal: c.req.raw.signal,
      decode: async () => {
        if (refusal) throw refusal;
        if (!readBody) return { header: { type, data: {} }, codec: encoding, copiedBytes: 0 };
        const bytes = await readBody();
        requestBytes = bytes.byteLength;
        return decodeBody(bytes, encoding, type, { ...limits, maxMessageBytes: Math.max(limits.maxMessageBytes, bodyLimitBytes) });
      },
      encode: (reply, { error, result, requestId, elapsedMs }) => {
        const id = requestId ?? requestIdOf(c);
        if (error) {
          const { response, bytes } = errorReply(c, error, id, encoding);
          return { out: response, bytes };
        }
        const body = encodeBody(reply, encoding);
        const timing = result?.timing;
        const serverTiming = [`gateway;dur=${elapsedMs.toFixed(3)}`, ...(timing ? [`worker;dur=${timing.total_ms.toFixed(3)}`] : [])].join(', ');
        return { out: c.body(body as Uint8Array<ArrayBuffer>, 200, { 'content-type': contentType(encoding), 'x-request-id': headerSafeId(id), 'server-timing': serverTiming }), bytes: body.byteLength };
      },
    });
  };

  /** Guards HTTP-only control routes (container start/stop/list) with the door's auth policy. */
  const requireToken: MiddlewareHandler = async (c, next) => {
    try {
      auth.check(bearerOf(c), `${c.req.method} ${c.req.path}`);
    } catch (err) {
      return errorResponse(c, err, requestIdOf(c), encodingOf(c));
    }
    return next();
  };

  app.onError((err, c) => {
    const error = toGatewayError(err);
    if (error.code === 'internal') log.error({ event: 'http.unhandled', path: c.req.path, err });
    return errorResponse(c, error, requestIdOf(c), encodingOf(c));
  });
  // No code of the closed list means "no such route"; the status says it, the code says the request was wrong.
  // A known path with another method is 405 with the methods it takes; anything else is 404.
  app.notFound((c) => {
    const allowed = [...new Set(app.routes.filter((r) => r.method !== 'ALL' && routePattern(r.path).test(c.req.path)).map((r) => r.method))];
    const error = allowed.length > 0
      ? new HttpRequestError(405, `${c.req.method} is not allowed on ${c.req.path}; allowed: ${allowed.join(', ')}`, { allow: allowed.join(', ') })
      : new HttpRequestError(404, `no route for ${c.req.method} ${c.req.path}; see /docs`);
    return errorResponse(c, error, requestIdOf(c));
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const notReady = router.notReady();
    const body = { ready: notReady.length === 0, frameworks: router.status().map((f) => ({ name: f.name, state: f.state, ready: f.ready })), not_ready: notReady };
    return c.json(body, notReady.length === 0 ? 200 : 503);
  });
  // On a public bind, what the gateway tells about itself (worker endpoints, load, metrics) needs the token too;
  // Prometheus sends it with `authorization: { credentials: <token> }` in its scrape config.
  const requireTokenWhenPublic: MiddlewareHandler = async (c, next) => {
    try {
      auth.checkRead(bearerOf(c), `${c.req.method} ${c.req.path}`);
    } catch (err) {
      return errorResponse(c, err, requestIdOf(c), encodingOf(c));
    }
    return next();
  };
  app.use('/v1/frameworks', requireTokenWhenPublic);
  app.use('/v1/frameworks/:name', requireTokenWhenPublic);
  app.use('/metrics', requireTokenWhenPublic);
  app.get('/v1/frameworks', (c) => c.json({ default: router.defaultFramework ?? null, frameworks: router.status() }));
  app.get('/v1/frameworks/:name', (c) => {
    const status = router.status().find((f) => f.name === c.req.param('name'));
    if (!status) return errorResponse(c, new GatewayError('unknown_framework', `unknown framework '${c.req.param('name')}'`), requestIdOf(c));
    return c.json(status);
  });
  app.get('/openapi.json', (c) => c.json((openapi ??= buildOpenApi({ version: options.version, controlNeedsToken: auth.required }))));
  app.get('/docs', (c) => c.html(DOCS_HTML));
  app.get('/metrics', async (c) => {
    if (!registry) return c.text('metrics are not enabled on this gateway\n', 404);
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });

  for (const type of POST_TYPES) {
    // The body limits read the stream and stop at the limit: a too-large body is refused without being buffered.
    // A JSON body is one header, so the header limit applies to it (parsing a huge JSON text would stall the
    // event loop for every other request); msgpack bodies carry tensors and get the message limit.
    const tooLarge = (what: string, max: number) => (c: Context) => handle(c, type, undefined, new GatewayError('too_large', `${what} is larger than ${max} bytes`));
    const msgpackLimit = bodyLimit({ maxSize: bodyLimitBytes, onError: tooLarge('request body', bodyLimitBytes) });
    const jsonLimit = bodyLimit({ maxSize: Math.min(bodyLimitBytes, limits.maxHeaderBytes), onError: tooLarge('a JSON body (send tensors as application/msgpack)', Math.min(bodyLimitBytes, limits.maxHeaderBytes)) });
    const limit: MiddlewareHandler = (c, next) => (encodingOf(c) === 'json' ? jsonLimit : msgpackLimit)(c, next);
    app.post(`/v1/frameworks/:name/${type}`, limit, (c) =>
      acceptedBodyType(c)
        ? handle(c, type, async () => new Uint8Array(await c.req.arrayBuffer()))
        : handle(c, type, undefined, new HttpRequestError(415, `content-type '${c.req.header('content-type')}' is not accepted: send application/json or application/msgpack`)),
    );
  }
  app.get('/v1/frameworks/:name/health', (c) => handle(c, 'health', undefined));
  app.get('/v1/frameworks/:name/status', (c) => handle(c, 'status', undefined));

  options.extend?.(app, { requireToken });
  return app;
}
