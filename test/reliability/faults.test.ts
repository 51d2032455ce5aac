// Faults under load, bounded (about 30 s): a real gateway in front of a real Python SDK worker, 6 client loops over
// both doors at S and L, while the worker is SIGKILLed and restarted on its port and SIGSTOPped/SIGCONTed (the
// stopped worker then answers requests the gateway has already given up on). Where this machine lets root create
// network namespaces, the same runs with the worker and the gateway in two namespaces of the run's own, joined by a
// shaped veth pair (scripts/fault-run.ts), and the namespaces are gone afterwards.
// What it proves: every request gets an answer by its deadline (0 hung), no answer reaches the wrong request or
// carries another request's result (0 misrouted: checked against each request's own state vector), failures
// are only the retryable codes, and service comes back after every fault. Timings are reported, not asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dockerAvailable, netnsAvailable, runFaults, type FaultName } from '../../scripts/fault-run.js';

const RETRYABLE = new Set(['unavailable', 'timeout', 'overloaded']);

test('kill, stop and restart a Python worker (and its container, and the Docker engine) under load: 0 hung, 0 misrouted, retryable errors only, recovery every time', { timeout: 300_000 }, async (t) => {
  const netns = netnsAvailable();
  if (netns !== true) t.diagnostic(`netns part not run: ${netns}`);
  const before = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  const docker = dockerAvailable();
  if (docker !== true) t.diagnostic(`Docker part not run: ${docker}`);
  const report = await runFaults({ seconds: 8, concurrency: 6, netns: netns === true, docker: docker === true, maxRequests: 200_000 });
  for (const s of report.faults) t.diagnostic(`${s.fault}: injected ${s.injections}, sent ${s.sent}, ok ${s.ok}, errors ${JSON.stringify(s.errors)}, hung ${s.hung}, misrouted ${s.misrouted}, recover_ms ${JSON.stringify(s.recover_ms)}`);

  assert.equal(report.totals.hung, 0);
  assert.equal(report.totals.misrouted, 0);
  const byName = new Map(report.faults.map((s) => [s.fault, s]));
  const expected: FaultName[] = ['baseline', 'kill-restart', 'stop-cont', ...(netns === true ? (['netem', 'netem-kill-restart'] as const) : []), ...(docker === true ? (['container-kill', 'engine-restart'] as const) : [])];
  assert.deepEqual([...byName.keys()].sort(), expected.sort());
  assert.ok(byName.get('baseline')!.ok > 0);
  for (const name of expected.filter((n) => n !== 'baseline')) {
    const s = byName.get(name)!;
    assert.ok(s.injections >= 1, `${name} injected`);
    assert.ok(s.ok > 0, `${name}: some requests served`);
    assert.equal(s.not_recovered, 0, `${name}: recovered after every injection`);
    if (name !== 'netem') assert.equal(s.recover_ms.length, s.injections);
    assert.deepEqual(Object.keys(s.errors).filter((code) => !RETRYABLE.has(code)), [], `${name}: only retryable codes`);
  }
  if (netns === true) {
    // The run's namespaces (and with them the veth pair) are gone.
    const after = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    assert.deepEqual(after.split('\n').filter((l) => l.startsWith('paig-') && !before.includes(l)), []);
  }
});

test('the misrouting check tells a reply to this request from a reply to another one', async () => {
  const { matchesDemo } = await import('../../bench/lib/reliability-load.js');
  const state = new Float32Array([0.25, -0.5, 0.75]);
  const answer = Array.from({ length: 16 }, (_, k) => [...state].map((x) => Math.fround(x + Math.fround(0.01 * (k + 1)))));
  assert.equal(matchesDemo(answer, state), true);
  assert.equal(matchesDemo(answer, new Float32Array([0.25, -0.5, 0.7])), false);
  assert.equal(matchesDemo(answer.slice(1), state), false);
});
