// The direct path with the gateway as control plane, with real processes: a Python worker that enforces leases (a
// per-worker secret file), a gateway that issues them (frameworks.<name>.direct), and the DirectClient that sends
// straight to the worker. Asserted: the gateway's own requests still pass, a request without or with a wrong token
// is refused, an expired lease is refused and renewed, revocation (by the gateway, and by a worker restart after a
// framework stop) refuses older leases, and the worker's records of direct requests reach the gateway's metrics.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { Deadline } from '../../src/lib/abort.js';
import type { GatewayError } from '../../src/lib/errors.js';
import { signLease } from '../../src/protocol/lease-token.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { DirectClient } from '../../src/zmq/direct-client.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { startTestGateway } from '../support/gateway.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';
import { freePort } from '../support/endpoints.js';

function secretFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'paig-lease-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lerobot.secret');
  writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return file;
}

async function leaseWorker(t: TestContext, secret: string, endpoint?: string): Promise<PythonWorker> {
  const worker = await spawnPythonWorker({ framework: 'lerobot', extraArgs: ['--lease-secret-file', secret], ...(endpoint ? { endpoint } : {}) });
  t.after(() => worker.close());
  return worker;
}

const observation = () => ({ images: { cam: new Tensor('uint8', [8, 8, 3], new Uint8Array(192).fill(7)) }, state: Tensor.of(new Float32Array(14).fill(0.5)) });

function checkAction(result: unknown): void {
  const action = (result as { action: Tensor }).action;
  assert.deepEqual(action.shape, [16, 14]);
  assert.equal((action.data as Float32Array)[0], Math.fround(0.5 + Math.fround(0.01)));
}

async function setup(t: TestContext, { leaseTtlMs = 30_000 } = {}) {
  const secret = secretFile(t);
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const worker = await leaseWorker(t, secret, endpoint);
  const registry = new Registry();
  const gateway = await startTestGateway(
    t,
    { frameworks: { lerobot: { endpoints: [endpoint], timeoutMs: 5_000, direct: { secretFile: secret, leaseTtlMs, collectIntervalMs: 60_000 } } } },
    { metrics: createMetrics(registry) },
  );
  const direct = new DirectClient({ gateway: gateway.zmqEndpoint, framework: 'lerobot', timeoutMs: 5_000 });
  t.after(() => direct.close());
  return { secret, endpoint, worker, gateway, registry, direct };
}

test('through the gateway as before (its own token); straight to the worker only under a lease from the gateway', async (t) => {
  const { endpoint, gateway, direct } = await setup(t);
  const viaGateway = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 5_000 });
  t.after(() => viaGateway.close());
  checkAction((await viaGateway.request({ type: 'inference', framework: 'lerobot', data: observation() })).result);

  const bare = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => bare.close());
  await assert.rejects(bare.inference(observation()), { code: 'unauthorized' });
  const forged = signLease('not-the-secret-0123456789', { id: 'x', fw: 'lerobot', iat_ms: Date.now(), exp_ms: Date.now() + 60_000, max: 8 });
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: forged }), (err: GatewayError) => err.code === 'unauthorized' && /signature/.test(err.message));
  assert.equal((await bare.health()).ready, true, 'health needs no lease');

  checkAction((await direct.inference(observation())).result);
  assert.equal(direct.lease?.endpoint, endpoint, 'the lease names the worker');
  assert.equal(direct.lease?.framework, 'lerobot');
  // A lease for another framework is refused by this worker.
  const other = signLease('x'.repeat(32), { id: 'y', fw: 'pi0', iat_ms: Date.now(), exp_ms: Date.now() + 60_000, max: 8 });
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: other }), { code: 'unauthorized' });
  // Only the gateway may collect records or revoke.
  await assert.rejects(bare.request({ type: 'lease.metrics', data: {}, lease: direct.lease!.token }), { code: 'unauthorized' });
});

test('the worker reports direct requests and the gateway counts them with transport "direct"', async (t) => {
  const { gateway, registry, direct } = await setup(t);
  for (let i = 0; i < 5; i++) checkAction((await direct.inference(observation())).result);
  await assert.rejects(direct.request({ type: 'no_such_type', data: {} }), { code: 'bad_request' });
  const n = await gateway.leases!.collect('lerobot');
  assert.equal(n, 6);
  const text = await registry.metrics();
  const count = (outcome: string) => {
    const m = new RegExp(`gateway_requests_total\\{[^}]*framework="lerobot"[^}]*transport="direct"[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`).exec(text) ??
      new RegExp(`gateway_requests_total\\{[^}]*outcome="${outcome}"[^}]*transport="direct"[^}]*\\} (\\d+)`).exec(text);
    return m ? Number(m[1]) : undefined;
  };
  assert.ok(/transport="direct"/.test(text), 'direct requests appear in the metrics');
  assert.equal(count('ok'), 5, text.split('\n').filter((l) => l.includes('direct')).join('\n'));
  assert.equal(count('bad_request'), 1);
  assert.equal(await gateway.leases!.collect('lerobot'), 0, 'records are handed over once');
});

test('an expired lease is refused; the client renews it and goes on', async (t) => {
  const { endpoint, direct } = await setup(t, { leaseTtlMs: 300 });
  checkAction((await direct.inference(observation())).result);
  const first = direct.lease!;
  // Wait for the clock to pass the expiry (the lease says when).
  while (Date.now() <= first.expires_at * 1000 + 5) await new Promise((resolve) => setTimeout(resolve, first.expires_at * 1000 + 10 - Date.now()));
  const bare = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => bare.close());
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: first.token }), (err: GatewayError) => err.code === 'unauthorized' && /expired/.test(err.message));
  checkAction((await direct.inference(observation())).result);
  assert.notEqual(direct.lease!.lease_id, first.lease_id, 'a new lease');
});

test('revocation: by the gateway, and by a framework stop (the restarted worker refuses leases issued before it started)', async (t) => {
  const { secret, endpoint, worker, gateway, direct } = await setup(t);
  checkAction((await direct.inference(observation())).result);
  const first = direct.lease!;
  const result = await gateway.leases!.revoke('lerobot');
  assert.deepEqual(result, { workers: 1, failed: 0 });
  const bare = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => bare.close());
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: first.token }), (err: GatewayError) => err.code === 'unauthorized' && /revoked/.test(err.message));
  // The client is refused once, takes a new lease, and goes on.
  checkAction((await direct.inference(observation())).result);
  assert.equal(direct.leasesObtained, 2);
  const second = direct.lease!;

  // The framework stops (its worker goes away) and starts again on the same endpoint: the old lease is refused.
  // A starting worker allows START_SKEW_MS (1 s, lease.py) of clock difference between hosts: let the lease age past it.
  await sleep(1_100);
  await worker.close();
  await leaseWorker(t, secret, endpoint);
  const deadline = new Deadline(20_000);
  await gateway.router.registry.resolve('lerobot').pool.whenReady(deadline.signal);
  deadline.dispose();
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: second.token }), { code: 'unauthorized' });
  checkAction((await direct.inference(observation())).result);
  assert.equal(direct.leasesObtained, 3);
});

test('a lease request for a framework without a direct path is refused with a clear error', async (t) => {
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true }, lerobot: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: secretFile(t) } } }, defaultFramework: 'demo' });
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 5_000 });
  t.after(() => client.close());
  await assert.rejects(client.request({ type: 'lease', framework: 'demo', data: {} }), (err: GatewayError) => err.code === 'bad_request' && /no direct path/.test(err.message));
  await assert.rejects(client.request({ type: 'lease', framework: 'lerobot', data: {} }), { code: 'unavailable' });
});

test('TS worker: the same lease checks, and its records reach the gateway', async (t) => {
  const secret = secretFile(t);
  const { createDemoWorker } = await import('../../src/worker/demo-worker.js');
  const { readFileSync } = await import('node:fs');
  const worker = createDemoWorker({ endpoint: 'tcp://127.0.0.1:*', framework: 'tsw', leaseSecret: readFileSync(secret, 'utf8').trim() });
  const endpoint = await worker.start();
  t.after(() => worker.close());
  const registry = new Registry();
  const gateway = await startTestGateway(t, { frameworks: { tsw: { endpoints: [endpoint], timeoutMs: 5_000, direct: { secretFile: secret, collectIntervalMs: 60_000 } } } }, { metrics: createMetrics(registry) });
  const viaGateway = new WorkerClient({ endpoint: gateway.zmqEndpoint, timeoutMs: 5_000 });
  t.after(() => viaGateway.close());
  checkAction((await viaGateway.request({ type: 'inference', framework: 'tsw', data: observation() })).result);
  const bare = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => bare.close());
  await assert.rejects(bare.inference(observation()), { code: 'unauthorized' });
  const direct = new DirectClient({ gateway: gateway.zmqEndpoint, framework: 'tsw' });
  t.after(() => direct.close());
  for (let i = 0; i < 3; i++) checkAction((await direct.inference(observation())).result);
  assert.equal(await gateway.leases!.collect('tsw'), 3);
  assert.match(await registry.metrics(), /transport="direct"/);
  const lease = direct.lease!;
  await gateway.leases!.revoke('tsw');
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: lease.token }), { code: 'unauthorized' });
});

test('TS worker: a reply given later (a handler\'s promise) is recorded with its outcome, and holds its lease slot until then', async (t) => {
  const { WorkerServer } = await import('../../src/zmq/worker-server.js');
  const { gatewayLeaseToken } = await import('../../src/protocol/lease-token.js');
  const { deferred } = await import('../../src/lib/abort.js');
  const secret = 'ts-worker-lease-secret-0123456789';
  const pending: Array<ReturnType<typeof deferred<unknown>>> = [];
  const arrived: Array<() => void> = [];
  const worker = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'tsw', leaseSecret: secret })
    .register('later', () => {
      const reply = deferred<unknown>();
      pending.push(reply);
      arrived.shift()?.();
      return reply.promise;
    })
    .register('unencodable', () => ({ x: 10n }));
  const endpoint = await worker.start();
  t.after(() => worker.close());
  const client = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => client.close());
  const now = Date.now();
  const lease = signLease(secret, { id: 'l1', fw: 'tsw', iat_ms: now, exp_ms: now + 60_000, max: 1 });
  const nextArrival = () => new Promise<void>((resolve) => arrived.push(resolve));

  let came = nextArrival();
  const first = client.request({ type: 'later', data: {}, lease });
  await came;
  await assert.rejects(client.request({ type: 'later', data: {}, lease }), { code: 'overloaded' }, 'the pending reply holds the lease slot');
  pending.shift()!.resolve({ answer: 42 });
  assert.deepEqual((await first).result, { answer: 42 });
  came = nextArrival();
  const second = client.request({ type: 'later', data: {}, lease });
  await came;
  pending.shift()!.reject(new Error('the robot said no'));
  await assert.rejects(second, { code: 'worker_error' });
  await assert.rejects(client.request({ type: 'unencodable', data: {}, lease }), { code: 'worker_error' });
  const { records } = (await client.request({ type: 'lease.metrics', data: {}, lease: gatewayLeaseToken(secret, 'tsw') })).result as { records: Array<{ type: string; outcome: string; response_bytes: number }> };
  assert.deepEqual(records.map((r) => [r.type, r.outcome]), [['later', 'overloaded'], ['later', 'ok'], ['later', 'worker_error'], ['unencodable', 'worker_error']]);
  for (const r of records) assert.ok(r.response_bytes > 0);
});

test('config: direct needs a readable secret file of 16 bytes or more and the native protocol; the bridge needs ZMQ for shared memory', async (t) => {
  const { parseConfig } = await import('../../src/config.js');
  const { validateBridgeConfig } = await import('../../src/ros-bridge/config.js');
  const { presetConfig } = await import('../../src/ros-bridge/presets.js');
  const dir = mkdtempSync(join(tmpdir(), 'paig-lease-cfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'short'), 'tooshort');
  const problems = (raw: unknown) => {
    try {
      parseConfig(raw);
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.match(problems({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:9'], direct: {} } } }), /frameworks\.a\.direct\.secretFile/);
  assert.match(problems({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: join(dir, 'missing') } } } }), /frameworks\.a\.direct\.secretFile/);
  assert.match(problems({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: join(dir, 'short') } } } }), /fewer than 16 bytes/);
  assert.match(problems({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: secretFile(t), bogus: 1 } } } }), /bogus/);
  assert.equal(problems({ frameworks: { a: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: secretFile(t) } } } }), '');
  assert.throws(() => validateBridgeConfig({ ...presetConfig('omx_f'), gateway: 'http://127.0.0.1:8080', sharedMemoryDir: '/dev/shm/x' }), /sharedMemoryDir/);
  assert.throws(() => validateBridgeConfig({ ...presetConfig('omx_f'), sharedMemoryDir: 'relative' }), /sharedMemoryDir/);
});

test("a DirectClient's timeoutMs is each request's deadline to the worker (the lease's timeout only without it)", async (t) => {
  const secret = secretFile(t);
  const worker = await spawnPythonWorker({ framework: 'lerobot', delayMs: 1_500, extraArgs: ['--lease-secret-file', secret] });
  t.after(() => worker.close());
  const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000, direct: { secretFile: secret, collectIntervalMs: 60_000 } } } });
  const quick = new DirectClient({ gateway: gateway.zmqEndpoint, framework: 'lerobot', timeoutMs: 300 });
  t.after(() => quick.close());
  await assert.rejects(quick.inference(observation()), (err: GatewayError) => err.code === 'timeout' && /within 300 ms/.test(err.message));
  const patient = new DirectClient({ gateway: gateway.zmqEndpoint, framework: 'lerobot' });
  t.after(() => patient.close());
  checkAction((await patient.inference(observation())).result); // 1.5 s of compute, inside the lease's 10 s
});
