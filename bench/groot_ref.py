#!/usr/bin/python3
"""Reference pair for the benchmark: a direct Python pyzmq REQ/REP round trip in the GR00T style (msgpack
envelope, numpy arrays as {"__ndarray_class__": True, "as_npy": <np.save bytes>}), client and server both in
Python, server in its own process (as GR00T's policy server is). It measures its own latencies.

    /usr/bin/python3 bench/groot_ref.py --info                 # versions as JSON
    /usr/bin/python3 bench/groot_ref.py --payloads S,L --samples 2000   # standalone: one JSON report
    /usr/bin/python3 bench/groot_ref.py --driven               # for bench/run.ts: commands on stdin

Driven mode reads one JSON command per line on stdin, {"payload": "L", "samples": 600, "max_ms": 400},
answers one JSON line {"payload": "L", "latencies_us": [...], "errors": 0}; EOF or {"quit": true} ends it.
Payload bytes come from numpy's PCG64 with a fixed seed (sizes equal to the TS payloads; bytes differ,
which does not matter for timing).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import msgpack
import numpy as np
import zmq

PAYLOADS = {
    "S": (0, 0, 0),
    "M": (1, 224, 224),
    "L": (3, 224, 224),
    "XL": (3, 480, 640),
}
DOF = 14
HORIZON = 16


# --- GR00T MsgSerializer, as in gr00t/eval/service.py (msgpack + .npy bytes) ---
def _encode_custom(obj):
    if isinstance(obj, np.ndarray):
        out = io.BytesIO()
        np.save(out, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": out.getvalue()}
    return obj


def _decode_custom(obj):
    if "__ndarray_class__" in obj:
        return np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
    return obj


def to_bytes(data) -> bytes:
    return msgpack.packb(data, default=_encode_custom)


def from_bytes(data: bytes):
    return msgpack.unpackb(data, object_hook=_decode_custom)


def make_observation(name: str, seed: int):
    images, h, w = PAYLOADS[name]
    rng = np.random.default_rng(seed)
    obs = {"state.joints": rng.uniform(-1, 1, DOF).astype(np.float32), "annotation.human.task_description": "pick up the cube"}
    for c in range(images):
        obs["video.cam%d" % c] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return obs


# --- server: a REP socket answering get_action with a 16 x 14 float32 chunk (the demo policy) ---
def serve(endpoint: str) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    if endpoint.endswith(":*"):
        port = sock.bind_to_random_port(endpoint[: endpoint.rfind(":")])
        endpoint = endpoint[: endpoint.rfind(":")] + ":%d" % port
    else:
        sock.bind(endpoint)
    sys.stdout.write(json.dumps({"event": "listening", "endpoint": endpoint}) + "\n")
    sys.stdout.flush()
    parent = os.getppid()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    steps = (np.arange(1, HORIZON + 1, dtype=np.float32) * np.float32(0.01)).reshape(HORIZON, 1)
    try:
        while True:
            if not poller.poll(1000):
                if os.getppid() != parent:  # the client died without telling us
                    break
                continue
            request = from_bytes(sock.recv())
            if request.get("endpoint") == "kill":
                sock.send(to_bytes({"ok": True}))
                break
            try:
                data = request.get("data") or {}
                state = np.asarray(data["state.joints"], dtype=np.float32)
                for key, value in data.items():  # touch the images as a policy's preprocessing would see them
                    if key.startswith("video.") and (value.dtype != np.uint8 or value.ndim != 3):
                        raise ValueError("bad image %s" % key)
                reply = {"action": (state[None, :] + steps).astype(np.float32)}
            except Exception as err:  # GR00T answers {"error": text}
                reply = {"error": str(err)}
            sock.send(to_bytes(reply))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)
        ctx.term()
    return 0


class Client(object):
    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 30000)
        self.sock.connect(endpoint)

    def call(self, data) -> dict:
        self.sock.send(to_bytes({"endpoint": "get_action", "data": data}))
        return from_bytes(self.sock.recv())

    def run(self, obs, samples: int, max_ms: float):
        out = []
        errors = 0
        deadline = time.perf_counter() + max_ms / 1000.0 if max_ms > 0 else None
        for _ in range(samples):
            t0 = time.perf_counter_ns()
            reply = self.call(obs)
            t1 = time.perf_counter_ns()
            action = reply.get("action") if isinstance(reply, dict) else None
            if not isinstance(action, np.ndarray) or action.shape != (HORIZON, DOF):
                errors += 1
            else:
                out.append((t1 - t0) / 1000.0)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return out, errors

    def close(self):
        try:
            self.sock.send(to_bytes({"endpoint": "kill"}))
            self.sock.recv()
        except zmq.ZMQError:
            pass
        self.sock.close(0)
        self.ctx.term()


def start_server(endpoint: str):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", endpoint], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("reference server did not start")
    return proc, json.loads(line)["endpoint"]


def info() -> dict:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "numpy": np.__version__,
        "msgpack": ".".join(str(x) for x in msgpack.version),
    }


def default_endpoint(transport: str, tmp: str) -> str:
    return "ipc://%s/groot-ref.sock" % tmp if transport == "ipc" else "tcp://127.0.0.1:*"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--info", action="store_true", help="print versions as JSON and exit")
    p.add_argument("--serve", metavar="ENDPOINT", help="run only the REP server")
    p.add_argument("--driven", action="store_true", help="take commands on stdin (used by bench/run.ts)")
    p.add_argument("--transport", choices=("tcp", "ipc"), default="tcp")
    p.add_argument("--payloads", default="S,M,L,XL")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--max-ms", type=float, default=30000.0, help="time cap per payload (standalone)")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    if args.info:
        print(json.dumps(info()))
        return 0
    if args.serve:
        return serve(args.serve)
    tmp = tempfile.mkdtemp(prefix="paig-ref-")
    proc, endpoint = start_server(default_endpoint(args.transport, tmp))
    client = Client(endpoint)
    observations = {}

    def obs_for(name):
        if name not in observations:
            observations[name] = make_observation(name, args.seed)
        return observations[name]

    try:
        if args.driven:
            sys.stdout.write(json.dumps({"event": "ready", "endpoint": endpoint, "info": info()}) + "\n")
            sys.stdout.flush()
            for line in sys.stdin:
                cmd = json.loads(line)
                if cmd.get("quit"):
                    break
                lat, errors = client.run(obs_for(cmd["payload"]), int(cmd["samples"]), float(cmd.get("max_ms", 0)))
                sys.stdout.write(json.dumps({"payload": cmd["payload"], "latencies_us": [round(v, 2) for v in lat], "errors": errors}) + "\n")
                sys.stdout.flush()
        else:
            report = {"kind": "groot-style pyzmq REQ/REP, msgpack + .npy", "endpoint": endpoint, "info": info(), "results": {}}
            for name in args.payloads.split(","):
                obs = obs_for(name)
                client.run(obs, args.warmup, 0)
                lat, errors = client.run(obs, args.samples, args.max_ms)
                lat.sort()
                q = lambda f: lat[min(len(lat) - 1, int(round(f * (len(lat) - 1))))] if lat else None  # noqa: E731
                report["results"][name] = {"n": len(lat), "errors": errors, "p50_us": q(0.5), "p90_us": q(0.9), "p99_us": q(0.99), "p999_us": q(0.999), "max_us": lat[-1] if lat else None}
            print(json.dumps(report, indent=1))
    finally:
        client.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.unlink(os.path.join(tmp, "groot-ref.sock"))
        except OSError:
            pass
        os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
