/* test_ldif.c - the LDIF reader and writer (lib/loom_ldif.c).
 *
 * Records are compared as text dumps (one line per value, see dump_record):
 * every table case is an input next to the dump it must give.
 *
 *   - RFC 2849 examples 1-7 and the .verbatim variants (testdata
 *     ldif/rfc2849, expectations from its EXPECTED.md), file URLs refused by
 *     default and read from a temporary url_base_dir;
 *   - the transcribed oracles in ldif/parser-test-cases/ (python-ldap,
 *     go-ldap, ldif3, ldap3), read with a small JSON reader below;
 *   - every OpenLDAP tests/data *.ldif parses, record counts checked against
 *     the number of "dn:" lines, test-modify.ldif as a full golden dump;
 *   - perl-ldap 00-in, 10-in, 42-mod;
 *   - inline cases for grammar corners and for every error (line, column,
 *     message), error recovery, max_record, file URL confinement;
 *   - fd reading with folds, CRLFs and blank lines across 64 KiB reads;
 *   - the writer: exact outputs, folding, and read-back of random records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_ldif.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define LDIF_DIR LOOM_TESTDATA_DIR "/ldif"

/* ---- helpers --------------------------------------------------------------- */

/* Reads a whole file; aborts the test when it cannot. */
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
	assert_true(n == 0);
	close(fd);
	*ret_len = b.len;
	return loom_buf_steal(&b);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Replaces every occurrence of from by to in s (a new string). */
static char *replace_all(const char *s, const char *from, const char *to)
{
	loom_buf_t b = LOOM_BUF_INIT;
	size_t fl = strlen(from);
	const char *p;
	while ((p = strstr(s, from)) != NULL) {
		loom_buf_add(&b, s, (size_t)(p - s));
		loom_buf_adds(&b, to);
		s = p + fl;
	}
	loom_buf_adds(&b, s);
	return loom_buf_steal(&b);
}

/* A temporary directory for file URL tests. */
typedef struct tmpdir {
	char path[64];         /* the directory */
	char files[8][160];    /* files created in it, to remove */
	size_t nfiles;         /* how many */
} tmpdir_t;

static void tmpdir_make(tmpdir_t *t)
{
	memset(t, 0, sizeof *t);
	strcpy(t->path, "/tmp/loom-ldif-XXXXXX");
	assert_non_null(mkdtemp(t->path));
}

/* Creates NAME in the directory with the given content; returns its path. */
static const char *tmpdir_file(tmpdir_t *t, const char *name, const void *data, size_t len)
{
	assert_true(t->nfiles < N_ELEMS(t->files));
	char *p = t->files[t->nfiles++];
	char tmp[sizeof t->files[0]];
	/* Through tmp: GCC -Wrestrict cannot tell files[] from path at -O2. */
	snprintf(tmp, sizeof tmp, "%s/%s", t->path, name);
	memcpy(p, tmp, sizeof tmp);
	write_file(p, data, len);
	return p;
}

/* Creates a symbolic link NAME -> target in the directory. */
static void tmpdir_link(tmpdir_t *t, const char *name, const char *target)
{
	assert_true(t->nfiles < N_ELEMS(t->files));
	char *p = t->files[t->nfiles++];
	char tmp[sizeof t->files[0]];
	/* Through tmp: GCC -Wrestrict cannot tell files[] from path at -O2. */
	snprintf(tmp, sizeof tmp, "%s/%s", t->path, name);
	memcpy(p, tmp, sizeof tmp);
	assert_int_equal(symlink(target, p), 0);
}

static void tmpdir_remove(tmpdir_t *t)
{
	for (size_t i = 0; i < t->nfiles; i++)
		unlink(t->files[i]);
	rmdir(t->path);
}

/* ---- record dumps ---------------------------------------------------------- */

static const char *const kind_names[] = { "content", "add", "delete", "modify", "modrdn" };
static const char *const op_names[] = { "add", "delete", "replace", "increment" };

/* Bytes as text: controls, DEL and '\' as \xHH, everything else raw. */
static void dump_bytes(loom_buf_t *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			loom_buf_printf(b, "\\x%02x", c);
		else
			loom_buf_addc(b, (char)c);
	}
}

static void dump_value(loom_buf_t *b, const loom_ldif_value_t *v)
{
	assert_non_null(v->data);
	assert_int_equal(v->data[v->len], '\0');
	dump_bytes(b, v->data, v->len);
}

/* One record: "KIND DN[ @LINE]", then one line per control, value, mod-spec
 * ("OP NAME" then "= VALUE" per value) or modrdn field, then a blank line. */
static void dump_record(loom_buf_t *b, const loom_ldif_record_t *r, bool lines)
{
	assert_true(r->kind <= LOOM_LDIF_MODRDN);
	assert_non_null(r->dn);
	assert_int_equal(r->dn[r->dn_len], '\0');
	loom_buf_printf(b, "%s ", kind_names[r->kind]);
	dump_bytes(b, r->dn, r->dn_len);
	if (lines)
		loom_buf_printf(b, " @%u", r->line);
	loom_buf_addc(b, '\n');
	for (size_t i = 0; i < r->ncontrols; i++) {
		const loom_ldif_control_t *c = &r->controls[i];
		loom_buf_printf(b, "control %s %s", c->oid, c->critical ? "true" : "false");
		if (c->has_value) {
			loom_buf_adds(b, " = ");
			dump_value(b, &c->value);
		}
		loom_buf_addc(b, '\n');
	}
	for (size_t i = 0; i < r->nattrs; i++) {
		assert_true(r->attrs[i].n > 0);
		for (size_t k = 0; k < r->attrs[i].n; k++) {
			loom_buf_printf(b, "%s: ", r->attrs[i].name);
			dump_value(b, &r->attrs[i].v[k]);
			loom_buf_addc(b, '\n');
		}
	}
	for (size_t i = 0; i < r->nmods; i++) {
		const loom_ldif_mod_t *m = &r->mods[i];
		loom_buf_printf(b, "%s %s\n", op_names[m->op], m->attr.name);
		for (size_t k = 0; k < m->attr.n; k++) {
			loom_buf_adds(b, "= ");
			dump_value(b, &m->attr.v[k]);
			loom_buf_addc(b, '\n');
		}
	}
	if (r->kind == LOOM_LDIF_MODRDN) {
		loom_buf_printf(b, "newrdn: %s\ndeleteoldrdn: %d\n", r->newrdn, r->deleteoldrdn);
		if (r->newsuperior)
			loom_buf_printf(b, "newsuperior: %s\n", r->newsuperior);
	} else {
		assert_null(r->newrdn);
		assert_null(r->newsuperior);
	}
	loom_buf_addc(b, '\n');
}

#define D_LINES 1  /* dumps show the dn line of records */
#define D_MSGS 2   /* dumps show error messages */

/* Everything the reader makes of r: records and "error @LINE:COL rec N". */
static char *dump_reader(loom_ldif_reader_t *r, int flags, size_t *ret_nrec, size_t *ret_nerr)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	size_t nrec = 0, nerr = 0;
	int rc;
	loom_buf_adds(&b, "");
	while ((rc = loom_ldif_read(r, &rec, &err)) != 0) {
		if (rc < 0) {
			nerr++;
			loom_buf_printf(&b, "error @%u:%u rec %u", err.line, err.column, err.record_line);
			if (flags & D_MSGS)
				loom_buf_printf(&b, ": %s", err.message);
			loom_buf_addc(&b, '\n');
			assert_true(nerr < 10000);
			continue;
		}
		assert_int_equal(rc, 1);
		nrec++;
		dump_record(&b, &rec, flags & D_LINES);
	}
	/* The end is sticky. */
	assert_int_equal(loom_ldif_read(r, &rec, &err), 0);
	if (ret_nrec)
		*ret_nrec = nrec;
	if (ret_nerr)
		*ret_nerr = nerr;
	return loom_buf_steal(&b);
}

static char *dump_mem(const void *data, size_t len, const loom_ldif_opts_t *o, int flags, size_t *ret_nrec,
    size_t *ret_nerr)
{
	loom_ldif_reader_t *r = loom_ldif_reader_new_mem(data, len, o);
	assert_non_null(r);
	char *d = dump_reader(r, flags, ret_nrec, ret_nerr);
	loom_ldif_reader_destroy(&r);
	assert_null(r);
	return d;
}

static char *dump_path(const char *path, const loom_ldif_opts_t *o, int flags, size_t *ret_nrec,
    size_t *ret_nerr)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("cannot open '%s': %s", path, strerror(errno));
	loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, o);
	assert_non_null(r);
	char *d = dump_reader(r, flags, ret_nrec, ret_nerr);
	loom_ldif_reader_destroy(&r);
	close(fd);
	return d;
}

/* Fails with both texts when they differ. */
static void check_dump(const char *label, const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		print_error("case '%s'\n--- got:\n%s--- want:\n%s---\n", label, got, want);
		fail_msg("dump mismatch in '%s'", label);
	}
}

/* ---- a small JSON reader (test oracles only) -------------------------------- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct json json_t;
struct json {
	jtype_t type;     /* kind of value */
	bool b;           /* J_BOOL */
	double num;       /* J_NUM */
	char *str;        /* J_STR: bytes, NUL-terminated */
	size_t len;       /* J_STR: bytes; J_ARR, J_OBJ: items */
	json_t *items;    /* J_ARR, J_OBJ: values */
	char **keys;      /* J_OBJ: keys */
};

static const char *j_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	return p;
}

static void j_utf8(loom_buf_t *b, unsigned cp)
{
	if (cp < 0x80) {
		loom_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		loom_buf_addc(b, (char)(0xc0 | cp >> 6));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		loom_buf_addc(b, (char)(0xe0 | cp >> 12));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		loom_buf_addc(b, (char)(0xf0 | cp >> 18));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		loom_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

static unsigned j_hex4(const char *p)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			fail_msg("bad \\u escape in json");
	}
	return v;
}

static const char *j_string(const char *p, char **ret, size_t *ret_len)
{
	loom_buf_t b = LOOM_BUF_INIT;
	assert_int_equal(*p, '"');
	p++;
	loom_buf_adds(&b, "");
	while (*p != '"') {
		assert_true(*p != '\0');
		if (*p != '\\') {
			loom_buf_addc(&b, *p++);
			continue;
		}
		p++;
		switch (*p) {
		case 'n': loom_buf_addc(&b, '\n'); break;
		case 't': loom_buf_addc(&b, '\t'); break;
		case 'r': loom_buf_addc(&b, '\r'); break;
		case 'b': loom_buf_addc(&b, '\b'); break;
		case 'f': loom_buf_addc(&b, '\f'); break;
		case 'u': {
			unsigned cp = j_hex4(p + 1);
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
				unsigned lo = j_hex4(p + 3);
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			}
			j_utf8(&b, cp);
			break;
		}
		default: loom_buf_addc(&b, *p); break;
		}
		p++;
	}
	*ret_len = b.len;
	*ret = loom_buf_steal(&b);
	return p + 1;
}

static const char *j_value(const char *p, json_t *v)
{
	memset(v, 0, sizeof *v);
	p = j_ws(p);
	if (*p == '{' || *p == '[') {
		bool obj = *p == '{';
		char close = obj ? '}' : ']';
		v->type = obj ? J_OBJ : J_ARR;
		size_t cap = 0;
		p = j_ws(p + 1);
		while (*p != close) {
			if (v->len == cap) {
				cap = cap ? cap * 2 : 8;
				v->items = loom_realloc(v->items, cap * sizeof *v->items);
				if (obj)
					v->keys = loom_realloc(v->keys, cap * sizeof *v->keys);
			}
			if (obj) {
				size_t kl;
				p = j_string(j_ws(p), &v->keys[v->len], &kl);
				p = j_ws(p);
				assert_int_equal(*p, ':');
				p++;
			}
			p = j_ws(j_value(p, &v->items[v->len++]));
			if (*p == ',')
				p = j_ws(p + 1);
			else
				assert_int_equal(*p, close);
		}
		return p + 1;
	}
	if (*p == '"') {
		v->type = J_STR;
		return j_string(p, &v->str, &v->len);
	}
	if (strncmp(p, "null", 4) == 0) {
		v->type = J_NULL;
		return p + 4;
	}
	if (strncmp(p, "true", 4) == 0) {
		v->type = J_BOOL;
		v->b = true;
		return p + 4;
	}
	if (strncmp(p, "false", 5) == 0) {
		v->type = J_BOOL;
		return p + 5;
	}
	char *end;
	v->type = J_NUM;
	v->num = strtod(p, &end);
	assert_true(end != p);
	return end;
}

static void j_free(json_t *v)
{
	for (size_t i = 0; (v->type == J_ARR || v->type == J_OBJ) && i < v->len; i++) {
		j_free(&v->items[i]);
		if (v->type == J_OBJ)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

static json_t *j_load(const char *name)
{
	char path[512];
	size_t len;
	snprintf(path, sizeof path, "%s/parser-test-cases/%s", LDIF_DIR, name);
	char *text = read_file(path, &len);
	json_t *v = loom_calloc(1, sizeof *v);
	const char *end = j_ws(j_value(text, v));
	assert_int_equal(*end, '\0');
	free(text);
	return v;
}

static void j_destroy(json_t **v)
{
	j_free(*v);
	loom_free(v);
}

/* Member key of an object, or NULL. */
static const json_t *j_get(const json_t *o, const char *key)
{
	if (o == NULL || o->type != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->len; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

static const char *j_str(const json_t *o, const char *key)
{
	const json_t *v = j_get(o, key);
	return v && v->type == J_STR ? v->str : NULL;
}

/* Bytes of an oracle value: a plain string, {"utf8": s} or {"hex": h}. */
static void j_bytes(const json_t *v, loom_buf_t *out)
{
	loom_buf_reset(out);
	loom_buf_adds(out, "");
	if (v->type == J_STR) {
		loom_buf_add(out, v->str, v->len);
		return;
	}
	const char *s = j_str(v, "utf8");
	if (s) {
		loom_buf_add(out, s, j_get(v, "utf8")->len);
		return;
	}
	s = j_str(v, "hex");
	assert_non_null(s);
	for (size_t i = 0; s[i] && s[i + 1]; i += 2) {
		char h[3] = { s[i], s[i + 1], 0 };
		loom_buf_addc(out, (char)strtoul(h, NULL, 16));
	}
}

static void check_value(const char *label, const loom_ldif_value_t *got, const json_t *want)
{
	loom_buf_t b = LOOM_BUF_INIT;
	j_bytes(want, &b);
	if (got->len != b.len || memcmp(got->data, b.data, b.len) != 0)
		fail_msg("case '%s': value '%s' (%zu bytes), want '%s' (%zu bytes)", label, got->data, got->len,
		    b.data, b.len);
	loom_buf_release(&b);
}

/* ---- RFC 2849 examples ----------------------------------------------------- */

#define EX1_REC1 \
	"content cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com @2\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n" \
	"cn: Barbara Jensen\ncn: Barbara J Jensen\ncn: Babs Jensen\n" \
	"sn: Jensen\nuid: bjensen\ntelephonenumber: +1 408 555 1212\n"
#define EX1_REC2 \
	"content cn=Bjorn Jensen, ou=Accounting, dc=airius, dc=com @14\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n" \
	"cn: Bjorn Jensen\nsn: Jensen\ntelephonenumber: +1 408 555 1212\n\n"
#define EX1 EX1_REC1 "description: A big sailing fan.\n\n" EX1_REC2

#define EX3 \
	"content cn=Gern Jensen, ou=Product Testing, dc=airius, dc=com @2\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n" \
	"cn: Gern Jensen\ncn: Gern O Jensen\nsn: Jensen\nuid: gernj\ntelephonenumber: +1 408 555 1212\n" \
	"description: What a careful reader you are!  This value is base-64-encoded because it has a " \
	"control character in it (a CR).\\x0d  By the way, you should really get out more.\n\n"

#define EX4_REC1 \
	"content ou=営業部,o=Airius @2\n" \
	"objectclass: top\nobjectclass: organizationalUnit\n" \
	"ou: 営業部\nou;lang-ja: 営業部\nou;lang-ja;phonetic: えいぎょうぶ\n" \
	"ou;lang-en: Sales\ndescription: Japanese office\n\n"
#define EX4_REC2 \
	"content uid=rogasawara,ou=営業部,o=Airius @15\n" \
	"userpassword: {SHA}O3HSv1MusyL4kTjP+HKI5uxuNoM=\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\nobjectclass: inetOrgPerson\n" \
	"uid: rogasawara\nmail: rogasawara@airius.co.jp\n" \
	"givenname;lang-ja: ロドニー\nsn;lang-ja: 小笠原\ncn;lang-ja: 小笠原 ロドニー\n" \
	"title;lang-ja: 営業部 部長\npreferredlanguage: ja\n" \
	"givenname: ロドニー\nsn: 小笠原\ncn: 小笠原 ロドニー\ntitle: 営業部 部長\n" \
	"givenname;lang-ja;phonetic: ろどにー\nsn;lang-ja;phonetic: おがさわら\n" \
	"cn;lang-ja;phonetic: おがさわら ろどにー\ntitle;lang-ja;phonetic: えいぎょうぶ ぶちょう\n" \
	"givenname;lang-en: Rodney\nsn;lang-en: Ogasawara\ncn;lang-en: Rodney Ogasawara\n" \
	"title;lang-en: Sales, Director\n\n"

#define EX5_HEAD \
	"content cn=Horatio Jensen, ou=Product Testing, dc=airius, dc=com @2\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n"
#define EX5 EX5_HEAD \
	"cn: Horatio Jensen\ncn: Horatio N Jensen\nsn: Jensen\nuid: hjensen\ntelephonenumber: +1 408 555 1212\n" \
	"jpegphoto: \xff\xd8\xff\\x00JFIF photo\n\n"

#define EX6_ADD \
	"add cn=Fiona Jensen, ou=Marketing, dc=airius, dc=com @3\n" \
	"objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n" \
	"cn: Fiona Jensen\nsn: Jensen\nuid: fiona\ntelephonenumber: +1 408 555 1212\n" \
	"jpegphoto: fiona\\x0a\n\n"
#define EX6_MID \
	"delete cn=Robert Jensen, ou=Marketing, dc=airius, dc=com @15\n\n" \
	"modrdn cn=Paul Jensen, ou=Product Development, dc=airius, dc=com @19\n" \
	"newrdn: cn=Paula Jensen\ndeleteoldrdn: 1\n\n" \
	"modrdn ou=PD Accountants, ou=Product Development, dc=airius, dc=com @26\n" \
	"newrdn: ou=Product Development Accountants\ndeleteoldrdn: 0\n" \
	"newsuperior: ou=Accounting, dc=airius, dc=com\n\n"
#define EX6_PAULA \
	"modify cn=Paula Jensen, ou=Product Development, dc=airius, dc=com @36\n" \
	"add postaladdress\n= 123 Anystreet $ Sunnyvale, CA $ 94086\n" \
	"delete description\n" \
	"replace telephonenumber\n= +1 408 555 1234\n= +1 408 555 5678\n" \
	"delete facsimiletelephonenumber\n= +1 408 555 9876\n\n"
#define EX6_INGRID(line) \
	"modify cn=Ingrid Jensen, ou=Product Support, dc=airius, dc=com @" line "\n" \
	"replace postaladdress\ndelete description\n\n"

/* How a case's input is read. */
typedef enum {
	M_DEFAULT,    /* default options: file URLs refused */
	M_URL_TMP,    /* the photo URLs point into a temporary url_base_dir holding them */
	M_URL_OUTSIDE /* file URLs allowed under a temporary dir, but the URLs point elsewhere */
} mode_t_;

typedef struct rfc_case {
	const char *label;   /* what the case shows */
	const char *file;    /* under ldif/rfc2849 */
	mode_t_ mode;        /* options */
	const char *want;    /* dump with lines and error positions */
} rfc_case_t;

static const rfc_case_t rfc_cases[] = {
	{ "example 1: two entries, version line", "example1.ldif", M_DEFAULT, EX1 },
	{ "example 2: no space after ':', folded value", "example2.ldif", M_DEFAULT,
	    "content cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com @2\n"
	    "objectclass: top\nobjectclass: person\nobjectclass: organizationalPerson\n"
	    "cn: Barbara Jensen\ncn: Barbara J Jensen\ncn: Babs Jensen\n"
	    "sn: Jensen\nuid: bjensen\ntelephonenumber: +1 408 555 1212\n"
	    "description: Babs is a big sailing fan, and travels extensively in search of perfect sailing "
	    "conditions.\n"
	    "title: Product Manager, Rod and Reel Division\n\n" },
	{ "example 3: base64 value with a CR", "example3.ldif", M_DEFAULT, EX3 },
	{ "example 4: base64 UTF-8 dn and values, options", "example4.ldif", M_DEFAULT, EX4_REC1 EX4_REC2 },
	{ "example 5: file url refused by default", "example5.ldif", M_DEFAULT, "error @11:13 rec 2\n" },
	{ "example 5: file url under url_base_dir", "example5.ldif", M_URL_TMP, EX5 },
	{ "example 5: file url outside url_base_dir", "example5.ldif", M_URL_OUTSIDE, "error @11:13 rec 2\n" },
	{ "example 6: change records, url refused by default", "example6.ldif", M_DEFAULT,
	    "error @12:13 rec 3\n" EX6_MID EX6_PAULA EX6_INGRID("56") },
	{ "example 6: change records, url allowed", "example6.ldif", M_URL_TMP,
	    EX6_ADD EX6_MID EX6_PAULA EX6_INGRID("56") },
	{ "example 7: control with criticality", "example7.ldif", M_DEFAULT,
	    "delete ou=Product Development, dc=airius, dc=com @6\ncontrol 1.2.840.113556.1.4.805 true\n\n" },
	/* The verbatim files keep the RFC's publication artefacts (EXPECTED.md):
	 * read literally they are broken, and a strict reader must say where,
	 * keep the records that are whole and go on. */
	{ "example 3 verbatim: unindented base64 continuation is a line without colon",
	    "example3.verbatim.ldif", M_DEFAULT, "error @12:1 rec 2\n" },
	{ "example 4 verbatim: wrapped comment text is a line without colon; entry 1 survives",
	    "example4.verbatim.ldif", M_DEFAULT, EX4_REC1 "error @43:1 rec 15\n" },
	{ "example 5 verbatim: blank line ends the entry early; the rest has no dn",
	    "example5.verbatim.ldif", M_URL_TMP,
	    EX5_HEAD "cn: Horatio Jensen\n\nerror @8:1 rec 8\n" },
	{ "example 6 verbatim: blank line after '-' cuts the modify; the rest has no dn",
	    "example6.verbatim.ldif", M_URL_TMP,
	    EX6_ADD EX6_MID
	    "modify cn=Paula Jensen, ou=Product Development, dc=airius, dc=com @36\n"
	    "add postaladdress\n= 123 Anystreet $ Sunnyvale, CA $ 94086\n\n"
	    "error @42:1 rec 42\n" EX6_INGRID("57") },
};

static void test_rfc_example(void **state)
{
	const rfc_case_t *c = *state;
	char path[512];
	size_t len;
	snprintf(path, sizeof path, "%s/rfc2849/%s", LDIF_DIR, c->file);
	char *text = read_file(path, &len);
	tmpdir_t t;
	tmpdir_make(&t);
	loom_ldif_opts_t o = { 0 };
	char *input = loom_strdup(text);
	if (c->mode != M_DEFAULT) {
		static const char photo[] = "\xff\xd8\xff\0JFIF photo";
		tmpdir_file(&t, "hjensen.jpg", photo, sizeof photo - 1);
		tmpdir_file(&t, "fiona.jpg", "fiona\n", 6);
		o.allow_file_urls = true;
		o.url_base_dir = t.path;
	}
	if (c->mode == M_URL_TMP) {
		char url[128];
		snprintf(url, sizeof url, "file://%s/", t.path);
		free(input);
		input = replace_all(text, "file:///usr/local/directory/photos/", url);
	}
	char *got = dump_mem(input, strlen(input), &o, D_LINES, NULL, NULL);
	check_dump(c->label, got, c->want);
	free(got);

	/* The same through an fd, and with CRLF line ends. */
	got = dump_path(path, &o, D_LINES, NULL, NULL);
	if (c->mode != M_URL_TMP)
		check_dump(c->label, got, c->want);
	free(got);
	char *crlf = replace_all(input, "\n", "\r\n");
	got = dump_mem(crlf, strlen(crlf), &o, D_LINES, NULL, NULL);
	check_dump(c->label, got, c->want);
	free(got);
	free(crlf);
	free(input);
	free(text);
	tmpdir_remove(&t);
}

/* ---- grammar corners ------------------------------------------------------- */

typedef struct parse_case {
	const char *label;   /* what the case shows */
	const char *input;   /* LDIF text */
	const char *want;    /* dump with lines */
} parse_case_t;

static const parse_case_t parse_cases[] = {
	{ "empty input", "", "" },
	{ "only comments and blank lines", "# a\n\n# b\n continued\n\n", "" },
	{ "version line alone", "version: 1\n", "" },
	{ "version, comment, blank line, record", "version: 1\n# c\n\ndn: cn=a\ncn: x\n",
	    "content cn=a @4\ncn: x\n\n" },
	{ "CRLF line ends, fold across CRLF",
	    "dn: cn=a\r\ncn: x\r\n y\r\nsn: z\r\n\r\ndn: cn=b\r\ncn: b\r\n",
	    "content cn=a @1\ncn: xy\nsn: z\n\ncontent cn=b @6\ncn: b\n\n" },
	{ "fold removes exactly one space", "dn: cn=a\ndescription: a\n  b\n c\n",
	    "content cn=a @1\ndescription: a bc\n\n" },
	{ "fold inside the dn and inside an attribute name", "dn: cn=fol\n ded\ndescr\n iption: v\n",
	    "content cn=folded @1\ndescription: v\n\n" },
	{ "trailing spaces of a plain value are kept", "dn: cn=a\ncn: x  \n", "content cn=a @1\ncn: x  \n\n" },
	{ "FILL is spaces only: a tab starts the value", "dn: cn=a\ncn:\t x\n", "content cn=a @1\ncn: \\x09 x\n\n" },
	{ "empty values, with and without FILL, and empty base64", "dn: cn=a\ncn:\ncn:   \nsn::\nsn:: \n",
	    "content cn=a @1\ncn: \ncn: \nsn: \nsn: \n\n" },
	{ "value may start with '<' or ':' after FILL (OpenLDAP test-dn.ldif)",
	    "dn: cn=a\nmember: <UID=x>\ndescription: :colon\n",
	    "content cn=a @1\nmember: <UID=x>\ndescription: :colon\n\n" },
	{ "values grouped in first-seen order, names compared without case",
	    "dn: cn=a\ncn: 1\nsn: 2\nCN: 3\nobjectClass: top\nsn: 4\n",
	    "content cn=a @1\ncn: 1\ncn: 3\nsn: 2\nsn: 4\nobjectClass: top\n\n" },
	{ "options are part of the description",
	    "dn: cn=a\ncn;lang-en: x\ncn: y\nCN;LANG-EN: z\n2.5.4.3: oid\n",
	    "content cn=a @1\ncn;lang-en: x\ncn;lang-en: z\ncn: y\n2.5.4.3: oid\n\n" },
	{ "comments anywhere; a folded comment is all comment",
	    "# c1\n continued\ndn: cn=a\n# c2\n cn: not an attribute\ncn: x\n#last\n",
	    "content cn=a @3\ncn: x\n\n" },
	{ "blank runs, whitespace-only lines between records, no final newline",
	    "\n\n \t\ndn: cn=a\ncn: x\n\n\n  \n\ndn: cn=b\ncn: y",
	    "content cn=a @4\ncn: x\n\ncontent cn=b @10\ncn: y\n\n" },
	{ "base64 dn and value with spaces", "dn:: Y249QmrDtnJuIEogSmVuc2Vu\ncn:: IEplbnNlbiA=\n",
	    "content cn=Björn J Jensen @1\ncn:  Jensen \n\n" },
	{ "base64 folded, trailing spaces ignored", "dn: cn=a\nx:: Zm9v\n YmFy  \n", "content cn=a @1\nx: foobar\n\n" },
	{ "base64 padding", "dn: cn=a\nx:: YQ==\nx:: YWI=\nx:: YWJj\nx::AAEC/w==\n",
	    "content cn=a @1\nx: a\nx: ab\nx: abc\nx: \\x00\\x01\\x02\xff\n\n" },
	{ "UTF-8 plain value", "dn: cn=a\nsn: Ströder\n", "content cn=a @1\nsn: Ströder\n\n" },
	{ "empty dn", "dn:\nobjectClass: top\n", "content  @1\nobjectClass: top\n\n" },
	{ "keywords without case", "DN: cn=a\nChangeType: ADD\ncn: x\n", "add cn=a @1\ncn: x\n\n" },
	{ "an attribute named version inside a record", "dn: cn=a\nversion: 3\n",
	    "content cn=a @1\nversion: 3\n\n" },
	{ "lone CR at the end", "dn: cn=a\ncn: x\r", "content cn=a @1\ncn: x\n\n" },
	{ "add, delete, moddn, modrdn with base64 rdn and superior",
	    "dn: cn=a\nchangetype: add\ncn: a\n\n"
	    "dn: cn=a\nchangetype: delete\n\n"
	    "dn: cn=a\nchangetype: moddn\nnewrdn: cn=b\ndeleteoldrdn: 0\nnewSuperior: ou=x\n\n"
	    "dn: cn=b\nchangetype: modrdn\nnewrdn:: Y249QmrDtnJu\ndeleteoldrdn: 1\nnewsuperior:: b3U9w7w=\n",
	    "add cn=a @1\ncn: a\n\n"
	    "delete cn=a @5\n\n"
	    "modrdn cn=a @8\nnewrdn: cn=b\ndeleteoldrdn: 0\nnewsuperior: ou=x\n\n"
	    "modrdn cn=b @14\nnewrdn: cn=Björn\ndeleteoldrdn: 1\nnewsuperior: ou=ü\n\n" },
	{ "modify: every op, empty sequence, no trailing '-', value that looks like a dash",
	    "dn: cn=a\nchangetype: modify\nADD: cn\ncn: x\ncn: - 0\n-\ndelete: sn\n-\nreplace: mail\n-\n"
	    "increment: uidNumber\nuidNumber: 5\n-\nreplace: cn;lang-en\nCN;lang-en: y\n\n"
	    "dn: cn=b\nchangetype: modify\n# nothing\n",
	    "modify cn=a @1\nadd cn\n= x\n= - 0\ndelete sn\nreplace mail\nincrement uidNumber\n= 5\n"
	    "replace cn;lang-en\n= y\n\n"
	    "modify cn=b @17\n\n" },
	{ "controls in every form",
	    "dn: cn=a\ncontrol: 1.2.3\ncontrol: 1.2.4 true\ncontrol: 1.2.5 false: plain value\n"
	    "control: 1.2.6 TRUE:: dGVzdA==\ncontrol: 1.2.7: no criticality\ncontrol: 1.2.8 true:\n"
	    "control: 1.2.9 false::\n  dGVzdA==\nchangetype: delete\n",
	    "delete cn=a @1\ncontrol 1.2.3 false\ncontrol 1.2.4 true\ncontrol 1.2.5 false = plain value\n"
	    "control 1.2.6 true = test\ncontrol 1.2.7 false = no criticality\ncontrol 1.2.8 true = \n"
	    "control 1.2.9 false = test\n\n" },
	{ "content and change records mixed, record by record",
	    "dn: cn=a\ncn: a\n\ndn: cn=b\nchangetype: modify\nadd: cn\ncn: b\n-\n\ndn: cn=c\ncn: c\n",
	    "content cn=a @1\ncn: a\n\nmodify cn=b @4\nadd cn\n= b\n\ncontent cn=c @10\ncn: c\n\n" },
};

static void test_parse_case(void **state)
{
	const parse_case_t *c = *state;
	char *got = dump_mem(c->input, strlen(c->input), NULL, D_LINES, NULL, NULL);
	check_dump(c->label, got, c->want);
	free(got);
}

/* ---- errors ---------------------------------------------------------------- */

typedef struct error_case {
	const char *label;   /* what the case shows */
	const char *input;   /* LDIF text (len bytes when len != 0) */
	size_t len;          /* for inputs with NUL bytes */
	const char *want;    /* dump with lines and error positions */
	const char *message; /* the error message wanted */
} error_case_t;

#define GOOD "dn: cn=ok\ncn: ok\n"
#define GOOD_DUMP(line) "content cn=ok @" #line "\ncn: ok\n\n"

static const error_case_t error_cases[] = {
	{ "unknown changetype", "dn: cn=a\nchangetype: rename\n", 0, "error @2:13 rec 1\n",
	    "unknown changetype 'rename': expected add, delete, modify, modrdn or moddn" },
	{ "missing dn", "cn: x\n", 0, "error @1:1 rec 1\n",
	    "record without dn: expected 'dn:' as its first line, got 'cn:'" },
	{ "changetype before dn (ldif3 strict)", "changetype: add\ndn: cn=a\n", 0, "error @1:1 rec 1\n",
	    "record without dn: expected 'dn:' as its first line, got 'changetype:'" },
	{ "attribute line without colon", "dn: cn=a\ncn x\n", 0, "error @2:1 rec 1\n",
	    "line without colon 'cn x': expected 'attribute: value'" },
	{ "bad character in attribute description", "dn: cn=a\nc n: x\n", 0, "error @2:2 rec 1\n",
	    "bad attribute description 'c': unexpected ' ', expected letters, digits, '-', '.' or ';' up to "
	    "the colon" },
	{ "empty option", "dn: cn=a\ncn;: x\n", 0, "error @2:3 rec 1\n",
	    "bad attribute description 'cn;': expected a name starting with a letter or digit and non-empty "
	    "';' options" },
	{ "bad deleteoldrdn", "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: yes\n", 0,
	    "error @4:15 rec 1\n", "bad deleteoldrdn 'yes': expected 0 or 1" },
	{ "modrdn without newrdn", "dn: cn=a\nchangetype: modrdn\ndeleteoldrdn: 1\n", 0, "error @2:1 rec 1\n",
	    "modrdn record without newrdn: expected 'newrdn:' after the changetype line" },
	{ "modrdn without deleteoldrdn", "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\n", 0,
	    "error @2:1 rec 1\n",
	    "modrdn record without deleteoldrdn: expected 'deleteoldrdn: 0' or 'deleteoldrdn: 1'" },
	{ "unexpected line in modrdn", "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ncn: x\n", 0,
	    "error @4:1 rec 1\n",
	    "unexpected 'cn:' line in a modrdn record: expected newrdn, deleteoldrdn or newsuperior" },
	{ "modify attribute mismatch", "dn: cn=a\nchangetype: modify\nadd: cn\nsn: x\n-\n", 0,
	    "error @4:1 rec 1\n", "attribute 'sn' in mod-spec 'add: cn': expected 'cn' values or '-'" },
	{ "modify: next op without '-'", "dn: cn=a\nchangetype: modify\nadd: cn\ncn: x\ndelete: sn\n", 0,
	    "error @5:1 rec 1\n", "attribute 'delete' in mod-spec 'add: cn': expected 'cn' values or '-'" },
	{ "modify: unknown op", "dn: cn=a\nchangetype: modify\nrename: cn\n", 0, "error @3:1 rec 1\n",
	    "bad modify operation 'rename': expected add, delete, replace or increment" },
	{ "modify: '-' without op", "dn: cn=a\nchangetype: modify\n-\n", 0, "error @3:1 rec 1\n",
	    "unexpected '-': expected 'add:', 'delete:', 'replace:' or 'increment:'" },
	{ "modify: base64 attribute in op line", "dn: cn=a\nchangetype: modify\nadd:: Y24=\n", 0,
	    "error @3:5 rec 1\n", "bad mod-spec 'add': expected 'add: attribute'" },
	{ "increment without a value", "dn: cn=a\nchangetype: modify\nincrement: uidNumber\n-\n", 0,
	    "error @3:1 rec 1\n", "bad increment of 'uidNumber': 0 values, expected exactly one" },
	{ "bad base64 names its column", "dn: cn=a\ncn:: Zm9v!mFy\n", 0, "error @2:10 rec 1\n",
	    "bad base64 value for 'cn': unexpected '!', expected A-Z a-z 0-9 + / or = padding" },
	{ "bad base64 on a continuation line", "dn: cn=a\ncn:: Zm9v\n Ym$y\n", 0, "error @3:4 rec 1\n",
	    "bad base64 value for 'cn': unexpected '$', expected A-Z a-z 0-9 + / or = padding" },
	{ "base64 (go-ldap XXX-U29tZSBPbmU=)", "dn: cn=a\nsn:: XXX-U29tZSBPbmU=\n", 0, "error @2:9 rec 1\n",
	    "bad base64 value for 'sn': unexpected '-', expected A-Z a-z 0-9 + / or = padding" },
	{ "base64 length", "dn: cn=a\ncn:: Zm9vY\n", 0, "error @2:11 rec 1\n",
	    "bad base64 value for 'cn': 5 characters, expected a multiple of 4" },
	{ "base64 padding in the middle", "dn: cn=a\ncn:: Zm==Zm9v\n", 0, "error @2:8 rec 1\n",
	    "bad base64 value for 'cn': misplaced '=', expected padding only at the end" },
	{ "bad base64 dn", "dn:: !!!!\ncn: x\n", 0, "error @1:6 rec 1\n",
	    "bad base64 value for 'dn': unexpected '!', expected A-Z a-z 0-9 + / or = padding" },
	{ "version other than 1", "version: 2\ndn: cn=a\ncn: x\n", 0, "error @1:10 rec 1\n",
	    "unsupported ldif version '2': expected 1" },
	{ "version not at the start (go-ldap)", GOOD "\nversion: 1\ndn: cn=b\ncn: y\n", 0,
	    GOOD_DUMP(1) "error @4:1 rec 4\n",
	    "unexpected version line: 'version:' is allowed only as the first line of the file, expected 'dn:'" },
	{ "continuation with nothing to continue", "\n x\n", 0, "error @2:1 rec 2\n",
	    "continuation line with nothing to continue: expected a line that does not start with a space" },
	{ "second dn in a record (ldif3 strict)", "dn: cn=a\ncn: x\ndn: cn=b\n", 0, "error @3:1 rec 1\n",
	    "unexpected 'dn:' line among attributes: expected 'attribute: value' (a new record needs a blank "
	    "line before it)" },
	{ "second changetype (ldif3 strict)", "dn: cn=a\nchangetype: add\nchangetype: add\ncn: x\n", 0,
	    "error @3:1 rec 1\n",
	    "unexpected 'changetype:' line among attributes: expected 'attribute: value' (a new record needs a "
	    "blank line before it)" },
	{ "line after delete", "dn: cn=a\nchangetype: delete\ncn: x\n", 0, "error @3:1 rec 1\n",
	    "unexpected line after 'changetype: delete': expected a blank line" },
	{ "control after changetype", "dn: cn=a\nchangetype: add\ncontrol: 1.2.3\n", 0, "error @3:1 rec 1\n",
	    "unexpected 'control:' line among attributes: expected 'attribute: value' (a new record needs a "
	    "blank line before it)" },
	{ "control without changetype", "dn: cn=a\ncontrol: 1.2.3 true\ncn: x\n", 0, "error @3:1 rec 1\n",
	    "unexpected 'cn:' line after control lines: expected 'changetype:'" },
	{ "control at the end of a record", "dn: cn=a\ncontrol: 1.2.3 true\n", 0, "error @2:1 rec 1\n",
	    "control lines without a changetype: expected 'changetype:' after them" },
	{ "bad control oid", "dn: cn=a\ncontrol: foo\nchangetype: delete\n", 0, "error @2:10 rec 1\n",
	    "bad control oid 'foo': expected a numeric oid such as 1.2.840.113556.1.4.805" },
	{ "bad control criticality", "dn: cn=a\ncontrol: 1.2.3 maybe\nchangetype: delete\n", 0,
	    "error @2:16 rec 1\n", "bad control line: unexpected 'maybe', expected 'true', 'false' or ': value'" },
	{ "entry without attributes", "dn: cn=a\n", 0, "error @1:1 rec 1\n",
	    "entry without attributes: expected 'attribute: value' lines or 'changetype:' after the dn" },
	{ "add without attributes", "dn: cn=a\nchangetype: add\n", 0, "error @2:1 rec 1\n",
	    "add record without attributes: expected 'attribute: value' lines after 'changetype: add'" },
	{ "NUL in a plain value", "dn: cn=a\ncn: a\0b\n", 17, "error @2:6 rec 1\n",
	    "bad value for 'cn': a NUL byte is not allowed in a plain value, expected base64 ('::')" },
	{ "lone CR in a plain value (SAFE-CHAR)", "dn: cn=a\ncn: asd\r\t\n", 0, "error @2:8 rec 1\n",
	    "bad value for 'cn': a carriage return is not allowed in a plain value, expected base64 ('::')" },
	{ "dn as a url", "dn:< file:///x\ncn: x\n", 0, "error @1:4 rec 1\n",
	    "bad dn: a url is not allowed, expected 'dn:' or 'dn::'" },
	{ "url scheme other than file", "dn: cn=a\ncn:< http://example.com/x\n", 0, "error @2:6 rec 1\n",
	    "unsupported url 'http://example.com/x' for 'cn': expected a file:// url" },
	{ "file url refused by default", "dn: cn=a\ncn:<file:///etc/hostname\n", 0, "error @2:5 rec 1\n",
	    "file url refused 'file:///etc/hostname' for 'cn': file urls are not allowed (allow_file_urls)" },
	{ "empty newrdn", "dn: cn=a\nchangetype: modrdn\nnewrdn:\ndeleteoldrdn: 1\n", 0, "error @3:8 rec 1\n",
	    "bad newrdn: empty, expected an RDN such as 'cn=x'" },
	{ "long subject is cut", "dn: cn=a\nchangetype: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    0, "error @2:13 rec 1\n",
	    "unknown changetype 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': expected add, delete, "
	    "modify, modrdn or moddn" },
	{ "non-printable subject is escaped", "dn: cn=a\nchangetype: \x01\xff\n", 0, "error @2:13 rec 1\n",
	    "unknown changetype '\\x01\\xff': expected add, delete, modify, modrdn or moddn" },
};

static void test_error_case(void **state)
{
	const error_case_t *c = *state;
	size_t len = c->len ? c->len : strlen(c->input);
	char *got = dump_mem(c->input, len, NULL, D_LINES, NULL, NULL);
	check_dump(c->label, got, c->want);
	free(got);

	/* The message, and a good record after the bad one is still read. */
	loom_buf_t in = LOOM_BUF_INIT;
	loom_buf_add(&in, c->input, len);
	loom_buf_adds(&in, "\n\n" GOOD);
	loom_ldif_reader_t *r = loom_ldif_reader_new_mem(in.data, in.len, NULL);
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	int rc, nerr = 0, nrec = 0;
	const char *last_dn = NULL;
	while ((rc = loom_ldif_read(r, &rec, &err)) != 0) {
		if (rc > 0) {
			nrec++;
			last_dn = rec.dn;
			continue;
		}
		if (nerr++ == 0 && strcmp(err.message, c->message) != 0)
			fail_msg("case '%s': message\n  '%s'\nwant\n  '%s'", c->label, err.message, c->message);
		assert_false(err.fatal);
	}
	assert_int_equal(nerr, 1);
	assert_non_null(last_dn);
	assert_string_equal(last_dn, "cn=ok");
	loom_ldif_reader_destroy(&r);
	loom_buf_release(&in);
}

static void test_recovery(void **state)
{
	(void)state;
	static const char in[] =
	    "version: 1\n"
	    "dn: cn=one\ncn: one\n\n"
	    "dn: cn=bad1\nchangetype: rename\ncn: x\n\n\n"
	    "dn: cn=two\ncn: two\n\n"
	    "dn: cn=bad2\ncn: x\nno colon here\n folded\ncn: y\n\n"
	    "dn: cn=three\nchangetype: modify\nadd: cn\ncn: 3\n-\n\n"
	    "cn: no dn\n\n"
	    "dn: cn=four\ncn: four";
	char *got = dump_mem(in, sizeof in - 1, NULL, D_LINES | D_MSGS, NULL, NULL);
	check_dump("recovery", got,
	    "content cn=one @2\ncn: one\n\n"
	    "error @6:13 rec 5: unknown changetype 'rename': expected add, delete, modify, modrdn or moddn\n"
	    "content cn=two @10\ncn: two\n\n"
	    "error @15:1 rec 13: line without colon 'no colon herefolded': expected 'attribute: value'\n"
	    "modify cn=three @19\nadd cn\n= 3\n\n"
	    "error @25:1 rec 25: record without dn: expected 'dn:' as its first line, got 'cn:'\n"
	    "content cn=four @27\ncn: four\n\n");
	free(got);
}

static void test_validate_utf8_dn(void **state)
{
	(void)state;
	/* ldif3 test_parse_attr_dn_non_utf8: "dn: uid=ko\xb3obizness@w" */
	static const char in[] = "dn: uid=ko\xb3obizness@w\ncn: x\n\n"
	    "dn:: dWlkPWtvs29iaXpuZXNzQHc=\ncn: x\n\n"
	    "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=\xc3\x28\ndeleteoldrdn: 1\n\n"
	    "dn: cn=Björn\ncn: x\n";
	loom_ldif_opts_t o = { .validate_utf8_dn = true };
	char *got = dump_mem(in, sizeof in - 1, &o, D_LINES | D_MSGS, NULL, NULL);
	check_dump("utf8 dn", got,
	    "error @1:11 rec 1: bad dn: not valid UTF-8 at byte 7\n"
	    "error @4:6 rec 4: bad dn: not valid UTF-8 at byte 7\n"
	    "error @9:12 rec 7: bad newrdn: not valid UTF-8 at byte 4\n"
	    "content cn=Björn @12\ncn: x\n\n");
	free(got);
	size_t nrec, nerr;
	got = dump_mem(in, sizeof in - 1, NULL, 0, &nrec, &nerr);
	assert_int_equal(nrec, 4);
	assert_int_equal(nerr, 0);
	free(got);
}

/* ---- file URLs ------------------------------------------------------------- */

static void test_file_urls(void **state)
{
	(void)state;
	tmpdir_t t, outside;
	tmpdir_make(&t);
	tmpdir_make(&outside);
	const char *secret = tmpdir_file(&outside, "secret", "secret", 6);
	tmpdir_file(&t, "a b.txt", "spaced", 6);
	tmpdir_file(&t, "big", "0123456789", 10);
	tmpdir_link(&t, "escape", secret);
	char sub[128];
	snprintf(sub, sizeof sub, "%s/sub", t.path);
	assert_int_equal(mkdir(sub, 0700), 0);

	loom_buf_t in = LOOM_BUF_INIT;
	loom_buf_printf(&in, "dn: cn=1\ncn:< file://%s/a%%20b.txt\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=2\ncn:< file://localhost%s/a%%20b.txt\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=3\ncn:< file://%s/sub/../a%%20b.txt\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=4\ncn:< file://%s\n\n", secret);
	loom_buf_printf(&in, "dn: cn=5\ncn:< file://%s/escape\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=6\ncn:< file://%s/missing\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=7\ncn:< file://%s/sub\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=8\ncn:< file://otherhost%s/big\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=9\ncn:< file://%s/%%00\n\n", t.path);
	loom_buf_printf(&in, "dn: cn=10\ncontrol: 1.2.3 true:< file://%s/big\nchangetype: delete\n\n", t.path);

	loom_ldif_opts_t o = { .allow_file_urls = true, .url_base_dir = t.path };
	char *got = dump_mem(in.data, in.len, &o, 0, NULL, NULL);
	loom_buf_t want = LOOM_BUF_INIT;
	loom_buf_printf(&want, "content cn=1\ncn: spaced\n\ncontent cn=2\ncn: spaced\n\n"
	    "error @8:6 rec 7\nerror @11:6 rec 10\nerror @14:6 rec 13\nerror @17:6 rec 16\n"
	    "error @20:6 rec 19\nerror @23:6 rec 22\nerror @26:%zu rec 25\n"
	    "delete cn=10\ncontrol 1.2.3 true = 0123456789\n\n", 6 + strlen("file://") + strlen(t.path) + 1);
	check_dump("file urls", got, want.data);
	free(got);

	/* Messages say why. */
	static const char *const why[] = { "'..' is not allowed in the path", "not under url_base_dir",
		"not under url_base_dir", "No such file or directory", "not a regular file",
		"expected file:///path or file://localhost/path", "bad %-escape" };
	loom_ldif_reader_t *r = loom_ldif_reader_new_mem(in.data, in.len, &o);
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	size_t k = 0;
	int rc;
	while ((rc = loom_ldif_read(r, &rec, &err)) != 0)
		if (rc < 0) {
			assert_true(k < N_ELEMS(why));
			if (strstr(err.message, why[k]) == NULL)
				fail_msg("url error %zu: '%s' does not say '%s'", k, err.message, why[k]);
			k++;
		}
	assert_int_equal(k, N_ELEMS(why));
	loom_ldif_reader_destroy(&r);

	/* Not allowed at all, no base dir, file bigger than max_record. */
	loom_buf_reset(&in);
	loom_buf_printf(&in, "dn: cn=1\ncn:< file://%s/big\n", t.path);
	loom_ldif_opts_t o2 = { .allow_file_urls = true };
	got = dump_mem(in.data, in.len, &o2, D_MSGS, NULL, NULL);
	assert_non_null(strstr(got, "no url_base_dir set"));
	free(got);
	loom_ldif_opts_t o3 = { .allow_file_urls = true, .url_base_dir = t.path, .max_record = in.len + 5 };
	got = dump_mem(in.data, in.len, &o3, D_MSGS, NULL, NULL);
	assert_non_null(strstr(got, "make the record larger than max_record"));
	free(got);
	loom_ldif_opts_t o4 = { .url_base_dir = t.path };
	got = dump_mem(in.data, in.len, &o4, D_MSGS, NULL, NULL);
	assert_non_null(strstr(got, "file urls are not allowed"));
	free(got);
	loom_ldif_opts_t o5 = { .allow_file_urls = true, .url_base_dir = "/nonexistent/loom" };
	got = dump_mem(in.data, in.len, &o5, D_MSGS, NULL, NULL);
	assert_non_null(strstr(got, "cannot resolve url_base_dir '/nonexistent/loom'"));
	free(got);

	loom_buf_release(&want);
	loom_buf_release(&in);
	rmdir(sub);
	tmpdir_remove(&t);
	tmpdir_remove(&outside);
}

/* ---- transcribed oracles --------------------------------------------------- */

/* python-ldap Tests/t_ldif.py: entries as [dn, {attr: [values]}], change
 * records as [dn, [[op, attr, values|null]], null]. */
static void check_python_record(const char *label, const loom_ldif_record_t *rec, const json_t *want,
    bool change, const json_t *ignored)
{
	assert_true(want->type == J_ARR && want->len >= 2);
	assert_string_equal(rec->dn, want->items[0].str);
	if (!change) {
		assert_int_equal(rec->kind, LOOM_LDIF_CONTENT);
		const json_t *attrs = &want->items[1];
		size_t kept = 0;
		for (size_t i = 0; i < rec->nattrs; i++) {
			bool skip = false;
			for (size_t k = 0; ignored && k < ignored->len; k++)
				skip |= strcasecmp(ignored->items[k].str, rec->attrs[i].name) == 0;
			if (skip)
				continue;
			kept++;
			const json_t *vals = j_get(attrs, rec->attrs[i].name);
			if (vals == NULL)
				fail_msg("case '%s': unexpected attribute '%s'", label, rec->attrs[i].name);
			assert_int_equal(rec->attrs[i].n, vals->len);
			for (size_t k = 0; k < vals->len; k++)
				check_value(label, &rec->attrs[i].v[k], &vals->items[k]);
		}
		assert_int_equal(kept, attrs->len);
		return;
	}
	static const char *const ops[] = { "MOD_ADD", "MOD_DELETE", "MOD_REPLACE", "MOD_INCREMENT" };
	assert_int_equal(rec->kind, LOOM_LDIF_MODIFY);
	const json_t *mods = &want->items[1];
	assert_int_equal(rec->nmods, mods->len);
	for (size_t i = 0; i < mods->len; i++) {
		const json_t *m = &mods->items[i];
		assert_string_equal(ops[rec->mods[i].op], m->items[0].str);
		assert_string_equal(rec->mods[i].attr.name, m->items[1].str);
		const json_t *vals = &m->items[2];
		if (vals->type == J_NULL) {
			assert_int_equal(rec->mods[i].attr.n, 0);
			continue;
		}
		assert_int_equal(rec->mods[i].attr.n, vals->len);
		for (size_t k = 0; k < vals->len; k++)
			check_value(label, &rec->mods[i].attr.v[k], &vals->items[k]);
	}
	assert_int_equal(rec->ncontrols, 0);
}

static void test_python_ldap_oracles(void **state)
{
	(void)state;
	json_t *cases = j_load("python-ldap-t_ldif.cases.json");
	assert_int_equal(cases->type, J_ARR);
	assert_int_equal(cases->len, 24);
	for (size_t i = 0; i < cases->len; i++) {
		const json_t *c = &cases->items[i];
		const char *label = j_str(c, "source");
		const json_t *input = j_get(c, "input");
		const json_t *opts = j_get(c, "options");
		const json_t *want = j_get(c, "expected_records");
		const json_t *max = j_get(opts, "max_entries");
		bool change = strcmp(j_str(c, "record_type"), "change") == 0;
		loom_ldif_reader_t *r = loom_ldif_reader_new_mem(input->str, input->len, NULL);
		loom_ldif_record_t rec;
		loom_ldif_error_t err;
		size_t n = 0, nerr = 0;
		int rc;
		while ((rc = loom_ldif_read(r, &rec, &err)) != 0) {
			if (rc < 0) {
				nerr++;
				continue;
			}
			if (max && n >= (size_t)max->num)
				break;
			assert_non_null(want);
			if (n >= want->len)
				fail_msg("case '%s': more records than expected", label);
			check_python_record(label, &rec, &want->items[n], change, j_get(opts, "ignored_attr_types"));
			n++;
		}
		if (j_get(c, "expected_error")) {
			if (nerr == 0)
				fail_msg("case '%s': expected an error", label);
		} else {
			if (nerr != 0)
				fail_msg("case '%s': %zu errors, first '%s'", label, nerr, err.message);
			assert_int_equal(n, want->len);
		}
		loom_ldif_reader_destroy(&r);
	}
	j_destroy(&cases);
}

/* go-ldap/ldif ldif_test.go: the JSON gives inputs and ok/error, the prose
 * expectations are written out here as dumps. */
typedef struct go_case {
	const char *source;   /* "source" of the JSON case */
	const char *want;     /* dump (no lines) */
} go_case_t;

static const go_case_t go_cases[] = {
	{ "ldif_test.go:TestLDIFParseRFC2849Example / TestUnmarshalEntries", NULL /* = example 1 */ },
	{ "ldif_test.go:TestLDIFParseEmptyAttr", "content uid=someone,dc=example,dc=org\ncn: \ncn: Some User\n\n" },
	{ "ldif_test.go:TestLDIFChangeTypeNotLeaked",
	    "add cn=a,dc=example,dc=org\ncn: a\n\ncontent cn=b,dc=example,dc=org\ncn: b\nsn: b\n\n" },
	{ "ldif_test.go:TestLDIFParseMissingDN", "error @1:1 rec 1\n" },
	{ "ldif_test.go:TestLDIFContinuation",
	    "content uid=someone,dc=example,dc=org\nsn: Some One\ncn: Someone\n\n" },
	{ "ldif_test.go:TestLDIFBase64", "content uid=someone,dc=example,dc=org\nsn: Some One\n\n" },
	{ "ldif_test.go:TestLDIFBase64Broken", "error @2:9 rec 1\n" },
	{ "ldif_test.go:TestLDIFTrailingBlank", "content uid=someone,dc=example,dc=org\nsn: Some One\n\n" },
	{ "ldif_test.go:TestLDIFComments", "content uid=someone,dc=example,dc=org\nsn: someone\n\n" },
	{ "ldif_test.go:TestLDIFNoSpace", "content uid=someone,dc=example,dc=org\nsn: someone\n\n" },
	{ "ldif_test.go:TestLDIFMultiSpace", "content uid=someone,dc=example,dc=org\nsn: someone\n\n" },
	{ "ldif_test.go:TestLDIFMultiBlankLines",
	    "content ou=users,dc=example,dc=com\nobjectClass: organizationalUnit\nobjectClass: top\nou: users\n\n"
	    "content ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nobjectClass: top\n"
	    "ou: groups\n\n" },
	{ "ldif_test.go:TestLDIFLeadingTrailingBlankLines",
	    "content ou=users,dc=example,dc=com\nobjectClass: organizationalUnit\nobjectClass: top\n"
	    "ou: users\n\n" },
	{ "ldif_test.go:TestLDIFVersionOnSecond", NULL /* = example 1 record 1, then an error */ },
	{ "ldif_test.go:TestParseModify",
	    "modify uid=someone,ou=people,dc=example,dc=org\nadd givenName\n= Some1\n= Some2\ndelete mail\n"
	    "delete telephoneNumber\n= 123 456 789 - 0\nreplace sn\n= One\n\n" },
	{ "ldif_test.go:TestLDIFParseZeroLengthValue \"no fill\"",
	    "content uid=someone,dc=example,dc=org\nseeAlso: \nsn: Some One\n\n" },
	{ "ldif_test.go:TestLDIFParseZeroLengthValue \"with fill\"",
	    "content uid=someone,dc=example,dc=org\nseeAlso: \nsn: Some One\n\n" },
	{ "ldif_test.go:TestLDIFURL", "content uid=someone,dc=example,dc=org\ndescription: TEST\\x0a\n\n" },
};

/* Removes " @N" from the first line of each record in a dump. */
static char *strip_lines(const char *d)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "");
	bool head = true;
	for (const char *p = d; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		const char *at = NULL;
		for (size_t i = 0; head && i < n; i++)
			if (p[i] == '@')
				at = p + i;
		if (at && strncmp(p, "error", 5) != 0) {
			loom_buf_add(&b, p, (size_t)(at - 1 - p));
			loom_buf_addc(&b, '\n');
		} else {
			loom_buf_add(&b, p, n);
		}
		head = n == 1 || strncmp(p, "error", 5) == 0;
		p += n;
	}
	return loom_buf_steal(&b);
}

static void test_go_ldap_oracles(void **state)
{
	(void)state;
	json_t *cases = j_load("go-ldap-ldif.cases.json");
	assert_int_equal(cases->len, N_ELEMS(go_cases));
	tmpdir_t t;
	tmpdir_make(&t);
	const char *tmpfile = tmpdir_file(&t, "url", "TEST\n", 5);
	char *ex1 = strip_lines(EX1);
	char *ex1_rec1 = strip_lines(EX1_REC1 "description: A big sailing fan.\n\n");
	for (size_t i = 0; i < cases->len; i++) {
		const json_t *c = &cases->items[i];
		const char *source = j_str(c, "source");
		const go_case_t *g = NULL;
		for (size_t k = 0; k < N_ELEMS(go_cases); k++)
			if (strcmp(go_cases[k].source, source) == 0)
				g = &go_cases[k];
		if (g == NULL)
			fail_msg("go case '%s' has no expectation", source);
		char url[128];
		snprintf(url, sizeof url, "file://%s", tmpfile);
		char *input = replace_all(j_str(c, "input"), "file:///<TMPFILE>", url);
		loom_ldif_opts_t o = { .allow_file_urls = true, .url_base_dir = t.path };
		size_t nrec, nerr;
		char *got = dump_mem(input, strlen(input), &o, 0, &nrec, &nerr);
		bool ok = strcmp(j_str(c, "expect"), "ok") == 0;
		if (ok ? nerr != 0 : nerr == 0)
			fail_msg("go case '%s': %zu errors, expect %s:\n%s", source, nerr, j_str(c, "expect"), got);
		const char *want = g->want;
		loom_buf_t w = LOOM_BUF_INIT;
		if (want == NULL && ok) {
			want = ex1;
		} else if (want == NULL) {
			loom_buf_adds(&w, ex1_rec1);
			loom_buf_adds(&w, "error @13:1 rec 13\n");
			want = w.data;
		}
		check_dump(source, got, want);
		loom_buf_release(&w);
		free(got);
		free(input);
	}
	free(ex1);
	free(ex1_rec1);
	tmpdir_remove(&t);
	j_destroy(&cases);
}

/* xi/ldif3 tests.py: parser cases (the writer ones are in test_writer_oracles). */
static void test_ldif3_oracles(void **state)
{
	(void)state;
	json_t *cases = j_load("ldif3.cases.json");
	loom_buf_t b = LOOM_BUF_INIT;

	/* test_parse: dns and records (attribute order free). */
	const json_t *c0 = &cases->items[0];
	const json_t *input = j_get(c0, "input");
	const json_t *dns = j_get(c0, "expected_dns");
	const json_t *recs = j_get(c0, "expected_records");
	loom_ldif_reader_t *r = loom_ldif_reader_new_mem(input->str, input->len, NULL);
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	for (size_t i = 0; i < dns->len; i++) {
		assert_int_equal(loom_ldif_read(r, &rec, &err), 1);
		assert_string_equal(rec.dn, dns->items[i].str);
		const json_t *want = &recs->items[i];
		assert_int_equal(rec.nattrs, want->len);
		for (size_t k = 0; k < rec.nattrs; k++) {
			const json_t *vals = j_get(want, rec.attrs[k].name);
			assert_non_null(vals);
			assert_int_equal(rec.attrs[k].n, vals->len);
			for (size_t v = 0; v < vals->len; v++)
				check_value("ldif3 test_parse", &rec.attrs[k].v[v], &vals->items[v]);
		}
	}
	assert_int_equal(loom_ldif_read(r, &rec, &err), 0);
	loom_ldif_reader_destroy(&r);

	/* test_iter_blocks_with_additional_spaces: same records as above. */
	char *d0 = dump_mem(input->str, input->len, NULL, 0, NULL, NULL);
	input = j_get(&cases->items[1], "input");
	char *d1 = dump_mem(input->str, input->len, NULL, 0, NULL, NULL);
	check_dump("ldif3 additional spaces", d1, d0);
	free(d0);
	free(d1);

	/* Empty attribute value. */
	input = j_get(&cases->items[2], "input");
	d0 = dump_mem(input->str, input->len, NULL, 0, NULL, NULL);
	assert_non_null(strstr(d0, "aliases: \naliases: foo.bar\n"));
	free(d0);

	/* test_parse_binary: no trailing newline, binary value. */
	const json_t *c3 = &cases->items[3];
	input = j_get(c3, "input");
	r = loom_ldif_reader_new_mem(input->str, input->len, NULL);
	assert_int_equal(loom_ldif_read(r, &rec, &err), 1);
	const json_t *want = &j_get(c3, "expected_records")->items[0];
	assert_string_equal(rec.dn, want->items[0].str);
	assert_int_equal(rec.nattrs, 2);
	for (size_t k = 0; k < rec.nattrs; k++) {
		const json_t *vals = j_get(&want->items[1], rec.attrs[k].name);
		assert_non_null(vals);
		assert_int_equal(rec.attrs[k].n, 1);
		check_value("ldif3 binary", &rec.attrs[k].v[0], &vals->items[0]);
	}
	loom_ldif_reader_destroy(&r);

	/* test_parse_attr_base64: one line inside a record. */
	loom_buf_reset(&b);
	loom_buf_adds(&b, "dn: cn=x\n");
	loom_buf_adds(&b, j_str(&cases->items[4], "input_line"));
	d0 = dump_mem(b.data, b.len, NULL, 0, NULL, NULL);
	check_dump("ldif3 attr base64", d0, "content cn=x\nfoo: a\\x0ab\\x0ac\n\n");
	free(d0);

	/* test_parse_attr_dn_non_utf8: an error when asked (strict), else kept. */
	const char *hex = j_str(&cases->items[5], "input_line_hex");
	loom_buf_reset(&b);
	for (size_t i = 0; hex[i]; i += 2) {
		char h[3] = { hex[i], hex[i + 1], 0 };
		loom_buf_addc(&b, (char)strtoul(h, NULL, 16));
	}
	loom_buf_adds(&b, "cn: x\n");
	loom_ldif_opts_t strict = { .validate_utf8_dn = true };
	size_t nrec, nerr;
	d0 = dump_mem(b.data, b.len, &strict, 0, &nrec, &nerr);
	assert_int_equal(nerr, 1);
	assert_int_equal(nrec, 0);
	free(d0);
	d0 = dump_mem(b.data, b.len, NULL, 0, &nrec, &nerr);
	assert_int_equal(nerr, 0);
	assert_int_equal(nrec, 1);
	free(d0);

	/* test_strip_line_sep: only LF or CRLF ends a line. As LDIF values (after
	 * "a: "), leading spaces are FILL, and a CR inside a plain value is
	 * refused (SAFE-CHAR), where ldif3 keeps it. */
	static const char *const strip_want[] = {
		"asd ", "asd\\x09", "asd", NULL, "asd", "asd", "asd  ",
	};
	const json_t *pairs = j_get(&cases->items[9], "expected_pairs");
	assert_int_equal(pairs->len, N_ELEMS(strip_want));
	for (size_t i = 0; i < pairs->len; i++) {
		loom_buf_reset(&b);
		loom_buf_adds(&b, "dn: cn=x\na: ");
		loom_buf_adds(&b, pairs->items[i].items[0].str);
		d0 = dump_mem(b.data, b.len, NULL, 0, &nrec, &nerr);
		if (strip_want[i] == NULL) {
			assert_int_equal(nerr, 1);
		} else {
			char w[64];
			snprintf(w, sizeof w, "content cn=x\na: %s\n\n", strip_want[i]);
			check_dump(pairs->items[i].items[0].str, d0, w);
		}
		free(d0);
	}
	loom_buf_release(&b);
	j_destroy(&cases);
}

/* ---- OpenLDAP and perl-ldap data ------------------------------------------- */

/* Lines that start with "dn:" (any case): one per record. */
static size_t count_dn_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i + 3 <= len; i++)
		if ((i == 0 || s[i - 1] == '\n') && strncasecmp(s + i, "dn:", 3) == 0)
			n++;
	return n;
}

static size_t parse_tree(const char *dir, size_t *ret_records)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	size_t files = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[768];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			files += parse_tree(path, ret_records);
			continue;
		}
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 5, ".ldif") != 0)
			continue;
		if (strcmp(e->d_name, "slapd-dynamic.ldif") == 0)
			continue; /* a template: test_openldap_slapd_dynamic */
		size_t len, nrec, nerr;
		char *text = read_file(path, &len);
		char *got = dump_path(path, NULL, D_LINES | D_MSGS, &nrec, &nerr);
		if (nerr != 0 || nrec != count_dn_lines(text, len))
			fail_msg("'%s': %zu records (%zu dn lines), %zu errors:\n%s", path, nrec,
			    count_dn_lines(text, len), nerr, got);
		*ret_records += nrec;
		files++;
		free(got);
		free(text);
	}
	closedir(d);
	return files;
}

static void test_openldap_files(void **state)
{
	(void)state;
	size_t records = 0;
	size_t files = parse_tree(LDIF_DIR "/openldap-tests-data", &records);
	print_message("openldap tests/data: %zu files, %zu records\n", files, records);
	assert_true(files >= 50);
	assert_true(records > 400);
}

static void test_openldap_slapd_dynamic(void **state)
{
	(void)state;
	/* "olcRootPW:< file://@TESTDIR@/configpw": refused by default; with the
	 * placeholder filled and the directory allowed, read. */
	const char *path = LDIF_DIR "/openldap-tests-data/slapd-dynamic.ldif";
	size_t len, nrec, nerr;
	char *got = dump_path(path, NULL, D_LINES, &nrec, &nerr);
	check_dump("slapd-dynamic default", got, "content cn=config @1\nobjectClass: olcGlobal\ncn: config\n\n"
	    "error @8:13 rec 5\n");
	free(got);
	tmpdir_t t;
	tmpdir_make(&t);
	tmpdir_file(&t, "configpw", "secret\n", 7);
	char *text = read_file(path, &len);
	char *input = replace_all(text, "@TESTDIR@", t.path);
	loom_ldif_opts_t o = { .allow_file_urls = true, .url_base_dir = t.path };
	got = dump_mem(input, strlen(input), &o, D_LINES, &nrec, &nerr);
	check_dump("slapd-dynamic allowed", got, "content cn=config @1\nobjectClass: olcGlobal\ncn: config\n\n"
	    "content olcDatabase={0}config,cn=config @5\nobjectClass: olcDatabaseConfig\n"
	    "olcDatabase: {0}config\nolcRootPW: secret\\x0a\n\n");
	free(got);
	free(input);
	free(text);
	tmpdir_remove(&t);
}

static const char test_modify_want[] =
    "modify cn=James A Jones 1,ou=Alumni Association,ou=People,dc=example,dc=com @5\n"
    "add drink\n= Pils\nadd drink\n= Orange Juice\ndelete drink\n= Pils\ndelete sn\n= Jones\n"
    "add sn\n= Jones\n\n"
    "modify cn=Bjorn Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com @23\n"
    "replace description\n= The replaced multiLineDescription $ Blah Woof.\n"
    "replace drink\n= Iced Tea\n= Mad Dog 20/20\n\n"
    "modify cn=ITD Staff,ou=Groups,dc=example,dc=com @34\n"
    "delete uniquemember\n= cn=James A Jones 2,ou=Information Technology Division,ou=People,dc=example,dc=com\n"
    "= cn=Bjorn Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com\n"
    "add uniquemember\n= cn=Dorothy Stevens,ou=Alumni Association,ou=People,dc=example,dc=com\n"
    "= cn=James A Jones 1,ou=Alumni Association,ou=People,dc=example,dc=com\n"
    "add objectClass\n= OpenLDAPdisplayableObject\n= pkiUser\n= userSecurityInformation\n"
    "delete objectClass\n= userSecurityInformation\n= pkiUser\n= OpenLDAPdisplayableObject\n\n"
    "modify cn=All Staff,ou=Groups,dc=example,dc=com @58\n"
    "delete member\n"
    "add member\n= cn=Dorothy Stevens,ou=Alumni Association,ou=People,dc=example,dc=com\n"
    "delete description\n"
    "add objectClass\n= OpenLDAPdisplayableObject\n= pkiUser\n= userSecurityInformation\n"
    "delete objectClass\n= OpenLDAPdisplayableObject\n= pkiUser\n= userSecurityInformation\n\n"
    "add cn=Gern Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com @77\n"
    "objectclass: testPerson\ncn: Gern Jensen\nsn: Jensen\nuid: gjensen\ntitle: Chief Investigator, ITD\n"
    "postaladdress: ITD $ 535 W. William St $ Anytown, MI 48103\n"
    "seealso: cn=All Staff,ou=Groups,dc=example,dc=com\ndrink: Coffee\n"
    "homepostaladdress: 844 Brown St. Apt. 4 $ Anytown, MI 48104\ndescription: Very odd\n"
    "facsimiletelephonenumber: +1 313 555 7557\ntelephonenumber: +1 313 555 8343\n"
    "mail: gjensen@mailgw.example.com\nhomephone: +1 313 555 8844\ntestTime: 20050304001801.234Z\n\n"
    "delete cn=James A Jones 2,ou=Information Technology Division,ou=People,dc=example,dc=com @95\n\n"
    "modify ou=People,dc=example,dc=com @99\nincrement uidNumber\n= 1\nincrement gidNumber\n= -1\n\n"
    "modify dc=example,dc=com @107\n\n";

static uint32_t fnv32(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* The first record with dn, or fails. */
static void find_record(loom_ldif_reader_t *r, const char *dn, loom_ldif_record_t *ret)
{
	loom_ldif_error_t err;
	int rc;
	while ((rc = loom_ldif_read(r, ret, &err)) != 0)
		if (rc > 0 && strcmp(ret->dn, dn) == 0)
			return;
	fail_msg("no record '%s'", dn);
}

static const loom_ldif_attr_t *find_attr(const loom_ldif_record_t *rec, const char *name)
{
	for (size_t i = 0; i < rec->nattrs; i++)
		if (strcmp(rec->attrs[i].name, name) == 0)
			return &rec->attrs[i];
	fail_msg("no attribute '%s' in '%s'", name, rec->dn);
	return NULL;
}

static void test_openldap_spot_checks(void **state)
{
	(void)state;
	/* test-modify.ldif: folded comment, comment inside records, increment,
	 * mods without trailing '-', trailing comment, empty modify. */
	char *got = dump_path(LDIF_DIR "/openldap-tests-data/test-modify.ldif", NULL, D_LINES, NULL, NULL);
	check_dump("test-modify.ldif", got, test_modify_want);
	free(got);

	/* test-ordered.ldif: long folded base64 values. */
	int fd = open(LDIF_DIR "/openldap-tests-data/test-ordered.ldif", O_RDONLY);
	assert_true(fd >= 0);
	loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, NULL);
	loom_ldif_record_t rec;
	find_record(r, "ou=Information Technology Division,ou=People,dc=example,dc=com", &rec);
	assert_int_equal(rec.line, 34);
	const loom_ldif_attr_t *a = find_attr(&rec, "description");
	assert_int_equal(a->n, 2);
	assert_int_equal(a->v[0].len, 4976);
	assert_int_equal(fnv32(a->v[0].data, a->v[0].len), 0x4eed0bf4);
	assert_int_equal(a->v[1].len, 2983);
	assert_int_equal(fnv32(a->v[1].data, a->v[1].len), 0x94ba9d0b);
	find_record(r, "cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com", &rec);
	a = find_attr(&rec, "sn");
	assert_int_equal(a->n, 1);
	assert_int_equal(a->v[0].len, 8);
	assert_memory_equal(a->v[0].data, " Jensen ", 8);
	loom_ldif_reader_destroy(&r);
	close(fd);

	/* test-dn.ldif: "<...>" plain values, "member: " and "member:  " empty. */
	got = dump_path(LDIF_DIR "/openldap-tests-data/test-dn.ldif", NULL, D_LINES, NULL, NULL);
	assert_non_null(strstr(got, "content cn=May Succeed 5,ou=LDAPv2,dc=example,dc=com @204\n"
	    "objectClass: groupOfNames\ncn: May Succeed 5\nmember: <UID=jsmith,O=example,C=US>\n"
	    "description: <UID=jsmith,O=example,C=US> // brackets\n\n"));
	assert_non_null(strstr(got, "member: cn=Must Succeed,ou=LDAPv3,dc=example,dc=com\nmember: \n"));
	free(got);

	/* test-compmatch.ldif: "uid: charlie " keeps its trailing space. */
	got = dump_path(LDIF_DIR "/openldap-tests-data/test-compmatch.ldif", NULL, 0, NULL, NULL);
	assert_non_null(strstr(got, "uid: charlie \n"));
	free(got);
}

static void test_perl_ldap(void **state)
{
	(void)state;
	/* 00-in.ldif: the postaladdress fold splits 481/09. */
	size_t nrec, nerr;
	char *got = dump_path(LDIF_DIR "/perl-ldap/00-in.ldif", NULL, D_LINES, &nrec, &nerr);
	assert_int_equal(nrec, 6);
	assert_int_equal(nerr, 0);
	assert_non_null(strstr(got, "content o=University of Michigan, c=US @3\n"));
	assert_non_null(strstr(got, "postaladdress: University of Michigan $ 535 W. William St. $ Ann Arbor, MI "
	    "48109 $ USpostalcode: 48109\n"));
	assert_non_null(strstr(got, "member: cn=James A Jones 1, ou=Alumni Association, ou=People, o=University of "
	    "Michigan, c=US\n"));
	free(got);
	/* 00-cmp.ldif is the same without the version line. */
	char *in = dump_path(LDIF_DIR "/perl-ldap/00-in.ldif", NULL, 0, NULL, NULL);
	char *cmp = dump_path(LDIF_DIR "/perl-ldap/00-cmp.ldif", NULL, 0, NULL, NULL);
	check_dump("00-cmp.ldif", cmp, in);
	free(in);
	free(cmp);

	/* 10-in.ldif: controls, one base64 value folded over two lines. */
	got = dump_path(LDIF_DIR "/perl-ldap/10-in.ldif", NULL, D_LINES, &nrec, &nerr);
	assert_int_equal(nrec, 6);
	assert_int_equal(nerr, 0);
	assert_non_null(strstr(got, "add o=University of Michigan, c=US @2\n"
	    "control 2.16.840.1.113730.3.4.2 true\n"
	    "control 2.16.840.1.113730.3.4.18 true = dn:cn=Hägar,ou=people,o=myorg.com\n"
	    "objectclass: top\n"));
	assert_non_null(strstr(got, "add ou=People, o=University of Michigan, c=US @28\n"
	    "control 2.16.840.1.113730.3.4.18 true = dn:cn=me,ou=people,o=myorg.com\n"));
	assert_non_null(strstr(got, "add ou=Information Technology Division, ou=People, o=University of "
	    "Michigan, c=US @"));
	free(got);

	/* 42-mod.ldif: the first modify lacks its trailing '-'. */
	got = dump_path(LDIF_DIR "/perl-ldap/42-mod.ldif", NULL, D_LINES, &nrec, &nerr);
	assert_int_equal(nrec, 5);
	assert_int_equal(nerr, 0);
	assert_non_null(strstr(got, "modify cn=James A Jones 1, ou=Alumni Association, ou=People, o=University of "
	    "Michigan, c=US @1\nadd drink\n= Orange Juice\n\n"));
	assert_non_null(strstr(got, "add member\n= cn=Dorothy Stevens, ou=Alumni Association, ou=People, "
	    "o=University of Michigan, c=US\n= cn=James A Jones 1, ou=Alumni Association, ou=People, "
	    "o=University of Michigan, c=US\n\nadd cn=Gern Jensen"));
	assert_non_null(strstr(got, "delete cn=James A Jones 2, ou=Information Technology Division, ou=People, "
	    "o=University of Michigan, c=US @"));
	free(got);
}

/* ---- streaming ------------------------------------------------------------- */

/* Reads text through a temporary file and an fd. */
static char *dump_via_file(const char *text, size_t len, const loom_ldif_opts_t *o, int flags, size_t *ret_nrec,
    size_t *ret_nerr)
{
	char path[] = "/tmp/loom-ldif-fd-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, o);
	char *d = dump_reader(r, flags, ret_nrec, ret_nerr);
	loom_ldif_reader_destroy(&r);
	close(fd);
	unlink(path);
	return d;
}

/* Two records around a target whose fold (what 0), blank line (1) or dn
 * line end (2) is at byte `at`. */
static void gen_boundary(loom_buf_t *in, loom_buf_t *want, const char *eol, int what, size_t at)
{
	size_t padlen = 1000;
	for (int pass = 0; pass < 2; pass++) {
		loom_buf_reset(in);
		loom_buf_reset(want);
		loom_buf_adds(in, "");
		loom_buf_adds(want, "");
		loom_buf_printf(in, "dn: cn=pad%sdescription: ", eol);
		loom_buf_adds(want, "content cn=pad @1\ndescription: ");
		for (size_t i = 0; i < padlen; i++) {
			loom_buf_addc(in, (char)('a' + i % 26));
			loom_buf_addc(want, (char)('a' + i % 26));
		}
		loom_buf_printf(in, "%s%s", eol, eol);
		size_t dn_end = in->len + strlen("dn: cn=target");
		loom_buf_printf(in, "dn: cn=target%sdescription: ", eol);
		for (int i = 0; i < 40; i++)
			loom_buf_addc(in, 'A');
		size_t fold = in->len;
		loom_buf_printf(in, "%s ", eol);
		for (int i = 0; i < 30; i++)
			loom_buf_addc(in, 'B');
		size_t blank = in->len + strlen(eol);
		loom_buf_printf(in, "%s%sdn: cn=last%scn: x%s", eol, eol, eol, eol);
		size_t off = what == 0 ? fold : what == 1 ? blank : dn_end;
		if (pass == 0)
			padlen += at - off;
		else
			assert_int_equal(off, at);
	}
	loom_buf_adds(want, "\n\ncontent cn=target @4\ndescription: ");
	for (int i = 0; i < 40; i++)
		loom_buf_addc(want, 'A');
	for (int i = 0; i < 30; i++)
		loom_buf_addc(want, 'B');
	loom_buf_adds(want, "\n\ncontent cn=last @8\ncn: x\n\n");
}

static void test_fd_boundaries(void **state)
{
	(void)state;
	const size_t chunk = 64 * 1024;
	loom_buf_t in = LOOM_BUF_INIT, want = LOOM_BUF_INIT;
	for (int crlf = 0; crlf <= 1; crlf++) {
		for (int what = 0; what < 3; what++) {
			for (int shift = -3; shift <= 3; shift++) {
				gen_boundary(&in, &want, crlf ? "\r\n" : "\n", what, chunk + (size_t)(long)shift);
				char *got = dump_via_file(in.data, in.len, NULL, D_LINES, NULL, NULL);
				check_dump("fd across 64 KiB", got, want.data);
				free(got);
				got = dump_mem(in.data, in.len, NULL, D_LINES, NULL, NULL);
				check_dump("memory across 64 KiB", got, want.data);
				free(got);
			}
		}
	}

	/* A record much larger than a chunk, and a folded base64 value
	 * crossing several chunks. */
	loom_buf_reset(&in);
	loom_buf_adds(&in, "dn: cn=big\n");
	loom_buf_t val = LOOM_BUF_INIT;
	for (size_t i = 0; i < 300000; i++)
		loom_buf_addc(&val, (char)(i * 7 % 251));
	loom_ldif_writer_t *w = loom_ldif_writer_new(&in, NULL);
	loom_buf_reset(&in);
	loom_ldif_value_t v = { val.data, val.len };
	loom_ldif_attr_t attr = { "photo", 1, &v };
	loom_ldif_record_t rec = { .kind = LOOM_LDIF_CONTENT, .dn = "cn=big", .dn_len = 6, .nattrs = 1,
		.attrs = &attr };
	for (int i = 0; i < 3; i++)
		assert_int_equal(loom_ldif_write(w, &rec, NULL), 0);
	loom_ldif_writer_destroy(&w);
	assert_true(in.len > 3 * 400000);
	char path[] = "/tmp/loom-ldif-big-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, in.data, in.len), (ssize_t)in.len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, NULL);
	loom_ldif_record_t got;
	loom_ldif_error_t err;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(loom_ldif_read(r, &got, &err), 1);
		assert_int_equal(got.nattrs, 1);
		assert_int_equal(got.attrs[0].v[0].len, val.len);
		assert_memory_equal(got.attrs[0].v[0].data, val.data, val.len);
	}
	assert_int_equal(loom_ldif_read(r, &got, &err), 0);
	loom_ldif_reader_destroy(&r);
	close(fd);
	unlink(path);
	loom_buf_release(&val);
	loom_buf_release(&in);
	loom_buf_release(&want);
}

static void test_max_record(void **state)
{
	(void)state;
	loom_buf_t in = LOOM_BUF_INIT;
	loom_buf_adds(&in, "dn: cn=one\ncn: one\n\ndn: cn=huge\n");
	for (int i = 0; i < 20000; i++)
		loom_buf_adds(&in, "description: 0123456789012345678901234567890123456789\n");
	loom_buf_adds(&in, "\ndn: cn=two\ncn: two\n\ndn: cn=huge2\n");
	for (int i = 0; i < 3000; i++)
		loom_buf_adds(&in, "description: 0123456789012345678901234567890123456789\n");
	static const char want[] = "content cn=one @1\ncn: one\n\n"
	    "error @4:1 rec 4: record too long: more than 8192 bytes (max_record) without a blank line\n"
	    "content cn=two @20006\ncn: two\n\n"
	    "error @20009:1 rec 20009: record too long: more than 8192 bytes (max_record) without a blank line\n";
	loom_ldif_opts_t o = { .max_record = 8192 };
	char *got = dump_mem(in.data, in.len, &o, D_LINES | D_MSGS, NULL, NULL);
	check_dump("max_record (memory)", got, want);
	free(got);
	got = dump_via_file(in.data, in.len, &o, D_LINES | D_MSGS, NULL, NULL);
	check_dump("max_record (fd)", got, want);
	free(got);
	/* One line longer than max_record and no newline at all: refused
	 * without buffering it (the fd path reads it in chunks). */
	loom_buf_t line = LOOM_BUF_INIT;
	loom_buf_adds(&line, "dn: cn=one\ncn: one\n\ndn: cn=long\ndescription: ");
	for (int i = 0; i < 300000; i++)
		loom_buf_addc(&line, 'x');
	got = dump_via_file(line.data, line.len, &o, D_LINES, NULL, NULL);
	check_dump("max_record, one long line", got, "content cn=one @1\ncn: one\n\nerror @4:1 rec 4\n");
	free(got);
	loom_buf_release(&line);
	/* The default (16 MiB) reads it all. */
	size_t nrec, nerr;
	got = dump_mem(in.data, in.len, NULL, 0, &nrec, &nerr);
	assert_int_equal(nrec, 4);
	assert_int_equal(nerr, 0);
	free(got);
	loom_buf_release(&in);
}

static void test_read_error(void **state)
{
	(void)state;
	/* A directory fd fails with EISDIR: reported once as fatal, then end. */
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, NULL);
	loom_ldif_record_t rec;
	loom_ldif_error_t err;
	assert_int_equal(loom_ldif_read(r, &rec, &err), -1);
	assert_true(err.fatal);
	assert_non_null(strstr(err.message, "cannot read ldif input: "));
	assert_int_equal(loom_ldif_read(r, &rec, &err), 0);
	loom_ldif_reader_destroy(&r);
	close(fd);
	assert_null(loom_ldif_reader_new_fd(-1, NULL));
	loom_ldif_reader_destroy(&r); /* NULL is fine */
	r = loom_ldif_reader_new_mem(NULL, 0, NULL);
	assert_int_equal(loom_ldif_read(r, &rec, NULL), 0);
	loom_ldif_reader_destroy(&r);
}

/* ---- writer ---------------------------------------------------------------- */

#define VAL(s) { s, sizeof(s) - 1 }

static char *write_records(const loom_ldif_record_t *recs, size_t n, const loom_ldif_writer_opts_t *o)
{
	loom_buf_t out = LOOM_BUF_INIT;
	loom_buf_adds(&out, "");
	loom_ldif_writer_t *w = loom_ldif_writer_new(&out, o);
	for (size_t i = 0; i < n; i++) {
		const char *err = NULL;
		if (loom_ldif_write(w, &recs[i], &err) != 0)
			fail_msg("write failed: %s", err);
	}
	loom_ldif_writer_destroy(&w);
	assert_null(w);
	return loom_buf_steal(&out);
}

/* Expected outputs from ldif3 tests.py (TestLDIFWriter) and ldap3
 * testLDIF-change.py, the records built here. */
static void test_writer_oracles(void **state)
{
	(void)state;
	json_t *ldif3 = j_load("ldif3.cases.json");
	json_t *ldap3 = j_load("ldap3-writer.cases.json");
	const json_t *c;

	/* test_fold_line_10_n: continuation lines count their space. */
	c = &ldif3->items[10];
	assert_string_equal(j_str(c, "input_line"), "abcdefghijklmnopqrstuvwxyz");
	loom_ldif_writer_opts_t fold10 = { .fold = 10 };
	static const loom_ldif_value_t alpha[] = { VAL("abcdefghijklmnopqrstuvwxyz") };
	loom_ldif_attr_t a1 = { "a", 1, alpha };
	loom_ldif_record_t r1 = { .dn = "x", .dn_len = 1, .nattrs = 1, .attrs = &a1 };
	char *out = write_records(&r1, 1, &fold10);
	assert_string_equal(out, "dn: x\na: abcdefg\n hijklmnop\n qrstuvwxy\n z\n\n");
	free(out);

	/* test_unparse: two records, attribute order as given. */
	c = &ldif3->items[11];
	static const loom_ldif_value_t cn[] = { VAL("Alison Alison") };
	static const loom_ldif_value_t mail1[] = { VAL("alicealison@example.com") };
	static const loom_ldif_value_t ts[] = { VAL("4a463e9a") };
	static const loom_ldif_value_t oc1[] = { VAL("top"), VAL("person"), VAL("organizationalPerson") };
	static const loom_ldif_value_t mail2[] = { VAL("foobar@example.org") };
	static const loom_ldif_value_t oc2[] = { VAL("top"), VAL("person") };
	const loom_ldif_attr_t at1[] = { { "cn", 1, cn }, { "mail", 1, mail1 }, { "modifytimestamp", 1, ts },
		{ "objectclass", 3, oc1 } };
	const loom_ldif_attr_t at2[] = { { "mail", 1, mail2 }, { "modifytimestamp", 1, ts },
		{ "objectclass", 2, oc2 } };
	const loom_ldif_record_t two[] = {
		{ .dn = "cn=Alice Alison,mail=alicealison@example.com", .dn_len = 44, .nattrs = 4, .attrs = at1 },
		{ .dn = "mail=foobar@example.org", .dn_len = 23, .nattrs = 3, .attrs = at2 },
	};
	out = write_records(two, 2, NULL);
	assert_string_equal(out, j_str(c, "expected_output"));
	free(out);

	/* test_unparse_attr_base64: "a\nb\nc". */
	c = &ldif3->items[12];
	static const loom_ldif_value_t abc[] = { VAL("a\nb\nc") };
	loom_ldif_attr_t a2 = { "foo", 1, abc };
	loom_ldif_record_t r2 = { .dn = "x", .dn_len = 1, .nattrs = 1, .attrs = &a2 };
	out = write_records(&r2, 1, NULL);
	assert_non_null(strstr(out, j_str(c, "expected_output")));
	free(out);

	/* test_unparse_binary. */
	c = &ldif3->items[13];
	static const loom_ldif_value_t bin[] = { VAL("\xf0\xf2\xf3") };
	loom_ldif_attr_t a3 = { "jpegPhoto", 1, bin };
	loom_ldif_record_t r3 = { .dn = "cn=Bjorn J Jensen", .dn_len = 17, .nattrs = 1, .attrs = &a3 };
	out = write_records(&r3, 1, NULL);
	assert_string_equal(out, j_str(c, "expected_output"));
	free(out);

	/* test_unparse_unicode_dn. */
	c = &ldif3->items[14];
	static const loom_ldif_value_t bar[] = { VAL("bar") };
	loom_ldif_attr_t a4 = { "foo", 1, bar };
	loom_ldif_record_t r4 = { .dn = "cn=Björn J Jensen", .dn_len = strlen("cn=Björn J Jensen"), .nattrs = 1,
		.attrs = &a4 };
	out = write_records(&r4, 1, NULL);
	assert_string_equal(out, j_str(c, "expected_output"));
	free(out);

	/* test_needs_base64_encoding: "\r" yes, "abcABC123_+" no. */
	static const loom_ldif_value_t nb[] = { VAL("\r"), VAL("abcABC123_+") };
	loom_ldif_attr_t a5 = { "v", 2, nb };
	loom_ldif_record_t r5 = { .dn = "x", .dn_len = 1, .nattrs = 1, .attrs = &a5 };
	out = write_records(&r5, 1, NULL);
	assert_string_equal(out, "dn: x\nv:: DQ==\nv: abcABC123_+\n\n");
	free(out);

	/* test_unparse_uniqode. */
	c = &ldif3->items[16];
	static const loom_ldif_value_t jp[] = { VAL("日本語") };
	loom_ldif_attr_t a6 = { "test", 1, jp };
	loom_ldif_record_t r6 = { .dn = "o=x", .dn_len = 3, .nattrs = 1, .attrs = &a6 };
	out = write_records(&r6, 1, NULL);
	assert_string_equal(out, j_str(c, "expected_output"));
	free(out);

	/* ldap3 test_add_request_to_ldif: controls, base64 for non-ASCII and
	 * trailing space, version line. */
	c = &ldap3->items[0];
	static const char oid[] = "2.16.840.1.113719.1.27.103.7";
	const loom_ldif_control_t ctrls[] = {
		{ oid, true, true, VAL("givenName") },
		{ oid, false, true, VAL("sn") },
		{ oid, false, true, VAL("\xc3\xa0\xc3\xa0") },
		{ oid, false, true, VAL("trailingspace ") },
	};
	static const loom_ldif_value_t inet[] = { VAL("inetOrgPerson") };
	static const loom_ldif_value_t lc1[] = { VAL("ldif-change-1") };
	const loom_ldif_attr_t at7[] = { { "objectClass", 1, inet }, { "sn", 1, lc1 }, { "cn", 1, lc1 } };
	loom_ldif_record_t r7 = { .kind = LOOM_LDIF_ADD, .dn = "cn=ldif-change-1,o=test", .dn_len = 23,
		.nattrs = 3, .attrs = at7, .ncontrols = 4, .controls = ctrls };
	loom_ldif_writer_opts_t ver = { .version = true };
	out = write_records(&r7, 1, &ver);
	const json_t *lines = j_get(c, "expected_lines_present");
	for (size_t i = 0; i < lines->len; i++) {
		char line[256];
		snprintf(line, sizeof line, "\n%s\n", lines->items[i].str);
		if (strncmp(out, line + 1, strlen(line + 1)) != 0 && strstr(out, line) == NULL)
			fail_msg("ldap3 add: no line '%s' in\n%s", lines->items[i].str, out);
	}
	static const char head7[] = "version: 1\ndn: cn=ldif-change-1,o=test\ncontrol: ";
	assert_true(strncmp(out, head7, strlen(head7)) == 0);
	free(out);

	/* delete, modrdn (ldap3 writes moddn for plain renames; the RFC treats
	 * both names alike, and this writer always says modrdn), move. */
	loom_ldif_record_t r8[] = {
		{ .kind = LOOM_LDIF_DELETE, .dn = "cn=a,o=test", .dn_len = 11 },
		{ .kind = LOOM_LDIF_MODRDN, .dn = "cn=a,o=test", .dn_len = 11, .newrdn = "cn=b", .deleteoldrdn = true },
		{ .kind = LOOM_LDIF_MODRDN, .dn = "cn=b,o=test", .dn_len = 11, .newrdn = "cn=b",
		    .newsuperior = "ou=moved,o=test" },
	};
	out = write_records(r8, 3, &ver);
	assert_string_equal(out, "version: 1\ndn: cn=a,o=test\nchangetype: delete\n\n"
	    "dn: cn=a,o=test\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n\n"
	    "dn: cn=b,o=test\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 0\nnewsuperior: ou=moved,o=test\n\n");
	free(out);

	/* test_multiple_modify_to_ldif: RFC example 6 record 5, each mod-spec
	 * ending with "-". */
	c = &ldap3->items[5];
	static const loom_ldif_value_t pa[] = { VAL("123 Anystreet $ Sunnyvale, CA $ 94086") };
	static const loom_ldif_value_t tel[] = { VAL("+1 408 555 1234"), VAL("+1 408 555 5678") };
	static const loom_ldif_value_t fax[] = { VAL("+1 408 555 9876") };
	const loom_ldif_mod_t mods[] = {
		{ LOOM_LDIF_MOD_ADD, { "postaladdress", 1, pa } },
		{ LOOM_LDIF_MOD_DELETE, { "description", 0, NULL } },
		{ LOOM_LDIF_MOD_REPLACE, { "telephonenumber", 2, tel } },
		{ LOOM_LDIF_MOD_DELETE, { "facsimiletelephonenumber", 1, fax } },
	};
	loom_ldif_record_t r9 = { .kind = LOOM_LDIF_MODIFY, .dn = "cn=Paula Jensen,ou=Product Development,dc=airius,dc=com",
		.dn_len = 55, .nmods = 4, .mods = mods };
	out = write_records(&r9, 1, &ver);
	lines = j_get(c, "expected_lines_present");
	for (size_t i = 0; i < lines->len; i++)
		if (strstr(out, lines->items[i].str) == NULL)
			fail_msg("ldap3 modify: no line '%s' in\n%s", lines->items[i].str, out);
	assert_string_equal(out, "version: 1\ndn: cn=Paula Jensen,ou=Product Development,dc=airius,dc=com\n"
	    "changetype: modify\nadd: postaladdress\npostaladdress: 123 Anystreet $ Sunnyvale, CA $ 94086\n-\n"
	    "delete: description\n-\nreplace: telephonenumber\ntelephonenumber: +1 408 555 1234\n"
	    "telephonenumber: +1 408 555 5678\n-\ndelete: facsimiletelephonenumber\n"
	    "facsimiletelephonenumber: +1 408 555 9876\n-\n\n");
	free(out);

	j_destroy(&ldif3);
	j_destroy(&ldap3);
}

typedef struct werr_case {
	const char *label;            /* what the case shows */
	loom_ldif_record_t rec;       /* what is written */
	const char *message;          /* the error wanted */
} werr_case_t;

static const loom_ldif_value_t wv[] = { VAL("x") };
static const loom_ldif_attr_t bad_name[] = { { "c n", 1, wv } };
static const loom_ldif_attr_t no_vals[] = { { "cn", 0, NULL } };
static const loom_ldif_attr_t kw_name[] = { { "changetype", 1, wv } };
static const loom_ldif_mod_t bad_mod[] = { { LOOM_LDIF_MOD_ADD, { ";x", 1, wv } } };
static const loom_ldif_mod_t inc_mod[] = { { LOOM_LDIF_MOD_INCREMENT, { "uidNumber", 0, NULL } } };
static const loom_ldif_control_t bad_ctrl[] = { { "1..2", false, false, { NULL, 0 } } };

static const werr_case_t werr_cases[] = {
	{ "no dn", { .kind = LOOM_LDIF_DELETE }, "cannot write record: no dn" },
	{ "bad attribute name", { .dn = "cn=a", .dn_len = 4, .nattrs = 1, .attrs = bad_name },
	    "cannot write attribute 'c n': bad attribute description" },
	{ "attribute without values", { .dn = "cn=a", .dn_len = 4, .nattrs = 1, .attrs = no_vals },
	    "cannot write attribute 'cn': no values" },
	{ "keyword as attribute", { .kind = LOOM_LDIF_ADD, .dn = "cn=a", .dn_len = 4, .nattrs = 1, .attrs = kw_name },
	    "cannot write attribute 'changetype': the name is an ldif keyword" },
	{ "entry without attributes", { .dn = "cn=a", .dn_len = 4 }, "cannot write record 'cn=a': no attributes" },
	{ "bad mod attribute", { .kind = LOOM_LDIF_MODIFY, .dn = "cn=a", .dn_len = 4, .nmods = 1, .mods = bad_mod },
	    "cannot write mod-spec ';x': bad attribute description" },
	{ "bad control oid", { .kind = LOOM_LDIF_DELETE, .dn = "cn=a", .dn_len = 4, .ncontrols = 1,
	    .controls = bad_ctrl }, "cannot write control '1..2': expected a numeric oid" },
	{ "controls on content", { .dn = "cn=a", .dn_len = 4, .nattrs = 1, .attrs = no_vals, .ncontrols = 1,
	    .controls = bad_ctrl }, "cannot write record 'cn=a': controls need a change record" },
	{ "increment without a value", { .kind = LOOM_LDIF_MODIFY, .dn = "cn=a", .dn_len = 4, .nmods = 1,
	    .mods = inc_mod }, "cannot write mod-spec 'uidNumber': increment needs exactly one value" },
	{ "modrdn without newrdn", { .kind = LOOM_LDIF_MODRDN, .dn = "cn=a", .dn_len = 4 },
	    "cannot write modrdn record 'cn=a': no newrdn" },
	{ "unknown kind", { .kind = (loom_ldif_kind_t)9, .dn = "cn=a", .dn_len = 4 },
	    "cannot write record 'cn=a': unknown kind 9" },
};

static void test_writer_error(void **state)
{
	const werr_case_t *c = *state;
	loom_buf_t out = LOOM_BUF_INIT;
	loom_buf_adds(&out, "before\n");
	loom_ldif_writer_t *w = loom_ldif_writer_new(&out, NULL);
	const char *err = NULL;
	assert_int_equal(loom_ldif_write(w, &c->rec, &err), -1);
	assert_non_null(err);
	assert_string_equal(err, c->message);
	assert_string_equal(out.data, "before\n");
	loom_ldif_writer_destroy(&w);
	loom_buf_release(&out);
}

/* xorshift64*: reproducible random input. */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

/* A random value into b: binary, UTF-8, awkward ASCII, long, or empty. */
static void rnd_value(loom_buf_t *b)
{
	static const char *const awkward[] = { " lead", "trail ", ":colon", "<angle", "#hash", "-", "a\nb",
		"cr\r", "tab\t", "back\\slash", "x  y", "=", "dn: x", "  ", "\x7f" };
	static const char *const utf8[] = { "é", "営業部", "ロドニー", "😀", "Ströder", "ß", "‰" };
	loom_buf_reset(b);
	loom_buf_adds(b, "");
	switch (rnd() % 7) {
	case 0: {
		size_t n = rnd() % 300;
		for (size_t i = 0; i < n; i++)
			loom_buf_addc(b, (char)(rnd() & 0xff));
		break;
	}
	case 1: {
		size_t n = 1 + rnd() % 20;
		for (size_t i = 0; i < n; i++)
			loom_buf_adds(b, utf8[rnd() % N_ELEMS(utf8)]);
		break;
	}
	case 2:
		loom_buf_adds(b, awkward[rnd() % N_ELEMS(awkward)]);
		break;
	case 3: {
		size_t n = 70 + rnd() % 400;
		for (size_t i = 0; i < n; i++)
			loom_buf_addc(b, (char)(' ' + 1 + rnd() % 94));
		break;
	}
	case 4:
		break;
	default: {
		size_t n = 1 + rnd() % 30;
		for (size_t i = 0; i < n; i++)
			loom_buf_addc(b, (char)('a' + rnd() % 26));
		break;
	}
	}
}

/* Storage for a random record. */
typedef struct rrec {
	loom_ldif_record_t rec;       /* the record */
	loom_buf_t bufs[64];          /* value bytes */
	loom_ldif_value_t vals[64];   /* values */
	loom_ldif_attr_t attrs[8];    /* attributes */
	loom_ldif_mod_t mods[8];      /* mod-specs */
	loom_ldif_control_t ctrls[3]; /* controls */
	char names[8][24];            /* attribute names */
	char dn[3][128];              /* dn, newrdn, newsuperior */
} rrec_t;

static void rnd_dn(char *dst, size_t size)
{
	static const char *const forms[] = { "cn=plain,o=x", " cn=lead", "cn=trail ", ":cn=colon", "<cn=angle",
		"cn=Björn,o=Ørsted", "cn=a\\,b", "" };
	snprintf(dst, size, "%s%u", forms[rnd() % N_ELEMS(forms)], (unsigned)(rnd() % 1000));
}

static void rnd_record(rrec_t *r)
{
	static const char *const names[] = { "cn", "sn", "objectClass", "description;lang-en", "jpegPhoto",
		"2.5.4.3", "x-custom", "userCertificate;binary" };
	memset(&r->rec, 0, sizeof r->rec);
	size_t nv = 0;
	rnd_dn(r->dn[0], sizeof r->dn[0]);
	r->rec.dn = r->dn[0];
	r->rec.dn_len = strlen(r->dn[0]);
	r->rec.kind = (loom_ldif_kind_t)(rnd() % 5);
	if (r->rec.kind != LOOM_LDIF_CONTENT) {
		r->rec.ncontrols = rnd() % 4;
		for (size_t i = 0; i < r->rec.ncontrols; i++) {
			r->ctrls[i].oid = i == 0 ? "1.2.840.113556.1.4.805" : "2.16.840.1.113730.3.4.18";
			r->ctrls[i].critical = rnd() % 2;
			r->ctrls[i].has_value = rnd() % 2;
			if (r->ctrls[i].has_value) {
				rnd_value(&r->bufs[nv]);
				r->ctrls[i].value.data = r->bufs[nv].data;
				r->ctrls[i].value.len = r->bufs[nv].len;
				nv++;
			}
		}
		r->rec.controls = r->rec.ncontrols ? r->ctrls : NULL;
	}
	switch (r->rec.kind) {
	case LOOM_LDIF_CONTENT:
	case LOOM_LDIF_ADD:
		r->rec.nattrs = 1 + rnd() % N_ELEMS(names);
		for (size_t i = 0; i < r->rec.nattrs; i++) {
			size_t n = 1 + rnd() % 6;
			r->attrs[i].name = names[i];
			r->attrs[i].n = n;
			r->attrs[i].v = &r->vals[nv];
			for (size_t k = 0; k < n; k++, nv++) {
				rnd_value(&r->bufs[nv]);
				r->vals[nv].data = r->bufs[nv].data;
				r->vals[nv].len = r->bufs[nv].len;
			}
		}
		r->rec.attrs = r->attrs;
		break;
	case LOOM_LDIF_MODIFY:
		r->rec.nmods = rnd() % 6;
		for (size_t i = 0; i < r->rec.nmods; i++) {
			loom_ldif_mod_t *m = &r->mods[i];
			m->op = (loom_ldif_modop_t)(rnd() % 4);
			m->attr.name = names[rnd() % N_ELEMS(names)];
			m->attr.n = m->op == LOOM_LDIF_MOD_INCREMENT ? 1 : rnd() % 4;
			m->attr.v = m->attr.n ? &r->vals[nv] : NULL;
			for (size_t k = 0; k < m->attr.n; k++, nv++) {
				rnd_value(&r->bufs[nv]);
				r->vals[nv].data = r->bufs[nv].data;
				r->vals[nv].len = r->bufs[nv].len;
			}
		}
		r->rec.mods = r->rec.nmods ? r->mods : NULL;
		break;
	case LOOM_LDIF_MODRDN:
		do
			rnd_dn(r->dn[1], sizeof r->dn[1]);
		while (r->dn[1][0] == '\0');
		r->rec.newrdn = r->dn[1];
		r->rec.deleteoldrdn = rnd() % 2;
		if (rnd() % 2) {
			rnd_dn(r->dn[2], sizeof r->dn[2]);
			r->rec.newsuperior = r->dn[2];
		}
		break;
	case LOOM_LDIF_DELETE:
		break;
	}
	assert_true(nv <= N_ELEMS(r->vals));
}

static void test_writer_roundtrip(void **state)
{
	(void)state;
	enum { N = 400 };
	rrec_t *recs = loom_calloc(N, sizeof *recs);
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < N_ELEMS(recs[i].bufs); k++)
			loom_buf_init(&recs[i].bufs[k]);
	loom_buf_t want = LOOM_BUF_INIT;
	loom_buf_adds(&want, "");
	for (unsigned fold = 0; fold <= 40; fold += 40) {
		loom_buf_t out = LOOM_BUF_INIT;
		loom_ldif_writer_opts_t o = { .version = true, .fold = fold };
		loom_ldif_writer_t *w = loom_ldif_writer_new(&out, &o);
		loom_buf_reset(&want);
		for (size_t i = 0; i < N; i++) {
			rnd_record(&recs[i]);
			const char *err;
			if (loom_ldif_write(w, &recs[i].rec, &err) != 0)
				fail_msg("write %zu: %s", i, err);
			dump_record(&want, &recs[i].rec, false);
		}
		loom_ldif_writer_destroy(&w);

		/* Lines are folded at the width, and only printable ASCII is
		 * written as is. */
		size_t width = fold ? fold : 76, col = 0;
		for (size_t i = 0; i < out.len; i++) {
			unsigned char ch = (unsigned char)out.data[i];
			if (ch == '\n') {
				col = 0;
				continue;
			}
			assert_true(ch >= 0x20 && ch < 0x7f);
			col++;
			if (col > width)
				fail_msg("line longer than %zu at byte %zu", width, i);
		}
		assert_true(strncmp(out.data, "version: 1\n", 11) == 0);

		size_t nrec, nerr;
		char *got = dump_mem(out.data, out.len, NULL, D_MSGS, &nrec, &nerr);
		check_dump("writer round trip", got, want.data);
		assert_int_equal(nrec, N);
		assert_int_equal(nerr, 0);
		free(got);

		/* And again: read, write what was read, compare bytes. */
		loom_buf_t again = LOOM_BUF_INIT;
		w = loom_ldif_writer_new(&again, &o);
		loom_ldif_reader_t *r = loom_ldif_reader_new_mem(out.data, out.len, NULL);
		loom_ldif_record_t rec;
		loom_ldif_error_t err;
		while (loom_ldif_read(r, &rec, &err) == 1)
			assert_int_equal(loom_ldif_write(w, &rec, NULL), 0);
		loom_ldif_reader_destroy(&r);
		loom_ldif_writer_destroy(&w);
		assert_int_equal(again.len, out.len);
		assert_memory_equal(again.data, out.data, out.len);
		loom_buf_release(&again);
		loom_buf_release(&out);
	}
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < N_ELEMS(recs[i].bufs); k++)
			loom_buf_release(&recs[i].bufs[k]);
	free(recs);
	loom_buf_release(&want);
}

static void test_writer_dn_and_fold(void **state)
{
	(void)state;
	/* DNs that need base64, a long value folded at 76. */
	static const struct { const char *dn; const char *line; } dns[] = {
		{ "cn=plain", "dn: cn=plain\n" },
		{ " cn=lead", "dn:: IGNuPWxlYWQ=\n" },
		{ "cn=trail ", "dn:: Y249dHJhaWwg\n" },
		{ ":cn", "dn:: OmNu\n" },
		{ "<cn", "dn:: PGNu\n" },
		{ "cn=Björn", "dn:: Y249QmrDtnJu\n" },
		{ "", "dn:\n" },
	};
	for (size_t i = 0; i < N_ELEMS(dns); i++) {
		loom_ldif_record_t r = { .kind = LOOM_LDIF_DELETE, .dn = dns[i].dn, .dn_len = strlen(dns[i].dn) };
		char *out = write_records(&r, 1, NULL);
		if (strncmp(out, dns[i].line, strlen(dns[i].line)) != 0)
			fail_msg("dn '%s': got '%s', want '%s'", dns[i].dn, out, dns[i].line);
		char *back = dump_mem(out, strlen(out), NULL, 0, NULL, NULL);
		loom_buf_t w = LOOM_BUF_INIT;
		dump_record(&w, &r, false);
		check_dump(dns[i].dn, back, w.data);
		loom_buf_release(&w);
		free(back);
		free(out);
	}
	char longv[200];
	for (size_t i = 0; i < sizeof longv; i++)
		longv[i] = (char)('0' + i % 10);
	loom_ldif_value_t v = { longv, sizeof longv };
	loom_ldif_attr_t a = { "description", 1, &v };
	loom_ldif_record_t r = { .dn = "cn=a", .dn_len = 4, .nattrs = 1, .attrs = &a };
	char *out = write_records(&r, 1, NULL);
	/* "description: " is 13 bytes, so 63 value bytes fit the first line,
	 * then 75 per continuation line. */
	loom_buf_t want = LOOM_BUF_INIT;
	loom_buf_adds(&want, "dn: cn=a\ndescription: ");
	loom_buf_add(&want, longv, 63);
	loom_buf_adds(&want, "\n ");
	loom_buf_add(&want, longv + 63, 75);
	loom_buf_adds(&want, "\n ");
	loom_buf_add(&want, longv + 138, 62);
	loom_buf_adds(&want, "\n\n");
	assert_string_equal(out, want.data);
	loom_buf_release(&want);
	free(out);
}

/* ---- robustness ------------------------------------------------------------ */

static void test_mutations(void **state)
{
	(void)state;
	/* Random edits of real files: every outcome is a record that holds its
	 * invariants (dump_record checks them) or a counted error. */
	static const char *const files[] = { "/rfc2849/example4.ldif", "/rfc2849/example6.ldif",
		"/rfc2849/example7.ldif", "/openldap-tests-data/test-modify.ldif", "/perl-ldap/10-in.ldif" };
	static const char tokens[] = "\n\n  ::<-#\r=;\0\xff";
	loom_buf_t b = LOOM_BUF_INIT;
	size_t total_rec = 0, total_err = 0;
	for (size_t f = 0; f < N_ELEMS(files); f++) {
		char path[512];
		size_t len;
		snprintf(path, sizeof path, "%s%s", LDIF_DIR, files[f]);
		char *text = read_file(path, &len);
		for (int iter = 0; iter < 600; iter++) {
			loom_buf_reset(&b);
			loom_buf_add(&b, text, len);
			int edits = 1 + (int)(rnd() % 8);
			for (int e = 0; e < edits && b.len > 0; e++) {
				size_t at = rnd() % b.len;
				switch (rnd() % 3) {
				case 0:
					b.data[at] = tokens[rnd() % (sizeof tokens - 1)];
					break;
				case 1:
					memmove(b.data + at, b.data + at + 1, b.len - at - 1);
					b.len--;
					break;
				default:
					b.data[at] = (char)(rnd() & 0xff);
					break;
				}
			}
			loom_ldif_opts_t o = { .max_record = 1 + rnd() % 4096, .validate_utf8_dn = rnd() % 2 };
			size_t nrec, nerr;
			char *got = dump_mem(b.data, b.len, &o, D_LINES, &nrec, &nerr);
			total_rec += nrec;
			total_err += nerr;
			free(got);
		}
		free(text);
	}
	print_message("mutations: %zu records, %zu errors\n", total_rec, total_err);
	assert_true(total_rec > 0 && total_err > 0);
	loom_buf_release(&b);
}

/* ---- main ------------------------------------------------------------------ */

int main(void)
{
	struct CMUnitTest tests[N_ELEMS(rfc_cases) + N_ELEMS(parse_cases) + N_ELEMS(error_cases) +
	    N_ELEMS(werr_cases) + 20];
	size_t n = 0;
	for (size_t i = 0; i < N_ELEMS(rfc_cases); i++)
		tests[n++] = (struct CMUnitTest){ rfc_cases[i].label, test_rfc_example, NULL, NULL,
			(void *)&rfc_cases[i] };
	for (size_t i = 0; i < N_ELEMS(parse_cases); i++)
		tests[n++] = (struct CMUnitTest){ parse_cases[i].label, test_parse_case, NULL, NULL,
			(void *)&parse_cases[i] };
	for (size_t i = 0; i < N_ELEMS(error_cases); i++)
		tests[n++] = (struct CMUnitTest){ error_cases[i].label, test_error_case, NULL, NULL,
			(void *)&error_cases[i] };
	for (size_t i = 0; i < N_ELEMS(werr_cases); i++)
		tests[n++] = (struct CMUnitTest){ werr_cases[i].label, test_writer_error, NULL, NULL,
			(void *)&werr_cases[i] };
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_validate_utf8_dn),
		cmocka_unit_test(test_file_urls),
		cmocka_unit_test(test_python_ldap_oracles),
		cmocka_unit_test(test_go_ldap_oracles),
		cmocka_unit_test(test_ldif3_oracles),
		cmocka_unit_test(test_openldap_files),
		cmocka_unit_test(test_openldap_slapd_dynamic),
		cmocka_unit_test(test_openldap_spot_checks),
		cmocka_unit_test(test_perl_ldap),
		cmocka_unit_test(test_fd_boundaries),
		cmocka_unit_test(test_max_record),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_writer_oracles),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_writer_dn_and_fold),
		cmocka_unit_test(test_mutations),
	};
	for (size_t i = 0; i < N_ELEMS(fixed); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("ldif", tests, n, NULL, NULL);
}
