"""The direct path's worker side: lease checks and the per-request records the gateway collects.

A client may send inference straight to the worker under a lease the gateway issued (src/protocol/lease-token.ts
has the token format). With a lease secret, the worker refuses every request (health aside) that carries no valid
token: a bad signature, another framework, an expired lease, or one issued before the last revocation is
``unauthorized``; more requests in flight under one lease than it allows is ``overloaded``. The gateway's own
requests carry its token (id ``gateway``), which does not expire by time. Requests served under a client lease are
recorded (lease id, type, outcome, latency, bytes) until the gateway collects them (``lease.metrics``), so the
gateway's dashboards count direct requests too; the gateway revokes leases with ``lease.revoke``.
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import threading
import time
from typing import Any, Deque, Dict, List, Optional  # noqa: F401  (Deque, List: in type comments)

from .protocol import WorkerError

GATEWAY_LEASE_ID = "gateway"
#: Records kept for the gateway at most; older ones are dropped (and counted) when it does not collect them.
MAX_RECORDS = 10000
#: A starting worker takes leases issued up to this long before its start: the gateway's clock and the worker's may
#: differ by that much when they run on different hosts (a lease that is refused is taken again once by the client).
START_SKEW_MS = 1000


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unauthorized(message: str) -> WorkerError:
    return WorkerError("unauthorized", "lease: %s" % message, "/lease")


def read_secret(path: str) -> bytes:
    """The lease secret from a file (its text, stripped)."""
    with open(path, "rb") as f:
        secret = f.read().strip()
    if len(secret) < 16:
        raise ValueError("lease secret in %s is shorter than 16 bytes" % path)
    return secret


class LeaseGuard(object):
    """Checks lease tokens for one worker and keeps the records of requests served under client leases."""

    def __init__(self, secret: bytes, framework: str):
        self._secret = secret
        self.framework = framework
        #: Leases issued before this (ms since the epoch) are refused: the worker's start, then each revocation.
        self.not_before_ms = int(time.time() * 1000) - START_SKEW_MS
        self._lock = threading.Lock()
        self._in_flight = {}  # type: Dict[str, int]
        self._records = collections.deque()  # type: Deque[Dict[str, Any]]
        self.dropped = 0

    def check(self, token: Any) -> Dict[str, Any]:
        """Verifies a token; returns its claims. Raises ``unauthorized``."""
        if not isinstance(token, str) or len(token) > 1024:
            raise _unauthorized("this worker takes requests under a lease from its gateway only (no 'lease' token)")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise _unauthorized("not a v1 lease token")
        body = (parts[0] + "." + parts[1]).encode()
        expected = hmac.new(self._secret, body, hashlib.sha256).digest()
        try:
            given = _b64decode(parts[2])
            claims = json.loads(_b64decode(parts[1]).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise _unauthorized("unreadable token") from err
        if not hmac.compare_digest(given, expected):
            raise _unauthorized("bad signature (not issued by this worker's gateway)")
        if not isinstance(claims, dict) or claims.get("fw") != self.framework:
            raise _unauthorized("issued for framework %r, this worker serves %r" % (claims.get("fw") if isinstance(claims, dict) else None, self.framework))
        if claims.get("id") == GATEWAY_LEASE_ID:
            return claims
        now = time.time() * 1000
        if not isinstance(claims.get("exp_ms"), (int, float)) or now >= claims["exp_ms"]:
            raise _unauthorized("expired; ask the gateway for a new lease")
        if not isinstance(claims.get("iat_ms"), (int, float)) or claims["iat_ms"] < self.not_before_ms:
            raise _unauthorized("revoked (the framework was stopped or switched); ask the gateway for a new lease")
        return claims

    def enter(self, claims: Dict[str, Any]) -> None:
        """Counts a request in flight under a client lease; raises ``overloaded`` beyond its limit."""
        lid = str(claims.get("id"))
        limit = claims.get("max")
        with self._lock:
            n = self._in_flight.get(lid, 0)
            if isinstance(limit, int) and n >= limit:
                raise WorkerError("overloaded", "lease %s allows %d requests in flight" % (lid, limit))
            self._in_flight[lid] = n + 1

    def leave(self, claims: Dict[str, Any], kind: str, outcome: str, latency_ms: float, request_bytes: int, response_bytes: int, compute_ms: float) -> None:
        """Ends a request under a client lease and records it for the gateway."""
        lid = str(claims.get("id"))
        with self._lock:
            n = self._in_flight.get(lid, 1) - 1
            if n <= 0:
                self._in_flight.pop(lid, None)
            else:
                self._in_flight[lid] = n
        self.record(claims, kind, outcome, latency_ms, request_bytes, response_bytes, compute_ms)

    def record(self, claims: Dict[str, Any], kind: str, outcome: str, latency_ms: float, request_bytes: int, response_bytes: int, compute_ms: float = 0.0) -> None:
        """Records a request under a client lease for the gateway (refusals too: the gateway counts those)."""
        lid = str(claims.get("id"))
        with self._lock:
            if len(self._records) >= MAX_RECORDS:
                self._records.popleft()
                self.dropped += 1
            record = {"lease": lid, "type": kind, "outcome": outcome, "latency_ms": round(latency_ms, 4), "compute_ms": round(compute_ms, 4)}  # type: Dict[str, Any]
            record["request_bytes"] = request_bytes
            record["response_bytes"] = response_bytes
            self._records.append(record)

    def collect(self) -> Dict[str, Any]:
        """Hands the records kept so far to the gateway (and forgets them)."""
        with self._lock:
            records = list(self._records)  # type: List[Dict[str, Any]]
            self._records.clear()
            dropped, self.dropped = self.dropped, 0
        return {"records": records, "dropped": dropped}

    def revoke(self, not_before_ms: Optional[float] = None) -> Dict[str, Any]:
        """Refuses every lease issued before ``not_before_ms`` (default: now)."""
        self.not_before_ms = int(not_before_ms if isinstance(not_before_ms, (int, float)) else time.time() * 1000)
        return {"not_before_ms": self.not_before_ms}
