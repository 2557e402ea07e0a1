#!/usr/bin/env bash
# A content sync cookie slapd refuses (e-syncRefreshRequired): slapd with
# syncprov-reloadhint TRUE answers a cookie older than every entry (the
# directory was reloaded from an LDIF since: every entry got a new CSN)
# with code 4096. The delta run
# goes on as a full import in the same run: a warning in the agent's log,
# the engine's and the run record, the delete made meanwhile seen, and the
# next delta resumes from the new cookie.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents"
start_slapd "syncprov-reloadhint TRUE"
seed_people 20
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
ldap:
  uri: $SLAPD_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
start_broker
start_engine
start_ldap_agent dir
modify_title() {
	ldap_admin ldapmodify >/dev/null <<LDIF
dn: uid=$1,ou=people,$SUFFIX
changetype: modify
replace: title
title: $2
LDIF
}
uuid_of() { ldap_admin ldapsearch -LLL -b "$1" -s base entryUUID | sed -n 's/^entryUUID: //p'; }

run_profile dir full-import
expect_counter adds 20
run_profile dir full-sync
modify_title user1 "First"
run_profile dir delta-import
expect_counter updates 1
run_profile dir full-sync

# The directory is reloaded from an LDIF (a restore from backup): slapcat,
# entryCSN and contextCSN dropped so that slapadd stamps every entry anew,
# user1 changed and user2 left out on the way. Every entry's CSN is now
# newer than the cookie's, so slapd cannot know what happened since it.
csn=$(ldap_admin ldapsearch -LLL -b "$SUFFIX" -s base contextCSN | sed -n 's/^contextCSN: \([0-9]\{14\}\).*/\1/p')
[ -n "$csn" ] || fail "no contextCSN on $SUFFIX"
stop slapd
# slapd compares CSNs to the second here: the reload must stamp a later one.
wait_for "the clock to pass the cookie's second $csn" 5 bash -c "[ \$(date -u +%Y%m%d%H%M%S) -gt $csn ]"
slapcat -f "$T/slapd/slapd.conf" -l "$T/dump.ldif" 2>"$T/slapcat.err" || fail "slapcat: $(cat "$T/slapcat.err")"
uuid2=$(awk -v dn="dn: uid=user2,ou=people,$SUFFIX" '$0 == dn { on = 1 } on && /^entryUUID: / { print $2; exit }' "$T/dump.ldif")
[ -n "$uuid2" ] || fail "no entryUUID for user2 in the dump"
awk -v drop="dn: uid=user2,ou=people,$SUFFIX" -v u1="dn: uid=user1,ou=people,$SUFFIX" '
	BEGIN { RS = ""; ORS = "\n\n" }
	{
		n = split($0, l, "\n"); out = ""; skip = 0
		for (i = 1; i <= n; i++) {
			if (l[i] == drop) { skip = 1; break }
			if (l[i] ~ /^(entryCSN|contextCSN):/) continue
			if (l[i] ~ /^title:/ && l[1] == u1) l[i] = "title: Reloaded"
			out = out l[i] "\n"
		}
		if (!skip) print substr(out, 1, length(out) - 1)
	}' "$T/dump.ldif" >"$T/reload.ldif"
grep -q '^title: Reloaded$' "$T/reload.ldif" || fail "the reload LDIF lacks user1's change"
rm -rf "$T/slapd/db" && mkdir -p "$T/slapd/db"
slapadd -q -f "$T/slapd/slapd.conf" -l "$T/reload.ldif" >"$T/slapadd.out" 2>&1 || fail "slapadd: $(cat "$T/slapadd.out")"
start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/ $SLAPD_LDAPI_URI/" -d 0
wait_for "slapd on $SLAPD_URI" 20 slapd_answers

run_profile dir delta-import
grep -qE "^  warning: delta import fell back to a full import: the server refused the cookie \(e-syncRefreshRequired\)" "$T/run.out" ||
	fail "no fallback warning in the run: $(cat "$T/run.out")"
log_has "$T/ma_dir.log" "warning .*watermark lost run=[0-9]+: delta import cannot resume: the server refused the cookie" ||
	fail "no warning in the agent's log"
log_has "$T/engine.log" "warning .*delta import fell back to a full import: the server refused the cookie" ||
	fail "no warning in the engine's log"
expect_counter updates 1
expect_counter deletes 1
expect_counter adds 0
grep -qE "^  deletes +1  $uuid2\$" "$T/run.out" || fail "the delete is not user2's ($uuid2): $(cat "$T/run.out")"
pass "a cookie slapd refuses (e-syncRefreshRequired): the delta goes on as a full import with a warning and sees the delete"

run_profile dir full-sync
modify_title user3 "Third"
run_profile dir delta-import
expect_counter updates 1
expect_counter deletes 0
grep -q "warning" "$T/run.out" && fail "the next delta still warns: $(cat "$T/run.out")"
pass "the next delta resumes from the cookie the fallback took"

# A directory restored from an older backup: the cookie is newer than
# anything slapd knows ("consumer state is newer than provider", code 53).
# The delta goes on as a full import, which sees the entry added after the
# backup gone.
# A cold backup: slapd writes its contextCSN when it stops.
stop slapd
slapcat -f "$T/slapd/slapd.conf" -l "$T/backup.ldif" 2>"$T/slapcat.err" || fail "slapcat: $(cat "$T/slapcat.err")"
start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/ $SLAPD_LDAPI_URI/" -d 0
wait_for "slapd on $SLAPD_URI" 20 slapd_answers
csn=$(sed -n 's/^contextCSN: \([0-9]\{14\}\).*/\1/p' "$T/backup.ldif" | head -n1)
[ -n "$csn" ] || fail "no contextCSN in the backup"
wait_for "the clock to pass the backup's second $csn" 5 bash -c "[ \$(date -u +%Y%m%d%H%M%S) -gt $csn ]"
ldap_admin ldapadd >/dev/null <<LDIF || fail "cannot add user99"
dn: uid=user99,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: user99
cn: After the backup
sn: Later
LDIF
uuid99=$(uuid_of "uid=user99,ou=people,$SUFFIX")
run_profile dir delta-import
expect_counter adds 1
run_profile dir full-sync
stop slapd
rm -rf "$T/slapd/db" && mkdir -p "$T/slapd/db"
slapadd -q -f "$T/slapd/slapd.conf" -l "$T/backup.ldif" >"$T/slapadd.out" 2>&1 || fail "slapadd: $(cat "$T/slapadd.out")"
start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/ $SLAPD_LDAPI_URI/" -d 0
wait_for "slapd on $SLAPD_URI" 20 slapd_answers
run_profile dir delta-import
grep -qE "^  warning: delta import fell back to a full import: the server refused the cookie: Server is unwilling to perform \(53\)" "$T/run.out" ||
	fail "no fallback warning naming the refusal: $(cat "$T/run.out")"
expect_counter deletes 1
expect_counter adds 0
grep -qE "^  deletes +1  $uuid99\$" "$T/run.out" || fail "the delete is not user99's ($uuid99): $(cat "$T/run.out")"
pass "a cookie newer than the directory (restored from a backup): full import with a warning; the later entry is gone"

# ad_delta is Active Directory's: with directory openldap, usn is an error.
sed 's/^ldap:$/ldap:\n  ad_delta: usn/' "$T/agents/dir.yaml" >"$T/agents/bad.yaml"
rc=0
"$MALDAP" -c "$CFG" --agent bad --check-config >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -qF "bad.yaml: key 'ldap.ad_delta': usn is for directory ad" "$T/bad.out" ||
	fail "ad_delta usn with openldap: rc=$rc $(cat "$T/bad.out")"
pass "ldap.ad_delta: usn with directory openldap is a configuration error naming the key"
