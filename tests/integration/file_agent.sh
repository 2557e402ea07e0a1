#!/usr/bin/env bash
# The file agent's edges: export_mode changes writes updates (not only adds
# and deletes) to its change files; a CSV cell holds any number of values;
# a CSV file without its DN column is refused with the column named, and
# nothing in it is changed.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
cat >"$T/agents/directory.yaml" <<'YAML'
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: ../data/directory.ldif, export_mode: changes, changes_dir: ../data/changes }
YAML
cat >"$T/agents/accounts.yaml" <<'YAML'
type: file
object_type: account
anchor: employeeNumber
file: { format: csv, path: ../data/accounts.csv, dn_attribute: cn }
YAML
cat >"$T/agents/roster.yaml" <<'YAML'
type: file
object_type: account
anchor: employeeNumber
file: { format: csv, path: ../data/roster.csv, dn_attribute: cn }
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
      - { mv: title, expr: title }
  - name: to-directory
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    link_type: provision
    dn: '"uid=" + uid + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"inetOrgPerson"', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: title, expr: title }
  - name: to-accounts
    direction: outbound
    agent: accounts
    cs_type: account
    mv_type: person
    link_type: provision
    dn: '"cn=" + uid'
    flows:
      - { cs: employeeNumber, expr: employeeId, initial: true }
      - { cs: cn, expr: uid }
  - name: to-roster
    direction: outbound
    agent: roster
    cs_type: account
    mv_type: person
    link_type: provision
    dn: '"cn=" + uid'
    flows:
      - { cs: employeeNumber, expr: employeeId, initial: true }
      - { cs: cn, expr: uid }
YAML
# Ada holds 70 mail aliases in one cell.
aliases=$(for i in $(seq 1 70); do printf 'a%d@example.com|' "$i"; done)
printf 'employeeId,givenName,title,mailAlias\n1,Ada,Engineer,%s\n2,Bob,Clerk,\n' "${aliases%|}" >"$T/data/hr.csv"
# The accounts file exists without its DN column (cn).
printf 'employeeNumber,sn\n9,Nine\n' >"$T/data/accounts.csv"
cp "$T/data/accounts.csv" "$T/accounts.before"
# The roster holds a row the export does not touch, with an empty value
# between two others and a quoted cell.
printf 'employeeNumber,cn,note\n9,nine,a||b\n8,eight,"x, y"\n' >"$T/data/roster.csv"

start_broker
start_engine
start_agent hr
start_agent directory
start_agent accounts
start_agent roster
# loomctl agent test|schema: the agent reads its file as an import would
ctl agent test hr >"$T/test.out" || fail "agent test hr: $(cat "$T/test.out")"
grep -q "^agent hr: ok: csv file '.*hr.csv' readable (its first object parses), export directory writable" "$T/test.out" ||
	fail "agent test hr: $(cat "$T/test.out")"
ctl agent schema hr >"$T/schema.out" || fail "agent schema hr: $(cat "$T/schema.out")"
grep -q "^agent hr: csv file '.*hr.csv': 2 object(s) read" "$T/schema.out" &&
	grep -qE "^type person anchor=employeeId attributes=4$" "$T/schema.out" &&
	grep -qE "^  mailAlias +string +multi$" "$T/schema.out" && grep -qE "^  title +string +single$" "$T/schema.out" ||
	fail "agent schema hr: $(cat "$T/schema.out")"
rc=0
ctl agent test accounts >/dev/null 2>"$T/test.err" || rc=$?
[ "$rc" = 3 ] && grep -q "agent accounts: failed: .*accounts.csv.*cn" "$T/test.err" || fail "agent test accounts: rc=$rc $(cat "$T/test.err")"
pass "loomctl agent test and schema on a file agent (the file read, columns and multi-valued ones; a missing DN column named)"
run_profile hr full-import
n=$(ctl -o json cs show hr 1 | grep -o 'a[0-9]*@example.com' | sort -u | wc -l)
[ "$n" -eq 70 ] || fail "a cell of 70 values imported $n"
pass "a CSV cell holds 70 values"

run_profile hr full-sync
run_profile directory export
expect_counter exported-adds 2
ls "$T/data/changes/"*.ldif >/dev/null 2>&1 || fail "no change file written"
# The consumer of the change files applies them; the directory then holds both.
grep -hv '^changetype: add$' "$T/data/changes/"*.ldif >"$T/data/directory.ldif"
run_profile directory full-import
expect_counter export-confirmed 2

sed -i 's/^1,Ada,Engineer,/1,Ada,Architect,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile directory export
expect_counter exported-updates 1
last=$(ls "$T/data/changes/"*.ldif | sort | tail -n1)
awk 'BEGIN{RS=""} /uid=ada,ou=people/' "$last" | grep -q '^changetype: modify$' || fail "no modify in $last: $(cat "$last")"
awk 'BEGIN{RS=""} /uid=ada,ou=people/' "$last" | grep -q '^title: Architect$' || fail "new title not in $last"
pass "export_mode changes writes an update as a modify record"

run_profile accounts export 1
grep -q "accounts.csv: the DN column 'cn' (file.dn_attribute) is not in the header" "$T/run.out" "$T/run.err" ||
	fail "the missing DN column is not named: $(cat "$T/run.out" "$T/run.err")"
cmp -s "$T/accounts.before" "$T/data/accounts.csv" || fail "a refused export changed the file"
pass "a CSV without its DN column is refused, the column named, the file unchanged"

run_profile roster export
expect_counter exported-adds 2
tr -d '\r' <"$T/data/roster.csv" >"$T/roster.txt" # the writer ends rows with CRLF (RFC 4180)
grep -qx '9,nine,a||b' "$T/roster.txt" || fail "an untouched row was rewritten: $(cat "$T/roster.txt")"
grep -qx '8,eight,"x, y"' "$T/roster.txt" || fail "an untouched quoted row was rewritten: $(cat "$T/roster.txt")"
grep -qx '1,ada,' "$T/roster.txt" || fail "Ada not added: $(cat "$T/roster.txt")"
pass "a CSV export writes the rows it does not change as they were"
