#!/usr/bin/env bash
# Makes the project's Python environment: a virtual environment (default .venv/, git-ignored) made with the
# `python3` first on PATH, holding the worker SDK installed the way users install it (a wheel built from
# docker/worker-sdk, its dependencies and the [otel] extra resolved from PyPI) and the SDK's pinned tools
# (ruff, mypy, hypothesis). Idempotent: when neither the SDK's files, this script nor the interpreter changed,
# it only checks and says so (well under a second). Prints what it did and how long it took.
#
#   bash scripts/ensure-python-env.sh            # prints the venv's python on its last line
#   PAIG_PY_VENV=/tmp/v PIP_NO_CACHE_DIR=1 bash scripts/ensure-python-env.sh   # a fresh, uncached install
#
# Debian's /usr/bin/python3 (python3-zmq/msgpack/numpy, what the offline worker image runs) is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PAIG_PY_VENV:-$ROOT/.venv}
PYTHON=${PAIG_PYTHON:-python3}
SDK=docker/worker-sdk
# Exact versions, so every machine lints and type-checks the same way.
TOOLS=(ruff==0.17.6 mypy==2.4.1 hypothesis==6.170.17)

say() { printf '[ensure-python-env] %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
T0=$(now_ms)
took() { echo "$(($(now_ms) - $1)) ms"; }

# Two test processes (or a test and scripts/test.sh) may call this at once: one installs, the other waits.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

# What the environment is made from; a change to any of it reinstalls.
stamp=$( { cat "$0"; "$PYTHON" -c 'import sys; print(sys.version)'
           find "$SDK" -type f ! -path '*/__pycache__/*' ! -path '*/.mypy_cache/*' ! -path '*/.ruff_cache/*' ! -name '*.pyc' ! -path "$SDK/tests/*" ! -path "$SDK/build/*" ! -path "$SDK/*.egg-info/*" -print0 |
             sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.paig-stamp" 2>/dev/null)" = "$stamp" ] &&
   "$VENV/bin/python" -c 'import physical_ai_worker' 2>/dev/null; then
  say "$VENV is up to date (inputs $stamp; checked in $(took "$T0"))"
  echo "$VENV/bin/python"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null ||
   [ "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" != "$("$PYTHON" -c 'import sys; print(sys.version)')" ]; then
  t=$(now_ms)
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  say "created $VENV with $("$VENV/bin/python" --version) from $(command -v "$PYTHON") in $(took "$t")"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)

t=$(now_ms)
"${PIP[@]}" install "${TOOLS[@]}"
say "tools ${TOOLS[*]} in $(took "$t")"

# Build the wheel (pip builds it in an isolated environment from pyproject.toml, as `pip install ./...` would)
# and install it, so the tests import the installed package, never the source tree.
t=$(now_ms)
wheels=$(mktemp -d)
# setuptools leaves build/ and the egg-info in the source folder; they are not the project's files.
trap 'rm -rf "$wheels" "$SDK/build" "$SDK"/*.egg-info' EXIT
"${PIP[@]}" wheel --no-deps --wheel-dir "$wheels" "./$SDK"
whl=$(ls "$wheels"/*.whl)
say "built $(basename "$whl") in $(took "$t")"
t=$(now_ms)
# --force-reinstall --no-deps: the version number does not change with every edit, the files do.
"${PIP[@]}" install --force-reinstall --no-deps "$whl"
"${PIP[@]}" install "$whl[otel]"
say "installed the SDK wheel with [otel] and its dependencies in $(took "$t"): $("$VENV/bin/python" -m pip freeze --disable-pip-version-check |
  grep -iE '^(pyzmq|msgpack|numpy|opentelemetry-(api|sdk|exporter-otlp-proto-http))==' | tr '\n' ' ')"

echo "$stamp" >"$VENV/.paig-stamp"
say "done in $(took "$T0")"
echo "$VENV/bin/python"
