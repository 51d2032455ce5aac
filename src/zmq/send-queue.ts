// Outgoing messages of one socket, handed to ZeroMQ together once per turn of the event loop.
//
// Why: a send is cheap in itself (tens of µs), but each one that finds ZeroMQ's I/O thread asleep wakes it, and on
// a busy host the woken thread often preempts this one for hundreds of µs (the profile's "send" time). Messages
// queued while this process works through what arrived in one turn (8 requests in flight: several replies at
// once) go out back to back after that work, so the I/O thread is woken about once per batch, not once per message.
// Nothing waits for more traffic: a lone message goes out at the end of the same turn (setImmediate), so one
// request in flight gains no latency. Order is kept: messages leave in the order they were queued.
//
// The socket must have `sendTimeout: 0` (a send never waits; a full queue fails at once with EAGAIN), which every
// socket of the gateway has, so sends in a loop never find the socket "busy writing".
import type { Frame } from '../protocol/codec.js';

/** The part of a zeromq.js socket the queue uses. */
export interface SendTarget {
  send(message: Frame[]): Promise<void>;
  readonly closed: boolean;
}

/** Called when ZeroMQ refused a message (EAGAIN: the peer's queue is full; or the socket closed before the flush). */
export type SendFailed = (err: Error & { code?: string }) => void;

export class SendQueue {
  readonly #socket: SendTarget;
  // Two parallel arrays (no per-message wrapper object), swapped for fresh ones at each flush.
  #messages: Frame[][] = [];
  #failed: SendFailed[] = [];
  #immediate: NodeJS.Immediate | undefined;

  constructor(socket: SendTarget) {
    this.#socket = socket;
  }

  /** Messages waiting for the next flush. */
  get queued(): number {
    return this.#messages.length;
  }

  /** Queues one message; `failed` is called (at the flush) if ZeroMQ does not take it. */
  send(message: Frame[], failed: SendFailed): void {
    this.#messages.push(message);
    this.#failed.push(failed);
    this.#immediate ??= setImmediate(this.#flushNow);
  }

  /** Hands every queued message to ZeroMQ now (before a close, so that replies already made still go out). */
  flush(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#flushNow();
  }

  readonly #flushNow = (): void => {
    this.#immediate = undefined;
    const messages = this.#messages;
    const failed = this.#failed;
    if (messages.length === 0) return;
    this.#messages = [];
    this.#failed = [];
    const socket = this.#socket;
    for (let i = 0; i < messages.length; i++) {
      const onFailed = failed[i]!;
      if (socket.closed) {
        onFailed(Object.assign(new Error('socket closed before the message was sent'), { code: 'ENOTSOCK' }));
        continue;
      }
      try {
        // sendTimeout 0: the promise is already settled; only a refusal needs a handler.
        socket.send(messages[i]!).catch(onFailed);
      } catch (err) {
        onFailed(err as Error);
      }
    }
  };
}
