// The container sampler: every `intervalMs` one stats sample of each running container of ours, and the
// engine's lifecycle events of our containers (die, oom, health, ...) as they happen. The composition root
// feeds both to the metrics and the launcher. Survives an engine that is absent or restarts: it retries.
import { EventStream } from '../lib/event-stream.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { ContainerEvent, DockerManager, ResourceSample } from './docker-manager.js';

export interface ContainerStats {
  framework: string | undefined;
  /** Container name. */
  container: string;
  containerId: string;
  sample: ResourceSample;
}

export interface WatchContainersOptions {
  manager: DockerManager;
  /** Time between two stats rounds; default 5000 ms. Also the pause before re-subscribing to events. */
  intervalMs?: number;
  onStats?: (stats: ContainerStats) => void;
  /** Extra label filters (`key=value`) on top of ours, e.g. one test run's containers. */
  labels?: string[];
  log?: Logger;
}

export interface ContainerWatch {
  /** The last sample of a running container (by name), or undefined. */
  lastStats(container: string): ResourceSample | undefined;
  /** Calls `listener` with each lifecycle event of our containers until the returned function is called. */
  onEvent(listener: (event: ContainerEvent) => void): () => void;
  /** True while the events subscription is in place. */
  readonly eventsConnected: boolean;
  /** Runs one stats round now (also what the timer does); rounds never overlap. */
  sampleNow(): Promise<void>;
  /** Stops the timer and the events subscription. Idempotent. */
  close(): Promise<void>;
}

const GONE: ReadonlySet<string> = new Set(['die', 'stop', 'destroy', 'oom']);

export function watchContainers({ manager, intervalMs = 5_000, onStats, labels = [], log = silentLogger }: WatchContainersOptions): ContainerWatch {
  const logger = log.child({ component: 'docker.watch' });
  const controller = new AbortController();
  const last = new Map<string, ResourceSample>();
  const lifecycle = new EventStream<ContainerEvent>();
  /** When each container was last seen going away (ms): a stats round that began before drops its sample. */
  const goneAt = new Map<string, number>();
  let round: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let eventsConnected = false;
  let failing = false;
  let worked = false;
  let closing: Promise<void> | undefined;
  let eventsDone: Promise<void> = Promise.resolve();

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (controller.signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      t.unref();
      function done() {
        controller.signal.removeEventListener('abort', done);
        clearTimeout(t);
        resolve();
      }
      controller.signal.addEventListener('abort', done, { once: true });
    });

  const deliver = <T>(fn: ((v: T) => void) | undefined, value: T) => {
    try {
      fn?.(value);
    } catch (err) {
      logger.warn({ event: 'docker.watch_listener_failed', err });
    }
  };

  async function sampleRound(): Promise<void> {
    const began = Date.now();
    let running;
    try {
      running = (await manager.listContainers({ labels })).filter((c) => c.state === 'running');
      if (failing) logger.info({ event: 'docker.watch_recovered' });
      failing = false;
      worked = true;
    } catch (err) {
      // an engine absent from the start is reported once by whoever started the sampler; a lost one here
      if (!failing) (worked ? logger.warn : logger.debug)({ event: 'docker.watch_failed', message: 'cannot list containers; stats paused until the engine answers', err });
      failing = true;
      return;
    }
    const names = new Set(running.map((c) => c.name));
    for (const name of last.keys()) if (!names.has(name)) last.delete(name);
    await Promise.all(
      running.map(async (c) => {
        try {
          const sample = await manager.stats(c.id);
          if (controller.signal.aborted || (goneAt.get(c.name) ?? 0) >= began) return;
          // Listed as running, stopped before its stats were read: Docker answers with empty counters read at
          // 0001-01-01. Not a sample (it would show a live container at zero memory).
          if (sample.time.getTime() <= 0) return;
          last.set(c.name, sample);
          deliver(onStats, { framework: c.framework, container: c.name, containerId: c.id, sample });
        } catch (err) {
          logger.debug({ event: 'docker.watch_stats_failed', container: c.name, err });
        }
      }),
    );
  }

  function sampleNow(): Promise<void> {
    if (controller.signal.aborted) return Promise.resolve();
    return (round ??= sampleRound().finally(() => (round = undefined)));
  }

  function schedule(): void {
    if (controller.signal.aborted) return;
    timer = setTimeout(() => {
      void sampleNow().finally(schedule);
    }, intervalMs);
    timer.unref();
  }

  async function followEvents(): Promise<void> {
    while (!controller.signal.aborted) {
      try {
        const events = await manager.events({ signal: controller.signal });
        eventsConnected = true;
        for await (const e of events) {
          if (GONE.has(e.type)) {
            goneAt.set(e.name, Date.now());
            last.delete(e.name);
          }
          if (e.type === 'destroy') goneAt.delete(e.name);
          lifecycle.emit(e);
        }
      } catch (err) {
        logger.debug({ event: 'docker.watch_events_failed', err });
      } finally {
        eventsConnected = false;
      }
      await pause(intervalMs);
    }
  }

  eventsDone = followEvents();
  void sampleNow().finally(schedule);

  return {
    lastStats: (container) => last.get(container),
    onEvent: (listener) => lifecycle.on(listener),
    get eventsConnected() {
      return eventsConnected;
    },
    sampleNow,
    close() {
      return (closing ??= (async () => {
        controller.abort();
        clearTimeout(timer);
        await Promise.allSettled([round, eventsDone]);
        lifecycle.close();
      })());
    },
  };
}
