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
import type { HealthResult, WorkerTiming } from '../protocol/messages.js';
import { decodeOpenpi, encodeOpenpi } from '../protocol/openpi-msgpack.js';
import { actionFromPeer, toPeerObservation } from '../protocol/outbound-mapping.js';
import { EndpointPool } from '../zmq/endpoint-pool.js';
import { isMap, PeerConnection, waitFor, type PeerAnswer, type PeerPoolOptions } from '../zmq/peer-connection.js';

export interface OpenpiPoolOptions extends PeerPoolOptions {
  /** Sent as `Authorization: Api-Key <key>`, as openpi-client does. */
  apiKey?: string;
}

/** A pool of openpi servers (ws://host:port[/path] each). */
export function createOpenpiPool(options: OpenpiPoolOptions): EndpointPool<OpenpiConnection> {
  return new EndpointPool({ ...options, noun: 'openpi server', component: 'peer.openpi', connect: (endpoint) => new OpenpiConnection(endpoint, options) });
}

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

/** One websocket to one openpi server; requests one at a time in the lane. */
export class OpenpiConnection extends PeerConnection<OpenpiPoolOptions> {
  readonly #healthz: URL;
  #ws: WebSocket | undefined;
  /** Open and its metadata frame read. */
  #open = false;
  #metadata: Record<string, unknown> = {};
  #pending: Deferred<Frame> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #attempt = 0;
  #refused: GatewayError | undefined;

  constructor(endpoint: string, options: OpenpiPoolOptions) {
    super(endpoint, options, 'openpi server', 'peer.openpi');
    const url = new URL(endpoint);
    this.#healthz = new URL('/healthz', `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`);
  }

  get connected(): boolean {
    return this.#open;
  }

  /** The server's metadata frame of the current connection. */
  get metadata(): Record<string, unknown> {
    return this.#metadata;
  }

  start(): void {
    if (this.#ws || this.#retry || this.closed) return;
    this.#connect();
  }

  #connect(): void {
    const headers: Record<string, string> = this.options.apiKey ? { authorization: `Api-Key ${this.options.apiKey}` } : {};
    const ws = new WebSocket(this.endpoint, { perMessageDeflate: false, maxPayload: this.limits.maxMessageBytes, handshakeTimeout: 5_000, headers });
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
      this.log.debug({ event: 'openpi.socket_error', message: err.message });
      this.#down(ws, err.message);
    });
    ws.on('close', (code: number, reason: Buffer) => this.#down(ws, `closed (${code}${reason.byteLength ? ` ${reason.toString()}` : ''})`));
  }

  #onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    if (ws !== this.#ws) return;
    if (!this.#open) {
      // The first frame is the server's metadata.
      try {
        const { value } = decodeOpenpi(data, this.limits);
        this.#metadata = isMap(value) ? value : {};
      } catch (err) {
        this.log.warn({ event: 'openpi.bad_metadata', message: (err as Error).message });
        this.#metadata = {};
      }
      this.#open = true;
      this.#attempt = 0;
      this.#refused = undefined;
      this.log.info({ event: 'openpi.connected', metadata: Object.keys(this.#metadata) });
      this.emit('connected');
      return;
    }
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) pending.resolve({ data, text: !isBinary });
    else this.log.warn({ event: 'openpi.unexpected_frame', bytes: data.byteLength });
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
    if (wasOpen) this.emit('disconnected');
    if (this.closed) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.#attempt);
    this.#attempt++;
    this.events.emit({ type: 'reconnect', framework: this.options.framework, endpoint: this.endpoint, attempt: this.#attempt });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.closed) this.#connect();
    }, delay);
  }

  /** `GET /healthz` on the server's port: true for 200. */
  #probe(timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    const deadline = new Deadline(timeoutMs, signal, this.closeSignal);
    return new Promise<boolean>((resolve) => {
      const req = httpRequest(this.#healthz, { method: 'GET', signal: deadline.signal }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    }).finally(() => deadline.dispose());
  }

  /** Ready while the websocket is open; otherwise `GET /healthz` says whether to reconnect now or the server is down. */
  async health({ timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<HealthResult> {
    const framework = this.options.framework;
    if (this.#open) return { ready: true, framework };
    if (this.#refused) throw this.#refused;
    if (this.closed) throw new GatewayError('unavailable', `connection to ${this.endpoint} is closed`);
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

  protected async infer(data: unknown, timeoutMs: number, signal: AbortSignal | undefined): Promise<PeerAnswer> {
    const { observation } = toPeerObservation(data, this.options.outbound);
    const bytes = encodeOpenpi(observation);
    const what = `request to ${this.endpoint}`;
    const frame = await this.lane.run(what, timeoutMs, [signal, this.closeSignal], async (s) => {
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
      value = decodeOpenpi(frame.data, this.limits).value;
    } catch (err) {
      throw new GatewayError('worker_error', `the openpi server's reply is not openpi msgpack: ${(err as Error).message}`, { cause: err });
    }
    if (!isMap(value)) throw new GatewayError('worker_error', `the openpi server at ${this.endpoint} answered with no action map`);
    const keys = this.options.outbound.actions ?? ['actions'];
    const result: Record<string, unknown> = { action: actionFromPeer(value, keys) };
    for (const [k, v] of Object.entries(value)) if (!keys.includes(k) && k !== 'policy_timing' && k !== 'server_timing') result[k] = v;
    return { result, timing: timingOf(value), sizeBytes: frame.data.byteLength };
  }

  protected async teardown(): Promise<void> {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const ws = this.#ws;
    if (!ws) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    this.#down(ws, 'closed by the gateway');
    if (ws.readyState !== WebSocket.CLOSED) await closed;
  }
}
