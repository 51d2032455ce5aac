// observability/ is valid: promtool accepts the scrape config and the rules; the dashboard JSON has the structure
// Grafana needs and points at the provisioned datasource; compose and collector configs reference what exists.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { METRIC_NAMES } from '../../src/telemetry/metrics.js';
import {
  ALERTS_FILE,
  alertSignal,
  dashboardExpressions,
  loadAlertRules,
  loadDashboard,
  OBSERVABILITY_DIR,
  PROMETHEUS_CONFIG_FILE,
} from './observability-files.js';

const run = promisify(execFile);
const yamlFile = <T>(path: string): T => parse(readFileSync(`${OBSERVABILITY_DIR}${path}`, 'utf8')) as T;

test('promtool check config and check rules pass', async () => {
  const config = await run('promtool', ['check', 'config', PROMETHEUS_CONFIG_FILE]);
  assert.match(config.stdout + config.stderr, /SUCCESS/);
  const rules = await run('promtool', ['check', 'rules', ALERTS_FILE]);
  assert.match(rules.stdout + rules.stderr, /SUCCESS: \d+ rules found/);
  // And a broken rule file fails, so the check can fail.
  await assert.rejects(run('promtool', ['check', 'rules', PROMETHEUS_CONFIG_FILE]));
});

test('scrape config targets the gateway at 127.0.0.1:8080/metrics', () => {
  const config = yamlFile<{ scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>; rule_files: string[] }>(
    'prometheus/prometheus.yml',
  );
  const job = config.scrape_configs.find((j) => j.job_name === 'physical-ai-gateway');
  assert.ok(job);
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  assert.deepEqual(job.static_configs[0]?.targets, ['127.0.0.1:8080']);
  assert.deepEqual(config.rule_files, ['alerts.yml']);
});

test('alert rules cover p99 latency, error rate, worker down and container OOM', () => {
  const rules = loadAlertRules();
  const byName = new Map(rules.map((r) => [r.alert, r]));
  for (const name of ['GatewayHighP99Latency', 'GatewayHighErrorRate', 'GatewayWorkerDown', 'GatewayContainerOOMKilled']) {
    const rule = byName.get(name);
    assert.ok(rule, `alert ${name}`);
    assert.ok(rule.labels?.severity, `${name} has a severity`);
    assert.ok(rule.annotations?.summary, `${name} has a summary`);
  }
  assert.match(byName.get('GatewayHighP99Latency')!.expr, /histogram_quantile\(0\.99/);
  assert.equal(alertSignal('a > 0.25'), 'a');
  assert.equal(alertSignal('x / (y > 0) > 0.9'), 'x / (y > 0)');
  assert.equal(alertSignal('sum(x)'), 'sum(x)');
});

test('dashboard structure: panels with targets, datasource uid from provisioning, known metrics only', () => {
  const dashboard = loadDashboard();
  const ds = yamlFile<{ datasources: Array<{ uid: string; type: string; url: string }> }>('grafana/provisioning/datasources/prometheus.yaml');
  const uid = ds.datasources[0]?.uid;
  assert.equal(ds.datasources[0]?.type, 'prometheus');
  assert.ok(uid);
  assert.equal(dashboard.uid, 'physical-ai-gateway');
  const ids = new Set<number>();
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 10, 'enough panels');
  for (const panel of dashboard.panels) {
    assert.ok(!ids.has(panel.id), `panel id ${panel.id} unique`);
    ids.add(panel.id);
    assert.ok(panel.gridPos && panel.gridPos.w > 0 && panel.gridPos.w <= 24, `${panel.title} has a gridPos`);
  }
  for (const panel of panels) {
    assert.ok(panel.title && panel.description, `panel ${panel.id} has a title and description`);
    assert.equal(panel.datasource?.uid, uid, `${panel.title}: datasource uid`);
    assert.ok(panel.targets && panel.targets.length > 0, `${panel.title} has targets`);
    const refIds = new Set(panel.targets.map((t) => t.refId));
    assert.equal(refIds.size, panel.targets.length, `${panel.title}: refIds unique`);
    for (const target of panel.targets) {
      assert.equal(target.datasource?.uid, uid, `${panel.title} ${target.refId}: datasource uid`);
      assert.ok(target.expr.trim().length > 0, `${panel.title} ${target.refId}: expr`);
    }
  }
  for (const v of dashboard.templating.list) assert.equal(v.datasource?.uid, uid, `variable ${v.name}: datasource uid`);
  // Every gateway_* name used in a query or an alert is a metric we export (histograms via _bucket).
  const known = new Set<string>(METRIC_NAMES.flatMap((n) => [n, `${n}_bucket`, `${n}_sum`, `${n}_count`]));
  const exprs = [...dashboardExpressions(dashboard).map((e) => e.expr), ...loadAlertRules().map((r) => r.expr)];
  for (const expr of exprs) for (const name of expr.match(/gateway_[a-z_]+/g) ?? []) assert.ok(known.has(name), `${name} is exported`);
  // The dashboard answers the questions.
  const titles = panels.map((p) => p.title.toLowerCase()).join('\n');
  for (const word of ['latency', 'throughput', 'errors', 'in flight', 'worker health', 'late replies', 'cpu', 'memory']) {
    assert.ok(titles.includes(word), `a panel about ${word}`);
  }
});

test('grafana provisioning, compose and collector reference files and ports that exist', () => {
  const provider = yamlFile<{ providers: Array<{ options: { path: string } }> }>('grafana/provisioning/dashboards/physical-ai-gateway.yaml');
  const compose = yamlFile<{ services: Record<string, { image: string; volumes?: string[]; network_mode?: string; command?: string[] }> }>('compose.yaml');
  assert.deepEqual(Object.keys(compose.services).sort(), ['grafana', 'otel-collector', 'prometheus']);
  for (const service of Object.values(compose.services)) {
    assert.equal(service.network_mode, 'host');
    for (const volume of service.volumes ?? []) {
      const [src] = volume.split(':');
      if (src!.startsWith('./')) assert.ok(existsSync(`${OBSERVABILITY_DIR}${src!.slice(2)}`), `compose mounts ${src}, which exists`);
    }
  }
  const grafanaMounts = compose.services.grafana!.volumes ?? [];
  assert.ok(grafanaMounts.some((v) => v.split(':')[1] === provider.providers[0]!.options.path), 'dashboards mounted where the provider reads');
  assert.ok(compose.services.prometheus!.command?.includes('--web.listen-address=127.0.0.1:9090'));

  type Pipelines = Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }>;
  const collector = yamlFile<{
    receivers: Record<string, { protocols: { http: { endpoint: string } } }>;
    processors: Record<string, unknown>;
    exporters: Record<string, unknown>;
    service: { pipelines: Pipelines };
  }>('otel-collector.yaml');
  assert.equal(collector.receivers.otlp?.protocols.http.endpoint, '127.0.0.1:4318');
  for (const [name, p] of Object.entries(collector.service.pipelines)) {
    for (const r of p.receivers) assert.ok(r in collector.receivers, `${name}: receiver ${r}`);
    for (const r of p.processors ?? []) assert.ok(r in collector.processors, `${name}: processor ${r}`);
    for (const r of p.exporters) assert.ok(r in collector.exporters, `${name}: exporter ${r}`);
  }
  assert.ok(collector.service.pipelines.traces && collector.service.pipelines.metrics);
});
