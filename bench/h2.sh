#!/bin/bash
# bench/h2.sh — HTTP/2 from clients and gRPC: Strata vs HAProxy vs NGINX, side by side on
# this machine, over loopback, in the pinned layout of issue 10 (bench/README.md): the load
# generator (h2load, nghttp2-client) on CPU 0; the proxy (1 worker/thread) and the origin
# pinned together on CPU 1.
#
# Scenarios (SCENARIOS, default "h2tls h2c grpc"):
#   h2tls  h2 clients over TLS (ALPN h2): h2load -c$CONC -m$STREAMS https://... -> proxy ->
#          HTTP/1.1 keep-alive to the origin NGINX ("hello, world\n", 1 worker)
#   h2c    the same over cleartext h2 with prior knowledge (h2load's default for http://)
#   grpc   gRPC unary calls: h2load POSTs a 12-byte gRPC message (application/grpc, te:
#          trailers) over h2c -> proxy -> h2c to the gRPC origin, which answers 200 with a
#          12-byte gRPC message and the trailer grpc-status: 0
# Origins:
#   NGINX, 1 worker, `return 200 "hello, world\n"`, keep-alive (as bench/tls.sh).
#   nghttpd (nghttp2-server), 1 worker, --no-tls, serving the canned gRPC response as a
#   static file for the method's path (it reads and drops the request body) with
#   `--trailer "grpc-status: 0"`. Why: it is an h2 server in C on nghttp2 that ends every
#   response with real trailers and does ~120k calls/s on one core directly (measured:
#   h2load -c50 -m10), several times what a proxy in front of it reaches. Its
#   --echo-upload mode (an echo) goes through a temporary file and did only 7.5k/s; a
#   python3-grpcio server does a few thousand; NGINX cannot answer a POST with a static
#   body and trailers without a module.
# Proxies, each on its own free loopback ports, one worker/thread, no logs, keep-alive to
# the origins:
#   strata   the blocks marked `# strata: h2` below (http.h2 { enabled | cleartext } on the
#            listeners, `protocol: h2c` on the gRPC backend); a scenario whose config
#            `strata check` rejects is skipped with "strata: h2 not supported yet", one
#            that is accepted but does not answer HTTP/2 correctly (probe below) is skipped
#            too, with what it answered
#   haproxy  `bind ... ssl alpn h2` / `bind ... proto h2` frontends (mode http), HTTP/1.1
#            server with http-reuse always for h2tls/h2c, `server ... proto h2` for gRPC
#   nginx    `listen ... ssl http2` / `listen ... http2`; proxy_pass to an upstream with
#            keepalive (proxy_http_version 1.1, Connection ""), grpc_pass grpc:// to an
#            upstream with keepalive for gRPC; keepalive_requests 10^8 (1.22 would end each
#            h2 connection after 1000 requests)
# Before measuring, each target must answer (curl --http2 / --http2-prior-knowledge) the
# origin's body over HTTP/2, and for gRPC (nghttp) the canned message and grpc-status: 0
# in the trailers; else it is not measured.
# Each of ROUNDS rounds runs every scenario on every target for RUN_SECONDS (order rotated
# each round). Per run: requests/s and failures (h2load), p50/p99 latency (from h2load's
# --log-file, one line per request), the proxy's CPU (user + system of all its processes
# and threads, /proc/PID/stat) per request in µs, and the cores busy with other work on
# the machine. The table shows medians and strata / better peer.
#
# Environment: STRATA_BIN (default build/strata), ROUNDS (4), RUN_SECONDS (3), CONC (50,
#   h2load connections), STREAMS (10, streams per connection, -m), SCENARIOS,
#   BENCH_KEEP=1 keeps the temp dir (configs, logs, every h2load output).
# Run: STRATA_BIN=build/strata bench/h2.sh   (about 2 minutes with the defaults); make bench-h2
set -euo pipefail

BENCH_NAME=h2-bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-4}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-50}
STREAMS=${STREAMS:-10}
SCENARIOS=${SCENARIOS:-h2tls h2c grpc}
CLIENT_CPU=0
PROXY_CPU=1
BODY='hello, world\n'
SNI=bench.example.test
GRPC_PATH=/strata.test.Echo/Unary

[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (client on CPU $CLIENT_CPU, proxy on CPU $PROXY_CPU)"
command -v openssl >/dev/null || die "openssl missing"
command -v curl >/dev/null || die "curl missing (scripts/install-deps.sh)"
command -v taskset >/dev/null || die "taskset missing (util-linux)"
if ! command -v h2load >/dev/null || ! command -v nghttp >/dev/null \
        || ! command -v nghttpd >/dev/null; then
    log "h2-bench: installing nghttp2-client and nghttp2-server from Debian"
    "$ROOT/scripts/install-deps.sh" bench >&2
fi
H2LOAD=$(command -v h2load)
NGHTTP=$(command -v nghttp)
NGHTTPD=$(command -v nghttpd)
need_peers haproxy nginx
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

bench_tmpdir strata-h2
PIN_CLIENT=(taskset -c "$CLIENT_CPU")
PIN_PROXY=(taskset -c "$PROXY_CPU")

# ---------------------------------------------------------------- certificate, gRPC bytes
ec_cert ec "$SNI"
CERT=$TMP/ec.crt
KEY=$TMP/ec.key
cat "$CERT" "$KEY" >"$TMP/haproxy.pem"
# gRPC length-prefixed messages: flag 0, length 7, then the (opaque) message bytes
printf '\000\000\000\000\007request' >"$TMP/grpc-req.bin"
mkdir -p "$TMP/htdocs${GRPC_PATH%/*}"
printf '\000\000\000\000\007replied' >"$TMP/htdocs$GRPC_PATH"

# ---------------------------------------------------------------- origins
ORIGIN=$(free_port)
start_origin origin "$ORIGIN" "$BODY" -- "${PIN_PROXY[@]}"
ORIGIN_PID=$LAST_PID

GORIGIN=$(free_port)
start_bg "$TMP/gorigin.log" "${PIN_PROXY[@]}" "$NGHTTPD" --no-tls -n 1 -d "$TMP/htdocs" \
    --trailer "grpc-status: 0" "$GORIGIN"
wait_listening "$LAST_PID" "$GORIGIN" \
    || { tail -20 "$TMP/gorigin.log" >&2 || true; die "the gRPC origin (nghttpd) did not start"; }
GORIGIN_PID=$LAST_PID
ORIGIN_PROCS="$(procs "$ORIGIN_PID") $GORIGIN_PID"

declare -A PORT PROCS
# PORT[target:scenario]: where the target serves that scenario; TARGETS_OF[scenario]
declare -A TARGETS_OF

# ---------------------------------------------------------------- strata
# strata_config SCENARIO PORT: Strata's config for one scenario.
strata_config() {
    local sc=$1 p=$2
    case $sc in
        h2tls) cat <<EOF
# strata: h2 — HTTP/2 from clients over TLS (ALPN h2), HTTP/1.1 to the origin
workers: 1
listeners:
  - name: h2tls
    listen: 127.0.0.1:$p
    mode: http
    tls:
      certificates: [ { cert: $CERT, key: $KEY } ]
      alpn: [h2, http/1.1]
    http:
      access_log: { format: off }
      forwarded: none
      request_id: none
      traceparent: false
      h2: { enabled: true }
    backend: origin
backends:
  origin: { keepalive: { max_idle: 1000 }, servers: [ 127.0.0.1:$ORIGIN ] }
EOF
        ;;
        h2c) cat <<EOF
# strata: h2 — HTTP/2 with prior knowledge (h2c), HTTP/1.1 to the origin
workers: 1
listeners:
  - name: h2c
    listen: 127.0.0.1:$p
    mode: http
    http:
      access_log: { format: off }
      forwarded: none
      request_id: none
      traceparent: false
      h2: { cleartext: true }
    backend: origin
backends:
  origin: { keepalive: { max_idle: 1000 }, servers: [ 127.0.0.1:$ORIGIN ] }
EOF
        ;;
        grpc) cat <<EOF
# strata: h2 — gRPC: h2c from clients, h2c to the gRPC origin
workers: 1
listeners:
  - name: grpc
    listen: 127.0.0.1:$p
    mode: http
    http:
      access_log: { format: off }
      forwarded: none
      request_id: none
      traceparent: false
      h2: { cleartext: true }
    backend: grpc
backends:
  grpc: { protocol: h2c, servers: [ 127.0.0.1:$GORIGIN ] }
EOF
        ;;
    esac
}

start_strata() {
    local sc p name
    if [ ! -x "$STRATA_BIN" ]; then
        log "h2-bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    for sc in $SCENARIOS; do
        name=strata-$sc
        p=$(free_port)
        strata_config "$sc" "$p" >"$TMP/$name.yaml"
        if ! "$STRATA_BIN" check "$TMP/$name.yaml" >"$TMP/$name-check.log" 2>&1; then
            log "strata: h2 not supported yet ($sc: 'strata check' rejected the config:" \
                "$(head -1 "$TMP/$name-check.log"))"
            continue
        fi
        start_bg "$TMP/$name.log" "${PIN_PROXY[@]}" "$STRATA_BIN" run "$TMP/$name.yaml"
        if wait_listening "$LAST_PID" "$p"; then
            PORT[strata:$sc]=$p
            PROCS[strata:$sc]=$LAST_PID
        else
            not_started "Strata ($sc)" "$TMP/$name.log" || true
        fi
    done
}

# ---------------------------------------------------------------- haproxy
start_haproxy() {
    local p1 p2 p3
    p1=$(free_port)
    p2=$(free_port)
    p3=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 4096
    nbthread 1
    ssl-default-bind-curves X25519
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 60s
frontend h2tls
    bind 127.0.0.1:$p1 ssl crt $TMP/haproxy.pem alpn h2
    default_backend origin
frontend h2c
    bind 127.0.0.1:$p2 proto h2
    default_backend origin
frontend grpc
    bind 127.0.0.1:$p3 proto h2
    default_backend grpc
backend origin
    server s1 127.0.0.1:$ORIGIN pool-purge-delay 30s
backend grpc
    server g1 127.0.0.1:$GORIGIN proto h2 pool-purge-delay 30s
EOF
    start_bg "$TMP/haproxy.log" "${PIN_PROXY[@]}" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    if wait_listening "$LAST_PID" "$p1" "$p2" "$p3"; then
        PORT[haproxy:h2tls]=$p1
        PORT[haproxy:h2c]=$p2
        PORT[haproxy:grpc]=$p3
        PROCS[haproxy:h2tls]=$LAST_PID
        PROCS[haproxy:h2c]=$LAST_PID
        PROCS[haproxy:grpc]=$LAST_PID
    else
        not_started HAProxy "$TMP/haproxy.log" || true
    fi
}

# ---------------------------------------------------------------- nginx
start_nginx() {
    local p1 p2 p3 pid
    p1=$(free_port)
    p2=$(free_port)
    p3=$(free_port)
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519;
    upstream origin {
        server 127.0.0.1:$ORIGIN;
        keepalive 1000;
        keepalive_timeout 30s;
        keepalive_requests 100000000;
    }
    upstream grpc {
        server 127.0.0.1:$GORIGIN;
        keepalive 1000;
        keepalive_timeout 30s;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$p1 ssl http2 reuseport;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$p2 http2 reuseport;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$p3 http2 reuseport;
        location / { grpc_pass grpc://grpc; }
    }
}
EOF
    start_bg "$TMP/nginx.log" "${PIN_PROXY[@]}" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" \
        -e "$TMP/nginx/error.log"
    pid=$LAST_PID
    if wait_listening "$pid" "$p1" "$p2" "$p3"; then
        PORT[nginx:h2tls]=$p1
        PORT[nginx:h2c]=$p2
        PORT[nginx:grpc]=$p3
        sleep 0.2 # the worker
        PROCS[nginx:h2tls]=$(procs "$pid")
        PROCS[nginx:h2c]=${PROCS[nginx:h2tls]}
        PROCS[nginx:grpc]=${PROCS[nginx:h2tls]}
    else
        not_started NGINX "$TMP/nginx.log" "$TMP/nginx/error.log" || true
    fi
}

start_strata
start_haproxy
start_nginx

# ---------------------------------------------------------------- probes
url() {
    case $2 in
        h2tls) echo "https://127.0.0.1:${PORT[$1:$2]}/" ;;
        h2c) echo "http://127.0.0.1:${PORT[$1:$2]}/" ;;
        grpc) echo "http://127.0.0.1:${PORT[$1:$2]}$GRPC_PATH" ;;
    esac
}

# probe T SCEN: the target answers the scenario's request over HTTP/2 as the origin would.
probe() {
    local t=$1 sc=$2 out
    case $sc in
        h2tls | h2c)
            local flag=--http2-prior-knowledge
            [ "$sc" = h2tls ] && flag=--http2
            out=$(curl -sk --max-time 5 "$flag" -w '\n%{http_version} %{http_code}' "$(url "$t" "$sc")" \
                2>&1 || true)
            [ "$out" = $'hello, world\n\n2 200' ] && return 0
            ;;
        grpc)
            out=$("$NGHTTP" -v -t 5 -d "$TMP/grpc-req.bin" -H 'content-type: application/grpc' \
                -H 'te: trailers' "$(url "$t" "$sc")" 2>&1 | tr -d '\000\007' || true)
            case $out in *"grpc-status: 0"*replied* | *replied*"grpc-status: 0"*)
                grep -q ':status: 200' <<<"$out" && return 0 ;;
            esac
            ;;
    esac
    log "h2-bench: $t $sc: did not answer as the origin over HTTP/2; not measured:" \
        "$(printf '%s' "$out" | tail -3 | tr '\n' ' ' | cut -c1-300)"
    [ "$t" = strata ] && log "strata: h2 not supported yet ($sc: config accepted, no correct answer)"
    return 1
}

for sc in $SCENARIOS; do
    list=""
    for t in strata haproxy nginx; do
        [ -n "${PORT[$t:$sc]:-}" ] || continue
        probe "$t" "$sc" && list="$list $t"
    done
    TARGETS_OF[$sc]=$list
    log "h2-bench: $sc: targets:${list:- none}"
done

# ---------------------------------------------------------------- measuring

# percentiles FILE: "p50 p99" in µs of h2load's --log-file (third column: µs per request).
percentiles() {
    awk -F'\t' '{ print $3 }' "$1" | sort -n | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        print a[i50], a[i99] }'
}

# shellcheck disable=SC2034  # read through med (eval)
declare -A RATE P50 P99 CPU FAILS BUSYP BUSYO BUSYC
OTHERS=""
add() { eval "$1[\$2]=\"\${$1[\$2]:-} \$3\""; }

run_h2load() {
    local t=$1 sc=$2 r=$3 out=$TMP/h2load-$1-$2-$3.out lat=$TMP/lat-$1-$2-$3.log
    local args=() c0 c1 o0 o1 k0 k1 s0 s1 t0 t1 done_ fails rps pcts secs hz
    [ "$sc" = grpc ] && args=(-d "$TMP/grpc-req.bin" -H 'content-type: application/grpc' \
        -H 'te: trailers')
    # shellcheck disable=SC2086  # lists of PIDs
    c0=$(cpu_ticks all ${PROCS[$t:$sc]})
    # shellcheck disable=SC2086
    o0=$(cpu_ticks all $ORIGIN_PROCS)
    k0=$(child_ticks)
    s0=$(busy_ticks)
    t0=$(date +%s%N)
    "${PIN_CLIENT[@]}" "$H2LOAD" -c"$CONC" -m"$STREAMS" -t1 -D"$RUN_SECONDS" "${args[@]}" \
        --log-file="$lat" "$(url "$t" "$sc")" >"$out" 2>&1 || true
    t1=$(date +%s%N)
    s1=$(busy_ticks)
    k1=$(child_ticks)
    # shellcheck disable=SC2086
    o1=$(cpu_ticks all $ORIGIN_PROCS)
    # shellcheck disable=SC2086
    c1=$(cpu_ticks all ${PROCS[$t:$sc]})
    done_=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$out")
    fails=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored, \([0-9]*\) timeout.*/\1 \2 \3/p' \
        "$out" | awk '{ print $1 + $2 + $3 }')
    rps=$(sed -n 's/^finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' "$out")
    if [ -z "$rps" ] || [ "${done_:-0}" = 0 ]; then
        log "h2-bench: $t $sc round $r: h2load gave no result: $(tail -3 "$out" | tr '\n' ' ')"
        add RATE "$t:$sc" -
        return
    fi
    # 2xx only: a non-2xx answer counts as a failure here
    local non2xx
    non2xx=$(sed -n 's/^status codes: [0-9]* 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3/p' \
        "$out" | awk '{ print $1 + $2 + $3 }')
    fails=$((${fails:-0} + ${non2xx:-0}))
    [ "$fails" = 0 ] || log "h2-bench: $t $sc round $r: $fails failed or non-2xx requests"
    FAILS[$t:$sc]=$((${FAILS[$t:$sc]:-0} + fails))
    pcts=$(percentiles "$lat")
    rm -f "$lat"
    hz=$(getconf CLK_TCK)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    add RATE "$t:$sc" "$rps"
    add P50 "$t:$sc" "${pcts% *}"
    add P99 "$t:$sc" "${pcts#* }"
    add CPU "$t:$sc" "$(us_per "$c1" "$c0" "$done_")"
    add BUSYP "$t:$sc" "$(awk -v t=$((c1 - c0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')"
    add BUSYO "$t:$sc" "$(awk -v t=$((o1 - o0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')"
    add BUSYC "$t:$sc" "$(awk -v t=$((k1 - k0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')"
    OTHERS="$OTHERS $(awk -v t=$((s1 - s0 - (k1 - k0) - (c1 - c0) - (o1 - o0))) -v s="$secs" \
        -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')"
}

# rotated ROUND T...: the targets, rotated by ROUND - 1 places.
rotated() {
    local r=$1
    shift
    local a=("$@") n=$# i
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${a[$(((i + r - 1) % n))]}"; done
}

any=0
for sc in $SCENARIOS; do [ -n "${TARGETS_OF[$sc]}" ] && any=1; done
[ "$any" = 1 ] || die "no target answered HTTP/2"
for r in $(seq "$ROUNDS"); do
    for sc in $SCENARIOS; do
        # shellcheck disable=SC2086  # a word list
        [ -n "${TARGETS_OF[$sc]}" ] || continue
        # shellcheck disable=SC2046,SC2086
        for t in $(rotated "$r" ${TARGETS_OF[$sc]}); do
            run_h2load "$t" "$sc" "$r"
        done
    done
    log "h2-bench: round $r/$ROUNDS done"
done

# ---------------------------------------------------------------- report
med() { local v; eval "v=\${$1[\$2]:-}"; echo "$v" | median; }
row() {
    local label=$1 higher=$2 sc=$3 arr=$4 s h n q
    s=$(med "$arr" "strata:$sc")
    h=$(med "$arr" "haproxy:$sc")
    n=$(med "$arr" "nginx:$sc")
    q=$(ratio "$s" "$(best "$higher" "$h" "$n")")
    printf '%-44s %10s %10s %10s %8s\n' "$label" "$s" "$h" "$n" "$q"
}

# busy_row LABEL SCEN: median cores busy (proxy/origin/client) per target, no ratio.
busy_row() {
    local label=$1 sc=$2 t v=()
    for t in strata haproxy nginx; do
        if [ -n "${BUSYP[$t:$sc]:-}" ]; then
            v+=("$(med BUSYP "$t:$sc")/$(med BUSYO "$t:$sc")/$(med BUSYC "$t:$sc")")
        else
            v+=(-)
        fi
    done
    printf '%-44s %10s %10s %10s %8s\n' "$label" "${v[@]}" ""
}

echo
echo "HTTP/2 and gRPC: Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version)," \
    "$("$H2LOAD" --version | head -1), loopback, $(nproc) CPUs;"
echo "medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s (order rotated each round);" \
    "1 worker/thread each, proxy + origin on CPU $PROXY_CPU, h2load -c$CONC -m$STREAMS -t1 on" \
    "CPU $CLIENT_CPU."
echo
printf '%-44s %10s %10s %10s %8s\n' metric strata haproxy nginx ratio
for sc in $SCENARIOS; do
    case $sc in
        h2tls) label="h2 over TLS -> h1" ;;
        h2c) label="h2c (prior knowledge) -> h1" ;;
        grpc) label="gRPC unary, h2c -> h2c" ;;
    esac
    row "$label, requests/s" 1 "$sc" RATE
    row "   p50 latency (us)" 0 "$sc" P50
    row "   p99 latency (us)" 0 "$sc" P99
    row "   proxy CPU per request (us)" 0 "$sc" CPU
    busy_row "   cores busy: proxy/origin/h2load" "$sc"
done
echo
echo "ratio = strata / better peer (higher requests/s; lower latency and CPU); '-' = not measured."
echo "Failed, errored, timed-out or non-2xx requests (all rounds):"
for sc in $SCENARIOS; do
    for t in ${TARGETS_OF[$sc]}; do echo "  $sc $t: ${FAILS[$t:$sc]:-0}"; done
done
echo "Other work on the machine during the runs (cores busy outside h2load, the proxy and" \
    "the origins): median $(echo "$OTHERS" | median), max $(echo "$OTHERS" | tr ' ' '\n' \
    | sort -g | tail -1); more than ~0.1 means the numbers are disturbed."
echo "Raw runs (requests/s | proxy CPU us per request):"
for sc in $SCENARIOS; do
    for t in ${TARGETS_OF[$sc]}; do
        echo "  $sc $t:${RATE[$t:$sc]:-} |${CPU[$t:$sc]:-}"
    done
done
