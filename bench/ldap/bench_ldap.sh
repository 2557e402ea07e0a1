#!/usr/bin/env bash
# bench_ldap.sh [N] - loom-ma-ldap against slapd's own tools, in the same run
# on the same slapd (bench/README.md "bench_ldap"). Not a test.
#
#   import: the agent's full import (paged results, streamed to the engine)
#           against `ldapsearch -E pr=1000/noprompt` of the same N entries
#   export: the agent adding N provisioned entries (loomctl run ... export)
#           against 4 parallel ldapadd streams adding N equivalent entries
#
# Uses the integration tests' helpers (slapd in a temp dir on 127.0.0.1,
# stopped by PID). Build first: scripts/build.sh build (RelWithDebInfo).
# LOOM_BUILD_DIR (default build/) picks the build tree.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
N=${1:-100000}
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/ldap/slapd.sh"
TEST_NAME=bench_ldap

now() { date +%s.%N; }
# result NAME LOOM PEER PEER_NAME UNIT GOAL : the line bench/report.sh reads
result() { echo "RESULT $1 loom=$2 peer=$3 peer_name=$4 unit=$5 goal=$6"; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_slapd "dbnosync"
stop slapd
echo "bench_ldap: N=$N, slapadd..."
slapadd_people "$N"
restart_slapd
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add the OUs"
dn: ou=loom,$SUFFIX
objectClass: organizationalUnit
ou: loom

dn: ou=tools,$SUFFIX
objectClass: organizationalUnit
ou: tools
LDIF
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
import_batch: 1000
import_credit: 100
timeout: 120s
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 1000
  connections: 4
  in_flight: 16
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=loom,$SUFFIX", scope: one }
YAML
cat >"$T/agents/hr.yaml" <<YAML
type: file
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/sync/bench.yaml" <<'YAML'
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
      - { mv: sn, expr: sn }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=b" + employeeId + ",ou=loom,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: '"b" + employeeId', initial: true }
      - { cs: cn, expr: '"Bench " + employeeId' }
      - { cs: sn, expr: sn }
      - { cs: mail, expr: '"b" + employeeId + "@example.com"' }
      - { cs: employeeNumber, expr: employeeId }
YAML
awk -v n="$N" 'BEGIN { print "employeeId,sn"; for (i = 1; i <= n; i++) printf "%d,Bench%d\n", i, i }' >"$T/data/hr.csv"
start_broker
start_engine
start_agent hr
start_ldap_agent dir

# Import.
t0=$(now)
ldap_admin ldapsearch -E pr=1000/noprompt -b "ou=people,$SUFFIX" -s one '(objectClass=*)' '*' entryUUID >"$T/dump.ldif" ||
	fail "ldapsearch failed"
t1=$(now)
got=$(grep -c '^dn: ' "$T/dump.ldif")
[ "$got" = "$N" ] || fail "ldapsearch returned $got entries"
ls_s=$(secs "$t0" "$t1")
t0=$(now)
run_profile dir full-import
t1=$(now)
expect_counter adds "$N"
loom_s=$(secs "$t0" "$t1")
agent_ms=$(sed -n 's/.*import sent run=[0-9]* mode=full objects=[0-9]* errors=0 batches=[0-9]* ms=\([0-9]*\).*/\1/p' "$T/ma_dir.log" | tail -1)
agent_s=$(awk -v m="$agent_ms" 'BEGIN { printf "%.3f", m / 1000 }')
echo
echo "import of $N entries"
printf '  %-44s %8ss %9s/s\n' "ldapsearch -E pr=1000/noprompt" "$ls_s" "$(rate "$N" "$ls_s")"
printf '  %-44s %8ss %9s/s  (%s%% of ldapsearch)\n' "loom-ma-ldap full import, agent side" "$agent_s" "$(rate "$N" "$agent_s")" \
	"$(awk -v a="$ls_s" -v b="$agent_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf '  %-44s %8ss %9s/s  (%s%% of ldapsearch)\n' "loomctl run full-import, end to end" "$loom_s" "$(rate "$N" "$loom_s")" \
	"$(awk -v a="$ls_s" -v b="$loom_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
result "ldap.$N.import_agent" "$(rate "$N" "$agent_s")" "$(rate "$N" "$ls_s")" ldapsearch objects/s "ratio>=0.8"
result "ldap.$N.import_end_to_end" "$(rate "$N" "$loom_s")" "$(rate "$N" "$ls_s")" ldapsearch objects/s "ratio>=0.8"

# Export: N provisioned adds against 4 ldapadd streams of N equivalent adds.
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned "$N"
for k in 0 1 2 3; do
	awk -v n="$N" -v k="$k" -v s="$SUFFIX" 'BEGIN {
		for (i = 1; i <= n; i++) if (i % 4 == k)
			printf "dn: uid=t%d,ou=tools,%s\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: t%d\ncn: Bench %d\nsn: Bench%d\nmail: t%d@example.com\nemployeeNumber: %d\n\n", i, s, i, i, i, i, i
	}' >"$T/add$k.ldif"
done
t0=$(now)
pids=()
for k in 0 1 2 3; do
	ldap_admin ldapadd -f "$T/add$k.ldif" >/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "ldapadd failed"; done
t1=$(now)
lm_s=$(secs "$t0" "$t1")
t0=$(now)
run_profile dir export
t1=$(now)
expect_counter exported-adds "$N"
ex_s=$(secs "$t0" "$t1")
agent_ms=$(sed -n 's/.*export done run=[0-9]* applied=[0-9]* ms=\([0-9]*\).*/\1/p' "$T/ma_dir.log" | tail -1)
agent_s=$(awk -v m="$agent_ms" 'BEGIN { printf "%.3f", m / 1000 }')
echo
echo "export of $N adds"
printf '  %-44s %8ss %9s/s\n' "4 parallel ldapadd" "$lm_s" "$(rate "$N" "$lm_s")"
printf '  %-44s %8ss %9s/s  (%s%% of ldapadd)\n' "loom-ma-ldap export, agent side" "$agent_s" "$(rate "$N" "$agent_s")" \
	"$(awk -v a="$lm_s" -v b="$agent_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf '  %-44s %8ss %9s/s  (%s%% of ldapadd)\n' "loomctl run export, end to end" "$ex_s" "$(rate "$N" "$ex_s")" \
	"$(awk -v a="$lm_s" -v b="$ex_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
result "ldap.$N.export_agent" "$(rate "$N" "$agent_s")" "$(rate "$N" "$lm_s")" 4xldapadd objects/s "ratio>=0.8"
result "ldap.$N.export_end_to_end" "$(rate "$N" "$ex_s")" "$(rate "$N" "$lm_s")" 4xldapadd objects/s "ratio>=0.8"
