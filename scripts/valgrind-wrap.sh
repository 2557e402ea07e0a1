#!/usr/bin/env bash
# valgrind-wrap.sh BINARY ARGS... - runs a Loom binary under valgrind's
# memcheck, for tests/integration/lib.sh's LOOM_WRAP (scripts/valgrind.sh).
# The report goes to $LOOM_VALGRIND_DIR/BINARY.PID.log (the process's own
# output stays where the test put it). exec: the PID the test holds is the
# process's.
: "${LOOM_VALGRIND_DIR:?LOOM_VALGRIND_DIR must name the directory for the reports}"
supp=$(dirname "$0")/valgrind.supp
exec valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --error-exitcode=99 --track-origins=no --num-callers=30 \
	--suppressions="$supp" --log-file="$LOOM_VALGRIND_DIR/$(basename "$1").%p.log" "$@"
