// The examples run as part of the suite so they cannot rot: the TS walk-through and the original-design Python client.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { startTestGateway } from '../support/gateway.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('examples/zmq-examples.ts sends every kind of request through both front doors and prints the answers', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/zmq-examples.ts'], { cwd: ROOT, timeout: 120_000 });
  assert.match(stdout, /inference \[zmq binary, L\]: action float32 \[16, 14\], first row starts 0\.010 0\.110 0\.210, model demo-v1/);
  assert.match(stdout, /health \[zmq binary\]: ready=true framework=demo/);
  assert.match(stdout, /command \[zmq binary\]: \{"acknowledged":true,"command":"reset"\}/);
  assert.match(stdout, /train \[zmq binary\]: accepted=true/);
  assert.match(stdout, /status \[zmq binary\]: \{"framework":"demo"/);
  assert.match(stdout, /inference \[zmq msgpack, S, framework demo\]: action float32 \[16, 14\]/);
  assert.match(stdout, /inference \[zmq json over REQ, original envelope\]: status=success request_id=original-1 action list \[16, 3\], first row starts 0\.110 0\.210 0\.310/);
  assert.match(stdout, /bad request \[zmq json over REQ\]: status=error code=bad_request path=\/data\/state/);
  assert.match(stdout, /inference \[http json, bare observation\]: HTTP 200 action list \[16, 3\], first row starts 0\.010 0\.510 1\.010, model demo-v1, instruction "wave"/);
  assert.match(stdout, /inference \[http msgpack, L\]: HTTP 200 request_id=http-mp-1 action float32 \[16, 14\]/);
  assert.match(stdout, /unknown framework \[http json\]: HTTP 404 code=unknown_framework/);
  assert.match(stdout, /frameworks \[http\]: demo=ready/);
  assert.match(stdout, /all examples done/);
});

test('examples/original_client.py (Python, REQ, original JSON envelope) works against the ZMQ front door', async (t) => {
  const gateway = await startTestGateway(t);
  const { stdout } = await run('/usr/bin/python3', ['examples/original_client.py', gateway.zmqEndpoint], { cwd: ROOT, timeout: 60_000 });
  assert.match(stdout, /health: status=success ready=True/);
  assert.match(stdout, /inference: status=success action=16x6 first_row=0\.0100 0\.1100 0\.2100 0\.3100 0\.4100 0\.5100/);
  assert.match(stdout, /missing state: status=error code=bad_request path=\/data\/state/);
});
