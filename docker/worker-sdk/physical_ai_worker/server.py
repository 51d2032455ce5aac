"""ZMQServer: a ROUTER socket that serves protocol requests with handlers registered by message type.

    server = ZMQServer("tcp://127.0.0.1:5555", framework="lerobot", model="act-v1", ready=False)
    server.register_handler("inference", lambda data, ctx: {"action": policy(data)})
    load_and_warm_model()
    server.set_ready(True)
    server.run()      # returns on SIGTERM / SIGINT or server.stop()
    server.close()

Requests are served one at a time on the calling thread by default (capacity=1: GPU policies, and
frameworks with thread-local state such as torch's grad mode). With capacity > 1 the handlers run in a
thread pool of that size; the socket is used only by the thread that calls run(), which sends the replies
(zmq sockets are not thread-safe).

A handler may also answer later, from any thread, without holding the serve loop or a pool thread:
``reply = ctx.defer()``, return ``reply``, then ``reply.resolve(result)`` (or ``reply.reject(WorkerError(...))``)
when the answer is known. The JobRunner's long poll (``jobs {since, wait_ms}``) answers this way, so it never
blocks inference on a ``capacity=1`` worker.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import zmq

from .codec import Decoded, check_request_header, decode_message, encode_message, frame_buffer, peek_request_id  # noqa: F401  (Decoded: in a type comment)
from .curve import HANDSHAKE_FAILED, describe_handshake_failure, load_key_pair, load_public_keys, start_authenticator
from .lease import GATEWAY_LEASE_ID, LeaseGuard, read_secret
from .logs import LOGGER_NAME, ensure_output
from .protocol import DEFAULT_LIMITS, PROTOCOL_VERSION, SDK_NAME, SDK_VERSION, Limits, WorkerError
from .shm import SharedMemory
from .tracing import start_export

_otel_propagate = None  # type: Any
_otel_trace = None  # type: Any
try:  # Optional: continue the caller's trace when OpenTelemetry is installed (the [otel] extra).
    from opentelemetry import propagate as _otel_propagate
    from opentelemetry import trace as _otel_trace
except Exception:  # pragma: no cover - depends on the environment
    pass

#: Return this from a handler to send no reply at all (for tests of silent workers; callers then time out).
NO_REPLY = object()

Handler = Callable[[Any, "RequestContext"], Any]


class RequestContext(object):
    """What a handler knows about the request besides its data."""

    __slots__ = ("request_id", "type", "codec", "traceparent", "tracestate", "timeout_ms", "deadline", "received_at", "logger", "copied_bytes", "shm", "_defer", "_deferred")

    def __init__(self, request_id, type, codec, traceparent, tracestate, timeout_ms, deadline, received_at, logger, copied_bytes, shm=None):
        #: The request's id (None when the client sent none).
        self.request_id = request_id  # type: Optional[str]
        self.type = type  # type: str
        #: `binary`, `msgpack` or `json`: the codec of the request, also used for the reply.
        self.codec = codec  # type: str
        #: W3C trace context from the request, to pass on to anything the handler calls.
        self.traceparent = traceparent  # type: Optional[str]
        self.tracestate = tracestate  # type: Optional[str]
        #: The time budget the client gave (ms), None when unbounded.
        self.timeout_ms = timeout_ms  # type: Optional[float]
        #: time.monotonic() value after which the client no longer waits; None when unbounded.
        self.deadline = deadline  # type: Optional[float]
        self.received_at = received_at  # type: float
        #: A logger whose records carry the request id.
        self.logger = logger  # type: logging.LoggerAdapter
        #: Bytes the decoder copied because a tensor was misaligned (only with align_tensors=True).
        self.copied_bytes = copied_bytes  # type: int
        #: The shared memory the request's tensors are in (a shm.ShmRequest), None when they came as frames.
        self.shm = shm  # type: Any
        self._defer = None  # type: Optional[Callable[[], DeferredReply]]
        #: The last reply defer() made (the server hands it the lease record when the handler returns it).
        self._deferred = None  # type: Optional[DeferredReply]

    def defer(self) -> "DeferredReply":
        """Answers this request later: return the DeferredReply from the handler and call its resolve() or
        reject() from any thread when the answer is known. The serve loop goes on serving meanwhile."""
        if self._defer is None:
            raise RuntimeError("this request cannot be deferred (no server context)")
        self._deferred = self._defer()
        return self._deferred

    def remaining_ms(self) -> Optional[float]:
        """Milliseconds left before the deadline (negative once passed), None when unbounded."""
        if self.deadline is None:
            return None
        return (self.deadline - time.monotonic()) * 1000.0

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class DeferredReply(object):
    """A reply a handler sends later (``ctx.defer()``). resolve()/reject() may be called from any thread, once:
    later calls are ignored and return False. The reply is sent by the thread that runs the serve loop.

    Under a client lease the request stays in flight (against the lease's limit) until the reply is sent, and its
    record for the gateway carries the reply's outcome: the server hands the record over (``_own_lease``) once the
    handler has returned this reply; a reply sent before that waits for it."""

    def __init__(self, server: "ZMQServer", envelope: List[bytes], ctx: RequestContext, t0: float, decode_ms: float):
        self._server = server
        self._envelope = envelope
        self._ctx = ctx
        self._t0 = t0
        self._decode_ms = decode_ms
        self._lock = threading.Lock()
        self._done = False
        self._lease_job = None  # type: Optional[_Job]
        self._sent = None  # type: Optional[Tuple[str, int, float, float]]

    @property
    def done(self) -> bool:
        return self._done

    def _take(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    def resolve(self, result: Any) -> bool:
        """Sends ``result`` as the success reply. False when the reply was already sent."""
        if not self._take():
            return False
        ctx, server = self._ctx, self._server
        compute_ms = _ms(time.perf_counter() - self._t0) - self._decode_ms
        try:
            outcome, frames = server._result_frames(ctx, result, self._t0, self._decode_ms, compute_ms, "deferred result for %r" % (ctx.type,))
        except Exception as err:  # the reply area failed in a way it does not report as WorkerError: still one answer
            werr = WorkerError("internal", "worker failed: %s" % _describe(err))
            outcome, frames = werr.code, server._error_frames(werr, ctx.request_id, ctx.codec, self._t0, self._decode_ms, compute_ms)
        self._sent_with(outcome, frames, compute_ms)
        server._post(self._envelope, frames, False)
        return True

    def reject(self, err: WorkerError) -> bool:
        """Sends ``err`` as the error reply. False when the reply was already sent."""
        if not self._take():
            return False
        ctx = self._ctx
        compute_ms = _ms(time.perf_counter() - self._t0) - self._decode_ms
        frames = self._server._error_frames(err, ctx.request_id, ctx.codec, self._t0, self._decode_ms, compute_ms)
        self._sent_with(err.code, frames, compute_ms)
        self._server._post(self._envelope, frames, False)
        return True

    def _sent_with(self, outcome: str, frames: List[Any], compute_ms: float) -> None:
        with self._lock:
            job = self._lease_job
            if job is None:
                self._sent = (outcome, _frames_size(frames), compute_ms, time.perf_counter())
                return
        self._server._lease_leave(job, outcome, _frames_size(frames), compute_ms)

    def _own_lease(self, job: "_Job") -> None:
        """The handler returned this reply: record the request under its lease when the reply is sent (now, when
        it was sent already)."""
        with self._lock:
            sent = self._sent
            if sent is None:
                self._lease_job = job
                return
        self._server._lease_leave(job, *sent)


class _Job(object):
    __slots__ = ("envelope", "handler", "data", "ctx", "t0", "decode_ms", "lease", "size_bytes")

    def __init__(self, envelope, handler, data, ctx, t0, decode_ms, lease=None, size_bytes=0):
        #: The claims of the client lease the request came under (direct path), None otherwise.
        self.lease = lease
        self.size_bytes = size_bytes
        self.envelope = envelope
        self.handler = handler
        self.data = data
        self.ctx = ctx
        self.t0 = t0
        self.decode_ms = decode_ms


def split_envelope(frames: Sequence[Any]) -> Tuple[List[bytes], List[Any]]:
    """Splits ROUTER frames into the routing envelope (identities up to and including the empty delimiter)
    and the message. A DEALER that sent no delimiter gets its identity frame back alone."""
    for i, f in enumerate(frames):
        if len(f) == 0:
            return [bytes(x) for x in frames[: i + 1]], list(frames[i + 1 :])
    return [bytes(x) for x in frames[:1]], list(frames[1:])


def _describe(err: BaseException) -> str:
    """``Type: text`` of an exception, even one whose __str__ raises (handlers are other people's code)."""
    try:
        text = str(err)
    except Exception:
        text = ""
    return "%s: %s" % (type(err).__name__, text) if text else type(err).__name__


def _answered(ctx: RequestContext) -> bool:
    """For a handler that deferred and then raised: True when its deferred reply was sent already (that is the
    answer); else the deferred reply is closed (a later resolve()/reject() sends nothing) and the error answers."""
    deferred = ctx._deferred
    return deferred is not None and not deferred._take()


def _frames_size(frames: Optional[Sequence[Any]]) -> int:
    size = 0
    for f in frames or ():
        size += len(f) if isinstance(f, (bytes, bytearray)) else memoryview(f).nbytes
    return size


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _reply_header(status: str, key: str, value: Any, request_id: Optional[str], t0: float, decode_ms: float, compute_ms: float) -> Dict[str, Any]:
    """A reply header: ``{status, <key>: value, timestamp, version, timing[, request_id]}``."""
    header = {
        "status": status,
        key: value,
        "timestamp": time.time(),
        "version": PROTOCOL_VERSION,
        "timing": {"decode_ms": decode_ms, "compute_ms": compute_ms, "total_ms": _ms(time.perf_counter() - t0)},
    }  # type: Dict[str, Any]
    if request_id is not None:
        header["request_id"] = request_id
    return header


class ZMQServer(object):
    """A protocol worker on one ROUTER socket. Constructing it does no I/O; bind() or run() binds."""

    #: Longest wait in one poll (ms); None waits until a message or a wake-up. Signals wake the poll anyway.
    poll_interval_ms = 1000  # type: Optional[int]

    def __init__(
        self,
        endpoint: str,
        framework: str = "custom",
        model: Optional[str] = None,
        limits: Optional[Limits] = None,
        capacity: int = 1,
        ready: bool = True,
        context: Optional[zmq.Context] = None,
        logger: Optional[logging.Logger] = None,
        max_queue: Optional[int] = None,
        drain_timeout_s: float = 5.0,
        trust_timestamp: bool = True,
        align_tensors: bool = False,
        curve_secret_key_file: Optional[str] = None,
        curve_clients_dir: Optional[str] = None,
        shm_dir: Optional[str] = None,
        lease_secret_file: Optional[str] = None,
    ):
        """
        endpoint: where to bind, e.g. ``tcp://127.0.0.1:5555``, ``tcp://127.0.0.1:*`` (any free port; read
            ``server.endpoint`` after bind()) or ``ipc:///tmp/w.sock``.
        capacity: requests served at once (1: on the thread that calls run(); >1: a thread pool).
        max_queue: with capacity > 1, requests waiting for a thread beyond which new ones get ``overloaded``
            (None: no bound; every request still has its deadline checked when it starts).
        drain_timeout_s: on stop, how long running handlers may take to finish and answer.
        trust_timestamp: take the deadline as ``timestamp + timeout_ms`` (sender's clock, same host or
            synchronised clocks) when the request has a timestamp; otherwise time of receipt + timeout_ms.
        align_tensors: copy received tensors whose bytes are not aligned for their dtype (small frames can
            be; numpy reads them fine, some consumers such as DLPack importers may not). Copies are counted
            in ``stats["copied_bytes"]`` and ``context.copied_bytes``. Default False: always views.
        curve_secret_key_file: serve with CURVE (encrypted, the server authenticated) using this ``.key`` file
            (``physical-ai-gateway keys NAME``); clients need its ``.pub``. Read when bind() runs.
        curve_clients_dir: with CURVE, accept only clients whose ``*.pub`` file is in this folder (pyzmq's
            ThreadAuthenticator; refusals logged as ``worker.curve_refused``). The worker's own key is accepted
            too, so the healthcheck can use the worker's key file. Without it, any client that knows the public key.
        shm_dir: take tensors in shared memory from clients on this host (see shm.py): the shared-memory root,
            e.g. ``/dev/shm/physical-ai-gateway`` (mounted into a container at the same path). Health then reports
            its realm so clients can tell they share it; result arrays go back through the client's reply area.
            Opened when bind() runs. None: frames only.
        lease_secret_file: the direct path (see lease.py): refuse every request but health that carries no valid
            lease token signed with this secret (the gateway's own requests carry its token), and keep records of
            requests served under client leases for the gateway to collect. Read here. None: no lease checks.
        """
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError("capacity must be an integer >= 1, got %r" % (capacity,))
        if curve_clients_dir is not None and curve_secret_key_file is None:
            raise ValueError("curve_clients_dir needs curve_secret_key_file")
        if max_queue is not None and max_queue < 0:
            raise ValueError("max_queue must be >= 0 or None")
        self._bind_endpoint = endpoint
        self.framework = framework
        self.model = model
        self.limits = limits or DEFAULT_LIMITS
        self.capacity = capacity
        self.max_queue = max_queue
        self.drain_timeout_s = drain_timeout_s
        self.trust_timestamp = trust_timestamp
        self.align_tensors = align_tensors
        self._ready = bool(ready)
        self._handlers = {}  # type: Dict[str, Handler]
        self._own_context = context is None
        self._context = context
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._stop_tracing = None  # type: Optional[Callable[[], None]]
        self._sock = None  # type: Optional[zmq.Socket]
        self._curve_secret_key_file = curve_secret_key_file
        self._curve_clients_dir = curve_clients_dir
        self._shm_dir = shm_dir
        self._lease = LeaseGuard(read_secret(lease_secret_file), framework) if lease_secret_file else None  # type: Optional[LeaseGuard]
        self._outcome = threading.local()
        #: The shared-memory root once bound with shm_dir, else None.
        self.shm = None  # type: Optional[SharedMemory]
        self._auth = None  # type: Any
        self._monitor = None  # type: Optional[zmq.Socket]
        #: The worker's CURVE public key (Z85 text) once bound with CURVE, else None.
        self.curve_public_key = None  # type: Optional[str]
        self._wake_r = None  # type: Optional[socket.socket]
        self._wake_w = None  # type: Optional[socket.socket]
        self._replies = queue.Queue()  # type: queue.Queue
        self._executor = None  # type: Optional[ThreadPoolExecutor]
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stopping = False
        self._closed = False
        self._started_at = time.monotonic()
        self.endpoint = None  # type: Optional[str]
        #: Counters, for tests and metrics: requests answered, errors by code, bytes copied by the decoder.
        self.stats = {"requests": 0, "errors": {}, "copied_bytes": 0}  # type: Dict[str, Any]

    # -- configuration ----------------------------------------------------------------------------------

    def register_handler(self, type: str, fn: Optional[Handler] = None) -> Any:
        """Registers ``fn(data, context) -> result`` for a message type. Usable as a decorator:
        ``@server.register_handler("inference")``. The return value may hold numpy arrays; raise
        WorkerError for a specific error code. ``health`` is built in."""
        if not isinstance(type, str) or not type:
            raise ValueError("a message type is a non-empty string")
        if type == "health":
            raise ValueError("'health' is built in; use set_ready() to say whether the model is loaded")

        def add(handler: Handler) -> Handler:
            if not callable(handler):
                raise TypeError("handler for %r is not callable" % type)
            self._handlers[type] = handler
            return handler

        return add if fn is None else add(fn)

    def set_ready(self, ready: bool) -> None:
        """Says whether the model is loaded and warmed; health reports it and other requests get
        ``unavailable`` while it is False. Safe to call from any thread."""
        self._ready = bool(ready)

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def handler_types(self) -> List[str]:
        return sorted(set(self._handlers) | {"health"})

    # -- lifecycle --------------------------------------------------------------------------------------

    def bind(self) -> str:
        """Creates and binds the socket (idempotent). Returns the bound endpoint (a wildcard port resolved)."""
        if self._closed:
            raise RuntimeError("server is closed")
        if self._sock is not None:
            return self.endpoint or self._bind_endpoint
        if self._shm_dir is not None and self.shm is None:
            self.shm = SharedMemory(self._shm_dir)
            self.shm.maybe_sweep()
        if self._context is None:
            self._context = zmq.Context()
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            if self._curve_secret_key_file is not None:
                self._setup_curve(sock)
            sock.bind(self._bind_endpoint)
        except (zmq.ZMQError, ValueError, OSError):
            self._stop_curve(sock)
            sock.close(0)
            raise
        self._sock = sock
        last = sock.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint = last.decode() if isinstance(last, bytes) and last else self._bind_endpoint
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        if self.capacity > 1:
            self._executor = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="worker-handler")
        self._started_at = time.monotonic()
        return self.endpoint

    def _setup_curve(self, sock: zmq.Socket) -> None:
        assert self._curve_secret_key_file is not None and self._context is not None
        public, secret = load_key_pair(self._curve_secret_key_file)
        if self._curve_clients_dir is not None:
            keys = load_public_keys(self._curve_clients_dir)
            keys.setdefault(public, "(this worker)")  # the healthcheck speaks with the worker's own key
            self._auth = start_authenticator(self._context, keys, self._log)
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
        self.curve_public_key = public.decode("ascii")
        # Failed handshakes (a wrong server key, a refused client) are logged from the serve loop.
        mask = 0
        for event in HANDSHAKE_FAILED:
            mask |= event
        self._monitor = sock.get_monitor_socket(mask)

    def _stop_curve(self, sock: Optional[zmq.Socket]) -> None:
        if self._monitor is not None:
            if sock is not None:
                with contextlib.suppress(zmq.ZMQError):
                    sock.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def _on_monitor(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        assert self._monitor is not None
        while True:
            try:
                message = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            record = describe_handshake_failure(message)
            if record is not None:
                self._log.warning(record)

    def stop(self) -> None:
        """Asks run() to return after the running handlers finish. Safe from signal handlers and threads."""
        self._stopping = True
        self._wake()

    def run(self, install_signal_handlers: bool = True) -> None:
        """Serves until stop(), SIGTERM or SIGINT. Binds first when bind() was not called."""
        self.bind()
        self._stopping = False
        if isinstance(self._log, logging.Logger):
            ensure_output(self._log)
        if self._stop_tracing is None:
            self._stop_tracing = start_export("physical-ai-worker-" + self.framework, self._log)
        restore = []  # type: List[Tuple[int, Any]]
        previous_wakeup_fd = None  # type: Optional[int]
        assert self._sock is not None and self._wake_r is not None and self._wake_w is not None
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                restore.append((signum, signal.signal(signum, lambda _s, _f: self.stop())))
            # The signal may be delivered to another thread (numpy's BLAS threads, torch's pools), and then the
            # main thread's poll() is never interrupted. The C-level handler writes to the wakeup fd from
            # whichever thread it runs on, which wakes the poll; Python then runs the handler above.
            previous_wakeup_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        # The one start line: where this worker listens, what it serves, and whether it takes requests yet. Logged
        # after the signal handlers are in place: a supervisor that sends SIGTERM as soon as it reads this line gets a
        # clean stop (drain, `worker.stopped`), not Python's default of dying on the spot.
        self._log.info(
            {
                "event": "worker.listening",
                "endpoint": self.endpoint,
                "framework": self.framework,
                "model": self.model,
                "ready": self._ready,
                "capacity": self.capacity,
                "handlers": self.handler_types(),
                "curve": None if self.curve_public_key is None else {"public_key": self.curve_public_key, "clients": "listed" if self._curve_clients_dir else "any"},
            }
        )
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        wake_fd = self._wake_r.fileno()
        poller.register(wake_fd, zmq.POLLIN)
        monitor = self._monitor
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stopping:
                # A finite timeout is a second line of defence: returning to Python runs pending signal handlers.
                if self.shm is not None:
                    self.shm.maybe_sweep()  # at most once per lease length: folders of clients that are gone
                for item, _ in poller.poll(self.poll_interval_ms):
                    if item == wake_fd:
                        self._on_wake()
                    elif monitor is not None and item is monitor:
                        self._on_monitor()
                    else:
                        self._receive_burst()
            self._drain()
        finally:
            if previous_wakeup_fd is not None:
                signal.set_wakeup_fd(previous_wakeup_fd)
            for restored, previous in restore:
                signal.signal(restored, previous)

    def close(self) -> None:
        """Closes the socket (linger 0) and the thread pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._stop_curve(self._sock)
        if self._sock is not None:
            self._sock.close(0)
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        if self._own_context and self._context is not None:
            self._context.term()
        if self.shm is not None:
            self.shm.close()
        if self._stop_tracing is not None:
            self._stop_tracing()  # exports the spans still buffered
            self._stop_tracing = None

    def __enter__(self) -> "ZMQServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the loop ---------------------------------------------------------------------------------------

    def _wake(self) -> None:
        w = self._wake_w
        if w is None:
            return
        try:
            w.send(b"\0")
        except OSError:  # full (a wake-up is already pending) or closed
            pass

    def _on_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        self._send_completed()

    def _send_completed(self) -> None:
        while True:
            try:
                reply = self._replies.get_nowait()
            except queue.Empty:
                return
            self._finish(*reply)

    def _finish(self, envelope: List[bytes], frames: Optional[List[Any]], pooled: bool = True) -> None:
        """A reply taken from the queue: a pooled handler's frees its slot; sends it (None: no reply)."""
        if pooled:
            with self._lock:
                self._in_flight -= 1
        if frames is not None:
            self._send(envelope, frames)

    def _post(self, envelope: List[bytes], frames: Optional[List[Any]], pooled: bool) -> None:
        """Queues a reply for the serve loop's thread (the only one that uses the socket) and wakes it."""
        if self._closed:
            return
        self._replies.put((envelope, frames, pooled))
        self._wake()

    def _receive_burst(self) -> None:
        assert self._sock is not None
        for _ in range(64):
            try:
                frames = self._sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._serve_one(frames)
            if self._stopping:
                return

    def _serve_one(self, frames: List[zmq.Frame]) -> None:
        """Handles one message. Nothing raised on its way may end the serve loop: a worker that one message can
        stop is a worker any client can stop (DESIGN.md section 5). Known failures are answered where they happen;
        this is the net for the rest (our bugs, a handler's BaseException, MemoryError): it logs the traceback,
        answers ``internal`` when the message had a routing envelope, and serving goes on."""
        t0 = time.perf_counter()
        try:
            self._on_message(frames, t0)
        except (KeyboardInterrupt, SystemExit):
            raise  # a deliberate exit, not a failure of this message
        except BaseException as err:
            self._answer_unexpected(frames, err, t0)

    def _answer_unexpected(self, frames: List[zmq.Frame], err: BaseException, t0: float) -> None:
        self._log.error({"event": "worker.message_failed", "error": _describe(err)}, exc_info=err)
        try:
            envelope, body = split_envelope(frames)
            if not envelope:
                return  # nowhere to send a reply
            request_id = peek_request_id(body[0]) if body else None
            codec = "json" if body and bytes(frame_buffer(body[0])[:1]) == b"{" else "binary"
            werr = WorkerError("internal", "worker failed on this message (%s); it keeps serving" % type(err).__name__)
            self._send(envelope, self._error_frames(werr, request_id, codec, t0))
        except Exception:
            self._log.error({"event": "worker.error_reply_failed"}, exc_info=True)

    def _drain(self) -> None:
        """After stop: let running handlers finish (up to drain_timeout_s) and send their replies."""
        if self._executor is None:
            return
        deadline = time.monotonic() + self.drain_timeout_s
        while self._in_flight > 0 and time.monotonic() < deadline:
            try:
                reply = self._replies.get(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                continue
            self._finish(*reply)
        if self._in_flight > 0:
            self._log.warning({"event": "worker.drain_timeout", "in_flight": self._in_flight})

    def _send(self, envelope: List[bytes], frames: List[Any]) -> None:
        assert self._sock is not None
        try:
            self._sock.send_multipart(envelope + frames, copy=False)
        except zmq.ZMQError as err:  # the peer is gone; ROUTER drops silently, this is only for odd states
            self._log.warning({"event": "worker.send_failed", "error": str(err)})

    def _count_error(self, code: str) -> None:
        errors = self.stats["errors"]
        errors[code] = errors.get(code, 0) + 1

    def _error_frames(self, err: WorkerError, request_id: Optional[str], codec: str, t0: float, decode_ms: float = 0.0, compute_ms: float = 0.0) -> List[Any]:
        self._count_error(err.code)
        self._outcome.code = err.code
        header = _reply_header("error", "error", err.to_wire(request_id), request_id, t0, decode_ms, compute_ms)
        return encode_message(header, "json" if codec == "json" else "binary")

    def _on_message(self, frames: List[zmq.Frame], t0: float) -> None:
        received_at = time.monotonic()
        envelope, body = split_envelope(frames)
        try:
            decoded = decode_message(body, self.limits, self.align_tensors, self.shm)  # type: Decoded
        except WorkerError as err:
            codec = "json" if body and bytes(frame_buffer(body[0])[:1]) == b"{" else "binary"
            self._log.info({"event": "worker.bad_message", "code": err.code, "error": err.message})
            self._send(envelope, self._error_frames(err, peek_request_id(body[0]) if body else None, codec, t0))
            return
        self.stats["copied_bytes"] += decoded.copied_bytes
        header = decoded.header
        rid = header.get("request_id")
        request_id = rid if isinstance(rid, str) else None
        decode_ms = _ms(time.perf_counter() - t0)
        try:
            check_request_header(header)
        except WorkerError as err:
            self._send(envelope, self._error_frames(err, request_id, decoded.codec, t0, decode_ms))
            return
        kind = header["type"]
        claims = None
        if self._lease is not None and kind != "health":
            try:
                claims = self._lease.check(header.get("lease"))
                gateway = claims.get("id") == GATEWAY_LEASE_ID
                if kind in ("lease.metrics", "lease.revoke"):
                    if not gateway:
                        raise WorkerError("unauthorized", "lease: %s is for the gateway only" % kind, "/type")
                    result = self._lease.collect() if kind == "lease.metrics" else self._lease.revoke((header.get("data") or {}).get("not_before_ms"))
                    self._reply_success(envelope, result, request_id, decoded.codec, t0, decode_ms, 0.0)
                    return
                if gateway:
                    claims = None
            except WorkerError as err:
                self._send(envelope, self._error_frames(err, request_id, decoded.codec, t0, decode_ms))
                return
        if kind == "health":
            self._reply_success(envelope, self._health(), request_id, decoded.codec, t0, decode_ms, 0.0)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            refusal = WorkerError(
                "bad_request",
                "unknown message type %r; this worker handles: %s" % (kind, ", ".join(self.handler_types())),
                "/type",
            )
            self._refuse(envelope, refusal, request_id, decoded, t0, decode_ms, claims, kind)
            return
        if not self._ready:
            refusal = WorkerError("unavailable", "worker is not ready (model loading); try again after health reports ready")
            self._refuse(envelope, refusal, request_id, decoded, t0, decode_ms, claims, kind)
            return
        timeout_ms = header.get("timeout_ms")
        deadline = None
        if timeout_ms is not None:
            deadline = received_at + timeout_ms / 1000.0
            sent_at = header.get("timestamp")
            if self.trust_timestamp and sent_at is not None:
                deadline = min(deadline, received_at + (sent_at + timeout_ms / 1000.0 - time.time()))
        ctx = RequestContext(
            request_id,
            kind,
            decoded.codec,
            header.get("traceparent"),
            header.get("tracestate"),
            timeout_ms,
            deadline,
            received_at,
            logging.LoggerAdapter(self._log, {"request_id": request_id, "type": kind}),
            decoded.copied_bytes,
            decoded.shm,
        )
        if claims is not None:
            assert self._lease is not None
            try:
                self._lease.enter(claims)
            except WorkerError as err:
                self._refuse(envelope, err, request_id, decoded, t0, decode_ms, claims, kind)
                return
        ctx._defer = lambda: DeferredReply(self, envelope, ctx, t0, decode_ms)
        job = _Job(envelope, handler, header.get("data"), ctx, t0, decode_ms, claims, decoded.size_bytes)
        if self._executor is None:
            out = self._execute(job)
            if out is not None:
                self._send(envelope, out)
            return
        with self._lock:
            waiting = self._in_flight - self.capacity
            if self.max_queue is not None and waiting >= self.max_queue:
                full = True
            else:
                full = False
                self._in_flight += 1
        if full:
            if claims is not None and self._lease is not None:
                self._lease.leave(claims, kind, "overloaded", _ms(time.perf_counter() - t0), decoded.size_bytes, 0, 0.0)
                claims = None  # recorded
            refusal = WorkerError("overloaded", "worker is busy: %d running, %d waiting" % (self.capacity, self.max_queue or 0))
            self._refuse(envelope, refusal, request_id, decoded, t0, decode_ms, claims, kind)
            return
        self._executor.submit(self._execute_threaded, job)

    def _refuse(
        self, envelope: List[bytes], err: WorkerError, request_id: Optional[str], decoded: Decoded, t0: float, decode_ms: float, claims: Optional[Dict[str, Any]], kind: str
    ) -> None:
        """Answers a refusal; under a client lease, records it for the gateway."""
        frames = self._error_frames(err, request_id, decoded.codec, t0, decode_ms)
        if claims is not None and self._lease is not None:
            size = sum(len(f) if isinstance(f, (bytes, bytearray)) else memoryview(f).nbytes for f in frames)
            self._lease.record(claims, kind, err.code, _ms(time.perf_counter() - t0), decoded.size_bytes, size)
        self._send(envelope, frames)

    def _execute_threaded(self, job: _Job) -> None:
        try:
            frames = self._execute(job)
        except BaseException as err:  # never lose the slot: answer internal
            self._log.error({"event": "worker.message_failed", "error": _describe(err)}, exc_info=err)
            frames = self._error_frames(WorkerError("internal", "worker failed: %s" % _describe(err)), job.ctx.request_id, job.ctx.codec, job.t0, job.decode_ms)
        self._post(job.envelope, frames, True)

    def _execute(self, job: _Job) -> Optional[List[Any]]:
        """Runs the handler for one request and returns the reply frames (None: send nothing); under a client
        lease, records the request for the gateway (lease.py): now, or for a deferred reply when it is sent."""
        if job.lease is None or self._lease is None:
            return self._execute_job(job)
        self._outcome.code = "ok"
        start = time.perf_counter()
        frames = None  # type: Optional[List[Any]]
        returned = False
        try:
            frames = self._execute_job(job)
            returned = True
            return frames
        finally:
            deferred = job.ctx._deferred
            if returned and frames is None and deferred is not None:
                deferred._own_lease(job)
            else:
                # None without a deferred reply: NO_REPLY (nothing is sent; the client times out) or a failure
                code = getattr(self._outcome, "code", "ok") if frames is not None else "cancelled"
                self._lease_leave(job, code, _frames_size(frames), _ms(time.perf_counter() - start))

    def _lease_leave(self, job: _Job, outcome: str, response_bytes: int, compute_ms: float, sent_at: Optional[float] = None) -> None:
        """Ends a request under a client lease (frees its in-flight slot) and records it for the gateway (latency:
        until ``sent_at``, default now)."""
        assert self._lease is not None and job.lease is not None
        end = time.perf_counter() if sent_at is None else sent_at
        self._lease.leave(job.lease, job.ctx.type, outcome, _ms(end - job.t0), job.size_bytes, response_bytes, compute_ms)

    def _execute_job(self, job: _Job) -> Optional[List[Any]]:
        ctx = job.ctx
        if self._stopping and self._executor is not None:
            err = WorkerError("unavailable", "worker is shutting down")
            return self._error_frames(err, ctx.request_id, ctx.codec, job.t0, job.decode_ms)
        if ctx.expired():
            late = -(ctx.remaining_ms() or 0.0)
            err = WorkerError("timeout", "deadline passed %.1f ms before the handler could start (timeout_ms=%s)" % (late, ctx.timeout_ms))
            return self._error_frames(err, ctx.request_id, ctx.codec, job.t0, job.decode_ms)
        start = time.perf_counter()
        try:
            with self._span(ctx) as span:
                result = job.handler(job.data, ctx)
                if span is not None:
                    span.set_attribute("outcome", "ok")
        except WorkerError as err:
            if _answered(ctx):
                return None
            compute_ms = _ms(time.perf_counter() - start)
            return self._error_frames(err, ctx.request_id, ctx.codec, job.t0, job.decode_ms, compute_ms)
        except Exception as err:
            compute_ms = _ms(time.perf_counter() - start)
            # With the traceback: the reply carries only the exception's text, and the bug is in the handler.
            ctx.logger.error({"event": "worker.handler_failed", "error": _describe(err)}, exc_info=True)
            if _answered(ctx):
                return None
            werr = WorkerError("worker_error", "handler for %r raised %s" % (ctx.type, _describe(err)))
            return self._error_frames(werr, ctx.request_id, ctx.codec, job.t0, job.decode_ms, compute_ms)
        if result is NO_REPLY or isinstance(result, DeferredReply):
            return None  # a deferred reply is sent when the handler resolves it
        compute_ms = _ms(time.perf_counter() - start)
        return self._result_frames(ctx, result, job.t0, job.decode_ms, compute_ms, "handler for %r returned a result that" % (ctx.type,))[1]

    def _result_frames(self, ctx: RequestContext, result: Any, t0: float, decode_ms: float, compute_ms: float, what: str) -> Tuple[str, List[Any]]:
        """The success reply for a handler's result, returned or deferred alike (outcome, frames): through the
        request's shared memory when it came in it, an error reply when the result cannot be sent."""
        if ctx.shm is not None:
            try:
                # The client may have given up and reused its slot meanwhile: never answer from its new data.
                ctx.shm.check_generations()
                result = ctx.shm.place_result(result)
            except WorkerError as err:
                return err.code, self._error_frames(err, ctx.request_id, ctx.codec, t0, decode_ms, compute_ms)
        try:
            return "ok", self._success_frames(result, ctx.request_id, ctx.codec, t0, decode_ms, compute_ms)
        except Exception as err:  # EncodeError, ValueError, RecursionError (nested too deep)...: the result is the handler's
            werr = WorkerError("worker_error", "%s cannot be encoded: %s" % (what, _describe(err)))
            return werr.code, self._error_frames(werr, ctx.request_id, ctx.codec, t0, decode_ms, compute_ms)

    def _success_frames(self, result: Any, request_id: Optional[str], codec: str, t0: float, decode_ms: float, compute_ms: float) -> List[Any]:
        frames = encode_message(_reply_header("success", "result", result, request_id, t0, decode_ms, compute_ms), codec)
        self.stats["requests"] += 1
        return frames

    def _reply_success(self, envelope: List[bytes], result: Any, request_id: Optional[str], codec: str, t0: float, decode_ms: float, compute_ms: float) -> None:
        self._send(envelope, self._success_frames(result, request_id, codec, t0, decode_ms, compute_ms))

    def _health(self) -> Dict[str, Any]:
        return {
            "ready": self._ready,
            "framework": self.framework,
            "model": self.model if self.model is not None else "",
            "capacity": self.capacity,
            "in_flight": self._in_flight,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "version": PROTOCOL_VERSION,
            "sdk": SDK_NAME,
            **({"shm_realm": self.shm.realm} if self.shm is not None else {}),
        }

    def _span(self, ctx: RequestContext) -> Any:
        if _otel_trace is None or _otel_propagate is None:
            return contextlib.nullcontext()
        carrier = {}
        if ctx.traceparent:
            carrier["traceparent"] = ctx.traceparent
            if ctx.tracestate:
                carrier["tracestate"] = ctx.tracestate
        parent = _otel_propagate.extract(carrier)
        tracer = _otel_trace.get_tracer("physical_ai_worker", SDK_VERSION)
        # Name and attributes as the TypeScript worker's span (src/telemetry/tracing.ts startWorkerSpan), so one query finds both.
        attributes = {"framework": self.framework, "rpc.system": "zeromq", "rpc.method": ctx.type}
        if ctx.request_id is not None:
            attributes["request_id"] = ctx.request_id
        return tracer.start_as_current_span("worker.request", context=parent, kind=_otel_trace.SpanKind.SERVER, attributes=attributes)
