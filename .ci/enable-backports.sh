#!/usr/bin/env bash
# Adds bookworm-backports by copying the first stanza of the system's own
# debian.sources with only the suite changed, so no mirror host is written here.
set -euo pipefail
src=/etc/apt/sources.list.d/debian.sources
dst=/etc/apt/sources.list.d/backports.sources
[ -f "$dst" ] && exit 0
awk 'BEGIN{RS=""; ORS="\n\n"} NR==1{print; exit}' "$src" \
  | sed -E 's/^Suites:.*/Suites: bookworm-backports/' > "$dst"
