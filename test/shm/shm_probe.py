"""Test-only handlers for shared-memory tests (--handler TYPE=shm_probe:FN, PYTHONPATH=test/shm).

digest: for every array in `data`, its sha256, dtype, shape, whether it is a read-only view on a mapped slot (its
        base chain ends at an mmap), and the demo action; `echo` returns the first image back (through the reply
        area when the client lent one).
hold:   sleeps data.ms first, then answers like digest (a request the client gives up on).
"""
import hashlib
import mmap
import sys
import time

import numpy as np

from physical_ai_worker import demo_action


def _owner(arr):
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return base


def _walk(value, path, out):
    if isinstance(value, np.ndarray):
        out[path] = {
            "sha256": hashlib.sha256(value.tobytes()).hexdigest(),
            "dtype": str(value.dtype),
            "shape": list(value.shape),
            "mapped": isinstance(_owner(value), mmap.mmap),
            "writeable": bool(value.flags.writeable),
        }
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, "%s/%s" % (path, k), out)


def digest(data, ctx):
    out = {}
    _walk(data, "/data", out)
    images = data.get("images") or {}
    first = images[sorted(images)[0]] if images else None
    result = {"arrays": out, "action": demo_action(np.asarray(data["state"], dtype=np.float32)), "shm": ctx.shm is not None}
    if first is not None:
        result["echo"] = np.array(first)  # a copy of the image: goes back through the reply area when it fits
    return result


def hold(data, ctx):
    sys.stderr.write("shm_probe.hold %s\n" % ctx.request_id)
    sys.stderr.flush()
    time.sleep(data.pop("ms", 0) / 1000.0)
    return digest(data, ctx)
