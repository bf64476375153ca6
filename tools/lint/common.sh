# shellcheck shell=bash
# Sourced by the lint scripts. The formatting and the checks differ between LLVM releases, so
# the scripts use LLVM 14 (Debian 12's clang-format and clang-tidy) and nothing else.
LINT_LLVM=14

# lint_tool NAME ENVVAR: prints the command to run for NAME (clang-format, clang-tidy): $ENVVAR if
# set, else NAME-14, else NAME when it reports version 14. Fails with a hint when none is there.
lint_tool()
{
    local name=$1 override=${!2:-} cand
    for cand in $override "$name-$LINT_LLVM" "$name"; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" --version 2>/dev/null | grep "version $LINT_LLVM\." >/dev/null; then
            printf '%s\n' "$cand"
            return 0
        fi
    done
    echo "$name $LINT_LLVM not found: 'make lint' installs it (Debian 12 package $name)," \
        "or set $2 to a $name $LINT_LLVM binary" >&2
    return 1
}
