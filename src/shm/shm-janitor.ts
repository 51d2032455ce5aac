// The gateway's janitor for the shared-memory root: every sweep interval, removes the folders of clients that are
// gone (shm-root.ts sweepRoot: lease not renewed, or owner process gone). The gateway itself owns no segment; this
// bounds what a killed client leaves behind even when no other client or worker sweeps.
import { silentLogger, type Logger } from '../lib/log.js';
import { DEFAULT_LEASE_MS, openRealm, sweepRoot } from './shm-root.js';

export interface ShmJanitorOptions {
  dir: string;
  /** Time between sweeps, ms (default: the default lease length). */
  intervalMs?: number;
  log?: Logger;
}

export class ShmJanitor {
  readonly dir: string;
  readonly #intervalMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #realm: string | undefined;

  constructor({ dir, intervalMs = DEFAULT_LEASE_MS, log = silentLogger }: ShmJanitorOptions) {
    this.dir = dir;
    this.#intervalMs = intervalMs;
    this.#log = log.child({ component: 'shm.janitor' });
  }

  get realm(): string | undefined {
    return this.#realm;
  }

  /** Creates the root (and its realm) if needed, sweeps once, then every interval (an unref'd timer). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#realm = openRealm(this.dir);
    this.sweep();
    this.#timer = setInterval(() => this.sweep(), this.#intervalMs);
    this.#timer.unref();
    this.#log.info({ event: 'shm.janitor_started', dir: this.dir, realm: this.#realm, intervalMs: this.#intervalMs });
  }

  /** One sweep now; returns the client folders removed. */
  sweep(): string[] {
    const { removed } = sweepRoot(this.dir);
    if (removed.length > 0) this.#log.info({ event: 'shm.swept', removed });
    return removed;
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }
}
