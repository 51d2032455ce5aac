// The gateway as a client of an unmodified openpi policy server (openpi's websocket_policy_server.py, the protocol of
// openpi-client's WebsocketClientPolicy): a framework with `protocol: openpi` is served by these connections.
//
//   one websocket per endpoint (ws://host:port[/path], compression off): the server's first binary frame is its
//   metadata; after it each request is one msgpack-numpy frame answered by one frame, in order, with no request id,
//   so requests wait in a lane and go one at a time; a connection whose exchange was abandoned (deadline, cancel) is
//   dropped, since its late reply would be taken for the next request's; reconnects back off 100 ms doubling to 2 s.
//   health: the websocket open with its metadata read; while it is not, `GET /healthz` on the same host:port says
//   whether to reconnect now (the server is back) or the endpoint is down.
//   errors: a text frame (the server's traceback) → worker_error with the text; the connection closing mid-request →
//   unavailable; no reply in time → timeout; the upgrade refused with 401/403 → unauthorized.
//
// The observation goes out through the framework's outbound mapping (protocol/outbound-mapping.ts), `actions` comes
// back as `result.action` float32 [horizon, dof], and openpi's policy_timing / server_timing become `timing`.
import { request as httpRequest } from 'node:http';
import { WebSocket } from 'ws';
import { deferred, Deadline, type Deferred } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, type Limits } from '../protocol/codec.js';
import type { HealthResult, WorkerTiming } from '../protocol/messages.js';
import { decodeOpenpi, encodeOpenpi } from '../protocol/openpi-msgpack.js';
import { actionFromPeer, toPeerObservation, type OutboundMappingSpec } from '../protocol/outbound-mapping.js';
import { PeerPool, SerialLane, waitFor, type PeerConnection } from '../zmq/peer-pool.js';
import type { OutgoingRequest, PoolEvent, Reply } from '../zmq/types.js';

export interface OpenpiPoolOptions {
  framework: string;
  /** ws://host:port[/path] of each server. */
  endpoints: readonly string[];
  timeoutMs?: number;
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  limits?: Limits;
  log?: Logger;
  outbound: OutboundMappingSpec;
  /** Sent as `Authorization: Api-Key <key>`, as openpi-client does. */
  apiKey?: string;
}

export function createOpenpiPool(options: OpenpiPoolOptions): PeerPool {
  // The pool takes the common options as they are; the rest is this protocol's connection's.
  return new PeerPool({ ...options, protocol: 'openpi', connect: (endpoint) => new OpenpiConnection(endpoint, options) });
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** openpi's timing maps → ours: the policy's infer_ms is the compute, the server's infer_ms the total. */
function timingOf(reply: Record<string, unknown>): WorkerTiming | undefined {
  const policy = isMap(reply.policy_timing) ? num(reply.policy_timing.infer_ms) : undefined;
  const server = isMap(reply.server_timing) ? num(reply.server_timing.infer_ms) : undefined;
  if (policy === undefined && server === undefined) return undefined;
  return { compute_ms: policy ?? server!, total_ms: server ?? policy! };
}

type Frame = { data: Buffer; text: boolean };
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;

class OpenpiConnection implements PeerConnection {
  readonly endpoint: string;
  readonly #options: OpenpiPoolOptions;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #lane = new SerialLane();
  readonly #events = new EventStream<PoolEvent>();
  readonly #close = new AbortController();
  readonly #healthz: URL;
  #ws: WebSocket | undefined;
  /** Open and its metadata frame read. */
  #open = false;
  #metadata: Record<string, unknown> = {};
  #pending: Deferred<Frame> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #attempt = 0;
  #refused: GatewayError | undefined;
  #closed = false;

  constructor(endpoint: string, options: OpenpiPoolOptions) {
    this.endpoint = endpoint;
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#log = (options.log ?? silentLogger).child({ component: 'peer.openpi', framework: options.framework, endpoint });
    const url = new URL(endpoint);
    this.#healthz = new URL('/healthz', `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`);
  }

  get inFlight(): number {
    return this.#lane.size;
  }

  get connected(): boolean {
    return this.#open;
  }

  /** The server's metadata frame of the current connection. */
  get metadata(): Record<string, unknown> {
    return this.#metadata;
  }

  onEvent(listener: (event: PoolEvent) => void): () => void {
    return this.#events.on(listener);
  }

  start(): void {
    if (this.#ws || this.#retry || this.#closed) return;
    this.#connect();
  }

  #connect(): void {
    const headers: Record<string, string> = this.#options.apiKey ? { authorization: `Api-Key ${this.#options.apiKey}` } : {};
    const ws = new WebSocket(this.endpoint, { perMessageDeflate: false, maxPayload: this.#limits.maxMessageBytes, handshakeTimeout: 5_000, headers });
    this.#ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(ws, data, isBinary));
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0;
      this.#refused = status === 401 || status === 403 ? new GatewayError('unauthorized', `the openpi server at ${this.endpoint} refused the connection (HTTP ${status})`) : undefined;
      res.resume();
      req.destroy();
      this.#down(ws, `upgrade refused with HTTP ${status}`);
    });
    ws.on('error', (err) => {
      this.#log.debug({ event: 'openpi.socket_error', message: err.message });
      this.#down(ws, err.message);
    });
    ws.on('close', (code: number, reason: Buffer) => this.#down(ws, `closed (${code}${reason.byteLength ? ` ${reason.toString()}` : ''})`));
  }

  #onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    if (ws !== this.#ws) return;
    if (!this.#open) {
      // The first frame is the server's metadata.
      try {
        const { value } = decodeOpenpi(data, this.#limits);
        this.#metadata = isMap(value) ? value : {};
      } catch (err) {
        this.#log.warn({ event: 'openpi.bad_metadata', message: (err as Error).message });
        this.#metadata = {};
      }
      this.#open = true;
      this.#attempt = 0;
      this.#refused = undefined;
      this.#log.info({ event: 'openpi.connected', metadata: Object.keys(this.#metadata) });
      this.#events.emit({ type: 'connected', framework: this.#options.framework, endpoint: this.endpoint });
      return;
    }
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) pending.resolve({ data, text: !isBinary });
    else this.#log.warn({ event: 'openpi.unexpected_frame', bytes: data.byteLength });
  }

  /** The connection `ws` ended: fail its exchange, announce it, and reconnect after a backoff. Once per socket. */
  #down(ws: WebSocket, why: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    ws.removeAllListeners('message');
    ws.on('error', () => undefined);
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    const wasOpen = this.#open;
    this.#open = false;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(new GatewayError('unavailable', `the openpi server at ${this.endpoint} ${why} during the request`));
    if (wasOpen) this.#events.emit({ type: 'disconnected', framework: this.#options.framework, endpoint: this.endpoint });
    if (this.#closed) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.#attempt);
    this.#attempt++;
    this.#events.emit({ type: 'reconnect', framework: this.#options.framework, endpoint: this.endpoint, attempt: this.#attempt });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.#connect();
    }, delay);
  }

  /** `GET /healthz` on the server's port: true for 200. */
  #probe(timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    const deadline = new Deadline(timeoutMs, signal, this.#close.signal);
    return new Promise<boolean>((resolve) => {
      const req = httpRequest(this.#healthz, { method: 'GET', signal: deadline.signal }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    }).finally(() => deadline.dispose());
  }

  async check({ timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal }): Promise<HealthResult> {
    const framework = this.#options.framework;
    if (this.#open) return { ready: true, framework };
    if (this.#refused) throw this.#refused;
    if (this.#closed) throw new GatewayError('unavailable', `connection to ${this.endpoint} is closed`);
    if (!(await this.#probe(timeoutMs, signal))) {
      this.start();
      throw new GatewayError('unavailable', `the openpi server at ${this.endpoint} does not answer (GET ${this.#healthz.pathname})`);
    }
    // The server is up: connect now rather than at the end of the backoff.
    if (this.#retry) {
      clearTimeout(this.#retry);
      this.#retry = undefined;
    }
    this.start();
    return { ready: false, framework };
  }

  async request(req: OutgoingRequest, { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal }): Promise<Reply> {
    const startedAt = performance.now();
    if (req.type === 'health') {
      const health = await this.check({ timeoutMs, ...(signal ? { signal } : {}) });
      return this.#reply(health, undefined, startedAt, 0);
    }
    if (req.type !== 'inference') throw new GatewayError('bad_request', `an openpi server takes inference requests only (got '${req.type}')`, { path: '/type' });
    if (this.#closed) throw new GatewayError('unavailable', `connection to ${this.endpoint} is closed`);
    const { observation } = toPeerObservation(req.data, this.#options.outbound);
    const bytes = encodeOpenpi(observation);
    const what = `request to ${this.endpoint}`;
    const frame = await this.#lane.run(what, timeoutMs, [signal, this.#close.signal], async (s) => {
      const ws = this.#ws;
      if (!ws || !this.#open) throw new GatewayError('unavailable', `not connected to the openpi server at ${this.endpoint}`);
      const pending = (this.#pending = deferred<Frame>());
      ws.send(bytes, { binary: true });
      try {
        return await waitFor(pending.promise, s, what);
      } catch (err) {
        // No reply came: the reply that may still come would be taken for the next request's, so drop the connection.
        if (this.#pending === pending) this.#down(ws, 'was dropped after an unanswered request');
        throw err;
      }
    });
    if (frame.text) throw new GatewayError('worker_error', `the openpi server at ${this.endpoint} failed: ${frame.data.toString('utf8')}`);
    let value: unknown;
    try {
      value = decodeOpenpi(frame.data, this.#limits).value;
    } catch (err) {
      throw new GatewayError('worker_error', `the openpi server's reply is not openpi msgpack: ${(err as Error).message}`, { cause: err });
    }
    if (!isMap(value)) throw new GatewayError('worker_error', `the openpi server at ${this.endpoint} answered with no action map`);
    const keys = this.#options.outbound.actions ?? ['actions'];
    const result: Record<string, unknown> = { action: actionFromPeer(value, keys) };
    for (const [k, v] of Object.entries(value)) if (!keys.includes(k) && k !== 'policy_timing' && k !== 'server_timing') result[k] = v;
    return this.#reply(result, timingOf(value), startedAt, frame.data.byteLength);
  }

  #reply(result: unknown, timing: WorkerTiming | undefined, startedAt: number, sizeBytes: number): Reply {
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
    if (graceMs > 0 && this.#lane.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#lane.run('drain', graceMs, [], () => Promise.resolve()).catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.#close.abort(new GatewayError('cancelled', `connection to ${this.endpoint} closed`));
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const ws = this.#ws;
    if (ws) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      this.#down(ws, 'closed by the gateway');
      if (ws.readyState !== WebSocket.CLOSED) await closed;
    }
    this.#events.close();
  }
}
