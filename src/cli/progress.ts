// Live progress for long work (an image pull or build, waiting for a framework to be ready, a replay, a benchmark):
// a bar, or a status line when the amount of work is unknown, redrawn in place on a terminal (cli-progress). When
// the stream is not a terminal (a script, CI, a pipe) nothing is drawn: only the lines passed to `log` appear, as
// plain lines. cli-progress is loaded only when there is a terminal to draw on.
import type { CliIo } from './commands.js';

export interface LiveProgress {
  /** A line of output: above the bar on a terminal, else a plain line on stdout. */
  log(line: string): void;
  /** The work done so far (and the total when it becomes known) and a short status text. */
  update(value: number, fields?: { total?: number; status?: string }): void;
  /** Removes the bar (its timer too); idempotent. */
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  /** Amount of work when known (a bar); without it, a status line with the elapsed time. */
  total?: number;
  /** How values are shown: counts (default) or bytes (MB). */
  unit?: 'items' | 'bytes';
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export async function startProgress(io: CliIo, { label, total, unit = 'items' }: ProgressOptions): Promise<LiveProgress> {
  const stream = io.status;
  if (!stream?.isTTY) {
    return { log: (line) => io.out(line), update: () => undefined, stop: () => undefined };
  }
  const { default: cliProgress } = await import('cli-progress');
  const bar = total === undefined ? `${label} {status} ({duration_formatted})` : `${label} [{bar}] {percentage}% {shown} {status} ({duration_formatted})`;
  const multi = new cliProgress.MultiBar(
    { stream, format: bar, hideCursor: true, clearOnComplete: true, stopOnComplete: false, barsize: 24, fps: 5, autopadding: true },
    cliProgress.Presets.shades_classic,
  );
  let known = total ?? 1;
  const shown = (value: number) => (unit === 'bytes' ? `${mb(value)}/${mb(known)}` : `${value}/${known}`);
  const handle = multi.create(known, 0, { status: '', shown: shown(0) });
  let stopped = false;
  return {
    log(line) {
      if (stopped) io.out(line);
      else multi.log(`${line}\n`);
    },
    update(value, fields = {}) {
      if (stopped) return;
      if (fields.total !== undefined && fields.total !== known) {
        known = fields.total;
        handle.setTotal(known);
      }
      handle.update(total === undefined ? 0 : value, { status: fields.status ?? '', shown: shown(value) });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multi.update(); // draws the last state and the lines logged since the last frame (stop alone drops them)
      multi.stop();
    },
  };
}
