#!/usr/bin/env bash
# test.sh - install dependencies, build, and run the whole test suite twice:
# a normal build, then an ASan+UBSan build of everything. Ends with ctest's
# summary of the sanitizer run; exits non-zero if either run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1
jobs=$(nproc)

./scripts/build.sh build || exit 1
echo "== test suite (RelWithDebInfo build)"
(cd build && ctest --output-on-failure -j"$jobs")
plain=$?

./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DLOOM_SANITIZE=ON || exit 1
echo "== test suite (ASan + UBSan build)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")
asan=$?

if [ $plain -ne 0 ] || [ $asan -ne 0 ]; then
	echo "test.sh: FAILED (plain build: exit $plain, sanitizer build: exit $asan)"
	exit 1
fi
