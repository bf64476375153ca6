#!/usr/bin/env bash
# What the telemetry costs per proxied request, in instructions (callgrind: repeatable on a
# shared machine, unlike seconds). Two runs of the same binary on the same requests:
#   off  no span export (the histograms and labelled series are always on)
#   on   span export to tg-stub's collector stand-in, every request sampled
# and the instructions spent by the telemetry: on the request path (the worker thread, with and
# without export; the histogram and series updates tg_metric_observe and tg_metric_add; the
# server span put on the queue, span_on_done) and on the exporter's own thread (exporter_main:
# encoding, POSTs).
#   bench/telemetry_cost.sh            (REQUESTS=2000 TRACEGATE=build/tracegate)
# Everything on 127.0.0.1, bounded in time; stops only what it started. Needs valgrind,
# python3 (standard library) and a build (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
TRACEGATE=${TRACEGATE:-build/tracegate}
STUB=${STUB:-$(dirname "$TRACEGATE")/tg-stub}
REQUESTS=${REQUESTS:-2000}
OUT=${OUT:-bench/results/telemetry-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_line() { # FILE PATTERN: up to 60 s (callgrind starts slowly)
    for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "telemetry_cost: no '$2' in $1" >&2
    return 1
}

UP=$(free_port)
COL=$(free_port)
timeout 900 "$STUB" --listen "$UP:test" --listen "$COL:collector" >"$OUT/stub.log" 2>&1 &
pids+=($!)
wait_line "$OUT/stub.log" '"service":"collector"'

# One run: the gateway under callgrind, REQUESTS GETs on one keep-alive connection, SIGTERM.
run() { # NAME OTLP_JSON
    local name=$1 port
    port=$(free_port)
    cat >"$OUT/$name.json" <<EOF
{ "listen": "127.0.0.1:$port", "workers": 1, "admin": { "listen": "off" }, $2
  "upstreams": { "t": { "url": "http://127.0.0.1:$UP" } },
  "routes": [ { "name": "fast", "method": "GET", "path": "/fast", "upstream": "t",
                "upstream_path": "/x" } ] }
EOF
    timeout 900 valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind" \
        "$TRACEGATE" -c "$OUT/$name.json" >"$OUT/$name.log" 2>"$OUT/$name.valgrind" &
    local vg=$!
    pids+=($vg)
    wait_line "$OUT/$name.log" '"event":"listening"'
    timeout 600 python3 - "$port" "$REQUESTS" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    c.request("GET", "/fast")
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
    sleep 1 # the exporter's batch timeout is 200 ms in the "on" run: let it send
    kill -TERM "$vg"
    wait "$vg"
}

run off ''
run on '"otlp": { "endpoint": "http://127.0.0.1:'"$COL"'", "batch_timeout_ms": 200 },'

total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
incl() { # FILE FUNCTION: inclusive instructions of FUNCTION
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v f="$2" '!done && ($0 ~ ":"f" " || $0 ~ ":"f"$") { gsub(",", "", $1); print $1; done = 1 }'
}
per() { python3 -c "print(f'{${1:-0}/$REQUESTS:,.0f}')"; }

off=$(total "$OUT/off.callgrind")
on=$(total "$OUT/on.callgrind")
woff=$(incl "$OUT/off.callgrind" worker_main)
won=$(incl "$OUT/on.callgrind" worker_main)
{
    echo "| per request ($REQUESTS GET /fast, one worker, callgrind) | instructions |"
    echo "|---|---:|"
    echo "| whole process, span export off | $(per "$off") |"
    echo "| whole process, span export on (every request sampled) | $(per "$on") |"
    echo "| the worker thread (the request path), export off | $(per "$woff") |"
    echo "| the worker thread (the request path), export on | $(per "$won") |"
    echo "| span export on the request path (difference) | $(per "$((won - woff))") |"
    echo "| span export on its own thread (\`exporter_main\`: encoding, POSTs) | $(per "$(incl "$OUT/on.callgrind" exporter_main)") |"
    for f in tg_metric_observe tg_metric_add span_on_done; do
        echo "| inside \`$f\` | $(per "$(incl "$OUT/on.callgrind" "$f")") |"
    done
    echo "| export requests sent | $(grep -c '"service":"collector"' "$OUT/stub.log" || true) |"
} | tee "$OUT/cost.md"
