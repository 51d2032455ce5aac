// Quick round-trip measurement (not a test; the full benchmark is its own issue): a zeromq.js DEALER sends the
// S (14 float32) and L (3 x 224x224x3 uint8 + 14 float32) payloads to the Python SDK worker's demo policy
// and waits for the 16x14 float32 action, one request at a time. Prints medians and p90 in microseconds.
//   node --import tsx test/python-sdk/measure-rtt.ts [iterations=500]
import { decodeReply, encodeMessage } from '../../src/protocol/codec.js';
import { ipcEndpoint, spawnPythonWorker } from '../support/python-worker.js';
import { lPayload, RawDealer, sPayload } from './raw-client.js';

const iterations = Number(process.argv[2] ?? 500);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function measure(endpoint: string, data: object): Promise<{ median: number; p90: number; workerTotal: number; bytes: number }> {
  const dealer = new RawDealer(endpoint);
  try {
    const frames = encodeMessage({ type: 'inference', data, request_id: 'm' });
    const bytes = frames.reduce((n, f) => n + f.byteLength, 0);
    const times: number[] = [];
    const worker: number[] = [];
    for (let i = 0; i < iterations + 50; i++) {
      const t0 = process.hrtime.bigint();
      await dealer.sendFrames(frames);
      const reply = decodeReply(await dealer.receiveFrames());
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (reply.header.status !== 'success') throw new Error(JSON.stringify(reply.header.error));
      if (i >= 50) {
        times.push(us);
        worker.push(reply.header.timing!.total_ms * 1000);
      }
    }
    return { median: quantile(times, 0.5), p90: quantile(times, 0.9), workerTotal: quantile(worker, 0.5), bytes };
  } finally {
    dealer.close();
  }
}

const rows: string[] = [];
for (const transport of ['tcp', 'ipc'] as const) {
  const worker = await spawnPythonWorker(transport === 'ipc' ? { endpoint: ipcEndpoint() } : {});
  try {
    for (const [name, data] of [['S', { state: sPayload() }], ['L', lPayload()]] as const) {
      const r = await measure(worker.endpoint, data);
      rows.push(`| ${name} | ${transport} | ${r.bytes} | ${r.median.toFixed(0)} | ${r.p90.toFixed(0)} | ${r.workerTotal.toFixed(0)} |`);
    }
  } finally {
    await worker.close();
  }
}
process.stdout.write(`round trips: zeromq.js DEALER → Python SDK worker (demo policy), ${iterations} sequential requests after 50 warm-up\n`);
process.stdout.write('| payload | transport | request bytes | median µs | p90 µs | worker total_ms (median, µs) |\n|---|---|---|---|---|---|\n');
process.stdout.write(rows.join('\n') + '\n');
