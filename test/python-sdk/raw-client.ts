// A raw zeromq.js DEALER for the Python SDK tests: sends the empty delimiter + frames, decodes replies with
// src/protocol/codec.ts, and matches them by request_id. Deliberately independent of src/zmq.
import * as zmq from 'zeromq';
import { decodeReply, encodeMessage, type Codec, type Decoded, type Frame } from '../../src/protocol/codec.js';
import type { ReplyHeader } from '../../src/protocol/messages.js';
import { Tensor } from '../../src/protocol/tensor.js';

export const EMPTY = new Uint8Array(0);

export class RawDealer {
  readonly sock: zmq.Dealer;
  #seq = 0;

  constructor(readonly endpoint: string, receiveTimeoutMs = 15_000) {
    this.sock = new zmq.Dealer({ linger: 0, receiveTimeout: receiveTimeoutMs });
    this.sock.connect(endpoint);
  }

  nextId(): string {
    return `r-${process.pid}-${++this.#seq}`;
  }

  /** Sends [empty delimiter, ...frames]. */
  async sendFrames(frames: readonly Frame[]): Promise<void> {
    await this.sock.send([EMPTY, ...frames]);
  }

  /** Receives one message; returns the frames after the echoed delimiter. Rejects (EAGAIN) after the receive timeout. */
  async receiveFrames(): Promise<Buffer[]> {
    const frames = await this.sock.receive();
    if (frames[0]?.byteLength !== 0) throw new Error('reply without the empty delimiter');
    return frames.slice(1);
  }

  async receiveReply(): Promise<Decoded<ReplyHeader>> {
    return decodeReply(await this.receiveFrames());
  }

  /** One request, one reply (sequential use). Adds request_id and timestamp unless given. */
  async request(header: Record<string, unknown>, codec: Codec = 'binary'): Promise<Decoded<ReplyHeader>> {
    const full = { request_id: this.nextId(), timestamp: Date.now() / 1000, ...header };
    await this.sendFrames(encodeMessage(full, codec));
    const reply = await this.receiveReply();
    if (reply.header.request_id !== undefined && reply.header.request_id !== full.request_id) {
      throw new Error(`reply for ${reply.header.request_id} while waiting for ${String(full.request_id)}`);
    }
    return reply;
  }

  close(): void {
    this.sock.close();
  }
}

/** The L payload: three 224x224x3 uint8 images (distinct patterns) and 14 float32 joint positions. */
export function lPayload(): { images: Record<string, Tensor>; state: Tensor } {
  const image = (seed: number) => {
    const data = new Uint8Array(224 * 224 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed) & 0xff;
    return new Tensor('uint8', [224, 224, 3], data);
  };
  return {
    images: { cam_high: image(1), cam_left_wrist: image(2), cam_right_wrist: image(3) },
    state: sPayload(),
  };
}

/** The S payload: 14 float32 joint positions. */
export function sPayload(): Tensor {
  return Tensor.of(Float32Array.from({ length: 14 }, (_, j) => -0.7 + 0.1 * j));
}

/** What the demo policy answers: action[k][j] = float32(state[j] + float32(0.01 * (k + 1))). */
export function demoAction(state: ArrayLike<number>): Float32Array {
  const out = new Float32Array(16 * state.length);
  for (let k = 0; k < 16; k++) {
    const offset = Math.fround(0.01 * (k + 1));
    for (let j = 0; j < state.length; j++) out[k * state.length + j] = Math.fround(state[j]!) + offset; // the store rounds
  }
  return out;
}
