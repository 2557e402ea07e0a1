# lib_refs.sh - the deployment references.sh and memberof.sh share (sourced
# after lib.sh, not run):
#
#   hr (CSV)         employees with a manager column holding the manager's
#                    employee id (an anchor, not a DN)
#   corp (LDIF)      the same people by DN, and the group cn=staff whose
#                    members are those DNs; delta imports read LDIF change
#                    files from data/changes
#   directory (LDIF) gets a provisioned account per person, with manager as
#                    the manager's directory DN, and the group with member as
#                    the members' directory DNs
#
# refs_deploy [EXTRA_RULES] writes it; EXTRA_RULES (YAML list items) are
# added to the rules. Bob (2) and Cy (3) are synchronized (anchor order)
# before their manager Ada (9); staff holds Ada and Bob.
refs_deploy() {
	local extra=${1:-}
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
cat >"$T/sync/people.yaml" <<YAML
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
${extra}
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
printf 'employeeId,givenName,manager\n2,Bob,9\n3,Cy,9\n9,Ada,\n4,Dee,2\n' >"$T/data/hr.csv"
corp_person() { printf 'dn: uid=%s,ou=people,o=corp\nobjectClass: person\nuid: %s\nemployeeNumber: %s\n\n' "$1" "$1" "$2"; }
{
	corp_person ada 9; corp_person bob 2; corp_person cy 3; corp_person dee 4
	printf 'dn: cn=staff,ou=groups,o=corp\nobjectClass: groupOfNames\ncn: staff\n'
	printf 'member: uid=ada,ou=people,o=corp\nmember: uid=bob,ou=people,o=corp\n\n'
} >"$T/data/corp.ldif"
entry() { awk -v dn="$1" 'BEGIN{RS=""; IGNORECASE=1} { split($0, l, "\n"); if (tolower(l[1]) == "dn: " tolower(dn)) print }' "$T/data/directory.ldif"; }
}
