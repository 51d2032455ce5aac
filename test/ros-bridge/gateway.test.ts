// The bridge against the real gateway (embedded demo worker), through its ZMQ front door and its HTTP API.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { silentLogger } from '../../src/lib/log.js';
import { validateBridgeConfig } from '../../src/ros-bridge/config.js';
import { createPolicyClient } from '../../src/ros-bridge/main.js';
import { BRIDGE_METRIC_NAMES } from '../../src/ros-bridge/metrics.js';
import { fromRosTime, type JointTrajectoryMsg } from '../../src/ros-bridge/ros-adapter.js';
import { presetConfig } from '../../src/ros-bridge/presets.js';
import { spawnPythonWorker } from '../support/python-worker.js';
import { metricValue, startRig, until } from './harness.js';

test('the bridge drives the robot through the gateway: ZMQ front door and HTTP API', async (t) => {
  const gatewayConfig = parseConfig({ frameworks: { demo: { embedded: true, embeddedDelayMs: 20 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*', logLevel: 'silent' });
  const gateway = await buildGateway(gatewayConfig, { log: silentLogger });
  t.after(() => gateway.close(0));
  for (const [name, address] of [
    ['zmq', gateway.zmqEndpoint],
    ['http', gateway.httpUrl],
  ] as const) {
    await t.test(name, async (st) => {
      const base = { ...presetConfig('omx_f', { rawImages: true }), startOnLaunch: true, gateway: address, instruction: `via ${name}` };
      const policy = createPolicyClient(validateBridgeConfig(base), silentLogger);
      st.after(() => policy.close());
      const rig = await startRig(st, { policy, config: { gateway: address, instruction: `via ${name}` } });
      const topic = rig.config.outputs[0]!.topic;
      const msg = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => m.points.length > 1, { timeoutMs: 20_000 });
      await until('3 chunks', () => rig.policy.results.length >= 3 || undefined, 20_000);
      const result = rig.policy.results[0]!;
      assert.equal(result.result.model, 'demo-v1');
      assert.equal(result.result.instruction, `via ${name}`);
      assert.equal(result.horizon, 16);
      assert.equal(result.dof, 6);
      assert.ok(Math.abs(result.dtS! - 1 / 30) < 1e-9);
      assert.deepEqual(msg.msg.joint_names, rig.config.outputs[0]!.joints);
      const obs = rig.policy.observations[0]!;
      assert.ok(Math.abs(fromRosTime(msg.msg.header.stamp) - obs.stamp) < 1e-6);
      assert.equal(rig.policy.errors.length, 0);
      await rig.bridge.close();
    });
  }
});

test('HTTP: an unknown framework is refused with unknown_framework, and the robot is never commanded', async (t) => {
  const gateway = await buildGateway(parseConfig(undefined, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*', logLevel: 'silent' }), { log: silentLogger });
  t.after(() => gateway.close(0));
  const config = validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }), gateway: gateway.httpUrl, framework: 'nope' });
  const policy = createPolicyClient(config, silentLogger);
  t.after(() => policy.close());
  const rig = await startRig(t, { policy, config: { framework: 'nope', gateway: gateway.httpUrl } });
  await until('an error', () => rig.policy.errors.length > 0 || undefined, 20_000);
  assert.equal((rig.policy.errors[0] as { code?: string }).code, 'unknown_framework');
  const status = await until('gateway_error status', () => (rig.bridge.loop.status().reason === 'gateway_error' ? rig.bridge.loop.status() : undefined));
  assert.equal(status.state, 'holding');
  assert.match(status.detail!, /^unknown_framework: /);
  assert.equal(rig.adapter.messages(rig.config.outputs[0]!.topic).length, 0, 'nothing was commanded, so no hold either');
});

test('gateway outage: the hold is repeated, nothing is sent while the connection is down, and the bridge asks at once when it returns', async (t) => {
  const start = (zmqEndpoint: string) =>
    buildGateway(parseConfig({ frameworks: { demo: { embedded: true, embeddedDelayMs: 5 } } }, { httpPort: 0, zmqEndpoint, logLevel: 'silent' }), { log: silentLogger });
  let gateway = await start('tcp://127.0.0.1:*');
  t.after(() => gateway.close(0));
  const endpoint = gateway.zmqEndpoint; // the restarted gateway binds the same port
  const config = validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }), gateway: endpoint });
  const policy = createPolicyClient(config, silentLogger);
  t.after(() => policy.close());
  const rig = await startRig(t, { policy, config: { gateway: endpoint } });
  const topic = rig.config.outputs[0]!.topic;
  const isHold = (m: JointTrajectoryMsg) => m.points.length === 1;
  const trajectories = () => rig.adapter.messages(topic, 'trajectory_msgs/msg/JointTrajectory');
  await until('3 chunks', () => rig.policy.results.length >= 3 || undefined, 20_000);

  const downAt = trajectories().length;
  const lost = new Promise<void>((resolve) => {
    const off = policy.onDown!(() => (off(), resolve()));
  });
  await gateway.close(0);
  await lost;
  const hold = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', isHold, { timeoutMs: 10_000, fromIndex: downAt });
  // Three more publications of the same target while the gateway is away (5 Hz by default).
  const third = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (_m, i) => i >= hold.index + 3, { timeoutMs: 10_000, fromIndex: hold.index + 1 });
  const during = trajectories().slice(hold.index, third.index + 1);
  assert.ok(during.every((m) => isHold(m.msg) && m.msg.points[0]!.positions.join() === hold.msg.points[0]!.positions.join()), 'only the same hold');
  const stamps = during.map((m) => fromRosTime(m.msg.header.stamp));
  assert.ok(stamps.every((s, i) => i === 0 || s > stamps[i - 1]!), 'each repeat is stamped anew');
  const status = rig.bridge.loop.status();
  assert.equal(status.state, 'holding');
  assert.equal(status.reason, 'gateway_error');
  assert.match(status.detail!, /^unavailable: lost the connection to tcp:/);
  assert.equal(status.gatewayConnected, false);
  assert.ok(status.holdRepeats! >= 3);
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.inferenceErrors, { code: 'unavailable' })) >= 1, 'the loss counts as an inference error');
  // Known down: no request was sent into the void after the loss (each would have waited for its full deadline).
  const sentBefore = rig.policy.sentAtMs.filter((ms) => ms <= hold.atMs).length;
  assert.equal(rig.policy.observations.length, sentBefore, 'no inference while the connection is down');

  const back = new Promise<number>((resolve) => {
    const off = policy.onUp!(() => (off(), resolve(performance.now())));
  });
  gateway = await start(endpoint);
  const upAtMs = await back;
  const resumed = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 10_000, fromIndex: third.index + 1 });
  // The first request since the loss: asked on the reconnect event itself (the loop's listener runs before this
  // test's), not at a later tick or after a backoff.
  const firstAfter = rig.policy.sentAtMs[sentBefore];
  assert.ok(firstAfter !== undefined, 'a request after the reconnect');
  assert.ok(Math.abs(firstAfter - upAtMs) <= 1000 / rig.config.rateHz, `asked ${(firstAfter - upAtMs).toFixed(1)} ms from the reconnect`);
  assert.ok(resumed.msg.points.length > 1);
  await until('running', () => (rig.bridge.loop.status().state === 'running' ? true : undefined));
  assert.equal(rig.bridge.loop.status().gatewayConnected, true);
});

test('sharedMemoryDir: the bridge sends camera images through shared memory to a Python worker behind the gateway', async (t) => {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-bridge-shm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const worker = await spawnPythonWorker({ extraArgs: ['--shm-dir', dir] });
  t.after(() => worker.close());
  const gateway = await buildGateway(parseConfig({ frameworks: { demo: { endpoints: [worker.endpoint], timeoutMs: 5_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*', logLevel: 'silent' }), { log: silentLogger });
  t.after(() => gateway.close(0));
  const base = { ...presetConfig('omx_f', { rawImages: true }), startOnLaunch: true, gateway: gateway.zmqEndpoint, sharedMemoryDir: dir };
  const policy = createPolicyClient(validateBridgeConfig(base), silentLogger);
  t.after(() => policy.close());
  // 64x48 rgb8 = 9,216 bytes: above the 4 KiB under which tensors stay frames.
  const rig = await startRig(t, { policy, config: { gateway: gateway.zmqEndpoint, sharedMemoryDir: dir }, imageSize: { width: 64, height: 48 } });
  await until('3 chunks', () => rig.policy.results.length >= 3 || undefined, 20_000);
  assert.equal(rig.policy.errors.length, 0);
  assert.equal(rig.policy.results[0]!.horizon, 16);
  // The client's folder holds a slot: the images went through shared memory (a fall-back to frames makes none).
  const folders = readdirSync(dir).filter((f) => f !== 'realm');
  assert.equal(folders.length, 1);
  assert.ok(readdirSync(join(dir, folders[0]!)).some((f) => f.endsWith('.slot')), 'a slot file was used');
  await rig.bridge.close();
  await policy.close();
  assert.deepEqual(readdirSync(dir), ['realm'], 'closing the bridge removes its folder');
});
