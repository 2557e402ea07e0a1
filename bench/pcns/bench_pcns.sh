#!/usr/bin/env bash
# bench_pcns.sh [CHANGES] [RATE] [USERS] - password synchronization latency
# through the whole chain (bench/README.md "bench_pcns"): a source slapd's
# sock overlay -> loom-pcns-notify (seal, spool, deliver) -> loom-pcns
# (store, hand over) -> loom-engine (match, re-seal, record) ->
# loom-ma-ldap (Password Modify) -> the target slapd. loom-bench-pcns fires
# CHANGES Password Modify operations at the source at RATE per second and
# takes the arrival from the target's own sock overlay (its RESULT, code
# 0): p50/p90/p99/max, lost, applied twice. Not a test: it prints figures.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
CHANGES=${1:-10000}
RATE=${2:-100}
USERS=${3:-$CHANGES}
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/ldap/slapd.sh"
. "$LOOM_SOURCE_DIR/tests/integration/pcns/lib_pcns.sh"
TEST_NAME=bench_pcns
FIRE=$LOOM_BUILD_DIR/bench/loom-bench-pcns

write_config
mkdir -p "$T/agents" "$T/sync"
slapd_certs
users_ldif() {
	awk -v n="$USERS" -v s="$SUFFIX" 'BEGIN {
		printf "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", s
		printf "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n", s
		for (i = 1; i <= n; i++)
			printf "dn: uid=user%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: N%d\n\n", i, s, i, i, i
	}' >"$T/users.ldif"
}
users_ldif
# name, sock overlay socket: the slapd with its users loaded offline
slapd_for() {
	local name=$1 sockpath=$2 upper
	upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	mkdir -p "$T/$name/db"
	mapfile -t sock < <(slapd_sock_lines "$sockpath")
	# the target's overlay only measures: Password Modify and results, not
	# the modify slapd makes of it (one socket round trip less per change)
	[ "$name" = dst ] && sock[3]="sockops extended"
	SLAPD_MODULES=back_sock.so SLAPD_DIR=$T/$name write_slapd_conf "${LOOM_BENCH_SLAPD_EXTRA:-}" "${sock[@]}"
	slapadd -q -f "$T/$name/slapd.conf" -l "$T/users.ldif" >"$T/slapadd-$name.out" 2>&1 ||
		{ cat "$T/slapadd-$name.out" >&2; fail "slapadd $name"; }
	local port uri
	port=$(free_port)
	uri="ldap://127.0.0.1:$port"
	printf -v "${upper}_URI" '%s' "$uri"
	start "$name" slapd -f "$T/$name/slapd.conf" -h "$uri/" -d 0
	wait_for "slapd $name" 30 ldapsearch -x -H "$uri" -b "" -s base namingContexts
}
slapd_for src "$T/pw.sock"
slapd_for dst "$T/dst.sock"
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
for a in src dst; do
	uri=$SRC_URI
	[ "$a" = dst ] && uri=$DST_URI
	cat >"$T/agents/$a.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $uri
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  page_size: 1000
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync:
  enabled: $([ "$a" = dst ] && echo true || echo false)
  match: [dn]
YAML
done
cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: src-in
    direction: inbound
    agent: src
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
    project: true
    flows:
      - { mv: uid, expr: uid }
  - name: dst-in
    direction: inbound
    agent: dst
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: uid, mv: uid } ] } ]
YAML
PCNS_NOTIFY_EXTRA="slapd: { socket: $T/pw.sock }
in_flight: 512
queue_warning: 100000"
PCNS_RETRY=1s
pcns_setup
ctl keys gen ma.dst >/dev/null || fail "keys gen ma.dst"
start_notify
start_broker
start_engine
start_ldap_agent src
start_ldap_agent dst
for a in src dst; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
start_pcns
echo "== $USERS users joined in src and dst; firing $CHANGES changes at $RATE/s"
"$FIRE" --source "$SRC_URI" --binddn "$ROOTDN" --bindpw "$ROOTPW" --base "ou=people,$SUFFIX" --users "$USERS" \
	--changes "$CHANGES" --rate "$RATE" --sock "$T/dst.sock" --wait 30 --trace "$T/trace.txt"
rc=$?
spooled=$(ls "$T/state/pcns-spool" | grep -cE '\.chgs?$')
echo "notifier spool left: $spooled; listener:"
ctl pcns status | sed -n '2,4p'
ctl report password-sync -n 1 | head -1
echo "peak RSS (kB): $(for p in notify pcns engine ma_dst; do printf '%s=%s ' "$p" "$(awk '/VmHWM/{print $2}' /proc/${PIDS[$p]}/status 2>/dev/null)"; done)"
exit $rc
