#!/usr/bin/env bash
# loom-workflow, the policy service, through loomctl against the real broker:
# create/modify/add/remove/delete requests; schema violations (regex, type,
# single-valued, required, unknown attribute, dangling reference) denied with
# the attribute and the rule; the MPR permit/deny matrix (requester in/out of
# the requester set, attribute allowed or not, target-before, target-after,
# relative requesters: the target itself and its manager); search with an
# XPath filter; kill -9 after a request is stored, while it is authorized
# and right after its commit: after a restart nothing is half-applied and
# every request's history is whole.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/policy"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/policy/mprs.yaml" <<'YAML'
mprs:
  - name: helpdesk-titles
    requesters: /Person[Department = 'Helpdesk']
    operations: [modify]
    attributes: [JobTitle, DisplayName]
    target_before: /Person[EmployeeType = 'Employee']
    target_after: /Person[not(JobTitle = 'CEO')]
  - name: helpdesk-creates-contractors
    requesters: /Person[Department = 'Helpdesk']
    operations: [create]
    target_after: /Person[EmployeeType = 'Contractor']
  - name: manager-department
    relative_to_target: Manager
    operations: [modify]
    attributes: [Department]
    authz_workflows: [manager-approval]
    action_workflows: [notify-hr]
  - name: self-display-name
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [DisplayName]
  - name: owners-members
    relative_to_target: Owner
    operations: [add, remove]
    attributes: [ExplicitMember]
  - name: disabled-everything
    disabled: true
    requesters: /Person
    operations: [create, delete, modify, add, remove]
YAML
# the workflows the MPRs name (docs/workflows.md): an authorization that
# passes by itself, and a notification (no mail.relay: logged)
mkdir -p "$T/policy/workflows"
cat >"$T/policy/workflows/basic.yaml" <<'YAML'
workflows:
  - name: manager-approval
    kind: authz
    activities:
      - type: filter
        filter: /Person[EmployeeType = 'Employee' or EmployeeType = 'Contractor']
  - name: notify-hr
    kind: action
    activities:
      - type: notify
        to: [hr@example.org]
        subject: "Department of [//Target/AccountName]"
        body: "[//Request/Summary]"
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

# attr ID NAME : the values of attribute NAME of resource ID, one per line
attr() {
	ctl -t 10s get - "$1" | sed -n "s/^$2: //p"
}

# ---- create, schema violations ------------------------------------------
MGR=$(ok create Person AccountName=mgr DisplayName=Manager EmployeeType=Employee Department=Engineering)
HD=$(ok create Person AccountName=helpdesk1 EmployeeType=Employee Department=Helpdesk)
EMP=$(ok create Person AccountName=emp1 DisplayName="Emp One" EmployeeType=Employee Manager="$MGR" \
	EmployeeStartDate=2026-01-05 JobTitle=Engineer)
CON=$(ok create Person AccountName=con1 EmployeeType=Contractor)
OUT=$(ok create Person AccountName=outsider EmployeeType=Employee Department=Sales)
[ "$(attr "$EMP" Manager)" = "$MGR" ] || fail "emp1's Manager is not mgr: $(ctl -t 10s get Person "$EMP")"
[ "$(attr "$EMP" EmployeeStartDate)" = "2026-01-05T00:00:00Z" ] || fail "datetime not converted: $(attr "$EMP" EmployeeStartDate)"
[ "$(attr "$EMP" Creator)" = "" ] || fail "sync is no resource, yet Creator is set"
attr "$EMP" CreatedTime | grep -qE '^20[0-9]{2}-' || fail "no CreatedTime on emp1"
pass "create"

denied "attribute 'AccountName': 'bad name!' does not match regex '^[A-Za-z0-9._-]{1,64}\$' ($T/policy/schema.yaml:10:13)" \
	create Person AccountName='bad name!'
denied "attribute 'EmployeeStartDate': 'soon' is not a valid datetime (type rule" \
	create Person AccountName=x1 EmployeeStartDate=soon
denied "attribute 'Manager' is single-valued, the request gives it 2 values (multi rule" \
	create Person AccountName=x2 Manager="$MGR" Manager="$HD"
denied "attribute 'AccountName' is required for type 'Person' (required binding, $T/policy/schema.yaml:" \
	create Person DisplayName=nobody
denied "attribute 'Shoe' is not bound to type 'Person' (binding rule)" create Person AccountName=x3 Shoe=42
denied "attribute 'Manager': '00000000-0000-4000-8000-000000000000' is no resource" \
	create Person AccountName=x4 Manager=00000000-0000-4000-8000-000000000000
denied "attribute 'CreatedTime' is set by the service" modify "$EMP" CreatedTime=2020-01-01
denied "unknown object type 'Spaceship'" create Spaceship DisplayName=x
denied "attribute 'EmployeeType': 'Boss' does not match regex" modify "$EMP" EmployeeType=Boss
n=$(ctl -t 10s search "/Person[starts-with(AccountName, 'x')]" | grep -c . || true)
[ "$n" = 0 ] || fail "a denied create left $n resources"
pass "schema violations are denied with the attribute and the rule"

# ---- MPR matrix ------------------------------------------------------------
out=$(ctl -t 10s request modify "$EMP" JobTitle=Lead --as "$HD") || fail "helpdesk JobTitle: $out"
echo "$out" | grep -q "granted by helpdesk-titles" || fail "helpdesk JobTitle not granted by helpdesk-titles: $out"
[ "$(attr "$EMP" JobTitle)" = Lead ] || fail "JobTitle not changed"
denied "no management policy rule grants requester '$OUT' modify of attribute 'JobTitle' on Person '$EMP' (default deny)" \
	modify "$EMP" JobTitle=Hacked --as "$OUT"
denied "no management policy rule grants requester '$HD' modify of attribute 'Email'" \
	modify "$EMP" Email=new@example.org --as "$HD"
denied "no management policy rule grants requester '$HD' modify of attribute 'JobTitle' on Person '$CON'" \
	modify "$CON" JobTitle=Lead --as "$HD"          # target-before: not an Employee
denied "no management policy rule grants requester '$HD' modify of attribute 'JobTitle'" \
	modify "$EMP" JobTitle=CEO --as "$HD"           # target-after: would be CEO
[ "$(attr "$EMP" JobTitle)" = Lead ] || fail "a denied request changed JobTitle"
# one attribute granted, one not: the whole request is denied
denied "modify of attribute 'Email'" modify "$EMP" JobTitle=Other Email=a@b.c --as "$HD"
[ "$(attr "$EMP" JobTitle)" = Lead ] || fail "a partly granted request changed JobTitle"
# relative requester: the target's manager
out=$(ctl -t 10s request modify "$EMP" Department=Research --as "$MGR") || fail "manager Department: $out"
echo "$out" | grep -q "granted by manager-department" || fail "not granted by manager-department: $out"
echo "$out" | grep -q "run        authz:manager-approval done" || fail "authz workflow not run: $out"
echo "$out" | grep -q "run        action:notify-hr done" || fail "action workflow not run: $out"
denied "grants requester '$OUT' modify of attribute 'Department'" modify "$EMP" Department=Sales --as "$OUT"
denied "grants requester '$MGR' modify of attribute 'Department' on Person '$OUT'" \
	modify "$OUT" Department=Research --as "$MGR"  # not his report
# relative requester: the target itself
ok modify "$EMP" DisplayName="Emp the First" --as "$EMP" >/dev/null
denied "grants requester '$EMP' modify of attribute 'DisplayName' on Person '$OUT'" \
	modify "$OUT" DisplayName=Nope --as "$EMP"
# create: target-after decides
C2=$(ok create Person AccountName=con2 EmployeeType=Contractor --as "$HD")
[ "$(attr "$C2" Creator)" = "$HD" ] || fail "Creator of con2 is not helpdesk1"
denied "grants requester '$HD' create of attribute 'AccountName'" \
	create Person AccountName=emp9 EmployeeType=Employee --as "$HD"
# a disabled MPR grants nothing; an unknown requester is refused
denied "grants requester '$OUT' delete of Person '$CON'" delete "$CON" --as "$OUT"
denied "requester 'nobody' is no resource" modify "$EMP" DisplayName=x --as nobody
# group owners add and remove members
GRP=$(ok create Group DisplayName=Team Owner="$MGR")
ok modify "$GRP" +ExplicitMember="$EMP" +ExplicitMember="$CON" --as "$MGR" >/dev/null
[ "$(attr "$GRP" ExplicitMember | sort)" = "$(printf '%s\n' "$EMP" "$CON" | sort)" ] || fail "members not added"
ok modify "$GRP" -ExplicitMember="$CON" --as "$MGR" >/dev/null
[ "$(attr "$GRP" ExplicitMember)" = "$EMP" ] || fail "member not removed: $(attr "$GRP" ExplicitMember)"
denied "grants requester '$OUT' add of attribute 'ExplicitMember'" modify "$GRP" +ExplicitMember="$CON" --as "$OUT"  # (a join of himself would be a join request: workflow_groups.sh)
pass "MPR permit/deny matrix"

# ---- search ------------------------------------------------------------------
got=$(ctl -t 10s search "/Person[Manager = /Person[AccountName = 'mgr']]" | awk '{print $1}')
[ "$got" = "$EMP" ] || fail "search by manager: got '$got', want $EMP"
got=$(ctl -t 10s search "/Person[EmployeeType = 'Contractor']" | awk '{print $1}' | sort)
[ "$got" = "$(printf '%s\n' "$CON" "$C2" | sort)" ] || fail "search contractors: got '$got'"
ctl -t 10s -o json search "/Group[Owner = '$MGR']" | grep -q "\"object_id\":\"$GRP\"" || fail "json search for the group"
rc=0
ctl -t 10s search "/Person[AccountName = ]" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "column" "$T/err" || fail "a bad filter: exit $rc, $(cat "$T/err")"
pass "search"

# ---- delete ---------------------------------------------------------------
ok delete "$C2" >/dev/null
ctl -t 10s get Person "$C2" 2>"$T/err" && fail "a deleted resource is still there"
grep -q "no Person '$C2'" "$T/err" || fail "get of a deleted resource: $(cat "$T/err")"
[ -z "$(ctl -t 10s search "/Person[AccountName = 'con2']")" ] || fail "the index still finds a deleted resource"
pass "delete"

# ---- kill -9 -----------------------------------------------------------------
nreq=$(ctl -t 10s requests -n 10000 | grep -c .)
stop workflow KILL
start_workflow
# The broker forgets the killed instance only after its liveness: until then
# a request may go to it and time out, so the count is polled (a lost
# request never comes back, and the wait fails).
same_count() { [ "$(ctl -t 2s requests -n 10000 2>/dev/null | grep -c .)" = "$nreq" ]; }
wait_for "the $nreq requests after kill -9 (requests lost?)" 20 same_count
[ "$(attr "$EMP" JobTitle)" = Lead ] || fail "JobTitle lost across kill -9"

# crash_run STATUS NAME ARGS... : loom-workflow kills itself (SIGKILL) right
# after storing STATUS for the next request; restart it; returns the request id
crash_run() {
	local status=$1 name=$2
	shift 2
	start "$name" env LOOM_WORKFLOW_CRASH_AT="$status" "$WORKFLOW" -c "$CFG"
	wait_log "$name" "registered with broker"
	ctl -t 1s request "$@" >/dev/null 2>&1 && fail "request $* answered although the service was to crash at $status"
	wait_for "$name to die" 10 bash -c "! kill -0 ${PIDS[$name]}"
	stop "$name"
	start "$name-after" "$WORKFLOW" -c "$CFG"
	wait_log "$name-after" "registered with broker"
	log_has "$T/$name-after.log" "recovered requests=1" || fail "$name: no request recovered"
	CRASHED=$(sed -n 's/.*request \([0-9a-f-]*\) was .* when the service stopped.*/\1/p' "$T/$name-after.log")
	[ -n "$CRASHED" ] || fail "$name: which request was resumed is not logged"
	stop "$name-after"
}

stop workflow
crash_run committed crash1 create Person AccountName=crash1 EmployeeType=Employee
start_workflow
[ "$(ctl -t 10s search "/Person[AccountName = 'crash1']" | grep -c .)" = 1 ] || fail "the commit before the crash is not there once"
ctl -t 10s request show "$CRASHED" >"$T/show"
head -1 "$T/show" | grep -q " completed create Person " || fail "crash1 not completed: $(cat "$T/show")"
for st in validating authorizing committed completed; do
	grep -qE "^    .* $st " "$T/show" || fail "crash1 history lacks $st: $(cat "$T/show")"
done
grep -q "the commit was durable before a restart" "$T/show" || fail "crash1 history does not say it resumed"
stop workflow

crash_run validating crash2 modify "$EMP" JobTitle=Principal --as "$HD"
start_workflow
[ "$(attr "$EMP" JobTitle)" = Principal ] || fail "the request stored before the crash was not run again"
ctl -t 10s request show "$CRASHED" >"$T/show"
head -1 "$T/show" | grep -q " completed modify " || fail "crash2 not completed: $(cat "$T/show")"
grep -q "validated again after a restart" "$T/show" || fail "crash2 history does not say it was re-run"
grep -q "granted by helpdesk-titles" "$T/show" || fail "crash2 was not authorized by its MPR"
stop workflow

# crashed while authorizing a request that is denied: denied after the restart, nothing applied
crash_run authorizing crash3 modify "$EMP" JobTitle=CEO --as "$HD"
start_workflow
[ "$(attr "$EMP" JobTitle)" = Principal ] || fail "a denied request was applied across a crash"
ctl -t 10s request show "$CRASHED" >"$T/show"
head -1 "$T/show" | grep -q " denied modify " || fail "crash3 not denied: $(cat "$T/show")"
[ "$(ctl -t 10s requests --status validating | grep -c .)" = 0 ] || fail "a request is left validating"
[ "$(ctl -t 10s requests --status authorizing | grep -c .)" = 0 ] || fail "a request is left authorizing"
[ "$(ctl -t 10s requests --status committed | grep -c .)" = 0 ] || fail "a request is left committed"
pass "kill -9: nothing half-applied, histories whole"

# ---- loomctl odds ----------------------------------------------------------------
for c in request requests get search; do
	ctl "$c" --help | grep -q "^usage: loomctl $c" || fail "loomctl $c --help"
done
ctl -t 10s -o json request show "$CRASHED" | grep -q '"status":"DENIED"' || fail "request show -o json"
ctl -t 10s -o json get Person "$EMP" | grep -q "\"object_id\":\"$EMP\"" || fail "get -o json"
rc=0
ctl -t 10s requests --status nonsense 2>"$T/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "unknown status 'nonsense'" "$T/err" || fail "requests --status nonsense: $(cat "$T/err")"
pass "loomctl"

# paging: --offset K skips the K newest requests, or the first K resources
ctl -t 10s requests -n 6 >"$T/all.out" || fail "requests -n 6"
ctl -t 10s requests -n 2 --offset 3 >"$T/page.out" || fail "requests --offset 3"
[ "$(sed -n 4,5p "$T/all.out")" = "$(grep -v "^(more" "$T/page.out")" ] ||
	fail "requests -n 2 --offset 3 is not the 4th and 5th newest: $(cat "$T/all.out" "$T/page.out")"
ctl -t 10s search '/Person' -n 3 >"$T/sall.out" || fail "search -n 3"
ctl -t 10s search '/Person' -n 1 --offset 2 >"$T/spage.out" || fail "search --offset 2"
[ "$(sed -n 3p "$T/sall.out")" = "$(head -n1 "$T/spage.out")" ] ||
	fail "search -n 1 --offset 2 is not the third: $(cat "$T/sall.out" "$T/spage.out")"
rc=0
ctl requests --offset -1 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "bad --offset '-1'" "$T/err" || fail "a bad --offset: rc=$rc $(cat "$T/err")"
pass "requests and search page with --offset"
