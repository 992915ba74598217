#!/bin/bash
# bench/tls.sh — TLS termination in front of a plain HTTP/1.1 origin: Strata vs HAProxy vs
# NGINX, side by side on this machine, over loopback.
#
# Origin: NGINX, one worker, answering every request with 200 and "hello, world\n" over plain
# HTTP/1.1 keep-alive (the backend of bench/http.sh). In front of it, each on its own free
# loopback port, terminating TLS with the same certificate (ECDSA P-256, or RSA 2048 with
# KEY_TYPE=rsa; both made here with openssl) and the same TLS settings (TLS 1.2 and 1.3,
# session tickets on, group X25519, ALPN http/1.1 only, no HTTP/2), no access log, no added
# headers, keep-alive to the origin:
#   strata   mode http, tls { certificates, alpn: [http/1.1], curves: X25519, ciphersuites in
#            OpenSSL's default order (as the peers), session_tickets: true }, backend keepalive
#            max_idle 1000 (skipped, with `strata check`'s message, if it rejects that config)
#   haproxy  bind ... ssl crt ... alpn http/1.1, ssl-default-bind-curves X25519, ssl-min-ver
#            TLSv1.2, http-reuse always, no log
#   nginx    listen ... ssl, ssl_ecdh_curve X25519, ssl_session_tickets on, upstream keepalive
#            1000, proxy_http_version 1.1, Connection "", access_log off
# Scenarios 1-3: one worker/thread per proxy; the proxy and the origin pinned on CPU 1, the
# load generator on CPU 0 (taskset):
#   1. ka      TLS keep-alive requests/s: wrk -t1 -c$CONC over https (p50/p99 from wrk)
#   2. full    full handshakes/s: STIME_PROCS x `openssl s_time -new -www PAGE` (each loop:
#              new TCP connection, full handshake, GET / HTTP/1.1 with Host and Connection:
#              close, read to EOF, close; s_time prints one character per connection, "r"
#              when resumed: counted, must be 0)
#   3. resumed resumed handshakes/s (session tickets): the same with `s_time -reuse`
#              (every connection must show "r")
#   3b. rwrk   one request per TLS connection, resumed: wrk -c$CONC with "Connection: close"
#              on every request (wrk resumes each reconnect's session: p50/p99 from wrk)
#   4. scale   full handshakes/s with SCALE_WORKERS workers/threads per proxy (NGINX: worker
#              processes), nothing pinned (OpenSSL 3.0's scaling across threads)
# For each: the rate, latency (wrk: p50/p99; s_time: mean time per connection), the proxy's
# CPU (utime + stime of all its processes and threads, /proc/PID/stat) per request or
# handshake, and the proxy's own counters as a cross-check (HAProxy: ssl_sess,
# ssl_reused_sess; Strata: strata_listener_tls_handshakes_total, _resumed_total; NGINX has none).
# ROUNDS rounds of RUN_SECONDS per run, targets interleaved and their order rotated each
# round; the table shows medians and strata / better peer. Every process it starts is
# stopped by PID on exit.
#
# Why s_time and not wrk or h2load for handshakes: wrk and h2load (`-H 'Connection: close'`)
# both resume the TLS session on every reconnect (HAProxy counted ~100% ssl_reused_sess), so
# they measure resumed handshakes; s_time -new does a full one each time.
#
# Environment: STRATA_BIN (default build/strata), ROUNDS (4), RUN_SECONDS (3), CONC (50, wrk
#   connections), WRK_THREADS (1), STIME_PROCS (4, s_time clients on CPU 0), SCALE_WORKERS
#   (2), SCALE_PROCS (4, s_time clients in scenario 4), KEY_TYPE (ec | rsa), SCENARIOS
#   ("ka full resumed rwrk scale"), BENCH_KEEP=1 keeps the temp dir (configs, certificates, logs,
#   every client output), STRATA_TLS_EXTRA (more lines for Strata's `tls:` mapping,
#   e.g. $'\n      min_version: tlsv1.3').
# Run: STRATA_BIN=build/strata bench/tls.sh   (about 3.5 minutes with the defaults)
set -euo pipefail

BENCH_NAME=tls-bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-4}
RUN_SECONDS=${RUN_SECONDS:-3}
CONC=${CONC:-50}
WRK_THREADS=${WRK_THREADS:-1}
STIME_PROCS=${STIME_PROCS:-4}
SCALE_WORKERS=${SCALE_WORKERS:-2}
SCALE_PROCS=${SCALE_PROCS:-4}
KEY_TYPE=${KEY_TYPE:-ec}
SCENARIOS=${SCENARIOS:-ka full resumed rwrk scale}
STRATA_TLS_EXTRA=${STRATA_TLS_EXTRA:-}
CLIENT_CPU=0
PROXY_CPU=1
BODY='hello, world\n'
SNI=bench.example.test
# What s_time sends: "GET <page> HTTP/1.0\r\n\r\n". A page that ends the request line and
# adds fields turns it into this HTTP/1.1 request with Host and Connection: close (a bare
# HTTP/1.0 request without Host is refused by some proxies, with 400, and not proxied):
STIME_PAGE=$'/ HTTP/1.1\r\nHost: '"$SNI"$'\r\nConnection: close\r\nUser-Agent: s_time'
REQUEST="GET $STIME_PAGE HTTP/1.0"$'\r\n\r\n'

[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (client on CPU $CLIENT_CPU, proxy on CPU $PROXY_CPU)"
[ -x "$PYTHON" ] || die "$PYTHON missing"
command -v openssl >/dev/null || die "openssl missing"
command -v curl >/dev/null || die "curl missing (scripts/install-deps.sh)"
command -v taskset >/dev/null || die "taskset missing (util-linux)"
if ! command -v wrk >/dev/null; then
    log "tls-bench: installing wrk from Debian"
    "$ROOT/scripts/install-deps.sh" bench >&2
fi
WRK=$(command -v wrk)
need_peers haproxy nginx
case "$KEY_TYPE" in ec | rsa) ;; *) die "KEY_TYPE must be ec or rsa" ;; esac
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

bench_tmpdir strata-tlsterm
PIN_CLIENT=(taskset -c "$CLIENT_CPU")
PIN_PROXY=(taskset -c "$PROXY_CPU")

# ---------------------------------------------------------------- certificates
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TMP/ec.key" -out "$TMP/ec.crt" -days 2 -subj "/CN=$SNI" \
    -addext "subjectAltName=DNS:$SNI" >/dev/null 2>&1 || die "openssl req (ECDSA) failed"
openssl req -x509 -newkey rsa:2048 -nodes \
    -keyout "$TMP/rsa.key" -out "$TMP/rsa.crt" -days 2 -subj "/CN=$SNI" \
    -addext "subjectAltName=DNS:$SNI" >/dev/null 2>&1 || die "openssl req (RSA) failed"
CERT=$TMP/$KEY_TYPE.crt
KEY=$TMP/$KEY_TYPE.key
cat "$CERT" "$KEY" >"$TMP/$KEY_TYPE.haproxy.pem"

# ---------------------------------------------------------------- the origin
ORIGIN=$(free_port)
start_origin origin "$ORIGIN" "$BODY" -- "${PIN_PROXY[@]}"
ORIGIN_PID=$LAST_PID

# pin_origin CPULIST: moves the origin's processes (master and worker) to CPULIST.
pin_origin() {
    local p
    for p in $(procs "$ORIGIN_PID"); do taskset -a -p -c "$1" "$p" >/dev/null; done
}

declare -A PORT MAIN_PID PROCS HSOCK SADMIN RESUMES NOTIFY BAD
TARGETS1=()
TARGETS2=()

# ---------------------------------------------------------------- proxies
# Each start_* NAME WORKERS PIN(1|0) starts one instance; NAME is strata/haproxy/nginx
# (scenarios 1-3) or strata2/haproxy2/nginx2 (scenario 4). add_target appends to TARGETS.
pin_cmd() { if [ "$1" = 1 ]; then echo "${PIN_PROXY[*]}"; fi; }

start_strata() {
    local name=$1 w=$2 pin=$3 p
    p=$(free_port)
    SADMIN[$name]=$(free_port)
    cat >"$TMP/$name.yaml" <<EOF
workers: $w
admin: { listen: 127.0.0.1:${SADMIN[$name]} }
listeners:
  - name: tls
    listen: 127.0.0.1:$p
    mode: http
    tls:
      certificates: [ { cert: $CERT, key: $KEY } ]
      alpn: [http/1.1]
      curves: X25519
      ciphersuites: TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256
      session_tickets: true$STRATA_TLS_EXTRA
    http: { access_log: { format: off }, forwarded: none, request_id: none, traceparent: false }
    backend: origin
backends:
  origin: { keepalive: { max_idle: 1000 }, servers: [ 127.0.0.1:$ORIGIN ] }
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "tls-bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    if ! "$STRATA_BIN" check "$TMP/$name.yaml" >"$TMP/$name-check.log" 2>&1; then
        log "tls-bench: $name: 'strata check' rejected the TLS config (TLS termination not" \
            "built yet?), Strata not measured:"
        sed 's/^/    /' "$TMP/$name-check.log" >&2
        return
    fi
    # shellcheck disable=SC2046  # pin_cmd: a command prefix or nothing
    start_bg "$TMP/$name.log" $(pin_cmd "$pin") "$STRATA_BIN" run "$TMP/$name.yaml"
    add_target "$name" "Strata ($w workers)" "$p" "" "$TMP/$name.log"
}

start_haproxy() {
    local name=$1 w=$2 pin=$3 p
    p=$(free_port)
    HSOCK[$name]=$TMP/$name.sock
    cat >"$TMP/$name.cfg" <<EOF
global
    maxconn 4096
    nbthread $w
    ssl-default-bind-curves X25519
    ssl-default-bind-options ssl-min-ver TLSv1.2
    stats socket $TMP/$name.sock level user
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 60s
frontend tls
    bind 127.0.0.1:$p ssl crt $TMP/$KEY_TYPE.haproxy.pem alpn http/1.1
    default_backend origin
backend origin
    server s1 127.0.0.1:$ORIGIN pool-purge-delay 30s
EOF
    # shellcheck disable=SC2046
    start_bg "$TMP/$name.log" $(pin_cmd "$pin") "$HAPROXY" -db -f "$TMP/$name.cfg"
    add_target "$name" "HAProxy ($w threads)" "$p" "" "$TMP/$name.log"
}

start_nginx() {
    local name=$1 w=$2 pin=$3 p
    p=$(free_port)
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name.conf" <<EOF
daemon off;
master_process on;
worker_processes $w;
pid $TMP/$name/nginx.pid;
error_log $TMP/$name/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_session_tickets on;
    ssl_session_cache shared:SSL:10m;
    upstream origin {
        server 127.0.0.1:$ORIGIN;
        keepalive 1000;
        keepalive_timeout 30s;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$p ssl reuseport;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    # shellcheck disable=SC2046
    start_bg "$TMP/$name.log" $(pin_cmd "$pin") "$NGINX" -p "$TMP/$name" -c "$TMP/$name.conf" \
        -e "$TMP/$name/error.log"
    add_target "$name" "NGINX ($w workers)" "$p" "" "$TMP/$name.log" "$TMP/$name/error.log"
}

TARGETS=()
start_strata strata 1 1
start_haproxy haproxy 1 1
start_nginx nginx 1 1
if has scale; then
    start_strata strata2 "$SCALE_WORKERS" 0
    start_haproxy haproxy2 "$SCALE_WORKERS" 0
    start_nginx nginx2 "$SCALE_WORKERS" 0
fi

# Every target must answer GET / over TLS with the origin's body or it is not measured; it
# should negotiate http/1.1 when offered h2 too and answer s_time's request with 200.
# The line it logs shows what each negotiated (protocol, cipher, group, ALPN).
for t in "${TARGETS[@]}"; do
    body=$(curl -sk --max-time 5 "https://127.0.0.1:${PORT[$t]}/" || true)
    info=$(openssl s_client -connect "127.0.0.1:${PORT[$t]}" -servername "$SNI" -alpn h2,http/1.1 \
        </dev/null 2>/dev/null | sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1 \2/p
            s/^Server Temp Key: \([^,]*\).*/\1/p; s/^ALPN protocol: /ALPN /p
            s/^No ALPN negotiated/no ALPN/p' | tr '\n' ' ' || true)
    st=$(printf '%s' "$REQUEST" | timeout 5 openssl s_client -quiet \
        -connect "127.0.0.1:${PORT[$t]}" 2>/dev/null | head -1 | tr -d '\r' || true)
    if [ "$body" != "hello, world" ]; then
        log "tls-bench: $t: GET / over TLS did not return the origin's body; not measured"
        continue
    fi
    case "$info" in *"ALPN http/1.1"*) ;; *) log "tls-bench: $t: ALPN did not pick http/1.1 ($info)" ;; esac
    case "$st" in *" 200"*) ;; *) log "tls-bench: $t: s_time's request answered '$st'" ;; esac
    # Resumption by ticket (s_client saves the session, a second connection offers it) and
    # whether the proxy ends a "Connection: close" response with close_notify: an OpenSSL
    # client that reads to EOF (s_time) drops the session on a bare FIN, so it cannot resume
    # with a proxy that omits it.
    printf '%s' "$REQUEST" | timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$t]}" \
        -ign_eof -sess_out "$TMP/$t.sess" >"$TMP/$t.sess1.out" 2>&1 || true
    printf '%s' "$REQUEST" | timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$t]}" \
        -ign_eof -sess_in "$TMP/$t.sess" >"$TMP/$t.sess2.out" 2>&1 || true
    RESUMES[$t]=no
    grep -q '^Reused, TLS' "$TMP/$t.sess2.out" && RESUMES[$t]=yes
    NOTIFY[$t]=yes
    grep -q 'unexpected eof' "$TMP/$t.sess1.out" && NOTIFY[$t]=no
    info="$info; resumes by ticket: ${RESUMES[$t]}; close_notify before closing: ${NOTIFY[$t]}"
    log "tls-bench: $t: $info"
    PROCS[$t]=$(procs "${MAIN_PID[$t]}")
    case $t in *2) TARGETS2+=("$t") ;; *) TARGETS1+=("$t") ;; esac
done
[ "${#TARGETS1[@]}" -gt 0 ] || die "no proxy answered"
log "tls-bench: targets: ${TARGETS1[*]} ${TARGETS2[*]} ($KEY_TYPE certificate, $ROUNDS rounds" \
    "of ${RUN_SECONDS}s, wrk -t$WRK_THREADS -c$CONC, $STIME_PROCS s_time clients)"

# ---------------------------------------------------------------- measuring
# proxy_counters NAME: "full resumed" client handshakes the proxy itself has counted so far:
# HAProxy's frontend (show stat: ssl_sess, ssl_reused_sess), Strata's metrics
# (strata_listener_tls_handshakes_total minus strata_listener_tls_resumed_total, and the
# latter); "0 0" for NGINX, which counts none.
proxy_counters() {
    if [ -n "${HSOCK[$1]:-}" ]; then
        "$PYTHON" - "${HSOCK[$1]}" <<'EOF' | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) n[$i] = i }
            $1 == "tls" && $2 == "FRONTEND" { print $(n["ssl_sess"]) + 0, $(n["ssl_reused_sess"]) + 0 }'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
sys.stdout.write(s.makefile().read().lstrip("# "))
EOF
    elif [ -n "${SADMIN[$1]:-}" ]; then
        curl -s --max-time 5 "http://127.0.0.1:${SADMIN[$1]}/metrics" | awk '
            /^strata_listener_tls_handshakes_total[{ ]/ { h += $NF }
            /^strata_listener_tls_resumed_total[{ ]/ { r += $NF }
            END { print h - r, r + 0 }'
    else
        echo "0 0"
    fi
}
has_counters() { [ -n "${HSOCK[$1]:-}" ] || [ -n "${SADMIN[$1]:-}" ]; }
now_ns() { date +%s%N; }
ORIGIN_PROCS=$(procs "$ORIGIN_PID")

# begin_run T / end_run T N: the proxy's, the origin's and everything's CPU around a run;
# end_run sets CPU_US (proxy CPU per N), USR_US (its user-space part), BUSY (proxy cores busy),
# ORIGIN_BUSY (origin cores busy: it shares the proxy's CPU), CLIENT (client cores busy) and OTHER (cores busy with
# neither the clients, the proxy nor the origin: other work on the machine).
begin_run() {
    # shellcheck disable=SC2086  # lists of PIDs
    C0=$(cpu_ticks all ${PROCS[$1]})
    # shellcheck disable=SC2086
    Y0=$(cpu_ticks sys ${PROCS[$1]})
    # shellcheck disable=SC2086
    O0=$(cpu_ticks all $ORIGIN_PROCS)
    K0=$(child_ticks)
    S0=$(busy_ticks)
    T0=$(now_ns)
}
end_run() {
    local c1 y1 o1 k1 s1 hz secs
    T1=$(now_ns)
    s1=$(busy_ticks)
    k1=$(child_ticks)
    # shellcheck disable=SC2086
    o1=$(cpu_ticks all $ORIGIN_PROCS)
    # shellcheck disable=SC2086
    c1=$(cpu_ticks all ${PROCS[$1]})
    # shellcheck disable=SC2086
    y1=$(cpu_ticks sys ${PROCS[$1]})
    hz=$(getconf CLK_TCK)
    secs=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    CPU_US=$(us_per "$c1" "$C0" "$2")
    USR_US=$(us_per $((c1 - y1)) $((C0 - Y0)) "$2")
    BUSY=$(awk -v t=$((c1 - C0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')
    ORIGIN_BUSY=$(awk -v t=$((o1 - O0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')
    CLIENT=$(awk -v t=$((k1 - K0)) -v s="$secs" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz / s }')
    OTHER=$(awk -v t=$((s1 - S0 - (k1 - K0) - (c1 - C0) - (o1 - O0))) -v s="$secs" -v hz="$hz" \
        'BEGIN { printf "%.2f", t / hz / s }')
    SECS=$secs
}

# shellcheck disable=SC2034  # read through med (eval)
declare -A RATE P50 P99 CPU USR BUSYL ORIGINL CLIENTL ERRS NFULL NRES HFULL HRES
OTHERS=""
add() { eval "$1[\$2]=\"\${$1[\$2]:-} \$3\""; }

# run_wrk T SCEN ROUND: scenario 1 (SCEN ka: keep-alive) or 3b (SCEN rwrk: "Connection:
# close" on every request, so one request per TLS connection; wrk resumes the session of the
# connection before, so these are resumed handshakes: the proxies' counters show it).
run_wrk() {
    local t=$1 sc=$2 out=$TMP/wrk-$1-$2-$3.out res req e h0 h1 args=()
    [ "$sc" = rwrk ] && args=(-- close)
    h0=$(proxy_counters "$t")
    begin_run "$t"
    "${PIN_CLIENT[@]}" "$WRK" -t"$WRK_THREADS" -c"$CONC" -d"${RUN_SECONDS}s" --latency \
        -s "$ROOT/bench/http/wrk.lua" "https://127.0.0.1:${PORT[$t]}/" "${args[@]}" >"$out" 2>&1 || true
    res=$(grep '^RESULT' "$out" || true)
    req=$(echo "$res" | result_field requests)
    end_run "$t" "${req:-0}"
    h1=$(proxy_counters "$t")
    HFULL[$t:$sc]=$((${HFULL[$t:$sc]:-0} + ${h1% *} - ${h0% *}))
    HRES[$t:$sc]=$((${HRES[$t:$sc]:-0} + ${h1#* } - ${h0#* }))
    if [ -z "$res" ]; then
        log "tls-bench: $t $sc: wrk gave no result: $(tail -3 "$out" | tr '\n' ' ')"
        add RATE "$t:$sc" -
        return
    fi
    # wrk keeps a connection's session for the next one only if the server ended it with
    # close_notify: without it these are full handshakes, not the resumed ones measured here.
    # The proxy's own counters, where it has some, must show about one full handshake per
    # wrk connection, the rest resumed (wrk reads the response by its length and closes
    # first, so a missing close_notify does not cost it the session; NGINX: not checked).
    local hf=$((${h1% *} - ${h0% *})) why=""
    if [ "$sc" = rwrk ] && has_counters "$t" && [ "$hf" -gt $((CONC * 2)) ]; then
        why="the proxy counted $hf full handshakes"
    fi
    if [ -n "$why" ]; then
        BAD[$t:$sc]=$((${BAD[$t:$sc]:-0} + 1))
        log "tls-bench: $t $sc round $3: $why; left out" \
            "($(echo "$res" | result_field rps) req/s, $CPU_US us of proxy CPU per request)"
        return
    fi
    e=$(echo "$res" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /errors=|timeouts=/) {
        split($i, kv, "="); s += kv[2] } } END { print s + 0 }')
    [ "$e" = 0 ] || log "tls-bench: $t $sc: $e errors: $res"
    ERRS[$t:$sc]=$((${ERRS[$t:$sc]:-0} + e))
    add RATE "$t:$sc" "$(echo "$res" | result_field rps)"
    add P50 "$t:$sc" "$(echo "$res" | result_field p50_us)"
    add P99 "$t:$sc" "$(echo "$res" | result_field p99_us)"
    add CPU "$t:$sc" "$CPU_US"
    add USR "$t:$sc" "$USR_US"
    add BUSYL "$t:$sc" "$BUSY"
    add ORIGINL "$t:$sc" "$ORIGIN_BUSY"
    add CLIENTL "$t:$sc" "$CLIENT"
    OTHERS="$OTHERS $OTHER"
}

# run_stime T SCEN ROUND MODE PROCS PIN: scenarios 2-4; MODE new (full handshakes) or reuse
# (resumed). Connections = the sum of the clients' own counts; their per-connection
# characters say which were resumed ("r") and which full ("*" for TLS 1.2+).
run_stime() {
    local t=$1 sc=$2 r=$3 mode=$4 np=$5 pin=$6 i n full res h0 h1 pids=() out
    local pre=()
    [ "$pin" = 1 ] && pre=("${PIN_CLIENT[@]}")
    h0=$(proxy_counters "$t")
    begin_run "$t"
    for i in $(seq "$np"); do
        out=$TMP/stime-$t-$sc-$r-$i.out
        "${pre[@]}" openssl s_time -connect "127.0.0.1:${PORT[$t]}" "-$mode" \
            -time "$RUN_SECONDS" -www "$STIME_PAGE" -no-CAfile -no-CApath -no-CAstore >"$out" 2>&1 </dev/null &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    n=$(cat "$TMP/stime-$t-$sc-$r"-*.out | sed -n 's/^\([0-9]*\) connections in [0-9.]*s;.*/\1/p' \
        | awk '{ s += $1 } END { print s + 0 }')
    end_run "$t" "$n"
    h1=$(proxy_counters "$t")
    full=$(cat "$TMP/stime-$t-$sc-$r"-*.out | grep -E '^[*r0-9t]+$' | tr -cd '*' | wc -c)
    res=$(cat "$TMP/stime-$t-$sc-$r"-*.out | grep -E '^[*r0-9t]+$' | tr -cd 'r' | wc -c)
    NFULL[$t:$sc]=$((${NFULL[$t:$sc]:-0} + full))
    NRES[$t:$sc]=$((${NRES[$t:$sc]:-0} + res))
    HFULL[$t:$sc]=$((${HFULL[$t:$sc]:-0} + ${h1% *} - ${h0% *}))
    HRES[$t:$sc]=$((${HRES[$t:$sc]:-0} + ${h1#* } - ${h0#* }))
    if [ "$n" = 0 ]; then
        log "tls-bench: $t $sc: s_time made no connection: $(tail -3 "$out" | tr '\n' ' ')"
        add RATE "$t:$sc" -
        return
    fi
    # A "full" run must have no resumed connection, a "resumed" run only resumed ones:
    # otherwise the run does not measure what it says and its figures are left out.
    local pf=$((${h1% *} - ${h0% *})) pr=$((${h1#* } - ${h0#* })) bad=0
    # the proxy's own counters: no resumed handshake in a full run, no more full ones than
    # the clients' first connections in a resumed run
    if has_counters "$t"; then
        if [ "$mode" = new ] && [ "$pr" != 0 ]; then bad=1; fi
        if [ "$mode" = reuse ] && [ "$pf" -gt "$np" ]; then bad=1; fi
    fi
    if [ "$bad" = 1 ] || { [ "$mode" = new ] && [ "$res" != 0 ]; } \
        || { [ "$mode" = reuse ] && [ "$full" != 0 ]; }; then
        BAD[$t:$sc]=$((${BAD[$t:$sc]:-0} + 1))
        log "tls-bench: $t $sc round $r: $full full and $res resumed handshakes (the proxy" \
            "counted $pf and $pr); left out"
        return
    fi
    add RATE "$t:$sc" "$(awk -v n="$n" -v s="$SECS" 'BEGIN { printf "%.1f", n / s }')"
    # Each client runs its connections one after the other: mean time per connection.
    add P50 "$t:$sc" "$(awk -v n="$n" -v s="$SECS" -v p="$np" 'BEGIN { printf "%.0f", s * p * 1e6 / n }')"
    add CPU "$t:$sc" "$CPU_US"
    add USR "$t:$sc" "$USR_US"
    add BUSYL "$t:$sc" "$BUSY"
    add ORIGINL "$t:$sc" "$ORIGIN_BUSY"
    add CLIENTL "$t:$sc" "$CLIENT"
    OTHERS="$OTHERS $OTHER"
}

# rotated ROUND T...: the targets, rotated by ROUND - 1 places.
rotated() {
    local r=$1
    shift
    local a=("$@") n=$# i
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${a[$(((i + r - 1) % n))]}"; done
}

for r in $(seq "$ROUNDS"); do
    for t in $(rotated "$r" "${TARGETS1[@]}"); do
        if has ka; then run_wrk "$t" ka "$r"; fi
        if has full; then run_stime "$t" full "$r" new "$STIME_PROCS" 1; fi
        if has resumed; then run_stime "$t" resumed "$r" reuse "$STIME_PROCS" 1; fi
        if has rwrk; then run_wrk "$t" rwrk "$r"; fi
    done
    log "tls-bench: round $r/$ROUNDS done (1 worker, pinned)"
done
if has scale && [ "${#TARGETS2[@]}" -gt 0 ]; then
    pin_origin 0-$(($(nproc) - 1))
    for r in $(seq "$ROUNDS"); do
        for t in $(rotated "$r" "${TARGETS2[@]}"); do
            run_stime "$t" scale "$r" new "$SCALE_PROCS" 0
        done
        log "tls-bench: round $r/$ROUNDS done ($SCALE_WORKERS workers, unpinned)"
    done
    pin_origin "$PROXY_CPU"
fi

# ---------------------------------------------------------------- report
med() { local v; eval "v=\${$1[\$2]:-}"; echo "$v" | median; }
# row LABEL LOWER(0|1) KEY-SCEN ARRAY [SUFFIX]: medians for strata/haproxy/nginx (SUFFIX "2"
# for the scale instances) and strata / better peer.
row() {
    local label=$1 higher=$2 sc=$3 arr=$4 sfx=${5:-} s h n q
    s=$(med "$arr" "strata$sfx:$sc")
    h=$(med "$arr" "haproxy$sfx:$sc")
    n=$(med "$arr" "nginx$sfx:$sc")
    q=$(ratio "$s" "$(best "$higher" "$h" "$n")")
    [ -z "${BAD[strata$sfx:$sc]:-}" ] || [ "$s" != - ] || s=n/a
    [ -z "${BAD[haproxy$sfx:$sc]:-}" ] || [ "$h" != - ] || h=n/a
    [ -z "${BAD[nginx$sfx:$sc]:-}" ] || [ "$n" != - ] || n=n/a
    printf '%-46s %10s %10s %10s %8s\n' "$label" "$s" "$h" "$n" "$q"
}

# busy_row LABEL SCEN [SUFFIX]: median cores busy, proxy/origin/client, for each target (no
# ratio). Proxy + origin near 1 in scenarios 1-3: their shared CPU is the bottleneck.
busy_row() {
    local label=$1 sc=$2 sfx=${3:-} t v=()
    for t in strata haproxy nginx; do
        if [ -n "${BUSYL[$t$sfx:$sc]:-}" ]; then
            v+=("$(med BUSYL "$t$sfx:$sc")/$(med ORIGINL "$t$sfx:$sc")/$(med CLIENTL "$t$sfx:$sc")")
        else
            v+=(-)
        fi
    done
    printf '%-46s %10s %10s %10s %8s\n' "$label" "${v[@]}" ""
}

echo
echo "TLS termination: Strata vs HAProxy $(haproxy_version) vs NGINX $(nginx_version)," \
    "$(openssl version | cut -d' ' -f1-2), $KEY_TYPE certificate, loopback, $(nproc) CPUs;"
echo "medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s (order rotated each round)."
echo "Scenarios 1-3: 1 worker/thread each, proxy + origin pinned on CPU $PROXY_CPU, client on" \
    "CPU $CLIENT_CPU. Scenario 4: $SCALE_WORKERS workers/threads (NGINX: processes), unpinned."
echo
printf '%-46s %10s %10s %10s %8s\n' metric strata haproxy nginx ratio
if has ka; then
    row "1 keep-alive requests/s (wrk -c$CONC)" 1 ka RATE
    row "1 keep-alive p50 latency (us)" 0 ka P50
    row "1 keep-alive p99 latency (us)" 0 ka P99
    row "1 proxy CPU per request (us)" 0 ka CPU
    row "   of which user space (us)" 0 ka USR
    busy_row "1 proxy/origin/client busy (cores)" ka
fi
if has full; then
    row "2 full handshakes/s (s_time -new x$STIME_PROCS)" 1 full RATE
    row "2 mean time per connection (us)" 0 full P50
    row "2 proxy CPU per full handshake (us)" 0 full CPU
    row "   of which user space (us)" 0 full USR
    busy_row "2 proxy/origin/client busy (cores)" full
fi
if has resumed; then
    row "3 resumed handshakes/s (s_time -reuse x$STIME_PROCS)" 1 resumed RATE
    row "3 mean time per connection (us)" 0 resumed P50
    row "3 proxy CPU per resumed handshake (us)" 0 resumed CPU
    row "   of which user space (us)" 0 resumed USR
    busy_row "3 proxy/origin/client busy (cores)" resumed
fi
if has rwrk; then
    row "3b 1 request per TLS connection, resumed, req/s" 1 rwrk RATE
    row "3b p50 latency (us)" 0 rwrk P50
    row "3b p99 latency (us)" 0 rwrk P99
    row "3b proxy CPU per request + handshake (us)" 0 rwrk CPU
    row "   of which user space (us)" 0 rwrk USR
    busy_row "3b proxy/origin/client busy (cores)" rwrk
fi
if has scale; then
    row "4 full handshakes/s, $SCALE_WORKERS workers, unpinned" 1 scale RATE 2
    row "4 proxy CPU per full handshake (us)" 0 scale CPU 2
    row "   of which user space (us)" 0 scale USR 2
    busy_row "4 proxy/origin/client busy (cores)" scale 2
    if has full; then
        scaling_row() {
            local label=$1 arr=$2 t v=()
            for t in strata haproxy nginx; do
                v+=("$(ratio "$(med "$arr" "${t}2:scale")" "$(med "$arr" "$t:full")")")
            done
            printf '%-46s %10s %10s %10s %8s\n' "$label" "${v[@]}" ""
        }
        scaling_row "4 / 2: handshakes/s, 2 workers / 1" RATE
        scaling_row "4 / 2: CPU per handshake, 2 workers / 1" CPU
    fi
fi
echo
echo "ratio = strata / better peer (higher rate; lower latency and CPU). Latency for s_time:"
echo "each client runs its connections one after the other, so mean = run time x clients / connections."
echo "Handshakes seen (all rounds), full / resumed: by the s_time clients; by the proxy itself"
echo "(HAProxy ssl_sess / ssl_reused_sess, Strata strata_listener_tls_handshakes_total - _resumed_total"
echo "/ _resumed_total; these include the first connection of each -reuse client):"
for sc in full resumed rwrk scale; do
    has "$sc" || continue
    for t in "${TARGETS1[@]}" "${TARGETS2[@]}"; do
        if [ "$sc" = rwrk ]; then
            if has_counters "$t" && [ -n "${HFULL[$t:$sc]:-}" ]; then
                echo "  $sc $t: proxy ${HFULL[$t:$sc]} / ${HRES[$t:$sc]} (wrk: not reported)"
            fi
            continue
        fi
        [ -n "${NFULL[$t:$sc]:-}" ] || continue
        if has_counters "$t"; then
            echo "  $sc $t: client ${NFULL[$t:$sc]} / ${NRES[$t:$sc]}; proxy ${HFULL[$t:$sc]} / ${HRES[$t:$sc]}"
        else
            echo "  $sc $t: client ${NFULL[$t:$sc]} / ${NRES[$t:$sc]}"
        fi
    done
done
for k in "${!BAD[@]}"; do
    echo "n/a: ${k%%:*} ${k#*:}: ${BAD[$k]} of $ROUNDS runs did not do the handshakes they should (full" \
        "in a resumed run or the reverse) and are left out; ${k%%:*} resumes by ticket:" \
        "${RESUMES[${k%%:*}]:-?}, sends close_notify: ${NOTIFY[${k%%:*}]:-?}"
done
echo "Resumption check (s_client -sess_out, then -sess_in) and close_notify, per target:"
for t in "${TARGETS1[@]}" "${TARGETS2[@]}"; do
    echo "  $t: resumes ${RESUMES[$t]}, close_notify ${NOTIFY[$t]}"
done
echo "  (without close_notify an OpenSSL client that reads to EOF, as s_time does, sees an"
echo "  unexpected EOF and drops the session: scenario 3 then does full handshakes; wrk, in 3b,"
echo "  closes first and keeps it)"
echo "wrk errors (all rounds), keep-alive / 1 request per connection:"
for t in "${TARGETS1[@]}"; do echo "  $t: ${ERRS[$t:ka]:-0} / ${ERRS[$t:rwrk]:-0}"; done
echo "Other work on the machine during the runs (cores busy outside the clients, the proxy and" \
    "the origin): median $(echo "$OTHERS" | median), max $(echo "$OTHERS" | tr ' ' '\n' \
    | sort -g | tail -1); more than ~0.1 means the numbers are disturbed."
echo "Raw runs (rate | proxy CPU us):"
for sc in ka full resumed rwrk scale; do
    has "$sc" || continue
    for t in "${TARGETS1[@]}" "${TARGETS2[@]}"; do
        if [ -n "${RATE[$t:$sc]:-}" ]; then echo "  $sc $t:${RATE[$t:$sc]} |${CPU[$t:$sc]:-}"; fi
    done
done
for t in "${TARGETS1[@]}" "${TARGETS2[@]}"; do
    case $t in strata*) echo "Strata ($t) wrote $(wc -l <"$TMP/$t.log") log lines." ;; esac
done
