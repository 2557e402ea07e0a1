#!/usr/bin/env bash
# Password synchronization from OpenLDAP to OpenLDAP through the whole
# chain (docs/pcns.md): slapd "src" hands password changes to
# loom-pcns-notify by its sock overlay; the notifier seals and spools them
# and delivers them to loom-pcns; the listener queues them and hands them to
# the engine; the engine sets the password on the joined account of slapd
# "dst" through loom-ma-ldap. Checked by binding to dst with the new
# password. Then the faults: the listener down (the notifier spools, and
# delivers after its restart), the engine down (the listener queues), a
# change notified twice (applied once), a notifier whose key is not listed
# (refused, logged; its spool keeps the change), an account Loom does not
# know (unmatched, not retried), a refused change in slapd (never sent).
# Finally no store, spool or log holds any password used.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/pcns/lib_pcns.sh"

write_config
mkdir -p "$T/agents" "$T/sync"
mapfile -t sock < <(slapd_sock_lines "$T/pw.sock")
SLAPD_MODULES=back_sock.so start_slapd_named src "access to attrs=userPassword by self write by anonymous auth by * none" \
	"access to attrs=entry by self write by * read" "access to * by * read" "${sock[@]}"
start_slapd_named dst
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
for a in src dst; do
	uri=$SRC_URI
	[ "$a" = dst ] && uri=$DST_URI
	cat >"$T/agents/$a.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $uri
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync:
  enabled: $([ "$a" = dst ] && echo true || echo false)
  match: [anchor, dn, account]
  account_attribute: uid
  retry_interval: 200ms
  timeout: 5s
YAML
done
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: src-in
    direction: inbound
    agent: src
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: uid }
  - name: dst-in
    direction: inbound
    agent: dst
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
YAML
# The notifier's socket must exist before slapd needs it: the first write
# of a password would otherwise fail with error 80 (LAB.md, trap 1).
# slapd.groups: where the notifier reads an account's groups for the
# targets' include/exclude groups (src itself, evaluated at the source).
PCNS_NOTIFY_EXTRA="slapd: { socket: $T/pw.sock, ignore_binddn: [\"cn=loom-agent,$SUFFIX\"], groups: { uri: \"$SRC_URI\", bind_dn: \"$ROOTDN\", password_file: $T/admin.pw, base: \"$SUFFIX\" } }"
pcns_setup
ctl keys gen ma.dst >/dev/null || fail "keys gen ma.dst"
start_notify
seed_named "$SRC_URI" 4
seed_named "$DST_URI" 4
start_broker
start tap "$TAP" -c "$CFG"
start tapjson "$TAP" -c "$CFG" --json
wait_log broker "tap listener attached subscriptions=2"
start_engine
start_ldap_agent src
start_ldap_agent dst
for a in src dst; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
expect_counter joined 4
start_pcns
wait_log engine "password sync ready target_agents=1"

binds() { ldapwhoami -x -H "$DST_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }
srcbinds() { ldapwhoami -x -H "$SRC_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }
binds user1 pw-user1 || fail "user1 cannot bind to dst with its seeded password"

PW1='Pcns-first!7x'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW1" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd on src"
srcbinds user1 "$PW1" || fail "the change did not land in src"
wait_for "user1's new password in dst" 20 binds user1 "$PW1"
binds user1 pw-user1 && fail "dst still takes user1's old password"
pass "Password Modify (ldappasswd) in src: user1 binds to dst with the new password"

PW2='Pcns-second#8y'
ldapmodify -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" >/dev/null <<LDIF || fail "ldapmodify on src"
dn: uid=user2,ou=people,$SUFFIX
changetype: modify
replace: userPassword
userPassword: $PW2
LDIF
wait_for "user2's new password in dst" 20 binds user2 "$PW2"
# the user's own change (self, old password given)
PW3='Pcns-self$9z'
ldappasswd -x -H "$SRC_URI" -D "uid=user3,ou=people,$SUFFIX" -w pw-user3 -a pw-user3 -s "$PW3" >/dev/null ||
	fail "self ldappasswd on src"
wait_for "user3's own new password in dst" 20 binds user3 "$PW3"
pass "a userPassword replace and a user's own change arrive too"

# A change slapd refuses is never sent: it reaches the overlay before the
# database refuses it (no such entry), and its RESULT says so.
ldapmodify -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" >/dev/null 2>&1 <<LDIF && fail "slapd modified an entry that does not exist"
dn: uid=ghost,ou=people,$SUFFIX
changetype: modify
replace: userPassword
userPassword: Never-sent-1
LDIF
ldappasswd -x -H "$SRC_URI" -D "uid=user3,ou=people,$SUFFIX" -w "$PW3" -a not-the-old-one -s 'Never-sent-2' >/dev/null 2>&1 &&
	fail "slapd took a wrong old password"
wait_log notify "password change not made by slapd dn=.*uid=ghost.* code=32"
binds user3 "$PW3" || fail "a refused change reached dst"
pass "a change slapd refuses (no such entry) is dropped at the notifier; a wrong old password never reaches it"

ctl report password-sync -n 10 >"$T/report1.out" || fail "report password-sync"
grep -qE "done +src account=user1" "$T/report1.out" && grep -qE -- "-> dst +ok +attempts=1 dn=uid=user1,ou=people" "$T/report1.out" ||
	{ cat "$T/report1.out" >&2; fail "the report does not show user1's change done on dst"; }
pass "loomctl report password-sync shows each change and its target"

# The listener is killed (-9): the notifier keeps the change in its spool,
# and delivers it once the listener is back.
stop pcns KILL
PW4='Pcns-spooled%1a'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW4" "uid=user4,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd while the listener is down"
wait_log notify "listener unavailable target=primary"
spooled() { [ "$(ls "$T/state/pcns-spool/" | grep -cE '\.chgs?$')" = "$1" ]; }
wait_for "one change in the notifier's spool" 10 spooled 1
target_down() { ctl pcns target list | grep -qE "notifier says: state=down"; }
wait_for "loomctl pcns target list to show the target down" 10 target_down
binds user4 "$PW4" && fail "the change arrived without a listener"
start_pcns
wait_for "user4's password in dst after the listener's restart" 30 binds user4 "$PW4"
wait_for "an empty spool" 10 spooled 0
pass "listener killed: the notifier spooled the change and delivered it after the restart"

# The engine is killed (-9): the listener queues, and delivers when it is back.
stop engine KILL
PW5='Pcns-queued&2b'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW5" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd while the engine is down"
queued() { ctl pcns status 2>/dev/null | grep -qE "^queue +1 changes"; }
wait_for "the change queued in the listener" 10 queued
wait_log pcns "password change not taken by the engine yet"
spooled 0 || fail "the notifier kept a change the listener had acknowledged"
binds user1 "$PW5" && fail "the change arrived without an engine"
start_engine
wait_for "user1's password in dst after the engine's restart" 30 binds user1 "$PW5"
pass "engine killed: the listener queued the change and delivered it after the restart"

# The target slapd restarts: the agent's kept password connection is
# broken; the next change goes on a new one.
stop dst
start dst slapd -f "$T/dst/slapd.conf" -h "$DST_URI/" -d 0
wait_for "slapd dst again" 20 ldapsearch -x -H "$DST_URI" -b "" -s base namingContexts
PW5b='Pcns-restarted+2c'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW5b" "uid=user2,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd after the target's restart"
wait_for "user2's password in the restarted dst" 30 binds user2 "$PW5b"
pass "the target restarted: the agent's kept connection is replaced, the change arrives"

# The same change notified twice (a hook that offers it again): applied once.
ID=0123456789abcdef0123456789abcdef
PW6='Pcns-twice*3c'
for i in 1 2; do
	printf '%s\n' "$PW6" | "$NOTIFY" --submit -c "$CFG" --account user2 --id $ID >/dev/null || fail "--submit $i"
	wait_for "submit $i delivered" 20 spooled 0
done
wait_for "user2's password in dst" 20 binds user2 "$PW6"
wait_log pcns "password change duplicate change=$ID"
n=$(ctl report password-sync --account user2 -n 100 | grep -c "^.*  0123456789ab ")
[ "$n" = 1 ] || fail "the change was recorded $n times by the engine"
pass "a change notified twice is taken once (the listener drops the copy)"

# An account Loom does not know: recorded as unmatched, not retried.
printf 'Whatever-4d\n' | "$NOTIFY" --submit -c "$CFG" --account nobody --dn "uid=nobody,ou=people,$SUFFIX" >/dev/null ||
	fail "--submit nobody"
wait_log pcns "password change unmatched .*account=nobody"
ctl pcns status --state unmatched >"$T/status.out"
grep -qE "unmatched +dc1/src account=nobody attempts=1 engine=unmatched" "$T/status.out" ||
	{ cat "$T/status.out" >&2; fail "pcns status does not show the unmatched change"; }
ctl report password-sync --failed >"$T/report2.out"
grep -qE "unmatched +src account=nobody" "$T/report2.out" || { cat "$T/report2.out" >&2; fail "no unmatched record"; }
grep -q "account=nobody attempt=" "$T/pcns.log" && fail "an unmatched change was retried"
pass "an unknown account is recorded as unmatched, not retried"

# A notifier whose key the listener does not list: refused and logged; its
# change stays in its own spool.
ctl keys gen rogue >/dev/null || fail "keys gen rogue"
cat >"$T/rogue.yaml" <<YAML
name: rogue
spool: $T/rogue-spool
targets: $T/pcns-targets.yaml
retry_initial: 200ms
ack_timeout: 1s
YAML
start_notify rogue "$T/rogue.yaml"
printf 'Rogue-pass-5e\n' | "$NOTIFY" --submit -c "$CFG" --notify-config "$T/rogue.yaml" --account user1 >/dev/null ||
	fail "--submit through rogue"
wait_log pcns "refused notifier key=.* reason=\"key not listed under notifiers\""
wait_log rogue "listener refused this notifier's key"
[ "$(ls "$T/rogue-spool" | grep -cE '\.chgs?$')" = 1 ] || fail "the rogue notifier lost its change"
binds user1 'Rogue-pass-5e' && fail "a change from an unlisted key was applied"
stop rogue
pass "a notifier whose key is not listed is refused and logged"

# A standby listener (another loom-pcns with its own store and endpoint,
# the same key pair, as a standby has) as the second target: while the
# primary is killed, the notifier fails over to it.
sed -e "s|^state_dir: .*|state_dir: $T/state2|" "$CFG" >"$T/loom2.yaml"
printf '  router: ipc://%s/state/run/bus-router\n  publish: ipc://%s/state/run/bus-publish\n  subscribe: ipc://%s/state/run/bus-subscribe\n' \
	"$T" "$T" "$T" >>"$T/loom2.yaml"
# free_port can race with another test taking the port: try another then
for _ in 1 2 3; do
	PCNS2_PORT=$(free_port)
	sed -e "s|tcp://127.0.0.1:$PCNS_PORT|tcp://127.0.0.1:$PCNS2_PORT|" "$T/pcns.yaml" >"$T/pcns2.yaml"
	start pcns2 "$PCNS" -c "$T/loom2.yaml" --pcns-config "$T/pcns2.yaml"
	wait_for "pcns2 to listen or fail" 10 grep -qE "listening endpoint=|cannot start" "$T/pcns2.log"
	grep -q "Address already in use" "$T/pcns2.log" || break
	stop pcns2 || true
done
wait_log pcns2 "listening endpoint="
ctl pcns target add standby --endpoint "tcp://127.0.0.1:$PCNS2_PORT" --key "$T/keys/pcns.pub" --disabled >/dev/null ||
	fail "target add standby"
ctl pcns target enable standby >/dev/null || fail "target enable standby"
ctl pcns target list >"$T/targets2.out"
grep -qE "^1 primary +enabled" "$T/targets2.out" && grep -qE "^2 standby +enabled +tcp://127.0.0.1:$PCNS2_PORT" "$T/targets2.out" ||
	{ cat "$T/targets2.out" >&2; fail "target list after add/enable"; }
wait_log notify "targets reloaded .*targets=primary,standby$"
stop pcns KILL
PW7='Pcns-standby^6f'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW7" "uid=user3,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd with the primary down"
wait_for "user3's password through the standby" 30 binds user3 "$PW7"
wait_log pcns2 "password change delivered .*account=user3"
wait_log notify "password change delivered account=user3 target=standby"
pass "primary listener killed: the notifier fails over to the standby target, which delivers"
start_pcns
ctl pcns target disable standby >/dev/null || fail "target disable"
ctl pcns target remove standby >/dev/null || fail "target remove"
ctl pcns target list | grep -q standby && fail "the standby is still listed"
rc=0
ctl pcns target remove standby 2>"$T/rm.err" || rc=$?
[ "$rc" = 1 ] && grep -qF "no target 'standby'" "$T/rm.err" || fail "removing a missing target: rc=$rc $(cat "$T/rm.err")"
stop pcns2
pass "loomctl pcns target add (disabled), enable, list, disable, remove; the notifier reloads the file itself"

# Include and exclude groups (pcnscfg's) apply to slapd changes: once slapd
# has made a change, the notifier searches src for the account's groups
# (groupOfNames member, groupOfUniqueNames uniqueMember) and seals it only
# for the targets those groups let through; an excluded one is logged.
ldapadd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" >/dev/null <<LDIF || fail "ldapadd groups in src"
dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: cn=no-pw-sync,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: no-pw-sync
member: uid=user4,ou=people,$SUFFIX

dn: cn=pw-sync,ou=groups,$SUFFIX
objectClass: groupOfUniqueNames
cn: pw-sync
uniqueMember: uid=user1,ou=people,$SUFFIX
uniqueMember: uid=user4,ou=people,$SUFFIX
LDIF
reloads() { [ "$(count_lines "$T/notify.log" "targets reloaded")" -gt "$1" ]; }
n0=$(count_lines "$T/notify.log" "targets reloaded")
ctl pcns target add primary --replace --endpoint "tcp://127.0.0.1:$PCNS_PORT" --key "$T/keys/pcns.pub" \
	--exclude-group "cn=no-pw-sync,ou=groups,$SUFFIX" >/dev/null || fail "target add primary --exclude-group"
wait_for "the notifier to reload its targets" 10 reloads "$n0"
PW8='Pcns-excluded~7g'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW8" "uid=user4,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user4 (excluded)"
wait_log notify "password change excluded dn=.?uid=user4,ou=people,.* target=primary groups=2 reason=\"in its exclude group 'cn=no-pw-sync,ou=groups,"
wait_log notify "password change of dn=.?uid=user4,ou=people,.* goes to no target"
PW9='Pcns-not-excluded=8h'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW9" "uid=user2,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user2 (in no group)"
wait_for "user2's password in dst (no exclude group)" 30 binds user2 "$PW9"
binds user4 "$PW8" && fail "user4's change arrived although its group is excluded"
binds user4 "$PW4" || fail "user4's earlier password is gone from dst"
pass "exclude group: a member's slapd change is not sealed for the target (logged excluded); a non-member's arrives"

n0=$(count_lines "$T/notify.log" "targets reloaded")
ctl pcns target add primary --replace --endpoint "tcp://127.0.0.1:$PCNS_PORT" --key "$T/keys/pcns.pub" \
	--include-group pw-sync --exclude-group "cn=no-pw-sync,ou=groups,$SUFFIX" >/dev/null ||
	fail "target add primary --include-group"
wait_for "the notifier to reload its targets" 10 reloads "$n0"
PW10='Pcns-included:9i'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW10" "uid=user2,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user2 (not included)"
wait_log notify "password change excluded dn=.?uid=user2,ou=people,.* target=primary groups=0 reason=\"in none of its include_groups\""
PW11='Pcns-member;0j'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW11" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user1 (included)"
wait_for "user1's password in dst (a member of the include group)" 30 binds user1 "$PW11"
PW12='Pcns-both-groups_1k'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW12" "uid=user4,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user4 (included and excluded)"
wait_log notify "password change excluded dn=.?uid=user4,ou=people,.* reason=\"in its exclude group"
binds user2 "$PW10" && fail "user2's change arrived although it is in no include group"
binds user4 "$PW12" && fail "user4's change arrived although it is in an exclude group too"
pass "include group (by name): a member's change arrives; a non-member's is excluded; exclude wins over include"
# Groups that cannot be read (here a base that does not exist): the change
# goes nowhere (fail closed) and is dropped with a warning after
# slapd.groups.timeout.
stop notify
cp "$NOTIFY_CFG" "$T/notify.good"
sed -i "s|base: \"$SUFFIX\"|base: \"ou=nowhere,$SUFFIX\", timeout: 1s|" "$NOTIFY_CFG"
grep -q "ou=nowhere" "$NOTIFY_CFG" || fail "the notifier's file was not changed: $(cat "$NOTIFY_CFG")"
start_notify
PW13='Pcns-no-groups/2m'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW13" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd user1 (groups unreadable)"
wait_log notify "password change of dn=.?uid=user1,ou=people,.* dropped: its groups could not be read in 1000 ms \(group search under 'ou=nowhere,.*No such object"
binds user1 "$PW13" && fail "a change whose groups could not be read reached dst"
binds user1 "$PW11" || fail "user1's password in dst changed"
stop notify
cp "$T/notify.good" "$NOTIFY_CFG"
start_notify
pass "groups that cannot be read: the change is sent to no target and dropped with a warning after slapd.groups.timeout"
n0=$(count_lines "$T/notify.log" "targets reloaded")
ctl pcns target add primary --replace --endpoint "tcp://127.0.0.1:$PCNS_PORT" --key "$T/keys/pcns.pub" >/dev/null ||
	fail "target add primary (no groups)"
wait_for "the notifier to reload its targets" 10 reloads "$n0"

ctl pcns status >"$T/status2.out" || fail "pcns status"
grep -qE "^since start +received [0-9]+, duplicates [0-9]+," "$T/status2.out" || { cat "$T/status2.out" >&2; fail "status counters"; }

# No password in clear anywhere: the bus (the tap saw the sealed messages),
# the stores, the spools, the logs.
wait_log tap "loom.PasswordSyncRequest .*password=<sealed>"
wait_log tap "loom.SetPasswordRequest .*password=<sealed>"
wait_log tapjson '"type":"loom.PasswordSyncRequest".*"password":"<sealed>"'
n=$(no_cleartext "$PW1" "$PW2" "$PW3" "$PW4" "$PW5" "$PW5b" "$PW6" "$PW7" "$PW8" "$PW9" "$PW10" "$PW11" "$PW12" "$PW13" \
	'Whatever-4d' 'Rogue-pass-5e')
pass "no password in clear (or base64, hex, UTF-16) in $n files: stores, spools, logs, tap captures"

# The examples in config/examples are valid files.
mkdir -p "$T/ex/keys"
printf 'state_dir: %s\nbus:\n  keys_dir: keys\n' "$T/ex/state" >"$T/ex/loom.yaml"
cp "$LOOM_SOURCE_DIR/config/examples/pcns.yaml" "$LOOM_SOURCE_DIR/config/examples/pcns-notify.yaml" "$T/ex/"
for k in dc1 ldap1; do "$CTL" -c "$T/ex/loom.yaml" keys gen "$k" >/dev/null || fail "keys gen $k (examples)"; done
"$PCNS" -c "$T/ex/loom.yaml" --check-config >"$T/ex.out" 2>&1 || fail "config/examples/pcns.yaml is refused: $(cat "$T/ex.out")"
"$NOTIFY" -c "$T/ex/loom.yaml" --check-config >"$T/ex.out" 2>&1 ||
	fail "config/examples/pcns-notify.yaml is refused: $(cat "$T/ex.out")"
sed 's/max_retries: 0 /max_retries: many /' "$T/ex/pcns.yaml" >"$T/ex/bad.yaml"
"$PCNS" -c "$T/ex/loom.yaml" --pcns-config "$T/ex/bad.yaml" --check-config >"$T/ex.out" 2>&1 && fail "a bad pcns.yaml passed"
grep -qE "bad.yaml:[0-9]+:[0-9]+: key 'max_retries': bad value 'many'" "$T/ex.out" || fail "unexpected error: $(cat "$T/ex.out")"
pass "config/examples/pcns.yaml and pcns-notify.yaml are valid; a bad value names file, line, column and key"
