// A Docker engine named by a `DOCKER_HOST`-style URL (unix:///path, tcp://host:port with TLS files, ssh://user@host)
// turned into dockerode connection options. The one place that knows the URL forms; the TLS files are read and the
// ssh agent is looked up here, once, when the engine's manager is made.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { GatewayError } from '../lib/errors.js';
import { sshEngineAgent, type HostKeyCheck } from './ssh-engine.js';

export interface EngineTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A key naming one engine (specs that name the same engine share one manager): the URL, or `default`. */
export function engineKey(engine: string | undefined): string {
  return engine ?? 'default';
}

export interface EngineAccess {
  /** TLS client files of a tcp:// engine. */
  tls?: EngineTls | undefined;
  /** The pinned host key of an ssh:// engine (`SHA256:...`): the only key accepted (known_hosts is not read). */
  sshHostKey?: string | undefined;
  /** The known_hosts file of an ssh:// engine; default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts, as ssh. */
  sshKnownHosts?: string | undefined;
  /** `known-hosts` (default): check the host key as ssh does; `accept-any`: do not check it. */
  sshHostKeyCheck?: 'known-hosts' | 'accept-any' | undefined;
  /** The ssh agent's socket for an ssh:// engine; default SSH_AUTH_SOCK. */
  sshAuthSock?: string | undefined;
}

/**
 * dockerode options for `url`. `tcp://` without `tls` is refused: an engine API reachable over the network
 * without TLS gives root on that host to anyone who reaches the port. `ssh://` needs an ssh agent (SSH_AUTH_SOCK).
 */
export async function engineOptions(url: string, { tls, sshHostKey, sshKnownHosts, sshHostKeyCheck, sshAuthSock = process.env.SSH_AUTH_SOCK }: EngineAccess = {}): Promise<Docker.DockerOptions> {
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
    case 'ssh:': {
      // Every HTTP connection is an ssh session running `docker system dial-stdio` there (ssh-engine.ts); the key
      // comes from the ssh agent, never from a file the gateway reads.
      if (!sshAuthSock) throw new GatewayError('bad_request', `engine '${url}': no ssh agent (SSH_AUTH_SOCK is not set); start ssh-agent, ssh-add the key the host accepts and start the gateway with SSH_AUTH_SOCK set`);
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      const port = Number(parsed.port || 22);
      const hostKeyCheck: HostKeyCheck = sshHostKey ? { pinned: sshHostKey } : sshHostKeyCheck === 'accept-any' ? 'accept-any' : { knownHosts: sshKnownHosts ? [sshKnownHosts] : defaultKnownHosts() };
      const agent = sshEngineAgent({ url, host, port, username: decodeURIComponent(parsed.username || 'root'), agentSocket: sshAuthSock, hostKeyCheck });
      // protocol http: dockerode speaks plain HTTP through the agent's streams (the ssh session encrypts them).
      const options: Docker.DockerOptions & { agent: typeof agent } = { protocol: 'http', host, port, agent };
      return options;
    }
    default:
      throw new GatewayError('bad_request', `engine '${url}': unsupported scheme ${parsed.protocol} (unix, tcp, ssh)`);
  }
}

/** The known_hosts files ssh reads by default: the user's and the system-wide one. */
export function defaultKnownHosts(): string[] {
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
}
