#!/usr/bin/env bash
# bench_repl.sh [N] - slapd -> Loom -> second slapd against slapd's own
# syncrepl replicating the same N entries into the same kind of consumer
# (bench/README.md "bench_repl"). Not a test.
#
#   syncrepl: an empty consumer slapd (refreshOnly) started against the
#             provider; timed until its contextCSN equals the provider's.
#             Measured twice, before and after Loom, on fresh consumers;
#             Loom is compared with the faster of the two.
#   Loom:     full import from the provider, full synchronization (projects
#             and provisions every entry), export into an empty slapd
#             (export_anchor: import, LOOM_BENCH_EXPORT_ANCHOR=post-read for
#             the anchors in the adds' responses); then, untimed for the
#             comparison but printed, the target's confirming import
#
# Per step it prints the CPU seconds of every process involved (from
# /proc/PID/stat), so that where the time goes can be read off one run.
# LOOM_BENCH_PERF=DIR records `perf record -g` of the engine, the export
# agent and the target slapd during each Loom step into DIR
# (LOOM_BENCH_PERF_OPTS: perf's options, default -g).
# LOOM_BENCH_LOGLEVEL=none gives every slapd (provider and both consumers)
# `loglevel none`, Debian's packaged default; without it they log at
# slapd's built-in level, stats: two lines per client operation, which a
# syncrepl consumer's own writes do not log.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
N=${1:-100000}
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/ldap/slapd.sh"
TEST_NAME=bench_repl

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
TCK=$(getconf CLK_TCK)
# cpu PID : CPU seconds (user + system, every thread) so far
cpu() { awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_snap NAME... : "name=seconds" of each running process, in CPU_SNAP
cpu_snap() {
	CPU_SNAP=
	local n
	for n in "$@"; do CPU_SNAP+="$n=$(cpu "${PIDS[$n]}") "; done
}
# cpu_diff NAME... : the CPU each used since the last cpu_snap
cpu_diff() {
	local n before out=
	for n in "$@"; do
		before=$(printf '%s\n' $CPU_SNAP | sed -n "s/^$n=//p")
		out+=$(awk -v n="$n" -v a="${before:-0}" -v b="$(cpu "${PIDS[$n]}")" 'BEGIN { printf "%s %.2f  ", n, b - a }')
	done
	echo "$out"
}
PERF_PIDS=()
perf_start() {
	[ -n "${LOOM_BENCH_PERF:-}" ] || return 0
	mkdir -p "$LOOM_BENCH_PERF"
	local n
	for n in engine ma_dst slapd_c; do
		# shellcheck disable=SC2086 # options, split on purpose
		perf record -q ${LOOM_BENCH_PERF_OPTS:--g} -o "$LOOM_BENCH_PERF/$1.$n.data" -p "${PIDS[$n]}" >/dev/null 2>&1 &
		PERF_PIDS+=($!)
	done
}
perf_stop() {
	local p
	for p in "${PERF_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PERF_PIDS=()
}

write_config
export SLAPD_LOGLEVEL=${LOOM_BENCH_LOGLEVEL:-}
mkdir -p "$T/agents" "$T/sync"
start_slapd "dbnosync"
stop slapd
echo "bench_repl: N=$N, slapadd..."
slapadd_people "$N"
restart_slapd
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
PROVIDER=$SLAPD_URI

csn() { ldapsearch -x -LLL -H "$1" -D "$ROOTDN" -w "$ROOTPW" -b "$SUFFIX" -s base contextCSN 2>/dev/null | sed -n 's/^contextCSN: //p'; }
want_csn=$(csn "$PROVIDER")
[ -n "$want_csn" ] || fail "the provider has no contextCSN"

# An instance DIR NAME PORT [extra lines] (no syncprov: a consumer).
instance() {
	local dir=$1 name=$2 port=$3
	shift 3
	mkdir -p "$dir/db"
	SLAPD_DIR=$dir SLAPD_NO_SYNCPROV=1 write_slapd_conf "dbnosync" "$@"
	start "$name" slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0
	wait_for "$name" 20 ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base namingContexts
}

# syncrepl into a fresh empty consumer; sets SR_S (seconds) and SR_CPU.
syncrepl_run() {
	local dir=$T/b$1 port
	port=$(free_port)
	cpu_snap slapd
	local t0
	t0=$(now)
	instance "$dir" slapd_b "$port" \
		"syncrepl rid=001 provider=$PROVIDER bindmethod=simple binddn=\"$ROOTDN\" credentials=$ROOTPW searchbase=\"$SUFFIX\" type=refreshOnly interval=00:00:10:00 retry=\"1 +\""
	caught_up() { [ "$(csn "ldap://127.0.0.1:$port")" = "$want_csn" ]; }
	wait_for "the syncrepl consumer to catch up" 600 caught_up
	local t1
	t1=$(now)
	SR_S=$(secs "$t0" "$t1")
	SR_CPU="$(cpu_diff slapd slapd_b)"
	local got
	got=$(ldapsearch -x -LLL -H "ldap://127.0.0.1:$port" -D "$ROOTDN" -w "$ROOTPW" -E pr=1000/noprompt -b "ou=people,$SUFFIX" -s one dn | grep -c '^dn:')
	[ "$got" = "$N" ] || fail "the syncrepl consumer holds $got entries, want $N"
	stop slapd_b
}
syncrepl_run 1
SR1_S=$SR_S SR1_CPU=$SR_CPU

# Loom into an empty slapd.
C_PORT=$(free_port)
instance "$T/c" slapd_c "$C_PORT"
ldapadd -x -H "ldap://127.0.0.1:$C_PORT" -D "$ROOTDN" -w "$ROOTPW" >/dev/null <<LDIF || fail "cannot seed the target"
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people
LDIF
# (LOOM_BENCH_EXPORT_ANCHOR=omit writes no export_anchor key: for binaries
# older than it, whose adds ask for post-read.)
EXPORT_ANCHOR_LINE="  export_anchor: ${LOOM_BENCH_EXPORT_ANCHOR:-import}"
[ "${LOOM_BENCH_EXPORT_ANCHOR:-}" != omit ] || EXPORT_ANCHOR_LINE=
for a in src:$PROVIDER dst:ldap://127.0.0.1:$C_PORT; do
	cat >"$T/agents/${a%%:*}.yaml" <<YAML
type: ldap
import_batch: 1000
import_credit: 8
timeout: 300s
ldap:
  uri: ${a#*:}
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 1000
  connections: ${LOOM_BENCH_CONNECTIONS:-4}
  in_flight: ${LOOM_BENCH_IN_FLIGHT:-16}
$EXPORT_ANCHOR_LINE
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
done
# The target's entries are the provider's: objectClass flows from the
# source entry as the other attributes do (inetOrgPerson, as syncrepl
# copies it). LOOM_BENCH_OBJECTCLASS=fixed sends the four classes
# top, person, organizationalPerson, inetOrgPerson instead (three more
# objectClass index keys per entry in the target).
if [ "${LOOM_BENCH_OBJECTCLASS:-source}" = fixed ]; then
	OC_IN=
	OC_OUT="'Split(\"top,person,organizationalPerson,inetOrgPerson\", \",\")'"
else
	OC_IN="      - { mv: objectClass, expr: objectClass }"
	OC_OUT=objectClass
fi
cat >"$T/sync/repl.yaml" <<YAML
rules:
  - name: src-in
    direction: inbound
    agent: src
    cs_type: person
    mv_type: person
    project: true
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    flows:
      - { mv: uid, expr: uid }
      - { mv: cn, expr: cn }
      - { mv: sn, expr: sn }
      - { mv: mail, expr: mail }
      - { mv: employeeNumber, expr: employeeNumber }
$OC_IN
  - name: to-dst
    direction: outbound
    agent: dst
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: $OC_OUT, initial: true }
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: cn }
      - { cs: sn, expr: sn }
      - { cs: mail, expr: mail }
      - { cs: employeeNumber, expr: employeeNumber }
YAML
start_broker
start_engine
start_ldap_agent src
start_ldap_agent dst
PROCS="engine ma_src ma_dst broker slapd slapd_c"
step() { # NAME AGENT PROFILE COUNTER
	cpu_snap $PROCS
	perf_start "$1"
	local t0
	t0=$(now)
	run_profile "$2" "$3"
	expect_counter "$4" "$N"
	STEP_S=$(secs "$t0" "$(now)")
	perf_stop
	STEP_CPU=$(cpu_diff $PROCS)
}
step import src full-import adds
IMP_S=$STEP_S IMP_CPU=$STEP_CPU
step sync src full-sync provisioned
SYN_S=$STEP_S SYN_CPU=$STEP_CPU
step export dst export exported-adds
EXP_S=$STEP_S EXP_CPU=$STEP_CPU
# The confirming import of the target (FIM's): with export_anchor: import
# it is where the engine learns the new entries' anchors. Not part of the
# comparison (the target holds every entry before it), printed beside it.
step confirm dst full-import export-confirmed
CON_S=$STEP_S CON_CPU=$STEP_CPU
expect_counter adds 0
lo_s=$(awk -v a="$IMP_S" -v b="$SYN_S" -v c="$EXP_S" 'BEGIN { printf "%.3f", a + b + c }')
stop ma_src
stop ma_dst
stop engine
stop broker
stop slapd_c

syncrepl_run 2
SR2_S=$SR_S SR2_CPU=$SR_CPU
sr_s=$(awk -v a="$SR1_S" -v b="$SR2_S" 'BEGIN { print (a < b ? a : b) }')

echo
echo "replication of $N entries into an empty slapd (slapd loglevel ${LOOM_BENCH_LOGLEVEL:-stats, the default}; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  %-40s %8ss %8s/s\n' "syncrepl (refreshOnly consumer), before" "$SR1_S" "$(rate "$N" "$SR1_S")"
printf '  %-40s %8ss %8s/s\n' "syncrepl, after" "$SR2_S" "$(rate "$N" "$SR2_S")"
printf '  %-40s %8ss %8s/s  (%s%% of syncrepl'"'"'s faster run)\n' "Loom: import + sync + export" "$lo_s" "$(rate "$N" "$lo_s")" \
	"$(awk -v a="$sr_s" -v b="$lo_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
echo "RESULT repl.$N.objects_per_s loom=$(rate "$N" "$lo_s") peer=$(rate "$N" "$sr_s") peer_name=syncrepl unit=objects/s goal=ratio>=1"
printf '  %-40s %8ss\n' "  full import" "$IMP_S"
printf '  %-40s %8ss\n' "  full synchronization" "$SYN_S"
printf '  %-40s %8ss\n' "  export" "$EXP_S"
printf '  %-40s %8ss  (export_anchor: %s; not in the total)\n' "  then the target's confirming import" "$CON_S" \
	"${LOOM_BENCH_EXPORT_ANCHOR:-import}"
echo "cpu seconds (provider slapd, consumer slapd_b / Loom's engine, agents, broker, provider, target slapd_c):"
echo "  syncrepl before: $SR1_CPU"
echo "  syncrepl after:  $SR2_CPU"
echo "  full import:     $IMP_CPU"
echo "  full sync:       $SYN_CPU"
echo "  export:          $EXP_CPU"
echo "  confirm import:  $CON_CPU"
