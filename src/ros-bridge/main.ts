// The bridge process: command line → config → ROS adapter, policy client, control loop (+ optional /metrics),
// closed in reverse order on SIGINT/SIGTERM. `runBridge` is what `physical-ai-gateway bridge ...` calls.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { closeAll } from '../lib/close-all.js';
import { GatewayError } from '../lib/errors.js';
import { createLogger, isLogLevel, type Logger } from '../lib/log.js';
import { ShmArena } from '../shm/shm-arena.js';
import { WorkerClient } from '../zmq/worker-client.js';
import { BridgeConfigError, mergeConfig, validateBridgeConfig, type BridgeConfig, type ConfigProblem } from './config.js';
import { ControlLoop } from './control-loop.js';
import { loadJpegDecoder, JPEG_DECODER_PACKAGE, type ImageDecoder } from './image.js';
import { createBridgeMetrics } from './metrics.js';
import { HttpPolicyClient, ZmqPolicyClient, type PolicyClient } from './policy-client.js';
import { PRESETS, isPresetName, presetConfig } from './presets.js';
import { RCLNODEJS_DIR_ENV, RclnodejsAdapter, rclnodejsSpecifier } from './rclnodejs-adapter.js';
import type { RosAdapter } from './ros-adapter.js';

/** The policy client for `config.gateway`: the ZMQ front door for tcp:// and ipc://, HTTP for http(s)://. */
export function createPolicyClient(config: BridgeConfig, log: Logger): PolicyClient {
  if (/^https?:\/\//.test(config.gateway)) {
    return new HttpPolicyClient({ baseUrl: config.gateway, framework: config.framework, timeoutMs: config.inferenceTimeoutMs });
  }
  // Reconnect attempts at most one control period apart: once the gateway is back, the connection is up within a
  // period and the loop asks at once (ZMQ's own default backs off to seconds). A refused connect on loopback is cheap.
  const periodMs = 1000 / config.rateHz;
  const client = new WorkerClient({
    endpoint: config.gateway,
    framework: config.framework,
    timeoutMs: config.inferenceTimeoutMs,
    log,
    reconnectIntervalMs: Math.max(5, Math.round(periodMs / 4)),
    reconnectMaxIntervalMs: Math.max(5, Math.round(periodMs)),
    ...(config.sharedMemoryDir ? { sharedMemory: new ShmArena({ dir: config.sharedMemoryDir, log }) } : {}),
  });
  return new ZmqPolicyClient({ client, framework: config.framework, timeoutMs: config.inferenceTimeoutMs });
}

export interface BridgeDeps {
  adapter: RosAdapter;
  policy: PolicyClient;
  log: Logger;
  registry?: Registry;
  jpegDecoder?: ImageDecoder;
}

export interface RunningBridge {
  loop: ControlLoop;
  registry: Registry;
  /** Holds the robot, stops the loop. Does not close the adapter or the policy client (the caller owns them). */
  close(): Promise<void>;
}

/** Builds and starts the control loop on given parts (the CLI and tests both use this). */
export function startBridge(config: BridgeConfig, { adapter, policy, log, registry = new Registry(), jpegDecoder }: BridgeDeps): RunningBridge {
  const loop = new ControlLoop({
    config,
    adapter,
    policy,
    log: log.child({ component: 'ros-bridge' }),
    metrics: createBridgeMetrics(registry),
    ...(jpegDecoder ? { jpegDecoder } : {}),
  });
  loop.start();
  return { loop, registry, close: () => loop.close() };
}

export const BRIDGE_USAGE = `Usage: physical-ai-gateway bridge [options]

Runs the ROS 2 bridge: camera and joint topics → observations → the gateway → action chunks → controllers.
Needs a sourced ROS 2 (source /opt/ros/<distro>/setup.bash) and rclnodejs (npm_config_yes=true npm install rclnodejs).

Options:
  --preset <name>            ${Object.keys(PRESETS).join(' | ')}
  --config <file>            YAML or JSON bridge config (merged over the preset)
  --raw-images               use sensor_msgs/Image topics (preset topics without /compressed)
  --resize <W>x<H>[:method]  resize every camera (method nearest | bilinear, default bilinear)
  --gateway <address>        tcp://127.0.0.1:5550 (ZMQ front door, default) or http://127.0.0.1:8080
  --framework <name>         policy framework (default demo)
  --rate-hz <hz>             control rate (default 30)
  --instruction <text>       task instruction
  --instruction-topic <t>    std_msgs/String topic that changes the instruction
  --blending <method>        replace | nearest_splice | weighted_average
  --request-ahead <steps>    ask for the next chunk when this many steps remain (default 8)
  --max-age-ms <ms>          refuse inputs older than this (default 500)
  --watchdog-ms <ms>         hold when no fresh chunk for this long (default 1000)
  --hold-repeat-hz <hz>      while held, publish the hold target again at this rate (default 5; 0 = once)
  --precise-wait-ms <ms>     wake this long before each tick, sleep precisely until it is due (default 0.5; 0 = timers only)
  --start                    start moving at once (default: wait for <prefix>/start)
  --metrics-port <port>      serve Prometheus metrics on 127.0.0.1:<port>/metrics
  --log-level <level>        debug | info | warn | error
  -h, --help
`;

export interface BridgeIo {
  out(line: string): void;
  err(line: string): void;
}

const defaultIo: BridgeIo = { out: (l) => void process.stdout.write(`${l}\n`), err: (l) => void process.stderr.write(`${l}\n`) };

export interface ParsedArgs {
  /** The config object built from the preset, the file and the flags (not yet validated). */
  input: Record<string, unknown>;
  /** Problems with the flags themselves (reported together with the config's). */
  problems: ConfigProblem[];
  help: boolean;
  metricsPort?: number;
  logLevel: string;
}

/** The bridge's flags as parsed (kebab-case names, string values as typed): what `physical-ai-gateway bridge` declares. */
export interface BridgeFlags {
  preset?: string | undefined;
  config?: string | undefined;
  'raw-images'?: boolean | undefined;
  resize?: string | undefined;
  gateway?: string | undefined;
  framework?: string | undefined;
  'rate-hz'?: string | undefined;
  instruction?: string | undefined;
  'instruction-topic'?: string | undefined;
  blending?: string | undefined;
  'request-ahead'?: string | undefined;
  'max-age-ms'?: string | undefined;
  'watchdog-ms'?: string | undefined;
  'hold-repeat-hz'?: string | undefined;
  'precise-wait-ms'?: string | undefined;
  start?: boolean | undefined;
  'metrics-port'?: string | undefined;
  'log-level'?: string | undefined;
  help?: boolean | undefined;
}

/** Parses bridge arguments into a config object (not yet validated) and the flags' own problems. */
export async function configFromArgs(argv: string[]): Promise<ParsedArgs> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      preset: { type: 'string' },
      config: { type: 'string' },
      'raw-images': { type: 'boolean' },
      resize: { type: 'string' },
      gateway: { type: 'string' },
      framework: { type: 'string' },
      'rate-hz': { type: 'string' },
      instruction: { type: 'string' },
      'instruction-topic': { type: 'string' },
      blending: { type: 'string' },
      'request-ahead': { type: 'string' },
      'max-age-ms': { type: 'string' },
      'watchdog-ms': { type: 'string' },
      'hold-repeat-hz': { type: 'string' },
      'precise-wait-ms': { type: 'string' },
      start: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  return configFromFlags(values);
}

/** Turns parsed flags into a config object (not yet validated) and the flags' own problems. */
export async function configFromFlags(values: BridgeFlags): Promise<ParsedArgs> {
  const problems: { path: string; message: string }[] = [];
  let input: Record<string, unknown> = {};
  if (values.preset !== undefined) {
    if (isPresetName(values.preset)) input = { ...presetConfig(values.preset, { rawImages: values['raw-images'] === true }) };
    else problems.push({ path: '--preset', message: `unknown preset ${JSON.stringify(values.preset)}; choose ${Object.keys(PRESETS).join(', ')}` });
  }
  if (values.config !== undefined) {
    try {
      const text = await readFile(values.config, 'utf8');
      const parsed: unknown = values.config.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      input = mergeConfig(input, parsed) as Record<string, unknown>;
    } catch (err) {
      problems.push({ path: '--config', message: `cannot read ${values.config}: ${(err as Error).message}` });
    }
  }
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) {
      problems.push({ path: `--${flag}`, message: `must be a number, got ${JSON.stringify(v)}` });
      return undefined;
    }
    return n;
  };
  const set = (key: string, v: unknown) => {
    if (v !== undefined) input[key] = v;
  };
  set('gateway', values.gateway);
  set('framework', values.framework);
  set('rateHz', num('rate-hz', values['rate-hz']));
  set('instruction', values.instruction);
  set('instructionTopic', values['instruction-topic']);
  set('requestAheadSteps', num('request-ahead', values['request-ahead']));
  set('maxObservationAgeMs', num('max-age-ms', values['max-age-ms']));
  set('watchdogTimeoutMs', num('watchdog-ms', values['watchdog-ms']));
  set('holdRepeatHz', num('hold-repeat-hz', values['hold-repeat-hz']));
  set('preciseWaitMs', num('precise-wait-ms', values['precise-wait-ms']));
  if (values.start) input.startOnLaunch = true;
  if (values.blending !== undefined) input.blending = { ...(input.blending as object | undefined), method: values.blending };
  if (values.resize !== undefined) {
    const m = /^(\d+)x(\d+)(?::(nearest|bilinear))?$/.exec(values.resize);
    if (!m) problems.push({ path: '--resize', message: `must look like 224x224 or 224x224:nearest, got ${JSON.stringify(values.resize)}` });
    else if (Array.isArray(input.cameras)) {
      const resize = { width: Number(m[1]), height: Number(m[2]), method: m[3] ?? 'bilinear' };
      input.cameras = (input.cameras as object[]).map((cam) => ({ ...cam, resize }));
    }
  }
  if (values['raw-images'] && values.preset === undefined && Array.isArray(input.cameras)) {
    input.cameras = (input.cameras as { topic?: unknown }[]).map((cam) => ({ ...cam, type: 'image', topic: String(cam.topic).replace(/\/compressed$/, '') }));
  }
  const metricsPort = num('metrics-port', values['metrics-port']);
  const logLevel = values['log-level'] ?? 'info';
  if (!isLogLevel(logLevel)) problems.push({ path: '--log-level', message: `must be debug, info, warn or error, got ${JSON.stringify(logLevel)}` });
  return { input, problems, help: values.help === true, logLevel, ...(metricsPort !== undefined ? { metricsPort } : {}) };
}

async function serveMetrics(registry: Registry, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

/**
 * The `bridge` command: resolves with the exit code (0 after a clean shutdown on SIGINT/SIGTERM or `signal`,
 * 1 when ROS 2 or the gateway setup fails, 2 for a bad config). Errors are printed as one message, no stack trace.
 */
export async function runBridge(argv: string[], io: BridgeIo = defaultIo, options: { signal?: AbortSignal } = {}): Promise<number> {
  return runBridgeWith(() => configFromArgs(argv), io, options);
}

/** The same with flags parsed already (the CLI declares them on commander). */
export async function runBridgeFlags(flags: BridgeFlags, io: BridgeIo = defaultIo, options: { signal?: AbortSignal } = {}): Promise<number> {
  return runBridgeWith(() => configFromFlags(flags), io, options);
}

async function runBridgeWith(parse: () => Promise<ParsedArgs>, io: BridgeIo, { signal }: { signal?: AbortSignal }): Promise<number> {
  let parsed: ParsedArgs;
  let config: BridgeConfig;
  try {
    parsed = await parse();
    if (parsed.help) {
      io.out(BRIDGE_USAGE);
      return 0;
    }
    let validated: BridgeConfig | undefined;
    let problems = parsed.problems;
    try {
      validated = validateBridgeConfig(parsed.input);
    } catch (err) {
      if (!(err instanceof BridgeConfigError)) throw err;
      problems = [...problems, ...err.problems];
    }
    if (problems.length > 0 || !validated) throw new BridgeConfigError(problems);
    config = validated;
  } catch (err) {
    if (err instanceof BridgeConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err((err as Error).message);
      io.err('Run `physical-ai-gateway bridge --help` for the options.');
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: isLogLevel(parsed.logLevel) ? parsed.logLevel : 'info', write: (line) => io.err(line.trimEnd()) });

  // Loaded whatever the config says: a camera configured raw is also accepted as its /compressed sibling.
  const jpegDecoder: ImageDecoder | undefined = config.cameras.length > 0 ? await loadJpegDecoder() : undefined;
  if (config.cameras.some((c) => c.type === 'compressed')) {
    if (!jpegDecoder) {
      io.err(`cameras ${config.cameras.filter((c) => c.type === 'compressed').map((c) => c.key).join(', ')} are sensor_msgs/CompressedImage (JPEG): install a decoder with \`npm install ${JPEG_DECODER_PACKAGE}\`, or use raw image topics with --raw-images`);
      return 1;
    }
  }

  let adapter: RosAdapter;
  try {
    adapter = await RclnodejsAdapter.create({
      nodeName: config.nodeName,
      log: log.child({ component: 'ros' }),
      specifier: rclnodejsSpecifier(process.env[RCLNODEJS_DIR_ENV]),
    });
  } catch (err) {
    io.err(err instanceof GatewayError ? err.message : `ROS 2 setup failed: ${(err as Error).message}`);
    return 1;
  }
  const registry = new Registry();
  const policy = createPolicyClient(config, log);
  let metricsServer: Server | undefined;
  let bridge: RunningBridge | undefined;
  try {
    if (parsed.metricsPort !== undefined) metricsServer = await serveMetrics(registry, parsed.metricsPort);
    bridge = startBridge(config, { adapter, policy, log, registry, ...(jpegDecoder ? { jpegDecoder } : {}) });
    let stop = () => {};
    try {
      await new Promise<void>((resolve) => {
        stop = () => resolve();
        if (signal?.aborted) return resolve();
        signal?.addEventListener('abort', stop, { once: true });
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    } finally {
      signal?.removeEventListener('abort', stop);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    log.info({ event: 'bridge.stopping' });
    return 0;
  } catch (err) {
    io.err(`bridge failed: ${(err as Error).message}`);
    return 1;
  } finally {
    await closeAll([
      bridge,
      policy,
      metricsServer ? { close: () => new Promise<void>((r) => metricsServer!.close(() => r())) } : undefined,
      adapter,
    ]);
  }
}
