// What a Docker API request costs on an ssh:// engine: `docker version` against one private dockerd, three ways,
// in interleaved rounds:
//   unix          the engine's unix socket (the local engine's path)
//   ssh-reused    the gateway's ssh:// transport (src/docker/ssh-engine.ts): ssh sessions kept alive between requests
//   ssh-per-req   docker-modem's own ssh transport (what ssh:// used before): a new ssh connection per request
// sshd (OpenSSH, foreground, own config/host key/authorized_keys in a temp folder) listens on 127.0.0.1; its sessions'
// DOCKER_HOST is the private engine. The key is in a fresh ssh-agent. Needs root, dockerd, /usr/sbin/sshd, ssh-agent.
// Everything is stopped and removed at the end.
// Usage: npx tsx bench/ssh-engine.ts [--requests 20] [--rounds 5] [--json]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { DockerManager } from '../src/docker/docker-manager.js';
import { engineOptions } from '../src/docker/engine-url.js';
import { machineInfo, roundLoad } from './lib/machine.js';
import { quantile } from './lib/stats.js';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '20' }, rounds: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
const requests = Number(args.requests);
const rounds = Number(args.rounds);

function run(cmd: string, argv: string[], env: Record<string, string> = {}): Promise<string> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${cmd} exited ${code}: ${err}`)))));
}

/** Starts a child and resolves once `pattern` shows on its `stream` (an event, not a poll). */
async function startUntil(argv: string[], stream: 'stdout' | 'stderr', pattern: RegExp): Promise<ChildProcess> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', stream === 'stdout' ? 'pipe' : 'ignore', stream === 'stderr' ? 'pipe' : 'ignore'] });
  const out = child[stream]!;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    out.on('data', (d: Buffer) => {
      log += d.toString();
      if (pattern.test(log)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${argv[0]} exited ${code}: ${log.slice(-1500)}`)));
  });
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

const dir = await mkdtemp('/tmp/pag-bench-ssh-');
const made: { dockerd?: ChildProcess; sshd?: ChildProcess; agent?: ChildProcess; runDir?: boolean; managers: DockerManager[] } = { managers: [] };
try {
  const loadBefore = machineInfo();
  const socket = join(dir, 'docker.sock');
  made.dockerd = await startUntil(['dockerd', `--host=unix://${socket}`, `--data-root=${join(dir, 'root')}`, `--exec-root=${join(dir, 'exec')}`, `--pidfile=${join(dir, 'docker.pid')}`, '--iptables=false', '--bridge=none'], 'stderr', /API listen on/);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'key.pub')));
  made.runDir = (await mkdir('/run/sshd', { recursive: true, mode: 0o755 })) !== undefined;
  const port = await freePort();
  await writeFile(join(dir, 'sshd_config'), [`ListenAddress 127.0.0.1:${port}`, `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PidFile none', 'AllowUsers root', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', `SetEnv DOCKER_HOST=unix://${socket}`, ''].join('\n'));
  made.sshd = await startUntil(['/usr/sbin/sshd', '-D', '-e', '-f', join(dir, 'sshd_config')], 'stderr', /Server listening on/);
  const agentSocket = join(dir, 'agent.sock');
  made.agent = await startUntil(['ssh-agent', '-D', '-a', agentSocket], 'stdout', /SSH_AUTH_SOCK=/);
  await run('ssh-add', ['-q', join(dir, 'key')], { SSH_AUTH_SOCK: agentSocket });
  const hostKey = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_key.pub')])).split(' ')[1]!;

  const unix = new DockerManager({ docker: await engineOptions(`unix://${socket}`) });
  const sshReused = new DockerManager({ docker: await engineOptions(`ssh://root@127.0.0.1:${port}`, { sshAuthSock: agentSocket, sshHostKey: hostKey }) });
  made.managers.push(unix, sshReused);
  const perRequest = new Docker({ protocol: 'ssh', host: '127.0.0.1', port, username: 'root', sshOptions: { agent: agentSocket } });
  const paths: Record<string, () => Promise<unknown>> = { unix: () => unix.version(), 'ssh-reused': () => sshReused.version(), 'ssh-per-req': () => perRequest.version() };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  // warm-up; the first request of ssh-reused opens its ssh connection (handshake, agent signature, sshd's session)
  const first: Record<string, number> = {};
  for (const [name, f] of Object.entries(paths)) {
    const t0 = performance.now();
    await f();
    first[name] = +(performance.now() - t0).toFixed(1);
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of Object.entries(paths)) {
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await f();
        samples[name]!.push(performance.now() - t0);
      }
    }
  }
  const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  const base = median(samples.unix!);
  const rows = Object.entries(samples).map(([name, xs]) => ({ path: name, median_ms: +median(xs).toFixed(2), p90_ms: +quantile([...xs].sort((a, b) => a - b), 0.9).toFixed(2), ratio_to_unix: +(median(xs) / base).toFixed(1), n: xs.length }));
  const machine = { ...loadBefore, load_after: roundLoad() };
  if (args.json) process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), machine, first_request_ms: first, rows }, null, 2)}\n`);
  else {
    console.log(`docker version, ${rounds} rounds x ${requests} requests per path, interleaved; ${machine.cpu_model}, ${machine.cores} cores, load ${machine.load_before.map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`first request (ms): ${Object.entries(first).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    for (const r of rows) console.log(`${r.path.padEnd(12)} median ${r.median_ms.toFixed(2).padStart(7)} ms  p90 ${r.p90_ms.toFixed(2).padStart(7)} ms  ${r.ratio_to_unix.toFixed(1)}x unix`);
  }
} finally {
  for (const m of made.managers) await m.close();
  await stop(made.sshd);
  await stop(made.agent);
  await stop(made.dockerd);
  if (made.runDir) await rm('/run/sshd', { recursive: true, force: true });
  // a stopped dockerd leaves its netns mount under the exec root
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(dir));
  for (const m of mounts.sort().reverse()) await run('umount', ['-l', m]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
