#!/bin/bash
# bench/waf.sh — what the `waf` filter costs: one Strata worker pinned to CPU 0 in front of
# an NGINX origin (200, 13 bytes), wrk pinned to CPU 1, the same route with `waf: { mode:
# off }` and with `waf: {}` (blocking, paranoia 1, the whole CRS), interleaved ROUNDS times:
#   get   GET with a query string and browser header fields (phase 1 and the empty phase 2)
#   post  POST of a 300-byte JSON body (held whole, parsed as JSON, inspected)
# Prints requests/s and Strata's CPU time per request (user + system, /proc/PID/stat; less
# disturbed than requests/s when the machine is shared), medians, and the ratios on/off.
# Environment: STRATA_BIN, ROUNDS (3), RUN_SECONDS (5), CONC (16).
# Run: bench/waf.sh
set -euo pipefail

BENCH_NAME=waf-bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-5}
CONC=${CONC:-16}
command -v wrk >/dev/null || die "wrk missing (scripts/install-deps.sh bench)"
NGINX=$(command -v nginx) || die "nginx missing (scripts/install-deps.sh bench)"
bench_tmpdir waf-bench

ORIGIN=$(free_port)
start_origin origin "$ORIGIN" 'hello, world\n' -- taskset -c 1
wait_listening "$LAST_PID" "$ORIGIN"

start_strata() { # NAME MODE: a Strata with the route's waf in MODE; its port in $PORT
    local port
    port=$(free_port)
    cat >"$TMP/$1.yaml" <<YAML
workers: 1
listeners:
  - name: web
    listen: "127.0.0.1:$port"
    mode: http
    http: { access_log: { format: off }, request_id: none, forwarded: none }
    routes:
      - backend: app
        waf: { mode: $2 }
backends:
  app:
    servers: [ "127.0.0.1:$ORIGIN" ]
YAML
    start_bg "$TMP/$1.log" taskset -c 0 "$STRATA_BIN" run "$TMP/$1.yaml"
    wait_listening "$LAST_PID" "$port"
    PORT=$port
    PID=$LAST_PID
}

cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Host"] = "app.example.com"
wrk.headers["User-Agent"] = "okhttp/4.12.0"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"items":[{"sku":"BK-1021","qty":2},{"sku":"PN-22","qty":1}],' ..
  '"shipping":{"street":"12 Rue de la Paix","city":"Paris","zip":"75002"},' ..
  '"customer":{"name":"Alice Martin","email":"alice@example.com","phone":"+33 1 23 45 67 89"},' ..
  '"notes":"Leave the parcel at the door, please. Thanks!","coupon":"SPRING10"}'
LUA

start_strata off off
OFF=$PORT OFF_PID=$PID
start_strata on blocking
ON=$PORT ON_PID=$PID

run() { # PORT PID KIND: "requests/s CPU-us-per-request"
    local before after out
    before=$(cpu_ticks all "$2")
    out=$(wrk_run "$1" "$3")
    after=$(cpu_ticks all "$2")
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
        "$(us_per "$after" "$before" "$(awk '/requests in/ {print $1}' <<<"$out")")"
}

wrk_run() { # PORT KIND
    local extra=()
    if [ "$2" = post ]; then
        extra=(-s "$TMP/post.lua")
    else
        extra=(-H "Host: app.example.com" -H "Accept: text/html,*/*;q=0.8"
               -H "Accept-Language: en-US,en;q=0.9" -H "User-Agent: Mozilla/5.0 (X11; Linux x86_64)")
    fi
    taskset -c 1 wrk -t1 -c"$CONC" -d"${RUN_SECONDS}s" "${extra[@]}" \
        "http://127.0.0.1:$1/search?q=running+shoes&page=2&sort=price_asc"
}

for kind in get post; do
    off_rps=() on_rps=() off_us=() on_us=()
    for _ in $(seq "$ROUNDS"); do
        read -r r u < <(run "$OFF" "$OFF_PID" "$kind")
        off_rps+=("$r") off_us+=("$u")
        read -r r u < <(run "$ON" "$ON_PID" "$kind")
        on_rps+=("$r") on_us+=("$u")
    done
    a=$(printf '%s\n' "${off_rps[@]}" | median) b=$(printf '%s\n' "${on_rps[@]}" | median)
    c=$(printf '%s\n' "${off_us[@]}" | median) d=$(printf '%s\n' "${on_us[@]}" | median)
    printf '%-5s req/s: off %9s  on %9s  on/off %s   CPU us/req: off %7s  on %7s  on/off %s\n' \
        "$kind" "$a" "$b" "$(ratio "$b" "$a")" "$c" "$d" "$(ratio "$d" "$c")"
done
