// The process's ZAP handler (ZeroMQ RFC 27): decides which CURVE clients a server socket accepts.
//
// libzmq asks the handler bound at inproc://zeromq.zap.01 *in the server socket's context* about every CURVE
// handshake. zeromq.js sockets share one default context, so one ROUTER bound there serves every server socket of
// the process; there can be only one. Each server that has an allow list registers it under a ZAP domain of its
// own (`paig-<n>`, set as the socket's zapDomain); the handler answers 200 for a listed key and 400 (logged as
// `zmq.curve_refused` with the client's public key) otherwise. Requests for a domain nobody registered (a CURVE
// server without an allow list: any client that knows its public key) get 200. The handler socket is bound with
// the first registration and closed with the last.
import * as zmq from 'zeromq';
import { GatewayError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { z85Encode } from './curve-keys.js';

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
/** How long a bind waits for the name of a handler this process just closed, and the step, ms. */
const REBIND_WAIT_MS = 2_000;
const REBIND_STEP_MS = 10;

export interface ZapPolicy {
  /** Names the server in logs, e.g. `ZMQ front door`. */
  name: string;
  /** Accepted client public keys (Z85) → a label for logs and the ZAP user id (e.g. the key file's name). */
  clientKeys: ReadonlyMap<string, string>;
  log: Logger;
}

/** A registered allow list; `close()` removes it (and closes the handler when it was the last). */
export interface ZapRegistration {
  /** The ZAP domain to set on the server socket (zapDomain) before it binds. */
  readonly domain: string;
  close(): Promise<void>;
}

interface Handler {
  socket: zmq.Router;
  loop: Promise<void>;
}

const policies = new Map<string, ZapPolicy>();
let counter = 0;
let handler: Promise<Handler> | undefined;
let stopping: Promise<void> | undefined;

/** Registers an allow list under a new ZAP domain, binding the process's handler if it is not running. */
export async function registerZapPolicy(policy: ZapPolicy): Promise<ZapRegistration> {
  const domain = `paig-${process.pid}-${++counter}`;
  policies.set(domain, policy);
  try {
    await ensureHandler();
  } catch (err) {
    policies.delete(domain);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    domain,
    close: () =>
      (closing ??= (async () => {
        policies.delete(domain);
        if (policies.size === 0) await stopHandler();
      })()),
  };
}

async function ensureHandler(): Promise<void> {
  await stopping;
  handler ??= (async () => {
    // A handler closed a moment ago still holds the inproc name until libzmq's reaper releases it: a bind that
    // finds it in use is tried again, briefly; one that still fails means another handler owns it.
    for (let waitedMs = 0; ; waitedMs += REBIND_STEP_MS) {
      const socket = new zmq.Router({ linger: 0 });
      try {
        await socket.bind(ZAP_ENDPOINT);
        return { socket, loop: serve(socket) };
      } catch (err) {
        socket.close();
        if ((err as { code?: string }).code !== 'EADDRINUSE' || waitedMs >= REBIND_WAIT_MS) {
          throw new GatewayError('internal', `cannot bind the ZAP handler at ${ZAP_ENDPOINT} (another one in this process?): ${(err as Error).message}`, { cause: err });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, REBIND_STEP_MS));
    }
  })().catch((err: unknown) => {
    handler = undefined;
    throw err;
  });
  await handler;
}

function stopHandler(): Promise<void> {
  const current = handler;
  if (!current) return Promise.resolve();
  handler = undefined;
  const done = (async () => {
    const { socket, loop } = await current.catch(() => ({ socket: undefined, loop: undefined }));
    // No unbind first: unbinding an inproc endpoint with live peers trips an assertion in libzmq 4.3.5 (pipe.cpp).
    socket?.close();
    await loop;
  })();
  stopping = done; // a registration that comes meanwhile binds again once this socket is gone
  return done;
}

async function serve(socket: zmq.Router): Promise<void> {
  try {
    for await (const message of socket) {
      const reply = answer(message);
      if (reply) await socket.send(reply).catch(() => undefined);
    }
  } catch {
    // the socket closed
  }
}

const text = (frame: Buffer | undefined) => (frame ? frame.toString('latin1') : '');

/**
 * One ZAP request → its reply. Request (after the ROUTER's routing id and empty delimiter): version "1.0",
 * request id, domain, address, identity, mechanism, credentials. Reply: version, request id, status code,
 * status text, user id, metadata.
 */
function answer(message: Buffer[]): Buffer[] | undefined {
  const [routingId, delimiter, version, requestId, domainFrame, addressFrame, , mechanismFrame, credential] = message;
  if (!routingId || !delimiter || !requestId) return undefined; // nothing to answer to
  const reply = (code: 200 | 400 | 500, status: string, userId = '') => [routingId, delimiter, Buffer.from('1.0'), requestId, Buffer.from(String(code)), Buffer.from(status), Buffer.from(userId), Buffer.alloc(0)];
  if (text(version) !== '1.0') return reply(500, 'unsupported ZAP version');
  const domain = text(domainFrame);
  const policy = policies.get(domain);
  if (!policy) return reply(200, 'OK'); // a server without an allow list: the handshake itself is the check
  const mechanism = text(mechanismFrame);
  const address = text(addressFrame);
  if (mechanism !== 'CURVE' || !credential || credential.byteLength !== 32) {
    policy.log.warn({ event: 'zmq.curve_refused', server: policy.name, address, mechanism, reason: 'not a CURVE handshake' });
    return reply(400, 'CURVE required');
  }
  const clientKey = z85Encode(credential);
  const label = policy.clientKeys.get(clientKey);
  if (label === undefined) {
    policy.log.warn({ event: 'zmq.curve_refused', server: policy.name, address, clientKey, reason: 'client key not in the allow list' });
    return reply(400, 'client key not allowed');
  }
  policy.log.debug({ event: 'zmq.curve_accepted', server: policy.name, address, clientKey, client: label });
  return reply(200, 'OK', label);
}
