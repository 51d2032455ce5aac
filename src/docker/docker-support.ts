// Docker for a running gateway, in one piece the composition root (src/build-gateway.ts) starts: the manager, the
// launcher for the frameworks configured with a `launcher`, and the sampler whose stats and events feed the
// metrics and the launcher. No engine at start: one clear error in the log, and the launcher answers
// `unavailable` ("Docker is not reachable") until an engine answers; the rest of the gateway is unaffected.
import type Docker from 'dockerode';
import { ConfigError, type ConfigIssue } from '../config.js';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { watchContainers, type ContainerWatch } from './container-watch.js';
import { DockerManager } from './docker-manager.js';
import { builtinFrameworkSpecs, validateFrameworkSpec, type FrameworkSpec } from './framework-spec.js';
import { engineKey, engineOptions } from './engine-url.js';
import { DockerLauncher, type DockerLauncherOptions } from './launcher.js';
import { LauncherGroup, type MemberLauncher } from './launcher-group.js';
import { ServiceLauncher } from './service-launcher.js';

/** A framework of the gateway's config that names a launcher: a built-in spec name or a spec mapping. */
export interface LaunchableFramework {
  name: string;
  launcher?: unknown;
  /** The direct path's secret file: the launched worker gets it (leaseSecretFile). */
  direct?: { secretFile: string };
}

/**
 * The framework specs for the config's launchable frameworks. `launcher: lerobot|groot|pi0` takes the built-in
 * spec (under the framework's own name); a mapping is a spec of its own. Bad entries: one ConfigError naming each.
 */
export function specsFromConfig(frameworks: readonly LaunchableFramework[], { homeDir, imageTag, sharedMemoryDir }: { homeDir: string; imageTag?: string; sharedMemoryDir?: string }): FrameworkSpec[] {
  const builtins = builtinFrameworkSpecs({ homeDir, ...(imageTag ? { imageTag } : {}) });
  const problems: ConfigIssue[] = [];
  const specs: FrameworkSpec[] = [];
  for (const f of frameworks) {
    if (f.launcher === undefined) continue;
    try {
      if (typeof f.launcher === 'string') {
        const found = builtins.find((b) => b.name === f.launcher);
        if (!found) throw new GatewayError('bad_request', `no built-in spec '${f.launcher}' (built-in: ${builtins.map((b) => b.name).join(', ')})`);
        specs.push({ ...found, name: f.name });
      } else specs.push(validateFrameworkSpec({ ...(f.launcher as object), name: f.name }));
    } catch (err) {
      problems.push({ path: `frameworks.${f.name}.launcher`, message: (err as Error).message });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // The gateway's shared-memory root reaches every launched worker unless its spec names another.
  const secretOf = new Map(frameworks.flatMap((f) => (f.direct ? [[f.name, f.direct.secretFile] as const] : [])));
  return specs.map((s) => {
    const leaseSecretFile = s.leaseSecretFile ?? secretOf.get(s.name);
    return { ...s, ...(sharedMemoryDir && !s.sharedMemoryDir ? { sharedMemoryDir } : {}), ...(leaseSecretFile ? { leaseSecretFile } : {}) };
  });
}

/** What the sampler writes into (the gateway's metrics). */
export type ContainerMetricsSink = Pick<GatewayMetrics, 'recordContainerStats' | 'recordContainerOom' | 'removeContainer'>;

export interface DockerSupportOptions {
  specs: readonly FrameworkSpec[];
  /** An existing manager (not closed by close()); otherwise one is made from `docker`. */
  manager?: DockerManager;
  /** dockerode connection options (default: /var/run/docker.sock). */
  docker?: Docker.DockerOptions;
  log?: Logger;
  metrics?: ContainerMetricsSink;
  /** Time between two stats rounds of the sampler; default 5000 ms. */
  statsIntervalMs?: number;
  /** Extra label filters for the sampler (e.g. one test run's containers). */
  labels?: string[];
  /** More launcher options (idle stop, one GPU framework at a time, ...). */
  launcher?: Omit<DockerLauncherOptions, 'manager' | 'specs' | 'log' | 'stats'>;
}

export interface DockerSupport {
  /** The default engine's manager. */
  readonly manager: DockerManager;
  /** Every framework's launcher: containers on the default engine, Swarm services, frameworks on remote engines. */
  readonly launcher: LauncherGroup;
  /** The default engine's container launcher (the sampler's events feed it). */
  readonly containers: DockerLauncher;
  readonly watch: ContainerWatch;
  /** Whether an engine answered at start (and its version), or the error. */
  readonly engine: { reachable: true; version: string } | { reachable: false; error: string };
  /** Closes the launcher, the sampler and (when it made it) the manager. Idempotent. */
  close(): Promise<void>;
}

export async function startDockerSupport(options: DockerSupportOptions): Promise<DockerSupport> {
  const log = (options.log ?? silentLogger).child({ component: 'docker' });
  const ownsManager = options.manager === undefined;
  const manager = options.manager ?? new DockerManager({ ...(options.docker ? { docker: options.docker } : {}), log: options.log ?? silentLogger });
  const frameworks = options.specs.map((s) => s.name);

  let engine: DockerSupport['engine'];
  try {
    const v = await manager.version();
    engine = { reachable: true, version: v.version };
    log.info({ event: 'docker.engine', version: v.version, apiVersion: v.apiVersion, frameworks });
  } catch (err) {
    const message = (err as Error).message;
    engine = { reachable: false, error: message };
    log.error({
      event: 'docker.engine_unavailable',
      message: `Docker is not reachable; frameworks ${frameworks.join(', ')} will answer 503 unavailable until an engine answers (the others are served as usual): ${message}`,
    });
  }

  const metrics = options.metrics;
  const watch = watchContainers({
    manager,
    intervalMs: options.statsIntervalMs ?? 5_000,
    log: options.log ?? silentLogger,
    ...(options.labels ? { labels: options.labels } : {}),
    onStats: (s) => {
      if (metrics && s.framework !== undefined) metrics.recordContainerStats({
          framework: s.framework,
          container: s.container,
          // The manager's one formula (as the docker CLI: usage minus inactive file pages; CPU 0 until a
          // second reading exists), so /metrics and GET /v1/containers agree.
          cpuCores: (s.sample.cpuPercent ?? 0) / 100,
          memoryBytes: s.sample.memoryUsedBytes,
          memoryLimitBytes: s.sample.memoryLimitBytes,
        });
    },
  });
  // Specs by engine and mode: containers on the default engine (with the sampler), Swarm services on an engine
  // that is a manager, containers on remote engines. Each other engine gets a manager of its own.
  const byEngine = new Map<string, FrameworkSpec[]>();
  for (const spec of options.specs) {
    const key = engineKey(spec.engine);
    byEngine.set(key, [...(byEngine.get(key) ?? []), spec]);
  }
  const managers = new Map<string, DockerManager>([['default', manager]]);
  const members: MemberLauncher[] = [];
  let launcher: DockerLauncher;
  let group: LauncherGroup;
  try {
    for (const [key, specs] of byEngine) {
      if (key === 'default') continue;
      // specs naming one engine share its manager: the first spec that says how its host key is checked decides
      const sshHostKey = specs.find((s) => s.sshHostKey)?.sshHostKey;
      const sshKnownHosts = specs.find((s) => s.sshKnownHosts)?.sshKnownHosts;
      const sshHostKeyCheck = sshHostKey || sshKnownHosts ? 'known-hosts' : specs.find((s) => s.sshHostKeyCheck)?.sshHostKeyCheck;
      if (key.startsWith('ssh://') && sshHostKeyCheck === 'accept-any') log.warn({ event: 'docker.ssh_host_key_unchecked', engine: key, message: `engine ${key}: its ssh host key is not checked (sshHostKeyCheck: accept-any): anyone who can answer for that address can pose as the engine` });
      managers.set(key, new DockerManager({ docker: await engineOptions(key, { tls: specs.find((s) => s.tls)?.tls, sshHostKey, sshKnownHosts, sshHostKeyCheck }), log: options.log ?? silentLogger }));
    }
    // A bad spec throws here, before a launcher runs anything.
    const local = (byEngine.get('default') ?? []).filter((s) => s.mode !== 'service');
    launcher = new DockerLauncher({ ...options.launcher, manager, specs: local, log: options.log ?? silentLogger, stats: watch });
    members.push(launcher);
    for (const [key, specs] of byEngine) {
      const engineManager = managers.get(key)!;
      const services = specs.filter((s) => s.mode === 'service');
      if (services.length) {
        const { stopOnClose, idleStopMs } = options.launcher ?? {};
        members.push(new ServiceLauncher({ manager: engineManager, specs: services, log: options.log ?? silentLogger, ...(stopOnClose ? { stopOnClose } : {}), ...(idleStopMs ? { idleStopMs } : {}) }));
      }
      const containers = specs.filter((s) => s.mode !== 'service');
      if (key !== 'default' && containers.length) members.push(new DockerLauncher({ ...options.launcher, manager: engineManager, specs: containers, log: options.log ?? silentLogger }));
    }
    group = new LauncherGroup(members);
  } catch (err) {
    await Promise.allSettled([watch.close(), ...members.map((m) => m.close()), ...[...managers].filter(([k]) => k !== 'default').map(([, m]) => m.close())]);
    throw err;
  }
  // Docker announces one OOM kill with more than one `oom` event: count one per run of a container.
  const oomCounted = new Set<string>();
  watch.onEvent((e) => {
    const labels = e.framework !== undefined ? { framework: e.framework, container: e.name } : undefined;
    if (e.type === 'start' || e.type === 'destroy') oomCounted.delete(e.containerId);
    if (metrics && labels) {
      if (e.type === 'oom' && !oomCounted.has(e.containerId)) {
        oomCounted.add(e.containerId);
        metrics.recordContainerOom(labels);
      }
      if (e.type === 'die' || e.type === 'destroy') metrics.removeContainer(labels);
    }
    launcher.noteContainerEvent(e);
  });

  let closing: Promise<void> | undefined;
  return {
    manager,
    launcher: group,
    containers: launcher,
    watch,
    engine,
    close: () =>
      (closing ??= (async () => {
        await Promise.allSettled([group.close(), watch.close()]);
        await Promise.allSettled([...managers].filter(([k]) => k !== 'default').map(([, m]) => m.close()));
        if (ownsManager) await manager.close();
      })()),
  };
}
