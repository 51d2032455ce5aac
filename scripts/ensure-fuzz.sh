#!/usr/bin/env bash
# Sets up schemathesis (PyPI, pinned with everything it pulls in: scripts/fuzz-requirements.txt) in the
# project-local, git-ignored .venv-fuzz/ on Debian's /usr/bin/python3, for test/reliability/openapi-fuzz.test.ts.
# Its own venv without system site-packages, so Debian's python3-hypothesis (older) cannot shadow the one
# schemathesis needs. Idempotent: when the pinned version is installed it only checks it (well under a second).
# Writes .venv-fuzz/st-path (the schemathesis executable) for the test. Exits non-zero saying what failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PAIG_FUZZ_VENV:-$ROOT/.venv-fuzz}
# The test command sets this up while the first tests run, and a test may call it meanwhile: one installs,
# the others wait for it and then find it installed.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
PYTHON=${PAIG_FUZZ_PYTHON:-/usr/bin/python3}
REQUIREMENTS=$ROOT/scripts/fuzz-requirements.txt
say() { printf '[ensure-fuzz] %s\n' "$*"; }
die() { printf '[ensure-fuzz] FAILED: %s\n' "$*" >&2; exit 1; }

CHECK='import importlib.metadata as m; assert m.version("schemathesis") == "4.32.5"'
if [ -x "$VENV/bin/st" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  say "schemathesis 4.32.5 present in $VENV"
else
  [ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install python3 python3-venv)"
  say "creating $VENV with schemathesis 4.32.5 (pip, PyPI)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" || die "pip install -r $REQUIREMENTS failed"
  "$VENV/bin/python" -c "$CHECK" || die "schemathesis does not report 4.32.5 after the install"
fi
printf '%s\n' "$VENV/bin/st" > "$VENV/st-path"
