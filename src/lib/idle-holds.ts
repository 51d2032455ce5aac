// Counted holds per name with an idle clock: a name is idle once nothing has held it for `idleMs`. Whoever keeps
// a framework busy (a request in flight, a launch until its worker is ready, a queued or running training job)
// takes a hold and releases it when done; the clock starts only when the last hold goes, and a new hold stops
// it. The launchers stop a framework when its clock runs out.

/** Ends one hold; calling it again does nothing. */
export type Release = () => void;

const NOTHING: Release = () => undefined;

export class IdleHolds {
  readonly #idleMs: number;
  readonly #onIdle: (name: string) => void;
  readonly #counts = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #closed = false;

  /** `onIdle(name)` runs once `name` has been held by nobody for `idleMs`; `idleMs` 0: never (holds cost nothing). */
  constructor(idleMs: number, onIdle: (name: string) => void) {
    this.#idleMs = idleMs;
    this.#onIdle = onIdle;
  }

  /** Marks `name` busy until the returned release: its idle clock stops and starts again when no hold is left. */
  hold(name: string): Release {
    if (this.#idleMs <= 0 || this.#closed) return NOTHING;
    this.#disarm(name);
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#counts.get(name) ?? 1) - 1;
      if (left > 0) return void this.#counts.set(name, left);
      this.#counts.delete(name);
      this.#arm(name);
    };
  }

  /** Whether something holds `name` now. */
  held(name: string): boolean {
    return this.#counts.has(name);
  }

  /** Stops `name`'s idle clock (it was stopped for another reason); its holds stay counted. */
  disarm(name: string): void {
    this.#disarm(name);
  }

  /** Clears every clock; later holds and releases do nothing. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #arm(name: string): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(name);
      this.#onIdle(name);
    }, this.#idleMs);
    timer.unref();
    this.#timers.set(name, timer);
  }

  #disarm(name: string): void {
    clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
  }
}
