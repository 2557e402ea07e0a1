#!/usr/bin/env bash
# Warm standby drill (docs/recovery.md, "Warm standby and activation"):
# host "a" runs the engine and two agents as primary; host "b" runs the same
# processes with --standby on the same state directory (RocksDB secondary
# instances). The primary is killed (-9, every process of host a) in the
# middle of a full synchronization that provisions N people for a real
# slapd; activation is refused for a wrong passphrase and a key set of
# another installation (nothing changes); `loomctl activate` on host b
# fences a and makes b primary; the run is finished there and every person
# lands in slapd exactly once (counted from slapd's own log of ADD
# operations). Host a's engine, started again, is fenced and refuses to
# start; an activation of a host that is already primary is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

N=${LOOM_STANDBY_OBJECTS:-20000}
# where host a dies: in the full sync (before any export), or in the export
KILL_DURING=${LOOM_STANDBY_KILL_DURING:-sync}
write_config
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/policy"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
# slapd with the stats log on stderr: one "ADD dn=" line per add received
mkdir -p "$T/slapd/db"
slapd_certs
write_slapd_conf
SLAPD_PORT=$(free_port)
SLAPD_LDAPS_PORT=$(free_port)
SLAPD_URI="ldap://127.0.0.1:$SLAPD_PORT"
SLAPD_LDAPS_URI="ldaps://127.0.0.1:$SLAPD_LDAPS_PORT"
start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/" -d 256
wait_for "slapd on $SLAPD_URI" 20 slapd_answers
seed_people 0

cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_secret: bind_password
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
YAML
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
      - { mv: givenName, expr: givenName }
      - { mv: sn, expr: sn }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=p" + employeeId + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: '"p" + employeeId' }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: sn, expr: sn }
YAML
awk -v n="$N" 'BEGIN{print "employeeId,givenName,sn"; for(i=1;i<=n;i++) printf "%d,Given%d,Sur%d\n", 100000+i, i, i}' \
	>"$T/data/hr.csv"

# the installation's key set, exported for the standby; the agent's bind
# password sealed with it
ctl keys create >/dev/null || fail "keys create"
printf 'standby drill passphrase\n' >"$T/pass"
printf 'not the passphrase\n' >"$T/badpass"
ctl keys export --to "$T/keyset.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export"
printf '%s\n' "$ROOTPW" | ctl secret set dir bind_password >/dev/null || fail "secret set"

start_broker
# host a: primary
start engine_a "$ENGINE" -c "$CFG" --host a
wait_log engine_a "registered with broker"
start hr_a "$MAFILE" -c "$CFG" --agent hr --host a
start dir_a "$MALDAP" -c "$CFG" --agent dir --host a
wait_log hr_a "registered with broker"
wait_log dir_a "registered with broker"
start workflow_a "$WORKFLOW" -c "$CFG" --host a
wait_log workflow_a "registered with broker"
# host b: standby on the same state directory
start engine_b "$ENGINE" -c "$CFG" --host b --standby --catch-up 200ms
start hr_b "$MAFILE" -c "$CFG" --agent hr --host b --standby
start dir_b "$MALDAP" -c "$CFG" --agent dir --host b --standby
start workflow_b "$WORKFLOW" -c "$CFG" --host b --standby
for p in engine_b hr_b dir_b workflow_b; do wait_log "$p" "registered with broker"; done
wait_log engine_b "standby: following store=.*engine"
wait_log workflow_b "standby: following store=.*workflow"
# a request to the policy service is served by a's workflow
ctl request create Person AccountName=before DisplayName=Before >"$T/req1.out" || fail "request before the failover"
grep -q "engine ready" "$T/engine_b.log" && fail "the standby engine started working"

ctl status >"$T/status1.out" || fail "loomctl status"
grep -qE "^lease: host a, epoch 1," "$T/status1.out" &&
	grep -qE "^engine +engine@[^ ]+ +loom-engine +[0-9]+ primary +host a; lease epoch 1" "$T/status1.out" &&
	grep -qE "^standby\.engine +standby\.engine@[^ ]+ +loom-engine +[0-9]+ standby +host b; engine seq [0-9]+" "$T/status1.out" &&
	grep -qE "^standby\.ma\.dir +.* standby +host b" "$T/status1.out" ||
	{ cat "$T/status1.out" >&2; fail "loomctl status does not show a primary and a standby"; }
# a standby answers requests with "standby", never works
ctl -t 2s ping standby.engine >/dev/null || fail "the standby engine does not answer Ping"
pass "host b's processes run as standby on the same stores (loomctl status: primary a epoch 1, standby b)"

run_profile hr full-import
run_profile dir full-import
seq_of() { ctl status | sed -n 's/^standby\.engine .* engine seq \([0-9]*\).*/\1/p'; }
s0=$(seq_of)
ka=hr kp=full-sync
if [ "$KILL_DURING" = export ]; then
	run_profile hr full-sync
	ka=dir kp=export
fi
id=$(ctl run $ka $kp --no-wait) || fail "could not start the $kp"
wait_for "the $kp past 20% of the objects" 120 bash -c \
	"'$CTL' -c '$CFG' runs $ka -n 1 | awk -v min=$((N / 5)) 'NR==2 && \$4==\"in-progress\" && \$7>=min {ok=1} END{exit !ok}'"
done_before=$(ctl runs $ka -n 1 | awk 'NR==2 {print $7}')
# host a dies
stop engine_a KILL
stop hr_a KILL
stop dir_a KILL
stop workflow_a KILL
grep -qE "run finished run=$id " "$T/engine_a.log" && fail "the sync ended before the kill (raise LOOM_STANDBY_OBJECTS)"
# the standby follows what the dead primary wrote (its WAL included)
past_s0() { [ "$(seq_of)" -gt "$s0" ]; }
wait_for "the standby to catch up past seq $s0" 10 past_s0
s1=$(seq_of)
pass "host a killed (-9) mid-$kp after ${done_before:-?} of $N objects; the standby followed from seq $s0 to $s1"

# (d) bad input: refused with one line, nothing written
refused() { # WHAT PATTERN CMD...
	local what=$1 pat=$2 rc=0
	shift 2
	cp "$T/state/lease" "$T/lease.before"
	cp "$T/state/keyset" "$T/keyset.before"
	"$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
	[ "$rc" = 1 ] || fail "$what: exit $rc, want 1: $(cat "$T/refused.out" "$T/refused.err")"
	[ "$(wc -l <"$T/refused.err")" = 1 ] || fail "$what: not one line: $(cat "$T/refused.err")"
	grep -qE -- "$pat" "$T/refused.err" || fail "$what: unexpected message: $(cat "$T/refused.err")"
	cmp -s "$T/state/lease" "$T/lease.before" || fail "$what changed the lease"
	cmp -s "$T/state/keyset" "$T/keyset.before" || fail "$what changed the key set"
}
refused "a wrong passphrase" "^loomctl activate: refused: key set '.*keyset.exp': wrong passphrase" \
	"$CTL" -c "$CFG" activate --keyset "$T/keyset.exp" --passphrase-file "$T/badpass" --host b
mkdir -p "$T/x"
printf 'state_dir: %s/x/state\n' "$T" >"$T/x/loom.yaml"
"$CTL" -c "$T/x/loom.yaml" keys create >/dev/null || fail "keys create x"
"$CTL" -c "$T/x/loom.yaml" keys export --to "$T/x.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export x"
refused "a key set of another installation" "^loomctl activate: refused: key set '.*x.exp' is from another installation" \
	"$CTL" -c "$CFG" activate --keyset "$T/x.exp" --passphrase-file "$T/pass" --host b
refused "a missing key set file" "^loomctl activate: refused: .*nothere.exp" \
	"$CTL" -c "$CFG" activate --keyset "$T/nothere.exp" --passphrase-file "$T/pass" --host b
refused "a host without standby processes" "^loomctl activate: refused: no standby process of host 'c'" \
	"$CTL" -c "$CFG" activate --keyset "$T/keyset.exp" --passphrase-file "$T/pass" --host c
grep -qE "^epoch: 1$" "$T/state/lease" || fail "the lease moved"
pass "activation refused with one line and nothing changed: wrong passphrase, another installation's key set, missing file, no standby"

# activation
t0=$(date +%s%N)
ctl activate --keyset "$T/keyset.exp" --passphrase-file "$T/pass" --host b --wait 60s >"$T/activate.out" ||
	{ cat "$T/activate.out" >&2; fail "loomctl activate"; }
grep -qE "^activated host b \(epoch 2\): 4 process\(es\) primary" "$T/activate.out" ||
	{ cat "$T/activate.out" >&2; fail "activation output"; }
ms=$((($(date +%s%N) - t0) / 1000000))
wait_log engine_b "run was cut short by an engine restart run=$id"
ctl status >"$T/status2.out" || fail "loomctl status after activation"
grep -qE "^lease: host b, epoch 2," "$T/status2.out" &&
	grep -qE "^engine +engine@[^ ]+ +loom-engine +[0-9]+ primary +host b; lease epoch 2" "$T/status2.out" &&
	grep -qE "^ma\.dir +.* primary +host b" "$T/status2.out" ||
	{ cat "$T/status2.out" >&2; fail "loomctl status does not show b primary"; }
grep -qE "^standby\." "$T/status2.out" && { cat "$T/status2.out" >&2; fail "a standby is left after activation"; }
ctl search "/Person[AccountName = 'before']" >"$T/search.out" || fail "search after activation"
[ "$(grep -c . "$T/search.out")" -ge 1 ] || fail "b's workflow does not have the resource a's made: $(cat "$T/search.out")"
ctl request create Person AccountName=after DisplayName=After >"$T/req2.out" || fail "request after the failover"
pass "loomctl activate: host b primary at epoch 2 (engine, ma.hr, ma.dir, workflow) in ${ms} ms (Argon2id of the key set included), the cut run marked"

# finish on host b
if [ "$KILL_DURING" = sync ]; then
	run_profile hr full-sync
	run_profile dir export
	expect_counter exported-adds "$N"
else
	run_profile dir export
	cp "$T/run.out" "$T/export2.out"
fi
n=$(ldap_admin ldapsearch -LLL -b "ou=people,$SUFFIX" -s one '(objectClass=inetOrgPerson)' dn | grep -c '^dn:')
[ "$n" = "$N" ] || fail "slapd holds $n people, want $N"
# slapd's own log: every ADD operation it received, and which it applied
awk '/ ADD dn="uid=p[0-9]+,ou=people/ { match($0, /conn=[0-9]+ op=[0-9]+/); k = substr($0, RSTART, RLENGTH);
		match($0, /dn="[^"]*"/); dn[k] = substr($0, RSTART, RLENGTH); next }
	/ RESULT tag=105 / { match($0, /conn=[0-9]+ op=[0-9]+/); k = substr($0, RSTART, RLENGTH);
		if (k in dn) { match($0, /err=[0-9]+/); print substr($0, RSTART, RLENGTH), dn[k]; delete dn[k] } }' \
	"$T/slapd.log" >"$T/adds.txt"
adds=$(grep -cE ' ADD dn="uid=p[0-9]+,ou=people' "$T/slapd.log")
applied=$(grep -c '^err=0 ' "$T/adds.txt")
dups=$(grep '^err=0 ' "$T/adds.txt" | sort | uniq -d | wc -l)
resent=$(grep '^err=68 ' "$T/adds.txt" | sort -u | wc -l)
other=$(grep -vcE '^err=(0|68) ' "$T/adds.txt")
[ "$dups" = 0 ] || fail "slapd applied the add of $dups entries twice"
[ "$other" = 0 ] || fail "adds refused for another reason: $(grep -vE '^err=(0|68) ' "$T/adds.txt" | head -3)"
if [ "$KILL_DURING" = sync ]; then
	[ "$adds" = "$N" ] && [ "$applied" = "$N" ] || fail "slapd received $adds adds and applied $applied, want $N"
else
	# The adds in flight when host a died were sent again by host b: slapd
	# refused them (already there) and b's agent found each applied. (An
	# add a's agent sent just before the kill may have been applied with
	# no RESULT line: its client was gone.)
	n68=$(grep -c "add of .* was already done .*counted as applied" "$T/dir_b.log")
	[ "$n68" = "$resent" ] || fail "$resent entries' adds sent again, $n68 found applied by the agent"
fi
pass "the $kp finished on host b: $N people in slapd, no entry added twice ($adds ADD operations received, $applied with a success RESULT logged; $resent in flight at the kill sent again, refused as existing and found applied), nothing pending"

# (b) the old primary comes back: fenced, refuses to start, writes nothing
rc=0
"$ENGINE" -c "$CFG" --host a >"$T/engine_a2.log" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "old primary's engine exited $rc, want 3 (fenced): $(cat "$T/engine_a2.log")"
grep -qE "cannot start: fenced: host 'b' holds the lease \(epoch 2 since [0-9T:Z-]+\), not this host 'a'" "$T/engine_a2.log" ||
	fail "no fencing line: $(cat "$T/engine_a2.log")"
pass "host a's engine started again is fenced (exit 3, one line) and writes nothing"

# already primary
rc=0
"$CTL" -c "$CFG" activate --keyset "$T/keyset.exp" --passphrase-file "$T/pass" --host b >"$T/again.out" 2>"$T/again.err" || rc=$?
[ "$rc" = 1 ] && [ "$(wc -l <"$T/again.err")" = 1 ] &&
	grep -qE "^loomctl activate: refused: host 'b' is already primary \(lease epoch 2" "$T/again.err" ||
	fail "activating the primary again: rc=$rc $(cat "$T/again.err")"
pass "activating a host that is already primary is refused with one line"

# a damaged lease: a process refuses to start with one line naming it
mkdir -p "$T/x/state"
printf 'loom-lease 1\nepoch: many\nholder: a\n' >"$T/x/state/lease"
rc=0
"$ENGINE" -c "$T/x/loom.yaml" --host a >"$T/damaged.log" 2>&1 || rc=$?
[ "$rc" = 3 ] && [ "$(grep -c . "$T/damaged.log")" = 1 ] &&
	grep -qE "cannot start: lease '$T/x/state/lease' is damaged: expected 'loom-lease 1', 'epoch: N' \(N > 0\) and 'holder: HOST' lines" "$T/damaged.log" ||
	fail "a damaged lease: rc=$rc $(cat "$T/damaged.log")"
pass "a damaged lease file is refused with one line naming it"
