// The CLI's client commands against a real gateway: `infer` over each front door and codec, `frameworks`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startTestGateway } from '../support/gateway.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000 });

test('infer prints the demo chunk and timings over ZMQ (each codec) and HTTP; frameworks prints the status table', async (t) => {
  const gateway = await startTestGateway(t);
  const dir = await mkdtemp(join(tmpdir(), 'paig-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'obs.json'), JSON.stringify({ state: [1, 2, 3], instruction: 'wave' }));

  for (const codec of ['binary', 'msgpack', 'json']) {
    const { stdout } = await cli('infer', '--endpoint', gateway.zmqEndpoint, '--codec', codec, '--count', '3');
    assert.match(stdout, new RegExp(`via ZMQ ${codec}`));
    assert.match(stdout, codec === 'json' ? /action: nested list \[16, 14\]/ : /action: float32 \[16, 14\]/);
    assert.match(stdout, /\[0\] 0\.0100 0\.1100/); // state[j] = j/10 in the sample, plus 0.01
    assert.match(stdout, /round trip: /);
  }
  for (const codec of ['binary', 'json']) {
    const { stdout } = await cli('infer', '--http', '--url', gateway.httpUrl, '--codec', codec, '--sample', 'S');
    assert.match(stdout, codec === 'json' ? /via HTTP JSON/ : /via HTTP msgpack/);
    assert.match(stdout, /\[3\] 0\.0400 0\.1400/);
  }
  const fromFile = await cli('infer', '--endpoint', gateway.zmqEndpoint, '--file', join(dir, 'obs.json'));
  assert.match(fromFile.stdout, /\[0\] 1\.0100 2\.0100 3\.0100/);
  assert.match(fromFile.stdout, /instruction: "wave"/);

  const { stdout } = await cli('frameworks', '--url', gateway.httpUrl);
  assert.match(stdout, /FRAMEWORK\s+STATE/);
  assert.match(stdout, /demo \*\s+ready/);

  await assert.rejects(cli('infer', '--endpoint', gateway.zmqEndpoint, '--codec', 'xml'), (err: { code: number; stderr: string }) => err.code !== 0 && /--codec must be/.test(err.stderr));
});
