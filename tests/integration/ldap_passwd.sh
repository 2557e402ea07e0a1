#!/usr/bin/env bash
# SetPassword through loom-ma-ldap against a real slapd: loomctl password set
# seals the password to the agent's key, the agent sets it with the Password
# Modify extended operation (RFC 3062), and the user binds with it; by
# anchor too. The whole bus is captured by loom-tap (text and JSON) and no
# log holds the password in any encoding. Errors: a DN that does not exist
# (not retryable), a password sealed to another key, an agent without a
# key, a file agent (cannot take passwords), a DN and anchor that disagree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ldap/slapd.sh"

write_config
mkdir -p "$T/agents" "$T/data"
start_slapd
seed_people 3
printf '%s\n' "$ROOTPW" >"$T/admin.pw"
chmod 600 "$T/admin.pw"
cat >"$T/agents/dir.yaml" <<YAML
type: ldap
ldap:
  uri: $SLAPD_URI
  bind: simple
  bind_dn: "$ROOTDN"
  password_file: ../admin.pw
  bases: [ { dn: "ou=people,$SUFFIX", scope: one } ]
YAML
# The same directory, for an agent that has no key pair.
cp "$T/agents/dir.yaml" "$T/agents/nokey.yaml"
cat >"$T/agents/hr.yaml" <<YAML
type: file
anchor: id
file: { format: csv, path: ../data/hr.csv }
YAML
printf 'id,name\n1,ada\n' >"$T/data/hr.csv"
ctl keys gen ma.dir >/dev/null || fail "keys gen ma.dir"
ctl keys gen ma.hr >/dev/null || fail "keys gen ma.hr"
start_broker
start tap "$TAP" -c "$CFG"
start tapjson "$TAP" -c "$CFG" --json
wait_log broker "tap listener attached subscriptions=2"
start_ldap_agent dir
start_ldap_agent nokey
start_agent hr

NEWPW='Zq7!Loom-pass-9f3e'
USER1="uid=user1,ou=people,$SUFFIX"
binds() { ldapwhoami -x -H "$SLAPD_URI" -D "$1" -w "$2" >/dev/null 2>&1; }
binds "$USER1" "$NEWPW" && fail "user1 binds with the new password before it is set"

printf '%s\n' "$NEWPW" | ctl password set --agent dir --dn "$USER1" >"$T/set.out" ||
	fail "password set failed: $(cat "$T/set.out")"
grep -qxF "password set on $USER1 (agent dir)" "$T/set.out" || fail "unexpected output: $(cat "$T/set.out")"
binds "$USER1" "$NEWPW" || fail "ldapwhoami -D $USER1 with the new password fails"
ldap_admin ldapsearch -LLL -b "$USER1" -s base userPassword | grep -q '^userPassword:: e1NTSEF9' ||
	fail "slapd did not store a hashed userPassword (Password Modify not used?)"
pass "password set through RFC 3062: the user binds with it; slapd stored it hashed"

# By anchor (entryUUID), and JSON output.
USER2="uid=user2,ou=people,$SUFFIX"
uuid2=$(ldap_admin ldapsearch -LLL -b "$USER2" -s base entryUUID | sed -n 's/^entryUUID: //p')
printf '%s\r\n' "$NEWPW-2" | ctl -o json password set --agent dir --anchor "$uuid2" >"$T/set2.json" ||
	fail "password set by anchor failed: $(cat "$T/set2.json")"
grep -qF "\"ok\":true" "$T/set2.json" && grep -qF "\"dn\":\"$USER2\"" "$T/set2.json" ||
	fail "unexpected reply: $(cat "$T/set2.json")"
binds "$USER2" "$NEWPW-2" || fail "user2 cannot bind with the password set by anchor"
pass "password set by entryUUID (a CRLF line end is not part of it); -o json prints the reply"

# On a terminal: asked twice, without echo. A pseudo-terminal driven by
# python waits for each prompt before typing (no sleep).
tty_set() { # PASSWORD RETYPE DN : loomctl on a pty; its transcript in $T/tty.out
	# The passwords go by the environment, not the command line (ps shows that).
	TTY_PW=$1 TTY_AGAIN=$2 python3 - "$CTL" "$CFG" "$3" >"$T/tty.out" 2>&1 <<'PY'
import os, pty, select, sys
ctl, cfg, dn = sys.argv[1:4]
pw, again = os.environ.pop("TTY_PW"), os.environ.pop("TTY_AGAIN")
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "-c", cfg, "password", "set", "--agent", "dir", "--dn", dn])
seen = b""
def upto(text):
    global seen
    while text.encode() not in seen:
        # A bound so that a lost prompt fails the test instead of hanging it.
        if not select.select([fd], [], [], 60)[0]:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit("no prompt '%s' within 60 s" % text)
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            chunk = b""
        if not chunk:
            sys.stdout.write(seen.decode(errors="replace"))
            sys.exit("no prompt '%s'" % text)
        seen += chunk
upto("New password for ")
os.write(fd, (pw + "\n").encode())
upto("Retype the new password: ")
os.write(fd, (again + "\n").encode())
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
status = os.waitpid(pid, 0)[1]
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PY
}
USER3="uid=user3,ou=people,$SUFFIX"
tty_set "$NEWPW-3" "$NEWPW-3" "$USER3" || fail "password set on a terminal failed: $(cat "$T/tty.out")"
grep -qF "password set on $USER3 (agent dir)" "$T/tty.out" || fail "unexpected transcript: $(cat "$T/tty.out")"
grep -qF -- "$NEWPW-3" "$T/tty.out" && fail "the terminal echoed the password: $(cat "$T/tty.out")"
binds "$USER3" "$NEWPW-3" || fail "user3 cannot bind with the password typed on the terminal"
rc=0
tty_set "$NEWPW-4" "$NEWPW-5" "$USER3" || rc=$?
[ "$rc" = 1 ] && grep -qF "the two passwords differ: nothing was changed" "$T/tty.out" ||
	fail "two different passwords on a terminal: rc=$rc $(cat "$T/tty.out")"
binds "$USER3" "$NEWPW-3" || fail "a mistyped retype changed user3's password"
pass "on a terminal the password is asked twice without echo; two different ones change nothing"

# Refusals, each with a clear reason and exit status 3.
rc=0
printf 'whatever-1\n' | ctl password set --agent dir --dn "uid=nobody,ou=people,$SUFFIX" 2>"$T/err1" || rc=$?
[ "$rc" = 3 ] || fail "a missing DN exited $rc, want 3"
grep -qE "no-such-object: Password Modify \(RFC 3062\) of 'uid=nobody,ou=people,$SUFFIX' refused by '$SLAPD_URI': .*\(32\).*\(retrying will not help\)" "$T/err1" ||
	fail "unexpected error for a missing DN: $(cat "$T/err1")"
rc=0
printf 'whatever-1\n' | ctl password set --agent dir --dn "$USER1" --anchor "$uuid2" 2>"$T/err2" || rc=$?
[ "$rc" = 3 ] && grep -qF "anchor-dn-mismatch: entryUUID '$uuid2' is the entry '$USER2', not '$USER1'" "$T/err2" ||
	fail "a DN and anchor that disagree: rc=$rc $(cat "$T/err2")"
binds "$USER1" "$NEWPW" || fail "a refused request changed user1's password"
rc=0
printf 'whatever-1\n' | ctl password set --agent dir --anchor not-a-uuid 2>"$T/err3" || rc=$?
[ "$rc" = 3 ] && grep -qF "bad-anchor: anchor 'not-a-uuid' is not a UUID" "$T/err3" || fail "bad anchor: rc=$rc $(cat "$T/err3")"
rc=0
printf 'whatever-1\n' | ctl password set --agent hr --dn "id=1" 2>"$T/err4" || rc=$?
[ "$rc" = 3 ] && grep -qF "not-supported: 'ma.hr' (loom-ma-file) cannot set passwords" "$T/err4" ||
	fail "a file agent: rc=$rc $(cat "$T/err4")"
# Sealed to another key than the agent holds: it cannot open it.
cp "$T/keys/ma.dir.pub" "$T/keys/ma.dir.pub.real"
ctl keys gen other >/dev/null || fail "keys gen other"
cp "$T/keys/other.pub" "$T/keys/ma.dir.pub"
rc=0
printf 'whatever-1\n' | ctl password set --agent dir --dn "$USER1" 2>"$T/err5" || rc=$?
cp "$T/keys/ma.dir.pub.real" "$T/keys/ma.dir.pub"
[ "$rc" = 3 ] && grep -qF "cannot-open: the password does not open with this agent's key 'ma.dir'" "$T/err5" ||
	fail "a password sealed to another key: rc=$rc $(cat "$T/err5")"
# An agent without a key pair; loomctl has no public key to seal to either.
rc=0
printf 'whatever-1\n' | ctl password set --agent nokey --dn "$USER1" 2>"$T/err6" || rc=$?
[ "$rc" = 1 ] && grep -qF "cannot seal the password to agent 'nokey'" "$T/err6" && grep -qF "loomctl keys gen ma.nokey" "$T/err6" ||
	fail "no public key: rc=$rc $(cat "$T/err6")"
cp "$T/keys/other.pub" "$T/keys/ma.nokey.pub"
rc=0
printf 'whatever-1\n' | ctl password set --agent nokey --dn "$USER1" 2>"$T/err7" || rc=$?
[ "$rc" = 3 ] && grep -qF "no-key: this agent has no key pair to open sealed passwords with" "$T/err7" ||
	fail "an agent without a key: rc=$rc $(cat "$T/err7")"
rc=0
ctl password set --agent dir --dn "$USER1" </dev/null 2>"$T/err8" || rc=$?
[ "$rc" = 1 ] && grep -qF "cannot read the password from standard input: it is empty" "$T/err8" || fail "no password: rc=$rc $(cat "$T/err8")"
rc=0
printf 'a\nb\n' | ctl password set --agent dir --dn "$USER1" 2>"$T/err9" || rc=$?
[ "$rc" = 1 ] && grep -qF "standard input holds more than one line" "$T/err9" || fail "two lines: rc=$rc $(cat "$T/err9")"
rc=0
ctl password set --dn "$USER1" </dev/null 2>"$T/err10" || rc=$?
[ "$rc" = 2 ] && grep -qF -- "--agent NAME is required" "$T/err10" || fail "no --agent: rc=$rc $(cat "$T/err10")"
binds "$USER1" "$NEWPW" || fail "a refused request changed user1's password"
pass "refusals name their reason (missing DN, DN/anchor mismatch, bad anchor, file agent, wrong key, no key, no input)"

# No answer in time (the agent is stopped): loomctl says so, and that it
# cannot know whether the password was set; once the agent goes on, it is.
kill -STOP "${PIDS[ma_dir]}"
rc=0
printf '%s\n' "$NEWPW-late" | ctl -t 1s password set --agent dir --dn "$USER1" 2>"$T/late.err" || rc=$?
kill -CONT "${PIDS[ma_dir]}"
[ "$rc" = 1 ] && grep -qF "no reply from 'ma.dir' within 1000 ms" "$T/late.err" &&
	grep -qF "whether the password was set is unknown" "$T/late.err" || fail "no answer: rc=$rc $(cat "$T/late.err")"
wait_for "the late request to set user1's password" 20 binds "$USER1" "$NEWPW-late"
# An agent that is not running: nothing was sent, and loomctl does not say "unknown".
rc=0
printf 'whatever-1\n' | ctl password set --agent hr2 --dn "$USER1" 2>"$T/none.err" || rc=$?
[ "$rc" = 1 ] && grep -qF "cannot seal the password to agent 'hr2'" "$T/none.err" || fail "no such agent: rc=$rc $(cat "$T/none.err")"
cp "$T/keys/other.pub" "$T/keys/ma.hr2.pub"
rc=0
printf 'whatever-1\n' | ctl password set --agent hr2 --dn "$USER1" 2>"$T/none.err" || rc=$?
[ "$rc" = 1 ] && ! grep -qF "unknown" "$T/none.err" || fail "an agent that is not running: rc=$rc $(cat "$T/none.err")"
pass "no answer in time: exit 1, 'unknown', and the password is set once the agent goes on; no agent: exit 1"

# The bus as the tap saw it: the requests went by, sealed; the password
# never appears in any log, in clear, base64 or hex.
wait_log tap "loom.SetPasswordRequest .*password=<sealed>"
wait_log tap "loom.SetPasswordReply .*ok=true"
wait_log tapjson '"type":"loom.SetPasswordRequest".*"password":"<sealed>"'
# Eight requests reached an agent (loomctl refused the rest itself).
wait_for "eight SetPasswordRequests in the tap" 10 bash -c "[ \$(grep -c 'loom.SetPasswordRequest' '$T/tap.log') -ge 8 ]"
wait_for "eight SetPasswordReplies in the tap" 10 bash -c "[ \$(grep -c 'loom.SetPasswordReply' '$T/tap.log') -ge 8 ]"
hits=0
for pw in "$NEWPW" "$NEWPW-2" "$NEWPW-3" "$NEWPW-late"; do
	for form in "$pw" "$(printf '%s' "$pw" | base64 -w0)" "$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n')" \
		"$(printf '%s' "$pw" | base64 -w0 | tr -d '=')"; do
		n=$(cat "$T"/*.log | grep -cF -- "$form" || true)
		hits=$((hits + n))
	done
done
[ "$hits" = 0 ] || fail "a new password appears $hits times in the logs: $(grep -lF -- "$NEWPW" "$T"/*.log)"
pass "the tap saw every SetPasswordRequest sealed; no log holds the password (clear, base64, hex): 0 hits"
