"""The demo policy: deterministic, no model, identical to the TypeScript embedded worker's.

Input ``data``: the standard observation ``{images?: {<cam>: uint8 [H, W, 3]}, state: float32 [dof],
instruction?: str}`` or the original ROBOTIS example ``{image: ..., robot_state: [...]}`` (state =
robot_state). Output: ``{action: float32 [16, dof], dt_s: 1/30, model: "demo-v1", instruction: <echo or "">}``
with ``action[k][j] = float32(state[j] + float32(0.01 * (k + 1)))`` for k = 0..15 (float32 arithmetic), so
both implementations agree bit for bit. A state of any numeric dtype or a flat number list is taken as float32;
a missing or empty state is ``bad_request`` with path ``/data/state``.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from .codec import as_array
from .protocol import WorkerError

HORIZON = 16
DT_S = 1.0 / 30.0
MODEL = "demo-v1"
STEP = 0.01


def demo_action(state: np.ndarray) -> np.ndarray:
    """action[k][j] = float32(state[j] + float32(0.01 * (k + 1))), k = 0..15, as float32 [16, dof]."""
    steps = (STEP * np.arange(1, HORIZON + 1, dtype=np.float64)).astype(np.float32)
    return np.asarray(state, dtype=np.float32)[None, :] + steps[:, None]


def _state(data: Dict[str, Any]) -> np.ndarray:
    if "state" in data and data["state"] is not None:
        value, path = data["state"], "/data/state"
    elif "robot_state" in data and data["robot_state"] is not None:
        value, path = data["robot_state"], "/data/robot_state"
    else:
        raise WorkerError("bad_request", "the demo policy needs data.state (float32 [dof]) or data.robot_state", "/data/state")
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise WorkerError("bad_request", "state must be 1-D, got shape %s" % list(value.shape), path)
        state = value.astype(np.float32, copy=False)
    elif isinstance(value, list):
        if any(isinstance(v, list) for v in value):
            raise WorkerError("bad_request", "state must be a flat list of numbers", path)
        state = as_array(value, "float32", path)
    else:
        raise WorkerError("bad_request", "state must be a list of numbers or a float32 tensor", path)
    if state.size == 0:
        raise WorkerError("bad_request", "state is empty", path)
    finite = np.isfinite(state)
    if not finite.all():
        j = int(np.argmin(finite))
        raise WorkerError("bad_request", "state[%d] is not a finite number" % j, "%s/%d" % (path, j))
    return state


def _check_images(data: Dict[str, Any]) -> None:
    images = data.get("images")
    if images is None:
        return
    if not isinstance(images, dict):
        raise WorkerError("bad_request", "/data/images: expected a map of camera name to uint8 [H, W, 3]", "/data/images")
    for cam, img in images.items():
        path = "/data/images/%s" % cam
        if isinstance(img, np.ndarray):
            if img.dtype != np.uint8 or img.ndim != 3:
                raise WorkerError("bad_request", "%s: expected uint8 [H, W, C], got %s %s" % (path, img.dtype, list(img.shape)), path)
        elif not isinstance(img, list):
            raise WorkerError("bad_request", "%s: expected an image array" % path, path)


def demo_policy(data: Any, context: Any = None) -> Dict[str, Any]:
    """The demo policy as a handler: ``fn(data, context) -> ActionChunk``."""
    if not isinstance(data, dict):
        raise WorkerError("bad_request", "/data: expected an observation map with 'state'", "/data")
    _check_images(data)
    state = _state(data)
    instruction = data.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise WorkerError("bad_request", "/data/instruction: expected a string", "/data/instruction")
    return {"action": demo_action(state), "dt_s": DT_S, "model": MODEL, "instruction": instruction or ""}


def make_demo_handler(delay_ms: float = 0.0) -> Callable[[Any, Any], Dict[str, Any]]:
    """The demo policy, sleeping ``delay_ms`` before answering to emulate compute."""
    if delay_ms <= 0:
        return demo_policy

    def handler(data: Any, context: Optional[Any] = None) -> Dict[str, Any]:
        time.sleep(delay_ms / 1000.0)
        return demo_policy(data, context)

    return handler
