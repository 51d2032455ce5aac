"""LeRobot policy worker: loads a pretrained LeRobot policy (ACT, Diffusion, SmolVLA, pi0 port, ...) and serves
action chunks over the physical-ai-gateway protocol.

NOT RUN IN THIS PROJECT'S CI (no GPU, no Hugging Face hub access there); written against LeRobot's public API
(``lerobot.policies`` since 0.3, ``lerobot.common.policies`` before). Environment:
  POLICY_PATH       hub id or local checkpoint folder (pretrained_model/ with config.json + model.safetensors)
  POLICY_DEVICE     cuda | cpu (default cuda)
  LEROBOT_CAMERAS   comma list mapping our camera names to the policy's image keys, e.g. "front=top,wrist=wrist"
                    (default: each camera becomes observation.images.<name>)
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict

import numpy as np
import torch

sys.path.insert(0, "/app")
from serve_common import serve  # noqa: E402

try:  # lerobot >= 0.3
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class
except ImportError:  # lerobot 0.1 / 0.2
    from lerobot.common.policies.factory import get_policy_class  # type: ignore
    from lerobot.configs.policies import PreTrainedConfig  # type: ignore


def camera_map() -> Dict[str, str]:
    pairs = [p.split("=", 1) for p in os.environ.get("LEROBOT_CAMERAS", "").split(",") if "=" in p]
    return {ours.strip(): theirs.strip() for ours, theirs in pairs}


def load(args: Any) -> Any:
    if not args.policy_path:
        raise SystemExit("set POLICY_PATH (or --policy-path) to a LeRobot checkpoint")
    config = PreTrainedConfig.from_pretrained(args.policy_path)
    policy_cls = get_policy_class(config.type)
    policy = policy_cls.from_pretrained(args.policy_path)
    policy.to(args.device)
    policy.eval()
    policy.reset()
    policy._pag_device = args.device  # noqa: SLF001 - remembered for the batch tensors
    policy._pag_cameras = camera_map()  # noqa: SLF001
    return policy


def to_batch(policy: Any, obs: Dict[str, Any]) -> Dict[str, Any]:
    device = policy._pag_device  # noqa: SLF001
    batch: Dict[str, Any] = {"observation.state": torch.from_numpy(obs["state"]).float().unsqueeze(0).to(device)}
    for cam, img in obs["images"].items():
        key = "observation.images.%s" % policy._pag_cameras.get(cam, cam)  # noqa: SLF001
        # LeRobot image features are float32 [B, C, H, W] in [0, 1]
        batch[key] = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255.0).unsqueeze(0).to(device)
    batch["task"] = [obs["instruction"]]  # language-conditioned policies (SmolVLA, pi0) read it; others ignore it
    return batch


@torch.inference_mode()
def infer(policy: Any, obs: Dict[str, Any]) -> np.ndarray:
    batch = to_batch(policy, obs)
    if hasattr(policy, "predict_action_chunk"):  # chunking policies: the whole chunk [1, H, dof]
        chunk = policy.predict_action_chunk(batch)
        return chunk[0].float().cpu().numpy()
    # one action per call: the chunk is a single step
    return policy.select_action(batch).float().cpu().numpy().reshape(1, -1)


if __name__ == "__main__":
    sys.exit(serve("lerobot", os.environ.get("POLICY_PATH", "lerobot-policy"), load, infer))
