// Real ACT on CPU: a LeRobot ACT policy (lerobot 0.6.1 + torch 2.11 from PyPI, .venv-lerobot; ResNet-18 + the
// default transformer, seeded weights, two 224×224 cameras, state 6, chunk 20 of which 10 are returned) served
// by the project's LeRobot worker (docker/lerobot/serve_policy.py, one torch thread), measured through the gateway
// (ZMQ door binary frames, HTTP door msgpack) and direct to the worker (binary frames), interleaved round-robin.
// Prints a table: median and p90 round trip per path and each path's ratio to direct.
//
//   node --import tsx bench/real-act.ts [--samples 40] [--image-size 224]
//
// Sets up .venv-lerobot with scripts/ensure-lerobot.sh when needed (minutes on a fresh machine). Everything on
// 127.0.0.1; every process it starts is stopped before it exits.
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config.js';
import { buildGateway } from '../src/build-gateway.js';
import { encodeMessage, decodeMessage } from '../src/protocol/codec.js';
import { Tensor } from '../src/protocol/tensor.js';
import { WorkerClient } from '../src/zmq/worker-client.js';
import { buildPolicies, ensureLerobot, startLerobotWorker } from './lib/lerobot-env.js';

const { values } = parseArgs({ options: { samples: { type: 'string', default: '40' }, 'image-size': { type: 'string', default: '224' } } });
const samples = Number(values.samples);
const size = Number(values['image-size']);

function image(seed: number): Tensor {
  const data = new Uint8Array(size * size * 3);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return new Tensor('uint8', [size, size, 3], data);
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

console.error(await ensureLerobot());
const policies = await buildPolicies(size);
const worker = await startLerobotWorker({ policyPath: policies.act, cameras: 'front=top,hand=wrist' });
const config = parseConfig({ healthIntervalMs: 200, frameworks: { lerobot: { endpoints: [worker.endpoint], timeoutMs: 60_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
const gateway = await buildGateway(config);
const direct = new WorkerClient({ endpoint: worker.endpoint, codec: 'binary', timeoutMs: 60_000 });
const viaZmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 60_000 });
try {
  await gateway.router.registry.entries().find((e) => e.name === 'lerobot')!.pool.whenReady(AbortSignal.timeout(180_000));
  const data = { images: { front: image(1), hand: image(2) }, state: Tensor.of(new Float32Array([0.1, -0.2, 0.3, 0.4, -0.5, 0.6])), instruction: 'pick' };
  const httpBody = encodeMessage({ data }, 'msgpack')[0] as Uint8Array<ArrayBuffer>;
  const paths: Record<string, () => Promise<number[]>> = {
    'direct to worker, ZMQ binary': async () => (await direct.request({ type: 'inference', data })).result as never,
    'gateway ZMQ door, binary': async () => (await viaZmq.request({ type: 'inference', framework: 'lerobot', data })).result as never,
    'gateway HTTP door, msgpack': async () => {
      const res = await fetch(`${gateway.httpUrl}/v1/frameworks/lerobot/inference`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: httpBody });
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return decodeMessage([bytes]).header.result as never;
    },
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  for (let i = 0; i < samples + 3; i++) {
    for (const [name, call] of Object.entries(paths)) {
      const t0 = performance.now();
      const result = (await call()) as unknown as { action: { shape: number[] } };
      const ms = performance.now() - t0;
      if (JSON.stringify(result.action.shape) !== '[10,6]') throw new Error(`${name}: action shape ${JSON.stringify(result.action.shape)}`);
      if (i >= 3) times[name]!.push(ms); // the first rounds warm every path
    }
  }
  const directMedian = quantile(times['direct to worker, ZMQ binary']!, 0.5);
  console.log(`\nreal ACT on CPU (lerobot 0.6.1, torch 2.11, 1 torch thread), two ${size}×${size} cameras + state 6 → [10, 6]; ${samples} samples per path, interleaved\n`);
  console.log('| path | median ms | p90 ms | median / direct |');
  console.log('|---|---:|---:|---:|');
  for (const [name, xs] of Object.entries(times)) {
    const med = quantile(xs, 0.5);
    console.log(`| ${name} | ${med.toFixed(1)} | ${quantile(xs, 0.9).toFixed(1)} | ${(med / directMedian).toFixed(3)} |`);
  }
} finally {
  await direct.close();
  await viaZmq.close();
  await gateway.close(0);
  await worker.close();
  policies.remove();
}
