#!/usr/bin/env bash
# The policy service's schema as resources, through loomctl against the real
# broker and loom-workflow: every attribute, type and binding of the policy
# files and the built-ins is an AttributeTypeDescription,
# ObjectTypeDescription or BindingDescription after the first start, made
# once (a restart makes none); requests on them change the live schema at
# once (a new attribute and binding usable by the next request, a regex
# enforced by the next request); bad ones are denied with the attribute and
# the rule and change nothing; only sync and the administrators may change
# the schema with the shipped MPRs; a schema change survives a restart and a
# kill -9 right after its commit (LOOM_WORKFLOW_CRASH_AT=committed) or
# before its validation.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/policy"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$LOOM_SOURCE_DIR/config/policy/mprs.yaml" "$T/policy/"

start_broker
start_workflow

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | grep -q ' completed ' || fail "request $* did not complete: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}

denied() {
	local want=$1 out rc=0
	shift
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 3 ] || fail "request $* exited $rc, want 3: $out"
	echo "$out" | head -n1 | grep -q ' denied ' || fail "request $* was not denied: $out"
	echo "$out" | grep '^  reason     ' | grep -qF -- "$want" || fail "request $*: reason does not say '$want': $out"
}

# id FILTER : the ObjectID of the one resource FILTER selects
id() {
	local out
	out=$(ctl -t 10s search "$1") || fail "search $1"
	[ "$(echo "$out" | grep -c .)" = 1 ] || fail "search $1: want one resource, got: $out"
	echo "$out" | awk '{print $1}'
}

count() { ctl -t 10s search "$1" -n 10000 | grep -c . || true; }
schema_count() { count '/AttributeTypeDescription | /ObjectTypeDescription | /BindingDescription'; }

# ---- the files and the built-ins as resources -------------------------------------
ctl -t 10s search '/AttributeTypeDescription' -n 1000 >"$T/atd"
for a in ObjectID DisplayName Name DataType StringRegex AccountName Email Manager ExplicitMember Description; do
	grep -qE " AttributeTypeDescription $a\$" "$T/atd" || fail "no AttributeTypeDescription $a: $(cat "$T/atd")"
done
[ "$(grep -c . "$T/atd")" = 32 ] || fail "want 32 attribute descriptions (14 built in, 18 of schema.yaml): $(cat "$T/atd")"
for t in Person Group Set ManagementPolicyRule Request AttributeTypeDescription ObjectTypeDescription BindingDescription; do
	[ "$(count "/ObjectTypeDescription[Name = '$t']")" = 1 ] || fail "no ObjectTypeDescription $t"
done
ACCT=$(id "/AttributeTypeDescription[Name = 'AccountName']")
PERSON=$(id "/ObjectTypeDescription[Name = 'Person']")
ctl -t 10s get AttributeTypeDescription "$ACCT" >"$T/acct"
grep -qx 'DataType: String' "$T/acct" && grep -qxF 'StringRegex: ^[A-Za-z0-9._-]{1,64}$' "$T/acct" &&
	grep -qx 'Multivalued: false' "$T/acct" || fail "AccountName's description: $(cat "$T/acct")"
[ "$(count "/BindingDescription[BoundObjectType = '$PERSON' and BoundAttributeType = '$ACCT' and Required = true]")" = 1 ] ||
	fail "no required binding of AccountName to Person"
n0=$(schema_count)
log_has "$T/workflow.log" "schema ready attributes=32 types=8 made=$n0 problems=0" || fail "the first start did not make $n0"
stop workflow
start_workflow
log_has "$T/workflow.log" "schema ready .* made=0 problems=0" || fail "a restart made descriptions again"
[ "$(schema_count)" = "$n0" ] || fail "a restart changed the number of descriptions"
pass "the policy files' schema and the built-ins are resources, made once"

# ---- a new attribute and binding, live at once ------------------------------------
ADA=$(ok create Person AccountName=ada)
denied "attribute 'Badge' is not bound to type 'Person' (binding rule)" create Person AccountName=bob Badge=B1
BADGE=$(ok create AttributeTypeDescription Name=Badge DataType=String Description="door badge")
BIND=$(ok create BindingDescription BoundObjectType="$PERSON" BoundAttributeType="$BADGE")
BOB=$(ok create Person AccountName=bob Badge=x1)
[ "$(ctl -t 10s get Person "$BOB" | sed -n 's/^Badge: //p')" = x1 ] || fail "bob has no Badge"
[ "$(id "/Person[Badge = 'x1']")" = "$BOB" ] || fail "search by the new attribute"
pass "a new attribute and binding are usable by the next request"

ok modify "$BADGE" StringRegex='^B[0-9]+$' >/dev/null
denied "attribute 'Badge': 'x2' does not match regex '^B[0-9]+\$' (AttributeTypeDescription 'Badge')" \
	modify "$ADA" Badge=x2
ok modify "$ADA" Badge=B2 >/dev/null
pass "a regex added to an attribute is enforced on the next request"

# ---- bad input ------------------------------------------------------------------------
denied "attribute 'DataType': 'Text' is no data type: expected String, Integer, Boolean, DateTime, Reference or Binary (data type rule" \
	create AttributeTypeDescription Name=Shoe DataType=Text
denied "attribute 'StringRegex': bad regex 'a(': " create AttributeTypeDescription Name=Shoe DataType=String StringRegex='a('
denied "attribute 'Name': 'Badge' is taken: AttributeTypeDescription $BADGE has it (unique name rule" \
	create AttributeTypeDescription Name=Badge DataType=Integer
denied "attribute 'BoundObjectType': '$ADA' is no ObjectTypeDescription (binding rule" \
	create BindingDescription BoundObjectType="$ADA" BoundAttributeType="$BADGE"
denied "attribute 'BoundAttributeType': '00000000-0000-4000-8000-000000000000' is no resource" \
	create BindingDescription BoundObjectType="$PERSON" BoundAttributeType=00000000-0000-4000-8000-000000000000
denied "the binding of 'Badge' to 'Person' is made already: BindingDescription $BIND" \
	create BindingDescription BoundObjectType="$PERSON" BoundAttributeType="$BADGE"
denied "attribute 'DataType': 'Badge' cannot change from String to Integer: resource " modify "$BADGE" DataType=Integer
denied "attribute 'Badge' cannot be deleted: resource " delete "$BADGE"
denied "the binding 'Badge on Person' cannot be deleted: Person " delete "$BIND"
denied "attribute 'ObjectID' is built in: it cannot be deleted (built-in rule" \
	delete "$(id "/AttributeTypeDescription[Name = 'ObjectID']")"
denied "binding 'Name on AttributeTypeDescription' is built in" \
	delete "$(id "/BindingDescription[BoundAttributeType = /AttributeTypeDescription[Name = 'Name'] and BoundObjectType = /ObjectTypeDescription[Name = 'AttributeTypeDescription']]")"
denied "attribute 'Name': 'Badge' cannot become 'Token'" modify "$BADGE" Name=Token
[ "$(count "/AttributeTypeDescription[Name = 'Shoe']")" = 0 ] || fail "a denied create left a description"
[ "$(schema_count)" = $((n0 + 2)) ] || fail "denied schema requests changed the descriptions"
denied "attribute 'Badge': 'x3' does not match regex" modify "$ADA" Badge=x3
pass "bad schema changes are denied with the attribute and the rule, nothing written"

# ---- who may change the schema ---------------------------------------------------------
denied "no management policy rule grants requester '$ADA' create of attribute 'Name' on AttributeTypeDescription" \
	create AttributeTypeDescription Name=Shoe DataType=Integer --as "$ADA"
denied "no management policy rule grants requester '$BOB' modify of attribute 'StringRegex' on AttributeTypeDescription '$BADGE'" \
	modify "$BADGE" StringRegex='.*' --as "$BOB"
stop workflow
sed -i "s/^administrators: \[\]/administrators: [$ADA]/" "$T/policy/mprs.yaml"
grep -q "administrators: \[$ADA\]" "$T/policy/mprs.yaml" || fail "could not make ada an administrator"
start_workflow
out=$(ctl -t 10s request create AttributeTypeDescription Name=Shoe DataType=Integer --as "$ADA") || fail "administrator: $out"
echo "$out" | grep -q "granted by (built-in: administrators)" || fail "not granted as administrator: $out"
pass "only sync and the administrators change the schema (shipped MPRs)"

# ---- kill -9 right after a schema change's commit, and before its validation -------
crash_run() {
	local status=$1 name=$2
	shift 2
	start "$name" env LOOM_WORKFLOW_CRASH_AT="$status" "$WORKFLOW" -c "$CFG"
	wait_log "$name" "registered with broker"
	ctl -t 1s request "$@" >/dev/null 2>&1 && fail "request $* answered although the service was to crash at $status"
	wait_for "$name to die" 10 bash -c "! kill -0 ${PIDS[$name]}"
	stop "$name"
	start_workflow
	log_has "$T/workflow.log" "recovered requests=1" || fail "$name: no request recovered"
	CRASHED=$(sed -n 's/.*request \([0-9a-f-]*\) was .* when the service stopped.*/\1/p' "$T/workflow.log")
	[ -n "$CRASHED" ] || fail "$name: which request was resumed is not logged"
}
stop workflow
crash_run committed crash1 create AttributeTypeDescription Name=Floor DataType=Integer
ctl -t 10s request show "$CRASHED" >"$T/show"
head -1 "$T/show" | grep -q " completed create AttributeTypeDescription " || fail "crash1 not completed: $(cat "$T/show")"
grep -q "the commit was durable before a restart" "$T/show" || fail "crash1 history does not say it resumed"
FLOOR=$(id "/AttributeTypeDescription[Name = 'Floor']")
stop workflow
crash_run committed crash2 create BindingDescription BoundObjectType="$PERSON" BoundAttributeType="$FLOOR"
ctl -t 10s request show "$CRASHED" | head -1 | grep -q " completed create BindingDescription " || fail "crash2 not completed"
CARL=$(ok create Person AccountName=carl Floor=3)
denied "attribute 'Floor': 'three' is not a valid integer (type rule, AttributeTypeDescription 'Floor')" modify "$CARL" Floor=three
stop workflow
crash_run validating crash3 modify "$BADGE" StringRegex='^C[0-9]+$'
ctl -t 10s request show "$CRASHED" >"$T/show"
head -1 "$T/show" | grep -q " completed modify AttributeTypeDescription " || fail "crash3 not completed: $(cat "$T/show")"
grep -q "validated again after a restart" "$T/show" || fail "crash3 was not validated again"
denied "attribute 'Badge': 'B4' does not match regex '^C[0-9]+\$'" modify "$ADA" Badge=B4
ok modify "$ADA" Badge=C4 >/dev/null
pass "kill -9: a schema change's commit survives, and is live after the restart"

# ---- a restart keeps it all -------------------------------------------------------------
stop workflow
start_workflow
log_has "$T/workflow.log" "schema ready attributes=35 .* made=0 problems=0" || fail "after the restart: $(grep 'schema ready' "$T/workflow.log")"
denied "attribute 'Badge': 'B5' does not match regex '^C[0-9]+\$'" modify "$ADA" Badge=B5
[ "$(ctl -t 10s get Person "$CARL" | sed -n 's/^Floor: //p')" = 3 ] || fail "carl's Floor is lost"
[ "$(ctl -t 10s requests --status committed | grep -c .)" = 0 ] || fail "a request is left committed"
[ "$(ctl -t 10s requests --status validating | grep -c .)" = 0 ] || fail "a request is left validating"
pass "a restart keeps the schema the requests made"
