// The shared-memory root: a folder on tmpfs (/dev/shm/physical-ai-gateway by default, or a tmpfs volume that the
// launcher mounts into framework containers at the same path) that holds
//
//   realm                 a random id naming this memory domain; peers that read the same realm share memory
//   <client>/             one folder per client, mode 0700, created and removed by the client (shm-arena.ts)
//   <client>/lease.json   mode 0600: the owner's pid, pid namespace, boot id and process start time, the lease
//                         length, and the key a request must carry to use the folder's slots
//   <client>/<n>.slot     mode 0600: slot files (shm-descriptor.ts describes their header)
//
// and the janitor's rule for a folder whose owner is gone: removed when its lease was not renewed for longer than
// its lease length, or at once when the owner ran in the janitor's own pid namespace and that process is gone.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, unlinkSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_SHM_DIR = '/dev/shm/physical-ai-gateway';
/** How long a lease lasts without renewal; the owner renews it three times per length. */
export const DEFAULT_LEASE_MS = 5_000;
export const LEASE_FILE = 'lease.json';
export const REALM_FILE = 'realm';

export interface Lease {
  pid: number;
  /** `/proc/self/ns/pid` of the owner ("pid:[4026531836]"): pids compare only inside one namespace. */
  pidns: string;
  boot: string;
  /** The owner's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  start: string;
  lease_ms: number;
  key: string;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Start time of a process in ticks since boot, or '' when it does not exist (here). */
export function processStart(pid: number): string {
  const stat = readText(`/proc/${pid}/stat`);
  const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return after[19] ?? ''; // field 22 overall; fields after the command start at 3
}

/** This process's identity as a lease records it. */
export function selfIdentity(): Pick<Lease, 'pid' | 'pidns' | 'boot' | 'start'> {
  let pidns = '';
  try {
    pidns = readlinkSync('/proc/self/ns/pid');
  } catch {
    // not Linux: leases then expire by time only
  }
  return { pid: process.pid, pidns, boot: readText('/proc/sys/kernel/random/boot_id'), start: processStart(process.pid) };
}

/**
 * Creates the root if needed (mode 1777, like /tmp: each client owns only its folder) and returns its realm,
 * creating the realm file atomically (link(2) of a complete temp file: exactly one creator wins).
 */
export function openRealm(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o1777 });
    if ((statSync(dir).mode & 0o7777) !== 0o1777) chmodSync(dir, 0o1777);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err; // someone else's root: use it as it is
  }
  const path = join(dir, REALM_FILE);
  const existing = readText(path);
  if (existing) return existing;
  const tmp = join(dir, `.realm-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    writeSync(fd, randomBytes(16).toString('hex'));
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readText(path);
}

/** Reads a client's lease, or undefined when it is missing or unreadable. */
export function readLease(clientDir: string): Lease | undefined {
  try {
    const lease = JSON.parse(readFileSync(join(clientDir, LEASE_FILE), 'utf8')) as Lease;
    return typeof lease.key === 'string' && typeof lease.pid === 'number' ? lease : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the owner of `lease` is known to be gone (it ran in our pid namespace and its process is not there). */
function ownerGone(lease: Lease, self: ReturnType<typeof selfIdentity>): boolean {
  if (!self.pidns || lease.pidns !== self.pidns || lease.boot !== self.boot) return false;
  return processStart(lease.pid) !== lease.start;
}

export interface SweepResult {
  removed: string[];
  kept: number;
}

/**
 * Removes client folders whose owner is gone: lease not renewed for its length (any host namespace), or the
 * owner's process gone (same pid namespace). A folder without a readable lease counts from its own mtime, so a
 * client caught between mkdir and writing its lease is left alone for one lease length.
 */
export function sweepRoot(dir: string, { now = Date.now(), leaseMs = DEFAULT_LEASE_MS }: { now?: number; leaseMs?: number } = {}): SweepResult {
  const self = selfIdentity();
  const removed: string[] = [];
  let kept = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { removed, kept };
  }
  for (const name of names) {
    if (name === REALM_FILE || name.startsWith('.')) continue;
    const clientDir = join(dir, name);
    let mtimeMs: number;
    let leaseLength = leaseMs;
    try {
      const st = statSync(clientDir);
      if (!st.isDirectory()) continue;
      mtimeMs = st.mtimeMs;
      const lease = readLease(clientDir);
      if (lease) {
        leaseLength = Math.max(1, lease.lease_ms);
        mtimeMs = statSync(join(clientDir, LEASE_FILE)).mtimeMs;
        if (ownerGone(lease, self)) mtimeMs = -Infinity;
      }
    } catch {
      continue; // vanished or not ours to read: another janitor or its owner is at it
    }
    if (now - mtimeMs > leaseLength) {
      try {
        rmSync(clientDir, { recursive: true, force: true });
        removed.push(name);
      } catch {
        kept++;
      }
    } else kept++;
  }
  return { removed, kept };
}
