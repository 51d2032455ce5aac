// The package as a user's program sees it: each entry imported by package name through the `exports` map of
// package.json, from the compiled dist/ (built first when stale), in a plain `node` child without tsx. Checks what
// each entry exports, which npm packages loading it pulls in, that the client and worker entries talk to each other,
// and that TypeScript finds every entry's types.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ensureBuilt, ROOT } from './support/build.js';
import { packagesLoadedBy } from './support/loaded-packages.js';

const run = promisify(execFile);
const OTEL_SDK = /^@opentelemetry\/(sdk-|exporter-|otlp-|resources|context-async-hooks)/;

interface EntryCase {
  entry: string;
  exports: string[];
  notExported: string[];
  /** Packages that loading the entry must pull in (shows the check sees loading at all). */
  loads: Array<string | RegExp>;
  mustNotLoad: Array<string | RegExp>;
}

const ENTRIES: EntryCase[] = [
  {
    entry: 'physical-ai-gateway',
    exports: ['WorkerClient', 'WorkerPool', 'Tensor', 'encodeMessage', 'decodeReply', 'GatewayError', 'PROTOCOL_VERSION'],
    notExported: ['WorkerServer', 'buildGateway', 'DockerManager', 'startBridge', 'startTelemetry'],
    loads: ['zeromq', '@msgpack/msgpack'],
    mustNotLoad: ['dockerode', 'rclnodejs', 'hono', '@hono/node-server', OTEL_SDK],
  },
  {
    entry: 'physical-ai-gateway/worker',
    exports: ['WorkerServer', 'Tensor', 'demoPolicy', 'GatewayError', 'PROTOCOL_VERSION'],
    notExported: ['WorkerClient', 'buildGateway', 'DockerManager'],
    loads: ['zeromq'],
    mustNotLoad: ['dockerode', 'rclnodejs', 'hono', '@hono/node-server', OTEL_SDK],
  },
  {
    entry: 'physical-ai-gateway/gateway',
    exports: ['buildGateway', 'loadConfig', 'parseConfig', 'ConfigError', 'createMetrics', 'startTelemetry'],
    notExported: ['DockerManager', 'DockerLauncher', 'startBridge'],
    loads: ['hono', '@opentelemetry/sdk-trace-base'],
    mustNotLoad: ['dockerode', 'rclnodejs'],
  },
  {
    entry: 'physical-ai-gateway/docker',
    exports: ['DockerManager', 'DockerLauncher', 'builtinFrameworkSpecs', 'validateFrameworkSpec'],
    notExported: ['buildGateway'],
    loads: ['dockerode'],
    mustNotLoad: ['rclnodejs', 'hono', OTEL_SDK],
  },
  {
    entry: 'physical-ai-gateway/bridge',
    exports: ['startBridge', 'ZmqPolicyClient', 'HttpPolicyClient', 'RclnodejsAdapter', 'presetConfig', 'validateBridgeConfig'],
    notExported: ['buildGateway', 'DockerManager'],
    loads: ['zeromq'],
    // rclnodejs only when RclnodejsAdapter starts, so the bridge's library loads without ROS 2 installed.
    mustNotLoad: ['rclnodejs', 'dockerode', 'hono', OTEL_SDK],
  },
];

const matches = (pkg: string, p: string | RegExp) => (typeof p === 'string' ? pkg === p : p.test(pkg));

test('each package entry loads by name through the exports map, with its own exports and only the packages it needs', async (t) => {
  await ensureBuilt();
  for (const c of ENTRIES) {
    await t.test(c.entry, async () => {
      const { packages, stdout } = await packagesLoadedBy(`console.log(JSON.stringify(Object.keys(await import(${JSON.stringify(c.entry)}))));`, { cwd: ROOT });
      const names = JSON.parse(stdout) as string[];
      for (const name of c.exports) assert.ok(names.includes(name), `${c.entry} exports ${name}`);
      for (const name of c.notExported) assert.ok(!names.includes(name), `${c.entry} does not export ${name}`);
      for (const p of c.loads) assert.ok([...packages].some((pkg) => matches(pkg, p)), `${c.entry} loads ${String(p)}; loaded: ${[...packages].join(' ')}`);
      assert.deepEqual([...packages].filter((pkg) => c.mustNotLoad.some((p) => matches(pkg, p))), [], `${c.entry} must not load these`);
    });
  }
});

test("a program using the client entry and the worker entry round-trips an L observation", async () => {
  await ensureBuilt();
  const program = `
    import { WorkerClient, Tensor } from 'physical-ai-gateway';
    import { WorkerServer, demoPolicy } from 'physical-ai-gateway/worker';
    const server = new WorkerServer({ endpoint: 'tcp://127.0.0.1:*', framework: 'demo' });
    server.register('inference', (data) => demoPolicy(data));
    await server.start();
    const client = new WorkerClient({ endpoint: server.endpoint });
    const image = Tensor.of(new Uint8Array(224 * 224 * 3), [224, 224, 3]);
    const reply = await client.inference({ images: { a: image, b: image, c: image }, state: Tensor.of(new Float32Array(14)) });
    const action = reply.result.action;
    console.log(JSON.stringify({ tensor: action instanceof Tensor, shape: action.shape, first: action.data[0] }));
    await client.close();
    await server.close();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program], { cwd: ROOT, timeout: 60_000 });
  const out = JSON.parse(stdout) as { tensor: boolean; shape: number[]; first: number };
  assert.equal(out.tensor, true);
  assert.deepEqual(out.shape, [16, 14]);
  assert.ok(Math.abs(out.first - 0.01) < 1e-7);
});

test("TypeScript resolves every entry's types from dist/ through the exports map's types conditions", async (t) => {
  await ensureBuilt();
  const dir = join(ROOT, '.tmp', `types-${process.pid}`);
  await mkdir(dir, { recursive: true });
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'consumer.ts'),
    `import { WorkerClient, Tensor, type Observation } from 'physical-ai-gateway';
import { WorkerServer, type Handler } from 'physical-ai-gateway/worker';
import { buildGateway, parseConfig, type Gateway } from 'physical-ai-gateway/gateway';
import { DockerLauncher } from 'physical-ai-gateway/docker';
import { startBridge, type PolicyClient } from 'physical-ai-gateway/bridge';
const observation: Observation = { state: Tensor.of(new Float32Array(14)) };
const handler: Handler = () => ({ ok: true });
export const uses = [WorkerClient, WorkerServer, buildGateway, parseConfig, DockerLauncher, startBridge, observation, handler];
export type Uses = [Gateway, PolicyClient];
// A name the entry does not export must fail, or this check would pass on 'any'.
// @ts-expect-error WorkerServer is in ./worker, not in the client entry
export { WorkerServer as NotInClient } from 'physical-ai-gateway';
`,
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2023', '--types', 'node', join(dir, 'consumer.ts')];
  await run(process.execPath, [tsc, ...args], { cwd: ROOT, timeout: 120_000 }).catch((err: { stdout: string }) => assert.fail(`tsc:\n${err.stdout}`));
});
