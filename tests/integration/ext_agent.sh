#!/usr/bin/env bash
# loom-ma-ext in the full cycle with the engine, running the shipped example
# agent (config/examples/ext-agent.py over a JSON file): full import,
# projection, provisioning and export into a second system, the export
# confirmed by the next import, a delta import from the program's
# watermark, a password set through the program (sealed on the bus, a hash
# in the system). Then programs that misbehave: garbage output, a crash
# mid-import, silence past ext.timeout, a program that cannot be run, a
# line that is too long, an export program that dies before answering —
# each a clean run failure with one line saying why, after which the agent
# serves the next run; an object message without an anchor is an error on
# that object only.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "skip: python3 is not installed"; exit 77; }
MAEXT=$LOOM_BUILD_DIR/agents/loom-ma-ext
EXAMPLE=$LOOM_SOURCE_DIR/config/examples/ext-agent.py

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/progs"
ext_agent() { # NAME ANCHOR COMMAND-YAML [TIMEOUT]
	cat >"$T/agents/$1.yaml" <<YAML
type: ext
object_type: person
anchor: $2
timeout: 10s
ext:
  command: $3
  dir: $T/progs
  timeout: ${4:-10s}
  max_line: 4KiB
YAML
}
ext_agent crm employeeId "[python3, $EXAMPLE, --data, $T/data/crm.json]"
ext_agent app uid "[python3, $EXAMPLE, --data, $T/data/app.json]"
ext_agent garbage id "[sh, ./garbage.sh]"
ext_agent crash id "[python3, ./crash.py]"
ext_agent slow id "[sh, ./slow.sh]" 1s
ext_agent missing id "[./no-such-program]"
ext_agent longline id "[python3, ./longline.py]"
ext_agent badobj id "[python3, ./badobj.py]"
ext_agent expdie uid "[python3, ./expdie.py]"
ext_agent bulkapp uid "[python3, $EXAMPLE, --data, $T/data/bulk.json]"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: %s }\n' "$T/data/bulk.csv" >"$T/agents/bulk.yaml"
awk 'BEGIN { print "employeeId,cn"; for (i = 1; i <= 2500; i++) printf "%d,Bulk %d\n", i, i }' >"$T/data/bulk.csv"
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: crm-in
    direction: inbound
    agent: crm
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: uid, expr: uid }
      - { mv: cn, expr: cn }
      - { mv: mail, expr: mail }
      - { mv: title, expr: title }
  - name: to-app
    direction: outbound
    agent: app
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid + ",ou=app"'
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: cn }
      - { cs: mail, expr: mail }
      - { cs: title, expr: title }
  - name: to-expdie
    direction: outbound
    agent: expdie
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + uid'
    flows:
      - { cs: uid, expr: uid, initial: true }
  - name: bulk-in
    direction: inbound
    agent: bulk
    cs_type: person
    mv_type: bulkperson
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: cn, expr: cn }
  - name: to-bulkapp
    direction: outbound
    agent: bulkapp
    cs_type: person
    mv_type: bulkperson
    provision: true
    dn: '"uid=b" + employeeId'
    flows:
      - { cs: uid, expr: '"b" + employeeId', initial: true }
      - { cs: cn, expr: cn }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: crm }
YAML
cat >"$T/data/crm.json" <<'JSON'
{"seq": 3, "objects": {
  "1001": {"dn": "cn=Ada,ou=crm", "attrs": {"employeeId": "1001", "uid": "ada", "cn": "Ada Lovelace", "mail": ["ada@example.com", "countess@example.com"], "title": "Analyst"}},
  "1002": {"dn": "cn=Bob,ou=crm", "attrs": {"employeeId": "1002", "uid": "bob", "cn": "Bob Byte"}},
  "1003": {"dn": "cn=Cy,ou=crm", "attrs": {"employeeId": "1003", "uid": "cy", "cn": "Cy Ber"}},
  "1004": {"attrs": {"employeeId": "1004"}}
 }, "changelog": [], "passwords": {}}
JSON
# The misbehaving programs.
printf '#!/bin/sh\necho "hello, I am not JSON"\n' >"$T/progs/garbage.sh"
cat >"$T/progs/crash.py" <<'PY'
import json, os, sys
sys.stdin.readline()
for i in range(3):
    print(json.dumps({"type": "object", "anchor": str(i), "attrs": {"id": str(i)}}), flush=True)
print("about to crash", file=sys.stderr, flush=True)
os._exit(3)
PY
printf '#!/bin/sh\nread line\nsleep 30\n' >"$T/progs/slow.sh"
cat >"$T/progs/longline.py" <<'PY'
import sys
sys.stdin.readline()
sys.stdout.write('{"type":"object","anchor":"x","attrs":{"a":"' + "x" * 10000 + '"}}\n')
PY
cat >"$T/progs/badobj.py" <<'PY'
import json, sys
sys.stdin.readline()
print(json.dumps({"type": "object", "anchor": "1", "attrs": {"id": "1"}}))
print(json.dumps({"type": "object", "attrs": {"id": "2"}}))
print(json.dumps({"type": "object", "anchor": "3", "attrs": {"n": 1.5}}))
print(json.dumps({"type": "object", "anchor": "4", "attrs": {"id": "4", "when": {"time": "2024-05-01T12:00:00Z"}, "blob": {"binary": "AAEC"}, "n": 7, "ok": True}}))
print(json.dumps({"type": "end", "watermark": "w1"}))
PY
cat >"$T/progs/expdie.py" <<'PY'
import sys
sys.stdin.readline()
sys.stdin.readline()
sys.exit(5)
PY

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
"$MAEXT" -c "$CFG" --agent crm --check-config >/dev/null || fail "loom-ma-ext rejects its configuration"
ctl keys gen ma.app >/dev/null || fail "keys gen ma.app"
start_broker
start_engine
for a in crm app garbage crash slow missing longline badobj expdie bulkapp; do
	start "ma_$a" "$MAEXT" -c "$CFG" --agent "$a"
	wait_log "ma_$a" "registered with broker"
done
start_agent bulk

# ---- the cycle ------------------------------------------------------------------------
run_profile crm full-import 3
expect_counter adds 3
grep -q "bad-record anchor=1004" "$T/run.out" || fail "the program's error on 1004 is not reported: $(cat "$T/run.out")"
run_profile crm full-sync
expect_counter projected 3
expect_counter provisioned 6
run_profile app export
expect_counter exported-adds 3
python3 - "$T/data/app.json" <<'PY' || fail "app.json does not hold the export: $(cat "$T/data/app.json")"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["objects"]["ada"]
assert o["dn"] == "uid=ada,ou=app", o
assert sorted(o["attrs"]["mail"]) == ["ada@example.com", "countess@example.com"], o
assert o["attrs"]["title"] == "Analyst", o
assert len(d["objects"]) == 3
PY
run_profile app full-import
expect_counter export-confirmed 3
pass "ext: full import, projection, export into a second system, confirmed by the next import"

# A delta import from the program's watermark (the seq of its change log).
python3 - "$T/data/crm.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["objects"]["1001"]["attrs"]["title"] = "Chief Analyst"
del d["objects"]["1003"]
d["seq"] += 2
d["changelog"] += [{"seq": d["seq"] - 1, "anchor": "1001"}, {"seq": d["seq"], "anchor": "1003"}]
json.dump(d, open(p, "w"))
PY
run_profile crm delta-import
expect_counter updates 1
expect_counter deletes 1
run_profile crm delta-import
grep -qE ', 0 objects(, |$)' "$T/run.out" || fail "the watermark did not hold: $(cat "$T/run.out")"
run_profile crm delta-sync
run_profile app export
expect_counter exported-updates 1
python3 -c "import json,sys; d=json.load(open('$T/data/app.json')); assert d['objects']['ada']['attrs']['title']=='Chief Analyst', d" ||
	fail "the title change did not reach app"
pass "ext: delta import from the program's watermark; the change flows on to the other system"

# A password set through the program: sealed on the bus, hashed by the system.
printf 'correct horse battery\n' | ctl password set --agent app --anchor ada >"$T/pw.out" || fail "password set: $(cat "$T/pw.out")"
python3 -c "import json; d=json.load(open('$T/data/app.json')); assert '\$' in d['passwords']['ada']" || fail "no password hash stored"
grep -q "correct horse" "$T"/*.log && fail "the password appears in a log"
rc=0
printf 'short\n' | ctl password set --agent app --anchor ada >"$T/pw2.out" 2>"$T/pw2.err" || rc=$?
[ "$rc" -eq 3 ] || fail "a refused password exited $rc, want 3"
grep -q "constraint-violation" "$T/pw2.err" || fail "the program's refusal is not passed on: $(cat "$T/pw2.err")"
pass "ext: SetPassword reaches the program, which stores a hash; its refusal comes back with its code"

# SchemaRequest / TestConnectionRequest go to the program (schema, test)
ctl agent test crm >"$T/test.out" || fail "agent test crm: $(cat "$T/test.out")"
grep -qE "agent crm: ok: .*crm.json readable: [0-9]+ objects" "$T/test.out" || fail "agent test crm: $(cat "$T/test.out")"
ctl agent schema crm >"$T/schema.out" || fail "agent schema crm: $(cat "$T/schema.out")"
grep -q "^agent crm: program '" "$T/schema.out" && grep -qE "^type person anchor=id attributes=" "$T/schema.out" &&
	grep -qE "^  mail +string +multi$" "$T/schema.out" && grep -qE "^  uid +string +single$" "$T/schema.out" ||
	fail "agent schema crm: $(cat "$T/schema.out")"
rc=0
ctl agent test garbage 2>"$T/test.err" >/dev/null || rc=$?
[ "$rc" = 3 ] && grep -q "agent garbage: failed: .*is not JSON" "$T/test.err" || fail "agent test garbage: rc=$rc $(cat "$T/test.err")"
rc=0
ctl agent schema crash 2>"$T/test.err" >/dev/null || rc=$?
[ "$rc" = 3 ] && grep -q "agent crash: cannot read the schema: .*type 'object' has no place here" "$T/test.err" ||
	fail "agent schema crash: rc=$rc $(cat "$T/test.err")"
rc=0
ctl agent test nosuch 2>"$T/test.err" >/dev/null || rc=$?
[ "$rc" = 1 ] && grep -q "no agent 'nosuch'" "$T/test.err" || fail "agent test nosuch: rc=$rc $(cat "$T/test.err")"
pass "ext: loomctl agent test|schema ask the program (test, schema); garbage and a wrong answer fail with the reason"

# ---- programs that misbehave ------------------------------------------------------------
run_profile garbage full-import 1
grep -q "output line 1 is not JSON (column 1: expected a value, found 'h'): 'hello, I am not JSON'" "$T/run.out" ||
	fail "garbage output: $(cat "$T/run.out")"
pass "ext: garbage output fails the run with the line and where it stops being JSON"

run_profile crash full-import 1
grep -q "program 'python3' exited with status 3 before its end message; its last stderr line: about to crash" "$T/run.out" ||
	fail "crash: $(cat "$T/run.out")"
[ "$(cs_count crash)" -eq 0 ] || [ "$(cs_count crash)" -eq 3 ] || fail "crash: strange staging"
pass "ext: a program that crashes mid-import fails the run (exit status and its last stderr line), no deletes"

run_profile slow full-import 1
grep -q "program 'sh' sent nothing for 1.0s (ext.timeout): killed before its end message" "$T/run.out" ||
	fail "timeout: $(cat "$T/run.out")"
pass "ext: a silent program is killed after ext.timeout and the run fails"

run_profile missing full-import 1
grep -q "cannot run './no-such-program' (in '$T/progs'): No such file or directory" "$T/run.out" ||
	fail "missing program: $(cat "$T/run.out")"
run_profile longline full-import 1
grep -q "wrote a line longer than 4096 bytes (ext.max_line): killed" "$T/run.out" || fail "long line: $(cat "$T/run.out")"
pass "ext: a program that cannot be run, or writes a line past max_line, fails the run with the reason"

run_profile badobj full-import 3
expect_counter adds 2
grep -q "bad-object at program output line 2: object without its anchor" "$T/run.out" || fail "bad object: $(cat "$T/run.out")"
grep -q "is not an integer (write other numbers as strings)" "$T/run.out" || fail "bad value: $(cat "$T/run.out")"
out=$(ctl -o json cs show badobj 4)
echo "$out" | grep -q '"time":"1714564800000000"' || fail "time value: $out"
echo "$out" | grep -q '"bin":"AAEC"' || fail "binary value: $out"
echo "$out" | grep -q '"int":"7"' || fail "integer value: $out"
echo "$out" | grep -q '"bool":true' || fail "boolean value: $out"
pass "ext: an object message without an anchor or with a bad value is an error on that object; typed values import"

run_profile expdie export 1
grep -q "exited with status 5 before answering every change of its batch" "$T/run.out" || fail "export death: $(cat "$T/run.out")"
pass "ext: an export program that dies before its results fails the run; the changes stay pending"

# An export of several batches: the engine keeps two in flight, the program
# may read the second before it answers the first, results go back in order.
run_profile bulk full-import
run_profile bulk full-sync
expect_counter provisioned 2500
run_profile bulkapp export
expect_counter exported-adds 2500
python3 -c "import json; d=json.load(open('$T/data/bulk.json')); assert len(d['objects']) == 2500, len(d['objects'])" ||
	fail "bulk.json does not hold 2500 objects"
grep -c "export batch applied run=[0-9]* seq=" "$T/ma_bulkapp.log" | grep -qx 3 || fail "not three batches: $(grep batch "$T/ma_bulkapp.log")"
pass "ext: an export of three batches, two in flight at a time, results in batch order"

# The agents survived all of that: a normal run still works.
run_profile crm full-import 3
run_profile garbage full-import 1
for a in crm garbage crash slow missing longline badobj expdie; do
	kill -0 "${PIDS[ma_$a]}" 2>/dev/null || fail "loom-ma-ext --agent $a died"
done
pass "ext: every agent process is still serving after its program's failures"
