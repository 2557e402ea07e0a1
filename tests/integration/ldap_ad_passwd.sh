#!/usr/bin/env bash
# SetPassword against a real Active Directory (a Samba AD DC provisioned here
# in its own network namespace, with a TLS certificate made by the test):
# over ldaps the agent replaces unicodePwd and the user binds with the new
# password (by DN and by objectGUID); a password the domain's complexity
# policy rejects comes back with the DC's own message, not retryable; an
# agent on plain ldap:// is refused before anything is sent. The bus is
# captured by loom-tap; no log holds a password. Skipped (77) without Samba.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/ldap/samba.sh"

samba_available || { echo "skip $TEST_NAME: samba is not installed (scripts/install-deps.sh)"; samba_skip; }
write_config
mkdir -p "$T/agents"
slapd_certs # a CA and a certificate for 127.0.0.1, here for the DC
chmod 600 "$T/slapd/tls/server.key"
SAMBA_GLOBAL="tls enabled = yes|tls keyfile = $T/slapd/tls/server.key|tls certfile = $T/slapd/tls/server.pem|tls cafile = $SLAPD_CA"
start_samba
printf '%s\n' "$AD_PW" >"$T/ad.pw"
for name in ad adplain; do
	uri="ldaps://127.0.0.1:636"
	[ "$name" = adplain ] && uri=$AD_URI
	cat >"$T/agents/$name.yaml" <<YAML
type: ldap
ldap:
  uri: $uri
  directory: ad
  ca_file: $SLAPD_CA
  bind_dn: "$AD_ADMIN_DN"
  password_file: ../ad.pw
  bases: [ { dn: "CN=Users,$AD_BASE", scope: one } ]
  object_classes: [ { object_class: user, type: person } ]
  attributes: [cn, sAMAccountName]
YAML
	ctl keys gen "ma.$name" >/dev/null || fail "keys gen ma.$name"
done
ad_admin ldapadd >"$T/add.out" 2>&1 <<LDIF || { cat "$T/add.out" >&2; fail "cannot add the test users"; }
dn: CN=carol,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: carol

dn: CN=dan,CN=Users,$AD_BASE
objectClass: user
sAMAccountName: dan
LDIF
start_broker
start tap "$TAP" -c "$CFG"
wait_log broker "tap listener attached subscriptions=1"
start_ad_agent ad
start_ad_agent adplain

CAROL="CN=carol,CN=Users,$AD_BASE"
DAN="CN=dan,CN=Users,$AD_BASE"
PW1='Loom-Ad-Pass-42!x'
PW2='Zweites-Kennwört-€𝄞-7?' # Latin-1, BMP and a surrogate pair in UTF-16
# A user without a password cannot be enabled; with one, it can.
printf '%s\n' "$PW1" | ctl -t 10s password set --agent ad --dn "$CAROL" >"$T/set.out" ||
	fail "password set over ldaps failed: $(cat "$T/set.out")"
grep -qxF "password set on $CAROL (agent ad)" "$T/set.out" || fail "unexpected output: $(cat "$T/set.out")"
enable() {
	ad_admin ldapmodify >/dev/null <<LDIF
dn: $1
changetype: modify
replace: userAccountControl
userAccountControl: 512
LDIF
}
enable "$CAROL" || fail "cannot enable carol after her password was set"
# A simple bind and a search as the user (Samba answers no WhoAmI operation).
ad_binds() { in_ad ldapsearch -x -H "$AD_URI" -D "$1" -w "$2" -b "" -s base defaultNamingContext; }
ad_binds "$CAROL" "$PW1" >"$T/whoami.out" 2>&1 ||
	fail "carol cannot bind with the password set through the agent: $(cat "$T/whoami.out")"
ad_binds "$CAROL" "$PW1-wrong" >/dev/null 2>&1 && fail "the DC takes any password for carol"
pass "unicodePwd over ldaps: carol binds with the new password"

guid_of() { # DN -> objectGUID as AD writes it
	local b64
	b64=$(ad_admin ldapsearch -LLL -b "$1" -s base objectGUID | sed -n 's/^objectGUID:: //p')
	python3 -c 'import base64, sys, uuid; print(uuid.UUID(bytes_le=base64.b64decode(sys.argv[1])))' "$b64"
}
printf '%s\n' "$PW2" | ctl -t 10s password set --agent ad --anchor "$(guid_of "$DAN")" >"$T/set2.out" ||
	fail "password set by objectGUID failed: $(cat "$T/set2.out")"
grep -qxF "password set on $DAN (agent ad)" "$T/set2.out" || fail "unexpected output: $(cat "$T/set2.out")"
enable "$DAN" || fail "cannot enable dan"
ad_binds "$DAN" "$PW2" >/dev/null 2>&1 || fail "dan cannot bind with the password set by objectGUID"
pass "password set by objectGUID, non-ASCII (UTF-16LE with a surrogate pair); dan binds with it"

# The domain's policy: too short and not complex. The DC's message comes
# back, and a retry would not help.
rc=0
printf 'abc\n' | ctl -t 10s -o json password set --agent ad --dn "$CAROL" >"$T/weak.json" 2>"$T/weak.err" || rc=$?
[ "$rc" = 3 ] || fail "a password the policy rejects exited $rc, want 3: $(cat "$T/weak.json" "$T/weak.err")"
grep -qF '"code":"constraint-violation"' "$T/weak.json" && grep -qF '"ldap_code":19' "$T/weak.json" ||
	fail "not a constraint violation: $(cat "$T/weak.json")"
grep -qiE '"message":"setting unicodePwd of .*refused by .*(check_password_restrictions|password)' "$T/weak.json" ||
	fail "the DC's message is not in the reply: $(cat "$T/weak.json")"
grep -qF '"retryable"' "$T/weak.json" && fail "a policy rejection is retryable: $(cat "$T/weak.json")"
ad_binds "$CAROL" "$PW1" >/dev/null 2>&1 || fail "the rejected password changed carol's"
pass "a password the DC's policy rejects: constraint-violation (19) with the DC's message, not retryable"

rc=0
printf '%s\n' "$PW1" | ctl -t 10s password set --agent adplain --dn "$CAROL" 2>"$T/plain.err" || rc=$?
[ "$rc" = 3 ] && grep -qF "insecure-connection: Active Directory takes a password (unicodePwd) only over an encrypted connection" "$T/plain.err" ||
	fail "plain ldap:// was not refused: rc=$rc $(cat "$T/plain.err")"
grep -qF "(retrying will not help)" "$T/plain.err" || fail "insecure-connection is retryable: $(cat "$T/plain.err")"
pass "an agent on plain ldap:// is refused before sending (insecure-connection)"

wait_for "four SetPasswordReplies in the tap" 10 bash -c "[ \$(grep -c 'loom.SetPasswordReply' '$T/tap.log') -ge 4 ]"
grep 'loom.SetPasswordRequest' "$T/tap.log" | grep -vq 'password=<sealed>' && fail "a request shows its password field"
hits=0
for pw in "$PW1" "$PW2"; do
	for form in "$pw" "$(printf '%s' "$pw" | base64 -w0)" "$(printf '"%s"' "$pw" | iconv -t UTF-16LE | base64 -w0)" \
		"$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n')"; do
		n=$(cat "$T"/*.log "$T"/dc/log/*.log 2>/dev/null | grep -cF -- "$form" || true)
		hits=$((hits + n))
	done
done
[ "$hits" = 0 ] || fail "a password appears $hits times in the logs"
pass "the tap saw the requests sealed; no log (Loom's or the DC's) holds a password: 0 hits"
