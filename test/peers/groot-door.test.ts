// A GR00T client written from the documented wire format (test/peers/groot_client.py: REQ socket, msgpack, np.save),
// on Debian's python3, against the gateway's GR00T door serving the demo policy through the real pipeline and a real
// worker process: action[k][j] = state[j] + 0.01 (k + 1), 16 steps, the state being the state.<group> arrays in order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { startEmbeddedWorker, type EmbeddedWorker } from '../../src/worker/embedded-process.js';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { grootScenario } from '../support/peers.js';

const LEFT_ARM = [0.5, -1.0, 2.25, 0.0, 0.125, 3.0, -0.75];
const WAIST = [0.1, 0.2, 0.3];
const EXPECTED = expectedDemoAction([...LEFT_ARM, ...WAIST]);
const TOKEN = 'peer-door-token-0123456789';
const MODALITY = { video: { delta_indices: [0], modality_keys: ['video.ego_view'] }, state: { delta_indices: [0], modality_keys: ['state.left_arm', 'state.waist'] } };

type ArrayOut = { dtype: string; shape: number[]; values: unknown };
type ErrorOut = { error: string; code: string; retryable: boolean };

/** Columns [from, to) of each row. */
const columns = (rows: number[][], from: number, to: number) => rows.map((r) => r.slice(from, to));

async function start(worker: EmbeddedWorker, extra: Record<string, unknown> = {}, groot: Record<string, unknown> = {}): Promise<Gateway> {
  const endpoints = [worker.endpoint];
  return buildGateway(
    parseConfig(
      {
        healthIntervalMs: 200,
        limits: { maxMessageBytes: 2 * 1024 * 1024 },
        groot: { endpoint: 'tcp://127.0.0.1:*', framework: 'gr00t' },
        defaultFramework: 'demo',
        frameworks: { demo: { endpoints }, gr00t: { endpoints, observation: 'groot-n15', groot: { modalityConfig: MODALITY, ...groot } } },
        ...extra,
      },
      { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' },
    ),
  );
}

describe('GR00T door with a REQ client speaking the documented protocol', () => {
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

  test('ping, get_modality_config, N1.5 get_action split by the request state groups; kill refused, still serving', async () => {
    const r = await grootScenario('basics', gateway.grootEndpoint!);
    assert.deepEqual(r.ping, { status: 'ok', message: 'Server is running' });
    assert.deepEqual(r.modality, MODALITY);
    const action = r.action as Record<string, ArrayOut>;
    assert.deepEqual(Object.keys(action), ['action.left_arm', 'action.waist']);
    assert.deepEqual(action['action.left_arm'], { dtype: '<f4', shape: [16, 7], values: columns(EXPECTED, 0, 7) });
    assert.deepEqual(action['action.waist'], { dtype: '<f4', shape: [16, 3], values: columns(EXPECTED, 7, 10) });
    assert.deepEqual(r.default_endpoint, r.action, 'no endpoint means get_action; a Fortran-ordered (T,D) state reads the same');
    assert.equal((r.kill as ErrorOut).code, 'bad_request');
    assert.equal(typeof (r.kill as ErrorOut).error, 'string');
    assert.deepEqual(r.ping_after_kill, r.ping);
  });

  test('N1.6 nested observation (batch of one) → [action map (1, 16, D), info map]', async () => {
    const r = await grootScenario('nested', gateway.grootEndpoint!);
    const actions = r.actions as Record<string, ArrayOut>;
    assert.deepEqual(actions.left_arm, { dtype: '<f4', shape: [1, 16, 7], values: [columns(EXPECTED, 0, 7)] });
    assert.deepEqual(actions.waist, { dtype: '<f4', shape: [1, 16, 3], values: [columns(EXPECTED, 7, 10)] });
    assert.deepEqual(r.info, {});
  });

  test('bad input gets {"error"} with its code (bad dtype, byte order, endpoint, bytes), and the door keeps serving', async () => {
    const r = await grootScenario('bad', gateway.grootEndpoint!);
    const errors = r.errors as ErrorOut[];
    assert.deepEqual(errors.map((e) => e.code), ['bad_request', 'bad_request', 'bad_request', 'bad_request', 'bad_request', 'bad_request']);
    assert.ok(errors.every((e) => typeof e.error === 'string' && e.retryable === false));
    assert.deepEqual((r.after as Record<string, ArrayOut>)['action.left_arm']!.values, columns(EXPECTED, 0, 7));
    assert.equal(gateway.router.inFlight, 0);
  });

  test('a message above limits.maxMessageBytes gets too_large; the next request is served', async () => {
    const r = await grootScenario('oversized', gateway.grootEndpoint!);
    assert.equal((r.refused as ErrorOut).code, 'too_large');
    assert.deepEqual((r.after as Record<string, ArrayOut>)['action.waist']!.values, columns(EXPECTED, 7, 10));
  });
});

describe('GR00T door with a token and configured action groups', () => {
  let worker: EmbeddedWorker;
  let gateway: Gateway;
  before(async () => {
    worker = await startEmbeddedWorker();
    gateway = await start(worker, { authToken: TOKEN }, { actionGroups: { arm: 6, gripper: 1, waist: 3 } });
  });
  after(async () => {
    await gateway?.close(500);
    await worker?.close();
  });

  test('every endpoint needs api_token (unauthorized without it or with another); groups come from the config', async () => {
    const r = (await grootScenario('token', gateway.grootEndpoint!, TOKEN)) as Record<string, { ping: ErrorOut; action: ErrorOut | Record<string, ArrayOut> }>;
    for (const name of ['none', 'wrong']) {
      assert.equal(r[name]!.ping.code, 'unauthorized');
      assert.equal((r[name]!.action as ErrorOut).code, 'unauthorized');
    }
    assert.deepEqual(r.right!.ping, { status: 'ok', message: 'Server is running' });
    const action = r.right!.action as Record<string, ArrayOut>;
    assert.deepEqual(Object.keys(action), ['action.arm', 'action.gripper', 'action.waist']);
    assert.deepEqual(action['action.arm']!.values, columns(EXPECTED, 0, 6));
    assert.deepEqual(action['action.gripper']!.values, columns(EXPECTED, 6, 7));
    assert.deepEqual(action['action.waist']!.values, columns(EXPECTED, 7, 10));
  });
});
