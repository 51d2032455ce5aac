// A Docker engine named by a `DOCKER_HOST`-style URL (unix:///path, tcp://host:port with TLS files, ssh://user@host)
// turned into dockerode connection options. The one place that knows the URL forms; the TLS files are read here,
// once, when the engine's manager is made.
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { GatewayError } from '../lib/errors.js';

export interface EngineTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A key naming one engine (specs that name the same engine share one manager): the URL, or `default`. */
export function engineKey(engine: string | undefined): string {
  return engine ?? 'default';
}

/**
 * dockerode options for `url`. `tcp://` without `tls` is refused: an engine API reachable over the network
 * without TLS gives root on that host to anyone who reaches the port.
 */
export async function engineOptions(url: string, tls?: EngineTls): Promise<Docker.DockerOptions> {
  const parsed = (() => {
    try {
      return new URL(url);
    } catch {
      throw new GatewayError('bad_request', `engine '${url}': not a URL (unix:///path, tcp://host:port, ssh://user@host)`);
    }
  })();
  switch (parsed.protocol) {
    case 'unix:':
      return { socketPath: parsed.pathname };
    case 'tcp:': {
      if (!tls) throw new GatewayError('bad_request', `engine '${url}': a tcp:// engine needs 'tls' (caFile, certFile, keyFile); plain tcp is not accepted`);
      const read = (file: string, what: string) =>
        readFile(file).catch((err: unknown) => {
          throw new GatewayError('bad_request', `engine '${url}': cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
        });
      const [ca, cert, key] = await Promise.all([read(tls.caFile, 'CA'), read(tls.certFile, 'certificate'), read(tls.keyFile, 'key')]);
      return { protocol: 'https', host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 2376), ca, cert, key };
    }
    case 'ssh:':
      // docker-modem runs `docker system dial-stdio` over ssh2 and takes the key from the ssh agent (SSH_AUTH_SOCK).
      return { protocol: 'ssh', host: parsed.hostname, port: Number(parsed.port || 22), username: decodeURIComponent(parsed.username || 'root') };
    default:
      throw new GatewayError('bad_request', `engine '${url}': unsupported scheme ${parsed.protocol} (unix, tcp, ssh)`);
  }
}
