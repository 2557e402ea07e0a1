#!/usr/bin/env bash
# Every binary answers --help; bad flags and bad configuration give one clear
# line naming what is wrong; --check-config validates the shipped default.
. "$(dirname "$0")/lib.sh"

for bin in "$BROKER" "$TAP" "$CTL" "$TESTSVC" "$ENGINE" "$MAFILE"; do
	out=$("$bin" --help) || fail "$(basename "$bin") --help exited non-zero"
	echo "$out" | head -n1 | grep -q "^usage: $(basename "$bin")" || fail "$(basename "$bin") --help: $out"
done
for cmd in ping services keys run runs schedule cs mv preview expr; do
	out=$("$CTL" "$cmd" --help) || fail "loomctl $cmd --help exited non-zero"
	echo "$out" | head -n1 | grep -q "^usage: loomctl $cmd" || fail "loomctl $cmd --help: $out"
done
"$CTL" help ping | grep -q "^usage: loomctl ping" || fail "loomctl help ping"
pass "--help on every binary and subcommand"

if out=$("$BROKER" --frobnicate 2>&1); then fail "unknown flag accepted"; fi
echo "$out" | grep -q "frobnicate" || fail "the broker does not name the unknown flag: $out"
if out=$("$CTL" frobnicate 2>&1); then fail "unknown command accepted"; fi
echo "$out" | grep -q "unknown command 'frobnicate'" || fail "unclear: $out"
if out=$("$CTL" -o yaml services 2>&1); then fail "bad -o accepted"; fi
echo "$out" | grep -q "bad --output 'yaml': expected text or json" || fail "unclear: $out"
pass "bad flags and commands are named"

out=$("$BROKER" -c "$LOOM_SOURCE_DIR/config/loom.yaml" --check-config) || fail "shipped config rejected: $out"
echo "$out" | grep -q "configuration ok" || fail "check-config: $out"
out=$("$BROKER" --help-config) || fail "--help-config"
for k in state_dir heartbeat liveness curve keys_dir router tap; do
	echo "$out" | grep -q "$k" || fail "--help-config does not describe $k"
done
pass "the shipped default validates; --help-config describes the keys"

# A typo in the deployment file: the process refuses to start and names it.
cat >"$T/typo.yaml" <<YAML
state_dir: $T/state
bus:
  heartbeat: 1s
  hearbeat: 2s
  liveness: many
YAML
if out=$("$BROKER" -c "$T/typo.yaml" 2>&1); then fail "broker started with a typo"; fi
echo "$out" | grep -qF "$T/typo.yaml:4:3: unknown key 'hearbeat' in bus (did you mean 'heartbeat'?)" || fail "typo: $out"
echo "$out" | grep -qF "$T/typo.yaml:5:13: key 'bus.liveness': bad value 'many'" || fail "bad value: $out"
echo "$out" | tail -n1 | grep -q "cannot start: configuration '$T/typo.yaml' has errors" || fail "last line: $out"
if out=$("$CTL" -c "$T/typo.yaml" services 2>&1); then fail "loomctl accepted the typo"; fi
echo "$out" | grep -q "unknown key 'hearbeat'" || fail "loomctl typo: $out"
if out=$("$BROKER" -c "$T/missing.yaml" 2>&1); then fail "missing config accepted"; fi
echo "$out" | grep -qF "$T/missing.yaml: cannot read: No such file or directory" || fail "missing: $out"
pass "configuration errors name file, line, column, key and value"

# keys gen writes both files; -o json works.
out=$("$CTL" -o json keys gen demo --dir "$T/k") || fail "keys gen"
echo "$out" | grep -qE '^\{"name":"demo","public_key":"[^"]{40}","key_file":"[^"]+/demo.key","pub_file":"[^"]+/demo.pub"\}$' || fail "json: $out"
[ -f "$T/k/demo.key" ] && [ -f "$T/k/demo.pub" ] || fail "key files missing"
if grep -q secret-key "$T/k/demo.pub"; then fail "public file holds the secret"; fi
pass "keys gen"

# The engine compiles every rule at start: a bad expression is named with
# file:line:column and what was expected; a rule naming a missing agent too.
mkdir -p "$T/e/agents" "$T/e/sync"
printf 'state_dir: %s/e/state\n' "$T" >"$T/e/loom.yaml"
printf 'type: file\nanchor: id\nfile: { format: csv, path: hr.csv }\n' >"$T/e/agents/hr.yaml"
cat >"$T/e/sync/bad.yaml" <<'YAML'
rules:
  - name: in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    flows:
      - { mv: cn, expr: 'Lefft(givenName, 1)' }
  - name: out
    direction: outbound
    agent: nosuch
    cs_type: x
    mv_type: person
YAML
if out=$("$ENGINE" -c "$T/e/loom.yaml" --check-config 2>&1); then fail "engine accepted a bad rule"; fi
echo "$out" | grep -qF "$T/e/sync/bad.yaml:8:26: unknown function 'Lefft' (did you mean 'Left'?)" || fail "bad expression: $out"
echo "$out" | grep -qF "rule 'out': no agent 'nosuch'" || fail "missing agent: $out"
if out=$("$MAFILE" -c "$T/e/loom.yaml" --agent nosuch --check-config 2>&1); then fail "agent without a file accepted"; fi
echo "$out" | grep -qF "$T/e/agents/nosuch.yaml: cannot read: No such file or directory" || fail "missing agent file: $out"
if out=$("$MAFILE" -c "$T/e/loom.yaml" 2>&1); then fail "agent without --agent started"; fi
echo "$out" | grep -q -- "--agent NAME is required" || fail "no --agent: $out"
pass "engine and agent configuration errors name file, line and column"
