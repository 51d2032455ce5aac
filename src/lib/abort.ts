// Deadlines and cancellation: one place that turns AbortSignals into GatewayErrors.
import { setMaxListeners } from 'node:events';
import { GatewayError } from './errors.js';

/** The GatewayError for an aborted signal: `timeout` for an expired deadline, `cancelled` otherwise. */
export function abortError(signal: AbortSignal, what = 'request'): GatewayError {
  const reason: unknown = signal.reason;
  if (reason instanceof GatewayError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new GatewayError('timeout', `${what}: deadline passed`, { cause: reason });
  }
  return new GatewayError('cancelled', `${what}: cancelled`, { cause: reason });
}

/** Throws the GatewayError for `signal` when it has already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves after `ms`, or rejects with the signal's GatewayError when it aborts first. Clears its timer either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The one way to make a deadline in this project: a signal that aborts when any parent aborts or `timeoutMs`
 * passes, built from one AbortController and one timer that this object holds, both released by `dispose()`
 * (call it on every exit: `try { ... } finally { deadline.dispose() }`).
 *
 * Never build a deadline from `AbortSignal.any([..., AbortSignal.timeout(ms)])`: on Node 20.20 such a combined
 * signal never fires once garbage collection has run (the timeout signal is only weakly held), and whatever
 * waits on it waits for ever. The lint config bans both in src/; test/lib/deadline.test.ts shows this one
 * firing after forced GC. Its per-request cost is also lower (one controller, one timer).
 */
export class Deadline implements Disposable {
  readonly #controller = new AbortController();
  readonly #parents: readonly AbortSignal[];
  readonly #onParentAbort: (() => void) | undefined;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, ...parents: Array<AbortSignal | undefined>) {
    this.#parents = parents.filter((p): p is AbortSignal => p !== undefined);
    const aborted = this.#parents.find((p) => p.aborted);
    if (aborted) {
      this.#controller.abort(aborted.reason);
      return;
    }
    if (!(timeoutMs > 0)) {
      this.#controller.abort(new DOMException('deadline passed', 'TimeoutError'));
      return;
    }
    if (this.#parents.length > 0) {
      this.#onParentAbort = () => {
        const parent = this.#parents.find((p) => p.aborted);
        this.#abort(parent?.reason);
      };
      for (const p of this.#parents) p.addEventListener('abort', this.#onParentAbort, { once: true });
    }
    if (Number.isFinite(timeoutMs)) {
      this.#timer = setTimeout(() => this.#abort(new DOMException('deadline passed', 'TimeoutError')), Math.ceil(timeoutMs));
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #abort(reason: unknown): void {
    this.dispose();
    this.#controller.abort(reason);
  }

  /**
   * Ends the deadline now: the timer and listeners go, and whatever still waits on the signal (the loser of a race)
   * lets go with `cancelled`. Use it where the work that the deadline bounded has finished some other way.
   */
  release(): void {
    this.#abort(new GatewayError('cancelled', 'no longer needed'));
  }

  /** Clears the timer and the parent listeners (the signal keeps its state). Idempotent. */
  dispose(): void {
    clearTimeout(this.#timer);
    if (this.#onParentAbort) for (const p of this.#parents) p.removeEventListener('abort', this.#onParentAbort);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * An AbortController for a long-lived "closing" signal that every request in flight listens to: many listeners
 * are expected there, so Node's leak warning (at 11) is switched off for this one signal only.
 */
export function unboundedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
