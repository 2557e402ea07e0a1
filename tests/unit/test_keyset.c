/* test_keyset.c - the key set, its passphrase export and sealed secrets
 * (lib/loom_keyset.c). Tables: exports opened with passphrases and
 * tampered texts, with the wanted outcome; sealed lines tampered, with the
 * wanted outcome; rotation keeps old versions readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_keyset.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Flips one hex digit of the line starting with prefix (at offset off). */
static char *tamper(const char *text, const char *prefix, size_t off)
{
	char *t = loom_strdup(text);
	char *p = strstr(t, prefix);
	if (p == NULL)
		return t;
	p += strlen(prefix) + off;
	*p = *p == '0' ? '1' : '0';
	return t;
}

static void test_export_import(void **state)
{
	(void)state;
	static const struct {
		const char *label;        /* the case */
		const char *passphrase;   /* given to import */
		const char *tamper_line;  /* NULL: the export as written */
		int want;                 /* 0 or -1 */
		const char *want_error;   /* substring of the error */
	} cases[] = {
		{ "right passphrase", "correct horse", NULL, 0, NULL },
		{ "wrong passphrase", "correct hors", NULL, -1, "wrong passphrase or damaged" },
		{ "empty passphrase", "", NULL, -1, "wrong passphrase or damaged" },
		{ "box tampered", "correct horse", "\nbox: ", -1, "wrong passphrase or damaged" },
		{ "nonce tampered", "correct horse", "\nnonce: ", -1, "wrong passphrase or damaged" },
		{ "salt tampered", "correct horse", "argon2id13 ", -1, NULL },
	};
	loom_keyset_t *ks = loom_keyset_new();
	loom_keyset_rotate(ks);
	char *text = loom_keyset_export(ks, "correct horse");
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *in = cases[i].tamper_line ? tamper(text, cases[i].tamper_line, 20) : loom_strdup(text);
		loom_keyset_t *got = NULL;
		char *err = NULL;
		int rc = loom_keyset_import(in, cases[i].passphrase, &got, &err);
		if (rc != cases[i].want)
			fail_msg("%s: import returned %d, want %d (%s)", cases[i].label, rc, cases[i].want, err ? err : "");
		if (rc == 0) {
			assert_string_equal(loom_keyset_installation(got), loom_keyset_installation(ks));
			assert_int_equal(loom_keyset_current(got), 2);
			assert_int_equal(loom_keyset_count(got), 2);
		} else if (cases[i].want_error != NULL && strstr(err, cases[i].want_error) == NULL)
			fail_msg("%s: error '%s' lacks '%s'", cases[i].label, err, cases[i].want_error);
		loom_keyset_destroy(&got);
		free(err);
		free(in);
	}
	loom_keyset_t *got = NULL;
	char *err = NULL;
	assert_int_equal(loom_keyset_import("not an export\n", "x", &got, &err), -1);
	assert_non_null(strstr(err, "not a Loom key set export"));
	free(err);
	free(text);
	loom_keyset_destroy(&ks);
}

static void test_seal_open(void **state)
{
	(void)state;
	loom_keyset_t *ks = loom_keyset_new();
	char *line = loom_secret_seal(ks, "s3cret", 6);
	static const struct {
		const char *label;   /* the case */
		int edit;            /* 0 none, 1 flip in the box, 2 unknown version, 3 garbage */
		int want;            /* 0 or -1 */
	} cases[] = {
		{ "as sealed", 0, 0 },
		{ "box tampered", 1, -1 },
		{ "unknown version", 2, -1 },
		{ "garbage", 3, -1 },
	};
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char *in;
		if (cases[i].edit == 1)
			in = tamper(line, " ", 60);
		else if (cases[i].edit == 2)
			in = loom_sprintf("9%s", line);
		else if (cases[i].edit == 3)
			in = loom_strdup("1 zz yy\n");
		else
			in = loom_strdup(line);
		char *plain = NULL, *err = NULL;
		size_t len = 0;
		int rc = loom_secret_open(ks, in, &plain, &len, &err);
		if (rc != cases[i].want)
			fail_msg("%s: open returned %d, want %d (%s)", cases[i].label, rc, cases[i].want, err ? err : "");
		if (rc == 0) {
			assert_int_equal(len, 6);
			assert_string_equal(plain, "s3cret");
		}
		loom_secret_free(&plain);
		free(err);
		free(in);
	}
	free(line);
	loom_keyset_destroy(&ks);
}

static void test_rotate_keeps_old(void **state)
{
	(void)state;
	loom_keyset_t *ks = loom_keyset_new();
	char *v1 = loom_secret_seal(ks, "one", 3);
	assert_int_equal(loom_secret_version(v1), 1);
	assert_int_equal(loom_keyset_rotate(ks), 2);
	char *v2 = loom_secret_seal(ks, "two", 3);
	assert_int_equal(loom_secret_version(v2), 2);
	char *plain = NULL, *err = NULL;
	size_t len;
	assert_int_equal(loom_secret_open(ks, v1, &plain, &len, &err), 0);
	assert_string_equal(plain, "one");
	loom_secret_free(&plain);

	/* Save and load, and a merge of an older export adds nothing. */
	char dir[] = "/tmp/test_keyset.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = loom_sprintf("%s/keyset", dir);
	assert_int_equal(loom_keyset_save(ks, path, &err), 0);
	loom_keyset_t *back = NULL;
	assert_int_equal(loom_keyset_load(path, &back, &err), 0);
	assert_int_equal(loom_keyset_current(back), 2);
	assert_int_equal(loom_secret_open(back, v2, &plain, &len, &err), 0);
	assert_string_equal(plain, "two");
	loom_secret_free(&plain);
	assert_int_equal(loom_keyset_merge(back, ks), 0);
	unlink(path);
	rmdir(dir);
	free(path);
	loom_keyset_destroy(&back);
	free(v1);
	free(v2);
	loom_keyset_destroy(&ks);
}

/* loom_keyset_derive: stable per (version, context), different across
 * versions, contexts and key sets; rotation keeps an old version's bytes. */
static void test_derive(void **state)
{
	(void)state;
	loom_keyset_t *ks = loom_keyset_new(), *other = loom_keyset_new();
	uint8_t a[32], b[32], c[32];
	unsigned v = 0;
	assert_int_equal(loom_keyset_derive(ks, 0, "sspr-pepper", a, sizeof a, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(loom_keyset_derive(ks, 1, "sspr-pepper", b, sizeof b, NULL), 0);
	assert_memory_equal(a, b, sizeof a); /* 0 is the current version */
	assert_int_equal(loom_keyset_derive(ks, 1, "sspr-pepper-check", c, sizeof c, NULL), 0);
	assert_memory_not_equal(a, c, sizeof a); /* another context */
	assert_int_equal(loom_keyset_derive(other, 1, "sspr-pepper", c, sizeof c, NULL), 0);
	assert_memory_not_equal(a, c, sizeof a); /* another key set */
	assert_int_equal(loom_keyset_rotate(ks), 2);
	assert_int_equal(loom_keyset_derive(ks, 0, "sspr-pepper", c, sizeof c, &v), 0);
	assert_int_equal(v, 2);
	assert_memory_not_equal(a, c, sizeof a); /* the new version */
	assert_int_equal(loom_keyset_derive(ks, 1, "sspr-pepper", b, sizeof b, NULL), 0);
	assert_memory_equal(a, b, sizeof a); /* the old version still gives its bytes */
	assert_int_equal(loom_keyset_derive(ks, 3, "sspr-pepper", b, sizeof b, NULL), -1); /* no such version */
	assert_int_equal(loom_keyset_derive(ks, 1, "sspr-pepper", b, 8, NULL), -1);      /* too short */
	loom_keyset_destroy(&ks);
	loom_keyset_destroy(&other);
}

/* loom_keyset_sspr_check_matches: the check of that version of that key
 * set only; no key set, version 0, another length or a missing version
 * never match. */
static void test_sspr_check(void **state)
{
	(void)state;
	loom_keyset_t *ks = loom_keyset_new(), *other = loom_keyset_new();
	uint8_t chk[LOOM_KEYSET_SSPR_CHECK_LEN];
	assert_int_equal(loom_keyset_derive(ks, 1, LOOM_KEYSET_CTX_SSPR_CHECK, chk, sizeof chk, NULL), 0);
	assert_true(loom_keyset_sspr_check_matches(ks, 1, chk, sizeof chk));
	assert_false(loom_keyset_sspr_check_matches(other, 1, chk, sizeof chk)); /* another key set */
	assert_false(loom_keyset_sspr_check_matches(NULL, 1, chk, sizeof chk));  /* none */
	assert_false(loom_keyset_sspr_check_matches(ks, 0, chk, sizeof chk));    /* unversioned record */
	assert_false(loom_keyset_sspr_check_matches(ks, 2, chk, sizeof chk));    /* no such version */
	assert_false(loom_keyset_sspr_check_matches(ks, 1, chk, sizeof chk - 1)); /* another length */
	assert_int_equal(loom_keyset_rotate(ks), 2);
	assert_true(loom_keyset_sspr_check_matches(ks, 1, chk, sizeof chk));     /* rotation keeps version 1 */
	assert_false(loom_keyset_sspr_check_matches(ks, 2, chk, sizeof chk));
	chk[0] ^= 1;
	assert_false(loom_keyset_sspr_check_matches(ks, 1, chk, sizeof chk));    /* one bit off */
	loom_keyset_destroy(&ks);
	loom_keyset_destroy(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_sspr_check),
		cmocka_unit_test(test_export_import),
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_rotate_keeps_old),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
