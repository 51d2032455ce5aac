// Owns the gateway's training jobs: their records (queued → running → succeeded | failed | cancelled), the
// per-device queue (jobs.maxPerDevice), the progress each running job's worker reports, and how many finished
// jobs are kept (jobs.maxFinished, the most recent).
//
// The worker is the source of truth for a running job (its JobRunner, docker/worker-sdk/physical_ai_worker/jobs.py):
// the gateway sends `train` to start one (the pool picks a worker; the job records the endpoint that answered),
// then `cancel_job` and `jobs {since, wait_ms}` to that endpoint only, never to another replica. `jobs` is a long
// poll: the worker answers as soon as it has events after the gateway's cursor (or after wait_ms), with every job it
// knows and those events, so none is lost and progress arrives when it is reported. A worker without the long poll
// answers at once and is asked again every pollIntervalMs. The same query is how a restarted gateway finds the jobs
// in a worker, running and recently finished (adopt): for every worker that answers at start and whenever one
// becomes ready.
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
  /** The worker endpoint that runs the job (its polls and cancel go there only). */
  endpoint?: string;
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

/** A worker of a training framework. */
export interface JobWorker {
  framework: string;
  endpoint: string;
}

export interface JobRequestOptions {
  timeoutMs: number;
  /** Only this worker (a job's polls and cancel); without it the framework's pool picks one (train). */
  endpoint?: string;
  signal?: AbortSignal;
}

/** How the manager reaches a framework's workers (router and pools, in build-gateway.ts). */
export interface JobTransport {
  /** Sends one request to a worker of the framework; resolves with its result and the endpoint that answered. */
  request(framework: string, type: 'train' | 'jobs' | 'cancel_job', data: Record<string, unknown>, options: JobRequestOptions): Promise<{ result: unknown; endpoint: string }>;
  /** Workers of training frameworks that answer now (adoption asks only those: it must not start containers). */
  readyWorkers(): JobWorker[];
  /** Whether the framework's worker runs jobs (config `frameworks.<name>.training`). */
  trains(framework: string): boolean;
  /** Calls `listener` when a worker of a framework becomes ready; returns the unsubscribe. */
  onReady(listener: (worker: JobWorker) => void): () => void;
  /** Whether `name` is a configured framework; the resolved name (default framework when undefined). */
  resolve(name: string | undefined): string;
  /**
   * Marks the framework busy until the returned release (idempotent): taken while a job is queued or runs there, so
   * an idle stop never ends a training run (its status polls and cancel bypass the router). Absent: nothing to hold.
   */
  hold?(framework: string): () => void;
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
  /** Longest wait of one long poll, ms (0: plain polling every pollIntervalMs). */
  waitMs?: number;
  /** Finished jobs kept (the most recent). */
  maxFinished?: number;
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
  /** The worker waits for news when asked with wait_ms (the SDK's JobRunner does). */
  long_poll?: boolean;
}

interface Poller {
  framework: string;
  endpoint: string;
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
  readonly #waitMs: number;
  readonly #maxFinished: number;
  readonly #cancelGraceS: number;
  readonly #timeoutMs: number;
  readonly #metrics: JobMetricsSink | undefined;
  readonly #log: Logger;
  readonly #jobs = new Map<string, JobRecord>();
  readonly #listeners = new Set<(event: JobEvent) => void>();
  /** By worker endpoint (`framework endpoint`). */
  readonly #pollers = new Map<string, Poller>();
  /** Aborts the polls in flight on close (a long poll would otherwise hold the close for up to waitMs). */
  readonly #closeController = new AbortController();
  /** The transport's hold on each queued or running job's framework, by job id; released when the job ends. */
  readonly #holds = new Map<string, () => void>();
  #starting = 0;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor({ transport, maxPerDevice = 1, pollIntervalMs = 500, waitMs = 10_000, maxFinished = 100, cancelGraceS = 10, requestTimeoutMs = 30_000, metrics, log = silentLogger }: JobManagerOptions) {
    this.#transport = transport;
    this.#maxPerDevice = maxPerDevice;
    this.#pollIntervalMs = pollIntervalMs;
    this.#waitMs = waitMs;
    this.#maxFinished = maxFinished;
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

  /** Finds the jobs in the workers that answer now, and in every worker that becomes ready later. */
  start(): void {
    this.#unsubscribe = this.#transport.onReady((w) => this.#transport.trains(w.framework) && this.#ensurePolling(w.framework, w.endpoint));
    for (const w of this.#transport.readyWorkers()) this.#ensurePolling(w.framework, w.endpoint);
  }

  /** Stops polling (a long poll in flight is abandoned). Jobs keep running in their workers; a gateway started later finds them again. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closeController.abort(new GatewayError('cancelled', 'the job manager is closing'));
    this.#unsubscribe?.();
    for (const release of this.#holds.values()) release();
    this.#holds.clear();
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
    this.#hold(job);
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
      try {
        await this.#transport.request(job.framework, 'cancel_job', { job_id: id, grace_s: this.#cancelGraceS }, { timeoutMs: this.#timeoutMs, endpoint: job.endpoint, signal: this.#closeController.signal });
      } catch (err) {
        job.cancel_requested = false; // not delivered: a second cancel may try again
        throw err;
      }
      this.#log.info({ event: 'job.cancel_requested', jobId: id, endpoint: job.endpoint });
      this.#changed(job);
      if (job.endpoint) this.#ensurePolling(job.framework, job.endpoint);
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
      const { result, endpoint } = await this.#transport.request(job.framework, 'train', { job_id: job.id, ...job.options }, { timeoutMs: this.#timeoutMs, signal: this.#closeController.signal });
      const reply = result as WorkerJob;
      if (reply && typeof reply.output_dir === 'string') job.output_dir = reply.output_dir;
      job.endpoint = endpoint;
      this.#log.info({ event: 'job.started', jobId: job.id, framework: job.framework, endpoint, outputDir: job.output_dir });
      this.#changed(job);
      this.#ensurePolling(job.framework, endpoint);
    } catch (err) {
      const error = toGatewayError(err);
      this.#finish(job, 'failed', `the worker of '${job.framework}' did not start the job: ${error.message}`);
    } finally {
      this.#starting--;
    }
  }

  // ---- polling ----

  #ensurePolling(framework: string, endpoint: string): void {
    if (this.#closed) return;
    const key = `${framework} ${endpoint}`;
    let poller = this.#pollers.get(key);
    if (!poller) this.#pollers.set(key, (poller = { framework, endpoint, cursor: 0, failures: 0, busy: false }));
    if (poller.busy || poller.timer) return;
    this.#schedule(key, poller, 0);
  }

  #schedule(key: string, poller: Poller, delayMs: number): void {
    poller.timer = setTimeout(() => void this.#poll(key), delayMs);
    poller.timer.unref();
  }

  async #poll(key: string): Promise<void> {
    const poller = this.#pollers.get(key);
    if (!poller || this.#closed) return;
    const { framework, endpoint } = poller;
    poller.timer = undefined;
    poller.busy = true;
    let delayMs = this.#pollIntervalMs;
    try {
      // A long poll only while something runs there: the first query of a worker (adoption) answers at once.
      const waitMs = this.#running(framework, endpoint).length > 0 ? this.#waitMs : 0;
      const startedAt = performance.now();
      const { result } = await this.#transport.request(framework, 'jobs', { since: poller.cursor, ...(waitMs > 0 ? { wait_ms: waitMs } : {}) }, {
        endpoint,
        timeoutMs: waitMs + Math.max(2_000, this.#pollIntervalMs * 4),
        signal: this.#closeController.signal,
      });
      const reply = result as WorkerQuery;
      poller.failures = 0;
      const news = this.#apply(framework, endpoint, poller, reply);
      // Ask again at once after a long poll; a worker that answered empty early (no long poll, a short deadline) waits.
      if (waitMs > 0 && reply.long_poll === true && (news || performance.now() - startedAt >= waitMs / 2)) delayMs = 0;
    } catch (err) {
      if (this.#closed) return;
      poller.failures++;
      const error = toGatewayError(err);
      this.#log.warn({ event: 'job.poll_failed', framework, endpoint, failures: poller.failures, code: error.code, message: error.message });
      if (poller.failures >= DEAD_AFTER_FAILED_POLLS) {
        for (const job of this.#running(framework, endpoint)) {
          this.#finish(job, 'failed', `the worker of framework '${framework}' stopped answering while the job ran (${poller.failures} status polls of ${endpoint} failed; last: ${error.code}: ${error.message})`);
        }
      }
    } finally {
      poller.busy = false;
    }
    if (this.#closed) return;
    // Keep polling while this worker has running jobs (or a start is on its way).
    if (this.#running(framework, endpoint).length > 0 || this.#starting > 0) this.#schedule(key, poller, delayMs);
    else this.#pollers.delete(key);
  }

  /** Applies one answer of a worker; true when it held events after the cursor. */
  #apply(framework: string, endpoint: string, poller: Poller, reply: WorkerQuery): boolean {
    if (!reply || !Array.isArray(reply.jobs) || !Array.isArray(reply.events)) throw new GatewayError('worker_error', `the worker of '${framework}' at ${endpoint} answered 'jobs' without jobs/events`);
    // A worker process that changed (restarted) numbers its events from 1 again.
    if ((poller.pid !== undefined && reply.pid !== poller.pid) || reply.next < poller.cursor) poller.cursor = 0;
    poller.pid = reply.pid;
    const known = new Set<string>();
    for (const w of reply.jobs) {
      known.add(w.job_id);
      let job = this.#jobs.get(w.job_id);
      if (!job) {
        job = this.#adopt(framework, endpoint, w);
        if (!job) continue;
      }
      if (job.framework !== framework || TERMINAL.has(job.state)) continue;
      job.endpoint ??= endpoint;
      if (w.progress) job.progress = { ...job.progress, ...w.progress };
      if (Array.isArray(w.checkpoints)) job.checkpoints = [...w.checkpoints];
      if (typeof w.output_dir === 'string') job.output_dir = w.output_dir;
      this.#metrics?.recordTrainingProgress(framework, job.progress.step, job.progress.loss);
    }
    /** Final states announced by events, for jobs the worker already forgot (its own bound on finished jobs). */
    const ended = new Map<string, { state: JobState; error?: string; time?: number }>();
    let news = false;
    for (const e of reply.events) {
      if (e.seq <= poller.cursor) continue;
      news = true;
      const job = this.#jobs.get(e.job_id);
      // A finished job's events are history (a restarted gateway's cursor starts at 0): never replayed as news.
      if (!job || job.framework !== framework || TERMINAL.has(job.state)) continue;
      const { seq: _seq, job_id: _id, type, time, ...fields } = e;
      if (type === 'progress') this.#emit({ type: 'progress', job_id: job.id, ...(fields as JobProgress) });
      else if (type === 'checkpoint') this.#emit({ type: 'checkpoint', job_id: job.id, step: Number(fields.step), path: String(fields.path) });
      else if (type === 'state' && TERMINAL.has(fields.state as JobState)) {
        ended.set(job.id, { state: fields.state as JobState, ...(typeof fields.error === 'string' ? { error: fields.error } : {}), ...(typeof time === 'number' ? { time } : {}) });
      }
    }
    poller.cursor = reply.next;
    // States last, so a job's final progress events go out before its end.
    for (const w of reply.jobs) {
      const job = this.#jobs.get(w.job_id);
      if (!job || job.framework !== framework || TERMINAL.has(job.state)) continue;
      if (w.state === 'succeeded' || w.state === 'failed' || w.state === 'cancelled') this.#finish(job, w.state, w.error ?? undefined, w.ended_at ?? undefined);
      else this.#changed(job);
    }
    for (const job of this.#running(framework, endpoint)) {
      if (known.has(job.id)) continue;
      const end = ended.get(job.id);
      if (end) this.#finish(job, end.state, end.error, end.time);
      else this.#finish(job, 'failed', `the worker of framework '${framework}' no longer knows the job: it restarted (pid ${reply.pid ?? '?'}) and the training process died with it`);
    }
    this.#forgetOld();
    return news;
  }

  /**
   * A job this gateway did not start (it restarted): a running one is followed from now on; a finished one is listed
   * with its outcome when it is among the maxFinished most recent.
   */
  #adopt(framework: string, endpoint: string, w: WorkerJob): JobRecord | undefined {
    const state = w.state as JobState;
    if (!JOB_STATES.includes(state) || state === 'queued') return undefined;
    const finished = TERMINAL.has(state);
    if (finished && !this.#wouldKeep(w.ended_at ?? 0)) return undefined;
    const options = w.options ?? {};
    const job: JobRecord = {
      id: w.job_id, framework, state, options, device: deviceKey({ policy_device: typeof options.policy_device === 'string' ? options.policy_device : 'cuda' }),
      progress: { ...w.progress }, checkpoints: Array.isArray(w.checkpoints) ? [...w.checkpoints] : [], endpoint, adopted: true,
      created_at: w.started_at ?? Date.now() / 1000, ...(w.started_at !== undefined ? { started_at: w.started_at } : {}),
      ...(typeof w.output_dir === 'string' ? { output_dir: w.output_dir } : {}),
      ...(finished && typeof w.error === 'string' ? { error: w.error } : {}),
      ...(finished && typeof w.ended_at === 'number' ? { ended_at: w.ended_at } : {}),
    };
    this.#jobs.set(job.id, job);
    if (!finished) this.#hold(job);
    this.#log.info({ event: 'job.adopted', jobId: job.id, framework, endpoint, state });
    if (finished) this.#changed(job);
    return job;
  }

  /** Whether a finished job that ended at `endedAt` is among the maxFinished most recent. */
  #wouldKeep(endedAt: number): boolean {
    if (this.#maxFinished === 0) return false;
    const finished = this.#finishedOldestFirst();
    return finished.length < this.#maxFinished || endedAt > (finished[0]!.ended_at ?? 0);
  }

  #finishedOldestFirst(): JobRecord[] {
    return [...this.#jobs.values()].filter((j) => TERMINAL.has(j.state)).sort((a, b) => (a.ended_at ?? 0) - (b.ended_at ?? 0));
  }

  /** Forgets the oldest finished jobs beyond maxFinished. */
  #forgetOld(): void {
    const finished = this.#finishedOldestFirst();
    for (const job of finished.slice(0, Math.max(0, finished.length - this.#maxFinished))) {
      this.#jobs.delete(job.id);
      this.#log.info({ event: 'job.forgotten', jobId: job.id, state: job.state });
    }
  }

  // ---- records ----

  #running(framework: string, endpoint: string): JobRecord[] {
    return [...this.#jobs.values()].filter((j) => j.framework === framework && j.state === 'running' && j.endpoint === endpoint);
  }

  /** Holds the job's framework (no idle stop) until the job ends. */
  #hold(job: JobRecord): void {
    const release = this.#transport.hold?.(job.framework);
    if (release) this.#holds.set(job.id, release);
  }

  #finish(job: JobRecord, state: JobState, error?: string, endedAt?: number): void {
    this.#holds.get(job.id)?.();
    this.#holds.delete(job.id);
    job.state = state;
    if (error !== undefined) job.error = error;
    job.ended_at = endedAt ?? Date.now() / 1000;
    this.#log.info({ event: 'job.finished', jobId: job.id, framework: job.framework, state, error });
    this.#metrics?.jobFinished(job.framework, state);
    this.#changed(job);
    this.#forgetOld();
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
