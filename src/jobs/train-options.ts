// The options of a training request: the original ROBOTIS training manager's set (dataset, policy_type,
// output_folder_name, policy_device, seed, num_workers, batch_size, steps, eval_freq, log_freq, save_freq) plus
// `extra_args` (more `--key=value` arguments for the framework's trainer). Checked here, once, before a job exists:
// every bad field is listed in one `bad_request`.
import { GatewayError } from '../lib/errors.js';

export interface TrainOptions {
  /** Dataset repo id (`user/name`); the worker resolves it in its Hugging Face cache. */
  dataset: string;
  /** Policy type of the framework's trainer (LeRobot: act, diffusion, pi0, smolvla, ...). */
  policy_type: string;
  /** Folder under the framework's training output root; default: the job id. */
  output_folder_name?: string;
  /** cuda (= cuda:0), cuda:N, cpu or mps; default cuda. Jobs on the same device queue (jobs.maxPerDevice). */
  policy_device: string;
  seed?: number;
  num_workers?: number;
  batch_size?: number;
  steps?: number;
  eval_freq?: number;
  log_freq?: number;
  save_freq?: number;
  /** More trainer arguments, each `--key=value` (LeRobot: `--policy.dim_model=256`). */
  extra_args?: string[];
}

const INT_FIELDS = { seed: 0, num_workers: 0, batch_size: 1, steps: 1, eval_freq: 0, log_freq: 0, save_freq: 1 } as const;
const KNOWN = new Set(['dataset', 'policy_type', 'output_folder_name', 'policy_device', 'extra_args', ...Object.keys(INT_FIELDS)]);
const DATASET = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DEVICE = /^(cpu|mps|cuda(:\d{1,2})?)$/;
const EXTRA_ARG = /^--[A-Za-z0-9_][A-Za-z0-9_.-]*=.*$/s;
/** Arguments the gateway sets from the options above (or the worker sets itself); extra_args may not repeat them. */
const MANAGED_ARGS = ['dataset.repo_id', 'policy.type', 'output_dir', 'policy.device', 'seed', 'num_workers', 'batch_size', 'steps', 'env_eval_freq', 'log_freq', 'save_freq', 'policy.push_to_hub', 'wandb.enable', 'resume', 'job.target'];

/** The device a job occupies, for the per-device queue: `cuda` is `cuda:0`. */
export function deviceKey(options: Pick<TrainOptions, 'policy_device'>): string {
  return options.policy_device === 'cuda' ? 'cuda:0' : options.policy_device;
}

/** Validates the data of a train request; throws `bad_request` naming every bad field (path: the first). */
export function parseTrainOptions(data: unknown): TrainOptions {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new GatewayError('bad_request', 'data: expected the training options as an object ({dataset, policy_type, ...})', { path: '/data' });
  }
  const raw = data as Record<string, unknown>;
  const problems: Array<[string, string]> = [];
  const bad = (field: string, why: string) => problems.push([field, why]);
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) bad(key, `unknown option (known: ${[...KNOWN].join(', ')})`);

  const text = (field: string, pattern: RegExp, what: string, required: boolean): string | undefined => {
    const v = raw[field];
    if (v === undefined || v === null) {
      if (required) bad(field, `is required (${what})`);
      return undefined;
    }
    if (typeof v !== 'string' || !pattern.test(v)) {
      bad(field, `must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
      return undefined;
    }
    return v;
  };
  const dataset = text('dataset', DATASET, 'a dataset repo id such as user/name', true);
  const policyType = text('policy_type', /^[a-z0-9_]{1,64}$/, 'a policy type such as act', true);
  const folder = text('output_folder_name', NAME, 'a folder name of letters, digits, . _ - (no slashes)', false);
  const device = text('policy_device', DEVICE, 'cuda, cuda:N, cpu or mps', false) ?? 'cuda';

  const ints: Partial<Record<keyof typeof INT_FIELDS, number>> = {};
  for (const [field, min] of Object.entries(INT_FIELDS) as Array<[keyof typeof INT_FIELDS, number]>) {
    const v = raw[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(field, `must be an integer >= ${min}, got ${JSON.stringify(v)?.slice(0, 80)}`);
    else ints[field] = v;
  }

  let extra: string[] | undefined;
  if (raw.extra_args !== undefined && raw.extra_args !== null) {
    if (!Array.isArray(raw.extra_args) || raw.extra_args.length > 256) bad('extra_args', 'must be a list of at most 256 "--key=value" strings');
    else {
      extra = [];
      raw.extra_args.forEach((arg: unknown, i) => {
        if (typeof arg !== 'string' || !EXTRA_ARG.test(arg) || arg.length > 4096) bad(`extra_args[${i}]`, `must be a "--key=value" string, got ${JSON.stringify(arg)?.slice(0, 80)}`);
        else if (MANAGED_ARGS.includes(arg.slice(2, arg.indexOf('=')))) bad(`extra_args[${i}]`, `--${arg.slice(2, arg.indexOf('='))} is set by the gateway from the options; use the option instead`);
        else extra!.push(arg);
      });
    }
  }

  if (problems.length > 0) {
    const list = problems.map(([field, why]) => `${field} ${why}`).join('; ');
    throw new GatewayError('bad_request', `invalid training options (${problems.length}): ${list}`, { path: `/data/${problems[0]![0].replace(/\[(\d+)\]/, '/$1')}` });
  }
  return {
    dataset: dataset!,
    policy_type: policyType!,
    ...(folder !== undefined ? { output_folder_name: folder } : {}),
    policy_device: device,
    ...ints,
    ...(extra ? { extra_args: extra } : {}),
  };
}
