import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../../src/lib/abort.js';
import { WorkerPool } from '../../src/zmq/worker-pool.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import type { PoolEvent } from '../../src/zmq/types.js';
import { spawnPythonWorker } from '../support/python-worker.js';
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

test('waitForReady: a request that finds no ready worker waits for one within its deadline, and still fails when none turns ready', async (t) => {
  const warming = await worker(t, 'warming', { ready: false });
  const pool = new WorkerPool({ framework: 'f', endpoints: [warming.endpoint], healthIntervalMs: 0, timeoutMs: 10_000 });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), false);
  // Without the option: unavailable at once (the default for configured endpoints).
  await assert.rejects(pool.request({ type: 'who' }), { code: 'unavailable', message: /no ready worker/ });
  // With it: the request waits and is served once the worker turns ready (announced by the pool's state event).
  const waiting = pool.request({ type: 'who' }, { waitForReady: true });
  warming.setReady(true);
  await pool.checkHealth();
  assert.equal((await waiting).result, 'warming');
  // None turns ready within the deadline: unavailable, naming the endpoints' states; the caller's abort ends it too.
  warming.setReady(false);
  await pool.checkHealth();
  await assert.rejects(pool.request({ type: 'who' }, { waitForReady: true, timeoutMs: 200 }), { code: 'unavailable', message: /unhealthy/ });
  const controller = new AbortController();
  const aborted = pool.request({ type: 'who' }, { waitForReady: true, signal: controller.signal });
  controller.abort();
  await assert.rejects(aborted, { code: 'unavailable' });
  // A pool with no endpoints (a stopped framework) does not wait.
  const empty = new WorkerPool({ framework: 'empty', healthIntervalMs: 0 });
  t.after(() => empty.close());
  await assert.rejects(empty.request({ type: 'who' }, { waitForReady: true, timeoutMs: 60_000 }), { code: 'unavailable', message: /no endpoints/ });
});

test('a ready worker stays in rotation after one missed health check and is down after downAfterFailures in a row', async (t) => {
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'f', capacity: 100 });
  let answerHealth = true;
  const held: Array<() => void> = [];
  server.register('who', () => Promise.resolve('w'));
  server.register('health', () => (answerHealth ? Promise.resolve({ ready: true }) : new Promise((resolve) => held.push(() => resolve({ ready: true })))));
  await server.start();
  t.after(async () => {
    for (const release of held) release();
    await server.close();
  });
  const pool = new WorkerPool({ framework: 'f', endpoints: [server.endpoint], healthIntervalMs: 0, healthTimeoutMs: 100, downAfterFailures: 2 });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), true);
  const states: string[] = [];
  pool.onEvent((e) => e.type === 'state' && states.push(e.to));
  answerHealth = false;
  const [first] = await pool.checkHealth();
  assert.equal(first!.state, 'ready', 'one missed check: still ready');
  assert.match(first!.lastError ?? '', /no reply/);
  // A check whose timer fired far too late (this process starved) is not counted: check until two have counted.
  let checks = 1;
  for (let state: string = first!.state; state === 'ready' && checks < 50; checks++) state = (await pool.checkHealth())[0]!.state;
  assert.equal(pool.stats().endpoints[0]!.state, 'down', `missed checks in a row: down, never unhealthy (after ${checks} checks)`);
  answerHealth = true;
  const [back] = await pool.checkHealth();
  assert.equal(back!.state, 'ready');
  assert.deepEqual(states, ['down', 'ready'], 'ready → down → ready, never a one-check unhealthy');
});

test('a stalled worker under steady traffic leaves the rotation: busy is no excuse once its requests time out', async (t) => {
  // A stopped process keeps its TCP connection, so only the health checks can tell. Before, a request always in
  // flight excused every missed check: the worker stayed ready and every request to it timed out, for as long as
  // the traffic lasted.
  const w = await spawnPythonWorker({ framework: 'f' });
  t.after(() => w.close());
  const pool = new WorkerPool({ framework: 'f', endpoints: [w.endpoint], healthIntervalMs: 100, healthTimeoutMs: 150, downAfterFailures: 2, timeoutMs: 1_000 });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), true);
  const stateIs = (to: string) =>
    new Promise<void>((resolve) => {
      const off = pool.onEvent((e) => e.type === 'state' && e.to === to && (off(), resolve()));
    });
  const down = stateIs('down');
  await w.kill('SIGSTOP');
  t.after(() => w.kill('SIGCONT'));
  let stop = false;
  const codes = new Set<string>();
  const traffic = (async () => {
    while (!stop && pool.isReady()) {
      await Promise.all([1, 2].map(() => pool.request({ type: 'inference', data: { state: [0, 0] } }).catch((e: { code?: string }) => void codes.add(e.code ?? '?'))));
    }
  })();
  const noLonger = new AbortController();
  const gaveUp = sleep(20_000, noLonger.signal).then(() => 'still ready after 20 s', () => 'down');
  const outcome = await Promise.race([down.then(() => 'down'), gaveUp]);
  noLonger.abort();
  assert.equal(outcome, 'down');
  stop = true;
  await traffic;
  assert.deepEqual([...codes], ['timeout']);
  // Running again: the next check brings it back.
  const ready = stateIs('ready');
  await w.kill('SIGCONT');
  await ready;
  assert.equal((await pool.request({ type: 'inference', data: { state: [0, 0] } })).endpoint, w.endpoint);
});
