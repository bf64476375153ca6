#!/usr/bin/env bash
# Include layers (STYLE section 1, DESIGN section 7): every project header a file includes
# ("dir/file.h") sits on the file's own layer or below it, so the code reads floor by floor.
#   tools/lint/layers.sh [ROOT]    checks the tracked .c/.h under ROOT (default: this repo)
# Prints FILE:LINE: includes HEADER (why) for each include that points up, exits 1 if any.
set -euo pipefail

# ---- The table: a new directory gets a row here ---------------------------------------------
# A layer number, then the files on it (bash globs from the repo root). The first row that
# matches a file gives its layer; a file may include headers of its layer and of lower ones.
LAYERS=(
    "5 gateway/main.c"                                      # wires every layer into the server
    "0 gateway/err.h gateway/log.h gateway/req.h gateway/buf.h gateway/list.h gateway/handler.h" # what every layer speaks
    "1 gateway/upstream.h gateway/loop.h gateway/server.h"  # the runtime: libcurl, loop, libmicrohttpd
    "1 gateway/*"                                           # the rest of the runtime and its helpers
    "2 auth/*"                                              # token issuers, keys, scopes: never routes/
    "2 spool/*"                                             # durable storage: SQLite, sealing, its threads
    "3 routes/*"                                            # route table and handlers
    "4 middleware/*"                                        # the chain
)
# routes/ lies below middleware/, but of middleware/ only the route step reaches down to it:
ROUTER_FILES="middleware/route.c"
# Outside the layers: these may include any header, and no layered file may include theirs.
UNLAYERED="tests/* bench/* deploy/*"
# ----------------------------------------------------------------------------------------------

root=${1:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
cd "$root"
set -f # the globs above are patterns to match paths against, not to expand here

# shellcheck disable=SC2053 # the right-hand sides are globs on purpose
layer_of() # PATH: prints the layer of PATH, "-" if unlayered, nothing if it is in no row
{
    local row pat
    for pat in $UNLAYERED; do
        [[ $1 == $pat ]] && { echo -; return; }
    done
    for row in "${LAYERS[@]}"; do
        for pat in ${row#* }; do
            [[ $1 == $pat ]] && { echo "${row%% *}"; return; }
        done
    done
    return 0
}

in_list() # WORD LIST
{
    local w
    for w in $2; do [ "$w" = "$1" ] && return 0; done
    return 1
}

unknown() # PATH: the message for a directory the table does not have
{
    local dir="${1%%/*}/"
    [[ $1 == */* ]] || dir="the top level"
    echo "$dir is not in the layer table: add a row for it at the top of tools/lint/layers.sh"
}

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r f; do [ -f "$f" ] && files+=("$f"); done < <(git ls-files -- '*.c' '*.h')
else
    while IFS= read -r f; do files+=("${f#./}"); done < <(find . -name '*.[ch]' | sort)
fi

bad=0
layered=()
for f in "${files[@]}"; do
    l=$(layer_of "$f")
    case $l in
    -) ;;
    '') echo "$f: $(unknown "$f")"; bad=$((bad + 1)) ;;
    *) layered+=("$f") ;;
    esac
done

includes=0
if [ ${#layered[@]} -gt 0 ]; then
    while IFS= read -r hit; do
        # hit: FILE:LINE:#include "HEADER"
        f=${hit%%:*}
        rest=${hit#*:}
        line=${rest%%:*}
        h=${rest#*\"}
        h=${h%%\"*}
        includes=$((includes + 1))
        lf=$(layer_of "$f")
        lh=$(layer_of "$h")
        why=
        if [[ $h != */* || $h == ./* || $h == ../* ]]; then
            why="project includes are paths from the repo root (STYLE section 7)"
        elif [ "$lh" = - ]; then
            why="${h%%/*}/ is outside the layers"
        elif [ -z "$lh" ]; then
            why=$(unknown "$h")
        elif [ "$lh" -gt "$lf" ]; then
            why="layer $lh above $lf"
        elif [[ $f == middleware/* && $h == routes/* ]] && ! in_list "$f" "$ROUTER_FILES"; then
            why="of middleware/ only $ROUTER_FILES includes routes/"
        fi
        if [ -n "$why" ]; then
            echo "$f:$line: includes $h ($why)"
            bad=$((bad + 1))
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*"' "${layered[@]}" /dev/null)
fi

if [ "$bad" -gt 0 ]; then
    echo "layers: $bad to fix (the rules: STYLE section 1; the table: top of tools/lint/layers.sh)"
    exit 1
fi
echo "layers: ${#layered[@]} files, $includes project includes, none points up"
