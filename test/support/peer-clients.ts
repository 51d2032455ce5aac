// Clients of the peers' protocols in TypeScript, for the contract suite (test/contract/): openpi's websocket and
// GR00T's ZMQ REQ, each reading the door's reply back into the standard result (`actions` / `action.<group>` →
// `action`), so the same cases run through every door. The peers' real clients are exercised in test/peers/.
import { Decoder } from '@msgpack/msgpack';
import WebSocket from 'ws';
import * as zmq from 'zeromq';
import type { Gateway } from '../../src/build-gateway.js';
import { DEFAULT_LIMITS } from '../../src/protocol/codec.js';
import { encodeGroot } from '../../src/protocol/groot-wire.js';
import { readNpy } from '../../src/protocol/npy.js';
import { decodeOpenpi, encodeOpenpi } from '../../src/protocol/openpi-msgpack.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { normalise, type CallResult, type FrontDoorClient } from './gateway.js';

export type PeerTransportName = 'openpi' | 'groot';
export const PEER_TRANSPORTS: readonly PeerTransportName[] = ['openpi', 'groot'];

/** Typed arrays → Tensors, as a numpy client would send them. */
function asArrays(value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof Tensor)) return Tensor.of(value as Float32Array);
  if (Array.isArray(value) || value instanceof Tensor || value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asArrays(v)]));
}

interface Connection {
  ws: WebSocket;
  next(): Promise<{ data: Buffer; text: boolean }>;
}

/** Opens a websocket and reads the metadata frame; resolves `{status}` when the upgrade is refused. */
function connectOpenpi(url: string): Promise<Connection | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const queue: Array<{ data: Buffer; text: boolean }> = [];
    const waiting: Array<(m: { data: Buffer; text: boolean }) => void> = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m = { data, text: !isBinary };
      const w = waiting.shift();
      if (w) w(m);
      else queue.push(m);
    });
    const next = () => new Promise<{ data: Buffer; text: boolean }>((res) => (queue.length > 0 ? res(queue.shift()!) : waiting.push(res)));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
    ws.once('open', () => void next().then(() => resolve({ ws, next })));
  });
}

function failure(error: { code: string; path?: string; request_id?: string; retryable: boolean }, httpStatus?: number): CallResult {
  return { ok: false, code: error.code, path: error.path, requestId: error.request_id, retryable: error.retryable, ...(httpStatus !== undefined ? { httpStatus } : {}) };
}

export function peerDoorClient(gateway: Gateway, name: PeerTransportName, { defaultFramework = 'demo' } = {}): FrontDoorClient {
  if (name === 'openpi') {
    const connections = new Map<string, Connection>();
    return {
      name: name as never,
      async call(type, data, opts = {}) {
        if (type !== 'inference') throw new Error(`openpi has no '${type}' request`);
        const framework = opts.framework ?? defaultFramework;
        let conn = connections.get(framework);
        if (!conn) {
          const opened = await connectOpenpi(`${gateway.openpiUrl!}/openpi/${framework}`);
          if ('status' in opened) return failure((JSON.parse(opened.body) as { error: { code: string; retryable: boolean } }).error, opened.status);
          connections.set(framework, (conn = opened));
        }
        conn.ws.send(encodeOpenpi(asArrays(data)));
        const reply = await conn.next();
        if (reply.text) return failure((JSON.parse(reply.data.toString()) as { error: { code: string; retryable: boolean } }).error);
        const { actions, ...rest } = decodeOpenpi(reply.data, DEFAULT_LIMITS).value as Record<string, unknown>;
        return { ok: true, result: normalise({ action: actions, ...rest }) as Record<string, unknown>, requestId: undefined, timing: rest.policy_timing };
      },
      async close() {
        await Promise.all([...connections.values()].map(({ ws }) => new Promise<void>((resolve) => {
          ws.once('close', () => resolve());
          ws.close(1000);
        })));
      },
    };
  }
  const socket = new zmq.Request({ linger: 0, receiveTimeout: 10_000, sendTimeout: 10_000 });
  socket.connect(gateway.grootEndpoint!);
  const decoder = new Decoder();
  const revive = (v: unknown): unknown => {
    if (v !== null && typeof v === 'object' && (v as Record<string, unknown>).__ndarray_class__ === true) return readNpy((v as { as_npy: Uint8Array }).as_npy, '/').tensor;
    return v;
  };
  return {
    name: name as never,
    async call(type, data) {
      if (type !== 'inference') throw new Error(`GR00T's door has no '${type}' request`);
      await socket.send(encodeGroot({ endpoint: 'get_action', data: asArrays(data) }));
      const [bytes] = await socket.receive();
      const reply = decoder.decode(bytes!) as Record<string, unknown>;
      if (typeof reply.error === 'string') return failure(reply as unknown as { code: string; retryable: boolean });
      // action.<group> in order, joined back into one chunk [horizon, dof].
      const groups = Object.values(reply).map(revive) as Tensor[];
      const rows = groups[0]!.shape[0]!;
      const nested = Array.from({ length: rows }, (_, k) => groups.flatMap((g) => (g.toNested() as number[][])[k]!));
      return { ok: true, result: { action: nested }, requestId: undefined, timing: undefined };
    },
    close: async () => socket.close(),
  };
}
