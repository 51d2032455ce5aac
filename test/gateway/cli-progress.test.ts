// Live progress (src/cli/progress.ts): drawn with cli-progress on a terminal, and nothing but the plain lines when
// the output is not a terminal (a script, CI, a pipe).
import assert from 'node:assert/strict';
import { clearLine, cursorTo, moveCursor } from 'node:readline';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { CliIo } from '../../src/cli/commands.js';
import { startProgress } from '../../src/cli/progress.js';

/** A writable that says it is a terminal (what cli-progress asks of process.stderr) and keeps what is drawn. */
function fakeTerminal() {
  const chunks: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      const text = chunks.join('');
      for (const w of waiters.filter((w) => w.pattern.test(text))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      done();
    },
  }) as Writable & Partial<NodeJS.WriteStream>;
  Object.assign(stream, {
    isTTY: true,
    columns: 100,
    cursorTo: (x: number, y?: number) => cursorTo(stream, x, y),
    moveCursor: (dx: number, dy: number) => moveCursor(stream, dx, dy),
    clearLine: (dir: -1 | 0 | 1) => clearLine(stream, dir),
    clearScreenDown: () => true,
    getWindowSize: () => [100, 30],
  });
  /** Resolves once what was drawn matches (the bar redraws on its own timer). */
  const drawn = (pattern: RegExp) => new Promise<void>((resolve) => (pattern.test(chunks.join('')) ? resolve() : waiters.push({ pattern, resolve })));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join(''), drawn };
}

const ioWith = (status: NodeJS.WriteStream | undefined) => {
  const out: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => out.push(l), env: {}, ...(status ? { status } : {}) };
  return { io, out };
};

test('not a terminal: no drawing, only the plain lines', async () => {
  const written: string[] = [];
  const plain = new Writable({ write: (c: Buffer, _e, done) => (written.push(c.toString()), done()) }) as unknown as NodeJS.WriteStream;
  const { io, out } = ioWith(plain);
  const progress = await startProgress(io, { label: 'replay', total: 10 });
  progress.update(3, { status: 'x' });
  progress.log('a line');
  progress.stop();
  progress.stop();
  assert.deepEqual(out, ['a line']);
  assert.deepEqual(written, [], 'nothing drawn on the status stream');
});

test('on a terminal: a bar with the count and the label, lines above it, and the bar removed by stop', async () => {
  const term = fakeTerminal();
  const { io, out } = ioWith(term.stream);
  const progress = await startProgress(io, { label: 'replay', total: 10 });
  progress.update(3, { status: 'sending' });
  await term.drawn(/replay \[[^\]]*\]\s+\d+% 3\/10 sending/);
  progress.log('request 7: max |diff| 1e-3');
  progress.update(10, { status: 'done' });
  progress.stop();
  progress.log('after');
  const drawn = term.text();
  assert.match(drawn, /request 7: max \|diff\| 1e-3/);
  assert.match(drawn, /10\/10 done/);
  assert.deepEqual(out, ['after'], 'once stopped, lines are plain again');
});

test('a status line without a total and a byte bar whose total grows', async () => {
  const term = fakeTerminal();
  const { io } = ioWith(term.stream);
  const waiting = await startProgress(io, { label: 'up lerobot:' });
  waiting.update(0, { status: 'waiting for the worker to be ready' });
  waiting.stop();
  assert.match(term.text(), /up lerobot: waiting for the worker to be ready \(\s*\d+s\)/);
  const pull = await startProgress(io, { label: 'pull x', total: 0, unit: 'bytes' });
  pull.update(1_500_000, { total: 3_000_000, status: '2 layers' });
  pull.stop();
  assert.match(term.text(), /pull x \[[^\]]*\]\s+50% 1\.5 MB\/3\.0 MB 2 layers/);
});
