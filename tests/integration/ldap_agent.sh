#!/usr/bin/env bash
# The LDAP agent against a real slapd (started here, stopped by its PID):
# full import by pages, delta import by content sync (adds, modifies,
# renames and deletes seen exactly; a stale cookie after a slapd restart is
# refused with a warning and the run fails asking for a full import), export
# of adds, modifies, renames, moves and deletes checked with ldapsearch, a
# constraint violation reported as not retryable, bind failures reported
# without the password, config errors with file:line:column.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

N=${LOOM_LDAP_TEST_N:-1200}
write_config
mkdir -p "$T/agents" "$T/sync"
start_slapd
seed_people "$N"
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
chmod 600 "$T/admin.pw"

cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
references: [member, manager]
timeout: 10s
ldap:
  uri: $SLAPD_URI
  bind: simple
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 100
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=groups,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
    - { object_class: groupOfNames, type: group }
YAML

"$MALDAP" -c "$CFG" --agent dir --check-config >/dev/null || fail "loom-ma-ldap rejects the test configuration"
start_broker
start_engine
start_ldap_agent dir

# Full import: every entry, in pages, streamed in batches.
run_profile dir full-import
expect_counter adds "$N"
[ "$(cs_count dir)" = "$N" ] || fail "connector space holds $(cs_count dir) objects, want $N"
log_has "$T/ma_dir.log" "import sent run=[0-9]+ mode=full objects=$N " || fail "agent did not log the full import"
pass "full import of $N entries by pages"
