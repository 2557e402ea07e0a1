/* test_ldap_proto.c - the LDAP agent's pure code (agents/ma_ldap_proto.c):
 * RFC 4533 controls and sync info messages (encoded here with liblber the
 * way slapd encodes them), the watermark, result code names and
 * retryability, the filter shape check, UUID text. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ma_ldap.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t U1[16] = { 0x0a, 0x14, 0xea, 0x58, 0x79, 0xb6, 0x10, 0x41, 0x90, 0x9f, 0x0d, 0x98, 0xb8, 0x72, 0x28, 0x0e };
static const uint8_t U2[16] = { 0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };

/* Flattens what fmt encodes. */
static struct berval encode(const char *fmt, ...)
{
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	assert_non_null(ber);
	va_list ap;
	va_start(ap, fmt);
	/* ber_printf has no va_list form: the cases below pass at most 4 arguments. */
	void *a = va_arg(ap, void *), *b = va_arg(ap, void *), *c = va_arg(ap, void *), *d = va_arg(ap, void *);
	va_end(ap);
	assert_true(ber_printf(ber, fmt, a, b, c, d) >= 0);
	struct berval bv;
	assert_int_equal(ber_flatten2(ber, &bv, 1), 0);
	ber_free(ber, 1);
	return bv;
}

static void test_sync_state(void **state)
{
	(void)state;
	struct berval uuid = { 16, (char *)U1 }, cookie = { 9, "rid=1,csn" }, shortu = { 15, (char *)U1 };
	struct {
		const char *label;
		struct berval v;
		int rc, state;
		const char *cookie;
	} cases[] = {
		{ "add with cookie", encode("{eOO}", (void *)(intptr_t)LDAP_SYNC_ADD, &uuid, &cookie, NULL), 0, LDAP_SYNC_ADD, "rid=1,csn" },
		{ "delete without cookie", encode("{eO}", (void *)(intptr_t)LDAP_SYNC_DELETE, &uuid, NULL, NULL), 0, LDAP_SYNC_DELETE, NULL },
		{ "present", encode("{eO}", (void *)(intptr_t)LDAP_SYNC_PRESENT, &uuid, NULL, NULL), 0, LDAP_SYNC_PRESENT, NULL },
		{ "uuid of 15 bytes", encode("{eO}", (void *)(intptr_t)LDAP_SYNC_ADD, &shortu, NULL, NULL), -1, 0, NULL },
		{ "unknown state", encode("{eO}", (void *)(intptr_t)7, &uuid, NULL, NULL), -1, 0, NULL },
		{ "not a sequence", encode("O", &uuid, NULL, NULL, NULL), -1, 0, NULL },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		int st = -1;
		uint8_t u[16];
		struct berval ck = { 0, NULL };
		const char *why = NULL;
		int rc = ml_sync_state_parse(&cases[i].v, &st, u, &ck, &why);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d", cases[i].label, rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(st, cases[i].state);
			assert_memory_equal(u, U1, 16);
			if (cases[i].cookie)
				assert_string_equal(ck.bv_val, cases[i].cookie);
			else
				assert_null(ck.bv_val);
		} else {
			assert_non_null(why);
		}
		free(ck.bv_val);
		ber_memfree(cases[i].v.bv_val);
	}
}

static void test_sync_done(void **state)
{
	(void)state;
	struct berval cookie = { 6, "rid=02" };
	struct {
		const char *label;
		struct berval v;
		int rc;
		const char *cookie;
		bool rd;
	} cases[] = {
		{ "cookie and refreshDeletes", encode("{Ob}", &cookie, (void *)(intptr_t)1, NULL, NULL), 0, "rid=02", true },
		{ "cookie only", encode("{O}", &cookie, NULL, NULL, NULL), 0, "rid=02", false },
		{ "refreshDeletes only", encode("{b}", (void *)(intptr_t)1, NULL, NULL, NULL), 0, NULL, true },
		{ "empty", encode("{}", NULL, NULL, NULL, NULL), 0, NULL, false },
		{ "not a sequence", encode("b", (void *)(intptr_t)1, NULL, NULL, NULL), -1, NULL, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct berval ck = { 0, NULL };
		bool rd = !cases[i].rd;
		const char *why = NULL;
		int rc = ml_sync_done_parse(&cases[i].v, &ck, &rd, &why);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d", cases[i].label, rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(rd, cases[i].rd);
			if (cases[i].cookie)
				assert_string_equal(ck.bv_val, cases[i].cookie);
			else
				assert_null(ck.bv_val);
		}
		free(ck.bv_val);
		ber_memfree(cases[i].v.bv_val);
	}
}

static void test_sync_info(void **state)
{
	(void)state;
	struct berval cookie = { 7, "rid=003" }, u1 = { 16, (char *)U1 }, u2 = { 16, (char *)U2 }, bad = { 3, "abc" };
	struct berval set[] = { u1, u2, { 0, NULL } }, badset[] = { u1, bad, { 0, NULL } };
	struct {
		const char *label;
		struct berval v;
		int rc;
		ml_info_kind_t kind;
		const char *cookie;
		bool done, rd;
		size_t nuuids;
	} cases[] = {
		{ "newcookie", encode("tO", (void *)(uintptr_t)LDAP_TAG_SYNC_NEW_COOKIE, &cookie, NULL, NULL), 0,
		  ML_INFO_NEW_COOKIE, "rid=003", false, false, 0 },
		{ "refreshDelete, not done", encode("t{Ob}", (void *)(uintptr_t)LDAP_TAG_SYNC_REFRESH_DELETE, &cookie, (void *)(intptr_t)0, NULL), 0,
		  ML_INFO_REFRESH_DELETE, "rid=003", false, false, 0 },
		{ "refreshPresent, done by default", encode("t{}", (void *)(uintptr_t)LDAP_TAG_SYNC_REFRESH_PRESENT, NULL, NULL, NULL), 0,
		  ML_INFO_REFRESH_PRESENT, NULL, true, false, 0 },
		{ "syncIdSet of deletes", encode("t{Ob[W]}", (void *)(uintptr_t)LDAP_TAG_SYNC_ID_SET, &cookie, (void *)(intptr_t)1, set), 0,
		  ML_INFO_ID_SET, "rid=003", false, true, 2 },
		{ "syncIdSet of presents", encode("t{[W]}", (void *)(uintptr_t)LDAP_TAG_SYNC_ID_SET, set, NULL, NULL), 0,
		  ML_INFO_ID_SET, NULL, false, false, 2 },
		{ "syncIdSet with a bad uuid", encode("t{b[W]}", (void *)(uintptr_t)LDAP_TAG_SYNC_ID_SET, (void *)(intptr_t)1, badset, NULL), -1,
		  0, NULL, false, false, 0 },
		{ "unknown choice", encode("tO", (void *)(uintptr_t)0x85, &cookie, NULL, NULL), -1, 0, NULL, false, false, 0 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		ml_sync_info_t info;
		const char *why = NULL;
		int rc = ml_sync_info_parse(&cases[i].v, &info, &why);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].label, rc, cases[i].rc, why ? why : "");
		if (rc == 0) {
			assert_int_equal(info.kind, cases[i].kind);
			if (cases[i].cookie)
				assert_string_equal(info.cookie.bv_val, cases[i].cookie);
			else
				assert_null(info.cookie.bv_val);
			if (info.kind == ML_INFO_REFRESH_DELETE || info.kind == ML_INFO_REFRESH_PRESENT)
				assert_int_equal(info.refresh_done, cases[i].done);
			assert_int_equal(info.refresh_deletes, cases[i].rd);
			assert_int_equal(info.nuuids, cases[i].nuuids);
			if (info.nuuids == 2) {
				assert_memory_equal(info.uuids[0], U1, 16);
				assert_memory_equal(info.uuids[1], U2, 16);
			}
			ml_sync_info_release(&info);
		} else {
			assert_non_null(why);
		}
		ber_memfree(cases[i].v.bv_val);
	}
}

static void test_sync_request(void **state)
{
	(void)state;
	struct berval cookie = { 5, "rid=9" }, v;
	assert_int_equal(ml_sync_request_value(LDAP_SYNC_REFRESH_ONLY, &cookie, &v), 0);
	BerElement *ber = ber_init(&v);
	ber_int_t mode = 0;
	struct berval got = { 0, NULL };
	assert_int_not_equal(ber_scanf(ber, "{em}", &mode, &got), LBER_ERROR);
	assert_int_equal(mode, LDAP_SYNC_REFRESH_ONLY);
	assert_int_equal(got.bv_len, 5);
	assert_memory_equal(got.bv_val, "rid=9", 5);
	ber_free(ber, 1);
	ber_memfree(v.bv_val);
	/* Without a cookie: the mode alone. */
	assert_int_equal(ml_sync_request_value(LDAP_SYNC_REFRESH_AND_PERSIST, NULL, &v), 0);
	ber = ber_init(&v);
	ber_len_t len;
	assert_int_not_equal(ber_scanf(ber, "{e", &mode), LBER_ERROR);
	assert_int_equal(mode, LDAP_SYNC_REFRESH_AND_PERSIST);
	assert_int_equal(ber_peek_tag(ber, &len), LBER_DEFAULT);
	ber_free(ber, 1);
	ber_memfree(v.bv_val);
}

static void test_postread(void **state)
{
	(void)state;
	struct berval dn = { 13, "uid=a,dc=b,dc" }, uuidt = { 9, "entryUUID" }, cn = { 2, "cn" };
	struct berval uv[] = { { 36, "0a14ea58-79b6-1041-909f-0d98b872280e" }, { 0, NULL } };
	struct berval cv[] = { { 1, "a" }, { 0, NULL } };
	struct {
		const char *label;
		struct berval v;
		int rc;
	} cases[] = {
		{ "entryUUID after cn", { 0, NULL }, 1 }, /* built below: more arguments than encode() takes */
		{ "no attributes", encode("t{O{}}", (void *)(uintptr_t)0x64, &dn, NULL, NULL), 0 },
		{ "truncated", { 0, NULL }, -1 }, /* case 0 cut short, below */
	};
	BerElement *ber = ber_alloc_t(LBER_USE_DER);
	assert_true(ber_printf(ber, "t{O{{O[W]}{O[W]}}}", (ber_tag_t)0x64, &dn, &cn, cv, &uuidt, uv) >= 0);
	assert_int_equal(ber_flatten2(ber, &cases[0].v, 1), 0);
	ber_free(ber, 1);
	cases[2].v.bv_len = cases[0].v.bv_len - 10;
	cases[2].v.bv_val = ber_memalloc(cases[2].v.bv_len);
	memcpy(cases[2].v.bv_val, cases[0].v.bv_val, cases[2].v.bv_len);
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct berval got = { 0, NULL };
		const char *why = NULL;
		int rc = ml_postread_value(&cases[i].v, "entryuuid", &got, &why);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d", cases[i].label, rc, cases[i].rc);
		if (rc == 1)
			assert_string_equal(got.bv_val, "0a14ea58-79b6-1041-909f-0d98b872280e");
		else
			assert_null(got.bv_val);
		free(got.bv_val);
		ber_memfree(cases[i].v.bv_val);
	}
	struct berval rq;
	assert_int_equal(ml_postread_request("entryUUID", &rq), 0);
	ber = ber_init(&rq);
	BerVarray sel = NULL;
	assert_int_not_equal(ber_scanf(ber, "[W]", &sel), LBER_ERROR);
	assert_string_equal(sel[0].bv_val, "entryUUID");
	assert_null(sel[1].bv_val);
	ber_bvarray_free(sel);
	ber_free(ber, 1);
	ber_memfree(rq.bv_val);
}

static void test_schema(void **state)
{
	(void)state;
	static const char *const attrs[] = {
		"( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
		"( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name(s)' SUP name )",
		"( 0.9.2342.19200300.100.1.60 NAME 'jpegPhoto' DESC 'RFC2798: a JPEG image' SYNTAX 1.3.6.1.4.1.1466.115.121.1.28 )",
		"( 2.5.4.35 NAME 'userPassword' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{128} )",
		"( 1.9.9.1 NAME 'childPassword' SUP userPassword )",
		"( 1.9.9.2 NAME 'loopA' SUP loopB )",
		"( 1.9.9.3 NAME 'loopB' SUP loopA )",
	};
	ml_schema_t *sc = ml_schema_new();
	const char *why = NULL;
	for (size_t i = 0; i < N_ELEMS(attrs); i++)
		if (ml_schema_add_attr(sc, attrs[i], &why) < 0)
			fail_msg("'%s' does not parse: %s", attrs[i], why);
	assert_int_equal(ml_schema_add_attr(sc, "( 1.2.3 NAME 'broken' SYNTAX", &why), -1);
	assert_non_null(why);
	assert_int_equal(ml_schema_add_class(sc, "( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) )", &why), 0);
	assert_int_equal(ml_schema_add_class(sc, "( oops", &why), -1);
	ml_schema_resolve(sc);
	static const struct {
		const char *name;
		bool has, binary;
	} cases[] = {
		{ "cn", true, false },
		{ "CommonName", true, false },
		{ "2.5.4.3", true, false },
		{ "cn;lang-en", true, false },
		{ "jpegPhoto", true, true },
		{ "userPassword", true, true },
		{ "childPassword", true, true },
		{ "loopA", true, false },
		{ "mial", false, false },
		{ "broken", false, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t n = strlen(cases[i].name);
		if (ml_schema_has_attr(sc, cases[i].name, n) != cases[i].has)
			fail_msg("%s: has %d", cases[i].name, !cases[i].has);
		if (ml_schema_binary(sc, cases[i].name, n) != cases[i].binary)
			fail_msg("%s: binary %d", cases[i].name, !cases[i].binary);
	}
	assert_true(ml_schema_has_class(sc, "GROUPOFNAMES"));
	assert_false(ml_schema_has_class(sc, "groupOfUniqueNames"));
	ml_schema_destroy(&sc);
	assert_null(sc);
}

static void test_dn_in_base(void **state)
{
	(void)state;
	static const struct {
		const char *dn, *base;
		int scope;
		bool in;
	} cases[] = {
		{ "CN=alice,CN=Users,DC=lab,DC=example,DC=com", "cn=users, dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_SUB, true },
		{ "CN=alice,CN=Users,DC=lab,DC=example,DC=com", "cn=users,dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_ONE, true },
		{ "CN=a,OU=x,CN=Users,DC=lab,DC=example,DC=com", "cn=users,dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_ONE, false },
		{ "CN=a,OU=x,CN=Users,DC=lab,DC=example,DC=com", "cn=users,dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_SUB, true },
		{ "CN=Users,DC=lab,DC=example,DC=com", "cn=users,dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_BASE, true },
		{ "CN=Users,DC=lab,DC=example,DC=com", "cn=users,dc=lab,dc=example,dc=com", LOOM_LDAP_SCOPE_ONE, false },
		{ "CN=alice\\,CN=Users,DC=lab", "cn=users,dc=lab", LOOM_LDAP_SCOPE_SUB, false }, /* an escaped comma */
		{ "CN=bob\\0ADEL:1234,CN=Deleted Objects,DC=lab", "cn=users,dc=lab", LOOM_LDAP_SCOPE_SUB, false },
		{ "CN=alice,CN=Users2,DC=lab", "cn=users,dc=lab", LOOM_LDAP_SCOPE_SUB, false },
		{ "not a dn", "dc=lab", LOOM_LDAP_SCOPE_SUB, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++)
		if (ml_dn_in_base(cases[i].dn, cases[i].base, cases[i].scope) != cases[i].in)
			fail_msg("'%s' in '%s' scope %d: %d", cases[i].dn, cases[i].base, cases[i].scope, !cases[i].in);
}

static void test_uuid_text(void **state)
{
	(void)state;
	static const uint8_t guid[16] = { 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	char t[37];
	ml_uuid_text(U1, false, t);
	assert_string_equal(t, "0a14ea58-79b6-1041-909f-0d98b872280e");
	ml_uuid_text(guid, true, t);
	assert_string_equal(t, "00112233-4455-6677-8899-aabbccddeeff");
}

static void test_watermark(void **state)
{
	(void)state;
	char *dns[] = { "ou=people,dc=example,dc=com", "ou=groups,dc=example,dc=com", "ou=x\\2Cy,dc=z" };
	struct berval cookies[] = { { 30, "rid=000,csn=20261121.1Z#000000" }, { 0, NULL }, { 4, "\t\n\0\xff" } };
	ml_watermark_t w = { dns, cookies, 3 }, back;
	uint8_t *enc;
	size_t len;
	const char *why;
	ml_watermark_encode(&w, &enc, &len);
	assert_int_equal(ml_watermark_decode(enc, len, &back, &why), 0);
	assert_int_equal(back.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(back.dns[i], dns[i]);
		assert_int_equal(back.cookies[i].bv_len, cookies[i].bv_len);
		if (cookies[i].bv_val)
			assert_memory_equal(back.cookies[i].bv_val, cookies[i].bv_val, cookies[i].bv_len);
		else
			assert_null(back.cookies[i].bv_val);
	}
	struct berval nc = { 3, "new" };
	ml_watermark_set(&back, 1, &nc);
	assert_string_equal(back.cookies[1].bv_val, "new");
	ml_watermark_set(&back, 1, NULL);
	assert_null(back.cookies[1].bv_val);
	ml_watermark_release(&back);
	free(enc);

	static const struct {
		const char *label;
		const char *text;
	} bad[] = {
		{ "empty (no import yet)", "" },
		{ "another agent's", "full" },
		{ "odd hex", "loom-ldap-1\nabc\tou=a\n" },
		{ "not hex", "loom-ldap-1\nzz\tou=a\n" },
		{ "no tab", "loom-ldap-1\nabcd\n" },
		{ "no end of line", "loom-ldap-1\nab\tou=a" },
		{ "no DN", "loom-ldap-1\nab\t\n" },
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		why = NULL;
		if (ml_watermark_decode((const uint8_t *)bad[i].text, strlen(bad[i].text), &back, &why) == 0)
			fail_msg("%s: decoded", bad[i].label);
		assert_non_null(why);
		assert_int_equal(back.n, 0);
	}
	/* No bases at all is a valid (empty) watermark. */
	assert_int_equal(ml_watermark_decode((const uint8_t *)"loom-ldap-1\n", 12, &back, &why), 0);
	assert_int_equal(back.n, 0);
	ml_watermark_release(&back);
}

static void test_results(void **state)
{
	(void)state;
	static const struct {
		int code;
		const char *name;
		bool retryable;
	} cases[] = {
		{ LDAP_CONSTRAINT_VIOLATION, "constraint-violation", false },
		{ LDAP_NO_SUCH_OBJECT, "no-such-object", false },
		{ LDAP_ALREADY_EXISTS, "entry-already-exists", false },
		{ LDAP_OBJECT_CLASS_VIOLATION, "object-class-violation", false },
		{ LDAP_INSUFFICIENT_ACCESS, "insufficient-access-rights", false },
		{ LDAP_INVALID_SYNTAX, "invalid-attribute-syntax", false },
		{ LDAP_UNDEFINED_TYPE, "undefined-attribute-type", false },
		{ LDAP_NOT_ALLOWED_ON_NONLEAF, "not-allowed-on-non-leaf", false },
		{ LDAP_INVALID_CREDENTIALS, "invalid-credentials", false },
		{ LDAP_BUSY, "busy", true },
		{ LDAP_UNAVAILABLE, "unavailable", true },
		{ LDAP_UNWILLING_TO_PERFORM, "unwilling-to-perform", true },
		{ LDAP_SERVER_DOWN, "server-down", true },
		{ LDAP_TIMEOUT, "timeout", true },
		{ LDAP_CONNECT_ERROR, "connect-error", true },
		{ 4242, "ldap-error-4242", false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char buf[32];
		assert_string_equal(ml_result_name(cases[i].code, buf), cases[i].name);
		if (ml_result_retryable(cases[i].code) != cases[i].retryable)
			fail_msg("%s: retryable %d", cases[i].name, !cases[i].retryable);
	}
}

static void test_filter(void **state)
{
	(void)state;
	static const struct {
		const char *f;
		int rc;
		size_t off;
	} cases[] = {
		{ "(objectClass=*)", 0, 0 },
		{ "(&(objectClass=person)(|(uid=a*)(!(cn=b))))", 0, 0 },
		{ "(cn=a\\2Ab)", 0, 0 },
		{ "(cn=)", 0, 0 },
		{ "(&)", 0, 0 },
		{ "", -1, 0 },
		{ "objectClass=*", -1, 0 },
		{ "(objectClass=person", -1, 19 },
		{ "(cn=a))", -1, 6 },
		{ "(cn=a)(cn=b)", -1, 6 },
		{ "()", -1, 1 },
		{ "(&(cn=a)())", -1, 9 },
		{ "(&cn=a)", -1, 2 },
		{ "(cn=a\\zz)", -1, 5 },
		{ "(cn=a\\2", -1, 5 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		size_t off = 999;
		const char *why = NULL;
		int rc = ml_filter_check(cases[i].f, &off, &why);
		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].f, rc, cases[i].rc);
		if (rc < 0 && off != cases[i].off)
			fail_msg("'%s': offset %zu, want %zu (%s)", cases[i].f, off, cases[i].off, why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_state),
		cmocka_unit_test(test_sync_done),
		cmocka_unit_test(test_sync_info),
		cmocka_unit_test(test_sync_request),
		cmocka_unit_test(test_postread),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_dn_in_base),
		cmocka_unit_test(test_uuid_text),
		cmocka_unit_test(test_watermark),
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
