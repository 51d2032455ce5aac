// Turns a worker's standard reply (an action chunk `{action: float32 [horizon, dof], ...}`) into what each peer's
// client reads, once, for every door that speaks that peer (the doors call these in their encoders). Pure: no I/O.
//
//   openpi   {actions: (horizon, dof), <the result's other fields>}: openpi's policies return `actions` plus whatever
//            their output transform keeps; the door adds the timing maps.
//   GR00T    {action.<group>: (horizon, width)}: the dof columns split into named groups, in order. The groups come
//            from the framework's config (`groot.actionGroups`), else from the request's own state groups (names and
//            widths in the order they came), which fits policies whose action mirrors their state.
import { GatewayError } from '../lib/errors.js';
import { Tensor, tensorFromNested } from './tensor.js';

/** A named group of consecutive action columns. */
export interface ActionGroup {
  readonly name: string;
  readonly width: number;
}

/** The action chunk of a worker's result as a float32 [horizon, dof] tensor. Throws `worker_error` when there is none. */
export function actionChunkOf(result: unknown): Tensor {
  const action = result !== null && typeof result === 'object' ? (result as Record<string, unknown>).action : undefined;
  const tensor = action instanceof Tensor ? action : Array.isArray(action) ? tensorFromNested(action, 'float32', '/result/action') : undefined;
  if (!tensor || tensor.shape.length !== 2) {
    throw new GatewayError('worker_error', 'the worker\'s result has no action chunk [horizon, dof] to give to this client');
  }
  return tensor;
}

/** openpi's reply body: `actions` = the chunk, the result's other fields beside it (tensors stay tensors). */
export function openpiActions(result: unknown): Record<string, unknown> {
  const actions = actionChunkOf(result);
  const rest = { ...(result as Record<string, unknown>) };
  delete rest.action;
  return { actions, ...rest };
}

/**
 * GR00T's flat action map: `action.<group>` (horizon, width) per group, in order; each a copy of its columns (they
 * are not contiguous in the chunk). The widths must add up to the chunk's dof, else `worker_error`.
 */
export function grootActions(chunk: Tensor, groups: readonly ActionGroup[]): Record<string, Tensor> {
  const [horizon, dof] = chunk.shape as [number, number];
  const total = groups.reduce((n, g) => n + g.width, 0);
  if (total !== dof) {
    throw new GatewayError('worker_error', `the action has ${dof} columns but the action groups (${groups.map((g) => `${g.name}: ${g.width}`).join(', ')}) add up to ${total}`);
  }
  const src = chunk.data;
  const out: Record<string, Tensor> = {};
  let first = 0;
  for (const { name, width } of groups) {
    const data = new (src.constructor as new (n: number) => typeof src)(horizon * width);
    for (let k = 0; k < horizon; k++) data.set(src.subarray(k * dof + first, k * dof + first + width) as never, k * width);
    out[`action.${name}`] = new Tensor(chunk.dtype, [horizon, width], data);
    first += width;
  }
  return out;
}
