#!/usr/bin/env bash
# Builds the record fuzzer (clang, libFuzzer + ASan + UBSan) into build/fuzz and runs it for
# SECONDS (default 20), starting from the seed corpus in fuzz/corpus/record. The seeds are
# copied to a scratch corpus so a run never changes the committed files. Exits non-zero if
# the fuzzer finds a crash; the input that caused it is kept in build/fuzz/artifacts/.
# Usage: bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
dir=build/fuzz
if [ ! -f "$dir/build.ninja" ]; then
  CXX=clang++ cmake -S fuzz -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
ninja -C "$dir" -j "${QUIRE_BUILD_JOBS:-3}" record_fuzz

corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp fuzz/corpus/record/* "$corpus/"
mkdir -p "$dir/artifacts"
if ! "$dir/record_fuzz" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$corpus"; then
  echo "fuzz: record_fuzz failed; reproduce with: $dir/record_fuzz $dir/artifacts/<crash file>" >&2
  exit 1
fi
