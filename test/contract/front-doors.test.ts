// ONE contract for every front door and codec: the same observations and the same expected answers (the demo
// policy's values), behind the embedded TS worker and behind the Python SDK worker. The peers' doors (openpi's
// websocket, GR00T's ZMQ) run the inference cases: their protocols have no health, command or train requests, and
// GR00T's door serves one configured framework, so it cannot name another.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { sampleObservation, sampleState } from '../../src/cli/sample.js';
import type { Gateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { frontDoorClient, TRANSPORTS, type CallResult, type FrontDoorClient } from '../support/gateway.js';
import { peerDoorClient, PEER_TRANSPORTS } from '../support/peer-clients.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';

function ok(r: CallResult): Extract<CallResult, { ok: true }> {
  assert.ok(r.ok, `expected success, got ${JSON.stringify(r)}`);
  return r;
}

function assertChunk(result: Record<string, unknown>, state: ArrayLike<number>, instruction: string): void {
  assert.deepEqual(result.action, expectedDemoAction(state));
  assert.equal((result.action as unknown[]).length, 16);
  assert.equal(result.dt_s, 1 / 30);
  assert.equal(result.model, 'demo-v1');
  assert.equal(result.instruction, instruction);
}

const BACKENDS = ['ts-embedded', 'python-sdk'] as const;

for (const backend of BACKENDS) {
  describe(`contract behind the ${backend} worker`, () => {
    let gateway: Gateway;
    let python: PythonWorker | undefined;
    before(async () => {
      let raw: Record<string, unknown> | undefined;
      if (backend === 'python-sdk') {
        // The SDK's demo serves inference; train and command answer like the TS demo worker's (demo_control.py).
        python = await spawnPythonWorker({
          framework: 'demo',
          capacity: 4,
          handlers: { train: 'demo_control:train', command: 'demo_control:command' },
          pythonPath: [fileURLToPath(new URL('.', import.meta.url))],
        });
        raw = { frameworks: { demo: { endpoints: [python.endpoint], timeoutMs: 5_000 } } };
      }
      const peers = { openpi: { host: '127.0.0.1', port: 0 }, groot: { endpoint: 'tcp://127.0.0.1:*' } };
      gateway = await buildGateway(parseConfig({ healthIntervalMs: 200, ...peers, ...raw }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' }));
    });
    after(async () => {
      await gateway?.close(500);
      await python?.close();
    });

    for (const transport of TRANSPORTS) {
      describe(transport, () => {
        let client: FrontDoorClient;
        before(() => {
          client = frontDoorClient(gateway, transport);
        });
        after(() => client.close());

        test('L observation (three 224x224x3 images, 14 joints, instruction) → the demo action chunk', async () => {
          const r = ok(await client.call('inference', sampleObservation('L', 'stack the blocks')));
          assertChunk(r.result, sampleState(), 'stack the blocks');
        });

        test('S observation without instruction, framework named explicitly → instruction echoed as empty', async () => {
          const r = ok(await client.call('inference', { state: new Float32Array([0.5, -1, 2.25]) }, { framework: 'demo' }));
          assertChunk(r.result, [0.5, -1, 2.25], '');
        });

        test("the original example observation {image, robot_state} → action from robot_state", async () => {
          const r = ok(await client.call('inference', { image: [[[0, 0, 0]]], robot_state: [1, 2, 3, 4] }));
          assertChunk(r.result, [1, 2, 3, 4], '');
        });

        test('missing state → bad_request with path /data/state', async () => {
          const r = await client.call('inference', { images: {}, instruction: 'x' });
          assert.equal(r.ok, false);
          assert.equal(!r.ok && r.code, 'bad_request');
          assert.equal(!r.ok && r.path, '/data/state');
          if (!r.ok && r.httpStatus !== undefined) assert.equal(r.httpStatus, 400);
        });

        test('unknown framework → unknown_framework (HTTP 404)', async () => {
          const r = await client.call('inference', { state: [1] }, { framework: 'no-such-framework' });
          assert.equal(r.ok, false);
          assert.equal(!r.ok && r.code, 'unknown_framework');
          if (!r.ok && r.httpStatus !== undefined) assert.equal(r.httpStatus, 404);
        });

        test('health → ready, framework demo', async () => {
          const r = ok(await client.call('health', {}));
          assert.equal(r.result.ready, true);
          assert.equal(r.result.framework, 'demo');
        });

        test('command and train reach the worker', async () => {
          const c = ok(await client.call('command', { command: 'reset' }));
          assert.deepEqual(c.result, { acknowledged: true, command: 'reset' });
          const t = ok(await client.call('train', { dataset: 'demo', steps: 1 }));
          assert.equal(t.result.accepted, true);
          assert.deepEqual(t.result.config, { dataset: 'demo', steps: 1 });
        });

        test('the router in-flight count is back to zero', () => {
          assert.equal(gateway.router.inFlight, 0);
        });
      });
    }

    for (const transport of PEER_TRANSPORTS) {
      describe(transport, () => {
        let client: FrontDoorClient;
        before(() => {
          client = peerDoorClient(gateway, transport);
        });
        after(() => client.close());
        // GR00T's reply is the action alone (action.<group>); openpi's carries the result's other fields too.
        const check = (result: Record<string, unknown>, state: ArrayLike<number>, instruction: string) =>
          transport === 'openpi' ? assertChunk(result, state, instruction) : assert.deepEqual(result.action, expectedDemoAction(state));

        test('L observation (three 224x224x3 images, 14 joints, instruction) → the demo action chunk', async () => {
          check(ok(await client.call('inference', sampleObservation('L', 'stack the blocks'))).result, sampleState(), 'stack the blocks');
        });

        test('S observation without instruction, framework named explicitly → instruction echoed as empty', async () => {
          check(ok(await client.call('inference', { state: new Float32Array([0.5, -1, 2.25]) }, { framework: 'demo' })).result, [0.5, -1, 2.25], '');
        });

        test("the original example observation {image, robot_state} → action from robot_state", async () => {
          check(ok(await client.call('inference', { image: [[[0, 0, 0]]], robot_state: [1, 2, 3, 4] })).result, [1, 2, 3, 4], '');
        });

        test('missing state → bad_request with path /data/state', async () => {
          const r = await client.call('inference', { images: {}, instruction: 'x' });
          assert.equal(r.ok, false);
          assert.equal(!r.ok && r.code, 'bad_request');
          assert.equal(!r.ok && r.path, '/data/state');
        });

        if (transport === 'openpi') {
          test('unknown framework → unknown_framework (HTTP 404 at the upgrade)', async () => {
            const r = await client.call('inference', { state: [1] }, { framework: 'no-such-framework' });
            assert.equal(r.ok, false);
            assert.equal(!r.ok && r.code, 'unknown_framework');
            assert.equal(!r.ok && r.httpStatus, 404);
          });
        }

        test('the router in-flight count is back to zero', () => {
          assert.equal(gateway.router.inFlight, 0);
        });
      });
    }
  });
}
