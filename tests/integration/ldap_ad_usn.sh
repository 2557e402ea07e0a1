#!/usr/bin/env bash
# Active Directory's delta import by uSNChanged (ldap.ad_delta: usn) against
# a real Samba AD DC in its own network namespace: a DirSync watermark left
# from before the configuration changed is refused and the run goes on as a
# full import with a warning; then a delta sees exactly a modify, an add, a
# delete (found among the deleted objects with the show-deleted control)
# and a move out of the base; a DC whose invocationId changed (as after a
# restore from backup) makes the delta fall back to a full import with a
# warning, which sees the delete made meanwhile; the next delta resumes.
# Skipped (exit 77) where Samba is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/ldap/samba.sh"

samba_available || { echo "skip $TEST_NAME: samba is not installed (scripts/install-deps.sh)"; samba_skip; }
write_config
mkdir -p "$T/agents"
start_samba
ad_admin ldapadd >"$T/add.out" 2>&1 <<LDIF || { cat "$T/add.out" >&2; fail "cannot add the test objects"; }
dn: OU=Elsewhere,$AD_BASE
objectClass: organizationalUnit

dn: CN=alice,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: alice

dn: CN=bob,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: bob

dn: CN=carol,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: carol
LDIF
printf '%s\n' "$AD_PW" >"$T/ad.pw"
agent_yaml() {
	cat >"$T/agents/adu.yaml" <<YAML
type: ldap
ldap:
  uri: $AD_URI
  directory: ad
  ad_delta: $1
  bind_dn: "$AD_ADMIN_DN"
  password_file: ../ad.pw
  bases: [ { dn: "CN=Users,$AD_BASE", scope: one } ]
  object_classes:
    - { object_class: group, type: group }
    - { object_class: user, type: person }
  attributes: [cn, sAMAccountName, title, objectClass]
YAML
}
agent_yaml dirsync
start_broker
start_engine
start_ad_agent adu
guid_of() { # DN -> objectGUID as AD writes it
	local b64
	b64=$(ad_admin ldapsearch -LLL -b "$1" -s base objectGUID | sed -n 's/^objectGUID:: //p')
	python3 -c 'import base64, sys, uuid; print(uuid.UUID(bytes_le=base64.b64decode(sys.argv[1])))' "$b64"
}
want=$(ad_admin ldapsearch -LLL -b "CN=Users,$AD_BASE" -s one '(|(objectClass=user)(objectClass=group))' dn | grep -c '^dn:')
run_profile adu full-import
expect_counter adds "$want"
run_profile adu full-sync

# The configuration now says usn: the DirSync cookie is refused, the run
# goes on as a full import (nothing changed: no adds, no deletes).
agent_yaml usn
"$MALDAP" -c "$CFG" --agent adu --check-config >/dev/null || fail "loom-ma-ldap rejects ad_delta: usn"
stop ma_adu
start_ad_agent adu
run_profile adu delta-import
grep -qF "  warning: delta import fell back to a full import: the watermark is a DirSync cookie and ldap.ad_delta is usn" "$T/run.out" ||
	fail "no fallback warning: $(cat "$T/run.out")"
expect_counter adds 0
expect_counter deletes 0
log_has "$T/ma_adu.log" "import sent run=[0-9]+ mode=full objects=$want " || fail "the fallback did not import everything"
pass "a DirSync watermark after the configuration changed to usn: full import with a warning"

run_profile adu delta-import
expect_counter adds 0
expect_counter updates 0
expect_counter deletes 0
log_has "$T/ma_adu.log" "import sent run=[0-9]+ mode=delta-usn " || fail "the delta did not read uSNChanged"

bob=$(guid_of "CN=bob,CN=Users,$AD_BASE")
carol=$(guid_of "CN=carol,CN=Users,$AD_BASE")
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

dn: CN=carol,CN=Users,$AD_BASE
changetype: modrdn
newrdn: CN=carol
deleteoldrdn: 1
newsuperior: OU=Elsewhere,$AD_BASE
LDIF
run_profile adu delta-import
expect_counter updates 1
expect_counter adds 1
expect_counter deletes 2
grep -qE "^  deletes +2  ($bob, $carol|$carol, $bob)\$" "$T/run.out" || fail "the deletes are not bob's and carol's: $(cat "$T/run.out")"
grep -q "warning" "$T/run.out" && fail "a uSNChanged delta warns: $(cat "$T/run.out")"
log_has "$T/ma_adu.log" "import sent run=[0-9]+ mode=delta-usn " || fail "the delta did not read uSNChanged"
run_profile adu delta-import
expect_counter updates 0
expect_counter adds 0
expect_counter deletes 0
pass "uSNChanged delta: exactly a modify, an add, a delete (show-deleted) and a move out of the base"
run_profile adu full-sync

# The DC's database gets another invocationId (as a restore from backup
# does): its USNs are not comparable with the watermark's any more.
dave=$(guid_of "CN=dave,CN=Users,$AD_BASE")
ad_admin ldapdelete "CN=dave,CN=Users,$AD_BASE" || fail "cannot delete dave"
ds=$(ad_admin ldapsearch -LLL -o ldif-wrap=no -b "" -s base dsServiceName | sed -n 's/^dsServiceName: //p')
stop ma_adu
stop samba
printf 'dn: %s\nchangetype: modify\nreplace: invocationId\ninvocationId:: AAECAwQFBgcICQoLDA0ODw==\n' "$ds" >"$T/inv.ldif"
ldbmodify -H "$T/dc/private/sam.ldb" --controls=relax:0 "$T/inv.ldif" >"$T/inv.out" 2>&1 || fail "cannot change the invocationId: $(cat "$T/inv.out")"
start samba unshare --net sh -c 'ip link set lo up && exec samba -i -s "$1" -M single </dev/null' sh "$T/dc/etc/smb.conf"
AD_NETNS=/proc/${PIDS[samba]}/ns/net
wait_for "samba on $AD_URI again" 60 samba_answers
start_ad_agent adu
run_profile adu delta-import
grep -qE "^  warning: delta import fell back to a full import: the domain controller's invocationId is 03020100-0504-0706-0809-0a0b0c0d0e0f, not the watermark's " "$T/run.out" ||
	fail "no fallback warning naming the invocationId: $(cat "$T/run.out")"
expect_counter deletes 1
grep -qE "^  deletes +1  $dave\$" "$T/run.out" || fail "the delete is not dave's: $(cat "$T/run.out")"
log_has "$T/engine.log" "warning .*delta import fell back to a full import: the domain controller's invocationId" || fail "no warning in the engine's log"
pass "another invocationId: the delta goes on as a full import with a warning and sees the delete"
run_profile adu full-sync
ad_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: CN=alice,CN=Users,$AD_BASE
changetype: modify
replace: title
title: Lead
LDIF
run_profile adu delta-import
expect_counter updates 1
expect_counter deletes 0
grep -q "warning" "$T/run.out" && fail "the next delta still warns: $(cat "$T/run.out")"
pass "the next uSNChanged delta resumes from the new DC's mark"
