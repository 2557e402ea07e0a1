#!/usr/bin/env bash
# The synchronization cycle with the real engine and file agents over the
# bus: hire -> projected + provisioned + exported; an attribute change flows;
# two sources with precedence (null falls through); an ambiguous join is
# reported, never guessed; a leaver is deprovisioned; a malformed row is an
# error on that row only; an unreadable file fails the run and changes
# nothing; kill -9 of an agent mid-import fails the run cleanly and the next
# run succeeds.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
timeout: 2s
file: { format: csv, path: data/hr.csv }
YAML
cat >"$T/agents/badge.yaml" <<YAML
type: file
object_type: badge
anchor: employeeId
file: { format: csv, path: data/badge.csv }
YAML
cat >"$T/agents/legacy.yaml" <<YAML
type: file
object_type: account
anchor: login
file: { format: csv, path: data/legacy.csv }
YAML
cat >"$T/agents/bad.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
error_limit: 3
file: { format: csv, path: data/bad.csv }
YAML
cat >"$T/agents/directory.yaml" <<YAML
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: data/directory.ldif }
YAML
sed -i 's|path: data/|path: ../data/|' "$T"/agents/*.yaml
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    filter: 'Eq(employeeType, "test")'
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    precedence: 10
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: sn, expr: sn }
      - { mv: givenName, expr: givenName }
      - { mv: displayName, expr: 'givenName + " " + sn' }
      - { mv: title, expr: title }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: badge-in
    direction: inbound
    agent: badge
    cs_type: badge
    mv_type: person
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    precedence: 5
    flows:
      - { mv: title, expr: title }
  - name: legacy-in
    direction: inbound
    agent: legacy
    cs_type: account
    mv_type: person
    join: [ { match: [ { cs: sn, mv: sn } ] } ]
    flows:
      - { mv: legacyLogin, expr: login }
  - name: to-directory
    direction: outbound
    agent: directory
    cs_type: inetOrgPerson
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    deprovision: delete
    flows:
      - { cs: objectClass, expr: 'Split("top,person,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: displayName }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
      - { cs: employeeNumber, expr: employeeId }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn,title,employeeType
1001,Ada,Lovelace,Analyst,employee
1002,Grace,Hopper,Admiral,employee
1003,Alan,Turing,Cryptanalyst,employee
1004,Dorothy,Turing,Engineer,employee
1009,Test,Account,Tester,test
CSV

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
start_broker
start_engine
for a in hr badge legacy directory bad; do start_agent "$a"; done

# Hire: projected, provisioned, exported, confirmed.
run_profile hr full-import
expect_counter adds 5
run_profile hr full-sync
expect_counter projected 4
expect_counter filtered 1
expect_counter provisioned 4
run_profile directory export
expect_counter exported-adds 4
grep -q '^dn: uid=alovelace,ou=people,dc=example,dc=com$' "$T/data/directory.ldif" || fail "Ada not in the directory"
grep -q '^cn: Ada Lovelace$' "$T/data/directory.ldif" || fail "displayName did not flow to cn"
if grep -q 'Test Account' "$T/data/directory.ldif"; then fail "a filtered test record was provisioned"; fi
run_profile directory full-import
expect_counter export-confirmed 4
run_profile directory full-sync
pass "hire: projected, provisioned, exported and confirmed by the next import"

# An attribute change flows to the directory.
sed -i 's/^1001,Ada,Lovelace,Analyst/1001,Ada,Lovelace,Chief Analyst/' "$T/data/hr.csv"
run_profile hr full-import
expect_counter updates 1
run_profile hr delta-sync
expect_counter connectors-with-flow-updates 1
expect_counter export-flows 1
run_profile directory export
expect_counter exported-updates 1
awk '/^dn: uid=alovelace/,/^$/' "$T/data/directory.ldif" | grep -q '^title: Chief Analyst$' || fail "title change did not reach the directory"
pass "an attribute change in HR flows to the directory"

# An export the directory did not keep is reported by the next import, and
# the following sync sends it again.
sed -i 's/^title: Chief Analyst$/title: Analyst/' "$T/data/directory.ldif"
run_profile directory full-import 3
grep -q "exported-change-not-reimported anchor=uid=alovelace,ou=people,dc=example,dc=com: attribute 'title'" "$T/run.out" ||
	fail "lost export not reported: $(cat "$T/run.out")"
run_profile directory delta-sync
expect_counter export-flows 1
run_profile directory export
expect_counter exported-updates 1
awk '/^dn: uid=alovelace/,/^$/' "$T/data/directory.ldif" | grep -q '^title: Chief Analyst$' || fail "title not exported again"
run_profile directory full-import
expect_counter export-confirmed 1
pass "an export that did not come back is reported (exported-change-not-reimported) and sent again"

# Precedence: badge (5) beats HR (10); a null from badge falls through to HR.
printf 'employeeId,title\n1001,Badge Analyst\n1002,\n' >"$T/data/badge.csv"
run_profile badge full-import
run_profile badge full-sync
expect_counter joined 2
out=$(ctl mv search employeeId=1001) || fail "mv search"
echo "$out" | grep -qE '^  title +Badge Analyst +from badge$' || fail "badge did not win title: $out"
out=$(ctl mv search employeeId=1002) || fail "mv search"
echo "$out" | grep -qE '^  title +Admiral +from hr$' || fail "null from badge did not fall through to hr: $out"
run_profile directory export
awk '/^dn: uid=alovelace/,/^$/' "$T/data/directory.ldif" | grep -q '^title: Badge Analyst$' || fail "winning title not exported"
pass "ranked precedence between two sources, null falls through"

ctl mv search --type person employeeId=1001 | grep -q '^metaverse [0-9a-f]\{16\}  type person ' || fail "mv search --type person"
ctl mv search employeeId=1001 --type group | grep -q "no metaverse object matches" || fail "mv search --type group matched a person"
if ctl mv search employeeId=1001 extra >/dev/null 2>&1; then fail "mv search accepted an extra argument"; fi
if ctl mv search employeeId=1001 -n 0 >/dev/null 2>&1; then fail "mv search accepted --limit 0"; fi
pass "mv search options: --type anywhere, extra arguments and bad limits refused"

# Ambiguous join: two Turings.
printf 'login,sn\nturing,Turing\nhopper,Hopper\n' >"$T/data/legacy.csv"
run_profile legacy full-import
run_profile legacy full-sync 3
expect_counter joined 1
grep -qE "ambiguous-join anchor=turing: rule 'legacy-in' join group 1 matches 2 metaverse objects: [0-9a-f]{16} [0-9a-f]{16}" "$T/run.out" ||
	fail "ambiguous join not reported: $(cat "$T/run.out")"
ctl cs show legacy turing | grep -q '^metaverse   -$' || fail "the ambiguous object was joined anyway"
pass "an ambiguous join is an error on that object, never a guess"

# A leaver is deprovisioned.
sed -i '/^1002,/d' "$T/data/hr.csv"
run_profile hr full-import
expect_counter deletes 1
run_profile hr delta-sync
# Her directory account is staged for deletion; her badge and legacy
# accounts, which Loom did not provision, are only disconnected.
expect_counter deprovisioned 3
expect_counter mv-deleted 1
ctl cs show badge 1002 | grep -q '^state       NORMAL$' || fail "badge connector not disconnected"
ctl cs show directory 'uid=ghopper,ou=people,dc=example,dc=com' | grep -q '^  pending export: DELETE' || fail "no delete staged"
run_profile directory export
expect_counter exported-deletes 1
if grep -q 'uid=ghopper' "$T/data/directory.ldif"; then fail "leaver still in the directory"; fi
out=$(ctl mv search employeeId=1002)
echo "$out" | grep -q "no metaverse object matches" || fail "leaver still in the metaverse: $out"
pass "a leaver is deprovisioned and deleted from the directory"

# A malformed row is an error on that row; the rest goes on.
printf '1010,Bro"ken,Row,X,employee\n1011,Donald,Knuth,Professor,employee\n' >>"$T/data/hr.csv"
run_profile hr full-import 3
expect_counter adds 1
grep -qE "malformed-record at $T/data/hr.csv:6:9: " "$T/run.out" || fail "no file:line:column for the bad row: $(cat "$T/run.out")"
pass "a malformed row is an error with file:line:column, the rest imports"

# A file that cannot be read fails the run and changes nothing.
ctl -o json cs search hr -n 1000 >"$T/cs.before" || fail "cs search"
mv "$T/data/hr.csv" "$T/data/hr.csv.away"
run_profile hr full-import 1
grep -q "cannot read '$T/data/hr.csv': No such file or directory" "$T/run.out" || fail "unclear failure: $(cat "$T/run.out")"
ctl -o json cs search hr -n 1000 >"$T/cs.after" || fail "cs search"
cmp -s "$T/cs.before" "$T/cs.after" || fail "a failed import changed the connector space"
mv "$T/data/hr.csv.away" "$T/data/hr.csv"
pass "an unreadable file fails the run with one line and changes nothing"

# Past the agent's error limit the run stops.
{ echo "employeeId,givenName"; for i in 1 2 3 4 5 6; do echo "$i,Bro\"ken"; done; } >"$T/data/bad.csv"
run_profile bad full-import 1
grep -q "stopped-error-limit" "$T/run.out" || fail "error limit not applied: $(cat "$T/run.out")"
pass "a run stops with stopped-error-limit past the agent's error_limit"

# kill -9 the agent in the middle of a large import.
awk 'BEGIN{print "employeeId,givenName,sn,title,employeeType"; for(i=1;i<=300000;i++) printf "%d,G%d,S%d,T,employee\n", 200000+i, i, i}' >"$T/data/hr.csv"
ctl run hr full-import --no-wait >"$T/runid" || fail "could not start the import"
wait_for "the import under way" 20 bash -c "'$CTL' -c '$CFG' runs hr -n 1 | awk 'NR==2 && \$4==\"in-progress\" && \$7>0 {ok=1} END{exit !ok}'"
stop ma_hr KILL
wait_for "the run to fail" 20 bash -c "'$CTL' -c '$CFG' runs hr -n 1 | awk 'NR==2 && \$4==\"failed\" {ok=1} END{exit !ok}'"
ctl run show "$(cat "$T/runid")" | grep -q "agent 'ma.hr' sent nothing for" || fail "failure not explained"
start_agent hr
run_profile hr full-import
# The five earlier people are not in the new file; the 300,000 are all
# there, whether the cut-short run had staged them or not.
expect_counter deletes 5
seen=$(( $(counter adds) + $(counter unchanged) ))
[ "$seen" -eq 300000 ] || fail "rerun saw $seen objects, want 300000"
pass "kill -9 of the agent mid-import fails the run cleanly; the next run succeeds"

stop engine TERM || fail "engine did not stop cleanly"
