/* loom_types.c - registry of bus message types (generated list, looked up here). */
#include "loom_types.h"

#include <string.h>

#include "envelope.pb-c.h"

extern const ProtobufCMessageDescriptor *const loom_types_gen[];

const ProtobufCMessageDescriptor *loom_types_find(const char *name)
{
	/* A few dozen types: a linear scan costs less than keeping a hash. */
	for (const ProtobufCMessageDescriptor *const *d = loom_types_gen; *d; d++)
		if (strcmp((*d)->name, name) == 0)
			return *d;
	return NULL;
}

const ProtobufCMessageDescriptor *const *loom_types_all(void)
{
	return loom_types_gen;
}

bool loom_types_is_sealed(const ProtobufCMessageDescriptor *desc)
{
	return desc == &loom__sealed__descriptor;
}
