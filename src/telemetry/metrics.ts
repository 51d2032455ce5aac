// Prometheus metrics of the gateway on an injected registry, behind a small observer API so that the rest of
// the code never touches prom-client. The hot path only adds to plain records; OTLP export (sdk.ts) reads the
// same registry at each collection, so exporting costs nothing per request.
import { collectDefaultMetrics, Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { FastCounter, FastGauge, FastHistogram } from './instruments.js';
import type { HistogramSeries, ScalarSeries } from './instruments.js';

// ---- metric names (Prometheus conventions: base units, `_total` counters) ----
export const REQUEST_DURATION_SECONDS = 'gateway_request_duration_seconds';
export const STAGE_DURATION_SECONDS = 'gateway_stage_duration_seconds';
export const REQUESTS_IN_FLIGHT = 'gateway_requests_in_flight';
export const REQUESTS_TOTAL = 'gateway_requests_total';
export const ERRORS_TOTAL = 'gateway_errors_total';
export const REQUEST_BYTES_TOTAL = 'gateway_request_bytes_total';
export const RESPONSE_BYTES_TOTAL = 'gateway_response_bytes_total';
export const WORKER_UP = 'gateway_worker_up';
export const POOL_ENDPOINTS = 'gateway_pool_endpoints';
export const FRAMEWORK_STATE = 'gateway_framework_state';
export const LATE_REPLIES_TOTAL = 'gateway_late_replies_total';
export const RECONNECTS_TOTAL = 'gateway_reconnects_total';
export const WORKER_REQUESTS_TOTAL = 'gateway_worker_requests_total';
export const POOL_RETRIES_TOTAL = 'gateway_pool_retries_total';
export const TENSOR_COPIES_TOTAL = 'gateway_tensor_copies_total';
export const TENSOR_COPIED_BYTES_TOTAL = 'gateway_tensor_copied_bytes_total';
export const CONTAINER_CPU_CORES = 'gateway_container_cpu_cores';
export const CONTAINER_MEMORY_BYTES = 'gateway_container_memory_bytes';
export const CONTAINER_MEMORY_LIMIT_BYTES = 'gateway_container_memory_limit_bytes';
export const CONTAINER_OOM_TOTAL = 'gateway_container_oom_total';
export const RECORDING_EXCHANGES_TOTAL = 'gateway_recording_exchanges_total';
export const RECORDING_BYTES_TOTAL = 'gateway_recording_bytes_total';
export const RECORDING_DROPPED_TOTAL = 'gateway_recording_dropped_total';
export const TRAINING_STEP = 'gateway_training_step';
export const TRAINING_LOSS = 'gateway_training_loss';
export const JOBS = 'gateway_jobs';
export const JOBS_FINISHED_TOTAL = 'gateway_jobs_finished_total';

/** Every metric name this module registers. */
export const METRIC_NAMES = [
  REQUEST_DURATION_SECONDS, STAGE_DURATION_SECONDS, REQUESTS_IN_FLIGHT, REQUESTS_TOTAL, ERRORS_TOTAL,
  REQUEST_BYTES_TOTAL, RESPONSE_BYTES_TOTAL, WORKER_UP, POOL_ENDPOINTS, FRAMEWORK_STATE, LATE_REPLIES_TOTAL, RECONNECTS_TOTAL,
  WORKER_REQUESTS_TOTAL, POOL_RETRIES_TOTAL,
  TENSOR_COPIES_TOTAL, TENSOR_COPIED_BYTES_TOTAL, CONTAINER_CPU_CORES, CONTAINER_MEMORY_BYTES,
  CONTAINER_MEMORY_LIMIT_BYTES, CONTAINER_OOM_TOTAL, RECORDING_EXCHANGES_TOTAL, RECORDING_BYTES_TOTAL, RECORDING_DROPPED_TOTAL,
  TRAINING_STEP, TRAINING_LOSS, JOBS, JOBS_FINISHED_TOTAL,
] as const;

/** Training job states (src/jobs/job-manager.ts JobState); every one is exported, 0 when none. */
export const JOB_STATE_NAMES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

/** Why an exchange was not recorded: the writer's queue was full (disk too slow), or writing it failed. */
export type RecordingDropReason = 'queue_full' | 'write_failed';

/** Latency buckets in seconds: 100 µs to 10 s, dense below 10 ms where ZMQ round trips live. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
  2.5, 5, 10,
];

/** Name of the OpenTelemetry meter (and tracer) of the gateway. */
export const INSTRUMENTATION_NAME = 'physical-ai-gateway';

/** The front door a request came through: ours (ZMQ, HTTP) or a peer's protocol (openpi's websocket, GR00T's ZMQ). */
/** `direct`: a client sent straight to the worker under a lease; the worker's records arrive later (lease-service). */
export type Transport = 'zmq' | 'http' | 'openpi' | 'groot' | 'direct';
/** Same values as src/protocol/codec.ts `Codec` (kept structural so telemetry imports nothing from src). */
export type CodecName = 'binary' | 'msgpack' | 'json';
/**
 * Stages of a request, as the front doors measure them:
 * - decode: the front door decoding the request (ZMQ frames or the HTTP body, schema check included);
 * - queue: time in the gateway between decode and the request leaving for the worker (router admission, an
 *   on-demand framework start, worker pick, header encode); tens of µs unless a framework is being started;
 * - worker_compute: the worker's own `timing.compute_ms`;
 * - transport: the round trip to the worker minus the worker's `timing.total_ms` (wire and socket queues);
 * - encode: encoding the reply.
 */
export const STAGES = ['decode', 'queue', 'worker_compute', 'transport', 'encode'] as const;
export type Stage = (typeof STAGES)[number];
/** `ok`, or an error code of src/lib/errors.ts. */
export type Outcome = 'ok' | (string & {});

export interface RequestLabels {
  framework: string;
  transport: Transport;
  codec: CodecName;
}

export interface RequestEnd {
  /** `ok` or the GatewayError code the request ended with. */
  outcome: Outcome;
  /** Bytes received for the request (all frames / body). */
  requestBytes?: number;
  /** Bytes sent back (all frames / body). */
  responseBytes?: number;
  /** Per-stage durations in milliseconds (missing stages are not observed). */
  stagesMs?: Partial<Record<Stage, number>>;
  /** Bytes copied while decoding tensors (misaligned inline data); > 0 counts one copying decode. */
  copiedBytes?: number;
  /** Framework resolved after the request started (a request without `framework` goes to the default). */
  framework?: string;
  /** Codec resolved after the request started (known only once the header is decoded). */
  codec?: CodecName;
  /** The duration as measured elsewhere (a worker's record of a direct request), ms; default: since requestStarted. */
  durationMs?: number;
}

/** A started request: call `end()` exactly once (later calls are ignored). Returns the duration in seconds. */
export interface RequestObservation {
  end(result: RequestEnd): number;
}

/** Structural copy of src/zmq/types.ts PoolEvent (a PoolEvent is assignable to it; test/telemetry checks that). */
export type PoolEventLike =
  | { type: 'endpoint_added' | 'endpoint_removed' | 'connected' | 'disconnected'; framework: string; endpoint: string; labels?: { host: string; task: string } }
  | { type: 'served'; framework: string; endpoint: string; labels: { host: string; task: string } }
  | { type: 'retry'; framework: string; endpoint: string; code: string; labels?: { host: string; task: string } }
  | { type: 'state'; framework: string; endpoint: string; from: string; to: string; reason?: string }
  | { type: 'reconnect'; framework: string; endpoint: string; attempt: number }
  | { type: 'late_reply'; framework: string; endpoint: string; requestId: string }
  | { type: 'closed'; framework: string };

/** Framework states of the router (src/router/framework-registry.ts FrameworkState); one is 1 at a time. */
export const FRAMEWORK_STATES = ['ready', 'starting', 'stopped', 'down'] as const;

/** Endpoint states of the pool (src/zmq/types.ts EndpointState); every one is exported, 0 when unused. */
export const ENDPOINT_STATES = ['connecting', 'ready', 'unhealthy', 'down'] as const;

/** One resource sample of a framework container, as the Docker manager reads it. */
export interface ContainerStatsSample {
  framework: string;
  /** Container name (or short id). */
  container: string;
  /** CPU time used per second of wall time, in cores (docker stats "CPU %" / 100); may exceed 1. */
  cpuCores: number;
  memoryBytes: number;
  /** 0 or undefined when the container has no limit. */
  memoryLimitBytes?: number;
}


/** The gateway's instruments. Create one per gateway with its own Registry. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** Call when a request arrives at a front door; returns the handle that ends it. */
  requestStarted(labels: RequestLabels): RequestObservation;
  /** Count an error that has no request observation (e.g. a frame that could not be decoded at all). */
  recordError(labels: { framework: string; transport: Transport; code: string }): void;
  /** Set a framework's state (ready, starting, stopped on purpose, down): 1 for it, 0 for the others. */
  recordFrameworkState(framework: string, state: string): void;
  /** Update pool gauges and counters from a pool state event. */
  observePoolEvent(event: PoolEventLike): void;
  /** Record a late reply dropped outside a pool event stream. */
  recordLateReply(framework: string): void;
  /** Set the container gauges from a Docker stats sample. */
  recordContainerStats(sample: ContainerStatsSample): void;
  /** Count an out-of-memory kill of a framework container. */
  recordContainerOom(labels: { framework: string; container: string }): void;
  /** Drop the gauges of a container that is gone. */
  removeContainer(labels: { framework: string; container: string }): void;
  /** Observe one stage outside a request observation (e.g. the ZMQ client measuring its hop). */
  observeStage(framework: string, stage: Stage, ms: number): void;
  /** Count an exchange written to a recording and its message bytes. */
  recordingWritten(framework: string, bytes: number): void;
  /** Count an exchange the recorder had to drop. */
  recordingDropped(framework: string, reason: RecordingDropReason): void;
  /** The latest step and loss a training job of `framework` reported (the trainer's own loss). */
  recordTrainingProgress(framework: string, step: number | undefined, loss: number | undefined): void;
  /** Jobs the gateway knows, by state. */
  recordJobStates(counts: Readonly<Record<string, number>>): void;
  /** Count a job that ended (succeeded, failed, cancelled). */
  jobFinished(framework: string, state: string): void;
}

interface RequestChildren {
  inFlight: ScalarSeries;
  requestBytes: ScalarSeries;
  responseBytes: ScalarSeries;
  copies: ScalarSeries;
  copiedBytes: ScalarSeries;
}

interface OutcomeChildren {
  duration: HistogramSeries;
  requests: ScalarSeries;
  errors: ScalarSeries | undefined;
}

const nowSeconds = (): number => performance.now() / 1000;

/**
 * Registers every gateway metric on `registry` (never the global one) and returns the observer API.
 * @example
 * const metrics = createMetrics(new Registry());
 * const obs = metrics.requestStarted({ framework: 'demo', transport: 'zmq', codec: 'binary' });
 * obs.end({ outcome: 'ok', requestBytes: 1200, responseBytes: 900, stagesMs: { worker_compute: 1.2 } });
 */
export function createMetrics(registry: Registry, { runtime = false }: { runtime?: boolean } = {}): GatewayMetrics {
  // prom-client's process and Node runtime collectors (CPU, memory, event-loop lag, GC, heap, handles), on the
  // gateway's own registry. Off by default: a test process builds many registries; the CLI's gateway turns it on.
  if (runtime) collectDefaultMetrics({ register: registry });
  // Off the hot path (pool events, container samples): plain prom-client metrics.
  const gauge = (name: string, help: string, labelNames: string[]) => new Gauge({ name, help, labelNames, registers: [registry] });
  const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: [registry] });
  const duration = new FastHistogram(REQUEST_DURATION_SECONDS, 'Time from a request arriving at a front door to its reply being handed back, seconds.', ['framework', 'transport', 'codec', 'outcome'], DURATION_BUCKETS_SECONDS, registry);
  const stage = new FastHistogram(STAGE_DURATION_SECONDS, 'Time spent per stage of a request (decode, queue, worker_compute, transport, encode), seconds.', ['framework', 'stage'], DURATION_BUCKETS_SECONDS, registry);
  const inFlight = new FastGauge(REQUESTS_IN_FLIGHT, 'Requests received and not yet answered.', ['framework', 'transport'], registry);
  const requests = new FastCounter(REQUESTS_TOTAL, 'Requests answered, by outcome (ok or error code).', ['framework', 'transport', 'codec', 'outcome'], registry);
  const errors = new FastCounter(ERRORS_TOTAL, 'Requests that ended with an error, by error code.', ['framework', 'transport', 'code'], registry);
  const requestBytes = new FastCounter(REQUEST_BYTES_TOTAL, 'Bytes received in requests (all frames or the HTTP body).', ['framework', 'transport'], registry);
  const responseBytes = new FastCounter(RESPONSE_BYTES_TOTAL, 'Bytes sent in replies (all frames or the HTTP body).', ['framework', 'transport'], registry);
  const workerUp = gauge(WORKER_UP, 'Whether a worker endpoint is ready (1) or not (0).', ['framework', 'endpoint']);
  const poolEndpoints = gauge(POOL_ENDPOINTS, 'Worker endpoints of a framework pool by state.', ['framework', 'state']);
  const frameworkState = gauge(FRAMEWORK_STATE, 'State of a framework: 1 for its current state (ready, starting, stopped = on purpose, down), 0 for the others.', ['framework', 'state']);
  const lateReplies = counter(LATE_REPLIES_TOTAL, 'Worker replies that arrived after their request had ended, dropped.', ['framework']);
  const reconnects = counter(RECONNECTS_TOTAL, 'Reconnections of pool sockets to workers.', ['framework']);
  const workerRequests = new FastCounter(WORKER_REQUESTS_TOTAL, 'Requests answered by each replica of a framework (Swarm task or remote container), by host and task.', ['framework', 'host', 'task'], registry);
  const retries = counter(POOL_RETRIES_TOTAL, 'Idempotent requests sent again to another worker after theirs went away or was not ready, by host and task of the first.', ['framework', 'host', 'task', 'code']);
  const copies = new FastCounter(TENSOR_COPIES_TOTAL, 'Request decodes that had to copy tensor bytes (misaligned inline data).', ['framework', 'transport'], registry);
  const copiedBytes = new FastCounter(TENSOR_COPIED_BYTES_TOTAL, 'Tensor bytes copied while decoding requests.', ['framework', 'transport'], registry);
  const cpu = gauge(CONTAINER_CPU_CORES, 'CPU used by a framework container, in cores (1 = one core busy).', ['framework', 'container']);
  const memory = gauge(CONTAINER_MEMORY_BYTES, 'Memory used by a framework container (without page cache), bytes.', ['framework', 'container']);
  const memoryLimit = gauge(CONTAINER_MEMORY_LIMIT_BYTES, 'Memory limit of a framework container, bytes (0 = none).', ['framework', 'container']);
  const oom = counter(CONTAINER_OOM_TOTAL, 'Out-of-memory kills of framework containers.', ['framework', 'container']);
  const recorded = counter(RECORDING_EXCHANGES_TOTAL, 'Exchanges (request + reply) written to MCAP recordings.', ['framework']);
  const recordedBytes = counter(RECORDING_BYTES_TOTAL, 'Message bytes written to MCAP recordings (before MCAP framing and indexes).', ['framework']);
  const trainingStep = gauge(TRAINING_STEP, 'Latest training step reported by a job of the framework.', ['framework']);
  const trainingLoss = gauge(TRAINING_LOSS, "Latest training loss reported by a job of the framework (the trainer's own loss for that step).", ['framework']);
  const jobs = gauge(JOBS, 'Training jobs the gateway knows, by state (queued, running, succeeded, failed, cancelled).', ['state']);
  const jobsFinished = counter(JOBS_FINISHED_TOTAL, 'Training jobs that ended, by final state.', ['framework', 'state']);
  for (const state of JOB_STATE_NAMES) jobs.set({ state }, 0);
  const recordingDrops = counter(RECORDING_DROPPED_TOTAL, 'Exchanges not recorded: the writer queue was full (disk too slow) or the write failed.', ['framework', 'reason']);

  // Label children cached by key: labels() hashes and sorts on every call, this map lookup does not.
  const requestCache = new Map<string, RequestChildren>();
  const outcomeCache = new Map<string, OutcomeChildren>();
  const stageCache = new Map<string, Array<HistogramSeries | undefined>>();

  const requestChildren = (framework: string, transport: Transport): RequestChildren => {
    const key = `${framework}\0${transport}`;
    let c = requestCache.get(key);
    if (!c) {
      const labels = { framework, transport };
      c = {
        inFlight: inFlight.child(labels),
        requestBytes: requestBytes.child(labels),
        responseBytes: responseBytes.child(labels),
        copies: copies.child(labels),
        copiedBytes: copiedBytes.child(labels),
      };
      requestCache.set(key, c);
    }
    return c;
  };
  const outcomeChildren = (framework: string, transport: Transport, codec: CodecName, outcome: string): OutcomeChildren => {
    const key = `${framework}\0${transport}\0${codec}\0${outcome}`;
    let c = outcomeCache.get(key);
    if (!c) {
      const labels = { framework, transport, codec, outcome };
      c = {
        duration: duration.child(labels),
        requests: requests.child(labels),
        errors: outcome === 'ok' ? undefined : errors.child({ framework, transport, code: outcome }),
      };
      outcomeCache.set(key, c);
    }
    return c;
  };
  /** The stage series of a framework, in STAGES order, each created on first use (one lookup per request, not per stage). */
  const stageRow = (framework: string): Array<HistogramSeries | undefined> => {
    let row = stageCache.get(framework);
    if (!row) stageCache.set(framework, (row = STAGES.map(() => undefined)));
    return row;
  };
  const observeStageAt = (framework: string, row: Array<HistogramSeries | undefined>, index: number, ms: number): void => {
    if (!(ms >= 0)) return; // also drops NaN
    stage.observe((row[index] ??= stage.child({ framework, stage: STAGES[index]! })), ms / 1000);
  };
  const observeStage = (framework: string, name: Stage, ms: number): void => observeStageAt(framework, stageRow(framework), STAGES.indexOf(name), ms);

  // Pool state per framework, so gateway_pool_endpoints is a count per state.
  const poolState = new Map<string, Map<string, string>>();
  const publishPool = (framework: string): void => {
    const endpoints = poolState.get(framework);
    const counts = new Map<string, number>(ENDPOINT_STATES.map((s) => [s, 0]));
    for (const state of endpoints?.values() ?? []) counts.set(state, (counts.get(state) ?? 0) + 1);
    for (const [state, n] of counts) poolEndpoints.set({ framework, state }, n);
  };
  const endpointsOf = (framework: string): Map<string, string> => {
    let m = poolState.get(framework);
    if (!m) {
      poolState.set(framework, (m = new Map()));
      // Counters start at 0 with the pool, so the first late reply or reconnect shows in increase()/rate().
      lateReplies.inc({ framework }, 0);
      reconnects.inc({ framework }, 0);
    }
    return m;
  };

  return {
    registry,
    requestStarted({ framework, transport, codec }) {
      const start = nowSeconds();
      const rc = requestChildren(framework, transport);
      rc.inFlight.value += 1;
      let ended = false;
      return {
        end(result) {
          const seconds = result.durationMs !== undefined ? result.durationMs / 1000 : nowSeconds() - start;
          if (ended) return seconds;
          ended = true;
          rc.inFlight.value -= 1;
          const fw = result.framework ?? framework;
          const rcFinal = fw === framework ? rc : requestChildren(fw, transport);
          const oc = outcomeChildren(fw, transport, result.codec ?? codec, result.outcome);
          duration.observe(oc.duration, seconds);
          oc.requests.value += 1;
          if (oc.errors) oc.errors.value += 1;
          if (result.requestBytes! > 0) rcFinal.requestBytes.value += result.requestBytes!;
          if (result.responseBytes! > 0) rcFinal.responseBytes.value += result.responseBytes!;
          if (result.copiedBytes! > 0) {
            rcFinal.copies.value += 1;
            rcFinal.copiedBytes.value += result.copiedBytes!;
          }
          const stages = result.stagesMs;
          if (stages) {
            const row = stageRow(fw);
            for (let i = 0; i < STAGES.length; i++) {
              const ms = stages[STAGES[i]!];
              if (ms !== undefined) observeStageAt(fw, row, i, ms);
            }
          }
          return seconds;
        },
      };
    },
    recordFrameworkState(framework, state) {
      for (const s of FRAMEWORK_STATES) frameworkState.set({ framework, state: s }, s === state ? 1 : 0);
    },
    recordError({ framework, transport, code }) {
      errors.inc({ framework, transport, code });
    },
    observePoolEvent(event) {
      switch (event.type) {
        case 'endpoint_added':
          if (!endpointsOf(event.framework).has(event.endpoint)) endpointsOf(event.framework).set(event.endpoint, 'connecting');
          workerUp.set({ framework: event.framework, endpoint: event.endpoint }, 0);
          publishPool(event.framework);
          return;
        case 'endpoint_removed':
          endpointsOf(event.framework).delete(event.endpoint);
          workerUp.remove({ framework: event.framework, endpoint: event.endpoint });
          publishPool(event.framework);
          return;
        case 'state':
          if (event.to === 'removed') {
            endpointsOf(event.framework).delete(event.endpoint);
            workerUp.remove({ framework: event.framework, endpoint: event.endpoint });
          } else {
            endpointsOf(event.framework).set(event.endpoint, event.to);
            workerUp.set({ framework: event.framework, endpoint: event.endpoint }, event.to === 'ready' ? 1 : 0);
          }
          publishPool(event.framework);
          return;
        case 'reconnect':
          reconnects.inc({ framework: event.framework });
          return;
        case 'served':
          workerRequests.inc({ framework: event.framework, host: event.labels.host, task: event.labels.task });
          return;
        case 'retry':
          retries.inc({ framework: event.framework, host: event.labels?.host ?? '', task: event.labels?.task ?? '', code: event.code });
          return;
        case 'late_reply':
          lateReplies.inc({ framework: event.framework });
          return;
        case 'closed':
          for (const endpoint of endpointsOf(event.framework).keys()) workerUp.remove({ framework: event.framework, endpoint });
          poolState.delete(event.framework);
          publishPool(event.framework);
          return;
        case 'connected':
        case 'disconnected':
          return; // readiness comes from `state` events (health checks), not from the socket alone
      }
    },
    recordLateReply(framework) {
      lateReplies.inc({ framework });
    },
    recordContainerStats({ framework, container, cpuCores, memoryBytes, memoryLimitBytes }) {
      const labels = { framework, container };
      // The OOM counter exists at 0 before the first kill; otherwise increase() misses that first kill.
      oom.inc(labels, 0);
      if (Number.isFinite(cpuCores)) cpu.set(labels, cpuCores);
      if (Number.isFinite(memoryBytes)) memory.set(labels, memoryBytes);
      memoryLimit.set(labels, memoryLimitBytes !== undefined && Number.isFinite(memoryLimitBytes) ? memoryLimitBytes : 0);
    },
    recordContainerOom(labels) {
      oom.inc(labels);
    },
    removeContainer(labels) {
      cpu.remove(labels);
      memory.remove(labels);
      memoryLimit.remove(labels);
    },
    observeStage,
    recordingWritten(framework, bytes) {
      recorded.inc({ framework });
      recordedBytes.inc({ framework }, bytes);
    },
    recordingDropped(framework, reason) {
      recordingDrops.inc({ framework, reason });
    },
    recordTrainingProgress(framework, step, loss) {
      if (step !== undefined && Number.isFinite(step)) trainingStep.set({ framework }, step);
      if (loss !== undefined && Number.isFinite(loss)) trainingLoss.set({ framework }, loss);
    },
    recordJobStates(counts) {
      for (const state of JOB_STATE_NAMES) jobs.set({ state }, counts[state] ?? 0);
    },
    jobFinished(framework, state) {
      jobsFinished.inc({ framework, state });
    },
  };
}

