#!/usr/bin/env bash
# Delete safety: an export that would delete more than the agent's threshold
# (60 % of a directory here, default threshold 50 %) stops with
# stopped-deletion-threshold-exceeded, changes nothing in the directory and
# lists what it would have deleted; --allow-deletes N lets it go on.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$T/sync/"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/directory.yaml" <<YAML
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: ../data/directory.ldif }
YAML
{
	echo "employeeId,givenName,sn,title,department,employeeType,manager"
	for i in 1 2 3 4 5; do echo "100$i,Given$i,Sur$i,T,D,employee,"; done
} >"$T/data/hr.csv"

start_broker
start_engine
start_agent hr
start_agent directory
run_profile hr full-import
run_profile hr full-sync
run_profile directory export
expect_counter exported-adds 5
run_profile directory full-import
cp "$T/data/directory.ldif" "$T/directory.before"

# Three of five leave: 60 % of the directory.
sed -i '/^100[345],/d' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter deprovisioned 3
run_profile directory export 1
grep -q "stopped-deletion-threshold-exceeded" "$T/run.out" || fail "export not stopped: $(cat "$T/run.out")"
grep -q "the export would delete 3 of the 5 objects of agent 'directory' (60.0%), past its deletion threshold (percent)" \
	"$T/run.out" || fail "unclear stop: $(cat "$T/run.out")"
grep -q "loomctl run directory export --allow-deletes 3" "$T/run.out" || fail "no way forward named"
expect_counter pending-deletes 3
grep -qE "pending-deletes +3 +uid=gsur[345],ou=people,dc=example,dc=com" "$T/run.out" || fail "objects not listed: $(cat "$T/run.out")"
cmp -s "$T/directory.before" "$T/data/directory.ldif" || fail "a stopped export changed the directory"
n=$(cs_count directory --state pending-export)
[ "$n" -eq 3 ] || fail "the deletes did not stay pending ($n pending)"
pass "an export past the deletion threshold stops, changes nothing and lists what it would delete"

# Allowing fewer than needed is not enough; allowing them all goes on.
ctl run directory export --allow-deletes 2 >"$T/run.out" 2>&1 && fail "--allow-deletes 2 let 3 deletes through"
grep -q "stopped-deletion-threshold-exceeded" "$T/run.out" || fail "not stopped with too few allowed"
ctl run directory export --allow-deletes 3 >"$T/run.out" 2>&1 || fail "--allow-deletes 3: $(cat "$T/run.out")"
expect_counter exported-deletes 3
[ "$(grep -c '^dn: ' "$T/data/directory.ldif")" -eq 2 ] || fail "directory does not hold the 2 remaining people"
pass "--allow-deletes N lets an administrator go on"

# A count threshold: at most 1 delete.
sed -i 's|^anchor: dn|anchor: dn\ndeletion_threshold: { count: 1, percent: 0 }|' "$T/agents/directory.yaml"
stop engine TERM || fail "engine stop"
start_engine
sed -i '/^1002,/d' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile directory export
expect_counter exported-deletes 1
sed -i '/^1001,/d' "$T/data/hr.csv"
printf '1006,G6,S6,T,D,employee,\n' >>"$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile directory export
expect_counter exported-deletes 1
pass "a count threshold lets exports with few deletes through"
