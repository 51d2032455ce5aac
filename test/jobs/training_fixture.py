"""The training tests' LeRobot material (test/jobs/training.test.ts), run in .venv-lerobot. Nothing is downloaded.

  setup OUT_DIR
      Writes, with LeRobot's own APIs:
        OUT_DIR/hf_lerobot/local/paig_synthetic   a LeRobotDataset (LeRobotDataset.create + add_frame +
            save_episode + finalize): 3 episodes of 20 frames at 10 fps, a 32x32 RGB camera
            observation.images.top, a 6-value state and a 6-value action (the action a fixed function of the state,
            so there is something to learn); HF_LEROBOT_HOME=OUT_DIR/hf_lerobot makes its repo id resolve there
        OUT_DIR/act-tiny   an untrained ACT with the same features and the tiny dimensions of TINY_ACT, saved with
            save_pretrained (the policy the worker serves before a training job's checkpoint replaces it)
      Prints {"hf_lerobot_home", "repo_id", "policy", "extra_args"}: extra_args are the lerobot-train arguments
      that give the trained policy the same tiny dimensions.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO_ID = "local/paig_synthetic"
SIZE = 32
DOF = 6
# ACT with a ResNet-18 backbone from seeded weights (no ImageNet download) and a one-layer, 32-wide transformer.
TINY_ACT = {"dim_model": 32, "n_heads": 2, "dim_feedforward": 64, "n_encoder_layers": 1, "n_decoder_layers": 1,
            "chunk_size": 10, "n_action_steps": 5, "latent_dim": 8, "pretrained_backbone_weights": None}


def dataset(home: str) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    names = ["j%d" % i for i in range(DOF)]
    features = {
        "observation.state": {"dtype": "float32", "shape": (DOF,), "names": names},
        "action": {"dtype": "float32", "shape": (DOF,), "names": names},
        "observation.images.top": {"dtype": "image", "shape": (SIZE, SIZE, 3), "names": ["height", "width", "channels"]},
    }
    ds = LeRobotDataset.create(REPO_ID, fps=10, features=features, root=os.path.join(home, REPO_ID), use_videos=False)
    rng = np.random.default_rng(0)
    for episode in range(3):
        for k in range(20):
            state = np.sin(np.arange(DOF) + episode + k / 20 * 6.28).astype(np.float32)
            ds.add_frame({"observation.state": state, "action": (0.5 * state + 0.2).astype(np.float32),
                          "observation.images.top": rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8), "task": "reach"})
        ds.save_episode()
    ds.finalize()


def policy(out: str, home: str) -> None:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    meta = LeRobotDatasetMetadata(REPO_ID, root=os.path.join(home, REPO_ID))
    inputs = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(DOF,)),
              "observation.images.top": PolicyFeature(type=FeatureType.VISUAL, shape=(3, SIZE, SIZE))}
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(DOF,))}
    config = ACTConfig(input_features=inputs, output_features=outputs, device="cpu", **TINY_ACT)
    torch.manual_seed(5)
    act = ACTPolicy(config)
    act.eval()
    pre, post = make_pre_post_processors(config, dataset_stats=meta.stats)
    act.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)


def setup(out_dir: str) -> None:
    home = os.path.join(out_dir, "hf_lerobot")
    dataset(home)
    policy(os.path.join(out_dir, "act-tiny"), home)
    extra = ["--policy.%s=%s" % (k, "null" if v is None else v) for k, v in TINY_ACT.items()]
    print(json.dumps({"hf_lerobot_home": home, "repo_id": REPO_ID, "policy": os.path.join(out_dir, "act-tiny"), "extra_args": extra}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "setup":
        setup(sys.argv[2])
    else:
        sys.exit(__doc__)
