// The direct path, client side: ask the gateway (the control plane) for a lease, then send requests straight to the
// leased worker with the lease's token; renew the lease before it expires and once more when the worker refuses it
// (expired, revoked after a framework stop or switch). The gateway still sees every request: the worker reports
// them (src/gateway/lease-service.ts). Shared memory works here too (the same arena option as WorkerClient).
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { ShmArena } from '../shm/shm-arena.js';
import type { LeaseGrant } from '../protocol/lease-token.js';
import type { OutgoingRequest, Reply, RequestOptions } from './types.js';
import { WorkerClient } from './worker-client.js';

export interface DirectClientOptions {
  /** The gateway's ZMQ front door (the lease is asked for there). */
  gateway: string;
  framework?: string;
  /** Default deadline per request, ms (to the worker; without it the framework's, from the lease; 2 s for the lease request). */
  timeoutMs?: number;
  /** Renew a lease this long before it expires, ms (default 20% of its length). */
  renewBeforeMs?: number;
  /** Same-host shared memory towards the worker (negotiated as with WorkerClient); closed by `close()`. */
  sharedMemory?: ShmArena;
  log?: Logger;
}

function isLeaseRefusal(err: unknown): boolean {
  return err instanceof GatewayError && err.code === 'unauthorized' && err.path === '/lease';
}

/** Requests straight to a framework's worker under a lease from the gateway. `close()` when done. */
export class DirectClient implements AsyncDisposable {
  readonly #options: DirectClientOptions;
  readonly #gateway: WorkerClient;
  readonly #log: Logger;
  #worker: WorkerClient | undefined;
  #lease: LeaseGrant | undefined;
  #leasing: Promise<LeaseGrant> | undefined;
  #closing: Promise<void> | undefined;
  /** Leases obtained so far (renewals included). */
  leasesObtained = 0;

  constructor(options: DirectClientOptions) {
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: 'zmq.direct', framework: options.framework });
    this.#gateway = new WorkerClient({ endpoint: options.gateway, timeoutMs: options.timeoutMs ?? 2_000, log: this.#log, ...(options.framework ? { framework: options.framework } : {}) });
  }

  /** The lease in use (undefined before the first request). */
  get lease(): LeaseGrant | undefined {
    return this.#lease;
  }

  /** The client towards the leased worker (undefined before the first request). */
  get worker(): WorkerClient | undefined {
    return this.#worker;
  }

  /** Sends one request to the leased worker; takes or renews the lease as needed. */
  async request(req: OutgoingRequest, opts: RequestOptions = {}): Promise<Reply> {
    if (this.#closing) throw new GatewayError('unavailable', 'direct client is closed');
    const lease = await this.#current(opts);
    try {
      return await this.#send(lease, req, opts);
    } catch (err) {
      if (!isLeaseRefusal(err)) throw err;
      this.#log.info({ event: 'lease.refused', leaseId: lease.lease_id, message: (err as Error).message });
      if (this.#lease === lease) this.#lease = undefined;
      return this.#send(await this.#current(opts), req, opts);
    }
  }

  inference(data: unknown, opts?: RequestOptions): Promise<Reply> {
    return this.request({ type: 'inference', data }, opts);
  }

  #send(lease: LeaseGrant, req: OutgoingRequest, opts: RequestOptions): Promise<Reply> {
    return this.#workerFor(lease.endpoint).request({ ...req, lease: lease.token }, { timeoutMs: this.#options.timeoutMs ?? lease.timeout_ms, ...opts });
  }

  #workerFor(endpoint: string): WorkerClient {
    if (this.#worker?.endpoint === endpoint) return this.#worker;
    const old = this.#worker;
    // A new worker (the gateway leased another one): the arena moves with us; it closes with the last client only.
    this.#worker = new WorkerClient({ endpoint, framework: this.#options.framework ?? '', log: this.#log, ...(this.#options.sharedMemory ? { sharedMemory: this.#options.sharedMemory, keepSharedMemoryOpen: true } : {}) });
    if (old) void old.close({ graceMs: 1_000 });
    return this.#worker;
  }

  /** The lease to use now: the current one unless it is about to expire; one request to the gateway at a time. */
  async #current(opts: RequestOptions): Promise<LeaseGrant> {
    const lease = this.#lease;
    const margin = this.#options.renewBeforeMs ?? (lease ? lease.ttl_ms * 0.2 : 0);
    if (lease && lease.expires_at * 1000 - margin > Date.now()) return lease;
    this.#leasing ??= (async () => {
      try {
        const reply = await this.#gateway.request({ type: 'lease', data: {}, ...(this.#options.framework ? { framework: this.#options.framework } : {}) }, opts);
        const grant = reply.result as LeaseGrant;
        if (!grant || typeof grant.token !== 'string' || typeof grant.endpoint !== 'string') throw new GatewayError('internal', 'the gateway answered the lease request without a lease');
        this.#lease = grant;
        this.leasesObtained++;
        return grant;
      } finally {
        this.#leasing = undefined;
      }
    })();
    return this.#leasing;
  }

  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      await Promise.all([this.#gateway.close(), this.#worker?.close()]);
      this.#options.sharedMemory?.close();
    })());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
