#!/usr/bin/env bash
# Key set, backup and restore (docs/recovery.md) with the real processes:
# a backup taken while a full synchronization runs and one taken at rest, each
# checked against its MANIFEST; the one at rest restored with the key set
# into an empty directory equals the original object by object (connector
# spaces and metaverse through loomctl -o json); the one taken mid-run,
# restored without the key set, lists the credential to re-enter, and its
# reruns end where the original did. Every store is compared object by
# object (loomctl store compare): the restore with the key set against the
# original, the mid-run backup's copies against their restore, and that
# restore, rerun, against the original. Refused, changing nothing: a wrong
# passphrase, a damaged backup, a key set from another installation, a
# target that is not empty. Queued passwords (loom-pcns's queue) survive a
# restore without the key set when their process key is restored, and are
# listed exactly when it is not. A file agent's data outside the configuration
# directory is backed up and put back where it was (when that place is free).
. "$(dirname "$0")/lib.sh"

N=${LOOM_BACKUP_OBJECTS:-20000}

# deploy DIR : a deployment (HR CSV -> directory LDIF) in DIR
deploy() {
	local d=$1
	mkdir -p "$d/agents" "$d/sync" "$d/data" "$d/keys"
	cat >"$d/loom.yaml" <<YAML
state_dir: $d/state
log: { level: info }
bus: { heartbeat: 200ms, liveness: 10, request_timeout: 10s, keys_dir: $d/keys }
YAML
	cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$d/sync/"
	cat >"$d/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
	cat >"$d/agents/directory.yaml" <<YAML
type: file
object_type: inetOrgPerson
anchor: dn
file: { format: ldif, path: ../data/directory.ldif }
YAML
	awk -v n="$N" 'BEGIN{print "employeeId,givenName,sn,title,department,employeeType,manager";
		for(i=1;i<=n;i++) printf "%d,Given%d,Sur%d,Title %d,Dept %d,employee,\n", 100000+i, i, i, i%50, i%20}' >"$d/data/hr.csv"
}

# stack NAME DIR : broker, engine and both agents of a deployment
stack() {
	local n=$1 d=$2
	start "${n}_broker" "$BROKER" -c "$d/loom.yaml"
	wait_log "${n}_broker" "started pid="
	start "${n}_engine" "$ENGINE" -c "$d/loom.yaml"
	wait_log "${n}_engine" "registered with broker"
	start "${n}_hr" "$MAFILE" -c "$d/loom.yaml" --agent hr
	start "${n}_dir" "$MAFILE" -c "$d/loom.yaml" --agent directory
	wait_log "${n}_hr" "registered with broker"
	wait_log "${n}_dir" "registered with broker"
}
unstack() { for p in broker engine hr dir; do stop "$1_$p"; done; }

run_in() { # DIR AGENT PROFILE : must succeed
	local d=$1
	shift
	"$CTL" -c "$d/loom.yaml" -t 120s run "$@" >"$T/run.out" 2>&1 || { cat "$T/run.out" >&2; fail "run $* in $d"; }
}

# snapshot DIR OUT : both connector spaces and a sample of the metaverse as JSON
snapshot() {
	local d=$1 out=$2 c="$CTL -c $1/loom.yaml -o json -t 60s"
	{
		$c cs search hr -n 10000 || fail "cs search hr in $d"
		$c cs search directory -n 10000 || fail "cs search directory in $d"
		for i in 1 2 3 $((N / 2)) $((N - 1)) $N; do
			$c mv search employeeId=$((100000 + i)) || fail "mv search in $d"
		done
	} >"$out"
}

# stores_equal A_STATE B_STATE WHAT [--skip-cf CF]... : every store under
# A_STATE (a directory with CURRENT) equals the one at the same place under
# B_STATE, object by object (loomctl store compare), and B has no other store
stores_equal() {
	local a=$1 b=$2 what=$3 rel n=0
	shift 3
	for rel in $(cd "$a" && find . -name CURRENT -printf '%h\n' | sort); do
		"$CTL" store compare "$a/$rel" "$b/$rel" "$@" >"$T/compare.out" 2>&1 ||
			{ cat "$T/compare.out" >&2; fail "$what: store $rel differs"; }
		echo "    $what: store ${rel#./}: $(tail -n 1 "$T/compare.out")"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fail "$what: no store under $a"
	[ "$(cd "$b" && find . -name CURRENT | wc -l)" = "$n" ] || fail "$what: $b has other stores than $a"
}

# refused WHAT COMMAND... : must exit non-zero with one line on stderr
refused() {
	local what=$1 rc=0
	shift
	"$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
	[ "$rc" -ne 0 ] || fail "$what was not refused"
	[ "$(wc -l <"$T/refused.err")" -eq 1 ] || { cat "$T/refused.err" >&2; fail "$what: not one line of reason"; }
	cat "$T/refused.err"
}

A=$T/a
deploy "$A"
# A file agent whose data lives outside the configuration directory.
mkdir -p "$T/ext"
printf 'badgeId,holder\nB1,100001\n' >"$T/ext/badge.csv"
printf 'type: file\nobject_type: badge\nanchor: badgeId\nfile: { format: csv, path: %s/ext/badge.csv }\n' "$T" >"$A/agents/badge.yaml"
CFG=$A/loom.yaml
echo 'correct horse battery staple' >"$T/pass"
echo 'wrong passphrase' >"$T/badpass"
ctl keys create >/dev/null || fail "keys create"
echo 'Bind-Secret-1' | ctl secret set directory bind_password >/dev/null || fail "secret set"
ctl keys rotate >/dev/null || fail "keys rotate"
ctl keys list | grep -qE '^2 .* 1 +current$' || { ctl keys list >&2; fail "the secret is not sealed with version 2"; }
ctl keys export --to "$T/keyset.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export"
grep -q 'Bind-Secret-1' -r "$A" "$T/keyset.exp" && fail "a secret is in clear on disk"
pass "key set created, a secret sealed, rotated to version 2, exported"

stack a "$A"
run_in "$A" hr full-import
run_in "$A" hr full-sync
run_in "$A" directory export

# A backup while a full synchronization of N changed objects runs.
sed -i 's/,Title /,Chief /' "$A/data/hr.csv"
run_in "$A" hr full-import
id=$(ctl run hr full-sync --no-wait) || fail "could not start the sync"
wait_for "the sync in progress" 60 bash -c \
	"'$CTL' -c '$CFG' runs hr -n 1 | awk 'NR==2 && \$4==\"in-progress\" && \$7>=100 {ok=1} END{exit !ok}'"
ctl backup --to "$T/bk1" >"$T/bk1.out" || fail "backup during the sync"
running=$(ctl runs hr -n 1 | awk 'NR==2 {print $4}')
ctl backup verify "$T/bk1" >/dev/null || fail "the backup taken during the sync does not verify"
grep -q "store '.*' failed\|step .* failed" "$T/bk1/backup.log" && echo "note: a step was retried: $(grep failed "$T/bk1/backup.log")"
grep -q "backup complete" "$T/bk1/backup.log" || fail "backup.log does not say it completed"
[ -e "$T/bk1/state/keyset" ] && fail "the key set is in the backup"
wait_for "the sync to end" 300 bash -c \
	"'$CTL' -c '$CFG' runs hr -n 1 | awk 'NR==2 && \$4!=\"in-progress\" {ok=1} END{exit !ok}'"
pass "online backup started while sync run $id was in progress ($running when the backup ended), verified"

run_in "$A" directory export
ctl backup --to "$T/bk2" >/dev/null || fail "backup at rest"
grep -qxF "external: badge/path $T/ext/badge.csv" "$T/bk2/MANIFEST" || fail "the badge agent's data outside is not in the MANIFEST"
cmp -s "$T/ext/badge.csv" "$T/bk2/external/badge/path" || fail "the badge agent's data was not copied"
snapshot "$A" "$T/a.json"
unstack a

# A step that fails once is retried and logged; twice, the backup has no
# MANIFEST and does not verify.
LOOM_TEST_BACKUP_FAIL=state ctl backup --to "$T/bk4" >/dev/null || fail "a step failing once was not retried"
grep -q "step state failed: injected fault .*; retrying once" "$T/bk4/backup.log" || fail "the retry is not logged"
ctl backup verify "$T/bk4" >/dev/null || fail "the retried backup does not verify"
refused "a step failing twice" env LOOM_TEST_BACKUP_FAIL=config:2 "$CTL" -c "$CFG" backup --to "$T/bk5"
grep -q "step config failed again" "$T/bk5/backup.log" || fail "the second failure is not logged"
[ -e "$T/bk5/MANIFEST" ] && fail "a failed backup has a MANIFEST"
"$CTL" backup verify "$T/bk5" 2>/dev/null && fail "a failed backup verifies"
pass "a failing step is retried once and logged; a second failure leaves no MANIFEST"

# Restore with the key set into an empty directory: equal object by object.
"$CTL" restore --from "$T/bk2" --to "$T/b" --keyset "$T/keyset.exp" --passphrase-file "$T/pass" >"$T/restore_b.out" ||
	{ cat "$T/restore_b.out" >&2; fail "restore with the key set"; }
grep -qF "kept '$T/ext/badge.csv' (file agent data badge/path): it exists" "$T/restore_b.out" ||
	{ cat "$T/restore_b.out" >&2; fail "an existing file outside was not kept and said"; }
grep -q "all secrets restored" "$T/restore_b.out" || { cat "$T/restore_b.out" >&2; fail "secrets not all restored"; }
# Every store, every family, every key and value: the restored installation
# against the original (stopped since the backup, so nothing moved).
stores_equal "$A/state" "$T/b/state" "restore with the key set vs the original"
stack b "$T/b"
snapshot "$T/b" "$T/b.json"
[ "$(grep -c . "$T/a.json")" -ge 8 ] || fail "the snapshot is too small: $(head -c 300 "$T/a.json")"
cmp -s "$T/a.json" "$T/b.json" || { diff "$T/a.json" "$T/b.json" | head -c 2000 >&2; fail "restored stores differ from the original"; }
"$CTL" -c "$T/b/loom.yaml" secret list | grep -qE '^directory +bind_password +2$' || fail "secret not restored"
"$CTL" -c "$T/b/loom.yaml" keys list | grep -q "^installation $(cat "$A/state/installation")$" || fail "installation id not kept"
run_in "$T/b" hr full-sync
grep -qE "^(connectors-with-flow-updates|projected|provisioned) " "$T/run.out" && { cat "$T/run.out" >&2; fail "the restored installation found work to do"; }
unstack b
pass "restore with the key set into an empty directory: connector spaces and metaverse equal the original's"

# Restore of the mid-run backup without the key set: the secret is listed.
mv "$T/ext/badge.csv" "$T/ext/badge.orig"
"$CTL" restore --from "$T/bk1" --to "$T/c" >"$T/restore_c.out" || { cat "$T/restore_c.out" >&2; fail "restore without the key set"; }
# The backup taken during the sync, restored onto an empty directory, holds
# every object of the backup's copies (a restore without keys drops secrets
# only, never a store's object).
stores_equal "$T/bk1/state" "$T/c/state" "mid-run backup vs its restore"
grep -qE '^1 credential\(s\) to re-enter' "$T/restore_c.out" || { cat "$T/restore_c.out" >&2; fail "no list of credentials"; }
grep -qxF '  directory bind_password' "$T/restore_c.out" || { cat "$T/restore_c.out" >&2; fail "bind_password not listed"; }
[ -e "$T/c/state/secrets/directory/bind_password" ] && fail "an unreadable secret was restored"
cmp -s "$T/ext/badge.orig" "$T/ext/badge.csv" || { cat "$T/restore_c.out" >&2; fail "the badge agent's data was not put back"; }
"$CTL" -c "$T/c/loom.yaml" secret list | grep -q 'directory bind_password .*missing' || fail "secret list does not say what is missing"
"$CTL" -c "$T/c/loom.yaml" keys create >/dev/null || fail "keys create after a restore without keys"
echo 'Bind-Secret-2' | "$CTL" -c "$T/c/loom.yaml" secret set directory bind_password >/dev/null || fail "re-entering the secret"
"$CTL" -c "$T/c/loom.yaml" secret list | grep -q missing && fail "still listed as missing after secret set"
stack c "$T/c"
run_in "$T/c" hr full-sync
run_in "$T/c" directory export
"$CTL" -c "$T/c/loom.yaml" -o json cs search hr -n 10000 >"$T/c_hr.json" || fail "cs search in c"
# seen_gen (an import generation) is left out of this comparison.
strip_gen() { sed 's/"seen_gen":"[0-9]*",//g'; }
head -n 1 "$T/a.json" | strip_gen | cmp -s - <(strip_gen <"$T/c_hr.json") || fail "the mid-run backup, rerun, does not end where the original did"
cmp -s "$A/data/directory.ldif" "$T/c/data/directory.ldif" || fail "the directory differs after the reruns"
# Object by object, every family but the run history (run, and meta's run
# counter), objects without when they were synchronized (the rerun did it
# later): the restored installation, rerun, equals the original.
stores_equal "$A/state" "$T/c/state" "mid-run backup rerun vs the original" --skip-cf run --skip-cf meta --ignore-times
# The same comparison sees what the original did after the mid-run backup
# (the rest of the sync, the export): it is not blind.
rc=0
"$CTL" store compare "$T/bk1/state/engine" "$A/state/engine" --skip-cf run --skip-cf meta --ignore-times >"$T/compare.out" || rc=$?
[ "$rc" = 3 ] || { cat "$T/compare.out" >&2; fail "the mid-run backup compares equal to the finished original (exit $rc)"; }
echo "    mid-run backup vs the finished original: $(tail -n 1 "$T/compare.out"): $(grep -E ' values differ$' "$T/compare.out" | awk '{printf "%s%s", sep, $1; sep=","}')"
unstack c
pass "restore without the key set lists the credential to re-enter; the mid-run backup reruns to the original's state"

# Queued passwords: sealed to process keys (keys_dir), not to the key set.
# A restore without the key set keeps them when their key is restored, and
# lists exactly those it cannot open when it is not: here keys_dir lies
# outside the configuration directory (so outside the backup), and is gone
# on the machine restored to.
NOTIFY=$LOOM_BUILD_DIR/pcns/loom-pcns-notify
Q=$T/q
mkdir -p "$Q/agents" "$T/qkeys"
QP=$(free_port)
cat >"$Q/loom.yaml" <<YAML
state_dir: $Q/state
log: { level: info }
bus: { heartbeat: 200ms, liveness: 10, request_timeout: 5s, keys_dir: $T/qkeys }
YAML
printf 'type: file\nobject_type: person\nanchor: uid\nfile: { format: csv, path: ../people.csv }\n' >"$Q/agents/dir.yaml"
QC=("$CTL" -c "$Q/loom.yaml")
for k in pcns dc1; do "${QC[@]}" keys gen "$k" >/dev/null || fail "keys gen $k in q"; done
printf 'listen: tcp://127.0.0.1:%s\nnotifiers:\n  dc1: { key: %s/qkeys/dc1.pub, agent: dir }\nretry_interval: 200ms\n' "$QP" "$T" >"$Q/pcns.yaml"
printf 'name: dc1\nretry_initial: 200ms\nretry_max: 1s\nack_timeout: 2s\n' >"$Q/pcns-notify.yaml"
"${QC[@]}" pcns target add primary --endpoint "tcp://127.0.0.1:$QP" --key "$T/qkeys/pcns.pub" >/dev/null || fail "pcns target add"
start q_broker "$BROKER" -c "$Q/loom.yaml"
wait_log q_broker "started pid="
start q_pcns "$LOOM_BUILD_DIR/pcns/loom-pcns" -c "$Q/loom.yaml"
wait_log q_pcns "listening endpoint="
start q_notify "$NOTIFY" -c "$Q/loom.yaml"
wait_log q_notify "notifier ready"
# No engine runs: the changes stay queued in loom-pcns.
for acct in alice bob; do
	printf 'Queued-%s-9z\n' "$acct" | "$NOTIFY" --submit -c "$Q/loom.yaml" --account "$acct" >/dev/null || fail "--submit $acct"
done
queued2() { "${QC[@]}" pcns status 2>/dev/null | grep -qE "^queue +2 changes"; }
wait_for "two changes queued in loom-pcns" 20 queued2
"${QC[@]}" backup --to "$T/bkq" >/dev/null || fail "backup of q"
for p in notify pcns broker; do stop "q_$p"; done
"$CTL" restore --from "$T/bkq" --to "$T/q2" >"$T/restore_q2.out" || { cat "$T/restore_q2.out" >&2; fail "restore of q"; }
grep -qxF "2 queued password(s) kept: sealed to process keys in '$T/qkeys', not to the key set" "$T/restore_q2.out" ||
	{ cat "$T/restore_q2.out" >&2; fail "the queued passwords are not reported kept"; }
mv "$T/qkeys" "$T/qkeys.away"
"$CTL" restore --from "$T/bkq" --to "$T/q3" >"$T/restore_q3.out" || { cat "$T/restore_q3.out" >&2; fail "restore of q without its keys"; }
grep -qxF "2 queued password(s) lost: sealed to keys not in '$T/qkeys' ('pcns'); each account must change its password again:" "$T/restore_q3.out" ||
	{ cat "$T/restore_q3.out" >&2; fail "the lost queued passwords are not reported"; }
grep -E '^  pcns queue: ' "$T/restore_q3.out" | sort >"$T/lost.txt"
printf "  pcns queue: account %s (notifier dc1, agent dir), sealed to 'pcns'\n" alice bob >"$T/lost.want"
cmp -s "$T/lost.txt" "$T/lost.want" || { cat "$T/restore_q3.out" >&2; fail "the list of lost passwords is not exactly alice and bob"; }
grep -q "^no queued passwords in the backup$" "$T/restore_b.out" || { cat "$T/restore_b.out" >&2; fail "restore b says nothing of queued passwords"; }
mv "$T/qkeys.away" "$T/qkeys"
pass "queued passwords: kept without the key set when their process key is restored; listed exactly (alice, bob) when it is not"

# Bad input, refused with one line, nothing written.
refused "a wrong passphrase" "$CTL" restore --from "$T/bk2" --to "$T/d" --keyset "$T/keyset.exp" --passphrase-file "$T/badpass"
grep -q "wrong passphrase" "$T/refused.err" || fail "reason: $(cat "$T/refused.err")"
[ -e "$T/d" ] && fail "a refused restore wrote '$T/d'"
cp -a "$T/bk2" "$T/bk3"
f=$(awk '/^file: .* state\/engine\/[0-9]+\.(sst|log)$/ {print $4; exit}' "$T/bk3/MANIFEST")
[ -n "$f" ] || fail "no data file of the engine's store in the manifest"
printf 'X' | dd of="$T/bk3/$f" bs=1 seek=100 conv=notrunc status=none
refused "a damaged backup (verify)" "$CTL" backup verify "$T/bk3"
grep -q "is damaged: '$f' does not match its checksum" "$T/refused.err" || fail "reason: $(cat "$T/refused.err")"
refused "a damaged backup (restore)" "$CTL" restore --from "$T/bk3" --to "$T/d"
[ -e "$T/d" ] && fail "a refused restore wrote '$T/d'"
deploy "$T/x"
"$CTL" -c "$T/x/loom.yaml" keys create >/dev/null || fail "keys create x"
"$CTL" -c "$T/x/loom.yaml" keys export --to "$T/x.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export x"
refused "a key set from another installation (restore)" "$CTL" restore --from "$T/bk2" --to "$T/d" --keyset "$T/x.exp" --passphrase-file "$T/pass"
grep -q "from another installation" "$T/refused.err" || fail "reason: $(cat "$T/refused.err")"
[ -e "$T/d" ] && fail "a refused restore wrote '$T/d'"
before=$(sha256sum "$A/state/keyset")
refused "a key set from another installation (import)" "$CTL" -c "$CFG" keys import --from "$T/x.exp" --passphrase-file "$T/pass"
[ "$(sha256sum "$A/state/keyset")" = "$before" ] || fail "a refused import changed the key set"
refused "a restore onto a non-empty installation" "$CTL" restore --from "$T/bk2" --to "$A"
pass "refused with one line, nothing changed: wrong passphrase, damaged backup, key set of another installation, non-empty target"
