// The composition root of the gateway process: embedded worker, pools and router, ZMQ and HTTP front doors.
// Built in that order and closed in reverse; close() drains requests in flight up to a grace period.
import type { Hono, MiddlewareHandler } from 'hono';
import { closeAll, type Closable } from '../lib/close-all.js';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { endpointHost, isLoopbackHost, type FrameworkConfig, type GatewayConfig } from '../config.js';
import type { FrameworkLauncher } from '../router/framework-launcher.js';
import { FrameworkRegistry } from '../router/framework-registry.js';
import { Router } from '../router/router.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { startEmbeddedWorker, type EmbeddedWorker } from '../worker/embedded-process.js';
import { createHttpApp, type MetricsRegistryLike } from './http/app.js';
import { startHttpServer, type HttpServerHandle } from './server.js';
import { ZmqFront } from './zmq-front.js';

export interface GatewayDeps {
  log?: Logger;
  /** Starts frameworks whose config has a `launcher` (the docker manager). Owned by the caller: not closed here. */
  launcher?: FrameworkLauncher;
  /** Request and pool metrics; its registry is served at /metrics. */
  metrics?: GatewayMetrics;
  /** A prom-client Registry to serve at /metrics (when `metrics` is not given). */
  metricsRegistry?: MetricsRegistryLike;
  /** Adds HTTP routes (container control etc.); guard control routes with `requireToken`. */
  extendHttp?: (app: Hono, helpers: { requireToken: MiddlewareHandler }) => void;
  /** Package version shown in the OpenAPI document. */
  version?: string;
}

export interface Gateway {
  readonly httpUrl: string;
  readonly zmqEndpoint: string;
  readonly router: Router;
  /** Endpoints of the embedded workers by framework (for logs and tests). */
  readonly embeddedWorkers: ReadonlyMap<string, EmbeddedWorker>;
  /** Drains requests in flight (up to `graceMs`, default config.shutdownGraceMs), closes every socket, child and server. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** Refuses a start that would expose control endpoints without a token. */
export function checkExposure(config: GatewayConfig): void {
  if (!isLoopbackHost(config.http.host) && config.authToken === undefined) {
    throw new GatewayError('unauthorized', `refusing to listen on ${config.http.host} (not loopback) without an auth token: set authToken in the config or PAIG_AUTH_TOKEN`);
  }
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<Gateway> {
  const log = (deps.log ?? silentLogger).child({ component: 'gateway' });
  checkExposure(config);
  const zmqLoopback = isLoopbackHost(endpointHost(config.zmq.endpoint));
  const opened: Closable[] = [];
  const embedded = new Map<string, EmbeddedWorker>();
  try {
    const frameworks: FrameworkConfig[] = [];
    for (const fw of Object.values(config.frameworks)) {
      if (!fw.embedded) {
        frameworks.push(fw);
        continue;
      }
      const worker = await startEmbeddedWorker({ framework: fw.name, delayMs: fw.embeddedDelayMs, logLevel: config.logLevel === 'debug' ? 'debug' : 'warn', log: deps.log });
      opened.push(worker);
      embedded.set(fw.name, worker);
      frameworks.push({ ...fw, endpoints: [worker.endpoint] });
    }
    const registry = new FrameworkRegistry({
      frameworks,
      defaultFramework: config.defaultFramework,
      limits: config.limits,
      healthIntervalMs: config.healthIntervalMs,
      launcher: deps.launcher,
      log: deps.log,
    });
    const router = new Router({ registry, log: deps.log });
    opened.push({ close: () => router.close() });
    if (deps.metrics) for (const entry of registry.entries()) entry.pool.onEvent((e) => deps.metrics!.observePoolEvent(e));
    await registry.start();

    const zmqFront = new ZmqFront({
      endpoint: config.zmq.endpoint,
      router,
      limits: config.limits,
      log: deps.log,
      metrics: deps.metrics,
      controlToken: zmqLoopback ? undefined : config.authToken,
      refuseControl: !zmqLoopback && config.authToken === undefined,
    });
    const zmqEndpoint = await zmqFront.start();
    opened.push(zmqFront);

    const app = createHttpApp({
      router,
      bodyLimitBytes: config.http.bodyLimitBytes,
      limits: config.limits,
      authToken: config.authToken,
      requireAuth: config.authToken !== undefined || !isLoopbackHost(config.http.host),
      log: deps.log,
      metrics: deps.metrics,
      metricsRegistry: deps.metricsRegistry,
      version: deps.version,
      extend: deps.extendHttp,
    });
    const http: HttpServerHandle = await startHttpServer(app, { host: config.http.host, port: config.http.port });
    opened.push({ close: () => http.close() });

    log.info({ event: 'gateway.started', http: http.url, zmq: zmqEndpoint, frameworks: registry.names, default: registry.defaultFramework });
    let closing: Promise<void> | undefined;
    const shutdown = async (graceMs: number) => {
      log.info({ event: 'gateway.stopping', inFlight: router.inFlight, graceMs });
      // Both doors stop taking requests and wait for theirs; the router cancels what is left after the grace.
      const results = await Promise.allSettled([zmqFront.close({ graceMs }), http.close(graceMs + 1_000), router.close({ graceMs })]);
      await closeAll([...embedded.values()].reverse());
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason as unknown), 'gateway close failed');
      log.info({ event: 'gateway.stopped' });
    };
    return {
      httpUrl: http.url,
      zmqEndpoint,
      router,
      embeddedWorkers: embedded,
      close: (graceMs = config.shutdownGraceMs) => (closing ??= shutdown(graceMs)),
    };
  } catch (err) {
    await closeAll(opened.reverse()).catch((closeErr: unknown) => log.error({ event: 'gateway.cleanup_failed', err: closeErr }));
    throw err;
  }
}
