/* test_ldap_usn.c - the pure code of Active Directory's uSNChanged delta
 * (agents/ma_ldap_usnmark.c): its watermark cookie, written and read back,
 * other cookies told apart, malformed ones refused; which DirSync failures
 * mean "use uSNChanged". Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ma_ldap.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_cookie_roundtrip(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		uint64_t usn;
	} cases[] = { { "zero", 0 }, { "small", 3996 }, { "largest", UINT64_MAX } };
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		ml_usn_mark_t m, back;
		for (int k = 0; k < 16; k++)
			m.invocation[k] = (uint8_t)(k * 17 + 3);
		m.usn = cases[i].usn;
		struct berval c;
		ml_usn_cookie_encode(&m, &c);
		const char *why = NULL;
		assert_int_equal(ml_usn_cookie_decode(&c, &back, &why), 1);
		assert_memory_equal(back.invocation, m.invocation, 16);
		assert_true(back.usn == m.usn);
		free(c.bv_val);
	}
	struct berval c;
	ml_usn_mark_t m = { .invocation = { 0xe5, 0x83 }, .usn = 42 };
	ml_usn_cookie_encode(&m, &c);
	assert_string_equal(c.bv_val, "loom-usn-1 e5830000000000000000000000000000 42");
	free(c.bv_val);
}

static void test_cookie_decode(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *text;
		size_t len;                /* 0: strlen */
		int want;
		const char *why;           /* part of the error, for -1 */
	} cases[] = {
		{ "a DirSync cookie", "MSDS\x03\0\0\0", 8, 0, NULL },
		{ "empty", "", 0, 0, NULL },
		{ "the prefix alone", "loom-usn-1 ", 0, -1, "shape" },
		{ "no usn", "loom-usn-1 e5830000000000000000000000000000 ", 0, -1, "shape" },
		{ "short id", "loom-usn-1 e583 42", 0, -1, "shape" },
		{ "upper-case hex", "loom-usn-1 E5830000000000000000000000000000 42", 0, -1, "hex" },
		{ "usn not a number", "loom-usn-1 e5830000000000000000000000000000 4x2", 0, -1, "number" },
		{ "usn too large", "loom-usn-1 e5830000000000000000000000000000 99999999999999999999", 0, -1, "range" },
		{ "good", "loom-usn-1 e5830000000000000000000000000000 7", 0, 1, NULL },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct berval c = { cases[i].len ? cases[i].len : strlen(cases[i].text), (char *)cases[i].text };
		ml_usn_mark_t m;
		const char *why = NULL;
		int got = ml_usn_cookie_decode(&c, &m, &why);
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].label, got, cases[i].want);
		if (cases[i].why && (why == NULL || strstr(why, cases[i].why) == NULL))
			fail_msg("%s: error '%s' does not say '%s'", cases[i].label, why ? why : "(none)", cases[i].why);
	}
	struct berval none = { 0, NULL };
	ml_usn_mark_t m;
	const char *why;
	assert_int_equal(ml_usn_cookie_decode(&none, &m, &why), 0);
}

static void test_dirsync_refused(void **state)
{
	(void)state;
	static const struct {
		int code;
		bool refused;
	} cases[] = {
		{ LDAP_INSUFFICIENT_ACCESS, true }, { LDAP_UNAVAILABLE_CRITICAL_EXTENSION, true },
		{ LDAP_UNWILLING_TO_PERFORM, true }, { LDAP_OPERATIONS_ERROR, true }, { LDAP_PROTOCOL_ERROR, true },
		{ LDAP_BUSY, false }, { LDAP_UNAVAILABLE, false }, { LDAP_SERVER_DOWN, false },
		{ LDAP_TIMELIMIT_EXCEEDED, false }, { LDAP_SUCCESS, false },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++)
		if (ml_dirsync_refused(cases[i].code) != cases[i].refused)
			fail_msg("code %d: want refused=%d", cases[i].code, cases[i].refused);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookie_roundtrip),
		cmocka_unit_test(test_cookie_decode),
		cmocka_unit_test(test_dirsync_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
