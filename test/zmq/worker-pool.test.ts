import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../src/lib/abort.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import type { PoolEvent } from '../../src/zmq/types.js';
import { spawnTsWorker } from '../support/ts-worker.js';

async function worker(t: { after(fn: () => unknown): void }, name: string, { ready = true } = {}) {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'f', ready, capacity: 100 });
  server.register('who', async (data) => {
    await sleep(Number((data as { delay_ms?: number }).delay_ms ?? 0));
    return name;
  });
  await server.start();
  t.after(() => server.close());
  return server;
}

test('requests spread to the least busy ready endpoint; endpoints are added and removed at run time', async (t) => {
  const a = await worker(t, 'a');
  const b = await worker(t, 'b');
  const pool = new WorkerPool({ framework: 'f', endpoints: [a.endpoint], healthIntervalMs: 0, timeoutMs: 5_000 });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), true);
  pool.addEndpoint(b.endpoint);
  await pool.checkHealth();
  const answers = await Promise.all(Array.from({ length: 20 }, () => pool.request({ type: 'who', data: { delay_ms: 50 } }).then((r) => r.result)));
  assert.ok(answers.includes('a') && answers.includes('b'), `both served: ${answers.join('')}`);
  const counts = { a: answers.filter((x) => x === 'a').length, b: answers.filter((x) => x === 'b').length };
  assert.ok(Math.abs(counts.a - counts.b) <= 2, `balanced: ${JSON.stringify(counts)}`);
  await pool.removeEndpoint(a.endpoint);
  const after = await Promise.all(Array.from({ length: 5 }, () => pool.request({ type: 'who' }).then((r) => r.result)));
  assert.deepEqual(after, ['b', 'b', 'b', 'b', 'b']);
  assert.equal(pool.inFlight, 0);
});

test('healthy means ready: a worker that answers but is not ready gets no requests', async (t) => {
  const warming = await worker(t, 'warming', { ready: false });
  const pool = new WorkerPool({ framework: 'f', endpoints: [warming.endpoint], healthIntervalMs: 0 });
  t.after(() => pool.close());
  const events: PoolEvent[] = [];
  pool.onEvent((e) => events.push(e));
  await pool.start();
  const [status] = await pool.checkHealth();
  assert.equal(status!.state, 'unhealthy');
  assert.equal(status!.lastHealth?.ready, false);
  assert.equal(pool.isReady(), false);
  await assert.rejects(pool.request({ type: 'who' }), { code: 'unavailable', message: /no ready worker/ });
  warming.setReady(true);
  await pool.checkHealth();
  assert.equal(pool.isReady(), true);
  assert.equal((await pool.request({ type: 'who' })).result, 'warming');
  const states = events.filter((e) => e.type === 'state').map((e) => (e as { to: string }).to);
  assert.deepEqual(states, ['unhealthy', 'ready']);
});

test('a worker that dies is marked down at once, requests get unavailable, and it is used again after a restart', async (t) => {
  const child = await spawnTsWorker();
  t.after(() => child.close());
  const pool = new WorkerPool({ framework: 'f', endpoints: [child.endpoint], healthIntervalMs: 100, timeoutMs: 2_000 });
  t.after(() => pool.close());
  const seen: string[] = [];
  const iterate = (async () => {
    for await (const e of pool.events()) if (e.type === 'state') seen.push(e.to);
  })();
  await pool.start();
  assert.equal(pool.isReady(), true);
  await child.kill('SIGKILL');
  for (let i = 0; i < 50 && pool.isReady(); i++) await sleep(50);
  assert.equal(pool.isReady(), false);
  await assert.rejects(pool.request({ type: 'echo', data: 1 }), { code: 'unavailable' });

  const port = new URL(child.endpoint.replace('tcp://', 'http://')).port;
  const again = await spawnTsWorker({ endpoint: `tcp://127.0.0.1:${port}` });
  t.after(() => again.close());
  for (let i = 0; i < 100 && !pool.isReady(); i++) await sleep(50);
  assert.equal(pool.isReady(), true);
  assert.deepEqual((await pool.request({ type: 'echo', data: 2 })).result, 2);
  await pool.close();
  await iterate; // the event iteration ends when the pool closes
  assert.deepEqual(seen.slice(0, 2), ['ready', 'down']);
  assert.equal(seen.at(-1), 'ready');
});

test('close drains requests in flight and then rejects new ones', async (t) => {
  const a = await worker(t, 'a');
  const pool = new WorkerPool({ framework: 'f', endpoints: [a.endpoint], healthIntervalMs: 0 });
  await pool.start();
  const inFlight = pool.request({ type: 'who', data: { delay_ms: 100 } });
  await pool.close({ graceMs: 2_000 });
  assert.equal((await inFlight).result, 'a');
  await assert.rejects(pool.request({ type: 'who' }), { code: 'unavailable' });
  assert.equal(pool.close(), pool.close(), 'close is idempotent');
});

test('a pool with no endpoints answers unavailable', async () => {
  const pool = new WorkerPool({ framework: 'empty', healthIntervalMs: 0 });
  try {
    await assert.rejects(pool.request({ type: 'who' }), { code: 'unavailable', message: /no endpoints/ });
  } finally {
    await pool.close();
  }
});

test('a worker busy with one request at a time stays ready when its health checks time out', async (t) => {
  // A one-at-a-time worker: a REP-like server whose handlers block each other, so health waits behind inference.
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'busy', capacity: 100 });
  let chain = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.then(() => undefined, () => undefined);
    return run;
  };
  server.register('infer', () => serial(() => sleep(300).then(() => 'done')));
  server.register('health', () => serial(async () => ({ ready: true })));
  await server.start();
  t.after(() => server.close());
  const pool = new WorkerPool({ framework: 'busy', endpoints: [server.endpoint], healthIntervalMs: 0, healthTimeoutMs: 100, downAfterFailures: 1, timeoutMs: 10_000 });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), true);
  const work = Promise.all([1, 2, 3].map(() => pool.request({ type: 'infer' })));
  await sleep(50);
  const [status] = await pool.checkHealth();
  assert.equal(status!.state, 'ready', 'still ready while busy');
  assert.match(status!.lastError ?? '', /busy/);
  assert.deepEqual((await work).map((r) => r.result), ['done', 'done', 'done']);
});
