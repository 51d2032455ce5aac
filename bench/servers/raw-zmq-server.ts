// The raw zeromq.js reference server: a ROUTER that answers every message with a pre-encoded reply (msgpack
// header + one raw 16x14 float32 frame), decoding nothing. With the raw client in bench/lib/drivers.ts it gives
// one bare zeromq.js round trip of the same bytes, the yardstick for the gateway's own cost.
// `tsx bench/servers/raw-zmq-server.ts <bind endpoint>`; prints {"event":"listening","endpoint"} and exits on SIGTERM or stdin end.
import { encode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import { closeOnStop } from './stop.js';

const sock = new zmq.Router({ linger: 0, sendTimeout: 0, maxMessageSize: -1 });
await sock.bind(process.argv[2] ?? 'tcp://127.0.0.1:*');
const chunk = new Float32Array(16 * 14).fill(0.5);
const header = Buffer.from(
  encode({ status: 'success', result: { action: { __tensor__: true, dtype: 'float32', shape: [16, 14], frame: 1 } }, request_id: 'raw', version: 1 }),
);
const body = Buffer.from(chunk.buffer);
process.stdout.write(JSON.stringify({ event: 'listening', endpoint: sock.lastEndpoint, pid: process.pid }) + '\n');
closeOnStop(() => sock.close());

for await (const msg of sock) {
  // [identity, empty, header, ...tensors] → [identity, empty, header, chunk]
  await sock.send([msg[0]!, Buffer.alloc(0), header, body]);
}
