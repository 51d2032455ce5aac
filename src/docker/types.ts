// Docker-shaped views the gateway shows as JSON (GET /v1/containers, start/stop replies): the launcher's status of
// each framework and the containers it manages. The router and the front doors treat them as opaque JSON.

/** Where a launchable framework's container stands (whether its worker is ready is the router's pool's to say). */
export type LaunchState = 'absent' | 'stopped' | 'starting' | 'running';

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
