// Telemetry overhead, measured in one run:
//  1. the per-request telemetry work of the gateway in a hot loop (requestStarted/end with stages, the server span,
//     the client span injected into the header, the worker's span): no telemetry vs metrics + tracing API without
//     an SDK vs metrics + tracing with the SDK registered (BatchSpanProcessor into an in-memory exporter);
//  2. the full inference path at the L payload (three 224x224x3 images + state, ~452 kB) through a real gateway's
//     ZMQ front door to its embedded demo worker (a child process), telemetry ON vs OFF in interleaved rounds:
//     OFF = a gateway without metrics, no SDK registered, a worker child without OTEL_*;
//     ON  = a gateway with metrics (Prometheus registry, also exported over OTLP every 5 s), the SDK
//           registered (BatchSpanProcessor → OTLP/HTTP), a worker child with OTEL_* exporting its spans too.
//     The OTLP receiver runs in its own process (this file with --receiver), like a collector would. The caller
//     sends pre-encoded frames with a traceparent on a raw DEALER socket, so it adds no span of its own.
// Usage: npx tsx bench/telemetry-overhead.ts [--requests 4000] [--rounds 20] [--aa] [--sample-ratio 0.1] [--json]
//   breakdown of the ON side: --no-worker-otel, --memory-exporter, --no-otel-metrics, --no-tracing, --no-context-manager
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, InMemorySpanExporter, NodeTracerProvider, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import { Registry } from 'prom-client';
import * as zmq from 'zeromq';
import { sampleObservation } from '../src/cli/sample.js';
import { parseConfig } from '../src/config.js';
import { buildGateway, type Gateway } from '../src/build-gateway.js';
import { decodeReply, encodeMessage } from '../src/protocol/codec.js';
import type { RequestHeader } from '../src/protocol/messages.js';
import { createMetrics, type GatewayMetrics } from '../src/telemetry/metrics.js';
import { startTelemetry } from '../src/telemetry/sdk.js';
import { startClientSpan, startServerSpan, startWorkerSpan } from '../src/telemetry/tracing.js';
import { startOtlpReceiver } from './lib/otlp-receiver.js';
import { registerInMemoryTracing } from './lib/in-memory-tracing.js';

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200000' },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    'skip-gateway': { type: 'boolean', default: false },
    /** A/A check: both sides run with telemetry off, to see the noise floor of the path measurement. */
    aa: { type: 'boolean', default: false },
    /** Internal: run as the OTLP receiver process. */
    receiver: { type: 'boolean', default: false },
    // Breakdown of the ON side (each turns one part off):
    /** The worker child exports no spans. */
    'no-worker-otel': { type: 'boolean', default: false },
    /** The gateway's spans go to an in-memory exporter instead of OTLP/HTTP. */
    'memory-exporter': { type: 'boolean', default: false },
    /** No OTLP metrics export (Prometheus registry only). */
    'no-otel-metrics': { type: 'boolean', default: false },
    /** No tracer provider registered in the gateway. */
    'no-tracing': { type: 'boolean', default: false },
    /** Trace this fraction of requests (TraceIdRatioBasedSampler in gateway and worker; callers send varied trace ids). */
    'sample-ratio': { type: 'string', default: '1' },
    /** The tracer provider without the AsyncLocalStorage context manager. */
    'no-context-manager': { type: 'boolean', default: false },
  },
});
const ITERATIONS = Number(args.iterations);
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const SAMPLE_RATIO = Number(args['sample-ratio']);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** One request's worth of the gateway's telemetry calls. */
function perRequest(metrics: GatewayMetrics | undefined, tracing: boolean, i: number, incoming: RequestHeader): void {
  const obs = metrics?.requestStarted({ framework: 'demo', transport: 'zmq', codec: 'binary' });
  const server = tracing ? startServerSpan({ framework: 'demo', transport: 'zmq', codec: 'binary', requestId: String(i) }, incoming) : undefined;
  const outgoing: RequestHeader = { type: 'inference' };
  const client = tracing ? startClientSpan(outgoing, { framework: 'demo', endpoint: 'tcp://127.0.0.1:5555', requestId: String(i) }, server!.context) : undefined;
  const worker = tracing ? startWorkerSpan({ framework: 'demo', type: 'inference', requestId: String(i) }, outgoing) : undefined;
  worker?.end('ok');
  client?.end('ok');
  server?.end('ok');
  obs?.end({ outcome: 'ok', requestBytes: 452_000, responseBytes: 1_200, stagesMs: { decode: 0.01, queue: 0.002, worker_compute: 0.3, transport: 0.1, encode: 0.01 } });
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
  const sdk = registerInMemoryTracing((exporter) => new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 4_096, scheduledDelayMillis: 200 }));
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

interface PathResult {
  offMedianUs: number;
  onMedianUs: number;
  offP99Us: number;
  /** The worker's own time (reply timing.total_ms), median. */
  offWorkerMedianUs: number;
  onWorkerMedianUs: number;
  onP99Us: number;
  ratio: number;
  perRoundRatios: number[];
  spansExported: number;
  cpuUsPerRequest: Record<'off' | 'on', { gateway: number; worker: number }>;
}

/** An OTLP/HTTP receiver in a child process (this file with --receiver); resolves with its URL. */
async function startReceiverProcess(): Promise<{ url: string; spans(): Promise<number>; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--receiver'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const pending: Array<(line: string) => void> = [];
  lines.on('line', (line) => pending.shift()?.(line));
  const next = () => new Promise<string>((resolve) => pending.push(resolve));
  const url = await next();
  return {
    url,
    async spans() {
      const answer = next();
      child.stdin!.write('count\n');
      return Number(await answer);
    },
    async close() {
      child.stdin!.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

async function runReceiver(): Promise<void> {
  const receiver = await startOtlpReceiver();
  process.stdout.write(`${receiver.url}\n`);
  const input = createInterface({ input: process.stdin });
  for await (const line of input) {
    if (line === 'count') process.stdout.write(`${receiver.spans.length}\n`);
    receiver.spans.length = 0; // keep memory flat
  }
  await receiver.close();
}

async function startBenchGateway(metrics: GatewayMetrics | undefined): Promise<Gateway> {
  const config = parseConfig({
    http: { port: 0 },
    zmq: { endpoint: 'tcp://127.0.0.1:*' },
    logLevel: 'warn',
    frameworks: { demo: { embedded: true } },
  });
  return buildGateway(config, metrics ? { metrics } : {});
}

/** A caller on a raw DEALER: the same pre-encoded request every time, awaited one at a time. */
/** A caller on a raw DEALER; request() resolves with the worker's own total_ms from the reply. */
async function rawCaller(endpoint: string, requests: Uint8Array[][]): Promise<{ request(): Promise<number>; close(): void }> {
  const socket = new zmq.Dealer({ linger: 0 });
  socket.connect(endpoint);
  const messages = requests.map((frames) => [Buffer.alloc(0), ...frames]);
  let next = 0;
  return {
    async request() {
      await socket.send(messages[next++ % messages.length]!);
      const [, ...frames] = await socket.receive();
      const reply = decodeReply(frames).header;
      if (reply.status !== 'success') throw new Error(`error reply: ${JSON.stringify(reply.error)}`);
      return reply.timing?.total_ms ?? NaN;
    },
    close: () => socket.close(),
  };
}

async function inferencePath(): Promise<PathResult> {
  const aa = args.aa;
  const receiver = await startReceiverProcess();
  // The ON side's SDK: spans through a BatchSpanProcessor to OTLP/HTTP, metrics mirrored to a MeterProvider that
  // exports over OTLP/HTTP. The tracer provider is registered only during ON blocks.
  const memExporter = new InMemorySpanExporter();
  const memDrain = setInterval(() => memExporter.reset(), 500);
  memDrain.unref();
  const tracerProvider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-gateway' }),
    sampler: SAMPLE_RATIO < 1 ? new TraceIdRatioBasedSampler(SAMPLE_RATIO) : new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor(args['memory-exporter'] ? memExporter : new OTLPTraceExporter({ url: `${receiver.url}/v1/traces` }))],
  });
  // OTLP metrics: the ON gateway's registry, read by the SDK's MetricProducer at each export (every 5 s).
  const metricsTelemetry = startTelemetry({
    serviceName: 'bench-gateway',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_EXPORTER: 'none', OTEL_METRIC_EXPORT_INTERVAL: '5000' },
  });
  const setTracing = (on: boolean) => {
    if (on && !args['no-tracing']) tracerProvider.register(args['no-context-manager'] ? { contextManager: null } : {});
    else {
      trace.disable();
      propagation.disable();
      context.disable();
    }
  };
  const off = await startBenchGateway(undefined);
  // The ON gateway's worker child inherits OTEL_* (fork copies this process's environment at spawn).
  if (!aa && !args['no-worker-otel']) {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_SERVICE_NAME = 'bench-gateway';
    if (SAMPLE_RATIO < 1) Object.assign(process.env, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: String(SAMPLE_RATIO) });
  }
  const onMetrics = aa ? undefined : createMetrics(new Registry());
  if (onMetrics && !args['no-otel-metrics']) metricsTelemetry.exportMetrics(onMetrics.registry);
  const on = await startBenchGateway(onMetrics).finally(() => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_SERVICE_NAME;
    delete process.env.OTEL_TRACES_SAMPLER;
    delete process.env.OTEL_TRACES_SAMPLER_ARG;
  });
  // 64 requests that differ only in their trace id (a ratio sampler then traces some of them), sent in turn.
  const data = sampleObservation('L');
  const requests = Array.from({ length: 64 }, () =>
    encodeMessage({ type: 'inference', framework: 'demo', request_id: 'bench', data, traceparent: `00-${randomBytes(16).toString('hex')}-00f067aa0ba902b7-01` }, 'binary'),
  );
  const callers = { off: await rawCaller(off.zmqEndpoint, requests), on: await rawCaller(on.zmqEndpoint, requests) };
  // CPU time per side: this process (caller + gateway) and that side's worker child, µs summed over its blocks.
  const workerPid = { off: off.embeddedWorkers.get('demo')?.pid, on: on.embeddedWorkers.get('demo')?.pid };
  const cpu = { off: { gateway: 0, worker: 0, requests: 0 }, on: { gateway: 0, worker: 0, requests: 0 } };
  const samples = { off: [] as number[], on: [] as number[] };
  const workerSamples = { off: [] as number[], on: [] as number[] };
  const perRoundRatios: number[] = [];
  let spansExported = 0;
  try {
    for (const side of ['off', 'on'] as const) {
      setTracing(side === 'on' && !aa);
      for (let i = 0; i < 300; i++) await callers[side].request();
      setTracing(false);
    }
    const perRound = Math.max(1, Math.floor(REQUESTS / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first so drift on a shared machine cancels out.
      const order: Array<'off' | 'on'> = round % 2 ? ['on', 'off'] : ['off', 'on'];
      const roundMedians: Record<string, number> = {};
      for (const side of order) {
        setTracing(side === 'on' && !aa);
        const caller = callers[side];
        const xs: number[] = [];
        const cpu0 = process.cpuUsage();
        const worker0 = processCpuUs(workerPid[side]);
        for (let i = 0; i < perRound; i++) {
          const t0 = performance.now();
          const workerMs = await caller.request();
          xs.push((performance.now() - t0) * 1000);
          workerSamples[side].push(workerMs * 1000);
        }
        const used = process.cpuUsage(cpu0);
        cpu[side].gateway += used.user + used.system;
        cpu[side].worker += processCpuUs(workerPid[side]) - worker0;
        cpu[side].requests += perRound;
        samples[side].push(...xs);
        roundMedians[side] = median(xs);
      }
      setTracing(false);
      perRoundRatios.push(roundMedians.on! / roundMedians.off!);
    }
  } finally {
    callers.off.close();
    callers.on.close();
    await tracerProvider.shutdown();
    await metricsTelemetry.shutdown();
    await off.close(1_000);
    await on.close(1_000); // the worker child flushes its spans on the way out
    spansExported = await receiver.spans();
    await receiver.close();
  }
  return {
    offMedianUs: median(samples.off),
    onMedianUs: median(samples.on),
    offWorkerMedianUs: median(workerSamples.off),
    onWorkerMedianUs: median(workerSamples.on),
    offP99Us: quantile(samples.off, 0.99),
    onP99Us: quantile(samples.on, 0.99),
    ratio: median(samples.on) / median(samples.off),
    perRoundRatios,
    spansExported,
    cpuUsPerRequest: {
      off: { gateway: cpu.off.gateway / cpu.off.requests, worker: cpu.off.worker / cpu.off.requests },
      on: { gateway: cpu.on.gateway / cpu.on.requests, worker: cpu.on.worker / cpu.on.requests },
    },
  };
}

/** User + system CPU time of a process from /proc, µs (0 when unavailable). */
function processCpuUs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

if (args.receiver) {
  await runReceiver();
  process.exit(0);
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
    console.log(`\nInference path, L payload (~452 kB), ZMQ front door -> embedded demo worker, ${REQUESTS} requests per side in ${ROUNDS} interleaved rounds${args.aa ? ' (A/A: telemetry off on both sides)' : ''}:`);
    console.log(`  telemetry off: median ${path.offMedianUs.toFixed(0)} µs   p99 ${path.offP99Us.toFixed(0)} µs`);
    console.log(`  telemetry on:  median ${path.onMedianUs.toFixed(0)} µs   p99 ${path.onP99Us.toFixed(0)} µs   (metrics + spans in gateway and worker, OTLP export)`);
    console.log(`  ratio on/off (medians): ${path.ratio.toFixed(3)}   median of per-round ratios: ${median(path.perRoundRatios).toFixed(3)}`);
    console.log(`  per round: ${path.perRoundRatios.map((r) => r.toFixed(3)).join(' ')}`);
    console.log(`  inside the worker (its timing.total_ms): off median ${path.offWorkerMedianUs.toFixed(0)} µs, on ${path.onWorkerMedianUs.toFixed(0)} µs`);
    const c = path.cpuUsPerRequest;
    console.log(`  CPU per request, caller+gateway process: off ${c.off.gateway.toFixed(0)} µs, on ${c.on.gateway.toFixed(0)} µs (+${(c.on.gateway - c.off.gateway).toFixed(0)})`);
    console.log(`  CPU per request, worker child:           off ${c.off.worker.toFixed(0)} µs, on ${c.on.worker.toFixed(0)} µs (+${(c.on.worker - c.off.worker).toFixed(0)})`);
    console.log(`  spans received by the OTLP receiver: ${path.spansExported}${SAMPLE_RATIO < 1 ? ` (sampling ratio ${SAMPLE_RATIO})` : ''}`);
    console.log(`  load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  }
}
