#!/usr/bin/env bash
# README command 2: installs what is missing, builds the release and sanitizer (ASan +
# UBSan) builds, and runs the whole test suite in both. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== formatting"
bash scripts/check-format.sh

jobs="${QUIRE_TEST_JOBS:-2}"
for type in release sanitize; do
  echo "== build ($type)"
  bash scripts/build.sh "$type"
  echo "== test ($type)"
  (cd "build/$type" && ctest --output-on-failure -j "$jobs" --timeout 600)
done

echo "== fuzz (3 targets, 15 s each)"
bash scripts/fuzz.sh 15

echo "== command-line checks (release, and traces against the sanitizer build)"
bash scripts/cli-checks.sh build/release/src/quire build/sanitize/src/quire
bash scripts/pageserver-checks.sh build/release/src/quire
bash scripts/tls-checks.sh build/release/src/quire
bash scripts/hostile-peer-checks.sh build/release/src/quire
bash scripts/large-response-checks.sh build/release/src/quire
echo "== quire chaos real: a short run per pick-up policy on a real local cluster"
bash scripts/chaos-real-checks.sh build/release/src/quire 20
