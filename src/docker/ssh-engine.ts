// A Docker engine reached over ssh (`ssh://user@host:port`): an http.Agent whose every connection is an ssh session
// running `docker system dial-stdio` on that host (as the docker CLI does), authenticated by a key of the ssh agent.
// It exists instead of docker-modem's own ssh transport because that one drops the remote command's stderr and exit
// status (a missing docker CLI and a stopped engine both become "socket hang up") and never checks the host's key;
// here every failure is one line naming the engine and what to do, and the host key is checked as ssh checks it:
// against known_hosts (known-hosts.ts) unless a key is pinned, refusing an unknown or changed one.
import { Agent } from 'node:http';
import { Duplex } from 'node:stream';
import { Client, createAgent, type ClientChannel, type ParsedKey, type ServerHostKeyAlgorithm } from 'ssh2';
import { DockerError } from './docker-error.js';
import { blobType, checkHostKey, knownHostName, knownKeyTypes, readKnownHosts, sshFingerprint, type KnownHostEntry } from './known-hosts.js';

/**
 * How the host's key is checked: `pinned` accepts only that key (`SHA256:...` as `ssh-keygen -lf` prints it);
 * `knownHosts` accepts a key those OpenSSH known_hosts files list for the host and refuses an unknown host, a
 * changed key and a revoked one; `accept-any` checks nothing (an explicit opt-out).
 */
export type HostKeyCheck = { pinned: string } | { knownHosts: readonly string[] } | 'accept-any';

export interface SshEngine {
  /** The engine URL, as written in the spec (named in every error). */
  url: string;
  host: string;
  port: number;
  username: string;
  /** The ssh agent's socket (SSH_AUTH_SOCK). */
  agentSocket: string;
  hostKeyCheck: HostKeyCheck;
}

/** The remote command: the docker CLI on that host proxies stdin/stdout to its engine's API socket. */
export const DIAL_STDIO = 'docker system dial-stdio';
const READY_TIMEOUT_MS = 20_000;
const KEEPALIVE_MS = 10_000;

/**
 * The http.Agent dockerode uses for an ssh:// engine. Each HTTP connection is one ssh session, kept alive between
 * requests (an ssh handshake costs far more than the request: see the README); destroy() ends them all.
 */
export function sshEngineAgent(engine: SshEngine): Agent {
  const agent = new Agent({ keepAlive: true, maxFreeSockets: 4 });
  (agent as unknown as { createConnection: unknown }).createConnection = (_options: unknown, done: (err: Error | null, socket?: Duplex) => void) => {
    dial(engine).then((socket) => done(null, socket), (err: Error) => done(err));
    return undefined;
  };
  return agent;
}

function fail(engine: SshEngine, what: string, cause?: unknown): DockerError {
  return new DockerError('unavailable', 'no_engine', `engine '${engine.url}': ${what}`, { cause });
}

/** Opens an ssh session running DIAL_STDIO; resolves with a stream to the remote engine's API. */
async function dial(engine: SshEngine): Promise<Duplex> {
  const check = engine.hostKeyCheck;
  // read for every connection, as ssh does: a line added or removed takes effect without a restart
  let known: KnownHostEntry[] = [];
  if (typeof check === 'object' && 'knownHosts' in check) {
    try {
      known = await readKnownHosts(check.knownHosts);
    } catch (err) {
      throw fail(engine, (err as Error).message, err);
    }
  }
  const preferred = hostKeyAlgorithms(knownKeyTypes(known, engine.host, engine.port));
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let refusal: string | undefined;
    conn.once('ready', () => {
      conn.exec(DIAL_STDIO, (err, channel) => {
        if (err) {
          conn.end();
          reject(fail(engine, `the host refused to run '${DIAL_STDIO}': ${err.message}`, err));
          return;
        }
        resolve(engineStream(engine, conn, channel));
      });
    });
    conn.on('error', (err: Error & { level?: string; code?: string }) => {
      conn.end();
      void explain(engine, err, refusal).then(reject);
    });
    try {
      conn.connect({
        host: engine.host,
        port: engine.port,
        username: engine.username,
        agent: engine.agentSocket,
        readyTimeout: READY_TIMEOUT_MS,
        keepaliveInterval: KEEPALIVE_MS,
        // a host listed under one key type negotiates that type (as ssh orders its algorithms by known_hosts)
        ...(preferred ? { algorithms: { serverHostKey: preferred } } : {}),
        hostVerifier: (key: Buffer) => {
          refusal = hostKeyRefusal(engine, known, key);
          return refusal === undefined;
        },
      });
    } catch (err) {
      reject(fail(engine, `cannot connect: ${(err as Error).message}`, err));
    }
  });
}

/** One line for a failed ssh connection: which step failed and what to do. */
async function explain(engine: SshEngine, err: Error & { level?: string; code?: string }, refusal: string | undefined): Promise<DockerError> {
  const at = `${engine.host}:${engine.port}`;
  if (refusal !== undefined) return fail(engine, refusal, err);
  if (err.level === 'client-authentication' || err.level === 'agent') {
    const keys = await agentKeys(engine.agentSocket);
    if (keys instanceof Error) return fail(engine, `the ssh agent at SSH_AUTH_SOCK=${engine.agentSocket} does not answer (${keys.message}); start ssh-agent and ssh-add the key ${engine.username}@${engine.host} accepts`, err);
    if (keys.length === 0) return fail(engine, `the ssh agent at SSH_AUTH_SOCK=${engine.agentSocket} holds no key; ssh-add the key ${engine.username}@${engine.host} accepts`, err);
    const names = keys.map((k) => sshFingerprint(k.getPublicSSH())).join(', ');
    return fail(engine, `${engine.username}@${at} refused every key of the ssh agent (${names}); add one of them to that user's authorized_keys there`, err);
  }
  if (err.level === 'client-timeout') return fail(engine, `no ssh handshake with ${at} within ${READY_TIMEOUT_MS / 1000} s; is sshd running there and the port right?`, err);
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return fail(engine, `the host name ${engine.host} does not resolve (${err.code}); check the engine URL`, err);
  if (err.code) return fail(engine, `cannot reach sshd at ${at}: ${err.code}; is sshd running there and the port right?`, err);
  return fail(engine, `ssh to ${at} failed: ${err.message}`, err);
}

/** Why the key a host presents is refused (one line: what was seen, where, what to do), or undefined: accepted. */
export function hostKeyRefusal(engine: Pick<SshEngine, 'host' | 'port' | 'hostKeyCheck'>, known: readonly KnownHostEntry[], key: Buffer): string | undefined {
  const check = engine.hostKeyCheck;
  if (check === 'accept-any') return undefined;
  const seen = sshFingerprint(key);
  if ('pinned' in check) {
    return seen === check.pinned ? undefined : `the host's key is ${seen}, not the pinned sshHostKey ${check.pinned}; if that host's key really changed, set sshHostKey to what 'ssh-keygen -lf' prints for its host key`;
  }
  const verdict = checkHostKey(known, engine.host, engine.port, key);
  if (verdict.ok) return undefined;
  const at = `${engine.host}:${engine.port}`;
  const type = blobType(key) ?? 'unknown-type';
  const name = knownHostName(engine.host, engine.port);
  const where = verdict.entries.map((e) => `${e.file}:${e.line}`).join(', ');
  const files = check.knownHosts;
  const scan = `ssh-keyscan -H -p ${engine.port} ${engine.host} >> ${files[0]}`;
  switch (verdict.why) {
    case 'revoked':
      return `the host key ${type} ${seen} that ${at} presented is marked @revoked in ${where}; refused`;
    case 'changed': {
      const listed = verdict.entries.map((e) => `${e.keyType} ${sshFingerprint(e.key)} (${e.file}:${e.line})`).join(', ');
      return `the host key of ${at} changed: it presented ${type} ${seen}, but known_hosts lists ${listed}; either someone is posing as that host, or it was reinstalled: then check the new key on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and replace the line (ssh-keygen -R '${name}' -f ${verdict.entries[0]!.file}, then ${scan})`;
    }
    case 'cert-authority-only':
      return `${at} is listed in known_hosts only under @cert-authority (${where}), and host certificates are not supported; it presented ${type} ${seen}: add the host's own key (${scan}) or pin sshHostKey: "${seen}"`;
    case 'unknown':
      return `${at} is not in known_hosts (${files.join(', ')}); it presented the ${type} key ${seen}: if that is the host's key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it), add it with '${scan}' or pin sshHostKey: "${seen}"`;
  }
}

/** The ssh2 host key algorithms with those of the known key types first; undefined when none is known. */
function hostKeyAlgorithms(knownTypes: readonly string[]): ServerHostKeyAlgorithm[] | undefined {
  const all: ServerHostKeyAlgorithm[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const known = new Set<string>(knownTypes.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])));
  const first = all.filter((a) => known.has(a));
  return first.length > 0 ? [...first, ...all.filter((a) => !known.has(a))] : undefined;
}

function agentKeys(socket: string): Promise<ParsedKey[] | Error> {
  return new Promise((resolve) => {
    createAgent(socket).getIdentities((err, keys) => resolve(err ?? ((keys ?? []) as ParsedKey[])));
  });
}

/**
 * The channel as the HTTP client's socket. The channel's end is passed on only once the remote command's exit
 * status is known: a failed `dial-stdio` (no docker CLI, engine down) ends the stream with an error carrying its
 * stderr, instead of a bare "socket hang up".
 */
function engineStream(engine: SshEngine, conn: Client, channel: ClientChannel): Duplex {
  let stderr = '';
  let exitCode: number | undefined;
  let received = false;
  const stream = new Duplex({
    // the remote end closing (engine restarted, session ended) ends both sides: a kept-alive socket that ended is
    // dropped by the http Agent instead of taking the next request
    allowHalfOpen: false,
    read() {
      channel.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (channel.write(chunk)) callback();
      else channel.once('drain', () => callback());
    },
    final(callback) {
      if (!channel.destroyed) channel.end();
      callback();
    },
    destroy(err, callback) {
      channel.destroy();
      conn.end();
      callback(err);
    },
  });
  // What node's http Agent calls on a socket it keeps alive or reuses: nothing to do on an ssh channel (the ssh
  // connection has its own keepalive; an idle one is ended by the agent's destroy()).
  Object.assign(stream, { setKeepAlive: () => stream, setNoDelay: () => stream, setTimeout: () => stream, ref: () => stream, unref: () => stream });
  channel.on('data', (data: Buffer) => {
    received = true;
    if (!stream.push(data)) channel.pause();
  });
  channel.stderr.on('data', (data: Buffer) => {
    if (stderr.length < 4096) stderr += data.toString();
  });
  channel.once('exit', (code: number | null) => {
    exitCode = code ?? undefined;
  });
  channel.once('close', () => {
    if (exitCode !== undefined && exitCode !== 0) stream.destroy(remoteFailure(engine, exitCode, stderr, received));
    else stream.push(null);
  });
  conn.once('close', () => {
    if (!stream.destroyed && !stream.readableEnded) stream.destroy(fail(engine, `the ssh connection to ${engine.host}:${engine.port} closed during a request (network, or sshd restarted there); the next request connects again`));
  });
  return stream;
}

/** What a failed `docker system dial-stdio` means, from its exit status and stderr. */
function remoteFailure(engine: SshEngine, code: number, stderr: string, received: boolean): DockerError {
  const said = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  const where = `${engine.username}@${engine.host}`;
  if (code === 127) return fail(engine, `there is no docker CLI on ${where} (${said || `exit ${code}`}); install it there, on the PATH of ssh sessions`);
  if (!received && /daemon|docker\.sock|connect/i.test(said)) return fail(engine, `the docker CLI on ${where} cannot reach its engine (${said}); start dockerd there, or set DOCKER_HOST for ssh sessions`);
  return fail(engine, `'${DIAL_STDIO}' on ${where} failed (exit ${code}): ${said || 'no output'}`);
}
