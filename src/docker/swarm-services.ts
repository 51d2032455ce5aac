// Frameworks as Docker Swarm services on an engine that is a swarm manager: the service spec made from a framework
// spec (image, command, env, mounts, memory, generic resources, placement, replicas, restart and rolling-update
// policy, our labels), deploy (create, roll on change, scale), remove, the running tasks with the endpoint each
// serves, and the engine's service/container events that announce task changes. Dockerode only; no ZeroMQ.
//
// Each task binds `port + slot - 1` on its node (host networking): a slot keeps its port across restarts and
// stop-first rolling updates, and the gateway reaches it at `tcp://<node address>:<port>`. Swarm fills in the
// slot (`{{.Task.Slot}}`) only in env, so a small /bin/sh prelude computes the endpoint and exports
// WORKER_ENDPOINT before it execs the worker's own argv.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { throwIfAborted } from '../lib/abort.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { DockerError, fromEngineError, statusOf } from './docker-error.js';
import { logLines, type DockerManager } from './docker-manager.js';
import { DEFAULT_STOP_TIMEOUT_S, LABEL_FRAMEWORK, LABEL_MANAGED, serviceNameFor, type FrameworkSpec } from './framework-spec.js';

/** The hash of everything but the replica count: a change rolls the tasks; replicas alone only scale. */
export const LABEL_SPEC_HASH = 'physical-ai-gateway.spec-hash';

/** Computes the task's port and endpoint from its slot, then runs the argv with `{endpoint}`/`{port}` filled in. */
const PRELUDE =
  'port=$((PAG_PORT_BASE + PAG_TASK_SLOT - 1)); export WORKER_ENDPOINT="tcp://$PAG_BIND_HOST:$port" WORKER_PORT="$port"; ' +
  'for a; do shift; case "$a" in "{endpoint}") a="$WORKER_ENDPOINT";; "{port}") a="$port";; esac; set -- "$@" "$a"; done; exec "$@"';
/** How long one run of the health probe may take, ms (the probe's own deadline; Swarm's is 2 s longer). */
const PROBE_TIMEOUT_MS = 8_000;

/**
 * The SDK's health probe against the task's own port (Swarm waits for healthy before it rolls the next task, and
 * replaces a task whose probe fails three times in a row). It starts a Python process, so its deadline is generous:
 * a slow probe on a busy node delays a roll, a failed one kills a task that may be serving. The probe runs inside the
 * task with its env: a CURVE worker's `WORKER_CURVE_SECRET_KEY_FILE` reaches it; a key file given as
 * `--curve-secret-key-file` in the argv is passed to it here.
 */
export function healthProbeFor(argv: readonly string[]): string {
  const at = argv.findIndex((a) => a === '--curve-secret-key-file' || a.startsWith('--curve-secret-key-file='));
  const keyFile = at < 0 ? undefined : argv[at]!.includes('=') ? argv[at]!.slice(argv[at]!.indexOf('=') + 1) : argv[at + 1];
  const quote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
  return [
    'h="$PAG_BIND_HOST"; [ "$h" = 0.0.0.0 ] && h=127.0.0.1;',
    `exec python3 -m physical_ai_worker.healthcheck --quiet --timeout-ms ${PROBE_TIMEOUT_MS} --endpoint "tcp://$h:$((PAG_PORT_BASE + PAG_TASK_SLOT - 1))"`,
    ...(keyFile ? [`--curve-key-file ${quote(keyFile)}`] : []),
  ].join(' ');
}

/** One task of a framework's service, as the pool needs it. */
export interface ServiceTask {
  id: string;
  slot: number;
  nodeId: string;
  /** The node's address (its `physical-ai-gateway.address` label, else the address it joined the swarm with). */
  host: string;
  /** Swarm's view: new, pending, assigned, preparing, starting, running, complete, failed, shutdown, ... */
  state: string;
  desiredState: string;
  containerId: string | undefined;
  /** What the gateway connects to. */
  endpoint: string;
  error: string | undefined;
}

/** The service as `ps` and the control API show it. */
export interface ServiceSummary {
  framework: string;
  name: string;
  id: string;
  image: string;
  replicas: number;
  /** Swarm's rolling update state (`updating`, `completed`, `rollback_started`, ...), when one ran. */
  updateState: string | undefined;
}

/** Something about our services changed (a task started, died, turned healthy; the service was updated or removed). */
export interface ServiceChange {
  /** The service's name, when the event says. */
  service: string | undefined;
  kind: 'service' | 'container';
  action: string;
}

export type DeployOutcome = 'created' | 'updated' | 'scaled' | 'unchanged';

/** What the image runs when the spec has no command (Swarm's Command replaces the entrypoint too). */
export interface ImageDefaults {
  entrypoint: readonly string[];
  cmd: readonly string[];
}

const ms = (v: number) => v * 1_000_000;

/** The Swarm service spec for a service-mode framework spec (pure; `image` gives the argv when the spec has none). */
export function serviceSpecFor(spec: FrameworkSpec, image: ImageDefaults): Docker.ServiceSpec {
  const argv = spec.command ? spec.command.map((a) => a.replaceAll('{framework}', spec.name)) : [...image.entrypoint, ...image.cmd];
  if (argv.length === 0) throw new DockerError('bad_request', 'engine_error', `framework ${spec.name}: the spec has no command and the image ${spec.image} has no CMD`);
  const labels = { ...spec.labels, [LABEL_MANAGED]: 'true', [LABEL_FRAMEWORK]: spec.name };
  const env = {
    ...spec.env,
    PAG_TASK_SLOT: '{{.Task.Slot}}',
    PAG_PORT_BASE: String(spec.port),
    PAG_BIND_HOST: spec.bindHost ?? '0.0.0.0',
    WORKER_FRAMEWORK: spec.name,
  };
  const generic = Object.entries(spec.genericResources ?? {}).map(([Kind, Value]) => ({ DiscreteResourceSpec: { Kind, Value } }));
  const restart = spec.restartPolicy ?? { condition: 'any' as const };
  const readyMs = spec.readyTimeoutMs ?? 120_000;
  return {
    Name: serviceNameFor(spec),
    Labels: labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        Command: ['/bin/sh', '-c', PRELUDE, 'sh'],
        Args: argv,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: labels,
        Mounts: [
          ...(spec.mounts ?? []).map((m) => ({ Type: 'bind', Source: m.hostPath, Target: m.containerPath, ReadOnly: m.readOnly ?? false })),
          ...(spec.shmSizeBytes ? [{ Type: 'tmpfs', Target: '/dev/shm', TmpfsOptions: { SizeBytes: spec.shmSizeBytes } }] : []),
        ],
        StopGracePeriod: ms((spec.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S) * 1000),
        Init: true,
        HealthCheck: { Test: ['CMD-SHELL', healthProbeFor(argv)], Interval: ms(1000), Timeout: ms(PROBE_TIMEOUT_MS + 2000), Retries: 3, StartPeriod: ms(readyMs) },
      } as Docker.ContainerSpec,
      Resources: {
        ...(spec.memoryBytes || spec.nanoCpus ? { Limits: { ...(spec.memoryBytes ? { MemoryBytes: spec.memoryBytes } : {}), ...(spec.nanoCpus ? { NanoCPUs: spec.nanoCpus } : {}) } } : {}),
        ...(generic.length ? { Reservations: { GenericResources: generic } } : {}),
      },
      RestartPolicy: { Condition: restart.condition, ...(restart.maxAttempts !== undefined ? { MaxAttempts: restart.maxAttempts } : {}), Delay: ms(restart.delayMs ?? 200) },
      Placement: { Constraints: [...(spec.constraints ?? [])] },
      Networks: [{ Target: 'host' }],
    },
    Mode: { Replicated: { Replicas: spec.replicas ?? 1 } },
    // One task at a time, stopped before its replacement starts (the slot's port is free again); Swarm waits
    // for the new task to be healthy, then `delayMs`, before the next. A failed update rolls back.
    UpdateConfig: { Parallelism: 1, Order: 'stop-first', Delay: ms(spec.update?.delayMs ?? 0), Monitor: ms(spec.update?.monitorMs ?? 1000), FailureAction: 'rollback' },
    RollbackConfig: { Parallelism: 1, Order: 'stop-first' },
  } as Docker.ServiceSpec;
}

/** The spec's hash without its replica count. */
export function specHash(service: Docker.ServiceSpec): string {
  const { Mode: _mode, Labels, ...rest } = service as Docker.ServiceSpec & { Labels?: Record<string, string> };
  const { [LABEL_SPEC_HASH]: _old, ...labels } = Labels ?? {};
  return createHash('sha256').update(JSON.stringify({ ...rest, Labels: labels })).digest('hex').slice(0, 16);
}

interface DockerEvent {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export class SwarmServices {
  readonly #manager: DockerManager;
  readonly #docker: Docker;
  readonly #log: Logger;
  readonly #nodes = new Map<string, string>();

  constructor(manager: DockerManager, { log = silentLogger }: { log?: Logger } = {}) {
    this.#manager = manager;
    this.#docker = manager.docker;
    this.#log = log.child({ component: 'docker.swarm' });
  }

  #wrap(err: unknown, what: string): DockerError {
    const status = statusOf(err);
    const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message ?? String(err);
    if (status === 503 && /not a swarm manager|swarm/i.test(message)) {
      return new DockerError('unavailable', 'engine_error', `${what}: this engine is not a swarm manager (${message}); run 'docker swarm init' there or use mode 'container'`);
    }
    return fromEngineError(err, what, 'swarm');
  }

  /** The service of a framework, or undefined. */
  async inspect(spec: Pick<FrameworkSpec, 'name'>): Promise<Docker.Service | undefined> {
    try {
      return (await this.#docker.getService(serviceNameFor(spec)).inspect()) as Docker.Service;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#wrap(err, `inspect service of ${spec.name}`);
    }
  }

  async #imageDefaults(spec: FrameworkSpec): Promise<ImageDefaults> {
    if (spec.command) return { entrypoint: [], cmd: [] };
    try {
      const info = (await this.#docker.getImage(spec.image).inspect()) as { Config?: { Entrypoint?: string[] | null; Cmd?: string[] | null } };
      return { entrypoint: info.Config?.Entrypoint ?? [], cmd: info.Config?.Cmd ?? [] };
    } catch (err) {
      if (statusOf(err) === 404) throw new DockerError('unavailable', 'image_missing', `framework ${spec.name}: image ${spec.image} is not on the manager engine (load it on every node that may run the service)`);
      throw this.#wrap(err, `inspect image ${spec.image}`);
    }
  }

  /**
   * Creates the framework's service, or brings an existing one to the spec: a changed image, command, env, ...
   * rolls its tasks one at a time; a changed replica count alone scales it. Returns what it did.
   */
  async deploy(spec: FrameworkSpec, signal?: AbortSignal): Promise<DeployOutcome> {
    throwIfAborted(signal, `deploy ${spec.name}`);
    const wanted = serviceSpecFor(spec, await this.#imageDefaults(spec));
    const hash = specHash(wanted);
    (wanted as { Labels: Record<string, string> }).Labels[LABEL_SPEC_HASH] = hash;
    const current = await this.inspect(spec);
    try {
      if (!current) {
        await this.#docker.createService(wanted);
        this.#log.info({ event: 'swarm.service_created', framework: spec.name, replicas: spec.replicas ?? 1 });
        return 'created';
      }
      const labels = (current.Spec as { Labels?: Record<string, string> } | undefined)?.Labels ?? {};
      const replicas = current.Spec?.Mode?.Replicated?.Replicas;
      if (labels[LABEL_SPEC_HASH] === hash && replicas === (spec.replicas ?? 1)) return 'unchanged';
      await this.#update(current, wanted);
      const outcome = labels[LABEL_SPEC_HASH] === hash ? 'scaled' : 'updated';
      this.#log.info({ event: `swarm.service_${outcome}`, framework: spec.name, replicas: spec.replicas ?? 1 });
      return outcome;
    } catch (err) {
      if (err instanceof DockerError) throw err;
      throw this.#wrap(err, `deploy service of ${spec.name}`);
    }
  }

  /**
   * Updates the service at the version `current` was read at. Swarm bumps the version itself (a rolling update that
   * completes records its state), so an update can lose that race with "update out of sequence": the service is read
   * again and `wanted` made from it again (a few times), as the docker CLI's users do by hand.
   */
  async #update(current: Docker.Service, wanted: Docker.ServiceSpec, remake?: (fresh: Docker.Service) => Docker.ServiceSpec): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#docker.getService(current.ID).update({ _query: { version: current.Version?.Index }, _body: wanted } as unknown as Docker.ServiceSpec & { version: number });
        return;
      } catch (err) {
        const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message ?? '';
        if (attempt >= 5 || !/update out of sequence/i.test(message)) throw err;
        const fresh = (await this.#docker.getService(current.ID).inspect()) as Docker.Service;
        this.#log.info({ event: 'swarm.update_retry', service: current.Spec?.Name, attempt, version: fresh.Version?.Index });
        current = fresh;
        if (remake) wanted = remake(fresh);
      }
    }
  }

  /** Sets the replica count (tasks are added or removed; the others keep running). */
  async scale(spec: FrameworkSpec, replicas: number): Promise<void> {
    const current = await this.inspect(spec);
    if (!current?.Spec) throw new DockerError('unavailable', 'not_found', `framework ${spec.name}: no service ${serviceNameFor(spec)}; start it first`);
    try {
      const scaled = (svc: Docker.Service) => ({ ...svc.Spec, Mode: { Replicated: { Replicas: replicas } } }) as Docker.ServiceSpec;
      await this.#update(current, scaled(current), scaled);
    } catch (err) {
      throw this.#wrap(err, `scale service of ${spec.name}`);
    }
    this.#log.info({ event: 'swarm.service_scaled', framework: spec.name, replicas });
  }

  /** Removes the framework's service (its tasks stop); not there is not an error. Returns whether it existed. */
  async remove(spec: Pick<FrameworkSpec, 'name'>): Promise<boolean> {
    try {
      await this.#docker.getService(serviceNameFor(spec)).remove();
      this.#log.info({ event: 'swarm.service_removed', framework: spec.name });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw this.#wrap(err, `remove service of ${spec.name}`);
    }
  }

  /** Every service labelled as ours. */
  async list(): Promise<ServiceSummary[]> {
    let services: Docker.Service[];
    try {
      services = (await this.#docker.listServices({ filters: { label: [`${LABEL_MANAGED}=true`] } })) as Docker.Service[];
    } catch (err) {
      throw this.#wrap(err, 'list services');
    }
    return services.map((s) => ({
      framework: (s.Spec as { Labels?: Record<string, string> } | undefined)?.Labels?.[LABEL_FRAMEWORK] ?? '-',
      name: s.Spec?.Name ?? s.ID,
      id: s.ID,
      image: (s.Spec?.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec?.Image ?? '',
      replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0,
      updateState: (s as { UpdateStatus?: { State?: string } }).UpdateStatus?.State,
    }));
  }

  /** The service's tasks (current ones first by slot), each with its node's address and its endpoint. */
  async tasks(spec: FrameworkSpec): Promise<ServiceTask[]> {
    let raw: Array<Record<string, unknown>>;
    try {
      raw = (await this.#docker.listTasks({ filters: { service: [serviceNameFor(spec)] } })) as Array<Record<string, unknown>>;
    } catch (err) {
      if (statusOf(err) === 404) return [];
      throw this.#wrap(err, `list tasks of ${spec.name}`);
    }
    const tasks: ServiceTask[] = [];
    for (const t of raw) {
      const status = (t.Status ?? {}) as { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
      const slot = typeof t.Slot === 'number' ? t.Slot : 0;
      const nodeId = typeof t.NodeID === 'string' ? t.NodeID : '';
      const host = nodeId ? await this.#nodeAddress(nodeId) : '';
      tasks.push({
        id: String(t.ID),
        slot,
        nodeId,
        host,
        state: status.State ?? 'unknown',
        desiredState: String(t.DesiredState ?? 'unknown'),
        containerId: status.ContainerStatus?.ContainerID,
        endpoint: `tcp://${host.includes(':') ? `[${host}]` : host}:${(spec.port ?? 0) + slot - 1}`,
        error: status.Err,
      });
    }
    return tasks.sort((a, b) => a.slot - b.slot);
  }

  async #nodeAddress(nodeId: string): Promise<string> {
    const known = this.#nodes.get(nodeId);
    if (known) return known;
    try {
      const node = (await this.#docker.getNode(nodeId).inspect()) as { Spec?: { Labels?: Record<string, string> }; Status?: { Addr?: string } };
      const addr = node.Spec?.Labels?.['physical-ai-gateway.address'] ?? node.Status?.Addr ?? '';
      if (addr) this.#nodes.set(nodeId, addr);
      return addr;
    } catch (err) {
      throw this.#wrap(err, `inspect node ${nodeId}`);
    }
  }

  /**
   * Changes to our services as the engine announces them (service create/update/remove; start, die, kill and
   * health of task containers on this engine) until the signal aborts. The subscription is in place when this resolves.
   */
  async changes({ signal }: { signal?: AbortSignal } = {}): Promise<AsyncIterable<ServiceChange>> {
    let stream: Readable;
    try {
      stream = (await this.#docker.getEvents({
        filters: { type: ['service', 'container'], event: ['create', 'update', 'remove', 'start', 'die', 'kill', 'stop', 'health_status'] },
      } as Docker.GetEventsOptions)) as unknown as Readable;
    } catch (err) {
      throw this.#wrap(err, 'docker events');
    }
    return this.#manager.jsonLines(stream, signal, (raw: DockerEvent) => {
      const attrs = raw.Actor?.Attributes ?? {};
      if (raw.Type === 'service') return { service: attrs.name, kind: 'service', action: raw.Action ?? '' };
      if (raw.Type === 'container' && attrs[LABEL_MANAGED] === 'true' && attrs['com.docker.swarm.service.name']) {
        return { service: attrs['com.docker.swarm.service.name'], kind: 'container', action: raw.Action ?? '' };
      }
      return undefined;
    });
  }

  /** The service's tasks' log lines as they are written (after the last `tail`), until the signal aborts or the service goes. */
  async *followLogs(spec: FrameworkSpec, { tail = 10, signal }: { tail?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    let raw: Readable;
    try {
      raw = (await this.#docker.getService(serviceNameFor(spec)).logs({ stdout: true, stderr: true, follow: true, tail, details: false } as Docker.ContainerLogsOptions)) as unknown as Readable;
    } catch (err) {
      throw this.#wrap(err, `logs of service ${serviceNameFor(spec)}`);
    }
    yield* this.#manager.logStreamLines(raw, signal);
  }

  /** The last log lines of the service's tasks (through the engine's service logs). */
  async logs(spec: FrameworkSpec, { tail = 100 }: { tail?: number } = {}): Promise<string[]> {
    try {
      const buf = (await this.#docker.getService(serviceNameFor(spec)).logs({ stdout: true, stderr: true, follow: false, tail, details: false } as Docker.ContainerLogsOptions)) as unknown as Buffer;
      return logLines(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    } catch (err) {
      throw this.#wrap(err, `logs of service ${serviceNameFor(spec)}`);
    }
  }
}
