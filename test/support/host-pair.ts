// Two "hosts" for the remote-engine tests: two network namespaces joined by a veth pair, A at `${net}.1` and B at
// `${net}.2` (a /24 of 10/8). Traffic between them stays inside the namespaces; remove() deletes both (the veth pair
// and whatever the test started in them goes with them) and reports anything of the test's that is left.
import { randomInt } from 'node:crypto';
import { run } from './private-engine.js';

export class HostPair {
  readonly nsA: string;
  readonly nsB: string;
  readonly ipA: string;
  readonly ipB: string;
  /** The namespaces made so far: remove() deletes these, also after a set-up that failed half-way. */
  private readonly made: string[] = [];

  /** `id`: unique to the test (in the namespace and veth names); `net`: the first three octets of the /24. */
  constructor(
    readonly id: string,
    net = `10.${randomInt(100, 199)}.${randomInt(0, 255)}`,
  ) {
    this.nsA = `pag-a-${id}`;
    this.nsB = `pag-b-${id}`;
    [this.ipA, this.ipB] = [`${net}.1`, `${net}.2`];
  }

  /** The command prefix that runs a command (an engine, sshd) in namespace `ns`. */
  static enter(ns: string): string[] {
    return ['nsenter', `--net=/run/netns/${ns}`];
  }

  /** Makes both namespaces (loopback up) and the veth pair between them, addressed and up. */
  async create(): Promise<void> {
    for (const ns of [this.nsA, this.nsB]) {
      await run('ip', ['netns', 'add', ns]);
      this.made.push(ns);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const [va, vb] = [`va${this.id}`, `vb${this.id}`];
    await run('ip', ['link', 'add', va, 'netns', this.nsA, 'type', 'veth', 'peer', 'name', vb, 'netns', this.nsB]);
    await run('ip', ['-n', this.nsA, 'addr', 'add', `${this.ipA}/24`, 'dev', va]);
    await run('ip', ['-n', this.nsB, 'addr', 'add', `${this.ipB}/24`, 'dev', vb]);
    await run('ip', ['-n', this.nsA, 'link', 'set', va, 'up']);
    await run('ip', ['-n', this.nsB, 'link', 'set', vb, 'up']);
  }

  /** Deletes the namespaces made; returns what is left of the test's (namespaces, links): empty when all is gone. */
  async remove(): Promise<string[]> {
    for (const ns of this.made.splice(0)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    const left: string[] = [];
    const namespaces = await run('ip', ['netns', 'list']);
    if (namespaces.includes(this.id)) left.push(`namespaces: ${namespaces}`);
    const links = await run('ip', ['-br', 'link']);
    if (links.includes(this.id)) left.push(`links: ${links}`);
    return left;
  }
}
