// The benchmark matrix: paths (how a request travels), transports, workers, payloads and requests in flight,
// and the command-line flags that select them.
import { parseArgs } from 'node:util';
import { isPayloadName, type PayloadName } from './payloads.js';

export type Transport = 'tcp' | 'ipc';
export type WorkerKind = 'ts' | 'py';
export type PathKind = 'gateway-zmq' | 'gateway-http' | 'direct' | 'direct-lease' | 'raw' | 'pyref' | 'memcpy' | 'target-zmq' | 'target-http';

export interface PathDef {
  id: string;
  kind: PathKind;
  codec: 'binary' | 'msgpack' | 'json';
  label: string;
  /** Whether a worker (TS or Python SDK) is on the path. */
  usesWorker: boolean;
  /** Tensors of 4 KiB and more travel in shared memory (descriptors on the wire; negotiated, checked on). */
  shm?: boolean;
}

export const PATHS: readonly PathDef[] = [
  { id: 'gateway-zmq-binary', kind: 'gateway-zmq', codec: 'binary', label: 'gateway ZMQ door, binary frames', usesWorker: true },
  { id: 'gateway-zmq-msgpack', kind: 'gateway-zmq', codec: 'msgpack', label: 'gateway ZMQ door, msgpack in one frame', usesWorker: true },
  { id: 'gateway-zmq-json', kind: 'gateway-zmq', codec: 'json', label: 'gateway ZMQ door, original JSON', usesWorker: true },
  { id: 'gateway-http-msgpack', kind: 'gateway-http', codec: 'msgpack', label: 'gateway HTTP door, msgpack', usesWorker: true },
  { id: 'gateway-http-json', kind: 'gateway-http', codec: 'json', label: 'gateway HTTP door, JSON', usesWorker: true },
  { id: 'direct-binary', kind: 'direct', codec: 'binary', label: 'direct to worker, binary frames', usesWorker: true },
  { id: 'direct-msgpack', kind: 'direct', codec: 'msgpack', label: 'direct to worker, msgpack in one frame', usesWorker: true },
  { id: 'direct-json', kind: 'direct', codec: 'json', label: 'direct to worker, original JSON', usesWorker: true },
  { id: 'gateway-zmq-shm', kind: 'gateway-zmq', codec: 'binary', label: 'gateway ZMQ door, shared memory', usesWorker: true, shm: true },
  { id: 'direct-shm', kind: 'direct', codec: 'binary', label: 'direct to worker, shared memory', usesWorker: true, shm: true },
  { id: 'direct-lease-binary', kind: 'direct-lease', codec: 'binary', label: 'direct under a gateway lease, binary frames', usesWorker: true },
  { id: 'direct-lease-shm', kind: 'direct-lease', codec: 'binary', label: 'direct under a gateway lease, shared memory', usesWorker: true, shm: true },
  { id: 'memcpy', kind: 'memcpy', codec: 'binary', label: 'one memcpy of the request tensors, in process (reference)', usesWorker: false },
  { id: 'raw-zeromq', kind: 'raw', codec: 'binary', label: 'raw zeromq.js DEALER/ROUTER (reference)', usesWorker: false },
  { id: 'python-groot-ref', kind: 'pyref', codec: 'msgpack', label: 'Python pyzmq REQ/REP, GR00T msgpack+.npy (reference)', usesWorker: false },
  { id: 'target-zmq-binary', kind: 'target-zmq', codec: 'binary', label: 'target ZMQ, binary frames', usesWorker: false },
  { id: 'target-zmq-msgpack', kind: 'target-zmq', codec: 'msgpack', label: 'target ZMQ, msgpack in one frame', usesWorker: false },
  { id: 'target-zmq-json', kind: 'target-zmq', codec: 'json', label: 'target ZMQ, original JSON', usesWorker: false },
  { id: 'target-http-msgpack', kind: 'target-http', codec: 'msgpack', label: 'target HTTP, msgpack', usesWorker: false },
  { id: 'target-http-json', kind: 'target-http', codec: 'json', label: 'target HTTP, JSON', usesWorker: false },
];
export const PATH_BY_ID: ReadonlyMap<string, PathDef> = new Map(PATHS.map((p) => [p.id, p]));
const LOCAL_PATHS = PATHS.filter((p) => !p.kind.startsWith('target')).map((p) => p.id);

export interface BenchConfig {
  key: string;
  path: PathDef;
  transport: Transport;
  /** `ts`, `py`, or `-` when no worker is on the path (references, remote targets). */
  worker: WorkerKind | '-';
  payload: PayloadName;
  inflight: number;
  /** For target paths: the endpoint or URL. */
  target?: string;
}

export interface BenchOptions {
  quick: boolean;
  payloads: PayloadName[];
  paths: string[];
  /** Transports of the binary and raw paths. */
  transports: Transport[];
  /** Transports of the msgpack and JSON ZMQ paths (fewer by default: they are there to compare codecs). */
  codecTransports: Transport[];
  /** Transports of the Python reference pair. */
  refTransports: Transport[];
  workers: WorkerKind[];
  inflight: number[];
  rounds: number;
  /** Samples per configuration, over all rounds. */
  samples: number;
  /** Time cap per configuration per round, ms. */
  maxRoundMs: number;
  warmup: number;
  warmupMs: number;
  seed: number;
  outDir?: string;
  targets: string[];
  framework?: string;
  gatewayMetrics: boolean;
  profileDir?: string;
  /** Also run the JSON paths at more than 1 in flight (off by default: slow, and not a target). */
  jsonInflight: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [flags]      (tsx bench/run.ts [flags])

  --quick                   test mode: S and L, a few paths, tiny sample counts; writes to a temp dir
  --payloads S,M,L,XL       payload sizes (default all)
  --paths a,b,...           paths (default all local ones): ${LOCAL_PATHS.join(', ')}
  --transports tcp,ipc      transports of the binary and raw paths (default tcp,ipc)
  --codec-transports tcp    transports of the msgpack/JSON ZMQ paths (default tcp)
  --ref-transports tcp      transports of the Python GR00T-style reference pair (default tcp)
  --workers ts,py           workers behind the gateway and for direct paths (default ts,py)
  --inflight 1,8            requests in flight per client (default 1,8)
  --rounds 5                rounds; configurations are interleaved round-robin in each (default 5)
  --samples 2000            samples per configuration over all rounds (default 2000)
  --max-round-ms 500        time cap per configuration per round (default 500)
  --warmup 100              warm-up requests per configuration, discarded (default 100)
  --seed 1234               payload seed (default 1234)
  --out DIR                 where results go (default bench/results; --quick: a temp dir)
  --target URL              measure a running gateway or worker instead: zmq://host:port or http://host:port
                            (repeatable; starts nothing locally)
  --framework NAME          framework at the target (HTTP default: demo; ZMQ default: none = the default one)
  --no-gateway-metrics      run the local gateways without request metrics
  --json-inflight           also run the JSON paths at more than 1 in flight (default: 1 only)
  --profile-dir DIR         run the local gateways and TS workers under node --cpu-prof, profiles into DIR
  --help`;

function list(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer (got ${value})`);
  return n;
}

/** Parses the flags; throws an Error naming every bad flag. */
export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      payloads: { type: 'string' },
      paths: { type: 'string' },
      transports: { type: 'string' },
      'codec-transports': { type: 'string' },
      'ref-transports': { type: 'string' },
      workers: { type: 'string' },
      inflight: { type: 'string' },
      rounds: { type: 'string' },
      samples: { type: 'string' },
      'max-round-ms': { type: 'string' },
      warmup: { type: 'string' },
      'warmup-ms': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      target: { type: 'string', multiple: true },
      framework: { type: 'string' },
      'no-gateway-metrics': { type: 'boolean', default: false },
      'profile-dir': { type: 'string' },
      'json-inflight': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick!;
  const targets = values.target ?? [];
  const problems: string[] = [];
  const payloads = list(values.payloads, quick ? ['S', 'L'] : ['S', 'M', 'L', 'XL']);
  for (const p of payloads) if (!isPayloadName(p)) problems.push(`--payloads: unknown payload ${p} (S, M, L, XL)`);
  const defaultPaths = targets.length > 0 ? PATHS.filter((p) => p.kind.startsWith('target')).map((p) => p.id)
    : quick ? ['gateway-zmq-binary', 'gateway-http-msgpack', 'direct-binary', 'raw-zeromq', 'python-groot-ref'] : LOCAL_PATHS;
  const paths = list(values.paths, defaultPaths);
  for (const p of paths) if (!PATH_BY_ID.has(p)) problems.push(`--paths: unknown path ${p}`);
  const transportList = (v: string | undefined, fb: string[], flag: string): Transport[] => {
    const out = list(v, fb);
    for (const t of out) if (t !== 'tcp' && t !== 'ipc') problems.push(`--${flag}: ${t} is not tcp or ipc`);
    return out as Transport[];
  };
  const workers = list(values.workers, ['ts', 'py']);
  for (const w of workers) if (w !== 'ts' && w !== 'py') problems.push(`--workers: ${w} is not ts or py`);
  const inflight = list(values.inflight, ['1', '8']).map(Number);
  for (const n of inflight) if (!Number.isInteger(n) || n < 1) problems.push(`--inflight: ${n} is not a positive integer`);
  for (const t of targets) if (!/^(zmq|tcp|ipc|http):\/\//.test(t)) problems.push(`--target: ${t} is not zmq://host:port, ipc://path or http://host:port`);
  let opts: BenchOptions | undefined;
  try {
    opts = {
      quick,
      payloads: payloads as PayloadName[],
      paths,
      transports: transportList(values.transports, quick ? ['tcp'] : ['tcp', 'ipc'], 'transports'),
      codecTransports: transportList(values['codec-transports'], ['tcp'], 'codec-transports'),
      refTransports: transportList(values['ref-transports'], ['tcp'], 'ref-transports'),
      workers: workers as WorkerKind[],
      inflight,
      rounds: Math.max(1, positiveInt(values.rounds, quick ? 2 : 5, 'rounds')),
      samples: positiveInt(values.samples, quick ? 40 : 2_000, 'samples'),
      maxRoundMs: positiveInt(values['max-round-ms'], quick ? 300 : 500, 'max-round-ms'),
      warmup: positiveInt(values.warmup, quick ? 10 : 100, 'warmup'),
      warmupMs: positiveInt(values['warmup-ms'], quick ? 500 : 1_000, 'warmup-ms'),
      seed: positiveInt(values.seed, 1234, 'seed'),
      ...(values.out !== undefined ? { outDir: values.out } : {}),
      targets,
      ...(values.framework !== undefined ? { framework: values.framework } : {}),
      gatewayMetrics: !values['no-gateway-metrics'],
      ...(values['profile-dir'] !== undefined ? { profileDir: values['profile-dir'] } : {}),
      jsonInflight: values['json-inflight']!,
      help: values.help!,
    };
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0 || !opts) throw new Error(problems.join('\n'));
  return opts;
}

export function configKey(c: Omit<BenchConfig, 'key'>): string {
  return `${c.path.id}/${c.transport}/${c.worker}/${c.payload}/x${c.inflight}`;
}

/** Every configuration the options select, in a fixed order (payload, in flight, path, transport, worker). */
export function buildConfigs(o: BenchOptions): BenchConfig[] {
  const out: BenchConfig[] = [];
  const add = (c: Omit<BenchConfig, 'key'>) => out.push({ ...c, key: configKey(c) });
  for (const payload of o.payloads) {
    for (const inflight of o.inflight) {
      for (const id of o.paths) {
        const path = PATH_BY_ID.get(id)!;
        if (path.kind === 'target-zmq' || path.kind === 'target-http') {
          for (const target of o.targets) {
            const isHttp = target.startsWith('http://');
            if (isHttp !== (path.kind === 'target-http')) continue;
            const transport: Transport = target.startsWith('ipc://') ? 'ipc' : 'tcp';
            add({ path, transport, worker: '-', payload, inflight, target });
          }
          continue;
        }
        if (path.kind === 'memcpy') {
          if (inflight === 1) add({ path, transport: 'tcp', worker: '-', payload, inflight });
          continue;
        }
        if (path.kind === 'pyref') {
          if (inflight !== 1) continue; // REQ/REP: one request at a time
          for (const transport of o.refTransports) add({ path, transport, worker: '-', payload, inflight });
          continue;
        }
        if (path.codec === 'json' && inflight > 1 && !o.jsonInflight) continue;
        const transports: Transport[] = path.kind === 'gateway-http' ? ['tcp'] : path.codec === 'binary' ? o.transports : o.codecTransports;
        for (const transport of transports) {
          if (!path.usesWorker) add({ path, transport, worker: '-', payload, inflight });
          else for (const worker of o.workers) add({ path, transport, worker, payload, inflight });
        }
      }
    }
  }
  return out;
}
