// Serves the hono app on a node http server (@hono/node-server), with a draining close.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { GatewayError } from '../lib/errors.js';

export interface HttpServerHandle {
  /** http://host:port with the real port (when started on port 0). */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections, lets open requests finish for up to `graceMs`, then drops the rest. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export async function startHttpServer(app: Hono, { host, port }: { host: string; port: number }): Promise<HttpServerHandle> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }) as Server;
    const onError = (err: NodeJS.ErrnoException) => {
      s.close();
      reject(new GatewayError('unavailable', `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, { cause: err }));
    };
    s.once('error', onError);
    s.once('listening', () => {
      s.off('error', onError);
      resolve(s);
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    port: address.port,
    close(graceMs = 0) {
      return (closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        // Keep-alive connections become idle as their last request ends: close them as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 25);
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      }));
    },
  };
}
