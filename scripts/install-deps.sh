#!/usr/bin/env bash
# Installs what Strata needs on Debian 12, idempotently and non-interactively.
#   scripts/install-deps.sh          build and run: compiler, make, pkg-config, libyaml, PCRE2,
#                                    OpenSSL 3 (libssl-dev), nghttp2 (libnghttp2-dev),
#                                    jansson (admin JSON API), libmaxminddb (geo), hiredis
#                                    (Redis rate limits), libcurl and libxcrypt (JWKS URLs,
#                                    htpasswd), zlib (compressed admin answers),
#                                    libmodsecurity3 and the OWASP CRS (the WAF), liburing
#                                    (a loop turn's sends in one system call), and nc +
#                                    curl to try the demo
#   scripts/install-deps.sh test     also what the tests use: pytest, PostgreSQL 15,
#                                    dnsmasq and dig (UDP), openssl and nginx (SNI and
#                                    PROXY protocol peers, a TLS origin), testssl.sh,
#                                    clang's libFuzzer (make fuzz), python3-h2, grpcio and
#                                    nghttp2's tools (HTTP/2 and gRPC peers), apache2-utils
#                                    (htpasswd files for the basic_auth tests), chromium,
#                                    node and npm (the dashboard test, make browser),
#                                    strace (system calls counted by the send-queue tests),
#                                    and promtool (`promtool check metrics` on /metrics),
#                                    taken from Debian's prometheus package without
#                                    installing it (the package would add a daemon): the
#                                    .deb is downloaded and only build/tools/promtool kept
#   scripts/install-deps.sh bench    also HAProxy and NGINX (with its stream module), h2load
#                                    and nghttpd (bench/h2.sh)
# Packages already installed are skipped; apt-get update runs only when something is missing.
set -euo pipefail

packages=(build-essential pkg-config libyaml-dev libpcre2-dev libssl-dev libnghttp2-dev
          libjansson-dev libmaxminddb-dev libhiredis-dev libcurl4-openssl-dev libcrypt-dev
          zlib1g-dev libmodsecurity-dev modsecurity-crs liburing-dev netcat-openbsd curl)
case "${1:-}" in
    "") ;;
    test) packages+=(python3 python3-pytest python3-pytest-timeout postgresql-15
                     postgresql-client-15 procps iproute2 dnsmasq-base bind9-dnsutils
                     openssl nginx libnginx-mod-stream clang libclang-rt-14-dev
                     python3-requests python3-websockets python3-cryptography wrk
                     testssl.sh python3-h2 python3-hyperframe python3-grpcio nghttp2-client
                     libmaxmind-db-writer-perl mmdb-bin redis-server apache2-utils chromium
                     nodejs npm strace) ;;
    bench) packages+=(haproxy nginx libnginx-mod-stream procps wrk openssl nghttp2-client
                      nghttp2-server) ;;
    *) echo "usage: $0 [test|bench]" >&2; exit 2 ;;
esac

# Node.js and npm (browser tests only) may come from another source than Debian (NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package): a working `node` and `npm`
# are enough.
provided() {
    case $1 in
        nodejs) command -v node >/dev/null ;;
        npm) command -v npm >/dev/null ;;
        *) return 1 ;;
    esac
}

# promtool alone, out of the prometheus .deb: `apt-get download` fetches the package
# without installing it (no daemon, no dpkg lock) and `dpkg -x` unpacks it into a scratch
# directory, from which only usr/bin/promtool is kept, in build/tools.
install_promtool() {
    local dir tmp sudo=""
    dir="$(cd "$(dirname "$0")/.." && pwd)/build/tools"
    [ -x "$dir/promtool" ] || command -v promtool >/dev/null && return 0
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    tmp=$(mktemp -d)
    fetch() { (cd "$tmp" && apt-get download -qq prometheus); }
    # a fresh system may have no package lists yet: update them once and try again
    if { fetch || { $sudo apt-get update -qq && fetch; }; } &&
        dpkg -x "$tmp"/prometheus_*.deb "$tmp/root"; then
        install -D -m 755 "$tmp/root/usr/bin/promtool" "$dir/promtool"
    else
        echo "install-deps: could not fetch promtool from the prometheus package" >&2
    fi
    rm -rf "$tmp"
}
[ "${1:-}" = test ] && install_promtool

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || provided "$p" \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
