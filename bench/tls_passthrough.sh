#!/bin/bash
# bench/tls_passthrough.sh — new TLS connections per second through a TLS-passthrough
# proxy routed by SNI: Strata vs HAProxy vs NGINX (stream, ssl_preread), on this machine.
#
# One TLS backend: NGINX (http, `ssl`, 2 workers, TLS 1.3, no session cache or tickets)
# with a self-signed certificate made here with openssl (ECDSA P-256 by default), on two
# ports: "bench" (answers "bench") and "other" (answers "default"). In front of it, each on
# its own free loopback port and with 2 workers/threads:
#   strata   listener `routes:` — `match: { sni: bench.example.test }` -> bench, default -> other
#   haproxy  mode tcp, tcp-request inspect-delay 5s, accept on req_ssl_hello_type 1,
#            use_backend bench if { req_ssl_sni -i bench.example.test }, default other
#   nginx    stream, ssl_preread on, map $ssl_preread_server_name -> upstream
#   direct   the bench port itself
# Routing is verified first in every proxy: SNI bench.example.test must reach "bench",
# another name must reach "default" (a proxy failing this is not measured).
# Client: /usr/bin/python3 `ssl`, CLIENT_PROCS processes, each in a loop for RUN_SECONDS:
# connect, full handshake with SNI bench.example.test (no session is ever offered for
# resumption; resumed handshakes are counted and must be 0), a 60-byte HTTP request, read the
# ~150-byte response to EOF, close. (`openssl s_time` cannot send SNI.)
# ROUNDS rounds, targets interleaved in each round; prints medians, ratios (median of the
# per-round ratios, and the ratio of the medians) and the proxy's CPU per connection (user +
# system of all its processes and threads, from /proc/PID/stat).
# Every process it starts is stopped by PID on exit.
#
# Environment: STRATA_BIN (default build/strata), ROUNDS (7), RUN_SECONDS (5),
#   CLIENT_PROCS (4), WORKERS (2), KEY_TYPE (ec | rsa: RSA 2048), BENCH_KEEP=1 keeps the temp
#   dir (configs, logs, certificate).
# Run: STRATA_BIN=/tmp/strata-bench bench/tls_passthrough.sh   (about 3 minutes)
set -euo pipefail

BENCH_NAME=tls-bench
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-7}
RUN_SECONDS=${RUN_SECONDS:-5}
CLIENT_PROCS=${CLIENT_PROCS:-4}
WORKERS=${WORKERS:-2}
KEY_TYPE=${KEY_TYPE:-ec}
SNI=bench.example.test

[ -x "$PYTHON" ] || die "$PYTHON missing"
command -v openssl >/dev/null || die "openssl missing"
need_peers haproxy nginx

bench_tmpdir strata-tlsbench

# ---------------------------------------------------------------- the TLS client
cat >"$TMP/tlsrate.py" <<'EOF'
# tlsrate.py check HOST PORT SNI
#     one connection; prints "RESULT body=... version=... reused=..."
# tlsrate.py run HOST PORT SNI SECONDS PROCS EXPECT
#     PROCS processes, each: connect, full TLS handshake with SNI, HTTP request, read the
#     response to EOF (it must contain EXPECT), close; for SECONDS. No session is offered
#     for resumption (a fresh SSLSocket without session=), so every handshake is full.
import multiprocessing as mp
import socket
import ssl
import sys
import time


def make_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def one(ctx, host, port, sni, req):
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(req)
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                data += chunk
            return data, int(s.session_reused), s.version()


def worker(host, port, sni, req, expect, start, end, q):
    ctx = make_ctx()
    ok = err = reused = 0
    while time.monotonic() < start:
        time.sleep(0.005)
    while time.monotonic() < end:
        try:
            data, r, _ = one(ctx, host, port, sni, req)
            if expect in data:
                ok += 1
            else:
                err += 1
            reused += r
        except (OSError, ssl.SSLError):
            err += 1
    q.put((ok, err, reused))


def main():
    mode, host, port, sni = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    req = b"GET / HTTP/1.1\r\nHost: " + sni.encode() + b"\r\nConnection: close\r\n\r\n"
    if mode == "check":
        try:
            data, r, v = one(make_ctx(), host, port, sni, req)
        except (OSError, ssl.SSLError) as e:
            print("RESULT body=ERROR(%s) version=- reused=0" % str(e).replace(" ", "_"))
            return 1
        body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip()
        print("RESULT body=%s version=%s reused=%d" % (body or "-", v, r))
        return 0
    seconds, procs, expect = float(sys.argv[5]), int(sys.argv[6]), sys.argv[7].encode()
    q = mp.Queue()
    start = time.monotonic() + 0.5  # every process started and ready before the clock runs
    end = start + seconds
    ps = [mp.Process(target=worker, args=(host, port, sni, req, expect, start, end, q))
          for _ in range(procs)]
    for p in ps:
        p.start()
    res = []
    try:
        for _ in ps:
            res.append(q.get(timeout=seconds + 15))
    finally:
        for p in ps:
            p.join(5)
            if p.is_alive():
                p.kill()
    ok = sum(r[0] for r in res)
    err = sum(r[1] for r in res) + (procs - len(res))
    reused = sum(r[2] for r in res)
    print("RESULT tls_cps=%.0f conns=%d errors=%d reused=%d seconds=%.3f procs=%d"
          % (ok / seconds, ok, err, reused, seconds, procs))
    sys.stderr.write("tlsrate: %.0f conn/s (%d done, %d errors, %d resumed, %d procs)\n"
                     % (ok / seconds, ok, err, reused, procs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
EOF

# ---------------------------------------------------------------- the TLS backend
case "$KEY_TYPE" in
    ec) KEYOPT=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) KEYOPT=(-newkey rsa:2048) ;;
    *) die "KEY_TYPE must be ec or rsa" ;;
esac
openssl req -x509 "${KEYOPT[@]}" -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj "/CN=$SNI" -addext "subjectAltName=DNS:$SNI" >/dev/null 2>&1 \
    || die "openssl req failed"

BENCH_BACK=$(free_port)
OTHER_BACK=$(free_port)
mkdir -p "$TMP/backend"
cat >"$TMP/backend.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile $FD_HARD;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/error.log warn;
events { worker_connections 65536; }
http {
    access_log off;
    default_type text/plain;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server { listen 127.0.0.1:$BENCH_BACK ssl reuseport; return 200 "bench\n"; }
    server { listen 127.0.0.1:$OTHER_BACK ssl reuseport; return 200 "default\n"; }
}
EOF
start_bg "$TMP/backend.log" "$NGINX" -p "$TMP/backend" -c "$TMP/backend.conf" \
    -e "$TMP/backend/error.log"
wait_listening "$LAST_PID" "$BENCH_BACK" "$OTHER_BACK" \
    || { tail -20 "$TMP/backend/error.log" >&2 || true; die "TLS backend did not start"; }
BACKEND_PID=$LAST_PID

declare -A PORT MAIN_PID
TARGETS=(direct)
PORT[direct]=$BENCH_BACK

# ---------------------------------------------------------------- proxies
start_strata() {
    local p a
    p=$(free_port)
    a=$(free_port)
    STRATA_ADMIN=$a
    cat >"$TMP/strata.yaml" <<EOF
workers: $WORKERS
admin: { listen: "127.0.0.1:$a" }
timeouts: { connect: 2s, idle: 1m, drain: 1s }
listeners:
  - name: tls
    listen: "127.0.0.1:$p"
    mode: tcp
    max_connections: 0
    timeouts: { inspect: 5s }
    routes:
      - match: { sni: $SNI }
        backend: bench
      - backend: other
backends:
  bench: { retries: 0, servers: [ "127.0.0.1:$BENCH_BACK" ] }
  other: { retries: 0, servers: [ "127.0.0.1:$OTHER_BACK" ] }
EOF
    if [ ! -x "$STRATA_BIN" ]; then
        log "tls-bench: $STRATA_BIN missing, Strata not measured"
        return
    fi
    start_bg "$TMP/strata.log" "$STRATA_BIN" run "$TMP/strata.yaml"
    add_target strata Strata "$p" "$a" "$TMP/strata.log"
}

start_haproxy() {
    local p
    p=$(free_port)
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    nbthread $WORKERS
defaults
    mode tcp
    timeout connect 2s
    timeout client 1m
    timeout server 1m
frontend tls
    bind 127.0.0.1:$p
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
    use_backend bench if { req_ssl_sni -i $SNI }
    default_backend other
backend bench
    server s1 127.0.0.1:$BENCH_BACK
backend other
    server s1 127.0.0.1:$OTHER_BACK
EOF
    start_bg "$TMP/haproxy.log" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
    add_target haproxy HAProxy "$p" "" "$TMP/haproxy.log"
}

start_nginx() {
    local p
    p=$(free_port)
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
    upstream bench { server 127.0.0.1:$BENCH_BACK; }
    upstream other { server 127.0.0.1:$OTHER_BACK; }
    map \$ssl_preread_server_name \$tls_upstream {
        $SNI bench;
        default other;
    }
    server {
        listen 127.0.0.1:$p reuseport;
        ssl_preread on;
        preread_timeout 5s;
        proxy_pass \$tls_upstream;
        proxy_timeout 1m;
    }
}
EOF
    start_bg "$TMP/nginx.log" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx.conf" -e "$TMP/nginx/error.log"
    add_target nginx NGINX "$p" "" "$TMP/nginx.log" "$TMP/nginx/error.log"
}

start_strata
start_haproxy
start_nginx

# ---------------------------------------------------------------- routing check
# SNI bench.example.test must reach the "bench" server, any other name the "other" one.
MEASURED=()
for t in "${TARGETS[@]}"; do
    b=$("$PYTHON" "$TMP/tlsrate.py" check 127.0.0.1 "${PORT[$t]}" "$SNI" | result_field body || true)
    v=$("$PYTHON" "$TMP/tlsrate.py" check 127.0.0.1 "${PORT[$t]}" "$SNI" | result_field version || true)
    if [ "$t" = direct ]; then
        o=default
    else
        o=$("$PYTHON" "$TMP/tlsrate.py" check 127.0.0.1 "${PORT[$t]}" other.example.test \
            | result_field body || true)
    fi
    if [ "$b" = bench ] && [ "$o" = default ]; then
        log "tls-bench: $t: routing ok ($SNI -> bench, other.example.test -> default, $v)"
        MEASURED+=("$t")
    else
        log "tls-bench: $t: routing FAILED ($SNI -> '${b:-}', other.example.test -> '${o:-}'); not measured"
    fi
done
TARGETS=("${MEASURED[@]}")
declare -A PROCS
for t in "${TARGETS[@]}"; do
    [ "$t" = direct ] || PROCS[$t]=$(procs "${MAIN_PID[$t]}")
done
BACKEND_PROCS=$(procs "$BACKEND_PID")
log "tls-bench: targets: ${TARGETS[*]} ($WORKERS workers each, $ROUNDS rounds of ${RUN_SECONDS}s," \
    "$CLIENT_PROCS client processes, $KEY_TYPE key)"

metric() { # metric NAME [LABEL-SUBSTRING]: sum of Strata's metric NAME (lines matching LABEL)
    curl -s --max-time 5 "http://127.0.0.1:$STRATA_ADMIN/metrics" 2>/dev/null \
        | awk -v n="$1" -v l="${2:-}" '$1 ~ "^" n "({|$)" && index($1, l) { s += $2 } END { print s + 0 }'
}
if [ -n "${MAIN_PID[strata]:-}" ]; then
    STRATA_CONNS0=$(metric strata_listener_connections_total)
fi

# ---------------------------------------------------------------- runs
declare -A CR CPU BCPU SYS
ERRORS=0
RESUMED=0
for r in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        c0=$(cpu_ticks all ${PROCS[$t]:-})
        s0=$(cpu_ticks sys ${PROCS[$t]:-})
        b0=$(cpu_ticks all $BACKEND_PROCS)
        out=$("$PYTHON" "$TMP/tlsrate.py" run 127.0.0.1 "${PORT[$t]}" "$SNI" "$RUN_SECONDS" \
            "$CLIENT_PROCS" bench 2>/dev/null || true)
        b1=$(cpu_ticks all $BACKEND_PROCS)
        v=$(echo "$out" | result_field tls_cps)
        n=$(echo "$out" | result_field conns)
        CR[$t]="${CR[$t]:-} ${v:-0}"
        ERRORS=$((ERRORS + $(echo "$out" | result_field errors | grep . || echo 0)))
        RESUMED=$((RESUMED + $(echo "$out" | result_field reused | grep . || echo 0)))
        BCPU[$t]="${BCPU[$t]:-} $(us_per "$b1" "$b0" "${n:-0}")"
        if [ "$t" != direct ]; then
            SYS[$t]="${SYS[$t]:-} $(us_per "$(cpu_ticks sys ${PROCS[$t]})" "$s0" "${n:-0}")"
            CPU[$t]="${CPU[$t]:-} $(us_per "$(cpu_ticks all ${PROCS[$t]})" "$c0" "${n:-0}")"
        fi
    done
    log "tls-bench: round $r/$ROUNDS done"
done

# per_round OP A B [C]: median over rounds of a_i / best(b_i, c_i), best = max or min (OP);
# the runs of one round are seconds apart, so this is steadier than a ratio of medians.
per_round() {
    awk -v op="$1" -v a="$2" -v b="$3" -v c="${4:-}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); m = split(c, z, " ")
        for (i = 1; i <= n; i++) {
            d = y[i]
            if (i <= m && z[i] != "-" && (d == "" || d == "-" ||
                (op == "max" && z[i] + 0 > d + 0) || (op == "min" && z[i] + 0 < d + 0)))
                d = z[i]
            if (x[i] != "-" && d != "" && d != "-" && d + 0 > 0) printf "%.4f\n", x[i] / d
        } }' | median_ratio
}

declare -A MCR MCPU MBCPU MSYS
for t in direct strata haproxy nginx; do
    MSYS[$t]=$(echo "${SYS[$t]:-}" | median)
    MCR[$t]=$(echo "${CR[$t]:-}" | median)
    MCPU[$t]=$(echo "${CPU[$t]:-}" | median)
    MBCPU[$t]=$(echo "${BCPU[$t]:-}" | median)
done
best_cr=$(best 1 "${MCR[haproxy]}" "${MCR[nginx]}")
best_cpu=$(best 0 "${MCPU[haproxy]}" "${MCPU[nginx]}")

echo
echo "TLS passthrough routed by SNI: Strata vs HAProxy $(haproxy_version)" \
     "vs NGINX $(nginx_version) (ssl_preread), $WORKERS workers each;" \
     "backend NGINX $WORKERS workers, $KEY_TYPE key; client $CLIENT_PROCS python3 processes;" \
     "medians of $ROUNDS interleaved rounds of ${RUN_SECONDS}s"
echo
echo "ratios: median of the per-round ratios (ratio of the medians in brackets)"
echo
printf '%-42s %9s %9s %9s %9s %14s %16s\n' metric direct strata haproxy nginx \
    strata/direct strata/best-peer
printf '%-42s %9s %9s %9s %9s %14s %16s\n' "new TLS connections/s (full handshake)" \
    "${MCR[direct]}" "${MCR[strata]}" "${MCR[haproxy]}" "${MCR[nginx]}" \
    "$(per_round max "${CR[strata]:-}" "${CR[direct]:-}") ($(ratio "${MCR[strata]}" "${MCR[direct]}"))" \
    "$(per_round max "${CR[strata]:-}" "${CR[haproxy]:-}" "${CR[nginx]:-}") ($(ratio "${MCR[strata]}" "$best_cr"))"
printf '%-42s %9s %9s %9s %9s %14s %16s\n' "proxy CPU per connection (us, lower=better)" \
    - "${MCPU[strata]}" "${MCPU[haproxy]}" "${MCPU[nginx]}" \
    - "$(per_round min "${CPU[strata]:-}" "${CPU[haproxy]:-}" "${CPU[nginx]:-}") ($(ratio "${MCPU[strata]}" "$best_cpu"))"
printf '%-42s %9s %9s %9s %9s %14s %16s\n' "  of which kernel (us)" \
    - "${MSYS[strata]}" "${MSYS[haproxy]}" "${MSYS[nginx]}" - -
printf '%-42s %9s %9s %9s %9s %14s %16s\n' "backend CPU per connection (us)" \
    "${MBCPU[direct]}" "${MBCPU[strata]}" "${MBCPU[haproxy]}" "${MBCPU[nginx]}" - -
echo
echo "Client errors (all runs): $ERRORS; resumed handshakes: $RESUMED (must be 0)."
echo "Raw runs: connections/s:"
for t in "${TARGETS[@]}"; do echo "  $t:${CR[$t]}"; done
echo "Raw runs: proxy CPU per connection (us):"
for t in "${TARGETS[@]}"; do [ "$t" = direct ] || echo "  $t:${CPU[$t]}"; done
if [ -n "${MAIN_PID[strata]:-}" ]; then
    echo "Strata /metrics: connections $(( $(metric strata_listener_connections_total) - STRATA_CONNS0 ))" \
         "during the runs; inspect_failures_total $(metric strata_listener_inspect_failures_total);" \
         "connect_failures_total $(metric strata_listener_connect_failures_total);" \
         "server connections: bench $(metric strata_server_connections_total 'backend="bench"')," \
         "other $(metric strata_server_connections_total 'backend="other"')"
    echo "Strata log: $(grep -c ' conn ' "$TMP/strata.log" || true) connection lines; ends:" \
         "$(sed -n 's/.* end=\([a-z_]*\).*/\1/p' "$TMP/strata.log" | sort | uniq -c \
            | awk '{ printf "%s%s=%s", (NR > 1 ? ", " : ""), $2, $1 }');" \
         "other lines: $(grep -vc ' conn ' "$TMP/strata.log" || true)"
    grep -v ' conn ' "$TMP/strata.log" | head -5 | sed 's/^/  strata: /'
fi
