#!/usr/bin/env bash
# loomctl preview: the synchronization path of one object, explained, with
# nothing written; --commit applies it; a leaver's preview shows the cascade
# of deletes it would cause downstream; an ambiguous join shows its error.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$T/sync/"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: inetOrgPerson\nanchor: dn\nfile: { format: ldif, path: ../data/directory.ldif }\n' >"$T/agents/directory.yaml"
cp "$LOOM_SOURCE_DIR/config/samples/hr.csv" "$T/data/hr.csv"
start_broker
start_engine
start_agent hr
start_agent directory
run_profile hr full-import

ctl preview hr 1002 >"$T/p.out" || fail "preview failed: $(cat "$T/p.out")"
for want in \
	"^object hr 1002 \(employeeId=1002\): normal-disconnector, pending import ADD$" \
	"^connector filter: not filtered$" \
	"^join rule 'hr-people-in' group 1: 0 candidates$" \
	"^projected into a new person object [0-9a-f]{16} by rule 'hr-people-in'$" \
	"^flow displayName = Grace Hopper \(rule 'hr-people-in', precedence 10, from hr 1002\)$" \
	"^outbound rule 'people-to-directory' to directory: in scope, no connector$" \
	"^  provision directory uid=ghopper,ou=people,dc=example,dc=com$" \
	"^result: pending export to directory uid=ghopper,ou=people,dc=example,dc=com: ADD .*cn = Grace Hopper" \
	"^nothing was written \(preview; --commit applies it\)$"; do
	grep -qE "$want" "$T/p.out" || fail "preview lacks /$want/: $(cat "$T/p.out")"
done
ctl mv search employeeId=1002 | grep -q "no metaverse object matches" || fail "a preview wrote to the metaverse"
ctl cs show hr 1002 | grep -q "pending import: ADD" || fail "a preview consumed the pending import"
pass "preview explains filter, join, projection, flows, provisioning and the export, and writes nothing"

ctl -o json preview hr 1003 >"$T/p.json" || fail "preview -o json failed"
grep -qE '^\{"steps":\[".*"projected into a new person object' "$T/p.json" || fail "preview -o json: $(cat "$T/p.json")"
python3 - "$T/p.json" <<'PY' || fail "preview -o json is not structured as documented: $(cat "$T/p.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["agent"] == "hr" and r["anchor"] == "1003", r
kinds = [d["kind"] for d in r["decisions"]]
for k in ("object", "filter", "join", "projection", "flow", "scope", "provision", "export"):
    assert k in kinds, (k, kinds)
prov = [d for d in r["decisions"] if d["kind"] == "provision"][0]
assert prov["depth"] == 1 and prov["text"].startswith("provision directory uid="), prov
assert len(r["decisions"]) == len(r["steps"]) - 1, "every step but the closing note is a decision"
x = [e for e in r["exports"] if e["agent"] == "directory"]
assert len(x) == 1 and x[0]["export"]["kind"] == "ADD", r["exports"]
names = {d["name"]: d for d in x[0]["export"]["deltas"]}
assert names["cn"]["values"][0]["str"] and "uid" in names and x[0]["dn"].startswith("uid="), names
PY
pass "preview -o json: decisions with their kinds, and the pending exports as data"

ctl preview hr 1002 --commit | grep -q '^committed$' || fail "--commit not applied"
ctl mv search employeeId=1002 | grep -qE '^  displayName +Grace Hopper +from hr$' || fail "--commit did not write"
pass "preview --commit applies the decisions"

# The rest, then a leaver: the cascade of deletes downstream.
run_profile hr full-sync
run_profile directory export
run_profile directory full-import
sed -i '/^1002,/d' "$T/data/hr.csv"
run_profile hr full-import
ctl preview hr 1002 >"$T/p.out" || fail "leaver preview: $(cat "$T/p.out")"
for want in \
	"pending import DELETE$" \
	"^disconnected from metaverse object [0-9a-f]{16}; deletion rule agent-disconnected: the metaverse object is deleted$" \
	"^deprovision directory uid=ghopper,ou=people,dc=example,dc=com \(uid=ghopper,ou=people,dc=example,dc=com\) by delete$" \
	"^result: pending export to directory uid=ghopper,ou=people,dc=example,dc=com: DELETE$"; do
	grep -qE "$want" "$T/p.out" || fail "leaver preview lacks /$want/: $(cat "$T/p.out")"
done
ctl mv search employeeId=1002 | grep -q "displayName" || fail "the leaver preview deleted the metaverse object"
pass "a leaver's preview shows the metaverse deletion and the delete it cascades to the directory"

if out=$(ctl preview hr 9999 2>&1); then fail "preview of an unknown anchor succeeded"; fi
echo "$out" | grep -q "no object with anchor '9999' in agent 'hr'" || fail "unclear: $out"
pass "preview of an unknown object is a clear error"
