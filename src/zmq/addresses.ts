// Parses and checks ZeroMQ endpoint strings: tcp://host:port, ipc:///path, inproc://name.
import { GatewayError } from '../lib/errors.js';

export type Endpoint =
  | { transport: 'tcp'; host: string; port: number | '*'; text: string }
  | { transport: 'ipc'; path: string; text: string }
  | { transport: 'inproc'; name: string; text: string };

/** The gateway's ZMQ door unless configured otherwise (config's default bind; the CLI's and the ROS bridge's default target). */
export const DEFAULT_GATEWAY_ZMQ_ENDPOINT = 'tcp://127.0.0.1:5550';

/** Unix socket paths longer than this do not fit sockaddr_un. */
export const MAX_IPC_PATH_BYTES = 107;

/** Parses an endpoint, throwing `bad_request` with the reason; `*` as port is allowed only when binding. */
export function parseEndpoint(text: string, { forBind = false } = {}): Endpoint {
  const match = /^(tcp|ipc|inproc):\/\/(.+)$/.exec(text);
  if (!match) throw new GatewayError('bad_request', `endpoint ${JSON.stringify(text)}: expected tcp://host:port, ipc:///path or inproc://name`);
  const [, transport, rest] = match as unknown as [string, 'tcp' | 'ipc' | 'inproc', string];
  if (transport === 'ipc') {
    if (Buffer.byteLength(rest) > MAX_IPC_PATH_BYTES) {
      throw new GatewayError('bad_request', `endpoint ${text}: ipc path is longer than ${MAX_IPC_PATH_BYTES} bytes`);
    }
    return { transport, path: rest, text };
  }
  if (transport === 'inproc') return { transport, name: rest, text };
  const hostPort = /^(\[[^\]]+\]|[^:]+):(\d+|\*)$/.exec(rest);
  if (!hostPort) throw new GatewayError('bad_request', `endpoint ${text}: expected tcp://host:port`);
  const port = hostPort[2] === '*' ? '*' : Number(hostPort[2]);
  if (port === '*' ? !forBind : !(port >= 0 && port <= 65535) || (!forBind && port === 0)) {
    throw new GatewayError('bad_request', `endpoint ${text}: port must be 1-65535${forBind ? " or '*'" : ''}`);
  }
  return { transport, host: hostPort[1]!, port, text };
}

