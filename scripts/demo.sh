#!/usr/bin/env bash
# demo.sh [BUILD_DIR] - Loom's main job on the embedded default (config/loom.yaml).
#
# For now (issue 2: the foundation) that is the bus: start loom-broker and a
# service on it, watch the traffic with loom-tap, list what is registered,
# do round trips through the broker, and stop everything cleanly. Later
# issues grow this into the full import -> sync -> export cycle.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
CFG=config/loom.yaml
state=var
mkdir -p "$state/log"
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_all EXIT

say() { printf '\n== %s\n' "$*"; }

say "configuration check"
"$B/broker/loom-broker" -c "$CFG" --check-config

say "starting loom-broker (logs: $state/log/broker.log)"
"$B/broker/loom-broker" -c "$CFG" 2>"$state/log/broker.log" &
pids+=($!)
# The tap shows every frame the broker moves, decoded.
"$B/broker/loom-tap" -c "$CFG" >"$state/log/tap.log" 2>&1 &
pids+=($!)
# A service built on the same daemon skeleton as every Loom process.
"$B/tests/loom-testsvc" -c "$CFG" --service echo 2>"$state/log/echo.log" &
pids+=($!)
"$B/cli/loomctl" -c "$CFG" ping echo --wait 10s >/dev/null

say "loomctl services"
"$B/cli/loomctl" -c "$CFG" services

say "loomctl ping echo -n 3 (round trips through the broker)"
"$B/cli/loomctl" -c "$CFG" ping echo -n 3 -i 200ms

say "loomctl ping broker"
"$B/cli/loomctl" -c "$CFG" ping broker

say "what loom-tap saw (last 8 lines of $state/log/tap.log)"
sleep 0.2 # let the tap's last lines reach its log; display only
tail -n 8 "$state/log/tap.log"

say "stopping cleanly"
stop_all
trap - EXIT
pids=()
tail -n 2 "$state/log/broker.log"
echo
echo "demo: ok"
