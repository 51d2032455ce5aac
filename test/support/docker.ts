// Docker tests run against a real engine: this makes sure one answers and the test image exists (by running
// the scripts, failing loudly, never skipping), and gives each test unique names and clean-up.
import { execFileSync, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/lib/log.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import type { DockerSupport } from '../../src/docker/docker-support.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { Deadline } from '../../src/lib/abort.js';
import { createMetrics, type GatewayMetrics } from '../../src/telemetry/metrics.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';

export const TEST_IMAGE = 'physical-ai-gateway/worker:local';
export const BASE_IMAGE = 'physical-ai-gateway/worker-base:local';
/** Every container a test run creates carries this label too, so clean-up stays within this run. */
export const RUN_LABEL = 'physical-ai-gateway.test-run';
export const RUN_ID = `${process.pid}-${randomBytes(3).toString('hex')}`;
const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

let ready: { buildOutput: string } | undefined;

/** Starts the engine if needed and builds the test image (skipped by the script when up to date). Once per process. */
export function ensureDockerAndImage(): { buildOutput: string } {
  if (ready) return ready;
  const opts = { cwd: ROOT, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'inherit'] as ['ignore', 'pipe', 'inherit'], timeout: 300_000 };
  let output = '';
  try {
    output += execFileSync('bash', ['scripts/ensure-docker.sh'], opts);
    output += execFileSync('bash', ['scripts/build-test-images.sh'], opts);
  } catch (err) {
    throw new Error(`Docker tests need a Docker engine and the test image; setting them up failed:\n${output}\n${String(err)}`);
  }
  process.stderr.write(output.replace(/^/gm, '# '));
  ready = { buildOutput: output };
  return ready;
}

export function uniqueName(what: string): string {
  return `pag-test-${what}-${RUN_ID}-${randomBytes(2).toString('hex')}`;
}

/** Resolves once a worker at `endpoint` answers health with ready=true (what `up` and the router wait for), within 60 s. */
export async function waitWorkerReady(endpoint: string, signal?: AbortSignal): Promise<void> {
  const deadline = new Deadline(60_000, signal);
  try {
    await WorkerPool.waitUntilReady([endpoint], { signal: deadline.signal });
  } finally {
    deadline.dispose();
  }
}

/** A manager closed after the test, and removal of this run's containers. */
export function testManager(t: TestContext): DockerManager {
  ensureDockerAndImage();
  const manager = new DockerManager({ log: silentLogger });
  t.after(async () => {
    await manager.removeAllOurs({ labels: [`${RUN_LABEL}=${RUN_ID}`] });
    await manager.close();
  });
  return manager;
}

export const runLabels = (): Record<string, string> => ({ [RUN_LABEL]: RUN_ID });

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A short temp folder (unix socket paths must stay under 108 bytes), removed after the test. */
export async function ipcDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pag-ipc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The docker CLI, for what happens "from outside" the manager (docker kill, a foreign container). */
export async function dockerCli(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 60_000 });
  return stdout.trim();
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A demo-policy framework spec on the test image: host network, a free 127.0.0.1 port, this run's labels. */
export async function testSpec(framework: string, extra: Partial<FrameworkSpec> = {}): Promise<FrameworkSpec> {
  return {
    name: framework,
    image: TEST_IMAGE,
    networkMode: 'host',
    port: await freePort(),
    containerName: uniqueName(framework),
    labels: runLabels(),
    readyTimeoutMs: 30_000,
    stopTimeoutS: 2,
    ...extra,
  };
}

export interface DockerGateway {
  gateway: Gateway;
  support: DockerSupport;
  metrics: GatewayMetrics;
  /** JSON request to the gateway's HTTP API: status and parsed body. */
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** The /metrics text. */
  metricsText(): Promise<string>;
}

/**
 * A real gateway (ephemeral ports) whose frameworks with a launcher run in containers of the test image: the
 * DockerLauncher, the container sampler feeding a real metrics registry, and the HTTP control routes. Closed
 * after the test; this run's containers are removed (testManager).
 */
export async function startDockerGateway(
  t: TestContext,
  { specs, config, statsIntervalMs = 60_000, log }: { specs: FrameworkSpec[]; config: Record<string, unknown>; statsIntervalMs?: number; log?: Logger },
): Promise<DockerGateway> {
  const manager = testManager(t);
  const metrics = createMetrics(new Registry());
  const raw = config as { docker?: Record<string, unknown> };
  const parsed = parseConfig({ healthIntervalMs: 200, ...config, docker: { statsIntervalMs, ...raw.docker } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const gateway = await buildGateway(parsed, { metrics, ...(log ? { log } : {}), docker: { specs, manager, labels: [`${RUN_LABEL}=${RUN_ID}`] } });
  t.after(() => gateway.close(500));
  return {
    gateway,
    support: gateway.docker!,
    metrics,
    async http(method, path, body, headers = {}) {
      const res = await fetch(`${gateway.httpUrl}${path}`, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(120_000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    metricsText: () => fetch(`${gateway.httpUrl}/metrics`).then((r) => r.text()),
  };
}

/** The value of one series in a Prometheus text exposition, or undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.slice(name.length + 1, close);
    const have = Object.fromEntries([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(close + 1).trim());
  }
  return undefined;
}
