// The direct path's control plane: for a framework configured with `direct`, the gateway issues leases (a worker
// endpoint, limits, a signed token, an expiry) so a client can send inference straight to the worker; the worker
// SDK checks the token (src/protocol/lease-token.ts, physical_ai_worker/lease.py). The gateway stays whole:
//   - it collects the workers' records of direct requests every `collectIntervalMs` and feeds them to its metrics
//     with transport `direct` (latency as the worker measured it, outcome, bytes), so dashboards count them;
//   - it revokes a framework's leases (`lease.revoke` to each worker: leases issued before now are refused) when the
//     framework leaves `ready` (stopped, down, restarting: a switch of policy goes through a stop) or on request.
// Leases are asked for with a request of type `lease` at any front door (the pipeline answers it here).
import { randomUUID } from 'node:crypto';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { LeaseRecord } from '../protocol/lease-guard.js';
import { signLease, type LeaseGrant } from '../protocol/lease-token.js';
import type { FrameworkEntry } from '../router/framework-registry.js';
import type { Router } from '../router/router.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';

export interface LeaseServiceOptions {
  router: Router;
  metrics?: GatewayMetrics;
  log?: Logger;
}

export class LeaseService {
  readonly #router: Router;
  readonly #metrics: GatewayMetrics | undefined;
  readonly #log: Logger;
  readonly #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void) | undefined;
  #collecting = new Set<string>();
  #closed = false;
  /** Records collected and leases issued/revoked, for tests and status. */
  readonly counts = { issued: 0, revocations: 0, records: 0, dropped: 0 };

  constructor({ router, metrics, log = silentLogger }: LeaseServiceOptions) {
    this.#router = router;
    this.#metrics = metrics;
    this.#log = log.child({ component: 'gateway.leases' });
  }

  /** The frameworks that allow the direct path. */
  get frameworks(): string[] {
    return this.#direct().map((e) => e.name);
  }

  #direct(): FrameworkEntry[] {
    return this.#router.registry.entries().filter((e) => e.config.direct !== undefined);
  }

  /** Starts collecting records and watching framework states. Idempotent. */
  start(): void {
    if (this.#unsubscribe || this.#closed) return;
    this.#unsubscribe = this.#router.onEvent((e) => {
      if (e.state !== 'ready' && this.frameworks.includes(e.framework)) void this.revoke(e.framework, `framework ${e.state}`);
    });
    for (const entry of this.#direct()) {
      const timer = setInterval(() => void this.collect(entry.name), entry.config.direct!.collectIntervalMs);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** Issues a lease on a ready worker of `framework` (least in flight). */
  issue(framework: string | undefined): LeaseGrant {
    if (this.#closed) throw new GatewayError('unavailable', 'the gateway is shutting down');
    const entry = this.#router.registry.resolve(framework);
    const direct = entry.config.direct;
    if (!direct) throw new GatewayError('bad_request', `framework '${entry.name}' has no direct path (frameworks.${entry.name}.direct)`, { path: '/framework' });
    const ready = entry.pool.stats().endpoints.filter((e) => e.state === 'ready').sort((a, b) => a.inFlight - b.inFlight);
    const endpoint = ready[0]?.endpoint;
    if (!endpoint) throw new GatewayError('unavailable', `framework '${entry.name}' has no ready worker to lease`);
    const now = Date.now();
    const id = randomUUID();
    const token = signLease(direct.secret, { id, fw: entry.name, iat_ms: now, exp_ms: now + direct.leaseTtlMs, max: direct.maxInFlight });
    this.counts.issued++;
    this.#log.info({ event: 'lease.issued', framework: entry.name, leaseId: id, endpoint, ttlMs: direct.leaseTtlMs });
    return { lease_id: id, framework: entry.name, endpoint, token, expires_at: (now + direct.leaseTtlMs) / 1000, ttl_ms: direct.leaseTtlMs, max_in_flight: direct.maxInFlight, timeout_ms: entry.config.timeoutMs };
  }

  /** Revokes every lease of `framework` issued before now, on each of its workers that answers. */
  async revoke(framework: string, reason = 'requested'): Promise<{ workers: number; failed: number }> {
    const entry = this.#router.registry.resolve(framework);
    if (!entry.config.direct) throw new GatewayError('bad_request', `framework '${entry.name}' has no direct path`);
    this.counts.revocations++;
    const notBefore = Date.now();
    let workers = 0;
    let failed = 0;
    await Promise.all(
      entry.pool.endpoints.map(async (endpoint) => {
        try {
          await entry.pool.request({ type: 'lease.revoke', data: { not_before_ms: notBefore } }, { endpoint, timeoutMs: 1_000 });
          workers++;
        } catch (err) {
          failed++; // a stopped or dead worker: it refuses older leases when it starts again (its own start time)
          this.#log.debug({ event: 'lease.revoke_unreached', framework: entry.name, endpoint, err });
        }
      }),
    );
    this.#log.info({ event: 'lease.revoked', framework: entry.name, reason, workers, failed });
    return { workers, failed };
  }

  /** Collects the records of direct requests from each ready worker of `framework` into the metrics. */
  async collect(framework: string): Promise<number> {
    if (this.#collecting.has(framework) || this.#closed) return 0;
    this.#collecting.add(framework);
    try {
      const entry = this.#router.registry.resolve(framework);
      let n = 0;
      for (const status of entry.pool.stats().endpoints) {
        if (status.state !== 'ready') continue;
        try {
          const reply = await entry.pool.request({ type: 'lease.metrics', data: {} }, { endpoint: status.endpoint, timeoutMs: 1_000 });
          const { records, dropped } = (reply.result ?? {}) as { records?: LeaseRecord[]; dropped?: number };
          for (const r of records ?? []) this.#record(entry.name, r);
          n += records?.length ?? 0;
          this.counts.dropped += dropped ?? 0;
        } catch (err) {
          this.#log.debug({ event: 'lease.collect_failed', framework, endpoint: status.endpoint, err });
        }
      }
      this.counts.records += n;
      return n;
    } finally {
      this.#collecting.delete(framework);
    }
  }

  #record(framework: string, r: LeaseRecord): void {
    if (!this.#metrics) return;
    this.#metrics.requestStarted({ framework, transport: 'direct', codec: 'binary' }).end({
      outcome: typeof r.outcome === 'string' ? r.outcome : 'internal',
      durationMs: Number(r.latency_ms) || 0,
      requestBytes: Number(r.request_bytes) || 0,
      responseBytes: Number(r.response_bytes) || 0,
      stagesMs: { worker_compute: Number(r.compute_ms) || 0 },
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearInterval(t);
    return Promise.resolve();
  }
}
