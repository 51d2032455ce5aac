// Test helpers for the gateway: a real gateway on ephemeral ports, and one client interface over both front
// doors and every codec, so the contract suite can run the same cases through each.
import type { TestContext } from 'node:test';
import { decode as msgpackDecode } from '@msgpack/msgpack';
import { parseConfig } from '../../src/config.js';
import { buildGateway, type Gateway, type GatewayEnvironment } from '../../src/build-gateway.js';
import { GatewayError } from '../../src/lib/errors.js';
import { decodeMessage, encodeMessage, type Codec } from '../../src/protocol/codec.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';

/**
 * Starts a gateway on tcp://127.0.0.1:* and HTTP port 0 from a config document (undefined: the embedded demo),
 * closed after the test.
 */
export async function startTestGateway(t: TestContext, raw?: Record<string, unknown>, deps: GatewayEnvironment = {}): Promise<Gateway> {
  const config = parseConfig({ healthIntervalMs: 200, ...raw }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const gateway = await buildGateway(config, deps);
  t.after(() => gateway.close(500));
  // The embedded workers are the gateway's own and always come up; on a loaded machine their first health check
  // can miss, and a test of something else (deadlines, limits) would then meet `unavailable` from the start.
  const embedded = Object.values(config.frameworks).filter((f) => f.embedded).map((f) => f.name);
  await waitFor(() => embedded.every((name) => gateway.router.registry.resolve(name).pool.isReady()), 15_000, `embedded frameworks ready (${embedded.join(', ')})`);
  return gateway;
}

export type TransportName = 'zmq-binary' | 'zmq-msgpack' | 'zmq-json' | 'http-json' | 'http-msgpack';
export const TRANSPORTS: readonly TransportName[] = ['zmq-binary', 'zmq-msgpack', 'zmq-json', 'http-json', 'http-msgpack'];

export type CallResult =
  | { ok: true; result: Record<string, unknown>; requestId: string | undefined; timing: unknown }
  | { ok: false; code: string; path: string | undefined; requestId: string | undefined; httpStatus?: number; retryAfter?: string | null; retryable: boolean };

export interface FrontDoorClient {
  readonly name: TransportName;
  call(type: string, data: unknown, opts?: { framework?: string; timeoutMs?: number; headers?: Record<string, string> }): Promise<CallResult>;
  close(): Promise<void>;
}

/** Tensors → nested lists, so answers from every transport compare equal. */
export function normalise(value: unknown): unknown {
  if (value instanceof Tensor) return value.toNested();
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

/** Typed arrays in an observation → Tensors (binary/msgpack) or nested lists (json). */
function forCodec(value: unknown, codec: Codec): unknown {
  if (value instanceof Tensor) return codec === 'json' ? value.toNested() : value;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const t = Tensor.of(value as Float32Array);
    return codec === 'json' ? t.toNested() : t;
  }
  if (Array.isArray(value)) return value.map((v) => forCodec(v, codec));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forCodec(v, codec)]));
  return value;
}

export function frontDoorClient(gateway: Gateway, name: TransportName, { defaultFramework = 'demo' } = {}): FrontDoorClient {
  if (name.startsWith('zmq-')) {
    const codec = name.slice(4) as Codec;
    const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec, timeoutMs: 10_000 });
    return {
      name,
      async call(type, data, opts = {}) {
        try {
          const reply = await client.request({ type, data: forCodec(data, codec), ...(opts.framework ? { framework: opts.framework } : {}) }, { timeoutMs: opts.timeoutMs });
          return { ok: true, result: normalise(reply.result) as Record<string, unknown>, requestId: reply.header.request_id, timing: reply.timing };
        } catch (err) {
          if (!(err instanceof GatewayError)) throw err;
          return { ok: false, code: err.code, path: err.path, requestId: err.requestId, retryable: err.retryable };
        }
      },
      close: () => client.close(),
    };
  }
  const msgpack = name === 'http-msgpack';
  return {
    name,
    async call(type, data, opts = {}) {
      const framework = opts.framework ?? defaultFramework;
      const requestId = `req-${Math.random().toString(36).slice(2)}`;
      const envelope = { data: forCodec(data, msgpack ? 'msgpack' : 'json'), request_id: requestId, ...(opts.timeoutMs ? { timeout_ms: opts.timeoutMs } : {}) };
      const body = msgpack ? encodeMessage(envelope, 'msgpack')[0]! : JSON.stringify(envelope);
      const res = await fetch(`${gateway.httpUrl}/v1/frameworks/${framework}/${type}`, {
        method: 'POST',
        headers: { 'content-type': msgpack ? 'application/msgpack' : 'application/json', ...opts.headers },
        body: body as Uint8Array<ArrayBuffer> | string,
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const isMsgpack = (res.headers.get('content-type') ?? '').includes('msgpack');
      const parsed = (isMsgpack ? (res.ok ? decodeMessage([bytes]).header : msgpackDecode(bytes)) : JSON.parse(Buffer.from(bytes).toString('utf8'))) as Record<string, unknown>;
      if (res.ok) return { ok: true, result: normalise(parsed.result) as Record<string, unknown>, requestId: parsed.request_id as string, timing: parsed.timing };
      const error = parsed.error as { code: string; path?: string; request_id?: string; retryable: boolean };
      return { ok: false, code: error.code, path: error.path, requestId: error.request_id, httpStatus: res.status, retryAfter: res.headers.get('retry-after'), retryable: error.retryable };
    },
    close: async () => undefined,
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
