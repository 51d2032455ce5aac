// V8 flags the gateway's own Node processes run with (the gateway, its embedded worker, the benchmark's servers).

/**
 * A larger initial old space. zeromq.js hands every received frame over to JS as external memory, and at
 * camera-sized messages (450 kB at L) V8's external-memory heuristic then forces a full collection every
 * ~150 requests on the small default heap: in profiles, garbage collection took about half of the gateway's
 * and the worker's busy time at L. With 128 MiB to start with, full collections drop ~5x and CPU per request
 * at L roughly halves (bench/results/analysis.md). The cost is up to ~128 MiB of heap per process before the
 * first full collection.
 */
export const RUNTIME_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
