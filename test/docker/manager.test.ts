// DockerManager against the real engine: images, labelled lifecycle, exec, memory limits, stats, events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerEvent, ProgressEvent } from '../../src/docker/docker-manager.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import { LABEL_FRAMEWORK, LABEL_MANAGED } from '../../src/docker/framework-spec.js';
import { BASE_IMAGE, TEST_IMAGE, dockerCli, ensureDockerAndImage, runLabels, testManager, uniqueName } from '../support/docker.js';

const MiB = 1024 * 1024;
const SLEEPER = ['sleep', '3600'];

test('engine answers; the test images are listed', async (t) => {
  const manager = testManager(t);
  await manager.ping();
  const v = await manager.version();
  assert.match(v.apiVersion, /^1\.\d+$/);
  assert.ok((await manager.runtimes()).includes('runc'));
  const images = await manager.listImages({ reference: 'physical-ai-gateway/*' });
  const tags = images.flatMap((i) => i.tags);
  assert.ok(tags.includes(TEST_IMAGE), `listImages: ${tags.join(', ')}`);
  assert.ok(tags.includes(BASE_IMAGE));
});

test('no engine at the socket: a clear unavailable error', async () => {
  const manager = new DockerManager({ docker: { socketPath: '/tmp/pag-no-such-docker.sock' } });
  await assert.rejects(manager.ping(), (err: Error & { code?: string; reason?: string }) => {
    assert.equal(err.code, 'unavailable');
    assert.equal(err.reason, 'no_engine');
    assert.match(err.message, /no Docker engine answers at \/tmp\/pag-no-such-docker\.sock/);
    return true;
  });
  await manager.close();
});

test('create, start, stop, remove: labelled, idempotent', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('life');
  const id = await manager.createContainer({ name, image: TEST_IMAGE, cmd: SLEEPER, framework: 'demo', labels: runLabels() });
  const info = await manager.inspect(name);
  assert.equal(info?.Config.Labels[LABEL_MANAGED], 'true');
  assert.equal(info?.Config.Labels[LABEL_FRAMEWORK], 'demo');
  assert.equal(info?.HostConfig.NetworkMode, 'none');
  assert.equal(await manager.createContainer({ name, image: TEST_IMAGE, cmd: SLEEPER, labels: runLabels() }), id, 'creating it again returns the same container');

  await manager.start(name);
  await manager.start(name); // already running: no-op
  assert.equal((await manager.inspect(id))?.State.Running, true);
  const listed = await manager.listContainers({ framework: 'demo' });
  assert.ok(listed.some((c) => c.id === id && c.state === 'running' && c.name === name));

  await manager.stop(name, { timeoutS: 2 });
  assert.equal((await manager.inspect(id))?.State.Running, false);
  await manager.stop(name); // already stopped: no-op
  await manager.remove(name);
  assert.equal(await manager.inspect(id), undefined);
  await manager.remove(name); // gone: not an error
});

test('a container that is not ours is never touched', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('foreign');
  await dockerCli('run', '-d', '--name', name, '--network', 'none', '--init', TEST_IMAGE, ...SLEEPER);
  t.after(() => dockerCli('rm', '-f', name).then(() => undefined));
  await assert.rejects(manager.createContainer({ name, image: TEST_IMAGE, labels: runLabels() }), { code: 'unavailable', reason: 'not_ours' });
  await assert.rejects(manager.stop(name), { reason: 'not_ours' });
  await assert.rejects(manager.remove(name), { reason: 'not_ours' });
  await assert.rejects(manager.exec(name, ['true']), { reason: 'not_ours' });
  await assert.rejects(manager.setMemoryLimit(name, 64 * MiB), { reason: 'not_ours' });

  // clean-up of ours: only labelled containers go
  const mine = uniqueName('mine');
  await manager.createContainer({ name: mine, image: TEST_IMAGE, cmd: SLEEPER, labels: runLabels() });
  const removed = await manager.removeAllOurs({ labels: [`physical-ai-gateway.test-run=${runLabels()['physical-ai-gateway.test-run']}`] });
  assert.ok(removed >= 1);
  assert.equal(await manager.inspect(mine), undefined);
  const foreign = await manager.inspect(name);
  assert.equal(foreign?.State.Running, true, 'the foreign container still runs');
  assert.equal(DockerManager.isOurs(foreign), false);
});

test('memory limit at create and live; stats report it', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('mem');
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: SLEEPER, memoryBytes: 64 * MiB, nanoCpus: 500_000_000, labels: runLabels() });
  assert.equal((await manager.inspect(name))?.HostConfig.Memory, 64 * MiB);
  assert.equal((await manager.inspect(name))?.HostConfig.NanoCpus, 500_000_000);
  await manager.start(name);
  await manager.setMemoryLimit(name, 96 * MiB);
  assert.equal((await manager.inspect(name))?.HostConfig.Memory, 96 * MiB);

  const sample = await manager.stats(name);
  assert.equal(sample.memoryLimitBytes, 96 * MiB);
  assert.ok(sample.memoryUsedBytes > 0);
  assert.equal(typeof sample.cpuPercent, 'number');

  const ac = new AbortController();
  const samples = [];
  for await (const s of manager.statsStream(name, { signal: ac.signal })) {
    samples.push(s);
    if (samples.length === 2) ac.abort();
  }
  assert.equal(samples.length, 2);
  assert.equal(samples[1]!.memoryLimitBytes, 96 * MiB);
  assert.ok(samples[1]!.cpuPercent !== undefined && samples[1]!.cpuPercent >= 0);

  // No limit: 0 (Docker itself reports the host's memory there).
  const unlimited = uniqueName('nomem');
  await manager.createContainer({ name: unlimited, image: TEST_IMAGE, cmd: SLEEPER, labels: runLabels() });
  await manager.start(unlimited);
  assert.equal((await manager.stats(unlimited)).memoryLimitBytes, 0);
});

test('exec: argv, shell only when asked, exit codes, missing binary is 126', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('exec');
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: SLEEPER, labels: runLabels() });
  await manager.start(name);

  const ok = await manager.exec(name, ['python3', '-c', 'import sys; print("out"); print("err", file=sys.stderr)']);
  assert.deepEqual(ok, { exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
  const argv = await manager.exec(name, ['echo', '$HOME;', 'exit 3']);
  assert.deepEqual([argv.exitCode, argv.stdout], [0, '$HOME; exit 3\n'], 'argv is not interpreted by a shell');
  const seven = await manager.exec(name, { shell: 'echo about to fail; exit 7' });
  assert.equal(seven.exitCode, 7);
  assert.equal(seven.stdout, 'about to fail\n');
  const missing = await manager.exec(name, ['no-such-binary-xyz']);
  assert.equal(missing.exitCode, 126);
  assert.match(missing.stderr, /no-such-binary-xyz/);
  assert.match(missing.stderr, /executable file not found/);
});

test('logs tail and the container address', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('logs');
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: ['sh', '-c', 'for i in 1 2 3 4; do echo line$i; done; echo oops >&2; sleep 3600'], labels: runLabels() });
  await manager.start(name);
  const lines = await (async () => {
    for (let i = 0; i < 50; i++) {
      const l = await manager.logs(name, { tail: 100 });
      if (l.length >= 5) return l;
      await new Promise((r) => setTimeout(r, 100));
    }
    return manager.logs(name, { tail: 100 });
  })();
  assert.deepEqual(lines.filter((l) => l.startsWith('line')), ['line1', 'line2', 'line3', 'line4']);
  assert.ok(lines.includes('oops'));
  assert.equal((await manager.logs(name, { tail: 1 })).length, 1);
  assert.equal(await manager.getIpAddress(name), undefined, 'network none: no address');

  const host = uniqueName('hostnet');
  await manager.createContainer({ name: host, image: TEST_IMAGE, cmd: SLEEPER, networkMode: 'host', labels: runLabels() });
  assert.equal(await manager.getIpAddress(host), '127.0.0.1');
});

test('a container killed from outside shows up in the events stream', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('kill');
  const ac = new AbortController();
  t.after(() => ac.abort());
  const events = await manager.events({ signal: ac.signal });
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: SLEEPER, framework: 'victim', labels: runLabels() });
  await manager.start(name);
  await dockerCli('kill', name);
  const seen: ContainerEvent[] = [];
  for await (const e of events) {
    if (e.name !== name) continue;
    seen.push(e);
    if (e.type === 'die') break;
  }
  assert.deepEqual(seen.map((e) => e.type), ['start', 'kill', 'die']);
  const die = seen.at(-1)!;
  assert.equal(die.exitCode, 137);
  assert.equal(die.framework, 'victim');
  assert.equal(seen[1]!.signal, '9');
});

test('missing image: the error says how to build it', async (t) => {
  const manager = testManager(t);
  await assert.rejects(
    manager.createContainer({ name: uniqueName('noimg'), image: 'physical-ai-gateway/no-such-image:local', framework: 'lerobot', labels: runLabels() }),
    (err: Error & { code?: string; reason?: string }) => {
      assert.equal(err.code, 'unavailable');
      assert.equal(err.reason, 'image_missing');
      assert.match(err.message, /docker build -t physical-ai-gateway\/no-such-image:local -f docker\/lerobot\/Dockerfile docker/);
      return true;
    },
  );
});

test('GPU request without an NVIDIA runtime fails with a clear error', async (t) => {
  const manager = testManager(t);
  const name = uniqueName('gpu');
  await manager.createContainer({ name, image: TEST_IMAGE, cmd: ['true'], gpus: 'all', labels: runLabels() });
  await assert.rejects(manager.start(name), (err: Error & { code?: string; reason?: string }) => {
    assert.equal(err.code, 'unavailable');
    assert.equal(err.reason, 'gpu_unavailable');
    assert.match(err.message, /requests GPUs but this Docker engine has no NVIDIA GPU support/);
    assert.match(err.message, /nvidia-container-toolkit/);
    return true;
  });
  await assert.rejects(manager.createContainer({ name: uniqueName('jetson'), image: TEST_IMAGE, cmd: ['true'], runtime: 'nvidia', labels: runLabels() }), {
    reason: 'runtime_unavailable',
  });
});

test('build an image offline with progress; pull fails fast without a registry', async (t) => {
  const manager = testManager(t);
  ensureDockerAndImage();
  const ctx = await mkdtemp(join(tmpdir(), 'pag-build-'));
  const tag = `physical-ai-gateway/test-build:${uniqueName('b')}`;
  t.after(async () => {
    await manager.removeImage(tag, { force: true });
    await rm(ctx, { recursive: true, force: true });
  });
  await writeFile(join(ctx, 'hello.py'), 'print("hello from the built image")\n');
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY hello.py /app/\nLABEL test.label=yes\nCMD ["python3", "/app/hello.py"]\n`);
  const progress: ProgressEvent[] = [];
  const built = await manager.buildImage({ contextDir: ctx, tag, onProgress: (e) => progress.push(e) });
  assert.match(built.imageId, /^sha256:/);
  assert.deepEqual(progress.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step), [1, 2, 3, 4]);
  assert.equal((await manager.inspectImage(tag))?.labels['test.label'], 'yes');

  const bad = await mkdtemp(join(tmpdir(), 'pag-build-bad-'));
  t.after(() => rm(bad, { recursive: true, force: true }));
  await writeFile(join(bad, 'Dockerfile'), `FROM ${BASE_IMAGE}\nRUN exit 3\n`);
  await assert.rejects(manager.buildImage({ contextDir: bad, tag: `${tag}-bad` }), { reason: 'build_failed' });

  // a registry on 127.0.0.1 where nothing listens: refused at once (never Docker Hub)
  const layers: ProgressEvent[] = [];
  await assert.rejects(manager.pullImage('127.0.0.1:9/physical-ai-gateway/nothing:latest', { onProgress: (e) => layers.push(e) }), (err: Error & { reason?: string }) => {
    assert.equal(err.reason, 'pull_failed');
    assert.match(err.message, /127\.0\.0\.1:9/);
    return true;
  });
});
