// Telemetry overhead, measured in one run:
//  1. the per-request telemetry work of the gateway in a hot loop (requestStarted/end with stages, a server span,
//     a client span injected into the header): no telemetry vs metrics + no-op tracing (no SDK) vs metrics +
//     tracing with the SDK registered (BatchSpanProcessor into an in-memory exporter);
//  2. the full inference path at the L payload (three 224x224x3 images + state) through a real gateway's ZMQ
//     front door to its embedded demo worker, metrics on vs off in interleaved blocks on the same gateway
//     (the OTel SDK is registered throughout; the gateway itself does not start spans yet, so the span cost
//     from part 1 is added to give the projected ratio).
// Usage: npx tsx bench/telemetry-overhead.ts [--requests 4000] [--rounds 10] [--json]
import { parseArgs } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { BatchSpanProcessor, InMemorySpanExporter, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Registry } from 'prom-client';
import { sampleObservation } from '../src/cli/sample.js';
import { parseConfig } from '../src/config.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { RequestHeader } from '../src/protocol/messages.js';
import { createMetrics, type GatewayMetrics } from '../src/telemetry/metrics.js';
import { startClientSpan, startServerSpan } from '../src/telemetry/tracing.js';
import { WorkerClient } from '../src/zmq/worker-client.js';
import { freePort } from '../test/support/prometheus.js';

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200000' },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    'skip-gateway': { type: 'boolean', default: false },
    /** A/A check: both sides run with metrics off, to see the noise floor of the path measurement. */
    'aa': { type: 'boolean', default: false },
  },
});
const ITERATIONS = Number(args.iterations);
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

function registerSdk(): { exporter: InMemorySpanExporter; close(): Promise<void> } {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 4_096, scheduledDelayMillis: 200 })],
  });
  provider.register();
  return {
    exporter,
    async close() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** One request's worth of the gateway's telemetry calls. */
function perRequest(metrics: GatewayMetrics | undefined, tracing: boolean, i: number, incoming: RequestHeader): void {
  const obs = metrics?.requestStarted({ framework: 'demo', transport: 'zmq', codec: 'binary' });
  const server = tracing ? startServerSpan({ framework: 'demo', transport: 'zmq', codec: 'binary', requestId: String(i) }, incoming) : undefined;
  const outgoing: RequestHeader = { type: 'inference' };
  const client = tracing ? startClientSpan(outgoing, { framework: 'demo', endpoint: 'tcp://127.0.0.1:5555', requestId: String(i) }, server!.context) : undefined;
  client?.end('ok');
  server?.end('ok');
  obs?.end({ outcome: 'ok', requestBytes: 452_000, responseBytes: 1_200, stagesMs: { decode: 0.01, queue: 0.002, worker_compute: 0.3, transport: 0.1 } });
}

async function hotLoop(): Promise<Record<string, number>> {
  const incoming: RequestHeader = { type: 'inference', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
  const run = (label: string, metrics: GatewayMetrics | undefined, tracing: boolean): [string, number] => {
    for (let i = 0; i < 20_000; i++) perRequest(metrics, tracing, i, incoming); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) perRequest(metrics, tracing, i, incoming);
    return [label, Number(process.hrtime.bigint() - t0) / ITERATIONS];
  };
  const out: Record<string, number> = {};
  const add = ([k, v]: [string, number]) => (out[k] = v);
  add(run('none', undefined, false));
  add(run('metrics, tracing API without SDK', createMetrics(new Registry()), true));
  const sdk = registerSdk();
  try {
    // Drain the in-memory exporter now and then so memory stays flat.
    const drain = setInterval(() => sdk.exporter.reset(), 100);
    try {
      add(run('metrics + tracing, SDK in-memory', createMetrics(new Registry()), true));
    } finally {
      clearInterval(drain);
    }
  } finally {
    await sdk.close();
  }
  return out;
}

async function startBenchGateway(metrics: GatewayMetrics | undefined): Promise<Gateway> {
  const config = parseConfig({
    http: { port: 0 },
    zmq: { endpoint: `tcp://127.0.0.1:${await freePort()}` },
    logLevel: 'warn',
    frameworks: { demo: { embedded: true } },
  });
  return startGateway(config, metrics ? { metrics } : {});
}

interface PathResult {
  offMedianUs: number;
  onMedianUs: number;
  offP99Us: number;
  onP99Us: number;
  ratio: number;
  perRoundRatios: number[];
}

/** The gateway's metrics with a switch: off = the same calls end in a no-op (one branch per request). */
function switchableMetrics(real: GatewayMetrics): { metrics: GatewayMetrics; set(on: boolean): void } {
  let on = true;
  const noop = { end: () => 0 };
  const metrics: GatewayMetrics = {
    ...real,
    requestStarted: (labels) => (on ? real.requestStarted(labels) : noop),
    observePoolEvent: (e) => real.observePoolEvent(e),
  };
  return { metrics, set: (value) => void (on = value) };
}

async function inferencePath(): Promise<PathResult> {
  // One gateway, one embedded worker: metrics (and the registered SDK) toggled per block, so the two sides
  // share sockets, processes and placement and only the telemetry differs.
  const sdk = registerSdk();
  const drain = setInterval(() => sdk.exporter.reset(), 100);
  const toggle = switchableMetrics(createMetrics(new Registry()));
  const gateway = await startBenchGateway(toggle.metrics);
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  const data = sampleObservation('L');
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const samples = { off: [] as number[], on: [] as number[] };
  const perRoundRatios: number[] = [];
  try {
    for (let i = 0; i < 300; i++) await client.request({ type: 'inference', framework: 'demo', data, traceparent });
    const perRound = Math.max(1, Math.floor(REQUESTS / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first so drift on a shared machine cancels out.
      const order: Array<'off' | 'on'> = round % 2 ? ['on', 'off'] : ['off', 'on'];
      const roundMedians: Record<string, number> = {};
      for (const side of order) {
        toggle.set(side === 'on' && !args.aa);
        const xs: number[] = [];
        for (let i = 0; i < perRound; i++) {
          const t0 = performance.now();
          await client.request({ type: 'inference', framework: 'demo', data, traceparent });
          xs.push((performance.now() - t0) * 1000);
        }
        samples[side].push(...xs);
        roundMedians[side] = median(xs);
      }
      perRoundRatios.push(roundMedians.on! / roundMedians.off!);
    }
  } finally {
    clearInterval(drain);
    await client.close();
    await gateway.close(1_000);
    await sdk.close();
  }
  return {
    offMedianUs: median(samples.off),
    onMedianUs: median(samples.on),
    offP99Us: quantile(samples.off, 0.99),
    onP99Us: quantile(samples.on, 0.99),
    ratio: median(samples.on) / median(samples.off),
    perRoundRatios,
  };
}

const hot = await hotLoop();
const path = args['skip-gateway'] ? undefined : await inferencePath();
const spanCostUs = ((hot['metrics + tracing, SDK in-memory'] ?? 0) - (hot['metrics, tracing API without SDK'] ?? 0)) / 1000;
if (args.json) {
  console.log(JSON.stringify({ hotLoopNsPerRequest: hot, inferencePathL: path, spanCostUs }, null, 2));
} else {
  console.log(`Per-request telemetry work, hot loop (${ITERATIONS} iterations):`);
  for (const [k, v] of Object.entries(hot)) console.log(`  ${k.padEnd(36)} ${v.toFixed(0).padStart(7)} ns/request`);
  if (path) {
    console.log(`\nInference path, L payload (~452 kB), ZMQ front door -> embedded demo worker, ${REQUESTS} requests per side in ${ROUNDS} interleaved rounds:`);
    console.log(`  metrics off:  median ${path.offMedianUs.toFixed(0)} µs   p99 ${path.offP99Us.toFixed(0)} µs`);
    console.log(`  metrics on:   median ${path.onMedianUs.toFixed(0)} µs   p99 ${path.onP99Us.toFixed(0)} µs   (OTel SDK registered in both)`);
    console.log(`  ratio on/off (medians): ${path.ratio.toFixed(3)}   median of per-round ratios: ${median(path.perRoundRatios).toFixed(3)}`);
    console.log(`  per round: ${path.perRoundRatios.map((r) => r.toFixed(3)).join(' ')}`);
    const projected = (path.onMedianUs + spanCostUs) / path.offMedianUs;
    console.log(`  + the two spans per request measured above (${spanCostUs.toFixed(1)} µs), projected ratio: ${projected.toFixed(3)}`);
  }
}
