#!/usr/bin/env bash
# Delta import from LDIF change files: add, modify, delete and modrdn records
# become pending imports; the watermark makes the next delta import start
# after the last file read; a change to an unknown object is an error on it;
# a CSV agent refuses delta import with a clear reason.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data/changes"
cat >"$T/agents/people.yaml" <<YAML
type: file
object_type: person
anchor: uid
file: { format: ldif, path: ../data/people.ldif, delta_dir: ../data/changes }
YAML
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: people-in
    direction: inbound
    agent: people
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: uid }
      - { mv: cn, expr: cn }
      - { mv: telephoneNumber, expr: telephoneNumber }
YAML
cat >"$T/data/people.ldif" <<'LDIF'
version: 1

dn: cn=Ann,ou=people,dc=example,dc=com
objectClass: person
cn: Ann
uid: ann
telephoneNumber: +1 555 0100

dn: cn=Bob,ou=people,dc=example,dc=com
objectClass: person
cn: Bob
uid: bob

dn: cn=Cid,ou=people,dc=example,dc=com
objectClass: person
cn: Cid
uid: cid
LDIF
printf 'employeeId,sn\n1,One\n' >"$T/data/hr.csv"

start_broker
start_engine
start_agent people
start_agent hr

run_profile people full-import
expect_counter adds 3
run_profile people full-sync
expect_counter projected 3

cat >"$T/data/changes/0001.ldif" <<'LDIF'
version: 1

dn: cn=Ann,ou=people,dc=example,dc=com
changetype: modify
replace: telephoneNumber
telephoneNumber: +1 555 0199
-

dn: cn=Bob,ou=people,dc=example,dc=com
changetype: delete

dn: cn=Dee,ou=people,dc=example,dc=com
changetype: add
objectClass: person
cn: Dee
uid: dee

dn: cn=Cid,ou=people,dc=example,dc=com
changetype: modrdn
newrdn: cn=Cidney
deleteoldrdn: 1
LDIF
run_profile people delta-import
expect_counter updates 1
expect_counter deletes 1
expect_counter adds 1
expect_counter renames 1
run_profile people delta-sync
expect_counter projected 1
expect_counter deleted-connectors 1
out=$(ctl mv search uid=ann)
echo "$out" | grep -qE '^  telephoneNumber +\+1 555 0199 +from people$' || fail "modify did not flow: $out"
ctl cs search people --dn 'cn=Cidney,ou=people,dc=example,dc=com' | grep -q '^cid ' || fail "modrdn not applied"
pass "delta import of add, modify, delete and modrdn change records"

# The watermark: nothing new, nothing imported; a new file is read alone.
run_profile people delta-import
grep -qE ', 0 objects(, |$)' "$T/run.out" || fail "old change files read again: $(cat "$T/run.out")"
printf 'version: 1\n\ndn: cn=Ann,ou=people,dc=example,dc=com\nchangetype: modify\nadd: mail\nmail: ann@example.com\n-\n' \
	>"$T/data/changes/0002.ldif"
run_profile people delta-import
expect_counter updates 1
pass "the watermark: the next delta import starts after the last file read"

# A change to an object the connector space does not hold.
printf 'version: 1\n\ndn: cn=Nobody,ou=people,dc=example,dc=com\nchangetype: delete\n' >"$T/data/changes/0003.ldif"
run_profile people delta-import 3
grep -q "update-of-unknown-object" "$T/run.out" || fail "unknown object not reported: $(cat "$T/run.out")"
pass "a change to an unknown object is an error on that object"

run_profile hr delta-import 1
grep -q "a CSV file holds no changes: run a full import" "$T/run.out" || fail "csv delta: $(cat "$T/run.out")"
pass "CSV delta import is refused with the reason"
