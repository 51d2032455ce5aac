// The one place that talks to Docker (dockerode): engine, images, containers labelled as ours, exec, memory
// limits, stats, events and logs. Containers without our label are never changed or removed.
import { mkdir, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { totalmem } from 'node:os';
import Docker from 'dockerode';
import { abortError, throwIfAborted } from '../lib/abort.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { ContainerStatsSnapshot } from './types.js';
import { DockerError, engineMessage, fromEngineError, statusOf } from './docker-error.js';
import {
  CONTAINER_IPC_DIR,
  CONTAINER_LEASE_SECRET,
  DEFAULT_STOP_TIMEOUT_S,
  LABEL_FRAMEWORK,
  LABEL_MANAGED,
  containerNameFor,
  endpointsFor,
  imageBuildHint,
  renderCommand,
  type FrameworkSpec,
  type GpuRequest,
} from './framework-spec.js';

export interface DockerManagerOptions {
  /** dockerode connection options; default the local socket /var/run/docker.sock. */
  docker?: Docker.DockerOptions;
  log?: Logger;
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
}

export type ProgressEvent =
  | { type: 'output'; line: string }
  | { type: 'step'; step: number; total: number; line: string }
  | { type: 'layer'; id: string; status: string; currentBytes?: number; totalBytes?: number }
  | { type: 'status'; status: string };

export interface BuildImageOptions {
  /** Build context folder. */
  contextDir: string;
  /** Dockerfile path relative to the context; default `Dockerfile`. */
  dockerfile?: string;
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  /** Network for RUN steps; default `none` (offline builds). */
  networkMode?: 'none' | 'host';
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ImageSummary {
  id: string;
  tags: string[];
  sizeBytes: number;
  createdAt: Date;
  labels: Record<string, string>;
}

export interface CreateContainerOptions {
  name: string;
  image: string;
  /** argv; absent = the image's CMD. */
  cmd?: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** The framework this container serves (label); absent for plain containers. */
  framework?: string;
  labels?: Readonly<Record<string, string>>;
  networkMode?: 'host' | 'none' | 'bridge';
  binds?: readonly { hostPath: string; containerPath: string; readOnly?: boolean }[];
  memoryBytes?: number;
  nanoCpus?: number;
  shmSizeBytes?: number;
  gpus?: GpuRequest;
  runtime?: string;
  stopTimeoutS?: number;
  /** Run docker's init (tini) as PID 1 so SIGTERM stops the worker promptly; default true. */
  init?: boolean;
}

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  state: ContainerState;
  status: string;
  framework: string | undefined;
  labels: Record<string, string>;
}

export interface ExecOptions {
  env?: Readonly<Record<string, string>>;
  workingDir?: string;
  user?: string;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** One stats sample: the byte counters of ContainerStatsSnapshot (what GET /v1/containers shows), in native types. */
export interface ResourceSample extends Omit<ContainerStatsSnapshot, 'time' | 'cpuPercent' | 'pids'> {
  containerId: string;
  time: Date;
  /** % of one CPU summed over CPUs (200 = two full CPUs); undefined without a previous sample. */
  cpuPercent: number | undefined;
  pids: number | undefined;
}

export type ContainerEventType = 'start' | 'stop' | 'die' | 'kill' | 'oom' | 'health' | 'destroy';

export interface ContainerEvent {
  type: ContainerEventType;
  containerId: string;
  name: string;
  framework: string | undefined;
  /** `die`: the exit code. */
  exitCode?: number;
  /** `kill`: the signal. */
  signal?: string;
  /** `health`: the new status. */
  health?: 'healthy' | 'unhealthy' | 'starting';
  time: Date;
}

export interface LogOptions {
  tail?: number;
  timestamps?: boolean;
  /** Only lines written at or after this time, Unix seconds (e.g. the container's last start). */
  since?: number;
}

/** A process started with `startExec`: output lines as they come, and its end. */
export interface RunningExec {
  execId: string;
  lines: AsyncIterable<{ stream: 'stdout' | 'stderr'; line: string }>;
  /** Resolves with the exit code when the process ends (its output has been read to the end). */
  exited: Promise<number>;
}

const EVENT_ACTIONS: Record<string, ContainerEventType> = {
  start: 'start',
  stop: 'stop',
  die: 'die',
  kill: 'kill',
  oom: 'oom',
  destroy: 'destroy',
};
const MAX_EXEC_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The lines of a log buffer: non-TTY containers frame each write with an 8-byte header (stream type 0/1/2, 3 zero
 * bytes, big-endian length); TTY containers send raw text.
 */
export function logLines(buf: Buffer): string[] {
  const split = (text: string) => text.split('\n').filter((l) => l !== '');
  if (buf.length > 0 && buf[0]! > 2) return split(buf.toString('utf8'));
  const lines: string[] = [];
  for (let offset = 0; offset + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(offset + 4);
    lines.push(...split(buf.subarray(offset + 8, offset + 8 + size).toString('utf8')));
    offset += 8 + size;
  }
  return lines;
}

function deviceRequests(gpus: GpuRequest): Docker.DeviceRequest[] {
  if (gpus === 'all') return [{ Driver: '', Count: -1, Capabilities: [['gpu']] }];
  if (typeof gpus === 'number') return [{ Driver: '', Count: gpus, Capabilities: [['gpu']] }];
  return [{ Driver: '', DeviceIDs: [...gpus], Capabilities: [['gpu']] }];
}

function trimName(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((p) => !p.split('/').includes('__pycache__') && !p.endsWith('.pyc'));
}

/** Lines of a byte stream (split on \n), as an async iterable that ends with the stream. */
function linesOf(stream: Readable): AsyncIterable<string> {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  // readline ends on 'end' only; a destroyed stream (abort, close) must end the iteration too
  const end = () => rl.close();
  stream.once('close', end);
  stream.once('error', end);
  return rl;
}

export class DockerManager {
  readonly docker: Docker;
  readonly #log: Logger;
  readonly #socket: string;
  readonly #streams = new Set<{ destroy(): void }>();
  #closed = false;

  constructor({ docker, log = silentLogger }: DockerManagerOptions = {}) {
    this.docker = new Docker(docker);
    // where the modem really connects (it also honours DOCKER_HOST when no options are given)
    const modem = this.docker.modem as { socketPath?: string; host?: string; port?: string | number };
    this.#socket = modem.socketPath ?? (modem.host ? `${modem.host}:${modem.port ?? ''}` : '/var/run/docker.sock');
    this.#log = log.child({ component: 'docker' });
  }

  #wrap(err: unknown, what: string): DockerError {
    return fromEngineError(err, what, this.#socket);
  }

  // ---------------------------------------------------------------- engine

  /** Resolves when the engine answers; rejects `unavailable` (reason `no_engine`) with how to start one. */
  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw this.#wrap(err, 'docker ping');
    }
  }

  async version(): Promise<EngineVersion> {
    try {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
    } catch (err) {
      throw this.#wrap(err, 'docker version');
    }
  }

  /** OCI runtimes the engine knows (`runc`, and `nvidia` where the NVIDIA container toolkit is set up). */
  async runtimes(): Promise<string[]> {
    try {
      const info = (await this.docker.info()) as { Runtimes?: Record<string, unknown> };
      return Object.keys(info.Runtimes ?? {});
    } catch (err) {
      throw this.#wrap(err, 'docker info');
    }
  }

  // ---------------------------------------------------------------- images

  /**
   * Builds an image from a folder (legacy builder, offline by default). Progress goes to `onProgress`;
   * resolves with the image id and the output lines; a failed step rejects `build_failed` with the output.
   */
  async buildImage(opts: BuildImageOptions): Promise<{ imageId: string; tag: string; lines: string[] }> {
    const { contextDir, dockerfile = 'Dockerfile', tag, buildArgs = {}, labels = {}, networkMode = 'none', onProgress, signal } = opts;
    throwIfAborted(signal, `build ${tag}`);
    const src = await listFiles(contextDir);
    const lines: string[] = [];
    let imageId = '';
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(
        { context: contextDir, src },
        { t: tag, dockerfile, buildargs: buildArgs, labels, networkmode: networkMode, rm: true, forcerm: true, version: '1' } as Docker.ImageBuildOptions,
      );
    } catch (err) {
      throw this.#wrap(err, `build ${tag}`);
    }
    let failure: string | undefined;
    await this.#follow(stream, signal, (msg) => {
      if (typeof msg.stream === 'string') {
        for (const line of msg.stream.split('\n')) {
          if (line.trim() === '') continue;
          lines.push(line);
          const step = /^Step (\d+)\/(\d+) : /.exec(line);
          onProgress?.(step ? { type: 'step', step: Number(step[1]), total: Number(step[2]), line } : { type: 'output', line });
        }
      }
      const aux = msg.aux as { ID?: string } | undefined;
      if (aux?.ID) imageId = aux.ID;
      if (msg.error) failure = String(msg.error);
      this.#emitLayer(msg, onProgress);
    });
    if (failure !== undefined) {
      throw new DockerError('unavailable', 'build_failed', `build ${tag} failed: ${failure.trim()}\n${lines.slice(-20).join('\n')}`);
    }
    if (!imageId) imageId = (await this.inspectImage(tag))?.id ?? '';
    this.#log.info({ event: 'docker.image_built', tag, imageId });
    return { imageId, tag, lines };
  }

  /** Pulls an image with per-layer progress. Explicit only: nothing else in the manager pulls. */
  async pullImage(reference: string, { onProgress, signal }: { onProgress?: (e: ProgressEvent) => void; signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(signal, `pull ${reference}`);
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.pull(reference)) as NodeJS.ReadableStream;
    } catch (err) {
      const wrapped = this.#wrap(err, `pull ${reference}`);
      if (wrapped.reason === 'no_engine') throw wrapped;
      throw new DockerError('unavailable', 'pull_failed', `pull ${reference} failed: ${engineMessage(err)} (no registry reachable? build the image locally instead)`, { cause: err });
    }
    let failure: string | undefined;
    await this.#follow(stream, signal, (msg) => {
      if (msg.error) failure = String(msg.error);
      this.#emitLayer(msg, onProgress);
    });
    if (failure !== undefined) throw new DockerError('unavailable', 'pull_failed', `pull ${reference} failed: ${failure}`);
  }

  #emitLayer(msg: Record<string, unknown>, onProgress: ((e: ProgressEvent) => void) | undefined): void {
    if (!onProgress || typeof msg.status !== 'string') return;
    const detail = (msg.progressDetail ?? {}) as { current?: number; total?: number };
    if (typeof msg.id === 'string') {
      onProgress({ type: 'layer', id: msg.id, status: msg.status, currentBytes: detail.current, totalBytes: detail.total });
    } else onProgress({ type: 'status', status: msg.status });
  }

  async #follow(stream: NodeJS.ReadableStream, signal: AbortSignal | undefined, onMessage: (msg: Record<string, unknown>) => void): Promise<void> {
    const destroyable = stream as unknown as Readable;
    const onAbort = () => destroyable.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (msg: Record<string, unknown>) => onMessage(msg),
        );
        destroyable.once('close', () => (signal?.aborted ? reject(abortError(signal)) : undefined));
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async listImages({ reference }: { reference?: string } = {}): Promise<ImageSummary[]> {
    try {
      const images = await this.docker.listImages(reference ? { filters: JSON.stringify({ reference: [reference] }) } : {});
      return images.map((i) => ({
        id: i.Id,
        tags: i.RepoTags ?? [],
        sizeBytes: i.Size,
        createdAt: new Date(i.Created * 1000),
        labels: i.Labels ?? {},
      }));
    } catch (err) {
      throw this.#wrap(err, 'list images');
    }
  }

  /** The local image, or undefined when it is not there. */
  async inspectImage(reference: string): Promise<{ id: string; labels: Record<string, string> } | undefined> {
    try {
      const info = await this.docker.getImage(reference).inspect();
      return { id: info.Id, labels: info.Config?.Labels ?? {} };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#wrap(err, `inspect image ${reference}`);
    }
  }

  /** Removes a local image; one that is not there is not an error. */
  async removeImage(reference: string, { force = false }: { force?: boolean } = {}): Promise<void> {
    try {
      await this.docker.getImage(reference).remove({ force });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw this.#wrap(err, `remove image ${reference}`);
    }
  }

  // ---------------------------------------------------------------- containers

  /** Container inspect data, or undefined when no container has that name or id. */
  async inspect(idOrName: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(idOrName).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.#wrap(err, `inspect ${idOrName}`);
    }
  }

  static isOurs(info: { Config?: { Labels?: Record<string, string> | null } } | undefined): boolean {
    return info?.Config?.Labels?.[LABEL_MANAGED] === 'true';
  }

  /** Inspects a container and refuses it unless it carries our label. */
  async #ours(idOrName: string, what: string): Promise<Docker.ContainerInspectInfo | undefined> {
    const info = await this.inspect(idOrName);
    if (info && !DockerManager.isOurs(info)) {
      throw new DockerError('unavailable', 'not_ours', `${what}: container ${trimName(info.Name)} was not created by physical-ai-gateway (no ${LABEL_MANAGED}=true label); it is left untouched`);
    }
    return info;
  }

  /**
   * Creates a container labelled as ours. When a container of that name exists and is ours, returns its id
   * (idempotent); when it exists and is not ours, rejects `not_ours` and leaves it alone. A missing image
   * rejects `image_missing` (the create API never pulls).
   */
  async createContainer(opts: CreateContainerOptions): Promise<string> {
    const existing = await this.#ours(opts.name, `create ${opts.name}`);
    if (existing) return existing.Id;
    const labels: Record<string, string> = { ...opts.labels, [LABEL_MANAGED]: 'true' };
    if (opts.framework) labels[LABEL_FRAMEWORK] = opts.framework;
    for (const b of opts.binds ?? []) await mkdir(b.hostPath, { recursive: true });
    const hostConfig: Docker.HostConfig & Record<string, unknown> = {
      NetworkMode: opts.networkMode ?? 'none',
      Init: opts.init ?? true,
      Binds: (opts.binds ?? []).map((b) => `${b.hostPath}:${b.containerPath}${b.readOnly ? ':ro' : ''}`),
      RestartPolicy: { Name: 'no' },
    };
    if (opts.memoryBytes !== undefined) hostConfig.Memory = opts.memoryBytes;
    if (opts.nanoCpus !== undefined) hostConfig.NanoCpus = opts.nanoCpus;
    if (opts.shmSizeBytes !== undefined) hostConfig.ShmSize = opts.shmSizeBytes;
    if (opts.gpus !== undefined) hostConfig.DeviceRequests = deviceRequests(opts.gpus);
    if (opts.runtime !== undefined) hostConfig.Runtime = opts.runtime;
    const create: Docker.ContainerCreateOptions = {
      name: opts.name,
      Image: opts.image,
      Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: labels,
      StopTimeout: opts.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S,
      HostConfig: hostConfig,
    };
    if (opts.cmd) create.Cmd = [...opts.cmd];
    try {
      const container = await this.docker.createContainer(create);
      this.#log.info({ event: 'docker.container_created', name: opts.name, id: container.id, image: opts.image, framework: opts.framework });
      return container.id;
    } catch (err) {
      const message = engineMessage(err);
      if (statusOf(err) === 404 && /no such image/i.test(message)) {
        throw new DockerError(
          'unavailable',
          'image_missing',
          `image ${opts.image} is not on this Docker engine (${message}); build it first: ` +
            imageBuildHint(opts.image, opts.framework) +
            `, or pull it: docker pull ${opts.image}`,
          { cause: err },
        );
      }
      if (statusOf(err) === 409) {
        // created concurrently under the same name: return it if it is ours
        const raced = await this.#ours(opts.name, `create ${opts.name}`);
        if (raced) return raced.Id;
      }
      if (/unknown runtime/i.test(message)) {
        throw new DockerError('unavailable', 'runtime_unavailable', `create ${opts.name}: ${message}; the ${opts.runtime} runtime is not configured in this Docker engine (install the NVIDIA container toolkit and register the runtime)`, { cause: err });
      }
      throw this.#wrap(err, `create ${opts.name}`);
    }
  }

  /** The create options for a framework spec (name, labels, endpoint env, mounts, GPUs, limits). */
  containerOptionsFor(spec: FrameworkSpec): CreateContainerOptions {
    const endpoints = endpointsFor(spec);
    const binds = [...(spec.mounts ?? [])];
    if (spec.networkMode === 'none') binds.push({ hostPath: spec.ipcDir!, containerPath: CONTAINER_IPC_DIR });
    // Shared memory: the same path inside, so the descriptors' segment paths mean the same files on both sides.
    if (spec.sharedMemoryDir) binds.push({ hostPath: spec.sharedMemoryDir, containerPath: spec.sharedMemoryDir });
    if (spec.leaseSecretFile) binds.push({ hostPath: spec.leaseSecretFile, containerPath: CONTAINER_LEASE_SECRET, readOnly: true });
    const opts: CreateContainerOptions = {
      name: containerNameFor(spec),
      image: spec.image,
      framework: spec.name,
      env: { WORKER_ENDPOINT: endpoints.container, WORKER_FRAMEWORK: spec.name, ...(spec.sharedMemoryDir ? { WORKER_SHM_DIR: spec.sharedMemoryDir } : {}), ...(spec.leaseSecretFile ? { WORKER_LEASE_SECRET_FILE: CONTAINER_LEASE_SECRET } : {}), ...spec.env },
      networkMode: spec.networkMode,
      binds,
    };
    const cmd = renderCommand(spec);
    if (cmd) opts.cmd = cmd;
    if (spec.labels) opts.labels = spec.labels;
    if (spec.memoryBytes !== undefined) opts.memoryBytes = spec.memoryBytes;
    if (spec.nanoCpus !== undefined) opts.nanoCpus = spec.nanoCpus;
    if (spec.shmSizeBytes !== undefined) opts.shmSizeBytes = spec.shmSizeBytes;
    if (spec.gpus !== undefined) opts.gpus = spec.gpus;
    if (spec.runtime !== undefined) opts.runtime = spec.runtime;
    if (spec.stopTimeoutS !== undefined) opts.stopTimeoutS = spec.stopTimeoutS;
    return opts;
  }

  /**
   * Starts our container (already running: no-op). A GPU request on an engine without the NVIDIA runtime
   * fails here (create accepts it): rejects `gpu_unavailable`.
   */
  async start(idOrName: string): Promise<void> {
    const info = await this.#ours(idOrName, `start ${idOrName}`);
    if (!info) throw new DockerError('unavailable', 'not_found', `start ${idOrName}: no such container`);
    if (info.State.Running) return;
    try {
      await this.docker.getContainer(info.Id).start();
      this.#log.info({ event: 'docker.container_started', name: trimName(info.Name), id: info.Id });
    } catch (err) {
      if (statusOf(err) === 304) return; // already started
      const message = engineMessage(err);
      if (/could not select device driver/i.test(message)) {
        throw new DockerError(
          'unavailable',
          'gpu_unavailable',
          `start ${trimName(info.Name)}: it requests GPUs but this Docker engine has no NVIDIA GPU support (${message}); ` +
            'install the NVIDIA driver and nvidia-container-toolkit, or remove the GPU request from its spec',
          { cause: err },
        );
      }
      throw this.#wrap(err, `start ${trimName(info.Name)}`);
    }
  }

  /** Stops our container: SIGTERM, then SIGKILL after `timeoutS`. Already stopped or gone: no-op. */
  async stop(idOrName: string, { timeoutS }: { timeoutS?: number } = {}): Promise<void> {
    const info = await this.#ours(idOrName, `stop ${idOrName}`);
    if (!info || !info.State.Running) return;
    try {
      await this.docker.getContainer(info.Id).stop(timeoutS === undefined ? {} : { t: timeoutS });
      this.#log.info({ event: 'docker.container_stopped', name: trimName(info.Name), id: info.Id });
    } catch (err) {
      if (statusOf(err) === 304 || statusOf(err) === 404) return;
      throw this.#wrap(err, `stop ${trimName(info.Name)}`);
    }
  }

  /** Removes our container (force: also when running). A container that is gone is not an error. */
  async remove(idOrName: string, { force = true }: { force?: boolean } = {}): Promise<void> {
    const info = await this.#ours(idOrName, `remove ${idOrName}`);
    if (!info) return;
    try {
      await this.docker.getContainer(info.Id).remove({ force, v: true });
      this.#log.info({ event: 'docker.container_removed', name: trimName(info.Name), id: info.Id });
    } catch (err) {
      if (statusOf(err) === 404) return;
      if (statusOf(err) === 409 && /already in progress/i.test(engineMessage(err))) return;
      throw this.#wrap(err, `remove ${trimName(info.Name)}`);
    }
  }

  /** Our containers (running and stopped), optionally of one framework or with extra label filters. */
  async listContainers({ framework, labels = [] }: { framework?: string; labels?: string[] } = {}): Promise<ContainerSummary[]> {
    const label = [`${LABEL_MANAGED}=true`, ...labels];
    if (framework) label.push(`${LABEL_FRAMEWORK}=${framework}`);
    try {
      const list = await this.docker.listContainers({ all: true, filters: JSON.stringify({ label }) });
      return list.map((c) => ({
        id: c.Id,
        name: trimName(c.Names[0] ?? c.Id),
        image: c.Image,
        state: c.State as ContainerState,
        status: c.Status,
        framework: c.Labels[LABEL_FRAMEWORK],
        labels: c.Labels,
      }));
    } catch (err) {
      throw this.#wrap(err, 'list containers');
    }
  }

  /** Removes every container that carries our label (and only those). Returns how many were removed. */
  async removeAllOurs({ labels }: { labels?: string[] } = {}): Promise<number> {
    const ours = await this.listContainers(labels ? { labels } : {});
    await Promise.all(ours.map((c) => this.remove(c.id)));
    return ours.length;
  }

  // ---------------------------------------------------------------- exec

  /**
   * Runs a command in a running container and waits for it: argv as given (no shell), or `{ shell }` to run
   * `sh -c <script>` when shell syntax is wanted. A missing executable gives exit code 126 with the runtime's
   * message in stderr (docker delivers it on stdout).
   */
  async exec(idOrName: string, command: readonly string[] | { shell: string }, opts: ExecOptions = {}): Promise<ExecResult> {
    const argv = Array.isArray(command) ? [...(command as readonly string[])] : ['sh', '-c', (command as { shell: string }).shell];
    const running = await this.startExec(idOrName, argv, opts);
    let stdout = '';
    let stderr = '';
    for await (const { stream, line } of running.lines) {
      if (stream === 'stdout' && stdout.length < MAX_EXEC_OUTPUT_BYTES) stdout += line + '\n';
      if (stream === 'stderr' && stderr.length < MAX_EXEC_OUTPUT_BYTES) stderr += line + '\n';
    }
    const exitCode = await running.exited;
    if ((exitCode === 126 || exitCode === 127) && /OCI runtime exec failed|executable file not found|no such file or directory/i.test(stdout) && stderr === '') {
      return { exitCode, stdout: '', stderr: stdout };
    }
    return { exitCode, stdout, stderr };
  }

  /** Starts a process in a running container and hands back its output lines and exit (worker-process.ts uses it). */
  async startExec(idOrName: string, argv: readonly string[], { env, workingDir, user, signal }: ExecOptions = {}): Promise<RunningExec> {
    throwIfAborted(signal, `exec in ${idOrName}`);
    const info = await this.#ours(idOrName, `exec in ${idOrName}`);
    if (!info) throw new DockerError('unavailable', 'not_found', `exec in ${idOrName}: no such container`);
    if (!info.State.Running) throw new DockerError('unavailable', 'engine_error', `exec in ${trimName(info.Name)}: container is not running (${info.State.Status})`);
    const container = this.docker.getContainer(info.Id);
    let exec: Docker.Exec;
    let raw: NodeJS.ReadableStream;
    try {
      const execOpts: Docker.ExecCreateOptions = { Cmd: [...argv], AttachStdout: true, AttachStderr: true, Tty: false };
      if (env) execOpts.Env = Object.entries(env).map(([k, v]) => `${k}=${v}`);
      if (workingDir) execOpts.WorkingDir = workingDir;
      if (user) execOpts.User = user;
      exec = await container.exec(execOpts);
      raw = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    } catch (err) {
      throw this.#wrap(err, `exec in ${trimName(info.Name)}`);
    }
    const rawStream = raw as unknown as Readable;
    const out = new PassThrough();
    const err = new PassThrough();
    this.docker.modem.demuxStream(raw, out, err);
    this.#streams.add(rawStream);
    const ended = new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.#streams.delete(rawStream);
        out.end();
        err.end();
        resolve();
      };
      rawStream.once('end', finish);
      rawStream.once('close', finish);
      rawStream.once('error', finish);
    });
    const onAbort = () => rawStream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    const exited = ended.then(async () => {
      signal?.removeEventListener('abort', onAbort);
      // the exit code is set once the output ended; a few inspects may still see Running=true
      for (let i = 0; i < 50; i++) {
        const state = await exec.inspect();
        if (!state.Running && state.ExitCode !== null) return state.ExitCode;
        await new Promise((r) => setTimeout(r, 20));
      }
      return -1;
    });
    async function* merge(): AsyncGenerator<{ stream: 'stdout' | 'stderr'; line: string }> {
      const queue: { stream: 'stdout' | 'stderr'; line: string }[] = [];
      let wake: (() => void) | undefined;
      let open = 2;
      const pump = async (s: Readable, name: 'stdout' | 'stderr') => {
        for await (const line of linesOf(s)) {
          queue.push({ stream: name, line });
          wake?.();
        }
        open -= 1;
        wake?.();
      };
      void pump(out, 'stdout');
      void pump(err, 'stderr');
      while (true) {
        while (queue.length > 0) yield queue.shift()!;
        if (open === 0) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    }
    return { execId: exec.id, lines: merge(), exited };
  }

  // ---------------------------------------------------------------- resources

  /** Changes the memory limit of a running (or stopped) container of ours, live. */
  async setMemoryLimit(idOrName: string, memoryBytes: number): Promise<void> {
    const info = await this.#ours(idOrName, `update ${idOrName}`);
    if (!info) throw new DockerError('unavailable', 'not_found', `update ${idOrName}: no such container`);
    try {
      // cgroup v1 wants memory+swap >= memory; keep Docker's default of twice the memory
      await this.docker.getContainer(info.Id).update({ Memory: memoryBytes, MemorySwap: memoryBytes * 2 });
    } catch (err) {
      throw this.#wrap(err, `set memory limit of ${trimName(info.Name)}`);
    }
  }

  /** One resource sample (the engine takes about a second: it samples twice to compute CPU %). */
  async stats(idOrName: string): Promise<ResourceSample> {
    try {
      const raw = (await this.docker.getContainer(idOrName).stats({ stream: false })) as unknown as Docker.ContainerStats;
      return toSample(idOrName, raw, undefined);
    } catch (err) {
      throw this.#wrap(err, `stats of ${idOrName}`);
    }
  }

  /** A sample about every second until the signal aborts, the container stops or the manager closes. */
  async *statsStream(idOrName: string, { signal }: { signal?: AbortSignal } = {}): AsyncGenerator<ResourceSample> {
    let stream: Readable;
    try {
      stream = (await this.docker.getContainer(idOrName).stats({ stream: true })) as unknown as Readable;
    } catch (err) {
      throw this.#wrap(err, `stats of ${idOrName}`);
    }
    yield* this.jsonLines(stream, signal, (raw: Docker.ContainerStats, prev: Docker.ContainerStats | undefined) => toSample(idOrName, raw, prev));
  }

  async *jsonLines<T, R>(stream: Readable, signal: AbortSignal | undefined, map: (value: T, prev: T | undefined) => R | undefined): AsyncGenerator<R> {
    this.#streams.add(stream);
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted || this.#closed) stream.destroy(); // aborted while the request was on its way
    let prev: T | undefined;
    try {
      for await (const line of linesOf(stream)) {
        if (line.trim() === '') continue;
        let value: T;
        try {
          value = JSON.parse(line) as T;
        } catch {
          continue;
        }
        const mapped = map(value, prev);
        prev = value;
        if (mapped !== undefined) yield mapped;
      }
    } catch (err) {
      if (!signal?.aborted && !this.#closed) throw this.#wrap(err, 'docker stream');
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#streams.delete(stream);
      stream.destroy();
    }
  }

  /**
   * Lifecycle events of OUR containers (start, stop, die, kill, oom, health) as they happen, until the signal
   * aborts or the manager closes. The subscription is in place when this resolves.
   */
  async events({ signal, framework }: { signal?: AbortSignal; framework?: string } = {}): Promise<AsyncIterable<ContainerEvent>> {
    const label = [`${LABEL_MANAGED}=true`];
    if (framework) label.push(`${LABEL_FRAMEWORK}=${framework}`);
    let stream: Readable;
    try {
      stream = (await this.docker.getEvents({
        filters: { type: ['container'], label, event: ['start', 'stop', 'die', 'kill', 'oom', 'destroy', 'health_status'] },
      } as Docker.GetEventsOptions)) as unknown as Readable;
    } catch (err) {
      throw this.#wrap(err, 'docker events');
    }
    return this.jsonLines(stream, signal, (raw: DockerEventMessage) => toEvent(raw));
  }

  /** The last `tail` log lines (stdout and stderr interleaved by stream; order across streams is not kept). */
  async logs(idOrName: string, { tail = 100, timestamps = false, since }: LogOptions = {}): Promise<string[]> {
    try {
      const buf = (await this.docker.getContainer(idOrName).logs({ stdout: true, stderr: true, follow: false, tail, timestamps, ...(since !== undefined ? { since } : {}) })) as unknown as Buffer;
      return logLines(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    } catch (err) {
      throw this.#wrap(err, `logs of ${idOrName}`);
    }
  }

  /** Log lines as they are written (after the last `tail`), until the signal aborts or the container stops. */
  async *followLogs(idOrName: string, { tail = 10, signal, since }: { tail?: number; signal?: AbortSignal; since?: number } = {}): AsyncGenerator<string> {
    let raw: Readable;
    try {
      raw = (await this.docker.getContainer(idOrName).logs({ stdout: true, stderr: true, follow: true, tail, ...(since !== undefined ? { since } : {}) })) as unknown as Readable;
    } catch (err) {
      throw this.#wrap(err, `logs of ${idOrName}`);
    }
    yield* this.logStreamLines(raw, signal);
  }

  /**
   * The lines of a followed log stream (a container's or a Swarm service's, stdout and stderr multiplexed) until it
   * ends, the signal aborts or the manager closes; the stream is destroyed on every exit.
   */
  async *logStreamLines(raw: Readable, signal: AbortSignal | undefined): AsyncGenerator<string> {
    const merged = new PassThrough();
    this.docker.modem.demuxStream(raw, merged, merged);
    raw.once('end', () => merged.end());
    raw.once('close', () => merged.end());
    this.#streams.add(raw);
    const onAbort = () => raw.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted || this.#closed) raw.destroy(); // aborted while the request was on its way
    try {
      yield* linesOf(merged);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#streams.delete(raw);
      raw.destroy();
    }
  }

  // ---------------------------------------------------------------- communication

  /** The container's IP: 127.0.0.1 with host networking, undefined with none, else its bridge/network address. */
  async getIpAddress(idOrName: string): Promise<string | undefined> {
    const info = await this.inspect(idOrName);
    if (!info) throw new DockerError('unavailable', 'not_found', `no such container: ${idOrName}`);
    const mode = info.HostConfig.NetworkMode;
    if (mode === 'host') return '127.0.0.1';
    if (mode === 'none') return undefined;
    const direct = (info.NetworkSettings as { IPAddress?: string }).IPAddress;
    if (direct) return direct;
    for (const net of Object.values(info.NetworkSettings.Networks ?? {})) if (net.IPAddress) return net.IPAddress;
    return undefined;
  }

  /**
   * The endpoint the gateway's pool uses for a framework: tcp://127.0.0.1:<port> with host networking, the
   * ipc socket in the mounted folder with none, the container's IP with bridge (needs the container running).
   */
  async endpointFor(spec: FrameworkSpec): Promise<string> {
    if (spec.networkMode !== 'bridge') return endpointsFor(spec).host;
    const ip = await this.getIpAddress(containerNameFor(spec));
    if (!ip) throw new DockerError('unavailable', 'engine_error', `framework ${spec.name}: its container has no IP address`);
    return endpointsFor(spec, ip).host;
  }

  /** Ends every open stream (events, stats, logs, exec output). Containers are left as they are. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#streams) s.destroy();
    this.#streams.clear();
    // an ssh:// engine's agent keeps its ssh sessions open between requests
    (this.docker.modem as { agent?: { destroy(): void } }).agent?.destroy();
  }
}

interface DockerEventMessage {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function toEvent(raw: DockerEventMessage): ContainerEvent | undefined {
  const action = raw.Action ?? raw.status ?? '';
  const attrs = raw.Actor?.Attributes ?? {};
  const base = {
    containerId: raw.Actor?.ID ?? raw.id ?? '',
    name: attrs.name ?? '',
    framework: attrs[LABEL_FRAMEWORK],
    time: raw.timeNano ? new Date(Math.floor(raw.timeNano / 1e6)) : new Date((raw.time ?? 0) * 1000),
  };
  if (action.startsWith('health_status')) {
    const status = action.split(':')[1]?.trim();
    if (status !== 'healthy' && status !== 'unhealthy' && status !== 'starting') return undefined;
    return { type: 'health', health: status, ...base };
  }
  const type = EVENT_ACTIONS[action];
  if (!type) return undefined;
  const event: ContainerEvent = { type, ...base };
  if (type === 'die' && attrs.exitCode !== undefined) event.exitCode = Number(attrs.exitCode);
  if (type === 'kill' && attrs.signal !== undefined) event.signal = attrs.signal;
  return event;
}

/** CPU % = Δcontainer CPU time / Δsystem CPU time × online CPUs × 100 (the docker CLI's formula). */
function toSample(containerId: string, s: Docker.ContainerStats, prev: Docker.ContainerStats | undefined): ResourceSample {
  const pre = prev?.cpu_stats ?? s.precpu_stats;
  let cpuPercent: number | undefined;
  if (pre?.system_cpu_usage && s.cpu_stats?.system_cpu_usage) {
    const cpuDelta = s.cpu_stats.cpu_usage.total_usage - pre.cpu_usage.total_usage;
    const sysDelta = s.cpu_stats.system_cpu_usage - pre.system_cpu_usage;
    const cpus = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 1;
    cpuPercent = sysDelta > 0 && cpuDelta >= 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
  }
  const mem = s.memory_stats ?? {};
  const memStats = (mem.stats ?? {}) as Record<string, number | undefined>;
  // like the docker CLI: usage minus page cache (cgroup v1 `total_inactive_file`, v2 `inactive_file`)
  const cache = memStats.total_inactive_file ?? memStats.inactive_file ?? 0;
  const usage = Math.max(0, (mem.usage ?? 0) - (cache < (mem.usage ?? 0) ? cache : 0));
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  let read = 0;
  let write = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op.toLowerCase();
    if (op === 'read') read += e.value;
    if (op === 'write') write += e.value;
  }
  return {
    containerId,
    time: new Date(s.read),
    cpuPercent,
    memoryUsedBytes: usage,
    // Docker reports the host's memory as the limit of a container that has none: 0 means none, as documented.
    memoryLimitBytes: mem.limit !== undefined && mem.limit < totalmem() ? mem.limit : 0,
    networkRxBytes: rx,
    networkTxBytes: tx,
    blockReadBytes: read,
    blockWriteBytes: write,
    pids: s.pids_stats?.current,
  };
}
