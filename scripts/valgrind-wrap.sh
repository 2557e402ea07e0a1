#!/usr/bin/env bash
# valgrind-wrap.sh BINARY ARGS... - runs a Loom binary under valgrind's
# memcheck, for tests/integration/lib.sh's LOOM_WRAP (scripts/valgrind.sh).
# The report goes to $LOOM_VALGRIND_DIR/BINARY.PID.log (the process's own
# output stays where the test put it). exec: the PID the test holds is the
# process's.
: "${LOOM_VALGRIND_DIR:?LOOM_VALGRIND_DIR must name the directory for the reports}"
# A process told to kill itself midway (LOOM_WORKFLOW_CRASH_AT, the crash
# tests) exits with its stores open on purpose: its report is named
# BINARY+selfkill, and valgrind.sh counts its errors but not its leaks.
# --child-silent-after-fork: loom-ma-ext's posix_spawn runs as fork + exec
# under valgrind; the child's few instructions before exec are not reported.
supp=$(dirname "$0")/valgrind.supp
name=$(basename "$1")
[ -n "${LOOM_WORKFLOW_CRASH_AT:-}" ] && name=$name+selfkill
exec valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --error-exitcode=99 --track-origins=no --num-callers=30 \
	--child-silent-after-fork=yes --vgdb=no --suppressions="$supp" --log-file="$LOOM_VALGRIND_DIR/$name.%p.log" "$@"
