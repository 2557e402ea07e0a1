#!/usr/bin/env bash
# Reference attributes resolve through the metaverse to the target's DNs.
# The deployment (hr, corp, directory) is lib_refs.sh's.
#
# Checked: a manager listed after the employee in the same run is resolved
# by the end of that run; a manager change follows; a member joining the
# group in corp is exported as that one membership change (an ADD of one
# value, not the whole list); a member leaving likewise; a person leaving
# HR drops out of the directory group; preview explains the references.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/lib_refs.sh"
refs_deploy

start_broker
start_engine
start_agent hr
start_agent corp
start_agent directory

run_profile hr full-import
run_profile hr full-sync
expect_counter projected 4
expect_counter reference-resyncs 2   # Bob and Cy, once Ada was projected
run_profile directory export
run_profile directory full-import
run_profile directory full-sync
entry uid=bob,ou=people,dc=example,dc=com | grep -qi '^manager: uid=ada,ou=people,dc=example,dc=com$' ||
	fail "Bob's manager did not resolve to Ada's directory DN: $(entry uid=bob,ou=people,dc=example,dc=com)"
entry uid=cy,ou=people,dc=example,dc=com | grep -qi '^manager: uid=ada,ou=people,dc=example,dc=com$' ||
	fail "Cy's manager did not resolve"
entry uid=dee,ou=people,dc=example,dc=com | grep -qi '^manager: uid=bob,ou=people,dc=example,dc=com$' ||
	fail "Dee's manager did not resolve"
if entry uid=ada,ou=people,dc=example,dc=com | grep -qi '^manager:'; then fail "Ada has no manager"; fi
n=$(cs_count directory --state pending-export)
[ "$n" -eq 0 ] || fail "$n exports pending after the first cycle"

# A manager change follows (Cy now reports to Bob).
sed -i 's/^3,Cy,9$/3,Cy,2/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter export-flows 1
run_profile directory export
entry uid=cy,ou=people,dc=example,dc=com | grep -qi '^manager: uid=bob,ou=people,dc=example,dc=com$' ||
	fail "Cy's manager change did not follow: $(entry uid=cy,ou=people,dc=example,dc=com)"

# The group: provisioned with its members' directory DNs.
run_profile corp full-import
run_profile corp full-sync
expect_counter joined 4
expect_counter projected 1
expect_counter export-flows 1   # the group (its members resolved by the end of the run); the people: none
run_profile directory export
run_profile directory full-import
run_profile directory full-sync
g=$(entry cn=staff,ou=groups,dc=example,dc=com)
echo "$g" | grep -qi '^member: uid=ada,ou=people,dc=example,dc=com$' || fail "Ada not a member: $g"
echo "$g" | grep -qi '^member: uid=bob,ou=people,dc=example,dc=com$' || fail "Bob not a member: $g"
[ "$(echo "$g" | grep -ci '^member:')" -eq 2 ] || fail "the group should have 2 members: $g"

# One member joins in corp: exported as that one change.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\nadd: member\nmember: uid=cy,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0001.ldif"
run_profile corp delta-import
expect_counter updates 1
ctl -o json cs show corp 'cn=staff,ou=groups,o=corp' >"$T/staff.json" || fail "cs show failed"
python3 - "$T/staff.json" <<'PY' || fail "the staged import is not one ADD of one member: $(cat "$T/staff.json")"
import json, sys
o = json.load(open(sys.argv[1]))["object"]
d = o["pending_import"]["deltas"]
assert len(d) == 1 and d[0]["op"] == "ADD" and len(d[0]["values"]) == 1, d
PY
ctl preview corp 'cn=staff,ou=groups,o=corp' --delta >"$T/preview.out" || fail "preview failed"
grep -q 'flow member: +1 -0 reference (rule .corp-groups-in.*applied change by change)' "$T/preview.out" ||
	fail "preview does not show the change-by-change reference flow: $(cat "$T/preview.out")"
grep -q 'outbound member: +1 -0 reference (change by change)' "$T/preview.out" ||
	fail "preview does not show the one outbound membership change: $(cat "$T/preview.out")"
run_profile corp delta-sync
expect_counter export-flows 1
ctl -o json cs show directory 'cn=staff,ou=groups,dc=example,dc=com' >"$T/dstaff.json" || fail "cs show failed"
python3 - "$T/dstaff.json" <<'PY' || fail "the pending export is not one ADD of Cy: $(cat "$T/dstaff.json")"
import json, sys
o = json.load(open(sys.argv[1]))["object"]
d = o["pending_export"]["deltas"]
assert len(d) == 1 and d[0]["op"] == "ADD", d
vals = [list(v.values())[0] for v in d[0]["values"]]
assert [v.lower() for v in vals] == ["uid=cy,ou=people,dc=example,dc=com"], vals
PY
run_profile directory export
expect_counter exported-updates 1
g=$(entry cn=staff,ou=groups,dc=example,dc=com)
[ "$(echo "$g" | grep -ci '^member:')" -eq 3 ] || fail "the group should have 3 members: $g"
run_profile directory full-import
expect_counter export-confirmed 1

# One member leaves.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0002.ldif"
run_profile corp delta-import
run_profile corp delta-sync
expect_counter export-flows 1
run_profile directory export
g=$(entry cn=staff,ou=groups,dc=example,dc=com)
if echo "$g" | grep -qi '^member: uid=bob'; then fail "Bob is still a member: $g"; fi
[ "$(echo "$g" | grep -ci '^member:')" -eq 2 ] || fail "the group should have 2 members: $g"
run_profile directory full-import
run_profile directory full-sync

# Ada leaves HR: her person is deleted, her directory account deprovisioned,
# and the group (refreshed) no longer lists her.
sed -i '/^9,Ada,$/d' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter mv-deleted 1
expect_counter reference-refreshes 2   # the group and Bob, who referenced her
run_profile directory export
g=$(entry cn=staff,ou=groups,dc=example,dc=com)
if echo "$g" | grep -qi '^member: uid=ada'; then fail "Ada is still a member after leaving: $g"; fi
[ -z "$(entry uid=ada,ou=people,dc=example,dc=com)" ] || fail "Ada's account was not deleted"
if entry uid=bob,ou=people,dc=example,dc=com | grep -qi '^manager:'; then
	fail "Bob still names a manager who left: $(entry uid=bob,ou=people,dc=example,dc=com)"
fi
pass "manager and member references resolve through the metaverse, late in a run, change by change, and on leaving"
