#!/usr/bin/env bash
# Builds the fuzz targets (clang, libFuzzer + ASan + UBSan) into build/fuzz and runs each
# for SECONDS (default 20) from its seed corpus: record_fuzz (the page service's record
# frame and segment scanner, fuzz/corpus/record), engine_formats_fuzz (B+tree pages,
# checkpoint metadata and completion records, the keystore, sealed payloads, log entries;
# fuzz/corpus/engine) and resp_protocol_fuzz (the RESP2 request parser, fuzz/corpus/resp).
# Seeds are copied to a scratch corpus so a run never changes the committed files. Exits non-zero if a fuzzer finds a crash; the input that caused it is
# kept in build/fuzz/artifacts/.
# Usage: bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
dir=build/fuzz
if [ ! -f "$dir/build.ninja" ]; then
  CXX=clang++ cmake -S fuzz -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
ninja -C "$dir" -j "${QUIRE_BUILD_JOBS:-3}" record_fuzz engine_formats_fuzz resp_protocol_fuzz

mkdir -p "$dir/artifacts"
for pair in record_fuzz:record engine_formats_fuzz:engine resp_protocol_fuzz:resp; do
  target="${pair%%:*}"
  corpus_dir="fuzz/corpus/${pair##*:}"
  corpus="$(mktemp -d)"
  cp "$corpus_dir"/* "$corpus/"
  if ! "$dir/$target" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$corpus"; then
    rm -rf "$corpus"
    echo "fuzz: $target failed; reproduce with: $dir/$target $dir/artifacts/<crash file>" >&2
    exit 1
  fi
  rm -rf "$corpus"
done
