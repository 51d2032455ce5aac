// The Python SDK client's one-host paths against the GR00T-style pyzmq round trip, in one interleaved run:
//
//   nice -n 10 npx tsx bench/py-client.ts [--payloads S,L,XL] [--rounds 5] [--samples 300]
//
// Starts a Python SDK worker (demo policy, shared memory, lease secret) and a gateway (bench/servers/gateway-main.ts,
// framework `py` with a direct path), each its own process, then runs bench/py_client_bench.py (Debian's python,
// the SDK from docker/worker-sdk: the same interpreter and pyzmq as groot_ref.py), which measures every path itself.
// Writes bench/results/py-client.json and .md (ratios to the GR00T-style pair, p50 µs, machine and load).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startChild, type Child } from './lib/children.js';
import { machineInfo, roundLoad } from './lib/machine.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = '/usr/bin/python3';
const { values: opts } = parseArgs({ options: { payloads: { type: 'string', default: 'S,L,XL' }, rounds: { type: 'string', default: '5' }, samples: { type: 'string', default: '300' }, out: { type: 'string', default: join(ROOT, 'bench/results') } } });

const shmDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-bench-pyshm-'));
const secretDir = mkdtempSync(join(tmpdir(), 'paig-bench-pylease-'));
const secret = join(secretDir, 'lease.secret');
writeFileSync(secret, randomBytes(32).toString('hex'), { mode: 0o600 });
const env = { ...process.env, PYTHONPATH: join(ROOT, 'docker/worker-sdk'), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
const children: Child[] = [];

interface Quantiles {
  n: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  vs_groot_p50: number;
}

try {
  const load_before = roundLoad();
  const worker = await startChild({
    name: 'Python SDK worker',
    command: PYTHON,
    args: ['-m', 'physical_ai_worker', '--endpoint', 'tcp://127.0.0.1:*', '--framework', 'py', '--policy', 'demo', '--log-level', 'warning', '--shm-dir', shmDir, '--lease-secret-file', secret],
    env,
    cwd: ROOT,
    ready: (m) => m.event === 'worker.listening',
  });
  children.push(worker);
  const config = {
    http: { host: '127.0.0.1', port: 0 },
    zmq: { endpoint: 'tcp://127.0.0.1:*' },
    logLevel: 'warn',
    sharedMemory: { dir: shmDir },
    frameworks: { py: { endpoints: [String(worker.hello.endpoint)], codec: 'binary', timeoutMs: 30_000, direct: { secretFile: secret, leaseTtlMs: 60_000, maxInFlight: 64 } } },
  };
  const gateway = await startChild({
    name: 'gateway',
    command: process.execPath,
    args: ['--import', 'tsx', join(ROOT, 'bench/servers/gateway-main.ts'), JSON.stringify(config)],
    cwd: ROOT,
    ready: (m) => m.event === 'gateway.listening',
  });
  children.push(gateway);
  const args = [join(ROOT, 'bench/py_client_bench.py'), '--gateway', String(gateway.hello.zmqEndpoint), '--framework', 'py', '--shm-dir', shmDir, '--payloads', opts.payloads!, '--rounds', opts.rounds!, '--samples', opts.samples!];
  process.stderr.write(`[py-client] ${PYTHON} ${args.join(' ')}\n`);
  const { stdout } = await promisify(execFile)(PYTHON, args, { env, cwd: ROOT, maxBuffer: 64 << 20, timeout: 30 * 60_000 });
  const report = JSON.parse(stdout) as { started: number; seconds: number; rounds: number; samples: number; info: Record<string, string>; results: Record<string, Record<string, Quantiles>> };
  const machine = { ...machineInfo(report.info), load_before, load_after: roundLoad() };
  const payloads = opts.payloads!.split(',');
  const labels: Record<string, string> = {
    'py-gateway-frames': 'Python ZMQClient → gateway ZMQ door, binary frames',
    'py-gateway-shm': 'Python ZMQClient → gateway ZMQ door, shared memory',
    'py-direct-lease-frames': 'Python DirectClient, direct under a gateway lease, frames',
    'py-direct-lease-shm': 'Python DirectClient, direct under a gateway lease, shared memory',
    'groot-ref': 'Python pyzmq REQ/REP, GR00T-style (reference)',
  };
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  const lines = [
    `# Python client paths (bench/py-client.ts)`,
    '',
    `${new Date(report.started * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC, ${report.seconds} s, ${report.rounds} interleaved rounds of up to ${report.samples} samples per path and payload, 1 in flight, tcp.`,
    `Machine: ${machine.cpu_model}, ${machine.cores} cores, ${machine.memory_gb} GB; load average ${machine.load_before.join(' / ')} before, ${machine.load_after?.join(' / ') ?? '?'} after; Python ${report.info.python}, pyzmq ${report.info.pyzmq}, libzmq ${report.info.libzmq}, numpy ${report.info.numpy}; Node ${machine.node}.`,
    '',
    `p50 µs (× the GR00T-style pair at the same payload):`,
    '',
    `| path | ${payloads.join(' | ')} |`,
    `|---|${payloads.map(() => '---:').join('|')}|`,
    ...Object.entries(labels).map(([id, label]) => `| ${label} | ${payloads.map((p) => { const q = report.results[id]![p]!; return `${f(q.p50_us)} (${q.vs_groot_p50.toFixed(2)}×)`; }).join(' | ')} |`),
    '',
    `p99 µs: ${Object.keys(labels).map((id) => `${id} ${payloads.map((p) => `${p} ${f(report.results[id]![p]!.p99_us)}`).join(', ')}`).join('; ')}.`,
    '',
  ];
  writeFileSync(join(opts.out!, 'py-client.json'), JSON.stringify({ machine, ...report }, null, 1) + '\n');
  writeFileSync(join(opts.out!, 'py-client.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
} finally {
  for (const c of children.reverse()) await c.close();
  rmSync(shmDir, { recursive: true, force: true });
  rmSync(secretDir, { recursive: true, force: true });
}
