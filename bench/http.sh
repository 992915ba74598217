#!/bin/bash
# bench/http.sh — HTTP/1.1 reverse proxying: Strata (mode http) vs HAProxy (mode http) vs
# NGINX (proxy_pass, upstream keepalive), side by side on this machine, over loopback.
#
# One backend: NGINX answering every request with 200 and a 13-byte body ("hello,
# world\n"), keep-alive, BACKEND_WORKERS workers (see bench/README.md for why), plus a
# stub_status port to count the connections the proxies open to it. In front of it, each
# on its own free loopback port, with nproc workers/threads each:
#   strata   listener mode http, backend keepalive max_idle 64, no access log, no
#            forwarded/request-id/traceparent headers (skipped, with a message, when
#            `strata check` rejects that config)
#   haproxy  mode http, option http-keep-alive, http-reuse always, no log
#   nginx    proxy_pass to an upstream with keepalive 64, proxy_http_version 1.1,
#            Connection "", access_log off
#   direct   the backend itself (how fast the backend is: it must not be the bottleneck)
#   1. memory per idle keep-alive client connection: IDLE_CONNS connections opened through
#      each proxy, one request/response on each, then held idle; growth of the proxy
#      processes' VmRSS (all NGINX processes summed) divided by IDLE_CONNS
#   2. ROUNDS rounds, targets interleaved in each round, wrk for RUN_SECONDS each:
#      keep-alive (CONC connections, requests/s and p99 latency) and one request per
#      connection (Connection: close on each request; requests/s); in both, the proxy's
#      CPU (user + system of all its processes, /proc/PID/stat) per request; also the
#      backend's CPU, the connections the proxy opened to it, and the CPU that other work
#      on the machine took during the run (to tell a disturbed run)
# Prints a table of medians, strata / better-peer ratios and the targets. Every process it
# starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), ROUNDS (5), RUN_SECONDS (5), CONC (64),
#   WRK_THREADS (2), IDLE_CONNS (10000), BACKEND_WORKERS (1), BENCH_KEEP=1 keeps the temp
#   dir (configs, logs, every wrk output).
# Run: STRATA_BIN=build/strata bench/http.sh   (about 4 minutes with the defaults)
set -euo pipefail

BENCH_NAME=http-bench
. "$(dirname "$0")/lib.sh"
HERE=$ROOT/bench/http
ROUNDS=${ROUNDS:-5}
RUN_SECONDS=${RUN_SECONDS:-5}
CONC=${CONC:-64}
WRK_THREADS=${WRK_THREADS:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
NPROC=$(nproc)
BODY='hello, world\n'

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
ORIGIN_WORKERS=$BACKEND_WORKERS start_origin backend "$BACK" "$BODY" "$BACK_STATUS"
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
start_strata() {
    local p
    p=$(free_port)
    cat >"$TMP/strata.yaml" <<EOF
workers: $NPROC
listeners:
  - name: web
    listen: 127.0.0.1:$p
    mode: http
    backend: app
    http: { access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }
backends:
  app:
    keepalive: { max_idle: 64, idle_timeout: 30s }
    servers: [ { address: 127.0.0.1:$BACK } ]
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "http-bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    if ! "$STRATA_BIN" check "$TMP/strata.yaml" >"$TMP/strata-check.log" 2>&1; then
        log "http-bench: strata: 'strata check' rejected the bench config, Strata not measured:"
        sed 's/^/    /' "$TMP/strata-check.log" >&2
        return
    fi
    start_bg "$TMP/strata.log" "$STRATA_BIN" run "$TMP/strata.yaml"
    add_target strata Strata "$p" "" "$TMP/strata.log"
}

start_haproxy() {
    local p
    p=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn $HTTP_MAXCONN
    no strict-limits
    nbthread $NPROC
defaults
    mode http
    option http-keep-alive
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
    start_bg "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    add_target haproxy HAProxy "$p" "" "$TMP/haproxy.log"
}

start_nginx() {
    local p
    p=$(free_port)
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NPROC;
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
        keepalive 64;
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
    start_bg "$TMP/nginx.log" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" \
        -e "$TMP/nginx/error.log"
    add_target nginx NGINX "$p" "" "$TMP/nginx.log" "$TMP/nginx/error.log"
}

start_strata
start_haproxy
start_nginx

# Every target must answer GET / with the backend's body, or it is not measured.
MEASURED=()
for t in "${TARGETS[@]}"; do
    if curl -s --max-time 5 "http://127.0.0.1:${PORT[$t]}/" | grep -qx 'hello, world'; then
        MEASURED+=("$t")
    else
        log "http-bench: $t: GET / did not return the backend's body; not measured"
    fi
done
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
    [ "$t" = direct ] || measure_idle "$t"
done

# ---------------------------------------------------------------- wrk rounds
# Per run lists (one value per round): requests/s, p99 (us), proxy CPU per request (us),
# backend connections opened per 1000 requests, backend CPU (cores busy), wrk errors.
declare -A KA_RPS KA_P99 KA_CPU KA_BCONN KA_BCPU CL_RPS CL_CPU CL_BCONN CL_BCPU ERRS

# busy_ticks: clock ticks this machine's CPUs spent in processes (/proc/stat user, nice,
# system) or stolen by the hypervisor; irq and softirq time (loopback's TCP receive work,
# which no process is charged for) left out.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $9 }' /proc/stat; }
# child_ticks: user + system ticks of this shell's finished children (wrk, curl, awk...).
child_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }
# cores TICKS: TICKS spread over RUN_SECONDS, in cores ("%.2f").
cores() { awk -v t="$1" -v s="$RUN_SECONDS" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", t / hz / s }'; }

# wrk_run TARGET MODE ROUND: one wrk run (MODE ka: keep-alive, close: Connection: close).
# Sets RPS, P99 (us), CPU_US (proxy CPU per request), BCONN (backend connections opened per
# 1000 requests), BCPU (backend, cores), OTHER (cores busy with neither wrk, the proxy nor
# the backend: other work on the machine) and adds wrk's errors to ERRS[TARGET].
wrk_run() {
    local t=$1 m=$2 out=$TMP/wrk-$1-$2-$3.out c0=0 c1=0 b0 b1 s0 s1 k0 k1 a0 a1 res req e
    local args=()
    [ "$m" = close ] && args=(-- close)
    a0=$(backend_accepts)
    # shellcheck disable=SC2086  # PROCS: lists of PIDs
    [ "$t" = direct ] || c0=$(cpu_ticks all ${PROCS[$t]})
    # shellcheck disable=SC2086
    b0=$(cpu_ticks all $BACKEND_PROCS)
    k0=$(child_ticks)
    s0=$(busy_ticks)
    "$WRK" -t"$WRK_THREADS" -c"$CONC" -d"${RUN_SECONDS}s" --latency -s "$HERE/wrk.lua" \
        "http://127.0.0.1:${PORT[$t]}/" "${args[@]}" >"$out" 2>&1 || true
    s1=$(busy_ticks)
    k1=$(child_ticks)
    # shellcheck disable=SC2086
    b1=$(cpu_ticks all $BACKEND_PROCS)
    # shellcheck disable=SC2086
    [ "$t" = direct ] || c1=$(cpu_ticks all ${PROCS[$t]})
    a1=$(backend_accepts)
    res=$(grep '^RESULT' "$out" || true)
    req=$(echo "$res" | result_field requests)
    RPS=$(echo "$res" | result_field rps)
    P99=$(echo "$res" | result_field p99_us)
    CPU_US=-
    [ "$t" = direct ] || CPU_US=$(us_per "$c1" "$c0" "${req:-0}")
    BCPU=$(cores $((b1 - b0)))
    OTHER=$(cores $((s1 - s0 - (k1 - k0) - (c1 - c0) - (b1 - b0))))
    BCONN=$(awk -v a="$a1" -v b="$a0" -v n="${req:-0}" \
        'BEGIN { if (n > 0) printf "%.1f", (a - b - 1) * 1000 / n; else print "-" }')
    e=$(echo "$res" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /errors=|timeouts=/) {
        split($i, kv, "="); s += kv[2] } } END { print s + 0 }')
    if [ -z "$res" ]; then
        log "http-bench: $t $m: wrk gave no result: $(tail -3 "$out" | tr '\n' ' ')"
        RPS=- P99=- CPU_US=-
    elif [ "$e" != 0 ]; then
        log "http-bench: $t $m: $e errors: $res"
    fi
    ERRS[$t]=$((${ERRS[$t]:-0} + e))
}

for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        wrk_run "$t" ka "$r"
        KA_RPS[$t]="${KA_RPS[$t]:-} $RPS"
        KA_P99[$t]="${KA_P99[$t]:-} $P99"
        KA_CPU[$t]="${KA_CPU[$t]:-} $CPU_US"
        KA_BCONN[$t]="${KA_BCONN[$t]:-} $BCONN"
        KA_BCPU[$t]="${KA_BCPU[$t]:-} $BCPU"
        OTHERS="${OTHERS:-} $OTHER"
        wrk_run "$t" close "$r"
        CL_RPS[$t]="${CL_RPS[$t]:-} $RPS"
        CL_CPU[$t]="${CL_CPU[$t]:-} $CPU_US"
        CL_BCONN[$t]="${CL_BCONN[$t]:-} $BCONN"
        CL_BCPU[$t]="${CL_BCPU[$t]:-} $BCPU"
        OTHERS="${OTHERS:-} $OTHER"
    done
    log "http-bench: round $r/$ROUNDS done"
done

# ---------------------------------------------------------------- report
declare -A M_KA M_P99 M_KAC M_CL M_CLC M_KBC M_CBC M_KBCPU M_CBCPU
for t in direct strata haproxy nginx; do
    M_KA[$t]=$(echo "${KA_RPS[$t]:-}" | median)
    M_P99[$t]=$(echo "${KA_P99[$t]:-}" | median)
    M_KAC[$t]=$(echo "${KA_CPU[$t]:-}" | median)
    M_CL[$t]=$(echo "${CL_RPS[$t]:-}" | median)
    M_CLC[$t]=$(echo "${CL_CPU[$t]:-}" | median)
    M_KBC[$t]=$(echo "${KA_BCONN[$t]:-}" | median)
    M_CBC[$t]=$(echo "${CL_BCONN[$t]:-}" | median)
    M_KBCPU[$t]=$(echo "${KA_BCPU[$t]:-}" | median)
    M_CBCPU[$t]=$(echo "${CL_BCPU[$t]:-}" | median)
    MEM_PER_CONN[$t]=${MEM_PER_CONN[$t]:--}
done

# verdict RATIO OP LIMIT: "met" when RATIO OP LIMIT holds (OP ge or le), "-" without a ratio.
verdict() {
    awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN { if (r == "-") { print "-"; exit }
        print ((op == "ge" ? r + 0 >= l + 0 : r + 0 <= l + 0) ? "met" : "NOT met") }'
}
# row LABEL DIRECT STRATA HAPROXY NGINX REF OP LIMIT TARGET-TEXT: one line of the table,
# the ratio being STRATA / REF.
row() {
    local q
    q=$(ratio "$3" "$6")
    printf '%-40s %9s %9s %9s %9s %8s  %-24s %s\n' "$1" "$2" "$3" "$4" "$5" "$q" "$9" \
        "$(verdict "$q" "$7" "$8")"
}

echo
echo "Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version), HTTP/1.1 over loopback," \
     "$NPROC workers each; medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s;" \
     "wrk -t$WRK_THREADS -c$CONC; backend NGINX, $BACKEND_WORKERS worker(s)"
echo
printf '%-40s %9s %9s %9s %9s %8s  %-24s %s\n' metric direct strata haproxy nginx ratio \
    "target (ratio)" verdict
row "keep-alive requests/s" "${M_KA[direct]}" "${M_KA[strata]}" "${M_KA[haproxy]}" \
    "${M_KA[nginx]}" "$(best 1 "${M_KA[haproxy]}" "${M_KA[nginx]}")" ge 1.25 \
    ">= 1.25 x better peer"
row "keep-alive p99 latency (us)" "${M_P99[direct]}" "${M_P99[strata]}" "${M_P99[haproxy]}" \
    "${M_P99[nginx]}" "$(best 0 "${M_P99[haproxy]}" "${M_P99[nginx]}")" le 1.00 \
    "<= 1.00 x better peer"
row "1 request per connection, requests/s" "${M_CL[direct]}" "${M_CL[strata]}" \
    "${M_CL[haproxy]}" "${M_CL[nginx]}" "$(best 1 "${M_CL[haproxy]}" "${M_CL[nginx]}")" ge 1.20 \
    ">= 1.20 x better peer"
row "proxy CPU/request, keep-alive (us)" - "${M_KAC[strata]}" "${M_KAC[haproxy]}" \
    "${M_KAC[nginx]}" "$(best 0 "${M_KAC[haproxy]}" "${M_KAC[nginx]}")" le 1.00 \
    "<= 1.00 x better peer"
row "proxy CPU/request, 1 per conn (us)" - "${M_CLC[strata]}" "${M_CLC[haproxy]}" \
    "${M_CLC[nginx]}" "$(best 0 "${M_CLC[haproxy]}" "${M_CLC[nginx]}")" le 1.00 \
    "<= 1.00 x better peer"
row "RSS per idle keep-alive conn (KiB)" - "${MEM_PER_CONN[strata]}" \
    "${MEM_PER_CONN[haproxy]}" "${MEM_PER_CONN[nginx]}" "${MEM_PER_CONN[haproxy]}" le 0.50 \
    "<= 0.50 x HAProxy"
echo
echo "ratio = strata / better peer (HAProxy for memory); p99, CPU and RSS: lower is better."
echo "RSS per idle connection: $IDLE_CONNS connections, one request each, then idle (measured" \
     "once per proxy, before the wrk rounds)."
echo "Backend: direct it served ${M_KA[direct]} requests/s keep-alive and ${M_CL[direct]} with" \
     "1 request per connection. CPU it used (cores of $NPROC, median), keep-alive / 1 per conn:"
for t in "${TARGETS[@]}"; do echo "  $t: ${M_KBCPU[$t]} / ${M_CBCPU[$t]}"; done
echo "Backend connections opened per 1000 requests (upstream reuse), keep-alive / 1 per conn:"
for t in "${TARGETS[@]}"; do echo "  $t: ${M_KBC[$t]} / ${M_CBC[$t]}"; done
echo "Other work on the machine during the runs (cores busy outside wrk, the proxy and the" \
     "backend): median $(echo "$OTHERS" | median), max $(echo "$OTHERS" | tr ' ' '\n' \
     | sort -g | tail -1); more than ~0.1 means the numbers are disturbed."
echo "wrk errors (connect, read, write, timeout, non-2xx), all runs:"
for t in "${TARGETS[@]}"; do echo "  $t: ${ERRS[$t]:-0}"; done
echo "Raw runs: keep-alive requests/s | p99 us | 1 per conn requests/s:"
for t in "${TARGETS[@]}"; do echo "  $t:${KA_RPS[$t]} |${KA_P99[$t]} |${CL_RPS[$t]}"; done
echo "Raw runs: proxy CPU per request (us), keep-alive | 1 per conn:"
for t in "${TARGETS[@]}"; do
    [ "$t" = direct ] || echo "  $t:${KA_CPU[$t]} |${CL_CPU[$t]}"
done
if [ -n "${MAIN_PID[strata]:-}" ]; then
    echo "Strata wrote $(wc -l <"$TMP/strata.log") log lines during the bench (access log off)."
fi
