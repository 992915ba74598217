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
# Also prints the connections Strata opened to the origin during each run (new server
# connections per request: 0 when keep-alive works).
#
# Environment: STRATA_BIN (default build/strata), RUN_SECONDS (8), CONC (50),
#   VARIANTS ("default log_off bare"), BENCH_KEEP=1 keeps the temp dir (callgrind files:
#   callgrind_annotate --inclusive=yes FILE shows where the instructions go).
set -euo pipefail

BENCH_NAME=instructions
. "$(dirname "$0")/lib.sh"
RUN_SECONDS=${RUN_SECONDS:-8}
CONC=${CONC:-50}
VARIANTS=${VARIANTS:-default log_off bare}
for t in valgrind callgrind_control wrk nginx taskset curl; do
    command -v "$t" >/dev/null || die "$t missing"
done
bench_tmpdir instructions-bench

ORIGIN=$(free_port)
STATUS=$(free_port)
NGINX=${NGINX:-nginx} start_origin origin "$ORIGIN" 'hello, world\n' "$STATUS" -- taskset -c 1
accepts() { curl -s "http://127.0.0.1:$STATUS/" | awk 'NR == 3 { print $1 }'; }

printf '%-10s %10s %14s %12s %16s\n' variant requests instructions "instr/req" "connects/req"
for v in $VARIANTS; do
    case $v in
    default) http="" ;;
    log_off) http="http: { access_log: { format: off } }" ;;
    bare) http="http: { access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }" ;;
    *) die "unknown variant $v" ;;
    esac
    port=$(free_port)
    cat >"$TMP/$v.yaml" <<CONF
workers: 1
listeners:
  - { name: web, listen: "127.0.0.1:$port", mode: http, backend: origin, $http }
backends:
  origin: { servers: [ "127.0.0.1:$ORIGIN" ] }
CONF
    start_bg "$TMP/$v.log" taskset -c 1 valgrind --tool=callgrind \
        --callgrind-out-file="$TMP/$v.callgrind" "$STRATA_BIN" run "$TMP/$v.yaml"
    pid=$LAST_PID
    wait_listening "$pid" "$port" || { tail "$TMP/$v.log" >&2; die "strata ($v) did not start"; }
    taskset -c 0 wrk -t1 -c"$CONC" -d2s "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    a0=$(accepts)
    taskset -c 0 wrk -t1 -c"$CONC" -d"${RUN_SECONDS}s" "http://127.0.0.1:$port/" >"$TMP/$v.wrk"
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
