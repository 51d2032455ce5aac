"""Encode and decode protocol messages: a header (msgpack or JSON) plus raw tensor frames. Pure: no I/O.

Mirrors src/protocol/codec.ts: the same three codecs, the same checks and the same error texts.

- ``binary``: msgpack header, ``{"__tensor__": True, "dtype", "shape", "frame": i}`` placeholders, the bytes
  of tensor ``i`` in frame ``i``. Decoding gives numpy arrays that are views on the received frames (no copy).
- ``msgpack``: the same header with the bytes inline (``"data": <bin>``), one frame.
- ``json``: JSON text header (first byte ``{``), tensors as nested lists (``ndarray.tolist()``).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple  # noqa: F401  (Set: in a type comment)

import msgpack
import numpy as np

from .protocol import DEFAULT_LIMITS, DTYPES, MAX_RANK, NUMPY_DTYPES, TENSOR_KEY, Limits, WorkerError

CODECS = ("binary", "msgpack", "json")

_JSON_FIRST_BYTE = 0x7B  # '{'
_NP_DTYPES = dict((name, np.dtype(spec)) for name, spec in NUMPY_DTYPES.items())
# numpy dtype (native or little-endian) -> wire name; big-endian arrays are byte-swapped before sending.
_WIRE_NAMES = dict((np.dtype(spec).newbyteorder("<"), name) for name, spec in NUMPY_DTYPES.items())


class Decoded(object):
    """A decoded message: the header with placeholders replaced by arrays, and how it was encoded."""

    __slots__ = ("header", "codec", "copied_bytes", "size_bytes", "shm")

    def __init__(self, header: Dict[str, Any], codec: str, copied_bytes: int, size_bytes: int, shm: Any = None):
        self.header = header
        #: The codec the sender used; a reply uses the same one.
        self.codec = codec
        #: Bytes copied because a tensor was not aligned for its element type (only with ``align=True``).
        self.copied_bytes = copied_bytes
        #: Total size of the message, all frames, in bytes.
        self.size_bytes = size_bytes
        #: The shared memory the request uses (a shm.ShmRequest), or None.
        self.shm = shm


def frame_buffer(frame: Any) -> memoryview:
    """A byte memoryview on a frame without copying: a zmq.Frame (``.buffer``), bytes, bytearray or memoryview."""
    buf = getattr(frame, "buffer", None)
    view = buf if isinstance(buf, memoryview) else memoryview(frame)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def check_limits(frames: Sequence[memoryview], limits: Limits = DEFAULT_LIMITS) -> int:
    """Raises ``too_large`` or ``bad_request`` when the frames break a limit. Returns the total byte size."""
    if len(frames) == 0:
        raise WorkerError("bad_request", "empty message: no header frame")
    if len(frames) > limits.max_frames:
        raise WorkerError("too_large", "message has %d frames; the limit is %d" % (len(frames), limits.max_frames))
    if frames[0].nbytes > limits.max_header_bytes:
        raise WorkerError("too_large", "header is %d bytes; the limit is %d" % (frames[0].nbytes, limits.max_header_bytes))
    size = 0
    for f in frames:
        size += f.nbytes
    if size > limits.max_message_bytes:
        raise WorkerError("too_large", "message is %d bytes; the limit is %d" % (size, limits.max_message_bytes))
    return size


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed (ext %d)" % code)


# A JSON string: a quote, runs of bytes that are neither quote nor backslash or escape pairs, a quote (the
# unrolled form, linear in the input). JSON has quotes outside strings nowhere, so this finds exactly the strings.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True when JSON text opens more than ``max_depth`` lists/objects at once (brackets inside strings do not count).

    Why scan before json.loads rather than only catch RecursionError: json.loads recurses in C once per level and
    gives up only near sys.getrecursionlimit(), so a header 900 levels deep still loads, and everything after it
    (_resolve, handlers, encode_message) recurses again. The scan works at C speed on the bytes (regex, translate,
    numpy): about 4 ms for the 1.9 MB JSON header of three 224x224x3 images (json.loads takes about 40 ms), and
    it allocates nothing per element.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if len(brackets) <= max_depth:
        return False
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == 0x5B) | (codes == 0x7B), np.int8(1), np.int8(-1))
    return int(np.cumsum(steps, dtype=np.int32).max()) > max_depth


def _nesting_exceeds(value: Any, max_depth: int) -> bool:
    """True when lists/dicts nest more than ``max_depth`` deep. Iterative: the value may be as deep as msgpack's
    own stack allows (1024), past Python's recursion limit."""
    stack = [(value, 1)]  # type: List[Tuple[Any, int]]
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            return True
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def _too_deep(limits: Limits) -> WorkerError:
    return WorkerError("bad_request", "header is nested deeper than %d levels (the limit)" % limits.max_depth, "/")


def _parse_header(frame: memoryview, limits: Limits) -> Tuple[Any, bool]:
    if frame.nbytes > 0 and frame[0] == _JSON_FIRST_BYTE:
        data = bytes(frame)
        if _json_depth_exceeds(data, limits.max_depth):
            raise _too_deep(limits)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise WorkerError("bad_request", "header is not valid UTF-8") from err
        try:
            return json.loads(text), True
        except RecursionError as err:  # not expected after the scan; a second line of defence
            raise _too_deep(limits) from err
        except ValueError as err:
            raise WorkerError("bad_request", "header is not valid JSON: %s" % err) from err
    try:
        raw = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=False,
            ext_hook=_no_ext,
            max_str_len=limits.max_header_bytes,
            max_bin_len=limits.max_message_bytes,
            max_array_len=limits.max_message_bytes,
            max_map_len=1 << 20,
            max_ext_len=0,
        )
    except msgpack.StackError as err:  # deeper than msgpack's own stack (1024 levels)
        raise _too_deep(limits) from err
    except Exception as err:  # msgpack raises ValueError, ExtraData, FormatError, TypeError...
        raise WorkerError("bad_request", "header is not valid msgpack: %s" % (str(err) or type(err).__name__)) from err
    # msgpack's C unpacker is not recursive and has no depth option: check what it built before anything recurses.
    if isinstance(raw, (dict, list)) and _nesting_exceeds(raw, limits.max_depth):
        raise _too_deep(limits)
    return raw, False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_shape(shape: Any, path: str) -> Tuple[int, ...]:
    """Checks a shape is a list of at most MAX_RANK non-negative integers; returns it as a tuple."""
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_RANK or not all(_is_int(d) and d >= 0 for d in shape):
        raise WorkerError("bad_request", "%s: shape must be a list of at most %d non-negative integers" % (path, MAX_RANK), path)
    return tuple(shape)


def view_tensor(dtype: Any, shape: Any, buf: memoryview, path: str, align: bool = False) -> Tuple[np.ndarray, int]:
    """A numpy view on ``buf`` (no copy) after checking dtype, shape and byte length.

    numpy reads unaligned memory correctly, so the view is kept even when the bytes are not aligned for the
    element size (``arr.flags.aligned`` is then False). libzmq places frames smaller than its 8 KiB receive
    batch inside a shared buffer at arbitrary offsets, so this happens to small tensors. With ``align=True``
    such bytes are copied once (for consumers that need aligned memory) and the copy is reported.
    Returns ``(array, copied_bytes)``.
    """
    if not isinstance(dtype, str) or dtype not in _NP_DTYPES:
        raise WorkerError(
            "bad_request", "%s: unknown dtype %s; expected one of %s" % (path, json.dumps(dtype, default=repr), ", ".join(DTYPES)), path
        )
    dims = check_shape(shape, path)
    np_dtype = _NP_DTYPES[dtype]
    count = 1
    for d in dims:
        count *= d
    expected = count * np_dtype.itemsize
    if buf.nbytes != expected:
        raise WorkerError(
            "bad_request",
            "%s: %s [%s] needs %d bytes, got %d" % (path, dtype, ", ".join(str(d) for d in dims), expected, buf.nbytes),
            path,
        )
    arr = np.frombuffer(buf, dtype=np_dtype, count=count).reshape(dims)
    if align and count > 0 and arr.__array_interface__["data"][0] % np_dtype.itemsize != 0:
        return arr.copy(), expected
    return arr, 0


class _ResolveState(object):
    __slots__ = ("frames", "used", "copied_bytes", "inline", "align", "shm", "shm_enabled")

    def __init__(self, frames: Sequence[memoryview], align: bool, shm: Any = None, shm_enabled: bool = False):
        self.frames = frames
        self.shm = shm
        self.shm_enabled = shm_enabled
        self.align = align
        self.used = set()  # type: Set[int]
        self.copied_bytes = 0
        self.inline = 0


def _resolve_tensor(ref: Dict[str, Any], state: _ResolveState, path: str) -> np.ndarray:
    frame = ref.get("frame")
    data = ref.get("data")
    shm = ref.get("shm")
    if sum(1 for v in (frame, data, shm) if v is not None) > 1:
        raise WorkerError("bad_request", "%s: a tensor has either 'frame' or 'data' or 'shm', not several" % path, path)
    if shm is not None:
        if state.shm is None and state.shm_enabled:
            raise WorkerError("bad_request", "%s: a shared-memory tensor needs the request's 'shm' field {client, key}" % path, "/shm")
        if state.shm is None:
            raise WorkerError("bad_request", "%s: a shared-memory tensor, but this worker takes no shared memory (start it with a shared-memory folder)" % path, "/shm")
        return state.shm.view(ref, path)
    if frame is not None:
        if not _is_int(frame) or frame < 1:
            raise WorkerError("bad_request", "%s: 'frame' must be an integer >= 1" % path, path)
        if frame >= len(state.frames):
            raise WorkerError(
                "bad_request",
                "%s: refers to frame %d but the message has %d tensor frames" % (path, frame, len(state.frames) - 1),
                path,
            )
        if frame in state.used:
            raise WorkerError("bad_request", "%s: frame %d is referenced twice" % (path, frame), path)
        state.used.add(frame)
        arr, copied = view_tensor(ref.get("dtype"), ref.get("shape"), state.frames[frame], path, state.align)
        state.copied_bytes += copied
        return arr
    if isinstance(data, (bytes, bytearray, memoryview)):
        state.inline += 1
        arr, copied = view_tensor(ref.get("dtype"), ref.get("shape"), memoryview(data), path, state.align)
        state.copied_bytes += copied
        return arr
    raise WorkerError("bad_request", "%s: a tensor needs 'frame' (binary codec), 'data' bytes (msgpack codec) or 'shm' (shared memory)" % path, path)


def _resolve(value: Any, state: _ResolveState, path: str) -> Any:
    if isinstance(value, list):
        if len(value) == 0 or _is_number(value[0]):
            return value  # a number list: nothing inside to resolve
        for i in range(len(value)):
            value[i] = _resolve(value[i], state, "%s/%d" % (path, i))
        return value
    if not isinstance(value, dict):
        return value
    if value.get(TENSOR_KEY) is True:
        return _resolve_tensor(value, state, path)
    for key in list(value.keys()):
        value[key] = _resolve(value[key], state, "%s/%s" % (path, key))
    return value


def decode_message(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS, align: bool = False, shm: Any = None, reply: Any = None) -> Decoded:
    """Decodes any of the three codecs (frames after the routing envelope).

    Tensor placeholders become numpy arrays that are views on the frames (no copy; ``align=True`` copies
    tensors whose bytes are misaligned for their dtype, and counts it). With ``shm`` (a shm.SharedMemory),
    shared-memory descriptors become read-only views on the mapped slots, once the request's ``shm`` field proves
    the folder is the sender's. With ``reply`` (a client's shm_arena.Placement), descriptors in a reply are read
    from the reply area the request lent (copied out: the slot is reused). Raises WorkerError ``too_large``,
    ``bad_request`` or ``unauthorized`` naming what is wrong.
    """
    views = [frame_buffer(f) for f in frames]
    size_bytes = check_limits(views, limits)
    raw, is_json = _parse_header(views[0], limits)
    if not isinstance(raw, dict):
        raise WorkerError("bad_request", "header must be a map/object", "/")
    request_shm = shm.open_request(raw["shm"]) if shm is not None and "shm" in raw else None
    state = _ResolveState(views, align, request_shm if reply is None else reply, shm is not None)
    header = _resolve(raw, state, "")
    if len(state.used) != len(views) - 1:
        raise WorkerError(
            "bad_request", "message has %d tensor frames but the header references %d" % (len(views) - 1, len(state.used))
        )
    codec = "json" if is_json else ("msgpack" if state.inline > 0 and len(views) == 1 else "binary")
    return Decoded(header, codec, state.copied_bytes, size_bytes, request_shm)


def as_array(value: Any, dtype: str, path: str = "value") -> np.ndarray:
    """An ndarray of ``dtype`` from a decoded value: a received array (returned as is, no copy, when its dtype
    matches) or a nested number list from the JSON codec (converted, checking it is rectangular)."""
    np_dtype = _NP_DTYPES.get(dtype)
    if np_dtype is None:
        raise ValueError("unknown dtype %r" % dtype)
    if isinstance(value, np.ndarray):
        if value.dtype.newbyteorder("<") == np_dtype:
            return value
        raise WorkerError("bad_request", "%s: expected %s, got %s" % (path, dtype, _wire_name(value.dtype) or str(value.dtype)), path)
    if isinstance(value, list):
        try:
            arr = np.array(value, dtype=np_dtype)
        except (ValueError, TypeError, OverflowError) as err:
            raise WorkerError("bad_request", "%s: not a rectangular list of numbers (%s)" % (path, err), path) from err
        return arr
    raise WorkerError("bad_request", "%s: expected an array" % path, path)


def _wire_name(dt: np.dtype) -> Optional[str]:
    if dt.byteorder == ">":
        dt = dt.newbyteorder("<")
    return _WIRE_NAMES.get(dt)


class EncodeError(TypeError):
    """A value in a header cannot be encoded (for example an array of a dtype outside the list)."""


def _wire_array(arr: np.ndarray, path: str) -> Tuple[np.ndarray, str]:
    """The array as little-endian C-contiguous bytes, copying only when it is not already."""
    name = _wire_name(arr.dtype)
    if name is None:
        raise EncodeError("%s: dtype %s is not in the protocol's dtype list (%s)" % (path, arr.dtype, ", ".join(DTYPES)))
    if arr.ndim > MAX_RANK:
        raise EncodeError("%s: %d dimensions; the protocol allows at most %d" % (path, arr.ndim, MAX_RANK))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr, name


def _byte_view(arr: np.ndarray) -> memoryview:
    """A 1-D byte memoryview on a C-contiguous array: what zmq sends, no copy."""
    return memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type,unused-ignore]  # numpy >= 2.3 stubs lack the buffer protocol


def _json_value(value: Any) -> Any:
    """Non-finite floats become null, as JSON.stringify writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_list(arr: np.ndarray) -> Any:
    if arr.dtype.kind == "f" and arr.size > 0 and not np.isfinite(arr).all():
        obj = arr.astype(object)
        obj[~np.isfinite(arr)] = None
        return obj.tolist()
    return arr.tolist()


def _prepare(value: Any, codec: str, frames: List[Any], path: str) -> Any:
    if isinstance(value, np.ndarray):
        arr, name = _wire_array(value, path)
        if codec == "json":
            return _json_list(arr)
        if codec == "msgpack":
            return {TENSOR_KEY: True, "dtype": name, "shape": list(arr.shape), "data": _byte_view(arr)}
        frames.append(_byte_view(arr))
        return {TENSOR_KEY: True, "dtype": name, "shape": list(arr.shape), "frame": len(frames) - 1}
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise EncodeError("%s: map keys must be strings, got %r" % (path, key))
            out[key] = _prepare(v, codec, frames, "%s/%s" % (path, key))
        return out
    if isinstance(value, (list, tuple)):
        if all(v is None or isinstance(v, (int, float, str)) for v in value):  # plain values: nothing to convert
            return [_json_value(v) for v in value] if codec == "json" else value
        return [_prepare(v, codec, frames, "%s/%d" % (path, i)) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return _prepare(value.item(), codec, frames, path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value)) if codec == "json" else value
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _json_value(value) if codec == "json" else value
    raise EncodeError("%s: cannot encode a %s" % (path, type(value).__name__))


def encode_message(header: Dict[str, Any], codec: str = "binary") -> List[Any]:
    """Encodes a header whose values may hold numpy arrays.

    ``binary``: each array becomes a placeholder plus its own frame, a memoryview on the array's memory (no
    copy unless the array is not C-contiguous little-endian). ``msgpack``: the bytes go inline. ``json``:
    nested lists (non-finite floats become null). Returns the frames: header bytes first. Raises EncodeError
    for values the protocol cannot carry.
    """
    if codec not in CODECS:
        raise ValueError("unknown codec %r; expected one of %s" % (codec, ", ".join(CODECS)))
    frames = [b""]  # type: List[Any]
    prepared = _prepare(header, codec, frames, "")
    if codec == "json":
        frames[0] = json.dumps(prepared, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode("utf-8")
    else:
        frames[0] = msgpack.packb(prepared, use_bin_type=True)
    return frames


def _invalid(path: str, what: str) -> WorkerError:
    return WorkerError("bad_request", "invalid request: %s %s" % (path, what), path)


def check_request_header(header: Dict[str, Any]) -> None:
    """Checks a decoded request header against proto-json/v1/request.schema.json (unknown fields are allowed).

    Raises WorkerError ``bad_request`` naming the failing field.
    """
    from .protocol import MAX_FRAMEWORK_LENGTH, MAX_REQUEST_ID_LENGTH, MAX_TIMEOUT_MS, MAX_TYPE_LENGTH, SUPPORTED_VERSIONS, TRACEPARENT_PATTERN

    kind = header.get("type")
    if "type" not in header:
        raise _invalid("/", "must have required property 'type'")
    if not isinstance(kind, str) or not 1 <= len(kind) <= MAX_TYPE_LENGTH:
        raise _invalid("/type", "must be a string of 1 to %d characters" % MAX_TYPE_LENGTH)
    rid = header.get("request_id")
    if rid is not None and (not isinstance(rid, str) or not 1 <= len(rid) <= MAX_REQUEST_ID_LENGTH):
        raise _invalid("/request_id", "must be a string of 1 to %d characters" % MAX_REQUEST_ID_LENGTH)
    fw = header.get("framework")
    if fw is not None and (not isinstance(fw, str) or not 1 <= len(fw) <= MAX_FRAMEWORK_LENGTH):
        raise _invalid("/framework", "must be a string of 1 to %d characters" % MAX_FRAMEWORK_LENGTH)
    ts = header.get("timestamp")
    if ts is not None and not _is_number(ts):
        raise _invalid("/timestamp", "must be a number")
    version = header.get("version")
    if version is not None and (not _is_int(version) or version not in SUPPORTED_VERSIONS):
        raise _invalid("/version", "must be one of the protocol versions this worker knows: %s" % ", ".join(map(str, SUPPORTED_VERSIONS)))
    timeout_ms = header.get("timeout_ms")
    # The comparison is False for nan, and inf is above the maximum.
    if timeout_ms is not None and (not _is_number(timeout_ms) or not 0 < timeout_ms <= MAX_TIMEOUT_MS):
        raise _invalid("/timeout_ms", "must be a number of milliseconds > 0 and <= %d (one hour)" % MAX_TIMEOUT_MS)
    tp = header.get("traceparent")
    if tp is not None and (not isinstance(tp, str) or re.match(TRACEPARENT_PATTERN, tp) is None):
        raise _invalid("/traceparent", "must match the W3C traceparent format")
    tstate = header.get("tracestate")
    if tstate is not None and not isinstance(tstate, str):
        raise _invalid("/tracestate", "must be a string")


_PEEK_BYTES = 2048
_JSON_ID = re.compile(rb'"request_id"\s*:\s*"([^"\\]{1,128})"')
_MSGPACK_KEY = b"\xaa" + b"request_id"


def peek_request_id(frame: Any) -> Optional[str]:
    """Best-effort request_id of a header that could not be decoded (too large, malformed), read from its first
    and last bytes only, so the caller can match the error reply instead of waiting for its deadline."""
    buf = bytes(frame_buffer(frame)) if not isinstance(frame, (bytes, bytearray)) else bytes(frame)
    parts = [buf] if len(buf) <= 2 * _PEEK_BYTES else [buf[:_PEEK_BYTES], buf[-_PEEK_BYTES:]]
    for part in parts:
        if buf[:1] == b"{":
            m = _JSON_ID.search(part)
            if m:
                return m.group(1).decode("utf-8", "replace")
            continue
        at = part.find(_MSGPACK_KEY)
        if at < 0:
            continue
        i = at + len(_MSGPACK_KEY)
        if i >= len(part):
            continue
        tag = part[i]
        length = None
        if 0xA0 <= tag <= 0xBF:
            length, i = tag & 0x1F, i + 1
        elif tag == 0xD9 and i + 1 < len(part):
            length, i = part[i + 1], i + 2
        if length and length <= 128 and i + length <= len(part):
            return part[i:i + length].decode("utf-8", "replace")
    return None
