// Bridge config validation, presets, the command line, and the rclnodejs adapter's failure without ROS 2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BridgeConfigError, validateBridgeConfig } from '../../src/ros-bridge/config.js';
import { ConfigError } from '../../src/lib/config-error.js';
import { runBridge } from '../../src/ros-bridge/main.js';
import { PRESETS, presetConfig, type PresetName } from '../../src/ros-bridge/presets.js';
import { loadRclnodejs, RclnodejsAdapter, ROS_NOT_FOUND_MESSAGE } from '../../src/ros-bridge/rclnodejs-adapter.js';
import { silentLogger } from '../../src/lib/log.js';

test('every preset validates, and its groups cover its joints exactly once, in the notes’ order', () => {
  const expected: Record<PresetName, string[][]> = {
    omx_f: [['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'gripper_joint_1']],
    omy_f3m: [['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'rh_r1_joint']],
    ffw_bg2_rev4: [
      ['arm_l_joint1', 'arm_l_joint2', 'arm_l_joint3', 'arm_l_joint4', 'arm_l_joint5', 'arm_l_joint6', 'arm_l_joint7', 'gripper_l_joint1'],
      ['arm_r_joint1', 'arm_r_joint2', 'arm_r_joint3', 'arm_r_joint4', 'arm_r_joint5', 'arm_r_joint6', 'arm_r_joint7', 'gripper_r_joint1'],
      ['head_joint1', 'head_joint2'],
      ['lift_joint'],
    ],
  };
  for (const name of Object.keys(PRESETS) as PresetName[]) {
    const config = validateBridgeConfig(presetConfig(name));
    assert.deepEqual(config.outputs.map((o) => o.joints), expected[name], name);
    assert.deepEqual([...config.outputs.flatMap((o) => o.joints)].sort(), [...config.joints].sort(), name);
    assert.ok(config.cameras.every((c) => c.type === 'compressed' && c.topic.endsWith('/compressed')), name);
    const raw = validateBridgeConfig(presetConfig(name, { rawImages: true }));
    assert.ok(raw.cameras.every((c) => c.type === 'image' && !c.topic.endsWith('/compressed')), name);
  }
  const ffw = validateBridgeConfig(presetConfig('ffw_bg2_rev4'));
  assert.deepEqual(
    ffw.outputs.map((o) => o.topic),
    [
      '/leader/joint_trajectory_command_broadcaster_left/joint_trajectory',
      '/leader/joint_trajectory_command_broadcaster_right/joint_trajectory',
      '/leader/joystick_controller_left/joint_trajectory',
      '/leader/joystick_controller_right/joint_trajectory',
    ],
  );
  assert.deepEqual(ffw.cameras.map((c) => c.key), ['cam_head', 'cam_wrist_left', 'cam_wrist_right']);
});

test('config validation lists every bad field at once', () => {
  const bad = {
    ...presetConfig('omx_f'),
    rateHz: 0,
    gateway: 'udp://nowhere',
    framework: '',
    requestAheadSteps: 2.5,
    blending: { method: 'magic' },
    limits: { joint1: { min: 1, max: -1 }, not_a_joint: { maxVelocity: -2 } },
    outputs: [{ name: 'leader', topic: '/leader/joint_trajectory', type: 'joint_trajectory', joints: ['joint1', 'elbow'] }],
    cameras: [{ key: 'camera1', topic: 'bad topic!', type: 'image', resize: { width: 0, height: 224, method: 'cubic' } }],
    startOnLaunch: 'yes',
    colour: 'blue',
  };
  let error: unknown;
  try {
    validateBridgeConfig(bad);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof BridgeConfigError);
  assert.ok(error instanceof ConfigError, 'one config error type for the gateway and the bridge (not a request error code)');
  const paths = error.problems.map((p) => p.path).sort();
  assert.deepEqual(
    paths,
    [
      'blending.method',
      'cameras[0].resize.method',
      'cameras[0].resize.width',
      'cameras[0].topic',
      'colour',
      'framework',
      'gateway',
      'limits.joint1',
      'limits.not_a_joint',
      'limits.not_a_joint.maxVelocity',
      'outputs[0].joints',
      'rateHz',
      'requestAheadSteps',
      'startOnLaunch',
    ].sort(),
  );
  for (const p of paths) assert.ok(error.message.includes(p), `message names ${p}`);
});

test('defaults: ZMQ front door on 127.0.0.1:5550, 30 Hz, framework demo, replace blending', () => {
  const config = validateBridgeConfig(presetConfig('omx_f'));
  assert.equal(config.gateway, 'tcp://127.0.0.1:5550');
  assert.equal(config.rateHz, 30);
  assert.equal(config.framework, 'demo');
  assert.equal(config.blending.method, 'replace');
  assert.equal(config.startOnLaunch, false);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.outputs[0]));
});

test('the rclnodejs adapter fails with the clear "ROS 2 not found" message when rclnodejs cannot load', async () => {
  await assert.rejects(loadRclnodejs(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'unavailable');
    assert.equal(err.message, ROS_NOT_FOUND_MESSAGE);
    assert.match(err.message, /source \/opt\/ros\/<distro>\/setup\.bash/);
    assert.match(err.message, /npm_config_yes=true npm install rclnodejs/);
    return true;
  });
  await assert.rejects(RclnodejsAdapter.create({ log: silentLogger }), { code: 'unavailable', message: ROS_NOT_FOUND_MESSAGE });
});

test('runBridge: ROS 2 absent → exit 1 with the setup message and no stack trace', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runBridge(['--preset', 'omx_f', '--raw-images', '--log-level', 'error'], { out: (l) => out.push(l), err: (l) => err.push(l) });
  assert.equal(code, 1);
  assert.deepEqual(err, [ROS_NOT_FOUND_MESSAGE]);
  assert.ok(!err.join('\n').includes('    at '), 'no stack trace');
});

test('runBridge: a preset with compressed cameras gets past the JPEG decoder (jpeg-js) and stops at the missing ROS 2', async () => {
  const err: string[] = [];
  const code = await runBridge(['--preset', 'ffw_bg2_rev4'], { out: () => {}, err: (l) => err.push(l) });
  assert.equal(code, 1);
  assert.equal(err.length, 1);
  assert.doesNotMatch(err[0]!, /jpeg/i);
  assert.match(err[0]!, /ROS 2 not found: source \/opt\/ros\/<distro>\/setup.bash/);
});

test('runBridge: bad flags and bad config fields → exit 2 with every problem listed at once', async () => {
  const err: string[] = [];
  const code = await runBridge(
    ['--preset', 'omx_f', '--raw-images', '--rate-hz', 'fast', '--blending', 'magic', '--gateway', 'ftp://x', '--resize', '224x224:cubic'],
    { out: () => {}, err: (l) => err.push(l) },
  );
  assert.equal(code, 2);
  const text = err.join('\n');
  assert.match(text, /4 problems/);
  for (const name of ['--rate-hz', '--resize', 'blending.method', 'gateway']) assert.ok(text.includes(name), name);
  assert.ok(!text.includes('    at '), 'no stack trace');
});

test('runBridge --help prints the usage and exits 0', async () => {
  const out: string[] = [];
  assert.equal(await runBridge(['--help'], { out: (l) => out.push(l), err: () => {} }), 0);
  assert.match(out.join('\n'), /--preset <name> +omx_f \| omy_f3m \| ffw_bg2_rev4/);
});
