// Deadlines must fire after garbage collection. AbortSignal.any([..., AbortSignal.timeout(ms)]) does not on
// Node 20.20 (the reason a framework once stayed "starting" for minutes); Deadline holds its own timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Deadline, abortError } from '../../src/lib/abort.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('a Deadline still fires after forced garbage collection', async () => {
  const caller = new AbortController();
  const fired = await new Promise<string>((resolve) => {
    // Only the listener refers to the signal: nothing else keeps it alive.
    new Deadline(200, caller.signal).signal.addEventListener('abort', (e) => resolve(abortError(e.target as AbortSignal).code), { once: true });
    gc();
    setTimeout(gc, 50);
    setTimeout(gc, 120);
  });
  assert.equal(fired, 'timeout');
});

test('a Deadline follows its parents and becomes cancelled; dispose clears the timer', async () => {
  const caller = new AbortController();
  const d = new Deadline(60_000, caller.signal);
  caller.abort();
  assert.equal(d.signal.aborted, true);
  assert.equal(abortError(d.signal).code, 'cancelled');

  const quiet = new Deadline(30);
  quiet.dispose();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(quiet.signal.aborted, false, 'a disposed deadline never fires');
  assert.equal(new Deadline(0).signal.aborted, true, 'no time left: already expired');
});
