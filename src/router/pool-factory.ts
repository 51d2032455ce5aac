// Which pool serves a framework, by its config's `protocol`: native workers (WorkerPool, our ZMQ protocol), or an
// unmodified peer server the gateway is a client of (openpi's websocket server, GR00T's ZMQ service). All three
// are the one pool core (zmq/endpoint-pool.ts) over their protocol's connection.
import { createOpenpiPool } from '../backends/openpi-pool.js';
import type { FrameworkConfig } from '../config.js';
import type { Logger } from '../lib/log.js';
import type { Limits } from '../protocol/codec.js';
import { gatewayLeaseToken } from '../protocol/lease-token.js';
import { DEFAULT_OUTBOUND } from '../protocol/outbound-mapping.js';
import { createGrootPool } from '../zmq/groot-pool.js';
import { WorkerPool } from '../zmq/worker-pool.js';
import type { FrameworkPool } from './framework-registry.js';

export interface PoolFactoryOptions {
  limits?: Limits;
  healthIntervalMs?: number;
  log?: Logger;
}

export function createFrameworkPool(fw: FrameworkConfig, options: PoolFactoryOptions = {}): FrameworkPool {
  const common = {
    framework: fw.name,
    endpoints: fw.endpoints,
    timeoutMs: fw.timeoutMs,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.healthIntervalMs !== undefined ? { healthIntervalMs: options.healthIntervalMs } : {}),
    // The framework's own health settings win over the gateway's interval.
    ...(fw.health ? { healthIntervalMs: fw.health.intervalMs, healthTimeoutMs: fw.health.timeoutMs, downAfterFailures: fw.health.downAfterFailures } : {}),
    ...(options.log ? { log: options.log } : {}),
  };
  switch (fw.protocol) {
    case 'openpi':
      return createOpenpiPool({ ...common, outbound: fw.outbound ?? DEFAULT_OUTBOUND.openpi, ...(fw.peerToken ? { apiKey: fw.peerToken } : {}) });
    case 'groot':
      return createGrootPool({ ...common, outbound: fw.outbound ?? DEFAULT_OUTBOUND.groot, ...(fw.peerToken ? { apiToken: fw.peerToken } : {}) });
    default:
      return new WorkerPool({ ...common, codec: fw.codec, ...(fw.curve ? { curve: fw.curve } : {}), ...(fw.direct ? { leaseToken: gatewayLeaseToken(fw.direct.secret, fw.name) } : {}) });
  }
}
