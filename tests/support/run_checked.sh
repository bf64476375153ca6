#!/usr/bin/env bash
# Runs a test executable and fails when a sanitizer spoke, even where the runner counted the
# test as passed: Criterion runs each test in a child and does not see LeakSanitizer's report.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if grep -qE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$out"; then
  echo "sanitizer report above: failing" >&2
  exit 1
fi
exit "$rc"
