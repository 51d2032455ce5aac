// Starts test/support/ts-worker-main.ts as a real child process and waits until it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ChildWorker extends AsyncDisposable {
  endpoint: string;
  process: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./ts-worker-main.ts', import.meta.url));

export async function spawnTsWorker({ endpoint = 'tcp://127.0.0.1:*', framework = 'test', timeoutMs = 20_000 } = {}): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, endpoint, framework], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    for await (const line of lines) {
      const msg = JSON.parse(line) as { event: string; endpoint: string };
      if (msg.event === 'worker.listening') {
        const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
        const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        };
        return { endpoint: msg.endpoint, process: child, kill, close: () => kill('SIGTERM'), [Symbol.asyncDispose]: () => kill('SIGTERM') };
      }
    }
    if (child.exitCode === null) await once(child, 'exit');
    throw new Error(`worker exited before listening (code ${child.exitCode}): ${stderr}`);
  } finally {
    clearTimeout(timer);
  }
}
