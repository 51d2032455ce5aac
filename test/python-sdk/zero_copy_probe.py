"""Test-only handlers for the Python worker (loaded with --handler TYPE=zero_copy_probe:FN, PYTHONPATH=test/python-sdk).

views:   for every array in `data`, reports whether it is a view on a received zmq.Frame (not a copy).
boom:    raises RuntimeError (the worker must answer worker_error and keep serving).
sleep:   sleeps data.ms, returns data.id and how many sleep handlers ran at once (capacity tests).
context: returns what the handler sees in its RequestContext.
"""
import threading
import time

import numpy as np
import zmq


def _frame_of(arr):
    """Follows arr.base down to the memoryview numpy was built on; returns (memoryview, its owner)."""
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        return base, base.obj
    return None, base


def _address(a):
    return a.__array_interface__["data"][0]


def _walk(value, path, out):
    if isinstance(value, np.ndarray):
        mv, owner = _frame_of(value)
        report = {
            "dtype": str(value.dtype),
            "shape": list(value.shape),
            "owndata": bool(value.flags.owndata),
            "aligned": bool(value.flags.aligned),
            "base_is_not_none": value.base is not None,
            "owner": type(owner).__name__,
            "owner_is_zmq_frame": isinstance(owner, zmq.Frame),
            "within_frame": False,
        }
        if mv is not None and isinstance(owner, zmq.Frame):
            # The frame's own buffer, asked afresh from the zmq.Frame: where libzmq put the received bytes.
            frame_bytes = np.frombuffer(owner.buffer, dtype=np.uint8)
            start = _address(frame_bytes)
            end = start + frame_bytes.nbytes
            addr = _address(value)
            report["within_frame"] = bool(start <= addr and addr + value.nbytes <= end)
            report["frame_bytes"] = int(frame_bytes.nbytes)
            report["shares_memory"] = bool(np.shares_memory(value, frame_bytes))
        out[path] = report
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, path + "/" + str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, "%s/%d" % (path, i), out)


def views(data, ctx):
    out = {}
    _walk(data, "/data", out)
    return {"arrays": out, "copied_bytes": ctx.copied_bytes, "codec": ctx.codec}


def boom(data, ctx):
    raise RuntimeError("boom: %s" % (data,))


_lock = threading.Lock()
_running = [0]


def sleep(data, ctx):
    with _lock:
        _running[0] += 1
        concurrent = _running[0]
    try:
        time.sleep(float(data.get("ms", 0)) / 1000.0)
        with _lock:
            concurrent = max(concurrent, _running[0])
    finally:
        with _lock:
            _running[0] -= 1
    return {"id": data.get("id"), "concurrent": concurrent, "thread": threading.current_thread().name}


def context(data, ctx):
    return {
        "request_id": ctx.request_id,
        "type": ctx.type,
        "codec": ctx.codec,
        "traceparent": ctx.traceparent,
        "tracestate": ctx.tracestate,
        "timeout_ms": ctx.timeout_ms,
        "remaining_ms": ctx.remaining_ms(),
        "copied_bytes": ctx.copied_bytes,
    }
