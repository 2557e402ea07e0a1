#!/usr/bin/env bash
# The bus on ipc://: registration, round trips through the broker, services,
# round-robin, errors for unknown services, events, and malformed input from
# a hostile peer logged and dropped while everything keeps running.
. "$(dirname "$0")/lib.sh"

write_config
start_broker
start echo1 "$TESTSVC" -c "$CFG" --service echo
start echo2 "$TESTSVC" -c "$CFG" --service echo
wait_log echo1 "registered with broker"
wait_log echo2 "registered with broker"

out=$(ctl ping echo --wait 5s) || fail "ping echo failed: $out"
echo "$out" | grep -qE '^pong from echo@[0-9a-f]{8} \(loom-testsvc pid [0-9]+\) time=[0-9.]+ ms$' ||
	fail "unexpected ping output: $out"
pass "round trip to a service through the broker"

# Two instances of one service share the work round-robin.
out=$(ctl ping echo -n 6 -i 10ms) || fail "ping -n 6 failed: $out"
n=$(echo "$out" | grep -oE 'echo@[0-9a-f]{8}' | sort -u | wc -l)
[ "$n" -eq 2 ] || fail "round-robin reached $n instances, want 2: $out"
echo "$out" | grep -q '^6 sent, 6 received, 0.0% lost' || fail "summary wrong: $out"
pass "round-robin across two instances"

# Exact instance address.
inst=$(echo "$out" | grep -oE 'echo@[0-9a-f]{8}' | head -n1)
out=$(ctl ping "$inst" -n 3 -i 10ms) || fail "ping $inst failed"
[ "$(echo "$out" | grep -c "pong from $inst ")" -eq 3 ] || fail "instance routing went elsewhere: $out"
pass "routing to one instance by address"

# services lists both, as text and JSON.
out=$(ctl services) || fail "services failed"
[ "$(echo "$out" | grep -cE '^echo +echo@[0-9a-f]{8} +loom-testsvc')" -eq 2 ] || fail "services text: $out"
out=$(ctl -o json services echo) || fail "services -o json failed"
[ "$(echo "$out" | grep -c '"service":"echo"')" -eq 2 ] || fail "services json: $out"
echo "$out" | head -n1 | grep -q '^\[' || fail "services json is not an array: $out"
pass "services listing (text and json)"

# The broker answers for a service nobody registered.
if out=$(ctl ping nosuch 2>&1); then fail "ping nosuch succeeded: $out"; fi
echo "$out" | grep -q "no service 'nosuch' is registered" || fail "unclear error: $out"
pass "clear error for an unregistered service"


# Events: a publisher and a subscriber through XSUB/XPUB.
start sub "$TESTSVC" -c "$CFG" --service sub --subscribe run.
start pub "$TESTSVC" -c "$CFG" --service pub --publish run.tick --every 100ms
start pub2 "$TESTSVC" -c "$CFG" --service pub2 --publish mv.other --every 100ms
wait_log sub "event topic=run.tick from=pub@" 10
wait_for "three run.tick events" 10 bash -c "[ \$(grep -c 'event topic=run.tick' '$T/sub.log') -ge 3 ]"
if log_has "$T/sub.log" "topic=mv.other"; then fail "subscriber got an event outside its prefix"; fi
pass "events fan out by topic prefix"

# A hostile peer: garbage, a spoofed sender, extra frames, a bad body, an unknown type.
out=$("$BADPEER" "ipc://$T/state/run/bus-router" echo 2>&1) || fail "badpeer: $out"
echo "$out" | grep -q "badpeer: done" || fail "badpeer: $out"
wait_log broker "dropped malformed message from peer=bad@0001 reason=\"frame is not a protobuf envelope\""
wait_log broker "dropped malformed message from peer=bad@0001 reason=\"sender address does not match its connection\""
wait_log broker "dropped malformed message from peer=bad@0001 reason=\"expected exactly one envelope frame\""
wait_for "echo logging the bad body" 5 bash -c "grep -hE \"dropped malformed loom.Ping from 'bad@0001'|dropped message from=bad@0001 type=loom.NoSuchType\" '$T/echo1.log' '$T/echo2.log' | grep -q ."
ctl ping echo -n 2 -i 10ms >/dev/null || fail "echo stopped answering after bad input"
ctl ping broker >/dev/null || fail "broker stopped answering after bad input"
pass "malformed input is logged with the peer's name and dropped; all keep running"

# Clean shutdown: Bye makes the broker forget at once.
stop echo2 TERM || fail "echo2 did not exit 0 on TERM"
wait_log broker "peer left service=echo"
log_has "$T/echo2.log" "shutting down signal=TERM" || fail "echo2 did not log its shutdown"
stop broker TERM || fail "broker did not exit 0 on TERM"
log_has "$T/broker.log" "stopped" || fail "broker did not log stopped"
pass "clean shutdown on SIGTERM"
