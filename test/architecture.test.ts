// Keeps the dependency direction of DESIGN.md true: lib → protocol, telemetry → zmq → router → gateway,
// docker beside the router (reached only through the launcher interface the router owns; it never speaks ZeroMQ:
// readiness is the pool's), the ROS bridge on the protocol and client only, and one composition root.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

/** Which areas each area may import from (its own area is always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  lib: [],
  protocol: ['lib'],
  telemetry: ['lib', 'protocol', 'zmq'],
  // Same-host shared memory (tmpfs files): the client's arena and the root's janitor; no sockets.
  shm: ['lib', 'protocol'],
  zmq: ['lib', 'protocol', 'telemetry', 'shm'],
  config: ['lib', 'protocol', 'zmq'],
  router: ['lib', 'protocol', 'telemetry', 'zmq', 'config', 'backends'],
  // Clients of peer servers that are not ZeroMQ (openpi's websocket): the pool core, the peer-connection base and the pool types, no socket of zmq's.
  backends: ['lib', 'protocol', 'zmq/endpoint-pool', 'zmq/peer-connection', 'zmq/types'],
  docker: ['lib', 'protocol', 'telemetry', 'config', 'router/framework-launcher'],
  worker: ['lib', 'protocol', 'telemetry', 'zmq'],
  gateway: ['lib', 'protocol', 'telemetry', 'zmq', 'router', 'config', 'jobs', 'shm'],
  // Training jobs: records, queue and polling; they reach workers through the JobTransport interface (the router, wired in build-gateway.ts).
  jobs: ['lib'],
  // The recorder sees exchanges through the pipeline's observer interface (structural); it never reaches a socket.
  recording: ['lib', 'protocol', 'telemetry'],
  'ros-bridge': ['lib', 'protocol', 'telemetry', 'zmq', 'shm'],
};
/** Entry points (the CLI, the package entries in index.ts and entry/) and the one composition root may import anything in src. */
const ENTRY_AREAS = new Set(['cli', 'index', 'entry', 'build-gateway']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const areaOf = (path: string) => relative(SRC, path).split('/')[0]!.replace(/\.ts$/, '');

/** Relative import specifiers of a file: static `from '...'`, `import '...'` and `import('...')`. */
const relativeImports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from|import\(?)\s*'(\.{1,2}\/[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!));

test('imports between src/ areas point only the allowed way', () => {
  const violations: string[] = [];
  let checked = 0;
  for (const file of files(SRC)) {
    const area = areaOf(file);
    if (ENTRY_AREAS.has(area)) continue;
    const allowed = ALLOWED[area];
    assert.ok(allowed, `src/${area} has no entry in the architecture table; add one`);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), match[1]!);
      const targetArea = areaOf(target);
      checked++;
      if (targetArea === area) continue;
      const targetPath = relative(SRC, target).replace(/\.js$/, '');
      if (allowed.includes(targetArea) || allowed.includes(targetPath)) continue;
      violations.push(`${relative(SRC, file)} imports ${targetPath}`);
    }
  }
  assert.ok(checked > 50, 'the scan found the imports');
  assert.deepEqual(violations, []);
});

test('only src/zmq touches zeromq', () => {
  const users = files(SRC)
    .filter((file) => /from 'zeromq'|import\('zeromq'\)/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(SRC, file));
  assert.ok(users.length > 0, 'the scan finds the zeromq imports');
  assert.deepEqual(users.filter((file) => !file.startsWith('zmq/')), []);
});

// The pool core and the peer-connection base are shared with the openpi backend, which speaks websocket: loading it
// must not load zeromq (a native addon), through any chain of imports.
test('the openpi backend does not load zeromq, directly or through the modules it imports', () => {
  const seen = new Set<string>();
  const loadsZeromq: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (/from 'zeromq'|import\('zeromq'\)/.test(readFileSync(file, 'utf8'))) loadsZeromq.push(relative(SRC, file));
    for (const target of relativeImports(file)) visit(target.replace(/\.js$/, '.ts'));
  };
  visit(join(SRC, 'backends', 'openpi-pool.ts'));
  assert.ok(seen.has(join(SRC, 'zmq', 'endpoint-pool.ts')), 'the walk reaches the pool core');
  assert.deepEqual(loadsZeromq, []);
});

// Product code ships without test/ (fakes, harnesses), and the benchmark measures with its own helpers (bench/lib/), so
// neither may reach into test/: a test fake must not become part of what is shipped or what is measured.
for (const dir of ['src', 'bench']) {
  test(`${dir}/ imports nothing from test/`, () => {
    const all = files(join(ROOT, dir));
    assert.ok(all.length > 5, `the scan finds ${dir}/ files`);
    const violations = all.flatMap((file) =>
      relativeImports(file)
        .filter((target) => relative(ROOT, target).split('/')[0] === 'test')
        .map((target) => `${relative(ROOT, file)} imports ${relative(ROOT, target)}`),
    );
    assert.deepEqual(violations, []);
  });
}
