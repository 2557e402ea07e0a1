#!/usr/bin/env bash
# Export to a real slapd through loom-ma-ldap: people hired in an HR file are
# provisioned (add; the entry's entryUUID comes back as the anchor), changed
# (modify), renamed and moved (modrdn with and without a new superior) and
# deprovisioned (delete); each checked with ldapsearch. A change slapd
# refuses with constraintViolation is reported on that object as
# constraint-violation and not retryable, while the others go through.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/sync" "$T/data"
start_slapd
seed_people 0
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add ou=staff"
dn: ou=staff,$SUFFIX
objectClass: organizationalUnit
ou: staff
LDIF
printf '%s\n' "$ROOTPW" >"$T/admin.pw"

cat >"$T/agents/hr.yaml" <<YAML
type: file
object_type: person
anchor: employeeId
file: { format: csv, path: ../data/hr.csv }
YAML
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  connections: 2
  in_flight: 4
  timeout: 2s
  bases:
    - { dn: "ou=people,$SUFFIX", scope: one }
    - { dn: "ou=staff,$SUFFIX", scope: one }
  object_classes:
    - { object_class: inetOrgPerson, type: person }
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
      - { mv: ou, expr: ou }
      - { mv: nick, expr: nick }
      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }
  - name: to-dir
    direction: outbound
    agent: dir
    cs_type: person
    mv_type: person
    provision: true
    dn: '"uid=" + EscapeDNComponent(uid) + ",ou=" + ou + ",dc=example,dc=com"'
    deprovision: delete
    flows:
      - { cs: objectClass, expr: 'Split("top,person,organizationalPerson,inetOrgPerson", ",")', initial: true }
      - { cs: uid, expr: uid }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: sn, expr: sn }
      - { cs: title, expr: title }
      - { cs: displayName, expr: 'Split(nick, "|")' }
      - { cs: employeeNumber, expr: employeeId }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hr }
YAML
N=${LOOM_LDAP_TEST_N:-300}
{
	echo "employeeId,givenName,sn,title,ou,nick"
	echo "1,Ada,Lovelace,Analyst,people,Ada"
	echo "2,Grace,Hopper,Admiral,people,Amazing Grace"
	echo "3,Alan,Turing,Cryptanalyst,people,Alan"
	echo "4,Edsger,Dijkstra,Professor,people,EWD|Edsger"
	for ((i = 5; i <= N; i++)); do echo "$i,Given$i,Family$i,Engineer,people,P$i"; done
} >"$T/data/hr.csv"

"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
start_broker
start_engine
start_agent hr
start_ldap_agent dir

entry() { ldap_admin ldapsearch -LLL -b "$1" -s base "${@:2}" 2>/dev/null; }
uuid_of() { entry "$1" entryUUID | sed -n 's/^entryUUID: //p'; }

# Adds: every person but Edsger, whose two displayNames (single-valued in
# inetOrgPerson) slapd refuses with constraintViolation: an error on him
# alone, not retryable.
run_profile dir full-import
expect_counter adds 0
run_profile hr full-import
run_profile hr full-sync
expect_counter provisioned "$N"
run_profile dir export 3
expect_counter exported-adds $((N - 1))
run_id=$(awk 'NR==1 && $1=="run" {print $2}' "$T/run.out")
ctl -o json run show "$run_id" >"$T/export-run.json" || fail "loomctl run show $run_id failed"
grep -qF '"code":"constraint-violation"' "$T/export-run.json" || fail "no constraint-violation in the run: $(cat "$T/export-run.json")"
if grep -qF '"retryable":true' "$T/export-run.json"; then fail "a constraint violation is marked retryable"; fi
grep -qE "constraint-violation.*edijkstra" "$T/run.out" || fail "no constraint-violation for Edsger: $(cat "$T/run.out")"
ctl -o json cs show dir "$(ctl cs search dir --state error | awk 'NR==2 {print $1}')" >"$T/edsger.json" ||
	fail "cannot show the failed object"
grep -qF 'constraint-violation' "$T/edsger.json" || fail "the error is not on the object: $(cat "$T/edsger.json")"
[ "$(ldap_admin ldapsearch -LLL -b "ou=people,$SUFFIX" -s one '(objectClass=inetOrgPerson)' dn | grep -c '^dn:')" = $((N - 1)) ] ||
	fail "slapd does not hold $((N - 1)) people"
entry "uid=ghopper,ou=people,$SUFFIX" cn title displayName employeeNumber >"$T/grace.ldif"
grep -qx "cn: Grace Hopper" "$T/grace.ldif" && grep -qx "title: Admiral" "$T/grace.ldif" &&
	grep -qx "displayName: Amazing Grace" "$T/grace.ldif" && grep -qx "employeeNumber: 2" "$T/grace.ldif" ||
	fail "Grace's entry is not what was exported: $(cat "$T/grace.ldif")"
grace=$(uuid_of "uid=ghopper,ou=people,$SUFFIX")
ctl cs show dir "$grace" >/dev/null || fail "the add did not re-key the object to its entryUUID $grace"
log_has "$T/ma_dir.log" "export done run=[0-9]+ applied=$((N - 1)) .* connections=2 max_in_flight=8$" ||
	fail "the export did not keep 2 connections x 4 operations in flight"
# Every add is confirmed by content sync. A refresh right after the export
# can end at slapd's contextCSN before syncprov has counted the last adds
# (they come with the next refresh, seen on a loaded fresh machine): the
# confirmations over a few delta imports must add up to exactly N - 1.
confirmed=0
for _ in 1 2 3 4 5; do
	run_profile dir delta-import
	confirmed=$((confirmed + $(counter export-confirmed)))
	[ "$confirmed" -ge $((N - 1)) ] && break
	sleep 0.5
done
[ "$confirmed" = $((N - 1)) ] || fail "export-confirmed adds up to $confirmed over the delta imports, want $((N - 1))"
pass "$((N - 1)) adds exported and confirmed by a delta import; a constraint violation is an error on that object, not retryable"

# Modify, rename, move and delete; Edsger fixed.
sed -i -e 's/^1,Ada,Lovelace,Analyst,people,Ada$/1,Ada,Lovelace,Chief Analyst,people,Ada/' \
	-e 's/^2,Grace,Hopper,Admiral,people,/2,Grace,Murray,Admiral,people,/' \
	-e 's/^3,Alan,Turing,Cryptanalyst,people,/3,Alan,Turing,Cryptanalyst,staff,/' \
	-e 's/^4,Edsger,Dijkstra,Professor,people,EWD|Edsger$/4,Edsger,Dijkstra,Professor,people,EWD/' \
	-e '/^5,/d' "$T/data/hr.csv"
# Someone in an OU slapd does not have: noSuchObject, deferred behind the
# batch's other changes, then reported (not retryable) when they do not help.
echo "9999,Nemo,Nobody,Sailor,nowhere,Nemo" >>"$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile dir export 3
grep -qF "no-such-object anchor=" "$T/run.out" && grep -qF "cannot add 'uid=nnobody,ou=nowhere,dc=example,dc=com': No such object (32)" "$T/run.out" ||
	fail "an add under a missing OU is not no-such-object: $(cat "$T/run.out")"
expect_counter exported-adds 1
expect_counter exported-deletes 1
expect_counter exported-updates 3
entry "uid=alovelace,ou=people,$SUFFIX" title | grep -qx "title: Chief Analyst" || fail "the modify did not land"
entry "uid=ghopper,ou=people,$SUFFIX" >/dev/null && fail "Grace's old DN is still there"
entry "uid=gmurray,ou=people,$SUFFIX" sn cn uid >"$T/grace.ldif" || fail "Grace was not renamed"
grep -qx "sn: Murray" "$T/grace.ldif" && grep -qx "uid: gmurray" "$T/grace.ldif" && ! grep -qx "uid: ghopper" "$T/grace.ldif" ||
	fail "Grace's renamed entry is wrong: $(cat "$T/grace.ldif")"
[ "$(uuid_of "uid=gmurray,ou=people,$SUFFIX")" = "$grace" ] || fail "the rename made a new entry instead of renaming"
entry "uid=aturing,ou=staff,$SUFFIX" >/dev/null || fail "Alan was not moved to ou=staff"
entry "uid=aturing,ou=people,$SUFFIX" >/dev/null && fail "Alan is still in ou=people"
entry "uid=edijkstra,ou=people,$SUFFIX" displayName | grep -qx "displayName: EWD" || fail "Edsger was not added once fixed"
entry "uid=given5family5,ou=people,$SUFFIX" >/dev/null && fail "the leaver was not deleted"
# The delta import confirms all of it; the move between bases is no delete.
run_profile dir delta-import
expect_counter deletes 0
expect_counter export-confirmed 4
pass "modify, rename, move and delete exported and confirmed"

# A transient refusal: slapd made read-only answers unwillingToPerform; the
# change fails as retryable and goes through once slapd is writable again.
write_slapd_conf "readonly on"
restart_slapd
sed -i 's/^1,Ada,Lovelace,Chief Analyst,/1,Ada,Lovelace,Countess,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
run_profile dir export 3
run_id=$(awk 'NR==1 && $1=="run" {print $2}' "$T/run.out")
ctl -o json run show "$run_id" >"$T/export-run.json" || fail "loomctl run show $run_id failed"
grep -qF '"code":"unwilling-to-perform"' "$T/export-run.json" && grep -qF '"retryable":true' "$T/export-run.json" ||
	fail "a read-only refusal is not a retryable unwilling-to-perform: $(cat "$T/export-run.json")"
write_slapd_conf
restart_slapd
run_profile dir export 3 # Nemo's OU is still missing
expect_counter exported-updates 1
entry "uid=alovelace,ou=people,$SUFFIX" title | grep -qx "title: Countess" || fail "the retried modify did not land"
pass "unwillingToPerform is retryable, and the retry succeeds"

# slapd hung (SIGSTOP): the export fails within ldap.timeout with the reason
# and changes nothing; slapd down: the same; back up: the change lands.
sed -i 's/^1,Ada,Lovelace,Countess,/1,Ada,Lovelace,Enchantress of Numbers,/' "$T/data/hr.csv"
run_profile hr full-import
run_profile hr delta-sync
kill -STOP "${PIDS[slapd]}"
run_profile dir export 1
kill -CONT "${PIDS[slapd]}"
grep -qF "cannot bind to '$SLAPD_URI' as '$ROOTDN': Timed out" "$T/run.out" || fail "a hung slapd is not reported: $(cat "$T/run.out")"
stop slapd
run_profile dir export 1
grep -qF "cannot bind to '$SLAPD_URI' as '$ROOTDN': Can't contact LDAP server" "$T/run.out" ||
	fail "a stopped slapd is not reported: $(cat "$T/run.out")"
restart_slapd
run_profile dir export 3 # Nemo's OU is still missing
expect_counter exported-updates 1
entry "uid=alovelace,ou=people,$SUFFIX" title | grep -qx "title: Enchantress of Numbers" || fail "the modify did not land after slapd came back"
pass "a hung or stopped slapd fails the export with the reason; the next export applies the change"
