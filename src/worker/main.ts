// Entry point of the embedded demo worker process: `tsx src/worker/main.ts --endpoint <ep> [--delay-ms N]`.
// Started by the gateway as a child process (fork, so readiness is reported over the IPC channel); it exits
// when told to (SIGTERM/SIGINT) or when its parent goes away, so it never outlives the gateway.
// It inherits the gateway's environment: with OTEL_* variables set it exports its spans too (service name
// `<OTEL_SERVICE_NAME or physical-ai-gateway>-worker`), continuing the gateway's traces.
import { parseArgs } from 'node:util';
import { createLogger, isLogLevel, type Logger } from '../lib/log.js';
import { createDemoWorker } from './demo-worker.js';

export interface WorkerReadyMessage {
  type: 'ready';
  endpoint: string;
  pid: number;
}

/**
 * The OpenTelemetry SDK when an OTEL_* variable asks for it; the SDK is loaded only then, so a plain start stays fast.
 */
async function startWorkerTelemetry(log: Logger): Promise<{ shutdown(): Promise<void> }> {
  const env = process.env;
  if (!Object.keys(env).some((k) => k.startsWith('OTEL_'))) return { shutdown: async () => {} };
  const { startTelemetry } = await import('../telemetry/sdk.js');
  const serviceName = `${env.OTEL_SERVICE_NAME?.trim() || 'physical-ai-gateway'}-worker`;
  // Spans only: the worker has no metrics of its own (the gateway exports the request metrics).
  return startTelemetry({ serviceName, env: { ...env, OTEL_SERVICE_NAME: serviceName, OTEL_METRICS_EXPORTER: 'none' }, log });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      endpoint: { type: 'string', default: 'tcp://127.0.0.1:5555' },
      framework: { type: 'string', default: 'demo' },
      'delay-ms': { type: 'string', default: '0' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const level = isLogLevel(values['log-level']) ? values['log-level'] : 'info';
  const log = createLogger({ level, bindings: { process: 'demo-worker' } });
  const telemetry = await startWorkerTelemetry(log);
  const delayMs = Number(values['delay-ms']);
  const worker = createDemoWorker({ endpoint: values.endpoint!, framework: values.framework!, delayMs: Number.isFinite(delayMs) ? delayMs : 0, log });
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'worker.stopping', reason });
    await worker.close({ graceMs: 2_000 });
    await telemetry.shutdown().catch((err: unknown) => log.warn({ event: 'worker.telemetry_shutdown_failed', err }));
    process.disconnect?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('disconnect', () => void stop('parent gone'));
  const endpoint = await worker.start();
  const ready: WorkerReadyMessage = { type: 'ready', endpoint, pid: process.pid };
  if (process.send) process.send(ready);
  else process.stdout.write(JSON.stringify(ready) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo worker failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
