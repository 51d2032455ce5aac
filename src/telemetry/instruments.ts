// Hot-path instruments for the gateway's per-request metrics. prom-client validates and hashes the label set on
// every observe()/inc() (about 1 µs per histogram observation); these keep one plain record per label set,
// resolved once, and render through the same prom-client Registry (it formats and escapes the text).
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string>;
type MetricKind = 'counter' | 'gauge' | 'histogram';

interface Value {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** What prom-client's Registry reads from a metric (get, reset, name, help, type, aggregator). */
abstract class Instrument<S extends { labels: Labels }> {
  protected readonly series = new Map<string, S>();
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricKind,
    protected readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: Labels): S;

  /** The record of one label set (created on first use); keep it and update it directly. */
  child(labels: Labels): S {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const clean: Labels = {};
      for (const n of this.labelNames) clean[n] = labels[n] ?? '';
      s = this.create(clean);
      this.series.set(key, s);
    }
    return s;
  }

  protected abstract values(): Value[];

  get(): Promise<{ name: string; help: string; type: MetricKind; aggregator: string; values: Value[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }

  reset(): void {
    this.series.clear();
  }
}

export interface ScalarSeries {
  labels: Labels;
  value: number;
}

/** One number per label set: counters and gauges. */
abstract class ScalarInstrument extends Instrument<ScalarSeries> {
  protected create(labels: Labels): ScalarSeries {
    return { labels, value: 0 };
  }
  protected values(): Value[] {
    return [...this.series.values()].map((s) => ({ value: s.value, labels: s.labels }));
  }
}

/** A monotonically increasing counter; `child(labels).value += n` on the hot path, or inc(). */
export class FastCounter extends ScalarInstrument {
  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, 'counter', labelNames, registry);
  }
  inc(labels: Labels, by = 1): void {
    if (by >= 0) this.child(labels).value += by;
  }
}

/** A gauge: set or add to `child(labels).value`. */
export class FastGauge extends ScalarInstrument {
  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, 'gauge', labelNames, registry);
  }
}

export interface HistogramSeries {
  labels: Labels;
  /** Per-bucket (non-cumulative) counts; the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with fixed upper bounds (seconds); observe() is a short search and three additions. */
export class FastHistogram extends Instrument<HistogramSeries> {
  readonly #bounds: Float64Array;

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[], registry: Registry) {
    super(name, help, 'histogram', labelNames, registry);
    this.#bounds = Float64Array.from(bounds);
  }
  protected create(labels: Labels): HistogramSeries {
    return { labels, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
  }
  /** Adds `value` to a series (NaN and negative values are dropped). */
  observe(series: HistogramSeries, value: number): void {
    if (!(value >= 0)) return;
    const bounds = this.#bounds;
    let lo = 0;
    let hi = bounds.length; // index of the first bound >= value, or bounds.length for +Inf
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bounds[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    series.counts[lo]! += 1;
    series.sum += value;
    series.count += 1;
  }
  protected values(): Value[] {
    const out: Value[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += s.counts[i]!;
        out.push({ value: cumulative, labels: { le: String(this.#bounds[i]), ...s.labels }, metricName: `${this.name}_bucket` });
      }
      out.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: `${this.name}_bucket` });
      out.push({ value: s.sum, labels: s.labels, metricName: `${this.name}_sum` });
      out.push({ value: s.count, labels: s.labels, metricName: `${this.name}_count` });
    }
    return out;
  }
}
