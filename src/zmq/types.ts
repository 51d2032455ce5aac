// Public shapes of the ZMQ layer: request options, replies, statistics and state events.
import type { Codec, Limits } from '../protocol/codec.js';
import type { HealthResult, ReplyHeader, RequestHeader, WorkerTiming } from '../protocol/messages.js';

/** Default request deadline of a client and a pool, ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;

/** Options every request takes: a deadline, a caller's signal, the codec and trace context. */
export interface RequestOptions {
  /** Caller's cancellation; an abort rejects with `cancelled`. */
  signal?: AbortSignal;
  /** Deadline in ms from now; defaults to the client's timeoutMs. Expiry rejects with `timeout`. */
  timeoutMs?: number;
  /** Codec for this request; defaults to the client's codec. */
  codec?: Codec;
  /**
   * A pool sends the request to this endpoint only (the worker that runs a training job): no choice, never retried
   * elsewhere; `unavailable` when the pool has no such endpoint or it is down or removed. A single client ignores it.
   */
  endpoint?: string;
}

/** What a request sends: any header fields except the ones the client owns (request_id, timestamp, version, timeout_ms). */
export type OutgoingRequest = Omit<RequestHeader, 'request_id' | 'timestamp' | 'version' | 'timeout_ms'>;

/** A successful reply: the decoded header (tensors are views on the received frames). */
export interface Reply {
  header: ReplyHeader;
  result: unknown;
  timing: WorkerTiming | undefined;
  codec: Codec;
  sizeBytes: number;
  /** Round trip measured by the client, ms. */
  roundTripMs: number;
  /** The endpoint that answered. */
  endpoint: string;
}

export interface ClientStats {
  endpoint: string;
  inFlight: number;
  sent: number;
  replies: number;
  errors: number;
  timeouts: number;
  /** Replies that came after their request had ended (deadline, cancel), dropped. */
  lateReplies: number;
  /** Replies whose request_id matched nothing and never did, dropped. */
  unmatchedReplies: number;
  connected: boolean;
}

export type EndpointState = 'connecting' | 'ready' | 'unhealthy' | 'down' | 'removed';

export interface EndpointStatus {
  endpoint: string;
  /** Host and task, for replicas. */
  labels?: WorkerLabels;
  state: EndpointState;
  inFlight: number;
  lastHealth?: HealthResult;
  lastError?: string;
  /** Health checks missed in a row (absent: none); a connected ready endpoint is down at `downAfterFailures`. */
  failedChecks?: number;
  /** Moving average of recent round trips, ms. */
  recentLatencyMs?: number;
}

export interface PoolStats {
  framework: string;
  inFlight: number;
  ready: boolean;
  endpoints: EndpointStatus[];
  lateReplies: number;
}

/** Typed state events of a pool (and a client), in the order they happened. */
/** Where a worker of a framework with replicas runs (labels on its metrics). */
export interface WorkerLabels {
  host: string;
  task: string;
}

export type PoolEvent =
  | { type: 'endpoint_added'; framework: string; endpoint: string; labels?: WorkerLabels }
  /** A request answered by a worker that has labels (replicas): counted per host and task. */
  | { type: 'served'; framework: string; endpoint: string; labels: WorkerLabels }
  /** An idempotent request whose worker went away (or was not ready) is sent to another one. */
  | { type: 'retry'; framework: string; endpoint: string; code: string; labels?: WorkerLabels }
  | { type: 'endpoint_removed'; framework: string; endpoint: string }
  | { type: 'state'; framework: string; endpoint: string; from: EndpointState; to: EndpointState; reason?: string }
  | { type: 'connected'; framework: string; endpoint: string }
  | { type: 'disconnected'; framework: string; endpoint: string }
  | { type: 'reconnect'; framework: string; endpoint: string; attempt: number }
  | { type: 'late_reply'; framework: string; endpoint: string; requestId: string }
  | { type: 'closed'; framework: string };

export type { Limits };
