#!/usr/bin/env bash
# Configuration promotion (issue 7): a development environment's schema
# (changed by requests), Sets, MPRs, workflows and sync rules are exported
# with loomctl config export and imported into a second environment (its
# own broker, loom-workflow and store): --dry-run prints the ordered
# differences and changes nothing; the import makes the schema and the Sets
# by requests and writes the files; after a restart the workflow runs there;
# a second import finds no changes; a directory whose workflow is broken is
# refused by the check before anything is applied.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/policy/workflows" "$T/sync" "$T/agents"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
printf 'mprs: []\n' >"$T/policy/mprs.yaml"
printf 'type: file\nobject_type: person\nanchor: id\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
cat >"$T/sync/hr.yaml" <<'YAML'
rules:
  - { name: hr-in, direction: inbound, agent: hr, cs_type: person, mv_type: person, project: true,
      join: [ { match: [ { cs: id, mv: employeeId } ] } ], flows: [ { mv: employeeId, expr: id } ] }
YAML
# the second environment: its own directory, state and bus
P=$T/prod
mkdir -p "$P/policy" "$P/agents" "$P/keys"
sed "s|^state_dir: .*|state_dir: $P/state|; s|keys_dir: .*|keys_dir: $P/keys|" "$CFG" >"$P/loom.yaml"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$P/policy/"
printf 'mprs: []\n' >"$P/policy/mprs.yaml"
cp "$T/agents/hr.yaml" "$P/agents/"
pctl() {
	local rc=0 e="$T/.pctl.err.$BASHPID"
	"$CTL" -c "$P/loom.yaml" "$@" 2>"$e" || rc=$?
	cat "$e" >>"$T/ctl.log"
	cat "$e" >&2
	rm -f "$e"
	return "$rc"
}

start_broker
start_workflow
start pbroker "$BROKER" -c "$P/loom.yaml"
wait_log pbroker "started pid="
start pworkflow "$WORKFLOW" -c "$P/loom.yaml"
wait_log pworkflow "registered with broker"
wait_for "the second loom-workflow to answer" 10 "$CTL" -c "$P/loom.yaml" -t 1s requests -n 1

ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}

# ---- development: schema by requests, sets, policy files -----------------------
PERSON=$(ctl search "/ObjectTypeDescription[Name = 'Person']" | awk '{print $1}')
BADGE=$(ok create AttributeTypeDescription Name=Badge DataType=String StringRegex='^B[0-9]+$')
ok create BindingDescription BoundObjectType="$PERSON" BoundAttributeType="$BADGE" >/dev/null
DEVICE=$(ok create ObjectTypeDescription Name=Device Description="a laptop or a phone")
ok create BindingDescription BoundObjectType="$DEVICE" BoundAttributeType="$BADGE" Required=true >/dev/null
ADA=$(ok create Person AccountName=ada DisplayName="Ada")
ok create Set DisplayName=Admins ExplicitMember="$ADA" >/dev/null
ok create Set DisplayName="Badge holders" "Filter=/Person[starts-with(Badge, '%')]" >/dev/null
cat >>"$T/policy/mprs.yaml" <<'YAML'
transition_mprs:
  - name: badge holders are told
    set: Badge holders
    transition: in
    action_workflows: [tell]
YAML
cat >"$T/policy/workflows/tell.yaml" <<'YAML'
workflows:
  - name: tell
    kind: action
    activities:
      - { type: function, expr: '"Badged " + AccountName', destination: //Target/DisplayName }
YAML
stop workflow
start_workflow

ctl config export --to "$T/export" >"$T/export.out" || fail "export: $(cat "$T/export.out")"
grep -q "^  - name: Badge$" "$T/export/schema/schema.yaml" || fail "schema export: $(cat "$T/export/schema/schema.yaml")"
grep -q "^  - name: Device$" "$T/export/schema/schema.yaml" || fail "no Device type exported"
grep -q "explicit_members: \['ada'\]" "$T/export/sets/sets.yaml" || fail "sets export: $(cat "$T/export/sets/sets.yaml")"
[ -f "$T/export/policy/workflows/tell.yaml" ] && [ -f "$T/export/sync/hr.yaml" ] || fail "files not exported: $(cat "$T/export.out")"
pass "export writes the live schema, the Sets and the policy, workflow and sync files"

# ---- the second environment: dry run ---------------------------------------------
pctl request create Person AccountName=ada DisplayName=Ada >/dev/null || fail "prod: ada"
pctl config import --from "$T/export" --dry-run >"$T/dry.out" || fail "dry run: $(cat "$T/dry.out")"
cat "$T/dry.out" >&2
for want in "1. + attribute Badge (string, regex ^B[0-9]+\$)" "2. + type Device" \
	"3. + binding Badge on Person" "4. + binding Badge on Device (required)" \
	"5. + set 'Admins', members ada" "6. + set 'Badge holders': filter /Person[starts-with(Badge, '%')]" \
	"7. ~ file policy/mprs.yaml" "+ 2: transition_mprs:" "8. + file policy/workflows/tell.yaml" "9. + file sync/hr.yaml" \
	"9 changes (dry run: nothing applied)"; do
	grep -qF -- "$want" "$T/dry.out" || fail "dry run lacks '$want': $(cat "$T/dry.out")"
done
[ -z "$(pctl search "/AttributeTypeDescription[Name = 'Badge']")" ] || fail "the dry run applied the schema"
[ ! -e "$P/policy/workflows/tell.yaml" ] || fail "the dry run wrote a file"
pass "import --dry-run prints the ordered differences and changes nothing"

# ---- a broken directory is refused before anything is applied --------------------
cp -r "$T/export" "$T/broken"
sed -i 's/destination: \/\/Target\/DisplayName/destination: \/\/Target\/DisplayNam/' "$T/broken/policy/workflows/tell.yaml"
pctl config import --from "$T/broken" >"$T/broken.out" 2>&1 && fail "a broken workflow was imported"
grep -q "tell.yaml:[0-9]*:[0-9]*: .*unknown attribute 'DisplayNam'\|loom-workflow --check-config refuses" "$T/broken.out" ||
	fail "the refusal: $(cat "$T/broken.out")"
[ -z "$(pctl search "/AttributeTypeDescription[Name = 'Badge']")" ] || fail "a refused import applied the schema"
pass "an import whose files do not pass --check-config applies nothing"

# ---- apply ---------------------------------------------------------------------
pctl config import --from "$T/export" >"$T/apply.out" || fail "import: $(cat "$T/apply.out")"
grep -q "changes applied; restart loom-workflow and loom-engine" "$T/apply.out" || fail "apply: $(cat "$T/apply.out")"
[ -n "$(pctl search "/AttributeTypeDescription[Name = 'Badge']")" ] || fail "Badge not made"
[ -n "$(pctl search "/Set[DisplayName = 'Admins']/ComputedMember[AccountName = 'ada']")" ] || fail "Admins' member not matched by AccountName"
cmp -s "$T/policy/workflows/tell.yaml" "$P/policy/workflows/tell.yaml" || fail "workflow file not copied"
stop pworkflow
start pworkflow "$WORKFLOW" -c "$P/loom.yaml"
wait_log pworkflow "workflow ready .* workflows=2"
wait_for "the second loom-workflow to answer" 10 "$CTL" -c "$P/loom.yaml" -t 1s requests -n 1
ID=$(pctl search "/Person[AccountName = 'ada']" | awk '{print $1}')
pctl request modify "$ID" Badge=B7 >/dev/null || fail "Badge on prod"
wait_for "the imported workflow to run" 10 bash -c "$CTL -c $P/loom.yaml get - $ID | grep -q '^DisplayName: Badged ada$'"
pctl config import --from "$T/export" --dry-run | grep -q "^no changes$" || fail "a second import finds changes: $(pctl config import --from "$T/export" --dry-run)"
pass "import applies schema and Sets by requests and the files atomically; after a restart the workflow runs; a second import finds nothing"
