// The peer frameworks run on the same pool core as native workers (src/zmq/endpoint-pool.ts), so they have its
// features too, which the peer pools lacked before: an inference whose GR00T server dies mid-request is sent again to
// the framework's other server within its deadline (counted in gateway_pool_retries_total), and an openpi request with
// `waitForReady` waits for a server that comes up instead of failing at once. Real peer servers (test/peers/*.py), the
// gateway's real ZMQ door and the real websocket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createOpenpiPool } from '../../src/backends/openpi-pool.js';
import { Deadline } from '../../src/lib/abort.js';
import { DEFAULT_OUTBOUND } from '../../src/protocol/outbound-mapping.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import type { PoolEvent } from '../../src/zmq/types.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { startTestGateway } from '../support/gateway.js';
import { startGrootServer, startOpenpiServer, type PeerServer } from '../support/peer-servers.js';

/** Both test servers' policy: step k of the chunk is the state plus 0.01 (k + 1). */
const expected = (s: readonly number[], horizon: number) => Array.from({ length: horizon }, (_, k) => s.map((x) => Math.fround(Math.fround(x) + Math.fround(0.01 * (k + 1)))));
const state = (seed: number, dof: number) => Array.from({ length: dof }, (_, j) => Math.fround(seed + j / 8));
const image = () => new Tensor('uint8', [4, 6, 3], new Uint8Array(4 * 6 * 3).fill(7));

test('GR00T: an inference whose server dies mid-request is answered by the framework\'s other server, and the retry is counted', async (t) => {
  await using a = await startGrootServer();
  await using b = await startGrootServer();
  const servers: Record<string, PeerServer> = { [`tcp://127.0.0.1:${a.port}`]: a, [`tcp://127.0.0.1:${b.port}`]: b };
  const gateway = await startTestGateway(t, { frameworks: { gr00t: { protocol: 'groot', endpoints: Object.keys(servers), timeoutMs: 8_000, outbound: { state: { 'state.left_arm': 7, 'state.left_hand': 6 } } } } }, { metrics: createMetrics(new Registry()) });
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 10_000 });
  t.after(() => client.close());
  const pool = gateway.router.registry.resolve('gr00t').pool;

  // Both servers ready (announced by the pool's state events).
  const allReady = () => pool.stats().endpoints.every((e) => e.state === 'ready');
  if (!allReady()) {
    const deadline = new Deadline(15_000);
    try {
      await new Promise<void>((resolve, reject) => {
        const stop = pool.onEvent(() => allReady() && (stop(), resolve()));
        deadline.signal.addEventListener('abort', () => (stop(), reject(new Error(`not both ready: ${JSON.stringify(pool.stats().endpoints)}`))), { once: true });
      });
    } finally {
      deadline.dispose();
    }
  }

  const retries: PoolEvent[] = [];
  pool.onEvent((e) => e.type === 'retry' && retries.push(e));
  // Whichever server the pool chooses prints the request; that one is killed while it holds it.
  const chosen = Promise.race(Object.entries(servers).map(([endpoint, server]) => server.nextLine(/^REQUEST get_action/).then(() => endpoint)));
  chosen.catch(() => undefined); // the other server's line never comes; it rejects when that server exits
  const s = state(0.75, 13);
  const data = { images: { ego_view: image() }, state: Tensor.of(new Float32Array(s)), instruction: 'pick up the cup', delay_s: 0.3 };
  const pending = client.request({ type: 'inference', data, framework: 'gr00t' });
  const killed = await chosen;
  await servers[killed]!.kill();

  const reply = await pending;
  assert.deepEqual((reply.result as { action: Tensor }).action.toNested(), expected(s, 16));
  assert.deepEqual(
    retries.map((e) => e.type === 'retry' && [e.endpoint, e.code]),
    [[killed, 'unavailable']],
    'one retry, away from the killed server',
  );
  const metrics = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  assert.match(metrics, /^gateway_pool_retries_total\{[^}]*framework="gr00t"[^}]*code="unavailable"[^}]*\} 1$/m);
});

test('openpi: with waitForReady a request waits within its deadline for a server that comes up; without, unavailable at once', async (t) => {
  // A free port for the server that is not there yet: a server bound once, then stopped.
  const probe = await startOpenpiServer();
  const port = probe.port;
  await probe.close();
  const pool = createOpenpiPool({ framework: 'pi', endpoints: [`ws://127.0.0.1:${port}`], healthIntervalMs: 100, timeoutMs: 4_000, outbound: DEFAULT_OUTBOUND.openpi });
  t.after(() => pool.close());
  await pool.start();
  assert.equal(pool.isReady(), false);
  const s = state(1.5, 8);
  const req = { type: 'inference', data: { images: { image: image() }, state: Tensor.of(new Float32Array(s)), instruction: 'fold the towel' } } as const;
  await assert.rejects(pool.request(req), { code: 'unavailable', message: /no ready openpi server/ });

  const waiting = pool.request(req, { waitForReady: true, timeoutMs: 20_000 });
  const server = await startOpenpiServer(port);
  t.after(() => server.close());
  const reply = await waiting;
  assert.deepEqual((reply.result as { action: Tensor }).action.toNested(), expected(s, 10));
  assert.equal(reply.endpoint, `ws://127.0.0.1:${port}`);
});
