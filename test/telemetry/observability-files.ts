// Reads observability/: every PromQL expression of the Grafana dashboard and of the alert rules, ready to run
// against a test Prometheus (dashboard variables replaced by match-all values).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const OBSERVABILITY_DIR = fileURLToPath(new URL('../../observability/', import.meta.url));
export const DASHBOARD_FILE = `${OBSERVABILITY_DIR}grafana/dashboards/physical-ai-gateway.json`;
export const ALERTS_FILE = `${OBSERVABILITY_DIR}prometheus/alerts.yml`;
export const PROMETHEUS_CONFIG_FILE = `${OBSERVABILITY_DIR}prometheus/prometheus.yml`;

export interface DashboardTarget {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
  legendFormat?: string;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: DashboardTarget[];
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating: { list: Array<{ name: string; query: { query: string } | string; datasource?: { uid?: string } }> };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Grafana's variables, replaced as "All" would be with a 1m rate window. */
export function substituteVariables(expr: string, rangeWindow = '1m'): string {
  return expr
    .replaceAll('$__rate_interval', rangeWindow)
    .replaceAll('$__interval', rangeWindow)
    .replaceAll('$__range', rangeWindow)
    .replace(/\$\{?(framework|transport)\}?/g, '.*');
}

export interface NamedExpr {
  /** Where it comes from: panel title + refId, or alert name. */
  source: string;
  expr: string;
}

export function dashboardExpressions(dashboard = loadDashboard()): NamedExpr[] {
  const out: NamedExpr[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) out.push({ source: `panel "${panel.title}" ${target.refId}`, expr: substituteVariables(target.expr) });
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
    // label_values(metric{...}, label) is answered by the series API; the series selector must match.
    if (m) out.push({ source: `variable ${v.name}`, expr: substituteVariables(m[1]!) });
  }
  return out;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadAlertRules(): AlertRule[] {
  const doc = parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

/**
 * An alert's expression without its final threshold (`<expr> > 0.25` → `<expr>`), so the test can check the
 * measured signal exists whatever its value. Only a comparison with a number literal at the very end, outside
 * parentheses, is cut.
 */
export function alertSignal(expr: string): string {
  const trimmed = expr.trim();
  const m = /^(.*?)\s*(==|!=|>=|<=|>|<)\s*(-?[0-9.]+(?:e[+-]?[0-9]+)?)$/s.exec(trimmed);
  if (!m) return trimmed;
  const left = m[1]!;
  // Cut only at depth 0: the comparison must not sit inside parentheses.
  let depth = 0;
  for (const ch of left) depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
  return depth === 0 ? left : trimmed;
}

/** The queries of the dashboard and the alert signals, each with where it comes from. */
export function allExpressions(): NamedExpr[] {
  return [
    ...dashboardExpressions(),
    ...loadAlertRules().flatMap((r) => [
      { source: `alert ${r.alert} (signal)`, expr: alertSignal(r.expr) },
    ]),
  ];
}

interface Queryable {
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

/**
 * Runs every expression; an expression fails when it errors or returns no sample with a finite value.
 * Retries the failing ones until `timeoutMs` (rates need two scrapes), then returns what still fails.
 */
export async function expressionsWithoutData(prom: Queryable, exprs: NamedExpr[], timeoutMs = 30_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let pending = exprs;
  for (;;) {
    const failures: Array<{ e: NamedExpr; why: string }> = [];
    for (const e of pending) {
      try {
        const result = await prom.query(e.expr);
        if (!result.some((s) => Number.isFinite(Number(s.value[1])))) {
          failures.push({ e, why: result.length === 0 ? 'no data' : `only non-finite values (${result.map((s) => s.value[1]).join(',')})` });
        }
      } catch (err) {
        failures.push({ e, why: (err as Error).message });
      }
    }
    if (failures.length === 0) return [];
    if (Date.now() > until) return failures.map((f) => `${f.e.source}: ${f.why}\n    ${f.e.expr}`);
    pending = failures.map((f) => f.e);
    await new Promise((r) => setTimeout(r, 500));
  }
}
