"""GR00T N1.5 policy worker: loads an Isaac-GR00T N1.5 checkpoint with ``Gr00tPolicy`` and serves action chunks
over the physical-ai-gateway protocol.

NOT RUN IN THIS PROJECT'S CI (no GPU, no Hugging Face hub access there); written against Isaac-GR00T's
n1.5 API (``gr00t.model.policy.Gr00tPolicy``, ``gr00t.experiment.data_config.DATA_CONFIG_MAP``). Environment:
  POLICY_PATH         checkpoint (default nvidia/GR00T-N1.5-3B, or a fine-tuned folder)
  GROOT_EMBODIMENT    embodiment tag (default new_embodiment)
  GROOT_DATA_CONFIG   data config name in DATA_CONFIG_MAP (default so100)
  GROOT_STATE_GROUPS  how our flat state splits into state.<group> keys, in order: "single_arm:5,gripper:1"
  GROOT_CAMERAS       our camera name -> video key: "front=webcam" (default: video.<our name>)
Action chunk: the action.<group> arrays (16, D_g) concatenated in the order of the data config's action keys.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Tuple

import numpy as np

sys.path.insert(0, "/app")
from serve_common import serve  # noqa: E402

from gr00t.experiment.data_config import DATA_CONFIG_MAP  # noqa: E402
from gr00t.model.policy import Gr00tPolicy  # noqa: E402


def groups() -> List[Tuple[str, int]]:
    spec = os.environ.get("GROOT_STATE_GROUPS", "single_arm:5,gripper:1")
    out = []
    for part in spec.split(","):
        name, _, size = part.partition(":")
        out.append((name.strip(), int(size)))
    return out


def cameras() -> Dict[str, str]:
    pairs = [p.split("=", 1) for p in os.environ.get("GROOT_CAMERAS", "").split(",") if "=" in p]
    return {a.strip(): b.strip() for a, b in pairs}


def load(args: Any) -> Any:
    data_config = DATA_CONFIG_MAP[os.environ.get("GROOT_DATA_CONFIG", "so100")]
    policy = Gr00tPolicy(
        model_path=args.policy_path or "nvidia/GR00T-N1.5-3B",
        embodiment_tag=os.environ.get("GROOT_EMBODIMENT", "new_embodiment"),
        modality_config=data_config.modality_config(),
        modality_transform=data_config.transform(),
        device=args.device,
    )
    policy._pag_action_keys = list(data_config.action_keys)  # noqa: SLF001
    return policy


def to_groot(obs: Dict[str, Any]) -> Dict[str, Any]:
    state = obs["state"]
    wanted = sum(size for _, size in groups())
    if state.shape[0] != wanted:
        from physical_ai_worker import WorkerError
        raise WorkerError("bad_request", "state has %d values; GROOT_STATE_GROUPS wants %d" % (state.shape[0], wanted), "/data/state")
    out: Dict[str, Any] = {}
    offset = 0
    for name, size in groups():  # N1.5 flat keys, time dimension T=1
        out["state.%s" % name] = state[offset:offset + size][None, :].astype(np.float64)
        offset += size
    cam_map = cameras()
    for cam, img in obs["images"].items():
        out["video.%s" % cam_map.get(cam, cam)] = img[None, ...]  # uint8 (1, H, W, 3)
    out["annotation.human.action.task_description"] = [obs["instruction"]]
    return out


def infer(policy: Any, obs: Dict[str, Any]) -> np.ndarray:
    actions = policy.get_action(to_groot(obs))  # {"action.<group>": (16, D)}
    keys = [k if k.startswith("action.") else "action.%s" % k for k in policy._pag_action_keys]  # noqa: SLF001
    parts = [np.asarray(actions[k], dtype=np.float32).reshape(actions[k].shape[0], -1) for k in keys if k in actions]
    return np.concatenate(parts, axis=1)


if __name__ == "__main__":
    sys.exit(serve("groot", os.environ.get("POLICY_PATH", "nvidia/GR00T-N1.5-3B"), load, infer))
