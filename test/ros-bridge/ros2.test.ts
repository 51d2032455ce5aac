// The bridge on real ROS 2: the gateway (embedded demo worker), the bridge as its own process (`physical-ai-gateway
// bridge`, the real rclnodejs adapter) and a simulated robot in rclpy (sim_robot_node.py), talking over Fast DDS on
// this host only (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a random ROS_DOMAIN_ID per run).
// ROS 2 comes from scripts/ensure-ros2.sh (PyPI wheels + rclnodejs built against them in .venv-ros2/); when that
// cannot be set up the test fails, it does not skip.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';
import { silentLogger } from '../../src/lib/log.js';
import type { BridgeStatus } from '../../src/ros-bridge/control-loop.js';
import { PRESETS } from '../../src/ros-bridge/presets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SIM = fileURLToPath(new URL('./sim_robot_node.py', import.meta.url));
const OMX = PRESETS.omx_f;
const DT_S = 1 / 30;

interface Ros2Env {
  venv: string;
  python: string;
  rclnodejsDir: string;
  ldPreload: string;
  env: { AMENT_PREFIX_PATH: string; ROS_DISTRO: string; RMW_IMPLEMENTATION: string; LD_LIBRARY_PATH: string; PATH_PREFIX: string };
}

let ros2: Ros2Env;

before(async () => {
  // Fast when already installed; a fresh machine takes about a minute. A failure here fails the test.
  await new Promise<void>((resolve, reject) => {
    execFile('bash', ['scripts/ensure-ros2.sh'], { cwd: ROOT, timeout: 600_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      err ? reject(new Error(`scripts/ensure-ros2.sh failed, so there is no ROS 2 to test against:\n${stdout}${stderr}`)) : resolve(),
    );
  });
  ros2 = JSON.parse(await readFile(`${process.env.PAIG_ROS2_VENV ?? `${ROOT}.venv-ros2`}/env.json`, 'utf8')) as Ros2Env;
});

type SimEvent =
  | { event: 'ready' }
  | { event: 'trajectory'; stamp: number; received: number; joint_names: string[]; points: { positions: number[]; t: number }[]; positions: number[] }
  | { event: 'status'; status: BridgeStatus }
  | { event: 'reply'; id: number; service: string; success: boolean | null; message: string };

/** A child process whose stdout is JSON lines; keeps every event and lets a test wait for one. */
class JsonLinesChild {
  readonly events: SimEvent[] = [];
  readonly stderr: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;
  constructor(readonly name: string, readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as SimEvent);
      } catch {
        this.stderr.push(`(stdout) ${line}`);
      }
      for (const w of this.#waiters) w();
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => child.once('exit', (code) => {
      for (const w of this.#waiters) w();
      resolve(code);
    }));
  }
  /** The first event at index >= fromIndex matching `predicate`. */
  waitFor<E extends SimEvent>(what: string, predicate: (e: SimEvent) => e is E, fromIndex = 0, timeoutMs = 30_000): Promise<E & { index: number }> {
    return new Promise((resolve, reject) => {
      let next = fromIndex;
      const check = () => {
        for (; next < this.events.length; next++) {
          const e = this.events[next]!;
          if (predicate(e)) return finish(() => resolve({ ...e, index: next }));
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          finish(() => reject(new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) while waiting for ${what}`)));
        }
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${what} from ${this.name}`))), timeoutMs);
      const finish = (then: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        then();
      };
      this.#waiters.add(check);
      check();
    });
  }
  /** Stops the process: stdin closed (the sim's way out), then `signal`, then SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin?.end();
      if (signal !== 'SIGCONT') this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.child.exitCode;
  }
}

const isTrajectory = (e: SimEvent): e is Extract<SimEvent, { event: 'trajectory' }> => e.event === 'trajectory';
const isChunk = (e: SimEvent): e is Extract<SimEvent, { event: 'trajectory' }> => isTrajectory(e) && e.points.length > 1;
const isHold = (e: SimEvent): e is Extract<SimEvent, { event: 'trajectory' }> => isTrajectory(e) && e.points.length === 1;
const statusWhere = (p: (s: BridgeStatus) => boolean) => (e: SimEvent): e is Extract<SimEvent, { event: 'status' }> => e.event === 'status' && p(e.status);

/** The environment of every ROS process in this test: the wheels, a private domain, discovery on this host only. */
function rosEnv(domainId: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AMENT_PREFIX_PATH: ros2.env.AMENT_PREFIX_PATH,
    ROS_DISTRO: ros2.env.ROS_DISTRO,
    RMW_IMPLEMENTATION: ros2.env.RMW_IMPLEMENTATION,
    LD_LIBRARY_PATH: ros2.env.LD_LIBRARY_PATH,
    PATH: `${ros2.env.PATH_PREFIX}:${process.env.PATH ?? ''}`,
    ROS_DOMAIN_ID: String(domainId),
    ROS_AUTOMATIC_DISCOVERY_RANGE: 'LOCALHOST',
    ROS_STATIC_PEERS: '',
  };
  delete env.ROS_LOCALHOST_ONLY; // deprecated; it would override the range above
  return env;
}

async function startSim(t: TestContext, env: NodeJS.ProcessEnv): Promise<JsonLinesChild> {
  const sim = new JsonLinesChild('sim_robot_node.py', spawn(ros2.python, [SIM], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  t.after(() => sim.stop());
  await sim.waitFor('ready', (e): e is Extract<SimEvent, { event: 'ready' }> => e.event === 'ready');
  return sim;
}

let callId = 0;
async function call(sim: JsonLinesChild, service: 'start' | 'stop' | 'emergency_stop'): Promise<Extract<SimEvent, { event: 'reply' }>> {
  const id = ++callId;
  sim.child.stdin!.write(`${JSON.stringify({ call: service, id })}\n`);
  return sim.waitFor(`${service} reply`, (e): e is Extract<SimEvent, { event: 'reply' }> => e.event === 'reply' && e.id === id);
}

test('real ROS 2: rclpy robot ⇄ bridge (rclnodejs) ⇄ gateway: Trigger services, JointTrajectory chunks and holds, raw camera under the compressed preset', async (t) => {
  const domainId = randomInt(1, 101);
  const env = rosEnv(domainId);
  const gateway = await buildGateway(
    parseConfig({ frameworks: { demo: { embedded: true, embeddedDelayMs: 10 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*', logLevel: 'silent' }),
    { log: silentLogger },
  );
  t.after(() => gateway.close(0));

  // The robot publishes raw sensor_msgs/Image on /camera1/image_raw; the omx_f preset names the JPEG topic.
  const sim = await startSim(t, env);
  const bridge = new JsonLinesChild(
    'bridge',
    spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'bridge', '--preset', 'omx_f', '--gateway', gateway.zmqEndpoint, '--instruction', 'pick up the cube'], {
      cwd: ROOT,
      env: { ...env, LD_PRELOAD: ros2.ldPreload, PAIG_RCLNODEJS_DIR: ros2.rclnodejsDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  t.after(() => bridge.stop('SIGKILL'));
  const dump = () => `\n--- bridge stderr ---\n${bridge.stderr.slice(-40).join('\n')}\n--- sim stderr ---\n${sim.stderr.slice(-20).join('\n')}`;

  try {
    // Discovery both ways: the bridge's status (republished every second) reaches the robot; the bridge starts idle.
    const idle = await sim.waitFor('idle status', statusWhere((s) => s.state === 'idle'));
    assert.equal(idle.status.robot, 'omx_f');
    assert.equal(sim.events.filter(isTrajectory).length, 0, 'nothing commanded before start');

    // start through the real service layer (rclpy client → rclnodejs service).
    const started = await call(sim, 'start');
    assert.equal(started.success, true, started.message);
    assert.match(started.message, /^running \(was idle\)$/);

    const chunk = await sim.waitFor('a chunk', isChunk);
    assert.deepEqual(chunk.joint_names, OMX.outputs[0]!.joints);
    assert.ok(chunk.points.length <= 16);
    chunk.points.forEach((p, i) => {
      if (i === 0) return;
      const prev = chunk.points[i - 1]!;
      assert.ok(Math.abs(p.t - prev.t - DT_S) < 1e-6, `time_from_start steps by dt: ${prev.t} → ${p.t}`);
      p.positions.forEach((q, j) => assert.ok(Math.abs(q - prev.positions[j]! - 0.01) < 1e-6, `the demo policy's +0.01 per step (joint ${j})`));
    });
    assert.ok(Math.abs(chunk.points.at(-1)!.t / DT_S - 16) < 1e-6, 'the chunk runs to its 16th step');
    assert.ok(chunk.stamp > 0 && chunk.stamp <= chunk.received && chunk.received - chunk.stamp < 1, 'stamped with the observation time');

    const running = await sim.waitFor('running status with the camera source', statusWhere((s) => s.state === 'running' && s.cameras.camera1 !== undefined && s.chunks > 0));
    assert.deepEqual(running.status.cameras, { camera1: { topic: '/camera1/image_raw', type: 'image' } });
    assert.equal(running.status.gatewayConnected, true);
    assert.equal(running.status.instruction, 'pick up the cube');
    assert.ok(bridge.stderr.some((l) => l.includes('"bridge.camera_source"') && l.includes('sensor_msgs/msg/Image')), 'the log says which camera type is used');

    // The robot followed: joint1 moved up from its initial 0.1.
    const later = await sim.waitFor('a later chunk', (e): e is Extract<SimEvent, { event: 'trajectory' }> => isChunk(e) && e.positions[0]! > 0.15, chunk.index + 1);
    assert.ok(later.positions[0]! > 0.15);

    // Emergency stop: a single-point hold at where the robot is, repeated while latched; stop is refused.
    const before = sim.events.length;
    const estop = await call(sim, 'emergency_stop');
    assert.equal(estop.success, true, estop.message);
    const hold = await sim.waitFor('the e-stop hold', isHold, before);
    // The bridge holds at the last joint state it measured; the robot may have moved on a little (0.3 rad/s here)
    // before the hold reached it, more on a loaded machine: within 0.1 rad (about 300 ms of motion) is "where it is".
    hold.positions.forEach((q, j) => assert.ok(Math.abs(hold.points[0]!.positions[j]! - q) < 0.1, `held at the measured position (joint ${j}): ${hold.points[0]!.positions[j]} vs ${q}`));
    const repeat = await sim.waitFor('the hold repeated', isTrajectory, hold.index + 1);
    assert.deepEqual(repeat.points, hold.points, 'the same hold again');
    assert.ok(repeat.stamp > hold.stamp);
    await sim.waitFor('estopped status', statusWhere((s) => s.state === 'estopped' && s.reason === 'emergency_stop'), before);
    const refused = await call(sim, 'stop');
    assert.equal(refused.success, false);
    assert.match(refused.message, /latched/);

    // start resumes chunks.
    const resumedFrom = sim.events.length;
    assert.equal((await call(sim, 'start')).success, true);
    await sim.waitFor('a chunk after start', isChunk, resumedFrom);

    // stop: one hold, then nothing (stopped is not an outage).
    const stopFrom = sim.events.length;
    const stopped = await call(sim, 'stop');
    assert.equal(stopped.success, true, stopped.message);
    await sim.waitFor('the stop hold', isHold, stopFrom);
    await sim.waitFor('idle status after stop', statusWhere((s) => s.state === 'idle' && s.reason === 'stop'), stopFrom);

    // SIGINT: the bridge closes its node and exits 0.
    assert.equal(await bridge.stop('SIGINT', 10_000), 0, 'the bridge exits cleanly');
    assert.ok(bridge.stderr.some((l) => l.includes('"ros.node_stopped"')));
  } catch (err) {
    throw Object.assign(err as Error, { message: `${(err as Error).message}${dump()}` });
  }
  assert.equal(await sim.stop('SIGCONT'), 0, 'the sim exits when its stdin closes');
});
