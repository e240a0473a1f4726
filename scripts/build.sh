#!/usr/bin/env bash
# Configures and builds one build type into build/<type>: release (default), debug or
# sanitize (ASan + UBSan). Usage: scripts/build.sh [release|debug|sanitize] [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."

type="${1:-release}"
shift || true
case "$type" in
  release) cmake_type=Release ;;
  debug) cmake_type=Debug ;;
  sanitize) cmake_type=Sanitize ;;
  *) echo "build.sh: unknown build type '$type' (release, debug, sanitize)" >&2; exit 2 ;;
esac

dir="build/$type"
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$cmake_type" >/dev/null
fi
# Two cores; one more job than cores keeps them busy while a job waits on the disk.
ninja -C "$dir" -j "${QUIRE_BUILD_JOBS:-3}" "$@"
