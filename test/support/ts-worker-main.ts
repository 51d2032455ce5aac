// A TypeScript worker run as a child process by tests: `echo` returns its data, `slow` waits data.delay_ms
// first, `inference` answers the demo-like chunk. Prints one JSON line when listening; exits on SIGTERM.
import { WorkerServer } from '../../src/zmq/worker-server.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { sleep } from '../../src/lib/abort.js';

const endpoint = process.argv[2] ?? 'tcp://127.0.0.1:*';
const server = new WorkerServer({ endpoint, framework: process.argv[3] ?? 'test' });
server.register('echo', (data) => data);
server.register('slow', async (data, { signal }) => {
  await sleep(Number((data as { delay_ms?: number }).delay_ms ?? 100), signal);
  return data;
});
server.register('inference', () => ({ action: Tensor.of(new Float32Array(16 * 14).fill(0.5), [16, 14]) }));
const bound = await server.start();
process.stdout.write(JSON.stringify({ event: 'worker.listening', endpoint: bound, pid: process.pid }) + '\n');
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
