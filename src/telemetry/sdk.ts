// The one place the OpenTelemetry SDK is set up: traces (batch processor → OTLP/HTTP JSON) and metrics
// (periodic reader → OTLP/HTTP JSON), configured from the standard OTEL_* variables that the entry point
// passes in. Off unless an OTLP endpoint or an exporter is named. Only entry points import this file (src/cli,
// the embedded worker's src/worker/main.ts, benchmarks). Metrics over OTLP are the gateway's Prometheus
// registry, read at each export by a MetricProducer (telemetry.exportMetrics(registry)): nothing per request.
import { context, diag, DiagLogLevel, propagation, trace, ValueType } from '@opentelemetry/api';
import type { Attributes, DiagLogger, HrTime } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { CollectionResult, DataPoint, MetricData, MetricProducer, MetricReader } from '@opentelemetry/sdk-metrics';
import { INSTRUMENTATION_NAME } from './metrics.js';
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
  /** Exports the metrics of this registry over OTLP at each export (when OTLP metrics are on; else a no-op). */
  exportMetrics(registry: PrometheusRegistryLike): void;
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
  exportMetrics: () => {},
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
    // Global tracer provider + W3C trace context/baggage propagator (+ the AsyncLocalStorage context manager).
    tracerProvider.register();
  }

  let meterProvider: MeterProvider | undefined;
  const registries: PrometheusRegistryLike[] = [];
  if (useMetrics) {
    const readers: MetricReader[] = [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: config.metricsEndpoint, headers: config.metricsHeaders, timeoutMillis: config.timeoutMs }),
        exportIntervalMillis: Math.max(config.metricExportIntervalMs, 1),
        exportTimeoutMillis: Math.min(config.metricExportTimeoutMs, Math.max(config.metricExportIntervalMs, 1)),
        metricProducers: [registryMetricProducer(registries, resource)],
      }),
    ];
    // Not registered globally: the gateway's metrics reach OTLP through the MetricProducer, and a global provider
    // would only switch on the tracing SDK's own per-span metrics (otel.sdk.span.*), a cost on every span.
    meterProvider = new MeterProvider({ resource, readers });
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
    diag.disable();
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new AggregateError(failed.map((r) => r.reason as unknown), 'telemetry shutdown failed');
  };
  return {
    tracesEnabled: useTraces,
    metricsEnabled: useMetrics,
    exportMetrics(registry) {
      if (useMetrics && !registries.includes(registry)) registries.push(registry);
    },
    async forceFlush() {
      await Promise.all([tracerProvider?.forceFlush(), meterProvider?.forceFlush()]);
    },
    shutdown: () => (closing ??= shutdown()),
  };
}

// ---------------------------------------------------------------- Prometheus registry → OTLP metrics

/** What the OTLP bridge reads from a prom-client Registry: its JSON form. */
export interface PrometheusRegistryLike {
  getMetricsAsJSON(): Promise<PrometheusMetricJson[]>;
}

export interface PrometheusMetricJson {
  name: string;
  help: string;
  /** 'counter' | 'gauge' | 'histogram' | 'summary' at run time (prom-client's typings say a numeric enum). */
  type: unknown;
  values: Array<{ value: number; labels: Partial<Record<string, string | number>>; metricName?: string }>;
}

/** OTel names drop the Prometheus `_total` suffix of counters (an OTLP→Prometheus exporter adds it back). */
function otlpName(name: string, type: string): string {
  return type === 'counter' && name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
}

function unitOf(name: string): string {
  const base = name.replace(/_total$/, '');
  if (base.endsWith('_seconds')) return 's';
  if (base.endsWith('_bytes')) return 'By';
  if (base.endsWith('_ratio')) return '1';
  return '';
}

function attributesOf(labels: Partial<Record<string, string | number>>, skip?: string): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (k !== skip && v !== undefined) out[k] = v;
  return out;
}

/** One Prometheus metric (JSON form) as OTLP metric data: counters as monotonic cumulative sums, gauges, histograms. */
export function toOtlpMetric(metric: PrometheusMetricJson, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const type = typeof metric.type === 'number' ? (['counter', 'gauge', 'histogram', 'summary'][metric.type] ?? '') : String(metric.type);
  const descriptor = { name: otlpName(metric.name, type), description: metric.help, unit: unitOf(metric.name), valueType: ValueType.DOUBLE };
  const temporality = AggregationTemporality.CUMULATIVE;
  const points = (): Array<DataPoint<number>> => metric.values.map((v) => ({ startTime, endTime, attributes: attributesOf(v.labels), value: v.value }));
  if (type === 'counter') return { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: points() };
  if (type === 'gauge') return { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.GAUGE, dataPoints: points() };
  if (type !== 'histogram') return undefined;
  // Prometheus buckets are cumulative `le` series plus _sum and _count; OTLP wants per-bucket counts.
  const series = new Map<string, { attributes: Attributes; bounds: Array<[number, number]>; sum: number; count: number }>();
  for (const v of metric.values) {
    const attributes = attributesOf(v.labels, 'le');
    const key = JSON.stringify(attributes);
    let s = series.get(key);
    if (!s) series.set(key, (s = { attributes, bounds: [], sum: 0, count: 0 }));
    const suffix = v.metricName?.slice(metric.name.length);
    if (suffix === '_sum') s.sum = v.value;
    else if (suffix === '_count') s.count = v.value;
    else if (suffix === '_bucket' && v.labels.le !== '+Inf') s.bounds.push([Number(v.labels.le), v.value]);
  }
  const dataPoints = [...series.values()].map((s) => {
    s.bounds.sort((a, b) => a[0] - b[0]);
    const counts: number[] = [];
    let previous = 0;
    for (const [, cumulative] of s.bounds) {
      counts.push(cumulative - previous);
      previous = cumulative;
    }
    counts.push(s.count - previous); // +Inf
    return { startTime, endTime, attributes: s.attributes, value: { buckets: { boundaries: s.bounds.map((b) => b[0]), counts }, sum: s.sum, count: s.count } };
  });
  return { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints };
}

/** A MetricProducer that reads the registries at each collection (cumulative since the producer was made). */
function registryMetricProducer(registries: readonly PrometheusRegistryLike[], resource: Resource): MetricProducer {
  const startTime = millisToHrTime(Date.now());
  return {
    async collect(): Promise<CollectionResult> {
      const endTime = millisToHrTime(Date.now());
      const errors: unknown[] = [];
      const data: MetricData[] = [];
      for (const registry of registries) {
        try {
          for (const metric of await registry.getMetricsAsJSON()) {
            const m = toOtlpMetric(metric, startTime, endTime);
            if (m && m.dataPoints.length > 0) data.push(m);
          }
        } catch (err) {
          errors.push(err);
        }
      }
      return { resourceMetrics: { resource, scopeMetrics: [{ scope: { name: INSTRUMENTATION_NAME }, metrics: data }] }, errors };
    },
  };
}
