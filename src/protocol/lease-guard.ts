// The direct path on a TypeScript worker (the Python SDK's is physical_ai_worker/lease.py): checks lease tokens,
// limits requests in flight per lease, and keeps records of requests served under client leases until the gateway
// collects them (`lease.metrics`); `lease.revoke` refuses leases issued before a time. Pure: no I/O (a clock).
import { GatewayError } from '../lib/errors.js';
import { GATEWAY_LEASE_ID, verifyLease, type LeaseClaims } from './lease-token.js';

/** Records kept at most; older ones are dropped (and counted) when the gateway does not collect them. */
const MAX_RECORDS = 10_000;

export interface LeaseRecord {
  lease: string;
  type: string;
  outcome: string;
  latency_ms: number;
  compute_ms: number;
  request_bytes: number;
  response_bytes: number;
}

export class LeaseGuard {
  readonly framework: string;
  readonly #secret: string | Buffer;
  /** Leases issued before this (ms since the epoch) are refused: the worker's start, then each revocation. */
  notBeforeMs = Date.now() - 1_000;
  readonly #inFlight = new Map<string, number>();
  #records: LeaseRecord[] = [];
  #dropped = 0;

  constructor(secret: string | Buffer, framework: string) {
    this.#secret = secret;
    this.framework = framework;
  }

  /** The claims of a valid token (the gateway's included); throws `unauthorized`. */
  check(token: unknown): LeaseClaims {
    if (token === undefined) throw new GatewayError('unauthorized', 'lease: this worker takes requests under a lease from its gateway only (no \'lease\' token)', { path: '/lease' });
    const claims = verifyLease(this.#secret, token);
    if (claims.fw !== this.framework) throw new GatewayError('unauthorized', `lease: issued for framework '${claims.fw}', this worker serves '${this.framework}'`, { path: '/lease' });
    if (claims.id === GATEWAY_LEASE_ID) return claims;
    if (!(Date.now() < claims.exp_ms)) throw new GatewayError('unauthorized', 'lease: expired; ask the gateway for a new lease', { path: '/lease' });
    if (!(claims.iat_ms >= this.notBeforeMs)) throw new GatewayError('unauthorized', 'lease: revoked (the framework was stopped or switched); ask the gateway for a new lease', { path: '/lease' });
    return claims;
  }

  /** Counts a request in flight under a client lease; throws `overloaded` beyond its limit. */
  enter(claims: LeaseClaims): void {
    const n = this.#inFlight.get(claims.id) ?? 0;
    if (n >= claims.max) throw new GatewayError('overloaded', `lease ${claims.id} allows ${claims.max} requests in flight`);
    this.#inFlight.set(claims.id, n + 1);
  }

  leave(claims: LeaseClaims): void {
    const n = (this.#inFlight.get(claims.id) ?? 1) - 1;
    if (n <= 0) this.#inFlight.delete(claims.id);
    else this.#inFlight.set(claims.id, n);
  }

  record(record: LeaseRecord): void {
    if (this.#records.length >= MAX_RECORDS) {
      this.#records.shift();
      this.#dropped++;
    }
    this.#records.push(record);
  }

  /** Hands the records over (and forgets them). */
  collect(): { records: LeaseRecord[]; dropped: number } {
    const out = { records: this.#records, dropped: this.#dropped };
    this.#records = [];
    this.#dropped = 0;
    return out;
  }

  revoke(notBeforeMs?: unknown): { not_before_ms: number } {
    this.notBeforeMs = typeof notBeforeMs === 'number' && Number.isFinite(notBeforeMs) ? notBeforeMs : Date.now();
    return { not_before_ms: this.notBeforeMs };
  }
}
