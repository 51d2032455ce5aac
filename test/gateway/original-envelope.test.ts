// The original ROBOTIS client's envelopes, byte for byte as its send_json makes them, through both front doors of
// one real gateway: the same cases over ZMQ (a REQ socket, one JSON frame) and over HTTP (the envelope POSTed to
// /v1/frameworks/<name>/<type>, and a bare {"observation": ...} body). Behind the gateway: the embedded demo
// worker (default), a TS worker that echoes what it received (to see the mapped observation and the kwargs), and
// one that is not ready.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as zmq from 'zeromq';
import { buildGateway, type Gateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';

type Reply = Record<string, any>;

/** What the original client sends: `{type, data, timestamp, request_id}` (and nothing else). */
function envelope(type: string, data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type, data, timestamp: Date.now() / 1000, request_id: randomUUID(), ...extra };
}

const IMAGE = [
  [[0, 128, 255], [1, 2, 3]],
  [[4, 5, 6], [7, 8, 9]],
];
const ROBOT_STATE = [0.5, -1, 2.25];

interface Door {
  name: string;
  /** Sends an envelope and returns the reply body and, on HTTP, the status. */
  send(message: Record<string, unknown>, framework?: string): Promise<{ body: Reply; httpStatus?: number }>;
  close(): void;
}

function zmqDoor(gateway: Gateway): Door {
  const req = new zmq.Request({ linger: 0, receiveTimeout: 10_000, sendTimeout: 10_000 });
  req.connect(gateway.zmqEndpoint);
  return {
    name: 'zmq',
    async send(message, framework) {
      // The ZMQ door has no path: a non-default framework is named in the envelope.
      await req.send(JSON.stringify(framework ? { ...message, framework } : message));
      const [frame] = await req.receive();
      return { body: JSON.parse(frame!.toString('utf8')) as Reply };
    },
    close: () => req.close(),
  };
}

function httpDoor(gateway: Gateway): Door {
  return {
    name: 'http',
    async send(message, framework = 'demo') {
      const res = await fetch(`${gateway.httpUrl}/v1/frameworks/${framework}/${String(message.type)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
      });
      return { body: (await res.json()) as Reply, httpStatus: res.status };
    },
    close: () => undefined,
  };
}

describe('the original client\'s envelopes through both front doors', () => {
  let gateway: Gateway;
  const workers: WorkerServer[] = [];
  before(async () => {
    // Echoes the dtype and shape of what arrived, so the tests see what the mapping handed the worker.
    const echo = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'echo' });
    echo.register('inference', (data) => {
      const d = data as Record<string, unknown>;
      const describe = (v: unknown) => (v instanceof Tensor ? { dtype: v.dtype, shape: v.shape, values: v.toNested() } : { type: typeof v });
      const images = d.images as Record<string, unknown> | undefined;
      return {
        keys: Object.keys(d).sort(),
        images: Object.fromEntries(Object.entries(images ?? {}).map(([cam, v]) => [cam, describe(v)])),
        state: describe(d.state),
        speed: d.speed,
      };
    });
    const cold = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'cold', ready: false });
    for (const w of [echo, cold]) {
      await w.start();
      workers.push(w);
    }
    const frameworks = { demo: { embedded: true }, echo: { endpoints: [echo.endpoint] }, cold: { endpoints: [cold.endpoint] } };
    gateway = await buildGateway(parseConfig({ healthIntervalMs: 200, frameworks, defaultFramework: 'demo' }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' }));
    await gateway.router.registry.resolve('echo').pool.whenReady(AbortSignal.timeout(10_000));
  });
  after(async () => {
    await gateway?.close(500);
    for (const w of workers) await w.close();
  });

  for (const makeDoor of [zmqDoor, httpDoor]) {
    describe(makeDoor.name.replace('Door', ''), () => {
      let door: Door;
      before(() => {
        door = makeDoor(gateway);
      });
      after(() => door.close());

      test('inference {observation: {image, robot_state}, **kwargs} → result.action from robot_state, request_id and timestamp kept', async () => {
        const sent = envelope('inference', { observation: { image: IMAGE, robot_state: ROBOT_STATE }, instruction: 'wave' });
        const { body, httpStatus } = await door.send(sent);
        if (httpStatus !== undefined) assert.equal(httpStatus, 200);
        assert.equal(body.status, 'success');
        assert.equal(body.request_id, sent.request_id);
        assert.equal(typeof body.timestamp, 'number');
        assert.deepEqual(body.result.action, expectedDemoAction(ROBOT_STATE));
        assert.equal(body.result.instruction, 'wave', 'a kwarg beside the observation reaches the worker');
      });

      test('the worker gets the standard observation (uint8 [H,W,3] image, float32 state) and the kwargs unchanged', async () => {
        const { body } = await door.send(envelope('inference', { observation: { image: IMAGE, robot_state: ROBOT_STATE }, speed: 0.5 }), 'echo');
        assert.equal(body.status, 'success', JSON.stringify(body));
        assert.deepEqual(body.result.keys, ['images', 'speed', 'state']);
        assert.deepEqual(body.result.images, { image: { dtype: 'uint8', shape: [2, 2, 3], values: IMAGE } });
        assert.deepEqual(body.result.state, { dtype: 'float32', shape: [3], values: ROBOT_STATE });
        assert.equal(body.result.speed, 0.5);
      });

      test('train {config} and command {command, params} reach the worker', async () => {
        const train = await door.send(envelope('train', { dataset: 'demo', steps: 1 }));
        assert.equal(train.body.status, 'success');
        assert.equal(train.body.result.accepted, true);
        assert.deepEqual(train.body.result.config, { dataset: 'demo', steps: 1 });
        const command = await door.send(envelope('command', { command: 'reset', params: { hard: true } }));
        assert.equal(command.body.status, 'success');
        assert.deepEqual(command.body.result, { acknowledged: true, command: 'reset' });
      });

      test('health with data {} → status "ok" (what the original health_check reads), our fields kept', async () => {
        const sent = envelope('health', {});
        const { body, httpStatus } = await door.send(sent);
        if (httpStatus !== undefined) assert.equal(httpStatus, 200);
        assert.equal(body.status, 'ok');
        assert.equal(body.request_id, sent.request_id);
        assert.equal(body.result.ready, true);
        assert.equal(body.version, 1);
      });

      test('health from one of our clients (it sends version) keeps status "success"', async () => {
        const { body } = await door.send(envelope('health', {}, { version: 1 }));
        assert.equal(body.status, 'success');
        assert.equal(body.result.ready, true);
      });

      test('an image value outside 0..255 → bad_request naming the element', async () => {
        const { body, httpStatus } = await door.send(envelope('inference', { observation: { image: [[[0, 0, 256]]], robot_state: ROBOT_STATE } }));
        if (httpStatus !== undefined) assert.equal(httpStatus, 400);
        if (httpStatus === undefined) assert.equal(body.status, 'error');
        assert.equal(body.error.code, 'bad_request');
        assert.equal(body.error.path, '/data/observation/image/0/0/2');
      });

      test('a kwarg that collides with an observation field → bad_request naming it', async () => {
        const { body } = await door.send(envelope('inference', { observation: { robot_state: ROBOT_STATE }, state: [1] }));
        assert.equal(body.error.code, 'bad_request');
        assert.equal(body.error.path, '/data/state');
      });
    });
  }

  test('http: a bare {"observation": {...}} body → the same action', async () => {
    const res = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ observation: { image: IMAGE, robot_state: ROBOT_STATE } }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Reply;
    assert.deepEqual(body.result.action, expectedDemoAction(ROBOT_STATE));
  });

  test('http: the original health envelope to a framework that is not ready → 503 unavailable', async () => {
    const { body, httpStatus } = await httpDoor(gateway).send(envelope('health', {}), 'cold');
    assert.equal(httpStatus, 503);
    assert.equal(body.error.code, 'unavailable');
  });
});
