// Integration walk-through, like the original project's zmq_examples: starts a gateway (embedded demo worker,
// free ports), sends each kind of request through both front doors and prints the answers.
//   npx tsx examples/zmq-examples.ts            (the test suite runs it: test/examples/examples.test.ts)
import * as zmq from 'zeromq';
import { parseConfig } from '../src/config.js';
import { buildGateway } from '../src/build-gateway.js';
import { decodeMessage, encodeMessage } from '../src/protocol/codec.js';
import { Tensor } from '../src/protocol/tensor.js';
import { sampleObservation } from '../src/cli/sample.js';
import { WorkerClient } from '../src/zmq/worker-client.js';

function describeAction(result: unknown): string {
  const r = result as { action: unknown; model?: string; instruction?: string };
  const a = r.action;
  const shape = a instanceof Tensor ? `${a.dtype} [${a.shape.join(', ')}]` : `list [${(a as unknown[]).length}, ${((a as unknown[][])[0] ?? []).length}]`;
  const first = a instanceof Tensor ? Array.from(a.data.subarray(0, 3) as Float32Array) : ((a as number[][])[0] ?? []).slice(0, 3);
  return `action ${shape}, first row starts ${first.map((v) => Number(v).toFixed(3)).join(' ')}, model ${r.model}, instruction ${JSON.stringify(r.instruction ?? '')}`;
}

const config = parseConfig(undefined, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
const gateway = await buildGateway(config);
console.log(`gateway: HTTP ${gateway.httpUrl}, ZMQ ${gateway.zmqEndpoint}`);
try {
  // --- ZMQ front door, binary codec (images as raw frames, no copy on the way through)
  const binary = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 10_000 });
  const inf = await binary.inference(sampleObservation('L'));
  console.log(`inference [zmq binary, L]: ${describeAction(inf.result)} (${inf.roundTripMs.toFixed(2)} ms)`);
  const health = await binary.health();
  console.log(`health [zmq binary]: ready=${health.ready} framework=${health.framework} model=${health.model} sdk=${health.sdk}`);
  const command = await binary.command({ command: 'reset' });
  console.log(`command [zmq binary]: ${JSON.stringify(command.result)}`);
  const train = await binary.train({ dataset: 'demo/pick_place', steps: 10 });
  console.log(`train [zmq binary]: accepted=${(train.result as { accepted: boolean }).accepted} job=${(train.result as { job_id: string }).job_id}`);
  const status = await binary.request({ type: 'status', data: {} });
  console.log(`status [zmq binary]: ${JSON.stringify(status.result)}`);
  await binary.close();

  // --- ZMQ front door, msgpack codec (tensors inline in one frame)
  const msgpack = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'msgpack', timeoutMs: 10_000 });
  const infM = await msgpack.request({ type: 'inference', data: sampleObservation('S'), framework: 'demo' });
  console.log(`inference [zmq msgpack, S, framework demo]: ${describeAction(infM.result)}`);
  await msgpack.close();

  // --- ZMQ front door, the original JSON envelope over REQ (no framework field, {image, robot_state})
  const req = new zmq.Request({ linger: 0, receiveTimeout: 10_000 });
  req.connect(gateway.zmqEndpoint);
  await req.send(JSON.stringify({ type: 'inference', data: { image: [[[0, 0, 0]]], robot_state: [0.1, 0.2, 0.3] }, timestamp: Date.now() / 1000, request_id: 'original-1' }));
  const original = JSON.parse((await req.receive())[0]!.toString('utf8')) as { status: string; result: unknown; request_id: string };
  console.log(`inference [zmq json over REQ, original envelope]: status=${original.status} request_id=${original.request_id} ${describeAction(original.result)}`);
  await req.send(JSON.stringify({ type: 'inference', data: { framework_less: true }, request_id: 'original-2' }));
  const bad = JSON.parse((await req.receive())[0]!.toString('utf8')) as { status: string; error: { code: string; path: string } };
  console.log(`bad request [zmq json over REQ]: status=${bad.status} code=${bad.error.code} path=${bad.error.path}`);
  req.close();

  // --- HTTP front door, JSON and msgpack
  const res = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: [0, 0.5, 1], instruction: 'wave' }) });
  const body = (await res.json()) as { result: unknown };
  console.log(`inference [http json, bare observation]: HTTP ${res.status} ${describeAction(body.result)}`);
  const packed = encodeMessage({ data: sampleObservation('L'), request_id: 'http-mp-1' }, 'msgpack')[0]!;
  const resM = await fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: packed as Uint8Array<ArrayBuffer> });
  const replyM = decodeMessage([new Uint8Array(await resM.arrayBuffer())]).header;
  console.log(`inference [http msgpack, L]: HTTP ${resM.status} request_id=${String(replyM.request_id)} ${describeAction(replyM.result)}`);
  const missing = await fetch(`${gateway.httpUrl}/v1/frameworks/pi0/inference`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"state":[1]}' });
  console.log(`unknown framework [http json]: HTTP ${missing.status} code=${((await missing.json()) as { error: { code: string } }).error.code}`);
  const frameworks = (await (await fetch(`${gateway.httpUrl}/v1/frameworks`)).json()) as { frameworks: Array<{ name: string; state: string; requests: { ok: number } }> };
  console.log(`frameworks [http]: ${frameworks.frameworks.map((f) => `${f.name}=${f.state} (${f.requests.ok} ok)`).join(', ')}`);
  console.log('all examples done');
} finally {
  await gateway.close();
}
