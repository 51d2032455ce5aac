// THE DEMO POLICY: a deterministic stand-in for a robot policy, identical in the TS embedded worker and the
// Python worker SDK example, so one command gives a real inference round trip without Docker or a GPU.
//
//   input  data = {images?: {<cam>: uint8 [H,W,3]}, state: float32 [dof], instruction?: string}
//          or the original ROBOTIS example {image: ..., robot_state: [...]} (state = robot_state)
//   output {action: float32 [16, dof], dt_s: 1/30, model: 'demo-v1', instruction: <echo, or ''>}
//          action[k][j] = float32(state[j] + float32(0.01 * (k + 1)))   for k = 0..15
//
// A missing or empty state is a `bad_request` with path `/data/state`.
import { GatewayError } from '../lib/errors.js';
import { Tensor, tensorFromNested } from '../protocol/tensor.js';

export const DEMO_MODEL = 'demo-v1';
export const DEMO_HORIZON = 16;
export const DEMO_DT_S = 1 / 30;
export const DEMO_STEP = 0.01;

export interface DemoActionChunk {
  action: Tensor;
  dt_s: number;
  model: string;
  instruction: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Tensor) && !ArrayBuffer.isView(value);
}

/** The state as float32 values (a Tensor of any numeric dtype, a typed array or a nested list). */
function stateOf(data: Record<string, unknown>): Float32Array {
  const raw = data.state ?? data.robot_state;
  const path = data.state === undefined && data.robot_state !== undefined ? '/data/robot_state' : '/data/state';
  if (raw === undefined || raw === null) throw new GatewayError('bad_request', 'observation has no state (data.state or data.robot_state)', { path: '/data/state' });
  let values: ArrayLike<number | bigint>;
  if (raw instanceof Tensor) {
    if (raw.shape.length !== 1) throw new GatewayError('bad_request', `state must be 1-D, got shape [${raw.shape.join(', ')}]`, { path });
    values = raw.data;
  } else if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) {
    values = raw as unknown as ArrayLike<number>;
  } else if (Array.isArray(raw)) {
    if (raw.some((v) => Array.isArray(v))) throw new GatewayError('bad_request', 'state must be a flat list of numbers', { path });
    values = tensorFromNested(raw, 'float32', path).data as Float32Array;
  } else {
    throw new GatewayError('bad_request', 'state must be a list of numbers or a float32 tensor', { path });
  }
  if (values.length === 0) throw new GatewayError('bad_request', 'state is empty', { path });
  const out = new Float32Array(values.length);
  for (let j = 0; j < values.length; j++) out[j] = Number(values[j]);
  for (let j = 0; j < out.length; j++) {
    if (!Number.isFinite(out[j])) throw new GatewayError('bad_request', `state[${j}] is not a finite number`, { path: `${path}/${j}` });
  }
  return out;
}

function checkImages(data: Record<string, unknown>): void {
  const images = data.images;
  if (images === undefined) return;
  if (!isRecord(images)) throw new GatewayError('bad_request', 'images must map camera names to uint8 [H,W,3] arrays', { path: '/data/images' });
  for (const [cam, img] of Object.entries(images)) {
    const path = `/data/images/${cam}`;
    if (img instanceof Tensor) {
      if (img.dtype !== 'uint8' || img.shape.length !== 3) {
        throw new GatewayError('bad_request', `image ${cam} must be uint8 [H,W,C], got ${img.dtype} [${img.shape.join(', ')}]`, { path });
      }
    } else if (!Array.isArray(img)) {
      throw new GatewayError('bad_request', `image ${cam} must be a uint8 [H,W,C] array`, { path });
    }
  }
}

/** Runs the demo policy on an observation. Pure and deterministic. */
export function demoPolicy(data: unknown): DemoActionChunk {
  if (!isRecord(data)) throw new GatewayError('bad_request', 'inference data must be an observation object', { path: '/data' });
  checkImages(data);
  const state = stateOf(data);
  const instruction = data.instruction;
  if (instruction !== undefined && typeof instruction !== 'string') {
    throw new GatewayError('bad_request', 'instruction must be a string', { path: '/data/instruction' });
  }
  const dof = state.length;
  const action = new Float32Array(DEMO_HORIZON * dof);
  for (let k = 0; k < DEMO_HORIZON; k++) {
    const offset = Math.fround(DEMO_STEP * (k + 1));
    for (let j = 0; j < dof; j++) action[k * dof + j] = state[j]! + offset; // the store rounds to float32
  }
  return { action: new Tensor('float32', [DEMO_HORIZON, dof], action), dt_s: DEMO_DT_S, model: DEMO_MODEL, instruction: instruction ?? '' };
}

/** The expected chunk for a state, as nested numbers (tests and examples compare against it). */
export function expectedDemoAction(state: ArrayLike<number>): number[][] {
  return demoPolicy({ state: Array.from(state) }).action.toNested() as number[][];
}
