// A bound ROUTER socket shared by the worker server and the gateway's ZMQ front door: binding, the receive
// loop, the routing envelope, concurrent handling, replies to the sender, and a draining close.
import * as zmq from 'zeromq';
import { GatewayError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Frame, Limits } from '../protocol/codec.js';
import { parseEndpoint } from './addresses.js';
import type { CurveServerKeys } from './curve-keys.js';
import { SendQueue } from './send-queue.js';
import { registerZapPolicy, type ZapRegistration } from './zap-authenticator.js';

/** Routing envelopes longer than this (identity frames of proxies in a chain) are not looked into. */
const MAX_ENVELOPE_FRAMES = 16;

/**
 * The per-frame size above which ZeroMQ itself drops the sender's connection (ZMQ_MAXMSGSIZE). Frames up to
 * twice the message limit still arrive and get a `too_large` reply naming the limit; a hostile peer cannot
 * make a receiver buffer more than that.
 */
export function socketFrameLimit(limits: Limits): number {
  return Math.min(2 * limits.maxMessageBytes, 2 ** 31 - 1);
}

/** Answers one message (its routing envelope removed). The frames returned go back to the sender; none: no reply. */
export type MessageHandler = (frames: Buffer[]) => Promise<Frame[] | undefined>;

export interface RouterServerOptions {
  /** Where to bind: tcp://127.0.0.1:5555, tcp://127.0.0.1:* (any free port), ipc:///path. */
  endpoint: string;
  /** Names the socket in errors and logs, e.g. `worker` or `ZMQ front door`. */
  name: string;
  /** The receiver's limits; a single frame above twice the message limit makes ZeroMQ drop the sender. */
  limits: Limits;
  /** How long replies queued at close may still go out, ms (ZMQ_LINGER; 0 = drop them). */
  lingerMs?: number;
  /**
   * Messages handled at once at most (default 1024). At the cap the loop stops receiving until one is answered:
   * further messages wait in ZeroMQ's queue (ZMQ_RCVHWM, then dropped by ZeroMQ), never in this process's memory.
   */
  maxInFlight?: number;
  handle: MessageHandler;
  log: Logger;
  /**
   * CURVE: encrypt and authenticate every connection with this key pair. With `clientKeys`, only those clients are
   * accepted (checked by the process's ZAP handler, refusals logged as `zmq.curve_refused`); without, any client
   * that knows the public key. Handshake failures (a client with the wrong server key) are logged.
   */
  curve?: CurveServerKeys;
}

/** Splits [identity..., empty, header, tensors...] into the routing envelope and the message. */
export function splitEnvelope(message: Buffer[]): { envelope: Buffer[]; frames: Buffer[] } {
  const limit = Math.min(message.length, MAX_ENVELOPE_FRAMES);
  for (let i = 1; i < limit; i++) {
    if (message[i]!.byteLength === 0) return { envelope: message.slice(0, i + 1), frames: message.slice(i + 1) };
  }
  // A DEALER that sends no delimiter: the identity, then the message.
  return { envelope: message.slice(0, 1), frames: message.slice(1) };
}

export class RouterServer {
  readonly #options: RouterServerOptions;
  readonly #inFlight = new Set<Promise<void>>();
  #socket: zmq.Router | undefined;
  /** Replies go out together once per turn of the event loop (send-queue.ts). */
  #sends: SendQueue | undefined;
  #endpoint: string | undefined;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #dropped = 0;
  #zap: ZapRegistration | undefined;

  constructor(options: RouterServerOptions) {
    parseEndpoint(options.endpoint, { forBind: true });
    this.#options = options;
  }

  /** Binds and starts serving. Resolves with the bound endpoint (the real port when bound to `*`). */
  async start(): Promise<string> {
    const { endpoint, name } = this.#options;
    if (this.#closing) throw new GatewayError('unavailable', `${name} is closed`);
    if (this.#socket) return this.endpoint;
    const { curve, log } = this.#options;
    if (curve?.clientKeys) this.#zap = await registerZapPolicy({ name, clientKeys: curve.clientKeys, log });
    // sendTimeout 0: a send never blocks the loop (a ROUTER drops replies to peers that are gone).
    const socket = new zmq.Router({
      linger: this.#options.lingerMs ?? 0,
      sendTimeout: 0,
      maxMessageSize: socketFrameLimit(this.#options.limits),
      ...(curve ? { curveServer: true, curveSecretKey: curve.secretKey, ...(this.#zap ? { zapDomain: this.#zap.domain } : {}) } : {}),
    });
    this.#socket = socket;
    this.#sends = new SendQueue(socket);
    if (curve) void this.#watchHandshakes(socket);
    try {
      await socket.bind(endpoint);
    } catch (err) {
      socket.close();
      this.#socket = undefined;
      await this.#zap?.close();
      this.#zap = undefined;
      const code = (err as { code?: string }).code;
      throw new GatewayError('unavailable', `cannot bind the ${name} to ${endpoint}: ${code === 'EADDRINUSE' ? 'address already in use' : (err as Error).message}`, { cause: err });
    }
    this.#endpoint = socket.lastEndpoint ?? endpoint;
    this.#loop = this.#serve(socket);
    return this.#endpoint;
  }

  get endpoint(): string {
    if (!this.#endpoint) throw new GatewayError('internal', `${this.#options.name} not started`);
    return this.#endpoint;
  }

  /** Messages being handled now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Replies that could not be sent (the peer's queue was full). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Waits for the messages in hand to be answered, up to `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    if (this.#inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /** Closes the socket (replies still queued go out within lingerMs) and ends the loop. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#sends?.flush(); // replies already made go out (within lingerMs)
      this.#socket?.close();
      await this.#loop;
      await this.#zap?.close();
    })());
  }

  /** Logs CURVE handshakes that fail: a client with the wrong server key, or one the ZAP handler refused. */
  async #watchHandshakes(socket: zmq.Router): Promise<void> {
    const { log, name } = this.#options;
    try {
      for await (const event of socket.events) {
        if (event.type === 'handshake:error:auth') {
          // The ZAP handler logged the refusal with the client's key; this is the socket's side of it.
          log.debug({ event: 'zmq.curve_handshake_refused', server: name, address: event.address, status: event.error.status });
        } else if (event.type === 'handshake:error:protocol' || event.type === 'handshake:error:other') {
          const { code } = event.error as { code?: string };
          log.warn({ event: 'zmq.curve_handshake_failed', server: name, address: event.address, code, reason: event.error.message, hint: 'the client may use a wrong server public key' });
        }
      }
    } catch (err) {
      if (!socket.closed) log.warn({ event: 'zmq.monitor_failed', err });
    }
  }

  async #serve(socket: zmq.Router): Promise<void> {
    const { log } = this.#options;
    try {
      const maxInFlight = this.#options.maxInFlight ?? 1024;
      for await (const message of socket) {
        const task = this.#answer(socket, message).catch((err: unknown) => log.error({ event: 'zmq.handler_failed', err }));
        this.#inFlight.add(task);
        void task.finally(() => this.#inFlight.delete(task));
        if (this.#inFlight.size >= maxInFlight) await Promise.race(this.#inFlight);
      }
    } catch (err) {
      if (!socket.closed) log.error({ event: 'zmq.receive_failed', err });
    }
  }

  async #answer(socket: zmq.Router, message: Buffer[]): Promise<void> {
    const { envelope, frames } = splitEnvelope(message);
    if (frames.length === 0) {
      this.#dropped++; // nothing to answer to (an empty message or a bare delimiter)
      return;
    }
    const reply = await this.#options.handle(frames);
    if (!reply || socket.closed) return;
    this.#sends!.send((envelope as Frame[]).concat(reply), this.#sendFailed);
  }

  readonly #sendFailed = (err: Error): void => {
    this.#dropped++;
    this.#options.log.warn({ event: 'zmq.send_failed', err });
  };
}
