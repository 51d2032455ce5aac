// Camera frames → tensors off the control loop's thread: a small pool of worker threads (image-worker.ts) running the
// same conversion as image.ts. A frame's bytes are copied once into a buffer that is then transferred (the message
// still belongs to ROS and to other subscribers); the tensor comes back as a transferred buffer, never copied.
import { Worker } from 'node:worker_threads';
import { abortError, deferred } from '../lib/abort.js';
import { GatewayError, type ErrorCode } from '../lib/errors.js';
import { Tensor } from '../protocol/tensor.js';
import type { ResizeSpec } from './config.js';
import { cameraMsgToTensor, JPEG_DECODER_PACKAGE, type ImageDecoder } from './image.js';
import type { CompressedImageMsg, ImageMsg } from './ros-adapter.js';

export type CameraMsgType = 'image' | 'compressed';

export interface ConvertOptions {
  signal?: AbortSignal;
  /** Deadline for this frame; a worker that misses it is replaced. Default 2000 ms. */
  timeoutMs?: number;
}

/** Turns a camera message into an RGB uint8 [H, W, 3] tensor. */
export interface ImageConverter {
  toTensor(type: CameraMsgType, msg: ImageMsg | CompressedImageMsg, resize: ResizeSpec | undefined, options?: ConvertOptions): Promise<Tensor>;
  close(): Promise<void>;
}

/** Converts on the calling thread (the bridge with imageWorkers: 0, and the reference the worker pool is tested against). */
export function inThreadConverter(decoder: ImageDecoder): ImageConverter {
  return {
    toTensor: async (type, msg, resize, { signal } = {}) => {
      if (signal?.aborted) throw abortError(signal, 'image conversion');
      return cameraMsgToTensor(type, msg, decoder, resize);
    },
    close: async () => {},
  };
}

/** A job as posted to a worker: the message (its plain fields) with its bytes in a buffer of their own (transferred). */
export interface ImageJob {
  id: number;
  type: CameraMsgType;
  msg: ImageMsg | CompressedImageMsg;
  resize: ResizeSpec | undefined;
}

export type ImageReply =
  | { ready: true }
  | { id: number; ok: true; shape: number[]; data: Uint8Array }
  | { id: number; ok: false; code: ErrorCode; message: string };

interface Pending {
  resolve(tensor: Tensor): void;
  reject(err: GatewayError): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** The worker has loaded its decoder and answers jobs. */
  ready: boolean;
}

export interface ImageWorkerPoolOptions {
  /** Worker threads; at least 1. */
  size: number;
  /** The JPEG decoder module each worker loads (default jpeg-js). */
  jpegModule?: string;
}

const DEFAULT_TIMEOUT_MS = 2_000;

/** The worker's entry: the compiled .js next to this file, or the .ts source under tsx (tests, scripts). */
function workerEntry(): { source: string | URL; eval: boolean } {
  const url = new URL(import.meta.url.endsWith('.ts') ? './image-worker.ts' : './image-worker.js', import.meta.url);
  if (!url.pathname.endsWith('.ts')) return { source: url, eval: false };
  // Worker threads do not inherit tsx's loader on Node 20: register it inside the worker, then load the source.
  const tsx = import.meta.resolve('tsx/esm/api');
  return { source: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, eval: true };
}

export class ImageWorkerPool implements ImageConverter {
  readonly #size: number;
  readonly #jpegModule: string;
  #slots: Slot[] = [];
  #nextId = 1;
  #started = false;
  #ready = deferred<void>();
  /** Why the workers could not start (a worker that fails before it is ready is not replaced). */
  #failed: GatewayError | undefined;
  #closing: Promise<void> | undefined;

  constructor({ size, jpegModule = JPEG_DECODER_PACKAGE }: ImageWorkerPoolOptions) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be an integer >= 1, got ${size}`);
    this.#size = size;
    this.#jpegModule = jpegModule;
  }

  /** Starts the worker threads; ready() says when they answer. */
  start(): void {
    if (this.#started) return;
    if (this.#closing) throw new GatewayError('cancelled', 'image worker pool is closed');
    this.#started = true;
    this.#ready.promise.catch(() => {}); // reported through ready() and toTensor()
    for (let i = 0; i < this.#size; i++) this.#slots.push(this.#spawn());
  }

  /** Resolves once every worker has started (its decoder loaded); rejects with `unavailable` if one could not. */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  #spawn(): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.source, { eval: entry.eval, workerData: { jpegModule: this.#jpegModule } });
    const slot: Slot = { worker, pending: new Map(), ready: false };
    worker.on('message', (reply: ImageReply) => {
      if ('ready' in reply) {
        slot.ready = true;
        if (this.#slots.every((s) => s.ready)) this.#ready.resolve();
        return;
      }
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      if (reply.ok) p.resolve(new Tensor('uint8', reply.shape, reply.data));
      else p.reject(new GatewayError(reply.code, reply.message));
    });
    worker.on('error', (err) => this.#replace(slot, new GatewayError('internal', `image worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.#replace(slot, new GatewayError('internal', `image worker exited with code ${code}`)));
    return slot;
  }

  /** Fails what `slot` had in hand and puts a fresh worker in its place (unless the pool is closing). */
  #replace(slot: Slot, err: GatewayError): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
    if (this.#closing) {
      this.#slots.splice(i, 1);
      return;
    }
    if (!slot.ready) {
      // It never started: another would fail the same way. Jobs are refused with the reason from now on.
      this.#failed ??= new GatewayError('unavailable', `image workers could not start: ${err.message}`, { cause: err });
      this.#ready.reject(this.#failed);
      this.#slots.splice(i, 1);
      return;
    }
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    this.#slots[i] = this.#spawn();
  }

  toTensor(type: CameraMsgType, msg: ImageMsg | CompressedImageMsg, resize: ResizeSpec | undefined, { signal, timeoutMs = DEFAULT_TIMEOUT_MS }: ConvertOptions = {}): Promise<Tensor> {
    if (this.#closing) return Promise.reject(new GatewayError('cancelled', 'image worker pool is closed'));
    if (!this.#started) return Promise.reject(new GatewayError('internal', 'image worker pool not started'));
    if (this.#failed) return Promise.reject(this.#failed);
    if (signal?.aborted) return Promise.reject(abortError(signal, 'image conversion'));
    const slot = this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.#nextId++;
    const data = msg.data.slice(); // a buffer of its own, transferred below (no second copy)
    let fields: ImageJob['msg'];
    if (type === 'image') {
      const { header, width, height, encoding, is_bigendian, step } = msg as ImageMsg;
      fields = { header, width, height, encoding, is_bigendian, step, data };
    } else {
      fields = { header: msg.header, format: (msg as CompressedImageMsg).format, data };
    }
    const job: ImageJob = { id, type, msg: fields, resize };
    return new Promise<Tensor>((resolve, reject) => {
      const onAbort = () => settle(() => reject(abortError(signal!, 'image conversion')));
      const timer = setTimeout(() => {
        settle(() => reject(new GatewayError('timeout', `image conversion took longer than ${timeoutMs} ms`)));
        this.#replace(slot, new GatewayError('timeout', 'image worker replaced after a missed deadline'));
      }, timeoutMs);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        slot.pending.delete(id);
        fn();
      };
      slot.pending.set(id, { resolve: (t) => settle(() => resolve(t)), reject: (e) => settle(() => reject(e)) });
      signal?.addEventListener('abort', onAbort, { once: true });
      slot.worker.postMessage(job, [data.buffer as ArrayBuffer]);
    });
  }

  /** Ends every worker thread; conversions still running reject with `cancelled`. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    const slots = this.#slots;
    const cancelled = new GatewayError('cancelled', 'image worker pool closed');
    for (const slot of slots) {
      for (const p of slot.pending.values()) p.reject(cancelled);
      slot.pending.clear();
    }
    this.#ready.reject(cancelled);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    this.#slots = [];
  }
}
