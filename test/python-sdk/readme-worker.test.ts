// The README's "A worker of your own" snippet, run exactly as printed (read from README.md here, so a change to the
// README is a change to this test) with the pip-installed SDK (.venv), behind a real gateway, answering the README's
// own request from "Try it" (its curl body). It must say where it listens, and answer with an action chunk.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freeTcpEndpoint } from '../support/python-worker.js';
import { startTestGateway } from '../support/gateway.js';
import { REPO_ROOT, venvPython } from './venv.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The first ```python block after "A worker of your own". */
function readmeWorker(): string {
  const section = README.slice(README.indexOf('A worker of your own'));
  const block = /```python\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'README.md has a python block after "A worker of your own"');
  return block[1]!;
}

/** The JSON body of the README's curl request under "Try it". */
function readmeRequest(): { state: number[] } {
  const curl = /curl -s -X POST \S+\/inference .*-d '([^']+)'/.exec(README);
  assert.ok(curl, 'README.md has the curl inference request');
  return JSON.parse(curl[1]!) as { state: number[] };
}

test("the README's worker snippet, run as printed, serves the README's request through the gateway", async (t) => {
  const python = await venvPython();
  const endpoint = await freeTcpEndpoint();
  // -P and a neutral cwd: only the installed SDK is importable, as for a user's script.
  const child = spawn(python, ['-P', '-c', readmeWorker()], {
    cwd: '/',
    env: { ...process.env, WORKER_ENDPOINT: endpoint, PYTHONPATH: '', PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const lines = () => stderr.split('\n').flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
  // The start line, announced on stderr: wait for it (or for the process to end, which fails the test).
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const line = lines().find((l) => l.event === 'worker.listening');
      if (line) resolve(line);
    });
    void exited.then((code) => reject(new Error(`the README worker exited (${code}) before its start line:\n${stderr}`)));
  });
  assert.deepEqual({ endpoint: started.endpoint, framework: started.framework, model: started.model, ready: started.ready }, { endpoint, framework: 'lerobot', model: 'act', ready: true });

  const gateway = await startTestGateway(t, { defaultFramework: 'lerobot', frameworks: { lerobot: { endpoints: [endpoint], timeoutMs: 10_000 } } });
  await gateway.router.registry.resolve('lerobot').pool.whenReady(AbortSignal.timeout(15_000));
  const request = readmeRequest();
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/lerobot/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  const body = (await res.json()) as { status: string; result: { action: number[][] } };
  assert.equal(res.status, 200, `${JSON.stringify(body)}\nworker stderr:\n${stderr}`);
  assert.equal(body.status, 'success');
  // The snippet's policy holds still: 16 rows, each the state.
  assert.deepEqual(body.result.action, Array.from({ length: 16 }, () => request.state.map((x) => Math.fround(x))));

  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.deepEqual(lines().filter((l) => l.level !== 'info'), [], 'nothing went wrong on the way');
  assert.equal(stdout, '');
});
