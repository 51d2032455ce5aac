// The client's shared-memory arena when the filesystem under it fails: a full root (tmpfs ENOSPC, as a container's
// default 64 MiB /dev/shm fills up) and a folder removed under a live arena. Either way the request goes as frames
// (place() answers undefined, never throws), and a failed slot does not keep the pages it took.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Tensor } from '../../src/protocol/tensor.js';
import { ShmArena } from '../../src/shm/shm-arena.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/arena-full-root.ts', import.meta.url));

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'paig-arena-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const canUnshare = spawnSync('unshare', ['-m', 'true']).status === 0;

test('a full shared-memory root: the request goes as frames, the failed slot gives its pages back, and a smaller request still fits', async (t) => {
  // Fails, never skips: a skip would let CI pass without the full-root path ever running.
  assert.ok(canUnshare, 'needs unshare -m (a private mount namespace, as root) to mount a small tmpfs');
  const dir = tempRoot(t);
  // The tmpfs exists only in the child's mount namespace; `dir` stays empty outside it.
  const script = 'mount -t tmpfs -o size=1m,mode=0755 paig-full "$1" && exec "$2" --import tsx "$3" "$1"';
  const { stdout } = await promisify(execFile)('unshare', ['-m', 'sh', '-c', script, 'sh', dir, process.execPath, FIXTURE], { cwd: ROOT, timeout: 60_000 });
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as { big: boolean; afterBig: { stats: { slots: number; bytes: number }; files: string[] }; small: boolean; smallBytes: number };
  assert.equal(seen.big, false, 'a 4 MiB request does not fit in 1 MiB: frames');
  assert.deepEqual(seen.afterBig.stats, { slots: 0, free: 0, bytes: 0 }, 'the failed slot is dropped');
  assert.deepEqual(seen.afterBig.files, ['lease.json'], 'and its file removed, so its pages are free again');
  assert.equal(seen.small, true, 'a 200 kB request then fits in shared memory');
  assert.equal(seen.smallBytes, 200_000);
  assert.deepEqual(readdirSync(dir), [], 'nothing of the namespace\'s tmpfs is visible outside it');
});

test('a folder removed under a live arena: a request that needs a new slot goes as frames instead of throwing', (t) => {
  const arena = new ShmArena({ dir: tempRoot(t) });
  t.after(() => arena.close());
  arena.open();
  const first = arena.place({ image: new Tensor('uint8', [100_000], new Uint8Array(100_000)) });
  assert.ok(first, 'shared memory while the folder is there');
  first.release();
  rmSync(arena.folder, { recursive: true, force: true });
  const bigger = arena.place({ image: new Tensor('uint8', [1 << 20], new Uint8Array(1 << 20)) });
  assert.equal(bigger, undefined);
});
