// The TypeScript demo worker for the benchmark: the same createDemoWorker as src/worker/main.ts, with the
// header limit raised so the original JSON codec (whose header holds every tensor as number lists) can carry
// L and XL. `tsx bench/servers/ts-worker-main.ts <bind endpoint> <framework> <maxHeaderBytes> [shmDir] [leaseSecretFile]`; prints
// {"event":"worker.listening","endpoint"} and exits on SIGTERM/SIGINT or when stdin ends.
import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS } from '../../src/protocol/codec.js';
import { createDemoWorker } from '../../src/worker/demo-worker.js';
import { closeOnStop } from './stop.js';

const [endpoint = 'tcp://127.0.0.1:*', framework = 'ts', maxHeader, shmDir, secretFile] = process.argv.slice(2);
const maxHeaderBytes = Number(maxHeader ?? DEFAULT_LIMITS.maxHeaderBytes);
const worker = createDemoWorker({
  endpoint, framework, limits: { ...DEFAULT_LIMITS, maxHeaderBytes },
  ...(shmDir ? { sharedMemoryDir: shmDir } : {}),
  ...(secretFile ? { leaseSecret: readFileSync(secretFile, 'utf8').trim() } : {}),
});
const bound = await worker.start();
process.stdout.write(JSON.stringify({ event: 'worker.listening', endpoint: bound, pid: process.pid }) + '\n');
closeOnStop(() => worker.close());
