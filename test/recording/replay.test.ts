// `physical-ai-gateway replay` as a policy regression test, run as the real command: traffic recorded from a real
// gateway is sent again through each door; against the same demo policy the actions match exactly (exit 0), against a
// policy that differs (a real TS worker adding 0.001 to every action) the differences are reported and it exits 1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { sampleObservation } from '../../src/cli/sample.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { demoPolicy } from '../../src/worker/default-policy.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import { startTestGateway } from '../support/gateway.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
/** Runs the CLI; resolves with its exit code and output whether it succeeded or not. */
const cli = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return e;
  }
};

const SHIFT = 0.001;

test('replay sends a recording again: zero difference against the same policy (exit 0), reported differences and exit 1 against another', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'paig-replay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // A second policy: the demo policy's actions plus SHIFT, served by a real worker the gateway reaches over ZMQ.
  const shifted = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'shifted', model: 'demo-shifted' });
  shifted.register('inference', (data) => {
    const chunk = demoPolicy(data);
    return { ...chunk, model: 'demo-shifted', action: new Tensor('float32', chunk.action.shape, (chunk.action.data as Float32Array).map((v) => v + SHIFT)) };
  });
  const shiftedEndpoint = await shifted.start();
  t.after(() => shifted.close());

  const gateway = await startTestGateway(t, {
    frameworks: { demo: { embedded: true, record: true }, shifted: { endpoints: [shiftedEndpoint] } },
    defaultFramework: 'demo',
    recording: { dir: join(dir, 'rec') },
  });
  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 10_000 });
  t.after(() => zmq.close());
  for (let i = 0; i < 5; i++) {
    const obs = sampleObservation(i % 2 === 0 ? 'L' : 'S');
    (obs.state as Tensor).data[0] = i; // each request a different state, so each recorded chunk differs
    await zmq.request({ type: 'inference', data: obs, framework: 'demo' });
  }
  await gateway.recorder.set({ on: false });
  await gateway.recorder.flush();
  const [file] = gateway.recorder.files;
  assert.ok(file);

  const info = await cli('record', 'info', file);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /\/demo\/camera\/top\s+3 msgs\s+foxglove\.RawImage \[json\]/);
  assert.match(info.stdout, /\/demo\/action\s+5 msgs\s+paig\.ActionChunk \[json\]/);

  // Same policy, through the ZMQ door at the recorded pace: identical actions.
  const same = await cli('replay', file, '--gateway', gateway.zmqEndpoint, '--rate', '1x', '--compare', '--json');
  assert.equal(same.code, 0, same.stdout + same.stderr);
  const sameSummary = JSON.parse(same.stdout) as { requests: number; compared: number; maxAbs: number; passed: boolean; perJointMaxAbs: number[] };
  assert.deepEqual([sameSummary.requests, sameSummary.compared, sameSummary.maxAbs, sameSummary.passed], [5, 5, 0, true]);
  assert.equal(sameSummary.perJointMaxAbs.length, 14);

  // Another policy, through the HTTP door as fast as possible: every joint off by SHIFT (in float32), exit 1.
  const other = await cli('replay', file, '--framework', 'shifted', '--gateway', gateway.httpUrl, '--rate', 'max', '--compare', '--tolerance', '1e-4');
  assert.equal(other.code, 1, other.stdout + other.stderr);
  assert.match(other.stdout, /FAIL: replayed actions differ/);
  assert.match(other.stdout, /over tolerance 5/);
  const max = Number(/action \|diff\|: max ([\d.e-]+)/.exec(other.stdout)?.[1]);
  assert.ok(Math.abs(max - SHIFT) < 1e-5, `max |diff| ≈ ${SHIFT} (got ${max})`);
  assert.match(other.stdout, /per joint max \|diff\|: j0 1\.00e-3 {2}j1 1\.00e-3/);

  // The same run with a tolerance above the shift passes.
  const tolerant = await cli('replay', file, '--framework', 'shifted', '--gateway', gateway.zmqEndpoint, '--rate', 'max', '--compare', '--tolerance', '0.01');
  assert.equal(tolerant.code, 0, tolerant.stdout + tolerant.stderr);
  assert.match(tolerant.stdout, /PASS/);
});
