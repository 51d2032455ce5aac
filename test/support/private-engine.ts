// A private Docker engine for tests that must not touch the shared one (kill it, make it a swarm manager, run it in
// a network namespace): own socket, data and exec roots, no bridge, no iptables; the test image copied in with
// docker save | docker load; everything (swarm, its gateway bridge, mounts, folders) undone by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { startDockerd } from '../../bench/lib/private-dockerd.js';
import { TEST_IMAGE } from './docker.js';

export interface PrivateEngine {
  dir: string;
  socket: string;
  /** `unix://<socket>` */
  host: string;
  process: ChildProcess;
  exited: Promise<number | null>;
  /** Runs the docker CLI against this engine; resolves with its stdout. */
  cli(...args: string[]): Promise<string>;
  /** The Linux bridge initSwarm() made for the swarm's gateway network (stopEngine() removes it). */
  bridge?: string;
}

/** Runs a command; rejects with its stderr when it exits non-zero. `input` pipes another process's stdout in; `env` adds to the environment. */
export function run(cmd: string, args: string[], { input, prefix = [], env }: { input?: ChildProcess; prefix?: string[]; env?: Record<string, string> } = {}): Promise<string> {
  const argv = [...prefix, cmd, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: env && { ...process.env, ...env } });
    if (input) input.stdout!.pipe(child.stdin!);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`))));
  });
}

/**
 * Starts dockerd on `dir` (a fresh temp folder when absent) and resolves once its log says the API listens (an event,
 * not a poll). `prefix` runs it under another command (`nsenter --net=/run/netns/X`); `extraArgs` adds flags.
 */
export async function startEngine({ dir, prefix = [], extraArgs = [] }: { dir?: string; prefix?: string[]; extraArgs?: string[] } = {}): Promise<PrivateEngine> {
  const root = dir ?? (await mkdtemp('/tmp/pag-engine-'));
  const { socket, process, exited } = await startDockerd({ dir: root, prefix, extraArgs });
  const cli = (...a: string[]) => run('docker', ['-H', `unix://${socket}`, ...a]);
  return { dir: root, socket, host: `unix://${socket}`, process, exited, cli };
}

/** Copies an image of the shared engine into `engine`. */
export async function loadImage(engine: PrivateEngine, image = TEST_IMAGE): Promise<void> {
  const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
  await run('docker', ['-H', engine.host, 'load'], { input: save });
}

/**
 * Makes `engine` a single-node swarm manager on 127.0.0.1 without touching shared names: its gateway bridge is made
 * first under a name and subnet of its own (docker_gwbridge would otherwise be one Linux bridge for every engine),
 * and its control and data ports are its own. Undone by stopEngine().
 */
export async function initSwarm(engine: PrivateEngine, { listenPort, dataPort }: { listenPort: number; dataPort: number }): Promise<void> {
  const id = randomBytes(2).toString('hex');
  engine.bridge = `pag-gw-${id}`;
  const subnet = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2), 16)}.0/24`;
  await engine.cli(
    'network', 'create', '--driver', 'bridge', '--subnet', subnet,
    '-o', `com.docker.network.bridge.name=pag-gw-${id}`,
    '-o', 'com.docker.network.bridge.enable_icc=false',
    '-o', 'com.docker.network.bridge.enable_ip_masquerade=false',
    'docker_gwbridge',
  );
  await engine.cli('swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${listenPort}`, '--data-path-port', String(dataPort));
}

/** Unmounts what a stopped dockerd leaves under `dir` (its netns mount), so the folder can be removed. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
  for (const m of mounts.sort().reverse()) await run('umount', ['-l', m]).catch(() => undefined);
}

/**
 * Leaves the swarm (when in one), removes every container and the gateway bridge, stops dockerd and removes its
 * folder. Returns what could not be undone (empty when all went).
 */
export async function stopEngine(engine: PrivateEngine): Promise<string[]> {
  const left: string[] = [];
  if (engine.process.exitCode === null) {
    await engine.cli('swarm', 'leave', '--force').catch(() => undefined);
    // Leaving the swarm removes its tasks' containers by itself, concurrently: a container gone (or going) meanwhile
    // is not left over; one still listed afterwards is.
    const ids = await engine.cli('ps', '-aq').catch(() => '');
    if (ids) await engine.cli('rm', '-f', ...ids.split('\n')).catch(() => undefined);
    const still = await engine.cli('ps', '-aq').catch(() => '');
    if (still) await engine.cli('rm', '-f', ...still.split('\n')).catch((err: unknown) => left.push(`containers: ${String(err)}`));
    await engine.cli('network', 'rm', 'docker_gwbridge').catch(() => undefined);
    engine.process.kill('SIGTERM');
  }
  await engine.exited;
  await unmountUnder(engine.dir);
  if (engine.bridge) {
    // `network rm` fails while a task's container is still being removed, and a stopped dockerd leaves its bridges:
    // take this engine's bridge down here, with any veth still attached to it.
    const attached = await run('ip', ['-o', 'link', 'show', 'master', engine.bridge]).catch(() => '');
    for (const line of attached.split('\n')) {
      const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
      if (name) await run('ip', ['link', 'delete', name]).catch(() => undefined);
    }
    await run('ip', ['link', 'delete', engine.bridge]).catch(() => undefined); // already gone: fine
    const still = await run('ip', ['-br', 'link', 'show', engine.bridge]).catch(() => '');
    if (still.trim()) left.push(`bridge ${engine.bridge}`);
  }
  await rm(engine.dir, { recursive: true, force: true }).catch((err: unknown) => left.push(`${engine.dir}: ${String(err)}`));
  return left;
}
