// Child processes of the harness (gateways, workers, reference servers): started, awaited until they print
// their JSON "listening" line, and always stopped (SIGTERM, then SIGKILL), also when the harness dies.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The first JSON line accepted by `ready`. */
  readonly hello: Record<string, unknown>;
  /** Lines of stderr seen so far (last ~200). */
  stderr(): string;
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.once('exit', () => {
    for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Accepts the JSON line that says the child is ready. */
  ready: (msg: Record<string, unknown>) => boolean;
  timeoutMs?: number;
  /** Keep stdin open as a pipe (children that exit when it closes). Default true. */
  stdinPipe?: boolean;
}

/** Spawns a child and resolves when it prints a JSON line that `ready` accepts. */
export async function startChild(o: StartOptions): Promise<Child> {
  installExitHook();
  const spawnOptions: SpawnOptions = { stdio: [o.stdinPipe === false ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: o.env ?? process.env, cwd: o.cwd };
  const child = spawn(o.command, o.args, spawnOptions);
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => (live.delete(child), resolve())));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000);
  });
  const lines = createInterface({ input: child.stdout! });
  const timeoutMs = o.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    lines.close();
  };
  try {
    const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${o.name} did not report ready within ${timeoutMs} ms`)), timeoutMs);
      lines.on('line', (line) => {
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg && typeof msg === 'object' && o.ready(msg as Record<string, unknown>)) resolve(msg as Record<string, unknown>);
      });
      child.once('error', reject);
      void exited.then(() => reject(new Error(`${o.name} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`)));
    });
    return { name: o.name, process: child, hello, stderr: () => stderr, close };
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}\n--- ${o.name} stderr ---\n${stderr}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
