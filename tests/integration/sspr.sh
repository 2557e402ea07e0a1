#!/usr/bin/env bash
# Self-service password reset (docs/sspr.md) against a real slapd: a user
# registers answers through loomctl sspr register (stdin, not a terminal)
# after the password authentication challenge (the agent binds as the user);
# wrong answers at reset count toward the lockout gate and lock the
# account, then lock it for good after the configured lockouts; right
# answers reset the password: loom-workflow seals it to the engine, which
# sets it through loom-ma-ldap on the account's connector (the source
# included), and the user binds with it. Finally no answer and no password
# in clear in the stores, logs or the bus capture (loom-tap).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/pcns/lib_pcns.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/policy"
start_slapd_named ldap1
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/ldap1.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $LDAP1_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync:
  enabled: true
  match: [account]
  account_attribute: uid
  retry_interval: 200ms
  timeout: 5s
YAML
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: ldap1-in
    direction: inbound
    agent: ldap1
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: uid }
YAML
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/sspr.yaml" <<'YAML'
agent: ldap1
questions:
  - "Last name of your first-grade teacher?"
  - "City where your parents met?"
  - "Model of your first bicycle?"
  - "Street you lived on at ten?"
register: 3
present: 2
require: 2
lockout: { threshold: 2, duration: 3s, permanent_after: 2 }
argon2_opslimit: 1
argon2_memlimit: 8MiB
YAML
ctl keys gen engine >/dev/null || fail "keys gen engine"
ctl keys gen workflow >/dev/null || fail "keys gen workflow"
ctl keys gen ma.ldap1 >/dev/null || fail "keys gen ma.ldap1"
seed_named "$LDAP1_URI" 3
start_broker
start tap "$TAP" -c "$CFG"
wait_log broker "tap listener attached subscriptions=1"
start_engine
start_ldap_agent ldap1
run_profile ldap1 full-import
run_profile ldap1 full-sync
start_workflow
wait_log workflow "sspr ready agent=ldap1 questions=4"
wait_log workflow "sspr registrations=0 unusable=0"
[ -e "$T/keys/sspr.pepper" ] && fail "a pepper file was made (the pepper comes from the key set)"

binds() { ldapwhoami -x -H "$LDAP1_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }
binds user1 pw-user1 || fail "user1 cannot bind with its seeded password"

A1='Zwickelmeyer Q'; A2='Saint-Ouen-sur-Marne'; A3='Batavus Flamingo 1987'; A4='Rue Oberkampf'
# no key set yet: the pepper cannot be derived, registration is refused
rc=0
printf 'pw-user1\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" | ctl sspr register --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "no-keyset.*loomctl keys create" "$T/err" || fail "register without a key set: rc=$rc $(cat "$T/err")"
ctl keys create >/dev/null || fail "keys create"
pass "without a key set registration is refused (no-keyset: make one with loomctl keys create); no pepper file"
# too few answers: refused
rc=0
printf 'pw-user1\n%s\n\n\n\n' "$A1" | ctl sspr register --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "too-few-answers" "$T/err" || fail "one answer registered: rc=$rc $(cat "$T/err")"
# the password authentication challenge: a wrong current password is refused
rc=0
printf 'not-my-password\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" | ctl sspr register --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "bad-password" "$T/err" || fail "wrong current password: rc=$rc $(cat "$T/err")"
wait_log ma_ldap1 "password checked agent=ldap1 account=user1 .*code=bad-password"
printf 'pw-user1\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" | ctl sspr register --account user1 >"$T/out" ||
	fail "register user1"
grep -q "user1 registered" "$T/out" || fail "register output: $(cat "$T/out")"
wait_log ma_ldap1 "password checked agent=ldap1 dn=uid=user1,ou=people,.* result=ok"
# the pepper's key version is kept with the hashes: a rotation does not
# invalidate user1's answers (checked by the reset below)
ctl keys rotate >/dev/null || fail "keys rotate"
pass "registration: too few answers refused; a wrong current password refused (checked by binding in slapd); four answers registered"

# a reset before registering is refused
rc=0
printf 'a\nb\nc\nd\nNew-pass-1\n' | ctl sspr reset --account user2 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "not-registered" "$T/err" || fail "unregistered reset: rc=$rc $(cat "$T/err")"

# wrong answers: the lockout gate (threshold 2) locks the account
WRONG='Never-set-9q'
rc=0
printf 'x\ny\nz\nw\n%s\n' "$WRONG" | ctl sspr reset --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "wrong-answers.*1 attempt(s) left" "$T/err" || fail "wrong answers 1: rc=$rc $(cat "$T/err")"
# the lockout counters are in the store (synced before the answer): a
# restart of loom-workflow keeps the failure just counted
stop workflow
start_workflow
wait_log workflow "sspr registrations=1 unusable=0"
rc=0
printf 'x\ny\nz\nw\n%s\n' "$WRONG" | ctl sspr reset --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "locked" "$T/err" || fail "wrong answers 2: rc=$rc $(cat "$T/err")"
# right answers while locked: still refused
rc=0
printf '%s\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" "$WRONG" | ctl sspr reset --account user1 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "locked" "$T/err" || fail "reset while locked: rc=$rc $(cat "$T/err")"
binds user1 "$WRONG" && fail "a locked account's password was set"
pass "wrong answers: attempts counted (across a loom-workflow restart), then the account is locked (right answers refused while locked)"

# after the lockout: right answers (case and blanks do not matter) reset the password
# (a probe would be a wrong attempt: wait out the 3 s lockout instead of polling)
sleep_until=$((SECONDS + 4))
while [ "$SECONDS" -lt "$sleep_until" ]; do sleep 0.2; done
NEWPW='Sspr-new-pass#4k'
printf '%s\n  saint-ouen-SUR-marne \n%s\n%s\n%s\n' "${A1,,}" "$A3" "$A4" "$NEWPW" | ctl sspr reset --account user1 >"$T/out" ||
	fail "reset with right answers: $(cat "$T/out")"
grep -q "password reset for user1: 1 connected system" "$T/out" || fail "reset output: $(cat "$T/out")"
wait_for "user1 to bind with the new password" 20 binds user1 "$NEWPW"
binds user1 pw-user1 && fail "the old password still binds"
ctl report password-sync --account user1 >"$T/report.out" || fail "report password-sync"
grep -qE "ldap1 account=user1 .*origin=sspr" "$T/report.out" && grep -qE -- "-> ldap1 +ok" "$T/report.out" ||
	{ cat "$T/report.out" >&2; fail "the report does not show the reset on ldap1"; }
pass "right answers: the password is set in the directory through the engine; user1 binds with it"

# the draw of questions stays the same until a reset uses it
ctl sspr questions --account user1 --reset >"$T/q1.out" || fail "sspr questions 1"
ctl sspr questions --account user1 --reset >"$T/q2.out" || fail "sspr questions 2"
[ "$(grep -c '	' "$T/q1.out")" = 2 ] && cmp -s "$T/q1.out" "$T/q2.out" ||
	fail "two draws differ or are not 2 questions: $(cat "$T/q1.out" "$T/q2.out")"
ctl sspr questions >"$T/q.out" && [ "$(grep -c '	' "$T/q.out")" = 4 ] || fail "sspr questions: $(cat "$T/q.out")"
pass "loomctl sspr questions: the configured questions; a reset's draw is the same until a reset uses it"

# permanent lockout after permanent_after (2) lockouts
printf 'pw-user2\n%s\n%s\n%s\n\n' "$A1" "$A2" "$A3" | ctl sspr register --account user2 >/dev/null || fail "register user2"
for i in 1 2 3 4; do
	printf 'x\ny\nz\nw\n%s\n' "$WRONG" | ctl sspr reset --account user2 2>"$T/err" >/dev/null
	if [ "$i" = 2 ]; then
		wait_log workflow "sspr reset refused account=user2 .*locked=yes"
		sleep_until=$((SECONDS + 4))
		while [ "$SECONDS" -lt "$sleep_until" ]; do sleep 0.2; done
	fi
done
grep -q "locked-permanently" "$T/err" || fail "user2 not locked for good: $(cat "$T/err")"
stop workflow
start_workflow
rc=0
printf '%s\n%s\n%s\n\n%s\n' "$A1" "$A2" "$A3" "$WRONG" | ctl sspr reset --account user2 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "locked-permanently\|locked until an administrator" "$T/err" || fail "user2 reset: $(cat "$T/err")"
pass "after the configured lockouts the account stays locked (also after a loom-workflow restart)"

# no answer and no password in clear: stores, logs, the tap's capture
wait_log tap "loom.SsprReset .*secrets=<sealed>"
wait_log tap "loom.SsprRegister .*secrets=<sealed>"
wait_log tap "loom.VerifyPasswordRequest .*password=<sealed>"
wait_log tap "loom.PasswordSyncRequest .*password=<sealed>.*origin=sspr"
n=$(no_cleartext "$NEWPW" "$WRONG" not-my-password "$A1" "$A2" "$A3" "$A4" "${A1,,}" "Batavus" "Zwickelmeyer" "Oberkampf")
pass "no answer or password in clear (or base64, hex, UTF-16) in $n files: stores, logs, tap capture"

# --check-config validates sspr.yaml: a bad value names file, line, column and key
"$WORKFLOW" -c "$CFG" --check-config >"$T/check.out" 2>&1 || fail "--check-config refuses the good sspr.yaml: $(cat "$T/check.out")"
cp "$T/sspr.yaml" "$T/sspr.good"
sed -i 's/^require: 2/require: many/' "$T/sspr.yaml"
"$WORKFLOW" -c "$CFG" --check-config >"$T/check.out" 2>&1 && fail "--check-config took require: many"
grep -qE "sspr.yaml:[0-9]+:[0-9]+: key 'require': bad value 'many'" "$T/check.out" || fail "unexpected: $(cat "$T/check.out")"
sed -i 's/^require: many/require: 3/' "$T/sspr.yaml"
"$WORKFLOW" -c "$CFG" --check-config >"$T/check.out" 2>&1 && fail "--check-config took require > present"
grep -q "expected require (3) <= present (2)" "$T/check.out" || fail "unexpected: $(cat "$T/check.out")"
cp "$T/sspr.good" "$T/sspr.yaml"
pass "loom-workflow --check-config checks sspr.yaml (bad values, require <= present <= register)"

# On a terminal: every secret is asked without echo (a pseudo terminal)
printf 'pw-user3\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" | ctl sspr register --account user3 >/dev/null || fail "register user3"
TTYPW='Sspr-on-a-tty%7m'
export SSPR_ANSWERS
SSPR_ANSWERS=$(printf '%s\t%s\n' "Last name of your first-grade teacher?" "$A1" "City where your parents met?" "$A2" \
	"Model of your first bicycle?" "$A3" "Street you lived on at ten?" "$A4")
python3 "$LOOM_SOURCE_DIR/tests/integration/sspr/ptyrun.py" "$T/tty.out" "$TTYPW" "$CTL" -c "$CFG" sspr reset --account user3 ||
	fail "reset on a terminal: $(cat "$T/tty.out")"
grep -q "Answer these (2 must be right)" "$T/tty.out" && grep -q "New password for user3: " "$T/tty.out" &&
	grep -q "Retype the new password: " "$T/tty.out" || fail "terminal prompts: $(cat "$T/tty.out")"
for s in "$TTYPW" "$A1" "$A2" "$A3" "$A4"; do grep -qF "$s" "$T/tty.out" && fail "'$s' was echoed on the terminal"; done
wait_for "user3 to bind with the password given on a terminal" 20 binds user3 "$TTYPW"
cp "$T/tty.out" "$T/tty.transcript"; rm -f "$T/tty.out"
pass "on a terminal: questions and passwords asked without echo; the reset lands in slapd"
n=$(no_cleartext "$TTYPW")
pass "the password given on a terminal is in clear in none of $n files"

# Backup and restore: the pepper is in the key set, which no backup holds.
# With this installation's key set every registration is usable; without it
# restore says they are not, and loom-workflow refuses them as unusable
# (not as wrong answers: no lockout counted) until the user registers again.
printf 'correct horse battery\n' >"$T/pass"
ctl keys export --to "$T/keyset.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export"
ctl backup --to "$T/bk" >"$T/backup.out" 2>&1 || fail "backup: $(cat "$T/backup.out")"
grep -q "^3 SSPR registration(s) in it: usable only with this installation's key set" "$T/backup.out" ||
	fail "backup does not say the registrations need the key set: $(cat "$T/backup.out")"
"$CTL" restore --from "$T/bk" --to "$T/rk" --keyset "$T/keyset.exp" --passphrase-file "$T/pass" >"$T/restore_k.out" 2>&1 ||
	fail "restore with the key set: $(cat "$T/restore_k.out")"
grep -q "all 3 SSPR registration(s) usable" "$T/restore_k.out" || fail "restore with keys: $(cat "$T/restore_k.out")"
"$CTL" restore --from "$T/bk" --to "$T/rn" >"$T/restore_n.out" 2>&1 || fail "restore without keys: $(cat "$T/restore_n.out")"
grep -q "3 of 3 SSPR registration(s) cannot be used (no key set given" "$T/restore_n.out" ||
	fail "restore without keys does not report the registrations: $(cat "$T/restore_n.out")"
pass "backup says the 3 registrations need the key set; restore with it: usable; without: '3 of 3 SSPR registration(s) cannot be used'"
# the same situation live: this installation's key set replaced by a new one
stop workflow
mv "$T/state/keyset" "$T/keyset.orig"
ctl keys create >/dev/null || fail "keys create (a new key set)"
start_workflow
wait_log workflow "sspr registrations=3 unusable=3: the answers were registered (with key set version 2, which|under another key set)"
rc=0
ctl sspr questions --account user3 --reset >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 3 ] && grep -q "registration-unusable" "$T/err" || fail "questions with another key set: rc=$rc $(cat "$T/err")"
mv "$T/keyset.orig" "$T/state/keyset"
ctl sspr questions --account user3 --reset >/dev/null || fail "user3's questions with its key set back"
pass "another key set: loom-workflow counts the registrations unusable and refuses them (registration-unusable)"

# the example in config/examples is a valid file
cp "$LOOM_SOURCE_DIR/config/examples/sspr.yaml" "$T/sspr.yaml"
"$WORKFLOW" -c "$CFG" --check-config >"$T/check.out" 2>&1 || fail "config/examples/sspr.yaml is refused: $(cat "$T/check.out")"
cp "$T/sspr.good" "$T/sspr.yaml"
pass "config/examples/sspr.yaml is valid"
