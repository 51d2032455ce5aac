// The interfaces the router and the gateway own for frameworks started on demand; the docker manager implements them.

/** Starts a framework's workers when asked and says where they listen. */
export interface FrameworkLauncher {
  /**
   * Makes sure the framework's worker is running and ready, starting it if needed, within the signal's
   * deadline. Resolves with the endpoints to connect to. Rejects with a GatewayError (`unavailable`,
   * `timeout`, `cancelled`, `unknown_framework`).
   */
  ensureRunning(framework: string, signal: AbortSignal): Promise<string[]>;
  /** Tells the launcher the framework served a request (for idle stop). */
  touch?(framework: string): void;
  close(): Promise<void>;
}

/** Where a launchable framework stands: no container, stopped, being started, worker ready, running but not (yet) known ready. */
export type LaunchState = 'absent' | 'stopped' | 'starting' | 'ready' | 'running';

export interface LaunchStatus {
  framework: string;
  state: LaunchState;
  /** Container name. */
  container: string;
  containerId: string | undefined;
  /** The endpoint the gateway connects to (when running). */
  endpoint: string | undefined;
  image: string;
}

/** The last resource sample of a container (from the stats sampler). */
export interface ContainerStatsSnapshot {
  time: string;
  /** % of one CPU summed over CPUs (200 = two full CPUs). */
  cpuPercent: number | null;
  memoryUsedBytes: number;
  memoryLimitBytes: number;
  networkRxBytes: number;
  networkTxBytes: number;
  blockReadBytes: number;
  blockWriteBytes: number;
  pids: number | null;
}

/** One container the gateway manages (labelled as ours), as GET /v1/containers shows it. */
export interface ManagedContainer {
  framework: string | null;
  name: string;
  id: string;
  /** Docker's state: created, running, exited, ... */
  state: string;
  /** The image's HEALTHCHECK status, or `none` without one. */
  health: 'healthy' | 'unhealthy' | 'starting' | 'none';
  image: string;
  /** The endpoint the gateway uses for it (frameworks this gateway launches, when running). */
  endpoint: string | null;
  /** Memory limit set on the container, bytes; null without one. */
  memoryLimitBytes: number | null;
  startedAt: string | null;
  exitCode: number | null;
  oomKilled: boolean;
  lastStats: ContainerStatsSnapshot | null;
}

/**
 * Start, stop and status of launchable frameworks, for the gateway's HTTP control API. Errors are GatewayErrors:
 * `unknown_framework` for a framework the launcher does not manage, `unavailable` when the engine, the image
 * or the runtime is missing (with how to fix it), `timeout`/`cancelled` from the signal.
 */
export interface FrameworkControl {
  /** The frameworks this control can start and stop. */
  frameworks(): string[];
  ensureRunning(framework: string, signal: AbortSignal): Promise<string[]>;
  /** Stops the framework's container; not running is not an error. */
  stop(framework: string, signal?: AbortSignal): Promise<void>;
  /** One entry per launchable framework. */
  status(): Promise<LaunchStatus[]>;
  /** Every container labelled as ours on the engine. */
  containers(): Promise<ManagedContainer[]>;
}
