#!/usr/bin/env bash
# The policy service as a connected system (issue 6 item 7): the engine
# provisions HR's people to loom-workflow through a policy agent; each export
# change is a request made by the sync identity, through the MPRs (here sync
# is restricted: sync_unrestricted false, an MPR for `requesters: sync`), and
# comes back to the engine on the next import (anchor and DN = ObjectID).
# An HR change flows HR -> engine -> request -> committed resource -> import.
# Denials (an attribute no MPR grants sync, a schema regex) come back as
# export errors with the reason, not retried. A change made in the service
# reaches the engine through delta import (the change log), a delete too.
# kill -9 of loom-workflow right after an export's commit: the engine sends
# the change again and it is answered from the request made before, never
# applied twice. A delta import against another store (the watermark names
# the store) falls back to a full import.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/policy"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
references: [manager]
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/portal.yaml" <<YAML
type: policy
timeout: 3s
references: [Manager, ExplicitMember, ComputedMember]
policy: { object_types: [Person, Group] }
YAML
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: givenName, expr: givenName }
      - { mv: sn, expr: sn }
      - { mv: displayName, expr: 'givenName + " " + sn' }
      - { mv: title, expr: title }
      - { mv: department, expr: department }
      - { mv: manager, expr: manager }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: to-portal
    direction: outbound
    agent: portal
    cs_type: Person
    mv_type: person
    provision: true
    deprovision: delete
    flows:
      - { cs: AccountName, expr: uid, initial: true }
      - { cs: DisplayName, expr: displayName }
      - { cs: FirstName, expr: givenName }
      - { cs: LastName, expr: sn }
      - { cs: EmployeeID, expr: employeeId }
      - { cs: JobTitle, expr: title }
      - { cs: Department, expr: department }
      - { cs: Manager, expr: manager }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn,title,department,manager
1001,Ada,Lovelace,Analyst,,
1002,Grace,Hopper,Admiral,,1001
1003,Alan,Turing,Cryptanalyst,,1001
1004,Guido,van Rossum,Engineer,,1001
CSV
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/policy/mprs.yaml" <<'YAML'
sync_unrestricted: false
mprs:
  - name: sync manages people
    requesters: sync
    operations: [create, modify, add, remove, delete]
    attributes: [AccountName, DisplayName, FirstName, LastName, EmployeeID, JobTitle, Manager]
    target_after: /Person
  - name: sync deletes people
    requesters: sync
    operations: [delete]
  - name: sync manages groups
    requesters: sync
    operations: [create, modify, add, remove]
    target_after: /Group
YAML

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
"$WORKFLOW" -c "$CFG" --check-config >/dev/null || fail "loom-workflow rejects the test configuration"
start_broker
start_engine
start_agent hr
start_workflow
wait_log workflow "serving policy agent 'portal' types=2 requester=sync"
ctl agent test portal >"$T/test.out" || fail "agent test portal: $(cat "$T/test.out")"
grep -q "^agent portal: ok: workflow serves policy agent 'portal' (object types: 2)" "$T/test.out" ||
	fail "agent test portal: $(cat "$T/test.out")"
ctl agent schema portal >"$T/schema.out" || fail "agent schema portal: $(cat "$T/schema.out")"
grep -qE "^type Person anchor=ObjectID attributes=[0-9]+$" "$T/schema.out" && grep -qE "^type Group anchor=ObjectID" "$T/schema.out" &&
	grep -qE "^  AccountName +string +single$" "$T/schema.out" && grep -qE "^  ExplicitMember +reference +multi$" "$T/schema.out" ||
	fail "agent schema portal: $(cat "$T/schema.out")"
pass "loomctl agent test and schema on a policy agent (the service's schema of its object types)"

# persons COUNT : the service holds COUNT Person resources
persons() {
	local n
	n=$(ctl search '/Person' | grep -c '^[0-9a-f]\{8\}-') || true
	[ "$n" = "$1" ] || { ctl search '/Person' >&2; fail "the service holds $n persons, want $1"; }
}
# id_of ACCOUNT : ObjectID of the person with that AccountName
id_of() {
	ctl search "/Person[AccountName = '$1']" | grep -o '^[0-9a-f-]\{36\}' | head -n1
}
attr() {
	ctl get - "$1" | sed -n "s/^$2: //p"
}

# ---- provisioning: HR -> engine -> create requests by sync ---------------
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned 4
ctl cs search portal -n 100 >"$T/cs.out"
grep -q 'new:[0-9a-f]\{16\}' "$T/cs.out" || { cat "$T/cs.out" >&2; fail "provisioned objects have no provisional DN"; }
run_profile portal export 3
expect_counter exported-adds 3
grep -q "AccountName" "$T/run.out" || { cat "$T/run.out" >&2; fail "the denied create does not name AccountName"; }
grep -q "denied" "$T/run.out" || { cat "$T/run.out" >&2; fail "the denied create is not reported as denied"; }
persons 3
ADA=$(id_of alovelace)
[ -n "$ADA" ] || fail "no resource for alovelace"
[ "$(attr "$ADA" JobTitle)" = "Analyst" ] || fail "JobTitle of alovelace is '$(attr "$ADA" JobTitle)'"
[ "$(attr "$ADA" Creator)" = "" ] || true
ctl requests --status completed >"$T/reqs.out"
[ "$(grep -c ' create ' "$T/reqs.out")" = 3 ] || { cat "$T/reqs.out" >&2; fail "want 3 completed create requests"; }
grep -q ' sync$' "$T/reqs.out" || { cat "$T/reqs.out" >&2; fail "the requests do not name sync as requester"; }
ctl requests --status denied >"$T/denied.out"
[ "$(grep -c ' create ' "$T/denied.out")" = 1 ] || { cat "$T/denied.out" >&2; fail "want 1 denied create"; }
# the engine keyed the connector by the ObjectID (anchor and DN)
ctl cs show portal "$ADA" >"$T/show.out" || fail "no connector with anchor $ADA"
grep -q "^dn          $ADA\$" "$T/show.out" || { cat "$T/show.out" >&2; fail "the connector's DN is not the ObjectID"; }
# the denied one is not retried: still pending, with the reason
run_profile portal export 3
expect_counter exported-adds 0

# ---- references: a manager provisioned in the same run is referred to by
# its ObjectID once it has one (never by the provisional new:... DN) -------
[ "$(attr "$(id_of ghopper)" Manager)" = "" ] || fail "a reference went out before its object had an ObjectID"
run_profile hr delta-sync
run_profile portal export 3
expect_counter exported-updates 2
[ "$(attr "$(id_of ghopper)" Manager)" = "$ADA" ] || fail "Manager of ghopper is '$(attr "$(id_of ghopper)" Manager)', want $ADA"
[ "$(attr "$(id_of aturing)" Manager)" = "$ADA" ] || fail "Manager of aturing is not $ADA"

# ---- import confirms: nothing new to export ------------------------------
run_profile portal full-import
expect_counter adds 0
run_profile portal full-sync
run_profile portal export 3
expect_counter exported-updates 0
persons 3

# ---- an HR change flows to the service ----------------------------------
sed -i 's/^1001,Ada,Lovelace,Analyst,,/1001,Ada,Lovelace,Countess,,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export 3
expect_counter exported-updates 1
[ "$(attr "$ADA" JobTitle)" = "Countess" ] || fail "JobTitle did not flow: '$(attr "$ADA" JobTitle)'"
ctl requests --status completed | grep ' modify ' | grep -q "$ADA" || fail "no completed modify request for $ADA"

# ---- an attribute no MPR grants sync: denied, reported, not retried ------
sed -i 's/^1002,Grace,Hopper,Admiral,,1001/1002,Grace,Hopper,Admiral,Navy,1001/' "$T/data/hr.csv"
GRACE=$(id_of ghopper)
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export 3
grep -q "Department" "$T/run.out" || { cat "$T/run.out" >&2; fail "the denial does not name Department"; }
[ "$(attr "$GRACE" Department)" = "" ] || fail "a denied Department was applied"
ctl cs show portal "$GRACE" | grep -q 'denied' || fail "the connector does not keep the denial"

# ---- a change made in the service comes back through delta import -------
run_profile portal delta-import
ctl request modify "$ADA" DisplayName="Ada King" >"$T/req.out" || fail "request modify failed: $(cat "$T/req.out")"
run_profile portal delta-import
expect_counter updates 1
ctl cs show portal "$ADA" | grep -q 'Ada King' || fail "delta import did not bring the new DisplayName"
TURING=$(id_of aturing)
ctl request delete "$TURING" >"$T/req.out" || fail "request delete failed: $(cat "$T/req.out")"
run_profile portal delta-import
expect_counter deletes 1
persons 2

# ---- groups: ComputedMember, which the service keeps apart from the
# resource, travels with the Group; a membership change caused by a request
# on a person comes by delta import as a change of the Group -------------
run_profile portal delta-import
GRP=$(ctl request create Group DisplayName=Countesses MembershipType=Criteria "Filter=/Person[JobTitle = 'Countess']" |
	head -n1 | awk '{print $6}')
[ -n "$GRP" ] || fail "no group created"
run_profile portal delta-import
ctl cs show portal "$GRP" >"$T/grp.out" || fail "the group was not imported"
grep -q "$ADA" "$T/grp.out" || { cat "$T/grp.out" >&2; fail "the group's ComputedMember did not come with it"; }
grep -q "$GRACE" "$T/grp.out" && fail "ghopper is in the group before she is a Countess"
ctl request modify "$GRACE" JobTitle=Countess >"$T/req.out" || fail "request modify failed: $(cat "$T/req.out")"
run_profile portal delta-import
ctl cs show portal "$GRP" | grep -q "$GRACE" ||
	{ ctl cs show portal "$GRP" >&2; fail "the group's new member did not come by delta import"; }

# ---- kill -9 right after an export's commit: never applied twice --------
stop workflow
LOOM_WORKFLOW_CRASH_AT=committed start workflow "$WORKFLOW" -c "$CFG"
wait_log workflow "registered with broker"
printf '1005,Barbara,Liskov,Professor,,\n' >>"$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter provisioned 1
run_profile portal export 1
grep -q "did not answer an export batch" "$T/run.out" || { cat "$T/run.out" >&2; fail "the export did not fail for want of an answer"; }
wait_for "loom-workflow to die at the crash point" 10 bash -c "! kill -0 ${PIDS[workflow]} 2>/dev/null"
stop workflow
mv "$T/workflow.log" "$T/workflow-crashed.log.txt"
start_workflow
wait_for "the broker to route to the new loom-workflow" 15 ctl search '/Person'
run_profile portal export 3
expect_counter exported-adds 1
persons 3
grep -q "came again: answered from request" "$T/workflow.log" || fail "the change sent again was not answered from its request"
[ "$(ctl search "/Person[AccountName = 'bliskov']" | grep -c '^[0-9a-f]\{8\}-')" = 1 ] || fail "bliskov created twice"

# ---- a watermark from another store: refused, the run goes on as a full import
stop workflow
mv "$T/state/workflow" "$T/workflow-store-old"
start_workflow
run_profile portal delta-import
grep -q "^  warning: delta import fell back to a full import" "$T/run.out" ||
	{ cat "$T/run.out" >&2; fail "a watermark from another store was not refused"; }
expect_counter deletes 4

pass "provisioned through requests by sync (MPRs, denials reported), HR change flowed, service changes and deletes imported by delta, a re-sent change answered from its request"
