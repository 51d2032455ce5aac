// The health answer the original ROBOTIS client can read. Its `health_check()` counts a container healthy only
// when the reply's top-level `status` is "ok" (its own server answers "success", so against it the check always
// failed). Our protocol answers health with `status: success` and `result.ready` (DESIGN §3), which our clients
// (WorkerClient, the pool, the Python SDK) rely on, and our reply schema refuses "ok" on purpose. So "ok" goes
// only to a request that is recognisably that client's, and keeps every other field of our reply.
//
// The rule: a health request on the JSON codec whose envelope has exactly the original fields — `type` "health",
// a number `timestamp`, a string `request_id`, and optionally `data` — and none of ours (`version`, `framework`,
// `timeout_ms`, `traceparent`, `tracestate`, `auth_token`, or anything else). Our clients always send `version`,
// so they never match. A match is answered `status: "ok"` when the framework is ready, and a regular error reply
// (`status: "error"`, code `unavailable`) when it is not, so the original client's check says False then.
// Pure: no I/O.
import type { Codec } from './codec.js';
import type { ReplyHeader, RequestHeader } from './messages.js';

const ORIGINAL_FIELDS: ReadonlySet<string> = new Set(['type', 'data', 'timestamp', 'request_id']);

/** True when `header` is the original client's health request (the rule above). */
export function isOriginalHealthCheck(header: RequestHeader, codec: Codec): boolean {
  return (
    codec === 'json' &&
    header.type === 'health' &&
    typeof header.timestamp === 'number' &&
    typeof header.request_id === 'string' &&
    Object.keys(header).every((key) => ORIGINAL_FIELDS.has(key))
  );
}

/** Our success reply to a health request, with the `status` the original client looks for. */
export interface OriginalHealthReply extends Omit<ReplyHeader, 'status'> {
  status: 'ok';
}

/** The reply for the original client: "ok" for a successful health reply (only ever sent when ready). */
export function originalHealthReply(reply: ReplyHeader): ReplyHeader | OriginalHealthReply {
  return reply.status === 'success' ? { ...reply, status: 'ok' } : reply;
}

/** Whether a health result says ready (anything but `ready: true` is not). */
export function healthSaysReady(result: unknown): boolean {
  return result !== null && typeof result === 'object' && (result as { ready?: unknown }).ready === true;
}
