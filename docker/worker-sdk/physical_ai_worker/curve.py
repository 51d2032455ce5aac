"""CURVE for workers reached from other hosts: key files, the client allow list, handshake failure events.

Key files are ZeroMQ certificates (ZPL) as ``physical-ai-gateway keys NAME`` writes them: ``NAME.key`` holds the
public and secret key (keep it on the worker's host, mode 0600), ``NAME.pub`` the public key only. pyzmq's
``zmq.auth.load_certificate`` reads both. A clients folder holds the ``*.pub`` files of the clients to accept.

Secret keys are never logged; public keys are (they name a peer).
"""
from __future__ import annotations

import glob
import logging
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import zmq
import zmq.auth

#: Monitor events that mean a CURVE handshake failed.
HANDSHAKE_FAILED = {
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "other",
}


def load_key_pair(path: str) -> Tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``.key`` file; ValueError naming the file when it holds no secret key."""
    public, secret = zmq.auth.load_certificate(path)
    if not secret:
        raise ValueError("%s holds no secret-key (a .pub file? give the .key file)" % path)
    if len(public) != 40 or len(secret) != 40:
        raise ValueError("%s: keys must be 40-character Z85 text" % path)
    return public, secret


def load_public_keys(directory: str) -> Dict[bytes, str]:
    """Public key (Z85) → file name, for every ``*.pub`` file in ``directory``; ValueError when there is none."""
    if not os.path.isdir(directory):
        raise ValueError("clients folder %s does not exist" % directory)
    keys = {}  # type: Dict[bytes, str]
    for path in sorted(glob.glob(os.path.join(directory, "*.pub"))):
        public, _ = zmq.auth.load_certificate(path)
        if len(public) != 40:
            raise ValueError("%s: public-key must be 40-character Z85 text" % path)
        keys[public] = os.path.basename(path)
    if not keys:
        raise ValueError("%s has no *.pub key files (an empty allow list would refuse every client)" % directory)
    return keys


class ClientAllowList(object):
    """A credentials provider for pyzmq's authenticator (``configure_curve_callback``): accepts the listed keys,
    logs each refusal as ``worker.curve_refused`` with the client's public key."""

    def __init__(self, keys: Dict[bytes, str], log: Any):
        self.keys = keys
        self.log = log

    def callback(self, domain: str, client_key: bytes) -> bool:
        if client_key in self.keys:
            self.log.debug({"event": "worker.curve_accepted", "client_key": client_key.decode("ascii"), "client": self.keys[client_key]})
            return True
        self.log.warning({"event": "worker.curve_refused", "client_key": client_key.decode("ascii", "replace"), "reason": "client key not in the allow list"})
        return False


def start_authenticator(context: zmq.Context, keys: Dict[bytes, str], log: Any) -> Any:
    """Starts pyzmq's ZAP handler (a thread bound at inproc://zeromq.zap.01 in ``context``) with the allow list.
    Returns it; call ``.stop()`` before the context is terminated."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context, log=logging.getLogger(log.name + ".zap") if isinstance(log, logging.Logger) else None)
    auth.start()
    auth.configure_curve_callback("*", credentials_provider=ClientAllowList(keys, log))
    return auth


def describe_handshake_failure(message: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A log record for a monitor message that reports a failed handshake (None for other events)."""
    kind = HANDSHAKE_FAILED.get(message.get("event", 0))
    if kind is None:
        return None
    endpoint = message.get("endpoint")
    return {
        "event": "worker.curve_handshake_failed",
        "kind": kind,
        "endpoint": endpoint.decode("utf8", "replace") if isinstance(endpoint, bytes) else endpoint,
        # auth: the ZAP status code (400); protocol: a ZMQ_PROTOCOL_ERROR_* code (e.g. 0x11000001, cryptographic).
        "code": message.get("value"),
        "hint": "the client was refused" if kind == "auth" else "the client may use a wrong server public key",
    }
