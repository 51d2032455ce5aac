// The benchmark harness's quick mode runs end to end (real gateway, TS and Python workers, the raw zeromq.js
// and GR00T-style references) and reports: JSON with every expected key, the markdown tables, the plots.
// Never timings: the numbers on a shared machine say nothing here.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function mtime(path: string): number | undefined {
  return existsSync(path) ? statSync(path).mtimeMs : undefined;
}

test('bench --quick runs the harness and writes the JSON report, the markdown tables and the plots', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'paig-bench-test-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const committed = join(ROOT, 'bench/results/latest.json');
  const committedBefore = mtime(committed);

  const { code, stdout, stderr } = await runBench(['--quick', '--out', out], 120_000);
  assert.equal(code, 0, `bench exited with ${code}\n${stderr}`);
  const done = JSON.parse(stdout.trim().split('\n').at(-1)!) as { event: string; outDir: string };
  assert.equal(done.event, 'bench.done');
  assert.equal(done.outDir, out);
  assert.equal(mtime(committed), committedBefore, 'quick mode must not touch the committed results');

  const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Record<string, any>;
  for (const key of ['schema', 'date', 'duration_s', 'quick', 'options', 'machine', 'method', 'payloads', 'results', 'gateway_cost', 'targets', 'cdf']) {
    assert.ok(key in report, `latest.json has '${key}'`);
  }
  assert.equal(report.quick, true);
  for (const key of ['cpu_model', 'cores', 'load_before', 'load_after', 'node', 'zeromq_js', 'libzmq_node', 'python']) {
    assert.ok(key in report.machine, `machine has '${key}'`);
  }
  for (const key of ['python', 'pyzmq', 'libzmq', 'numpy', 'msgpack']) assert.ok(key in report.machine.python, `machine.python has '${key}'`);
  assert.deepEqual(Object.keys(report.payloads).sort(), ['L', 'S']);

  const results = report.results as Array<Record<string, any>>;
  const paths = new Set(results.map((r) => r.path));
  for (const p of ['gateway-zmq-binary', 'gateway-http-msgpack', 'direct-binary', 'raw-zeromq', 'python-groot-ref']) assert.ok(paths.has(p), `results include ${p}`);
  assert.ok(results.some((r) => r.worker === 'ts') && results.some((r) => r.worker === 'py'), 'both workers measured');
  assert.ok(results.some((r) => r.inflight === 8), '8 in flight measured');
  for (const r of results) {
    for (const key of ['key', 'path', 'transport', 'worker', 'payload', 'inflight', 'latency', 'throughput_rps', 'errors', 'samples_per_round']) {
      assert.ok(key in r, `${r.key} has '${key}'`);
    }
    for (const key of ['n', 'p50_us', 'p90_us', 'p99_us', 'p999_us', 'p99_indicative', 'p999_indicative']) assert.ok(key in r.latency, `${r.key} latency has '${key}'`);
    // Every configuration got real replies (the demo chunk is checked on each one) in every round.
    assert.equal(r.failed, undefined, `${r.key} failed: ${r.failed}`);
    assert.equal(r.errors, 0, `${r.key}: ${r.first_error}`);
    assert.ok(r.latency.n > 0, `${r.key} has samples`);
    assert.equal(r.samples_per_round.length, report.options.rounds);
    assert.ok(r.latency.p50_us <= r.latency.p99_us);
  }
  assert.ok(report.gateway_cost.length > 0, 'gateway cost computed');
  const targetIds = (report.targets as Array<{ id: string }>).map((x) => x.id);
  for (const id of ['python-vs-groot-ref', 'gateway-cost-ts', 'gateway-cost-py', 'zmq-vs-http', 'zmq-vs-json', 'throughput-s-8']) assert.ok(targetIds.includes(id), `target ${id} reported`);
  assert.ok(Object.keys(report.cdf.L ?? {}).length > 0, 'CDF points at L');

  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  assert.match(md, /^# Benchmark results/m);
  assert.match(md, /\| path \| transport \| worker \| S \| L \|/);
  assert.match(md, /\| gateway ZMQ door, binary frames \| tcp \| TS worker \| [\d,.]+ \/ ~?[\d,.]+ \|/);
  assert.match(md, /## Gateway cost/);
  assert.match(md, /## Targets/);
  for (const svg of ['latency-by-payload.svg', 'latency-cdf-L.svg']) {
    const text = readFileSync(join(out, svg), 'utf8');
    assert.match(text, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(text, /<(polyline|path) /);
    assert.match(text, /<\/svg>\s*$/);
  }
});

test('bench rejects unknown flags and values, naming them', async () => {
  const { code, stderr } = await runBench(['--payloads', 'S,XXL', '--paths', 'nope'], 60_000);
  assert.equal(code, 2);
  assert.match(stderr, /unknown payload XXL/);
  assert.match(stderr, /unknown path nope/);
});
