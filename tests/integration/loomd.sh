#!/usr/bin/env bash
# loomd, the per-host supervisor (docs/deploy.md): it starts the processes
# hosts: assigns to its host, a sync cycle runs through them, a process
# killed with -9 is restarted and `loomctl status` shows it (new pid, one
# restart, its last exit), the broker too (everyone registers again); a process that keeps crashing is given up after
# supervisor.give_up fast crashes with a clear line; a second loomd for the
# same host is refused; SIGTERM stops agents (one hung with SIGSTOP is
# killed after stop_timeout), then the engine, then the broker, and nothing
# is left running; kill -9 of loomd itself leaves
# nothing running either. Bad input: an unknown host, an unknown process.
. "$(dirname "$0")/lib.sh"

LOOMD=$LOOM_BUILD_DIR/cli/loomd
mkdir -p "$T/agents" "$T/sync" "$T/data" "$T/keys"
cat >"$CFG" <<YAML
state_dir: $T/state
log: { level: info }
bus: { heartbeat: 200ms, liveness: 5, request_timeout: 5s, keys_dir: $T/keys }
supervisor: { restart_min: 100ms, restart_max: 2s, fast_crash: 5s, give_up: 3, stop_timeout: 2s }
hosts:
  - name: h1
    processes: [broker, engine, agents]
  - name: h2
    processes: [pcns]          # no pcns.yaml here: it exits at once, every time
YAML
cp "$LOOM_SOURCE_DIR/config/sync/people.yaml" "$T/sync/"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: inetOrgPerson\nanchor: dn\nfile: { format: ldif, path: ../data/directory.ldif }\n' >"$T/agents/directory.yaml"
cp "$LOOM_SOURCE_DIR/config/samples/hr.csv" "$T/data/hr.csv"

"$LOOMD" --help | grep -q "^usage: loomd" || fail "loomd --help"
"$LOOMD" -c "$CFG" --host h1 --check-config >/dev/null || fail "loomd --check-config rejects h1"
# Bad input: one line naming it.
if out=$("$LOOMD" -c "$CFG" --host nosuch --check-config 2>&1); then fail "--check-config accepted an unknown host"; fi
echo "$out" | grep -q "host 'nosuch' is not in hosts:" || fail "--check-config: unclear error for an unknown host: $out"
if out=$("$LOOMD" -c "$CFG" --host nosuch 2>&1); then fail "an unknown host was accepted"; fi
echo "$out" | grep -q "host 'nosuch' is not in hosts: of '$CFG' (hosts: h1, h2): give --host NAME" ||
	fail "unclear error for an unknown host: $out"
sed 's/\[pcns\]/[pcns, engine, mailer]/' "$CFG" >"$T/bad.yaml"
if out=$("$LOOMD" -c "$T/bad.yaml" --host h1 --check-config 2>&1); then fail "a bad process list was accepted"; fi
echo "$out" | grep -q "bad.yaml:8:11: key 'hosts\[1\].processes': bad value 'mailer': expected broker, tap, engine, workflow, pcns, agents or ma.NAME" ||
	fail "unclear error for an unknown process: $out"
echo "$out" | grep -q "'engine' is already assigned to host 'h1': a process runs on one host only" ||
	fail "a process on two hosts not refused: $out"
# Without --host: the hostname, or its first label, picks the entry.
short=$(hostname | cut -d. -f1)
if [[ "$short" =~ ^[A-Za-z][A-Za-z0-9_-]*$ ]]; then
	sed "s/name: h2$/name: $short/" "$CFG" >"$T/self.yaml"
	grep -q "name: $short$" "$T/self.yaml" || fail "could not write self.yaml"
	"$LOOMD" -c "$T/self.yaml" --check-config >/dev/null || fail "the hostname's entry ($short) was not picked without --host"
	if out=$("$LOOMD" -c "$CFG" --check-config 2>&1); then fail "a host not in hosts: was accepted without --host"; fi
	echo "$out" | grep -q "is not in hosts: of '$CFG' (hosts: h1, h2): give --host NAME" || fail "unclear: $out"
fi
pass "bad input: an unknown host, an unknown process, a process on two hosts"

start loomd1 "$LOOMD" -c "$CFG" --host h1
# every process running and registered on the bus
all_up() {
	local out
	out=$("$CTL" -c "$CFG" -t 2s status 2>/dev/null) || true
	for p in broker engine ma.directory ma.hr; do
		echo "$out" | grep -qE "^h1 +$p +running +[0-9]+ +[0-9]+ +(yes|-) " || return 1
	done
}
wait_for "loomd h1 to start every process" 20 all_up
ctl status >"$T/status1.out"; rc=$?
cat "$T/status1.out"
# h2's loomd is not running: status says so and exits 3
[ "$rc" = 3 ] || fail "status exited $rc with host h2 down, want 3"
grep -qE "^h2 +loomd +unknown +\(no loomd.h2 registered with the broker\)" "$T/status1.out" || fail "h2 not shown as unknown"
ctl -o json status >"$T/status.json"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 1 and d[0]["host"] == "h1", d
names = sorted(p["name"] for p in d[0]["processes"])
assert names == ["broker", "engine", "ma.directory", "ma.hr"], names
assert all(p["state"] == "running" and int(p["pid"]) > 0 for p in d[0]["processes"]), d' "$T/status.json" ||
	fail "status -o json: $(cat "$T/status.json")"
pass "loomd started broker, engine and both agents; status shows them (text and JSON), and h2 without a loomd"

run_profile hr full-import
run_profile hr full-sync
run_profile directory export
[ "$(grep -c "^dn: " "$T/data/directory.ldif")" = 9 ] || fail "the directory does not hold the 9 people (10 in HR, one a test record)"

pid_of() { "$CTL" -c "$CFG" -t 2s status 2>/dev/null | awk -v p="$1" '$1=="h1" && $2==p {print $4}'; }
old=$(pid_of engine)
[ -n "$old" ] && [ "$old" -gt 0 ] || fail "no engine pid in status"
kill -9 "$old"
restarted() {
	"$CTL" -c "$CFG" -t 2s status 2>/dev/null | grep -qE "^h1 +engine +running +[0-9]+ +1 +yes .* signal KILL$" &&
		[ "$(pid_of engine)" != "$old" ]
}
wait_for "the engine to be restarted" 20 restarted
wait_log_fixed loomd1 "process exited process=engine pid=$old status=\"signal KILL\""
kill -0 "$old" 2>/dev/null && fail "the old engine still runs"
sed -i 's/^1002,Grace,Hopper,Rear Admiral,/1002,Grace,Hopper,Admiral,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile directory export
grep -q "title: Admiral" "$T/data/directory.ldif" || fail "the change did not reach the directory after the restart"
pass "engine killed with -9: restarted (status: new pid, 1 restart, last exit signal KILL); a cycle runs through it"

# The broker killed with -9: restarted, and every process registers again
# by itself (status asks through the new broker).
oldb=$(pid_of broker)
kill -9 "$oldb"
wait_log_fixed loomd1 "process exited process=broker pid=$oldb status=\"signal KILL\""
broker_back() { [ "$(pid_of broker)" != "$oldb" ] && all_up; }
wait_for "the broker restarted and everyone registered again" 30 broker_back
run_profile hr full-import
pass "broker killed with -9: restarted by loomd; engine and agents registered again; a run goes through"

# A process that keeps crashing: given up after 3 fast crashes.
start loomd2 "$LOOMD" -c "$CFG" --host h2
wait_log loomd2 "giving up on process=pcns pid=[0-9]+: it exited 3 times in a row within 5000ms of its start, last status=\"exit 1\"" 30
[ "$(count_lines "$T/loomd2.log" "started process=pcns")" = 3 ] || fail "pcns was not started exactly 3 times"
ctl status >"$T/status2.out" && fail "status exited 0 with a failed process"
grep -qE "^h2 +pcns +failed +0 +2 +no .* exit 1$" "$T/status2.out" || { cat "$T/status2.out"; fail "status does not show pcns failed"; }
grep -q "pcns.yaml: cannot read" "$T/state/log/pcns.log" || fail "the process's own reason is not in its log"
stop loomd2 || fail "loomd h2 did not exit 0 on SIGTERM"
pass "a process crashing at start is restarted with backoff, then given up after 3 fast crashes; status shows it failed"

# A second loomd for the same host is refused.
if out=$("$LOOMD" -c "$CFG" --host h1 2>&1); then fail "a second loomd for h1 started"; fi
echo "$out" | grep -q "another loomd runs for host 'h1' (pid ${PIDS[loomd1]}" || fail "second loomd: $out"
pass "a second loomd for the same host is refused, naming the first"

# SIGTERM: agents, then the engine, then the broker; nothing left running.
kids=$("$CTL" -c "$CFG" -t 2s status | awk '$1=="h1" && $2!="loomd" {print $4}')
[ "$(echo $kids | wc -w)" = 4 ] || fail "not 4 processes: $kids"
# ma.hr hangs (SIGSTOP): it cannot stop on SIGTERM, loomd kills it after
# stop_timeout and goes on with the engine and the broker.
hr=$("$CTL" -c "$CFG" -t 2s status | awk '$1=="h1" && $2=="ma.hr" {print $4}')
kill -STOP "$hr"
stop loomd1 || fail "loomd did not exit 0 on SIGTERM"
grep -q "process did not stop within 2000ms of SIGTERM: killing process=ma.hr pid=$hr" "$T/loomd1.log" ||
	fail "the hung agent was not killed after stop_timeout"
grep -q "stopped process=ma.hr pid=$hr status=\"signal KILL\"" "$T/loomd1.log" || fail "ma.hr not reported killed"
line() { grep -n "$1" "$T/loomd1.log" | head -n1 | cut -d: -f1; }
a=$(line "stopped process=ma.hr"); b=$(line "stopped process=ma.directory")
e1=$(line "stopping process=engine"); e2=$(line "stopped process=engine"); br=$(line "stopping process=broker")
[ -n "$a" ] && [ -n "$b" ] && [ -n "$e1" ] && [ -n "$e2" ] && [ -n "$br" ] || fail "a stop line is missing"
[ "$a" -lt "$e1" ] && [ "$b" -lt "$e1" ] && [ "$e2" -lt "$br" ] || fail "stopped out of order (agents $a $b, engine $e1-$e2, broker $br)"
for p in $kids; do kill -0 "$p" 2>/dev/null && fail "process $p still runs after loomd stopped"; done
grep -q "all processes stopped host=h1" "$T/loomd1.log" || fail "no final line"
# Without the bus: the table loomd left in STATE_DIR/run says the same.
ctl status --local >"$T/local.out" && fail "status --local exited 0 with loomd stopped"
grep -qE "^loomd host=h1 pid=[0-9]+ \(not running" "$T/local.out" || { cat "$T/local.out"; fail "status --local: loomd h1 not shown stopped"; }
[ "$(grep -cE "^  (broker|engine|ma.hr|ma.directory) stopped pid=0 " "$T/local.out")" = 4 ] ||
	{ cat "$T/local.out"; fail "status --local does not show the 4 processes stopped"; }
pass "SIGTERM stopped the agents (a hung one killed after stop_timeout), then the engine, then the broker; nothing left running"

# kill -9 of loomd itself: its processes stop too (they are told to by the kernel).
start loomd3 "$LOOMD" -c "$CFG" --host h1
wait_for "loomd h1 to start every process again" 20 all_up
kids=$("$CTL" -c "$CFG" -t 2s status | awk '$1=="h1" && $2!="loomd" {print $4}')
stop loomd3 KILL
gone() { for p in $kids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_for "loomd's processes to stop after it was killed" 20 gone
pass "kill -9 of loomd: its processes stop too; nothing left running"
