// Sample observations for `infer`, examples and benchmarks: the payload sizes of the machine notes.
//   S: state only (14 float32)      L: three 224x224x3 uint8 camera images + the state
import { Tensor } from '../protocol/tensor.js';

export const SAMPLE_DOF = 14;

/** The one-line request the README shows (and `serve` prints with its real port). */
export const SAMPLE_CURL = `curl -s -X POST http://127.0.0.1:8080/v1/frameworks/demo/inference -H 'content-type: application/json' -d '{"state":[0,0.1,0.2,0.3,0.4,0.5]}'`;
export type SampleSize = 'S' | 'L';

/** A deterministic state vector: state[j] = j / 10. */
export function sampleState(dof = SAMPLE_DOF): Float32Array {
  return Float32Array.from({ length: dof }, (_, j) => j / 10);
}

function sampleImage(seed: number, h = 224, w = 224): Tensor {
  const bytes = new Uint8Array(h * w * 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 17) & 0xff;
  return new Tensor('uint8', [h, w, 3], bytes);
}

/** A standard observation with typed arrays (binary/msgpack codecs send them as raw tensors). */
export function sampleObservation(size: SampleSize = 'L', instruction = 'pick up the cube'): Record<string, unknown> {
  const obs: Record<string, unknown> = { state: Tensor.of(sampleState()), instruction };
  if (size === 'L') obs.images = { top: sampleImage(1), wrist: sampleImage(2), side: sampleImage(3) };
  return obs;
}

/** The same observation as nested lists (the JSON codec, the original envelope). */
export function sampleObservationJson(size: SampleSize = 'L', instruction = 'pick up the cube'): Record<string, unknown> {
  const obs = sampleObservation(size, instruction);
  const out: Record<string, unknown> = { state: Array.from(sampleState()), instruction };
  if (obs.images) out.images = Object.fromEntries(Object.entries(obs.images as Record<string, Tensor>).map(([k, t]) => [k, t.toNested()]));
  return out;
}
