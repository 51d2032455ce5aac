// The two ways the tests run the Python worker SDK:
//   venv   — as users install it: `.venv/bin/python` from scripts/ensure-python-env.sh (pyenv's python3, a wheel
//            built from docker/worker-sdk installed with pip, its dependencies and the [otel] extra from PyPI).
//   debian — as the offline worker image runs it: Debian's /usr/bin/python3 with python3-zmq 24, python3-msgpack
//            1.0.3 and python3-numpy 1.24, the source folder on PYTHONPATH (docker/worker-base/Dockerfile.offline).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PYTHON, type PythonWorker } from '../support/python-worker.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export type Interpreter = 'venv' | 'debian';
export const INTERPRETERS: readonly Interpreter[] = ['venv', 'debian'];

let ensured: Promise<string> | undefined;

/**
 * The venv's python, after scripts/ensure-python-env.sh brought the install up to date with the SDK's files (under a
 * second when nothing changed; a fresh install takes about 40 s). Once per test process.
 */
export function venvPython(): Promise<string> {
  ensured ??= (async () => {
    const { stdout } = await promisify(execFile)('bash', ['scripts/ensure-python-env.sh'], { cwd: REPO_ROOT, timeout: 600_000 });
    return stdout.trim().split('\n').at(-1)!;
  })();
  return ensured;
}

export async function pythonFor(which: Interpreter): Promise<string> {
  return which === 'venv' ? venvPython() : PYTHON;
}

/** A worker's stderr as JSON log lines (lines that are not JSON are skipped). */
export function logLines(worker: PythonWorker): Array<Record<string, unknown>> {
  return worker
    .stderr()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Resolves with the first log line that matches, as soon as the worker writes it (or rejects after `timeoutMs`). */
export function waitForLog(worker: PythonWorker, match: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const stream = worker.process.stderr!;
    const check = () => {
      const found = logLines(worker).find(match);
      if (!found) return;
      stream.off('data', onData);
      clearTimeout(timer);
      resolve(found);
    };
    // Our listener runs after python-worker.ts's, which appends the chunk to stderr(); defer to be safe either way.
    const onData = () => setImmediate(check);
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${worker.stderr()}`));
    }, timeoutMs);
    stream.on('data', onData);
    check();
  });
}
