#!/usr/bin/env bash
# slapd killed in the middle of a full import: the run fails cleanly with the
# reason, and once slapd is back the next full import brings every entry.
# The engine is paused (SIGSTOP) right after the run starts, so the agent,
# out of credit, holds the search open mid-stream when slapd is killed:
# the kill lands mid-import every time, not by luck of timing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

N=${LOOM_LDAP_TEST_N:-20000}
write_config
mkdir -p "$T/agents"
start_slapd
stop slapd
slapadd_people "$N"
restart_slapd
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
import_batch: 100
import_credit: 1
timeout: 20s
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 200
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
start_broker
start_engine
start_ldap_agent dir

"$CTL" -c "$CFG" run dir full-import --no-wait >"$T/run1.id" 2>>"$T/ctl.log" || fail "cannot start the import"
wait_log ma_dir "import started run=" 10
kill -STOP "${PIDS[engine]}"
# At most one more batch goes out without credit: the import cannot finish.
sleep_until=$((SECONDS + 1)); while [ "$SECONDS" -lt "$sleep_until" ]; do sleep 0.05; done
if log_has "$T/ma_dir.log" "import sent run="; then
	kill -CONT "${PIDS[engine]}"
	fail "the import finished before the engine was paused"
fi
stop slapd KILL
kill -CONT "${PIDS[engine]}"
wait_for "the run to fail" 30 bash -c "'$CTL' -c '$CFG' runs dir -n 1 | awk 'NR==2 && \$4==\"failed\" {ok=1} END{exit !ok}'"
log_has "$T/ma_dir.log" "import failed run=[0-9]+: lost the connection to '$SLAPD_URI' while reading 'ou=people,$SUFFIX'" ||
	fail "the agent did not report the lost connection"
partial=$(cs_count dir)
[ "$partial" -lt "$N" ] || fail "the killed import holds every entry ($partial)"
pass "slapd killed mid-import ($partial of $N staged): the run failed with the reason"

restart_slapd
run_profile dir full-import
log_has "$T/ma_dir.log" "import sent run=[0-9]+ mode=full objects=$N errors=0 " || fail "the second import did not send all $N entries"
pass "the next full import brings all $N entries"
