#!/usr/bin/env bash
# Action activities and restarts (issue 7, "activities may run twice after
# restart"): loom-workflow is killed with SIGKILL at the moments that
# matter, and the restarted service neither loses a step nor repeats one.
#
#   create (a request's effect in the store): killed after the activity made
#     its request, before the step was written -> after the restart the step
#     finds the request it made (its id is the step's key) and one Group exists
#   notify: killed after the mail was queued in memory, before the step's
#     write -> the step runs again and exactly one mail goes
#   external, on_restart: fail (the default, at most once): killed while the
#     program runs -> the orphaned program is killed, the step fails with
#     "its outcome is unknown", the program ran once
#   external, on_restart: rerun (at least once): the same kill -> the
#     program is killed and run again, and the workflow completes
#   external: killed after the "started" mark, before the spawn -> no run,
#     the step fails as unknown (the mark is durable before the program runs)
# Also: a bad on_restart value and an unknown activity type are refused by
# loom-workflow --check-config with file:line:column.
. "$(dirname "$0")/lib.sh"

write_config
start_smtp_sink
cat >>"$CFG" <<YAML
mail:
  relay: 127.0.0.1:$SMTP_PORT
  retry: 1s
YAML
W=$T/policy/workflows
mkdir -p "$W"
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
printf 'mprs: []\n' >"$T/policy/mprs.yaml"
cat >"$T/mprs.yaml" <<'YAML'
mprs: []
transition_mprs:
  - { name: kit, set: Kit takers, transition: in, action_workflows: [kit] }
  - { name: once, set: Checked once, transition: in, action_workflows: [check-once] }
  - { name: again, set: Checked again, transition: in, action_workflows: [check-again] }
  - { name: marker, set: Markers, transition: in, action_workflows: [marker] }
YAML
cat >"$T/workflows.yaml" <<'YAML'
workflows:
  - name: kit
    kind: action
    activities:
      - type: create
        object_type: Group
        values:
          - { attribute: DisplayName, value: '"Kit of " + AccountName' }
          - { attribute: MembershipType, value: '"Static"' }
          - { attribute: Owner, value: 'ObjectID' }
      - type: notify
        to: ['//Target']
        subject: "Welcome [//Target/AccountName]"
        body: "your kit is ready"
  - name: check-once
    kind: action
    activities:
      - { type: external, command: [ext.sh], timeout: 2m }
  - name: check-again
    kind: action
    activities:
      - { type: external, command: [ext.sh], timeout: 2m, on_restart: rerun }
  - name: marker
    kind: action
    activities:
      - { type: notify, to: ['//Target'], subject: "Marker [//Target/AccountName]", body: "m" }
YAML
# The program logs each run (target, pid); its first run for a target hangs
# (the test kills the service meanwhile), a second one passes at once.
cat >"$T/ext.sh" <<'SH'
#!/bin/sh
d=$(dirname "$0")
echo "$LOOM_TARGET_ID $$" >>"$d/ext-runs"
if [ "$(grep -c "^$LOOM_TARGET_ID " "$d/ext-runs")" -ge 2 ]; then echo "second run passes"; exit 0; fi
exec sleep 120
SH
chmod +x "$T/ext.sh"
touch "$W/ext-runs"

start_broker
start_workflow
ok() {
	local out rc=0
	out=$(ctl -t 10s request "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "request $* exited $rc: $out"
	echo "$out" | head -n1 | awk '{print $6}'
}
id_of() { ctl search "/Person[AccountName = '$1']" | grep -o '^[0-9a-f-]\{36\}' | head -n1; }
# the request that created person $1 (its target), from the request list
req_of() { ctl requests -n 200 | awk -v t="$1" '$3 == "create" && $5 == t {print $1; exit}'; }
status_of() { ctl -t 10s request show "$1" | head -n1 | awk '{print $3}'; }
runs_of() { grep -c "^$1 " "$W/ext-runs" || true; }
mails_to() { mail_files "^Subject: $1\$" | wc -l; }
ok create Set DisplayName="Kit takers" "Filter=/Person[JobTitle = 'Kit']" >/dev/null
ok create Set DisplayName="Checked once" "Filter=/Person[JobTitle = 'Once']" >/dev/null
ok create Set DisplayName="Checked again" "Filter=/Person[JobTitle = 'Again']" >/dev/null
ok create Set DisplayName="Markers" "Filter=/Person[JobTitle = 'Marker']" >/dev/null
stop workflow
mv "$T/mprs.yaml" "$T/policy/mprs.yaml"
mv "$T/workflows.yaml" "$T/ext.sh" "$W/"

# ---- bad input at load ----------------------------------------------------------------
mkdir -p "$T/bad/policy/workflows"
cp "$T/policy/schema.yaml" "$T/bad/policy/"
printf 'mprs: []\n' >"$T/bad/policy/mprs.yaml"
cp "$W/ext.sh" "$T/bad/policy/workflows/"
cp "$CFG" "$T/bad/loom.yaml"
cat >"$T/bad/policy/workflows/bad.yaml" <<'YAML'
workflows:
  - name: bad
    kind: action
    activities:
      - { type: external, command: [ext.sh], on_restart: maybe }
      - type: sendmail
YAML
out=$("$WORKFLOW" -c "$T/bad/loom.yaml" --check-config 2>&1) && fail "--check-config accepted a bad workflow file"
echo "$out" | grep -q "bad.yaml:5:58: workflow 'bad': activity 1 (external): on_restart 'maybe': expected fail or rerun" ||
	fail "bad on_restart not refused with file:line:column: $out"
echo "$out" | grep -q "bad.yaml:6:15: workflow 'bad': activity 2: unknown activity type 'sendmail'" ||
	fail "unknown activity type not refused with file:line:column: $out"
pass "a bad on_restart and an unknown activity type are refused at load with file:line:column"

# crash_run POINT NAME REQUEST-ARGS... : the service with LOOM_WORKFLOW_CRASH_AT=POINT
# gets the request, dies at POINT, and is started again
crash_run() {
	local point=$1 name=$2
	shift 2
	stop workflow
	start "$name" env LOOM_WORKFLOW_CRASH_AT="$point" "$WORKFLOW" -c "$CFG"
	wait_log "$name" "registered with broker"
	wait_for "$name to answer" 10 "$CTL" -c "$CFG" -t 1s requests -n 1
	ctl -t 2s request "$@" >/dev/null 2>&1 && fail "request $* answered although the service was to crash at $point"
	wait_for "$name to die" 10 bash -c "! kill -0 ${PIDS[$name]}"
	log_has "$T/$name.log" "fault injection: killing myself" || fail "$name died, but not at $point: $(tail -5 "$T/$name.log")"
	stop "$name"
	start_workflow
}
# marker NAME : a mail sent after everything before it (the outbox goes in
# order): once it has arrived, a duplicate of an earlier mail would have too
marker() {
	ok create Person AccountName="$1" JobTitle=Marker Email="$1@example.org" >/dev/null
	wait_mail "^X-Envelope-To: $1@example.org" "^Subject: Marker $1" >/dev/null
}

# ---- create: the step's request is made once -------------------------------------------
crash_run step:create crash1 create Person AccountName=ann JobTitle=Kit Email=ann@example.org
ANN=$(id_of ann)
[ -n "$ANN" ] || fail "ann's create did not survive the kill"
R=$(req_of "$ANN")
wait_for "ann's request to complete" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' completed '"
[ "$(ctl search "/Group[DisplayName = 'Kit of ann']" | grep -c '^[0-9a-f-]\{36\}')" = 1 ] ||
	fail "want one kit group: $(ctl search "/Group[DisplayName = 'Kit of ann']")"
ctl request show "$R" >"$T/show"
grep -q "action:kit activity 1 (create): Group [0-9a-f-]*: request [0-9a-f-]* completed (made before a restart)" "$T/show" ||
	fail "the create step did not find its request: $(cat "$T/show")"
wait_mail "^X-Envelope-To: ann@example.org" "^Subject: Welcome ann" >/dev/null
pass "killed between a create activity's request and its step: after the restart the step finds that request; one group"

# ---- notify: the mail goes once -----------------------------------------------------------
crash_run step:notify crash2 create Person AccountName=bea JobTitle=Kit Email=bea@example.org
BEA=$(id_of bea)
R=$(req_of "$BEA")
wait_for "bea's request to complete" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' completed '"
wait_mail "^X-Envelope-To: bea@example.org" "^Subject: Welcome bea" >/dev/null
marker mark1
[ "$(mails_to "Welcome bea")" = 1 ] || fail "want one welcome mail for bea, got $(mails_to "Welcome bea")"
[ "$(ctl search "/Group[DisplayName = 'Kit of bea']" | grep -c '^[0-9a-f-]\{36\}')" = 1 ] || fail "want one kit group for bea"
pass "killed after a notify activity ran, before its step was written: the step runs again and one mail goes"

# ---- external, on_restart: fail ----------------------------------------------------------------
out=$(ctl -t 10s request create Person AccountName=cid JobTitle=Once 2>&1) || true
CID=$(id_of cid)
[ -n "$CID" ] || fail "cid not created: $out"
wait_for "the program to start for cid" 10 grep -q "^$CID " "$W/ext-runs"
P1=$(awk -v t="$CID" '$1 == t {print $2; exit}' "$W/ext-runs")
stop workflow KILL
kill -0 "$P1" 2>/dev/null || fail "the program did not outlive the service (the kill should not reach it)"
start_workflow
R=$(req_of "$CID")
wait_for "cid's request to end" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' post-processing-error '"
ctl request show "$R" >"$T/show"
grep -q "check-once activity 1 (external): the service stopped while its program ran; it was still running: killed: its outcome is unknown, not run again (on_restart: fail)" "$T/show" ||
	fail "the unknown outcome is not recorded: $(cat "$T/show")"
wait_for "the orphaned program to be gone" 10 bash -c "! kill -0 $P1"
[ "$(runs_of "$CID")" = 1 ] || fail "on_restart: fail ran the program $(runs_of "$CID") times"
pass "on_restart fail: killed while its program ran, the program is killed at the restart and the step fails as unknown, run once"

# ---- external, on_restart: rerun -----------------------------------------------------------------
out=$(ctl -t 10s request create Person AccountName=dan JobTitle=Again 2>&1) || true
DAN=$(id_of dan)
wait_for "the program to start for dan" 10 grep -q "^$DAN " "$W/ext-runs"
P1=$(awk -v t="$DAN" '$1 == t {print $2; exit}' "$W/ext-runs")
stop workflow KILL
start_workflow
R=$(req_of "$DAN")
wait_for "dan's request to complete" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' completed '"
ctl request show "$R" >"$T/show"
grep -q "check-again activity 1 (external): the service stopped while its program ran; it was still running: killed: running it again (on_restart: rerun)" "$T/show" ||
	fail "the rerun is not recorded: $(cat "$T/show")"
grep -q "check-again activity 1 (external): exit 0: second run passes" "$T/show" || fail "the second run: $(cat "$T/show")"
wait_for "the first program to be gone" 10 bash -c "! kill -0 $P1"
[ "$(runs_of "$DAN")" = 2 ] || fail "on_restart: rerun ran the program $(runs_of "$DAN") times, want 2"
pass "on_restart rerun: the first program is killed and the activity runs again (at least once)"

# ---- external: the started mark comes before the program -------------------------------------
crash_run external:marked crash3 create Person AccountName=eve JobTitle=Once
EVE=$(id_of eve)
R=$(req_of "$EVE")
wait_for "eve's request to end" 15 bash -c "$CTL -c $CFG request show $R | head -n1 | grep -q ' post-processing-error '"
ctl request show "$R" | grep -q "the service stopped while its program ran: its outcome is unknown, not run again" ||
	fail "eve's step: $(ctl request show "$R")"
[ "$(runs_of "$EVE")" = 0 ] || fail "the program ran for eve although the service died before spawning it"
pass "the started mark is durable before the program is spawned: a kill in between is an unknown outcome, not a silent rerun"
