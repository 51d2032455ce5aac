// A TypeScript worker's side of shared memory (the Python SDK's is physical_ai_worker/shm.py): checks that the
// request's `shm` field proves the folder is the sender's (the lease key), reads each descriptor's bytes after
// checking the slot's generation, and re-checks the generations before the reply goes out. Node has no mmap without
// a native addon, so the bytes are read with pread(2) into a buffer of the request's own: one copy, made here.
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../lib/errors.js';
import { SLOT_GENERATION_OFFSET, SLOT_HEADER_BYTES, type ShmRequestField, type ShmTensorRef } from '../protocol/shm-descriptor.js';
import { viewTensor } from '../protocol/tensor.js';
import { mapRefs } from './shm-arena.js';
import { LEASE_FILE, openRealm } from './shm-root.js';

const MAX_OPEN = 256;

interface OpenSlot {
  fd: number;
  ino: number;
  size: number;
}

/** The shared memory one request used: call `check()` before replying (throws when a slot was reused). */
export interface ShmResolved {
  data: unknown;
  check(): void;
}

export class ShmReader {
  readonly dir: string;
  readonly realm: string;
  readonly #keys = new Map<string, { ino: number; key: string }>();
  readonly #open = new Map<string, OpenSlot>();
  readonly #gen = Buffer.alloc(8);

  constructor(dir: string) {
    this.dir = dir;
    this.realm = openRealm(dir);
  }

  /** Replaces the descriptors in `data` by tensors read from the sender's slots (see the opening comment). */
  resolve(data: unknown, field: ShmRequestField): ShmResolved {
    this.#checkKey(field);
    const used = new Map<string, number>();
    const out = mapRefs(data, (ref, path) => this.#read(ref, path, field.client, used), '/data');
    return {
      data: out,
      check: () => {
        for (const [segment, generation] of used) {
          const now = this.#generation(this.#slot(segment, '/shm'));
          if (now !== generation) throw new GatewayError('bad_request', `/shm: the client reused slot ${segment} while the request ran (generation ${generation}, now ${now})`, { path: '/shm' });
        }
      },
    };
  }

  #checkKey(field: ShmRequestField): void {
    const path = join(this.dir, field.client, LEASE_FILE);
    let ino: number;
    try {
      ino = statSync(path).ino;
    } catch {
      throw new GatewayError('bad_request', `/shm/client: no shared-memory folder '${field.client}' under ${this.dir} (another host, or not mounted here)`, { path: '/shm/client' });
    }
    let cached = this.#keys.get(field.client);
    if (cached?.ino !== ino) {
      try {
        cached = { ino, key: String((JSON.parse(readFileSync(path, 'utf8')) as { key: unknown }).key) };
      } catch (err) {
        throw new GatewayError('unauthorized', `/shm/key: cannot read the lease of client folder '${field.client}'`, { path: '/shm/key', cause: err });
      }
      this.#keys.set(field.client, cached);
    }
    if (cached.key !== field.key) throw new GatewayError('unauthorized', `/shm/key: does not match the lease of client folder '${field.client}'`, { path: '/shm/key' });
  }

  #slot(segment: string, path: string): OpenSlot {
    const file = join(this.dir, segment);
    let st;
    try {
      st = statSync(file);
    } catch {
      throw new GatewayError('bad_request', `${path}/segment: no slot file ${segment} (gone, or another host)`, { path: `${path}/segment` });
    }
    const open = this.#open.get(segment);
    if (open && open.ino === st.ino && open.size === st.size) return open;
    if (open) closeSync(open.fd);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      const denied = (err as NodeJS.ErrnoException).code === 'EACCES';
      throw new GatewayError(denied ? 'unauthorized' : 'bad_request', `${path}/segment: cannot open slot file ${segment}${denied ? ' (the worker runs as another user than the client?)' : ''}`, { path: `${path}/segment`, cause: err });
    }
    const slot = { fd, ino: fstatSync(fd).ino, size: st.size };
    this.#open.set(segment, slot);
    if (this.#open.size > MAX_OPEN) {
      const [oldest, s] = this.#open.entries().next().value!;
      closeSync(s.fd);
      this.#open.delete(oldest);
    }
    return slot;
  }

  #generation(slot: OpenSlot): number {
    readSync(slot.fd, this.#gen, 0, 8, SLOT_GENERATION_OFFSET);
    return Number(this.#gen.readBigUInt64LE(0));
  }

  #read(ref: ShmTensorRef, path: string, client: string, used: Map<string, number>): unknown {
    const { segment, offset, generation } = ref.shm;
    if (ref.client !== client) throw new GatewayError('unauthorized', `${path}/shm/segment: '${segment}' belongs to another client than '${client}'`, { path: `${path}/shm/segment` });
    const slot = this.#slot(segment, `${path}/shm`);
    const n = ref.byteLength;
    if (offset < SLOT_HEADER_BYTES || offset + n > slot.size) throw new GatewayError('bad_request', `${path}/shm/offset: the tensor ends past the slot`, { path: `${path}/shm/offset` });
    const now = this.#generation(slot);
    if (now !== generation) throw new GatewayError('bad_request', `${path}/shm/generation: stale descriptor: slot ${segment} is at generation ${now}, the descriptor names ${generation}`, { path: `${path}/shm/generation` });
    used.set(segment, generation);
    const bytes = new Uint8Array(n);
    if (n > 0 && readSync(slot.fd, bytes, 0, n, offset) !== n) throw new GatewayError('bad_request', `${path}/shm: short read`, { path: `${path}/shm` });
    return viewTensor(ref.dtype, ref.shape, bytes, path).tensor;
  }

  close(): void {
    for (const s of this.#open.values()) closeSync(s.fd);
    this.#open.clear();
    this.#keys.clear();
  }
}
