#!/usr/bin/env bash
# Unpacks Debian 12's own libcurl 7.88.1 runtime library into a directory and
# prints that directory, so the suite can run against it with LD_LIBRARY_PATH
# (the addon links libcurl.so.4 dynamically; the same build runs with either).
set -euo pipefail
dest=${1:-"$(pwd)/build/libcurl-7.88"}
if [ ! -f "$dest/usr/lib/x86_64-linux-gnu/libcurl.so.4" ] && [ ! -n "$(ls "$dest"/usr/lib/*/libcurl.so.4 2>/dev/null)" ]; then
  version=$(apt-cache madison libcurl4 | awk '$3 ~ /^7\.88\./ {print $3; exit}')
  [ -n "$version" ] || { echo "no libcurl4 7.88 in the apt sources" >&2; exit 1; }
  work=$(mktemp -d)
  (cd "$work" && apt-get download "libcurl4=$version" >/dev/null 2>&1)
  mkdir -p "$dest"
  dpkg -x "$work"/libcurl4_*.deb "$dest"
  rm -rf "$work"
fi
dirname "$(ls "$dest"/usr/lib/*/libcurl.so.4 | head -1)"
