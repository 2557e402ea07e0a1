#!/usr/bin/env bash
# What time does in the policy service (issue 7): the scheduler
# (workflow.scheduler: 1s here) re-evaluates temporal Sets: a person joins
# "Started" on their EmployeeStartDate and the set-transition MPR's action
# workflow runs (function evaluator, create, update, notify); a group whose
# ExpirationTime comes within 7 days joins "Expiring soon" and its owners
# are mailed; a resource whose ExpirationTime passes is deleted by a request
# of the service, which leaves its sets as any delete does.
. "$(dirname "$0")/lib.sh"

write_config
start_smtp_sink
cat >>"$CFG" <<YAML
mail:
  relay: 127.0.0.1:$SMTP_PORT
workflow:
  scheduler: 1s
YAML
mkdir -p "$T/policy/workflows"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
printf 'mprs: []\n' >"$T/policy/mprs.yaml"
cat >"$T/mprs.yaml" <<'YAML'
mprs: []
transition_mprs:
  - name: starters are onboarded
    set: Started
    transition: in
    action_workflows: [onboard]
  - name: owners hear of expiring groups
    set: Expiring soon
    transition: in
    action_workflows: [warn-owners]
YAML
cat >"$T/workflows.yaml" <<'YAML'
workflows:
  - name: onboard
    kind: action
    activities:
      - type: function
        expr: '"Employee"'
        destination: //Target/EmployeeType
      - type: function
        name: buddy name
        expr: '"Buddies of " + AccountName'
        destination: //WorkflowData/Buddies
      - type: create
        object_type: Group
        values:
          - { attribute: DisplayName, value: 'Buddies' }
          - { attribute: MembershipType, value: '"Static"' }
          - { attribute: Owner, value: 'ObjectID' }
      - type: update
        target: //Target/Manager
        values:
          - { attribute: JobTitle, value: '"Manager of a starter"' }
      - type: notify
        to: ['//Target/Manager']
        subject: "[//Target/AccountName] started"
        body: "[//Target/AccountName] is a member of Started from today: [//WorkflowData/Buddies] made."
  - name: warn-owners
    kind: action
    activities:
      - type: notify
        to: ['//Target/Owner']
        subject: "Group [//Target/DisplayName] expires within 7 days"
        body: "It expires at [//Target/ExpirationTime]. Extend it or let it go."
YAML
start_broker
start_workflow

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
attr() {
	ctl -t 10s get - "$1" | sed -n "s/^$2: //p"
}
members() {
	ctl -t 10s search "/Set[DisplayName = '$1']/ComputedMember" | awk '{print $1}' | sort | tr '\n' ' '
}
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

STARTED=$(ok create Set DisplayName=Started "Filter=/Person[EmployeeStartDate <= fn:current-dateTime()]")
ok create Set DisplayName="Expiring soon" \
	"Filter=/Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P7D'))]" >/dev/null
stop workflow
mv "$T/mprs.yaml" "$T/policy/mprs.yaml"
mv "$T/workflows.yaml" "$T/policy/workflows/"
start_workflow

# ---- a temporal set moves a person on their start date ----------------------------
BOSS=$(ok create Person AccountName=boss Email=boss@example.org JobTitle=Lead)
NEW=$(ok create Person AccountName=newbie Manager="$BOSS" EmployeeType=Contractor EmployeeStartDate="$(at '+4 seconds')")
OLD=$(ok create Person AccountName=oldie EmployeeStartDate="$(at '-1 day')")
[ "$(members Started)" = "$OLD " ] || fail "Started before the date: $(members Started)"
wait_for "newbie to join Started on the start date" 15 bash -c "$CTL -c $CFG search \"/Set[DisplayName = 'Started']/ComputedMember\" | grep -q $NEW"
R=$(ctl requests -n 50 | awk '$3 == "reevaluate" {print $1; exit}')
[ -n "$R" ] || fail "no reevaluate request: $(ctl requests -n 20)"
wait_for "the onboarding to end" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' completed '"
ctl request show "$R" >"$T/show"
grep -q "^  joined     Set 'Started' $STARTED: $NEW" "$T/show" || fail "no transition: $(cat "$T/show")"
grep -q "^  cause      time passed: temporal sets evaluated again" "$T/show" || fail "no cause: $(cat "$T/show")"
grep -q "^  run        action:onboard for $NEW done" "$T/show" || fail "onboard not done: $(cat "$T/show")"
[ "$(attr "$NEW" EmployeeType)" = Employee ] || fail "the function did not write EmployeeType: $(attr "$NEW" EmployeeType)"
[ "$(attr "$BOSS" JobTitle)" = "Manager of a starter" ] || fail "the update did not reach the manager"
BUD=$(ctl search "/Group[DisplayName = 'Buddies of newbie']" | awk '{print $1}')
[ -n "$BUD" ] || fail "the create activity made no group: $(cat "$T/show")"
[ "$(attr "$BUD" Owner)" = "$NEW" ] || fail "the buddy group's owner: $(attr "$BUD" Owner)"
ctl request show "$(ctl requests -n 50 | awk -v b="$BUD" '$3 == "create" && $5 == b {print $1}')" | grep -q "^  parent     $R" ||
	fail "the create's request does not name its parent"
M=$(wait_mail "^X-Envelope-To: boss@example.org" "^Subject: newbie started")
grep -q "Buddies of newbie made" "$M" || fail "WorkflowData in the mail: $(cat "$M")"
pass "a person joins a temporal set on their start date; the action workflow computes, creates, updates and mails"

# ---- a group expiring within 7 days: its owners are told ---------------------------
O1=$(ok create Person AccountName=o1 Email=o1@example.org)
O2=$(ok create Person AccountName=o2 Email=o2@example.org)
G=$(ok create Group DisplayName=Project MembershipType=Static Owner="$O1" Owner="$O2" ExpirationTime="$(at '+7 days 4 seconds')")
[ -z "$(members 'Expiring soon')" ] || fail "Expiring soon too early: $(members 'Expiring soon')"
wait_mail "^X-Envelope-To: o1@example.org" "^X-Envelope-To: o2@example.org" "^Subject: Group Project expires within 7 days" >/dev/null
[ "$(members 'Expiring soon')" = "$G " ] || fail "Expiring soon: $(members 'Expiring soon')"
pass "a group whose ExpirationTime comes within 7 days joins a temporal set and its owners are mailed"

# ---- expiration deletes ------------------------------------------------------------
T1=$(ok create Group DisplayName=Temporary MembershipType=Static Owner="$O1" ExpirationTime="$(at '+2 seconds')")
wait_for "the expired group to be deleted" 15 bash -c "! $CTL -c $CFG get - $T1 >/dev/null 2>&1"
RD=$(ctl requests -n 50 | awk -v g="$T1" '$3 == "delete" && $5 == g {print $1}')
ctl request show "$RD" >"$T/show"
head -n1 "$T/show" | grep -q ' completed ' || fail "the delete: $(cat "$T/show")"
grep -q "^  requester  workflow" "$T/show" || fail "the delete's requester: $(cat "$T/show")"
grep -q "^  cause      its ExpirationTime .* has passed" "$T/show" || fail "the delete's cause: $(cat "$T/show")"
grep -q "^  left       Set 'Expiring soon'" "$T/show" || fail "the expired group did not leave Expiring soon: $(cat "$T/show")"
pass "a resource whose ExpirationTime passes is deleted by a request of the service"
