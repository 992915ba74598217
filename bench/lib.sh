# shellcheck shell=bash disable=SC2034  # (variables set here are used by the scripts)
# bench/lib.sh — shell code shared by the benchmark scripts (run.sh, tls_passthrough.sh,
# acl_flood.sh). Sourced, after `set -euo pipefail`, with `. "$(dirname "$0")/lib.sh"`;
# the script sets BENCH_NAME (the prefix of its messages) first.
#
# Sets: ROOT (the checkout), STRATA_BIN (default build/strata), STRATA_TOOLS (default
#   build/bench), TCPBENCH, PYTHON, NGINX_STREAM_MOD, FD_HARD (hard fd limit) and
#   HAPROXY_MAXCONN (fits FD_HARD).
# Offers:
#   log MSG... / die MSG...            message to stderr / message and exit 1
#   need_peers haproxy [nginx]         installs HAProxy (and NGINX) if missing; sets HAPROXY
#                                      (and NGINX)
#   haproxy_version / nginx_version    their version numbers
#   bench_tmpdir NAME                  makes $TMP, empties PIDS and installs the cleanup trap:
#                                      on exit every PID in PIDS is stopped, $TMP removed
#                                      (kept with BENCH_KEEP=1)
#   start_bg [-a] LOGFILE CMD...       CMD in the background (-a: appending to LOGFILE), its
#                                      PID in $LAST_PID and PIDS
#   start_origin NAME PORT BODY [STATUS_PORT] [-- PREFIX...]
#                                      an NGINX origin in $TMP/NAME (needs NGINX): 200 BODY on
#                                      PORT, unlimited keep-alive, no log; stub_status on
#                                      STATUS_PORT; started under PREFIX (taskset...); its
#                                      PID in $LAST_PID; exits when it does not start;
#                                      ORIGIN_FILES=DIR also serves DIR under /files/
#   ec_cert NAME SNI                   a self-signed P-256 certificate: $TMP/NAME.crt, .key
#   layout_setup                       from LAYOUT (pinned|shared): WORKERS, PIN_CLIENT and
#                                      PIN_PROXY (taskset prefixes; empty when shared)
#   free_port                          a free loopback TCP port
#   is_listening PORT, wait_listening PID PORT..., wait_udp PID PORT
#   not_started LABEL LOGFILE...       LABEL did not start: says so, shows the logs' ends
#   tcpbench_port OUTFILE              the port a tcpbench server reports (waits up to 5 s)
#   procs PID                          PID and its direct children
#   cpu_ticks FIELD PID...             user + system (all) or system (sys) clock ticks
#   busy_ticks, child_ticks            ticks the machine's CPUs were busy; of this shell's
#                                      finished children (wrk, curl...)
#   us_per A B N                       (A - B) clock ticks in microseconds per N, or "-"
#   rss_kib_of PID...                  VmRSS of these processes, summed, in KiB
#   result_field NAME                  the value of NAME in a tcpbench-style RESULT line
#   median, median_ratio               median of the numbers on stdin ("-" ignored / %.2f)
#   ratio A B, best HIGHER VALUE...    A / B, and the max or min of the values

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STRATA_BIN=${STRATA_BIN:-$ROOT/build/strata}
STRATA_TOOLS=${STRATA_TOOLS:-$ROOT/build/bench}
TCPBENCH=$STRATA_TOOLS/tcpbench
PYTHON=/usr/bin/python3
NGINX_STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
FD_HARD=$(ulimit -Hn)
[ "$FD_HARD" = unlimited ] && FD_HARD=1048576
# HAProxy needs 2 fds per connection plus 2 per splice pipe (maxpipes = maxconn/4).
HAPROXY_MAXCONN=$(((FD_HARD - 200) * 2 / 5))

log() { printf '%s\n' "$*" >&2; }
die() { log "$BENCH_NAME: $*"; exit 1; }

# need_peers haproxy [nginx]: installs HAProxy and NGINX from Debian if HAProxy (or, with
# "nginx", NGINX or its stream module) is missing; sets HAPROXY (and NGINX).
need_peers() {
    local nginx=${2:-}
    if ! command -v haproxy >/dev/null || { [ "$nginx" = nginx ] && { ! command -v nginx \
            >/dev/null || [ ! -f "$NGINX_STREAM_MOD" ]; }; }; then
        log "$BENCH_NAME: installing HAProxy and NGINX from Debian"
        "$ROOT/scripts/install-deps.sh" bench >&2
    fi
    HAPROXY=$(command -v haproxy)
    if [ "$nginx" = nginx ]; then
        NGINX=$(command -v nginx)
    fi
}

haproxy_version() { "$HAPROXY" -v | sed -n '1s/HAProxy version \([^ ]*\).*/\1/p'; }
nginx_version() { "$NGINX" -v 2>&1 | sed 's/.*nginx\///'; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "$BENCH_NAME: kept $TMP"
    else
        rm -rf "$TMP"
    fi
}

# bench_tmpdir NAME: TMP=/tmp/NAME.XXXXXX, PIDS=(), cleanup on exit.
bench_tmpdir() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# start_bg [-a] LOGFILE CMD...: starts CMD in the background, records its PID in $LAST_PID.
# With -a it appends to LOGFILE, so that the file can be truncated while CMD runs.
start_bg() {
    local append=0 out
    if [ "$1" = -a ]; then
        append=1
        shift
    fi
    out=$1
    shift
    if [ "$append" = 1 ]; then
        "$@" >>"$out" 2>&1 </dev/null &
    else
        "$@" >"$out" 2>&1 </dev/null &
    fi
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# start_origin NAME PORT BODY [STATUS_PORT] [-- PREFIX...]: see the header. ORIGIN_WORKERS
# (default 1) and NOFILE (the workers' fd limit, when set) tune it; with ORIGIN_FILES (a
# directory) it also serves that directory's files under /files/.
start_origin() {
    local name=$1 port=$2 body=$3 status="" dir="$TMP/$1"
    shift 3
    if [ $# -gt 0 ] && [ "$1" != -- ]; then
        status=$1
        shift
    fi
    if [ "${1:-}" = -- ]; then shift; fi
    mkdir -p "$dir"
    {
        echo "daemon off;"
        echo "master_process on;"
        echo "worker_processes ${ORIGIN_WORKERS:-1};"
        [ -n "${NOFILE:-}" ] && echo "worker_rlimit_nofile $NOFILE;"
        echo "pid $dir/nginx.pid;"
        echo "error_log $dir/error.log warn;"
        echo "events { worker_connections 65536; }"
        echo "http {"
        echo "    access_log off;"
        echo "    server_tokens off;"
        echo "    default_type text/plain;"
        echo "    keepalive_timeout 60s;"
        echo "    keepalive_requests 100000000;"
        echo "    server { listen 127.0.0.1:$port reuseport backlog=4096;"
        echo "             location / { return 200 \"$body\"; }"
        [ -n "${ORIGIN_FILES:-}" ] && echo "             location /files/ { alias $ORIGIN_FILES/; }"
        echo "    }"
        [ -n "$status" ] && echo "    server { listen 127.0.0.1:$status; location / { stub_status; } }"
        echo "}"
    } >"$dir.conf"
    start_bg "$dir.log" "$@" "$NGINX" -p "$dir" -c "$dir.conf" -e "$dir/error.log"
    # shellcheck disable=SC2086  # no status port: nothing to wait for
    wait_listening "$LAST_PID" "$port" $status \
        || { tail -20 "$dir/error.log" >&2 || true; die "the origin $name (NGINX) did not start"; }
}

# ec_cert NAME SNI: a self-signed ECDSA P-256 certificate for SNI, valid 2 days, in
# $TMP/NAME.crt with its key in $TMP/NAME.key; exits when openssl fails.
ec_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TMP/$1.key" -out "$TMP/$1.crt" -days 2 -subj "/CN=$2" \
        -addext "subjectAltName=DNS:$2" >/dev/null 2>&1 || die "openssl req failed"
}

# layout_setup: LAYOUT=pinned (issue 10's method: the load generator on CPU 0, each proxy
# with 1 worker/thread and the origin on CPU 1) or shared (nproc workers, nothing pinned).
layout_setup() {
    case ${LAYOUT:=pinned} in
        pinned)
            [ "$(nproc)" -ge 2 ] || die "the pinned layout needs 2 CPUs (LAYOUT=shared does not)"
            command -v taskset >/dev/null || die "taskset missing (util-linux)"
            WORKERS=1
            PIN_CLIENT=(taskset -c 0)
            PIN_PROXY=(taskset -c 1) ;;
        shared)
            WORKERS=$(nproc)
            PIN_CLIENT=()
            PIN_PROXY=() ;;
        *) die "LAYOUT must be pinned or shared" ;;
    esac
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# is_listening PORT: a LISTEN socket on PORT exists (no probe connection is made).
is_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p="$hex" '$4 == "0A" { split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6
}

# wait_listening PID PORT...: up to 10 s; fails if PID dies.
wait_listening() {
    local pid=$1 port
    shift
    for port in "$@"; do
        for _ in $(seq 100); do
            is_listening "$port" && continue 2
            kill -0 "$pid" 2>/dev/null || return 1
            sleep 0.1
        done
        return 1
    done
}

# wait_udp PID PORT: a UDP socket bound to PORT exists within 10 s; fails if PID dies.
wait_udp() {
    local hex
    hex=$(printf '%04X' "$2")
    for _ in $(seq 100); do
        awk -v p="$hex" '{ split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' \
            /proc/net/udp /proc/net/udp6 && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# not_started LABEL LOGFILE...: LABEL (a proxy) did not start; its logs' last lines to stderr.
not_started() {
    log "$BENCH_NAME: $1 did not start; log:"
    shift
    tail -20 "$@" >&2
}

# add_target NAME LABEL PORT EXTRA_PORTS LOGFILE...: once the process just started (LAST_PID)
# listens on PORT (and on each of EXTRA_PORTS, space-separated, may be empty), NAME joins
# TARGETS with PORT[NAME] and MAIN_PID[NAME]; else LABEL did not start (its logs shown).
add_target() {
    local name=$1 label=$2 port=$3 extra=$4
    shift 4
    # shellcheck disable=SC2086 # EXTRA_PORTS is a word list on purpose
    if wait_listening "$LAST_PID" "$port" $extra; then
        TARGETS+=("$name")
        PORT[$name]=$port
        MAIN_PID[$name]=$LAST_PID
    else
        not_started "$label" "$@" || true
    fi
}

# tcpbench_port OUTFILE: the port of a `tcpbench serve-*`/`udp-echo` started with port 0
# ("LISTENING port=N" in OUTFILE), waiting up to 5 s for it; empty if it does not come.
tcpbench_port() {
    for _ in $(seq 50); do
        grep -q LISTENING "$1" && break
        sleep 0.1
    done
    sed -n 's/^LISTENING port=//p' "$1"
}

# procs PID: PID and its direct children (NGINX master + workers), at this moment.
procs() {
    local children
    children=$(pgrep -P "$1" | tr '\n' ' ' || true)
    echo "$1 $children"
}

# cpu_ticks FIELD PID...: clock ticks of user + system (FIELD=all) or system (FIELD=sys) time
# of these processes, all their threads included.
cpu_ticks() {
    local f=$1 p
    shift
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done \
        | awk -v f="$f" '{ sub(/^.*\) /, ""); t += $13 + (f == "all" ? $12 : 0) } END { print t + 0 }'
}

# busy_ticks: clock ticks this machine's CPUs spent in processes or stolen by the hypervisor
# (/proc/stat user, nice, system, steal). A kernel that accounts CPU time by tick without
# CONFIG_IRQ_TIME_ACCOUNTING charges the irq and softirq ticks (loopback's TCP receive work,
# mostly) to the process they interrupt, so there they count as busy too, else the CPU left
# to "other work" (busy minus the processes measured) comes out negative; a kernel with it
# charges them to no process, and they are left out. Unknown config: left out.
irq_ticks_in_processes() {
    local config
    config=$({ zcat /proc/config.gz || cat "/boot/config-$(uname -r)"; } 2>/dev/null || true)
    case $config in
        *CONFIG_IRQ_TIME_ACCOUNTING=y*) echo 0 ;;
        *CONFIG_TICK_CPU_ACCOUNTING=y*) echo 1 ;;
        *) echo 0 ;;
    esac
}
IRQ_TICKS_IN_PROCESSES=$(irq_ticks_in_processes)
busy_ticks() {
    awk -v irq="$IRQ_TICKS_IN_PROCESSES" \
        '$1 == "cpu" { print $2 + $3 + $4 + $9 + (irq ? $7 + $8 : 0) }' /proc/stat
}
# child_ticks: user + system ticks of this shell's finished children (wrk, curl, awk...).
child_ticks() { awk '{ sub(/^.*\) /, ""); print $14 + $15 }' "/proc/$$/stat"; }

# steal_ticks: clock ticks the hypervisor has taken from this machine's CPUs (/proc/stat
# `steal`): time a run loses without any process on the machine being busy.
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }

# us_per A B N: (A - B) clock ticks in microseconds per N ("%.1f"), "-" if N is not > 0.
us_per() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.1f", (a - b) * 1e6 / hz / n; else print "-" }'
}

# rss_kib_of PID...: VmRSS of these processes (e.g. from `procs`), summed, in KiB; a PID that
# is gone counts 0. It reads only these PIDs' files, so a process of the machine exiting
# meanwhile cannot fail it.
rss_kib_of() {
    local p
    for p in "$@"; do cat "/proc/$p/status" 2>/dev/null || true; done \
        | awk '/^VmRSS:/ { t += $2 } END { print t + 0 }'
}

result_field() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p; s/^RESULT $1=\([^ ]*\).*/\1/p" | head -1; }

# median: of the numbers on stdin (space or line separated, "-" left out); "-" if none.
median() { tr ' ' '\n' | awk 'NF && $1 != "-" { print }' | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# median_ratio: of the numbers on stdin, one a line, printed "%.2f"; "-" if none.
median_ratio() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.2f\n",
        NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-";
    else printf "%.2f", a / b }'; }
# best HIGHER VALUE...: the max (HIGHER=1) or min of the values that are not "-", else "-".
best() {
    local higher=$1
    shift
    printf '%s\n' "$@" | awk -v hi="$higher" '$1 != "-" && $1 != "" {
        if (!n++ || (hi == 1 && $1 + 0 > b + 0) || (hi != 1 && $1 + 0 < b + 0)) b = $1 }
        END { print n ? b : "-" }'
}
