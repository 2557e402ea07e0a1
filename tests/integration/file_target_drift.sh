#!/usr/bin/env bash
# An object deleted behind Loom's back in a system anchored on the DN (an
# LDIF file, anchor: dn): the full import marks it deleted, and the sync
# that removes it provisions it again under the same anchor (its DN) in the
# same write batch; the export writes it back (ldap_target_drift.sh has the
# same against slapd, anchored on entryUUID).
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$T/sync/"
# A second outbound rule to the same agent (join: it manages what the first
# provisions): its flows must reach the object provisioned again too. The
# file sorts after people.yaml: rules apply in file order.
cat >"$T/sync/zz-extra.yaml" <<'YAML'
rules:
  - name: directory-description
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    flows:
      - { cs: description, expr: '"works in " + department' }
YAML
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: inetOrgPerson\nanchor: dn\nfile: { format: ldif, path: ../data/directory.ldif }\n' >"$T/agents/directory.yaml"
{
	echo "employeeId,givenName,sn,title,department,employeeType,manager"
	for i in 1 2 3; do echo "100$i,Given$i,Sur$i,T$i,D,employee,"; done
} >"$T/data/hr.csv"

start_broker
start_engine
start_agent hr
start_agent directory
run_profile hr full-import
run_profile hr full-sync
run_profile directory export
expect_counter exported-adds 3
run_profile directory full-import
grep -q "^dn: uid=gsur2,ou=people,dc=example,dc=com$" "$T/data/directory.ldif" || fail "gsur2 was not exported"

# The record of gsur2 removed from the file by hand.
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/^dn: uid=gsur2,/' "$T/data/directory.ldif" >"$T/dir.new" &&
	mv "$T/dir.new" "$T/data/directory.ldif"
grep -q "uid=gsur2" "$T/data/directory.ldif" && fail "the record was not removed"
run_profile directory full-import
expect_counter deletes 1
run_profile directory delta-sync
grep -q "provisioning-conflict" "$T/run.out" && fail "provisioning-conflict: $(cat "$T/run.out")"
expect_counter deleted-connectors 1
expect_counter provisioned 1
[ "$(cs_count directory)" = 3 ] || fail "the connector space holds $(cs_count directory) objects, want 3"
ctl cs show directory "uid=gsur2,ou=people,dc=example,dc=com" >"$T/obj.txt" || fail "no object under the DN anchor"
grep -qi "placeholder" "$T/obj.txt" || fail "the object under the DN is not a placeholder: $(cat "$T/obj.txt")"
run_profile directory export
expect_counter exported-adds 1
awk 'BEGIN { RS = "" } /^dn: uid=gsur2,/' "$T/data/directory.ldif" >"$T/gsur2.ldif"
grep -qx "title: T2" "$T/gsur2.ldif" && grep -qx "description: works in D" "$T/gsur2.ldif" || fail "gsur2 was not written back with its attributes: $(cat "$T/data/directory.ldif")"
run_profile directory full-import
expect_counter deletes 0
expect_counter adds 0
pass "a record removed from a DN-anchored file is provisioned again under the same anchor and written back"
