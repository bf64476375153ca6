#!/usr/bin/env bash
# `make run`: starts the demo ePRO services (tg-stub on 9101-9103) and the gateway on $PORT.
# Ctrl-C or SIGTERM stops both; nothing is left running.
#   BUILD  build directory holding tracegate and tg-stub (default: build)
#   CONF   gateway conf (default: conf/tracegate.json)
#   PORT   gateway port (default: 8080)
set -euo pipefail

BUILD=${BUILD:-build}
CONF=${CONF:-conf/tracegate.json}
PORT=${PORT:-8080}
STUB_PORTS=(9101 9102 9103)
STUB_LOG="$BUILD/demo-services.log"

stub_pid=""
gw_pid=""

say() { echo "demo.sh: $*" >&2; }

# Stops only the processes this script started, then waits so none outlives it.
# shellcheck disable=SC2317 # invoked by the traps
cleanup() {
    trap - EXIT INT TERM
    for pid in $gw_pid $stub_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $gw_pid $stub_pid; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# True if something already accepts connections on 127.0.0.1:$1.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for bin in tracegate tg-stub; do
    if [[ ! -x "$BUILD/$bin" ]]; then
        say "$BUILD/$bin not found; run 'make build' first (or set BUILD)"
        exit 1
    fi
done
if [[ ! -r "$CONF" ]]; then
    say "cannot read conf $CONF (set CONF)"
    exit 1
fi
for port in "${STUB_PORTS[@]}"; do
    if port_taken "$port"; then
        say "port $port (a demo service) is already in use; stop whatever listens there"
        exit 1
    fi
done
if port_taken "$PORT"; then
    say "port $PORT (the gateway) is already in use; stop whatever listens there or set PORT"
    exit 1
fi

"$BUILD/tg-stub" --listen 9101:questionnaire --listen 9102:patient --listen 9103:history \
    >"$STUB_LOG" 2>&1 &
stub_pid=$!

# Bounded wait (5 s) for the three {"event":"listening",...} lines.
for _ in $(seq 50); do
    if [[ $(grep -c '"event":"listening"' "$STUB_LOG" || true) -ge 3 ]]; then
        break
    fi
    if ! kill -0 "$stub_pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ $(grep -c '"event":"listening"' "$STUB_LOG" || true) -lt 3 ]]; then
    cat "$STUB_LOG" >&2
    say "the demo services did not start (ports ${STUB_PORTS[*]}); see above"
    exit 1
fi
say "demo services up on ${STUB_PORTS[*]} (their log: $STUB_LOG)"
say "try: curl -i -X POST localhost:$PORT/submit -H 'Content-Type: application/json' -H 'Idempotency-Key: \"demo-0001\"' -H 'X-Patient-Id: p1' -H 'X-Trace-Id: demo-trace-1' -d '{\"patient_id\":\"p1\",\"answers\":[1,2]}'"

# In the background so the traps run at once on Ctrl-C (bash defers them during a foreground
# command); the gateway's own log stays on this terminal.
"$BUILD/tracegate" -c "$CONF" --port "$PORT" &
gw_pid=$!
rc=0
wait "$gw_pid" || rc=$?
gw_pid=""
if [[ $rc -ne 0 ]]; then
    say "the gateway exited with status $rc"
fi
exit "$rc"
