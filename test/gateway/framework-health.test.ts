// A framework's own health settings (`frameworks.<name>.health`): how often its workers are checked, how long a
// check may take, and after how many missed checks in a row a worker that is still connected leaves the rotation.
// Real gateway, real Python workers, stalled with SIGSTOP (the TCP connection stays up; nothing answers).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, parseConfig } from '../../src/config.js';
import { startTestGateway, waitFor } from '../support/gateway.js';
import { spawnPythonWorker } from '../support/python-worker.js';

test('bad health settings are all named with their paths; good ones are read, and absent ones default', () => {
  let error: unknown;
  try {
    parseConfig({
      frameworks: {
        a: { endpoints: ['tcp://127.0.0.1:5555'], health: { intervalMs: 10, timeoutMs: 'soon', downAfterFailures: 0, every: 3 } },
        b: { endpoints: ['tcp://127.0.0.1:5556'], health: 'often' },
      },
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError, String(error));
  for (const path of ['frameworks.a.health.intervalMs', 'frameworks.a.health.timeoutMs', 'frameworks.a.health.downAfterFailures', 'frameworks.a.health.every', 'frameworks.b.health']) {
    assert.ok(error.message.includes(path), `${path} is named in: ${error.message}`);
  }

  const config = parseConfig({
    healthIntervalMs: 700,
    frameworks: {
      tuned: { endpoints: ['tcp://127.0.0.1:5555'], health: { timeoutMs: 250, downAfterFailures: 4 } },
      plain: { endpoints: ['tcp://127.0.0.1:5556'] },
    },
  });
  assert.deepEqual(config.frameworks.tuned!.health, { intervalMs: 700, timeoutMs: 250, downAfterFailures: 4 });
  assert.equal(config.frameworks.plain!.health, undefined);
});

test('a stalled worker leaves the rotation after its framework\'s downAfterFailures missed checks, and not before', async (t) => {
  const quick = await spawnPythonWorker({ framework: 'quick' });
  t.after(() => quick.close());
  const patient = await spawnPythonWorker({ framework: 'patient' });
  t.after(() => patient.close());
  const health = (downAfterFailures: number) => ({ intervalMs: 100, timeoutMs: 150, downAfterFailures });
  const gateway = await startTestGateway(t, {
    defaultFramework: 'quick',
    frameworks: {
      quick: { endpoints: [quick.endpoint], health: health(1) },
      patient: { endpoints: [patient.endpoint], health: health(1_000) },
    },
  });
  await waitFor(() => gateway.router.notReady().length === 0, 15_000, 'both workers ready');
  const endpointOf = (name: string) => gateway.router.status().find((f) => f.name === name)!.endpoints[0]!;

  // Both stop answering at once, connected still.
  await quick.kill('SIGSTOP');
  await patient.kill('SIGSTOP');
  t.after(async () => {
    await quick.kill('SIGCONT');
    await patient.kill('SIGCONT');
  });

  await waitFor(() => endpointOf('quick').state === 'down', 15_000, 'the quick framework\'s worker down');
  assert.equal(endpointOf('quick').failedChecks, 1, 'down at the first counted miss');
  // The patient framework's worker misses check after check and stays in rotation (1,000 would take 100 s).
  await waitFor(() => (endpointOf('patient').failedChecks ?? 0) >= 5, 15_000, 'five missed checks of the patient framework\'s worker');
  assert.equal(endpointOf('patient').state, 'ready');
  assert.deepEqual(gateway.router.notReady(), ['quick']);
  // What an operator sees: the `frameworks` command shows the misses next to the worker's state.
  const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', main, 'frameworks', '-g', gateway.httpUrl], { timeout: 60_000 });
  const patientRow = stdout.split('\n').find((l) => l.startsWith('patient'));
  assert.match(patientRow ?? '', /\(ready, \d+ missed checks\)/, stdout);

  // Answering again: the counter clears and the stalled-then-resumed worker is back.
  await quick.kill('SIGCONT');
  await patient.kill('SIGCONT');
  await waitFor(() => endpointOf('quick').state === 'ready' && endpointOf('patient').failedChecks === undefined, 15_000, 'both answering again');
});
