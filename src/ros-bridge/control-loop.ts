// The bridge's fixed-rate loop: at each tick it checks the inputs are fresh, asks for the next action chunk before
// the current one runs out, publishes chunks (one JointTrajectory per group, or one Float64MultiArray per tick),
// holds the robot when anything goes wrong and says why, and serves start / stop / emergency_stop.
import type { Logger } from '../lib/log.js';
import { availableParallelism } from 'node:os';
import { abortError } from '../lib/abort.js';
import { GatewayError, toGatewayError } from '../lib/errors.js';
import { Registry } from 'prom-client';
import type { BridgeConfig, OutputSpec } from './config.js';
import { ChunkPlayer, groupIndices, holdTrajectory, multiArrayForGroup, trajectoryForGroup } from './chunk-player.js';
import type { ImageDecoder } from './image.js';
import { ImageWorkerPool } from './image-pool.js';
import { createBridgeMetrics, type BridgeMetrics } from './metrics.js';
import { ObservationBuilder, StaleInputError, type BuiltObservation, type CameraSource, type CapturedInputs } from './observation-builder.js';
import type { PolicyChunk, PolicyClient } from './policy-client.js';
import type {
  Float64MultiArrayMsg,
  JointTrajectoryMsg,
  RosAdapter,
  RosPublisher,
  RosService,
  StringMsg,
  TriggerResponse,
} from './ros-adapter.js';
import { fromRosTime } from './ros-adapter.js';
import { TickSchedule } from './tick-schedule.js';

export type BridgeState = 'idle' | 'running' | 'holding' | 'estopped';
export type HoldReason =
  | 'waiting_for_inputs'
  | 'starved'
  | 'watchdog'
  | 'gateway_error'
  | 'stale_input'
  | 'bad_input'
  | 'bad_chunk'
  | 'stop'
  | 'emergency_stop'
  | 'shutdown';

/** What the status topic carries (as JSON in a std_msgs/String). */
export interface BridgeStatus {
  state: BridgeState;
  /** Why the robot is held (holding, idle after stop, estopped). */
  reason?: HoldReason;
  detail?: string;
  robot: string;
  framework: string;
  instruction: string;
  rateHz: number;
  ticks: number;
  chunks: number;
  holds: number;
  starvation: number;
  staleDrops: number;
  remainingSteps: number;
  lastRoundTripMs?: number;
  /** While held with a published target: how often it was published again since (at holdRepeatHz). */
  holdRepeats?: number;
  /** false while the transport knows the gateway is unreachable (ZMQ); absent when it cannot tell (HTTP). */
  gatewayConnected?: boolean;
  /** The topic and message type each camera is read from, once its first frame has arrived. */
  cameras: Record<string, CameraSource>;
  /** ROS time of this status, seconds. */
  stamp: number;
}

export interface JitterStats {
  /** |period - 1/rate| between consecutive ticks. */
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanPeriodMs: number;
  /** How long after its deadline (start + n / rate) each tick ran. */
  lateness: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Ticks that ran more than one period after their deadline, plus ticks skipped because the loop fell behind. */
  lateTicks: number;
}

export interface ControlLoopOptions {
  config: BridgeConfig;
  adapter: RosAdapter;
  policy: PolicyClient;
  log: Logger;
  /** Instruments; defaults to new ones on a private Registry. */
  metrics?: BridgeMetrics;
  /** JPEG decoder used on the loop's thread when imageWorkers is 0 (the workers load jpeg-js themselves). */
  jpegDecoder?: ImageDecoder;
  /**
   * Worker threads that decode, convert and resize camera frames, so none of that runs on the loop's thread;
   * 0 = on the loop's thread. Default: one per camera, at most the cores but one (at least 1).
   */
  imageWorkers?: number;
  /** Monotonic clock in ms; defaults to performance.now(). */
  nowMs?: () => number;
  /** Publish the status at least this often while nothing changes; default 1000 ms. */
  statusIntervalMs?: number;
}

interface Output {
  spec: OutputSpec;
  idx: number[];
  trajectory?: RosPublisher<JointTrajectoryMsg>;
  multiArray?: RosPublisher<Float64MultiArrayMsg>;
}

interface InFlight {
  controller: AbortController;
  generation: number;
  obsTickMs: number;
  /** When the inference was sent (after the camera frames were converted). */
  startedMs: number;
}

const MAX_JITTER_SAMPLES = 1 << 20;
/** Never notified: Atomics.wait on it is a plain sleep with sub-millisecond resolution. */
const PRECISE_SLEEP = new Int32Array(new SharedArrayBuffer(4));
/** After a failed inference the next try waits one period, doubling per failure in a row up to this. */
const RETRY_BACKOFF_MAX_MS = 500;

export class ControlLoop {
  readonly #config: BridgeConfig;
  readonly #adapter: RosAdapter;
  readonly #policy: PolicyClient;
  readonly #log: Logger;
  readonly #metrics: BridgeMetrics;
  readonly #nowMs: () => number;
  readonly #periodMs: number;
  readonly #statusIntervalMs: number;
  readonly #builder: ObservationBuilder;
  readonly #images: ImageWorkerPool | undefined;
  /** No request before the image workers answer (their start-up must not delay the first observation). */
  #imagesReady = false;
  readonly #preciseWaitMs: number;
  readonly #player: ChunkPlayer;
  readonly #outputs: Output[];
  #status?: RosPublisher<StringMsg>;
  #services: RosService[] = [];
  #unwatch: (() => void)[] = [];

  #mode: 'idle' | 'running' | 'estopped' = 'idle';
  #hold: { reason: HoldReason; detail: string } | undefined;
  #generation = 0;
  #inflight: InFlight | undefined;
  #pendingError: GatewayError | undefined;
  #retryAtMs = -Infinity;
  /** Failed inferences in a row (the retry backoff's exponent); 0 after a chunk or a reconnect. */
  #failures = 0;
  /** The published hold target and when it was last (re)published, while the robot is held. */
  #holdTarget: { pos: Float64Array; lastMs: number; repeats: number } | undefined;
  #lastTickMs = 0;
  #lastChunkMs = 0;
  #hadPlan = false;
  /** Something was commanded since the last hold (or since start): a hold has something to stop. */
  #commanded = false;

  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #schedule: TickSchedule | undefined;
  #lastActual: { ms: number; index: number } | undefined;
  readonly #jitterMs: number[] = [];
  readonly #latenessMs: number[] = [];
  #lateTicks = 0;
  #periodSumMs = 0;
  #lastStatusMs = -Infinity;
  #lastStatusKey = '';
  #started = false;
  #closing: Promise<void> | undefined;

  #counts = { ticks: 0, chunks: 0, holds: 0, starvation: 0, staleDrops: 0 };
  #lastRoundTripMs: number | undefined;

  constructor({
    config,
    adapter,
    policy,
    log,
    metrics,
    jpegDecoder,
    imageWorkers = Math.min(config.cameras.length, Math.max(1, availableParallelism() - 1)),
    nowMs = () => performance.now(),
    statusIntervalMs = 1_000,
  }: ControlLoopOptions) {
    this.#config = config;
    this.#adapter = adapter;
    this.#policy = policy;
    this.#log = log;
    this.#metrics = metrics ?? createBridgeMetrics(new Registry());
    this.#nowMs = nowMs;
    this.#periodMs = 1000 / config.rateHz;
    this.#statusIntervalMs = statusIntervalMs;
    this.#preciseWaitMs = config.preciseWaitMs;
    this.#images = imageWorkers > 0 ? new ImageWorkerPool({ size: imageWorkers }) : undefined;
    this.#builder = new ObservationBuilder({
      config,
      adapter,
      nowMs,
      ...(this.#images ? { images: this.#images } : {}),
      ...(jpegDecoder ? { jpegDecoder } : {}),
      onInstruction: (instruction) => {
        this.#log.info({ event: 'bridge.instruction', instruction });
        this.#publishStatus(true);
      },
      onCameraSource: (camera, source) => {
        this.#log.info({ event: 'bridge.camera_source', camera, topic: source.topic, type: source.type === 'image' ? 'sensor_msgs/msg/Image' : 'sensor_msgs/msg/CompressedImage' });
        this.#publishStatus(true);
      },
    });
    this.#player = new ChunkPlayer({ joints: config.joints, blending: config.blending, limits: config.limits });
    this.#outputs = config.outputs.map((spec) => ({ spec, idx: groupIndices(config.joints, spec) }));
  }

  /** Creates publishers, services and subscriptions and starts ticking (running at once if startOnLaunch). */
  start(): void {
    if (this.#started) return;
    if (this.#closing) throw new GatewayError('cancelled', 'control loop is closed');
    this.#started = true;
    const cfg = this.#config;
    for (const out of this.#outputs) {
      if (out.spec.type === 'joint_trajectory') out.trajectory = this.#adapter.createPublisher(out.spec.topic, 'trajectory_msgs/msg/JointTrajectory');
      else out.multiArray = this.#adapter.createPublisher(out.spec.topic, 'std_msgs/msg/Float64MultiArray');
    }
    this.#status = this.#adapter.createPublisher(cfg.statusTopic, 'std_msgs/msg/String');
    const prefix = cfg.servicePrefix.replace(/\/+$/, '');
    this.#services = [
      this.#adapter.createTriggerService(`${prefix}/start`, () => this.run()),
      this.#adapter.createTriggerService(`${prefix}/stop`, () => this.stop()),
      this.#adapter.createTriggerService(`${prefix}/emergency_stop`, () => this.emergencyStop()),
    ];
    if (this.#images) {
      this.#images.start();
      this.#images.ready().then(
        () => void (this.#imagesReady = true),
        (err: unknown) => {
          // Requests then fail with this reason, and the robot holds with it (bad_input).
          if (!this.#closing) this.#log.error({ event: 'bridge.image_workers_failed', err });
          this.#imagesReady = true;
        },
      );
    } else {
      this.#imagesReady = true;
    }
    this.#builder.start();
    const down = this.#policy.onDown?.((reason) => this.#onPolicyDown(reason));
    const up = this.#policy.onUp?.(() => this.#onPolicyUp());
    this.#unwatch = [down, up].filter((f) => f !== undefined);
    this.#policy.connect?.();
    this.#schedule = new TickSchedule({ periodMs: this.#periodMs, startMs: this.#nowMs(), preciseMs: this.#preciseWaitMs });
    this.#arm();
    this.#log.info({ event: 'bridge.started', robot: cfg.robot, rateHz: cfg.rateHz, framework: cfg.framework, gateway: cfg.gateway });
    if (cfg.startOnLaunch) this.run();
    else this.#publishStatus(true);
  }

  // ---- commands (also the Trigger services) ----

  /** Start (or resume after stop / emergency stop): ask for chunks and execute them. */
  run(): TriggerResponse {
    if (this.#closing) return { success: false, message: 'bridge is shutting down' };
    if (this.#mode === 'running') return { success: true, message: 'already running' };
    const from = this.#mode;
    this.#mode = 'running';
    this.#hold = undefined;
    this.#generation++;
    this.#pendingError = undefined;
    this.#retryAtMs = -Infinity;
    this.#failures = 0;
    this.#holdTarget = undefined;
    this.#hadPlan = false;
    this.#commanded = false;
    this.#lastChunkMs = this.#nowMs();
    this.#player.hold(this.#lastChunkMs, this.#builder.lastMeasured());
    this.#log.info({ event: 'bridge.run', from });
    this.#publishStatus(true);
    return { success: true, message: `running (was ${from})` };
  }

  /** Stop asking for chunks and hold the robot where it is. Refused while an emergency stop is latched. */
  stop(): TriggerResponse {
    if (this.#mode === 'estopped') return { success: false, message: 'emergency stop is latched; call start to resume' };
    this.#mode = 'idle';
    this.#cancel();
    this.#enterHold('stop', 'stopped by request', this.#nowMs(), { force: true });
    // Stopped is not an outage: hold once and leave the topic to whoever drives the robot next.
    this.#holdTarget = undefined;
    return { success: true, message: 'stopped; holding' };
  }

  /** Hold now, drop any chunk in flight, and refuse to move until start is called. */
  emergencyStop(): TriggerResponse {
    this.#mode = 'estopped';
    this.#cancel();
    this.#enterHold('emergency_stop', 'emergency stop', this.#nowMs(), { force: true });
    this.#log.warn({ event: 'bridge.emergency_stop' });
    return { success: true, message: 'emergency stop: holding until start' };
  }

  /** The instruction the next observation carries. */
  setInstruction(instruction: string): void {
    this.#builder.setInstruction(instruction);
  }

  get state(): BridgeState {
    if (this.#mode === 'running') return this.#hold ? 'holding' : 'running';
    return this.#mode;
  }

  status(): BridgeStatus {
    const now = this.#nowMs();
    const status: BridgeStatus = {
      state: this.state,
      robot: this.#config.robot,
      framework: this.#config.framework,
      instruction: this.#builder.instruction,
      rateHz: this.#config.rateHz,
      ...this.#counts,
      remainingSteps: this.#player.remaining(now),
      stamp: fromRosTime(this.#adapter.now()),
      cameras: this.#builder.cameraSources(),
    };
    if (this.#hold) {
      status.reason = this.#hold.reason;
      status.detail = this.#hold.detail;
    }
    if (this.#lastRoundTripMs !== undefined) status.lastRoundTripMs = Math.round(this.#lastRoundTripMs * 10) / 10;
    if (this.#holdTarget) status.holdRepeats = this.#holdTarget.repeats;
    const connected = this.#policy.connected;
    if (connected !== undefined) status.gatewayConnected = connected;
    return status;
  }

  /** Starts the timing statistics afresh (the histograms keep counting), e.g. to leave start-up out of a measurement. */
  resetJitterStats(): void {
    this.#jitterMs.length = 0;
    this.#latenessMs.length = 0;
    this.#periodSumMs = 0;
    this.#lateTicks = 0;
    this.#lastActual = undefined;
  }

  /** Tick timing since start (or resetJitterStats): lateness against each tick's deadline, and |period - 1/rate|. */
  jitterStats(): JitterStats {
    const jitter = quantiles(this.#jitterMs);
    const late = quantiles(this.#latenessMs);
    return {
      count: this.#jitterMs.length,
      ...jitter,
      meanPeriodMs: this.#jitterMs.length ? this.#periodSumMs / this.#jitterMs.length : NaN,
      lateness: late,
      lateTicks: this.#lateTicks,
    };
  }

  // ---- scheduling: tick n at start + n·period (tick-schedule.ts), so lateness never accumulates ----

  /** Waits for the next deadline: a timer that ends just before it (onWake sleeps the rest precisely), or at once. */
  #arm(): void {
    const wait = this.#schedule!.wait(this.#nowMs());
    // Not unref'd: a running loop keeps the process alive, and close() leaves nothing behind (tested).
    if (wait.kind === 'timer') this.#timer = setTimeout(this.#onWake, wait.ms);
    else this.#immediate = setImmediate(this.#onWake);
  }

  readonly #onWake = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#closing) return;
    const schedule = this.#schedule!;
    let actual = this.#nowMs();
    const wait = schedule.wait(actual);
    if (wait.kind === 'precise') {
      // The last stretch (under preciseWaitMs + 1 ms): a futex sleep with sub-millisecond resolution. It blocks
      // this thread, but costs no CPU and makes no garbage, unlike a spin.
      Atomics.wait(PRECISE_SLEEP, 0, 0, wait.ms);
      actual = this.#nowMs();
    }
    if (schedule.wait(actual).kind !== 'now') return this.#arm(); // an early timer
    const tickMs = schedule.deadlineMs;
    const latenessMs = actual - tickMs;
    this.#metrics.tickLateness.observe(latenessMs / 1000);
    if (latenessMs > this.#periodMs) this.#lateTicks++;
    if (this.#latenessMs.length < MAX_JITTER_SAMPLES) this.#latenessMs.push(latenessMs);
    if (this.#lastActual) {
      const ticks = schedule.index - this.#lastActual.index;
      const periodMs = (actual - this.#lastActual.ms) / ticks;
      const jitter = Math.abs(periodMs - this.#periodMs);
      if (this.#jitterMs.length < MAX_JITTER_SAMPLES) {
        this.#jitterMs.push(jitter);
        this.#periodSumMs += periodMs;
      }
      this.#metrics.periodJitter.observe(jitter / 1000);
    }
    this.#lastActual = { ms: actual, index: schedule.index };
    try {
      this.#tick(tickMs);
    } catch (err) {
      this.#log.error({ event: 'bridge.tick_failed', err });
    }
    const skipped = schedule.advance(this.#nowMs());
    if (skipped > 0) {
      this.#metrics.overruns.inc(skipped);
      this.#lateTicks += skipped;
    }
    this.#arm();
  };

  #tick(tickMs: number): void {
    this.#counts.ticks++;
    this.#lastTickMs = tickMs;
    const cfg = this.#config;
    const due = this.#player.advance(tickMs);
    this.#repeatHold(tickMs);
    if (this.#mode !== 'running') return this.#publishStatus(false);

    try {
      this.#builder.checkFresh();
    } catch (err) {
      if (!(err instanceof StaleInputError)) throw err;
      this.#cancel();
      if (err.neverSeen) {
        // Start-up (or a topic not discovered yet): nothing has gone stale, the bridge is waiting for its inputs.
        this.#enterHold('waiting_for_inputs', `waiting for the first message on ${this.#builder.unseenInputs().join(', ')}`, tickMs);
      } else {
        this.#counts.staleDrops++;
        this.#metrics.staleDrops.inc({ topic: err.topic });
        this.#enterHold('stale_input', err.message, tickMs);
      }
      return this.#publishStatus(false);
    }
    if (this.#pendingError) {
      const err = this.#pendingError;
      this.#pendingError = undefined;
      this.#enterHold('gateway_error', `${err.code}: ${err.message}`, tickMs);
    }
    const remaining = this.#player.remaining(tickMs);
    this.#metrics.remainingSteps.set(remaining);
    if (!this.#hold && this.#hadPlan && remaining === 0) {
      this.#counts.starvation++;
      this.#metrics.starvation.inc();
      this.#enterHold('starved', 'the action chunk ran out before the next one arrived', tickMs);
    }
    if (!this.#hold && tickMs - this.#lastChunkMs > cfg.watchdogTimeoutMs) {
      this.#enterHold('watchdog', `no fresh chunk for ${Math.round(tickMs - this.#lastChunkMs)} ms (limit ${cfg.watchdogTimeoutMs} ms)`, tickMs);
    }
    if (!this.#inflight && this.#imagesReady && tickMs >= this.#retryAtMs && remaining <= cfg.requestAheadSteps && this.#policy.connected !== false) {
      this.#request(tickMs, remaining);
    }
    if (!this.#hold && due) {
      for (const out of this.#outputs) out.multiArray?.publish(multiArrayForGroup(out.spec, out.idx, due.pos));
    }
    this.#publishStatus(false);
  }

  // ---- inference ----

  #request(tickMs: number, remaining: number): void {
    let captured: CapturedInputs;
    try {
      captured = this.#builder.capture(tickMs);
    } catch (err) {
      this.#onBadInput(err, tickMs);
      return;
    }
    const cfg = this.#config;
    // Deadline: the new chunk is useful until the current one runs out, plus one period (the robot is held at the
    // tick the plan runs out; a chunk in that period resumes it). With nothing left: the longest wait.
    const timeoutMs =
      remaining > 0 ? Math.min(cfg.inferenceTimeoutMs, this.#player.remainingMs(tickMs) + this.#periodMs) : cfg.inferenceTimeoutMs;
    const inflight: InFlight = { controller: new AbortController(), generation: this.#generation, obsTickMs: tickMs, startedMs: this.#nowMs() };
    const deadlineMs = inflight.startedMs + timeoutMs;
    this.#inflight = inflight;
    const send = async (): Promise<void> => {
      let built: BuiltObservation;
      try {
        // Camera frames are decoded and resized off this thread (the image workers) while the loop keeps ticking.
        built = await this.#builder.build(captured, { timeoutMs });
      } catch (err) {
        if (this.#current(inflight)) this.#onBadInput(err, this.#nowMs());
        return;
      }
      let chunk: PolicyChunk;
      try {
        const signal = inflight.controller.signal;
        if (signal.aborted) throw abortError(signal, 'inference');
        inflight.startedMs = this.#nowMs();
        chunk = await this.#policy.infer(built.observation, { signal, timeoutMs: Math.max(1, deadlineMs - inflight.startedMs) });
      } catch (err) {
        this.#onInferError(inflight, err);
        return;
      }
      this.#onChunk(inflight, chunk, built);
    };
    send()
      .catch((err: unknown) => this.#log.error({ event: 'bridge.chunk_failed', err }))
      .finally(() => {
        if (this.#inflight === inflight) this.#inflight = undefined;
      });
  }

  /** The inputs could not make an observation (missing, stale, or a frame that does not decode): hold, retry after a backoff. */
  #onBadInput(err: unknown, nowMs: number): void {
    const e = toGatewayError(err);
    this.#enterHold(err instanceof StaleInputError ? (err.neverSeen ? 'waiting_for_inputs' : 'stale_input') : 'bad_input', e.message, nowMs);
    this.#retryAtMs = nowMs + this.#backoffMs();
  }

  #current(inflight: InFlight): boolean {
    return !this.#closing && inflight.generation === this.#generation && this.#mode === 'running';
  }

  #onChunk(inflight: InFlight, chunk: PolicyChunk, built: BuiltObservation): void {
    const now = this.#nowMs();
    this.#lastRoundTripMs = now - inflight.startedMs;
    this.#metrics.inferenceDuration.observe({ outcome: 'success' }, this.#lastRoundTripMs / 1000);
    if (!this.#current(inflight)) {
      this.#log.debug({ event: 'bridge.chunk_dropped', reason: 'stopped or superseded' });
      return;
    }
    if (chunk.dof !== this.#player.dof) {
      this.#enterHold('bad_chunk', `the policy answered ${chunk.dof} joints; the bridge drives ${this.#player.dof} (${this.#config.joints.join(', ')})`, now);
      this.#retryAtMs = now + this.#backoffMs();
      return;
    }
    const dtMs = (chunk.dtS ?? this.#config.defaultDtS) * 1000;
    const accepted = this.#player.accept(
      { action: chunk.action, horizon: chunk.horizon, dof: chunk.dof, dtMs, obsMs: inflight.obsTickMs },
      now,
      this.#schedule!.deadlineMs,
      built.measured,
    );
    if (accepted.steps === 0) {
      this.#log.warn({ event: 'bridge.chunk_late', roundTripMs: this.#lastRoundTripMs });
      return;
    }
    this.#counts.chunks++;
    this.#failures = 0;
    this.#holdTarget = undefined;
    this.#metrics.chunks.inc();
    if (accepted.clampedValues > 0) this.#metrics.clamped.inc(accepted.clampedValues);
    this.#lastChunkMs = now;
    this.#hadPlan = true;
    this.#commanded = true;
    const resumed = this.#hold !== undefined;
    this.#hold = undefined;
    for (const out of this.#outputs) {
      out.trajectory?.publish(trajectoryForGroup(this.#player.steps, out.spec, out.idx, built.rosStamp, inflight.obsTickMs, now));
    }
    this.#metrics.observationToPublish.observe((this.#nowMs() - built.atMs) / 1000);
    if (resumed) {
      this.#log.info({ event: 'bridge.resumed' });
      this.#publishStatus(true);
    }
  }

  #onInferError(inflight: InFlight, err: unknown): void {
    const e = toGatewayError(err);
    this.#metrics.inferenceDuration.observe({ outcome: 'error' }, (this.#nowMs() - inflight.startedMs) / 1000);
    if (!this.#current(inflight)) return;
    // A request stranded by a lost connection: the loss itself was counted when it happened (#onPolicyDown).
    if (!(e.code === 'unavailable' && this.#policy.connected === false)) this.#metrics.inferenceErrors.inc({ code: e.code });
    this.#log.warn({ event: 'bridge.inference_failed', code: e.code, message: e.message });
    this.#pendingError = e;
    this.#retryAtMs = this.#nowMs() + this.#backoffMs();
  }

  /** The wait before the next try after a failure: one period, doubling per failure in a row, at most 500 ms. */
  #backoffMs(): number {
    const ms = Math.min(RETRY_BACKOFF_MAX_MS, this.#periodMs * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    return Math.max(this.#periodMs, ms);
  }

  // ---- the gateway connection (ZMQ monitor events) ----

  /** The connection to the gateway is gone: count it, hold at the next tick, and send nothing until it is back. */
  #onPolicyDown(reason: string): void {
    if (this.#closing) return;
    this.#metrics.inferenceErrors.inc({ code: 'unavailable' });
    this.#log.warn({ event: 'bridge.policy_down', reason });
    if (this.#mode !== 'running') return;
    this.#pendingError = new GatewayError('unavailable', reason);
    this.#publishStatus(true);
  }

  /** Connected (again): ask for a chunk now rather than at the next tick or after a backoff. */
  #onPolicyUp(): void {
    if (this.#closing) return;
    this.#log.info({ event: 'bridge.policy_up' });
    this.#failures = 0;
    this.#retryAtMs = -Infinity;
    if (this.#mode !== 'running' || this.#inflight || !this.#imagesReady) return;
    try {
      this.#builder.checkFresh();
    } catch {
      return; // the next tick says why
    }
    const now = this.#nowMs();
    // Stamped as of the last tick (capture() back-dates the stamp), like any request the tick would have made.
    this.#request(this.#lastTickMs, this.#player.remaining(now));
    this.#publishStatus(true);
  }

  #cancel(): void {
    this.#generation++;
    this.#pendingError = undefined;
    this.#inflight?.controller.abort(new GatewayError('cancelled', 'superseded by a hold or stop'));
    this.#inflight = undefined;
  }

  // ---- hold ----

  #enterHold(reason: HoldReason, detail: string, nowMs: number, { force = false }: { force?: boolean } = {}): void {
    const already = this.#hold !== undefined;
    this.#hold = { reason, detail };
    this.#hadPlan = false;
    if (already && !force) {
      this.#publishStatus(false);
      return;
    }
    const pos = this.#builder.lastMeasured() ?? this.#player.lastCommanded;
    this.#player.hold(nowMs, pos);
    if (!this.#commanded && !force) {
      // Nothing was commanded since start or the last hold: nothing to stop, only the status says why we wait.
      this.#log.warn({ event: 'bridge.waiting', reason, detail });
      this.#publishStatus(true);
      return;
    }
    this.#commanded = false;
    this.#counts.holds++;
    this.#metrics.holds.inc({ reason });
    this.#log.warn({ event: 'bridge.hold', reason, detail });
    if (!pos) {
      this.#log.error({ event: 'bridge.hold_without_position', reason, detail: 'no joint state received yet; nothing published' });
    } else {
      this.#publishHold(pos);
      this.#holdTarget = { pos, lastMs: nowMs, repeats: 0 };
    }
    this.#publishStatus(true);
  }

  #publishHold(pos: Float64Array): void {
    const stamp = this.#adapter.now();
    for (const out of this.#outputs) {
      out.trajectory?.publish(holdTrajectory(out.spec, out.idx, pos, stamp, this.#periodMs / 1000));
      out.multiArray?.publish(multiArrayForGroup(out.spec, out.idx, pos));
    }
  }

  /**
   * While held (running or e-stopped), publishes the same hold target again at holdRepeatHz with a fresh stamp, so
   * a controller that subscribes during the hold gets it (ROS topics do not replay). The target is not re-measured:
   * a robot sagging under a hold must not walk the target with it.
   */
  #repeatHold(tickMs: number): void {
    const target = this.#holdTarget;
    const hz = this.#config.holdRepeatHz;
    if (!target || hz <= 0) return;
    if (!((this.#mode === 'running' && this.#hold) || this.#mode === 'estopped')) return;
    if (tickMs - target.lastMs < 1000 / hz - this.#periodMs / 2) return;
    target.lastMs = tickMs;
    target.repeats++;
    try {
      this.#publishHold(target.pos);
    } catch (err) {
      this.#log.warn({ event: 'bridge.hold_repeat_failed', err });
    }
  }

  // ---- status ----

  #publishStatus(changed: boolean): void {
    if (!this.#status) return;
    const now = this.#nowMs();
    const key = `${this.state}|${this.#hold?.reason ?? ''}|${this.#hold?.detail ?? ''}|${this.#builder.instruction}`;
    if (!changed && key === this.#lastStatusKey && now - this.#lastStatusMs < this.#statusIntervalMs) return;
    this.#lastStatusKey = key;
    this.#lastStatusMs = now;
    try {
      this.#status.publish({ data: JSON.stringify(this.status()) });
    } catch (err) {
      this.#log.warn({ event: 'bridge.status_failed', err });
    }
  }

  /** Holds the robot if it was running, then stops the loop and destroys what it created. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    if (this.#started && this.#mode === 'running') {
      try {
        this.#mode = 'idle';
        this.#cancel();
        this.#enterHold('shutdown', 'bridge shutting down', this.#nowMs(), { force: true });
      } catch (err) {
        this.#log.warn({ event: 'bridge.final_hold_failed', err });
      }
    }
    this.#cancel();
    this.#holdTarget = undefined;
    for (const unwatch of this.#unwatch) unwatch();
    this.#builder.close();
    await this.#images?.close();
    for (const s of this.#services) s.close();
    for (const out of this.#outputs) {
      out.trajectory?.close();
      out.multiArray?.close();
    }
    this.#status?.close();
    this.#log.info({ event: 'bridge.closed', ticks: this.#counts.ticks });
  }
}

/** p50, p99 and max of `samples` (NaN when empty). */
function quantiles(samples: readonly number[]): { p50Ms: number; p99Ms: number; maxMs: number } {
  const sorted = Float64Array.from(samples).sort();
  const q = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
  return { p50Ms: q(0.5), p99Ms: q(0.99), maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN };
}
