/* test_csv.c - streaming CSV reader and writer (lib/loom_csv.c).
 *
 * Golden files: every case of the shared CSV test data (the RFC 4180
 * examples, csv-spectrum, sineemore csv-test-data, a few commons-csv
 * inputs) is read from memory and from a file descriptor and compared with
 * its JSON expectation, decoded by the small JSON reader below; the bad-*
 * files must fail at the stated line and column.
 *
 * Tables then cover reader rules, error recovery (good rows around a bad
 * one), max_record, the BOM, UTF-8 validation, options and the writer's
 * quoting; loops cover buffer boundaries (a tricky record at every offset
 * against the 64 KiB read size, a big generated file, a pipe fed in small
 * pieces) and random writer -> reader round trips.
 *
 * Expected records are written as JSON arrays of arrays of strings; the
 * test JSON reader also takes 'single-quoted' strings and \xNN (one raw
 * byte) so that tables stay readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_csv.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define CSV_DIR LOOM_TESTDATA_DIR "/csv"

static char tmpdir[64]; /* per-run scratch directory */

/* ---- small helpers ---------------------------------------------------- */

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open '%s': %s", path, strerror(errno));
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		loom_buf_add(&b, chunk, n);
	fclose(f);
	*ret_len = b.len;
	return loom_buf_steal(&b);
}

static void spill(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* ---- a tiny JSON reader: arrays of arrays of strings, arrays of objects
 * of strings, or one object. Renders records canonically: ------------- */

typedef struct jp {
	const char *s;   /* next character */
	const char *end; /* end of input */
} jp_t;

static void jws(jp_t *j)
{
	while (j->s < j->end && (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t'))
		j->s++;
}

static bool jeat(jp_t *j, char c)
{
	jws(j);
	if (j->s < j->end && *j->s == c) {
		j->s++;
		return true;
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool jhex(jp_t *j, int digits, unsigned *ret)
{
	unsigned v = 0;
	for (int k = 0; k < digits; k++) {
		if (j->s >= j->end || hexval(*j->s) < 0)
			return false;
		v = v * 16 + (unsigned)hexval(*j->s++);
	}
	*ret = v;
	return true;
}

static void put_utf8(loom_buf_t *out, unsigned cp)
{
	if (cp < 0x80) {
		loom_buf_addc(out, (char)cp);
	} else if (cp < 0x800) {
		loom_buf_addc(out, (char)(0xc0 | cp >> 6));
		loom_buf_addc(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		loom_buf_addc(out, (char)(0xe0 | cp >> 12));
		loom_buf_addc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		loom_buf_addc(out, (char)(0xf0 | cp >> 18));
		loom_buf_addc(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
		loom_buf_addc(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A "string" or 'string', decoded into out. */
static bool jstr(jp_t *j, loom_buf_t *out)
{
	jws(j);
	if (j->s >= j->end || (*j->s != '"' && *j->s != '\''))
		return false;
	char q = *j->s++;
	while (j->s < j->end && *j->s != q) {
		char c = *j->s++;
		if (c != '\\') {
			loom_buf_addc(out, c);
			continue;
		}
		if (j->s >= j->end)
			return false;
		c = *j->s++;
		unsigned cp, lo;
		switch (c) {
		case 'n': loom_buf_addc(out, '\n'); break;
		case 'r': loom_buf_addc(out, '\r'); break;
		case 't': loom_buf_addc(out, '\t'); break;
		case 'b': loom_buf_addc(out, '\b'); break;
		case 'f': loom_buf_addc(out, '\f'); break;
		case 'x': /* test extension: one raw byte */
			if (!jhex(j, 2, &cp))
				return false;
			loom_buf_addc(out, (char)cp);
			break;
		case 'u':
			if (!jhex(j, 4, &cp))
				return false;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->end - j->s < 6 || j->s[0] != '\\' || j->s[1] != 'u')
					return false;
				j->s += 2;
				if (!jhex(j, 4, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return false;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(out, cp);
			break;
		default: /* \" \' \\ \/ */
			loom_buf_addc(out, c);
			break;
		}
	}
	if (j->s >= j->end)
		return false;
	j->s++;
	return true;
}

/* Renders one field the way render_record does. */
static void render_field(loom_buf_t *out, const char *s, size_t n)
{
	loom_buf_add_json_str(out, s, n);
}

/* One [..] or {..} record; keys go to *keys (as a JSON array) for objects. */
static bool jrecord(jp_t *j, loom_buf_t *rows, loom_buf_t *keys)
{
	loom_buf_t s = LOOM_BUF_INIT;
	bool object, ok = false;
	size_t k = 0;

	if (jeat(j, '['))
		object = false;
	else if (jeat(j, '{'))
		object = true;
	else
		return false;
	if (keys != NULL && object)
		loom_buf_reset(keys), loom_buf_addc(keys, '[');
	loom_buf_addc(rows, '[');
	if (jeat(j, object ? '}' : ']')) {
		ok = true;
		goto out;
	}
	for (;; k++) {
		if (object) {
			loom_buf_reset(&s);
			if (!jstr(j, &s) || !jeat(j, ':'))
				goto out;
			if (keys != NULL) {
				if (k > 0)
					loom_buf_addc(keys, ',');
				render_field(keys, s.data ? s.data : "", s.len);
			}
		}
		loom_buf_reset(&s);
		if (!jstr(j, &s))
			goto out;
		if (k > 0)
			loom_buf_addc(rows, ',');
		render_field(rows, s.data ? s.data : "", s.len);
		if (jeat(j, ','))
			continue;
		ok = jeat(j, object ? '}' : ']');
		goto out;
	}
out:
	loom_buf_addc(rows, ']');
	if (keys != NULL && object)
		loom_buf_addc(keys, ']');
	loom_buf_release(&s);
	return ok;
}

/* Decodes a JSON document of records into the canonical rendering: rows as
 * [[..],[..]], the last object's keys as [..]. */
static void json_expect(const char *label, const char *text, size_t len, loom_buf_t *rows,
    loom_buf_t *keys)
{
	jp_t j = { text, text + len };
	bool ok = true;

	loom_buf_addc(rows, '[');
	jws(&j);
	if (j.s < j.end && *j.s == '{') {
		ok = jrecord(&j, rows, keys);
	} else if (jeat(&j, '[')) {
		if (!jeat(&j, ']')) {
			for (size_t k = 0;; k++) {
				if (k > 0)
					loom_buf_addc(rows, ',');
				if (!jrecord(&j, rows, keys)) {
					ok = false;
					break;
				}
				if (jeat(&j, ','))
					continue;
				ok = jeat(&j, ']');
				break;
			}
		}
	} else {
		ok = false;
	}
	jws(&j);
	if (!ok || j.s != j.end)
		fail_msg("%s: cannot parse expected JSON near offset %zu", label, (size_t)(j.s - text));
	loom_buf_addc(rows, ']');
}

/* ---- running a reader ------------------------------------------------- */

typedef struct result {
	loom_buf_t rows;         /* records as a JSON array of arrays */
	loom_buf_t cols;         /* header names as a JSON array */
	loom_buf_t lines;        /* record lines, "1,2,5" */
	size_t nrec;             /* records read */
	size_t nerr;             /* errors */
	loom_csv_error_t err[8]; /* the first errors */
} result_t;

static void result_init(result_t *res)
{
	memset(res, 0, sizeof *res);
}

static void result_release(result_t *res)
{
	loom_buf_release(&res->rows);
	loom_buf_release(&res->cols);
	loom_buf_release(&res->lines);
}

/* Reads r to its end (or a fatal error) into res, checking the record
 * invariants on the way, and destroys it. */
static void drain(const char *label, loom_csv_reader_t *r, result_t *res)
{
	loom_csv_record_t rec;
	loom_csv_error_t err;
	const char *const *names;
	int rc = 0;

	loom_buf_addc(&res->rows, '[');
	for (size_t guard = 0; guard < 20000000; guard++) {
		memset(&rec, 0, sizeof rec);
		rc = loom_csv_read(r, &rec, &err);
		if (rc == 0)
			break;
		if (rc < 0) {
			if (res->nerr < N_ELEMS(res->err))
				res->err[res->nerr] = err;
			res->nerr++;
			if (err.fatal)
				break;
			continue;
		}
		if (rec.n == 0)
			fail_msg("%s: record with no fields", label);
		if (res->nrec > 0) {
			loom_buf_addc(&res->rows, ',');
			loom_buf_addc(&res->lines, ',');
		}
		loom_buf_printf(&res->lines, "%u", rec.line);
		loom_buf_addc(&res->rows, '[');
		for (size_t k = 0; k < rec.n; k++) {
			if (rec.v[k][rec.len[k]] != '\0' || strlen(rec.v[k]) != rec.len[k])
				fail_msg("%s: field %zu of record %zu is not NUL-terminated at its length",
				    label, k, res->nrec);
			if (k > 0)
				loom_buf_addc(&res->rows, ',');
			render_field(&res->rows, rec.v[k], rec.len[k]);
		}
		loom_buf_addc(&res->rows, ']');
		res->nrec++;
	}
	loom_buf_addc(&res->rows, ']');
	/* the end (or the fatal error) is sticky */
	if (rc == 0)
		assert_int_equal(loom_csv_read(r, &rec, &err), 0);
	else if (rc < 0)
		assert_int_equal(loom_csv_read(r, &rec, &err), -1);

	size_t n = loom_csv_columns(r, &names);
	loom_buf_addc(&res->cols, '[');
	for (size_t k = 0; k < n; k++) {
		if (k > 0)
			loom_buf_addc(&res->cols, ',');
		render_field(&res->cols, names[k], strlen(names[k]));
	}
	loom_buf_addc(&res->cols, ']');
	loom_csv_reader_destroy(&r);
	assert_null(r);
}

static void read_mem(const char *label, const char *data, size_t len, const loom_csv_opts_t *o,
    result_t *res)
{
	loom_csv_reader_t *r = NULL;
	if (loom_csv_reader_open_mem(data, len, label, o, &r) < 0)
		fail_msg("%s: loom_csv_reader_open_mem failed", label);
	drain(label, r, res);
}

static void read_path(const char *label, const char *path, const loom_csv_opts_t *o, result_t *res)
{
	loom_csv_reader_t *r = NULL;
	char *error = NULL;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("%s: cannot open '%s': %s", label, path, strerror(errno));
	if (loom_csv_reader_open_fd(fd, path, o, &r, &error) < 0)
		fail_msg("%s: %s", label, error);
	drain(label, r, res);
	close(fd);
}

/* Compares two results (memory vs fd, say). */
static void same_results(const char *label, const result_t *a, const result_t *b)
{
	if (strcmp(loom_buf_cstr(&a->rows), loom_buf_cstr(&b->rows)) != 0)
		fail_msg("%s: records differ:\n  %s\n  %s", label, loom_buf_cstr(&a->rows),
		    loom_buf_cstr(&b->rows));
	assert_string_equal(loom_buf_cstr(&a->cols), loom_buf_cstr(&b->cols));
	assert_string_equal(loom_buf_cstr(&a->lines), loom_buf_cstr(&b->lines));
	assert_int_equal(a->nerr, b->nerr);
	for (size_t k = 0; k < a->nerr && k < N_ELEMS(a->err); k++) {
		assert_int_equal(a->err[k].line, b->err[k].line);
		assert_int_equal(a->err[k].column, b->err[k].column);
		assert_string_equal(a->err[k].message, b->err[k].message);
	}
}

/* The wanted error (first one), if any. */
typedef struct want_err {
	unsigned line;           /* 0: no error wanted */
	unsigned column;         /* column wanted */
	const char *text;        /* substring of the message */
	bool fatal;              /* fatal flag wanted */
	unsigned record_line;    /* 0: not checked */
} want_err_t;

static void check_error(const char *label, const result_t *res, const want_err_t *w)
{
	if (w->line == 0) {
		if (res->nerr > 0)
			fail_msg("%s: unexpected error %u:%u: %s", label, res->err[0].line,
			    res->err[0].column, res->err[0].message);
		return;
	}
	if (res->nerr != 1)
		fail_msg("%s: %zu errors, wanted 1 (%u:%u %s)", label, res->nerr, w->line, w->column,
		    w->text);
	const loom_csv_error_t *e = &res->err[0];
	if (e->line != w->line || e->column != w->column || strstr(e->message, w->text) == NULL
	    || e->fatal != w->fatal || (w->record_line && e->record_line != w->record_line))
		fail_msg("%s: error %u:%u (record line %u, fatal %d) '%s'; wanted %u:%u (fatal %d) '%s'",
		    label, e->line, e->column, e->record_line, e->fatal, e->message, w->line,
		    w->column, w->fatal, w->text);
	/* messages follow the house style: no capital (acronyms such as CR
	 * aside), no full stop */
	if (e->message[0] >= 'A' && e->message[0] <= 'Z' && e->message[1] >= 'a'
	    && e->message[1] <= 'z')
		fail_msg("%s: message starts with a capital: %s", label, e->message);
	size_t n = strlen(e->message);
	if (n == 0 || e->message[n - 1] == '.')
		fail_msg("%s: message empty or ends with a full stop: %s", label, e->message);
}

static void check_rows(const char *label, const result_t *res, const char *want_json)
{
	loom_buf_t want = LOOM_BUF_INIT;
	json_expect(label, want_json, strlen(want_json), &want, NULL);
	if (strcmp(loom_buf_cstr(&want), loom_buf_cstr(&res->rows)) != 0)
		fail_msg("%s: records\n  got  %s\n  want %s", label, loom_buf_cstr(&res->rows),
		    loom_buf_cstr(&want));
	loom_buf_release(&want);
}

static void check_cols(const char *label, const result_t *res, const char *want_json)
{
	loom_buf_t want = LOOM_BUF_INIT;
	char *text = loom_sprintf("[[%s]]", want_json);
	json_expect(label, text, strlen(text), &want, NULL);
	/* json_expect wraps records in [...]: strip the outer brackets */
	want.data[want.len - 1] = '\0';
	if (strcmp(want.data + 1, loom_buf_cstr(&res->cols)) != 0)
		fail_msg("%s: columns\n  got  %s\n  want %s", label, loom_buf_cstr(&res->cols),
		    want.data + 1);
	free(text);
	loom_buf_release(&want);
}

/* ---- golden files ----------------------------------------------------- */

typedef struct file_case {
	const char *label;       /* case name */
	const char *csv;         /* input, under testdata/csv */
	const char *json;        /* expected records (arrays, or objects keyed by the header), or NULL */
	bool header;             /* read with a header */
	bool foo_bar_baz;        /* the header must be foo,bar,baz (sineemore header-* files) */
	size_t records;          /* records wanted when json is NULL */
	want_err_t err;          /* error wanted */
} file_case_t;

#define RFC(n) { "rfc4180 example" #n, "rfc4180/example" #n ".csv", "rfc4180/example" #n ".json", \
	false, false, 0, { 0 } }
#define SPECTRUM(n) { "csv-spectrum " #n, "csv-spectrum/csvs/" #n ".csv", \
	"csv-spectrum/json/" #n ".json", true, false, 0, { 0 } }
#define SINE(n) { "sineemore " #n, "sineemore-csv-test-data/csv/" #n ".csv", \
	"sineemore-csv-test-data/json/" #n ".json", false, false, 0, { 0 } }
#define SINE_H(n) { "sineemore " #n, "sineemore-csv-test-data/csv/" #n ".csv", \
	"sineemore-csv-test-data/json/" #n ".json", true, true, 0, { 0 } }
#define SINE_BAD(n, hdr, recs, ...) { "sineemore " #n, "sineemore-csv-test-data/csv/" #n ".csv", \
	NULL, hdr, hdr, recs, __VA_ARGS__ }

static const file_case_t file_cases[] = {
	/* RFC 4180 section 2: the header is an ordinary record here (EXPECTED.md) */
	RFC(1), RFC(2), RFC(3), RFC(4), RFC(5), RFC(6), RFC(7),

	/* csv-spectrum: JSON objects keyed by the header row */
	SPECTRUM(comma_in_quotes), SPECTRUM(empty), SPECTRUM(empty_crlf),
	SPECTRUM(escaped_quotes), SPECTRUM(json), SPECTRUM(newlines), SPECTRUM(newlines_crlf),
	SPECTRUM(quotes_and_newlines), SPECTRUM(simple), SPECTRUM(simple_crlf), SPECTRUM(utf8),
	/* location_coordinates has a bare '"' (seconds of arc) in an unquoted
	 * field: only a lenient reader takes it. Loom's reader is strict and
	 * rejects the record, naming the quote's position (column in characters:
	 * the two U+FFFD before it count one each). */
	{ "csv-spectrum location_coordinates (strict: rejected)",
	  "csv-spectrum/csvs/location_coordinates.csv", NULL, true, false, 0,
	  { 2, 22, "quote '\"' inside an unquoted field; expected the whole field in quotes", false, 2 } },

	/* sineemore: header-* with the header foo,bar,baz, others without */
	SINE(all-empty), SINE(empty-field), SINE(empty-one-column), SINE(leading-space),
	SINE(one-column), SINE(quotes-empty), SINE(quotes-with-comma),
	SINE(quotes-with-escaped-quote), SINE(quotes-with-newline), SINE(quotes-with-space),
	SINE(simple-crlf), SINE(simple-lf), SINE(trailing-newline),
	SINE(trailing-newline-one-field), SINE(trailing-space), SINE(utf8),
	SINE_H(header-no-rows), SINE_H(header-simple),
	SINE_BAD(bad-header-less-fields, true, 0,
	    { 2, 4, "record has 2 fields, the header has 3", false, 2 }),
	SINE_BAD(bad-header-more-fields, true, 0,
	    { 2, 7, "record has 4 fields, the header has 3", false, 2 }),
	SINE_BAD(bad-header-no-header, true, 0,
	    { 1, 1, "no header, the input is empty; expected 'foo,bar,baz'", true, 1 }),
	SINE_BAD(bad-header-wrong-header, true, 0,
	    { 1, 1, "header column 1 is 'qux', expected 'foo'", true, 1 }),
	SINE_BAD(bad-missing-quote, false, 1,
	    { 2, 3, "unterminated quoted field starting at line 2 column 3; expected a closing '\"'",
	      false, 2 }),
	SINE_BAD(bad-quotes-with-unescaped-quote, false, 1,
	    { 2, 19, "' ' after the closing quote of the field starting at line 2 column 3; "
	      "expected ',' or a line break", false, 2 }),
	SINE_BAD(bad-unescaped-quote, false, 1,
	    { 2, 8, "quote '\"' inside an unquoted field", false, 2 }),

	/* commons-csv regression inputs (expectations live in Java: counts only) */
	{ "commons-csv CSV-196 emoji", "commons-csv/CSV-196/emoji.csv", NULL, true, false, 4, { 0 } },
	{ "commons-csv CSV-196 japanese", "commons-csv/CSV-196/japanese.csv", NULL, true, false, 3,
	  { 0 } },
	{ "commons-csv CSV-254", "commons-csv/CSV-254/csv-254.csv", NULL, false, false, 3, { 0 } },
};

static void test_golden_files(void **state)
{
	(void)state;
	static const char *const foo[] = { "foo", "bar", "baz" };

	for (size_t c = 0; c < N_ELEMS(file_cases); c++) {
		const file_case_t *fc = &file_cases[c];
		char path[512];
		loom_csv_opts_t o;
		result_t mem, fd;
		size_t len;

		loom_csv_opts_default(&o);
		o.header = fc->header;
		if (fc->foo_bar_baz) {
			o.expect_columns = foo;
			o.n_expect_columns = 3;
		}
		snprintf(path, sizeof path, "%s/%s", CSV_DIR, fc->csv);
		char *data = slurp(path, &len);
		result_init(&mem);
		result_init(&fd);
		read_mem(fc->label, data, len, &o, &mem);
		read_path(fc->label, path, &o, &fd);
		same_results(fc->label, &mem, &fd);
		check_error(fc->label, &mem, &fc->err);

		if (fc->json != NULL) {
			loom_buf_t rows = LOOM_BUF_INIT, keys = LOOM_BUF_INIT;
			size_t jlen;
			snprintf(path, sizeof path, "%s/%s", CSV_DIR, fc->json);
			char *json = slurp(path, &jlen);
			json_expect(fc->label, json, jlen, &rows, &keys);
			if (strcmp(loom_buf_cstr(&rows), loom_buf_cstr(&mem.rows)) != 0)
				fail_msg("%s: records\n  got  %s\n  want %s", fc->label,
				    loom_buf_cstr(&mem.rows), loom_buf_cstr(&rows));
			/* objects: their keys are the header's names, in order */
			if (keys.len > 0)
				assert_string_equal(loom_buf_cstr(&keys), loom_buf_cstr(&mem.cols));
			free(json);
			loom_buf_release(&rows);
			loom_buf_release(&keys);
		} else {
			if (mem.nrec != fc->records)
				fail_msg("%s: %zu records, wanted %zu", fc->label, mem.nrec, fc->records);
		}
		if (fc->foo_bar_baz && !fc->err.fatal)
			check_cols(fc->label, &mem, "'foo','bar','baz'");
		free(data);
		result_release(&mem);
		result_release(&fd);
	}
}

/* RFC 4180 example 3 read as a header file: three equal names are allowed. */
static void test_rfc_example3_header(void **state)
{
	(void)state;
	result_t res;
	size_t len;
	char *data = slurp(CSV_DIR "/rfc4180/example3.csv", &len);
	result_init(&res);
	read_mem("example3 with header", data, len, NULL, &res);
	check_rows("example3 with header", &res, "[['aaa','bbb','ccc'],['zzz','yyy','xxx']]");
	check_cols("example3 with header", &res, "'field_name','field_name','field_name'");
	assert_string_equal(loom_buf_cstr(&res.lines), "2,3");
	free(data);
	result_release(&res);
}

/* ---- inline cases ----------------------------------------------------- */

typedef struct inline_case {
	const char *label;       /* what is tested */
	const char *csv;         /* input */
	size_t len;              /* its length; 0: strlen (set it for NUL bytes) */
	bool header;             /* read with a header */
	char delimiter;          /* 0: ',' */
	char quote;              /* 0: '"' */
	size_t max_record;       /* 0: default */
	bool keep_bom;           /* trim_bom off */
	bool no_utf8;            /* validate_utf8 off */
	const char *rows;        /* records wanted, JSON */
	const char *lines;       /* record lines wanted, "1,2", or NULL */
	const char *cols;        /* header wanted, JSON list without brackets, or NULL */
	want_err_t err;          /* error wanted */
} inline_case_t;

static void run_inline(const inline_case_t *cases, size_t n)
{
	for (size_t c = 0; c < n; c++) {
		const inline_case_t *ic = &cases[c];
		loom_csv_opts_t o;
		result_t mem, fd;
		size_t len = ic->len ? ic->len : strlen(ic->csv);
		char path[128];

		loom_csv_opts_default(&o);
		o.header = ic->header;
		if (ic->delimiter)
			o.delimiter = ic->delimiter;
		if (ic->quote)
			o.quote = ic->quote;
		if (ic->max_record)
			o.max_record = ic->max_record;
		o.trim_bom = !ic->keep_bom;
		o.validate_utf8 = !ic->no_utf8;

		result_init(&mem);
		result_init(&fd);
		read_mem(ic->label, ic->csv, len, &o, &mem);
		snprintf(path, sizeof path, "%s/inline.csv", tmpdir);
		spill(path, ic->csv, len);
		read_path(ic->label, path, &o, &fd);
		unlink(path);
		same_results(ic->label, &mem, &fd);

		check_rows(ic->label, &mem, ic->rows);
		check_error(ic->label, &mem, &ic->err);
		if (ic->lines != NULL && strcmp(ic->lines, loom_buf_cstr(&mem.lines)) != 0)
			fail_msg("%s: record lines %s, wanted %s", ic->label, loom_buf_cstr(&mem.lines),
			    ic->lines);
		if (ic->cols != NULL)
			check_cols(ic->label, &mem, ic->cols);
		result_release(&mem);
		result_release(&fd);
	}
}

static const inline_case_t rule_cases[] = {
	{ .label = "empty input", .csv = "", .rows = "[]" },
	{ .label = "empty input with header", .csv = "", .header = true, .rows = "[]", .cols = "" },
	{ .label = "CRLF, LF and no final line break", .csv = "a,b\r\nc,d\ne,f",
	  .rows = "[['a','b'],['c','d'],['e','f']]", .lines = "1,2,3" },
	{ .label = "a lone line break is one empty field", .csv = "\n", .rows = "[['']]" },
	{ .label = "empty line without header is a record", .csv = "a\n\r\nb\n",
	  .rows = "[['a'],[''],['b']]", .lines = "1,2,3" },
	{ .label = "empty lines skipped with header", .csv = "\n\na,b\n\n1,2\r\n\r\n3,4\n\n",
	  .header = true, .rows = "[['1','2'],['3','4']]", .lines = "5,7", .cols = "'a','b'" },
	{ .label = "quoted empty field is not an empty line", .csv = "a\n\"\"\n\nb\n", .header = true,
	  .rows = "[[''],['b']]", .lines = "2,4", .cols = "'a'" },
	{ .label = "trailing delimiter", .csv = "a,b,\n", .rows = "[['a','b','']]" },
	{ .label = "delimiter at end of input", .csv = "a,", .rows = "[['a','']]" },
	{ .label = "only delimiters", .csv = ",,\n", .rows = "[['','','']]" },
	{ .label = "CRLF inside quotes kept", .csv = "\"x\r\ny\",z\r\n", .rows = "[['x\\r\\ny','z']]" },
	{ .label = "bare CR inside quotes is data", .csv = "\"x\ry\"\n", .rows = "[['x\\ry']]" },
	{ .label = "line numbers after multi-line fields", .csv = "a\n\"1\n2\n3\"\nb\n",
	  .rows = "[['a'],['1\\n2\\n3'],['b']]", .lines = "1,2,5" },
	{ .label = "spaces are data", .csv = " a , b \n", .rows = "[[' a ',' b ']]" },
	{ .label = "doubled quotes at both ends", .csv = "\"\"\"x\"\"\"\n", .rows = "[['\"x\"']]" },
	{ .label = "quote ends the input", .csv = "a,\"b\"", .rows = "[['a','b']]" },
	{ .label = "quoted field then CRLF at end", .csv = "\"b\"\r\n", .rows = "[['b']]" },
	{ .label = "other quote character", .csv = "'a,b','it''s',\"x\"\n", .quote = '\'',
	  .rows = "[['a,b','it\\'s','\"x\"']]" },
	{ .label = "TSV", .csv = "name\tcity\nAnn\t\"Paris\tFR\"\nBob\tx,y\n", .header = true,
	  .delimiter = '\t', .rows = "[['Ann','Paris\\tFR'],['Bob','x,y']]", .cols = "'name','city'" },
	{ .label = "semicolon", .csv = "a;b\n\"1;2\";3,4\n", .delimiter = ';',
	  .rows = "[['a','b'],['1;2','3,4']]" },
	{ .label = "duplicate header names", .csv = "x,x\n1,2\n", .header = true,
	  .rows = "[['1','2']]", .cols = "'x','x'" },
	{ .label = "quoted header names", .csv = "\"first name\",\"a\"\"b\"\n1,2\n", .header = true,
	  .rows = "[['1','2']]", .cols = "'first name','a\"b'" },
	{ .label = "ragged records without header", .csv = "a,b\nc\n", .rows = "[['a','b'],['c']]" },
	{ .label = "UTF-8 of every length", .csv = "\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x8e\n",
	  .rows = "[['\\u00e9','\\u20ac','\\ud83d\\ude0e']]" },
	{ .label = "PostgreSQL COPY CSV (commons-csv CSV-290)",
	  .csv = "1,abc,\"test line 1\ntest line 2\",,\"\"\n"
	         "2,xyz,\"\\b:\b \\t:\t \\n:\n \\r:\r\",a,b\n"
	         "3,a,\"b,c,d\",\"\"\"quoted\"\"\",e\n",
	  .rows = "[['1','abc','test line 1\\ntest line 2','',''],"
	          "['2','xyz','\\\\b:\\b \\\\t:\\t \\\\n:\\n \\\\r:\\r','a','b'],"
	          "['3','a','b,c,d','\"quoted\"','e']]", .lines = "1,3,5" },

	{ .label = "bare CR is an error", .csv = "a\rb\nc\n", .rows = "[['c']]",
	  .err = { 1, 2, "CR not followed by LF; expected CRLF or LF as the line break", false, 1 } },
	{ .label = "bare CR at end of input", .csv = "x\na\r", .rows = "[['x']]",
	  .err = { 2, 2, "CR not followed by LF", false, 2 } },
	{ .label = "CR after a closing quote", .csv = "\"a\"\rb\nc\n", .rows = "[['c']]",
	  .err = { 1, 4, "CR after the closing quote of the field starting at line 1 column 1; "
	      "expected ',' or a line break", false, 1 } },
	{ .label = "tab after a closing quote, TSV", .csv = "\"a\" \tb\n", .delimiter = '\t',
	  .rows = "[]", .err = { 1, 4, "' ' after the closing quote of the field starting at line 1 "
	      "column 1; expected '\\t' or a line break", false, 1 } },
	{ .label = "space before an opening quote", .csv = "a, \"b\"\nc\n", .rows = "[['c']]",
	  .err = { 1, 4, "quote '\"' inside an unquoted field", false, 1 } },
	{ .label = "NUL byte in a field", .csv = "a\0b,c\nd\n", .len = 8, .rows = "[['d']]",
	  .err = { 1, 2, "NUL byte in a field; expected text", false, 1 } },
	{ .label = "NUL byte in a quoted field", .csv = "\"a\0b\"\nd\n", .len = 8, .rows = "[['d']]",
	  .err = { 1, 3, "NUL byte in a field", false, 1 } },
	{ .label = "unterminated quoted field at the end", .csv = "a\n\"b\nc\n", .rows = "[['a']]",
	  .err = { 2, 1, "unterminated quoted field starting at line 2 column 1; expected a "
	      "closing '\"' before the end of input", false, 2 } },
	{ .label = "unterminated after a doubled quote", .csv = "\"b\"\"", .rows = "[]",
	  .err = { 1, 1, "unterminated quoted field starting at line 1 column 1", false, 1 } },
	{ .label = "fewer fields, CRLF", .csv = "a,b\r\n1\r\n2,3\r\n", .header = true,
	  .rows = "[['2','3']]", .lines = "3",
	  .err = { 2, 2, "record has 1 field, the header has 2", false, 2 } },
	{ .label = "more fields on a later line of the record", .csv = "a,b\n1,\"x\ny\",z\n2,3",
	  .header = true, .rows = "[['2','3']]", .lines = "4",
	  .err = { 3, 4, "record has 3 fields, the header has 2", false, 2 } },
	{ .label = "one-column header file: empty line skipped", .csv = "a\n\n1\n", .header = true,
	  .rows = "[['1']]", .lines = "3", .cols = "'a'" },
	{ .label = "bad header: unterminated", .csv = "a,\"b\n", .header = true, .rows = "[]",
	  .cols = "", .err = { 1, 3, "bad header: unterminated quoted field", true, 1 } },
	{ .label = "bad header: stray quote, nothing else read", .csv = "a,b\"c\n1,2\n",
	  .header = true, .rows = "[]", .cols = "",
	  .err = { 1, 4, "bad header: quote '\"' inside an unquoted field", true, 1 } },
};

static void test_reader_rules(void **state)
{
	(void)state;
	run_inline(rule_cases, N_ELEMS(rule_cases));
}

/* ---- error recovery: 3 good rows, 1 bad, 2 good ------------------------ */

typedef struct recovery_case {
	const char *label;       /* kind of damage */
	const char *bad;         /* the bad record, without its line break */
	size_t bad_len;          /* its length; 0: strlen */
	want_err_t err;          /* error wanted */
} recovery_case_t;

static const recovery_case_t recovery_cases[] = {
	{ "quote in an unquoted field", "1,x\"y,3", 0, { 5, 4, "inside an unquoted field", false, 5 } },
	{ "text after a closing quote", "1,\"x\"y,3", 0,
	  { 5, 6, "'y' after the closing quote", false, 5 } },
	{ "text after a closing quote, then a multi-line field", "1,\"x\"y,\"multi\nline\",3", 0,
	  { 5, 6, "'y' after the closing quote", false, 5 } },
	{ "bare CR", "1,x\ry,3", 0, { 5, 4, "CR not followed by LF", false, 5 } },
	{ "one field too many", "1,2,3,4", 0, { 5, 7, "record has 4 fields, the header has 3", false, 5 } },
	{ "one field too few", "1,2", 0, { 5, 4, "record has 2 fields, the header has 3", false, 5 } },
	{ "too many, found on the record's second line", "1,2,\"3\n4\",5", 0,
	  { 6, 4, "record has 4 fields, the header has 3", false, 5 } },
	{ "invalid UTF-8", "1,\xff,3", 0, { 5, 3, "invalid UTF-8: byte 0xff cannot start a character",
	  false, 5 } },
	{ "NUL byte", "1,a\0b,3", 7, { 5, 4, "NUL byte", false, 5 } },
	{ "two errors in one record: the first is reported", "1,x\"y,\xff,4", 0,
	  { 5, 4, "inside an unquoted field", false, 5 } },
};

static void test_error_recovery(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_ELEMS(recovery_cases); c++) {
		const recovery_case_t *rc = &recovery_cases[c];
		loom_buf_t in = LOOM_BUF_INIT;
		loom_buf_t lines = LOOM_BUF_INIT;
		result_t res;
		size_t blen = rc->bad_len ? rc->bad_len : strlen(rc->bad);
		unsigned extra = 0;

		for (size_t k = 0; k < blen; k++)
			extra += rc->bad[k] == '\n';
		loom_buf_adds(&in, "a,b,c\n1,2,3\n4,5,6\n7,8,9\n");
		loom_buf_add(&in, rc->bad, blen);
		loom_buf_adds(&in, "\n10,11,12\n13,14,15\n");
		loom_buf_printf(&lines, "2,3,4,%u,%u", 6 + extra, 7 + extra);

		result_init(&res);
		read_mem(rc->label, in.data, in.len, NULL, &res);
		check_error(rc->label, &res, &rc->err);
		if (res.nrec != 5)
			fail_msg("%s: %zu records, wanted 5", rc->label, res.nrec);
		check_rows(rc->label, &res,
		    "[['1','2','3'],['4','5','6'],['7','8','9'],['10','11','12'],['13','14','15']]");
		assert_string_equal(loom_buf_cstr(&res.lines), loom_buf_cstr(&lines));
		result_release(&res);
		loom_buf_release(&in);
		loom_buf_release(&lines);
	}
}

/* ---- max_record, BOM, UTF-8 ------------------------------------------- */

static const inline_case_t limit_cases[] = {
	{ .label = "exactly max_record, then one more", .csv = "1234567890\n12345678901\nx\n",
	  .max_record = 10, .rows = "[['1234567890'],['x']]", .lines = "1,3",
	  .err = { 2, 1, "record is longer than 10 bytes (max_record)", false, 2 } },
	{ .label = "max_record does not count CRLF", .csv = "12345678,0\r\nx\r\n", .max_record = 10,
	  .rows = "[['12345678','0'],['x']]" },
	{ .label = "far too long: skipped to the next line", .csv = "a\n"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "\nc\n", .max_record = 10, .rows = "[['a'],['c']]", .lines = "1,3",
	  .err = { 2, 1, "record is longer than 10 bytes (max_record); expected a line break", false, 2 } },
	{ .label = "runaway quote: skipped to the next line after the limit",
	  .csv = "x\n\"abcdefghijklmnop\nnext\n", .max_record = 10, .rows = "[['x'],['next']]",
	  .lines = "1,3", .err = { 2, 1, "record is longer than 10 bytes (max_record) inside a quoted "
	      "field opened at line 2 column 1; expected a closing quote", false, 2 } },
	{ .label = "too long at the end of input", .csv = "12345678901", .max_record = 10,
	  .rows = "[]", .err = { 1, 1, "longer than 10 bytes", false, 1 } },
	{ .label = "multi-line quoted record within the limit", .csv = "\"a\nb\",c\n", .max_record = 10,
	  .rows = "[['a\\nb','c']]" },
	{ .label = "one byte records", .csv = "a\nb\n\n", .max_record = 1, .rows = "[['a'],['b'],['']]" },
};

static void test_max_record(void **state)
{
	(void)state;
	run_inline(limit_cases, N_ELEMS(limit_cases));
}

static const inline_case_t bom_cases[] = {
	{ .label = "BOM skipped", .csv = "\xef\xbb\xbf" "a,b\n1,2\n", .header = true,
	  .rows = "[['1','2']]", .cols = "'a','b'" },
	{ .label = "BOM kept when asked", .csv = "\xef\xbb\xbf" "a,b\n1,2\n", .header = true,
	  .keep_bom = true, .rows = "[['1','2']]", .cols = "'\\ufeffa','b'" },
	{ .label = "BOM only", .csv = "\xef\xbb\xbf", .header = true, .rows = "[]", .cols = "" },
	{ .label = "BOM does not count as a column", .csv = "\xef\xbb\xbf" "a\"b\n",
	  .rows = "[]", .err = { 1, 2, "inside an unquoted field", false, 1 } },
	{ .label = "BOM later in the file is data", .csv = "a\n\xef\xbb\xbf" "b\n",
	  .rows = "[['a'],['\\ufeffb']]" },
	{ .label = "half a BOM is data", .csv = "\xef\xbb", .no_utf8 = true, .rows = "[['\\xef\\xbb']]" },
};

static void test_bom(void **state)
{
	(void)state;
	run_inline(bom_cases, N_ELEMS(bom_cases));
}

static const inline_case_t utf8_cases[] = {
	{ .label = "byte that cannot start a character", .csv = "a,b\n1,\xff\n",
	  .rows = "[['a','b']]", .err = { 2, 3, "invalid UTF-8: byte 0xff cannot start a character; "
	      "expected ASCII or a lead byte 0xc2-0xf4", false, 2 } },
	{ .label = "missing continuation byte; column counts characters", .csv = "a,b\nx\xc3\xa9,\xc3(\n",
	  .rows = "[['a','b']]", .err = { 2, 4, "invalid UTF-8: byte 2 of the character that starts "
	      "with 0xc3 is 0x28, expected 0x80-0xbf", false, 2 } },
	{ .label = "overlong 2-byte form", .csv = "\xc0\xaf\n", .rows = "[]",
	  .err = { 1, 1, "byte 0xc0 cannot start a character", false, 1 } },
	{ .label = "overlong 3-byte form", .csv = "\xe0\x80\x80\n", .rows = "[]",
	  .err = { 1, 1, "is 0x80, expected 0xa0-0xbf", false, 1 } },
	{ .label = "UTF-16 surrogate", .csv = "\xed\xa0\x80\n", .rows = "[]",
	  .err = { 1, 1, "is 0xa0, expected 0x80-0x9f", false, 1 } },
	{ .label = "past U+10FFFF", .csv = "\xf4\x90\x80\x80\n", .rows = "[]",
	  .err = { 1, 1, "is 0x90, expected 0x80-0x8f", false, 1 } },
	{ .label = "lead byte 0xf5", .csv = "\xf5\x80\x80\x80\n", .rows = "[]",
	  .err = { 1, 1, "byte 0xf5 cannot start", false, 1 } },
	{ .label = "cut at the end of input", .csv = "a\n\xe2\x82", .rows = "[['a']]",
	  .err = { 2, 1, "the input ends inside the character that starts with byte 0xe2", false, 2 } },
	{ .label = "in a multi-line quoted field", .csv = "a\n\"x\ny\xc3\xa9\xff\"\nb\n",
	  .rows = "[['a'],['b']]", .lines = "1,4", .err = { 3, 3, "byte 0xff cannot start", false, 2 } },
	{ .label = "after 4-byte characters", .csv = "\xf0\x9f\x98\x8e\xf0\x9f\x98\x8e,\"\xff\"\n",
	  .rows = "[]", .err = { 1, 5, "byte 0xff cannot start", false, 1 } },
	{ .label = "validation off", .csv = "\xff,a\n", .no_utf8 = true, .rows = "[['\\xff','a']]" },
	{ .label = "validation off still counts characters", .csv = "\xc3\xa9\"\n", .no_utf8 = true,
	  .rows = "[]", .err = { 1, 2, "inside an unquoted field", false, 1 } },
};

static void test_utf8(void **state)
{
	(void)state;
	run_inline(utf8_cases, N_ELEMS(utf8_cases));
}

/* ---- buffer boundaries ------------------------------------------------ */

/* A tricky record at every offset around the first 64 KiB read: each of
 * its bytes (CRLF, doubled quote, multi-byte characters, a bad UTF-8
 * sequence) meets the end of the buffer once, from memory and from a file. */
static void test_chunk_boundaries(void **state)
{
	(void)state;
	static const char tricky[] =
	    "\"a\"\"b\r\nc\",\xc3\xa9\xf0\x9f\x98\x8e,\"\",x\r\n"
	    "bad,\xe2\x82(,y\r\n"
	    "last";
	const char *want_tail = ",['a\"b\\r\\nc','\\u00e9\\ud83d\\ude0e','','x'],['last']]";
	char path[128];

	snprintf(path, sizeof path, "%s/shift.csv", tmpdir);
	for (size_t delta = 0; delta < sizeof tricky + 4; delta++) {
		loom_buf_t in = LOOM_BUF_INIT, want = LOOM_BUF_INIT;
		size_t pad = 65536 - delta - 1;
		char label[64];
		result_t mem, fd;

		snprintf(label, sizeof label, "tricky record %zu bytes before 64 KiB", delta);
		loom_buf_reserve(&in, pad + sizeof tricky + 1);
		memset(in.data, 'p', pad);
		in.len = pad;
		loom_buf_addc(&in, '\n');
		loom_buf_add(&in, tricky, sizeof tricky - 1);

		loom_buf_addc(&want, '[');
		loom_buf_addc(&want, '[');
		render_field(&want, in.data, pad);
		loom_buf_addc(&want, ']');
		loom_buf_adds(&want, want_tail);

		loom_csv_opts_t o;
		loom_csv_opts_default(&o);
		o.header = false;
		result_init(&mem);
		result_init(&fd);
		read_mem(label, in.data, in.len, &o, &mem);
		spill(path, in.data, in.len);
		read_path(label, path, &o, &fd);
		same_results(label, &mem, &fd);
		check_rows(label, &mem, want.data);
		want_err_t err = { 4, 5, "byte 3 of the character that starts with 0xe2 is 0x28", false, 4 };
		check_error(label, &mem, &err);
		assert_string_equal(loom_buf_cstr(&mem.lines), "1,2,5");
		result_release(&mem);
		result_release(&fd);
		loom_buf_release(&in);
		loom_buf_release(&want);
	}
	unlink(path);
}

/* Deterministic pseudo-random numbers (xorshift64). */
static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* A random field of awkward pieces (no NUL: the reader rejects it). */
static void random_field(loom_buf_t *f, char delimiter, char quote)
{
	static const char *const pieces[] = {
		"a", "b", "xyz", " ", "\r\n", "\n", "\r", "\xc3\xa9", "\xf0\x9f\x98\x8e", "\t", ",", ";",
		"''", "\"", "\xe2\x82\xac", "M\xc3\xbcller",
	};
	size_t n = rnd() % 9;
	loom_buf_reset(f);
	for (size_t k = 0; k < n; k++) {
		const char *p = pieces[rnd() % N_ELEMS(pieces)];
		loom_buf_adds(f, p);
	}
	if (rnd() % 16 == 0)
		loom_buf_addc(f, delimiter);
	if (rnd() % 16 == 0)
		loom_buf_addc(f, quote);
}

/* Writes nrec random records with w, rendering them into want. */
static void write_random(loom_csv_writer_t *w, size_t nrec, size_t big_at, char delimiter,
    char quote, loom_buf_t *want)
{
	loom_buf_t fields[8];
	const char *v[8];
	size_t len[8];
	char *error = NULL;

	for (size_t k = 0; k < 8; k++)
		loom_buf_init(&fields[k]);
	loom_buf_addc(want, '[');
	for (size_t r = 0; r < nrec; r++) {
		size_t n = 1 + rnd() % 8;
		for (size_t k = 0; k < n; k++) {
			random_field(&fields[k], delimiter, quote);
			if (r == big_at && k == 0) {
				/* one field of 200 KiB with quotes and line breaks: spans reads */
				for (size_t b = 0; b < 200 * 1024 / 8; b++)
					loom_buf_adds(&fields[k], b % 97 ? "abcdefg " : "\"q\"\r\n,\xc3\xa9");
			}
			v[k] = loom_buf_cstr(&fields[k]);
			len[k] = fields[k].len;
		}
		if (loom_csv_write(w, n, v, len, &error) < 0)
			fail_msg("cannot write record %zu: %s", r, error);
		if (r > 0)
			loom_buf_addc(want, ',');
		loom_buf_addc(want, '[');
		for (size_t k = 0; k < n; k++) {
			if (k > 0)
				loom_buf_addc(want, ',');
			render_field(want, v[k], len[k]);
		}
		loom_buf_addc(want, ']');
	}
	loom_buf_addc(want, ']');
	for (size_t k = 0; k < 8; k++)
		loom_buf_release(&fields[k]);
}

/* A 3 MB file through an fd: written by the fd writer, read back by the fd
 * reader; includes a 200 KiB quoted field that spans several reads and
 * makes the buffer grow, and random records whose bytes fall on every
 * kind of boundary. */
static void test_big_file_fd(void **state)
{
	(void)state;
	char path[128], *error = NULL;
	loom_buf_t want = LOOM_BUF_INIT;
	loom_csv_opts_t o;
	result_t res;

	snprintf(path, sizeof path, "%s/big.csv", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	loom_csv_opts_default(&o);
	o.header = false;
	loom_csv_writer_t *w = loom_csv_writer_new_fd(fd, path, &o);
	assert_non_null(w);
	write_random(w, 60000, 1234, ',', '"', &want);
	if (loom_csv_writer_flush(w, &error) < 0)
		fail_msg("%s", error);
	loom_csv_writer_destroy(&w);
	assert_null(w);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > 2 * 1024 * 1024);
	close(fd);

	result_init(&res);
	read_path("big file", path, &o, &res);
	assert_int_equal(res.nerr, 0);
	assert_int_equal(res.nrec, 60000);
	if (strcmp(loom_buf_cstr(&want), loom_buf_cstr(&res.rows)) != 0)
		fail_msg("big file: records read back differ from those written");
	result_release(&res);
	loom_buf_release(&want);
	unlink(path);
}

/* A record of 2 MiB with the default max_record (1 MiB) from an fd: an
 * error, and the reader goes on with the next record without holding the
 * whole record. */
static void test_oversize_fd(void **state)
{
	(void)state;
	char path[128];
	loom_buf_t in = LOOM_BUF_INIT;
	result_t res;

	loom_buf_adds(&in, "id,name\n1,ok\n2,");
	for (size_t k = 0; k < 2 * 1024 * 1024 / 16; k++)
		loom_buf_adds(&in, "0123456789abcdef");
	loom_buf_adds(&in, "\n3,fine\n");
	snprintf(path, sizeof path, "%s/oversize.csv", tmpdir);
	spill(path, in.data, in.len);
	result_init(&res);
	read_path("oversize", path, NULL, &res);
	check_rows("oversize", &res, "[['1','ok'],['3','fine']]");
	want_err_t err = { 3, 1, "record is longer than 1048576 bytes (max_record)", false, 3 };
	check_error("oversize", &res, &err);
	assert_string_equal(loom_buf_cstr(&res.lines), "2,4");
	result_release(&res);
	loom_buf_release(&in);
	unlink(path);
}

/* A pipe fed in pieces of 1 to 300 bytes by a child process: reads return
 * whatever is there, so records break at arbitrary places. */
static void test_pipe_small_pieces(void **state)
{
	(void)state;
	loom_buf_t data = LOOM_BUF_INIT, want = LOOM_BUF_INIT;
	loom_csv_opts_t o;
	result_t mem, fd;
	int p[2];

	loom_csv_opts_default(&o);
	o.header = false;
	loom_csv_writer_t *w = loom_csv_writer_new_buf(&data, &o);
	write_random(w, 3000, SIZE_MAX, ',', '"', &want);
	loom_csv_writer_destroy(&w);

	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		size_t off = 0;
		while (off < data.len) {
			size_t n = 1 + rnd() % 300;
			if (n > data.len - off)
				n = data.len - off;
			ssize_t k = write(p[1], data.data + off, n);
			if (k <= 0)
				_exit(1);
			off += (size_t)k;
		}
		_exit(0);
	}
	close(p[1]);
	loom_csv_reader_t *r = NULL;
	char *error = NULL;
	assert_int_equal(loom_csv_reader_open_fd(p[0], "pipe", &o, &r, &error), 0);
	result_init(&fd);
	drain("pipe", r, &fd);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	result_init(&mem);
	read_mem("pipe (memory)", data.data, data.len, &o, &mem);
	same_results("pipe", &mem, &fd);
	assert_string_equal(loom_buf_cstr(&want), loom_buf_cstr(&fd.rows));
	result_release(&mem);
	result_release(&fd);
	loom_buf_release(&data);
	loom_buf_release(&want);
}

/* ---- writer ----------------------------------------------------------- */

typedef struct write_case {
	const char *label;       /* what is tested */
	size_t n;                /* fields */
	const char *v[4];        /* the fields */
	char delimiter;          /* 0: ',' */
	bool lf;                 /* LF line ends */
	const char *want;        /* bytes wanted */
} write_case_t;

static const write_case_t write_cases[] = {
	{ "plain fields", 3, { "a", "b", "c" }, 0, false, "a,b,c\r\n" },
	{ "LF line ends", 2, { "a", "b" }, 0, true, "a,b\n" },
	{ "delimiter quoted", 2, { "a,b", "c" }, 0, false, "\"a,b\",c\r\n" },
	{ "quotes doubled", 1, { "say \"hi\"" }, 0, false, "\"say \"\"hi\"\"\"\r\n" },
	{ "only a quote", 1, { "\"" }, 0, false, "\"\"\"\"\r\n" },
	{ "LF quoted", 1, { "x\ny" }, 0, false, "\"x\ny\"\r\n" },
	{ "CR quoted", 1, { "x\ry" }, 0, false, "\"x\ry\"\r\n" },
	{ "leading space quoted", 1, { " lead" }, 0, false, "\" lead\"\r\n" },
	{ "trailing space quoted", 1, { "trail " }, 0, false, "\"trail \"\r\n" },
	{ "trailing tab quoted", 2, { "x\t", "y" }, 0, false, "\"x\t\",y\r\n" },
	{ "inner space not quoted", 1, { "in side" }, 0, false, "in side\r\n" },
	{ "lone empty field quoted", 1, { "" }, 0, false, "\"\"\r\n" },
	{ "empty fields among others not quoted", 3, { "", "", "" }, 0, false, ",,\r\n" },
	{ "UTF-8 not quoted", 2, { "M\xc3\xbcller", "\xf0\x9f\x98\x8e" }, 0, false,
	  "M\xc3\xbcller,\xf0\x9f\x98\x8e\r\n" },
	{ "TSV: tab quoted, comma not", 2, { "a\tb", "c,d" }, '\t', false, "\"a\tb\"\tc,d\r\n" },
	{ "semicolon", 2, { "a;b", "c,d" }, ';', false, "\"a;b\";c,d\r\n" },
	{ "NULL field is empty", 2, { "a", NULL }, 0, false, "a,\r\n" },
	{ "leading BOM quoted", 1, { "\xef\xbb\xbfx" }, 0, false, "\"\xef\xbb\xbfx\"\r\n" },
};

static void test_writer_quoting(void **state)
{
	(void)state;
	for (size_t c = 0; c < N_ELEMS(write_cases); c++) {
		const write_case_t *wc = &write_cases[c];
		loom_buf_t out = LOOM_BUF_INIT;
		loom_csv_opts_t o;
		char *error = NULL;

		loom_csv_opts_default(&o);
		if (wc->delimiter)
			o.delimiter = wc->delimiter;
		o.crlf = !wc->lf;
		loom_csv_writer_t *w = loom_csv_writer_new_buf(&out, &o);
		assert_non_null(w);
		if (loom_csv_write(w, wc->n, wc->v, NULL, &error) < 0)
			fail_msg("%s: %s", wc->label, error);
		assert_int_equal(loom_csv_writer_flush(w, &error), 0);
		if (strcmp(loom_buf_cstr(&out), wc->want) != 0)
			fail_msg("%s: wrote '%s', wanted '%s'", wc->label, loom_buf_cstr(&out), wc->want);

		/* and it reads back as written */
		result_t res;
		loom_buf_t want = LOOM_BUF_INIT;
		loom_buf_adds(&want, "[[");
		for (size_t k = 0; k < wc->n; k++) {
			const char *f = wc->v[k] ? wc->v[k] : "";
			if (k > 0)
				loom_buf_addc(&want, ',');
			render_field(&want, f, strlen(f));
		}
		loom_buf_adds(&want, "]]");
		o.header = false;
		result_init(&res);
		read_mem(wc->label, out.data, out.len, &o, &res);
		assert_int_equal(res.nerr, 0);
		assert_string_equal(loom_buf_cstr(&res.rows), want.data);
		result_release(&res);
		loom_buf_release(&want);
		loom_csv_writer_destroy(&w);
		loom_buf_release(&out);
	}
}

static void test_writer_errors(void **state)
{
	(void)state;
	loom_buf_t out = LOOM_BUF_INIT;
	char *error = NULL;
	const char *v[] = { "a", "b\0c" };
	size_t len[] = { 1, 3 };

	loom_csv_writer_t *w = loom_csv_writer_new_buf(&out, NULL);
	assert_int_equal(loom_csv_write(w, 1, v, NULL, &error), 0);
	assert_int_equal(loom_csv_write(w, 0, v, NULL, &error), -1);
	assert_string_equal(error, "cannot write CSV record: no fields, expected at least one");
	free(error);
	assert_int_equal(loom_csv_write(w, 2, v, len, &error), -1);
	assert_string_equal(error, "cannot write CSV field 2: it holds a NUL byte, expected text");
	free(error);
	/* nothing of the refused records was written */
	assert_string_equal(loom_buf_cstr(&out), "a\r\n");
	loom_csv_writer_destroy(&w);
	loom_csv_writer_destroy(&w);
	loom_csv_writer_destroy(NULL);
	loom_buf_release(&out);

	/* a write error names the output and keeps the bytes */
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	w = loom_csv_writer_new_fd(p[1], "closed-pipe", NULL);
	assert_int_equal(loom_csv_write(w, 1, v, NULL, &error), 0);
	assert_int_equal(loom_csv_writer_flush(w, &error), -1);
	assert_string_equal(error, "cannot write 'closed-pipe': Broken pipe");
	free(error);
	signal(SIGPIPE, old);
	loom_csv_writer_destroy(&w);
	close(p[1]);
}

/* Random fields written and read back, for several dialects. */
static void test_writer_round_trip(void **state)
{
	(void)state;
	static const struct {
		char delimiter;       /* separator */
		char quote;           /* quote */
		bool crlf;            /* line ends */
	} dialects[] = {
		{ ',', '"', true }, { ',', '"', false }, { '\t', '"', true }, { ';', '\'', false },
		{ '|', '"', true },
	};

	for (size_t d = 0; d < N_ELEMS(dialects); d++) {
		loom_buf_t out = LOOM_BUF_INIT, want = LOOM_BUF_INIT;
		loom_csv_opts_t o;
		result_t res;
		char label[64];

		snprintf(label, sizeof label, "round trip '%c' '%c' %s", dialects[d].delimiter,
		    dialects[d].quote, dialects[d].crlf ? "CRLF" : "LF");
		loom_csv_opts_default(&o);
		o.delimiter = dialects[d].delimiter;
		o.quote = dialects[d].quote;
		o.crlf = dialects[d].crlf;
		o.header = false;
		loom_csv_writer_t *w = loom_csv_writer_new_buf(&out, &o);
		assert_non_null(w);
		write_random(w, 3000, SIZE_MAX, o.delimiter, o.quote, &want);
		loom_csv_writer_destroy(&w);

		result_init(&res);
		read_mem(label, out.data, out.len, &o, &res);
		if (res.nerr > 0)
			fail_msg("%s: error %u:%u %s", label, res.err[0].line, res.err[0].column,
			    res.err[0].message);
		if (strcmp(loom_buf_cstr(&want), loom_buf_cstr(&res.rows)) != 0)
			fail_msg("%s: records read back differ from those written", label);

		/* with a header the same bytes give the same data records */
		result_t hres;
		o.header = true;
		result_init(&hres);
		read_mem(label, out.data, out.len, &o, &hres);
		assert_int_equal(hres.nrec + hres.nerr, res.nrec - 1);
		result_release(&hres);

		result_release(&res);
		loom_buf_release(&out);
		loom_buf_release(&want);
	}
}

/* ---- options, header, API edges --------------------------------------- */

typedef struct opts_case {
	const char *label;       /* what is wrong */
	char delimiter;          /* delimiter to set */
	char quote;              /* quote to set */
	size_t max_record;       /* max_record to set */
	bool header;             /* header to set */
	size_t n_expect;         /* n_expect_columns to set */
	bool expect_null;        /* leave expect_columns NULL */
	const char *want;        /* error wanted, NULL: valid */
} opts_case_t;

static const opts_case_t opts_cases[] = {
	{ "defaults", ',', '"', 1, true, 0, false, NULL },
	{ "LF delimiter", '\n', '"', 1, true, 0, false,
	  "invalid CSV delimiter 0x0a: expected an ASCII character other than NUL, CR and LF" },
	{ "CR delimiter", '\r', '"', 1, true, 0, false, "invalid CSV delimiter 0x0d" },
	{ "NUL delimiter", '\0', '"', 1, true, 0, false, "invalid CSV delimiter 0x00" },
	{ "non-ASCII quote", ',', (char)0xc3, 1, true, 0, false, "invalid CSV quote 0xc3" },
	{ "same delimiter and quote", ';', ';', 1, true, 0, false,
	  "invalid CSV options: delimiter and quote are both 0x3b, expected two different characters" },
	{ "zero max_record", ',', '"', 0, true, 0, false,
	  "invalid CSV max_record 0: expected at least 1 byte" },
	{ "expect_columns without header", ',', '"', 1, false, 1, false,
	  "invalid CSV options: expect_columns needs header on" },
	{ "expect_columns NULL", ',', '"', 1, true, 2, true,
	  "invalid CSV options: n_expect_columns is 2 but expect_columns is NULL" },
};

static void test_opts_check(void **state)
{
	(void)state;
	static const char *const names[] = { "a", "b" };
	for (size_t c = 0; c < N_ELEMS(opts_cases); c++) {
		const opts_case_t *oc = &opts_cases[c];
		loom_csv_opts_t o;
		loom_csv_reader_t *r = NULL;
		loom_buf_t out = LOOM_BUF_INIT;
		char *error = NULL;

		loom_csv_opts_default(&o);
		o.delimiter = oc->delimiter;
		o.quote = oc->quote;
		o.max_record = oc->max_record;
		o.header = oc->header;
		o.n_expect_columns = oc->n_expect;
		o.expect_columns = oc->expect_null ? NULL : names;
		int rc = loom_csv_opts_check(&o, &error);
		if (oc->want == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", oc->label, error);
			continue;
		}
		assert_int_equal(rc, -1);
		if (strstr(error, oc->want) == NULL)
			fail_msg("%s: '%s', wanted '%s'", oc->label, error, oc->want);
		free(error);
		error = NULL;
		assert_int_equal(loom_csv_reader_open_fd(0, "x", &o, &r, &error), -1);
		assert_non_null(error);
		free(error);
		assert_int_equal(loom_csv_reader_open_mem("", 0, "x", &o, &r), -1);
		assert_null(r);
		/* the writer refuses the same delimiters and quotes */
		if (strstr(oc->want, "delimiter") != NULL || strstr(oc->want, "quote") != NULL)
			assert_null(loom_csv_writer_new_buf(&out, &o));
	}
}

static void test_expect_columns(void **state)
{
	(void)state;
	static const struct {
		const char *label;    /* what is tested */
		const char *csv;      /* input */
		want_err_t err;       /* error wanted */
	} cases[] = {
		{ "matching header", "id,name\n1,x\n", { 0 } },
		{ "matching header after a BOM and empty lines", "\xef\xbb\xbf\n\"id\",name\r\n1,x\r\n", { 0 } },
		{ "wrong second name", "id,nom\n1,x\n",
		  { 1, 4, "header column 2 is 'nom', expected 'name'", true, 1 } },
		{ "missing column", "id\n1\n", { 1, 3, "header has 1 column, expected 2: 'id,name'", true, 1 } },
		{ "extra column", "id,name,mail\n1,x,y\n",
		  { 1, 9, "header has 3 columns, expected 2: 'id,name'", true, 1 } },
		{ "empty input", "", { 1, 1, "no header, the input is empty; expected 'id,name'", true, 1 } },
	};
	static const char *const names[] = { "id", "name" };

	for (size_t c = 0; c < N_ELEMS(cases); c++) {
		loom_csv_opts_t o;
		result_t res;
		loom_csv_opts_default(&o);
		o.expect_columns = names;
		o.n_expect_columns = 2;
		result_init(&res);
		read_mem(cases[c].label, cases[c].csv, strlen(cases[c].csv), &o, &res);
		check_error(cases[c].label, &res, &cases[c].err);
		if (cases[c].err.line == 0) {
			check_rows(cases[c].label, &res, "[['1','x']]");
			check_cols(cases[c].label, &res, "'id','name'");
		} else {
			assert_int_equal(res.nrec, 0);
		}
		result_release(&res);
	}
}

/* Fatal errors repeat; the header is known only after the first read. */
static void test_fatal_and_columns(void **state)
{
	(void)state;
	loom_csv_reader_t *r = NULL;
	loom_csv_record_t rec;
	loom_csv_error_t err, again;
	const char *const *names = NULL;
	char *error = NULL;
	const char *data = "a,b\n1,2\n";

	assert_int_equal(loom_csv_reader_open_mem(data, strlen(data), "t", NULL, &r), 0);
	assert_int_equal(loom_csv_columns(r, &names), 0);
	assert_int_equal(loom_csv_read(r, &rec, &err), 1);
	assert_int_equal(loom_csv_columns(r, &names), 2);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_int_equal(rec.line, 2);
	assert_int_equal(loom_csv_read(r, &rec, NULL), 0);
	assert_string_equal(names[1], "b"); /* names outlive the records */
	loom_csv_reader_destroy(&r);
	loom_csv_reader_destroy(&r);
	loom_csv_reader_destroy(NULL);

	/* a read error is fatal and names the input */
	int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(loom_csv_reader_open_fd(fd, "somedir", NULL, &r, &error), 0);
	assert_int_equal(loom_csv_read(r, &rec, &err), -1);
	assert_true(err.fatal);
	assert_string_equal(err.message, "cannot read 'somedir': Is a directory");
	assert_int_equal(loom_csv_read(r, &rec, &again), -1);
	assert_true(again.fatal);
	assert_string_equal(again.message, err.message);
	loom_csv_reader_destroy(&r);
	close(fd);
}

/* ---- setup ------------------------------------------------------------ */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/loom-test-csv-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	char path[512];
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_files),
		cmocka_unit_test(test_rfc_example3_header),
		cmocka_unit_test(test_reader_rules),
		cmocka_unit_test(test_error_recovery),
		cmocka_unit_test(test_max_record),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_chunk_boundaries),
		cmocka_unit_test(test_big_file_fd),
		cmocka_unit_test(test_oversize_fd),
		cmocka_unit_test(test_pipe_small_pieces),
		cmocka_unit_test(test_writer_quoting),
		cmocka_unit_test(test_writer_errors),
		cmocka_unit_test(test_writer_round_trip),
		cmocka_unit_test(test_opts_check),
		cmocka_unit_test(test_expect_columns),
		cmocka_unit_test(test_fatal_and_columns),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
