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
# With MODE=native the same variants run without valgrind, all at once, in ROUNDS (5)
# interleaved wrk runs each: requests/s and the proxy's CPU per request (medians), and
# their ratio to the first variant (e.g. VARIANTS="bare observe limits": what histograms
# and analytics, or a rate limit and a JWT check, cost).
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

BARE="http: { access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }"
declare -A PORT ARGS
# variant_config V: writes $TMP/V.yaml (Strata, 1 worker, on a free port: PORT[V]); ARGS[V]:
# what wrk and curl send with each request.
variant_config() {
    local v=$1 top="" target="backend: origin" http
    ARGS[$v]=""
    case $v in
    default) http="" ;;
    log_off) http="http: { access_log: { format: off } }" ;;
    bare) http=$BARE ;;
    observe) http=$BARE top="admin: { listen: \"127.0.0.1:$(free_port)\" }" ;;
    limits)
        http=$BARE
        target="routes: [ { backend: origin, rate_limit: { limits: [ { name: per_ip, key: client_ip,
      rate: 1000000, per: 1s } ] }, jwt: { jwks_file: \"$TMP/jwks.json\" } } ]"
        ARGS[$v]="Authorization: Bearer $TOKEN" ;;
    *) die "unknown variant $v" ;;
    esac
    PORT[$v]=$(free_port)
    cat >"$TMP/$v.yaml" <<CONF
workers: 1
$top
listeners:
  - { name: web, listen: "127.0.0.1:${PORT[$v]}", mode: http, $target, $http }
backends:
  origin: { servers: [ "127.0.0.1:$ORIGIN" ] }
CONF
}

# wrk_to V SECONDS OUT: wrk -t1 -c$CONC on CPU 0 against variant V.
wrk_to() {
    local h=()
    [ -n "${ARGS[$1]}" ] && h=(-H "${ARGS[$1]}")
    taskset -c 0 wrk -t1 -c"$CONC" -d"$2s" "${h[@]}" "http://127.0.0.1:${PORT[$1]}/" >"$3"
    ! grep -q "Non-2xx" "$3" || log "instructions: $1: $(grep Non-2xx "$3")"
}

# started V PID: V's Strata listens and answers 200, or the bench stops.
started() {
    local h=()
    [ -n "${ARGS[$1]}" ] && h=(-H "${ARGS[$1]}")
    wait_listening "$2" "${PORT[$1]}" || { tail "$TMP/$1.log" >&2; die "strata ($1) did not start"; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${h[@]}" "http://127.0.0.1:${PORT[$1]}/")" = 200 ] \
        || die "strata ($1) does not answer 200"
}

if [ "${MODE:-callgrind}" = native ]; then
    # Every variant's Strata natively on CPU 1 with the origin, ROUNDS interleaved wrk runs:
    # requests/s and the proxy's CPU per request (/proc), medians, and the ratio to the
    # first variant.
    declare -A RPS CPU PID
    for v in $VARIANTS; do
        variant_config "$v"
        start_bg "$TMP/$v.log" taskset -c 1 "$STRATA_BIN" run "$TMP/$v.yaml"
        PID[$v]=$LAST_PID
        started "$v" "$LAST_PID"
        wrk_to "$v" 1 /dev/null
    done
    for r in $(seq "${ROUNDS:-5}"); do
        for v in $VARIANTS; do
            c0=$(cpu_ticks all "${PID[$v]}")
            wrk_to "$v" "$RUN_SECONDS" "$TMP/$v-$r.wrk"
            c1=$(cpu_ticks all "${PID[$v]}")
            req=$(awk '/requests in/ { print $1 }' "$TMP/$v-$r.wrk")
            RPS[$v]="${RPS[$v]:-} $(awk '/^Requests\/sec/ { print $2 }' "$TMP/$v-$r.wrk")"
            CPU[$v]="${CPU[$v]:-} $(us_per "$c1" "$c0" "$req")"
        done
    done
    printf '%-10s %12s %10s %14s %10s\n' variant "requests/s" ratio "CPU us/req" ratio
    first=""
    for v in $VARIANTS; do
        rps=$(echo "${RPS[$v]}" | median)
        cpu=$(echo "${CPU[$v]}" | median)
        [ -n "$first" ] || first="$rps $cpu"
        printf '%-10s %12s %10s %14s %10s\n' "$v" "$rps" "$(ratio "$rps" "${first% *}")" "$cpu" \
            "$(ratio "$cpu" "${first#* }")"
    done
    echo "medians of ${ROUNDS:-5} interleaved runs of ${RUN_SECONDS}s; raw requests/s:"
    for v in $VARIANTS; do echo "  $v:${RPS[$v]}"; done
    exit 0
fi

printf '%-10s %10s %14s %12s %16s\n' variant requests instructions "instr/req" "connects/req"
for v in $VARIANTS; do
    variant_config "$v"
    start_bg "$TMP/$v.log" taskset -c 1 valgrind --tool=callgrind \
        --callgrind-out-file="$TMP/$v.callgrind" "$STRATA_BIN" run "$TMP/$v.yaml"
    pid=$LAST_PID
    started "$v" "$pid"
    wrk_to "$v" 2 /dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    a0=$(accepts)
    wrk_to "$v" "$RUN_SECONDS" "$TMP/$v.wrk"
    a1=$(accepts)
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    req=$(awk '/requests in/ { print $1 }' "$TMP/$v.wrk")
    f=$(ls "$TMP/$v.callgrind".* | head -1)
    ir=$(awk '/^totals:/ { print $2 }' "$f")
    printf '%-10s %10s %14s %12s %16s\n' "$v" "$req" "$ir" "$((ir / req))" \
        "$(awk -v c=$((a1 - a0 - 1)) -v r="$req" 'BEGIN { printf "%.4f", c / r }')"
done
