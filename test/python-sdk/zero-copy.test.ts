// Zero copy on the Python side, shown from outside: a test-only handler (zero_copy_probe.py) reports, for
// every array the worker decoded, that it does not own its data, that its base chain ends at the received
// zmq.Frame, and that its data pointer lies inside that frame's buffer. (numpy reads unaligned memory
// correctly, so even a small tensor that libzmq placed at an odd offset stays a view; see --align-tensors.)
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ipcEndpoint, spawnPythonWorker } from '../support/python-worker.js';
import { lPayload, RawDealer } from './raw-client.js';
import { INTERPRETERS, pythonFor } from './venv.js';

// The L payload runs on both interpreters (venv.ts): pyzmq 24 (Debian, the offline image) and the newest from PyPI
// (the pip install); the other tests here run on Debian's python, as the offline worker image does.

const PROBE_DIR = fileURLToPath(new URL('.', import.meta.url));

interface ArrayReport {
  dtype: string;
  shape: number[];
  owndata: boolean;
  aligned: boolean;
  base_is_not_none: boolean;
  owner: string;
  owner_is_zmq_frame: boolean;
  within_frame: boolean;
  shares_memory?: boolean;
  frame_bytes?: number;
}

for (const interpreter of INTERPRETERS) for (const transport of ['tcp', 'ipc'] as const) {
  test(`${interpreter}: L payload over ${transport}: the worker's numpy arrays are views on the received frames`, async (t) => {
    const worker = await spawnPythonWorker({
      python: await pythonFor(interpreter),
      ...(transport === 'ipc' ? { endpoint: ipcEndpoint(t) } : {}),
      pythonPath: [PROBE_DIR],
      handlers: { 'debug.views': 'zero_copy_probe:views' },
    });
    t.after(() => worker.close());
    const dealer = new RawDealer(worker.endpoint);
    t.after(() => dealer.close());

    const reply = await dealer.request({ type: 'debug.views', data: lPayload() });
    assert.equal(reply.header.status, 'success', JSON.stringify(reply.header.error));
    const { arrays, copied_bytes, codec } = reply.header.result as { arrays: Record<string, ArrayReport>; copied_bytes: number; codec: string };
    assert.equal(codec, 'binary');
    assert.deepEqual(Object.keys(arrays).sort(), ['/data/images/cam_high', '/data/images/cam_left_wrist', '/data/images/cam_right_wrist', '/data/state']);
    for (const [path, a] of Object.entries(arrays)) {
      const image = path.startsWith('/data/images/');
      assert.equal(a.dtype, image ? 'uint8' : 'float32', path);
      assert.deepEqual(a.shape, image ? [224, 224, 3] : [14], path);
      assert.equal(a.owndata, false, `${path}: not a copy`);
      assert.equal(a.base_is_not_none, true, `${path}: has a base`);
      assert.equal(a.owner, 'Frame', `${path}: base chain ends at ${a.owner}`);
      assert.equal(a.owner_is_zmq_frame, true, path);
      assert.equal(a.within_frame, true, `${path}: data pointer inside the frame's buffer`);
      assert.equal(a.shares_memory, true, path);
      assert.equal(a.frame_bytes, image ? 224 * 224 * 3 : 56, path);
    }
    assert.equal(copied_bytes, 0, 'no alignment copy on the binary path');
  });
}

test('--align-tensors: a misaligned small tensor is copied once and counted; large ones stay views', async (t) => {
  const worker = await spawnPythonWorker({ pythonPath: [PROBE_DIR], handlers: { 'debug.views': 'zero_copy_probe:views' }, extraArgs: ['--align-tensors'] });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const reply = await dealer.request({ type: 'debug.views', data: lPayload() });
  const { arrays, copied_bytes } = reply.header.result as { arrays: Record<string, ArrayReport>; copied_bytes: number };
  const state = arrays['/data/state']!;
  assert.equal(state.aligned, true);
  // libzmq puts frames under its 8 KiB receive batch inside a shared buffer at any offset: the 56-byte state
  // may or may not be aligned; either way the copy, if made, is counted.
  assert.equal(state.owndata, copied_bytes > 0);
  assert.ok(copied_bytes === 0 || copied_bytes === 56, String(copied_bytes));
  for (const cam of ['cam_high', 'cam_left_wrist', 'cam_right_wrist']) assert.equal(arrays[`/data/images/${cam}`]!.within_frame, true);
});

test('a msgpack-inline request is decoded too; its arrays are views on the unpacked bytes, copies counted', async (t) => {
  const worker = await spawnPythonWorker({ pythonPath: [PROBE_DIR], handlers: { 'debug.views': 'zero_copy_probe:views' } });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const reply = await dealer.request({ type: 'debug.views', data: { state: lPayload().state } }, 'msgpack');
  const { arrays, codec, copied_bytes } = reply.header.result as { arrays: Record<string, ArrayReport>; codec: string; copied_bytes: number };
  assert.equal(codec, 'msgpack');
  const state = arrays['/data/state']!;
  assert.deepEqual(state.shape, [14]);
  // msgpack-python unpacks bin into a bytes object (one copy inside the msgpack parser, inherent to the
  // inline codec); the array is a view on those bytes, with no further copy.
  assert.equal(copied_bytes, 0);
  assert.equal(state.owndata, false);
  assert.equal(state.owner, 'bytes');
});
