// The one composition root: builds every part of a running gateway from its config, in dependency order, and
// returns it with one ordered list of things to close (closed in reverse). The CLI's `serve`, the tests and the
// bench all start gateways through here; nothing else wires parts together.
//
//   embedded workers → Docker support (only when a framework has a launcher; dockerode is loaded lazily)
//   → framework registry + router (pools; the launcher behind its interface) → recorder (no I/O until it records)
//   → training jobs (through the router) → request pipeline (the recorder as its observer, `train` to the jobs) → ZMQ front door, HTTP app (+ container control and recording
//   routes) → HTTP server
//   → the peers' doors when configured: openpi's websocket (`ws` loaded only then), GR00T's ZMQ protocol
//
// Parts that need each other talk through events handed in here: pool and router events feed the metrics, the
// launcher's events reach the router through the FrameworkLauncher interface.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Hono, MiddlewareHandler } from 'hono';
import type Docker from 'dockerode';
import { endpointHost, isLoopbackHost, type FrameworkConfig, type GatewayConfig } from './config.js';
import type { DockerManager } from './docker/docker-manager.js';
import type { DockerSupport } from './docker/docker-support.js';
import type { FrameworkSpec } from './docker/framework-spec.js';
import { AuthPolicy } from './gateway/auth.js';
import { createHttpApp, type MetricsRegistryLike } from './gateway/http/app.js';
import { registerControlRoutes } from './gateway/http/control-routes.js';
import { registerJobRoutes } from './gateway/http/job-routes.js';
import { registerRecordingRoutes } from './gateway/http/recording-routes.js';
import { RequestPipeline } from './gateway/pipeline.js';
import { startHttpServer } from './gateway/server.js';
import { GrootDoor } from './gateway/groot-door.js';
import type { OpenpiDoor } from './gateway/openpi-door.js';
import { ZmqFront } from './gateway/zmq-front.js';
import { closeAll, type Closable } from './lib/close-all.js';
import { GatewayError } from './lib/errors.js';
import { silentLogger, type Logger } from './lib/log.js';
import { portIsFree } from './lib/ports.js';
import { JobManager, type JobTransport } from './jobs/job-manager.js';
import { Recorder } from './recording/recorder.js';
import { ShmJanitor } from './shm/shm-janitor.js';
import { LeaseService } from './gateway/lease-service.js';
import { FrameworkRegistry } from './router/framework-registry.js';
import { Router } from './router/router.js';
import type { GatewayMetrics } from './telemetry/metrics.js';
import { startEmbeddedWorker, type EmbeddedWorker } from './worker/embedded-process.js';

export interface GatewayEnvironment {
  log?: Logger;
  /** Request, pool, framework and container metrics; its registry is served at /metrics. */
  metrics?: GatewayMetrics;
  /** A prom-client Registry to serve at /metrics (when `metrics` is not given). */
  metricsRegistry?: MetricsRegistryLike;
  /** Package version shown in the OpenAPI document. */
  version?: string;
  /** Home folder for the built-in framework specs' host folders (default: os.homedir()). */
  homeDir?: string;
  /** Docker for frameworks with a `launcher`; the defaults suit a real deployment, tests narrow them. */
  docker?: {
    /** Specs to use instead of the config's launcher entries (tests: labels, ports, names of their own). */
    specs?: FrameworkSpec[];
    /** An existing manager (not closed by the gateway). */
    manager?: DockerManager;
    /** dockerode connection options (default /var/run/docker.sock). */
    connection?: Docker.DockerOptions;
    /** Extra label filters for the stats sampler (a test run's containers). */
    labels?: string[];
  };
  /** More HTTP routes (tests, embedding programs); guard control routes with `requireToken`. */
  extendHttp?: (app: Hono, helpers: { requireToken: MiddlewareHandler }) => void;
}

export interface Gateway {
  readonly httpUrl: string;
  readonly zmqEndpoint: string;
  /** ws://host:port of openpi's door, when configured. */
  readonly openpiUrl: string | undefined;
  /** The bound endpoint of GR00T's door, when configured. */
  readonly grootEndpoint: string | undefined;
  readonly router: Router;
  readonly pipeline: RequestPipeline;
  /** Records inference exchanges to MCAP files (off unless the config or `POST /v1/recording` turns it on). */
  readonly recorder: Recorder;
  /** Training jobs: `train` requests, their progress, cancel (src/jobs/). */
  readonly jobs: JobManager;
  /** The direct path's leases, when a framework has `direct`. */
  readonly leases: LeaseService | undefined;
  /** The embedded workers by framework (for logs and tests). */
  readonly embeddedWorkers: ReadonlyMap<string, EmbeddedWorker>;
  /** Docker support when a framework has a launcher. */
  readonly docker: DockerSupport | undefined;
  /** Drains requests in flight (up to `graceMs`, default config.shutdownGraceMs), then closes every part in reverse build order. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** Builds and starts a gateway; on any failure closes what it had opened and rethrows. */
export async function buildGateway(config: GatewayConfig, env: GatewayEnvironment = {}): Promise<Gateway> {
  const baseLog = env.log ?? silentLogger;
  const log = baseLog.child({ component: 'gateway' });
  const { metrics } = env;
  const opened: Closable[] = [];
  const close = () => closeAll([...opened].reverse());
  try {
    await checkListenAddresses(config);
    // Embedded workers: the framework's endpoint is the child's.
    const embedded = new Map<string, EmbeddedWorker>();
    const frameworks: FrameworkConfig[] = [];
    for (const fw of Object.values(config.frameworks)) {
      if (!fw.embedded) {
        frameworks.push(fw);
        continue;
      }
      const worker = await startEmbeddedWorker({ framework: fw.name, delayMs: fw.embeddedDelayMs, logLevel: config.logLevel === 'debug' ? 'debug' : 'warn', log: baseLog });
      opened.push(worker);
      embedded.set(fw.name, worker);
      frameworks.push({ ...fw, endpoints: [worker.endpoint] });
    }

    // Same-host shared memory: the gateway reads no tensor bytes; it sweeps the root so a killed client's folder
    // goes within a lease length, and launched containers mount the root (startDocker).
    if (config.sharedMemory.dir) {
      const janitor = new ShmJanitor({ dir: config.sharedMemory.dir, intervalMs: config.sharedMemory.sweepIntervalMs, log: baseLog });
      janitor.start();
      opened.push(janitor);
    }

    const docker = await startDocker(config, env, baseLog);
    if (docker) opened.push(docker);

    const registry = new FrameworkRegistry({
      frameworks,
      defaultFramework: config.defaultFramework,
      limits: config.limits,
      healthIntervalMs: config.healthIntervalMs,
      launcher: docker?.launcher,
      log: baseLog,
    });
    const router = new Router({ registry, log: baseLog });
    opened.push({ close: () => router.close() });
    if (metrics) {
      for (const entry of registry.entries()) entry.pool.onEvent((e) => metrics.observePoolEvent(e));
      for (const f of router.status()) metrics.recordFrameworkState(f.name, f.state);
      router.onEvent((e) => metrics.recordFrameworkState(e.framework, e.state));
    }
    await registry.start();

    const mappings = new Map(Object.values(config.frameworks).flatMap((f) => (f.observation ? [[f.name, f.observation] as const] : [])));
    // Closed after the doors (it is opened before them): exchanges of requests that finish while draining are written.
    const rec = config.recording;
    const recorder = new Recorder({
      dir: rec.dir ?? join(env.homeDir ?? homedir(), '.cache', 'physical_ai_tools', 'recordings'),
      frameworks: registry.names,
      recordAll: rec.enabled,
      recordFrameworks: Object.values(config.frameworks).filter((f) => f.record).map((f) => f.name),
      maxFileBytes: rec.maxFileBytes,
      maxFileAgeS: rec.maxFileAgeS,
      maxQueue: rec.maxQueue,
      images: rec.images,
      metrics,
      log: baseLog,
      metadata: { gateway_version: env.version ?? 'unknown' },
    });
    opened.push(recorder);

    // Training jobs: `train` goes through the router (on-demand start, deadlines, CURVE as any request; the pool
    // picks a worker); a job's polls and cancel go to the pool of its framework, to the job's endpoint only (a
    // long poll must not take a router concurrency slot or skew its latency, and must reach the job's replica).
    const jobTransport: JobTransport = {
      request: async (framework, type, data, { timeoutMs, endpoint, signal }) => {
        if (endpoint === undefined) {
          const reply = await router.route({ type, data, framework }, { timeoutMs, ...(signal ? { signal } : {}) });
          return { result: reply.result, endpoint: reply.endpoint };
        }
        const entry = registry.resolve(framework);
        const reply = await entry.pool.request({ type, data, framework: entry.name }, { timeoutMs, endpoint, codec: entry.config.codec, ...(signal ? { signal } : {}) });
        return { result: reply.result, endpoint: reply.endpoint };
      },
      readyWorkers: () =>
        registry.entries().filter((e) => e.config.training).flatMap((e) => e.pool.stats().endpoints.filter((ep) => ep.state === 'ready').map((ep) => ({ framework: e.name, endpoint: ep.endpoint }))),
      trains: (name) => config.frameworks[name]?.training === true,
      onReady: (listener) => {
        const offs = registry.entries().map((e) => e.pool.onEvent((ev) => ev.type === 'state' && ev.to === 'ready' && listener({ framework: e.name, endpoint: ev.endpoint })));
        return () => offs.forEach((off) => off());
      },
      resolve: (name) => registry.resolve(name).name,
      // A job keeps its framework from an idle stop while it is queued or runs (its polls never pass the router).
      hold: (name) => {
        const entry = registry.resolve(name);
        return entry.launcher?.hold?.(entry.name) ?? (() => undefined);
      },
    };
    const jobs = new JobManager({ transport: jobTransport, ...config.jobs, metrics, log: baseLog });
    opened.push(jobs);
    jobs.start();
    // The direct path's control plane, when a framework allows it: leases, revocation, the workers' records.
    // Made either way (the control routes answer through it: "no direct path" for every framework when none has
    // one); started, and handed to the pipeline, only when a framework allows the direct path.
    const leaseService = new LeaseService({ router, log: baseLog, ...(metrics ? { metrics } : {}) });
    let leases: LeaseService | undefined;
    if (Object.values(config.frameworks).some((f) => f.direct)) {
      leases = leaseService;
      leases.start();
      opened.push(leases);
    }

    const pipeline = new RequestPipeline({
      router,
      metrics,
      mappings,
      log: baseLog,
      observer: recorder,
      jobs,
      ...(leases ? { leases } : {}),
      auth: {
        http: new AuthPolicy({ token: config.authToken, publicBind: !isLoopbackHost(config.http.host) }),
        zmq: new AuthPolicy({ token: config.authToken, publicBind: !isLoopbackHost(endpointHost(config.zmq.endpoint)) }),
      },
    });

    const zmqFront = new ZmqFront({ endpoint: config.zmq.endpoint, pipeline, limits: config.limits, log: baseLog, ...(config.zmq.curve ? { curve: config.zmq.curve } : {}) });
    const zmqEndpoint = await zmqFront.start();

    const app = createHttpApp({
      pipeline,
      auth: new AuthPolicy({ token: config.authToken, publicBind: !isLoopbackHost(config.http.host) }),
      bodyLimitBytes: config.http.bodyLimitBytes,
      limits: config.limits,
      log: baseLog,
      metrics,
      metricsRegistry: env.metricsRegistry,
      version: env.version,
      extend: (hono, helpers) => {
        registerControlRoutes(hono, { control: docker?.launcher, start: (name, signal) => router.startFramework(name, signal), leases: leaseService, requireToken: helpers.requireToken, log: baseLog });
        registerRecordingRoutes(hono, { control: recorder, requireToken: helpers.requireToken, log: baseLog });
        registerJobRoutes(hono, { jobs, requireToken: helpers.requireToken });
        env.extendHttp?.(hono, helpers);
      },
    });
    const { host, port, requestTimeoutMs, headersTimeoutMs, maxConnections } = config.http;
    const http = await startHttpServer(app, { host, port, requestTimeoutMs, headersTimeoutMs, maxConnections });

    // The peers' doors: each closed with the others (below); one that fails to start closes what was opened.
    const peerDoors: Array<OpenpiDoor | GrootDoor> = [];
    opened.push({ close: () => Promise.all(peerDoors.map((d) => d.close())).then(() => undefined) });
    let openpiUrl: string | undefined;
    if (config.openpi) {
      const { OpenpiDoor } = await import('./gateway/openpi-door.js');
      const door = new OpenpiDoor({
        host: config.openpi.host,
        port: config.openpi.port,
        pipeline,
        auth: new AuthPolicy({ token: config.authToken, publicBind: !isLoopbackHost(config.openpi.host) }),
        framework: config.openpi.framework,
        metadataFor: (name) => config.frameworks[name]?.openpi?.metadata ?? {},
        limits: config.limits,
        headersTimeoutMs,
        maxConnections,
        log: baseLog,
      });
      peerDoors.push(door);
      openpiUrl = await door.start();
    }
    let grootEndpoint: string | undefined;
    if (config.groot) {
      const door = new GrootDoor({
        endpoint: config.groot.endpoint,
        pipeline,
        auth: new AuthPolicy({ token: config.authToken, publicBind: !isLoopbackHost(endpointHost(config.groot.endpoint)) }),
        framework: config.groot.framework,
        grootFor: (name) => config.frameworks[name]?.groot,
        limits: config.limits,
        log: baseLog,
      });
      peerDoors.push(door);
      grootEndpoint = await door.start();
    }

    // The doors close first and together: both stop taking requests and wait for theirs (the router cancels
    // what is left after the grace), then the router and its pools, Docker, and the embedded workers.
    let graceMs = config.shutdownGraceMs;
    opened.push({
      close: async () => {
        log.info({ event: 'gateway.stopping', inFlight: router.inFlight, graceMs });
        pipeline.stopAdmitting();
        const results = await Promise.allSettled([zmqFront.close({ graceMs }), http.close(graceMs + 1_000), ...peerDoors.map((d) => d.close({ graceMs })), router.close({ graceMs })]);
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason as unknown), 'closing the front doors failed');
      },
    });

    log.info({ event: 'gateway.started', http: http.url, zmq: zmqEndpoint, openpi: openpiUrl, groot: grootEndpoint, frameworks: registry.names, default: registry.defaultFramework });
    let closing: Promise<void> | undefined;
    return {
      httpUrl: http.url,
      zmqEndpoint,
      openpiUrl,
      grootEndpoint,
      router,
      pipeline,
      recorder,
      jobs,
      leases,
      embeddedWorkers: embedded,
      docker,
      close: (grace = config.shutdownGraceMs) =>
        (closing ??= (async () => {
          graceMs = grace;
          await close();
          log.info({ event: 'gateway.stopped' });
        })()),
    };
  } catch (err) {
    await close().catch((closeErr: unknown) => log.error({ event: 'gateway.cleanup_failed', err: closeErr }));
    throw err;
  }
}

/** Docker support for the frameworks that name a launcher; undefined (and dockerode never loaded) when none does. */
async function startDocker(config: GatewayConfig, env: GatewayEnvironment, log: Logger): Promise<DockerSupport | undefined> {
  const launchable = Object.values(config.frameworks).filter((f) => f.launcher !== undefined);
  if (launchable.length === 0) return undefined;
  const [{ specsFromConfig, startDockerSupport }, { homedir }] = await Promise.all([import('./docker/docker-support.js'), import('node:os')]);
  const specs = env.docker?.specs ?? specsFromConfig(launchable, { homeDir: env.homeDir ?? homedir(), ...(config.sharedMemory.dir ? { sharedMemoryDir: config.sharedMemory.dir } : {}) });
  return startDockerSupport({
    specs,
    log,
    ...(env.metrics ? { metrics: env.metrics } : {}),
    ...(env.docker?.manager ? { manager: env.docker.manager } : {}),
    ...(env.docker?.connection ? { docker: env.docker.connection } : {}),
    ...(env.docker?.labels ? { labels: env.docker.labels } : {}),
    statsIntervalMs: config.docker.statsIntervalMs,
    launcher: { idleStopMs: config.docker.idleStopMs || undefined, oneGpuFrameworkAtATime: config.docker.oneGpuFrameworkAtATime },
  });
}

/**
 * Every fixed TCP address the gateway will listen on is free: said before any worker process or container starts
 * (`unavailable`, naming the address), instead of after them. Port 0 and `*` are chosen by the system.
 */
async function checkListenAddresses(config: GatewayConfig): Promise<void> {
  const addresses: Array<{ what: string; host: string; port: number }> = [{ what: 'HTTP', host: config.http.host, port: config.http.port }];
  const zmq = /^tcp:\/\/(.+):(\d+)$/.exec(config.zmq.endpoint);
  if (zmq) addresses.push({ what: 'ZMQ', host: zmq[1]!.replace(/^\[|\]$/g, ''), port: Number(zmq[2]) });
  if (config.openpi) addresses.push({ what: 'openpi', host: config.openpi.host, port: config.openpi.port });
  const groot = config.groot && /^tcp:\/\/(.+):(\d+)$/.exec(config.groot.endpoint);
  if (groot) addresses.push({ what: 'GR00T', host: groot[1]!.replace(/^\[|\]$/g, ''), port: Number(groot[2]) });
  for (const { what, host, port } of addresses) {
    if (port === 0) continue;
    if (!(await portIsFree(host === '*' ? '0.0.0.0' : host, port))) {
      throw new GatewayError('unavailable', `cannot listen on ${host}:${port} for the ${what} door: address already in use (another gateway running? choose another port)`);
    }
  }
}
