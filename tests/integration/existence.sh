#!/usr/bin/env bash
# Existence flows: an outbound flow marked existence: true is a test the
# rule applies only while it has a value. A person without a mail address
# gets no mailbox; one whose address goes is deprovisioned; one who gets an
# address is provisioned. An existence flag on an inbound flow is refused.
. "$(dirname "$0")/lib.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
printf 'type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: ../data/hr.csv }\n' >"$T/agents/hr.yaml"
printf 'type: file\nobject_type: mailbox\nanchor: dn\nfile: { format: ldif, path: ../data/mail.ldif }\n' >"$T/agents/mail.yaml"
cat >"$T/sync/mail.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    project: true
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: uid, expr: 'LowerCase(givenName)' }
      - { mv: mail, expr: mail }
  - name: mailboxes
    direction: outbound
    agent: mail
    cs_type: mailbox
    mv_type: person
    link_type: provision
    deprovision: delete
    dn: '"uid=" + uid + ",ou=mail,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: '"mailbox"', initial: true }
      - { cs: mail, expr: mail, existence: true }
YAML
printf 'employeeId,givenName,mail\n1,Ada,ada@example.com\n2,Bob,\n' >"$T/data/hr.csv"
has() { grep -qi "^dn: uid=$1,ou=mail,dc=example,dc=com$" "$T/data/mail.ldif" 2>/dev/null; }

start_broker
start_engine
start_agent hr
start_agent mail
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned 1
run_profile mail export
has ada || fail "Ada has a mail address but no mailbox"
if has bob; then fail "Bob has no mail address but got a mailbox"; fi
ctl preview hr 2 >"$T/preview.out" || fail "preview failed"
grep -q "outbound rule 'mailboxes': existence flow to 'mail' has no value" "$T/preview.out" ||
	fail "preview does not explain the existence test: $(cat "$T/preview.out")"
run_profile mail full-import
run_profile mail full-sync

# Ada's address goes, Bob gets one.
printf 'employeeId,givenName,mail\n1,Ada,\n2,Bob,bob@example.com\n' >"$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
expect_counter provisioned 1
expect_counter deprovisioned 1
run_profile mail export
has bob || fail "Bob got an address but no mailbox"
if has ada; then fail "Ada lost her address but keeps her mailbox"; fi

# existence on an inbound flow is refused at load.
sed -i 's/{ mv: mail, expr: mail }/{ mv: mail, expr: mail, existence: true }/' "$T/sync/mail.yaml"
out=$("$ENGINE" -c "$CFG" --check-config 2>&1) && fail "existence on an inbound flow was accepted"
echo "$out" | grep -q "mail.yaml:[0-9]*: rule 'hr-in': initial and existence belong to outbound flows" ||
	fail "unclear error: $out"
pass "existence flows provision and deprovision as their value comes and goes"
