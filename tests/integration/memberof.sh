#!/usr/bin/env bash
# ISMEMBEROF scoping: a VPN system gets an account for every member of the
# staff group in corp, and loses it when the member leaves the group. The
# group's membership is the metaverse's (references resolved through it),
# and a membership change refreshes just that member.
#
# (The deployment is references.sh's, plus the vpn agent and rule.)
#
#   hr (CSV)        employees with a manager column holding the manager's
#                   employee id (an anchor, not a DN)
#   corp (LDIF)     the same people by DN, and a group whose members are
#                   those DNs; delta imports read LDIF change files
#   directory (LDIF) gets a provisioned account per person, with manager as
#                   the manager's directory DN, and the group with member
#                   as the members' directory DNs
#
# Checked: a manager listed after the employee in the same run is resolved
# by the end of that run; a manager change follows; a member joining the
# group in corp is exported as that one membership change (an ADD of one
# value, not the whole list); a member leaving likewise; a person leaving
# HR drops out of the directory group; preview explains the references.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data/changes"
cat >"$T/agents/hr.yaml" <<'YAML'
type: file
object_type: person
anchor: employeeId
references: [manager]
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/corp.yaml" <<'YAML'
type: file
anchor: dn
references: [member]
file: { format: ldif, path: ../data/corp.ldif, delta_dir: ../data/changes }
YAML
cat >"$T/agents/directory.yaml" <<'YAML'
type: file
object_type: inetOrgPerson
anchor: dn
references: [manager, member]
file: { format: ldif, path: ../data/directory.ldif }
YAML
cat >"$T/agents/vpn.yaml" <<'YAML'
type: file
anchor: dn
file: { format: ldif, path: ../data/vpn.ldif }
YAML
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
      - { mv: manager, expr: manager }
  - name: corp-people-in
    direction: inbound
    agent: corp
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeNumber, mv: employeeId } ] } ]
    precedence: 50
    flows: []
  - name: corp-groups-in
    direction: inbound
    agent: corp
    cs_type: groupOfNames
    mv_type: group
    project: true
    join: [ { match: [ { cs: cn, mv: cn } ] } ]
    flows:
      - { mv: cn, expr: cn }
      - { mv: member, expr: member }
  - name: people-out
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    link_type: provision
    deprovision: delete
    dn: '"uid=" + uid + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"inetOrgPerson"', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: manager, expr: manager }
  - name: groups-out
    direction: outbound
    agent: directory
    cs_type: groupOfNames
    mv_type: group
    link_type: provision
    deprovision: delete
    dn: '"cn=" + EscapeDNComponent(cn) + ",ou=groups,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"groupOfNames"', initial: true }
      - { cs: cn, expr: cn, initial: true }
      - { cs: member, expr: member }
  - name: vpn-out
    direction: outbound
    agent: vpn
    cs_type: account
    mv_type: person
    link_type: provision
    deprovision: delete
    scope_filter:
      - all:
          - { attribute: member, operator: ISMEMBEROF, value: "CN=Staff,ou=groups,o=corp", agent: corp }
    dn: '"uid=" + uid + ",ou=vpn,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"account"', initial: true }
      - { cs: uid, expr: uid, initial: true }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
# Bob (2) and Cy (3) are synchronized (anchor order) before their manager Ada (9).
printf 'employeeId,givenName,manager\n2,Bob,9\n3,Cy,9\n9,Ada,\n4,Dee,2\n' >"$T/data/hr.csv"
corp_person() { printf 'dn: uid=%s,ou=people,o=corp\nobjectClass: person\nuid: %s\nemployeeNumber: %s\n\n' "$1" "$1" "$2"; }
{
	corp_person ada 9; corp_person bob 2; corp_person cy 3; corp_person dee 4
	printf 'dn: cn=staff,ou=groups,o=corp\nobjectClass: groupOfNames\ncn: staff\n'
	printf 'member: uid=ada,ou=people,o=corp\nmember: uid=bob,ou=people,o=corp\n\n'
} >"$T/data/corp.ldif"
entry() { awk -v dn="$1" 'BEGIN{RS=""; IGNORECASE=1} { split($0, l, "\n"); if (tolower(l[1]) == "dn: " tolower(dn)) print }' "$T/data/directory.ldif"; }

vpn_has() { grep -qi "^dn: uid=$1,ou=vpn,dc=example,dc=com$" "$T/data/vpn.ldif" 2>/dev/null; }

start_broker
start_engine
start_agent hr
start_agent corp
start_agent directory
start_agent vpn

run_profile hr full-import
run_profile hr full-sync
[ "$(counter provisioned)" -eq 4 ] || fail "only the 4 directory accounts should be provisioned before the group exists"
run_profile corp full-import
run_profile corp full-sync
run_profile vpn export
vpn_has ada || fail "Ada (a member) has no VPN account: $(cat "$T/data/vpn.ldif" 2>/dev/null)"
vpn_has bob || fail "Bob (a member) has no VPN account"
if vpn_has cy || vpn_has dee; then fail "a non-member got a VPN account: $(cat "$T/data/vpn.ldif")"; fi
run_profile vpn full-import
run_profile vpn full-sync

# Cy joins the group: one refresh, one provisioning.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\nadd: member\nmember: uid=cy,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0001.ldif"
run_profile corp delta-import
run_profile corp delta-sync
expect_counter reference-refreshes 2   # Cy (a member now), and the group for the VPN system (Cy has a connector there now)
expect_counter provisioned 1
run_profile vpn export
vpn_has cy || fail "Cy joined the group but has no VPN account"

# Bob leaves it: deprovisioned (deleted) from the VPN system.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0002.ldif"
run_profile corp delta-import
run_profile corp delta-sync
expect_counter deprovisioned 1
run_profile vpn export
if vpn_has bob; then fail "Bob left the group but keeps his VPN account"; fi
vpn_has ada || fail "Ada lost her VPN account"
vpn_has cy || fail "Cy lost his VPN account"

# A bad group agent is refused at load with the file and clause.
sed -i 's/agent: corp }$/agent: crop }/' "$T/sync/people.yaml"
out=$("$ENGINE" -c "$CFG" --check-config 2>&1) && fail "a clause naming an unknown agent was accepted"
echo "$out" | grep -q "people.yaml: rule 'vpn-out': scope_filter group 1 clause 1 (member): no agent 'crop'" ||
	fail "unclear error for an unknown agent: $out"
pass "ISMEMBEROF provisions group members, follows joins and leaves one member at a time, and checks its agent"
