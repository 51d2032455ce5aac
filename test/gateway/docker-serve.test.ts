// `physical-ai-gateway serve` with a framework in Docker, as a user runs it (a child process and a config file):
// without an engine it logs one clear error and still serves the demo; with the real engine the first request
// starts the container, /v1/containers lists it, `up`/`down --config` act on the same framework.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test, type TestContext } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { RUN_ID, RUN_LABEL, TEST_IMAGE, eventually, freePort, testManager, uniqueName } from '../support/docker.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

async function configFile(t: TestContext, config: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pag-serve-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.yaml');
  await writeFile(file, toYaml(config));
  return file;
}

interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

/** Runs `serve --config file` on free ports until it prints where it listens; killed after the test. */
async function serve(t: TestContext, file: string, env: Record<string, string> = {}): Promise<Served> {
  const httpPort = await freePort();
  const zmqPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file, '--http-port', String(httpPort), '--zmq-endpoint', `tcp://127.0.0.1:${zmqPort}`, '--log-level', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await eventually(async () => (/ frameworks: /.test(stdout) ? true : child.exitCode !== null ? assert.fail(`serve exited:\n${stdout}\n${stderr}`) : undefined), 60_000);
  return {
    child,
    url: `http://127.0.0.1:${httpPort}`,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(90_000) });
  return { status: res.status, body: (await res.json()) as { status?: string; result?: { action: number[][] }; error?: { code: string; message: string } } };
};

test('serve without a Docker engine: one clear error at start, demo served, the Docker framework 503 unavailable', async (t) => {
  const file = await configFile(t, { frameworks: { demo: { embedded: true }, lerobot: { launcher: 'lerobot', timeoutMs: 10_000 } }, defaultFramework: 'demo' });
  const s = await serve(t, file, { DOCKER_HOST: `unix://${join(tmpdir(), `pag-no-docker-${process.pid}.sock`)}` });
  const demo = await post(`${s.url}/v1/frameworks/demo/inference`, { data: { state: [1] } });
  assert.equal(demo.status, 200);
  const docker = await post(`${s.url}/v1/frameworks/lerobot/inference`, { data: { state: [1] } });
  assert.equal(docker.status, 503);
  assert.equal(docker.body.error?.code, 'unavailable');
  assert.match(docker.body.error!.message, /Docker is not reachable: no Docker engine answers at .*pag-no-docker-\d+\.sock: ENOENT/);
  assert.equal(await s.stop(), 0);
  const errors = s.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; event: string; message?: string }).filter((l) => l.level === 'error');
  assert.equal(errors.length, 1, s.stderr());
  assert.equal(errors[0]!.event, 'docker.engine_unavailable');
  assert.match(errors[0]!.message!, /^Docker is not reachable; frameworks lerobot will answer 503 unavailable/);
});

test('serve with the real engine: the first request starts the container; up/down --config act on the same framework', async (t) => {
  const manager = testManager(t); // removes this run's containers after the test
  const port = await freePort();
  const containerName = uniqueName('serve');
  const spec = { image: TEST_IMAGE, networkMode: 'host', port, containerName, labels: { [RUN_LABEL]: RUN_ID }, readyTimeoutMs: 30_000, stopTimeoutS: 2, memoryBytes: 128 * 1024 * 1024 };
  const file = await configFile(t, { frameworks: { mypolicy: { launcher: spec, timeoutMs: 60_000 } } });

  const s = await serve(t, file);
  assert.match(s.stdout(), /mypolicy \(default\): stopped/);
  const first = await post(`${s.url}/v1/frameworks/mypolicy/inference`, { data: { state: [1, 2] } });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.result!.action.length, 16);
  const listed = (await (await fetch(`${s.url}/v1/containers`)).json()) as { containers: Array<{ name: string; state: string; memoryLimitBytes: number; endpoint: string }> };
  const mine = listed.containers.find((c) => c.name === containerName);
  assert.deepEqual(mine && [mine.state, mine.memoryLimitBytes, mine.endpoint], ['running', 128 * 1024 * 1024, `tcp://127.0.0.1:${port}`]);

  // `down --config` stops and removes it; the next request starts it again on demand
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 90_000 });
  assert.match((await cli('down', 'mypolicy', '--config', file)).stdout, new RegExp(`mypolicy: stopped and removed ${containerName}`));
  assert.equal(await manager.inspect(containerName), undefined);
  assert.match((await cli('up', 'mypolicy', '--config', file)).stdout, new RegExp(`mypolicy ready at tcp://127\\.0\\.0\\.1:${port} in \\d+ ms`));
  const again = await eventually(async () => {
    const r = await post(`${s.url}/v1/frameworks/mypolicy/inference`, { data: { state: [3] } });
    return r.status === 200 ? r : undefined;
  }, 60_000, 250);
  assert.equal(again.body.result!.action[0]![0]!.toFixed(2), '3.01');
  assert.equal(await s.stop(), 0);
  assert.equal((await manager.inspect(containerName))?.State.Running, true, 'serve leaves containers running when it stops (stopOnClose is off)');
});
