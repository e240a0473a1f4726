#!/usr/bin/env bash
# Installs every Debian bookworm package Quire needs to build and test, and only what is
# missing. Idempotent: a second run on a ready machine does nothing and takes a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3 clang-format
  clang libclang-rt-14-dev
  libssl-dev libfmt-dev nlohmann-json3-dev libcli11-dev libasio-dev
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  libcurl4-openssl-dev libjemalloc-dev libabsl-dev etcd-server etcd-client redis-server redis-tools python3-redis
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
