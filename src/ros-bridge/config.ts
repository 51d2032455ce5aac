// Bridge configuration: the shape, its defaults, and one validation pass that reports every bad field at once.
import { ConfigError, IssueList, type ConfigIssue } from '../lib/config-error.js';
import { DEFAULT_GATEWAY_ZMQ_ENDPOINT } from '../zmq/addresses.js';

export type CameraMessageType = 'image' | 'compressed';
export type ResizeMethod = 'nearest' | 'bilinear';
export type BlendMethod = 'replace' | 'nearest_splice' | 'weighted_average';
export type OutputType = 'joint_trajectory' | 'float64_multi_array';

export interface ResizeSpec {
  width: number;
  height: number;
  method: ResizeMethod;
}

/** One camera: a sensor_msgs/Image (rgb8, bgr8, mono8) or sensor_msgs/CompressedImage (JPEG) topic → an observation key. */
export interface CameraSpec {
  key: string;
  topic: string;
  type: CameraMessageType;
  /** Resize to this size before sending (e.g. 224x224); absent = send as received. */
  resize?: ResizeSpec;
}

/** One controller: a JointTrajectoryController topic (one chunk = one message) or a forward-command controller (one message per tick). */
export interface OutputSpec {
  name: string;
  topic: string;
  type: OutputType;
  /** Joint order of this controller; every joint must be in `joints`. */
  joints: string[];
}

export interface JointLimit {
  min?: number;
  max?: number;
  /** Largest speed in joint units per second; a step moves at most maxVelocity * dt. */
  maxVelocity?: number;
}

export interface BlendingSpec {
  method: BlendMethod;
  /** nearest_splice: the new chunk starts at the nearest (L2) of its first `spliceWindow` steps (6 in the original). */
  spliceWindow: number;
  /** weighted_average: weight exp(-coefficient * i) for the i-th chunk covering a step, oldest first (LeRobot's ACT default 0.01). */
  ensembleCoefficient: number;
}

export interface BridgeConfig {
  /** The preset this config came from, if any (for logs and status). */
  robot: string;
  nodeName: string;
  cameras: CameraSpec[];
  jointStateTopic: string;
  /** Order of the state vector and of the action's dof axis. */
  joints: string[];
  /** std_msgs/String topic whose latest value becomes `instruction`; absent = the fixed `instruction`. */
  instructionTopic?: string;
  instruction: string;
  outputs: OutputSpec[];
  rateHz: number;
  framework: string;
  /** tcp:// or ipc:// = the gateway's ZMQ front door; http(s):// = its HTTP API. */
  gateway: string;
  /**
   * Same-host shared memory root (e.g. /dev/shm/physical-ai-gateway): camera images go to the worker through it
   * when the worker behind the gateway maps the same root (negotiated; frames otherwise). ZMQ gateways only.
   */
  sharedMemoryDir?: string;
  /** A camera frame or joint state older than this (by arrival time) is refused and the robot holds. */
  maxObservationAgeMs: number;
  /** Ask for the next chunk when this many steps (or fewer) remain of the current one. */
  requestAheadSteps: number;
  blending: BlendingSpec;
  limits: Record<string, JointLimit>;
  /** Hold when no fresh chunk has arrived for this long while running. */
  watchdogTimeoutMs: number;
  /**
   * While the robot is held (gateway outage, stale input, watchdog, e-stop, ...) the hold target is published
   * again at this rate, with a fresh stamp; 0 = once. ROS topics are volatile: a controller (re)started during the
   * outage never sees the hold published before it subscribed. The default 5 Hz gives it the target within
   * 200 ms of subscribing, inside the 500 ms input age limit, for a few hundred bytes per second.
   */
  holdRepeatHz: number;
  /**
   * The loop's timer wakes it this long (to 1 ms more) before each tick, and it sleeps the rest precisely
   * (Atomics.wait, sub-millisecond): timers alone fire up to about a millisecond late. The precise sleep blocks the
   * thread (ROS and gateway callbacks wait up to that long) but costs no CPU. 0 = timers only.
   */
  preciseWaitMs: number;
  /** Longest deadline of one inference (used when there is no plan left to cover it). */
  inferenceTimeoutMs: number;
  /** Step duration when the policy's result carries no dt_s. */
  defaultDtS: number;
  statusTopic: string;
  /** Services `<prefix>/start`, `<prefix>/stop`, `<prefix>/emergency_stop`. */
  servicePrefix: string;
  /** Start running as soon as the bridge is up (otherwise wait for the start service). */
  startOnLaunch: boolean;
}

export const DEFAULT_GATEWAY_ZMQ = DEFAULT_GATEWAY_ZMQ_ENDPOINT;

export const BRIDGE_DEFAULTS = {
  robot: 'custom',
  nodeName: 'physical_ai_bridge',
  jointStateTopic: '/joint_states',
  instruction: '',
  rateHz: 30,
  framework: 'demo',
  gateway: DEFAULT_GATEWAY_ZMQ,
  maxObservationAgeMs: 500,
  requestAheadSteps: 8,
  blending: { method: 'replace', spliceWindow: 6, ensembleCoefficient: 0.01 },
  limits: {},
  watchdogTimeoutMs: 1_000,
  holdRepeatHz: 5,
  preciseWaitMs: 0.5,
  inferenceTimeoutMs: 2_000,
  defaultDtS: 1 / 30,
  statusTopic: '/physical_ai_bridge/status',
  servicePrefix: '/physical_ai_bridge',
  startOnLaunch: false,
} as const satisfies Partial<BridgeConfig>;

/** A config problem: the field's path and what is wrong with it. */
export type ConfigProblem = ConfigIssue;

/** Thrown by validateBridgeConfig: every problem listed in `problems` (= `issues`) and in the message. */
export class BridgeConfigError extends ConfigError {
  override readonly name = 'BridgeConfigError';
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(problems, undefined, 'bridge config');
    this.problems = problems;
  }
}

const TOP_LEVEL_KEYS = new Set<string>([
  'robot', 'nodeName', 'cameras', 'jointStateTopic', 'joints', 'instructionTopic', 'instruction', 'outputs', 'rateHz', 'framework',
  'gateway', 'maxObservationAgeMs', 'requestAheadSteps', 'blending', 'limits', 'watchdogTimeoutMs', 'holdRepeatHz', 'inferenceTimeoutMs',
  'preciseWaitMs', 'defaultDtS', 'statusTopic', 'servicePrefix', 'startOnLaunch', 'sharedMemoryDir',
]);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Merges `override` into `base`: objects key by key, everything else (arrays included) replaced. Pure. */
export function mergeConfig(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isObject(base) || !isObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = mergeConfig(base[k], v);
  return out;
}

class Checker extends IssueList {
  string(v: unknown, path: string, { topic = false, nonEmpty = true } = {}): string {
    if (typeof v !== 'string' || (nonEmpty && v.length === 0)) {
      this.add(path, `must be a ${nonEmpty ? 'non-empty ' : ''}string, got ${JSON.stringify(v)}`);
      return '';
    }
    if (topic && !/^\/?[A-Za-z~][A-Za-z0-9_/~{}]*$/.test(v)) this.add(path, `is not a valid ROS name: ${JSON.stringify(v)}`);
    return v;
  }
  number(v: unknown, path: string, { min = -Infinity, max = Infinity, exclusiveMin = false, integer = false } = {}): number {
    const ok = typeof v === 'number' && Number.isFinite(v) && (exclusiveMin ? v > min : v >= min) && v <= max && (!integer || Number.isInteger(v));
    if (!ok) {
      const range = `${exclusiveMin ? '>' : '>='} ${min}${max < Infinity ? ` and <= ${max}` : ''}`;
      this.add(path, `must be ${integer ? 'an integer' : 'a number'} ${range}, got ${JSON.stringify(v)}`);
      return NaN;
    }
    return v as number;
  }
  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      this.add(path, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
      return values[0]!;
    }
    return v as T;
  }
  stringList(v: unknown, path: string): string[] {
    if (!Array.isArray(v) || v.length === 0) {
      this.add(path, 'must be a non-empty list of strings');
      return [];
    }
    const seen = new Set<string>();
    v.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) this.add(`${path}[${i}]`, `must be a non-empty string, got ${JSON.stringify(s)}`);
      else if (seen.has(s)) this.add(`${path}[${i}]`, `duplicate ${JSON.stringify(s)}`);
      else seen.add(s);
    });
    return v.filter((s): s is string => typeof s === 'string');
  }
  unknownKeys(v: Record<string, unknown>, path: string, known: ReadonlySet<string>): void {
    for (const k of Object.keys(v)) if (!known.has(k)) this.add(path ? `${path}.${k}` : k, 'unknown field');
  }
}

/**
 * Validates a config object (defaults filled for absent fields) and returns a frozen BridgeConfig.
 * Throws BridgeConfigError listing every problem at once.
 */
export function validateBridgeConfig(input: unknown): BridgeConfig {
  const c = new Checker();
  if (!isObject(input)) throw new BridgeConfigError([{ path: '(root)', message: 'must be an object' }]);
  const raw = mergeConfig(BRIDGE_DEFAULTS, input) as Record<string, unknown>;
  c.unknownKeys(raw, '', TOP_LEVEL_KEYS);

  const joints = c.stringList(raw.joints, 'joints');
  const jointSet = new Set(joints);

  const cameras: CameraSpec[] = [];
  if (!Array.isArray(raw.cameras)) c.add('cameras', 'must be a list (possibly empty)');
  else {
    const keys = new Set<string>();
    raw.cameras.forEach((cam: unknown, i) => {
      const p = `cameras[${i}]`;
      if (!isObject(cam)) return c.add(p, 'must be an object {key, topic, type, resize?}');
      c.unknownKeys(cam, p, new Set(['key', 'topic', 'type', 'resize']));
      const key = c.string(cam.key, `${p}.key`);
      if (keys.has(key)) c.add(`${p}.key`, `duplicate camera key ${JSON.stringify(key)}`);
      keys.add(key);
      const spec: CameraSpec = {
        key,
        topic: c.string(cam.topic, `${p}.topic`, { topic: true }),
        type: c.oneOf(cam.type ?? 'image', `${p}.type`, ['image', 'compressed'] as const),
      };
      if (cam.resize !== undefined) {
        const r = cam.resize;
        if (!isObject(r)) c.add(`${p}.resize`, 'must be {width, height, method?}');
        else {
          c.unknownKeys(r, `${p}.resize`, new Set(['width', 'height', 'method']));
          spec.resize = {
            width: c.number(r.width, `${p}.resize.width`, { min: 1, max: 8192, integer: true }),
            height: c.number(r.height, `${p}.resize.height`, { min: 1, max: 8192, integer: true }),
            method: c.oneOf(r.method ?? 'bilinear', `${p}.resize.method`, ['nearest', 'bilinear'] as const),
          };
        }
      }
      cameras.push(spec);
    });
  }

  const outputs: OutputSpec[] = [];
  if (!Array.isArray(raw.outputs) || raw.outputs.length === 0) c.add('outputs', 'must be a non-empty list of {name, topic, type, joints}');
  else {
    const names = new Set<string>();
    raw.outputs.forEach((out: unknown, i) => {
      const p = `outputs[${i}]`;
      if (!isObject(out)) return c.add(p, 'must be an object {name, topic, type, joints}');
      c.unknownKeys(out, p, new Set(['name', 'topic', 'type', 'joints']));
      const name = c.string(out.name, `${p}.name`);
      if (names.has(name)) c.add(`${p}.name`, `duplicate output name ${JSON.stringify(name)}`);
      names.add(name);
      const groupJoints = c.stringList(out.joints, `${p}.joints`);
      for (const j of groupJoints) if (jointSet.size > 0 && !jointSet.has(j)) c.add(`${p}.joints`, `joint ${JSON.stringify(j)} is not in 'joints'`);
      outputs.push({
        name,
        topic: c.string(out.topic, `${p}.topic`, { topic: true }),
        type: c.oneOf(out.type ?? 'joint_trajectory', `${p}.type`, ['joint_trajectory', 'float64_multi_array'] as const),
        joints: groupJoints,
      });
    });
  }

  const limits: Record<string, JointLimit> = {};
  if (!isObject(raw.limits)) c.add('limits', 'must be an object {<joint>: {min?, max?, maxVelocity?}}');
  else {
    for (const [joint, lim] of Object.entries(raw.limits)) {
      const p = `limits.${joint}`;
      if (!jointSet.has(joint)) c.add(p, `joint ${JSON.stringify(joint)} is not in 'joints'`);
      if (!isObject(lim)) {
        c.add(p, 'must be {min?, max?, maxVelocity?}');
        continue;
      }
      c.unknownKeys(lim, p, new Set(['min', 'max', 'maxVelocity']));
      const l: JointLimit = {};
      if (lim.min !== undefined) l.min = c.number(lim.min, `${p}.min`);
      if (lim.max !== undefined) l.max = c.number(lim.max, `${p}.max`);
      if (lim.maxVelocity !== undefined) l.maxVelocity = c.number(lim.maxVelocity, `${p}.maxVelocity`, { min: 0, exclusiveMin: true });
      if (l.min !== undefined && l.max !== undefined && !(l.min < l.max)) c.add(p, `min (${l.min}) must be below max (${l.max})`);
      limits[joint] = l;
    }
  }

  const blendingRaw = isObject(raw.blending) ? raw.blending : {};
  if (!isObject(raw.blending)) c.add('blending', 'must be {method, spliceWindow?, ensembleCoefficient?}');
  c.unknownKeys(blendingRaw, 'blending', new Set(['method', 'spliceWindow', 'ensembleCoefficient']));
  const blending: BlendingSpec = {
    method: c.oneOf(blendingRaw.method, 'blending.method', ['replace', 'nearest_splice', 'weighted_average'] as const),
    spliceWindow: c.number(blendingRaw.spliceWindow, 'blending.spliceWindow', { min: 1, integer: true }),
    ensembleCoefficient: c.number(blendingRaw.ensembleCoefficient, 'blending.ensembleCoefficient', { min: 0 }),
  };

  const gateway = c.string(raw.gateway, 'gateway');
  if (gateway && !/^(tcp|ipc):\/\/.+|^https?:\/\/.+/.test(gateway)) {
    c.add('gateway', `must be a tcp:// or ipc:// ZMQ address or an http(s):// URL, got ${JSON.stringify(gateway)}`);
  }

  let sharedMemoryDir: string | undefined;
  if (raw.sharedMemoryDir !== undefined) {
    sharedMemoryDir = c.string(raw.sharedMemoryDir, 'sharedMemoryDir');
    if (sharedMemoryDir !== undefined && !sharedMemoryDir.startsWith('/')) c.add('sharedMemoryDir', 'must be an absolute path (a folder on tmpfs)');
    if (gateway && /^https?:/.test(gateway)) c.add('sharedMemoryDir', 'needs a ZMQ gateway (tcp:// or ipc://); HTTP carries frames only');
  }

  let instructionTopic: string | undefined;
  if (raw.instructionTopic !== undefined) instructionTopic = c.string(raw.instructionTopic, 'instructionTopic', { topic: true });
  if (typeof raw.startOnLaunch !== 'boolean') c.add('startOnLaunch', `must be true or false, got ${JSON.stringify(raw.startOnLaunch)}`);

  const config: BridgeConfig = {
    robot: c.string(raw.robot, 'robot'),
    nodeName: c.string(raw.nodeName, 'nodeName'),
    cameras,
    jointStateTopic: c.string(raw.jointStateTopic, 'jointStateTopic', { topic: true }),
    joints,
    ...(instructionTopic !== undefined ? { instructionTopic } : {}),
    instruction: c.string(raw.instruction, 'instruction', { nonEmpty: false }),
    outputs,
    rateHz: c.number(raw.rateHz, 'rateHz', { min: 0, max: 1000, exclusiveMin: true }),
    framework: c.string(raw.framework, 'framework'),
    gateway,
    ...(sharedMemoryDir !== undefined ? { sharedMemoryDir } : {}),
    maxObservationAgeMs: c.number(raw.maxObservationAgeMs, 'maxObservationAgeMs', { min: 0, exclusiveMin: true }),
    requestAheadSteps: c.number(raw.requestAheadSteps, 'requestAheadSteps', { min: 0, integer: true }),
    blending,
    limits,
    watchdogTimeoutMs: c.number(raw.watchdogTimeoutMs, 'watchdogTimeoutMs', { min: 0, exclusiveMin: true }),
    holdRepeatHz: c.number(raw.holdRepeatHz, 'holdRepeatHz', { min: 0, max: 1000 }),
    preciseWaitMs: c.number(raw.preciseWaitMs, 'preciseWaitMs', { min: 0, max: 5 }),
    inferenceTimeoutMs: c.number(raw.inferenceTimeoutMs, 'inferenceTimeoutMs', { min: 0, exclusiveMin: true }),
    defaultDtS: c.number(raw.defaultDtS, 'defaultDtS', { min: 0, exclusiveMin: true }),
    statusTopic: c.string(raw.statusTopic, 'statusTopic', { topic: true }),
    servicePrefix: c.string(raw.servicePrefix, 'servicePrefix', { topic: true }),
    startOnLaunch: raw.startOnLaunch === true,
  };
  if (c.issues.length > 0) throw new BridgeConfigError(c.issues);
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
