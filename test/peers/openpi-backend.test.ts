// The gateway as a CLIENT of an openpi policy server (`protocol: openpi`): a real websocket server speaking the stock
// server's protocol with openpi-client's own serialisation (test/peers/openpi_server.py: metadata frame first, msgpack
// frames answered in order with {actions, policy_timing, server_timing}, a traceback TEXT frame then close 1011 on a
// failure, GET /healthz), reached through the gateway's native ZMQ door (WorkerClient) and its HTTP door with the
// standard observation. Policy: actions[k] = state + 0.01 (k + 1), 10 steps; the prompt is echoed.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Gateway } from '../../src/build-gateway.js';
import { Deadline } from '../../src/lib/abort.js';
import { GatewayError } from '../../src/lib/errors.js';
import { Tensor } from '../../src/protocol/tensor.js';
import type { PoolEvent } from '../../src/zmq/types.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { startTestGateway } from '../support/gateway.js';
import { startOpenpiServer } from '../support/peer-servers.js';
import { openpiScenario } from '../support/peers.js';

const PROMPT = 'fold the towel';

function state(seed: number, dof = 8): number[] {
  return Array.from({ length: dof }, (_, j) => Math.fround(seed + j / 8));
}

function expected(s: readonly number[]): number[][] {
  return Array.from({ length: 10 }, (_, k) => s.map((x) => Math.fround(Math.fround(x) + Math.fround(0.01 * (k + 1)))));
}

const image = () => new Tensor('uint8', [4, 6, 3], new Uint8Array(4 * 6 * 3).fill(9));
const observation = (seed: number, extra: Record<string, unknown> = {}) => ({ images: { image: image() }, state: Tensor.of(new Float32Array(state(seed))), instruction: PROMPT, ...extra });
const actionOf = (reply: { result: unknown }) => (reply.result as { action: Tensor }).action;

async function serve(t: TestContext, frameworks: Record<string, unknown>): Promise<{ gateway: Gateway; client: WorkerClient }> {
  const gateway = await startTestGateway(t, { frameworks });
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  t.after(() => client.close());
  return { gateway, client };
}

async function ready(gateway: Gateway, name: string): Promise<void> {
  const deadline = new Deadline(15_000);
  try {
    await gateway.router.registry.resolve(name).pool.whenReady(deadline.signal);
  } finally {
    deadline.dispose();
  }
}

/** The next pool event that `match`es (subscribe before causing it). */
function nextPoolEvent(gateway: Gateway, name: string, match: (e: PoolEvent) => boolean): Promise<void> {
  const pool = gateway.router.registry.resolve(name).pool;
  return new Promise((resolve) => {
    const stop = pool.onEvent((e) => {
      if (match(e)) {
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

const pi = (url: string, extra: Record<string, unknown> = {}) => ({ protocol: 'openpi', endpoints: [url], timeoutMs: 4_000, ...extra });

test('openpi server behind the gateway: the ZMQ client and the HTTP door get `actions` as the chunk, with the prompt and the peer timing', async (t) => {
  await using server = await startOpenpiServer(0, { reset_pose: [0, -1.5, 1.5] });
  const { gateway, client } = await serve(t, { pi: pi(`ws://127.0.0.1:${server.port}`) });
  await ready(gateway, 'pi');
  assert.equal(gateway.router.status().find((f) => f.name === 'pi')?.state, 'ready');

  const reply = await client.request({ type: 'inference', data: observation(0.5), framework: 'pi' });
  const action = actionOf(reply);
  assert.equal(action.dtype, 'float32');
  assert.deepEqual(action.shape, [10, 8]);
  assert.deepEqual(action.toNested(), expected(state(0.5)));
  assert.equal((reply.result as { prompt: string }).prompt, PROMPT, 'the instruction went out as `prompt`');
  assert.equal(typeof reply.timing?.compute_ms, 'number', "openpi's policy_timing became timing.compute_ms");
  assert.equal(typeof reply.timing?.total_ms, 'number', "openpi's server_timing became timing.total_ms");

  const body = { data: { images: { image: image().toNested() }, state: state(2), instruction: PROMPT } };
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/pi/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  assert.deepEqual(((await res.json()) as { result: { action: number[][] } }).result.action, expected(state(2)));
});

test('a camera the outbound mapping requires is a bad_request naming it; the server\'s traceback text frame is worker_error and the backend reconnects', async (t) => {
  await using server = await startOpenpiServer();
  const url = `ws://127.0.0.1:${server.port}/`;
  const { gateway, client } = await serve(t, {
    strict: pi(url, { outbound: { images: { base: 'observation/image' } } }),
    loose: pi(url),
  });
  await ready(gateway, 'strict');
  await ready(gateway, 'loose');

  const missing = await failure(client.request({ type: 'inference', data: { state: state(0), instruction: PROMPT }, framework: 'strict' }));
  assert.equal(missing.code, 'bad_request');
  assert.equal(missing.path, '/data/images/base');
  assert.match(missing.message, /observation\/image/);

  // Without the requirement the request reaches the server, whose policy raises: its traceback comes back as the text.
  const dropped = nextPoolEvent(gateway, 'loose', (e) => e.type === 'disconnected');
  const peer = await failure(client.request({ type: 'inference', data: { state: state(0), instruction: PROMPT }, framework: 'loose' }));
  assert.equal(peer.code, 'worker_error');
  assert.match(peer.message, /Traceback[\s\S]*KeyError: 'observation\/image'/);
  await dropped; // the stock server closes with 1011 after the text frame
  await ready(gateway, 'loose');
  assert.deepEqual(actionOf(await client.request({ type: 'inference', data: observation(1), framework: 'loose' })).toNested(), expected(state(1)));
});

test('8 concurrent requests go one at a time on the connection: every reply is its own request\'s', async (t) => {
  await using server = await startOpenpiServer();
  const { gateway, client } = await serve(t, { pi: pi(`ws://127.0.0.1:${server.port}`) });
  await ready(gateway, 'pi');
  const seeds = Array.from({ length: 8 }, (_, i) => i * 0.5);
  const replies = await Promise.all(seeds.map((seed) => client.request({ type: 'inference', data: observation(seed, { delay_s: 0.02 }), framework: 'pi' })));
  replies.forEach((reply, i) => assert.deepEqual(actionOf(reply).toNested(), expected(state(seeds[i]!)), `request ${i}`));
});

test('a request past its deadline is a timeout, and its late reply is never taken for the next request\'s', async (t) => {
  await using server = await startOpenpiServer();
  const { gateway, client } = await serve(t, { pi: pi(`ws://127.0.0.1:${server.port}`, { timeoutMs: 500 }) });
  await ready(gateway, 'pi');
  const dropped = nextPoolEvent(gateway, 'pi', (e) => e.type === 'disconnected');
  const late = await failure(client.request({ type: 'inference', data: observation(7, { delay_s: 1.5 }), framework: 'pi' }));
  assert.equal(late.code, 'timeout');
  await dropped; // the connection that still owes a reply is dropped
  await ready(gateway, 'pi');
  assert.deepEqual(actionOf(await client.request({ type: 'inference', data: observation(4), framework: 'pi' })).toNested(), expected(state(4)));
});

test('a server killed mid-request: unavailable, the framework goes down, and it serves again when the server is back', async (t) => {
  const first = await startOpenpiServer();
  const port = first.port;
  const { gateway, client } = await serve(t, { pi: pi(`ws://127.0.0.1:${port}`) });
  await ready(gateway, 'pi');
  const down = new Promise<void>((resolve) => {
    const stop = gateway.router.onEvent((e) => {
      if (e.framework === 'pi' && e.state === 'down') {
        stop();
        resolve();
      }
    });
  });
  const inServer = first.nextLine(/^REQUEST/);
  const pending = failure(client.request({ type: 'inference', data: observation(0, { delay_s: 30 }), framework: 'pi' }));
  await inServer;
  await first.kill();
  const err = await pending;
  assert.equal(err.code, 'unavailable', err.message);
  await down;
  assert.equal((await failure(client.request({ type: 'inference', data: observation(0), framework: 'pi' }))).code, 'unavailable');

  await using second = await startOpenpiServer(port);
  await ready(gateway, 'pi');
  assert.ok(second.pid !== first.pid);
  assert.deepEqual(actionOf(await client.request({ type: 'inference', data: observation(5), framework: 'pi' })).toNested(), expected(state(5)));
});

test("both ways at once: openpi's own client → the gateway's openpi door → the openpi backend → an openpi server", async (t) => {
  await using server = await startOpenpiServer();
  const gateway = await startTestGateway(t, {
    openpi: { host: '127.0.0.1', port: 0, framework: 'pi' },
    frameworks: { pi: { ...pi(`ws://127.0.0.1:${server.port}`), observation: 'openpi-generic' } },
  });
  await ready(gateway, 'pi');
  // openpi_scenarios.py 'generic': two infers of a 224x224 image pair, state STATE, prompt "pick up the fork".
  const r = await openpiScenario('generic', gateway.openpiUrl!);
  const first = r.first as { dtype: string; shape: number[]; values: number[][] };
  assert.equal(first.dtype, '<f4');
  assert.deepEqual(first.shape, [10, 8]);
  assert.deepEqual(first.values, expected([0.5, -1.0, 2.25, 0.0, 0.125, 3.0, -0.75, 1.0]));
  assert.equal(r.second_equal, true);
  assert.ok((r.keys as string[]).includes('prompt'), 'the server\'s extra reply field reached the client');
});
