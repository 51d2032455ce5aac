// The interfaces the router owns for frameworks started on demand; the docker manager implements them. A launch
// means "the container is running; here are its endpoints": readiness is the router's pool's job (health over
// its own sockets, announced by events), so nothing here knows about ZeroMQ or polls.
import type { GatewayError } from '../lib/errors.js';
import type { Release } from '../lib/idle-holds.js';

/** One worker of a framework with replicas: its endpoint and where it runs (labels on its metrics). */
export interface LaunchWorker {
  endpoint: string;
  /** The host (node address) it runs on. */
  host: string;
  /** The Swarm task (or container) that runs it. */
  task: string;
}

/** A running framework: where its workers listen, and the end of the container (or service) that runs them. */
export interface Launch {
  endpoints: string[];
  /** Resolves (never rejects) with the reason when this container stops, dies or is removed. */
  ended: Promise<GatewayError>;
  /** Replicas (Swarm services): the workers behind `endpoints`, with their host and task. */
  workers?: LaunchWorker[];
}

/** What a launcher announces that the router acts on; launchers may emit more event types, which it ignores. */
export type LaunchEvent =
  | { type: 'stopped'; framework: string; reason: 'idle' | 'switch' | 'request' | 'close' }
  | { type: 'exited'; framework: string; expected: boolean; error?: string }
  /**
   * The framework's current workers (replicas come and go: scale, a task replaced, a rolling update). The router
   * adds the new ones to the pool and drains the others: no new requests, those in flight finish for `drainMs`.
   */
  | { type: 'workers'; framework: string; workers: LaunchWorker[]; drainMs: number };

/** Starts a framework's workers when asked and says where they listen. */
export interface FrameworkLauncher {
  /**
   * Makes sure the framework's workers run, starting them if needed, within the signal's deadline. Resolves
   * once they run (not once they are ready). Rejects with a GatewayError (`unavailable`, `timeout`,
   * `cancelled`, `unknown_framework`).
   */
  ensureRunning(framework: string, signal: AbortSignal): Promise<Launch>;
  /**
   * Marks the framework busy until the returned release is called (idempotent): a launcher with an idle stop stops
   * it only once nothing has held it for its idle time. Counted: each hold needs its own release.
   */
  hold?(framework: string): Release;
  /** Stopped on purpose (idle, switch, request) or exited: the router drops or re-checks the framework's endpoints. */
  onEvent(listener: (event: LaunchEvent | { type: string; framework?: string }) => void): () => void;
  close(): Promise<void>;
}

/**
 * Stop, status and container listing of launchable frameworks, for the gateway's HTTP control API (starting goes
 * through the router, which waits for readiness). Results are plain JSON for the door. Errors are GatewayErrors:
 * `unknown_framework` for a framework the launcher does not manage, `unavailable` when the engine, the image or
 * the runtime is missing (with how to fix it), `timeout`/`cancelled` from the signal.
 */
export interface FrameworkControl {
  /** The frameworks this control can start and stop. */
  frameworks(): string[];
  /** Stops the framework's container; not running is not an error. */
  stop(framework: string, signal?: AbortSignal): Promise<void>;
  /** One entry per launchable framework: `{ framework, state, container, ... }`. */
  status(): Promise<ReadonlyArray<{ framework: string; state: string; container?: string; image?: string }>>;
  /** Every container labelled as ours on the engine. */
  containers(): Promise<readonly object[]>;
}
