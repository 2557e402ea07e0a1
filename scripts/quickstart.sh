#!/usr/bin/env bash
# quickstart.sh - install dependencies, build, and run Loom's main job on the
# embedded default configuration (config/loom.yaml): no external server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
exec ./scripts/demo.sh build
