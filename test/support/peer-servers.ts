// Real peer SERVERS for the backend tests: openpi's protocol (test/peers/openpi_server.py on openpi-client's own
// msgpack_numpy, in .venv-peers) and GR00T's (test/peers/groot_server.py on Debian's python3). Each is a child process
// that prints "LISTENING <port>" once it serves; `kill()` ends it at once (SIGKILL: a crash, not a shutdown), `close()`
// too and waits for the exit. Starting again on the same port is how the tests bring a server back.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './build.js';
import { ensureOpenpiClient } from './peers.js';
import { PYTHON } from './python-worker.js';

export interface PeerServer extends AsyncDisposable {
  readonly port: number;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** Resolves with the next stdout line matching `pattern` (the servers print `REQUEST <endpoint>` as a request arrives). */
  nextLine(pattern: RegExp): Promise<string>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

async function spawnServer(python: string, script: string, args: string[]): Promise<PeerServer> {
  const child: ChildProcess = spawn(python, [join(ROOT, 'test', 'peers', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = once(child, 'exit').then(() => undefined);
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not listen within 20 s: ${stderr}`)), 20_000);
    lines.on('line', (line) => {
      const m = /^LISTENING (\d+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before listening: ${stderr}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  const nextLine = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        lines.off('line', onLine);
        resolve(line);
      };
      lines.on('line', onLine);
      void exited.then(() => reject(new Error(`${script} exited before printing ${pattern}`)));
    });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    lines.close();
  };
  return { port, pid: child.pid!, exited, nextLine, kill, close: kill, [Symbol.asyncDispose]: kill };
}

/** openpi's protocol on 127.0.0.1:`port` (0: a free one), sending `metadata` first. */
export async function startOpenpiServer(port = 0, metadata: Record<string, unknown> = {}): Promise<PeerServer> {
  return spawnServer(await ensureOpenpiClient(), 'openpi_server.py', [String(port), JSON.stringify(metadata)]);
}

/** GR00T's protocol on tcp://127.0.0.1:`port` (0: a free one), requiring `apiToken` when given. */
export function startGrootServer(port = 0, apiToken?: string): Promise<PeerServer> {
  return spawnServer(PYTHON, 'groot_server.py', [String(port), ...(apiToken ? [apiToken] : [])]);
}
