// `train`: starts a training job on a running gateway over HTTP, follows its progress (server-sent events) with a
// live line on a terminal (step, loss, ETA), and exits with the job's outcome. The logic is `runTrain()` with typed
// options; the CliCommand below only parses argv into them (so it can be re-registered in another CLI library).
import { parseArgs } from 'node:util';
import type { CliCommand, CliIo } from './commands.js';

/** Exit codes: the job's outcome. */
export const TRAIN_EXIT = { succeeded: 0, failed: 1, usage: 2, cancelled: 3, unreachable: 4 } as const;

export interface TrainCommandOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  framework: string;
  /** The training options as the gateway takes them (dataset, policy_type, steps, ...). */
  options: Record<string, unknown>;
  token?: string;
  /** Return after the job is accepted, without following it. */
  detach?: boolean;
}

/** Where the live progress line goes; without a TTY nothing but the start and the outcome is printed. */
export interface ProgressSink {
  isTTY: boolean;
  write(text: string): void;
}

interface Job {
  id: string;
  state: string;
  error?: string;
  checkpoints: string[];
  output_dir?: string;
  progress: { step?: number; total_steps?: number; loss?: number; eta_s?: number | null; steps_per_s?: number | null };
}

/** Starts the job, follows it to its end, and resolves with the exit code (TRAIN_EXIT). */
export async function runTrain(o: TrainCommandOptions, io: Pick<CliIo, 'out' | 'err'>, sink: ProgressSink): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
  const base = o.url.replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/v1/frameworks/${encodeURIComponent(o.framework)}/train`, { method: 'POST', headers, body: JSON.stringify({ data: o.options }) });
  } catch (err) {
    io.err(`cannot reach the gateway at ${base}: ${(err as Error).message}`);
    return TRAIN_EXIT.unreachable;
  }
  const body = (await res.json().catch(() => ({}))) as { result?: Job; error?: { code: string; message: string } };
  if (!res.ok || !body.result) {
    io.err(`train refused: ${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}`);
    return body.error?.code === 'bad_request' ? TRAIN_EXIT.usage : TRAIN_EXIT.failed;
  }
  let job = body.result;
  io.out(`job ${job.id} ${job.state} on ${o.framework}${job.output_dir ? ` (output ${job.output_dir})` : ''}`);
  if (o.detach || ['succeeded', 'failed', 'cancelled'].includes(job.state)) return outcome(job, io);

  const events = await fetch(`${base}/v1/jobs/${job.id}/events`, { headers });
  if (!events.ok || !events.body) {
    io.err(`cannot follow job ${job.id}: HTTP ${events.status}`);
    return TRAIN_EXIT.unreachable;
  }
  let drawn = false;
  for await (const { event, data } of sseEvents(events.body)) {
    if (event === 'state') job = JSON.parse(data) as Job;
    else if (event === 'progress') job = { ...job, progress: { ...job.progress, ...(JSON.parse(data) as Job['progress']) } };
    else if (event === 'checkpoint' && !sink.isTTY) continue;
    if (sink.isTTY) {
      sink.write(`\r\x1b[2K${progressLine(job)}`);
      drawn = true;
    }
  }
  if (drawn) sink.write('\n');
  return outcome(job, io);
}

function outcome(job: Job, io: Pick<CliIo, 'out' | 'err'>): number {
  if (job.state === 'succeeded') {
    io.out(`job ${job.id} succeeded${job.progress.loss !== undefined ? `, final loss ${job.progress.loss.toFixed(4)}` : ''}; checkpoint ${job.checkpoints.at(-1) ?? '(none)'}`);
    return TRAIN_EXIT.succeeded;
  }
  if (job.state === 'cancelled') {
    io.err(`job ${job.id} cancelled`);
    return TRAIN_EXIT.cancelled;
  }
  if (job.state === 'failed') {
    io.err(`job ${job.id} failed: ${job.error ?? 'no reason given'}`);
    return TRAIN_EXIT.failed;
  }
  return TRAIN_EXIT.succeeded; // detached: accepted
}

/** `[#####-----] 120/200 loss 0.4312 ETA 1m05s` */
export function progressLine(job: Job): string {
  const { step, total_steps: total, loss, eta_s: eta } = job.progress;
  if (step === undefined || !total) return `job ${job.id.slice(0, 8)} ${job.state}`;
  const width = 24;
  const filled = Math.min(width, Math.round((step / total) * width));
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const etaText = eta === undefined || eta === null ? '' : ` ETA ${Math.floor(eta / 60)}m${String(Math.round(eta % 60)).padStart(2, '0')}s`;
  return `${bar} ${step}/${total} loss ${loss === undefined ? '?' : loss.toFixed(4)}${etaText} ${job.state}`;
}

/** Server-sent events of a response body, as {event, data}. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

const INT_OPTIONS = ['seed', 'num-workers', 'batch-size', 'steps', 'eval-freq', 'log-freq', 'save-freq'] as const;
const USAGE = '<framework> --dataset <repo_id> --policy-type <act|...> [--output-folder-name name] [--policy-device cuda|cpu] [--steps n] [--batch-size n] [--seed n] [--num-workers n] [--eval-freq n] [--log-freq n] [--save-freq n] [--extra-arg --key=value ...] [--url http://127.0.0.1:8080] [--token t] [--detach]';

export const trainCommand: CliCommand = {
  name: 'train',
  summary: "start a training job on a gateway, show its progress, exit with its outcome (0 ok, 1 failed, 3 cancelled)",
  usage: USAGE,
  async run(args, io) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          url: { type: 'string', default: io.env.PAIG_URL ?? 'http://127.0.0.1:8080' },
          token: { type: 'string', default: io.env.PAIG_AUTH_TOKEN },
          dataset: { type: 'string' },
          'policy-type': { type: 'string' },
          'output-folder-name': { type: 'string' },
          'policy-device': { type: 'string' },
          'extra-arg': { type: 'string', multiple: true },
          detach: { type: 'boolean', default: false },
          ...Object.fromEntries(INT_OPTIONS.map((k) => [k, { type: 'string' as const }])),
        },
      });
    } catch (err) {
      io.err(`${(err as Error).message}\nusage: physical-ai-gateway train ${USAGE}`);
      return TRAIN_EXIT.usage;
    }
    const { values, positionals } = parsed;
    if (positionals.length !== 1) {
      io.err(`usage: physical-ai-gateway train ${USAGE}`);
      return TRAIN_EXIT.usage;
    }
    const v = values as Record<string, string | string[] | boolean | undefined>;
    const options: Record<string, unknown> = { dataset: v.dataset, policy_type: v['policy-type'], output_folder_name: v['output-folder-name'], policy_device: v['policy-device'], extra_args: v['extra-arg'] };
    // Numbers as typed: the gateway lists every bad one (a non-number stays a string and is refused there).
    for (const k of INT_OPTIONS) if (v[k] !== undefined) options[k.replace(/-/g, '_')] = /^-?\d+$/.test(String(v[k])) ? Number(v[k]) : v[k];
    for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
    return runTrain({ url: String(v.url), framework: positionals[0]!, options, token: v.token as string | undefined, detach: v.detach === true }, io, { isTTY: process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
  },
};
