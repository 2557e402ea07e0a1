#!/usr/bin/env bash
# Schedules (config/loom.yaml `schedules`): an hr agent with a schedule
# running [full-import] every second; the engine starts it on its own at
# least twice, `loomctl schedule` shows it succeeding (text and json), and
# loom-engine --check-config rejects a bad cron expression, an unknown agent
# and an unknown profile with the exact message.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/data"
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
timeout: 5s
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/data/hr.csv" <<'CSV'
employeeId,givenName,sn
1001,Ada,Lovelace
1002,Grace,Hopper
CSV
# dir has no process: its imports fail once its 3 s timeout passes.
cat >"$T/agents/dir.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
timeout: 3s
file: { format: csv, path: ../data/hr.csv }
YAML
cp "$CFG" "$T/base.yaml"
cat >>"$CFG" <<'YAML'
schedules:
  - name: hr-every-second
    agent: hr
    profiles: [full-import]
    every: 1s
  - name: hr-weekly
    agent: hr
    profiles: [full-import, delta-sync]
    cron: "0 6 * * 1"
    enabled: false
  - name: dir-seq
    agent: dir
    profiles: [full-import, full-sync]
    every: 1s
YAML

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"

# Bad schedules: exact messages, file:line:column naming the key.
check_rejects() { # DIR WANT
	local out
	if out=$("$ENGINE" -c "$T/$1/loom.yaml" --check-config 2>&1); then fail "$1: engine accepted it"; fi
	echo "$out" | grep -qF -- "$2" || fail "$1: got: $out; want: $2"
}
base_lines=$(wc -l <"$T/base.yaml")
for d in badcron noagent noprofile; do mkdir -p "$T/$d"; cp -r "$T/agents" "$T/$d/"; cp "$T/base.yaml" "$T/$d/loom.yaml"; done
printf '%s\n' 'schedules:' '  - name: hr' '    agent: hr' '    profiles: [full-import]' \
	'    cron: "*/0 * * * *"' >>"$T/badcron/loom.yaml"
check_rejects badcron "$T/badcron/loom.yaml:$((base_lines + 5)):12: key 'schedules[0].cron': bad value '*/0 * * * *': expected a step of at least 1 in the minute field, found '0'"
printf '%s\n' 'schedules:' '  - name: hr' '    agent: payroll' '    profiles: [full-import]' \
	'    every: 1h' >>"$T/noagent/loom.yaml"
check_rejects noagent "$T/noagent/loom.yaml:$((base_lines + 3)):12: key 'schedules[0].agent': schedule 'hr': no agent 'payroll' (agents/payroll.yaml does not exist)"
printf '%s\n' 'schedules:' '  - name: hr' '    agent: hr' '    profiles: [full-import, full-sink]' \
	'    every: 1h' >>"$T/noprofile/loom.yaml"
check_rejects noprofile "$T/noprofile/loom.yaml:$((base_lines + 2)):11: key 'schedules[0].profiles': schedule 'hr': unknown run profile 'full-sink': expected full-import, delta-import, full-sync, delta-sync or export"
# Every process loads loom.yaml: the broker rejects a bad cron expression too.
if out=$("$BROKER" -c "$T/badcron/loom.yaml" --check-config 2>&1); then fail "broker accepted a bad cron"; fi
echo "$out" | grep -qF "key 'schedules[0].cron': bad value '*/0 * * * *'" || fail "broker: $out"
pass "bad schedules are rejected at load and by --check-config with file:line:column"

start_broker
start_engine
start_agent hr

# Two runs the schedule started, both successful (polls, never sleeps).
scheduled_successes() {
	[ "$(ctl runs hr | awk '$3 == "full-import" && $4 == "success"' | wc -l)" -ge 2 ]
}
wait_for "two scheduled full-imports" 30 scheduled_successes
log_has "$T/engine.log" "schedule step started schedule=hr-every-second step=1/1 profile=full-import" \
	|| fail "no scheduled start in the engine log"
pass "the engine runs the schedule on its own: two scheduled full-imports succeeded"

# A step that fails stops its sequence; coming due while running is skipped, not queued.
wait_log_fixed engine "schedule finished schedule=dir-seq agent=dir status=failed message=\"stopped at step 1 (full-import)" 30
wait_log_fixed engine "schedule skipped schedule=dir-seq agent=dir reason=still-running" 10
ctl runs dir >"$T/runs.out" || fail "loomctl runs dir"
grep -q full-sync "$T/runs.out" && { cat "$T/runs.out" >&2; fail "the sequence went on after a failed step"; }
pass "a failed step stops the sequence; a schedule due while it runs is skipped"

# `loomctl schedule` lists both; the every-second one last ended in success.
has_success() {
	ctl schedule >"$T/sched.out" 2>&1 || return 1
	awk '$1 == "hr-every-second"' "$T/sched.out" | grep -qE ' success +yes$'
}
wait_for "loomctl schedule showing success" 10 has_success
grep -E '^hr-every-second +hr +full-import +every 1s ' "$T/sched.out" >/dev/null || { cat "$T/sched.out" >&2; fail "schedule line"; }
grep -E '^hr-weekly +hr +full-import,delta-sync +cron 0 6 \* \* 1 +- +- +- +no$' "$T/sched.out" >/dev/null \
	|| { cat "$T/sched.out" >&2; fail "disabled schedule line"; }
ctl -o json schedule hr-every-second >"$T/sched.json" || fail "loomctl -o json schedule failed"
python3 - "$T/sched.json" <<'PY' || fail "json: $(cat "$T/sched.json")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["schedules"]
assert len(s) == 1 and s[0]["name"] == "hr-every-second", s
assert s[0]["agent"] == "hr" and s[0]["profiles"] == ["full-import"] and s[0]["every"] == "1s", s
assert s[0]["last_status"] == "success" and s[0]["enabled"] is True, s
PY
if ctl schedule nosuch >/dev/null 2>"$T/err.out"; then fail "an unknown schedule was listed"; fi
grep -qF "no schedule 'nosuch' is configured" "$T/err.out" || fail "unknown schedule: $(cat "$T/err.out")"
pass "loomctl schedule lists every schedule with its next due time and last status (text and json)"
