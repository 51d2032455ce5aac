// CLI commands for frameworks in Docker: up, down, ps, logs. Plain functions; the CLI entry wires argv,
// the DockerManager, the specs and an output function (one line per call).
import { DockerLauncher } from './launcher.js';
import type { DockerManager } from './docker-manager.js';
import { containerNameFor, isService, serviceNameFor, type FrameworkSpec } from './framework-spec.js';
import { ServiceLauncher } from './service-launcher.js';
import { SwarmServices } from './swarm-services.js';
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
  // A service-mode framework is deployed as a Swarm service (created, rolled to a changed spec, or scaled).
  const launcher = isService(spec)
    ? new ServiceLauncher({ manager: ctx.manager, specs: [spec], resyncMs: 0, ...(ctx.log ? { log: ctx.log } : {}) })
    : new DockerLauncher({ manager: ctx.manager, specs: [spec], ...(ctx.log ? { log: ctx.log } : {}) });
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
  const services = new SwarmServices(ctx.manager);
  if (framework !== undefined && isService(specOf(ctx, framework))) {
    const removed = await services.remove(specOf(ctx, framework));
    ctx.out(removed ? `${framework}: removed service ${serviceNameFor({ name: framework })}` : `${framework}: not running`);
    return removed ? 1 : 0;
  }
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
  // Every service of ours (on a swarm manager), then every container of ours that no service owns.
  const ourServices = await services.list().catch(() => []);
  for (const svc of ourServices) {
    await services.remove({ name: svc.framework });
    ctx.out(`${svc.framework}: removed service ${svc.name}`);
  }
  const ours = (await ctx.manager.listContainers()).filter((c) => !ourServices.some((svc) => c.name.startsWith(`${svc.name}.`)));
  for (const c of ours) {
    await ctx.manager.stop(c.id);
    await ctx.manager.remove(c.id);
    ctx.out(`${c.framework ?? '-'}: stopped and removed ${c.name}`);
  }
  if (ours.length === 0 && ourServices.length === 0) ctx.out('no physical-ai-gateway containers');
  return ours.length + ourServices.length;
}

/** What `ps` shows: our containers on this engine, our services (when it is a Swarm manager) and their running tasks. */
export interface PsView {
  containers: Array<{ framework: string | null; name: string; id: string; state: string; image: string; status: string }>;
  services: Array<{ framework: string; name: string; replicas: number; image: string; updateState: string | null }>;
  /** From the manager's task list: a task on another node has no container on this engine (none in `containers`). */
  tasks: Array<{ framework: string; task: string; state: string; node: string | null; endpoint: string }>;
}

export async function psView(ctx: CommandContext): Promise<PsView> {
  const containers = (await ctx.manager.listContainers()).map((c) => ({ framework: c.framework ?? null, name: c.name, id: c.id, state: c.state, image: c.image, status: c.status }));
  const summaries = await new SwarmServices(ctx.manager).list().catch(() => []);
  const services = summaries.map((svc) => ({ framework: svc.framework, name: svc.name, replicas: svc.replicas, image: svc.image, updateState: svc.updateState ?? null }));
  const tasks: PsView['tasks'] = [];
  for (const svc of summaries) {
    const spec = ctx.specs.find((s) => s.name === svc.framework && isService(s));
    if (!spec) continue;
    for (const task of await new SwarmServices(ctx.manager).tasks(spec)) {
      if (task.desiredState === 'running') tasks.push({ framework: svc.framework, task: `${svc.name}.${task.slot}`, state: task.state, node: task.host || null, endpoint: task.endpoint });
    }
  }
  return { containers, services, tasks };
}

/** Prints `psView` as tables: containers; then services and their tasks (with their node) when there are any. */
export async function ps(ctx: CommandContext): Promise<void> {
  const view = await psView(ctx);
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows]) ctx.out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
  };
  table(['FRAMEWORK', 'CONTAINER', 'STATE', 'IMAGE', 'STATUS'], view.containers.map((c) => [c.framework ?? '-', c.name, c.state, c.image, c.status]));
  if (view.services.length === 0) return;
  table(['FRAMEWORK', 'SERVICE', 'REPLICAS', 'IMAGE', 'UPDATE'], view.services.map((s) => [s.framework, s.name, String(s.replicas), s.image, s.updateState ?? '-']));
  if (view.tasks.length === 0) return;
  table(['FRAMEWORK', 'TASK', 'STATE', 'NODE', 'ENDPOINT'], view.tasks.map((t) => [t.framework, t.task, t.state, t.node ?? '-', t.endpoint]));
}

/** Prints a framework's last log lines; with `follow`, keeps printing until the signal aborts or it stops. */
export async function logs(ctx: CommandContext, framework: string, { tail = 100, follow = false }: { tail?: number; follow?: boolean } = {}): Promise<void> {
  const spec = specOf(ctx, framework);
  if (isService(spec)) {
    // Every task's lines through the service's logs; with follow, those of tasks started later too.
    const services = new SwarmServices(ctx.manager);
    if (!follow) {
      for (const line of await services.logs(spec, { tail })) ctx.out(line);
      return;
    }
    for await (const line of services.followLogs(spec, { tail, ...(ctx.signal ? { signal: ctx.signal } : {}) })) ctx.out(line);
    return;
  }
  const name = containerNameFor(spec);
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
