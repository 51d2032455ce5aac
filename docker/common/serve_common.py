"""Shared glue for the framework entry points (docker/<framework>/serve_policy.py).

Each entry point loads its policy with the framework's own API and gives this module two functions:
``load() -> policy`` and ``infer(policy, observation) -> np.ndarray float32 [H, dof]``. This module binds the
worker SDK's ZMQServer first (health answers ``ready: false`` while the checkpoint loads), loads and warms the
policy, flips ready, then serves ``inference`` requests as ``{action: float32 [H, dof], dt_s, model, ...}``.

Training (optional): an entry point that gives ``train(options, job_id) -> JobSpec`` gets the SDK's JobRunner
(``train``, ``jobs``, ``cancel_job`` requests; physical_ai_worker/jobs.py); it keeps the
``WORKER_MAX_FINISHED_JOBS`` (default 100) most recent finished jobs for a restarted gateway to list. Every entry point answers the
``command`` request ``{"command": "load_policy", "policy_path": "<checkpoint>"}``: it loads that checkpoint with
the same ``load()``, warms it, and swaps it in between two inferences (a trained job's checkpoint is served
without restarting anything).

Observation (``data`` of an inference request, proto-json/README.md): ``{images?: {cam: uint8 [H, W, 3]},
state: float32 [dof], instruction?: str}``; the original ``{image, robot_state}`` form is accepted too.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from physical_ai_worker import JobRunner, JobSpec, WorkerError, ZMQServer, as_array


def parse_args(framework: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="serve a %s policy over the physical-ai-gateway protocol" % framework)
    p.add_argument("--endpoint", default=os.environ.get("WORKER_ENDPOINT", "tcp://127.0.0.1:5555"))
    p.add_argument("--framework", default=os.environ.get("WORKER_FRAMEWORK", framework))
    p.add_argument("--policy-path", default=os.environ.get("POLICY_PATH"), help="checkpoint: hub id or local folder")
    p.add_argument("--device", default=os.environ.get("POLICY_DEVICE", "cuda"))
    p.add_argument("--dt-s", type=float, default=float(os.environ.get("POLICY_DT_S", 1.0 / 30.0)))
    return p.parse_args()


def observation(data: Any) -> Dict[str, Any]:
    """Normalises the request's data to {images: {cam: uint8 HxWx3}, state: float32 [dof], instruction: str}."""
    if not isinstance(data, dict):
        raise WorkerError("bad_request", "data: expected an observation map", "/data")
    raw_state = data.get("state", data.get("robot_state"))
    if raw_state is None:
        raise WorkerError("bad_request", "data.state (float32 [dof]) is required", "/data/state")
    state = as_array(raw_state, "float32", "/data/state").reshape(-1)
    images: Dict[str, np.ndarray] = {}
    raw_images = data.get("images") or ({"image": data["image"]} if data.get("image") is not None else {})
    for cam, img in raw_images.items():
        arr = as_array(img, "uint8", "/data/images/%s" % cam)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise WorkerError("bad_request", "/data/images/%s: expected uint8 [H, W, 3], got %s" % (cam, list(arr.shape)), "/data/images/%s" % cam)
        images[cam] = arr
    return {"images": images, "state": state, "instruction": str(data.get("instruction") or "")}


def serve(framework: str, model: str, load: Callable[[argparse.Namespace], Any], infer: Callable[[Any, Dict[str, Any]], np.ndarray],
          warmup: Optional[Callable[[Any], None]] = None, train: Optional[Callable[[Dict[str, Any], str], JobSpec]] = None) -> int:
    args = parse_args(framework)
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("WORKER_LOG_LEVEL", "INFO").upper(),
                        format='{"time": %(created)f, "level": "%(levelname)s", "msg": %(message)r}')
    log = logging.getLogger("physical_ai_worker")
    server = ZMQServer(args.endpoint, framework=args.framework, model=model, ready=False, logger=log)
    state: Dict[str, Any] = {}
    lock = threading.Lock()  # one inference at a time on the GPU

    def handle(data: Any, ctx: Any) -> Dict[str, Any]:
        obs = observation(data)
        with lock:
            action = np.ascontiguousarray(infer(state["policy"], obs), dtype=np.float32)
        if action.ndim == 1:
            action = action[None, :]
        return {"action": action, "dt_s": args.dt_s, "model": model, "instruction": obs["instruction"]}

    def command(data: Any, ctx: Any) -> Dict[str, Any]:
        if not isinstance(data, dict) or data.get("command") != "load_policy":
            raise WorkerError("bad_request", "/data/command: this worker knows the command 'load_policy' only", "/data/command")
        path = data.get("policy_path")
        if not isinstance(path, str) or not path:
            raise WorkerError("bad_request", "/data/policy_path: the checkpoint folder to load (a string)", "/data/policy_path")
        if not os.path.isdir(path):
            raise WorkerError("bad_request", "/data/policy_path: %s is not a folder on the worker" % path, "/data/policy_path")
        t0 = time.monotonic()
        new_args = argparse.Namespace(**dict(vars(args), policy_path=path))
        try:
            policy = load(new_args)  # loaded beside the serving policy; inferences go on meanwhile
            if warmup is not None:
                warmup(policy)
        except Exception as err:
            raise WorkerError("worker_error", "cannot load %s: %s: %s" % (path, type(err).__name__, err)) from err
        with lock:
            state["policy"] = policy
            args.policy_path = path
        log.info("now serving %s (loaded in %.1f s)", path, time.monotonic() - t0)
        return {"policy_path": path, "load_s": round(time.monotonic() - t0, 3)}

    server.register_handler("inference", handle)
    server.register_handler("command", command)
    runner = None
    if train is not None:
        runner = JobRunner(logger=log, max_finished=int(os.environ.get("WORKER_MAX_FINISHED_JOBS", "100")))
        runner.register(server, train)
    endpoint = server.bind()  # health answers ready=false while the checkpoint loads
    print('{"event": "worker.listening", "endpoint": "%s", "framework": "%s", "ready": false}' % (endpoint, args.framework), flush=True)

    def load_in_background() -> None:
        t0 = time.monotonic()
        try:
            state["policy"] = load(args)
            if warmup is not None:
                warmup(state["policy"])
        except Exception:
            log.exception("loading the %s policy failed", framework)
            os._exit(3)  # the launcher reports the exit code and these log lines
        server.set_ready(True)
        log.info("policy %s loaded and warmed in %.1f s", model, time.monotonic() - t0)

    threading.Thread(target=load_in_background, name="load-policy", daemon=True).start()
    try:
        server.run()
    finally:
        if runner is not None:
            runner.close()
        server.close()
    return 0
