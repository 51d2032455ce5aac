// Who may send control requests (train, command, container start/stop) through a front door. One rule on every
// door: a configured token always applies; a door bound beyond loopback needs one, and without it control is
// refused (and the gateway refuses to start such a door at all: see build-gateway.ts).
import { timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../lib/errors.js';

export interface AuthPolicyOptions {
  /** The configured token (PAIG_AUTH_TOKEN / authToken), if any. */
  token: string | undefined;
  /** The door listens beyond loopback (a tcp bind to a non-loopback host). */
  publicBind: boolean;
}

export class AuthPolicy {
  readonly #token: string | undefined;
  /** Control requests need a token on this door. */
  readonly required: boolean;
  /** The door listens beyond loopback: what it tells about the deployment (status, metrics) needs the token too. */
  readonly publicBind: boolean;

  constructor({ token, publicBind }: AuthPolicyOptions) {
    this.#token = token;
    this.publicBind = publicBind;
    this.required = token !== undefined || publicBind;
  }

  /** Throws `unauthorized` when the door is public and `given` is not the token (status pages, metrics). */
  checkRead(given: string | undefined, what: string): void {
    if (this.publicBind) this.check(given, what);
  }

  /** Throws `unauthorized` unless `given` may perform `what` on this door. */
  check(given: string | undefined, what: string): void {
    if (!this.required) return;
    if (this.#token === undefined) throw new GatewayError('unauthorized', `${what} is refused: this door listens beyond loopback and no token is configured`);
    if (!tokenMatches(given, this.#token)) throw new GatewayError('unauthorized', `${what} needs the gateway's token (HTTP: Authorization: Bearer <token>; ZMQ: the header field auth_token)`);
  }
}

/** Constant-time comparison of a presented token with the configured one. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
