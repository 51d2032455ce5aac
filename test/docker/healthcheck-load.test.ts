// The offline worker image ships compiled Python, so its health check stays cheap: in a container held to a quarter
// of a core (what a loaded host leaves it), every check passes well within its 3 s timeout and the container stays
// healthy. Before the image compiled at build time, each check recompiled numpy's imports (4 to 6 s at 0.25 CPU) and
// the container turned unhealthy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dockerCli, ensureDockerAndImage, eventually, freePort, RUN_LABEL, RUN_ID, TEST_IMAGE, uniqueName } from '../support/docker.js';

interface Health {
  Status: string;
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

test('the image carries bytecode for the SDK, numpy and the stdlib', async () => {
  ensureDockerAndImage();
  const out = await dockerCli('run', '--rm', '--network', 'none', '--label', `${RUN_LABEL}=${RUN_ID}`, TEST_IMAGE, 'python3', '-c', 'import importlib.util as u, os; print(all(os.path.exists(u.find_spec(m).cached) for m in ("numpy", "zmq", "json", "physical_ai_worker.healthcheck")))');
  assert.equal(out, 'True');
});

test('CPU-starved (0.25 of a core), the worker container turns healthy and stays healthy check after check', async (t) => {
  ensureDockerAndImage();
  const name = uniqueName('health-load');
  const port = await freePort();
  t.after(() => dockerCli('rm', '-f', name).catch(() => undefined));
  await dockerCli('run', '-d', '--name', name, '--network', 'host', '--cpus', '0.25', '--label', `${RUN_LABEL}=${RUN_ID}`, '-e', `WORKER_ENDPOINT=tcp://127.0.0.1:${port}`, TEST_IMAGE);
  const health = async () => JSON.parse(await dockerCli('inspect', '-f', '{{json .State.Health}}', name)) as Health;

  const healthyAt = await eventually(async () => {
    const h = await health();
    assert.notEqual(h.Status, 'unhealthy', JSON.stringify(h.Log.at(-1)));
    return h.Status === 'healthy' ? Date.now() : undefined;
  }, 90_000, 250);
  // Docker keeps the last 5 probes: wait until all of them ran after the container became healthy.
  const h = await eventually(async () => {
    const now = await health();
    assert.equal(now.Status, 'healthy', `turned ${now.Status}: ${JSON.stringify(now.Log.at(-1))}`);
    return now.Log.length >= 5 && now.Log.every((p) => Date.parse(p.Start) >= healthyAt - 1_000) ? now : undefined;
  }, 90_000, 500);
  assert.equal(h.FailingStreak, 0);
  for (const probe of h.Log) assert.equal(probe.ExitCode, 0, probe.Output);
  const durations = h.Log.map((p) => Date.parse(p.End) - Date.parse(p.Start));
  t.diagnostic(`probe durations at 0.25 CPU: ${durations.join(', ')} ms (timeout 3000 ms)`);
});
