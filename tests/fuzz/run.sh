#!/usr/bin/env bash
# Runs every libFuzzer harness built in BUILD for SECONDS each, from its seed corpus in
# tests/fuzz/corpus/<harness>/ (read only: new inputs go to a scratch directory), and prints
# one line per harness with its executions. A crash, a leak or a sanitizer report fails the run;
# the input that caused it is kept in tests/fuzz/crashes/.
set -uo pipefail
build=${1:?usage: run.sh BUILD SECONDS}
seconds=${2:?usage: run.sh BUILD SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
failed=0
mkdir -p "$here/crashes"
for src in "$here"/fuzz_*.c; do
    name=$(basename "$src" .c)
    bin="$build/$name"
    scratch=$(mktemp -d)
    log=$(mktemp)
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$here/crashes/$name-" "$scratch" "$here/corpus/$name" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log"
        echo "$name: FAILED (exit $rc) after ${execs:-?} executions"
        failed=$((failed + 1))
    else
        echo "$name: ${execs:-?} executions in ${seconds}s, no finding"
    fi
    rm -rf "$scratch" "$log"
done
[ "$failed" -eq 0 ]
