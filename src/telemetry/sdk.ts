// The one place the OpenTelemetry SDK is set up: traces (batch processor → OTLP/HTTP JSON) and metrics
// (periodic reader → OTLP/HTTP JSON), configured from the standard OTEL_* variables that the entry point
// passes in. Off unless an OTLP endpoint or an exporter is named. Only entry points import this file (src/cli,
// the embedded worker's src/worker/main.ts, benchmarks), and they call startTelemetry() before createMetrics()
// so the metrics mirror binds to the SDK's MeterProvider.
import { context, diag, DiagLogLevel, metrics, propagation, trace } from '@opentelemetry/api';
import type { DiagLogger } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-node';
import type { Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-node';

export type TelemetryEnv = Readonly<Record<string, string | undefined>>;

/** Structural subset of src/lib/log.ts Logger (telemetry imports nothing from src). */
export interface TelemetryLogger {
  info(fields: { event: string } & Record<string, unknown>): void;
  warn(fields: { event: string } & Record<string, unknown>): void;
}

export interface TelemetryOptions {
  /** Default service name; OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  /** The process environment, read by the entry point (nothing else reads it). */
  env: TelemetryEnv;
  serviceVersion?: string;
  log?: TelemetryLogger;
  /** Extra span processors (tests, benchmarks); they make tracing active even without OTEL_* variables. */
  spanProcessors?: SpanProcessor[];
}

export interface Telemetry {
  /** Which signals export. */
  readonly tracesEnabled: boolean;
  readonly metricsEnabled: boolean;
  /** Exports what is buffered now. */
  forceFlush(): Promise<void>;
  /** Flushes and stops the SDK and removes the global providers. Idempotent. */
  shutdown(): Promise<void>;
}

/** Resolved settings, exposed for tests and for a startup log line. */
export interface TelemetryConfig {
  disabled: boolean;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  tracesExporters: string[];
  metricsExporters: string[];
  tracesEndpoint: string;
  metricsEndpoint: string;
  tracesHeaders: Record<string, string>;
  metricsHeaders: Record<string, string>;
  timeoutMs: number;
  metricExportIntervalMs: number;
  metricExportTimeoutMs: number;
  sampler: string;
  samplerArg: number | undefined;
  bsp: { scheduledDelayMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number; exportTimeoutMillis?: number };
  /** Problems found (unsupported values); the SDK falls back and logs each. */
  warnings: string[];
}

/** Default OTLP/HTTP endpoint (the collector in observability/compose.yaml). */
export const DEFAULT_OTLP_ENDPOINT = 'http://127.0.0.1:4318';

const nonEmpty = (v: string | undefined): string | undefined => (v !== undefined && v.trim() !== '' ? v.trim() : undefined);

function parseList(v: string | undefined): string[] | undefined {
  const s = nonEmpty(v);
  return s === undefined ? undefined : s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
}

/** `k1=v1,k2=v2` with percent-encoded values (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS). */
function parsePairs(v: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of nonEmpty(v)?.split(',') ?? []) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      out[key] = part.slice(eq + 1).trim();
    }
  }
  return out;
}

function parseNumber(v: string | undefined, name: string, warnings: string[]): number | undefined {
  const s = nonEmpty(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) {
    warnings.push(`${name}=${s} is not a non-negative number; ignored`);
    return undefined;
  }
  return n;
}

const withPath = (base: string, path: string): string => `${base.replace(/\/+$/, '')}/${path}`;

/** Reads the standard OTEL_* variables. Pure: no I/O, no globals. */
export function resolveTelemetryConfig(serviceName: string, env: TelemetryEnv): TelemetryConfig {
  const warnings: string[] = [];
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const tracesUrl = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const metricsUrl = nonEmpty(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
  const protocol = nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL);
  if (protocol !== undefined && protocol !== 'http/json') {
    warnings.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported; using http/json`);
  }

  const known = (list: string[] | undefined, allowed: string[], name: string): string[] | undefined =>
    list?.filter((x) => {
      if (allowed.includes(x)) return true;
      warnings.push(`${name}: exporter "${x}" is not supported; ignored`);
      return false;
    });
  const tracesExporters = (known(parseList(env.OTEL_TRACES_EXPORTER), ['otlp', 'console', 'none'], 'OTEL_TRACES_EXPORTER') ??
    (base || tracesUrl ? ['otlp'] : [])).filter((x) => x !== 'none');
  // `prometheus` is served natively at GET /metrics, so it needs no SDK exporter.
  const metricsExporters = (known(parseList(env.OTEL_METRICS_EXPORTER), ['otlp', 'prometheus', 'none'], 'OTEL_METRICS_EXPORTER') ??
    (base || metricsUrl ? ['otlp'] : [])).filter((x) => x === 'otlp');

  const resourceAttributes = parsePairs(env.OTEL_RESOURCE_ATTRIBUTES);
  const name = nonEmpty(env.OTEL_SERVICE_NAME) ?? resourceAttributes['service.name'] ?? serviceName;
  const sampler = nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase() ?? 'parentbased_always_on';
  return {
    disabled: nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true',
    serviceName: name,
    resourceAttributes,
    tracesExporters,
    metricsExporters,
    tracesEndpoint: tracesUrl ?? withPath(base ?? DEFAULT_OTLP_ENDPOINT, 'v1/traces'),
    metricsEndpoint: metricsUrl ?? withPath(base ?? DEFAULT_OTLP_ENDPOINT, 'v1/metrics'),
    tracesHeaders: { ...parsePairs(env.OTEL_EXPORTER_OTLP_HEADERS), ...parsePairs(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    metricsHeaders: { ...parsePairs(env.OTEL_EXPORTER_OTLP_HEADERS), ...parsePairs(env.OTEL_EXPORTER_OTLP_METRICS_HEADERS) },
    timeoutMs: parseNumber(env.OTEL_EXPORTER_OTLP_TIMEOUT, 'OTEL_EXPORTER_OTLP_TIMEOUT', warnings) ?? 10_000,
    metricExportIntervalMs: parseNumber(env.OTEL_METRIC_EXPORT_INTERVAL, 'OTEL_METRIC_EXPORT_INTERVAL', warnings) ?? 60_000,
    metricExportTimeoutMs: parseNumber(env.OTEL_METRIC_EXPORT_TIMEOUT, 'OTEL_METRIC_EXPORT_TIMEOUT', warnings) ?? 30_000,
    sampler,
    samplerArg: parseNumber(env.OTEL_TRACES_SAMPLER_ARG, 'OTEL_TRACES_SAMPLER_ARG', warnings),
    bsp: {
      scheduledDelayMillis: parseNumber(env.OTEL_BSP_SCHEDULE_DELAY, 'OTEL_BSP_SCHEDULE_DELAY', warnings),
      maxQueueSize: parseNumber(env.OTEL_BSP_MAX_QUEUE_SIZE, 'OTEL_BSP_MAX_QUEUE_SIZE', warnings),
      maxExportBatchSize: parseNumber(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', warnings),
      exportTimeoutMillis: parseNumber(env.OTEL_BSP_EXPORT_TIMEOUT, 'OTEL_BSP_EXPORT_TIMEOUT', warnings),
    },
    warnings,
  };
}

function makeSampler(name: string, arg: number | undefined, warnings: string[]): Sampler {
  const ratio = arg === undefined ? 1 : Math.min(1, arg);
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      warnings.push(`OTEL_TRACES_SAMPLER=${name} is not supported; using parentbased_always_on`);
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

const dropUndefined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

function diagLogger(log: TelemetryLogger): DiagLogger {
  const warn = (message: string, ...args: unknown[]) => log.warn({ event: 'otel.diag', message, args: args.map(String) });
  return { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} };
}

const disabledTelemetry: Telemetry = {
  tracesEnabled: false,
  metricsEnabled: false,
  forceFlush: async () => {},
  shutdown: async () => {},
};

/**
 * Sets up the OpenTelemetry SDK from OTEL_* variables and registers it globally (tracer provider, W3C
 * propagator, AsyncLocalStorage context manager, meter provider). Returns a disabled no-op handle when
 * OTEL_SDK_DISABLED=true or when no exporter is configured.
 * @example
 * const telemetry = startTelemetry({ serviceName: 'physical-ai-gateway', env: process.env });
 * // ... createMetrics(registry), start the gateway ...
 * await telemetry.shutdown();
 */
export function startTelemetry({ serviceName, env, serviceVersion, log, spanProcessors = [] }: TelemetryOptions): Telemetry {
  const config = resolveTelemetryConfig(serviceName, env);
  const useTraces = config.tracesExporters.length > 0 || spanProcessors.length > 0;
  const useMetrics = config.metricsExporters.length > 0;
  if (config.disabled || (!useTraces && !useMetrics)) {
    for (const warning of config.warnings) log?.warn({ event: 'otel.config', warning });
    return disabledTelemetry;
  }
  if (log) diag.setLogger(diagLogger(log), DiagLogLevel.WARN);

  const resource = defaultResource().merge(
    resourceFromAttributes({
      ...config.resourceAttributes,
      'service.name': config.serviceName,
      ...(serviceVersion === undefined ? {} : { 'service.version': serviceVersion }),
    }),
  );

  let tracerProvider: NodeTracerProvider | undefined;
  if (useTraces) {
    const processors: SpanProcessor[] = [...spanProcessors];
    for (const exporter of config.tracesExporters) {
      if (exporter === 'otlp') {
        const otlp = new OTLPTraceExporter({ url: config.tracesEndpoint, headers: config.tracesHeaders, timeoutMillis: config.timeoutMs });
        processors.push(new BatchSpanProcessor(otlp, dropUndefined(config.bsp)));
      } else if (exporter === 'console') {
        processors.push(new BatchSpanProcessor(new ConsoleSpanExporter(), dropUndefined(config.bsp)));
      }
    }
    tracerProvider = new NodeTracerProvider({
      resource,
      sampler: makeSampler(config.sampler, config.samplerArg, config.warnings),
      spanProcessors: processors,
    });
    tracerProvider.register(); // global tracer provider + W3C trace context/baggage propagator + AsyncLocalStorage
  }

  let meterProvider: MeterProvider | undefined;
  if (useMetrics) {
    const readers: MetricReader[] = [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: config.metricsEndpoint, headers: config.metricsHeaders, timeoutMillis: config.timeoutMs }),
        exportIntervalMillis: Math.max(config.metricExportIntervalMs, 1),
        exportTimeoutMillis: Math.min(config.metricExportTimeoutMs, Math.max(config.metricExportIntervalMs, 1)),
      }),
    ];
    meterProvider = new MeterProvider({ resource, readers });
    metrics.setGlobalMeterProvider(meterProvider);
  }
  for (const warning of config.warnings) log?.warn({ event: 'otel.config', warning });
  log?.info({
    event: 'otel.started',
    serviceName: config.serviceName,
    traces: useTraces ? config.tracesExporters : [],
    metrics: config.metricsExporters,
    tracesEndpoint: config.tracesExporters.includes('otlp') ? config.tracesEndpoint : undefined,
    metricsEndpoint: useMetrics ? config.metricsEndpoint : undefined,
  });

  let closing: Promise<void> | undefined;
  const shutdown = async (): Promise<void> => {
    const results = await Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
    if (tracerProvider) {
      trace.disable();
      propagation.disable();
      context.disable();
    }
    if (meterProvider) metrics.disable();
    diag.disable();
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new AggregateError(failed.map((r) => r.reason as unknown), 'telemetry shutdown failed');
  };
  return {
    tracesEnabled: useTraces,
    metricsEnabled: useMetrics,
    async forceFlush() {
      await Promise.all([tracerProvider?.forceFlush(), meterProvider?.forceFlush()]);
    },
    shutdown: () => (closing ??= shutdown()),
  };
}
