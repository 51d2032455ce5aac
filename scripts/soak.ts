// Soak: a gateway (its own process, the embedded demo worker, loopback, ephemeral ports) under a steady mixed load
// for --minutes, reporting per minute its RSS and V8 heap, its open file descriptors (/proc/<pid>/fd), p50/p99
// latency of the ok answers, and errors by code, hung and misrouted (see bench/lib/reliability-load.ts).
// Load: 6 loops, HTTP msgpack and ZMQ binary, S and L, one request in 20 a bad input (must be bad_request).
// What to look for: RSS, heap and fds flat after the first minutes; 0 hung, 0 misrouted; only bad_request errors.
//
//   node --import tsx scripts/soak.ts [--minutes 30] [--concurrency 6] [--out bench/results]
//
// Results: bench/results/reliability-soak.json and the soak section of bench/results/reliability.md.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, roundLoad } from '../bench/lib/machine.js';
import { ReliabilityClient, runLoad, type Outcome } from '../bench/lib/reliability-load.js';
import { writeReliabilityMarkdown, type SoakMinute } from '../bench/lib/reliability-report.js';
import { quantile } from '../bench/lib/stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

type ChildMessage = { type: 'ready'; httpUrl: string; zmqEndpoint: string } | { type: 'memory'; rss: number; heapUsed: number };

/** The gateway side: build it, tell the parent where it listens, answer memory questions, close on request. */
async function gatewayChild(): Promise<void> {
  const { parseConfig } = await import('../src/config.js');
  const { buildGateway } = await import('../src/build-gateway.js');
  const gateway = await buildGateway(parseConfig({}, { httpPort: 0, httpHost: '127.0.0.1', zmqEndpoint: 'tcp://127.0.0.1:*' }));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'memory') {
      const { rss, heapUsed } = process.memoryUsage();
      process.send!({ type: 'memory', rss, heapUsed } satisfies ChildMessage);
    } else if (m.type === 'close') void gateway.close(1000).then(() => process.exit(0));
  });
  process.on('disconnect', () => void gateway.close(500).then(() => process.exit(0)));
  process.send!({ type: 'ready', httpUrl: gateway.httpUrl, zmqEndpoint: gateway.zmqEndpoint } satisfies ChildMessage);
}

function nextMessage<T extends ChildMessage['type']>(child: ChildProcess, type: T, timeoutMs = 30_000): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.off('message', on), reject(new Error(`no '${type}' from the gateway within ${timeoutMs} ms`))), timeoutMs);
    const on = (m: ChildMessage) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as Extract<ChildMessage, { type: T }>);
    };
    child.on('message', on);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '30' },
      concurrency: { type: 'string', default: '6' },
      out: { type: 'string', default: join(ROOT, 'bench/results') },
      'gateway-child': { type: 'boolean', default: false },
    },
  });
  if (values['gateway-child']) return gatewayChild();
  const minutes = Number(values.minutes);
  const concurrency = Number(values.concurrency);
  if (!(minutes >= 1 && minutes <= 240) || !(concurrency >= 1 && concurrency <= 16)) throw new Error('--minutes 1..240, --concurrency 1..16');

  const loadBefore = roundLoad();
  const child = fork(fileURLToPath(import.meta.url), ['--gateway-child'], { execArgv: ['--initial-old-space-size=128', '--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const ready = await nextMessage(child, 'ready');
  const pid = child.pid!;
  const client = new ReliabilityClient({ httpUrl: ready.httpUrl, zmqEndpoint: ready.zmqEndpoint });
  const stop = new AbortController();
  const perMinute: SoakMinute[] = [];
  let current = { latencies: [] as number[], requests: 0, ok: 0, errors: {} as Record<string, number>, hung: 0, misrouted: 0 };
  const record = (o: Outcome) => {
    current.requests++;
    if (o.kind === 'ok') {
      current.ok++;
      if (o.size !== 'bad') current.latencies.push(o.doneAt - o.sentAt);
    } else if (o.kind === 'hung') current.hung++;
    else if (o.kind === 'misrouted') current.misrouted++;
    else current.errors[o.code ?? 'unknown'] = (current.errors[o.code ?? 'unknown'] ?? 0) + 1;
  };
  // Bad inputs answered with bad_request count as ok outcomes in the load; count them as the errors they are here.
  const recordWithBad = (o: Outcome) => {
    if (o.size === 'bad' && o.kind === 'ok') {
      current.requests++;
      current.errors.bad_request = (current.errors.bad_request ?? 0) + 1;
      return;
    }
    record(o);
  };
  const load = runLoad(client, { concurrency, maxRequests: 50_000_000, signal: stop.signal, badEvery: 20, onOutcome: recordWithBad });
  const hardStop = setTimeout(() => stop.abort(), (minutes * 60 + 120) * 1000);
  try {
    for (let minute = 1; minute <= minutes; minute++) {
      await new Promise((r) => setTimeout(r, 60_000));
      const memory = await nextMessageAfter(child);
      const sorted = Float64Array.from(current.latencies).sort();
      const row: SoakMinute = {
        minute,
        rss_mb: Math.round((Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024) * 10) / 10,
        heap_used_mb: Math.round((memory.heapUsed / 1048576) * 10) / 10,
        fds: readdirSync(`/proc/${pid}/fd`).length,
        requests: current.requests,
        ok: current.ok,
        errors: current.errors,
        hung: current.hung,
        misrouted: current.misrouted,
        p50_ms: sorted.length ? Math.round(quantile(sorted, 0.5) * 100) / 100 : 0,
        p99_ms: sorted.length ? Math.round(quantile(sorted, 0.99) * 100) / 100 : 0,
      };
      perMinute.push(row);
      process.stderr.write(`[soak] ${JSON.stringify(row)}\n`);
      current = { latencies: [], requests: 0, ok: 0, errors: {}, hung: 0, misrouted: 0 };
    }
  } finally {
    clearTimeout(hardStop);
    stop.abort();
    await load;
    await client.close();
    child.send({ type: 'close' });
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
  const report = { date: new Date().toISOString(), minutes, concurrency, per_minute: perMinute, machine: { ...machineInfo(), load_before: loadBefore, load_after: roundLoad() } };
  mkdirSync(values.out!, { recursive: true });
  writeFileSync(join(values.out!, 'reliability-soak.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeReliabilityMarkdown(values.out!);
  if (perMinute.some((m) => m.hung > 0 || m.misrouted > 0)) process.exitCode = 1;
}

function nextMessageAfter(child: ChildProcess): Promise<{ heapUsed: number }> {
  const answer = nextMessage(child, 'memory');
  child.send({ type: 'memory' });
  return answer;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
