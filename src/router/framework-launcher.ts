// The interface the router owns for starting frameworks on demand; the docker manager implements it.

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
