// A typed event fan-out: listeners and async iterators over the same events, ended by close().

export class EventStream<T> {
  #listeners = new Set<(event: T) => void>();
  #closed = false;

  /** Delivers an event to every listener and iterator; a throwing listener does not stop the others. */
  emit(event: T): void {
    if (this.#closed) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // a listener's failure is its own; the emitter keeps going
      }
    }
  }

  /** Calls `listener` for each event until the returned function is called. */
  on(listener: (event: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Iterates events from now on; the iteration ends when the stream closes or the loop breaks. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    const stop = this.on((event) => {
      queue.push(event);
      wake?.();
    });
    const onClose = () => wake?.();
    this.#closeWaiters.add(onClose);
    try {
      while (true) {
        while (queue.length > 0) yield queue.shift()!;
        if (this.#closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      stop();
      this.#closeWaiters.delete(onClose);
    }
  }

  #closeWaiters = new Set<() => void>();

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#closeWaiters) waiter();
    this.#listeners.clear();
  }
}
