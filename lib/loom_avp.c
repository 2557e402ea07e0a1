/* loom_avp.c - attribute-value pair files (see loom_avp.h). */
#include "loom_avp.h"
#include "loom_alloc.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loom_avp_reader {
	int fd;                        /* source, or -1 for memory */
	const char *mem;               /* memory source */
	size_t mem_len, mem_pos;       /* its size and what has been consumed */
	char sep;                      /* the separator */
	size_t max_line;               /* longest line */
	char *buf;                     /* read buffer (fd) */
	size_t len, pos, cap;          /* bytes in buf, consumed, allocated */
	bool eof;                      /* the source is exhausted */
	bool dead;                     /* a fatal error was reported */
	unsigned line;                 /* lines consumed */
	loom_buf_t text;               /* the current object's decoded bytes */
	loom_avp_pair_t *pairs;        /* its pairs */
	size_t npairs, cap_pairs;
	size_t *offs;                  /* offsets of name and value in text, 2 per pair */
	size_t cap_offs;
};

static loom_avp_reader_t *reader_new(char sep, size_t max_line)
{
	if (sep == '\0')
		sep = ':';
	if (sep == ' ' || sep == '\t' || sep == '\r' || sep == '\n' || sep == '#')
		return NULL;
	loom_avp_reader_t *r = loom_calloc(1, sizeof *r);
	r->fd = -1;
	r->sep = sep;
	r->max_line = max_line ? max_line : 16u << 20;
	return r;
}

loom_avp_reader_t *loom_avp_reader_new_fd(int fd, char sep, size_t max_line)
{
	if (fd < 0)
		return NULL;
	loom_avp_reader_t *r = reader_new(sep, max_line);
	if (r)
		r->fd = fd;
	return r;
}

loom_avp_reader_t *loom_avp_reader_new_mem(const char *data, size_t len, char sep, size_t max_line)
{
	loom_avp_reader_t *r = reader_new(sep, max_line);
	if (r) {
		r->mem = data;
		r->mem_len = len;
	}
	return r;
}

void loom_avp_reader_destroy(loom_avp_reader_t **rp)
{
	loom_avp_reader_t *r = *rp;
	if (r == NULL)
		return;
	free(r->buf);
	loom_buf_release(&r->text);
	free(r->pairs);
	free(r->offs);
	free(r);
	*rp = NULL;
}

/* The next line (without its LF or CRLF) in *ret and *ret_len: 1, 0 at the end,
 * -1 on a read error (errno), -2 when it is longer than max_line (the line
 * is consumed). The line stays valid until the next call. */
static int next_line(loom_avp_reader_t *r, const char **ret, size_t *ret_len)
{
	if (r->mem) {
		if (r->mem_pos >= r->mem_len)
			return 0;
		const char *s = r->mem + r->mem_pos;
		const char *nl = memchr(s, '\n', r->mem_len - r->mem_pos);
		size_t n = nl ? (size_t)(nl - s) : r->mem_len - r->mem_pos;
		r->mem_pos += n + (nl ? 1 : 0);
		r->line++;
		if (n && s[n - 1] == '\r')
			n--;
		*ret = s;
		*ret_len = n;
		return n > r->max_line ? -2 : 1;
	}
	bool too_long = false;
	for (;;) {
		char *nl = r->len > r->pos ? memchr(r->buf + r->pos, '\n', r->len - r->pos) : NULL;
		if (nl || (r->eof && r->len > r->pos)) {
			char *s = r->buf + r->pos;
			size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
			r->pos += n + (nl ? 1 : 0);
			r->line++;
			if (n && s[n - 1] == '\r')
				n--;
			*ret = s;
			*ret_len = n;
			return too_long || n > r->max_line ? -2 : 1;
		}
		if (r->eof)
			return 0;
		if (r->len - r->pos > r->max_line + 2) {
			/* Runaway line: drop what we hold of it and keep looking for its end. */
			too_long = true;
			r->len = r->pos = 0;
		}
		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->cap - r->len < 65536) {
			r->cap = r->cap ? r->cap * 2 : 131072;
			r->buf = loom_realloc(r->buf, r->cap);
		}
		ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (got == 0)
			r->eof = true;
		r->len += (size_t)got;
	}
}

static bool blank_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Valid UTF-8 without NUL; *bad gets the offset of the first bad byte. */
static bool utf8_ok(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
		if (c == 0 || extra == 9 || i + extra >= n + (extra ? 0 : 1)) {
			*bad = i;
			return false;
		}
		for (size_t k = 1; k <= extra; k++)
			if ((s[i + k] & 0xc0) != 0x80) {
				*bad = i;
				return false;
			}
		i += extra + 1;
	}
	return true;
}

__attribute__((format(printf, 5, 6))) static void set_err(loom_avp_error_t *e, unsigned line, unsigned col,
    unsigned record_line, const char *fmt, ...)
{
	if (e == NULL)
		return;
	memset(e, 0, sizeof *e);
	e->line = line;
	e->column = col;
	e->record_line = record_line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* Parses one non-blank line into the current object. Returns 0 or -1 (with *e). */
static int parse_pair(loom_avp_reader_t *r, const char *s, size_t n, unsigned record_line, loom_avp_error_t *e)
{
	const char *sep = memchr(s, r->sep, n);
	if (sep == NULL) {
		set_err(e, r->line, 1, record_line, "line without '%c': expected NAME%cVALUE (a blank line ends an object)",
		    r->sep, r->sep);
		return -1;
	}
	size_t nlen = (size_t)(sep - s);
	if (nlen == 0) {
		set_err(e, r->line, 1, record_line, "line starts with '%c': the attribute name is missing", r->sep);
		return -1;
	}
	for (size_t i = 0; i < nlen; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\0') {
			set_err(e, r->line, (unsigned)i + 1, record_line,
			    "attribute name '%.*s' holds a space, tab or NUL: expected NAME%cVALUE", (int)(nlen > 48 ? 48 : nlen),
			    s, r->sep);
			return -1;
		}
	}
	size_t i = nlen + 1;
	bool b64 = i < n && s[i] == r->sep;
	if (b64)
		i++;
	if (i < n && s[i] == ' ')
		i++;
	const char *v = s + i;
	size_t vlen = n - i;
	size_t name_off = r->text.len;
	loom_buf_add(&r->text, s, nlen);
	loom_buf_addc(&r->text, '\0');
	size_t val_off = r->text.len;
	if (b64) {
		size_t max = vlen / 4 * 3 + 3;
		loom_buf_reserve(&r->text, max + 1);
		size_t got = 0;
		const char *end = NULL;
		if (sodium_base642bin((unsigned char *)r->text.data + r->text.len, max, v, vlen, " \t", &got, &end,
			sodium_base64_VARIANT_ORIGINAL) != 0 || end != v + vlen) {
			size_t at = end ? (size_t)(end - s) : i;
			set_err(e, r->line, (unsigned)at + 1, record_line, "bad base64 value of '%.*s'",
			    (int)(nlen > 48 ? 48 : nlen), s);
			return -1;
		}
		r->text.len += got;
		vlen = got;
	} else {
		size_t bad;
		if (!utf8_ok((const unsigned char *)v, vlen, &bad)) {
			set_err(e, r->line, (unsigned)(i + bad) + 1, record_line,
			    "value of '%.*s' is not UTF-8 text (or holds a NUL): write it in base64 after '%c%c'",
			    (int)(nlen > 48 ? 48 : nlen), s, r->sep, r->sep);
			return -1;
		}
		loom_buf_add(&r->text, v, vlen);
	}
	loom_buf_addc(&r->text, '\0');
	r->pairs = loom_realloc(r->pairs, (r->npairs + 1) * sizeof *r->pairs);
	r->offs = loom_realloc(r->offs, (r->npairs + 1) * 2 * sizeof *r->offs);
	r->offs[2 * r->npairs] = name_off;
	r->offs[2 * r->npairs + 1] = val_off;
	r->pairs[r->npairs].len = vlen;
	r->pairs[r->npairs].line = r->line;
	r->npairs++;
	return 0;
}

int loom_avp_read(loom_avp_reader_t *r, loom_avp_record_t *ret, loom_avp_error_t *ret_err)
{
	if (r->dead)
		return 0;
	loom_buf_reset(&r->text);
	r->npairs = 0;
	unsigned record_line = 0;
	bool bad = false;
	for (;;) {
		const char *s;
		size_t n;
		int rc = next_line(r, &s, &n);
		if (rc == -1) {
			set_err(ret_err, r->line, 1, record_line, "cannot read: %s", strerror(errno));
			if (ret_err)
				ret_err->fatal = true;
			r->dead = true;
			return -1;
		}
		if (rc == 0 || (rc == 1 && blank_line(s, n))) {
			if (record_line == 0) {
				if (rc == 0)
					return 0;
				continue; /* blank lines before an object */
			}
			if (bad)
				return -1;
			for (size_t i = 0; i < r->npairs; i++) {
				r->pairs[i].name = r->text.data + r->offs[2 * i];
				r->pairs[i].value = r->text.data + r->offs[2 * i + 1];
			}
			ret->n = r->npairs;
			ret->pairs = r->pairs;
			ret->line = record_line;
			return 1;
		}
		if (rc == 1 && s[0] == '#')
			continue;
		if (record_line == 0)
			record_line = r->line;
		if (bad)
			continue; /* skipping the rest of a refused object */
		if (rc == -2) {
			set_err(ret_err, r->line, 1, record_line, "line longer than %zu bytes", r->max_line);
			bad = true;
			continue;
		}
		if (parse_pair(r, s, n, record_line, ret_err) < 0)
			bad = true;
	}
}

static bool plain_ok(const char *v, size_t len)
{
	if (len && (v[0] == ' ' || v[len - 1] == '\r'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (v[i] == '\n' || v[i] == '\r' || v[i] == '\0')
			return false;
	size_t bad;
	return utf8_ok((const unsigned char *)v, len, &bad);
}

void loom_avp_write_pair(loom_buf_t *out, char sep, const char *name, const char *value, size_t len)
{
	if (sep == '\0')
		sep = ':';
	loom_buf_adds(out, name);
	if (plain_ok(value, len)) {
		loom_buf_addc(out, sep);
		if (len)
			loom_buf_addc(out, ' ');
		loom_buf_add(out, value, len);
	} else {
		size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
		loom_buf_reserve(out, n + 4);
		loom_buf_addc(out, sep);
		loom_buf_addc(out, sep);
		loom_buf_addc(out, ' ');
		sodium_bin2base64(out->data + out->len, n, (const unsigned char *)value, len, sodium_base64_VARIANT_ORIGINAL);
		out->len += n - 1;
	}
	loom_buf_addc(out, '\n');
}

void loom_avp_write_end(loom_buf_t *out)
{
	loom_buf_addc(out, '\n');
}
