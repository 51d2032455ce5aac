// The gateway's recorder: decides which exchanges are recorded (per framework, switchable at run time), holds them
// in a bounded queue and writes them to MCAP files from one drain loop, off the request path. The request path only
// pushes a reference (the tensors stay views on the received bytes until written); when the queue is full the
// exchange is dropped and counted, never waited for. Off by default; nothing touches the disk until the first
// recorded exchange.
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { encodeExchange, logTimeOf, type Exchange } from './encode-exchange.js';
import { McapFileWriter } from './mcap-file-writer.js';
import type { RecordedImages } from './schemas.js';

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

export class Recorder {
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  readonly #file: McapFileWriter;
  readonly #on = new Set<string>();
  #all: boolean;
  readonly #queue: Exchange[] = [];
  #drainScheduled: NodeJS.Immediate | undefined;
  #draining = false;
  /** File operations run one after the other (McapWriter's rule): writes, age rotation, flush, close. */
  #tail: Promise<void> = Promise.resolve();
  #sequence = 0;
  #recorded = 0;
  #dropped = 0;
  #bytes = 0;
  #closing: Promise<void> | undefined;

  constructor(options: RecorderOptions) {
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) throw new RangeError('maxQueue must be an integer >= 0');
    this.#options = options;
    this.#log = (options.log ?? silentLogger).child({ component: 'recording' });
    this.#all = options.recordAll === true;
    for (const name of options.recordFrameworks ?? []) this.#on.add(name);
    this.#file = new McapFileWriter({
      dir: options.dir,
      maxFileBytes: options.maxFileBytes,
      maxFileAgeMs: options.maxFileAgeS * 1000,
      onAgeDue: () => void this.#serial(() => this.#file.finish().then(() => undefined)),
      metadata: options.metadata,
      log: options.log,
    });
  }

  /** Whether an exchange of `type` to `framework` is recorded now (the pipeline asks once per request). */
  wants(framework: string, type: string): boolean {
    return this.#closing === undefined && RECORDED_TYPES.has(type) && (this.#all || this.#on.has(framework));
  }

  /** Takes an exchange to record: queued by reference, or dropped and counted when the queue is full. Never blocks. */
  exchange(exchange: Exchange): void {
    if (this.#queue.length >= this.#options.maxQueue || this.#closing !== undefined) {
      this.#dropped++;
      this.#options.metrics?.recordingDropped(exchange.framework, 'queue_full');
      return;
    }
    this.#queue.push(exchange);
    // The writer starts on the next turn of the event loop, so the encoding never runs inside a request's own turn.
    if (!this.#draining && this.#drainScheduled === undefined) {
      this.#drainScheduled = setImmediate(() => {
        this.#drainScheduled = undefined;
        void this.#serial(() => this.#drain());
      });
    }
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
    if (!this.#all && this.#on.size === 0) void this.flush().catch((err: unknown) => this.#log.error({ event: 'recording.finish_failed', err }));
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
      queued: this.#queue.length,
      maxQueue: this.#options.maxQueue,
      recorded: this.#recorded,
      dropped: this.#dropped,
      bytes: this.#bytes,
      currentFile: this.#file.currentPath ?? null,
      files: this.#file.finishedFiles.slice(-20),
    };
  }

  /** Finished files of this run, oldest first. */
  get files(): readonly string[] {
    return this.#file.finishedFiles;
  }

  /**
   * Resolves once every exchange queued before the call is written and the current file is finished (renamed to
   * `.mcap`, readable); the next exchange opens a new file. Tests and the off switch use it.
   */
  flush(): Promise<void> {
    return this.#serial(async () => {
      await this.#drain();
      await this.#file.finish();
    });
  }

  /** Stops taking exchanges, writes those queued and finishes the file. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      if (this.#drainScheduled) clearImmediate(this.#drainScheduled);
      this.#drainScheduled = undefined;
      await this.#serial(async () => {
        await this.#drain();
        await this.#file.finish();
      });
    })());
  }

  #recordedFrameworks(): string[] {
    return this.#all ? [...this.#options.frameworks] : this.#options.frameworks.filter((f) => this.#on.has(f));
  }

  #serial(op: () => Promise<void>): Promise<void> {
    const run = this.#tail.then(op);
    this.#tail = run.catch((err: unknown) => this.#log.error({ event: 'recording.failed', err }));
    return run;
  }

  /** Writes the queue out, one exchange per turn of the event loop so requests keep their share of it. */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let exchange = this.#queue.shift(); exchange; exchange = this.#queue.shift()) {
        await this.#write(exchange);
        if (this.#queue.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#draining = false;
    }
  }

  async #write(exchange: Exchange): Promise<void> {
    const logTime = logTimeOf(exchange);
    const sequence = (this.#sequence = (this.#sequence + 1) >>> 0);
    try {
      const messages = encodeExchange(exchange, logTime, this.#options.images);
      const bytes = await this.#file.write(messages, logTime, sequence, exchange.framework);
      this.#recorded++;
      this.#bytes += bytes;
      this.#options.metrics?.recordingWritten(exchange.framework, bytes);
    } catch (err) {
      // A full or read-only disk: drop this exchange and start a fresh file with the next one.
      this.#dropped++;
      this.#options.metrics?.recordingDropped(exchange.framework, 'write_failed');
      this.#log.error({ event: 'recording.write_failed', framework: exchange.framework, requestId: exchange.requestId, err });
      await this.#file.abandon();
    }
  }
}
