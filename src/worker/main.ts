// Entry point of the embedded demo worker process: `tsx src/worker/main.ts --endpoint <ep> [--delay-ms N]`.
// Started by the gateway as a child process (fork, so readiness is reported over the IPC channel); it exits
// when told to (SIGTERM/SIGINT) or when its parent goes away, so it never outlives the gateway.
import { parseArgs } from 'node:util';
import { createLogger, isLogLevel } from '../lib/log.js';
import { createDemoWorker } from './demo-worker.js';

export interface WorkerReadyMessage {
  type: 'ready';
  endpoint: string;
  pid: number;
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
  const delayMs = Number(values['delay-ms']);
  const worker = createDemoWorker({ endpoint: values.endpoint!, framework: values.framework!, delayMs: Number.isFinite(delayMs) ? delayMs : 0, log });
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'worker.stopping', reason });
    await worker.close({ graceMs: 2_000 });
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
