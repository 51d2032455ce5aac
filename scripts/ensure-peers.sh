#!/usr/bin/env bash
# Sets up the peers' own clients for test/peers/: openpi's `openpi-client` (PyPI, pinned) in the project-local,
# git-ignored .venv-peers/, on Debian's /usr/bin/python3 (the same interpreter the GR00T test client uses, with
# python3-numpy, python3-zmq and python3-msgpack from apt). Pinned, so a new upload cannot change what the tests
# talk to. Idempotent: when the pinned versions are installed it only checks them (well under a second).
# Writes .venv-peers/python-path (the interpreter's path) for the tests. Exits non-zero saying what failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PAIG_PEERS_VENV:-$ROOT/.venv-peers}
# The test command sets this up while the first tests run, and a test may call it meanwhile: one installs,
# the others wait for it and then find it installed.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
PYTHON=${PAIG_PEERS_PYTHON:-/usr/bin/python3}
say() { printf '[ensure-peers] %s\n' "$*"; }
die() { printf '[ensure-peers] FAILED: %s\n' "$*" >&2; exit 1; }

# openpi-client 0.1.2 and what it pulls in, tested together on Debian 12's Python 3.11 (numpy 1.24 from apt).
# typing_extensions is imported by openpi_client but not declared by its 0.1.2 wheel, so it is listed here.
REQUIREMENTS=(
  'openpi-client==0.1.2'
  'typing_extensions==4.16.0'
  'websockets==17.4'
  'msgpack==1.2.4'
  'dm-tree==0.1.10'
  'pillow==13.0.0'
  'absl-py==2.5.1'
  'wrapt==2.5.2'
)
CHECK='import openpi_client, openpi_client.websocket_client_policy, importlib.metadata as m; assert m.version("openpi-client") == "0.1.2"'

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  say "openpi-client 0.1.2 present in $VENV"
else
  [ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install python3 python3-venv)"
  say "creating $VENV with openpi-client 0.1.2 (pip, PyPI)"
  # --system-site-packages: numpy comes from Debian's python3-numpy like for the GR00T client, so both test
  # clients run on one numpy and pip does not build one.
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" || die "pip install ${REQUIREMENTS[*]} failed"
  "$VENV/bin/python" -c "$CHECK" || die "openpi_client does not import after the install"
fi
printf '%s\n' "$VENV/bin/python" > "$VENV/python-path"
