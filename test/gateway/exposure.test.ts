// What a gateway exposes and how long it lets a client hold on: slow headers and slow bodies are cut off by the
// HTTP server's own timeouts (not Node's 300 s default), the connection count is capped, a public bind hides its
// status and metrics behind the token, control bodies are small, and the ZMQ door's receive loop holds at most
// `maxInFlight` messages (the rest wait in ZeroMQ's queue).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import * as zmq from 'zeromq';
import { silentLogger } from '../../src/lib/log.js';
import { DEFAULT_LIMITS } from '../../src/protocol/codec.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { RouterServer } from '../../src/zmq/router-server.js';
import { startTestGateway } from '../support/gateway.js';

const TOKEN = 'exposure-token-0123456789';

/** A raw TCP client: what it received, and a promise of the server closing the connection. */
function rawClient(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('error', () => undefined); // a reset by the server shows as 'close'
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
}

test('slow headers and slow bodies are cut off by the server timeouts; connections beyond the cap are refused', async (t) => {
  const gateway = await startTestGateway(t, { http: { host: '127.0.0.1', headersTimeoutMs: 300, requestTimeoutMs: 600, maxConnections: 3 } });
  const port = Number(new URL(gateway.httpUrl).port);

  // Headers that never finish: 408 and the connection closed, within the headers timeout's check.
  const slowHeaders = await rawClient(port);
  slowHeaders.socket.write('POST /v1/frameworks/demo/inference HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  await slowHeaders.closed;
  assert.match(slowHeaders.received(), /^HTTP\/1\.1 408/);

  // A body announced and never sent.
  const slowBody = await rawClient(port);
  slowBody.socket.write('POST /v1/frameworks/demo/inference HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"state":');
  await slowBody.closed;
  assert.doesNotMatch(slowBody.received(), /^HTTP\/1\.1 200/);

  // Three idle connections fill the cap; a fourth is closed without an answer.
  const idle = await Promise.all([1, 2, 3].map(() => rawClient(port)));
  const extra = await rawClient(port).catch(() => undefined);
  if (extra) {
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await extra.closed;
    assert.equal(extra.received(), '', 'the connection over the cap gets no answer');
  }
  for (const c of idle) c.socket.destroy();
  await Promise.all(idle.map((c) => c.closed));
  // Below the cap again, requests are served.
  assert.equal((await fetch(`${gateway.httpUrl}/healthz`)).status, 200);
});

test('a public bind: status, frameworks and metrics need the token; health does not; control bodies are small', async (t) => {
  // 0.0.0.0 opens the port on every interface; the test talks to 127.0.0.1 only.
  const gateway = await startTestGateway(t, { authToken: TOKEN, http: { host: '0.0.0.0', port: 0 } }, { metrics: createMetrics(new Registry()) });
  const url = gateway.httpUrl.replace('0.0.0.0', '127.0.0.1');
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const path of ['/v1/frameworks', '/v1/frameworks/demo', '/metrics']) {
    const refused = await fetch(`${url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal((await fetch(`${url}${path}`, { headers: auth })).status, 200, path);
  }
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'liveness stays open for probes');
  assert.equal((await fetch(`${url}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1]}' })).status, 200, 'inference needs no token');

  const big = await fetch(`${url}/v1/frameworks/demo/start`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ timeout_ms: 1000, pad: 'x'.repeat(100_000) }) });
  assert.equal(big.status, 413);
  assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'too_large');

  // On loopback with a token, status and metrics stay open (a local Prometheus scrapes without credentials).
  const local = await startTestGateway(t, { authToken: TOKEN }, { metrics: createMetrics(new Registry()) });
  assert.equal((await fetch(`${local.httpUrl}/metrics`)).status, 200);
});

test('the ZMQ receive loop holds at most maxInFlight messages; the rest wait in ZeroMQ and are all answered', async (t) => {
  let handling = 0;
  let most = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let twoTaken!: () => void;
  const taken = new Promise<void>((r) => (twoTaken = r));
  const server = new RouterServer({
    endpoint: 'tcp://127.0.0.1:*',
    name: 'test door',
    limits: DEFAULT_LIMITS,
    maxInFlight: 2,
    log: silentLogger,
    handle: async (frames) => {
      handling++;
      most = Math.max(most, handling);
      if (handling === 2) twoTaken();
      await gate;
      handling--;
      return [frames[0]!];
    },
  });
  const endpoint = await server.start();
  t.after(() => server.close());
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 10_000 });
  t.after(() => dealer.close());
  dealer.connect(endpoint);
  for (let i = 0; i < 6; i++) await dealer.send(['', `m${i}`]);
  // Two are taken; the loop waits. An absence can only be shown over time: give the other four 300 ms to be
  // (wrongly) taken while the gate is shut. Then everything drains, never more than two at a time.
  await taken;
  await new Promise((r) => setTimeout(r, 300));
  const firstTwo = server.inFlight;
  release();
  const answers: string[] = [];
  for (let i = 0; i < 6; i++) {
    const [, body] = await dealer.receive();
    answers.push(body!.toString());
  }
  assert.ok(firstTwo <= 2, `in flight before release: ${firstTwo}`);
  assert.equal(most, 2, 'never more than maxInFlight handled at once');
  assert.deepEqual(answers.sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
});
