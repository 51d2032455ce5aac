// One bench row for the openpi backend: openpi's own client → the gateway (openpi door → pipeline → openpi backend)
// → an openpi-protocol server, against the same client → the same server directly. The server is the test server
// (test/peers/openpi_server.py: openpi's server protocol on openpi-client's msgpack_numpy, a trivial policy), so the
// difference is what the gateway's two extra hops cost. Run: npx tsx bench/openpi-backend.ts [n]
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { buildGateway } from '../src/build-gateway.js';
import { parseConfig } from '../src/config.js';
import { Deadline } from '../src/lib/abort.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const n = Number(process.argv[2] ?? 300);

await run('bash', [join(ROOT, 'scripts', 'ensure-peers.sh')]);
const python = (await readFile(join(ROOT, '.venv-peers', 'python-path'), 'utf8')).trim();
const server = spawn(python, [join(ROOT, 'test', 'peers', 'openpi_server.py'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const exited = once(server, 'exit');
const lines = createInterface({ input: server.stdout });
const port = await new Promise<number>((resolve) => lines.on('line', (l) => /^LISTENING (\d+)$/.test(l) && resolve(Number(/\d+/.exec(l)![0]))));
const gateway = await buildGateway(
  parseConfig(
    { logLevel: 'warn', openpi: { host: '127.0.0.1', port: 0, framework: 'pi' }, frameworks: { pi: { protocol: 'openpi', endpoints: [`ws://127.0.0.1:${port}`], observation: 'openpi-generic', timeoutMs: 5_000 } } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  ),
);
try {
  const deadline = new Deadline(15_000);
  await gateway.router.registry.resolve('pi').pool.whenReady(deadline.signal).finally(() => deadline.dispose());
  const measure = async (url: string) => JSON.parse((await run(python, [join(ROOT, 'bench', 'openpi_roundtrip.py'), url, String(n)], { maxBuffer: 1 << 20 })).stdout) as Record<string, number>;
  const direct = await measure(`ws://127.0.0.1:${port}`);
  const via = await measure(gateway.openpiUrl!);
  const f = (x: number) => x.toFixed(2);
  console.log(`| path | n | p50 ms | p90 ms | p99 ms | mean ms |\n|---|---:|---:|---:|---:|---:|`);
  console.log(`| openpi client → openpi server (direct) | ${n} | ${f(direct.p50!)} | ${f(direct.p90!)} | ${f(direct.p99!)} | ${f(direct.mean!)} |`);
  console.log(`| openpi client → gateway (openpi door → openpi backend) → openpi server | ${n} | ${f(via.p50!)} | ${f(via.p90!)} | ${f(via.p99!)} | ${f(via.mean!)} |`);
  console.log(`| added by the gateway (p50) | | ${f(via.p50! - direct.p50!)} | | | |`);
} finally {
  await gateway.close(500);
  lines.close();
  server.kill('SIGKILL');
  await exited;
}
