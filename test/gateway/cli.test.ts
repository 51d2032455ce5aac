// The CLI's client commands against a real gateway: `infer` over each front door and codec, `frameworks`; and the
// installed command (bin/ on the compiled dist/): `--version` and `--help` loading no npm package but commander, and a
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
/** Runs the CLI (environment: PAIG_* cleared, then `env`) and resolves with its exit code and output, whatever the code. */
const cliResult = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000, env: { ...withoutPaig(process.env), ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
const withoutPaig = (env: NodeJS.ProcessEnv) => Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('PAIG_')));

/** A loopback port nothing listens on. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

/** Runs `tasks` at most `limit` at a time (each CLI run is a node process; 2 loaded cores). */
async function pooled<T>(tasks: Array<() => Promise<T>>, limit = 3): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

test('infer prints the demo chunk and timings over ZMQ (each codec) and HTTP; frameworks prints the status table', async (t) => {
  const gateway = await startTestGateway(t);
  const dir = await mkdtemp(join(tmpdir(), 'paig-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'obs.json'), JSON.stringify({ state: [1, 2, 3], instruction: 'wave' }));

  for (const codec of ['binary', 'msgpack', 'json']) {
    const { stdout } = await cli('infer', '--gateway', gateway.zmqEndpoint, '--codec', codec, '--count', '3');
    assert.match(stdout, new RegExp(`via ZMQ ${codec}`));
    assert.match(stdout, codec === 'json' ? /action: nested list \[16, 14\]/ : /action: float32 \[16, 14\]/);
    assert.match(stdout, /\[0\] 0\.0100 0\.1100/); // state[j] = j/10 in the sample, plus 0.01
    assert.match(stdout, /round trip: /);
  }
  for (const codec of ['binary', 'json']) {
    const { stdout } = await cli('infer', '--gateway', gateway.httpUrl, '--codec', codec, '--sample', 'S');
    assert.match(stdout, codec === 'json' ? /via HTTP JSON/ : /via HTTP msgpack/);
    assert.match(stdout, /\[3\] 0\.0400 0\.1400/);
  }
  const fromFile = await cli('infer', '-g', gateway.zmqEndpoint, '--file', join(dir, 'obs.json'));
  assert.match(fromFile.stdout, /\[0\] 1\.0100 2\.0100 3\.0100/);
  assert.match(fromFile.stdout, /instruction: "wave"/);

  const { stdout } = await cli('frameworks', '--gateway', gateway.httpUrl);
  assert.match(stdout, /FRAMEWORK\s+STATE/);
  assert.match(stdout, /demo \*\s+ready/);

  // Scripts read --json; the gateway address also comes from PAIG_GATEWAY.
  const listed = await cliResult(['frameworks', '--json'], { PAIG_GATEWAY: gateway.httpUrl });
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal((JSON.parse(listed.stdout) as { frameworks: Array<{ name: string }> }).frameworks[0]!.name, 'demo');
  const inferred = await cliResult(['infer', '--json', '--sample', 'S', '--count', '2'], { PAIG_GATEWAY: gateway.zmqEndpoint });
  assert.equal(inferred.code, 0, inferred.stderr);
  const doc = JSON.parse(inferred.stdout) as { ok: boolean; action: { dtype: string; shape: number[]; values: number[][] }; roundTripMs: { count: number } };
  assert.equal(doc.ok, true);
  assert.deepEqual(doc.action.shape, [16, 14]);
  assert.equal(doc.action.values[0]![1], Math.fround(0.11));
  assert.equal(doc.roundTripMs.count, 2);

  // Over HTTP without --framework: the gateway's default framework, whatever its name (it used to be 'demo' always).
  const other = await startTestGateway(t, { frameworks: { lerobot: { embedded: true } } });
  const viaDefault = await cli('infer', '--gateway', other.httpUrl, '--sample', 'S');
  assert.match(viaDefault.stdout, /frameworks\/lerobot\/inference/);
  assert.match(viaDefault.stdout, /\[3\] 0\.0400 0\.1400/);
});

test('the installed command answers --version (package.json\'s) and --help from dist/ loading no npm package but commander', async () => {
  await ensureBuilt();
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const bin = join(ROOT, 'bin', 'physical-ai-gateway.js');
  for (const [flag, expected] of [['--version', new RegExp(`^${version.replaceAll('.', '\\.')}$`, 'm')], ['--help', /^ {2}serve {2,}start the gateway/m]] as const) {
    // The bin exits the process when the command is done, so the loader's record is all that remains to read.
    const { packages, stdout } = await packagesLoadedBy(`process.argv.splice(1, Infinity, ${JSON.stringify(bin)}, ${JSON.stringify(flag)}); await import(${JSON.stringify(bin)});`, { cwd: ROOT });
    assert.match(stdout, expected);
    // commander (no dependencies of its own) through its typings' re-export, nothing heavy. (The loader records the
    // ESM entry; commander itself is require()d from it after the record.)
    assert.ok(packages.has('@commander-js/extra-typings'), `${flag} runs on commander`);
    assert.deepEqual([...packages].filter((p) => p !== '@commander-js/extra-typings' && p !== 'commander'), [], `${flag} loads no other npm package`);
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

test('every command (and the subcommands of record and leases) answers --help with its usage and exit 0', async () => {
  const { stdout } = await cli('--help');
  const commandsOf = (help: string) => [...(help.split(/^Commands:$/m)[1] ?? '').matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  const names = commandsOf(stdout);
  for (const expected of ['serve', 'infer', 'frameworks', 'leases', 'up', 'down', 'ps', 'logs', 'build', 'replay', 'record', 'keys', 'bridge']) assert.ok(names.includes(expected), `${expected} in ${stdout}`);
  const helps = await pooled(names.map((name) => () => cli(name, '--help').then((r) => [name, r.stdout] as const)));
  for (const [name, help] of helps) {
    assert.match(help, new RegExp(`^Usage: physical-ai-gateway ${name}`, 'm'), `${name} --help`);
    assert.match(help, /^ {2}-h, --help/m, `${name} --help lists --help`);
  }
  assert.match(helps.find(([n]) => n === 'serve')![1], /--default-framework <name>/);
  for (const parent of ['record', 'leases']) {
    const subs = commandsOf(helps.find(([n]) => n === parent)![1]);
    assert.ok(subs.length >= 2, `${parent} lists its subcommands`);
    for (const sub of subs) assert.match((await cli(parent, sub, '--help')).stdout, new RegExp(`^Usage: physical-ai-gateway ${parent} ${sub}`, 'm'));
  }
  assert.match((await cli('leases', 'revoke', '--help')).stdout, /-g, --gateway <address>[^]*--token <token>[^]*--json/);
  // The same concept has the same flag on every client command.
  for (const name of ['infer', 'frameworks', 'replay', 'bridge']) assert.match(helps.find(([n]) => n === name)![1], /-g, --gateway <address>.*\n?.*PAIG_GATEWAY|env: PAIG_GATEWAY/s, `${name} has --gateway`);
});

test('the CLI\'s address defaults are the config\'s', async () => {
  const { DEFAULT_HTTP_PORT, DEFAULT_ZMQ_ENDPOINT, DEFAULT_HTTP_HOST } = await import('../../src/config.js');
  const { DEFAULT_HTTP_GATEWAY, DEFAULT_ZMQ_GATEWAY } = await import('../../src/cli/commands.js');
  assert.equal(DEFAULT_ZMQ_GATEWAY, DEFAULT_ZMQ_ENDPOINT);
  assert.equal(DEFAULT_HTTP_GATEWAY, `http://${DEFAULT_HTTP_HOST}:${DEFAULT_HTTP_PORT}`);
});

test('error paths end with one line and a hint, exit 2 for a wrong command line and 1 for failed work, never a stack trace', async (t) => {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'paig-cli-err-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'bad.json'), '{"state": [1, 2');
  const nowhere = `http://127.0.0.1:${port}`;
  // [arguments, exit code, what stderr says]
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /Usage: physical-ai-gateway/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [['infer', '--count', 'abc'], 2, /--count <n>' argument 'abc' is invalid/],
    [['infer', '--count', '0'], 2, /must be a whole number >= 1/],
    [['infer', '--codec', 'xml'], 2, /Allowed choices are binary, msgpack, json/],
    [['infer', '--sample', 'XL'], 2, /must be S or L/],
    [['infer', '--gateway', 'ftp://x'], 2, /must start with tcp:\/\/, ipc:\/\//],
    [['infer', '--bogus'], 2, /unknown option '--bogus'/],
    [['infer', '--file', '/nonexistent/obs.json'], 2, /^error: ENOENT/],
    [['infer', '--file', join(dir, 'bad.json')], 2, /bad\.json is not valid JSON/],
    [['infer', '--gateway', nowhere, '--framework', 'demo'], 1, /^error: the gateway did not answer .*is it running\?/],
    [['infer', '--gateway', `tcp://127.0.0.1:${port}`, '--timeout-ms', '300', '--sample', 'S'], 1, /error \(timeout\)[^]*hint: is the gateway running/],
    [['frameworks', '--gateway', nowhere], 1, /the gateway did not answer/],
    [['frameworks', '--gateway', 'tcp://127.0.0.1:5550'], 2, /frameworks talks to the gateway's HTTP door/],
    [['up'], 2, /missing required argument 'framework'/],
    [['up', 'nosuch', '--cpu'], 1, /error \(unknown_framework\): unknown framework "nosuch"/],
    [['logs', 'lerobot', '--tail', 'many'], 2, /--tail <lines>' argument 'many' is invalid/],
    [['ps', '--all'], 2, /unknown option '--all'/],
    [['down', 'a', 'b'], 2, /too many arguments/],
    [['build', dir], 2, /required option '-t, --tag <image>' not specified/],
    [['build', dir, '--tag', 'x:y', '--build-arg', 'NOEQUALS'], 2, /--build-arg must be KEY=VALUE/],
    [['replay'], 2, /missing required argument 'file.mcap'/],
    [['replay', 'x.mcap', '--rate', 'fast'], 2, /must be like 1x, 0\.5x, 4x or max/],
    [['replay', 'x.mcap', '--tolerance', '-1'], 2, /must be a number >= 0/],
    [['replay', join(dir, 'missing.mcap')], 2, /^error: ENOENT/],
    [['record'], 2, /Usage: physical-ai-gateway record/],
    [['record', 'status', '--gateway', nowhere], 1, /the gateway did not answer/],
    [['record', 'info', join(dir, 'missing.mcap')], 2, /^error: ENOENT/],
    [['leases'], 2, /Usage: physical-ai-gateway leases/],
    [['leases', 'revoke'], 2, /missing required argument 'framework'/],
    [['leases', 'revoke', 'lerobot', '--gateway', 'tcp://127.0.0.1:5550'], 2, /leases talks to the gateway's HTTP door/],
    [['leases', 'revoke', 'lerobot', '--gateway', nowhere], 1, /^error: the gateway did not answer .*is it running\?/],
    [['leases', 'status', 'lerobot', '--timeout-ms', 'soon'], 2, /--timeout-ms <ms>' argument 'soon' is invalid/],
    [['leases', 'expire', 'lerobot'], 2, /unknown command 'expire'/],
    [['keys'], 2, /missing required argument 'name'/],
    [['keys', 'bad/name', '--dir', dir], 1, /letters, digits/],
    [['serve', '--config', join(dir, 'missing.yaml')], 2, /missing\.yaml/],
    [['bridge', '--preset', 'nosuch'], 2, /Allowed choices are/],
  ];
  const results = await pooled(cases.map(([args]) => () => cliResult(args)));
  cases.forEach(([args, code, pattern], i) => {
    const r = results[i]!;
    const what = `${args.join(' ')} → ${r.code}: ${r.stderr}`;
    assert.equal(r.code, code, what);
    assert.match(r.stderr, pattern, what);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${what}`);
    assert.ok(r.stderr.trim().split('\n').length <= 3 || args.length <= 1, `a short message: ${what}`);
  });
});
