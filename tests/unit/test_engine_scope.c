/* test_engine_scope.c - FIM scoping filters: every operator, multi-valued
 * and absent attributes, groups (any) of clauses (all), and the load-time
 * checks. Table-driven: each case a label, the object's attributes, the
 * filter and the wanted answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "loom_alloc.h"

/* An object: "name=v1|v2;name2=v" */
static Loom__Attr **make_attrs(const char *spec, size_t *ret_n)
{
	Loom__Attr **attrs = NULL;
	size_t n = 0;
	char *copy = loom_strdup(spec), *save = NULL;
	for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(part, '=');
		*eq = '\0';
		Loom__Value *vals[8];
		size_t nv = 0;
		char *save2 = NULL;
		for (char *v = strtok_r(eq + 1, "|", &save2); v && nv < 8; v = strtok_r(NULL, "|", &save2))
			vals[nv++] = loom_value_str(v, strlen(v));
		loom_attrs_set(&attrs, &n, part, vals, nv);
		for (size_t i = 0; i < nv; i++)
			loom_value_free(vals[i]);
	}
	free(copy);
	*ret_n = n;
	return attrs;
}

typedef struct obj { Loom__Attr **attrs; size_t n; } obj_t;

static const Loom__Attr *lookup(void *arg, const char *name)
{
	obj_t *o = arg;
	return loom_attr_find(o->attrs, o->n, name);
}

typedef struct scope_case {
	const char *label;
	const char *object;            /* attributes, "a=v1|v2;b=v" */
	int op;                        /* one clause: attribute "a" */
	const char *value;
	const char *values[4];         /* ISIN / ISNOTIN */
	bool want;
} scope_case_t;

static const scope_case_t cases[] = {
	{ "EQUAL matches", "a=Sales", LOOM_SCOPE_EQUAL, "sales", { NULL }, true },
	{ "EQUAL other value", "a=Research", LOOM_SCOPE_EQUAL, "Sales", { NULL }, false },
	{ "EQUAL any of several values", "a=x|Sales", LOOM_SCOPE_EQUAL, "Sales", { NULL }, true },
	{ "EQUAL absent", "b=1", LOOM_SCOPE_EQUAL, "Sales", { NULL }, false },
	{ "NOTEQUAL other", "a=Research", LOOM_SCOPE_NOTEQUAL, "Sales", { NULL }, true },
	{ "NOTEQUAL same", "a=SALES", LOOM_SCOPE_NOTEQUAL, "Sales", { NULL }, false },
	{ "NOTEQUAL absent holds", "b=1", LOOM_SCOPE_NOTEQUAL, "Sales", { NULL }, true },
	{ "NOTEQUAL one of several equal", "a=x|Sales", LOOM_SCOPE_NOTEQUAL, "Sales", { NULL }, false },
	{ "LESSTHAN integers", "a=9", LOOM_SCOPE_LESSTHAN, "10", { NULL }, true },
	{ "LESSTHAN integers not", "a=10", LOOM_SCOPE_LESSTHAN, "10", { NULL }, false },
	{ "LESSTHAN_OR_EQUAL equal", "a=10", LOOM_SCOPE_LESSTHAN_OR_EQUAL, "10", { NULL }, true },
	{ "GREATERTHAN integers, not as text", "a=100", LOOM_SCOPE_GREATERTHAN, "20", { NULL }, true },
	{ "GREATERTHAN_OR_EQUAL", "a=20", LOOM_SCOPE_GREATERTHAN_OR_EQUAL, "20", { NULL }, true },
	{ "GREATERTHAN strings", "a=beta", LOOM_SCOPE_GREATERTHAN, "Alpha", { NULL }, true },
	{ "CONTAINS", "a=Chief Analyst", LOOM_SCOPE_CONTAINS, "analyst", { NULL }, true },
	{ "CONTAINS not", "a=Engineer", LOOM_SCOPE_CONTAINS, "analyst", { NULL }, false },
	{ "NOTCONTAINS", "a=Engineer", LOOM_SCOPE_NOTCONTAINS, "analyst", { NULL }, true },
	{ "NOTCONTAINS absent holds", "b=1", LOOM_SCOPE_NOTCONTAINS, "x", { NULL }, true },
	{ "STARTSWITH", "a=Chief Analyst", LOOM_SCOPE_STARTSWITH, "chief", { NULL }, true },
	{ "STARTSWITH not", "a=Analyst", LOOM_SCOPE_STARTSWITH, "Chief", { NULL }, false },
	{ "NOTSTARTSWITH", "a=Analyst", LOOM_SCOPE_NOTSTARTSWITH, "Chief", { NULL }, true },
	{ "ENDSWITH", "a=ada@example.com", LOOM_SCOPE_ENDSWITH, "@EXAMPLE.com", { NULL }, true },
	{ "ENDSWITH longer operand", "a=com", LOOM_SCOPE_ENDSWITH, "example.com", { NULL }, false },
	{ "NOTENDSWITH", "a=ada@other.org", LOOM_SCOPE_NOTENDSWITH, "@example.com", { NULL }, true },
	{ "ISNULL absent", "b=1", LOOM_SCOPE_ISNULL, NULL, { NULL }, true },
	{ "ISNULL present", "a=x", LOOM_SCOPE_ISNULL, NULL, { NULL }, false },
	{ "ISNOTNULL present", "a=x", LOOM_SCOPE_ISNOTNULL, NULL, { NULL }, true },
	{ "ISNOTNULL absent", "b=1", LOOM_SCOPE_ISNOTNULL, NULL, { NULL }, false },
	{ "ISIN", "a=Research", LOOM_SCOPE_ISIN, NULL, { "Sales", "research", NULL }, true },
	{ "ISIN not", "a=QA", LOOM_SCOPE_ISIN, NULL, { "Sales", "Research", NULL }, false },
	{ "ISNOTIN", "a=QA", LOOM_SCOPE_ISNOTIN, NULL, { "Sales", "Research", NULL }, true },
	{ "ISNOTIN in", "a=Sales", LOOM_SCOPE_ISNOTIN, NULL, { "Sales", NULL }, false },
	{ "ISBITSET all bits of the mask", "a=514", LOOM_SCOPE_ISBITSET, "2", { NULL }, true },
	{ "ISBITSET a bit missing", "a=512", LOOM_SCOPE_ISBITSET, "2", { NULL }, false },
	{ "ISBITSET not a number", "a=x", LOOM_SCOPE_ISBITSET, "2", { NULL }, false },
	{ "ISNOTBITSET", "a=512", LOOM_SCOPE_ISNOTBITSET, "2", { NULL }, true },
};

static void test_case(void **state)
{
	const scope_case_t *c = *state;
	size_t n;
	obj_t o;
	o.attrs = make_attrs(c->object, &n);
	o.n = n;
	char *values[4] = { NULL };
	size_t nv = 0;
	while (nv < 4 && c->values[nv]) {
		values[nv] = (char *)c->values[nv];
		nv++;
	}
	loom_sync_clause_t clause = { .attribute = "a", .op = c->op, .value = (char *)c->value,
		.values = { .v = values, .n = nv } };
	loom_sync_scopegroup_t group = { .all = { .v = &clause, .n = 1 } };
	loom_cfg_array_t filter = { .v = &group, .n = 1 };
	bool got = eng_scope_match(&filter, lookup, &o, NULL);
	if (got != c->want)
		fail_msg("%s: got %s, want %s", c->label, got ? "in scope" : "out", c->want ? "in scope" : "out");
	loom_attrs_free(o.attrs, o.n);
}

static void test_groups(void **state)
{
	(void)state;
	size_t n;
	obj_t o;
	o.attrs = make_attrs("type=employee;dept=Sales", &n);
	o.n = n;
	loom_sync_clause_t g1[] = {
		{ .attribute = "type", .op = LOOM_SCOPE_EQUAL, .value = "employee" },
		{ .attribute = "dept", .op = LOOM_SCOPE_NOTEQUAL, .value = "Sales" },
	};
	loom_sync_clause_t g2[] = { { .attribute = "dept", .op = LOOM_SCOPE_STARTSWITH, .value = "Sa" } };
	loom_sync_scopegroup_t groups[] = { { .all = { .v = g1, .n = 2 } }, { .all = { .v = g2, .n = 1 } } };
	loom_cfg_array_t only_first = { .v = groups, .n = 1 };
	loom_cfg_array_t both = { .v = groups, .n = 2 };
	loom_cfg_array_t none = { .v = NULL, .n = 0 };
	assert_false(eng_scope_match(&only_first, lookup, &o, NULL)); /* AND inside a group */
	assert_true(eng_scope_match(&both, lookup, &o, NULL));        /* OR between groups */
	assert_true(eng_scope_match(&none, lookup, &o, NULL));        /* no filter: everything */
	loom_attrs_free(o.attrs, o.n);
}

static void test_checks(void **state)
{
	(void)state;
	loom_sync_clause_t cl[] = {
		{ .attribute = "m", .op = LOOM_SCOPE_ISMEMBEROF },
		{ .attribute = "d", .op = LOOM_SCOPE_ISIN },
		{ .attribute = "e", .op = LOOM_SCOPE_EQUAL },
		{ .attribute = "f", .op = LOOM_SCOPE_ISBITSET, .value = "two" },
		{ .attribute = "g", .op = LOOM_SCOPE_ISNULL },
	};
	loom_sync_scopegroup_t g = { .all = { .v = cl, .n = 5 } };
	loom_sync_rule_t rule = { .name = "r", .scope_filter = { .v = &g, .n = 1 } };
	loom_buf_t out = LOOM_BUF_INIT;
	eng_scope_check("s.yaml", &rule, &out);
	const char *want =
	    "s.yaml: rule 'r': scope_filter group 1 clause 1 (m): ISMEMBEROF and ISNOTMEMBEROF need 'value', the "
	    "group's DN\n"
	    "s.yaml: rule 'r': scope_filter group 1 clause 2 (d): ISIN and ISNOTIN need 'values', a list\n"
	    "s.yaml: rule 'r': scope_filter group 1 clause 3 (e): this operator needs 'value'\n"
	    "s.yaml: rule 'r': scope_filter group 1 clause 4 (f): ISBITSET and ISNOTBITSET need an integer 'value' "
	    "(the bit mask)\n";
	assert_string_equal(loom_buf_cstr(&out), want);
	loom_buf_release(&out);
}

int main(void)
{
	struct CMUnitTest tests[sizeof cases / sizeof *cases + 2];
	size_t n = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test(test_case);
		tests[n].name = cases[i].label;
		tests[n].initial_state = (void *)&cases[i];
		n++;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_groups);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_checks);
	return _cmocka_run_group_tests("engine_scope", tests, n, NULL, NULL);
}
