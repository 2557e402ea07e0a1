#!/usr/bin/env bash
# Groups flow from the policy service to a real slapd through the engine
# (issue 7 item 4): a static, a criteria-based and a manager-based Group made
# by requests are imported through the policy agent (their ComputedMember as
# references to the members' ObjectIDs), projected into the metaverse by the
# sample rules of config/examples/policy-groups, and provisioned to slapd as
# groupOfNames whose member values are the members' directory DNs. Then
# membership changes (HR moves a person out of the criteria and to another
# manager; an owner removes a member; a group is deleted) reach slapd by
# delta import, delta sync and export. Checked with ldapsearch.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/policy"
start_slapd
seed_people 0
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
EX=$LOOM_SOURCE_DIR/config/examples/policy-groups
cp "$EX/agents/portal.yaml" "$T/agents/portal.yaml"
cp "$EX/sync/groups.yaml" "$T/sync/groups.yaml"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$LOOM_SOURCE_DIR/config/policy/mprs.yaml" "$T/policy/"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
references: [manager]
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/directory.yaml" <<YAML
type: ldap
object_type: person
references: [member, manager]
timeout: 10s
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  timeout: 5s
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=groups,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
    - { object_class: groupOfNames, type: group }
YAML
cat >"$T/sync/people.yaml" <<YAML
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
      - { mv: department, expr: department }
      - { mv: manager, expr: manager }
      - { mv: uid, expr: 'LowerCase(givenName)' }
  - name: to-portal
    direction: outbound
    agent: portal
    cs_type: Person
    mv_type: person
    provision: true
    flows:
      - { cs: AccountName, expr: uid, initial: true }
      - { cs: DisplayName, expr: displayName }
      - { cs: EmployeeID, expr: employeeId }
      - { cs: Department, expr: department }
      - { cs: Manager, expr: manager }
  - name: portal-people-in
    direction: inbound
    agent: portal
    cs_type: Person
    mv_type: person
    join: [ { match: [ { cs: EmployeeID, mv: employeeId } ] } ]
    flows: []
  - name: people-to-directory
    direction: outbound
    agent: directory
    cs_type: person
    mv_type: person
    link_type: provision
    deprovision: delete
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,$SUFFIX"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: displayName }
      - { cs: sn, expr: sn }
      - { cs: employeeNumber, expr: employeeId }
      - { cs: manager, expr: manager }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn,department,manager
1,Ada,Lovelace,Engineering,
2,Bob,Babbage,Engineering,1
3,Cy,Cray,Engineering,1
4,Dee,Dijkstra,Sales,
CSV

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
start_broker
start_engine
start_agent hr
start_ldap_agent directory
start_workflow

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
id_of() {
	ctl search "/Person[AccountName = '$1']" | grep -o '^[0-9a-f-]\{36\}' | head -n1
}
dn() { echo "uid=$1,ou=people,$SUFFIX"; }
# ldap_members CN : the member values of cn=CN,ou=groups in slapd, sorted, one line
ldap_members() {
	ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "cn=$1,ou=groups,$SUFFIX" -s base member 2>/dev/null |
		sed -n 's/^member: //p' | tr 'A-Z' 'a-z' | sort | tr '\n' ' '
}
want() { for u in "$@"; do dn "$u"; done | tr 'A-Z' 'a-z' | sort | tr '\n' ' '; }
# sync_groups : the service's changes reach slapd: delta import and sync of
# the policy agent, export to the directory, and its confirming import
sync_groups() {
	run_profile portal delta-import
	run_profile portal delta-sync
	run_profile directory export
	cp "$T/run.out" "$T/export.out"
	run_profile directory delta-import
	run_profile directory delta-sync
}

# ---- people: HR -> engine -> policy service and directory ---------------------
run_profile hr full-import
run_profile hr full-sync
run_profile portal export
run_profile hr delta-sync            # managers' references, now that they have ObjectIDs
run_profile portal export
run_profile portal full-import
run_profile portal full-sync
run_profile directory export
expect_counter exported-adds 4
run_profile directory full-import
run_profile directory full-sync
ADA=$(id_of ada); BOB=$(id_of bob); CY=$(id_of cy); DEE=$(id_of dee)
[ -n "$ADA" ] && [ -n "$BOB" ] && [ -n "$CY" ] && [ -n "$DEE" ] || fail "people not in the service: $(ctl search /Person)"
[ "$(ctl -t 10s get - "$BOB" | sed -n 's/^Manager: //p')" = "$ADA" ] || fail "Bob's manager in the service: $(ctl get - "$BOB")"

# ---- three kinds of group, made in the service ---------------------------------
PX=$(ok create Group DisplayName="Project X" Description="static, owned by Ada" MembershipType=Static \
	Owner="$ADA" ExplicitMember="$ADA" ExplicitMember="$BOB" ExplicitMember="$CY")
ENG=$(ok create Group DisplayName=Engineers MembershipType=Criteria "Filter=/Person[Department = 'Engineering']")
ADAS=$(ok create Group DisplayName="Ada team" MembershipType=Manager ManagerBase="$ADA")
sync_groups
[ "$(awk '$1 == "exported-adds" {print $2}' "$T/export.out")" = 3 ] || { cat "$T/export.out" >&2; fail "want 3 groups added to slapd"; }
[ "$(ldap_members "Project X")" = "$(want ada bob cy)" ] || fail "Project X in slapd: $(ldap_members "Project X")"
[ "$(ldap_members Engineers)" = "$(want ada bob cy)" ] || fail "Engineers in slapd: $(ldap_members Engineers)"
[ "$(ldap_members "Ada team")" = "$(want ada bob cy)" ] || fail "Ada team in slapd: $(ldap_members "Ada team")"
ldap_admin ldapsearch -LLL -b "cn=Project X,ou=groups,$SUFFIX" -s base objectClass description |
	grep -q '^description: static, owned by Ada$' || fail "Project X's description did not flow"
pass "a static, a criteria-based and a manager-based group made in the service are groupOfNames in slapd, members as directory DNs"

# ---- HR changes move people out of computed groups ----------------------------
# Cy moves to Sales (leaves the criteria); Bob gets Dee as manager (leaves Ada team).
sed -i 's/^3,Cy,Cray,Engineering,1$/3,Cy,Cray,Sales,1/; s/^2,Bob,Babbage,Engineering,1$/2,Bob,Babbage,Engineering,4/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export
expect_counter exported-updates 2
sync_groups
[ "$(ldap_members Engineers)" = "$(want ada bob)" ] || fail "Cy still in Engineers in slapd: $(ldap_members Engineers)"
[ "$(ldap_members "Ada team")" = "$(want ada cy)" ] || fail "Bob still in Ada team in slapd: $(ldap_members "Ada team")"
[ "$(ldap_members "Project X")" = "$(want ada bob cy)" ] || fail "Project X changed: $(ldap_members "Project X")"
# Dee joins Engineering: she enters the criteria group.
sed -i 's/^4,Dee,Dijkstra,Sales,$/4,Dee,Dijkstra,Engineering,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export
sync_groups
[ "$(ldap_members Engineers)" = "$(want ada bob dee)" ] || fail "Dee did not join Engineers in slapd: $(ldap_members Engineers)"
pass "HR changes move people out of and into the criteria-based and manager-based groups, and slapd's member follows"

# ---- the owner manages the static group -----------------------------------------
ok modify "$PX" -ExplicitMember="$CY" --as "$ADA" >/dev/null
ok modify "$PX" +ExplicitMember="$DEE" --as "$ADA" >/dev/null
sync_groups
[ "$(ldap_members "Project X")" = "$(want ada bob dee)" ] || fail "Project X after the owner's changes: $(ldap_members "Project X")"
pass "an owner removes and adds members of a static group; slapd's member follows"

# ---- a deleted group leaves the directory ----------------------------------------
ok delete "$ADAS" >/dev/null
sync_groups
[ "$(awk '$1 == "exported-deletes" {print $2}' "$T/export.out")" = 1 ] || { cat "$T/export.out" >&2; fail "want the group deleted from slapd"; }
out=$(ldap_admin ldapsearch -LLL -b "cn=Ada team,ou=groups,$SUFFIX" -s base dn 2>&1) && fail "Ada team is still in slapd: $out"
[ -n "$(ldap_members Engineers)" ] || fail "the other groups went too"
pass "a group deleted in the service is deleted from slapd"
