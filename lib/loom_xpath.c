/* loom_xpath.c - the FIM XPath filter dialect: lexer, parser, dependency
 * report, the datetime and duration grammars, and the string matching
 * rules. The evaluator is in loom_xpath_eval.c; the tree both share is
 * described in loom_xpath_int.h; the dialect in docs/xpath.md.
 *
 * Grammar (recursive descent, depth-limited):
 *
 *   filter  := path ('|' path)*
 *   path    := '/' (NAME | '*') pred* ('/' NAME pred*)*
 *   pred    := '[' or ']'
 *   or      := and ('or' and)*
 *   and     := unary ('and' unary)*
 *   unary   := 'not' '(' or ')' | '(' or ')'
 *            | ('contains' | 'starts-with' | 'ends-with') '(' NAME ',' STRING ')'
 *            | NAME op rhs
 *   op      := '=' | '!=' | '<' | '<=' | '>' | '>='
 *   rhs     := STRING | INTEGER | 'true' | 'false' | path | time
 *   time    := 'fn:current-dateTime' '(' ')' | 'xs:dateTime' '(' STRING ')'
 *            | 'op:add-dayTimeDuration-to-dateTime' '(' (time | STRING) ',' dur ')'
 *            | 'op:subtract-dayTimeDuration-from-dateTime' '(' (time | STRING) ',' dur ')'
 *   dur     := 'xs:dayTimeDuration' '(' STRING ')'
 *
 * Functions may be written without their prefix (current-dateTime()), as
 * Lithnet's live-tested queries do; a wrong prefix is an unknown function.
 * Strings take either quote; the quote doubled inside stands for itself
 * (XPath 2.0). Names are case-sensitive.
 */
#include "loom_xpath.h"
#include "loom_xpath_int.h"

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_text.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64          /* nesting of predicates, parentheses and functions */
#define MAX_TEXT (1u << 20)   /* bytes of filter text */
#define QUOTE_MAX 40          /* characters of user text quoted in a message */

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct xp_block {
	struct xp_block *next;     /* the block filled before this one */
	size_t size;               /* bytes in data */
	size_t used;               /* bytes handed out */
	max_align_t data[];        /* the memory */
} xp_block_t;

struct xp_arena {
	xp_block_t *head;          /* the block being filled */
};

void *xp_alloc(loom_xpath_t *x, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	xp_block_t *b = x->arena->head;
	if (b == NULL || b->size - b->used < n) {
		size_t size = n > 4096 ? n : 4096;
		b = loom_malloc(sizeof *b + size);
		b->next = x->arena->head;
		b->size = size;
		b->used = 0;
		x->arena->head = b;
	}
	void *p = (unsigned char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static char *xp_strndup(loom_xpath_t *x, const char *s, size_t n)
{
	char *p = xp_alloc(x, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* ---- messages ---------------------------------------------------------------------------- */

void loom_xpath_error_release(loom_xpath_error_t *e)
{
	if (e == NULL)
		return;
	free(e->text);
	memset(e, 0, sizeof *e);
}

/* Line and column (1-based; columns in characters) of byte offset off of
 * x->src, in the file when x has one. */
static void locate(const loom_xpath_t *x, size_t off, unsigned *ret_line, unsigned *ret_col, bool *ret_multiline)
{
	if (x->map)
		off = x->map[off];
	const char *t = x->text;
	unsigned line = 1, col = 1;
	size_t i;
	for (i = 0; i < off && t[i]; i++) {
		if (t[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)t[i] & 0xc0) != 0x80) {
			col++;
		}
	}
	*ret_multiline = strchr(t, '\n') != NULL;
	if (x->file) {
		unsigned base_line = x->line ? x->line : 1, base_col = x->column ? x->column : 1;
		*ret_col = line == 1 ? base_col + col - 1 : col;
		*ret_line = base_line + line - 1;
	} else {
		*ret_line = line;
		*ret_col = col;
	}
}

int xp_fail(const loom_xpath_t *x, loom_xpath_error_t *e, size_t off, const char *fmt, ...)
{
	if (e == NULL || e->text != NULL)
		return -1;
	unsigned line, col;
	bool multi;
	locate(x, off, &line, &col, &multi);
	loom_buf_t b = LOOM_BUF_INIT;
	if (x->file)
		loom_buf_printf(&b, "%s:%u:%u: ", x->file, line, col);
	else if (multi)
		loom_buf_printf(&b, "line %u, column %u: ", line, col);
	else
		loom_buf_printf(&b, "column %u: ", col);
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	e->text = loom_buf_steal(&b);
	e->line = line;
	e->column = col;
	return -1;
}

/* Appends user text for a message: at most QUOTE_MAX characters, "..." after,
 * control characters as \xNN. */
static void add_quoted(loom_buf_t *b, const char *s, size_t len)
{
	size_t chars = 0, i;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch & 0xc0) != 0x80 && chars++ == QUOTE_MAX)
			break;
		if (ch < 0x20 || ch == 0x7f)
			loom_buf_printf(b, "\\x%02x", ch);
		else
			loom_buf_addc(b, (char)ch);
	}
	if (i < len)
		loom_buf_adds(b, "...");
}

/* ---- text helpers ------------------------------------------------------------------------ */

int xp_casecmp(const char *a, size_t la, const char *b, size_t lb)
{
	size_t n = la < lb ? la : lb;
	for (size_t i = 0; i < n; i++) {
		int ca = tolower((unsigned char)a[i]), cb = tolower((unsigned char)b[i]);
		if (ca != cb)
			return ca - cb;
	}
	return la < lb ? -1 : la > lb ? 1 : 0;
}

/* Length of the UTF-8 character starting at s[0] (1 for a stray byte). */
static size_t u8len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
	if (k > n)
		return 1;
	for (size_t i = 1; i < k; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			return 1;
	return k;
}

/* Whether the character at s (k bytes) matches the bracket expression at
 * p (after '['), ending at *ret_end (just after ']'); false with *ret_end 0
 * when there is no closing ']' (then '[' is an ordinary character). */
static bool like_class(const char *s, size_t k, const char *p, size_t lp, size_t *ret_end)
{
	size_t i = 0;
	bool neg = false, hit = false;
	if (i < lp && p[i] == '^') {
		neg = true;
		i++;
	}
	size_t first = i;
	while (i < lp && (p[i] != ']' || i == first)) {
		size_t a = u8len(p + i, lp - i);
		const char *lo = p + i;
		size_t llo = a;
		i += a;
		const char *hi = lo;
		size_t lhi = llo;
		if (i + 1 < lp && p[i] == '-' && p[i + 1] != ']') {
			hi = p + i + 1;
			lhi = u8len(hi, lp - i - 1);
			i += 1 + lhi;
		}
		if (xp_casecmp(s, k, lo, llo) >= 0 && xp_casecmp(s, k, hi, lhi) <= 0)
			hit = true;
	}
	if (i >= lp) {
		*ret_end = 0;
		return false;
	}
	*ret_end = i + 1;
	return hit != neg;
}

/* SQL LIKE: '%' any run of characters, '_' one character, [set] [^set]
 * [a-c] one character of (not of) the set; letters compare ASCII
 * case-insensitively. Iterative, backtracking to the last '%'. */
bool xp_like(const char *s, size_t ls, const char *pat, size_t lp)
{
	size_t si = 0, pi = 0, star_p = SIZE_MAX, star_s = 0;
	while (si < ls) {
		if (pi < lp && pat[pi] == '%') {
			star_p = ++pi;
			star_s = si;
			continue;
		}
		size_t k = u8len(s + si, ls - si);
		if (pi < lp) {
			if (pat[pi] == '_') {
				pi++;
				si += k;
				continue;
			}
			if (pat[pi] == '[') {
				size_t end;
				bool hit = like_class(s + si, k, pat + pi + 1, lp - pi - 1, &end);
				if (end) {
					if (hit) {
						pi += 1 + end;
						si += k;
						continue;
					}
					goto backtrack;
				}
			}
			size_t kp = u8len(pat + pi, lp - pi);
			if (xp_casecmp(s + si, k, pat + pi, kp) == 0) {
				pi += kp;
				si += k;
				continue;
			}
		}
	backtrack:
		if (star_p == SIZE_MAX)
			return false;
		pi = star_p;
		star_s += u8len(s + star_s, ls - star_s);
		si = star_s;
	}
	while (pi < lp && pat[pi] == '%')
		pi++;
	return pi == lp;
}

/* A character that belongs to a word: ASCII letters and digits, and every
 * non-ASCII character (accented letters, other scripts). */
static bool word_char(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

bool xp_contains_word(const char *s, size_t ls, const char *w, size_t lw)
{
	if (lw > ls)
		return false;
	bool anywhere = !word_char((unsigned char)w[0]);
	for (size_t i = 0; i + lw <= ls; i++) {
		if (i > 0 && !anywhere && word_char((unsigned char)s[i - 1]))
			continue;
		if (xp_casecmp(s + i, lw, w, lw) == 0)
			return true;
	}
	return false;
}

/* ---- datetimes and durations ------------------------------------------------------------- */

static bool digits(const char *s, size_t len, size_t at, size_t n, int *ret)
{
	if (at + n > len)
		return false;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[at + i]))
			return false;
		v = v * 10 + (s[at + i] - '0');
	}
	*ret = v;
	return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int loom_xpath_parse_time(const char *s, size_t len, int64_t *ret_us)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	int64_t frac = 0;
	if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) || s[7] != '-' ||
	    !digits(s, len, 8, 2, &d))
		return -1;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	size_t p = 10;
	if (p < len && (s[p] == 'T' || s[p] == 't')) {
		if (!digits(s, len, p + 1, 2, &h) || p + 3 >= len || s[p + 3] != ':' || !digits(s, len, p + 4, 2, &mi))
			return -1;
		p += 6;
		if (p < len && s[p] == ':') {
			if (!digits(s, len, p + 1, 2, &se))
				return -1;
			p += 3;
			if (p < len && s[p] == '.') {
				size_t q = p + 1, nd = 0;
				int64_t scale = 100000;
				for (; q < len && isdigit((unsigned char)s[q]); q++, nd++) {
					frac += (s[q] - '0') * scale;
					scale /= 10;
				}
				if (nd == 0)
					return -1;
				p = q;
			}
		}
		if (h > 24 || mi > 59 || se > 59 || (h == 24 && (mi || se || frac)))
			return -1;
	}
	int64_t off_min = 0;
	if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
		p++;
	} else if (p < len && (s[p] == '+' || s[p] == '-')) {
		int oh, om;
		if (!digits(s, len, p + 1, 2, &oh) || p + 3 >= len || s[p + 3] != ':' || !digits(s, len, p + 4, 2, &om) ||
		    oh > 14 || om > 59)
			return -1;
		off_min = (s[p] == '-' ? -1 : 1) * (oh * 60 + om);
		p += 6;
	}
	if (p != len)
		return -1;
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off_min * 60;
	*ret_us = secs * 1000000 + frac;
	return 0;
}

/* Adds n * unit to *acc; false on overflow. */
static bool add_scaled(int64_t *acc, int64_t n, int64_t unit)
{
	int64_t v;
	if (__builtin_mul_overflow(n, unit, &v) || __builtin_add_overflow(*acc, v, acc))
		return false;
	return true;
}

int loom_xpath_parse_duration(const char *s, size_t len, int64_t *ret_us)
{
	size_t p = 0;
	bool neg = false, in_time = false, any = false, any_time = false;
	int last = -1; /* order of the components: D 0, H 1, M 2, S 3 */
	int64_t us = 0;
	if (p < len && s[p] == '-') {
		neg = true;
		p++;
	}
	if (p >= len || s[p] != 'P')
		return -1;
	p++;
	while (p < len) {
		if (s[p] == 'T') {
			if (in_time)
				return -1;
			in_time = true;
			p++;
			continue;
		}
		int64_t n = 0, frac = 0;
		size_t nd = 0, fd = 0;
		for (; p < len && isdigit((unsigned char)s[p]); p++, nd++)
			if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, s[p] - '0', &n))
				return -1;
		if (p < len && s[p] == '.') {
			int64_t scale = 100000;
			for (p++; p < len && isdigit((unsigned char)s[p]); p++, fd++) {
				frac += (s[p] - '0') * scale;
				scale /= 10;
			}
			if (fd == 0)
				return -1;
		}
		if (nd == 0 || p >= len)
			return -1;
		int which;
		int64_t unit;
		switch (s[p]) {
		case 'D': which = 0; unit = 86400000000LL; break;
		case 'H': which = 1; unit = 3600000000LL; break;
		case 'M': which = 2; unit = 60000000LL; break;
		case 'S': which = 3; unit = 1000000LL; break;
		default: return -1;
		}
		if ((which == 0) == in_time || which <= last || (fd && which != 3))
			return -1;
		if (!add_scaled(&us, n, unit) || !add_scaled(&us, 1, frac))
			return -1;
		last = which;
		any = true;
		if (in_time)
			any_time = true;
		p++;
	}
	if (!any || (in_time && !any_time))
		return -1;
	*ret_us = neg ? -us : us;
	return 0;
}

/* ---- lexer ----------------------------------------------------------------------------------- */

typedef enum {
	K_END, K_SLASH, K_STAR, K_LBRACK, K_RBRACK, K_LPAREN, K_RPAREN, K_COMMA, K_BAR,
	K_EQ, K_NE, K_LT, K_LE, K_GT, K_GE, K_STR, K_INT, K_NAME,
	K_BAD, /* a character that starts no token: every rule reports it as what it found */
} tok_kind_t;

typedef struct tok {
	tok_kind_t k;     /* kind */
	size_t off;       /* byte offset of its first character in src */
	size_t len;       /* bytes of its text */
	const char *s;    /* K_STR: decoded text (arena); K_NAME: the text in src */
	size_t slen;      /* bytes of s */
	int64_t i;        /* K_INT: the value */
} tok_t;

typedef struct cc {
	loom_xpath_t *x;            /* the filter being built */
	const char *src;            /* x->src */
	size_t pos;                 /* next byte to read */
	tok_t tok;                  /* the current token */
	loom_xpath_error_t *err;    /* where the first error goes (may be NULL) */
	bool failed;                /* an error was reported */
	unsigned depth;             /* nesting */
	loom_buf_t scratch;         /* for describing tokens */
} cc_t;

#define FAIL(cc, off, ...) (((cc)->failed = true), xp_fail((cc)->x, (cc)->err, (off), __VA_ARGS__))

static bool name_start(unsigned char c)
{
	return isalpha(c) || c == '_';
}

static bool name_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* "the end of the filter", "the string 'x'", "'foo'". */
static const char *describe(cc_t *cc, const tok_t *t)
{
	loom_buf_t *b = &cc->scratch;
	loom_buf_reset(b);
	if (t->k == K_END)
		return "the end of the filter";
	if (t->k == K_STR) {
		loom_buf_adds(b, "the string ");
		add_quoted(b, cc->src + t->off, t->len);
		return loom_buf_cstr(b);
	}
	if (t->k == K_BAD) {
		/* ‘ ’ “ ” ′ ´ ` (what word processors and blog engines make of quotes) */
		static const char *const fancy[] = { "\xe2\x80\x98", "\xe2\x80\x99", "\xe2\x80\x9c", "\xe2\x80\x9d",
			"\xe2\x80\xb2", "\xc2\xb4", "`" };
		loom_buf_addc(b, '\'');
		add_quoted(b, cc->src + t->off, t->len);
		loom_buf_addc(b, '\'');
		for (size_t i = 0; i < sizeof fancy / sizeof fancy[0]; i++)
			if (strlen(fancy[i]) == t->len && memcmp(cc->src + t->off, fancy[i], t->len) == 0)
				loom_buf_adds(b, " (a typographic quote: strings are delimited by ' or \")");
		if (cc->src[t->off] == '\\')
			loom_buf_adds(b, " (XPath strings have no backslash escapes: double the quote, or use the other one)");
		return loom_buf_cstr(b);
	}
	loom_buf_addc(b, '\'');
	add_quoted(b, cc->src + t->off, t->len);
	loom_buf_addc(b, '\'');
	return loom_buf_cstr(b);
}

static int lex_string(cc_t *cc, tok_t *t)
{
	const char *s = cc->src;
	char q = s[t->off];
	size_t p = t->off + 1, n = 0;
	for (;;) {
		if (s[p] == '\0')
			return FAIL(cc, t->off, "unterminated string (expected a closing %c, found the end of the filter)", q);
		if (s[p] == q) {
			if (s[p + 1] != q)
				break;
			p++;
		}
		p++;
		n++;
	}
	char *out = xp_alloc(cc->x, n + 1);
	size_t o = 0;
	for (size_t i = t->off + 1; i < p; i++) {
		out[o++] = s[i];
		if (s[i] == q)
			i++;
	}
	t->k = K_STR;
	t->s = out;
	t->slen = o;
	t->len = p + 1 - t->off;
	return 0;
}

static int lex_int(cc_t *cc, tok_t *t)
{
	const char *s = cc->src;
	size_t p = t->off;
	bool neg = s[p] == '-';
	if (neg)
		p++;
	uint64_t v = 0;
	bool over = false;
	for (; isdigit((unsigned char)s[p]); p++) {
		unsigned d = (unsigned)(s[p] - '0');
		if (v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	t->len = p - t->off;
	if (s[p] == '.' || name_start((unsigned char)s[p])) {
		size_t e = p + 1;
		while (name_char((unsigned char)s[e]))
			e++;
		t->len = e - t->off;
		return FAIL(cc, t->off, "expected an integer, found '%.*s' (FIM has no decimal numbers)", (int)t->len,
		    s + t->off);
	}
	if (over || v > (uint64_t)INT64_MAX + neg)
		return FAIL(cc, t->off, "integer '%.*s' is out of range", (int)t->len, s + t->off);
	t->k = K_INT;
	t->i = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Reads the next token into cc->tok. */
static int next(cc_t *cc)
{
	const char *s = cc->src;
	size_t p = cc->pos;
	while (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')
		p++;
	tok_t *t = &cc->tok;
	memset(t, 0, sizeof *t);
	t->off = p;
	t->len = 1;
	unsigned char c = (unsigned char)s[p];
	switch (c) {
	case '\0': t->k = K_END; t->len = 0; break;
	case '/': t->k = K_SLASH; break;
	case '*': t->k = K_STAR; break;
	case '[': t->k = K_LBRACK; break;
	case ']': t->k = K_RBRACK; break;
	case '(': t->k = K_LPAREN; break;
	case ')': t->k = K_RPAREN; break;
	case ',': t->k = K_COMMA; break;
	case '|': t->k = K_BAR; break;
	case '=': t->k = K_EQ; break;
	case '!':
		if (s[p + 1] != '=')
			return FAIL(cc, p, "expected '!=', found '!'");
		t->k = K_NE;
		t->len = 2;
		break;
	case '<':
		t->k = s[p + 1] == '=' ? K_LE : K_LT;
		t->len = t->k == K_LE ? 2 : 1;
		break;
	case '>':
		t->k = s[p + 1] == '=' ? K_GE : K_GT;
		t->len = t->k == K_GE ? 2 : 1;
		break;
	case '\'':
	case '"':
		if (lex_string(cc, t) < 0)
			return -1;
		break;
	default:
		if (isdigit(c) || (c == '-' && isdigit((unsigned char)s[p + 1]))) {
			if (lex_int(cc, t) < 0)
				return -1;
			break;
		}
		if (name_start(c)) {
			size_t e = p + 1;
			while (name_char((unsigned char)s[e]))
				e++;
			if (s[e] == ':' && name_start((unsigned char)s[e + 1])) {
				e += 2;
				while (name_char((unsigned char)s[e]))
					e++;
			}
			t->k = K_NAME;
			t->len = e - p;
			t->s = s + p;
			t->slen = t->len;
			break;
		}
		t->k = K_BAD;
		t->len = u8len(s + p, strlen(s + p));
		break;
	}
	cc->pos = p + t->len;
	return 0;
}

static bool tok_is(const tok_t *t, const char *word)
{
	return t->k == K_NAME && t->slen == strlen(word) && memcmp(t->s, word, t->slen) == 0;
}

/* The character after the current token, skipping blanks. */
static char peek_char(cc_t *cc)
{
	size_t p = cc->pos;
	while (cc->src[p] == ' ' || cc->src[p] == '\t' || cc->src[p] == '\n' || cc->src[p] == '\r')
		p++;
	return cc->src[p];
}

static int expect(cc_t *cc, tok_kind_t k, const char *what)
{
	if (cc->tok.k != k)
		return FAIL(cc, cc->tok.off, "expected %s, found %s", what, describe(cc, &cc->tok));
	return next(cc);
}

/* ---- parser -------------------------------------------------------------------------------------- */

static xp_node_t *new_node(cc_t *cc, xp_kind_t kind, size_t off)
{
	xp_node_t *n = xp_alloc(cc->x, sizeof *n);
	n->kind = kind;
	n->off = off;
	return n;
}

static void add_kid(cc_t *cc, xp_node_t *n, xp_node_t *kid)
{
	xp_node_t **k = xp_alloc(cc->x, (n->nkids + 1) * sizeof *k);
	if (n->nkids)
		memcpy(k, n->kids, n->nkids * sizeof *k);
	k[n->nkids++] = kid;
	n->kids = k;
}

static xp_node_t *parse_or(cc_t *cc);
static xp_node_t *parse_path(cc_t *cc);

/* The function names the dialect knows (with their prefix). */
static const char *const known_funcs[] = {
	"not", "contains", "starts-with", "ends-with", "true", "false", "fn:current-dateTime", "xs:dateTime",
	"op:add-dayTimeDuration-to-dateTime", "op:subtract-dayTimeDuration-from-dateTime", "xs:dayTimeDuration", NULL,
};

/* Whether name (the current token) is function full ("fn:current-dateTime"),
 * with its prefix or without. */
static bool is_func(const tok_t *t, const char *full)
{
	if (t->k != K_NAME)
		return false;
	const char *colon = strchr(full, ':');
	return tok_is(t, full) || (colon && tok_is(t, colon + 1));
}

static int unknown_func(cc_t *cc)
{
	loom_suggest_t sg;
	loom_suggest_init(&sg, cc->tok.s, cc->tok.slen);
	for (size_t i = 0; known_funcs[i]; i++)
		loom_suggest_offer(&sg, known_funcs[i]);
	const char *best = loom_suggest_best(&sg);
	if (best)
		return FAIL(cc, cc->tok.off, "unknown function '%.*s' (did you mean '%s'?)", (int)cc->tok.slen, cc->tok.s,
		    best);
	return FAIL(cc, cc->tok.off, "unknown function '%.*s'", (int)cc->tok.slen, cc->tok.s);
}

/* Fills lit from a string token: the text and every type it can stand for. */
static void lit_from_string(xp_lit_t *lit, const tok_t *t)
{
	memset(lit, 0, sizeof *lit);
	lit->kind = XT_STRING;
	lit->s = t->s;
	lit->len = t->slen;
	const char *s = t->s;
	size_t n = t->slen;
	if (n > 0) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if ((size_t)(end - s) == n && errno == 0 && !isspace((unsigned char)s[0]) && s[0] != '+') {
			lit->has_int = true;
			lit->i = v;
		}
	}
	if (xp_casecmp(s, n, "true", 4) == 0 || xp_casecmp(s, n, "false", 5) == 0) {
		lit->has_bool = true;
		lit->b = n == 4;
	}
	if (loom_xpath_parse_time(s, n, &lit->t) == 0)
		lit->has_time = true;
}

/* STRING argument of a datetime or duration function: the current token. */
static int string_arg(cc_t *cc, const char *fname, const char *what)
{
	if (cc->tok.k != K_STR)
		return FAIL(cc, cc->tok.off, "expected %s in quotes as the argument of %s, found %s", what, fname,
		    describe(cc, &cc->tok));
	return 0;
}

/* time := fn:current-dateTime() | xs:dateTime(STRING) | op:add/subtract(time|STRING, dur)
 * The current token is the function name. */
static xp_node_t *parse_time(cc_t *cc)
{
	if (++cc->depth > MAX_DEPTH) {
		FAIL(cc, cc->tok.off, "the filter nests deeper than %d levels", MAX_DEPTH);
		return NULL;
	}
	xp_node_t *n = new_node(cc, XN_TIME, cc->tok.off);
	tok_t fname = cc->tok;
	char name[64];
	snprintf(name, sizeof name, "%.*s", (int)(fname.slen < 60 ? fname.slen : 60), fname.s);
	if (next(cc) < 0 || expect(cc, K_LPAREN, "'(' after the function name") < 0)
		return NULL;
	if (is_func(&fname, "fn:current-dateTime")) {
		n->tm = TM_NOW;
		if (expect(cc, K_RPAREN, "')' (current-dateTime takes no argument)") < 0)
			return NULL;
	} else if (is_func(&fname, "xs:dateTime")) {
		n->tm = TM_LIT;
		if (string_arg(cc, name, "a datetime") < 0)
			return NULL;
		lit_from_string(&n->lit, &cc->tok);
		n->lit_off = cc->tok.off;
		if (!n->lit.has_time) {
			FAIL(cc, cc->tok.off, "expected a datetime such as '2024-01-15T10:30:00', found %s",
			    describe(cc, &cc->tok));
			return NULL;
		}
		if (next(cc) < 0 || expect(cc, K_RPAREN, "')' after the datetime") < 0)
			return NULL;
	} else {
		n->tm = is_func(&fname, "op:add-dayTimeDuration-to-dateTime") ? TM_ADD : TM_SUB;
		xp_node_t *base;
		if (cc->tok.k == K_STR) {
			base = new_node(cc, XN_TIME, cc->tok.off);
			base->tm = TM_LIT;
			lit_from_string(&base->lit, &cc->tok);
			base->lit_off = cc->tok.off;
			if (!base->lit.has_time) {
				FAIL(cc, cc->tok.off, "expected a datetime such as '2024-01-15T10:30:00', found %s",
				    describe(cc, &cc->tok));
				return NULL;
			}
			if (next(cc) < 0)
				return NULL;
		} else if (is_func(&cc->tok, "fn:current-dateTime") || is_func(&cc->tok, "xs:dateTime") ||
		    is_func(&cc->tok, "op:add-dayTimeDuration-to-dateTime") ||
		    is_func(&cc->tok, "op:subtract-dayTimeDuration-from-dateTime")) {
			if ((base = parse_time(cc)) == NULL)
				return NULL;
		} else {
			FAIL(cc, cc->tok.off, "expected a datetime (fn:current-dateTime(), a quoted datetime or a datetime "
			    "function) as argument 1 of %s, found %s", name, describe(cc, &cc->tok));
			return NULL;
		}
		add_kid(cc, n, base);
		if (expect(cc, K_COMMA, "',' after the datetime") < 0)
			return NULL;
		if (!is_func(&cc->tok, "xs:dayTimeDuration")) {
			FAIL(cc, cc->tok.off, "expected xs:dayTimeDuration('...') as argument 2 of %s, found %s", name,
			    describe(cc, &cc->tok));
			return NULL;
		}
		if (next(cc) < 0 || expect(cc, K_LPAREN, "'(' after xs:dayTimeDuration") < 0 ||
		    string_arg(cc, "xs:dayTimeDuration", "a duration") < 0)
			return NULL;
		if (loom_xpath_parse_duration(cc->tok.s, cc->tok.slen, &n->dur) < 0) {
			FAIL(cc, cc->tok.off, "expected a duration such as 'P7D', 'PT12H' or 'P1DT2H30M15.5S', found %s",
			    describe(cc, &cc->tok));
			return NULL;
		}
		n->lit_off = cc->tok.off;
		if (next(cc) < 0 || expect(cc, K_RPAREN, "')' after the duration") < 0 ||
		    expect(cc, K_RPAREN, "')' after the arguments") < 0)
			return NULL;
	}
	cc->depth--;
	return n;
}

static bool is_time_func(const tok_t *t)
{
	return is_func(t, "fn:current-dateTime") || is_func(t, "xs:dateTime") ||
	    is_func(t, "op:add-dayTimeDuration-to-dateTime") || is_func(t, "op:subtract-dayTimeDuration-from-dateTime");
}

/* NAME op rhs; the current token is NAME. */
static xp_node_t *parse_cmp(cc_t *cc)
{
	if (memchr(cc->tok.s, ':', cc->tok.slen)) {
		FAIL(cc, cc->tok.off, "expected an attribute name, found '%.*s' (names have no prefix)", (int)cc->tok.slen,
		    cc->tok.s);
		return NULL;
	}
	xp_node_t *n = new_node(cc, XN_CMP, cc->tok.off);
	n->attr = xp_strndup(cc->x, cc->tok.s, cc->tok.slen);
	n->attr_off = cc->tok.off;
	if (next(cc) < 0)
		return NULL;
	n->op_off = cc->tok.off;
	switch (cc->tok.k) {
	case K_EQ: n->op = OP_EQ; break;
	case K_NE: n->op = OP_NE; break;
	case K_LT: n->op = OP_LT; break;
	case K_LE: n->op = OP_LE; break;
	case K_GT: n->op = OP_GT; break;
	case K_GE: n->op = OP_GE; break;
	case K_RBRACK:
	case K_RPAREN:
	case K_END:
	case K_NAME:
		if (cc->tok.k != K_NAME || tok_is(&cc->tok, "and") || tok_is(&cc->tok, "or")) {
			FAIL(cc, cc->tok.off, "expected a comparison operator (= != < <= > >=) after '%s', found %s "
			    "(a bare attribute is no presence test in FIM: write starts-with(%s, '%%') for a string, "
			    "%s = /* for a reference)", n->attr, describe(cc, &cc->tok), n->attr, n->attr);
			return NULL;
		}
		/* fall through */
	default:
		FAIL(cc, cc->tok.off, "expected a comparison operator (= != < <= > >=) after '%s', found %s", n->attr,
		    describe(cc, &cc->tok));
		return NULL;
	}
	if (next(cc) < 0)
		return NULL;
	tok_t *t = &cc->tok;
	n->lit_off = t->off;
	if (t->k == K_STR) {
		n->rhs = R_LIT;
		lit_from_string(&n->lit, t);
		return next(cc) < 0 ? NULL : n;
	}
	if (t->k == K_INT) {
		n->rhs = R_LIT;
		n->lit.kind = XT_INT;
		n->lit.has_int = true;
		n->lit.i = t->i;
		return next(cc) < 0 ? NULL : n;
	}
	if ((tok_is(t, "true") || tok_is(t, "false") || tok_is(t, "fn:true") || tok_is(t, "fn:false"))) {
		n->rhs = R_LIT;
		n->lit.kind = XT_BOOL;
		n->lit.has_bool = true;
		n->lit.b = t->slen == 4 || t->slen == 7; /* true, fn:true */
		if (next(cc) < 0)
			return NULL;
		if (cc->tok.k == K_LPAREN && (next(cc) < 0 || expect(cc, K_RPAREN, "')' after true( or false(") < 0))
			return NULL;
		return n;
	}
	if (t->k == K_SLASH) {
		if (n->op != OP_EQ && n->op != OP_NE) {
			FAIL(cc, n->lit_off, "expected '=' or '!=' before a location path (resources are not ordered)");
			return NULL;
		}
		n->rhs = R_PATH;
		xp_node_t *p = parse_path(cc);
		if (p == NULL)
			return NULL;
		add_kid(cc, n, p);
		return n;
	}
	if (t->k == K_NAME && peek_char(cc) == '(') {
		if (is_time_func(t)) {
			n->rhs = R_TIME;
			xp_node_t *tm = parse_time(cc);
			if (tm == NULL)
				return NULL;
			add_kid(cc, n, tm);
			return n;
		}
		if (!is_func(t, "xs:dayTimeDuration")) {
			for (size_t i = 0; known_funcs[i]; i++)
				if (is_func(t, known_funcs[i]))
					goto bad_rhs;
			unknown_func(cc);
			return NULL;
		}
	}
bad_rhs:
	FAIL(cc, t->off, "expected a string, an integer, true, false, a location path or a datetime after '%s', "
	    "found %s", n->attr, describe(cc, t));
	return NULL;
}

/* contains / starts-with / ends-with (NAME, STRING); the current token is the name. */
static xp_node_t *parse_strfunc(cc_t *cc, xp_fn_t fn)
{
	xp_node_t *n = new_node(cc, XN_FUNC, cc->tok.off);
	n->fn = fn;
	const char *fname = fn == FN_CONTAINS ? "contains" : fn == FN_STARTS ? "starts-with" : "ends-with";
	if (next(cc) < 0 || expect(cc, K_LPAREN, "'('") < 0)
		return NULL;
	if (cc->tok.k != K_NAME) {
		FAIL(cc, cc->tok.off, "expected an attribute name as argument 1 of %s, found %s", fname,
		    describe(cc, &cc->tok));
		return NULL;
	}
	n->attr = xp_strndup(cc->x, cc->tok.s, cc->tok.slen);
	n->attr_off = cc->tok.off;
	if (next(cc) < 0 || expect(cc, K_COMMA, "','") < 0)
		return NULL;
	if (cc->tok.k != K_STR) {
		FAIL(cc, cc->tok.off, "expected a string in quotes as argument 2 of %s, found %s", fname,
		    describe(cc, &cc->tok));
		return NULL;
	}
	if (fn == FN_CONTAINS && cc->tok.slen == 0) {
		FAIL(cc, cc->tok.off, "expected a word to look for as argument 2 of contains, found an empty string");
		return NULL;
	}
	lit_from_string(&n->lit, &cc->tok);
	n->lit_off = cc->tok.off;
	if (fn != FN_CONTAINS) {
		char *pat = xp_alloc(cc->x, n->lit.len + 2);
		size_t at = fn == FN_ENDS ? 1 : 0;
		memcpy(pat + at, n->lit.s, n->lit.len);
		pat[fn == FN_ENDS ? 0 : n->lit.len] = '%';
		n->pat = pat;
		n->patlen = n->lit.len + 1;
	}
	if (next(cc) < 0 || expect(cc, K_RPAREN, "')'") < 0)
		return NULL;
	return n;
}

static xp_node_t *parse_unary(cc_t *cc)
{
	tok_t *t = &cc->tok;
	if (++cc->depth > MAX_DEPTH) {
		FAIL(cc, t->off, "the filter nests deeper than %d levels", MAX_DEPTH);
		return NULL;
	}
	xp_node_t *n = NULL;
	if (t->k == K_LPAREN) {
		if (next(cc) < 0 || (n = parse_or(cc)) == NULL)
			return NULL;
		if (expect(cc, K_RPAREN, cc->tok.k == K_NAME ? "'and', 'or' or ')'" : "')'") < 0)
			return NULL;
	} else if (t->k == K_NAME && peek_char(cc) == '(') {
		if (tok_is(t, "not") || tok_is(t, "fn:not")) {
			n = new_node(cc, XN_NOT, t->off);
			xp_node_t *k;
			if (next(cc) < 0 || expect(cc, K_LPAREN, "'('") < 0 || (k = parse_or(cc)) == NULL)
				return NULL;
			if (expect(cc, K_RPAREN, "')' to close not(") < 0)
				return NULL;
			add_kid(cc, n, k);
		} else if (is_func(t, "fn:contains")) {
			n = parse_strfunc(cc, FN_CONTAINS);
		} else if (is_func(t, "fn:starts-with")) {
			n = parse_strfunc(cc, FN_STARTS);
		} else if (is_func(t, "fn:ends-with")) {
			n = parse_strfunc(cc, FN_ENDS);
		} else {
			for (size_t i = 0; known_funcs[i]; i++)
				if (is_func(t, known_funcs[i])) {
					FAIL(cc, t->off, "expected an attribute name, not(, contains(, starts-with(, ends-with( "
					    "or '(', found '%.*s' (it gives no true or false of its own)", (int)t->slen, t->s);
					return NULL;
				}
			unknown_func(cc);
			return NULL;
		}
	} else if (t->k == K_NAME) {
		n = parse_cmp(cc);
	} else {
		FAIL(cc, t->off, "expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found %s",
		    describe(cc, t));
		return NULL;
	}
	cc->depth--;
	return n;
}

static xp_node_t *parse_and(cc_t *cc)
{
	xp_node_t *first = parse_unary(cc);
	if (first == NULL || !tok_is(&cc->tok, "and"))
		return first;
	xp_node_t *n = new_node(cc, XN_AND, first->off);
	add_kid(cc, n, first);
	while (tok_is(&cc->tok, "and")) {
		xp_node_t *k;
		if (next(cc) < 0 || (k = parse_unary(cc)) == NULL)
			return NULL;
		add_kid(cc, n, k);
	}
	return n;
}

static xp_node_t *parse_or(cc_t *cc)
{
	xp_node_t *first = parse_and(cc);
	if (first == NULL || !tok_is(&cc->tok, "or"))
		return first;
	xp_node_t *n = new_node(cc, XN_OR, first->off);
	add_kid(cc, n, first);
	while (tok_is(&cc->tok, "or")) {
		xp_node_t *k;
		if (next(cc) < 0 || (k = parse_and(cc)) == NULL)
			return NULL;
		add_kid(cc, n, k);
	}
	return n;
}

/* '[' or ']' ...: the predicates of a step, ANDed. */
static int parse_preds(cc_t *cc, xp_step_t *st)
{
	while (cc->tok.k == K_LBRACK) {
		size_t off = cc->tok.off;
		if (++cc->depth > MAX_DEPTH)
			return FAIL(cc, off, "the filter nests deeper than %d levels", MAX_DEPTH);
		xp_node_t *p;
		if (next(cc) < 0)
			return -1;
		if (cc->tok.k == K_RBRACK)
			return FAIL(cc, cc->tok.off, "expected a condition inside '[ ]', found ']'");
		if ((p = parse_or(cc)) == NULL)
			return -1;
		if (expect(cc, K_RBRACK, "'and', 'or' or ']'") < 0)
			return -1;
		cc->depth--;
		if (st->pred == NULL) {
			st->pred = p;
		} else {
			xp_node_t *a = st->pred;
			if (a->kind != XN_AND) {
				a = new_node(cc, XN_AND, st->pred->off);
				add_kid(cc, a, st->pred);
			}
			add_kid(cc, a, p);
			st->pred = a;
		}
	}
	return 0;
}

/* '/' (NAME | '*') pred* ('/' NAME pred*)* ; the current token is '/'. */
static xp_node_t *parse_path(cc_t *cc)
{
	if (++cc->depth > MAX_DEPTH) {
		FAIL(cc, cc->tok.off, "the filter nests deeper than %d levels", MAX_DEPTH);
		return NULL;
	}
	xp_node_t *n = new_node(cc, XN_PATH, cc->tok.off);
	xp_step_t steps[MAX_DEPTH];
	size_t ns = 0;
	if (expect(cc, K_SLASH, "'/' to start a location path") < 0)
		return NULL;
	for (;;) {
		xp_step_t *st = &steps[ns];
		memset(st, 0, sizeof *st);
		st->off = cc->tok.off;
		if (ns == 0 && cc->tok.k == K_STAR) {
			st->name = NULL;
		} else if (cc->tok.k == K_NAME && (ns > 0 || peek_char(cc) != '(')) {
			if (memchr(cc->tok.s, ':', cc->tok.slen)) {
				FAIL(cc, cc->tok.off, "expected %s, found '%.*s' (names have no prefix)",
				    ns == 0 ? "an object type or '*'" : "a reference attribute", (int)cc->tok.slen, cc->tok.s);
				return NULL;
			}
			st->name = xp_strndup(cc->x, cc->tok.s, cc->tok.slen);
		} else {
			FAIL(cc, cc->tok.off, "expected %s after '/', found %s",
			    ns == 0 ? "an object type or '*'" : "a reference attribute", describe(cc, &cc->tok));
			return NULL;
		}
		if (next(cc) < 0 || parse_preds(cc, st) < 0)
			return NULL;
		ns++;
		if (cc->tok.k != K_SLASH)
			break;
		if (ns == MAX_DEPTH) {
			FAIL(cc, cc->tok.off, "a location path has more than %d steps", MAX_DEPTH);
			return NULL;
		}
		if (next(cc) < 0)
			return NULL;
		if (cc->tok.k == K_SLASH) {
			FAIL(cc, cc->tok.off, "expected a reference attribute after '/', found '/' (FIM has no '//')");
			return NULL;
		}
	}
	n->steps = xp_alloc(cc->x, ns * sizeof *n->steps);
	memcpy(n->steps, steps, ns * sizeof *n->steps);
	n->nsteps = ns;
	n->slot = cc->x->n_set_slots;
	cc->x->n_set_slots += 2;
	cc->depth--;
	return n;
}

static xp_node_t *parse_filter(cc_t *cc)
{
	xp_node_t *u = new_node(cc, XN_UNION, cc->tok.off);
	for (;;) {
		if (cc->tok.k != K_SLASH) {
			FAIL(cc, cc->tok.off, "expected '/' to start a location path (such as /Person[...]), found %s",
			    describe(cc, &cc->tok));
			return NULL;
		}
		xp_node_t *p = parse_path(cc);
		if (p == NULL)
			return NULL;
		add_kid(cc, u, p);
		if (cc->tok.k == K_END)
			return u;
		if (cc->tok.k != K_BAR) {
			FAIL(cc, cc->tok.off, "expected '[', '/', '|' or the end of the filter, found %s",
			    describe(cc, &cc->tok));
			return NULL;
		}
		if (next(cc) < 0)
			return NULL;
	}
}

/* ---- comparison slots and dependencies --------------------------------------------------------- */

typedef struct deps_cc {
	loom_xpath_t *x;     /* the filter whose dependencies are recorded */
	int inner;           /* > 0 while walking a location path on the right of a comparison, or a later step */
	size_t cap;          /* slots allocated in x->dep_v */
	size_t tcap;         /* slots allocated in x->type_v */
	size_t ntypes;       /* types recorded in x->type_v */
} deps_cc_t;

static void dep_add(deps_cc_t *d, const char *type, const char *attr)
{
	loom_xpath_t *x = d->x;
	type = type ? type : "*";
	for (size_t i = 0; i < x->deps.n; i++)
		if (strcmp(x->dep_v[i].type, type) == 0 && strcmp(x->dep_v[i].attr, attr) == 0) {
			x->dep_v[i].inner = x->dep_v[i].inner || d->inner > 0;
			return;
		}
	if (x->deps.n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 8;
		x->dep_v = loom_realloc(x->dep_v, d->cap * sizeof *x->dep_v);
	}
	x->dep_v[x->deps.n].type = type;
	x->dep_v[x->deps.n].attr = attr;
	x->dep_v[x->deps.n].inner = d->inner > 0;
	x->deps.n++;
}

static void type_add(deps_cc_t *d, const char *type)
{
	loom_xpath_t *x = d->x;
	type = type ? type : "*";
	for (size_t i = 0; i < d->ntypes; i++)
		if (strcmp(x->type_v[i], type) == 0)
			return;
	if (d->ntypes + 1 >= d->tcap) {
		d->tcap = d->tcap ? 2 * d->tcap : 4;
		x->type_v = loom_realloc(x->type_v, d->tcap * sizeof *x->type_v);
	}
	x->type_v[d->ntypes++] = type;
	x->type_v[d->ntypes] = NULL;
}

/* Numbers the comparison slots and records what the result depends on;
 * ctx is the object type of the resources node is tested on (NULL: any). */
static void walk(deps_cc_t *d, xp_node_t *n, const char *ctx)
{
	switch (n->kind) {
	case XN_UNION:
		for (size_t i = 0; i < n->nkids; i++) {
			walk(d, n->kids[i], NULL);
			xp_node_t *p = n->kids[i];
			type_add(d, p->nsteps == 1 ? p->steps[0].name : NULL);
		}
		break;
	case XN_PATH:
		for (size_t i = 0; i < n->nsteps; i++) {
			const char *t = i == 0 ? n->steps[0].name : NULL;
			if (i == 1)
				d->inner++; /* what later steps reach depends on other resources */
			if (i == 0) {
				dep_add(d, t, "ObjectType");
			} else {
				dep_add(d, i == 1 ? n->steps[0].name : NULL, n->steps[i].name);
				/* a step reaches resources of any type, and skips the ones
				 * that do not exist: their creation or deletion matters */
				dep_add(d, NULL, "ObjectType");
			}
			if (n->steps[i].pred)
				walk(d, n->steps[i].pred, t);
		}
		if (n->nsteps > 1) {
			d->x->deps.has_step = true;
			d->inner--;
		}
		break;
	case XN_AND:
		/* two set slots: the intersection of its conjuncts' index candidates, and a spare */
		n->slot = d->x->n_set_slots;
		d->x->n_set_slots += 2;
		/* fall through */
	case XN_OR:
	case XN_NOT:
		for (size_t i = 0; i < n->nkids; i++)
			walk(d, n->kids[i], ctx);
		break;
	case XN_CMP:
	case XN_FUNC:
		n->slot = d->x->n_cmp_slots++;
		dep_add(d, ctx, n->attr);
		if (n->kind == XN_FUNC && n->fn == FN_CONTAINS)
			d->x->deps.has_contains = true;
		if (n->kind == XN_CMP && n->rhs == R_PATH) {
			d->x->deps.has_path_compare = true;
			d->inner++;
			walk(d, n->kids[0], NULL);
			d->inner--;
		}
		if (n->kind == XN_CMP && n->rhs == R_TIME)
			walk(d, n->kids[0], ctx);
		break;
	case XN_TIME:
		if (n->tm == TM_NOW)
			d->x->deps.temporal = true;
		for (size_t i = 0; i < n->nkids; i++)
			walk(d, n->kids[i], ctx);
		break;
	}
}

/* ---- the <Filter> wrapper ------------------------------------------------------------------------ */

/* XML-unescapes the content of a <Filter ...>...</Filter> element into
 * x->src, with x->map giving the offset in x->text of every byte. */
static int unwrap_filter(loom_xpath_t *x, loom_xpath_error_t *err)
{
	static const char dialect[] = "http://schemas.microsoft.com/2006/11/XPathFilterDialect";
	const char *t = x->text;
	size_t p = 0;
	while (isspace((unsigned char)t[p]))
		p++;
	if (strncmp(t + p, "<Filter", 7) != 0 || !(isspace((unsigned char)t[p + 7]) || t[p + 7] == '>'))
		return xp_fail(x, err, p, "expected <Filter ...> or a location path, found '%.*s'",
		    (int)strcspn(t + p, " >"), t + p);
	const char *gt = strchr(t + p, '>');
	if (gt == NULL)
		return xp_fail(x, err, p, "expected '>' to end the <Filter> tag, found the end of the filter");
	/* the Dialect attribute, when present, must name the FIM dialect */
	const char *da = NULL;
	for (const char *q = t + p; q < gt; q++)
		if (strncmp(q, "Dialect=", 8) == 0 && (q == t || isspace((unsigned char)q[-1]))) {
			da = q + 8;
			break;
		}
	if (da) {
		char qc = *da;
		const char *end = (qc == '"' || qc == '\'') ? memchr(da + 1, qc, (size_t)(gt - da - 1)) : NULL;
		if (end == NULL || (size_t)(end - da - 1) != strlen(dialect) || strncmp(da + 1, dialect, strlen(dialect)))
			return xp_fail(x, err, (size_t)(da - t), "expected Dialect=\"%s\"", dialect);
	}
	size_t start = (size_t)(gt + 1 - t);
	const char *close = strstr(t + start, "</Filter>");
	if (close == NULL)
		return xp_fail(x, err, strlen(t), "expected </Filter>, found the end of the filter");
	size_t after = (size_t)(close - t) + 9;
	while (isspace((unsigned char)t[after]))
		after++;
	if (t[after])
		return xp_fail(x, err, after, "expected the end of the filter after </Filter>, found '%c'", t[after]);
	size_t end = (size_t)(close - t);
	char *src = loom_malloc(end - start + 1);
	size_t *map = loom_malloc((end - start + 1) * sizeof *map);
	size_t o = 0;
	for (size_t i = start; i < end;) {
		map[o] = i;
		if (t[i] != '&') {
			if (t[i] == '<') {
				free(src);
				free(map);
				return xp_fail(x, err, i, "unexpected '<' inside <Filter> (write &lt;)");
			}
			src[o++] = t[i++];
			continue;
		}
		const char *semi = memchr(t + i, ';', end - i);
		size_t n = semi ? (size_t)(semi - (t + i)) + 1 : 0;
		static const struct { const char *ent; char ch; } ents[] = {
			{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&apos;", '\'' }, { "&quot;", '"' },
		};
		bool done = false;
		for (size_t k = 0; k < 5 && !done; k++)
			if (n == strlen(ents[k].ent) && strncmp(t + i, ents[k].ent, n) == 0) {
				src[o++] = ents[k].ch;
				done = true;
			}
		if (!done && n > 3 && t[i + 1] == '#') {
			char *e;
			unsigned long cp = t[i + 2] == 'x' ? strtoul(t + i + 3, &e, 16) : strtoul(t + i + 2, &e, 10);
			if (e == semi && cp > 0 && cp < 0x80) {
				src[o++] = (char)cp;
				done = true;
			}
		}
		if (!done) {
			free(src);
			free(map);
			return xp_fail(x, err, i, "expected an XML entity (&lt; &gt; &amp; &apos; &quot; or an ASCII &#N;), "
			    "found '%.*s'", (int)(n ? n : 1), t + i);
		}
		i += n;
	}
	x->src = src;
	x->map = map;
	x->map[o] = end;
	x->src[o] = '\0';
	return 0;
}

/* ---- compile -------------------------------------------------------------------------------------- */

int loom_xpath_compile(const char *text, const loom_xpath_compile_opts_t *opts, loom_xpath_t **ret,
    loom_xpath_error_t *ret_error)
{
	if (ret_error)
		memset(ret_error, 0, sizeof *ret_error);
	loom_xpath_t *x = loom_calloc(1, sizeof *x);
	x->arena = loom_calloc(1, sizeof *x->arena);
	x->text = loom_strdup(text ? text : "");
	if (opts && opts->file) {
		x->file = loom_strdup(opts->file);
		x->line = opts->line;
		x->column = opts->column;
	}
	cc_t cc = { .x = x, .err = ret_error };
	size_t len = strlen(x->text);
	if (len > MAX_TEXT) {
		xp_fail(x, ret_error, 0, "the filter is longer than %u bytes", MAX_TEXT);
		goto fail;
	}
	size_t lead = strspn(x->text, " \t\r\n");
	if (x->text[lead] == '<') {
		if (unwrap_filter(x, ret_error) < 0)
			goto fail;
	} else {
		x->src = x->text;
	}
	cc.src = x->src;
	if (next(&cc) < 0)
		goto fail;
	if (cc.tok.k == K_END) {
		FAIL(&cc, cc.tok.off, "expected '/' to start a location path (such as /Person[...]), found an empty filter");
		goto fail;
	}
	x->root = parse_filter(&cc);
	if (x->root == NULL)
		goto fail;
	deps_cc_t d = { .x = x };
	walk(&d, x->root, NULL);
	x->deps.v = x->dep_v;
	x->deps.types = x->type_v;
	loom_buf_release(&cc.scratch);
	*ret = x;
	return 0;
fail:
	if (ret_error && ret_error->text == NULL)
		xp_fail(x, ret_error, 0, "the filter is not valid");
	loom_buf_release(&cc.scratch);
	loom_xpath_destroy(&x);
	return -1;
}

void loom_xpath_destroy(loom_xpath_t **xp)
{
	loom_xpath_t *x = *xp;
	if (x == NULL)
		return;
	if (x->arena) {
		while (x->arena->head) {
			xp_block_t *next = x->arena->head->next;
			free(x->arena->head);
			x->arena->head = next;
		}
		free(x->arena);
	}
	if (x->src != x->text)
		free(x->src);
	free(x->text);
	free(x->map);
	free(x->file);
	free(x->dep_v);
	free(x->type_v);
	free(x);
	*xp = NULL;
}

const char *loom_xpath_text(const loom_xpath_t *x)
{
	return x->text;
}

const loom_xpath_deps_t *loom_xpath_deps(const loom_xpath_t *x)
{
	return &x->deps;
}

bool loom_xpath_depends_inner(const loom_xpath_t *x, const char *type, const char *attr)
{
	if (x->deps.has_step)
		return loom_xpath_depends_on(x, type, attr);
	for (size_t i = 0; i < x->deps.n; i++) {
		const loom_xpath_dep_t *d = &x->deps.v[i];
		if (d->inner && strcmp(d->attr, attr) == 0 &&
		    (type == NULL || strcmp(d->type, "*") == 0 || strcmp(d->type, type) == 0))
			return true;
	}
	return false;
}

bool loom_xpath_depends_on(const loom_xpath_t *x, const char *type, const char *attr)
{
	for (size_t i = 0; i < x->deps.n; i++) {
		const loom_xpath_dep_t *d = &x->deps.v[i];
		if (strcmp(d->attr, attr) == 0 && (type == NULL || strcmp(d->type, "*") == 0 || strcmp(d->type, type) == 0))
			return true;
	}
	return false;
}
