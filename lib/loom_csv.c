/* loom_csv.c - streaming CSV reader and writer.
 *
 * Reader states (r->state), one record at a time:
 *
 *   REC     between records. parse() starts a record at pos (start = pos)
 *           and goes to FIELD; at the end of input it reports P_EOF.
 *   FIELD   at the first byte of a field: the quote opens QUOTED, anything
 *           else is UNQ (a delimiter right away is an empty field).
 *   UNQ     in an unquoted field. The delimiter ends it (-> FIELD); LF,
 *           CRLF or the end of input end the record (-> REC). The field is
 *           left where it is and NUL-terminated over its delimiter.
 *   QUOTED  in a quoted field. A doubled quote is one quote; a single one
 *           closes the field (-> AFTERQ). The text is moved left over the
 *           quotes in place: w, the write cursor, is always behind pos.
 *           The end of input here is the one error that ends a record at
 *           once (unterminated quoted field).
 *   AFTERQ  after a closing quote: the delimiter (-> FIELD), a line break or
 *           the end of input (record done -> REC). Anything else is an
 *           error, and the rest of the field is read as UNQ.
 *   SKIP    after a record outgrew max_record: drop input up to and
 *           including the next LF (-> REC).
 *
 * parse() runs the machine over the buffer and stops with P_RECORD,
 * P_ERROR (the record is over, *err says why), P_EOF, or P_MORE when it needs
 * bytes past the end of the buffer: refill() reads more and parse() resumes
 * at pos in the same state. Lookahead (CRLF, a doubled or closing quote, a
 * UTF-8 sequence) never moves pos past bytes it has not decided on, so
 * resuming needs nothing else. Errors that leave the record's shape alone
 * (stray quote, bare CR, NUL, bad UTF-8, field count, length) are kept in
 * r->pend while the record is read to its end as a lenient reader would,
 * then reported: the next record starts where it should.
 *
 * Buffer: buf[0..end) is input and buf[end] is always NUL. The inner loops
 * stop on a byte class table in which NUL is special, so they need no
 * bounds check; a stop at end is told from a NUL byte in the data by its
 * position. While a record is read, parse() also puts a NUL at
 * start + max_record + 2 (if that is inside the buffer) and puts the byte
 * back before it returns: a record that reaches it is too long whatever
 * the buffer boundaries. refill() moves the record in progress to the
 * front of the buffer before reading, so the buffer never holds more than
 * max_record + 2 bytes of record plus one 64 KiB read.
 */
#include "loom_csv.h"
#include "loom_alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSV_CHUNK (64 * 1024)           /* bytes per read(2), and writer flush size */
#define CSV_DEFAULT_MAX (1024 * 1024)   /* default max_record */

/* Byte classes of the scanning tables. */
enum { C_DATA = 0, C_DELIM, C_QUOTE, C_CR, C_LF, C_HIGH, C_NUL };
/* Reader states, see the top of the file. */
enum { ST_REC, ST_FIELD, ST_UNQ, ST_QUOTED, ST_AFTERQ, ST_SKIP };
/* Outcomes of parse(). */
enum { P_RECORD, P_MORE, P_EOF, P_ERROR };

struct loom_csv_reader {
	loom_csv_opts_t opts;       /* options; expect_columns points at expect */
	char *name;                 /* input name for I/O messages */
	int fd;                     /* input, or -1 when reading memory */
	const char *mem;            /* memory input, NULL for an fd */
	size_t mem_len;             /* bytes at mem */
	size_t mem_pos;             /* bytes of mem already copied into buf */
	char *buf;                  /* input window; buf[end] is always NUL */
	size_t cap;                 /* bytes allocated at buf */
	size_t end;                 /* bytes of input in buf */
	size_t pos;                 /* next byte to parse */
	size_t start;               /* first byte of the record being parsed */
	uint64_t base;              /* input offset of buf[0] */
	bool eof;                   /* no input after buf[end - 1] */
	bool started;               /* the BOM check is done */
	int state;                  /* ST_* */
	unsigned line;              /* line of the byte at pos */
	uint64_t line_start;        /* input offset of that line's first character */
	uint64_t line_cont;         /* UTF-8 continuation bytes in that line before pos */
	unsigned rec_line;          /* line where the record being parsed starts */
	size_t n;                   /* fields of that record so far */
	size_t fcap;                /* room in foff, flen, fv, fline, fcol */
	size_t *foff;               /* buffer offset of each field */
	size_t *flen;               /* length of each field */
	const char **fv;            /* field pointers handed out, set when the record ends */
	unsigned *fline;            /* line where each field starts (fields >= note_from) */
	unsigned *fcol;             /* column where each field starts (fields >= note_from) */
	size_t note_from;           /* first field whose position is noted (SIZE_MAX: none) */
	unsigned end_line;          /* line of the record's line break (or end of input) */
	unsigned end_col;           /* column of it */
	size_t fstart;              /* buffer offset of the current field */
	size_t w;                   /* write cursor of the current quoted field */
	unsigned q_line;            /* line of the current quoted field's opening quote */
	unsigned q_col;             /* column of that quote */
	bool quoted;                /* some field of the record was quoted */
	size_t want;                /* fields each record must have (SIZE_MAX: any number) */
	bool pending;               /* pend holds the record's first error */
	loom_csv_error_t pend;      /* that error, reported when the record ends */
	bool header_done;           /* the header has been read, or none is wanted */
	size_t ncols;               /* header columns */
	char **cols;                /* header names (owned) */
	char **expect;              /* own copy of opts.expect_columns */
	bool failed;                /* a fatal error happened: repeat it */
	loom_csv_error_t fatal;     /* that error */
	unsigned char cls_unq[256]; /* byte classes outside quotes */
	unsigned char cls_q[256];   /* byte classes inside quotes */
};

struct loom_csv_writer {
	char delimiter;             /* field separator */
	char quote;                 /* quote character */
	bool crlf;                  /* CRLF (true) or LF line ends */
	loom_buf_t *out;            /* where records go: the caller's buffer, or &own */
	loom_buf_t own;             /* bytes waiting for the fd */
	int fd;                     /* output, or -1 for a buffer writer */
	char *name;                 /* output name for messages */
	unsigned char special[256]; /* bytes that make a field quoted */
};

void loom_csv_opts_default(loom_csv_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->delimiter = ',';
	o->quote = '"';
	o->header = true;
	o->trim_bom = true;
	o->validate_utf8 = true;
	o->max_record = CSV_DEFAULT_MAX;
	o->expect_columns = NULL;
	o->n_expect_columns = 0;
	o->crlf = true;
}

static bool bad_special(char c)
{
	unsigned char u = (unsigned char)c;
	return u == 0 || u == '\r' || u == '\n' || u >= 0x80;
}

int loom_csv_opts_check(const loom_csv_opts_t *o, char **ret_error)
{
	if (bad_special(o->delimiter)) {
		*ret_error = loom_sprintf("invalid CSV delimiter 0x%02x: expected an ASCII "
		    "character other than NUL, CR and LF", (unsigned char)o->delimiter);
		return -1;
	}
	if (bad_special(o->quote)) {
		*ret_error = loom_sprintf("invalid CSV quote 0x%02x: expected an ASCII "
		    "character other than NUL, CR and LF", (unsigned char)o->quote);
		return -1;
	}
	if (o->delimiter == o->quote) {
		*ret_error = loom_sprintf("invalid CSV options: delimiter and quote are both "
		    "0x%02x, expected two different characters", (unsigned char)o->quote);
		return -1;
	}
	if (o->max_record == 0) {
		*ret_error = loom_strdup("invalid CSV max_record 0: expected at least 1 byte");
		return -1;
	}
	if (o->n_expect_columns > 0 && o->expect_columns == NULL) {
		*ret_error = loom_sprintf("invalid CSV options: n_expect_columns is %zu but "
		    "expect_columns is NULL", o->n_expect_columns);
		return -1;
	}
	if (o->n_expect_columns > 0 && !o->header) {
		*ret_error = loom_strdup("invalid CSV options: expect_columns needs header on");
		return -1;
	}
	for (size_t k = 0; k < o->n_expect_columns; k++) {
		if (o->expect_columns[k] == NULL) {
			*ret_error = loom_sprintf("invalid CSV options: expect_columns[%zu] is NULL", k);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Reader
 */

static int reader_new(const char *name, const loom_csv_opts_t *o, loom_csv_reader_t **ret,
    char **ret_error)
{
	loom_csv_opts_t defaults;
	if (o == NULL) {
		loom_csv_opts_default(&defaults);
		o = &defaults;
	}
	if (loom_csv_opts_check(o, ret_error) < 0)
		return -1;

	loom_csv_reader_t *r = loom_calloc(1, sizeof *r);
	r->opts = *o;
	r->name = loom_strdup(name ? name : "-");
	r->fd = -1;
	if (o->n_expect_columns > 0) {
		r->expect = loom_calloc(o->n_expect_columns, sizeof *r->expect);
		for (size_t k = 0; k < o->n_expect_columns; k++)
			r->expect[k] = loom_strdup(o->expect_columns[k]);
		r->opts.expect_columns = (const char *const *)r->expect;
	} else {
		r->opts.expect_columns = NULL;
	}
	r->cap = 2 * CSV_CHUNK;
	r->buf = loom_malloc(r->cap);
	r->buf[0] = '\0';
	r->state = ST_REC;
	r->line = 1;
	r->want = SIZE_MAX;
	r->note_from = SIZE_MAX;
	r->header_done = !o->header;

	unsigned char d = (unsigned char)o->delimiter, q = (unsigned char)o->quote;
	for (unsigned c = 0x80; c < 256; c++)
		r->cls_unq[c] = r->cls_q[c] = C_HIGH;
	r->cls_unq[0] = r->cls_q[0] = C_NUL;
	r->cls_unq[d] = C_DELIM;
	r->cls_unq[q] = r->cls_q[q] = C_QUOTE;
	r->cls_unq['\r'] = C_CR;
	r->cls_unq['\n'] = r->cls_q['\n'] = C_LF;
	*ret = r;
	return 0;
}

int loom_csv_reader_open_fd(int fd, const char *name, const loom_csv_opts_t *o,
    loom_csv_reader_t **ret, char **ret_error)
{
	loom_csv_reader_t *r;
	if (reader_new(name, o, &r, ret_error) < 0)
		return -1;
	r->fd = fd;
	*ret = r;
	return 0;
}

int loom_csv_reader_open_mem(const char *data, size_t len, const char *name,
    const loom_csv_opts_t *o, loom_csv_reader_t **ret)
{
	loom_csv_reader_t *r;
	char *error = NULL;
	if (reader_new(name, o, &r, &error) < 0) {
		free(error);
		return -1;
	}
	r->mem = data ? data : "";
	r->mem_len = data ? len : 0;
	*ret = r;
	return 0;
}

void loom_csv_reader_destroy(loom_csv_reader_t **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	loom_csv_reader_t *r = *rp;
	for (size_t k = 0; k < r->ncols; k++)
		free(r->cols[k]);
	free(r->cols);
	for (size_t k = 0; k < r->opts.n_expect_columns; k++)
		free(r->expect[k]);
	free(r->expect);
	free(r->foff);
	free(r->flen);
	free(r->fv);
	free(r->fline);
	free(r->fcol);
	free(r->buf);
	free(r->name);
	free(r);
	*rp = NULL;
}

size_t loom_csv_columns(const loom_csv_reader_t *r, const char *const **ret_names)
{
	if (ret_names != NULL)
		*ret_names = (const char *const *)r->cols;
	return r->ncols;
}

/* Column (in characters, 1-based) of the byte at buffer offset i, which is
 * on the current line. */
static unsigned col_at(const loom_csv_reader_t *r, size_t i)
{
	return (unsigned)(r->base + i - r->line_start - r->line_cont + 1);
}

static void set_error(loom_csv_error_t *e, unsigned line, unsigned column, unsigned record_line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_error(loom_csv_error_t *e, unsigned line, unsigned column, unsigned record_line,
    const char *fmt, ...)
{
	va_list ap;
	e->line = line;
	e->column = column;
	e->record_line = record_line;
	e->fatal = false;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

/* Keeps the record's first error, found at buffer offset i. */
#define PEND(r, i, ...) do { \
		if (!(r)->pending) { \
			(r)->pending = true; \
			set_error(&(r)->pend, (r)->line, col_at((r), (i)), (r)->rec_line, __VA_ARGS__); \
		} \
	} while (0)

/* Writes a readable name of byte c into out: 'x', '\t', CR, LF or 0xNN. */
static const char *show(unsigned char c, char out[8])
{
	if (c == '\t')
		return "'\\t'";
	if (c == '\r')
		return "CR";
	if (c == '\n')
		return "LF";
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "0x%02x", c);
	return out;
}

static void grow_fields(loom_csv_reader_t *r)
{
	size_t cap = r->fcap ? 2 * r->fcap : 16;
	r->foff = loom_realloc(r->foff, cap * sizeof *r->foff);
	r->flen = loom_realloc(r->flen, cap * sizeof *r->flen);
	r->fv = loom_realloc(r->fv, cap * sizeof *r->fv);
	r->fline = loom_realloc(r->fline, cap * sizeof *r->fline);
	r->fcol = loom_realloc(r->fcol, cap * sizeof *r->fcol);
	r->fcap = cap;
}

static inline void add_field(loom_csv_reader_t *r, size_t off, size_t len)
{
	if (r->n == r->fcap)
		grow_fields(r);
	r->foff[r->n] = off;
	r->flen[r->n] = len;
	r->n++;
}

/* Length of the UTF-8 sequence at s (avail >= 1 bytes): n > 0 when valid;
 * 0 when the avail bytes start a valid sequence that needs more; -1 when
 * invalid, with *ret_at the bad byte's index and [*ret_lo, *ret_hi] what it
 * should have been (index 0: the byte cannot start a character). */
static int utf8_seq(const unsigned char *s, size_t avail, size_t *ret_at, unsigned *ret_lo,
    unsigned *ret_hi)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	int n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* shorter form exists: overlong */
		else if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		*ret_at = 0;
		return -1;
	}
	for (int k = 1; k < n; k++) {
		if ((size_t)k >= avail)
			return 0;
		if (s[k] < lo || s[k] > hi) {
			*ret_at = (size_t)k;
			*ret_lo = lo;
			*ret_hi = hi;
			return -1;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

/* Steps over the character that starts with the byte >= 0x80 at *i, noting
 * an error when it is not valid UTF-8. Returns false, with *i unchanged, when
 * it needs bytes past e that may still come (more input, or the record is
 * at its length limit). */
static bool step_high(loom_csv_reader_t *r, const unsigned char *p, size_t *i, size_t e,
    size_t lim)
{
	size_t at;
	unsigned lo = 0, hi = 0;
	int k;

	if (!r->opts.validate_utf8) {
		if ((p[*i] & 0xc0) == 0x80)
			r->line_cont++;
		(*i)++;
		return true;
	}
	k = utf8_seq(p + *i, e - *i, &at, &lo, &hi);
	if (k > 0) {
		r->line_cont += (unsigned)k - 1;
		*i += (size_t)k;
		return true;
	}
	if (k == 0) {
		if (e == lim || !r->eof)
			return false;
		PEND(r, *i, "invalid UTF-8: the input ends inside the character that "
		    "starts with byte 0x%02x; expected more continuation bytes", p[*i]);
	} else if (at == 0) {
		PEND(r, *i, "invalid UTF-8: byte 0x%02x cannot start a character; "
		    "expected ASCII or a lead byte 0xc2-0xf4", p[*i]);
	} else {
		PEND(r, *i, "invalid UTF-8: byte %zu of the character that starts with "
		    "0x%02x is 0x%02x, expected 0x%02x-0x%02x", at + 1, p[*i], p[*i + at], lo, hi);
	}
	(*i)++;
	return true;
}

/* Notes where the field that starts at i begins (see note_from). */
static void note_field(loom_csv_reader_t *r, size_t i)
{
	if (r->n == r->fcap)
		grow_fields(r);
	r->fline[r->n] = r->line;
	r->fcol[r->n] = col_at(r, i);
}

/* Runs the state machine; see the top of the file. */
static int parse(loom_csv_reader_t *r, loom_csv_error_t *err)
{
	unsigned char *p = (unsigned char *)r->buf;
	const unsigned char *cu = r->cls_unq;
	const unsigned char *cq = r->cls_q;
	const unsigned char delim = (unsigned char)r->opts.delimiter;
	const unsigned char quote = (unsigned char)r->opts.quote;
	size_t i = r->pos;
	size_t e = r->end;          /* where scanning stops: end, or the record's limit */
	size_t lim = SIZE_MAX;      /* start + max_record + 2 */
	int saved = -1;             /* byte under a limit sentinel at e */
	size_t s;                   /* start of the quoted text not yet moved to w */
	size_t t;                   /* offset of the record's line break */
	size_t tlen;                /* its length: 0 (end of input), 1 or 2 */
	char b1[8], b2[8];
	int rc;

#define SET_LIMIT() do { \
		lim = r->opts.max_record > SIZE_MAX - 2 - r->start \
		    ? SIZE_MAX : r->start + r->opts.max_record + 2; \
		if (lim < r->end) { \
			e = lim; \
			saved = p[e]; \
			p[e] = '\0'; \
		} \
	} while (0)
#define OUT(x) do { rc = (x); goto out; } while (0)
	/* Stopped at e, wanting more bytes: too long, or come back later. */
#define AT_EDGE() do { \
		if (e == lim) \
			goto too_long; \
		if (!r->eof) \
			OUT(P_MORE); \
	} while (0)
	/* Moves the quoted text [s, i) to the write cursor. */
#define FLUSH() do { \
		if (s != r->w) \
			memmove(p + r->w, p + s, i - s); \
		r->w += i - s; \
		s = i; \
	} while (0)

	if (r->state != ST_REC && r->state != ST_SKIP)
		SET_LIMIT();

	for (;;) {
		switch (r->state) {
		case ST_SKIP: {
			unsigned char *nl = memchr(p + i, '\n', e - i);
			if (nl == NULL) {
				i = e;
				if (!r->eof)
					OUT(P_MORE);
				r->state = ST_REC;
				break;
			}
			i = (size_t)(nl - p) + 1;
			r->line++;
			r->line_start = r->base + i;
			r->line_cont = 0;
			r->state = ST_REC;
			break;
		}

		case ST_REC:
			if (i == e) {
				if (r->eof)
					OUT(P_EOF);
				OUT(P_MORE);
			}
			r->start = r->fstart = r->w = i;
			r->rec_line = r->line;
			r->n = 0;
			r->quoted = false;
			r->pending = false;
			SET_LIMIT();
			r->state = ST_FIELD;
			/* fall through */

		case ST_FIELD:
			if (r->n >= r->note_from)
				note_field(r, i);
			if (i == e) {
				AT_EDGE();
				/* the input ends right after a delimiter: one more, empty field */
				add_field(r, i, 0);
				t = i;
				tlen = 0;
				goto record_end;
			}
			if (p[i] == quote) {
				r->quoted = true;
				r->fstart = r->w = i;
				r->q_line = r->line;
				r->q_col = col_at(r, i);
				i++;
				r->state = ST_QUOTED;
				break;
			}
			r->fstart = i;
			r->state = ST_UNQ;
			/* fall through */

		case ST_UNQ:
			for (;;) {
				while (cu[p[i]] == C_DATA)
					i++;
				switch (cu[p[i]]) {
				case C_DELIM:
					add_field(r, r->fstart, i - r->fstart);
					p[i++] = '\0';
					r->state = ST_FIELD;
					goto next_state;
				case C_LF:
					add_field(r, r->fstart, i - r->fstart);
					p[i] = '\0';
					t = i;
					tlen = 1;
					goto record_end;
				case C_CR:
					if (p[i + 1] == '\n') {
						add_field(r, r->fstart, i - r->fstart);
						p[i] = '\0';
						t = i;
						tlen = 2;
						goto record_end;
					}
					if (i + 1 == e)
						AT_EDGE();
					PEND(r, i, "CR not followed by LF; expected CRLF or LF as the "
					    "line break (a CR in data must be quoted)");
					i++;
					break;
				case C_QUOTE:
					PEND(r, i, "quote %s inside an unquoted field; expected the whole "
					    "field in quotes, with this quote doubled", show(quote, b1));
					i++;
					break;
				case C_HIGH:
					if (!step_high(r, p, &i, e, lim))
						AT_EDGE();
					break;
				default: /* C_NUL */
					if (i == e) {
						AT_EDGE();
						add_field(r, r->fstart, i - r->fstart);
						t = i;
						tlen = 0;
						goto record_end;
					}
					PEND(r, i, "NUL byte in a field; expected text");
					i++;
					break;
				}
			}

		case ST_QUOTED:
			s = i;
			for (;;) {
				while (cq[p[i]] == C_DATA)
					i++;
				switch (cq[p[i]]) {
				case C_QUOTE:
					if (p[i + 1] == quote) {
						i++; /* keep one of the two */
						FLUSH();
						s = ++i;
						break;
					}
					FLUSH();
					if (i + 1 == e)
						AT_EDGE();
					p[r->w] = '\0';
					i++;
					r->state = ST_AFTERQ;
					goto next_state;
				case C_LF:
					i++;
					r->line++;
					r->line_start = r->base + i;
					r->line_cont = 0;
					break;
				case C_HIGH:
					if (!step_high(r, p, &i, e, lim)) {
						FLUSH();
						AT_EDGE();
					}
					break;
				default: /* C_NUL */
					if (i == e) {
						FLUSH();
						AT_EDGE();
						set_error(err, r->q_line, r->q_col, r->rec_line,
						    "unterminated quoted field starting at line %u column %u; "
						    "expected a closing %s before the end of input",
						    r->q_line, r->q_col, show(quote, b1));
						r->state = ST_REC;
						OUT(P_ERROR);
					}
					PEND(r, i, "NUL byte in a field; expected text");
					i++;
					break;
				}
			}

		case ST_AFTERQ:
			if (p[i] == delim) {
				add_field(r, r->fstart, r->w - r->fstart);
				i++;
				r->state = ST_FIELD;
				break;
			}
			if (p[i] == '\n' || (p[i] == '\r' && p[i + 1] == '\n')) {
				add_field(r, r->fstart, r->w - r->fstart);
				t = i;
				tlen = p[i] == '\n' ? 1 : 2;
				goto record_end;
			}
			if (i == e || (p[i] == '\r' && i + 1 == e)) {
				AT_EDGE();
				if (i == e) {
					add_field(r, r->fstart, r->w - r->fstart);
					t = i;
					tlen = 0;
					goto record_end;
				}
			}
			PEND(r, i, "%s after the closing quote of the field starting at line %u "
			    "column %u; expected %s or a line break", show(p[i], b1), r->q_line,
			    r->q_col, show(delim, b2));
			r->state = ST_UNQ; /* read the rest as data to find the record's end */
			break;
		}
next_state:
		;
	}

record_end:
	r->end_line = r->line;
	r->end_col = col_at(r, t);
	if (t - r->start > r->opts.max_record) {
		if (!r->pending) {
			r->pending = true;
			set_error(&r->pend, r->rec_line, 1, r->rec_line, "record is longer than "
			    "%zu bytes (max_record); expected a line break sooner", r->opts.max_record);
		}
	} else if (r->n != r->want && r->want != SIZE_MAX && !r->pending
	    && !(r->n == 1 && r->flen[0] == 0 && !r->quoted)) {
		/* (an empty line is no record in a header file: next_record skips it) */
		r->pending = true;
		if (r->n > r->want)
			set_error(&r->pend, r->fline[r->want], r->fcol[r->want], r->rec_line,
			    "record has %zu fields, the header has %zu", r->n, r->want);
		else
			set_error(&r->pend, r->end_line, r->end_col, r->rec_line,
			    "record has %zu field%s, the header has %zu", r->n, r->n == 1 ? "" : "s",
			    r->want);
	}
	i = t + tlen;
	if (tlen > 0) {
		r->line++;
		r->line_start = r->base + i;
		r->line_cont = 0;
	}
	r->state = ST_REC;
	if (r->pending) {
		*err = r->pend;
		OUT(P_ERROR);
	}
	OUT(P_RECORD);

too_long:
	if (!r->pending) {
		if (r->state == ST_QUOTED)
			set_error(&r->pend, r->rec_line, 1, r->rec_line, "record is longer than %zu "
			    "bytes (max_record) inside a quoted field opened at line %u column %u; "
			    "expected a closing quote", r->opts.max_record, r->q_line, r->q_col);
		else
			set_error(&r->pend, r->rec_line, 1, r->rec_line, "record is longer than %zu "
			    "bytes (max_record); expected a line break", r->opts.max_record);
	}
	*err = r->pend;
	r->state = ST_SKIP;
	OUT(P_ERROR);

out:
	if (saved >= 0)
		p[e] = (unsigned char)saved;
	r->pos = i;
	return rc;
#undef SET_LIMIT
#undef OUT
#undef AT_EDGE
#undef FLUSH
}

/* Moves the record in progress to the front of the buffer and reads up to
 * 64 KiB more. Returns 0, or -1 with a fatal *err on a read error. */
static int refill(loom_csv_reader_t *r, loom_csv_error_t *err)
{
	bool in_record = r->state != ST_REC && r->state != ST_SKIP;
	size_t keep = in_record ? r->start : r->pos;
	ssize_t got;

	if (keep > 0) {
		memmove(r->buf, r->buf + keep, r->end - keep + 1);
		r->base += keep;
		r->end -= keep;
		r->pos -= keep;
		if (in_record) {
			r->start = 0;
			r->fstart -= keep;
			r->w -= keep;
			for (size_t k = 0; k < r->n; k++)
				r->foff[k] -= keep;
		}
	}
	if (r->cap - 1 - r->end < CSV_CHUNK) {
		size_t cap = 2 * r->cap;
		while (cap - 1 - r->end < CSV_CHUNK)
			cap *= 2;
		r->buf = loom_realloc(r->buf, cap);
		r->cap = cap;
	}
	if (r->mem != NULL) {
		got = (ssize_t)(r->mem_len - r->mem_pos < CSV_CHUNK ? r->mem_len - r->mem_pos : CSV_CHUNK);
		memcpy(r->buf + r->end, r->mem + r->mem_pos, (size_t)got);
		r->mem_pos += (size_t)got;
		if (r->mem_pos == r->mem_len)
			r->eof = true;
	} else {
		do
			got = read(r->fd, r->buf + r->end, CSV_CHUNK);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			set_error(err, r->line, col_at(r, r->pos), r->rec_line, "cannot read '%s': %s",
			    r->name, strerror(errno));
			err->fatal = true;
			return -1;
		}
		if (got == 0)
			r->eof = true;
	}
	r->end += (size_t)got;
	r->buf[r->end] = '\0';
	return 0;
}

/* Next record, empty lines skipped in header files: 1, 0 at the end, or -1. */
static int next_record(loom_csv_reader_t *r, loom_csv_error_t *err)
{
	for (;;) {
		switch (parse(r, err)) {
		case P_RECORD:
			if (r->opts.header && r->n == 1 && r->flen[0] == 0 && !r->quoted)
				continue;
			return 1;
		case P_EOF:
			return 0;
		case P_ERROR:
			return -1;
		default:
			if (refill(r, err) < 0)
				return -1;
			break;
		}
	}
}

/* Makes *err the reader's last word. */
static int fail(loom_csv_reader_t *r, loom_csv_error_t *err)
{
	err->fatal = true;
	r->failed = true;
	r->fatal = *err;
	return -1;
}

/* The expected header as "a,b,c" (for messages). */
static void expected_list(const loom_csv_reader_t *r, char *out, size_t size)
{
	char sep[2] = { r->opts.delimiter, '\0' };
	size_t used = 0;
	out[0] = '\0';
	for (size_t k = 0; k < r->opts.n_expect_columns && used + 1 < size; k++) {
		int n = snprintf(out + used, size - used, "%s%s", k ? sep : "", r->expect[k]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Reads the header record and checks it against expect_columns. */
static int read_header(loom_csv_reader_t *r, loom_csv_error_t *err)
{
	char list[96];
	size_t nexp = r->opts.n_expect_columns;
	int rc;

	r->header_done = true;
	r->note_from = 0;
	rc = next_record(r, err);
	r->note_from = SIZE_MAX;
	if (rc < 0) {
		if (!err->fatal) {
			char msg[sizeof err->message];
			snprintf(msg, sizeof msg, "bad header: %.147s", err->message);
			memcpy(err->message, msg, sizeof msg);
		}
		return fail(r, err);
	}
	if (rc == 0) {
		if (nexp == 0)
			return 0;
		expected_list(r, list, sizeof list);
		set_error(err, r->line, 1, r->line, "no header, the input is empty; expected '%s'", list);
		return fail(r, err);
	}

	r->ncols = r->n;
	r->cols = loom_calloc(r->n, sizeof *r->cols);
	for (size_t k = 0; k < r->n; k++)
		r->cols[k] = loom_strndup(r->buf + r->foff[k], r->flen[k]);
	r->want = r->ncols;
	r->note_from = r->want;

	if (nexp == 0)
		return 1;
	for (size_t k = 0; k < r->ncols && k < nexp; k++) {
		if (strcmp(r->cols[k], r->expect[k]) != 0) {
			set_error(err, r->fline[k], r->fcol[k], r->rec_line,
			    "header column %zu is '%.40s', expected '%.40s'", k + 1, r->cols[k], r->expect[k]);
			return fail(r, err);
		}
	}
	if (r->ncols != nexp) {
		expected_list(r, list, sizeof list);
		if (r->ncols > nexp)
			set_error(err, r->fline[nexp], r->fcol[nexp], r->rec_line,
			    "header has %zu columns, expected %zu: '%s'", r->ncols, nexp, list);
		else
			set_error(err, r->end_line, r->end_col, r->rec_line,
			    "header has %zu column%s, expected %zu: '%s'", r->ncols,
			    r->ncols == 1 ? "" : "s", nexp, list);
		return fail(r, err);
	}
	return 1;
}

int loom_csv_read(loom_csv_reader_t *r, loom_csv_record_t *ret, loom_csv_error_t *ret_err)
{
	loom_csv_error_t scratch;
	loom_csv_error_t *err = ret_err != NULL ? ret_err : &scratch;
	int rc;

	if (r->failed) {
		*err = r->fatal;
		return -1;
	}
	if (!r->started) {
		r->started = true;
		while (r->end < 3 && !r->eof)
			if (refill(r, err) < 0)
				return fail(r, err);
		if (r->opts.trim_bom && r->end >= 3 && memcmp(r->buf, "\xef\xbb\xbf", 3) == 0) {
			r->pos = 3;
			r->line_start = r->base + 3;
		}
	}
	if (!r->header_done) {
		rc = read_header(r, err);
		if (rc <= 0)
			return rc;
	}

	rc = next_record(r, err);
	if (rc < 0) {
		if (err->fatal)
			return fail(r, err);
		return -1;
	}
	if (rc == 0)
		return 0;
	for (size_t k = 0; k < r->n; k++)
		r->fv[k] = r->buf + r->foff[k];
	ret->n = r->n;
	ret->v = r->fv;
	ret->len = r->flen;
	ret->line = r->rec_line;
	return 1;
}

/* ------------------------------------------------------------------------
 * Writer
 */

static loom_csv_writer_t *writer_new(const loom_csv_opts_t *o)
{
	loom_csv_opts_t defaults;
	if (o == NULL) {
		loom_csv_opts_default(&defaults);
		o = &defaults;
	}
	/* the reader's rules for these two (loom_csv_opts_check says why) */
	if (bad_special(o->delimiter) || bad_special(o->quote) || o->delimiter == o->quote)
		return NULL;
	loom_csv_writer_t *w = loom_calloc(1, sizeof *w);
	w->delimiter = o->delimiter;
	w->quote = o->quote;
	w->crlf = o->crlf;
	w->fd = -1;
	loom_buf_init(&w->own);
	w->special[(unsigned char)o->delimiter] = 1;
	w->special[(unsigned char)o->quote] = 1;
	w->special['\r'] = 1;
	w->special['\n'] = 1;
	return w;
}

loom_csv_writer_t *loom_csv_writer_new_buf(loom_buf_t *out, const loom_csv_opts_t *o)
{
	loom_csv_writer_t *w = writer_new(o);
	if (w != NULL)
		w->out = out;
	return w;
}

loom_csv_writer_t *loom_csv_writer_new_fd(int fd, const char *name, const loom_csv_opts_t *o)
{
	loom_csv_writer_t *w = writer_new(o);
	if (w == NULL)
		return NULL;
	w->fd = fd;
	w->name = loom_strdup(name ? name : "-");
	w->out = &w->own;
	return w;
}

void loom_csv_writer_destroy(loom_csv_writer_t **wp)
{
	if (wp == NULL || *wp == NULL)
		return;
	loom_csv_writer_t *w = *wp;
	loom_buf_release(&w->own);
	free(w->name);
	free(w);
	*wp = NULL;
}

static bool needs_quotes(const loom_csv_writer_t *w, const unsigned char *f, size_t len, size_t n)
{
	if (len == 0)
		return n == 1;
	if (f[0] == ' ' || f[0] == '\t' || f[len - 1] == ' ' || f[len - 1] == '\t')
		return true;
	/* a reader trimming a BOM must not eat one that is data */
	if (len >= 3 && f[0] == 0xef && f[1] == 0xbb && f[2] == 0xbf)
		return true;
	for (size_t k = 0; k < len; k++)
		if (w->special[f[k]])
			return true;
	return false;
}

static void add_quoted(loom_csv_writer_t *w, const char *f, size_t len)
{
	loom_buf_t *out = w->out;
	loom_buf_reserve(out, len + 2);
	loom_buf_addc(out, w->quote);
	while (len > 0) {
		const char *q = memchr(f, w->quote, len);
		size_t seg = q ? (size_t)(q - f) + 1 : len;
		loom_buf_add(out, f, seg);
		if (q)
			loom_buf_addc(out, w->quote);
		f += seg;
		len -= seg;
	}
	loom_buf_addc(out, w->quote);
}

int loom_csv_write(loom_csv_writer_t *w, size_t n, const char *const *v, const size_t *len,
    char **ret_error)
{
	loom_buf_t *out = w->out;
	size_t mark = out->len;

	if (n == 0) {
		*ret_error = loom_strdup("cannot write CSV record: no fields, expected at least one");
		return -1;
	}
	for (size_t k = 0; k < n; k++) {
		const char *f = v[k] ? v[k] : "";
		size_t l = len ? len[k] : strlen(f);
		if (len && memchr(f, '\0', l) != NULL) {
			out->len = mark;
			if (out->data)
				out->data[mark] = '\0';
			*ret_error = loom_sprintf("cannot write CSV field %zu: it holds a NUL byte, "
			    "expected text", k + 1);
			return -1;
		}
		if (k > 0)
			loom_buf_addc(out, w->delimiter);
		if (needs_quotes(w, (const unsigned char *)f, l, n))
			add_quoted(w, f, l);
		else
			loom_buf_add(out, f, l);
	}
	loom_buf_add(out, w->crlf ? "\r\n" : "\n", w->crlf ? 2 : 1);
	if (w->fd >= 0 && out->len >= CSV_CHUNK)
		return loom_csv_writer_flush(w, ret_error);
	return 0;
}

int loom_csv_writer_flush(loom_csv_writer_t *w, char **ret_error)
{
	size_t done = 0;
	if (w->fd < 0)
		return 0;
	while (done < w->own.len) {
		ssize_t k = write(w->fd, w->own.data + done, w->own.len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			memmove(w->own.data, w->own.data + done, w->own.len - done + 1);
			w->own.len -= done;
			*ret_error = loom_sprintf("cannot write '%s': %s", w->name, strerror(e));
			return -1;
		}
		done += (size_t)k;
	}
	loom_buf_reset(&w->own);
	return 0;
}
