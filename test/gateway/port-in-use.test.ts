// A port already in use is said at once, before any worker process is started (it used to come after the embedded
// worker and the pools had started), and the start leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { buildGateway } from '../../src/build-gateway.js';
import { parseConfig } from '../../src/config.js';

/** This process's child processes (from /proc, every thread's list). */
function children(): string[] {
  return readdirSync('/proc/self/task').flatMap((tid) => readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
}

test('an HTTP or ZMQ port in use fails the start with unavailable naming it, before the embedded worker starts', async (t) => {
  const blocker = createServer();
  const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const before = children();

  await assert.rejects(buildGateway(parseConfig({}, { httpPort: port, zmqEndpoint: 'tcp://127.0.0.1:*' })), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'unavailable');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port} for the HTTP door: address already in use`));
    return true;
  });
  await assert.rejects(buildGateway(parseConfig({}, { httpPort: 0, zmqEndpoint: `tcp://127.0.0.1:${port}` })), { code: 'unavailable' });
  assert.deepEqual(children(), before, 'no worker process was started');
});
