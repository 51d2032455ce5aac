// The workers of one framework over our ZMQ protocol: the pool policy of endpoint-pool.ts with a WorkerClient per
// endpoint (pipelined: many requests in flight on one DEALER socket).
import type { Logger } from '../lib/log.js';
import type { Codec, Limits } from '../protocol/codec.js';
import type { CurveClientKeys } from './curve-keys.js';
import { EndpointPool, type PoolOptions } from './endpoint-pool.js';
import { WorkerClient } from './worker-client.js';

export type { PoolRequestOptions } from './endpoint-pool.js';

export interface WorkerPoolOptions extends PoolOptions {
  codec?: Codec;
  limits?: Limits;
  /** CURVE towards every endpoint of the pool (Z85: the workers' public key and the gateway's client pair). */
  curve?: CurveClientKeys;
  /** A lease token sent with every request (the gateway's own token towards workers that enforce leases). */
  leaseToken?: string;
}

export class WorkerPool extends EndpointPool<WorkerClient> {
  constructor(options: WorkerPoolOptions) {
    const { framework, timeoutMs, codec, limits, log, curve, leaseToken } = options;
    super({
      ...options,
      noun: 'worker',
      component: 'zmq.pool',
      connect: (endpoint) => new WorkerClient({ endpoint, framework, timeoutMs, codec, limits, log, ...(curve ? { curve } : {}), ...(leaseToken ? { leaseToken } : {}) }),
    });
  }

  /**
   * Waits until one of `endpoints` answers health with ready=true, using a pool of its own that is closed on
   * every exit: what a command-line `up` or an exec'd worker needs without a running gateway.
   */
  static async waitUntilReady(endpoints: readonly string[], { framework = 'worker', signal, healthIntervalMs = 250, log }: { framework?: string; signal: AbortSignal; healthIntervalMs?: number; log?: Logger }): Promise<void> {
    const pool = new WorkerPool({ framework, endpoints, healthIntervalMs, ...(log ? { log } : {}) });
    try {
      await pool.start({ signal }).catch(() => undefined); // the first check may fail while the worker binds
      await pool.whenReady(signal);
    } finally {
      await pool.close();
    }
  }
}
