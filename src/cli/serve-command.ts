// `serve`: the gateway process. Flags win over PAIG_* variables, which win over the config file (src/config.ts
// reads the variables; its ConfigError lists every bad field at once).
import { readFileSync } from 'node:fs';
import { Option } from '@commander-js/extra-typings';
import type { ConfigOverrides } from '../config.js';
import { CLIENT_ENV, type DeclaredCommand } from './commands.js';

const { version: VERSION } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// Everything heavy (zeromq, hono, prom-client, the OpenTelemetry SDK) is imported when serve runs, not for --help.
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

export const serveCommand: DeclaredCommand = {
  name: 'serve',
  summary: 'start the gateway (HTTP + ZMQ front doors; with no config, the embedded demo worker)',
  define(cmd, io) {
    cmd
      // The PAIG_* variables are read by the config loader (with its checks), so they are named here, not bound.
      .addOption(new Option('-c, --config <file>', `gateway config file, YAML or JSON (env: ${CLIENT_ENV.config})`))
      .option('--http-host <host>', 'HTTP door address (env: PAIG_HTTP_HOST; default 127.0.0.1)')
      .option('--http-port <port>', 'HTTP door port, 0 for any (env: PAIG_HTTP_PORT; default 8080)')
      .option('--zmq-endpoint <endpoint>', 'ZMQ door bind address (env: PAIG_ZMQ_ENDPOINT; default tcp://127.0.0.1:5550)')
      .option('--default-framework <name>', 'framework for requests that name none (env: PAIG_DEFAULT_FRAMEWORK)')
      .option('--log-level <level>', 'debug | info | warn | error (env: PAIG_LOG_LEVEL; default info)')
      .addHelpText('after', '\nAlso read: PAIG_AUTH_TOKEN (bearer token; required off loopback), OTEL_* (OpenTelemetry export). Flags win over variables, variables over the file.')
      .action(async (values) => {
        const { Registry, DEFAULT_HTTP_PORT, loadConfig, overridesFromEnv, buildGateway, createMetrics, startTelemetry, SAMPLE_CURL } = await serveModules();
        const { createLogger } = await import('../lib/log.js');
        const env = overridesFromEnv(io.env);
        const flags: ConfigOverrides = {};
        if (values.httpPort !== undefined) flags.httpPort = values.httpPort;
        if (values.httpHost !== undefined) flags.httpHost = values.httpHost;
        if (values.zmqEndpoint !== undefined) flags.zmqEndpoint = values.zmqEndpoint;
        if (values.logLevel !== undefined) flags.logLevel = values.logLevel;
        if (values.defaultFramework !== undefined) flags.defaultFramework = values.defaultFramework;
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
      });
  },
};
