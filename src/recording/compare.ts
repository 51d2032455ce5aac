// Compares replayed replies with recorded ones: action differences per request (max abs, mean abs, per joint) and
// latencies, gathered into one report with a pass/fail against a tolerance. Pure: the replay command feeds it.
import { Tensor } from '../protocol/tensor.js';

/** A flat action chunk in C order with its shape. */
export interface ActionValues {
  values: number[];
  shape: number[];
}

export interface ActionDiff {
  maxAbs: number;
  meanAbs: number;
  /** Largest |difference| of each joint (last axis) over the horizon. */
  perJointMaxAbs: number[];
  /** Set when the shapes differ (then nothing else is compared). */
  shapeMismatch?: string;
}

/** The action of a reply as flat numbers: a Tensor (binary codecs) or nested lists (JSON). */
export function actionValues(action: unknown): ActionValues | undefined {
  if (action instanceof Tensor) return { values: Array.from(action.data as ArrayLike<number | bigint>, Number), shape: [...action.shape] };
  if (!Array.isArray(action)) return undefined;
  const shape: number[] = [];
  for (let v: unknown = action; Array.isArray(v); v = v[0]) shape.push(v.length);
  return { values: (action as unknown[]).flat(Infinity).map(Number), shape };
}

export function actionDiff(recorded: ActionValues, replayed: ActionValues): ActionDiff {
  const same = recorded.shape.length === replayed.shape.length && recorded.shape.every((d, i) => d === replayed.shape[i]) && recorded.values.length === replayed.values.length;
  if (!same) return { maxAbs: Infinity, meanAbs: Infinity, perJointMaxAbs: [], shapeMismatch: `recorded [${recorded.shape.join(', ')}], replayed [${replayed.shape.join(', ')}]` };
  const dof = recorded.shape.at(-1) ?? recorded.values.length;
  const perJoint = new Array<number>(dof).fill(0);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < recorded.values.length; i++) {
    const d = Math.abs(recorded.values[i]! - replayed.values[i]!);
    // NaN compares false everywhere: count it as an infinite difference so it can never pass.
    const diff = Number.isNaN(d) ? Infinity : d;
    sum += diff;
    if (diff > max) max = diff;
    const j = dof > 0 ? i % dof : 0;
    if (diff > perJoint[j]!) perJoint[j] = diff;
  }
  return { maxAbs: max, meanAbs: recorded.values.length > 0 ? sum / recorded.values.length : 0, perJointMaxAbs: perJoint };
}

export interface ReplayOutcome {
  requestId: string;
  recordedOutcome: string;
  /** `ok` or the error code of the replayed request. */
  replayedOutcome: string;
  diff?: ActionDiff;
  recordedMs?: number;
  replayedMs: number;
}

export interface ComparisonSummary {
  requests: number;
  compared: number;
  /** Requests whose outcome differs (recorded ok, replay failed, or the reverse). */
  outcomeMismatches: number;
  shapeMismatches: number;
  /** Compared requests whose max abs difference is above the tolerance. */
  overTolerance: number;
  maxAbs: number;
  meanAbs: number;
  perJointMaxAbs: number[];
  worst: { requestId: string; maxAbs: number } | undefined;
  latencyMs: { recordedMedian: number | undefined; replayedMedian: number | undefined; medianDiff: number | undefined; replayedP95: number | undefined };
  tolerance: number;
  passed: boolean;
}

function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Gathers per-request outcomes and tells whether the replay matches the recording within `tolerance`. */
export class ReplayComparison {
  readonly outcomes: ReplayOutcome[] = [];
  constructor(readonly tolerance: number) {}

  add(outcome: ReplayOutcome): void {
    this.outcomes.push(outcome);
  }

  summary(): ComparisonSummary {
    let compared = 0;
    let outcomeMismatches = 0;
    let shapeMismatches = 0;
    let overTolerance = 0;
    let maxAbs = 0;
    let sumMean = 0;
    let perJoint: number[] = [];
    let worst: ComparisonSummary['worst'];
    for (const o of this.outcomes) {
      if ((o.recordedOutcome === 'ok') !== (o.replayedOutcome === 'ok')) outcomeMismatches++;
      if (!o.diff) continue;
      if (o.diff.shapeMismatch) {
        shapeMismatches++;
        continue;
      }
      compared++;
      sumMean += o.diff.meanAbs;
      if (o.diff.maxAbs > this.tolerance) overTolerance++;
      maxAbs = Math.max(maxAbs, o.diff.maxAbs);
      if (!worst || o.diff.maxAbs > worst.maxAbs) worst = { requestId: o.requestId, maxAbs: o.diff.maxAbs };
      if (perJoint.length < o.diff.perJointMaxAbs.length) perJoint = [...perJoint, ...new Array<number>(o.diff.perJointMaxAbs.length - perJoint.length).fill(0)];
      o.diff.perJointMaxAbs.forEach((d, j) => (perJoint[j] = Math.max(perJoint[j]!, d)));
    }
    const recorded = this.outcomes.flatMap((o) => (o.recordedMs !== undefined ? [o.recordedMs] : [])).sort((a, b) => a - b);
    const replayed = this.outcomes.map((o) => o.replayedMs).sort((a, b) => a - b);
    const recordedMedian = quantile(recorded, 0.5);
    const replayedMedian = quantile(replayed, 0.5);
    return {
      requests: this.outcomes.length,
      compared,
      outcomeMismatches,
      shapeMismatches,
      overTolerance,
      maxAbs,
      meanAbs: compared > 0 ? sumMean / compared : 0,
      perJointMaxAbs: perJoint,
      worst,
      latencyMs: {
        recordedMedian,
        replayedMedian,
        medianDiff: recordedMedian !== undefined && replayedMedian !== undefined ? replayedMedian - recordedMedian : undefined,
        replayedP95: quantile(replayed, 0.95),
      },
      tolerance: this.tolerance,
      passed: outcomeMismatches === 0 && shapeMismatches === 0 && overTolerance === 0,
    };
  }
}
