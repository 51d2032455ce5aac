// The frameworks the gateway serves: name → config, pool, launcher, in-flight count and recent latency.
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Limits } from '../protocol/codec.js';
import type { FrameworkConfig } from '../config.js';
import type { EndpointPool } from '../zmq/endpoint-pool.js';
import { createFrameworkPool } from './pool-factory.js';
import type { FrameworkLauncher } from './framework-launcher.js';

/** What the router needs from a pool (every pool is an EndpointPool: native workers and peer servers, pool-factory.ts). */
export type FrameworkPool = Pick<EndpointPool, 'request' | 'addEndpoint' | 'removeEndpoint' | 'checkHealth' | 'isReady' | 'whenReady' | 'stats' | 'start' | 'close' | 'onEvent' | 'endpoints'>;

/** `ready`: a worker is ready; `starting`: a launch is in progress; `stopped`: launchable and not running (on purpose); `down`: no ready worker. */
export type FrameworkState = 'ready' | 'starting' | 'stopped' | 'down';

export interface FrameworkEntry {
  readonly name: string;
  readonly config: FrameworkConfig;
  readonly pool: FrameworkPool;
  readonly launcher: FrameworkLauncher | undefined;
  /** Requests admitted by the router and not yet answered (including those waiting for a launch). */
  inFlight: number;
  /** Moving average of successful round trips through the router, ms. */
  latencyEmaMs: number | undefined;
  /** Counters since start. */
  counts: { ok: number; errors: number; overloaded: number };
  /** The on-demand start in progress, shared by the requests that wait for it. */
  launching: Promise<void> | undefined;
  /** Last state the router announced (it owns this field). */
  state: FrameworkState;
}

export interface FrameworkRegistryOptions {
  frameworks: readonly FrameworkConfig[];
  /** The framework for requests that name none. */
  defaultFramework?: string;
  limits?: Limits;
  healthIntervalMs?: number;
  /** Used for frameworks whose config has a `launcher`. */
  launcher?: FrameworkLauncher;
  log?: Logger;
}

export class FrameworkRegistry {
  readonly defaultFramework: string | undefined;
  readonly #entries = new Map<string, FrameworkEntry>();
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  constructor(options: FrameworkRegistryOptions) {
    this.#log = (options.log ?? silentLogger).child({ component: 'router.registry' });
    for (const fw of options.frameworks) {
      if (this.#entries.has(fw.name)) throw new GatewayError('bad_request', `framework '${fw.name}' is configured twice`);
      const launcher = fw.launcher !== undefined ? options.launcher : undefined;
      if (fw.launcher !== undefined && !launcher) {
        this.#log.warn({ event: 'registry.no_launcher', framework: fw.name, message: 'framework has a launcher spec but no launcher is available; it is served from its endpoints only' });
      }
      this.#entries.set(fw.name, {
        name: fw.name,
        config: fw,
        pool: createFrameworkPool(fw, { limits: options.limits, healthIntervalMs: options.healthIntervalMs, log: options.log }),
        launcher,
        inFlight: 0,
        latencyEmaMs: undefined,
        counts: { ok: 0, errors: 0, overloaded: 0 },
        launching: undefined,
        state: 'down',
      });
    }
    const names = [...this.#entries.keys()];
    const fallback = names.length === 1 ? names[0] : undefined;
    this.defaultFramework = options.defaultFramework ?? fallback;
    if (this.defaultFramework !== undefined && !this.#entries.has(this.defaultFramework)) {
      throw new GatewayError('unknown_framework', `default framework '${this.defaultFramework}' is not configured`);
    }
  }

  /** Starts every pool (connects, first health check); a framework that is not up yet is not an error. */
  async start({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map(async (entry) => {
        entry.pool.onEvent((event) => {
          if (event.type === 'state') this.#log.debug({ event: 'registry.endpoint_state', framework: entry.name, endpoint: event.endpoint, from: event.from, to: event.to });
        });
        try {
          await entry.pool.start({ signal });
        } catch (err) {
          this.#log.warn({ event: 'registry.pool_start_failed', framework: entry.name, err });
        }
      }),
    );
  }

  get names(): string[] {
    return [...this.#entries.keys()];
  }

  entries(): FrameworkEntry[] {
    return [...this.#entries.values()];
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** The entry for `name`, or for the default framework when `name` is undefined. */
  resolve(name: string | undefined): FrameworkEntry {
    const target = name ?? this.defaultFramework;
    if (target === undefined) {
      throw new GatewayError('bad_request', `the request names no framework and there is no default (configured: ${this.names.join(', ')})`, { path: '/framework' });
    }
    const entry = this.#entries.get(target);
    if (!entry) throw new GatewayError('unknown_framework', `unknown framework '${target}' (configured: ${this.names.join(', ') || 'none'})`);
    return entry;
  }

  /** Closes every pool (requests still in flight get `cancelled` after `graceMs`). Idempotent. */
  close({ graceMs = 0 }: { graceMs?: number } = {}): Promise<void> {
    return (this.#closing ??= Promise.all([...this.#entries.values()].map((e) => e.pool.close({ graceMs }))).then(() => undefined));
  }
}
