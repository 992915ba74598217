#!/usr/bin/env bash
# Installs what Strata needs on Debian 12, idempotently.
#   scripts/install-deps.sh          build and run: compiler, make, pkg-config, libyaml
#   scripts/install-deps.sh test     also what the tests use (see install-test-deps.sh)
#   scripts/install-deps.sh bench    also HAProxy and NGINX (see install-bench-deps.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
packages=(build-essential pkg-config libyaml-dev netcat-openbsd curl)

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
case "${1:-}" in
    test) "$here/install-test-deps.sh" ;;
    bench) "$here/install-bench-deps.sh" ;;
    "") ;;
    *) echo "usage: $0 [test|bench]" >&2; exit 2 ;;
esac
