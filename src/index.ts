// The package's main entry (`physical-ai-gateway`): the client library. The wire protocol (tensors, codecs,
// schemas), errors, and the ZeroMQ client and pool for talking to a gateway or a worker. Loading it loads
// zeromq, msgpack, ajv, prom-client and @opentelemetry/api; never dockerode, rclnodejs, hono or the OTel SDK
// (test/library-surface.test.ts checks). Other entries: ./worker, ./gateway, ./docker, ./bridge.

// Errors and basics
export { GatewayError, ERROR_CODES, HTTP_STATUS, toGatewayError, fromWireError, isGatewayError } from './lib/errors.js';
export type { ErrorCode, WireError } from './lib/errors.js';
export { createLogger, silentLogger } from './lib/log.js';
export type { Logger, LogLevel } from './lib/log.js';
export { closeAll } from './lib/close-all.js';

// Wire protocol
export { PROTOCOL_VERSION } from './protocol/messages.js';
export type { RequestHeader, ReplyHeader, Observation, ActionChunk, HealthResult, WorkerTiming, MessageType } from './protocol/messages.js';
export { Tensor, DTYPES, asTensor, tensorFromNested } from './protocol/tensor.js';
export type { DType, TypedArray } from './protocol/tensor.js';
export { encodeMessage, decodeMessage, decodeRequest, decodeReply, DEFAULT_LIMITS, CODECS } from './protocol/codec.js';
export type { Codec, Limits, Frame, Decoded } from './protocol/codec.js';
export { validate, loadSchemas } from './protocol/schemas.js';

// ZeroMQ client and pool
export { WorkerClient } from './zmq/worker-client.js';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './zmq/types.js';
export type { WorkerClientOptions } from './zmq/worker-client.js';
export { WorkerPool } from './zmq/worker-pool.js';
export type { WorkerPoolOptions } from './zmq/worker-pool.js';
export type { Reply, RequestOptions, OutgoingRequest, PoolEvent, PoolStats, ClientStats, EndpointStatus, EndpointState } from './zmq/types.js';
export type { ShmState } from './zmq/worker-client.js';

// The direct path: a lease from the gateway, requests straight to the worker
export { DirectClient } from './zmq/direct-client.js';
export type { DirectClientOptions } from './zmq/direct-client.js';
export type { LeaseGrant } from './protocol/lease-token.js';
export { signLease, verifyLease, gatewayLeaseToken } from './protocol/lease-token.js';
export type { LeaseClaims } from './protocol/lease-token.js';

// Same-host shared memory (a client's slots; descriptors on the wire)
export { ShmArena, DEFAULT_SHM_MIN_BYTES } from './shm/shm-arena.js';
export type { ShmArenaOptions, Placement } from './shm/shm-arena.js';
export { DEFAULT_SHM_DIR, sweepRoot } from './shm/shm-root.js';
export { ShmTensorRef } from './protocol/shm-descriptor.js';
export type { ShmLocation, ShmRequestField, ShmReplyArea } from './protocol/shm-descriptor.js';
