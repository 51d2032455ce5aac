// Starts what the selected configurations need on loopback: TS and Python SDK workers, one gateway per
// transport (its ZMQ front door and its worker hops on that transport), the raw zeromq.js server and the
// GR00T-style Python pair; and builds a driver per (path, transport, worker). Closes all of it in reverse.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startChild, type Child } from './children.js';
import { DirectLeaseDriver, HttpDriver, MemcpyDriver, ProtocolZmqDriver, PythonRefDriver, RawZmqDriver, type Driver } from './drivers.js';
import type { BenchConfig, BenchOptions, Transport, WorkerKind } from './matrix.js';
import { RUNTIME_NODE_FLAGS } from '../../src/lib/node-flags.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PYTHON = '/usr/bin/python3';
// The product's runtime flags on every Node server here, the raw reference included, so all run alike.
const TSX_ARGS = [...RUNTIME_NODE_FLAGS, '--import', 'tsx'];
/**
 * Header limit of the gateways and workers started here: above the product default (16 MiB) so the original
 * JSON codec, whose header holds every tensor as number lists (10 MB at XL), fits with room for larger payloads.
 * Binary and msgpack paths are not affected (their headers are small, or checked against the message limit).
 */
export const MAX_HEADER_BYTES = 64 * 1024 * 1024;

export class Environment {
  readonly #opts: BenchOptions;
  readonly #children: Child[] = [];
  readonly #drivers = new Map<string, Driver>();
  readonly #workers = new Map<string, string>();
  readonly #gateways = new Map<Transport, { httpUrl: string; zmqEndpoint: string; pid: number | undefined }>();
  readonly #raw = new Map<Transport, string>();
  #ipcDir: string | undefined;
  /** The shared-memory root of the shm paths (on /dev/shm), and the lease secret of the direct-lease workers. */
  #shmDir: string | undefined;
  #secretDir: string | undefined;
  readonly log: (line: string) => void;

  constructor(opts: BenchOptions, log: (line: string) => void) {
    this.#opts = opts;
    this.log = log;
  }

  #nodeArgs(name: string): string[] {
    // One folder per process: tsx's loader thread writes its own profile next to the main thread's.
    const prof = this.#opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(this.#opts.profileDir, name)] : [];
    return [...prof, ...TSX_ARGS];
  }

  #endpoint(transport: Transport, name: string): string {
    if (transport === 'tcp') return 'tcp://127.0.0.1:*';
    // ipc paths must stay under ~100 bytes: a short temp dir, made on first use, removed by close().
    this.#ipcDir ??= mkdtempSync(join(tmpdir().length < 60 ? tmpdir() : '/tmp', 'paig-bench-'));
    return `ipc://${join(this.#ipcDir, `${name}.sock`)}`;
  }

  async #start(o: Parameters<typeof startChild>[0]): Promise<Child> {
    const child = await startChild({ cwd: ROOT, ...o });
    this.#children.push(child);
    return child;
  }

  /** The shared-memory root of this run (made on first use; removed by close()). */
  get shmDir(): string {
    this.#shmDir ??= mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-bench-shm-'));
    return this.#shmDir;
  }

  /** The lease secret file shared by the gateway and the direct-lease workers. */
  #secretFile(): string {
    this.#secretDir ??= mkdtempSync(join(tmpdir(), 'paig-bench-lease-'));
    const file = join(this.#secretDir, 'lease.secret');
    if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
    return file;
  }

  /** Starts everything the configurations need (each thing once). */
  async prepare(configs: BenchConfig[]): Promise<void> {
    const needWorker = new Set<string>();
    const needGateway = new Set<Transport>();
    for (const c of configs) {
      if (c.path.kind === 'gateway-zmq' || c.path.kind === 'gateway-http') {
        needGateway.add(c.transport);
        needWorker.add(`${c.worker}/${c.transport}`);
      } else if (c.path.kind === 'direct') needWorker.add(`${c.worker}/${c.transport}`);
      else if (c.path.kind === 'direct-lease') {
        // Workers that enforce leases take nothing else: they get their own, and the gateway a framework for each.
        needGateway.add(c.transport);
        needWorker.add(`${c.worker}/${c.transport}/lease`);
      }
    }
    for (const key of needWorker) {
      const [worker, transport, lease] = key.split('/') as [WorkerKind, Transport, string | undefined];
      this.#workers.set(key, await this.#startWorker(worker, transport, lease === 'lease'));
    }
    for (const transport of needGateway) {
      const frameworks: Record<string, unknown> = {};
      for (const w of this.#opts.workers) {
        const endpoint = this.#workers.get(`${w}/${transport}`);
        if (endpoint) frameworks[w] = { endpoints: [endpoint], codec: 'binary', timeoutMs: 30_000, maxConcurrency: 1_000 };
        const leased = this.#workers.get(`${w}/${transport}/lease`);
        if (leased) frameworks[`${w}-lease`] = { endpoints: [leased], codec: 'binary', timeoutMs: 30_000, maxConcurrency: 1_000, direct: { secretFile: this.#secretFile(), leaseTtlMs: 60_000, maxInFlight: 64 } };
      }
      const config = {
        http: { host: '127.0.0.1', port: 0 },
        zmq: { endpoint: this.#endpoint(transport, 'gateway') },
        logLevel: 'warn',
        limits: { maxHeaderBytes: MAX_HEADER_BYTES },
        defaultFramework: Object.keys(frameworks)[0],
        frameworks,
      };
      const args = [...this.#nodeArgs(`gateway-${transport}`), join(ROOT, 'bench/servers/gateway-main.ts'), JSON.stringify(config)];
      if (!this.#opts.gatewayMetrics) args.push('--no-metrics');
      const child = await this.#start({ name: `gateway (${transport})`, command: process.execPath, args, ready: (m) => m.event === 'gateway.listening' });
      this.#gateways.set(transport, { httpUrl: String(child.hello.httpUrl), zmqEndpoint: String(child.hello.zmqEndpoint), pid: child.process.pid });
      this.log(`gateway (${transport}): ZMQ ${String(child.hello.zmqEndpoint)}, HTTP ${String(child.hello.httpUrl)}`);
    }
    for (const transport of new Set(configs.filter((c) => c.path.kind === 'raw').map((c) => c.transport))) {
      const child = await this.#start({
        name: `raw zeromq.js server (${transport})`,
        command: process.execPath,
        args: [...TSX_ARGS, join(ROOT, 'bench/servers/raw-zmq-server.ts'), this.#endpoint(transport, 'raw')],
        ready: (m) => m.event === 'listening',
      });
      this.#raw.set(transport, String(child.hello.endpoint));
    }
  }

  async #startWorker(worker: WorkerKind, transport: Transport, lease = false): Promise<string> {
    const endpoint = this.#endpoint(transport, `${worker}-worker${lease ? '-lease' : ''}`);
    let child: Child;
    if (worker === 'ts') {
      child = await this.#start({
        name: `TS worker (${transport})`,
        command: process.execPath,
        args: [...this.#nodeArgs(`ts-worker-${transport}${lease ? '-lease' : ''}`), join(ROOT, 'bench/servers/ts-worker-main.ts'), endpoint, lease ? 'ts-lease' : 'ts', String(MAX_HEADER_BYTES), this.shmDir, ...(lease ? [this.#secretFile()] : [])],
        ready: (m) => m.event === 'worker.listening',
      });
    } else {
      child = await this.#start({
        name: `Python SDK worker (${transport})`,
        command: PYTHON,
        args: [
          '-m', 'physical_ai_worker', '--endpoint', endpoint, '--framework', lease ? 'py-lease' : 'py', '--policy', 'demo', '--log-level', 'warning', '--max-header-bytes', String(MAX_HEADER_BYTES),
          '--shm-dir', this.shmDir, ...(lease ? ['--lease-secret-file', this.#secretFile()] : []),
        ],
        env: { ...process.env, PYTHONPATH: join(ROOT, 'docker/worker-sdk'), PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
        ready: (m) => m.event === 'worker.listening',
      });
    }
    const bound = String(child.hello.endpoint);
    this.log(`${child.name}: ${bound}`);
    return bound;
  }

  /** The driver for a configuration (one per path/transport/worker, shared by payloads and in-flight counts). */
  /** The local gateway process a configuration goes through (for its CPU by thread); undefined off the gateway paths. */
  gatewayPid(c: BenchConfig): number | undefined {
    if (c.path.kind !== 'gateway-zmq' && c.path.kind !== 'gateway-http') return undefined;
    return this.#gateways.get(c.path.kind === 'gateway-http' ? 'tcp' : c.transport)?.pid;
  }

  async driver(c: BenchConfig): Promise<Driver> {
    const key = `${c.path.id}/${c.transport}/${c.worker}/${c.target ?? ''}`;
    let d = this.#drivers.get(key);
    if (d) return d;
    const codec = c.path.codec;
    const shm = c.path.shm ? this.shmDir : undefined;
    switch (c.path.kind) {
      case 'gateway-zmq':
        d = new ProtocolZmqDriver(this.#gateways.get(c.transport)!.zmqEndpoint, codec, c.worker, shm);
        break;
      case 'direct-lease':
        d = new DirectLeaseDriver(this.#gateways.get(c.transport)!.zmqEndpoint, `${c.worker}-lease`, shm);
        break;
      case 'memcpy':
        d = new MemcpyDriver();
        break;
      case 'gateway-http':
        d = new HttpDriver(this.#gateways.get('tcp')!.httpUrl, c.worker, codec === 'json' ? 'json' : 'msgpack');
        break;
      case 'direct':
        d = new ProtocolZmqDriver(this.#workers.get(`${c.worker}/${c.transport}`)!, codec, undefined, shm);
        break;
      case 'raw':
        d = new RawZmqDriver(this.#raw.get(c.transport)!);
        break;
      case 'pyref': {
        const child = await this.#start({
          name: `Python GR00T-style pair (${c.transport})`,
          command: PYTHON,
          args: [join(ROOT, 'bench/groot_ref.py'), '--driven', '--transport', c.transport, '--seed', String(this.#opts.seed)],
          ready: (m) => m.event === 'ready',
        });
        this.#children.splice(this.#children.indexOf(child), 1); // the driver owns it
        d = new PythonRefDriver(child);
        break;
      }
      case 'target-zmq':
        d = new ProtocolZmqDriver(c.target!.replace(/^zmq:\/\//, 'tcp://'), codec, this.#opts.framework);
        break;
      case 'target-http':
        d = new HttpDriver(c.target!, this.#opts.framework ?? 'demo', codec === 'json' ? 'json' : 'msgpack');
        break;
    }
    this.#drivers.set(key, d);
    return d;
  }

  /**
   * Untimed, between batches: waits until the gateway a configuration used says every framework is ready
   * (GET /readyz). A worker busy for longer than the pool's health timeout (a single-threaded Python worker
   * under queued JSON XL requests) is marked unhealthy, and the next configuration must not pay for that.
   * Returns how long it waited, ms.
   */
  async settle(c: BenchConfig, maxWaitMs = 30_000): Promise<number> {
    if (c.path.kind !== 'gateway-zmq' && c.path.kind !== 'gateway-http') return 0;
    const gw = this.#gateways.get(c.path.kind === 'gateway-http' ? 'tcp' : c.transport);
    if (!gw) return 0;
    const t0 = performance.now();
    while (performance.now() - t0 < maxWaitMs) {
      try {
        const res = await fetch(`${gw.httpUrl}/readyz`);
        await res.arrayBuffer();
        if (res.ok) break;
      } catch {
        // not answering yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return performance.now() - t0;
  }

  /** Closes drivers, then children in reverse start order, then the ipc dir. Never throws. */
  async close(): Promise<void> {
    for (const d of this.#drivers.values()) await d.close().catch(() => undefined);
    this.#drivers.clear();
    for (const c of this.#children.splice(0).reverse()) await c.close().catch(() => undefined);
    if (this.#ipcDir) rmSync(this.#ipcDir, { recursive: true, force: true });
    if (this.#shmDir) rmSync(this.#shmDir, { recursive: true, force: true });
    if (this.#secretDir) rmSync(this.#secretDir, { recursive: true, force: true });
  }
}

/** Versions of Python and its packages, from the reference script. */
export async function pythonInfo(): Promise<Record<string, string> | undefined> {
  try {
    const { stdout } = await promisify(execFile)(PYTHON, [join(ROOT, 'bench/groot_ref.py'), '--info'], { timeout: 20_000 });
    return JSON.parse(stdout) as Record<string, string>;
  } catch {
    return undefined;
  }
}
