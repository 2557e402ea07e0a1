#!/usr/bin/env bash
# bench_loomd.sh [KILLS] - what loomd's supervision costs in time
# (bench/README.md "bench_loomd"): loomd starts broker, engine and two file
# agents; the figures are how long until every process is registered on the
# bus, then KILLS times (default 20): kill -9 of the engine -> loomd has
# started a new one -> the new engine answers a ping through the broker;
# then SIGTERM -> loomd has stopped everything in order. restart_min is
# 100ms here (loomd waits that long before a restart: it is in the figure).
# Not a test: it prints figures (min, p50, p90, max in ms).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
KILLS=${1:-20}
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
TEST_NAME=bench_loomd
LOOMD=$LOOM_BUILD_DIR/cli/loomd

mkdir -p "$T/agents" "$T/sync" "$T/data"
cat >"$CFG" <<YAML
state_dir: $T/state
log: { level: warning }
bus: { heartbeat: 200ms, liveness: 10, request_timeout: 5s, keys_dir: $T/keys }
supervisor: { restart_min: 100ms, restart_max: 1s, fast_crash: 10ms, give_up: 1000 }
YAML
cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$T/sync/"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: inetOrgPerson\nanchor: dn\nfile: { format: ldif, path: ../data/directory.ldif }\n' >"$T/agents/directory.yaml"
cp "$LOOM_SOURCE_DIR/config/samples/hr.csv" "$T/data/hr.csv"

ms() { echo $(( $(date +%s%N) / 1000000 )); }
registered() {
	local out
	out=$("$CTL" -c "$CFG" -t 1s status 2>/dev/null) || return 1
	[ "$(echo "$out" | grep -cE ' running +[0-9]+ +[0-9]+ +(yes|-) ')" = 4 ]
}
stats() { # NAME values... : min p50 p90 max
	local name=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v name="$name" '{v[NR]=$1} END {
		printf "%-34s n=%-3d min %5d  p50 %5d  p90 %5d  max %5d ms\n", name, NR, v[1],
			v[int((NR+1)/2)], v[int(NR*0.9+0.5) ? int(NR*0.9+0.5) : 1], v[NR] }'
}

t0=$(ms)
start loomd "$LOOMD" -c "$CFG" --host bench --log-level info
wait_for "every process registered" 30 registered
echo "start: every process registered after $(( $(ms) - t0 )) ms (4 processes)"

starts=() pings=()
for ((i = 1; i <= KILLS; i++)); do
	pid=$("$CTL" -c "$CFG" -t 2s status | awk '$2=="engine" {print $4}')
	before=$(grep -c "started process=engine" "$T/loomd.log")
	t0=$(ms)
	kill -9 "$pid"
	wait_for "loomd to start the engine again" 10 bash -c "[ \$(grep -c 'started process=engine' '$T/loomd.log') -gt $before ]"
	t1=$(ms)
	"$CTL" -c "$CFG" ping engine --wait 10s >/dev/null || fail "the new engine does not answer"
	t2=$(ms)
	starts+=($((t1 - t0)))
	pings+=($((t2 - t0)))
done
stats "kill -9 -> new engine started" "${starts[@]}"
stats "kill -9 -> new engine answers ping" "${pings[@]}"

t0=$(ms)
stop loomd || fail "loomd did not exit 0"
echo "stop: SIGTERM -> loomd exited after $(( $(ms) - t0 )) ms (agents, engine, broker in order)"
