#!/usr/bin/env bash
# `make run`: starts the demo ePRO services and the gateway on $PORT. Each service is a tg-stub
# process of its own, so any one can be stopped alone (kill the pid in $BUILD/demo/NAME.pid):
# two questionnaire replicas (9101, 9104) behind one upstream, patient (9102), history (9103).
# Ctrl-C or SIGTERM stops everything; nothing is left running.
#   BUILD  build directory holding tracegate and tg-stub (default: build)
#   CONF   gateway conf (default: conf/tracegate.json)
#   PORT   gateway port (default: 8080)
#   ADMIN_PORT  the admin listener's port (default: the conf's, 9901; 0 lets the kernel pick)
set -euo pipefail

BUILD=${BUILD:-build}
CONF=${CONF:-conf/tracegate.json}
PORT=${PORT:-8080}
ADMIN_PORT=${ADMIN_PORT:-}
# name:port:service of each demo service
SERVICES=(questionnaire-1:9101:questionnaire questionnaire-2:9104:questionnaire
    patient:9102:patient history:9103:history)
STUB_LOG="$BUILD/demo-services.log"
PID_DIR="$BUILD/demo"

stub_pids=""
gw_pid=""

say() { echo "demo.sh: $*" >&2; }

# Stops only the processes this script started, then waits so none outlives it.
# shellcheck disable=SC2317 # invoked by the traps
cleanup() {
    trap - EXIT INT TERM
    for pid in $gw_pid $stub_pids; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $gw_pid $stub_pids; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$PID_DIR"
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
for svc in "${SERVICES[@]}"; do
    IFS=: read -r name port _ <<<"$svc"
    if port_taken "$port"; then
        say "port $port ($name, a demo service) is already in use; stop whatever listens there"
        exit 1
    fi
done
if port_taken "$PORT"; then
    say "port $PORT (the gateway) is already in use; stop whatever listens there or set PORT"
    exit 1
fi

mkdir -p "$PID_DIR"
: >"$STUB_LOG"
for svc in "${SERVICES[@]}"; do
    IFS=: read -r name port service <<<"$svc"
    "$BUILD/tg-stub" --listen "$port:$service" >>"$STUB_LOG" 2>&1 &
    stub_pids="$stub_pids $!"
    echo "$!" >"$PID_DIR/$name.pid"
done

# Bounded wait (5 s) for every {"event":"listening",...} line.
for _ in $(seq 50); do
    if [[ $(grep -c '"event":"listening"' "$STUB_LOG" || true) -ge ${#SERVICES[@]} ]]; then
        break
    fi
    sleep 0.1
done
if [[ $(grep -c '"event":"listening"' "$STUB_LOG" || true) -lt ${#SERVICES[@]} ]]; then
    cat "$STUB_LOG" >&2
    say "the demo services did not start; see above"
    exit 1
fi
say "demo services up: ${SERVICES[*]} (their log: $STUB_LOG)"
say "stop one replica and /submit keeps working: kill \$(cat $PID_DIR/questionnaire-1.pid)"
say "admin listener: curl localhost:${ADMIN_PORT:-9901}/metrics (and /healthz, /readyz, /info)"
say "try: curl -i -X POST localhost:$PORT/submit -H 'Content-Type: application/json' -H 'Idempotency-Key: \"demo-0001\"' -H 'X-Patient-Id: p1' -H 'X-Trace-Id: demo-trace-1' -d '{\"patient_id\":\"p1\",\"answers\":[1,2]}'"

# In the background so the traps run at once on Ctrl-C (bash defers them during a foreground
# command); the gateway's own log stays on this terminal.
admin_args=()
[ -n "$ADMIN_PORT" ] && admin_args=(--admin-port "$ADMIN_PORT")
"$BUILD/tracegate" -c "$CONF" --port "$PORT" "${admin_args[@]}" &
gw_pid=$!
rc=0
wait "$gw_pid" || rc=$?
gw_pid=""
if [[ $rc -ne 0 ]]; then
    say "the gateway exited with status $rc"
fi
exit "$rc"
