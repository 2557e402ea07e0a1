#!/usr/bin/env bash
# A change that moves a provisioned object's computed DN is exported as a
# rename: the department is part of the DN, a department change in HR moves
# the directory entry, and the next import of the directory sees the same
# object at its new DN (no delete, no add).
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: inetOrgPerson\nanchor: dn\nfile: { format: ldif, path: ../data/directory.ldif }\n' >"$T/agents/directory.yaml"
cat >"$T/sync/people.yaml" <<'YAML'
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
      - { mv: uid, expr: 'LowerCase(givenName)' }
      - { mv: department, expr: department }
  - name: to-directory
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    link_type: provision
    deprovision: delete
    dn: '"uid=" + uid + ",ou=" + EscapeDNComponent(department) + ",dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"inetOrgPerson"', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: ou, expr: department }
YAML
printf 'employeeId,givenName,department\n1,Ada,Research\n2,Bob,Research\n' >"$T/data/hr.csv"

start_broker
start_engine
start_agent hr
start_agent directory
run_profile hr full-import
run_profile hr full-sync
run_profile directory export
run_profile directory full-import
expect_counter export-confirmed 2
grep -q '^dn: uid=ada,ou=Research,dc=example,dc=com$' "$T/data/directory.ldif" || fail "Ada not at her first DN"

sed -i 's/^1,Ada,Research/1,Ada,Sales/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter export-renames 1
expect_counter export-flows 1
run_profile directory export
expect_counter exported-updates 1
grep -q '^dn: uid=ada,ou=Sales,dc=example,dc=com$' "$T/data/directory.ldif" || fail "Ada not moved: $(cat "$T/data/directory.ldif")"
if grep -q 'uid=ada,ou=Research' "$T/data/directory.ldif"; then fail "the old DN is still there"; fi
awk 'BEGIN{RS=""} /uid=ada,ou=Sales/' "$T/data/directory.ldif" | grep -q '^ou: Sales$' || fail "the ou attribute did not follow"
run_profile directory full-import
expect_counter adds 0
expect_counter deletes 0
expect_counter export-confirmed 1
ctl cs search directory --dn 'uid=ada,ou=Sales,dc=example,dc=com' | grep -q '^uid=ada,ou=sales,dc=example,dc=com ' ||
	fail "the connector was not re-keyed to its new DN"
run_profile directory full-sync
n=$(cs_count directory --state pending-export)
[ "$n" -eq 0 ] || fail "$n exports still pending after the rename"
pass "a department change moves the provisioned DN: exported as a rename, re-imported as the same object"
