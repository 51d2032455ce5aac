// A gateway process for the benchmark: `tsx bench/servers/gateway-main.ts '<config JSON>' [--no-metrics]`.
// Builds the config with parseConfig (the same checks as the CLI), starts the gateway with request metrics on
// (as `physical-ai-gateway serve` runs it), prints one JSON line {"event":"gateway.listening",httpUrl,zmqEndpoint}
// on stdout, and closes on SIGTERM/SIGINT or when stdin ends (so it never outlives the harness).
import { Registry } from 'prom-client';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { createLogger } from '../../src/lib/log.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { closeOnStop } from './stop.js';

const raw = JSON.parse(process.argv[2] ?? '{}') as unknown;
const withMetrics = !process.argv.includes('--no-metrics');
const config = parseConfig(raw);
const log = createLogger({ level: config.logLevel, bindings: { process: 'bench-gateway' } });
const gateway = await buildGateway(config, { log, ...(withMetrics ? { metrics: createMetrics(new Registry()) } : {}) });
process.stdout.write(JSON.stringify({ event: 'gateway.listening', httpUrl: gateway.httpUrl, zmqEndpoint: gateway.zmqEndpoint, pid: process.pid }) + '\n');
closeOnStop(() => gateway.close(1_000));
