// The gateway's ZMQ front door: a ROUTER socket speaking the worker protocol, a thin adapter around the shared
// request pipeline (pipeline.ts). It decodes the frames (the header names the framework; absent: the default
// one; tensors are views on the received frames and go to the worker as the same bytes) and encodes the reply
// in the caller's codec with the caller's request_id. Any bytes get an answer or are dropped; none stop the loop.
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LIMITS, decodeRequest, encodeMessage, peekRequestId, type Frame, type Limits } from '../protocol/codec.js';
import type { CurveServerKeys } from '../zmq/curve-keys.js';
import { RouterServer } from '../zmq/router-server.js';
import type { RequestPipeline } from './pipeline.js';

export interface ZmqFrontOptions {
  /** Where to bind, e.g. tcp://127.0.0.1:5550 or tcp://127.0.0.1:* (any free port). */
  endpoint: string;
  pipeline: RequestPipeline;
  limits?: Limits;
  log?: Logger;
  /** CURVE on the door: its key pair and, optionally, the only client keys it accepts (see RouterServer). */
  curve?: CurveServerKeys;
}

export class ZmqFront implements AsyncDisposable {
  readonly #options: ZmqFrontOptions;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #server: RouterServer;
  readonly #closeController = new AbortController();
  #closing: Promise<void> | undefined;

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
      ...(options.curve ? { curve: options.curve } : {}),
    });
  }

  get endpoint(): string {
    return this.#server.endpoint;
  }

  get inFlight(): number {
    return this.#server.inFlight;
  }

  stats(): { dropped: number; inFlight: number } {
    return { dropped: this.#server.dropped, inFlight: this.#server.inFlight };
  }

  /** Binds and starts serving; resolves with the bound endpoint (real port when bound to `*`). */
  async start(): Promise<string> {
    if (this.#closing) throw new GatewayError('unavailable', 'ZMQ front door is closed');
    const endpoint = await this.#server.start();
    const curve = this.#options.curve;
    // Public keys only: the door's, so operators can check what clients must use.
    this.#log.info({ event: 'zmq_front.listening', endpoint, ...(curve ? { curve: { publicKey: curve.publicKey, clientKeys: curve.clientKeys?.size ?? 'any' } } : {}) });
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

  #handle(frames: Buffer[]): Promise<Frame[]> {
    const limits = this.#limits;
    let requestBytes = 0;
    for (const f of frames) requestBytes += f.byteLength;
    return this.#options.pipeline.handle<Frame[]>({
      transport: 'zmq',
      codec: frames[0]![0] === 0x7b ? 'json' : 'binary',
      requestBytes,
      receivedAt: performance.now(),
      signal: this.#closeController.signal,
      sharedSignal: true,
      decode: () => {
        if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
        return decodeRequest(frames, limits);
      },
      peekRequestId: () => peekRequestId(frames[0]!),
      encode: (reply, { codec }) => {
        const out = encodeMessage(reply, codec);
        let bytes = 0;
        for (const f of out) bytes += f.byteLength;
        return { out, bytes };
      },
    });
  }
}
