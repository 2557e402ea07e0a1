/* test_xpath.c - the FIM XPath filter dialect (lib/loom_xpath*.c).
 *
 * Table-driven, each case a label, a filter and the wanted result: the
 * resources selected (by alias, sorted, space-separated; "" for none) or
 * the wanted error (whole text, column included).
 *
 *  - parse_cases: every filter of sections A and B of
 *    /work/shared/testdata/xpath/FIM-XPATH-EXAMPLES.md as printed (B: the
 *    error it gets) and the corrected forms of section B; grammar corners.
 *  - doc_cases: section A's filters evaluated against
 *    tests/data/xpath/resources.yaml, each with the result its documented
 *    meaning gives on that data (worked out by hand in the comments).
 *  - sem_cases: the semantics of section C and docs/xpath.md on a small
 *    file written here: contains() word boundaries, LIKE patterns, null and
 *    multi-valued attributes under =, != and not(), every type's operators,
 *    datetime arithmetic, references in both directions, unions, and the
 *    errors the data makes.
 *
 * Every evaluation case runs against the provider with its indexes and
 * against the same provider without find_eq (a scan of everything), which
 * must agree; is evaluated twice into one result (reuse); and for every
 * resource loom_xpath_matches must agree with the result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_xpath.h"
#include "loom_xpath_mem.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-01-01T00:00:00Z: fn:current-dateTime() of the document cases. */
#define NOW_DOC 1767225600000000LL
/* 2024-03-09T12:00:00Z: fn:current-dateTime() of the semantics cases. */
#define NOW_SEM 1709985600000000LL

/* ---- fixtures ---------------------------------------------------------------------------- */

typedef struct alias {
	const char *name;   /* what the tables write */
	const char *id;     /* the ObjectID */
} alias_t;

static const alias_t doc_aliases[] = {
	{ "js", "7fb2b853-24f0-4498-9534-4e10589723c4" },
	{ "mm", "11111111-1111-1111-1111-111111111111" },
	{ "ry", "22222222-2222-2222-2222-222222222222" },
	{ "nd", "33333333-3333-3333-3333-333333333333" },
	{ "q", "44444444-4444-4444-4444-444444444444" },
	{ "g1", "aaaaaaaa-0000-0000-0000-000000000001" },
	{ "g2", "aaaaaaaa-0000-0000-0000-000000000002" },
	{ "g3", "aaaaaaaa-0000-0000-0000-000000000003" },
	{ "g4", "aaaaaaaa-0000-0000-0000-000000000004" },
	{ "s1", "bbbbbbbb-0000-0000-0000-000000000001" },
	{ "ap1", "cccccccc-0000-0000-0000-000000000001" },
	{ "ap2", "cccccccc-0000-0000-0000-000000000002" },
	{ "ap3", "cccccccc-0000-0000-0000-000000000003" },
	{ "u1", "dddddddd-0000-0000-0000-000000000001" },
	{ "u2", "dddddddd-0000-0000-0000-000000000002" },
	{ "u3", "dddddddd-0000-0000-0000-000000000003" },
	{ "u4", "dddddddd-0000-0000-0000-000000000004" },
	{ "u5", "dddddddd-0000-0000-0000-000000000005" },
	{ NULL, NULL },
};

/* The semantics file: ObjectIDs are their own aliases. */
static const char sem_yaml[] =
	"- ObjectType: Thing\n"
	"  ObjectID: t1\n"
	"  s: The quick brown fox\n"
	"  mvi: [3, 4]\n"
	"  i: 5\n"
	"  b: true\n"
	"  d: 2024-03-01T12:00:00Z\n"
	"  r: t2\n"
	"  mvs: [alpha beta, Gamma]\n"
	"- ObjectType: Thing\n"
	"  ObjectID: t2\n"
	"  s: user abc\n"
	"  mvi: [1, 3]\n"
	"  i: -7\n"
	"  b: false\n"
	"  d: 2024-03-08T12:00:00Z\n"
	"  mvs: [delta]\n"
	"- ObjectType: Thing\n"
	"  ObjectID: t3\n"
	"  s: John Smith\n"
	"  mvr: [t1, t2]\n"
	"- ObjectType: Thing\n"
	"  ObjectID: t4\n"
	"  s: a_b-c.d@example.com\n"
	"  s2: \"100%\"\n"
	"  mvs: []\n"
	"  bin_like: ''\n"
	"- ObjectType: Other\n"
	"  ObjectID: o1\n"
	"  s: quick\n"
	"  r: t1\n";

static const alias_t sem_aliases[] = {
	{ "t1", "t1" }, { "t2", "t2" }, { "t3", "t3" }, { "t4", "t4" }, { "o1", "o1" }, { NULL, NULL },
};

typedef struct world {
	loom_xpath_mem_t *m;            /* the resources */
	const alias_t *aliases;         /* their names in the tables */
	int64_t now;                    /* fn:current-dateTime() */
} world_t;

static world_t doc_world, sem_world;

static int setup(void **state)
{
	(void)state;
	char *err = NULL;
	doc_world.m = loom_xpath_mem_new();
	doc_world.aliases = doc_aliases;
	doc_world.now = NOW_DOC;
	if (loom_xpath_mem_load_yaml(doc_world.m, LOOM_SOURCE_DIR "/tests/data/xpath/resources.yaml", &err) < 0) {
		fprintf(stderr, "resources.yaml: %s\n", err);
		free(err);
		return -1;
	}
	sem_world.m = loom_xpath_mem_new();
	sem_world.aliases = sem_aliases;
	sem_world.now = NOW_SEM;
	if (loom_xpath_mem_load_yaml_string(sem_world.m, "sem.yaml", sem_yaml, strlen(sem_yaml), &err) < 0) {
		fprintf(stderr, "sem.yaml: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	loom_xpath_mem_destroy(&doc_world.m);
	loom_xpath_mem_destroy(&sem_world.m);
	return 0;
}

static const char *alias_of(const world_t *w, const char *id)
{
	for (const alias_t *a = w->aliases; a->name; a++)
		if (strcmp(a->id, id) == 0)
			return a->name;
	fail_msg("resource '%s' has no alias", id);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The aliases of the selected resources, sorted, space-separated. */
static char *render(const world_t *w, const loom_xpath_result_t *r)
{
	const char **names = loom_malloc((r->n + 1) * sizeof *names);
	for (size_t i = 0; i < r->n; i++)
		names[i] = alias_of(w, loom_xpath_mem_object_id(w->m, r->rids[i]));
	qsort(names, r->n, sizeof *names, cmp_str);
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			loom_buf_addc(&b, ' ');
		loom_buf_adds(&b, names[i]);
	}
	free(names);
	return loom_buf_steal(&b);
}

/* ---- evaluation cases --------------------------------------------------------------------------- */

typedef struct eval_case {
	const char *label;   /* what it shows */
	const char *filter;  /* the filter */
	const char *want;    /* the aliases selected, sorted; NULL when err is wanted */
	const char *err;     /* the whole error (compile or evaluation) */
} eval_case_t;

/* Runs c against w with provider p; returns the rendering or the error. */
static char *run_one(const world_t *w, const loom_xpath_provider_t *p, const eval_case_t *c, bool *ret_failed)
{
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	*ret_failed = true;
	if (loom_xpath_compile(c->filter, NULL, &x, &e) < 0) {
		char *t = e.text;
		e.text = NULL;
		return t;
	}
	loom_xpath_eval_opts_t o = { .now_us = w->now };
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	char *out = NULL;
	for (int round = 0; round < 2; round++) {
		if (loom_xpath_eval(x, p, &o, &r, &e) < 0) {
			assert_int_equal(r.n, 0);
			free(out);
			out = e.text;
			goto done;
		}
		char *s = render(w, &r);
		if (out && strcmp(out, s) != 0)
			fail_msg("%s: a second evaluation into the same result gave '%s', the first '%s'", c->label, s, out);
		free(out);
		out = s;
	}
	/* loom_xpath_matches agrees with the result for every resource */
	size_t n = loom_xpath_mem_count(w->m);
	loom_xpath_rid_t *sel = loom_malloc((r.n + 1) * sizeof *sel);
	if (r.n)
		memcpy(sel, r.rids, r.n * sizeof *sel);
	size_t nsel = r.n;
	for (loom_xpath_rid_t rid = 0; rid < n; rid++) {
		bool in = false, m = false;
		for (size_t k = 0; k < nsel; k++)
			in = in || sel[k] == rid;
		if (loom_xpath_matches(x, p, &o, rid, &r, &m, &e) < 0)
			fail_msg("%s: matches(%s): %s", c->label, loom_xpath_mem_object_id(w->m, rid), e.text);
		if (m != in)
			fail_msg("%s: matches(%s) says %d, the evaluation %d", c->label, loom_xpath_mem_object_id(w->m, rid),
			    m, in);
	}
	free(sel);
	*ret_failed = false;
done:
	loom_xpath_result_release(&r);
	loom_xpath_destroy(&x);
	return out;
}

static void run_cases(const world_t *w, const eval_case_t *cases, size_t n)
{
	loom_xpath_provider_t indexed, scanning;
	loom_xpath_mem_provider(w->m, &indexed);
	scanning = indexed;
	scanning.find_eq = NULL;
	for (size_t i = 0; i < n; i++) {
		const eval_case_t *c = &cases[i];
		bool failed, failed2;
		char *got = run_one(w, &indexed, c, &failed);
		char *got2 = run_one(w, &scanning, c, &failed2);
		if (c->want) {
			if (failed)
				fail_msg("%s: %s\n  failed: %s", c->label, c->filter, got);
			if (strcmp(got, c->want) != 0)
				fail_msg("%s: %s\n  got:  '%s'\n  want: '%s'", c->label, c->filter, got, c->want);
		} else {
			if (!failed)
				fail_msg("%s: %s\n  selected '%s', want the error: %s", c->label, c->filter, got, c->err);
			if (strcmp(got, c->err) != 0)
				fail_msg("%s: %s\n  got:  %s\n  want: %s", c->label, c->filter, got, c->err);
		}
		if (failed != failed2 || strcmp(got, got2) != 0)
			fail_msg("%s: %s\n  with indexes: %s\n  scanning:     %s", c->label, c->filter, got, got2);
		free(got);
		free(got2);
	}
}

/* ---- section A evaluated on resources.yaml ---------------------------------------------------------- */

static const eval_case_t doc_cases[] = {
	/* A1: Ap1 and Ap2 have Approver mm; only Ap1 is pending */
	{ "A1 reference = bare GUID",
	  "/Approval[ApprovalStatus = 'Pending' and Approver = '11111111-1111-1111-1111-111111111111']", "ap1", NULL },
	{ "A2 reference = location path",
	  "/Approval[ApprovalStatus = 'Pending' and Approver = /Person[AccountName = 'mmeyers']]", "ap1", NULL },
	/* A3: now 2026-01-01 + 7 days = 2026-01-08; security groups expiring by then: g1 (01-05), g3 (01-03) */
	{ "A3 security groups expiring in 7 days",
	  "/Group[Type= 'Security' and ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('P7D'))]", "g1 g3", NULL },
	/* A4: security groups g1 (owner js, a Person), g3 (owner g1, a Group), g4 (no owner) */
	{ "A4 security groups without a Person owner", "/Group[Type = 'Security' and not(Owner = /Person)]", "g3 g4",
	  NULL },
	/* A5: Executive Team members {js, mm}; owner js: g1; members js or mm: g1 g2 g4 */
	{ "A5 groups owned by or containing Executive Team members",
	  "/Group[Owner = /Group[DisplayName = 'Executive Team']/ComputedMember or ComputedMember = "
	  "/Group[DisplayName = 'Executive Team']/ComputedMember]", "g1 g2 g4", NULL },
	/* A6: {js, mm} and {mm, ry} */
	{ "A6 predicate after a reference step",
	  "/Group[DisplayName = 'Executive Team']/ComputedMember[ObjectID = /Group[DisplayName = 'Financial "
	  "Approvers']/ComputedMember]", "mm", NULL },
	/* A7: and binds tighter: contractors (mm nd) or (interns in FTE {js, ry}: ry) */
	{ "A7 as printed: and before or",
	  "/Person[EmployeeType = 'Contractor' or EmployeeType = 'Intern' and ObjectID=/Group[DisplayName = 'Full Time "
	  "Employees']/ComputedMember]", "mm nd ry", NULL },
	{ "A7 as documented: parentheses",
	  "/Person[(EmployeeType = 'Contractor' or EmployeeType = 'Intern') and ObjectID=/Group[DisplayName = 'Full Time "
	  "Employees']/ComputedMember]", "ry", NULL },
	{ "A8 string equality", "/Person[EmployeeType = 'Full Time Employee']", "js", NULL },
	{ "A9 attribute names are case-sensitive", "/Person[DisplayName = 'John Smith']", "js", NULL },
	{ "A9 lower-case name is another attribute", "/Person[displayname = 'John Smith']", "", NULL },
	{ "A9 type names are case-sensitive", "/person[DisplayName = 'John Smith']", "", NULL },
	/* A10: 'Sales Manager' has the word; 'Manageress of Things' a word that starts with it (C1: a word prefix) */
	{ "A10 contains a word", "/Person[contains(JobTitle, 'Manager')]", "js mm", NULL },
	{ "A10 not mid-word", "/Person[contains(JobTitle, 'anager')]", "", NULL },
	{ "A11 RCDC token is just a string", "/Group[ObjectID='%ObjectID%']/ExplicitMember", "", NULL },
	{ "A11 with a real ObjectID", "/Group[ObjectID='aaaaaaaa-0000-0000-0000-000000000001']/ExplicitMember", "js",
	  NULL },
	{ "A12 every group", "/Group", "g1 g2 g3 g4", NULL },
	{ "A13 computed members of a set",
	  "/Person[ObjectID=/Set[DisplayName='~ People with no displayname']/ComputedMember]", "nd", NULL },
	{ "A14 no DisplayName", "/Person[not(starts-with(DisplayName,'%'))]", "nd", NULL },
	{ "A15 no DisplayName, first attempt", "/Person[not(starts-with(DisplayName,''))]", "nd", NULL },
	/* A16 with ASCII quotes: no ExpirationTime (mm has one), a manager, enabled, contractor: nd */
	{ "A16 corrected",
	  "/Person[not(ExpirationTime >= '1900-01-01T00:00:00.000') and IsManagerPresent = 'True' and "
	  "msDSUserAccountEnabled = 'True' and starts-with(EmployeeType,'Contractor')]", "nd", NULL },
	{ "A17 groups expiring in 7 days",
	  "/Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('P7D'))]", "g1 g3", NULL },
	{ "A18 union", "/Person[Domain = 'CORP'] | /Person[Domain = 'DMZ']", "js mm q ry", NULL },
	{ "A19 jsmith has no manager", "/Person[AccountName = 'jsmith']/Manager", "", NULL },
	{ "A19 dereference", "/Person[AccountName = 'ryan']/Manager", "js", NULL },
	{ "A20 reference = bare GUID", "/Person[Manager = '7fb2b853-24f0-4498-9534-4e10589723c4']", "mm ry", NULL },
	{ "A21 reference = location path", "/Person[Manager = /Person[AccountName = 'jsmith']]", "mm ry", NULL },
	{ "A22 double quotes around a single quote", "/Person[LastName = \"O'Brien\"]", "ry", NULL },
	{ "A23 has a manager", "/Person[Manager = /Person]", "mm nd ry", NULL },
	{ "A23 has no manager", "/Person[Manager != /Person]", "js q", NULL },
	{ "A24 multi-valued reference without a Person", "/Group[not(Owner = /Person)]", "g3 g4", NULL },
	{ "A25 has a value", "/Person[AccountName != '&Invalid&']", "js mm nd q ry", NULL },
	{ "A25 null is not != a literal", "/Person[DisplayName != '&Invalid&']", "js mm q ry", NULL },
	{ "A26 multi-valued = any value", "/Group[ComputedMember = '11111111-1111-1111-1111-111111111111']", "g1 g2",
	  NULL },
	/* A27: js at 10:30:00 exactly, ry later; mm earlier */
	{ "A27 datetime without time zone", "/Person[CreatedTime >= '2024-01-15T10:30:00']", "js ry", NULL },
	{ "A28 dereference after a parenthesised predicate", "/Person[(AccountName = 'ryan')]/Manager", "js", NULL },
	/* A29: of the people, only mm ends employment after 2023 */
	{ "A29 any type, nested groups",
	  "/*[((starts-with(AccountName, '%')) and (EmployeeEndDate > '2023-01-01T00:00:00.000') and ((starts-with("
	  "DisplayName, '%')) or (not(starts-with(LastName, '%'))) or (AccountName = 'ryan')))]", "mm", NULL },
	/* A30: js mm ry q qualify (nd has a LastName and no DisplayName); their managers: js */
	{ "A30 the same, dereferenced",
	  "/*[((starts-with(AccountName, '%')) and ((starts-with(DisplayName, '%')) or (not(starts-with(LastName, "
	  "'%'))) or (AccountName = 'ryan')))]/Manager", "js", NULL },
	{ "A31 union with reference presence",
	  "/*[(starts-with(AccountName, '%'))] | /Group[(DisplayedOwner = /*)]", "g3 js mm nd q ry", NULL },
	{ "A32 three-way union",
	  "/*[(starts-with(AccountName, '%'))] | /Group[(DisplayedOwner = /*)] | /Person[(Manager = /*)]",
	  "g3 js mm nd q ry", NULL },
	{ "A33 nobody reports to ryan", "/*[(Manager = /Person[(AccountName = 'ryan')])]", "", NULL },
	{ "A33 reference equals sub-expression", "/*[(Manager = /Person[(AccountName = 'mmeyers')])]", "nd", NULL },
	{ "A34 exactly the three objects referencing test1",
	  "/_unitTestObject[(ut_svreference = /_unitTestObject[(ut_svstring = 'test1')])]", "u2 u3 u4", NULL },
	{ "A35 dereferenced expression", "/_unitTestObject[(ut_svstring = 'test1')]/ut_svreference", "u5", NULL },
	{ "A36 the Filter element of a Set",
	  "<Filter xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
	  "Dialect=\"http://schemas.microsoft.com/2006/11/XPathFilterDialect\" "
	  "xmlns=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\">/Person[(AccountName = &apos;ryan&apos;)]</Filter>",
	  "ry", NULL },
	/* section B, corrected forms */
	{ "B1 corrected: no request in the data",
	  "/Request[Creator=/Group[DisplayName='Elevated Access Security Group']/ComputedMember and Operation='Put' and "
	  "Status='Completed']", "", NULL },
	{ "B2 corrected is A3",
	  "/Group[Type= 'Security' and ExpirationTime<=op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('P7D'))]", "g1 g3", NULL },
	/* B3 with X = the set: nd's groups (g3) have owner g1, not nd; so every group */
	{ "B3 corrected",
	  "/Group[not(Owner = /Set[ObjectID = 'bbbbbbbb-0000-0000-0000-000000000001']/ComputedMember)]",
	  "g1 g2 g3 g4", NULL },
	{ "B3 corrected, set of Executive Team members",
	  "/Group[not(Owner = /Group[ObjectID = 'aaaaaaaa-0000-0000-0000-000000000001']/ComputedMember)]", "g2 g3 g4",
	  NULL },
	{ "B4 corrected", "/Group[DisplayName='%VALUE%' and Type='MailEnabledSecurity']", "", NULL },
	{ "B5 a step through a string attribute", "/Person/DisplayName", NULL,
	  "column 9: location step 'DisplayName' must be a reference attribute, and 'DisplayName' holds strings" },
	{ "B6 urn:uuid: prefix", "/Person[Manager = 'urn:uuid:7fb2b853-24f0-4498-9534-4e10589723c4']", NULL,
	  "column 19: a reference is compared with a bare ObjectID, not 'urn:uuid:...' (write "
	  "'7fb2b853-24f0-4498-9534-4e10589723c4')" },
	{ "B6 corrected", "/Person[Manager = '7fb2b853-24f0-4498-9534-4e10589723c4']", "mm ry", NULL },
	/* B7: Loom follows XPath 2.0 here (docs/xpath.md): the doubled quote is one quote */
	{ "B7 doubled quote (XPath 2.0) is accepted", "/Person[LastName = 'O''Brien']", "ry", NULL },
	{ "B8 both quotes in one literal by doubling", "/Person[DisplayName = 'user\"''0001']", "q", NULL },
	{ "B8 the other way round", "/Person[DisplayName = \"user\"\"'0001\"]", "q", NULL },
	{ "B9 '<' on a reference", "/Person[Manager < 'x']", NULL,
	  "column 17: '<' does not apply to references ('Manager' holds references; use = or !=)" },
	{ "B9 starts-with on an integer", "/Person[starts-with(EmployeeID, '10')]", NULL,
	  "column 9: starts-with() applies to strings, and attribute 'EmployeeID' holds integers" },
	{ "B9 contains on a datetime", "/Person[contains(CreatedTime, '2024')]", NULL,
	  "column 9: contains() applies to strings, and attribute 'CreatedTime' holds datetimes" },
	{ "B9 ends-with on a boolean", "/Person[ends-with(AccountDisabled, 'e')]", NULL,
	  "column 9: ends-with() applies to strings, and attribute 'AccountDisabled' holds booleans" },
	{ "B9 starts-with on a reference", "/Person[starts-with(Manager, '7')]", NULL,
	  "column 9: starts-with() applies to strings, and attribute 'Manager' holds references" },
	{ "B9 '<' on strings is ordering (Loom)", "/Person[AccountName < 'n']", "js mm", NULL },
	{ "B9 '>' on booleans: false < true (Loom)", "/Person[AccountDisabled > false]", "mm", NULL },
	{ "C4 != on a multi-valued attribute", "/Group[ComputedMember != '11111111-1111-1111-1111-111111111111']", NULL,
	  "column 23: '!=' is not supported on multi-valued attribute 'ComputedMember' (write not(ComputedMember = "
	  "...))" },
	{ "C5 integer presence", "/Person[EmployeeID <= 999999999999999]", "js mm nd ry", NULL },
	{ "C5 datetime presence", "/Person[CreatedTime <= '9999-12-31T23:59:59.997']", "js mm ry", NULL },
	{ "C5 boolean presence", "/Person[(AccountDisabled = true) or (AccountDisabled = false)]", "js mm", NULL },
	{ "C5 reference presence", "/Person[Manager = /*]", "mm nd ry", NULL },
	{ "C5 string presence", "/Person[starts-with(DisplayName, '%')]", "js mm q ry", NULL },
	{ "C7 unprefixed current-dateTime",
	  "/Group[ExpirationTime <= add-dayTimeDuration-to-dateTime(current-dateTime(), xs:dayTimeDuration('P3D'))]",
	  "g3", NULL },
	{ "C7 subtract from a literal",
	  "/Group[ExpirationTime >= op:subtract-dayTimeDuration-from-dateTime('2026-03-02T00:00:00', "
	  "xs:dayTimeDuration('P1DT1S'))]", "g2", NULL },
	{ "ObjectID = location path, reverse of a membership",
	  "/Group[ComputedMember = /Person[AccountName = 'ryan']]", "g2 g4", NULL },
	{ "ObjectID equality", "/*[ObjectID = '22222222-2222-2222-2222-222222222222']", "ry", NULL },
	{ "ObjectID equality, other case", "/Person[ObjectID = '7FB2B853-24F0-4498-9534-4E10589723C4']", "js", NULL },
	{ "ObjectID equality, wrong type", "/Group[ObjectID = '22222222-2222-2222-2222-222222222222']", "", NULL },
	{ "ObjectType", "/*[ObjectType = 'Set']", "s1", NULL },
	{ "two steps", "/Person[AccountName = 'nodisplay']/Manager/Manager", "js", NULL },
	{ "step after a union member with predicate on the step",
	  "/Group[DisplayName = 'Full Time Employees']/ComputedMember[Domain = 'CORP'] | /Set/ComputedMember",
	  "js nd ry", NULL },
	{ "strings compare case-insensitively", "/Person[AccountName = 'JSMITH']", "js", NULL },
	{ "integer equality", "/Person[EmployeeID = 1003]", "ry", NULL },
	{ "quoted integer", "/Person[EmployeeID = '1003']", "ry", NULL },
	{ "integer range", "/Person[EmployeeID > 1001 and EmployeeID < 1004]", "mm ry", NULL },
	{ "negated range", "/Person[not(EmployeeID >= 1002)]", "js q", NULL },
};

static void test_doc_examples(void **state)
{
	(void)state;
	run_cases(&doc_world, doc_cases, N_ELEMS(doc_cases));
}

/* ---- semantics on the small file ------------------------------------------------------------------ */

static const eval_case_t sem_cases[] = {
	/* C1: contains() finds the text at the start of a word (docs/xpath.md) */
	{ "C1 'u' is mid-word in quick, a word start in user", "/Thing[contains(s, 'u')]", "t2", NULL },
	{ "C1 'qu' starts quick", "/*[contains(s, 'qu')]", "o1 t1", NULL },
	{ "C1 'mit' does not match Smith", "/Thing[contains(s, 'mit')]", "", NULL },
	{ "C1 word prefix, case-insensitive", "/Thing[contains(s, 'smi')]", "t3", NULL },
	{ "C1 'abc' matches 'user abc'", "/Thing[contains(s, 'abc')]", "t2", NULL },
	{ "C1 a phrase", "/Thing[contains(s, 'brown fox')]", "t1", NULL },
	{ "C1 'own' is mid-word", "/Thing[contains(s, 'own')]", "", NULL },
	{ "C1 punctuation breaks words", "/Thing[contains(s, 'example')]", "t4", NULL },
	{ "C1 underscore breaks words", "/Thing[contains(s, 'b')]", "t1 t4", NULL },
	{ "C1 text starting with punctuation matches anywhere", "/Thing[contains(s, '@ex')]", "t4", NULL },
	{ "C1 not contains", "/Thing[not(contains(s, 'quick'))]", "t2 t3 t4", NULL },
	{ "C1 multi-valued: any value", "/Thing[contains(mvs, 'beta')]", "t1", NULL },
	/* C2: starts-with and ends-with are LIKE patterns */
	{ "C2 prefix", "/Thing[starts-with(s, 'The')]", "t1", NULL },
	{ "C2 prefix over a blank, any case", "/Thing[starts-with(s, 'the q')]", "t1", NULL },
	{ "C2 '%' inside: contains anywhere", "/Thing[starts-with(s, '%abc')]", "t2", NULL },
	{ "C2 '%' mid-word too", "/Thing[starts-with(s, '%mit')]", "t3", NULL },
	{ "C2 '_' one character", "/Thing[starts-with(s, '_ser')]", "t2", NULL },
	{ "C2 [set]", "/Thing[starts-with(s, '[st]')]", "t1", NULL },
	{ "C2 [^set]", "/Thing[starts-with(s, '[^t]')]", "t2 t3 t4", NULL },
	{ "C2 [a-c] range", "/Thing[starts-with(s, '[a-c]')]", "t4", NULL },
	{ "C2 [%] is a literal percent", "/Thing[starts-with(s2, '100[%]')]", "t4", NULL },
	{ "C2 unclosed [ is a character", "/Thing[starts-with(s, '[')]", "", NULL },
	{ "C2 presence", "/Thing[starts-with(s2, '%')]", "t4", NULL },
	{ "C2 absence", "/Thing[not(starts-with(s2, '%'))]", "t1 t2 t3", NULL },
	{ "C2 ends-with", "/Thing[ends-with(s, 'FOX')]", "t1", NULL },
	{ "C2 ends-with a domain", "/Thing[ends-with(s, '.com')]", "t4", NULL },
	{ "C2 ends-with a pattern", "/Thing[ends-with(s, 'a_c')]", "t2", NULL },
	{ "C2 ends-with a pattern, one character short", "/Thing[ends-with(s, 'b_c')]", "", NULL },
	/* C3: multi-valued = is existential, not() is "no value" */
	{ "C3 not(mv = 1): [3,4] and nulls match, [1,3] does not", "/Thing[not(mvi = 1)]", "t1 t3 t4", NULL },
	{ "C3 mv = 3", "/Thing[mvi = 3]", "t1 t2", NULL },
	{ "C3 mv > 3: some value", "/Thing[mvi > 3]", "t1", NULL },
	{ "C3 mv < 2", "/Thing[mvi < 2]", "t2", NULL },
	{ "C3 mv = 3 and mv = 4 (different values)", "/Thing[mvi = 3 and mvi = 4]", "t1", NULL },
	{ "C3 not over mv strings", "/Thing[not(mvs = 'GAMMA')]", "t2 t3 t4", NULL },
	{ "C3 empty list is null", "/Thing[mvs = /*]", NULL,
	  "column 14: attribute 'mvs' holds strings, so it cannot be compared with a location path (only a reference "
	  "attribute points at resources)" },
	/* C4: != and null */
	{ "C4 != literal is false on null", "/Thing[i != 5]", "t2", NULL },
	{ "C4 != path is true on null", "/Thing[r != /*]", "t2 t3 t4", NULL },
	{ "C4 != on multi-valued", "/Thing[mvi != 1]", NULL,
	  "column 12: '!=' is not supported on multi-valued attribute 'mvi' (write not(mvi = ...))" },
	{ "C4 != path on multi-valued", "/Thing[mvr != /Thing]", NULL,
	  "column 12: '!=' is not supported on multi-valued attribute 'mvr' (write not(mvr = ...))" },
	{ "unknown attribute is null: =", "/Thing[nope = 'x']", "", NULL },
	{ "unknown attribute is null: not", "/Thing[not(nope = 'x')]", "t1 t2 t3 t4", NULL },
	{ "unknown attribute is null: != literal", "/Thing[nope != 'x']", "", NULL },
	{ "unknown attribute is null: != path", "/Thing[nope != /*]", "t1 t2 t3 t4", NULL },
	{ "'' in the file is no value", "/Thing[starts-with(bin_like, '%')]", "", NULL },
	/* integers */
	{ "integer >", "/Thing[i > 0]", "t1", NULL },
	{ "integer <= negative", "/Thing[i <= -7]", "t2", NULL },
	{ "quoted integer", "/Thing[i = '5']", "t1", NULL },
	{ "not an integer", "/Thing[i = 'five']", NULL, "column 12: attribute 'i' holds integers, and 'five' is not one" },
	{ "boolean against an integer", "/Thing[i = true]", NULL,
	  "column 12: attribute 'i' holds integers, and true is not one" },
	/* booleans */
	{ "boolean = true", "/Thing[b = true]", "t1", NULL },
	{ "boolean = 'True'", "/Thing[b = 'True']", "t1", NULL },
	{ "boolean = true()", "/Thing[b = true()]", "t1", NULL },
	{ "boolean != true", "/Thing[b != true]", "t2", NULL },
	{ "boolean presence", "/Thing[(b = true) or (b = false)]", "t1 t2", NULL },
	{ "boolean ordering", "/Thing[b < true]", "t2", NULL },
	{ "not a boolean", "/Thing[b = 'yes']", NULL,
	  "column 12: attribute 'b' holds booleans: compare it with true or false" },
	/* strings */
	{ "string = any case", "/Thing[s = 'the QUICK brown fox']", "t1", NULL },
	{ "string <", "/Thing[s < 'b']", "t4", NULL },
	{ "string >=", "/Thing[s >= 'the']", "t1 t2", NULL },
	{ "unquoted number against strings", "/Thing[s = 5]", NULL,
	  "column 12: attribute 's' holds strings: write the value in quotes" },
	{ "multi-valued string =", "/Thing[mvs = 'gamma']", "t1", NULL },
	/* datetimes and their arithmetic (now is 2024-03-09T12:00:00Z) */
	{ "datetime presence", "/Thing[d <= '9999-12-31T23:59:59.997']", "t1 t2", NULL },
	{ "datetime equality without zone", "/Thing[d = '2024-03-01T12:00:00']", "t1", NULL },
	{ "datetime with offset", "/Thing[d = '2024-03-01T13:00:00+01:00']", "t1", NULL },
	{ "date only", "/Thing[d > '2024-03-02']", "t2", NULL },
	{ "add P6DT23H59M59S to t1's instant", "/Thing[d > op:add-dayTimeDuration-to-dateTime('2024-03-01T12:00:00', "
	  "xs:dayTimeDuration('P6DT23H59M59S'))]", "t2", NULL },
	{ "add exactly 7 days", "/Thing[d = op:add-dayTimeDuration-to-dateTime('2024-03-01T12:00:00', "
	  "xs:dayTimeDuration('P7D'))]", "t2", NULL },
	{ "add fractional seconds", "/Thing[d = op:add-dayTimeDuration-to-dateTime('2024-03-01T11:59:59.5', "
	  "xs:dayTimeDuration('PT0.5S'))]", "t1", NULL },
	{ "add a negative duration", "/Thing[d = op:add-dayTimeDuration-to-dateTime('2024-03-02T12:00:00', "
	  "xs:dayTimeDuration('-P1D'))]", "t1", NULL },
	{ "now minus a day", "/Thing[d >= op:subtract-dayTimeDuration-from-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('P1D'))]", "t2", NULL },
	{ "now minus 8 days in hours", "/Thing[d >= op:subtract-dayTimeDuration-from-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('PT192H'))]", "t1 t2", NULL },
	{ "nested arithmetic", "/Thing[d = op:subtract-dayTimeDuration-from-dateTime(op:add-dayTimeDuration-to-dateTime("
	  "fn:current-dateTime(), xs:dayTimeDuration('PT30M')), xs:dayTimeDuration('P1DT30M'))]", "t2", NULL },
	{ "xs:dateTime", "/Thing[d < xs:dateTime('2024-03-02T00:00:00Z')]", "t1", NULL },
	{ "current-dateTime compared directly", "/Thing[d < fn:current-dateTime()]", "t1 t2", NULL },
	{ "datetime arithmetic out of range",
	  "/Thing[d < op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P106751991D'))]",
	  NULL, "column 12: the datetime is out of range" },
	{ "a datetime against an integer", "/Thing[i < fn:current-dateTime()]", NULL,
	  "column 12: attribute 'i' holds integers, so it cannot be compared with a datetime" },
	{ "not a datetime", "/Thing[d = 'yesterday']", NULL,
	  "column 12: attribute 'd' holds datetimes: compare it with a datetime such as '2024-01-15T10:30:00' or "
	  "fn:current-dateTime()" },
	{ "integer against a datetime", "/Thing[d = 5]", NULL,
	  "column 12: attribute 'd' holds datetimes: compare it with a datetime such as '2024-01-15T10:30:00' or "
	  "fn:current-dateTime()" },
	/* references, both directions */
	{ "reference presence", "/Thing[r = /*]", "t1", NULL },
	{ "reference = id", "/Thing[r = 't2']", "t1", NULL },
	{ "reference = id in another case", "/Thing[r = 'T2']", "t1", NULL },
	{ "forward: dereference", "/Thing[s = 'The quick brown fox']/r", "t2", NULL },
	{ "forward from another type", "/Other/r", "t1", NULL },
	{ "reverse: who references a set", "/*[r = /Thing]", "o1 t1", NULL },
	{ "reverse through a multi-valued reference", "/Thing[mvr = /Thing[b = false]]", "t3", NULL },
	{ "reverse, negated", "/Thing[not(mvr = /Thing)]", "t1 t2 t4", NULL },
	{ "dereference a multi-valued reference", "/Thing[mvr = /*]/mvr", "t1 t2", NULL },
	{ "dereference then filter", "/Thing/mvr[b = true]", "t1", NULL },
	{ "round trip", "/Thing[ObjectID = /Other/r]/r", "t2", NULL },
	{ "ordering a reference", "/Thing[r < 't2']", NULL,
	  "column 10: '<' does not apply to references ('r' holds references; use = or !=)" },
	{ "a step through an integer", "/Thing[i = 5]/i", NULL,
	  "column 15: location step 'i' must be a reference attribute, and 'i' holds integers" },
	{ "a step through an unknown attribute is empty", "/Thing/nope", "", NULL },
	/* unions and several predicates */
	{ "union drops duplicates", "/Thing[i = 5] | /Thing[b = true]", "t1", NULL },
	{ "union of types", "/Other | /Thing[i = -7]", "o1 t2", NULL },
	{ "two predicates are and", "/Thing[i = 5][b = true]", "t1", NULL },
	{ "two predicates, second false", "/Thing[i = 5][b = false]", "", NULL },
	{ "or of indexed equalities", "/Thing[s = 'user abc' or s = 'John Smith']", "t2 t3", NULL },
	{ "or with a non-indexed branch", "/Thing[s = 'user abc' or i > 0]", "t1 t2", NULL },
	{ "and with an indexed conjunct last", "/Thing[i > -100 and s = 'user abc']", "t2", NULL },
	{ "and of two indexed equalities", "/Thing[b = false and s = 'user abc']", "t2", NULL },
	{ "and of indexed equalities with nothing in common", "/Thing[b = true and s = 'user abc']", "", NULL },
	{ "and of an equality and a reverse reference", "/*[r = /Thing[i = -7] and s = 'quick']", "", NULL },
	{ "and of an equality and a reverse reference, matching", "/*[r = /Thing[i = -7] and b = true]", "t1", NULL },
	{ "nested and inside or inside and", "/Thing[(b = true and i = 5) or (s = 'John Smith' and mvr = 't1')]",
	  "t1 t3", NULL },
	{ "every resource", "/*", "o1 t1 t2 t3 t4", NULL },
	{ "empty type", "/Nothing", "", NULL },
};

static void test_semantics(void **state)
{
	(void)state;
	run_cases(&sem_world, sem_cases, N_ELEMS(sem_cases));
}

/* ---- parse errors -------------------------------------------------------------------------------------- */

typedef struct parse_case {
	const char *label;    /* what it shows */
	const char *filter;   /* the filter */
	const char *err;      /* the whole message, NULL: it must compile */
	unsigned line;        /* the error's line */
	unsigned column;      /* and column */
} parse_case_t;

static const parse_case_t parse_cases[] = {
	/* every filter of section A compiles as printed (A9's two, A23's two, A16 corrected are evaluated above) */
	{ "A16 as printed (typographic quotes)",
	  "/Person[not(ExpirationTime >= \xe2\x80\x98" "1900-01-01T00:00:00.000\xe2\x80\x99) and IsManagerPresent = "
	  "\xe2\x80\x98True\xe2\x80\x99 and msDSUserAccountEnabled = \xe2\x80\x98True\xe2\x80\x99 and "
	  "starts-with(EmployeeType,\xe2\x80\x99" "Contractor\xe2\x80\x99)]",
	  "column 31: expected a string, an integer, true, false, a location path or a datetime after "
	  "'ExpirationTime', found '\xe2\x80\x98' (a typographic quote: strings are delimited by ' or \")", 1, 31 },
	{ "B1 stray quote after 'Put'",
	  "/Request[Creator=/Group[DisplayName='Elevated Access Security Group']/ComputedMember and Operation='Put' ' and "
	  "Status='Completed']",
	  "column 106: expected 'and', 'or' or ']', found the string ' and Status='", 1, 106 },
	{ "B2 backslash escapes",
	  "/Group[Type= 'Security' and ExpirationTime<=op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration(\\\"P7D\\\"))]",
	  "column 122: expected a duration in quotes as the argument of xs:dayTimeDuration, found '\\' (XPath strings "
	  "have no backslash escapes: double the quote, or use the other one)", 1, 122 },
	{ "B3 typographic quotes (and a missing ')')",
	  "/Group[not(Owner = /Set[ObjectID = \xe2\x80\x98X\xe2\x80\x99]/ComputedMember]",
	  "column 36: expected a string, an integer, true, false, a location path or a datetime after 'ObjectID', "
	  "found '\xe2\x80\x98' (a typographic quote: strings are delimited by ' or \")", 1, 36 },
	{ "B3 with ASCII quotes: the missing ')'",
	  "/Group[not(Owner = /Set[ObjectID = 'X']/ComputedMember]",
	  "column 55: expected ')' to close not(, found ']'", 1, 55 },
	{ "B4 typographic quotes (and a missing ']')",
	  "/Group[DisplayName=\xe2\x80\x99%VALUE%\xe2\x80\x99 and Type=\xe2\x80\x99MailEnabledSecurity\xe2\x80\x99",
	  "column 20: expected a string, an integer, true, false, a location path or a datetime after 'DisplayName', "
	  "found '\xe2\x80\x99' (a typographic quote: strings are delimited by ' or \")", 1, 20 },
	{ "B4 with ASCII quotes: the missing ']'", "/Group[DisplayName='%VALUE%' and Type='MailEnabledSecurity'",
	  "column 60: expected 'and', 'or' or ']', found the end of the filter", 1, 60 },
	{ "B7 as the Lithnet notes read it: the rest is an error in MIM, one string here",
	  "/Person[LastName = 'O''Brien']", NULL, 0, 0 },
	/* grammar corners */
	{ "empty", "", "column 1: expected '/' to start a location path (such as /Person[...]), found an empty filter",
	  1, 1 },
	{ "blank", "   ", "column 4: expected '/' to start a location path (such as /Person[...]), found an empty filter",
	  1, 4 },
	{ "no slash", "Person[A='b']",
	  "column 1: expected '/' to start a location path (such as /Person[...]), found 'Person'", 1, 1 },
	{ "slash alone", "/", "column 2: expected an object type or '*' after '/', found the end of the filter", 1, 2 },
	{ "double slash", "/Person//Manager",
	  "column 9: expected a reference attribute after '/', found '/' (FIM has no '//')", 1, 9 },
	{ "bare attribute", "/Person[DisplayName]",
	  "column 20: expected a comparison operator (= != < <= > >=) after 'DisplayName', found ']' (a bare attribute "
	  "is no presence test in FIM: write starts-with(DisplayName, '%') for a string, DisplayName = /* for a "
	  "reference)", 1, 20 },
	{ "empty predicate", "/Person[]", "column 9: expected a condition inside '[ ]', found ']'", 1, 9 },
	{ "unterminated string", "/Person[A = 'abc]",
	  "column 13: unterminated string (expected a closing ', found the end of the filter)", 1, 13 },
	{ "unterminated double-quoted string", "/Person[A = \"abc]",
	  "column 13: unterminated string (expected a closing \", found the end of the filter)", 1, 13 },
	{ "literal on the left", "/Person['a' = A]",
	  "column 9: expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found the string 'a'",
	  1, 9 },
	{ "attribute on the right", "/Person[A = B]",
	  "column 13: expected a string, an integer, true, false, a location path or a datetime after 'A', found 'B'",
	  1, 13 },
	{ "ordering a path", "/Person[Manager < /Person]",
	  "column 19: expected '=' or '!=' before a location path (resources are not ordered)", 1, 19 },
	{ "unknown function", "/Person[startswith(A, 'x')]",
	  "column 9: unknown function 'startswith' (did you mean 'starts-with'?)", 1, 9 },
	{ "unknown function on the right", "/Person[A = lower-case('x')]", "column 13: unknown function 'lower-case'",
	  1, 13 },
	{ "function on the wrong side", "/Person[fn:current-dateTime() = A]",
	  "column 9: expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found "
	  "'fn:current-dateTime' (it gives no true or false of its own)", 1, 9 },
	{ "wrong prefix", "/Person[A < fn:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "xs:dayTimeDuration('P1D'))]", "column 13: unknown function 'fn:add-dayTimeDuration-to-dateTime' (did you "
	  "mean 'op:add-dayTimeDuration-to-dateTime'?)", 1, 13 },
	{ "contains on a literal", "/Person[contains('x', A)]",
	  "column 18: expected an attribute name as argument 1 of contains, found the string 'x'", 1, 18 },
	{ "contains needs a string", "/Person[contains(A, B)]",
	  "column 21: expected a string in quotes as argument 2 of contains, found 'B'", 1, 21 },
	{ "contains needs a word", "/Person[contains(A, '')]",
	  "column 21: expected a word to look for as argument 2 of contains, found an empty string", 1, 21 },
	{ "not without parentheses", "/Person[not A = 'x']",
	  "column 13: expected a comparison operator (= != < <= > >=) after 'not', found 'A'", 1, 13 },
	{ "unbalanced parenthesis", "/Person[(A = 'x']", "column 17: expected ')', found ']'", 1, 17 },
	{ "missing operand after and", "/Person[A = 'x' and]",
	  "column 20: expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found ']'", 1, 20 },
	{ "decimal number", "/Person[A = 1.5]", "column 13: expected an integer, found '1.5' (FIM has no decimal numbers)",
	  1, 13 },
	{ "integer out of range", "/Person[A = 99999999999999999999]",
	  "column 13: integer '99999999999999999999' is out of range", 1, 13 },
	{ "lone !", "/Person[A ! 'x']", "column 11: expected '!=', found '!'", 1, 11 },
	{ "trailing garbage", "/Person[A = 'x'] and", "column 18: expected '[', '/', '|' or the end of the filter, "
	  "found 'and'", 1, 18 },
	{ "union without a path", "/Person |", "column 10: expected '/' to start a location path (such as /Person[...]), "
	  "found the end of the filter", 1, 10 },
	{ "duration grammar: years are not dayTime", "/Person[A < op:add-dayTimeDuration-to-dateTime(fn:current-dateTime("
	  "), xs:dayTimeDuration('P1Y'))]", "column 90: expected a duration such as 'P7D', 'PT12H' or 'P1DT2H30M15.5S', "
	  "found the string 'P1Y'", 1, 90 },
	{ "duration needs xs:dayTimeDuration", "/Person[A < op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), "
	  "'P1D')]", "column 71: expected xs:dayTimeDuration('...') as argument 2 of op:add-dayTimeDuration-to-dateTime, "
	  "found the string 'P1D'", 1, 71 },
	{ "a datetime literal that is none", "/Person[A < op:add-dayTimeDuration-to-dateTime('tomorrow', "
	  "xs:dayTimeDuration('P1D'))]", "column 48: expected a datetime such as '2024-01-15T10:30:00', found the "
	  "string 'tomorrow'", 1, 48 },
	{ "current-dateTime takes nothing", "/Person[A < fn:current-dateTime('x')]",
	  "column 33: expected ')' (current-dateTime takes no argument), found the string 'x'", 1, 33 },
	{ "prefixed attribute", "/Person[x:A = 'x']", "column 9: expected an attribute name, found 'x:A' (names have no "
	  "prefix)", 1, 9 },
	{ "unexpected character", "/Person[A = 'x' & B = 'y']",
	  "column 17: expected 'and', 'or' or ']', found '&'", 1, 17 },
	{ "multi-line filter", "/Person[A = 'x'\n  and B = ]",
	  "line 2, column 11: expected a string, an integer, true, false, a location path or a datetime after 'B', "
	  "found ']'", 2, 11 },
	{ "Filter element, wrong dialect", "<Filter Dialect=\"urn:other\">/Person</Filter>",
	  "column 17: expected Dialect=\"http://schemas.microsoft.com/2006/11/XPathFilterDialect\"", 1, 17 },
	{ "Filter element, unclosed", "<Filter>/Person", "column 16: expected </Filter>, found the end of the filter", 1,
	  16 },
	{ "Filter element, error inside points into the original text",
	  "<Filter>/Person[A = &apos;x&apos; or]</Filter>",
	  "column 37: expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found ']'", 1, 37 },
	{ "Filter element, bad entity", "<Filter>/Person[A = &nbsp;]</Filter>",
	  "column 21: expected an XML entity (&lt; &gt; &amp; &apos; &quot; or an ASCII &#N;), found '&nbsp;'", 1, 21 },
	{ "Filter element with &lt;", "<Filter>/Person[A &lt; 5]</Filter>", NULL, 0, 0 },
	{ "Filter element with numeric entity", "<Filter>/Person[A = &#39;x&#x27;]</Filter>", NULL, 0, 0 },
	{ "not a Filter element", "<Query>/Person</Query>",
	  "column 1: expected <Filter ...> or a location path, found '<Query'", 1, 1 },
	{ "whitespace everywhere", " / Person [ A = 'x' ] / Manager [ B != 'y' ] | /* ", NULL, 0, 0 },
	{ "fn: prefixed string functions", "/Person[fn:contains(A, 'x') and fn:not(fn:starts-with(B, 'y'))]", NULL, 0,
	  0 },
	{ "keywords as attribute names need a comparison", "/Person[and = 'x']", NULL, 0, 0 },
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(parse_cases); i++) {
		const parse_case_t *c = &parse_cases[i];
		loom_xpath_t *x = NULL;
		loom_xpath_error_t e;
		int rc = loom_xpath_compile(c->filter, NULL, &x, &e);
		if (c->err == NULL) {
			if (rc != 0)
				fail_msg("%s: %s\n  failed: %s", c->label, c->filter, e.text);
			assert_non_null(x);
			assert_string_equal(loom_xpath_text(x), c->filter);
			loom_xpath_destroy(&x);
			assert_null(x);
			continue;
		}
		if (rc == 0)
			fail_msg("%s: %s\n  compiled, want: %s", c->label, c->filter, c->err);
		assert_null(x);
		if (strcmp(e.text, c->err) != 0)
			fail_msg("%s: %s\n  got:  %s\n  want: %s", c->label, c->filter, e.text, c->err);
		if (e.line != c->line || e.column != c->column)
			fail_msg("%s: at %u:%u, want %u:%u", c->label, e.line, e.column, c->line, c->column);
		loom_xpath_error_release(&e);
		assert_null(e.text);
	}
}

/* Every filter of the evaluation tables compiles: their errors come from
 * the data, at evaluation, never from the parser. */
static void test_eval_cases_compile(void **state)
{
	(void)state;
	const eval_case_t *tables[] = { doc_cases, sem_cases };
	size_t sizes[] = { N_ELEMS(doc_cases), N_ELEMS(sem_cases) };
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < sizes[t]; i++) {
			loom_xpath_t *x = NULL;
			loom_xpath_error_t e;
			if (loom_xpath_compile(tables[t][i].filter, NULL, &x, &e) < 0)
				fail_msg("%s: %s", tables[t][i].label, e.text);
			loom_xpath_destroy(&x);
		}
}

/* A filter from a config file reports file:line:column. */
static void test_file_location(void **state)
{
	(void)state;
	loom_xpath_compile_opts_t o = { .file = "config/policy/sets.yaml", .line = 12, .column = 13 };
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	assert_int_equal(loom_xpath_compile("/Person[A = ]", &o, &x, &e), -1);
	assert_string_equal(e.text, "config/policy/sets.yaml:12:25: expected a string, an integer, true, false, a "
	    "location path or a datetime after 'A', found ']'");
	assert_int_equal(e.line, 12);
	assert_int_equal(e.column, 25);
	loom_xpath_error_release(&e);
	assert_int_equal(loom_xpath_compile("/Person[A = 'x'\nor]", &o, &x, &e), -1);
	assert_string_equal(e.text, "config/policy/sets.yaml:13:3: expected an attribute name, not(, contains(, "
	    "starts-with(, ends-with( or '(', found ']'");
	loom_xpath_error_release(&e);
	loom_xpath_error_release(NULL);
}

/* Nesting deeper than the limit is an error, not a stack overflow. */
static void test_depth_limit(void **state)
{
	(void)state;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "/Person[");
	for (int i = 0; i < 200; i++)
		loom_buf_adds(&b, "not(");
	loom_buf_adds(&b, "A = 'x'");
	for (int i = 0; i < 200; i++)
		loom_buf_addc(&b, ')');
	loom_buf_addc(&b, ']');
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	assert_int_equal(loom_xpath_compile(loom_buf_cstr(&b), NULL, &x, &e), -1);
	assert_non_null(strstr(e.text, "nests deeper than 64 levels"));
	loom_xpath_error_release(&e);
	loom_buf_release(&b);
}

/* ---- dependencies ---------------------------------------------------------------------------------------- */

static void test_deps(void **state)
{
	(void)state;
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	assert_int_equal(loom_xpath_compile("/Person[Manager = /Person[AccountName='x'] and contains(JobTitle, 'a')] | "
	    "/Group[DisplayName='a']/ComputedMember[Domain = 'b']", NULL, &x, &e), 0);
	const loom_xpath_deps_t *d = loom_xpath_deps(x);
	static const char *const want[][2] = {
		{ "Person", "ObjectType" }, { "Person", "Manager" }, { "Person", "AccountName" }, { "Person", "JobTitle" },
		{ "Group", "ObjectType" }, { "Group", "DisplayName" }, { "Group", "ComputedMember" }, { "*", "ObjectType" },
		{ "*", "Domain" },
	};
	assert_int_equal(d->n, N_ELEMS(want));
	for (size_t i = 0; i < N_ELEMS(want); i++) {
		assert_string_equal(d->v[i].type, want[i][0]);
		assert_string_equal(d->v[i].attr, want[i][1]);
	}
	assert_string_equal(d->types[0], "Person");
	assert_string_equal(d->types[1], "*");
	assert_null(d->types[2]);
	assert_false(d->temporal);
	assert_true(d->has_contains);
	assert_true(d->has_path_compare);
	assert_true(d->has_step);
	/* which changes can touch the result */
	assert_true(loom_xpath_depends_on(x, "Person", "Manager"));
	assert_true(loom_xpath_depends_on(x, "Person", "AccountName"));
	assert_false(loom_xpath_depends_on(x, "Person", "DisplayName"));
	assert_true(loom_xpath_depends_on(x, "Group", "DisplayName"));
	assert_false(loom_xpath_depends_on(x, "Group", "Manager"));
	assert_true(loom_xpath_depends_on(x, "Printer", "Domain"));
	assert_false(loom_xpath_depends_on(x, "Printer", "JobTitle"));
	assert_true(loom_xpath_depends_on(x, "Printer", "ObjectType"));
	assert_true(loom_xpath_depends_on(x, NULL, "JobTitle"));
	assert_false(loom_xpath_depends_on(x, NULL, "Title"));
	loom_xpath_destroy(&x);
	assert_int_equal(loom_xpath_compile("/Person[Department = 'Sales']", NULL, &x, &e), 0);
	assert_true(loom_xpath_depends_on(x, "Person", "Department"));
	assert_true(loom_xpath_depends_on(x, "Person", "ObjectType"));
	assert_false(loom_xpath_depends_on(x, "Group", "Department"));
	assert_false(loom_xpath_depends_on(x, "Group", "ObjectType"));
	loom_xpath_destroy(&x);

	assert_int_equal(loom_xpath_compile("/Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime("
	    "fn:current-dateTime(), xs:dayTimeDuration('P7D'))]", NULL, &x, &e), 0);
	d = loom_xpath_deps(x);
	assert_true(d->temporal);
	assert_false(d->has_contains);
	assert_false(d->has_path_compare);
	assert_false(d->has_step);
	assert_int_equal(d->n, 2);
	assert_string_equal(d->v[1].attr, "ExpirationTime");
	loom_xpath_destroy(&x);

	assert_int_equal(loom_xpath_compile("/Group[ExpirationTime <= '2024-01-01']", NULL, &x, &e), 0);
	assert_false(loom_xpath_deps(x)->temporal);
	loom_xpath_destroy(&x);
}

static int failing_scan(void *arg, const char *type, loom_xpath_visit_fn *fn, void *varg, char **ret_error);

/* ---- indexes are used, and kept up to date ---------------------------------------------------------------- */

static Loom__Attr *str_attr(const char *name, const char *v)
{
	Loom__Attr *a = loom_malloc(sizeof *a);
	loom__attr__init(a);
	a->name = loom_strdup(name);
	a->values = loom_malloc(sizeof *a->values);
	a->values[0] = loom_malloc(sizeof *a->values[0]);
	loom__value__init(a->values[0]);
	a->values[0]->v_case = LOOM__VALUE__V_STR;
	a->values[0]->str = loom_strdup(v);
	a->n_values = 1;
	return a;
}

static Loom__Attr *ref_attr(const char *name, const char *v)
{
	Loom__Attr *a = str_attr(name, v);
	a->values[0]->v_case = LOOM__VALUE__V_REF;
	return a;
}

static void add(loom_xpath_mem_t *m, const char *type, const char *id, Loom__Attr *a1, Loom__Attr *a2)
{
	Loom__Attr **attrs = loom_malloc(2 * sizeof *attrs);
	size_t n = 0;
	if (a1)
		attrs[n++] = a1;
	if (a2)
		attrs[n++] = a2;
	char *err = NULL;
	if (loom_xpath_mem_add(m, type, id, attrs, n, NULL, &err) < 0)
		fail_msg("add %s: %s", id, err);
}

static char *eval_ids(loom_xpath_mem_t *m, const char *filter, loom_xpath_result_t *r)
{
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	if (loom_xpath_compile(filter, NULL, &x, &e) < 0)
		fail_msg("%s: %s", filter, e.text);
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(m, &p);
	if (loom_xpath_eval(x, &p, NULL, r, &e) < 0)
		fail_msg("%s: %s", filter, e.text);
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < r->n; i++)
		loom_buf_printf(&b, "%s%s", i ? " " : "", loom_xpath_mem_object_id(m, r->rids[i]));
	loom_xpath_destroy(&x);
	return loom_buf_steal(&b);
}

static void test_indexes(void **state)
{
	(void)state;
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	add(m, "Person", "boss", str_attr("AccountName", "boss"), NULL);
	add(m, "Person", "p1", str_attr("AccountName", "ann"), ref_attr("Manager", "boss"));
	add(m, "Group", "g1", str_attr("AccountName", "ann"), NULL);
	size_t before = loom_xpath_mem_index_lookups(m);
	char *got = eval_ids(m, "/Person[AccountName = 'ANN']", &r);
	assert_string_equal(got, "p1");
	free(got);
	assert_true(loom_xpath_mem_index_lookups(m) > before);
	/* the reverse reference is answered from the Manager index */
	before = loom_xpath_mem_index_lookups(m);
	got = eval_ids(m, "/Person[Manager = /Person[AccountName = 'boss']]", &r);
	assert_string_equal(got, "p1");
	free(got);
	assert_true(loom_xpath_mem_index_lookups(m) >= before + 2);
	/* resources added after the index was built are found through it */
	add(m, "Person", "p2", str_attr("AccountName", "ann"), ref_attr("Manager", "BOSS"));
	got = eval_ids(m, "/Person[AccountName = 'ann']", &r);
	assert_string_equal(got, "p1 p2");
	free(got);
	got = eval_ids(m, "/Person[Manager = /Person[AccountName = 'boss']]", &r);
	assert_string_equal(got, "p1 p2");
	free(got);
	/* changing an attribute keeps the built indexes right */
	char *err = NULL;
	if (loom_xpath_mem_set(m, 1, str_attr("AccountName", "zed"), &err) < 0)
		fail_msg("set: %s", err);
	got = eval_ids(m, "/Person[AccountName = 'ann']", &r);
	assert_string_equal(got, "p2");
	free(got);
	got = eval_ids(m, "/Person[AccountName = 'zed']", &r);
	assert_string_equal(got, "p1");
	free(got);
	Loom__Attr *none = str_attr("Manager", "x");
	protobuf_c_message_free_unpacked(&none->values[0]->base, NULL);
	none->n_values = 0;
	if (loom_xpath_mem_set(m, 3, none, &err) < 0) /* p2 loses its manager */
		fail_msg("set: %s", err);
	got = eval_ids(m, "/Person[Manager = /Person[AccountName = 'boss']]", &r);
	assert_string_equal(got, "p1");
	free(got);
	if (loom_xpath_mem_set(m, 0, ref_attr("Manager", "p2"), &err) < 0) /* boss, older than p2, gets one */
		fail_msg("set: %s", err);
	got = eval_ids(m, "/*[Manager = /Person[AccountName = 'ann'] or Manager = /Person[AccountName = 'zed']]", &r);
	assert_string_equal(got, "boss");
	free(got);
	got = eval_ids(m, "/Person[Manager = /*]", &r);
	assert_string_equal(got, "boss p1");
	free(got);
	assert_int_equal(loom_xpath_mem_set(m, 0, str_attr("Manager", "p2"), &err), -1);
	assert_string_equal(err, "attribute 'Manager' has a string value where its type is a reference");
	free(err);
	assert_int_equal(loom_xpath_mem_set(m, 9, str_attr("Manager", "p2"), &err), -1);
	assert_string_equal(err, "there is no resource 9");
	free(err);
	/* schema errors */
	Loom__Attr **attrs = loom_malloc(sizeof *attrs);
	attrs[0] = ref_attr("AccountName", "x");
	assert_int_equal(loom_xpath_mem_add(m, "Person", "p3", attrs, 1, NULL, &err), -1);
	assert_string_equal(err, "attribute 'AccountName' has a reference value where its type is a string");
	free(err);
	attrs = loom_malloc(sizeof *attrs);
	attrs[0] = str_attr("AccountName", "x");
	assert_int_equal(loom_xpath_mem_add(m, "Person", "P1", attrs, 1, NULL, &err), -1);
	assert_string_equal(err, "ObjectID 'P1' is given to two resources");
	free(err);
	assert_int_equal(loom_xpath_mem_declare(m, "AccountName", 2, false, &err), -1);
	assert_string_equal(err, "attribute 'AccountName' is declared a string single-valued attribute, not an integer "
	    "single-valued one");
	free(err);
	assert_int_equal(loom_xpath_mem_count(m), 4);
	loom_xpath_result_release(&r);
	loom_xpath_mem_destroy(&m);
	assert_null(m);
	loom_xpath_mem_destroy(&m);
}

/* Sets and groups of a resources file get their ComputedMember from their
 * filter and explicit members, in whatever order they depend on each other. */
static void test_sets(void **state)
{
	(void)state;
	static const char y[] =
		"- {ObjectType: Person, ObjectID: p1, Dept: Sales, Type: Contractor}\n"
		"- {ObjectType: Person, ObjectID: p2, Dept: Sales}\n"
		"- {ObjectType: Person, ObjectID: p3, Dept: IT, Type: Contractor}\n"
		"- ObjectType: Set\n"
		"  ObjectID: s-contr-sales\n"
		"  Filter: \"/Person[Type = 'Contractor' and ObjectID = /Set[DisplayName = 'Sales']/ComputedMember]\"\n"
		"  ExplicitMember: [p3]\n"
		"- ObjectType: Set\n"
		"  ObjectID: s-sales\n"
		"  DisplayName: Sales\n"
		"  Filter: /Person[Dept = 'Sales']\n"
		"- {ObjectType: Group, ObjectID: g-static, ExplicitMember: [p2]}\n"
		"- ObjectType: Set\n"
		"  ObjectID: s-wrapped\n"
		"  Filter: <Filter Dialect=\"http://schemas.microsoft.com/2006/11/XPathFilterDialect\">/Person[Dept = "
		"&apos;IT&apos;]</Filter>\n"
		"- {ObjectType: Set, ObjectID: s-given, Filter: /Person, ComputedMember: [p2]}\n";
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	char *err = NULL;
	if (loom_xpath_mem_load_yaml_string(m, "s.yaml", y, strlen(y), &err) < 0 ||
	    loom_xpath_mem_compute_sets(m, NULL, &err) < 0)
		fail_msg("%s", err);
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	static const char *const want[][2] = {
		{ "/Set[ObjectID = 's-sales']/ComputedMember", "p1 p2" },
		{ "/Set[ObjectID = 's-contr-sales']/ComputedMember", "p1 p3" },
		{ "/Group[ObjectID = 'g-static']/ComputedMember", "p2" },
		{ "/Set[ObjectID = 's-wrapped']/ComputedMember", "p3" },
		{ "/Set[ObjectID = 's-given']/ComputedMember", "p2" },
		{ "/Set[ComputedMember = /Person[Dept = 'IT']]", "s-contr-sales s-wrapped" },
	};
	for (size_t i = 0; i < N_ELEMS(want); i++) {
		char *got = eval_ids(m, want[i][0], &r);
		if (strcmp(got, want[i][1]) != 0)
			fail_msg("%s: got '%s', want '%s'", want[i][0], got, want[i][1]);
		free(got);
	}
	/* a person who moves to Sales joins the sets that depend on it once recomputed */
	if (loom_xpath_mem_set(m, 2, str_attr("Dept", "Sales"), &err) < 0 || loom_xpath_mem_compute_sets(m, NULL, &err) < 0)
		fail_msg("%s", err);
	char *got = eval_ids(m, "/Set[ObjectID = 's-contr-sales']/ComputedMember", &r);
	assert_string_equal(got, "p1 p3");
	free(got);
	got = eval_ids(m, "/Set[ObjectID = 's-sales']/ComputedMember", &r);
	assert_string_equal(got, "p1 p2 p3");
	free(got);
	loom_xpath_result_release(&r);
	loom_xpath_mem_destroy(&m);

	static const struct {
		const char *label;  /* what it shows */
		const char *yaml;   /* the file */
		const char *err;    /* the whole message */
	} bad[] = {
		{ "sets that depend on each other",
		  "- {ObjectType: Person, ObjectID: p1}\n"
		  "- {ObjectType: Set, ObjectID: a, DisplayName: A, Filter: \"/Person[not(ObjectID = /Set[DisplayName = 'B']"
		  "/ComputedMember)]\"}\n"
		  "- {ObjectType: Set, ObjectID: b, DisplayName: B, Filter: \"/Person[ObjectID = /Set[DisplayName = 'A']"
		  "/ComputedMember]\"}\n",
		  "c.yaml:3:59: the members of set 'b' do not settle: its filter depends on a set whose members depend on it" },
		{ "a filter that does not parse", "- ObjectType: Set\n  ObjectID: a\n  Filter: /Person[Dept = ]\n",
		  "c.yaml:3:26: expected a string, an integer, true, false, a location path or a datetime after 'Dept', "
		  "found ']'" },
		{ "a filter the data makes meaningless",
		  "- {ObjectType: Person, ObjectID: p1, Dept: x}\n- ObjectType: Group\n  ObjectID: a\n"
		  "  Filter: '/Person[Dept = 5]'\n",
		  "c.yaml:4:27: attribute 'Dept' holds strings: write the value in quotes" },
		{ "a filter that is no string", "- {ObjectType: Set, ObjectID: a, Filter: 5}\n",
		  "c.yaml:1:42: a Filter is one string" },
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		m = loom_xpath_mem_new();
		err = NULL;
		int rc = loom_xpath_mem_load_yaml_string(m, "c.yaml", bad[i].yaml, strlen(bad[i].yaml), &err);
		if (rc == 0)
			rc = loom_xpath_mem_compute_sets(m, NULL, &err);
		if (rc == 0)
			fail_msg("%s: no error, want %s", bad[i].label, bad[i].err);
		if (strcmp(err, bad[i].err) != 0)
			fail_msg("%s:\n  got:  %s\n  want: %s", bad[i].label, err, bad[i].err);
		free(err);
		loom_xpath_mem_destroy(&m);
	}
}

/* loom_xpath_check finds the schema errors without reading resources. */
static void test_check(void **state)
{
	(void)state;
	static const struct {
		const char *filter;  /* the filter */
		const char *err;     /* the error, NULL: none */
	} cases[] = {
		{ "/Thing[i = 5 and r = /Other[s = 'x']]/r", NULL },
		{ "/Nothing[whatever = 'x']", NULL },
		{ "/Thing[r < 't1']", "column 10: '<' does not apply to references ('r' holds references; use = or !=)" },
		{ "/Other[i = 'x']", "column 12: attribute 'i' holds integers, and 'x' is not one" },
		{ "/Nothing/s", "column 10: location step 's' must be a reference attribute, and 's' holds strings" },
		{ "/Thing[contains(d, '2024')]", "column 8: contains() applies to strings, and attribute 'd' holds datetimes" },
	};
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(sem_world.m, &p);
	p.scan = failing_scan; /* proves no resource is read */
	p.find_eq = NULL;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_xpath_t *x = NULL;
		loom_xpath_error_t e;
		assert_int_equal(loom_xpath_compile(cases[i].filter, NULL, &x, &e), 0);
		int rc = loom_xpath_check(x, &p, &e);
		if (cases[i].err == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].filter, e.text);
		} else {
			if (rc == 0)
				fail_msg("%s: passed, want %s", cases[i].filter, cases[i].err);
			assert_string_equal(e.text, cases[i].err);
			loom_xpath_error_release(&e);
		}
		loom_xpath_destroy(&x);
	}
}

/* Binary attributes cannot be tested (B12), whatever the operator. */
static void test_binary(void **state)
{
	(void)state;
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	Loom__Attr *a = str_attr("photo", "x");
	free(a->values[0]->str);
	a->values[0]->v_case = LOOM__VALUE__V_BIN;
	a->values[0]->bin.data = loom_memdup("\x01\x02", 2);
	a->values[0]->bin.len = 2;
	add(m, "Person", "p1", a, NULL);
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(m, &p);
	static const char *const filters[] = { "/Person[photo = 'AQI=']", "/Person[starts-with(photo, '%')]",
		"/Person[not(photo != 'x')]" };
	for (size_t i = 0; i < N_ELEMS(filters); i++) {
		loom_xpath_t *x = NULL;
		loom_xpath_error_t e;
		assert_int_equal(loom_xpath_compile(filters[i], NULL, &x, &e), 0);
		loom_xpath_result_t r;
		loom_xpath_result_init(&r);
		assert_int_equal(loom_xpath_eval(x, &p, NULL, &r, &e), -1);
		if (strstr(e.text, "attribute 'photo' holds binary values, which FIM filters cannot test") == NULL)
			fail_msg("%s: %s", filters[i], e.text);
		loom_xpath_error_release(&e);
		loom_xpath_result_release(&r);
		loom_xpath_destroy(&x);
	}
	loom_xpath_mem_destroy(&m);
}

/* A provider failure is reported, located, not swallowed. */
static int failing_scan(void *arg, const char *type, loom_xpath_visit_fn *fn, void *varg, char **ret_error)
{
	(void)arg;
	(void)type;
	(void)fn;
	(void)varg;
	*ret_error = loom_strdup("cannot read store 'var/workflow': I/O error");
	return -1;
}

static void test_provider_failure(void **state)
{
	(void)state;
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(sem_world.m, &p);
	p.scan = failing_scan;
	loom_xpath_t *x = NULL;
	loom_xpath_error_t e;
	assert_int_equal(loom_xpath_compile("/Thing[i > 0]", NULL, &x, &e), 0);
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	assert_int_equal(loom_xpath_eval(x, &p, NULL, &r, &e), -1);
	assert_string_equal(e.text, "column 1: cannot read store 'var/workflow': I/O error");
	assert_int_equal(r.n, 0);
	loom_xpath_error_release(&e);
	loom_xpath_result_release(&r);
	loom_xpath_destroy(&x);
}

/* ---- datetimes and durations ----------------------------------------------------------------------------------- */

static void test_time_grammar(void **state)
{
	(void)state;
	static const struct {
		const char *text;  /* input */
		int rc;            /* 0 or -1 */
		int64_t us;        /* wanted value (checked with date -d) */
	} cases[] = {
		{ "2024-01-15T10:30:00", 0, 1705314600000000LL },
		{ "2024-01-15T10:30:00Z", 0, 1705314600000000LL },
		{ "2024-01-15T10:30:00.5+01:00", 0, 1705311000500000LL },
		{ "2024-01-15T10:30", 0, 1705314600000000LL },
		{ "2024-02-29", 0, 1709164800000000LL },
		{ "0001-01-01T00:00:00", 0, -62135596800000000LL },
		{ "9999-12-31T23:59:59.997", 0, 253402300799997000LL },
		{ "2024-01-15T10:30:00.1234567", 0, 1705314600123456LL },
		{ "2023-02-29", -1, 0 },
		{ "2024-04-31", -1, 0 },
		{ "2024-13-01", -1, 0 },
		{ "2024-01-15 10:30:00", -1, 0 },
		{ "2024-01-15T25:00:00", -1, 0 },
		{ "2024-01-15T10:30:00+1", -1, 0 },
		{ "2024-01-15T10:30:00.", -1, 0 },
		{ "24-01-15", -1, 0 },
		{ "", -1, 0 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		int64_t us = 0;
		int rc = loom_xpath_parse_time(cases[i].text, strlen(cases[i].text), &us);
		if (rc != cases[i].rc || (rc == 0 && us != cases[i].us))
			fail_msg("'%s': rc %d us %lld, want rc %d us %lld", cases[i].text, rc, (long long)us, cases[i].rc,
			    (long long)cases[i].us);
	}
}

static void test_duration_grammar(void **state)
{
	(void)state;
	static const struct {
		const char *text;  /* input */
		int rc;            /* 0 or -1 */
		int64_t us;        /* wanted value */
	} cases[] = {
		{ "P7D", 0, 7 * 86400000000LL },
		{ "PT12H", 0, 12 * 3600000000LL },
		{ "PT90M", 0, 90 * 60000000LL },
		{ "PT15.5S", 0, 15500000LL },
		{ "P1DT2H30M15.5S", 0, 86400000000LL + 2 * 3600000000LL + 30 * 60000000LL + 15500000LL },
		{ "-P1D", 0, -86400000000LL },
		{ "PT0.000001S", 0, 1 },
		{ "P0D", 0, 0 },
		{ "PT0S", 0, 0 },
		{ "P", -1, 0 },
		{ "PT", -1, 0 },
		{ "P1DT", -1, 0 },
		{ "P1Y", -1, 0 },
		{ "P1M", -1, 0 },
		{ "PT1D", -1, 0 },
		{ "P1.5D", -1, 0 },
		{ "PT1.5H", -1, 0 },
		{ "PT1S2M", -1, 0 },
		{ "P1D1D", -1, 0 },
		{ "p7d", -1, 0 },
		{ " P7D", -1, 0 },
		{ "P7D ", -1, 0 },
		{ "7D", -1, 0 },
		{ "+P7D", -1, 0 },
		{ "P-7D", -1, 0 },
		{ "PT.5S", -1, 0 },
		{ "P106751991D", 0, 106751991LL * 86400000000LL },
		{ "P106751992D", -1, 0 },
		{ "P99999999999999999999D", -1, 0 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		int64_t us = 0;
		int rc = loom_xpath_parse_duration(cases[i].text, strlen(cases[i].text), &us);
		if (rc != cases[i].rc || (rc == 0 && us != cases[i].us))
			fail_msg("'%s': rc %d us %lld, want rc %d us %lld", cases[i].text, rc, (long long)us, cases[i].rc,
			    (long long)cases[i].us);
	}
}

/* ---- the YAML resources file ------------------------------------------------------------------------------------ */

static void test_yaml_errors(void **state)
{
	(void)state;
	static const struct {
		const char *label;  /* what it shows */
		const char *yaml;   /* the file */
		const char *err;    /* the whole message */
	} cases[] = {
		{ "not a list", "ObjectType: Person\n",
		  "r.yaml:1:1: expected a list of resources (each '- ObjectType: ...'), found a map" },
		{ "list of scalars", "- Person\n",
		  "r.yaml:1:3: expected a map of attributes (ObjectType, ObjectID, ...), found 'Person'" },
		{ "no ObjectID", "- ObjectType: Person\n  A: x\n", "r.yaml:1:3: the resource has no ObjectID" },
		{ "no ObjectType", "- ObjectID: p1\n", "r.yaml:1:3: the resource has no ObjectType" },
		{ "ObjectID list", "- ObjectType: Person\n  ObjectID: [a, b]\n",
		  "r.yaml:2:3: ObjectID must be one non-empty value" },
		{ "duplicate id", "- {ObjectType: Person, ObjectID: p1}\n- {ObjectType: Person, ObjectID: P1}\n",
		  "r.yaml:2:34: ObjectID 'P1' is given to two resources (first at line 1)" },
		{ "duplicate key", "- ObjectType: Person\n  ObjectID: p1\n  A: x\n  A: y\n",
		  "r.yaml:4:3: attribute 'A' is given twice (first at line 3)" },
		{ "mixed types", "- {ObjectType: Person, ObjectID: p1, A: 5}\n- {ObjectType: Person, ObjectID: p2, A: five}\n",
		  "r.yaml:2:41: attribute 'A' holds a string here and an integer at line 1, column 41 (an attribute has "
		  "one type)" },
		{ "mixed types in a list", "- {ObjectType: Person, ObjectID: p1, A: [1, true]}\n",
		  "r.yaml:1:45: attribute 'A' holds a boolean here and an integer at line 1, column 42 (an attribute has "
		  "one type)" },
		{ "nested map", "- ObjectType: Person\n  ObjectID: p1\n  A: {b: c}\n",
		  "r.yaml:3:6: attribute 'A': expected a value or a list of values, found a map" },
		{ "nested list", "- ObjectType: Person\n  ObjectID: p1\n  A: [[1]]\n",
		  "r.yaml:3:7: attribute 'A': expected a value, found a list inside the list" },
		{ "decimal", "- {ObjectType: Person, ObjectID: p1, A: 1.5}\n",
		  "r.yaml:1:41: attribute 'A': '1.5' is a decimal number, and resources have no decimal type (quote it to "
		  "make it a string)" },
		{ "bad datetime", "- {ObjectType: Person, ObjectID: p1, A: 2024-02-30T00:00:00Z}\n",
		  "r.yaml:1:41: attribute 'A': '2024-02-30T00:00:00Z' is not a datetime such as 2026-01-02T03:04:05Z or "
		  "2026-01-02 (quote it to make it a string)" },
		{ "alias", "- &x {ObjectType: Person, ObjectID: p1}\n- *x\n",
		  "r.yaml:1:3: anchors (&x) are not allowed in a resources file" },
		{ "tag", "- {ObjectType: Person, ObjectID: p1, A: !!str 5}\n",
		  "r.yaml:1:41: tags (tag:yaml.org,2002:str) are not allowed in a resources file: values are typed by how "
		  "they are written" },
		{ "malformed", "- {ObjectType: Person\n", "r.yaml:2:1: did not find expected ',' or '}' while parsing a "
		  "flow mapping" },
		{ "single-valued given several by another resource",
		  "- {ObjectType: Person, ObjectID: p1, A: x}\n- {ObjectType: Person, ObjectID: p2, A: [x, y]}\n", NULL },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_xpath_mem_t *m = loom_xpath_mem_new();
		char *err = NULL;
		int rc = loom_xpath_mem_load_yaml_string(m, "r.yaml", cases[i].yaml, strlen(cases[i].yaml), &err);
		if (cases[i].err == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].label, err);
		} else {
			if (rc == 0)
				fail_msg("%s: loaded, want: %s", cases[i].label, cases[i].err);
			if (strcmp(err, cases[i].err) != 0)
				fail_msg("%s:\n  got:  %s\n  want: %s", cases[i].label, err, cases[i].err);
			assert_int_equal(loom_xpath_mem_count(m), 0);
		}
		free(err);
		loom_xpath_mem_destroy(&m);
	}
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	char *err = NULL;
	assert_int_equal(loom_xpath_mem_load_yaml(m, "/nonexistent/r.yaml", &err), -1);
	assert_string_equal(err, "cannot read '/nonexistent/r.yaml': No such file or directory");
	free(err);
	/* an empty file is no resources */
	assert_int_equal(loom_xpath_mem_load_yaml_string(m, "e.yaml", "", 0, &err), 0);
	assert_int_equal(loom_xpath_mem_count(m), 0);
	loom_xpath_mem_destroy(&m);
}

/* The YAML types: plain scalars typed, quoted ones strings, refs by ObjectID. */
static void test_yaml_types(void **state)
{
	(void)state;
	static const char y[] =
		"- ObjectType: T\n"
		"  ObjectID: a\n"
		"  i: 42\n"
		"  qi: '42'\n"
		"  b: True\n"
		"  d: 2026-01-02T03:04:05Z\n"
		"  qd: '2026-01-02T03:04:05Z'\n"
		"  day: 2026-01-02\n"
		"  r: b\n"
		"  dangling: [b, zzz]\n"
		"  n: ~\n"
		"- ObjectType: T\n"
		"  ObjectID: b\n";
	loom_xpath_mem_t *m = loom_xpath_mem_new();
	char *err = NULL;
	if (loom_xpath_mem_load_yaml_string(m, "t.yaml", y, strlen(y), &err) < 0)
		fail_msg("%s", err);
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(m, &p);
	static const struct {
		const char *attr;  /* attribute */
		int type;          /* its type, 0: unknown */
		bool multi;        /* multi-valued */
	} want[] = {
		{ "i", 2, false }, { "qi", 1, false }, { "day", 5, false }, { "b", 3, false }, { "d", 5, false }, { "qd", 1, false },
		{ "r", 6, false }, { "dangling", 6, true }, { "n", 0, false }, { "ObjectID", 6, false },
		{ "ObjectType", 1, false },
	};
	for (size_t i = 0; i < N_ELEMS(want); i++) {
		loom_xpath_attr_info_t info = { 0 };
		int rc = p.attr_info(p.arg, want[i].attr, &info);
		if (want[i].type == 0) {
			assert_int_equal(rc, 1);
			continue;
		}
		assert_int_equal(rc, 0);
		if (info.type != want[i].type || info.multi != want[i].multi)
			fail_msg("%s: type %d multi %d, want %d %d", want[i].attr, info.type, info.multi, want[i].type,
			    want[i].multi);
	}
	const Loom__Attr *d = p.attr(p.arg, 0, "d");
	assert_non_null(d);
	assert_int_equal(d->values[0]->time, 1767323045000000LL);
	const Loom__Attr *day = p.attr(p.arg, 0, "day");
	assert_non_null(day);
	assert_int_equal(day->values[0]->time, 1767312000000000LL);
	loom_xpath_mem_destroy(&m);
}

/* ---- mutations: bad input is an error, never a crash ---------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state; /* xorshift64: the same mutations on every run */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Deletes, inserts, replaces or duplicates a few characters of s. */
static char *mutate(const char *s)
{
	static const char alphabet[] = "/[]()'\",|=!<>*%_-:.&; \n\tabAZ019PTDHMS\x80\xe2\x80\x98";
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, s);
	int edits = 1 + (int)(rng() % 4);
	for (int k = 0; k < edits; k++) {
		size_t at = b.len ? (size_t)(rng() % (b.len + 1)) : 0;
		char ch = alphabet[rng() % (sizeof alphabet - 1)];
		loom_buf_t t = LOOM_BUF_INIT;
		switch (rng() % 4) {
		case 0: /* delete */
			loom_buf_add(&t, b.data, at);
			if (at < b.len)
				loom_buf_add(&t, b.data + at + 1, b.len - at - 1);
			break;
		case 1: /* insert */
			loom_buf_add(&t, b.data, at);
			loom_buf_addc(&t, ch);
			loom_buf_add(&t, b.data + at, b.len - at);
			break;
		case 2: /* replace */
			loom_buf_add(&t, b.data, b.len);
			if (at < t.len)
				t.data[at] = ch;
			break;
		default: /* cut */
			loom_buf_add(&t, b.data, at);
			break;
		}
		loom_buf_release(&b);
		b = t;
	}
	return loom_buf_steal(&b);
}

static void test_mutations(void **state)
{
	(void)state;
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(sem_world.m, &p);
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	size_t compiled = 0, refused = 0;
	const eval_case_t *tables[] = { doc_cases, sem_cases };
	size_t sizes[] = { N_ELEMS(doc_cases), N_ELEMS(sem_cases) };
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < sizes[t]; i++)
			for (int n = 0; n < 40; n++) {
				char *f = mutate(tables[t][i].filter);
				loom_xpath_t *x = NULL;
				loom_xpath_error_t e;
				if (loom_xpath_compile(f, NULL, &x, &e) < 0) {
					refused++;
					assert_non_null(e.text);
					if (e.line < 1 || e.column < 1 || e.column > strlen(f) + 1)
						fail_msg("'%s': error at %u:%u: %s", f, e.line, e.column, e.text);
					loom_xpath_error_release(&e);
				} else {
					compiled++;
					if (loom_xpath_eval(x, &p, NULL, &r, &e) < 0) {
						assert_non_null(e.text);
						loom_xpath_error_release(&e);
					}
					loom_xpath_destroy(&x);
				}
				free(f);
			}
	/* the mutations reach both sides */
	assert_true(compiled > 100);
	assert_true(refused > 1000);
	loom_xpath_result_release(&r);
	for (int n = 0; n < 3000; n++) {
		char *y = mutate(sem_yaml);
		loom_xpath_mem_t *m = loom_xpath_mem_new();
		char *err = NULL;
		if (loom_xpath_mem_load_yaml_string(m, "m.yaml", y, strlen(y), &err) < 0) {
			if (err == NULL || strncmp(err, "m.yaml:", 7) != 0)
				fail_msg("mutated file: error '%s'", err ? err : "(none)");
			free(err);
		}
		loom_xpath_mem_destroy(&m);
		free(y);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_eval_cases_compile),
		cmocka_unit_test(test_file_location),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_deps),
		cmocka_unit_test(test_indexes),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_provider_failure),
		cmocka_unit_test(test_time_grammar),
		cmocka_unit_test(test_duration_grammar),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_yaml_types),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
