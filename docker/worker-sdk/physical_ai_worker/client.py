"""ZMQClient: a small synchronous client (a DEALER that sends the empty delimiter, so it works against
ROUTER workers and REP servers alike). Handy for health checks and scripts inside containers, and for robot-side
code on the gateway's ZMQ door or straight to a worker.

    with ZMQClient("tcp://127.0.0.1:5555") as client:
        print(client.health())
        chunk = client.request("inference", {"state": np.zeros(14, np.float32)}, timeout_ms=500)

Same-host shared memory (opt-in; see shm_arena.py): arrays of 4 KiB and more travel as descriptors into slot files
of the client's own folder; negotiated on the first request that carries data (the target's ``health.shm_realm``
must equal the root's realm, else frames), and a refusal at ``/shm`` sends frames for the rest of the connection.

    with ZMQClient("tcp://127.0.0.1:5550", shared_memory=ShmArena("/dev/shm/physical-ai-gateway")) as client:
        result = client.request("inference", {"images": {"cam": rgb}, "state": q}, framework="lerobot")
        client.shared_memory_state   # "on" once negotiated, "off" when frames are used
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Dict, Optional, Tuple

import zmq

from .codec import CODECS, Decoded, decode_message, encode_message, peek_request_id
from .protocol import DEFAULT_LIMITS, PROTOCOL_VERSION, Limits, WorkerError
from .shm_arena import Placement, ShmArena

#: After a failed negotiation (the target did not answer health), frames for this long before asking again.
NEGOTIATE_RETRY_S = 1.0


def _left_ms(deadline: float) -> float:
    return (deadline - time.monotonic()) * 1000.0


class ZMQClient(object):
    """One DEALER connected to one endpoint. Replies are matched by request id; a late reply to an earlier
    request that timed out is dropped (and counted in ``late_replies``). Not thread-safe: a request while another
    thread's is in progress raises WorkerError ``bad_request`` (use one client per thread)."""

    def __init__(
        self,
        endpoint: str,
        timeout_ms: float = 2000.0,
        codec: str = "binary",
        limits: Optional[Limits] = None,
        context: Optional[zmq.Context] = None,
        curve_server_key: Optional[bytes] = None,
        curve_key_pair: Optional[Tuple[bytes, bytes]] = None,
        shared_memory: Optional[ShmArena] = None,
        keep_shared_memory_open: bool = False,
    ):
        """curve_server_key: the worker's CURVE public key (Z85); with it, ``curve_key_pair`` is this client's
        (public, secret) pair, e.g. ``physical_ai_worker.curve.load_key_pair("client.key")``.
        shared_memory: an ShmArena for same-host shared memory (opened on the first request, closed by
        ``close()`` unless ``keep_shared_memory_open``: an arena several clients share)."""
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
        self._busy = threading.Lock()  # held by the request in progress: a second thread is told, not served
        self.late_replies = 0
        self._arena = shared_memory
        self._keep_arena = keep_shared_memory_open
        self._shm_state = "unknown" if shared_memory is not None else "off"
        self._negotiate_after = 0.0
        #: Why shared memory is off after a fall-back (the refusal), or None.
        self.shm_fallback = None  # type: Optional[WorkerError]

    @property
    def shared_memory_state(self) -> str:
        """``on`` once negotiated with a target on the same memory, ``off`` without an arena, on another memory or
        after a refusal at ``/shm``, ``unknown`` before the first request with data."""
        return self._shm_state

    def request_raw(self, type: str, data: Any = None, timeout_ms: Optional[float] = None, **fields: Any) -> Decoded:
        """Sends a request and returns the decoded reply (success or error) without interpreting it.
        Raises WorkerError ``timeout`` when no reply arrives in time, ``cancelled`` after close(), ``bad_request``
        while another thread's request on this client is in progress. With shared memory, a negotiation and a
        fall-back to frames spend from the same ``timeout_ms``."""
        if not self._busy.acquire(False):
            # One socket: a second thread would take the first one's reply as late and drop it (both time out).
            raise WorkerError("bad_request", "ZMQClient is not thread-safe: another thread's request on this client is in progress (use one client per thread)")
        try:
            return self._request_raw(type, data, timeout_ms, fields)
        finally:
            self._busy.release()

    def _request_raw(self, type: str, data: Any, timeout_ms: Optional[float], fields: Dict[str, Any]) -> Decoded:
        if self._closed:
            raise WorkerError("cancelled", "client is closed")
        budget = self.timeout_ms if timeout_ms is None else timeout_ms
        arena = self._arena
        if arena is None or type == "health" or data is None or "shm" in fields:
            return self._exchange(type, data, budget, fields, None)
        deadline = time.monotonic() + budget / 1000.0
        if self._shm_state == "unknown" and time.monotonic() >= self._negotiate_after:
            self._negotiate(arena, budget, fields.get("framework"))
        placement = arena.place(data) if self._shm_state == "on" else None
        if placement is None:
            return self._exchange(type, data, _left_ms(deadline), fields, None)
        try:
            reply = self._exchange(type, placement.data, _left_ms(deadline), dict(fields, shm=placement.shm), placement)
        finally:
            placement.release()
        error = reply.header.get("error") if reply.header.get("status") == "error" else None
        path = error.get("path") if isinstance(error, dict) else None
        if not isinstance(path, str) or not path.startswith("/shm"):
            return reply
        # The target cannot reach our memory (another host behind the gateway, or the folder is gone): frames.
        self._shm_state = "off"
        self.shm_fallback = WorkerError.from_wire(error)
        return self._exchange(type, data, _left_ms(deadline), fields, None)

    def _negotiate(self, arena: ShmArena, budget: float, framework: Any) -> None:
        """Asks the target (through a gateway: the worker behind it) for its realm; on when it equals ours."""
        try:
            realm = arena.open()
        except OSError as err:  # no /dev/shm (macOS), a read-only one, a root that is a file: frames
            self._shm_state = "off"
            self.shm_fallback = WorkerError("unavailable", "shared memory: cannot open the arena under %s: %s" % (arena.root, err), "/shm")
            return
        try:
            extra = {"framework": framework} if isinstance(framework, str) else {}
            health = self._exchange("health", {}, budget, extra, None).header
        except WorkerError:
            self._negotiate_after = time.monotonic() + NEGOTIATE_RETRY_S
            return
        result = health.get("result") if health.get("status") == "success" else None
        if not isinstance(result, dict):
            self._negotiate_after = time.monotonic() + NEGOTIATE_RETRY_S
            return
        self._shm_state = "on" if result.get("shm_realm") == realm else "off"

    def _exchange(self, type: str, data: Any, budget: float, fields: Dict[str, Any], placement: Optional[Placement]) -> Decoded:
        """One request and its reply (matched by id); result descriptors are read from the placement's reply area."""
        if budget <= 0:
            raise WorkerError("timeout", "request %r to %s: no time left" % (type, self.endpoint))
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
            if placement is not None and frames and peek_request_id(frames[0]) not in (request_id, None):
                self.late_replies += 1  # a late reply to an earlier request: its descriptors are not ours to read
                continue
            reply = decode_message(frames, self.limits, reply=placement)
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
        if self._arena is not None and not self._keep_arena:
            self._arena.close()

    def __enter__(self) -> "ZMQClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
