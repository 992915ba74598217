#!/bin/sh
# install-test-deps.sh — Debian packages the end-to-end tests (tests/e2e) need.
# Idempotent and non-interactive; run as root (CI does). Installs nothing already present.
set -eu

PKGS="python3 python3-pytest python3-pytest-timeout postgresql-15 postgresql-client-15 procps iproute2"

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
