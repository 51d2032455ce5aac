// Fault run: a real gateway with real Python SDK workers under a client load (6 loops: both doors, S and L), while
// faults are injected over and over. Per fault: requests sent, ok, errors by code, hung (no answer within deadline
// + grace: must be 0), misrouted (an answer that is not this request's: must be 0), and time to recover (the first
// ok answer to a request sent after the fault was injected, counted from the release: restart or SIGCONT).
//
//   node --import tsx scripts/fault-run.ts [--seconds 60] [--no-netns] [--no-docker] [--out bench/results]
//
// Faults: `kill-restart` (SIGKILL the worker, start a new one on the same port), `stop-cont` (SIGSTOP for 2 s, then
// SIGCONT: the worker then answers requests the gateway has already timed out), and, when `ip netns` works (root),
// `netem`: the worker in one network namespace, the gateway and the client in another, joined by a veth pair with
// `netem delay 20ms loss 1%` on both ends (or, on kernels
// without netem, tbf at 20 Mbit/s plus a 1% iptables random drop), load on it and a kill-restart across it. Both namespaces and every address
// in them are this run's own (10.200.<n>.0/30 inside the pair only); they are deleted at the end, and so is every
// process started.
//
// Docker part (when `dockerd` and the offline worker image are on this host; --no-docker skips it): a private dockerd
// of the run's own (own socket, data and exec roots, no bridge, no iptables; the image copied in with docker save |
// docker load), a gateway whose `demo` framework is a container that the gateway starts on demand on that engine, and
// under the same load `container-kill` (docker kill of the framework's container: the next requests start it again)
// and `engine-restart` (the engine stopped with SIGTERM, which stops its containers, and started again on the same
// data root). The engine, its folder and its containers are gone at the end; the engine the rest of the host uses is
// never touched.
//
// Results: bench/results/reliability-faults.json and the fault section of bench/results/reliability.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config.js';
import { buildGateway, type Gateway } from '../src/build-gateway.js';
import { DockerManager } from '../src/docker/docker-manager.js';
import type { FrameworkSpec } from '../src/docker/framework-spec.js';
import { machineInfo, roundLoad } from '../bench/lib/machine.js';
import { startDockerd, type Dockerd } from '../bench/lib/private-dockerd.js';
import { ReliabilityClient, runLoad, type Outcome } from '../bench/lib/reliability-load.js';
import { writeReliabilityMarkdown } from '../bench/lib/reliability-report.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SDK_DIR = join(ROOT, 'docker/worker-sdk');
const PYTHON = '/usr/bin/python3';
const DEADLINE_MS = 1000;
const GRACE_MS = 2000;

export type FaultName = 'baseline' | 'kill-restart' | 'stop-cont' | 'netem' | 'netem-kill-restart' | 'container-kill' | 'engine-restart';
const WORKER_IMAGE = 'physical-ai-gateway/worker:local';

export interface FaultStats {
  fault: FaultName;
  /** How many times this fault was injected. */
  injections: number;
  sent: number;
  ok: number;
  errors: Record<string, number>;
  hung: number;
  misrouted: number;
  /** Per injection: ms from release (restart/SIGCONT) to the first ok answer to a request sent after injection. */
  recover_ms: number[];
  /** Per injection: ms from injection to that first ok answer. */
  outage_ms: number[];
  /** Injections after which no ok answer came within the window. */
  not_recovered: number;
}

export interface FaultRunReport {
  date: string;
  seconds: number;
  concurrency: number;
  deadline_ms: number;
  grace_ms: number;
  /** Whether the netns part ran, and how the link was shaped (or why it did not run). */
  netns: { ran: boolean; note: string };
  /** Whether the Docker part ran (or why it did not). */
  docker: { ran: boolean; note: string };
  faults: FaultStats[];
  totals: { sent: number; ok: number; hung: number; misrouted: number };
}

// ---- processes ---------------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export interface Worker {
  readonly pid: number;
  readonly endpoint: string;
  signal(sig: NodeJS.Signals): void;
  /** SIGCONT + SIGKILL, resolves when gone. Idempotent. */
  close(): Promise<void>;
}

/** A Python SDK worker (demo policy) bound to `endpoint`, optionally inside network namespace `netns`. */
export async function startWorker(endpoint: string, { netns, startTimeoutMs = 20_000 }: { netns?: string; startTimeoutMs?: number } = {}): Promise<Worker> {
  const args = ['-m', 'physical_ai_worker', '--endpoint', endpoint, '--framework', 'demo', '--policy', 'demo', '--capacity', '2', '--log-level', 'warning'];
  // `ip netns exec` execs the command after entering the namespace: the pid is Python's.
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, PYTHON, ...args]] : [PYTHON, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONPATH: [SDK_DIR].join(delimiter), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => (live.delete(child), resolve())));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let out = '';
  const listening = new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('"worker.listening"')) resolve();
      if (out.length > 100_000) out = out.slice(-1000);
    });
    void exited.then(() => reject(new Error(`worker exited before listening: ${stderr}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([listening, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`worker did not listen within ${startTimeoutMs} ms: ${stderr}`)), startTimeoutMs)))]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  let closing: Promise<void> | undefined;
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    endpoint,
    signal: (sig) => {
      if (running()) child.kill(sig);
    },
    close: () =>
      (closing ??= (async () => {
        if (running()) {
          child.kill('SIGCONT');
          child.kill('SIGKILL');
        }
        await exited;
      })()),
  };
}

async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startGateway(endpoint: string): Promise<Gateway> {
  const config = parseConfig(
    { healthIntervalMs: 200, frameworks: { demo: { endpoints: [endpoint], timeoutMs: DEADLINE_MS, maxConcurrency: 32 } } },
    { httpPort: 0, httpHost: '127.0.0.1', zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  return buildGateway(config);
}

// ---- network namespaces ------------------------------------------------------------------------------------

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

/** Whether this process may create network namespaces (root, `ip` present, the kernel allows it). */
export function netnsAvailable(): true | string {
  const name = `paig-probe-${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  const tc = spawnSync('tc', ['-V'], { encoding: 'utf8' });
  if (tc.status !== 0) return 'tc (iproute2) not found';
  return true;
}

export interface NetnsPair {
  /** What shapes the link: netem where the kernel has it, else tbf + an iptables random drop. */
  shaping: string;
  worker: string;
  gateway: string;
  workerAddress: string;
  /** Kills what runs in the namespaces and deletes them (the veth pair goes with them). Idempotent. */
  close(): void;
}

/**
 * Two namespaces joined by a veth pair, the link slowed on both ends; addresses exist only inside the pair. netem
 * (delay + loss) where the kernel has it; kernels without sch_netem (this sandbox's) get tbf (a 20 Mbit/s link with
 * up to 50 ms of queue: an L request, 450 kB, takes ~180 ms) and an iptables `statistic` rule dropping the same
 * share of incoming packets on the veth.
 */
export function createNetnsPair({ delay = '20ms', loss = '1%' } = {}): NetnsPair {
  const id = `${process.pid % 10000}`;
  const subnet = 10 + (process.pid % 200); // 10.200.<subnet>.0/30: one per run
  const [a, b] = [`paig-w-${id}`, `paig-g-${id}`];
  const [va, vb] = [`pw${id}`, `pg${id}`];
  let closed = false;
  let shaping = `netem delay ${delay} loss ${loss}`;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const ns of [a, b]) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
  };
  try {
    ip('netns', 'add', a);
    ip('netns', 'add', b);
    ip('link', 'add', va, 'netns', a, 'type', 'veth', 'peer', 'name', vb, 'netns', b);
    ip('-n', a, 'addr', 'add', `10.200.${subnet}.1/30`, 'dev', va);
    ip('-n', b, 'addr', 'add', `10.200.${subnet}.2/30`, 'dev', vb);
    for (const [ns, dev] of [[a, va], [b, vb]] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
      const exec = (...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
      const netem = exec('tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', delay, 'loss', loss);
      if (netem.status === 0) continue;
      if (!/unknown/i.test(netem.stderr)) throw new Error(`tc netem in ${ns}: ${netem.stderr}`);
      shaping = `tbf rate 20mbit latency 50ms + iptables random drop ${loss} (no sch_netem in this kernel)`;
      const tbf = exec('tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '20mbit', 'burst', '32kbit', 'latency', '50ms');
      if (tbf.status !== 0) throw new Error(`tc tbf in ${ns}: ${tbf.stderr}`);
      const drop = exec('iptables', '-A', 'INPUT', '-i', dev, '-m', 'statistic', '--mode', 'random', '--probability', String(Number.parseFloat(loss) / 100), '-j', 'DROP');
      if (drop.status !== 0) throw new Error(`iptables in ${ns}: ${drop.stderr}`);
    }
  } catch (err) {
    close();
    throw err;
  }
  return { shaping, worker: a, gateway: b, workerAddress: `10.200.${subnet}.1`, close };
}

// ---- the run -------------------------------------------------------------------------------------------------

class Windows {
  readonly stats = new Map<FaultName, FaultStats>();
  #current: FaultStats | undefined;
  #firstOkAfter: { at: number; resolve: (t: number) => void } | undefined;

  open(fault: FaultName): FaultStats {
    let s = this.stats.get(fault);
    if (!s) this.stats.set(fault, (s = { fault, injections: 0, sent: 0, ok: 0, errors: {}, hung: 0, misrouted: 0, recover_ms: [], outage_ms: [], not_recovered: 0 }));
    this.#current = s;
    return s;
  }

  record(o: Outcome): void {
    const s = this.#current;
    if (!s) return;
    s.sent++;
    if (o.kind === 'ok') s.ok++;
    else if (o.kind === 'hung') s.hung++;
    else if (o.kind === 'misrouted') s.misrouted++;
    else s.errors[o.code ?? 'unknown'] = (s.errors[o.code ?? 'unknown'] ?? 0) + 1;
    if (o.kind === 'ok' && this.#firstOkAfter && o.sentAt >= this.#firstOkAfter.at) {
      this.#firstOkAfter.resolve(o.doneAt);
      this.#firstOkAfter = undefined;
    }
  }

  /** Resolves with the time of the first ok answer to a request sent at or after `at`, or undefined after `timeoutMs`. */
  firstOkAfter(at: number, timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#firstOkAfter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.#firstOkAfter = { at, resolve: (t) => (clearTimeout(timer), resolve(t)) };
    });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FaultContext {
  windows: Windows;
  worker: () => Worker;
  restart: () => Promise<void>;
}

async function inject(ctx: FaultContext, fault: FaultName, { stopMs = 2000, downMs = 500, recoverWithinMs = 15_000 } = {}): Promise<void> {
  await injectWith(ctx.windows, fault, recoverWithinMs, async () => {
    if (fault === 'kill-restart' || fault === 'netem-kill-restart') {
      ctx.worker().signal('SIGKILL');
      await ctx.worker().close();
      await sleep(downMs);
      await ctx.restart();
    } else if (fault === 'stop-cont') {
      ctx.worker().signal('SIGSTOP');
      await sleep(stopMs);
      ctx.worker().signal('SIGCONT');
    }
    return performance.now();
  });
}

/**
 * Opens the fault's window, runs `act` (resolves with the release time), then waits for the first ok answer to a
 * request sent after the injection, or (`fromRelease`) after the release: a container or an engine being stopped
 * may still answer requests sent while it goes down.
 */
async function injectWith(windows: Windows, fault: FaultName, recoverWithinMs: number, act: () => Promise<number>, { fromRelease = false } = {}): Promise<void> {
  const s = windows.open(fault);
  s.injections++;
  const injectedAt = performance.now();
  const early = fromRelease ? undefined : windows.firstOkAfter(injectedAt, recoverWithinMs);
  const releasedAt = await act();
  const okAt = await (early ?? windows.firstOkAfter(releasedAt, recoverWithinMs));
  if (okAt === undefined) s.not_recovered++;
  else {
    s.recover_ms.push(Math.round(Math.max(0, okAt - releasedAt)));
    s.outage_ms.push(Math.round(okAt - injectedAt));
  }
  await sleep(1000); // the window goes on a little past recovery
}

export interface FaultRunOptions {
  seconds: number;
  concurrency?: number;
  /** Run the netns part (true: probe; false: skip). */
  netns?: boolean;
  /** Run the Docker part (true: probe; false: skip). */
  docker?: boolean;
  /** Requests at most, all windows together. */
  maxRequests?: number;
  log?: (line: string) => void;
}

/** Loopback part: one worker on a fixed port behind a gateway; faults cycle until `seconds` have passed. */
async function loopbackRun(o: FaultRunOptions, windows: Windows): Promise<void> {
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  let worker = await startWorker(endpoint);
  const gateway = await startGateway(endpoint);
  const client = new ReliabilityClient({ httpUrl: gateway.httpUrl, zmqEndpoint: gateway.zmqEndpoint }, { deadlineMs: DEADLINE_MS, graceMs: GRACE_MS });
  const stop = new AbortController();
  const until = Date.now() + o.seconds * 1000;
  const hardStop = setTimeout(() => stop.abort(), o.seconds * 1000 + 60_000);
  try {
    windows.open('baseline');
    const load = runLoad(client, { concurrency: o.concurrency ?? 6, deadlineMs: DEADLINE_MS, graceMs: GRACE_MS, maxRequests: o.maxRequests ?? 2_000_000, signal: stop.signal, onOutcome: (x) => windows.record(x) });
    await sleep(1500);
    const ctx: FaultContext = { windows, worker: () => worker, restart: async () => void (worker = await startWorker(endpoint)) };
    const cycle: FaultName[] = ['kill-restart', 'stop-cont'];
    for (let i = 0; Date.now() < until || i < cycle.length; i++) {
      const fault = cycle[i % cycle.length]!;
      o.log?.(`[fault-run] ${fault} #${Math.floor(i / cycle.length) + 1}`);
      await inject(ctx, fault);
      windows.open('baseline');
      await sleep(500);
    }
    stop.abort();
    await load;
  } finally {
    clearTimeout(hardStop);
    stop.abort();
    await client.close();
    await gateway.close(500);
    await worker.close();
  }
}

/**
 * The netns part runs in a child process inside the gateway's namespace (its loopback is the namespace's own), with
 * the worker in the other; the child prints its windows as JSON.
 */
async function netnsRun(o: FaultRunOptions, windows: Windows): Promise<{ ran: boolean; note: string }> {
  const probe = netnsAvailable();
  if (probe !== true) return { ran: false, note: probe };
  const pair = createNetnsPair();
  try {
    const seconds = Math.max(4, Math.round(o.seconds / 3));
    const child = spawn('ip', ['netns', 'exec', pair.gateway, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--netns-child', pair.worker, '--worker-address', pair.workerAddress, '--seconds', String(seconds), '--concurrency', String(o.concurrency ?? 6)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    live.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 90) * 1000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(killer);
    live.delete(child);
    if (code !== 0) throw new Error(`netns child exited with ${code}: ${out.slice(-2000)}`);
    const line = out.trim().split('\n').pop()!;
    for (const s of JSON.parse(line) as FaultStats[]) windows.stats.set(s.fault, s);
    return { ran: true, note: pair.shaping };
  } finally {
    pair.close();
  }
}

async function netnsChild(workerNs: string, workerAddress: string, seconds: number, concurrency: number): Promise<void> {
  const windows = new Windows();
  const endpoint = `tcp://${workerAddress}:5555`;
  let worker = await startWorker(endpoint, { netns: workerNs });
  const gateway = await startGateway(endpoint);
  const client = new ReliabilityClient({ httpUrl: gateway.httpUrl, zmqEndpoint: gateway.zmqEndpoint }, { deadlineMs: DEADLINE_MS, graceMs: GRACE_MS });
  const stop = new AbortController();
  try {
    const netem = windows.open('netem');
    netem.injections = 1;
    const load = runLoad(client, { concurrency, deadlineMs: DEADLINE_MS, graceMs: GRACE_MS, maxRequests: 1_000_000, signal: stop.signal, onOutcome: (x) => windows.record(x) });
    await sleep(seconds * 1000);
    const ctx: FaultContext = { windows, worker: () => worker, restart: async () => void (worker = await startWorker(endpoint, { netns: workerNs })) };
    await inject(ctx, 'netem-kill-restart');
    stop.abort();
    await load;
  } finally {
    stop.abort();
    await client.close();
    await gateway.close(500);
    await worker.close();
  }
  process.stdout.write(`${JSON.stringify([...windows.stats.values()])}\n`);
}

// ---- Docker: a private engine ---------------------------------------------------------------------------------

type Engine = Dockerd;

/** Whether the Docker part can run: dockerd on the PATH and the offline worker image in the host's engine. */
export function dockerAvailable(): true | string {
  if (spawnSync('dockerd', ['--version']).status !== 0) return 'dockerd not found';
  if (spawnSync('docker', ['image', 'inspect', WORKER_IMAGE], { stdio: 'ignore' }).status !== 0) return `${WORKER_IMAGE} not built (scripts/build-test-images.sh)`;
  return true;
}

/** Starts dockerd on `dir` (bench/lib/private-dockerd.ts), killed with the run's other children if the run dies. */
async function startEngine(dir: string): Promise<Engine> {
  const engine = await startDockerd({ dir });
  live.add(engine.process);
  void engine.exited.then(() => live.delete(engine.process));
  return engine;
}

function runPiped(cmd: string, args: string[], input?: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    if (input) input.stdout!.pipe(child.stdin!);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** Unmounts what a stopped dockerd leaves under `dir`, so the folder can be removed. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
  for (const m of mounts.sort().reverse()) await runPiped('umount', ['-l', m]).catch(() => undefined);
}

/** The Docker part: `demo` in a container started on demand on a private engine; container kills and engine restarts. */
async function dockerRun(o: FaultRunOptions, windows: Windows): Promise<{ ran: boolean; note: string }> {
  const probe = dockerAvailable();
  if (probe !== true) return { ran: false, note: probe };
  const dir = await mkdtemp('/tmp/pag-fault-engine-');
  let engine = await startEngine(dir);
  let manager: DockerManager | undefined;
  let gateway: Gateway | undefined;
  let client: ReliabilityClient | undefined;
  const stop = new AbortController();
  try {
    const save = spawn('docker', ['save', WORKER_IMAGE], { stdio: ['ignore', 'pipe', 'inherit'] });
    await runPiped('docker', ['-H', `unix://${engine.socket}`, 'load'], save);
    manager = new DockerManager({ docker: { socketPath: engine.socket } });
    const spec: FrameworkSpec = { name: 'demo', image: WORKER_IMAGE, networkMode: 'host', port: await freePort(), containerName: `pag-fault-${process.pid}-demo`, readyTimeoutMs: 30_000, stopTimeoutS: 1 };
    const config = parseConfig(
      { healthIntervalMs: 200, frameworks: { demo: { launcher: 'demo', timeoutMs: DEADLINE_MS, maxConcurrency: 32, startTimeoutMs: 30_000 } } },
      { httpPort: 0, httpHost: '127.0.0.1', zmqEndpoint: 'tcp://127.0.0.1:*' },
    );
    gateway = await buildGateway(config, { docker: { specs: [spec], manager } });
    client = new ReliabilityClient({ httpUrl: gateway.httpUrl, zmqEndpoint: gateway.zmqEndpoint }, { deadlineMs: DEADLINE_MS, graceMs: GRACE_MS });
    // The first requests start the container (its start takes longer than one request's deadline).
    windows.open('baseline');
    const load = runLoad(client, { concurrency: o.concurrency ?? 6, deadlineMs: DEADLINE_MS, graceMs: GRACE_MS, maxRequests: o.maxRequests ?? 2_000_000, signal: stop.signal, onOutcome: (x) => windows.record(x) });
    if ((await windows.firstOkAfter(performance.now(), 60_000)) === undefined) throw new Error('the framework container never served');
    const socket = () => `unix://${engine.socket}`;
    const until = Date.now() + Math.max(8, Math.round(o.seconds / 2)) * 1000;
    const cycle: FaultName[] = ['container-kill', 'engine-restart'];
    for (let i = 0; Date.now() < until || i < cycle.length; i++) {
      const fault = cycle[i % cycle.length]!;
      o.log?.(`[fault-run] ${fault} #${Math.floor(i / cycle.length) + 1}`);
      await injectWith(windows, fault, 60_000, async () => {
        if (fault === 'container-kill') await runPiped('docker', ['-H', socket(), 'kill', spec.containerName!]);
        else {
          engine.process.kill('SIGTERM');
          await engine.exited;
          engine = await startEngine(dir);
        }
        return performance.now();
      }, { fromRelease: true });
      windows.open('baseline');
      await sleep(500);
    }
    stop.abort();
    await load;
    return { ran: true, note: 'a private dockerd (own socket and data root), the framework in a container started on demand' };
  } finally {
    stop.abort();
    await client?.close();
    await gateway?.close(500);
    await manager?.close();
    engine.process.kill('SIGTERM');
    await engine.exited;
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function runFaults(o: FaultRunOptions): Promise<FaultRunReport> {
  const windows = new Windows();
  await loopbackRun(o, windows);
  const netns = o.netns === false ? { ran: false, note: 'skipped (--no-netns)' } : await netnsRun(o, windows);
  const docker = o.docker === false ? { ran: false, note: 'skipped (--no-docker)' } : await dockerRun(o, windows);
  const faults = [...windows.stats.values()];
  const sum = (f: (s: FaultStats) => number) => faults.reduce((a, s) => a + f(s), 0);
  return {
    date: new Date().toISOString(),
    seconds: o.seconds,
    concurrency: o.concurrency ?? 6,
    deadline_ms: DEADLINE_MS,
    grace_ms: GRACE_MS,
    netns,
    docker,
    faults,
    totals: { sent: sum((s) => s.sent), ok: sum((s) => s.ok), hung: sum((s) => s.hung), misrouted: sum((s) => s.misrouted) },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      concurrency: { type: 'string', default: '6' },
      'no-netns': { type: 'boolean', default: false },
      'no-docker': { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, 'bench/results') },
      'netns-child': { type: 'string' },
      'worker-address': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  if (!(seconds > 0 && seconds <= 3600) || !(concurrency >= 1 && concurrency <= 16)) throw new Error('--seconds 1..3600, --concurrency 1..16');
  if (values['netns-child']) return netnsChild(values['netns-child'], values['worker-address']!, seconds, concurrency);
  const loadBefore = roundLoad();
  const report = await runFaults({ seconds, concurrency, netns: !values['no-netns'], docker: !values['no-docker'], log: (l) => process.stderr.write(`${l}\n`) });
  const machine = { ...machineInfo(), load_before: loadBefore, load_after: roundLoad() };
  mkdirSync(values.out!, { recursive: true });
  writeFileSync(join(values.out!, 'reliability-faults.json'), `${JSON.stringify({ ...report, machine }, null, 2)}\n`);
  writeReliabilityMarkdown(values.out!);
  process.stdout.write(`${JSON.stringify(report.totals)}\n`);
  if (report.totals.hung > 0 || report.totals.misrouted > 0) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
