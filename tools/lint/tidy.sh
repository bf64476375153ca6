#!/usr/bin/env bash
# clang-tidy 14 over the product (gateway/, auth/, spool/, routes/, middleware/) and the test code (tests/),
# with the repo's .clang-tidy and tests/.clang-tidy (STYLE section 10).
#   BUILD=build JOBS=2 tools/lint/tidy.sh [FILE.c...]
# Needs $BUILD/compile_commands.json: cmake writes it at configure time (make lint runs cmake).
# Exits 1 on any report, on a file missing from the compile database, and on a check or check
# option in a .clang-tidy that clang-tidy 14 does not know (it would silently do nothing).
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
. tools/lint/common.sh
ct=$(lint_tool clang-tidy CLANG_TIDY)
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
db=$BUILD/compile_commands.json
CONFIGS=(.clang-tidy tests/.clang-tidy)

problems=0
problem()
{
    echo "tidy: $*"
    problems=$((problems + 1))
}

# --- 1. The configs: every check and check option they name exists in clang-tidy 14. ---------
all_checks=$("$ct" -list-checks -checks='*' | sed -n 's/^ *//; /^[a-z]/p')
declare -A seen_glob=()
for conf in "${CONFIGS[@]}"; do
    [ -f "$conf" ] || { problem "$conf is missing"; continue; }
    probe="$(dirname "$conf")/probe.c" # clang-tidy picks the config by path; no file needed
    # Checks as clang-tidy read them (parents merged), one glob per line.
    globs=$("$ct" --dump-config "$probe" 2>/dev/null | sed -n 's/^Checks: *//p' |
        sed 's/^["'\'']//; s/["'\'']$//; s/\\n/ /g' | tr ',' '\n' | tr -d ' ')
    for glob in $globs; do
        name=${glob#-}
        case $name in clang-diagnostic-*) continue ;; esac # compiler warnings, not listed
        [ -z "${seen_glob[$glob]:-}" ] || continue          # inherited from a parent config
        seen_glob[$glob]=1
        re="^$(printf '%s' "$name" | sed 's/[.]/\\./g; s/[*]/.*/g')\$"
        grep -qE "$re" <<<"$all_checks" ||
            problem "$conf: check '$glob' matches no clang-tidy $LINT_LLVM check"
    done
    enabled=$("$ct" -list-checks "$probe" 2>/dev/null | sed -n 's/^ *//; /^[a-z]/p')
    # Option keys written in this file: the check must be on here, and clang-tidy must keep the
    # option when asked to dump it (it drops names no check reads, like a misspelt one).
    while read -r key value; do
        check=${key%.*}
        if ! grep -qxF "$check" <<<"$enabled"; then
            problem "$conf: option $key: check $check is not enabled"
        elif ! "$ct" --config="{Checks: '-*,$check', CheckOptions: [{key: $key, value: '${value:-x}'}]}" \
            --dump-config 2>/dev/null | grep -E "key: +$key\$" >/dev/null; then # not -q: under pipefail an early exit fails clang-tidy with SIGPIPE
            problem "$conf: option $key is not an option of $check in clang-tidy $LINT_LLVM"
        fi
    done < <(sed -n 's/.*key: *\([A-Za-z0-9._-]*\).*value: *'\''\{0,1\}\([^'\''}]*\).*/\1 \2/p' "$conf")
done
[ "$problems" -eq 0 ] || { echo "tidy: fix the config first"; exit 1; }

# --- 2. The files: tracked product and test sources, each compiled by CMake. -----------------
[ -f "$db" ] || { echo "tidy: no $db: run 'cmake -S . -B $BUILD' first (make lint does)"; exit 1; }
files=()
if [ $# -gt 0 ]; then
    files=("$@")
else
    while IFS= read -r f; do
        [ -f "$f" ] && files+=("$f")
    # tests/fuzz/ is built by the clang fuzz build alone (make fuzz-build), with -Werror.
    done < <(git ls-files -- 'gateway/*.c' 'auth/*.c' 'spool/*.c' 'middleware/*.c' 'routes/*.c' \
        'tests/*.c' ':(exclude)tests/fuzz/*')
fi
in_db=$(sed -n 's/^ *"file": *"\(.*\)",\{0,1\} *$/\1/p' "$db")
checked=()
for f in "${files[@]}"; do
    if grep -qxF "$root/$f" <<<"$in_db"; then
        checked+=("$f")
    else
        problem "$f is not in $db (not built by CMakeLists.txt?), so it was not checked"
    fi
done

# --- 3. Run, JOBS at a time; print each report once (headers are seen from many files). ------
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "tidy: ${#checked[@]} files, $JOBS at a time ($ct)"
# shellcheck disable=SC2016 # the sh -c script expands its own arguments
printf '%s\0' "${checked[@]}" | xargs -0 -r -n 1 -P "$JOBS" sh -c '
    log="$2/$(printf %s "$4" | tr / _)"
    "$1" -quiet -p "$3" "$4" >"$log" 2>&1 || echo "$?" >"$log.rc"' sh "$ct" "$out" "$BUILD"

reports=$(
    for f in "${checked[@]}"; do
        log="$out/$(printf %s "$f" | tr / _)"
        sed -e "s|$root/||g" -e '/^[0-9][0-9]* warnings\{0,1\}\( and [0-9][0-9]* errors\{0,1\}\)\{0,1\} generated\.$/d' \
            -e '/^Suppressed [0-9]* warnings/d' -e '/^Use -header-filter=/d' "$log"
        if [ -f "$log.rc" ] && ! grep -qE ': (warning|error): ' "$log"; then
            echo "$f:1:1: error: clang-tidy exited $(cat "$log.rc") without a report [clang-tidy-failed]"
        fi
    done | awk '
        /^[^ :]+:[0-9]+:[0-9]+: (warning|error): / { keep = !seen[$0]++ }
        keep'
)
[ -z "$reports" ] || printf '%s\n' "$reports"
heads=$(grep -E '^[^ :]+:[0-9]+:[0-9]+: (warning|error): ' <<<"$reports" || true)
count=$(grep -c . <<<"$heads" || true)
if [ "$count" -gt 0 ]; then
    echo "tidy: $count reports; by check:"
    sed -n 's/.*\[\([^],]*\)[],].*/\1/p' <<<"$heads" | sort | uniq -c | sort -rn
fi
if [ "$count" -gt 0 ] || [ "$problems" -gt 0 ]; then
    exit 1
fi
echo "tidy: ${#checked[@]} files clean"
