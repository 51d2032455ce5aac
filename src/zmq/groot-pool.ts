// The gateway as a client of an unmodified GR00T inference server (Isaac-GR00T's msgpack ZMQ service, N1.5 flat keys):
// a framework with `protocol: groot` is served by these connections instead of native workers.
//
//   one REQ socket per endpoint (GR00T's server is REP and single-threaded): requests wait in a lane and go one at a
//   time; a REQ socket whose exchange was abandoned (deadline, cancel, peer lost) is replaced, because it can never
//   send again; ZMQ reconnects with backoff (100 ms doubling to 2 s).
//   health: `ping` → {"status": "ok"}; at each (re)connect `get_modality_config` is fetched and requests are checked
//   against its video/state/language keys, so a request the server would reject is a `bad_request` naming the key.
//   errors: `{"error": "Unauthorized..."}` → unauthorized, any other `{"error": ...}` → worker_error with its text,
//   a peer that disconnects mid-request → unavailable, no reply in time → timeout.
//
// The observation goes out through the framework's outbound mapping (protocol/outbound-mapping.ts) and the reply's
// `action.<group>` arrays come back concatenated as `result.action` float32 [horizon, dof].
import * as zmq from 'zeromq';
import { deferred, type Deferred } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { decodeGrootReply, encodeGrootRequest } from '../protocol/groot-wire.js';
import type { HealthResult } from '../protocol/messages.js';
import { actionFromPeer, toPeerObservation } from '../protocol/outbound-mapping.js';
import { pointer } from '../protocol/observation-mapping.js';
import { EndpointPool } from './endpoint-pool.js';
import { isMap, PeerConnection, waitFor, type PeerAnswer, type PeerPoolOptions } from './peer-connection.js';
import { socketFrameLimit } from './router-server.js';

/** Time given to a reply already received when the peer disconnects, before the exchange fails as unavailable. */
const DISCONNECT_GRACE_MS = 25;

export interface GrootPoolOptions extends PeerPoolOptions {
  /** GR00T's `api_token`, when the server was started with one. */
  apiToken?: string;
}

/** A pool of GR00T servers (tcp://host:port each). */
export function createGrootPool(options: GrootPoolOptions): EndpointPool<GrootConnection> {
  return new EndpointPool({ ...options, noun: 'GR00T server', component: 'peer.groot', connect: (endpoint) => new GrootConnection(endpoint, options) });
}

/** A server's `{"error": ...}` reply as a GatewayError (GR00T's own bad-token text becomes `unauthorized`). */
function peerError(reply: unknown, endpoint: string): GatewayError | undefined {
  if (reply instanceof Uint8Array && Buffer.from(reply).toString('latin1') === 'ERROR') return new GatewayError('worker_error', `the GR00T server at ${endpoint} replied ERROR`);
  if (!isMap(reply) || reply.error === undefined) return undefined;
  const text = typeof reply.error === 'string' ? reply.error : JSON.stringify(reply.error);
  return new GatewayError(/^unauthori[sz]ed/i.test(text) ? 'unauthorized' : 'worker_error', text);
}

/** The keys a modality config requires in an observation (N1.5 lists them prefixed, N1.6 bare). */
function requiredKeys(modality: Record<string, unknown>): string[] {
  const keys: string[] = [];
  for (const name of ['video', 'state', 'language']) {
    const listed = isMap(modality[name]) ? (modality[name] as Record<string, unknown>).modality_keys : undefined;
    if (Array.isArray(listed)) for (const k of listed) if (typeof k === 'string') keys.push(k.includes('.') ? k : `${name}.${k}`);
  }
  return keys;
}

function actionKeys(modality: Record<string, unknown> | undefined): string[] | undefined {
  const listed = modality && isMap(modality.action) ? (modality.action as Record<string, unknown>).modality_keys : undefined;
  if (!Array.isArray(listed) || listed.length === 0) return undefined;
  return listed.filter((k): k is string => typeof k === 'string').map((k) => (k.startsWith('action.') ? k : `action.${k}`));
}

/** One REQ socket to one GR00T server; requests one at a time in the lane. */
export class GrootConnection extends PeerConnection<GrootPoolOptions> {
  readonly #timers = new Set<NodeJS.Timeout>();
  #socket: zmq.Request | undefined;
  #connected = false;
  /** Fails the exchange in progress when the peer goes away. */
  #lost: Deferred<never> | undefined;
  #modality: Record<string, unknown> | undefined;
  #modalityFetched = false;

  constructor(endpoint: string, options: GrootPoolOptions) {
    super(endpoint, options, 'GR00T server', 'peer.groot');
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    if (this.#socket || this.closed) return;
    const socket = new zmq.Request({ linger: 0, reconnectInterval: 100, reconnectMaxInterval: 2_000, maxMessageSize: socketFrameLimit(this.limits) });
    this.#socket = socket;
    void this.#watch(socket);
    socket.connect(this.endpoint);
  }

  /** Replaces a socket whose exchange was abandoned (a REQ socket cannot send again before it receives). */
  #reset(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && !socket.closed) socket.close();
    if (this.#connected) {
      this.#connected = false;
      this.emit('disconnected');
    }
    this.start();
  }

  async #watch(socket: zmq.Request): Promise<void> {
    let attempt = 0;
    try {
      for await (const event of socket.events) {
        if (socket !== this.#socket) return;
        if (event.type === 'connect') {
          attempt = 0;
          this.#connected = true;
          this.#modalityFetched = false; // a restarted server may serve another model
          this.emit('connected');
        } else if (event.type === 'disconnect') {
          this.#connected = false;
          this.emit('disconnected');
          const lost = this.#lost;
          if (lost) {
            const timer = setTimeout(() => {
              this.#timers.delete(timer);
              lost.reject(new GatewayError('unavailable', `the GR00T server at ${this.endpoint} disconnected during the request`));
            }, DISCONNECT_GRACE_MS);
            this.#timers.add(timer);
          }
        } else if (event.type === 'connect:retry') {
          this.events.emit({ type: 'reconnect', framework: this.options.framework, endpoint: this.endpoint, attempt: ++attempt });
        }
      }
    } catch (err) {
      if (!socket.closed) this.log.warn({ event: 'groot.monitor_failed', err });
    }
  }

  /** One request/reply on the REQ socket, within `signal`. Any failure replaces the socket. */
  async #exchange(endpoint: string, data: Record<string, unknown> | undefined, signal: AbortSignal): Promise<unknown> {
    if (!this.#connected || !this.#socket) throw new GatewayError('unavailable', `not connected to the GR00T server at ${this.endpoint}`);
    const socket = this.#socket;
    const bytes = encodeGrootRequest(endpoint, data, this.options.apiToken);
    const lost = (this.#lost = deferred<never>());
    lost.promise.catch(() => undefined);
    const exchange = (async () => {
      await socket.send(bytes);
      const [frame] = await socket.receive();
      return frame!;
    })();
    exchange.catch(() => undefined); // closing the socket rejects it; the race below has already ended then
    try {
      const frame = await waitFor(Promise.race([exchange, lost.promise]), signal, `${endpoint} to ${this.endpoint}`);
      return decodeGrootReply(frame, this.limits);
    } catch (err) {
      this.#reset();
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('unavailable', `exchange with the GR00T server at ${this.endpoint} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      this.#lost = undefined;
    }
  }

  /** An exchange through the lane: queued behind the requests before it. */
  #call(endpoint: string, data: Record<string, unknown> | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<unknown> {
    if (this.closed) return Promise.reject(new GatewayError('unavailable', `connection to ${this.endpoint} is closed`));
    this.start();
    return this.lane.run(`${endpoint} to ${this.endpoint}`, timeoutMs, [signal, this.closeSignal], async (s) => {
      const reply = await this.#exchange(endpoint, data, s);
      const error = peerError(reply, this.endpoint);
      if (error) throw error;
      return reply;
    });
  }

  /** `ping` (and, once per connection, `get_modality_config`); ready while requests are queued, since the server answers between them only. */
  async health({ timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<HealthResult> {
    const framework = this.options.framework;
    if (!this.#connected) {
      this.start();
      throw new GatewayError('unavailable', `not connected to the GR00T server at ${this.endpoint}`);
    }
    // A one-at-a-time server answers ping only between requests: while requests are queued it is busy, not down.
    if (this.lane.size > 0 && this.#modalityFetched) return { ready: true, framework };
    const pong = await this.#call('ping', undefined, timeoutMs, signal);
    if (!isMap(pong) || pong.status !== 'ok') throw new GatewayError('worker_error', `the GR00T server at ${this.endpoint} answered ping with ${JSON.stringify(pong)}`);
    if (!this.#modalityFetched) {
      try {
        const modality = await this.#call('get_modality_config', undefined, timeoutMs, signal);
        this.#modality = isMap(modality) ? modality : undefined;
        this.log.info({ event: 'groot.modality_config', required: this.#modality ? requiredKeys(this.#modality) : [], actions: actionKeys(this.#modality) });
      } catch (err) {
        if (err instanceof GatewayError && err.code !== 'worker_error') throw err;
        this.#modality = undefined; // a server without the endpoint: requests go out unchecked
        this.log.warn({ event: 'groot.no_modality_config', message: (err as Error).message });
      }
      this.#modalityFetched = true;
    }
    return { ready: true, framework };
  }

  /** A request the server would reject for a missing key is refused here, naming the key and the caller's field. */
  #validate(observation: Record<string, unknown>): void {
    if (!this.#modality) return;
    const spec = this.options.outbound;
    for (const key of requiredKeys(this.#modality)) {
      if (observation[key] !== undefined) continue;
      let path = pointer('/data', key);
      let hint = `send '${key}' beside the observation`;
      const camera = Object.entries(spec.images ?? {}).find(([, k]) => k === key)?.[0] ?? (spec.imagePrefix && key.startsWith(spec.imagePrefix) ? key.slice(spec.imagePrefix.length) : undefined);
      if (camera !== undefined) [path, hint] = [pointer('/data/images', camera), `send camera '${camera}' under images`];
      else if (spec.state === key || (typeof spec.state === 'object' && spec.state.some((g) => g.key === key)) || key.startsWith('state.')) [path, hint] = ['/data/state', `map the state to it (outbound.state)`];
      else if (key === spec.instruction) [path, hint] = ['/data/instruction', 'send an instruction'];
      throw new GatewayError('bad_request', `${path}: missing: the GR00T server at ${this.endpoint} needs '${key}' (its modality config lists it); ${hint}`, { path });
    }
  }

  protected async infer(data: unknown, timeoutMs: number, signal: AbortSignal | undefined): Promise<PeerAnswer> {
    const { observation } = toPeerObservation(data, this.options.outbound);
    this.#validate(observation);
    const reply = await this.#call('get_action', observation, timeoutMs, signal);
    // N1.6 answers [action_map, info]; N1.5 the action map.
    const actions = Array.isArray(reply) && isMap(reply[0]) ? reply[0] : reply;
    if (!isMap(actions)) throw new GatewayError('worker_error', `the GR00T server at ${this.endpoint} answered get_action with no action map`);
    const keys = this.options.outbound.actions ?? actionKeys(this.#modality) ?? Object.keys(actions).filter((k) => k.startsWith('action.'));
    return { result: { action: actionFromPeer(actions, keys) }, sizeBytes: 0 };
  }

  protected teardown(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && !socket.closed) socket.close();
    this.#connected = false;
    return Promise.resolve();
  }
}
