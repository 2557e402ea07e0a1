#!/usr/bin/env bash
# The bus over tcp:// with CURVE: round trips and events work, a sealed
# probe opens only at its receiver, an unlisted key is refused and the
# refusal is logged, and tcp without CURVE is a configuration error.
. "$(dirname "$0")/lib.sh"

p1=$(free_port); p2=$(free_port); p3=$(free_port); p4=$(free_port)
write_config "router: tcp://127.0.0.1:$p1" "publish: tcp://127.0.0.1:$p2" \
	"subscribe: tcp://127.0.0.1:$p3" "tap: tcp://127.0.0.1:$p4" "curve: true"

# tcp without curve is refused at start, naming the key.
sed 's/curve: true/curve: false/' "$CFG" >"$T/nocurve.yaml"
if out=$("$BROKER" -c "$T/nocurve.yaml" --check-config 2>&1); then fail "tcp without curve accepted"; fi
echo "$out" | grep -q "key 'bus.router': tcp endpoint 'tcp://127.0.0.1:$p1' needs 'bus.curve: true'" ||
	fail "unclear error for tcp without curve: $out"
pass "tcp without CURVE is a configuration error"

# A process without its key cannot start, and says how to make one.
if out=$("$BROKER" -c "$CFG" 2>&1); then fail "broker started without a key"; fi
echo "$out" | grep -q "loomctl keys gen broker" || fail "no hint on the missing key: $out"
pass "missing key named with the command that creates it"

for k in broker echo loomctl tap sub pub; do
	ctl keys gen "$k" >/dev/null || fail "keys gen $k"
done
[ "$(stat -c %a "$T/keys/echo.key")" = 600 ] || fail "secret key file is not mode 0600"
if ctl keys gen echo 2>/dev/null; then fail "keys gen replaced an existing key without --force"; fi
# An intruder: a valid key pair that is not in the allow-list.
ctl keys gen intruder >/dev/null
mv "$T/keys/intruder.pub" "$T/intruder.pub"

start_broker
log_has "$T/broker.log" "CURVE on allowed_keys=6" || fail "broker did not load the allow-list"
start echo "$TESTSVC" -c "$CFG" --service echo
start sub "$TESTSVC" -c "$CFG" --service sub --subscribe run.
start pub "$TESTSVC" -c "$CFG" --service pub --publish run.tick --every 100ms
wait_log echo "registered with broker"
start tap "$TAP" -c "$CFG"
wait_log broker "tap listener attached"

out=$(ctl ping echo --wait 5s --probe) || fail "ping with probe over CURVE failed: $out"
echo "$out" | grep -q "probe=ok" || fail "probe did not open: $out"
pass "round trip over tcp+CURVE; sealed probe opened by the receiver only"
wait_log sub "event topic=run.tick from=pub@" 10
pass "events over tcp+CURVE"

# The tap saw the Ping and shows the sealed field redacted.
wait_log tap "loom.Ping .*probe=<sealed>"
wait_log tap "loom.Pong .*probe_digest="
box_hex=$(grep -oE 'probe=[^ ]+' "$T/tap.log" | grep -v '<sealed>' || true)
[ -z "$box_hex" ] || fail "tap printed a probe: $box_hex"
pass "tap decodes CURVE traffic and prints sealed fields as <sealed>"

# The intruder is refused and the refusal is logged with its key.
ikey=$(sed -n 's/^public-key = "\(.*\)"/\1/p' "$T/intruder.pub")
if out=$(ctl --key intruder -t 1s ping echo 2>&1); then fail "intruder was admitted: $out"; fi
echo "$out" | grep -q "refused this process's key" || fail "intruder error unclear: $out"
wait_log_fixed broker "refused connection key=$ikey address=127.0.0.1 mechanism=CURVE reason=\"key not in allow-list\""
pass "an unlisted CURVE key is refused and logged"

# A client with the wrong broker key cannot talk either.
ctl keys gen broker --dir "$T/otherkeys" >/dev/null || fail "keys gen --dir"
cp "$T/keys/loomctl.key" "$T/keys/loomctl.pub" "$T/otherkeys/" || fail "copy loomctl's keys"
sed "s|keys_dir: $T/keys|keys_dir: $T/otherkeys|" "$CFG" >"$T/wrongkey.yaml"
cmp -s "$CFG" "$T/wrongkey.yaml" && fail "the keys_dir was not changed in $T/wrongkey.yaml"
if out=$("$CTL" -c "$T/wrongkey.yaml" -t 1s ping echo 2>&1); then fail "wrong server key worked: $out"; fi
echo "$out" | grep -q "no answer from the broker" || fail "wrong broker key: unexpected error: $out"
pass "a wrong broker key gets no service"
