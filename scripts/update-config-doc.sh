#!/usr/bin/env bash
# Regenerates the reference part of doc/config.md (everything after "# Reference" and its
# two-line preamble) from the schema tables: `strata config-reference`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${STRATA_BIN:-build/strata}
n=$(grep -n '^# Reference$' doc/config.md | cut -d: -f1)
{ head -n $((n + 4)) doc/config.md; "$bin" config-reference; } > doc/config.md.new
mv doc/config.md.new doc/config.md
