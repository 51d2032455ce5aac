// `npm start` as a user runs it: it says where it listens, the README's sample request returns an action chunk,
// and SIGTERM/SIGINT drain and exit 0.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { SAMPLE_CURL } from '../../src/cli/sample.js';
import { freePort } from '../support/endpoints.js';
import { collectOutput } from '../support/child-output.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`npm start prints where it listens, answers the README's curl request, and exits 0 on ${signal}`, async (t) => {
    const httpPort = await freePort();
    const zmqPort = await freePort();
    // Ports through the environment, as documented (PAIG_HTTP_PORT, PAIG_ZMQ_ENDPOINT); `detached` gives the
    // npm → sh → tsx → node chain its own process group so the test can signal and clean up all of it.
    const child = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, PAIG_HTTP_PORT: String(httpPort), PAIG_ZMQ_ENDPOINT: `tcp://127.0.0.1:${zmqPort}`, PAIG_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.after(() => {
      if (child.exitCode === null) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
    const output = collectOutput(child);
    await output.waitFor(/^try: /m, 60_000, 'npm start did not come up');
    const { stdout } = output;
    assert.match(stdout, new RegExp(`HTTP  http://127\\.0\\.0\\.1:${httpPort}`));
    assert.match(stdout, new RegExp(`ZMQ   tcp://127\\.0\\.0\\.1:${zmqPort}`));
    assert.match(stdout, /frameworks: demo \(default\): ready/);

    // The README's one-line request, with this test's port.
    const curl = SAMPLE_CURL.replace('127.0.0.1:8080', `127.0.0.1:${httpPort}`);
    assert.ok(stdout.includes(curl), 'the printed try-line is the README request');
    const { stdout: answer } = await run('bash', ['-c', curl], { timeout: 30_000 });
    const reply = JSON.parse(answer) as { status: string; result: { action: number[][]; model: string } };
    assert.equal(reply.status, 'success');
    assert.equal(reply.result.action.length, 16);
    assert.equal(reply.result.action[0]!.length, 6);
    assert.equal(reply.result.model, 'demo-v1');

    // Signal the gateway process itself (npm and tsx in between only relay); npm then exits with its code.
    const { stdout: ps } = await run('ps', ['-o', 'pid=,args=', '-g', String(child.pid)]);
    const gatewayPid = ps.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[1]?.endsWith('node') && cols.join(' ').includes('src/cli/main.ts serve'))?.[0];
    assert.ok(gatewayPid, `the gateway process in:\n${ps}`);
    process.kill(Number(gatewayPid), signal);
    const code = await exited;
    assert.equal(code, 0, `exit code; stderr:\n${output.stderr}`);
    assert.match(output.stdout, /stopped/);
  });
}
