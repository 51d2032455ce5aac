// The plan the robot is executing: action chunks placed on a time line, blended with what remains of the previous
// one (replace, nearest-point splice, weighted average), clamped to joint limits, and read out per tick or as one
// JointTrajectory per controller group. Pure: times are passed in (monotonic ms), nothing here waits or publishes.
import type { BlendingSpec, JointLimit, OutputSpec } from './config.js';
import type { Float64MultiArrayMsg, JointTrajectoryMsg, RosTime } from './ros-adapter.js';
import { toRosTime } from './ros-adapter.js';

/** One target of the plan: the positions (config joint order) the robot should be at, at time tMs. */
export interface PlanStep {
  tMs: number;
  pos: Float64Array;
  /** weighted_average: sum of the weights that went into pos, and how many chunks did. */
  weight: number;
  count: number;
}

/** A chunk as the player takes it: flat float32 [horizon * dof] in config joint order. */
export interface ChunkInput {
  action: Float32Array;
  horizon: number;
  dof: number;
  dtMs: number;
  /** Monotonic ms of the observation the chunk answers (its step k is the target at obsMs + (k+1) * dtMs). */
  obsMs: number;
}

export interface AcceptResult {
  /** Steps now in the plan (all in the future). */
  steps: number;
  /** nearest_splice: the index of the new chunk the plan starts at. */
  spliceIndex?: number;
  /** How many joint values were changed by the position or velocity clamp. */
  clampedValues: number;
}

export interface ChunkPlayerOptions {
  joints: readonly string[];
  blending: BlendingSpec;
  limits?: Readonly<Record<string, JointLimit>>;
}

const EPS_MS = 1e-6;

export class ChunkPlayer {
  readonly dof: number;
  readonly #blending: BlendingSpec;
  readonly #min: Float64Array;
  readonly #max: Float64Array;
  readonly #vmax: Float64Array;
  #plan: PlanStep[] = [];
  /** Step spacing of the chunk the plan came from (weighted_average blends only equal spacings). */
  #planDtMs = NaN;
  #last: { tMs: number; pos: Float64Array } | undefined;

  constructor({ joints, blending, limits = {} }: ChunkPlayerOptions) {
    this.dof = joints.length;
    this.#blending = blending;
    this.#min = Float64Array.from(joints, (j) => limits[j]?.min ?? -Infinity);
    this.#max = Float64Array.from(joints, (j) => limits[j]?.max ?? Infinity);
    this.#vmax = Float64Array.from(joints, (j) => limits[j]?.maxVelocity ?? Infinity);
  }

  /**
   * Moves every step due at or before `nowMs` out of the plan; the last of them becomes the last commanded and is
   * returned (what a forward-command controller gets at this tick), or undefined when no step fell due.
   */
  advance(nowMs: number): PlanStep | undefined {
    let i = 0;
    while (i < this.#plan.length && this.#plan[i]!.tMs <= nowMs + EPS_MS) i++;
    if (i === 0) return undefined;
    const step = this.#plan[i - 1]!;
    this.#last = { tMs: step.tMs, pos: step.pos };
    this.#plan = this.#plan.slice(i);
    return step;
  }

  /** Steps still ahead of `nowMs`. */
  remaining(nowMs: number): number {
    let n = 0;
    for (const s of this.#plan) if (s.tMs > nowMs + EPS_MS) n++;
    return n;
  }

  /** Time until the last step, ms (0 when the plan is empty). */
  remainingMs(nowMs: number): number {
    const last = this.#plan.at(-1);
    return last ? Math.max(0, last.tMs - nowMs) : 0;
  }

  get steps(): readonly PlanStep[] {
    return this.#plan;
  }

  get lastCommanded(): Float64Array | undefined {
    return this.#last?.pos;
  }

  /** Empties the plan and makes `pos` (the measured position) the last command: the robot holds there. */
  hold(nowMs: number, pos: Float64Array | undefined): void {
    this.#plan = [];
    if (pos) this.#last = { tMs: nowMs, pos: Float64Array.from(pos) };
  }

  /**
   * Puts a new chunk into the plan by the configured blending method, drops the steps already due at `nowMs`,
   * then clamps positions and per-step velocity. `nextTickMs` is where a spliced chunk starts; `measured` is the
   * reference when nothing was commanded yet.
   */
  accept(chunk: ChunkInput, nowMs: number, nextTickMs: number, measured?: Float64Array): AcceptResult {
    if (chunk.dof !== this.dof) throw new RangeError(`chunk has ${chunk.dof} joints, the plan ${this.dof}`);
    this.advance(nowMs);
    const row = (k: number) => Float64Array.from(chunk.action.subarray(k * chunk.dof, (k + 1) * chunk.dof));
    const reference = this.#last?.pos ?? measured;
    let spliceIndex: number | undefined;
    let plan: PlanStep[];

    const method = this.#blending.method;
    if (method === 'nearest_splice' && reference) {
      const window = Math.min(this.#blending.spliceWindow, chunk.horizon);
      let best = 0;
      let bestDist = Infinity;
      for (let k = 0; k < window; k++) {
        let d = 0;
        for (let j = 0; j < chunk.dof; j++) d += (chunk.action[k * chunk.dof + j]! - reference[j]!) ** 2;
        if (d < bestDist) {
          bestDist = d;
          best = k;
        }
      }
      spliceIndex = best;
      plan = [];
      for (let k = best; k < chunk.horizon; k++) {
        plan.push({ tMs: nextTickMs + (k - best) * chunk.dtMs, pos: row(k), weight: 1, count: 1 });
      }
    } else {
      const fresh: PlanStep[] = [];
      for (let k = 0; k < chunk.horizon; k++) {
        const tMs = chunk.obsMs + (k + 1) * chunk.dtMs;
        if (tMs > nowMs + EPS_MS) fresh.push({ tMs, pos: row(k), weight: 1, count: 1 });
      }
      // Temporal ensembling matches steps by time slot: with a different step length it falls back to replace.
      plan = method === 'weighted_average' && Math.abs(this.#planDtMs - chunk.dtMs) < 1e-6 ? this.#ensemble(fresh, chunk.dtMs) : fresh;
    }
    const clampedValues = this.#clamp(plan, nowMs, measured);
    this.#plan = plan;
    this.#planDtMs = chunk.dtMs;
    return { steps: plan.length, clampedValues, ...(spliceIndex !== undefined ? { spliceIndex } : {}) };
  }

  /** LeRobot's temporal ensembling: a step covered by c earlier chunks gets the new value with weight exp(-m * c). */
  #ensemble(fresh: PlanStep[], dtMs: number): PlanStep[] {
    const m = this.#blending.ensembleCoefficient;
    const out: PlanStep[] = [];
    let i = 0;
    for (const step of fresh) {
      while (i < this.#plan.length && this.#plan[i]!.tMs < step.tMs - dtMs / 2) out.push(this.#plan[i++]!);
      const old = this.#plan[i];
      if (old && Math.abs(old.tMs - step.tMs) <= dtMs / 2) {
        const w = Math.exp(-m * old.count);
        const pos = new Float64Array(this.dof);
        for (let j = 0; j < this.dof; j++) pos[j] = (old.pos[j]! * old.weight + step.pos[j]! * w) / (old.weight + w);
        out.push({ tMs: old.tMs, pos, weight: old.weight + w, count: old.count + 1 });
        i++;
      } else {
        out.push(step);
      }
    }
    while (i < this.#plan.length) out.push(this.#plan[i++]!);
    return out;
  }

  /** Position limits, then velocity limits (at most vmax * dt from the previous target), step by step. */
  #clamp(plan: PlanStep[], nowMs: number, measured: Float64Array | undefined): number {
    let clamped = 0;
    let prev = this.#last ?? (measured ? { tMs: nowMs, pos: measured } : undefined);
    for (const step of plan) {
      const pos = step.pos;
      for (let j = 0; j < this.dof; j++) {
        let v = Math.min(this.#max[j]!, Math.max(this.#min[j]!, pos[j]!));
        if (prev && Number.isFinite(this.#vmax[j]!)) {
          const maxDelta = (this.#vmax[j]! * Math.max(0, step.tMs - prev.tMs)) / 1000;
          const from = prev.pos[j]!;
          v = Math.min(from + maxDelta, Math.max(from - maxDelta, v));
        }
        if (v !== pos[j]) {
          clamped++;
          pos[j] = v;
        }
      }
      prev = step;
    }
    return clamped;
  }
}

/** Column indices of an output group's joints in the config joint order. */
export function groupIndices(joints: readonly string[], output: OutputSpec): number[] {
  return output.joints.map((j) => {
    const i = joints.indexOf(j);
    if (i < 0) throw new RangeError(`joint ${j} of output ${output.name} is not in the joint list`);
    return i;
  });
}

const pick = (pos: Float64Array, idx: readonly number[]) => idx.map((i) => pos[i]!);

/**
 * One JointTrajectory for a group: every step after `nowMs`, joints in the group's order, header.stamp = the
 * observation's ROS stamp and time_from_start = step time - observation time (k * dt for an unblended chunk).
 */
export function trajectoryForGroup(
  steps: readonly PlanStep[],
  output: OutputSpec,
  idx: readonly number[],
  stamp: RosTime,
  obsMs: number,
  nowMs: number,
): JointTrajectoryMsg {
  return {
    header: { stamp, frame_id: '' },
    joint_names: [...output.joints],
    points: steps
      .filter((s) => s.tMs > nowMs + EPS_MS)
      .map((s) => ({
        positions: pick(s.pos, idx),
        velocities: [],
        accelerations: [],
        effort: [],
        time_from_start: toRosTime((s.tMs - obsMs) / 1000),
      })),
  };
}

/** A single-point trajectory to `pos` (the hold), reached `afterS` seconds from `stamp`. */
export function holdTrajectory(output: OutputSpec, idx: readonly number[], pos: Float64Array, stamp: RosTime, afterS: number): JointTrajectoryMsg {
  return {
    header: { stamp, frame_id: '' },
    joint_names: [...output.joints],
    points: [{ positions: pick(pos, idx), velocities: [], accelerations: [], effort: [], time_from_start: toRosTime(afterS) }],
  };
}

/** A forward-command message: the group's joints, in its order. */
export function multiArrayForGroup(output: OutputSpec, idx: readonly number[], pos: Float64Array): Float64MultiArrayMsg {
  return {
    layout: { dim: [{ label: output.name, size: idx.length, stride: idx.length }], data_offset: 0 },
    data: pick(pos, idx),
  };
}
