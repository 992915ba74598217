#!/bin/bash
# bench/run.sh — Strata against HAProxy and NGINX (stream), side by side on this machine.
#
# One backend (bench/tcpbench serve-*) and, in front of it, each on its own free loopback
# port: Strata (connection log off, as the peers'), HAProxy (mode tcp, option splice-auto),
# NGINX (stream proxy_pass), plus the backend reached directly. Layouts (LAYOUT):
#   pinned   (default; issue 10's method) the load generator on CPU 0; each proxy with 1
#            worker/thread and the backends together on CPU 1
#   shared   nproc workers each, nothing pinned (the older view)
#   1. memory per idle proxied connection: N idle connections through each proxy, delta
#      of the proxy processes' total VmRSS (all NGINX processes summed) divided by N
#   2. ROUNDS rounds, targets interleaved in each round (order rotated): bulk throughput
#      (one connection, server -> client, Gbit/s, proxy CPU per MiB), keep-alive round
#      trips (CONC connections each sending 64 B and waiting for the 64 B echo, again and
#      again: exchanges/s, p50/p99, proxy CPU per exchange) and new connections per second
#      (connect, 64 B each way, close; CONC in flight; p50/p99, proxy CPU per connection)
#   3. in the same rounds, UDP (Strata and NGINX `listen ... udp`; HAProxy has no UDP
#      proxy): round trips per second through a UDP echo backend, 64 B and 1 KiB
#      datagrams, UDP_CONC client sockets (flows) each waiting for its echo
# Prints a table of medians and ratios. Every process it starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), STRATA_TOOLS (default build/bench),
#   LAYOUT (pinned), ROUNDS (4), RUN_SECONDS (3), CONC (32), UDP_CONC (64), IDLE_CONNS
#   (2000), BENCH_KEEP=1 keeps the temp dir (configs and logs).
# Run: make bench   (builds build/strata and build/bench/tcpbench first)
set -euo pipefail

BENCH_NAME=bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-4}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-32}
UDP_CONC=${UDP_CONC:-64}
IDLE_CONNS=${IDLE_CONNS:-2000}
NPROC=$(nproc)
layout_setup

[ -x "$TCPBENCH" ] || die "$TCPBENCH missing: run 'make bench' (or build bench/tcpbench.c)"
need_peers haproxy nginx

bench_tmpdir strata-bench

# ---------------------------------------------------------------- backends
start_bg "$TMP/sink-source.out" "${PIN_PROXY[@]}" "$TCPBENCH" serve-sink-source 0
start_bg "$TMP/echo.out" "${PIN_PROXY[@]}" "$TCPBENCH" serve-echo 0
start_bg "$TMP/udp-echo.out" "${PIN_PROXY[@]}" "$TCPBENCH" udp-echo 0
BULK_BACK=$(tcpbench_port "$TMP/sink-source.out")
ECHO_BACK=$(tcpbench_port "$TMP/echo.out")
UDP_BACK=$(tcpbench_port "$TMP/udp-echo.out")
[ -n "$BULK_BACK" ] && [ -n "$ECHO_BACK" ] && [ -n "$UDP_BACK" ] || die "backends did not start"

declare -A BULK_PORT ECHO_PORT UDP_PORT MAIN_PID
TARGETS=(direct)
BULK_PORT[direct]=$BULK_BACK
ECHO_PORT[direct]=$ECHO_BACK
UDP_PORT[direct]=$UDP_BACK

# ---------------------------------------------------------------- Strata
start_strata() {
    local b e u
    b=$(free_port)
    e=$(free_port)
    u=$(free_port)
    cat >"$TMP/strata.yaml" <<EOF
workers: $WORKERS
timeouts: { connect: 2s, idle: 10m, drain: 1s }
listeners:
  - { name: bulk, listen: "127.0.0.1:$b", mode: tcp, backend: bulk, max_connections: 0,
      log: { format: off } }
  - { name: echo, listen: "127.0.0.1:$e", mode: tcp, backend: echo, max_connections: 0,
      log: { format: off } }
  - { name: udp, listen: "127.0.0.1:$u", mode: udp, backend: udp, udp: { flow_idle: 10s },
      log: { format: off } }
backends:
  bulk: { retries: 0, servers: [ "127.0.0.1:$BULK_BACK" ] }
  echo: { retries: 0, servers: [ "127.0.0.1:$ECHO_BACK" ] }
  udp: { servers: [ "127.0.0.1:$UDP_BACK" ] }
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    start_bg "$TMP/strata.log" "${PIN_PROXY[@]}" "$STRATA_BIN" run "$TMP/strata.yaml"
    if wait_listening "$LAST_PID" "$b" "$e" && wait_udp "$LAST_PID" "$u"; then
        TARGETS+=(strata)
        BULK_PORT[strata]=$b
        ECHO_PORT[strata]=$e
        UDP_PORT[strata]=$u
        MAIN_PID[strata]=$LAST_PID
    else
        not_started Strata "$TMP/strata.log"
    fi
}

start_haproxy() {
    local b e
    b=$(free_port)
    e=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    nbthread $WORKERS
defaults
    mode tcp
    option splice-auto
    timeout connect 2s
    timeout client 10m
    timeout server 10m
frontend bulk
    bind 127.0.0.1:$b
    default_backend bulk
frontend echo
    bind 127.0.0.1:$e
    default_backend echo
backend bulk
    server s1 127.0.0.1:$BULK_BACK
backend echo
    server s1 127.0.0.1:$ECHO_BACK
EOF
    start_bg "$TMP/haproxy.log" "${PIN_PROXY[@]}" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    if wait_listening "$LAST_PID" "$b" "$e"; then
        TARGETS+=(haproxy)
        BULK_PORT[haproxy]=$b
        ECHO_PORT[haproxy]=$e
        MAIN_PID[haproxy]=$LAST_PID
    else
        not_started HAProxy "$TMP/haproxy.log"
    fi
}

start_nginx() {
    local b e u
    b=$(free_port)
    e=$(free_port)
    u=$(free_port)
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx.conf" <<EOF
load_module $NGINX_STREAM_MOD;
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile $FD_HARD;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 65536; }
stream {
    server { listen 127.0.0.1:$b reuseport; proxy_pass 127.0.0.1:$BULK_BACK; proxy_timeout 10m; }
    server { listen 127.0.0.1:$e reuseport; proxy_pass 127.0.0.1:$ECHO_BACK; proxy_timeout 10m; }
    server { listen 127.0.0.1:$u udp reuseport; proxy_pass 127.0.0.1:$UDP_BACK; proxy_timeout 10s; }
}
EOF
    start_bg "$TMP/nginx.log" "${PIN_PROXY[@]}" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" \
        -e "$TMP/nginx/error.log"
    if wait_listening "$LAST_PID" "$b" "$e" && wait_udp "$LAST_PID" "$u"; then
        TARGETS+=(nginx)
        BULK_PORT[nginx]=$b
        ECHO_PORT[nginx]=$e
        UDP_PORT[nginx]=$u
        MAIN_PID[nginx]=$LAST_PID
    else
        not_started NGINX "$TMP/nginx.log" "$TMP/nginx/error.log" || true
    fi
}

start_strata
start_haproxy
start_nginx
log "bench: targets: ${TARGETS[*]} (layout $LAYOUT, $WORKERS worker(s) each, $ROUNDS rounds of" \
    "${RUN_SECONDS}s)"

tcp_mem_pages() { awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' \
    /proc/net/sockstat; }

declare -A MEM_PER_CONN KMEM_PER_CONN
# The idle clients read stdin from this FIFO, which nobody writes: they hold until killed.
mkfifo "$TMP/hold.fifo"
exec 3<>"$TMP/hold.fifo"
measure_idle() {
    local t=$1 before after kbefore kafter out pid
    [ "$t" = direct ] && return
    out=$TMP/idle-$t.out
    # Warm up: one connection through, so lazily built state is not counted per connection.
    "$TCPBENCH" idle 127.0.0.1 "${ECHO_PORT[$t]}" 1 1 </dev/null >/dev/null 2>&1 || true
    sleep 0.5
    # shellcheck disable=SC2046  # procs: a list of PIDs
    before=$(rss_kib_of $(procs "${MAIN_PID[$t]}"))
    kbefore=$(tcp_mem_pages)
    # Holds the connections until killed (bounded by its own 120 s hold time).
    "$TCPBENCH" idle 127.0.0.1 "${ECHO_PORT[$t]}" "$IDLE_CONNS" 120 >"$out" 2>&1 <&3 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 300); do
        grep -q '^RESULT' "$out" && break
        sleep 0.1
    done
    sleep 1
    # shellcheck disable=SC2046
    after=$(rss_kib_of $(procs "${MAIN_PID[$t]}"))
    kafter=$(tcp_mem_pages)
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ! grep -q "^RESULT idle_open=$IDLE_CONNS " "$out"; then
        log "bench: $t: idle connections failed: $(cat "$out")"
        return
    fi
    MEM_PER_CONN[$t]=$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" \
        'BEGIN { printf "%.2f", (a - b) / n }')
    KMEM_PER_CONN[$t]=$(awk -v a="$kafter" -v b="$kbefore" -v n="$IDLE_CONNS" -v p="$(getconf PAGESIZE)" \
        'BEGIN { printf "%.2f", (a - b) * p / 1024 / n }')
    log "bench: $t: idle $IDLE_CONNS conns: RSS ${before} -> ${after} KiB, ${MEM_PER_CONN[$t]} KiB/conn (kernel TCP mem ${KMEM_PER_CONN[$t]} KiB/conn, all sockets)"
    sleep 1
}

for t in "${TARGETS[@]}"; do
    measure_idle "$t"
done

# Per run lists (one value per round) by "SCENARIO:TARGET": RATE (bulk: Gbit/s; ka:
# exchanges/s; cr: connections/s; u64, u1k: UDP round trips/s), P50/P99 (us), CPU (proxy
# CPU per MiB, exchange or connection, us).
# shellcheck disable=SC2034  # read through med (eval)
declare -A RATE P50 P99 CPU
STEAL=() # cores stolen by the hypervisor during each tcpbench run
add() { eval "$1[\$2]=\"\${$1[\$2]:-} \$3\""; }
# proxy_ticks TARGET: the CPU ticks of the proxy's processes so far (0 for direct).
proxy_ticks() {
    # shellcheck disable=SC2046  # procs: a list of PIDs
    if [ "$1" = direct ]; then echo 0; else cpu_ticks all $(procs "${MAIN_PID[$1]}"); fi
}

# run_tcp TARGET SCENARIO: one tcpbench run (bulk, ka or cr) and its figures.
run_tcp() {
    local t=$1 sc=$2 out c0 c1 s0 s1 units
    s0=$(steal_ticks)
    c0=$(proxy_ticks "$t")
    case $sc in
        bulk) out=$("${PIN_CLIENT[@]}" "$TCPBENCH" throughput 127.0.0.1 "${BULK_PORT[$t]}" \
                  "$RUN_SECONDS" 1 down 2>/dev/null || true) ;;
        ka) out=$("${PIN_CLIENT[@]}" "$TCPBENCH" connrate 127.0.0.1 "${ECHO_PORT[$t]}" \
                "$RUN_SECONDS" "$CONC" keep 2>/dev/null || true) ;;
        cr) out=$("${PIN_CLIENT[@]}" "$TCPBENCH" connrate 127.0.0.1 "${ECHO_PORT[$t]}" \
                "$RUN_SECONDS" "$CONC" 2>/dev/null || true) ;;
    esac
    c1=$(proxy_ticks "$t")
    s1=$(steal_ticks)
    STEAL+=("$(awk -v t=$((s1 - s0)) -v s="$RUN_SECONDS" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t / hz / s }')")
    if [ "$sc" = bulk ]; then
        units=$(echo "$out" | result_field bytes | awk '{ printf "%.3f", $1 / 1048576 }')
        add RATE "$sc:$t" "$(echo "$out" | result_field throughput_MBps \
            | awk '{ printf "%.2f", $1 * 8 / 1000 }')"
    else
        units=$(echo "$out" | result_field conns)
        add RATE "$sc:$t" "$(echo "$out" | result_field connrate_cps)"
        add P50 "$sc:$t" "$(echo "$out" | result_field p50_us)"
        add P99 "$sc:$t" "$(echo "$out" | result_field p99_us)"
    fi
    [ "$t" = direct ] || add CPU "$sc:$t" "$(us_per "$c1" "$c0" "${units:-0}")"
}

# rotated ROUND T...: the targets, rotated by ROUND - 1 places (who runs first changes).
rotated() {
    local r=$1
    shift
    local a=("$@") n=$# i
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${a[$(((i + r - 1) % n))]}"; done
}

for r in $(seq "$ROUNDS"); do
    for sc in bulk ka cr; do
        # shellcheck disable=SC2046  # a word list
        for t in $(rotated "$r" "${TARGETS[@]}"); do run_tcp "$t" "$sc"; done
    done
    # shellcheck disable=SC2046
    for t in $(rotated "$r" "${TARGETS[@]}"); do
        [ -n "${UDP_PORT[$t]:-}" ] || continue
        add RATE "u64:$t" "$("${PIN_CLIENT[@]}" "$TCPBENCH" udp-blast 127.0.0.1 "${UDP_PORT[$t]}" \
            "$RUN_SECONDS" 64 "$UDP_CONC" 2>/dev/null | result_field udp_rtps || true)"
        add RATE "u1k:$t" "$("${PIN_CLIENT[@]}" "$TCPBENCH" udp-blast 127.0.0.1 "${UDP_PORT[$t]}" \
            "$RUN_SECONDS" 1024 "$UDP_CONC" 2>/dev/null | result_field udp_rtps || true)"
    done
    log "bench: round $r/$ROUNDS done"
done

med() { local v; eval "v=\${$1[\$2]:-}"; echo "$v" | median; }
# row LABEL HIGHER LIST SCENARIO: medians per target, strata / direct and strata / better peer.
row() {
    local label=$1 higher=$2 arr=$3 sc=$4 t v=()
    for t in direct strata haproxy nginx; do v+=("$(med "$arr" "$sc:$t")"); done
    printf '%-42s %9s %9s %9s %9s %8s %9s\n' "$label" "${v[@]}" "$(ratio "${v[1]}" "${v[0]}")" \
        "$(ratio "${v[1]}" "$(best "$higher" "${v[2]}" "${v[3]}")")"
}
for t in direct strata haproxy nginx; do
    MEM_PER_CONN[$t]=${MEM_PER_CONN[$t]:--}
    KMEM_PER_CONN[$t]=${KMEM_PER_CONN[$t]:--}
done
MEM_PER_CONN[direct]=-

echo
echo "Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version), L4 over loopback," \
     "layout $LAYOUT ($WORKERS worker(s) each$([ "$LAYOUT" = pinned ] && echo ", proxy + backends" \
     "on CPU 1, tcpbench on CPU 0")); medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s"
echo
printf '%-42s %9s %9s %9s %9s %8s %9s\n' metric direct strata haproxy nginx /direct /peer
row "bulk throughput, 1 conn (Gbit/s)" 1 RATE bulk
row "   proxy CPU per MiB (us)" 0 CPU bulk
row "keep-alive round trips/s (conc $CONC, 64 B)" 1 RATE ka
row "   p50 latency (us)" 0 P50 ka
row "   p99 latency (us)" 0 P99 ka
row "   proxy CPU per round trip (us)" 0 CPU ka
row "new connections/s (conc $CONC)" 1 RATE cr
row "   p50 latency (us)" 0 P50 cr
row "   p99 latency (us)" 0 P99 cr
row "   proxy CPU per connection (us)" 0 CPU cr
printf '%-42s %9s %9s %9s %9s %8s %9s\n' "RSS per idle conn (KiB)" - "${MEM_PER_CONN[strata]}" \
    "${MEM_PER_CONN[haproxy]}" "${MEM_PER_CONN[nginx]}" - \
    "$(ratio "${MEM_PER_CONN[strata]}" "$(best 0 "${MEM_PER_CONN[haproxy]}" "${MEM_PER_CONN[nginx]}")")"
row "UDP round trips/s, 64 B ($UDP_CONC flows)" 1 RATE u64
row "UDP round trips/s, 1 KiB ($UDP_CONC flows)" 1 RATE u1k
echo
echo "/peer = strata / better peer (higher rates; lower latency, CPU and RSS); HAProxy has no UDP proxy."
echo "Kernel side (not in RSS): /proc/net/sockstat TCP mem grew by" \
     "strata ${KMEM_PER_CONN[strata]}, haproxy ${KMEM_PER_CONN[haproxy]}, nginx ${KMEM_PER_CONN[nginx]}" \
     "KiB per idle connection (4 sockets each: client, proxy x2, backend; mostly 0 for idle sockets" \
     "whose buffers are empty). Every idle connection also holds 2 file descriptors in the proxy."
echo "Hypervisor steal during the TCP runs (cores taken from this machine, /proc/stat):" \
     "median $(echo "${STEAL[*]}" | median), max $(printf '%s\n' "${STEAL[@]}" | sort -g | tail -1);" \
     "more than ~0.05 means the rates are disturbed (single rounds fall by half or more)."
echo "Raw runs (bulk Gbit/s | keep-alive round trips/s | connections/s | UDP 64 B | UDP 1 KiB):"
for t in "${TARGETS[@]}"; do
    echo "  $t:${RATE[bulk:$t]:-} |${RATE[ka:$t]:-} |${RATE[cr:$t]:-} |${RATE[u64:$t]:-} |${RATE[u1k:$t]:-}"
done
