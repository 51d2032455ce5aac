// Two plots as plain SVG text (no plotting dependency): p50 latency by payload per path (log scale, a bar up
// to p99), and the latency CDF of one payload (log-scale x). Both read only the report, so they can be redrawn
// from latest.json.
import type { Report, ResultEntry } from './report.js';

const W = 1240;
const H = 560;
const M = { left: 80, right: 420, top: 50, bottom: 60 };
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#ad494a', '#637939', '#843c39', '#5254a3', '#e7969c'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= min && v <= max) ticks.push(v);
    }
  }
  return ticks;
}

function fmtUs(v: number): string {
  if (v >= 1_000_000) return `${v / 1_000_000} s`;
  if (v >= 1_000) return `${v / 1_000} ms`;
  return `${v} µs`;
}

function seriesLabel(e: ResultEntry): string {
  const worker = e.worker === 'ts' ? ', TS worker' : e.worker === 'py' ? ', Python worker' : '';
  return `${e.path_label.replace(' (reference)', ' (ref)')}${worker} [${e.transport}]`;
}

function frame(title: string, body: string[], legend: Array<{ label: string; color: string; dash: boolean }>, subtitle: string): string {
  const items = legend.map((l, i) => {
    const y = M.top + 10 + i * 20;
    return `<line x1="${W - M.right + 20}" y1="${y}" x2="${W - M.right + 46}" y2="${y}" stroke="${l.color}" stroke-width="2.5"${l.dash ? ' stroke-dasharray="6 3"' : ''}/><text x="${W - M.right + 52}" y="${y + 4}" font-size="11">${esc(l.label)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="${M.left}" y="41" font-size="11" fill="#555">${esc(subtitle)}</text>`,
    ...body,
    ...items,
    '</svg>',
    '',
  ].join('\n');
}

function subtitleOf(report: Report): string {
  const m = report.machine;
  return `${report.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpu_model} · ${m.cores} cores · load ${m.load_before[0]}→${m.load_after?.[0] ?? '?'}${report.quick ? ' · QUICK MODE' : ''}`;
}

/** p50 by payload for each path at 1 in flight (log y), with a thin bar from p50 to p99. */
export function latencyByPayloadSvg(report: Report): string {
  const payloads = Object.keys(report.payloads);
  const series = new Map<string, ResultEntry[]>();
  for (const e of report.results) {
    if (e.inflight !== 1 || e.latency.n === 0) continue;
    const k = `${e.path}/${e.transport}/${e.worker}/${e.target ?? ''}`;
    (series.get(k) ?? series.set(k, []).get(k)!).push(e);
  }
  const all = [...series.values()].flat();
  const body: string[] = [];
  const legend: Array<{ label: string; color: string; dash: boolean }> = [];
  if (all.length === 0) return frame('Latency by payload', ['<text x="100" y="200">no data</text>'], [], subtitleOf(report));
  const min = Math.min(...all.map((e) => e.latency.p50_us)) * 0.8;
  const max = Math.max(...all.map((e) => e.latency.p99_us)) * 1.2;
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = H - M.bottom;
  const y1 = M.top;
  const lx = (i: number) => x0 + ((i + 0.5) * (x1 - x0)) / payloads.length;
  const ly = (v: number) => y0 - ((Math.log10(v) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * (y0 - y1);
  body.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`);
  for (const t of logTicks(min, max)) {
    const y = ly(t).toFixed(1);
    body.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e5e5e5"/><text x="${x0 - 6}" y="${(ly(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmtUs(t)}</text>`);
  }
  payloads.forEach((p, i) => body.push(`<text x="${lx(i)}" y="${y0 + 20}" font-size="12" text-anchor="middle">${p} (${Math.round(report.payloads[p]!.request_tensor_bytes / 1000).toLocaleString('en-US')} kB)</text>`));
  body.push(`<text x="${(x0 + x1) / 2}" y="${H - 16}" font-size="12" text-anchor="middle">payload (request tensor bytes)</text>`);
  body.push(`<text transform="translate(18 ${(y0 + y1) / 2}) rotate(-90)" font-size="12" text-anchor="middle">round trip, 1 in flight (log scale)</text>`);
  let i = 0;
  const n = series.size;
  for (const list of series.values()) {
    const color = PALETTE[i % PALETTE.length]!;
    const dash = list[0]!.worker === 'py';
    const off = (i - (n - 1) / 2) * Math.min(4, 60 / n);
    const pts = payloads.map((p, pi) => {
      const e = list.find((x) => x.payload === p);
      return e ? { x: lx(pi) + off, e } : undefined;
    }).filter((v): v is { x: number; e: ResultEntry } => v !== undefined);
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ' stroke-dasharray="6 3"' : ''} points="${pts.map((q) => `${q.x.toFixed(1)},${ly(q.e.latency.p50_us).toFixed(1)}`).join(' ')}"/>`);
    for (const q of pts) {
      body.push(`<line x1="${q.x.toFixed(1)}" y1="${ly(q.e.latency.p50_us).toFixed(1)}" x2="${q.x.toFixed(1)}" y2="${ly(q.e.latency.p99_us).toFixed(1)}" stroke="${color}" stroke-width="1" opacity="0.6"/>`);
      body.push(`<circle cx="${q.x.toFixed(1)}" cy="${ly(q.e.latency.p50_us).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${seriesLabel(q.e)} ${q.e.payload}: p50 ${q.e.latency.p50_us} µs, p99 ${q.e.latency.p99_us} µs`)}</title></circle>`);
    }
    legend.push({ label: seriesLabel(list[0]!), color, dash });
    i++;
  }
  return frame('Round-trip latency by payload (p50, bar to p99)', body, legend, subtitleOf(report));
}

/**
 * Empirical CDF of the round trip at `payload`, 1 in flight, one line per configuration (log x). JSON paths
 * are left out (100× slower, they would squeeze every other curve into a corner); the tables have them.
 */
export function cdfSvg(report: Report, payload: string): string {
  const curves = report.cdf[payload] ?? {};
  const byKey = new Map(report.results.map((e) => [e.key, e]));
  const keys = Object.keys(curves).filter((k) => (curves[k] ?? []).length > 0 && byKey.get(k)?.codec !== 'json');
  if (keys.length === 0) return frame(`Latency CDF at ${payload}`, ['<text x="100" y="200">no data</text>'], [], subtitleOf(report));
  const values = keys.flatMap((k) => curves[k]!.map(([v]) => v));
  const min = Math.min(...values) * 0.9;
  const max = Math.max(...values) * 1.1;
  const x0 = M.left;
  const x1 = W - M.right;
  const y0 = H - M.bottom;
  const y1 = M.top;
  const lx = (v: number) => x0 + ((Math.log10(v) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) * (x1 - x0);
  const ly = (f: number) => y0 - f * (y0 - y1);
  const body: string[] = [];
  body.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`);
  for (const t of logTicks(min, max)) {
    const x = lx(t).toFixed(1);
    body.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#eee"/><text x="${x}" y="${y0 + 16}" font-size="11" text-anchor="middle">${fmtUs(t)}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 1]) body.push(`<line x1="${x0}" y1="${ly(f)}" x2="${x1}" y2="${ly(f)}" stroke="#eee"/><text x="${x0 - 6}" y="${ly(f) + 4}" font-size="11" text-anchor="end">${f}</text>`);
  body.push(`<text x="${(x0 + x1) / 2}" y="${H - 16}" font-size="12" text-anchor="middle">round trip (log scale)</text>`);
  body.push(`<text transform="translate(18 ${(y0 + y1) / 2}) rotate(-90)" font-size="12" text-anchor="middle">fraction of requests ≤ x</text>`);
  const legend: Array<{ label: string; color: string; dash: boolean }> = [];
  keys.forEach((k, i) => {
    const e = byKey.get(k);
    const color = PALETTE[i % PALETTE.length]!;
    const dash = e?.worker === 'py';
    const pts = curves[k]!;
    // Step function: each point is (latency, fraction ≤ latency).
    const d = pts.map(([v, f], j) => `${j === 0 ? 'M' : 'L'}${lx(v).toFixed(1)},${ly(j === 0 ? 0 : pts[j - 1]![1]).toFixed(1)} L${lx(v).toFixed(1)},${ly(f).toFixed(1)}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${dash ? ' stroke-dasharray="6 3"' : ''}/>`);
    legend.push({ label: e ? seriesLabel(e) : k, color, dash });
  });
  return frame(`Latency CDF at ${payload}, 1 request in flight (JSON paths omitted)`, body, legend, subtitleOf(report));
}
