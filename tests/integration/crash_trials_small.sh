#!/usr/bin/env bash
# Crash trials at a small size (scripts/crash-trials.sh, issue 11 item 2):
# an HR CSV of 2,000 people -> slapd + the policy service, three trials each
# kill -9ing a random Loom process at a random moment of the cycle; every
# trial must end equal to the uninterrupted reference (entries, values,
# links, exports per DN). LOOM_TRIALS / LOOM_TRIALS_OBJECTS / LOOM_TRIALS_SEED
# change the defaults; the seed is printed so a failure can be replayed.
: "${LOOM_BUILD_DIR:?LOOM_BUILD_DIR must point at the build tree}"
: "${LOOM_SOURCE_DIR:?LOOM_SOURCE_DIR must point at the source tree}"
exec bash "$LOOM_SOURCE_DIR/scripts/crash-trials.sh" --trials "${LOOM_TRIALS:-3}" \
	--objects "${LOOM_TRIALS_OBJECTS:-2000}" ${LOOM_TRIALS_SEED:+--seed "$LOOM_TRIALS_SEED"}
