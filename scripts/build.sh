#!/usr/bin/env bash
# build.sh [BUILD_DIR] [cmake args...] - configure and build Loom.
# Default build dir: build/ (RelWithDebInfo). Example sanitizer build:
#   scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DLOOM_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
