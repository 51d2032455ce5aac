// The readiness probe: one protocol health request to a worker endpoint; ready = the worker says so.
import { abortError, Deadline } from '../lib/abort.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { WorkerClient } from '../zmq/worker-client.js';
import type { ReadinessProbe } from './docker-manager.js';

export interface HealthProbeOptions {
  /** Longest wait for one health reply; a worker that is still binding or loading just answers later. Default 1000 ms. */
  attemptTimeoutMs?: number;
  log?: Logger;
}

/**
 * A probe that sends `{type:'health'}` over ZMQ and reports `ready` from the reply. No reply within the
 * attempt's own time, or an error reply, is "not ready yet" (a slow first answer is normal while a container
 * starts); only an abort of the caller's `signal` rejects (`timeout`/`cancelled`).
 */
export function createHealthProbe({ attemptTimeoutMs = 1_000, log = silentLogger }: HealthProbeOptions = {}): ReadinessProbe {
  return async (endpoint, signal) => {
    if (signal.aborted) throw abortError(signal, `health of ${endpoint}`);
    const client = new WorkerClient({ endpoint, timeoutMs: attemptTimeoutMs, log, reconnectIntervalMs: 50, reconnectMaxIntervalMs: 200 });
    const attempt = new Deadline(attemptTimeoutMs, signal);
    try {
      const health = await client.health({ signal: attempt.signal, timeoutMs: attemptTimeoutMs });
      return { ready: health.ready === true };
    } catch (err) {
      if (signal.aborted) throw abortError(signal, `health of ${endpoint}`);
      log.debug({ event: 'docker.probe_not_ready', endpoint, err });
      return { ready: false };
    } finally {
      attempt.dispose();
      await client.close();
    }
  };
}
