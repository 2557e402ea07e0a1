#!/usr/bin/env bash
# The LDAP agent against a real slapd (started here, stopped by its PID):
# full import by pages, delta import by content sync (adds, modifies,
# renames and deletes seen exactly; a stale cookie after a slapd restart is
# refused and the run goes on as a full import with a warning), export
# of adds, modifies, renames, moves and deletes checked with ldapsearch, a
# constraint violation reported as not retryable, bind failures reported
# without the password, config errors with file:line:column.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

N=${LOOM_LDAP_TEST_N:-1200}
write_config
mkdir -p "$T/agents" "$T/sync"
start_slapd
seed_people "$N"
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
chmod 600 "$T/admin.pw"

cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
references: [member, manager]
timeout: 10s
ldap:
  uri: $SLAPD_URI
  bind: simple
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 100
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=groups,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
    - { object_class: groupOfNames, type: group }
YAML

"$MALDAP" -c "$CFG" --agent dir --check-config >/dev/null || fail "loom-ma-ldap rejects the test configuration"
start_broker
start_engine
start_ldap_agent dir
# loomctl agent test|schema: a bind on a connection of its own, the server's
# schema checked against the configuration, entries sampled for the types
sed -e 's|password_file: ../admin.pw|password_file: ../bad.pw|' "$T/agents/dir.yaml" >"$T/agents/dirbad.yaml"
printf 'not-the-password\n' >"$T/bad.pw"
start_ldap_agent dirbad
ctl agent test dir >"$T/test.out" || fail "agent test dir: $(cat "$T/test.out")"
grep -q "^agent dir: ok: connected to '$SLAPD_URI' and bound" "$T/test.out" || fail "agent test dir: $(cat "$T/test.out")"
rc=0
ctl agent test dirbad >/dev/null 2>"$T/test.err" || rc=$?
[ "$rc" = 3 ] && grep -qi "agent dirbad: failed: .*invalid credentials" "$T/test.err" ||
	fail "agent test dirbad: rc=$rc $(cat "$T/test.err")"
ctl agent schema dir >"$T/schema.out" || fail "agent schema dir: $(cat "$T/schema.out")"
grep -qE "^agent dir: '$SLAPD_URI': [0-9]+ entries of the bases read" "$T/schema.out" &&
	grep -qE "^type person anchor=" "$T/schema.out" && grep -qE "^type group anchor=" "$T/schema.out" &&
	grep -qE "^  uid +string" "$T/schema.out" && grep -qE "^  mail +string" "$T/schema.out" ||
	fail "agent schema dir: $(cat "$T/schema.out")"
stop ma_dirbad
pass "loomctl agent test (bind, a wrong password refused with the server's reason) and agent schema (sampled entries)"

# Full import: every entry, in pages, streamed in batches.
run_profile dir full-import
expect_counter adds "$N"
[ "$(cs_count dir)" = "$N" ] || fail "connector space holds $(cs_count dir) objects, want $N"
log_has "$T/ma_dir.log" "import sent run=[0-9]+ mode=full objects=$N " || fail "agent did not log the full import"
pass "full import of $N entries by pages"
# Synchronize (no rules: nothing joins) so the next imports are updates, not adds.
run_profile dir full-sync

# A delta with nothing changed sees nothing.
run_profile dir delta-import
expect_counter adds 0
expect_counter updates 0
expect_counter deletes 0

# Changes made with ldap-utils: exactly those are seen, deletes included.
ldap_admin ldapmodify >"$T/mod.out" 2>&1 <<LDIF || { cat "$T/mod.out" >&2; fail "ldapmodify failed"; }
dn: uid=user1,ou=people,$SUFFIX
changetype: modify
replace: mail
mail: ada@example.com

dn: uid=user2,ou=people,$SUFFIX
changetype: delete

dn: uid=new1,ou=people,$SUFFIX
changetype: add
objectClass: inetOrgPerson
uid: new1
cn: New One
sn: One
jpegPhoto:: /9j/4AAQSkZJRgABAQ==
audio:: VGV4dC1saWtlIGJ5dGVz

dn: cn=staff,ou=groups,$SUFFIX
changetype: add
objectClass: groupOfNames
cn: staff
member: uid=user1,ou=people,$SUFFIX
member: uid=new1,ou=people,$SUFFIX

dn: uid=user3,ou=people,$SUFFIX
changetype: modrdn
newrdn: uid=user3b
deleteoldrdn: 1
LDIF
run_profile dir delta-import
expect_counter updates 1
expect_counter renames 1
expect_counter adds 2
expect_counter deletes 1
uuid_of() { ldap_admin ldapsearch -LLL -b "$1" -s base entryUUID | sed -n 's/^entryUUID: //p'; }
staff=$(uuid_of "cn=staff,ou=groups,$SUFFIX")
[ -n "$staff" ] || fail "no entryUUID for the new group"
ctl cs show dir "$staff" >"$T/staff.out" || fail "the new group is not in the connector space"
ctl -o json cs show dir "$staff" >"$T/staff.json" || fail "cannot show the new group"
grep -qF '{"ref":"uid=new1,ou=people,dc=example,dc=com"}' "$T/staff.json" || fail "member is not a reference: $(cat "$T/staff.json")"
grep -qF '"object_type":"group"' "$T/staff.json" || fail "groupOfNames is not typed group: $(cat "$T/staff.json")"
ctl -o json cs show dir "$(uuid_of "uid=new1,ou=people,$SUFFIX")" >"$T/new1.json" || fail "new1 is not in the connector space"
grep -qF '{"name":"jpegPhoto","values":[{"bin":' "$T/new1.json" || fail "jpegPhoto is not binary: $(cat "$T/new1.json")"
# audio's value is valid UTF-8: it is binary because the schema says so (Audio syntax).
grep -qF '{"name":"audio","values":[{"bin":' "$T/new1.json" || fail "audio is not binary by its schema syntax: $(cat "$T/new1.json")"
ctl -o json cs show dir "$(uuid_of "uid=user3b,ou=people,$SUFFIX")" >"$T/user3.json" || fail "user3 is not in the connector space"
grep -qF '"new_dn":"uid=user3b,ou=people,dc=example,dc=com"' "$T/user3.json" || fail "the rename is not pending: $(cat "$T/user3.json")"
[ "$(cs_count dir --state pending-import)" -ge 5 ] || fail "the changes are not pending imports"
run_profile dir delta-import
expect_counter updates 0
expect_counter deletes 0
pass "delta import sees exactly an update, a rename, two adds and a delete; references and binary values typed"

# The cookie lives in the engine's store: it survives an engine restart (and
# the agent, stateless, survives being restarted too).
stop engine
stop ma_dir
start_engine
start_ldap_agent dir
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user4,ou=people,$SUFFIX
changetype: modify
replace: title
title: After the engine restart
LDIF
run_profile dir delta-import
expect_counter updates 1
expect_counter adds 0
expect_counter deletes 0
pass "the cookie survives an engine and agent restart"

# A stale cookie: a change made before slapd restarted is older than its new
# session log (kept in memory), so slapd cannot tell what was deleted since
# the cookie. The delta run goes on as a full import, with a warning in the
# agent's log, the engine's and the run's record; its mark-and-sweep finds
# the delete; the next delta works again.
run_profile dir full-sync # so that the counters below are this run's changes only
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user7,ou=people,$SUFFIX
changetype: modify
replace: title
title: Before the restart
LDIF
restart_slapd
uuid5=$(uuid_of "uid=user5,ou=people,$SUFFIX")
ldap_admin ldapdelete "uid=user5,ou=people,$SUFFIX" || fail "ldapdelete failed"
run_profile dir delta-import
grep -qE "^  warning: delta import fell back to a full import: the server answered with a present phase" "$T/run.out" ||
	fail "no fallback warning in the run: $(cat "$T/run.out")"
log_has "$T/ma_dir.log" "warning .*watermark lost run=[0-9]+: delta import cannot resume" || fail "no warning in the agent's log"
log_has "$T/engine.log" "warning .*delta import fell back to a full import: .* run=[0-9]+ agent=dir" || fail "no warning in the engine's log"
expect_counter deletes 1
expect_counter adds 0
expect_counter updates 1
grep -qE "^  deletes +1  $uuid5\$" "$T/run.out" || fail "the delete is not user5's ($uuid5): $(cat "$T/run.out")"
ctl -o json run show "$(sed -n 's/^run \([0-9]*\) .*/\1/p' "$T/run.out")" | grep -qF '"warnings":["delta import fell back to a full import: ' ||
	fail "the run record has no warnings field"
run_profile dir full-sync
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user6,ou=people,$SUFFIX
changetype: modify
replace: title
title: After the restart
LDIF
run_profile dir delta-import
expect_counter updates 1
expect_counter deletes 0
grep -q "warning" "$T/run.out" && fail "the next delta still warns: $(cat "$T/run.out")"
pass "a stale cookie: the delta goes on as a full import with a warning, sees the delete; delta resumes"

# A referral in a base is an error on that object, never followed; the run
# goes on with the other entries.
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add the referral"
dn: ou=elsewhere,ou=people,$SUFFIX
objectClass: referral
objectClass: extensibleObject
ou: elsewhere
ref: ldap://127.0.0.1:1/ou=elsewhere,dc=example,dc=com
LDIF
run_profile dir full-import 3
grep -qF "referral" "$T/run.out" && grep -qF "ldap://127.0.0.1:1/ou=elsewhere,dc=example,dc=com" "$T/run.out" ||
	fail "the referral is not an object error with its URL: $(cat "$T/run.out")"
# N again: user2 and user5 deleted, new1 and the staff group added.
log_has "$T/ma_dir.log" "import sent run=[0-9]+ mode=full objects=$N errors=1 " || fail "the import did not go on past the referral"
pass "a referral is an object error with its URL; the import goes on"
