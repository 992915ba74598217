#!/bin/bash
# bench/instructions.sh — Strata's CPU cost per HTTP request as an instruction count, the
# measure that stays meaningful on a shared or noisy machine where requests/s and CPU
# time are not (and in VMs without hardware counters, where `perf stat -e instructions`
# is unavailable: valgrind's callgrind counts every user-space instruction exactly).
#
# One NGINX origin (200, 13-byte body, stub_status to count the connections made to it),
# Strata with 1 worker pinned on CPU 1 under callgrind, wrk -t1 -c$CONC pinned on CPU 0.
# For each config variant: a 2 s warm-up, counters zeroed, a RUN_SECONDS run, and
# instructions / requests. Variants (backend keepalive left at its default):
#   default    the default listener (text access log, X-Forwarded-*, request id, traceparent)
#   log_off    the same with `access_log: { format: off }`
#   bare       also forwarded: none, request_id: none, traceparent: false (the floor)
#   observe    bare plus an admin listener: latency histograms and analytics recorded
#   limits     bare plus a route with a rate limit (sliding window per client address, high
#              enough never to refuse) and a JWT check (HS256, a JWKS file), wrk sending
#              the token
# Also prints the connections Strata opened to the origin during each run (new server
# connections per request: 0 when keep-alive works).
#
# Environment: STRATA_BIN (default build/strata), RUN_SECONDS (8), CONC (50),
#   VARIANTS ("default log_off bare observe limits"), BENCH_KEEP=1 keeps the temp dir (callgrind files:
#   callgrind_annotate --inclusive=yes FILE shows where the instructions go).
set -euo pipefail

BENCH_NAME=instructions
. "$(dirname "$0")/lib.sh"
RUN_SECONDS=${RUN_SECONDS:-8}
CONC=${CONC:-50}
VARIANTS=${VARIANTS:-default log_off bare observe limits}
for t in valgrind callgrind_control wrk nginx taskset curl; do
    command -v "$t" >/dev/null || die "$t missing"
done
bench_tmpdir instructions-bench

ORIGIN=$(free_port)
STATUS=$(free_port)
NGINX=${NGINX:-nginx} start_origin origin "$ORIGIN" 'hello, world\n' "$STATUS" -- taskset -c 1
accepts() { curl -s "http://127.0.0.1:$STATUS/" | awk 'NR == 3 { print $1 }'; }

# An HS256 key in a JWKS file and a token it signs (for the limits variant).
TOKEN=$("$PYTHON" - "$TMP/jwks.json" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = b"k" * 32
open(sys.argv[1], "w").write(json.dumps({"keys": [{"kty": "oct", "kid": "k", "k": b64(key)}]}))
head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k"}).encode())
body = b64(json.dumps({"sub": "bench", "exp": int(time.time()) + 86400}).encode())
sig = b64(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
print(head + "." + body + "." + sig)
PY
)

printf '%-10s %10s %14s %12s %16s\n' variant requests instructions "instr/req" "connects/req"
BARE="http: { access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }"
for v in $VARIANTS; do
    top="" target="backend: origin" wrk_args=()
    case $v in
    default) http="" ;;
    log_off) http="http: { access_log: { format: off } }" ;;
    bare) http=$BARE ;;
    observe) http=$BARE top="admin: { listen: \"127.0.0.1:$(free_port)\" }" ;;
    limits)
        http=$BARE
        target="routes: [ { backend: origin, rate_limit: { limits: [ { name: per_ip, key: client_ip,
      rate: 1000000, per: 1s } ] }, jwt: { jwks_file: \"$TMP/jwks.json\" } } ]"
        wrk_args=(-H "Authorization: Bearer $TOKEN") ;;
    *) die "unknown variant $v" ;;
    esac
    port=$(free_port)
    cat >"$TMP/$v.yaml" <<CONF
workers: 1
$top
listeners:
  - { name: web, listen: "127.0.0.1:$port", mode: http, $target, $http }
backends:
  origin: { servers: [ "127.0.0.1:$ORIGIN" ] }
CONF
    start_bg "$TMP/$v.log" taskset -c 1 valgrind --tool=callgrind \
        --callgrind-out-file="$TMP/$v.callgrind" "$STRATA_BIN" run "$TMP/$v.yaml"
    pid=$LAST_PID
    wait_listening "$pid" "$port" || { tail "$TMP/$v.log" >&2; die "strata ($v) did not start"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${wrk_args[@]}" "http://127.0.0.1:$port/")" = 200 ] \
        || die "strata ($v) does not answer 200"
    taskset -c 0 wrk -t1 -c"$CONC" -d2s "${wrk_args[@]}" "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    a0=$(accepts)
    taskset -c 0 wrk -t1 -c"$CONC" -d"${RUN_SECONDS}s" "${wrk_args[@]}" "http://127.0.0.1:$port/" \
        >"$TMP/$v.wrk"
    a1=$(accepts)
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    req=$(awk '/requests in/ { print $1 }' "$TMP/$v.wrk")
    ! grep -q "Non-2xx" "$TMP/$v.wrk" || log "instructions: $v: $(grep Non-2xx "$TMP/$v.wrk")"
    f=$(ls "$TMP/$v.callgrind".* | head -1)
    ir=$(awk '/^totals:/ { print $2 }' "$f")
    printf '%-10s %10s %14s %12s %16s\n' "$v" "$req" "$ir" "$((ir / req))" \
        "$(awk -v c=$((a1 - a0 - 1)) -v r="$req" 'BEGIN { printf "%.4f", c / r }')"
done
