// Writes recording messages into a series of MCAP files in one folder, starting a new file when the current one
// passes its size or age cap. A file is written as `<name>.mcap.part` and renamed to `<name>.mcap` once its summary
// and indexes are written, so every `.mcap` in the folder is complete and readable. The folder is created 0700 and
// files 0600: recordings hold camera images. @mcap/core is loaded when the first file opens, so a gateway that
// never records never loads it. Calls must not overlap (McapWriter's rule): the writer thread (writer-thread.ts)
// runs them one after the other.
import { chmod, mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { McapWriter } from '@mcap/core';
import { silentLogger, type Logger } from '../lib/log.js';
import type { EncodedMessage } from './encode-exchange.js';
import { RECORDING_FORMAT_VERSION, RECORDING_LIBRARY, RECORDING_PROFILE, SCHEMAS, SCHEMA_OF_KIND } from './schemas.js';

export interface McapFileWriterOptions {
  dir: string;
  /** A file is finished after the write that takes it to this size or beyond, bytes (approximate: counts messages). */
  maxFileBytes: number;
  /** A file is finished this long after it opened, ms; `onAgeDue` is called then so the owner can finish it when idle. */
  maxFileAgeMs: number;
  /** Called (once per file) when the current file has reached its age. */
  onAgeDue?: () => void;
  /** Told when a file opens (its `.part` path) and when it is finished (its `.mcap` path). */
  onFile?: (event: { type: 'opened' | 'finished'; path: string }) => void;
  /** MCAP chunk size, bytes: messages are buffered in memory up to it before a write. */
  chunkBytes?: number;
  /** Added to the file's metadata record `physical-ai-gateway`. */
  metadata?: Record<string, string>;
  log?: Logger;
}

/** MCAP framing per message record beyond its data (opcode, length, channel, sequence, times) plus its index entry. */
const MESSAGE_OVERHEAD_BYTES = 31 + 16;

/** The sink McapWriter writes through: sequential writes to a file handle, tracking the position. */
class FileWritable {
  #position = 0n;
  constructor(readonly handle: FileHandle) {}
  async write(buffer: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < buffer.byteLength) {
      const { bytesWritten } = await this.handle.write(buffer, offset, buffer.byteLength - offset);
      offset += bytesWritten;
    }
    this.#position += BigInt(buffer.byteLength);
  }
  position(): bigint {
    return this.#position;
  }
}

interface OpenFile {
  path: string;
  partPath: string;
  handle: FileHandle;
  writer: McapWriter;
  channels: Map<string, number>;
  schemas: Map<string, number>;
  bytes: number;
  messages: number;
  timer: NodeJS.Timeout;
}

let fileCounter = 0;

export class McapFileWriter {
  readonly #options: Required<Omit<McapFileWriterOptions, 'onAgeDue' | 'onFile' | 'metadata' | 'log'>> & Pick<McapFileWriterOptions, 'onAgeDue' | 'onFile' | 'metadata'>;
  readonly #log: Logger;
  #current: OpenFile | undefined;
  #dirReady = false;
  #finished: string[] = [];

  constructor({ log = silentLogger, chunkBytes = 1024 * 1024, ...options }: McapFileWriterOptions) {
    this.#options = { ...options, chunkBytes };
    this.#log = log.child({ component: 'recording.file' });
  }

  /** The file being written (`.part`), if any. */
  get currentPath(): string | undefined {
    return this.#current?.partPath;
  }

  /** Files finished so far, oldest first. */
  get finishedFiles(): readonly string[] {
    return this.#finished;
  }

  /**
   * Adds the messages of one exchange (same log time and sequence); opens a file first when none is open, and
   * finishes it afterwards when it has reached its size cap. Resolves with the message bytes added.
   */
  async write(messages: readonly EncodedMessage[], logTimeNs: bigint, sequence: number, framework: string): Promise<number> {
    const file = (this.#current ??= await this.#open());
    let bytes = 0;
    for (const m of messages) {
      const channelId = await this.#channel(file, m, framework);
      await file.writer.addMessage({ channelId, sequence, logTime: logTimeNs, publishTime: logTimeNs, data: m.data });
      bytes += m.data.byteLength;
      file.bytes += m.data.byteLength + MESSAGE_OVERHEAD_BYTES;
      file.messages++;
    }
    if (file.bytes >= this.#options.maxFileBytes) await this.finish();
    return bytes;
  }

  /** Writes the current file's summary and indexes, closes it and renames it to `.mcap`; resolves with its path. */
  async finish(): Promise<string | undefined> {
    const file = this.#current;
    if (!file) return undefined;
    this.#current = undefined;
    clearTimeout(file.timer);
    try {
      await file.writer.end();
    } finally {
      await file.handle.close();
    }
    await rename(file.partPath, file.path);
    this.#finished.push(file.path);
    this.#options.onFile?.({ type: 'finished', path: file.path });
    this.#log.info({ event: 'recording.file_finished', path: file.path, messages: file.messages, bytes: file.bytes });
    return file.path;
  }

  /** Closes the current file without finishing it (after a failed write): the `.part` stays for inspection. */
  async abandon(): Promise<void> {
    const file = this.#current;
    if (!file) return;
    this.#current = undefined;
    clearTimeout(file.timer);
    await file.handle.close().catch(() => undefined);
  }

  async #open(): Promise<OpenFile> {
    const { dir } = this.#options;
    if (!this.#dirReady) {
      // mkdir's mode applies only to folders it creates; an existing one is left as it is, but a folder that others
      // can read is worth a warning, as recordings hold camera images.
      const created = await mkdir(dir, { recursive: true, mode: 0o700 });
      if (created !== undefined) await chmod(dir, 0o700); // umask may have taken bits away; 0700 is what we want
      const mode = (await stat(dir)).mode & 0o777;
      if (mode & 0o077) this.#log.warn({ event: 'recording.dir_open_to_others', dir, mode: mode.toString(8) });
      this.#dirReady = true;
    }
    const { McapWriter } = await import('@mcap/core');
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const name = `paig-${stamp}-${String(++fileCounter).padStart(4, '0')}-${process.pid}.mcap`;
    const path = join(dir, name);
    const partPath = `${path}.part`;
    const handle = await open(partPath, 'wx', 0o600);
    try {
      const writer = new McapWriter({ writable: new FileWritable(handle), chunkSize: this.#options.chunkBytes });
      await writer.start({ profile: RECORDING_PROFILE, library: RECORDING_LIBRARY });
      await writer.addMetadata({
        name: RECORDING_LIBRARY,
        metadata: new Map(Object.entries({ format_version: String(RECORDING_FORMAT_VERSION), ...this.#options.metadata })),
      });
      const timer = setTimeout(() => this.#options.onAgeDue?.(), this.#options.maxFileAgeMs);
      timer.unref(); // an open recording never keeps the process alive
      this.#log.info({ event: 'recording.file_opened', path: partPath });
      this.#options.onFile?.({ type: 'opened', path: partPath });
      return { path, partPath, handle, writer, channels: new Map(), schemas: new Map(), bytes: 0, messages: 0, timer };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async #channel(file: OpenFile, m: EncodedMessage, framework: string): Promise<number> {
    const known = file.channels.get(m.topic);
    if (known !== undefined) return known;
    const schemaName = SCHEMA_OF_KIND[m.kind];
    let schemaId = file.schemas.get(schemaName);
    if (schemaId === undefined) {
      schemaId = await file.writer.registerSchema({ name: schemaName, encoding: 'jsonschema', data: new TextEncoder().encode(JSON.stringify(SCHEMAS[schemaName])) });
      file.schemas.set(schemaName, schemaId);
    }
    const id = await file.writer.registerChannel({ topic: m.topic, schemaId, messageEncoding: 'json', metadata: new Map([['framework', framework]]) });
    file.channels.set(m.topic, id);
    return id;
  }
}
