#!/usr/bin/env bash
# Authorization workflows of the live policy service (issue 7): a profile
# change needing the manager's approval, approved (committed, mail to the
# manager with the approval id and the two commands) and rejected (denied,
# nothing changed); somebody who is no approver is refused; an approval
# nobody decides escalates to a set after its timeout (mail to them) and is
# approved there; one without escalation expires and the request is denied;
# kill -9 of loom-workflow while an approval is pending, restarted, then
# approved; deadlines that pass while the service is down escalate and expire
# after the restart; a filter validation denies a profane DisplayName; an external
# program reads the request as JSON and its exit decides, and one that hangs
# is killed at its timeout. Mail goes through a real SMTP conversation to a
# sink on loopback.
. "$(dirname "$0")/lib.sh"

write_config
start_smtp_sink
cat >>"$CFG" <<YAML
mail:
  relay: 127.0.0.1:$SMTP_PORT
  from: loom@example.org
  retry: 1s
workflow:
  scheduler: 1s
YAML
mkdir -p "$T/policy/workflows"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/policy/mprs.yaml" <<'YAML'
mprs:
  - name: own job title, with the manager's approval
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [JobTitle]
    authz_workflows: [manager-approval]
  - name: own department, approval escalating to HR
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [Department]
    authz_workflows: [escalating-approval]
  - name: own employee id, approval that expires
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [EmployeeID]
    authz_workflows: [expiring-approval]
  - name: own display name, checked
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [DisplayName]
    authz_workflows: [clean-words]
  - name: own first name, checked outside
    relative_to_target: ObjectID
    operations: [modify]
    attributes: [FirstName, LastName]
    authn_workflows: [known-requester]
    authz_workflows: [outside-check]
YAML
cat >"$T/check.sh" <<'SH'
#!/bin/sh
# reads the request as JSON; refuses a FirstName of Mallory, hangs for Zed
input=$(cat)
echo "$input" >"$(dirname "$0")/last-input.json"
case "$input" in
*'"str":"Zed"'*) sleep 30 ;;
*'"str":"Mallory"'*) echo "Mallory is on the list"; exit 1 ;;
esac
echo "checked $LOOM_REQUEST_ID"
exit 0
SH
chmod +x "$T/check.sh"
cat >"$T/policy/workflows/approvals.yaml" <<YAML
workflows:
  - name: manager-approval
    kind: authz
    activities:
      - type: approval
        approvers: ['//Target/Manager']
        timeout: 1h
  - name: escalating-approval
    kind: authz
    activities:
      - type: approval
        name: manager then HR
        approvers: ['//Target/Manager']
        timeout: 2s
        escalation: ['set:HR Approvers']
        escalation_timeout: 1h
  - name: expiring-approval
    kind: authz
    activities:
      - type: approval
        approvers: ['//Target/Manager']
        timeout: 2s
  - name: clean-words
    kind: authz
    activities:
      - type: filter
        condition: 'Eq(Contains(LowerCase(DisplayName), "darn"), 0)'
        reason: the display name uses a word we do not print
  - name: known-requester
    kind: authn
    activities:
      - type: filter
        condition: 'IsPresent(AccountName)'
  - name: outside-check
    kind: authz
    activities:
      - type: external
        command: [$T/check.sh]
        timeout: 2s
YAML

start_broker
# the Set HR Approvers must exist before the workflows load: a first start refuses them
start workflow "$WORKFLOW" -c "$CFG"
wait_for "loom-workflow to refuse the workflows" 10 bash -c "! kill -0 ${PIDS[workflow]} 2>/dev/null"
grep -q "approvals.yaml:[0-9]*:[0-9]*: workflow 'escalating-approval': set:HR Approvers: no Set or Group has that DisplayName" \
	"$T/workflow.log" || fail "the missing set was not named with its position: $(cat "$T/workflow.log")"
stop workflow
mv "$T/policy/workflows/approvals.yaml" "$T/approvals.yaml"
mv "$T/policy/mprs.yaml" "$T/mprs.yaml"
start_workflow

# ok ARGS... : a request that must complete; prints the target's ObjectID
ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
attr() {
	ctl -t 10s get - "$1" | sed -n "s/^$2: //p"
}
HRS=$(ok create Set DisplayName="HR Approvers")
HR1=$(ok create Person AccountName=hr1 DisplayName="Helen HR" Email=helen@example.org)
ok modify "$HRS" ExplicitMember="$HR1" >/dev/null
MGR=$(ok create Person AccountName=mgr DisplayName="Mia Manager" Email=mia@example.org)
EMP=$(ok create Person AccountName=emp DisplayName="Eve Employee" Email=eve@example.org Manager="$MGR" JobTitle=Clerk)
OTHER=$(ok create Person AccountName=other DisplayName="Otto Other" Email=otto@example.org)
stop workflow
mv "$T/approvals.yaml" "$T/policy/workflows/approvals.yaml"
mv "$T/mprs.yaml" "$T/policy/mprs.yaml"
start_workflow
out=$(ctl -t 10s request delete "$HRS" 2>&1) && fail "a Set a workflow names was deleted"
echo "$out" | grep -q "Set 'HR Approvers' is named by workflow 'escalating-approval' (.*approvals.yaml:[0-9]*:[0-9]*): deleting it" ||
	fail "the refusal: $out"
pass "a workflow naming a Set that does not exist is refused at start with file:line:column; that Set cannot be deleted while named"

# pending REQUEST_ARGS... : a request that must wait for approval; prints its id
pending() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 4 ] || fail "request $* exited $rc, want 4 (pending approval): $out"
	echo "$out" | head -n1 | grep -q ' pending-approval ' || fail "request $* is not pending approval: $out"
	echo "$out" | head -n1 | awk '{print $2}'
}
# status REQUEST : its status now
status() {
	ctl -t 10s request show "$1" | head -n1 | awk '{print $3}'
}
# approval_of REQUEST : the id of its pending approval
approval_of() {
	ctl -t 10s approvals | awk -v r="$1" '/^[a-z0-9]+ (pending|approved|rejected|expired|canceled) / {id=$1} $1 == "request" && $2 == r {print id}' | head -n1
}

# ---- approved ----------------------------------------------------------------
R1=$(pending modify "$EMP" JobTitle=Supervisor --as "$EMP")
A1=$(approval_of "$R1")
[ -n "$A1" ] || fail "no approval listed for $R1: $(ctl approvals)"
ctl approvals --for mgr | grep -q "^$A1 pending" || fail "approvals --for mgr does not list $A1"
[ -z "$(ctl approvals --for other | grep "^$A1")" ] || fail "approvals --for other lists $A1"
[ "$(attr "$EMP" JobTitle)" = Clerk ] || fail "JobTitle changed before the approval"
M=$(wait_mail "^X-Envelope-To: mia@example.org" "$A1")
grep -q "^Subject: Approval needed: modify Person 'Eve Employee'" "$M" || fail "subject: $(cat "$M")"
grep -q "loomctl approve $A1 --as $MGR" "$M" || fail "the mail does not carry the approve command: $(cat "$M")"
grep -q "loomctl reject $A1 --as $MGR" "$M" || fail "the mail does not carry the reject command: $(cat "$M")"
grep -q "^From: loom@example.org" "$M" || fail "From: $(cat "$M")"
out=$(ctl approve "$A1" --as "$OTHER" --reason "me too" 2>&1) && fail "somebody who is no approver approved: $out"
echo "$out" | grep -q "is not an approver of approval $A1" || fail "refusal does not say why: $out"
out=$(ctl approve "${A1:0:5}" --as mgr --reason "well deserved") || fail "approve: $out"
echo "$out" | grep -q "^request $R1 completed" || fail "the request did not complete on approval: $out"
[ "$(attr "$EMP" JobTitle)" = Supervisor ] || fail "JobTitle not changed after the approval"
ctl request show "$R1" >"$T/show"
grep -q "approval $A1 approved by $MGR: well deserved" "$T/show" || fail "history lacks the approval: $(cat "$T/show")"
grep -q "its authz workflows passed: validated again" "$T/show" || fail "not validated again: $(cat "$T/show")"
grep -q "run        authz:manager-approval done" "$T/show" || fail "instance not done: $(cat "$T/show")"
out=$(ctl approve "$A1" --as mgr 2>&1) && fail "an approval was decided twice"
echo "$out" | grep -q "is approved already" || fail "second decision: $out"
pass "a change needing the manager's approval waits, is mailed with the commands, and commits once approved"

# ---- rejected ----------------------------------------------------------------
R2=$(pending modify "$EMP" JobTitle=Director --as "$EMP")
A2=$(approval_of "$R2")
out=$(ctl reject "$A2" --as "$MGR" --reason "not yet") || fail "reject: $out"
echo "$out" | grep -q "^request $R2 denied" || fail "the request was not denied: $out"
[ "$(attr "$EMP" JobTitle)" = Supervisor ] || fail "a rejected change was applied"
ctl request show "$R2" | grep -q "reason     an authorization workflow failed: rejected by $MGR: not yet" ||
	fail "the reason does not say who rejected: $(ctl request show "$R2")"
pass "a rejected change is denied with the approver's reason"

# ---- escalation ---------------------------------------------------------------
R3=$(pending modify "$EMP" Department=Sales --as "$EMP")
A3=$(approval_of "$R3")
M=$(wait_mail "^X-Envelope-To: helen@example.org" "$A3")
grep -q "loomctl approve $A3 --as $HR1" "$M" || fail "the escalation mail lacks the command: $(cat "$M")"
ctl request show "$R3" | grep -q "approval $A3 escalated (nobody decided in time) to $HR1" ||
	fail "no escalation in the history: $(ctl request show "$R3")"
[ "$(status "$R3")" = pending-approval ] || fail "escalated request is $(status "$R3")"
ctl approve "$A3" --as hr1 --reason "HR agrees" | grep -q "^request $R3 completed" || fail "escalation approver could not approve"
[ "$(attr "$EMP" Department)" = Sales ] || fail "Department not changed after the escalated approval"
pass "an approval nobody decides escalates to a set after its timeout, and an escalation approver decides"

# ---- expiry ---------------------------------------------------------------------
R4=$(pending modify "$EMP" EmployeeID=E-42 --as "$EMP")
wait_for "the approval of $R4 to expire" 10 bash -c "[ \"\$($CTL -c $CFG request show $R4 | head -n1 | awk '{print \$3}')\" = denied ]"
ctl request show "$R4" | grep -q "expired: nobody decided in time" || fail "expiry reason: $(ctl request show "$R4")"
[ -z "$(attr "$EMP" EmployeeID)" ] || fail "an expired request changed EmployeeID"
pass "an approval nobody decides expires and the request is denied"

# ---- restart while pending ------------------------------------------------------
R5=$(pending modify "$EMP" JobTitle=Manager --as "$EMP")
A5=$(approval_of "$R5")
stop workflow KILL
start_workflow
ctl approvals | grep -q "^$A5 pending" || fail "the approval did not survive kill -9: $(ctl approvals)"
[ "$(status "$R5")" = pending-approval ] || fail "after the restart the request is $(status "$R5")"
ctl approve "$A5" --as mgr | grep -q "^request $R5 completed" || fail "approval after the restart did not complete"
[ "$(attr "$EMP" JobTitle)" = Manager ] || fail "JobTitle not changed after the restart and approval"
pass "a pending approval survives kill -9 of loom-workflow and completes after the restart"

# ---- deadlines that pass while the service is down --------------------------------
# The approvals' deadlines are in the store: after kill -9 and a restart past
# them, one escalates (mail to HR, then approved there) and one expires.
t0=$(date +%s)
R6=$(pending modify "$EMP" Department=Legal --as "$EMP")
A6=$(approval_of "$R6")
R7=$(pending modify "$EMP" EmployeeID=E-43 --as "$EMP")
stop workflow KILL
wait_for "both deadlines (2 s) to pass while the service is down" 10 bash -c "[ \$(date +%s) -ge $((t0 + 3)) ]"
start_workflow
M=$(wait_mail "^X-Envelope-To: helen@example.org" "$A6")
ctl request show "$R6" | grep -q "approval $A6 escalated (nobody decided in time) to $HR1" ||
	fail "no escalation after the restart: $(ctl request show "$R6")"
wait_for "the approval of $R7 to expire after the restart" 10 bash -c "[ \"\$($CTL -c $CFG request show $R7 | head -n1 | awk '{print \$3}')\" = denied ]"
ctl request show "$R7" | grep -q "expired: nobody decided in time" || fail "expiry after the restart: $(ctl request show "$R7")"
ctl approve "$A6" --as hr1 --reason "HR agrees" | grep -q "^request $R6 completed" || fail "escalation approver could not approve after the restart"
[ "$(attr "$EMP" Department)" = Legal ] || fail "Department not changed after the restart, escalation and approval"
[ "$(attr "$EMP" EmployeeID)" != E-43 ] || fail "an expired request changed EmployeeID"
pass "approval deadlines passed while the service was down: after the restart one escalates and is approved, one expires"

# ---- filter validation ----------------------------------------------------------
out=$(ctl request modify "$EMP" DisplayName="Darn Eve" --as "$EMP" 2>&1) && fail "a profane name passed: $out"
echo "$out" | grep -q "reason     an authorization workflow failed: activity 1 (filter): the display name uses a word" ||
	fail "filter reason: $out"
ctl request modify "$EMP" DisplayName="Eve E." --as "$EMP" | head -n1 | grep -q ' completed ' || fail "a clean name was refused"
pass "a filter validation denies a request whose values do not pass"

# ---- external program ----------------------------------------------------------
# settled REQUEST ARGS... : submits, waits until the request is neither authorizing nor pending; prints its id
settled() {
	local out rid
	out=$(ctl -t 10s request "$@" 2>&1)
	rid=$(echo "$out" | head -n1 | awk '{print $2}')
	[ -n "$rid" ] || fail "request $*: $out"
	wait_for "request $rid to settle" 15 bash -c "! $CTL -c $CFG request show $rid | head -n1 | grep -qE ' (authorizing|pending-approval|validating) '"
	echo "$rid"
}
RE=$(settled modify "$EMP" FirstName=Eve --as "$EMP")
ctl request show "$RE" >"$T/out"
grep -q "run        authz:outside-check done" "$T/out" || fail "external not run: $(cat "$T/out")"
head -n1 "$T/out" | grep -q ' completed ' || fail "external pass did not complete: $(cat "$T/out")"
authn=$(grep -n "authn:known-requester activity 1 (filter): passed" "$T/out" | cut -d: -f1)
authz=$(grep -n "authz:outside-check activity 1 (external): '.*' started" "$T/out" | cut -d: -f1)
[ -n "$authn" ] && [ -n "$authz" ] && [ "$authn" -lt "$authz" ] || fail "authn did not run before authz: $(cat "$T/out")"
grep -q '"target_id":"'"$EMP"'"' "$T/last-input.json" || fail "the program did not get the request as JSON"
RM=$(settled modify "$EMP" FirstName=Mallory --as "$EMP")
out=$(ctl request show "$RM")
echo "$out" | head -n1 | grep -q ' denied ' || fail "external check passed Mallory: $out"
echo "$out" | grep -q "exit 1: Mallory is on the list" || fail "the program's exit and output are not the reason: $out"
RZ=$(settled modify "$EMP" FirstName=Zed --as "$EMP")
ctl request show "$RZ" | grep -q "killed after its timeout of 2000 ms" || fail "timeout reason: $(ctl request show "$RZ")"
[ "$(attr "$EMP" FirstName)" = Eve ] || fail "FirstName is $(attr "$EMP" FirstName)"
pass "an external program decides by its exit, with the request as JSON on stdin, and is killed at its timeout"
