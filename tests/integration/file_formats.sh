#!/usr/bin/env bash
# loom-ma-file's DSML v2, fixed-width and attribute-value pair formats in the
# full cycle with the engine (docs/agents.md "File formats"):
#   - DSML: a searchResponse imports (base64 and multi-valued values), a
#     batchRequest change file is a delta import (modify, delete, add,
#     modDN), a bad operation is an error with file:line and the rest of
#     the file imports, a document that is not well-formed fails the run
#     with file:line:column and changes nothing, an incomplete
#     searchResponse fails a full import; export rewrites a searchResponse
#     and writes batchRequest change files;
#   - fixed width: typed columns import, a line of the wrong length or a
#     bad integer is an error with file:line:column, the error limit stops
#     the run; export pads the columns, and a value too long for its column
#     is an error on that change only;
#   - AVP: multi-valued by repetition, change files (modify with +/-,
#     delete, add), a line without a separator is an error with its
#     location; export writes change files.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data/dsml-changes" "$T/data/avp-changes" "$T/data/out"

cat >"$T/agents/dir.yaml" <<'YAML'
type: file
object_type: person
anchor: uid
file: { format: dsml, path: ../data/dir.xml, delta_dir: ../data/dsml-changes }
YAML
cat >"$T/agents/payroll.yaml" <<'YAML'
type: file
object_type: person
anchor: employeeId
error_limit: 3
file:
  format: fixed
  path: ../data/payroll.txt
  fixed:
    header_lines: 1
    columns:
      - { name: employeeId, start: 1, width: 6 }
      - { name: givenName, width: 12 }
      - { name: salary, width: 8, type: integer }
      - { name: active, width: 1, type: boolean }
      - { name: hired, width: 10, type: datetime }
YAML
cat >"$T/agents/badge.yaml" <<'YAML'
type: file
object_type: person
anchor: badgeId
file: { format: avp, path: ../data/badge.avp, delta_dir: ../data/avp-changes }
YAML
# The shared test material's DSML documents, through the agent.
cat >"$T/agents/apache.yaml" <<'YAML'
type: file
anchor: dn
file: { format: dsml, path: ../data/apache.xml }
YAML
# export targets: a DSML file rewritten, DSML change files, a fixed-width
# roster, AVP change files
cat >"$T/agents/dsmlout.yaml" <<'YAML'
type: file
object_type: person
anchor: dn
file: { format: dsml, path: ../data/out/people.xml }
YAML
cat >"$T/agents/dsmlchg.yaml" <<'YAML'
type: file
object_type: person
anchor: dn
file: { format: dsml, path: ../data/out/unused.xml, export_mode: changes, changes_dir: ../data/out/dsml }
YAML
cat >"$T/agents/roster.yaml" <<'YAML'
type: file
object_type: person
anchor: uid
file:
  format: fixed
  path: ../data/out/roster.txt
  fixed:
    columns:
      - { name: uid, width: 8 }
      - { name: cn, width: 10 }
      - { name: mail, width: 30 }
YAML
cat >"$T/agents/avpout.yaml" <<'YAML'
type: file
object_type: person
anchor: uid
file: { format: avp, path: ../data/out/unused.avp, export_mode: changes, changes_dir: ../data/out/avp }
YAML
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: dir-in
    direction: inbound
    agent: dir
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: uid }
      - { mv: cn, expr: cn }
      - { mv: mail, expr: mail }
      - { mv: title, expr: title }
  - name: dsml-out
    direction: outbound
    agent: dsmlout
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid + ",ou=people,dc=example,dc=com"'
    deprovision: delete
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: cn }
      - { cs: mail, expr: mail }
      - { cs: title, expr: title }
  - name: dsml-changes
    direction: outbound
    agent: dsmlchg
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: title, expr: title }
  - name: roster-out
    direction: outbound
    agent: roster
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid'
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: cn }
      - { cs: mail, expr: mail }
  - name: avp-out
    direction: outbound
    agent: avpout
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid'
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: title, expr: title }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: dir }
YAML

# ---- DSML ----------------------------------------------------------------------------
cat >"$T/data/dir.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<batchResponse xmlns="urn:oasis:names:tc:DSML:2:0:core"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
               xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <searchResponse>
    <searchResultEntry dn="uid=ada,ou=people,dc=example,dc=com">
      <attr name="objectClass"><value>top</value><value>inetOrgPerson</value></attr>
      <attr name="uid"><value>ada</value></attr>
      <attr name="cn"><value xsi:type="xsd:base64Binary">QWRhIEzDs3ZlbGFjZQ==</value></attr>
      <attr name="mail"><value>ada@example.com</value><value>countess@example.com</value></attr>
    </searchResultEntry>
    <searchResultEntry dn="uid=bob,ou=people,dc=example,dc=com">
      <attr name="uid"><value>bob</value></attr>
      <attr name="cn"><value>Bob &amp; Co</value></attr>
    </searchResultEntry>
    <searchResultEntry dn="uid=cid,ou=people,dc=example,dc=com">
      <attr name="uid"><value>cid</value></attr>
      <attr name="cn"><value>Cid</value></attr>
    </searchResultEntry>
    <searchResultReference><ref>ldap://other.example.com/ou=x</ref></searchResultReference>
    <searchResultDone><resultCode code="0" descr="success"/></searchResultDone>
  </searchResponse>
</batchResponse>
XML

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
"$MAFILE" -c "$CFG" --agent payroll --check-config >/dev/null || fail "loom-ma-file rejects the fixed layout"
start_broker
start_engine
for a in dir payroll badge dsmlout dsmlchg roster avpout apache; do start_agent "$a"; done

# The Apache DSMLv2 parser documents: a valid searchResponse imports, one
# the Apache parser must refuse is an error with its location.
APACHE=$LOOM_SOURCE_DIR/../shared/testdata/dsml/apache-directory-ldap-api/searchResponse
if [ -d "$APACHE" ]; then
	cp "$APACHE/response_with_2_SRE_2_SRR_1_SRD.xml" "$T/data/apache.xml"
	run_profile apache full-import
	expect_counter adds 2
	ctl cs show apache 'cn=bob rush,dc=example,dc=com' | grep -q 'snvalue' || fail "Bob Rush not imported"
	cp "$APACHE/searchResultEntry/response_with_wrong_dn_attribute.xml" "$T/data/apache.xml"
	run_profile apache full-import 3
	grep -q "malformed-record at $T/data/apache.xml:22: dn 'This is a wrong DN' of <searchResultEntry>: not a DN" "$T/run.out" ||
		fail "the wrong DN is not an error with its location: $(cat "$T/run.out")"
	pass "dsml: the shared Apache documents: a valid searchResponse imports, a wrong DN is an error with file:line"
fi

run_profile dir full-import
expect_counter adds 3
n=$(ctl -o json cs show dir ada | grep -o '[a-z]*@example.com"' | wc -l)
[ "$n" -ge 2 ] || fail "multi-valued mail not imported: $(ctl cs show dir ada)"
ctl cs show dir ada | grep -q 'Ada Lóvelace' || fail "base64 value not decoded: $(ctl cs show dir ada)"
ctl cs show dir bob | grep -q 'Bob & Co' || fail "escaped value: $(ctl cs show dir bob)"
run_profile dir full-sync
expect_counter projected 3
pass "dsml: a searchResponse imports (base64, multi-valued, escaped values)"

run_profile dsmlout export
expect_counter exported-adds 3
grep -q '<searchResultEntry dn="uid=bob,ou=people,dc=example,dc=com">' "$T/data/out/people.xml" || fail "bob not exported: $(cat "$T/data/out/people.xml")"
grep -q 'Bob &amp; Co' "$T/data/out/people.xml" || fail "value not escaped: $(cat "$T/data/out/people.xml")"
run_profile dsmlout full-import
expect_counter export-confirmed 3
run_profile dsmlchg export
expect_counter exported-adds 3
ls "$T/data/out/dsml/"dsmlchg-*.xml >/dev/null 2>&1 || fail "no DSML change file"
grep -q '<addRequest requestID="1" dn="uid=' "$T/data/out/dsml/"dsmlchg-*.xml || fail "no addRequest: $(cat "$T/data/out/dsml/"*.xml)"
pass "dsml: export rewrites a searchResponse (confirmed by the next import) and writes batchRequest change files"

cat >"$T/data/dsml-changes/0001.xml" <<'XML'
<batchRequest xmlns="urn:oasis:names:tc:DSML:2:0:core">
  <modifyRequest dn="uid=ada,ou=people,dc=example,dc=com">
    <modification name="uid" operation="replace"><value>ada</value></modification>
    <modification name="title" operation="add"><value>Countess</value></modification>
  </modifyRequest>
  <delRequest dn="uid=bob,ou=people,dc=example,dc=com"/>
  <addRequest dn="uid=dee,ou=people,dc=example,dc=com">
    <attr name="uid"><value>dee</value></attr>
    <attr name="cn"><value>Dee</value></attr>
  </addRequest>
  <modDNRequest dn="uid=cid,ou=people,dc=example,dc=com" newrdn="uid=cid2"/>
  <modifyRequest dn="uid=ada,ou=people,dc=example,dc=com">
    <modification name="mail" operation="frobnicate"/>
  </modifyRequest>
</batchRequest>
XML
run_profile dir delta-import 3
expect_counter adds 1
expect_counter deletes 1
expect_counter renames 1
grep -qE "malformed-record at $T/data/dsml-changes/0001.xml:13: operation 'frobnicate'" "$T/run.out" ||
	fail "no file:line for the bad modification: $(cat "$T/run.out")"
run_profile dir delta-sync
out=$(ctl mv search uid=ada)
echo "$out" | grep -qE '^  title +Countess +from dir$' || fail "modify did not flow: $out"
pass "dsml: a batchRequest change file is a delta import; a bad operation is an error with file:line, the rest imports"

ctl -o json cs search dir -n 1000 >"$T/cs.before" || fail "cs search"
printf '<batchRequest xmlns="urn:oasis:names:tc:DSML:2:0:core">\n<delRequest dn="uid=ada,ou=people,dc=example,dc=com">\n</batchRequest>\n' \
	>"$T/data/dsml-changes/0002.xml"
run_profile dir delta-import 1
grep -qE "$T/data/dsml-changes/0002.xml:3:[0-9]+: .*mismatch" "$T/run.out" ||
	fail "not well-formed XML: no file:line:column: $(cat "$T/run.out")"
ctl -o json cs search dir -n 1000 >"$T/cs.after" || fail "cs search"
cmp -s "$T/cs.before" "$T/cs.after" || fail "a failed delta import changed the connector space"
rm "$T/data/dsml-changes/0002.xml"
pass "dsml: a document that is not well-formed fails the run with file:line:column and changes nothing"

sed -i 's|<searchResultDone><resultCode code="0" descr="success"/></searchResultDone>|<searchResultDone><resultCode code="4" descr="sizeLimitExceeded"/></searchResultDone>|' "$T/data/dir.xml"
run_profile dir full-import 1
grep -q "searchResultDone reports result code 4" "$T/run.out" || fail "incomplete search not refused: $(cat "$T/run.out")"
[ "$(cs_count dir)" -ge 3 ] || fail "an incomplete search deleted objects"
sed -i 's|<resultCode code="4" descr="sizeLimitExceeded"/>|<resultCode code="0" descr="success"/>|' "$T/data/dir.xml"
pass "dsml: a searchResponse that ends in sizeLimitExceeded fails the full import (no deletes)"

# ---- fixed width ------------------------------------------------------------------------
{
	echo "ID    NAME        SALARY  AHIRED"
	echo "000101Ann            52000Y2019-03-01"
	echo "000102Bert          61000 N2020-11-15"
	echo "000103Carla          7x000Y2021-01-04"
	echo "000104Dan            40000Y2022-02-02EXTRA"
	echo "000105Eve            45000n"
} >"$T/data/payroll.txt"
run_profile payroll full-import 3
expect_counter adds 3
grep -qE "malformed-record at $T/data/payroll.txt:4:19: column 'salary' \(characters 19-26\): '7x000' is not an integer" "$T/run.out" ||
	fail "bad integer not located: $(cat "$T/run.out")"
grep -qE "malformed-record at $T/data/payroll.txt:5:38: line has 42 characters, the layout \(file.fixed.columns\) ends at 37" "$T/run.out" ||
	fail "long line not located: $(cat "$T/run.out")"
out=$(ctl -o json cs show payroll 000101)
echo "$out" | grep -q '"int":"52000"' || fail "salary not an integer: $out"
echo "$out" | grep -q '"bool":true' || fail "active not a boolean: $out"
echo "$out" | grep -q '"time"' || fail "hired not a datetime: $out"
ctl cs show payroll 000105 >/dev/null || fail "a short line (trailing blanks stripped) was not read"
pass "fixed: typed columns import; a bad integer and a long line are errors with file:line:column"

{ head -n1 "$T/data/payroll.txt"; for i in 1 2 3 4 5; do echo "00020${i}Bad            1x000Y2019-03-01"; done; } >"$T/data/payroll.bad"
cp "$T/data/payroll.txt" "$T/data/payroll.good"
mv "$T/data/payroll.bad" "$T/data/payroll.txt"
run_profile payroll full-import 1
grep -q "stopped-error-limit" "$T/run.out" || fail "error limit not applied: $(cat "$T/run.out")"
mv "$T/data/payroll.good" "$T/data/payroll.txt"
pass "fixed: past error_limit the run stops"

cp "$T/data/payroll.txt" "$T/data/payroll.good"
{ head -n2 "$T/data/payroll.good"; head -c 17000000 /dev/zero | tr '\0' 'x'; } >"$T/data/payroll.txt"
run_profile payroll full-import 1
grep -qE "payroll.txt:3: a line longer than 16777216 bytes" "$T/run.out" || fail "an endless line is not refused: $(head -c 600 "$T/run.out")"
mv "$T/data/payroll.good" "$T/data/payroll.txt"
pass "fixed: a line without end past 16 MiB fails the run with file:line (the reader does not grow without bound)"

run_profile roster export 3
expect_counter exported-adds 2
grep -q '^ada ' "$T/data/out/roster.txt" && fail "a value was cut to fit its column: $(cat "$T/data/out/roster.txt")"
awk '{ if (length($0) != 48) bad = 1 } END { exit bad }' "$T/data/out/roster.txt" || fail "lines are not 48 characters: $(cat -A "$T/data/out/roster.txt")"
grep -q "value-too-long" "$T/run.out" || fail "a value too long for its column is not an error: $(cat "$T/run.out"; cat "$T/data/out/roster.txt")"
grep -q '^dee     Dee       ' "$T/data/out/roster.txt" || fail "dee not written: $(cat "$T/data/out/roster.txt")"
pass "fixed: export pads every column; a value longer than its column is an error on that change only"

# ---- AVP --------------------------------------------------------------------------------
cat >"$T/data/badge.avp" <<'AVP'
# badges
badgeId: B1
holder: Ann
door: north
door: south

badgeId:B2
holder: Bert
door: east

badgeId: B3
this line has no separator
door: west

badgeId: B4
photo:: /9j/AAECAw==
AVP
run_profile badge full-import 3
expect_counter adds 3
grep -qE "malformed-record at $T/data/badge.avp:12:1: line without ':'" "$T/run.out" || fail "bad AVP line not located: $(cat "$T/run.out")"
n=$(ctl -o json cs show badge B1 | grep -oE '"(north|south)"' | wc -l)
[ "$n" -eq 2 ] || fail "repeated door not multi-valued: $(ctl cs show badge B1)"
ctl -o json cs show badge B4 | grep -q '"bin"' || fail "base64 photo not binary: $(ctl -o json cs show badge B4)"
run_profile badge full-sync
cat >"$T/data/avp-changes/0001.avp" <<'AVP'
changetype: modify
badgeId: B1
-door: north
+door: west
holder: Ann Smith

changetype: delete
badgeId: B2

changetype: add
badgeId: B5
holder: Fay
AVP
run_profile badge delta-import
expect_counter updates 1
expect_counter deletes 1
expect_counter adds 1
out=$(ctl -o json cs show badge B1 | sed 's/.*"pending_import"//')
echo "$out" | grep -q '"west"' || fail "+door not applied: $out"
echo "$out" | grep -q '"north"' && fail "-door not applied: $out"
echo "$out" | grep -q 'Ann Smith' || fail "replace not applied: $out"
pass "avp: values repeat for multi-valued attributes; change files modify (+/-), delete and add; a bad line is located"

run_profile avpout export
expect_counter exported-adds 3
f=$(ls "$T/data/out/avp/"avpout-*.avp) || fail "no AVP change file"
grep -qx 'changetype: add' "$f" || fail "no add in $f: $(cat "$f")"
grep -qx 'title: Countess' "$f" || fail "title not written: $(cat "$f")"
pass "avp: export writes change files"
