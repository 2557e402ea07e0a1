#!/usr/bin/env bash
# The seed's account-creation scenario, end to end with the real processes
# (issue 7): HR changes a person's title; the engine imports it and exports
# it to the policy service (a modify request by sync); the person joins the
# Set "Financial Managers"; its set-transition MPR runs the action workflow
# provision-erp, which adds the person to the ERP synchronization rule
# (ExpectedRules, by a request of the service) and mails the CFO and the
# person's manager; the engine imports ExpectedRules through the policy
# agent, the outbound rule erp-out (scoped on it) provisions the ERP
# account, and the export writes it to the ERP file. Then a manager-based
# group follows an HR manager change, and a set-transition MPR with a
# run-on-policy-update workflow, added later, runs for the current members.
. "$(dirname "$0")/lib.sh"

write_config
start_smtp_sink
cat >>"$CFG" <<YAML
mail:
  relay: 127.0.0.1:$SMTP_PORT
  retry: 1s
workflow:
  scheduler: 1s
YAML
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/policy/workflows"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
references: [manager]
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/portal.yaml" <<YAML
type: policy
timeout: 3s
references: [Manager]
policy: { object_types: [Person] }
YAML
cat >"$T/agents/erp.yaml" <<YAML
type: file
object_type: account
anchor: login
file: { format: csv, path: ../data/erp.csv }
YAML
printf 'login,name\n' >"$T/data/erp.csv"
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: displayName, expr: 'givenName + " " + sn' }
      - { mv: title, expr: title }
      - { mv: manager, expr: manager }
      - { mv: email, expr: email }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: to-portal
    direction: outbound
    agent: portal
    cs_type: Person
    mv_type: person
    provision: true
    flows:
      - { cs: AccountName, expr: uid, initial: true }
      - { cs: DisplayName, expr: displayName }
      - { cs: EmployeeID, expr: employeeId }
      - { cs: JobTitle, expr: title }
      - { cs: Manager, expr: manager }
      - { cs: Email, expr: email }
  # what the policy service decides comes back: the rules a person is in
  - name: portal-in
    direction: inbound
    agent: portal
    cs_type: Person
    mv_type: person
    join: [ { match: [ { cs: EmployeeID, mv: employeeId } ] } ]
    flows:
      - { mv: expectedRules, expr: ExpectedRules }
  - name: erp-out
    direction: outbound
    agent: erp
    cs_type: account
    mv_type: person
    link_type: provision
    dn: '"login=" + uid'
    anchor: 'uid'
    scope_filter: [ { all: [ { attribute: expectedRules, operator: EQUAL, value: erp-out } ] } ]
    flows:
      - { cs: login, expr: uid, initial: true }
      - { cs: name, expr: displayName }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn,title,manager,email
1001,Carla,Chief,CFO,,cfo@example.org
1002,Bob,Boss,Controller,1001,bob@example.org
1003,Fiona,Finch,Accountant,1002,fiona@example.org
CSV
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/mprs-final.yaml" <<'YAML'
mprs: []
transition_mprs:
  - name: financial managers get an ERP account
    set: Financial Managers
    transition: in
    action_workflows: [provision-erp]
YAML
cat >"$T/provision-erp.yaml" <<'YAML'
workflows:
  - name: provision-erp
    kind: action
    activities:
      - type: sync_rule
        rule: erp-out
      - type: notify
        to: ['set:CFO', '//Target/Manager']
        subject: "New ERP account for [//Target/DisplayName]"
        body: |
          [//Target/DisplayName] ([//Target/JobTitle]) joined Financial Managers
          and gets an account in the ERP system (request [//Request/ID]).
YAML
printf 'mprs: []\n' >"$T/policy/mprs.yaml"

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
start_broker
start_engine
start_agent hr
start_agent erp
start_workflow

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
id_of() {
	ctl search "/Person[AccountName = '$1']" | grep -o '^[0-9a-f-]\{36\}' | head -n1
}
attr() {
	ctl -t 10s get - "$1" | sed -n "s/^$2: //p"
}
members() {
	ctl -t 10s search "/Group[DisplayName = '$1']/ComputedMember" | awk '{print $1}' | sort | tr '\n' ' '
}

# ---- people from HR into the policy service ---------------------------------
run_profile hr full-import
run_profile hr full-sync
run_profile portal export
run_profile hr delta-sync           # managers' references, now that they have ObjectIDs
run_profile portal export
run_profile portal full-import
run_profile portal full-sync
CFO=$(id_of cchief); BOB=$(id_of bboss); FIONA=$(id_of ffinch)
[ -n "$CFO" ] && [ -n "$BOB" ] && [ -n "$FIONA" ] || fail "people not provisioned: $(ctl search /Person)"
[ "$(attr "$FIONA" Manager)" = "$BOB" ] || fail "Fiona's manager is '$(attr "$FIONA" Manager)'"

# the sets the policy names exist before it is loaded
ok create Set DisplayName=CFO ExplicitMember="$CFO" >/dev/null
ok create Set DisplayName="Financial Managers" "Filter=/Person[JobTitle = 'Finance Manager']" >/dev/null
BOBS=$(ok create Group DisplayName="Bob team" MembershipType=Manager ManagerBase="$BOB")
CARLAS=$(ok create Group DisplayName="Carla team" MembershipType=Manager ManagerBase="$CFO")
stop workflow
mv "$T/mprs-final.yaml" "$T/policy/mprs.yaml"
mv "$T/provision-erp.yaml" "$T/policy/workflows/"
start_workflow

# ---- HR promotes Fiona -------------------------------------------------------
sed -i 's/^1003,Fiona,Finch,Accountant,/1003,Fiona,Finch,Finance Manager,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export
expect_counter exported-updates 1
wait_for "the action workflow to add Fiona to erp-out" 15 bash -c \
	"$CTL -c $CFG get - $FIONA | grep -q '^ExpectedRules: erp-out$'"
R=$(ctl requests -n 20 | awk -v f="$FIONA" '$3 == "modify" && $5 == f && $6 == "sync" {print $1; exit}')
wait_for "request $R to complete" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' completed '"
ctl request show "$R" >"$T/show"
grep -q "^  joined     Set 'Financial Managers'" "$T/show" || fail "Fiona did not join: $(cat "$T/show")"
grep -q "^  transition mpr 'financial managers get an ERP account': in Set 'Financial Managers': $FIONA -> action:provision-erp" \
	"$T/show" || fail "TMPR not matched: $(cat "$T/show")"
grep -q "^  run        action:provision-erp done" "$T/show" || fail "action workflow not done: $(cat "$T/show")"
grep -q "provision-erp activity 1 (sync_rule): $FIONA added to rule 'erp-out'" "$T/show" || fail "sync rule step: $(cat "$T/show")"
M1=$(wait_mail "^X-Envelope-To: cfo@example.org" "^Subject: New ERP account for Fiona Finch")
M2=$(wait_mail "^X-Envelope-To: bob@example.org" "^Subject: New ERP account for Fiona Finch")
grep -q "Fiona Finch (Finance Manager) joined Financial Managers" "$M1" || fail "mail body: $(cat "$M1")"
grep -q "request $R" "$M2" || fail "mail body lacks the request: $(cat "$M2")"
pass "an HR title change puts Fiona in Financial Managers; the set-transition MPR's action workflow adds her to erp-out and mails the CFO and her manager"

# ---- the engine provisions the ERP account ----------------------------------
run_profile portal delta-import
run_profile portal delta-sync
expect_counter provisioned 1
run_profile erp export
expect_counter exported-adds 1
grep -q '^ffinch,Fiona Finch' "$T/data/erp.csv" || fail "no ERP account: $(cat "$T/data/erp.csv")"
pass "the engine reads ExpectedRules through the policy agent and provisions the ERP account"

# ---- a manager-based group follows HR ---------------------------------------
[ "$(members "Bob team")" = "$(printf '%s\n' "$BOB" "$FIONA" | sort | tr '\n' ' ')" ] ||
	fail "Bob team: $(members "Bob team")"
ctl -t 10s get Group "$BOBS" | grep -q "^Filter: /Person\[ObjectID = '$BOB' or Manager = '$BOB'\]" ||
	fail "the manager-based group's filter: $(ctl get Group "$BOBS")"
out=$(ctl -t 10s request modify "$BOBS" +ExplicitMember="$CFO" 2>&1) && fail "an explicit member was added to a manager-based group"
echo "$out" | grep -q "is manager-based: its members are ManagerBase and their direct reports" || fail "refusal: $out"
sed -i 's/^1003,Fiona,Finch,Finance Manager,1002,/1003,Fiona,Finch,Finance Manager,1001,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile portal export
expect_counter exported-updates 1
[ "$(members "Bob team")" = "$BOB " ] || fail "Fiona did not leave Bob team: $(members "Bob team")"
case "$(members "Carla team")" in *"$FIONA"*) ;; *) fail "Fiona did not join Carla team: $(members "Carla team")" ;; esac
pass "a manager-based group follows an HR manager change (Fiona leaves Bob team, joins Carla's)"

# ---- run on policy update -----------------------------------------------------
cat >>"$T/policy/mprs.yaml" <<'YAML'
  - name: financial managers are welcomed
    set: Financial Managers
    transition: in
    action_workflows: [welcome]
YAML
cat >"$T/policy/workflows/welcome.yaml" <<'YAML'
workflows:
  - name: welcome
    kind: action
    run_on_policy_update: true
    activities:
      - type: notify
        to: ['//Target']
        subject: "Welcome to Financial Managers, [//Target/DisplayName]"
        body: "you are one of us"
YAML
stop workflow
start_workflow
wait_mail "^X-Envelope-To: fiona@example.org" "^Subject: Welcome to Financial Managers, Fiona Finch" >/dev/null
ctl requests -n 5 | grep -q " reevaluate Set " || fail "no reevaluate request for the policy update: $(ctl requests -n 5)"
[ "$(ctl requests -n 100 | grep -c ' reevaluate Set ')" = 1 ] || fail "want one reevaluate request"
stop workflow
start_workflow
[ "$(ctl requests -n 100 | grep -c ' reevaluate Set ')" = 1 ] || fail "the policy update ran again at the next start"
pass "a new set-transition MPR whose workflow runs on policy update is applied to the set's current members, once"
