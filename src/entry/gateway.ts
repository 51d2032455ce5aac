// `physical-ai-gateway/gateway`: starting a gateway from a program. Its configuration, metrics and the
// OpenTelemetry set-up, and the launcher interface a framework starter implements (the Docker one is in
// `physical-ai-gateway/docker`, so this entry does not load dockerode).

// Errors and basics
export { GatewayError, toGatewayError } from '../lib/errors.js';
export type { ErrorCode } from '../lib/errors.js';
export { createLogger, silentLogger } from '../lib/log.js';
export type { Logger, LogLevel } from '../lib/log.js';
export { closeAll } from '../lib/close-all.js';

// Configuration
export { loadConfig, parseConfig, ConfigError } from '../config.js';
export type { GatewayConfig, FrameworkConfig } from '../config.js';

// Gateway
export { buildGateway } from '../build-gateway.js';
export type { Gateway, GatewayEnvironment } from '../build-gateway.js';
export type { FrameworkLauncher, Launch, LaunchEvent } from '../router/framework-launcher.js';

// Telemetry
export { createMetrics } from '../telemetry/metrics.js';
export type { GatewayMetrics } from '../telemetry/metrics.js';
export { startTelemetry } from '../telemetry/sdk.js';
