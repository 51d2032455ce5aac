// Small pieces of the request pipeline (pipeline.ts): the metric label of a framework name, the success reply
// built from the router's result, and the stages measured around the route.
import { PROTOCOL_VERSION, type ReplyHeader } from '../protocol/messages.js';
import type { RouteResult, Router } from '../router/router.js';

/** Metric and span label for a request naming no configured framework. */
export const UNKNOWN_FRAMEWORK = 'unknown';

/** The metrics label of a framework name: configured names only, so callers cannot create series. */
export function frameworkLabel(router: Router, name: string | undefined): string {
  return name !== undefined && router.registry.has(name) ? name : UNKNOWN_FRAMEWORK;
}

/** The success reply to a routed request, under the caller's request_id. */
export function successReply(result: RouteResult, requestId: string | undefined): ReplyHeader {
  return {
    status: 'success',
    result: result.result,
    request_id: requestId,
    timestamp: Date.now() / 1000,
    version: PROTOCOL_VERSION,
    ...(result.timing ? { timing: result.timing } : {}),
  };
}

export interface RouteStages {
  queue: number;
  worker_compute?: number;
  transport?: number;
}

/**
 * Stages of a routed request that took `routedMs` in the router: time in the gateway before the request left
 * for the worker (admission, on-demand start, pick, header encode), the worker's own compute, and the round
 * trip minus the worker's total (the wire).
 */
export function routeStages(result: RouteResult, routedMs: number): RouteStages {
  const queue = routedMs - result.roundTripMs;
  return result.timing ? { queue, worker_compute: result.timing.compute_ms, transport: result.roundTripMs - result.timing.total_ms } : { queue };
}
