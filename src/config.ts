// The gateway's configuration: read once from a YAML/JSON file plus overrides (flags, environment mapped by the
// CLI), checked in one pass so every bad field is reported at once. Nothing here reads process.env.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CODECS, DEFAULT_LIMITS, MAX_DEPTH_CEILING, type Codec, type Limits } from './protocol/codec.js';
import { ConfigError, IssueList, type ConfigIssue } from './lib/config-error.js';
import type { ActionGroup } from './protocol/action-mapping.js';
import { OBSERVATION_PRESETS, OBSERVATION_SPEC_FIELDS, type ObservationMappingSpec } from './protocol/observation-mapping.js';
import { OUTBOUND_SPEC_FIELDS, PEER_PROTOCOLS, DEFAULT_OUTBOUND, type OutboundMappingSpec, type PeerProtocol, type StateGroup } from './protocol/outbound-mapping.js';
import { isLogLevel, type LogLevel } from './lib/log.js';
import { DEFAULT_GATEWAY_ZMQ_ENDPOINT, parseEndpoint } from './zmq/addresses.js';
import { readCurveKeyFileSync, readPublicKeysDirSync, type CurveCertificate, type CurveClientKeys, type CurveServerKeys } from './zmq/curve-keys.js';

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_ZMQ_ENDPOINT = DEFAULT_GATEWAY_ZMQ_ENDPOINT;
export const DEFAULT_BODY_LIMIT_BYTES = DEFAULT_LIMITS.maxMessageBytes;
export const DEFAULT_TIMEOUT_MS = 2_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;
export const DEFAULT_DOWN_AFTER_FAILURES = 2;
export const DEFAULT_MAX_CONCURRENCY = 64;
export const DEFAULT_START_TIMEOUT_MS = 180_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
export const DEFAULT_FRAMEWORK = 'demo';

export interface FrameworkConfig {
  name: string;
  /**
   * What the framework's endpoints speak: `native` (our workers, default), `openpi` (an unmodified openpi websocket
   * policy server: endpoints are ws://host:port[/path]) or `groot` (an unmodified GR00T ZMQ inference server).
   */
  protocol: PeerProtocol;
  /**
   * ZMQ endpoints of the framework's workers (tcp://host:port or ipc://path), or websocket URLs for `protocol: openpi`.
   * Empty for embedded/launched ones.
   */
  endpoints: string[];
  /** For a peer server (`protocol` openpi/groot): how the standard observation becomes its keys, and its reply the action. */
  outbound?: OutboundMappingSpec;
  /** For a peer server: its token (openpi: `Authorization: Api-Key`; GR00T: `api_token`). */
  peerToken?: string;
  /** Codec the gateway uses towards the workers. */
  codec: Codec;
  /** Deadline of one request to this framework, ms (a caller's smaller `timeout_ms` wins). */
  timeoutMs: number;
  /** Requests in flight to this framework at most; beyond it requests get `overloaded`. */
  maxConcurrency: number;
  /** Served by the embedded TS demo worker (a child process started by the gateway). */
  embedded: boolean;
  /** Emulated compute time of the embedded worker, ms. */
  embeddedDelayMs: number;
  /** Reference to a launcher spec (the docker manager reads it); set = start on demand. */
  launcher?: unknown;
  /** How long an on-demand start may take, ms. */
  startTimeoutMs: number;
  /** How the peers' observations sent to this framework become the standard one (unset: the ROBOTIS example's). */
  observation?: ObservationMappingSpec;
  /** What openpi clients of this framework get (openpi door). */
  openpi?: { metadata: Record<string, unknown> };
  /** What GR00T clients of this framework get (GR00T door). */
  groot?: { actionGroups?: ActionGroup[]; modalityConfig: Record<string, unknown> };
  /** CURVE towards the workers (keys read from `curve.serverPublicKeyFile` and `curve.secretKeyFile` at start). */
  curve?: CurveClientKeys;
  /** Record this framework's inference traffic from the start (see `recording`; switchable at run time). */
  record: boolean;
  /** Its worker runs training jobs (the SDK's JobRunner: train/jobs/cancel_job); `train` requests become jobs. */
  training: boolean;
  /** The direct path: clients may get a lease and send straight to the worker (see src/gateway/lease-service.ts). */
  direct?: DirectConfig;
  /** How its workers are checked (absent: every `healthIntervalMs`, 1 s to answer, down after 2 misses in a row). */
  health?: HealthConfig;
}

export interface HealthConfig {
  /** Time between health checks of each worker, ms (default: the gateway's `healthIntervalMs`). */
  intervalMs: number;
  /** How long one check may take, ms. */
  timeoutMs: number;
  /** A connected ready worker leaves the rotation after this many missed checks in a row (a disconnect at once). */
  downAfterFailures: number;
}

export interface DirectConfig {
  /** The per-worker lease secret (read from `direct.secretFile`; the worker gets the same file). */
  secret: Buffer;
  /** Where it was read from (absolute): launched workers get this file. */
  secretFile: string;
  /** How long a lease lasts, ms. */
  leaseTtlMs: number;
  /** Requests in flight at once under one lease. */
  maxInFlight: number;
  /** How often the gateway collects the workers' records of direct requests, ms. */
  collectIntervalMs: number;
}

/** A peer-protocol front door: off unless its section is in the config. */
export interface PeerDoorConfig {
  /** The framework for requests that name none (openpi: path `/`; GR00T: every request); unset: the gateway default. */
  framework: string | undefined;
}
export interface OpenpiDoorConfig extends PeerDoorConfig {
  host: string;
  port: number;
}
export interface GrootDoorConfig extends PeerDoorConfig {
  endpoint: string;
}

export interface GatewayConfig {
  http: HttpConfig;
  /** The ZMQ front door; `curve` from `zmq.curve.secretKeyFile` (+ `clientKeysDir`: the only clients accepted). */
  zmq: { endpoint: string; curve?: CurveServerKeys };
  /** openpi's websocket protocol (openpi-client's WebsocketClientPolicy), when configured. */
  openpi: OpenpiDoorConfig | undefined;
  /** GR00T's ZMQ protocol (Isaac-GR00T's PolicyClient), when configured. */
  groot: GrootDoorConfig | undefined;
  /** The framework for requests that name none: the configured one, or the only one. */
  defaultFramework: string | undefined;
  /** Bearer token for command/train/container control; required when HTTP listens on a non-loopback host. */
  authToken: string | undefined;
  logLevel: LogLevel;
  limits: Limits;
  shutdownGraceMs: number;
  /** Time between background health checks of each pool, ms. */
  healthIntervalMs: number;
  /** How launcher-started frameworks (Docker) are managed. */
  docker: DockerConfig;
  frameworks: Record<string, FrameworkConfig>;
  /** Where and how inference traffic is recorded (MCAP files); off unless a framework or `enabled` says so. */
  recording: RecordingConfig;
  /** Training jobs (src/jobs/): how many run at once per device, how often running ones are polled. */
  jobs: JobsConfig;
  /** Same-host shared memory for tensors (see src/shm/): off unless `dir` is given. */
  sharedMemory: SharedMemoryConfig;
}

export const DEFAULT_JOBS_PER_DEVICE = 1;
export const DEFAULT_JOB_POLL_INTERVAL_MS = 500;
export const DEFAULT_JOB_CANCEL_GRACE_S = 10;
export const DEFAULT_JOB_WAIT_MS = 10_000;
export const DEFAULT_MAX_FINISHED_JOBS = 100;

export interface JobsConfig {
  /** Jobs running at once on one device (`policy_device`: cuda = cuda:0, cpu, ...); more wait in a queue. */
  maxPerDevice: number;
  /**
   * Time between two progress polls of a worker with running jobs, ms: for workers without the long poll, and
   * after a failed poll.
   */
  pollIntervalMs: number;
  /** Longest wait of one long poll (`jobs {since, wait_ms}`): the worker answers as soon as it has news, ms; 0 = plain polling every pollIntervalMs. */
  waitMs: number;
  /** Finished jobs the gateway keeps (the most recent; older ones are forgotten first). */
  maxFinished: number;
  /** Time a cancelled job gets to stop at a step boundary before its processes are killed, s. */
  cancelGraceS: number;
}

export interface SharedMemoryConfig {
  /** The shared-memory root (e.g. /dev/shm/physical-ai-gateway): the gateway sweeps it and launched containers mount it. */
  dir: string | undefined;
  /** Time between the janitor's sweeps, ms. */
  sweepIntervalMs: number;
}

/** What a recorded image keeps: the camera's bytes, a 2x-downscaled copy, or nothing (privacy). */
export type RecordedImages = 'full' | 'downscale' | 'drop';
export const RECORDED_IMAGES: readonly RecordedImages[] = ['full', 'downscale', 'drop'];
export const DEFAULT_RECORDING_MAX_FILE_BYTES = 512 * 1024 * 1024;
export const DEFAULT_RECORDING_MAX_FILE_AGE_S = 600;
export const DEFAULT_RECORDING_MAX_QUEUE = 64;

export interface RecordingConfig {
  /** Record every framework from the start. */
  enabled: boolean;
  /** Folder of the MCAP files (created 0700); undefined: ~/.cache/physical_ai_tools/recordings. */
  dir: string | undefined;
  /** A file is finished after the record that takes it past this size, bytes. */
  maxFileBytes: number;
  /** A file is finished this long after it was opened (also when idle), seconds. */
  maxFileAgeS: number;
  /** Exchanges waiting for the writer at most; more are dropped and counted (each holds its request's buffers). */
  maxQueue: number;
  images: RecordedImages;
}

export interface HttpConfig {
  host: string;
  port: number;
  bodyLimitBytes: number;
  /** Longest time to receive a whole request (headers and body), ms; Node's default is 300 s. */
  requestTimeoutMs: number;
  /** Longest time to receive a request's headers, ms (slow-header clients). */
  headersTimeoutMs: number;
  /** Open connections at most; more are refused by the server. */
  maxConnections: number;
}

export interface DockerConfig {
  /** Stop a launched framework after this long without requests, ms (0: never). */
  idleStopMs: number;
  /** Keep at most one GPU framework running: starting one stops the others. */
  oneGpuFrameworkAtATime: boolean;
  /** Time between container stats samples for the metrics, ms. */
  statsIntervalMs: number;
}

/** Values from flags or the environment; they win over the file. */
export interface ConfigOverrides {
  httpHost?: string;
  httpPort?: number | string;
  zmqEndpoint?: string;
  logLevel?: string;
  authToken?: string;
  defaultFramework?: string;
}

export { ConfigError, type ConfigIssue };


const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** True for hosts that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The host part of a tcp:// endpoint (ipc:// is local: returns '127.0.0.1'). */
export function endpointHost(endpoint: string): string {
  const parsed = parseEndpoint(endpoint, { forBind: true });
  return parsed.transport === 'tcp' ? parsed.host : '127.0.0.1';
}

class Checker extends IssueList {
  object(value: unknown, path: string): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.add(path, 'must be a mapping');
      return undefined;
    }
    return value as Record<string, unknown>;
  }
  known(obj: Record<string, unknown> | undefined, keys: readonly string[], path: string): void {
    if (!obj) return;
    for (const key of Object.keys(obj)) if (!keys.includes(key)) this.add(`${path}.${key}`.replace(/^\./, ''), `unknown field (expected one of: ${keys.join(', ')})`);
  }
  string(value: unknown, path: string, fallback: string): string;
  string(value: unknown, path: string, fallback?: string): string | undefined;
  string(value: unknown, path: string, fallback?: string): string | undefined {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || value.length === 0) {
      this.add(path, 'must be a non-empty string');
      return fallback;
    }
    return value;
  }
  int(value: unknown, path: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (value === undefined || value === null) return fallback;
    const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      this.add(path, `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
      return fallback;
    }
    return n;
  }
  /** Reads a CURVE key file named by a config field; a relative path is relative to the config file's folder. */
  keyFile(value: unknown, path: string, baseDir: string, secret: boolean): CurveCertificate | undefined {
    const file = this.string(value, path);
    if (file === undefined) return undefined;
    try {
      return readCurveKeyFileSync(resolve(baseDir, file), { secret });
    } catch (err) {
      this.add(path, (err as Error).message);
      return undefined;
    }
  }
  endpoint(value: unknown, path: string): string | undefined {
    try {
      if (typeof value !== 'string') throw new Error('not a string');
      parseEndpoint(value, { forBind: true });
      return value;
    } catch {
      this.add(path, `must be a ZMQ endpoint like tcp://127.0.0.1:5555 or ipc:///tmp/x.sock (got ${JSON.stringify(value)})`);
      return undefined;
    }
  }
}

const TOP_KEYS = ['http', 'zmq', 'openpi', 'groot', 'defaultFramework', 'authToken', 'logLevel', 'limits', 'shutdownGraceMs', 'healthIntervalMs', 'docker', 'frameworks', 'recording', 'jobs', 'sharedMemory'] as const;
const FRAMEWORK_KEYS = ['protocol', 'outbound', 'peerToken', 'endpoints', 'codec', 'timeoutMs', 'maxConcurrency', 'embedded', 'embeddedDelayMs', 'launcher', 'startTimeoutMs', 'observation', 'openpi', 'groot', 'curve', 'record', 'training', 'direct', 'health'] as const;
export const DEFAULT_OPENPI_PORT = 8000;
// Not GR00T's own 5555 or 5556: those are the ROBOTIS layout's LeRobot and GR00T worker ports (docker launcher specs).
export const DEFAULT_GROOT_ENDPOINT = 'tcp://127.0.0.1:5560';

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A framework's observation mapping: a preset name or a spec object; every bad field is reported. */
function observationMapping(c: Checker, value: unknown, path: string): ObservationMappingSpec | undefined {
  if (value === undefined || value === null) return undefined;
  const presets = Object.keys(OBSERVATION_PRESETS).join(', ');
  if (typeof value === 'string') {
    const preset = OBSERVATION_PRESETS[value];
    if (!preset) c.add(path, `unknown preset ${JSON.stringify(value)} (presets: ${presets}; or a mapping with ${OBSERVATION_SPEC_FIELDS.join(', ')})`);
    return preset;
  }
  const spec = c.object(value, path);
  if (!spec) return undefined;
  c.known(spec, OBSERVATION_SPEC_FIELDS, path);
  const out: { -readonly [K in keyof ObservationMappingSpec]: ObservationMappingSpec[K] } = {};
  if (spec.images !== undefined) {
    if (!isMapping(spec.images) || !Object.values(spec.images).every((v) => typeof v === 'string' && v.length > 0)) c.add(`${path}.images`, 'must map source keys to camera names');
    else out.images = spec.images as Record<string, string>;
  }
  if (spec.state !== undefined) {
    if (!Array.isArray(spec.state) || spec.state.length === 0 || !spec.state.every((k) => typeof k === 'string' && k.length > 0)) c.add(`${path}.state`, 'must be a list of source keys');
    else out.state = spec.state as string[];
  }
  for (const key of ['imagePrefix', 'statePrefix', 'instruction'] as const) {
    const v = c.string(spec[key], `${path}.${key}`);
    if (v !== undefined) out[key] = v;
  }
  if (spec.timeAxis !== undefined) {
    if (typeof spec.timeAxis === 'boolean') out.timeAxis = spec.timeAxis;
    else c.add(`${path}.timeAxis`, 'must be true or false');
  }
  if (spec.imageLayout !== undefined) {
    if (spec.imageLayout === 'hwc' || spec.imageLayout === 'chw') out.imageLayout = spec.imageLayout;
    else c.add(`${path}.imageLayout`, 'must be hwc or chw');
  }
  return Object.freeze(out);
}

/**
 * A peer-server framework's `outbound` mapping, each field replacing the protocol's default (DEFAULT_OUTBOUND).
 * `state` is one key or an ordered mapping key → width; GR00T needs the groups (their widths are the robot's).
 */
function outboundMapping(c: Checker, value: unknown, path: string, protocol: 'openpi' | 'groot'): OutboundMappingSpec {
  const base = DEFAULT_OUTBOUND[protocol];
  const spec = c.object(value, path) ?? {};
  c.known(spec, OUTBOUND_SPEC_FIELDS, path);
  const out: { -readonly [K in keyof OutboundMappingSpec]: OutboundMappingSpec[K] } = { ...base };
  if (spec.images !== undefined) {
    if (!isMapping(spec.images) || !Object.values(spec.images).every((v) => typeof v === 'string' && v.length > 0)) c.add(`${path}.images`, 'must map camera names to the peer\'s keys');
    else out.images = spec.images as Record<string, string>;
  }
  for (const key of ['imagePrefix', 'instruction'] as const) {
    const v = c.string(spec[key], `${path}.${key}`);
    if (v !== undefined) out[key] = v;
  }
  if (spec.state !== undefined) {
    if (typeof spec.state === 'string' && spec.state.length > 0) out.state = spec.state;
    else if (isMapping(spec.state) && Object.keys(spec.state).length > 0) out.state = Object.entries(spec.state).map(([key, width]): StateGroup => ({ key, width: c.int(width, `${path}.state.${key}`, 1, 1, 1_000_000) }));
    else c.add(`${path}.state`, 'must be the peer\'s state key, or a mapping of its state groups to their widths, in order');
  }
  if (spec.timeAxis !== undefined) {
    if (typeof spec.timeAxis === 'boolean') out.timeAxis = spec.timeAxis;
    else c.add(`${path}.timeAxis`, 'must be true or false');
  }
  if (spec.actions !== undefined) {
    if (!Array.isArray(spec.actions) || spec.actions.length === 0 || !spec.actions.every((k) => typeof k === 'string' && k.length > 0)) c.add(`${path}.actions`, 'must be a list of the reply\'s keys');
    else out.actions = spec.actions as string[];
  }
  if (protocol === 'groot' && out.state === undefined) c.add(`${path}.state`, "is required for a GR00T server: its state groups and their widths, e.g. {'state.left_arm': 7, 'state.left_hand': 6}");
  return Object.freeze(out);
}

/** A websocket URL of an openpi server: ws:// or wss://, host, port, optional path. */
function websocketUrl(c: Checker, value: unknown, path: string): string | undefined {
  try {
    if (typeof value !== 'string') throw new Error('not a string');
    const url = new URL(value);
    if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || !url.host) throw new Error('not ws');
    return value;
  } catch {
    c.add(path, `must be an openpi server's websocket URL like ws://127.0.0.1:8000 (got ${JSON.stringify(value)})`);
    return undefined;
  }
}

/** A framework's `openpi` section: the metadata map sent first on every connection (default {}). */
function openpiFramework(c: Checker, value: unknown, path: string): FrameworkConfig['openpi'] {
  const o = c.object(value, path);
  if (!o) return undefined;
  c.known(o, ['metadata'], path);
  if (o.metadata === undefined) return { metadata: {} };
  if (!isMapping(o.metadata)) {
    c.add(`${path}.metadata`, 'must be a mapping');
    return undefined;
  }
  return { metadata: o.metadata };
}

/** A framework's `groot` section: action groups (name → width, in order) and the modality config map. */
function grootFramework(c: Checker, value: unknown, path: string): FrameworkConfig['groot'] {
  const o = c.object(value, path);
  if (!o) return undefined;
  c.known(o, ['actionGroups', 'modalityConfig'], path);
  let actionGroups: ActionGroup[] | undefined;
  const groups = c.object(o.actionGroups, `${path}.actionGroups`);
  if (groups) {
    actionGroups = Object.entries(groups).map(([name, width]) => ({ name, width: c.int(width, `${path}.actionGroups.${name}`, 1, 1, 1_000_000) }));
    if (actionGroups.length === 0) c.add(`${path}.actionGroups`, 'names no group');
  }
  let modalityConfig: Record<string, unknown> = {};
  if (o.modalityConfig !== undefined) {
    const m = c.object(o.modalityConfig, `${path}.modalityConfig`);
    if (m && !Object.values(m).every(isMapping)) c.add(`${path}.modalityConfig`, 'must map modality names to mappings (one ModalityConfig each)');
    else if (m) modalityConfig = m;
  }
  return { ...(actionGroups ? { actionGroups } : {}), modalityConfig };
}

/** The framework table used when no config file names any: `demo`, served by the embedded worker. */
export function embeddedDemoFramework(delayMs = 0): FrameworkConfig {
  return {
    name: DEFAULT_FRAMEWORK,
    protocol: 'native',
    endpoints: [],
    codec: 'binary',
    timeoutMs: DEFAULT_TIMEOUT_MS,
    maxConcurrency: DEFAULT_MAX_CONCURRENCY,
    embedded: true,
    embeddedDelayMs: delayMs,
    startTimeoutMs: DEFAULT_START_TIMEOUT_MS,
    record: false,
    training: false,
  };
}

/**
 * Checks a parsed config document (or `undefined` for none) with overrides applied, and returns the full
 * config with defaults. Throws ConfigError listing every bad field.
 */
export function parseConfig(raw: unknown, overrides: ConfigOverrides = {}, source?: string): GatewayConfig {
  const c = new Checker();
  const root = c.object(raw, '(root)') ?? {};
  c.known(root, TOP_KEYS, '');

  const http = c.object(root.http, 'http') ?? {};
  c.known(http, ['host', 'port', 'bodyLimitBytes', 'requestTimeoutMs', 'headersTimeoutMs', 'maxConnections'], 'http');
  const zmq = c.object(root.zmq, 'zmq') ?? {};
  c.known(zmq, ['endpoint', 'curve'], 'zmq');
  // Key files: read once, here; relative paths are relative to the config file.
  const baseDir = source ? dirname(resolve(source)) : process.cwd();
  let zmqCurve: CurveServerKeys | undefined;
  const zmqCurveRaw = c.object(zmq.curve, 'zmq.curve');
  if (zmqCurveRaw) {
    c.known(zmqCurveRaw, ['secretKeyFile', 'clientKeysDir'], 'zmq.curve');
    if (zmqCurveRaw.secretKeyFile === undefined) c.add('zmq.curve.secretKeyFile', 'is required (the door\'s key file from `physical-ai-gateway keys`)');
    const own = c.keyFile(zmqCurveRaw.secretKeyFile, 'zmq.curve.secretKeyFile', baseDir, true);
    let clientKeys: ReadonlyMap<string, string> | undefined;
    const dir = c.string(zmqCurveRaw.clientKeysDir, 'zmq.curve.clientKeysDir');
    if (dir !== undefined) {
      try {
        clientKeys = readPublicKeysDirSync(resolve(baseDir, dir));
      } catch (err) {
        c.add('zmq.curve.clientKeysDir', (err as Error).message);
      }
    }
    if (own?.secretKey) zmqCurve = { publicKey: own.publicKey, secretKey: own.secretKey, ...(clientKeys ? { clientKeys } : {}) };
  }

  const host = c.string(overrides.httpHost ?? http.host, overrides.httpHost !== undefined ? 'http.host (flag/env)' : 'http.host', DEFAULT_HTTP_HOST);
  const port = c.int(overrides.httpPort ?? http.port, overrides.httpPort !== undefined ? 'http.port (flag/env)' : 'http.port', DEFAULT_HTTP_PORT, 0, 65535);
  const bodyLimitBytes = c.int(http.bodyLimitBytes, 'http.bodyLimitBytes', DEFAULT_BODY_LIMIT_BYTES, 1024);
  const requestTimeoutMs = c.int(http.requestTimeoutMs, 'http.requestTimeoutMs', 30_000, 100, 3_600_000);
  const headersTimeoutMs = c.int(http.headersTimeoutMs, 'http.headersTimeoutMs', 10_000, 100, 3_600_000);
  if (headersTimeoutMs > requestTimeoutMs) c.add('http.headersTimeoutMs', `must not be above http.requestTimeoutMs (${requestTimeoutMs})`);
  const maxConnections = c.int(http.maxConnections, 'http.maxConnections', 1024, 1, 1_000_000);
  const zmqPath = overrides.zmqEndpoint !== undefined ? 'zmq.endpoint (flag/env)' : 'zmq.endpoint';
  const zmqRaw = overrides.zmqEndpoint ?? zmq.endpoint;
  const zmqEndpoint = zmqRaw === undefined ? DEFAULT_ZMQ_ENDPOINT : (c.endpoint(zmqRaw, zmqPath) ?? DEFAULT_ZMQ_ENDPOINT);

  let openpi: OpenpiDoorConfig | undefined;
  const openpiRaw = c.object(root.openpi, 'openpi');
  if (openpiRaw) {
    c.known(openpiRaw, ['host', 'port', 'framework'], 'openpi');
    openpi = {
      host: c.string(openpiRaw.host, 'openpi.host', DEFAULT_HTTP_HOST),
      port: c.int(openpiRaw.port, 'openpi.port', DEFAULT_OPENPI_PORT, 0, 65535),
      framework: c.string(openpiRaw.framework, 'openpi.framework'),
    };
  }
  let groot: GrootDoorConfig | undefined;
  const grootRaw = c.object(root.groot, 'groot');
  if (grootRaw) {
    c.known(grootRaw, ['endpoint', 'framework'], 'groot');
    groot = {
      endpoint: grootRaw.endpoint === undefined ? DEFAULT_GROOT_ENDPOINT : (c.endpoint(grootRaw.endpoint, 'groot.endpoint') ?? DEFAULT_GROOT_ENDPOINT),
      framework: c.string(grootRaw.framework, 'groot.framework'),
    };
  }

  const levelRaw = overrides.logLevel ?? root.logLevel;
  let logLevel: LogLevel = 'info';
  if (levelRaw !== undefined) {
    if (isLogLevel(levelRaw)) logLevel = levelRaw;
    else c.add(overrides.logLevel !== undefined ? 'logLevel (flag/env)' : 'logLevel', `must be one of debug, info, warn, error, silent (got ${JSON.stringify(levelRaw)})`);
  }
  const authToken = c.string(overrides.authToken ?? root.authToken, 'authToken');
  if (authToken !== undefined && authToken.length < 16) c.add('authToken', 'must be at least 16 characters');
  // One rule on every front door: listening beyond loopback needs a token.
  if (authToken === undefined) {
    if (!isLoopbackHost(host)) c.add('http.host', `${host} is not loopback: listening there needs authToken (or PAIG_AUTH_TOKEN)`);
    if (zmqRaw !== undefined && !isLoopbackHost(endpointHost(zmqEndpoint))) c.add(zmqPath, `${zmqEndpoint} is not loopback: listening there needs authToken (or PAIG_AUTH_TOKEN)`);
    if (openpi && !isLoopbackHost(openpi.host)) c.add('openpi.host', `${openpi.host} is not loopback: listening there needs authToken (or PAIG_AUTH_TOKEN)`);
    if (groot && !isLoopbackHost(endpointHost(groot.endpoint))) c.add('groot.endpoint', `${groot.endpoint} is not loopback: listening there needs authToken (or PAIG_AUTH_TOKEN)`);
  }

  const limitsRaw = c.object(root.limits, 'limits') ?? {};
  c.known(limitsRaw, ['maxMessageBytes', 'maxFrames', 'maxHeaderBytes', 'maxDepth'], 'limits');
  const limits: Limits = {
    maxMessageBytes: c.int(limitsRaw.maxMessageBytes, 'limits.maxMessageBytes', DEFAULT_LIMITS.maxMessageBytes, 1024),
    maxFrames: c.int(limitsRaw.maxFrames, 'limits.maxFrames', DEFAULT_LIMITS.maxFrames, 1, 4096),
    maxHeaderBytes: c.int(limitsRaw.maxHeaderBytes, 'limits.maxHeaderBytes', DEFAULT_LIMITS.maxHeaderBytes, 256),
    maxDepth: c.int(limitsRaw.maxDepth, 'limits.maxDepth', DEFAULT_LIMITS.maxDepth, 1, MAX_DEPTH_CEILING),
  };
  const shutdownGraceMs = c.int(root.shutdownGraceMs, 'shutdownGraceMs', DEFAULT_SHUTDOWN_GRACE_MS, 0, 600_000);
  const healthIntervalMs = c.int(root.healthIntervalMs, 'healthIntervalMs', 1_000, 50, 600_000);
  const dockerRaw = c.object(root.docker, 'docker') ?? {};
  c.known(dockerRaw, ['idleStopMs', 'oneGpuFrameworkAtATime', 'statsIntervalMs'], 'docker');
  let oneGpuFrameworkAtATime = false;
  if (dockerRaw.oneGpuFrameworkAtATime !== undefined) {
    if (typeof dockerRaw.oneGpuFrameworkAtATime === 'boolean') oneGpuFrameworkAtATime = dockerRaw.oneGpuFrameworkAtATime;
    else c.add('docker.oneGpuFrameworkAtATime', 'must be true or false');
  }
  const docker: DockerConfig = {
    idleStopMs: c.int(dockerRaw.idleStopMs, 'docker.idleStopMs', 0, 0, 7 * 24 * 3_600_000),
    oneGpuFrameworkAtATime,
    statsIntervalMs: c.int(dockerRaw.statsIntervalMs, 'docker.statsIntervalMs', 5_000, 500, 3_600_000),
  };

  const frameworks: Record<string, FrameworkConfig> = {};
  const fwRaw = c.object(root.frameworks, 'frameworks');
  if (fwRaw === undefined || Object.keys(fwRaw).length === 0) {
    if (root.frameworks !== undefined && fwRaw !== undefined) c.add('frameworks', 'names no framework');
    else frameworks[DEFAULT_FRAMEWORK] = embeddedDemoFramework();
  } else {
    for (const [name, value] of Object.entries(fwRaw)) {
      const path = `frameworks.${name}`;
      if (!NAME_RE.test(name)) c.add(path, 'framework names are lower-case letters, digits, - and _ (at most 64)');
      const f = c.object(value ?? {}, path) ?? {};
      c.known(f, FRAMEWORK_KEYS, path);
      let protocol: PeerProtocol = 'native';
      if (f.protocol !== undefined) {
        if (PEER_PROTOCOLS.includes(f.protocol as PeerProtocol)) protocol = f.protocol as PeerProtocol;
        else c.add(`${path}.protocol`, `must be one of ${PEER_PROTOCOLS.join(', ')}`);
      }
      const endpoints: string[] = [];
      if (f.endpoints !== undefined) {
        if (!Array.isArray(f.endpoints)) c.add(`${path}.endpoints`, protocol === 'openpi' ? 'must be a list of websocket URLs' : 'must be a list of ZMQ endpoints');
        else f.endpoints.forEach((ep, i) => {
          const ok = protocol === 'openpi' ? websocketUrl(c, ep, `${path}.endpoints[${i}]`) : c.endpoint(ep, `${path}.endpoints[${i}]`);
          if (ok) endpoints.push(ok);
        });
      }
      let outbound: OutboundMappingSpec | undefined;
      if (protocol === 'native') {
        if (f.outbound !== undefined) c.add(`${path}.outbound`, "is for a peer server ('protocol: openpi' or 'protocol: groot')");
      } else {
        outbound = outboundMapping(c, f.outbound, `${path}.outbound`, protocol);
        for (const key of ['embedded', 'launcher', 'curve'] as const) if (f[key] !== undefined) c.add(`${path}.${key}`, `is for native workers, not a '${protocol}' server`);
      }
      const peerToken = c.string(f.peerToken, `${path}.peerToken`);
      if (peerToken !== undefined && protocol === 'native') c.add(`${path}.peerToken`, "is for a peer server ('protocol: openpi' or 'protocol: groot')");
      let codec: Codec = 'binary';
      if (f.codec !== undefined) {
        if (CODECS.includes(f.codec as Codec)) codec = f.codec as Codec;
        else c.add(`${path}.codec`, `must be one of ${CODECS.join(', ')}`);
      }
      let embedded = false;
      if (f.embedded !== undefined) {
        if (typeof f.embedded === 'boolean') embedded = f.embedded;
        else c.add(`${path}.embedded`, 'must be true or false');
      }
      let launcher = f.launcher ?? undefined;
      if (launcher !== undefined && !(typeof launcher === 'string' || (typeof launcher === 'object' && !Array.isArray(launcher)))) {
        c.add(`${path}.launcher`, 'must be a launcher spec name or mapping');
      }
      // a spec's known_hosts file, like the key files, is relative to the config file (the spec itself wants it absolute)
      if (isMapping(launcher) && typeof launcher.sshKnownHosts === 'string' && launcher.sshKnownHosts !== '') launcher = { ...launcher, sshKnownHosts: resolve(baseDir, launcher.sshKnownHosts) };
      let training = false;
      if (f.training !== undefined) {
        if (typeof f.training === 'boolean') training = f.training;
        else c.add(`${path}.training`, 'must be true or false');
      }
      let record = false;
      if (f.record !== undefined) {
        if (typeof f.record === 'boolean') record = f.record;
        else c.add(`${path}.record`, 'must be true or false');
      }
      if (!embedded && endpoints.length === 0 && launcher === undefined) c.add(path, "needs 'endpoints', 'launcher' or 'embedded: true'");
      if (embedded && (endpoints.length > 0 || launcher !== undefined)) c.add(path, "'embedded' and 'endpoints'/'launcher' are mutually exclusive");
      const observation = observationMapping(c, f.observation, `${path}.observation`);
      const openpiFw = openpiFramework(c, f.openpi, `${path}.openpi`);
      const grootFw = grootFramework(c, f.groot, `${path}.groot`);
      let curve: CurveClientKeys | undefined;
      const curveRaw = c.object(f.curve, `${path}.curve`);
      if (curveRaw) {
        c.known(curveRaw, ['serverPublicKeyFile', 'secretKeyFile'], `${path}.curve`);
        for (const key of ['serverPublicKeyFile', 'secretKeyFile'] as const) if (curveRaw[key] === undefined) c.add(`${path}.curve.${key}`, 'is required');
        const server = c.keyFile(curveRaw.serverPublicKeyFile, `${path}.curve.serverPublicKeyFile`, baseDir, false);
        const own = c.keyFile(curveRaw.secretKeyFile, `${path}.curve.secretKeyFile`, baseDir, true);
        if (embedded) c.add(`${path}.curve`, "the embedded worker is local: 'curve' is for remote 'endpoints'");
        if (server && own?.secretKey) curve = { serverKey: server.publicKey, publicKey: own.publicKey, secretKey: own.secretKey };
      }
      let direct: DirectConfig | undefined;
      const directRaw = c.object(f.direct, `${path}.direct`);
      if (directRaw) {
        c.known(directRaw, ['secretFile', 'leaseTtlMs', 'maxInFlight', 'collectIntervalMs'], `${path}.direct`);
        const file = c.string(directRaw.secretFile, `${path}.direct.secretFile`);
        if (file === undefined) c.add(`${path}.direct.secretFile`, 'is required (a file of at least 16 random bytes; the worker reads the same file)');
        if (protocol !== 'native') c.add(`${path}.direct`, "needs the native protocol (the worker SDK enforces the lease)");
        let secret: Buffer | undefined;
        if (file !== undefined) {
          try {
            secret = Buffer.from(readFileSync(resolve(baseDir, file), 'utf8').trim());
            if (secret.length < 16) c.add(`${path}.direct.secretFile`, `${file} holds fewer than 16 bytes`);
          } catch (err) {
            c.add(`${path}.direct.secretFile`, (err as Error).message);
          }
        }
        const leaseTtlMs = c.int(directRaw.leaseTtlMs, `${path}.direct.leaseTtlMs`, 30_000, 100, 24 * 3_600_000);
        const maxInFlight = c.int(directRaw.maxInFlight, `${path}.direct.maxInFlight`, 8, 1, 1_000_000);
        const collectIntervalMs = c.int(directRaw.collectIntervalMs, `${path}.direct.collectIntervalMs`, 1_000, 10, 3_600_000);
        if (secret && file !== undefined) direct = { secret, secretFile: resolve(baseDir, file), leaseTtlMs, maxInFlight, collectIntervalMs };
      }
      let health: HealthConfig | undefined;
      const healthRaw = c.object(f.health, `${path}.health`);
      if (healthRaw) {
        c.known(healthRaw, ['intervalMs', 'timeoutMs', 'downAfterFailures'], `${path}.health`);
        health = {
          intervalMs: c.int(healthRaw.intervalMs, `${path}.health.intervalMs`, healthIntervalMs, 50, 600_000),
          timeoutMs: c.int(healthRaw.timeoutMs, `${path}.health.timeoutMs`, DEFAULT_HEALTH_TIMEOUT_MS, 10, 600_000),
          downAfterFailures: c.int(healthRaw.downAfterFailures, `${path}.health.downAfterFailures`, DEFAULT_DOWN_AFTER_FAILURES, 1, 1_000),
        };
      }
      frameworks[name] = {
        name,
        protocol,
        ...(health ? { health } : {}),
        ...(direct ? { direct } : {}),
        ...(outbound ? { outbound } : {}),
        ...(peerToken !== undefined ? { peerToken } : {}),
        ...(observation ? { observation } : {}),
        ...(openpiFw ? { openpi: openpiFw } : {}),
        ...(grootFw ? { groot: grootFw } : {}),
        endpoints,
        codec,
        timeoutMs: c.int(f.timeoutMs, `${path}.timeoutMs`, DEFAULT_TIMEOUT_MS, 1, 3_600_000),
        maxConcurrency: c.int(f.maxConcurrency, `${path}.maxConcurrency`, DEFAULT_MAX_CONCURRENCY, 1, 1_000_000),
        embedded,
        embeddedDelayMs: c.int(f.embeddedDelayMs, `${path}.embeddedDelayMs`, 0, 0, 3_600_000),
        startTimeoutMs: c.int(f.startTimeoutMs, `${path}.startTimeoutMs`, DEFAULT_START_TIMEOUT_MS, 1, 3_600_000),
        record,
        training,
        ...(launcher !== undefined ? { launcher } : {}),
        ...(curve ? { curve } : {}),
      };
    }
  }

  const recRaw = c.object(root.recording, 'recording') ?? {};
  c.known(recRaw, ['enabled', 'dir', 'maxFileBytes', 'maxFileAgeS', 'maxQueue', 'images'], 'recording');
  let recordAll = false;
  if (recRaw.enabled !== undefined) {
    if (typeof recRaw.enabled === 'boolean') recordAll = recRaw.enabled;
    else c.add('recording.enabled', 'must be true or false');
  }
  let images: RecordedImages = 'full';
  if (recRaw.images !== undefined) {
    if (RECORDED_IMAGES.includes(recRaw.images as RecordedImages)) images = recRaw.images as RecordedImages;
    else c.add('recording.images', `must be one of ${RECORDED_IMAGES.join(', ')}`);
  }
  const recording: RecordingConfig = {
    enabled: recordAll,
    dir: c.string(recRaw.dir, 'recording.dir'),
    maxFileBytes: c.int(recRaw.maxFileBytes, 'recording.maxFileBytes', DEFAULT_RECORDING_MAX_FILE_BYTES, 64 * 1024),
    maxFileAgeS: c.int(recRaw.maxFileAgeS, 'recording.maxFileAgeS', DEFAULT_RECORDING_MAX_FILE_AGE_S, 1, 7 * 24 * 3600),
    maxQueue: c.int(recRaw.maxQueue, 'recording.maxQueue', DEFAULT_RECORDING_MAX_QUEUE, 0, 100_000),
    images,
  };

  const jobsRaw = c.object(root.jobs, 'jobs') ?? {};
  c.known(jobsRaw, ['maxPerDevice', 'pollIntervalMs', 'waitMs', 'maxFinished', 'cancelGraceS'], 'jobs');
  const jobs: JobsConfig = {
    maxPerDevice: c.int(jobsRaw.maxPerDevice, 'jobs.maxPerDevice', DEFAULT_JOBS_PER_DEVICE, 1, 1_000),
    pollIntervalMs: c.int(jobsRaw.pollIntervalMs, 'jobs.pollIntervalMs', DEFAULT_JOB_POLL_INTERVAL_MS, 10, 60_000),
    waitMs: c.int(jobsRaw.waitMs, 'jobs.waitMs', DEFAULT_JOB_WAIT_MS, 0, 60_000),
    maxFinished: c.int(jobsRaw.maxFinished, 'jobs.maxFinished', DEFAULT_MAX_FINISHED_JOBS, 0, 100_000),
    cancelGraceS: c.int(jobsRaw.cancelGraceS, 'jobs.cancelGraceS', DEFAULT_JOB_CANCEL_GRACE_S, 0, 3_600),
  };
  const shmRaw = c.object(root.sharedMemory, 'sharedMemory') ?? {};
  c.known(shmRaw, ['dir', 'sweepIntervalMs'], 'sharedMemory');
  const shmDir = c.string(shmRaw.dir, 'sharedMemory.dir');
  if (shmDir !== undefined && !shmDir.startsWith('/')) c.add('sharedMemory.dir', 'must be an absolute path (a folder on tmpfs, e.g. /dev/shm/physical-ai-gateway)');
  const sharedMemory: SharedMemoryConfig = { dir: shmDir, sweepIntervalMs: c.int(shmRaw.sweepIntervalMs, 'sharedMemory.sweepIntervalMs', 5_000, 100, 3_600_000) };

  const names = Object.keys(frameworks);
  let defaultFramework = c.string(overrides.defaultFramework ?? root.defaultFramework, 'defaultFramework');
  if (defaultFramework !== undefined && names.length > 0 && !names.includes(defaultFramework)) {
    c.add('defaultFramework', `names no configured framework (configured: ${names.join(', ')})`);
  }
  if (defaultFramework === undefined && names.length === 1) defaultFramework = names[0];
  for (const [door, framework] of [['openpi', openpi?.framework], ['groot', groot?.framework]] as const) {
    if (framework !== undefined && names.length > 0 && !names.includes(framework)) c.add(`${door}.framework`, `names no configured framework (configured: ${names.join(', ')})`);
  }

  if (c.issues.length > 0) throw new ConfigError(c.issues, source);
  return {
    http: { host, port, bodyLimitBytes, requestTimeoutMs, headersTimeoutMs, maxConnections },
    zmq: { endpoint: zmqEndpoint, ...(zmqCurve ? { curve: zmqCurve } : {}) },
    openpi,
    groot,
    defaultFramework,
    authToken,
    logLevel,
    limits,
    shutdownGraceMs,
    healthIntervalMs,
    docker,
    frameworks,
    recording,
    jobs,
    sharedMemory,
  };
}

/** Reads and parses a YAML or JSON config file (JSON is YAML, but .json files get JSON's stricter parser). */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(err as Error).message}` }], path);
  }
  try {
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}` }], path);
  }
}

/** Reads the file (if any) and applies the overrides. */
export async function loadConfig(options: { file?: string; overrides?: ConfigOverrides } = {}): Promise<GatewayConfig> {
  const raw = options.file ? await readConfigFile(options.file) : undefined;
  return parseConfig(raw, options.overrides, options.file);
}

/** Environment variable names the CLI maps to overrides. */
export const ENV_VARS = {
  config: 'PAIG_CONFIG',
  httpHost: 'PAIG_HTTP_HOST',
  httpPort: 'PAIG_HTTP_PORT',
  zmqEndpoint: 'PAIG_ZMQ_ENDPOINT',
  logLevel: 'PAIG_LOG_LEVEL',
  authToken: 'PAIG_AUTH_TOKEN',
  defaultFramework: 'PAIG_DEFAULT_FRAMEWORK',
} as const;

/** Overrides from an environment map (the CLI passes process.env). Empty values are ignored. */
export function overridesFromEnv(env: Readonly<Record<string, string | undefined>>): ConfigOverrides & { config?: string } {
  const out: ConfigOverrides & { config?: string } = {};
  for (const key of Object.keys(ENV_VARS) as Array<keyof typeof ENV_VARS>) {
    const value = env[ENV_VARS[key]];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}
