"""One LeRobot training run, started by the LeRobot worker's JobRunner (serve_policy.py) as a child process.

    python train_job.py --dataset.repo_id=... --policy.type=act --output_dir=... --steps=... [lerobot-train args]

Runs LeRobot's own training entry point (lerobot.scripts.lerobot_train.main, what `lerobot-train` runs) with these
arguments, and reports to the worker (physical_ai_worker.progress_writer, one JSON line per event):
  {"type": "progress", "step", "total_steps", "loss", "lr", "grad_norm", "steps_per_s", "eta_s"}
      after a training step, at most every PROGRESS_INTERVAL_S and always for the last step. `loss` is the value
      LeRobot's update_policy computed for that step (its MetricsTracker's latest `loss`, from `loss.item()`),
      read by wrapping lerobot_train.update_policy; nothing here computes a loss.
  {"type": "checkpoint", "step", "path"}   after LeRobot's save_checkpoint wrote <output_dir>/checkpoints/<step>
SIGTERM (a cancel) is taken at the next step boundary: the step in progress and a checkpoint being written finish,
then the run exits with 143, so the checkpoint folder holds only complete checkpoints.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Dict

from physical_ai_worker import progress_writer

PROGRESS_INTERVAL_S = 0.25
CANCELLED_EXIT_CODE = 143


class Cancelled(SystemExit):
    pass


def main() -> int:
    from lerobot.scripts import lerobot_train

    emit = progress_writer()
    total = _total_steps(sys.argv[1:])
    state: Dict[str, Any] = {"step": None, "t0": None, "last_emit": 0.0, "stop": False}

    def on_sigterm(signum: int, frame: Any) -> None:
        state["stop"] = True

    signal.signal(signal.SIGTERM, on_sigterm)
    original_update = lerobot_train.update_policy
    original_save = lerobot_train.save_checkpoint

    def update_policy(train_metrics: Any, *args: Any, **kwargs: Any) -> Any:
        if state["stop"]:
            raise Cancelled(CANCELLED_EXIT_CODE)
        if state["t0"] is None:
            state["t0"] = time.monotonic()
            state["first_step"] = int(train_metrics.steps)
        out = original_update(train_metrics, *args, **kwargs)
        step = int(train_metrics.steps) + 1  # the tracker counts the step after this call returns
        now = time.monotonic()
        if step >= total or now - state["last_emit"] >= PROGRESS_INTERVAL_S:
            state["last_emit"] = now
            done = step - state["first_step"]
            rate = done / (now - state["t0"]) if now > state["t0"] else None
            emit({
                "type": "progress", "step": step, "total_steps": total,
                "loss": float(train_metrics.loss.val), "lr": float(train_metrics.lr.val),
                "grad_norm": float(train_metrics.grad_norm.val),
                "steps_per_s": rate, "eta_s": (total - step) / rate if rate else None,
            })
        return out

    def save_checkpoint(checkpoint_dir: Any, step: int, *args: Any, **kwargs: Any) -> Any:
        out = original_save(checkpoint_dir, step, *args, **kwargs)
        emit({"type": "checkpoint", "step": int(step), "path": os.path.join(str(checkpoint_dir), "pretrained_model")})
        return out

    lerobot_train.update_policy = update_policy
    lerobot_train.save_checkpoint = save_checkpoint
    sys.argv = ["lerobot-train"] + sys.argv[1:]
    lerobot_train.main()
    return 0


def _total_steps(args: Any) -> int:
    for arg in args:
        if arg.startswith("--steps="):
            return int(arg.split("=", 1)[1])
    return 100000  # lerobot's default


if __name__ == "__main__":
    sys.exit(main())
