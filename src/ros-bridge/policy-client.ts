// How the control loop asks for action chunks: one small interface, over the gateway's ZMQ front door (the
// project's ZMQ client) or its HTTP API, with the reply parsed into a flat float32 [horizon * dof] chunk.
import { abortError, Deadline } from '../lib/abort.js';
import { GatewayError, fromWireError, toGatewayError } from '../lib/errors.js';
import { decodeMessage, encodeMessage } from '../protocol/codec.js';
import type { WorkerTiming } from '../protocol/messages.js';
import { Tensor, asTensor } from '../protocol/tensor.js';
import type { OutgoingRequest, PoolEvent, RequestOptions } from '../zmq/types.js';
import type { BridgeObservation } from './observation-builder.js';

export interface InferOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PolicyTiming {
  /** Measured by the bridge, ms. */
  roundTripMs: number;
  /** The worker's own timing, when the reply carries it. */
  worker?: WorkerTiming;
}

/** An action chunk: step k, joint j at action[k * dof + j]. */
export interface PolicyChunk {
  action: Float32Array;
  horizon: number;
  dof: number;
  /** Seconds between steps, from the policy's `dt_s` (undefined when it gave none). */
  dtS: number | undefined;
  timing: PolicyTiming;
  /** The whole `result` object (model, instruction echo, ...). */
  result: Record<string, unknown>;
}

export interface PolicyClient {
  /** Rejects with a GatewayError: `timeout` at the deadline, `cancelled` on abort, the worker's code otherwise. */
  infer(observation: BridgeObservation, options?: InferOptions): Promise<PolicyChunk>;
  /**
   * Optional: calls `listener` as soon as the transport knows the peer is gone (a ZMQ disconnect), so the loop can
   * hold at once instead of when the plan runs out. Returns the unsubscribe function.
   */
  onDown?(listener: (reason: string) => void): () => void;
  /** Optional: calls `listener` when the transport (re)connects to the peer, so the loop can ask at once. */
  onUp?(listener: () => void): () => void;
  /**
   * Optional: the transport's connection state, when it knows it (ZMQ: from the socket's monitor events). `false`
   * means a request now would only wait in a queue until its deadline, so the loop waits for `onUp` instead.
   * `undefined` = not known (HTTP): the loop just tries.
   */
  readonly connected?: boolean | undefined;
  /** Optional: start connecting now (ZMQ connects in the background), so `connected` means something before the first request. */
  connect?(): void;
  close(): Promise<void>;
}

/** Reads `result.action` (float32 [H, dof], a Tensor or nested lists) and `result.dt_s`. */
export function parseChunk(result: unknown, timing: PolicyTiming): PolicyChunk {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    throw new GatewayError('worker_error', 'inference result is not an object', { path: '/result' });
  }
  const r = result as Record<string, unknown>;
  let action: Tensor;
  try {
    action = r.action instanceof Tensor && r.action.dtype === 'float64' ? r.action : asTensor(r.action, 'float32', '/result/action');
  } catch (err) {
    throw new GatewayError('worker_error', `bad action in result: ${(err as Error).message}`, { path: '/result/action', cause: err });
  }
  if (action.shape.length !== 2 || action.shape[0]! < 1 || action.shape[1]! < 1) {
    throw new GatewayError('worker_error', `result.action must be [horizon, dof] with both > 0, got [${action.shape.join(', ')}]`, {
      path: '/result/action',
    });
  }
  const flat = action.data instanceof Float32Array ? action.data : Float32Array.from(action.data as Float64Array);
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i])) throw new GatewayError('worker_error', `result.action has a non-finite value at ${i}`, { path: '/result/action' });
  }
  const dt = r.dt_s;
  return {
    action: flat,
    horizon: action.shape[0]!,
    dof: action.shape[1]!,
    dtS: typeof dt === 'number' && dt > 0 && Number.isFinite(dt) ? dt : undefined,
    timing,
    result: r,
  };
}

/** The request side of the project's ZMQ client (src/zmq WorkerClient), as this module uses it. */
export interface RequestClient {
  request(
    request: OutgoingRequest,
    options?: RequestOptions,
  ): Promise<{ result: unknown; timing?: WorkerTiming | undefined; roundTripMs: number }>;
  /** Connection state events (WorkerClient.onEvent). */
  onEvent?(listener: (event: PoolEvent) => void): () => void;
  /** True while connected (WorkerClient.connected). */
  readonly connected?: boolean;
  /** Opens the socket and starts connecting (WorkerClient.start). */
  start?(): void;
  close(): Promise<void>;
}

export interface ZmqPolicyClientOptions {
  client: RequestClient;
  framework: string;
  /** Default deadline when infer() is given none. */
  timeoutMs?: number;
}

/** Inference over the gateway's ZMQ front door (binary codec: images travel as raw frames). */
export class ZmqPolicyClient implements PolicyClient {
  readonly #client: RequestClient;
  readonly #framework: string;
  readonly #timeoutMs: number;

  constructor({ client, framework, timeoutMs = 2_000 }: ZmqPolicyClientOptions) {
    this.#client = client;
    this.#framework = framework;
    this.#timeoutMs = timeoutMs;
  }

  async infer(observation: BridgeObservation, { signal, timeoutMs = this.#timeoutMs }: InferOptions = {}): Promise<PolicyChunk> {
    const reply = await this.#client.request(
      { type: 'inference', framework: this.#framework, data: observation },
      { timeoutMs, ...(signal ? { signal } : {}) },
    );
    return parseChunk(reply.result, { roundTripMs: reply.roundTripMs, ...(reply.timing ? { worker: reply.timing } : {}) });
  }

  onDown(listener: (reason: string) => void): () => void {
    if (!this.#client.onEvent) return () => {};
    return this.#client.onEvent((event) => {
      if (event.type === 'disconnected') listener(`lost the connection to ${event.endpoint}`);
    });
  }

  onUp(listener: () => void): () => void {
    if (!this.#client.onEvent) return () => {};
    return this.#client.onEvent((event) => {
      if (event.type === 'connected') listener();
    });
  }

  get connected(): boolean | undefined {
    return this.#client.connected;
  }

  connect(): void {
    this.#client.start?.();
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

export interface HttpPolicyClientOptions {
  /** Base URL of the gateway, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  framework: string;
  /** `msgpack` (default: tensors as bytes) or `json` (nested lists, for debugging). */
  codec?: 'msgpack' | 'json';
  timeoutMs?: number;
  /** Bearer token for a gateway that asks for one. */
  token?: string;
}

/** Inference over the gateway's HTTP API: POST {baseUrl}/v1/frameworks/{name}/inference with body {data}. */
export class HttpPolicyClient implements PolicyClient {
  readonly #url: string;
  readonly #codec: 'msgpack' | 'json';
  readonly #timeoutMs: number;
  readonly #token: string | undefined;
  readonly #closed = new AbortController();

  constructor({ baseUrl, framework, codec = 'msgpack', timeoutMs = 2_000, token }: HttpPolicyClientOptions) {
    this.#url = `${baseUrl.replace(/\/+$/, '')}/v1/frameworks/${encodeURIComponent(framework)}/inference`;
    this.#codec = codec;
    this.#timeoutMs = timeoutMs;
    this.#token = token;
  }

  async infer(observation: BridgeObservation, { signal, timeoutMs = this.#timeoutMs }: InferOptions = {}): Promise<PolicyChunk> {
    using guard = new Deadline(timeoutMs, signal, this.#closed.signal);
    const deadline = guard.signal;
    if (deadline.aborted) throw abortError(deadline, 'inference');
    const [body] = encodeMessage({ data: observation, timeout_ms: Math.max(1, Math.round(timeoutMs)) }, this.#codec);
    const headers: Record<string, string> = {
      'content-type': this.#codec === 'json' ? 'application/json' : 'application/msgpack',
      accept: this.#codec === 'json' ? 'application/json' : 'application/msgpack, application/json',
    };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    const started = performance.now();
    let parsed: Record<string, unknown>;
    let status: number;
    try {
      const res = await fetch(this.#url, { method: 'POST', headers, body: body!, signal: deadline });
      status = res.status;
      const bytes = new Uint8Array(await res.arrayBuffer());
      const type = res.headers.get('content-type') ?? '';
      parsed = type.includes('msgpack') ? decodeMessage([bytes]).header : (JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>);
    } catch (err) {
      if (deadline.aborted) throw abortError(deadline, 'inference');
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('unavailable', `gateway at ${this.#url} did not answer: ${(err as Error).message}`, { cause: err });
    }
    const roundTripMs = performance.now() - started;
    if (status >= 400 || parsed.status === 'error') {
      throw parsed.error !== undefined ? fromWireError(parsed.error) : toGatewayError(new Error(`gateway answered HTTP ${status}`));
    }
    const result = 'result' in parsed ? parsed.result : parsed;
    const timing = parsed.timing as WorkerTiming | undefined;
    return parseChunk(result, { roundTripMs, ...(timing ? { worker: timing } : {}) });
  }

  async close(): Promise<void> {
    this.#closed.abort(new GatewayError('cancelled', 'policy client closed'));
  }
}
