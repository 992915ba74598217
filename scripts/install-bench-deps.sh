#!/bin/sh
# install-bench-deps.sh — Debian packages bench/run.sh compares Strata against.
# Idempotent and non-interactive; run as root. Installs nothing already present.
set -eu

PKGS="haproxy nginx libnginx-mod-stream procps"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi
