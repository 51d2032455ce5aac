// The docker manager's errors: GatewayErrors with a machine-readable reason, and the mapping from dockerode's.
import { GatewayError, type ErrorCode } from '../lib/errors.js';

/** Why a Docker operation failed, beyond the gateway's error code. */
export type DockerFailure =
  | 'no_engine'
  | 'image_missing'
  | 'not_ours'
  | 'not_found'
  | 'gpu_unavailable'
  | 'runtime_unavailable'
  | 'port_in_use'
  | 'exited_while_starting'
  | 'not_ready'
  | 'build_failed'
  | 'pull_failed'
  | 'engine_error';

export class DockerError extends GatewayError {
  constructor(
    code: ErrorCode,
    readonly reason: DockerFailure,
    message: string,
    options: { cause?: unknown; logLines?: readonly string[] } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.logLines = options.logLines ?? [];
  }
  /** The container's last log lines, when they explain the failure (exited while starting). */
  readonly logLines: readonly string[];
}

export function isDockerError(err: unknown, reason?: DockerFailure): err is DockerError {
  return err instanceof DockerError && (reason === undefined || err.reason === reason);
}

interface ModemError {
  statusCode?: number;
  reason?: string;
  json?: { message?: string } | null;
  code?: string;
  message?: string;
}

/** HTTP status of a dockerode error (404, 409, 500, ...), or undefined for a transport error. */
export function statusOf(err: unknown): number | undefined {
  return typeof (err as ModemError | undefined)?.statusCode === 'number' ? (err as ModemError).statusCode : undefined;
}

/** The daemon's own message of a dockerode error, without dockerode's "(HTTP code 404) no such container -" prefix. */
export function engineMessage(err: unknown): string {
  const e = err as ModemError | undefined;
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  if (typeof fromJson === 'string' && fromJson !== '') return fromJson.trim();
  return String(e?.message ?? err).trim();
}

const NO_ENGINE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE']);

/** Turns a dockerode failure into a DockerError; `what` says what was being done (e.g. `start lerobot`). */
export function fromEngineError(err: unknown, what: string, socket?: string): DockerError {
  if (err instanceof DockerError) return err;
  const e = err as ModemError | undefined;
  if (e?.code && NO_ENGINE_CODES.has(e.code)) {
    const where = socket ? ` at ${socket}` : '';
    const hint = e.code === 'EACCES' ? ' (permission denied: add the user to the docker group or run as root)' : ' (start it with scripts/ensure-docker.sh or your service manager)';
    return new DockerError('unavailable', 'no_engine', `${what}: Docker is not reachable: no Docker engine answers${where}: ${e.code}${hint}`, { cause: err });
  }
  const status = statusOf(err);
  const message = engineMessage(err);
  if (status === 404) return new DockerError('unavailable', 'not_found', `${what}: ${message}`, { cause: err });
  return new DockerError(status !== undefined && status < 500 ? 'bad_request' : 'unavailable', 'engine_error', `${what}: ${message}`, { cause: err });
}
