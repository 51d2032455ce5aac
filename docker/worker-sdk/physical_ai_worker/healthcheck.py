"""Container HEALTHCHECK: exits 0 only when the worker answers health with ready=true.

    python3 -m physical_ai_worker.healthcheck --endpoint tcp://127.0.0.1:5555 [--timeout-ms 2000]

A CURVE worker: ``--curve-key-file`` (default $WORKER_CURVE_SECRET_KEY_FILE, the worker's own setting) names the
worker's ``.key`` file; the check speaks CURVE with the worker's own key pair, which the worker always accepts.

Exit codes: 0 ready, 1 not ready, no answer or an error (the reason goes to stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .client import ZMQClient
from .curve import load_key_pair
from .protocol import WorkerError


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m physical_ai_worker.healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("WORKER_ENDPOINT", "tcp://127.0.0.1:5555"))
    parser.add_argument("--timeout-ms", type=float, default=2000.0)
    parser.add_argument("--curve-key-file", default=os.environ.get("WORKER_CURVE_SECRET_KEY_FILE") or None, metavar="PATH", help="the CURVE worker's .key file")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    curve = {}  # type: dict
    if args.curve_key_file:
        try:
            public, secret = load_key_pair(args.curve_key_file)
        except (OSError, ValueError) as err:
            sys.stderr.write("unhealthy: cannot read %s: %s\n" % (args.curve_key_file, err))
            return 1
        curve = {"curve_server_key": public, "curve_key_pair": (public, secret)}
    client = ZMQClient(args.endpoint, timeout_ms=args.timeout_ms, **curve)
    try:
        health = client.health()
    except WorkerError as err:
        sys.stderr.write("unhealthy: %s: %s\n" % (err.code, err.message))
        return 1
    finally:
        client.close()
    if health.get("ready") is not True:
        sys.stderr.write("not ready: %s\n" % json.dumps(health, sort_keys=True))
        return 1
    if not args.quiet:
        sys.stdout.write(json.dumps(health, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
