#!/usr/bin/env bash
# Group management in the live policy service (issue 7): static groups
# with more than one owner and the three join restrictions (Open: granted;
# OwnerApproval: any one owner approves, mailed to both; None: refused),
# leaving a group, owners adding members through their MPR; join requests
# to manager-based and criteria-based groups refused; a criteria-based
# group's members follow its filter. The SMTP relay refuses the first
# message (451): the outbox tries it again.
. "$(dirname "$0")/lib.sh"

write_config
start_smtp_sink --fail 1
cat >>"$CFG" <<YAML
mail:
  relay: 127.0.0.1:$SMTP_PORT
  retry: 1s
YAML
mkdir -p "$T/policy"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$LOOM_SOURCE_DIR/config/policy/mprs.yaml" "$T/policy/"
start_broker
start_workflow

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
denied() {
	local want=$1 out rc=0
	shift
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 3 ] || fail "request $* exited $rc, want 3: $out"
	echo "$out" | grep '^  reason     ' | grep -qF -- "$want" || fail "request $*: reason does not say '$want': $out"
}
members() {
	ctl -t 10s search "/Group[ObjectID = '$1']/ComputedMember" | awk '{print $1}' | sort | tr '\n' ' '
}
sorted() {
	printf '%s\n' "$@" | sort | tr '\n' ' '
}

O1=$(ok create Person AccountName=owner1 DisplayName="Olga Owner" Email=olga@example.org)
O2=$(ok create Person AccountName=owner2 DisplayName="Oscar Owner" Email=oscar@example.org)
U1=$(ok create Person AccountName=user1 DisplayName="Uma User" Department=Sales)
U2=$(ok create Person AccountName=user2 DisplayName="Ugo User" Department=Sales)
U3=$(ok create Person AccountName=user3 DisplayName="Ulf User" Department=Support Manager="$O1")
OPEN=$(ok create Group DisplayName=Open MembershipType=Static JoinRestriction=Open Owner="$O1")
APPR=$(ok create Group DisplayName=Approved MembershipType=Static JoinRestriction=OwnerApproval Owner="$O1" Owner="$O2")
NONE=$(ok create Group DisplayName=Closed MembershipType=Static JoinRestriction=None Owner="$O1")
MGRG=$(ok create Group DisplayName="Olga reports" MembershipType=Manager ManagerBase="$O1")
CRIT=$(ok create Group DisplayName=Sales MembershipType=Criteria "Filter=/Person[Department = 'Sales']")

# ---- open: a join is granted, a leave too --------------------------------------
out=$(ctl -t 10s request modify "$OPEN" +ExplicitMember="$U1" --as "$U1") || fail "open join: $out"
echo "$out" | grep -q "granted by (built-in: join an open group)" || fail "open join not granted by the built-in rule: $out"
[ "$(members "$OPEN")" = "$U1 " ] || fail "Open: $(members "$OPEN")"
denied "no management policy rule grants requester '$U1' add of attribute 'ExplicitMember'" \
	modify "$OPEN" +ExplicitMember="$U2" --as "$U1"      # adding somebody else is no join
ok modify "$OPEN" -ExplicitMember="$U1" --as "$U1" >/dev/null
[ "$(members "$OPEN")" = "" ] || fail "the leave did not happen: $(members "$OPEN")"
pass "a join to an open group is granted; adding someone else is not a join; a member leaves"

# ---- owner approval: either owner decides ----------------------------------------
out=$(ctl -t 10s request modify "$APPR" +ExplicitMember="$U2" --as "$U2" 2>&1) && fail "an owner-approval join needed no approval"
R=$(echo "$out" | head -n1 | awk '{print $2}')
echo "$out" | head -n1 | grep -q ' pending-approval ' || fail "join not pending: $out"
A=$(ctl approvals --for owner2 | awk '/^[a-z0-9]+ pending /{print $1; exit}')
[ -n "$A" ] || fail "owner2 has no approval to decide"
ctl approvals --for owner1 | grep -q "^$A pending" || fail "owner1 is not asked too"
wait_mail "^X-Envelope-To: olga@example.org" "$A" >/dev/null
wait_mail "^X-Envelope-To: oscar@example.org" "$A" >/dev/null
log_has "$T/workflow.log" "mail not sent, trying again in 1000 ms .*451 try again later" || fail "the refused mail was not retried"
ctl approve "$A" --as owner2 --reason "welcome" | grep -q "^request $R completed" || fail "owner2's approval did not complete the join"
[ "$(members "$APPR")" = "$U2 " ] || fail "Approved: $(members "$APPR")"
out=$(ctl -t 10s request modify "$APPR" +ExplicitMember="$U1" --as "$U1" 2>&1)
R=$(echo "$out" | head -n1 | awk '{print $2}')
A=$(ctl approvals --for owner1 | awk '/^[a-z0-9]+ pending /{print $1; exit}')
ctl reject "$A" --as owner1 --reason "not you" | grep -q "^request $R denied" || fail "owner1's rejection did not deny"
[ "$(members "$APPR")" = "$U2 " ] || fail "a rejected join happened: $(members "$APPR")"
# an owner adds a member directly (the shipped MPR for owners)
ok modify "$APPR" +ExplicitMember="$U3" --as "$O2" >/dev/null
[ "$(members "$APPR")" = "$(sorted "$U2" "$U3")" ] || fail "owner's add: $(members "$APPR")"
pass "a join to an owner-approval group asks every owner; one approval adds, one rejection denies; owners add directly"

# ---- none, and computed groups ----------------------------------------------------
denied "group 'Closed' takes no join requests (JoinRestriction None)" modify "$NONE" +ExplicitMember="$U1" --as "$U1"
denied "group 'Olga reports' is manager-based: its members are ManagerBase and their direct reports; it takes no explicit member and no join request" \
	modify "$MGRG" +ExplicitMember="$U1" --as "$U1"
denied "group 'Sales' is criteria-based: its members are what its Filter selects" \
	modify "$CRIT" +ExplicitMember="$U3" --as "$U3"
denied "group 'Olga reports' is manager-based: it needs ManagerBase" create Group DisplayName="Olga reports" MembershipType=Manager
denied "attribute 'Filter': group 'Static one' is static" create Group DisplayName="Static one" MembershipType=Static "Filter=/Person"
pass "join requests to groups that take none, to manager-based and to criteria-based groups are refused"

# ---- computed members -------------------------------------------------------------
[ "$(members "$MGRG")" = "$(sorted "$O1" "$U3")" ] || fail "Olga reports: $(members "$MGRG")"
[ "$(members "$CRIT")" = "$(sorted "$U1" "$U2")" ] || fail "Sales: $(members "$CRIT")"
ok modify "$U1" Department=Support >/dev/null
ok modify "$U2" Manager="$O1" >/dev/null
[ "$(members "$CRIT")" = "$U2 " ] || fail "Sales after U1 moved: $(members "$CRIT")"
[ "$(members "$MGRG")" = "$(sorted "$O1" "$U2" "$U3")" ] || fail "Olga reports after U2's manager changed: $(members "$MGRG")"
ok modify "$MGRG" ManagerBase="$O2" >/dev/null
[ "$(members "$MGRG")" = "$O2 " ] || fail "a new ManagerBase: $(members "$MGRG")"
pass "manager-based and criteria-based groups keep their members as people change"
