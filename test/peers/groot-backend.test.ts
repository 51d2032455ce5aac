// The gateway as a CLIENT of a GR00T server (`protocol: groot`): a real REP server written from the wire format
// (test/peers/groot_server.py: msgpack, np.save arrays, ping / get_modality_config / get_action / kill, one request at
// a time), reached through the gateway's native ZMQ door (WorkerClient) and its HTTP door with the standard
// observation {images, state, instruction}. Policy: action.<g>[k] = state.<g> + 0.01 (k + 1), 16 steps, groups
// left_arm (7) and left_hand (6), concatenated back into one float32 (16, 13) chunk.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Gateway } from '../../src/build-gateway.js';
import { Deadline } from '../../src/lib/abort.js';
import { GatewayError } from '../../src/lib/errors.js';
import { Tensor } from '../../src/protocol/tensor.js';
import type { FrameworkStateEvent } from '../../src/router/router.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { startTestGateway } from '../support/gateway.js';
import { startGrootServer } from '../support/peer-servers.js';

const TASK = 'pick up the cup';
const GROUPS = { 'state.left_arm': 7, 'state.left_hand': 6 };

function state(seed: number): number[] {
  return Array.from({ length: 13 }, (_, j) => Math.fround(seed + j / 8));
}

function expected(s: readonly number[]): number[][] {
  return Array.from({ length: 16 }, (_, k) => s.map((x) => Math.fround(Math.fround(x) + Math.fround(0.01 * (k + 1)))));
}

function image(): Tensor {
  return new Tensor('uint8', [4, 6, 3], new Uint8Array(4 * 6 * 3).fill(7));
}

function framework(endpoint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { protocol: 'groot', endpoints: [endpoint], timeoutMs: 4_000, outbound: { state: GROUPS }, ...extra };
}

async function serve(t: TestContext, frameworks: Record<string, unknown>): Promise<{ gateway: Gateway; client: WorkerClient }> {
  const gateway = await startTestGateway(t, { frameworks });
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  t.after(() => client.close());
  return { gateway, client };
}

/** Resolves once the framework's pool announces a ready server (its own events; no polling). */
async function ready(gateway: Gateway, name: string): Promise<void> {
  const deadline = new Deadline(15_000);
  try {
    await gateway.router.registry.resolve(name).pool.whenReady(deadline.signal);
  } finally {
    deadline.dispose();
  }
}

function nextState(gateway: Gateway, framework: string, state: FrameworkStateEvent['state']): Promise<void> {
  return new Promise((resolve) => {
    const stop = gateway.router.onEvent((e) => {
      if (e.framework === framework && e.state === state) {
        stop();
        resolve();
      }
    });
  });
}

async function failure(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `a GatewayError, got ${String(err)}`);
    return err;
  }
  assert.fail('the request succeeded');
}

const observation = (seed: number, extra: Record<string, unknown> = {}) => ({ images: { ego_view: image() }, state: Tensor.of(new Float32Array(state(seed))), instruction: TASK, ...extra });

test('GR00T server behind the gateway: the native ZMQ client and the HTTP door get the concatenated action groups', async (t) => {
  await using server = await startGrootServer();
  const { gateway, client } = await serve(t, { gr00t: framework(`tcp://127.0.0.1:${server.port}`) });
  await ready(gateway, 'gr00t');
  assert.equal(gateway.router.status().find((f) => f.name === 'gr00t')?.state, 'ready');

  const reply = await client.request({ type: 'inference', data: observation(0.5), framework: 'gr00t' });
  const action = (reply.result as { action: Tensor }).action;
  assert.equal(action.dtype, 'float32');
  assert.deepEqual(action.shape, [16, 13]);
  assert.deepEqual(action.toNested(), expected(state(0.5)));

  const body = { data: { images: { ego_view: image().toNested() }, state: state(1.25), instruction: TASK } };
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/gr00t/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const json = (await res.json()) as { result: { action: number[][] } };
  assert.deepEqual(json.result.action, expected(state(1.25)));
});

test('keys the modality config requires are checked at the edge: bad_request naming the key; a peer error is worker_error with its text', async (t) => {
  await using server = await startGrootServer();
  const { gateway, client } = await serve(t, { gr00t: framework(`tcp://127.0.0.1:${server.port}`) });
  await ready(gateway, 'gr00t');
  const send = (data: unknown) => client.request({ type: 'inference', data, framework: 'gr00t' });

  const noCamera = await failure(send({ state: Tensor.of(new Float32Array(state(0))), instruction: TASK }));
  assert.equal(noCamera.code, 'bad_request');
  assert.equal(noCamera.path, '/data/images/ego_view');
  assert.match(noCamera.message, /video\.ego_view/);

  const noTask = await failure(send({ images: { ego_view: image() }, state: Tensor.of(new Float32Array(state(0))) }));
  assert.equal(noTask.code, 'bad_request');
  assert.equal(noTask.path, '/data/instruction');
  assert.match(noTask.message, /annotation\.human\.action\.task_description/);

  const wrongWidth = await failure(send({ images: { ego_view: image() }, state: Tensor.of(new Float32Array(12)), instruction: TASK }));
  assert.equal(wrongWidth.code, 'bad_request');
  assert.equal(wrongWidth.path, '/data/state');

  // The server raises on a value it cannot read; its {"error": ...} comes back as worker_error with the text.
  const peer = await failure(send(observation(0, { delay_s: 'soon' })));
  assert.equal(peer.code, 'worker_error');
  assert.match(peer.message, /could not convert string to float: 'soon'/);

  // None of these broke the connection: the next request is answered.
  const ok = await send(observation(2));
  assert.deepEqual((ok.result as { action: Tensor }).action.toNested(), expected(state(2)));
});

test('8 concurrent requests are queued one at a time on the REQ connection: every reply is its own request\'s', async (t) => {
  await using server = await startGrootServer();
  const { gateway, client } = await serve(t, { gr00t: framework(`tcp://127.0.0.1:${server.port}`) });
  await ready(gateway, 'gr00t');
  const seeds = Array.from({ length: 8 }, (_, i) => i * 0.25);
  const replies = await Promise.all(seeds.map((seed) => client.request({ type: 'inference', data: observation(seed, { delay_s: 0.02 }), framework: 'gr00t' })));
  replies.forEach((reply, i) => assert.deepEqual((reply.result as { action: Tensor }).action.toNested(), expected(state(seeds[i]!)), `request ${i}`));
});

test('a server killed mid-request: unavailable at once, the framework goes down, and it serves again when the server is back', async (t) => {
  const first = await startGrootServer();
  const port = first.port;
  const { gateway, client } = await serve(t, { gr00t: framework(`tcp://127.0.0.1:${port}`) });
  await ready(gateway, 'gr00t');

  const down = nextState(gateway, 'gr00t', 'down');
  const inServer = first.nextLine(/^REQUEST get_action/);
  const pending = failure(client.request({ type: 'inference', data: observation(0, { delay_s: 30 }), framework: 'gr00t' }));
  await inServer;
  await first.kill();
  const err = await pending;
  assert.ok(err.code === 'unavailable' || err.code === 'timeout', `unavailable or timeout, got ${err.code}: ${err.message}`);
  await down;

  const refused = await failure(client.request({ type: 'inference', data: observation(0), framework: 'gr00t' }));
  assert.equal(refused.code, 'unavailable');

  await using second = await startGrootServer(port);
  await ready(gateway, 'gr00t');
  assert.ok(second.pid !== first.pid);
  const reply = await client.request({ type: 'inference', data: observation(3), framework: 'gr00t' });
  assert.deepEqual((reply.result as { action: Tensor }).action.toNested(), expected(state(3)));
});

test('a server with an API token: the right peerToken is served, a wrong one is unauthorized', async (t) => {
  await using server = await startGrootServer(0, 'groot-secret-token');
  const endpoint = `tcp://127.0.0.1:${server.port}`;
  const { gateway, client } = await serve(t, { good: framework(endpoint, { peerToken: 'groot-secret-token' }), bad: framework(endpoint, { peerToken: 'not-the-token' }) });
  await ready(gateway, 'good');
  const reply = await client.request({ type: 'inference', data: observation(1), framework: 'good' });
  assert.deepEqual((reply.result as { action: Tensor }).action.toNested(), expected(state(1)));

  // The bad framework's health check is refused: its endpoint turns unhealthy with the server's text.
  const pool = gateway.router.registry.resolve('bad').pool;
  if (!pool.stats().endpoints.some((e) => /Unauthorized/.test(e.lastError ?? ''))) {
    await new Promise<void>((resolve) => {
      const stop = pool.onEvent((e) => {
        if (e.type === 'state' && /Unauthorized/.test(e.reason ?? '')) {
          stop();
          resolve();
        }
      });
    });
  }
  const refused = await failure(client.request({ type: 'inference', data: observation(1), framework: 'bad' }));
  assert.equal(refused.code, 'unauthorized');
});
