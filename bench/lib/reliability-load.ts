// Client load for the reliability runs (scripts/fault-run.ts, scripts/soak.ts, test/reliability/): a few concurrent
// loops sending inference requests through both front doors (HTTP msgpack, ZMQ binary frames) at S and L payloads,
// each request with its own state vector, and every answer checked against what was sent:
//   - ok: 200 / success, the request id echoed and the action chunk equal to the demo policy's answer for *this*
//     request's state (action[k][j] = float32(state[j] + float32(0.01 (k+1)))); anything else that looks like
//     success is `misrouted` (a reply meant for another request, or a stale one);
//   - error: an error answer, counted by its code;
//   - hung: no answer within the deadline plus a grace period (the client's own timer; the gateway must answer
//     every request by its deadline, with `timeout` if nothing else).
// Loops are bounded by count and by an AbortSignal; nothing here retries.
import { randomUUID } from 'node:crypto';
import { decode as msgpackDecode } from '@msgpack/msgpack';
import { GatewayError } from '../../src/lib/errors.js';
import { decodeMessage, encodeMessage } from '../../src/protocol/codec.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { makePayload, mulberry32 } from './payloads.js';

export type Door = 'http' | 'zmq';
export type Size = 'S' | 'L';
export type OutcomeKind = 'ok' | 'error' | 'hung' | 'misrouted';

export interface Outcome {
  kind: OutcomeKind;
  door: Door;
  size: Size | 'bad';
  /** Error code (error outcomes), or what did not match (misrouted). */
  code?: string;
  /** performance.now() when sent and when answered (or given up on). */
  sentAt: number;
  doneAt: number;
}

export interface LoadTarget {
  httpUrl: string;
  zmqEndpoint: string;
  framework?: string;
}

export interface LoadOptions {
  /** Loops running at once (each has one request in flight). Default 6. */
  concurrency?: number;
  /** The gateway's deadline for each request, ms (sent as timeout_ms). Default 1000. */
  deadlineMs?: number;
  /** Extra time past the deadline before a request counts as hung, ms. Default 2000. */
  graceMs?: number;
  /** Stop after this many requests in all. */
  maxRequests: number;
  /** Stop when aborted (loops finish their request in flight). */
  signal: AbortSignal;
  /** Every n-th request of a loop is a bad input (0: none). Bad inputs must come back as bad_request. */
  badEvery?: number;
  /** Called for each outcome. */
  onOutcome: (o: Outcome) => void;
  /** Pause between a loop's requests, ms (0: back to back). */
  pauseMs?: number;
}

const STEPS = Array.from({ length: 16 }, (_, k) => Math.fround(0.01 * (k + 1)));

/** Whether `action` (nested lists or a Tensor) is the demo policy's answer for `state`. */
export function matchesDemo(action: unknown, state: Float32Array): boolean {
  const rows = action instanceof Tensor ? (action.toNested() as number[][]) : (action as number[][]);
  if (!Array.isArray(rows) || rows.length !== 16) return false;
  for (let k = 0; k < 16; k++) {
    const row = rows[k];
    if (!Array.isArray(row) || row.length !== state.length) return false;
    for (let j = 0; j < state.length; j++) if (row[j] !== Math.fround(state[j]! + STEPS[k]!)) return false;
  }
  return true;
}

/** The L images, built once (the state is what differs per request and what the answer is checked against). */
let lImages: Record<string, Tensor> | undefined;
function imagesL(): Record<string, Tensor> {
  return (lImages ??= makePayload('L', 7).observation.images!);
}

function observation(size: Size, seq: number): { data: Record<string, unknown>; state: Float32Array } {
  const rand = mulberry32(seq * 2654435761);
  const state = new Float32Array(14);
  for (let j = 0; j < state.length; j++) state[j] = Math.fround(rand() * 2 - 1);
  const data: Record<string, unknown> = { state: Tensor.of(state), instruction: `req ${seq}` };
  if (size === 'L') data.images = imagesL();
  return { data, state };
}

/** A client over both doors; `close()` closes the ZMQ socket. */
export class ReliabilityClient {
  readonly #target: LoadTarget;
  readonly #zmq: WorkerClient;
  readonly #deadlineMs: number;
  readonly #graceMs: number;

  constructor(target: LoadTarget, { deadlineMs = 1000, graceMs = 2000 }: { deadlineMs?: number; graceMs?: number } = {}) {
    this.#target = target;
    this.#deadlineMs = deadlineMs;
    this.#graceMs = graceMs;
    // The client's own timeout is past our hung timer, so a hang shows as `hung`, not as a client-side timeout.
    this.#zmq = new WorkerClient({ endpoint: target.zmqEndpoint, codec: 'binary', timeoutMs: deadlineMs + graceMs + 5_000 });
  }

  /** One request; never rejects. `bad`: a state that is not a tensor, which must come back as bad_request. */
  async send(door: Door, size: Size, seq: number, bad = false): Promise<Outcome> {
    const sentAt = performance.now();
    const { data, state } = observation(size, seq);
    if (bad) data.state = 'not a tensor';
    const done = (kind: OutcomeKind, code?: string): Outcome => ({ kind, door, size: bad ? 'bad' : size, code, sentAt, doneAt: performance.now() });
    const hungAfterMs = this.#deadlineMs + this.#graceMs;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve('hung');
      }, hungAfterMs);
    });
    try {
      const answer = door === 'http' ? this.#http(data, controller.signal) : this.#zmqCall(data, controller.signal);
      const result = await Promise.race([answer, hung]);
      if (result === 'hung') {
        answer.catch(() => undefined);
        return done('hung');
      }
      if (!result.ok) return bad && result.code === 'bad_request' ? done('ok') : done('error', result.code);
      if (bad) return done('misrouted', 'bad input answered with success');
      if (result.requestId !== undefined && result.expectedId !== undefined && result.requestId !== result.expectedId) return done('misrouted', 'request_id');
      return matchesDemo((result.result as { action?: unknown } | undefined)?.action, state) ? done('ok') : done('misrouted', 'payload');
    } catch (err) {
      return done('error', err instanceof GatewayError ? err.code : `client:${(err as Error).name}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async #http(data: Record<string, unknown>, signal: AbortSignal): Promise<Answer> {
    const requestId = randomUUID();
    const envelope = { data, request_id: requestId, timeout_ms: this.#deadlineMs };
    const res = await fetch(`${this.#target.httpUrl}/v1/frameworks/${this.#target.framework ?? 'demo'}/inference`, {
      method: 'POST',
      headers: { 'content-type': 'application/msgpack' },
      body: encodeMessage(envelope, 'msgpack')[0] as Uint8Array<ArrayBuffer>,
      signal,
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) {
      const body = msgpackDecode(bytes) as { error?: { code?: string } };
      return { ok: false, code: body.error?.code ?? `http_${res.status}` };
    }
    const header = decodeMessage([bytes]).header as { request_id?: string; result?: unknown };
    return { ok: true, result: header.result, requestId: header.request_id, expectedId: requestId };
  }

  async #zmqCall(data: Record<string, unknown>, signal: AbortSignal): Promise<Answer> {
    try {
      // WorkerClient matches replies to requests by its own request id; the payload check is what catches a reply
      // meant for another request at this door.
      const reply = await this.#zmq.request({ type: 'inference', data, ...(this.#target.framework ? { framework: this.#target.framework } : {}) }, { timeoutMs: this.#deadlineMs, signal });
      return { ok: true, result: reply.result };
    } catch (err) {
      if (err instanceof GatewayError) return { ok: false, code: err.code };
      throw err;
    }
  }

  close(): Promise<void> {
    return this.#zmq.close();
  }
}

type Answer = { ok: true; result: unknown; requestId?: string; expectedId?: string } | { ok: false; code: string };

/** The mix a loop sends: loop i uses door i%2 and size (i>>1)%2, so 4+ loops cover every pair. */
export function loopMix(i: number): { door: Door; size: Size } {
  return { door: i % 2 === 0 ? 'http' : 'zmq', size: (i >> 1) % 2 === 0 ? 'S' : 'L' };
}

/** Runs `concurrency` loops until `signal` aborts or `maxRequests` have been sent. Resolves when all have finished. */
export async function runLoad(client: ReliabilityClient, o: LoadOptions): Promise<number> {
  let sent = 0;
  const loops = Array.from({ length: o.concurrency ?? 6 }, async (_, i) => {
    const { door, size } = loopMix(i);
    for (let n = 0; !o.signal.aborted && sent < o.maxRequests; n++) {
      const seq = sent++;
      const bad = (o.badEvery ?? 0) > 0 && n % o.badEvery! === o.badEvery! - 1;
      o.onOutcome(await client.send(door, size, seq, bad));
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  });
  await Promise.all(loops);
  return sent;
}
