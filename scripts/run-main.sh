#!/usr/bin/env bash
# README command 1: installs what is missing, builds the release build and runs Quire's
# main job: the seed report's chaos scenario on real processes (a local cluster of etcd,
# three page servers and three compute nodes on loopback), seed 1234, two minutes of
# chaos, then the checkers. `quire chaos kek --seed 1234` runs the same scenario in the
# simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release quire
exec build/release/src/quire chaos real --seed 1234 --duration 120
