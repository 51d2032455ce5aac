#!/usr/bin/env bash
# Runs the test files (all of them, or those given) with node's test runner on tsx, in two groups:
#   serial   files that share the Docker engine or ROS 2's DDS, or whose assertions follow a control loop's timing or
#            measure CPU (one file at a time);
#   parallel every other file: each uses its own free ports, temp folders and child processes, so two run at once
#            (PAIG_TEST_CONCURRENCY, default 2: the machine has 2 cores).
# Both groups run even when the first fails; the exit code is non-zero when any test failed. At the end: the totals
# and the slowest tests.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find test -name '*.test.ts' | sort)
else
  files=("$@")
fi
# Flags for node's runner (--test-name-pattern=..., --test-only) pass through to both groups.
flags=(); paths=()
for f in "${files[@]}"; do case "$f" in -*) flags+=("$f") ;; *) paths+=("$f") ;; esac; done

SERIAL='^test/(docker/|gateway/docker-|ros-bridge/(ros2|bridge|gateway)\.|reliability/faults\.|reliability/openapi-fuzz\.|bench/|frameworks/)'
serial=(); parallel=()
for f in "${paths[@]}"; do
  if [[ "$f" =~ $SERIAL ]]; then serial+=("$f"); else parallel+=("$f"); fi
done

report=$(mktemp /tmp/paig-test-report.XXXXXX)
trap 'rm -f "$report"' EXIT
export PAIG_TEST_REPORT=$report
run_group() { # concurrency files...
  local concurrency=$1; shift
  [ "$#" -eq 0 ] && return 0
  node --import tsx --test --test-concurrency="$concurrency" --test-timeout=300000 \
    --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-report.mjs --test-reporter-destination=/dev/null \
    "${flags[@]}" "$@"
}
t0=$SECONDS
status=0
run_group "${PAIG_TEST_CONCURRENCY:-2}" "${parallel[@]}" || status=1
t1=$SECONDS
run_group 1 "${serial[@]}" || status=1
t2=$SECONDS

node -e '
const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const count = (o) => rows.filter((r) => r.outcome === o).length;
const top = rows.filter((r) => r.nesting === 0);
const root = process.cwd() + "/";
console.log("# slowest tests:");
for (const r of [...top].sort((a, b) => b.ms - a.ms).slice(0, 12)) console.log(`#   ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.file.replace(root, "")}: ${r.name}`);
console.log(`# groups: ${process.argv[2]} parallel files in ${process.argv[4]} s, ${process.argv[3]} serial files in ${process.argv[5]} s`);
console.log(`tests: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped`);
' "$report" "${#parallel[@]}" "${#serial[@]}" "$((t1 - t0))" "$((t2 - t1))"
exit $status
