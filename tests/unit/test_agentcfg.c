/* test_agentcfg.c - config/agents/NAME.yaml (lib/loom_agentcfg.c): the
 * checks around the declarative table (anchor required for file, an ldap
 * section for ldap, the ldap anchor defaults), and the ldap section parsed
 * into its struct. Table-driven: each case is a file's text, whether it
 * loads, and the text an error must contain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom_agentcfg.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char dir[64];

static int load_text(const char *text, loom_agentcfg_t *cfg, loom_cfg_diags_t *diags, char *path, size_t pathlen)
{
	snprintf(path, pathlen, "%s/x.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	memset(cfg, 0, sizeof *cfg);
	memset(diags, 0, sizeof *diags);
	return loom_agentcfg_load(path, cfg, diags);
}

static void test_cases(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *text;
		int rc;
		const char *error; /* after "PATH" */
		const char *anchor;
	} cases[] = {
		{ "file without anchor", "type: file\nfile: { format: csv, path: a.csv }\n", -1,
		  ":1:1: key 'anchor': missing required key for type file", NULL },
		{ "file with anchor", "type: file\nanchor: id\nfile: { format: csv, path: a.csv }\n", 0, NULL, "id" },
		{ "ldap without its section", "type: ldap\n", -1, ": key 'ldap': missing required section for type ldap", NULL },
		{ "ldap: entryUUID by default",
		  "type: ldap\nldap:\n  uri: ldap://127.0.0.1:1\n  bases: [ { dn: \"dc=x\" } ]\n", 0, NULL, "entryUUID" },
		{ "ad: objectGUID by default",
		  "type: ldap\nldap:\n  uri: ldap://127.0.0.1:1\n  directory: ad\n  bases: [ { dn: \"dc=x\" } ]\n", 0, NULL,
		  "objectGUID" },
		{ "ldap: the anchor configured", "type: ldap\nanchor: uid\nldap:\n  uri: ldap://h\n  bases: [ { dn: \"dc=x\" } ]\n", 0,
		  NULL, "uid" },
		{ "ldap: no bases", "type: ldap\nldap:\n  uri: ldap://h\n", -1, ":3:3: key 'ldap.bases': missing required key",
		  NULL },
		{ "ldap: bad scope",
		  "type: ldap\nldap:\n  uri: ldap://h\n  bases: [ { dn: \"dc=x\", scope: subtree } ]\n", -1,
		  ":4:33: key 'ldap.bases[0].scope': bad value 'subtree': expected one of sub, one, base", NULL },
		{ "ldap: bad bind", "type: ldap\nldap:\n  uri: ldap://h\n  bind: kerberos\n  bases: [ { dn: \"dc=x\" } ]\n", -1,
		  ":4:9: key 'ldap.bind': bad value 'kerberos'", NULL },
		{ "ldap: page_size out of range",
		  "type: ldap\nldap:\n  uri: ldap://h\n  page_size: 0\n  bases: [ { dn: \"dc=x\" } ]\n", -1,
		  ":4:14: key 'ldap.page_size': bad value '0'", NULL },
		{ "ldap: unknown key", "type: ldap\nldap:\n  uri: ldap://h\n  bsaes: []\n  bases: [ { dn: \"dc=x\" } ]\n", -1,
		  ":4:3: unknown key 'bsaes' in ldap (did you mean 'bases'?)", NULL },
		{ "live on a file agent",
		  "type: file\nanchor: id\nfile: { format: csv, path: a.csv }\nlive: { enabled: true }\n", -1,
		  ": key 'live.enabled': live mode is for type ldap", NULL },
		{ "live: poll too short",
		  "type: ldap\nldap:\n  uri: ldap://h\n  bases: [ { dn: \"dc=x\" } ]\nlive:\n  enabled: true\n  poll: 10ms\n", -1,
		  ":7:9: key 'live.poll': bad value '10ms'", NULL },
		{ "live: unknown key",
		  "type: ldap\nldap:\n  uri: ldap://h\n  bases: [ { dn: \"dc=x\" } ]\nlive:\n  enable: true\n", -1,
		  ":6:3: unknown key 'enable' in live (did you mean 'enabled'?)", NULL },
		{ "fixed without its layout", "type: file\nanchor: id\nfile: { format: fixed, path: a.txt }\n", -1,
		  ": key 'file.fixed.columns': format fixed needs its column layout", NULL },
		{ "fixed: a column without width",
		  "type: file\nanchor: id\nfile:\n  format: fixed\n  path: a.txt\n  fixed: { columns: [ { name: id } ] }\n", -1,
		  ":6:23: key 'file.fixed.columns[0].width': missing required key", NULL },
		{ "fixed: a bad type",
		  "type: file\nanchor: id\nfile:\n  format: fixed\n  path: a.txt\n  fixed: { columns: [ { name: id, width: 3, "
		  "type: money } ] }\n",
		  -1, ":6:51: key 'file.fixed.columns[0].type': bad value 'money'", NULL },
		{ "avp: a two-character separator",
		  "type: file\nanchor: id\nfile: { format: avp, path: a.avp, avp: { separator: \"::\" } }\n", -1,
		  ": key 'file.avp.separator': bad value '::'", NULL },
		{ "dsml", "type: file\nanchor: dn\nfile: { format: dsml, path: a.xml, delta_dir: changes }\n", 0, NULL, "dn" },
		{ "ext without a command", "type: ext\nanchor: id\next: { timeout: 5s }\n", -1,
		  ": key 'ext.command': missing required key for type ext", NULL },
		{ "ext without an anchor", "type: ext\next: { command: [prog] }\n", -1,
		  ":1:1: key 'anchor': missing required key for type ext", NULL },
		{ "ext", "type: ext\nanchor: id\next: { command: [python3, agent.py] }\n", 0, NULL, "id" },
		{ "sql without its section", "type: sql\nanchor: id\n", -1,
		  ": key 'sql': missing required section for type sql", NULL },
		{ "sql: postgresql without conninfo",
		  "type: sql\nanchor: id\nsql: { driver: postgresql, tables: [ { object_type: p, table: t } ] }\n", -1,
		  ": key 'sql.conninfo': missing required key for driver postgresql", NULL },
		{ "sql: the anchor from the first table",
		  "type: sql\nsql: { driver: sqlite, database: a.db, tables: [ { object_type: p, table: t, anchor: pid } ] }\n",
		  0, NULL, "pid" },
		{ "sql: no anchor anywhere",
		  "type: sql\nsql: { driver: sqlite, database: a.db, tables: [ { object_type: p, table: t } ] }\n", -1,
		  ": key 'sql.tables[0].anchor': missing", NULL },
		{ "sql: a bad delta mode",
		  "type: sql\nanchor: id\nsql:\n  driver: sqlite\n  database: a.db\n  tables: [ { object_type: p, table: t } ]\n"
		  "  delta: { mode: trigger }\n",
		  -1, ":7:18: key 'sql.delta.mode': bad value 'trigger'", NULL },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		loom_agentcfg_t cfg;
		loom_cfg_diags_t diags;
		char path[128];
		int rc = load_text(cases[i].text, &cfg, &diags, path, sizeof path);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].label, rc, cases[i].rc, diags.n ? diags.v[0].text : "");
		if (cases[i].error) {
			char want[512];
			snprintf(want, sizeof want, "%s%s", path, cases[i].error);
			bool found = false;
			for (size_t k = 0; k < diags.n; k++)
				found |= strncmp(diags.v[k].text, want, strlen(want)) == 0;
			if (!found)
				fail_msg("%s: no error starting '%s'; first: %s", cases[i].label, want, diags.n ? diags.v[0].text : "none");
		}
		if (cases[i].anchor)
			assert_string_equal(cfg.anchor, cases[i].anchor);
		loom_cfg_diags_release(&diags);
		loom_agentcfg_release(&cfg);
	}
}

static void test_ldap_section(void **state)
{
	(void)state;
	const char *text = "type: ldap\n"
			   "references: [member, manager]\n"
			   "ldap:\n"
			   "  uri: ldaps://127.0.0.1:636\n"
			   "  bind: sasl-external\n"
			   "  page_size: 250\n"
			   "  bases:\n"
			   "    - { dn: \"ou=a,dc=x\", scope: one, filter: \"(cn=*)\" }\n"
			   "    - { dn: \"ou=b,dc=x\" }\n"
			   "  object_classes: [ { object_class: groupOfNames, type: group } ]\n"
			   "  binary: [jpegPhoto]\n";
	loom_agentcfg_t cfg;
	loom_cfg_diags_t diags;
	char path[128];
	int rc = load_text(text, &cfg, &diags, path, sizeof path);
	if (rc != 0)
		fail_msg("%s", diags.v[0].text);
	assert_int_equal(cfg.type, LOOM_AGENT_LDAP);
	assert_string_equal(cfg.ldap.uri.text, "ldaps://127.0.0.1:636");
	assert_int_equal(cfg.ldap.uri.line, 4);
	assert_int_equal(cfg.ldap.uri.column, 8);
	assert_int_equal(cfg.ldap.bind, LOOM_LDAP_BIND_SASL_EXTERNAL);
	assert_int_equal(cfg.ldap.page_size, 250);
	assert_int_equal(cfg.ldap.connections, 2);
	assert_int_equal(cfg.ldap.timeout_ms, 10000);
	assert_int_equal(cfg.ldap.bases.n, 2);
	const loom_agentcfg_ldap_base_t *b = cfg.ldap.bases.v;
	assert_string_equal(b[0].dn.text, "ou=a,dc=x");
	assert_int_equal(b[0].scope, LOOM_LDAP_SCOPE_ONE);
	assert_string_equal(b[0].filter.text, "(cn=*)");
	assert_int_equal(b[1].scope, LOOM_LDAP_SCOPE_SUB);
	assert_string_equal(b[1].filter.text, "(objectClass=*)");
	const loom_agentcfg_ldap_class_t *c = cfg.ldap.object_classes.v;
	assert_int_equal(cfg.ldap.object_classes.n, 1);
	assert_string_equal(c[0].object_class, "groupOfNames");
	assert_string_equal(c[0].type, "group");
	assert_int_equal(cfg.references.n, 2);
	assert_string_equal(cfg.references.v[1], "manager");
	assert_int_equal(cfg.ldap.binary.n, 1);
	assert_false(cfg.live.enabled); /* no live section: the defaults */
	assert_int_equal(cfg.live.window_ms, 0);
	assert_int_equal(cfg.live.keepalive_ms, 5000);
	assert_true(cfg.live.sync);
	loom_cfg_diags_release(&diags);
	loom_agentcfg_release(&cfg);
}

static void test_live_section(void **state)
{
	(void)state;
	const char *text = "type: ldap\n"
			   "ldap:\n"
			   "  uri: ldap://127.0.0.1:389\n"
			   "  bases: [ { dn: \"dc=x\" } ]\n"
			   "live:\n"
			   "  enabled: true\n"
			   "  poll: 500ms\n"
			   "  window: 0s\n"
			   "  sync: false\n"
			   "  export: [a, b]\n";
	loom_agentcfg_t cfg;
	loom_cfg_diags_t diags;
	char path[128];
	int rc = load_text(text, &cfg, &diags, path, sizeof path);
	if (rc != 0)
		fail_msg("%s", diags.v[0].text);
	assert_true(cfg.live.enabled);
	assert_int_equal(cfg.live.poll_ms, 500);
	assert_int_equal(cfg.live.window_ms, 0);
	assert_false(cfg.live.sync);
	assert_int_equal(cfg.live.export.n, 2);
	assert_string_equal(cfg.live.export.v[1], "b");
	loom_cfg_diags_release(&diags);
	loom_agentcfg_release(&cfg);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/loom-agentcfg.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/x.yaml", dir);
	unlink(path);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_ldap_section),
		cmocka_unit_test(test_live_section),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
