#!/usr/bin/env bash
# Password synchronization between a real Samba AD DC and OpenLDAP, both
# ways (docs/pcns.md). The DC (in its own network namespace, with a GPG key
# so it keeps the clear text for syncpasswords, and TLS for ldaps) runs
# `samba-tool user syncpasswords --script` with loom-pcns-notify
# --samba-script as the script; slapd hands changes to a second notifier
# by its sock overlay. Checked: a password set on the DC with samba-tool
# user setpassword arrives in OpenLDAP (the user binds with it); a password
# changed in slapd by ldappasswd arrives in AD (the user binds to the DC);
# each change coming back from the other side's hook is recognised as an
# echo and not sent back; a password the DC's policy rejects is recorded
# with the DC's message, not retried. No store, spool or log holds a
# password. Skipped (77) without Samba.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/ldap/samba.sh"
. "$(dirname "$0")/pcns/lib_pcns.sh"

samba_available || { echo "skip $TEST_NAME: samba is not installed (scripts/install-deps.sh)"; samba_skip; }
write_config
mkdir -p "$T/agents" "$T/sync"
slapd_certs
chmod 600 "$T/slapd/tls/server.key"
SAMBA_GLOBAL="tls enabled = yes|tls keyfile = $T/slapd/tls/server.key|tls certfile = $T/slapd/tls/server.pem|tls cafile = $SLAPD_CA"
samba_gpg
start_samba
in_ad samba-tool domain passwordsettings set --min-pwd-age=0 --history-length=0 -s "$T/dc/etc/smb.conf" >/dev/null ||
	fail "passwordsettings"
CAROL_PW0='Carol-Initial-1!'
DAN_PW0='Dan-Initial-2!'
in_ad samba-tool user create carol "$CAROL_PW0" -s "$T/dc/etc/smb.conf" >/dev/null || fail "user create carol"
in_ad samba-tool user create dan "$DAN_PW0" -s "$T/dc/etc/smb.conf" >/dev/null || fail "user create dan"

mapfile -t sock < <(slapd_sock_lines "$T/pw.sock")
SLAPD_MODULES=back_sock.so start_slapd_named dir "access to attrs=userPassword by self write by anonymous auth by * none" \
	"access to attrs=entry by self write by * read" "access to * by * read" "${sock[@]}"
{
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' "$SUFFIX"
	printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SUFFIX"
	for u in carol dan; do
		printf 'dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: ldap-%s-0\n\n' \
			"$u" "$SUFFIX" "$u" "$u" "$u" "$u"
	done
} >"$T/dir.ldif"
ldapadd -x -H "$DIR_URI" -D "$ROOTDN" -w "$ROOTPW" -f "$T/dir.ldif" >/dev/null || fail "cannot seed slapd"

printf '%s\n' "$AD_PW" >"$T/ad.pw"
printf '%s\n' "$ROOTPW" >"$T/dir.pw"
cat >"$T/agents/ad.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: ldaps://127.0.0.1:636
  directory: ad
  ca_file: $SLAPD_CA
  bind_dn: "$AD_ADMIN_DN"
  password_file: ../ad.pw
  bases: [ { dn: "CN=Users,$AD_BASE", scope: one } ]
  object_classes: [ { object_class: user, type: person } ]
  attributes: [cn, sAMAccountName]
password_sync:
  enabled: true
  match: [anchor, dn, account]
  account_attribute: sAMAccountName
  retry_interval: 500ms
  max_attempts: 3
YAML
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $DIR_URI
  bind_dn: "$ROOTDN"
  password_file: ../dir.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync:
  enabled: true
  match: [dn, account]
  account_attribute: uid
  retry_interval: 500ms
YAML
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: ad-in
    direction: inbound
    agent: ad
    cs_type: person
    mv_type: person
    filter: 'IIF(Eq(LowerCase(sAMAccountName), "carol"), false, IIF(Eq(LowerCase(sAMAccountName), "dan"), false, true))'
    join: [ { match: [ { cs: sAMAccountName, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: LowerCase(sAMAccountName) }
  - name: dir-in
    direction: inbound
    agent: dir
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
YAML

# Two notifiers: dc1 on the DC (Samba's script), ldap1 on slapd (sock).
PCNS_SOURCE_AGENT=ad
PCNS_NOTIFY_EXTRA="spool: $T/dc1-spool"
PCNS_MORE_NOTIFIERS="  ldap1: { key: keys/ldap1.pub, agent: dir }"
ctl keys gen ldap1 >/dev/null || fail "keys gen ldap1"
pcns_setup
cat >"$T/ldap1.yaml" <<YAML
name: ldap1
spool: $T/ldap1-spool
targets: $T/pcns-targets.yaml
retry_initial: 200ms
ack_timeout: 2s
slapd: { socket: $T/pw.sock }
YAML
for k in ma.ad ma.dir; do ctl keys gen "$k" >/dev/null || fail "keys gen $k"; done
start_notify notify
start_notify ldap1 "$T/ldap1.yaml"
start_broker
start tap "$TAP" -c "$CFG"
wait_log broker "tap listener attached subscriptions=1"
start_engine
start_ad_agent ad
start_ldap_agent dir
start_pcns
for a in ad dir; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
joined=$(ctl cs search dir --state joined -n 10 | tail -n +2 | grep -c uid=) || true
[ "$joined" = 2 ] || fail "carol and dan are not joined ($joined)"
start_syncpasswords "$NOTIFY_CFG"
pass "Samba DC (GPG key, TLS), slapd with the sock overlay, two notifiers, the listener, the engine; carol and dan joined"

dirbinds() { ldapwhoami -x -H "$DIR_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }
adbinds() { in_ad ldapsearch -x -H "$AD_URI" -D "CN=$1,CN=Users,$AD_BASE" -w "$2" -b "" -s base defaultNamingContext >/dev/null 2>&1; }

# syncpasswords starts with a full DirSync: the accounts' current passwords
# come first (carol's and dan's initial ones).
wait_for "carol's initial AD password in OpenLDAP" 60 dirbinds carol "$CAROL_PW0"
wait_for "dan's initial AD password in OpenLDAP" 60 dirbinds dan "$DAN_PW0"

CAROL_PW1='Carol-From-AD-7?x'
t0=$(date +%s.%N)
in_ad samba-tool user setpassword carol --newpassword="$CAROL_PW1" -s "$T/dc/etc/smb.conf" >/dev/null ||
	fail "samba-tool user setpassword carol"
wait_for "carol's new AD password in OpenLDAP" 60 dirbinds carol "$CAROL_PW1"
t1=$(date +%s.%N)
dirbinds carol "$CAROL_PW0" && fail "OpenLDAP still takes carol's old password"
pass "samba-tool user setpassword on the DC: carol binds to OpenLDAP with it ($(echo "$t1 - $t0" | bc) s)"

# The change Loom made in slapd comes back through slapd's own hook: an echo,
# not sent back to AD.
echo_of() { ctl report password-sync --account "$1" -n 20 | grep -qE "echo +$2 account=$1"; }
wait_for "carol's change coming back from slapd recognised as an echo" 20 echo_of carol dir
pass "the change Loom set in OpenLDAP, reported back by its hook, is an echo: nothing is sent back"

DAN_PW1='Dan-From-LDAP-8!y'
ldappasswd -x -H "$DIR_URI" -D "uid=dan,ou=people,$SUFFIX" -w "$DAN_PW0" -a "$DAN_PW0" -s "$DAN_PW1" >/dev/null ||
	fail "dan's ldappasswd in slapd"
wait_for "dan's new OpenLDAP password in AD" 60 adbinds dan "$DAN_PW1"
adbinds dan "$DAN_PW0" && fail "the DC still takes dan's old password"
pass "ldappasswd in slapd: dan binds to the Samba DC with the new password (unicodePwd over ldaps)"
wait_for "dan's change coming back from the DC recognised as an echo" 60 echo_of dan ad
pass "the change Loom set in AD, reported back by syncpasswords, is an echo"

# The domain's policy refuses a short password: the DC's message is kept,
# and the change is not retried.
ldappasswd -x -H "$DIR_URI" -D "uid=dan,ou=people,$SUFFIX" -w "$DAN_PW1" -a "$DAN_PW1" -s 'abc' >/dev/null ||
	fail "dan's short password in slapd"
refused() { ctl report password-sync --account dan --failed -n 5 | grep -qE -- "-> ad +failed +attempts=1 .*constraint-violation: .*(check_password_restrictions|password)"; }
wait_for "the DC's refusal in the report" 30 refused
ctl report password-sync --account dan -n 5 >"$T/report.out"
grep -qE "partial +dir account=dan" "$T/report.out" || { cat "$T/report.out" >&2; fail "the change is not partial"; }
adbinds dan "$DAN_PW1" || fail "the refused password changed dan's in AD"
grep -q "password not set yet account=dan agent=ad" "$T/engine.log" && fail "a policy refusal was retried"
pass "a password the DC's policy refuses: constraint-violation with the DC's message, not retried"

wait_log tap "loom.SetPasswordRequest .*password=<sealed>"
n=$(no_cleartext "$CAROL_PW0" "$DAN_PW0" "$CAROL_PW1" "$DAN_PW1")
pass "no password in clear (or base64, hex, UTF-16) in $n files: stores, spools, logs (Loom's, the DC's, syncpasswords')"
