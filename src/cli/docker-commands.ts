// `up`, `down`, `ps`, `logs`: the docker manager's commands (src/docker/commands.ts) wired to argv. The docker
// modules (and the config loader) are imported only when one of these runs, so `serve` never loads dockerode
// and `--help` loads neither.
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../lib/log.js';
import type { CliCommand, CliIo } from './commands.js';

/**
 * The manager and the framework specs: the built-in ones (lerobot, groot, pi0), and, with --config (or
 * PAIG_CONFIG), the gateway config's frameworks that have a `launcher` (they win over built-ins of the same name).
 */
async function context(io: CliIo, args: { 'image-tag'?: string; cpu?: boolean; jetson?: boolean; config?: string }) {
  const [{ ENV_VARS, loadConfig }, { DockerManager }, { builtinFrameworkSpecs }, { WorkerPool }, { specsFromConfig }] = await Promise.all([
    import('../config.js'),
    import('../docker/docker-manager.js'),
    import('../docker/framework-spec.js'),
    import('../zmq/worker-pool.js'),
    import('../docker/docker-support.js'),
  ]);
  const log = createLogger({ level: 'warn' });
  const manager = new DockerManager({ log });
  // Ready = a worker answers the protocol's health request with ready=true, over the pool's own sockets.
  const waitReady = (endpoints: string[], signal: AbortSignal) => WorkerPool.waitUntilReady(endpoints, { signal, log });
  const builtins = builtinFrameworkSpecs({ homeDir: homedir(), imageTag: args['image-tag'], gpus: args.cpu ? false : 'all', jetson: args.jetson });
  const file = args.config ?? io.env[ENV_VARS.config];
  let configured: ReturnType<typeof specsFromConfig> = [];
  if (file) {
    const config = await loadConfig({ file });
    configured = specsFromConfig(Object.values(config.frameworks), { homeDir: homedir(), ...(args['image-tag'] ? { imageTag: args['image-tag'] } : {}) });
  }
  const names = new Set(configured.map((s) => s.name));
  const specs = [...configured, ...builtins.filter((b) => !names.has(b.name))];
  return { manager, specs, out: io.out, waitReady, log };
}

const common = {
  config: { type: 'string' as const, short: 'c' },
  'image-tag': { type: 'string' as const },
  cpu: { type: 'boolean' as const, default: false },
  jetson: { type: 'boolean' as const, default: false },
};

export const dockerCommands: CliCommand[] = [
  {
    name: 'up',
    usage: '<framework> [--config gateway.yaml] [--image-tag local] [--cpu] [--jetson]',
    summary: "start a framework's container and wait until its worker is ready (lerobot, groot, pi0)",
    async run(args, io) {
      const { values, positionals } = parseArgs({ args, options: common, allowPositionals: true });
      if (positionals.length !== 1) {
        io.err('usage: physical-ai-gateway up <framework> [--config gateway.yaml] [--image-tag local] [--cpu] [--jetson]');
        return 2;
      }
      const { up } = await import('../docker/commands.js');
      await up(await context(io, values), positionals[0]!);
      return 0;
    },
  },
  {
    name: 'down',
    usage: '[<framework>] [--config gateway.yaml]',
    summary: "stop and remove a framework's container (or all of ours)",
    async run(args, io) {
      const { values, positionals } = parseArgs({ args, options: common, allowPositionals: true });
      const { down } = await import('../docker/commands.js');
      await down(await context(io, values), positionals[0]);
      return 0;
    },
  },
  {
    name: 'ps',
    usage: '[--config gateway.yaml]',
    summary: 'list the containers this gateway manages',
    async run(args, io) {
      const { values } = parseArgs({ args, options: common });
      const { ps } = await import('../docker/commands.js');
      await ps(await context(io, values));
      return 0;
    },
  },
  {
    name: 'logs',
    usage: '<framework> [--tail 100] [-f] [--config gateway.yaml]',
    summary: "print a framework container's logs",
    async run(args, io) {
      const { values, positionals } = parseArgs({ args, options: { ...common, tail: { type: 'string', default: '100' }, follow: { type: 'boolean', short: 'f', default: false } }, allowPositionals: true });
      if (positionals.length !== 1) {
        io.err('usage: physical-ai-gateway logs <framework> [--tail 100] [-f]');
        return 2;
      }
      const { logs } = await import('../docker/commands.js');
      await logs(await context(io, values), positionals[0]!, { tail: Number(values.tail) || 100, follow: values.follow });
      return 0;
    },
  },
];
