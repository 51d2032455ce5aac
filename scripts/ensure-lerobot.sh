#!/usr/bin/env bash
# Sets up the real LeRobot (and PyTorch) from PyPI for test/frameworks/lerobot.test.ts and bench/real-act.ts, in
# the project-local, git-ignored .venv-lerobot/: a Python virtual environment with lerobot, torch (CPU use) and
# the worker SDK's dependencies (pyzmq, msgpack; the SDK itself comes from docker/worker-sdk on PYTHONPATH).
# Idempotent: when the pinned versions are installed it only checks that they import (a few seconds).
# Exits non-zero, saying what failed, when any step fails. Prints progress and times.
#
# Measured 2026-12-01 on the 2-core machine (fresh venv, no pip cache): about 165 s and 5.0 GB on disk, of which
# 2.7 GB are the NVIDIA CUDA runtime wheels that PyPI's Linux x86_64 torch wheel depends on. They cannot be left
# out: torch/lib/libtorch_cuda.so links libcudart, libcublas, libcudnn, libnccl, ... and `import torch` fails
# without them even on CPU (a --no-deps install without them is 1.7 GB and 51 s, but does not import). PyPI has no
# CPU-only torch build for Linux x86_64. lerobot 0.5+ needs Python >= 3.12 (pyenv's 3.12 here; the default
# python3 is 3.11). Downloads go to pip's temp dir only (no cache: PIP_NO_CACHE_DIR), never into the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PAIG_LEROBOT_VENV:-$ROOT/.venv-lerobot}
# The test command sets this up while the first tests run, and a test may call it meanwhile: one installs,
# the others wait for it and then find it installed.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
say() { printf '[ensure-lerobot] %s\n' "$*"; }
die() { printf '[ensure-lerobot] FAILED: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }

# Tested together on 2026-12-01 (Debian 12, pyenv Python 3.12.1). lerobot 0.6.1 needs torch < 2.12; its
# [diffusion] extra brings diffusers (the Diffusion Policy's noise schedulers); [dataset] (datasets, pyarrow, av)
# and [accelerate-dep] are what lerobot-train needs (test/jobs/training.test.ts: LeRobotDataset.create and the
# training loop). Not [training] itself: it adds wandb, which the jobs switch off (--wandb.enable=false).
# datasets 4.8 wants fsspec <= 2026.2.0, hence that pin below.
REQUIREMENTS=(
  'lerobot[diffusion,dataset,accelerate-dep]==0.6.1'
  'torch==2.11.0'
  'pyzmq==27.3.0'
  'msgpack==1.2.4'
)
# Everything they pulled in, pinned too, so a new upload cannot change what the tests run against.
CONSTRAINTS='accelerate==1.15.0
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
anyio==4.16.0
attrs==26.1.0
av==15.1.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
cloudpickle==3.1.3
cmake==4.1.3
cuda-bindings==13.5.0
cuda-pathfinder==1.9.1
cuda-toolkit==13.0.2
datasets==4.8.5
diffusers==0.39.0
dill==0.4.1
draccus==0.11.6
einops==0.8.2
Farama-Notifications==0.0.6
filelock==4.3.1
frozenlist==1.8.0
fsspec==2026.2.0
gymnasium==1.4.0
h11==0.16.0
hf-xet==1.8.0
httpcore==1.0.9
httpx==0.28.1
huggingface_hub==1.33.0
idna==3.20
importlib_metadata==10.2.0
Jinja2==3.1.6
jsonlines==4.0.0
lazy-importer==0.1.0
MarkupSafe==3.0.4
mergedeep==1.3.4
mpmath==1.3.0
multidict==7.2.1
multiprocess==0.70.19
mypy_extensions==1.2.0
networkx==3.7
numpy==2.2.6
nvidia-cublas==13.1.0.3
nvidia-cuda-cupti==13.0.85
nvidia-cuda-nvrtc==13.0.88
nvidia-cuda-runtime==13.0.96
nvidia-cudnn-cu13==9.19.0.56
nvidia-cufft==12.0.0.61
nvidia-cufile==1.15.1.6
nvidia-curand==10.4.0.35
nvidia-cusolver==12.0.4.66
nvidia-cusparse==12.6.3.3
nvidia-cusparselt-cu13==0.8.0
nvidia-nccl-cu13==2.28.9
nvidia-nvjitlink==13.0.88
nvidia-nvshmem-cu13==3.4.5
nvidia-nvtx==13.0.85
opencv-python-headless==4.13.0.92
packaging==25.0
pandas==2.3.3
pillow==12.3.0
propcache==0.5.4
psutil==7.2.2
pyarrow==26.0.1
python-dateutil==4.0.0
pytz==2026.6
PyYAML==6.0.4
regex==2026.11.19
requests==2.34.2
safetensors==0.8.0
setuptools==81.0.0
sympy==1.14.0
termcolor==3.3.0
toml==0.10.2
torchcodec==0.11.1
torchvision==0.26.0
tqdm==4.70.1
triton==3.6.0
typing-inspect==0.9.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
xxhash==4.1.0
yarl==1.25.1
zipp==4.1.2'

# A Python >= 3.12: PAIG_LEROBOT_PYTHON, else python3.12/python3.13 on PATH (a pyenv shim for a version that is
# installed but not selected fails to run, so each candidate is tried), else pyenv's own 3.12/3.13.
find_python() {
  local c
  for c in ${PAIG_LEROBOT_PYTHON:-} python3.12 python3.13 \
    "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12 \
    "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      command -v "$c" 2>/dev/null || echo "$c"
      return 0
    fi
  done
  return 1
}

# What the tests need: torch runs a forward pass on CPU, and lerobot's ACT and Diffusion policies import.
CHECK='
import torch, lerobot
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
from lerobot.datasets.lerobot_dataset import LeRobotDataset
import lerobot.scripts.lerobot_train, accelerate
import zmq, msgpack
torch.manual_seed(0)
y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
assert y.shape == (1, 2)
print("lerobot %s, torch %s (cuda available: %s), pyzmq %s" % (lerobot.__version__, torch.__version__, torch.cuda.is_available(), zmq.__version__))
'

stamp_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

if [ -x "$VENV/bin/python" ]; then
  STAMP=$(stamp_of "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" "${REQUIREMENTS[@]}" "$CONSTRAINTS")
  if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$STAMP" ] && versions=$(HF_HUB_OFFLINE=1 "$VENV/bin/python" -c "$CHECK" 2>/dev/null); then
    say "present in $VENV: $versions ($(elapsed))"
    exit 0
  fi
fi

PYTHON=$(find_python) || die "no Python >= 3.12 found (lerobot 0.5+ needs it): set PAIG_LEROBOT_PYTHON"
say "creating $VENV with $("$PYTHON" --version) ($PYTHON)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV"
printf '%s\n' "$CONSTRAINTS" > "$VENV/constraints.txt"
say "pip install ${REQUIREMENTS[*]} (about 3 GB of wheels, ~5 GB installed; a few minutes)"
t1=$(date +%s)
PIP_NO_CACHE_DIR=1 "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: \
  -c "$VENV/constraints.txt" "${REQUIREMENTS[@]}" || die "pip install of lerobot and torch into $VENV"
say "installed in $(( $(date +%s) - t1 )) s, $(du -sm "$VENV" | cut -f1) MB"
versions=$(HF_HUB_OFFLINE=1 "$VENV/bin/python" -c "$CHECK") || die "torch/lerobot do not import or run in $VENV"
stamp_of "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" "${REQUIREMENTS[@]}" "$CONSTRAINTS" > "$VENV/.stamp"
say "ready: $versions ($(elapsed))"
