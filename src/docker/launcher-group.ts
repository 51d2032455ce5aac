// Several launchers behind the router's one FrameworkLauncher: one per engine and mode (single containers on the
// local engine, Swarm services on a manager, containers on a remote engine). Each framework belongs to exactly one;
// calls go to it, events of all of them reach every listener.
import { GatewayError } from '../lib/errors.js';
import type { Release } from '../lib/idle-holds.js';
import type { FrameworkControl, FrameworkLauncher, Launch } from '../router/framework-launcher.js';

/** A launcher the group can hold: it starts and controls frameworks and announces events. */
export type MemberLauncher = FrameworkLauncher & FrameworkControl;

export class LauncherGroup implements FrameworkLauncher, FrameworkControl {
  readonly #members: readonly MemberLauncher[];
  readonly #byFramework = new Map<string, MemberLauncher>();

  constructor(members: readonly MemberLauncher[]) {
    this.#members = members;
    for (const m of members) {
      for (const f of m.frameworks()) {
        if (this.#byFramework.has(f)) throw new GatewayError('bad_request', `framework "${f}" is specified twice`);
        this.#byFramework.set(f, m);
      }
    }
  }

  /** The launcher that runs `framework`. */
  launcherOf(framework: string): MemberLauncher {
    const m = this.#byFramework.get(framework);
    if (!m) throw new GatewayError('unknown_framework', `unknown framework "${framework}"; configured: ${this.frameworks().join(', ') || 'none'}`);
    return m;
  }

  frameworks(): string[] {
    return [...this.#byFramework.keys()];
  }

  ensureRunning(framework: string, signal: AbortSignal): Promise<Launch> {
    return this.launcherOf(framework).ensureRunning(framework, signal);
  }

  hold(framework: string): Release {
    return this.#byFramework.get(framework)?.hold?.(framework) ?? (() => undefined);
  }

  onEvent(listener: (event: { type: string; framework?: string }) => void): () => void {
    const offs = this.#members.map((m) => m.onEvent(listener));
    return () => offs.forEach((off) => off());
  }

  stop(framework: string, signal?: AbortSignal): Promise<void> {
    return this.launcherOf(framework).stop(framework, signal);
  }

  async status(): Promise<ReadonlyArray<{ framework: string; state: string; container?: string; image?: string }>> {
    return (await Promise.all(this.#members.map((m) => m.status()))).flat();
  }

  async containers(): Promise<readonly object[]> {
    return (await Promise.all(this.#members.map((m) => m.containers()))).flat();
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#members.map((m) => m.close()));
  }
}
