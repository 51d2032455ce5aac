// Control of frameworks over HTTP: start (within a deadline), stop, and the containers the gateway manages; the
// direct path's leases (revoke every lease of a framework, the lease service's counts). Always behind
// `requireToken` (a token is needed when the gateway listens beyond loopback or one is configured). The control is
// an interface (src/router/framework-launcher.ts): the gateway never imports Docker.
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { Deadline } from '../../lib/abort.js';
import { GatewayError, toGatewayError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { FrameworkControl } from '../../router/framework-launcher.js';
import type { LeaseRevocation, LeaseStatus } from '../lease-service.js';
import { errorResponse, requestIdOf } from './app.js';

/** The direct path's control (the LeaseService): both throw `unknown_framework`, or `bad_request` for a framework without `direct`. */
export interface LeaseControl {
  revoke(framework: string, reason: string): Promise<LeaseRevocation>;
  status(framework: string): LeaseStatus;
}

export interface ControlRoutesOptions {
  /** The launcher's control side; undefined when no framework has a launcher (start/stop answer 404). */
  control: FrameworkControl | undefined;
  /** Starts a framework and resolves once a worker is ready, with its endpoints (the router's startFramework). */
  start: (framework: string, signal: AbortSignal) => Promise<string[]>;
  /** The direct path's leases (GET /v1/frameworks/{name}/leases, POST .../leases/revoke). */
  leases: LeaseControl;
  requireToken: MiddlewareHandler;
  log?: Logger;
  /** Deadline of a start when the request names none, ms; default 120 000. */
  defaultStartTimeoutMs?: number;
}

/** Largest body of a start/stop request (it carries `{"timeout_ms": n}`), bytes. */
const CONTROL_BODY_LIMIT_BYTES = 4_096;

/** Longest start deadline a request may ask for (10 minutes: large models load slowly). */
const MAX_START_TIMEOUT_MS = 600_000;

/** `timeout_ms` from the query or a JSON body `{timeout_ms}`; undefined when absent. */
async function timeoutOf(c: Context): Promise<number | undefined> {
  let value: unknown = c.req.query('timeout_ms');
  if (value === undefined && (c.req.header('content-type') ?? '').includes('json')) {
    const text = await c.req.text();
    if (text.trim() !== '') {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new GatewayError('bad_request', `body is not valid JSON: ${(err as Error).message}`, { path: '/' });
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('bad_request', 'body must be a JSON object like {"timeout_ms": 60000}', { path: '/' });
      value = (body as Record<string, unknown>).timeout_ms;
    }
  }
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0 || ms > MAX_START_TIMEOUT_MS) {
    throw new GatewayError('bad_request', `timeout_ms must be an integer 1..${MAX_START_TIMEOUT_MS}`, { path: '/timeout_ms' });
  }
  return ms;
}

export function registerControlRoutes(app: Hono, { control, start, leases, requireToken, log = silentLogger, defaultStartTimeoutMs = 120_000 }: ControlRoutesOptions): void {
  const logger = log.child({ component: 'gateway.control' });

  const launchable = (name: string): FrameworkControl => {
    const names = control?.frameworks() ?? [];
    if (!control || !names.includes(name)) {
      throw new GatewayError(
        'unknown_framework',
        `framework '${name}' is not started by this gateway (no launcher for it); frameworks with a launcher: ${names.join(', ') || 'none'}`,
      );
    }
    return control;
  };

  // A start or stop body is `{"timeout_ms": ...}`: anything much larger is refused while it streams in.
  const smallBody = bodyLimit({
    maxSize: CONTROL_BODY_LIMIT_BYTES,
    onError: (c) => errorResponse(c, new GatewayError('too_large', `a control request body is at most ${CONTROL_BODY_LIMIT_BYTES} bytes`), requestIdOf(c)),
  });

  const guarded = (handler: (c: Context) => Promise<Response>) => async (c: Context) => {
    try {
      return await handler(c);
    } catch (err) {
      const error = toGatewayError(err);
      const fields = { event: 'control.failed', method: c.req.method, path: c.req.path, code: error.code, message: error.message };
      if (error.code === 'internal') logger.error({ ...fields, err });
      else logger.info(fields);
      return errorResponse(c, error, requestIdOf(c));
    }
  };

  app.post(
    '/v1/frameworks/:name/start',
    requireToken,
    smallBody,
    guarded(async (c) => {
      const name = c.req.param('name')!;
      const ctl = launchable(name);
      const timeoutMs = (await timeoutOf(c)) ?? defaultStartTimeoutMs;
      const t0 = performance.now();
      const deadline = new Deadline(timeoutMs, c.req.raw.signal);
      const endpoints = await start(name, deadline.signal).finally(() => deadline.dispose());
      const ms = Math.round(performance.now() - t0);
      const status = (await ctl.status()).find((s) => s.framework === name);
      logger.info({ event: 'control.started', framework: name, endpoints, ms });
      return c.json({ framework: name, state: 'ready', container_state: status?.state ?? null, endpoints, container: status?.container ?? null, image: status?.image ?? null, ms });
    }),
  );

  app.post(
    '/v1/frameworks/:name/stop',
    requireToken,
    smallBody,
    guarded(async (c) => {
      const name = c.req.param('name')!;
      const ctl = launchable(name);
      const timeoutMs = (await timeoutOf(c)) ?? defaultStartTimeoutMs;
      const deadline = new Deadline(timeoutMs, c.req.raw.signal);
      await ctl.stop(name, deadline.signal).finally(() => deadline.dispose());
      const status = (await ctl.status()).find((s) => s.framework === name);
      logger.info({ event: 'control.stopped', framework: name });
      return c.json({ framework: name, state: status?.state ?? 'stopped', container: status?.container ?? null });
    }),
  );

  // The direct path: an operator revokes a framework's leases (a misbehaving client, a rotated worker secret); every
  // worker of the framework then refuses leases issued before now, and clients take new ones from the gateway.
  app.get(
    '/v1/frameworks/:name/leases',
    requireToken,
    guarded(async (c) => c.json(leases.status(c.req.param('name')!))),
  );

  app.post(
    '/v1/frameworks/:name/leases/revoke',
    requireToken,
    guarded(async (c) => {
      const name = c.req.param('name')!;
      const { workers, failed } = await leases.revoke(name, 'operator (HTTP)');
      logger.info({ event: 'control.leases_revoked', framework: name, workers, failed });
      return c.json({ framework: name, workers, failed });
    }),
  );

  app.get(
    '/v1/containers',
    requireToken,
    guarded(async (c) => {
      if (!control) return c.json({ containers: [], frameworks: [] });
      const [containers, frameworks] = await Promise.all([control.containers(), control.status()]);
      return c.json({ containers, frameworks });
    }),
  );
}
