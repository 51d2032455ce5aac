// openpi's own client (openpi-client 0.1.2 from PyPI, unmodified WebsocketClientPolicy and ActionChunkBroker) against
// the gateway's openpi door, serving the demo policy through the real pipeline and a real worker process:
// action[k][j] = state[j] + 0.01 (k + 1), 16 steps.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { startEmbeddedWorker, type EmbeddedWorker } from '../../src/worker/embedded-process.js';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { openpiScenario } from '../support/peers.js';

const STATE = [0.5, -1.0, 2.25, 0.0, 0.125, 3.0, -0.75, 1.0];
const TOKEN = 'peer-door-token-0123456789';
const RESET_POSE = [0, -1.5, 1.5, 0, 0, 0];

type Actions = { dtype: string; shape: number[]; values: number[][] };

async function start(worker: EmbeddedWorker, extra: Record<string, unknown> = {}): Promise<Gateway> {
  const endpoints = [worker.endpoint];
  const config = parseConfig(
    {
      healthIntervalMs: 200,
      limits: { maxMessageBytes: 2 * 1024 * 1024 },
      openpi: { host: '127.0.0.1', port: 0, framework: 'generic' },
      defaultFramework: 'demo',
      frameworks: {
        demo: { endpoints },
        generic: { endpoints, observation: 'openpi-generic', openpi: { metadata: { reset_pose: RESET_POSE } } },
        droid: { endpoints, observation: 'openpi-droid' },
        aloha: { endpoints, observation: 'openpi-aloha' },
      },
      ...extra,
    },
    { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
  );
  return buildGateway(config);
}

describe('openpi door with openpi-client 0.1.2', () => {
  let worker: EmbeddedWorker;
  let gateway: Gateway;
  before(async () => {
    worker = await startEmbeddedWorker();
    gateway = await start(worker);
  });
  after(async () => {
    await gateway?.close(500);
    await worker?.close();
  });

  test('metadata first, then the demo chunk as `actions` float32 (16, 8), with openpi timing fields', async () => {
    const r = await openpiScenario('generic', gateway.openpiUrl!);
    assert.deepEqual(r.metadata, { reset_pose: RESET_POSE });
    const first = r.first as Actions;
    assert.equal(first.dtype, '<f4');
    assert.deepEqual(first.shape, [16, 8]);
    assert.deepEqual(first.values, expectedDemoAction(STATE));
    assert.equal(r.instruction, 'pick up the fork');
    assert.ok((r.keys as string[]).includes('policy_timing'));
    assert.equal(r.policy_infer_ms_is_number, true);
    assert.deepEqual(r.first_server_timing, ['infer_ms']);
    assert.deepEqual(r.second_server_timing, ['infer_ms', 'prev_total_ms']);
    assert.equal(r.second_equal, true);
  });

  test('DROID keys by path /openpi/droid: float64 joints + gripper concatenated into the state', async () => {
    const r = await openpiScenario('droid', `${gateway.openpiUrl!}/openpi/droid`);
    assert.deepEqual(r.metadata, {});
    assert.deepEqual((r.actions as Actions).values, expectedDemoAction([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0]));
    assert.equal(r.instruction, 'open the drawer');
  });

  test('ALOHA channels-first images are accepted (transposed) and the 14-dof state drives the chunk', async () => {
    const r = await openpiScenario('aloha', `${gateway.openpiUrl!}/openpi/aloha`);
    assert.deepEqual((r.actions as Actions).values, expectedDemoAction(Array.from({ length: 14 }, (_, j) => Math.fround(j / 10))));
  });

  test("openpi's ActionChunkBroker steps through the chunk row by row and asks again after 16", async () => {
    const r = await openpiScenario('broker', gateway.openpiUrl!);
    const expected = expectedDemoAction(STATE);
    assert.deepEqual(r.steps, [...expected, expected[0]]);
  });

  test('bad observations get a text-frame error with its code, and the same connection keeps serving', async () => {
    const r = await openpiScenario('bad-then-good', gateway.openpiUrl!);
    const errors = r.errors as Array<{ code: string; path?: string } | null>;
    assert.deepEqual(errors.map((e) => e?.code), ['bad_request', 'bad_request', 'bad_request', 'bad_request']);
    assert.equal(errors[0]!.path, '/data/state');
    assert.equal(errors[1]!.path, '/observation~1state');
    assert.equal(errors[2]!.path, '/observation~1state');
    assert.equal(errors[3]!.path, '/data/observation~1image');
    assert.deepEqual((r.after as Actions).values, expectedDemoAction(STATE));
    assert.equal(gateway.router.inFlight, 0);
  });

  test('a message above limits.maxMessageBytes closes that connection with 1009; a new one is served', async () => {
    const r = await openpiScenario('oversized', gateway.openpiUrl!);
    assert.deepEqual(r.refused, { close_code: 1009 });
    assert.deepEqual((r.after as Actions).values, expectedDemoAction(STATE));
  });

  test('unknown routes and frameworks are refused at the upgrade (404); GET /healthz answers OK', async () => {
    const http = gateway.openpiUrl!.replace('ws://', 'http://');
    const health = await fetch(`${http}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'OK\n');
    assert.deepEqual(await openpiScenario('connect', `${gateway.openpiUrl!}/openpi/nope`), { status: 404 });
    assert.deepEqual(await openpiScenario('connect', `${gateway.openpiUrl!}/elsewhere`), { status: 400 });
  });
});

describe('openpi door with a token configured', () => {
  let worker: EmbeddedWorker;
  let gateway: Gateway;
  before(async () => {
    worker = await startEmbeddedWorker();
    gateway = await start(worker, { authToken: TOKEN });
  });
  after(async () => {
    await gateway?.close(500);
    await worker?.close();
  });

  test("every connection needs openpi-client's api_key (Authorization: Api-Key): 401 without it or with another", async () => {
    assert.deepEqual(await openpiScenario('connect', gateway.openpiUrl!), { status: 401 });
    assert.deepEqual(await openpiScenario('connect', gateway.openpiUrl!, 'not-the-token-at-all-000'), { status: 401 });
    const ok = await openpiScenario('connect', gateway.openpiUrl!, TOKEN);
    assert.equal(ok.status, 101);
    assert.deepEqual((ok.actions as Actions).values, expectedDemoAction(STATE));
  });
});

test('the config refuses an openpi door beyond loopback without a token, and bad mapping fields, all at once', () => {
  assert.throws(
    () => parseConfig({ openpi: { host: '0.0.0.0', port: 'x' }, frameworks: { a: { embedded: true, observation: { images: [1], timeAxis: 'yes', extra: 1 } }, b: { embedded: true, observation: 'openpi-nope' } } }),
    (err: { issues: Array<{ path: string }> }) => {
      const paths = err.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ['frameworks.a.observation.extra', 'frameworks.a.observation.images', 'frameworks.a.observation.timeAxis', 'frameworks.b.observation', 'openpi.host', 'openpi.port']);
      return true;
    },
  );
});
