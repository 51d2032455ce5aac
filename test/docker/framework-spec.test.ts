// Framework specs: built-ins, validation naming every bad field at once, endpoints and the command template.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinFrameworkSpecs, endpointsFor, imageBuildHint, renderCommand, validateFrameworkSpec } from '../../src/docker/framework-spec.js';

test('built-in specs: ports, host folders of the original design, GPUs', () => {
  const specs = builtinFrameworkSpecs({ homeDir: '/home/robot' });
  assert.deepEqual(specs.map((s) => [s.name, s.port]), [['lerobot', 5555], ['groot', 5556], ['pi0', 5557]]);
  for (const s of specs) {
    assert.equal(validateFrameworkSpec(s), s);
    assert.equal(s.gpus, 'all');
    const hosts = s.mounts!.map((m) => m.hostPath);
    assert.ok(hosts.includes('/home/robot/.cache/physical_ai_tools/shared_data'));
    assert.ok(hosts.includes('/home/robot/.cache/huggingface'));
  }
  assert.ok(specs[1]!.mounts!.some((m) => m.hostPath === '/home/robot/.cache/physical_ai_tools/groot_n15'));
  assert.deepEqual(renderCommand(specs[2]!), ['python', '/app/serve_policy.py', '--endpoint', 'tcp://127.0.0.1:5557', '--framework', 'pi0']);
  const jetson = builtinFrameworkSpecs({ homeDir: '/h', jetson: true })[0]!;
  assert.equal(jetson.runtime, 'nvidia');
  assert.equal(jetson.gpus, undefined);
});

test('validation lists every bad field at once', () => {
  assert.throws(
    () => validateFrameworkSpec({ name: 'Bad Name', networkMode: 'bridge', port: 70000, gpus: 0, memoryBytes: 1024, mounts: [{ hostPath: 'rel', containerPath: '/x' }], command: 'python serve.py' }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'bad_request');
      for (const field of ['name:', 'image:', 'port:', 'gpus:', 'memoryBytes:', 'mounts[0].hostPath:', 'command:']) assert.ok(err.message.includes(field), `${field} in ${err.message}`);
      return true;
    },
  );
  assert.throws(() => validateFrameworkSpec({ name: 'x', image: 'i', networkMode: 'none' }), /ipcDir: required/);
  assert.throws(() => validateFrameworkSpec({ name: 'x', image: 'i', networkMode: 'host' }), /port: must be an integer 1\.\.65535 \(required/);
});

test('endpoints: host port, ipc socket in the mounted folder, bridge address', () => {
  assert.deepEqual(endpointsFor({ name: 'a', image: 'i', networkMode: 'host', port: 5555 }), { container: 'tcp://127.0.0.1:5555', host: 'tcp://127.0.0.1:5555' });
  assert.deepEqual(endpointsFor({ name: 'a', image: 'i', networkMode: 'none', ipcDir: '/run/pag' }), { container: 'ipc:///ipc/a.sock', host: 'ipc:///run/pag/a.sock' });
  assert.equal(endpointsFor({ name: 'a', image: 'i', networkMode: 'bridge', port: 7 }, '10.0.0.2').host, 'tcp://10.0.0.2:7');
});

test('a missing image gets a build hint that exists: docker/<name>/Dockerfile for built-ins only', () => {
  assert.equal(imageBuildHint('physical-ai-gateway/worker:local', 'demo'), 'bash scripts/build-test-images.sh');
  assert.equal(imageBuildHint('physical-ai-gateway/lerobot:local', 'lerobot'), 'docker build -t physical-ai-gateway/lerobot:local -f docker/lerobot/Dockerfile docker');
  // A framework of one's own has no docker/<name>/ folder here: the hint names the CLI's build command instead.
  const own = imageBuildHint('me/mypolicy:1', 'mypolicy');
  assert.doesNotMatch(own, /docker\/mypolicy\/Dockerfile/);
  assert.match(own, /^physical-ai-gateway build .* --tag me\/mypolicy:1/);
});
