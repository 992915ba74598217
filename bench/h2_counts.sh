#!/bin/bash
# bench/h2_counts.sh — what one HTTP/2 request costs each proxy, counted rather than timed,
# so that a shared, noisy machine does not change the answer: for a fixed h2load run
# (h2load -n$REQUESTS -c$CONC -m$STREAMS -t1, h2 clients, HTTP/1.1 keep-alive to an NGINX
# origin, as bench/h2.sh's h2c and h2tls scenarios), per request:
#   syscalls   all system calls of the proxy's process (perf stat on the syscall
#              tracepoints, all threads), and of them
#   wakeups    epoll_wait returns (each is one wake-up of the event loop)
#   writes     write/writev/sendmsg/sendto (to the client and the origin)
#   reads      read/readv/recvfrom/recvmsg
#   instr      user-space instructions (callgrind; the VM has no hardware counters for
#              `perf stat -e instructions:u`), a second instance of the proxy run under
#              valgrind, counters zeroed after a warm-up
# The proxies: Strata (http.h2 on the listener), HAProxy (nbthread 1, `proto h2` / `alpn
# h2`, http-reuse always), NGINX (1 worker, `http2`, upstream keepalive), configured as in
# bench/h2.sh; one worker/thread each, pinned with the origin on CPU 1, h2load on CPU 0.
#
# Environment: STRATA_BIN (build/strata), REQUESTS (20000), CONC (50), STREAMS (10),
#   SCENARIOS ("h2c h2tls"), TARGETS ("strata haproxy nginx"), COUNT ("syscalls callgrind"),
#   BENCH_KEEP=1 keeps the temp dir (configs, perf stat and callgrind outputs).
# Run: STRATA_BIN=build/strata bench/h2_counts.sh   (1-3 minutes)
set -euo pipefail

BENCH_NAME=h2-counts
. "$(dirname "$0")/lib.sh"
REQUESTS=${REQUESTS:-20000}
CONC=${CONC:-50}
STREAMS=${STREAMS:-10}
SCENARIOS=${SCENARIOS:-h2c h2tls}
TARGETS=${TARGETS:-strata haproxy nginx}
COUNT=${COUNT:-syscalls callgrind}
SNI=bench.example.test
for t in h2load perf valgrind callgrind_control taskset openssl curl; do
    command -v "$t" >/dev/null || die "$t missing (scripts/install-deps.sh bench)"
done
need_peers haproxy nginx
bench_tmpdir strata-h2-counts

ec_cert ec "$SNI"
cat "$TMP/ec.crt" "$TMP/ec.key" >"$TMP/haproxy.pem"
ORIGIN=$(free_port)
start_origin origin "$ORIGIN" 'hello, world\n' -- taskset -c 1

# config T SCEN PORT: the target's configuration file for one scenario (path on stdout).
config() {
    local t=$1 sc=$2 p=$3 f=$TMP/$1-$2.conf
    case $t:$sc in
        strata:*)
            {
                echo "workers: 1"
                echo "listeners:"
                echo "  - name: $sc"
                echo "    listen: 127.0.0.1:$p"
                echo "    mode: http"
                [ "$sc" = h2tls ] && printf '    tls: { certificates: [ { cert: %s, key: %s } ], alpn: [h2, http/1.1] }\n' \
                    "$TMP/ec.crt" "$TMP/ec.key"
                echo "    http:"
                echo "      access_log: { format: off }"
                echo "      forwarded: none"
                echo "      request_id: none"
                echo "      traceparent: false"
                [ "$sc" = h2tls ] && echo "      h2: { enabled: true }" || echo "      h2: { cleartext: true }"
                echo "    backend: origin"
                echo "backends:"
                echo "  origin: { keepalive: { max_idle: 1000 }, servers: [ 127.0.0.1:$ORIGIN ] }"
            } >"$f" ;;
        haproxy:*)
            local bind="proto h2"
            [ "$sc" = h2tls ] && bind="ssl crt $TMP/haproxy.pem alpn h2"
            cat >"$f" <<EOF
global
    maxconn 4096
    nbthread 1
    ssl-default-bind-curves X25519
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$p $bind
    default_backend origin
backend origin
    server s1 127.0.0.1:$ORIGIN pool-purge-delay 30s
EOF
            ;;
        nginx:*)
            local listen="listen 127.0.0.1:$p http2;"
            [ "$sc" = h2tls ] && listen="listen 127.0.0.1:$p ssl http2; ssl_certificate $TMP/ec.crt; ssl_certificate_key $TMP/ec.key;"
            mkdir -p "$TMP/nginx-$sc"
            cat >"$f" <<EOF
daemon off;
master_process off;
pid $TMP/nginx-$sc/nginx.pid;
error_log $TMP/nginx-$sc/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    ssl_ecdh_curve X25519;
    upstream origin { server 127.0.0.1:$ORIGIN; keepalive 1000; keepalive_requests 100000000; }
    server {
        $listen
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
            ;;
    esac
    echo "$f"
}

# command T CONF: how to run the target in the foreground with one worker/thread.
command_of() {
    case $1 in
        strata) echo "$STRATA_BIN run $2" ;;
        haproxy) echo "$HAPROXY -db -f $2" ;;
        nginx) echo "$NGINX -p $TMP/nginx-$sc -c $2" ;;
    esac
}

url() { [ "$2" = h2tls ] && echo "https://127.0.0.1:$1/" || echo "http://127.0.0.1:$1/"; }

# load PORT SCEN N OUT: h2load on CPU 0; the requests that succeeded.
load() {
    local ok
    taskset -c 0 h2load -n"$3" -c"$CONC" -m"$STREAMS" -t1 "$(url "$1" "$2")" >"$4" 2>&1 || true
    ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$4")
    [ "${ok:-0}" = "$3" ] || log "h2-counts: $(grep '^requests:' "$4" || tail -1 "$4")"
    echo "${ok:-0}"
}

# ready T PID PORT SCEN: listening and answering over HTTP/2, or the run stops.
ready() {
    local flag=--http2-prior-knowledge
    [ "$4" = h2tls ] && flag=--http2
    wait_listening "$2" "$3" || die "$1 did not start"
    for _ in $(seq 50); do
        [ "$(curl -sk --max-time 5 "$flag" "$(url "$3" "$4")" 2>/dev/null)" = "hello, world" ] && return 0
        sleep 0.2
    done
    die "$1 ($4) does not answer over HTTP/2"
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

declare -A R
per() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", a / n; else print "-" }'; }

# by_syscalls T SCEN: syscalls, wake-ups, writes and reads per request, the target native,
# counted by the kernel's syscall tracepoints (perf stat): strace -c would slow every
# syscall so much that each wake-up finds many more events ready than it does natively.
SYSCALLS="epoll_wait epoll_ctl write writev sendto sendmsg read readv recvfrom recvmsg"
by_syscalls() {
    local t=$1 sc=$2 p pid spid ok out=$TMP/$1-$2.perfstat ev=raw_syscalls:sys_enter s
    for s in $SYSCALLS; do ev="$ev,syscalls:sys_enter_$s"; done
    p=$(free_port)
    # shellcheck disable=SC2046  # the command line's words
    start_bg "$TMP/$t-$sc.log" taskset -c 1 $(command_of "$t" "$(config "$t" "$sc" "$p")")
    pid=$LAST_PID
    ready "$t" "$pid" "$p" "$sc"
    load "$p" "$sc" "$((CONC * STREAMS * 4))" "$TMP/warm.h2load" >/dev/null # origin connections
    perf stat -x, -e "$ev" -p "$pid" -o "$out" &
    spid=$!
    sleep 1
    ok=$(load "$p" "$sc" "$REQUESTS" "$TMP/$t-$sc-syscalls.h2load")
    kill -INT "$spid"
    wait "$spid" 2>/dev/null || true
    stop "$pid"
    count() { awk -F, -v re="$1" '$3 ~ re { s += $1 } END { print s + 0 }' "$out"; }
    R[$t:$sc:syscalls]=$(per "$(count '^raw_syscalls:sys_enter$')" "$ok")
    R[$t:$sc:wakeups]=$(per "$(count '_epoll_wait$')" "$ok")
    R[$t:$sc:writes]=$(per "$(count '_(write|writev|sendto|sendmsg)$')" "$ok")
    R[$t:$sc:reads]=$(per "$(count '_(read|readv|recvfrom|recvmsg)$')" "$ok")
    R[$t:$sc:ctl]=$(per "$(count '_epoll_ctl$')" "$ok")
}

# by_callgrind T SCEN: user-space instructions per request, the target under valgrind.
by_callgrind() {
    local t=$1 sc=$2 p pid ok f
    p=$(free_port)
    # shellcheck disable=SC2046
    start_bg "$TMP/$t-$sc-cg.log" taskset -c 1 valgrind --tool=callgrind \
        --callgrind-out-file="$TMP/$t-$sc.callgrind" $(command_of "$t" "$(config "$t" "$sc" "$p")")
    pid=$LAST_PID
    ready "$t" "$pid" "$p" "$sc"
    load "$p" "$sc" "$((CONC * STREAMS * 2))" "$TMP/warm.h2load" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    ok=$(load "$p" "$sc" "$REQUESTS" "$TMP/$t-$sc-cg.h2load")
    callgrind_control -d "$pid" >/dev/null 2>&1
    stop "$pid"
    f=$(ls "$TMP/$t-$sc.callgrind".* | head -1)
    R[$t:$sc:instr]=$(awk -v n="$ok" '/^totals:/ { printf "%.0f", $2 / n }' "$f")
}

for sc in $SCENARIOS; do
    for t in $TARGETS; do
        case " $COUNT " in *" syscalls "*) by_syscalls "$t" "$sc" ;; esac
        case " $COUNT " in *" callgrind "*) by_callgrind "$t" "$sc" ;; esac
        log "h2-counts: $sc $t done"
    done
done

echo "Per HTTP/2 request: h2load -n$REQUESTS -c$CONC -m$STREAMS -t1 (CPU 0), proxy + origin on CPU 1"
printf '%-7s %-8s %10s %10s %10s %10s %10s %12s\n' scen target syscalls wakeups writes reads epoll_ctl \
    "instr (user)"
for sc in $SCENARIOS; do
    for t in $TARGETS; do
        printf '%-7s %-8s %10s %10s %10s %10s %10s %12s\n' "$sc" "$t" "${R[$t:$sc:syscalls]:--}" \
            "${R[$t:$sc:wakeups]:--}" "${R[$t:$sc:writes]:--}" "${R[$t:$sc:reads]:--}" \
            "${R[$t:$sc:ctl]:--}" "${R[$t:$sc:instr]:--}"
    done
done
