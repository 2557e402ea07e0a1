#!/usr/bin/env bash
# bench_live.sh [CHANGES] [INTERVAL_MS] - live replication latency through
# Loom: slapd -> loom-ma-ldap (live mode, refreshAndPersist) -> engine
# (live-import, delta-sync, export) -> loom-ma-ldap -> second slapd
# (bench/README.md "bench_live"). Not a test: it prints figures.
#
# One ldapmodify process reads changes from a FIFO: change i replaces the
# description of one of 100 entries with "live-i" and its send time is
# taken when it is written to the FIFO. A refreshAndPersist ldapsearch on
# the target prints every entry as it changes there; each line is stamped
# on arrival (perl Time::HiRes). Latency = arrival - send, per change;
# p50/p90/p99/max are printed, with what the engine did. The same watcher
# on the source gives the floor: what slapd's persist notification and the
# measuring itself cost before Loom does anything.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$LOOM_SOURCE_DIR/build}
CHANGES=${1:-1000}
INTERVAL_MS=${2:-50}
WINDOW=${LOOM_BENCH_WINDOW:-0ms}
ENTRIES=100
. "$LOOM_SOURCE_DIR/tests/integration/lib.sh"
. "$LOOM_SOURCE_DIR/tests/integration/ldap/slapd.sh"
TEST_NAME=bench_live

write_config
mkdir -p "$T/agents" "$T/sync"
start_slapd "dbnosync"
seed_people "$ENTRIES"
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
PROVIDER=$SLAPD_URI

# The target: a second slapd (with syncprov, so the watcher can persist-search it).
B_PORT=$(free_port)
TARGET="ldap://127.0.0.1:$B_PORT"
mkdir -p "$T/b/db"
SLAPD_DIR=$T/b write_slapd_conf "dbnosync"
start slapd_b slapd -f "$T/b/slapd.conf" -h "$TARGET/" -d 0
wait_for "the target slapd" 20 ldapsearch -x -H "$TARGET" -b "" -s base namingContexts
ldapadd -x -H "$TARGET" -D "$ROOTDN" -w "$ROOTPW" >/dev/null <<LDIF || fail "cannot seed the target"
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people
LDIF

cat >"$T/agents/src.yaml" <<YAML
type: ldap
ldap:
  uri: $PROVIDER
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
live:
  enabled: true
  window: $WINDOW
  export: [dst]
YAML
cat >"$T/agents/dst.yaml" <<YAML
type: ldap
ldap:
  uri: $TARGET
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  connections: 1
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
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
      - { mv: description, expr: description }
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
      - { cs: description, expr: description }
YAML
MALDAP=$LOOM_BUILD_DIR/agents/loom-ma-ldap
start_broker
start_engine
start "ma_src" "$MALDAP" -c "$CFG" --agent src
start "ma_dst" "$MALDAP" -c "$CFG" --agent dst
wait_log ma_src "registered with broker"
wait_log ma_dst "registered with broker"
run_profile dst full-import
run_profile src full-import
run_profile src full-sync
run_profile dst export
run_profile dst full-import
wait_log engine "live stream up agent=src" 30

# The watchers: every change on the target, stamped on arrival; the same
# on the source, as the floor (what a persist search itself adds: slapd's
# notification and the watcher's own pipe).
watcher() {
	start "$1" bash -c "stdbuf -oL ldapsearch -x -LLL -H '$2' -D '$ROOTDN' -w '$ROOTPW' -E '!sync=rp' \
	-b 'ou=people,$SUFFIX' -s one description | perl -MTime::HiRes=time -ne '\$|=1; printf \"%.6f %s\", time, \$_ if /^description: live-/'"
}
watcher watch "$TARGET"
watcher watch_src "$PROVIDER"

# The reference: slapd's own replication, a syncrepl refreshAndPersist
# consumer of the same provider (with syncprov too, for its watcher).
C_PORT=$(free_port)
CONSUMER="ldap://127.0.0.1:$C_PORT"
mkdir -p "$T/c/db"
SLAPD_DIR=$T/c write_slapd_conf "dbnosync" \
	"syncrepl rid=001 provider=$PROVIDER bindmethod=simple binddn=\"$ROOTDN\" credentials=$ROOTPW searchbase=\"$SUFFIX\" type=refreshAndPersist retry=\"1 +\""
start slapd_c slapd -f "$T/c/slapd.conf" -h "$CONSUMER/" -d 0
wait_for "the syncrepl consumer" 20 ldapsearch -x -H "$CONSUMER" -b "" -s base namingContexts
consumer_full() { [ "$(ldapsearch -x -LLL -H "$CONSUMER" -D "$ROOTDN" -w "$ROOTPW" -b "ou=people,$SUFFIX" -s one dn 2>/dev/null | grep -c '^dn:')" = "$ENTRIES" ]; }
wait_for "the syncrepl consumer's refresh" 60 consumer_full
watcher watch_repl "$CONSUMER"
sleep 1 # the watchers' refresh phase (no change is made before they persist)

mkfifo "$T/changes"
start modify bash -c "ldapmodify -x -H '$PROVIDER' -D '$ROOTDN' -w '$ROOTPW' <'$T/changes' >/dev/null"
exec 3>"$T/changes"
echo "bench_live: $CHANGES changes, one every ${INTERVAL_MS} ms, window $WINDOW..."
t_start=$EPOCHREALTIME
: >"$T/sent"
step=$(awk -v ms="$INTERVAL_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
for ((i = 1; i <= CHANGES; i++)); do
	u=$(((i % ENTRIES) + 1))
	echo "$EPOCHREALTIME live-$i" >>"$T/sent"
	printf 'dn: uid=user%d,ou=people,%s\nchangetype: modify\nreplace: description\ndescription: live-%d\n\n' "$u" "$SUFFIX" "$i" >&3
	sleep "$step"
done
exec 3>&-
t_end=$EPOCHREALTIME
echo "bench_live: changes sent in $(awk -v a="$t_start" -v b="$t_end" -v n="$CHANGES" 'BEGIN { printf "%.1f s (%.0f/s)", b - a, n / (b - a) }')"
arrived() { [ "$(grep -c . "$T/watch.log")" -ge "$CHANGES" ] && [ "$(grep -c . "$T/watch_repl.log")" -ge "$CHANGES" ]; }
wait_for "every change on the target" 120 arrived

latencies() {
	awk 'NR == FNR { sent[$2] = $1; next }
	     { v = $3; if (v in sent && !(v in got)) { got[v] = 1; printf "%.3f\n", ($1 - sent[v]) * 1000 } }' \
		"$T/sent" "$1" | sort -n >"$2"
}
pct() { local n k; n=$(wc -l <"$2"); k=$(awk -v n="$n" -v p="$1" 'BEGIN { k = int(n * p + 0.999); print (k < 1 ? 1 : k) }'); sed -n "${k}p" "$2"; }
report() {
	local n
	n=$(wc -l <"$2")
	[ "$n" -gt 0 ] || fail "no latencies measured for $1"
	echo "bench_live: $1: $n changes; latency ms: p50 $(pct 0.50 "$2")  p90 $(pct 0.90 "$2")  p99 $(pct 0.99 "$2")  max $(tail -n1 "$2")  min $(head -n1 "$2")"
}
latencies "$T/watch.log" "$T/lat"
latencies "$T/watch_src.log" "$T/lat_src"
latencies "$T/watch_repl.log" "$T/lat_repl"
report "source slapd -> Loom -> target slapd" "$T/lat"
report "source slapd -> syncrepl consumer (refreshAndPersist)" "$T/lat_repl"
report "source slapd's own persist notification (the floor)" "$T/lat_src"
# the lines bench/report.sh reads: Loom beside syncrepl in the same run
echo "RESULT live.latency_p50 loom=$(pct 0.50 "$T/lat") peer=$(pct 0.50 "$T/lat_repl") peer_name=syncrepl unit=ms goal=<=20"
echo "RESULT live.latency_p99 loom=$(pct 0.99 "$T/lat") peer=$(pct 0.99 "$T/lat_repl") peer_name=syncrepl unit=ms goal=<=100"
runs=$(ctl runs -n 10000 | grep -c "live-import")
syncs=$(ctl runs -n 10000 | grep -cE "src +delta-sync")
echo "bench_live: engine runs: live-import $runs, delta-sync $syncs (changes coalesce while a sequence runs)"
ctl live src | sed 's/^/bench_live: /'
