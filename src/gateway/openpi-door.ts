// openpi's front door: its websocket protocol (openpi-client's WebsocketClientPolicy, the stock
// websocket_policy_server.py) on its own port, a thin adapter around the shared request pipeline (pipeline.ts).
//
//   connect ws://host:port/ (the configured framework, else the default) or /openpi/<framework>
//     with `Authorization: Api-Key <token>` (openpi-client's api_key; `Bearer` works too) when the door needs it
//   ← one binary frame: msgpack of the framework's metadata (config `frameworks.<name>.openpi.metadata`, default {})
//   → binary frame: msgpack-numpy observation   ← binary frame: {actions, <result fields>, policy_timing, server_timing}
//   GET /healthz → 200 OK\n (liveness without an upgrade, as the stock server)
//
// Errors: a TEXT frame, as openpi's client expects (it raises RuntimeError with the text); ours carries the same
// JSON error body as the HTTP door, `{"error": {code, message, retryable, request_id?, path?}}`. Unlike the stock
// server, which sends a traceback and closes with 1011, the connection stays open after a request's error: the
// error belongs to one observation (a bad key, a worker timeout, an overload), not to the session, and openpi's
// client has no reconnect, so closing would turn one bad request into the loss of the robot's policy client.
// The connection is closed only when the stream itself cannot go on: a message above the size limit (1009, by
// `ws` before it is buffered), too many requests queued on one connection (1008), the door closing (1001).
//
// Replies go out in request order (openpi correlates by order; there is no request id), so each connection
// handles its messages one at a time.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { openpiActions } from '../protocol/action-mapping.js';
import { DEFAULT_LIMITS, type Limits } from '../protocol/codec.js';
import { decodeOpenpi, encodeOpenpi } from '../protocol/openpi-msgpack.js';
import type { AuthPolicy } from './auth.js';
import type { RequestPipeline } from './pipeline.js';

/** Messages one connection may have queued before it is closed (openpi's client sends one and waits). */
const MAX_QUEUED_PER_CONNECTION = 8;

export interface OpenpiDoorOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  pipeline: RequestPipeline;
  /** The door's token rule (auth.ts); when it requires a token, every connection needs it. */
  auth: AuthPolicy;
  /** The framework behind path `/`; unset: the gateway's default. */
  framework?: string;
  /** The metadata map sent first on a connection to `framework`. */
  metadataFor?: (framework: string) => Record<string, unknown>;
  limits?: Limits;
  /** Longest time to receive the upgrade request's headers, ms. */
  headersTimeoutMs?: number;
  /** Open connections at most. */
  maxConnections?: number;
  log?: Logger;
}

type Outgoing = { data: Buffer; text: false } | { data: string; text: true };

export class OpenpiDoor implements AsyncDisposable {
  readonly #options: OpenpiDoorOptions;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #closeController = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #server: Server | undefined;
  #wss: WebSocketServer | undefined;
  #url: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: OpenpiDoorOptions) {
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#log = (options.log ?? silentLogger).child({ component: 'gateway.openpi' });
  }

  /** ws://host:port with the real port. */
  get url(): string {
    if (!this.#url) throw new GatewayError('internal', 'openpi door not started');
    return this.#url;
  }

  /** Listens; resolves with the door's ws:// URL. */
  async start(): Promise<string> {
    if (this.#closing) throw new GatewayError('unavailable', 'openpi door is closed');
    if (this.#url) return this.#url;
    const { host, port, headersTimeoutMs = 10_000, maxConnections = 1024 } = this.#options;
    // No compression (openpi's client turns it off) and the message limit enforced by `ws` while it reads.
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.#limits.maxMessageBytes, perMessageDeflate: false, clientTracking: true });
    const server = createServer({ headersTimeout: headersTimeoutMs, requestTimeout: Math.max(headersTimeoutMs, 30_000) }, (req, res) => {
      if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK\n');
        return;
      }
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('openpi door: connect with a websocket client (openpi-client WebsocketClientPolicy); GET /healthz for liveness\n');
    });
    server.maxConnections = maxConnections;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(wss, req, socket, head));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.close();
        reject(new GatewayError('unavailable', `cannot listen on ${host}:${port} (openpi door): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err }));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.#server = server;
    this.#wss = wss;
    const address = server.address() as AddressInfo;
    this.#url = `ws://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    this.#log.info({ event: 'openpi_door.listening', url: this.#url });
    return this.#url;
  }

  /** Stops taking connections and requests, lets requests in flight finish for up to `graceMs`, then closes every connection (1001). Idempotent. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= this.#shutdown(graceMs));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(graceMs: number): Promise<void> {
    const server = this.#server;
    const wss = this.#wss;
    if (!server || !wss) return;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#drain(graceMs);
    this.#closeController.abort(new GatewayError('cancelled', 'the gateway is shutting down'));
    await this.#drain(500);
    // Each client gets a close frame; one that does not answer it is cut off.
    const closed = [...wss.clients].map((ws) => new Promise<void>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      ws.once('close', () => resolve());
      const timer = setTimeout(() => ws.terminate(), 1_000);
      ws.once('close', () => clearTimeout(timer));
      ws.close(1001, 'the gateway is shutting down');
    }));
    await Promise.all(closed);
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    server.closeAllConnections();
    await stopped;
    this.#log.info({ event: 'openpi_door.closed' });
  }

  async #drain(graceMs: number): Promise<void> {
    if (this.#inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /** Routes, authorises and accepts (or refuses with an HTTP status) one websocket upgrade. */
  #upgrade(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { pipeline, auth } = this.#options;
    try {
      if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
      const path = new URL(req.url ?? '/', 'ws://door').pathname;
      const match = /^\/openpi\/([^/]+)\/?$/.exec(path);
      if (path !== '/' && !match) throw new GatewayError('bad_request', `no openpi route ${path}: connect to / or /openpi/<framework>`);
      const framework = match ? decodeURIComponent(match[1]!) : (this.#options.framework ?? pipeline.router.defaultFramework);
      if (framework === undefined || !pipeline.router.registry.has(framework)) {
        throw new GatewayError('unknown_framework', `unknown framework '${framework ?? ''}' (configured: ${pipeline.router.registry.names.join(', ') || 'none'})`);
      }
      auth.check(tokenOf(req), 'a connection to the openpi door');
      wss.handleUpgrade(req, socket, head, (ws) => this.#serve(ws, framework));
    } catch (err) {
      const error = toGatewayError(err);
      this.#log.debug({ event: 'openpi_door.upgrade_refused', code: error.code, message: error.message });
      const body = JSON.stringify({ error: error.toWire() });
      const extra = error.code === 'unauthorized' ? 'WWW-Authenticate: Api-Key\r\n' : '';
      socket.end(`HTTP/1.1 ${error.httpStatus} ${error.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
    }
  }

  /** One connection: the metadata frame, then each message answered in order. */
  #serve(ws: WebSocket, framework: string): void {
    const log = this.#log;
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();
    let prevTotalMs: number | undefined;
    ws.on('error', (err) => log.debug({ event: 'openpi_door.socket_error', framework, message: err.message }));
    ws.send(encodeOpenpi(this.#options.metadataFor?.(framework) ?? {}));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const receivedAt = performance.now();
      if (++queued > MAX_QUEUED_PER_CONNECTION) {
        ws.close(1008, `more than ${MAX_QUEUED_PER_CONNECTION} requests queued on one connection`);
        return;
      }
      const task = (chain = chain.then(async () => {
        const out = await this.#exchange(data, isBinary, framework, receivedAt, prevTotalMs);
        if (ws.readyState !== ws.OPEN) return;
        await new Promise<void>((resolve) => ws.send(out.data, { binary: !out.text }, () => resolve()));
        prevTotalMs = performance.now() - receivedAt;
      }).finally(() => queued--));
      this.#inFlight.add(task);
      void task.finally(() => this.#inFlight.delete(task));
    });
  }

  #exchange(data: Buffer, isBinary: boolean, framework: string, receivedAt: number, prevTotalMs: number | undefined): Promise<Outgoing> {
    const limits = this.#limits;
    return this.#options.pipeline.handle<Outgoing>({
      transport: 'openpi',
      codec: 'msgpack',
      requestBytes: data.byteLength,
      receivedAt,
      framework,
      signal: this.#closeController.signal,
      sharedSignal: true,
      decode: () => {
        if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
        if (!isBinary) throw new GatewayError('bad_request', 'a request is a binary frame of msgpack (openpi-client msgpack_numpy), not text', { path: '/' });
        const { value, copiedBytes } = decodeOpenpi(data, limits);
        if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
          throw new GatewayError('bad_request', 'the observation must be a map of named values', { path: '/' });
        }
        return { header: { type: 'inference', data: value, framework }, codec: 'msgpack', copiedBytes };
      },
      encode: (_reply, { error, result, requestId, elapsedMs }) => {
        if (error) {
          const wire = { ...error.toWire(), ...(requestId !== undefined ? { request_id: requestId } : {}) };
          const text = JSON.stringify({ error: wire });
          return { out: { data: text, text: true }, bytes: Buffer.byteLength(text) };
        }
        // openpi's own fields: policy_timing (the policy's compute) and server_timing (the server's, the previous
        // exchange's total from the second request on a connection).
        const policyMs = result!.timing?.compute_ms ?? result!.roundTripMs;
        const body = {
          ...openpiActions(result!.result),
          policy_timing: { infer_ms: policyMs },
          server_timing: { infer_ms: elapsedMs, ...(prevTotalMs !== undefined ? { prev_total_ms: prevTotalMs } : {}) },
        };
        const bytes = encodeOpenpi(body);
        return { out: { data: bytes, text: false }, bytes: bytes.byteLength };
      },
    });
  }
}

/** The token of an upgrade request: openpi-client's `Api-Key <key>`, or `Bearer <key>`. */
function tokenOf(req: IncomingMessage): string | undefined {
  const match = /^(?:Api-Key|Bearer)\s+(.+)$/i.exec(req.headers.authorization ?? '');
  return match ? match[1]!.trim() : undefined;
}
