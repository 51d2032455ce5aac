// Runs the Python SDK's own unit tests (docker/worker-sdk/tests, unittest) so they count in the suite.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { PYTHON, SDK_DIR } from '../support/python-worker.js';

test('python3 -m unittest discover (docker/worker-sdk/tests) passes', async () => {
  const child = spawn(PYTHON, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
    cwd: SDK_DIR,
    env: { ...process.env, PYTHONPATH: SDK_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  assert.equal(code, 0, output);
  const ran = /Ran (\d+) tests?/.exec(output);
  assert.ok(ran && Number(ran[1]) >= 30, `expected the whole Python suite to run:\n${output}`);
  assert.match(output, /\nOK/);
});
