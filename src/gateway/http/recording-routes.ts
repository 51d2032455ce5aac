// Recording switched at run time: `GET /v1/recording` tells what is recorded, `POST /v1/recording` with
// `{"on": true|false, "frameworks": ["demo"]}` (frameworks absent: all) switches it. Both behind `requireToken`, like
// the other control routes: recordings hold camera images. The recorder is reached through a small interface, so the
// gateway does not import the recording area.
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { GatewayError, toGatewayError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { errorResponse, requestIdOf } from './app.js';

/** What the routes need from the recorder (src/recording/recorder.ts implements it). */
export interface RecordingControl {
  status(): object;
  /** Throws `unknown_framework` for a name the gateway does not serve. */
  set(request: { on: boolean; frameworks?: readonly string[] }): object;
}

export interface RecordingRoutesOptions {
  control: RecordingControl;
  requireToken: MiddlewareHandler;
  log?: Logger;
}

const BODY_LIMIT_BYTES = 4_096;

/** `{on, frameworks?}` from a JSON body, checked. */
async function switchOf(c: Context): Promise<{ on: boolean; frameworks?: string[] }> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (err) {
    throw new GatewayError('bad_request', `body is not valid JSON: ${(err as Error).message}`, { path: '/' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatewayError('bad_request', 'body must be a JSON object like {"on": true, "frameworks": ["demo"]}', { path: '/' });
  const { on, frameworks, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new GatewayError('bad_request', `unknown field '${extra[0]}' (expected on, frameworks)`, { path: `/${extra[0]}` });
  if (typeof on !== 'boolean') throw new GatewayError('bad_request', "'on' must be true or false", { path: '/on' });
  if (frameworks === undefined) return { on };
  if (!Array.isArray(frameworks) || !frameworks.every((f) => typeof f === 'string')) throw new GatewayError('bad_request', "'frameworks' must be a list of framework names", { path: '/frameworks' });
  return { on, frameworks: frameworks as string[] };
}

export function registerRecordingRoutes(app: Hono, { control, requireToken, log = silentLogger }: RecordingRoutesOptions): void {
  const logger = log.child({ component: 'gateway.recording' });
  const smallBody = bodyLimit({
    maxSize: BODY_LIMIT_BYTES,
    onError: (c) => errorResponse(c, new GatewayError('too_large', `a recording switch body is at most ${BODY_LIMIT_BYTES} bytes`), requestIdOf(c)),
  });
  app.get('/v1/recording', requireToken, (c) => c.json(control.status()));
  app.post('/v1/recording', requireToken, smallBody, async (c) => {
    try {
      const request = await switchOf(c);
      const status = control.set(request);
      logger.info({ event: 'recording.switch', on: request.on, frameworks: request.frameworks ?? 'all' });
      return c.json(status);
    } catch (err) {
      const error = toGatewayError(err);
      if (error.code === 'internal') logger.error({ event: 'recording.switch_failed', err });
      return errorResponse(c, error, requestIdOf(c));
    }
  });
}
