// The CLI's client commands against a real gateway: `infer` over each front door and codec, `frameworks`; and the
// installed command (bin/ on the compiled dist/): `--version` and `--help` without loading any npm package, and a
// clear message instead of a stack trace when dist/ has not been built.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { ensureBuilt, ROOT } from '../support/build.js';
import { startTestGateway } from '../support/gateway.js';
import { packagesLoadedBy } from '../support/loaded-packages.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000 });

test('infer prints the demo chunk and timings over ZMQ (each codec) and HTTP; frameworks prints the status table', async (t) => {
  const gateway = await startTestGateway(t);
  const dir = await mkdtemp(join(tmpdir(), 'paig-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'obs.json'), JSON.stringify({ state: [1, 2, 3], instruction: 'wave' }));

  for (const codec of ['binary', 'msgpack', 'json']) {
    const { stdout } = await cli('infer', '--endpoint', gateway.zmqEndpoint, '--codec', codec, '--count', '3');
    assert.match(stdout, new RegExp(`via ZMQ ${codec}`));
    assert.match(stdout, codec === 'json' ? /action: nested list \[16, 14\]/ : /action: float32 \[16, 14\]/);
    assert.match(stdout, /\[0\] 0\.0100 0\.1100/); // state[j] = j/10 in the sample, plus 0.01
    assert.match(stdout, /round trip: /);
  }
  for (const codec of ['binary', 'json']) {
    const { stdout } = await cli('infer', '--http', '--url', gateway.httpUrl, '--codec', codec, '--sample', 'S');
    assert.match(stdout, codec === 'json' ? /via HTTP JSON/ : /via HTTP msgpack/);
    assert.match(stdout, /\[3\] 0\.0400 0\.1400/);
  }
  const fromFile = await cli('infer', '--endpoint', gateway.zmqEndpoint, '--file', join(dir, 'obs.json'));
  assert.match(fromFile.stdout, /\[0\] 1\.0100 2\.0100 3\.0100/);
  assert.match(fromFile.stdout, /instruction: "wave"/);

  const { stdout } = await cli('frameworks', '--url', gateway.httpUrl);
  assert.match(stdout, /FRAMEWORK\s+STATE/);
  assert.match(stdout, /demo \*\s+ready/);

  await assert.rejects(cli('infer', '--endpoint', gateway.zmqEndpoint, '--codec', 'xml'), (err: { code: number; stderr: string }) => err.code !== 0 && /--codec must be/.test(err.stderr));

  // Over HTTP without --framework: the gateway's default framework, whatever its name (it used to be 'demo' always).
  const other = await startTestGateway(t, { frameworks: { lerobot: { embedded: true } } });
  const viaDefault = await cli('infer', '--http', '--url', other.httpUrl, '--sample', 'S');
  assert.match(viaDefault.stdout, /frameworks\/lerobot\/inference/);
  assert.match(viaDefault.stdout, /\[3\] 0\.0400 0\.1400/);
});

test('the installed command answers --version (package.json\'s) and --help from dist/ without loading any npm package', async () => {
  await ensureBuilt();
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const bin = join(ROOT, 'bin', 'physical-ai-gateway.js');
  for (const [flag, expected] of [['--version', new RegExp(`^${version.replaceAll('.', '\\.')}$`, 'm')], ['--help', /^ {2}serve {7}start the gateway/m]] as const) {
    // The bin exits the process when the command is done, so the loader's record is all that remains to read.
    const { packages, stdout } = await packagesLoadedBy(`process.argv.splice(1, Infinity, ${JSON.stringify(bin)}, ${JSON.stringify(flag)}); await import(${JSON.stringify(bin)});`, { cwd: ROOT });
    assert.match(stdout, expected);
    assert.deepEqual([...packages], [], `${flag} loads no npm package`);
  }
});

test('without dist/ the command says to run npm run build, and exits 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'paig-nodist-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'bin'));
  await copyFile(join(ROOT, 'bin', 'physical-ai-gateway.js'), join(dir, 'bin', 'physical-ai-gateway.js'));
  await writeFile(join(dir, 'package.json'), '{"type": "module"}');
  await assert.rejects(run(process.execPath, [join(dir, 'bin', 'physical-ai-gateway.js'), '--version']), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /has not been built/);
    assert.match(err.stderr, /Run `npm run build`/);
    assert.doesNotMatch(err.stderr, /^\s+at /m, 'no stack trace');
    return true;
  });
});

test('every command listed by --help answers its own --help with a usage line and exit 0', async () => {
  const { stdout } = await cli('--help');
  const names = [...stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]!);
  assert.ok(names.includes('serve') && names.includes('frameworks') && names.includes('ps'), stdout);
  for (const name of names) {
    const help = await cli(name, '--help');
    assert.match(help.stdout, /usage: physical-ai-gateway/i, `${name} --help`);
  }
});

test('error paths end with one line and an exit code, not a stack trace: no gateway, a missing file', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  await assert.rejects(cli('infer', '--http', '--url', `http://127.0.0.1:${port}`, '--framework', 'demo'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /^error: the gateway did not answer .*is it running\?/);
    assert.doesNotMatch(err.stderr, /\n\s+at /, 'no stack trace');
    return true;
  });
  await assert.rejects(cli('infer', '--file', '/nonexistent/obs.json'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /^error: ENOENT/);
    assert.doesNotMatch(err.stderr, /\n\s+at /);
    return true;
  });
});
