#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` (Debian's `prometheus` package) are on PATH for the tests.
# Installs the package when missing (one apt-get update, --no-install-recommends) and never starts or
# enables the Debian service: the tests start their own Prometheus on a free 127.0.0.1 port.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-prometheus: prometheus is missing and apt-get is not available; install Prometheus 2.x (with promtool) and put it on PATH" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-prometheus: need root (or sudo) to install the prometheus package" >&2
    exit 1
  fi
fi

echo "ensure-prometheus: installing Debian package prometheus" >&2
# Keep the package's service from starting: policy-rc.d answers 101 (action forbidden) while installing.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# On systemd hosts the package enables its unit; stop it if it started anyway, and leave it disabled.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

command -v prometheus >/dev/null && command -v promtool >/dev/null
prometheus --version 2>&1 | head -n 1 >&2
