// The compose files with Debian's docker-compose on the running engine: `config` of each file, then the real stack's
// gateway (docker/compose.yaml: its config mounted, the PAIG_* variables it reads) with the demo worker from the
// offline image, one inference through the composed gateway, and `down`. The gateway runs on the node runtime image
// that scripts/build-test-images.sh imports from host files, with this checkout mounted (the product's gateway image
// starts FROM node:20, which needs a registry). Prometheus, Grafana and the OTel collector are in the `observability`
// profile, which this test does not start (their images cannot be pulled here). Unique project name, host network,
// 127.0.0.1 only.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ensureBuilt, ROOT } from '../support/build.js';
import { ensureDockerAndImage, eventually, freePort, RUN_ID, TEST_IMAGE } from '../support/docker.js';

const run = promisify(execFile);
const NODE_IMAGE = 'physical-ai-gateway/node-runtime:local';
const COMPOSE_FILES = ['docker/compose.yaml', 'observability/compose.yaml'];

/** Fails (never skips) without docker-compose: a skip would let CI pass without the compose files being checked. */
function needCompose(): void {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
  } catch (err) {
    assert.fail(`docker-compose is not installed (scripts/test.sh installs it): ${String(err)}`);
  }
}

const compose = (args: string[], env: Record<string, string> = {}) => run('docker-compose', args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 180_000 });

test('each compose file passes `docker-compose config`; the stack lists the gateway, the workers and the monitoring', async () => {
  needCompose();
  for (const file of COMPOSE_FILES) await compose(['-f', file, 'config', '-q']);
  const { stdout } = await compose(['-f', 'docker/compose.yaml', '--profile', 'all', '--profile', 'demo', '--profile', 'observability', 'config', '--services']);
  assert.deepEqual(stdout.trim().split('\n').sort(), ['demo', 'gateway', 'grafana', 'groot', 'lerobot', 'otel-collector', 'pi0', 'prometheus']);
  // The gateway gets the variables src/config.ts reads (it used to get PAG_* ones nothing read) and its config file.
  const { stdout: resolved } = await compose(['-f', 'docker/compose.yaml', 'config']);
  for (const name of ['PAIG_CONFIG', 'PAIG_HTTP_HOST', 'PAIG_HTTP_PORT', 'PAIG_ZMQ_ENDPOINT']) assert.match(resolved, new RegExp(`${name}: `));
  assert.doesNotMatch(resolved, /PAG_/);
  assert.match(resolved, /gateway\.yaml:\/etc\/physical-ai-gateway\/gateway\.yaml:ro/);
});

test('compose up: the gateway with its mounted config and the demo worker answer one inference; down removes them', async (t) => {
  needCompose();
  ensureDockerAndImage();
  await ensureBuilt();
  const [httpPort, zmqPort, workerPort] = [await freePort(), await freePort(), await freePort()];
  const dir = await mkdtemp(join(tmpdir(), 'paig-compose-'));
  const project = `paig-compose-${RUN_ID}`.replace(/[^a-z0-9-]/g, '');
  const root = await realpath(ROOT);
  const nodeModules = await realpath(join(ROOT, 'node_modules'));
  // The config the gateway reads: only the demo framework, at this run's worker port.
  await writeFile(join(dir, 'gateway.yaml'), `defaultFramework: demo\nframeworks:\n  demo: { endpoints: ["tcp://127.0.0.1:${workerPort}"] }\n`);
  // The test's only change to the stack: the gateway runs this checkout's dist/ on the offline node runtime.
  await writeFile(
    join(dir, 'offline.yaml'),
    [
      'services:',
      '  gateway:',
      `    working_dir: ${root}`,
      `    command: ["node", "--initial-old-space-size=128", "${root}/dist/cli/main.js", "serve"]`,
      '    volumes:',
      `      - ${root}:${root}:ro`,
      `      - ${nodeModules}:${nodeModules}:ro`,
      '    labels:',
      `      physical-ai-gateway.test-run: "${RUN_ID}"`,
      '  demo:',
      '    labels:',
      `      physical-ai-gateway.test-run: "${RUN_ID}"`,
      '',
    ].join('\n'),
  );
  const env = {
    PAIG_GATEWAY_IMAGE: NODE_IMAGE,
    PAIG_WORKER_IMAGE: TEST_IMAGE,
    PAIG_GATEWAY_CONFIG: join(dir, 'gateway.yaml'),
    PAIG_HTTP_PORT: String(httpPort),
    PAIG_ZMQ_ENDPOINT: `tcp://127.0.0.1:${zmqPort}`,
    PAIG_DEMO_WORKER_ENDPOINT: `tcp://127.0.0.1:${workerPort}`,
    PAIG_LOG_LEVEL: 'warn',
  };
  const files = ['-p', project, '-f', 'docker/compose.yaml', '-f', join(dir, 'offline.yaml')];
  t.after(async () => {
    try {
      const { stdout, stderr } = await compose([...files, '--profile', 'demo', 'down', '--remove-orphans', '-t', '5'], env);
      t.diagnostic(`down: ${(stdout + stderr).trim().split('\n').join(' | ')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  await compose([...files, '--profile', 'demo', 'up', '-d', '--no-build', 'gateway', 'demo'], env);

  const base = `http://127.0.0.1:${httpPort}`;
  // The gateway answers once it has started; the demo framework is ready once the worker container has loaded.
  await eventually(
    async () => {
      const res = await fetch(`${base}/v1/frameworks`).catch(() => undefined);
      if (!res?.ok) return undefined;
      const body = (await res.json()) as { frameworks: Array<{ name: string; state: string }> };
      return body.frameworks.find((f) => f.name === 'demo' && f.state === 'ready');
    },
    120_000,
    250,
  ).catch(async (err: unknown) => {
    const { stdout } = await compose([...files, 'logs', '--no-color', '--tail', '30'], env).catch(() => ({ stdout: '(no logs)' }));
    throw new Error(`${String(err)}\n${stdout}`);
  });
  const res = await fetch(`${base}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: [0, 0.1, 0.2] }) });
  const reply = (await res.json()) as { status: string; result: { action: number[][] } };
  assert.equal(res.status, 200, JSON.stringify(reply));
  assert.equal(reply.status, 'success');
  assert.equal(reply.result.action.length, 16);
  assert.ok(Math.abs(reply.result.action[0]![1]! - 0.11) < 1e-6, JSON.stringify(reply.result.action[0]));
  // Both services run as compose made them, under this project only.
  const { stdout: ps } = await compose([...files, 'ps', '--services', '--filter', 'status=running'], env);
  assert.deepEqual(ps.trim().split('\n').sort(), ['demo', 'gateway']);

  await compose([...files, '--profile', 'demo', 'down', '--remove-orphans', '-t', '5'], env);
  const left = await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
  assert.equal(left.stdout.trim(), '', 'down removed the containers');
});
