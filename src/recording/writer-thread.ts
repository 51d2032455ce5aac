// The recorder's writer, run in a worker thread (recorder.ts starts it on the first recorded exchange): encoding
// an L exchange (base64 images, JSON) and framing it in MCAP (copies, CRCs) costs milliseconds of CPU, which on the
// gateway's event loop would delay every request behind it. Here it delays nothing but the recording. Messages are
// handled strictly in order, so a `flush` answers after every exchange posted before it is on disk.
import { parentPort, workerData } from 'node:worker_threads';
import { isDType, Tensor, type DType, type TypedArray } from '../protocol/tensor.js';
import { encodeExchange, type Exchange } from './encode-exchange.js';
import { McapFileWriter, type McapFileWriterOptions } from './mcap-file-writer.js';
import type { RecordedImages } from './schemas.js';

export interface WriterThreadData {
  file: Omit<McapFileWriterOptions, 'onAgeDue' | 'onFile' | 'log'>;
  images: RecordedImages;
}

/** Main thread → writer. */
export type ToWriter = { type: 'exchange'; exchange: Exchange; logTimeNs: bigint; sequence: number } | { type: 'flush'; id: number };

/** Writer → main thread. */
export type FromWriter =
  | { type: 'written'; framework: string; bytes: number }
  | { type: 'failed'; framework: string; message: string }
  | { type: 'opened' | 'finished'; path: string }
  | { type: 'flushed'; id: number; error?: string };

/** Tensors arrive as plain {dtype, shape, data} objects (structured clone keeps fields, not classes). */
function revive(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] === 'number') return value;
    return value.map(revive);
  }
  const v = value as Record<string, unknown>;
  if (isDType(v.dtype) && Array.isArray(v.shape) && ArrayBuffer.isView(v.data)) return new Tensor(v.dtype as DType, v.shape as number[], v.data as TypedArray);
  for (const key of Object.keys(v)) v[key] = revive(v[key]);
  return v;
}

function run(): void {
  const port = parentPort;
  if (!port) throw new Error('writer-thread.ts runs as a worker thread (see recorder.ts)');
  const { file: fileOptions, images } = workerData as WriterThreadData;
  const post = (message: FromWriter) => port.postMessage(message);
  let tail: Promise<void> = Promise.resolve();
  const serial = (op: () => Promise<void>) => (tail = tail.then(op, op));
  const file = new McapFileWriter({
    ...fileOptions,
    onAgeDue: () => void serial(async () => void (await file.finish())),
    onFile: (event) => post(event),
  });

  port.on('message', (message: ToWriter) => {
    if (message.type === 'flush') {
      void serial(async () => {
        try {
          await file.finish();
          post({ type: 'flushed', id: message.id });
        } catch (err) {
          post({ type: 'flushed', id: message.id, error: (err as Error).message });
        }
      });
      return;
    }
    const { exchange, logTimeNs, sequence } = message;
    void serial(async () => {
      try {
        exchange.data = revive(exchange.data);
        exchange.result = revive(exchange.result);
        const bytes = await file.write(encodeExchange(exchange, logTimeNs, images), logTimeNs, sequence, exchange.framework);
        post({ type: 'written', framework: exchange.framework, bytes });
      } catch (err) {
        // A full or read-only disk: drop this exchange; the next one starts a fresh file.
        await file.abandon();
        post({ type: 'failed', framework: exchange.framework, message: (err as Error).message });
      }
    });
  });
}

run();
