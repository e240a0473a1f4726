#!/usr/bin/env bash
# README command 1: installs what is missing, builds the release build and runs Quire's
# main job: the kek chaos scenario on seed 1234.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release quire
exec build/release/src/quire chaos kek --seed 1234
