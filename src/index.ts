// The library surface of physical-ai-gateway: what a program embedding the gateway, writing a worker or
// talking to one may use. Everything not listed here is internal.

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

// ZeroMQ client, pool and worker server
export { WorkerClient, DEFAULT_REQUEST_TIMEOUT_MS } from './zmq/worker-client.js';
export type { WorkerClientOptions } from './zmq/worker-client.js';
export { WorkerPool } from './zmq/worker-pool.js';
export type { WorkerPoolOptions } from './zmq/worker-pool.js';
export { WorkerServer } from './zmq/worker-server.js';
export type { WorkerServerOptions, Handler, HandlerContext } from './zmq/worker-server.js';
export type { Reply, RequestOptions, OutgoingRequest, PoolEvent, PoolStats, ClientStats, EndpointStatus, EndpointState } from './zmq/types.js';

// Gateway
export { buildGateway } from './build-gateway.js';
export type { Gateway, GatewayEnvironment } from './build-gateway.js';
export { loadConfig, parseConfig, ConfigError } from './config.js';
export type { GatewayConfig, FrameworkConfig } from './config.js';
export type { FrameworkLauncher } from './router/framework-launcher.js';
export { demoPolicy } from './worker/default-policy.js';

// Telemetry
export { createMetrics } from './telemetry/metrics.js';
export type { GatewayMetrics } from './telemetry/metrics.js';
export { startTelemetry } from './telemetry/sdk.js';

// Docker manager
export { DockerManager } from './docker/docker-manager.js';
export { DockerLauncher } from './docker/launcher.js';
export { builtinFrameworkSpecs, validateFrameworkSpec } from './docker/framework-spec.js';
export type { FrameworkSpec } from './docker/framework-spec.js';

// ROS 2 bridge
export { startBridge } from './ros-bridge/main.js';
export { ZmqPolicyClient, HttpPolicyClient } from './ros-bridge/policy-client.js';
export type { PolicyClient, PolicyChunk } from './ros-bridge/policy-client.js';
