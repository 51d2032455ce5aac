// Bad input on both front doors: the same codes on ZMQ and HTTP, the right HTTP statuses, and a gateway that
// keeps serving afterwards with its in-flight count back at zero.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decode as msgpackDecode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { decodeReply, encodeMessage } from '../../src/protocol/codec.js';
import { frontDoorClient, startTestGateway } from '../support/gateway.js';

async function rawDealer(endpoint: string): Promise<{ ask(frames: Uint8Array[]): Promise<Buffer[]>; close(): void }> {
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 5_000 });
  dealer.connect(endpoint);
  return {
    async ask(frames) {
      await dealer.send([Buffer.alloc(0), ...frames]);
      const [, ...reply] = await dealer.receive();
      return reply;
    },
    close: () => dealer.close(),
  };
}

test('ZMQ front door: garbage, bad headers, unknown frameworks and oversize messages get error replies; it keeps serving', async (t) => {
  const gateway = await startTestGateway(t, { limits: { maxMessageBytes: 64 * 1024 } });
  const raw = await rawDealer(gateway.zmqEndpoint);
  t.after(() => raw.close());
  const expectError = async (frames: Uint8Array[], code: string, path?: string) => {
    const reply = decodeReply(await raw.ask(frames)).header;
    assert.equal(reply.status, 'error');
    const error = reply.error as { code: string; path?: string };
    assert.equal(error.code, code, JSON.stringify(reply));
    if (path) assert.equal(error.path, path);
    return reply;
  };
  for (let i = 0; i < 20; i++) await expectError([randomBytes(1 + (i * 37) % 300)], 'bad_request');
  await expectError([Buffer.from('{"type": "inference", "data": ')], 'bad_request');
  await expectError([Buffer.from('{"data": {}}')], 'bad_request', '/');
  await expectError([Buffer.from('[1,2,3]')], 'bad_request');
  await expectError(encodeMessage({ type: 'inference', data: { state: [1] }, framework: 'nope', request_id: 'r1' }, 'binary'), 'unknown_framework');
  // A tensor frame the header does not mention, and a frame reference that does not exist.
  await expectError([...encodeMessage({ type: 'inference', data: { state: [1] } }, 'binary'), Buffer.alloc(8)], 'bad_request');
  await expectError(encodeMessage({ type: 'inference', data: { state: { __tensor__: true, dtype: 'float32', shape: [2], frame: 3 } } }, 'binary'), 'bad_request');
  // Above the message limit: too_large, with the request_id recovered so a DEALER can match it.
  const big = await expectError(encodeMessage({ type: 'inference', data: { state: [1], blob: Buffer.alloc(100 * 1024) }, request_id: 'big-1' }, 'msgpack'), 'too_large');
  assert.equal(big.request_id, 'big-1');
  // An empty message and a bare delimiter are dropped (nothing to answer); the door still serves.
  const client = frontDoorClient(gateway, 'zmq-binary');
  t.after(() => client.close());
  const ok = await client.call('inference', { state: [1, 2] });
  assert.equal(ok.ok, true);
  assert.equal(gateway.router.inFlight, 0);
});

test('HTTP front door: 404 unknown framework, 400 with the validation path, 413 too_large, 404/405/415 for routes and body types', async (t) => {
  const gateway = await startTestGateway(t, { http: { bodyLimitBytes: 4096 } });
  const post = (path: string, body: string | Uint8Array, type = 'application/json') =>
    fetch(`${gateway.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': type }, body: body as string });
  const expect = async (res: Response, status: number, code: string, path?: string) => {
    const isMsgpack = (res.headers.get('content-type') ?? '').includes('msgpack');
    const body = (isMsgpack ? msgpackDecode(new Uint8Array(await res.arrayBuffer())) : await res.json()) as { error: { code: string; path?: string; request_id?: string; retryable: boolean; message: string } };
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
    assert.equal(typeof body.error.retryable, 'boolean');
    assert.ok(body.error.request_id, 'error bodies carry a request_id');
    if (path !== undefined) assert.equal(body.error.path, path);
    return body;
  };
  await expect(await post('/v1/frameworks/nope/inference', '{"state":[1]}'), 404, 'unknown_framework');
  await expect(await post('/v1/frameworks/demo/inference', '{"state": [1,'), 400, 'bad_request', '/');
  await expect(await post('/v1/frameworks/demo/inference', '[1,2]'), 400, 'bad_request', '/');
  await expect(await post('/v1/frameworks/demo/inference', '{"data": {"state": [1]}, "request_id": 5}'), 400, 'bad_request', '/request_id');
  await expect(await post('/v1/frameworks/demo/inference', '{"data": {"state": [1]}, "type": "train"}'), 400, 'bad_request', '/type');
  await expect(await post('/v1/frameworks/demo/inference', '{"instruction": "no state"}'), 400, 'bad_request', '/data/state');
  await expect(await post('/v1/frameworks/demo/inference', Buffer.from([0xc1, 0x00]), 'application/msgpack'), 400, 'bad_request');
  // The same JSON parser as the ZMQ door: invalid UTF-8 and deep nesting are bad_request (not 200, not 500).
  await expect(await post('/v1/frameworks/demo/inference', Buffer.concat([Buffer.from('{"state":[1],"instruction":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])), 400, 'bad_request', '/');
  await expect(await post('/v1/frameworks/demo/inference', `{"state":[1],"x":${'['.repeat(1000)}${']'.repeat(1000)}}`), 400, 'bad_request', '/');
  const tooBig = JSON.stringify({ state: new Array(5000).fill(1) });
  await expect(await post('/v1/frameworks/demo/inference', tooBig), 413, 'too_large');
  // Chunked (no content-length): the limit still holds.
  const chunked = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(tooBig)); c.close(); } }),
    duplex: 'half',
  } as RequestInit);
  await expect(chunked, 413, 'too_large');
  await expect(await fetch(`${gateway.httpUrl}/v2/nothing`), 404, 'bad_request');
  // A known path with a method it does not take: 405 and the methods it does.
  const wrongMethod = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'PUT', body: '{}' });
  assert.equal(wrongMethod.headers.get('allow'), 'POST');
  await expect(wrongMethod, 405, 'bad_request');
  assert.equal((await fetch(`${gateway.httpUrl}/healthz`, { method: 'DELETE' })).headers.get('allow'), 'GET');
  // A body that is neither JSON nor msgpack (curl -d sends a form) is not parsed as JSON: 415.
  await expect(await post('/v1/frameworks/demo/inference', 'state=1', 'application/x-www-form-urlencoded'), 415, 'bad_request');
  await expect(await post('/v1/frameworks/demo/inference', '{"state":[1]}', 'text/plain'), 415, 'bad_request');
  const good = await post('/v1/frameworks/demo/inference', '{"state":[1]}');
  assert.equal(good.status, 200);
  await good.body?.cancel();
  assert.equal(gateway.router.inFlight, 0);
});

test('over the concurrency limit: 503 overloaded with Retry-After on HTTP, overloaded on ZMQ; in flight back to 0', async (t) => {
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true, embeddedDelayMs: 400, maxConcurrency: 1, timeoutMs: 5_000 } } });
  const http = frontDoorClient(gateway, 'http-json');
  const zmqClient = frontDoorClient(gateway, 'zmq-binary');
  t.after(() => zmqClient.close());
  const first = http.call('inference', { state: [1] });
  await new Promise((r) => setTimeout(r, 100));
  const [overHttp, overZmq] = await Promise.all([http.call('inference', { state: [1] }), zmqClient.call('inference', { state: [1] })]);
  assert.equal(overHttp.ok, false);
  assert.equal(!overHttp.ok && overHttp.code, 'overloaded');
  assert.equal(!overHttp.ok && overHttp.httpStatus, 503);
  assert.ok(!overHttp.ok && Number(overHttp.retryAfter) >= 1, 'Retry-After in seconds');
  assert.equal(!overZmq.ok && overZmq.code, 'overloaded');
  assert.equal(!overZmq.ok && overZmq.retryable, true);
  assert.equal((await first).ok, true);
  assert.equal(gateway.router.inFlight, 0);
  const status = gateway.router.status()[0]!;
  assert.ok(status.requests.overloaded >= 2);
});

test('deadline passed: 504 timeout on HTTP, timeout on ZMQ; in flight back to 0', async (t) => {
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true, embeddedDelayMs: 1_500, timeoutMs: 200 } } });
  const http = frontDoorClient(gateway, 'http-msgpack');
  const zmqClient = frontDoorClient(gateway, 'zmq-json');
  t.after(() => zmqClient.close());
  const [h, z] = await Promise.all([http.call('inference', { state: [1] }), zmqClient.call('inference', { state: [1] })]);
  assert.equal(!h.ok && h.code, 'timeout');
  assert.equal(!h.ok && h.httpStatus, 504);
  assert.equal(!z.ok && z.code, 'timeout');
  // The caller's own smaller budget (timeout_ms) also holds, on a framework with a long deadline.
  assert.equal(gateway.router.inFlight, 0);
});

test('a timeout names no request id but the caller\'s: the reply and its message agree', async (t) => {
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true, embeddedDelayMs: 600, timeoutMs: 100 } } });
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'robot-7-tick-42' }, body: '{"state":[1]}' });
  const body = (await res.json()) as { error: { code: string; message: string; request_id: string } };
  assert.equal(res.status, 504);
  assert.equal(body.error.code, 'timeout');
  assert.equal(body.error.request_id, 'robot-7-tick-42');
  assert.doesNotMatch(body.error.message, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, 'no internal (worker hop) request id in the message');
});
