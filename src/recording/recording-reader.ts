// Reads a recording back with @mcap/core's indexed reader: the exchanges in log-time order, each rebuilt into the
// observation that was sent (tensors again, images from their RawImage bytes) and the reply that was recorded; and a
// summary of the file (channels, schemas, counts) for people and tests.
import { open, type FileHandle } from 'node:fs/promises';
import type { McapIndexedReader } from '@mcap/core';
import { GatewayError } from '../lib/errors.js';
import { isDType, Tensor, tensorFromNested } from '../protocol/tensor.js';
import { ACTION_SCHEMA_NAME, OBSERVATION_SCHEMA_NAME, RAW_IMAGE_SCHEMA_NAME, TIMING_SCHEMA_NAME } from './schemas.js';

/** One recorded exchange, ready to be sent again. */
export interface RecordedExchange {
  sequence: number;
  logTimeNs: bigint;
  framework: string;
  requestId: string;
  transport: string;
  /** The observation as it was sent (state and images as Tensors); images as recorded (full, downscaled or none). */
  observation: Record<string, unknown>;
  outcome: string;
  model: string | undefined;
  /** The recorded action chunk, flat in C order, with its shape; undefined when the reply was an error. */
  action: { values: number[]; shape: number[] } | undefined;
  /** The gateway's time for the exchange, arrival to encoded reply, ms. */
  totalMs: number | undefined;
}

export interface RecordingSummary {
  profile: string;
  library: string;
  messages: number;
  startNs: bigint;
  endNs: bigint;
  chunks: number;
  schemas: Array<{ name: string; encoding: string }>;
  channels: Array<{ topic: string; schema: string; messageEncoding: string; messages: number }>;
  metadata: Record<string, Record<string, string>>;
}

/** A random-access view of a file for McapIndexedReader. */
class FileReadable {
  constructor(readonly handle: FileHandle) {}
  async size(): Promise<bigint> {
    return BigInt((await this.handle.stat()).size);
  }
  async read(offset: bigint, size: bigint): Promise<Uint8Array> {
    const buffer = new Uint8Array(Number(size));
    let done = 0;
    while (done < buffer.byteLength) {
      const { bytesRead } = await this.handle.read(buffer, done, buffer.byteLength - done, Number(offset) + done);
      if (bytesRead === 0) throw new GatewayError('bad_request', `recording ends early (read ${done} of ${size} bytes at ${offset})`);
      done += bytesRead;
    }
    return buffer;
  }
}

/** Opens a recording's indexed reader on an open file handle (the caller closes it). */
async function indexedReader(handle: FileHandle, path: string): Promise<McapIndexedReader> {
  const { McapIndexedReader } = await import('@mcap/core');
  try {
    return await McapIndexedReader.Initialize({ readable: new FileReadable(handle) });
  } catch (err) {
    throw new GatewayError('bad_request', `${path} is not a finished MCAP file: ${(err as Error).message}`, { cause: err });
  }
}

async function withReader<T>(path: string, use: (reader: McapIndexedReader) => Promise<T>): Promise<T> {
  const handle = await open(path, 'r');
  try {
    return await use(await indexedReader(handle, path));
  } finally {
    await handle.close();
  }
}

/** Channels, schemas and counts of a recording, from its summary section. */
export function summarizeRecording(path: string): Promise<RecordingSummary> {
  return withReader(path, async (reader) => {
    const stats = reader.statistics;
    const metadata: Record<string, Record<string, string>> = {};
    for await (const m of reader.readMetadata()) metadata[m.name] = Object.fromEntries(m.metadata);
    return {
      profile: reader.header.profile,
      library: reader.header.library,
      messages: Number(stats?.messageCount ?? 0n),
      startNs: stats?.messageStartTime ?? 0n,
      endNs: stats?.messageEndTime ?? 0n,
      chunks: reader.chunkIndexes.length,
      schemas: [...reader.schemasById.values()].map((s) => ({ name: s.name, encoding: s.encoding })),
      channels: [...reader.channelsById.values()].map((c) => ({
        topic: c.topic,
        schema: reader.schemasById.get(c.schemaId)?.name ?? '',
        messageEncoding: c.messageEncoding,
        messages: Number(stats?.channelMessageCounts.get(c.id) ?? 0n),
      })),
      metadata,
    };
  });
}

function isTensorValue(v: unknown): v is { dtype: string; shape: number[]; values: number[] } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && isDType((v as { dtype?: unknown }).dtype) && Array.isArray((v as { shape?: unknown }).shape) && Array.isArray((v as { values?: unknown }).values);
}

/** {dtype, shape, values} back to Tensors, anywhere in a recorded value. */
function revive(value: unknown): unknown {
  if (isTensorValue(value)) {
    const flat = tensorFromNested(value.values, value.dtype as Parameters<typeof tensorFromNested>[1]);
    return new Tensor(flat.dtype, value.shape, flat.data);
  }
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  return value;
}

interface Partial {
  logTimeNs: bigint;
  framework: string;
  observation?: Record<string, unknown>;
  images: Record<string, Tensor>;
  reply?: Record<string, unknown>;
}

/** The exchanges of a recording in log-time order (an exchange is complete once its timing message is read). */
export async function* readRecording(path: string): AsyncGenerator<RecordedExchange> {
  const handle = await open(path, 'r');
  try {
    const reader = await indexedReader(handle, path);
    const decoder = new TextDecoder();
    const pending = new Map<number, Partial>();
    for await (const message of reader.readMessages()) {
      const channel = reader.channelsById.get(message.channelId);
      const schema = channel ? reader.schemasById.get(channel.schemaId)?.name : undefined;
      if (!channel || !schema) continue;
      const body = JSON.parse(decoder.decode(message.data)) as Record<string, unknown>;
      let p = pending.get(message.sequence);
      if (!p) pending.set(message.sequence, (p = { logTimeNs: message.logTime, framework: channel.metadata.get('framework') ?? '', images: {} }));
      switch (schema) {
        case OBSERVATION_SCHEMA_NAME:
          p.observation = body;
          break;
        case RAW_IMAGE_SCHEMA_NAME: {
          const bytes = Buffer.from(body.data as string, 'base64');
          const width = body.width as number;
          const height = body.height as number;
          const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          p.images[body.frame_id as string] = new Tensor('uint8', [height, width, data.byteLength / (width * height)], data);
          break;
        }
        case ACTION_SCHEMA_NAME:
          p.reply = body;
          break;
        case TIMING_SCHEMA_NAME:
          pending.delete(message.sequence);
          yield exchangeOf(message.sequence, p, body);
          break;
      }
    }
  } finally {
    await handle.close();
  }
}

function exchangeOf(sequence: number, p: Partial, timing: Record<string, unknown>): RecordedExchange {
  const obs = p.observation ?? {};
  const observation: Record<string, unknown> = (revive(obs.inputs ?? {}) as Record<string, unknown>) ?? {};
  if (Array.isArray(obs.state)) {
    const dtype = isDType(obs.state_dtype) ? obs.state_dtype : 'float32';
    observation.state = tensorFromNested(obs.state, dtype);
  }
  if (typeof obs.instruction === 'string') observation.instruction = obs.instruction;
  if (Object.keys(p.images).length > 0) observation.images = p.images;
  const reply = p.reply ?? {};
  const shape = Array.isArray(reply.action_shape) ? (reply.action_shape as number[]) : undefined;
  const action = Array.isArray(reply.action) && shape ? { values: (reply.action as unknown[]).flat(Infinity) as number[], shape } : undefined;
  return {
    sequence,
    logTimeNs: p.logTimeNs,
    framework: p.framework,
    requestId: String(obs.request_id ?? timing.request_id ?? ''),
    transport: String(obs.transport ?? timing.transport ?? ''),
    observation,
    outcome: String(reply.outcome ?? timing.outcome ?? 'ok'),
    model: typeof reply.model === 'string' ? reply.model : undefined,
    action,
    totalMs: typeof timing.total_ms === 'number' ? timing.total_ms : undefined,
  };
}
