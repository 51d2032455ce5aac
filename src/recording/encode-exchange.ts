// Turns one exchange (a request and its reply as the pipeline saw them) into the JSON messages of a recording
// (schemas.ts). Pure, and run by the writer off the request path: this is where tensor bytes are first read.
import type { ExchangeRecord } from '../protocol/exchange.js';
import { Tensor, tensorFromNested, type DType } from '../protocol/tensor.js';
import { timeOf, topics, type RecordedImages, type TopicKind } from './schemas.js';

/**
 * One exchange as the request pipeline hands it over (protocol/exchange.ts, shared with the pipeline). `data` and
 * `result` hold Tensors that are views on received bytes: read, never mutated.
 */
export type Exchange = ExchangeRecord;

export interface EncodedMessage {
  kind: TopicKind;
  topic: string;
  data: Uint8Array;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Tensor) && !ArrayBuffer.isView(v);
}

const utf8 = new TextEncoder();
const json = (value: unknown): Uint8Array => utf8.encode(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)));

/** A tensor's values as plain numbers, C order (bigints become numbers; exact for float32/float64 and small ints). */
function numbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Tensors anywhere in `value` become {dtype, shape, values}; the rest is kept as is. */
function plain(value: unknown): unknown {
  if (value instanceof Tensor) return { dtype: value.dtype, shape: value.shape, values: numbers(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

/** A camera image as a uint8 [H, W, C] tensor (JSON requests carry nested lists), or undefined when it is not one. */
function imageTensor(value: unknown): Tensor | undefined {
  let t: Tensor | undefined;
  if (value instanceof Tensor) t = value;
  else if (Array.isArray(value)) {
    try {
      t = tensorFromNested(value, 'uint8');
    } catch {
      return undefined;
    }
  }
  if (!t || t.dtype !== 'uint8') return undefined;
  if (t.shape.length === 2) return new Tensor('uint8', [t.shape[0]!, t.shape[1]!, 1], t.data);
  return t.shape.length === 3 && [1, 3, 4].includes(t.shape[2]!) ? t : undefined;
}

const ENCODING_OF_CHANNELS: Record<number, string> = { 1: 'mono8', 3: 'rgb8', 4: 'rgba8' };

/** Halves width and height by averaging 2x2 blocks (odd last rows/columns are dropped): a quarter of the bytes. */
export function downscale2x(image: Tensor): Tensor {
  const [h, w, c] = image.shape as [number, number, number];
  const oh = h >> 1;
  const ow = w >> 1;
  const src = image.data as Uint8Array;
  const out = new Uint8Array(oh * ow * c);
  const row = w * c;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const a = 2 * y * row + 2 * x * c;
      const o = (y * ow + x) * c;
      for (let k = 0; k < c; k++) out[o + k] = (src[a + k]! + src[a + c + k]! + src[a + row + k]! + src[a + row + c + k]! + 2) >> 2;
    }
  }
  return new Tensor('uint8', [oh, ow, c], out);
}

function stateOf(value: unknown): { values: number[]; dtype: string } | undefined {
  if (value instanceof Tensor) return { values: numbers(value), dtype: value.dtype };
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return { values: value as number[], dtype: 'float32' };
  return undefined;
}

/** The action chunk as nested number lists with its dtype and shape. */
function actionOf(value: unknown): { action: unknown; dtype: DType | string; shape: readonly number[] } | undefined {
  if (value instanceof Tensor) return { action: value.toNested(), dtype: value.dtype, shape: value.shape };
  if (Array.isArray(value)) return { action: value, dtype: 'float32', shape: [value.length, Array.isArray(value[0]) ? (value[0] as unknown[]).length : 0] };
  return undefined;
}

/** The log time of an exchange: its arrival, ns since the epoch. */
export function logTimeOf(exchange: Pick<Exchange, 'receivedAt'>): bigint {
  return BigInt(Math.round((performance.timeOrigin + exchange.receivedAt) * 1e6));
}

/** The recording messages of one exchange, in topic order: observation, cameras, action, timing. */
export function encodeExchange(exchange: Exchange, logTimeNs: bigint, images: RecordedImages): EncodedMessage[] {
  const { framework } = exchange;
  const timestamp = timeOf(logTimeNs);
  const common = { timestamp, request_id: exchange.requestId ?? '', framework };
  const out: EncodedMessage[] = [];

  const data = isRecord(exchange.data) ? exchange.data : {};
  const { state, instruction, images: cams, ...rest } = data;
  const cameras: Record<string, { topic: string; width: number; height: number; channels: number; recorded: RecordedImages }> = {};
  const imageMessages: EncodedMessage[] = [];
  const inputs: Record<string, unknown> = plain(rest) as Record<string, unknown>;
  if (isRecord(cams)) {
    for (const [name, value] of Object.entries(cams)) {
      const image = imageTensor(value);
      if (!image) {
        inputs[`images/${name}`] = plain(value); // not a picture a viewer can show; kept as data
        continue;
      }
      const [height, width, channels] = image.shape as [number, number, number];
      const topic = topics.camera(framework, name);
      cameras[name] = { topic, width, height, channels, recorded: images };
      if (images === 'drop') continue;
      const kept = images === 'downscale' ? downscale2x(image) : image;
      const [h, w] = kept.shape as [number, number, number];
      const bytes = Buffer.from(kept.data.buffer, kept.data.byteOffset, kept.data.byteLength);
      imageMessages.push({
        kind: 'camera',
        topic,
        data: json({ timestamp, frame_id: name, width: w, height: h, encoding: ENCODING_OF_CHANNELS[channels], step: w * channels, data: bytes.toString('base64') }),
      });
    }
  }
  const s = stateOf(state);
  if (!s && state !== undefined) inputs.state = plain(state);
  out.push({
    kind: 'observation',
    topic: topics.observation(framework),
    data: json({
      ...common,
      transport: exchange.transport,
      codec: exchange.codec,
      ...(typeof instruction === 'string' ? { instruction } : {}),
      ...(s ? { state: s.values, state_dtype: s.dtype } : {}),
      cameras,
      inputs,
    }),
  });
  out.push(...imageMessages);

  const result = isRecord(exchange.result) ? exchange.result : {};
  const { action, model, dt_s, ...outputs } = result;
  const a = actionOf(action);
  out.push({
    kind: 'action',
    topic: topics.action(framework),
    data: json({
      ...common,
      outcome: exchange.outcome,
      ...(exchange.errorMessage !== undefined ? { error: exchange.errorMessage } : {}),
      ...(typeof model === 'string' ? { model } : {}),
      ...(a ? { action: a.action, action_dtype: a.dtype, action_shape: a.shape } : {}),
      ...(typeof dt_s === 'number' ? { dt_s } : {}),
      outputs: plain(outputs),
    }),
  });

  const st = exchange.stagesMs;
  out.push({
    kind: 'timing',
    topic: topics.timing(framework),
    data: json({
      ...common,
      transport: exchange.transport,
      codec: exchange.codec,
      outcome: exchange.outcome,
      total_ms: exchange.totalMs,
      decode_ms: st.decode,
      queue_ms: st.queue,
      worker_compute_ms: st.worker_compute,
      transport_ms: st.transport,
      encode_ms: st.encode,
      request_bytes: exchange.requestBytes,
      response_bytes: exchange.responseBytes,
    }),
  });
  return out;
}
