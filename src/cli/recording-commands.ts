// CLI commands around recordings: `replay` sends a recording's observations to a framework again (ZMQ or HTTP door,
// at the recorded pace or as fast as possible) and with --compare checks the actions against the recorded ones, a
// policy regression test in one command; `record` switches a running gateway's recorder and summarises a file.
// Heavy modules (zeromq, @mcap/core) load when a command runs.
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { Deadline, sleep } from '../lib/abort.js';
import { GatewayError, isErrorCode } from '../lib/errors.js';
import type { ComparisonSummary } from '../recording/compare.js';
import {
  authHeaders,
  CliExit,
  DEFAULT_HTTP_GATEWAY,
  DEFAULT_ZMQ_GATEWAY,
  frameworkOption,
  gatewayOption,
  httpGateway,
  isHttpAddress,
  jsonOption,
  nonNegativeNumber,
  timeoutOption,
  tokenOption,
  type CliIo,
  type DeclaredCommand,
} from './commands.js';
import { startProgress } from './progress.js';

/** `1x`, `2.5x` → a speed factor; `max` → Infinity (no pacing). */
export function parseRate(value: string): number {
  if (value === 'max') return Infinity;
  const m = /^(\d+(?:\.\d+)?)x$/.exec(value);
  const rate = m ? Number(m[1]) : NaN;
  if (!(rate > 0)) throw new InvalidArgumentError('must be like 1x, 0.5x, 4x or max.');
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

const replay: DeclaredCommand = {
  name: 'replay',
  summary: 'send a recording (MCAP) to a framework again; --compare checks the actions against the recorded ones',
  define(cmd, io) {
    cmd
      .argument('<file.mcap>', 'the recording')
      .addOption(gatewayOption(DEFAULT_ZMQ_GATEWAY))
      .addOption(frameworkOption('the recorded one'))
      .addOption(new Option('--rate <rate>', 'pace: 1x (as recorded), 0.5x, 4x, ... or max').default(1, '1x').argParser(parseRate))
      .option('--compare', 'compare the replayed actions with the recorded ones; exit 1 past the tolerance', false)
      .addOption(new Option('--tolerance <abs>', 'largest allowed |action difference|').default(1e-4).argParser(nonNegativeNumber))
      .addOption(timeoutOption(5_000))
      .addOption(tokenOption())
      .addOption(jsonOption())
      .action(async (file, o) => {
        const code = await runReplay(file, o, io);
        if (code !== 0) throw new CliExit(code);
      });
  },
};

interface ReplayOptions {
  gateway: string;
  framework?: string | undefined;
  rate: number;
  compare: boolean;
  tolerance: number;
  timeoutMs: number;
  token?: string | undefined;
  json: boolean;
}

async function runReplay(file: string, o: ReplayOptions, io: CliIo): Promise<number> {
  const { rate, tolerance, timeoutMs } = o;
  const [{ readRecording, summarizeRecording }, { ReplayComparison, actionDiff, actionValues }] = await Promise.all([import('../recording/recording-reader.js'), import('../recording/compare.js')]);
  const summary = await summarizeRecording(file);
  const total = summary.channels.filter((c) => c.topic.endsWith('/timing')).reduce((n, c) => n + c.messages, 0);
  const http = isHttpAddress(o.gateway);
  const send = await sender({ gateway: o.gateway, token: o.token, timeoutMs });
  const comparison = new ReplayComparison(tolerance);
  const via = `${http ? 'HTTP' : 'ZMQ'} ${o.gateway}`;
  if (!o.json) io.out(`replaying ${total} exchanges from ${file} via ${via} at ${rate === Infinity ? 'max rate' : `${rate}x`}`);
  let firstNs: bigint | undefined;
  const startedAt = performance.now();
  let reported = 0;
  const progress = await startProgress(o.json ? { ...io, status: undefined } : io, { label: 'replay', total });
  const log = o.json ? () => undefined : (line: string) => progress.log(line);
  try {
    for await (const ex of readRecording(file)) {
      firstNs ??= ex.logTimeNs;
      if (rate !== Infinity) {
        const dueMs = Number(ex.logTimeNs - firstNs) / 1e6 / rate;
        const waitMs = startedAt + dueMs - performance.now();
        if (waitMs > 0) await sleep(waitMs);
      }
      const framework = o.framework ?? ex.framework;
      const reply = await send(framework, ex.observation);
      const replayed = reply.ok ? actionValues(reply.action) : undefined;
      const diff = o.compare && ex.action && replayed ? actionDiff(ex.action, replayed) : undefined;
      comparison.add({ requestId: ex.requestId, recordedOutcome: ex.outcome, replayedOutcome: reply.ok ? 'ok' : reply.code, diff, recordedMs: ex.totalMs, replayedMs: reply.ms });
      if (o.compare && !o.json && reported < 10 && (diff?.shapeMismatch || (diff && diff.maxAbs > tolerance) || (ex.outcome === 'ok') !== reply.ok)) {
        reported++;
        log(`  request ${ex.requestId}: ${diff?.shapeMismatch ?? (diff ? `max |diff| ${fmtDiff(diff.maxAbs)}` : `recorded ${ex.outcome}, replayed ${reply.ok ? 'ok' : reply.code}`)}`);
      }
      progress.update(comparison.outcomes.length, { status: reply.ok ? '' : `last: ${reply.code}` });
    }
  } finally {
    progress.stop();
    await send.close();
  }
  const result = comparison.summary();
  if (o.json) io.out(JSON.stringify({ file, via, ...result }, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v)));
  else if (o.compare) printSummary(result, io);
  else io.out(`sent ${result.requests}; replayed median ${fmt(result.latencyMs.replayedMedian)} ms, p95 ${fmt(result.latencyMs.replayedP95)} ms; recorded median ${fmt(result.latencyMs.recordedMedian)} ms`);
  return o.compare && !result.passed ? 1 : 0;
}

type SendResult = { ok: true; action: unknown; ms: number } | { ok: false; code: string; ms: number };
type Send = ((framework: string, observation: Record<string, unknown>) => Promise<SendResult>) & { close(): Promise<void> };

/** One inference at a time through the ZMQ door (binary codec) or the HTTP door (msgpack body). */
async function sender({ gateway, token, timeoutMs }: { gateway: string; token: string | undefined; timeoutMs: number }): Promise<Send> {
  const { decodeMessage, encodeMessage } = await import('../protocol/codec.js');
  if (isHttpAddress(gateway)) {
    const base = gateway;
    const send = async (framework: string, data: Record<string, unknown>): Promise<SendResult> => {
      const t0 = performance.now();
      using deadline = new Deadline(timeoutMs);
      try {
        const body = encodeMessage({ data }, 'msgpack')[0]!;
        const res = await fetch(`${base}/v1/frameworks/${framework}/inference`, { method: 'POST', headers: { 'content-type': 'application/msgpack', ...authHeaders(token) }, body: body as Uint8Array<ArrayBuffer>, signal: deadline.signal });
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
  const client = new WorkerClient({ endpoint: gateway, codec: 'binary', timeoutMs });
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

interface RecorderStatus {
  recording: boolean;
  frameworks: string[];
  dir: string;
  images: string;
  recorded: number;
  dropped: number;
  currentFile: string | null;
  files: string[];
}

/** GET or POST the running gateway's /v1/recording; prints the state (or the JSON with --json). */
async function recorder(o: { gateway: string; token?: string | undefined; timeoutMs: number; json: boolean }, io: CliIo, change?: { on: boolean; frameworks?: string[] | undefined }): Promise<void> {
  const url = `${httpGateway(o.gateway, 'record')}/v1/recording`;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...authHeaders(o.token) };
  using deadline = new Deadline(o.timeoutMs);
  const res = change
    ? await fetch(url, { method: 'POST', headers, signal: deadline.signal, body: JSON.stringify({ on: change.on, ...(change.frameworks ? { frameworks: change.frameworks } : {}) }) })
    : await fetch(url, { headers, signal: deadline.signal });
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) {
    const error = body.error as { code?: string; message?: string } | undefined;
    const code = error?.code;
    throw new GatewayError(code && isErrorCode(code) ? code : 'bad_request', error?.message ?? `HTTP ${res.status}: ${JSON.stringify(body)}`);
  }
  if (o.json) {
    io.out(JSON.stringify(body, null, 2));
    return;
  }
  const s = body as unknown as RecorderStatus;
  io.out(`recording: ${s.recording ? `on for ${s.frameworks.join(', ')}` : 'off'}   images: ${s.images}   dir: ${s.dir}`);
  io.out(`recorded ${s.recorded} exchanges, dropped ${s.dropped}; writing ${s.currentFile ?? '-'}; finished files: ${s.files.length}`);
}

async function recordingInfo(file: string, json: boolean, io: CliIo): Promise<void> {
  const { summarizeRecording } = await import('../recording/recording-reader.js');
  const s = await summarizeRecording(file);
  if (json) {
    io.out(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2));
    return;
  }
  const seconds = Number(s.endNs - s.startNs) / 1e9;
  io.out(`library: ${s.library}   profile: ${s.profile || '(none)'}`);
  io.out(`messages: ${s.messages}   chunks: ${s.chunks}   duration: ${seconds.toFixed(3)} s   start: ${new Date(Number(s.startNs / 1_000_000n)).toISOString()}`);
  for (const [name, m] of Object.entries(s.metadata)) io.out(`metadata ${name}: ${Object.entries(m).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  io.out('schemas:');
  for (const sc of s.schemas) io.out(`  ${sc.name} (${sc.encoding})`);
  io.out('channels:');
  const width = Math.max(...s.channels.map((c) => c.topic.length));
  for (const c of s.channels) io.out(`  ${c.topic.padEnd(width)}  ${String(c.messages).padStart(6)} msgs  ${c.schema} [${c.messageEncoding}]`);
}

const record: DeclaredCommand = {
  name: 'record',
  summary: "switch a running gateway's recorder (on | off | status), or summarise a recording (info file.mcap)",
  define(cmd, io) {
    const door = (c: typeof cmd) => c.addOption(gatewayOption(DEFAULT_HTTP_GATEWAY, 'its HTTP door')).addOption(tokenOption()).addOption(timeoutOption(5_000)).addOption(jsonOption());
    door(cmd.command('on').description('record the exchanges of the given frameworks (default: all)'))
      .addOption(new Option('--framework <name...>', 'frameworks to record (repeatable)'))
      .action((o) => recorder(o, io, { on: true, frameworks: o.framework }));
    door(cmd.command('off').description('stop recording; the current file is finished now')).action((o) => recorder(o, io, { on: false }));
    door(cmd.command('status').description("the recorder's state and files")).action((o) => recorder(o, io));
    cmd
      .command('info')
      .description('channels, schemas and counts of a recording file')
      .argument('<file.mcap>')
      .addOption(jsonOption())
      .action((file, o) => recordingInfo(file, o.json, io));
  },
};

export const recordingCommands: readonly DeclaredCommand[] = [replay, record];
