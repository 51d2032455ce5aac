// Router and config: every bad config field reported at once, default framework, on-demand start through a
// launcher within the request's deadline (one start shared by concurrent requests), in-flight back to zero.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, overridesFromEnv, parseConfig } from '../../src/config.js';
import { sleep } from '../../src/lib/abort.js';
import { GatewayError } from '../../src/lib/errors.js';
import type { FrameworkLauncher } from '../../src/router/framework-launcher.js';
import { FrameworkRegistry } from '../../src/router/framework-registry.js';
import { Router, type FrameworkState } from '../../src/router/router.js';
import type { PoolEvent } from '../../src/zmq/types.js';
import { InProcessLauncher } from '../support/in-process-launcher.js';

test('config: no file → the embedded demo framework on the documented defaults', () => {
  const config = parseConfig(undefined);
  assert.equal(config.http.host, '127.0.0.1');
  assert.equal(config.http.port, 8080);
  assert.equal(config.zmq.endpoint, 'tcp://127.0.0.1:5550');
  assert.deepEqual(Object.keys(config.frameworks), ['demo']);
  assert.equal(config.frameworks.demo!.embedded, true);
  assert.equal(config.defaultFramework, 'demo');
  assert.deepEqual(config.docker, { idleStopMs: 0, oneGpuFrameworkAtATime: false, statsIntervalMs: 5_000 });
});

test('config: every bad field is reported at once, with its path', () => {
  const err = (() => {
    try {
      parseConfig({
        http: { port: 'eighty', colour: 'blue' },
        zmq: { endpoint: 'udp://x' },
        logLevel: 'loud',
        authToken: 'short',
        frameworks: { lerobot: { endpoints: ['tcp://127.0.0.1:5555', 'nope'], codec: 'xml', timeoutMs: -1 }, 'Bad Name': { embedded: true }, groot: {} },
        defaultFramework: 'pi0',
        docker: { idleStopMs: -5, oneGpuFrameworkAtATime: 'yes', statsIntervalMs: 1, swarm: true },
      });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof ConfigError);
  const paths = err.issues.map((i) => i.path);
  for (const p of ['http.port', 'http.colour', 'zmq.endpoint', 'logLevel', 'authToken', 'frameworks.lerobot.endpoints[1]', 'frameworks.lerobot.codec', 'frameworks.lerobot.timeoutMs', 'frameworks.Bad Name', 'frameworks.groot', 'defaultFramework', 'docker.idleStopMs', 'docker.oneGpuFrameworkAtATime', 'docker.statsIntervalMs', 'docker.swarm']) {
    assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  }
});

test('config: YAML and JSON files, with flags/env overrides winning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'paig-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'g.yaml'), 'http:\n  port: 9000\nframeworks:\n  lerobot:\n    endpoints: [tcp://127.0.0.1:5555]\n    maxConcurrency: 4\n  pi0:\n    endpoints: [tcp://127.0.0.1:5557]\ndefaultFramework: lerobot\n');
  await writeFile(join(dir, 'g.json'), '{"frameworks": {"groot": {"endpoints": ["tcp://127.0.0.1:5556"]}}}');
  const env = overridesFromEnv({ PAIG_HTTP_PORT: '9100', PAIG_LOG_LEVEL: 'debug', UNRELATED: 'x' });
  const yaml = await loadConfig({ file: join(dir, 'g.yaml'), overrides: env });
  assert.equal(yaml.http.port, 9100);
  assert.equal(yaml.logLevel, 'debug');
  assert.equal(yaml.defaultFramework, 'lerobot');
  assert.equal(yaml.frameworks.lerobot!.maxConcurrency, 4);
  const json = await loadConfig({ file: join(dir, 'g.json') });
  assert.equal(json.defaultFramework, 'groot', 'the only framework is the default');
  await writeFile(join(dir, 'bad.json'), '{"frameworks": ');
  await assert.rejects(loadConfig({ file: join(dir, 'bad.json') }), ConfigError);
  await assert.rejects(loadConfig({ file: join(dir, 'missing.yaml') }), ConfigError);
});

/** Resolves when the router announces `state` for `framework` (at once if it is there already). */
function stateReached(router: Router, framework: string, state: FrameworkState): Promise<void> {
  if (router.status().find((f) => f.name === framework)?.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = router.onEvent((e) => {
      if (e.framework === framework && e.state === state) {
        stop();
        resolve();
      }
    });
  });
}

function routerFor(raw: Record<string, unknown>, launcher?: FrameworkLauncher): Router {
  const config = parseConfig(raw);
  const registry = new FrameworkRegistry({ frameworks: Object.values(config.frameworks), defaultFramework: config.defaultFramework, launcher, healthIntervalMs: 200 });
  return new Router({ registry });
}

test('on-demand start: concurrent requests share one launch, the framework becomes ready, in flight returns to 0', async (t) => {
  const launcher = new InProcessLauncher(300);
  t.after(() => launcher.close());
  const router = routerFor({ frameworks: { pi0: { launcher: 'pi0', timeoutMs: 10_000 } } }, launcher);
  t.after(() => router.close());
  await router.registry.start();
  assert.equal(router.status()[0]!.state, 'stopped');
  const replies = await Promise.all(Array.from({ length: 3 }, (_, i) => router.route({ type: 'inference', data: { state: [i] } })));
  assert.equal(launcher.calls, 1, 'one launch for all');
  for (const [i, r] of replies.entries()) assert.equal((r.result as { action: { shape: number[] } }).action.shape.join(), '16,1', `reply ${i}`);
  assert.equal(router.status()[0]!.state, 'ready');
  assert.equal(router.inFlight, 0);
});

test("on-demand start slower than the request's deadline: timeout, and the launch still completes for later requests", async (t) => {
  const launcher = new InProcessLauncher(800);
  t.after(() => launcher.close());
  const router = routerFor({ frameworks: { groot: { launcher: 'groot', timeoutMs: 200 } } }, launcher);
  t.after(() => router.close());
  const ready = stateReached(router, 'groot', 'ready');
  await assert.rejects(router.route({ type: 'inference', data: { state: [1] } }), { code: 'timeout' });
  assert.equal(router.inFlight, 0);
  assert.equal(router.status()[0]!.state, 'starting');
  await ready;
  const ok = await router.route({ type: 'inference', data: { state: [1] } });
  assert.ok(ok.result);
  assert.equal(launcher.calls, 1);
});

test('a launcher that fails: unavailable naming the framework; unknown framework; closed router', async (t) => {
  const failing: FrameworkLauncher = {
    ensureRunning: async () => {
      throw new Error('image not found');
    },
    onEvent: () => () => undefined,
    close: async () => undefined,
  };
  const router = routerFor({ frameworks: { pi0: { launcher: 'pi0', timeoutMs: 2_000 } } }, failing);
  t.after(() => router.close());
  await assert.rejects(router.route({ type: 'inference', data: {} }), (err: { code: string; message: string }) => err.code === 'unavailable' && err.message.includes('pi0'));
  await assert.rejects(router.route({ type: 'inference', data: {}, framework: 'nope' }), { code: 'unknown_framework' });
  assert.equal(router.inFlight, 0);
  await router.close();
  await assert.rejects(router.route({ type: 'inference', data: {} }), { code: 'unavailable' });
});

test('a framework stopped on purpose leaves the pool: state stopped (not down), no reconnects; the next request starts it again', async (t) => {
  const launcher = new InProcessLauncher(0);
  t.after(() => launcher.close());
  const router = routerFor({ frameworks: { lerobot: { launcher: 'lerobot', timeoutMs: 5_000 } } }, launcher);
  t.after(() => router.close());
  await router.registry.start();
  const states: FrameworkState[] = [];
  router.onEvent((e) => states.push(e.state));
  await router.route({ type: 'inference', data: { state: [1] } });
  assert.deepEqual(states, ['starting', 'ready']);

  const poolEvents: PoolEvent[] = [];
  router.registry.resolve('lerobot').pool.onEvent((e) => poolEvents.push(e));
  const stopped = stateReached(router, 'lerobot', 'stopped');
  await launcher.stop('lerobot', 'idle');
  await stopped;
  assert.deepEqual(states, ['starting', 'ready', 'stopped'], 'never down');
  assert.deepEqual(router.status()[0]!.endpoints, []);
  // A stopped worker's endpoint would reconnect every few hundred ms; three health periods show none happen.
  await sleep(600);
  assert.deepEqual(poolEvents.filter((e) => e.type === 'reconnect' || e.type === 'disconnected'), []);
  assert.equal(router.status()[0]!.state, 'stopped');

  await router.route({ type: 'inference', data: { state: [2] } });
  assert.equal(launcher.calls, 2);
  assert.deepEqual(states.slice(-2), ['starting', 'ready']);
});

test('a launch whose container ends before its worker is ready fails at once with the reason, not at the deadline', async (t) => {
  const dying: FrameworkLauncher = {
    // runs "a container" whose worker never answers, and which dies with its last log line
    ensureRunning: async () => ({ endpoints: ['tcp://127.0.0.1:9'], ended: Promise.resolve(new GatewayError('unavailable', 'container exited with code 3; last log lines:\nFileNotFoundError: /models/x')) }),
    onEvent: () => () => undefined,
    close: async () => undefined,
  };
  const router = routerFor({ frameworks: { pi0: { launcher: 'pi0', timeoutMs: 30_000 } } }, dying);
  t.after(() => router.close());
  await assert.rejects(router.route({ type: 'inference', data: {} }), (err: GatewayError) => {
    assert.equal(err.code, 'unavailable', 'ended by the container (a deadline would be timeout)');
    assert.match(err.message, /FileNotFoundError: \/models\/x/);
    return true;
  });
  assert.equal(router.inFlight, 0);
});
