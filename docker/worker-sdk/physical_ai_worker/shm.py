"""Same-host shared memory for tensors: the worker's side (the layout is in src/shm/shm-root.ts).

A client (the TypeScript client library, the ROS bridge) writes large tensors into slot files of its own folder
under the shared-memory root and sends descriptors ``{"segment": "<client>/<slot>", "offset", "generation"}``;
the gateway forwards them untouched. Here the worker

- proves the request may use the folder: the request's ``shm.key`` must equal the key in the folder's lease
  (``lease.json``, mode 0600: only its owner, or root, can read it), and every descriptor must name that folder;
- maps the slot file once (``mmap``, cached; re-mapped when the file changed) and hands the handler a read-only
  numpy view on it: no copy;
- checks the slot's generation (u64 at byte 8 of the slot) against the descriptor's when decoding and again
  before replying, so a request whose slot the client already reused (it gave up on it) is refused, not answered
  from someone else's data;
- writes result arrays into the reply area the client lent (``shm.reply``), answering with descriptors;
- sweeps folders of owners that are gone (the same rule as the TypeScript janitor).
"""
from __future__ import annotations

import json
import mmap
import os
import re
import secrets
import shutil
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .protocol import NUMPY_DTYPES, TENSOR_KEY, WorkerError

DEFAULT_SHM_DIR = "/dev/shm/physical-ai-gateway"
DEFAULT_LEASE_MS = 5000
SLOT_HEADER_BYTES = 64
SLOT_MAGIC = 0x53494150
GENERATION_OFFSET = 8
LEASE_FILE = "lease.json"
REALM_FILE = "realm"
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
_NP = dict((name, np.dtype(spec)) for name, spec in NUMPY_DTYPES.items())
_WIRE = dict((np.dtype(spec).newbyteorder("<"), name) for name, spec in NUMPY_DTYPES.items())
_ALIGN = 64
#: Mapped slot files kept open at most (least recently used ones are dropped).
MAX_MAPPED = 256


def _bad(path: str, message: str) -> WorkerError:
    return WorkerError("bad_request", "%s: %s" % (path, message), path)


def _read_text(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def open_realm(root: str) -> str:
    """Creates the root (mode 1777) and its realm file if needed (atomically: link(2)); returns the realm."""
    os.makedirs(root, exist_ok=True)
    try:
        if os.stat(root).st_mode & 0o7777 != 0o1777:
            os.chmod(root, 0o1777)
    except PermissionError:
        pass
    path = os.path.join(root, REALM_FILE)
    realm = _read_text(path)
    if realm:
        return realm
    tmp = os.path.join(root, ".realm-%d-%s" % (os.getpid(), secrets.token_hex(4)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, secrets.token_hex(16).encode())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_text(path)


def _process_start(pid: int) -> str:
    stat = _read_text("/proc/%d/stat" % pid)
    fields = stat[stat.rfind(")") + 2:].split(" ")
    return fields[19] if len(fields) > 19 else ""


def _self_identity() -> Tuple[str, str]:
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return pidns, _read_text("/proc/sys/kernel/random/boot_id")


def sweep(root: str, lease_ms: int = DEFAULT_LEASE_MS, now: Optional[float] = None) -> List[str]:
    """Removes client folders whose owner is gone (lease not renewed for its length, or its process gone when it
    ran in our pid namespace). Returns the names removed."""
    now = time.time() if now is None else now
    pidns, boot = _self_identity()
    removed = []  # type: List[str]
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    for name in names:
        if name == REALM_FILE or name.startswith("."):
            continue
        folder = os.path.join(root, name)
        try:
            st = os.stat(folder)
            if not os.path.isdir(folder):
                continue
            stamp = st.st_mtime
            length = lease_ms
            lease_path = os.path.join(folder, LEASE_FILE)
            try:
                with open(lease_path, "r", encoding="utf-8") as f:
                    lease = json.load(f)
                length = max(1, int(lease.get("lease_ms", lease_ms)))
                stamp = os.stat(lease_path).st_mtime
                if pidns and lease.get("pidns") == pidns and lease.get("boot") == boot and _process_start(int(lease.get("pid", 0))) != lease.get("start"):
                    stamp = float("-inf")
            except (OSError, ValueError, TypeError):
                pass
        except OSError:
            continue
        if (now - stamp) * 1000.0 > length:
            shutil.rmtree(folder, ignore_errors=True)
            if not os.path.exists(folder):
                removed.append(name)
    return removed


class _Mapped(object):
    __slots__ = ("ino", "size", "mm", "array")

    def __init__(self, ino: int, size: int, mm: mmap.mmap):
        self.ino = ino
        self.size = size
        self.mm = mm
        self.array = np.frombuffer(mm, dtype=np.uint8)


class ShmRequest(object):
    """The shared memory one request uses: its client folder, the slots it read, and the reply area."""

    __slots__ = ("owner", "client", "reply", "slots")

    def __init__(self, owner: "SharedMemory", client: str, reply: Optional[Dict[str, Any]]):
        self.owner = owner
        self.client = client
        self.reply = reply
        #: segment -> generation, for the check before replying.
        self.slots = {}  # type: Dict[str, int]

    def view(self, ref: Dict[str, Any], path: str) -> np.ndarray:
        """A read-only numpy view on a descriptor's bytes (no copy), after every check."""
        return self.owner._view(self, ref, path)

    def check_generations(self) -> None:
        """Raises when a slot this request read was reused by its client meanwhile (the client gave up on it)."""
        for segment, generation in self.slots.items():
            now = self.owner._generation(segment, "/shm")
            if now != generation:
                raise _bad("/shm", "the client reused slot %s while the request ran (generation %d, now %d); not answering from it" % (segment, generation, now))

    def place_result(self, result: Any) -> Any:
        """Moves result arrays into the reply area (those of at least ``min_bytes`` that fit); returns the result
        with descriptors in their place. Without a reply area the result is returned as it is."""
        reply = self.reply
        if reply is None:
            return result
        segment = reply["segment"]
        m = self.owner._map(segment, "/shm/reply")
        if self.owner._generation(segment, "/shm/reply") != reply["generation"]:
            raise _bad("/shm/reply", "the reply area's slot was reused (generation changed)")
        state = {"at": reply["offset"], "end": reply["offset"] + reply["bytes"]}
        if state["end"] > m.size:
            raise _bad("/shm/reply/bytes", "the reply area ends past the slot file (%d > %d)" % (state["end"], m.size))
        min_bytes = reply.get("min_bytes", 0)
        fds = []  # type: List[int]

        def reserved(at: int, nbytes: int) -> bool:
            # A slot file may be sparse (the TypeScript client makes them with ftruncate): on a full tmpfs a write
            # through the map would kill this worker with SIGBUS. Reserved first, or the array goes as a frame.
            try:
                if not fds:
                    fds.append(os.open(os.path.join(self.owner.root, segment), os.O_RDWR))
                if hasattr(os, "posix_fallocate"):  # not on macOS
                    os.posix_fallocate(fds[0], at, nbytes)
                return True
            except OSError:
                return False

        def place(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                name = _WIRE.get(value.dtype.newbyteorder("<") if value.dtype.byteorder == ">" else value.dtype)
                at = (state["at"] + _ALIGN - 1) // _ALIGN * _ALIGN
                if name is None or value.nbytes < min_bytes or value.nbytes == 0 or at + value.nbytes > state["end"]:
                    return value
                if not reserved(at, value.nbytes):
                    return value
                dest = m.array[at:at + value.nbytes].view(_NP[name]).reshape(value.shape)
                np.copyto(dest, value, casting="no" if value.dtype.byteorder != ">" else "equiv")
                state["at"] = at + value.nbytes
                return {TENSOR_KEY: True, "dtype": name, "shape": list(value.shape), "shm": {"segment": segment, "offset": at, "generation": reply["generation"]}}
            if isinstance(value, dict):
                return dict((k, place(v)) for k, v in value.items())
            if isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, dict, list, tuple)) for v in value):
                return [place(v) for v in value]
            return value

        try:
            return place(result)
        finally:
            for fd in fds:
                os.close(fd)


class SharedMemory(object):
    """The worker's view of one shared-memory root. Thread-safe for concurrent requests (the cache is guarded)."""

    def __init__(self, root: str = DEFAULT_SHM_DIR, lease_ms: int = DEFAULT_LEASE_MS):
        import threading

        self.root = root
        self.lease_ms = lease_ms
        self.realm = open_realm(root)
        self._lock = threading.Lock()
        self._maps = OrderedDict()  # type: OrderedDict[str, _Mapped]
        self._keys = {}  # type: Dict[str, Tuple[int, str]]
        self._last_sweep = 0.0

    def open_request(self, field: Any) -> ShmRequest:
        """Checks a request's ``shm`` field (client folder, lease key, reply area) and returns its ShmRequest."""
        if not isinstance(field, dict):
            raise _bad("/shm", "a request with shared-memory tensors needs 'shm': {client, key}")
        client = field.get("client")
        key = field.get("key")
        if not isinstance(client, str) or _NAME.match(client) is None:
            raise _bad("/shm/client", "must be a client folder name")
        if not isinstance(key, str) or not secrets.compare_digest(key.encode(), self._lease_key(client).encode()):
            raise WorkerError("unauthorized", "/shm/key: does not match the lease of client folder %r" % client, "/shm/key")
        reply = field.get("reply")
        if reply is not None:
            if not isinstance(reply, dict):
                raise _bad("/shm/reply", "must be an object")
            self._check_location(reply, client, "/shm/reply")
            if not isinstance(reply.get("bytes"), int) or reply["bytes"] < 0:
                raise _bad("/shm/reply/bytes", "must be a non-negative integer")
            mb = reply.get("min_bytes", 0)
            if not isinstance(mb, int) or mb < 0:
                raise _bad("/shm/reply/min_bytes", "must be a non-negative integer")
        return ShmRequest(self, client, reply)

    def maybe_sweep(self) -> List[str]:
        """Sweeps at most once per lease length; drops mappings of removed folders."""
        now = time.time()
        if (now - self._last_sweep) * 1000.0 < self.lease_ms:
            return []
        self._last_sweep = now
        removed = sweep(self.root, self.lease_ms, now)
        if removed:
            with self._lock:
                for seg in [s for s in self._maps if s.split("/", 1)[0] in removed]:
                    del self._maps[seg]
                for client in removed:
                    self._keys.pop(client, None)
        return removed

    def close(self) -> None:
        """Forgets every mapping (the memory is unmapped once no array views it any more)."""
        with self._lock:
            self._maps.clear()
            self._keys.clear()

    # -- internals ---------------------------------------------------------------------------------------

    def _lease_key(self, client: str) -> str:
        path = os.path.join(self.root, client, LEASE_FILE)
        try:
            ino = os.stat(path).st_ino
        except OSError as err:
            raise WorkerError("bad_request", "/shm/client: no shared-memory folder %r under %s (another host, or not mounted here)" % (client, self.root), "/shm/client") from err
        with self._lock:
            cached = self._keys.get(client)
        if cached is not None and cached[0] == ino:
            return cached[1]
        try:
            with open(path, "r", encoding="utf-8") as f:
                key = str(json.load(f)["key"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise WorkerError("unauthorized", "/shm/key: cannot read the lease of client folder %r (%s)" % (client, err), "/shm/key") from err
        with self._lock:
            self._keys[client] = (ino, key)
        return key

    @staticmethod
    def _check_location(loc: Dict[str, Any], client: str, path: str) -> None:
        segment = loc.get("segment")
        if not isinstance(segment, str) or segment.count("/") != 1 or ".." in segment:
            raise _bad(path + "/segment", "must be '<client>/<slot>'")
        owner, slot = segment.split("/")
        if _NAME.match(owner) is None or _NAME.match(slot) is None:
            raise _bad(path + "/segment", "must be '<client>/<slot>'")
        if owner != client:
            raise WorkerError("unauthorized", "%s/segment: %r belongs to another client than %r" % (path, segment, client), path + "/segment")
        for field in ("offset", "generation"):
            v = loc.get(field)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise _bad(path + "/" + field, "must be a non-negative integer")
        if loc["offset"] < SLOT_HEADER_BYTES:
            raise _bad(path + "/offset", "must be >= %d" % SLOT_HEADER_BYTES)

    def _map(self, segment: str, path: str) -> _Mapped:
        file = os.path.join(self.root, segment)
        try:
            st = os.stat(file)
        except OSError as err:
            raise _bad(path + "/segment", "no slot file %s (gone, or another host)" % segment) from err
        with self._lock:
            m = self._maps.get(segment)
            if m is not None and m.ino == st.st_ino and m.size == st.st_size:
                self._maps.move_to_end(segment)
                return m
        if st.st_size < SLOT_HEADER_BYTES:
            raise _bad(path + "/segment", "slot file %s is smaller than its header" % segment)
        try:
            fd = os.open(file, os.O_RDWR)
        except PermissionError as err:
            message = "%s/segment: cannot open slot file %s (the worker runs as another user than the client?)" % (path, segment)
            raise WorkerError("unauthorized", message, path + "/segment") from err
        except OSError as err:
            raise _bad(path + "/segment", "cannot open slot file %s: %s" % (segment, err.strerror)) from err
        try:
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as err:
            raise _bad(path + "/segment", "cannot map slot file %s: %s" % (segment, err)) from err
        finally:
            os.close(fd)
        m = _Mapped(st.st_ino, st.st_size, mm)
        if int(m.array[:4].view("<u4")[0]) != SLOT_MAGIC:
            raise _bad(path + "/segment", "%s is not a slot file (bad magic)" % segment)
        with self._lock:
            self._maps[segment] = m
            while len(self._maps) > MAX_MAPPED:
                self._maps.popitem(last=False)
        return m

    def _generation(self, segment: str, path: str) -> int:
        m = self._map(segment, path)
        return int(m.array[GENERATION_OFFSET:GENERATION_OFFSET + 8].view("<u8")[0])

    def _view(self, req: ShmRequest, ref: Dict[str, Any], path: str) -> np.ndarray:
        loc = ref.get("shm")
        if not isinstance(loc, dict):
            raise _bad(path + "/shm", "must be an object {segment, offset, generation}")
        self._check_location(loc, req.client, path + "/shm")
        dtype = ref.get("dtype")
        if not isinstance(dtype, str) or dtype not in _NP:
            raise _bad(path, "unknown dtype %s" % json.dumps(dtype, default=repr))
        shape = ref.get("shape")
        if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise _bad(path, "shape must be a list of at most 8 non-negative integers")
        np_dtype = _NP[dtype]
        count = 1
        for d in shape:
            count *= d
        nbytes = count * np_dtype.itemsize
        segment = loc["segment"]
        m = self._map(segment, path + "/shm")
        offset = loc["offset"]
        if offset + nbytes > m.size:
            raise _bad(path + "/shm/offset", "%s [%s] at %d ends past the slot (%d bytes)" % (dtype, ", ".join(map(str, shape)), offset, m.size))
        generation = int(m.array[GENERATION_OFFSET:GENERATION_OFFSET + 8].view("<u8")[0])
        if generation != loc["generation"]:
            raise _bad(path + "/shm/generation", "stale descriptor: slot %s is at generation %d, the descriptor names %d" % (segment, generation, loc["generation"]))
        req.slots[segment] = generation
        arr = m.array[offset:offset + nbytes].view(np_dtype).reshape(tuple(shape))
        arr.flags.writeable = False  # the client's memory: a policy must not write into it
        return arr
