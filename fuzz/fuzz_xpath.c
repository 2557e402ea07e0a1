/* fuzz_xpath.c - lib/loom_xpath.c and loom_xpath_eval.c: FIM XPath filters
 * (raw, or inside a <Filter> element) compiled, checked against the schema
 * and evaluated over the in-memory store of tests/data/xpath/resources.yaml
 * (people, managers, groups, sets). The whole input is the filter text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "loom_xpath.h"
#include "loom_xpath_mem.h"

static loom_xpath_mem_t *store;
static loom_xpath_provider_t provider;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char *err = NULL;
	store = loom_xpath_mem_new();
	if (loom_xpath_mem_load_yaml(store, LOOM_SOURCE_DIR "/tests/data/xpath/resources.yaml", &err) < 0) {
		fprintf(stderr, "fuzz_xpath: %s\n", err);
		exit(2);
	}
	loom_xpath_mem_provider(store, &provider);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (store == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	loom_xpath_compile_opts_t o = { .file = "fuzz.yaml", .line = 2, .column = 5 };
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e = { 0 };
	if (loom_xpath_compile(text, &o, &x, &e) < 0) {
		if (e.text == NULL || e.text[0] == '\0')
			FUZZ_BUG("xpath refused without a message");
		loom_xpath_error_release(&e);
		free(text);
		return 0;
	}
	if (strcmp(loom_xpath_text(x), text) != 0)
		FUZZ_BUG("xpath text differs from the compiled text");
	(void)loom_xpath_deps(x);
	(void)loom_xpath_depends_on(x, "Person", "Manager");
	(void)loom_xpath_depends_inner(x, "Group", "ExplicitMember");
	if (loom_xpath_check(x, &provider, &e) < 0)
		loom_xpath_error_release(&e);
	loom_xpath_eval_opts_t eo = { .now_us = 1767225600000000LL };
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	if (loom_xpath_eval(x, &provider, &eo, &r, &e) == 0) {
		for (size_t i = 1; i < r.n; i++)
			if (r.rids[i - 1] >= r.rids[i])
				FUZZ_BUG("xpath result not ascending and unique");
		for (size_t i = 0; i < r.n; i++)
			if (loom_xpath_mem_object_id(store, r.rids[i]) == NULL)
				FUZZ_BUG("xpath selected a resource the store does not have");
	} else {
		loom_xpath_error_release(&e);
	}
	loom_xpath_result_release(&r);
	loom_xpath_destroy(&x);
	int64_t us;
	(void)loom_xpath_parse_time(text, size, &us);
	(void)loom_xpath_parse_duration(text, size, &us);
	free(text);
	return 0;
}
