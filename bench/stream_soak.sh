#!/usr/bin/env bash
# Streaming through the gateway at size, with the gateway's resident memory watched:
#   1. a download of SOAK_MIB MiB (Content-Length), checked against the same bytes fetched
#      from the upstream directly;
#   2. a chunked upload of SOAK_MIB MiB, checked against the same upload sent to the upstream
#      directly (its length and hash, as tg-stub's /_sink reports them);
#   3. a client reading at 1 MiB/s for READ_SECONDS seconds from an answer of SOAK_MIB MiB:
#      how much the upstream sent meanwhile, against what the client read.
# Fails (exit 1) when a transfer is not intact, when the RSS grows by RSS_MAX_MIB or more, or
# when the upstream got more than HELD_MAX_MIB ahead of the slow reader. 127.0.0.1 only;
# every step is under timeout; stops only the processes it started.
#   bench/stream_soak.sh                     SOAK_MIB=1024 READ_SECONDS=20
#   SOAK_MIB=64 READ_SECONDS=5 bench/stream_soak.sh    (the short run CI makes)
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_MIB=${SOAK_MIB:-1024}
READ_SECONDS=${READ_SECONDS:-20}
RSS_MAX_MIB=${RSS_MAX_MIB:-16}
HELD_MAX_MIB=${HELD_MAX_MIB:-64}
PORT=${PORT:-27400}
STUB_PORT=${STUB_PORT:-27401}
TRACEGATE=${TRACEGATE:-build/tracegate}
TG_STUB=${TG_STUB:-$(dirname "$TRACEGATE")/tg-stub}
BYTES=$((SOAK_MIB * 1048576))
STEP_TIMEOUT=$((60 + SOAK_MIB / 8)) # seconds for one transfer of SOAK_MIB MiB
work=$(mktemp -d)
gw_pid= stub_pid= sampler_pid=
failed=0

cleanup() {
    for p in $sampler_pid $gw_pid $stub_pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

log() { printf '[soak %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { log "FAIL: $*"; failed=1; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$gw_pid/status"; }

# Samples the gateway's RSS every 50 ms into $work/rss until stopped; prints the highest.
sample_start() {
    (while :; do rss_kib >>"$work/rss"; sleep 0.05; done) &
    sampler_pid=$!
}
sample_stop() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=
    sort -n "$work/rss" | tail -1
    rm -f "$work/rss"
}

stub_stat() { # NAME: a counter of tg-stub's /_stub/stats
    curl -s --max-time 5 "http://127.0.0.1:$STUB_PORT/_stub/stats" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

cat >"$work/conf.json" <<EOF
{
  "listen": "127.0.0.1:$PORT",
  "workers": 1,
  "admin": { "listen": "off" },
  "limits": { "max_body_bytes": 1073741824 },
  "upstreams": { "t": { "url": "http://127.0.0.1:$STUB_PORT" } },
  "routes": [{ "method": "*", "path": "/s/*", "upstream": "t", "strip_prefix": true }]
}
EOF

[ -x "$TRACEGATE" ] || { log "no $TRACEGATE: make build first"; exit 1; }
"$TG_STUB" --listen "$STUB_PORT:test" >"$work/stub.log" 2>&1 &
stub_pid=$!
"$TRACEGATE" -c "$work/conf.json" >/dev/null 2>"$work/gw.err" &
gw_pid=$!
for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/s/health" && break
    sleep 0.1
done
rss0=$(rss_kib)
log "gateway pid $gw_pid, RSS $rss0 KiB; $SOAK_MIB MiB each way"

# 1. download
direct=$(timeout "$STEP_TIMEOUT" curl -s "http://127.0.0.1:$STUB_PORT/x?body_bytes=$BYTES" | md5sum)
sample_start
t0=$(date +%s.%N)
through=$(timeout "$STEP_TIMEOUT" curl -s "http://127.0.0.1:$PORT/s/x?body_bytes=$BYTES" | md5sum)
t1=$(date +%s.%N)
peak_dl=$(sample_stop)
[ "$direct" = "$through" ] || fail "download: $through, direct $direct"

# 2. chunked upload (the bytes come from the stub's pattern; curl -T - sends them chunked)
up() { # URL: uploads the pattern chunked, prints the sink's JSON
    timeout "$STEP_TIMEOUT" curl -s "http://127.0.0.1:$STUB_PORT/x?body_bytes=$BYTES" |
        timeout "$STEP_TIMEOUT" curl -s -T - -H "Transfer-Encoding: chunked" "$1"
}
direct=$(up "http://127.0.0.1:$STUB_PORT/_sink")
sample_start
t2=$(date +%s.%N)
through=$(up "http://127.0.0.1:$PORT/s/_sink")
t3=$(date +%s.%N)
peak_up=$(sample_stop)
[ "$direct" = "$through" ] || fail "chunked upload: $through, direct $direct"
case $through in *"\"body_len\":$BYTES,"*) ;; *) fail "chunked upload: $through" ;; esac

# 3. a client reading 1 MiB/s
sent0=$(stub_stat body_bytes_sent)
sample_start
timeout "$READ_SECONDS" curl -s --limit-rate 1M -o /dev/null \
    "http://127.0.0.1:$PORT/s/x?body_bytes=$BYTES" || true
sent=$(($(stub_stat body_bytes_sent) - sent0))
peak_slow=$(sample_stop)
read_mib=$READ_SECONDS # at 1 MiB/s
held=$((sent / 1048576 - read_mib))

rate() { python3 -c "print(f'{$BYTES / 1048576 / ($2 - $1):.0f}')"; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
grow() { echo $(($1 - rss0)); } # KiB
for peak in "$peak_dl" "$peak_up" "$peak_slow"; do
    [ "$(grow "$peak")" -lt $((RSS_MAX_MIB * 1024)) ] || fail "RSS grew $(grow "$peak") KiB"
done
[ "$failed" = 0 ] && verdict=intact || verdict="see the log above"
printf '\n| step | result | time | MiB/s | gateway RSS peak - start |\n|---|---|---:|---:|---:|\n'
printf '| download, %s MiB | %s (md5 as direct) | %s s | %s | %s KiB |\n' "$SOAK_MIB" \
    "$verdict" "$(secs "$t0" "$t1")" "$(rate "$t0" "$t1")" "$(grow "$peak_dl")"
printf '| chunked upload, %s MiB | %s (length, FNV-1a as direct) | %s s | %s | %s KiB |\n' \
    "$SOAK_MIB" "$verdict" "$(secs "$t2" "$t3")" "$(rate "$t2" "$t3")" "$(grow "$peak_up")"
printf '| reader at 1 MiB/s, %s s | upstream sent %s MiB, client read ~%s MiB | | | %s KiB |\n\n' \
    "$READ_SECONDS" "$((sent / 1048576))" "$read_mib" "$(grow "$peak_slow")"
[ "$held" -lt "$HELD_MAX_MIB" ] || fail "the upstream got $held MiB ahead of a 1 MiB/s reader"
kill -TERM "$gw_pid"
wait "$gw_pid" || fail "gateway exit $?"
gw_pid=
exit "$failed"
