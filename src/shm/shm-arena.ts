// A client's own shared memory: one folder under the root (mode 0700) with a lease it renews, and slot files
// (mode 0600) it reuses. Per request, `place()` writes the large tensors of the request's data into one slot and
// replaces them by descriptors, lends the rest of the slot to the worker as the reply area, and returns a release
// function; `readResult()` turns descriptors in the reply back into tensors. Releasing a slot lets the next request
// reuse it under a new generation, so a worker still holding the old descriptor refuses instead of reading new data.
//
// Why plain files and fs writes, not a native mmap: a client has to copy its tensors into shared memory once anyway
// (camera frames arrive in buffers of their own); pwrite(2) into tmpfs is that one copy, with no native addon, so
// `npm ci` stays compiler-free. The worker (Python) maps the files and gets numpy views with no copy at all.
// bench/README.md has the measurement (pwrite vs memcpy per size).
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readSync, renameSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { SLOT_GENERATION_OFFSET, SLOT_HEADER_BYTES, SLOT_MAGIC, ShmTensorRef, type ShmRequestField } from '../protocol/shm-descriptor.js';
import { Tensor, viewTensor, type TypedArray } from '../protocol/tensor.js';
import { DEFAULT_LEASE_MS, DEFAULT_SHM_DIR, LEASE_FILE, openRealm, selfIdentity, sweepRoot } from './shm-root.js';

/** Tensors smaller than this stay in frames (dora-rs's threshold: below it a copy is cheaper than a descriptor). */
export const DEFAULT_SHM_MIN_BYTES = 4_096;
/** Room lent to the worker for result tensors in every slot. */
export const DEFAULT_REPLY_BYTES = 64 * 1024;
const MIN_SLOT_BYTES = 64 * 1024;
const ALIGN = 64;

export interface ShmArenaOptions {
  /** The shared-memory root (default /dev/shm/physical-ai-gateway). */
  dir?: string;
  /** Tensors of at least this many bytes go to shared memory (default 4096). */
  minBytes?: number;
  /** Reply area per request (default 64 KiB); 0 lends none. */
  replyBytes?: number;
  /** Result tensors of at least this many bytes come back through the reply area (default: minBytes). */
  replyMinBytes?: number;
  /** Most bytes of slot files this client keeps (default 512 MiB); beyond it requests go as frames. */
  maxBytes?: number;
  /** Lease length (default 5 s); renewed three times per length. */
  leaseMs?: number;
  log?: Logger;
}

interface Slot {
  name: string;
  fd: number;
  size: number;
  generation: number;
}

/** One request's placement: the data to send, the request's `shm` field, and the release of its slot. */
export interface Placement {
  data: unknown;
  shm: ShmRequestField;
  /** Tensors placed in shared memory and their bytes. */
  tensors: number;
  bytes: number;
  /** Reads descriptors in the worker's result back into tensors (checked against this placement's slot). */
  readResult(result: unknown): unknown;
  /** Gives the slot back for reuse. Idempotent. */
  release(): void;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Tensor) && !(v instanceof ShmTensorRef);
}

function asTensor(v: unknown): Tensor | undefined {
  if (v instanceof Tensor) return v;
  // A bare Uint8Array is bytes (msgpack bin), as in the codec; typed arrays of other kinds are 1-D tensors.
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof Uint8Array)) return Tensor.of(v as TypedArray);
  return undefined;
}

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * pwrite of all of `bytes` at `at`. On a full tmpfs write(2) first writes what fits and returns the short count (an
 * error comes only on the next call): taking one short write for success would leave the rest of a tensor as a
 * hole the worker reads as zeros.
 */
function writeFully(fd: number, bytes: Uint8Array, at: number): void {
  for (let done = 0; done < bytes.byteLength; ) {
    const n = writeSync(fd, bytes, done, bytes.byteLength - done, at + done);
    if (n <= 0) throw Object.assign(new Error(`write to shared memory made no progress at byte ${at + done}`), { code: 'ENOSPC' });
    done += n;
  }
}

/** A client's shared-memory folder. Construct, `open()`, `place()` per request, `close()` removes everything. */
export class ShmArena {
  readonly dir: string;
  readonly minBytes: number;
  readonly replyBytes: number;
  readonly replyMinBytes: number;
  readonly client: string;
  readonly #maxBytes: number;
  readonly #leaseMs: number;
  readonly #log: Logger;
  /** The last place() failure's code, so a full root is logged once, not per request. */
  #lastPlaceError: string | undefined;
  readonly #key = randomBytes(24).toString('hex');
  readonly #free = new Map<number, Slot[]>();
  readonly #all = new Set<Slot>();
  #realm: string | undefined;
  #bytes = 0;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor({ dir = DEFAULT_SHM_DIR, minBytes = DEFAULT_SHM_MIN_BYTES, replyBytes = DEFAULT_REPLY_BYTES, replyMinBytes, maxBytes = 512 * 1024 * 1024, leaseMs = DEFAULT_LEASE_MS, log = silentLogger }: ShmArenaOptions = {}) {
    if (!(minBytes >= 0) || !(replyBytes >= 0) || !(maxBytes > 0) || !(leaseMs >= 100)) {
      throw new GatewayError('bad_request', 'shared memory: minBytes and replyBytes must be >= 0, maxBytes > 0, leaseMs >= 100');
    }
    this.dir = dir;
    this.minBytes = minBytes;
    this.replyBytes = replyBytes;
    this.replyMinBytes = replyMinBytes ?? minBytes;
    this.#maxBytes = maxBytes;
    this.#leaseMs = leaseMs;
    this.#log = log.child({ component: 'shm.arena' });
    this.client = `c${process.pid.toString(36)}-${randomBytes(6).toString('hex')}`;
  }

  /** The realm of the root (set by `open()`): a worker reporting the same realm shares this memory. */
  get realm(): string | undefined {
    return this.#realm;
  }

  get folder(): string {
    return join(this.dir, this.client);
  }

  /** Creates the folder and its lease, sweeps folders of owners that are gone, and starts renewing. Idempotent. */
  open(): string {
    if (this.#closed) throw new GatewayError('unavailable', 'shared memory arena is closed');
    if (this.#realm) return this.#realm;
    const realm = openRealm(this.dir);
    const swept = sweepRoot(this.dir);
    if (swept.removed.length > 0) this.#log.info({ event: 'shm.swept', removed: swept.removed });
    mkdirSync(this.folder, { mode: 0o700 });
    const tmp = join(this.folder, `.${LEASE_FILE}`);
    writeFileSync(tmp, JSON.stringify({ ...selfIdentity(), lease_ms: this.#leaseMs, key: this.#key }), { mode: 0o600 });
    renameSync(tmp, join(this.folder, LEASE_FILE));
    this.#timer = setInterval(() => this.#renew(), Math.max(50, Math.floor(this.#leaseMs / 3)));
    this.#timer.unref();
    this.#realm = realm;
    return realm;
  }

  #renew(): void {
    const now = new Date();
    try {
      utimesSync(join(this.folder, LEASE_FILE), now, now);
    } catch (err) {
      this.#log.warn({ event: 'shm.lease_renew_failed', err });
    }
  }

  stats(): { slots: number; free: number; bytes: number } {
    let free = 0;
    for (const list of this.#free.values()) free += list.length;
    return { slots: this.#all.size, free, bytes: this.#bytes };
  }

  /**
   * Moves the tensors of `data` of at least `minBytes` into one slot (one pwrite each) and returns the data with
   * descriptors in their place. Undefined when nothing is large enough, or the byte budget is spent (send frames).
   */
  place(data: unknown): Placement | undefined {
    if (!this.#realm || this.#closed) return undefined;
    const found: Tensor[] = [];
    collect(data, this.minBytes, found);
    if (found.length === 0) return undefined;
    let need = SLOT_HEADER_BYTES;
    for (const t of found) need = alignUp(need) + t.byteLength;
    const replyAt = alignUp(need);
    // Keyed by the typed array, not the Tensor: a bare typed array gets a new Tensor wrapper on every walk, so
    // replace() below would not find the one collect() saw.
    const offsets = new Map<TypedArray, number>();
    let bytes = 0;
    let slot: Slot | undefined;
    try {
      slot = this.#acquire(replyAt + this.replyBytes);
      if (!slot) return undefined;
      let at = SLOT_HEADER_BYTES;
      for (const t of found) {
        at = alignUp(at);
        const b = t.bytes();
        writeFully(slot.fd, b, at);
        offsets.set(t.data, at);
        at += b.byteLength;
        bytes += b.byteLength;
      }
    } catch (err) {
      // The root is full (tmpfs ENOSPC: a container's /dev/shm is 64 MiB by default) or the folder was removed under
      // us: this request goes as frames. The slot (if one was taken) is dropped, file and all, so the pages it holds
      // go back to the filesystem for smaller requests. Said once per kind of failure.
      if (slot) this.#discard(slot);
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code !== this.#lastPlaceError) this.#log.warn({ event: 'shm.place_failed', folder: this.folder, code, err, fallback: 'frames' });
      this.#lastPlaceError = code;
      return undefined;
    }
    this.#lastPlaceError = undefined;
    const segment = `${this.client}/${slot.name}`;
    const generation = slot.generation;
    const replaced = replace(data, this.minBytes, (t) => new ShmTensorRef(t.dtype, t.shape, { segment, offset: offsets.get(t.data)!, generation }));
    const shm: ShmRequestField = { client: this.client, key: this.#key };
    const replyBytes = slot.size - replyAt;
    if (this.replyBytes > 0) shm.reply = { segment, offset: replyAt, generation, bytes: replyBytes, min_bytes: this.replyMinBytes };
    let released = false;
    return {
      data: replaced,
      shm,
      tensors: found.length,
      bytes,
      readResult: (result) => this.#readResult(result, slot, generation, replyAt, replyAt + replyBytes),
      release: () => {
        if (released) return;
        released = true;
        this.#release(slot);
      },
    };
  }

  #readResult(result: unknown, slot: Slot, generation: number, from: number, to: number): unknown {
    return mapRefs(result, (ref, path) => {
      const { segment, offset } = ref.shm;
      if (segment !== `${this.client}/${slot.name}` || ref.shm.generation !== generation || slot.generation !== generation) {
        throw new GatewayError('worker_error', `${path}: the reply points at shared memory that is not this request's reply area (${segment})`);
      }
      const n = ref.byteLength;
      if (offset < from || offset + n > to) throw new GatewayError('worker_error', `${path}: the reply's tensor lies outside the reply area`);
      // A fresh, aligned buffer of its own: the slot is reused once this request ends.
      const bytes = new Uint8Array(n);
      if (n > 0 && readSync(slot.fd, bytes, 0, n, offset) !== n) throw new GatewayError('worker_error', `${path}: short read from shared memory`);
      return viewTensor(ref.dtype, ref.shape, bytes, path).tensor;
    });
  }

  #acquire(bytes: number): Slot | undefined {
    let size = MIN_SLOT_BYTES;
    while (size < bytes) size *= 2;
    let slot = this.#free.get(size)?.pop();
    if (!slot) {
      if (this.#bytes + size > this.#maxBytes) return undefined;
      const name = `${(this.#next++).toString(36)}.slot`;
      const path = join(this.folder, name);
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        ftruncateSync(fd, size);
        const header = Buffer.alloc(SLOT_GENERATION_OFFSET);
        header.writeUInt32LE(SLOT_MAGIC, 0);
        header.writeUInt32LE(1, 4);
        writeFully(fd, header, 0);
      } catch (err) {
        // A half-made slot is not kept: no fd and no file left behind.
        closeSync(fd);
        rmSync(path, { force: true });
        throw err;
      }
      slot = { name, fd, size, generation: 0 };
      this.#all.add(slot);
      this.#bytes += size;
    }
    slot.generation++;
    const gen = Buffer.alloc(8);
    gen.writeBigUInt64LE(BigInt(slot.generation));
    writeFully(slot.fd, gen, SLOT_GENERATION_OFFSET);
    return slot;
  }

  #discard(slot: Slot): void {
    this.#all.delete(slot);
    this.#bytes -= slot.size;
    closeSync(slot.fd);
    rmSync(join(this.folder, slot.name), { force: true });
  }

  #release(slot: Slot): void {
    if (this.#closed) return;
    let list = this.#free.get(slot.size);
    if (!list) this.#free.set(slot.size, (list = []));
    list.push(slot);
  }

  /** Closes every slot and removes the folder. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const slot of this.#all) closeSync(slot.fd);
    this.#all.clear();
    this.#free.clear();
    if (this.#realm) rmSync(this.folder, { recursive: true, force: true });
  }
}

function collect(value: unknown, minBytes: number, out: Tensor[]): void {
  const t = asTensor(value);
  if (t) {
    // The same array twice: one copy, two descriptors (as the Python arena).
    if (t.byteLength >= minBytes && t.byteLength > 0 && !out.some((seen) => seen.data === t.data)) out.push(t);
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] === 'number') return;
    for (const v of value) collect(v, minBytes, out);
  } else if (isPlainObject(value)) for (const v of Object.values(value)) collect(v, minBytes, out);
}

/** A copy of `value` with large tensors replaced (containers on the way copied shallowly; the input is untouched). */
function replace(value: unknown, minBytes: number, fn: (t: Tensor) => ShmTensorRef): unknown {
  const t = asTensor(value);
  if (t) return t.byteLength >= minBytes && t.byteLength > 0 ? fn(t) : value;
  if (Array.isArray(value)) return value.length === 0 || typeof value[0] === 'number' ? value : value.map((v) => replace(v, minBytes, fn));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = replace(v, minBytes, fn);
  return out;
}

/** `value` with every ShmTensorRef mapped by `fn` (path for errors); returns `value` itself when there is none. */
export function mapRefs(value: unknown, fn: (ref: ShmTensorRef, path: string) => unknown, path = '/result'): unknown {
  if (value instanceof ShmTensorRef) return fn(value, path);
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] === 'number') return value;
    let changed = false;
    const out = value.map((v, i) => {
      const m = mapRefs(v, fn, `${path}/${i}`);
      changed ||= m !== v;
      return m;
    });
    return changed ? out : value;
  }
  if (!isPlainObject(value)) return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const m = mapRefs(v, fn, `${path}/${k}`);
    changed ||= m !== v;
    out[k] = m;
  }
  return changed ? out : value;
}
