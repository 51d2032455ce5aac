#!/usr/bin/env bash
# build-test-images.sh - build the worker images WITHOUT a registry, from files already on this host.
#
#   1. physical-ai-gateway/worker-base:local  a minimal rootfs: the host's Debian python3 + stdlib,
#      dist-packages zmq/msgpack/numpy, busybox-static (/bin/sh) and the ldd closure of every ELF file,
#      imported with `docker import` (~130 MB).
#   2. physical-ai-gateway/worker:local       docker/worker-base/Dockerfile.offline: FROM the base, COPY the
#      Python worker SDK (docker/worker-sdk), HEALTHCHECK through the SDK's health request, labels.
#   3. physical-ai-gateway/node-runtime:local  the host's node binary, busybox and the ldd closure of node and of
#      every native addon in node_modules (zeromq): what the compose test runs the gateway on, with the checkout
#      mounted (the product's gateway image, docker/gateway/Dockerfile, starts FROM node:20, which needs a registry).
#
# Each image carries a label `physical-ai-gateway.inputs-hash`; when the image exists and the hash of its
# inputs is unchanged, it is not rebuilt. FORCE=1 rebuilds anyway. Needs an engine (scripts/ensure-docker.sh).
# Host packages needed: python3-zmq python3-msgpack python3-numpy busybox-static file (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BASE_IMAGE:=physical-ai-gateway/worker-base:local}"
: "${WORKER_IMAGE:=physical-ai-gateway/worker:local}"
: "${NODE_IMAGE:=physical-ai-gateway/node-runtime:local}"
: "${FORCE:=0}"
export DEBIAN_FRONTEND=noninteractive
HASH_LABEL=physical-ai-gateway.inputs-hash

now() { date +%s%N; }
ms() { echo "$(( ($(now) - $1) / 1000000 )) ms"; }
say() { echo "[build-test-images] $*"; }
T_ALL=$(now)

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  { say "no Docker engine answers; run scripts/ensure-docker.sh first" >&2; exit 1; }

image_hash() { docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true; }

host_packages() {
  local need=() p t0
  for p in python3-zmq python3-msgpack python3-numpy busybox-static file; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  t0=$(now)
  say "apt-get install ${need[*]}"
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null; apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
  say "host packages installed in $(ms "$t0")"
}

# What both images' root filesystems start from: the usual folders (plus the extra ones named), /bin etc. as links
# into /usr, busybox with a link per applet (/bin/sh), and root and nobody in /etc/passwd and /etc/group.
base_rootfs() {
  local root=$1 d a; shift
  rm -rf "$root"; mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,tmp,proc,sys,dev,run,root}
  for d in "$@"; do mkdir -p "$root/$d"; done
  chmod 1777 "$root/tmp"
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  cp /bin/busybox "$root/usr/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# Rootfs from host files. Each shared library goes to the path ldd prints (not its realpath): numpy's
# libblas.so.3 sits behind /etc/alternatives and the image has no ld.so.cache.
make_rootfs() {
  local root=$1 py pyver lib dest d a
  py=$(readlink -f /usr/bin/python3); pyver=$(basename "$py")
  base_rootfs "$root" app ipc
  cp -a "$py" "$root/usr/bin/"; ln -s "$pyver" "$root/usr/bin/python3"
  tar -C /usr/lib -c --exclude="$pyver/test" --exclude="$pyver/idlelib" --exclude="$pyver/tkinter" \
    --exclude="$pyver/lib2to3" --exclude="$pyver/ensurepip" --exclude="$pyver/turtledemo" \
    --exclude='__pycache__' "$pyver" | tar -C "$root/usr/lib" -x
  mkdir -p "$root/usr/lib/python3/dist-packages"
  (cd /usr/lib/python3/dist-packages && tar -c --exclude='__pycache__' zmq pyzmq-* msgpack msgpack-* numpy numpy-*) |
    tar -C "$root/usr/lib/python3/dist-packages" -x
  find "$root/usr" -type f \( -name '*.so*' -o -perm -u+x \) ! -name busybox -print0 |
    xargs -0 file -N -F '|' | awk -F'|' '/ELF/{print $1}' |
    xargs -r ldd 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u |
    while read -r lib; do
      dest="$root$lib"; [ -e "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -L "$lib" "$dest"; }
    done
}

build_base() {
  host_packages
  local hash t0 work
  hash=$( { declare -f base_rootfs make_rootfs; readlink -f /usr/bin/python3
            dpkg-query -W python3-zmq python3-msgpack python3-numpy busybox-static "$(basename "$(readlink -f /usr/bin/python3)")"; } |
          sha256sum | cut -c1-16)
  if [ "$FORCE" != 1 ] && [ "$(image_hash "$BASE_IMAGE")" = "$hash" ]; then
    say "$BASE_IMAGE is up to date (inputs $hash)"; return 0
  fi
  work=$(mktemp -d /tmp/pag-base.XXXXXX)
  t0=$(now)
  make_rootfs "$work/rootfs"
  say "rootfs from host files in $(ms "$t0") ($(du -sh "$work/rootfs" | cut -f1))"
  t0=$(now)
  tar -C "$work/rootfs" -c . | docker import \
    -c 'ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1' -c 'WORKDIR /app' -c 'CMD ["python3"]' \
    -c "LABEL $HASH_LABEL=$hash physical-ai-gateway.image=worker-base" - "$BASE_IMAGE" >/dev/null
  rm -rf "$work"
  say "docker import $BASE_IMAGE in $(ms "$t0") ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_worker() {
  if [ ! -d docker/worker-sdk ]; then
    say "docker/worker-sdk is missing: the worker image needs the Python worker SDK" >&2; exit 1
  fi
  local hash t0 base_id log
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  hash=$( { echo "$base_id"; cat docker/worker-base/Dockerfile.offline
            find docker/worker-sdk -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; } |
          sha256sum | cut -c1-16)
  if [ "$FORCE" != 1 ] && [ "$(image_hash "$WORKER_IMAGE")" = "$hash" ]; then
    say "$WORKER_IMAGE is up to date (inputs $hash)"; return 0
  fi
  t0=$(now)
  log=$(mktemp /tmp/pag-build.XXXXXX)
  # Legacy builder: works with Debian's 20.10 CLI and with newer CLIs that lack buildx. No RUN step needs the
  # network, and FROM a local image never pulls.
  if ! DOCKER_BUILDKIT=0 docker build -f docker/worker-base/Dockerfile.offline --network none \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "INPUTS_HASH=$hash" -t "$WORKER_IMAGE" docker >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; say "docker build $WORKER_IMAGE failed" >&2; exit 1
  fi
  rm -f "$log"
  docker image prune -f --filter "label=$HASH_LABEL" >/dev/null 2>&1 || true # replaced, now untagged images
  say "docker build $WORKER_IMAGE in $(ms "$t0")"
}

# The node runtime: node, busybox, and the shared libraries node and the native addons load, at their ldd paths.
make_node_rootfs() {
  local root=$1 nm=$2 lib dest d a
  base_rootfs "$root"
  cp -L "$(command -v node)" "$root/usr/bin/node"
  { echo "$(command -v node)"; find "$nm" -name '*.node' -type f 2>/dev/null; } |
    { xargs -r ldd 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u |
    while read -r lib; do
      dest="$root$lib"; [ -e "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -L "$lib" "$dest"; }
    done
}

build_node_runtime() {
  command -v node >/dev/null || { say "no node on this host: skipping $NODE_IMAGE"; return 0; }
  local hash t0 work nm
  nm=$(readlink -f node_modules)
  hash=$( { declare -f base_rootfs make_node_rootfs; sha256sum "$(readlink -f "$(command -v node)")"; find "$nm" -name '*.node' -type f -print0 | sort -z | xargs -0 -r sha256sum; } |
          sha256sum | cut -c1-16)
  if [ "$FORCE" != 1 ] && [ "$(image_hash "$NODE_IMAGE")" = "$hash" ]; then
    say "$NODE_IMAGE is up to date (inputs $hash)"; return 0
  fi
  work=$(mktemp -d /tmp/pag-node.XXXXXX)
  t0=$(now)
  make_node_rootfs "$work/rootfs" "$nm"
  tar -C "$work/rootfs" -c . | docker import -c 'CMD ["node"]' \
    -c "LABEL $HASH_LABEL=$hash physical-ai-gateway.image=node-runtime" - "$NODE_IMAGE" >/dev/null
  rm -rf "$work"
  say "docker import $NODE_IMAGE in $(ms "$t0")"
}

build_base
build_worker
build_node_runtime
say "done in $(ms "$T_ALL")"
