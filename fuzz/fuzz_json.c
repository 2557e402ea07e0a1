/* fuzz_json.c - lib/loom_json.c: the strict JSON parser (the extensible
 * agent's lines, the CLI's and the policy service's JSON), and the tree it
 * builds: every string is NUL-terminated at its length, every object's
 * members have keys. The whole input is the text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_json.h"

static void walk(const loom_json_t *j, unsigned depth)
{
	if (depth > 100000)
		FUZZ_BUG("json deeper than its text");
	(void)loom_json_type_name(j->type);
	switch (j->type) {
	case LOOM_JSON_STRING:
		if (j->s == NULL || j->s[j->len] != '\0' || strlen(j->s) != j->len)
			FUZZ_BUG("json string not NUL-terminated at its length (or a NUL inside)");
		break;
	case LOOM_JSON_OBJECT:
		for (size_t i = 0; i < j->n; i++) {
			if (j->keys[i] == NULL)
				FUZZ_BUG("json member without a key");
			if (loom_json_get(j, j->keys[i]) == NULL)
				FUZZ_BUG("json member not found by its key");
			walk(j->items[i], depth + 1);
		}
		break;
	case LOOM_JSON_ARRAY:
		for (size_t i = 0; i < j->n; i++)
			walk(j->items[i], depth + 1);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	loom_json_t *j = NULL;
	char *err = NULL;
	if (loom_json_parse((const char *)data, size, &j, &err) == 0) {
		if (j == NULL)
			FUZZ_BUG("json parse succeeded without a tree");
		walk(j, 0);
		loom_json_free(&j);
	} else {
		if (err == NULL || err[0] == '\0')
			FUZZ_BUG("json parse failed without a message");
		free(err);
	}
	return 0;
}
