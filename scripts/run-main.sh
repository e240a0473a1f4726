#!/usr/bin/env bash
# README command 1: installs what is missing, builds the release build and runs Quire's
# main job, the simulator self-test on seed 1234.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release quire
exec build/release/src/quire sim selftest --seed 1234
