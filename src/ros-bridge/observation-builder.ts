// Newest camera frames, joint positions and instruction → one Observation, refusing anything older than the
// configured age (by arrival time on this host, so sim time and remote clocks do not matter).
import { GatewayError } from '../lib/errors.js';
import { Tensor } from '../protocol/tensor.js';
import type { BridgeConfig, CameraMessageType, CameraSpec } from './config.js';
import { missingJpegDecoder, type ImageDecoder } from './image.js';
import { inThreadConverter, type ImageConverter } from './image-pool.js';
import type { CompressedImageMsg, ImageMsg, JointStateMsg, RosAdapter, RosSubscription, RosTime } from './ros-adapter.js';
import { fromRosTime, toRosTime } from './ros-adapter.js';

/** What the bridge sends as `data` of an inference request. */
export interface BridgeObservation {
  images: Record<string, Tensor>;
  /** float32 [dof], joint order of the config. */
  state: Tensor;
  instruction: string;
  /** ROS time of the observation, seconds. */
  stamp: number;
}

/** An observation plus what the loop needs beside it. */
export interface BuiltObservation {
  observation: BridgeObservation;
  /** ROS stamp of the observation (the same instant as `stamp`). */
  rosStamp: RosTime;
  /** Measured joint positions (float64, config order): the hold target. */
  measured: Float64Array;
  /** Monotonic ms (performance.now()) when its inputs were captured. */
  atMs: number;
}

/** The inputs as of one instant (captured on the loop's thread, at the tick); camera frames not yet converted. */
export interface CapturedInputs {
  /** The newest frame of each camera, in config order. */
  frames: { type: CameraMessageType; msg: ImageMsg | CompressedImageMsg }[];
  instruction: string;
  rosStamp: RosTime;
  measured: Float64Array;
  atMs: number;
}

/** A camera, the joint state or a joint is missing or too old. `code` is `unavailable`. */
export class StaleInputError extends GatewayError {
  /** No message has ever arrived on this input (start-up or discovery), as opposed to one that stopped coming. */
  readonly neverSeen: boolean;
  constructor(
    readonly topic: string,
    /** Age of the newest message in ms; Infinity when none has arrived. */
    readonly ageMs: number,
    readonly maxAgeMs: number,
    detail = '',
  ) {
    super(
      'unavailable',
      Number.isFinite(ageMs)
        ? `stale input: ${topic}${detail} is ${Math.round(ageMs)} ms old (limit ${maxAgeMs} ms)`
        : `stale input: no message yet on ${topic}${detail}`,
    );
    this.neverSeen = !Number.isFinite(ageMs);
  }
}

/** Where a camera's frames come from: the configured topic and type, or its raw/compressed sibling. */
export interface CameraSource {
  topic: string;
  type: CameraMessageType;
}

/**
 * The topics a camera is accepted on: the configured one first, then its sibling in the image_transport naming
 * (`X` carries sensor_msgs/Image, `X/compressed` sensor_msgs/CompressedImage), so a robot that publishes the other
 * kind still works without --raw-images or a config change.
 */
export function cameraSources(spec: CameraSpec): CameraSource[] {
  const own = { topic: spec.topic, type: spec.type };
  if (spec.type === 'compressed') {
    return spec.topic.endsWith('/compressed') ? [own, { topic: spec.topic.slice(0, -'/compressed'.length), type: 'image' }] : [own];
  }
  return [own, { topic: `${spec.topic.replace(/\/+$/, '')}/compressed`, type: 'compressed' }];
}

interface CameraSlot {
  spec: CameraSpec;
  /** The topic and type in use: set by the first frame on any candidate (the other subscriptions are then closed). */
  source?: CameraSource;
  subs: RosSubscription[];
  msg?: ImageMsg | CompressedImageMsg;
  atMs: number;
  /** The conversion of the newest frame sent, reused while no newer frame arrives. */
  converted?: { msg: ImageMsg | CompressedImageMsg; tensor: Promise<Tensor> };
}

export interface ObservationBuilderOptions {
  config: BridgeConfig;
  adapter: RosAdapter;
  /** Converts camera frames to tensors (the bridge passes its image worker pool); defaults to this thread with `jpegDecoder`. */
  images?: ImageConverter;
  /** JPEG decoder for CompressedImage cameras converted on this thread; defaults to one that refuses with install instructions. */
  jpegDecoder?: ImageDecoder;
  /** Monotonic clock in ms; defaults to performance.now(). */
  nowMs?: () => number;
  /** Called when the instruction topic brings a new value. */
  onInstruction?: (instruction: string) => void;
  /** Called once per camera, when its first frame decides which topic and type it is read from. */
  onCameraSource?: (key: string, source: CameraSource) => void;
}

/** Subscribes on start(), keeps the newest of everything, builds observations on demand. */
export class ObservationBuilder {
  readonly #config: BridgeConfig;
  readonly #adapter: RosAdapter;
  readonly #images: ImageConverter;
  readonly #nowMs: () => number;
  readonly #onInstruction: ((instruction: string) => void) | undefined;
  readonly #onCameraSource: ((key: string, source: CameraSource) => void) | undefined;
  readonly #cameras: CameraSlot[];
  readonly #jointIndex: Map<string, number>;
  readonly #positions: Float64Array;
  readonly #jointAtMs: Float64Array;
  #jointStateAtMs = -Infinity;
  #instruction: string;
  #subs: RosSubscription[] = [];
  #started = false;

  constructor({ config, adapter, images, jpegDecoder = missingJpegDecoder, nowMs = () => performance.now(), onInstruction, onCameraSource }: ObservationBuilderOptions) {
    this.#config = config;
    this.#adapter = adapter;
    this.#images = images ?? inThreadConverter(jpegDecoder);
    this.#nowMs = nowMs;
    this.#onInstruction = onInstruction;
    this.#onCameraSource = onCameraSource;
    this.#cameras = config.cameras.map((spec) => ({ spec, subs: [], atMs: -Infinity }));
    this.#jointIndex = new Map(config.joints.map((j, i) => [j, i]));
    this.#positions = new Float64Array(config.joints.length);
    this.#jointAtMs = new Float64Array(config.joints.length).fill(-Infinity);
    this.#instruction = config.instruction;
  }

  /** Subscribes to every camera, the joint state and the instruction topic. */
  start(): void {
    if (this.#started) return;
    for (const slot of this.#cameras) {
      for (const source of cameraSources(slot.spec)) {
        const store = (msg: ImageMsg | CompressedImageMsg) => this.#onFrame(slot, source, msg);
        slot.subs.push(
          source.type === 'image'
            ? this.#adapter.subscribe(source.topic, 'sensor_msgs/msg/Image', store, { qos: 'sensor_data' })
            : this.#adapter.subscribe(source.topic, 'sensor_msgs/msg/CompressedImage', store, { qos: 'sensor_data' }),
        );
      }
    }
    this.#started = true;
    this.#subs.push(this.#adapter.subscribe(this.#config.jointStateTopic, 'sensor_msgs/msg/JointState', (msg) => this.#onJointState(msg)));
    if (this.#config.instructionTopic) {
      this.#subs.push(
        this.#adapter.subscribe(this.#config.instructionTopic, 'std_msgs/msg/String', (msg) => this.setInstruction(msg.data)),
      );
    }
  }

  #onFrame(slot: CameraSlot, source: CameraSource, msg: ImageMsg | CompressedImageMsg): void {
    if (!slot.source) {
      // The first frame decides; the other candidate's subscription is closed (no double traffic).
      slot.source = source;
      for (const sub of slot.subs) if (sub.topic !== source.topic) sub.close();
      slot.subs = slot.subs.filter((sub) => sub.topic === source.topic);
      this.#onCameraSource?.(slot.spec.key, source);
    } else if (slot.source.topic !== source.topic) {
      return; // a frame already queued on the closed candidate
    }
    slot.msg = msg;
    slot.atMs = this.#nowMs();
  }

  /** Which topic and type each camera is read from, for the cameras that have delivered a frame. */
  cameraSources(): Record<string, CameraSource> {
    const out: Record<string, CameraSource> = {};
    for (const slot of this.#cameras) if (slot.source) out[slot.spec.key] = { ...slot.source };
    return out;
  }

  /** The inputs no message has arrived on yet (cameras name every candidate topic), in config order. */
  unseenInputs(): string[] {
    const out: string[] = [];
    for (const slot of this.#cameras) {
      if (!slot.source) out.push(cameraSources(slot.spec).map((s) => s.topic).join(' or '));
    }
    if (this.#jointStateAtMs === -Infinity) out.push(this.#config.jointStateTopic);
    else {
      const missing = this.#config.joints.filter((_j, i) => this.#jointAtMs[i] === -Infinity);
      if (missing.length > 0) out.push(`${this.#config.jointStateTopic} (joints ${missing.join(', ')})`);
    }
    return out;
  }

  #onJointState(msg: JointStateMsg): void {
    const at = this.#nowMs();
    this.#jointStateAtMs = at;
    const n = Math.min(msg.name.length, msg.position.length);
    for (let i = 0; i < n; i++) {
      const index = this.#jointIndex.get(msg.name[i]!);
      if (index === undefined) continue;
      this.#positions[index] = msg.position[i]!;
      this.#jointAtMs[index] = at;
    }
  }

  /** Sets the instruction the next observation carries (the instruction topic calls this too). */
  setInstruction(instruction: string): void {
    if (instruction === this.#instruction) return;
    this.#instruction = instruction;
    this.#onInstruction?.(instruction);
  }

  get instruction(): string {
    return this.#instruction;
  }

  /** The newest measured positions (config order) if every joint has been seen, however old. */
  lastMeasured(): Float64Array | undefined {
    for (const at of this.#jointAtMs) if (at === -Infinity) return undefined;
    return Float64Array.from(this.#positions);
  }

  /** Throws StaleInputError naming the first input that is missing or too old. */
  checkFresh(now = this.#nowMs()): void {
    const max = this.#config.maxObservationAgeMs;
    for (const slot of this.#cameras) {
      if (now - slot.atMs > max) throw new StaleInputError(slot.source?.topic ?? slot.spec.topic, now - slot.atMs, max);
    }
    if (now - this.#jointStateAtMs > max) throw new StaleInputError(this.#config.jointStateTopic, now - this.#jointStateAtMs, max);
    for (let i = 0; i < this.#jointAtMs.length; i++) {
      const age = now - this.#jointAtMs[i]!;
      if (age > max) throw new StaleInputError(this.#config.jointStateTopic, age, max, ` (joint ${this.#config.joints[i]})`);
    }
  }

  /**
   * Captures the newest inputs. Throws StaleInputError when any is missing or older than maxObservationAgeMs. With
   * `tickMs` (the scheduled tick, monotonic ms) the stamp is the ROS time of that instant, not of the (slightly
   * later) call, so stamp + time_from_start lines up with the loop's schedule. Cheap: frames are converted by build().
   */
  capture(tickMs?: number): CapturedInputs {
    const atMs = this.#nowMs();
    this.checkFresh(atMs);
    const now = this.#adapter.now();
    const lagMs = tickMs === undefined ? 0 : Math.max(0, atMs - tickMs);
    return {
      frames: this.#cameras.map((slot) => ({ type: slot.source!.type, msg: slot.msg! })),
      instruction: this.#instruction,
      rosStamp: lagMs === 0 ? now : toRosTime(fromRosTime(now) - lagMs / 1000),
      measured: Float64Array.from(this.#positions),
      atMs,
    };
  }

  /**
   * The observation of captured inputs, camera frames converted (off this thread when the builder has an image
   * worker pool); a frame already converted for an earlier observation is reused. Rejects with `bad_request` or
   * `unavailable` when a frame cannot be decoded, `timeout` when a conversion misses `timeoutMs`.
   */
  async build(captured: CapturedInputs, { timeoutMs }: { timeoutMs?: number } = {}): Promise<BuiltObservation> {
    const tensors = await Promise.all(captured.frames.map(({ type, msg }, i) => this.#convert(this.#cameras[i]!, type, msg, timeoutMs)));
    const images: Record<string, Tensor> = {};
    this.#cameras.forEach((slot, i) => (images[slot.spec.key] = tensors[i]!));
    const { rosStamp, measured, atMs } = captured;
    return {
      observation: {
        images,
        state: new Tensor('float32', [measured.length], Float32Array.from(measured)),
        instruction: captured.instruction,
        stamp: fromRosTime(rosStamp),
      },
      rosStamp,
      measured,
      atMs,
    };
  }

  #convert(slot: CameraSlot, type: CameraMessageType, msg: ImageMsg | CompressedImageMsg, timeoutMs: number | undefined): Promise<Tensor> {
    if (slot.converted?.msg === msg) return slot.converted.tensor;
    const tensor = this.#images.toTensor(type, msg, slot.spec.resize, timeoutMs === undefined ? {} : { timeoutMs });
    const entry = { msg, tensor };
    slot.converted = entry;
    // A failed conversion is not kept: the next observation tries again.
    tensor.catch(() => {
      if (slot.converted === entry) slot.converted = undefined;
    });
    return tensor;
  }

  close(): void {
    for (const slot of this.#cameras) {
      for (const s of slot.subs) s.close();
      slot.subs = [];
    }
    for (const s of this.#subs) s.close();
    this.#subs = [];
  }
}
