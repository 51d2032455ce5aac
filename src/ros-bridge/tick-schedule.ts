// The control loop's schedule: tick n is due at start + n·period (absolute deadlines on a monotonic clock, so a late
// tick never pushes the ones after it), and how to wait for the next one. Pure: the clock is passed in.

/**
 * How to wait for the next deadline: a timer for `ms` (whole ms, ending at least preciseMs before it), a precise
 * blocking sleep of `ms` (fractional, the last stretch), or nothing (due now).
 */
export type Wait = { kind: 'timer'; ms: number } | { kind: 'precise'; ms: number } | { kind: 'now' };

const NOW: Wait = Object.freeze({ kind: 'now' });

export interface TickScheduleOptions {
  periodMs: number;
  /** Monotonic time of tick 0, ms. */
  startMs: number;
  /**
   * Wake this long (or up to 1 ms more) before a deadline and sleep precisely for the rest; 0 = timers only.
   * Timers are whole-millisecond and fire up to about a millisecond late (or early: libuv's loop clock is cached).
   */
  preciseMs?: number;
}

export class TickSchedule {
  readonly periodMs: number;
  readonly startMs: number;
  readonly preciseMs: number;
  #index = 0;

  constructor({ periodMs, startMs, preciseMs = 0 }: TickScheduleOptions) {
    if (!(periodMs > 0)) throw new RangeError(`periodMs must be > 0, got ${periodMs}`);
    if (!(preciseMs >= 0)) throw new RangeError(`preciseMs must be >= 0, got ${preciseMs}`);
    this.periodMs = periodMs;
    this.startMs = startMs;
    this.preciseMs = preciseMs;
  }

  /** The index of the next tick to run. */
  get index(): number {
    return this.#index;
  }

  /** When the next tick is due: start + index·period (never a sum of periods, so no drift accumulates). */
  get deadlineMs(): number {
    return this.deadlineOf(this.#index);
  }

  deadlineOf(index: number): number {
    return this.startMs + index * this.periodMs;
  }

  /**
   * The current tick ran; moves to the next one. Ticks whose deadline is already more than one period past at
   * `nowMs` are skipped (the loop runs the latest due tick rather than a burst of stale ones); returns how many.
   */
  advance(nowMs: number): number {
    this.#index++;
    const behind = nowMs - this.deadlineMs;
    if (behind <= this.periodMs) return 0;
    const skipped = Math.floor(behind / this.periodMs);
    this.#index += skipped;
    return skipped;
  }

  /** How to wait at `nowMs` for the next deadline. */
  wait(nowMs: number): Wait {
    const left = this.deadlineMs - nowMs;
    if (left <= 0) return NOW;
    if (this.preciseMs === 0) return { kind: 'timer', ms: Math.ceil(left) }; // an early timer just waits again
    const ms = Math.floor(left - this.preciseMs);
    return ms >= 1 ? { kind: 'timer', ms } : { kind: 'precise', ms: left };
  }
}
