"""Real LeRobot policies for test/frameworks/lerobot.test.ts and bench/real-act.ts, run in .venv-lerobot
(scripts/ensure-lerobot.sh). Nothing is downloaded: HF_HUB_OFFLINE=1, and ACT's/Diffusion's ResNet backbones
start from seeded random weights instead of ImageNet ones.

  build OUT_DIR [--image-size N]
      Builds policies from their LeRobot configs with seeded weights and dataset statistics made of synthetic
      numbers, and saves each with LeRobot's own save_pretrained (policy + pre/post-processor pipelines):
        OUT_DIR/act        ACT, cameras observation.images.top and .wrist (N x N RGB), state 6, action 6
        OUT_DIR/diffusion  Diffusion Policy, camera observation.images.top, state 6, action 6, n_obs_steps 2
        OUT_DIR/probe      the test-only plugin policy in lerobot_policy_paig_probe/ (see its docstring)
      Prints one JSON line describing them.

  reference JOBS_JSON
      JOBS_JSON: [{"policy": POLICY_DIR, "observation": OBSERVATION}, ...]. Loads each POLICY_DIR with LeRobot's
      API only (no project code) and prints {"chunks": [[[...], ...], ...]}, for each job the actions
      LeRobot's own control loop would run for that observation from the start of an episode: policy.reset(),
      then n_action_steps calls of select_action, each through lerobot's prepare_observation_for_inference,
      the saved preprocessor and postprocessor (lerobot.common.control_utils.predict_action). OBSERVATION:
      {"state": [..], "task": "..", "seed": int|null,
       "images": {"observation.images.<key>": {"file": raw uint8 HxWx3 path, "shape": [H, W, 3]}}}
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lerobot.configs.types import FeatureType, PolicyFeature  # noqa: E402

STATE_DIM = 6
ACTION_DIM = 6


def synthetic_stats(image_keys, image_size):
    """Dataset statistics as LeRobot computes them (mean/std/min/max per feature; per channel for images)."""
    rng = np.random.default_rng(7)
    stats = {}
    for key, dim in (("observation.state", STATE_DIM), ("action", ACTION_DIM)):
        mean = rng.uniform(-0.5, 0.5, dim).astype(np.float32)
        std = rng.uniform(0.2, 1.5, dim).astype(np.float32)
        stats[key] = {"mean": mean, "std": std, "min": mean - 3 * std, "max": mean + 3 * std}
    for key in image_keys:
        stats[key] = {
            "mean": np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1),
            "std": np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1),
            "min": np.zeros((3, 1, 1), np.float32),
            "max": np.ones((3, 1, 1), np.float32),
        }
    return {k: {s: torch.from_numpy(v) for s, v in d.items()} for k, d in stats.items()}


def features(image_keys, image_size):
    inputs = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,))}
    for key in image_keys:
        inputs[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, image_size, image_size))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))}
    return inputs, outputs


def save(policy_cls, config, image_keys, image_size, out, seed):
    from lerobot.policies.factory import make_pre_post_processors

    torch.manual_seed(seed)
    policy = policy_cls(config)
    policy.eval()
    pre, post = make_pre_post_processors(config, dataset_stats=synthetic_stats(image_keys, image_size))
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    return {"path": out, "type": config.type, "params": sum(p.numel() for p in policy.parameters())}


def build(out_dir, image_size):
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lerobot_policy_paig_probe.configuration_paig_probe import PaigProbeConfig
    from lerobot_policy_paig_probe.modeling_paig_probe import PaigProbePolicy

    made = {}
    keys = ["observation.images.top", "observation.images.wrist"]
    inputs, outputs = features(keys, image_size)
    # ACT's defaults (ResNet-18, 4 encoder layers, d=512, chunk 100), minus the ImageNet download
    act = ACTConfig(input_features=inputs, output_features=outputs, device="cpu", pretrained_backbone_weights=None,
                    chunk_size=20, n_action_steps=10)
    made["act"] = save(ACTPolicy, act, keys, image_size, os.path.join(out_dir, "act"), seed=1)

    keys = ["observation.images.top"]
    inputs, outputs = features(keys, image_size)
    crop = int(image_size * 84 / 96)
    diffusion = DiffusionConfig(input_features=inputs, output_features=outputs, device="cpu",
                                pretrained_backbone_weights=None, crop_shape=(crop, crop), n_obs_steps=2,
                                horizon=16, n_action_steps=8, num_inference_steps=10,
                                down_dims=(64, 128, 256))
    made["diffusion"] = save(DiffusionPolicy, diffusion, keys, image_size, os.path.join(out_dir, "diffusion"), seed=2)

    keys = ["observation.images.top", "observation.images.wrist"]
    inputs, outputs = features(keys, image_size)
    probe = PaigProbeConfig(input_features=inputs, output_features=outputs, device="cpu")
    made["probe"] = save(PaigProbePolicy, probe, keys, image_size, os.path.join(out_dir, "probe"), seed=3)
    print(json.dumps(made), flush=True)


def reference(jobs_path):
    from lerobot.common.control_utils import predict_action
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    with open(jobs_path) as f:
        jobs = json.load(f)
    chunks = []
    for job in jobs:
        policy_dir, spec = job["policy"], job["observation"]
        config = PreTrainedConfig.from_pretrained(policy_dir)
        config.device = "cpu"
        policy = get_policy_class(config.type).from_pretrained(policy_dir, config=config)
        policy.eval()
        pre, post = make_pre_post_processors(policy.config, pretrained_path=policy_dir,
                                             preprocessor_overrides={"device_processor": {"device": "cpu"}})
        frame = {"observation.state": np.array(spec["state"], dtype=np.float32)}
        for key, img in spec["images"].items():
            frame[key] = np.fromfile(img["file"], dtype=np.uint8).reshape(img["shape"])
        policy.reset()
        pre.reset()
        post.reset()
        if spec.get("seed") is not None:
            torch.manual_seed(int(spec["seed"]))
        steps = []
        for _ in range(policy.config.n_action_steps):
            action = predict_action(dict(frame), policy, torch.device("cpu"), pre, post, use_amp=False,
                                    task=spec.get("task", ""), robot_type="")
            steps.append(action.reshape(-1).tolist())
        chunks.append(steps)
    print(json.dumps({"chunks": chunks}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "build":
        size = int(sys.argv[sys.argv.index("--image-size") + 1]) if "--image-size" in sys.argv else 96
        build(sys.argv[2], size)
    elif len(sys.argv) == 3 and sys.argv[1] == "reference":
        reference(sys.argv[2])
    else:
        sys.exit(__doc__)
