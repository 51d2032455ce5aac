// Quick measurement: median round trip through each front door for the S and L payloads (embedded demo worker).
//   npx tsx examples/measure-round-trips.ts [count=300]
import { parseConfig } from '../src/config.js';
import { buildGateway } from '../src/build-gateway.js';
import { decodeMessage, encodeMessage, type Codec } from '../src/protocol/codec.js';
import { sampleObservation, sampleObservationJson, type SampleSize } from '../src/cli/sample.js';
import { WorkerClient } from '../src/zmq/worker-client.js';

const count = Number(process.argv[2] ?? 300);
const gateway = await buildGateway(parseConfig(undefined, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' }));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
try {
  for (const size of ['S', 'L'] as SampleSize[]) {
    for (const codec of ['binary', 'msgpack', 'json'] as Codec[]) {
      const client = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec, timeoutMs: 30_000 });
      const data = codec === 'json' ? sampleObservationJson(size) : sampleObservation(size);
      const n = codec === 'json' && size === 'L' ? Math.min(count, 30) : count;
      for (let i = 0; i < 20; i++) await client.inference(data);
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await client.inference(data);
        times.push(performance.now() - t0);
      }
      rows.push(`| ZMQ ${codec} | ${size} | ${median(times).toFixed(3)} | ${n} |`);
      await client.close();
    }
    for (const enc of ['json', 'msgpack'] as const) {
      const url = `${gateway.httpUrl}/v1/frameworks/demo/inference`;
      const body = enc === 'msgpack' ? encodeMessage({ data: sampleObservation(size) }, 'msgpack')[0]! : JSON.stringify({ data: sampleObservationJson(size) });
      const n = enc === 'json' && size === 'L' ? Math.min(count, 30) : count;
      const once = async () => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': `application/${enc}` }, body: body as Uint8Array<ArrayBuffer> | string });
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (enc === 'msgpack') decodeMessage([bytes]);
        else JSON.parse(Buffer.from(bytes).toString('utf8'));
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      };
      for (let i = 0; i < 20; i++) await once();
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await once();
        times.push(performance.now() - t0);
      }
      rows.push(`| HTTP ${enc} | ${size} | ${median(times).toFixed(3)} | ${n} |`);
    }
  }
  console.log('| front door | payload | median round trip, ms | requests |\n|---|---|---|---|');
  for (const r of rows) console.log(r);
} finally {
  await gateway.close();
}
