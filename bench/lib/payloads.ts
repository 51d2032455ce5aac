// Benchmark payloads S, M, L, XL: deterministic observations (fixed-seed PRNG) in the standard observation
// shape, with the sizes the issue names. The reply to each is the demo policy's 16 x dof float32 chunk.
import { Tensor } from '../../src/protocol/tensor.js';

export type PayloadName = 'S' | 'M' | 'L' | 'XL';
export const PAYLOAD_NAMES: readonly PayloadName[] = ['S', 'M', 'L', 'XL'];

export interface PayloadSpec {
  name: PayloadName;
  /** Camera images, each uint8 [height, width, 3]. */
  images: number;
  height: number;
  width: number;
  /** Joint positions (float32); the reply chunk is [16, dof]. */
  dof: number;
  description: string;
}

export const PAYLOAD_SPECS: Readonly<Record<PayloadName, PayloadSpec>> = {
  S: { name: 'S', images: 0, height: 0, width: 0, dof: 14, description: '14 float32 joint positions' },
  M: { name: 'M', images: 1, height: 224, width: 224, dof: 14, description: 'one 224x224x3 uint8 image + state' },
  L: { name: 'L', images: 3, height: 224, width: 224, dof: 14, description: 'three 224x224x3 uint8 images + state' },
  XL: { name: 'XL', images: 3, height: 480, width: 640, dof: 14, description: 'three 480x640x3 uint8 images + state' },
};

export function isPayloadName(value: string): value is PayloadName {
  return (PAYLOAD_NAMES as readonly string[]).includes(value);
}

/** mulberry32: a small, fast, deterministic 32-bit PRNG (same seed, same bytes, on every machine). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Payload {
  spec: PayloadSpec;
  /** `data` of the inference request: {images?: {cam0..}, state, instruction}. */
  observation: { images?: Record<string, Tensor>; state: Tensor; instruction: string };
  /** Tensor bytes in the request (images + state). */
  tensorBytes: number;
}

/** Builds a payload; the same (name, seed) always gives the same bytes. */
export function makePayload(name: PayloadName, seed: number): Payload {
  const spec = PAYLOAD_SPECS[name];
  const rand = mulberry32(seed ^ (name.charCodeAt(0) * 0x9e3779b1));
  const state = new Float32Array(spec.dof);
  for (let j = 0; j < spec.dof; j++) state[j] = Math.fround(rand() * 2 - 1);
  let tensorBytes = state.byteLength;
  const observation: Payload['observation'] = { state: Tensor.of(state), instruction: 'pick up the cube' };
  if (spec.images > 0) {
    const images: Record<string, Tensor> = {};
    for (let c = 0; c < spec.images; c++) {
      const bytes = new Uint8Array(spec.height * spec.width * 3);
      // Fill 4 bytes per PRNG call: realistic entropy without a multi-second setup for XL.
      const words = new Uint32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
      for (let i = 0; i < words.length; i++) words[i] = (rand() * 4294967296) >>> 0;
      images[`cam${c}`] = new Tensor('uint8', [spec.height, spec.width, 3], bytes);
      tensorBytes += bytes.byteLength;
    }
    observation.images = images;
  }
  return { spec, observation, tensorBytes };
}
