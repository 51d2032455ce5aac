// `physical-ai-gateway/worker`: what a worker written in TypeScript needs. The ZeroMQ worker server, the wire
// protocol its handlers receive and return, errors, and the documented demo policy. No gateway, Docker or ROS.

// Errors and basics
export { GatewayError, ERROR_CODES, toGatewayError, isGatewayError } from '../lib/errors.js';
export type { ErrorCode, WireError } from '../lib/errors.js';
export { createLogger, silentLogger } from '../lib/log.js';
export type { Logger, LogLevel } from '../lib/log.js';

// Wire protocol
export { PROTOCOL_VERSION } from '../protocol/messages.js';
export type { RequestHeader, ReplyHeader, Observation, ActionChunk, HealthResult, WorkerTiming, MessageType } from '../protocol/messages.js';
export { Tensor, DTYPES, asTensor, tensorFromNested } from '../protocol/tensor.js';
export type { DType, TypedArray } from '../protocol/tensor.js';
export { DEFAULT_LIMITS, CODECS } from '../protocol/codec.js';
export type { Codec, Limits } from '../protocol/codec.js';

// Worker server
export { WorkerServer } from '../zmq/worker-server.js';
export type { WorkerServerOptions, Handler, HandlerContext } from '../zmq/worker-server.js';
export { demoPolicy } from '../worker/default-policy.js';
