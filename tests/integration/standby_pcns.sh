#!/usr/bin/env bash
# Warm standby and password change notification (docs/recovery.md, "Warm
# standby and activation"; the FIM seed: "if there are failed pending
# passwords in the PCNS queue, then they will be retried to the standby
# server after the standby server is activated").
#
# Host a runs engine, both LDAP agents and loom-pcns as primary; host b the
# same with --standby on the same state directory, its listener on another
# port. The notifier of slapd "src" lists both listeners (primary, then
# standby). Host a goes away: its engine and agents are killed (-9) and its
# listener is frozen (SIGSTOP: a primary cut off, not dead). A password
# changed now reaches no primary: the standby listener does not even listen,
# so the notifier keeps the change spooled. `loomctl activate` on host b
# fences a: b's listener waits for a's store lock; a's listener, thawed, sees
# the new epoch, exits (status 3, one line) without writing or
# acknowledging; b's listener takes over, and the spooled change arrives in
# slapd "dst" through b's engine and agent (checked with ldapwhoami).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/pcns/lib_pcns.sh"

MALDAP=$LOOM_BUILD_DIR/agents/loom-ma-ldap
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
PCNS_NOTIFY_EXTRA="slapd: { socket: $T/pw.sock, ignore_binddn: [\"cn=loom-agent,$SUFFIX\"] }"
pcns_setup
ctl keys gen ma.dst >/dev/null || fail "keys gen ma.dst"
ctl keys create >/dev/null || fail "keys create"
printf 'pcns standby drill\n' >"$T/pass"
ctl keys export --to "$T/keyset.exp" --passphrase-file "$T/pass" >/dev/null || fail "keys export"
# host b's listener: the same key pair, another port
PCNS2_PORT=$(free_port)
sed -e "s|tcp://127.0.0.1:$PCNS_PORT|tcp://127.0.0.1:$PCNS2_PORT|" "$T/pcns.yaml" >"$T/pcns2.yaml"
start_notify
seed_named "$SRC_URI" 3
seed_named "$DST_URI" 3
start_broker

# host a: primary
start engine_a "$ENGINE" -c "$CFG" --host a
wait_log engine_a "registered with broker"
for a in src dst; do
	start "${a}_a" "$MALDAP" -c "$CFG" --agent "$a" --host a
	wait_log "${a}_a" "registered with broker"
done
for a in src dst; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
expect_counter joined 3
start pcns_a "$PCNS" -c "$CFG" --host a
wait_log pcns_a "listening endpoint="
wait_log engine_a "password sync ready target_agents=1"
# host b: standby
start engine_b "$ENGINE" -c "$CFG" --host b --standby
start src_b "$MALDAP" -c "$CFG" --agent src --host b --standby
start dst_b "$MALDAP" -c "$CFG" --agent dst --host b --standby
start pcns_b "$PCNS" -c "$CFG" --pcns-config "$T/pcns2.yaml" --host b --standby
for p in engine_b src_b dst_b pcns_b; do wait_log "$p" "registered with broker"; done
wait_log pcns_b "standby: following store=.*/state/pcns"

binds() { ldapwhoami -x -H "$DST_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }
PW1='Standby-first!1a'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW1" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd on src"
wait_for "user1's new password in dst" 20 binds user1 "$PW1"
pass "host a primary: a password change in src arrives in dst"

# the notifier lists both listeners, as pcnscfg would
ctl pcns target add standby --endpoint "tcp://127.0.0.1:$PCNS2_PORT" --key "$T/keys/pcns.pub" >/dev/null ||
	fail "target add standby"
wait_log notify "targets reloaded .*targets=primary,standby$"
listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
listens "$PCNS2_PORT" && fail "the standby listener listens while standby"

# host a goes away
stop engine_a KILL
stop src_a KILL
stop dst_a KILL
kill -STOP "${PIDS[pcns_a]}"
PW2='Standby-spooled#2b'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW2" "uid=user2,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd with no primary"
spooled() { [ "$(ls "$T/state/pcns-spool/" | grep -cE '\.chgs?$')" = "$1" ]; }
wait_for "the change in the notifier's spool" 10 spooled 1
wait_log notify "listener unavailable target=primary" 20
wait_log notify "listener unavailable target=standby" 20
spooled 1 || fail "the change left the spool with no primary"
binds user2 "$PW2" && fail "the change arrived with no primary"
pass "no primary: the change stays in the notifier's spool (primary frozen, standby not listening)"

# activation on host b; a's listener is frozen, so b's waits for its lock
t0=$(date +%s%N)
"$CTL" -c "$CFG" activate --keyset "$T/keyset.exp" --passphrase-file "$T/pass" --host b --wait 60s \
	>"$T/activate.out" 2>"$T/activate.err" &
act=$!
wait_log pcns_b "activation: waiting for the old primary to let go of lock=.*/state/pcns/LOCK" 30
grep -q "listening endpoint=" "$T/pcns_b.log" && fail "b's listener opened the store while a held it"
kill -CONT "${PIDS[pcns_a]}"
rc=0
wait "${PIDS[pcns_a]}" || rc=$?
unset "PIDS[pcns_a]"
[ "$rc" = 3 ] || fail "a's listener exited $rc after the activation, want 3 (fenced)"
grep -qE "error loom-pcns fenced: host 'b' took the lease \(epoch 2 since [0-9T:Z-]+\); this host 'a' wrote under epoch 1 and stops writing" \
	"$T/pcns_a.log" || fail "no fencing line in a's listener log"
grep -qE "password change (queued|received).*account=user2" "$T/pcns_a.log" && fail "a's listener took the change after it was fenced"
rc=0
wait "$act" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 0 ] || fail "loomctl activate exited $rc: $(cat "$T/activate.out" "$T/activate.err")"
grep -qE "^activated host b \(epoch 2\): 4 process\(es\) primary" "$T/activate.out" ||
	fail "activation output: $(cat "$T/activate.out")"
pass "activate b: a's thawed listener is fenced (exit 3, one line, took nothing); b primary after ${ms} ms"

wait_log pcns_b "listening endpoint="
wait_for "user2's spooled password in dst through host b" 40 binds user2 "$PW2"
wait_log notify "password change delivered account=user2 target=standby"
wait_for "an empty spool" 10 spooled 0
ctl status >"$T/status.out" || fail "loomctl status"
grep -qE "^pcns +pcns@[^ ]+ +loom-pcns +[0-9]+ primary +host b; lease epoch 2" "$T/status.out" ||
	{ cat "$T/status.out" >&2; fail "status does not show b's listener primary"; }
pass "the password changed while no primary was active arrives after activation (notifier spool -> b's listener -> b's engine -> dst)"

PW3='Standby-after$3c'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW3" "uid=user3,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd after activation"
wait_for "user3's new password in dst" 20 binds user3 "$PW3"
n=$(no_cleartext "$PW1" "$PW2" "$PW3")
pass "a change after activation goes through host b; no password in clear in $n files"

# Failback: host a comes back as the standby and is activated while b's
# engine and listener still run (idle): each sees the new epoch at its next
# lease check, exits with status 3, lets go of its store, and a's processes
# take over. (Agents hold no lease: b's are stopped first, as loomd would.)
start engine_a2 "$ENGINE" -c "$CFG" --host a --standby
start src_a2 "$MALDAP" -c "$CFG" --agent src --host a --standby
start dst_a2 "$MALDAP" -c "$CFG" --agent dst --host a --standby
start pcns_a2 "$PCNS" -c "$CFG" --host a --standby
for p in engine_a2 src_a2 dst_a2 pcns_a2; do wait_log "$p" "registered with broker"; done
stop src_b
stop dst_b
ctl activate --keyset "$T/keyset.exp" --passphrase-file "$T/pass" --host a --wait 60s >"$T/activate2.out" ||
	fail "failback activation: $(cat "$T/activate2.out")"
grep -qE "^activated host a \(epoch 3\): 4 process\(es\) primary" "$T/activate2.out" ||
	fail "failback activation output: $(cat "$T/activate2.out")"
for p in engine_b pcns_b; do
	rc=0
	wait "${PIDS[$p]}" || rc=$?
	unset "PIDS[$p]"
	[ "$rc" = 3 ] || fail "$p exited $rc after the failback, want 3 (fenced)"
	grep -qE "fenced: host 'a' took the lease \(epoch 3 since [0-9T:Z-]+\); this host 'b' wrote under epoch 2 and stops writing" \
		"$T/$p.log" || fail "no fencing line in $p.log"
done
PW4='Standby-failback%4d'
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$PW4" "uid=user1,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd after the failback"
wait_for "user1's new password in dst through host a again" 30 binds user1 "$PW4"
pass "failback to host a (epoch 3): b's running engine and listener fenced by their lease check (exit 3), changes flow through a"
