// The in-process ROS adapter (the one sanctioned fake): topics and Trigger services inside one process, with the
// same message shapes as rclnodejs, plus helpers for tests to publish, record and call services.
import { GatewayError } from '../../src/lib/errors.js';
import type {
  MessageTypeName,
  MessageTypes,
  RosAdapter,
  RosPublisher,
  RosService,
  RosSubscription,
  RosTime,
  SubscriptionOptions,
  TriggerHandler,
  TriggerResponse,
} from '../../src/ros-bridge/ros-adapter.js';
import { toRosTime } from '../../src/ros-bridge/ros-adapter.js';

/** A message seen on a topic, with when it was published (performance.now() ms). */
export interface RecordedMessage<T = unknown> {
  msg: T;
  atMs: number;
}

interface Topic {
  type: MessageTypeName;
  callbacks: Set<(msg: unknown) => void>;
  recorded: RecordedMessage[];
  waiters: Set<() => void>;
}

export interface MemoryRosAdapterOptions {
  /** ROS clock; defaults to wall time from performance.timeOrigin + performance.now(). */
  now?: () => RosTime;
  /** Keep at most this many messages per topic (oldest dropped); default 100 000. */
  maxRecorded?: number;
}

/**
 * Topics are created on first use and typed by their first user; a second user with another type fails as
 * ROS would. Subscribers get messages asynchronously (a microtask later), in publish order.
 */
export class MemoryRosAdapter implements RosAdapter {
  readonly #topics = new Map<string, Topic>();
  readonly #services = new Map<string, TriggerHandler>();
  readonly #now: () => RosTime;
  readonly #maxRecorded: number;
  #closed = false;

  constructor({ now, maxRecorded = 100_000 }: MemoryRosAdapterOptions = {}) {
    this.#now = now ?? (() => toRosTime((performance.timeOrigin + performance.now()) / 1000));
    this.#maxRecorded = maxRecorded;
  }

  #topic(name: string, type: MessageTypeName): Topic {
    let topic = this.#topics.get(name);
    if (!topic) {
      topic = { type, callbacks: new Set(), recorded: [], waiters: new Set() };
      this.#topics.set(name, topic);
    } else if (topic.type !== type) {
      throw new GatewayError('bad_request', `topic ${name} carries ${topic.type}, not ${type}`);
    }
    return topic;
  }

  #checkOpen(): void {
    if (this.#closed) throw new GatewayError('cancelled', 'ROS adapter is closed');
  }

  subscribe<K extends MessageTypeName>(
    topic: string,
    type: K,
    callback: (msg: MessageTypes[K]) => void,
    _options?: SubscriptionOptions,
  ): RosSubscription {
    this.#checkOpen();
    const t = this.#topic(topic, type);
    const cb = callback as (msg: unknown) => void;
    t.callbacks.add(cb);
    return { topic, close: () => void t.callbacks.delete(cb) };
  }

  createPublisher<K extends MessageTypeName>(topic: string, type: K): RosPublisher<MessageTypes[K]> {
    this.#checkOpen();
    this.#topic(topic, type);
    let open = true;
    return {
      topic,
      publish: (msg) => {
        if (!open) throw new GatewayError('cancelled', `publisher on ${topic} is closed`);
        this.publish(topic, type, msg);
      },
      close: () => {
        open = false;
      },
    };
  }

  createTriggerService(name: string, handler: TriggerHandler): RosService {
    this.#checkOpen();
    if (this.#services.has(name)) throw new GatewayError('bad_request', `service ${name} already exists`);
    this.#services.set(name, handler);
    return { name, close: () => void this.#services.delete(name) };
  }

  now(): RosTime {
    return this.#now();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#topics.values()) {
      t.callbacks.clear();
      for (const w of t.waiters) w();
    }
    this.#services.clear();
  }

  // ---- test helpers ----

  /** Publishes `msg` on `topic` as any ROS node would: recorded, then delivered to every subscriber. */
  publish<K extends MessageTypeName>(topic: string, type: K, msg: MessageTypes[K]): void {
    this.#checkOpen();
    const t = this.#topic(topic, type);
    t.recorded.push({ msg, atMs: performance.now() });
    if (t.recorded.length > this.#maxRecorded) t.recorded.shift();
    for (const cb of t.callbacks) queueMicrotask(() => cb(msg));
    for (const w of t.waiters) w();
  }

  /** Every message recorded on `topic` so far (a copy of the list). */
  messages<K extends MessageTypeName>(topic: string, _type?: K): RecordedMessage<MessageTypes[K]>[] {
    return [...((this.#topics.get(topic)?.recorded ?? []) as RecordedMessage<MessageTypes[K]>[])];
  }

  /**
   * Resolves with the first message on `topic` (recorded after index `fromIndex`) that satisfies `predicate`;
   * rejects with `timeout` after `timeoutMs`.
   */
  waitFor<K extends MessageTypeName>(
    topic: string,
    _type: K,
    predicate: (msg: MessageTypes[K], index: number) => boolean = () => true,
    { timeoutMs = 5_000, fromIndex = 0 }: { timeoutMs?: number; fromIndex?: number } = {},
  ): Promise<RecordedMessage<MessageTypes[K]> & { index: number }> {
    const t = this.#topic(topic, _type);
    return new Promise((resolve, reject) => {
      let next = fromIndex;
      const check = (): boolean => {
        for (; next < t.recorded.length; next++) {
          const rec = t.recorded[next] as RecordedMessage<MessageTypes[K]>;
          if (predicate(rec.msg, next)) {
            done();
            resolve({ ...rec, index: next });
            return true;
          }
        }
        if (this.#closed) {
          done();
          reject(new GatewayError('cancelled', `adapter closed while waiting on ${topic}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new GatewayError('timeout', `no matching message on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = () => void check();
      const done = () => {
        clearTimeout(timer);
        t.waiters.delete(waiter);
      };
      if (!check()) t.waiters.add(waiter);
    });
  }

  /** Calls a Trigger service as `ros2 service call` would. Unknown service → `unavailable`. */
  async callTrigger(name: string): Promise<TriggerResponse> {
    const handler = this.#services.get(name);
    if (!handler) throw new GatewayError('unavailable', `no service ${name}`);
    try {
      return await handler();
    } catch (err) {
      return { success: false, message: err instanceof Error ? err.message : String(err) };
    }
  }
}
