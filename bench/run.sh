#!/bin/bash
# bench/run.sh — Strata against HAProxy and NGINX (stream), side by side on this machine.
#
# One backend (bench/tcpbench serve-*) and, in front of it, each on its own free loopback
# port: Strata, HAProxy (mode tcp, option splice-auto), NGINX (stream proxy_pass), plus the
# backend reached directly. Worker count is the same for all three: nproc.
#   1. memory per idle proxied connection: N idle connections through each proxy, delta
#      of the proxy processes' total VmRSS (all NGINX processes summed) divided by N
#   2. ROUNDS rounds, targets interleaved in each round: bulk throughput (one connection,
#      server -> client, MB/s) and new connections per second (connect, 64 B each way,
#      close; CONC in flight)
#   3. in the same rounds, UDP (Strata and NGINX `listen ... udp`; HAProxy has no UDP
#      proxy): round trips per second through a UDP echo backend, 64 B and 1 KiB
#      datagrams, UDP_CONC client sockets (flows) each waiting for its echo
# Prints a table of medians and ratios. Every process it starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), STRATA_TOOLS (default build/bench),
#   ROUNDS (5), RUN_SECONDS (3), CONC (32), UDP_CONC (64), IDLE_CONNS (2000), BENCH_KEEP=1 keeps the
#   temp dir (configs and logs).
# Run: make bench   (builds build/strata and build/bench/tcpbench first)
set -euo pipefail

BENCH_NAME=bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-32}
UDP_CONC=${UDP_CONC:-64}
IDLE_CONNS=${IDLE_CONNS:-2000}
NPROC=$(nproc)

[ -x "$TCPBENCH" ] || die "$TCPBENCH missing: run 'make bench' (or build bench/tcpbench.c)"
need_peers haproxy nginx

bench_tmpdir strata-bench

# ---------------------------------------------------------------- backends
start_bg "$TMP/sink-source.out" "$TCPBENCH" serve-sink-source 0
SS_PID=$LAST_PID
start_bg "$TMP/echo.out" "$TCPBENCH" serve-echo 0
ECHO_PID=$LAST_PID
start_bg "$TMP/udp-echo.out" "$TCPBENCH" udp-echo 0
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
workers: $NPROC
timeouts: { connect: 2s, idle: 10m, drain: 1s }
listeners:
  - { name: bulk, listen: "127.0.0.1:$b", mode: tcp, backend: bulk, max_connections: 0 }
  - { name: echo, listen: "127.0.0.1:$e", mode: tcp, backend: echo, max_connections: 0 }
  - { name: udp, listen: "127.0.0.1:$u", mode: udp, backend: udp, udp: { flow_idle: 10s } }
backends:
  bulk: { retries: 0, servers: [ "127.0.0.1:$BULK_BACK" ] }
  echo: { retries: 0, servers: [ "127.0.0.1:$ECHO_BACK" ] }
  udp: { servers: [ "127.0.0.1:$UDP_BACK" ] }
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    start_bg "$TMP/strata.log" "$STRATA_BIN" run "$TMP/strata.yaml"
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
    nbthread $NPROC
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
    start_bg "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
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
worker_processes $NPROC;
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
    start_bg "$TMP/nginx.log" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" -e "$TMP/nginx/error.log"
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
log "bench: targets: ${TARGETS[*]} (nproc $NPROC, $ROUNDS rounds of ${RUN_SECONDS}s)"

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
    before=$(rss_kib "${MAIN_PID[$t]}")
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
    after=$(rss_kib "${MAIN_PID[$t]}")
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

declare -A TP CR CPU U64 U1K
for t in "${TARGETS[@]}"; do
    measure_idle "$t"
done

for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        v=$("$TCPBENCH" throughput 127.0.0.1 "${BULK_PORT[$t]}" "$RUN_SECONDS" 1 down 2>/dev/null \
            | result_field throughput_MBps || true)
        TP[$t]="${TP[$t]:-} ${v:-0}"
        # shellcheck disable=SC2046  # procs: a list of PIDs
        c0=$([ "$t" = direct ] || cpu_ticks all $(procs "${MAIN_PID[$t]}"))
        out=$("$TCPBENCH" connrate 127.0.0.1 "${ECHO_PORT[$t]}" "$RUN_SECONDS" "$CONC" 2>/dev/null \
            || true)
        v=$(echo "$out" | result_field connrate_cps)
        CR[$t]="${CR[$t]:-} ${v:-0}"
        if [ "$t" != direct ]; then
            # proxy CPU per proxied connection, in microseconds
            # shellcheck disable=SC2046  # procs: a list of PIDs
            CPU[$t]="${CPU[$t]:-} $(us_per "$(cpu_ticks all $(procs "${MAIN_PID[$t]}"))" "$c0" \
                "$(echo "$out" | result_field conns)")"
        fi
        if [ -n "${UDP_PORT[$t]:-}" ]; then
            v=$("$TCPBENCH" udp-blast 127.0.0.1 "${UDP_PORT[$t]}" "$RUN_SECONDS" 64 "$UDP_CONC" \
                2>/dev/null | result_field udp_rtps || true)
            U64[$t]="${U64[$t]:-} ${v:-0}"
            v=$("$TCPBENCH" udp-blast 127.0.0.1 "${UDP_PORT[$t]}" "$RUN_SECONDS" 1024 "$UDP_CONC" \
                2>/dev/null | result_field udp_rtps || true)
            U1K[$t]="${U1K[$t]:-} ${v:-0}"
        fi
    done
    log "bench: round $r/$ROUNDS done"
done

declare -A MTP MCR MCPU MU64 MU1K
for t in direct strata haproxy nginx; do
    MU64[$t]=$(echo "${U64[$t]:-}" | median)
    MU1K[$t]=$(echo "${U1K[$t]:-}" | median)
    MTP[$t]=$(echo "${TP[$t]:-}" | median)
    MCR[$t]=$(echo "${CR[$t]:-}" | median)
    MCPU[$t]=$(echo "${CPU[$t]:-}" | median)
    MEM_PER_CONN[$t]=${MEM_PER_CONN[$t]:--}
    KMEM_PER_CONN[$t]=${KMEM_PER_CONN[$t]:--}
done
MEM_PER_CONN[direct]=-
best_tp=$(best 1 "${MTP[haproxy]}" "${MTP[nginx]}")
best_cr=$(best 1 "${MCR[haproxy]}" "${MCR[nginx]}")
best_mem=$(best 0 "${MEM_PER_CONN[haproxy]}" "${MEM_PER_CONN[nginx]}")
best_cpu=$(best 0 "${MCPU[haproxy]}" "${MCPU[nginx]}")

echo
echo "Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version)," \
     "$NPROC workers each, loopback, medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s"
echo
printf '%-38s %10s %10s %10s %10s %10s %12s\n' metric direct strata haproxy nginx \
    strata/direct strata/best-peer
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "bulk throughput, 1 conn (MB/s)" \
    "${MTP[direct]}" "${MTP[strata]}" "${MTP[haproxy]}" "${MTP[nginx]}" \
    "$(ratio "${MTP[strata]}" "${MTP[direct]}")" "$(ratio "${MTP[strata]}" "$best_tp")"
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "new connections/s (conc $CONC)" \
    "${MCR[direct]}" "${MCR[strata]}" "${MCR[haproxy]}" "${MCR[nginx]}" \
    "$(ratio "${MCR[strata]}" "${MCR[direct]}")" "$(ratio "${MCR[strata]}" "$best_cr")"
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "proxy CPU per new conn (us, lower=better)" \
    - "${MCPU[strata]}" "${MCPU[haproxy]}" "${MCPU[nginx]}" \
    - "$(ratio "${MCPU[strata]}" "$best_cpu")"
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "RSS per idle conn (KiB, lower=better)" \
    - "${MEM_PER_CONN[strata]}" "${MEM_PER_CONN[haproxy]}" "${MEM_PER_CONN[nginx]}" \
    - "$(ratio "${MEM_PER_CONN[strata]}" "$best_mem")"
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "UDP round trips/s, 64 B ($UDP_CONC flows)" \
    "${MU64[direct]}" "${MU64[strata]}" - "${MU64[nginx]}" \
    "$(ratio "${MU64[strata]}" "${MU64[direct]}")" "$(ratio "${MU64[strata]}" "${MU64[nginx]}")"
printf '%-38s %10s %10s %10s %10s %10s %12s\n' "UDP round trips/s, 1 KiB ($UDP_CONC flows)" \
    "${MU1K[direct]}" "${MU1K[strata]}" - "${MU1K[nginx]}" \
    "$(ratio "${MU1K[strata]}" "${MU1K[direct]}")" "$(ratio "${MU1K[strata]}" "${MU1K[nginx]}")"
echo
echo "Kernel side (not in RSS): /proc/net/sockstat TCP mem grew by" \
     "strata ${KMEM_PER_CONN[strata]}, haproxy ${KMEM_PER_CONN[haproxy]}, nginx ${KMEM_PER_CONN[nginx]}" \
     "KiB per idle connection (4 sockets each: client, proxy x2, backend; mostly 0 for idle sockets" \
     "whose buffers are empty). Every idle connection also holds 2 file descriptors in the proxy."
echo "Raw runs: throughput MB/s:"
for t in "${TARGETS[@]}"; do echo "  $t:${TP[$t]}"; done
echo "Raw runs: connections/s:"
for t in "${TARGETS[@]}"; do echo "  $t:${CR[$t]}"; done
echo "Raw runs: UDP round trips/s, 64 B / 1 KiB (HAProxy has no UDP proxy):"
for t in "${TARGETS[@]}"; do
    if [ -n "${UDP_PORT[$t]:-}" ]; then echo "  $t:${U64[$t]} /${U1K[$t]}"; fi
done
if [ -n "${MAIN_PID[strata]:-}" ]; then
    echo "Note: Strata writes one log line per connection to stderr (a file here); HAProxy and" \
         "NGINX have no per-connection log in these configs."
fi
