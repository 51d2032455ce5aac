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
      // Every unreadable file is named, in a fixed order (CA, certificate, key), not whichever read failed first.
      const files = [['CA', tls.caFile], ['certificate', tls.certFile], ['key', tls.keyFile]] as const;
      const read = await Promise.allSettled(files.map(([, file]) => readFile(file)));
      const failures = read.flatMap((r, i) => (r.status === 'rejected' ? [`cannot read the TLS ${files[i]![0]} ${files[i]![1]}: ${(r.reason as Error).message}`] : []));
      if (failures.length > 0) throw new GatewayError('bad_request', `engine '${url}': ${failures.join('; ')}`);
      const [ca, cert, key] = read.map((r) => (r as PromiseFulfilledResult<Buffer>).value) as [Buffer, Buffer, Buffer];
      return { protocol: 'https', host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 2376), ca, cert, key };
    }
    case 'ssh:':
      // docker-modem runs `docker system dial-stdio` over ssh2 and takes the key from the ssh agent (SSH_AUTH_SOCK).
      return { protocol: 'ssh', host: parsed.hostname, port: Number(parsed.port || 22), username: decodeURIComponent(parsed.username || 'root') };
    default:
      throw new GatewayError('bad_request', `engine '${url}': unsupported scheme ${parsed.protocol} (unix, tcp, ssh)`);
  }
}
