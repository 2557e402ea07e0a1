#!/usr/bin/env bash
# kill -9 the engine in the middle of a full synchronization of N objects
# (default 100,000), start it again and rerun: the directory that results
# must equal the one an uninterrupted run produces, byte for byte, with no
# export applied twice.
. "$(dirname "$0")/lib.sh"

N=${LOOM_FAULT_OBJECTS:-100000}

# deploy DIR : a deployment (HR CSV -> directory LDIF) in DIR
deploy() {
	local d=$1
	mkdir -p "$d/agents" "$d/sync" "$d/data"
	cat >"$d/loom.yaml" <<YAML
state_dir: $d/state
log: { level: info }
bus: { heartbeat: 200ms, liveness: 10, request_timeout: 10s, keys_dir: $d/keys }
YAML
	cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$d/sync/"
	cat >"$d/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
	cat >"$d/agents/directory.yaml" <<YAML
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: ../data/directory.ldif }
YAML
	awk -v n="$N" 'BEGIN{print "employeeId,givenName,sn,title,department,employeeType,manager";
		for(i=1;i<=n;i++) printf "%d,Given%d,Sur%d,Title %d,Dept %d,employee,\n", 100000+i, i, i, i%50, i%20}' >"$d/data/hr.csv"
}

# stack NAME DIR : broker, engine and both agents of a deployment
stack() {
	local n=$1 d=$2
	start "${n}_broker" "$BROKER" -c "$d/loom.yaml"
	wait_log "${n}_broker" "started pid="
	start "${n}_engine" "$ENGINE" -c "$d/loom.yaml"
	wait_log "${n}_engine" "registered with broker"
	start "${n}_hr" "$MAFILE" -c "$d/loom.yaml" --agent hr
	start "${n}_dir" "$MAFILE" -c "$d/loom.yaml" --agent directory
	wait_log "${n}_hr" "registered with broker"
	wait_log "${n}_dir" "registered with broker"
}

run_in() { # DIR AGENT PROFILE : must succeed
	local d=$1
	shift
	"$CTL" -c "$d/loom.yaml" -t 60s run "$@" >"$T/run.out" 2>&1 || { cat "$T/run.out" >&2; fail "run $* in $d"; }
}

# The uninterrupted reference.
deploy "$T/ref"
stack ref "$T/ref"
run_in "$T/ref" hr full-import
run_in "$T/ref" hr full-sync
run_in "$T/ref" directory export
for p in ref_broker ref_engine ref_hr ref_dir; do stop "$p"; done
[ "$(grep -c '^dn: ' "$T/ref/data/directory.ldif")" -eq "$N" ] || fail "reference run did not export $N entries"

# The same with a kill -9 of the engine in the middle of the sync.
deploy "$T/f"
stack f "$T/f"
run_in "$T/f" hr full-import
CFG=$T/f/loom.yaml
id=$(ctl run hr full-sync --no-wait) || fail "could not start the sync"
wait_for "the sync past 20% of the objects" 120 bash -c \
	"'$CTL' -c '$CFG' runs hr -n 1 | awk -v min=$((N / 5)) 'NR==2 && \$4==\"in-progress\" && \$7>=min {ok=1} END{exit !ok}'"
stop f_engine KILL
start f_engine2 "$ENGINE" -c "$CFG"
wait_log f_engine2 "run was cut short by an engine restart run=$id"
wait_log f_engine2 "registered with broker"
ctl run show "$id" | grep -q "stopped-engine-restart" || fail "interrupted run not marked"
done_before=$(ctl runs hr -n 5 | awk -v id="$id" '$1==id {print $7}')
run_in "$T/f" hr full-sync
run_in "$T/f" directory export
cmp -s "$T/ref/data/directory.ldif" "$T/f/data/directory.ldif" || {
	diff "$T/ref/data/directory.ldif" "$T/f/data/directory.ldif" | head -20 >&2
	fail "the directory differs from the uninterrupted run's"
}
dups=$(grep '^dn: ' "$T/f/data/directory.ldif" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups entries exported twice"
n=$(ctl cs search directory --state pending-export | tail -n +2 | wc -l)
[ "$n" -eq 0 ] || fail "$n exports still pending"
pass "kill -9 of the engine after $done_before of $N objects: rerun equals an uninterrupted run, nothing exported twice"
