#!/usr/bin/env bash
# The LDAP agent against a real Active Directory (a Samba AD DC provisioned
# here in a network namespace of its own, stopped by its PID): full import of users and groups anchored on
# objectGUID (as AD tools write it), member values as references, then a
# DirSync delta that sees exactly a modify, an add and a delete. Skipped
# (exit 77) where Samba is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/ldap/samba.sh"

samba_available || { echo "skip $TEST_NAME: samba is not installed (scripts/install-deps.sh)"; samba_skip; }
write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_samba
ad_admin ldapadd >"$T/add.out" 2>&1 <<LDIF || { cat "$T/add.out" >&2; fail "cannot add the test users"; }
dn: CN=alice,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: alice
givenName: Alice

dn: CN=bob,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: bob

dn: CN=staff,CN=Users,$AD_BASE
objectClass: group
sAMAccountName: staff
member: CN=alice,CN=Users,$AD_BASE
LDIF
printf '%s\n' "$AD_PW" >"$T/ad.pw"
cat >"$T/agents/ad.yaml" <<YAML
type: ldap
references: [member, manager]
ldap:
  uri: $AD_URI
  directory: ad
  bind_dn: "$AD_ADMIN_DN"
  password_file: ../ad.pw
  bases: [ { dn: "CN=Users,$AD_BASE", scope: one } ]
  object_classes:
    - { object_class: group, type: group }
    - { object_class: user, type: person }
  attributes: [cn, sAMAccountName, givenName, title, member, objectClass]
YAML
cat >"$T/agents/hr.yaml" <<YAML
type: file
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/sync/ad.yaml" <<YAML
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    project: true
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: login, expr: login }
      - { mv: title, expr: title }
  - name: to-ad
    direction: outbound
    agent: ad
    cs_type: person
    mv_type: person
    provision: true
    dn: '"CN=" + EscapeDNComponent(login) + ",CN=Users,$AD_BASE"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,user", ",")', initial: true }
      - { cs: sAMAccountName, expr: login, initial: true }
      - { cs: title, expr: title }
YAML
printf 'employeeId,login,title\n1,erin,Auditor\n2,frank,Clerk\n' >"$T/data/hr.csv"
"$MALDAP" -c "$CFG" --agent ad --check-config >/dev/null || fail "loom-ma-ldap rejects the AD agent"
start_broker
start_engine
start_ad_agent ad
start_agent hr

guid_of() { # DN -> objectGUID as AD writes it
	local b64
	b64=$(ad_admin ldapsearch -LLL -b "$1" -s base objectGUID | sed -n 's/^objectGUID:: //p')
	python3 -c 'import base64, sys, uuid; print(uuid.UUID(bytes_le=base64.b64decode(sys.argv[1])))' "$b64"
}
want=$(ad_admin ldapsearch -LLL -b "CN=Users,$AD_BASE" -s one '(|(objectClass=user)(objectClass=group))' dn | grep -c '^dn:')
run_profile ad full-import
expect_counter adds "$want"
alice=$(guid_of "CN=alice,CN=Users,$AD_BASE")
ctl -o json cs show ad "$alice" >"$T/alice.json" || fail "alice is not in the connector space under her objectGUID $alice"
grep -qF '"object_type":"person"' "$T/alice.json" || fail "alice is not a person: $(cat "$T/alice.json")"
ctl -o json cs show ad "$(guid_of "CN=staff,CN=Users,$AD_BASE")" >"$T/staff.json" || fail "staff is not in the connector space"
grep -qF '"object_type":"group"' "$T/staff.json" && grep -qF "{\"ref\":\"CN=alice,CN=Users,$AD_BASE\"}" "$T/staff.json" ||
	fail "staff is not a group with alice as a reference: $(cat "$T/staff.json")"
pass "full import of $want AD users and groups anchored on objectGUID"
run_profile ad full-sync

run_profile ad delta-import
expect_counter adds 0
expect_counter deletes 0
bob=$(guid_of "CN=bob,CN=Users,$AD_BASE")
ad_admin ldapmodify >"$T/mod.out" 2>&1 <<LDIF || { cat "$T/mod.out" >&2; fail "ldapmodify failed"; }
dn: CN=alice,CN=Users,$AD_BASE
changetype: modify
replace: title
title: Engineer

dn: CN=bob,CN=Users,$AD_BASE
changetype: delete

dn: CN=dave,CN=Users,$AD_BASE
changetype: add
objectClass: user
sAMAccountName: dave
LDIF
run_profile ad delta-import
expect_counter updates 1
expect_counter adds 1
expect_counter deletes 1
grep -qF "$bob" "$T/run.out" || fail "bob's delete is not under his objectGUID: $(cat "$T/run.out")"
pass "DirSync delta sees exactly a modify, an add and a delete"

# Export to AD: Samba answers adds without the post-read control's value, so
# the agent reads each new entry's objectGUID back with a search.
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned 2
run_profile ad export
expect_counter exported-adds 2
ad_admin ldapsearch -LLL -b "CN=erin,CN=Users,$AD_BASE" -s base title sAMAccountName >"$T/erin.ldif" || fail "erin is not in AD"
grep -qx "title: Auditor" "$T/erin.ldif" && grep -qx "sAMAccountName: erin" "$T/erin.ldif" || fail "erin's entry: $(cat "$T/erin.ldif")"
erin=$(guid_of "CN=erin,CN=Users,$AD_BASE")
ctl cs show ad "$erin" >/dev/null || fail "the add was not re-keyed to erin's objectGUID $erin"
run_profile ad delta-import
expect_counter export-confirmed 2
sed -i 's/^1,erin,Auditor$/1,erin,Chief Auditor/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile ad export
expect_counter exported-updates 1
ad_admin ldapsearch -LLL -b "CN=erin,CN=Users,$AD_BASE" -s base title | grep -qx "title: Chief Auditor" || fail "the modify did not reach AD"
pass "export to AD: adds keyed by their objectGUID read back, confirmed by DirSync, and a modify"

# Live mode against AD: a DirSync poll streams changes; with live.sync off
# they stay staged as pending imports (the engine's sequence is covered by
# ldap_live.sh), so what the poll saw is checked in the connector space.
stop ma_ad
stop engine
cat >>"$T/agents/ad.yaml" <<YAML
live:
  enabled: true
  poll: 300ms
  keepalive: 1s
  sync: false
YAML
start_engine
start_ad_agent ad
wait_log engine "live stream up agent=ad" 30
pending_has() { ctl -o json cs show ad "$1" 2>/dev/null | grep -qF -- "$2"; }
ad_admin ldapmodify >"$T/mod.out" 2>&1 <<LDIF || { cat "$T/mod.out" >&2; fail "ldapmodify failed"; }
dn: CN=alice,CN=Users,$AD_BASE
changetype: modify
replace: title
title: Live Engineer
LDIF
wait_for "alice's live title staged" 30 pending_has "$alice" '"str":"Live Engineer"'
dave=$(guid_of "CN=dave,CN=Users,$AD_BASE")
ad_admin ldapdelete "CN=dave,CN=Users,$AD_BASE" || fail "ldapdelete failed"
wait_for "dave's delete staged" 30 pending_has "$dave" '"kind":"DELETE"'
ctl live ad >"$T/live.out" || fail "loomctl live ad failed"
grep -qE "^ad +up" "$T/live.out" || fail "loomctl live does not show ad up: $(cat "$T/live.out")"
log_has "$T/ma_ad.log" "live stream started session=[0-9]+ mode=dirsync-poll" || fail "the AD stream is not a DirSync poll"
pass "AD live mode: a DirSync poll streams a modify and a delete as they happen"
