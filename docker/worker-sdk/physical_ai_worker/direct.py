"""DirectClient: the direct path, client side. Asks the gateway (the control plane) for a lease, then sends
requests straight to the leased worker with the lease's token (src/gateway/lease-service.ts issues it,
src/protocol/lease-token.ts has its format, lease.py checks it on the worker). The lease is renewed before it
expires (``renew_before_ms``, default 20% of its length) and taken anew once when the worker refuses it (expired,
revoked by the gateway, or issued before the worker restarted). The gateway still counts every request: the worker
reports them (``lease.metrics``).

    with DirectClient("tcp://127.0.0.1:5550", framework="lerobot",
                      shared_memory=ShmArena("/dev/shm/physical-ai-gateway")) as robot:
        chunk = robot.inference({"images": {"cam": rgb}, "state": q})["action"]

Every refusal is a WorkerError with the code of whoever refused: from the gateway's lease request ``bad_request``
(the framework has no direct path), ``unknown_framework``, ``unavailable`` (no ready worker to lease); from the
worker ``unauthorized`` at ``/lease`` (a second refusal after a fresh lease), ``overloaded`` (more requests in
flight under one lease than it allows), and the worker's own codes for the request itself.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import zmq

from .client import ZMQClient
from .protocol import WorkerError
from .shm_arena import ShmArena

_GRANT_FIELDS = {"lease_id": str, "endpoint": str, "token": str, "expires_at": (int, float), "ttl_ms": (int, float)}  # type: Dict[str, Any]


def _is_lease_refusal(err: WorkerError) -> bool:
    return err.code == "unauthorized" and err.path == "/lease"


class DirectClient(object):
    """Requests straight to a framework's worker under a lease from the gateway. Not thread-safe; ``close()`` when
    done (it closes the arena too)."""

    def __init__(
        self,
        gateway: str,
        framework: Optional[str] = None,
        timeout_ms: Optional[float] = None,
        renew_before_ms: Optional[float] = None,
        shared_memory: Optional[ShmArena] = None,
        codec: str = "binary",
        context: Optional[zmq.Context] = None,
    ):
        """gateway: the gateway's ZMQ door (the lease is asked for there). framework: the framework to lease (default:
        the gateway's default). timeout_ms: deadline per request (default: the framework's, from the lease; 2 s for
        the lease request). shared_memory: an ShmArena for same-host shared memory towards the worker (negotiated
        with the worker as ZMQClient does)."""
        self.framework = framework
        self.timeout_ms = timeout_ms
        self.renew_before_ms = renew_before_ms
        self.codec = codec
        self._arena = shared_memory
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._gateway = ZMQClient(gateway, timeout_ms or 2000.0, context=self._context)
        self._worker = None  # type: Optional[ZMQClient]
        self._closed = False
        #: The lease in use (the gateway's grant: lease_id, framework, endpoint, token, expires_at, ttl_ms,
        #: max_in_flight, timeout_ms); None before the first request.
        self.lease = None  # type: Optional[Dict[str, Any]]
        #: Leases obtained so far (renewals included).
        self.leases_obtained = 0

    @property
    def worker(self) -> Optional[ZMQClient]:
        """The client towards the leased worker (None before the first request)."""
        return self._worker

    def request(self, type: str, data: Any = None, timeout_ms: Optional[float] = None, **fields: Any) -> Any:
        """Sends one request to the leased worker and returns its result; takes or renews the lease as needed.
        Raises WorkerError (see the module's docstring)."""
        if self._closed:
            raise WorkerError("cancelled", "direct client is closed")
        lease = self._current()
        try:
            return self._send(lease, type, data, timeout_ms, fields)
        except WorkerError as err:
            if not _is_lease_refusal(err):
                raise
            if self.lease is lease:
                self.lease = None
        return self._send(self._current(), type, data, timeout_ms, fields)

    def inference(self, data: Any, timeout_ms: Optional[float] = None, **fields: Any) -> Any:
        """``request("inference", data)``: the action chunk of an observation."""
        return self.request("inference", data, timeout_ms, **fields)

    def _send(self, lease: Dict[str, Any], type: str, data: Any, timeout_ms: Optional[float], fields: Dict[str, Any]) -> Any:
        budget = timeout_ms if timeout_ms is not None else self.timeout_ms if self.timeout_ms is not None else lease.get("timeout_ms", 2000.0)
        return self._worker_for(lease["endpoint"]).request(type, data, budget, lease=lease["token"], **fields)

    def _worker_for(self, endpoint: str) -> ZMQClient:
        worker = self._worker
        if worker is not None and worker.endpoint == endpoint:
            return worker
        # Another worker (the gateway leased a different one): the arena moves along; it closes with this client.
        self._worker = ZMQClient(endpoint, self.timeout_ms or 2000.0, codec=self.codec, context=self._context, shared_memory=self._arena, keep_shared_memory_open=True)
        if worker is not None:
            worker.close()
        return self._worker

    def _current(self) -> Dict[str, Any]:
        """The lease to use now: the current one unless it expires within the renewal margin, else a new one."""
        lease = self.lease
        if lease is not None:
            margin = self.renew_before_ms if self.renew_before_ms is not None else lease["ttl_ms"] * 0.2
            if lease["expires_at"] * 1000.0 - margin > time.time() * 1000.0:
                return lease
        fields = {"framework": self.framework} if self.framework is not None else {}
        grant = self._gateway.request("lease", {}, None, **fields)
        if not isinstance(grant, dict) or any(not isinstance(grant.get(k), t) for k, t in _GRANT_FIELDS.items()):
            raise WorkerError("internal", "the gateway answered the lease request without a lease: %r" % (grant,))
        self.lease = grant
        self.leases_obtained += 1
        return grant

    def close(self) -> None:
        """Closes both connections and the arena. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._gateway.close()
        if self._worker is not None:
            self._worker.close()
        if self._arena is not None:
            self._arena.close()
        if self._own_context:
            self._context.term()

    def __enter__(self) -> "DirectClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
