// (In bench/lib so that bench and test share it: test may import bench/lib, never the reverse.)
// A child process's stdout/stderr collected as text, and a wait for a line of its output (e.g. the `try: ` line
// that `serve` prints once it listens), failing with both streams when the child exits or the time runs out.
import assert from 'node:assert/strict';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface ChildOutput {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once `pattern` matches stdout; rejects (AssertionError) if the child's output ends or `timeoutMs` passes first. */
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
    // Checked on every chunk of output and on exit (events, not polling); the timer only bounds the wait.
    waitFor(pattern, timeoutMs, what = `output matching ${pattern}`) {
      return new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          clearTimeout(timer);
          child.stdout.off('data', check);
          child.off('close', exited);
          if (err) reject(err);
          else resolve();
        };
        const fail = (why: string) => done(new assert.AssertionError({ message: `${what} (${why}):\n${stdout}\n${stderr}` }));
        const check = () => {
          if (pattern.test(stdout)) done();
        };
        const exited = () => fail(`exited with ${child.exitCode ?? child.signalCode}`);
        const timer = setTimeout(() => fail(`not within ${timeoutMs} ms`), timeoutMs);
        child.stdout.on('data', check);
        child.on('close', exited); // after the last output, unlike 'exit'
        check();
        if (!pattern.test(stdout) && child.stdout.readableEnded && child.stderr.readableEnded) exited();
      });
    },
  };
}
