// A simulated robot on any RosAdapter: follows published JointTrajectory messages the way ros2_control's
// JointTrajectoryController samples them (linear between points, from the state at receipt to the first point),
// applies Float64MultiArray commands at once, and publishes joint_states and synthetic rgb8 camera frames.
// Used by the tests and the jitter measurement; it is not part of the bridge itself.
import type { BridgeConfig, OutputSpec } from '../../src/ros-bridge/config.js';
import type { JointTrajectoryMsg, RosAdapter, RosPublisher, RosSubscription, ImageMsg, JointStateMsg } from '../../src/ros-bridge/ros-adapter.js';
import { fromRosTime } from '../../src/ros-bridge/ros-adapter.js';

export interface SimRobotOptions {
  adapter: RosAdapter;
  config: BridgeConfig;
  /** Initial joint positions in config order (default 0.1 * (j + 1)). */
  initial?: readonly number[];
  jointStateRateHz?: number;
  cameraRateHz?: number;
  imageWidth?: number;
  imageHeight?: number;
  /** Physics step, ms (default 5). */
  stepMs?: number;
}

interface Active {
  points: { t: number; pos: number[] }[];
  startT: number;
  startPos: number[];
}

interface Group {
  spec: OutputSpec;
  idx: number[];
  active?: Active;
}

export class SimRobot {
  readonly #adapter: RosAdapter;
  readonly #config: BridgeConfig;
  readonly #pos: Float64Array;
  readonly #groups: Group[];
  readonly #opts: Required<Omit<SimRobotOptions, 'adapter' | 'config' | 'initial'>>;
  readonly #paused = new Set<string>();
  #subs: RosSubscription[] = [];
  #timers: NodeJS.Timeout[] = [];
  #jointPub?: RosPublisher<JointStateMsg>;
  #cameraPubs: { topic: string; pub: RosPublisher<ImageMsg> }[] = [];
  #frame = 0;
  #jointStatesPaused = false;
  /** Trajectories received, per output topic. */
  readonly received = new Map<string, number>();

  constructor({ adapter, config, initial, jointStateRateHz = 100, cameraRateHz = 30, imageWidth = 32, imageHeight = 24, stepMs = 5 }: SimRobotOptions) {
    this.#adapter = adapter;
    this.#config = config;
    this.#pos = Float64Array.from(config.joints, (_j, i) => initial?.[i] ?? 0.1 * (i + 1));
    this.#groups = config.outputs.map((spec) => ({ spec, idx: spec.joints.map((j) => config.joints.indexOf(j)) }));
    this.#opts = { jointStateRateHz, cameraRateHz, imageWidth, imageHeight, stepMs };
  }

  #nowS(): number {
    return fromRosTime(this.#adapter.now());
  }

  start(): void {
    for (const g of this.#groups) {
      if (g.spec.type === 'joint_trajectory') {
        this.#subs.push(this.#adapter.subscribe(g.spec.topic, 'trajectory_msgs/msg/JointTrajectory', (msg) => this.#onTrajectory(g, msg)));
      } else {
        this.#subs.push(
          this.#adapter.subscribe(g.spec.topic, 'std_msgs/msg/Float64MultiArray', (msg) => {
            g.active = undefined;
            g.idx.forEach((i, k) => (this.#pos[i] = msg.data[k]!));
          }),
        );
      }
    }
    this.#jointPub = this.#adapter.createPublisher(this.#config.jointStateTopic, 'sensor_msgs/msg/JointState');
    for (const cam of this.#config.cameras) {
      if (cam.type === 'image') this.#cameraPubs.push({ topic: cam.topic, pub: this.#adapter.createPublisher(cam.topic, 'sensor_msgs/msg/Image') });
    }
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(this.#opts.stepMs, () => this.#step());
    every(1000 / this.#opts.jointStateRateHz, () => this.#publishJointState());
    every(1000 / this.#opts.cameraRateHz, () => this.#publishImages());
    this.#publishJointState();
    this.#publishImages();
  }

  #onTrajectory(g: Group, msg: JointTrajectoryMsg): void {
    this.received.set(g.spec.topic, (this.received.get(g.spec.topic) ?? 0) + 1);
    const now = this.#nowS();
    const stampS = fromRosTime(msg.header.stamp);
    const start = stampS === 0 ? now : stampS;
    const order = msg.joint_names.map((name) => g.spec.joints.indexOf(name));
    const points = msg.points.map((p) => {
      const pos = g.idx.map((i) => this.#pos[i]!);
      order.forEach((k, m) => {
        if (k >= 0) pos[k] = p.positions[m]!;
      });
      return { t: start + fromRosTime(p.time_from_start), pos };
    });
    g.active = { points, startT: now, startPos: g.idx.map((i) => this.#pos[i]!) };
  }

  #step(): void {
    const t = this.#nowS();
    for (const g of this.#groups) {
      const a = g.active;
      if (!a || a.points.length === 0) continue;
      let target: number[];
      const i = a.points.findIndex((p) => p.t > t);
      if (i === -1) target = a.points.at(-1)!.pos;
      else {
        const prev = i === 0 ? { t: a.startT, pos: a.startPos } : a.points[i - 1]!;
        const next = a.points[i]!;
        const span = next.t - prev.t;
        const w = span <= 0 ? 1 : Math.min(1, Math.max(0, (t - prev.t) / span));
        target = next.pos.map((p, k) => prev.pos[k]! + (p - prev.pos[k]!) * w);
      }
      g.idx.forEach((j, k) => (this.#pos[j] = target[k]!));
    }
  }

  #publishJointState(): void {
    if (this.#jointStatesPaused || !this.#jointPub) return;
    // Names in reverse config order, plus a joint the bridge does not drive: the bridge must map by name.
    const names = [...this.#config.joints].reverse();
    const position = names.map((n) => this.#pos[this.#config.joints.indexOf(n)]!);
    this.#jointPub.publish({
      header: { stamp: this.#adapter.now(), frame_id: '' },
      name: [...names, 'sim_extra_joint'],
      position: Float64Array.from([...position, 42]),
      velocity: new Float64Array(0),
      effort: new Float64Array(0),
    });
  }

  #publishImages(): void {
    const { imageWidth: w, imageHeight: h } = this.#opts;
    this.#frame++;
    for (const { topic, pub } of this.#cameraPubs) {
      if (this.#paused.has(topic)) continue;
      const data = new Uint8Array(w * h * 3).fill(this.#frame % 256);
      pub.publish({ header: { stamp: this.#adapter.now(), frame_id: topic }, height: h, width: w, encoding: 'rgb8', is_bigendian: 0, step: w * 3, data });
    }
  }

  /** Current joint positions, config order (a copy). */
  positions(): Float64Array {
    return Float64Array.from(this.#pos);
  }

  /** Stops (or resumes) publishing one camera, to make it stale. */
  pauseCamera(topic: string, paused = true): void {
    if (paused) this.#paused.add(topic);
    else this.#paused.delete(topic);
  }

  pauseJointStates(paused = true): void {
    this.#jointStatesPaused = paused;
  }

  close(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    for (const s of this.#subs) s.close();
    this.#subs = [];
    this.#jointPub?.close();
    for (const c of this.#cameraPubs) c.pub.close();
    this.#cameraPubs = [];
  }
}
