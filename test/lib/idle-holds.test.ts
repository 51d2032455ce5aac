// The idle clock both Docker launchers use: a name is idle once nobody has held it for idleMs. Counted holds,
// idempotent releases, a hold stops a running clock, and nothing fires while something holds the name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../../src/lib/abort.js';
import { IdleHolds } from '../../src/lib/idle-holds.js';

const IDLE_MS = 100;

// The clocks are unref'd (they never keep a gateway alive): this keeps the test's event loop up while it waits.
const keepAlive = setInterval(() => undefined, 60_000);
test.after(() => clearInterval(keepAlive));

/** IdleHolds whose idle calls are recorded; `next()` resolves at the next one. */
function holdsUnderTest(idleMs = IDLE_MS) {
  const idle: Array<{ name: string; at: number }> = [];
  let wake: (() => void) | undefined;
  const holds = new IdleHolds(idleMs, (name) => {
    idle.push({ name, at: performance.now() });
    wake?.();
  });
  const next = () => new Promise<void>((resolve) => (wake = resolve));
  return { holds, idle, next };
}

test('idle once the last of several holds is released, idleMs after it; releasing twice counts once', async (t) => {
  const { holds, idle, next } = holdsUnderTest();
  t.after(() => holds.close());
  const a = holds.hold('pi0');
  const b = holds.hold('pi0');
  a();
  a(); // idempotent: must not release b's hold
  assert.equal(holds.held('pi0'), true);
  await sleep(IDLE_MS * 5);
  assert.equal(idle.length, 0, 'held by b: never idle');
  const releasedAt = performance.now();
  const fired = next();
  b();
  assert.equal(holds.held('pi0'), false);
  await fired;
  assert.deepEqual(idle.map((i) => i.name), ['pi0']);
  assert.ok(idle[0]!.at - releasedAt >= IDLE_MS - 5, `idle ${(idle[0]!.at - releasedAt).toFixed(0)} ms after the release`);
});

test('a hold taken while the clock runs stops it; the clock starts again at its release', async (t) => {
  const { holds, idle, next } = holdsUnderTest();
  t.after(() => holds.close());
  holds.hold('groot')();
  const again = holds.hold('groot'); // within idleMs of the release: the running clock is stopped
  await sleep(IDLE_MS * 5);
  assert.equal(idle.length, 0, 'held again: never idle');
  const fired = next();
  again();
  await fired;
  assert.deepEqual(idle.map((i) => i.name), ['groot']);
});

test('names are independent; disarm and close stop clocks; idleMs 0 never fires', async (t) => {
  const { holds, idle, next } = holdsUnderTest();
  t.after(() => holds.close());
  const busy = holds.hold('a');
  holds.hold('b')();
  holds.hold('c')();
  holds.disarm('c'); // stopped for another reason: no idle call for it
  await next();
  assert.deepEqual(idle.map((i) => i.name), ['b']);
  busy();
  await next();
  assert.deepEqual(idle.map((i) => i.name), ['b', 'a']);

  holds.hold('d')();
  holds.close();
  const never = holdsUnderTest(0);
  never.holds.hold('e')();
  await sleep(IDLE_MS * 3);
  assert.deepEqual(idle.map((i) => i.name), ['b', 'a'], 'closed: d never fires');
  assert.deepEqual(never.idle, [], 'idleMs 0: never idle');
  assert.equal(never.holds.held('e'), false);
});
