// The SDK as pip installs it (.venv, from a wheel built by scripts/ensure-python-env.sh): the package and its commands
// land in the venv, it ships its type hints (py.typed) so a user's type checker sees them, and the dependency ranges
// it declares admit the Debian packages the offline worker image is built from.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { PYTHON } from '../support/python-worker.js';
import { REPO_ROOT, venvPython } from './venv.js';

const run = promisify(execFile);

test('the installed package, its commands and py.typed are in the venv, not taken from the source folder', async () => {
  const python = await venvPython();
  const { stdout } = await run(python, ['-P', '-c', 'import json, physical_ai_worker as p, pathlib; d = pathlib.Path(p.__file__).parent; print(json.dumps([str(d), (d / "py.typed").exists(), p.__version__]))'], { cwd: '/' });
  const [dir, typed, version] = JSON.parse(stdout) as [string, boolean, string];
  assert.ok(dir.startsWith(join(REPO_ROOT, '.venv', 'lib')) && dir.endsWith(join('site-packages', 'physical_ai_worker')), dir);
  assert.equal(typed, true);
  assert.equal(version, '0.1.0');
  for (const command of ['physical-ai-worker', 'physical-ai-worker-healthcheck']) assert.ok(existsSync(join(dirname(python), command)), command);
});

test("a user's type checker reads the SDK's types from the install (py.typed)", async (t) => {
  const python = await venvPython();
  const dir = mkdtempSync(join(tmpdir(), 'paig-typed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'user_worker.py'),
    ['from physical_ai_worker import ZMQServer', 'server = ZMQServer("tcp://127.0.0.1:*")', 'reveal_type(server.bind())', 'server.set_ready("yes")', ''].join('\n'),
  );
  // mypy exits 1 for the deliberate error; what matters is that it knew the types, which it only does with py.typed.
  const out = await run(join(dirname(python), 'mypy'), ['--no-incremental', '--strict', 'user_worker.py'], { cwd: dir, env: { ...process.env, PYTHONPATH: '' } }).catch((err: { stdout: string }) => err);
  assert.match(out.stdout, /Revealed type is "(builtins\.)?str"/);
  assert.match(out.stdout, /Argument 1 to "set_ready" of "ZMQServer" has incompatible type "str"; expected "bool"/);
  assert.doesNotMatch(out.stdout, /missing library stubs or py\.typed marker|import-untyped|import-not-found/);
});

test("the declared dependency ranges admit Debian's python3-zmq, python3-msgpack and python3-numpy", async () => {
  const { stdout: debian } = await run(PYTHON, ['-c', 'import json, importlib.metadata as m; print(json.dumps({d: m.version(d) for d in ("pyzmq", "msgpack", "numpy")}))']);
  // The install's own metadata (Requires-Dist), checked with pip's packaging: what pip would accept.
  const check = [
    'import json, sys, importlib.metadata as m',
    'from pip._vendor.packaging.requirements import Requirement',
    'debian = json.loads(sys.argv[1])',
    'reqs = [Requirement(r) for r in m.requires("physical-ai-worker") if "extra" not in r]',
    'print(json.dumps({r.name: [str(r.specifier), r.specifier.contains(debian[r.name])] for r in reqs}))',
  ].join('\n');
  const { stdout } = await run(await venvPython(), ['-P', '-c', check, debian.trim()], { cwd: '/' });
  const verdict = JSON.parse(stdout) as Record<string, [string, boolean]>;
  assert.deepEqual(Object.keys(verdict).sort(), ['msgpack', 'numpy', 'pyzmq']);
  for (const [name, [range, ok]] of Object.entries(verdict)) assert.ok(ok, `${name} ${range} rejects Debian's ${debian.trim()}`);
});
