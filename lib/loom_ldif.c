/* loom_ldif.c - streaming LDIF reader and writer (RFC 2849).
 *
 * Reader
 * ------
 * Input sits in one buffer, buf[start..end), refilled by 64 KiB reads; one
 * spare byte past `end` is always allocated so a value at the very end of
 * the input can be NUL-terminated. loom_ldif_read() goes through three
 * steps, each a function below:
 *
 *   find_block   skip blank lines (empty, or spaces/tabs only), then scan
 *                physical lines up to the next empty line or the end of the
 *                input. While the block is incomplete the buffer is compacted
 *                (block moved to the front) and refilled; a block longer than
 *                max_record is an error, and skip_block() then discards input
 *                up to the next empty line without keeping it.
 *   parse_block  walks the block's logical lines (next_line: continuation
 *                lines are folded in place, comments and their continuations
 *                are dropped), checks the grammar and decodes values in
 *                place: unfolding and base64 only ever shrink text, and the
 *                byte after a name or value (its ':' or line end) becomes its
 *                NUL. A block holding only comments (or only "version: 1")
 *                yields no record and the next block is tried.
 *   group        values of content/add records are collected in file order
 *                with the index of their attribute, then grouped per
 *                attribute by a counting sort when the file interleaved them.
 *
 * Whatever a block's outcome, `start` moves past it, so a bad record costs
 * exactly itself: the next read resumes at the next blank line. Reader
 * states, as flags:
 *
 *   seen_content  false until the first non-comment line of the file; only
 *                 then is "version:" allowed.
 *   eof           the source is exhausted (buf may still hold data).
 *   done          a read error was reported; every later read returns 0.
 *
 * Everything a record points to (buf, vals, attrs, mods, ctrls, blobs for
 * file URL contents) is reused or freed at the next read.
 */
#include "loom_ldif.h"
#include "loom_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define DEFAULT_MAX_RECORD ((size_t)16 * 1024 * 1024)
#define DEFAULT_FOLD 76
#define QUOTE_MAX 48

/* Grows array arr (capacity cap, in elements) to hold need elements. */
#define GROW(arr, cap, need) do { \
	if ((need) > (cap)) { \
		size_t nc_ = (cap) ? (cap) * 2 : 16; \
		while (nc_ < (need)) \
			nc_ *= 2; \
		(arr) = loom_realloc((arr), nc_ * sizeof *(arr)); \
		(cap) = nc_; \
	} \
} while (0)

/* Where a continuation line starts inside a logical line (for columns). */
typedef struct seg {
	size_t off;     /* offset in the unfolded line of the continuation's first byte */
	unsigned line;  /* its physical line */
} seg_t;

/* One unfolded line of a block. */
typedef struct lline {
	char *s;        /* text, unfolded in place, not NUL-terminated */
	size_t len;     /* its length */
	unsigned line;  /* physical line of its first byte */
} lline_t;

/* Walks the physical lines of one block. */
typedef struct lexer {
	char *p;        /* next physical line */
	char *end;      /* end of the block */
	unsigned line;  /* number of the physical line at p */
} lexer_t;

/* How a value is given. */
typedef enum { VAL_PLAIN, VAL_B64, VAL_URL } vtype_t;

/* A logical line split at its first colon. */
typedef struct spec {
	char *name;       /* attribute description, NUL-terminated in place */
	size_t name_len;  /* its length */
	uint32_t hash;    /* case-folded hash of the name */
	vtype_t type;     /* plain, "::" base64 or ":<" URL */
	char *val;        /* value text after FILL */
	size_t val_len;   /* its length */
} spec_t;

/* What identifies an attribute description for grouping. */
typedef struct akey {
	uint32_t hash;    /* case-folded hash */
	size_t len;       /* length of the description */
} akey_t;

struct loom_ldif_reader {
	int fd;                       /* source, or -1 for memory */
	const char *mem;              /* memory source */
	size_t mem_len;               /* its length */
	size_t mem_pos;               /* bytes of it consumed */
	loom_ldif_opts_t opts;        /* copy, defaults applied */
	char *base_dir;               /* owned copy of opts.url_base_dir */
	char *buf;                    /* input buffer */
	size_t cap;                   /* its size */
	size_t start;                 /* first byte not yet consumed */
	size_t end;                   /* end of the data read */
	bool eof;                     /* source exhausted */
	bool done;                    /* fatal error reported: reads return 0 */
	bool seen_content;            /* a non-comment line has been read */
	unsigned line;                /* physical line number at buf[start] */
	loom_ldif_error_t err;        /* error being built */
	seg_t *segs;                  /* continuations of the current logical line */
	size_t nsegs;                 /* how many */
	size_t segs_cap;              /* allocated */
	loom_ldif_value_t *vals;      /* values of the record */
	uint32_t *vgroup;             /* attribute / mod index of each value */
	size_t nvals;                 /* how many */
	size_t vals_cap;              /* allocated in vals */
	size_t vgroup_cap;            /* allocated in vgroup */
	loom_ldif_value_t *vtmp;      /* scratch for grouping */
	size_t vtmp_cap;              /* allocated */
	size_t *gcount;               /* values per group, then group ends */
	size_t gcount_cap;            /* allocated */
	bool vsorted;                 /* vgroup is non-decreasing */
	loom_ldif_attr_t *attrs;      /* attributes of the record */
	akey_t *akeys;                /* their lookup keys */
	size_t nattrs;                /* how many */
	size_t attrs_cap;             /* allocated in attrs */
	size_t akeys_cap;             /* allocated in akeys */
	loom_ldif_mod_t *mods;        /* mod-specs of the record */
	size_t nmods;                 /* how many */
	size_t mods_cap;              /* allocated */
	loom_ldif_control_t *ctrls;   /* controls of the record */
	size_t nctrls;                /* how many */
	size_t ctrls_cap;             /* allocated */
	char **blobs;                 /* file URL contents of the record */
	size_t nblobs;                /* how many */
	size_t blobs_cap;             /* allocated */
	size_t budget;                /* bytes file URLs may still add to the record */
};

struct loom_ldif_writer {
	loom_buf_t *out;     /* borrowed output */
	unsigned fold;       /* longest line before folding */
	bool version;        /* write "version: 1" first */
	bool started;        /* a record has been written */
	size_t col;          /* bytes on the current output line */
	char err[256];       /* last error message */
};

/* ---- character classes ---------------------------------------------------- */

static inline bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bytes of an attribute description: ALPHA DIGIT '-' ';' and, leniently,
 * '.' (numeric OIDs) and '_' (seen in the wild). */
static inline bool is_desc_char(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == ';' || c == '.' || c == '_';
}

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Index of the first byte that makes s[0..n) a bad attribute description
 * (n when it is good): it starts with a letter or digit, and every ';'
 * introduces a non-empty option. */
static size_t desc_check(const char *s, size_t n)
{
	if (n == 0 || !is_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_desc_char(c))
			return i;
		if (c == ';' && (i + 1 == n || s[i + 1] == ';'))
			return i;
	}
	return n;
}

/* Index of the first byte of s[0..n) that is not well-formed UTF-8, or n. */
static size_t utf8_check(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		unsigned min;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			min = 0x10000;
		} else {
			return i;
		}
		if (n - i <= need)
			return i;
		unsigned cp = c & (0x3f >> need);
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += need + 1;
	}
	return n;
}

/* ---- base64 ---------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of each base64 digit, -1 for anything else ('=' included). */
static const signed char b64val[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Why a base64 text was refused. */
typedef enum { B64_OK, B64_BAD_CHAR, B64_BAD_LENGTH, B64_BAD_PAD } b64_status_t;

/* Decodes s[0..n) in place (the output never overtakes the input). On
 * failure *ret_bad is the offset of the first offending byte. */
static b64_status_t b64_decode(char *s, size_t n, size_t *ret_len, size_t *ret_bad)
{
	const unsigned char *in = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		if (n - i < 4) {
			/* Find a bad character before calling the length wrong. */
			for (size_t k = i; k < n; k++)
				if (b64val[in[k]] < 0 && in[k] != '=') {
					*ret_bad = k;
					return B64_BAD_CHAR;
				}
			*ret_bad = n;
			return B64_BAD_LENGTH;
		}
		int a = b64val[in[i]], b = b64val[in[i + 1]];
		int c = b64val[in[i + 2]], d = b64val[in[i + 3]];
		if ((a | b | c | d) >= 0) {
			uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
			s[o++] = (char)(v >> 16);
			s[o++] = (char)(v >> 8);
			s[o++] = (char)v;
			continue;
		}
		/* Something else than four digits: padding at the very end, or an error. */
		for (size_t k = i; k < i + 4; k++) {
			if (b64val[in[k]] >= 0)
				continue;
			if (in[k] != '=') {
				*ret_bad = k;
				return B64_BAD_CHAR;
			}
			if (k - i < 2 || i + 4 != n || (k - i == 2 && in[i + 3] != '=')) {
				*ret_bad = k;
				return B64_BAD_PAD;
			}
			break;
		}
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12;
		s[o++] = (char)(v >> 16);
		if (c >= 0) {
			v |= (uint32_t)c << 6;
			s[o++] = (char)(v >> 8);
		}
	}
	*ret_len = o;
	return B64_OK;
}

/* ---- errors ---------------------------------------------------------------- */

/* Writes s[0..n) into dst as a printable excerpt: at most QUOTE_MAX input
 * bytes, controls and non-ASCII as \xHH, "..." when cut. */
static void quote(char *dst, size_t dstlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, lim = n < QUOTE_MAX ? n : QUOTE_MAX;
	for (size_t i = 0; i < lim && o + 8 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (n > lim) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

/* Room for a quoted excerpt. */
typedef struct qbuf {
	char s[QUOTE_MAX * 4 + 8];  /* the excerpt */
} qbuf_t;

static const char *q(qbuf_t *b, const char *s, size_t n)
{
	quote(b->s, sizeof b->s, s, n);
	return b->s;
}

static int fail(loom_ldif_reader_t *r, unsigned line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records an error at line:col in r->err; returns -1. */
static int fail(loom_ldif_reader_t *r, unsigned line, size_t col, const char *fmt, ...)
{
	va_list ap;
	r->err.line = line;
	r->err.column = col > UINT_MAX ? UINT_MAX : (unsigned)col;
	va_start(ap, fmt);
	vsnprintf(r->err.message, sizeof r->err.message, fmt, ap);
	va_end(ap);
	return -1;
}

/* Physical line and column of pos, a byte of logical line l (or its end). */
static void where(const loom_ldif_reader_t *r, const lline_t *l, const char *pos, unsigned *ret_line,
    size_t *ret_col)
{
	size_t off = (size_t)(pos - l->s);
	unsigned line = l->line;
	size_t col = off + 1;
	for (size_t i = 0; i < r->nsegs && r->segs[i].off <= off; i++) {
		line = r->segs[i].line;
		col = off - r->segs[i].off + 2;
	}
	*ret_line = line;
	*ret_col = col;
}

static int fail_at(loom_ldif_reader_t *r, const lline_t *l, const char *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records an error at byte pos of logical line l; returns -1. */
static int fail_at(loom_ldif_reader_t *r, const lline_t *l, const char *pos, const char *fmt, ...)
{
	va_list ap;
	unsigned line;
	size_t col;
	where(r, l, pos, &line, &col);
	r->err.line = line;
	r->err.column = col > UINT_MAX ? UINT_MAX : (unsigned)col;
	va_start(ap, fmt);
	vsnprintf(r->err.message, sizeof r->err.message, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- input ----------------------------------------------------------------- */

/* Moves unconsumed data to the front and reads one more chunk; *pos (an
 * index into buf, may be NULL) follows the move. Returns 0, or -1 after a
 * read error (r->err filled, fatal). */
static int refill(loom_ldif_reader_t *r, size_t *pos)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		if (pos)
			*pos -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < READ_CHUNK + 1) {
		size_t nc = r->cap ? r->cap : 2 * READ_CHUNK;
		while (nc - r->end < READ_CHUNK + 1)
			nc *= 2;
		r->buf = loom_realloc(r->buf, nc);
		r->cap = nc;
	}
	size_t got;
	if (r->fd >= 0) {
		ssize_t n;
		do
			n = read(r->fd, r->buf + r->end, READ_CHUNK);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			fail(r, r->line, 0, "cannot read ldif input: %s", strerror(errno));
			r->err.fatal = true;
			return -1;
		}
		got = (size_t)n;
	} else {
		got = r->mem_len - r->mem_pos;
		if (got > READ_CHUNK)
			got = READ_CHUNK;
		if (got)
			memcpy(r->buf + r->end, r->mem + r->mem_pos, got);
		r->mem_pos += got;
	}
	if (got == 0)
		r->eof = true;
	r->end += got;
	return 0;
}

/* Discards input from `start` (a line start) up to the next empty line or
 * the end of input, keeping no more than one chunk. */
static int skip_block(loom_ldif_reader_t *r)
{
	bool bol = true;  /* start is at the beginning of a line */
	for (;;) {
		if (r->start == r->end) {
			if (r->eof)
				return 0;
			if (refill(r, NULL) < 0)
				return -1;
			continue;
		}
		const char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		if (bol && *s == '\n')
			return 0;
		if (bol && *s == '\r') {
			if (avail == 1) {
				if (r->eof)
					return 0;
				if (refill(r, NULL) < 0)
					return -1;
				continue;
			}
			if (s[1] == '\n')
				return 0;
		}
		const char *nl = memchr(s, '\n', avail);
		if (nl) {
			r->start += (size_t)(nl - s) + 1;
			r->line++;
			bol = true;
			continue;
		}
		if (r->eof) {
			r->start = r->end;
			r->line++;
			return 0;
		}
		r->start = r->end;
		bol = false;
		if (refill(r, NULL) < 0)
			return -1;
	}
}

/* Finds the next block of non-empty lines: returns 1 with it at
 * buf[start..*ret_end) spanning *ret_nlines physical lines, 0 at the end of
 * input, -1 on error (r->err filled; the oversized block skipped). */
static int find_block(loom_ldif_reader_t *r, size_t *ret_end, unsigned *ret_nlines)
{
	size_t max = r->opts.max_record;

	/* Blank lines between records. */
	for (;;) {
		if (r->start == r->end) {
			if (r->eof)
				return 0;
			if (refill(r, NULL) < 0)
				return -1;
			continue;
		}
		const char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		if (*s == '\n') {
			r->start++;
			r->line++;
			continue;
		}
		if (*s != '\r' && *s != ' ' && *s != '\t')
			break;
		const char *nl = memchr(s, '\n', avail);
		size_t n = nl ? (size_t)(nl - s) : avail;
		if (nl == NULL && !r->eof) {
			if (n > max)
				break; /* not blank as far as we care: the block scan refuses it */
			if (refill(r, NULL) < 0)
				return -1;
			continue;
		}
		size_t k = 0;
		while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
			k++;
		if (k < n)
			break;
		r->start += nl ? n + 1 : n;
		r->line++;
	}

	/* The block: lines up to an empty one. */
	size_t pos = r->start;
	unsigned nlines = 0;
	for (;;) {
		if (pos == r->end) {
			if (r->eof)
				break;
		} else {
			char c = r->buf[pos];
			if (pos > r->start && c == '\n')
				break;
			if (pos > r->start && c == '\r') {
				if (pos + 1 == r->end && r->eof)
					break;
				if (pos + 1 < r->end && r->buf[pos + 1] == '\n')
					break;
			}
			/* A CR as the last byte buffered may start an empty CRLF line:
			 * wait for the next byte unless there is none. */
			if (!(c == '\r' && pos + 1 == r->end && !r->eof)) {
				const char *nl = memchr(r->buf + pos, '\n', r->end - pos);
				if (nl) {
					pos = (size_t)(nl - r->buf) + 1;
					nlines++;
					if (pos - r->start <= max)
						continue;
				} else if (r->eof) {
					pos = r->end;
					nlines++;
					if (pos - r->start <= max)
						break;
				}
			}
		}
		/* pos is a line start; the line after it is incomplete, and a
		 * block holding it is at least what is buffered (less a byte
		 * when that line is a lone CR). */
		if (pos - r->start > max || r->end - r->start > max + 1) {
			unsigned first = r->line;
			r->line += nlines;
			r->start = pos;
			fail(r, first, 1, "record too long: more than %zu bytes (max_record) without a blank line",
			    max);
			r->err.record_line = first;
			if (skip_block(r) < 0)
				return -1;
			r->err.line = first;
			r->err.column = 1;
			return -1;
		}
		if (refill(r, &pos) < 0)
			return -1;
	}
	*ret_end = pos;
	*ret_nlines = nlines;
	return 1;
}

/* ---- logical lines --------------------------------------------------------- */

/* Next logical line of the block: continuation lines (a leading space, which
 * is removed) are appended in place, CR of CRLF dropped, comments and their
 * continuations skipped. Returns 1, 0 at the end of the block, -1 on error. */
static int next_line(loom_ldif_reader_t *r, lexer_t *lx, lline_t *l)
{
	for (;;) {
		if (lx->p >= lx->end)
			return 0;
		char *s = lx->p;
		char *nl = memchr(s, '\n', (size_t)(lx->end - s));
		char *le = nl ? nl : lx->end;
		lx->p = nl ? nl + 1 : lx->end;
		if (le > s && le[-1] == '\r')
			le--;
		unsigned line = lx->line++;
		bool comment = *s == '#';
		if (*s == ' ')
			return fail(r, line, 1, "continuation line with nothing to continue: expected a line that "
			    "does not start with a space");
		char *w = le;
		r->nsegs = 0;
		while (lx->p < lx->end && *lx->p == ' ') {
			char *c = lx->p + 1;
			nl = memchr(c, '\n', (size_t)(lx->end - c));
			char *ce = nl ? nl : lx->end;
			lx->p = nl ? nl + 1 : lx->end;
			if (ce > c && ce[-1] == '\r')
				ce--;
			if (!comment) {
				GROW(r->segs, r->segs_cap, r->nsegs + 1);
				r->segs[r->nsegs].off = (size_t)(w - s);
				r->segs[r->nsegs].line = lx->line;
				r->nsegs++;
				if (w != c)
					memmove(w, c, (size_t)(ce - c));
				w += ce - c;
			}
			lx->line++;
		}
		if (comment)
			continue;
		l->s = s;
		l->len = (size_t)(w - s);
		l->line = line;
		return 1;
	}
}

/* True when l is a mod-spec separator: "-" and optional trailing spaces. */
static bool is_dash(const lline_t *l)
{
	if (l->len == 0 || l->s[0] != '-')
		return false;
	for (size_t i = 1; i < l->len; i++)
		if (l->s[i] != ' ')
			return false;
	return true;
}

/* Splits l into description and value spec; the name is NUL-terminated. */
static int split(loom_ldif_reader_t *r, const lline_t *l, spec_t *sp)
{
	char *s = l->s;
	size_t n = l->len, i = 0;
	uint32_t h = 2166136261u;
	qbuf_t q1, q2;
	while (i < n && is_desc_char((unsigned char)s[i])) {
		h = (h ^ lower((unsigned char)s[i])) * 16777619u;
		i++;
	}
	if (i == n || s[i] != ':') {
		if (memchr(s + i, ':', n - i) == NULL)
			return fail_at(r, l, s, "line without colon '%s': expected 'attribute: value'",
			    q(&q1, s, n));
		return fail_at(r, l, s + i, "bad attribute description '%s': unexpected '%s', expected "
		    "letters, digits, '-', '.' or ';' up to the colon", q(&q1, s, i), q(&q2, s + i, 1));
	}
	size_t bad = desc_check(s, i);
	if (bad < i || i == 0)
		return fail_at(r, l, s + bad, "bad attribute description '%s': expected a name starting with "
		    "a letter or digit and non-empty ';' options", q(&q1, s, i));
	sp->name = s;
	sp->name_len = i;
	sp->hash = h;
	size_t j = i + 1;
	sp->type = VAL_PLAIN;
	if (j < n && s[j] == ':') {
		sp->type = VAL_B64;
		j++;
	} else if (j < n && s[j] == '<') {
		sp->type = VAL_URL;
		j++;
	}
	while (j < n && s[j] == ' ')
		j++;
	sp->val = s + j;
	sp->val_len = n - j;
	s[i] = '\0';
	return 0;
}

/* The byte after the colon of sp (where "::" or ":<" would show). */
static const char *after_colon(const spec_t *sp)
{
	return sp->name + sp->name_len + 1;
}

/* True when sp's description is the keyword kw (lowercase). */
static bool is_kw(const spec_t *sp, const char *kw)
{
	size_t n = strlen(kw);
	return sp->name_len == n && strncasecmp(sp->name, kw, n) == 0;
}

/* The text of a plain keyword-ish value, without trailing spaces. */
static size_t trimmed(const spec_t *sp)
{
	size_t n = sp->val_len;
	while (n > 0 && sp->val[n - 1] == ' ')
		n--;
	return n;
}

/* ---- values ---------------------------------------------------------------- */

/* Reads a file:// URL value into a blob owned by the record. */
static int load_url(loom_ldif_reader_t *r, const lline_t *l, char *url, size_t n, const char *what,
    loom_ldif_value_t *ret)
{
	qbuf_t q1, q2;
	while (n > 0 && url[n - 1] == ' ')
		n--;
	if (n < 7 || strncasecmp(url, "file://", 7) != 0)
		return fail_at(r, l, url, "unsupported url '%s' for '%s': expected a file:// url",
		    q(&q1, url, n), q(&q2, what, strlen(what)));
	if (!r->opts.allow_file_urls)
		return fail_at(r, l, url, "file url refused '%s' for '%s': file urls are not allowed "
		    "(allow_file_urls)", q(&q1, url, n), q(&q2, what, strlen(what)));
	size_t i = 7;
	const char *slash = memchr(url + i, '/', n - i);
	size_t alen = slash ? (size_t)(slash - (url + i)) : n - i;
	if (!(alen == 0 || (alen == 9 && strncasecmp(url + i, "localhost", 9) == 0)) || slash == NULL)
		return fail_at(r, l, url, "file url refused '%s' for '%s': expected file:///path or "
		    "file://localhost/path", q(&q1, url, n), q(&q2, what, strlen(what)));
	i += alen;

	/* Percent-decode the path. */
	char *path = loom_malloc(n - i + 1);
	size_t pl = 0;
	for (; i < n; i++) {
		char c = url[i];
		if (c == '%') {
			unsigned v = 0;
			bool ok = i + 2 < n;
			for (size_t k = 1; ok && k <= 2; k++) {
				unsigned char d = (unsigned char)url[i + k];
				v <<= 4;
				if (d >= '0' && d <= '9')
					v |= d - '0';
				else if (lower(d) >= 'a' && lower(d) <= 'f')
					v |= lower(d) - 'a' + 10;
				else
					ok = false;
			}
			if (!ok || v == 0) {
				free(path);
				return fail_at(r, l, url + i, "file url refused '%s' for '%s': bad %%-escape",
				    q(&q1, url, n), q(&q2, what, strlen(what)));
			}
			c = (char)v;
			i += 2;
		}
		path[pl++] = c;
	}
	path[pl] = '\0';
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0')) {
			free(path);
			return fail_at(r, l, url, "file url refused '%s' for '%s': '..' is not allowed in the path",
			    q(&q1, url, n), q(&q2, what, strlen(what)));
		}
	}
	if (r->base_dir == NULL) {
		free(path);
		return fail_at(r, l, url, "file url refused '%s' for '%s': no url_base_dir set",
		    q(&q1, url, n), q(&q2, what, strlen(what)));
	}
	char *base = realpath(r->base_dir, NULL);
	if (base == NULL) {
		int e = errno;
		free(path);
		return fail_at(r, l, url, "cannot resolve url_base_dir '%s': %s",
		    q(&q1, r->base_dir, strlen(r->base_dir)), strerror(e));
	}
	char *real = realpath(path, NULL);
	int rc = -1;
	int fd = -1;
	if (real == NULL) {
		fail_at(r, l, url, "cannot read file url '%s' for '%s': %s", q(&q1, url, n),
		    q(&q2, what, strlen(what)), strerror(errno));
		goto out_free;
	}
	size_t bl = strlen(base);
	if (!(strcmp(base, "/") == 0 || (strncmp(real, base, bl) == 0 && real[bl] == '/'))) {
		fail_at(r, l, url, "file url refused '%s' for '%s': not under url_base_dir '%s'",
		    q(&q1, url, n), q(&q2, what, strlen(what)), base);
		goto out_free;
	}
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fail_at(r, l, url, "cannot read file url '%s' for '%s': %s", q(&q1, url, n),
		    q(&q2, what, strlen(what)), strerror(errno));
		goto out_free;
	}
	if (!S_ISREG(st.st_mode)) {
		fail_at(r, l, url, "cannot read file url '%s' for '%s': not a regular file", q(&q1, url, n),
		    q(&q2, what, strlen(what)));
		goto out_free;
	}
	if ((uintmax_t)st.st_size > r->budget) {
		fail_at(r, l, url, "cannot read file url '%s' for '%s': %jd bytes make the record larger "
		    "than max_record", q(&q1, url, n), q(&q2, what, strlen(what)), (intmax_t)st.st_size);
		goto out_free;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *blob = loom_malloc(size + 1);
	while (got < size) {
		ssize_t k = read(fd, blob + got, size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(blob);
			fail_at(r, l, url, "cannot read file url '%s' for '%s': %s", q(&q1, url, n),
			    q(&q2, what, strlen(what)), k < 0 ? strerror(errno) : "file shrank while read");
			goto out_free;
		}
		got += (size_t)k;
	}
	blob[size] = '\0';
	GROW(r->blobs, r->blobs_cap, r->nblobs + 1);
	r->blobs[r->nblobs++] = blob;
	r->budget -= size;
	ret->data = blob;
	ret->len = size;
	rc = 0;
out_free:
	if (fd >= 0)
		close(fd);
	free(real);
	free(base);
	free(path);
	return rc;
}

/* Decodes a value given as type at val[0..n) of line l; `what` names it in
 * errors. The result is NUL-terminated. */
static int decode(loom_ldif_reader_t *r, const lline_t *l, vtype_t type, char *val, size_t n,
    const char *what, loom_ldif_value_t *ret)
{
	qbuf_t q1, q2;
	switch (type) {
	case VAL_PLAIN: {
		if (n > 0) {
			const char *bad = memchr(val, '\0', n);
			if (bad == NULL)
				bad = memchr(val, '\r', n);
			if (bad)
				return fail_at(r, l, bad, "bad value for '%s': %s is not allowed in a plain value, "
				    "expected base64 ('::')", q(&q1, what, strlen(what)),
				    *bad ? "a carriage return" : "a NUL byte");
		}
		val[n] = '\0';
		ret->data = val;
		ret->len = n;
		return 0;
	}
	case VAL_B64: {
		size_t len, bad;
		while (n > 0 && val[n - 1] == ' ')
			n--;
		switch (b64_decode(val, n, &len, &bad)) {
		case B64_OK:
			break;
		case B64_BAD_CHAR:
			return fail_at(r, l, val + bad, "bad base64 value for '%s': unexpected '%s', expected "
			    "A-Z a-z 0-9 + / or = padding", q(&q1, what, strlen(what)), q(&q2, val + bad, 1));
		case B64_BAD_LENGTH:
			return fail_at(r, l, val + bad, "bad base64 value for '%s': %zu characters, expected a "
			    "multiple of 4", q(&q1, what, strlen(what)), n);
		case B64_BAD_PAD:
			return fail_at(r, l, val + bad, "bad base64 value for '%s': misplaced '=', expected "
			    "padding only at the end", q(&q1, what, strlen(what)));
		}
		val[len] = '\0';
		ret->data = val;
		ret->len = len;
		return 0;
	}
	case VAL_URL:
		return load_url(r, l, val, n, what, ret);
	}
	return -1;
}

/* Decodes a DN-like value (dn, newrdn, newsuperior): no URL, UTF-8 checked
 * when asked. */
static int decode_dn(loom_ldif_reader_t *r, const lline_t *l, const spec_t *sp, const char *what,
    loom_ldif_value_t *ret)
{
	if (sp->type == VAL_URL)
		return fail_at(r, l, after_colon(sp), "bad %s: a url is not allowed, expected '%s:' or '%s::'",
		    what, what, what);
	if (decode(r, l, sp->type, sp->val, sp->val_len, what, ret) < 0)
		return -1;
	if (r->opts.validate_utf8_dn) {
		size_t bad = utf8_check(ret->data, ret->len);
		if (bad < ret->len)
			return fail_at(r, l, sp->type == VAL_PLAIN ? sp->val + bad : sp->val,
			    "bad %s: not valid UTF-8 at byte %zu", what, bad + 1);
	}
	return 0;
}

/* ---- record assembly ------------------------------------------------------- */

static void push_value(loom_ldif_reader_t *r, size_t group, const loom_ldif_value_t *v)
{
	GROW(r->vals, r->vals_cap, r->nvals + 1);
	GROW(r->vgroup, r->vgroup_cap, r->nvals + 1);
	if (r->nvals > 0 && r->vgroup[r->nvals - 1] > group)
		r->vsorted = false;
	r->vals[r->nvals] = *v;
	r->vgroup[r->nvals] = (uint32_t)group;
	r->nvals++;
	r->gcount[group]++;
}

/* Index of the attribute described by sp, added when new. */
static size_t attr_index(loom_ldif_reader_t *r, const spec_t *sp)
{
	for (size_t k = r->nattrs; k-- > 0;) {
		const akey_t *a = &r->akeys[k];
		if (a->hash == sp->hash && a->len == sp->name_len &&
		    strncasecmp(r->attrs[k].name, sp->name, sp->name_len) == 0)
			return k;
	}
	size_t k = r->nattrs++;
	GROW(r->attrs, r->attrs_cap, r->nattrs);
	GROW(r->akeys, r->akeys_cap, r->nattrs);
	GROW(r->gcount, r->gcount_cap, r->nattrs);
	r->attrs[k].name = sp->name;
	r->attrs[k].n = 0;
	r->attrs[k].v = NULL;
	r->akeys[k].hash = sp->hash;
	r->akeys[k].len = sp->name_len;
	r->gcount[k] = 0;
	return k;
}

/* Groups the values by group index (stable) and leaves in gcount[g] the end
 * of group g in vals. */
static void group_values(loom_ldif_reader_t *r, size_t ngroups)
{
	size_t total = 0;
	for (size_t g = 0; g < ngroups; g++) {
		size_t c = r->gcount[g];
		r->gcount[g] = total;
		total += c;
	}
	if (r->vsorted) {
		for (size_t g = 0; g + 1 < ngroups; g++)
			r->gcount[g] = r->gcount[g + 1];
		if (ngroups)
			r->gcount[ngroups - 1] = total;
		return;
	}
	GROW(r->vtmp, r->vtmp_cap, r->nvals);
	for (size_t i = 0; i < r->nvals; i++)
		r->vtmp[r->gcount[r->vgroup[i]]++] = r->vals[i];
	loom_ldif_value_t *t = r->vals;
	size_t tc = r->vals_cap;
	r->vals = r->vtmp;
	r->vals_cap = r->vtmp_cap;
	r->vtmp = t;
	r->vtmp_cap = tc;
}

/* Start and count of group g after group_values. */
static void group_range(const loom_ldif_reader_t *r, size_t g, const loom_ldif_value_t **ret_v,
    size_t *ret_n)
{
	size_t from = g ? r->gcount[g - 1] : 0;
	*ret_n = r->gcount[g] - from;
	*ret_v = *ret_n ? r->vals + from : NULL;
}

/* True for names that cannot be attributes in a record body. */
static bool reserved(const spec_t *sp)
{
	return is_kw(sp, "dn") || is_kw(sp, "changetype") || is_kw(sp, "control");
}

/* Attribute lines of a content or add record, starting with the already
 * split line l/sp (or reading the first one when have_first is false). */
static int parse_attrs(loom_ldif_reader_t *r, lexer_t *lx, lline_t *l, spec_t *sp, bool have_first,
    loom_ldif_record_t *rec)
{
	qbuf_t q1;
	int rc;
	if (!have_first) {
		rc = next_line(r, lx, l);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return fail(r, lx->line - 1, 1, "add record without attributes: expected "
			    "'attribute: value' lines after 'changetype: add'");
		if (split(r, l, sp) < 0)
			return -1;
	}
	for (;;) {
		if (reserved(sp))
			return fail_at(r, l, l->s, "unexpected '%s:' line among attributes: expected "
			    "'attribute: value' (a new record needs a blank line before it)",
			    q(&q1, sp->name, sp->name_len));
		loom_ldif_value_t v;
		if (decode(r, l, sp->type, sp->val, sp->val_len, sp->name, &v) < 0)
			return -1;
		push_value(r, attr_index(r, sp), &v);
		rc = next_line(r, lx, l);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		if (split(r, l, sp) < 0)
			return -1;
	}
	group_values(r, r->nattrs);
	for (size_t k = 0; k < r->nattrs; k++)
		group_range(r, k, &r->attrs[k].v, &r->attrs[k].n);
	rec->nattrs = r->nattrs;
	rec->attrs = r->attrs;
	return 0;
}

/* Fails when mod k is an increment without exactly one value. */
static int check_increment(loom_ldif_reader_t *r, size_t k, unsigned line)
{
	qbuf_t q1;
	const loom_ldif_mod_t *m = &r->mods[k];
	if (m->op != LOOM_LDIF_MOD_INCREMENT || r->gcount[k] == 1)
		return 0;
	return fail(r, line, 1, "bad increment of '%s': %zu values, expected exactly one",
	    q(&q1, m->attr.name, r->akeys[k].len), r->gcount[k]);
}

static int parse_modify(loom_ldif_reader_t *r, lexer_t *lx, loom_ldif_record_t *rec)
{
	static const char *const ops[] = { "add", "delete", "replace", "increment" };
	qbuf_t q1, q2, q3;
	lline_t l;
	spec_t sp;
	bool in_mod = false;
	unsigned mod_line = 0;
	int rc;
	while ((rc = next_line(r, lx, &l)) > 0) {
		if (is_dash(&l)) {
			if (!in_mod)
				return fail_at(r, &l, l.s, "unexpected '-': expected 'add:', 'delete:', 'replace:' "
				    "or 'increment:'");
			if (check_increment(r, r->nmods - 1, mod_line) < 0)
				return -1;
			in_mod = false;
			continue;
		}
		if (split(r, &l, &sp) < 0)
			return -1;
		if (in_mod) {
			loom_ldif_mod_t *m = &r->mods[r->nmods - 1];
			size_t alen = r->akeys[r->nmods - 1].len;
			if (sp.name_len != alen || strncasecmp(sp.name, m->attr.name, alen) != 0)
				return fail_at(r, &l, l.s, "attribute '%s' in mod-spec '%s: %s': expected '%s' "
				    "values or '-'", q(&q1, sp.name, sp.name_len), ops[m->op],
				    q(&q2, m->attr.name, alen), q(&q3, m->attr.name, alen));
			loom_ldif_value_t v;
			if (decode(r, &l, sp.type, sp.val, sp.val_len, sp.name, &v) < 0)
				return -1;
			push_value(r, r->nmods - 1, &v);
			continue;
		}
		size_t op;
		for (op = 0; op < sizeof ops / sizeof ops[0]; op++)
			if (is_kw(&sp, ops[op]))
				break;
		if (op == sizeof ops / sizeof ops[0])
			return fail_at(r, &l, l.s, "bad modify operation '%s': expected add, delete, replace "
			    "or increment", q(&q1, sp.name, sp.name_len));
		if (sp.type != VAL_PLAIN)
			return fail_at(r, &l, after_colon(&sp), "bad mod-spec '%s': expected '%s: attribute'",
			    ops[op], ops[op]);
		size_t alen = trimmed(&sp);
		size_t bad = desc_check(sp.val, alen);
		if (bad < alen || alen == 0)
			return fail_at(r, &l, sp.val + bad, "bad attribute description '%s' in '%s:': expected "
			    "a name starting with a letter or digit and non-empty ';' options",
			    q(&q1, sp.val, alen), ops[op]);
		sp.val[alen] = '\0';
		size_t k = r->nmods++;
		GROW(r->mods, r->mods_cap, r->nmods);
		GROW(r->akeys, r->akeys_cap, r->nmods);
		GROW(r->gcount, r->gcount_cap, r->nmods);
		r->mods[k].op = (loom_ldif_modop_t)op;
		r->mods[k].attr.name = sp.val;
		r->mods[k].attr.n = 0;
		r->mods[k].attr.v = NULL;
		r->akeys[k].hash = 0; /* mods are matched by name only */
		r->akeys[k].len = alen;
		r->gcount[k] = 0;
		in_mod = true;
		mod_line = l.line;
	}
	if (rc < 0)
		return -1;
	/* The last mod-spec may end at the blank line without its "-". */
	if (in_mod && check_increment(r, r->nmods - 1, mod_line) < 0)
		return -1;
	group_values(r, r->nmods);
	for (size_t k = 0; k < r->nmods; k++)
		group_range(r, k, &r->mods[k].attr.v, &r->mods[k].attr.n);
	rec->nmods = r->nmods;
	rec->mods = r->nmods ? r->mods : NULL;
	return 0;
}

static int parse_modrdn(loom_ldif_reader_t *r, lexer_t *lx, unsigned ct_line, loom_ldif_record_t *rec)
{
	qbuf_t q1;
	lline_t l;
	spec_t sp;
	bool have_del = false;
	int rc;
	while ((rc = next_line(r, lx, &l)) > 0) {
		if (split(r, &l, &sp) < 0)
			return -1;
		loom_ldif_value_t v;
		if (is_kw(&sp, "newrdn") || is_kw(&sp, "newsuperior")) {
			bool rdn = is_kw(&sp, "newrdn");
			const char *what = rdn ? "newrdn" : "newsuperior";
			if (rdn ? rec->newrdn != NULL : rec->newsuperior != NULL)
				return fail_at(r, &l, l.s, "duplicate '%s:' line: expected one per record", what);
			if (decode_dn(r, &l, &sp, what, &v) < 0)
				return -1;
			if (rdn && v.len == 0)
				return fail_at(r, &l, sp.val, "bad newrdn: empty, expected an RDN such as 'cn=x'");
			if (rdn)
				rec->newrdn = v.data;
			else
				rec->newsuperior = v.data;
		} else if (is_kw(&sp, "deleteoldrdn")) {
			size_t n = trimmed(&sp);
			if (have_del)
				return fail_at(r, &l, l.s, "duplicate 'deleteoldrdn:' line: expected one per record");
			if (sp.type != VAL_PLAIN || n != 1 || (sp.val[0] != '0' && sp.val[0] != '1'))
				return fail_at(r, &l, sp.val, "bad deleteoldrdn '%s': expected 0 or 1",
				    q(&q1, sp.val, sp.type == VAL_PLAIN ? n : sp.val_len));
			rec->deleteoldrdn = sp.val[0] == '1';
			have_del = true;
		} else {
			return fail_at(r, &l, l.s, "unexpected '%s:' line in a modrdn record: expected newrdn, "
			    "deleteoldrdn or newsuperior", q(&q1, sp.name, sp.name_len));
		}
	}
	if (rc < 0)
		return -1;
	if (rec->newrdn == NULL)
		return fail(r, ct_line, 1, "modrdn record without newrdn: expected 'newrdn:' after the "
		    "changetype line");
	if (!have_del)
		return fail(r, ct_line, 1, "modrdn record without deleteoldrdn: expected 'deleteoldrdn: 0' "
		    "or 'deleteoldrdn: 1'");
	return 0;
}

/* control: OID [true|false] [value-spec] */
static int parse_control(loom_ldif_reader_t *r, const lline_t *l, spec_t *sp)
{
	qbuf_t q1;
	char *p = sp->val, *e = sp->val + sp->val_len;
	if (sp->type != VAL_PLAIN)
		return fail_at(r, l, after_colon(sp), "bad control line: expected 'control: OID'");
	char *oid = p;
	bool dot_ok = false;
	while (p < e && ((*p >= '0' && *p <= '9') || (*p == '.' && dot_ok))) {
		dot_ok = *p != '.';
		p++;
	}
	char *oid_end = p;
	if (oid_end == oid || oid_end[-1] == '.' || (p < e && *p != ' ' && *p != ':'))
		return fail_at(r, l, p < e && oid_end != oid && oid_end[-1] != '.' ? p : oid,
		    "bad control oid '%s': expected a numeric oid such as 1.2.840.113556.1.4.805",
		    q(&q1, oid, (size_t)(e - oid)));
	loom_ldif_control_t c = { .oid = oid };
	while (p < e && *p == ' ')
		p++;
	if (p > oid_end) {
		size_t rest = (size_t)(e - p);
		size_t wl = 0;
		if (rest >= 4 && strncasecmp(p, "true", 4) == 0)
			wl = 4;
		else if (rest >= 5 && strncasecmp(p, "false", 5) == 0)
			wl = 5;
		if (wl && (rest == wl || p[wl] == ':' || p[wl] == ' ')) {
			c.critical = wl == 4;
			p += wl;
			while (p < e && *p == ' ')
				p++;
		}
	}
	if (p < e) {
		if (*p != ':')
			return fail_at(r, l, p, "bad control line: unexpected '%s', expected 'true', 'false' "
			    "or ': value'", q(&q1, p, (size_t)(e - p)));
		p++;
		vtype_t type = VAL_PLAIN;
		if (p < e && *p == ':') {
			type = VAL_B64;
			p++;
		} else if (p < e && *p == '<') {
			type = VAL_URL;
			p++;
		}
		while (p < e && *p == ' ')
			p++;
		*oid_end = '\0';
		if (decode(r, l, type, p, (size_t)(e - p), "control", &c.value) < 0)
			return -1;
		c.has_value = true;
	}
	*oid_end = '\0';
	GROW(r->ctrls, r->ctrls_cap, r->nctrls + 1);
	r->ctrls[r->nctrls++] = c;
	return 0;
}

/* Parses one block: 1 with a record, 0 when it holds none, -1 on error. */
static int parse_block(loom_ldif_reader_t *r, char *p, char *end, unsigned line, loom_ldif_record_t *rec)
{
	static const struct { const char *name; loom_ldif_kind_t kind; } types[] = {
		{ "add", LOOM_LDIF_ADD }, { "delete", LOOM_LDIF_DELETE }, { "modify", LOOM_LDIF_MODIFY },
		{ "modrdn", LOOM_LDIF_MODRDN }, { "moddn", LOOM_LDIF_MODRDN },
	};
	qbuf_t q1;
	lexer_t lx = { p, end, line };
	lline_t l;
	spec_t sp;
	int rc = next_line(r, &lx, &l);
	if (rc <= 0)
		return rc;
	r->err.record_line = l.line;
	if (!r->seen_content) {
		r->seen_content = true;
		if (split(r, &l, &sp) < 0)
			return -1;
		if (is_kw(&sp, "version")) {
			size_t n = trimmed(&sp);
			if (sp.type != VAL_PLAIN || n != 1 || sp.val[0] != '1')
				return fail_at(r, &l, sp.val, "unsupported ldif version '%s': expected 1",
				    q(&q1, sp.val, sp.type == VAL_PLAIN ? n : sp.val_len));
			rc = next_line(r, &lx, &l);
			if (rc <= 0)
				return rc;
			r->err.record_line = l.line;
		} else {
			/* Already split: go on with it. */
			goto have_split;
		}
	}
	if (split(r, &l, &sp) < 0)
		return -1;
have_split:
	if (is_kw(&sp, "version"))
		return fail_at(r, &l, l.s, "unexpected version line: 'version:' is allowed only as the first "
		    "line of the file, expected 'dn:'");
	if (!is_kw(&sp, "dn"))
		return fail_at(r, &l, l.s, "record without dn: expected 'dn:' as its first line, got '%s:'",
		    q(&q1, sp.name, sp.name_len));
	loom_ldif_value_t dn;
	if (decode_dn(r, &l, &sp, "dn", &dn) < 0)
		return -1;
	memset(rec, 0, sizeof *rec);
	rec->dn = dn.data;
	rec->dn_len = dn.len;
	rec->line = l.line;

	for (;;) {
		rc = next_line(r, &lx, &l);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			if (r->nctrls)
				return fail(r, lx.line - 1, 1, "control lines without a changetype: expected "
				    "'changetype:' after them");
			return fail(r, rec->line, 1, "entry without attributes: expected 'attribute: value' "
			    "lines or 'changetype:' after the dn");
		}
		if (split(r, &l, &sp) < 0)
			return -1;
		if (is_kw(&sp, "control")) {
			if (parse_control(r, &l, &sp) < 0)
				return -1;
			continue;
		}
		if (is_kw(&sp, "changetype"))
			break;
		if (r->nctrls)
			return fail_at(r, &l, l.s, "unexpected '%s:' line after control lines: expected "
			    "'changetype:'", q(&q1, sp.name, sp.name_len));
		rec->kind = LOOM_LDIF_CONTENT;
		if (parse_attrs(r, &lx, &l, &sp, true, rec) < 0)
			return -1;
		return 1;
	}

	size_t n = trimmed(&sp), t;
	for (t = 0; t < sizeof types / sizeof types[0]; t++)
		if (sp.type == VAL_PLAIN && strlen(types[t].name) == n &&
		    strncasecmp(sp.val, types[t].name, n) == 0)
			break;
	if (t == sizeof types / sizeof types[0])
		return fail_at(r, &l, sp.val, "unknown changetype '%s': expected add, delete, modify, modrdn "
		    "or moddn", q(&q1, sp.val, sp.val_len));
	rec->kind = types[t].kind;
	rec->ncontrols = r->nctrls;
	rec->controls = r->nctrls ? r->ctrls : NULL;
	switch (rec->kind) {
	case LOOM_LDIF_ADD:
		if (parse_attrs(r, &lx, &l, &sp, false, rec) < 0)
			return -1;
		break;
	case LOOM_LDIF_DELETE:
		rc = next_line(r, &lx, &l);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return fail_at(r, &l, l.s, "unexpected line after 'changetype: delete': expected a blank "
			    "line");
		break;
	case LOOM_LDIF_MODIFY:
		if (parse_modify(r, &lx, rec) < 0)
			return -1;
		break;
	case LOOM_LDIF_MODRDN:
		if (parse_modrdn(r, &lx, l.line, rec) < 0)
			return -1;
		break;
	case LOOM_LDIF_CONTENT:
		break;
	}
	return 1;
}

/* ---- reader API ------------------------------------------------------------ */

static loom_ldif_reader_t *reader_new(const loom_ldif_opts_t *opts)
{
	loom_ldif_reader_t *r = loom_calloc(1, sizeof *r);
	r->fd = -1;
	r->line = 1;
	if (opts)
		r->opts = *opts;
	if (r->opts.max_record == 0)
		r->opts.max_record = DEFAULT_MAX_RECORD;
	r->base_dir = loom_strdup(r->opts.url_base_dir);
	r->opts.url_base_dir = r->base_dir;
	return r;
}

loom_ldif_reader_t *loom_ldif_reader_new_fd(int fd, const loom_ldif_opts_t *opts)
{
	if (fd < 0)
		return NULL;
	loom_ldif_reader_t *r = reader_new(opts);
	r->fd = fd;
	return r;
}

loom_ldif_reader_t *loom_ldif_reader_new_mem(const void *data, size_t len, const loom_ldif_opts_t *opts)
{
	loom_ldif_reader_t *r = reader_new(opts);
	r->mem = data;
	r->mem_len = data ? len : 0;
	return r;
}

static void free_blobs(loom_ldif_reader_t *r)
{
	for (size_t i = 0; i < r->nblobs; i++)
		free(r->blobs[i]);
	r->nblobs = 0;
}

void loom_ldif_reader_destroy(loom_ldif_reader_t **reader_p)
{
	loom_ldif_reader_t *r = *reader_p;
	if (r == NULL)
		return;
	free_blobs(r);
	free(r->blobs);
	free(r->base_dir);
	free(r->buf);
	free(r->segs);
	free(r->vals);
	free(r->vgroup);
	free(r->vtmp);
	free(r->gcount);
	free(r->attrs);
	free(r->akeys);
	free(r->mods);
	free(r->ctrls);
	free(r);
	*reader_p = NULL;
}

int loom_ldif_read(loom_ldif_reader_t *r, loom_ldif_record_t *ret, loom_ldif_error_t *ret_err)
{
	free_blobs(r);
	if (r->done)
		return 0;
	for (;;) {
		size_t bend;
		unsigned nlines;
		memset(&r->err, 0, sizeof r->err);
		int rc = find_block(r, &bend, &nlines);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			if (r->err.fatal)
				r->done = true;
			if (ret_err)
				*ret_err = r->err;
			return -1;
		}
		unsigned first = r->line;
		char *p = r->buf + r->start;
		char *end = r->buf + bend;
		r->start = bend;
		r->line += nlines;
		r->nattrs = r->nmods = r->nctrls = r->nvals = 0;
		r->vsorted = true;
		r->budget = r->opts.max_record - (size_t)(end - p);
		r->err.record_line = first;
		loom_ldif_record_t rec;
		rc = parse_block(r, p, end, first, &rec);
		if (rc > 0) {
			*ret = rec;
			return 1;
		}
		if (rc < 0) {
			free_blobs(r);
			if (ret_err)
				*ret_err = r->err;
			return -1;
		}
	}
}

/* ---- writer ---------------------------------------------------------------- */

loom_ldif_writer_t *loom_ldif_writer_new(loom_buf_t *out, const loom_ldif_writer_opts_t *opts)
{
	loom_ldif_writer_t *w = loom_calloc(1, sizeof *w);
	w->out = out;
	w->fold = DEFAULT_FOLD;
	if (opts) {
		w->version = opts->version;
		if (opts->fold)
			w->fold = opts->fold < 2 ? 2 : opts->fold;
	}
	return w;
}

void loom_ldif_writer_destroy(loom_ldif_writer_t **writer_p)
{
	loom_ldif_writer_t *w = *writer_p;
	if (w == NULL)
		return;
	free(w);
	*writer_p = NULL;
}

/* Appends bytes to the current line, folding at w->fold. */
static void put(loom_ldif_writer_t *w, const char *p, size_t n)
{
	loom_buf_t *b = w->out;
	loom_buf_reserve(b, n + 2 * ((w->col + n) / (w->fold - 1) + 1));
	while (n > 0) {
		if (w->col >= w->fold) {
			b->data[b->len++] = '\n';
			b->data[b->len++] = ' ';
			w->col = 1;
		}
		size_t take = w->fold - w->col;
		if (take > n)
			take = n;
		memcpy(b->data + b->len, p, take);
		b->len += take;
		w->col += take;
		p += take;
		n -= take;
	}
	b->data[b->len] = '\0';
}

static void puts_(loom_ldif_writer_t *w, const char *s)
{
	put(w, s, strlen(s));
}

static void end_line(loom_ldif_writer_t *w)
{
	loom_buf_addc(w->out, '\n');
	w->col = 0;
}

static void put_b64(loom_ldif_writer_t *w, const char *data, size_t n)
{
	const unsigned char *s = (const unsigned char *)data;
	char tmp[4 * 128];
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		tmp[o++] = b64chars[v >> 18];
		tmp[o++] = b64chars[(v >> 12) & 63];
		tmp[o++] = b64chars[(v >> 6) & 63];
		tmp[o++] = b64chars[v & 63];
		if (o == sizeof tmp) {
			put(w, tmp, o);
			o = 0;
		}
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		tmp[o++] = b64chars[v >> 18];
		tmp[o++] = b64chars[(v >> 12) & 63];
		tmp[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		tmp[o++] = '=';
	}
	put(w, tmp, o);
}

/* True when s[0..n) cannot be written as a plain SAFE-STRING of printable
 * ASCII: a leading space, ':' or '<', a trailing space, control characters
 * or non-ASCII. */
static bool needs_b64(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	if (n == 0)
		return false;
	if (s[0] == ' ' || s[0] == ':' || s[0] == '<' || s[n - 1] == ' ')
		return true;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return true;
	return false;
}

/* Writes "name: value", "name:: base64" or "name:" for an empty value (the
 * part after the name: sep). */
static void put_value(loom_ldif_writer_t *w, const char *data, size_t n)
{
	if (n == 0) {
		put(w, ":", 1);
	} else if (needs_b64(data, n)) {
		put(w, ":: ", 3);
		put_b64(w, data, n);
	} else {
		put(w, ": ", 2);
		put(w, data, n);
	}
}

static void write_line(loom_ldif_writer_t *w, const char *name, const char *data, size_t n)
{
	puts_(w, name);
	put_value(w, data, n);
	end_line(w);
}

static int wfail(loom_ldif_writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int wfail(loom_ldif_writer_t *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof w->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Checks what the grammar cannot express before anything is written. */
static int check_record(loom_ldif_writer_t *w, const loom_ldif_record_t *rec)
{
	qbuf_t q1;
	if (rec->dn == NULL)
		return wfail(w, "cannot write record: no dn");
	if (rec->kind == LOOM_LDIF_CONTENT && rec->ncontrols)
		return wfail(w, "cannot write record '%s': controls need a change record",
		    q(&q1, rec->dn, rec->dn_len));
	for (size_t i = 0; i < rec->ncontrols; i++) {
		const char *oid = rec->controls[i].oid;
		bool ok = oid != NULL && oid[0] >= '0' && oid[0] <= '9';
		for (const char *p = oid; ok && *p; p++)
			ok = (*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9');
		if (!ok)
			return wfail(w, "cannot write control '%s': expected a numeric oid",
			    oid ? q(&q1, oid, strlen(oid)) : "(null)");
	}
	const loom_ldif_attr_t *attrs = rec->attrs;
	size_t nattrs = rec->nattrs;
	switch (rec->kind) {
	case LOOM_LDIF_CONTENT:
	case LOOM_LDIF_ADD:
		if (nattrs == 0)
			return wfail(w, "cannot write record '%s': no attributes", q(&q1, rec->dn, rec->dn_len));
		for (size_t i = 0; i < nattrs; i++) {
			const char *name = attrs[i].name;
			if (name == NULL || desc_check(name, strlen(name)) != strlen(name))
				return wfail(w, "cannot write attribute '%s': bad attribute description",
				    name ? q(&q1, name, strlen(name)) : "(null)");
			if (attrs[i].n == 0)
				return wfail(w, "cannot write attribute '%s': no values", q(&q1, name, strlen(name)));
			if (strcasecmp(name, "dn") == 0 || strcasecmp(name, "changetype") == 0 ||
			    strcasecmp(name, "control") == 0)
				return wfail(w, "cannot write attribute '%s': the name is an ldif keyword", name);
		}
		break;
	case LOOM_LDIF_DELETE:
		break;
	case LOOM_LDIF_MODIFY:
		for (size_t i = 0; i < rec->nmods; i++) {
			const char *name = rec->mods[i].attr.name;
			if (name == NULL || desc_check(name, strlen(name)) != strlen(name))
				return wfail(w, "cannot write mod-spec '%s': bad attribute description",
				    name ? q(&q1, name, strlen(name)) : "(null)");
			if ((unsigned)rec->mods[i].op > LOOM_LDIF_MOD_INCREMENT)
				return wfail(w, "cannot write mod-spec '%s': unknown operation %d",
				    q(&q1, name, strlen(name)), (int)rec->mods[i].op);
			if (rec->mods[i].op == LOOM_LDIF_MOD_INCREMENT && rec->mods[i].attr.n != 1)
				return wfail(w, "cannot write mod-spec '%s': increment needs exactly one value",
				    q(&q1, name, strlen(name)));
		}
		break;
	case LOOM_LDIF_MODRDN:
		if (rec->newrdn == NULL || rec->newrdn[0] == '\0')
			return wfail(w, "cannot write modrdn record '%s': no newrdn", q(&q1, rec->dn, rec->dn_len));
		break;
	default:
		return wfail(w, "cannot write record '%s': unknown kind %d", q(&q1, rec->dn, rec->dn_len),
		    (int)rec->kind);
	}
	return 0;
}

int loom_ldif_write(loom_ldif_writer_t *w, const loom_ldif_record_t *rec, const char **error_r)
{
	static const char *const opnames[] = { "add", "delete", "replace", "increment" };
	if (check_record(w, rec) < 0) {
		if (error_r)
			*error_r = w->err;
		return -1;
	}
	w->col = 0;
	if (!w->started && w->version) {
		puts_(w, "version: 1");
		end_line(w);
	}
	w->started = true;
	write_line(w, "dn", rec->dn, rec->dn_len);
	if (rec->kind != LOOM_LDIF_CONTENT) {
		for (size_t i = 0; i < rec->ncontrols; i++) {
			const loom_ldif_control_t *c = &rec->controls[i];
			puts_(w, "control: ");
			puts_(w, c->oid);
			puts_(w, c->critical ? " true" : " false");
			if (c->has_value)
				put_value(w, c->value.data, c->value.len);
			end_line(w);
		}
	}
	switch (rec->kind) {
	case LOOM_LDIF_ADD:
		puts_(w, "changetype: add");
		end_line(w);
		/* fall through */
	case LOOM_LDIF_CONTENT:
		for (size_t i = 0; i < rec->nattrs; i++)
			for (size_t k = 0; k < rec->attrs[i].n; k++)
				write_line(w, rec->attrs[i].name, rec->attrs[i].v[k].data, rec->attrs[i].v[k].len);
		break;
	case LOOM_LDIF_DELETE:
		puts_(w, "changetype: delete");
		end_line(w);
		break;
	case LOOM_LDIF_MODIFY:
		puts_(w, "changetype: modify");
		end_line(w);
		for (size_t i = 0; i < rec->nmods; i++) {
			const loom_ldif_mod_t *m = &rec->mods[i];
			puts_(w, opnames[m->op]);
			puts_(w, ": ");
			puts_(w, m->attr.name);
			end_line(w);
			for (size_t k = 0; k < m->attr.n; k++)
				write_line(w, m->attr.name, m->attr.v[k].data, m->attr.v[k].len);
			puts_(w, "-");
			end_line(w);
		}
		break;
	case LOOM_LDIF_MODRDN:
		puts_(w, "changetype: modrdn");
		end_line(w);
		write_line(w, "newrdn", rec->newrdn, strlen(rec->newrdn));
		puts_(w, rec->deleteoldrdn ? "deleteoldrdn: 1" : "deleteoldrdn: 0");
		end_line(w);
		if (rec->newsuperior)
			write_line(w, "newsuperior", rec->newsuperior, strlen(rec->newsuperior));
		break;
	}
	end_line(w);
	return 0;
}
