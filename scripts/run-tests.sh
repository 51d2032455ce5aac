#!/usr/bin/env bash
# Runs the test files (all of them, or those given) with node's test runner on tsx, in three groups:
#   engine    files that share the Docker engine, and the two that keep a core busy on their own (real LeRobot,
#             the OpenAPI fuzzer): one file at a time;
#   parallel  every other file but the timing ones: each uses its own free ports, temp folders and child processes,
#             so two run at once (PAIG_TEST_CONCURRENCY, default 2: the machine has 2 cores);
#   timing    files that share ROS 2's DDS, or whose assertions follow a control loop's timing, a fault's recovery
#             or the CPU: one file at a time, alone, last.
# engine and parallel run side by side: the engine files mostly wait on dockerd and their containers, and the two
# groups together finish in about the time the longer takes alone. parallel's TAP streams to stdout; engine's goes
# to a file, printed (whole, in order) when it ends. Every group runs even when another fails; the exit code is
# non-zero when any test failed. At the end: the totals, each group's time and the slowest tests.
# PAIG_TEST_SIDE_BY_SIDE=0 runs engine after parallel instead (a machine where side by side is too tight).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find test -name '*.test.ts' | sort)
else
  files=("$@")
fi
# Flags for node's runner (--test-name-pattern=..., --test-only) pass through to every group.
flags=(); paths=()
for f in "${files[@]}"; do case "$f" in -*) flags+=("$f") ;; *) paths+=("$f") ;; esac; done

TIMING='^test/(ros-bridge/(ros2|bridge|gateway)\.|reliability/faults\.|bench/)'
ENGINE='^test/(docker/|gateway/docker-|shm/shared-memory-docker\.|frameworks/|reliability/openapi-fuzz\.)'
engine=(); parallel=(); timing=()
for f in "${paths[@]}"; do
  if [[ "$f" =~ $TIMING ]]; then timing+=("$f"); elif [[ "$f" =~ $ENGINE ]]; then engine+=("$f"); else parallel+=("$f"); fi
done

report=$(mktemp /tmp/paig-test-report.XXXXXX)
engine_tap=$(mktemp /tmp/paig-test-engine.XXXXXX)
engine_pid=
cleanup() {
  [ -n "$engine_pid" ] && kill -- "-$engine_pid" 2>/dev/null
  rm -f "$report" "$engine_tap"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PAIG_TEST_REPORT=$report
run_group() { # concurrency files...
  local concurrency=$1; shift
  [ "$#" -eq 0 ] && return 0
  node --import tsx --test --test-concurrency="$concurrency" --test-timeout=300000 \
    --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-report.mjs --test-reporter-destination=/dev/null \
    "${flags[@]}" "$@"
}
status=0
t0=$SECONDS
if [ "${PAIG_TEST_SIDE_BY_SIDE:-1}" = 1 ] && [ ${#engine[@]} -gt 0 ] && [ ${#parallel[@]} -gt 0 ]; then
  echo "# engine group: ${#engine[@]} files one at a time, side by side with the parallel group (its output follows when it ends)"
  # Its own session, so the clean-up can stop the group with the containers' clients it started.
  setsid -w bash -c "$(declare -f run_group); flags=(${flags[*]@Q}); run_group 1 \"\$@\"" _ "${engine[@]}" > "$engine_tap" 2>&1 &
  engine_pid=$!
  run_group "${PAIG_TEST_CONCURRENCY:-2}" "${parallel[@]}" || status=1
  t_parallel=$((SECONDS - t0))
  wait "$engine_pid" || status=1
  engine_pid=
  t_engine=$((SECONDS - t0))
  echo "# ---- engine group (${#engine[@]} files, ${t_engine} s) ----"
  cat "$engine_tap"
else
  run_group "${PAIG_TEST_CONCURRENCY:-2}" "${parallel[@]}" || status=1
  t_parallel=$((SECONDS - t0))
  run_group 1 "${engine[@]}" || status=1
  t_engine=$((SECONDS - t0 - t_parallel))
fi
t1=$SECONDS
run_group 1 "${timing[@]}" || status=1
t_timing=$((SECONDS - t1))

node -e '
const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const count = (o) => rows.filter((r) => r.outcome === o).length;
const top = rows.filter((r) => r.nesting === 0);
const root = process.cwd() + "/";
console.log("# slowest tests:");
for (const r of [...top].sort((a, b) => b.ms - a.ms).slice(0, 12)) console.log(`#   ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.file.replace(root, "")}: ${r.name}`);
const [, parallel, engine, timing, tParallel, tEngine, tTiming, total] = process.argv.slice(1);
console.log(`# groups: ${parallel} parallel files in ${tParallel} s, ${engine} engine files in ${tEngine} s, ${timing} timing files in ${tTiming} s; ${total} s in all`);
console.log(`tests: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped`);
' "$report" "${#parallel[@]}" "${#engine[@]}" "${#timing[@]}" "$t_parallel" "$t_engine" "$t_timing" "$((SECONDS - t0))"
exit $status
