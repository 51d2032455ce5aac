// A framework on a remote Docker engine, over a real network path: two network namespaces joined by a veth pair
// stand for two hosts. Host B runs a private dockerd listening on tcp with TLS (certificates made here with
// openssl); the gateway runs in host A (a Node process under `ip netns exec`), names B's engine by URL, starts the
// framework's container there and reaches its worker across the veth pair with CURVE. Traffic stays inside the two
// namespaces; both are deleted afterwards (with the veth pair), as is the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeCurveKeyFiles } from '../../src/zmq/curve-keys.js';
import type { FrameworkSpec } from '../../src/docker/framework-spec.js';
import { ensureDockerAndImage, TEST_IMAGE } from '../support/docker.js';
import { HostPair } from '../support/host-pair.js';
import { loadImage, run, startEngine, stopEngine, type PrivateEngine } from '../support/private-engine.js';

const ROOT = resolve(import.meta.dirname, '../..');

test('a framework on a remote engine (tcp + TLS) in another network namespace, its worker reached over a veth pair with CURVE', { timeout: 300_000 }, async (t) => {
  ensureDockerAndImage();
  const id = randomBytes(3).toString('hex');
  const hosts = new HostPair(id);
  const { nsA, nsB, ipB } = hosts;
  const dir = await mkdtemp('/tmp/pag-remote-');
  const made: { engine?: PrivateEngine } = {};
  t.after(async () => {
    if (made.engine) assert.deepEqual(await stopEngine(made.engine), [], 'the engine of host B is gone');
    assert.deepEqual(await hosts.remove(), [], 'no namespace or veth of the test is left');
    await rm(dir, { recursive: true, force: true });
  });

  // Two "hosts" joined by a veth pair.
  await hosts.create();

  // TLS: a CA, the engine's certificate for its address, the gateway's client certificate.
  const pki = join(dir, 'pki');
  await run('mkdir', ['-p', pki]);
  const ssl = (...args: string[]) => run('openssl', args);
  await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=pag-test-ca', '-keyout', join(pki, 'ca-key.pem'), '-out', join(pki, 'ca.pem'));
  for (const [name, ext] of [['server', `subjectAltName=IP:${ipB}\nextendedKeyUsage=serverAuth`], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=pag-test-${name}`, '-keyout', join(pki, `${name}-key.pem`), '-out', join(pki, `${name}.csr`));
    await run('sh', ['-c', `printf '${ext}\\n' > ${join(pki, `${name}.ext`)}`]);
    await ssl('x509', '-req', '-in', join(pki, `${name}.csr`), '-CA', join(pki, 'ca.pem'), '-CAkey', join(pki, 'ca-key.pem'), '-CAcreateserial', '-days', '1', '-extfile', join(pki, `${name}.ext`), '-out', join(pki, `${name}.pem`));
  }

  // Host B's engine: API on its veth address with TLS (and a unix socket for loading the image).
  made.engine = await startEngine({
    dir: join(dir, 'engine'),
    prefix: HostPair.enter(nsB),
    extraArgs: [`--host=tcp://${ipB}:2376`, '--tlsverify', `--tlscacert=${join(pki, 'ca.pem')}`, `--tlscert=${join(pki, 'server.pem')}`, `--tlskey=${join(pki, 'server-key.pem')}`],
  });
  await loadImage(made.engine);

  // CURVE between the hosts: the worker's key (mounted into its container) and the gateway's client key.
  const keys = join(dir, 'keys');
  await run('mkdir', ['-p', keys]);
  await writeCurveKeyFiles(keys, 'worker');
  await writeCurveKeyFiles(keys, 'gateway');
  const port = randomInt(20_000, 30_000);
  const spec: FrameworkSpec = {
    name: 'remote',
    image: TEST_IMAGE,
    networkMode: 'host',
    port,
    engine: `tcp://${ipB}:2376`,
    tls: { caFile: join(pki, 'ca.pem'), certFile: join(pki, 'client.pem'), keyFile: join(pki, 'client-key.pem') },
    bindHost: ipB,
    containerName: `pag-test-remote-${id}`,
    env: { WORKER_CURVE_SECRET_KEY_FILE: '/keys/worker.key' },
    mounts: [{ hostPath: keys, containerPath: '/keys', readOnly: true }],
    readyTimeoutMs: 60_000,
    stopTimeoutS: 2,
  };
  const settings = { spec, curve: { serverPublicKeyFile: join(keys, 'worker.pub'), secretKeyFile: join(keys, 'gateway.key') } };
  const out = await run('ip', ['netns', 'exec', nsA, process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/remote-engine-client.ts'), JSON.stringify(settings)]);
  const result = JSON.parse(out.split('\n').pop()!) as { start?: number; inference?: number[]; endpoints?: string[]; containers?: string[]; stop?: number; error?: string };
  t.diagnostic(`gateway in ${nsA}: ${JSON.stringify(result)}`);
  assert.equal(result.error, undefined);
  assert.equal(result.start, 200, 'the framework started on the remote engine');
  assert.deepEqual(result.inference, [200, 200, 200, 200, 200], 'inference crossed the veth pair (CURVE)');
  assert.deepEqual(result.endpoints, [`tcp://${ipB}:${port}`], "the gateway reaches the worker at host B's address");
  assert.ok(result.containers?.some((c) => c.startsWith(`pag-test-remote-${id}:`)), `the container is listed from the remote engine: ${String(result.containers)}`);
  assert.equal(result.stop, 200);
  // The container is on B's engine, not on the shared one.
  const remote = await made.engine.cli('ps', '-a', '--format', '{{.Names}} {{.Status}}');
  assert.match(remote, new RegExp(`pag-test-remote-${id} Exited`));
});
