// Test harness: a real Prometheus server (Debian's `prometheus`, installed by scripts/ensure-prometheus.sh)
// on a free 127.0.0.1 port, with a temp config and storage dir, queried over its HTTP API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort } from './endpoints.js';

export interface PrometheusOptions {
  /** Scrape targets as host:port (only 127.0.0.1). */
  targets: string[];
  scrapeIntervalS?: number;
  /** Rule files to load (copied into the temp dir). */
  rulesFiles?: string[];
  metricsPath?: string;
  /** Evaluation interval of the rules, s (defaults to the scrape interval). */
  evaluationIntervalS?: number;
  /** Milliseconds to wait for /-/ready. */
  startTimeoutMs?: number;
  binary?: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  readonly url: string;
  readonly port: number;
  /** Runs an instant query; rejects on an API or PromQL error. */
  query(promql: string): Promise<PromSample[]>;
  /** Waits until every target is `up` (scraped successfully at least once). */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  /** Polls `promql` until it returns at least one sample. */
  waitForData(promql: string, timeoutMs?: number): Promise<PromSample[]>;
  /** Prometheus' stdout/stderr so far (for failure messages). */
  output(): string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startPrometheus({
  targets,
  scrapeIntervalS = 1,
  rulesFiles = [],
  metricsPath = '/metrics',
  evaluationIntervalS = scrapeIntervalS,
  startTimeoutMs = 60_000,
  binary = 'prometheus',
}: PrometheusOptions): Promise<PrometheusServer> {
  for (const t of targets) if (!t.startsWith('127.0.0.1:')) throw new Error(`only 127.0.0.1 targets allowed, got ${t}`);
  const dir = await mkdtemp(join(tmpdir(), 'pag-prometheus-'));
  let child: ChildProcess | undefined;
  let log = '';
  let exited = false;
  const cleanup = async () => {
    if (child && !exited) {
      const done = new Promise<void>((r) => child!.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5_000);
      try {
        await done;
      } finally {
        clearTimeout(timer);
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ruleNames: string[] = [];
    for (const [i, file] of rulesFiles.entries()) {
      const name = `rules-${i}-${basename(file)}`;
      await copyFile(file, join(dir, name));
      ruleNames.push(name);
    }
    const config = [
      'global:',
      `  scrape_interval: ${scrapeIntervalS}s`,
      `  scrape_timeout: ${scrapeIntervalS}s`,
      `  evaluation_interval: ${evaluationIntervalS}s`,
      ...(ruleNames.length ? ['rule_files:', ...ruleNames.map((n) => `  - ${JSON.stringify(n)}`)] : []),
      'scrape_configs:',
      '  - job_name: physical-ai-gateway',
      `    metrics_path: ${JSON.stringify(metricsPath)}`,
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
      '',
    ].join('\n');
    const configFile = join(dir, 'prometheus.yml');
    await writeFile(configFile, config);
    const port = await freePort();
    child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-lifecycle',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const spawnError = new Promise<never>((_, reject) => {
      child!.once('error', (err) => reject(new Error(`cannot run ${binary}: ${err.message} (run scripts/ensure-prometheus.sh)`)));
    });
    spawnError.catch(() => {});
    child.once('exit', () => (exited = true));
    const url = `http://127.0.0.1:${port}`;

    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (exited) throw new Error(`prometheus exited during start:\n${log}`);
      const ready = await Promise.race([
        fetch(`${url}/-/ready`).then((r) => r.ok, () => false),
        spawnError,
      ]);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready after ${startTimeoutMs} ms:\n${log}`);
      await sleep(100);
    }

    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${url}${path}`);
      const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
      if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.errorType}: ${body.error}`);
      return body.data;
    };
    const query = async (promql: string): Promise<PromSample[]> => {
      const data = await api<{ resultType: string; result: PromSample[] | [number, string] }>(
        `/api/v1/query?query=${encodeURIComponent(promql)}`,
      );
      if (data.resultType === 'scalar' || data.resultType === 'string') {
        return [{ metric: {}, value: data.result as [number, string] }];
      }
      return data.result as PromSample[];
    };
    let closing: Promise<void> | undefined;
    const server: PrometheusServer = {
      url,
      port,
      query,
      async waitForTargetsUp(timeoutMs = 30_000) {
        const until = Date.now() + timeoutMs;
        let last = '';
        for (;;) {
          const data = await api<{ activeTargets: Array<{ health: string; scrapeUrl: string; lastError: string }> }>('/api/v1/targets');
          last = JSON.stringify(data.activeTargets);
          if (data.activeTargets.length === targets.length && data.activeTargets.every((t) => t.health === 'up')) return;
          if (Date.now() > until) throw new Error(`targets not up after ${timeoutMs} ms: ${last}`);
          await sleep(250);
        }
      },
      async waitForData(promql, timeoutMs = 30_000) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const result = await query(promql);
          if (result.length > 0) return result;
          if (Date.now() > until) return result;
          await sleep(250);
        }
      },
      output: () => log,
      close: () => (closing ??= cleanup()),
      [Symbol.asyncDispose]() {
        return this.close();
      },
    };
    return server;
  } catch (err) {
    await cleanup();
    throw err;
  }
}
