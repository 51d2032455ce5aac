// A child process's stdout/stderr collected as text, and a wait for a line of its output (e.g. the `try: ` line
// that `serve` prints once it listens), failing with both streams when the child exits or the time runs out.
import assert from 'node:assert/strict';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface ChildOutput {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once `pattern` matches stdout; rejects (AssertionError) if the child exits or `timeoutMs` passes first. */
  waitFor(pattern: RegExp, timeoutMs: number, what?: string): Promise<void>;
}

export function collectOutput(child: ChildProcessByStdio<null, Readable, Readable>): ChildOutput {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitFor(pattern, timeoutMs, what = `output matching ${pattern}`) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(stdout)) {
        assert.ok(Date.now() < until && child.exitCode === null, `${what}:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
