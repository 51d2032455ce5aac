// The benchmark harness: `npm run bench -- [flags]` (see bench/README.md and --help). Starts what it needs on
// loopback, warms every configuration up, then runs all configurations interleaved round-robin for several
// rounds, and writes latest.json, latest.md and two SVG plots to bench/results/ (a temp dir in --quick mode).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Environment, ROOT, pythonInfo } from './lib/environment.js';
import { buildConfigs, parseOptions, USAGE, type BenchConfig, type BenchOptions } from './lib/matrix.js';
import { machineInfo, roundLoad } from './lib/machine.js';
import { makePayload, type Payload, type PayloadName } from './lib/payloads.js';
import { buildReport, renderMarkdown, type RawResult } from './lib/report.js';
import { cdfSvg, latencyByPayloadSvg } from './lib/svg.js';
import { cpuDelta, threadCpu } from './lib/thread-cpu.js';
import { startProgress } from '../src/cli/progress.js';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Waits (untimed) until the gateway is ready again after a batch; says so when it had to wait. */
async function settle(env: Environment, c: BenchConfig): Promise<void> {
  const waitedMs = await env.settle(c);
  if (waitedMs > 200) log(`${c.key}: the gateway needed ${(waitedMs / 1000).toFixed(1)} s to report ready again (its worker missed a health check)`);
}

async function measure(opts: BenchOptions, env: Environment, configs: BenchConfig[]): Promise<RawResult[]> {
  const payloads = new Map<PayloadName, Payload>();
  for (const name of opts.payloads) payloads.set(name, makePayload(name, opts.seed));
  const results = new Map<string, RawResult>();
  for (const c of configs) results.set(c.key, { config: c, latenciesUs: [], errors: 0, completed: 0, elapsedMs: 0, perRound: [] });

  // Warm-up: every configuration once, results discarded; a configuration that only fails is dropped.
  const live: BenchConfig[] = [];
  for (const c of configs) {
    const r = results.get(c.key)!;
    try {
      const d = await env.driver(c);
      const w = await d.run(payloads.get(c.payload)!, { samples: opts.warmup, maxMs: opts.warmupMs, inflight: c.inflight });
      if (w.latenciesUs.length === 0) {
        r.failed = w.firstError ?? 'no successful reply in warm-up';
        log(`${c.key}: FAILED in warm-up: ${r.failed}`);
      } else live.push(c);
      await settle(env, c);
    } catch (err) {
      r.failed = (err as Error).message;
      log(`${c.key}: FAILED to start: ${r.failed}`);
    }
  }
  log(`warm-up done: ${live.length}/${configs.length} configurations live; load ${roundLoad().join(' ')}`);

  const perRound = Math.max(1, Math.ceil(opts.samples / opts.rounds));
  // A bar over the measured batches on a terminal (redrawn 5 times a second); nothing extra in a log file.
  const progress = await startProgress({ out: (line) => process.stderr.write(`${line}\n`), err: log, env: process.env, status: process.stderr }, { label: '[bench] measuring', total: opts.rounds * live.length });
  let batches = 0;
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const t0 = performance.now();
      // Round-robin over all configurations; the starting point moves each round so no configuration always
      // runs right after the same neighbour (or first, on a cold cache).
      const shift = live.length === 0 ? 0 : Math.floor((round * live.length) / opts.rounds);
      const order = [...live.slice(shift), ...live.slice(0, shift)];
      for (const c of order) {
        const r = results.get(c.key)!;
        const d = await env.driver(c);
        const pid = env.gatewayPid(c);
        const cpuBefore = pid === undefined ? undefined : threadCpu(pid);
        const b = await d.run(payloads.get(c.payload)!, { samples: perRound, maxMs: opts.maxRoundMs, inflight: c.inflight });
        const cpuAfter = pid === undefined ? undefined : threadCpu(pid);
        if (cpuBefore && cpuAfter) {
          const used = cpuDelta(cpuBefore, cpuAfter);
          r.gatewayCpuMs ??= { main: 0, zmqIo: 0, helpers: 0 };
          r.gatewayCpuMs.main += used.main;
          r.gatewayCpuMs.zmqIo += used.zmqIo;
          r.gatewayCpuMs.helpers += used.helpers;
        }
        for (const v of b.latenciesUs) r.latenciesUs.push(v);
        r.errors += b.errors;
        r.firstError ??= b.firstError;
        r.completed += b.latenciesUs.length;
        r.elapsedMs += b.elapsedMs;
        r.perRound.push(b.latenciesUs.length);
        progress.update(++batches, { status: c.key });
        await settle(env, c);
      }
      progress.log(`[bench] round ${round + 1}/${opts.rounds} done in ${((performance.now() - t0) / 1000).toFixed(1)} s; load ${roundLoad().join(' ')}`);
    }
  } finally {
    progress.stop();
  }
  return [...results.values()];
}

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const outDir = resolve(opts.outDir ?? (opts.quick ? mkdtempSync(join(tmpdir(), 'paig-bench-quick-')) : join(ROOT, 'bench/results')));
  mkdirSync(outDir, { recursive: true });
  if (opts.profileDir) mkdirSync(resolve(opts.profileDir), { recursive: true });
  const configs = buildConfigs(opts);
  if (configs.length === 0) {
    process.stderr.write('no configuration selected (check --paths, --transports, --workers, --target)\n');
    return 2;
  }
  const startedAt = new Date();
  const machine = machineInfo(await pythonInfo());
  log(`${configs.length} configurations, ${opts.rounds} rounds, ≤${opts.samples} samples each; ${machine.cpu_model}, ${machine.cores} cores, load ${machine.load_before.join(' ')}`);
  const env = new Environment(opts, log);
  // Ctrl-C or a kill: stop every child before leaving (workers do not watch our stdin).
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void env.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let raw: RawResult[];
  const t0 = performance.now();
  try {
    await env.prepare(configs);
    raw = await measure(opts, env, configs);
  } finally {
    await env.close();
  }
  machine.load_after = roundLoad();
  const report = buildReport({ opts, machine, startedAt, durationS: (performance.now() - t0) / 1000, results: raw });
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(report, null, 1) + '\n');
  writeFileSync(join(outDir, 'latest.md'), renderMarkdown(report));
  writeFileSync(join(outDir, 'latency-by-payload.svg'), latencyByPayloadSvg(report));
  writeFileSync(join(outDir, 'latency-cdf-L.svg'), cdfSvg(report, 'L'));
  log(`done in ${report.duration_s} s; results in ${outDir}`);
  process.stdout.write(`${JSON.stringify({ event: 'bench.done', outDir, configurations: report.results.length })}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
