#!/usr/bin/env bash
# Runs the test files (all of them, or those given) with node's test runner on tsx.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find test -name '*.test.ts' | sort)
else
  files=("$@")
fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
