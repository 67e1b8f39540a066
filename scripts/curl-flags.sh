#!/bin/sh
# Prints libcurl's compiler or linker flags for binding.gyp.
# Usage: curl-flags.sh cflags|libs [curl-config path]
# Tries the given curl-config, then pkg-config, then a plain -lcurl.
what=$1
config=${2:-curl-config}
if command -v "$config" >/dev/null 2>&1; then
  case $what in
    cflags) "$config" --cflags ;;
    libs) "$config" --libs ;;
  esac
  exit 0
fi
if pkg-config --exists libcurl 2>/dev/null; then
  case $what in
    cflags) pkg-config --cflags libcurl ;;
    libs) pkg-config --libs libcurl ;;
  esac
  exit 0
fi
[ "$what" = libs ] && echo "-lcurl"
exit 0
