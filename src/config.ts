// The gateway's configuration: read once from a YAML/JSON file plus overrides (flags, environment mapped by the
// CLI), checked in one pass so every bad field is reported at once. Nothing here reads process.env.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CODECS, DEFAULT_LIMITS, MAX_DEPTH_CEILING, type Codec, type Limits } from './protocol/codec.js';
import { ConfigError, IssueList, type ConfigIssue } from './lib/config-error.js';
import { isLogLevel, type LogLevel } from './lib/log.js';
import { parseEndpoint } from './zmq/addresses.js';

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_ZMQ_ENDPOINT = 'tcp://127.0.0.1:5550';
export const DEFAULT_BODY_LIMIT_BYTES = DEFAULT_LIMITS.maxMessageBytes;
export const DEFAULT_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_CONCURRENCY = 64;
export const DEFAULT_START_TIMEOUT_MS = 180_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
export const DEFAULT_FRAMEWORK = 'demo';

export interface FrameworkConfig {
  name: string;
  /** ZMQ endpoints of the framework's workers (tcp://host:port or ipc://path). Empty for embedded/launched ones. */
  endpoints: string[];
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
  /** Record this framework's inference traffic from the start (see `recording`; switchable at run time). */
  record: boolean;
}

export interface GatewayConfig {
  http: HttpConfig;
  zmq: { endpoint: string };
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

const TOP_KEYS = ['http', 'zmq', 'defaultFramework', 'authToken', 'logLevel', 'limits', 'shutdownGraceMs', 'healthIntervalMs', 'docker', 'frameworks', 'recording'] as const;
const FRAMEWORK_KEYS = ['endpoints', 'codec', 'timeoutMs', 'maxConcurrency', 'embedded', 'embeddedDelayMs', 'launcher', 'startTimeoutMs', 'record'] as const;

/** The framework table used when no config file names any: `demo`, served by the embedded worker. */
export function embeddedDemoFramework(delayMs = 0): FrameworkConfig {
  return {
    name: DEFAULT_FRAMEWORK,
    endpoints: [],
    codec: 'binary',
    timeoutMs: DEFAULT_TIMEOUT_MS,
    maxConcurrency: DEFAULT_MAX_CONCURRENCY,
    embedded: true,
    embeddedDelayMs: delayMs,
    startTimeoutMs: DEFAULT_START_TIMEOUT_MS,
    record: false,
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
  c.known(zmq, ['endpoint'], 'zmq');

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
      const endpoints: string[] = [];
      if (f.endpoints !== undefined) {
        if (!Array.isArray(f.endpoints)) c.add(`${path}.endpoints`, 'must be a list of ZMQ endpoints');
        else f.endpoints.forEach((ep, i) => {
          const ok = c.endpoint(ep, `${path}.endpoints[${i}]`);
          if (ok) endpoints.push(ok);
        });
      }
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
      const launcher = f.launcher ?? undefined;
      if (launcher !== undefined && !(typeof launcher === 'string' || (typeof launcher === 'object' && !Array.isArray(launcher)))) {
        c.add(`${path}.launcher`, 'must be a launcher spec name or mapping');
      }
      let record = false;
      if (f.record !== undefined) {
        if (typeof f.record === 'boolean') record = f.record;
        else c.add(`${path}.record`, 'must be true or false');
      }
      if (!embedded && endpoints.length === 0 && launcher === undefined) c.add(path, "needs 'endpoints', 'launcher' or 'embedded: true'");
      if (embedded && (endpoints.length > 0 || launcher !== undefined)) c.add(path, "'embedded' and 'endpoints'/'launcher' are mutually exclusive");
      frameworks[name] = {
        name,
        endpoints,
        codec,
        timeoutMs: c.int(f.timeoutMs, `${path}.timeoutMs`, DEFAULT_TIMEOUT_MS, 1, 3_600_000),
        maxConcurrency: c.int(f.maxConcurrency, `${path}.maxConcurrency`, DEFAULT_MAX_CONCURRENCY, 1, 1_000_000),
        embedded,
        embeddedDelayMs: c.int(f.embeddedDelayMs, `${path}.embeddedDelayMs`, 0, 0, 3_600_000),
        startTimeoutMs: c.int(f.startTimeoutMs, `${path}.startTimeoutMs`, DEFAULT_START_TIMEOUT_MS, 1, 3_600_000),
        record,
        ...(launcher !== undefined ? { launcher } : {}),
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

  const names = Object.keys(frameworks);
  let defaultFramework = c.string(overrides.defaultFramework ?? root.defaultFramework, 'defaultFramework');
  if (defaultFramework !== undefined && names.length > 0 && !names.includes(defaultFramework)) {
    c.add('defaultFramework', `names no configured framework (configured: ${names.join(', ')})`);
  }
  if (defaultFramework === undefined && names.length === 1) defaultFramework = names[0];

  if (c.issues.length > 0) throw new ConfigError(c.issues, source);
  return {
    http: { host, port, bodyLimitBytes, requestTimeoutMs, headersTimeoutMs, maxConnections },
    zmq: { endpoint: zmqEndpoint },
    defaultFramework,
    authToken,
    logLevel,
    limits,
    shutdownGraceMs,
    healthIntervalMs,
    docker,
    frameworks,
    recording,
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
