#!/usr/bin/env bash
# The one test command (npm test, and .ci/run): brings up what the tests need when it is missing
# (Debian's python3-venv/zmq/msgpack/numpy/hypothesis, docker-compose and openssh-server, a Docker engine and the offline
# worker image, Prometheus),
# then type-checks, lints and runs every test. Stops what it started.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
say() { printf '[test] %s\n' "$*"; }
t0=$SECONDS

[ -d node_modules ] || { say "installing npm packages (npm ci)"; npm ci --no-audit --no-fund; }

need=()
# python3-venv: Debian's python3 makes the peers' and the fuzzer's venvs (not in a minimal Debian).
# docker-compose: Debian's compose tool (1.29), for test/docker/compose.test.ts.
# openssh-server: the sshd that test/docker/ssh-engine.test.ts runs in the foreground with its own config (the
# Debian service is never started nor enabled: see below).
for p in python3-venv python3-zmq python3-msgpack python3-numpy python3-hypothesis docker-compose openssh-server; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt)"
  # No package's service may start while installing (openssh-server's would listen on port 22): policy-rc.d
  # answers 101 (action forbidden) meanwhile, as in scripts/ensure-prometheus.sh.
  (
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      trap 'rm -f "$policy"' EXIT # also when the install fails
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  )
  # On systemd hosts a package enables its unit anyway: leave ssh stopped and disabled.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true; fi
fi

started_docker=0
if [ -x scripts/ensure-docker.sh ] && [ "${PAIG_SKIP_DOCKER:-0}" != 1 ]; then
  if ! docker version >/dev/null 2>&1; then started_docker=1; fi
  bash scripts/ensure-docker.sh
  [ -x scripts/build-test-images.sh ] && bash scripts/build-test-images.sh
fi
declare -A setup_pids=()
cleanup() {
  # A failed check stops the set-ups still running (a pip install must not outlive the run).
  for pid in "${setup_pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  if [ "$started_docker" = 1 ]; then bash scripts/ensure-docker.sh stop || true; fi
}
trap cleanup EXIT

[ -x scripts/ensure-prometheus.sh ] && bash scripts/ensure-prometheus.sh

# ---- set-up that takes time on a fresh machine, side by side -------------------------------------------------
# Each of these makes a project-local, git-ignored environment and is idempotent (under a few seconds once made).
# On a fresh machine they are what makes the test command slow if run one after another (measured 2026-12-02 with
# no pip cache: ROS 2 61 s, LeRobot 100 s, SDK 30 s, peers and fuzzer 25 s, type-check + lint + build 40 s), and
# they wait on different things: LeRobot's 3 GB of wheels on the network and the disk, rclnodejs's build and
# tsc/eslint on the CPU. So they run at once, with the checks in the foreground.
# Each one's progress lines carry its name.
#   ros2     ROS 2 Kilted from PyPI wheels + rclnodejs built against them (.venv-ros2/; test/ros-bridge/ros2.test.ts)
#   sdk      the worker SDK as users get it, a wheel with its [otel] extra (.venv/; test/python-sdk), then the
#            SDK's own lint and type check (ruff, mypy; their caches go to .venv: a file left in docker/worker-sdk
#            would change the inputs hash of the worker image)
#   lerobot  lerobot 0.6.1 + torch 2.11 (.venv-lerobot/, 5 GB; test/frameworks/lerobot.test.ts, test/jobs)
#   peers    openpi's own client, openpi-client 0.1.2 (.venv-peers/; test/peers)
#   fuzz     schemathesis 4.32.5 (.venv-fuzz/; test/reliability/openapi-fuzz.test.ts)
# The tests run the same scripts themselves (a test file run alone sets up what it needs).
sdk_check='set -e; bash scripts/ensure-python-env.sh >/dev/null; echo "[test] python SDK: ruff, mypy"
  cd docker/worker-sdk && RUFF_CACHE_DIR=../../.venv/ruff-cache ../../.venv/bin/ruff check --quiet . &&
    MYPY_CACHE_DIR=../../.venv/mypy-cache ../../.venv/bin/mypy'
# Each in its own session (setsid): the clean-up on a failed check stops it with everything it started.
setup() { local name=$1; shift; setsid -w "$@" & setup_pids[$name]=$!; }
setup_started=$SECONDS
setup ros2 bash scripts/ensure-ros2.sh
setup sdk bash -c "$sdk_check"
setup lerobot bash scripts/ensure-lerobot.sh
setup peers bash scripts/ensure-peers.sh
setup fuzz bash scripts/ensure-fuzz.sh

say "type-check"
npx tsc --noEmit
say "lint"
npx eslint .
say "build (dist/, for the tests that run the package as users do: npm start, the bin, imports by name)"
npm run build --silent

# The tests start once the checks pass and the SDK's venv is there (nearly every test runs a Python worker from
# it); the other set-ups go on meanwhile. The tests that need them run their script too, which waits for the one
# running here (a lock) and then finds it installed; the engine and timing groups, where LeRobot and ROS 2 are
# used, start later anyway. A failed set-up fails the run below, and the tests that needed it fail naming it.
setup_failed=()
wait_setup() { # name: waits for that set-up and notes a failure
  wait "${setup_pids[$1]}" || setup_failed+=("$1")
  unset "setup_pids[$1]"
}
wait_setup sdk
[ ${#setup_failed[@]} -eq 0 ] || { say "set-up failed: sdk (the lines above say why)"; exit 1; }
say "checks done in $((SECONDS - setup_started)) s; tests (ROS 2, LeRobot, the peers' client and the fuzzer finish setting up meanwhile)"
tests_status=0
bash scripts/run-tests.sh "$@" || tests_status=$?
for name in ros2 lerobot peers fuzz; do wait_setup "$name"; done
if [ ${#setup_failed[@]} -gt 0 ]; then say "set-up failed: ${setup_failed[*]} (the lines above that carry its name say why)"; exit 1; fi
say "done in $((SECONDS - t0)) s"
exit "$tests_status"
