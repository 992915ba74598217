#!/bin/bash
# bench/acl_flood.sh — does a flood of denied connects slow the accepted traffic?
#
# Backends: bench/tcpbench serve-echo and serve-sink-source. In front of them, each on its
# own free loopback ports, with WORKERS workers/threads and an ACL refusing 127.0.0.2:
#   strata   listeners with `acl: { deny: [ 127.0.0.2 ] }` (and an admin port for /metrics)
#   haproxy  mode tcp, `tcp-request connection reject if { src 127.0.0.2 }` (stats socket)
# Accepted traffic comes from 127.0.0.1: `tcpbench connrate` (connect, 64 B each way, close;
# CONC in flight) and `tcpbench throughput` (one bulk connection, server -> client). The
# flood comes from 127.0.0.2: `tcpbench connflood` (FLOOD_CONC connects in flight, each
# waiting for the proxy to close/reset it), started 0.5 s before the measured run and
# ending 0.5 s after it. Conditions, rotated in each round so drift hits all alike:
#   alone         accepted traffic only
#   flood@RATE    with a flood capped at FLOOD_RATE connects/s
#   flood@max     with an uncapped flood (as fast as one client thread goes)
#   (and, for the proxy's cost, the uncapped flood alone: proxy CPU per denied connection)
# Prints medians of ROUNDS rounds, ratios (with flood / alone: median of the per-round
# ratios, and the ratio of the medians), the flood's denied
# connections per second, and the proxies' own denial counters (Strata
# strata_listener_denied_total from /metrics, HAProxy frontend `dcon` from `show stat`).
# Note: on a 2-core machine the flood client and the kernel's handshakes for the flood use
# the same CPUs as the accepted traffic, so part of any slowdown is not the proxy's doing;
# the CPU per denied connection is the proxy's own share.
# Every process it starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), STRATA_TOOLS (default build/bench),
#   ROUNDS (5), RUN_SECONDS (3), CONC (32), FLOOD_CONC (64), FLOOD_RATE (2000), WORKERS (2),
#   BENCH_KEEP=1 keeps the temp dir (configs, logs).
# Run: STRATA_BIN=/tmp/strata-bench bench/acl_flood.sh   (about 4 minutes)
set -euo pipefail

BENCH_NAME=acl-flood
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-32}
FLOOD_CONC=${FLOOD_CONC:-64}
FLOOD_RATE=${FLOOD_RATE:-2000}
WORKERS=${WORKERS:-2}
FLOOD_SRC=127.0.0.2

[ -x "$TCPBENCH" ] || die "$TCPBENCH missing: run 'make build/bench/tcpbench'"
case "$("$TCPBENCH" 2>&1 || true)" in *connflood*) ;; *) false ;; esac || die "$TCPBENCH has no connflood subcommand: rebuild it"
[ -x "$STRATA_BIN" ] || die "$STRATA_BIN missing: run 'make'"
need_peers haproxy

bench_tmpdir strata-aclflood

# ---------------------------------------------------------------- backends
start_bg -a "$TMP/sink-source.out" "$TCPBENCH" serve-sink-source 0
start_bg -a "$TMP/echo.out" "$TCPBENCH" serve-echo 0
BULK_BACK=$(tcpbench_port "$TMP/sink-source.out")
ECHO_BACK=$(tcpbench_port "$TMP/echo.out")
[ -n "$BULK_BACK" ] && [ -n "$ECHO_BACK" ] || die "backends did not start"

declare -A BULK_PORT ECHO_PORT MAIN_PID
TARGETS=()

# ---------------------------------------------------------------- proxies
STRATA_ADMIN=$(free_port)
b=$(free_port)
e=$(free_port)
cat >"$TMP/strata.yaml" <<EOF
workers: $WORKERS
admin: { listen: "127.0.0.1:$STRATA_ADMIN" }
timeouts: { connect: 2s, idle: 10m, drain: 1s }
listeners:
  - name: bulk
    listen: "127.0.0.1:$b"
    mode: tcp
    backend: bulk
    max_connections: 0
    acl: { deny: [ $FLOOD_SRC ] }
  - name: echo
    listen: "127.0.0.1:$e"
    mode: tcp
    backend: echo
    max_connections: 0
    acl: { deny: [ $FLOOD_SRC ] }
backends:
  bulk: { retries: 0, servers: [ "127.0.0.1:$BULK_BACK" ] }
  echo: { retries: 0, servers: [ "127.0.0.1:$ECHO_BACK" ] }
EOF
start_bg -a "$TMP/strata.log" "$STRATA_BIN" run "$TMP/strata.yaml"
if wait_listening "$LAST_PID" "$b" "$e" "$STRATA_ADMIN"; then
    TARGETS+=(strata)
    BULK_PORT[strata]=$b
    ECHO_PORT[strata]=$e
    MAIN_PID[strata]=$LAST_PID
else
    not_started Strata "$TMP/strata.log"
fi

b=$(free_port)
e=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    nbthread $WORKERS
    stats socket $TMP/haproxy.sock mode 600 level admin
defaults
    mode tcp
    option splice-auto
    timeout connect 2s
    timeout client 10m
    timeout server 10m
frontend bulk
    bind 127.0.0.1:$b
    tcp-request connection reject if { src $FLOOD_SRC }
    default_backend bulk
frontend echo
    bind 127.0.0.1:$e
    tcp-request connection reject if { src $FLOOD_SRC }
    default_backend echo
backend bulk
    server s1 127.0.0.1:$BULK_BACK
backend echo
    server s1 127.0.0.1:$ECHO_BACK
EOF
start_bg -a "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
if wait_listening "$LAST_PID" "$b" "$e"; then
    TARGETS+=(haproxy)
    BULK_PORT[haproxy]=$b
    ECHO_PORT[haproxy]=$e
    MAIN_PID[haproxy]=$LAST_PID
else
    not_started HAProxy "$TMP/haproxy.log"
fi
[ ${#TARGETS[@]} -gt 0 ] || die "no proxy started"

# denied_count TARGET: the proxy's own count of connections refused by its ACL, so far.
denied_count() {
    case "$1" in
        strata)
            curl -s --max-time 5 "http://127.0.0.1:$STRATA_ADMIN/metrics" \
                | awk '$1 ~ /^strata_listener_denied_total[{]/ { s += $2 } END { print s + 0 }' ;;
        haproxy)
            "$PYTHON" - "$TMP/haproxy.sock" <<'EOF'
import csv, io, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
d = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    d += c
rows = list(csv.reader(io.StringIO(d.decode().lstrip("# "))))
col = rows[0].index("dcon")
print(sum(int(r[col] or 0) for r in rows[1:] if len(r) > col and r[1] == "FRONTEND"))
EOF
            ;;
    esac
}

# Strata logs one line per connection, denied ones too: count them per run, then empty
# the file (it is opened for appending) so that a long flood does not fill the disk.
LOG_DENIED_LINES=0
LOG_DENIED_BYTES=0
strata_log_rotate() {
    local f=$TMP/strata.log
    grep -v ' conn ' "$f" >>"$TMP/strata-other.log" || true
    LOG_DENIED_LINES=$((LOG_DENIED_LINES + $(grep -c ' end=denied' "$f" || true)))
    LOG_DENIED_BYTES=$((LOG_DENIED_BYTES + $({ grep ' end=denied' "$f" || true; } | wc -c)))
    : >"$f"
}

# ---------------------------------------------------------------- sanity
for t in "${TARGETS[@]}"; do
    d0=$(denied_count "$t")
    out=$("$TCPBENCH" connflood 127.0.0.1 "${ECHO_PORT[$t]}" 1 1 "$FLOOD_SRC" 2>/dev/null || true)
    d1=$(denied_count "$t")
    ok=$("$TCPBENCH" connrate 127.0.0.1 "${ECHO_PORT[$t]}" 1 1 2>/dev/null | result_field conns \
        || true)
    if [ "$(echo "$out" | result_field open)" = 0 ] && [ "$(echo "$out" | result_field denied)" -gt 0 ] \
            && [ "${ok:-0}" -gt 0 ]; then
        log "acl-flood: $t: $FLOOD_SRC denied ($(echo "$out" | result_field denied) by the client," \
            "$((d1 - d0)) by the proxy's counter), 127.0.0.1 accepted ($ok exchanges)"
    else
        die "$t: ACL check failed: flood '$out', accepted exchanges '${ok:-0}'"
    fi
done
[ -n "${MAIN_PID[strata]:-}" ] && strata_log_rotate

# ---------------------------------------------------------------- runs
# run_cond TARGET KIND COND: one measured run. KIND: cr (connrate), tp (throughput) or cpu
# (flood alone, proxy CPU per denied connection). COND: alone, rate or max.
declare -A V FL FD PD TW
run_cond() {
    local t=$1 kind=$2 cond=$3 port fpid="" fout=$TMP/flood.out v c0 c1 d0 d1
    if [ "$kind" = tp ]; then port=${BULK_PORT[$t]}; else port=${ECHO_PORT[$t]}; fi
    d0=$(denied_count "$t")
    c0=$(cpu_ticks all "${MAIN_PID[$t]}")
    if [ "$cond" != alone ]; then
        : >"$fout"
        "$TCPBENCH" connflood 127.0.0.1 "$port" $((RUN_SECONDS + 1)) "$FLOOD_CONC" "$FLOOD_SRC" \
            "$([ "$cond" = rate ] && echo "$FLOOD_RATE" || echo 0)" >"$fout" 2>/dev/null &
        fpid=$!
        PIDS+=("$fpid")
        sleep 0.5
    fi
    case "$kind" in
        cr) v=$("$TCPBENCH" connrate 127.0.0.1 "$port" "$RUN_SECONDS" "$CONC" 2>/dev/null \
                | result_field connrate_cps || true) ;;
        tp) v=$("$TCPBENCH" throughput 127.0.0.1 "$port" "$RUN_SECONDS" 1 down 2>/dev/null \
                | result_field throughput_MBps || true) ;;
        cpu) v=- ;;
    esac
    [ -n "$fpid" ] && { wait "$fpid" 2>/dev/null || true; }
    c1=$(cpu_ticks all "${MAIN_PID[$t]}")
    d1=$(denied_count "$t")
    local key=$t.$kind.$cond
    V[$key]="${V[$key]:-} ${v:-0}"
    if [ -n "$fpid" ]; then
        FL[$key]="${FL[$key]:-} $(result_field flood_cps <"$fout")"
        FD[$key]="${FD[$key]:-} $((d1 - d0))"
        if [ "$(result_field open <"$fout")" != 0 ]; then
            log "acl-flood: $t: some flood connections were left open: $(cat "$fout")"
        fi
        if [ "$kind" = cpu ]; then
            TW[$t]="${TW[$t]:-} $(ss -Htan state time-wait "( sport = :${ECHO_PORT[$t]} or sport = :${BULK_PORT[$t]} )" 2>/dev/null | wc -l)"
            PD[$t]="${PD[$t]:-} $(us_per "$c1" "$c0" "$(result_field denied <"$fout")")"
        fi
    fi
    [ "$t" = strata ] && strata_log_rotate
    sleep 0.3 # let the flood's closing handshakes settle
}

log "acl-flood: targets: ${TARGETS[*]} ($WORKERS workers each, $ROUNDS rounds of ${RUN_SECONDS}s," \
    "conc $CONC, flood conc $FLOOD_CONC from $FLOOD_SRC, capped flood $FLOOD_RATE/s)"
COND_CR=(alone rate max)
COND_TP=(alone max)
for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        # Rotate the order of the conditions with the round.
        for i in 0 1 2; do
            run_cond "$t" cr "${COND_CR[$(((i + r) % 3))]}"
        done
        for i in 0 1; do
            run_cond "$t" tp "${COND_TP[$(((i + r) % 2))]}"
        done
        run_cond "$t" cpu max
    done
    log "acl-flood: round $r/$ROUNDS done"
done

m() { echo "${V[$1]:-}" | median; }
# pratio KEY_WITH KEY_ALONE: median over rounds of (with flood / alone) in the same round,
# the two runs being seconds apart: steadier than a ratio of medians on a shared machine.
pratio() {
    awk -v w="${V[$1]:-}" -v a="${V[$2]:-}" 'BEGIN { n = split(w, x, " "); split(a, y, " ")
        for (i = 1; i <= n; i++) if (y[i] + 0 > 0) printf "%.4f\n", x[i] / y[i] }' | median_ratio
}
mfl() { echo "${FL[$1]:-}" | median; }

echo
echo "Denied-connect flood from $FLOOD_SRC vs accepted traffic from 127.0.0.1: Strata vs HAProxy" \
     "$(haproxy_version), $WORKERS workers each," \
     "medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s"
echo
echo "ratio: with flood / alone (median of the per-round ratios; ratio of the medians in brackets)"
echo
printf '%-9s %-34s %10s %10s %15s %10s\n' proxy "accepted traffic" alone "flood" "ratio" "denied/s"
for t in "${TARGETS[@]}"; do
    a=$(m "$t.cr.alone")
    for c in rate max; do
        w=$(m "$t.cr.$c")
        printf '%-9s %-34s %10s %10s %15s %10s\n' "$t" \
            "connections/s, flood $([ $c = rate ] && echo "capped $FLOOD_RATE/s" || echo uncapped)" \
            "$a" "$w" "$(pratio "$t.cr.$c" "$t.cr.alone") ($(ratio "$w" "$a"))" "$(mfl "$t.cr.$c")"
    done
    a=$(m "$t.tp.alone")
    w=$(m "$t.tp.max")
    printf '%-9s %-34s %10s %10s %15s %10s\n' "$t" "bulk MB/s, flood uncapped" "$a" "$w" \
        "$(pratio "$t.tp.max" "$t.tp.alone") ($(ratio "$w" "$a"))" "$(mfl "$t.tp.max")"
done
echo
printf '%-9s %-44s %10s\n' proxy "flood alone, uncapped" median
for t in "${TARGETS[@]}"; do
    printf '%-9s %-44s %10s\n' "$t" "denied connections/s" "$(mfl "$t.cpu.max")"
    printf '%-9s %-44s %10s\n' "$t" "proxy CPU per denied connection (us)" "$(echo "${PD[$t]:-}" | median)"
    printf '%-9s %-44s %10s\n' "$t" "TIME_WAIT sockets on its ports, after it" "$(echo "${TW[$t]:-}" | median)"
done
echo
echo "Raw runs (connections/s alone | capped | uncapped; MB/s alone | uncapped; denied/s):"
for t in "${TARGETS[@]}"; do
    echo "  $t:${V[$t.cr.alone]} |${V[$t.cr.rate]} |${V[$t.cr.max]};${V[$t.tp.alone]} |${V[$t.tp.max]};" \
         "flood${FL[$t.cr.rate]} |${FL[$t.cr.max]} |${FL[$t.cpu.max]}"
    echo "  $t: CPU per denied (us):${PD[$t]}"
done
echo "Denials counted by the proxies themselves (all flood runs, sum), vs the flood clients:"
for t in "${TARGETS[@]}"; do
    proxy=0
    for k in cr.rate cr.max tp.max cpu.max; do
        for n in ${FD[$t.$k]:-}; do proxy=$((proxy + n)); done
    done
    echo "  $t: $([ "$t" = strata ] && echo strata_listener_denied_total || echo "frontend dcon")" \
         "grew by $proxy; total now $(denied_count "$t")"
done
if [ -n "${MAIN_PID[strata]:-}" ]; then
    strata_log_rotate
    echo "Strata log: $LOG_DENIED_LINES 'end=denied' lines ($LOG_DENIED_BYTES bytes; each worker" \
         "logs at most 20 refusals a second, then a line counting the rest);" \
         "other lines: $(wc -l <"$TMP/strata-other.log")"
    grep -v ' ready: \| stopping\|stopped$' "$TMP/strata-other.log" | head -5 | sed 's/^/  strata: /' || true
    echo "Both proxies reset denied connections (no TIME_WAIT); the flood client counts" \
         "closes and resets alike as denied."
fi
