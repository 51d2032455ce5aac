// The real ROS adapter over rclnodejs 2.x. rclnodejs is an optional dependency with a native addon that needs a
// sourced ROS 2, so it is loaded only here, with `await import('rclnodejs')`, when the bridge starts.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GatewayError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
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
} from './ros-adapter.js';

// ---- the part of the rclnodejs 2.x API this file uses (rclnodejs/types/*.d.ts, hand-copied so the build does
// not depend on the optional package being installed) ----

/** rclnodejs `Options` for publishers, subscriptions and services. */
interface RclOptions {
  enableTypedArray?: boolean;
  isRaw?: boolean;
  /** A QoS object or a profile name such as 'qos_profile_sensor_data'. */
  qos?: string | object;
}

interface RclEntity {
  /** Present on every entity; not used, kept so the structural types stay honest. */
  readonly topic?: string;
}

interface RclPublisher extends RclEntity {
  publish(message: object): void;
}

interface RclServiceResponse {
  /** An empty response message of the service's Response type. */
  readonly template: Record<string, unknown>;
  send(response: object): void;
}

interface RclTime {
  /** builtin_interfaces/msg/Time. */
  toMsg(): { sec: number; nanosec: number };
}

interface RclNode {
  createSubscription(typeClass: string, topic: string, options: RclOptions, callback: (msg: object) => void): RclEntity;
  createPublisher(typeClass: string, topic: string, options?: RclOptions): RclPublisher;
  createService(
    typeClass: string,
    serviceName: string,
    options: RclOptions,
    callback: (request: object, response: RclServiceResponse) => void,
  ): RclEntity;
  destroySubscription(subscription: RclEntity): void;
  destroyPublisher(publisher: RclEntity): void;
  destroyService(service: RclEntity): void;
  now(): RclTime;
  /** Starts processing work on the libuv loop; returns at once (it does not block JavaScript). */
  spin(timeout?: number): void;
  stop(): void;
  destroy(): void;
}

/** The rclnodejs module object (CommonJS; reached through `default` from ESM). */
interface Rclnodejs {
  init(context?: unknown, argv?: string[]): Promise<void>;
  createNode(nodeName: string, namespace?: string): RclNode;
  shutdown(context?: unknown): void;
  isShutdown(): boolean;
}

export const ROS_NOT_FOUND_MESSAGE =
  'ROS 2 not found: source /opt/ros/<distro>/setup.bash, then install rclnodejs with `npm_config_yes=true npm install rclnodejs`';

/** The module specifier, in a variable so the compiler does not need rclnodejs's types to be installed. */
const RCLNODEJS = 'rclnodejs';

/**
 * Environment variable naming a directory whose node_modules holds rclnodejs built against the ROS 2 in use (for
 * example scripts/ensure-ros2.sh's .venv-ros2/node), instead of the project's own node_modules.
 */
export const RCLNODEJS_DIR_ENV = 'PAIG_RCLNODEJS_DIR';

/** The specifier to import rclnodejs by: resolved from `dir` when given (a file URL), else the bare package name. */
export function rclnodejsSpecifier(dir: string | undefined): string {
  if (!dir) return RCLNODEJS;
  try {
    return pathToFileURL(createRequire(join(resolve(dir), 'package.json')).resolve(RCLNODEJS)).href;
  } catch (err) {
    throw new GatewayError('unavailable', `${RCLNODEJS_DIR_ENV}=${dir}: no rclnodejs there (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Imports rclnodejs. Throws a GatewayError `unavailable` with ROS_NOT_FOUND_MESSAGE (the import failure kept as
 * `cause`, never shown as a stack trace by the CLI) when the package, its native addon or a sourced ROS 2 is missing.
 */
export async function loadRclnodejs(specifier: string = RCLNODEJS): Promise<Rclnodejs> {
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (err) {
    throw new GatewayError('unavailable', ROS_NOT_FOUND_MESSAGE, { cause: err });
  }
  const candidate = ((mod as { default?: unknown }).default ?? mod) as Partial<Rclnodejs>;
  if (typeof candidate.init !== 'function' || typeof candidate.createNode !== 'function') {
    throw new GatewayError('unavailable', `${ROS_NOT_FOUND_MESSAGE} (the installed rclnodejs does not look like 2.x)`);
  }
  return candidate as Rclnodejs;
}

export interface RclnodejsAdapterOptions {
  nodeName?: string;
  namespace?: string;
  log: Logger;
  /** Passed to rclnodejs.init (ROS arguments such as `--ros-args -p use_sim_time:=true`). */
  argv?: string[];
  /** For the smoke script and tests: a module specifier other than 'rclnodejs'. */
  specifier?: string;
}

const SENSOR_QOS = 'qos_profile_sensor_data';
const DEFAULT_QOS = 'qos_profile_default';

/** One rclnodejs node; messages are plain objects with typed arrays (enableTypedArray), as ros-adapter.ts describes. */
export class RclnodejsAdapter implements RosAdapter {
  readonly #rcl: Rclnodejs;
  readonly #node: RclNode;
  readonly #log: Logger;
  readonly #entities = new Set<{ kind: 'sub' | 'pub' | 'srv'; entity: RclEntity }>();
  #closing?: Promise<void>;

  private constructor(rcl: Rclnodejs, node: RclNode, log: Logger) {
    this.#rcl = rcl;
    this.#node = node;
    this.#log = log;
  }

  /** Loads rclnodejs, initialises the default context, creates the node and starts spinning it. */
  static async create({ nodeName = 'physical_ai_bridge', namespace = '', log, argv, specifier }: RclnodejsAdapterOptions): Promise<RclnodejsAdapter> {
    const rcl = await loadRclnodejs(specifier);
    try {
      await rcl.init(undefined, argv);
    } catch (err) {
      throw new GatewayError('unavailable', `${ROS_NOT_FOUND_MESSAGE} (rclnodejs.init failed: ${(err as Error).message})`, { cause: err });
    }
    let node: RclNode;
    try {
      node = rcl.createNode(nodeName, namespace);
      node.spin();
    } catch (err) {
      if (!rcl.isShutdown()) rcl.shutdown();
      throw new GatewayError('unavailable', `could not create ROS node ${nodeName}: ${(err as Error).message}`, { cause: err });
    }
    log.info({ event: 'ros.node_started', nodeName, namespace });
    return new RclnodejsAdapter(rcl, node, log);
  }

  #checkOpen(): void {
    if (this.#closing) throw new GatewayError('cancelled', 'ROS adapter is closed');
  }

  subscribe<K extends MessageTypeName>(
    topic: string,
    type: K,
    callback: (msg: MessageTypes[K]) => void,
    { qos = 'default' }: SubscriptionOptions = {},
  ): RosSubscription {
    this.#checkOpen();
    const options: RclOptions = { enableTypedArray: true, isRaw: false, qos: qos === 'sensor_data' ? SENSOR_QOS : DEFAULT_QOS };
    const entity = this.#node.createSubscription(type, topic, options, (msg) => {
      try {
        callback(msg as MessageTypes[K]);
      } catch (err) {
        // An exception thrown into rclnodejs's executor would stop the node; log it and keep spinning.
        this.#log.error({ event: 'ros.callback_failed', topic, err });
      }
    });
    const record = { kind: 'sub' as const, entity };
    this.#entities.add(record);
    return { topic, close: () => this.#destroy(record) };
  }

  createPublisher<K extends MessageTypeName>(topic: string, type: K): RosPublisher<MessageTypes[K]> {
    this.#checkOpen();
    const entity = this.#node.createPublisher(type, topic, { enableTypedArray: true, qos: DEFAULT_QOS });
    const record = { kind: 'pub' as const, entity };
    this.#entities.add(record);
    return {
      topic,
      publish: (msg) => {
        if (!this.#entities.has(record)) throw new GatewayError('cancelled', `publisher on ${topic} is closed`);
        entity.publish(msg);
      },
      close: () => this.#destroy(record),
    };
  }

  createTriggerService(name: string, handler: TriggerHandler): RosService {
    this.#checkOpen();
    const entity = this.#node.createService('std_srvs/srv/Trigger', name, { enableTypedArray: true }, (_request, response) => {
      const reply = (result: TriggerResponse) => {
        const msg = response.template;
        msg.success = result.success;
        msg.message = result.message;
        response.send(msg);
      };
      Promise.resolve()
        .then(handler)
        .then(reply, (err: unknown) => reply({ success: false, message: err instanceof Error ? err.message : String(err) }))
        .catch((err: unknown) => this.#log.error({ event: 'ros.service_reply_failed', service: name, err }));
    });
    const record = { kind: 'srv' as const, entity };
    this.#entities.add(record);
    return { name, close: () => this.#destroy(record) };
  }

  now(): RosTime {
    const { sec, nanosec } = this.#node.now().toMsg();
    return { sec: Number(sec), nanosec: Number(nanosec) };
  }

  #destroy(record: { kind: 'sub' | 'pub' | 'srv'; entity: RclEntity }): void {
    if (!this.#entities.delete(record)) return;
    try {
      if (record.kind === 'sub') this.#node.destroySubscription(record.entity);
      else if (record.kind === 'pub') this.#node.destroyPublisher(record.entity);
      else this.#node.destroyService(record.entity);
    } catch (err) {
      this.#log.warn({ event: 'ros.destroy_failed', kind: record.kind, err });
    }
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    for (const record of [...this.#entities]) this.#destroy(record);
    try {
      this.#node.stop();
      this.#node.destroy();
    } finally {
      if (!this.#rcl.isShutdown()) this.#rcl.shutdown();
      this.#log.info({ event: 'ros.node_stopped' });
    }
  }
}
