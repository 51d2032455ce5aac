// Test harness for the bridge: the in-process ROS adapter, a simulated robot, a real policy (the Python SDK worker
// over ZMQ, or the gateway), and the bridge itself, all closed after the test.
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/lib/log.js';
import { validateBridgeConfig, type BridgeConfig } from '../../src/ros-bridge/config.js';
import { startBridge, type RunningBridge } from '../../src/ros-bridge/main.js';
import { MemoryRosAdapter } from './memory-adapter.js';
import type { InferOptions, PolicyChunk, PolicyClient } from '../../src/ros-bridge/policy-client.js';
import { ZmqPolicyClient } from '../../src/ros-bridge/policy-client.js';
import type { BridgeObservation } from '../../src/ros-bridge/observation-builder.js';
import type { ImageDecoder } from '../../src/ros-bridge/image.js';
import { presetConfig, type PresetName } from '../../src/ros-bridge/presets.js';
import { SimRobot } from './sim-robot.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { spawnPythonWorker, type PythonWorker } from '../support/python-worker.js';

/** Wraps a real policy client and records what went in and came out (no behaviour of its own). */
export class RecordingPolicy implements PolicyClient {
  readonly observations: BridgeObservation[] = [];
  /** performance.now() when each observation was sent. */
  readonly sentAtMs: number[] = [];
  readonly results: PolicyChunk[] = [];
  readonly errors: unknown[] = [];
  constructor(readonly inner: PolicyClient) {}
  async infer(observation: BridgeObservation, options?: InferOptions): Promise<PolicyChunk> {
    this.observations.push(observation);
    this.sentAtMs.push(performance.now());
    try {
      const chunk = await this.inner.infer(observation, options);
      this.results.push(chunk);
      return chunk;
    } catch (err) {
      this.errors.push(err);
      throw err;
    }
  }
  onDown(listener: (reason: string) => void): () => void {
    return this.inner.onDown?.(listener) ?? (() => {});
  }
  onUp(listener: () => void): () => void {
    return this.inner.onUp?.(listener) ?? (() => {});
  }
  get connected(): boolean | undefined {
    return this.inner.connected;
  }
  connect(): void {
    this.inner.connect?.();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface Rig {
  config: BridgeConfig;
  adapter: MemoryRosAdapter;
  robot: SimRobot;
  policy: RecordingPolicy;
  bridge: RunningBridge;
  registry: Registry;
  worker?: PythonWorker;
}

export interface RigOptions {
  preset?: PresetName;
  /** Overrides merged over the preset (raw images). */
  config?: Record<string, unknown>;
  /** Python worker compute delay; ignored when `policy` is given. */
  delayMs?: number;
  /** A policy client to use instead of a fresh Python worker. */
  policy?: PolicyClient;
  /** Overrides for the simulated robot's config only (e.g. it publishes raw frames where the bridge expects JPEG). */
  robotConfig?: Record<string, unknown>;
  /** Start the robot before the bridge (default), or leave it to the test (`rig.robot.start()`). */
  startRobot?: boolean;
  /** Config for the bridge without the rawImages preset variant (its cameras are sensor_msgs/CompressedImage). */
  compressedPreset?: boolean;
  jpegDecoder?: ImageDecoder;
  /** Size of the simulated camera frames (default 32x24). */
  imageSize?: { width: number; height: number };
}

/** A Python SDK worker and a ZmqPolicyClient to it, closed after the test. */
export async function pythonPolicy(t: TestContext, delayMs = 0): Promise<{ worker: PythonWorker; policy: ZmqPolicyClient }> {
  const worker = await spawnPythonWorker({ delayMs });
  t.after(() => worker.close());
  const client = new WorkerClient({ endpoint: worker.endpoint, framework: 'demo', timeoutMs: 5_000 });
  const policy = new ZmqPolicyClient({ client, framework: 'demo' });
  t.after(() => policy.close());
  return { worker, policy };
}

export async function startRig(
  t: TestContext,
  { preset = 'omx_f', config: overrides = {}, delayMs = 0, policy, robotConfig, startRobot = true, compressedPreset = false, jpegDecoder, imageSize }: RigOptions = {},
): Promise<Rig> {
  const config = validateBridgeConfig({ ...presetConfig(preset, { rawImages: !compressedPreset }), startOnLaunch: true, ...overrides });
  let worker: PythonWorker | undefined;
  let inner = policy;
  if (!inner) ({ worker, policy: inner } = await pythonPolicy(t, delayMs));
  const recording = new RecordingPolicy(inner);
  const adapter = new MemoryRosAdapter();
  t.after(() => adapter.close());
  const robot = new SimRobot({
    adapter,
    config: robotConfig ? validateBridgeConfig({ ...presetConfig(preset, { rawImages: true }), ...overrides, ...robotConfig }) : config,
    ...(imageSize ? { imageWidth: imageSize.width, imageHeight: imageSize.height } : {}),
  });
  t.after(() => robot.close());
  if (startRobot) {
    robot.start();
    // Let the first joint state and frames arrive so the first tick has fresh inputs.
    await new Promise((r) => setTimeout(r, 50));
  }
  const registry = new Registry();
  const bridge = startBridge(config, { adapter, policy: recording, log: silentLogger, registry, ...(jpegDecoder ? { jpegDecoder } : {}) });
  t.after(() => bridge.close());
  return { config, adapter, robot, policy: recording, bridge, registry, ...(worker ? { worker } : {}) };
}

/** The value of a counter (summed over labels, or one label set) from the registry's JSON. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .filter((v) => !('metricName' in v) || v.metricName === name || v.metricName === undefined)
    .reduce((sum, v) => sum + v.value, 0);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 10 ms until it returns a value, or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
