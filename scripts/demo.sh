#!/usr/bin/env bash
# demo.sh [BUILD_DIR] - Loom's main job on the embedded default configuration
# (config/loom.yaml, config/agents, config/sync): an HR system (a CSV file)
# feeds the metaverse, which provisions accounts in a directory (an LDIF
# file). Everything runs as separate processes on the bus, on this host,
# with no external server.
#
#   1. start loom-broker, loom-engine and one loom-ma-file per agent, and
#      loom-tap writing the bus traffic to var/log/tap.log;
#   2. cycle 1: import HR, synchronize (projection, flows, provisioning),
#      export to the directory, import the directory (confirming the export);
#   3. change HR: a promotion and a leaver;
#   4. cycle 2: the promotion flows to the directory, the leaver's account is
#      deprovisioned;
#   5. stop everything cleanly.
#
# State lives in var/ (the engine store, the data files); each run starts
# from the sample data in config/samples.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
CFG=config/loom.yaml
CTL=("$B/cli/loomctl" -c "$CFG")
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_all EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
	echo "\$ loomctl run $*"
	"${CTL[@]}" run "$@" || [ $? -eq 3 ] # 3: completed with object errors, shown above
}

say "checking the configuration"
"$B/broker/loom-broker" -c "$CFG" --check-config
"$B/engine/loom-engine" -c "$CFG" --check-config
for a in hr directory; do "$B/agents/loom-ma-file" -c "$CFG" --agent "$a" --check-config; done

say "fresh state in var/ from config/samples"
rm -rf var/engine var/run var/data
mkdir -p var/data var/log
cp config/samples/hr.csv var/data/hr.csv
cat var/data/hr.csv

say "starting the processes (logs in var/log)"
"$B/broker/loom-broker" -c "$CFG" 2>var/log/broker.log &
pids+=($!)
"$B/broker/loom-tap" -c "$CFG" >var/log/tap.log 2>&1 &
pids+=($!)
"$B/engine/loom-engine" -c "$CFG" 2>var/log/engine.log &
pids+=($!)
for a in hr directory; do
	"$B/agents/loom-ma-file" -c "$CFG" --agent "$a" 2>"var/log/ma-$a.log" &
	pids+=($!)
done
for s in engine ma.hr ma.directory; do "${CTL[@]}" ping "$s" --wait 10s >/dev/null; done
"${CTL[@]}" services

say "cycle 1: HR -> metaverse -> directory"
run hr full-import
run hr full-sync
run directory export
run directory full-import
run directory full-sync

say "the directory now holds (var/data/directory.ldif, first entry)"
awk 'BEGIN{RS=""} NR==1 || NR==2 {print; print ""}' var/data/directory.ldif

say "a metaverse object, with the agent behind each attribute"
"${CTL[@]}" mv search employeeId=1002

say "HR changes: Grace Hopper is promoted, Dennis Ritchie leaves"
sed -i 's/^1002,Grace,Hopper,Rear Admiral,/1002,Grace,Hopper,Admiral,/; /^1007,/d' var/data/hr.csv
cat var/data/hr.csv

say "cycle 2: the change flows, the leaver is deprovisioned"
run hr full-import
run hr delta-sync
run directory export
run directory full-import

say "the result"
echo "Grace Hopper in the directory:"
awk 'BEGIN{RS=""} /uid=ghopper/' var/data/directory.ldif | grep -E '^(dn|title|cn):'
if grep -q 'uid=dritchie' var/data/directory.ldif; then
	echo "Dennis Ritchie is still in the directory" >&2
	exit 1
fi
echo "Dennis Ritchie's account is gone from the directory."
"${CTL[@]}" runs

say "what the bus carried (last lines of var/log/tap.log)"
tail -n 4 var/log/tap.log | cut -c1-200

say "stopping cleanly"
stop_all
trap - EXIT
pids=()
tail -n 1 var/log/broker.log
echo
echo "demo: ok"
