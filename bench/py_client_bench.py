#!/usr/bin/python3
"""The Python SDK's client on the one-host paths, against the GR00T-style pyzmq round trip (groot_ref.py), in one
interleaved run. bench/py-client.ts starts the gateway and the worker and runs this; by hand:

    PYTHONPATH=docker/worker-sdk /usr/bin/python3 bench/py_client_bench.py --gateway tcp://127.0.0.1:5550 \\
        --framework py --shm-dir /dev/shm/physical-ai-gateway --payloads S,L,XL --rounds 5 --samples 300

Paths (1 request in flight, latency measured by this client around each call, µs):
  py-gateway-frames      ZMQClient → gateway ZMQ door → worker, binary frames
  py-gateway-shm         the same with ZMQClient(shared_memory=ShmArena(...))
  py-direct-lease-frames DirectClient: a lease from the gateway, then straight to the worker, frames
  py-direct-lease-shm    the same with shared memory
  groot-ref              groot_ref.py's REQ/REP pair (msgpack + .npy), its own server process
Each round runs every path on every payload (order rotated per round); a shared-memory path that fell back to frames
fails the run. Prints one JSON report.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import groot_ref  # noqa: E402

from physical_ai_worker import DirectClient, ShmArena, ZMQClient  # noqa: E402

PATHS = ("py-gateway-frames", "py-gateway-shm", "py-direct-lease-frames", "py-direct-lease-shm", "groot-ref")


def observation(name, seed):
    images, h, w = groot_ref.PAYLOADS[name]
    rng = np.random.default_rng(seed)
    obs = {"images": {}, "state": rng.uniform(-1, 1, groot_ref.DOF).astype(np.float32), "instruction": "pick up the cube"}
    for c in range(images):
        obs["images"]["cam%d" % c] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return obs


def quantiles(lat):
    lat = sorted(lat)
    q = lambda f: round(lat[min(len(lat) - 1, int(round(f * (len(lat) - 1))))], 1) if lat else None  # noqa: E731
    return {"n": len(lat), "p50_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gateway", required=True)
    p.add_argument("--framework", required=True)
    p.add_argument("--shm-dir", required=True)
    p.add_argument("--payloads", default="S,L,XL")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--samples", type=int, default=300, help="per path, payload and round")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--max-ms", type=float, default=3000.0, help="time cap per path, payload and round")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    payloads = args.payloads.split(",")

    clients = {
        "py-gateway-frames": ZMQClient(args.gateway, timeout_ms=10000),
        "py-gateway-shm": ZMQClient(args.gateway, timeout_ms=10000, shared_memory=ShmArena(args.shm_dir)),
        "py-direct-lease-frames": DirectClient(args.gateway, framework=args.framework, timeout_ms=10000),
        "py-direct-lease-shm": DirectClient(args.gateway, framework=args.framework, timeout_ms=10000, shared_memory=ShmArena(args.shm_dir)),
    }
    server, endpoint = groot_ref.start_server("tcp://127.0.0.1:*")
    ref = groot_ref.Client(endpoint)
    obs = dict((n, observation(n, args.seed)) for n in payloads)
    ref_obs = dict((n, groot_ref.make_observation(n, args.seed)) for n in payloads)
    lat = dict(((path, n), []) for path in PATHS for n in payloads)  # type: dict
    fw = {"framework": args.framework}

    def run(path, name, samples, out):
        if path == "groot-ref":
            got, errors = ref.run(ref_obs[name], samples, args.max_ms)
            if errors:
                raise SystemExit("groot-ref: %d bad replies" % errors)
            out.extend(got)
            return
        client = clients[path]
        deadline = time.perf_counter() + args.max_ms / 1000.0
        for _ in range(samples):
            t0 = time.perf_counter_ns()
            result = client.request("inference", obs[name], **({} if isinstance(client, DirectClient) else fw))
            t1 = time.perf_counter_ns()
            action = result.get("action") if isinstance(result, dict) else None
            if not isinstance(action, np.ndarray) or action.shape != (groot_ref.HORIZON, groot_ref.DOF):
                raise SystemExit("%s %s: bad reply %r" % (path, name, result))
            out.append((t1 - t0) / 1000.0)
            if time.perf_counter() >= deadline:
                break
        if path.endswith("-shm") and name != "S":
            c = client.worker if isinstance(client, DirectClient) else client
            if c is None or c.shared_memory_state != "on":
                raise SystemExit("%s %s: shared memory is %s (fell back to frames)" % (path, name, c and c.shared_memory_state))

    started = time.time()
    try:
        for path in PATHS:
            for name in payloads:
                run(path, name, args.warmup, [])
        for r in range(args.rounds):
            order = PATHS[r % len(PATHS):] + PATHS[:r % len(PATHS)]
            for name in payloads:
                for path in order:
                    run(path, name, args.samples, lat[(path, name)])
    finally:
        for c in clients.values():
            c.close()
        ref.close()
        server.wait(timeout=10)
    results = {}  # type: dict
    for name in payloads:
        ref_p50 = quantiles(lat[("groot-ref", name)])["p50_us"]
        for path in PATHS:
            q = quantiles(lat[(path, name)])
            q["vs_groot_p50"] = round(q["p50_us"] / ref_p50, 3) if ref_p50 else None
            results.setdefault(path, {})[name] = q
    print(json.dumps({"started": started, "seconds": round(time.time() - started, 1), "rounds": args.rounds, "samples": args.samples, "info": groot_ref.info(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
