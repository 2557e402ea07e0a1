#!/usr/bin/env bash
# ldap.export_anchor: import - adds are sent without the post-read control,
# so the engine keeps each new entry under its temporary anchor; the next
# import of the directory finds the entries by DN and names them (counter
# anchors-learned), confirms the exports, and adds no duplicate. An update
# exported before the anchors are known goes by DN; an entry deleted in the
# directory before the confirming import is a delete, not adopted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_slapd
seed_people 0
printf '%s\n' "$ROOTPW" >"$T/admin.pw"

cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  connections: 2
  in_flight: 4
  export_anchor: import
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
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
      - { mv: sn, expr: sn }
      - { mv: title, expr: title }
      - { mv: uid, expr: 'LowerCase("u" + employeeId)' }
  - name: dir-in
    direction: inbound
    agent: dir
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeNumber, mv: employeeId } ] } ]
    flows: []
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: uid }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
      - { cs: employeeNumber, expr: employeeId }
YAML
N=40
{
	echo "employeeId,sn,title"
	for ((i = 1; i <= N; i++)); do echo "$i,Family$i,Engineer"; done
} >"$T/data/hr.csv"

start_broker
start_engine
start_agent hr
start_ldap_agent dir

entry() { ldap_admin ldapsearch -LLL -b "$1" -s base "${@:2}" 2>/dev/null; }
temp_anchors() { ctl cs search dir -n 10000 | tail -n +2 | grep -c '^~'; }

run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned "$N"
run_profile dir export
expect_counter exported-adds "$N"
[ "$(ldap_admin ldapsearch -LLL -b "ou=people,$SUFFIX" -s one dn | grep -c '^dn:')" = "$N" ] ||
	fail "the directory does not hold the $N entries"
[ "$(temp_anchors)" = "$N" ] || fail "$(temp_anchors) objects keep a temporary anchor, want $N"
log_has "$T/ma_dir.log" "export done" || fail "no export in the agent's log"
pass "adds exported without asking for the anchor"

# An update before the anchors are known: it goes by DN.
sed -i 's/^1,Family1,Engineer/1,Family1,Architect/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile dir export
expect_counter exported-updates 1
entry "uid=u1,ou=people,$SUFFIX" title | grep -qx "title: Architect" || fail "the update before the confirming import did not land"

# Entry 2 is deleted behind Loom's back before the confirming import.
ldap_admin ldapdelete "uid=u2,ou=people,$SUFFIX" || fail "cannot delete uid=u2"
run_profile dir full-import
expect_counter anchors-learned $((N - 1))
expect_counter adds 0
expect_counter deletes 1
[ "$(temp_anchors)" = "1" ] || fail "$(temp_anchors) temporary anchors left, want 1 (the deleted entry, pending delete)"
uuid=$(entry "uid=u3,ou=people,$SUFFIX" entryUUID | sed -n 's/^entryUUID: //p')
ctl cs show dir "$uuid" >"$T/u3.txt" || fail "uid=u3 is not in the connector space under its entryUUID $uuid"
grep -q "uid=u3,ou=people" "$T/u3.txt" || fail "the object under $uuid is not uid=u3: $(cat "$T/u3.txt")"
pass "the confirming import names the entries by DN; a vanished one is a delete"

# After the sync the exports are confirmed and a change flows as usual.
# Syncing the vanished entry's delete provisions its person again at the
# same DN (ldap_target_drift.sh has that in full); the export re-creates it,
# and the next import learns its anchor by DN like the others'.
run_profile dir delta-sync
expect_counter provisioned 1
sed -i 's/^3,Family3,Engineer/3,Family3,Manager/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile dir export
expect_counter exported-updates 1
expect_counter exported-adds 1
entry "uid=u3,ou=people,$SUFFIX" title | grep -qx "title: Manager" || fail "the update after the confirming import did not land"
entry "uid=u2,ou=people,$SUFFIX" >/dev/null || fail "uid=u2 was not re-created"
run_profile dir full-import
expect_counter adds 0
expect_counter anchors-learned 1
[ "$(temp_anchors)" = "0" ] || fail "$(temp_anchors) temporary anchors left, want 0"
pass "updates after the anchors are known"
