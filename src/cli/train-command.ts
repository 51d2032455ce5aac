// `train`: starts a training job on a running gateway over HTTP, follows its progress (server-sent events) with a
// live line on a terminal (step, loss, ETA), and exits with the job's outcome. The logic is `runTrain()` with typed
// options; the command below declares its flags on commander and maps them to those options.
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { CliExit, DEFAULT_HTTP_GATEWAY, gatewayOption, httpGateway, positiveInt, tokenOption, type CliIo, type DeclaredCommand } from './commands.js';

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

/** The original training options that are whole numbers: flag name → option name. */
const INT_OPTIONS = { seed: 'seed', numWorkers: 'num_workers', batchSize: 'batch_size', steps: 'steps', evalFreq: 'eval_freq', logFreq: 'log_freq', saveFreq: 'save_freq' } as const;

export const trainCommand: DeclaredCommand = {
  name: 'train',
  summary: 'start a training job on a gateway, show its progress, exit with its outcome (0 ok, 1 failed, 3 cancelled, 4 unreachable)',
  define(cmd, io) {
    cmd
      .argument('<framework>', 'the framework to train (one with training: true in the gateway config)')
      .requiredOption('--dataset <repo_id>', 'LeRobot dataset repo id (found under the worker\'s data root; no hub)')
      .requiredOption('--policy-type <type>', 'policy to train (act, diffusion, ...)')
      .option('--output-folder-name <name>', 'folder under the training output root (default: the job id)')
      .option('--policy-device <device>', 'cpu, cuda, cuda:1, ...')
      .addOption(new Option('--seed <n>', 'random seed').argParser(wholeNumber))
      .addOption(new Option('--num-workers <n>', 'data loader workers').argParser(wholeNumber))
      .addOption(new Option('--batch-size <n>', 'batch size').argParser(positiveInt))
      .addOption(new Option('--steps <n>', 'training steps').argParser(positiveInt))
      .addOption(new Option('--eval-freq <n>', 'evaluate every n steps').argParser(wholeNumber))
      .addOption(new Option('--log-freq <n>', 'log every n steps').argParser(positiveInt))
      .addOption(new Option('--save-freq <n>', 'write a checkpoint every n steps').argParser(positiveInt))
      .option('--extra-arg <key=value...>', 'more trainer arguments, each --key=value')
      .option('--detach', 'return once the job is accepted, without following it', false)
      .addOption(gatewayOption(DEFAULT_HTTP_GATEWAY, 'its HTTP door'))
      .addOption(tokenOption())
      .action(async (framework, o) => {
        const options: Record<string, unknown> = { dataset: o.dataset, policy_type: o.policyType, output_folder_name: o.outputFolderName, policy_device: o.policyDevice, extra_args: o.extraArg };
        for (const [flag, name] of Object.entries(INT_OPTIONS)) options[name] = o[flag as keyof typeof INT_OPTIONS];
        for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];
        const sink = { isTTY: io.status?.isTTY === true, write: (text: string) => io.status?.write(text) };
        const code = await runTrain({ url: httpGateway(o.gateway, 'train'), framework, options, ...(o.token ? { token: o.token } : {}), detach: o.detach }, io, sink);
        if (code !== 0) throw new CliExit(code);
      });
  },
};

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number >= 0.');
  return n;
}
