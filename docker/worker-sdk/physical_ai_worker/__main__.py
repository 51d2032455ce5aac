"""Command line: serve the demo policy (or your own handlers) on one endpoint.

    python3 -m physical_ai_worker --endpoint tcp://127.0.0.1:5555 --framework demo --policy demo
    python3 -m physical_ai_worker --policy mypkg.policy:infer --handler train=mypkg.train:handle

Prints one JSON line ``{"event": "worker.listening", "endpoint": ...}`` to stdout once the socket is bound
(the resolved endpoint when the port was ``*``); logs go to stderr as JSON lines. Exits 0 on SIGTERM/SIGINT.
Environment defaults (for containers): WORKER_ENDPOINT, WORKER_FRAMEWORK, WORKER_POLICY, WORKER_MODEL,
WORKER_CURVE_SECRET_KEY_FILE, WORKER_CURVE_CLIENTS_DIR.

CURVE (for a worker reached from another host): ``--curve-secret-key-file worker.key`` encrypts every connection
and proves the worker's identity; ``--curve-clients-dir DIR`` also accepts only clients whose ``*.pub`` is in DIR.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, List, Optional

from .demo_policy import MODEL as DEMO_MODEL
from .demo_policy import make_demo_handler
from .logs import LOGGER_NAME, stderr_handler
from .protocol import DEFAULT_LIMITS, Limits
from .server import NO_REPLY, ZMQServer

BEHAVIOURS = ("normal", "silent", "crash")


def load_callable(spec: str) -> Callable[..., Any]:
    """``module.path:function`` → the function."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit("expected module:function, got %r" % spec)
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise SystemExit("%s is not callable" % spec)
    return fn


def _behave(behaviour: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    if behaviour == "silent":
        return lambda data, ctx: NO_REPLY
    if behaviour == "crash":

        def crash(data: Any, ctx: Any) -> Any:
            sys.stderr.flush()
            os._exit(1)

        return crash
    return handler


def _delayed(handler: Callable[[Any, Any], Any], delay_ms: float) -> Callable[[Any, Any], Any]:
    def delayed(data: Any, ctx: Any) -> Any:
        time.sleep(delay_ms / 1000.0)
        return handler(data, ctx)

    return delayed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m physical_ai_worker", description="Serve a policy over the physical-ai-gateway wire protocol.")
    p.add_argument("--endpoint", default=os.environ.get("WORKER_ENDPOINT", "tcp://127.0.0.1:5555"), help="bind address (tcp://127.0.0.1:5555, tcp://127.0.0.1:*, ipc:///path)")
    p.add_argument("--framework", default=os.environ.get("WORKER_FRAMEWORK", "demo"), help="framework name reported by health")
    p.add_argument("--policy", default=os.environ.get("WORKER_POLICY", "demo"), help="'demo' or module:function, the inference handler fn(data, ctx)")
    p.add_argument("--model", default=os.environ.get("WORKER_MODEL"), help="model name reported by health (demo: demo-v1)")
    p.add_argument("--handler", action="append", default=[], metavar="TYPE=module:function", help="an extra handler (repeatable)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="sleep before each inference answer (emulates compute)")
    p.add_argument("--ready-after-ms", type=float, default=0.0, help="report ready=false for this long after start")
    p.add_argument("--behaviour", "--behavior", choices=BEHAVIOURS, default="normal", help="tests: silent never answers inference, crash exits on inference")
    p.add_argument("--capacity", type=int, default=1, help="requests served at once (>1: a thread pool)")
    p.add_argument("--max-message-bytes", type=int, default=DEFAULT_LIMITS.max_message_bytes)
    p.add_argument("--max-frames", type=int, default=DEFAULT_LIMITS.max_frames)
    p.add_argument("--max-header-bytes", type=int, default=DEFAULT_LIMITS.max_header_bytes)
    p.add_argument("--max-depth", type=int, default=DEFAULT_LIMITS.max_depth, help="deepest nesting of lists and maps in a header")
    p.add_argument("--align-tensors", action="store_true", help="copy received tensors whose bytes are misaligned (counted)")
    p.add_argument(
        "--curve-secret-key-file",
        default=os.environ.get("WORKER_CURVE_SECRET_KEY_FILE") or None,
        metavar="PATH",
        help="serve with CURVE using this .key file (physical-ai-gateway keys NAME)",
    )
    p.add_argument(
        "--curve-clients-dir",
        default=os.environ.get("WORKER_CURVE_CLIENTS_DIR") or None,
        metavar="DIR",
        help="with CURVE: accept only clients whose *.pub file is in DIR",
    )
    p.add_argument(
        "--shm-dir",
        default=os.environ.get("WORKER_SHM_DIR") or None,
        metavar="DIR",
        help="take tensors in shared memory from clients on this host: the shared-memory root (e.g. /dev/shm/physical-ai-gateway)",
    )
    p.add_argument(
        "--lease-secret-file",
        default=os.environ.get("WORKER_LEASE_SECRET_FILE") or None,
        metavar="PATH",
        help="direct path: take requests only under leases signed with this secret (the gateway's frameworks.<name>.direct.secretFile)",
    )
    p.add_argument("--log-level", default=os.environ.get("WORKER_LOG_LEVEL", "info"), choices=("debug", "info", "warning", "error"))
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.curve_clients_dir and not args.curve_secret_key_file:
        parser.error("--curve-clients-dir needs --curve-secret-key-file")
    log = logging.getLogger(LOGGER_NAME)
    log.addHandler(stderr_handler())
    log.setLevel(args.log_level.upper())
    log.propagate = False

    if args.policy == "demo":
        inference = make_demo_handler(args.delay_ms)
        model = args.model or DEMO_MODEL
    else:
        inference = load_callable(args.policy)
        if args.delay_ms > 0:
            inference = _delayed(inference, args.delay_ms)
        model = args.model or args.policy
    server = ZMQServer(
        args.endpoint,
        framework=args.framework,
        model=model,
        limits=Limits(args.max_message_bytes, args.max_frames, args.max_header_bytes, args.max_depth),
        capacity=args.capacity,
        ready=args.ready_after_ms <= 0,
        logger=log,
        align_tensors=args.align_tensors,
        curve_secret_key_file=args.curve_secret_key_file,
        curve_clients_dir=args.curve_clients_dir,
        shm_dir=args.shm_dir,
        lease_secret_file=args.lease_secret_file,
    )
    server.register_handler("inference", _behave(args.behaviour, inference))
    for spec in args.handler:
        kind, _, target = spec.partition("=")
        server.register_handler(kind, load_callable(target))
    try:
        endpoint = server.bind()
    except Exception as err:
        log.error({"event": "worker.bind_failed", "endpoint": args.endpoint, "error": str(err)})
        server.close()
        return 2
    if args.ready_after_ms > 0:
        timer = threading.Timer(args.ready_after_ms / 1000.0, server.set_ready, (True,))
        timer.daemon = True
        timer.start()
    # The handshake on stdout, for whoever started this process (tests, launchers): one JSON line, once bound.
    # run() logs the same start line on stderr with the rest of the log.
    listening = {"event": "worker.listening", "endpoint": endpoint, "framework": args.framework, "model": model, "policy": args.policy, "ready": server.ready, "pid": os.getpid()}
    if server.curve_public_key is not None:
        listening["curve_public_key"] = server.curve_public_key
    sys.stdout.write(json.dumps(listening) + "\n")
    sys.stdout.flush()
    try:
        server.run()
    finally:
        server.close()
    log.info({"event": "worker.stopped", "endpoint": endpoint})
    return 0


if __name__ == "__main__":
    sys.exit(main())
