#!/bin/bash
# bench/http.sh — HTTP/1.1 reverse proxying: Strata (mode http) vs HAProxy (mode http) vs
# NGINX (proxy_pass, upstream keepalive), side by side on this machine, over loopback.
#
# Layouts (LAYOUT):
#   pinned   (default; the method of issue 10 and bench/README.md) wrk -t1 on CPU 0; each
#            proxy with 1 worker/thread and the backend (1 worker) together on CPU 1
#   shared   nproc workers/threads each, wrk -t$WRK_THREADS, nothing pinned: proxy, backend
#            and wrk share every core (hides what a proxy costs per request: a second view)
# One backend: NGINX answering every request with 200 and a 13-byte body ("hello,
# world\n"), and /files/big.bin (1 MiB) from a file, keep-alive, BACKEND_WORKERS workers,
# plus a stub_status port to count the connections the proxies open to it. In front of it,
# each on its own free loopback port:
#   strata   listener mode http, backend keepalive max_idle 1000, no access log, no
#            forwarded/request-id/traceparent headers: the same work as the peers (skipped,
#            with a message, when `strata check` rejects that config)
#   strata-def  Strata with its defaults (X-Forwarded-*, request id, traceparent) except the
#            access log: what the defaults cost, reported beside the like-for-like figures
#   haproxy  mode http, option http-keep-alive, http-reuse always, option splice-auto, no log
#   nginx    proxy_pass to an upstream with keepalive 1000, proxy_http_version 1.1,
#            Connection "", access_log off
#   direct   the backend itself (how fast the backend is: it must not be the bottleneck)
#   1. memory per idle keep-alive client connection: IDLE_CONNS connections opened through
#      each proxy, one request/response on each, then held idle; growth of the proxy
#      processes' VmRSS (all NGINX processes summed) divided by IDLE_CONNS
#   2. ROUNDS rounds, targets interleaved in each round, wrk for RUN_SECONDS each:
#      keep-alive (CONC connections, requests/s and p50/p99 latency), one request per
#      connection (Connection: close on each request; requests/s) and 1 MiB bodies
#      (BIG_CONC keep-alive connections; Gbit/s, proxy CPU per MiB); in each, the proxy's
#      CPU (user + system of all its processes, /proc/PID/stat) per request; also the
#      backend's CPU, the connections the proxy opened to it, and the CPU that other work
#      on the machine took during the run (to tell a disturbed run)
# Prints a table of medians, strata / better-peer ratios and the targets. Every process it
# starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), LAYOUT (pinned), ROUNDS (4), RUN_SECONDS
#   (3), CONC (50), BIG_CONC (8), WRK_THREADS (shared layout: 2), IDLE_CONNS (6000; 0 skips
#   the memory measurement), MODES ("ka close big": which wrk scenarios run),
#   BACKEND_WORKERS (1), BENCH_KEEP=1 keeps the temp dir (configs, logs, every wrk output).
# Run: STRATA_BIN=build/strata bench/http.sh   (about 5 minutes with the defaults)
set -euo pipefail

BENCH_NAME=http-bench
. "$(dirname "$0")/lib.sh"
HERE=$ROOT/bench/http
ROUNDS=${ROUNDS:-4}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-50}
BIG_CONC=${BIG_CONC:-8}
IDLE_CONNS=${IDLE_CONNS:-6000}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
NPROC=$(nproc)
BODY='hello, world\n'
layout_setup
WRK_THREADS=${WRK_THREADS:-2}
[ "$LAYOUT" = pinned ] && WRK_THREADS=1

[ -x "$PYTHON" ] || die "$PYTHON missing"
command -v curl >/dev/null || die "curl missing (scripts/install-deps.sh)"
if ! command -v wrk >/dev/null; then
    log "http-bench: installing wrk from Debian"
    "$ROOT/scripts/install-deps.sh" bench >&2
fi
WRK=$(command -v wrk)
need_peers haproxy nginx

# Every idle connection costs the client one descriptor and the proxy one (plus the few
# connections to the backend). Raise this shell's soft limit, which all inherit, towards
# twice that (what HAProxy asks for: 2 per maxconn); it must be at least NEED.
NEED=$((IDLE_CONNS + 4096))
WANT=$((IDLE_CONNS * 2 + 4096))
[ "$FD_HARD" -ge "$NEED" ] \
    || die "IDLE_CONNS=$IDLE_CONNS needs $NEED file descriptors per process, the hard limit" \
        "is $FD_HARD: raise it (ulimit -Hn) or lower IDLE_CONNS"
SOFT=$(ulimit -Sn)
if [ "$SOFT" != unlimited ] && [ "$SOFT" -lt "$WANT" ]; then
    ulimit -Sn "$((WANT < FD_HARD ? WANT : FD_HARD))"
fi
NOFILE=$(ulimit -Sn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
# HAProxy refuses to start when it cannot get 2 descriptors per maxconn unless told `no
# strict-limits`; it needs only IDLE_CONNS + a few here (http-reuse: few server connections).
HTTP_MAXCONN=$(((NOFILE - 200) / 2))
[ "$HTTP_MAXCONN" -gt "$((IDLE_CONNS + 1024))" ] || HTTP_MAXCONN=$((IDLE_CONNS + 1024))

bench_tmpdir strata-httpbench

# ---------------------------------------------------------------- the backend
BACK=$(free_port)
BACK_STATUS=$(free_port)
mkdir -p "$TMP/files"
head -c 1048576 /dev/urandom >"$TMP/files/big.bin"
chmod a+rX "$TMP" "$TMP/files" "$TMP/files/big.bin" # NGINX's workers run as nobody under root
ORIGIN_WORKERS=$BACKEND_WORKERS ORIGIN_FILES=$TMP/files start_origin backend "$BACK" "$BODY" \
    "$BACK_STATUS" -- "${PIN_PROXY[@]}"
BACKEND_PID=$LAST_PID

# backend_accepts: connections the backend has accepted so far (its stub_status counts
# the query's own connection: callers subtract 1 per query).
backend_accepts() {
    curl -s --max-time 5 "http://127.0.0.1:$BACK_STATUS/" | awk 'NR == 3 { print $1 }'
}

declare -A PORT MAIN_PID PROCS
TARGETS=(direct)
PORT[direct]=$BACK

# ---------------------------------------------------------------- proxies
# start_strata NAME HTTP: Strata as target NAME, its listener's `http:` block being HTTP.
start_strata() {
    local name=$1 http=$2 p
    p=$(free_port)
    cat >"$TMP/$name.yaml" <<EOF
workers: $WORKERS
listeners:
  - name: web
    listen: 127.0.0.1:$p
    mode: http
    backend: app
    http: $http
backends:
  app:
    keepalive: { max_idle: 1000, idle_timeout: 30s }
    servers: [ { address: 127.0.0.1:$BACK } ]
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "http-bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    if ! "$STRATA_BIN" check "$TMP/$name.yaml" >"$TMP/$name-check.log" 2>&1; then
        log "http-bench: $name: 'strata check' rejected the bench config, not measured:"
        sed 's/^/    /' "$TMP/$name-check.log" >&2
        return
    fi
    start_bg "$TMP/$name.log" "${PIN_PROXY[@]}" "$STRATA_BIN" run "$TMP/$name.yaml"
    add_target "$name" "Strata ($name)" "$p" "" "$TMP/$name.log"
}

start_haproxy() {
    local p
    p=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn $HTTP_MAXCONN
    no strict-limits
    nbthread $WORKERS
defaults
    mode http
    option http-keep-alive
    option splice-auto
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 60s
frontend web
    bind 127.0.0.1:$p
    default_backend app
backend app
    server s1 127.0.0.1:$BACK pool-purge-delay 30s
EOF
    start_bg "$TMP/haproxy.log" "${PIN_PROXY[@]}" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    add_target haproxy HAProxy "$p" "" "$TMP/haproxy.log"
}

start_nginx() {
    local p
    p=$(free_port)
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections $((IDLE_CONNS + 4096)); }
http {
    access_log off;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    upstream app {
        server 127.0.0.1:$BACK;
        keepalive 1000;
        keepalive_timeout 30s;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$p reuseport;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    start_bg "$TMP/nginx.log" "${PIN_PROXY[@]}" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" \
        -e "$TMP/nginx/error.log"
    add_target nginx NGINX "$p" "" "$TMP/nginx.log" "$TMP/nginx/error.log"
}

start_strata strata \
    "{ access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }"
start_strata strata-def "{ access_log: { format: off } }"
start_haproxy
start_nginx

# Every target must answer GET / with the backend's body, or it is not measured.
MEASURED=()
for t in "${TARGETS[@]}"; do
    if curl -s --max-time 5 "http://127.0.0.1:${PORT[$t]}/" | grep -qx 'hello, world' \
        && [ "$(curl -s --max-time 5 "http://127.0.0.1:${PORT[$t]}/files/big.bin" | wc -c)" \
            = 1048576 ]; then
        MEASURED+=("$t")
    else
        log "http-bench: $t: GET / or /files/big.bin did not return the backend's body; not measured"
    fi
done
[ ${#MEASURED[@]} -gt 0 ] || die "no target answered"
TARGETS=("${MEASURED[@]}")
for t in "${TARGETS[@]}"; do
    [ "$t" = direct ] || PROCS[$t]=$(procs "${MAIN_PID[$t]}")
done
BACKEND_PROCS=$(procs "$BACKEND_PID")
log "http-bench: targets: ${TARGETS[*]} (nproc $NPROC, backend $BACKEND_WORKERS worker(s)," \
    "$ROUNDS rounds of ${RUN_SECONDS}s, wrk -t$WRK_THREADS -c$CONC)"

# ---------------------------------------------------------------- idle connections
declare -A MEM_PER_CONN
# The idle clients read stdin from this FIFO, which nobody writes: they hold until killed.
mkfifo "$TMP/hold.fifo"
exec 3<>"$TMP/hold.fifo"
measure_idle() {
    local t=$1 before after out pid held
    out=$TMP/idle-$t.out
    # Warm up: one exchange through, so lazily built state is not counted per connection.
    "$PYTHON" "$HERE/idle_client.py" 127.0.0.1 "${PORT[$t]}" 1 0 </dev/null >/dev/null 2>&1 || true
    sleep 0.5
    # shellcheck disable=SC2086  # PROCS: a list of PIDs
    before=$(rss_kib_of ${PROCS[$t]})
    # Holds the connections until killed (bounded by its own 120 s hold time).
    "$PYTHON" "$HERE/idle_client.py" 127.0.0.1 "${PORT[$t]}" "$IDLE_CONNS" 120 >"$out" 2>&1 <&3 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 600); do
        grep -q '^RESULT' "$out" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    # shellcheck disable=SC2086  # PROCS: a list of PIDs
    after=$(rss_kib_of ${PROCS[$t]})
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    held=$(sed -n 's/^HELD still_open=//p' "$out")
    if ! grep -q "^RESULT open=$IDLE_CONNS " "$out" || [ "${held:-0}" != "$IDLE_CONNS" ]; then
        log "http-bench: $t: idle connections failed (want $IDLE_CONNS open and held):" \
            "$(tr '\n' ' ' <"$out")"
        return
    fi
    MEM_PER_CONN[$t]=$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" \
        'BEGIN { printf "%.2f", (a - b) / n }')
    log "http-bench: $t: $IDLE_CONNS idle keep-alive conns: RSS $before -> $after KiB," \
        "${MEM_PER_CONN[$t]} KiB/conn ($(result_field seconds <"$out") s to open)"
}
for t in "${TARGETS[@]}"; do
    [ "$IDLE_CONNS" -gt 0 ] || break # IDLE_CONNS=0: not measured
    case $t in direct | strata-def) ;; *) measure_idle "$t" ;; esac # strata-def: same as strata
done

# ---------------------------------------------------------------- wrk rounds
# Per run lists (one value per round), by "MODE:TARGET" (MODE ka: keep-alive, close:
# Connection: close, big: 1 MiB bodies): RATE (requests/s; big: Gbit/s), P50/P99 (us), CPU
# (proxy CPU per request, big: per MiB, us), BCONN (backend connections opened per 1000
# requests), BCPU (backend, µs per request or MiB: the origin's cost behind each target);
# ERRS[TARGET]: wrk errors.
# shellcheck disable=SC2034  # read through med (eval)
declare -A RATE P50 P99 CPU BCONN BCPU ERRS
add() { eval "$1[\$2]=\"\${$1[\$2]:-} \$3\""; }

# cores TICKS: TICKS spread over RUN_SECONDS, in cores ("%.2f").
cores() { awk -v t="$1" -v s="$RUN_SECONDS" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", t / hz / s }'; }

# wrk_run TARGET MODE ROUND: one wrk run; adds its figures to the lists above and the cores
# busy with neither wrk, the proxy nor the backend (other work on the machine) to OTHERS.
wrk_run() {
    local t=$1 m=$2 out=$TMP/wrk-$1-$2-$3.out c0=0 c1=0 b0 b1 s0 s1 k0 k1 a0 a1 res req e
    local args=() conc=$CONC path=/ bytes secs units
    case $m in
        close) args=(-- close) ;;
        big) conc=$BIG_CONC path=/files/big.bin ;;
    esac
    a0=$(backend_accepts)
    # shellcheck disable=SC2086  # PROCS: lists of PIDs
    [ "$t" = direct ] || c0=$(cpu_ticks all ${PROCS[$t]})
    # shellcheck disable=SC2086
    b0=$(cpu_ticks all $BACKEND_PROCS)
    k0=$(child_ticks)
    s0=$(busy_ticks)
    "${PIN_CLIENT[@]}" "$WRK" -t"$WRK_THREADS" -c"$conc" -d"${RUN_SECONDS}s" --latency \
        -s "$HERE/wrk.lua" "http://127.0.0.1:${PORT[$t]}$path" "${args[@]}" >"$out" 2>&1 || true
    s1=$(busy_ticks)
    k1=$(child_ticks)
    # shellcheck disable=SC2086
    b1=$(cpu_ticks all $BACKEND_PROCS)
    # shellcheck disable=SC2086
    [ "$t" = direct ] || c1=$(cpu_ticks all ${PROCS[$t]})
    a1=$(backend_accepts)
    res=$(grep '^RESULT' "$out" || true)
    if [ -z "$res" ]; then
        log "http-bench: $t $m: wrk gave no result: $(tail -3 "$out" | tr '\n' ' ')"
        add RATE "$m:$t" -
        return
    fi
    req=$(echo "$res" | result_field requests)
    bytes=$(echo "$res" | result_field bytes)
    secs=$(echo "$res" | result_field seconds)
    units=$req
    if [ "$m" = big ]; then
        units=$(awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 1048576 }')
        add RATE "$m:$t" "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b * 8 / s / 1e9 }')"
    else
        add RATE "$m:$t" "$(echo "$res" | result_field rps)"
    fi
    add P50 "$m:$t" "$(echo "$res" | result_field p50_us)"
    add P99 "$m:$t" "$(echo "$res" | result_field p99_us)"
    [ "$t" = direct ] || add CPU "$m:$t" "$(us_per "$c1" "$c0" "$units")"
    add BCPU "$m:$t" "$(us_per "$b1" "$b0" "$units")"
    add BCONN "$m:$t" "$(awk -v a="$a1" -v b="$a0" -v n="${req:-0}" \
        'BEGIN { if (n > 0) printf "%.1f", (a - b - 1) * 1000 / n; else print "-" }')"
    OTHERS="${OTHERS:-} $(cores $((s1 - s0 - (k1 - k0) - (c1 - c0) - (b1 - b0))))"
    e=$(echo "$res" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /errors=|timeouts=/) {
        split($i, kv, "="); s += kv[2] } } END { print s + 0 }')
    [ "$e" = 0 ] || log "http-bench: $t $m: $e errors: $res"
    ERRS[$t]=$((${ERRS[$t]:-0} + e))
}

# rotated ROUND T...: the targets, rotated by ROUND - 1 places (who runs first changes).
rotated() {
    local r=$1
    shift
    local a=("$@") n=$# i
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${a[$(((i + r - 1) % n))]}"; done
}

MODES=${MODES:-ka close big}
OTHERS=""
for r in $(seq "$ROUNDS"); do
    for m in $MODES; do
        # shellcheck disable=SC2046  # a word list
        for t in $(rotated "$r" "${TARGETS[@]}"); do
            wrk_run "$t" "$m" "$r"
        done
    done
    log "http-bench: round $r/$ROUNDS done"
done

# ---------------------------------------------------------------- report
med() { local v; eval "v=\${$1[\$2]:-}"; echo "$v" | median; }
COLS="direct strata strata-def haproxy nginx"
# row LABEL HIGHER LIST MODE: medians per target, then strata / better peer and
# strata-def / better peer (HIGHER=1: more is better).
row() {
    local label=$1 higher=$2 arr=$3 m=$4 t v=() peer
    for t in $COLS; do v+=("$(med "$arr" "$m:$t")"); done
    peer=$(best "$higher" "${v[3]}" "${v[4]}")
    printf '%-38s %9s %9s %10s %9s %9s %7s %7s\n' "$label" "${v[@]}" "$(ratio "${v[1]}" "$peer")" \
        "$(ratio "${v[2]}" "$peer")"
}

echo
echo "Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version), HTTP/1.1 over loopback," \
     "layout $LAYOUT ($WORKERS worker(s) each$([ "$LAYOUT" = pinned ] && echo ", proxy + backend" \
     "on CPU 1, wrk on CPU 0")); medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s;" \
     "wrk -t$WRK_THREADS -c$CONC (1 MiB: -c$BIG_CONC); backend NGINX, $BACKEND_WORKERS worker(s)"
echo
printf '%-38s %9s %9s %10s %9s %9s %7s %7s\n' metric direct strata strata-def haproxy nginx \
    ratio def-rat
row "keep-alive requests/s" 1 RATE ka
row "   p50 latency (us)" 0 P50 ka
row "   p99 latency (us)" 0 P99 ka
row "   proxy CPU per request (us)" 0 CPU ka
row "1 request per connection, requests/s" 1 RATE close
row "   p99 latency (us)" 0 P99 close
row "   proxy CPU per request (us)" 0 CPU close
row "1 MiB bodies, Gbit/s" 1 RATE big
row "   p99 latency (us)" 0 P99 big
row "   proxy CPU per MiB (us)" 0 CPU big
mem=()
for t in $COLS; do mem+=("${MEM_PER_CONN[$t]:--}"); done
printf '%-38s %9s %9s %10s %9s %9s %7s %7s\n' "RSS per idle keep-alive conn (KiB)" "${mem[@]}" \
    "$(ratio "${mem[1]}" "${mem[3]}")" "$(ratio "${mem[2]}" "${mem[3]}")"
echo
echo "ratio = strata / better peer, def-rat = strata-def / better peer (RSS: / HAProxy);" \
     "latency, CPU and RSS: lower is better. strata-def: Strata's default per-request work"
echo "(X-Forwarded-*, request id, traceparent) with the access log off; the others do none of it."
echo "RSS per idle connection: $IDLE_CONNS connections, one request each, then idle (measured" \
     "once per proxy, before the wrk rounds)."
echo "Backend CPU per request (us; 1 MiB: per MiB), median, keep-alive / 1 per conn / 1 MiB:"
for t in "${TARGETS[@]}"; do echo "  $t: $(med BCPU "ka:$t") / $(med BCPU "close:$t") / $(med BCPU "big:$t")"; done
echo "Backend connections opened per 1000 requests (upstream reuse), keep-alive / 1 per conn:"
for t in "${TARGETS[@]}"; do echo "  $t: $(med BCONN "ka:$t") / $(med BCONN "close:$t")"; done
echo "Other work on the machine during the runs (cores busy outside wrk, the proxy and the" \
     "backend): median $(echo "$OTHERS" | median), max $(echo "$OTHERS" | tr ' ' '\n' \
     | sort -g | tail -1); more than ~0.1 means the numbers are disturbed."
echo "wrk errors (connect, read, write, timeout, non-2xx), all runs:"
for t in "${TARGETS[@]}"; do echo "  $t: ${ERRS[$t]:-0}"; done
echo "Raw runs: keep-alive requests/s | 1 per conn requests/s | 1 MiB Gbit/s:"
for t in "${TARGETS[@]}"; do echo "  $t:${RATE[ka:$t]:-} |${RATE[close:$t]:-} |${RATE[big:$t]:-}"; done
echo "Raw runs: proxy CPU (us), per request keep-alive | per request 1 per conn | per MiB:"
for t in "${TARGETS[@]}"; do
    [ "$t" = direct ] || echo "  $t:${CPU[ka:$t]:-} |${CPU[close:$t]:-} |${CPU[big:$t]:-}"
done
echo "Raw runs: backend CPU (us) behind each target, the same units:"
for t in "${TARGETS[@]}"; do echo "  $t:${BCPU[ka:$t]:-} |${BCPU[close:$t]:-} |${BCPU[big:$t]:-}"; done
for t in strata strata-def; do
    [ -n "${MAIN_PID[$t]:-}" ] && echo "$t wrote $(wc -l <"$TMP/$t.log") log lines during the bench."
done
