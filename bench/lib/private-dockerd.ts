// A Docker engine of one's own: dockerd on a socket in a folder, with its own data and exec roots, no iptables and
// no default bridge, so it never touches the machine's engine. Used by the fault run (scripts/fault-run.ts stops
// and restarts it under load) and by the tests' private engines (test/support/private-engine.ts). Needs root.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface Dockerd {
  /** The API socket, `<dir>/docker.sock`. */
  readonly socket: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code when dockerd has exited. */
  readonly exited: Promise<number | null>;
}

export interface DockerdOptions {
  /** Holds the socket, data root, exec root and pid file. */
  dir: string;
  /** Runs dockerd under this command (e.g. `nsenter --net=/run/netns/X`). */
  prefix?: string[];
  /** More dockerd flags (`--tlsverify ...`). */
  extraArgs?: string[];
  /** How long it may take to listen, ms. Default 60 s. */
  listenTimeoutMs?: number;
}

/**
 * Starts dockerd; resolves once its log says the API listens (dockerd announces it: no polling of the socket).
 * Rejects with the end of its log when it exits first or does not listen in time (then it is killed).
 */
export function startDockerd({ dir, prefix = [], extraArgs = [], listenTimeoutMs = 60_000 }: DockerdOptions): Promise<Dockerd> {
  const socket = join(dir, 'docker.sock');
  const args = [`--host=unix://${socket}`, ...extraArgs, `--data-root=${join(dir, 'root')}`, `--exec-root=${join(dir, 'exec')}`, `--pidfile=${join(dir, 'docker.pid')}`, '--storage-driver=overlay2', '--iptables=false', '--bridge=none'];
  const argv = [...prefix, 'dockerd', ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`dockerd did not listen within ${listenTimeoutMs / 1000} s:\n${log.slice(-2000)}`)), listenTimeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('API listen on')) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ socket, process: child, exited });
      }
    });
    void exited.then((code) => fail(new Error(`dockerd exited with ${code} before listening:\n${log.slice(-2000)}`)));
  });
}
