"""One LeRobot training run, started by the LeRobot worker's JobRunner (serve_policy.py) as a child process.

    python train_job.py --dataset.repo_id=... --policy.type=act --output_dir=... --steps=... [lerobot-train args]

Runs LeRobot's own training entry point (lerobot.scripts.lerobot_train.main, what `lerobot-train` runs) with these
arguments, and reports to the worker (physical_ai_worker.progress_writer, one JSON line per event):
  {"type": "progress", "step", "total_steps", "loss", "lr", "grad_norm", "steps_per_s", "eta_s"}
      after a training step, at most every PROGRESS_INTERVAL_S and always for the last step. `loss` is the value
      LeRobot's update_policy computed for that step (its MetricsTracker's latest `loss`, from `loss.item()`),
      read by wrapping lerobot_train.update_policy; nothing here computes a loss.
  {"type": "checkpoint", "step", "path"}   after LeRobot's save_checkpoint wrote <output_dir>/checkpoints/<step>
  {"type": "error", "message"}   when the run ends before its first step (LeRobot refused the arguments, the dataset
      cannot be loaded, the policy cannot be made): LeRobot's own error line, so the job fails with it rather than with
      a traceback (the traceback stays in the run's log). See start_error().
SIGTERM (a cancel) is taken at the next step boundary: the step in progress and a checkpoint being written finish,
then the run exits with 143, so the checkpoint folder holds only complete checkpoints.
"""
from __future__ import annotations

import argparse
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


def start_error(err: BaseException, parser_error: Dict[str, str]) -> str:
    """The one line that says why LeRobot did not start training.

    - argparse refused an argument (unknown --policy.type, a bad value): its ``lerobot-train: error: ...`` line
    - draccus could not build the config (LeRobot prints ``error: <DecodingError>`` and exits 1): the path it names
      and the innermost cause, e.g. ACTConfig's own ValueError for an out-of-range option
    - any other exception (a dataset that is not there): ``Type: message`` of that exception
    """
    if "decoding" in parser_error:
        return parser_error["decoding"]
    if "argparse" in parser_error:
        return parser_error["argparse"]
    return _describe(err)


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return "%s.%s: %s" % (type(err).__module__, type(err).__name__, text) if type(err).__module__ not in ("builtins", "__main__") \
        else "%s: %s" % (type(err).__name__, text)


def _innermost(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _record_parser_errors(parser_error: Dict[str, str]) -> None:
    """Records the error lines of the two parsers LeRobot uses, before they print them and exit."""
    import draccus

    original_error = argparse.ArgumentParser.error

    def error(self: argparse.ArgumentParser, message: str) -> Any:
        parser_error.setdefault("argparse", "%s: error: %s" % (self.prog, message))
        return original_error(self, message)

    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    original_parse = draccus.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        try:
            return original_parse(*args, **kwargs)
        except draccus.utils.DecodingError as err:
            cause = _innermost(err)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            parser_error["decoding"] = "error: %s" % first if cause is err else "error: %s %s" % (first.split(":", 1)[0] + ":", _describe(cause))
            raise

    draccus.parse = parse


def main() -> int:
    from lerobot.scripts import lerobot_train

    emit = progress_writer()
    parser_error: Dict[str, str] = {}
    _record_parser_errors(parser_error)
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
    try:
        lerobot_train.main()
    except Cancelled:
        raise
    except BaseException as err:
        if state["t0"] is None and not (isinstance(err, SystemExit) and err.code in (0, None)) and not isinstance(err, KeyboardInterrupt):
            emit({"type": "error", "message": start_error(err, parser_error)})
        raise
    return 0


def _total_steps(args: Any) -> int:
    for arg in args:
        if arg.startswith("--steps="):
            return int(arg.split("=", 1)[1])
    return 100000  # lerobot's default


if __name__ == "__main__":
    sys.exit(main())
