#!/usr/bin/env bash
# Loom across hosts (docs/deploy.md): four network namespaces made here, each
# a "host" with one veth link to a bridge in a fifth (the switch), private
# 10.77.0.0/24 addresses that exist only inside them:
#
#   hb 10.77.0.1  loomd --host hb: loom-broker
#   he 10.77.0.2  loomd --host he: loom-engine, loom-workflow
#   ha 10.77.0.3  loomd --host ha: loom-ma-file (hr), loom-ma-ldap (dir), and slapd on its own 127.0.0.1
#   hp 10.77.0.4  loomd --host hp: loom-pcns
#
# All bus traffic is tcp with CURVE. Checked: `loomctl status` shows every
# process on every host; a full cycle (HR CSV import -> sync -> export to
# slapd -> confirming import) works; a password change handed to the
# notifier on ha reaches slapd through loom-pcns on hp and the engine on he; a process with a key that is not in the
# allow-list is refused and the refusal logged with its address; the agents
# host's link is cut (ip link set down) while an export runs and restored,
# and slapd ends up holding exactly what the same cycle without the cut put
# there (nothing lost, nothing twice). Everything runs twice on fresh state
# and a fresh slapd: once without the cut (the reference), once with it.
#
# Needs root for ip netns (exit 77 with the reason when namespaces cannot be
# made here). The namespaces are deleted by the exit trap.
. "$(dirname "$0")/lib.sh"

N=${LOOM_HOSTS_OBJECTS:-4000}
# the link is cut after the first export batch (1000 changes): more must follow
[ "$N" -ge 2000 ] || { echo "hosts_netns: LOOM_HOSTS_OBJECTS must be at least 2000, not $N" >&2; exit 2; }
LOOMD=$LOOM_BUILD_DIR/cli/loomd
P=lh$$
SW=${P}sw
HOSTS=(hb he ha hp)
declare -A ADDR=([hb]=10.77.0.1 [he]=10.77.0.2 [ha]=10.77.0.3 [hp]=10.77.0.4)
NSLIST=()

ns_exit() {
	local rc=$?
	# A namespace's mount goes now; the namespace itself (and its veth)
	# when the last process in it exits, which lib.sh's cleanup sees to.
	for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
	(exit "$rc")
	cleanup
}
trap ns_exit EXIT

# The probe does what the test needs: a named namespace that `ip -n` can
# enter (in a chroot whose / is no mount point, `ip netns add` prints
# "mount --make-rslave / failed" and the namespace cannot be entered), a
# bridge and a veth pair in it.
probe_netns() {
	command -v ip >/dev/null || { echo "no ip command (iproute2)"; return 1; }
	ip netns add "${P}probe" 2>&1 || return 1
	ip -n "${P}probe" link add "${P}br" type bridge 2>&1 &&
	ip -n "${P}probe" link add "${P}va" type veth peer name "${P}vb" 2>&1
	local rc=$?
	ip netns del "${P}probe" 2>/dev/null
	return $rc
}
if ! probe_netns >"$T/netns.err" 2>&1; then
	echo "skip hosts_netns: cannot build network namespaces with a bridge and veth links here: $(tr '\n' ' ' <"$T/netns.err")" >&2
	trap - EXIT # nothing started yet: nothing to keep
	rm -rf "$T"
	exit 77
fi
command -v slapd >/dev/null || { echo "skip hosts_netns: slapd is not installed" >&2; trap - EXIT; rm -rf "$T"; exit 77; }

in_ns() { local h=$1; shift; ip netns exec "$P$h" "$@"; }

# The switch and the hosts.
ip netns add "$SW" && NSLIST+=("$SW") || fail "ip netns add $SW"
ip -n "$SW" link add br0 type bridge || fail "bridge"
ip -n "$SW" link set br0 up
ip -n "$SW" link set lo up
for h in "${HOSTS[@]}"; do
	ip netns add "$P$h" && NSLIST+=("$P$h") || fail "ip netns add $P$h"
	ip link add eth0 netns "$P$h" type veth peer name "v$h" netns "$SW" || fail "veth for $h"
	ip -n "$SW" link set "v$h" master br0 up
	ip -n "$P$h" addr add "${ADDR[$h]}/24" dev eth0
	ip -n "$P$h" link set eth0 up
	ip -n "$P$h" link set lo up
done
ip netns exec "$P"ha ip -4 addr show eth0 | grep -q "10.77.0.3/24" || fail "no address in ha"
ip -4 addr show | grep -q "10.77.0." && fail "a 10.77 address leaked into the test's own namespace"
pass "4 hosts as network namespaces on a bridge, 10.77.0.1-4 inside them only"

B=${ADDR[hb]}
write_config "router: tcp://$B:7201" "publish: tcp://$B:7202" "subscribe: tcp://$B:7203" "tap: tcp://$B:7204" "curve: true"
# 2 s of silence before a peer counts as gone (lib.sh's 1 s is too short
# for a sanitizer build's engine opening its store)
sed -i 's/^  liveness: 5$/  liveness: 10/' "$CFG"
grep -q '^  liveness: 10$' "$CFG" || fail "liveness not set"
cat >>"$CFG" <<YAML
supervisor: { restart_min: 200ms, restart_max: 2s, fast_crash: 2s, give_up: 5, stop_timeout: 15s }
hosts:
  - { name: hb, processes: [broker] }
  - { name: he, processes: [engine, workflow] }
  - { name: ha, processes: [agents] }
  - { name: hp, processes: [pcns] }
YAML
for k in broker engine workflow ma.hr ma.dir pcns loomctl loomd.hb loomd.he loomd.ha loomd.hp dc1; do
	ctl keys gen "$k" >/dev/null || fail "keys gen $k"
done
for k in intruder ma.rogue; do
	ctl keys gen "$k" >/dev/null || fail "keys gen $k"
	mv "$T/keys/$k.pub" "$T/$k.pub"
done

mkdir -p "$T/agents" "$T/sync" "$T/policy" "$T/data"
cp "$LOOM_SOURCE_DIR"/config/policy/*.yaml "$T/policy/"
cat >"$T/pcns.yaml" <<YAML
listen: tcp://${ADDR[hp]}:5990
notifiers:
  dc1: { key: keys/dc1.pub, agent: hr }
retry_interval: 500ms
YAML
# The notifier (the directory's side) runs on ha beside slapd; its listener is hp.
NOTIFY=$LOOM_BUILD_DIR/pcns/loom-pcns-notify
printf 'name: dc1\nretry_initial: 200ms\nretry_max: 2s\nack_timeout: 3s\n' >"$T/pcns-notify.yaml"
ctl pcns target add primary --endpoint "tcp://${ADDR[hp]}:5990" --key "$T/keys/pcns.pub" >/dev/null || fail "pcns target add"
. "$(dirname "$0")/ldap/slapd.sh"
SLAPD_URI="ldap://127.0.0.1:3890"
slapd_certs
cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
password_sync: { enabled: false, match: [anchor, account], account_attribute: employeeId }
YAML
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  timeout: 5s
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
password_sync: { enabled: true, retry_interval: 200ms, timeout: 5s }
YAML
cat >"$T/sync/people.yaml" <<'YAML'
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
      - { mv: uid, expr: 'LowerCase(givenName + "." + sn)' }
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
      - { cs: employeeNumber, expr: employeeId }
YAML
awk -v n="$N" 'BEGIN{print "employeeId,givenName,sn,title"; for(i=1;i<=n;i++) printf "%d,Given%d,Sur%d,Title %d\n", 100000+i, i, i, i%50}' >"$T/data/hr.csv"

ldap_ha() { local cmd=$1; shift; in_ns ha "$cmd" -x -H "$SLAPD_URI" -D "$ROOTDN" -w "$ROOTPW" "$@"; }
# slapd's people, attribute values sorted within each entry, entries by DN
dump_people() {
	ldap_ha ldapsearch -LLL -o ldif-wrap=no -b "ou=people,$SUFFIX" -s one '(objectClass=inetOrgPerson)' \
		uid cn sn title employeeNumber objectClass >"$T/dump.raw" || fail "ldapsearch in ha"
	python3 -c 'import sys
for e in open(sys.argv[1]).read().strip().split("\n\n"):
    l = e.split("\n")
    print("|".join([l[0]] + sorted(l[1:])))' "$T/dump.raw" | sort >"$1"
}

# cycle NAME CUT : fresh state and slapd; loomd on every host; the full
# cycle; with CUT=cut the agents host's link goes down during the export.
cycle() {
	local name=$1 cut=$2
	rm -rf "$T/state" "$T/slapd/db"
	mkdir -p "$T/slapd/db"
	write_slapd_conf
	start "slapd_$name" ip netns exec "${P}ha" slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/" -d 0
	wait_for "slapd in ha" 20 ldap_ha ldapsearch -b "" -s base namingContexts
	printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\ndn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n' \
		"$SUFFIX" "$SUFFIX" | ldap_admin_ha_add || fail "seeding slapd"
	for h in "${HOSTS[@]}"; do
		start "loomd_${h}_$name" ip netns exec "$P$h" "$LOOMD" -c "$CFG" --host "$h"
	done
	wait_for "every process on every host to run and register" 40 all_up
	C=(in_ns hb "$CTL" -c "$CFG" -t 60s)
	"${C[@]}" status >"$T/status_$name.out" || { cat "$T/status_$name.out" >&2; fail "status not all running"; }
	for h in "${HOSTS[@]}"; do
		grep -qE "^$h +loomd +running" "$T/status_$name.out" || fail "no loomd of $h in status"
	done
	runp hr full-import
	runp hr full-sync
	grep -qE "^ *provisioned +$N " "$T/run.out" || { cat "$T/run.out" >&2; fail "not $N provisioned"; }
	if [ "$cut" = cut ]; then
		local id
		id=$("${C[@]}" run dir export --no-wait) || fail "cannot start the export"
		id=${id##* }
		# mid-stream: after the agent applied the first of the export's batches
		wait_for "the first export batch in slapd" 60 grep -q "export batch applied run=$id seq=1 " "$T/state/log/ma.dir.log"
		ip -n "${P}ha" link set eth0 down || fail "cannot cut ha's link"
		"${C[@]}" runs dir -n 1 >"$T/cut_at.out"
		echo "note: link of ha cut while export run $id was: $(sed -n 2p "$T/cut_at.out")"
		# the cut must fall inside the run, or this proves nothing
		awk 'NR==2 && $4=="in-progress" {ok=1} END{exit !ok}' "$T/cut_at.out" || fail "the export ended before the cut"
		# down until the agents have noticed the broker is gone
		wait_for "ma.dir to lose the broker" 30 grep -q "broker silent for" "$T/state/log/ma.dir.log"
		wait_for "the broker to forget ma.dir" 30 grep -q "peer expired .* service=ma.dir " "$T/state/log/broker.log"
		ip -n "${P}ha" link set eth0 up || fail "cannot restore ha's link"
		wait_for "ma.dir to reconnect" 30 grep -q "reconnected to broker" "$T/state/log/ma.dir.log"
		wait_for "the export to end" 120 bash -c "ip netns exec ${P}hb '$CTL' -c '$CFG' runs dir -n 1 | awk 'NR==2 && \$4!=\"in-progress\" {ok=1} END{exit !ok}'"
		"${C[@]}" runs dir -n 1 >"$T/cut_run.out"
		echo "note: export run after the cut: $(sed -n 2p "$T/cut_run.out")"
		# the administrator runs the export again: what did not land goes now
		local rc=0
		"${C[@]}" run dir export >"$T/run.out" 2>&1 || rc=$?
		[ "$rc" = 0 ] || { cat "$T/run.out" >&2; fail "the export after the cut exited $rc"; }
	else
		runp dir export
		grep -qE "^ *exported-adds +$N " "$T/run.out" || { cat "$T/run.out" >&2; fail "not $N exported"; }
	fi
	runp dir full-import
	runp dir full-sync
	[ "$("${C[@]}" cs search dir --state error -n 10000 | tail -n +2 | grep -c .)" = 0 ] || fail "objects in error after $name"
	if [ "$name" = ref ]; then
		# A password change across all four hosts: the notifier on ha seals
		# it to loom-pcns on hp, which hands it to the engine on he, which
		# has loom-ma-ldap on ha set it in slapd.
		start "notify_$name" ip netns exec "${P}ha" "$NOTIFY" -c "$CFG"
		wait_log "notify_$name" "notifier ready"
		printf '%s\n' "$PW" | in_ns ha "$NOTIFY" --submit -c "$CFG" --account 100007 >/dev/null || fail "--submit"
		wait_for "the new password in slapd on ha" 30 binds "$PW"
		binds "not-$PW" && fail "slapd takes any password"
		"${C[@]}" pcns status -n 1 --state delivered | grep -q 100007 || fail "pcns status does not show the change delivered"
		stop "notify_$name"
	fi
	dump_people "$T/people_$name.txt"
	# the broker's host last: every process says Bye while the bus is up
	for h in ha he hp hb; do stop "loomd_${h}_$name" || fail "loomd of $h did not stop cleanly"; done
	stop "slapd_$name"
}
PW='Cross-Hosts-7q!'
binds() { in_ns ha ldapwhoami -x -H "$SLAPD_URI" -D "uid=given7.sur7,ou=people,$SUFFIX" -w "$1" >/dev/null 2>&1; }
ldap_admin_ha_add() { ldap_ha ldapadd >/dev/null; }
runp() {
	"${C[@]}" run "$@" >"$T/run.out" 2>&1 || { cat "$T/run.out" >&2; fail "run $* exited non-zero"; }
}
all_up() {
	local out
	out=$(in_ns hb "$CTL" -c "$CFG" -t 2s status 2>/dev/null) || return 1
	for p in "hb broker" "he engine" "he workflow" "ha ma.hr" "ha ma.dir" "hp pcns"; do
		echo "$out" | grep -qE "^${p% *} +${p#* } +running +[0-9]+ +[0-9]+ +(yes|-) " || return 1
	done
}

cycle ref nocut
[ "$(wc -l <"$T/people_ref.txt")" = "$N" ] || fail "slapd holds $(wc -l <"$T/people_ref.txt") people, want $N"
grep -q "^dn: uid=given7.sur7,ou=people,dc=example,dc=com|cn: Given7 Sur7|employeeNumber: 100007|" "$T/people_ref.txt" ||
	fail "an entry is not what was exported: $(grep given7.sur7, "$T/people_ref.txt")"
cat "$T/status_ref.out"
pass "loomd on 4 hosts, loomctl status shows every process on every host; full cycle over tcp+CURVE: $N people in slapd; a password change from ha's notifier through pcns (hp) and the engine (he) lands in slapd (ha)"

# A key that is not in the allow-list, from the agents host.
ikey=$(sed -n 's/^public-key = "\(.*\)"/\1/p' "$T/intruder.pub")
start broker_only ip netns exec "${P}hb" "$BROKER" -c "$CFG"
wait_log broker_only "started pid="
if out=$(in_ns ha "$CTL" -c "$CFG" --key intruder -t 1s ping broker 2>&1); then fail "the intruder was admitted: $out"; fi
echo "$out" | grep -q "refused this process's key" || fail "the intruder's error is unclear: $out"
wait_log_fixed broker_only "refused connection key=$ikey address=${ADDR[ha]} mechanism=CURVE reason=\"key not in allow-list\""
# A daemon with an unlisted key: an agent process on ha as ma.rogue.
rkey=$(sed -n 's/^public-key = "\(.*\)"/\1/p' "$T/ma.rogue.pub")
start rogue ip netns exec "${P}ha" "$LOOM_BUILD_DIR/agents/loom-ma-file" -c "$CFG" --agent hr --service ma.rogue
wait_log_fixed broker_only "refused connection key=$rkey address=${ADDR[ha]} mechanism=CURVE reason=\"key not in allow-list\""
in_ns he "$CTL" -c "$CFG" -t 2s services >"$T/services.out" || fail "a listed key (loomctl) from he was not admitted"
grep -q "^ma.rogue " "$T/services.out" && fail "ma.rogue registered with an unlisted key"
log_has "$T/rogue.log" "registered with broker" && fail "ma.rogue says it registered"
stop rogue
stop broker_only
pass "keys not in the allow-list (loomctl, and an agent process) are refused from another host, each refusal logged with its address"

cycle cut cut
if ! cmp -s "$T/people_ref.txt" "$T/people_cut.txt"; then
	diff "$T/people_ref.txt" "$T/people_cut.txt" | head -n 20 >&2
	fail "slapd after the cut differs from the run without it"
fi
pass "ha's link cut during an export and restored: slapd holds exactly what the run without the cut put there ($N people)"
