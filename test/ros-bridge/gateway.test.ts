// The bridge against the real gateway (embedded demo worker), through its ZMQ front door and its HTTP API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { silentLogger } from '../../src/lib/log.js';
import { validateBridgeConfig } from '../../src/ros-bridge/config.js';
import { createPolicyClient } from '../../src/ros-bridge/main.js';
import { fromRosTime } from '../../src/ros-bridge/ros-adapter.js';
import { presetConfig } from '../../src/ros-bridge/presets.js';
import { startRig, until } from './harness.js';

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
