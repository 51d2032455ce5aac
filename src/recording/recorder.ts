// The gateway's recorder: decides which exchanges are recorded (per framework, switchable at run time), holds them
// in a bounded queue and hands them to a writer thread (writer-thread.ts) that encodes them and writes MCAP files.
// The request path only pushes a reference (the tensors stay views on the received bytes); on the next turn of the
// event loop the queue is posted to the thread (structured clone: the one copy, made off the request path). When
// the queue (waiting here + not yet written there) is full, the exchange is dropped and counted, never waited for.
// Off by default; no thread, no disk until the first recorded exchange.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { deferred, type Deferred } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { logTimeOf, type Exchange } from './encode-exchange.js';
import type { RecordedImages } from './schemas.js';
import type { FromWriter, ToWriter, WriterThreadData } from './writer-thread.js';

export interface RecorderOptions {
  /** Folder of the MCAP files; created 0700 when the first file opens. */
  dir: string;
  /** The gateway's framework names: what `set()` accepts. */
  frameworks: readonly string[];
  /** Record every framework from the start. */
  recordAll?: boolean;
  /** Frameworks recorded from the start. */
  recordFrameworks?: readonly string[];
  maxFileBytes: number;
  maxFileAgeS: number;
  /** Exchanges waiting for the writer at most (0: every exchange is dropped, and counted). */
  maxQueue: number;
  images: RecordedImages;
  metrics?: Pick<GatewayMetrics, 'recordingWritten' | 'recordingDropped'>;
  log?: Logger;
  /** Stored in each file's metadata (e.g. the gateway's version). */
  metadata?: Record<string, string>;
}

/** What a run-time switch asks for: on or off, for the named frameworks (absent: all of them). */
export interface RecordingSwitch {
  on: boolean;
  frameworks?: readonly string[];
}

export interface RecordingStatus {
  /** Some framework is being recorded. */
  recording: boolean;
  /** Every framework is recorded (also ones named later). */
  all: boolean;
  /** The frameworks recorded now. */
  frameworks: string[];
  dir: string;
  images: RecordedImages;
  queued: number;
  maxQueue: number;
  recorded: number;
  dropped: number;
  bytes: number;
  /** The file being written (`.mcap.part`), if any. */
  currentFile: string | null;
  /** The finished files of this run, newest last (at most 20). */
  files: string[];
}

/** Only inference exchanges are recorded: health and status checks would drown them, control carries no policy I/O. */
const RECORDED_TYPES: ReadonlySet<string> = new Set(['inference']);

/**
 * The writer thread: writer-thread.js next to this file when built; from the TypeScript sources (tests, `npm run
 * cli`), a thread does not inherit tsx's loader, so it registers tsx first and then imports writer-thread.ts.
 */
function startWriter(workerData: WriterThreadData): Worker {
  const options = { workerData, name: 'paig-recording-writer' };
  if (!fileURLToPath(import.meta.url).endsWith('.ts')) return new Worker(new URL('./writer-thread.js', import.meta.url), options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-thread.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`, { ...options, eval: true });
}

export class Recorder {
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  readonly #on = new Set<string>();
  #all: boolean;
  /** Exchanges waiting to be posted to the writer (references, no copies). */
  readonly #queue: Exchange[] = [];
  /** Exchanges posted to the writer and not yet written. */
  #inThread = 0;
  #postScheduled: NodeJS.Immediate | undefined;
  #thread: Worker | undefined;
  readonly #flushes = new Map<number, Deferred<void>>();
  #flushId = 0;
  #sequence = 0;
  #recorded = 0;
  #dropped = 0;
  #bytes = 0;
  #currentFile: string | undefined;
  readonly #files: string[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: RecorderOptions) {
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be an integer >= 0');
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: 'recording' });
    this.#all = options.recordAll === true;
    for (const name of options.recordFrameworks ?? []) this.#on.add(name);
  }

  /** Whether an exchange of `type` to `framework` is recorded now (the pipeline asks once per request). */
  wants(framework: string, type: string): boolean {
    return this.#closing === undefined && RECORDED_TYPES.has(type) && (this.#all || this.#on.has(framework));
  }

  /** Takes an exchange to record: queued by reference, or dropped and counted when the queue is full. Never blocks. */
  exchange(exchange: Exchange): void {
    if (this.#queue.length + this.#inThread >= this.#options.maxQueue || this.#closing !== undefined) {
      this.#drop(exchange.framework, 'queue_full');
      return;
    }
    this.#queue.push(exchange);
    // Posting copies the tensors into the thread: done on the next turn, never inside the request's own.
    this.#postScheduled ??= setImmediate(() => {
      this.#postScheduled = undefined;
      this.#post();
    });
  }

  /** Switches recording on or off for some frameworks (absent: all); unknown names are refused. */
  set({ on, frameworks }: RecordingSwitch): RecordingStatus {
    const known = this.#options.frameworks;
    const unknown = (frameworks ?? []).filter((f) => !known.includes(f));
    if (unknown.length > 0) throw new GatewayError('unknown_framework', `unknown framework ${unknown.map((f) => `'${f}'`).join(', ')} (configured: ${known.join(', ')})`);
    if (frameworks === undefined) {
      this.#all = on;
      this.#on.clear();
    } else if (on) {
      for (const f of frameworks) this.#on.add(f);
    } else {
      if (this.#all) for (const f of known) this.#on.add(f); // "all but these" from now on
      this.#all = false;
      for (const f of frameworks) this.#on.delete(f);
    }
    this.#log.info({ event: 'recording.switched', on, frameworks: frameworks ?? 'all', recording: this.#recordedFrameworks() });
    // Nothing recorded any more: finish the file once the queue is written, so it is complete and readable now.
    if (!this.#all && this.#on.size === 0) this.flush().catch((err: unknown) => this.#log.error({ event: 'recording.finish_failed', err }));
    return this.status();
  }

  status(): RecordingStatus {
    const frameworks = this.#recordedFrameworks();
    return {
      recording: frameworks.length > 0,
      all: this.#all,
      frameworks,
      dir: this.#options.dir,
      images: this.#options.images,
      queued: this.#queue.length + this.#inThread,
      maxQueue: this.#options.maxQueue,
      recorded: this.#recorded,
      dropped: this.#dropped,
      bytes: this.#bytes,
      currentFile: this.#currentFile ?? null,
      files: this.#files.slice(-20),
    };
  }

  /** Finished files of this run, oldest first. */
  get files(): readonly string[] {
    return this.#files;
  }

  /**
   * Resolves once every exchange taken before the call is written and the current file is finished (renamed to
   * `.mcap`, readable); the next exchange opens a new file. Tests and the off switch use it.
   */
  async flush(): Promise<void> {
    this.#post();
    const thread = this.#thread;
    if (!thread) return;
    const id = ++this.#flushId;
    const done = deferred<void>();
    this.#flushes.set(id, done);
    this.#refWhileBusy();
    thread.postMessage({ type: 'flush', id } satisfies ToWriter);
    await done.promise;
  }

  /** Stops taking exchanges, writes those queued, finishes the file and ends the thread. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      try {
        await this.flush();
      } finally {
        await this.#thread?.terminate();
        this.#thread = undefined;
      }
    })());
  }

  #recordedFrameworks(): string[] {
    return this.#all ? [...this.#options.frameworks] : this.#options.frameworks.filter((f) => this.#on.has(f));
  }

  #drop(framework: string, reason: 'queue_full' | 'write_failed'): void {
    this.#dropped++;
    this.#options.metrics?.recordingDropped(framework, reason);
  }

  /** Posts the queued exchanges to the writer thread (starting it on first use). */
  #post(): void {
    if (this.#postScheduled) clearImmediate(this.#postScheduled);
    this.#postScheduled = undefined;
    if (this.#queue.length === 0) return;
    const thread = (this.#thread ??= this.#startThread());
    for (let exchange = this.#queue.shift(); exchange; exchange = this.#queue.shift()) {
      const logTimeNs = logTimeOf(exchange);
      const sequence = (this.#sequence = (this.#sequence + 1) >>> 0);
      try {
        thread.postMessage({ type: 'exchange', exchange, logTimeNs, sequence } satisfies ToWriter);
        this.#inThread++;
      } catch (err) {
        // Something in the request data that cannot be cloned: not recordable.
        this.#drop(exchange.framework, 'write_failed');
        this.#log.warn({ event: 'recording.not_recordable', requestId: exchange.requestId, err });
      }
    }
    this.#refWhileBusy();
  }

  /** The thread keeps the process alive only while it has work, so a forgotten recorder never holds it open. */
  #refWhileBusy(): void {
    if (!this.#thread) return;
    if (this.#inThread > 0 || this.#flushes.size > 0) this.#thread.ref();
    else this.#thread.unref();
  }

  #startThread(): Worker {
    const { dir, maxFileBytes, maxFileAgeS, images, metadata } = this.#options;
    const workerData: WriterThreadData = { file: { dir, maxFileBytes, maxFileAgeMs: maxFileAgeS * 1000, metadata }, images };
    const thread = startWriter(workerData);
    thread.on('message', (message: FromWriter) => this.#onMessage(message));
    thread.on('error', (err) => {
      this.#log.error({ event: 'recording.writer_failed', err });
      this.#lostThread(thread, err);
    });
    thread.on('exit', (code) => this.#lostThread(thread, new Error(`the recording writer exited (code ${code})`)));
    return thread;
  }

  /** The writer thread is gone: what it held is lost (counted), waiting flushes fail, the next exchange starts a new one. */
  #lostThread(thread: Worker, err: Error): void {
    if (this.#thread !== thread) return;
    this.#thread = undefined;
    for (let i = 0; i < this.#inThread; i++) this.#drop('unknown', 'write_failed');
    this.#inThread = 0;
    this.#currentFile = undefined;
    for (const done of this.#flushes.values()) done.reject(err);
    this.#flushes.clear();
  }

  #onMessage(message: FromWriter): void {
    switch (message.type) {
      case 'written':
        this.#inThread--;
        this.#recorded++;
        this.#bytes += message.bytes;
        this.#options.metrics?.recordingWritten(message.framework, message.bytes);
        break;
      case 'failed':
        this.#inThread--;
        this.#drop(message.framework, 'write_failed');
        this.#log.error({ event: 'recording.write_failed', framework: message.framework, message: message.message });
        break;
      case 'opened':
        this.#currentFile = message.path;
        break;
      case 'finished':
        this.#currentFile = undefined;
        this.#files.push(message.path);
        break;
      case 'flushed': {
        const done = this.#flushes.get(message.id);
        this.#flushes.delete(message.id);
        if (message.error === undefined) done?.resolve();
        else done?.reject(new Error(`finishing the recording failed: ${message.error}`));
        break;
      }
    }
    this.#refWhileBusy();
  }
}
