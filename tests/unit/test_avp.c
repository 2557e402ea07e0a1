/* test_avp.c - attribute-value pair files (lib/loom_avp.c) and fixed-width
 * records (lib/loom_fixed.c): table cases of inputs and what they must give
 * (pairs dumped as text, or the error's line, column and message), reading
 * across 64 KiB reads, and writer round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_avp.h"
#include "loom_buf.h"
#include "loom_fixed.h"

/* Dumps every record as "name=value;" (values in hex when not printable),
 * records separated by '|', errors as "E<line>:<col>:<message>|". */
static char *dump(const char *input, char sep)
{
	loom_avp_reader_t *r = loom_avp_reader_new_mem(input, strlen(input), sep, 64);
	assert_non_null(r);
	loom_buf_t b = LOOM_BUF_INIT;
	loom_avp_record_t rec;
	loom_avp_error_t e;
	int rc;
	while ((rc = loom_avp_read(r, &rec, &e)) != 0) {
		if (rc < 0) {
			loom_buf_printf(&b, "E%u:%u:%s|", e.line, e.column, e.message);
			continue;
		}
		for (size_t i = 0; i < rec.n; i++) {
			bool printable = true;
			for (size_t k = 0; k < rec.pairs[i].len; k++)
				if ((unsigned char)rec.pairs[i].value[k] < 0x20 || (unsigned char)rec.pairs[i].value[k] >= 0x7f)
					printable = false;
			loom_buf_printf(&b, "%s=", rec.pairs[i].name);
			if (printable)
				loom_buf_add(&b, rec.pairs[i].value, rec.pairs[i].len);
			else
				loom_buf_add_hex(&b, rec.pairs[i].value, rec.pairs[i].len);
			loom_buf_addc(&b, ';');
		}
		loom_buf_printf(&b, "@%u|", rec.line);
	}
	loom_avp_reader_destroy(&r);
	return b.data ? loom_buf_steal(&b) : loom_strdup("");
}

typedef struct avp_case {
	const char *label;
	const char *input;
	char sep;
	const char *want;
} avp_case_t;

static const avp_case_t avp_cases[] = {
	{ "one object", "a: 1\nb: 2\n", 0, "a=1;b=2;@1|" },
	{ "repeated names stay pairs", "mail: x\nmail: y\n\n\nmail: z", 0, "mail=x;mail=y;@1|mail=z;@5|" },
	{ "no space after the separator", "a:1\nb:  two spaces\n", 0, "a=1;b= two spaces;@1|" },
	{ "trailing spaces are data", "a: x  \n", 0, "a=x  ;@1|" },
	{ "CRLF", "a: 1\r\nb: 2\r\n\r\nc: 3\r\n", 0, "a=1;b=2;@1|c=3;@4|" },
	{ "comments and blank-ish lines", "# c\n  \t\na: 1\n# mid\nb: 2\n \n", 0, "a=1;b=2;@3|" },
	{ "empty value", "a:\nb: \n", 0, "a=;b=;@1|" },
	{ "base64", "photo:: AAEC\n", 0, "photo=000102;@1|" },
	{ "value with a separator", "url: http://x:80/\n", 0, "url=http://x:80/;@1|" },
	{ "other separator", "a=1\nb==Mg==\n", '=', "a=1;b=2;@1|" },
	{ "no separator: the object is skipped",
	  "a: 1\nnonsense\nb: 2\n\nc: 3\n", 0, "E2:1:line without ':': expected NAME:VALUE (a blank line ends an object)|c=3;@5|" },
	{ "empty name", ": x\n\nb: 1\n", 0, "E1:1:line starts with ':': the attribute name is missing|b=1;@3|" },
	{ "space in name", "my attr: x\n", 0, "E1:3:attribute name 'my attr' holds a space, tab or NUL: expected NAME:VALUE|" },
	{ "bad base64", "a:: !!\n", 0, "E1:5:bad base64 value of 'a'|" },
	{ "not UTF-8", "a: \xff\n", 0, "E1:4:value of 'a' is not UTF-8 text (or holds a NUL): write it in base64 after '::'|" },
	{ "line too long",
	  "a: 0123456789012345678901234567890123456789012345678901234567890123456789\n\nb: 1\n", 0,
	  "E1:1:line longer than 64 bytes|b=1;@3|" },
};

static void test_avp_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof avp_cases / sizeof avp_cases[0]; i++) {
		char *got = dump(avp_cases[i].input, avp_cases[i].sep);
		if (strcmp(got, avp_cases[i].want) != 0)
			fail_msg("%s:\n got  '%s'\n want '%s'", avp_cases[i].label, got, avp_cases[i].want);
		free(got);
	}
}

static void test_avp_fd_and_roundtrip(void **state)
{
	(void)state;
	char path[] = "/tmp/test_avp.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	loom_buf_t out = LOOM_BUF_INIT;
	static const char bin[] = { ' ', 'x', '\n', '\0', '\xff' };
	for (int i = 0; i < 20000; i++) {
		char v[32];
		int n = snprintf(v, sizeof v, "value %d", i);
		loom_avp_write_pair(&out, ':', "id", v, (size_t)n);
		loom_avp_write_pair(&out, ':', "bin", bin, sizeof bin);
		loom_avp_write_pair(&out, ':', "empty", "", 0);
		loom_avp_write_end(&out);
	}
	assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
	loom_buf_release(&out);
	lseek(fd, 0, SEEK_SET);
	loom_avp_reader_t *r = loom_avp_reader_new_fd(fd, ':', 0);
	loom_avp_record_t rec;
	loom_avp_error_t e;
	int n = 0, rc;
	while ((rc = loom_avp_read(r, &rec, &e)) > 0) {
		char v[32];
		snprintf(v, sizeof v, "value %d", n);
		assert_int_equal(rec.n, 3);
		assert_string_equal(rec.pairs[0].value, v);
		assert_int_equal(rec.pairs[1].len, sizeof bin);
		assert_memory_equal(rec.pairs[1].value, bin, sizeof bin);
		assert_int_equal(rec.pairs[2].len, 0);
		assert_int_equal(rec.line, (unsigned)(n * 4 + 1));
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 20000);
	loom_avp_reader_destroy(&r);
	close(fd);
	unlink(path);
}

/* ---- fixed width ---------------------------------------------------------------- */

static loom_fixed_col_t layout[] = {
	{ "id", 1, 6, LOOM_FIXED_STRING, NULL, LOOM_FIXED_ALIGN_AUTO },
	{ "name", 0, 10, LOOM_FIXED_STRING, NULL, LOOM_FIXED_ALIGN_AUTO },
	{ "n", 0, 5, LOOM_FIXED_INTEGER, NULL, LOOM_FIXED_ALIGN_AUTO },
	{ "ok", 0, 1, LOOM_FIXED_BOOLEAN, NULL, LOOM_FIXED_ALIGN_AUTO },
	{ "when", 0, 10, LOOM_FIXED_DATETIME, NULL, LOOM_FIXED_ALIGN_AUTO },
};

static void test_fixed_layout(void **state)
{
	(void)state;
	char *err = NULL;
	assert_int_equal(loom_fixed_layout(layout, 5, &err), 0);
	assert_int_equal(layout[1].start, 7);
	assert_int_equal(layout[4].start, 23);
	assert_int_equal(loom_fixed_length(layout, 5), 32);
	loom_fixed_col_t bad[] = { { "a", 1, 5, 0, NULL, 0 }, { "b", 3, 2, 0, NULL, 0 } };
	assert_int_equal(loom_fixed_layout(bad, 2, &err), -1);
	assert_string_equal(err, "column 'b' (characters 3-4) overlaps column 'a' (1-5)");
	free(err);
	loom_fixed_col_t dup[] = { { "a", 1, 5, 0, NULL, 0 }, { "A", 0, 2, 0, NULL, 0 } };
	assert_int_equal(loom_fixed_layout(dup, 2, &err), -1);
	free(err);
}

static void test_fixed_split_and_values(void **state)
{
	(void)state;
	char *err = NULL;
	assert_int_equal(loom_fixed_layout(layout, 5, &err), 0);
	loom_fixed_cell_t cells[5];
	unsigned col;
	const char *why;
	/* UTF-8: é is one character */
	const char *line = "000001Zoé          42Y2020-01-31";
	assert_int_equal(loom_fixed_split(layout, 5, line, strlen(line), cells, &col, &why), 0);
	assert_int_equal(cells[0].len, 6);
	assert_int_equal(cells[1].len, strlen("Zoé"));
	assert_memory_equal(cells[2].text, "42", 2);
	char b[200];
	Loom__Value *v = loom_fixed_value(&layout[2], cells[2].text, cells[2].len, b, sizeof b);
	assert_non_null(v);
	assert_int_equal(v->v_case, LOOM__VALUE__V_INT);
	assert_int_equal(v->int_, 42);
	loom_value_free(v);
	v = loom_fixed_value(&layout[3], "Y", 1, b, sizeof b);
	assert_true(v->bool_);
	loom_value_free(v);
	v = loom_fixed_value(&layout[4], cells[4].text, cells[4].len, b, sizeof b);
	assert_int_equal(v->v_case, LOOM__VALUE__V_TIME);
	assert_int_equal(v->time, 1580428800LL * 1000000LL);
	loom_value_free(v);
	assert_null(loom_fixed_value(&layout[2], "4 2", 3, b, sizeof b));
	assert_string_equal(b, "'4 2' is not an integer");
	assert_null(loom_fixed_value(&layout[3], "maybe", 5, b, sizeof b));
	assert_null(loom_fixed_value(&layout[4], "2020-13-45", 10, b, sizeof b));
	assert_null(loom_fixed_value(&layout[2], "99999999999999999999", 20, b, sizeof b));
	/* short lines are padded; long lines are errors at the first extra character */
	assert_int_equal(loom_fixed_split(layout, 5, "000002", 6, cells, &col, &why), 0);
	assert_int_equal(cells[1].len, 0);
	assert_int_equal(loom_fixed_split(layout, 5, "000001Zoé          42Y2020-01-31!", strlen(line) + 1, cells, &col, &why),
	    -1);
	assert_int_equal(col, 33);
	assert_int_equal(loom_fixed_split(layout, 5, "00\xff", 3, cells, &col, &why), -1);
	assert_int_equal(col, 3);
}

static void test_fixed_write(void **state)
{
	(void)state;
	char *err = NULL;
	assert_int_equal(loom_fixed_layout(layout, 5, &err), 0);
	loom_buf_t out = LOOM_BUF_INIT;
	assert_int_equal(loom_fixed_put(&out, &layout[1], "Zoé", strlen("Zoé")), 0);
	assert_int_equal(loom_fixed_put(&out, &layout[2], "42", 2), 0);
	assert_int_equal(loom_fixed_put(&out, &layout[2], "123456", 6), -1);
	assert_string_equal(loom_buf_cstr(&out), "Zoé          42");
	loom_buf_reset(&out);
	Loom__Value t = LOOM__VALUE__INIT;
	t.v_case = LOOM__VALUE__V_TIME;
	t.time = 1580428800LL * 1000000LL;
	loom_fixed_value_text(&out, &layout[4], &t);
	assert_string_equal(loom_buf_cstr(&out), "2020-01-31");
	loom_buf_reset(&out);
	Loom__Value bv = LOOM__VALUE__INIT;
	bv.v_case = LOOM__VALUE__V_BOOL;
	bv.bool_ = false;
	loom_fixed_value_text(&out, &layout[3], &bv);
	assert_string_equal(loom_buf_cstr(&out), "N");
	loom_buf_release(&out);
}

/* Random mutations: every input reads to its end or to clean errors. */
static void test_avp_mutations(void **state)
{
	(void)state;
	const char *seed_text = "# x\nid: 1\nmail: a@x\nmail: b@x\nphoto:: AAEC\n\nid:2\n\n\nid: 3\nname: Zo\xc3\xa9\n";
	size_t len = strlen(seed_text);
	char *buf = loom_malloc(len + 1);
	unsigned seed = 7;
	for (int round = 0; round < 20000; round++) {
		memcpy(buf, seed_text, len);
		size_t n = len;
		for (int e = 0; e < 3; e++) {
			size_t at = (size_t)rand_r(&seed) % n;
			if (rand_r(&seed) % 2)
				buf[at] = (char)(rand_r(&seed) % 256);
			else
				buf[at] = ":\n \r#="[rand_r(&seed) % 6];
		}
		char *d = loom_strndup(buf, n);
		loom_avp_reader_t *r = loom_avp_reader_new_mem(buf, n, ':', 32);
		loom_avp_record_t rec;
		loom_avp_error_t err;
		int rc, guard = 0;
		while ((rc = loom_avp_read(r, &rec, &err)) != 0 && guard++ < 1000)
			if (rc < 0)
				assert_true(err.line > 0 && err.message[0]);
		loom_avp_reader_destroy(&r);
		free(d);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_avp_cases),
		cmocka_unit_test(test_avp_fd_and_roundtrip),
		cmocka_unit_test(test_fixed_layout),
		cmocka_unit_test(test_fixed_split_and_values),
		cmocka_unit_test(test_fixed_write),
		cmocka_unit_test(test_avp_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
