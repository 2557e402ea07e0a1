/* fuzz.h - what the fuzz targets share. FUZZ_BUG is a property that does
 * not hold: it aborts, which libFuzzer (and the replay driver) report as a
 * crash with this message. */
#ifndef LOOM_FUZZ_H
#define LOOM_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_BUG(msg)                                                         \
	do {                                                                  \
		fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, msg); \
		abort();                                                      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
