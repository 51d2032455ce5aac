// An image worker thread (started by ImageWorkerPool): camera message in, RGB uint8 tensor out, so JPEG decoding,
// colour conversion and resizing never run on the control loop's thread. The result's buffer is transferred back.
import { parentPort, workerData } from 'node:worker_threads';
import { GatewayError } from '../lib/errors.js';
import { cameraMsgToTensor, loadJpegDecoder, missingJpegDecoder } from './image.js';
import type { ImageJob, ImageReply } from './image-pool.js';

const port = parentPort;
if (!port) throw new Error('image-worker.ts runs as a worker thread (ImageWorkerPool)');
const decoder = loadJpegDecoder((workerData as { jpegModule: string }).jpegModule).then((d) => d ?? missingJpegDecoder);
void decoder.then(() => port.postMessage({ ready: true } satisfies ImageReply));

port.on('message', (job: ImageJob) => {
  decoder
    .then((d) => {
      const tensor = cameraMsgToTensor(job.type, job.msg, d, job.resize);
      const data = tensor.data as Uint8Array;
      const reply: ImageReply = { id: job.id, ok: true, shape: [...tensor.shape], data };
      port.postMessage(reply, [data.buffer as ArrayBuffer]);
    })
    .catch((err: unknown) => {
      const reply: ImageReply =
        err instanceof GatewayError
          ? { id: job.id, ok: false, code: err.code, message: err.message }
          : { id: job.id, ok: false, code: 'internal', message: `image conversion failed: ${(err as Error)?.message ?? String(err)}` };
      port.postMessage(reply);
    });
});
