/* test_dsml.c - the DSML v2 reader and writer (lib/loom_dsml.c).
 *
 *   - every Apache Directory DSMLv2 parser document (testdata
 *     dsml/apache-directory-ldap-api, expectations from its EXPECTED.md):
 *     parse-ok documents read without an error, parse-error ones give one
 *     with a line and a message;
 *   - every response the OpenDJ DSML gateway recorded (318 SOAP-wrapped
 *     batchResponses, 1,058 entries) reads without an error;
 *   - the OpenDJ DSML gateway's error-handling suite (03dsmlerrsuite): every
 *     request whose recorded response is errorResponse malformedRequest is
 *     refused (the HTTP headers of the .dat files are stripped);
 *   - values the Apache table asserts (base64 decoding, multi-values,
 *     modification operations, modDN fields, SOAP envelopes);
 *   - inline cases: error recovery after a bad operation, fatal syntax
 *     errors with line and column, DOCTYPEs refused, a missing
 *     searchResultDone, DN syntax;
 *   - the writer: a read-back of entries and changes with binary and
 *     markup-sensitive values, and a 20,000-entry document read from a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_dsml.h"

#define DSML_DIR LOOM_TESTDATA_DIR "/dsml"
#define APACHE_DIR DSML_DIR "/apache-directory-ldap-api"

static char *read_file(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("cannot open '%s': %s", path, strerror(errno));
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		loom_buf_add(&b, chunk, (size_t)n);
	close(fd);
	*ret_len = b.len;
	if (b.data == NULL)
		return loom_strdup("");
	return loom_buf_steal(&b);
}

/* Reads a whole document: records, errors (the first one's text in
 * first_err), whether an error was fatal. */
typedef struct outcome {
	int records;
	int errors;
	bool fatal;
	unsigned err_line;
	char first_err[400];
} outcome_t;

static void read_all(const char *data, size_t len, outcome_t *o)
{
	memset(o, 0, sizeof *o);
	loom_dsml_reader_t *r = loom_dsml_reader_new_mem(data, len, "test");
	loom_dsml_record_t rec;
	loom_dsml_error_t e;
	int rc, guard = 0;
	while ((rc = loom_dsml_read(r, &rec, &e)) != 0 && guard++ < 100000) {
		if (rc > 0) {
			o->records++;
			continue;
		}
		if (o->errors++ == 0) {
			snprintf(o->first_err, sizeof o->first_err, "%u:%u: %s", e.line, e.column, e.message);
			o->err_line = e.line;
		}
		if (e.fatal)
			o->fatal = true;
	}
	loom_dsml_reader_destroy(&r);
}

static void read_path(const char *path, outcome_t *o)
{
	size_t len;
	char *data = read_file(path, &len);
	read_all(data, len, o);
	free(data);
}

/* ---- the Apache documents ---------------------------------------------------- */

static void test_apache_expected(void **state)
{
	(void)state;
	size_t len;
	char *table = read_file(APACHE_DIR "/EXPECTED.md", &len);
	int ok = 0, err = 0, bad = 0;
	for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "| ", 2) != 0)
			continue;
		/* | folder | file(s) | method | expect | conditions | */
		char *cols[6] = { 0 };
		int nc = 0;
		for (char *p = line + 1; *p && nc < 6;) {
			char *bar = strchr(p, '|');
			if (bar == NULL)
				break;
			*bar = '\0';
			while (*p == ' ')
				p++;
			char *e = bar;
			while (e > p && e[-1] == ' ')
				*--e = '\0';
			cols[nc++] = p;
			p = bar + 1;
		}
		if (nc < 4 || (strcmp(cols[3], "parse-ok") != 0 && strcmp(cols[3], "parse-error") != 0))
			continue;
		bool want_ok = strcmp(cols[3], "parse-ok") == 0;
		/* file(s): one or more, separated by ", " */
		char files[512];
		snprintf(files, sizeof files, "%s", cols[1]);
		for (char *save = NULL, *f = strtok_r(files, ", ", &save); f; f = strtok_r(NULL, ", ", &save)) {
			char path[1024];
			snprintf(path, sizeof path, "%s/%s", APACHE_DIR, f);
			outcome_t o;
			read_path(path, &o);
			if (want_ok && o.errors) {
				print_message("want parse-ok, got an error: %s: %s\n", f, o.first_err);
				bad++;
			} else if (!want_ok && o.errors == 0) {
				print_message("want parse-error, read %d records without one: %s\n", o.records, f);
				bad++;
			} else if (!want_ok && (o.err_line == 0 || o.first_err[0] == '\0')) {
				print_message("an error without a line: %s: %s\n", f, o.first_err);
				bad++;
			}
			if (want_ok)
				ok++;
			else
				err++;
		}
	}
	free(table);
	print_message("apache: %d parse-ok, %d parse-error documents\n", ok, err);
	assert_true(ok > 300);
	assert_true(err > 120);
	assert_int_equal(bad, 0);
}

/* ---- the OpenDJ error-handling suite ---------------------------------------- */

static void test_opendj_malformed(void **state)
{
	(void)state;
	const char *dir = DSML_DIR "/opendj-functional-tests/suites/03dsmlerrsuite/data";
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int refused = 0, bad = 0, accepted_ok = 0;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".res") != 0)
			continue;
		char res[1024], dat[1024];
		snprintf(res, sizeof res, "%s/%s", dir, de->d_name);
		snprintf(dat, sizeof dat, "%s/%.*s.dat", dir, (int)(n - 4), de->d_name);
		size_t rlen, dlen;
		char *rtext = read_file(res, &rlen);
		bool malformed = strstr(rtext, "malformedRequest") != NULL;
		free(rtext);
		char *dtext = read_file(dat, &dlen);
		char *body = strstr(dtext, "\r\n\r\n");
		body = body ? body + 4 : strstr(dtext, "\n\n");
		while (body && (body[0] == '\n' || body[0] == '\r'))
			body++;
		outcome_t o;
		if (body == NULL)
			body = dtext;
		read_all(body, strlen(body), &o);
		if (malformed && o.errors && strstr(o.first_err, "XML declaration allowed only"))
			fail_msg("%s: the HTTP headers were not stripped: %s", de->d_name, o.first_err);
		if (malformed) {
			if (o.errors == 0) {
				print_message("opendj: %s is malformedRequest there, read without an error\n", de->d_name);
				bad++;
			} else {
				refused++;
			}
		} else if (o.errors == 0) {
			accepted_ok++;
		}
		free(dtext);
	}
	closedir(d);
	print_message("opendj: %d malformed requests refused, %d others read cleanly\n", refused, accepted_ok);
	assert_true(refused >= 90);
	assert_int_equal(bad, 0);
}

/* Every response the OpenDJ gateway recorded (SOAP-wrapped batchResponses,
 * HTTP headers stripped) reads without an error; the multipost_* files hold
 * several HTTP exchanges (or none) and are not one document. */
static void test_opendj_responses(void **state)
{
	(void)state;
	const char *root = DSML_DIR "/opendj-functional-tests/suites";
	DIR *suites = opendir(root);
	assert_non_null(suites);
	struct dirent *sd;
	int files = 0, entries = 0, bad = 0;
	while ((sd = readdir(suites)) != NULL) {
		if (sd->d_name[0] == '.')
			continue;
		char dir[1024];
		snprintf(dir, sizeof dir, "%s/%s/data", root, sd->d_name);
		DIR *d = opendir(dir);
		if (d == NULL)
			continue;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			if (n < 5 || strcmp(de->d_name + n - 4, ".res") != 0 || strstr(de->d_name, "multipost"))
				continue;
			char path[2048];
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			size_t len;
			char *text = read_file(path, &len);
			char *body = strstr(text, "\r\n\r\n");
			body = body ? body + 4 : strstr(text, "\n\n");
			while (body && (*body == '\n' || *body == '\r'))
				body++;
			if (body == NULL)
				body = text;
			loom_dsml_reader_t *r = loom_dsml_reader_new_mem(body, strlen(body), path);
			loom_dsml_record_t rec;
			loom_dsml_error_t e;
			int rc;
			while ((rc = loom_dsml_read(r, &rec, &e)) != 0) {
				if (rc < 0) {
					print_message("opendj response %s/%s: %u:%u: %s\n", sd->d_name, de->d_name, e.line, e.column,
					    e.message);
					bad++;
				} else if (rec.kind == LOOM_DSML_ENTRY) {
					entries++;
				}
			}
			loom_dsml_reader_destroy(&r);
			free(text);
			files++;
		}
		closedir(d);
	}
	closedir(suites);
	print_message("opendj: %d responses read, %d entries\n", files, entries);
	assert_true(files >= 300);
	assert_true(entries >= 1000);
	assert_int_equal(bad, 0);
}

/* ---- values ---------------------------------------------------------------- */

static void test_values(void **state)
{
	(void)state;
	size_t len;
	char *data = read_file(APACHE_DIR "/searchResponse/searchResultEntry/response_with_1_attr_1_base64_value.xml", &len);
	loom_dsml_reader_t *r = loom_dsml_reader_new_mem(data, len, "b64");
	loom_dsml_record_t rec;
	loom_dsml_error_t e;
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_ENTRY);
	assert_string_equal(rec.dn, "uid=elecharny,dc=example,dc=com");
	assert_int_equal(rec.nattrs, 1);
	assert_string_equal(rec.attrs[0].name, "cn");
	assert_int_equal(rec.attrs[0].n, 1);
	assert_true(rec.attrs[0].v[0].base64);
	assert_string_equal(rec.attrs[0].v[0].data, "Emmanuel L\xc3\xa9" "charny");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_DONE);
	assert_int_equal(rec.result_code, 0);
	assert_int_equal(loom_dsml_read(r, &rec, &e), 0);
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/searchResponse/response_with_2_SRE_2_SRR_1_SRD.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "2sre");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_string_equal(rec.dn, "dc=example,dc=com");
	assert_int_equal(rec.nattrs, 2);
	assert_string_equal(rec.attrs[1].name, "objectclass");
	assert_int_equal(rec.attrs[1].n, 3);
	assert_string_equal(rec.attrs[1].v[2].data, "extensibleObject");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_string_equal(rec.dn, "cn=Bob Rush,dc=Example,dc=COM");
	assert_int_equal(rec.nattrs, 3);
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_OTHER);
	assert_string_equal(rec.element, "searchResultReference");
	loom_dsml_reader_destroy(&r);
	free(data);

	/* objectclass in two <attr> elements is one attribute of two values */
	data = read_file(APACHE_DIR "/batchRequest/request_with_2_AddRequest.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "add");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_true(loom_dsml_is_request(r));
	assert_int_equal(rec.kind, LOOM_DSML_ADD);
	assert_string_equal(rec.request_id, "5");
	assert_int_equal(rec.nattrs, 2);
	assert_int_equal(rec.attrs[0].n, 2);
	assert_string_equal(rec.attrs[0].v[1].data, "person");
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/modifyRequest/request_with_2_modifications.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "mod");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_MODIFY);
	assert_int_equal(rec.nmods, 2);
	assert_int_equal(rec.mods[0].op, LOOM_DSML_MOD_ADD);
	assert_string_equal(rec.mods[0].attr.name, "directReport");
	assert_string_equal(rec.mods[1].attr.v[0].data, "CN=Steve Jobs, DC=apple, DC=com");
	assert_int_equal(rec.mods[1].op, LOOM_DSML_MOD_REPLACE);
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/modDNRequest/request_with_newSuperior_attribute.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "moddn");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_MODDN);
	assert_string_equal(rec.newrdn, "CN=Bob Rush2");
	assert_true(rec.deleteoldrdn);
	assert_string_equal(rec.newsuperior, "CN=Steve Jobs,OU=Dev,DC=apple,DC=com");
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/modDNRequest/request_with_deleteoldrdn_false.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "moddn");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_false(rec.deleteoldrdn);
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/soap/soap-dsml-req-with-header.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "soap");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_int_equal(rec.kind, LOOM_DSML_OTHER);
	assert_string_equal(rec.element, "searchRequest");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 0);
	loom_dsml_reader_destroy(&r);
	free(data);

	data = read_file(APACHE_DIR "/addRequest/request_with_1_control.xml", &len);
	r = loom_dsml_reader_new_mem(data, len, "ctl");
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_string_equal(rec.critical_control, "1.2.840.113556.1.4.643");
	loom_dsml_reader_destroy(&r);
	free(data);
}

/* ---- inline cases --------------------------------------------------------------- */

typedef struct inline_case {
	const char *label;
	const char *doc;
	int records;          /* records read (-1: any number; the reader reads ahead, so a
	                       * syntax error may take the operations before it along) */
	int errors;           /* errors reported */
	bool fatal;           /* the last error is fatal */
	unsigned line;        /* first error's line */
	const char *message;  /* a part of the first error's message */
} inline_case_t;

#define BREQ "<batchRequest xmlns=\"urn:oasis:names:tc:DSML:2:0:core\">\n"
#define BRES "<batchResponse xmlns=\"urn:oasis:names:tc:DSML:2:0:core\">\n"

static const inline_case_t inline_cases[] = {
	{ "a bad operation between good ones",
	  BREQ "<delRequest dn=\"cn=a,o=x\"/>\n<delRequest/>\n<delRequest dn=\"cn=c,o=x\"/>\n</batchRequest>\n", 2, 1,
	  false, 3, "<delRequest> without its 'dn' attribute" },
	{ "not well-formed: the rest is lost, line and column",
	  BREQ "<delRequest dn=\"cn=a,o=x\"/>\n<delRequest dn=\"cn=b,o=x\">\n</batchRequest>\n", -1, 1, true, 4,
	  "mismatch" },
	{ "a DOCTYPE is refused",
	  "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"aaaa\">]>\n" BREQ "</batchRequest>\n", 0, 1, true, 0,
	  "DOCTYPE" },
	{ "not DSML", "<html><body/></html>", 0, 1, true, 1, "expected a DSML v2 batchRequest" },
	{ "another namespace", "<batchRequest xmlns=\"urn:x\"/>", 0, 1, true, 1, "expected a DSML v2" },
	{ "an empty document", "", 0, 1, true, 0, "" },
	{ "searchResponse without searchResultDone",
	  BRES "<searchResponse>\n<searchResultEntry dn=\"cn=a,o=x\"/>\n</searchResponse>\n</batchResponse>\n", 1, 1,
	  true, 2, "without its <searchResultDone>" },
	{ "an entry after searchResultDone",
	  BRES "<searchResponse>\n<searchResultDone><resultCode code=\"0\"/></searchResultDone>\n"
	       "<searchResultEntry dn=\"cn=a,o=x\"/>\n</searchResponse>\n</batchResponse>\n",
	  1, 1, true, 4, "after <searchResultDone>" },
	{ "a bad DN", BREQ "<addRequest dn=\"no equals sign\"/>\n</batchRequest>", 0, 1, false, 2, "not a DN" },
	{ "a bad base64 value",
	  BREQ "<addRequest dn=\"cn=a\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
	       "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n<attr name=\"x\">\n"
	       "<value xsi:type=\"xsd:base64Binary\">!!!</value></attr></addRequest>\n</batchRequest>",
	  0, 1, false, 4, "bad base64" },
	{ "an anyURI value is not fetched",
	  BREQ "<addRequest dn=\"cn=a\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
	       "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n<attr name=\"x\">\n"
	       "<value xsi:type=\"xsd:anyURI\">file:///etc/passwd</value></attr></addRequest>\n</batchRequest>",
	  0, 1, false, 4, "xsd:anyURI" },
	{ "text between operations", BREQ "hello\n</batchRequest>", 0, 1, true, 0, "text 'hello" },
	{ "a bad modification operation",
	  BREQ "<modifyRequest dn=\"cn=a\">\n<modification name=\"sn\" operation=\"zap\"/>\n</modifyRequest>\n"
	       "<delRequest dn=\"cn=b\"/></batchRequest>",
	  1, 1, false, 3, "operation 'zap'" },
	{ "a searchResultEntry in a batchRequest",
	  BREQ "<searchResultEntry dn=\"cn=a\"/></batchRequest>", 0, 1, false, 2, "unexpected element <searchResultEntry>" },
	{ "an unknown child",
	  BREQ "<addRequest dn=\"cn=a\"><bogus/></addRequest></batchRequest>", 0, 1, false, 2, "unexpected element <bogus>" },
	{ "quoted, escaped and spaced DNs are DNs",
	  BREQ "<delRequest dn='cn=\"a, b\",o=x'/><delRequest dn='cn=a\\2cb , o = x ; c=US'/>"
	       "<delRequest dn='1.2.3=#0403616263'/><delRequest dn=''/></batchRequest>",
	  4, 0, false, 0, NULL },
	{ "a CDATA value",
	  BREQ "<addRequest dn=\"cn=a\"><attr name=\"x\"><value><![CDATA[<b>&]]></value></attr></addRequest>"
	       "</batchRequest>",
	  1, 0, false, 0, NULL },
};

static void test_inline(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof inline_cases / sizeof inline_cases[0]; i++) {
		const inline_case_t *c = &inline_cases[i];
		outcome_t o;
		read_all(c->doc, strlen(c->doc), &o);
		if ((c->records >= 0 && o.records != c->records) || o.errors != c->errors || o.fatal != c->fatal ||
		    (c->line && o.err_line != c->line) || (c->message && !strstr(o.first_err, c->message)))
			fail_msg("%s: got records=%d errors=%d fatal=%d first='%s'", c->label, o.records, o.errors, o.fatal,
			    o.first_err);
	}
}

static void test_cdata_value(void **state)
{
	(void)state;
	const char *doc = BREQ "<addRequest dn=\"cn=a\"><attr name=\"x\"><value>a<![CDATA[<b>&]]>z</value></attr>"
			       "</addRequest></batchRequest>";
	loom_dsml_reader_t *r = loom_dsml_reader_new_mem(doc, strlen(doc), "cdata");
	loom_dsml_record_t rec;
	loom_dsml_error_t e;
	assert_int_equal(loom_dsml_read(r, &rec, &e), 1);
	assert_string_equal(rec.attrs[0].v[0].data, "a<b>&z");
	loom_dsml_reader_destroy(&r);
}

static void test_dn_syntax(void **state)
{
	(void)state;
	assert_true(loom_dsml_dn_valid(""));
	assert_true(loom_dsml_dn_valid("cn=a"));
	assert_true(loom_dsml_dn_valid("cn=a+sn=b,o=x"));
	assert_true(loom_dsml_dn_valid("CN=John Smith, DC=microsoft, DC=com"));
	assert_true(loom_dsml_dn_valid("cn=a\\,b,o=x"));
	assert_false(loom_dsml_dn_valid("This is a wrong DN"));
	assert_false(loom_dsml_dn_valid("cn=a,"));
	assert_false(loom_dsml_dn_valid("=a"));
	assert_false(loom_dsml_dn_valid("cn=a\\"));
	assert_false(loom_dsml_dn_valid("cn=a\\q"));
}

/* ---- the writer -------------------------------------------------------------- */

static void test_writer_roundtrip(void **state)
{
	(void)state;
	loom_buf_t out = LOOM_BUF_INIT;
	loom_dsml_writer_t *w = loom_dsml_writer_new(&out, LOOM_DSML_DOC_SEARCH);
	static const char bin[] = { 'a', '\0', 'b', '\r', '\xff' };
	loom_dsml_value_t v1[] = { { "x < y & \"z\"", 11, false }, { bin, sizeof bin, false } };
	loom_dsml_value_t v2[] = { { " lead and trail ", 16, false }, { "\xc3\xa9t\xc3\xa9", 5, false } };
	loom_dsml_attr_t attrs[] = { { "description", 2, v1 }, { "cn;lang-fr", 2, v2 } };
	loom_dsml_record_t rec = { .kind = LOOM_DSML_ENTRY, .dn = "cn=a&b,o=\"x\"", .nattrs = 2, .attrs = attrs };
	const char *err;
	assert_int_equal(loom_dsml_write(w, &rec, &err), 0);
	rec.kind = LOOM_DSML_ADD;
	assert_int_equal(loom_dsml_write(w, &rec, &err), -1);
	loom_dsml_writer_finish(w);
	loom_dsml_writer_destroy(&w);

	loom_dsml_reader_t *r = loom_dsml_reader_new_mem(out.data, out.len, "rt");
	loom_dsml_record_t got;
	loom_dsml_error_t e;
	assert_int_equal(loom_dsml_read(r, &got, &e), 1);
	assert_string_equal(got.dn, "cn=a&b,o=\"x\"");
	assert_int_equal(got.nattrs, 2);
	assert_int_equal(got.attrs[0].n, 2);
	assert_string_equal(got.attrs[0].v[0].data, "x < y & \"z\"");
	assert_int_equal(got.attrs[0].v[1].len, sizeof bin);
	assert_memory_equal(got.attrs[0].v[1].data, bin, sizeof bin);
	assert_true(got.attrs[0].v[1].base64);
	assert_string_equal(got.attrs[1].v[0].data, " lead and trail ");
	assert_string_equal(got.attrs[1].v[1].data, "\xc3\xa9t\xc3\xa9");
	assert_int_equal(loom_dsml_read(r, &got, &e), 1);
	assert_int_equal(got.kind, LOOM_DSML_DONE);
	assert_int_equal(loom_dsml_read(r, &got, &e), 0);
	loom_dsml_reader_destroy(&r);
	loom_buf_release(&out);

	/* changes */
	w = loom_dsml_writer_new(&out, LOOM_DSML_DOC_CHANGES);
	loom_dsml_value_t mv[] = { { "Boss", 4, false } };
	loom_dsml_mod_t mods[] = { { LOOM_DSML_MOD_REPLACE, { "title", 1, mv } }, { LOOM_DSML_MOD_DELETE, { "mail", 0, NULL } } };
	loom_dsml_record_t m = { .kind = LOOM_DSML_MODIFY, .dn = "cn=a,o=x", .nmods = 2, .mods = mods };
	assert_int_equal(loom_dsml_write(w, &m, &err), 0);
	loom_dsml_record_t d = { .kind = LOOM_DSML_DELETE, .dn = "cn=b,o=x" };
	assert_int_equal(loom_dsml_write(w, &d, &err), 0);
	loom_dsml_record_t mdn = { .kind = LOOM_DSML_MODDN, .dn = "cn=c,o=x", .newrdn = "cn=d", .deleteoldrdn = true,
		.newsuperior = "ou=y,o=x" };
	assert_int_equal(loom_dsml_write(w, &mdn, &err), 0);
	loom_dsml_writer_finish(w);
	loom_dsml_writer_destroy(&w);
	r = loom_dsml_reader_new_mem(out.data, out.len, "rt2");
	assert_int_equal(loom_dsml_read(r, &got, &e), 1);
	assert_int_equal(got.kind, LOOM_DSML_MODIFY);
	assert_string_equal(got.request_id, "1");
	assert_int_equal(got.nmods, 2);
	assert_int_equal(got.mods[1].op, LOOM_DSML_MOD_DELETE);
	assert_int_equal(got.mods[1].attr.n, 0);
	assert_int_equal(loom_dsml_read(r, &got, &e), 1);
	assert_int_equal(got.kind, LOOM_DSML_DELETE);
	assert_int_equal(loom_dsml_read(r, &got, &e), 1);
	assert_int_equal(got.kind, LOOM_DSML_MODDN);
	assert_string_equal(got.newsuperior, "ou=y,o=x");
	assert_int_equal(loom_dsml_read(r, &got, &e), 0);
	loom_dsml_reader_destroy(&r);
	loom_buf_release(&out);
}

static void test_large_fd(void **state)
{
	(void)state;
	char path[] = "/tmp/test_dsml.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	loom_buf_t out = LOOM_BUF_INIT;
	loom_dsml_writer_t *w = loom_dsml_writer_new(&out, LOOM_DSML_DOC_SEARCH);
	for (int i = 0; i < 20000; i++) {
		char dn[64], id[16];
		snprintf(dn, sizeof dn, "uid=u%d,ou=people,o=x", i);
		snprintf(id, sizeof id, "%d", i);
		loom_dsml_value_t v[] = { { id, strlen(id), false } };
		loom_dsml_attr_t a[] = { { "uid", 1, v }, { "employeeNumber", 1, v } };
		loom_dsml_record_t rec = { .kind = LOOM_DSML_ENTRY, .dn = dn, .nattrs = 2, .attrs = a };
		assert_int_equal(loom_dsml_write(w, &rec, NULL), 0);
	}
	loom_dsml_writer_finish(w);
	loom_dsml_writer_destroy(&w);
	assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
	loom_buf_release(&out);
	lseek(fd, 0, SEEK_SET);
	loom_dsml_reader_t *r = loom_dsml_reader_new_fd(fd, path);
	loom_dsml_record_t rec;
	loom_dsml_error_t e;
	int n = 0, rc;
	while ((rc = loom_dsml_read(r, &rec, &e)) > 0)
		if (rec.kind == LOOM_DSML_ENTRY) {
			if (n == 19999)
				assert_string_equal(rec.dn, "uid=u19999,ou=people,o=x");
			n++;
		}
	assert_int_equal(rc, 0);
	assert_int_equal(n, 20000);
	loom_dsml_reader_destroy(&r);
	close(fd);
	unlink(path);
}

/* Random mutations of valid documents: every one reads to its end or to a
 * clean error (the sanitizer build runs this). */
static void test_mutations(void **state)
{
	(void)state;
	static const char *const seeds[] = {
		APACHE_DIR "/searchResponse/response_with_2_SRE_2_SRR_1_SRD.xml",
		APACHE_DIR "/batchRequest/request_with_2_ModifyRequest.xml",
		APACHE_DIR "/searchRequest/filters/request_with_nested_connector_nodes.xml",
		APACHE_DIR "/soap/soap-dsml-multiple-operation-requests.xml",
		APACHE_DIR "/searchResponse/searchResultEntry/response_with_1_attr_1_base64_value.xml",
	};
	unsigned seed = 1121;
	for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
		size_t len;
		char *orig = read_file(seeds[s], &len);
		char *buf = loom_malloc(len + 1);
		for (int round = 0; round < 1500; round++) {
			memcpy(buf, orig, len);
			size_t n = len;
			int edits = 1 + rand_r(&seed) % 3;
			for (int e = 0; e < edits; e++) {
				size_t at = (size_t)rand_r(&seed) % n;
				switch (rand_r(&seed) % 3) {
				case 0: buf[at] = (char)(rand_r(&seed) % 256); break;
				case 1: n = at + 1; break;
				default: buf[at] = "<>/\"=&;x0-"[rand_r(&seed) % 10]; break;
				}
			}
			outcome_t o;
			read_all(buf, n, &o);
			if (o.errors)
				assert_true(o.first_err[0] != '\0');
		}
		free(buf);
		free(orig);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apache_expected),
		cmocka_unit_test(test_opendj_malformed),
		cmocka_unit_test(test_opendj_responses),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_cdata_value),
		cmocka_unit_test(test_dn_syntax),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_large_fd),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
