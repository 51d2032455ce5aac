// The direct path's control plane: for a framework configured with `direct`, the gateway issues leases (a worker
// endpoint, limits, a signed token, an expiry) so a client can send inference straight to the worker; the worker
// SDK checks the token (src/protocol/lease-token.ts, physical_ai_worker/lease.py). The gateway stays whole:
//   - it collects the workers' records of direct requests every `collectIntervalMs` and feeds them to its metrics
//     with transport `direct` (latency as the worker measured it, outcome, bytes), so dashboards count them;
//   - it revokes a framework's leases (`lease.revoke` to each worker: leases issued before now are refused) when the
//     framework leaves `ready` (stopped, down, restarting: a switch of policy goes through a stop) or on request
//     (`revoke`: the HTTP control route POST /v1/frameworks/{name}/leases/revoke and `paig leases revoke`);
//   - it keeps per-framework counts (`status`: leases issued, revocations and the last one, records collected).
// Leases are asked for with a request of type `lease` at any front door (the pipeline answers it here).
import { randomUUID } from 'node:crypto';
import { GatewayError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { LeaseRecord } from '../protocol/lease-guard.js';
import { signLease, type LeaseGrant } from '../protocol/lease-token.js';
import type { FrameworkEntry } from '../router/framework-registry.js';
import type { Router } from '../router/router.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';

/** What the lease service did for one framework (GET /v1/frameworks/{name}/leases). */
export interface LeaseStatus {
  framework: string;
  lease_ttl_ms: number;
  max_in_flight: number;
  collect_interval_ms: number;
  /** Leases issued since the gateway started. */
  issued: number;
  /** Revocations since the gateway started (on request and when the framework left `ready`). */
  revocations: number;
  /** The last revocation: when (seconds since the epoch, like a lease's `expires_at`), why, workers reached and not. */
  last_revocation: { at: number; reason: string; workers: number; failed: number } | null;
  /** Records of direct requests collected from the workers, and records the workers dropped before collection. */
  records: number;
  dropped: number;
}

/** The outcome of a revocation: workers that acknowledged it, and workers that did not answer. */
export interface LeaseRevocation {
  workers: number;
  failed: number;
}

/** A framework entry that has the direct path. */
type DirectEntry = FrameworkEntry & { config: FrameworkEntry['config'] & { direct: NonNullable<FrameworkEntry['config']['direct']> } };

type Counts = Pick<LeaseStatus, 'issued' | 'revocations' | 'last_revocation' | 'records' | 'dropped'>;

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
  readonly #perFramework = new Map<string, Counts>();

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

  /** The framework's entry; `unknown_framework` when not configured, `bad_request` when it has no direct path. */
  #directEntry(framework: string | undefined): DirectEntry {
    const entry = this.#router.registry.resolve(framework);
    if (!entry.config.direct) {
      const names = this.frameworks;
      throw new GatewayError('bad_request', `framework '${entry.name}' has no direct path (frameworks.${entry.name}.direct); frameworks with one: ${names.join(', ') || 'none'}`, { path: '/framework' });
    }
    return entry as DirectEntry;
  }

  #counts(framework: string): Counts {
    let c = this.#perFramework.get(framework);
    if (!c) this.#perFramework.set(framework, (c = { issued: 0, revocations: 0, last_revocation: null, records: 0, dropped: 0 }));
    return c;
  }

  /** What the service did for `framework` (same errors as `revoke`). */
  status(framework: string): LeaseStatus {
    const entry = this.#directEntry(framework);
    const { leaseTtlMs, maxInFlight, collectIntervalMs } = entry.config.direct;
    return { framework: entry.name, lease_ttl_ms: leaseTtlMs, max_in_flight: maxInFlight, collect_interval_ms: collectIntervalMs, ...structuredClone(this.#counts(entry.name)) };
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
    const entry = this.#directEntry(framework);
    const direct = entry.config.direct;
    const ready = entry.pool.stats().endpoints.filter((e) => e.state === 'ready').sort((a, b) => a.inFlight - b.inFlight);
    const endpoint = ready[0]?.endpoint;
    if (!endpoint) throw new GatewayError('unavailable', `framework '${entry.name}' has no ready worker to lease`);
    const now = Date.now();
    const id = randomUUID();
    const token = signLease(direct.secret, { id, fw: entry.name, iat_ms: now, exp_ms: now + direct.leaseTtlMs, max: direct.maxInFlight });
    this.#counts(entry.name).issued++;
    this.#log.info({ event: 'lease.issued', framework: entry.name, leaseId: id, endpoint, ttlMs: direct.leaseTtlMs });
    return { lease_id: id, framework: entry.name, endpoint, token, expires_at: (now + direct.leaseTtlMs) / 1000, ttl_ms: direct.leaseTtlMs, max_in_flight: direct.maxInFlight, timeout_ms: entry.config.timeoutMs };
  }

  /** Revokes every lease of `framework` issued before now, on each of its workers that answers. */
  async revoke(framework: string, reason = 'requested'): Promise<LeaseRevocation> {
    const entry = this.#directEntry(framework);
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
    const counts = this.#counts(entry.name);
    counts.revocations++;
    counts.last_revocation = { at: notBefore / 1000, reason, workers, failed };
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
          this.#counts(entry.name).dropped += dropped ?? 0;
        } catch (err) {
          this.#log.debug({ event: 'lease.collect_failed', framework, endpoint: status.endpoint, err });
        }
      }
      this.#counts(entry.name).records += n;
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
