/* test_workflow_schema.c - the policy service's schema: loading
 * config/policy files (errors with file:line:column) and the check every
 * request's changes go through (wf_apply_changes), table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workflow.h"
#include "loom_alloc.h"

static char dir[] = "/tmp/test_workflow_schema.XXXXXX";

static void write_file(const char *name, const char *text)
{
	char *p = loom_sprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void rm_files(void)
{
	char *p = loom_sprintf("rm -f %s/*.yaml", dir);
	assert_int_equal(system(p), 0);
	free(p);
}

static const char *const schema =
    "attributes:\n"
    "  - name: AccountName\n"
    "    type: string\n"
    "    regex: '^[a-z]+$'\n"
    "  - name: Age\n"
    "    type: integer\n"
    "  - name: Active\n"
    "    type: boolean\n"
    "  - name: Manager\n"
    "    type: reference\n"
    "  - name: Tags\n"
    "    type: string\n"
    "    multi: true\n"
    "types:\n"
    "  - name: Person\n"
    "    bindings:\n"
    "      - attribute: AccountName\n"
    "        required: true\n"
    "      - attribute: Age\n"
    "      - attribute: Active\n"
    "      - attribute: Manager\n"
    "      - attribute: Tags\n";

static bool fake_ref(void *arg, const char *id, char **ret_id)
{
	(void)arg;
	if (strcmp(id, "11111111-1111-4111-8111-111111111111") != 0)
		return false;
	*ret_id = loom_strdup(id);
	return true;
}

typedef struct change_case {
	const char *label;
	const char *changes;   /* "ATTR=V;+ATTR=V;-ATTR=V" */
	const char *want;      /* NULL: accepted; else a substring of the reason */
} change_case_t;

static Loom__RequestChange **parse(const char *spec, size_t *ret_n)
{
	Loom__RequestChange **v = NULL;
	size_t n = 0;
	char *copy = loom_strdup(spec), *save = NULL;
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		Loom__RequestChange *c = loom_malloc(sizeof *c);
		loom__request_change__init(c);
		c->op = tok[0] == '+' ? LOOM__REQUEST_CHANGE__OP__ADD : tok[0] == '-' ? LOOM__REQUEST_CHANGE__OP__REMOVE
		                                                                    : LOOM__REQUEST_CHANGE__OP__REPLACE;
		if (tok[0] == '+' || tok[0] == '-')
			tok++;
		char *eq = strchr(tok, '=');
		c->attr = loom_strndup(tok, (size_t)(eq - tok));
		c->values = loom_calloc(1, sizeof *c->values);
		c->values[0] = wf_value_str(LOOM__VALUE__V_STR, eq + 1);
		c->n_values = 1;
		v = loom_realloc(v, (n + 1) * sizeof *v);
		v[n++] = c;
	}
	free(copy);
	*ret_n = n;
	return v;
}

static void test_apply(void **state)
{
	(void)state;
	rm_files();
	write_file("schema.yaml", schema);
	wf_policy_t p;
	char *err = NULL;
	assert_int_equal(wf_policy_load(dir, &p, &err), 0);
	const wf_type_t *t = wf_type_find(&p, "Person");
	assert_non_null(t);
	static const change_case_t cases[] = {
		{ "plain create", "AccountName=ada;Age=36;Active=true", NULL },
		{ "regex broken", "AccountName=Ada", "attribute 'AccountName': 'Ada' does not match regex '^[a-z]+$' (" },
		{ "integer type", "AccountName=ada;Age=old", "attribute 'Age': 'old' is not a valid integer (type rule" },
		{ "boolean type", "AccountName=ada;Active=yes", "attribute 'Active': 'yes' is not a valid boolean" },
		{ "required", "Age=3", "attribute 'AccountName' is required for type 'Person' (required binding" },
		{ "unknown attribute", "AccountName=ada;Shoe=4", "attribute 'Shoe' is not bound to type 'Person'" },
		{ "system attribute", "AccountName=ada;ObjectID=x", "attribute 'ObjectID' is set by the service" },
		{ "single-valued", "AccountName=ada;+Age=1;+Age=2", "attribute 'Age' is single-valued" },
		{ "multi-valued", "AccountName=ada;+Tags=a;+Tags=b;+Tags=a", NULL },
		{ "reference resolves", "AccountName=ada;Manager=11111111-1111-4111-8111-111111111111", NULL },
		{ "dangling reference", "AccountName=ada;Manager=nobody", "attribute 'Manager': 'nobody' is no resource" },
		{ "remove a missing value", "AccountName=ada;-Tags=z", "cannot remove 'z', the resource does not have it" },
		{ "built-in binding", "AccountName=ada;DisplayName=Ada;ExpirationTime=2030-01-01", NULL },
		{ "datetime type", "AccountName=ada;ExpirationTime=tomorrow", "'tomorrow' is not a valid datetime" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n;
		Loom__RequestChange **ch = parse(cases[i].changes, &n);
		Loom__Resource *after = NULL;
		char *reason = NULL;
		int rc = wf_apply_changes(&p, t, NULL, ch, n, fake_ref, NULL, &after, &reason);
		if (cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("%s: refused: %s", cases[i].label, reason);
			assert_non_null(after);
			protobuf_c_message_free_unpacked(&after->base, NULL);
		} else {
			if (rc == 0)
				fail_msg("%s: accepted", cases[i].label);
			if (strstr(reason, cases[i].want) == NULL)
				fail_msg("%s: reason '%s' lacks '%s'", cases[i].label, reason, cases[i].want);
			free(reason);
		}
		for (size_t k = 0; k < n; k++)
			protobuf_c_message_free_unpacked(&ch[k]->base, NULL);
		free(ch);
	}
	/* a set of values keeps each once */
	size_t n;
	Loom__RequestChange **ch = parse("AccountName=ada;+Tags=a;+Tags=b;+Tags=a", &n);
	Loom__Resource *after = NULL;
	char *reason = NULL;
	assert_int_equal(wf_apply_changes(&p, t, NULL, ch, n, fake_ref, NULL, &after, &reason), 0);
	assert_int_equal(wf_res_attr(after, "Tags")->n_values, 2);
	assert_int_equal(wf_res_attr(after, "Age") == NULL, 1);
	protobuf_c_message_free_unpacked(&after->base, NULL);
	for (size_t k = 0; k < n; k++)
		protobuf_c_message_free_unpacked(&ch[k]->base, NULL);
	free(ch);
	wf_policy_release(&p);
}

typedef struct load_case {
	const char *label;
	const char *text;      /* an extra file beside schema.yaml */
	const char *want;      /* substring of the error, after the directory */
} load_case_t;

static void test_load_errors(void **state)
{
	(void)state;
	static const load_case_t cases[] = {
		{ "bad type", "attributes:\n  - name: X\n    type: text\n", "/zbad.yaml:3:11: key 'attributes[0].type': bad value 'text'" },
		{ "bad regex", "attributes:\n  - name: X\n    type: string\n    regex: 'a('\n", "/zbad.yaml:4:13: attribute 'X': bad regex 'a('" },
		{ "regex on integer", "attributes:\n  - name: X\n    type: integer\n    regex: 'a'\n", "/zbad.yaml:4:13: attribute 'X': a regex applies to string attributes only" },
		{ "duplicate attribute", "attributes:\n  - name: Age\n    type: integer\n", "/zbad.yaml:2:11: attribute 'Age' is defined twice" },
		{ "unknown binding", "types:\n  - name: Person\n    bindings:\n      - attribute: Nope\n", "/zbad.yaml:4:20: type 'Person': binding of unknown attribute 'Nope'" },
		{ "bad mpr filter", "mprs:\n  - name: m\n    requesters: /Person[\n    operations: [modify]\n", "/zbad.yaml:3:25: expected an attribute name" },
		{ "mpr without requesters", "mprs:\n  - name: m\n    operations: [modify]\n", "/zbad.yaml:2:11: mpr 'm': give exactly one of requesters" },
		{ "mpr bad operation", "mprs:\n  - name: m\n    requesters: /Person\n    operations: [frob]\n", "mpr 'm': operation 'frob'" },
		{ "mpr relative not a reference", "mprs:\n  - name: m\n    relative_to_target: Age\n    operations: [modify]\n", "/zbad.yaml:3:25: mpr 'm': relative_to_target 'Age' is not a reference" },
		{ "unknown key", "mprs:\n  - name: m\n    requestors: /Person\n    operations: [modify]\n", "/zbad.yaml:3:5: unknown key 'requestors'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rm_files();
		write_file("schema.yaml", schema);
		write_file("zbad.yaml", cases[i].text);
		wf_policy_t p;
		char *err = NULL;
		if (wf_policy_load(dir, &p, &err) == 0)
			fail_msg("%s: loaded", cases[i].label);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", cases[i].label, err, cases[i].want);
		free(err);
	}
	rm_files();
	wf_policy_t p;
	char *err = NULL;
	assert_int_equal(wf_policy_load(dir, &p, &err), -1);
	assert_non_null(strstr(err, "no *.yaml policy file"));
	free(err);
	/* the shipped default loads */
	assert_int_equal(wf_policy_load(LOOM_SOURCE_DIR "/config/policy", &p, &err), 0);
	assert_non_null(wf_type_find(&p, "ManagementPolicyRule"));
	assert_int_equal(p.nmprs, 3);
	wf_policy_release(&p);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_load_errors),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm_files();
	rmdir(dir);
	return rc;
}
