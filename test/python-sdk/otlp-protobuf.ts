// The Python SDK exports spans with opentelemetry-exporter-otlp-proto-http, the standard OTLP/HTTP exporter, which
// sends protobuf; the test receiver (bench/lib/otlp-receiver.ts) reads OTLP JSON, the encoding the gateway sends.
// This bridge takes the protobuf ExportTraceServiceRequest, decodes the fields the receiver keeps (ids, name, kind,
// attributes, service.name; opentelemetry-proto's trace.proto field numbers) and posts them on as OTLP JSON.
import { createServer, type Server } from 'node:http';

type Field = { no: number; wire: number; bytes?: Uint8Array; int?: bigint };

/** The top-level fields of one protobuf message (varint, fixed64, length-delimited, fixed32). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('truncated protobuf');
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, int: varint() });
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      out.push({ no, wire, bytes: buf.subarray(pos, pos + n) });
      pos += n;
    } else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, bytes: buf.subarray(pos, pos + n) });
      pos += n;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');
const all = (msg: Field[], no: number) => msg.filter((f) => f.no === no);
const one = (msg: Field[], no: number) => msg.find((f) => f.no === no);

/** AnyValue: 1 string, 2 bool, 3 int, 4 double. */
function anyValue(msg: Field[]): Record<string, unknown> {
  const f = msg[0];
  if (!f) return {};
  if (f.no === 1) return { stringValue: text(f.bytes) };
  if (f.no === 2) return { boolValue: f.int !== 0n };
  if (f.no === 3) return { intValue: String(f.int) };
  if (f.no === 4) return { doubleValue: Buffer.from(f.bytes!).readDoubleLE(0) };
  return {};
}

/** KeyValue: 1 key, 2 value. */
const keyValues = (list: Field[]) =>
  list.map((kv) => {
    const m = fields(kv.bytes!);
    return { key: text(one(m, 1)?.bytes), value: anyValue(fields(one(m, 2)?.bytes ?? new Uint8Array())) };
  });

/** ExportTraceServiceRequest (1: ResourceSpans) → the OTLP JSON document. */
export function traceRequestToJson(body: Uint8Array): Record<string, unknown> {
  return {
    resourceSpans: all(fields(body), 1).map((rs) => {
      const rsm = fields(rs.bytes!); // ResourceSpans: 1 resource, 2 scope_spans
      const resource = fields(one(rsm, 1)?.bytes ?? new Uint8Array()); // Resource: 1 attributes
      return {
        resource: { attributes: keyValues(all(resource, 1)) },
        scopeSpans: all(rsm, 2).map((ss) => ({
          // ScopeSpans: 2 spans. Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes.
          spans: all(fields(ss.bytes!), 2).map((sp) => {
            const s = fields(sp.bytes!);
            const parent = one(s, 4)?.bytes;
            return {
              traceId: hex(one(s, 1)?.bytes),
              spanId: hex(one(s, 2)?.bytes),
              ...(parent && parent.length > 0 ? { parentSpanId: hex(parent) } : {}),
              name: text(one(s, 5)?.bytes),
              kind: Number(one(s, 6)?.int ?? 0n),
              attributes: keyValues(all(s, 9)),
            };
          }),
        })),
      };
    }),
  };
}

export interface ProtobufBridge {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  close(): Promise<void>;
}

/** Accepts protobuf OTLP/HTTP trace exports and forwards each as OTLP JSON to `receiverUrl`/v1/traces. */
export async function startProtobufBridge(receiverUrl: string): Promise<ProtobufBridge> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('protobuf')) {
        res.writeHead(415).end();
        return;
      }
      try {
        const forwarded = await fetch(`${receiverUrl}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(traceRequestToJson(Buffer.concat(chunks))),
        });
        await forwarded.arrayBuffer();
        // An empty body is a valid ExportTraceServiceResponse.
        res.writeHead(forwarded.status, { 'content-type': 'application/x-protobuf' }).end();
      } catch {
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
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
