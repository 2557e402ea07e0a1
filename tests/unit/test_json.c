/* test_json.c - the strict JSON parser of loom-ma-ext's protocol
 * (lib/loom_json.c): table cases of texts and what they parse to (or the
 * error's column and message), and random mutations of valid messages that
 * must parse or fail cleanly (run under ASan in CI). */
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
#include "loom_json.h"

/* A canonical dump: s"..." n<int> d<double> t f null [..] {k:..} */
static void dump(loom_buf_t *b, const loom_json_t *v)
{
	switch (v->type) {
	case LOOM_JSON_NULL: loom_buf_adds(b, "null"); break;
	case LOOM_JSON_BOOL: loom_buf_adds(b, v->b ? "t" : "f"); break;
	case LOOM_JSON_NUMBER:
		if (v->is_int)
			loom_buf_printf(b, "n%lld", v->i);
		else
			loom_buf_printf(b, "d%g", v->d);
		break;
	case LOOM_JSON_STRING: loom_buf_printf(b, "s\"%s\"", v->s); break;
	case LOOM_JSON_ARRAY:
	case LOOM_JSON_OBJECT:
		loom_buf_addc(b, v->type == LOOM_JSON_ARRAY ? '[' : '{');
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				loom_buf_addc(b, ',');
			if (v->keys)
				loom_buf_printf(b, "%s:", v->keys[i]);
			dump(b, v->items[i]);
		}
		loom_buf_addc(b, v->type == LOOM_JSON_ARRAY ? ']' : '}');
		break;
	}
}

typedef struct json_case {
	const char *label;
	const char *text;
	const char *want;  /* the dump, or "E:" and the error */
} json_case_t;

static const json_case_t cases[] = {
	{ "object", "{\"type\":\"object\",\"n\":42,\"ok\":true,\"x\":null}", "{type:s\"object\",n:n42,ok:t,x:null}" },
	{ "nesting and spaces", " [ 1 , [ ] , { } , -0.5e1 ]\n", "[n1,[],{},d-5]" },
	{ "escapes", "\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"", "s\"a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80\"" },
	{ "int64 limits", "[9223372036854775807,-9223372036854775808,9223372036854775808]",
	  "[n9223372036854775807,n-9223372036854775808,d9.22337e+18]" },
	{ "utf-8 passes", "\"Zo\xc3\xa9\"", "s\"Zo\xc3\xa9\"" },
	{ "trailing comma", "[1,]", "E:column 4: expected a value, found ']'" },
	{ "duplicate key", "{\"a\":1,\"a\":2}", "E:column 8: key 'a' appears twice" },
	{ "text after", "{} x", "E:column 4: text after the value" },
	{ "leading zero", "01", "E:column 1: a number with a leading zero" },
	{ "lone surrogate", "\"\\udc00\"", "E:column 2: a lone low surrogate \\udc00" },
	{ "NUL escape", "\"a\\u0000\"", "E:column 3: \\u0000 in a string" },
	{ "control character", "\"a\tb\"", "E:column 3: control character 0x09 in a string (escape it)" },
	{ "bad UTF-8", "\"\xff\"", "E:column 2: invalid UTF-8 in a string" },
	{ "unterminated", "{\"a\":\"b", "E:column 8: unterminated string" },
	{ "empty", "", "E:column 1: expected a value, found the end" },
	{ "NaN", "NaN", "E:column 1: expected a value, found 'N'" },
	{ "huge number", "1e999", "E:column 1: number out of range" },
	{ "single quotes", "{'a':1}", "E:column 2: expected a key in quotes" },
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		loom_json_t *v = NULL;
		char *err = NULL;
		loom_buf_t b = LOOM_BUF_INIT;
		if (loom_json_parse(cases[i].text, strlen(cases[i].text), &v, &err) == 0)
			dump(&b, v);
		else
			loom_buf_printf(&b, "E:%s", err);
		if (strcmp(loom_buf_cstr(&b), cases[i].want) != 0)
			fail_msg("%s:\n got  '%s'\n want '%s'", cases[i].label, loom_buf_cstr(&b), cases[i].want);
		loom_buf_release(&b);
		loom_json_free(&v);
		free(err);
	}
}

static void test_deep(void **state)
{
	(void)state;
	char deep[200];
	memset(deep, '[', sizeof deep);
	loom_json_t *v = NULL;
	char *err = NULL;
	assert_int_equal(loom_json_parse(deep, sizeof deep, &v, &err), -1);
	assert_non_null(strstr(err, "nested more than 64 deep"));
	free(err);
}

static void test_mutations(void **state)
{
	(void)state;
	static const char *const seeds[] = {
		"{\"type\":\"object\",\"anchor\":\"1001\",\"attrs\":{\"mail\":[\"a@x\",\"b@x\"],\"when\":{\"time\":\"2024-05-01T12:00:00Z\"}}}",
		"{\"type\":\"result\",\"id\":101,\"ok\":false,\"code\":\"no-such-object\",\"retryable\":false}",
		"[1.5e3,-2,\"\\u00e9\\ud83d\\ude00\",null,true,{\"a\":[{}]}]",
	};
	unsigned seed = 20261121;
	for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
		size_t len = strlen(seeds[s]);
		char *buf = loom_malloc(len + 8);
		for (int round = 0; round < 20000; round++) {
			memcpy(buf, seeds[s], len);
			size_t n = len;
			int edits = 1 + rand_r(&seed) % 4;
			for (int e = 0; e < edits; e++) {
				size_t at = (size_t)rand_r(&seed) % n;
				switch (rand_r(&seed) % 3) {
				case 0: buf[at] = (char)(rand_r(&seed) % 256); break;
				case 1: n = at + 1; break; /* truncate */
				default: buf[at] = "{}[]\",:\\0-e.u"[rand_r(&seed) % 13]; break;
				}
			}
			loom_json_t *v = NULL;
			char *err = NULL;
			if (loom_json_parse(buf, n, &v, &err) == 0)
				assert_non_null(v);
			else
				assert_non_null(err);
			loom_json_free(&v);
			free(err);
		}
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_deep),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
