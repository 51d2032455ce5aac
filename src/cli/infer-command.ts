// `infer`: one observation (a sample or a JSON file) to the gateway's ZMQ or HTTP door, chosen by the --gateway
// address; prints the action chunk and the timings (or one JSON document with --json).
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import type { Tensor as TensorClass } from '../protocol/tensor.js';
import { authHeaders, CliExit, DEFAULT_ZMQ_GATEWAY, frameworkOption, gatewayOption, isHttpAddress, jsonOption, positiveInt, timeoutOption, tokenOption, UsageError, type DeclaredCommand } from './commands.js';

async function clientModules() {
  const [{ decodeMessage, encodeMessage }, { Tensor }, { WorkerClient }, { sampleObservation, sampleObservationJson }] = await Promise.all([
    import('../protocol/codec.js'),
    import('../protocol/tensor.js'),
    import('../zmq/worker-client.js'),
    import('./sample.js'),
  ]);
  return { decodeMessage, encodeMessage, Tensor, WorkerClient, sampleObservation, sampleObservationJson };
}

interface ActionSummary {
  kind: 'tensor' | 'nested list' | 'other';
  dtype?: string;
  shape?: number[];
  values: unknown;
}

function describeAction(action: unknown, Tensor: typeof TensorClass): ActionSummary {
  if (action instanceof Tensor) return { kind: 'tensor', dtype: action.dtype, shape: [...action.shape], values: action.toNested() };
  if (Array.isArray(action)) return { kind: 'nested list', shape: [action.length, Array.isArray(action[0]) ? (action[0] as unknown[]).length : 0], values: action };
  return { kind: 'other', values: action };
}

function actionLines(a: ActionSummary, rows: number): string[] {
  if (a.kind === 'other') return [`action: ${JSON.stringify(a.values)}`];
  const nested = a.values as number[][];
  const lines = [a.kind === 'tensor' ? `action: ${a.dtype} [${a.shape!.join(', ')}]` : `action: nested list [${nested.length}, ${Array.isArray(nested[0]) ? nested[0].length : '?'}]`];
  for (let k = 0; k < Math.min(rows, nested.length); k++) lines.push(`  [${k}] ${(nested[k] ?? []).map((v) => Number(v).toFixed(4)).join(' ')}`);
  if (nested.length > rows) lines.push(`  ... ${nested.length - rows} more rows`);
  return lines;
}

/** The gateway's default framework, from GET /v1/frameworks; `bad_request` when it has none. */
async function defaultFrameworkOf(base: string, timeoutMs: number, headers: Record<string, string>): Promise<string> {
  using deadline = new Deadline(timeoutMs);
  const res = await fetch(`${base}/v1/frameworks`, { headers, signal: deadline.signal });
  const body = (await res.json()) as { default?: string | null; frameworks?: Array<{ name: string }> };
  if (!res.ok || !body.default) {
    throw new GatewayError('bad_request', `the gateway at ${base} has no default framework (${(body.frameworks ?? []).map((f) => f.name).join(', ') || 'none listed'}): pass --framework`);
  }
  return body.default;
}

async function readObservation(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

function sampleSize(value: string): 'S' | 'L' {
  const size = value.toUpperCase();
  if (size !== 'S' && size !== 'L') throw new InvalidArgumentError('must be S or L.');
  return size;
}

export const inferCommand: DeclaredCommand = {
  name: 'infer',
  summary: 'send one observation (a sample or a JSON file) and print the action chunk and the timings',
  define(cmd, io) {
    cmd
      .addOption(gatewayOption(DEFAULT_ZMQ_GATEWAY))
      .addOption(frameworkOption())
      .addOption(new Option('--codec <codec>', 'ZMQ codec; over HTTP binary and msgpack send a msgpack body').choices(['binary', 'msgpack', 'json'] as const).default('binary' as const))
      .addOption(new Option('--sample <size>', 'sample observation: S (14 joints) or L (+ three 224x224 images)').default('L' as const).argParser(sampleSize))
      .addOption(new Option('-f, --file <obs.json>', 'send this observation (JSON) instead of a sample').conflicts('sample'))
      .option('--instruction <text>', 'set the observation\'s instruction')
      .addOption(new Option('-n, --count <n>', 'send it n times and print round-trip statistics').default(1).argParser(positiveInt))
      .addOption(new Option('--rows <n>', 'action rows to print').default(4).argParser(positiveInt))
      .addOption(timeoutOption(5_000))
      .addOption(tokenOption())
      .addOption(jsonOption())
      .addHelpText('after', '\nExamples:\n  physical-ai-gateway infer                                   # ZMQ door, binary codec, sample L\n  physical-ai-gateway infer -g http://127.0.0.1:8080 --sample S\n  physical-ai-gateway infer --file obs.json --count 100 --json')
      .action(async (o) => {
        const { decodeMessage, encodeMessage, Tensor, WorkerClient, sampleObservation, sampleObservationJson } = await clientModules();
        const size = o.sample;
        let data: unknown = o.file !== undefined ? await readObservation(o.file) : o.codec === 'json' ? sampleObservationJson(size) : sampleObservation(size);
        if (o.instruction !== undefined && data && typeof data === 'object') data = { ...(data as Record<string, unknown>), instruction: o.instruction };
        const times: number[] = [];
        let last: { result: unknown; timing?: { compute_ms?: number; total_ms?: number }; via: string } | undefined;

        if (isHttpAddress(o.gateway)) {
          const headers = authHeaders(o.token);
          // As over ZMQ: without --framework, the gateway's default framework (asked for, not assumed to be 'demo').
          const framework = o.framework ?? (await defaultFrameworkOf(o.gateway, o.timeoutMs, headers));
          const msgpack = o.codec !== 'json';
          const url = `${o.gateway}/v1/frameworks/${encodeURIComponent(framework)}/inference`;
          for (let i = 0; i < o.count; i++) {
            const body = msgpack ? encodeMessage({ data }, 'msgpack')[0]! : JSON.stringify({ data });
            const t0 = performance.now();
            using deadline = new Deadline(o.timeoutMs);
            const res = await fetch(url, { method: 'POST', headers: { 'content-type': msgpack ? 'application/msgpack' : 'application/json', ...headers }, body: body as Uint8Array<ArrayBuffer> | string, signal: deadline.signal });
            const bytes = new Uint8Array(await res.arrayBuffer());
            times.push(performance.now() - t0);
            const reply = msgpack ? decodeMessage([bytes]).header : (JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>);
            if (!res.ok) {
              const error = reply.error as { code?: string; message?: string } | undefined;
              if (o.json) io.out(JSON.stringify({ ok: false, status: res.status, error: reply.error ?? reply }));
              else io.err(`error (${error?.code ?? `HTTP ${res.status}`}): ${error?.message ?? JSON.stringify(reply)}`);
              throw new CliExit(1);
            }
            last = { result: reply.result, timing: reply.timing as never, via: `HTTP ${msgpack ? 'msgpack' : 'JSON'} ${url}` };
          }
        } else {
          const client = new WorkerClient({ endpoint: o.gateway, codec: o.codec, timeoutMs: o.timeoutMs });
          try {
            for (let i = 0; i < o.count; i++) {
              const reply = await client.request({ type: 'inference', data, ...(o.framework ? { framework: o.framework } : {}) });
              times.push(reply.roundTripMs);
              last = { result: reply.result, timing: reply.timing, via: `ZMQ ${o.codec} ${o.gateway}` };
            }
          } finally {
            await client.close();
          }
        }
        const result = (last!.result ?? {}) as Record<string, unknown>;
        const action = describeAction(result.action, Tensor);
        const sorted = [...times].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)]!;
        if (o.json) {
          const { action: _omit, ...rest } = result;
          io.out(JSON.stringify({ ok: true, via: last!.via, action, result: rest, roundTripMs: { count: o.count, median, min: sorted[0], max: sorted.at(-1) }, timing: last!.timing ?? null }));
          return;
        }
        io.out(`via ${last!.via}`);
        for (const line of actionLines(action, o.rows)) io.out(line);
        io.out(`dt_s: ${String(result.dt_s)}  model: ${String(result.model)}  instruction: ${JSON.stringify(result.instruction ?? '')}`);
        io.out(`round trip: ${o.count === 1 ? `${median.toFixed(3)} ms` : `median ${median.toFixed(3)} ms over ${o.count} (min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)})`}`);
        if (last!.timing) io.out(`worker: compute ${last!.timing.compute_ms?.toFixed(3)} ms, total ${last!.timing.total_ms?.toFixed(3)} ms`);
      });
  },
};
