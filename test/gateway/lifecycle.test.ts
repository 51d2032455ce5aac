// The gateway as a whole: the original JSON REQ client, status endpoints, shutdown with requests in flight,
// a worker killed mid-request, and the rule that a non-loopback gateway needs a token.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zmq from 'zeromq';
import { ConfigError, parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { FrameworkRegistry } from '../../src/router/framework-registry.js';
import { Router } from '../../src/router/router.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { expectedDemoAction } from '../../src/worker/default-policy.js';
import { frontDoorClient, startTestGateway, waitFor } from '../support/gateway.js';
import { spawnPythonWorker } from '../support/python-worker.js';

test('a client of the original design (REQ, JSON envelope, no framework, {image, robot_state}) works unchanged', async (t) => {
  const gateway = await startTestGateway(t);
  const req = new zmq.Request({ linger: 0, receiveTimeout: 10_000 });
  t.after(() => req.close());
  req.connect(gateway.zmqEndpoint);
  const image = Array.from({ length: 8 }, () => Array.from({ length: 8 }, () => [10, 20, 30]));
  const request = { type: 'inference', data: { image, robot_state: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] }, timestamp: Date.now() / 1000, request_id: 'c0ffee-1' };
  await req.send(JSON.stringify(request));
  const [frame] = await req.receive();
  assert.equal(frame![0], 0x7b, 'a JSON request gets a JSON reply');
  const reply = JSON.parse(frame!.toString('utf8')) as { status: string; result: { action: number[][] }; request_id: string };
  assert.equal(reply.status, 'success');
  assert.equal(reply.request_id, 'c0ffee-1');
  assert.deepEqual(reply.result.action, expectedDemoAction(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])));
  await req.send(JSON.stringify({ type: 'health', data: {}, request_id: 'h-1' }));
  const health = JSON.parse((await req.receive())[0]!.toString('utf8')) as { status: string; result: { ready: boolean } };
  assert.equal(health.status, 'success');
  assert.equal(health.result.ready, true);
  await req.send(JSON.stringify({ type: 'no-such-type', data: {}, request_id: 'u-1' }));
  const unknown = JSON.parse((await req.receive())[0]!.toString('utf8')) as { status: string; error: { code: string }; request_id: string };
  assert.equal(unknown.status, 'error');
  assert.equal(unknown.error.code, 'bad_request');
  assert.equal(unknown.request_id, 'u-1');
});

test('healthz, readyz, /v1/frameworks, openapi.json and a self-contained docs page', async (t) => {
  const gateway = await startTestGateway(t);
  const get = async (path: string) => {
    const res = await fetch(`${gateway.httpUrl}${path}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  assert.equal((await get('/healthz')).status, 200);
  const ready = await get('/readyz');
  assert.equal(ready.status, 200, ready.text);
  const list = JSON.parse((await get('/v1/frameworks')).text) as { default: string; frameworks: Array<{ name: string; state: string; endpoints: Array<{ endpoint: string; state: string }>; inFlight: number }> };
  assert.equal(list.default, 'demo');
  assert.equal(list.frameworks[0]!.name, 'demo');
  assert.equal(list.frameworks[0]!.state, 'ready');
  assert.match(list.frameworks[0]!.endpoints[0]!.endpoint, /^ipc:\/\//);
  assert.equal(list.frameworks[0]!.inFlight, 0);
  const openapi = JSON.parse((await get('/openapi.json')).text) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
  assert.equal(openapi.openapi, '3.1.0');
  assert.ok(openapi.paths['/v1/frameworks/{name}/inference']);
  for (const path of ['/v1/frameworks/{name}/train', '/v1/frameworks/{name}/command', '/v1/frameworks/{name}/start', '/v1/frameworks/{name}/stop', '/v1/containers', '/readyz', '/metrics']) assert.ok(openapi.paths[path], path);
  for (const name of ['Observation', 'ActionChunk', 'TensorRef', 'WireError', 'RequestHeader', 'ReplyHeader', 'HealthResult']) assert.ok(openapi.components.schemas[name], name);
  assert.ok(!JSON.stringify(openapi).includes('.schema.json"'), 'every $ref points into components');
  const docs = await get('/docs');
  assert.equal(docs.status, 200);
  assert.match(docs.type, /text\/html/);
  assert.ok(!/<script[^>]+src=|<link[^>]+href=/.test(docs.text), 'no external assets');
  assert.equal((await get('/metrics')).status, 404, 'no registry given: metrics off');
  assert.equal((await get('/v1/frameworks/nope')).status, 404);
});

test('readyz is 503 and names the framework whose worker is down', async (t) => {
  const python = await spawnPythonWorker({});
  t.after(() => python.close());
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true }, lerobot: { endpoints: [python.endpoint], timeoutMs: 500 } }, defaultFramework: 'demo' });
  await waitFor(() => gateway.router.notReady().length === 0, 10_000, 'both ready');
  await python.kill('SIGKILL');
  await waitFor(async () => (await fetch(`${gateway.httpUrl}/readyz`).then((r) => r.status)) === 503, 10_000, 'readyz 503');
  const body = (await (await fetch(`${gateway.httpUrl}/readyz`)).json()) as { not_ready: string[] };
  assert.deepEqual(body.not_ready, ['lerobot']);
});

test('shutdown with requests in flight: they complete within the grace period, close resolves, nothing is left', async (t) => {
  const config = parseConfig({ frameworks: { demo: { embedded: true, embeddedDelayMs: 300, timeoutMs: 10_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const gateway = await buildGateway(config);
  t.after(() => gateway.close(0));
  const zmqClient = frontDoorClient(gateway, 'zmq-binary');
  t.after(() => zmqClient.close());
  const http = frontDoorClient(gateway, 'http-json');
  const calls = [...Array.from({ length: 4 }, () => zmqClient.call('inference', { state: [1] })), ...Array.from({ length: 4 }, () => http.call('inference', { state: [1] }))];
  await waitFor(() => gateway.router.inFlight === 8, 5_000, '8 in flight');
  await gateway.close(5_000);
  const results = await Promise.all(calls);
  for (const r of results) assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(gateway.router.inFlight, 0);
  assert.equal(await gateway.close(), undefined, 'close is idempotent');
  const worker = [...gateway.embeddedWorkers.values()][0]!;
  assert.throws(() => process.kill(worker.pid!, 0), 'the embedded worker process is gone');
});

test('shutdown with no grace: requests in flight end as cancelled or unavailable, never hang', async (t) => {
  const config = parseConfig({ frameworks: { demo: { embedded: true, embeddedDelayMs: 3_000, timeoutMs: 20_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
  const gateway = await buildGateway(config);
  t.after(() => gateway.close(0));
  const zmqClient = frontDoorClient(gateway, 'zmq-msgpack');
  t.after(() => zmqClient.close());
  const calls = Array.from({ length: 3 }, () => zmqClient.call('inference', { state: [1] }, { timeoutMs: 15_000 }));
  await waitFor(() => gateway.router.inFlight === 3, 5_000, '3 in flight');
  const started = Date.now();
  await gateway.close(0);
  const results = await Promise.all(calls);
  for (const r of results) assert.ok(!r.ok && ['cancelled', 'unavailable'].includes(r.code), JSON.stringify(r));
  assert.ok(Date.now() - started < 10_000);
  assert.equal(gateway.router.inFlight, 0);
});

test('a worker killed with requests in flight: unavailable or timeout within the deadline, in flight back to 0, then it serves again', async (t) => {
  const python = await spawnPythonWorker({ delayMs: 1_500, capacity: 4 });
  t.after(() => python.close());
  const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [python.endpoint], timeoutMs: 3_000 } } });
  await waitFor(() => gateway.router.notReady().length === 0, 10_000, 'worker ready');
  const zmqClient = frontDoorClient(gateway, 'zmq-binary', { defaultFramework: 'lerobot' });
  t.after(() => zmqClient.close());
  const http = frontDoorClient(gateway, 'http-json', { defaultFramework: 'lerobot' });
  const started = Date.now();
  const calls = [zmqClient.call('inference', { state: [1] }), zmqClient.call('inference', { state: [1] }, { framework: 'lerobot' }), http.call('inference', { state: [1] })];
  await waitFor(() => gateway.router.inFlight === 3, 5_000, '3 in flight');
  await python.kill('SIGKILL');
  const results = await Promise.all(calls);
  for (const r of results) assert.ok(!r.ok && ['unavailable', 'timeout'].includes(r.code), JSON.stringify(r));
  assert.ok(Date.now() - started < 3_000 + 2_000, 'ended by the deadline');
  assert.equal(gateway.router.inFlight, 0);
  const after = await http.call('inference', { state: [1] });
  assert.ok(!after.ok && after.code === 'unavailable', 'no worker: unavailable at once');
  assert.equal(!after.ok && after.httpStatus, 503);
});

test('one token rule on every door: a public bind needs a token; a configured token guards control on HTTP and ZMQ alike', async (t) => {
  const issuesOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.issues.map((i) => i.path);
    }
    return assert.fail('no ConfigError');
  };
  assert.deepEqual(issuesOf(() => parseConfig({ http: { host: '0.0.0.0', port: 0 } })), ['http.host']);
  assert.deepEqual(issuesOf(() => parseConfig({}, { zmqEndpoint: 'tcp://0.0.0.0:5550' })), ['zmq.endpoint (flag/env)']);
  assert.doesNotThrow(() => parseConfig({ authToken: 'secret-token-0123456789', http: { host: '0.0.0.0' } }, { zmqEndpoint: 'tcp://0.0.0.0:5550' }));

  const token = 'secret-token-0123456789';
  const gateway = await startTestGateway(t, { authToken: token });
  const post = (path: string, headers: Record<string, string> = {}) => fetch(`${gateway.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"command":"reset"}' });
  for (const type of ['command', 'train']) {
    const none = await post(`/v1/frameworks/demo/${type}`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post(`/v1/frameworks/demo/${type}`, { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.equal((await post(`/v1/frameworks/demo/${type}`, { authorization: `Bearer ${token}` })).status, 200);
  }
  assert.equal((await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1]}' })).status, 200, 'inference needs no token');

  // The same token on the loopback ZMQ door (it was ignored there before).
  const zmqClient = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'json', timeoutMs: 5_000 });
  t.after(() => zmqClient.close());
  for (const type of ['command', 'train']) {
    await assert.rejects(zmqClient.request({ type, data: { command: 'reset' } }), { code: 'unauthorized' });
    await assert.rejects(zmqClient.request({ type, data: { command: 'reset' }, auth_token: 'wrong-token-0123456789' }), { code: 'unauthorized' });
    assert.equal((await zmqClient.request({ type, data: { command: 'reset' }, auth_token: token })).header.status, 'success');
  }
  assert.equal((await zmqClient.request({ type: 'inference', data: { state: [1] } })).header.status, 'success');

  // Without a token, on loopback, control is open on both doors.
  const open = await startTestGateway(t);
  assert.equal((await fetch(`${open.httpUrl}/v1/frameworks/demo/command`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"command":"x"}' })).status, 200);
  const openZmq = new WorkerClient({ endpoint: open.zmqEndpoint, codec: 'json', timeoutMs: 5_000 });
  t.after(() => openZmq.close());
  assert.equal((await openZmq.request({ type: 'command', data: { command: 'x' } })).header.status, 'success');

  // A router with no frameworks named and several configured: a request without a framework is a bad_request.
  const registry = new FrameworkRegistry({ frameworks: Object.values(parseConfig({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:1'] }, b: { endpoints: ['tcp://127.0.0.1:2'] } } }).frameworks) });
  const router = new Router({ registry });
  t.after(() => router.close());
  await assert.rejects(router.route({ type: 'inference', data: {} }), { code: 'bad_request', path: '/framework' });
});
