// Owns the gateway's training jobs: their records (queued → running → succeeded | failed | cancelled), the
// per-device queue (jobs.maxPerDevice), and the progress each running job's worker reports.
//
// The worker is the source of truth for a running job (its JobRunner, docker/worker-sdk/physical_ai_worker/jobs.py):
// the gateway sends `train` to start one, `cancel_job` to stop one, and polls `jobs {since}` every pollIntervalMs
// while the framework has running jobs. A poll returns every job the worker knows and the progress events after
// the gateway's cursor, so none is lost between polls. That same query is how a restarted gateway finds the jobs
// still running in a worker (adopt): on start and whenever a framework becomes ready.
//
// A job fails with a reason when its worker stops answering (DEAD_AFTER_FAILED_POLLS polls in a row), or answers
// without the job (it restarted).
import { randomUUID } from 'node:crypto';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { deviceKey, parseTrainOptions, type TrainOptions } from './train-options.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const TERMINAL: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Polls in a row that fail before the jobs of that framework are failed as lost. */
export const DEAD_AFTER_FAILED_POLLS = 3;

/** Progress as the trainer reports it (LeRobot: the loss its update_policy computed for `step`). */
export interface JobProgress {
  step?: number;
  total_steps?: number;
  loss?: number;
  lr?: number;
  grad_norm?: number;
  steps_per_s?: number | null;
  eta_s?: number | null;
}

export interface JobRecord {
  id: string;
  framework: string;
  state: JobState;
  /** Why a job failed (or was cancelled by the gateway). */
  error?: string;
  options: TrainOptions | Record<string, unknown>;
  /** The device it occupies in the queue (cuda:0, cpu, ...). */
  device: string;
  progress: JobProgress;
  /** Checkpoint folders written so far (policy folders that `load_policy` can serve), oldest first. */
  checkpoints: string[];
  output_dir?: string;
  cancel_requested?: boolean;
  /** True when this gateway found the job running in a worker instead of starting it (after a restart). */
  adopted?: boolean;
  created_at: number;
  started_at?: number;
  ended_at?: number;
}

export type JobEvent =
  | { type: 'state'; job: JobRecord }
  | ({ type: 'progress'; job_id: string } & JobProgress)
  | { type: 'checkpoint'; job_id: string; step: number; path: string };

/** How the manager reaches a framework's worker (the router, in build-gateway.ts). */
export interface JobTransport {
  /** Sends one request to the framework's worker and resolves with its result. */
  request(framework: string, type: 'train' | 'jobs' | 'cancel_job', data: Record<string, unknown>, timeoutMs: number): Promise<unknown>;
  /** Training frameworks whose workers answer now (adoption asks only those: it must not start containers). */
  readyFrameworks(): string[];
  /** Whether the framework's worker runs jobs (config `frameworks.<name>.training`). */
  trains(framework: string): boolean;
  /** Calls `listener` when a framework becomes ready; returns the unsubscribe. */
  onReady(listener: (framework: string) => void): () => void;
  /** Whether `name` is a configured framework; the resolved name (default framework when undefined). */
  resolve(name: string | undefined): string;
}

/** What the manager reports to metrics (src/telemetry/metrics.ts implements it). */
export interface JobMetricsSink {
  recordTrainingProgress(framework: string, step: number | undefined, loss: number | undefined): void;
  recordJobStates(counts: Record<JobState, number>): void;
  jobFinished(framework: string, state: JobState): void;
}

export interface JobManagerOptions {
  transport: JobTransport;
  maxPerDevice?: number;
  pollIntervalMs?: number;
  cancelGraceS?: number;
  /** Budget of one request to a worker, ms. */
  requestTimeoutMs?: number;
  metrics?: JobMetricsSink;
  log?: Logger;
}

interface WorkerJob {
  job_id: string;
  state: string;
  error?: string | null;
  options?: Record<string, unknown>;
  progress?: JobProgress;
  checkpoints?: string[];
  output_dir?: string;
  started_at?: number;
  ended_at?: number | null;
}

interface WorkerQuery {
  jobs: WorkerJob[];
  events: Array<Record<string, unknown> & { seq: number; job_id: string; type: string }>;
  next: number;
  pid?: number;
}

interface Poller {
  cursor: number;
  pid?: number;
  failures: number;
  timer?: NodeJS.Timeout;
  busy: boolean;
}

export class JobManager {
  readonly #transport: JobTransport;
  readonly #maxPerDevice: number;
  readonly #pollIntervalMs: number;
  readonly #cancelGraceS: number;
  readonly #timeoutMs: number;
  readonly #metrics: JobMetricsSink | undefined;
  readonly #log: Logger;
  readonly #jobs = new Map<string, JobRecord>();
  readonly #listeners = new Set<(event: JobEvent) => void>();
  readonly #pollers = new Map<string, Poller>();
  #starting = 0;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor({ transport, maxPerDevice = 1, pollIntervalMs = 500, cancelGraceS = 10, requestTimeoutMs = 30_000, metrics, log = silentLogger }: JobManagerOptions) {
    this.#transport = transport;
    this.#maxPerDevice = maxPerDevice;
    this.#pollIntervalMs = pollIntervalMs;
    this.#cancelGraceS = cancelGraceS;
    this.#timeoutMs = requestTimeoutMs;
    this.#metrics = metrics;
    this.#log = log.child({ component: 'jobs' });
  }

  /** Whether `train` requests to this framework (undefined: the default one) become jobs here. */
  handles(framework: string | undefined): boolean {
    try {
      return this.#transport.trains(this.#transport.resolve(framework));
    } catch {
      return false; // unknown framework: the pipeline's routing says so
    }
  }

  /** Finds the jobs running in the workers that answer now and in every framework that becomes ready later. */
  start(): void {
    this.#unsubscribe = this.#transport.onReady((framework) => this.#transport.trains(framework) && this.#ensurePolling(framework));
    for (const framework of this.#transport.readyFrameworks()) this.#ensurePolling(framework);
  }

  /** Stops polling. Jobs keep running in their workers; a gateway started later finds them again. */
  close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    for (const poller of this.#pollers.values()) clearTimeout(poller.timer);
    this.#pollers.clear();
    this.#listeners.clear();
    return Promise.resolve();
  }

  list(): JobRecord[] {
    return [...this.#jobs.values()].map(copy);
  }

  get(id: string): JobRecord {
    const job = this.#jobs.get(id);
    if (!job) throw new GatewayError('bad_request', `no job '${id}'`, { path: '/id' });
    return copy(job);
  }

  /** Every job event (state changes, progress, checkpoints); returns the unsubscribe. */
  onEvent(listener: (event: JobEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Validates the options, queues a job for `framework` and starts it when its device is free. Resolves with the
   * job's record once it is queued or its worker has answered the start (running, or failed with the reason).
   */
  async submit(framework: string | undefined, data: unknown): Promise<JobRecord> {
    if (this.#closed) throw new GatewayError('unavailable', 'the gateway is shutting down');
    const name = this.#transport.resolve(framework);
    if (!this.#transport.trains(name)) throw new GatewayError('bad_request', `framework '${name}' does not run training jobs (frameworks.${name}.training is not set)`, { path: '/framework' });
    const options = parseTrainOptions(data);
    const job: JobRecord = { id: randomUUID(), framework: name, state: 'queued', options, device: deviceKey(options), progress: {}, checkpoints: [], created_at: Date.now() / 1000 };
    this.#jobs.set(job.id, job);
    this.#log.info({ event: 'job.queued', jobId: job.id, framework: name, device: job.device });
    this.#changed(job);
    await this.#dispatch();
    return copy(job);
  }

  /** Cancels a job: a queued one at once, a running one through its worker (SIGTERM, SIGKILL after the grace). */
  async cancel(id: string): Promise<JobRecord> {
    const job = this.#jobs.get(id);
    if (!job) throw new GatewayError('bad_request', `no job '${id}'`, { path: '/id' });
    if (job.state === 'queued') {
      this.#finish(job, 'cancelled', 'cancelled while queued');
    } else if (job.state === 'running' && !job.cancel_requested) {
      job.cancel_requested = true;
      await this.#transport.request(job.framework, 'cancel_job', { job_id: id, grace_s: this.#cancelGraceS }, this.#timeoutMs);
      this.#log.info({ event: 'job.cancel_requested', jobId: id });
      this.#changed(job);
      this.#ensurePolling(job.framework);
    }
    return copy(job);
  }

  // ---- queue ----

  async #dispatch(): Promise<void> {
    const starts: Promise<void>[] = [];
    const busy = new Map<string, number>();
    for (const j of this.#jobs.values()) if (j.state === 'running') busy.set(j.device, (busy.get(j.device) ?? 0) + 1);
    for (const job of this.#jobs.values()) {
      if (job.state !== 'queued') continue;
      const used = busy.get(job.device) ?? 0;
      if (used >= this.#maxPerDevice) continue;
      busy.set(job.device, used + 1);
      job.state = 'running';
      job.started_at = Date.now() / 1000;
      starts.push(this.#start(job));
    }
    await Promise.all(starts);
  }

  async #start(job: JobRecord): Promise<void> {
    this.#starting++;
    try {
      const reply = (await this.#transport.request(job.framework, 'train', { job_id: job.id, ...job.options }, this.#timeoutMs)) as WorkerJob;
      if (reply && typeof reply.output_dir === 'string') job.output_dir = reply.output_dir;
      this.#log.info({ event: 'job.started', jobId: job.id, framework: job.framework, outputDir: job.output_dir });
      this.#changed(job);
      this.#ensurePolling(job.framework);
    } catch (err) {
      const error = toGatewayError(err);
      this.#finish(job, 'failed', `the worker of '${job.framework}' did not start the job: ${error.message}`);
    } finally {
      this.#starting--;
    }
  }

  // ---- polling ----

  #ensurePolling(framework: string): void {
    if (this.#closed) return;
    let poller = this.#pollers.get(framework);
    if (!poller) this.#pollers.set(framework, (poller = { cursor: 0, failures: 0, busy: false }));
    if (poller.busy || poller.timer) return;
    poller.timer = setTimeout(() => void this.#poll(framework), 0);
    poller.timer.unref();
  }

  async #poll(framework: string): Promise<void> {
    const poller = this.#pollers.get(framework);
    if (!poller || this.#closed) return;
    poller.timer = undefined;
    poller.busy = true;
    try {
      const reply = (await this.#transport.request(framework, 'jobs', { since: poller.cursor }, Math.max(2_000, this.#pollIntervalMs * 4))) as WorkerQuery;
      poller.failures = 0;
      this.#apply(framework, poller, reply);
    } catch (err) {
      if (this.#closed) return;
      poller.failures++;
      const error = toGatewayError(err);
      this.#log.warn({ event: 'job.poll_failed', framework, failures: poller.failures, code: error.code, message: error.message });
      if (poller.failures >= DEAD_AFTER_FAILED_POLLS) {
        for (const job of this.#running(framework)) {
          this.#finish(job, 'failed', `the worker of framework '${framework}' stopped answering while the job ran (${poller.failures} status polls failed; last: ${error.code}: ${error.message})`);
        }
      }
    } finally {
      poller.busy = false;
    }
    if (this.#closed) return;
    // Keep polling while this framework has running jobs (or a start is on its way).
    if (this.#running(framework).length > 0 || this.#starting > 0) {
      poller.timer = setTimeout(() => void this.#poll(framework), this.#pollIntervalMs);
      poller.timer.unref();
    } else {
      this.#pollers.delete(framework);
    }
  }

  #apply(framework: string, poller: Poller, reply: WorkerQuery): void {
    if (!reply || !Array.isArray(reply.jobs) || !Array.isArray(reply.events)) throw new GatewayError('worker_error', `the worker of '${framework}' answered 'jobs' without jobs/events`);
    // A worker process that changed (restarted) numbers its events from 1 again.
    if ((poller.pid !== undefined && reply.pid !== poller.pid) || reply.next < poller.cursor) poller.cursor = 0;
    poller.pid = reply.pid;
    const known = new Set<string>();
    for (const w of reply.jobs) {
      known.add(w.job_id);
      let job = this.#jobs.get(w.job_id);
      if (!job) {
        if (w.state !== 'running') continue; // finished before this gateway knew it: nothing to track
        const options = w.options ?? {};
        job = {
          id: w.job_id, framework, state: 'running', options, device: deviceKey({ policy_device: typeof options.policy_device === 'string' ? options.policy_device : 'cuda' }),
          progress: {}, checkpoints: [], adopted: true, created_at: w.started_at ?? Date.now() / 1000, started_at: w.started_at,
        };
        this.#jobs.set(job.id, job);
        this.#log.info({ event: 'job.adopted', jobId: job.id, framework });
      }
      if (job.framework !== framework || TERMINAL.has(job.state)) continue;
      if (w.progress) job.progress = { ...job.progress, ...w.progress };
      if (Array.isArray(w.checkpoints)) job.checkpoints = [...w.checkpoints];
      if (typeof w.output_dir === 'string') job.output_dir = w.output_dir;
      this.#metrics?.recordTrainingProgress(framework, job.progress.step, job.progress.loss);
    }
    for (const e of reply.events) {
      if (e.seq <= poller.cursor) continue;
      const job = this.#jobs.get(e.job_id);
      if (!job || job.framework !== framework) continue;
      const { seq: _seq, job_id: _id, type, time: _time, ...fields } = e;
      if (type === 'progress') this.#emit({ type: 'progress', job_id: job.id, ...(fields as JobProgress) });
      else if (type === 'checkpoint') this.#emit({ type: 'checkpoint', job_id: job.id, step: Number(fields.step), path: String(fields.path) });
    }
    poller.cursor = reply.next;
    // States last, so a job's final progress events go out before its end.
    for (const w of reply.jobs) {
      const job = this.#jobs.get(w.job_id);
      if (!job || job.framework !== framework || TERMINAL.has(job.state)) continue;
      if (w.state === 'succeeded' || w.state === 'failed' || w.state === 'cancelled') this.#finish(job, w.state, w.error ?? undefined, w.ended_at ?? undefined);
      else this.#changed(job);
    }
    for (const job of this.#running(framework)) {
      if (!known.has(job.id)) this.#finish(job, 'failed', `the worker of framework '${framework}' no longer knows the job: it restarted (pid ${reply.pid ?? '?'}) and the training process died with it`);
    }
  }

  // ---- records ----

  #running(framework: string): JobRecord[] {
    return [...this.#jobs.values()].filter((j) => j.framework === framework && j.state === 'running');
  }

  #finish(job: JobRecord, state: JobState, error?: string, endedAt?: number): void {
    job.state = state;
    if (error !== undefined) job.error = error;
    job.ended_at = endedAt ?? Date.now() / 1000;
    this.#log.info({ event: 'job.finished', jobId: job.id, framework: job.framework, state, error });
    this.#metrics?.jobFinished(job.framework, state);
    this.#changed(job);
    void this.#dispatch(); // a device is free: start what waits for it
  }

  #changed(job: JobRecord): void {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const j of this.#jobs.values()) counts[j.state]++;
    this.#metrics?.recordJobStates(counts);
    this.#emit({ type: 'state', job: copy(job) });
  }

  #emit(event: JobEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error({ event: 'job.listener_failed', err });
      }
    }
  }
}

/** Whether a state is final. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL.has(state);
}

function copy(job: JobRecord): JobRecord {
  return { ...job, progress: { ...job.progress }, checkpoints: [...job.checkpoints] };
}
