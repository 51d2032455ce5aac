// Drivers: one per way of sending an inference request. Each runs a batch of requests with N in flight and
// returns the client-side latencies (µs, encode + send + wait + decode, as an application sees them).
import { Agent, request as httpRequest } from 'node:http';
import { encode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { decodeMessage, encodeMessage, type Codec } from '../../src/protocol/codec.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { ShmArena } from '../../src/shm/shm-arena.js';
import { DirectClient } from '../../src/zmq/direct-client.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import type { Child } from './children.js';
import type { Payload } from './payloads.js';

export interface BatchOptions {
  /** Requests to complete at most. */
  samples: number;
  /** Stop starting new requests after this long (ms); 0 = no cap. */
  maxMs: number;
  /** Requests in flight at once (independent loops sharing one client/connection). */
  inflight: number;
}

export interface BatchResult {
  latenciesUs: number[];
  errors: number;
  firstError?: string;
  elapsedMs: number;
}

export interface Driver {
  /** Largest number of requests in flight this driver can have (REQ sockets: 1). */
  readonly maxInflight: number;
  run(payload: Payload, opts: BatchOptions): Promise<BatchResult>;
  close(): Promise<void>;
}

/** Generous (JSON at XL takes seconds) but short enough that a lost reply does not stall a run for long. */
const REQUEST_TIMEOUT_MS = 30_000;
const HORIZON = 16;

/** Checks a reply carries the demo chunk [16, dof]; throws otherwise so a broken path cannot pass as fast. */
export function checkChunk(result: unknown, dof: number): void {
  const action = (result as { action?: unknown } | undefined)?.action;
  if (action instanceof Tensor) {
    if (action.shape[0] === HORIZON && action.shape[1] === dof) return;
  } else if (Array.isArray(action) && action.length === HORIZON && Array.isArray(action[0]) && (action[0] as unknown[]).length === dof) {
    return;
  }
  throw new Error(`reply has no [${HORIZON}, ${dof}] action chunk: ${JSON.stringify(result)?.slice(0, 200)}`);
}

/** Runs `once` in `inflight` concurrent loops until `samples` requests or `maxMs` have passed. */
export async function runLoops(once: () => Promise<void>, { samples, maxMs, inflight }: BatchOptions): Promise<BatchResult> {
  const latenciesUs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let started = 0;
  const t0 = performance.now();
  const deadline = maxMs > 0 ? t0 + maxMs : Number.POSITIVE_INFINITY;
  const loop = async () => {
    while (started < samples && performance.now() < deadline) {
      started++;
      const s = performance.now();
      try {
        await once();
        latenciesUs.push((performance.now() - s) * 1000);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
        if (errors > 50 && errors > latenciesUs.length) break; // a dead path: stop hammering it
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, inflight) }, loop));
  return { latenciesUs, errors, firstError, elapsedMs: performance.now() - t0 };
}

/** Our protocol over ZeroMQ with the product's WorkerClient (DEALER): to a gateway front door or a worker. */
export class ProtocolZmqDriver implements Driver {
  readonly maxInflight = 1_000;
  readonly #client: WorkerClient;
  readonly #codec: Codec;
  readonly #framework: string | undefined;
  readonly #shm: boolean;

  /** With `shmDir`: tensors of 4 KiB and more go through shared memory in that root (one arena per driver). */
  constructor(endpoint: string, codec: Codec, framework?: string, shmDir?: string) {
    this.#client = new WorkerClient({ endpoint, codec, timeoutMs: REQUEST_TIMEOUT_MS, ...(shmDir ? { sharedMemory: new ShmArena({ dir: shmDir }) } : {}) });
    this.#codec = codec;
    this.#framework = framework;
    this.#shm = shmDir !== undefined;
  }

  run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const req = { type: 'inference', data: payload.observation, ...(this.#framework ? { framework: this.#framework } : {}) };
    const dof = payload.spec.dof;
    return runLoops(async () => {
      const reply = await this.#client.request(req, { codec: this.#codec });
      checkChunk(reply.result, dof);
      // A shared-memory path that fell back to frames must not pass as shared memory.
      if (this.#shm && this.#client.sharedMemoryState !== 'on') throw new Error(`shared memory not in use (${this.#client.sharedMemoryState})`);
    }, opts);
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** The direct path: a lease from the gateway's ZMQ door, then requests straight to the leased worker. */
export class DirectLeaseDriver implements Driver {
  readonly maxInflight = 1_000;
  readonly #client: DirectClient;
  readonly #shm: boolean;

  constructor(gateway: string, framework: string, shmDir?: string) {
    this.#client = new DirectClient({ gateway, framework, timeoutMs: REQUEST_TIMEOUT_MS, ...(shmDir ? { sharedMemory: new ShmArena({ dir: shmDir }) } : {}) });
    this.#shm = shmDir !== undefined;
  }

  run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const dof = payload.spec.dof;
    return runLoops(async () => {
      const reply = await this.#client.inference(payload.observation);
      checkChunk(reply.result, dof);
      if (this.#shm && this.#client.worker?.sharedMemoryState !== 'on') throw new Error(`shared memory not in use (${this.#client.worker?.sharedMemoryState})`);
    }, opts);
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/** The floor: one in-process copy of the request's tensor bytes into a buffer of the same size (no I/O). */
export class MemcpyDriver implements Driver {
  readonly maxInflight = 1;

  run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const obs = payload.observation;
    const sources = [...Object.values(obs.images ?? {}), obs.state].map((t) => t.bytes());
    const targets = sources.map((s) => new Uint8Array(s.byteLength));
    return runLoops(() => {
      for (let i = 0; i < sources.length; i++) targets[i]!.set(sources[i]!);
      return Promise.resolve();
    }, { ...opts, inflight: 1 });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The gateway's HTTP front door: POST /v1/frameworks/<name>/inference over node:http with keep-alive. Each
 * batch gets a fresh agent whose connections are opened (GET /healthz, untimed) before timing starts: the
 * server drops idle keep-alive connections after 5 s, and a socket reused just as it closes would fail.
 */
export class HttpDriver implements Driver {
  readonly maxInflight = 1_000;
  readonly #base: string;
  readonly #url: URL;
  readonly #encoding: 'msgpack' | 'json';

  constructor(baseUrl: string, framework: string, encoding: 'msgpack' | 'json') {
    this.#base = baseUrl;
    this.#url = new URL(`/v1/frameworks/${encodeURIComponent(framework)}/inference`, baseUrl);
    this.#encoding = encoding;
  }

  async run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const dof = payload.spec.dof;
    const agent = new Agent({ keepAlive: true, maxSockets: Math.max(1, opts.inflight) });
    try {
      const health = new URL('/healthz', this.#base);
      await Promise.all(Array.from({ length: Math.max(1, opts.inflight) }, () => this.#call(agent, health, 'GET')));
      return await runLoops(async () => {
        // The body is encoded per request, as a client would (JSON: nested lists from the tensors).
        const body = encodeMessage({ data: payload.observation }, this.#encoding)[0]!;
        const res = await this.#call(agent, this.#url, 'POST', body);
        const result = this.#encoding === 'msgpack' ? decodeMessage([res]).header : (JSON.parse(res.toString('utf8')) as Record<string, unknown>);
        checkChunk(result.result, dof);
      }, opts);
    } finally {
      agent.destroy();
    }
  }

  #call(agent: Agent, url: URL, method: 'GET' | 'POST', body?: Uint8Array): Promise<Buffer> {
    const type = this.#encoding === 'msgpack' ? 'application/msgpack' : 'application/json';
    const headers: Record<string, string | number> = { accept: type };
    if (body) {
      headers['content-type'] = type;
      headers['content-length'] = body.byteLength;
    }
    return new Promise<Buffer>((resolve, reject) => {
      const req = httpRequest(url, { method, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${buf.toString('utf8').slice(0, 300)}`));
          else resolve(buf);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('HTTP request timed out')));
      req.end(body);
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A bare zeromq.js round trip: DEALER to the raw server (bench/servers/raw-zmq-server.ts), a pre-encoded
 * msgpack header plus the payload's tensor frames, replies matched in order, nothing decoded.
 */
export class RawZmqDriver implements Driver {
  readonly maxInflight = 1_000;
  readonly #socket: zmq.Dealer;
  readonly #waiting: Array<() => void> = [];
  readonly #loop: Promise<void>;

  constructor(endpoint: string) {
    // The same socket options as the product's WorkerClient (sendTimeout 0: zeromq.js's synchronous send path).
    this.#socket = new zmq.Dealer({ linger: 0, sendTimeout: 0, maxMessageSize: -1 });
    this.#socket.connect(endpoint);
    this.#loop = this.#receive();
  }

  async #receive(): Promise<void> {
    try {
      for await (const _msg of this.#socket) this.#waiting.shift()?.();
    } catch {
      // closed
    }
  }

  run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const frames: Uint8Array[] = [];
    const ref = (t: Tensor) => {
      frames.push(t.bytes());
      return { __tensor__: true, dtype: t.dtype, shape: t.shape, frame: frames.length };
    };
    const obs = payload.observation;
    const images = obs.images ? Object.fromEntries(Object.entries(obs.images).map(([k, t]) => [k, ref(t)])) : undefined;
    const header = Buffer.from(encode({ type: 'inference', data: { ...(images ? { images } : {}), state: ref(obs.state), instruction: obs.instruction }, version: 1 }));
    const message = [Buffer.alloc(0), header, ...frames];
    return runLoops(async () => {
      const replied = new Promise<void>((resolve) => this.#waiting.push(resolve));
      await this.#socket.send(message);
      await replied;
    }, opts);
  }

  async close(): Promise<void> {
    this.#socket.close();
    await this.#loop;
  }
}

/** The GR00T-style Python pair (bench/groot_ref.py --driven): it measures in Python and reports µs per request. */
export class PythonRefDriver implements Driver {
  readonly maxInflight = 1; // REQ/REP: one at a time, as GR00T's client
  readonly #child: Child;
  readonly #pending: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];

  constructor(child: Child) {
    this.#child = child;
    child.process.stdout!.setEncoding('utf8');
    let buf = '';
    child.process.stdout!.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.#pending.shift()?.resolve(line);
      }
    });
    child.process.once('exit', () => {
      for (const p of this.#pending.splice(0)) p.reject(new Error(`python reference exited: ${child.stderr()}`));
    });
  }

  async run(payload: Payload, opts: BatchOptions): Promise<BatchResult> {
    const line = await new Promise<string>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#child.process.stdin!.write(JSON.stringify({ payload: payload.spec.name, samples: opts.samples, max_ms: opts.maxMs }) + '\n');
    });
    const msg = JSON.parse(line) as { latencies_us: number[]; errors: number };
    let sumUs = 0;
    for (const v of msg.latencies_us) sumUs += v;
    // One at a time: the busy time is the sum of the round trips (the stdin/stdout hop is not counted).
    return { latenciesUs: msg.latencies_us, errors: msg.errors, elapsedMs: sumUs / 1000, ...(msg.errors ? { firstError: 'reply without a [16, dof] action' } : {}) };
  }

  async close(): Promise<void> {
    const proc = this.#child.process;
    if (proc.exitCode === null && proc.signalCode === null) {
      // Ask it to stop its server and remove its temp dir; SIGTERM only if it does not.
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.stdin!.end(JSON.stringify({ quit: true }) + '\n');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
    }
    await this.#child.close();
  }
}
