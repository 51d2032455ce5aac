// `npm start`, the README's start command, run exactly as written, with ports from the documented environment
// variables (PAIG_HTTP_PORT=0 and a `*` ZMQ port: the kernel picks free ones, the banner says which). It says where
// it listens and answers the README's curl request; then the signals a service manager or a terminal sends stop
// the whole tree cleanly:
//  - SIGTERM to the pid of `npm start` itself (what kill, systemd's main-pid kill and `docker stop` send): npm
//    forwards it to the gateway, which the start script runs with `exec` (no shell in between to swallow it);
//  - SIGINT to the whole process group (Ctrl-C in a terminal): the gateway gets it from the terminal and again
//    from npm, and treats the two as one request to stop.
// Either way: npm exits 0, no process of the tree is left (the gateway and its embedded worker, whose pid the banner
// prints), and nothing accepts connections on the HTTP or the ZMQ port any more.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { SAMPLE_CURL } from '../../src/cli/sample.js';
import { ensureBuilt, ROOT } from '../support/build.js';
import { collectOutput } from '../../bench/lib/child-output.js';

const run = promisify(execFile);

/** Resolves with the connect error's code (ECONNREFUSED when nothing listens); fails if the connect succeeds. */
async function connectError(port: number): Promise<string | undefined> {
  const socket = connect({ host: '127.0.0.1', port });
  const [outcome] = (await Promise.race([once(socket, 'connect').then(() => ['connected']), once(socket, 'error')])) as [string | NodeJS.ErrnoException];
  socket.destroy();
  assert.notEqual(outcome, 'connected', `something still listens on 127.0.0.1:${port}`);
  return (outcome as NodeJS.ErrnoException).code;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

const cases = [
  { how: 'SIGTERM to the pid of npm start', send: (pid: number) => process.kill(pid, 'SIGTERM'), line: /^SIGTERM: draining/m },
  { how: 'SIGINT to its process group (Ctrl-C)', send: (pid: number) => process.kill(-pid, 'SIGINT'), line: /^SIGINT: draining/m },
];

for (const c of cases) {
  test(`npm start serves the README's request; ${c.how} stops the gateway and its worker, frees both ports, exits 0`, async (t) => {
    await ensureBuilt();
    // `detached`: its own process group, as a terminal gives a foreground job, so the group can be signalled (and
    // killed after a failure) without touching the test runner.
    const child = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, PAIG_HTTP_PORT: '0', PAIG_ZMQ_ENDPOINT: 'tcp://127.0.0.1:*', PAIG_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // 'close' comes after 'exit' and after the last of its output.
    const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    t.after(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is gone, as it should be
      }
    });
    const output = collectOutput(child);
    await output.waitFor(/^try: /m, 60_000, 'npm start did not come up');
    const { stdout } = output;
    const httpPort = Number(/^ {2}HTTP {2}http:\/\/127\.0\.0\.1:(\d+)/m.exec(stdout)?.[1]);
    const zmqPort = Number(/^ {2}ZMQ {3}tcp:\/\/127\.0\.0\.1:(\d+)/m.exec(stdout)?.[1]);
    const workerPid = Number(/^ {2}embedded worker for 'demo' .*, pid (\d+)$/m.exec(stdout)?.[1]);
    assert.ok(httpPort > 0 && zmqPort > 0 && workerPid > 0, `ports and worker pid in the banner:\n${stdout}`);
    assert.match(stdout, /frameworks: demo \(default\): ready/);
    assert.ok(isAlive(workerPid), 'the embedded worker runs');

    // The README's one-line request, with this run's port; it is also the banner's try-line.
    const curl = SAMPLE_CURL.replace('127.0.0.1:8080', `127.0.0.1:${httpPort}`);
    assert.ok(stdout.includes(curl), 'the printed try-line is the README request');
    const { stdout: answer } = await run('bash', ['-c', curl], { timeout: 30_000 });
    const reply = JSON.parse(answer) as { status: string; result: { action: number[][]; model: string } };
    assert.equal(reply.status, 'success');
    assert.equal(reply.result.action.length, 16);
    assert.equal(reply.result.action[0]!.length, 6);
    assert.equal(reply.result.model, 'demo-v1');

    c.send(child.pid!);
    const [code, signal] = await closed;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `npm start's exit; stderr:\n${output.stderr}`);
    assert.match(output.stdout, c.line);
    assert.match(output.stdout, /^stopped$/m, 'the gateway drained and closed before exiting');

    assert.equal(isAlive(workerPid), false, 'the embedded worker is gone');
    assert.throws(() => process.kill(-child.pid!, 0), { code: 'ESRCH' }, 'no process of the npm start group is left');
    assert.equal(await connectError(httpPort), 'ECONNREFUSED');
    assert.equal(await connectError(zmqPort), 'ECONNREFUSED');
  });
}
