// The embedded default worker: the demo policy served by a TS WorkerServer (framework `demo`).
import { sleep } from '../lib/abort.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Limits } from '../protocol/codec.js';
import { WorkerServer } from '../zmq/worker-server.js';
import { DEMO_MODEL, demoPolicy } from './default-policy.js';

export interface DemoWorkerOptions {
  /** Where to bind; `tcp://127.0.0.1:*` picks a free port. */
  endpoint: string;
  framework?: string;
  /** Emulated compute time before each inference answer, ms. */
  delayMs?: number;
  capacity?: number;
  limits?: Limits;
  log?: Logger;
  /** See WorkerServerOptions: same-host shared memory, and the direct path's lease secret. */
  sharedMemoryDir?: string;
  leaseSecret?: string | Buffer;
}

/** A WorkerServer with the demo policy's handlers registered (inference, train, command, status; health is built in). */
export function createDemoWorker({ endpoint, framework = 'demo', delayMs = 0, capacity, limits, log = silentLogger, sharedMemoryDir, leaseSecret }: DemoWorkerOptions): WorkerServer {
  const server = new WorkerServer({ endpoint, framework, model: DEMO_MODEL, capacity, limits, log, ...(sharedMemoryDir !== undefined ? { sharedMemoryDir } : {}), ...(leaseSecret !== undefined ? { leaseSecret } : {}) });
  const counts = { inference: 0, train: 0, command: 0 };
  const startedAt = Date.now();
  // Synchronous without a delay: the server then needs no deadline timer or promise for the request.
  server.register('inference', (data, ctx) => {
    counts.inference++;
    if (delayMs > 0) return sleep(delayMs, ctx.signal).then(() => demoPolicy(data));
    return demoPolicy(data);
  });
  server.register('train', (data) => {
    counts.train++;
    // The demo has nothing to train: it acknowledges the request so clients can test the round trip.
    return { accepted: true, job_id: `demo-train-${counts.train}`, note: 'the demo policy does not train; request acknowledged', config: data };
  });
  server.register('command', (data) => {
    counts.command++;
    const command = data !== null && typeof data === 'object' ? (data as Record<string, unknown>).command : undefined;
    return { acknowledged: true, command: typeof command === 'string' ? command : null };
  });
  server.register('status', () => ({
    framework,
    model: DEMO_MODEL,
    delay_ms: delayMs,
    requests: { ...counts },
    uptime_s: (Date.now() - startedAt) / 1000,
  }));
  return server;
}
