#!/usr/bin/env bash
# valgrind.sh [--build DIR] [--report] [TEST...] - runs integration scenarios with
# every Loom daemon under valgrind memcheck (docs/testing.md).
#
# Each TEST (default: the main scenarios below) is tests/integration/TEST.sh
# run with LOOM_WRAP=scripts/valgrind-wrap.sh, so that lib.sh's start puts
# valgrind before each Loom binary it starts (slapd & co. run as they are),
# and LOOM_WAIT_SCALE (default 10) stretching the tests' waits. Then one
# line per binary: processes, errors (invalid reads/writes, uses of
# uninitialised values, bad frees: valgrind's ERROR SUMMARY, definite leaks
# included), definitely lost bytes/blocks, and processes whose report has
# no summary (killed with SIGKILL on purpose by the scenario). The reports
# stay in BUILD/valgrind/TEST/. Exits 1 when a test failed or any process
# had an error or a definite leak. --report: only the table, over the
# reports of the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
bdir=build
report_only=
tests=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) bdir=${2:?--build needs DIR}; shift 2 ;;
	--report) report_only=1; shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "valgrind.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) tests+=("$1"); shift ;;
	esac
done
[ ${#tests[@]} -gt 0 ] || tests=(file_formats delta_import ldap_agent workflow_requests pcns_ldap ext_agent)
for t in "${tests[@]}"; do
	[ -f "tests/integration/$t.sh" ] || { echo "valgrind.sh: no test 'tests/integration/$t.sh'" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
if [ -z "$report_only" ]; then
	echo "valgrind.sh: building $bdir" >&2
	./scripts/build.sh "$bdir" >/dev/null
fi
bdir=$(cd "$bdir" && pwd)

out=$bdir/valgrind
failed=0
[ -n "$report_only" ] && tests=()
for t in "${tests[@]}"; do
	rm -rf "${out:?}/$t"
	mkdir -p "$out/$t"
	echo "valgrind.sh: $t" >&2
	if ! LOOM_WRAP="$src/scripts/valgrind-wrap.sh" LOOM_VALGRIND_DIR="$out/$t" LOOM_WAIT_SCALE="${LOOM_WAIT_SCALE:-10}" \
		LOOM_BUILD_DIR="$bdir" LOOM_SOURCE_DIR="$src" bash "tests/integration/$t.sh" >"$out/$t.out" 2>&1; then
		echo "valgrind.sh: $t FAILED under valgrind (output: $out/$t.out)" >&2
		tail -n 15 "$out/$t.out" | sed 's/^/    /' >&2
		failed=1
	fi
done

# One line per binary over every report.
printf '%-24s %6s %8s %16s %10s\n' binary procs errors "definite leaks" no-summary
for bin in $(find "$out" -mindepth 2 -name '*.[0-9]*.log' | sed 's|.*/||; s|\.[0-9]*\.log$||' | sort -u); do
	procs=0 errors=0 bytes=0 blocks=0 nosum=0
	for f in $(find "$out" -mindepth 2 -name "$bin.[0-9]*.log"); do
		procs=$((procs + 1))
		e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
		if [ -z "$e" ]; then
			nosum=$((nosum + 1))
			continue
		fi
		case $bin in
		*+selfkill)
			# killed itself on purpose (valgrind-wrap.sh): what it holds is
			# not lost, but every error counts; definite leaks are errors too
			# (--errors-for-leak-kinds=definite): take them out again.
			ctx=$(grep -c 'are definitely lost in loss record' "$f" || true)
			errors=$((errors + e - ctx))
			continue ;;
		esac
		errors=$((errors + e))
		l=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' "$f" | tr -d , | tail -1)
		if [ -n "$l" ]; then
			bytes=$((bytes + ${l% *}))
			blocks=$((blocks + ${l#* }))
		fi
	done
	printf '%-24s %6d %8d %16s %10d\n' "$bin" "$procs" "$errors" "$bytes B/$blocks" "$nosum"
	if [ "$errors" -ne 0 ] || [ "$bytes" -ne 0 ]; then
		failed=1
		grep -l -E 'ERROR SUMMARY: [1-9]' $(find "$out" -mindepth 2 -name "$bin.[0-9]*.log") | head -3 | sed 's/^/    report: /'
	fi
done
exit $failed
