// Same-host shared memory, end to end with real processes: the TypeScript client's arena writes tensors into slot
// files, the gateway forwards only descriptors, the Python worker reads them as numpy views on the mapped files and
// answers through the client's reply area. Every reply is checked byte for byte (sha256 of what the worker saw and
// the echoed image); refusals (stale generation, another client's slot, a wrong key), the fall-back to frames, and
// clean-up after SIGKILL of the client, the worker and the gateway are asserted by behaviour, never by timing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config.js';
import type { GatewayError } from '../../src/lib/errors.js';
import { ShmTensorRef } from '../../src/protocol/shm-descriptor.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { ShmArena, type ShmArenaOptions } from '../../src/shm/shm-arena.js';
import { sweepRoot } from '../../src/shm/shm-root.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { WorkerServer } from '../../src/zmq/worker-server.js';
import { startTestGateway } from '../support/gateway.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';

const PROBE_DIR = fileURLToPath(new URL('.', import.meta.url));

/** A fresh shared-memory root on tmpfs (removed after the test). */
function shmRoot(t: TestContext): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'paig-shm-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function shmWorker(t: TestContext, dir: string | undefined, extra: Partial<Parameters<typeof spawnPythonWorker>[0]> = {}): Promise<PythonWorker> {
  const worker = await spawnPythonWorker({
    pythonPath: [PROBE_DIR],
    handlers: { digest: 'shm_probe:digest', hold: 'shm_probe:hold' },
    extraArgs: dir ? ['--shm-dir', dir] : [],
    ...extra,
  });
  t.after(() => worker.close());
  return worker;
}

function arena(t: TestContext, dir: string, opts: ShmArenaOptions = {}): ShmArena {
  const a = new ShmArena({ dir, replyBytes: 1 << 20, ...opts });
  t.after(() => a.close());
  return a;
}

function observation(seed: number) {
  const image = (n: number) => new Tensor('uint8', [224, 224, 3], new Uint8Array(randomBytes(224 * 224 * 3 + n).buffer, n, 224 * 224 * 3).slice());
  const state = new Float32Array(14).map((_, i) => seed + i / 10);
  return { images: { cam_high: image(0), cam_wrist: image(1) }, state: Tensor.of(state), instruction: 'pick' };
}

const sha = (t: Tensor) => createHash('sha256').update(t.bytes()).digest('hex');

interface Digest {
  arrays: Record<string, { sha256: string; dtype: string; shape: number[]; mapped: boolean; writeable: boolean }>;
  action: Tensor;
  echo: Tensor;
  shm: boolean;
}

/** Checks the worker saw exactly our bytes, the action is the demo's for our state, and the echo is our first image. */
function checkDigest(result: unknown, obs: ReturnType<typeof observation>, { mapped }: { mapped: boolean }): void {
  const r = result as Digest;
  assert.equal(r.shm, mapped);
  for (const [cam, img] of Object.entries(obs.images)) {
    const a = r.arrays[`/data/images/${cam}`]!;
    assert.equal(a.sha256, sha(img), `${cam}: the worker read our bytes`);
    assert.equal(a.mapped, mapped, `${cam}: a view on the mapped slot: ${mapped}`);
    if (mapped) assert.equal(a.writeable, false, `${cam}: read-only`);
  }
  assert.ok(r.echo instanceof Tensor);
  assert.equal(sha(r.echo), sha(obs.images.cam_high), 'the echoed image came back intact');
  const action = r.action.data as Float32Array;
  assert.deepEqual(r.action.shape, [16, 14]);
  const state = obs.state.data as Float32Array;
  // The demo policy: action[k][j] = float32(state[j] + float32(0.01 * (k + 1))).
  for (let k = 0; k < 16; k++) {
    for (let j = 0; j < 14; j++) assert.equal(action[k * 14 + j], Math.fround(state[j]! + Math.fround(0.01 * (k + 1))), `action[${k}][${j}]`);
  }
}

test('client → Python worker: tensors go through shared memory, the worker gets read-only numpy views, the reply comes back the same way', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const shm = arena(t, dir, { replyMinBytes: 4096 });
  const client = new WorkerClient({ endpoint: worker.endpoint, timeoutMs: 10_000, sharedMemory: shm });
  t.after(() => client.close());
  for (let i = 0; i < 5; i++) {
    const obs = observation(i);
    const reply = await client.request({ type: 'digest', data: obs });
    assert.equal(client.sharedMemoryState, 'on');
    checkDigest(reply.result, obs, { mapped: true });
    // The echoed image came back through the reply area (a descriptor on the wire); the action chunk, under
    // replyMinBytes, as a frame.
    const wire = reply.header.result as { echo: unknown; action: unknown };
    assert.ok(wire.echo instanceof ShmTensorRef);
    assert.ok(wire.action instanceof Tensor);
  }
  assert.equal(shm.stats().slots, 1, 'one slot, reused by every request');
  assert.equal(shm.stats().free, 1, 'and given back after each');
  // Concurrency: 8 in flight get 8 slots, each reply matched to its own bytes.
  const many = Array.from({ length: 8 }, (_, i) => observation(100 + i));
  const replies = await Promise.all(many.map((obs) => client.request({ type: 'digest', data: obs })));
  replies.forEach((r, i) => checkDigest(r.result, many[i]!, { mapped: true }));
  await client.close();
  assert.equal(existsSync(shm.folder), false, 'close removes the client folder');
});

test('client → gateway → Python worker: the gateway forwards descriptors; bytes and reply stay correct', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000 } } });
  const shm = arena(t, dir);
  const client = new WorkerClient({ endpoint: gateway.zmqEndpoint!, timeoutMs: 10_000, sharedMemory: shm });
  t.after(() => client.close());
  for (let i = 0; i < 3; i++) {
    const obs = observation(i);
    const reply = await client.request({ type: 'digest', data: obs, framework: 'lerobot' });
    checkDigest(reply.result, obs, { mapped: true });
    assert.ok((reply.header.result as { echo: unknown }).echo instanceof ShmTensorRef, 'the reply crossed the gateway as a descriptor');
  }
  assert.equal(client.sharedMemoryState, 'on');
  // The request the gateway received was small: descriptors, not images.
  const inference = await client.inference({ ...observation(7) }, {});
  assert.deepEqual((inference.result as { action: Tensor }).action.shape, [16, 14]);
});

test('fall-back to frames: a worker without shared memory, or on another memory (realm), gets frames and answers correctly', async (t) => {
  const dir = shmRoot(t);
  const other = shmRoot(t);
  for (const workerDir of [undefined, other]) {
    const worker = await shmWorker(t, workerDir);
    const client = new WorkerClient({ endpoint: worker.endpoint, timeoutMs: 10_000, sharedMemory: arena(t, dir) });
    t.after(() => client.close());
    const obs = observation(1);
    const reply = await client.request({ type: 'digest', data: obs });
    assert.equal(client.sharedMemoryState, 'off', `worker shm dir ${workerDir}`);
    checkDigest(reply.result, obs, { mapped: false });
  }
});

test('a worker that cannot find the folder (another host behind the gateway) refuses at /shm and the client falls back to frames', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const shm = arena(t, dir);
  const client = new WorkerClient({ endpoint: worker.endpoint, timeoutMs: 10_000, sharedMemory: shm });
  t.after(() => client.close());
  await client.request({ type: 'digest', data: observation(0) });
  assert.equal(client.sharedMemoryState, 'on');
  // The worker's memory stops being ours: the folder vanishes (as it would be absent on another host).
  rmSync(shm.folder, { recursive: true, force: true });
  const obs = observation(3);
  const reply = await client.request({ type: 'digest', data: obs });
  assert.equal(client.sharedMemoryState, 'off');
  checkDigest(reply.result, obs, { mapped: false });
});

/** Waits until the worker's probe says a `hold` request started (it logs `shm_probe.hold` on stderr). */
async function holdStarted(worker: PythonWorker, count: number): Promise<void> {
  const seen = () => worker.stderr().split('shm_probe.hold').length - 1;
  for (let i = 0; i < 1_000 && seen() < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(seen() >= count, 'the worker started the held request');
}

/** A client without an arena, to send hand-made descriptors. */
function plainClient(t: TestContext, endpoint: string): WorkerClient {
  const c = new WorkerClient({ endpoint, timeoutMs: 10_000 });
  t.after(() => c.close());
  return c;
}

test('a stale descriptor (the slot was reused: new generation) is refused, and so is a request still running when its slot is reused', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const shm = arena(t, dir);
  shm.open();
  const first = shm.place(observation(1))!;
  first.release();
  const second = shm.place(observation(2))!; // the same slot, next generation
  t.after(() => second.release());
  const client = plainClient(t, worker.endpoint);
  await assert.rejects(client.request({ type: 'digest', data: first.data, shm: first.shm }), (err: GatewayError) => {
    assert.equal(err.code, 'bad_request');
    assert.match(err.path ?? '', /\/shm\/generation$/);
    return true;
  });
  // The current descriptors are accepted.
  const ok = await client.request({ type: 'digest', data: second.data, shm: second.shm });
  assert.equal((ok.result as Digest).shm, true);

  // A late reader: the worker holds the request while the client reuses the slot; it refuses to answer from it.
  const slow = shm.place({ ...observation(3), ms: 300 })!;
  const pending = client.request({ type: 'hold', data: slow.data, shm: slow.shm });
  await holdStarted(worker, 1);
  slow.release();
  const reuse = shm.place(observation(4))!;
  t.after(() => reuse.release());
  await assert.rejects(pending, (err: GatewayError) => {
    assert.equal(err.code, 'bad_request');
    assert.equal(err.path, '/shm');
    assert.match(err.message, /reused/);
    return true;
  });
});

test("another client's slot is refused (its folder is not the request's), and so is a wrong lease key", async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const a = arena(t, dir);
  const b = arena(t, dir);
  a.open();
  b.open();
  const mine = a.place(observation(1))!;
  const theirs = b.place(observation(2))!;
  t.after(() => (mine.release(), theirs.release()));
  const client = plainClient(t, worker.endpoint);
  // A's credentials, B's descriptors.
  await assert.rejects(client.request({ type: 'digest', data: theirs.data, shm: mine.shm }), { code: 'unauthorized' });
  // B's folder named, but without B's key.
  await assert.rejects(client.request({ type: 'digest', data: theirs.data, shm: { ...theirs.shm, key: mine.shm.key } }), { code: 'unauthorized' });
  const ok = await client.request({ type: 'digest', data: theirs.data, shm: theirs.shm });
  assert.equal((ok.result as Digest).shm, true);
});

test('the gateway passes shared-memory descriptors on without reading them (a descriptor to nowhere reaches the worker)', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const gateway = await startTestGateway(t, { frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 10_000 } } });
  const client = plainClient(t, gateway.zmqEndpoint!);
  const ghost = new ShmTensorRef('uint8', [224, 224, 3], { segment: 'nobody/0.slot', offset: 64, generation: 1 });
  // The worker (not the gateway) answers: it has no such folder.
  await assert.rejects(
    client.request({ type: 'digest', framework: 'lerobot', data: { images: { cam: ghost }, state: Tensor.of(new Float32Array(14)) }, shm: { client: 'nobody', key: 'k'.repeat(32) } }),
    (err: GatewayError) => err.code === 'bad_request' && err.path === '/shm/client',
  );
});

/** Runs a child node process that opens an arena in `dir`, places one request, prints its folder, and waits. */
function spawnArenaOwner(t: TestContext, dir: string) {
  const script = `
    import { ShmArena } from ${JSON.stringify(new URL('../../src/shm/shm-arena.ts', import.meta.url).href)};
    import { Tensor } from ${JSON.stringify(new URL('../../src/protocol/tensor.ts', import.meta.url).href)};
    const a = new ShmArena({ dir: ${JSON.stringify(dir)}, leaseMs: 60000 });
    a.open();
    a.place({ image: new Tensor('uint8', [64, 64, 3], new Uint8Array(64 * 64 * 3)) });
    process.stdout.write(a.folder + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const folder = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`arena owner exited early (${code})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, folder, exited };
}

test('SIGKILL of a client: its folder is swept as soon as its process is gone (same pid namespace), by the TS janitor and by the Python worker', async (t) => {
  const dir = shmRoot(t);
  for (const janitor of ['ts', 'python'] as const) {
    const owner = spawnArenaOwner(t, dir);
    const folder = await owner.folder;
    assert.ok(readdirSync(folder).some((f) => f.endsWith('.slot')), 'the owner made a slot');
    // A live owner is never swept, however long its lease.
    assert.deepEqual(sweepRoot(dir).removed, []);
    owner.child.kill('SIGKILL');
    await owner.exited;
    if (janitor === 'ts') {
      assert.deepEqual(sweepRoot(dir).removed, [folder.split('/').pop()]);
    } else {
      // The worker sweeps when it binds (and then at most once per lease length while it serves).
      const worker = await shmWorker(t, dir);
      await worker.close();
    }
    assert.equal(existsSync(folder), false, `${janitor}: nothing of the killed client is left`);
  }
  // An owner in another pid namespace (a container) cannot be probed: its folder goes once its lease ran out.
  const foreign = join(dir, 'c-in-a-container');
  mkdirSync(foreign, { mode: 0o700 });
  writeFileSync(join(foreign, 'lease.json'), JSON.stringify({ pid: 1, pidns: 'pid:[1]', boot: 'x', start: '1', lease_ms: 1_000, key: 'k'.repeat(32) }));
  assert.deepEqual(sweepRoot(dir, { now: Date.now() + 500 }).removed, [], 'within its lease: kept');
  assert.deepEqual(sweepRoot(dir, { now: Date.now() + 2_000 }).removed, ['c-in-a-container'], 'lease ran out: removed');
});

test('SIGKILL of the worker mid-request, or of the gateway: the request ends, the slot is given back, close leaves nothing', async (t) => {
  const dir = shmRoot(t);
  const worker = await shmWorker(t, dir);
  const shm = arena(t, dir);
  const client = new WorkerClient({ endpoint: worker.endpoint, timeoutMs: 5_000, sharedMemory: shm });
  t.after(() => client.close());
  await client.request({ type: 'digest', data: observation(0) });
  const pending = client.request({ type: 'hold', data: { ...observation(1), ms: 5_000 } });
  await holdStarted(worker, 1);
  await worker.kill('SIGKILL');
  await assert.rejects(pending, (err: GatewayError) => ['unavailable', 'timeout'].includes(err.code));
  assert.equal(shm.stats().free, shm.stats().slots, 'every slot is back');
  assert.deepEqual(readdirSync(dir).sort(), [shm.client, 'realm'].sort(), 'the worker made nothing of its own');
  await client.close();
  assert.deepEqual(readdirSync(dir), ['realm']);

  // The gateway: a separate process, killed while the client uses it through shared memory.
  const worker2 = await shmWorker(t, dir);
  const gw = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./gateway_main.ts', import.meta.url)), worker2.endpoint], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => gw.kill('SIGKILL'));
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    gw.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /zmq=(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    gw.once('exit', (code) => reject(new Error(`gateway exited early (${code})`)));
  });
  const shm2 = arena(t, dir);
  const viaGateway = new WorkerClient({ endpoint, timeoutMs: 3_000, sharedMemory: shm2 });
  t.after(() => viaGateway.close());
  const obs = observation(5);
  checkDigest((await viaGateway.request({ type: 'digest', data: obs, framework: 'lerobot' })).result, obs, { mapped: true });
  const gwExit = new Promise((resolve) => gw.once('exit', resolve));
  gw.kill('SIGKILL');
  await gwExit;
  await assert.rejects(viaGateway.request({ type: 'digest', data: observation(6), framework: 'lerobot' }), (err: GatewayError) => ['unavailable', 'timeout'].includes(err.code));
  assert.equal(shm2.stats().free, shm2.stats().slots);
  await viaGateway.close();
  assert.deepEqual(readdirSync(dir), ['realm'], 'nothing left after the gateway was killed');
});

test('a gateway with sharedMemory.dir sweeps the folders of clients that are gone (it owns none itself); a bad dir is a config error', async (t) => {
  const dir = shmRoot(t);
  const gone = join(dir, 'c-gone');
  mkdirSync(gone, { mode: 0o700 });
  writeFileSync(join(gone, 'lease.json'), JSON.stringify({ pid: 1, pidns: 'pid:[1]', boot: 'x', start: '1', lease_ms: 1_000, key: 'k'.repeat(32) }));
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(gone, 'lease.json'), past, past);
  const live = arena(t, dir);
  live.open();
  await startTestGateway(t, { sharedMemory: { dir, sweepIntervalMs: 100 } });
  assert.equal(existsSync(gone), false, 'the expired folder is gone once the gateway started');
  assert.equal(existsSync(live.folder), true, 'a live client keeps its folder');
  assert.throws(() => parseConfig({ sharedMemory: { dir: 'relative/dir' } }), (err: Error) => /sharedMemory\.dir/.test(err.message));
});

test('TS worker: descriptors are read from the slots (checked key and generation), bytes intact, through the gateway too', async (t) => {
  const dir = shmRoot(t);
  const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'tsw', sharedMemoryDir: dir });
  server.register('digest', (data) => {
    const d = data as { images: Record<string, Tensor>; state: Tensor };
    return { arrays: Object.fromEntries(Object.entries(d.images).map(([k, v]) => [`/data/images/${k}`, { sha256: sha(v), mapped: false }])), state: d.state };
  });
  const endpoint = await server.start();
  t.after(() => server.close());
  const gateway = await startTestGateway(t, { frameworks: { tsw: { endpoints: [endpoint], timeoutMs: 10_000 } } });
  for (const target of [endpoint, gateway.zmqEndpoint]) {
    const shm = arena(t, dir);
    const client = new WorkerClient({ endpoint: target, timeoutMs: 10_000, sharedMemory: shm });
    t.after(() => client.close());
    const obs = observation(9);
    const reply = await client.request({ type: 'digest', data: obs, framework: 'tsw' });
    assert.equal(client.sharedMemoryState, 'on');
    const r = reply.result as { arrays: Record<string, { sha256: string }>; state: Tensor };
    for (const [cam, img] of Object.entries(obs.images)) assert.equal(r.arrays[`/data/images/${cam}`]!.sha256, sha(img));
    assert.deepEqual([...(r.state.data as Float32Array)], [...(obs.state.data as Float32Array)]);
  }
  const shm = arena(t, dir);
  shm.open();
  const first = shm.place(observation(1))!;
  first.release();
  const second = shm.place(observation(2))!;
  t.after(() => second.release());
  const plain = plainClient(t, endpoint);
  await assert.rejects(plain.request({ type: 'digest', data: first.data, shm: first.shm }), (err: GatewayError) => err.code === 'bad_request' && /\/shm\/generation$/.test(err.path ?? ''));
  await assert.rejects(plain.request({ type: 'digest', data: second.data, shm: { ...second.shm, key: 'x'.repeat(48) } }), { code: 'unauthorized' });
});
