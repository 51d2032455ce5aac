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

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Longest time to receive a whole request, ms (Node's default, 300 s, lets slow clients hold sockets). */
  requestTimeoutMs?: number;
  /** Longest time to receive the headers, ms. */
  headersTimeoutMs?: number;
  /** Open connections at most; the server refuses more. */
  maxConnections?: number;
}

export async function startHttpServer(app: Hono, { host, port, requestTimeoutMs = 30_000, headersTimeoutMs = 10_000, maxConnections = 1024 }: HttpServerOptions): Promise<HttpServerHandle> {
  const server = await new Promise<Server>((resolve, reject) => {
    // Node checks the two timeouts every connectionsCheckingInterval (default 30 s): check at a tenth of the shorter.
    const serverOptions = { requestTimeout: requestTimeoutMs, headersTimeout: headersTimeoutMs, connectionsCheckingInterval: Math.max(50, Math.min(headersTimeoutMs, requestTimeoutMs) / 10) };
    const s = serve({ fetch: app.fetch, hostname: host, port, serverOptions }) as Server;
    s.maxConnections = maxConnections;
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
