#!/usr/bin/env bash
# Changes made directly in the target directory behind Loom's back, to
# entries Loom provisions from an HR file (issue 5, item 1 of the fixes):
#  - an entry an administrator deletes with ldapdelete is seen by the next
#    delta import (and, for another one, by a full import), and the next sync
#    provisions it again (no provisioning-conflict with the connector that
#    left): the export re-creates it with its attributes;
#  - an entry renamed or moved with ldapmodrdn keeps its entryUUID; as the
#    DN is computed by the provisioning rule, the next sync exports a rename
#    back to that DN (as FIM does), and the entry keeps its entryUUID.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_slapd
seed_people 0
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add ou=staff"
dn: ou=staff,$SUFFIX
objectClass: organizationalUnit
ou: staff
LDIF
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
  timeout: 5s
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=staff,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
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
      - { mv: title, expr: title }
      - { mv: ou, expr: ou }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=" + ou + ",dc=example,dc=com"'
    deprovision: delete
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
      - { cs: employeeNumber, expr: employeeId }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn,title,ou
1,Ada,Lovelace,Analyst,people
2,Grace,Hopper,Admiral,people
3,Alan,Turing,Cryptanalyst,people
4,Edsger,Dijkstra,Professor,people
5,Barbara,Liskov,Professor,staff
CSV

start_broker
start_engine
start_agent hr
start_ldap_agent dir

entry() { ldap_admin ldapsearch -LLL -b "$1" -s base "${@:2}" 2>/dev/null; }
uuid_of() { entry "$1" entryUUID | sed -n 's/^entryUUID: //p'; }
# no_errors : no connector of dir is in error, and the last run named none
no_errors() {
	grep -qE "provisioning-conflict|error" "$T/run.out" && { cat "$T/run.out" >&2; fail "$1: the run reports an error"; }
	[ "$(ctl cs search dir --state error | awk 'NR > 1' | wc -l)" = 0 ] || fail "$1: objects of dir are in error: $(ctl cs search dir --state error)"
}
# confirm N : delta imports of dir until N exports are confirmed (a refresh
# right after an export can end before syncprov counted the last change).
confirm() {
	local confirmed=0 _
	for _ in 1 2 3 4 5; do
		run_profile dir delta-import
		confirmed=$((confirmed + $(counter export-confirmed)))
		[ "$confirmed" -ge "$1" ] && break
		sleep 0.5
	done
	[ "$confirmed" = "$1" ] || fail "export-confirmed adds up to $confirmed, want $1"
}

run_profile dir full-import
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned 5
run_profile dir export
expect_counter exported-adds 5
confirm 5
grace=$(uuid_of "uid=ghopper,ou=people,$SUFFIX")
[ -n "$grace" ] || fail "Grace was not provisioned"

# 1. ldapdelete behind Loom's back, seen by a delta import.
ldap_admin ldapdelete "uid=ghopper,ou=people,$SUFFIX" || fail "ldapdelete failed"
run_profile dir delta-import
expect_counter deletes 1
run_profile dir delta-sync
no_errors "the sync after a direct delete"
expect_counter deleted-connectors 1
expect_counter provisioned 1
ctl cs search dir --state placeholder | grep -qF "uid=ghopper,ou=people,$SUFFIX" ||
	fail "no placeholder for Grace after the sync: $(ctl cs search dir)"
run_profile dir export
expect_counter exported-adds 1
entry "uid=ghopper,ou=people,$SUFFIX" cn sn title employeeNumber entryUUID >"$T/grace.ldif" ||
	fail "Grace's entry was not re-created"
grep -qx "cn: Grace Hopper" "$T/grace.ldif" && grep -qx "title: Admiral" "$T/grace.ldif" &&
	grep -qx "employeeNumber: 2" "$T/grace.ldif" || fail "Grace's re-created entry is wrong: $(cat "$T/grace.ldif")"
grep -qx "entryUUID: $grace" "$T/grace.ldif" && fail "Grace's entry was not re-created (same entryUUID)"
confirm 1
no_errors "the import confirming the re-created entry"
run_profile dir delta-sync
expect_counter provisioned 0
[ "$(ctl cs search dir | grep -ci "uid=ghopper,ou=people")" = 1 ] || fail "Grace has not exactly one connector: $(ctl cs search dir)"
pass "an entry deleted in slapd by ldapdelete is seen by the delta import and provisioned again by the next sync and export"

# 1b. Deleted while a change to it waits for export: the modify fails on
# the missing entry (no-such-object, the run goes on), the delta import sees
# the delete, and the sync provisions it again with the change in its add.
sed -i 's/^2,Grace,Hopper,Admiral,/2,Grace,Hopper,Rear Admiral,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
ldap_admin ldapdelete "uid=ghopper,ou=people,$SUFFIX" || fail "the second ldapdelete failed"
run_profile dir export 3
grep -qF "no-such-object" "$T/run.out" || fail "the modify of a deleted entry is not no-such-object: $(cat "$T/run.out")"
run_profile dir delta-import
expect_counter deletes 1
run_profile dir delta-sync
grep -qF "provisioning-conflict" "$T/run.out" && fail "provisioning-conflict after a delete with a failed export: $(cat "$T/run.out")"
expect_counter provisioned 1
run_profile dir export
expect_counter exported-adds 1
entry "uid=ghopper,ou=people,$SUFFIX" title | grep -qx "title: Rear Admiral" || fail "Grace was not re-created with her new title"
confirm 1
no_errors "the import confirming Grace's second re-creation"
pass "an entry deleted while its modify waited for export is re-created with the change"

# 2. The same seen by a full import (the mark-and-sweep of unseen objects).
ldap_admin ldapdelete "uid=blambert,ou=staff,$SUFFIX" 2>/dev/null # not there: harmless
ldap_admin ldapdelete "uid=bliskov,ou=staff,$SUFFIX" || fail "ldapdelete of Barbara failed"
run_profile dir full-import
expect_counter deletes 1
run_profile dir full-sync
no_errors "the full sync after a direct delete"
expect_counter provisioned 1
run_profile dir export
expect_counter exported-adds 1
entry "uid=bliskov,ou=staff,$SUFFIX" title | grep -qx "title: Professor" || fail "Barbara was not re-created"
confirm 1
pass "an entry deleted in slapd and seen by a full import is provisioned again"

# 3. Renamed and moved behind Loom's back: the DN is the rule's, so the
# export renames them back; the entries keep their entryUUIDs.
ada=$(uuid_of "uid=alovelace,ou=people,$SUFFIX")
alan=$(uuid_of "uid=aturing,ou=people,$SUFFIX")
ldap_admin ldapmodrdn -r "uid=alovelace,ou=people,$SUFFIX" "uid=ada" || fail "ldapmodrdn of Ada failed"
ldap_admin ldapmodrdn -r -s "ou=staff,$SUFFIX" "uid=aturing,ou=people,$SUFFIX" "uid=aturing" || fail "the move of Alan failed"
run_profile dir delta-import
expect_counter renames 2
run_profile dir delta-sync
no_errors "the sync after direct renames"
expect_counter export-renames 2
run_profile dir export
expect_counter exported-updates 2
[ "$(uuid_of "uid=alovelace,ou=people,$SUFFIX")" = "$ada" ] || fail "Ada is not back at her DN with her entryUUID"
[ "$(uuid_of "uid=aturing,ou=people,$SUFFIX")" = "$alan" ] || fail "Alan is not back at his DN with his entryUUID"
entry "uid=ada,ou=people,$SUFFIX" >/dev/null && fail "Ada's direct rename is still there"
entry "uid=aturing,ou=staff,$SUFFIX" >/dev/null && fail "Alan's direct move is still there"
[ "$(entry "uid=alovelace,ou=people,$SUFFIX" uid | grep '^uid:')" = "uid: alovelace" ] ||
	fail "Ada's uid is wrong: $(entry "uid=alovelace,ou=people,$SUFFIX" uid)"
# The next import shows them where the export put them: confirmed, and
# nothing more to send.
confirm 2
run_profile dir delta-sync
no_errors "the sync confirming the renames back"
expect_counter export-renames 0
run_profile dir export
expect_counter exported-updates 0
pass "an entry renamed or moved in slapd is renamed back to the DN its rule computes, keeping its entryUUID"
