// The recorder on a real gateway, real files read back with @mcap/core's own indexed reader: what requests through
// both doors leave on disk (channels, schemas, counts, image bytes), the run-time switch and its token rule, rotation
// by size, and a full queue that drops (and counts) records without touching the requests.
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { McapIndexedReader } from '@mcap/core';
import { Registry } from 'prom-client';
import { sampleObservation, sampleState } from '../../src/cli/sample.js';
import { encodeMessage } from '../../src/protocol/codec.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { Recorder } from '../../src/recording/recorder.js';
import { createMetrics, RECORDING_DROPPED_TOTAL, RECORDING_EXCHANGES_TOTAL, type GatewayMetrics } from '../../src/telemetry/metrics.js';
import { WorkerClient } from '../../src/zmq/worker-client.js';
import { startTestGateway } from '../support/gateway.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'paig-rec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'recordings'); // created by the recorder
}

/** @mcap/core's indexed reader over a file; the handle is closed after the test. */
async function mcapReader(t: TestContext, path: string): Promise<McapIndexedReader> {
  const handle: FileHandle = await open(path, 'r');
  t.after(() => handle.close());
  return McapIndexedReader.Initialize({
    readable: {
      size: async () => BigInt((await handle.stat()).size),
      read: async (offset, size) => {
        const buf = new Uint8Array(Number(size));
        await handle.read(buf, 0, buf.byteLength, Number(offset));
        return buf;
      },
    },
  });
}

/** Every message of a file, decoded from JSON, by topic. */
async function messagesByTopic(reader: McapIndexedReader): Promise<Map<string, Array<{ sequence: number; body: Record<string, unknown> }>>> {
  const out = new Map<string, Array<{ sequence: number; body: Record<string, unknown> }>>();
  for await (const m of reader.readMessages()) {
    const topic = reader.channelsById.get(m.channelId)!.topic;
    if (!out.has(topic)) out.set(topic, []);
    out.get(topic)!.push({ sequence: m.sequence, body: JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown> });
  }
  return out;
}

async function counter(metrics: GatewayMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0);
}

test('requests through both doors are recorded: channels, schemas and counts as @mcap/core reads them, images byte for byte', async (t) => {
  const dir = await tempDir(t);
  const metrics = createMetrics(new Registry());
  const gateway = await startTestGateway(t, { frameworks: { demo: { embedded: true, record: true } }, recording: { dir } }, { metrics });
  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 10_000 });
  t.after(() => zmq.close());

  const sent = sampleObservation('L');
  const zmqIds: string[] = [];
  for (let i = 0; i < 2; i++) zmqIds.push((await zmq.request({ type: 'inference', data: sent })).header.request_id!);
  await zmq.request({ type: 'health' }); // not an inference: not recorded
  const post = (body: Uint8Array | string, type: string) => fetch(`${gateway.httpUrl}/v1/frameworks/demo/inference`, { method: 'POST', headers: { 'content-type': type }, body: body as Uint8Array<ArrayBuffer> });
  assert.equal((await post(encodeMessage({ data: sampleObservation('L'), request_id: 'http-msgpack' }, 'msgpack')[0]!, 'application/msgpack')).status, 200);
  assert.equal((await post(JSON.stringify({ data: { state: [0.5, 0.25] }, request_id: 'http-json' }), 'application/json')).status, 200);
  assert.equal((await post(JSON.stringify({ data: { state: [] }, request_id: 'http-bad' }), 'application/json')).status, 400); // recorded with its outcome
  await gateway.recorder.flush();

  const files = await readdir(dir);
  assert.equal(files.length, 1, 'one finished file, no .part left');
  assert.match(files[0]!, /^paig-.*\.mcap$/);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, files[0]!))).mode & 0o777, 0o600);

  const reader = await mcapReader(t, join(dir, files[0]!));
  assert.deepEqual([...reader.schemasById.values()].map((s) => `${s.name}:${s.encoding}`).sort(), ['foxglove.RawImage:jsonschema', 'paig.ActionChunk:jsonschema', 'paig.Observation:jsonschema', 'paig.Timing:jsonschema']);
  const rawImageSchema = JSON.parse(new TextDecoder().decode([...reader.schemasById.values()].find((s) => s.name === 'foxglove.RawImage')!.data)) as { properties: Record<string, { type: string; contentEncoding?: string }> };
  assert.deepEqual(Object.keys(rawImageSchema.properties).sort(), ['data', 'encoding', 'frame_id', 'height', 'step', 'timestamp', 'width']);
  assert.equal(rawImageSchema.properties.data!.contentEncoding, 'base64');
  const counts = Object.fromEntries([...reader.channelsById.values()].map((c) => [c.topic, Number(reader.statistics!.channelMessageCounts.get(c.id))]));
  assert.deepEqual(counts, { '/demo/observation': 5, '/demo/camera/top': 3, '/demo/camera/wrist': 3, '/demo/camera/side': 3, '/demo/action': 5, '/demo/timing': 5 });
  assert.ok([...reader.channelsById.values()].every((c) => c.messageEncoding === 'json'));

  const byTopic = await messagesByTopic(reader);
  const observations = byTopic.get('/demo/observation')!.map((m) => m.body);
  assert.deepEqual(observations.map((o) => `${o.request_id as string}/${o.transport as string}/${o.codec as string}`), [`${zmqIds[0]}/zmq/binary`, `${zmqIds[1]}/zmq/binary`, 'http-msgpack/http/msgpack', 'http-json/http/json', 'http-bad/http/json']);
  assert.deepEqual(observations[0]!.state, Array.from(sampleState()));
  assert.equal(observations[0]!.instruction, 'pick up the cube');
  // The first camera image of the first request, decoded, is the sent image byte for byte.
  const top = byTopic.get('/demo/camera/top')![0]!;
  assert.equal(top.sequence, byTopic.get('/demo/observation')![0]!.sequence, 'the messages of one exchange share its sequence');
  assert.deepEqual({ width: top.body.width, height: top.body.height, encoding: top.body.encoding, step: top.body.step, frame_id: top.body.frame_id }, { width: 224, height: 224, encoding: 'rgb8', step: 672, frame_id: 'top' });
  const sentTop = (sent.images as Record<string, Tensor>).top!;
  assert.ok(Buffer.from(top.body.data as string, 'base64').equals(Buffer.from(sentTop.bytes())));

  const actions = byTopic.get('/demo/action')!.map((m) => m.body);
  assert.deepEqual(actions.map((a) => a.outcome), ['ok', 'ok', 'ok', 'ok', 'bad_request']);
  assert.equal(actions[0]!.model, 'demo-v1');
  assert.deepEqual(actions[0]!.action_shape, [16, 14]);
  const chunk = actions[0]!.action as number[][];
  assert.equal(chunk[0]![3], Math.fround(Math.fround(0.3) + Math.fround(0.01)), 'action[0][3] = state[3] + 0.01, as float32');
  assert.equal(actions[3]!.action_shape?.toString(), '16,2');
  const timing = byTopic.get('/demo/timing')![0]!.body;
  for (const key of ['total_ms', 'decode_ms', 'queue_ms', 'worker_compute_ms', 'transport_ms', 'encode_ms']) assert.equal(typeof timing[key], 'number', key);
  assert.ok((timing.request_bytes as number) > 3 * 224 * 224 * 3);
  assert.equal(await counter(metrics, RECORDING_EXCHANGES_TOTAL, { framework: 'demo' }), 5);
});

test('POST /v1/recording switches recording at run time, behind the token', async (t) => {
  const dir = await tempDir(t);
  const token = 'recording-test-token-0123';
  const gateway = await startTestGateway(t, { authToken: token, recording: { dir } });
  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 10_000 });
  t.after(() => zmq.close());
  const control = (body: unknown, auth = true) =>
    fetch(`${gateway.httpUrl}/v1/recording`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

  await zmq.request({ type: 'inference', data: sampleObservation('S') }); // off by default
  const refused = await control({ on: true }, false);
  assert.equal(refused.status, 401);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
  const unknown = await control({ on: true, frameworks: ['nope'] });
  assert.equal(unknown.status, 404);
  assert.equal((await control({ on: 'yes' })).status, 400);

  const on = (await (await control({ on: true, frameworks: ['demo'] })).json()) as { recording: boolean; frameworks: string[] };
  assert.deepEqual([on.recording, on.frameworks], [true, ['demo']]);
  for (let i = 0; i < 3; i++) await zmq.request({ type: 'inference', data: sampleObservation('S') });
  const off = (await (await control({ on: false })).json()) as { recording: boolean };
  assert.equal(off.recording, false);
  await zmq.request({ type: 'inference', data: sampleObservation('S') }); // off again: not recorded
  await gateway.recorder.flush();

  const status = (await (await fetch(`${gateway.httpUrl}/v1/recording`, { headers: { authorization: `Bearer ${token}` } })).json()) as { recorded: number; files: string[]; currentFile: string | null };
  assert.equal(status.recorded, 3);
  assert.equal(status.files.length, 1);
  assert.equal(status.currentFile, null);
  const reader = await mcapReader(t, status.files[0]!);
  assert.equal(reader.statistics!.messageCount, 9n, 'three exchanges of three messages (no cameras)');
});

test('files rotate by size: each finished file is complete and together they hold every exchange', async (t) => {
  const dir = await tempDir(t);
  const gateway = await startTestGateway(t, { recording: { enabled: true, dir, maxFileBytes: 65_536, maxQueue: 1_000 } });
  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 10_000 });
  t.after(() => zmq.close());
  const n = 120;
  for (let i = 0; i < n; i++) await zmq.request({ type: 'inference', data: sampleObservation('S') });
  await gateway.recorder.flush();

  const files = (await readdir(dir)).sort();
  assert.ok(files.length >= 2, `rotated (${files.length} files)`);
  assert.ok(files.every((f) => f.endsWith('.mcap')));
  let exchanges = 0;
  const sequences = new Set<number>();
  for (const [i, f] of files.entries()) {
    const reader = await mcapReader(t, join(dir, f));
    const size = (await stat(join(dir, f))).size;
    const observations = (await messagesByTopic(reader)).get('/demo/observation')!;
    exchanges += observations.length;
    for (const o of observations) sequences.add(o.sequence);
    // A file ends after the exchange that takes it past the cap: all but the last are near it, none far beyond.
    if (i < files.length - 1) assert.ok(size >= 65_536 * 0.8, `file ${f} reached the cap (${size})`);
    assert.ok(size < 65_536 + 16_384, `file ${f} is not far past the cap (${size})`);
  }
  assert.equal(exchanges, n);
  assert.equal(sequences.size, n);
});

test('a full queue drops exchanges and counts them; requests are answered as usual', async (t) => {
  const dir = await tempDir(t);
  const metrics = createMetrics(new Registry());
  const gateway = await startTestGateway(t, { recording: { enabled: true, dir, maxQueue: 1 } }, { metrics });
  const zmq = new WorkerClient({ endpoint: gateway.zmqEndpoint, codec: 'binary', timeoutMs: 20_000 });
  t.after(() => zmq.close());
  const n = 40;
  const replies = await Promise.all(Array.from({ length: n }, () => zmq.request({ type: 'inference', data: sampleObservation('L') })));
  for (const r of replies) assert.deepEqual((r.result as { action: Tensor }).action.shape, [16, 14]);
  await gateway.recorder.flush();

  const dropped = await counter(metrics, RECORDING_DROPPED_TOTAL, { framework: 'demo', reason: 'queue_full' });
  const written = await counter(metrics, RECORDING_EXCHANGES_TOTAL, { framework: 'demo' });
  assert.equal(written + dropped, n, 'every exchange is either written or counted as dropped');
  let onDisk = 0;
  for (const f of await readdir(dir)) onDisk += Number((await mcapReader(t, join(dir, f))).statistics!.channelMessageCounts.get(0) ?? 0n);
  assert.equal(onDisk, written);
  assert.equal(gateway.recorder.status().dropped, dropped);
});

test('the recorder never waits: exchanges beyond maxQueue in one turn are dropped at once, the rest written', async (t) => {
  const dir = await tempDir(t);
  const metrics = createMetrics(new Registry());
  const recorder = new Recorder({ dir, frameworks: ['demo'], recordAll: true, maxFileBytes: 1 << 20, maxFileAgeS: 60, maxQueue: 3, images: 'full', metrics });
  t.after(() => recorder.close());
  const image = new Tensor('uint8', [4, 4, 3], new Uint8Array(48).fill(7));
  for (let i = 0; i < 10; i++) {
    recorder.exchange({
      receivedAt: performance.now(), transport: 'zmq', codec: 'binary', framework: 'demo', requestId: `r${i}`, type: 'inference',
      data: { state: Tensor.of(new Float32Array([i])), images: { cam: image } }, result: { action: new Tensor('float32', [1, 1], new Float32Array([i])) },
      outcome: 'ok', errorMessage: undefined, stagesMs: {}, totalMs: 1, requestBytes: 0, responseBytes: 0,
    });
  }
  // Decided synchronously, before the writer ran once.
  assert.equal(recorder.status().dropped, 7);
  assert.equal(recorder.status().queued, 3);
  await recorder.flush();
  assert.equal(await counter(metrics, RECORDING_DROPPED_TOTAL, { reason: 'queue_full' }), 7);
  const reader = await mcapReader(t, recorder.files[0]!);
  const requestIds = (await messagesByTopic(reader)).get('/demo/observation')!.map((m) => m.body.request_id);
  assert.deepEqual(requestIds, ['r0', 'r1', 'r2']);
});
