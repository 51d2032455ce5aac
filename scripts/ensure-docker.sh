#!/usr/bin/env bash
# ensure-docker.sh - make sure a Docker engine answers on the local socket (tests, CI, developers).
#
#   scripts/ensure-docker.sh          # idempotent: nothing to do when an engine answers; otherwise install
#                                     # Debian docker.io if missing and start dockerd in the background
#   scripts/ensure-docker.sh stop     # remove OUR labelled containers, then stop dockerd - only if this
#                                     # script started it (marker file); an engine someone else runs is left alone
#   scripts/ensure-docker.sh status   # prints whether an engine answers and who started it
#
# dockerd is started without a bridge and without iptables rules (--bridge=none --iptables=false):
# containers use --network host (127.0.0.1) or --network none + ipc:// sockets in a mounted folder.
# Env overrides: DOCKER_SOCK, DOCKER_ROOT, DOCKER_EXEC_ROOT, DOCKERD_PIDFILE, DOCKERD_LOG, STORAGE_DRIVER.
set -euo pipefail

: "${DOCKER_SOCK:=/var/run/docker.sock}"
: "${DOCKER_ROOT:=/var/lib/docker}"
: "${DOCKER_EXEC_ROOT:=/var/run/docker}"
: "${DOCKERD_PIDFILE:=/var/run/docker.pid}"
: "${DOCKERD_LOG:=/tmp/physical-ai-gateway-dockerd.log}"
: "${STORAGE_DRIVER:=overlay2}"
# Written next to the pidfile when this script started dockerd; `stop` acts only when it is present.
MARKER="${DOCKERD_PIDFILE}.physical-ai-gateway"
OUR_LABEL="physical-ai-gateway.managed=true"
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DEBIAN_FRONTEND=noninteractive

now() { date +%s%N; }
ms() { echo "$(( ($(now) - $1) / 1000000 )) ms"; }
say() { echo "[ensure-docker] $*"; }
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "no Docker engine answers on $DOCKER_SOCK and starting one needs root (run this script as root," \
      "or start Docker yourself: 'sudo systemctl start docker')" >&2
    exit 1
  fi
}

install_docker() {
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && return 0
  need_root
  local t0; t0=$(now)
  say "installing Debian docker.io (apt-get update, then --no-install-recommends)"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends docker.io >/dev/null
  say "docker.io installed in $(ms "$t0")"
}

start() {
  if engine_up; then
    say "engine already answers on $DOCKER_SOCK: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
    return 0
  fi
  need_root
  install_docker
  local t0 driver pid; t0=$(now)
  for driver in "$STORAGE_DRIVER" vfs; do
    mkdir -p "$DOCKER_ROOT" "$DOCKER_EXEC_ROOT"
    say "starting dockerd (storage driver $driver, log $DOCKERD_LOG)"
    # setsid: its own session, so it outlives this shell; stdin from /dev/null so CI runners don't wait on it
    setsid dockerd --host="unix://$DOCKER_SOCK" --data-root="$DOCKER_ROOT" --exec-root="$DOCKER_EXEC_ROOT" \
      --pidfile="$DOCKERD_PIDFILE" --storage-driver="$driver" --iptables=false --bridge=none \
      >>"$DOCKERD_LOG" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 300); do # up to 30 s; it normally answers within 0.1-0.6 s
      engine_up && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if engine_up; then
      echo "$pid" >"$MARKER"
      say "dockerd pid $pid answers after $(ms "$t0") (driver $driver)"
      return 0
    fi
    say "dockerd with storage driver $driver did not come up; last errors:" >&2
    grep -E 'failed to start|level=(error|fatal)' "$DOCKERD_LOG" | tail -n 3 >&2 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  say "could not start dockerd; see $DOCKERD_LOG" >&2
  return 1
}

remove_ours() {
  engine_up || return 0
  local ids
  ids=$(docker ps -aq --filter "label=$OUR_LABEL")
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
    say "removed $(echo "$ids" | wc -w) labelled container(s)"
  fi
}

stop() {
  if [ ! -f "$MARKER" ]; then
    say "dockerd was not started by this script; leaving it (and its containers other than ours) alone"
    remove_ours
    return 0
  fi
  local pid t0; t0=$(now)
  pid=$(cat "$MARKER")
  remove_ours
  if [ "$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)" = "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "dockerd $pid still alive after 20 s, SIGKILL"; kill -KILL "$pid"; fi
    # a stopped dockerd leaves $EXEC_ROOT/netns/default mounted (nsfs); unmount leftovers below both roots
    awk -v a="$(readlink -m "$DOCKER_ROOT")" -v b="$(readlink -m "$DOCKER_EXEC_ROOT")" \
      '$2==a || index($2, a"/")==1 || index($2, b"/")==1 {print $2}' /proc/mounts |
      sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    say "dockerd $pid stopped in $(ms "$t0")"
  else
    say "dockerd $pid from the marker is no longer running"
  fi
  rm -f "$MARKER"
}

status() {
  if engine_up; then
    say "engine answers on $DOCKER_SOCK ($(docker version --format 'server {{.Server.Version}}'))$([ -f "$MARKER" ] && echo ", started by this script (pid $(cat "$MARKER"))")"
  else
    say "no engine answers on $DOCKER_SOCK"
    return 1
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
