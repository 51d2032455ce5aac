// Python SDK worker behaviour as a real process: health and readiness, deadlines, throwing handlers,
// concurrency with replies matched by request id, silent and crashing workers, the healthcheck command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { encodeMessage } from '../../src/protocol/codec.js';
import type { HealthResult, ReplyHeader } from '../../src/protocol/messages.js';
import type { WireError } from '../../src/lib/errors.js';
import { dirname, join } from 'node:path';
import { freeTcpEndpoint, ipcEndpoint, spawnPythonWorker } from '../support/python-worker.js';
import { RawDealer, sPayload } from './raw-client.js';
import { logLines, venvPython, waitForLog } from './venv.js';

// Every worker here is the pip-installed SDK in .venv (venv.ts), what users run.

const PROBE_DIR = fileURLToPath(new URL('.', import.meta.url));
const probe = (handlers: Record<string, string>) => ({ pythonPath: [PROBE_DIR], handlers });

test('health: ready, framework, model, capacity, in_flight, uptime, version and sdk', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), framework: 'lerobot', capacity: 2 });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const reply = await dealer.request({ type: 'health' });
  assert.equal(reply.header.status, 'success');
  const h = reply.header.result as HealthResult;
  assert.equal(h.ready, true);
  assert.equal(h.framework, 'lerobot');
  assert.equal(h.model, 'demo-v1');
  assert.equal(h.capacity, 2);
  assert.equal(h.in_flight, 0);
  assert.equal(h.version, 1);
  assert.equal(h.sdk, 'physical-ai-gateway-py/0.1.0');
  assert.ok(typeof h.uptime_s === 'number' && h.uptime_s >= 0);
});

test('readyAfterMs: health says not ready and inference gets unavailable, then both turn ready', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), readyAfterMs: 4_000 });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const before = await dealer.request({ type: 'health' });
  assert.equal(before.header.status, 'success');
  assert.equal((before.header.result as HealthResult).ready, false);
  const early = await dealer.request({ type: 'inference', data: { state: sPayload() } });
  assert.equal((early.header.error as WireError).code, 'unavailable');
  assert.equal((early.header.error as WireError).retryable, true);
  const deadline = Date.now() + 30_000;
  let ready = false;
  while (!ready && Date.now() < deadline) {
    ready = ((await dealer.request({ type: 'health' })).header.result as HealthResult).ready;
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(ready, true);
  assert.equal((await dealer.request({ type: 'inference', data: { state: sPayload() } })).header.status, 'success');
});

test('a request whose timeout_ms has passed gets timeout without running the handler', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), delayMs: 400, ...probe({ context: 'zero_copy_probe:context' }) });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());

  // Sent 10 s ago with a 100 ms budget: already expired on arrival.
  const stale = await dealer.request({ type: 'inference', data: { state: sPayload() }, timestamp: Date.now() / 1000 - 10, timeout_ms: 100 });
  assert.equal(stale.header.status, 'error');
  assert.equal((stale.header.error as WireError).code, 'timeout');
  assert.equal(stale.header.timing?.compute_ms, 0, 'the handler did not run');

  // Queued behind a 400 ms request with a 150 ms budget: expires while waiting, so it is dropped unrun.
  const first = { type: 'inference', data: { state: sPayload() }, request_id: 'long', timestamp: Date.now() / 1000, timeout_ms: 20_000 };
  const second = { type: 'inference', data: { state: sPayload() }, request_id: 'short', timestamp: Date.now() / 1000, timeout_ms: 150 };
  await dealer.sendFrames(encodeMessage(first));
  await dealer.sendFrames(encodeMessage(second));
  const replies = new Map<string, ReplyHeader>();
  for (let i = 0; i < 2; i++) {
    const r = await dealer.receiveReply();
    replies.set(r.header.request_id!, r.header);
  }
  assert.equal(replies.get('long')?.status, 'success');
  assert.equal((replies.get('short')?.error as WireError).code, 'timeout');

  // The handler sees its remaining budget and the trace context.
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const ctx = await dealer.request({ type: 'context', data: {}, timeout_ms: 5_000, traceparent, request_id: 'c1' });
  const seen = ctx.header.result as { request_id: string; traceparent: string; remaining_ms: number; codec: string };
  assert.equal(seen.request_id, 'c1');
  assert.equal(seen.traceparent, traceparent);
  assert.ok(seen.remaining_ms > 0 && seen.remaining_ms <= 5_000);
  assert.equal(seen.codec, 'binary');
});

test('a handler that raises gets worker_error with the exception text; the worker keeps serving', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), ...probe({ boom: 'zero_copy_probe:boom' }) });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const reply = await dealer.request({ type: 'boom', data: { why: 'testing' } });
  const error = reply.header.error as WireError;
  assert.equal(error.code, 'worker_error');
  assert.match(error.message, /RuntimeError: boom: \{'why': 'testing'\}/);
  const failed = await waitForLog(worker, (l) => l.event === 'worker.handler_failed');
  assert.equal(failed.level, 'error');
  assert.equal(failed.request_id, reply.header.request_id);
  // The traceback, down to the handler's own line: the reply carries only the exception's text.
  assert.match(String(failed.stack), /^Traceback \(most recent call last\):/);
  assert.match(String(failed.stack), /zero_copy_probe\.py", line \d+, in boom\n\s+raise RuntimeError/);
  assert.match(String(failed.stack), /RuntimeError: boom: \{'why': 'testing'\}$/);
  // It keeps serving, and the next failure is logged too.
  assert.equal((await dealer.request({ type: 'inference', data: { state: sPayload() } })).header.status, 'success');
  const again = await dealer.request({ type: 'boom', data: { why: 'again' } });
  await waitForLog(worker, (l) => l.event === 'worker.handler_failed' && l.request_id === again.header.request_id);
});

test('the start line: one line on stderr with the endpoint, framework, model and readiness', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), framework: 'lerobot', readyAfterMs: 60_000 });
  t.after(() => worker.close());
  const start = await waitForLog(worker, (l) => l.event === 'worker.listening');
  assert.deepEqual(
    { endpoint: start.endpoint, framework: start.framework, model: start.model, ready: start.ready, level: start.level },
    { endpoint: worker.endpoint, framework: 'lerobot', model: 'demo-v1', ready: false, level: 'info' },
  );
  assert.deepEqual(start.handlers, ['health', 'inference']);
  // Exactly one: stop the worker and read its whole log, up to the stop line. SIGTERM and wait for the exit (close()
  // would SIGKILL after 3 s, and a starved machine may take that long to schedule the worker's shutdown).
  await worker.kill('SIGTERM');
  await waitForLog(worker, (l) => l.event === 'worker.stopped');
  assert.equal(logLines(worker).filter((l) => l.event === 'worker.listening').length, 1, worker.stderr());
});

test('--log-level error: no start line, but a failing handler is still logged with its traceback', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), ...probe({ boom: 'zero_copy_probe:boom' }), extraArgs: ['--log-level', 'error'] });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  await dealer.request({ type: 'boom', data: {} });
  const failed = await waitForLog(worker, (l) => l.event === 'worker.handler_failed');
  assert.match(String(failed.stack), /in boom/);
  // The start line would come before this one on the same stream: its absence is settled.
  assert.deepEqual(logLines(worker).filter((l) => l.level === 'info'), []);
});

test('capacity > 1: requests run concurrently in threads and every reply goes to its own request', async (t) => {
  const worker = await spawnPythonWorker({ python: await venvPython(), capacity: 4, endpoint: ipcEndpoint(t), ...probe({ sleep: 'zero_copy_probe:sleep' }) });
  t.after(() => worker.close());
  const dealer = new RawDealer(worker.endpoint);
  t.after(() => dealer.close());
  const n = 24;
  const sent = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = `req-${i}`;
    sent.set(id, i);
    const ms = 10 + ((i * 37) % 80); // varied delays, so replies come back out of order
    await dealer.sendFrames(encodeMessage({ type: 'sleep', request_id: id, data: { id: i, ms }, timeout_ms: 30_000 }));
  }
  // Health is answered by the I/O thread while handlers are busy.
  await dealer.sendFrames(encodeMessage({ type: 'health', request_id: 'health' }));
  const order: string[] = [];
  let maxConcurrent = 0;
  let health: HealthResult | undefined;
  for (let i = 0; i < n + 1; i++) {
    const reply = await dealer.receiveReply();
    const id = reply.header.request_id!;
    if (id === 'health') {
      health = reply.header.result as HealthResult;
      continue;
    }
    assert.equal(reply.header.status, 'success');
    const result = reply.header.result as { id: number; concurrent: number };
    assert.equal(result.id, sent.get(id), `reply for ${id} carries its own request's data`);
    maxConcurrent = Math.max(maxConcurrent, result.concurrent);
    order.push(id);
  }
  assert.equal(new Set(order).size, n, 'each request answered exactly once');
  assert.ok(maxConcurrent >= 2 && maxConcurrent <= 4, `handlers ran ${maxConcurrent} at once (capacity 4)`);
  assert.ok(health && health.in_flight! >= 1 && health.capacity === 4, JSON.stringify(health));
  assert.notDeepEqual(order, [...sent.keys()], 'replies came back out of order and were still matched');
});

test('behaviour silent: inference never answered, health still is; crash: the process exits 1 on inference', async (t) => {
  const silent = await spawnPythonWorker({ python: await venvPython(), behaviour: 'silent' });
  t.after(() => silent.close());
  const dealer = new RawDealer(silent.endpoint, 500);
  t.after(() => dealer.close());
  await dealer.sendFrames(encodeMessage({ type: 'inference', data: { state: sPayload() }, request_id: 'lost' }));
  await assert.rejects(dealer.receiveFrames(), { code: 'EAGAIN' });
  dealer.sock.receiveTimeout = 15_000;
  assert.equal((await dealer.request({ type: 'health' })).header.status, 'success');

  const crash = await spawnPythonWorker({ python: await venvPython(), behaviour: 'crash', endpoint: await freeTcpEndpoint() });
  t.after(() => crash.close());
  const d2 = new RawDealer(crash.endpoint, 500);
  t.after(() => d2.close());
  await d2.sendFrames(encodeMessage({ type: 'inference', data: { state: sPayload() } }));
  assert.deepEqual(await crash.exited, { code: 1, signal: null });
  await assert.rejects(d2.receiveFrames(), { code: 'EAGAIN' });
});

test('a worker killed with SIGKILL can be restarted on the same endpoint and serves again', async (t) => {
  const endpoint = await freeTcpEndpoint();
  const first = await spawnPythonWorker({ python: await venvPython(), endpoint, delayMs: 2_000 });
  t.after(() => first.close());
  const dealer = new RawDealer(endpoint, 500);
  t.after(() => dealer.close());
  await dealer.sendFrames(encodeMessage({ type: 'inference', data: { state: sPayload() }, request_id: 'doomed' }));
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await first.kill('SIGKILL'), { code: null, signal: 'SIGKILL' });
  await assert.rejects(dealer.receiveFrames(), { code: 'EAGAIN' });
  const second = await spawnPythonWorker({ python: await venvPython(), endpoint });
  t.after(() => second.close());
  dealer.sock.receiveTimeout = 15_000;
  const reply = await dealer.request({ type: 'inference', data: { state: sPayload() }, request_id: 'after' });
  assert.equal(reply.header.request_id, 'after');
  assert.equal(reply.header.status, 'success');
});

/** The `physical-ai-worker-healthcheck` command that pip installed next to the venv's python. */
async function runHealthcheck(endpoint: string): Promise<{ code: number | null; stderr: string }> {
  const command = join(dirname(await venvPython()), 'physical-ai-worker-healthcheck');
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--endpoint', endpoint, '--timeout-ms', '3000', '--quiet'], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

test('physical-ai-worker-healthcheck exits 0 only when the worker is ready', async (t) => {
  const ready = await spawnPythonWorker({ python: await venvPython() });
  t.after(() => ready.close());
  assert.equal((await runHealthcheck(ready.endpoint)).code, 0);

  const loading = await spawnPythonWorker({ python: await venvPython(), readyAfterMs: 60_000 });
  t.after(() => loading.close());
  const notReady = await runHealthcheck(loading.endpoint);
  assert.equal(notReady.code, 1);
  assert.match(notReady.stderr, /not ready/);

  const nobody = await runHealthcheck(await freeTcpEndpoint());
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /timeout/);
});
