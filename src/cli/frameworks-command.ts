// `frameworks`: the gateway's frameworks from its HTTP door, as a table or (--json) the document as served.
import { Deadline } from '../lib/abort.js';
import { GatewayError } from '../lib/errors.js';
import { authHeaders, DEFAULT_HTTP_GATEWAY, gatewayOption, httpGateway, jsonOption, timeoutOption, tokenOption, type DeclaredCommand } from './commands.js';

interface FrameworkRow {
  name: string;
  default: boolean;
  state: string;
  inFlight: number;
  maxConcurrency: number;
  recentLatencyMs?: number | null;
  endpoints: Array<{ endpoint: string; state: string; failedChecks?: number }>;
}

export const frameworksCommand: DeclaredCommand = {
  name: 'frameworks',
  summary: "list the gateway's frameworks: state, endpoints, requests in flight, recent latency",
  define(cmd, io) {
    cmd
      .addOption(gatewayOption(DEFAULT_HTTP_GATEWAY, 'its HTTP door'))
      .addOption(timeoutOption(5_000))
      .addOption(tokenOption())
      .addOption(jsonOption())
      .action(async (o) => {
        const base = httpGateway(o.gateway, 'frameworks');
        using deadline = new Deadline(o.timeoutMs);
        const res = await fetch(`${base}/v1/frameworks`, { headers: authHeaders(o.token), signal: deadline.signal });
        const body = (await res.json()) as { frameworks: FrameworkRow[]; error?: { code?: string; message?: string } };
        if (!res.ok) throw new GatewayError(res.status === 401 ? 'unauthorized' : 'bad_request', body.error?.message ?? `HTTP ${res.status} from ${base}/v1/frameworks`);
        if (o.json) {
          io.out(JSON.stringify(body, null, 2));
          return;
        }
        const rows = [['FRAMEWORK', 'STATE', 'IN FLIGHT', 'LATENCY', 'ENDPOINTS']];
        for (const f of body.frameworks) {
          rows.push([
            f.name + (f.default ? ' *' : ''),
            f.state,
            `${f.inFlight}/${f.maxConcurrency}`,
            f.recentLatencyMs === undefined || f.recentLatencyMs === null ? '-' : `${f.recentLatencyMs.toFixed(2)} ms`,
            f.endpoints.map((e) => `${e.endpoint} (${e.state}${e.failedChecks ? `, ${e.failedChecks} missed check${e.failedChecks === 1 ? '' : 's'}` : ''})`).join(', ') || '-',
          ]);
        }
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        for (const r of rows) io.out(r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
        io.out('(* = default framework)');
      });
  },
};
