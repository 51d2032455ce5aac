// Service-mode and remote-engine fields of a framework spec: every bad field named at once, the Swarm service spec
// made from a good one (slot ports, health probe, placement, resources, rolling update), engine URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { parseConfig } from '../../src/config.js';
import { specsFromConfig } from '../../src/docker/docker-support.js';
import { defaultKnownHosts, engineOptions } from '../../src/docker/engine-url.js';
import { endpointsFor, validateFrameworkSpec, type FrameworkSpec } from '../../src/docker/framework-spec.js';
import { healthProbeFor, serviceSpecFor, specHash } from '../../src/docker/swarm-services.js';

const base = { name: 'gr00t', image: 'img:1', networkMode: 'host', port: 5600 } as const;

test('bad service fields are all named in one error', () => {
  assert.throws(
    () => validateFrameworkSpec({ ...base, networkMode: 'none', ipcDir: '/tmp/x', mode: 'service', replicas: -1, constraints: ['gpu'], gpus: 'all', engine: 'http://x', update: { delayMs: -5 } }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'bad_request');
      for (const field of ['networkMode', 'replicas', 'constraints', 'gpus', 'engine', 'update.delayMs']) assert.match(err.message, new RegExp(`${field.replace('.', '\\.')}: `));
      return true;
    },
  );
  assert.throws(() => validateFrameworkSpec({ ...base, replicas: 2 }), /replicas: only used with mode 'service'/);
  assert.throws(() => validateFrameworkSpec({ ...base, mode: 'service', command: ['w', '--endpoint={endpoint}'] }), /whole arguments/);
  assert.throws(() => validateFrameworkSpec({ ...base, engine: 'unix:///var/run/docker.sock', tls: { caFile: '/a', certFile: '/b', keyFile: '/c' } }), /tls: only used with a tcp:\/\/ engine/);
});

test('the Swarm service spec: slot ports through env, our labels, placement, generic resources, stop-first rolling update', () => {
  const spec = validateFrameworkSpec({ ...base, mode: 'service', replicas: 3, constraints: ['node.labels.gpu == true'], genericResources: { gpu: 1 }, update: { delayMs: 2000 }, command: ['python3', 'serve.py', '--endpoint', '{endpoint}'] });
  const svc = serviceSpecFor(spec, { entrypoint: [], cmd: [] }) as unknown as {
    Name: string;
    Labels: Record<string, string>;
    Mode: { Replicated: { Replicas: number } };
    UpdateConfig: { Parallelism: number; Order: string; Delay: number };
    TaskTemplate: { ContainerSpec: { Env: string[]; Args: string[]; Command: string[] }; Placement: { Constraints: string[] }; Resources: { Reservations: { GenericResources: unknown[] } } };
  };
  assert.equal(svc.Name, 'physical-ai-gateway-gr00t');
  assert.equal(svc.Labels['physical-ai-gateway.managed'], 'true');
  assert.equal(svc.Mode.Replicated.Replicas, 3);
  assert.deepEqual(svc.UpdateConfig, { Parallelism: 1, Order: 'stop-first', Delay: 2_000_000_000, Monitor: 1_000_000_000, FailureAction: 'rollback' });
  assert.ok(svc.TaskTemplate.ContainerSpec.Env.includes('PAG_TASK_SLOT={{.Task.Slot}}'));
  assert.ok(svc.TaskTemplate.ContainerSpec.Env.includes('PAG_PORT_BASE=5600'));
  assert.deepEqual(svc.TaskTemplate.ContainerSpec.Args, ['python3', 'serve.py', '--endpoint', '{endpoint}']);
  assert.deepEqual(svc.TaskTemplate.Placement.Constraints, ['node.labels.gpu == true']);
  assert.deepEqual(svc.TaskTemplate.Resources.Reservations.GenericResources, [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 1 } }]);
  // Replicas alone do not change the hash (scaling is not a roll); the image does.
  const other = serviceSpecFor({ ...spec, replicas: 5 }, { entrypoint: [], cmd: [] });
  assert.equal(specHash(other), specHash(svc as never));
  assert.notEqual(specHash(serviceSpecFor({ ...spec, image: 'img:2' } as FrameworkSpec, { entrypoint: [], cmd: [] })), specHash(svc as never));
});

test('engine URLs: unix socket, tcp only with TLS, remote host-network endpoints', async () => {
  assert.deepEqual(await engineOptions('unix:///run/x.sock'), { socketPath: '/run/x.sock' });
  await assert.rejects(engineOptions('tcp://10.0.0.2:2376'), /needs 'tls'/);
  await assert.rejects(engineOptions('tcp://10.0.0.2:2376', { tls: { caFile: '/nonexistent/ca.pem', certFile: '/nonexistent/c.pem', keyFile: '/nonexistent/k.pem' } }), /cannot read the TLS CA \/nonexistent\/ca\.pem.*; cannot read the TLS certificate .*; cannot read the TLS key /);
  // ssh: plain HTTP through an agent whose connections are ssh sessions (test/docker/ssh-engine.test.ts runs one)
  const ssh = (await engineOptions('ssh://ops@gpu-box:2222', { sshAuthSock: '/tmp/agent.sock' })) as { protocol?: string; host?: string; port?: number; agent?: unknown };
  assert.deepEqual([ssh.protocol, ssh.host, ssh.port, ssh.agent instanceof Agent], ['http', 'gpu-box', 2222, true]);
  await assert.rejects(engineOptions('ssh://ops@gpu-box', { sshAuthSock: '' }), /^GatewayError: engine 'ssh:\/\/ops@gpu-box': no ssh agent \(SSH_AUTH_SOCK is not set\); start ssh-agent/);
  assert.throws(() => validateFrameworkSpec({ ...base, engine: 'ssh://ops@gpu-box', sshHostKey: 'abc' }), /sshHostKey: must be a host key fingerprint/);
  assert.throws(() => validateFrameworkSpec({ ...base, engine: 'tcp://gpu-box:2376', sshHostKey: `SHA256:${'A'.repeat(43)}` }), /sshHostKey: only used with an ssh:\/\/ engine/);
  // the host key check: known_hosts by default (ssh's files), a file of one's own, or an explicit opt-out
  assert.deepEqual(defaultKnownHosts().slice(1), ['/etc/ssh/ssh_known_hosts']);
  assert.match(defaultKnownHosts()[0]!, /\/\.ssh\/known_hosts$/);
  const sshSpec = { ...base, engine: 'ssh://ops@gpu-box' };
  validateFrameworkSpec({ ...sshSpec, sshKnownHosts: '/etc/pag/known_hosts' });
  validateFrameworkSpec({ ...sshSpec, sshHostKeyCheck: 'accept-any' });
  validateFrameworkSpec({ ...sshSpec, sshHostKeyCheck: 'known-hosts', sshKnownHosts: '/etc/pag/known_hosts' });
  assert.throws(() => validateFrameworkSpec({ ...sshSpec, sshKnownHosts: 'known_hosts' }), /sshKnownHosts: must be an absolute path to an OpenSSH known_hosts file/);
  assert.throws(() => validateFrameworkSpec({ ...base, engine: 'tcp://gpu-box:2376', sshKnownHosts: '/k', sshHostKeyCheck: 'accept-any' }), /sshKnownHosts: only used with an ssh:\/\/ engine.*sshHostKeyCheck: only used with an ssh:\/\/ engine/);
  assert.throws(() => validateFrameworkSpec({ ...sshSpec, sshHostKeyCheck: 'no' }), /sshHostKeyCheck: must be 'known-hosts' \(the default\) or 'accept-any'/);
  assert.throws(() => validateFrameworkSpec({ ...sshSpec, sshHostKeyCheck: 'accept-any', sshHostKey: `SHA256:${'A'.repeat(43)}` }), /sshHostKeyCheck: 'accept-any' checks no key/);
  assert.throws(() => validateFrameworkSpec({ ...sshSpec, sshKnownHosts: '/k', sshHostKey: `SHA256:${'A'.repeat(43)}` }), /sshKnownHosts: not used with sshHostKey/);
  // in a config, the known_hosts file is relative to the config file, like its key files
  const config = parseConfig({ frameworks: { far: { launcher: { ...sshSpec, sshKnownHosts: 'ssh/known_hosts' } } } }, {}, '/etc/pag/gateway.yaml');
  assert.equal(specsFromConfig(Object.values(config.frameworks), { homeDir: '/home/x' })[0]!.sshKnownHosts, '/etc/pag/ssh/known_hosts');
  const remote = validateFrameworkSpec({ ...base, engine: 'ssh://ops@gpu-box', bindHost: '0.0.0.0' });
  assert.deepEqual(endpointsFor(remote), { container: 'tcp://0.0.0.0:5600', host: 'tcp://gpu-box:5600' });
});

test('the health probe: its own port, the bind address, CURVE with the key file the argv names', () => {
  const plain = healthProbeFor(['python3', '-m', 'physical_ai_worker', '--endpoint', '{endpoint}']);
  assert.match(plain, /physical_ai_worker\.healthcheck .*--endpoint "tcp:\/\/\$h:\$\(\(PAG_PORT_BASE \+ PAG_TASK_SLOT - 1\)\)"$/);
  assert.doesNotMatch(plain, /--curve-key-file/, 'without a key in the argv the probe reads WORKER_CURVE_SECRET_KEY_FILE from the task env');
  assert.match(healthProbeFor(['w', '--curve-secret-key-file', '/keys/worker.key']), /--curve-key-file '\/keys\/worker\.key'$/);
  assert.match(healthProbeFor(['w', "--curve-secret-key-file=/k/it's.key"]), /--curve-key-file '\/k\/it'\\''s\.key'$/);
  const svc = serviceSpecFor(validateFrameworkSpec({ ...base, mode: 'service', command: ['w', '--curve-secret-key-file', '/keys/w.key'] }), { entrypoint: [], cmd: [] }) as unknown as {
    TaskTemplate: { ContainerSpec: { HealthCheck: { Test: string[]; Timeout: number; Retries: number } } };
  };
  const check = svc.TaskTemplate.ContainerSpec.HealthCheck;
  assert.equal(check.Test[0], 'CMD-SHELL');
  assert.match(check.Test[1]!, /--curve-key-file '\/keys\/w\.key'/);
  assert.ok(check.Timeout >= 10_000_000_000, 'a probe on a busy node gets 10 s before it counts as failed');
});
