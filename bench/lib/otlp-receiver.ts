// For tests and benchmarks (bench/telemetry-overhead.ts): a tiny OTLP/HTTP receiver on 127.0.0.1 (node:http) that accepts what the real
// @opentelemetry/exporter-*-otlp-http exporters send (OTLP JSON, optionally gzip) and keeps the spans and
// metric names it decoded. Protobuf bodies are answered 415, so a misconfigured exporter fails loudly.
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  serviceName: string | undefined;
  attributes: Record<string, unknown>;
}

export interface ReceivedMetric {
  name: string;
  serviceName: string | undefined;
  /** Attribute sets of the data points. */
  points: Array<Record<string, unknown>>;
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:43123 */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly metrics: ReceivedMetric[];
  /** Requests that could not be decoded (content type and reason). */
  readonly rejected: string[];
  /** Resolves once `predicate` holds for the spans received (polls on every request). */
  waitForSpans(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  waitForMetrics(predicate: (metrics: ReceivedMetric[]) => boolean, timeoutMs?: number): Promise<ReceivedMetric[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}
interface JsonKeyValue {
  key: string;
  value: JsonAnyValue;
}

function anyValue(v: JsonAnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

function attributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** OTLP JSON encodes ids as hex; accept base64 too (the protobuf-JSON mapping some senders use). */
function hexId(id: string | undefined, bytes: number): string | undefined {
  if (!id) return undefined;
  if (new RegExp(`^[0-9a-f]{${bytes * 2}}$`, 'i').test(id)) return id.toLowerCase();
  const buf = Buffer.from(id, 'base64');
  return buf.length === bytes ? buf.toString('hex') : id;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const rejected: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        const body = await readBody(req);
        const type = String(req.headers['content-type'] ?? '');
        if (req.method !== 'POST' || !type.includes('json')) {
          rejected.push(`${req.method} ${req.url} ${type}`);
          res.writeHead(415).end();
          return;
        }
        const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        if (req.url === '/v1/traces') {
          type JsonSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind?: number; attributes?: JsonKeyValue[] };
          const resourceSpans = (doc.resourceSpans ?? []) as Array<{
            resource?: { attributes?: JsonKeyValue[] };
            scopeSpans?: Array<{ spans?: JsonSpan[] }>;
          }>;
          for (const rs of resourceSpans) {
            const serviceName = attributes(rs.resource?.attributes)['service.name'] as string | undefined;
            for (const ss of rs.scopeSpans ?? []) {
              for (const s of ss.spans ?? []) {
                spans.push({
                  traceId: hexId(s.traceId, 16) ?? '',
                  spanId: hexId(s.spanId, 8) ?? '',
                  parentSpanId: hexId(s.parentSpanId, 8),
                  name: s.name,
                  kind: s.kind ?? 0,
                  serviceName,
                  attributes: attributes(s.attributes),
                });
              }
            }
          }
        } else if (req.url === '/v1/metrics') {
          type JsonPoint = { attributes?: JsonKeyValue[] };
          type JsonMetric = { name: string; sum?: { dataPoints?: JsonPoint[] }; gauge?: { dataPoints?: JsonPoint[] }; histogram?: { dataPoints?: JsonPoint[] } };
          const resourceMetrics = (doc.resourceMetrics ?? []) as Array<{
            resource?: { attributes?: JsonKeyValue[] };
            scopeMetrics?: Array<{ metrics?: JsonMetric[] }>;
          }>;
          for (const rm of resourceMetrics) {
            const serviceName = attributes(rm.resource?.attributes)['service.name'] as string | undefined;
            for (const sm of rm.scopeMetrics ?? []) {
              for (const m of sm.metrics ?? []) {
                const points = (m.sum ?? m.gauge ?? m.histogram)?.dataPoints ?? [];
                metrics.push({ name: m.name, serviceName, points: points.map((p) => attributes(p.attributes)) });
              }
            }
          }
        } else {
          rejected.push(`POST ${req.url}`);
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        notify();
      } catch (err) {
        rejected.push(`decode error: ${(err as Error).message}`);
        res.writeHead(400).end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const waitFor = <T>(items: T[], predicate: (items: T[]) => boolean, timeoutMs: number, what: string): Promise<T[]> =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(items)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(items);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`otlp receiver: ${what} not received in ${timeoutMs} ms (got ${items.length}; rejected: ${rejected.join('; ')})`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    metrics,
    rejected,
    waitForSpans: (predicate, timeoutMs = 15_000) => waitFor(spans, predicate, timeoutMs, 'spans'),
    waitForMetrics: (predicate, timeoutMs = 15_000) => waitFor(metrics, predicate, timeoutMs, 'metrics'),
    close,
    [Symbol.asyncDispose]: close,
  };
}
