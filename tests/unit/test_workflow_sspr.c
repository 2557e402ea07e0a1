/* test_workflow_sspr.c - self-service password reset (workflow_sspr.c):
 * answer normalisation and sspr.yaml checking, table-driven. The gates and
 * the reset run end to end in tests/integration/sspr.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workflow.h"

typedef struct norm_case {
	const char *label;
	const char *in;            /* an answer as typed */
	const char *want;          /* normalised */
} norm_case_t;

static const norm_case_t norm_cases[] = {
	{ "as typed", "rex", "rex" },
	{ "upper case folded", "Saint-Ouen", "saint-ouen" },
	{ "outer blanks dropped", "  \tParis \r\n", "paris" },
	{ "inner runs made one space", "Batavus \t  Flamingo   1987", "batavus flamingo 1987" },
	{ "only blanks: empty", " \t ", "" },
	{ "empty", "", "" },
	{ "non-ASCII kept as is", "Zürich", "zürich" },
};

static void test_normalize(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
		const norm_case_t *c = &norm_cases[i];
		char *out = malloc(strlen(c->in) + 1);
		size_t n = wf_sspr_normalize(c->in, out);
		if (strcmp(out, c->want) != 0 || n != strlen(c->want))
			fail_msg("%s: '%s' normalised to '%s' (%zu), want '%s'", c->label, c->in, out, n, c->want);
		free(out);
	}
}

typedef struct cfg_case {
	const char *label;
	const char *yaml;          /* sspr.yaml; NULL: no file */
	const char *want;          /* NULL: accepted; else a substring of the error */
} cfg_case_t;

#define QS "questions: [a, b, c, d]\n"

static const cfg_case_t cfg_cases[] = {
	{ "no file: SSPR off", NULL, NULL },
	{ "the smallest file", "agent: ldap1\n" QS "register: 3\npresent: 2\nrequire: 2\n", NULL },
	{ "every key", "agent: ldap1\n" QS "register: 4\npresent: 3\nrequire: 1\n"
	  "lockout: { threshold: 5, duration: 1h, permanent_after: 2 }\npassword_challenge: false\n"
	  "argon2_opslimit: 3\nargon2_memlimit: 32MiB\n", NULL },
	{ "no agent", QS "register: 3\npresent: 2\nrequire: 2\n", "agent" },
	{ "unknown key", "agent: a\n" QS "register: 3\npresent: 2\nrequire: 2\nquestion_count: 2\n",
	  "unknown key 'question_count'" },
	{ "a bad number", "agent: a\n" QS "register: 3\npresent: 2\nrequire: two\n", "key 'require': bad value 'two'" },
	{ "a bad duration", "agent: a\n" QS "register: 3\npresent: 2\nrequire: 2\nlockout: { duration: soon }\n",
	  "key 'lockout.duration': bad value 'soon'" },
	{ "register more than the questions", "agent: a\n" QS "register: 5\npresent: 2\nrequire: 2\n",
	  "register (5) <= the 4 questions" },
	{ "present more than registered", "agent: a\n" QS "register: 2\npresent: 3\nrequire: 2\n", "present (3) <= register (2)" },
	{ "require more than presented", "agent: a\n" QS "register: 3\npresent: 2\nrequire: 3\n", "require (3) <= present (2)" },
	{ "threshold 0", "agent: a\n" QS "register: 3\npresent: 2\nrequire: 2\nlockout: { threshold: 0 }\n", "threshold" },
};

static void test_config(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_workflow_sspr.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[sizeof dir + 16];
	snprintf(path, sizeof path, "%s/sspr.yaml", dir);
	for (size_t i = 0; i < sizeof cfg_cases / sizeof cfg_cases[0]; i++) {
		const cfg_case_t *c = &cfg_cases[i];
		unlink(path);
		if (c->yaml) {
			FILE *f = fopen(path, "w");
			assert_non_null(f);
			fputs(c->yaml, f);
			fclose(f);
		}
		char *err = NULL;
		int rc = wf_sspr_check(path, &err);
		if (c->want == NULL && rc != 0)
			fail_msg("%s: refused: %s", c->label, err);
		if (c->want && (rc == 0 || strstr(err, c->want) == NULL))
			fail_msg("%s: want an error with '%s', got %s", c->label, c->want, rc == 0 ? "none" : err);
		if (c->want && strstr(err, "sspr.yaml") == NULL)
			fail_msg("%s: the error does not name the file: %s", c->label, err);
		free(err);
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
