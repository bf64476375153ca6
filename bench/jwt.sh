#!/usr/bin/env bash
# The cost of checking a bearer token: the same tracegate, one worker pinned to one core, the
# same fixed answer (a "return" route, no upstream) asked with wrk without a token, with an
# RS256 token, with an ES256 token, and with an RS256 token plus a SMART scope and patient
# check. Prints requests per second and microseconds per request, and the difference.
# Keys and tokens are made here with openssl and python3. Bounded: each wrk run is DURATION
# seconds under timeout. Stops only what it started.
#   bench/jwt.sh                 DURATION=10 ROUNDS=3 CONNS=32
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
PORT=${PORT:-27180}
TRACEGATE=${TRACEGATE:-build/tracegate}
work=$(mktemp -d)
gw_pid=
cleanup() {
    if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

openssl genrsa -out "$work/rsa.pem" 2048 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ec.pem" 2>/dev/null

# JWKS and tokens (RS256 signed by openssl; ES256's DER signature turned into r||s).
python3 - "$work" <<'PY'
import base64, json, subprocess, sys, time
w = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
def run(*a, inp=None):
    return subprocess.run(a, input=inp, capture_output=True, check=True).stdout
mod = run("openssl", "rsa", "-in", f"{w}/rsa.pem", "-noout", "-modulus").decode().split("=")[1].strip()
ec_txt = run("openssl", "ec", "-in", f"{w}/ec.pem", "-pubout", "-outform", "DER")
pub = ec_txt[-64:]
keys = [{"kty": "RSA", "kid": "r1", "use": "sig", "e": "AQAB", "n": b64(bytes.fromhex(mod))},
        {"kty": "EC", "kid": "e1", "use": "sig", "crv": "P-256", "x": b64(pub[:32]), "y": b64(pub[32:])}]
open(f"{w}/jwks.json", "w").write(json.dumps({"keys": keys}))
claims = {"iss": "https://idp.bench", "aud": "epro-api", "sub": "alice", "exp": int(time.time()) + 3600,
          "scope": "openid patient/Observation.rs", "patient": "p1"}
def der_to_raw(der):
    # SEQUENCE { INTEGER r, INTEGER s }
    i = 2; out = b""
    for _ in range(2):
        n = der[i + 1]; v = der[i + 2:i + 2 + n]; i += 2 + n
        out += v.lstrip(b"\0").rjust(32, b"\0")
    return out
for alg, kid, key, raw in (("RS256", "r1", "rsa.pem", False), ("ES256", "e1", "ec.pem", True)):
    head = b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = run("openssl", "dgst", "-sha256", "-sign", f"{w}/{key}", inp=f"{head}.{body}".encode())
    open(f"{w}/{alg}.jwt", "w").write(f"{head}.{body}.{b64(der_to_raw(sig) if raw else sig)}")
PY

sed -e "s|\${PORT}|$PORT|" -e "s|\${ALG}\"|RS256\", \"ES256\"|" -e "s|\${JWKS}|$work/jwks.json|" \
    bench/conf/tracegate-jwt.json >"$work/conf.json"
taskset -c 1 "$TRACEGATE" -c "$work/conf.json" >"$work/gw.log" 2>&1 &
gw_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/plain" >/dev/null 2>&1 && break
    sleep 0.1
done
rs=$(cat "$work/RS256.jwt")
es=$(cat "$work/ES256.jwt")
for path in /authed /patients/p1/obs; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $rs" "http://127.0.0.1:$PORT$path")
    [ "$code" = 200 ] || { echo "token refused on $path ($code): see $work/gw.log"; cat "$work/gw.log"; exit 1; }
done

rps() { # PATH [TOKEN]: requests per second of one wrk run
    local hdr=()
    [ -n "${2:-}" ] && hdr=(-H "Authorization: Bearer $2")
    timeout $((DURATION + 30)) taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" \
        "http://127.0.0.1:$PORT$1" | sed -n 's/^Requests\/sec: *//p'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A runs
for r in $(seq "$ROUNDS"); do
    runs[plain]+="$(rps /plain) "
    runs[rs256]+="$(rps /authed "$rs") "
    runs[es256]+="$(rps /authed "$es") "
    runs[scoped]+="$(rps /patients/p1/obs "$rs") "
done
echo "| request | req/s (median of $ROUNDS x ${DURATION}s, 1 worker) | us/request | token cost us/request |"
echo "|---|---:|---:|---:|"
base=$(tr ' ' '\n' <<<"${runs[plain]}" | grep . | median)
for k in plain rs256 es256 scoped; do
    m=$(tr ' ' '\n' <<<"${runs[$k]}" | grep . | median)
    awk -v k="$k" -v m="$m" -v b="$base" 'BEGIN {
        us = 1e6 / m; cost = us - 1e6 / b
        printf "| %s | %.0f | %.1f | %s |\n", k, m, us, (k == "plain" ? "-" : sprintf("%.1f", cost)) }'
done
