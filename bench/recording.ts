// What recording costs at the L payload (three 224x224x3 uint8 images + 14 float32 state, ~452 kB): four real
// gateways (each with its embedded demo worker child) with recording off, on with full images, on with 2x-downscaled
// images, and on with images dropped, measured in interleaved rounds through the ZMQ front door (binary codec), one
// request in flight back to back (latency at saturation), at a robot's pace of 30 Hz (the realistic cost), and eight
// in flight (throughput). Also prints the bytes a recorded exchange takes on
// disk and what that is per robot at 30 Hz, and how many exchanges the writer had to drop.
// Usage: npx tsx bench/recording.ts [--requests 300] [--rounds 6] [--concurrency 8] [--paced 90] [--json]
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config.js';
import { buildGateway, type Gateway } from '../src/build-gateway.js';
import type { Tensor } from '../src/protocol/tensor.js';
import { WorkerClient } from '../src/zmq/worker-client.js';
import { makePayload } from './lib/payloads.js';
import { quantile } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '8' },
    /** Requests per side and round sent at 30 Hz. */
    paced: { type: 'string', default: '90' },
    json: { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
const PACED = Number(args.paced);
const PACE_MS = 1000 / 30;

type Mode = 'off' | 'full' | 'downscale' | 'drop';
const MODES: readonly Mode[] = ['off', 'full', 'downscale', 'drop'];

interface Side {
  mode: Mode;
  gateway: Gateway;
  client: WorkerClient;
  dir: string;
  latencyMs: number[];
  pacedMs: number[];
  throughput: number[];
}

const payload = makePayload('L', 1);
const data = payload.observation;

async function start(mode: Mode, root: string): Promise<Side> {
  const dir = join(root, mode);
  const config = parseConfig(
    { logLevel: 'silent', recording: { enabled: mode !== 'off', dir, images: mode === 'off' ? 'full' : mode, maxFileBytes: 256 * 1024 * 1024 } },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  const gateway = await buildGateway(config);
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 30_000 });
  return { mode, gateway, client, dir, latencyMs: [], pacedMs: [], throughput: [] };
}

async function one(side: Side): Promise<number> {
  const reply = await side.client.request({ type: 'inference', data });
  const action = (reply.result as { action: Tensor }).action;
  if (action.shape[0] !== 16) throw new Error('wrong reply');
  return reply.roundTripMs;
}

/** One request in flight: per-request round trips. */
async function latencyRound(side: Side): Promise<void> {
  for (let i = 0; i < REQUESTS; i++) side.latencyMs.push(await one(side));
}

/** One request every 1/30 s, as a robot's control loop sends them. */
async function pacedRound(side: Side): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < PACED; i++) {
    const wait = t0 + i * PACE_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    side.pacedMs.push(await one(side));
  }
}

/** CONCURRENCY requests in flight: requests per second. */
async function throughputRound(side: Side): Promise<void> {
  let left = REQUESTS;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (left-- > 0) await one(side);
  }));
  side.throughput.push(REQUESTS / ((performance.now() - t0) / 1000));
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'paig-bench-rec-'));
  const sides: Side[] = [];
  try {
    for (const mode of MODES) sides.push(await start(mode, root));
    for (const side of sides) for (let i = 0; i < 30; i++) await one(side); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved and rotated, so load changes on the shared machine hit every side alike.
      const order = sides.map((_, i) => sides[(i + r) % sides.length]!);
      for (const side of order) await latencyRound(side);
      for (const side of order) await pacedRound(side);
      for (const side of order) await throughputRound(side);
      if (!args.json) process.stderr.write(`round ${r + 1}/${ROUNDS} done (load ${loadavg()[0]!.toFixed(2)})\n`);
    }
    const rows = [];
    const base = sides[0]!;
    const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
    for (const side of sides) {
      await side.gateway.recorder.flush();
      const status = side.gateway.recorder.status();
      let bytes = 0;
      for (const f of await readdir(side.dir).catch(() => [])) bytes += (await stat(join(side.dir, f))).size;
      const perExchange = status.recorded > 0 ? bytes / status.recorded : 0;
      const sorted = [...side.latencyMs].sort((a, b) => a - b);
      const paced = [...side.pacedMs].sort((a, b) => a - b);
      const basePaced = [...base.pacedMs].sort((a, b) => a - b);
      rows.push({
        mode: side.mode,
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        p50Ratio: quantile(sorted, 0.5) / quantile([...base.latencyMs].sort((a, b) => a - b), 0.5),
        paced50Ms: quantile(paced, 0.5),
        paced99Ms: quantile(paced, 0.99),
        paced50Ratio: quantile(paced, 0.5) / quantile(basePaced, 0.5),
        rps: median(side.throughput),
        rpsRatio: median(side.throughput) / median(base.throughput),
        recorded: status.recorded,
        dropped: status.dropped,
        bytesPerExchange: Math.round(perExchange),
        mbPerSecondAt30Hz: (perExchange * 30) / 1e6,
        gbPerHourAt30Hz: (perExchange * 30 * 3600) / 1e9,
      });
    }
    if (args.json) {
      process.stdout.write(JSON.stringify({ requests: REQUESTS, rounds: ROUNDS, concurrency: CONCURRENCY, load: loadavg(), rows }, null, 2) + '\n');
      return;
    }
    console.log(`L payload (${payload.tensorBytes} tensor bytes), ZMQ binary, ${ROUNDS} rounds x ${REQUESTS} requests per side, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('| recording | p50 ms back to back | p99 | vs off | p50 ms at 30 Hz | p99 | vs off | req/s (8 in flight) | vs off | recorded | dropped | bytes/exchange | MB/s at 30 Hz | GB/h at 30 Hz |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.mode} | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.p50Ratio.toFixed(2)} | ${r.paced50Ms.toFixed(3)} | ${r.paced99Ms.toFixed(3)} | ${r.paced50Ratio.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.rpsRatio.toFixed(3)} | ${r.recorded} | ${r.dropped} | ${r.bytesPerExchange} | ${r.mbPerSecondAt30Hz.toFixed(2)} | ${r.gbPerHourAt30Hz.toFixed(1)} |`);
    }
  } finally {
    for (const side of sides) {
      await side.client.close();
      await side.gateway.close(1_000);
    }
    await rm(root, { recursive: true, force: true });
  }
}

await main();
