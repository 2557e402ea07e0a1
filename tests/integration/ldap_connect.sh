#!/usr/bin/env bash
# How loom-ma-ldap connects, against a real slapd: simple bind, SASL
# EXTERNAL over ldapi://, StartTLS and ldaps:// verified against the test's
# own CA; a server certificate from another CA is refused; a wrong password
# fails the run with the server's reason and the password appears in no log
# or output; configuration errors name file:line:column.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/other"
start_slapd
seed_people 20
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
BADPW="Wr0ng-pw-$RANDOM-$RANDOM"
printf '%s\n' "$BADPW" >"$T/bad.pw"
# A CA that did not sign slapd's certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Other CA" \
	-keyout "$T/other/ca.key" -out "$T/other/ca.pem" >/dev/null 2>&1 || fail "openssl: cannot make the other CA"

agent() { # NAME URI [ldap lines...]
	local name=$1 uri=$2
	shift 2
	{
		echo "type: ldap"
		echo "ldap:"
		echo "  uri: \"$uri\""
		for line in "$@"; do echo "  $line"; done
		echo "  bases: [ { dn: \"ou=people,$SUFFIX\", scope: one } ]"
	} >"$T/agents/$name.yaml"
}
SIMPLE=("bind_dn: \"$ROOTDN\"" "password_file: ../admin.pw")
agent simple "$SLAPD_URI" "${SIMPLE[@]}"
agent external "$SLAPD_LDAPI_URI" "bind: sasl-external"
agent starttls "$SLAPD_URI" "${SIMPLE[@]}" "starttls: true" "ca_file: $SLAPD_CA"
agent ldaps "$SLAPD_LDAPS_URI" "${SIMPLE[@]}" "ca_file: $SLAPD_CA"
agent wrongca "$SLAPD_LDAPS_URI" "${SIMPLE[@]}" "ca_file: $T/other/ca.pem"
agent badpw "$SLAPD_URI" "bind_dn: \"$ROOTDN\"" "password_file: ../bad.pw"
agent typo "$SLAPD_URI" "${SIMPLE[@]}" "attributes: [cn, mial]" "object_classes: [ { object_class: inetOrgPersn, type: person } ]"

for a in simple external starttls ldaps wrongca badpw typo; do
	"$MALDAP" -c "$CFG" --agent "$a" --check-config >/dev/null || fail "loom-ma-ldap rejects agents/$a.yaml"
done
start_broker
start_engine
for a in simple external starttls ldaps wrongca badpw typo; do start_ldap_agent "$a"; done

for a in simple external starttls ldaps; do
	run_profile "$a" full-import
	expect_counter adds 20
done
pass "simple bind, SASL EXTERNAL over ldapi, StartTLS and ldaps each import the 20 entries"

run_profile wrongca full-import 1
grep -qF "the server's certificate must verify against ca_file" "$T/run.out" || fail "a server certificate from another CA was not refused: $(cat "$T/run.out")"
pass "a server certificate the configured CA did not sign is refused"

run_profile badpw full-import 1
grep -qF "cannot bind to '$SLAPD_URI' as '$ROOTDN': Invalid credentials (49)" "$T/run.out" ||
	fail "a wrong password is not reported with the bind DN and the server's reason: $(cat "$T/run.out")"
log_has "$T/ma_badpw.log" "Invalid credentials" || fail "the agent did not log the bind failure"
if grep -rqF -- "$BADPW" "$T"/*.log "$T/run.out" "$T/run.err"; then fail "the wrong password appears in a log"; fi
if grep -rqF -- "$ROOTPW" "$T"/*.log "$T/run.out" "$T/run.err"; then fail "the password appears in a log"; fi
pass "a wrong password fails the run naming the bind DN and the reason, never the password"

# Names the server's schema does not know fail the run before any entry is read.
run_profile typo full-import 1
grep -qF "$T/agents/typo.yaml: key 'ldap.attributes': 'mial' is not an attribute type of the server's schema (cn=Subschema)" "$T/run.out" &&
	grep -qF "key 'ldap.object_classes[0].object_class': 'inetOrgPersn' is not an object class of the server's schema" "$T/run.out" ||
	fail "unknown schema names not reported: $(cat "$T/run.out")"
pass "attribute and object class names are checked against the server's schema"

# Configuration errors: file:line:column, the key, the value, what is expected.
mkdir -p "$T/bad/agents"
cp "$CFG" "$T/bad/loom.yaml"
cat >"$T/bad/agents/x.yaml" <<'YAML'
type: ldap
ldap:
  uri: "htp://127.0.0.1:1"
  bind: none
  bases:
    - { dn: "ou=people,dc=example,dc=com", filter: "(objectClass=person" }
    - { dn: "not a dn", scope: one }
YAML
"$MALDAP" -c "$T/bad/loom.yaml" --agent x --check-config >"$T/bad.out" 2>&1 && fail "bad agent config accepted"
X=$T/bad/agents/x.yaml
for want in \
	"$X:3:9: key 'ldap.uri': bad value 'htp://127.0.0.1:1': expected ldap://HOST:PORT, ldaps://HOST:PORT or ldapi://PATH" \
	"$X:6:53: key 'ldap.bases[0].filter': bad value '(objectClass=person': expected an LDAP filter such as (objectClass=person): missing ')' at byte 20" \
	"$X:7:14: key 'ldap.bases[1].dn': bad value 'not a dn': expected a DN such as ou=people,dc=example,dc=com"; do
	grep -qF -- "$want" "$T/bad.out" || fail "missing error: $want; got: $(cat "$T/bad.out")"
done
cat >"$X" <<'YAML'
type: ldap
ldap:
  uri: ldap://127.0.0.1:1
  bind: simple
  bsaes: []
YAML
"$MALDAP" -c "$T/bad/loom.yaml" --agent x --check-config >"$T/bad.out" 2>&1 && fail "bad agent config accepted"
grep -qF "$X:5:3: unknown key 'bsaes' in ldap (did you mean 'bases'?)" "$T/bad.out" || fail "unknown key not reported: $(cat "$T/bad.out")"
grep -qF "$X:" "$T/bad.out" && grep -qF "key 'ldap.bases': missing required key" "$T/bad.out" ||
	fail "missing bases not reported: $(cat "$T/bad.out")"
printf 'type: ldap\n' >"$X"
"$MALDAP" -c "$T/bad/loom.yaml" --agent x --check-config >"$T/bad.out" 2>&1 && fail "an ldap agent without its section accepted"
grep -qF "$X: key 'ldap': missing required section for type ldap" "$T/bad.out" || fail "missing section not reported: $(cat "$T/bad.out")"
"$MALDAP" --help-config | grep -qE "^ *page_size" || fail "--help-config does not describe the ldap keys"
# The example in config/examples is a valid agent file.
mkdir -p "$T/ex/agents" "$T/ex/tls" "$T/ex/keys"
cp "$CFG" "$T/ex/loom.yaml"
cp "$LOOM_SOURCE_DIR/config/examples/ldap-openldap.yaml" "$T/ex/agents/example.yaml"
cp "$SLAPD_CA" "$T/ex/tls/ldap-ca.pem"
echo x >"$T/ex/keys/ldap-loom.pw"
"$MALDAP" -c "$T/ex/loom.yaml" --agent example --check-config >"$T/ex.out" 2>&1 ||
	fail "config/examples/ldap-openldap.yaml is refused: $(cat "$T/ex.out")"
pass "configuration errors name file:line:column, key, value and what was expected"
