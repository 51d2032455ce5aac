// The known_hosts parser and host key decision, on files made by the real OpenSSH tools: keys from ssh-keygen, a
// plain file hashed by `ssh-keygen -H` (as HashKnownHosts and ssh-keyscan -H write it), and which lines match a
// name compared with what `ssh-keygen -F` finds in the same file. Temp files only (never ~/.ssh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkHostKey, entryMatches, knownHostName, knownKeyTypes, parseKnownHosts, readKnownHosts, sshFingerprint } from '../../src/docker/known-hosts.js';
import { hostKeyRefusal } from '../../src/docker/ssh-engine.js';

/** Runs a command; resolves with its exit code and stdout (ssh-keygen -F exits 1 when nothing matches). */
function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (error, out, err) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, out, err });
    });
  });
}

async function keyPair(dir: string, name: string, type: 'ed25519' | 'ecdsa'): Promise<{ line: string; blob: Buffer; fingerprint: string }> {
  const file = join(dir, name);
  const made = await sh('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', file]);
  assert.equal(made.code, 0, made.err);
  const [keyType, base64] = (await readFile(`${file}.pub`, 'utf8')).trim().split(' ');
  const printed = await sh('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]);
  return { line: `${keyType} ${base64}`, blob: Buffer.from(base64!, 'base64'), fingerprint: printed.out.split(' ')[1]! };
}

/** The line numbers `ssh-keygen -F name -f file` reports. */
async function sshKeygenFinds(file: string, name: string): Promise<number[]> {
  const { out } = await sh('ssh-keygen', ['-F', name, '-f', file]);
  return [...out.matchAll(/^# Host \S+ found: line (\d+)/gm)].map((m) => Number(m[1]));
}

test('known_hosts: the lines that name a host are the ones ssh-keygen -F finds, in a plain file and after ssh-keygen -H', async (t) => {
  const dir = await mkdtemp('/tmp/pag-kh-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [a, b, c] = [await keyPair(dir, 'a', 'ed25519'), await keyPair(dir, 'b', 'ecdsa'), await keyPair(dir, 'c', 'ed25519')];
  const plain = join(dir, 'known_hosts');
  await writeFile(
    plain,
    [
      '# a comment',
      '',
      `gpu-box-1,10.0.0.5 ${a.line}`,
      `[gpu-box-2]:2222 ${b.line} a comment after the key`,
      `GPU-Box-3 ${c.line}`,
      `*.lab.example,!bad.lab.example ${c.line}`,
      `@revoked * ${c.line}`,
      `@cert-authority *.ca.example ${a.line}`,
      `gpu-box-?.farm ${b.line}`,
      `[127.0.0.1]:2022 ${a.line}`,
      `not-a-key-line ssh-ed25519 !!!`,
      `@unknown-marker gpu-box-1 ${b.line}`,
    ].join('\n') + '\n',
  );
  const hashed = join(dir, 'known_hosts.hashed');
  // ssh-keygen -H refuses a file with a line it finds invalid: its copy goes without the two bad-on-purpose lines
  await writeFile(hashed, (await readFile(plain, 'utf8')).split('\n').filter((l) => !l.startsWith('not-a-key') && !l.startsWith('@unknown')).join('\n'));
  const hashing = await sh('ssh-keygen', ['-H', '-f', hashed]);
  assert.equal(hashing.code, 0, hashing.err);
  const hashedText = await readFile(hashed, 'utf8');
  assert.match(hashedText, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /m, 'ssh-keygen -H wrote hashed names');
  assert.ok(!hashedText.includes('gpu-box-1'), 'no plain name is left where ssh-keygen hashed it');

  const names = ['gpu-box-1', '10.0.0.5', '[gpu-box-2]:2222', 'gpu-box-2', 'gpu-box-3', 'x.lab.example', 'bad.lab.example', 'y.ca.example', 'gpu-box-7.farm', 'gpu-box-77.farm', '[127.0.0.1]:2022', '127.0.0.1', 'unknown'];
  for (const file of [plain, hashed]) {
    const entries = parseKnownHosts(await readFile(file, 'utf8'), file);
    for (const name of names) {
      const ours = entries.filter((e) => entryMatches(e.hosts, name)).map((e) => e.line);
      assert.deepEqual(ours, await sshKeygenFinds(file, name), `${file}: lines for ${name}`);
    }
  }
  const hashedEntries = parseKnownHosts(hashedText, hashed);
  for (const name of ['gpu-box-1', '10.0.0.5', '[gpu-box-2]:2222', 'gpu-box-3', '[127.0.0.1]:2022']) {
    assert.equal(hashedEntries.filter((e) => e.hosts.startsWith('|1|') && entryMatches(e.hosts, name)).length, 1, `one hashed line names ${name}`);
  }
  // the plain file's entries: comments, blanks, a malformed line and an unknown marker are skipped
  const entries = parseKnownHosts(await readFile(plain, 'utf8'), plain);
  assert.deepEqual(entries.map((e) => e.line), [3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(entries.map((e) => e.marker ?? ''), ['', '', '', '', 'revoked', 'cert-authority', '', '']);
  assert.equal(sshFingerprint(entries[0]!.key), a.fingerprint, "the key blob's fingerprint is the one ssh-keygen -l prints");
});

test('known_hosts: the decision on a presented key (verified, changed, unknown, revoked, only a CA), and its one-line refusals', async (t) => {
  const dir = await mkdtemp('/tmp/pag-kh-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [a, b, c] = [await keyPair(dir, 'a', 'ed25519'), await keyPair(dir, 'b', 'ecdsa'), await keyPair(dir, 'c', 'ed25519')];
  const file = join(dir, 'known_hosts');
  await writeFile(file, [`gpu-box-1 ${a.line}`, `[gpu-box-1]:2222 ${b.line}`, `@revoked gpu-box-9 ${c.line}`, `gpu-box-9 ${c.line}`, `@cert-authority *.ca.example ${a.line}`].join('\n'));
  const hashed = join(dir, 'hashed');
  await copyFile(file, hashed);
  assert.equal((await sh('ssh-keygen', ['-H', '-f', hashed])).code, 0);
  for (const f of [file, hashed]) {
    const known = await readKnownHosts([f, join(dir, 'missing')]);
    assert.equal(checkHostKey(known, 'gpu-box-1', 22, a.blob).ok, true, 'the listed key on port 22');
    assert.equal(checkHostKey(known, 'GPU-BOX-1', 22, a.blob).ok, true, 'host names compare without case');
    assert.equal(checkHostKey(known, 'gpu-box-1', 2222, b.blob).ok, true, 'the [host]:port entry on its port');
    assert.deepEqual(pick(checkHostKey(known, 'gpu-box-1', 22, b.blob)), { why: 'changed', lines: [1] });
    assert.deepEqual(pick(checkHostKey(known, 'gpu-box-1', 2222, a.blob)), { why: 'changed', lines: [2] }, 'the port-22 entry does not vouch for port 2222');
    assert.deepEqual(pick(checkHostKey(known, 'gpu-box-1', 2200, a.blob)), { why: 'unknown', lines: [] });
    assert.deepEqual(pick(checkHostKey(known, 'gpu-box-9', 22, c.blob)), { why: 'revoked', lines: [3] }, '@revoked wins over a line listing the same key');
    assert.deepEqual(pick(checkHostKey(known, 'x.ca.example', 22, b.blob)), { why: 'cert-authority-only', lines: [5] });
    assert.deepEqual(knownKeyTypes(known, 'gpu-box-1', 2222), ['ecdsa-sha2-nistp256']);
  }
  assert.equal(knownHostName('GPU-box', 22), 'gpu-box');
  assert.equal(knownHostName('::1', 2222), '[::1]:2222');

  const known = await readKnownHosts([file]);
  const engine = (port: number) => ({ host: 'gpu-box-1', port, hostKeyCheck: { knownHosts: [file] } });
  assert.equal(hostKeyRefusal(engine(22), known, a.blob), undefined);
  const unknown = hostKeyRefusal(engine(2200), known, a.blob)!;
  assert.equal(unknown, `gpu-box-1:2200 is not in known_hosts (${file}); it presented the ssh-ed25519 key ${a.fingerprint}: if that is the host's key (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on it), add it with 'ssh-keyscan -H -p 2200 gpu-box-1 >> ${file}' or pin sshHostKey: "${a.fingerprint}"`);
  const changed = hostKeyRefusal(engine(22), known, c.blob)!;
  assert.match(changed, new RegExp(`^the host key of gpu-box-1:22 changed: it presented ssh-ed25519 ${esc(c.fingerprint)}, but known_hosts lists ssh-ed25519 ${esc(a.fingerprint)} \\(${esc(file)}:1\\);`));
  assert.match(changed, /ssh-keygen -R 'gpu-box-1' -f /);
  assert.match(hostKeyRefusal({ host: 'gpu-box-9', port: 22, hostKeyCheck: { knownHosts: [file] } }, known, c.blob)!, new RegExp(`is marked @revoked in ${esc(file)}:3; refused$`));
  assert.match(hostKeyRefusal({ host: 'x.ca.example', port: 22, hostKeyCheck: { knownHosts: [file] } }, known, c.blob)!, /only under @cert-authority .*host certificates are not supported/);
  assert.equal(hostKeyRefusal({ host: 'x', port: 22, hostKeyCheck: 'accept-any' }, [], c.blob), undefined);
  assert.equal(hostKeyRefusal({ host: 'x', port: 22, hostKeyCheck: { pinned: c.fingerprint } }, [], c.blob), undefined);
  assert.match(hostKeyRefusal({ host: 'x', port: 22, hostKeyCheck: { pinned: a.fingerprint } }, [], c.blob)!, /not the pinned sshHostKey/);

  // a file that exists but cannot be read is an error naming it (a missing one is empty, as for ssh)
  const locked = join(dir, 'locked');
  await writeFile(locked, '');
  await chmod(locked, 0o000);
  if (process.getuid?.() !== 0) await assert.rejects(readKnownHosts([locked]), new RegExp(`cannot read the known_hosts file ${esc(locked)}`));
  await assert.rejects(readKnownHosts([dir]), new RegExp(`cannot read the known_hosts file ${esc(dir)}: EISDIR`));
});

function pick(v: ReturnType<typeof checkHostKey>): { why: string; lines: number[] } | true {
  return v.ok ? true : { why: v.why, lines: v.entries.map((e) => e.line) };
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

test('known_hosts: wildcard patterns match as ssh-keygen -F matches them, and a line of many `*` is answered at once', async (t) => {
  const dir = await mkdtemp('/tmp/pag-kh-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = await keyPair(dir, 'a', 'ed25519');
  const file = join(dir, 'known_hosts');
  const patterns = ['a*b*c', '*a?', '**', '?*?', '*.*', 'x*x*x.example', '*-?-*', 'a*a*a*a*a*a*a*a*z'];
  await writeFile(file, patterns.map((p) => `${p} ${a.line}`).join('\n') + '\n');
  const entries = parseKnownHosts(await readFile(file, 'utf8'), file);
  const names = ['abc', 'axbyc', 'ab', 'bab', 'b', 'x', 'xy', 'a.b', 'xx.example', 'xxx.example', 'xaxbx.example', 'gpu-1-a', 'gpu-12-a', 'aaaaaaaaz', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com'];
  for (const name of names) {
    assert.deepEqual(entries.filter((e) => entryMatches(e.hosts, name)).map((e) => e.line), await sshKeygenFinds(file, name), `lines for ${name}`);
  }
  // As a regular expression this pattern backtracked without end on a name it does not match: before the
  // linear matcher this test never finished (the gateway's event loop hung on such a line).
  const many = `${'a*'.repeat(14)}z,!${'b*'.repeat(14)}y`;
  assert.equal(entryMatches(many, `${'a'.repeat(60)}.example.com`), false);
  assert.equal(entryMatches(many, `${'a'.repeat(30)}z`), true);
  assert.equal(entryMatches(many, `${'ab'.repeat(15)}y`), false);
});
