#!/usr/bin/env bash
# crash-trials.sh [--trials N] [--objects N] [--seed S] [--keep]
#
# Crash trials (issue 11 item 2). A whole cycle: an HR CSV of N people (with
# a manager tree) -> loom-engine -> a real slapd (loom-ma-ldap: people with
# manager as a DN) and the policy service (loom-workflow serving the policy
# agent `portal`: Person resources with Manager as an ObjectID reference).
# It runs once uninterrupted as the reference. Then each trial starts a fresh
# deployment, runs the same cycle and kill -9s one random Loom process
# (broker, engine, loom-ma-file hr, loom-ma-ldap dir, loom-workflow) at a
# random moment of it, restarts it with the same command line (as loomd or an
# operator would), and lets the cycle finish: a step whose run failed or was
# cut short is run again, as a scheduler would. Then it compares with the
# reference:
#   - slapd's people: every entry, attribute and value (manager links too)
#   - the policy service's people: every attribute, Manager by AccountName
#   - the exports performed: slapd's successful ADD/MODIFY/DELETE/MODRDN per
#     DN (from its accesslog overlay) and the policy service's completed requests per
#     operation and target: the same counts as the reference (no duplicate,
#     none lost)
#   - the engine: nothing pending import or export, unconfirmed or in error
# Prints one line per trial (ok, or FAIL with the differences) and at the
# end `trials: N failures: F`; exits 1 when a trial failed.
#
# Defaults: 50 trials of 100,000 people (the issue's figure: about six hours
# on the shared 2-core machine, docs/trials.md); --trials/--objects for less.
#
# Needs a build (LOOM_BUILD_DIR, default ./build), slapd and ldap-utils.
# Uses $TMPDIR (default /tmp). LOOM_KEEP=1 or --keep keeps the directory.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$here}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$here/build}

TRIALS=50
N=100000
SEED=${RANDOM}${RANDOM}
usage() {
	awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--trials) TRIALS=${2:-}; shift 2 ;;
	--objects) N=${2:-}; shift 2 ;;
	--seed) SEED=${2:-}; shift 2 ;;
	--keep) export LOOM_KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "crash-trials: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
for v in TRIALS N SEED; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "crash-trials: --${v,,} wants a number, not '${!v}'" >&2; exit 2; }
done
[ "$N" -ge 10 ] || { echo "crash-trials: --objects must be at least 10, not '$N'" >&2; exit 2; }
[ -x "$LOOM_BUILD_DIR/engine/loom-engine" ] || { echo "crash-trials: no build in '$LOOM_BUILD_DIR' (run scripts/build.sh)" >&2; exit 2; }
command -v slapd >/dev/null || { echo "crash-trials: slapd is not installed (scripts/install-deps.sh)" >&2; exit 2; }

. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/ldap/slapd.sh"
TEST_NAME=crash-trials
RANDOM=$SEED
# kills and restarts may break loomctl's requests; every run is retried
STEP_TRIES=8

# deploy DIR : the deployment of one cycle in DIR (config, agents, rules, HR)
deploy() {
	local d=$1
	mkdir -p "$d/agents" "$d/sync" "$d/data" "$d/policy" "$d/keys"
	cat >"$d/loom.yaml" <<YAML
state_dir: $d/state
log: { level: info }
bus: { heartbeat: 200ms, liveness: 10, request_timeout: 10s, keys_dir: $d/keys }
YAML
	printf '%s\n' "$ROOTPW" >"$d/admin.pw"
	cat >"$d/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
references: [manager]
file: { format: csv, path: ../data/hr.csv }
YAML
	cat >"$d/agents/dir.yaml" <<YAML
type: ldap
object_type: person
references: [manager]
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  timeout: 10s
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
YAML
	cat >"$d/agents/portal.yaml" <<YAML
type: policy
timeout: 10s
references: [Manager]
policy: { object_types: [Person] }
YAML
	cat >"$d/sync/people.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hr
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: givenName, expr: givenName }
      - { mv: sn, expr: sn }
      - { mv: title, expr: title }
      - { mv: department, expr: department }
      - { mv: manager, expr: manager }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    deprovision: delete
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
      - { cs: departmentNumber, expr: department }
      - { cs: employeeNumber, expr: employeeId }
      - { cs: manager, expr: manager }
  - name: to-portal
    direction: outbound
    agent: portal
    cs_type: Person
    mv_type: person
    provision: true
    deprovision: delete
    flows:
      - { cs: AccountName, expr: uid, initial: true }
      - { cs: DisplayName, expr: 'givenName + " " + sn' }
      - { cs: FirstName, expr: givenName }
      - { cs: LastName, expr: sn }
      - { cs: EmployeeID, expr: employeeId }
      - { cs: JobTitle, expr: title }
      - { cs: Department, expr: department }
      - { cs: Manager, expr: manager }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
	cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$d/policy/"
	cat >"$d/policy/mprs.yaml" <<'YAML'
sync_unrestricted: true
mprs: []
YAML
	# Managers form a tree, eight reports each; employee i's manager is
	# (i - 2) / 8 + 1, which comes before it (and after it in a few rows
	# moved to the end, so a reference is met before its target).
	awk -v n="$N" 'BEGIN {
		print "employeeId,givenName,sn,title,department,manager"
		for (i = 1; i <= n; i++) {
			m = (i == 1) ? "" : int((i - 2) / 8) + 1
			row = sprintf("%d,Given%d,Sur%d,Title %d,Dept %d,%s", i, i, i, i % 50, i % 20, m)
			if (i % 97 == 5) late = late row "\n"; else print row
		}
		printf "%s", late
	}' >"$d/data/hr.csv"
	awk -F, -v OFS=, 'NR > 1 && $1 % 10 == 0 { $4 = "Changed " $1 } 1' "$d/data/hr.csv" >"$d/data/hr-changed.csv"
}

# The cycle: every step a run profile, in order, or `change`: HR's new file
# (every tenth person gets a new title; copying it again changes nothing).
# The delta-sync after the first exports sends the references whose targets
# got their anchors then (the policy service's ObjectIDs); the last imports
# confirm every export and the last syncs take in what they staged.
STEPS=(
	"dir full-import" "portal full-import"
	"hr full-import" "hr full-sync"
	"dir export" "portal export"
	"dir full-import" "portal full-import"
	"hr delta-sync"
	"dir export" "portal export"
	"change"
	"hr full-import" "hr delta-sync"
	"dir export" "portal export"
	"dir full-import" "portal full-import"
	"dir delta-sync" "portal delta-sync"
)

# in_progress CFG : a run is going on (status in-progress in the newest runs)
in_progress() {
	"$CTL" -c "$1" -t 5s runs -n 5 2>/dev/null | awk 'NR>1 && $4=="in-progress" {f=1} END {exit !f}'
}

# cycle CFG LOG : runs every step; a step whose run fails is run again once
# the deployment answers and nothing runs (up to STEP_TRIES times). Exit
# status 0 when every step ended in success. LOG gets `start K MS` when step
# K starts (ms since the epoch) and `end MS`, for placing the kills.
cycle() {
	local cfg=$1 log=$2 step tries rc k=-1
	for step in "${STEPS[@]}"; do
		k=$((k + 1))
		echo "start $k $(date +%s%3N)" >>"$log"
		tries=0
		while :; do
			tries=$((tries + 1))
			rc=0
			if [ "$step" = change ]; then
				local data=${cfg%/loom.yaml}/data
				cp "$data/hr-changed.csv" "$data/hr.csv.tmp" && mv "$data/hr.csv.tmp" "$data/hr.csv" || rc=$?
			else
				# shellcheck disable=SC2086
				"$CTL" -c "$cfg" -t 600s run $step >>"$log" 2>&1 || rc=$?
			fi
			echo "step '$step' try $tries exit $rc" >>"$log"
			[ "$rc" -eq 0 ] && break
			[ "$tries" -ge "$STEP_TRIES" ] && { echo "step '$step' failed $tries times" >>"$log"; return 1; }
			# wait for the killed process to be back and any run it left to end
			local until=$((SECONDS + 120))
			while [ "$SECONDS" -lt "$until" ]; do
				if "$CTL" -c "$cfg" -t 2s ping engine >/dev/null 2>&1 && ! in_progress "$cfg"; then break; fi
				sleep 0.2
			done
		done
	done
	echo "end $(date +%s%3N)" >>"$log"
	return 0
}

# started K LOG : step K (or the end) has started in LOG
started() { grep -qE "^(start $1 |end )" "$2" 2>/dev/null; }

# Process command lines, by name; each is started by lib.sh's start under
# "<trial>_<name>" so a restart uses exactly the same command.
PROCS=(broker engine hr dir workflow)
proc_cmd() { # NAME CFG
	case "$1" in
	broker) echo "$BROKER -c $2" ;;
	engine) echo "$ENGINE -c $2" ;;
	hr) echo "$MAFILE -c $2 --agent hr" ;;
	dir) echo "$MALDAP -c $2 --agent dir" ;;
	workflow) echo "$WORKFLOW -c $2" ;;
	esac
}
proc_ready() { # NAME : the pattern its log shows when it is ready
	case "$1" in
	broker) echo "started pid=" ;;
	*) echo "registered with broker" ;;
	esac
}
# up TAG NAME CFG : starts one process and waits until it is ready
up() {
	local tag=$1 name=$2 cfg=$3
	# shellcheck disable=SC2046
	start "${tag}_$name" $(proc_cmd "$name" "$cfg")
	wait_log "${tag}_$name" "$(proc_ready "$name")" 60
}

# slapd_start TAG DIR : a fresh slapd for one deployment; its accesslog
# overlay records every successful write in cn=accesslog (what the exports
# performed are counted from: a write slapd applied is there even when the
# client died before the result reached it)
slapd_start() {
	local tag=$1 d=$2
	mkdir -p "$d/slapd/db" "$d/slapd/accesslog"
	SLAPD_MODULES=accesslog.so SLAPD_DIR=$d/slapd write_slapd_conf \
		"overlay accesslog" "logdb cn=accesslog" "logops writes" "logsuccess TRUE" \
		"database mdb" "maxsize 4294967296" "suffix cn=accesslog" "rootdn cn=accesslog" \
		"directory $d/slapd/accesslog" "index reqStart eq"
	local port
	port=$(free_port)
	SLAPD_URI="ldap://127.0.0.1:$port"
	start "${tag}_slapd" slapd -f "$d/slapd/slapd.conf" -h "$SLAPD_URI/" -d 0
	wait_for "slapd on $SLAPD_URI" 30 slapd_answers
	ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot seed slapd"
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people
LDIF
}

# snapshot TAG DIR : writes DIR/result.* (what is compared)
snapshot() {
	local tag=$1 d=$2 cfg=$2/loom.yaml
	# slapd's people, every value, one normalized line per value
	ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "ou=people,$SUFFIX" -s one '(objectClass=*)' \
		objectClass uid cn sn title departmentNumber employeeNumber manager >"$d/people.ldif" 2>"$d/ldapsearch.err" ||
		{ echo "ldapsearch failed: $(cat "$d/ldapsearch.err")"; return 1; }
	awk 'BEGIN{RS=""; FS="\n"} { dn=tolower($1); sub(/^dn: /, "", dn); for (i = 2; i <= NF; i++) print dn " | " $i }' \
		"$d/people.ldif" | sort >"$d/result.ldap"
	# exports performed in slapd: successful writes per DN (accesslog)
	ldap_admin ldapsearch -LLL -o ldif-wrap=no -b cn=accesslog -s one '(reqResult=0)' reqType reqDN \
		>"$d/accesslog.ldif" 2>"$d/ldapsearch.err" || { echo "ldapsearch of cn=accesslog failed: $(cat "$d/ldapsearch.err")"; return 1; }
	awk 'BEGIN{RS=""; FS="\n"} { t = ""; dn = ""
		for (i = 2; i <= NF; i++) { if ($i ~ /^reqType: /) t = substr($i, 10); if ($i ~ /^reqDN: /) dn = tolower(substr($i, 8)) }
		if (dn ~ /ou=people,dc=example,dc=com$/ && dn != "ou=people,dc=example,dc=com") n[t " " dn]++ }
		END { for (x in n) print x " x" n[x] }' "$d/accesslog.ldif" | sort >"$d/result.ldapops"
	# the policy service's people and its completed requests
	# (paged: a reply holds at most 10,000)
	local off=0
	: >"$d/persons.json"
	while :; do
		"$CTL" -c "$cfg" -o json -t 120s search '/Person' -n 10000 --offset "$off" >>"$d/persons.json" 2>"$d/search.err" ||
			{ echo "loomctl search failed: $(cat "$d/search.err")"; return 1; }
		echo >>"$d/persons.json"
		tail -n 2 "$d/persons.json" | grep -q '"truncated":true' || break
		off=$((off + 10000))
	done
	off=0
	: >"$d/requests.json"
	while :; do
		"$CTL" -c "$cfg" -o json -t 120s requests -n 10000 --offset "$off" >>"$d/requests.json" 2>"$d/requests.err" ||
			{ echo "loomctl requests failed: $(cat "$d/requests.err")"; return 1; }
		echo >>"$d/requests.json"
		tail -n 2 "$d/requests.json" | grep -q '"truncated":true' || break
		off=$((off + 10000))
	done
	python3 - "$d" <<'PY' || return 1
import json, sys, collections
d = sys.argv[1]
def pages(name, key):
    out = []
    for line in open(d + "/" + name):
        if line.strip():
            out.extend(json.loads(line).get(key, []))
    return out
def val(v):
    return next(iter(v.values()), "") if isinstance(v, dict) else v
rs = []
for r in pages("persons.json", "resources"):
    a = {x["name"]: [val(v) for v in x.get("values", [])] for x in r.get("attrs", [])}
    a["ObjectID"] = [r.get("object_id", "")]
    rs.append(a)
acct = {a["ObjectID"][0]: (a.get("AccountName") or ["?"])[0] for a in rs}
skip = {"ObjectID", "CreatedTime", "Creator", "ObjectType"}
lines = []
for a in rs:
    who = (a.get("AccountName") or ["?"])[0]
    for k, vs in a.items():
        if k in skip:
            continue
        for v in vs:
            if k == "Manager":
                v = "->" + acct.get(v, "unknown:" + v)
            lines.append("%s | %s: %s" % (who, k, v))
open(d + "/result.portal", "w").write("".join(l + "\n" for l in sorted(lines)))
n = collections.Counter()
for r in pages("requests.json", "requests"):
    who = acct.get(r.get("target_id", ""), r.get("target_id", "") or "(new)")
    if r.get("operation") == "CREATE" and r.get("status") == "COMPLETED":
        who = "create"
    n["%s %s %s" % (r.get("operation"), r.get("status"), who)] += 1
open(d + "/result.portalops", "w").write("".join("%s x%d\n" % (k, n[k]) for k in sorted(n)))
PY
	# the engine: nothing pending import or export, unconfirmed or in error
	local a st n
	for a in hr dir portal; do
		for st in pending-import pending-export unconfirmed error; do
			n=$("$CTL" -c "$cfg" -t 60s cs search "$a" --state "$st" -n 10000 | tail -n +2 | grep -vc '^(more objects match')
			echo "cs $a $st $n"
		done
	done >"$d/result.engine"
}

# compare REFDIR DIR : prints the differences, one line per kind; status 1 if any
compare() {
	local ref=$1 d=$2 k bad=0 diffs
	for k in ldap ldapops portal portalops engine; do
		if ! cmp -s "$ref/result.$k" "$d/result.$k"; then
			diffs=$(diff "$ref/result.$k" "$d/result.$k" | grep '^[<>]')
			echo "    $k: $(echo "$diffs" | grep -c '^<') lines only in the reference, $(echo "$diffs" | grep -c '^>') only here; first:"
			echo "$diffs" | head -n 6 | sed 's/^/      /'
			bad=1
		fi
	done
	return $bad
}

# stack_up TAG DIR : slapd then the Loom processes of one deployment
stack_up() {
	local tag=$1 d=$2 p
	slapd_start "$tag" "$d"
	deploy "$d"
	for p in "${PROCS[@]}"; do up "$tag" "$p" "$d/loom.yaml"; done
	wait_for "loom-workflow to answer" 30 "$CTL" -c "$d/loom.yaml" -t 1s requests -n 1
}
stack_down() {
	local tag=$1 p
	for p in workflow dir hr engine broker slapd; do stop "${tag}_$p"; done
}

echo "crash trials: $TRIALS trials, $N objects, seed $SEED, in $T"

# ---- the reference ----
slapd_certs   # write_slapd_conf names them (not used: plain ldap:// on loopback)
t0=$SECONDS
stack_up ref "$T/ref"
cycle "$T/ref/loom.yaml" "$T/ref/cycle.log" || { tail -n 30 "$T/ref/cycle.log" >&2; fail "the uninterrupted cycle failed"; }
CYCLE_SECS=$((SECONDS - t0))
# when each step started, in ms from the cycle's start, and its length
mapfile -t STEP_AT < <(awk '/^start [0-9]+ [0-9]+$/ && !($2 in seen) { seen[$2] = 1; if (t0 == "") t0 = $3; print $3 - t0 }' "$T/ref/cycle.log")
REF_MS=$(awk '/^start 0 / && t0 == "" { t0 = $3 } /^end / { print $2 - t0 }' "$T/ref/cycle.log")
snapshot ref "$T/ref" || fail "cannot read the reference's result"
stack_down ref
[ "$(grep -c '^dn: ' "$T/ref/people.ldif")" -eq "$N" ] || fail "the reference put $(grep -c '^dn: ' "$T/ref/people.ldif") people in slapd, want $N"
[ "$(cut -d' ' -f1 "$T/ref/result.portal" | sort -u | wc -l)" -eq "$N" ] || fail "the reference put fewer than $N people in the policy service"
grep -q ' [1-9][0-9]*$' "$T/ref/result.engine" && { cat "$T/ref/result.engine" >&2; fail "the reference left work pending"; }
echo "reference: cycle of ${#STEPS[@]} runs in ${CYCLE_SECS}s; slapd $(wc -l <"$T/ref/result.ldap") values, $(wc -l <"$T/ref/result.ldapops") DNs written; policy service $(wc -l <"$T/ref/result.portal") values"

# ---- the trials ----
failures=0
for ((i = 1; i <= TRIALS; i++)); do
	tag=t$i d=$T/t$i
	victim=${PROCS[RANDOM % ${#PROCS[@]}]}
	# A moment inside the cycle, uniform over the reference's duration, as a
	# step and an offset into it: the trial waits for that step to start,
	# then for the offset (a machine busier or quieter than during the
	# reference moves the moment inside the step, never out of the cycle).
	at_ms=$(((RANDOM * 32768 + RANDOM) % (REF_MS > 0 ? REF_MS : 1)))
	k=0
	while [ "$((k + 1))" -lt "${#STEP_AT[@]}" ] && [ "${STEP_AT[k + 1]}" -le "$at_ms" ]; do k=$((k + 1)); done
	off_ms=$((at_ms - STEP_AT[k]))
	stack_up "$tag" "$d"
	t0=$SECONDS
	cycle "$d/loom.yaml" "$d/cycle.log" &
	cpid=$!
	until started "$k" "$d/cycle.log" || ! kill -0 "$cpid" 2>/dev/null; do sleep 0.02; done
	sleep "$((off_ms / 1000)).$(printf '%03d' $((off_ms % 1000)))"
	pid=${PIDS[${tag}_$victim]}
	what="no kill (the cycle had ended)"
	if kill -0 "$cpid" 2>/dev/null; then
		steps_done=$(grep -c "exit 0$" "$d/cycle.log" 2>/dev/null || true)
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		unset "PIDS[${tag}_$victim]"
		mv "$T/${tag}_$victim.log" "$T/${tag}_$victim.killed.log"
		up "$tag" "$victim" "$d/loom.yaml"
		what="kill -9 $victim ${off_ms}ms into step $k '${STEPS[k]}' (${at_ms}ms into the cycle; $steps_done steps done)"
	fi
	crc=0
	wait "$cpid" || crc=$?
	secs=$((SECONDS - t0))
	retried=$(grep -c "exit [1-9]" "$d/cycle.log" || true)
	if [ "$crc" -ne 0 ]; then
		echo "trial $i FAIL: $what; the cycle did not finish: $(tail -n 1 "$d/cycle.log")"
		failures=$((failures + 1))
	elif ! snap=$(snapshot "$tag" "$d"); then
		echo "trial $i FAIL: $what; cannot read the result: $snap"
		failures=$((failures + 1))
	elif out=$(compare "$T/ref" "$d"); then
		echo "trial $i ok: $what; ${secs}s, $retried runs retried"
	else
		echo "trial $i FAIL: $what; ${secs}s, $retried runs retried; differs from the reference:"
		echo "$out"
		failures=$((failures + 1))
	fi
	stack_down "$tag"
	if [ -z "${LOOM_KEEP:-}" ] && [ "$crc" -eq 0 ] && [ -z "${out:-}" ]; then
		rm -rf "$d" "$T/${tag}_"*.log
	fi
	out=
done
echo "trials: $TRIALS failures: $failures"
[ "$failures" -eq 0 ] || exit 1
exit 0
