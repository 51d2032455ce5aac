// A gateway in its own process for the clean-up test: `tsx test/shm/gateway_main.ts <worker endpoint>` serves the
// worker as framework `lerobot` and prints `zmq=<endpoint>` once listening. The test ends it with SIGKILL.
import { parseConfig } from '../../src/config.js';
import { buildGateway } from '../../src/build-gateway.js';

const config = parseConfig({ healthIntervalMs: 200, frameworks: { lerobot: { endpoints: [process.argv[2]!], timeoutMs: 3_000 } } }, { httpPort: 0, zmqEndpoint: 'tcp://127.0.0.1:*' });
const gateway = await buildGateway(config, {});
process.stdout.write(`zmq=${gateway.zmqEndpoint}\n`);
