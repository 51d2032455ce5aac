"""Drives the Python SDK's clients (ZMQClient with shared memory, DirectClient) for test/shm/python-client.test.ts.

Reads one JSON command per line on stdin and answers one JSON line on stdout (errors as {"error": {...}}), so the
test can act between requests (revoke a lease, kill a worker). Runs on the SDK venv's python (the pip install).

ops:
  client {id, endpoint, shm_dir?, arena?}            a ZMQClient (with an ShmArena on shm_dir)
  direct {id, gateway, framework, shm_dir?, arena?}  a DirectClient
  digest {id, seed, framework?, odd?}                sends 'digest' with two camera images and a state; with odd, a
                                                     strided view and a big-endian array too; answers what was
                                                     sent (sha256 of the little-endian C-order bytes) and seen
  stale {endpoint, shm_dir}                          a stale descriptor by hand, then the current one
  bad {shm_dir}                                      inputs the arena refuses: a dtype outside the list, too large
  arena {shm_dir, lease_ms}                          an arena that places one request and stays (to be killed)
  sleep {ms}                                         (only to let a lease run past its length)
  close {id}
"""
import hashlib
import json
import sys
import time

import numpy as np

from physical_ai_worker import DirectClient, EncodeError, ShmArena, WorkerError, ZMQClient

clients = {}
arenas = []


def sha(arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def arena_for(cmd):
    if not cmd.get("shm_dir"):
        return None
    return ShmArena(cmd["shm_dir"], **cmd.get("arena", {}))


def observation(seed, odd):
    rng = np.random.default_rng(seed)
    images = {"cam_high": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), "cam_wrist": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)}
    data = {"images": images, "state": (np.arange(14, dtype=np.float32) / 10 + seed).astype(np.float32), "instruction": "pick"}
    if odd:
        images["cam_strided"] = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)[::2, ::-1]  # a view: not contiguous
        data["depth"] = rng.random((64, 64)).astype(">f4")  # big-endian
    return data


def sent_hashes(data):
    out = {"/data/images/%s" % k: sha(v) for k, v in data["images"].items()}
    out["/data/state"] = sha(data["state"])
    if "depth" in data:
        out["/data/depth"] = sha(data["depth"])
    return out


def run(cmd):
    op = cmd["op"]
    if op == "client":
        clients[cmd["id"]] = ZMQClient(cmd["endpoint"], timeout_ms=10000, shared_memory=arena_for(cmd))
        return {}
    if op == "direct":
        clients[cmd["id"]] = DirectClient(cmd["gateway"], framework=cmd.get("framework"), timeout_ms=10000, shared_memory=arena_for(cmd), renew_before_ms=cmd.get("renew_before_ms"))
        return {}
    if op == "digest":
        client = clients[cmd["id"]]
        data = observation(cmd["seed"], cmd.get("odd", False))
        fields = {"framework": cmd["framework"]} if cmd.get("framework") else {}
        result = client.request("digest", data, **fields)
        action = result["action"]
        # The demo policy: action[k][j] = float32(state[j] + float32(0.01 * (k + 1))).
        steps = np.array([0.01 * (k + 1) for k in range(16)], dtype=np.float32)
        expected = (data["state"][None, :] + steps[:, None]).astype(np.float32)
        worker = client.worker if isinstance(client, DirectClient) else client
        arena = worker._arena if worker is not None else None
        return {
            "sent": sent_hashes(data),
            "seen": result["arrays"],
            "worker_shm": result["shm"],
            "echo": sha(result["echo"]),
            "action_ok": bool(action.shape == (16, 14) and np.array_equal(action, expected)),
            "state": worker.shared_memory_state if worker is not None else None,
            "fallback": None if worker is None or worker.shm_fallback is None else {"code": worker.shm_fallback.code, "path": worker.shm_fallback.path},
            "stats": arena.stats() if arena is not None else None,
            "folder": arena.folder if arena is not None else None,
            "lease_id": client.lease["lease_id"] if isinstance(client, DirectClient) and client.lease else None,
            "leases_obtained": client.leases_obtained if isinstance(client, DirectClient) else None,
        }
    if op == "stale":
        arena = ShmArena(cmd["shm_dir"])
        arenas.append(arena)
        arena.open()
        first = arena.place(observation(1, False))
        first.release()
        second = arena.place(observation(2, False))  # the same slot, next generation
        # By hand, without a reply area (a reply's descriptors are read through the placement: ZMQClient does that).
        first_shm = dict(first.shm, reply=None)
        second_shm = dict((k, v) for k, v in second.shm.items() if k != "reply")
        first_shm.pop("reply")
        with ZMQClient(cmd["endpoint"], timeout_ms=10000) as plain:
            try:
                plain.request("digest", first.data, shm=first_shm)
                refused = None
            except WorkerError as err:
                refused = {"code": err.code, "path": err.path, "message": err.message}
            ok = plain.request("digest", second.data, shm=second_shm)
        second.release()
        return {"refused": refused, "ok_shm": ok["shm"], "generation": second.shm["reply"]["generation"]}
    if op == "bad":
        out = {}
        with ShmArena(cmd["shm_dir"]) as arena:
            try:
                arena.place({"images": {"cam": np.zeros((64, 64), dtype=np.complex64)}})
            except EncodeError as err:
                out["dtype"] = {"type": "EncodeError", "message": str(err)}
        with ShmArena(cmd["shm_dir"], max_bytes=256 * 1024) as arena:
            try:
                arena.place({"images": {"cam": np.zeros((480, 640, 3), dtype=np.uint8)}})
            except WorkerError as err:
                out["too_large"] = {"type": "WorkerError", "code": err.code, "path": err.path, "message": err.message}
        for kwargs in ({"min_bytes": -1}, {"lease_ms": 10}):
            try:
                ShmArena(cmd["shm_dir"], **kwargs)
            except ValueError as err:
                out.setdefault("options", []).append(str(err))
        return out
    if op == "arena":
        arena = ShmArena(cmd["shm_dir"], lease_ms=cmd["lease_ms"])
        arenas.append(arena)
        arena.open()
        placement = arena.place({"image": np.zeros((64, 64, 3), dtype=np.uint8)})
        return {"folder": arena.folder, "segment": placement.shm["reply"]["segment"]}
    if op == "sleep":
        time.sleep(cmd["ms"] / 1000.0)
        return {}
    if op == "close":
        clients.pop(cmd["id"]).close()
        return {}
    raise ValueError("unknown op %r" % op)


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            out = run(json.loads(line))
        except WorkerError as err:
            out = {"error": {"type": "WorkerError", "code": err.code, "path": err.path, "message": err.message}}
        except Exception as err:  # noqa: BLE001 - the test reads it
            out = {"error": {"type": type(err).__name__, "message": str(err)}}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    for c in clients.values():
        c.close()
    for a in arenas:
        a.close()


if __name__ == "__main__":
    main()
