// A private OpenSSH server and ssh agent for tests of ssh:// engines. sshd runs in the foreground (-D) with its own
// config, host key and authorized_keys in a temp folder (never /etc/ssh nor ~/.ssh), public keys only; each listen
// port can get its own forced command (`Match LocalPort`). The agent runs in the foreground on its own socket. Both
// announce readiness by an event (sshd's "Server listening" line, the agent's socket line), and stop() ends them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from './private-engine.js';

const PRIVSEP_DIR = '/run/sshd';
const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  process: ChildProcess;
  /** `SHA256:...` of its (ed25519) host key, as `ssh-keygen -lf` prints it. */
  hostKey: string;
  /** The public key line of its ecdsa host key, when it has one. */
  ecdsaHostKey?: string;
  /** How many ssh connections it has accepted (logged in) so far. */
  accepted(): number;
  /** Resolves once every connection it accepted has disconnected (by its log). */
  allDisconnected(): Promise<void>;
  stop(): Promise<void>;
}

export interface SshAgent {
  socket: string;
  process: ChildProcess;
  /** ssh-add a private key file. */
  add(keyFile: string): Promise<void>;
  stop(): Promise<void>;
}

/** Makes a key pair (ed25519 unless told) at `file` (and `file.pub`); resolves with the public key line. */
export async function makeKey(file: string, type: 'ed25519' | 'ecdsa' = 'ed25519'): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'pag-test', '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

/** The fingerprint of a public key file, `SHA256:...`. */
export async function fingerprint(pubFile: string): Promise<string> {
  return (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile])).split(' ')[1]!;
}

/** Waits for `pattern` on a child's stream; rejects when the child exits first. */
function announced(child: ChildProcess, stream: NodeJS.ReadableStream, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (d: Buffer) => {
      log += d.toString();
      if (pattern.test(log)) {
        stream.off('data', onData);
        child.off('exit', onExit);
        stream.resume();
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`${what} exited with ${code} before it was ready:\n${log.slice(-2000)}`));
    stream.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (err) => reject(new Error(`${what} did not start: ${err.message}`)));
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  // a child that did not start (spawn error) never exits
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
}

/**
 * Starts sshd in `dir` (made here) listening on `address` at each of `ports`, accepting root with `authorizedKeys`.
 * Its host key is ed25519; `ecdsaHostKey` gives it an ecdsa one too (a client choosing by its known_hosts).
 * `setEnv` goes to every session (SetEnv); `forceCommand` maps a port to the command its sessions run instead.
 * `prefix` runs it under another command (`nsenter --net=/run/netns/X`).
 */
export async function startSshd({ dir, address, ports, authorizedKeys, setEnv = {}, forceCommand = {}, prefix = [], ecdsaHostKey = false }: {
  dir: string;
  address: string;
  ports: number[];
  authorizedKeys: string[];
  setEnv?: Record<string, string>;
  forceCommand?: Record<number, string>;
  prefix?: string[];
  ecdsaHostKey?: boolean;
}): Promise<Sshd> {
  if (!(await stat(SSHD).catch(() => undefined))) {
    throw new Error(`${SSHD} is missing: scripts/test.sh installs it (Debian's openssh-server, its service neither started nor enabled); or apt-get install --no-install-recommends openssh-server with /usr/sbin/policy-rc.d answering 101`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await makeKey(join(dir, 'host_key'));
  const ecdsa = ecdsaHostKey ? await makeKey(join(dir, 'host_key_ecdsa'), 'ecdsa') : undefined;
  await writeFile(join(dir, 'authorized_keys'), `${authorizedKeys.join('\n')}\n`, { mode: 0o600 });
  // sshd's privilege separation folder (compiled in; the Debian service makes it at boot): removed again by stop()
  // when made here.
  const madeRunDir = (await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 })) !== undefined;
  const config = [
    ...ports.map((p) => `ListenAddress ${address}:${p}`),
    `HostKey ${join(dir, 'host_key')}`,
    ...(ecdsa ? [`HostKey ${join(dir, 'host_key_ecdsa')}`] : []),
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PidFile none',
    'AllowUsers root',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'PermitTunnel no',
    'PrintMotd no',
    'LogLevel INFO',
    ...(Object.keys(setEnv).length ? [`SetEnv ${Object.entries(setEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
    ...Object.entries(forceCommand).flatMap(([port, cmd]) => [`Match LocalPort ${port}`, `  ForceCommand ${cmd}`]),
  ];
  await writeFile(join(dir, 'sshd_config'), `${config.join('\n')}\n`);
  const argv = [...prefix, SSHD, '-D', '-e', '-f', join(dir, 'sshd_config')];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let accepted = 0;
  let disconnected = 0;
  const lines = createInterface({ input: child.stderr! });
  lines.on('line', (line) => {
    if (/^Accepted publickey for /.test(line)) accepted++;
    if (/^Disconnected from user /.test(line)) disconnected++;
  });
  const allDisconnected = () =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (disconnected < accepted) return;
        lines.off('line', check);
        resolve();
      };
      lines.on('line', check);
      check();
    });
  const stopChild = stopper(child);
  const stop = async () => {
    await stopChild();
    if (madeRunDir) await rm(PRIVSEP_DIR, { recursive: true, force: true });
  };
  try {
    // one "Server listening on ADDR port P." line per port
    await announced(child, child.stderr!, new RegExp(ports.map((p) => `(?=[\\s\\S]*Server listening on \\S+ port ${p}\\.)`).join('')), 'sshd');
  } catch (err) {
    await stop();
    throw err;
  }
  return { process: child, hostKey: await fingerprint(join(dir, 'host_key.pub')), ...(ecdsa ? { ecdsaHostKey: ecdsa } : {}), accepted: () => accepted, allDisconnected, stop };
}

/** Starts ssh-agent in the foreground on a socket in `dir` (which must exist). */
export async function startAgent(dir: string, name = 'agent.sock'): Promise<SshAgent> {
  const socket = join(dir, name);
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = stopper(child);
  try {
    await announced(child, child.stdout!, /SSH_AUTH_SOCK=/, 'ssh-agent');
    await stat(socket);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    socket,
    process: child,
    add: async (keyFile) => {
      await runWithEnv('ssh-add', ['-q', keyFile], { SSH_AUTH_SOCK: socket });
    },
    stop: async () => {
      await stop();
      await rm(socket, { force: true });
    },
  };
}

function runWithEnv(cmd: string, args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}
