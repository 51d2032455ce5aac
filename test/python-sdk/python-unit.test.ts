// Runs the Python SDK's own unit tests (docker/worker-sdk/tests, unittest) so they count in the suite, on both
// interpreters (venv.ts): the pip install users get, with the installed package and not the source folder on the
// path; and Debian's python with the source folder on PYTHONPATH, as the offline worker image runs it.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { SDK_DIR } from '../support/python-worker.js';
import { INTERPRETERS, pythonFor, REPO_ROOT } from './venv.js';

const TESTS_DIR = join(SDK_DIR, 'tests');

/** Interpreter arguments and environment that make `physical_ai_worker` resolve to the install under test. */
function setup(interpreter: 'venv' | 'debian') {
  return interpreter === 'venv'
    ? // -P: no script or current folder on sys.path; the tests folder as discovery's top level (it holds no SDK).
      { flags: ['-P'], top: TESTS_DIR, env: { PYTHONPATH: '' } }
    : { flags: [], top: SDK_DIR, env: { PYTHONPATH: SDK_DIR } };
}

for (const interpreter of INTERPRETERS) {
  test(`${interpreter}: python -m unittest discover (docker/worker-sdk/tests) passes`, async () => {
    const python = await pythonFor(interpreter);
    const { flags, top, env } = setup(interpreter);
    const childEnv = { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: '1' };

    const { stdout: where } = await promisify(execFile)(python, [...flags, '-c', 'import physical_ai_worker; print(physical_ai_worker.__file__)'], { cwd: REPO_ROOT, env: childEnv });
    if (interpreter === 'venv') assert.ok(where.startsWith(join(REPO_ROOT, '.venv', 'lib')), `the pip-installed package, not the source: ${where}`);
    else assert.equal(where.trim(), join(SDK_DIR, 'physical_ai_worker', '__init__.py'));

    const child = spawn(python, [...flags, '-m', 'unittest', 'discover', '-s', TESTS_DIR, '-t', top, '-v'], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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
    assert.doesNotMatch(output, /skipped/, 'hypothesis is installed on both: the fuzz tests ran');
  });
}
