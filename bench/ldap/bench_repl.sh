#!/usr/bin/env bash
# bench_repl.sh [N] - slapd -> Loom -> second slapd against slapd's own
# syncrepl replicating the same N entries into the same kind of consumer
# (bench/README.md "bench_repl"). Not a test.
#
#   syncrepl: an empty consumer slapd (refreshOnly) started against the
#             provider; timed until its contextCSN equals the provider's
#   Loom:     full import from the provider, full synchronization (projects
#             and provisions every entry), export into an empty slapd
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

write_config
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

# syncrepl.
B_PORT=$(free_port)
t0=$(now)
instance "$T/b" slapd_b "$B_PORT" \
	"syncrepl rid=001 provider=$PROVIDER bindmethod=simple binddn=\"$ROOTDN\" credentials=$ROOTPW searchbase=\"$SUFFIX\" type=refreshOnly interval=00:00:10:00 retry=\"1 +\""
caught_up() { [ "$(csn "ldap://127.0.0.1:$B_PORT")" = "$want_csn" ]; }
wait_for "the syncrepl consumer to catch up" 600 caught_up
t1=$(now)
sr_s=$(secs "$t0" "$t1")
got=$(ldapsearch -x -LLL -H "ldap://127.0.0.1:$B_PORT" -D "$ROOTDN" -w "$ROOTPW" -E pr=1000/noprompt -b "ou=people,$SUFFIX" -s one dn | grep -c '^dn:')
[ "$got" = "$N" ] || fail "the syncrepl consumer holds $got entries, want $N"
stop slapd_b

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
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
done
cat >"$T/sync/repl.yaml" <<'YAML'
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
  - name: to-dst
    direction: outbound
    agent: dst
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=people,dc=example,dc=com"'
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
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
t0=$(now)
run_profile src full-import
expect_counter adds "$N"
t1=$(now)
run_profile src full-sync
expect_counter provisioned "$N"
t2=$(now)
run_profile dst export
expect_counter exported-adds "$N"
t3=$(now)
lo_s=$(secs "$t0" "$t3")
echo
echo "replication of $N entries into an empty slapd"
printf '  %-40s %8ss %8s/s\n' "syncrepl (refreshOnly consumer)" "$sr_s" "$(rate "$N" "$sr_s")"
printf '  %-40s %8ss %8s/s  (%s%% of syncrepl)\n' "Loom: import + sync + export" "$lo_s" "$(rate "$N" "$lo_s")" \
	"$(awk -v a="$sr_s" -v b="$lo_s" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf '  %-40s %8ss\n' "  full import" "$(secs "$t0" "$t1")"
printf '  %-40s %8ss\n' "  full synchronization" "$(secs "$t1" "$t2")"
printf '  %-40s %8ss\n' "  export" "$(secs "$t2" "$t3")"
