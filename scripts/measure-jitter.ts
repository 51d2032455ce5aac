// Measures the control loop's period jitter (|period - 1/rate|: p50, p99, max) in the simulated setup: the
// in-process ROS adapter, the simulated robot, and the demo policy (in process, or a real gateway with --gateway).
//
//   npx tsx scripts/measure-jitter.ts [--seconds 10] [--rates 30,100] [--delay-ms 20] [--gateway tcp://127.0.0.1:5550]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { silentLogger } from '../src/lib/log.js';
import type { Tensor } from '../src/protocol/tensor.js';
import { validateBridgeConfig } from '../src/ros-bridge/config.js';
import type { JitterStats } from '../src/ros-bridge/control-loop.js';
import { createPolicyClient, startBridge } from '../src/ros-bridge/main.js';
import type { BridgeObservation } from '../src/ros-bridge/observation-builder.js';
import type { InferOptions, PolicyChunk, PolicyClient } from '../src/ros-bridge/policy-client.js';
import { presetConfig } from '../src/ros-bridge/presets.js';
import { MemoryRosAdapter } from '../test/ros-bridge/memory-adapter.js';
import { SimRobot } from '../test/ros-bridge/sim-robot.js';

/** The documented demo policy as an in-process PolicyClient: action[k][j] = state[j] + 0.01 (k + 1), after delayMs. */
export class LocalDemoPolicy implements PolicyClient {
  constructor(readonly delayMs = 0) {}
  async infer(observation: BridgeObservation, { signal }: InferOptions = {}): Promise<PolicyChunk> {
    const started = performance.now();
    if (this.delayMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.delayMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason as Error);
        }, { once: true });
      });
    }
    const state = (observation.state as Tensor).data as Float32Array;
    const dof = state.length;
    const action = new Float32Array(16 * dof);
    for (let k = 0; k < 16; k++) for (let j = 0; j < dof; j++) action[k * dof + j] = state[j]! + 0.01 * (k + 1);
    const roundTripMs = performance.now() - started;
    return { action, horizon: 16, dof, dtS: 1 / 30, timing: { roundTripMs }, result: { model: 'demo-v1', instruction: observation.instruction } };
  }
  async close(): Promise<void> {}
}

export interface JitterRun extends JitterStats {
  rateHz: number;
  chunks: number;
  starvation: number;
  holds: number;
}

/** Runs the simulated robot + bridge at `rateHz` for `seconds` and returns the loop's jitter statistics. */
export async function measureJitter({ rateHz, seconds, policy }: { rateHz: number; seconds: number; policy: PolicyClient }): Promise<JitterRun> {
  const config = validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }), rateHz, startOnLaunch: true });
  const adapter = new MemoryRosAdapter({ maxRecorded: 1_000 });
  const robot = new SimRobot({ adapter, config });
  robot.start();
  await new Promise((r) => setTimeout(r, 100));
  const bridge = startBridge(config, { adapter, policy, log: silentLogger, registry: new Registry() });
  try {
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const status = bridge.loop.status();
    return { rateHz, ...bridge.loop.jitterStats(), chunks: status.chunks, starvation: status.starvation, holds: status.holds };
  } finally {
    await bridge.close();
    robot.close();
    await adapter.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      rates: { type: 'string', default: '30,100' },
      'delay-ms': { type: 'string', default: '20' },
      gateway: { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  for (const rateHz of values.rates.split(',').map(Number)) {
    const policy = values.gateway
      ? createPolicyClient(validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }), gateway: values.gateway }), silentLogger)
      : new LocalDemoPolicy(Number(values['delay-ms']));
    try {
      const r = await measureJitter({ rateHz, seconds, policy });
      const f = (v: number) => v.toFixed(3);
      process.stdout.write(
        `${rateHz} Hz, ${seconds} s, ${r.count} periods: |period - ${f(1000 / rateHz)} ms| p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms, max ${f(r.maxMs)} ms; ` +
          `mean period ${f(r.meanPeriodMs)} ms; chunks ${r.chunks}, starvation ${r.starvation}, holds ${r.holds}\n`,
      );
    } finally {
      await policy.close();
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
