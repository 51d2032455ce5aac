// What the client's arena writes: every large tensor, given as a Tensor or as a bare typed array, lands in the slot
// at the offset its descriptor names, byte for byte; the same array given twice is written once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ShmTensorRef } from '../../src/protocol/shm-descriptor.js';
import { Tensor } from '../../src/protocol/tensor.js';
import { ShmArena } from '../../src/shm/shm-arena.js';

function slotBytes(folder: string, segment: string, offset: number, length: number): Buffer {
  const fd = openSync(join(folder, segment.split('/')[1]!), 'r');
  try {
    const out = Buffer.alloc(length);
    assert.equal(readSync(fd, out, 0, length, offset), length);
    return out;
  } finally {
    closeSync(fd);
  }
}

test('bare typed arrays and Tensors land where their descriptors say; one array given twice is written once', (t) => {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-arena-place-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const arena = new ShmArena({ dir });
  t.after(() => arena.close());
  arena.open();
  const bare = new Float32Array(new Uint8Array(randomBytes(8192)).buffer);
  const image = new Tensor('uint8', [48, 48, 3], new Uint8Array(randomBytes(48 * 48 * 3)));
  const placement = arena.place({ state: bare, again: bare, images: { cam: image } });
  assert.ok(placement);
  t.after(() => placement.release());
  assert.equal(placement.tensors, 2, 'the array given twice counts once');
  assert.equal(placement.bytes, bare.byteLength + image.byteLength);
  const data = placement.data as { state: ShmTensorRef; again: ShmTensorRef; images: { cam: ShmTensorRef } };
  for (const ref of [data.state, data.again, data.images.cam]) {
    assert.ok(ref instanceof ShmTensorRef);
    assert.equal(typeof ref.shm.offset, 'number', 'every descriptor names its offset');
  }
  assert.equal(data.state.shm.offset, data.again.shm.offset);
  assert.deepEqual(data.state.shape, [2048]);
  assert.ok(slotBytes(arena.folder, data.state.shm.segment, data.state.shm.offset, bare.byteLength).equals(Buffer.from(bare.buffer)));
  assert.ok(slotBytes(arena.folder, data.images.cam.shm.segment, data.images.cam.shm.offset, image.byteLength).equals(Buffer.from(image.bytes())));
});
