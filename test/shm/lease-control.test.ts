// Lease control an operator can reach, with real processes: a Python worker that enforces leases (a per-worker
// secret file), a gateway that issues them, a DirectClient holding one. Asserted: POST /v1/frameworks/{name}/leases/revoke
// (and `leases revoke` on the CLI) makes the worker refuse the old lease (`unauthorized`) while a new one works;
// GET /v1/frameworks/{name}/leases (and `leases status`) counts leases issued, revocations and records collected;
// unknown frameworks and frameworks without a direct path get 404 / 400 with their codes; on a gateway that listens
// beyond loopback both routes need the token.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { leasesCommand } from '../../src/cli/leases-command.js';
import { runProgram } from '../../src/cli/program.js';
import type { GatewayError } from '../../src/lib/errors.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { DirectClient } from '../../src/zmq/direct-client.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { freePort } from '../support/endpoints.js';
import { startTestGateway } from '../support/gateway.js';
import { spawnPythonWorker } from '../support/python-worker.js';

const TOKEN = 'lease-control-token-0123456789';

function secretFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'paig-lease-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lerobot.secret');
  writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return file;
}

const observation = () => ({ images: { cam: new Tensor('uint8', [8, 8, 3], new Uint8Array(192).fill(7)) }, state: Tensor.of(new Float32Array(14).fill(0.5)) });

function checkAction(result: unknown): void {
  assert.deepEqual((result as { action: Tensor }).action.shape, [16, 14]);
}

/** A gateway serving `lerobot` (a real Python worker with a lease secret, the direct path on) and the embedded demo. */
async function setup(t: TestContext, gatewayConfig: Record<string, unknown> = {}) {
  const secret = secretFile(t);
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const worker = await spawnPythonWorker({ framework: 'lerobot', extraArgs: ['--lease-secret-file', secret], endpoint });
  t.after(() => worker.close());
  const gateway = await startTestGateway(t, {
    frameworks: { lerobot: { endpoints: [endpoint], timeoutMs: 5_000, direct: { secretFile: secret, collectIntervalMs: 60_000 } }, demo: { embedded: true } },
    defaultFramework: 'demo',
    ...gatewayConfig,
  });
  // 0.0.0.0 opens the port on every interface; the test talks to 127.0.0.1 only.
  const httpUrl = gateway.httpUrl.replace('0.0.0.0', '127.0.0.1');
  const direct = new DirectClient({ gateway: gateway.zmqEndpoint, framework: 'lerobot', timeoutMs: 5_000 });
  t.after(() => direct.close());
  const bare = new WorkerClient({ endpoint, timeoutMs: 5_000 });
  t.after(() => bare.close());
  return { endpoint, gateway, httpUrl, direct, bare };
}

/** Runs the CLI's `leases` command in this process; resolves with its exit code and output. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runProgram([leasesCommand], ['leases', ...args], { out: (l) => out.push(l), err: (l) => err.push(l), env: {} }, 'test');
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const post = (url: string, token?: string) => fetch(url, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
const get = (url: string, token?: string) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });

test('POST .../leases/revoke: the worker refuses the old lease, the client takes a new one; GET .../leases counts it all', async (t) => {
  const { httpUrl, direct, bare } = await setup(t);
  checkAction((await direct.inference(observation())).result);
  const first = direct.lease!;

  const res = await post(`${httpUrl}/v1/frameworks/lerobot/leases/revoke`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { framework: 'lerobot', workers: 1, failed: 0 });
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: first.token }), (err: GatewayError) => err.code === 'unauthorized' && /revoked/.test(err.message));
  // The client is refused once, takes a new lease, and goes on.
  checkAction((await direct.inference(observation())).result);
  assert.notEqual(direct.lease!.lease_id, first.lease_id);
  checkAction((await bare.request({ type: 'inference', data: observation(), lease: direct.lease!.token })).result);

  const status = (await (await get(`${httpUrl}/v1/frameworks/lerobot/leases`)).json()) as Record<string, unknown> & { last_revocation: Record<string, unknown> };
  assert.equal(status.framework, 'lerobot');
  assert.equal(status.issued, 2);
  assert.equal(status.revocations, 1);
  assert.equal(status.last_revocation.reason, 'operator (HTTP)');
  assert.deepEqual([status.last_revocation.workers, status.last_revocation.failed], [1, 0]);
  assert.ok(Math.abs((status.last_revocation.at as number) - Date.now() / 1000) < 60, 'seconds since the epoch');
  assert.equal(status.lease_ttl_ms, 30_000);
  assert.equal(status.max_in_flight, 8);
});

test('the CLI: leases revoke and leases status (text and --json) against the running gateway', async (t) => {
  const { httpUrl, direct, bare, gateway } = await setup(t);
  checkAction((await direct.inference(observation())).result);
  const first = direct.lease!;

  const revoked = await cli(['revoke', 'lerobot', '--gateway', httpUrl]);
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, /^revoked the leases of lerobot: 1 workers refuse them now$/);
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: first.token }), { code: 'unauthorized' });
  checkAction((await direct.inference(observation())).result);
  assert.equal(await gateway.leases!.collect('lerobot'), 2, 'the worker recorded the two direct requests it served');

  const text = await cli(['status', 'lerobot', '--gateway', httpUrl]);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /issued 2, revocations 1/);
  assert.match(text.out, /last revocation: \d{4}-\d\d-\d\dT[^ ]+ \(operator \(HTTP\)\), 1 workers, 0 did not answer/);
  assert.match(text.out, /records of direct requests collected: 2/);
  const json = await cli(['status', 'lerobot', '--gateway', httpUrl, '--json']);
  assert.equal(json.code, 0, json.err);
  assert.equal((JSON.parse(json.out) as { records: number }).records, 2);
  const revokedJson = await cli(['revoke', 'lerobot', '--gateway', httpUrl, '--json']);
  assert.deepEqual(JSON.parse(revokedJson.out), { framework: 'lerobot', workers: 1, failed: 0 });
});

test('unknown framework: 404 unknown_framework; a framework without a direct path: 400 bad_request; the CLI says so in one line', async (t) => {
  // No worker needed: the refusals come before any worker is asked.
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true }, lerobot: { endpoints: ['tcp://127.0.0.1:9'], direct: { secretFile: secretFile(t) } } }, defaultFramework: 'demo' });
  const base = gateway.httpUrl;
  for (const [method, path] of [['POST', '/leases/revoke'], ['GET', '/leases']] as const) {
    const call = (name: string) => (method === 'POST' ? post : get)(`${base}/v1/frameworks/${name}${path}`);
    const unknown = await call('nosuch');
    assert.equal(unknown.status, 404);
    const unknownBody = (await unknown.json()) as { error: { code: string; message: string } };
    assert.equal(unknownBody.error.code, 'unknown_framework');
    assert.match(unknownBody.error.message, /configured: demo, lerobot/);
    const notDirect = await call('demo');
    assert.equal(notDirect.status, 400);
    const notDirectBody = (await notDirect.json()) as { error: { code: string; message: string } };
    assert.equal(notDirectBody.error.code, 'bad_request');
    assert.match(notDirectBody.error.message, /'demo' has no direct path \(frameworks\.demo\.direct\); frameworks with one: lerobot/);
  }
  // A stopped or unreachable worker: the revocation answers, counting it as failed (it refuses older leases when it starts).
  const res = await post(`${base}/v1/frameworks/lerobot/leases/revoke`);
  assert.deepEqual(await res.json(), { framework: 'lerobot', workers: 0, failed: 1 });

  const unknown = await cli(['revoke', 'nosuch', '--gateway', base]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /^error \(unknown_framework\): unknown framework 'nosuch'.*\nhint: list the gateway's frameworks/);
  const notDirect = await cli(['status', 'demo', '--gateway', base]);
  assert.equal(notDirect.code, 1);
  assert.match(notDirect.err, /^error \(bad_request\): framework 'demo' has no direct path/);
});

test('on a gateway that listens beyond loopback, revoking and reading the counts need the token', async (t) => {
  const { httpUrl, direct, bare } = await setup(t, { authToken: TOKEN, http: { host: '0.0.0.0', port: 0 } });
  checkAction((await direct.inference(observation())).result);
  const first = direct.lease!;
  const revokeUrl = `${httpUrl}/v1/frameworks/lerobot/leases/revoke`;
  for (const token of [undefined, 'not-the-token']) {
    const refused = await post(revokeUrl, token);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal((await get(`${httpUrl}/v1/frameworks/lerobot/leases`, token)).status, 401);
  }
  checkAction((await bare.request({ type: 'inference', data: observation(), lease: first.token })).result);
  const noToken = await cli(['revoke', 'lerobot', '--gateway', httpUrl]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.err, /^error \(unauthorized\).*\nhint: set PAIG_AUTH_TOKEN \(or --token\)/);

  const ok = await post(revokeUrl, TOKEN);
  assert.deepEqual(await ok.json(), { framework: 'lerobot', workers: 1, failed: 0 });
  await assert.rejects(bare.request({ type: 'inference', data: observation(), lease: first.token }), { code: 'unauthorized' });
  const status = await cli(['status', 'lerobot', '--gateway', httpUrl, '--token', TOKEN, '--json']);
  assert.equal(status.code, 0, status.err);
  assert.equal((JSON.parse(status.out) as { revocations: number }).revocations, 1);
});
