#!/usr/bin/env bash
# loom-tap on the default ipc bus: every frame decoded, filters, JSON, and
# sealed fields redacted (the sealed bytes never appear, in any encoding).
. "$(dirname "$0")/lib.sh"

write_config
ctl keys gen echo >/dev/null || fail "keys gen"
start_broker
start echo "$TESTSVC" -c "$CFG" --service echo
wait_log echo "registered with broker"
start tap "$TAP" -c "$CFG"
start tapjson "$TAP" -c "$CFG" --json --type Ping
start tapfilter "$TAP" -c "$CFG" --to echo
start taptopic "$TAP" -c "$CFG" --topic run.
wait_log broker "tap listener attached subscriptions=4"
start pub "$TESTSVC" -c "$CFG" --service pub --publish run.tick --every 100ms
start pub2 "$TESTSVC" -c "$CFG" --service pub2 --publish mv.other --every 100ms

out=$(ctl ping echo --probe -n 2 -i 10ms) || fail "ping --probe failed: $out"
[ "$(echo "$out" | grep -c 'probe=ok')" -eq 2 ] || fail "probes did not open: $out"

wait_log tap "D loomctl@[0-9a-f]{8} -> echo@[0-9a-f]{8} loom.Ping id=[0-9a-f]{8} payload=[0-9a-f]{16} probe=<sealed>"
wait_log tap "D echo@[0-9a-f]{8} -> loomctl@[0-9a-f]{8} loom.Pong id=[0-9a-f]{8} re=[0-9a-f]{8} payload="
wait_log tap "loomctl@[0-9a-f]{8} -> broker loom.Hello"
pass "tap prints every frame decoded: from, to, type, ids, body"

wait_for "two JSON pings" 10 bash -c "[ \$(grep -c '\"type\":\"loom.Ping\"' '$T/tapjson.log') -ge 2 ]"
grep '"type":"loom.Ping"' "$T/tapjson.log" | head -n1 | grep -qE '^\{"time":"[0-9T:.-]+Z","kind":"direct","from":"loomctl@[0-9a-f]{8}","to":"echo","delivered_to":"echo@[0-9a-f]{8}","type":"loom.Ping","msg_id":"[0-9a-f]{32}","body":\{"payload":"[A-Za-z0-9+/=]+","probe":"<sealed>"\}\}$' ||
	fail "json line unexpected: $(grep Ping "$T/tapjson.log" | head -n1)"
if grep -v '"type":"loom.Ping"' "$T/tapjson.log" | grep -q '"type"'; then fail "--type Ping let other types through"; fi
pass "tap --json with --type filter"

wait_log tapfilter "loomctl@[0-9a-f]{8} -> echo@[0-9a-f]{8} loom.Ping"
if grep -q 'loom.Pong' "$T/tapfilter.log"; then fail "--to echo showed Pongs (they go to loomctl)"; fi
pass "tap --to filter"

wait_log taptopic "E pub@[0-9a-f]{8} => \[run.tick\] loom.Heartbeat id=[0-9a-f]{8} seq=[0-9]+"
wait_log tap "E pub2@[0-9a-f]{8} => \[mv.other\]"
if grep -qE 'mv.other|loom.Ping| D ' "$T/taptopic.log"; then fail "--topic run. showed other traffic"; fi
pass "tap --topic shows only events under the prefix"

# The sealed box bytes never show: the tap cannot even know them, but check
# that no field of the Ping other than payload carries bytes.
if grep 'loom.Ping' "$T/tap.log" | grep -vq 'probe=<sealed>$'; then fail "a Ping line shows more than <sealed> for the probe"; fi
pass "sealed fields are redacted"
