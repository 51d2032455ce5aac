// CLI commands around recordings: `replay` sends a recording's observations to a framework again (ZMQ or HTTP door,
// at the recorded pace or as fast as possible) and with --compare checks the actions against the recorded ones, a
// policy regression test in one command; `record` switches a running gateway's recorder and summarises a file.
// Heavy modules (zeromq, @mcap/core) load when a command runs.
import { parseArgs } from 'node:util';
import { Deadline, sleep } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import type { ComparisonSummary } from '../recording/compare.js';
import type { CliCommand, CliIo } from './commands.js';

const DEFAULT_URL = 'http://127.0.0.1:8080';
const PROGRESS_EVERY_MS = 2_000;

/** `1x`, `2.5x` → a speed factor; `max` → Infinity (no pacing). */
export function parseRate(value: string): number {
  if (value === 'max') return Infinity;
  const m = /^(\d+(?:\.\d+)?)x$/.exec(value);
  const rate = m ? Number(m[1]) : NaN;
  if (!(rate > 0)) throw new GatewayError('bad_request', `--rate must be like 1x, 0.5x, 4x or max (got '${value}')`);
  return rate;
}

const fmt = (v: number | undefined, digits = 3): string => (v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(digits) : String(v));
/** Action differences span many decades (float32 rounding to real regressions): one exponent format for all. */
const fmtDiff = (v: number): string => (v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(2) : String(v));

function printSummary(s: ComparisonSummary, io: CliIo): void {
  io.out(`requests ${s.requests}, compared ${s.compared}, outcome mismatches ${s.outcomeMismatches}, shape mismatches ${s.shapeMismatches}, over tolerance ${s.overTolerance}`);
  io.out(`action |diff|: max ${fmtDiff(s.maxAbs)}, mean ${fmtDiff(s.meanAbs)} (tolerance ${s.tolerance})${s.worst ? `; worst request ${s.worst.requestId} (${fmtDiff(s.worst.maxAbs)})` : ''}`);
  if (s.perJointMaxAbs.length > 0) io.out(`per joint max |diff|: ${s.perJointMaxAbs.map((d, j) => `j${j} ${fmtDiff(d)}`).join('  ')}`);
  const l = s.latencyMs;
  io.out(`latency ms: recorded median ${fmt(l.recordedMedian)} (gateway time), replayed median ${fmt(l.replayedMedian)} (round trip), diff ${fmt(l.medianDiff)}, replayed p95 ${fmt(l.replayedP95)}`);
  io.out(s.passed ? 'PASS: replayed actions match the recording within the tolerance' : 'FAIL: replayed actions differ from the recording');
}

const replay: CliCommand = {
  name: 'replay',
  summary: 'send a recording (MCAP) to a framework again; --compare checks the actions against the recorded ones',
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        framework: { type: 'string' },
        endpoint: { type: 'string' },
        http: { type: 'string' },
        rate: { type: 'string', default: '1x' },
        compare: { type: 'boolean', default: false },
        tolerance: { type: 'string', default: '1e-4' },
        'timeout-ms': { type: 'string', default: '5000' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help || positionals.length !== 1) {
      io.out('usage: physical-ai-gateway replay file.mcap [--framework X] [--endpoint tcp://127.0.0.1:5550 | --http http://127.0.0.1:8080] [--rate 1x|max] [--compare [--tolerance 1e-4]] [--json]');
      io.out('  sends every recorded inference observation (to the recorded framework unless --framework names another);');
      io.out('  --compare reports action differences (max abs, mean, per joint) and latencies, and exits 1 past the tolerance');
      return values.help ? 0 : 2;
    }
    if (values.endpoint !== undefined && values.http !== undefined) throw new GatewayError('bad_request', "'--endpoint' and '--http' are mutually exclusive");
    const rate = parseRate(values.rate!);
    const tolerance = Number(values.tolerance);
    if (!(tolerance >= 0)) throw new GatewayError('bad_request', `--tolerance must be a number >= 0 (got '${values.tolerance}')`);
    const timeoutMs = Number(values['timeout-ms']) || 5_000;
    const file = positionals[0]!;

    const [{ readRecording, summarizeRecording }, { ReplayComparison, actionDiff, actionValues }, { DEFAULT_ZMQ_ENDPOINT }] = await Promise.all([
      import('../recording/recording-reader.js'),
      import('../recording/compare.js'),
      import('../config.js'),
    ]);
    const summary = await summarizeRecording(file);
    const total = summary.channels.filter((c) => c.topic.endsWith('/timing')).reduce((n, c) => n + c.messages, 0);
    const send = await sender({ endpoint: values.endpoint ?? DEFAULT_ZMQ_ENDPOINT, http: values.http, timeoutMs });
    const comparison = new ReplayComparison(tolerance);
    const via = values.http ? `HTTP ${values.http}` : `ZMQ ${values.endpoint ?? DEFAULT_ZMQ_ENDPOINT}`;
    if (!values.json) io.out(`replaying ${total} exchanges from ${file} via ${via} at ${rate === Infinity ? 'max rate' : `${rate}x`}`);
    let firstNs: bigint | undefined;
    const startedAt = performance.now();
    let lastProgress = startedAt;
    let reported = 0;
    try {
      for await (const ex of readRecording(file)) {
        firstNs ??= ex.logTimeNs;
        if (rate !== Infinity) {
          const dueMs = Number(ex.logTimeNs - firstNs) / 1e6 / rate;
          const waitMs = startedAt + dueMs - performance.now();
          if (waitMs > 0) await sleep(waitMs);
        }
        const framework = values.framework ?? ex.framework;
        const reply = await send(framework, ex.observation);
        const replayed = reply.ok ? actionValues(reply.action) : undefined;
        const diff = values.compare && ex.action && replayed ? actionDiff(ex.action, replayed) : undefined;
        comparison.add({ requestId: ex.requestId, recordedOutcome: ex.outcome, replayedOutcome: reply.ok ? 'ok' : reply.code, diff, recordedMs: ex.totalMs, replayedMs: reply.ms });
        if (values.compare && !values.json && reported < 10 && (diff?.shapeMismatch || (diff && diff.maxAbs > tolerance) || (ex.outcome === 'ok') !== reply.ok)) {
          reported++;
          io.out(`  request ${ex.requestId}: ${diff?.shapeMismatch ?? (diff ? `max |diff| ${fmtDiff(diff.maxAbs)}` : `recorded ${ex.outcome}, replayed ${reply.ok ? 'ok' : reply.code}`)}`);
        }
        if (!values.json && performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
          lastProgress = performance.now();
          io.out(`  ${comparison.outcomes.length}/${total} sent`);
        }
      }
    } finally {
      await send.close();
    }
    const result = comparison.summary();
    if (values.json) io.out(JSON.stringify({ file, via, ...result }, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v)));
    else if (values.compare) printSummary(result, io);
    else io.out(`sent ${result.requests}; replayed median ${fmt(result.latencyMs.replayedMedian)} ms, p95 ${fmt(result.latencyMs.replayedP95)} ms; recorded median ${fmt(result.latencyMs.recordedMedian)} ms`);
    return values.compare && !result.passed ? 1 : 0;
  },
};

type SendResult = { ok: true; action: unknown; ms: number } | { ok: false; code: string; ms: number };
type Send = ((framework: string, observation: Record<string, unknown>) => Promise<SendResult>) & { close(): Promise<void> };

/** One inference at a time through the ZMQ door (binary codec) or the HTTP door (msgpack body). */
async function sender({ endpoint, http, timeoutMs }: { endpoint: string; http: string | undefined; timeoutMs: number }): Promise<Send> {
  const { decodeMessage, encodeMessage } = await import('../protocol/codec.js');
  if (http !== undefined) {
    const base = http.replace(/\/$/, '');
    const send = async (framework: string, data: Record<string, unknown>): Promise<SendResult> => {
      const t0 = performance.now();
      using deadline = new Deadline(timeoutMs);
      try {
        const body = encodeMessage({ data }, 'msgpack')[0]!;
        const res = await fetch(`${base}/v1/frameworks/${framework}/inference`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: body as Uint8Array<ArrayBuffer>, signal: deadline.signal });
        const bytes = new Uint8Array(await res.arrayBuffer());
        const ms = performance.now() - t0;
        const header = decodeMessage([bytes]).header;
        if (!res.ok) return { ok: false, code: String((header.error as { code?: string } | undefined)?.code ?? `http_${res.status}`), ms };
        return { ok: true, action: (header.result as Record<string, unknown> | undefined)?.action, ms };
      } catch (err) {
        return { ok: false, code: err instanceof GatewayError ? err.code : deadline.signal.aborted ? 'timeout' : 'unavailable', ms: performance.now() - t0 };
      }
    };
    return Object.assign(send, { close: async () => undefined });
  }
  const { WorkerClient } = await import('../zmq/worker-client.js');
  const client = new WorkerClient({ endpoint, codec: 'binary', timeoutMs });
  const send = async (framework: string, data: Record<string, unknown>): Promise<SendResult> => {
    const t0 = performance.now();
    try {
      const reply = await client.request({ type: 'inference', data, framework });
      return { ok: true, action: (reply.result as Record<string, unknown> | undefined)?.action, ms: reply.roundTripMs };
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      return { ok: false, code: err.code, ms: performance.now() - t0 };
    }
  };
  return Object.assign(send, { close: () => client.close() });
}

const record: CliCommand = {
  name: 'record',
  summary: "switch a running gateway's recorder (on|off|status), or summarise a recording (info file.mcap)",
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        url: { type: 'string', default: DEFAULT_URL },
        framework: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [action, file] = positionals;
    if (values.help || !action || !['on', 'off', 'status', 'info'].includes(action) || (action === 'info') !== (file !== undefined)) {
      io.out('usage: physical-ai-gateway record on|off [--framework demo ...] [--url http://127.0.0.1:8080]');
      io.out('       physical-ai-gateway record status [--url ...]');
      io.out('       physical-ai-gateway record info file.mcap');
      io.out('  the token (when the gateway needs one) comes from PAIG_AUTH_TOKEN');
      return values.help ? 0 : 2;
    }
    if (action === 'info') {
      const { summarizeRecording } = await import('../recording/recording-reader.js');
      const s = await summarizeRecording(file!);
      const seconds = Number(s.endNs - s.startNs) / 1e9;
      io.out(`library: ${s.library}   profile: ${s.profile || '(none)'}`);
      io.out(`messages: ${s.messages}   chunks: ${s.chunks}   duration: ${seconds.toFixed(3)} s   start: ${new Date(Number(s.startNs / 1_000_000n)).toISOString()}`);
      for (const [name, m] of Object.entries(s.metadata)) io.out(`metadata ${name}: ${Object.entries(m).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      io.out('schemas:');
      for (const sc of s.schemas) io.out(`  ${sc.name} (${sc.encoding})`);
      io.out('channels:');
      const width = Math.max(...s.channels.map((c) => c.topic.length));
      for (const c of s.channels) io.out(`  ${c.topic.padEnd(width)}  ${String(c.messages).padStart(6)} msgs  ${c.schema} [${c.messageEncoding}]`);
      return 0;
    }
    const token = io.env.PAIG_AUTH_TOKEN;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const url = `${values.url!.replace(/\/$/, '')}/v1/recording`;
    using deadline = new Deadline(5_000);
    const res =
      action === 'status'
        ? await fetch(url, { headers, signal: deadline.signal })
        : await fetch(url, { method: 'POST', headers, signal: deadline.signal, body: JSON.stringify({ on: action === 'on', ...(values.framework ? { frameworks: values.framework } : {}) }) });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) {
      const error = body.error as { code?: string; message?: string } | undefined;
      io.err(`error (${error?.code ?? res.status}): ${error?.message ?? JSON.stringify(body)}`);
      return 1;
    }
    const s = body as { recording: boolean; frameworks: string[]; dir: string; images: string; recorded: number; dropped: number; currentFile: string | null; files: string[] };
    io.out(`recording: ${s.recording ? `on for ${s.frameworks.join(', ')}` : 'off'}   images: ${s.images}   dir: ${s.dir}`);
    io.out(`recorded ${s.recorded} exchanges, dropped ${s.dropped}; writing ${s.currentFile ?? '-'}; finished files: ${s.files.length}`);
    return 0;
  },
};

export const recordingCommands: readonly CliCommand[] = [replay, record];
