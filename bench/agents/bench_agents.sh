#!/usr/bin/env bash
# bench_agents.sh [N] - import and export objects/s of every agent type of
# issue 10, for N objects (default 100000), in one run with the real
# broker, engine and agents (bench/README.md "bench_agents"). Not a test:
# it fails only when something breaks.
#
# An HR CSV of N people is imported and projected, and provisioned into one
# target per agent: csv, ldif, dsml, fixed, avp (loom-ma-file), sqlite and
# postgresql (loom-ma-sql; PostgreSQL in a temp dir, as in the tests) and
# ext (loom-ma-ext running bench/agents/ext_null.py, the cheapest program
# that speaks the protocol). Then, per target:
#   export       loomctl run TARGET export      (N adds)
#   import       loomctl run TARGET full-import (the N objects it just
#                wrote; the export is confirmed)
# For each step: seconds and objects/s end to end (engine included), and
# the CPU seconds the agent process used (and the PostgreSQL server's
# backends), from /proc: objects per agent-CPU-second is the agent's own
# cost, free of the engine's.
#
# BENCH_AGENTS="csv dsml" limits the targets; LOOM_BUILD_DIR (default
# build/) picks the build tree. Build RelWithDebInfo first.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
N=${1:-100000}
TARGETS=${BENCH_AGENTS:-csv ldif dsml fixed avp sqlite postgresql ext}
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/sql/db.sh"
TEST_NAME=bench_agents
MASQL=$LOOM_BUILD_DIR/agents/loom-ma-sql
MAEXT=$LOOM_BUILD_DIR/agents/loom-ma-ext
TICK=$(getconf CLK_TCK)

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# cpu PID... : CPU seconds (user + system) used so far by the processes
cpu() {
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	awk -v t="$t" -v k="$TICK" 'BEGIN { printf "%.2f", t / k }'
}
pg_pids() { [ -n "${PIDS[pg]:-}" ] && { echo "${PIDS[pg]}"; pgrep -P "${PIDS[pg]}"; }; }

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
echo "bench_agents: N=$N targets: $TARGETS"
awk -v n="$N" 'BEGIN { print "employeeId,givenName,sn,title"; for (i = 1; i <= n; i++) printf "%d,Given%d,Sur%d,Engineer\n", 100000 + i, i, i }' \
	>"$T/data/hr.csv"
common="import_batch: 1000
import_credit: 64
timeout: 600s
deletion_threshold: { count: 0, percent: 0 }"
printf 'type: file\nobject_type: person\nanchor: employeeId\n%s\nfile: { format: csv, path: ../data/hr.csv }\n' "$common" \
	>"$T/agents/src.yaml"
{
	cat <<'YAML'
rules:
  - name: src-in
    direction: inbound
    agent: src
    cs_type: person
    mv_type: person
    project: true
    join: [ { match: [ { cs: employeeId, mv: employeeId } ] } ]
    flows:
      - { mv: employeeId, expr: employeeId }
      - { mv: givenName, expr: givenName }
      - { mv: sn, expr: sn }
      - { mv: title, expr: title }
YAML
	for a in $TARGETS; do
		cat <<YAML
  - name: to-$a
    direction: outbound
    agent: $a
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=u" + employeeId'
    flows:
      - { cs: uid, expr: '"u" + employeeId', initial: true }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: sn, expr: sn }
      - { cs: mail, expr: '"u" + employeeId + "@example.com"' }
      - { cs: title, expr: title }
      - { cs: employeeNumber, expr: employeeId }
YAML
	done
} >"$T/sync/bench.yaml"

ACCOUNT='(uid TEXT PRIMARY KEY, cn TEXT, sn TEXT, mail TEXT, title TEXT, "employeeNumber" TEXT)'
for a in $TARGETS; do
	f=$T/agents/$a.yaml
	printf 'object_type: person\nanchor: uid\n%s\n' "$common" >"$f"
	case $a in
	csv | ldif | dsml | avp)
		ext=$a
		[ "$a" = dsml ] && ext=xml
		printf 'type: file\nfile: { format: %s, path: ../data/out.%s, dn_attribute: uid }\n' "$a" "$ext" >>"$f"
		;;
	fixed)
		cat >>"$f" <<'YAML'
type: file
file:
  format: fixed
  path: ../data/out.txt
  dn_attribute: uid
  fixed:
    columns:
      - { name: uid, width: 10 }
      - { name: cn, width: 26 }
      - { name: sn, width: 12 }
      - { name: mail, width: 24 }
      - { name: title, width: 10 }
      - { name: employeeNumber, width: 8 }
YAML
		;;
	sqlite)
		db_init sqlite
		dbx bench "PRAGMA journal_mode = WAL; CREATE TABLE account $ACCOUNT"
		{ echo "type: sql"; echo "sql:"; db_conf bench; echo "  tables: [ { object_type: person, table: account, anchor: uid } ]"; } >>"$f"
		;;
	postgresql)
		db_init postgresql
		start_postgres
		dbx app "CREATE TABLE account $ACCOUNT"
		{ echo "type: sql"; echo "sql:"; db_conf app; echo "  tables: [ { object_type: person, table: account, anchor: uid } ]"; } >>"$f"
		;;
	ext)
		printf 'type: ext\next: { command: [python3, %s, --objects, "%s"], timeout: 120s }\n' "$here/ext_null.py" "$N" >>"$f"
		;;
	*) fail "unknown target '$a'" ;;
	esac
done

start_broker
start_engine
start_agent src
for a in $TARGETS; do
	case $a in
	sqlite | postgresql) bin=$MASQL ;;
	ext) bin=$MAEXT ;;
	*) bin=$MAFILE ;;
	esac
	start "ma_$a" "$bin" -c "$CFG" --agent "$a"
	wait_log "ma_$a" "registered with broker"
done

# step AGENT PROFILE COUNTER : runs it, prints its line, keeps the figures
declare -A IMP EXP
step() {
	local a=$1 prof=$2 ctr=$3 c0 c1 s0 s1 t0 t1 s
	c0=$(cpu "${PIDS[ma_$a]}")
	s0=$(cpu $(pg_pids))
	t0=$(now)
	run_profile "$a" "$prof"
	t1=$(now)
	c1=$(cpu "${PIDS[ma_$a]}")
	s1=$(cpu $(pg_pids))
	expect_counter "$ctr" "$N"
	s=$(secs "$t0" "$t1")
	local acpu scpu line
	acpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
	scpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')
	line=$(printf '%9ss %9s/s  agent cpu %7ss %10s/cpu-s' "$s" "$(rate "$N" "$s")" "$acpu" "$(rate "$N" "$acpu")")
	[ "$a" = postgresql ] && line="$line  (server cpu ${scpu}s)"
	printf '%-12s %-12s %s\n' "$a" "$prof" "$line"
	if [ "$prof" = export ]; then EXP[$a]=$line; else IMP[$a]=$line; fi
}

echo
step src full-import adds
t0=$(now)
run_profile src full-sync
t1=$(now)
expect_counter projected "$N"
echo "src full-sync: $(secs "$t0" "$t1")s (projection and provisioning into every target)"
for a in $TARGETS; do
	step "$a" export exported-adds
	step "$a" full-import export-confirmed
done

echo
echo "summary: $N objects, end to end (engine included) and per agent CPU second"
printf '%-12s %-64s %s\n' agent import export
for a in $TARGETS; do
	printf '%-12s %-64s %s\n' "$a" "$(echo "${IMP[$a]}" | sed 's/  */ /g')" "$(echo "${EXP[$a]}" | sed 's/  */ /g')"
done
[ -n "${PIDS[pg]:-}" ] && stop pg INT
exit 0
