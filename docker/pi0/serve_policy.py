"""Pi0 policy worker: loads an openpi checkpoint with ``policy_config.create_trained_policy`` and serves action
chunks over the physical-ai-gateway protocol (instead of openpi's websocket server).

NOT RUN IN THIS PROJECT'S CI (no GPU, no access to gs://openpi-assets there); written against openpi's API
(``openpi.training.config.get_config``, ``openpi.policies.policy_config.create_trained_policy``,
``openpi.shared.download.maybe_download``). Environment:
  OPENPI_CONFIG      training config name (default pi0_aloha_sim)
  POLICY_PATH        checkpoint dir or gs:// URL (default gs://openpi-assets/checkpoints/pi0_aloha_sim)
  OPENPI_CAMERAS     our camera name -> the config's image key: "front=cam_high,wrist=cam_left_wrist"
  OPENPI_CHW         1 when the config wants images channel-first (ALOHA configs: 3x224x224); default 1
The observation given to openpi: {"state": [dof], "images": {key: uint8}, "prompt": instruction}; the reply's
"actions" (horizon, dof) is the chunk.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict

import numpy as np

sys.path.insert(0, "/app")
from serve_common import serve  # noqa: E402

from openpi.policies import policy_config  # noqa: E402
from openpi.shared import download  # noqa: E402
from openpi.training import config as openpi_config  # noqa: E402


def cameras() -> Dict[str, str]:
    pairs = [p.split("=", 1) for p in os.environ.get("OPENPI_CAMERAS", "").split(",") if "=" in p]
    return {a.strip(): b.strip() for a, b in pairs}


def load(args: Any) -> Any:
    cfg = openpi_config.get_config(os.environ.get("OPENPI_CONFIG", "pi0_aloha_sim"))
    checkpoint = download.maybe_download(args.policy_path or "gs://openpi-assets/checkpoints/pi0_aloha_sim")
    return policy_config.create_trained_policy(cfg, checkpoint)


def to_openpi(obs: Dict[str, Any]) -> Dict[str, Any]:
    chw = os.environ.get("OPENPI_CHW", "1") == "1"
    cam_map = cameras()
    images = {cam_map.get(cam, cam): (np.transpose(img, (2, 0, 1)) if chw else img) for cam, img in obs["images"].items()}
    return {"state": obs["state"], "images": images, "prompt": obs["instruction"]}


def infer(policy: Any, obs: Dict[str, Any]) -> np.ndarray:
    result = policy.infer(to_openpi(obs))
    return np.asarray(result["actions"], dtype=np.float32)


if __name__ == "__main__":
    sys.exit(serve("pi0", os.environ.get("OPENPI_CONFIG", "pi0_aloha_sim"), load, infer))
