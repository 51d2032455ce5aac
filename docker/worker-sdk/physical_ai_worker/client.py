"""ZMQClient: a small synchronous client (a DEALER that sends the empty delimiter, so it works against
ROUTER workers and REP servers alike). Handy for health checks and scripts inside containers.

    with ZMQClient("tcp://127.0.0.1:5555") as client:
        print(client.health())
        chunk = client.request("inference", {"state": np.zeros(14, np.float32)}, timeout_ms=500)
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, Optional, Tuple

import zmq

from .codec import CODECS, Decoded, decode_message, encode_message
from .protocol import DEFAULT_LIMITS, PROTOCOL_VERSION, Limits, WorkerError


class ZMQClient(object):
    """One DEALER connected to one endpoint. Replies are matched by request id; a late reply to an earlier
    request that timed out is dropped (and counted in ``late_replies``). Not thread-safe."""

    def __init__(
        self,
        endpoint: str,
        timeout_ms: float = 2000.0,
        codec: str = "binary",
        limits: Optional[Limits] = None,
        context: Optional[zmq.Context] = None,
        curve_server_key: Optional[bytes] = None,
        curve_key_pair: Optional[Tuple[bytes, bytes]] = None,
    ):
        """curve_server_key: the worker's CURVE public key (Z85); with it, ``curve_key_pair`` is this client's
        (public, secret) pair, e.g. ``physical_ai_worker.curve.load_key_pair("client.key")``."""
        if codec not in CODECS:
            raise ValueError("unknown codec %r; expected one of %s" % (codec, ", ".join(CODECS)))
        if (curve_server_key is None) != (curve_key_pair is None):
            raise ValueError("curve_server_key and curve_key_pair go together")
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.codec = codec
        self.limits = limits or DEFAULT_LIMITS
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._sock = self._context.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve_server_key is not None and curve_key_pair is not None:
            self._sock.curve_serverkey = curve_server_key
            self._sock.curve_publickey, self._sock.curve_secretkey = curve_key_pair
        self._sock.connect(endpoint)
        self._closed = False
        self.late_replies = 0

    def request_raw(self, type: str, data: Any = None, timeout_ms: Optional[float] = None, **fields: Any) -> Decoded:
        """Sends a request and returns the decoded reply (success or error) without interpreting it.
        Raises WorkerError ``timeout`` when no reply arrives in time, ``cancelled`` after close()."""
        if self._closed:
            raise WorkerError("cancelled", "client is closed")
        budget = self.timeout_ms if timeout_ms is None else timeout_ms
        request_id = uuid.uuid4().hex
        header = {"type": type, "request_id": request_id, "timestamp": time.time(), "version": PROTOCOL_VERSION, "timeout_ms": budget}  # type: Dict[str, Any]
        if data is not None:
            header["data"] = data
        header.update(fields)
        self._sock.send_multipart([b""] + encode_message(header, self.codec), copy=False)
        deadline = time.monotonic() + budget / 1000.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                raise WorkerError("timeout", "no reply from %s to %r within %g ms" % (self.endpoint, type, budget))
            frames = self._sock.recv_multipart(copy=False)
            if frames and len(frames[0]) == 0:
                frames = frames[1:]
            reply = decode_message(frames, self.limits)
            if reply.header.get("request_id") not in (request_id, None):
                self.late_replies += 1
                continue
            return reply

    def request(self, type: str, data: Any = None, timeout_ms: Optional[float] = None, **fields: Any) -> Any:
        """Sends a request and returns ``result``; an error reply raises WorkerError with its code."""
        reply = self.request_raw(type, data, timeout_ms, **fields).header
        if reply.get("status") == "success":
            return reply.get("result")
        raise WorkerError.from_wire(reply.get("error"))

    def health(self, timeout_ms: Optional[float] = None) -> Dict[str, Any]:
        """The worker's health result: ``{ready, framework, model, capacity, in_flight, uptime_s, version, sdk}``."""
        result = self.request("health", None, timeout_ms)
        if not isinstance(result, dict):
            raise WorkerError("worker_error", "health result is not a map: %r" % (result,))
        return result

    def close(self) -> None:
        """Closes the socket (linger 0). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._sock.close(0)
        if self._own_context:
            self._context.term()

    def __enter__(self) -> "ZMQClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
