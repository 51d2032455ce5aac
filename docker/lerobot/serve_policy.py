"""LeRobot policy worker: loads a pretrained LeRobot policy (ACT, Diffusion, SmolVLA, pi0, ...) with LeRobot's
own API and serves action chunks over the physical-ai-gateway protocol.

Needs lerobot >= 0.4 (policies saved with their pre/post-processor pipelines); tested with lerobot 0.6.1 and
torch 2.11 on CPU by test/frameworks/lerobot.test.ts (scripts/ensure-lerobot.sh sets that environment up).
Each request runs LeRobot's own inference path, as its control loop and its RTC rollout do:
  lerobot.policies.utils.prepare_observation_for_inference (uint8 HWC -> float [0, 1] CHW, batch of 1, task)
  -> the saved preprocessor (rename, batch, device, normalise) -> policy.predict_action_chunk
  -> the saved postprocessor (unnormalise, to CPU), on the whole chunk.
Requests are independent: each one is the first step of an episode. The chunk is the n_action_steps actions the
policy's select_action would run from that observation (ACT: the first n_action_steps of its chunk; Diffusion:
its observation history filled with this observation, as select_action does after reset()).

Environment:
  POLICY_PATH       local checkpoint folder (config.json, model.safetensors, policy_*processor*.json) or hub id
  POLICY_DEVICE     cuda | cpu | mps (default cuda)
  LEROBOT_CAMERAS   comma list mapping the request's camera names to the policy's image keys, e.g.
                    "front=top,hand=wrist" (request camera `front` is the policy's observation.images.top);
                    default: camera <name> is observation.images.<name>
  LEROBOT_SEED      when set, torch is seeded with it before each inference: the same observation then gives the
                    same chunk from sampling policies (Diffusion, flow matching). Unset: fresh noise each time.
  LEROBOT_PLUGINS   comma list of extra modules to import before loading (policy plugins that are not installed
                    as lerobot_policy_* distributions; installed ones are found by LeRobot itself)
  HF_HUB_OFFLINE=1  for a local checkpoint on a machine without hub access
  LEROBOT_OUTPUT_ROOT  where training jobs write <output_folder_name>/ (default $PHYSICAL_AI_DATA/outputs/train,
                    i.e. ~/.cache/physical_ai_tools/lerobot/outputs/train on the host, as the original layout;
                    without PHYSICAL_AI_DATA: that host folder itself)

Training: a `train` request runs train_job.py (LeRobot's own lerobot-train loop) as a child process through the
SDK's JobRunner; see train_args() for how the original options map to lerobot-train arguments.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

sys.path.insert(0, "/app")  # the image keeps serve_common.py beside this file
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))  # a source checkout
from serve_common import serve  # noqa: E402

from physical_ai_worker import JobSpec, WorkerError  # noqa: E402

from lerobot.configs.policies import PreTrainedConfig  # noqa: E402
from lerobot.policies.factory import get_policy_class, make_pre_post_processors  # noqa: E402
from lerobot.policies.utils import prepare_observation_for_inference  # noqa: E402

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"


def camera_map() -> Dict[str, str]:
    """Request camera name -> policy image key (full key, observation.images.<x>)."""
    out: Dict[str, str] = {}
    for pair in os.environ.get("LEROBOT_CAMERAS", "").split(","):
        if "=" not in pair:
            continue
        ours, theirs = (s.strip() for s in pair.split("=", 1))
        out[ours] = theirs if theirs.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + theirs
    return out


class Served:
    """The loaded policy, its processor pipelines and what a request must carry."""

    def __init__(self, policy: Any, pre: Any, post: Any, device: str) -> None:
        self.policy = policy
        self.pre = pre
        self.post = post
        self.device = torch.device(device)
        config = policy.config
        state = config.input_features.get(STATE_KEY)
        self.state_dim: Optional[int] = int(state.shape[0]) if state is not None else None
        mapping = camera_map()
        by_key = {key: ours for ours, key in mapping.items()}
        # (request camera, policy image key, (C, H, W))
        self.cameras: List[Tuple[str, str, Tuple[int, ...]]] = [
            (by_key.get(key, key[len(IMAGE_PREFIX):] if key.startswith(IMAGE_PREFIX) else key), key, tuple(f.shape))
            for key, f in config.image_features.items()
        ]
        unknown = sorted(set(mapping.values()) - set(config.image_features))
        if unknown:
            raise RuntimeError("LEROBOT_CAMERAS names %s, which the policy does not have (its image keys: %s)"
                             % (", ".join(unknown), ", ".join(config.image_features) or "none"))
        self.n_obs_steps = int(getattr(config, "n_obs_steps", 1) or 1)
        n = getattr(config, "n_action_steps", None)
        self.n_action_steps: Optional[int] = n if isinstance(n, int) and n > 0 else None
        seed = os.environ.get("LEROBOT_SEED", "").strip()
        self.seed: Optional[int] = int(seed) if seed else None

    def frame(self, obs: Dict[str, Any]) -> Dict[str, np.ndarray]:
        """The request's observation as LeRobot's raw frame {feature key: numpy}, checked against the policy."""
        state = obs["state"]
        if self.state_dim is not None and state.shape[0] != self.state_dim:
            raise WorkerError("bad_request", "/data/state: the policy's observation.state has %d values, got %d"
                              % (self.state_dim, state.shape[0]), "/data/state")
        frame: Dict[str, np.ndarray] = {}
        if self.state_dim is not None:
            frame[STATE_KEY] = np.array(state, dtype=np.float32)  # a copy: torch wants writable memory
        for cam, key, (c, h, w) in self.cameras:
            img = obs["images"].get(cam)
            path = "/data/images/%s" % cam
            if img is None:
                raise WorkerError("bad_request", "%s is missing: the policy needs camera %r as %s (request cameras: %s)"
                                  % (path, cam, key, ", ".join(sorted(obs["images"])) or "none"), path)
            if img.shape != (h, w, c):
                raise WorkerError("bad_request", "%s: the policy's %s is %dx%d, got %dx%d"
                                  % (path, key, h, w, img.shape[0], img.shape[1]), path)
            frame[key] = np.array(img, dtype=np.uint8)
        return frame

    def chunk(self, obs: Dict[str, Any]) -> np.ndarray:
        frame = self.frame(obs)
        self.policy.reset()
        self.pre.reset()
        self.post.reset()
        if self.seed is not None:
            torch.manual_seed(self.seed)
        batch = prepare_observation_for_inference(frame, self.device, task=obs["instruction"], robot_type="")
        batch = self.pre(batch)
        if self.n_obs_steps > 1:  # a history of n_obs_steps observations, all this one (select_action after reset)
            for key in [STATE_KEY] + [k for _, k, _ in self.cameras]:
                if key in batch:
                    batch[key] = torch.stack([batch[key]] * self.n_obs_steps, dim=1)
        try:
            actions = self.policy.predict_action_chunk(batch)  # [1, H, dof]
        except NotImplementedError:  # a policy with one action per call
            actions = self.policy.select_action(batch)
        if actions.ndim == 2:
            actions = actions.unsqueeze(1)
        if self.n_action_steps is not None:
            actions = actions[:, : self.n_action_steps]
        actions = self.post(actions)
        return actions[0].float().cpu().numpy()


def load(args: Any) -> Served:
    if not args.policy_path:
        raise RuntimeError("set POLICY_PATH (or --policy-path) to a LeRobot checkpoint")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("POLICY_DEVICE=%s but torch sees no CUDA device; set POLICY_DEVICE=cpu" % args.device)
    from lerobot.utils.import_utils import register_third_party_plugins

    register_third_party_plugins()  # installed lerobot_policy_* packages
    for module in filter(None, (m.strip() for m in os.environ.get("LEROBOT_PLUGINS", "").split(","))):
        importlib.import_module(module)
    config = PreTrainedConfig.from_pretrained(args.policy_path)
    config.device = args.device
    policy = get_policy_class(config.type).from_pretrained(args.policy_path, config=config)
    policy.to(args.device)
    policy.eval()
    try:
        pre, post = make_pre_post_processors(
            policy.config,
            pretrained_path=args.policy_path,
            preprocessor_overrides={"device_processor": {"device": args.device}},
        )
    except FileNotFoundError as err:
        raise RuntimeError("%s has no saved pre/post-processors (%s): a checkpoint from lerobot < 0.4? Convert it with "
                         "python -m lerobot.processor.migrate_policy_normalization" % (args.policy_path, err)) from err
    return Served(policy, pre, post, args.device)


@torch.inference_mode()
def infer(served: Served, obs: Dict[str, Any]) -> np.ndarray:
    return served.chunk(obs)


@torch.inference_mode()
def warmup(served: Served) -> None:
    """One inference on a blank observation, so the first request does not pay for lazy initialisation."""
    images = {cam: np.zeros((h, w, c), np.uint8) for cam, _, (c, h, w) in served.cameras}
    served.chunk({"images": images, "state": np.zeros(served.state_dim or 0, np.float32), "instruction": ""})


# The original training options (physical_ai_tools' TrainingManager) -> lerobot-train arguments. The gateway has
# validated them (src/jobs/train-options.ts); `extra_args` are further `--key=value` lerobot-train arguments.
OPTION_ARGS = {
    "dataset": "dataset.repo_id", "policy_type": "policy.type", "policy_device": "policy.device", "seed": "seed",
    "num_workers": "num_workers", "batch_size": "batch_size", "steps": "steps", "eval_freq": "env_eval_freq",
    "log_freq": "log_freq", "save_freq": "save_freq",
}
TRAIN_JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_job.py")


def output_root() -> str:
    root = os.environ.get("LEROBOT_OUTPUT_ROOT")
    if root:
        return root
    data = os.environ.get("PHYSICAL_AI_DATA")
    return os.path.join(data, "outputs", "train") if data else os.path.expanduser("~/.cache/physical_ai_tools/lerobot/outputs/train")


def train_args(options: Dict[str, Any], output_dir: str) -> List[str]:
    args = ["--%s=%s" % (arg, options[key]) for key, arg in OPTION_ARGS.items() if options.get(key) is not None]
    args += ["--output_dir=%s" % output_dir, "--policy.push_to_hub=false", "--wandb.enable=false"]
    return args + [str(a) for a in options.get("extra_args") or []]


def checkpoint_complete(step_dir: str) -> bool:
    model = os.path.join(step_dir, "pretrained_model")
    return all(os.path.isfile(os.path.join(model, f)) for f in ("config.json", "model.safetensors")) and \
        os.path.isfile(os.path.join(step_dir, "training_state", "training_step.json"))


def prune_checkpoints(output_dir: str) -> None:
    """Removes checkpoint folders a killed run left half written, and points `last` at the newest complete one."""
    folder = os.path.join(output_dir, "checkpoints")
    if not os.path.isdir(folder):
        return
    steps = sorted(d for d in os.listdir(folder) if d != "last" and os.path.isdir(os.path.join(folder, d)))
    complete = [d for d in steps if checkpoint_complete(os.path.join(folder, d))]
    for d in steps:
        if d not in complete:
            shutil.rmtree(os.path.join(folder, d), ignore_errors=True)
    last = os.path.join(folder, "last")
    if os.path.islink(last) and not os.path.exists(last):
        os.unlink(last)
    if complete and not os.path.lexists(last):
        os.symlink(complete[-1], last)


def train(options: Dict[str, Any], job_id: str) -> JobSpec:
    name = options.get("output_folder_name") or job_id
    output_dir = os.path.join(output_root(), str(name))
    if os.path.exists(output_dir):
        raise WorkerError("bad_request", "/data/output_folder_name: %s exists already; choose another name" % output_dir,
                          "/data/output_folder_name")
    return JobSpec(argv=[sys.executable, TRAIN_JOB] + train_args(options, output_dir), output_dir=output_dir,
                   on_exit=lambda code: prune_checkpoints(output_dir))


if __name__ == "__main__":
    sys.exit(serve("lerobot", os.environ.get("POLICY_PATH", "lerobot-policy"), load, infer, warmup, train=train))
