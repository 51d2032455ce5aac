"""Constants of the wire protocol, version 1, mirroring proto-json/v1 (the source of truth).

A node test (test/python-sdk/schema-drift.test.ts) prints these constants as JSON and compares them with
the schemas, so a field, dtype or error code added on one side only fails the tests.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

PROTOCOL_VERSION = 1
SDK_VERSION = "0.1.0"
SDK_NAME = "physical-ai-gateway-py/" + SDK_VERSION

#: The closed dtype list (tensor.schema.json#/definitions/dtype). Bytes are little-endian, C order.
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")

#: numpy dtype strings for each wire dtype (explicit little-endian).
NUMPY_DTYPES = {
    "bool": "|b1",
    "uint8": "|u1",
    "int8": "|i1",
    "uint16": "<u2",
    "int16": "<i2",
    "uint32": "<u4",
    "int32": "<i4",
    "uint64": "<u8",
    "int64": "<i8",
    "float32": "<f4",
    "float64": "<f8",
}

#: Most dimensions of a tensor (tensor.schema.json `shape.maxItems`).
MAX_RANK = 8

#: The key that marks a tensor placeholder inside `data` or `result`.
TENSOR_KEY = "__tensor__"

#: Closed list of error codes (error.schema.json `code.enum`), the same on ZMQ and HTTP.
ERROR_CODES = (
    "bad_request",
    "unknown_framework",
    "unavailable",
    "timeout",
    "cancelled",
    "overloaded",
    "too_large",
    "unauthorized",
    "worker_error",
    "internal",
)

#: Codes after which the same request may succeed if sent again.
RETRYABLE_CODES = frozenset(("unavailable", "timeout", "overloaded"))

#: Message types of the original design, plus `status`; handlers may register others.
MESSAGE_TYPES = ("inference", "train", "command", "health", "status")

REPLY_STATUSES = ("success", "error")

# Field names of every schema's `properties`, in schema order.
REQUEST_FIELDS = ("type", "data", "timestamp", "request_id", "version", "framework", "timeout_ms", "traceparent", "tracestate", "auth_token", "shm", "lease")
REPLY_FIELDS = ("status", "result", "error", "request_id", "timestamp", "version", "timing")
TIMING_FIELDS = ("decode_ms", "compute_ms", "total_ms")
ERROR_FIELDS = ("code", "message", "retryable", "request_id", "path")
HEALTH_FIELDS = ("ready", "framework", "model", "capacity", "in_flight", "uptime_s", "version", "sdk", "shm_realm")
TENSOR_FIELDS = (TENSOR_KEY, "dtype", "shape", "frame", "data", "shm")
OBSERVATION_FIELDS = ("images", "state", "instruction", "stamp")
ACTION_CHUNK_FIELDS = ("action", "dt_s", "joint_names", "model")

# String limits of the request header (request.schema.json).
MAX_TYPE_LENGTH = 64
MAX_REQUEST_ID_LENGTH = 128
MAX_FRAMEWORK_LENGTH = 64
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

#: Protocol versions a request may name (request.schema.json `version.enum`); absent means 1.
SUPPORTED_VERSIONS = (1,)
#: Largest `timeout_ms` (request.schema.json `timeout_ms.maximum`): one hour. Also rejects inf and nan.
MAX_TIMEOUT_MS = 3600000

#: Highest nesting limit a receiver may be configured with (src/protocol/limits.ts MAX_DEPTH_CEILING): the
#: codec's own walks of a header recurse, and this keeps them far below Python's recursion limit (1000).
MAX_DEPTH_CEILING = 100


class Limits(object):
    """Limits every receiver enforces; a message over one gets a `too_large` error reply.

    Defaults as in proto-json/README.md: 64 MiB per message, 64 frames, 16 MiB header, lists and maps nested
    at most 64 deep (the header itself is level 1; a header nested deeper gets `bad_request`).
    """

    __slots__ = ("max_message_bytes", "max_frames", "max_header_bytes", "max_depth")

    def __init__(self, max_message_bytes: int = 64 * 1024 * 1024, max_frames: int = 64, max_header_bytes: int = 16 * 1024 * 1024, max_depth: int = 64):
        for name, value in (("max_message_bytes", max_message_bytes), ("max_frames", max_frames), ("max_header_bytes", max_header_bytes), ("max_depth", max_depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("%s must be a positive integer, got %r" % (name, value))
        if max_depth > MAX_DEPTH_CEILING:
            raise ValueError("max_depth must be at most %d, got %d" % (MAX_DEPTH_CEILING, max_depth))
        self.max_message_bytes = max_message_bytes
        self.max_frames = max_frames
        self.max_header_bytes = max_header_bytes
        self.max_depth = max_depth

    def __repr__(self) -> str:
        return "Limits(max_message_bytes=%d, max_frames=%d, max_header_bytes=%d, max_depth=%d)" % (
            self.max_message_bytes,
            self.max_frames,
            self.max_header_bytes,
            self.max_depth,
        )


DEFAULT_LIMITS = Limits()


class WorkerError(Exception):
    """An error with a protocol code. Raise it from a handler to answer with that code.

    >>> raise WorkerError("bad_request", "state must be float32", path="/data/state")
    """

    def __init__(self, code: str, message: str, path: Optional[str] = None):
        if code not in ERROR_CODES:
            raise ValueError("unknown error code %r; expected one of %s" % (code, ", ".join(ERROR_CODES)))
        super(WorkerError, self).__init__(message)
        self.code = code
        self.message = message
        self.path = path

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES

    def to_wire(self, request_id: Optional[str] = None) -> Dict[str, Any]:
        """The WireError object (error.schema.json) as it goes into a reply's `error` field."""
        wire = {"code": self.code, "message": self.message, "retryable": self.retryable}  # type: Dict[str, Any]
        if request_id is not None:
            wire["request_id"] = request_id
        if self.path is not None:
            wire["path"] = self.path
        return wire

    @classmethod
    def from_wire(cls, value: Any) -> "WorkerError":
        """Rebuilds an error from a reply: our WireError object, or the original design's plain string."""
        if isinstance(value, str):
            return cls("worker_error", value)
        if isinstance(value, dict):
            code = value.get("code")
            message = value.get("message")
            path = value.get("path")
            return cls(
                code if code in ERROR_CODES else "worker_error",
                message if isinstance(message, str) else repr(value),
                path if isinstance(path, str) else None,
            )
        return cls("worker_error", "worker replied with an error and no message")

    def __repr__(self) -> str:
        return "WorkerError(%r, %r%s)" % (self.code, self.message, "" if self.path is None else ", path=%r" % self.path)


def constants() -> Dict[str, Any]:
    """Every protocol constant as a JSON-friendly dict (used by the schema drift test)."""
    return {
        "protocol_version": PROTOCOL_VERSION,
        "sdk": SDK_NAME,
        "dtypes": list(DTYPES),
        "max_rank": MAX_RANK,
        "tensor_key": TENSOR_KEY,
        "error_codes": list(ERROR_CODES),
        "retryable_codes": sorted(RETRYABLE_CODES),
        "reply_statuses": list(REPLY_STATUSES),
        "fields": {
            "request": list(REQUEST_FIELDS),
            "reply": list(REPLY_FIELDS),
            "timing": list(TIMING_FIELDS),
            "error": list(ERROR_FIELDS),
            "health": list(HEALTH_FIELDS),
            "tensor": list(TENSOR_FIELDS),
            "observation": list(OBSERVATION_FIELDS),
            "action-chunk": list(ACTION_CHUNK_FIELDS),
        },
        "limits": {
            "max_message_bytes": DEFAULT_LIMITS.max_message_bytes,
            "max_frames": DEFAULT_LIMITS.max_frames,
            "max_header_bytes": DEFAULT_LIMITS.max_header_bytes,
            "max_depth": DEFAULT_LIMITS.max_depth,
            "max_depth_ceiling": MAX_DEPTH_CEILING,
        },
        "request": {
            "max_type_length": MAX_TYPE_LENGTH,
            "max_request_id_length": MAX_REQUEST_ID_LENGTH,
            "max_framework_length": MAX_FRAMEWORK_LENGTH,
            "traceparent_pattern": TRACEPARENT_PATTERN,
            "supported_versions": list(SUPPORTED_VERSIONS),
            "max_timeout_ms": MAX_TIMEOUT_MS,
        },
    }
