// Latency statistics: percentiles by linear interpolation between closest ranks, over samples in µs.

export interface LatencySummary {
  /** Samples kept (warm-up excluded). */
  n: number;
  mean_us: number;
  min_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  /** p99 rests on fewer than 1,000 samples (fewer than 10 above it): read it as indicative. */
  p99_indicative: boolean;
  /** p99.9 rests on fewer than 10,000 samples: read it as indicative. */
  p999_indicative: boolean;
}

/** The q-quantile (0..1) of an ascending array, interpolating linearly between closest ranks. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarise(samplesUs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samplesUs).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    n,
    mean_us: r(n ? sum / n : Number.NaN),
    min_us: r(n ? sorted[0]! : Number.NaN),
    p50_us: r(quantile(sorted, 0.5)),
    p90_us: r(quantile(sorted, 0.9)),
    p99_us: r(quantile(sorted, 0.99)),
    p999_us: r(quantile(sorted, 0.999)),
    max_us: r(n ? sorted[n - 1]! : Number.NaN),
    p99_indicative: n < 1_000,
    p999_indicative: n < 10_000,
  };
}

/** Points of the empirical CDF, thinned to at most `maxPoints` (always keeping the tail). */
export function cdfPoints(samplesUs: readonly number[], maxPoints = 400): Array<[number, number]> {
  const sorted = Float64Array.from(samplesUs).sort();
  const n = sorted.length;
  if (n === 0) return [];
  const out: Array<[number, number]> = [];
  const step = Math.max(1, Math.floor(n / maxPoints));
  for (let i = 0; i < n; i += step) out.push([sorted[i]!, (i + 1) / n]);
  // Keep the last 1% densely: that is where p99/p99.9 live.
  const tailStart = Math.max(0, Math.floor(n * 0.99));
  for (let i = tailStart; i < n; i++) if (i % step !== 0) out.push([sorted[i]!, (i + 1) / n]);
  out.sort((a, b) => a[1] - b[1]);
  return out;
}
