// Turns raw samples into the report: summaries per configuration, the gateway's own cost, the targets of
// issue 6 (reported, never asserted), CDF points; and renders it as markdown tables.
import type { ThreadCpu } from './thread-cpu.js';
import type { BenchConfig, BenchOptions } from './matrix.js';
import type { MachineInfo } from './machine.js';
import { makePayload, PAYLOAD_NAMES, PAYLOAD_SPECS, type PayloadName } from './payloads.js';
import { cdfPoints, summarise, type LatencySummary } from './stats.js';

export const REPORT_SCHEMA = 'physical-ai-gateway-bench/1';

export interface RawResult {
  config: BenchConfig;
  latenciesUs: number[];
  errors: number;
  firstError?: string;
  failed?: string;
  completed: number;
  elapsedMs: number;
  perRound: number[];
  /** CPU time of the gateway process over the measured batches, by thread group (gateway paths, Linux). */
  gatewayCpuMs?: ThreadCpu;
}

export interface ResultEntry {
  key: string;
  path: string;
  path_label: string;
  kind: string;
  codec: string;
  transport: string;
  worker: string;
  payload: PayloadName;
  inflight: number;
  target?: string;
  latency: LatencySummary;
  /** Completed requests per second of busy time (all rounds). */
  throughput_rps: number;
  errors: number;
  first_error?: string;
  failed?: string;
  samples_per_round: number[];
  /** Gateway CPU µs per completed request by thread group (gateway paths on Linux; includes its health checks). */
  gateway_cpu_us_per_request?: { main: number; zmq_io: number; helpers: number };
}

export interface GatewayCost {
  payload: PayloadName;
  codec: string;
  transport: string;
  worker: string;
  gateway_p50_us: number;
  direct_p50_us: number;
  /** Through the gateway minus straight to the same worker (p50). */
  cost_us: number;
  raw_zeromq_p50_us: number | null;
}

export interface TargetResult {
  id: string;
  description: string;
  /** The measured value, in `unit`. */
  value: number | null;
  /** null when the threshold is itself a measurement that is missing. */
  threshold: number | null;
  unit: string;
  met: boolean | null;
  detail: string;
}

export interface Report {
  schema: string;
  date: string;
  duration_s: number;
  quick: boolean;
  options: Record<string, unknown>;
  machine: MachineInfo;
  method: string[];
  payloads: Record<string, { description: string; request_tensor_bytes: number; reply: string }>;
  results: ResultEntry[];
  gateway_cost: GatewayCost[];
  targets: TargetResult[];
  /** Empirical CDF points [µs, fraction] at 1 in flight, per payload and configuration key. */
  cdf: Record<string, Record<string, Array<[number, number]>>>;
}

export interface ReportInput {
  opts: BenchOptions;
  machine: MachineInfo;
  startedAt: Date;
  durationS: number;
  results: RawResult[];
}

const r1 = (v: number) => Math.round(v * 10) / 10;

function entry(r: RawResult): ResultEntry {
  const c = r.config;
  return {
    key: c.key,
    path: c.path.id,
    path_label: c.path.label,
    kind: c.path.kind,
    codec: c.path.codec,
    transport: c.transport,
    worker: c.worker,
    payload: c.payload,
    inflight: c.inflight,
    ...(c.target ? { target: c.target } : {}),
    latency: summarise(r.latenciesUs),
    throughput_rps: r.elapsedMs > 0 ? Math.round(r.completed / (r.elapsedMs / 1000)) : 0,
    errors: r.errors,
    ...(r.firstError ? { first_error: r.firstError } : {}),
    ...(r.failed ? { failed: r.failed } : {}),
    samples_per_round: r.perRound,
    ...(r.gatewayCpuMs && r.completed > 0
      ? { gateway_cpu_us_per_request: { main: Math.round((r.gatewayCpuMs.main * 1000) / r.completed), zmq_io: Math.round((r.gatewayCpuMs.zmqIo * 1000) / r.completed), helpers: Math.round((r.gatewayCpuMs.helpers * 1000) / r.completed) } }
      : {}),
  };
}

function find(results: ResultEntry[], path: string, transport: string, worker: string, payload: string, inflight = 1): ResultEntry | undefined {
  return results.find((e) => e.path === path && e.transport === transport && e.worker === worker && e.payload === payload && e.inflight === inflight && e.latency.n > 0);
}

function gatewayCosts(results: ResultEntry[]): GatewayCost[] {
  const out: GatewayCost[] = [];
  for (const g of results) {
    if (g.kind !== 'gateway-zmq' || g.inflight !== 1 || g.latency.n === 0) continue;
    const direct = find(results, `direct-${g.codec}`, g.transport, g.worker, g.payload);
    if (!direct) continue;
    const raw = find(results, 'raw-zeromq', g.transport, '-', g.payload);
    out.push({
      payload: g.payload,
      codec: g.codec,
      transport: g.transport,
      worker: g.worker,
      gateway_p50_us: g.latency.p50_us,
      direct_p50_us: direct.latency.p50_us,
      cost_us: r1(g.latency.p50_us - direct.latency.p50_us),
      raw_zeromq_p50_us: raw ? raw.latency.p50_us : null,
    });
  }
  return out;
}

function targets(results: ResultEntry[], costs: GatewayCost[]): TargetResult[] {
  const p50 = (path: string, worker: string, payload: string, transport = 'tcp') => find(results, path, transport, worker, payload)?.latency.p50_us;
  const out: TargetResult[] = [];
  const add = (id: string, description: string, value: number | undefined, threshold: number | undefined, unit: string, atMost: boolean, detail: string) => {
    const measured = value !== undefined && threshold !== undefined;
    out.push({
      id,
      description,
      // Ratios keep two decimals (0.25× must not read 0.3×); µs and req/s one.
      value: value === undefined ? null : unit === '×' ? Math.round(value * 100) / 100 : r1(value),
      threshold: threshold === undefined ? null : unit === '×' ? Math.round(threshold * 100) / 100 : r1(threshold),
      unit,
      met: !measured ? null : atMost ? value <= threshold : value >= threshold,
      detail: value !== undefined ? detail : 'not measured in this run',
    });
  };

  const gwPy = p50('gateway-zmq-binary', 'py', 'L');
  const ref = p50('python-groot-ref', '-', 'L');
  add('python-vs-groot-ref', 'L p50 through the gateway (ZMQ binary) to the Python SDK worker ≤ direct Python pyzmq REQ/REP GR00T-style pair', gwPy, ref, 'µs', true,
    `gateway→Python worker ${gwPy} µs vs GR00T-style pair ${ref} µs`);

  for (const worker of ['ts', 'py']) {
    const c = costs.find((x) => x.payload === 'L' && x.codec === 'binary' && x.transport === 'tcp' && x.worker === worker);
    const raw = c?.raw_zeromq_p50_us ?? undefined;
    add(`gateway-cost-${worker}`, `gateway cost at L (binary, tcp, ${worker === 'ts' ? 'TS' : 'Python'} worker) ≤ one raw zeromq.js round trip at L`, c?.cost_us, raw, 'µs', true,
      c ? `${c.gateway_p50_us} − ${c.direct_p50_us} = ${c.cost_us} µs vs raw zeromq.js ${raw ?? '?'} µs` : '');
  }

  const zmqL = p50('gateway-zmq-binary', 'ts', 'L');
  const httpL = p50('gateway-http-msgpack', 'ts', 'L');
  const jsonL = p50('gateway-zmq-json', 'ts', 'L');
  add('zmq-vs-http', 'ZMQ door (binary) ≥ 1.5× faster than the HTTP door (msgpack) at L, p50, TS worker', zmqL && httpL ? httpL / zmqL : undefined, 1.5, '×', false,
    `HTTP msgpack ${httpL} µs / ZMQ binary ${zmqL} µs`);
  add('zmq-vs-json', 'ZMQ door (binary) ≥ 80× faster than the original JSON (ZMQ door) at L, p50, TS worker', zmqL && jsonL ? jsonL / zmqL : undefined, 80, '×', false,
    `JSON ${jsonL} µs / ZMQ binary ${zmqL} µs`);

  const s8 = find(results, 'gateway-zmq-binary', 'tcp', 'ts', 'S', 8);
  add('throughput-s-8', '8 in flight at S through the gateway (ZMQ binary, tcp, TS worker) ≥ 20,000 req/s', s8?.throughput_rps, 20_000, 'req/s', false,
    s8 ? `${s8.throughput_rps} req/s (p50 ${s8.latency.p50_us} µs, p99 ${s8.latency.p99_us} µs)` : '');
  const s8raw = find(results, 'raw-zeromq', 'tcp', '-', 'S', 8);
  const s8direct = find(results, 'direct-binary', 'tcp', 'ts', 'S', 8);
  if (s8 && (s8raw || s8direct)) out[out.length - 1]!.detail += `; for scale: direct to the TS worker ${s8direct?.throughput_rps ?? '?'} req/s, raw zeromq.js ${s8raw?.throughput_rps ?? '?'} req/s`;
  issue13Targets(results, add);
  return out;
}

type AddTarget = (id: string, description: string, value: number | undefined, threshold: number | undefined, unit: string, atMost: boolean, detail: string) => void;

/** Issue 13's targets, as ratios (the machine is shared): each for the frame path and the shared-memory path. */
function issue13Targets(results: ResultEntry[], add: AddTarget): void {
  const get = (path: string, worker: string, payload: string, inflight = 1, transport = 'tcp') => find(results, path, transport, worker, payload, inflight);
  const p50 = (path: string, worker: string, payload: string) => get(path, worker, payload)?.latency.p50_us;
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const f = (v: number | undefined) => (v === undefined ? '?' : v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
  const rawL = p50('raw-zeromq', '-', 'L');
  for (const worker of ['ts', 'py']) {
    const name = worker === 'ts' ? 'TS' : 'Python';
    for (const [via, direct, plane, threshold] of [['gateway-zmq-binary', 'direct-binary', 'frames', 1], ['gateway-zmq-shm', 'direct-shm', 'shared memory', 0.25]] as const) {
      const g = p50(via, worker, 'L');
      const d = p50(direct, worker, 'L');
      const tax = g !== undefined && d !== undefined ? g - d : undefined;
      add(`i13-tax-L-${plane === 'frames' ? 'frames' : 'shm'}-${worker}`, `gateway tax at L (${plane}, ${name} worker) ÷ one raw zeromq.js round trip at L`, ratio(tax, rawL), threshold, '×', true,
        `(${f(g)} − ${f(d)}) µs / raw ${f(rawL)} µs${plane === 'frames' ? ' (target 1.0×; same host 0.25× is for shared memory)' : ''}`);
    }
  }
  const ref = p50('python-groot-ref', '-', 'L');
  for (const [via, plane] of [['gateway-zmq-binary', 'frames'], ['gateway-zmq-shm', 'shared memory'], ['direct-lease-shm', 'direct lease, shared memory']] as const) {
    const g = p50(via, 'py', 'L');
    add(`i13-py-vs-groot-${via}`, `L via ${plane} to the Python SDK worker ÷ direct GR00T-style pyzmq round trip`, ratio(g, ref), 0.5, '×', true, `${f(g)} µs / ${f(ref)} µs`);
  }
  const memcpyXL = p50('memcpy', '-', 'XL');
  for (const [via, worker, plane] of [['gateway-zmq-shm', 'py', 'via gateway, shared memory, Python worker'], ['direct-lease-shm', 'py', 'direct lease, shared memory, Python worker'], ['gateway-zmq-binary', 'py', 'via gateway, frames, Python worker'], ['raw-zeromq', '-', 'raw zeromq.js']] as const) {
    const v = p50(via, worker, 'XL');
    add(`i13-xl-memcpy-${via}-${worker}`, `XL round trip (${plane}) ÷ one memcpy of the payload`, ratio(v, memcpyXL), 3, '×', true, `${f(v)} µs / memcpy ${f(memcpyXL)} µs`);
  }
  for (const [via, worker, plane] of [['gateway-zmq-shm', 'py', 'shared memory, Python worker'], ['gateway-zmq-binary', 'py', 'frames, Python worker'], ['gateway-zmq-binary', 'ts', 'frames, TS worker']] as const) {
    const e = get(via, worker, 'L');
    add(`i13-p99-L-${via}-${worker}`, `p99 ÷ p50 at L via the gateway (${plane})`, e ? ratio(e.latency.p99_us, e.latency.p50_us) : undefined, 2, '×', true, e ? `p99 ${f(e.latency.p99_us)} µs / p50 ${f(e.latency.p50_us)} µs` : '');
  }
  const raw8 = get('raw-zeromq', '-', 'S', 8);
  for (const worker of ['ts', 'py']) {
    const g8 = get('gateway-zmq-binary', worker, 'S', 8);
    add(`i13-s8-${worker}`, `8 in flight at S via the gateway (${worker === 'ts' ? 'TS' : 'Python'} worker) ÷ raw zeromq.js pair, req/s`, ratio(g8?.throughput_rps, raw8?.throughput_rps), 0.5, '×', false, `${g8?.throughput_rps ?? '?'} / ${raw8?.throughput_rps ?? '?'} req/s`);
  }
  for (const worker of ['ts', 'py']) {
    const lease = p50('direct-lease-shm', worker, 'L');
    const gw = p50('gateway-zmq-shm', worker, 'L');
    add(`i13-lease-vs-gateway-${worker}`, `L: direct lease ÷ via gateway, both shared memory (${worker === 'ts' ? 'TS' : 'Python'} worker; for the recommendation, no target)`, ratio(lease, gw), undefined, '×', true, `${f(lease)} µs / ${f(gw)} µs`);
  }
}

/** The targets again from a report's results (replot.ts: after a change to the targets, without measuring again). */
export function recomputeTargets(report: Report): Report {
  return { ...report, targets: targets(report.results, report.gateway_cost) };
}

export function buildReport({ opts, machine, startedAt, durationS, results }: ReportInput): Report {
  const entries = results.map(entry);
  const costs = gatewayCosts(entries);
  const cdf: Report['cdf'] = {};
  for (const r of results) {
    if (r.config.inflight !== 1 || r.latenciesUs.length === 0) continue;
    (cdf[r.config.payload] ??= {})[r.config.key] = cdfPoints(r.latenciesUs, 300).map(([us, f]) => [r1(us), Math.round(f * 1e5) / 1e5]);
  }
  const payloads: Report['payloads'] = {};
  for (const name of PAYLOAD_NAMES) {
    if (!opts.payloads.includes(name)) continue;
    payloads[name] = { description: PAYLOAD_SPECS[name].description, request_tensor_bytes: makePayload(name, opts.seed).tensorBytes, reply: `float32 [16, ${PAYLOAD_SPECS[name].dof}] action chunk` };
  }
  const { help: _help, ...options } = opts;
  return {
    schema: REPORT_SCHEMA,
    date: startedAt.toISOString(),
    duration_s: Math.round(durationS),
    quick: opts.quick,
    options: options as unknown as Record<string, unknown>,
    machine,
    method: [
      'Latency is measured in the client around one whole request: encode, send, wait, receive, decode (Python pair: measured by its own client with perf_counter_ns).',
      `Warm-up: ${opts.warmup} requests (at most ${opts.warmupMs} ms) per configuration, discarded.`,
      `Then ${opts.rounds} rounds; each round runs every configuration once (round-robin, start rotated per round) for up to ${Math.ceil(opts.samples / opts.rounds)} requests or ${opts.maxRoundMs} ms, so machine noise hits all configurations alike.`,
      'Percentiles by linear interpolation; p99 marked ~ when n < 1,000, p99.9 marked ~ when n < 10,000 (indicative).',
      'N in flight: N concurrent request loops through one client (one ZMQ DEALER connection; HTTP: one keep-alive agent, one connection per loop); req/s = completed / busy time.',
      'Every process is separate: client (this harness), gateway, worker; the gateway reaches its workers over the same transport as its ZMQ front door. HTTP always runs over tcp.',
      'Payload bytes are fixed by the seed; the reply is the demo policy\'s float32 [16, 14] chunk.',
      'The gateways and workers started here allow 64 MiB headers (product default 16 MiB), so the original JSON codec, whose header holds every tensor as number lists, fits at every payload; the other codecs are unaffected.',
    ],
    payloads,
    results: entries,
    gateway_cost: costs,
    targets: targets(entries, costs),
    cdf,
  };
}

// ---------- markdown ----------

function us(v: number | null | undefined, indicative = false): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const text = v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
  return indicative ? `~${text}` : text;
}

const WORKER_NAMES: Record<string, string> = { ts: 'TS worker', py: 'Python SDK worker', '-': '–' };

function rowLabel(e: ResultEntry): string {
  return `${e.path_label}${e.target ? ` (${e.target})` : ''}`;
}

function groupKey(e: ResultEntry): string {
  return `${e.path}/${e.transport}/${e.worker}/${e.target ?? ''}`;
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  const payloads = Object.keys(report.payloads) as PayloadName[];
  lines.push(`# Benchmark results${report.quick ? ' (quick mode: not for reading numbers)' : ''}`, '');
  lines.push(`- Date: ${report.date} (${report.duration_s} s)${m.git_commit ? `, commit ${m.git_commit}` : ''}`);
  lines.push(`- Machine: ${m.cpu_model}, ${m.cores} cores, ${m.memory_gb} GB, ${m.os}`);
  lines.push(`- Load average (1/5/15 min): before ${m.load_before.join(' / ')}, after ${(m.load_after ?? []).join(' / ')}`);
  const py = m.python;
  lines.push(`- Node ${m.node}, zeromq.js ${m.zeromq_js} (libzmq ${m.libzmq_node}), @msgpack/msgpack ${m.msgpack_js}, hono ${m.hono}${py ? `; Python ${py.python}, pyzmq ${py.pyzmq} (libzmq ${py.libzmq}), numpy ${py.numpy}, msgpack ${py.msgpack}` : ''}`);
  lines.push(`- Payloads: ${payloads.map((p) => `${p} = ${report.payloads[p]!.description} (${report.payloads[p]!.request_tensor_bytes.toLocaleString('en-US')} B)`).join('; ')}; reply: float32 [16, 14] chunk`);
  lines.push('', '## Method', '', ...report.method.map((s) => `- ${s}`), '');

  const one = report.results.filter((e) => e.inflight === 1);
  const groups = new Map<string, ResultEntry[]>();
  for (const e of one) (groups.get(groupKey(e)) ?? groups.set(groupKey(e), []).get(groupKey(e))!).push(e);

  lines.push('## Latency, 1 request in flight (µs, p50 / p99)', '');
  lines.push(`| path | transport | worker | ${payloads.join(' | ')} |`);
  lines.push(`|---|---|---|${payloads.map(() => '---:').join('|')}|`);
  for (const list of groups.values()) {
    const e0 = list[0]!;
    const cells = payloads.map((p) => {
      const e = list.find((x) => x.payload === p);
      if (!e) return '';
      if (e.latency.n === 0) return `failed`;
      return `${us(e.latency.p50_us)} / ${us(e.latency.p99_us, e.latency.p99_indicative)}`;
    });
    lines.push(`| ${rowLabel(e0)} | ${e0.transport} | ${WORKER_NAMES[e0.worker]} | ${cells.join(' | ')} |`);
  }
  lines.push('', '~ = indicative (n < 1,000 for p99). "failed" = no successful reply; see latest.json.', '');

  for (const p of payloads) {
    lines.push(`### ${p}: ${report.payloads[p]!.description}, all percentiles (µs)`, '');
    lines.push('| path | transport | worker | in flight | n | p50 | p90 | p99 | p99.9 | req/s | errors |');
    lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const e of report.results.filter((x) => x.payload === p)) {
      const l = e.latency;
      lines.push(`| ${rowLabel(e)} | ${e.transport} | ${WORKER_NAMES[e.worker]} | ${e.inflight} | ${l.n} | ${us(l.p50_us)} | ${us(l.p90_us)} | ${us(l.p99_us, l.p99_indicative)} | ${us(l.p999_us, l.p999_indicative)} | ${e.throughput_rps.toLocaleString('en-US')} | ${e.errors}${e.failed ? ` (${e.failed.slice(0, 60)})` : ''} |`);
    }
    lines.push('');
  }

  const multi = report.results.filter((e) => e.inflight > 1);
  if (multi.length > 0) {
    const n = multi[0]!.inflight;
    lines.push(`## Throughput, ${n} requests in flight (req/s; p50 µs in brackets)`, '');
    lines.push(`| path | transport | worker | ${payloads.join(' | ')} |`);
    lines.push(`|---|---|---|${payloads.map(() => '---:').join('|')}|`);
    const mg = new Map<string, ResultEntry[]>();
    for (const e of multi) (mg.get(groupKey(e)) ?? mg.set(groupKey(e), []).get(groupKey(e))!).push(e);
    for (const list of mg.values()) {
      const e0 = list[0]!;
      const cells = payloads.map((p) => {
        const e = list.find((x) => x.payload === p);
        return !e ? '' : e.latency.n === 0 ? 'failed' : `${e.throughput_rps.toLocaleString('en-US')} (${us(e.latency.p50_us)})`;
      });
      lines.push(`| ${rowLabel(e0)} | ${e0.transport} | ${WORKER_NAMES[e0.worker]} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }

  if (report.gateway_cost.length > 0) {
    lines.push('## Gateway cost (through the gateway minus straight to the same worker, p50 µs, 1 in flight)', '');
    lines.push('| payload | codec | transport | worker | via gateway | direct | gateway cost | one raw zeromq.js round trip |');
    lines.push('|---|---|---|---|---:|---:|---:|---:|');
    for (const c of report.gateway_cost) {
      lines.push(`| ${c.payload} | ${c.codec} | ${c.transport} | ${WORKER_NAMES[c.worker]} | ${us(c.gateway_p50_us)} | ${us(c.direct_p50_us)} | **${us(c.cost_us)}** | ${us(c.raw_zeromq_p50_us)} |`);
    }
    lines.push('', 'The gateway always speaks binary frames to its workers; for msgpack/JSON rows the cost includes re-encoding between codecs.', '');
  }

  const cpu = report.results.filter((e) => e.gateway_cpu_us_per_request);
  if (cpu.length > 0) {
    lines.push('## Gateway CPU per request (µs: JavaScript main thread / ZeroMQ I/O thread / other threads: GC, compiler, libuv)', '');
    lines.push('From /proc before and after each measured batch (10 ms ticks, so read small values as rough); waiting for a core is not CPU time, so load moves these far less than latencies.', '');
    lines.push('| path | transport | worker | in flight | ' + payloads.join(' | ') + ' |');
    lines.push(`|---|---|---|---:|${payloads.map(() => '---:').join('|')}|`);
    const cg = new Map<string, ResultEntry[]>();
    for (const e of cpu) (cg.get(`${groupKey(e)}|${e.inflight}`) ?? cg.set(`${groupKey(e)}|${e.inflight}`, []).get(`${groupKey(e)}|${e.inflight}`)!).push(e);
    for (const list of cg.values()) {
      const e0 = list[0]!;
      const cells = payloads.map((p) => {
        const c = list.find((x) => x.payload === p)?.gateway_cpu_us_per_request;
        return c ? `${c.main} / ${c.zmq_io} / ${c.helpers}` : '';
      });
      lines.push(`| ${rowLabel(e0)} | ${e0.transport} | ${WORKER_NAMES[e0.worker]} | ${e0.inflight} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }

  lines.push('## Targets (issues 6 and 13; reported, not asserted)', '');
  lines.push('| target | measured | threshold | met | detail |');
  lines.push('|---|---:|---:|---|---|');
  for (const t of report.targets) {
    const met = t.met === null ? 'n/a' : t.met ? 'yes' : '**no**';
    lines.push(`| ${t.description} | ${t.value === null ? '–' : `${t.value.toLocaleString('en-US')} ${t.unit}`} | ${t.threshold === null ? '–' : `${t.threshold.toLocaleString('en-US')} ${t.unit}`} | ${met} | ${t.detail} |`);
  }
  lines.push('', 'Plots: `latency-by-payload.svg` (p50 with a bar to p99, log scale), `latency-cdf-L.svg` (latency CDF at L, 1 in flight).', '');
  return lines.join('\n');
}
