// Entry point (importing it runs the CLI). The `physical-ai-gateway` command: serve, infer, frameworks, replay, record (+ docker and ros-bridge commands when present).
// The only place that reads process.env and argv, prints with console, and exits.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ConfigOverrides } from '../config.js';
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import type { Codec } from '../protocol/codec.js';
import type { Tensor as TensorClass } from '../protocol/tensor.js';
import type { CliCommand, CliIo } from './commands.js';
import { dockerCommands } from './docker-commands.js';
import { recordingCommands } from './recording-commands.js';
import { trainCommand } from './train-command.js';
import type { SampleSize } from './sample.js';

// Everything heavy (zeromq, hono, prom-client, the OpenTelemetry SDK, dockerode, yaml, ajv) is imported when a
// command runs, not here: `--version` and `--help` load this file, the light modules above and nothing else.
const { version: VERSION } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

async function serveModules() {
  const [{ Registry }, { DEFAULT_HTTP_PORT, loadConfig, overridesFromEnv }, { buildGateway }, { createMetrics }, { startTelemetry }, { SAMPLE_CURL }] = await Promise.all([
    import('prom-client'),
    import('../config.js'),
    import('../build-gateway.js'),
    import('../telemetry/metrics.js'),
    import('../telemetry/sdk.js'),
    import('./sample.js'),
  ]);
  return { Registry, DEFAULT_HTTP_PORT, loadConfig, overridesFromEnv, buildGateway, createMetrics, startTelemetry, SAMPLE_CURL };
}

async function clientModules() {
  const [{ DEFAULT_HTTP_PORT, DEFAULT_ZMQ_ENDPOINT }, { decodeMessage, encodeMessage }, { Tensor }, { WorkerClient }, { sampleObservation, sampleObservationJson }] = await Promise.all([
    import('../config.js'),
    import('../protocol/codec.js'),
    import('../protocol/tensor.js'),
    import('../zmq/worker-client.js'),
    import('./sample.js'),
  ]);
  return { DEFAULT_HTTP_PORT, DEFAULT_ZMQ_ENDPOINT, decodeMessage, encodeMessage, Tensor, WorkerClient, sampleObservation, sampleObservationJson };
}


// ---------------------------------------------------------------- serve
const serve: CliCommand = {
  name: 'serve',
  summary: 'start the gateway (HTTP + ZMQ front doors; with no config, the embedded demo worker)',
  async run(args, io) {
    const { Registry, DEFAULT_HTTP_PORT, loadConfig, overridesFromEnv, buildGateway, createMetrics, startTelemetry, SAMPLE_CURL } = await serveModules();
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        'http-port': { type: 'string' },
        'http-host': { type: 'string' },
        'zmq-endpoint': { type: 'string' },
        'log-level': { type: 'string' },
        'default-framework': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out('usage: physical-ai-gateway serve [--config file.yaml] [--http-host 127.0.0.1] [--http-port 8080] [--zmq-endpoint tcp://127.0.0.1:5550] [--log-level info]');
      io.out('environment: PAIG_CONFIG, PAIG_HTTP_HOST, PAIG_HTTP_PORT, PAIG_ZMQ_ENDPOINT, PAIG_LOG_LEVEL, PAIG_AUTH_TOKEN, PAIG_DEFAULT_FRAMEWORK (flags win)');
      return 0;
    }
    const env = overridesFromEnv(io.env);
    const flags: ConfigOverrides = {};
    if (values['http-port'] !== undefined) flags.httpPort = values['http-port'];
    if (values['http-host'] !== undefined) flags.httpHost = values['http-host'];
    if (values['zmq-endpoint'] !== undefined) flags.zmqEndpoint = values['zmq-endpoint'];
    if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
    if (values['default-framework'] !== undefined) flags.defaultFramework = values['default-framework'];
    const { config: envConfig, ...envOverrides } = env;
    const file = values.config ?? envConfig;
    const config = await loadConfig({ file, overrides: { ...envOverrides, ...flags } });
    const log = createLogger({ level: config.logLevel, bindings: { service: 'physical-ai-gateway' } });
    // OpenTelemetry (OTEL_* variables; off without them) before createMetrics, so the OTLP metrics mirror binds to it.
    const telemetry = startTelemetry({ serviceName: 'physical-ai-gateway', serviceVersion: VERSION, env: io.env, log });
    const metrics = createMetrics(new Registry(), { runtime: true });
    telemetry.exportMetrics(metrics.registry);
    const gateway = await buildGateway(config, { log, metrics, version: VERSION }).catch(async (err: unknown) => {
      await telemetry.shutdown().catch(() => undefined);
      throw err;
    });

    const names = gateway.router.status().map((f) => `${f.name}${f.default ? ' (default)' : ''}: ${f.state}`).join(', ');
    io.out(`physical-ai-gateway ${VERSION} listening`);
    io.out(`  HTTP  ${gateway.httpUrl}   (API docs ${gateway.httpUrl}/docs, metrics ${gateway.httpUrl}/metrics)`);
    io.out(`  ZMQ   ${gateway.zmqEndpoint}`);
    io.out(`  frameworks: ${names}`);
    for (const [name, worker] of gateway.embeddedWorkers) io.out(`  embedded worker for '${name}' (demo policy) at ${worker.endpoint}, pid ${worker.pid}`);
    if (gateway.router.registry.has('demo')) {
      io.out(`try: ${SAMPLE_CURL.replace(`http://127.0.0.1:${DEFAULT_HTTP_PORT}`, gateway.httpUrl)}`);
    }

    await new Promise<void>((resolve) => {
      let stopping: string | undefined;
      const stop = (signal: string) => {
        // Under `npm start` a Ctrl-C arrives twice, from the terminal and forwarded by npm: the same signal again is
        // the same request. A different one while draining (SIGINT after SIGTERM, or the reverse) forces the exit.
        if (stopping === signal) return;
        if (stopping) {
          io.err(`${signal} after ${stopping}: exiting without draining`);
          process.exit(1);
        }
        stopping = signal;
        io.out(`${signal}: draining requests in flight and closing`);
        gateway.close().then(
          () => resolve(),
          (err: unknown) => {
            io.err(`close failed: ${String(err)}`);
            resolve();
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
    await telemetry.shutdown().catch((err: unknown) => io.err(`telemetry shutdown failed: ${String(err)}`));
    io.out('stopped');
    return 0;
  },
};

// ---------------------------------------------------------------- infer
function summariseAction(action: unknown, rows: number, Tensor: typeof TensorClass): string[] {
  const lines: string[] = [];
  let nested: number[][];
  if (action instanceof Tensor) {
    lines.push(`action: ${action.dtype} [${action.shape.join(', ')}]`);
    nested = action.toNested() as number[][];
  } else if (Array.isArray(action)) {
    nested = action as number[][];
    lines.push(`action: nested list [${nested.length}, ${Array.isArray(nested[0]) ? nested[0].length : '?'}]`);
  } else {
    return [`action: ${JSON.stringify(action)}`];
  }
  for (let k = 0; k < Math.min(rows, nested.length); k++) lines.push(`  [${k}] ${(nested[k] ?? []).map((v) => Number(v).toFixed(4)).join(' ')}`);
  if (nested.length > rows) lines.push(`  ... ${nested.length - rows} more rows`);
  return lines;
}

/** The gateway's default framework, from GET /v1/frameworks; `bad_request` when it has none. */
async function defaultFrameworkOf(base: string, timeoutMs: number): Promise<string> {
  using deadline = new Deadline(timeoutMs);
  const res = await fetch(`${base}/v1/frameworks`, { signal: deadline.signal });
  const body = (await res.json()) as { default?: string | null; frameworks?: Array<{ name: string }> };
  if (!res.ok || !body.default) {
    throw new GatewayError('bad_request', `the gateway at ${base} has no default framework (${(body.frameworks ?? []).map((f) => f.name).join(', ') || 'none listed'}): pass --framework`);
  }
  return body.default;
}

const infer: CliCommand = {
  name: 'infer',
  summary: 'send one observation (a sample or a JSON file) and print the action chunk and the timings',
  async run(args, io) {
    const { DEFAULT_HTTP_PORT, DEFAULT_ZMQ_ENDPOINT, decodeMessage, encodeMessage, Tensor, WorkerClient, sampleObservation, sampleObservationJson } = await clientModules();
    const { values } = parseArgs({
      args,
      options: {
        http: { type: 'boolean', default: false },
        url: { type: 'string', default: `http://127.0.0.1:${DEFAULT_HTTP_PORT}` },
        endpoint: { type: 'string', default: DEFAULT_ZMQ_ENDPOINT },
        framework: { type: 'string' },
        codec: { type: 'string', default: 'binary' },
        sample: { type: 'string', default: 'L' },
        file: { type: 'string', short: 'f' },
        instruction: { type: 'string' },
        count: { type: 'string', default: '1' },
        rows: { type: 'string', default: '4' },
        'timeout-ms': { type: 'string', default: '5000' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out('usage: physical-ai-gateway infer [--sample S|L | --file obs.json] [--http [--url http://127.0.0.1:8080]] [--endpoint tcp://127.0.0.1:5550] [--codec binary|msgpack|json] [--framework demo] [--count N]');
      return 0;
    }
    const codec = values.codec as Codec;
    if (!['binary', 'msgpack', 'json'].includes(codec)) throw new GatewayError('bad_request', `--codec must be binary, msgpack or json`);
    const size = values.sample!.toUpperCase() as SampleSize;
    if (size !== 'S' && size !== 'L') throw new GatewayError('bad_request', '--sample must be S or L');
    let data: unknown;
    if (values.file) data = JSON.parse(await readFile(values.file, 'utf8'));
    // HTTP has one body, so its binary form is msgpack with inline tensors; JSON only when asked for.
    else data = codec === 'json' ? sampleObservationJson(size) : sampleObservation(size);
    if (values.instruction !== undefined && data && typeof data === 'object') (data as Record<string, unknown>).instruction = values.instruction;
    const count = Math.max(1, Number(values.count) || 1);
    const timeoutMs = Number(values['timeout-ms']) || 5000;
    const times: number[] = [];
    let last: { result: unknown; timing?: { compute_ms?: number; total_ms?: number }; via: string } | undefined;

    if (values.http) {
      const base = values.url!.replace(/\/$/, '');
      // As over ZMQ: without --framework, the gateway's default framework (asked for, not assumed to be 'demo').
      const framework = values.framework ?? (await defaultFrameworkOf(base, timeoutMs));
      const msgpack = codec !== 'json';
      const url = `${base}/v1/frameworks/${encodeURIComponent(framework)}/inference`;
      for (let i = 0; i < count; i++) {
        const body = msgpack ? encodeMessage({ data }, 'msgpack')[0]! : JSON.stringify({ data });
        const t0 = performance.now();
        using deadline = new Deadline(timeoutMs);
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': msgpack ? 'application/msgpack' : 'application/json' }, body: body as Uint8Array<ArrayBuffer> | string, signal: deadline.signal });
        const bytes = new Uint8Array(await res.arrayBuffer());
        times.push(performance.now() - t0);
        const reply = msgpack ? decodeMessage([bytes]).header : (JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>);
        if (!res.ok) {
          io.err(`HTTP ${res.status}: ${JSON.stringify(reply)}`);
          return 1;
        }
        last = { result: reply.result, timing: reply.timing as never, via: `HTTP ${msgpack ? 'msgpack' : 'JSON'} ${url}` };
      }
    } else {
      const client = new WorkerClient({ endpoint: values.endpoint!, codec, timeoutMs });
      try {
        for (let i = 0; i < count; i++) {
          const reply = await client.request({ type: 'inference', data, ...(values.framework ? { framework: values.framework } : {}) });
          times.push(reply.roundTripMs);
          last = { result: reply.result, timing: reply.timing, via: `ZMQ ${codec} ${values.endpoint}` };
        }
      } finally {
        await client.close();
      }
    }
    const result = (last!.result ?? {}) as Record<string, unknown>;
    io.out(`via ${last!.via}`);
    for (const line of summariseAction(result.action, Number(values.rows) || 4, Tensor)) io.out(line);
    io.out(`dt_s: ${String(result.dt_s)}  model: ${String(result.model)}  instruction: ${JSON.stringify(result.instruction ?? '')}`);
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    io.out(`round trip: ${count === 1 ? `${median.toFixed(3)} ms` : `median ${median.toFixed(3)} ms over ${count} (min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)})`}`);
    if (last!.timing) io.out(`worker: compute ${last!.timing.compute_ms?.toFixed(3)} ms, total ${last!.timing.total_ms?.toFixed(3)} ms`);
    return 0;
  },
};

// ---------------------------------------------------------------- frameworks
const frameworks: CliCommand = {
  name: 'frameworks',
  summary: "list the gateway's frameworks: state, endpoints, requests in flight, recent latency",
  usage: '[--url http://127.0.0.1:8080] [--json]',
  async run(args, io) {
    const { DEFAULT_HTTP_PORT } = await import('../config.js');
    const { values } = parseArgs({ args, options: { url: { type: 'string', default: `http://127.0.0.1:${DEFAULT_HTTP_PORT}` }, json: { type: 'boolean', default: false } } });
    using deadline = new Deadline(5_000);
    const res = await fetch(`${values.url!.replace(/\/$/, '')}/v1/frameworks`, { signal: deadline.signal });
    const body = (await res.json()) as { frameworks: Array<{ name: string; default: boolean; state: string; inFlight: number; maxConcurrency: number; recentLatencyMs?: number; endpoints: Array<{ endpoint: string; state: string }> }> };
    if (values.json) {
      io.out(JSON.stringify(body, null, 2));
      return 0;
    }
    const rows = [['FRAMEWORK', 'STATE', 'IN FLIGHT', 'LATENCY', 'ENDPOINTS']];
    for (const f of body.frameworks) {
      rows.push([
        f.name + (f.default ? ' *' : ''),
        f.state,
        `${f.inFlight}/${f.maxConcurrency}`,
        f.recentLatencyMs === undefined || f.recentLatencyMs === null ? '-' : `${f.recentLatencyMs.toFixed(2)} ms`,
        f.endpoints.map((e) => `${e.endpoint} (${e.state})`).join(', ') || '-',
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) io.out(r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
    io.out('(* = default framework)');
    return 0;
  },
};

// ---------------------------------------------------------------- extensions
/**
 * Commands of other modules. Docker's (up/down/ps/logs) load dockerode only when run; the ROS bridge's module is
 * loaded lazily too, and a checkout without it still runs the rest.
 */
async function extensionCommands(): Promise<CliCommand[]> {
  const out: CliCommand[] = [...dockerCommands, ...recordingCommands, trainCommand];
  out.push({
    name: 'keys',
    summary: 'make a CURVE key pair (<name>.key, <name>.pub) for encrypted ZMQ links between hosts',
    async run(args, io) {
      const { keysCommand } = await import('./keys-command.js');
      return keysCommand.run(args, io);
    },
  });
  out.push({
    name: 'bridge',
    summary: 'run the ROS 2 bridge (cameras + joint states → policy → JointTrajectory)',
    async run(args, io) {
      const { bridgeCommand } = await import('../ros-bridge/main.js');
      return bridgeCommand.run(args, io);
    },
  });
  return out;
}

function usage(commands: CliCommand[], io: CliIo): void {
  io.out(`physical-ai-gateway ${VERSION}: serve robot policies over ZeroMQ and HTTP`);
  io.out('usage: physical-ai-gateway <command> [options]   (<command> --help for its options)');
  for (const c of commands) io.out(`  ${c.name.padEnd(11)} ${c.summary}`);
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const commands = [serve, infer, frameworks, ...(await extensionCommands())];
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    usage(commands, io);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    io.out(VERSION);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`unknown command '${name}'`);
    usage(commands, io);
    return 2;
  }
  if (command.usage !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    io.out(`usage: physical-ai-gateway ${command.name} ${command.usage}`);
    io.out(`  ${command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof (await import('../config.js')).ConfigError) {
      io.err(err.message);
      return 2;
    }
    if (err instanceof GatewayError) {
      io.err(`error (${err.code}): ${err.message}`);
      return 1;
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(err.message);
      return 2;
    }
    // What a user meets most: a file that is not there, a gateway that does not answer. One line and a hint.
    const code = (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
      io.err(`error: ${(err as Error).message}`);
      return 2;
    }
    if (err instanceof TypeError && err.message === 'fetch failed') {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? 'no answer';
      io.err(`error: the gateway did not answer (${cause}); is it running? (npm start, or --url to point at another)`);
      return 1;
    }
    io.err(err instanceof Error ? (err.stack ?? err.message) : String(err));
    return 1;
  }
}

const io: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  env: process.env,
};
main(process.argv.slice(2), io).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
