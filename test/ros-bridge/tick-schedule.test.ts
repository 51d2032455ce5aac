// The loop's schedule on an injected clock: absolute deadlines (no drift however late ticks run), skipping when more
// than a period behind, and how it waits (a timer that ends before the deadline, then a short precise sleep).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TickSchedule } from '../../src/ros-bridge/tick-schedule.js';

/** A deterministic sequence in [0, 1) (no Math.random: the test must fail the same way twice). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('deadlines are start + n·period: ticks that run late (up to a period) never push the later ones', () => {
  const periodMs = 1000 / 30;
  const startMs = 12_345.678;
  const schedule = new TickSchedule({ periodMs, startMs });
  const rand = lcg(7);
  let chainedMs = startMs; // where a chained setTimeout(period) from each tick's actual time would run tick n
  for (let n = 0; n < 100_000; n++) {
    assert.equal(schedule.index, n);
    assert.equal(schedule.deadlineMs, startMs + n * periodMs);
    // The tick runs late by up to 0.9 period and takes up to 0.1 period: still inside its period, nothing skipped.
    const lateMs = 0.9 * periodMs * rand();
    const ranAt = schedule.deadlineMs + lateMs;
    chainedMs += lateMs + periodMs;
    assert.equal(schedule.advance(ranAt + 0.1 * periodMs * rand()), 0);
  }
  assert.equal(schedule.deadlineMs, startMs + 100_000 * periodMs);
  // The chained schedule would be behind by the sum of every lateness (tens of minutes here); this one is not at all.
  assert.ok(chainedMs - schedule.deadlineMs > 60_000, `chained drift ${chainedMs - schedule.deadlineMs} ms`);
});

test('a stall longer than one period skips the ticks that are more than a period late and stays on the grid', () => {
  const schedule = new TickSchedule({ periodMs: 10, startMs: 0 });
  assert.equal(schedule.advance(0.5), 0); // tick 0 ran; next is tick 1 at 10
  // Tick 1 ran at 10 but stalled until 45: ticks 2 (20) and 3 (30) are more than a period late, 4 (40) is not.
  assert.equal(schedule.advance(45), 2);
  assert.equal(schedule.index, 4);
  assert.equal(schedule.deadlineMs, 40);
  assert.deepEqual(schedule.wait(45), { kind: 'now' });
  // Exactly one period behind is not skipped.
  assert.equal(schedule.advance(60), 0);
  assert.equal(schedule.deadlineMs, 50);
});

test('waiting: a whole-ms timer that ends at least preciseMs before the deadline, then a precise sleep shorter than preciseMs + 1 ms', () => {
  const precise = new TickSchedule({ periodMs: 10, startMs: 100, preciseMs: 0.5 });
  assert.deepEqual(precise.wait(90), { kind: 'timer', ms: 9 }); // wakes at 99 or a little later
  assert.deepEqual(precise.wait(98.4), { kind: 'timer', ms: 1 });
  // 1.4 ms left: a 1 ms timer could fire after the deadline, so sleep precisely for all of it.
  assert.equal(precise.wait(98.6).kind, 'precise');
  assert.ok(Math.abs((precise.wait(98.6) as { ms: number }).ms - 1.4) < 1e-9);
  assert.deepEqual(precise.wait(99.75), { kind: 'precise', ms: 0.25 });
  assert.deepEqual(precise.wait(100), { kind: 'now' });
  assert.deepEqual(precise.wait(103), { kind: 'now' });
  for (let now = 90; now < 100; now += 0.01) {
    const w = precise.wait(now);
    if (w.kind === 'timer') assert.ok(now + w.ms <= 100 - 0.5 + 1e-9, `timer from ${now} ends before the precise window`);
    else if (w.kind === 'precise') {
      assert.ok(w.ms < 0.5 + 1, `precise sleep from ${now} is shorter than preciseMs + 1 ms`);
      assert.ok(Math.abs(now + w.ms - 100) < 1e-9, `precise sleep from ${now} ends at the deadline`);
    } else assert.fail(`not due yet at ${now}`);
  }
  // Timers only: never sleeps precisely; a timer that fires early (libuv's clock is cached) just waits again.
  const timers = new TickSchedule({ periodMs: 10, startMs: 100 });
  assert.deepEqual(timers.wait(90.3), { kind: 'timer', ms: 10 });
  assert.deepEqual(timers.wait(99.7), { kind: 'timer', ms: 1 });
  assert.deepEqual(timers.wait(100), { kind: 'now' });
  assert.throws(() => new TickSchedule({ periodMs: 0, startMs: 0 }), RangeError);
  assert.throws(() => new TickSchedule({ periodMs: 10, startMs: 0, preciseMs: -1 }), RangeError);
});
