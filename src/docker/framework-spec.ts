// Declarative description of one framework's container (image, command, network, mounts, GPUs, limits),
// the built-in specs for LeRobot, GR00T N1.5 and Pi0, validation that lists every bad field at once, and
// the communication setup (which endpoint the worker binds inside, which one the gateway connects to).
import { isAbsolute, join } from 'node:path';
import { GatewayError } from '../lib/errors.js';

/** GPUs for a container: every GPU, a count, or device ids / UUIDs (becomes HostConfig.DeviceRequests). */
export type GpuRequest = 'all' | number | readonly string[];

/**
 * `host`: the container shares the host's network; the worker binds tcp://127.0.0.1:<port>.
 * `none`: no network at all; the worker binds an ipc:// socket in `ipcDir`, mounted at /ipc.
 * `bridge`: the container's own address (remote or isolated setups; not used on this project's CI hosts);
 * the worker binds tcp://0.0.0.0:<port> and the gateway connects to the container's IP.
 */
export type NetworkMode = 'host' | 'none' | 'bridge';

export interface MountSpec {
  hostPath: string;
  containerPath: string;
  readOnly?: boolean;
}

export interface FrameworkSpec {
  /** Framework name as the router knows it (`lerobot`, `groot`, `pi0`, or a custom one). */
  name: string;
  /** Local image reference. The manager never pulls implicitly. */
  image: string;
  networkMode: NetworkMode;
  /** Worker port (`host` and `bridge`). */
  port?: number;
  /** Host folder for the ipc socket (`none`), mounted at /ipc in the container. */
  ipcDir?: string;
  /**
   * Worker command (argv, never a shell string). `{endpoint}`, `{framework}` and `{port}` are replaced with the
   * container-side endpoint, the name and the port. Absent: the image's CMD (it reads WORKER_ENDPOINT).
   */
  command?: readonly string[];
  env?: Readonly<Record<string, string>>;
  mounts?: readonly MountSpec[];
  gpus?: GpuRequest;
  /** OCI runtime, e.g. `nvidia` on Jetson, where DeviceRequests do not work. */
  runtime?: string;
  shmSizeBytes?: number;
  memoryBytes?: number;
  /** CPU quota in units of 1e-9 CPUs (1.5 CPUs = 1_500_000_000). */
  nanoCpus?: number;
  /** How long a start may take until the worker answers health with ready=true. */
  readyTimeoutMs?: number;
  /** Seconds docker waits after SIGTERM before SIGKILL on stop. */
  stopTimeoutS?: number;
  /** Container name; default `physical-ai-gateway-<name>`. */
  containerName?: string;
  /** Extra labels (ours are added by the manager and cannot be overridden). */
  labels?: Readonly<Record<string, string>>;
  /**
   * Same-host shared memory: the host's shared-memory root, mounted at the same path in the container (descriptors
   * name paths under it) and given to the worker as WORKER_SHM_DIR. Set from the gateway's `sharedMemory.dir`.
   */
  sharedMemoryDir?: string;
  /** The direct path: the lease secret file, mounted read-only at CONTAINER_LEASE_SECRET and named by WORKER_LEASE_SECRET_FILE. */
  leaseSecretFile?: string;
  /**
   * `container` (default): one container on the engine. `service`: a Docker Swarm service with `replicas` tasks
   * (the engine must be a swarm manager); each task binds `port + slot - 1` on its node (host networking).
   */
  mode?: LaunchMode;
  /** Service mode: how many tasks; default 1. */
  replicas?: number;
  /** Service mode: Swarm placement constraints, e.g. `node.labels.gpu == true`, `node.hostname == gpu-box-1`. */
  constraints?: readonly string[];
  /** Service mode: Swarm restart policy; default `any` (a task that ends is replaced). */
  restartPolicy?: RestartPolicySpec;
  /** Service mode: generic resources each task reserves, e.g. `{ gpu: 1 }` (nodes advertise them: `node-generic-resources`). */
  genericResources?: Readonly<Record<string, number>>;
  /** Service mode: rolling update, one task at a time (stop-first: each slot keeps its port); `delayMs` between tasks. */
  update?: { delayMs?: number; monitorMs?: number };
  /** Service mode: the address the worker binds on its node; default `0.0.0.0` (use CURVE between hosts). */
  bindHost?: string;
  /**
   * The Docker engine this framework runs on, `DOCKER_HOST`-style: `unix:///var/run/docker.sock`, `tcp://host:2376`
   * (with `tls`), `ssh://user@host`. Absent: the gateway's default engine.
   */
  engine?: string;
  /** TLS client files for a `tcp://` engine (as DOCKER_CERT_PATH holds them): CA, certificate and key, PEM. */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /**
   * The host key of an `ssh://` engine, `SHA256:...` as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it
   * on that host: any other key is refused, and known_hosts is not read.
   */
  sshHostKey?: string;
  /**
   * The OpenSSH known_hosts file an `ssh://` engine's host key is checked against (absolute here; relative to the
   * config file in a config). Absent: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`, as ssh reads them.
   */
  sshKnownHosts?: string;
  /**
   * `known-hosts` (default): the host key must be the pinned `sshHostKey` or listed in known_hosts; an unknown or
   * changed key is refused. `accept-any`: any key is accepted (logged as `docker.ssh_host_key_unchecked`).
   */
  sshHostKeyCheck?: 'known-hosts' | 'accept-any';
}

export type LaunchMode = 'container' | 'service';

export interface RestartPolicySpec {
  condition: 'any' | 'on-failure' | 'none';
  maxAttempts?: number;
  delayMs?: number;
}

/** Where a launched worker finds its lease secret (the direct path). */
export const CONTAINER_LEASE_SECRET = '/run/physical-ai-gateway/lease.secret';

export const LABEL_MANAGED = 'physical-ai-gateway.managed';
export const LABEL_FRAMEWORK = 'physical-ai-gateway.framework';
export const DEFAULT_READY_TIMEOUT_MS = 120_000;
export const DEFAULT_STOP_TIMEOUT_S = 10;
/** Where `none`-network specs find their ipc socket inside the container. */
export const CONTAINER_IPC_DIR = '/ipc';
/** Unix socket paths are limited to 107 bytes (sun_path). */
const MAX_IPC_PATH = 107;
const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const CONTAINER_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function containerNameFor(spec: Pick<FrameworkSpec, 'name' | 'containerName'>): string {
  return spec.containerName ?? `physical-ai-gateway-${spec.name}`;
}

/** True when the spec asks for GPUs (DeviceRequests or the nvidia runtime): the one-GPU-framework policy applies. */
export function usesGpu(spec: FrameworkSpec): boolean {
  return spec.gpus !== undefined || spec.runtime === 'nvidia';
}

export interface Endpoints {
  /** What the worker binds inside the container. */
  container: string;
  /** What the gateway connects to; for `bridge` it needs the container's IP (see DockerManager.endpointFor). */
  host: string;
}

/** The endpoints for host and none networking (bridge: `host` is resolved from the container's IP at start). */
export function endpointsFor(spec: FrameworkSpec, containerIp?: string): Endpoints {
  switch (spec.networkMode) {
    case 'host': {
      // On a remote engine the worker binds on that host (bindHost, default every address) and the gateway
      // connects to the engine's host name; locally both sides use 127.0.0.1.
      const remote = remoteEngineHost(spec.engine);
      if (remote) return { container: `tcp://${spec.bindHost ?? '0.0.0.0'}:${spec.port}`, host: `tcp://${remote.includes(':') ? `[${remote}]` : remote}:${spec.port}` };
      return { container: `tcp://127.0.0.1:${spec.port}`, host: `tcp://127.0.0.1:${spec.port}` };
    }
    case 'none':
      return { container: `ipc://${CONTAINER_IPC_DIR}/${spec.name}.sock`, host: `ipc://${join(spec.ipcDir!, `${spec.name}.sock`)}` };
    case 'bridge':
      return { container: `tcp://0.0.0.0:${spec.port}`, host: `tcp://${containerIp ?? '127.0.0.1'}:${spec.port}` };
  }
}

/** The host of a tcp:// or ssh:// engine URL (where its host-network containers are reached); undefined for local engines. */
export function remoteEngineHost(engine: string | undefined): string | undefined {
  if (!engine || engine.startsWith('unix://')) return undefined;
  try {
    return new URL(engine).hostname.replace(/^\[|\]$/g, '') || undefined;
  } catch {
    return undefined;
  }
}

/** The command argv with `{endpoint}`, `{framework}` and `{port}` filled in. */
export function renderCommand(spec: FrameworkSpec): string[] | undefined {
  if (!spec.command) return undefined;
  const endpoint = endpointsFor(spec).container;
  return spec.command.map((arg) =>
    arg.replaceAll('{endpoint}', endpoint).replaceAll('{framework}', spec.name).replaceAll('{port}', String(spec.port ?? '')),
  );
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isRecordOfStrings = (v: unknown): v is Record<string, string> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/**
 * Checks a spec (from config or code) and returns it typed. Throws one `bad_request` GatewayError naming
 * every bad field, e.g. `framework spec "x": port: must be an integer 1..65535; image: required`.
 */
export function validateFrameworkSpec(input: unknown): FrameworkSpec {
  const problems: string[] = [];
  const bad = (field: string, why: string) => problems.push(`${field}: ${why}`);
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new GatewayError('bad_request', 'framework spec: must be an object');
  }
  const s = input as Record<string, unknown>;
  const label = typeof s.name === 'string' ? s.name : '?';
  if (typeof s.name !== 'string' || !NAME_RE.test(s.name)) bad('name', 'required; lower-case letters, digits, "_", "-", "." (max 63)');
  if (typeof s.image !== 'string' || s.image.trim() === '' || /\s/.test(s.image)) bad('image', 'required; an image reference without spaces');
  if (s.networkMode !== 'host' && s.networkMode !== 'none' && s.networkMode !== 'bridge') bad('networkMode', "must be 'host', 'none' or 'bridge'");
  const needsPort = s.networkMode === 'host' || s.networkMode === 'bridge';
  if (s.port !== undefined || needsPort) {
    if (!isPositiveInt(s.port) || s.port > 65_535) bad('port', `must be an integer 1..65535${needsPort ? ` (required with networkMode '${String(s.networkMode)}')` : ''}`);
  }
  if (s.networkMode === 'none') {
    if (typeof s.ipcDir !== 'string' || !isAbsolute(s.ipcDir)) bad('ipcDir', "required with networkMode 'none'; an absolute host folder");
    else if (typeof s.name === 'string' && `${s.ipcDir}/${s.name}.sock`.length > MAX_IPC_PATH) bad('ipcDir', `socket path ${s.ipcDir}/${s.name}.sock is longer than ${MAX_IPC_PATH} bytes`);
  } else if (s.ipcDir !== undefined) bad('ipcDir', "only used with networkMode 'none'");
  if (s.command !== undefined && (!Array.isArray(s.command) || s.command.length === 0 || !s.command.every((a) => typeof a === 'string'))) {
    bad('command', 'must be a non-empty argv array of strings (no shell string)');
  }
  if (s.env !== undefined && !isRecordOfStrings(s.env)) bad('env', 'must map names to strings');
  if (s.sharedMemoryDir !== undefined && (typeof s.sharedMemoryDir !== 'string' || !isAbsolute(s.sharedMemoryDir))) bad('sharedMemoryDir', 'must be an absolute host folder');
  if (s.leaseSecretFile !== undefined && (typeof s.leaseSecretFile !== 'string' || !isAbsolute(s.leaseSecretFile))) bad('leaseSecretFile', 'must be an absolute host file');
  if (s.labels !== undefined && !isRecordOfStrings(s.labels)) bad('labels', 'must map names to strings');
  if (s.mounts !== undefined) {
    if (!Array.isArray(s.mounts)) bad('mounts', 'must be an array');
    else
      s.mounts.forEach((m: unknown, i) => {
        const mount = (m ?? {}) as Record<string, unknown>;
        if (typeof mount.hostPath !== 'string' || !isAbsolute(mount.hostPath)) bad(`mounts[${i}].hostPath`, 'must be an absolute path');
        if (typeof mount.containerPath !== 'string' || !isAbsolute(mount.containerPath)) bad(`mounts[${i}].containerPath`, 'must be an absolute path');
        if (mount.readOnly !== undefined && typeof mount.readOnly !== 'boolean') bad(`mounts[${i}].readOnly`, 'must be a boolean');
      });
  }
  if (s.gpus !== undefined) {
    const g = s.gpus;
    const ok = g === 'all' || isPositiveInt(g) || (Array.isArray(g) && g.length > 0 && g.every((x) => typeof x === 'string' && x !== ''));
    if (!ok) bad('gpus', "must be 'all', a positive count, or a non-empty list of device ids");
  }
  if (s.runtime !== undefined && (typeof s.runtime !== 'string' || s.runtime === '')) bad('runtime', "must be a runtime name such as 'nvidia'");
  for (const f of ['shmSizeBytes', 'memoryBytes', 'nanoCpus', 'readyTimeoutMs'] as const) {
    if (s[f] !== undefined && !isPositiveInt(s[f])) bad(f, 'must be a positive integer');
  }
  if (typeof s.memoryBytes === 'number' && s.memoryBytes < 6 * 1024 * 1024) bad('memoryBytes', 'must be at least 6 MiB (Docker minimum)');
  if (s.stopTimeoutS !== undefined && !(typeof s.stopTimeoutS === 'number' && Number.isInteger(s.stopTimeoutS) && s.stopTimeoutS >= 0)) {
    bad('stopTimeoutS', 'must be an integer >= 0');
  }
  if (s.containerName !== undefined && (typeof s.containerName !== 'string' || !CONTAINER_NAME_RE.test(s.containerName))) {
    bad('containerName', 'must match [a-zA-Z0-9][a-zA-Z0-9_.-]+');
  }
  validateServiceFields(s, bad);
  if (problems.length > 0) throw new GatewayError('bad_request', `framework spec "${label}": ${problems.join('; ')}`);
  return s as unknown as FrameworkSpec;
}

const ENGINE_RE = /^(unix:\/\/\/.+|tcp:\/\/[^\s/]+:\d+|ssh:\/\/[^\s/]+)$/;
const SERVICE_ONLY = ['replicas', 'constraints', 'restartPolicy', 'genericResources', 'update'] as const;

/** The Swarm and remote-engine fields of a spec (part of validateFrameworkSpec). */
function validateServiceFields(s: Record<string, unknown>, bad: (field: string, why: string) => void): void {
  if (s.mode !== undefined && s.mode !== 'container' && s.mode !== 'service') bad('mode', "must be 'container' or 'service'");
  if (s.mode === 'service') {
    if (s.networkMode !== 'host') bad('networkMode', "must be 'host' with mode 'service' (each task binds its own port on its node)");
    if (s.containerName !== undefined) bad('containerName', "not used with mode 'service' (Swarm names the tasks; the service is named after it)");
    if (s.runtime !== undefined || s.gpus !== undefined) bad(s.runtime !== undefined ? 'runtime' : 'gpus', "not available to Swarm services; use 'genericResources' (e.g. { gpu: 1 }) or a 'constraints' node label");
    if (Array.isArray(s.command) && s.command.some((a) => typeof a === 'string' && a !== '{endpoint}' && a !== '{port}' && /\{(endpoint|port)\}/.test(a))) {
      bad('command', "with mode 'service', {endpoint} and {port} must be whole arguments (each task fills in its own)");
    }
  } else {
    if (s.bindHost !== undefined && (typeof s.engine !== 'string' || s.engine.startsWith('unix://'))) bad('bindHost', "only used with mode 'service' or a remote engine");
    for (const f of SERVICE_ONLY) if (s[f] !== undefined) bad(f, "only used with mode 'service'");
  }
  if (s.replicas !== undefined && !(typeof s.replicas === 'number' && Number.isInteger(s.replicas) && s.replicas >= 0 && s.replicas <= 64)) bad('replicas', 'must be an integer 0..64');
  if (typeof s.port === 'number' && typeof s.replicas === 'number' && s.port + s.replicas - 1 > 65_535) bad('replicas', `ports ${s.port}..${s.port + s.replicas - 1} go past 65535`);
  if (s.constraints !== undefined && !(Array.isArray(s.constraints) && s.constraints.every((c) => typeof c === 'string' && /^\S+\s*(==|!=)\s*\S+$/.test(c)))) {
    bad('constraints', "must be a list of Swarm constraints such as 'node.labels.gpu == true'");
  }
  if (s.restartPolicy !== undefined) {
    const r = (s.restartPolicy ?? {}) as Record<string, unknown>;
    if (r.condition !== 'any' && r.condition !== 'on-failure' && r.condition !== 'none') bad('restartPolicy.condition', "must be 'any', 'on-failure' or 'none'");
    for (const f of ['maxAttempts', 'delayMs'] as const) if (r[f] !== undefined && !(Number.isInteger(r[f]) && (r[f] as number) >= 0)) bad(`restartPolicy.${f}`, 'must be an integer >= 0');
  }
  if (s.genericResources !== undefined) {
    const g = s.genericResources as Record<string, unknown>;
    if (g === null || typeof g !== 'object' || Array.isArray(g) || !Object.values(g).every((v) => isPositiveInt(v))) bad('genericResources', "must map a resource kind to a positive count, e.g. { gpu: 1 }");
  }
  if (s.update !== undefined) {
    const u = (s.update ?? {}) as Record<string, unknown>;
    for (const f of ['delayMs', 'monitorMs'] as const) if (u[f] !== undefined && !(Number.isInteger(u[f]) && (u[f] as number) >= 0)) bad(`update.${f}`, 'must be an integer >= 0');
  }
  if (s.bindHost !== undefined && (typeof s.bindHost !== 'string' || !/^[0-9a-fA-F.:]+$/.test(s.bindHost))) bad('bindHost', 'must be an IP address such as 0.0.0.0 or 127.0.0.1');
  if (s.engine !== undefined && (typeof s.engine !== 'string' || !ENGINE_RE.test(s.engine))) bad('engine', 'must be unix:///path, tcp://host:port or ssh://[user@]host[:port]');
  if (s.tls !== undefined) {
    const t = (s.tls ?? {}) as Record<string, unknown>;
    if (typeof s.engine !== 'string' || !s.engine.startsWith('tcp://')) bad('tls', 'only used with a tcp:// engine');
    for (const f of ['caFile', 'certFile', 'keyFile'] as const) if (typeof t[f] !== 'string' || !isAbsolute(t[f])) bad(`tls.${f}`, 'required; an absolute path to a PEM file');
  }
  if (s.sshHostKey !== undefined) {
    if (typeof s.engine !== 'string' || !s.engine.startsWith('ssh://')) bad('sshHostKey', 'only used with an ssh:// engine');
    if (typeof s.sshHostKey !== 'string' || !/^SHA256:[A-Za-z0-9+/]{43}$/.test(s.sshHostKey)) bad('sshHostKey', "must be a host key fingerprint as 'ssh-keygen -lf' prints it, SHA256:<43 base64 characters>");
  }
  if (s.sshKnownHosts !== undefined) {
    if (typeof s.engine !== 'string' || !s.engine.startsWith('ssh://')) bad('sshKnownHosts', 'only used with an ssh:// engine');
    if (typeof s.sshKnownHosts !== 'string' || !isAbsolute(s.sshKnownHosts)) bad('sshKnownHosts', 'must be an absolute path to an OpenSSH known_hosts file');
    if (s.sshHostKey !== undefined) bad('sshKnownHosts', 'not used with sshHostKey (the pinned key is the only one accepted)');
  }
  if (s.sshHostKeyCheck !== undefined) {
    if (typeof s.engine !== 'string' || !s.engine.startsWith('ssh://')) bad('sshHostKeyCheck', 'only used with an ssh:// engine');
    if (s.sshHostKeyCheck !== 'known-hosts' && s.sshHostKeyCheck !== 'accept-any') bad('sshHostKeyCheck', "must be 'known-hosts' (the default) or 'accept-any'");
    if (s.sshHostKeyCheck === 'accept-any' && (s.sshHostKey !== undefined || s.sshKnownHosts !== undefined)) bad('sshHostKeyCheck', "'accept-any' checks no key: drop sshHostKey/sshKnownHosts, or the accept-any");
  }
}

/** True for a framework run as a Swarm service. */
export function isService(spec: FrameworkSpec): boolean {
  return spec.mode === 'service';
}

/** The Swarm service name of a service-mode spec (containerName is not used there). */
export function serviceNameFor(spec: Pick<FrameworkSpec, 'name'>): string {
  return `physical-ai-gateway-${spec.name}`;
}

export interface BuiltinSpecOptions {
  /** The user's home folder (the entry point passes os.homedir()); host folders live below it. */
  homeDir: string;
  /** Image tag for the framework images built from docker/<framework>/Dockerfile. */
  imageTag?: string;
  /** GPUs for each built-in framework; default 'all'. `false`: no GPU request (CPU-only tryouts). */
  gpus?: GpuRequest | false;
  /** Use the `nvidia` runtime instead of DeviceRequests (Jetson). */
  jetson?: boolean;
}

/** The host folders of the original design: ~/.cache/physical_ai_tools/{shared_data,<framework>} and the HF cache. */
export function hostFolders(homeDir: string): { sharedData: string; huggingface: string; framework(dir: string): string } {
  const root = join(homeDir, '.cache', 'physical_ai_tools');
  return {
    sharedData: join(root, 'shared_data'),
    huggingface: join(homeDir, '.cache', 'huggingface'),
    framework: (dir) => join(root, dir),
  };
}

/** Built-in specs for LeRobot (5555), GR00T N1.5 (5556) and Pi0 (5557), as the docker/ folder builds them. */
/** How to get a missing image: the offline script for the test image, docker/<name>/Dockerfile for the built-in
 * frameworks (the only ones that have one), the CLI's build command for a framework of your own. */
export function imageBuildHint(image: string, framework: string | undefined): string {
  if (image.startsWith('physical-ai-gateway/worker')) return 'bash scripts/build-test-images.sh';
  if (framework === 'lerobot' || framework === 'groot' || framework === 'pi0') return `docker build -t ${image} -f docker/${framework}/Dockerfile docker`;
  return `physical-ai-gateway build <your image's folder> --tag ${image} (or docker build -t ${image} <folder>)`;
}

export function builtinFrameworkSpecs({ homeDir, imageTag = 'local', gpus = 'all', jetson = false }: BuiltinSpecOptions): FrameworkSpec[] {
  const folders = hostFolders(homeDir);
  const make = (name: string, port: number, dataDir: string, policyEnv: Record<string, string>): FrameworkSpec => ({
    name,
    image: `physical-ai-gateway/${name}:${imageTag}`,
    networkMode: 'host',
    port,
    command: ['python', '/app/serve_policy.py', '--endpoint', '{endpoint}', '--framework', '{framework}'],
    env: { HF_HOME: '/root/.cache/huggingface', PHYSICAL_AI_DATA: `/workspace/${dataDir}`, ...policyEnv },
    mounts: [
      { hostPath: folders.sharedData, containerPath: '/workspace/shared_data' },
      { hostPath: folders.framework(dataDir), containerPath: `/workspace/${dataDir}` },
      { hostPath: folders.huggingface, containerPath: '/root/.cache/huggingface' },
    ],
    ...(jetson ? { runtime: 'nvidia' } : gpus === false ? {} : { gpus }),
    shmSizeBytes: 8 * 1024 ** 3,
    readyTimeoutMs: 600_000, // first start downloads and loads multi-GB checkpoints
    stopTimeoutS: 15,
  });
  return [
    make('lerobot', 5555, 'lerobot', { POLICY_PATH: 'lerobot/act_aloha_sim_transfer_cube_human' }),
    make('groot', 5556, 'groot_n15', { POLICY_PATH: 'nvidia/GR00T-N1.5-3B', GROOT_EMBODIMENT: 'new_embodiment', GROOT_DATA_CONFIG: 'so100' }),
    make('pi0', 5557, 'pi0', { OPENPI_CONFIG: 'pi0_aloha_sim', POLICY_PATH: 'gs://openpi-assets/checkpoints/pi0_aloha_sim' }),
  ];
}
