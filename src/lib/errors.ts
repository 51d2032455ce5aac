// The one error type of the gateway: a closed list of codes, the same on ZMQ and HTTP, mapped once.

/** Every failure the gateway reports carries exactly one of these codes. */
export const ERROR_CODES = [
  'bad_request',
  'unknown_framework',
  'unavailable',
  'timeout',
  'cancelled',
  'overloaded',
  'too_large',
  'unauthorized',
  'worker_error',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** HTTP status for each code (499 is nginx's "client closed request"). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  unknown_framework: 404,
  unavailable: 503,
  timeout: 504,
  cancelled: 499,
  overloaded: 503,
  too_large: 413,
  unauthorized: 401,
  worker_error: 502,
  internal: 500,
};

/** Codes after which the same request may succeed if sent again. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['unavailable', 'timeout', 'overloaded']);

/** The error body as it travels on the wire (HTTP JSON body and ZMQ reply `error` field). */
export interface WireError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  request_id?: string;
  /** Where in the input the problem is, e.g. `data.image.shape` (validation errors only). */
  path?: string;
}

export interface GatewayErrorOptions extends ErrorOptions {
  path?: string;
  requestId?: string;
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly path: string | undefined;
  requestId: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: GatewayErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.path = options.path;
    this.requestId = options.requestId;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.requestId !== undefined) wire.request_id = this.requestId;
    if (this.path !== undefined) wire.path = this.path;
    return wire;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export function isGatewayError(value: unknown, code?: ErrorCode): value is GatewayError {
  return value instanceof GatewayError && (code === undefined || value.code === code);
}

/**
 * Normalise anything thrown into a GatewayError at a boundary: known errors pass through,
 * everything else becomes `internal` with the original kept as `cause`.
 */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof Error && err.name === 'AbortError') return new GatewayError('cancelled', 'request cancelled', { cause: err });
  if (err instanceof Error && err.name === 'TimeoutError') return new GatewayError('timeout', 'deadline passed', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError('internal', `internal error: ${message}`, { cause: err });
}

/**
 * Rebuild an error received from a peer. Accepts our `{code, message}` object and the original
 * ROBOTIS design's plain error string (which becomes `worker_error`).
 */
export function fromWireError(value: unknown, requestId?: string): GatewayError {
  if (typeof value === 'string') return new GatewayError('worker_error', value, { requestId });
  if (value !== null && typeof value === 'object') {
    const { code, message, path } = value as Record<string, unknown>;
    const text = typeof message === 'string' ? message : JSON.stringify(value);
    return new GatewayError(isErrorCode(code) ? code : 'worker_error', text, {
      requestId,
      path: typeof path === 'string' ? path : undefined,
    });
  }
  return new GatewayError('worker_error', 'worker replied with an error and no message', { requestId });
}
