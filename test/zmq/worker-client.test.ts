import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { sleep } from '../../src/lib/abort.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import { ipcEndpoint } from '../support/endpoints.js';
import { spawnTsWorker } from '../support/ts-worker.js';

const lObservation = () => ({
  images: Object.fromEntries(['head', 'left', 'right'].map((k, n) => [k, Tensor.of(new Uint8Array(224 * 224 * 3).fill(n + 1), [224, 224, 3])])),
  state: Tensor.of(Float32Array.from({ length: 14 }, (_, i) => i)),
});

async function startServer(endpoint = 'tcp://127.0.0.1:*') {
  const server = new WorkerServer({ endpoint, framework: 'test', capacity: 512 });
  const seen: Array<{ image: Tensor; state: Tensor }> = [];
  server.register('inference', (data) => {
    const d = data as { images: Record<string, Tensor>; state: Tensor };
    seen.push({ image: d.images.left!, state: d.state });
    const action = new Float32Array(16 * 14);
    for (let k = 0; k < 16; k++) for (let j = 0; j < 14; j++) action[k * 14 + j] = d.state.data[j] as number + 0.01 * (k + 1);
    return { action: Tensor.of(action, [16, 14]) };
  });
  server.register('echo', (data) => data);
  server.register('slow', async (data, { signal }) => {
    await sleep(Number((data as { delay_ms: number }).delay_ms), signal);
    return data;
  });
  await server.start();
  return { server, seen };
}

for (const transport of ['tcp', 'ipc'] as const) {
  describe(`client and TypeScript worker over ${transport}`, () => {
    test('the L payload goes out and a 16x14 chunk comes back, as views on both sides', async (t) => {
      const { server, seen } = await startServer(transport === 'tcp' ? 'tcp://127.0.0.1:*' : ipcEndpoint(t));
      t.after(() => server.close());
      const client = new WorkerClient({ endpoint: server.endpoint });
      t.after(() => client.close());
      const reply = await client.inference(lObservation());
      const action = (reply.result as { action: Tensor }).action;
      assert.deepEqual(action.shape, [16, 14]);
      assert.ok(action.data instanceof Float32Array);
      assert.ok(Math.abs((action.data[14 * 15 + 13] as number) - (13 + 0.16)) < 1e-5);
      assert.ok(reply.timing && reply.timing.total_ms >= 0);
      // Worker side: the image arrived as a Uint8Array view over a larger received buffer region (its frame).
      assert.equal(seen[0]!.image.data.byteLength, 224 * 224 * 3);
      assert.equal(seen[0]!.image.data[0], 2);
      assert.equal(client.stats().inFlight, 0);
    });
  });
}

describe('WorkerClient', () => {
  test('many requests in flight with random delays: every reply reaches its own request', async (t) => {
    const { server } = await startServer();
    t.after(() => server.close());
    const client = new WorkerClient({ endpoint: server.endpoint, timeoutMs: 20_000 });
    t.after(() => client.close());
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const reply = await client.request({ type: 'slow', data: { i, delay_ms: Math.floor(Math.random() * 30) } });
        return (reply.result as { i: number }).i;
      }),
    );
    assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i));
    assert.equal(client.stats().unmatchedReplies, 0);
    assert.equal(client.inFlight, 0);
  });

  test('a deadline rejects with timeout; the late reply is dropped and counted, never given to another request', async (t) => {
    // A raw ROUTER worker that answers the first request 300 ms late and the others at once.
    const router = new zmq.Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:*');
    t.after(() => router.close());
    void (async () => {
      let n = 0;
      for await (const [id, delimiter, header] of router) {
        const req = decode(header!) as { request_id: string; data: unknown };
        const reply = Buffer.from(encode({ status: 'success', result: req.data, request_id: req.request_id }));
        if (n++ === 0) setTimeout(() => void router.send([id!, delimiter!, reply]).catch(() => undefined), 300);
        else await router.send([id!, delimiter!, reply]);
      }
    })();
    const client = new WorkerClient({ endpoint: router.lastEndpoint! });
    t.after(() => client.close());
    const late: string[] = [];
    client.onEvent((e) => e.type === 'late_reply' && late.push(e.requestId));
    await assert.rejects(client.request({ type: 'echo', data: { tag: 'late' } }, { timeoutMs: 100 }), { name: 'GatewayError', code: 'timeout' });
    assert.equal(client.inFlight, 0);
    const pending = client.request({ type: 'echo', data: { tag: 'next' } }, { timeoutMs: 5_000 });
    await sleep(400); // the late reply arrives while 'next' may still be waiting
    assert.deepEqual((await pending).result, { tag: 'next' });
    assert.equal(client.stats().lateReplies, 1);
    assert.equal(late.length, 1);
    assert.equal(client.stats().unmatchedReplies, 0);
    assert.equal(client.stats().timeouts, 1);
  });

  test('the worker stops work whose timeout_ms has passed and answers timeout', async (t) => {
    const { server } = await startServer();
    t.after(() => server.close());
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(server.endpoint);
    t.after(() => dealer.close());
    await dealer.send(['', Buffer.from(encode({ type: 'slow', data: { delay_ms: 5_000 }, request_id: 'r', timeout_ms: 50 }))]);
    const [, header] = await dealer.receive();
    const reply = decode(header!) as { status: string; error: { code: string }; request_id: string };
    assert.equal(reply.status, 'error');
    assert.equal(reply.error.code, 'timeout');
    assert.equal(reply.request_id, 'r');
  });

  test('an AbortSignal cancels a request', async (t) => {
    const { server } = await startServer();
    t.after(() => server.close());
    const client = new WorkerClient({ endpoint: server.endpoint });
    t.after(() => client.close());
    const controller = new AbortController();
    const p = client.request({ type: 'slow', data: { delay_ms: 500 } }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(p, { code: 'cancelled' });
    assert.equal(client.inFlight, 0);
  });

  test('worker error replies keep their code; unknown types are bad_request', async (t) => {
    const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'x' });
    server.register('boom', () => {
      throw new Error('model exploded');
    });
    await server.start();
    t.after(() => server.close());
    const client = new WorkerClient({ endpoint: server.endpoint });
    t.after(() => client.close());
    await assert.rejects(client.request({ type: 'boom' }), { code: 'worker_error', message: 'model exploded' });
    await assert.rejects(client.request({ type: 'nope' }), { code: 'bad_request', path: '/type' });
    assert.equal((await client.health()).ready, true);
  });

  test('a worker killed mid-request fails the caller within its deadline, and a restarted worker serves again', async (t) => {
    const endpoint = ipcEndpoint(t);
    const first = await spawnTsWorker({ endpoint });
    t.after(() => first.close());
    const client = new WorkerClient({ endpoint, timeoutMs: 3_000 });
    t.after(() => client.close());
    assert.deepEqual((await client.request({ type: 'echo', data: { a: 1 } })).result, { a: 1 });
    const started = performance.now();
    const inFlight = client.request({ type: 'slow', data: { delay_ms: 10_000 } }).then(
      () => ({ code: 'resolved' }),
      (e: { code: string }) => e,
    );
    await sleep(100);
    await first.kill('SIGKILL');
    const err = await inFlight;
    assert.ok(['unavailable', 'timeout'].includes(err.code), `got ${err.code}`);
    assert.ok(performance.now() - started < 3_000 + 500, 'failed within its deadline');
    assert.equal(client.inFlight, 0);

    const second = await spawnTsWorker({ endpoint });
    t.after(() => second.close());
    let reply;
    for (let attempt = 0; attempt < 50 && !reply; attempt++) {
      reply = await client.request({ type: 'echo', data: { b: 2 } }, { timeoutMs: 1_000 }).catch(() => undefined);
    }
    assert.deepEqual(reply?.result, { b: 2 });
  });

  test('a request after close rejects at once with unavailable', async () => {
    const client = new WorkerClient({ endpoint: 'tcp://127.0.0.1:9' });
    await client.close();
    await client.close(); // idempotent
    await assert.rejects(client.request({ type: 'echo' }), { code: 'unavailable' });
  });

  test('close rejects requests still in flight with cancelled after the grace period', async (t) => {
    const { server } = await startServer();
    t.after(() => server.close());
    const client = new WorkerClient({ endpoint: server.endpoint });
    const p = client.request({ type: 'slow', data: { delay_ms: 1_000 } });
    const quick = client.request({ type: 'slow', data: { delay_ms: 10 } });
    await client.close({ graceMs: 200 });
    await quick;
    await assert.rejects(p, { code: 'cancelled' });
  });

  test('no worker at the endpoint: the request times out at its deadline', async () => {
    const client = new WorkerClient({ endpoint: 'tcp://127.0.0.1:9', timeoutMs: 100 });
    try {
      await assert.rejects(client.request({ type: 'echo' }), { code: 'timeout' });
    } finally {
      await client.close();
    }
  });
});
