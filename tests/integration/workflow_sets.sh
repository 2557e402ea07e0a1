#!/usr/bin/env bash
# Sets in the live policy service (loom-workflow through loomctl and the real
# broker): ComputedMember = ExplicitMember ∪ Filter kept as persons are
# created, modified and deleted; request show lists the target's sets before
# and after, the transitions and the set-transition MPRs they match; a Filter
# that does not parse is denied with its column; /Set[ObjectID='…']/ComputedMember
# works in search; MPR cases that depend on the target's sets before and
# after, on a requester set built from a Set's members and on relative
# requesters; kill -9 of loom-workflow right after a commit that moved
# people between sets, and while one is being authorized: after a restart
# every set's members equal its filter's answer.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/policy"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/policy/mprs.yaml" <<'YAML'
mprs:
  - name: hr-converts-contractors
    requesters: /Person[Department = 'HR']
    operations: [modify]
    attributes: [EmployeeType]
    target_before: /Person[EmployeeType = 'Contractor']
    target_after: /Person[EmployeeType = 'Employee']
  - name: admins-set-titles
    requesters: /Person[ObjectID = /Set[DisplayName = 'Admins']/ComputedMember]
    operations: [modify]
    attributes: [JobTitle]
  - name: admins-staff-engineering
    requester_set: Admins
    operations: [modify]
    attributes: [Department]
    target_before_set: EngReports
    target_after_set: Engineering
  - name: managers-move-reports-within-rnd
    relative_to_target: Manager
    operations: [modify]
    attributes: [Department]
    target_before: /Person[Department = 'Engineering' or Department = 'Research']
    target_after: /Person[Department = 'Engineering' or Department = 'Research']
transition_mprs:
  - name: contractor-onboarding
    set: Contractors
    transition: in
    action_workflows: [create-badge, notify-it]
  - name: contractor-offboarding
    set: Contractors
    transition: out
    action_workflows: [revoke-badge]
YAML
mkdir -p "$T/policy/workflows"
cat >"$T/policy/workflows/badges.yaml" <<'YAML'
workflows:
  - name: create-badge
    kind: action
    activities:
      - { type: notify, to: [badges@example.org], subject: "badge for [//Target/AccountName]", body: "new" }
  - name: notify-it
    kind: action
    activities:
      - { type: notify, to: [it@example.org], subject: "contractor [//Target/AccountName]", body: "new" }
  - name: revoke-badge
    kind: action
    activities:
      - { type: notify, to: [badges@example.org], subject: "revoke [//Target/AccountName]", body: "gone" }
YAML

start_broker
start_workflow

# ok ARGS... : a request that must complete; prints the target's ObjectID
ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | grep -q ' completed ' || fail "request $* did not complete: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}

# denied WANT ARGS... : a request that must be denied with a reason containing WANT
denied() {
	local want=$1 out rc=0
	shift
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 3 ] || fail "request $* exited $rc, want 3: $out"
	echo "$out" | head -n1 | grep -q ' denied ' || fail "request $* was not denied: $out"
	echo "$out" | grep '^  reason     ' | grep -qF -- "$want" || fail "request $*: reason does not say '$want': $out"
}

# show ID : request show, into $T/show
show() {
	ctl -t 10s request show "$1" >"$T/show" || fail "request show $1"
}

# last_request : the id of the newest request
last_request() {
	ctl -t 10s requests -n 1 | head -n1 | awk '{print $1}'
}

# members SET_ID : the ObjectIDs of its ComputedMember, through a search, sorted
members() {
	ctl -t 10s search "/Set[ObjectID = '$1']/ComputedMember" -n 10000 | awk '{print $1}' | sort
}

# selected FILTER : what the filter selects now, sorted
selected() {
	ctl -t 10s search "$1" -n 10000 | awk '{print $1}' | sort
}

# ---- sets and membership ------------------------------------------------------
CONTR=$(ok create Set DisplayName=Contractors "Filter=/Person[EmployeeType = 'Contractor']")
ENG=$(ok create Set DisplayName=Engineering "Filter=/Person[Department = 'Engineering']")
ADMINS=$(ok create Set DisplayName=Admins)
HR=$(ok create Person AccountName=hr1 EmployeeType=Employee Department=HR)
MGR=$(ok create Person AccountName=mgr EmployeeType=Employee Department=Engineering)
# reports of anyone in Engineering: a filter through references
REPORTS=$(ok create Set DisplayName=EngReports "Filter=/Person[Manager = /Person[Department = 'Engineering']]")
[ -z "$(members "$CONTR")" ] || fail "Contractors is not empty: $(members "$CONTR")"
[ "$(members "$ENG")" = "$MGR" ] || fail "Engineering: $(members "$ENG"), want $MGR"

C1=$(ok create Person AccountName=c1 EmployeeType=Contractor Department=Engineering Manager="$MGR")
show "$(last_request)"
grep -q "^  set after  Set 'Contractors' $CONTR" "$T/show" || fail "c1's create does not list Contractors after: $(cat "$T/show")"
grep -q "^  joined     Set 'Contractors' $CONTR: $C1" "$T/show" || fail "c1 did not join Contractors: $(cat "$T/show")"
grep -q "^  joined     Set 'EngReports' $REPORTS: $C1" "$T/show" || fail "c1 did not join EngReports: $(cat "$T/show")"
grep -q "^  transition mpr 'contractor-onboarding': in Set 'Contractors': $C1 -> action:create-badge, action:notify-it\$" \
	"$T/show" || fail "onboarding MPR not matched: $(cat "$T/show")"
grep -q "contractor-offboarding" "$T/show" && fail "offboarding matched a join: $(cat "$T/show")"
[ "$(members "$CONTR")" = "$C1" ] || fail "Contractors: $(members "$CONTR"), want $C1"
ctl -t 10s get Set "$CONTR" | grep -q "^ComputedMember: $C1\$" || fail "get Set does not show ComputedMember: $(ctl -t 10s get Set "$CONTR")"
pass "a created person joins the sets whose filters select it"

ok modify "$C1" EmployeeType=Employee >/dev/null
show "$(last_request)"
grep -q "^  set before Set 'Contractors' $CONTR" "$T/show" || fail "no Contractors before: $(cat "$T/show")"
grep -q "^  set after  Set 'Contractors'" "$T/show" && fail "Contractors after: $(cat "$T/show")"
grep -q "^  left       Set 'Contractors' $CONTR: $C1" "$T/show" || fail "c1 did not leave Contractors: $(cat "$T/show")"
grep -q "^  transition mpr 'contractor-offboarding': out Set 'Contractors': $C1 -> action:revoke-badge" "$T/show" ||
	fail "offboarding MPR not matched: $(cat "$T/show")"
ctl -t 10s -o json request show "$(last_request)" >"$T/show.json"
grep -q '"transitions":\[{"set":{"id":"'"$CONTR"'","name":"Contractors","type":"Set"},"member_id":"'"$C1"'"' "$T/show.json" ||
	fail "request show -o json lacks the transition: $(cat "$T/show.json")"
[ -z "$(members "$CONTR")" ] || fail "Contractors still has $(members "$CONTR")"
# a change to the manager moves the reports (a filter through references)
ok modify "$MGR" Department=Sales >/dev/null
show "$(last_request)"
grep -q "^  left       Set 'EngReports' $REPORTS: $C1" "$T/show" || fail "c1 did not leave EngReports with its manager's move: $(cat "$T/show")"
[ -z "$(members "$REPORTS")" ] || fail "EngReports: $(members "$REPORTS")"
ok modify "$MGR" Department=Engineering >/dev/null
[ "$(members "$REPORTS")" = "$C1" ] || fail "EngReports after the manager came back: $(members "$REPORTS")"
# explicit members stay whatever the filter says; a deleted member leaves
TMP=$(ok create Person AccountName=tmp EmployeeType=Intern)
ok modify "$CONTR" +ExplicitMember="$TMP" >/dev/null
[ "$(members "$CONTR")" = "$TMP" ] || fail "explicit member not in Contractors: $(members "$CONTR")"
ok delete "$TMP" >/dev/null
show "$(last_request)"
grep -q "^  left       Set 'Contractors' $CONTR: $TMP" "$T/show" || fail "a deleted member did not leave: $(cat "$T/show")"
[ -z "$(members "$CONTR")" ] || fail "Contractors after the delete: $(members "$CONTR")"
pass "modify and delete move people out and in; request show lists the transitions"

# ---- save-time checks ----------------------------------------------------------
denied "attribute 'Filter': column 22: expected a string, an integer, true, false, a location path or a datetime after 'Department'" \
	create Set DisplayName=Broken "Filter=/Person[Department = ]"
denied "attribute 'Filter': column 17: '<' does not apply to references" \
	modify "$ENG" "Filter=/Person[Manager < 'x']"
denied "attribute 'ComputedMember' is kept by the service" modify "$ENG" ComputedMember="$HR"
[ -z "$(ctl -t 10s search "/Set[DisplayName = 'Broken']")" ] || fail "a denied Set was saved"
[ "$(members "$ENG")" = "$(printf '%s\n' "$MGR" "$C1" | sort)" ] || fail "Engineering changed by a denied request: $(members "$ENG")"
# the Set's own filter changed: computed in full
ok modify "$ENG" "Filter=/Person[Department = 'HR']" >/dev/null
[ "$(members "$ENG")" = "$HR" ] || fail "Engineering after its filter changed: $(members "$ENG")"
ok modify "$ENG" "Filter=/Person[Department = 'Engineering']" >/dev/null
pass "bad filters and ComputedMember writes are denied; a new filter is computed in full"

# ---- MPRs on sets before and after -----------------------------------------------
C2=$(ok create Person AccountName=c2 EmployeeType=Contractor Department=Engineering Manager="$MGR")
E2=$(ok create Person AccountName=e2 EmployeeType=Employee Department=Research Manager="$MGR")
OUT=$(ok create Person AccountName=out EmployeeType=Employee Department=Sales)
out=$(ctl -t 10s request modify "$C2" EmployeeType=Employee --as "$HR") || fail "HR converting a contractor: $out"
echo "$out" | grep -q "granted by hr-converts-contractors" || fail "not granted by hr-converts-contractors: $out"
denied "grants requester '$HR' modify of attribute 'EmployeeType' on Person '$E2'" \
	modify "$E2" EmployeeType=Contractor --as "$HR"          # target before: not a contractor
C3=$(ok create Person AccountName=c3 EmployeeType=Contractor)
denied "grants requester '$HR' modify of attribute 'EmployeeType' on Person '$C3'" \
	modify "$C3" EmployeeType=Intern --as "$HR"              # target after: not an employee
denied "grants requester '$OUT' modify of attribute 'EmployeeType'" \
	modify "$C3" EmployeeType=Employee --as "$OUT"           # requester not in HR
[ "$(members "$CONTR")" = "$C3" ] || fail "a denied request changed Contractors: $(members "$CONTR")"
# a requester set made of a Set's members: granted once the Set holds the requester
denied "grants requester '$OUT' modify of attribute 'JobTitle'" modify "$E2" JobTitle=Lead --as "$OUT"
ok modify "$ADMINS" +ExplicitMember="$OUT" >/dev/null
out=$(ctl -t 10s request modify "$E2" JobTitle=Lead --as "$OUT") || fail "an Admins member setting JobTitle: $out"
echo "$out" | grep -q "granted by admins-set-titles" || fail "not granted by admins-set-titles: $out"
# named sets: requester in Admins, target in EngReports before and in Engineering after
denied "grants requester '$OUT' modify of attribute 'Department' on Person '$E2'" \
	modify "$E2" Department=Sales --as "$OUT"                # after: not in Engineering
denied "grants requester '$OUT' modify of attribute 'Department' on Person '$HR'" \
	modify "$HR" Department=Engineering --as "$OUT"          # before: not in EngReports
out=$(ctl -t 10s request modify "$E2" Department=Engineering --as "$OUT") || fail "an Admins member staffing Engineering: $out"
echo "$out" | grep -q "granted by admins-staff-engineering" || fail "not granted by admins-staff-engineering: $out"
ok modify "$E2" Department=Research >/dev/null
ok modify "$ADMINS" -ExplicitMember="$OUT" >/dev/null
denied "grants requester '$OUT' modify of attribute 'JobTitle'" modify "$E2" JobTitle=Chief --as "$OUT"
# relative requester (the manager) with target-before and target-after sets
ok modify "$E2" Department=Engineering --as "$MGR" >/dev/null
denied "grants requester '$MGR' modify of attribute 'Department' on Person '$E2'" \
	modify "$E2" Department=Sales --as "$MGR"                # after: out of R&D
denied "grants requester '$HR' modify of attribute 'Department' on Person '$E2'" \
	modify "$E2" Department=Research --as "$HR"              # not the manager
ok modify "$OUT" Manager="$MGR" >/dev/null
denied "grants requester '$MGR' modify of attribute 'Department' on Person '$OUT'" \
	modify "$OUT" Department=Engineering --as "$MGR"         # before: not in R&D
pass "MPR matrix on sets before/after (filters and named Sets), a Set-made requester set, relative requesters"

# ---- kill -9 ----------------------------------------------------------------------
consistent() {
	[ "$(members "$CONTR")" = "$(selected "/Person[EmployeeType = 'Contractor']")" ] || fail "$1: Contractors $(members "$CONTR") differ from its filter $(selected "/Person[EmployeeType = 'Contractor']")"
	[ "$(members "$ENG")" = "$(selected "/Person[Department = 'Engineering']")" ] || fail "$1: Engineering differs from its filter"
	[ "$(members "$REPORTS")" = "$(selected "/Person[Manager = /Person[Department = 'Engineering']]")" ] || fail "$1: EngReports differs from its filter"
}
consistent "before the crashes"

crash_run() {
	local status=$1 name=$2
	shift 2
	start "$name" env LOOM_WORKFLOW_CRASH_AT="$status" "$WORKFLOW" -c "$CFG"
	wait_log "$name" "registered with broker"
	ctl -t 1s request "$@" >/dev/null 2>&1 && fail "request $* answered although the service was to crash at $status"
	wait_for "$name to die" 10 bash -c "! kill -0 ${PIDS[$name]}"
	stop "$name"
}

stop workflow
# right after the commit: the members moved with it, durably
crash_run committed crash1 modify "$MGR" Department=Research
start_workflow
[ "$(ctl -t 10s get - "$MGR" | sed -n 's/^Department: //p')" = Research ] || fail "the commit before the crash is lost"
[ -z "$(members "$REPORTS")" ] || fail "EngReports after a crash right after the commit: $(members "$REPORTS")"
consistent "after kill -9 right after a commit"
show "$(ctl -t 10s requests -n 1 | head -n1 | awk '{print $1}')"
grep -q "^  left       Set 'Engineering' $ENG: $MGR" "$T/show" || fail "the crashed request lacks its transitions: $(cat "$T/show")"
stop workflow
# while authorizing: members planned in memory, nothing written; re-run after the restart
crash_run authorizing crash2 modify "$C3" EmployeeType=Employee
start_workflow
[ "$(members "$CONTR")" = "" ] || fail "Contractors after the re-run: $(members "$CONTR")"
consistent "after kill -9 while authorizing"
stop workflow KILL
start_workflow
consistent "after a plain kill -9"
pass "kill -9: set members consistent with the resources"
