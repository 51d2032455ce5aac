// Envelope, observation, action-chunk and health types. Kept in step with proto-json/v1 by test/protocol/schema-drift.test.ts.
import type { WireError } from '../lib/errors.js';
import type { ShmRequestField } from './shm-descriptor.js';
import type { Tensor } from './tensor.js';

export const PROTOCOL_VERSION = 1;

/** Message types of the original design, plus `status`; workers may register others. */
export type MessageType = 'inference' | 'train' | 'command' | 'health' | 'status' | (string & {});

export interface RequestHeader {
  type: MessageType;
  data?: unknown;
  timestamp?: number;
  request_id?: string;
  version?: number;
  framework?: string;
  timeout_ms?: number;
  traceparent?: string;
  tracestate?: string;
  /** Token for control requests at a gateway front door that listens beyond loopback. */
  auth_token?: string;
  /** Shared memory: whose slots the request's `shm` tensors are in, the lease key, the reply area (shm-descriptor.ts). */
  shm?: ShmRequestField;
  /** Direct path: a lease token from the gateway (src/protocol/lease-token.ts). */
  lease?: string;
}

export interface WorkerTiming {
  decode_ms?: number;
  compute_ms: number;
  total_ms: number;
}

export interface ReplyHeader {
  status: 'success' | 'error';
  result?: unknown;
  /** Ours: a WireError; the original design: a plain string. */
  error?: WireError | string;
  request_id?: string;
  timestamp?: number;
  version?: number;
  timing?: WorkerTiming;
}

/** An n-d array as it arrives: a Tensor on the binary codecs, nested lists on JSON. */
export type ArrayValue = Tensor | unknown[];

export interface Observation {
  images?: Record<string, ArrayValue>;
  state: ArrayValue;
  instruction?: string;
  stamp?: number;
}

export interface ActionChunk {
  action: ArrayValue;
  dt_s?: number;
  joint_names?: string[];
  model?: string;
}

export interface HealthResult {
  ready: boolean;
  framework?: string;
  model?: string;
  capacity?: number;
  in_flight?: number;
  uptime_s?: number;
  version?: number;
  sdk?: string;
  /** The worker's shared-memory realm (absent: it takes no shared memory). */
  shm_realm?: string;
}

// The field lists below must name every key of their type (the compiler checks that) and the drift test
// checks they equal the schema's `properties`, so a field added on one side only fails the tests.
type FieldList<T> = { readonly [K in keyof Required<T>]: true };
export const REQUEST_HEADER_FIELDS: FieldList<RequestHeader> = {
  type: true, data: true, timestamp: true, request_id: true, version: true, framework: true, timeout_ms: true, traceparent: true, tracestate: true, auth_token: true, shm: true, lease: true,
};
export const REPLY_HEADER_FIELDS: FieldList<ReplyHeader> = {
  status: true, result: true, error: true, request_id: true, timestamp: true, version: true, timing: true,
};
export const WORKER_TIMING_FIELDS: FieldList<WorkerTiming> = { decode_ms: true, compute_ms: true, total_ms: true };
export const WIRE_ERROR_FIELDS: FieldList<WireError> = { code: true, message: true, retryable: true, request_id: true, path: true };
export const OBSERVATION_FIELDS: FieldList<Observation> = { images: true, state: true, instruction: true, stamp: true };
export const ACTION_CHUNK_FIELDS: FieldList<ActionChunk> = { action: true, dt_s: true, joint_names: true, model: true };
export const HEALTH_RESULT_FIELDS: FieldList<HealthResult> = {
  ready: true, framework: true, model: true, capacity: true, in_flight: true, uptime_s: true, version: true, sdk: true, shm_realm: true,
};
