// A real FrameworkLauncher without Docker, for router-level tests: each launch starts a TS demo worker (a real ZMQ
// WorkerServer) after a start-up delay; stop() closes it on purpose and announces it, as the Docker launcher's
// idle stop does.
import { deferred, sleep } from '../../src/lib/abort.js';
import { GatewayError } from '../../src/lib/errors.js';
import { EventStream } from '../../src/lib/event-stream.js';
import type { FrameworkLauncher, Launch, LaunchEvent } from '../../src/router/framework-launcher.js';
import { createDemoWorker } from '../../src/worker/demo-worker.js';
import type { WorkerServer } from '../../src/zmq/worker-server.js';

export class InProcessLauncher implements FrameworkLauncher {
  calls = 0;
  readonly #running = new Map<string, { worker: WorkerServer; end: (reason: GatewayError) => void }>();
  readonly #events = new EventStream<LaunchEvent>();
  constructor(readonly startDelayMs: number) {}
  async ensureRunning(framework: string, signal: AbortSignal): Promise<Launch> {
    this.calls++;
    await sleep(this.startDelayMs, signal);
    const worker = createDemoWorker({ endpoint: 'tcp://127.0.0.1:*', framework });
    const ended = deferred<GatewayError>();
    this.#running.set(framework, { worker, end: ended.resolve });
    return { endpoints: [await worker.start()], ended: ended.promise };
  }
  async stop(framework: string, reason: 'idle' | 'request' = 'idle'): Promise<void> {
    const running = this.#running.get(framework);
    this.#running.delete(framework);
    await running?.worker.close();
    running?.end(new GatewayError('unavailable', `${framework} stopped`));
    this.#events.emit({ type: 'stopped', framework, reason });
  }
  onEvent(listener: (event: LaunchEvent) => void): () => void {
    return this.#events.on(listener);
  }
  async close(): Promise<void> {
    await Promise.all([...this.#running.values()].map((r) => r.worker.close()));
  }
}

