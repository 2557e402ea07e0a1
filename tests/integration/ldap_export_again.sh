#!/usr/bin/env bash
# An add sent again after its result was lost (the engine died after the
# agent applied the batch, found by scripts/crash-trials.sh): loom-ma-ldap
# finds the entry already there; when it holds every value of the add, the
# add counts as done and the entry's entryUUID comes back as the anchor;
# when a value differs (another object at that DN), the add stays an
# entry-already-exists error on that object. Simulated deterministically:
# people exported once, then the engine's store is thrown away (it forgets
# every result) and the cycle runs again.
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
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
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
      - { mv: uid, expr: 'LowerCase(sn)' }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid }
      - { cs: cn, expr: sn }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
YAML
printf 'employeeId,sn,title\n1,Lovelace,Analyst\n2,Hopper,Admiral\n3,Turing,Cryptanalyst\n' >"$T/data/hr.csv"
start_broker
start_engine
start_agent hr
start_ldap_agent dir
run_profile dir full-import
run_profile hr full-import
run_profile hr full-sync
run_profile dir export
expect_counter exported-adds 3

# the engine forgets every result: its store is thrown away
stop engine
rm -rf "$T/state/engine"
sed -i 's/^3,Turing,Cryptanalyst$/3,Turing,Mathematician/' "$T/data/hr.csv"
start_engine
run_profile hr full-import
run_profile hr full-sync
run_profile dir export 3
expect_counter exported-adds 2
grep -qE "entry-already-exists .*uid=turing,ou=people" "$T/run.out" ||
	{ cat "$T/run.out" >&2; fail "the add that differs from the entry is not an entry-already-exists error"; }
n=$(grep -c "add of .* was already done .*counted as applied" "$T/ma_dir.log")
[ "$n" = 2 ] || fail "the agent took $n adds as applied before, want 2"
uuid=$(ldap_admin ldapsearch -LLL -b "uid=lovelace,ou=people,$SUFFIX" -s base entryUUID | sed -n 's/^entryUUID: //p')
ctl cs show dir "$uuid" >/dev/null || fail "the connector of lovelace is not keyed by its entryUUID $uuid"
[ "$(ldap_admin ldapsearch -LLL -b "ou=people,$SUFFIX" -s one '(objectClass=inetOrgPerson)' dn | grep -c '^dn:')" = 3 ] ||
	fail "slapd does not hold exactly 3 people"
pass "an add sent again finds its entry: done with the entry's anchor; an entry that differs stays entry-already-exists"
