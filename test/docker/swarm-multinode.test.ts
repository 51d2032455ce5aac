// A framework on a two-node Docker Swarm, over a real network path: two network namespaces joined by a veth pair
// stand for two hosts, each with a private dockerd; A is the swarm manager (advertising its veth address), B joins
// as a worker. The gateway runs in A (a Node process under `ip netns exec`, test/fixtures/swarm-multinode-client.ts)
// on A's engine: a framework constrained to worker nodes runs its task on B and is reached at B's address with
// CURVE; a framework with two replicas and no constraint runs one task on each node and both serve. Tasks on B are
// not in A's container events: the launcher learns them by listing the service's tasks. Traffic stays inside the two
// namespaces; the swarm is left, the engines stopped, the namespaces (with the veth pair and the engines' bridges)
// deleted, also on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeCurveKeyFiles } from '../../src/zmq/curve-keys.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import { ensureDockerAndImage, TEST_IMAGE } from '../support/docker.js';
import { HostPair } from '../support/host-pair.js';
import { loadImage, run, startEngine, stopEngine, type PrivateEngine } from '../support/private-engine.js';

const ROOT = resolve(import.meta.dirname, '../..');

interface Phase {
  up?: string;
  start?: number;
  startMs?: number;
  startBody?: string;
  hosts?: string[];
  endpoints?: string[];
  failures?: string[];
  servedBy?: string[];
  nodes?: string[];
  ps?: string[];
  /** `ps --json`'s tasks of the framework: their nodes. */
  psTaskNodes?: string[];
  down?: number;
  left?: number;
}

test('a two-node swarm in two network namespaces: a task placed on the worker node served over CURVE at its address, two replicas on both nodes both serve, all removed', { timeout: 240_000 }, async (t) => {
  ensureDockerAndImage();
  const id = randomBytes(3).toString('hex');
  const hosts = new HostPair(id, `10.213.${randomInt(0, 255)}`);
  const { nsA, nsB, ipA, ipB } = hosts;
  const dir = await mkdtemp('/tmp/pag-mswarm-');
  const made: { engines: PrivateEngine[] } = { engines: [] };
  t.after(async () => {
    // The worker first (it leaves the swarm while the manager still answers), then the manager.
    for (const engine of made.engines.reverse()) assert.deepEqual(await stopEngine(engine), [], `the engine in ${engine.dir} is gone`);
    assert.deepEqual(await hosts.remove(), [], 'no namespace or veth of the test is left');
    await rm(dir, { recursive: true, force: true });
  });

  // Two "hosts" joined by a veth pair.
  await hosts.create();

  // One engine per host (their bridges are made inside their namespace), both with the worker image.
  // Both started before either failure is thrown, so the clean-up stops whichever did start; the manager first in
  // the list, so the worker is stopped first.
  const starts = await Promise.allSettled([nsA, nsB].map((ns) => startEngine({ dir: join(dir, ns), prefix: HostPair.enter(ns) })));
  for (const s of starts) if (s.status === 'fulfilled') made.engines.push(s.value);
  for (const s of starts) if (s.status === 'rejected') throw s.reason;
  const [engineA, engineB] = made.engines;
  await Promise.all([loadImage(engineA!), loadImage(engineB!)]);
  // Each engine's gateway bridge on a subnet of the test's own range (the default would take one from 172.16/12).
  await Promise.all(
    [engineA!, engineB!].map((engine, i) =>
      engine.cli('network', 'create', '--driver', 'bridge', '--subnet', `10.214.${randomInt(0, 255)}.${i * 128}/25`, '-o', 'com.docker.network.bridge.enable_icc=false', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', 'docker_gwbridge'),
    ),
  );
  await engineA!.cli('swarm', 'init', '--advertise-addr', ipA, '--listen-addr', `${ipA}:2377`, '--default-addr-pool', '10.215.0.0/16');
  const token = await engineA!.cli('swarm', 'join-token', '-q', 'worker');
  await engineB!.cli('swarm', 'join', '--token', token, '--advertise-addr', ipB, '--listen-addr', `${ipB}:2377`, `${ipA}:2377`);
  const nodes = await engineA!.cli('node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}');
  t.diagnostic(`nodes:\n${nodes}`);

  // CURVE between the hosts: the worker's key and allowed clients (in its argv: Swarm's health probe uses the key).
  const keys = join(dir, 'keys');
  await mkdir(join(keys, 'clients'), { recursive: true });
  await writeCurveKeyFiles(keys, 'worker');
  await writeCurveKeyFiles(keys, 'gateway');
  await copyFile(join(keys, 'gateway.pub'), join(keys, 'clients', 'gateway.pub'));
  const base = randomInt(20_000, 30_000);
  const common = {
    image: TEST_IMAGE,
    networkMode: 'host',
    mode: 'service',
    command: ['python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}', '--framework', '{framework}', '--policy', 'demo', '--curve-secret-key-file', '/keys/worker.key', '--curve-clients-dir', '/keys/clients'],
    mounts: [{ hostPath: keys, containerPath: '/keys', readOnly: true }],
    readyTimeoutMs: 60_000,
    stopTimeoutS: 2,
  } as const;
  const specs: FrameworkSpec[] = [
    { ...common, name: 'pinned', port: base, replicas: 1, constraints: ['node.role==worker'], labels: { 'pag-test': id } },
    { ...common, name: 'spread', port: base + 10, replicas: 2, labels: { 'pag-test': id } },
  ];
  const settings = { socket: engineA!.socket, specs, curve: { serverPublicKeyFile: join(keys, 'worker.pub'), secretKeyFile: join(keys, 'gateway.key') } };
  const out = await run('ip', ['netns', 'exec', nsA, process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/swarm-multinode-client.ts'), JSON.stringify(settings)]);
  const result = JSON.parse(out.split('\n').pop()!) as { pinned?: Phase; spread?: Phase; error?: string; log?: string[] };
  t.diagnostic(`gateway in ${nsA}: ${JSON.stringify(result)}`);
  assert.equal(result.error, undefined);

  // Placed by its constraint on B, reached at B's address (the node's swarm address) across the veth pair.
  const pinned = result.pinned!;
  assert.equal(pinned.up, `tcp://${ipB}:${base}`, 'up (the CLI) deployed the service and found its task on B');
  assert.equal(pinned.start, 200, `pinned started: ${pinned.startBody}`);
  assert.deepEqual(pinned.nodes, [ipB], 'the task of a worker-only service runs on node B');
  assert.deepEqual(pinned.hosts, [ipB], "the pool's worker is labelled with B's address");
  assert.deepEqual(pinned.endpoints, [`tcp://${ipB}:${base}`]);
  assert.deepEqual(pinned.failures, [], 'inference crossed the veth pair (CURVE)');
  assert.deepEqual(pinned.servedBy, [ipB]);
  assert.ok(pinned.ps?.some((l) => /physical-ai-gateway-pinned\.1\s+(running|starting)\s/.test(l) && l.includes(`tcp://${ipB}:${base}`)), `ps shows the task on B:\n${pinned.ps?.join('\n')}`);
  assert.deepEqual(pinned.psTaskNodes, [ipB], 'ps --json lists the task with node B');
  assert.equal(pinned.down, 1, 'down removed the service');
  assert.equal(pinned.left, 0);

  // Two replicas, no constraint: one task per node (Swarm spreads them), both serve.
  const spread = result.spread!;
  assert.equal(spread.start, 200, `spread started: ${spread.startBody}`);
  assert.deepEqual(spread.nodes, [ipA, ipB].sort(), 'one task on each node');
  assert.deepEqual(spread.hosts, [ipA, ipB].sort(), 'the pool has a worker on each host');
  assert.deepEqual(spread.failures, []);
  assert.deepEqual(spread.servedBy, [ipA, ipB].sort(), 'requests were served on both hosts (gateway_worker_requests_total by host)');
  for (const ip of [ipA, ipB]) assert.ok(spread.ps?.some((l) => /physical-ai-gateway-spread\.\d\s+(running|starting)\s/.test(l) && l.includes(ip)), `ps shows a task on ${ip}:\n${spread.ps?.join('\n')}`);
  assert.deepEqual(spread.psTaskNodes, [ipA, ipB].sort(), 'ps --json lists a task on each node');
  assert.equal(spread.down, 1);
  assert.equal(spread.left, 0);
});
