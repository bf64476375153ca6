#!/usr/bin/env bash
# tracegate benchmark: direct / NGINX / HAProxy / tracegate against one local upstream.
#   bench/run.sh             throughput, latency, CPU per request, idle-connection memory:
#                            ROUNDS interleaved runs per cell, the table shows medians (min-max)
#   bench/run.sh cost        the stable figures: instructions per request (callgrind) and system
#                            calls per request (perf's syscall tracepoint, or strace)
#   bench/run.sh latency     client-close -> upstream-close and deadline -> 504 distributions
#   bench/run.sh resilience  dead target -> ejection, target back -> traffic, breaker -> 503
#   bench/run.sh durable     durable POST /submit beside the plain proxy route: added latency,
#                            accepted submissions/s with group commit, fsync p50/p99
# Settings are environment variables (bench/README.md). 127.0.0.1 only; every step is bounded
# in time; only the processes this script started are stopped (PIDs tracked, trap on exit).
set -uo pipefail
shopt -u patsub_replacement 2>/dev/null || true   # "&" in a rendered value stays "&"

MODE=${1:-throughput}
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
TOOLS=$BENCH/tools

DURATION=${DURATION:-5}            # measured seconds per cell
WARMUP=${WARMUP:-1}                # unmeasured seconds before each cell
CONNS=${CONNS:-1 64 512}           # concurrency of the fast scenario
SLOW_CONNS=${SLOW_CONNS:-1 64 512} # concurrency of the slow scenario
FANOUT_CONNS=${FANOUT_CONNS:-1 64 512}
FANOUT_SLOW_CONNS=${FANOUT_SLOW_CONNS:-64} # fan-out to 3 backends of SLOW_MS each
POOL_CONNS=${POOL_CONNS:-64}       # three targets, one dead
IDLE_CONNS=${IDLE_CONNS:-5000}     # idle keep-alive connections for the memory figure
SLOW_MS=${SLOW_MS:-20}
TARGETS=${TARGETS:-direct nginx haproxy floor tracegate}
ROUNDS=${ROUNDS:-3}                # interleaved runs of every cell: the table shows their median
COST_SECS=${COST_SECS:-5}          # cost mode: measured seconds per figure
COST_CELLS=${COST_CELLS:-fast:64 fast:1 fanout:64}   # cost mode: scenario:connections
SCENARIOS=${SCENARIOS:-memory fast slow fanout fanout_slow pool}
CPU_LOAD=${CPU_LOAD:-0}            # wrk, the idle client, the upstream (proxied runs)
CPU_SUT=${CPU_SUT:-1}              # the system under test
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-64}
UP_FAST=${UP_FAST:-27080} UP_SLOW=${UP_SLOW:-27081}
UP_FAST2=${UP_FAST2:-27082} UP_DEAD=${UP_DEAD:-27083} # the pool: two live targets, one dead
NGINX_PORT=${NGINX_PORT:-27100} HAPROXY_PORT=${HAPROXY_PORT:-27200}
TG_PORT=${TG_PORT:-27300} TG_LAT_PORT=${TG_LAT_PORT:-27301} TG_RES_PORT=${TG_RES_PORT:-27302}
FLOOR_PORT=${FLOOR_PORT:-27400}
SAMPLES=${SAMPLES:-1000}           # latency mode: samples per distribution
DURABLE_CONNS=${DURABLE_CONNS:-1 64} # durable mode: connection counts
TG_DUR_PORT=${TG_DUR_PORT:-27303}
STUB_LISTEN=${STUB_LISTEN:-0:test}
PY=${PYTHON:-python3}
RESULTS=${RESULTS:-$BENCH/results}
RUN=${RUN_DIR:-$BENCH/.run}        # scratch: rendered confs, logs, pid files

TG_DEFAULT=$ROOT/build/tracegate
TRACEGATE=${TRACEGATE:-$TG_DEFAULT}
TG_CURL_LIB=${TG_CURL_LIB:-}      # a folder holding another libcurl.so.4 for tracegate (and the floor)
TG_POOL=${TG_POOL:-}              # tracegate's (and the floor's) limits.connection_buffer_bytes (empty: the default, 8192)
TG_STUB=${TG_STUB:-$(dirname "$TRACEGATE")/tg-stub}

declare -A PIDS=()   # name -> pid of every process this script started and has not stopped
NOTES=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
note() { log "note: $*"; NOTES+=("$*"); [[ -n ${RES:-} ]] && echo "$*" >>"$RES/notes.txt"; }

# ---------------------------------------------------------------- processes
starttime() {  # field 22 of /proc/PID/stat: distinguishes a process from a later one with its pid
    local s f; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }; read -r -a f <<<"$s"; echo "${f[19]}"
}
alive() {
    local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }; [[ ${s:0:1} != Z ]]
}

# start NAME CPU STDOUT CMD...: background process pinned to CPU, tracked for cleanup.
start() {
    local name=$1 cpu=$2 out=$3; shift 3
    taskset -c "$cpu" "$@" >"$out" 2>"$RUN/$name.err" </dev/null &
    local pid=$!
    PIDS[$name]=$pid
    echo "$pid $(starttime "$pid")" >"$RUN/pids/$name"
}

# stop NAME: SIGTERM, SIGKILL after 5 s, then reap.
stop() {
    local name=$1 pid=${PIDS[$1]:-} i
    [[ -z $pid ]] && return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PIDS[$name]"
    rm -f "$RUN/pids/$name"
}

# bounded SECONDS NAME CMD...: runs CMD in the background under timeout and waits for it, so a
# signal reaches the trap at once. Returns CMD's status (124 on timeout).
bounded() {
    local secs=$1 name=$2 rc; shift 2
    timeout -k 3 "$secs" "$@" &
    PIDS[$name]=$!
    wait "${PIDS[$name]}"; rc=$?
    unset "PIDS[$name]"
    return $rc
}

cleanup() {
    local name
    trap - EXIT INT TERM
    for name in "${!PIDS[@]}"; do stop "$name"; done
}

# Stops what an earlier run that was killed (SIGKILL, no trap) left: same pid AND start time.
stop_leftovers() {
    local f pid st
    for f in "$RUN"/pids/*; do
        [[ -f $f ]] || continue
        read -r pid st <"$f"
        if [[ -n $pid && $(starttime "$pid") == "$st" ]]; then
            log "stopping $(basename "$f") left by an earlier run (pid $pid)"
            kill -TERM "$pid" 2>/dev/null; sleep 1; kill -KILL "$pid" 2>/dev/null
        fi
        rm -f "$f"
    done
}

tree() { local p c; for p in "$@"; do echo "$p"; for c in $(pgrep -P "$p"); do tree "$c"; done; done; }

cpu_ticks() {  # utime+stime of a process tree (all threads), in clock ticks
    local p s t=0 f
    for p in $(tree "$1"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }; read -r -a f <<<"$s"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}

mem_kb() {  # mem_kb PID rss|pss: summed over the process tree
    local p t=0 v
    for p in $(tree "$1"); do
        if [[ $2 == rss ]]; then
            v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        else
            v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
        fi
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# ours: CPU ticks of the bench's own processes: the target, the upstream, and every child this
# script has reaped (wrk, via its cutime/cstime); all_busy: user+nice+system ticks of the machine.
# Their difference over a cell is what other processes on the machine took meanwhile.
ours_ticks() {
    local s f t; s=$(cat "/proc/$$/stat"); s=${s##*) }; read -r -a f <<<"$s"
    t=$((f[13] + f[14] + $(cpu_ticks "$1")))
    [[ $1 != "$2" ]] && t=$((t + $(cpu_ticks "$2")))
    echo "$t"
}
all_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat; }

core_stat() {  # "busy total" jiffies of one core
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

pin_tree() { local p; for p in $(tree "$1"); do taskset -a -p -c "$2" "$p" >/dev/null; done; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-3}" "$1"; }

# wait_http URL SECONDS PID: until URL answers anything, the process dies, or time runs out.
wait_http() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ $(http_code "$1" 1) != 000 ]] && return 0
        alive "$3" || return 1
        sleep 0.1
    done
    return 1
}

port_busy() { [[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]; }

# render TEMPLATE OUT NAME=VALUE...: replaces @NAME@ markers.
render() {
    local text k v kv _
    text=$(<"$1")
    for _ in 1 2; do   # twice: an inserted include may hold markers itself
        for kv in "${@:3}"; do k=${kv%%=*}; v=${kv#*=}; text=${text//@$k@/$v}; done
    done
    [[ $text == *@[A-Z_]*@* ]] && grep -o '@[A-Z_]*@' <<<"$text" | sort -u | sed 's/^/unreplaced marker /' >&2
    printf '%s\n' "$text" >"$2"
}

# ---------------------------------------------------------------- setup
ensure_tools() {
    local missing=() c
    declare -A pkg=([nginx]=nginx [haproxy]=haproxy [wrk]=wrk [curl]=curl [taskset]=util-linux
                    [pgrep]=procps [ss]=iproute2 [timeout]=coreutils [$PY]=python3)
    for c in "${!pkg[@]}"; do command -v "$c" >/dev/null || missing+=("${pkg[$c]}"); done
    find_echo || missing+=(libnginx-mod-http-echo)
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) == 0 && ${NO_INSTALL:-0} != 1 ]]; then
        log "installing: ${missing[*]}"
        bounded 300 apt-update env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
            die "apt-get update failed"
        bounded 600 apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
    fi
    for c in "${!pkg[@]}"; do command -v "$c" >/dev/null || die "missing $c (package ${pkg[$c]})"; done
    find_echo || note "nginx echo module missing (libnginx-mod-http-echo): slow and fanout skipped"
}

ECHO_SO=""
find_echo() {
    local f
    for f in /usr/lib/nginx/modules/ngx_http_echo_module.so /usr/share/nginx/modules/ngx_http_echo_module.so; do
        [[ -f $f ]] && { ECHO_SO=$f; return 0; }
    done
    return 1
}

# Sets FLOOR_OK=1 once bench/floor/floor.c is built (cc and the libraries' pkg-config flags).
ensure_floor() {
    FLOOR_OK=0
    local cflags
    cflags=$(pkg-config --cflags --libs libmicrohttpd libcurl 2>/dev/null) ||
        { note "floor: libmicrohttpd/libcurl development files missing: floor rows skipped"; return; }
    # shellcheck disable=SC2086 # the flags are words
    if cc -O2 -o "$RUN/floor" "$BENCH/floor/floor.c" $cflags 2>"$RUN/floor-build.log"; then FLOOR_OK=1
    else note "floor did not build: $(head -c 200 "$RUN/floor-build.log" | tr '\n' ' ')"; fi
}

# Sets TG_OK=1 when a tracegate binary is there; builds the default one with `make build`.
ensure_tracegate() {
    TG_OK=0
    if [[ ! -x $TRACEGATE && $TRACEGATE == "$TG_DEFAULT" ]]; then
        log "building tracegate (make build, log in .run/build.log)"
        bounded 900 make make -C "$ROOT" build >"$RUN/build.log" 2>&1 ||
            note "make build failed: $(grep -m1 -E 'error|Error' "$RUN/build.log" | cut -c1-200)"
    fi
    if [[ -x $TRACEGATE ]]; then TG_OK=1; else note "tracegate binary not found ($TRACEGATE): tracegate rows skipped"; fi
}

setup_common() {
    stop_leftovers
    mkdir -p "$RUN/pids" "$RUN/tmp"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    NOFILE=65536
    local hard; hard=$(ulimit -Hn)
    [[ $hard != unlimited ]] && ((hard < NOFILE)) && NOFILE=$hard
    ulimit -n "$NOFILE" || die "cannot raise the open-files limit"
    ((IDLE_CONNS + 1000 > NOFILE)) && die "IDLE_CONNS=$IDLE_CONNS needs an open-files limit above $((IDLE_CONNS + 1000)) (have $NOFILE)"
    (($(nproc) < 2)) && { CPU_LOAD=0; CPU_SUT=0; log "one CPU only: no pinning split"; }
    ensure_tools
    RES=$RESULTS/$(date +%Y%m%d-%H%M%S)${1:+-$1}
    mkdir -p "$RES/raw"
    : >"$RES/notes.txt"
    local n; for n in "${NOTES[@]}"; do echo "$n" >>"$RES/notes.txt"; done
    {
        echo "date: $(date -Is)"; echo "kernel: $(uname -r)"; echo "cpus: $(nproc)"
        echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')"; echo "haproxy: $(haproxy -v | awk 'NR == 1 { print $3 }')"
        echo "wrk: $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"; echo "python: $($PY -V 2>&1)"
        echo "tracegate: ${TRACEGATE#"$ROOT"/} (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
        echo "libcurl (tracegate, floor): $(LD_LIBRARY_PATH=$TG_CURL_LIB "$PY" -c 'import ctypes; f = ctypes.CDLL("libcurl.so.4").curl_version; f.restype = ctypes.c_char_p; print(f().decode())' 2>/dev/null || echo '?')"
        echo "pinning: load core cpu$CPU_LOAD = wrk + idle client + upstream (proxied rows); system under test on cpu$CPU_SUT (the upstream itself in direct rows)"
        echo "settings: DURATION=$DURATION WARMUP=$WARMUP CONNS='$CONNS' SLOW_CONNS='$SLOW_CONNS' FANOUT_CONNS='$FANOUT_CONNS' IDLE_CONNS=$IDLE_CONNS SLOW_MS=$SLOW_MS NGINX_KEEPALIVE=$NGINX_KEEPALIVE nofile=$NOFILE"
    } >"$RES/env.txt"
}

# ---------------------------------------------------------------- throughput mode
has() { [[ " $1 " == *" $2 "* ]]; }

CSV_HEAD="scenario,conns,target,requests,duration_s,rps,p50_ms,p99_ms,max_ms,errors,error_detail,cpu_us_per_req,sut_cpu_pct,load_core_busy_pct,sut_core_busy_pct,other_cpu_pct,note,round"
ROUND=1

skip_row() { echo "$1,$2,$3,,,,,,,,,,,,,,skip: $4,$ROUND" >>"$RES/cells.csv"; }

url_of() {  # scenario target
    case $2 in
        direct) [[ $1 == slow ]] && echo "http://127.0.0.1:$UP_SLOW/slow" || echo "http://127.0.0.1:$UP_FAST/fast" ;;
        floor) echo "http://127.0.0.1:$FLOOR_PORT/fast" ;;
        *) echo "http://127.0.0.1:${PORT[$2]}/$1" ;;
    esac
}

# cell SCENARIO CONNS TARGET: one wrk run, one row of cells.csv.
cell() {
    local sc=$1 c=$2 tg=$3 url pid code extra=""
    url=$(url_of "$sc" "$tg")
    if [[ $tg == direct ]]; then pid=${PIDS[upstream]}; else pid=${PIDS[$tg]}; fi
    code=$(http_code "$url" 3)
    if [[ $code == 000 ]]; then
        skip_row "$sc" "$c" "$tg" "no answer to a probe request"; note "$tg $sc c=$c: no answer to a probe request, skipped"; return
    fi
    [[ $code != 200 ]] && extra="probe answered HTTP $code"
    # The upstream is the system under test in direct rows; otherwise it shares the load core.
    if [[ $tg == direct ]]; then pin_tree "${PIDS[upstream]}" "$CPU_SUT"; else pin_tree "${PIDS[upstream]}" "$CPU_LOAD"; fi
    bounded $((WARMUP + 15)) wrk taskset -c "$CPU_LOAD" wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 2s "$url" >/dev/null 2>&1
    local raw="$RES/raw/wrk-$sc-$c-$tg.txt" t0 t1 l0 l1 s0 s1 o0 o1 a0 a1
    t0=$(cpu_ticks "$pid"); l0=$(core_stat "$CPU_LOAD"); s0=$(core_stat "$CPU_SUT")
    o0=$(ours_ticks "$pid" "${PIDS[upstream]}"); a0=$(all_busy)
    bounded $((DURATION + 20)) wrk taskset -c "$CPU_LOAD" wrk -t1 -c"$c" -d"${DURATION}s" --timeout 2s --latency \
        -s "$TOOLS/report.lua" "$url" >"$raw" 2>&1
    a1=$(all_busy); o1=$(ours_ticks "$pid" "${PIDS[upstream]}")
    t1=$(cpu_ticks "$pid"); l1=$(core_stat "$CPU_LOAD"); s1=$(core_stat "$CPU_SUT")
    local line; line=$(grep -m1 '^WRK ' "$raw")
    if [[ -z $line ]]; then
        skip_row "$sc" "$c" "$tg" "wrk failed"; note "$tg $sc c=$c: wrk failed: $(tail -c 200 "$raw" | tr '\n' ' ')"; return
    fi
    local requests=0 duration_us=1 p50_us=0 p99_us=0 max_us=0 err_connect=0 err_read=0 err_write=0 err_status=0 err_timeout=0 kv
    for kv in ${line#WRK }; do printf -v "${kv%%=*}" '%s' "${kv#*=}"; done
    local errors=$((err_connect + err_read + err_write + err_status + err_timeout))
    local detail="connect=$err_connect read=$err_read write=$err_write status=$err_status timeout=$err_timeout"
    ((errors > 0)) && extra="${extra:+$extra; }errors $detail"
    awk -v sc="$sc" -v c="$c" -v tg="$tg" -v n="$requests" -v dus="$duration_us" -v p50="$p50_us" \
        -v p99="$p99_us" -v mx="$max_us" -v err="$errors" -v det="$detail" -v ticks=$((t1 - t0)) \
        -v hz="$(getconf CLK_TCK)" -v l="$l0 $l1" -v s="$s0 $s1" -v other=$(((a1 - a0) - (o1 - o0))) -v extra="$extra" \
        -v round="$ROUND" 'BEGIN {
            d = dus / 1e6; cpu = ticks / hz; split(l, L, " "); split(s, S, " ")
            printf "%s,%s,%s,%d,%.2f,%.0f,%.3f,%.3f,%.3f,%d,%s,%s,%.0f,%.0f,%.0f,%.0f,%s,%s\n", sc, c, tg, n, d, n / d,
                p50 / 1000, p99 / 1000, mx / 1000, err, det, (n > 0 ? sprintf("%.1f", cpu * 1e6 / n) : ""),
                100 * cpu / d, 100 * (L[3] - L[1]) / (L[4] - L[2] + 1e-9), 100 * (S[3] - S[1]) / (S[4] - S[2] + 1e-9),
                (other > 0 ? 100 * other / hz / d : 0), extra, round }' \
        >>"$RES/cells.csv"
    [[ -n $extra ]] && note "$tg $sc c=$c: $extra"
    log "$(tail -1 "$RES/cells.csv" | awk -F, '{ printf "r%s %-6s c=%-4s %-9s %8s req/s  p50 %7s ms  p99 %7s ms  %6s us/req  errors %s  other %s%%", $18, $1, $2, $3, $6, $7, $8, $12, $10, $16 }')"
}

memory() {  # memory TARGET: RSS/PSS of the target holding IDLE_CONNS idle keep-alive connections
    local tg=$1 pid=${PIDS[$1]} before rss pss line="" i ok fail
    before=$(mem_kb "$pid" rss)
    start idle "$CPU_LOAD" "$RUN/idle.out" "$PY" "$TOOLS/bench.py" idle --port "${PORT[$tg]}" \
        --conns "$IDLE_CONNS" --max-seconds 150
    for ((i = 0; i < 1200; i++)); do
        line=$(grep -m1 '^ready ' "$RUN/idle.out") && break
        alive "${PIDS[idle]}" || break
        sleep 0.1
    done
    if [[ -z $line ]]; then
        echo "$tg,$IDLE_CONNS,,,,,,,skip: idle client not ready" >>"$RES/memory.csv"
        note "memory $tg: idle client not ready: $(tail -c 200 "$RUN/idle.err" | tr '\n' ' ')"; stop idle; return
    fi
    sleep 1
    rss=$(mem_kb "$pid" rss); pss=$(mem_kb "$pid" pss)
    stop idle
    ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$line"); fail=$(sed -n 's/.* fail=\([0-9]*\).*/\1/p' <<<"$line")
    ((fail > 0)) && note "memory $tg: $fail of $IDLE_CONNS connections failed (first error: ${line##*error=})"
    echo "$tg,$IDLE_CONNS,$ok,$fail,$before,$rss,$pss,$(awk -v a="$before" -v b="$rss" -v n="$ok" \
        'BEGIN { printf "%.2f", n ? (b - a) / n : 0 }')," >>"$RES/memory.csv"
    log "memory $tg: $ok idle connections: RSS $before -> $rss kB, PSS $pss kB"
    sleep 1
}

# start_target NAME URL CMD...: starts a system under test on the SUT core; 0 when it answers.
start_target() {
    local name=$1 url=$2; shift 2
    start "$name" "$CPU_SUT" "$@"
    wait_http "$url" 10 "${PIDS[$name]}" && return 0
    note "$name did not start: $(tail -c 300 "$RUN/$name.err" | tr '\n' ' ')"
    stop "$name"
    return 1
}

# Renders every conf into $RUN (and a copy into the results) and starts the upstream.
prepare() {
    local p
    for p in "$UP_FAST" "$UP_SLOW" "$UP_FAST2" "$UP_DEAD" "$NGINX_PORT" "$HAPROXY_PORT" "$TG_PORT" \
        "$FLOOR_PORT"; do
        port_busy "$p" && die "port $p is in use"
    done
    local echo_load="" fanout="" slow=""
    if [[ -n $ECHO_SO ]]; then
        echo_load="load_module $ECHO_SO;"
        fanout=$(<"$BENCH/conf/proxy.nginx-fanout.inc"); slow=$(<"$BENCH/conf/upstream.nginx-slow.inc")
    fi
    local v=(FANOUT="$fanout" SLOW_SERVER="$slow" NOFILE="$NOFILE" WORKER_CONNS=$((NOFILE / 2))
             MAXCONN=$(((NOFILE - 500) / 2)) ECHO_LOAD="$echo_load" UP_FAST="$UP_FAST" UP_SLOW="$UP_SLOW"
             UP_FAST2="$UP_FAST2" UP_DEAD="$UP_DEAD"
             NGINX_PORT="$NGINX_PORT" HAPROXY_PORT="$HAPROXY_PORT" TG_PORT="$TG_PORT"
             NGINX_KEEPALIVE="$NGINX_KEEPALIVE" TG_LIMITS_EXTRA="${TG_POOL:+, \"connection_buffer_bytes\": $TG_POOL}"
             SLOW_S="$(awk -v m="$SLOW_MS" 'BEGIN { printf "%.3f", m / 1000 }')")
    render "$BENCH/conf/upstream.nginx.conf" "$RUN/upstream.conf" "${v[@]}"
    render "$BENCH/conf/proxy.nginx.conf" "$RUN/proxy.conf" "${v[@]}"
    render "$BENCH/conf/haproxy.cfg" "$RUN/haproxy.cfg" "${v[@]}"
    render "$BENCH/conf/tracegate.json" "$RUN/tracegate.json" "${v[@]}"
    cp "$RUN/upstream.conf" "$RUN/proxy.conf" "$RUN/haproxy.cfg" "$RUN/tracegate.json" "$RES/raw/"
    start upstream "$CPU_LOAD" "$RUN/upstream.out" nginx -p "$RUN" -e "$RUN/upstream.stderr" -c "$RUN/upstream.conf"
    wait_http "http://127.0.0.1:$UP_FAST/" 10 "${PIDS[upstream]}" ||
        die "upstream nginx did not start: $(tail -c 300 "$RUN/upstream.err")"
    declare -gA PORT=([direct]=$UP_FAST [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT [tracegate]=$TG_PORT [floor]=$FLOOR_PORT)
}

# Sets TCMD to the command that runs target TG (nginx without its master process, so that one
# process is measured), for start_target or under valgrind.
target_cmd() {
    case $1 in
        nginx) TCMD=(nginx -p "$RUN" -e "$RUN/proxy.stderr" -c "$RUN/proxy.conf" -g "master_process off;") ;;
        haproxy) TCMD=(haproxy -db -f "$RUN/haproxy.cfg") ;;
        tracegate) TCMD=("$TRACEGATE" -c "$RUN/tracegate.json" --port "$TG_PORT" --workers 1) ;;
        floor) TCMD=("$RUN/floor" "$FLOOR_PORT" "http://127.0.0.1:$UP_FAST/fast" "${TG_POOL:-8192}") ;;  # tracegate's pool
    esac
    TENV=(env)
    [[ -n $TG_CURL_LIB && ($1 == tracegate || $1 == floor) ]] && TENV=(env "LD_LIBRARY_PATH=$TG_CURL_LIB")
}

throughput() {
    setup_common ""
    TG_OK=0 FLOOR_OK=0
    has "$TARGETS" tracegate && ensure_tracegate
    has "$TARGETS" floor && ensure_floor
    local tg sc c levels active=""
    prepare
    echo "$CSV_HEAD" >"$RES/cells.csv"
    echo "target,conns_requested,conns_ok,fail,rss_before_kb,rss_kb,pss_kb,kib_per_conn,note" >"$RES/memory.csv"
    has "$TARGETS" direct && active+=" direct"
    if has "$TARGETS" nginx && start_target nginx "http://127.0.0.1:$NGINX_PORT/fast" "$RUN/nginx.out" \
        nginx -p "$RUN" -e "$RUN/proxy.stderr" -c "$RUN/proxy.conf"; then active+=" nginx"; fi
    if has "$TARGETS" haproxy && start_target haproxy "http://127.0.0.1:$HAPROXY_PORT/fast" "$RUN/haproxy.out" \
        haproxy -db -f "$RUN/haproxy.cfg"; then active+=" haproxy"; fi
    # Its per-request log lines go to /dev/null: writing them is measured, storing them is not.
    target_cmd tracegate
    if has "$TARGETS" tracegate && ((TG_OK)) && start_target tracegate "http://127.0.0.1:$TG_PORT/fast" /dev/null \
        "${TENV[@]}" "${TCMD[@]}"; then active+=" tracegate"; fi
    target_cmd floor
    if has "$TARGETS" floor && ((FLOOR_OK)) && start_target floor "http://127.0.0.1:$FLOOR_PORT/fast" /dev/null \
        "${TENV[@]}" "${TCMD[@]}"; then active+=" floor"; fi
    log "targets running:$active"

    if has "$SCENARIOS" memory; then
        for tg in nginx haproxy floor tracegate; do
            has "$TARGETS" "$tg" || continue
            if has "$active" "$tg"; then memory "$tg"
            else echo "$tg,$IDLE_CONNS,,,,,,,skip: not running" >>"$RES/memory.csv"; fi
        done
    fi
    for sc in fast slow fanout fanout_slow pool; do
        has "$SCENARIOS" "$sc" || continue
        case $sc in
            fast) levels=$CONNS ;; slow) levels=$SLOW_CONNS ;; fanout) levels=$FANOUT_CONNS ;;
            fanout_slow) levels=$FANOUT_SLOW_CONNS ;; pool) levels=$POOL_CONNS ;;
        esac
        for c in $levels; do
            # Rounds interleaved with the targets, so that drift of the machine hits all alike.
            for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
                for tg in $TARGETS; do
                    if ! has "$active" "$tg"; then skip_row "$sc" "$c" "$tg" "not running"
                    elif [[ $sc != fast && $sc != pool && -z $ECHO_SO ]]; then skip_row "$sc" "$c" "$tg" "no nginx echo module"
                    elif [[ ($sc == fanout* || $sc == pool) && ($tg == direct || $tg == haproxy) ]]; then continue   # see README
                    elif [[ $sc != fast && $tg == floor ]]; then continue   # the floor proxies one path
                    else cell "$sc" "$c" "$tg"; fi
                done
            done
        done
    done
    for p in upstream.error.log proxy.error.log upstream.err nginx.err haproxy.err tracegate.err; do
        [[ -s $RUN/$p ]] && tail -200 "$RUN/$p" >"$RES/raw/$p"
    done
    echo
    "$PY" "$TOOLS/bench.py" table "$RES"
    log "results in ${RES#"$ROOT"/}/"
}

# ---------------------------------------------------------------- cost mode
# wrk_count SECONDS URL CONNS: runs wrk on the load core and prints how many requests it completed.
wrk_count() {
    bounded $(($1 + 30)) wrk taskset -c "$CPU_LOAD" wrk -t1 -c"$3" -d"$1s" --timeout 10s "$2" 2>&1 |
        awk '/requests in/ { print $1 }'
}

# syscalls_of SECONDS PID...: system calls the processes make over SECONDS, on stdout. perf's
# syscall tracepoint counts without slowing them; strace -c is the fallback.
syscalls_of() {
    local secs=$1 p pids=(); shift
    for p in $(tree "$@"); do pids+=("$p"); done
    if ((PERF_SYSCALLS)); then
        perf stat -x, -e raw_syscalls:sys_enter -p "$(IFS=,; echo "${pids[*]}")" -- sleep "$secs" 2>&1 >/dev/null |
            awk -F, '/raw_syscalls:sys_enter/ { print $1 }'
    else
        local args=() out; for p in "${pids[@]}"; do args+=(-p "$p"); done
        out=$(timeout -s INT "$secs" strace -c -f "${args[@]}" 2>&1 >/dev/null)
        awk '$NF == "total" { print $(NF - 2) }' <<<"$out"
    fi
}

# cost_cell SCENARIO CONNS TARGET: one row of cost.csv.
cost_cell() {
    local sc=$1 c=$2 tg=$3 url cmd pid reqs calls ir="" ireqs="" f note=""
    url=$(url_of "$sc" "$tg")
    target_cmd "$tg"; cmd=("${TCMD[@]}")
    # 1. System calls, at full speed.
    if start_target "$tg" "$url" /dev/null "${TENV[@]}" "${cmd[@]}"; then
        pid=${PIDS[$tg]}
        wrk_count "$WARMUP" "$url" "$c" >/dev/null
        syscalls_of "$COST_SECS" "$pid" >"$RUN/calls" &
        f=$!
        reqs=$(wrk_count "$COST_SECS" "$url" "$c")
        wait "$f"; calls=$(<"$RUN/calls")
        stop "$tg"
    else
        note="did not start"
    fi
    # 2. Instructions, under callgrind: collected only while the measured load runs.
    rm -f "$RUN/cg.$tg".*
    start "$tg-cg" "$CPU_SUT" /dev/null "${TENV[@]}" valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$RUN/cg.$tg" "${cmd[@]}"
    if wait_http "$url" 60 "${PIDS[$tg-cg]}"; then
        pid=${PIDS[$tg-cg]}
        wrk_count 2 "$url" "$c" >/dev/null
        callgrind_control -i on "$pid" >/dev/null 2>&1
        ireqs=$(wrk_count "$COST_SECS" "$url" "$c")
        callgrind_control -i off "$pid" >/dev/null 2>&1
        callgrind_control -d "$pid" >/dev/null 2>&1
        ir=$(cat "$RUN/cg.$tg".* 2>/dev/null | awk '/^totals:/ { s += $2 } END { print s + 0 }')
        # Kept for callgrind_annotate: where the instructions went, per function.
        for f in "$RUN/cg.$tg".*; do [[ -e $f ]] && cp "$f" "$RES/raw/callgrind.$sc.c$c.$tg.${f##*.}"; done
    else
        note="${note:+$note; }did not start under valgrind"
    fi
    stop "$tg-cg"
    awk -v sc="$sc" -v c="$c" -v tg="$tg" -v r="${reqs:-0}" -v k="${calls:-0}" -v ir="${ir:-0}" \
        -v ir_r="${ireqs:-0}" -v note="$note" 'BEGIN {
            printf "%s,%s,%s,%d,%d,%s,%d,%d,%s,%s\n", sc, c, tg, r, k, (r ? sprintf("%.2f", k / r) : ""),
                ir_r, ir, (ir_r ? sprintf("%.0f", ir / ir_r) : ""), note }' >>"$RES/cost.csv"
    log "$(tail -1 "$RES/cost.csv" | awk -F, '{ printf "%-6s c=%-3s %-9s %8s syscalls/req  %9s instructions/req", $1, $2, $3, $6, $9 }')"
}

cost() {
    setup_common cost
    local spec sc c tg
    command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
        die "cost mode needs valgrind (package valgrind)"
    PERF_SYSCALLS=0
    perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 && PERF_SYSCALLS=1
    ((PERF_SYSCALLS)) || command -v strace >/dev/null || die "cost mode needs perf (linux-perf) or strace"
    TG_OK=0 FLOOR_OK=0
    ensure_tracegate
    ensure_floor
    prepare
    echo "scenario,conns,target,requests,syscalls,syscalls_per_req,cg_requests,instructions,instructions_per_req,note" >"$RES/cost.csv"
    log "cost: syscalls by $( ((PERF_SYSCALLS)) && echo perf || echo strace), instructions by callgrind, ${COST_SECS}s each"
    for spec in $COST_CELLS; do
        sc=${spec%%:*} c=${spec#*:}
        for tg in $TARGETS; do
            case $tg in direct) continue ;; tracegate) ((TG_OK)) || continue ;; floor) ((FLOOR_OK)) || continue ;; esac
            [[ $sc == fanout* && ($tg == haproxy || $tg == floor) ]] && continue
            [[ $sc != fast && -z $ECHO_SO && $tg == nginx ]] && continue
            cost_cell "$sc" "$c" "$tg"
        done
    done
    echo
    "$PY" "$TOOLS/bench.py" cost "$RES"
    log "results in ${RES#"$ROOT"/}/"
}

# The start of every mode that runs tracegate against tg-stub: its results folder, the
# gateway and the stub built, its port free.
setup_stub_mode() { # mode port
    setup_common "$1"
    ensure_tracegate
    ((TG_OK)) || die "$1 mode needs tracegate"
    [[ -x $TG_STUB ]] || die "$1 mode needs the stub upstream ($TG_STUB, built from tests/support/stub/)"
    port_busy "$2" && die "port $2 is in use"
}

# ---------------------------------------------------------------- latency mode
latency() {
    setup_stub_mode latency "$TG_LAT_PORT"
    local rec=$RUN/stub-record.jsonl i stub_port=""
    : >"$rec"
    start stub "$CPU_LOAD" "$RUN/stub.out" "$TG_STUB" --listen "$STUB_LISTEN" --record "$rec"
    for ((i = 0; i < 100; i++)); do
        stub_port=$(grep -m1 '"event" *: *"listening"' "$RUN/stub.out" | grep -o '"port" *: *[0-9]*' | grep -o '[0-9]*$') && break
        alive "${PIDS[stub]}" || break
        sleep 0.1
    done
    [[ -n $stub_port ]] || die "tg-stub did not report listening: $(tail -c 300 "$RUN/stub.err")"
    render "$BENCH/conf/tracegate-latency.json" "$RUN/tracegate-latency.json" TG_PORT="$TG_LAT_PORT" STUB_PORT="$stub_port"
    cp "$RUN/tracegate-latency.json" "$RES/raw/"
    start_target tracegate "http://127.0.0.1:$TG_LAT_PORT/" "$RUN/tracegate-latency.out" \
        "$TRACEGATE" -c "$RUN/tracegate-latency.json" --port "$TG_LAT_PORT" --workers 1 || die "tracegate did not start"
    log "stub on :$stub_port, tracegate on :$TG_LAT_PORT; $SAMPLES samples per distribution"
    local o0 o1 a0 a1 t0 t1 rc
    o0=$(ours_ticks "${PIDS[tracegate]}" "${PIDS[stub]}"); a0=$(all_busy); t0=$(date +%s%N)
    bounded $((SAMPLES / 5 + 120)) latency taskset -c "$CPU_LOAD" "$PY" "$TOOLS/latency.py" --port "$TG_LAT_PORT" \
        --record "$rec" --samples "$SAMPLES" --out "$RES" >"$RES/latency.md" 2>"$RUN/latency.err"
    rc=$?
    a1=$(all_busy); o1=$(ours_ticks "${PIDS[tracegate]}" "${PIDS[stub]}"); t1=$(date +%s%N)
    ((rc == 124)) && note "latency.py ran out of time"
    ((rc != 0 && rc != 124)) && note "latency.py failed ($rc): $(tail -c 300 "$RUN/latency.err" 2>/dev/null)"
    awk -v o=$(((a1 - a0) - (o1 - o0))) -v hz="$(getconf CLK_TCK)" -v ns=$((t1 - t0)) 'BEGIN {
        printf "\nOther processes used %.0f%% of one core meanwhile (above ~10%% the tails are not the gateway'"'"'s alone).\n",
            (o > 0 ? 100 * o / hz / (ns / 1e9) : 0) }' >>"$RES/latency.md"
    [[ -s $RES/notes.txt ]] && sed 's/^/- /' "$RES/notes.txt" >>"$RES/latency.md"
    cat "$RES/latency.md"
    tail -200 "$RUN/tracegate-latency.out" >"$RES/raw/tracegate.log"
    cp "$rec" "$RES/raw/stub-record.jsonl"
    log "results in ${RES#"$ROOT"/}/"
}

# ---------------------------------------------------------------- resilience mode
# Three tg-stub targets (processes of their own) behind one pool, steady GETs from a few
# keep-alive clients, then: one target killed, brought back, every target failing, healed.
resilience() {
    setup_stub_mode resilience "$TG_RES_PORT"
    bounded 300 resilience taskset -c "$CPU_LOAD" "$PY" "$TOOLS/resilience.py" --tracegate "$TRACEGATE" \
        --stub "$TG_STUB" --port "$TG_RES_PORT" --gateway-cpu "$CPU_SUT" --out "$RES" \
        >"$RES/resilience.md" 2>"$RUN/resilience.err"
    local rc=$?
    ((rc == 124)) && note "resilience.py ran out of time"
    ((rc != 0 && rc != 124)) && note "resilience.py failed ($rc): $(tail -c 300 "$RUN/resilience.err" 2>/dev/null)"
    [[ -s $RES/notes.txt ]] && sed 's/^/- /' "$RES/notes.txt" >>"$RES/resilience.md"
    cat "$RES/resilience.md"
    log "results in ${RES#"$ROOT"/}/"
}

# ---------------------------------------------------------------- durable mode
# The durable questionnaire route beside the same route without durable, against tg-stub's
# questionnaire (which stores once per Idempotency-Key), one gateway worker on the SUT core,
# the spool on this machine's disk. Every request carries a key of its own: a new submission.

metrics_snapshot() {  # metrics_snapshot OUT: the spool's counters now
    curl -s --max-time 3 "http://127.0.0.1:$TG_DUR_PORT/metrics" |
        grep -E '^tracegate_(spool_fsync_seconds|durable_accepted_total|spool_write_errors_total|delivery_attempts_total)' >"$1"
}

durable_cell() {  # durable_cell ROUTE CONNS
    local route=$1 c=$2 url="http://127.0.0.1:$TG_DUR_PORT/$1" raw="$RES/raw/wrk-durable-$1-$2.txt" tag
    tag="$route-c$c-$(date +%s%N)"
    bounded $((WARMUP + 15)) wrk env TG_BENCH_TOOLS="$TOOLS" TG_BENCH_TAG="$tag-w" \
        taskset -c "$CPU_LOAD" wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 5s -s "$TOOLS/durable.lua" "$url" >/dev/null 2>&1
    metrics_snapshot "$RES/raw/metrics-$route-$c-before.txt"
    bounded $((DURATION + 20)) wrk env TG_BENCH_TOOLS="$TOOLS" TG_BENCH_TAG="$tag" \
        taskset -c "$CPU_LOAD" wrk -t1 -c"$c" -d"${DURATION}s" --timeout 5s --latency -s "$TOOLS/durable.lua" "$url" >"$raw" 2>&1
    metrics_snapshot "$RES/raw/metrics-$route-$c-after.txt"
    local line; line=$(grep -m1 '^WRK ' "$raw")
    if [[ -z $line ]]; then
        note "durable $route c=$c: wrk failed: $(tail -c 200 "$raw" | tr '\n' ' ')"; return
    fi
    echo "$route,$c,${line#WRK }" >>"$RES/durable.csv"
    log "durable $route c=$c: $line"
}

durable() {
    setup_stub_mode durable "$TG_DUR_PORT"
    local i stub_port="" spool=$RUN/spool-$$ c route
    rm -rf "$spool"; mkdir -p "$spool"
    start stub "$CPU_LOAD" "$RUN/stub.out" "$TG_STUB" --listen 0:questionnaire
    for ((i = 0; i < 100; i++)); do
        stub_port=$(grep -m1 '"event" *: *"listening"' "$RUN/stub.out" | grep -o '"port" *: *[0-9]*' | grep -o '[0-9]*$') && break
        alive "${PIDS[stub]}" || break
        sleep 0.1
    done
    [[ -n $stub_port ]] || die "tg-stub did not report listening: $(tail -c 300 "$RUN/stub.err")"
    render "$BENCH/conf/tracegate-durable.json" "$RUN/tracegate-durable.json" TG_PORT="$TG_DUR_PORT" \
        STUB_PORT="$stub_port" SPOOL_DIR="$spool"
    cp "$RUN/tracegate-durable.json" "$RES/raw/"
    start_target tracegate "http://127.0.0.1:$TG_DUR_PORT/metrics" /dev/null \
        "$TRACEGATE" -c "$RUN/tracegate-durable.json" --port "$TG_DUR_PORT" --workers 1 || die "tracegate did not start"
    echo "spool: $(df -T "$spool" | awk 'NR == 2 { print $2 " on " $1 }'), sqlite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)" >>"$RES/env.txt"
    : >"$RES/durable.csv"
    for c in $DURABLE_CONNS; do
        for route in plain durable; do durable_cell "$route" "$c"; done
    done
    stop tracegate
    stop stub
    rm -rf "$spool"
    "$PY" "$TOOLS/durable.py" "$RES" | tee "$RES/durable.md"
    log "results in ${RES#"$ROOT"/}/"
}

# ---------------------------------------------------------------- main
case $MODE in
    throughput) throughput ;;
    cost) cost ;;
    latency) latency ;;
    resilience) resilience ;;
    durable) durable ;;
    -h | --help | help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown mode '$MODE' (throughput, cost, latency, resilience or durable)" ;;
esac
