// Training jobs over HTTP: list, one job, cancel, and its progress as server-sent events. Jobs are started through
// the pipeline (`POST /v1/frameworks/{name}/train`, the same on ZMQ); these routes read and stop them. All behind
// `requireToken` (control: a token is needed when one is configured or the gateway listens beyond loopback).
import type { Hono, MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { isTerminal, type JobEvent, type JobManager, type JobRecord } from '../../jobs/job-manager.js';
import { errorResponse, HttpRequestError, requestIdOf } from './app.js';

export interface JobRoutesOptions {
  jobs: JobManager;
  requireToken: MiddlewareHandler;
}

export function registerJobRoutes(app: Hono, { jobs, requireToken }: JobRoutesOptions): void {
  const find = (id: string): JobRecord | undefined => jobs.list().find((j) => j.id === id);
  const notFound = (id: string) => new HttpRequestError(404, `no job '${id}' (GET /v1/jobs lists them)`);

  app.use('/v1/jobs', requireToken);
  app.use('/v1/jobs/*', requireToken);
  app.get('/v1/jobs', (c) => c.json({ jobs: jobs.list() }));
  app.get('/v1/jobs/:id', (c) => {
    const job = find(c.req.param('id'));
    return job ? c.json(job) : errorResponse(c, notFound(c.req.param('id')), requestIdOf(c));
  });
  app.post('/v1/jobs/:id/cancel', async (c) => {
    const id = c.req.param('id');
    if (!find(id)) return errorResponse(c, notFound(id), requestIdOf(c));
    try {
      return c.json(await jobs.cancel(id));
    } catch (err) {
      return errorResponse(c, err, requestIdOf(c));
    }
  });
  // `event: state` (the whole record) first and on every change, `event: progress` per reported step,
  // `event: checkpoint` per checkpoint written; the stream ends after the state event of a final state.
  app.get('/v1/jobs/:id/events', (c) => {
    const id = c.req.param('id');
    const first = find(id);
    if (!first) return errorResponse(c, notFound(id), requestIdOf(c));
    return streamSSE(c, async (stream) => {
      const queue: JobEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = jobs.onEvent((e) => {
        if ((e.type === 'state' ? e.job.id : e.job_id) !== id) return;
        queue.push(e);
        wake?.();
      });
      const aborted = new Promise<void>((resolve) => stream.onAbort(resolve));
      try {
        // Subscribed before the snapshot: nothing between the two is lost (a state event may repeat the snapshot).
        const now = find(id)!;
        await stream.writeSSE({ event: 'state', data: JSON.stringify(now) });
        if (isTerminal(now.state)) return;
        for (;;) {
          while (queue.length > 0) {
            const e = queue.shift()!;
            await stream.writeSSE({ event: e.type, data: JSON.stringify(e.type === 'state' ? e.job : e) });
            if (e.type === 'state' && isTerminal(e.job.state)) return;
          }
          const more = new Promise<void>((resolve) => (wake = resolve));
          const gone = await Promise.race([more.then(() => false), aborted.then(() => true)]);
          wake = undefined;
          if (gone) return;
        }
      } finally {
        unsubscribe();
      }
    });
  });
}
