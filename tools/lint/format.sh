#!/usr/bin/env bash
# clang-format 14 over every tracked .c and .h (STYLE section 9, .clang-format).
#   tools/lint/format.sh         check: lists the files that differ and exits 1 (make lint)
#   tools/lint/format.sh --fix   rewrites those files in place (make format)
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
. tools/lint/common.sh
cf=$(lint_tool clang-format CLANG_FORMAT)

files=()
while IFS= read -r f; do
    [ -f "$f" ] && files+=("$f") # tracked but deleted in the work tree: nothing to format
done < <(git ls-files -- '*.c' '*.h')

bad=()
for f in "${files[@]}"; do
    "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done

if [ "${1:-}" = --fix ]; then
    for f in "${bad[@]}"; do
        "$cf" -i "$f"
        echo "format: rewrote $f"
    done
    exit 0
fi
if [ ${#bad[@]} -gt 0 ]; then
    echo "format: ${#bad[@]} of ${#files[@]} files differ from .clang-format" \
        "('make format' rewrites them, '$cf --dry-run FILE' shows where):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
