/* test_pcns.c - the pure parts of password change notification
 * (pcns/pcns_proto.c, pcns/pcns_cfg.c): the hooks' "name: value" text
 * (Samba's LDIF, slapd's sock requests), the Password Modify BER value,
 * hashed userPassword values, group filters, change ids, the targets file
 * written and read back, and the agents' password_sync section.
 * Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom_agentcfg.h"
#include "pcns.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_kv(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *text;
		int rc;
		size_t n;
		const char *name;      /* a name to look up */
		const char *want;      /* its value */
	} cases[] = {
		{ "samba LDIF, base64 password",
		  "dn: CN=carol,CN=Users,DC=lab\nobjectGUID: 5C0F\nvirtualClearTextUTF8:: UGFzcy13b3JkIQ==\n\n", 0, 3,
		  "virtualClearTextUTF8", "Pass-word!" },
		{ "folded line", "dn: CN=a\n ,DC=b\nx: 1\n", 0, 2, "dn", "CN=a,DC=b" },
		{ "CRLF", "dn: x\r\ny: z\r\n", 0, 2, "y", "z" },
		{ "comments and blank lines skipped", "# hello\n\ndn: x\n\n# bye\n", 0, 1, "dn", "x" },
		{ "sock MODIFY", "MODIFY\nmsgid: 2\nconnid: 1001\ndn: uid=u1,dc=x\nreplace: userPassword\n"
		  "userPassword:: UHctdHdvIQ==\n-\n\n", 0, 7, "userPassword", "Pw-two!" },
		{ "names are case-insensitive", "DN: x\n", 0, 1, "dn", "x" },
		{ "spaces after the colon", "a:    b c \n", 0, 1, "a", "b c " },
		{ "empty value", "a:\n", 0, 1, "a", "" },
		{ "bad base64", "a:: !!!\n", -1, 0, NULL, NULL },
		{ "a line without colon later", "dn: x\nnonsense\n", -1, 0, NULL, NULL },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t len = strlen(cases[i].text);
		char *text = sodium_malloc(len + 1);
		memcpy(text, cases[i].text, len + 1);
		pcns_kvs_t kv;
		const char *err = NULL;
		int rc = pcns_kv_parse(text, len, &kv, &err);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].label, rc, cases[i].rc, err ? err : "");
		if (rc == 0) {
			if (kv.n != cases[i].n)
				fail_msg("%s: %zu lines, want %zu", cases[i].label, kv.n, cases[i].n);
			const pcns_kv_t *v = pcns_kv_get(&kv, cases[i].name);
			if (v == NULL || strcmp(v->val, cases[i].want) != 0 || v->vlen != strlen(cases[i].want))
				fail_msg("%s: %s is '%s', want '%s'", cases[i].label, cases[i].name, v ? v->val : "(none)",
				    cases[i].want);
			pcns_kvs_release(&kv);
		}
		sodium_free(text);
	}
}

static void test_passwd_modify(void **state)
{
	(void)state;
	/* what ldappasswd sent through slapd's sock overlay (seen in LAB.md's setup) */
	static const uint8_t admin[] = { 0x30, 0x23, 0x80, 0x18, 'u', 'i', 'd', '=', 'u', '1', ',', 'd', 'c', '=', 'e', 'x',
		'a', 'm', 'p', 'l', 'e', ',', 'd', 'c', '=', 'c', 'o', 'm', 0x82, 0x07, 'P', 'w', '-', 'o', 'n', 'e', '!' };
	static const uint8_t self[] = { 0x30, 0x0b, 0x82, 0x09, 'P', 'w', '-', 't', 'h', 'r', 'e', 'e', '!' };
	static const uint8_t withold[] = { 0x30, 0x08, 0x81, 0x01, 'o', 0x82, 0x03, 'n', 'e', 'w' };
	static const uint8_t generated[] = { 0x30, 0x05, 0x80, 0x03, 'u', '=', 'x' };
	static const uint8_t badtag[] = { 0x30, 0x03, 0x83, 0x01, 'x' };
	static const uint8_t truncated[] = { 0x30, 0x09, 0x82, 0x09, 'x' };
	static const uint8_t longlen[] = { 0x30, 0x81, 0x05, 0x82, 0x03, 'a', 'b', 'c' };
	static const struct {
		const char *label;
		const uint8_t *ber;
		size_t len;
		int rc;
		const char *user; /* NULL: absent */
		const char *newpw; /* NULL: absent */
	} cases[] = {
		{ "admin reset", admin, sizeof admin, 0, "uid=u1,dc=example,dc=com", "Pw-one!" },
		{ "own change", self, sizeof self, 0, NULL, "Pw-three!" },
		{ "with the old password", withold, sizeof withold, 0, NULL, "new" },
		{ "server-generated", generated, sizeof generated, 0, "u=x", NULL },
		{ "no value at all", NULL, 0, 0, NULL, NULL },
		{ "unknown tag", badtag, sizeof badtag, -1, NULL, NULL },
		{ "truncated", truncated, sizeof truncated, -1, NULL, NULL },
		{ "long-form length", longlen, sizeof longlen, 0, NULL, "abc" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		pcns_passwd_modify_t pm;
		int rc = pcns_passwd_modify_parse(cases[i].ber, cases[i].len, &pm);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d", cases[i].label, rc, cases[i].rc);
		if (rc < 0)
			continue;
		if ((cases[i].user != NULL) != pm.have_user ||
		    (cases[i].user && (pm.user_len != strlen(cases[i].user) || memcmp(pm.user, cases[i].user, pm.user_len))))
			fail_msg("%s: user identity wrong", cases[i].label);
		if ((cases[i].newpw != NULL) != pm.have_new ||
		    (cases[i].newpw && (pm.newpw_len != strlen(cases[i].newpw) || memcmp(pm.newpw, cases[i].newpw, pm.newpw_len))))
			fail_msg("%s: new password wrong", cases[i].label);
	}
}

static void test_hashed(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		bool hashed;
	} cases[] = {
		{ "{SSHA}T8jlHrYVJcy4MTtUp8gliV4GyHyA0i4C", true },
		{ "{CRYPT}$6$abc", true },
		{ "{ARGON2}$argon2id$v=19", true },
		{ "{PBKDF2-SHA512}10000$x", true },
		{ "Pw-two!", false },
		{ "{not a scheme} secret", false },
		{ "{}", false },
		{ "{abc", false },
		{ "", false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++)
		if (pcns_is_hashed(cases[i].v, strlen(cases[i].v)) != cases[i].hashed)
			fail_msg("'%s': hashed should be %d", cases[i].v, cases[i].hashed);
}

static void test_groups(void **state)
{
	(void)state;
	char *inc[] = { "Sales" };
	char *exc[] = { "CN=Admins,CN=Users,DC=lab" };
	pcns_target_t t;
	memset(&t, 0, sizeof t);
	t.include_groups.v = inc;
	t.include_groups.n = 1;
	t.exclude_groups.v = exc;
	t.exclude_groups.n = 1;
	static const struct {
		const char *label;
		const char *groups[3];
		size_t n;
		bool disabled;
		bool accepts;
	} cases[] = {
		{ "member of the include group (by name)", { "CN=Sales,CN=Users,DC=lab" }, 1, false, true },
		{ "case-insensitive", { "cn=SALES,cn=users,dc=lab" }, 1, false, true },
		{ "in no include group", { "CN=Other,DC=lab" }, 1, false, false },
		{ "no groups at all", { NULL }, 0, false, false },
		{ "also in the exclude group (by DN)", { "CN=Sales,CN=Users,DC=lab", "cn=admins,cn=users,dc=lab" }, 2, false, false },
		{ "a group whose name only starts alike", { "CN=Salesforce,DC=lab" }, 1, false, false },
		{ "disabled", { "CN=Sales,DC=lab" }, 1, true, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		t.disabled = cases[i].disabled;
		if (pcns_target_accepts(&t, (char *const *)cases[i].groups, cases[i].n) != cases[i].accepts)
			fail_msg("%s: accepts should be %d", cases[i].label, cases[i].accepts);
		/* the reason given agrees with the decision */
		char *why = pcns_target_refusal(&t, (char *const *)cases[i].groups, cases[i].n);
		if ((why == NULL) != cases[i].accepts)
			fail_msg("%s: refusal '%s' disagrees with accepts %d", cases[i].label, why ? why : "", cases[i].accepts);
		free(why);
	}
	t.disabled = false;
	const char *both[] = { "CN=Sales,DC=lab", "cn=admins,cn=users,dc=lab" };
	char *why = pcns_target_refusal(&t, (char *const *)both, 2);
	assert_string_equal(why, "in its exclude group 'cn=admins,cn=users,dc=lab'");
	free(why);
	why = pcns_target_refusal(&t, NULL, 0);
	assert_string_equal(why, "in none of its include_groups");
	free(why);
	pcns_targets_t ts;
	memset(&ts, 0, sizeof ts);
	ts.targets.v = &t;
	ts.targets.n = 1;
	assert_true(pcns_targets_use_groups(&ts));
	pcns_target_t open;
	memset(&open, 0, sizeof open);
	assert_true(pcns_target_accepts(&open, NULL, 0)); /* no filters: everyone */
}

static void test_change_id(void **state)
{
	(void)state;
	uint8_t a[PCNS_ID_LEN], b[PCNS_ID_LEN], c[PCNS_ID_LEN], d[PCNS_ID_LEN];
	const char *p1[] = { "guid", "1340", "3" };
	const char *p2[] = { "guid", "1340", "3" };
	const char *p3[] = { "guid", "1341", "3" };
	const char *p4[] = { "guid1", "340", "3" }; /* same bytes run together: must differ */
	pcns_change_id_derive(a, p1, 3);
	pcns_change_id_derive(b, p2, 3);
	pcns_change_id_derive(c, p3, 3);
	pcns_change_id_derive(d, p4, 3);
	assert_memory_equal(a, b, PCNS_ID_LEN);
	assert_memory_not_equal(a, c, PCNS_ID_LEN);
	assert_memory_not_equal(a, d, PCNS_ID_LEN);
	char *name = pcns_spool_name(0x1234, a);
	assert_int_equal(strlen(name), 16 + 1 + 32 + 4);
	assert_true(strncmp(name, "0000000000001234-", 17) == 0);
	assert_string_equal(name + strlen(name) - 4, ".chg");
	free(name);
}

static char dir[64];

static void test_targets_roundtrip(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/targets.yaml", dir);
	pcns_targets_t t;
	loom_cfg_diags_t diags;
	memset(&t, 0, sizeof t);
	memset(&diags, 0, sizeof diags);
	assert_int_equal(pcns_targets_load(path, &t, &diags), 0); /* absent: empty */
	assert_int_equal(t.targets.n, 0);
	pcns_target_t v[2];
	memset(v, 0, sizeof v);
	char *inc[] = { "CN=Sales \"East\",DC=x" };
	v[0].name = "primary";
	v[0].endpoint = "tcp://127.0.0.1:5990";
	v[0].key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
	v[0].include_groups.v = inc;
	v[0].include_groups.n = 1;
	v[1].name = "standby";
	v[1].endpoint = "ipc:///run/x";
	v[1].key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
	v[1].disabled = true;
	pcns_targets_t w = { { v, 2 } };
	char *err = NULL;
	assert_int_equal(pcns_targets_save(path, &w, &err), 0);
	if (pcns_targets_load(path, &t, &diags) != 0)
		fail_msg("reload: %s", diags.n ? diags.v[0].text : "?");
	assert_int_equal(t.targets.n, 2);
	pcns_target_t *r = t.targets.v;
	assert_string_equal(r[0].name, "primary");
	assert_string_equal(r[0].key, v[0].key);
	assert_int_equal(r[0].include_groups.n, 1);
	assert_string_equal(r[0].include_groups.v[0], inc[0]);
	assert_false(r[0].disabled);
	assert_string_equal(r[1].endpoint, "ipc:///run/x");
	assert_true(r[1].disabled);
	pcns_targets_release(&t);
	/* a bad key is an error naming the file and the key */
	FILE *f = fopen(path, "w");
	fputs("targets:\n  - { name: a, endpoint: tcp://h:1, key: short }\n", f);
	fclose(f);
	memset(&t, 0, sizeof t);
	assert_int_equal(pcns_targets_load(path, &t, &diags), -1);
	assert_non_null(strstr(diags.v[0].text, "key 'targets[0].key': bad value 'short'"));
	loom_cfg_diags_release(&diags);
	pcns_targets_release(&t);
	unlink(path);
}

static void test_agent_pwsync(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *text;
		int rc;
		const char *error;
	} cases[] = {
		{ "defaults", "type: ldap\nldap: { uri: ldap://h, bases: [ { dn: \"dc=x\" } ] }\n", 0, NULL },
		{ "enabled, account match",
		  "type: ldap\nldap: { uri: ldap://h, bases: [ { dn: \"dc=x\" } ] }\n"
		  "password_sync: { enabled: true, match: [account], account_attribute: uid }\n", 0, NULL },
		{ "account without its attribute",
		  "type: ldap\nldap: { uri: ldap://h, bases: [ { dn: \"dc=x\" } ] }\npassword_sync: { match: [dn, account] }\n", -1,
		  "key 'password_sync.account_attribute': missing" },
		{ "unknown match", "type: ldap\nldap: { uri: ldap://h, bases: [ { dn: \"dc=x\" } ] }\npassword_sync: { match: [guid] }\n",
		  -1, "key 'password_sync.match': bad value 'guid'" },
		{ "bad retry", "type: ldap\nldap: { uri: ldap://h, bases: [ { dn: \"dc=x\" } ] }\npassword_sync: { retry_interval: 5 }\n",
		  -1, "password_sync.retry_interval" },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char path[128];
		snprintf(path, sizeof path, "%s/a.yaml", dir);
		FILE *f = fopen(path, "w");
		fputs(cases[i].text, f);
		fclose(f);
		loom_agentcfg_t cfg;
		loom_cfg_diags_t diags;
		memset(&cfg, 0, sizeof cfg);
		memset(&diags, 0, sizeof diags);
		int rc = loom_agentcfg_load(path, &cfg, &diags);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].label, rc, cases[i].rc, diags.n ? diags.v[0].text : "");
		if (rc == 0 && i == 0) {
			assert_false(cfg.password_sync.enabled);
			assert_int_equal(cfg.password_sync.match.n, 2);
			assert_int_equal(cfg.password_sync.retry_interval_ms, 10000);
			assert_int_equal(cfg.password_sync.max_attempts, 10);
		}
		if (cases[i].error && (diags.n == 0 || strstr(diags.v[0].text, cases[i].error) == NULL))
			fail_msg("%s: error '%s' lacks '%s'", cases[i].label, diags.n ? diags.v[0].text : "(none)", cases[i].error);
		loom_cfg_diags_release(&diags);
		loom_agentcfg_release(&cfg);
		unlink(path);
	}
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	snprintf(dir, sizeof dir, "/tmp/test_pcns.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_passwd_modify),
		cmocka_unit_test(test_hashed),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_change_id),
		cmocka_unit_test(test_targets_roundtrip),
		cmocka_unit_test(test_agent_pwsync),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
