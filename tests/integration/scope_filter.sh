#!/usr/bin/env bash
# FIM scoping filters on synchronization rules, end to end: the outbound rule
# provisions only employees outside Sales; a contractor who becomes an
# employee comes into scope and is provisioned; an employee who moves to
# Sales leaves scope and is deprovisioned; an inbound rule's filter keeps
# out-of-scope rows from contributing. A bad filter is refused at load.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/directory.yaml" <<YAML
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: ../data/directory.ldif }
YAML
for a in apps badge; do
	printf 'type: file\nobject_type: account\nanchor: login\nfile: { format: csv, path: ../data/%s.csv }\n' "$a" >"$T/agents/$a.yaml"
	printf 'login,dept\nada,\nbob,\n' >"$T/data/$a.csv"
done
printf 'type: file\nobject_type: account\nanchor: login\nfile: { format: csv, path: ../data/accounts.csv }\n' >"$T/agents/accounts.yaml"
printf 'login,dept\n' >"$T/data/accounts.csv"
cat >"$T/sync/links.yaml" <<'YAML'
rules:
  - { name: apps-in, direction: inbound, agent: apps, cs_type: account, mv_type: person,
      join: [ { match: [ { cs: login, mv: uid } ] } ] }
  - { name: badge-in, direction: inbound, agent: badge, cs_type: account, mv_type: person,
      join: [ { match: [ { cs: login, mv: uid } ] } ] }
  # join: manages existing accounts; out of scope they are disconnected.
  - name: apps-out
    direction: outbound
    agent: apps
    cs_type: account
    mv_type: person
    link_type: join
    deprovision: disconnect
    scope_filter: [ { all: [ { attribute: department, operator: ISNOTIN, values: [Sales, Marketing] } ] } ]
    flows: [ { cs: dept, expr: department } ]
  # sticky-join: out of scope the account stays connected; its flows stop.
  - name: badge-out
    direction: outbound
    agent: badge
    cs_type: account
    mv_type: person
    link_type: sticky-join
    scope_filter: [ { all: [ { attribute: department, operator: ISNOTIN, values: [Sales, Marketing] } ] } ]
    flows: [ { cs: dept, expr: department } ]
  # provision into an agent anchored on an attribute: the anchor is an expression.
  - name: accounts-out
    direction: outbound
    agent: accounts
    cs_type: account
    mv_type: person
    link_type: provision
    dn: '"login=" + uid'
    anchor: 'uid'
    scope_filter: [ { all: [ { attribute: employeeType, operator: EQUAL, value: employee } ] } ]
    flows: [ { cs: login, expr: uid, initial: true } ]
YAML
cat >"$T/sync/scoped.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    project: true
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    # Rows marked ignore never reach the metaverse through this rule.
    scope_filter:
      - all: [ { attribute: status, operator: NOTEQUAL, value: ignore } ]
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: uid, expr: 'LowerCase(givenName)' }
      - { mv: employeeType, expr: employeeType }
      - { mv: department, expr: department }
  - name: to-directory
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    deprovision: delete
    scope_filter:
      - all:
          - { attribute: employeeType, operator: EQUAL, value: employee }
          - { attribute: department, operator: ISNOTIN, values: [Sales, Marketing] }
    flows:
      - { cs: objectClass, expr: '"inetOrgPerson"', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: ou, expr: department }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,employeeType,department,status
1,Ada,employee,Research,
2,Bob,contractor,Research,
3,Cid,employee,Sales,
4,Dee,employee,Research,ignore
CSV

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the scoped rules"
start_broker
start_engine
for a in hr directory apps badge accounts; do start_agent "$a"; done

run_profile hr full-import
run_profile hr full-sync
expect_counter projected 3
expect_counter disconnectors 1
expect_counter provisioned 3
for a in apps badge; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
ctl cs show accounts ada | grep -q '^dn          login=ada$' || fail "the provisioned anchor is not the anchor expression's value"
run_profile directory export
[ "$(grep -c '^dn: ' "$T/data/directory.ldif")" -eq 1 ] || fail "provisioned more than the one in scope"
grep -q '^dn: uid=ada,' "$T/data/directory.ldif" || fail "Ada not provisioned"
pass "only objects in the scoping filter are provisioned; an out-of-scope row does not reach the metaverse"

# Bob becomes an employee (in scope), Ada moves to Marketing (out of scope).
sed -i 's/^2,Bob,contractor,/2,Bob,employee,/; s/^1,Ada,employee,Research,/1,Ada,employee,Marketing,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
# Bob into the directory and into accounts; Ada out of the directory (delete)
# and out of apps (join: disconnect); her badge stays (sticky-join).
expect_counter provisioned 2
expect_counter deprovisioned 2
run_profile directory export
expect_counter exported-adds 1
expect_counter exported-deletes 1
grep -q '^dn: uid=bob,' "$T/data/directory.ldif" || fail "Bob not provisioned on entering scope"
if grep -q '^dn: uid=ada,' "$T/data/directory.ldif"; then fail "Ada not deprovisioned on leaving scope"; fi
pass "entering scope provisions, leaving scope deprovisions"

ctl cs show apps ada | grep -q '^state       NORMAL$' || fail "join: Ada's app account not disconnected on leaving scope"
ctl cs show badge ada | grep -q '^state       JOINED$' || fail "sticky-join: Ada's badge account was disconnected"
ctl cs show apps bob | grep -q '^state       JOINED$' || fail "Bob's app account not joined"
pass "link types: join disconnects on leaving scope, sticky-join keeps the connector, provision builds its anchor"

# A bad filter is refused when the engine loads its rules.
cat >"$T/sync/bad.yaml" <<'YAML'
rules:
  - name: bad
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    scope_filter:
      - all: [ { attribute: department, operator: ISIN } ]
YAML
if out=$("$ENGINE" -c "$CFG" --check-config 2>&1); then fail "a filter without values was accepted"; fi
echo "$out" | grep -q "rule 'bad': scope_filter group 1 clause 1 (department): ISIN and ISNOTIN need 'values', a list" ||
	fail "unclear error: $out"
sed -i 's/operator: ISIN }/operator: ISSOMETHING }/' "$T/sync/bad.yaml"
if out=$("$ENGINE" -c "$CFG" --check-config 2>&1); then fail "a bad operator was accepted"; fi
echo "$out" | grep -q "bad.yaml:8:.*key 'rules\[0\].scope_filter\[0\].all\[0\].operator': bad value 'ISSOMETHING': expected one of EQUAL" ||
	fail "unclear operator error: $out"
rm "$T/sync/bad.yaml"
pass "bad scoping filters are named at load"

# Past ENG_MAX_INBOUND (64) inbound rules for one agent or one metaverse type
# the engine refuses the deployment rather than leave rules out.
{
	echo "rules:"
	for i in $(seq 1 65); do
		printf '  - { name: many-%d, direction: inbound, agent: badge, cs_type: person, mv_type: badgeholder, flows: [ { mv: x%d, expr: employeeId } ] }\n' "$i" "$i"
	done
} >"$T/sync/many.yaml"
if out=$("$ENGINE" -c "$CFG" --check-config 2>&1); then fail "65 inbound rules were accepted"; fi
echo "$out" | grep -q "65 inbound rules feed metaverse type 'badgeholder': at most 64 are supported" || fail "unclear: $out"
echo "$out" | grep -qE "agent 'badge' has 6[5-9] inbound rules: at most 64 are supported" || fail "unclear: $out"
rm "$T/sync/many.yaml"
pass "more inbound rules than supported are refused at load"
