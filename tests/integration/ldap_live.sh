#!/usr/bin/env bash
# Live mode (docs/ldap.md "Live mode"): loom-ma-ldap streams slapd's changes
# by refreshAndPersist; the engine stages them as they arrive, then runs a
# delta sync of the source and an export to the target (a file agent) by
# itself. Checked with no run started by hand after the initial load: a
# modify, an add and a delete made with ldap-utils reach the target file;
# changes made while the agent is killed (-9) arrive after its restart (it
# resumes from the cookie the engine stored: nothing lost); a slapd restart
# drops the connection and the stream comes back by itself; loomctl live
# shows the stream; with two bases, an entry moved from one to the other
# is never deleted (in the persist phase, nor when a restarted stream's
# refresh of one base reports it gone).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_slapd
seed_people 4
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add ou=staff"
dn: ou=staff,$SUFFIX
objectClass: organizationalUnit
ou: staff
LDIF
printf '%s\n' "$ROOTPW" >"$T/admin.pw"

cat >"$T/agents/src.yaml" <<YAML
type: ldap
object_type: person
timeout: 2s
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  timeout: 2s
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=staff,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
live:
  enabled: true
  keepalive: 500ms
  window: 20ms
  export: [out]
YAML
cat >"$T/agents/out.yaml" <<YAML
type: file
object_type: person
anchor: dn
file: { format: ldif, path: ../data/out.ldif }
YAML
: >"$T/data/out.ldif"
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
      - { mv: cn, expr: cn }
      - { mv: sn, expr: sn }
      - { mv: mail, expr: mail }
  - name: to-out
    direction: outbound
    agent: out
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=copy"'
    deprovision: delete
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: cn }
      - { cs: sn, expr: sn }
      - { cs: mail, expr: mail }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: src }
YAML

# A live.export naming an agent that does not exist is refused with its name.
sed 's/export: \[out\]/export: [nosuch]/' "$T/agents/src.yaml" >"$T/src.bad"
cp "$T/agents/src.yaml" "$T/src.good"
cp "$T/src.bad" "$T/agents/src.yaml"
"$ENGINE" -c "$CFG" --check-config >"$T/check.out" 2>&1 && fail "the engine accepts live.export: [nosuch]"
grep -qF "key 'live.export': no agent 'nosuch'" "$T/check.out" || fail "bad live.export not named: $(cat "$T/check.out")"
cp "$T/src.good" "$T/agents/src.yaml"
"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
pass "a live.export naming an unknown agent is refused with the file and the name"

start_broker
start_engine
start_agent out
start_ldap_agent src

# Before any import there is no watermark: the stream says so and waits.
wait_log engine "live stream down agent=src .*no watermark stored: run a full import" 10
ctl live >"$T/live.out" || fail "loomctl live failed"
grep -qE "^src +down" "$T/live.out" || fail "loomctl live does not show src down: $(cat "$T/live.out")"
grep -qF "no watermark stored" "$T/live.out" || fail "loomctl live does not say why: $(cat "$T/live.out")"

# The initial load, by hand, as an administrator would.
run_profile src full-import
expect_counter adds 4
run_profile src full-sync
run_profile out export
grep -qx "dn: uid=user2,ou=copy" "$T/data/out.ldif" || fail "the initial export did not land: $(cat "$T/data/out.ldif")"
wait_log engine "live stream up agent=src" 20
pass "the stream opens from the full import's watermark"

ldif_has() { awk -v dn="dn: $1" '$0==dn{on=1;next} /^$/{on=0} on' "$T/data/out.ldif" | grep -qxF -- "$2"; }
ldif_lacks_dn() { ! grep -qxF "dn: $1" "$T/data/out.ldif"; }

ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user2,ou=people,$SUFFIX
changetype: modify
replace: mail
mail: grace@example.com
LDIF
wait_for "user2's new mail in the target" 20 ldif_has uid=user2,ou=copy "mail: grace@example.com"
pass "a modify in slapd reaches the target with no run started by hand"

ldap_admin ldapadd >/dev/null <<LDIF || fail "ldapadd failed"
dn: uid=user5,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: user5
cn: User 5
sn: Number5
mail: user5@example.com
LDIF
wait_for "user5 in the target" 20 ldif_has uid=user5,ou=copy "cn: User 5"
ldap_admin ldapdelete "uid=user3,ou=people,$SUFFIX" || fail "ldapdelete failed"
wait_for "user3 gone from the target" 20 ldif_lacks_dn uid=user3,ou=copy
pass "an add and a delete in the persist phase reach the target"

# A move from one base to the other: the people search reports a delete,
# the staff search an add; the agent checks the other base first, so no
# delete is staged (the target keeps the entry throughout).
mark=$(wc -l <"$T/engine.log")
ldap_admin ldapmodrdn -s "ou=staff,$SUFFIX" "uid=user2,ou=people,$SUFFIX" uid=user2 || fail "ldapmodrdn failed"
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user2,ou=staff,$SUFFIX
changetype: modify
replace: cn
cn: Moved Two
LDIF
wait_for "user2's cn after the move" 20 ldif_has uid=user2,ou=copy "cn: Moved Two"
tail -n +"$((mark + 1))" "$T/engine.log" | grep -E "profile=live-import .*deletes=" &&
	fail "a move between bases was staged as a delete"
tail -n +"$((mark + 1))" "$T/engine.log" | grep -qE "profile=live-import .*(updates|renames)=" ||
	fail "the move was not staged: $(tail -n +"$((mark + 1))" "$T/engine.log")"
pass "an entry moved between bases in the persist phase is not deleted"

ctl runs -n 1000 >"$T/runs.out"
grep -qE "live-import" "$T/runs.out" || fail "no live-import run recorded: $(cat "$T/runs.out")"
ctl live src >"$T/live.out" || fail "loomctl live src failed"
grep -qE "^src +up" "$T/live.out" || fail "loomctl live does not show src up: $(cat "$T/live.out")"
grep -qE "last change +[0-9-]+ [0-9:]+" "$T/live.out" || fail "loomctl live shows no last change: $(cat "$T/live.out")"
grep -qE "cookie age +[0-9.]+s" "$T/live.out" || fail "loomctl live shows no cookie age: $(cat "$T/live.out")"
ctl -o json live >"$T/live.json" || fail "loomctl -o json live failed"
grep -qF '"state":"up"' "$T/live.json" || fail "json status: $(cat "$T/live.json")"
pass "loomctl live shows the stream up, its last change and cookie age; the changes are live-import runs"

# kill -9 the agent; change slapd meanwhile; restart: nothing is lost.
stop ma_src KILL
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user4,ou=people,$SUFFIX
changetype: modify
replace: cn
cn: Dorothy Four
LDIF
ldap_admin ldapdelete "uid=user1,ou=people,$SUFFIX" || fail "ldapdelete failed"
ldap_admin ldapadd >/dev/null <<LDIF || fail "ldapadd failed"
dn: uid=user6,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: user6
cn: User 6
sn: Number6
LDIF
start_ldap_agent src
wait_for "user4's cn after the restart" 30 ldif_has uid=user4,ou=copy "cn: Dorothy Four"
wait_for "user1 gone after the restart" 20 ldif_lacks_dn uid=user1,ou=copy
wait_for "user6 after the restart" 20 ldif_has uid=user6,ou=copy "cn: User 6"
# Resumed from the cookie: the refresh holds the changes made meanwhile
# (user4, user6; user2 too when ou=staff's stored cookie predates its last
# change), not every entry, and the one delete.
log_has "$T/ma_src.log" "live stream persisting session=[0-9]+ refresh_objects=[23] refresh_deletes=1 " ||
	fail "the restarted agent did not resume from the cookie (refresh of 2 changes and 1 delete): $(grep live "$T/ma_src.log")"
# user2 (moved to ou=staff) is reported gone by ou=people's replay when that
# cookie is older than user2's last change: it is still in a base, so kept.
ldif_has uid=user2,ou=copy "cn: Moved Two" || fail "user2 was deleted by the resumed refresh: $(cat "$T/data/out.ldif")"
pass "changes made while the agent was killed arrive after its restart (resumed from the stored cookie)"

# slapd restarted: the connection drops, the stream is reopened with backoff
# from the stored cookie, and a change made after the restart arrives.
restart_slapd
wait_log engine "live stream down agent=src .*lost the connection" 20
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user2,ou=staff,$SUFFIX
changetype: modify
replace: sn
sn: Hopper
LDIF
wait_for "user2's sn after the slapd restart" 30 ldif_has uid=user2,ou=copy "sn: Hopper"
pass "a dropped connection is reopened from the stored cookie"

# kill -9 the engine; change slapd while it is down; restart it: the stream
# is reopened from the stored cookie and the change arrives.
stop engine KILL
ldap_admin ldapmodify >/dev/null <<LDIF || fail "ldapmodify failed"
dn: uid=user4,ou=people,$SUFFIX
changetype: modify
replace: mail
mail: dorothy@example.com
LDIF
start_engine
wait_for "user4's mail after the engine restart" 30 ldif_has uid=user4,ou=copy "mail: dorothy@example.com"
pass "a change made while the engine was killed arrives after its restart"

# No delta sync was run by hand: the engine ran them after live changes.
ctl runs -n 1000 >"$T/runs.out"
grep -qE "src +delta-sync +success" "$T/runs.out" || fail "no live delta-sync run: $(cat "$T/runs.out")"
pass "the delta syncs and exports after live changes are the engine's own runs"
