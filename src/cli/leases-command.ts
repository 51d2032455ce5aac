// `leases`: the direct path's leases on a running gateway (its HTTP door, behind its token rule): `revoke <framework>`
// makes every worker of the framework refuse the leases issued so far (clients take new ones from the gateway), for
// a misbehaving client or a rotated worker secret; `status <framework>` prints the lease service's counts.
import { Deadline } from '../lib/abort.js';
import { GatewayError, isErrorCode } from '../lib/errors.js';
import { authHeaders, DEFAULT_HTTP_GATEWAY, gatewayOption, httpGateway, jsonOption, timeoutOption, tokenOption, type CliIo, type DeclaredCommand } from './commands.js';

interface LeaseStatus {
  framework: string;
  lease_ttl_ms: number;
  max_in_flight: number;
  issued: number;
  revocations: number;
  last_revocation: { at: number; reason: string; workers: number; failed: number } | null;
  records: number;
  dropped: number;
}

interface DoorOptions {
  gateway: string;
  token?: string | undefined;
  timeoutMs: number;
  json: boolean;
}

/** One request to the gateway's lease routes; the JSON answer, or the gateway's error as a GatewayError. */
async function call(o: DoorOptions, framework: string, method: 'GET' | 'POST', path: string): Promise<Record<string, unknown>> {
  const url = `${httpGateway(o.gateway, 'leases')}/v1/frameworks/${encodeURIComponent(framework)}/leases${path}`;
  using deadline = new Deadline(o.timeoutMs);
  const res = await fetch(url, { method, headers: authHeaders(o.token), signal: deadline.signal });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new GatewayError('bad_request', `HTTP ${res.status} from ${url} is not JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const error = body.error as { code?: string; message?: string } | undefined;
    const code = error?.code;
    throw new GatewayError(code && isErrorCode(code) ? code : 'bad_request', error?.message ?? `HTTP ${res.status} from ${url}`);
  }
  return body;
}

const when = (seconds: number) => new Date(seconds * 1000).toISOString();

function printStatus(s: LeaseStatus, io: CliIo): void {
  io.out(`${s.framework}: leases of ${s.lease_ttl_ms} ms, ${s.max_in_flight} in flight each; issued ${s.issued}, revocations ${s.revocations}`);
  const last = s.last_revocation;
  io.out(last ? `last revocation: ${when(last.at)} (${last.reason}), ${last.workers} workers, ${last.failed} did not answer` : 'last revocation: none');
  io.out(`records of direct requests collected: ${s.records}, dropped by the workers: ${s.dropped}`);
}

export const leasesCommand: DeclaredCommand = {
  name: 'leases',
  summary: "the direct path's leases on a running gateway: revoke a framework's leases, or show the lease counts",
  define(cmd, io) {
    const door = (c: typeof cmd) => c.addOption(gatewayOption(DEFAULT_HTTP_GATEWAY, 'its HTTP door')).addOption(tokenOption()).addOption(timeoutOption(5_000)).addOption(jsonOption());
    door(cmd.command('revoke').description('make every worker of the framework refuse the leases issued so far; clients take new ones'))
      .argument('<framework>', 'a framework with the direct path (frameworks.<name>.direct)')
      .action(async (framework, o) => {
        const r = (await call(o, framework, 'POST', '/revoke')) as { framework: string; workers: number; failed: number };
        if (o.json) io.out(JSON.stringify(r));
        else io.out(`revoked the leases of ${r.framework}: ${r.workers} workers refuse them now${r.failed > 0 ? `; ${r.failed} did not answer (a worker refuses leases issued before its own start)` : ''}`);
      });
    door(cmd.command('status').description('leases issued, revocations and the last one, records of direct requests collected'))
      .argument('<framework>', 'a framework with the direct path')
      .action(async (framework, o) => {
        const s = (await call(o, framework, 'GET', '')) as unknown as LeaseStatus;
        if (o.json) io.out(JSON.stringify(s, null, 2));
        else printStatus(s, io);
      });
  },
};
