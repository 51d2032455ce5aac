// OpenSSH known_hosts files, read as ssh reads them, and the decision on a host key an ssh server presents: the
// format of sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": one key a line, `[marker] patterns keytype base64 [comment]`,
// where patterns are a comma list of host names or `[host]:port` (a port other than 22), with `*`/`?` wildcards and
// `!` negation, or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` (ssh-keyscan -H, HashKnownHosts);
// markers `@revoked` (the key is refused wherever it appears) and `@cert-authority` (not supported here).
// No npm library parses this format (ssh2 does not), so this is the small parser, tested against ssh-keygen -F.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written (comma list, or one hashed name). */
  hosts: string;
  keyType: string;
  /** The raw public key blob (what the server presents). */
  key: Buffer;
}

/** Parses a known_hosts text; lines that are not entries (comments, blanks, malformed) are skipped, as ssh does. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else return; // an unknown marker: ssh skips the line
      fields.shift();
    }
    const [hosts, keyType, blob] = fields;
    if (!hosts || !keyType || !blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return;
    const key = Buffer.from(blob, 'base64');
    // the blob starts with its own type name: a line whose type field disagrees is not a key ssh would use
    if (blobType(key) !== keyType) return;
    entries.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  });
  return entries;
}

/** The key type named at the start of a raw public key blob (uint32 length + name), or undefined. */
export function blobType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const n = key.readUInt32BE(0);
  return n > 0 && n < 64 && key.length >= 4 + n ? key.subarray(4, 4 + n).toString('latin1') : undefined;
}

/** The name ssh looks up for a host: `host` on port 22, `[host]:port` on any other (lower case). */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** Whether an entry's host field names `name` (as knownHostName makes it). */
export function entryMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  // a negated pattern that matches excludes the host whatever else matches (match_hostname in OpenSSH)
  let matched = false;
  for (const raw of hosts.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (!wildcard(pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/**
 * `*` (any run) and `?` (one character) glob match of the whole name. Walks both strings once, going back only to
 * the last `*` (O(pattern x name)): a pattern turned into a regular expression backtracks exponentially on a line
 * such as `a*a*a*a*a*a*a*a*a*a*a*a*z`, and one such line in a known_hosts file hung the gateway's event loop.
 */
function wildcard(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1; // the last `*` seen in the pattern, and where in the name its run now ends
  let starEnd = 0;
  while (n < name.length) {
    if (pattern[p] === '*') {
      star = p++;
      starEnd = n;
    } else if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++starEnd;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** `SHA256:<base64 without padding>` of a raw public key, as OpenSSH prints fingerprints. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Reads known_hosts files; a missing file counts as empty (as ssh treats it), an unreadable one is an error. */
export async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const all = await Promise.all(
    files.map(async (file) => {
      try {
        return parseKnownHosts(await readFile(file, 'utf8'), file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new Error(`cannot read the known_hosts file ${file}: ${(err as Error).message}`);
      }
    }),
  );
  return all.flat();
}

export type HostKeyVerdict =
  | { ok: true; by: KnownHostEntry }
  | { ok: false; why: 'revoked' | 'changed' | 'unknown' | 'cert-authority-only'; entries: KnownHostEntry[] };

/**
 * ssh's decision for the key a host presents, given the known_hosts entries of its name: a key marked @revoked is refused;
 * a plain entry for that name with that key verifies; other plain entries for that name mean the key changed;
 * none means the host is unknown (or listed only under @cert-authority, which is not supported here).
 */
export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const forName = entries.filter((e) => entryMatches(e.hosts, name));
  const revoked = forName.filter((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked.length > 0) return { ok: false, why: 'revoked', entries: revoked };
  const matching = forName.filter((e) => e.marker !== 'revoked');
  const plain = matching.filter((e) => e.marker === undefined);
  const same = plain.find((e) => e.key.equals(key));
  if (same) return { ok: true, by: same };
  if (plain.length > 0) return { ok: false, why: 'changed', entries: plain };
  if (matching.length > 0) return { ok: false, why: 'cert-authority-only', entries: matching };
  return { ok: false, why: 'unknown', entries: [] };
}

/** Key types (as known_hosts names them) listed for a host: its ssh session should offer these first. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  return [...new Set(entries.filter((e) => e.marker === undefined && entryMatches(e.hosts, name)).map((e) => e.keyType))];
}
