// One request and its reply as the request pipeline saw them: the record the pipeline hands its observer (the
// recorder) after the reply is encoded. A plain type here so the gateway and the recorder share one definition.
import type { Codec } from './codec.js';

/** One request and its reply as the pipeline saw them, handed to the observer after the reply is encoded. */
export interface ExchangeRecord {
  /** performance.now() when the request's bytes arrived. */
  receivedAt: number;
  /** The door's transport label (`http`, `zmq`, `openpi`, `groot`). */
  transport: string;
  codec: Codec;
  /** The framework that served it (the default one when the request named none). */
  framework: string;
  requestId: string | undefined;
  type: string;
  /** The request's data after observation mapping; tensors are views on the received bytes (keep, don't mutate). */
  data: unknown;
  /** The worker's result on success; tensors are views on the worker's reply frames. */
  result: unknown;
  /** `ok` or the error code. */
  outcome: string;
  errorMessage: string | undefined;
  /** Stage durations, ms (see telemetry STAGES), and the whole time from arrival to the encoded reply. */
  stagesMs: Partial<Record<'decode' | 'queue' | 'worker_compute' | 'transport' | 'encode', number>>;
  totalMs: number;
  requestBytes: number;
  responseBytes: number;
}
