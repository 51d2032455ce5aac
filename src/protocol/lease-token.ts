// Lease tokens for the direct path: the gateway (control plane) signs what a client may send straight to a worker;
// the worker (the SDK) checks the signature with the same per-worker secret, the framework, the expiry, and that
// the lease was issued after its last revocation. Pure: HMAC-SHA256 from node:crypto, no I/O.
//
//   token = "v1." + base64url(JSON claims) + "." + base64url(HMAC-SHA256(secret, "v1." + base64url(JSON claims)))
//   claims = {id, fw, iat_ms, exp_ms, max}        id "gateway": the gateway's own token (never expires by time)
//
// The Python SDK (docker/worker-sdk/physical_ai_worker/lease.py) verifies the same bytes.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../lib/errors.js';

export interface LeaseClaims {
  /** The lease's id; `gateway` for the gateway's own requests. */
  id: string;
  /** The framework the lease is for (the worker checks it is its own). */
  fw: string;
  /** Issued at, ms since the epoch (a revocation refuses leases issued before it). */
  iat_ms: number;
  /** Expires at, ms since the epoch. */
  exp_ms: number;
  /** Requests in flight at once under this lease (the worker enforces it). */
  max: number;
}

/** The id of the gateway's own token: every request through the gateway carries it. */
export const GATEWAY_LEASE_ID = 'gateway';

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function mac(secret: string | Buffer, body: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

/** Signs `claims` with the worker's secret. */
export function signLease(secret: string | Buffer, claims: LeaseClaims): string {
  const body = `v1.${b64(JSON.stringify(claims))}`;
  return `${body}.${b64(mac(secret, body))}`;
}

/** The gateway's own token for a framework's workers: id `gateway`, no expiry by time, no in-flight limit. */
export function gatewayLeaseToken(secret: string | Buffer, framework: string): string {
  return signLease(secret, { id: GATEWAY_LEASE_ID, fw: framework, iat_ms: Date.now(), exp_ms: 0, max: 0 });
}

/** Checks a token's signature and returns its claims (expiry and revocation are the caller's: see checkLease). */
export function verifyLease(secret: string | Buffer, token: unknown): LeaseClaims {
  if (typeof token !== 'string' || token.length > 1024) throw new GatewayError('unauthorized', 'lease: not a lease token', { path: '/lease' });
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'v1') throw new GatewayError('unauthorized', 'lease: not a v1 lease token', { path: '/lease' });
  const body = `${parts[0]}.${parts[1]}`;
  const expected = mac(secret, body);
  const given = Buffer.from(parts[2]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new GatewayError('unauthorized', 'lease: bad signature (not issued by this worker’s gateway)', { path: '/lease' });
  try {
    return JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as LeaseClaims;
  } catch (err) {
    throw new GatewayError('unauthorized', 'lease: unreadable claims', { path: '/lease', cause: err });
  }
}

/** What a client gets: where to send, what to send with, until when, and how much at once. */
export interface LeaseGrant {
  lease_id: string;
  framework: string;
  /** The worker endpoint to send to (as the gateway reaches it: same host or network). */
  endpoint: string;
  /** Put it in every request's `lease` field. */
  token: string;
  /** Unix seconds. */
  expires_at: number;
  ttl_ms: number;
  max_in_flight: number;
  /** The framework's request deadline, ms. */
  timeout_ms: number;
}
