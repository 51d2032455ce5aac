#!/usr/bin/env bash
# The one test command (npm test, and .ci/run): brings up what the tests need when it is missing
# (Debian's python3-zmq/msgpack/numpy/hypothesis, a Docker engine and the offline worker image, Prometheus),
# then type-checks, lints and runs every test. Stops what it started.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
say() { printf '[test] %s\n' "$*"; }
t0=$SECONDS

[ -d node_modules ] || { say "installing npm packages (npm ci)"; npm ci --no-audit --no-fund; }

need=()
# docker-compose: Debian's compose tool (1.29), for test/docker/compose.test.ts.
for p in python3-zmq python3-msgpack python3-numpy python3-hypothesis docker-compose; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

started_docker=0
if [ -x scripts/ensure-docker.sh ] && [ "${PAIG_SKIP_DOCKER:-0}" != 1 ]; then
  if ! docker version >/dev/null 2>&1; then started_docker=1; fi
  bash scripts/ensure-docker.sh
  [ -x scripts/build-test-images.sh ] && bash scripts/build-test-images.sh
fi
cleanup() {
  if [ "$started_docker" = 1 ]; then bash scripts/ensure-docker.sh stop || true; fi
}
trap cleanup EXIT

[ -x scripts/ensure-prometheus.sh ] && bash scripts/ensure-prometheus.sh

# ---- ROS 2 (test/ros-bridge/ros2.test.ts; owned by the ROS bridge) ----------------------------------------
# ROS 2 Kilted from PyPI wheels (rclpy + message packages) and rclnodejs built against them, in the git-ignored
# .venv-ros2/. About a minute on a fresh machine, under a second once installed. It starts nothing that needs
# stopping. The test runs it too; here it fails the run early, before the long tests, when it cannot be set up.
bash scripts/ensure-ros2.sh
# ---- end ROS 2 -----------------------------------------------------------------------------------------------

# ---- Python worker SDK (docker/worker-sdk; owned by the SDK) -------------------------------------------------
# The SDK as users get it: a wheel pip-installed with its [otel] extra into the git-ignored .venv/, with pinned ruff
# and mypy (about 40 s on a fresh machine, under a second once installed; test/python-sdk runs its workers from it).
# Then the SDK's own lint and type check. Starts nothing.
bash scripts/ensure-python-env.sh >/dev/null
say "python SDK: ruff, mypy"
# Caches go to .venv: a file left in docker/worker-sdk would change the inputs hash of the worker image (and of the venv).
(cd docker/worker-sdk && RUFF_CACHE_DIR=../../.venv/ruff-cache ../../.venv/bin/ruff check --quiet . && MYPY_CACHE_DIR=../../.venv/mypy-cache ../../.venv/bin/mypy)
# ---- end Python worker SDK -----------------------------------------------------------------------------------

# ---- LeRobot (test/frameworks/lerobot.test.ts; owned by the LeRobot worker) ----------------------------------
# lerobot 0.6.1 + torch 2.11 from PyPI in the git-ignored .venv-lerobot/ (Python 3.12). About 2.5 minutes and
# 5 GB on a fresh machine (torch's Linux wheel brings the NVIDIA runtime wheels), a few seconds once installed.
# It starts nothing that needs stopping. The test runs it too; here it fails the run early when it cannot be set up.
bash scripts/ensure-lerobot.sh
# ---- end LeRobot ---------------------------------------------------------------------------------------------

# ---- peers' clients (test/peers/; owned by the openpi and GR00T doors) -----------------------------------------
# openpi's own client, openpi-client 0.1.2 from PyPI (pinned with what it pulls in), in the git-ignored .venv-peers/
# on Debian's python3; the GR00T test client needs only python3-numpy/zmq/msgpack (above). Seconds on a fresh
# machine, well under a second once installed; starts nothing. The tests run it too; here it fails the run early.
bash scripts/ensure-peers.sh
# ---- end peers -------------------------------------------------------------------------------------------------

# ---- OpenAPI fuzzing (test/reliability/openapi-fuzz.test.ts; owned by reliability) ---------------------------
# schemathesis 4.32.5 from PyPI, pinned with what it pulls in (scripts/fuzz-requirements.txt), in the git-ignored
# .venv-fuzz/ on Debian's python3. About 20 s on a fresh machine, under a second once installed; starts nothing.
# The test runs it too; here it fails the run early when it cannot be set up.
bash scripts/ensure-fuzz.sh
# ---- end OpenAPI fuzzing -------------------------------------------------------------------------------------

say "type-check"
npx tsc --noEmit
say "lint"
npx eslint .
say "build (dist/, for the tests that run the package as users do: npm start, the bin, imports by name)"
npm run build --silent
say "tests"
bash scripts/run-tests.sh "$@"
say "done in $((SECONDS - t0)) s"
