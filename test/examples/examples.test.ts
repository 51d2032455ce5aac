// The examples run as part of the suite so they cannot rot: the TS walk-through and the original-design Python client.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { startTestGateway } from '../support/gateway.js';
import { PYTHON, spawnPythonWorker } from '../support/python-worker.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('examples/zmq-examples.ts sends every kind of request through both front doors and prints the answers', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/zmq-examples.ts'], { cwd: ROOT, timeout: 120_000 });
  assert.match(stdout, /inference \[zmq binary, L\]: action float32 \[16, 14\], first row starts 0\.010 0\.110 0\.210, model demo-v1/);
  assert.match(stdout, /health \[zmq binary\]: ready=true framework=demo/);
  assert.match(stdout, /command \[zmq binary\]: \{"acknowledged":true,"command":"reset"\}/);
  assert.match(stdout, /train \[zmq binary\]: accepted=true/);
  assert.match(stdout, /status \[zmq binary\]: \{"framework":"demo"/);
  assert.match(stdout, /inference \[zmq msgpack, S, framework demo\]: action float32 \[16, 14\]/);
  assert.match(stdout, /inference \[zmq json over REQ, original envelope\]: status=success request_id=original-1 action list \[16, 3\], first row starts 0\.110 0\.210 0\.310/);
  assert.match(stdout, /bad request \[zmq json over REQ\]: status=error code=bad_request path=\/data\/state/);
  assert.match(stdout, /inference \[http json, bare observation\]: HTTP 200 action list \[16, 3\], first row starts 0\.010 0\.510 1\.010, model demo-v1, instruction "wave"/);
  assert.match(stdout, /inference \[http msgpack, L\]: HTTP 200 request_id=http-mp-1 action float32 \[16, 14\]/);
  assert.match(stdout, /unknown framework \[http json\]: HTTP 404 code=unknown_framework/);
  assert.match(stdout, /frameworks \[http\]: demo=ready/);
  assert.match(stdout, /all examples done/);
});

test('examples/original_client.py sends the original client\'s inference, train, command and health; each works through the ZMQ front door', async (t) => {
  const gateway = await startTestGateway(t);
  const { stdout } = await run(PYTHON, ['examples/original_client.py', gateway.zmqEndpoint], { cwd: ROOT, timeout: 60_000 });
  assert.match(stdout, /health_check: True/);
  const row = expectedDemoAction([0, 0.1, 0.2, 0.3, 0.4, 0.5])[0]!.map((v) => v.toFixed(4)).join(' ');
  assert.match(stdout, new RegExp(`inference: status=success action=16x6 first_row=${row} instruction=pick`), 'the kwarg instruction reached the worker');
  assert.match(stdout, /train: status=success accepted=True/);
  assert.match(stdout, /command: status=success command=reset/);
  assert.match(stdout, /bad pixel: status=error code=bad_request path=\/data\/observation\/image\/0\/0\/2/);
});

/** Runs Python code that imports the example's ZMQClient, pointed at `endpoint`, and returns its printed lines. */
async function withOriginalClient(endpoint: string, code: string): Promise<string[]> {
  const [host, port] = endpoint.replace('tcp://', '').split(':');
  const script = `import sys\nsys.path.insert(0, 'examples')\nfrom original_client import ZMQClient\n${code}`;
  const { stdout } = await run(PYTHON, ['-c', script, host!, port!], { cwd: ROOT, timeout: 60_000 });
  return stdout.trim().split('\n');
}

test('the original client\'s health_check() is False while the default framework is not ready, True for a ready one', async (t) => {
  const notReady = await spawnPythonWorker({ readyAfterMs: 600_000 });
  t.after(() => notReady.close());
  const ready = await spawnPythonWorker({ framework: 'other' });
  t.after(() => ready.close());
  const gateway = await startTestGateway(t, {
    frameworks: { demo: { endpoints: [notReady.endpoint] }, other: { endpoints: [ready.endpoint] } },
    defaultFramework: 'demo',
  });
  await gateway.router.registry.resolve('other').pool.whenReady(AbortSignal.timeout(10_000));
  const code = 'c = ZMQClient(sys.argv[1], int(sys.argv[2]))\nprint(c.health_check())\nc.close()';
  assert.deepEqual(await withOriginalClient(gateway.zmqEndpoint, code), ['False']);
  // The same client against a gateway whose default framework is the ready one.
  const second = await startTestGateway(t, { frameworks: { other: { endpoints: [ready.endpoint] } } });
  await second.router.registry.resolve('other').pool.whenReady(AbortSignal.timeout(10_000));
  assert.deepEqual(await withOriginalClient(second.zmqEndpoint, code), ['True']);
});

test('after a timeout the original client reopens its REQ socket and its next request is answered', async (t) => {
  const silent = await spawnPythonWorker({ behaviour: 'silent' });
  t.after(() => silent.close());
  const gateway = await startTestGateway(t, { frameworks: { demo: { endpoints: [silent.endpoint], timeoutMs: 60_000 } } });
  await gateway.router.registry.resolve('demo').pool.whenReady(AbortSignal.timeout(10_000));
  const lines = await withOriginalClient(
    gateway.zmqEndpoint,
    'c = ZMQClient(sys.argv[1], int(sys.argv[2]), timeout_ms=300)\nprint(c.inference({"robot_state": [1.0]}))\nprint(c.health_check())\nc.close()',
  );
  assert.deepEqual(lines, ['None', 'True']);
});
