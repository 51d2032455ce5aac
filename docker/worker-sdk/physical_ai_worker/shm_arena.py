"""Same-host shared memory, the client's side: the writer that ``shm.py`` (the worker) and the gateway read.

The on-disk format and the ownership rules are the TypeScript client's (src/shm/shm-arena.ts, shm-root.ts,
src/protocol/shm-descriptor.ts), so a Python client works with the TS gateway, Python workers and TS workers:

- a folder ``<root>/<client>`` (mode 0700) per client, under a root whose ``realm`` file names the memory domain;
- ``lease.json`` (mode 0600, written whole then renamed): ``pid``, ``pidns``, ``boot``, ``start`` (the process's
  start in clock ticks), ``lease_ms`` and a random ``key`` that every request must carry; its mtime is renewed
  three times per lease length by a background thread, so janitors (the gateway's, the workers', other clients')
  leave a live client alone and remove a dead one's folder;
- slot files ``<n>.slot`` (mode 0600, 64 KiB times a power of two) that start with a 64-byte header: magic
  ``PAIS`` (u32 LE), layout 1 (u32 LE), generation (u64 LE at byte 8). Tensors start at 64-byte aligned offsets;
  the rest of the slot is lent to the worker as the reply area. Each reuse bumps the generation, so a worker
  holding an old descriptor refuses instead of reading newer data.

Usually a ``ZMQClient(..., shared_memory=ShmArena())`` uses it; by hand::

    arena = ShmArena("/dev/shm/physical-ai-gateway")
    arena.open()                                  # -> the realm; a worker's health.shm_realm must equal it
    placement = arena.place({"images": {"cam": image}, "state": state})
    try:
        send(type="inference", data=placement.data, shm=placement.shm)   # descriptors, not bytes
        reply = decode_message(frames, reply=placement)                  # result tensors copied out of the slot
    finally:
        placement.release()                       # the slot is reused by a later request (new generation)
    arena.close()                                 # removes the folder

The one copy: each array is copied once, by numpy, into the mapped slot (strided and big-endian arrays included:
they land C-ordered little-endian, the bytes the frame path would send). Not thread-safe per placement; ``place``
and ``release`` may be called from several threads.
"""
from __future__ import annotations

import atexit
import json
import mmap
import os
import secrets
import shutil
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .codec import EncodeError, _wire_name
from .protocol import MAX_RANK, NUMPY_DTYPES, TENSOR_KEY, WorkerError
from .shm import (
    DEFAULT_LEASE_MS,
    DEFAULT_SHM_DIR,
    GENERATION_OFFSET,
    LEASE_FILE,
    SLOT_HEADER_BYTES,
    SLOT_MAGIC,
    _process_start,
    _self_identity,
    open_realm,
    sweep,
)

#: Arrays smaller than this stay frames (a copy is cheaper than a descriptor), as in the TypeScript client.
DEFAULT_MIN_BYTES = 4096
#: Room lent to the worker for result arrays in every slot.
DEFAULT_REPLY_BYTES = 64 * 1024
#: Most bytes of slot files a client keeps; beyond it requests go as frames.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MIN_SLOT_BYTES = 64 * 1024
_ALIGN = 64
_NP = dict((name, np.dtype(spec).newbyteorder("<")) for name, spec in NUMPY_DTYPES.items())


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _client_name() -> str:
    pid, digits, out = os.getpid(), "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        pid, r = divmod(pid, 36)
        out = digits[r] + out
        if pid == 0:
            break
    return "c%s-%s" % (out, secrets.token_hex(6))


class _Slot(object):
    __slots__ = ("name", "size", "mm", "array", "generation")

    def __init__(self, name: str, size: int, mm: mmap.mmap):
        self.name = name
        self.size = size
        self.mm = mm
        self.array = np.frombuffer(mm, dtype=np.uint8)
        self.generation = 0

    def set_generation(self, generation: int) -> None:
        self.generation = generation
        self.array[GENERATION_OFFSET:GENERATION_OFFSET + 8].view("<u8")[0] = generation


class Placement(object):
    """One request's shared memory: ``data`` (descriptors in place of the large arrays) and ``shm`` (the request's
    ``shm`` field) go into the request; ``view`` reads descriptors of the reply (``decode_message(..., reply=)``);
    ``release()`` gives the slot back (idempotent)."""

    __slots__ = ("data", "shm", "tensors", "bytes", "_arena", "_slot", "_generation", "_reply_at", "_released")

    def __init__(self, arena: "ShmArena", slot: _Slot, data: Any, shm: Dict[str, Any], tensors: int, nbytes: int, reply_at: int):
        self.data = data
        self.shm = shm
        self.tensors = tensors
        self.bytes = nbytes
        self._arena = arena
        self._slot = slot
        self._generation = slot.generation
        self._reply_at = reply_at
        self._released = False

    @property
    def segment(self) -> str:
        return "%s/%s" % (self._arena.client, self._slot.name)

    def view(self, ref: Dict[str, Any], path: str) -> np.ndarray:
        """A result array from the reply area: checked against this placement's slot and copied out (the slot is
        reused once the request ends). Raises WorkerError ``worker_error`` for a descriptor that is not ours."""
        loc = ref.get("shm")
        dtype = ref.get("dtype")
        shape = ref.get("shape")
        if not isinstance(loc, dict) or not isinstance(dtype, str) or dtype not in _NP or not isinstance(shape, list):
            raise WorkerError("worker_error", "%s: malformed shared-memory descriptor in the reply" % path, path)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape) or len(shape) > MAX_RANK:
            raise WorkerError("worker_error", "%s: bad shape in the reply's descriptor" % path, path)
        if self._released or self._arena._closed or loc.get("segment") != self.segment or loc.get("generation") != self._generation or self._slot.generation != self._generation:
            raise WorkerError("worker_error", "%s: the reply points at shared memory that is not this request's reply area (%s)" % (path, loc.get("segment")), path)
        offset = loc.get("offset")
        count = 1
        for d in shape:
            count *= d  # Python ints: numpy's int64 product wraps (2**62 * 4 == 0) and overflows
        nbytes = count * _NP[dtype].itemsize
        if not isinstance(offset, int) or offset < self._reply_at or offset + nbytes > self._slot.size or max(shape, default=0) >= 2 ** 63:
            raise WorkerError("worker_error", "%s: the reply's tensor lies outside the reply area" % path, path)
        return np.array(self._slot.array[offset:offset + nbytes].view(_NP[dtype]).reshape(tuple(shape)))

    def release(self) -> None:
        """Gives the slot back for reuse (its next request writes a new generation). Idempotent."""
        if self._released:
            return
        self._released = True
        self._arena._release(self._slot)


class ShmArena(object):
    """A client's shared-memory folder: ``open()``, ``place()`` per request, ``close()`` removes everything.

    root: the shared-memory root (default /dev/shm/physical-ai-gateway; the gateway's ``sharedMemory.dir`` and the
    worker's ``--shm-dir``). min_bytes: arrays of at least this size go to shared memory. reply_bytes: the reply area
    per request (0: none). reply_min_bytes: result arrays of at least this size come back through it (default
    min_bytes). max_bytes: slot bytes this client keeps at most. lease_ms: the lease length (renewed three times
    per length).
    """

    def __init__(
        self,
        root: str = DEFAULT_SHM_DIR,
        min_bytes: int = DEFAULT_MIN_BYTES,
        reply_bytes: int = DEFAULT_REPLY_BYTES,
        reply_min_bytes: Optional[int] = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lease_ms: int = DEFAULT_LEASE_MS,
    ):
        if min_bytes < 0 or reply_bytes < 0 or max_bytes <= 0 or lease_ms < 100 or (reply_min_bytes is not None and reply_min_bytes < 0):
            raise ValueError("shared memory: min_bytes, reply_bytes and reply_min_bytes must be >= 0, max_bytes > 0, lease_ms >= 100")
        self.root = root
        self.min_bytes = min_bytes
        self.reply_bytes = reply_bytes
        self.reply_min_bytes = min_bytes if reply_min_bytes is None else reply_min_bytes
        self.max_bytes = max_bytes
        self.lease_ms = lease_ms
        self.client = _client_name()
        self.realm = None  # type: Optional[str]
        #: Folders of gone owners this arena swept when it opened.
        self.swept = []  # type: List[str]
        self._key = secrets.token_hex(24)
        self._lock = threading.Lock()
        self._free = {}  # type: Dict[int, List[_Slot]]
        self._all = []  # type: List[_Slot]
        self._bytes = 0
        self._next = 0
        self._closed = False
        self._stop = threading.Event()
        self._renewer = None  # type: Optional[threading.Thread]
        self._pid = os.getpid()  # the folder's owner: a forked child inherits this object but not the folder

    @property
    def folder(self) -> str:
        return os.path.join(self.root, self.client)

    def open(self) -> str:
        """Creates the folder and its lease, sweeps folders of owners that are gone, starts renewing; returns the
        root's realm. Idempotent."""
        if self._closed:
            raise WorkerError("unavailable", "shared memory arena is closed")
        if self.realm is not None:
            return self.realm
        realm = open_realm(self.root)
        self.swept = sweep(self.root)
        os.mkdir(self.folder, 0o700)
        self._pid = os.getpid()
        pidns, boot = _self_identity()
        lease = {"pid": os.getpid(), "pidns": pidns, "boot": boot, "start": _process_start(os.getpid()), "lease_ms": self.lease_ms, "key": self._key}
        tmp = os.path.join(self.folder, "." + LEASE_FILE)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(lease, f)
        os.rename(tmp, os.path.join(self.folder, LEASE_FILE))
        self._renewer = threading.Thread(target=self._renew, name="paig-shm-lease", daemon=True)
        self._renewer.start()
        atexit.register(self.close)  # a script that ends without close(): no folder of slot files left in memory
        self.realm = realm
        return realm

    def _renew(self) -> None:
        path = os.path.join(self.folder, LEASE_FILE)
        interval = max(0.05, self.lease_ms / 3000.0)
        while not self._stop.wait(interval):
            try:
                os.utime(path, None)
            except OSError:
                pass  # removed under us (a janitor thought us gone): requests then fail at /shm and fall back

    def stats(self) -> Dict[str, int]:
        """Slots made, slots free, bytes of slot files."""
        with self._lock:
            return {"slots": len(self._all), "free": sum(len(v) for v in self._free.values()), "bytes": self._bytes}

    def place(self, data: Any) -> Optional[Placement]:
        """Copies the arrays of ``data`` of at least ``min_bytes`` into one slot and returns the placement (data
        with descriptors in their place). None when nothing is large enough, the arena is not open, or the byte
        budget is held by requests in flight (send frames). Raises EncodeError for an array the protocol cannot
        carry, WorkerError ``too_large`` when the request can never fit in ``max_bytes``."""
        if self.realm is None or self._closed or os.getpid() != self._pid:
            return None  # not open, or a forked child: the slots are the parent's (its free list is a copy)
        found = []  # type: List[Tuple[str, np.ndarray, str]]
        self._collect(data, "/data", found)
        if not found:
            return None
        need = SLOT_HEADER_BYTES
        for _, arr, _ in found:
            need = _align(need) + arr.nbytes
        reply_at = _align(need)
        size = MIN_SLOT_BYTES
        while size < reply_at + self.reply_bytes:
            size *= 2
        if size > self.max_bytes:
            raise WorkerError("too_large", "shared memory: this request's arrays need a %d-byte slot; the arena keeps at most max_bytes=%d" % (size, self.max_bytes), "/data")
        slot = self._acquire(size)
        if slot is None:
            return None
        offsets = {}  # type: Dict[int, int]
        at = SLOT_HEADER_BYTES
        nbytes = 0
        try:
            for _, arr, name in found:
                at = _align(at)
                dest = slot.array[at:at + arr.nbytes].view(_NP[name]).reshape(arr.shape)
                np.copyto(dest, arr, casting="equiv")
                offsets[id(arr)] = at
                at += arr.nbytes
                nbytes += arr.nbytes
        except BaseException:
            self._release(slot)
            raise
        segment = "%s/%s" % (self.client, slot.name)
        generation = slot.generation

        def descriptor(arr: np.ndarray, name: str) -> Dict[str, Any]:
            loc = {"segment": segment, "offset": offsets[id(arr)], "generation": generation}
            return {TENSOR_KEY: True, "dtype": name, "shape": list(arr.shape), "shm": loc}

        replaced = self._replace(data, descriptor)
        shm = {"client": self.client, "key": self._key}  # type: Dict[str, Any]
        if self.reply_bytes > 0:
            shm["reply"] = {"segment": segment, "offset": reply_at, "generation": generation, "bytes": slot.size - reply_at, "min_bytes": self.reply_min_bytes}
        return Placement(self, slot, replaced, shm, len(found), nbytes, reply_at)

    def _collect(self, value: Any, path: str, out: List[Tuple[str, np.ndarray, str]]) -> None:
        if isinstance(value, np.ndarray):
            if value.nbytes < self.min_bytes or value.nbytes == 0:
                return
            name = _wire_name(value.dtype)
            if name is None:
                raise EncodeError("%s: dtype %s is not in the protocol's dtype list (%s)" % (path, value.dtype, ", ".join(NUMPY_DTYPES)))
            if value.ndim > MAX_RANK:
                raise EncodeError("%s: %d dimensions; the protocol allows at most %d" % (path, value.ndim, MAX_RANK))
            if all(value is not seen for _, seen, _ in out):  # the same array twice: one copy, two descriptors
                out.append((path, value, name))
        elif isinstance(value, dict):
            for k, v in value.items():
                self._collect(v, "%s/%s" % (path, k), out)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if isinstance(v, (np.ndarray, dict, list, tuple)):
                    self._collect(v, "%s/%d" % (path, i), out)

    def _replace(self, value: Any, fn: Any) -> Any:
        """A copy of ``value`` with the placed arrays replaced (containers copied shallowly; the input untouched)."""
        if isinstance(value, np.ndarray):
            name = _wire_name(value.dtype) if value.nbytes >= self.min_bytes and value.nbytes > 0 else None
            return fn(value, name) if name is not None else value
        if isinstance(value, dict):
            return dict((k, self._replace(v, fn)) for k, v in value.items())
        if isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, dict, list, tuple)) for v in value):
            return [self._replace(v, fn) for v in value]
        return value

    def _acquire(self, size: int) -> Optional[_Slot]:
        with self._lock:
            free = self._free.get(size)
            slot = free.pop() if free else None
            if slot is None:
                if self._bytes + size > self.max_bytes:
                    return None
                name = "%s.slot" % np.base_repr(self._next, 36).lower()
                self._next += 1
                try:
                    fd = os.open(os.path.join(self.folder, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                except OSError:
                    return None  # the folder was removed under us (a janitor thought us gone): frames
                try:
                    # Reserved, not sparse: a full tmpfs (Docker's /dev/shm is 64 MiB by default) refuses here
                    # instead of killing the process with SIGBUS on the first write through the map.
                    if hasattr(os, "posix_fallocate"):  # not on macOS
                        os.posix_fallocate(fd, 0, size)
                    else:
                        os.ftruncate(fd, size)
                except OSError:
                    os.close(fd)
                    os.unlink(os.path.join(self.folder, name))
                    return None  # no room: frames
                try:
                    os.pwrite(fd, np.array([SLOT_MAGIC, 1], dtype="<u4").tobytes(), 0)
                    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                finally:
                    os.close(fd)
                slot = _Slot(name, size, mm)
                self._all.append(slot)
                self._bytes += size
            slot.set_generation(slot.generation + 1)
            return slot

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            if not self._closed:
                self._free.setdefault(slot.size, []).append(slot)

    def close(self) -> None:
        """Stops renewing, unmaps every slot and removes the folder. Idempotent. Also run at interpreter exit. In a
        forked child it only unmaps the child's copies: the folder stays its parent's."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slots, self._all, self._free = self._all, [], {}
        owner = os.getpid() == self._pid
        if owner:
            atexit.unregister(self.close)
        self._stop.set()
        if owner and self._renewer is not None:
            self._renewer.join()
        for slot in slots:
            del slot.array  # the view must go before the map can close
            try:
                slot.mm.close()
            except BufferError:
                pass  # a result view still points into it: the map goes with that view
        if self.realm is not None and owner:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "ShmArena":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
