// Readiness announced by a pool's own events, shared by every pool (native, GR00T, openpi): resolves on the first
// endpoint that turns ready, rejects on the caller's signal or the pool's close. No polling; the listener and the
// abort handler are removed on every exit.
import { abortError } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import type { PoolEvent } from './types.js';

export interface ReadyEventSource {
  readonly framework: string;
  isReady(): boolean;
  onEvent(listener: (event: PoolEvent) => void): () => void;
}

export function whenReadyEvent(pool: ReadyEventSource, closed: boolean, signal: AbortSignal): Promise<void> {
  if (pool.isReady()) return Promise.resolve();
  if (closed) return Promise.reject(new GatewayError('unavailable', `pool ${pool.framework} is closed`));
  if (signal.aborted) return Promise.reject(abortError(signal, `${pool.framework} ready`));
  return new Promise<void>((resolve, reject) => {
    const finish = (err?: GatewayError) => {
      stop();
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => finish(abortError(signal, `${pool.framework} ready`));
    const stop = pool.onEvent((event) => {
      if (event.type === 'state' && event.to === 'ready') finish();
      else if (event.type === 'closed') finish(new GatewayError('unavailable', `pool ${pool.framework} is closed`));
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
