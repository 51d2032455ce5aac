// A private single-node swarm for a test (its own dockerd, `swarm init --advertise-addr 127.0.0.1`, its own gateway
// bridge and ports; see private-engine.ts) with everything the test registers undone in reverse order, and on a
// failure the explanation: Swarm's task history and the gateway's pool/swarm/router log lines.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { Gateway } from '../../src/build-gateway.js';
import { DockerManager } from '../../src/docker/docker-manager.js';
import type { ServiceLauncher } from '../../src/docker/service-launcher.js';
import { sleep } from '../../src/lib/abort.js';
import { createLogger, type Logger } from '../../src/lib/log.js';
import { portIsFree } from '../../src/lib/ports.js';
import { ensureDockerAndImage, freePort } from './docker.js';
import { initSwarm, loadImage, run, startEngine, stopEngine, type PrivateEngine } from './private-engine.js';

export interface TestSwarm {
  engine: PrivateEngine;
  manager: DockerManager;
  /** The gateway's logger for this test (lines kept to explain a failure). */
  log: Logger;
  /** A gateway to close at the end (before the engine goes), with the services of its launcher to remove. */
  track(gateway: Gateway, launcher: ServiceLauncher, frameworks: readonly string[]): void;
  /** Call as the test's last line: without it the end explains the failure. */
  passed(): void;
}

/** Starts the private swarm; its clean-up (and a failure's explanation) runs in `t.after`. */
export async function startSwarm(t: TestContext): Promise<TestSwarm> {
  ensureDockerAndImage();
  const logLines: string[] = [];
  const log = createLogger({ level: 'info', write: (line) => void logLines.push(line) });
  const tracked: Array<{ gateway: Gateway; launcher: ServiceLauncher; frameworks: readonly string[] }> = [];
  const made: { engine?: PrivateEngine; manager?: DockerManager } = {};
  let passed = false;
  t.after(async () => {
    if (!passed && made.engine) await explain(t, made.engine, logLines);
    for (const { gateway, launcher, frameworks } of tracked.reverse()) {
      await gateway.close(500);
      for (const f of frameworks) await launcher.remove(f).catch(() => undefined);
    }
    await made.manager?.close();
    if (made.engine) {
      const left = await stopEngine(made.engine);
      assert.deepEqual(left, [], 'the private engine and its folder are gone');
      const links = await run('ip', ['-br', 'link']);
      const bridge = made.engine.bridge ?? 'pag-gw-';
      assert.ok(!links.includes(bridge), `no gateway bridge of the test's swarm (${bridge}) is left:\n${links}`);
    }
  });
  const engine = (made.engine = await startEngine());
  await loadImage(engine);
  await initSwarm(engine, { listenPort: await freePort(), dataPort: randomInt(40_000, 49_000) });
  const manager = (made.manager = new DockerManager({ docker: { socketPath: engine.socket } }));
  return {
    engine,
    manager,
    log,
    track: (gateway, launcher, frameworks) => void tracked.push({ gateway, launcher, frameworks }),
    passed: () => void (passed = true),
  };
}

async function explain(t: TestContext, engine: PrivateEngine, logLines: readonly string[]): Promise<void> {
  const history = await engine.cli('service', 'ps', '--no-trunc', '--format', '{{.Name}} {{.CurrentState}} {{.DesiredState}} {{.Error}}', ...(await engine.cli('service', 'ls', '-q').catch(() => '')).split('\n').filter(Boolean)).catch((err: unknown) => String(err));
  t.diagnostic('swarm task history:');
  for (const line of history.split('\n')) t.diagnostic(line);
  t.diagnostic('gateway log (last pool/swarm/router lines):');
  for (const line of logLines.filter((l) => /pool\.|swarm\.|router\.|retry/.test(l)).slice(-80)) t.diagnostic(line.trimEnd());
}

/** `count` consecutive free ports on 127.0.0.1 (task slots bind base, base+1, ...). */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = randomInt(20_000, 30_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => portIsFree('127.0.0.1', base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free port range');
}

export interface EngineState {
  state: string;
  replicas: number;
}

/**
 * The engine's view of a service (as `status()` reads it), read again until `done` holds or 60 s pass: Swarm
 * announces a task's health only in its own task state, which the launcher reads on request.
 */
export async function engineState(launcher: ServiceLauncher, framework: string, done: (s: EngineState) => boolean): Promise<EngineState> {
  const read = async () => (await launcher.status()).find((s) => s.framework === framework) as EngineState;
  let status = await read();
  for (const giveUpAt = Date.now() + 60_000; !done(status) && Date.now() < giveUpAt; status = await read()) await sleep(250);
  return status;
}
