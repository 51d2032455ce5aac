// GR00T's front door: Isaac-GR00T's ZMQ protocol (its PolicyClient / RobotInferenceClient, a REQ socket) on its own
// endpoint, served by a ROUTER (RouterServer keeps the REQ delimiter in the envelope, so replies reach REQ clients)
// and, for `get_action`, by the shared request pipeline (pipeline.ts). Wire format: protocol/groot-wire.ts.
//
//   ping                 → {"status": "ok", "message": "Server is running"}   (the door is up; no worker is asked)
//   get_action (default) → N1.5 flat {action.<group>: (16, D)}, or N1.6 [{<group>: (1, 16, D)}, {}] for N1.6's
//                          nested observation; groups: config `groot.actionGroups`, else the request's state groups,
//                          else one group `action` with every column
//   get_modality_config  → the framework's `groot.modalityConfig`, each entry as a ModalityConfig
//   reset                → {} (N1.6 calls it between episodes; a gateway policy keeps no episode state)
//   kill                 → refused: a client must not stop a shared gateway (the stock server exits)
// Errors are {"error": "<message>"} as GR00T's clients test for, with our `code` and `retryable` beside it.
// When the door's token rule requires it (auth.ts), every endpoint needs `api_token`, as the stock server checks it
// before dispatching. One framework per door: `groot.framework`, else the gateway's default.
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { actionChunkOf, grootActions, type ActionGroup } from '../protocol/action-mapping.js';
import { DEFAULT_LIMITS, type Frame, type Limits } from '../protocol/codec.js';
import { decodeGroot, encodeGroot, flattenNestedObservation, isNestedObservation, modalityConfig, type GrootRequest } from '../protocol/groot-wire.js';
import { Tensor } from '../protocol/tensor.js';
import { RouterServer } from '../zmq/router-server.js';
import type { AuthPolicy } from './auth.js';
import type { RequestPipeline } from './pipeline.js';

/** What the door knows of a framework's GR00T setup (config `frameworks.<name>.groot`). */
export interface GrootFrameworkSpec {
  actionGroups?: readonly ActionGroup[];
  modalityConfig: Record<string, unknown>;
}

export interface GrootDoorOptions {
  /** Where to bind, e.g. tcp://127.0.0.1:5556 or tcp://127.0.0.1:*. */
  endpoint: string;
  pipeline: RequestPipeline;
  auth: AuthPolicy;
  /** The framework behind the door; unset: the gateway's default. */
  framework?: string;
  grootFor?: (framework: string) => GrootFrameworkSpec | undefined;
  limits?: Limits;
  log?: Logger;
}

export class GrootDoor implements AsyncDisposable {
  readonly #options: GrootDoorOptions;
  readonly #limits: Limits;
  readonly #log: Logger;
  readonly #server: RouterServer;
  readonly #closeController = new AbortController();
  #closing: Promise<void> | undefined;

  constructor(options: GrootDoorOptions) {
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_LIMITS;
    this.#log = (options.log ?? silentLogger).child({ component: 'gateway.groot' });
    this.#server = new RouterServer({ endpoint: options.endpoint, name: 'GR00T door', limits: this.#limits, lingerMs: 500, handle: (frames) => this.#handle(frames), log: this.#log });
  }

  get endpoint(): string {
    return this.#server.endpoint;
  }

  async start(): Promise<string> {
    if (this.#closing) throw new GatewayError('unavailable', 'GR00T door is closed');
    const endpoint = await this.#server.start();
    this.#log.info({ event: 'groot_door.listening', endpoint });
    return endpoint;
  }

  /** Stops receiving, lets requests in flight finish for up to `graceMs`, cancels the rest, closes the socket. Idempotent. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= (async () => {
      await this.#server.drain(graceMs);
      this.#closeController.abort(new GatewayError('cancelled', 'the gateway is shutting down'));
      await this.#server.drain(500);
      await this.#server.close();
      this.#log.info({ event: 'groot_door.closed' });
    })());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  get #framework(): string | undefined {
    return this.#options.framework ?? this.#options.pipeline.router.defaultFramework;
  }

  async #handle(frames: Buffer[]): Promise<Frame[]> {
    const receivedAt = performance.now();
    let request: GrootRequest | undefined;
    let copiedBytes = 0;
    let failure: unknown;
    try {
      if (frames.length !== 1) throw new GatewayError('bad_request', `a GR00T request is one frame, got ${frames.length}`);
      ({ request, copiedBytes } = decodeGroot(frames[0]!, this.#limits));
    } catch (err) {
      failure = err;
    }
    if (request && request.endpoint !== 'get_action') return [this.#answerLocally(request)];
    // get_action, and bytes that did not decode (so they count as failed requests in the metrics).
    const out = await this.#options.pipeline.handle<Buffer>(this.#getAction(frames, request, copiedBytes, failure, receivedAt));
    return [out];
  }

  #answerLocally(request: GrootRequest): Buffer {
    try {
      this.#authorise(request);
      switch (request.endpoint) {
        case 'ping':
          return encodeGroot({ status: 'ok', message: 'Server is running' });
        case 'get_modality_config': {
          const configs = this.#spec(this.#framework)?.modalityConfig ?? {};
          return encodeGroot(Object.fromEntries(Object.entries(configs).map(([k, v]) => [k, modalityConfig(v as Record<string, unknown>)])));
        }
        case 'reset':
          return encodeGroot({});
        case 'kill':
          throw new GatewayError('bad_request', 'kill is refused: this is a shared gateway; stop it through its own service manager');
        default:
          throw new GatewayError('bad_request', `unknown endpoint ${JSON.stringify(request.endpoint.slice(0, 64))} (served: ping, get_action, get_modality_config, reset)`, { path: '/endpoint' });
      }
    } catch (err) {
      return errorBody(toGatewayError(err));
    }
  }

  #authorise(request: GrootRequest): void {
    this.#options.auth.check(request.apiToken, `'${request.endpoint}' on the GR00T door`);
  }

  #spec(framework: string | undefined): GrootFrameworkSpec | undefined {
    return framework === undefined ? undefined : this.#options.grootFor?.(framework);
  }

  #getAction(frames: Buffer[], request: GrootRequest | undefined, copiedBytes: number, failure: unknown, receivedAt: number) {
    let nested = false;
    let stateGroups: ActionGroup[] = [];
    let requestBytes = 0;
    for (const f of frames) requestBytes += f.byteLength;
    return {
      transport: 'groot' as const,
      codec: 'msgpack' as const,
      requestBytes,
      receivedAt,
      framework: this.#options.framework,
      signal: this.#closeController.signal,
      sharedSignal: true,
      decode: () => {
        if (failure !== undefined) throw failure;
        if (this.#closing) throw new GatewayError('unavailable', 'the gateway is shutting down');
        this.#authorise(request!);
        nested = isNestedObservation(request!.data);
        const data = nested ? flattenNestedObservation(request!.data!) : (request!.data ?? {});
        stateGroups = Object.entries(data).flatMap(([key, value]) =>
          key.startsWith('state.') && value instanceof Tensor && value.shape.length > 0 ? [{ name: key.slice(6), width: value.shape[value.shape.length - 1]! }] : [],
        );
        return { header: { type: 'inference', data }, codec: 'msgpack' as const, copiedBytes };
      },
      encode: (_reply: unknown, { error, result }: { error?: GatewayError; result?: { result: unknown; framework: string } }) => {
        if (error) {
          const body = errorBody(error);
          return { out: body, bytes: body.byteLength };
        }
        const chunk = actionChunkOf(result!.result);
        const groups = this.#spec(result!.framework)?.actionGroups ?? (stateGroups.length > 0 ? stateGroups : [{ name: 'action', width: chunk.shape[1]! }]);
        const actions = grootActions(chunk, groups);
        const body = encodeGroot(nested ? [Object.fromEntries(Object.entries(actions).map(([k, t]) => [k.slice(7), new Tensor(t.dtype, [1, ...t.shape], t.data)])), {}] : actions);
        return { out: body, bytes: body.byteLength };
      },
    };
  }
}

/** GR00T's error reply, `{"error": message}`, with our code (and the input's path) beside it for clients that read them. */
function errorBody(error: GatewayError): Buffer {
  return encodeGroot({ error: error.message, code: error.code, retryable: error.retryable, ...(error.path !== undefined ? { path: error.path } : {}) });
}
