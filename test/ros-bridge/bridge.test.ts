// The bridge end to end: in-process ROS adapter + simulated robot + a real policy worker over real sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../../src/protocol/tensor.js';
import type { BridgeStatus } from '../../src/ros-bridge/control-loop.js';
import { BRIDGE_METRIC_NAMES } from '../../src/ros-bridge/metrics.js';
import { fromRosTime, toRosTime, type JointTrajectoryMsg } from '../../src/ros-bridge/ros-adapter.js';
import type { RecordedMessage } from './memory-adapter.js';
import type { PresetName } from '../../src/ros-bridge/presets.js';
import jpeg from 'jpeg-js';
import { loadJpegDecoder } from '../../src/ros-bridge/image.js';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/lib/log.js';
import { validateBridgeConfig } from '../../src/ros-bridge/config.js';
import { startBridge } from '../../src/ros-bridge/main.js';
import { HttpPolicyClient } from '../../src/ros-bridge/policy-client.js';
import { presetConfig } from '../../src/ros-bridge/presets.js';
import { metricValue, pythonPolicy, sleep, startRig, until, type Rig } from './harness.js';
import { MemoryRosAdapter } from './memory-adapter.js';
import { SimRobot } from './sim-robot.js';

const DT_S = 1 / 30;
const PERIOD_S = 1 / 30;

function trajectories(adapter: MemoryRosAdapter, topic: string): RecordedMessage<JointTrajectoryMsg>[] {
  return adapter.messages(topic, 'trajectory_msgs/msg/JointTrajectory');
}
function statuses(rig: Rig): BridgeStatus[] {
  return rig.adapter.messages(rig.config.statusTopic, 'std_msgs/msg/String').map((m) => JSON.parse(m.msg.data) as BridgeStatus);
}
const lastStatus = (rig: Rig) => statuses(rig).at(-1);
const isHold = (m: JointTrajectoryMsg) => m.points.length === 1 && m.points[0]!.time_from_start.sec === 0 && m.points[0]!.time_from_start.nanosec === toRosTime(PERIOD_S).nanosec;
const chunksOn = (rig: Rig, topic: string) => trajectories(rig.adapter, topic).filter((m) => !isHold(m.msg));
/** Asserts every trajectory on `topic` from `fromIndex` on is a hold to exactly `positions` (repeats of one hold). */
function assertOnlyHolds(rig: Rig, topic: string, fromIndex: number, positions: Iterable<number>, what: string): number {
  const after = trajectories(rig.adapter, topic).slice(fromIndex);
  for (const m of after) {
    assert.ok(isHold(m.msg), `${what}: only holds, no chunk`);
    assert.deepEqual([...m.msg.points[0]!.positions], [...positions], `${what}: the same hold target every time`);
  }
  return after.length;
}

test('each chunk becomes one JointTrajectory per group: observation stamp, group joint order, time_from_start = k·dt, demo positions', async (t) => {
  const { policy: shared } = await pythonPolicy(t);
  for (const preset of ['omx_f', 'omy_f3m', 'ffw_bg2_rev4'] as PresetName[]) {
    await t.test(preset, async (st) => {
      const rig = await startRig(st, { preset, policy: shared });
      for (const out of rig.config.outputs) await rig.adapter.waitFor(out.topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m));
      const obs = rig.policy.observations[0]!;
      const state = (obs.state as Tensor).data as Float32Array;
      // The joint states come in reverse order with an extra joint: the state is still in config order.
      assert.deepEqual([...state].map((v) => Math.round(v * 1e6) / 1e6), rig.config.joints.map((_j, i) => Math.round(Math.fround(0.1 * (i + 1)) * 1e6) / 1e6));
      assert.deepEqual(Object.keys(obs.images), rig.config.cameras.map((c) => c.key));
      for (const [, img] of Object.entries(obs.images)) assert.deepEqual(img.shape, [24, 32, 3]);
      for (const out of rig.config.outputs) {
        const msg = chunksOn(rig, out.topic)[0]!.msg;
        assert.deepEqual(msg.joint_names, out.joints, `${preset} ${out.name} joint order`);
        assert.ok(Math.abs(fromRosTime(msg.header.stamp) - obs.stamp) < 1e-6, 'header.stamp is the observation stamp');
        assert.ok(msg.points.length >= 1 && msg.points.length <= 16);
        let prevK = -1;
        for (const p of msg.points) {
          const k1 = Math.round(fromRosTime(p.time_from_start) / DT_S); // 1-based step number
          assert.deepEqual(p.time_from_start, toRosTime(k1 * DT_S), 'time_from_start is exactly k·dt');
          if (prevK >= 0) assert.equal(k1, prevK + 1, 'consecutive steps');
          prevK = k1;
          assert.deepEqual([p.velocities, p.accelerations, p.effort].map((a) => a.length), [0, 0, 0]);
          out.joints.forEach((joint, m) => {
            const j = rig.config.joints.indexOf(joint);
            const expected = Math.fround(state[j]! + 0.01 * k1);
            assert.ok(Math.abs(p.positions[m]! - expected) < 1e-6, `${out.name} ${joint} step ${k1}: ${p.positions[m]} vs ${expected}`);
          });
        }
        assert.equal(prevK, 16, 'the chunk runs to its last (16th) step');
      }
      await rig.bridge.close();
    });
  }
});

test('no starvation at 30 Hz with a worker that takes 100 ms per inference', async (t) => {
  const rig = await startRig(t, { delayMs: 100 });
  const start = rig.robot.positions();
  await until('8 chunks', () => rig.policy.results.length >= 8 || undefined, 20_000);
  await sleep(500);
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.starvation), 0);
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.holds), 0);
  assert.equal(rig.policy.errors.length, 0);
  assert.equal(rig.bridge.loop.state, 'running');
  assert.ok(rig.policy.results.every((r) => r.timing.worker === undefined || r.timing.worker.compute_ms >= 90), 'the worker really took ~100 ms');
  // The robot kept moving the way the demo policy says (+0.01 per step, about 0.3 rad/s).
  const moved = rig.robot.positions()[0]! - start[0]!;
  assert.ok(moved > 0.2, `joint1 moved ${moved}`);
});

test('the robot is held within one period after the worker is killed, at its measured position, with the reason', async (t) => {
  const rig = await startRig(t, { delayMs: 10 });
  const topic = rig.config.outputs[0]!.topic;
  await until('3 chunks', () => rig.policy.results.length >= 3 || undefined, 20_000);
  const fromIndex = trajectories(rig.adapter, topic).length;
  await rig.worker!.kill('SIGKILL');
  const deadS = fromRosTime(rig.adapter.now()); // the process has exited
  const hold = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => isHold(m), { timeoutMs: 10_000, fromIndex });
  const holdS = fromRosTime(hold.msg.header.stamp);
  // One period, plus 10 ms for a timer that fires late on a loaded machine.
  assert.ok(holdS - deadS <= PERIOD_S + 0.01, `hold ${((holdS - deadS) * 1000).toFixed(1)} ms after the worker died`);
  // The hold is the measured position: the last joint state, within one 100 Hz sample of motion (0.3 rad/s).
  const measured = rig.adapter.messages(rig.config.jointStateTopic, 'sensor_msgs/msg/JointState').filter((m) => m.atMs <= hold.atMs).at(-1)!.msg;
  rig.config.outputs[0]!.joints.forEach((joint, m) => {
    const q = measured.position[measured.name.indexOf(joint)]!;
    assert.ok(Math.abs(hold.msg.points[0]!.positions[m]! - q) < 0.005, `${joint}: ${hold.msg.points[0]!.positions[m]} vs ${q}`);
  });
  const status = await until('holding status', () => statuses(rig).findLast((s) => s.state === 'holding'));
  assert.equal(status.reason, 'gateway_error');
  assert.match(status.detail!, /unavailable: lost the connection to tcp:\/\/127\.0\.0\.1:\d+/);
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.holds), 1);
  // While the worker stays dead the same hold is published again (holdRepeatHz, default 5 Hz), with fresh stamps,
  // and nothing else: a controller that subscribes during the outage still gets the target.
  const repeat = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', () => true, { timeoutMs: 5_000, fromIndex: hold.index + 1 });
  assert.ok(fromRosTime(repeat.msg.header.stamp) > holdS, 'a repeat carries a fresh stamp');
  assertOnlyHolds(rig, topic, hold.index, hold.msg.points[0]!.positions, 'during the outage');
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.holds), 1, 'repeats are not new holds');
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.inferenceErrors, { code: 'unavailable' })) >= 1, 'the connection loss is an inference error');
  const repeating = await until('status with holdRepeats', () => statuses(rig).findLast((s) => (s.holdRepeats ?? 0) >= 1));
  assert.equal(repeating.reason, 'gateway_error');
});

test('when the chunk runs out before the next arrives, the robot is held at that tick (starvation)', async (t) => {
  // The next chunk is asked for 2 steps (67 ms) ahead but takes 150 ms: the plan runs out first.
  const rig = await startRig(t, { delayMs: 150, config: { requestAheadSteps: 2 } });
  const topic = rig.config.outputs[0]!.topic;
  const first = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 20_000 });
  const hold = await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => isHold(m), { timeoutMs: 10_000, fromIndex: first.index });
  const planEndS = fromRosTime(first.msg.header.stamp) + fromRosTime(first.msg.points.at(-1)!.time_from_start);
  const holdS = fromRosTime(hold.msg.header.stamp);
  assert.ok(holdS >= planEndS - 0.001, 'no hold while the plan still had steps');
  assert.ok(holdS - planEndS <= PERIOD_S, `hold ${((holdS - planEndS) * 1000).toFixed(1)} ms after the plan ran out`);
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.starvation)) >= 1);
  assert.equal(statuses(rig).findLast((s) => s.state === 'holding')?.reason, 'starved');
});

test('clamps: targets stay inside position limits and move at most maxVelocity·dt per step', async (t) => {
  const vmax = 0.1; // rad/s; the demo policy asks for 0.3 rad/s
  const rig = await startRig(t, { config: { limits: { joint1: { max: 0.13 }, joint2: { maxVelocity: vmax } } } });
  const topic = rig.config.outputs[0]!.topic;
  await until('10 chunks', () => rig.policy.results.length >= 10 || undefined, 20_000);
  const msgs = chunksOn(rig, topic).map((m) => m.msg);
  let reachedMax = false;
  for (const msg of msgs) {
    let prev: { t: number; q: number } | undefined;
    for (const p of msg.points) {
      assert.ok(p.positions[0]! <= 0.13 + 1e-12, `joint1 ${p.positions[0]}`);
      if (p.positions[0] === 0.13) reachedMax = true;
      const tS = fromRosTime(p.time_from_start);
      if (prev) assert.ok(Math.abs(p.positions[1]! - prev.q) <= vmax * (tS - prev.t) + 1e-9, `joint2 step ${p.positions[1]! - prev.q}`);
      prev = { t: tS, q: p.positions[1]! };
    }
  }
  assert.ok(reachedMax, 'the policy pushed joint1 to its limit');
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.clamped)) > 0);
  // Unclamped joints still follow the policy's 0.01 per step.
  const last = msgs.at(-1)!;
  assert.ok(Math.abs(last.points[1]!.positions[2]! - last.points[0]!.positions[2]! - 0.01) < 1e-6);
});

test('a stale camera is detected: the robot holds, the status names the topic and age, and it resumes when frames return', async (t) => {
  const rig = await startRig(t, { config: { maxObservationAgeMs: 200 } });
  const camera = rig.config.cameras[0]!.topic;
  const topic = rig.config.outputs[0]!.topic;
  await until('2 chunks', () => rig.policy.results.length >= 2 || undefined, 20_000);
  const seen = statuses(rig).length;
  const fromIndex = trajectories(rig.adapter, topic).length;
  rig.robot.pauseCamera(camera);
  const status = await until('stale status', () => statuses(rig).slice(seen).find((s) => s.reason === 'stale_input'));
  assert.equal(status.state, 'holding');
  assert.match(status.detail!, new RegExp(`${camera} is \\d+ ms old \\(limit 200 ms\\)`));
  assert.ok(trajectories(rig.adapter, topic).slice(fromIndex).some((m) => isHold(m.msg)), 'a hold was published');
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.staleDrops, { topic: camera })) > 0);
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.holds, { reason: 'stale_input' })) === 1);
  const requests = rig.policy.observations.length;
  await sleep(300);
  assert.equal(rig.policy.observations.length, requests, 'no inference on stale inputs');
  rig.robot.pauseCamera(camera, false);
  await until('running again', () => lastStatus(rig)?.state === 'running' || undefined);
  assert.ok(rig.policy.observations.length > requests);
});

test('an instruction published while running reaches the worker in the next observation', async (t) => {
  const rig = await startRig(t, { config: { instruction: 'pick up the cube', instructionTopic: '/task_instruction' } });
  await until('2 chunks', () => rig.policy.results.length >= 2 || undefined, 20_000);
  assert.equal(rig.policy.results[0]!.result.instruction, 'pick up the cube');
  rig.adapter.publish('/task_instruction', 'std_msgs/msg/String', { data: 'place it in the box' });
  const echoed = await until('echo', () => rig.policy.results.findIndex((r) => r.result.instruction === 'place it in the box') + 1 || undefined);
  assert.ok(rig.policy.results.slice(0, echoed - 1).every((r) => r.result.instruction === 'pick up the cube'));
  assert.ok(rig.policy.results.slice(echoed - 1).every((r) => r.result.instruction === 'place it in the box'));
  await until('status shows it', () => lastStatus(rig)?.instruction === 'place it in the box' || undefined);
});

test('emergency stop holds, drops chunks, refuses stop/resume until start', async (t) => {
  const rig = await startRig(t, { delayMs: 50 });
  const topic = rig.config.outputs[0]!.topic;
  await until('2 chunks', () => rig.policy.results.length >= 2 || undefined, 20_000);
  const before = trajectories(rig.adapter, topic).length;
  const reply = await rig.adapter.callTrigger('/physical_ai_bridge/emergency_stop');
  assert.equal(reply.success, true);
  const all = trajectories(rig.adapter, topic);
  assert.ok(all.length > before && isHold(all.at(-1)!.msg), 'the e-stop published a hold, and it is the last command');
  const count = all.length;
  // The e-stop hold is repeated (holdRepeatHz); the chunk in flight is dropped, so nothing but that hold follows.
  await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', () => true, { timeoutMs: 5_000, fromIndex: count });
  await until('the request in flight settled', () => rig.policy.results.length + rig.policy.errors.length >= rig.policy.observations.length || undefined);
  assertOnlyHolds(rig, topic, count - 1, all.at(-1)!.msg.points[0]!.positions, 'after the e-stop');
  assert.equal(rig.bridge.loop.state, 'estopped');
  assert.equal(lastStatus(rig)?.reason, 'emergency_stop');
  const stop = await rig.adapter.callTrigger('/physical_ai_bridge/stop');
  assert.equal(stop.success, false);
  assert.match(stop.message, /latched/);
  const start = await rig.adapter.callTrigger('/physical_ai_bridge/start');
  assert.equal(start.success, true);
  await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { fromIndex: count });
  assert.equal(rig.bridge.loop.state, 'running');
});

test('stop holds and waits; start resumes; the bridge starts idle without startOnLaunch', async (t) => {
  const rig = await startRig(t, { config: { startOnLaunch: false } });
  const topic = rig.config.outputs[0]!.topic;
  await sleep(200);
  assert.equal(rig.bridge.loop.state, 'idle');
  assert.equal(rig.policy.observations.length, 0);
  assert.equal(trajectories(rig.adapter, topic).length, 0, 'nothing commanded while idle');
  assert.equal((await rig.adapter.callTrigger('/physical_ai_bridge/start')).success, true);
  await rig.adapter.waitFor(topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 20_000 });
  const before = trajectories(rig.adapter, topic).length;
  assert.equal((await rig.adapter.callTrigger('/physical_ai_bridge/stop')).success, true);
  assert.equal(rig.bridge.loop.state, 'idle');
  assert.equal(lastStatus(rig)?.reason, 'stop');
  const after = trajectories(rig.adapter, topic);
  assert.ok(after.length > before && isHold(after.at(-1)!.msg), 'stop published a hold, and it is the last command');
  await sleep(300);
  assert.equal(trajectories(rig.adapter, topic).length, after.length, 'nothing published after stop');
});

test('forward-command outputs get one Float64MultiArray per tick in the group’s joint order', async (t) => {
  const rig = await startRig(t, {
    config: { outputs: [{ name: 'arm', topic: '/arm_controller/commands', type: 'float64_multi_array', joints: ['joint3', 'joint1'] }] },
  });
  // Ten commands published (on a loaded machine three chunks can arrive before ten ticks have run).
  await until('chunks and commands', () => (rig.policy.results.length >= 3 && rig.adapter.messages('/arm_controller/commands', 'std_msgs/msg/Float64MultiArray').length >= 10) || undefined, 20_000);
  const msgs = rig.adapter.messages('/arm_controller/commands', 'std_msgs/msg/Float64MultiArray');
  assert.deepEqual(msgs[0]!.msg.layout.dim, [{ label: 'arm', size: 2, stride: 2 }]);
  // joint3 starts at 0.3, joint1 at 0.1, both rising 0.01 per step: the first command is 0.31, 0.11.
  assert.ok(Math.abs(msgs[0]!.msg.data[0]! - 0.31) < 1e-6 && Math.abs(msgs[0]!.msg.data[1]! - 0.11) < 1e-6, `${[...msgs[0]!.msg.data]}`);
  for (let i = 1; i < msgs.length; i++) assert.ok(msgs[i]!.msg.data[1]! >= msgs[i - 1]!.msg.data[1]! - 1e-9, 'joint1 never goes back');
});

test('the metrics registry exposes every bridge instrument', async (t) => {
  const rig = await startRig(t);
  await until('a chunk', () => rig.policy.results.length >= 2 || undefined, 20_000);
  const text = await rig.registry.metrics();
  for (const name of Object.values(BRIDGE_METRIC_NAMES)) assert.ok(text.includes(`# TYPE ${name} `), name);
  assert.ok((await metricValue(rig.registry, BRIDGE_METRIC_NAMES.chunks)) >= 2);
  const jitter = rig.bridge.loop.jitterStats();
  assert.ok(jitter.count > 0 && Number.isFinite(jitter.p50Ms));
});

test('at start-up the bridge reports waiting_for_inputs (not stale_input) until every input has been seen once', async (t) => {
  const rig = await startRig(t, { startRobot: false });
  const camera = rig.config.cameras[0]!.topic;
  const waiting = await until('waiting status', () => statuses(rig).find((s) => s.reason === 'waiting_for_inputs'));
  assert.equal(waiting.state, 'holding');
  assert.match(waiting.detail!, new RegExp(`waiting for the first message on ${camera} or ${camera}/compressed, ${rig.config.jointStateTopic}$`));
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.staleDrops), 0, 'nothing was ever stale');
  assert.equal(waiting.staleDrops, 0);
  assert.ok(statuses(rig).every((s) => s.reason !== 'stale_input'));
  assert.equal(rig.policy.observations.length, 0);
  assert.equal(trajectories(rig.adapter, rig.config.outputs[0]!.topic).length, 0, 'nothing commanded, so no hold either');
  rig.robot.start();
  await until('running', () => lastStatus(rig)?.state === 'running' || undefined);
  await rig.adapter.waitFor(rig.config.outputs[0]!.topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 20_000 });
  assert.equal(await metricValue(rig.registry, BRIDGE_METRIC_NAMES.staleDrops), 0);
  assert.ok(statuses(rig).every((s) => s.reason !== 'stale_input'));
});

test('a camera configured as CompressedImage also works when the robot publishes raw sensor_msgs/Image, and the status says which', async (t) => {
  // The omx_f preset as is (camera1 on /camera1/image_raw/compressed, JPEG); the robot publishes /camera1/image_raw.
  const rig = await startRig(t, { compressedPreset: true, robotConfig: {} });
  assert.equal(rig.config.cameras[0]!.type, 'compressed');
  await rig.adapter.waitFor(rig.config.outputs[0]!.topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 20_000 });
  assert.deepEqual(rig.bridge.loop.status().cameras, { camera1: { topic: '/camera1/image_raw', type: 'image' } });
  assert.deepEqual(rig.policy.observations[0]!.images.camera1!.shape, [24, 32, 3]);
  const status = await until('status naming the source', () => statuses(rig).findLast((s) => s.cameras.camera1 !== undefined));
  assert.deepEqual(status.cameras.camera1, { topic: '/camera1/image_raw', type: 'image' });
});

test('a camera configured raw (--raw-images) also accepts sensor_msgs/CompressedImage on <topic>/compressed', async (t) => {
  const decoder = await loadJpegDecoder();
  assert.ok(decoder);
  // The robot publishes joint states only; the test publishes JPEG frames on /camera1/image_raw/compressed.
  const rig = await startRig(t, { robotConfig: { cameras: [] }, jpegDecoder: decoder });
  const width = 40;
  const height = 30;
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([200, 40, 10, 255], i * 4);
  const data = new Uint8Array(jpeg.encode({ width, height, data: rgba }, 90).data);
  const frames = setInterval(() => {
    rig.adapter.publish('/camera1/image_raw/compressed', 'sensor_msgs/msg/CompressedImage', { header: { stamp: rig.adapter.now(), frame_id: 'camera1' }, format: 'jpeg', data });
  }, 33);
  t.after(() => clearInterval(frames));
  await rig.adapter.waitFor(rig.config.outputs[0]!.topic, 'trajectory_msgs/msg/JointTrajectory', (m) => !isHold(m), { timeoutMs: 20_000 });
  assert.deepEqual(rig.bridge.loop.status().cameras, { camera1: { topic: '/camera1/image_raw/compressed', type: 'compressed' } });
  const image = rig.policy.observations[0]!.images.camera1!;
  assert.deepEqual(image.shape, [30, 40, 3]);
  assert.ok(Math.abs((image.data[0] as number) - 200) < 8, 'decoded from the JPEG');
  // Stop publishing before the rig's own clean-up closes the adapter (after-hooks run in the order they were added,
  // the rig's first): a frame published on a closed adapter is an uncaught error.
  clearInterval(frames);
});

test('tick lateness is a histogram down to 50 µs, and close() leaves no worker thread, timer or immediate behind', async (t) => {
  const config = validateBridgeConfig({ ...presetConfig('omx_f'), startOnLaunch: false }); // a JPEG camera: one image worker
  const adapter = new MemoryRosAdapter();
  t.after(() => adapter.close());
  const robot = new SimRobot({ adapter, config: validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }) }) });
  robot.start();
  t.after(() => robot.close());
  // Idle (no start): nothing is asked of the policy, so every resource that appears belongs to the loop.
  const policy = new HttpPolicyClient({ baseUrl: 'http://127.0.0.1:9', framework: 'demo' });
  const before = process.getActiveResourcesInfo().sort();
  const registry = new Registry();
  const bridge = startBridge(config, { adapter, policy, log: silentLogger, registry });
  await until('20 ticks', () => bridge.loop.jitterStats().count >= 20 || undefined);
  assert.ok(process.getActiveResourcesInfo().includes('MessagePort'), 'the image worker runs');
  const { values } = (await registry.getSingleMetric(BRIDGE_METRIC_NAMES.tickLateness)!.get()) as { values: { metricName?: string; labels: Record<string, unknown>; value: number }[] };
  const buckets = values.filter((v) => v.metricName === `${BRIDGE_METRIC_NAMES.tickLateness}_bucket`).map((v) => v.labels.le);
  assert.equal(buckets[0], 0.00005);
  const count = values.find((v) => v.metricName === `${BRIDGE_METRIC_NAMES.tickLateness}_count`)!.value;
  assert.ok(count >= 20, `${count} ticks observed`);
  const stats = bridge.loop.jitterStats();
  assert.ok(Number.isFinite(stats.lateness.p99Ms) && stats.lateness.p50Ms >= 0);
  await bridge.close();
  // Nothing the loop made is left: no kind of resource is more numerous than before it started. (Fewer is fine: a
  // child process of an earlier test in this file may end meanwhile.)
  const tally = (kinds: string[]) => kinds.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const was = tally(before);
  const left = [...tally(process.getActiveResourcesInfo())].filter(([kind, n]) => n > (was.get(kind) ?? 0));
  assert.deepEqual(left, [], `resources left behind (before: ${before.join(', ')})`);
});
