# lib.sh - helpers for Loom's integration tests (sourced, not run).
#
# Each test gets a fresh temporary directory with its own deployment file,
# starts the real binaries there, waits for real events (never a fixed
# sleep), and kills everything it started on exit. Set LOOM_KEEP=1 to keep
# the directory for a post-mortem.
set -u
# Tests wait for lines in the logs of programs they start, some of them
# Python (samba-tool syncpasswords, smtp_sink.py, the example ext agent):
# Python buffers stdout when it is not a terminal, so without this a line
# such as syncpasswords' "Waiting for..." may never reach the log in time.
# (It was set in the developers' shells; a clean CI machine has not.)
export PYTHONUNBUFFERED=1

: "${LOOM_BUILD_DIR:?LOOM_BUILD_DIR must point at the build tree}"
: "${LOOM_SOURCE_DIR:?LOOM_SOURCE_DIR must point at the source tree}"
BROKER=$LOOM_BUILD_DIR/broker/loom-broker
TAP=$LOOM_BUILD_DIR/broker/loom-tap
CTL=$LOOM_BUILD_DIR/cli/loomctl
TESTSVC=$LOOM_BUILD_DIR/tests/loom-testsvc
BADPEER=$LOOM_BUILD_DIR/tests/loom-badpeer

T=$(mktemp -d "${TMPDIR:-/tmp}/loom-it.XXXXXX")
CFG=$T/loom.yaml
declare -A PIDS=()
TEST_NAME=$(basename "$0" .sh)

cleanup() {
	local rc=$?
	for name in "${!PIDS[@]}"; do
		kill "${PIDS[$name]}" 2>/dev/null
	done
	# Every process must stop on SIGTERM; one that does not within 15 s is
	# killed and fails the test.
	local deadline=$((SECONDS + 15 * ${LOOM_WAIT_SCALE:-1}))
	for name in "${!PIDS[@]}"; do
		while kill -0 "${PIDS[$name]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.05
		done
		if kill -0 "${PIDS[$name]}" 2>/dev/null; then
			echo "FAIL $TEST_NAME: $name did not stop on SIGTERM" >&2
			kill -9 "${PIDS[$name]}" 2>/dev/null
			rc=1
		fi
		wait "${PIDS[$name]}" 2>/dev/null
	done
	# gpg starts a gpg-agent of its own for a test's GNUPGHOME (the Samba
	# syncpasswords tests): it daemonizes out of PIDS, so stop it here, or
	# it outlives a failed test whose directory is kept.
	if [ -n "${GNUPGHOME:-}" ] && [ "${GNUPGHOME#"$T"}" != "$GNUPGHOME" ] && command -v gpgconf >/dev/null; then
		gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null
	fi
	# A sanitizer report in any process's log fails the test (in the
	# ASan+UBSan build, daemons report leaks and errors when they exit).
	local bad
	# (state/log: the processes loomd starts write there)
	bad=$(grep -lE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$T"/*.log "$T"/state/log/*.log 2>/dev/null)
	if [ -n "$bad" ]; then
		echo "FAIL $TEST_NAME: sanitizer report in: $bad" >&2
		for f in $bad; do grep -A30 -E "ERROR: |runtime error:" "$f" | head -n 60 >&2; done
		rc=1
	fi
	if [ "$rc" -ne 0 ] || [ -n "${LOOM_KEEP:-}" ]; then
		echo "== $TEST_NAME: kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT

fail() {
	echo "FAIL $TEST_NAME: $*" >&2
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f (last 30 lines)" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}

pass() {
	echo "ok $TEST_NAME: $*"
}

# write_config [extra yaml for the bus section...]
write_config() {
	{
		echo "state_dir: $T/state"
		echo "log:"
		echo "  level: ${LOOM_TEST_LOG_LEVEL:-info}"
		echo "bus:"
		echo "  heartbeat: 200ms"
		echo "  liveness: $((5 * ${LOOM_WAIT_SCALE:-1}))"
		echo "  request_timeout: $((2 * ${LOOM_WAIT_SCALE:-1}))s"
		echo "  keys_dir: $T/keys"
		for line in "$@"; do echo "  $line"; done
	} >"$CFG"
	mkdir -p "$T/keys"
}

# start NAME COMMAND... : runs in the background, output in $T/NAME.log.
# LOOM_WRAP (words, e.g. scripts/valgrind-wrap.sh): put before a Loom
# binary of the build tree (also after "env VAR=..."), never before slapd &
# co. The wrapper must exec the binary so that $! stays its PID.
start() {
	local name=$1
	shift
	# Emptied here, not by the background job's redirection: a restarted
	# process's wait_log must not find the last instance's lines.
	: >"$T/$name.log"
	if [ -n "${LOOM_WRAP:-}" ]; then
		local pre=()
		if [ "$1" = env ]; then
			pre=(env)
			shift
			while [[ $1 == *=* ]]; do pre+=("$1"); shift; done
		fi
		case $1 in
		"$LOOM_BUILD_DIR"/*) set -- "${pre[@]}" $LOOM_WRAP "$@" ;;
		*) set -- "${pre[@]}" "$@" ;;
		esac
	fi
	"$@" >>"$T/$name.log" 2>&1 &
	PIDS[$name]=$!
}

# stop NAME [SIGNAL]
stop() {
	local name=$1 sig=${2:-TERM}
	local pid=${PIDS[$name]:-}
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	local rc=$?
	unset "PIDS[$name]"
	return $rc
}

# wait_for DESCRIPTION SECONDS COMMAND... : polls every 50 ms
wait_for() {
	local what=$1 secs=$2
	shift 2
	# LOOM_WAIT_SCALE: a factor for every wait (binaries under valgrind are
	# 10-50 times slower).
	secs=$((secs * ${LOOM_WAIT_SCALE:-1}))
	local deadline=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail "timed out after ${secs}s waiting for $what"
		fi
		sleep 0.05
	done
}

# log_has FILE PATTERN : grep -E in a log
log_has() {
	grep -qE -- "$2" "$1"
}

# wait_log NAME PATTERN [SECONDS]
wait_log() {
	wait_for "'$2' in $1.log" "${3:-10}" log_has "$T/$1.log" "$2"
}

# wait_log_fixed NAME STRING [SECONDS] : a literal string, no regex
wait_log_fixed() {
	wait_for "'$2' in $1.log" "${3:-10}" grep -qF -- "$2" "$T/$1.log"
}

# count_lines FILE PATTERN
count_lines() {
	grep -cE -- "$2" "$1" 2>/dev/null || true
}

# free_port : a TCP port on 127.0.0.1 nobody listens on
free_port() {
	# below the kernel's ephemeral range: a port picked there can be taken
	# by any outgoing connection (a ZeroMQ connect, a client) before the
	# test binds it (seen on a fresh machine: Address already in use)
	local p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	[ "$lo" -gt 12000 ] || lo=32768
	for _ in $(seq 1 50); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port found"
}

# ctl ARGS... : loomctl on this test's deployment. Its stderr is also kept in
# $T/ctl.log, so a sanitizer report from a loomctl whose exit status a
# pipeline hides still fails the test (see cleanup).
ctl() {
	# stderr through a file, not a process substitution: the caller's
	# 2>FILE must hold it when ctl returns (tee would still be writing).
	local rc=0 e="$T/.ctl.err.$BASHPID"
	"$CTL" -c "$CFG" "$@" 2>"$e" || rc=$?
	cat "$e" >>"$T/ctl.log"
	cat "$e" >&2
	rm -f "$e"
	return "$rc"
}

# cs_count AGENT [cs search options...] : how many connector space objects
# match; fails the test when loomctl fails (an empty answer is not 0).
cs_count() {
	local out
	out=$(ctl cs search "$@" -n 10000) || fail "loomctl cs search $* failed"
	echo "$out" | tail -n +2 | grep -vc '^(more objects match'
}

start_broker() {
	start broker "$BROKER" -c "$CFG" "$@"
	wait_log broker "started pid=" 10
}

ENGINE=$LOOM_BUILD_DIR/engine/loom-engine
MAFILE=$LOOM_BUILD_DIR/agents/loom-ma-file

# run_profile AGENT PROFILE [WANT_STATUS] : runs it, output in $T/run.out;
# fails the test unless loomctl exits with WANT_STATUS (default 0).
run_profile() {
	local want=${3:-0} rc=0
	ctl -t $((30 * ${LOOM_WAIT_SCALE:-1}))s run "$1" "$2" >"$T/run.out" 2>"$T/run.err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		cat "$T/run.out" "$T/run.err" >&2
		fail "loomctl run $1 $2 exited $rc, want $want"
	fi
}

# counter NAME : the value of a counter in the last run_profile output (0 when absent)
counter() {
	local v
	v=$(awk -v n="$1" '$1 == n { print $2 }' "$T/run.out" | head -n1)
	echo "${v:-0}"
}

# expect_counter NAME VALUE
expect_counter() {
	local got
	got=$(counter "$1")
	[ "$got" = "$2" ] || { cat "$T/run.out" >&2; fail "counter $1 is $got, want $2"; }
}

# start_agent NAME : loom-ma-file for agents/NAME.yaml
start_agent() {
	start "ma_$1" "$MAFILE" -c "$CFG" --agent "$1"
	wait_log "ma_$1" "registered with broker"
}

start_engine() {
	start engine "$ENGINE" -c "$CFG"
	wait_log engine "registered with broker"
}

WORKFLOW=$LOOM_BUILD_DIR/workflow/loom-workflow

# start_workflow : loom-workflow, with the policy files of $T/policy
start_workflow() {
	start workflow "$WORKFLOW" -c "$CFG"
	wait_log workflow "registered with broker"
	# the broker may still be forgetting an instance stopped just before:
	# ready when a request reaches this one
	wait_for "loom-workflow to answer" 10 "$CTL" -c "$CFG" -t 1s requests -n 1
}

# start_smtp_sink [--fail N] : an SMTP server on a free loopback port
# (SMTP_PORT) writing each message it takes to $T/mail/NNNN.eml
start_smtp_sink() {
	SMTP_PORT=$(free_port)
	mkdir -p "$T/mail"
	start smtp python3 "$LOOM_SOURCE_DIR/tests/integration/smtp_sink.py" "$SMTP_PORT" "$T/mail" "$@"
	wait_log smtp "listening on"
}

# mail_files PATTERN... : the messages matching every PATTERN (grep -E), one per line
mail_files() {
	local f p ok
	for f in "$T"/mail/*.eml; do
		[ -f "$f" ] || continue
		ok=1
		for p in "$@"; do grep -qE -- "$p" "$f" || { ok=0; break; }; done
		[ "$ok" = 1 ] && echo "$f"
	done
	return 0
}

# wait_mail PATTERN... : waits (15 s) for a message matching every PATTERN; prints its file
has_mail() {
	[ -n "$(mail_files "$@")" ]
}
wait_mail() {
	wait_for "a mail matching $*" 15 has_mail "$@"
	mail_files "$@" | head -n1
}
