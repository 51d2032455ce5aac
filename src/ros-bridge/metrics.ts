// The bridge's Prometheus instruments, registered on an injected Registry (two bridges in one process never share one).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const BRIDGE_METRIC_NAMES = {
  periodJitter: 'ros_bridge_loop_period_jitter_seconds',
  tickLateness: 'ros_bridge_tick_lateness_seconds',
  starvation: 'ros_bridge_chunk_starvation_total',
  staleDrops: 'ros_bridge_stale_drops_total',
  holds: 'ros_bridge_holds_total',
  observationToPublish: 'ros_bridge_observation_to_publish_seconds',
  inferenceDuration: 'ros_bridge_inference_duration_seconds',
  inferenceErrors: 'ros_bridge_inference_errors_total',
  chunks: 'ros_bridge_chunks_total',
  clamped: 'ros_bridge_clamped_values_total',
  overruns: 'ros_bridge_loop_overruns_total',
  remainingSteps: 'ros_bridge_plan_remaining_steps',
} as const;

export interface BridgeMetrics {
  /** |actual period - 1/rate| of each loop tick. */
  periodJitter: Histogram;
  /** How long after its scheduled (absolute) deadline each tick ran. */
  tickLateness: Histogram;
  /** Ticks at which the plan ran out before a new chunk came (the robot was then held). */
  starvation: Counter;
  /** Ticks refused because an input was missing or too old, by topic. */
  staleDrops: Counter<'topic'>;
  /** Holds published, by reason (starved, watchdog, gateway_error, stale_input, bad_chunk, stop, emergency_stop). */
  holds: Counter<'reason'>;
  /** From building the observation to publishing the chunk that answers it. */
  observationToPublish: Histogram;
  inferenceDuration: Histogram<'outcome'>;
  inferenceErrors: Counter<'code'>;
  chunks: Counter;
  clamped: Counter;
  /** Ticks skipped because the loop fell more than one period behind. */
  overruns: Counter;
  remainingSteps: Gauge;
}

/** Creates the bridge's instruments on `registry`. */
export function createBridgeMetrics(registry: Registry): BridgeMetrics {
  const registers = [registry];
  return {
    periodJitter: new Histogram({
      name: BRIDGE_METRIC_NAMES.periodJitter,
      help: 'Absolute difference between the measured loop period and 1/rate',
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
      registers,
    }),
    tickLateness: new Histogram({
      name: BRIDGE_METRIC_NAMES.tickLateness,
      help: 'Time from a tick\'s scheduled deadline (start + n / rate) to when it ran',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
      registers,
    }),
    starvation: new Counter({ name: BRIDGE_METRIC_NAMES.starvation, help: 'Ticks at which the action plan ran out', registers }),
    staleDrops: new Counter({ name: BRIDGE_METRIC_NAMES.staleDrops, help: 'Ticks refused for a missing or stale input', labelNames: ['topic'], registers }),
    holds: new Counter({ name: BRIDGE_METRIC_NAMES.holds, help: 'Hold commands published', labelNames: ['reason'], registers }),
    observationToPublish: new Histogram({
      name: BRIDGE_METRIC_NAMES.observationToPublish,
      help: 'From observation built to its action chunk published',
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers,
    }),
    inferenceDuration: new Histogram({
      name: BRIDGE_METRIC_NAMES.inferenceDuration,
      help: 'Inference round trip seen by the bridge',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers,
    }),
    inferenceErrors: new Counter({ name: BRIDGE_METRIC_NAMES.inferenceErrors, help: 'Failed inferences by error code', labelNames: ['code'], registers }),
    chunks: new Counter({ name: BRIDGE_METRIC_NAMES.chunks, help: 'Action chunks accepted into the plan', registers }),
    clamped: new Counter({ name: BRIDGE_METRIC_NAMES.clamped, help: 'Joint values changed by position or velocity limits', registers }),
    overruns: new Counter({ name: BRIDGE_METRIC_NAMES.overruns, help: 'Loop ticks skipped because the loop fell behind', registers }),
    remainingSteps: new Gauge({ name: BRIDGE_METRIC_NAMES.remainingSteps, help: 'Steps left in the action plan', registers }),
  };
}
