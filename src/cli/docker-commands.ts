// `up`, `down`, `ps`, `logs`: the docker manager's commands (src/docker/commands.ts) declared on the CLI. The docker
// modules (and the config loader) are imported only when one of these runs, so `serve` never loads dockerode
// and `--help` loads neither.
import { homedir } from 'node:os';
import { Option } from '@commander-js/extra-typings';
import { createLogger } from '../lib/log.js';
import type { DockerManager } from '../docker/docker-manager.js';
import { configOption, jsonOption, positiveInt, UsageError, type CliIo, type DeclaredCommand } from './commands.js';
import { startProgress } from './progress.js';

interface ContextArgs {
  imageTag?: string | undefined;
  cpu?: boolean | undefined;
  jetson?: boolean | undefined;
  config?: string | undefined;
}

/**
 * The manager and the framework specs: the built-in ones (lerobot, groot, pi0), and, with --config (or
 * PAIG_CONFIG), the gateway config's frameworks that have a `launcher` (they win over built-ins of the same name).
 */
async function context(io: CliIo, args: ContextArgs) {
  const [{ loadConfig }, { DockerManager }, { builtinFrameworkSpecs }, { WorkerPool }, { specsFromConfig }] = await Promise.all([
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
  const builtins = builtinFrameworkSpecs({ homeDir: homedir(), imageTag: args.imageTag, gpus: args.cpu ? false : 'all', jetson: args.jetson });
  let configured: ReturnType<typeof specsFromConfig> = [];
  if (args.config) {
    const config = await loadConfig({ file: args.config });
    configured = specsFromConfig(Object.values(config.frameworks), { homeDir: homedir(), ...(args.imageTag ? { imageTag: args.imageTag } : {}) });
  }
  const names = new Set(configured.map((s) => s.name));
  const specs = [...configured, ...builtins.filter((b) => !names.has(b.name))];
  return { manager, specs, out: io.out, waitReady, log };
}

const imageTagOption = () => new Option('--image-tag <tag>', 'image tag of the built-in frameworks (e.g. local for images built here)').env('PAIG_IMAGE_TAG');

const up: DeclaredCommand = {
  name: 'up',
  summary: "start a framework's container and wait until its worker is ready (lerobot, groot, pi0, or one of --config)",
  define(cmd, io) {
    cmd
      .argument('<framework>', 'framework to start')
      .addOption(configOption())
      .addOption(imageTagOption())
      .option('--cpu', 'no GPU for the container', false)
      .option('--jetson', 'the Jetson (L4T) image variant', false)
      .option('--pull', "pull the framework's image first (the engine never pulls on its own)", false)
      .action(async (framework, o) => {
        const { up: upCommand } = await import('../docker/commands.js');
        // A status line while the container starts and its worker loads (minutes for a real policy).
        const progress = await startProgress(io, { label: `up ${framework}:` });
        try {
          const ctx = await context({ ...io, out: (line) => progress.log(line) }, o);
          const spec = ctx.specs.find((s) => s.name === framework);
          if (o.pull && spec) await pullWithProgress(ctx.manager, spec.image, io);
          const waitReady = ctx.waitReady;
          progress.update(0, { status: 'starting the container' });
          await upCommand(
            {
              ...ctx,
              waitReady: (endpoints, signal) => {
                progress.update(0, { status: `waiting for the worker at ${endpoints.join(', ')} to be ready` });
                return waitReady(endpoints, signal);
              },
            },
            framework,
          );
        } finally {
          progress.stop();
        }
      });
  },
};

const down: DeclaredCommand = {
  name: 'down',
  summary: "stop and remove a framework's container (or all of ours)",
  define(cmd, io) {
    cmd
      .argument('[framework]', 'framework to stop (default: every container of ours)')
      .addOption(configOption())
      .action(async (framework, o) => {
        const { down: downCommand } = await import('../docker/commands.js');
        await downCommand(await context(io, o), framework);
      });
  },
};

const ps: DeclaredCommand = {
  name: 'ps',
  summary: 'list the containers this gateway manages, and its Swarm services and their tasks',
  define(cmd, io) {
    cmd
      .addOption(configOption())
      .addOption(jsonOption())
      .action(async (o) => {
        const ctx = await context(io, o);
        const { ps: psTables, psView } = await import('../docker/commands.js');
        if (o.json) io.out(JSON.stringify(await psView(ctx), null, 2));
        else await psTables(ctx);
      });
  },
};

const logs: DeclaredCommand = {
  name: 'logs',
  summary: "print a framework container's logs (its current run)",
  define(cmd, io) {
    cmd
      .argument('<framework>', 'framework whose container to read')
      .addOption(new Option('-n, --tail <lines>', 'last lines to print').default(100).argParser(positiveInt))
      .option('-f, --follow', 'keep printing new lines until Ctrl-C', false)
      .addOption(configOption())
      .action(async (framework, o) => {
        const { logs: logsCommand } = await import('../docker/commands.js');
        await logsCommand(await context(io, o), framework, { tail: o.tail, follow: o.follow });
      });
  },
};

/** Pulls an image with one bar over the bytes of all its layers (their sizes become known as they start). */
async function pullWithProgress(manager: DockerManager, reference: string, io: CliIo): Promise<void> {
  const progress = await startProgress(io, { label: `pull ${reference}`, total: 0, unit: 'bytes' });
  const layers = new Map<string, { current: number; total: number }>();
  try {
    progress.log(`pulling ${reference} ...`);
    await manager.pullImage(reference, {
      onProgress: (e) => {
        if (e.type !== 'layer') return;
        const layer = layers.get(e.id) ?? { current: 0, total: 0 };
        if (e.status === 'Downloading' && e.totalBytes) Object.assign(layer, { current: e.currentBytes ?? 0, total: e.totalBytes });
        else if (e.status === 'Download complete' || e.status === 'Pull complete' || e.status === 'Already exists') layer.current = layer.total;
        layers.set(e.id, layer);
        let current = 0;
        let total = 0;
        for (const l of layers.values()) {
          current += l.current;
          total += l.total;
        }
        progress.update(current, { total, status: `${layers.size} layers` });
      },
    });
    progress.log(`pulled ${reference}`);
  } finally {
    progress.stop();
  }
}

const build: DeclaredCommand = {
  name: 'build',
  summary: 'build a worker image from a folder (offline by default), with a progress bar over its steps',
  define(cmd, io) {
    cmd
      .argument('<context-dir>', 'build context folder')
      .requiredOption('-t, --tag <image>', 'image reference to tag it with (e.g. physical-ai-gateway/lerobot:local)')
      .option('-f, --file <Dockerfile>', 'Dockerfile, relative to the context', 'Dockerfile')
      .addOption(new Option('--build-arg <KEY=VALUE...>', 'build argument (repeatable)').default([] as string[]))
      .addOption(new Option('--network <mode>', 'network during RUN steps: none (offline) or host').choices(['none', 'host'] as const).default('none' as const))
      .action(async (contextDir, o) => {
        const buildArgs: Record<string, string> = {};
        for (const arg of o.buildArg) {
          const eq = arg.indexOf('=');
          if (eq <= 0) throw new UsageError(`--build-arg must be KEY=VALUE (got '${arg}')`);
          buildArgs[arg.slice(0, eq)] = arg.slice(eq + 1);
        }
        const { DockerManager } = await import('../docker/docker-manager.js');
        const manager = new DockerManager({ log: createLogger({ level: 'warn' }) });
        const progress = await startProgress(io, { label: `build ${o.tag}`, total: 1 });
        try {
          const { imageId } = await manager.buildImage({
            contextDir,
            dockerfile: o.file,
            tag: o.tag,
            buildArgs,
            networkMode: o.network,
            onProgress: (e) => {
              if (e.type === 'step') progress.update(e.step - 1, { total: e.total, status: e.line.slice(0, 60) });
            },
          });
          progress.stop();
          io.out(`built ${o.tag} (${imageId})`);
        } finally {
          progress.stop();
        }
      });
  },
};

export const dockerCommands: readonly DeclaredCommand[] = [up, down, ps, logs, build];
