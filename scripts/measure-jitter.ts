// Measures the control loop's timing in the simulated setup: the in-process ROS adapter, the simulated robot
// (joint states at 100 Hz), JPEG camera frames (640x480, sensor_msgs/CompressedImage) at 30 Hz resized to 224x224,
// and a real gateway in its own process (embedded demo worker, 20 ms per inference) answering over ZMQ.
//
// Each rate runs under normal scheduling (sharing the cores with whatever else runs) and, with --fifo <priority>,
// again with the bridge's main thread under SCHED_FIFO (`chrt -f -p`, as ROS 2 control loops run on real robots;
// its image worker threads and the gateway stay at normal priority).
//
// Per rate it reports tick lateness (time from each tick's deadline start + n / rate to when it ran: p50, p99, max,
// ticks later than one period), period jitter (|period - 1/rate|), the event loop's own delay
// (perf_hooks.monitorEventLoopDelay), garbage-collection pauses, and the process's CPU time.
//
//   npx tsx scripts/measure-jitter.ts [--seconds 15] [--rates 30,100] [--delay-ms 20] [--raw-images] [--fifo 50]
//                                    [--precise-wait-ms 0.5] [--gateway tcp://127.0.0.1:5550 | --local-policy] [--json] [--write-readme]
//
// --write-readme replaces the block between <!-- jitter:begin --> and <!-- jitter:end --> in README.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import jpeg from 'jpeg-js';
import { Registry } from 'prom-client';
import { silentLogger } from '../src/lib/log.js';
import type { Tensor } from '../src/protocol/tensor.js';
import { validateBridgeConfig, type BridgeConfig } from '../src/ros-bridge/config.js';
import type { JitterStats } from '../src/ros-bridge/control-loop.js';
import { loadJpegDecoder } from '../src/ros-bridge/image.js';
import { createPolicyClient, startBridge } from '../src/ros-bridge/main.js';
import type { BridgeObservation } from '../src/ros-bridge/observation-builder.js';
import type { InferOptions, PolicyChunk, PolicyClient } from '../src/ros-bridge/policy-client.js';
import { presetConfig } from '../src/ros-bridge/presets.js';
import type { CompressedImageMsg } from '../src/ros-bridge/ros-adapter.js';
import { MemoryRosAdapter } from '../test/ros-bridge/memory-adapter.js';
import { SimRobot } from '../test/ros-bridge/sim-robot.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WARM_UP_MS = 1_000;

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

/** A real gateway (`physical-ai-gateway serve`, embedded demo worker) in a child process; resolves with its ZMQ endpoint. */
export async function spawnGateway(delayMs: number): Promise<{ endpoint: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'jitter-gw-'));
  const configFile = join(dir, 'gateway.json');
  await writeFile(configFile, JSON.stringify({ frameworks: { demo: { embedded: true, embeddedDelayMs: delayMs } } }));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--config', configFile, '--http-port', '0', '--zmq-endpoint', 'tcp://127.0.0.1:*', '--log-level', 'warn'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`gateway did not start within 30 s:\n${out}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const m = /ZMQ\s+(tcp:\/\/\S+)/.exec(out);
        if (m && /frameworks: .*demo/.test(out)) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited with ${code}:\n${out}`));
      });
    });
    child.stdout!.resume();
    return { endpoint, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `count` different 640x480 JPEG frames (a moving gradient with texture), as a camera driver would send them. */
export function jpegFrames(count = 8, width = 640, height = 480): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let f = 0; f < count; f++) {
    const rgba = Buffer.alloc(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        rgba[i] = (x + f * 16) & 255;
        rgba[i + 1] = (y * 2 + ((x * y) >> 6)) & 255;
        rgba[i + 2] = ((x ^ y) + f * 8) & 255;
        rgba[i + 3] = 255;
      }
    }
    frames.push(new Uint8Array(jpeg.encode({ width, height, data: rgba }, 85).data));
  }
  return frames;
}

export interface JitterRun extends JitterStats {
  rateHz: number;
  /** How the bridge's main thread was scheduled: 'normal' or 'SCHED_FIFO <priority>'. */
  scheduling: string;
  seconds: number;
  chunks: number;
  starvation: number;
  holds: number;
  /** The event loop's delay over the run (monitorEventLoopDelay, 1 ms resolution), ms. */
  loopDelay: { p99Ms: number; maxMs: number };
  /** Garbage collections during the run: count, total and longest pause, ms. */
  gc: { count: number; totalMs: number; maxMs: number };
  /** CPU time of this process (all threads) per second of run time, %. */
  cpuPercent: number;
}

export interface MeasureOptions {
  rateHz: number;
  seconds: number;
  policy: PolicyClient;
  /** Raw 32x24 sensor_msgs/Image frames from the sim instead of 640x480 JPEG. */
  rawImages?: boolean;
  /** Run the bridge's main thread under SCHED_FIFO at this priority (needs CAP_SYS_NICE or an rtprio limit). */
  fifoPriority?: number;
  /** The bridge's preciseWaitMs (its default when not given). */
  preciseWaitMs?: number;
}

/** Puts this process's main thread (only) under SCHED_FIFO `priority`, or back to normal scheduling with undefined. */
function setMainThreadScheduling(priority: number | undefined): void {
  const args = priority === undefined ? ['-o', '-p', '0', String(process.pid)] : ['-f', '-p', String(priority), String(process.pid)];
  execFileSync('chrt', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Runs the simulated robot + bridge at `rateHz` for `seconds` and returns the loop's timing. */
export async function measureJitter({ rateHz, seconds, policy, rawImages = false, fifoPriority, preciseWaitMs }: MeasureOptions): Promise<JitterRun> {
  const base = presetConfig('omx_f', { rawImages });
  if (!rawImages) base.cameras = base.cameras.map((c) => ({ ...c, resize: { width: 224, height: 224, method: 'bilinear' as const } }));
  const config: BridgeConfig = validateBridgeConfig({ ...base, rateHz, startOnLaunch: true, ...(preciseWaitMs !== undefined ? { preciseWaitMs } : {}) });
  const adapter = new MemoryRosAdapter({ maxRecorded: 1_000 });
  const robot = new SimRobot({ adapter, config });
  robot.start();
  const timers: NodeJS.Timeout[] = [];
  if (!rawImages) {
    const frames = jpegFrames();
    let n = 0;
    const publishFrame = () => {
      for (const cam of config.cameras) {
        const msg: CompressedImageMsg = { header: { stamp: adapter.now(), frame_id: cam.key }, format: 'jpeg', data: frames[n++ % frames.length]! };
        adapter.publish(cam.topic, 'sensor_msgs/msg/CompressedImage', msg);
      }
    };
    publishFrame();
    timers.push(setInterval(publishFrame, 1000 / 30));
  }
  await new Promise((r) => setTimeout(r, 100));
  const jpegDecoder = await loadJpegDecoder();
  const bridge = startBridge(config, { adapter, policy, log: silentLogger, registry: new Registry(), ...(jpegDecoder ? { jpegDecoder } : {}) });
  // After the bridge has started its image workers, so that they keep normal priority.
  if (fifoPriority !== undefined) setMainThreadScheduling(fifoPriority);
  // Start-up (worker threads starting, code compiled on first use, the first chunk) is left out: measured from here.
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  bridge.loop.resetJitterStats();
  const gcPauses: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push(e.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const elapsedMs = performance.now() - t0;
    const status = bridge.loop.status();
    return {
      rateHz,
      scheduling: fifoPriority === undefined ? 'normal' : `SCHED_FIFO ${fifoPriority}`,
      seconds,
      ...bridge.loop.jitterStats(),
      chunks: status.chunks,
      starvation: status.starvation,
      holds: status.holds,
      loopDelay: { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 },
      gc: { count: gcPauses.length, totalMs: gcPauses.reduce((a, b) => a + b, 0), maxMs: Math.max(0, ...gcPauses) },
      cpuPercent: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
    };
  } finally {
    if (fifoPriority !== undefined) setMainThreadScheduling(undefined);
    loopDelay.disable();
    gcObserver.disconnect();
    for (const t of timers) clearInterval(t);
    await bridge.close();
    robot.close();
    await adapter.close();
  }
}

const f = (v: number, digits = 2) => v.toFixed(digits);

export function formatRun(r: JitterRun): string {
  return (
    `${r.rateHz} Hz, ${r.scheduling}, ${r.seconds} s, ${r.count + 1} ticks: lateness p50 ${f(r.lateness.p50Ms, 3)} ms, p99 ${f(r.lateness.p99Ms, 3)} ms, ` +
    `max ${f(r.lateness.maxMs)} ms, ${r.lateTicks} ticks late by more than a period; |period - ${f(1000 / r.rateHz)} ms| ` +
    `p50 ${f(r.p50Ms, 3)} p99 ${f(r.p99Ms, 3)} max ${f(r.maxMs)} ms; event-loop delay p99 ${f(r.loopDelay.p99Ms)} max ${f(r.loopDelay.maxMs)} ms; ` +
    `GC ${r.gc.count} pauses, longest ${f(r.gc.maxMs)} ms; CPU ${f(r.cpuPercent, 0)}%; chunks ${r.chunks}, starvation ${r.starvation}, holds ${r.holds}`
  );
}

/** The README block: a table of the runs, the machine, the date and the method. */
export function readmeBlock(runs: JitterRun[], { load }: { load: [number, number] }): string {
  const cpu = cpus();
  const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${f(totalmem() / 2 ** 30, 1)} GB`;
  const rows = runs.map(
    (r) =>
      `| ${r.rateHz} Hz | ${r.scheduling} | ${r.count + 1} | ${f(r.lateness.p50Ms, 3)} | ${f(r.lateness.p99Ms, 3)} | ${f(r.lateness.maxMs)} | ${r.lateTicks} | ` +
      `${f(r.p99Ms, 3)} | ${f(r.loopDelay.maxMs)} | ${f(r.gc.maxMs)} | ${f(r.cpuPercent, 0)} |`,
  );
  return [
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine} (load average ${f(load[0], 1)} → ${f(load[1], 1)}),`,
    `Node ${process.version}, with \`npx tsx scripts/measure-jitter.ts --fifo 50 --write-readme\`: ${runs[0]?.seconds ?? 0} s per row after 1 s of`,
    'warm-up; JPEG frames 640x480 at 30 Hz resized to 224x224, joint states at 100 Hz, a real gateway process (embedded',
    'demo worker, 20 ms per inference) answering over ZMQ. Lateness is the time from a tick\'s deadline (start + n / rate)',
    'to when it ran. "normal": the bridge shares the cores with everything else; "SCHED_FIFO 50": its main thread only.',
    '',
    '| rate | bridge thread | ticks | lateness p50 ms | p99 ms | max ms | ticks > 1 period late | \\|period − 1/rate\\| p99 ms | event-loop delay max ms | longest GC ms | CPU % |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

async function writeReadme(block: string): Promise<void> {
  const file = join(ROOT, 'README.md');
  const text = await readFile(file, 'utf8');
  const begin = '<!-- jitter:begin -->';
  const end = '<!-- jitter:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${begin} ... ${end} block`);
  await writeFile(file, `${text.slice(0, a + begin.length)}\n${block}\n${text.slice(b)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '15' },
      rates: { type: 'string', default: '30,100' },
      'delay-ms': { type: 'string', default: '20' },
      gateway: { type: 'string' },
      'local-policy': { type: 'boolean' },
      'raw-images': { type: 'boolean' },
      fifo: { type: 'string' },
      'precise-wait-ms': { type: 'string' },
      json: { type: 'boolean' },
      'write-readme': { type: 'boolean' },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 20)) throw new Error('--seconds must be in (0, 20]');
  const delayMs = Number(values['delay-ms']);
  const gateway = values.gateway || values['local-policy'] ? undefined : await spawnGateway(delayMs);
  const load0 = loadavg()[0]!;
  const runs: JitterRun[] = [];
  const schedulings = values.fifo === undefined ? [undefined] : [undefined, Number(values.fifo)];
  const preciseWaitMs = values['precise-wait-ms'] === undefined ? undefined : Number(values['precise-wait-ms']);
  try {
    for (const fifoPriority of schedulings) {
      for (const rateHz of values.rates.split(',').map(Number)) {
        const address = values.gateway ?? gateway?.endpoint;
        const policy = address
          ? createPolicyClient(validateBridgeConfig({ ...presetConfig('omx_f', { rawImages: true }), gateway: address, rateHz }), silentLogger)
          : new LocalDemoPolicy(delayMs);
        try {
          const r = await measureJitter({
            rateHz,
            seconds,
            policy,
            rawImages: values['raw-images'] === true,
            ...(fifoPriority !== undefined ? { fifoPriority } : {}),
            ...(preciseWaitMs !== undefined ? { preciseWaitMs } : {}),
          });
          runs.push(r);
          process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${formatRun(r)}\n`);
        } finally {
          await policy.close();
        }
      }
    }
  } finally {
    await gateway?.close();
  }
  if (values['write-readme']) await writeReadme(readmeBlock(runs, { load: [load0, loadavg()[0]!] }));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
