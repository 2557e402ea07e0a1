/* wf_test_fixture.h - the fixture the workflow unit tests share: policy
 * files written into a temporary directory, and the policy service opened
 * on them (policy, store, XPath provider, schema, sets) without a bus.
 *
 * Include after cmocka.h and workflow.h, and after defining
 *   static char dir[];   the test's temporary directory (mkdtemp'd)
 *   static wf_t W;       the service under test
 * Everything is static inline so a test that uses only part of it does not
 * warn about the rest. */
#ifndef WF_TEST_FIXTURE_H
#define WF_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom_alloc.h"

/* Writes TEXT to DIR/NAME. */
static inline void write_file(const char *name, const char *text)
{
	char *p = loom_sprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

/* Opens W on the policy files in dir and the store in dir/store. */
static inline void h_open(void)
{
	char *err = NULL;
	memset(&W, 0, sizeof W);
	if (wf_policy_load(dir, &W.policy, &err) < 0)
		fail_msg("policy: %s", err);
	char *store = loom_sprintf("%s/store", dir);
	if (wf_store_open(&W, store, &err) < 0)
		fail_msg("store: %s", err);
	free(store);
	wf_xpath_provider(&W, &W.xp);
	if (wf_schema_open(&W, &err) < 0)
		fail_msg("schema: %s", err);
	if (wf_sets_open(&W, &err) < 0)
		fail_msg("sets: %s", err);
}

/* Closes what h_open opened. */
static inline void h_close(void)
{
	wf_sets_close(&W);
	wf_schema_close(&W);
	wf_store_close(&W);
	wf_policy_release(&W.policy);
}

/* Opens W on an empty store. */
static inline void h_fresh(void)
{
	char *cmd = loom_sprintf("rm -rf %s/store", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	h_open();
}

#endif
