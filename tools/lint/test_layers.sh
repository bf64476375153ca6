#!/usr/bin/env bash
# Test of layers.sh: a small tree laid out like the repo passes, and each kind of upward include
# (or a directory missing from the table) added to it fails with the expected line.
set -euo pipefail
layers="$(cd "$(dirname "$0")" && pwd)/layers.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

put() # FILE LINE...: writes FILE under the current tree, one line per argument
{
    mkdir -p "$(dirname "$tree/$1")"
    printf '%s\n' "${@:2}" >"$tree/$1"
    git -C "$tree" add "$1"
}

run() # NAME EXPECTED-EXIT EXPECTED-OUTPUT: runs layers.sh on the tree and compares
{
    local out rc=0
    out=$("$layers" "$tree" 2>&1) || rc=$?
    if [ "$rc" -ne "$2" ] || [ "$out" != "$3" ]; then
        printf 'FAIL %s: exit %s (want %s), output:\n%s\nwanted:\n%s\n' "$1" "$rc" "$2" "$out" "$3"
        failures=$((failures + 1))
    else
        echo "ok   $1"
    fi
}

tree=$tmp/good
git init -q "$tree"
put gateway/err.h '#ifndef TG_GATEWAY_ERR_H' '#endif'
put gateway/log.h '#include "gateway/err.h"'
put gateway/req.h '#include <stddef.h>'
put gateway/loop.h '#include "gateway/err.h"'
put gateway/conf.h '#include <jansson.h>'
put gateway/server.c '#include "gateway/server.h"' '#include "gateway/loop.h"' '#include "gateway/req.h"'
put gateway/main.c '#include "gateway/server.h"' '#include "middleware/chain.h"' '#include "routes/table.h"'
put routes/table.c '#include "routes/table.h"' '  #  include "gateway/conf.h"' '#include "gateway/loop.h"'
put middleware/chain.h '#include "gateway/req.h"'
put middleware/route.c '#include "middleware/chain.h"' '#include "routes/table.h"'
put middleware/trace.c '#include "middleware/chain.h"' '/* #include "routes/table.h" */'
put tests/unit/test_x.c '#include "middleware/chain.h"' '#include "routes/table.h"' '#include "stub.h"'
run "good tree" 0 "layers: 11 files, 15 project includes, none points up"

bad() # NAME FILE INCLUDE EXPECTED-LINE: the good tree plus one file with one include
{
    tree=$tmp/$(printf %s "$1" | tr ' ' '_')
    cp -a "$tmp/good" "$tree"
    put "$2" '/* a bad include */' "#include \"$3\""
    run "$1" 1 "$4"$'\n'"layers: 1 to fix (the rules: STYLE section 1; the table: top of tools/lint/layers.sh)"
}
bad "server includes middleware" gateway/server.c middleware/chain.h \
    "gateway/server.c:2: includes middleware/chain.h (layer 4 above 1)"
bad "gateway includes routes" gateway/conf.c routes/table.h \
    "gateway/conf.c:2: includes routes/table.h (layer 3 above 1)"
bad "layer 0 includes layer 1" gateway/req.h gateway/upstream.h \
    "gateway/req.h:2: includes gateway/upstream.h (layer 1 above 0)"
bad "routes include middleware" routes/proxy.c middleware/chain.h \
    "routes/proxy.c:2: includes middleware/chain.h (layer 4 above 3)"
bad "middleware besides the router includes routes" middleware/trace.h routes/table.h \
    "middleware/trace.h:2: includes routes/table.h (of middleware/ only middleware/route.c includes routes/)"
bad "product includes tests" gateway/loop.c tests/support/spawn.h \
    "gateway/loop.c:2: includes tests/support/spawn.h (tests/ is outside the layers)"
bad "include not from the root" routes/fanout.c table.h \
    "routes/fanout.c:2: includes table.h (project includes are paths from the repo root (STYLE section 7))"
bad "include of a directory not in the table" routes/fanout.c queue/ring.h \
    "routes/fanout.c:2: includes queue/ring.h (queue/ is not in the layer table: add a row for it at the top of tools/lint/layers.sh)"
bad "directory not in the table" queue/ring.c gateway/err.h \
    "queue/ring.c: queue/ is not in the layer table: add a row for it at the top of tools/lint/layers.sh"

if [ "$failures" -gt 0 ]; then
    echo "test_layers: $failures failed"
    exit 1
fi
echo "test_layers: all passed"
