#!/usr/bin/env bash
# loom-ma-ldap binds with a password given by `loomctl secret set` (sealed
# with the key set, ldap.password_secret) against a real slapd: the agent's
# --check-config names the command while the secret is not set; the import
# binds with it; after `loomctl keys rotate` it still binds; the password is
# in no file, log or output in clear; a damaged secret fails the run with
# the reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents"
start_slapd
seed_people 20
{
	echo "type: ldap"
	echo "ldap:"
	echo "  uri: \"$SLAPD_URI\""
	echo "  bind_dn: \"$ROOTDN\""
	echo "  password_secret: bind_password"
	echo "  bases: [ { dn: \"ou=people,$SUFFIX\", scope: one } ]"
} >"$T/agents/sealed.yaml"

"$MALDAP" -c "$CFG" --agent sealed --check-config >"$T/check.out" 2>&1 && fail "check-config accepts a secret that is not set"
grep -qF "secret 'bind_password' is not set (loomctl secret set sealed bind_password)" "$T/check.out" ||
	fail "check-config does not name the command: $(cat "$T/check.out")"
ctl keys create >/dev/null || fail "keys create"
printf '%s\n' "$ROOTPW" | ctl secret set sealed bind_password >/dev/null || fail "secret set"
"$MALDAP" -c "$CFG" --agent sealed --check-config >/dev/null || fail "check-config rejects the sealed secret"
pass "check-config names 'loomctl secret set' until the secret is set"

start_broker
start_engine
start_ldap_agent sealed
run_profile sealed full-import
expect_counter adds 20
ctl keys rotate >/dev/null || fail "keys rotate"
ctl secret list | grep -qE '^sealed +bind_password +2$' || fail "the secret was not re-sealed with version 2"
run_profile sealed full-import
if grep -rqF -- "$ROOTPW" "$T/state" "$T"/*.log "$T/run.out" "$T/run.err" "$T/agents"; then
	fail "the password appears in clear"
fi
pass "the agent binds with the sealed secret, before and after a rotation; the password is nowhere in clear"

sed -i 's/ \([0-9a-f]\)/ 0\1/2' "$T/state/secrets/sealed/bind_password"
run_profile sealed full-import 1
grep -qF "cannot open secret '$T/state/secrets/sealed/bind_password'" "$T/run.out" ||
	fail "a damaged secret is not reported: $(cat "$T/run.out")"
pass "a damaged secret fails the run with the reason"
