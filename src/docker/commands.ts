// CLI commands for frameworks in Docker: up, down, ps, logs. Plain functions; the CLI entry wires argv,
// the DockerManager, the specs and an output function (one line per call).
import { DockerLauncher } from './launcher.js';
import type { DockerManager } from './docker-manager.js';
import { containerNameFor, type FrameworkSpec } from './framework-spec.js';
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export interface CommandContext {
  manager: DockerManager;
  specs: readonly FrameworkSpec[];
  /** Writes one line of output. */
  out: (line: string) => void;
  /** Resolves once a worker at one of `endpoints` is ready (the CLI passes the ZMQ pool's health wait); without it `up` returns once the container runs. */
  waitReady?: (endpoints: string[], signal: AbortSignal) => Promise<void>;
  log?: Logger;
  signal?: AbortSignal;
}

function specOf(ctx: CommandContext, framework: string): FrameworkSpec {
  const spec = ctx.specs.find((s) => s.name === framework);
  if (!spec) throw new GatewayError('unknown_framework', `unknown framework "${framework}"; configured: ${ctx.specs.map((s) => s.name).join(', ')}`);
  return spec;
}

/**
 * Starts a framework's container and waits until its worker is ready (or the container ends first, with its last
 * log lines); prints the endpoint and the time it took.
 */
export async function up(ctx: CommandContext, framework: string): Promise<string> {
  const spec = specOf(ctx, framework);
  const launcher = new DockerLauncher({ manager: ctx.manager, specs: [spec], ...(ctx.log ? { log: ctx.log } : {}) });
  const t0 = performance.now();
  const deadline = new Deadline(spec.readyTimeoutMs ?? 120_000, ctx.signal);
  try {
    ctx.out(`starting ${framework} (${spec.image}) ...`);
    const { endpoints, ended } = await launcher.ensureRunning(framework, deadline.signal);
    ctx.out(`${framework} running; waiting for its worker at ${endpoints.join(', ')} to be ready ...`);
    if (ctx.waitReady) {
      const waitReady = ctx.waitReady;
      await new Promise<void>((resolve, reject) => {
        waitReady(endpoints, deadline.signal).then(resolve, reject);
        void ended.then(reject); // never rejects; a no-op once ready
      });
    }
    ctx.out(`${framework} ready at ${endpoints[0]} in ${Math.round(performance.now() - t0)} ms`);
    return endpoints[0]!;
  } finally {
    deadline.release(); // a readiness wait that lost the race to `ended` stops here
    await launcher.close();
  }
}

/** Stops (and removes) one framework's container, or every container of ours when no framework is given. */
export async function down(ctx: CommandContext, framework?: string): Promise<number> {
  if (framework !== undefined) {
    const name = containerNameFor(specOf(ctx, framework));
    const info = await ctx.manager.inspect(name);
    if (!info) {
      ctx.out(`${framework}: not running`);
      return 0;
    }
    await ctx.manager.stop(name);
    await ctx.manager.remove(name);
    ctx.out(`${framework}: stopped and removed ${name}`);
    return 1;
  }
  const ours = await ctx.manager.listContainers();
  for (const c of ours) {
    await ctx.manager.stop(c.id);
    await ctx.manager.remove(c.id);
    ctx.out(`${c.framework ?? '-'}: stopped and removed ${c.name}`);
  }
  if (ours.length === 0) ctx.out('no physical-ai-gateway containers');
  return ours.length;
}

/** Lists our containers: framework, name, state, image, status. */
export async function ps(ctx: CommandContext): Promise<void> {
  const rows = (await ctx.manager.listContainers()).map((c) => [c.framework ?? '-', c.name, c.state, c.image, c.status]);
  const header = ['FRAMEWORK', 'CONTAINER', 'STATE', 'IMAGE', 'STATUS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  ctx.out(fmt(header));
  for (const r of rows) ctx.out(fmt(r));
}

/** Prints a framework's last log lines; with `follow`, keeps printing until the signal aborts or it stops. */
export async function logs(ctx: CommandContext, framework: string, { tail = 100, follow = false }: { tail?: number; follow?: boolean } = {}): Promise<void> {
  const name = containerNameFor(specOf(ctx, framework));
  const info = await ctx.manager.inspect(name);
  if (!info) throw new GatewayError('unavailable', `${framework}: no container ${name}; start it with 'up ${framework}'`);
  // The current run's lines only: a restarted container keeps its earlier runs' output in the same log.
  const startedS = Math.floor(Date.parse(info.State.StartedAt) / 1000);
  const since = Number.isFinite(startedS) && startedS > 0 ? startedS : undefined;
  if (!follow) {
    for (const line of await ctx.manager.logs(name, { tail, ...(since !== undefined ? { since } : {}) })) ctx.out(line);
    return;
  }
  for await (const line of ctx.manager.followLogs(name, { tail, ...(since !== undefined ? { since } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) })) ctx.out(line);
}
