#!/usr/bin/env bash
# Secrets audit (issue 11 item 3): the password scenarios in one deployment,
# with loom-tap capturing the whole bus (decoded text, JSON, and --raw: every
# frame byte for byte), then a search of everything Loom wrote for each
# cleartext secret used: 0 hits required.
#
# Scenarios: `loomctl secret set` (the target agent's bind password, sealed
# with the key set; the agent binds with it); `loomctl password set` through
# loom-ma-ldap (Password Modify); a password changed in slapd "src" by
# ldappasswd, handed by its sock overlay to loom-pcns-notify, then loom-pcns,
# the engine and loom-ma-ldap into slapd "dst"; SSPR registration (the
# current password checked by a bind, the answers hashed) and reset (the new
# password sealed to the engine, set in dst). Each is checked by binding.
#
# Searched, for each secret in clear, in UTF-16LE (AD's unicodePwd form), in
# base64 of both at every byte alignment, and in hex: the tap captures,
# every store (RocksDB files, WAL included, raw bytes; and every key and
# value read back through RocksDB, as SSTs are compressed), spools and queues
# (all of state_dir), every process's log, the configuration (loom.yaml,
# agents, sync, policy, sspr/pcns files, keys) and core files (in the test
# directory and the working directory). Not searched: the two slapds' own
# directories (the connected systems: slapd.conf holds its rootpw, as any
# directory's configuration does). Prints what was searched.
#
# LOOM_TEST_LEAK=1 makes the test write one password into a log before the
# search, to show that the search finds it (the test must then fail).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"
. "$(dirname "$0")/pcns/lib_pcns.sh"

# Every secret carries a per-run random part, so a hit cannot be a
# coincidence and base64 fragments are distinctive.
R=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
DST_PW="Dst-bind-$R!a"          # loomctl secret set: dst's rootpw
P_SET="Set-by-ctl-$R#b"         # loomctl password set
P_PCNS="Pcns-chg-$R%c"          # ldappasswd in src -> pcns -> dst
P_SSPR="Sspr-reset-$R&d"        # sspr reset
A1="Teacher-$R-Zwick"; A2="City-$R-Ouen"; A3="Bike-$R-Batavus"; A4="Street-$R-Oberk"
SECRETS=("$DST_PW" "$P_SET" "$P_PCNS" "$P_SSPR" "$A1" "$A2" "$A3" "$A4" pw-user3)

write_config
mkdir -p "$T/agents" "$T/sync" "$T/policy"
mapfile -t sock < <(slapd_sock_lines "$T/pw.sock")
SLAPD_MODULES=back_sock.so start_slapd_named src "access to attrs=userPassword by self write by anonymous auth by * none" \
	"access to attrs=entry by self write by * read" "access to * by * read" "${sock[@]}"
ROOTPW=$DST_PW start_slapd_named dst
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
cat >"$T/agents/src.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $SRC_URI
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync: { enabled: false }
YAML
cat >"$T/agents/dst.yaml" <<YAML
type: ldap
object_type: person
ldap:
  uri: $DST_URI
  bind_dn: "$ROOTDN"
  password_secret: bind_password
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
  object_classes: [ { object_class: inetOrgPerson, type: person } ]
  attributes: [uid, cn, sn]
password_sync:
  enabled: true
  match: [anchor, dn, account]
  account_attribute: uid
  retry_interval: 200ms
  timeout: 5s
YAML
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
cp "$LOOM_SOURCE_DIR/config/policy/schema.yaml" "$T/policy/"
cat >"$T/sspr.yaml" <<'YAML'
agent: dst
questions:
  - "Last name of your first-grade teacher?"
  - "City where your parents met?"
  - "Model of your first bicycle?"
  - "Street you lived on at ten?"
register: 3
present: 2
require: 2
lockout: { threshold: 3, duration: 3s, permanent_after: 2 }
argon2_opslimit: 1
argon2_memlimit: 8MiB
YAML
PCNS_NOTIFY_EXTRA="slapd: { socket: $T/pw.sock, ignore_binddn: [\"cn=loom-agent,$SUFFIX\"] }"
pcns_setup
for k in ma.dst ma.src workflow; do ctl keys gen "$k" >/dev/null || fail "keys gen $k"; done
start_notify
seed_named "$SRC_URI" 4
ROOTPW=$DST_PW seed_named "$DST_URI" 4

# ---- loomctl secret set: dst's bind password, sealed with the key set ----
ctl keys create >/dev/null || fail "keys create"
printf '%s\n' "$DST_PW" | ctl secret set dst bind_password >/dev/null || fail "secret set"

start_broker
start tap "$TAP" -c "$CFG" --raw "$T/tap.raw"
start tapjson "$TAP" -c "$CFG" --json
wait_log broker "tap listener attached subscriptions=2"
start_engine
start_ldap_agent src
start_ldap_agent dst
for a in src dst; do
	run_profile "$a" full-import
	run_profile "$a" full-sync
done
expect_counter joined 4
pass "loomctl secret set: dst's agent binds with the sealed secret (full import of 4 people)"
start_pcns
wait_log engine "password sync ready target_agents=1"
start_workflow
wait_log workflow "sspr ready agent=dst questions=4"

binds() { ldapwhoami -x -H "$DST_URI" -D "uid=$1,ou=people,$SUFFIX" -w "$2" >/dev/null 2>&1; }

# ---- loomctl password set through the LDAP agent ----
printf '%s\n' "$P_SET" | ctl password set --agent dst --dn "uid=user1,ou=people,$SUFFIX" >"$T/set.out" ||
	fail "password set: $(cat "$T/set.out")"
binds user1 "$P_SET" || fail "user1 does not bind with the password set by loomctl"
pass "loomctl password set: user1 binds to dst with it"

# ---- pcns: ldappasswd in src -> notifier -> listener -> engine -> dst ----
ldappasswd -x -H "$SRC_URI" -D "$ROOTDN" -w "$ROOTPW" -s "$P_PCNS" "uid=user2,ou=people,$SUFFIX" >/dev/null ||
	fail "ldappasswd on src"
wait_for "user2's new password in dst" 30 binds user2 "$P_PCNS"
pass "pcns: a Password Modify in src reaches dst (user2 binds with it)"

# ---- SSPR: registration (current password checked by a bind), reset ----
printf 'pw-user3\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" | ctl sspr register --account user3 >"$T/reg.out" ||
	fail "sspr register: $(cat "$T/reg.out")"
printf '%s\n%s\n%s\n%s\n%s\n' "$A1" "$A2" "$A3" "$A4" "$P_SSPR" | ctl sspr reset --account user3 >"$T/reset.out" ||
	fail "sspr reset: $(cat "$T/reset.out")"
wait_for "user3's reset password in dst" 30 binds user3 "$P_SSPR"
pass "sspr: user3 registered (current password verified) and reset; binds to dst with the new password"

# every kind of secret-carrying message went over the bus (sealed)
wait_log tap "loom.SetPasswordRequest .*password=<sealed>"
wait_log tap "loom.PasswordSyncRequest .*password=<sealed>"
wait_log tap "loom.VerifyPasswordRequest .*password=<sealed>"
wait_log tap "loom.SsprRegister .*secrets=<sealed>"
wait_log tap "loom.SsprReset .*secrets=<sealed>"
[ -s "$T/tap.raw" ] || fail "the raw tap capture is empty"

# stop every Loom process first: what they hold in memory reaches the disk
# (RocksDB flushes, logs end), then search
for p in workflow pcns notify ma_dst ma_src engine tap tapjson broker; do stop "$p" || true; done

if [ -n "${LOOM_TEST_LEAK:-}" ]; then
	echo "debug: oops $P_PCNS" >>"$T/engine.log" # a deliberate leak: the search must find it
fi

# SST files are LZ4-compressed: a secret inside one need not show in its
# raw bytes. So every store (a directory with CURRENT) is also read back
# through RocksDB itself: a copy opened by `ldb` (rocksdb-tools), every
# column family scanned (the WAL replayed, the SSTs decompressed), each key
# and value written as bytes into audit-decoded/, and searched too.
command -v ldb >/dev/null || fail "ldb is not installed (rocksdb-tools: scripts/install-deps.sh)"
mkdir -p "$T/audit-decoded" "$T/audit-db"
nstores=0
while IFS= read -r cur; do
	db=$(dirname "$cur")
	name=$(echo "${db#"$T"/}" | tr / _)
	cp -r "$db" "$T/audit-db/$name"
	cfs=$(ldb --db="$T/audit-db/$name" list_column_families 2>"$T/ldb.err" | sed -n 's/^{\(.*\)}$/\1/p' | tr -d ' ' | tr , ' ')
	[ -n "$cfs" ] || fail "ldb cannot list the column families of $db: $(cat "$T/ldb.err")"
	for cf in $cfs; do
		ldb --db="$T/audit-db/$name" --column_family="$cf" scan --hex 2>"$T/ldb.err" | python3 -c '
import sys
out = open(sys.argv[1], "wb")
for line in sys.stdin:
    k, sep, v = line.strip().partition(" : ")
    if sep:
        out.write(bytes.fromhex(k[2:]) + b"\n" + bytes.fromhex(v[2:]) + b"\n")
' "$T/audit-decoded/$name.$cf" || fail "ldb scan $db $cf: $(cat "$T/ldb.err")"
	done
	nstores=$((nstores + 1))
done < <(find "$T/state" -type f -name CURRENT)
rm -rf "$T/audit-db"
[ "$nstores" -ge 3 ] || fail "only $nstores RocksDB stores found under $T/state"

# what is searched: everything of the test but the connected systems' own
# directories; core files here and in the working directory
{
	find "$T" -type f ! -path "$T/src/*" ! -path "$T/dst/*" ! -name 'seed*' ! -name 'audit.*'
	find . -maxdepth 1 -type f -name 'core*' -newer "$CFG" 2>/dev/null
} >"$T/audit.files"
printf '%s\n' "${SECRETS[@]}" >"$T/audit.secrets"
python3 - "$T/audit.files" "$T/audit.secrets" >"$T/audit.out" <<'PY'
import base64, sys
files = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
secrets = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
def needles(s):
    out = []
    for name, raw in (("clear", s.encode()), ("utf16le", s.encode("utf-16-le"))):
        out.append((name, raw))
        out.append((name + "+hex", raw.hex().encode()))
        for shift in range(3):
            enc = base64.b64encode(b"\0" * shift + raw)
            # the characters that depend on the secret's bytes alone
            mid = enc[4 if shift else 0:]
            mid = mid[: len(mid) - 4] if len(mid) > 8 else mid
            out.append(("%s+base64@%d" % (name, shift), mid))
        out.append((name + "+base64", base64.b64encode(raw)))
        out.append((name + "+base64url", base64.urlsafe_b64encode(raw).rstrip(b"=")))
    return out
hits, nbytes, kinds = 0, 0, {}
for f in files:
    try:
        data = open(f, "rb").read()
    except OSError as e:
        print("cannot read %s: %s" % (f, e)); hits += 1; continue
    nbytes += len(data)
    k = "store" if "/state/" in f else "store-decoded" if "/audit-decoded/" in f else "tap" if "/tap" in f else "log" if f.endswith(".log") else "core" if "/core" in f else "config/other"
    kinds[k] = kinds.get(k, 0) + 1
    for s in secrets:
        for name, n in needles(s):
            c = data.count(n)
            if c:
                hits += c
                print("HIT %s (%s) x%d in %s" % (s, name, c, f))
print("searched %d files, %d bytes (%s) for %d secrets in %d forms each: %d hits" % (
    len(files), nbytes, ", ".join("%s %d" % kv for kv in sorted(kinds.items())), len(secrets),
    len(needles("x")), hits))
sys.exit(1 if hits else 0)
PY
rc=$?
cat "$T/audit.out"
[ "$rc" = 0 ] || fail "cleartext secrets found (see HIT lines)"
grep -q "store [1-9]" "$T/audit.out" && grep -q "tap [1-9]" "$T/audit.out" && grep -q "log [1-9]" "$T/audit.out" ||
	fail "the audit did not search stores, tap captures and logs"
grep -q "store-decoded [1-9]" "$T/audit.out" || fail "no store was read back through RocksDB"
pass "no secret in clear, UTF-16LE, base64 or hex: $(sed -n 's/^searched //p' "$T/audit.out"); $nstores stores read back through RocksDB"
