// Whether a TCP address can be bound right now: checked before a start does slow work (worker processes,
// containers) so "address already in use" is said at once, not after everything else has started.
import { createServer } from 'node:net';

/** True when `host:port` can be bound now (nothing listens there). */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
