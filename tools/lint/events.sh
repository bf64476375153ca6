#!/usr/bin/env bash
# Every log event the gateway writes is documented: each event name passed to tg_log or
# tg_logline_begin* in gateway/, middleware/ or routes/ must appear, in backquotes, in the
# first column of the README's table of events.
#   tools/lint/events.sh    prints the undocumented events and exits 1 if there are any
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

# The names: the string literal right after tg_log(LEVEL, REQ, or tg_logline_begin*(&l, LEVEL,
# [REQ,] in the product sources (calls may wrap, so the file is read as one line).
events=$(for f in $(git ls-files -- 'gateway/*.c' 'middleware/*.c' 'routes/*.c'); do
    { tr '\n' ' ' <"$f" | grep -oE 'tg_log(line_begin(_always)?)?\([^;"]*"[a-z_]+(\.[a-z_]+)?"' ||
        true; } | { grep -oE '"[a-z_]+(\.[a-z_]+)?"$' || true; } | tr -d '"'
done | sort -u)

# The table's rows: from its header "| event | level | fields |" to the first line that is not a row;
# the first column may hold several names.
documented=$(awk '/^\| event \| level \| fields \|/ { on = 1; next } on && !/^\|/ { on = 0 } on' README.md |
    cut -d'|' -f2 | { grep -oE '`[a-z_.]+`' || true; } | tr -d '`' | sort -u)

missing=$(comm -23 <(printf '%s\n' "$events") <(printf '%s\n' "$documented"))
if [ -n "$missing" ]; then
    echo "events: written by the gateway but not in the README's table of events:"
    printf '  %s\n' $missing
    exit 1
fi
echo "events: $(printf '%s\n' "$events" | wc -l) events, all documented"
