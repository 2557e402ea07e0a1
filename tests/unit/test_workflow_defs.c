/* test_workflow_defs.c - workflow definitions (config/policy/workflows):
 * what loads, and what is refused with FILE:LINE:COLUMN, table-driven,
 * against the shipped schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workflow_run.h"
#include "loom_alloc.h"

static char dir[] = "/tmp/test_workflow_defs.XXXXXX";
static wf_policy_t policy;

typedef struct def_case {
	const char *label;
	const char *yaml;          /* workflows/x.yaml */
	const char *want;          /* NULL: loads; else a substring of the error */
} def_case_t;

#define HEAD(kind) "workflows:\n  - name: w\n    kind: " kind "\n    activities:\n"

static const def_case_t cases[] = {
	{ "an approval by the target's manager", HEAD("authz")
	  "      - type: approval\n        approvers: ['//Target/Manager', 'set:Approvers', '/Person[Department = \"HR\"]']\n"
	  "        timeout: 2d\n        escalation: ['//Target/Manager/Manager']\n", NULL },
	{ "every activity of an action workflow", HEAD("action")
	  "      - { type: function, expr: 'FirstName + \" \" + LastName', destination: //Target/DisplayName }\n"
	  "      - { type: function, expr: 'Len(AccountName)', destination: //WorkflowData/Len }\n"
	  "      - { type: notify, to: ['//Target/Manager', 'a@example.org', '//Target/Email'], subject: 'x [//Target/DisplayName]',"
	  " body: '[//WorkflowData/Len] [//Request/ID]' }\n"
	  "      - { type: create, object_type: Set, values: [ { attribute: DisplayName, value: '\"x\"' } ] }\n"
	  "      - { type: update, target: //Target/Manager, values: [ { attribute: JobTitle, value: '\"Boss\"' } ] }\n"
	  "      - { type: delete, target: //Target }\n"
	  "      - { type: sync_rule, rule: erp }\n"
	  "      - { type: external, command: [/bin/true], timeout: 5s }\n", NULL },
	{ "an unknown activity type", HEAD("authz") "      - type: aproval\n",
	  "x.yaml:5:15: workflow 'w': activity 1: unknown activity type 'aproval'" },
	{ "an unknown attribute in a lookup", HEAD("authz") "      - type: approval\n        approvers: ['//Target/Managr']\n",
	  "x.yaml:6:22: workflow 'w': '//Target/Managr': unknown attribute 'Managr'" },
	{ "approvers who are no persons", HEAD("authz") "      - type: approval\n        approvers: ['//Target/DisplayName']\n",
	  "'//Target/DisplayName': 'DisplayName' is no reference: approvers are persons" },
	{ "an unknown attribute in an expression", HEAD("action")
	  "      - type: function\n        expr: 'FirstNam'\n        destination: //Target/DisplayName\n",
	  "x.yaml:6:16: unknown attribute 'FirstNam'" },
	{ "an approval in an action workflow", HEAD("action") "      - type: approval\n        approvers: ['//Target/Manager']\n",
	  "activity 1 (approval): approval activities cannot run in action workflows" },
	{ "a key of another activity", HEAD("action") "      - type: notify\n        approvers: ['//Target/Manager']\n"
	  "        to: [a@b.c]\n        subject: s\n        body: b\n",
	  "x.yaml:5:15: workflow 'w': activity 1 (notify): key 'approvers' does not apply to notify activities" },
	{ "a sync rule attribute that cannot hold rule names", HEAD("action")
	  "      - type: sync_rule\n        rule: erp\n        attribute: JobTitle\n",
	  "x.yaml:7:20: workflow 'w': activity 1 (sync_rule): attribute 'JobTitle' must be a multi-valued string" },
	{ "an unknown object type", HEAD("action")
	  "      - type: create\n        object_type: Spaceship\n        values: [ { attribute: DisplayName, value: '\"x\"' } ]\n",
	  "x.yaml:6:22: workflow 'w': activity 1 (create): unknown object type 'Spaceship'" },
	{ "an unknown root in a template", HEAD("action")
	  "      - type: notify\n        to: [a@b.c]\n        subject: 'about [//Foo/Bar]'\n        body: b\n",
	  "x.yaml:7:26: workflow 'w': '//Foo/Bar': unknown root 'Foo' here" },
	{ "a program that is not there", HEAD("authz") "      - type: external\n        command: [/nonexistent/check]\n",
	  "x.yaml:6:19: workflow 'w': activity 1 (external): command '/nonexistent/check' is not an executable program" },
	{ "WorkflowData read before it is written", HEAD("action")
	  "      - type: notify\n        to: [a@b.c]\n        subject: '[//WorkflowData/X]'\n        body: b\n",
	  "no earlier activity of the workflow writes WorkflowData 'X'" },
	{ "the target changed before the commit", HEAD("authz")
	  "      - type: function\n        expr: '\"x\"'\n        destination: //Target/DisplayName\n",
	  "only action workflows change the target" },
	{ "a bad XPath filter", HEAD("authz") "      - type: filter\n        filter: /Person[Department = ]\n",
	  "x.yaml:6:38: expected a string" },
	{ "a filter validation whose condition is no boolean", HEAD("authz")
	  "      - type: filter\n        condition: 'DisplayName'\n",
	  "x.yaml:6:21" },
	{ "a bad threshold", HEAD("authz") "      - type: approval\n        approvers: ['//Target/Manager']\n        threshold: most\n",
	  "x.yaml:7:20: workflow 'w': activity 1 (approval): threshold 'most': expected a number of approvals" },
	{ "run on policy update of an authz workflow", "workflows:\n  - name: w\n    kind: authz\n    run_on_policy_update: true\n"
	  "    activities:\n      - { type: filter, filter: /Person }\n",
	  "x.yaml:2:11: workflow 'w': run_on_policy_update applies to action workflows only" },
	{ "an unknown key", HEAD("authz") "      - type: filter\n        filtre: /Person\n", "unknown key 'filtre'" },
	{ "an external activity run again after a restart", HEAD("action")
	  "      - { type: external, command: [/bin/true], on_restart: rerun }\n", NULL },
	{ "a bad on_restart", HEAD("action") "      - type: external\n        command: [/bin/true]\n        on_restart: twice\n",
	  "x.yaml:7:21: workflow 'w': activity 1 (external): on_restart 'twice': expected fail or rerun" },
	{ "on_restart of another activity", HEAD("action")
	  "      - { type: notify, to: [a@b.c], subject: s, body: b, on_restart: rerun }\n",
	  "activity 1 (notify): key 'on_restart' does not apply to notify activities" },
};

static void write_workflows(const char *text)
{
	char *d = loom_sprintf("%s/workflows", dir);
	mkdir(d, 0755);
	char *p = loom_sprintf("%s/x.yaml", d);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
	free(d);
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const def_case_t *c = &cases[i];
		write_workflows(c->yaml);
		wf_defs_t d;
		char *err = NULL;
		int rc = wf_defs_load(dir, NULL, &policy, &d, &err);
		if (c->want == NULL) {
			if (rc != 0)
				fail_msg("%s: refused: %s", c->label, err);
			assert_non_null(wf_defs_find(&d, "w"));
			assert_non_null(wf_defs_find(&d, "group-owner-approval")); /* the built-in one */
			wf_defs_release(&d);
		} else {
			if (rc == 0)
				fail_msg("%s: loaded, want an error containing '%s'", c->label, c->want);
			if (strstr(err, c->want) == NULL)
				fail_msg("%s: error '%s' does not contain '%s'", c->label, err, c->want);
			free(err);
		}
	}
}

/* MPRs naming workflows: unknown, or of another kind. */
static void test_mpr_names(void **state)
{
	(void)state;
	wf_policy_t p = policy;
	wf_mpr_t m = { .name = (char *)"m", .where = (char *)"mprs.yaml:3:11" };
	char *wfs[] = { (char *)"authz:missing", (char *)"action:w" };
	m.workflows = wfs;
	m.nworkflows = 2;
	p.mprs = &m;
	p.nmprs = 1;
	write_workflows(HEAD("authz") "      - { type: filter, filter: /Person }\n");
	wf_defs_t d;
	char *err = NULL;
	assert_int_equal(wf_defs_load(dir, NULL, &p, &d, &err), -1);
	assert_non_null(strstr(err, "mprs.yaml:3:11: mpr 'm': unknown workflow 'missing'"));
	assert_non_null(strstr(err, "mprs.yaml:3:11: mpr 'm': workflow 'w' is of kind authz, named here under action_workflows"));
	free(err);
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	char *err = NULL;
	if (wf_policy_load(LOOM_SOURCE_DIR "/config/policy", &policy, &err) < 0)
		fail_msg("shipped policy: %s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wf_policy_release(&policy);
	char *c = loom_sprintf("rm -rf %s", dir);
	int rc = system(c);
	free(c);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_mpr_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
