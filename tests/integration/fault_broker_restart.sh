#!/usr/bin/env bash
# kill -9 the broker mid-traffic and start it again: services re-register by
# themselves, a client that was pinging goes on, and nothing needs a restart.
# Also kill -9 a service: the broker forgets it after the liveness window.
. "$(dirname "$0")/lib.sh"

write_config
# No broker: a clear, prompt error rather than a hang.
if out=$("$CTL" -c "$CFG" -t 500ms ping echo 2>&1); then fail "ping without a broker succeeded"; fi
echo "$out" | grep -q "no answer from the broker at 'ipc://$T/state/run/bus-router' within 500 ms (is loom-broker running?)" ||
	fail "unclear no-broker error: $out"
pass "clear error when no broker runs"

start_broker
start echo "$TESTSVC" -c "$CFG" --service echo
start sub "$TESTSVC" -c "$CFG" --service sub --subscribe run.
start pub "$TESTSVC" -c "$CFG" --service pub --publish run.tick --every 100ms
wait_log echo "registered with broker"
wait_log sub "event topic=run.tick" 10
ctl ping echo >/dev/null || fail "first ping"

# A long-running client pinging across the crash.
start pinger "$CTL" -c "$CFG" -t 400ms ping echo -n 60 -i 50ms
wait_for "pinger's first pongs" 10 bash -c "[ \$(grep -c '^pong from' '$T/pinger.log') -ge 5 ]"

stop broker KILL
before=$(grep -c '^pong from' "$T/pinger.log")
events_before=$(grep -c 'event topic=run.tick' "$T/sub.log")
start_broker
wait_log echo "broker restarted; registering again|reconnected to broker" 10
wait_for "echo answering again" 10 ctl ping echo
wait_for "pinger to finish" 30 bash -c "grep -q ' sent, ' '$T/pinger.log'"
after=$(grep -c '^pong from' "$T/pinger.log")
[ "$after" -gt "$before" ] || fail "pinger got no pong after the restart ($before before, $after after)"
summary=$(grep ' sent, ' "$T/pinger.log")
echo "$summary" | grep -qE '^60 sent, [0-9]+ received' || fail "pinger summary: $summary"
pass "clients re-register and continue after kill -9 of the broker ($before pongs before, $after in all; $summary)"

wait_for "events flowing again" 10 bash -c "[ \$(grep -c 'event topic=run.tick' '$T/sub.log') -gt $((events_before + 3)) ]"
pass "events flow again after the broker restart"

out=$(ctl services) || fail "services after restart"
for s in echo sub pub; do
	echo "$out" | grep -qE "^$s +$s@" || fail "$s missing after restart: $out"
done
pass "every service registered again"

# kill -9 a service: the broker notices the silence and forgets it.
stop echo KILL
# The broker learns it either from the broken connection or from the silence.
wait_log broker "peer (gone \(unreachable\)|expired \(silent [0-9]+ ms\)) service=echo" 10
if out=$(ctl ping echo 2>&1); then fail "ping reached a dead service: $out"; fi
echo "$out" | grep -q "no service 'echo' is registered" || fail "after expiry: $out"
start echo "$TESTSVC" -c "$CFG" --service echo
wait_for "new echo" 10 ctl ping echo
pass "a killed service is forgotten after the liveness window and a new one takes its place"
