/* loom_expr_funcs.c - the function library of the expression language.
 *
 * One C function and one row of expr_funcs[] per function (see
 * loom_expr_int.h for the three kinds of implementation). Semantics follow
 * the MIM 2016 functions reference (the FIM 2010 sync-rule set) and, for
 * functions MIM does not have, the Entra Connect sync reference; where the
 * two disagree docs/expressions.md says which one Loom follows and why.
 *
 * Lengths and positions count characters (Unicode code points), not bytes.
 * Case mapping is locale-independent and covers ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic, where upper and lower case have the same
 * UTF-8 length; other characters are left as they are.
 */
#include "loom_expr_int.h"

#include "loom_alloc.h"
#include "loom_buf.h"

#include <ctype.h>
#include <sodium.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#define PAD_MAX (1 << 20)  /* longest string LeftPad and RightPad make */

/* ---- characters --------------------------------------------------------------------- */

static uint32_t next_cp(const char *s, size_t len, size_t *i)
{
	unsigned char ch = (unsigned char)s[*i];
	if (ch < 0x80) {
		(*i)++;
		return ch;
	}
	return expr_utf8_next(s, len, i);
}

/* White space as .NET's Char.IsWhiteSpace sees it. */
static bool is_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680
	    || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f
	    || cp == 0x3000;
}

/* Latin Extended-A: pairs with the capital at the even code point (true)
 * or at the odd one (false); U+0130, U+0131, U+0138, U+0149, U+017F have no
 * same-length partner. */
static bool latin_a_even_upper(uint32_t cp)
{
	return (cp >= 0x100 && cp <= 0x137 && cp != 0x130 && cp != 0x131) || (cp >= 0x14a && cp <= 0x177);
}

static bool latin_a_odd_upper(uint32_t cp)
{
	return (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e);
}

static uint32_t cp_upper(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
	if (cp >= 0xe0 && cp <= 0xfe && cp != 0xf7)
		return cp - 32;
	if (cp == 0xff)
		return 0x178;
	if (latin_a_even_upper(cp))
		return cp & ~1u;
	if (latin_a_odd_upper(cp))
		return (cp & 1) ? cp : cp - 1;
	if (cp >= 0x3b1 && cp <= 0x3c9)
		return cp == 0x3c2 ? 0x3a3 : cp - 32;
	if (cp == 0x3ac)
		return 0x386;
	if (cp >= 0x3ad && cp <= 0x3af)
		return cp - 37;
	if (cp == 0x3cc)
		return 0x38c;
	if (cp == 0x3cd || cp == 0x3ce)
		return cp - 63;
	if (cp >= 0x430 && cp <= 0x44f)
		return cp - 32;
	if (cp >= 0x450 && cp <= 0x45f)
		return cp - 80;
	return cp;
}

static uint32_t cp_lower(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
		return cp + 32;
	if (cp == 0x178)
		return 0xff;
	if (latin_a_even_upper(cp))
		return cp | 1u;
	if (latin_a_odd_upper(cp))
		return (cp & 1) ? cp + 1 : cp;
	if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2)
		return cp + 32;
	if (cp == 0x386)
		return 0x3ac;
	if (cp >= 0x388 && cp <= 0x38a)
		return cp + 37;
	if (cp == 0x38c)
		return 0x3cc;
	if (cp == 0x38e || cp == 0x38f)
		return cp + 63;
	if (cp >= 0x410 && cp <= 0x42f)
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 80;
	return cp;
}

/* Writes the case-mapped character over the one at o[at..end) when the
 * mapping keeps its length; returns whether it changed anything. */
static bool put_mapped(char *o, size_t at, size_t end, uint32_t cp, uint32_t m)
{
	char tmp[4];
	if (m == cp || expr_utf8_put(tmp, m) != end - at)
		return false;
	memcpy(o + at, tmp, end - at);
	return true;
}

/* UpperCase/LowerCase: returns the input itself when nothing changes. */
static int map_case(expr_ctx_t *c, const xval_t *x, bool upper)
{
	const char *s = x->s;
	size_t len = x->len, i = 0, first = len;
	unsigned char lo = upper ? 'a' : 'A';
	while (i < len) {
		size_t at = i;
		unsigned char byte = (unsigned char)s[i];
		if (byte < 0x80) { /* ASCII fast path */
			i++;
			if ((unsigned)(byte - lo) < 26u) {
				first = at;
				break;
			}
			continue;
		}
		uint32_t cp = next_cp(s, len, &i);
		char tmp[4];
		uint32_t m = upper ? cp_upper(cp) : cp_lower(cp);
		if (m != cp && expr_utf8_put(tmp, m) == i - at) {
			first = at;
			break;
		}
	}
	if (first == len) {
		expr_emit_str(c, s, len);
		return 0;
	}
	char *o = expr_new_str(c, len);
	memcpy(o, s, len);
	for (i = first; i < len;) {
		size_t at = i;
		unsigned char byte = (unsigned char)s[i];
		if (byte < 0x80) {
			if ((unsigned)(byte - lo) < 26u)
				o[i] = (char)(byte ^ 0x20);
			i++;
			continue;
		}
		uint32_t cp = next_cp(s, len, &i);
		put_mapped(o, at, i, cp, upper ? cp_upper(cp) : cp_lower(cp));
	}
	expr_emit_new(c, o, len);
	return 0;
}

static bool has_cp(const char *set, size_t len, uint32_t cp)
{
	for (size_t i = 0; i < len;)
		if (next_cp(set, len, &i) == cp)
			return true;
	return false;
}

/* Byte offset of the first occurrence of needle in hay at or after from, or SIZE_MAX. */
static size_t find(const char *hay, size_t hlen, size_t from, const char *needle, size_t nlen)
{
	if (nlen == 0 || hlen < nlen)
		return SIZE_MAX;
	for (size_t i = from; i + nlen <= hlen; i++) {
		const char *p = memchr(hay + i, needle[0], hlen - nlen + 1 - i);
		if (p == NULL)
			return SIZE_MAX;
		i = (size_t)(p - hay);
		if (memcmp(p, needle, nlen) == 0)
			return i;
	}
	return SIZE_MAX;
}

static void quote(loom_buf_t *b, const xval_t *x)
{
	loom_buf_reset(b);
	expr_add_quoted(b, x->s, x->len);
}

/* ---- data manipulation --------------------------------------------------------------- */

static int fn_concat(expr_ctx_t *c, const xval_t *a, size_t n)
{
	if (n == 1) {
		expr_emit_str(c, a[0].s, a[0].len);
		return 0;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += a[i].len;
	char *o = expr_new_str(c, total), *p = o;
	for (size_t i = 0; i < n; i++) {
		if (a[i].len)
			memcpy(p, a[i].s, a[i].len);
		p += a[i].len;
	}
	expr_emit_new(c, o, total);
	return 0;
}

static int fn_add(expr_ctx_t *c, const xval_t *a, size_t n)
{
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		if (__builtin_add_overflow(sum, a[i].i, &sum))
			return expr_fail(c, "integer overflow in operator '+'");
	expr_emit_int(c, LOOM_EXPR_INT, sum);
	return 0;
}

/* '+' whose operands' types were unknown at compile time: all strings
 * concatenate, all integers add, a mix is an error. */
static int fn_plus(expr_ctx_t *c, const xval_t *a, size_t n)
{
	bool ints = a[0].t == LOOM_EXPR_INT;
	for (size_t i = 1; i < n; i++)
		if ((a[i].t == LOOM_EXPR_INT) != ints)
			return expr_fail_arg(c, i,
			    "operator '+' cannot combine a string and an integer (convert with CStr or CNum)");
	return ints ? fn_add(c, a, n) : fn_concat(c, a, n);
}

static int fn_uppercase(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return map_case(c, &a[0], true);
}

static int fn_lowercase(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return map_case(c, &a[0], false);
}

/* A character ProperCase looks past to find the first letter of a word:
 * ASCII and Latin-1 punctuation and symbols ("$test" gives "$Test"). */
static bool is_word_prefix(uint32_t cp)
{
	if (cp < 0x80)
		return !isalnum((int)cp);
	return (cp >= 0xa1 && cp <= 0xbf && cp != 0xaa && cp != 0xb5 && cp != 0xba) || cp == 0xd7 || cp == 0xf7;
}

/* MIM: the first character of every space-delimited word upper case, every
 * other character lower case; punctuation opening a word is kept and the
 * letter after it is capitalised. */
static int fn_propercase(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *s = a[0].s;
	size_t len = a[0].len;
	char *o = expr_new_str(c, len);
	memcpy(o, s, len);
	bool looking = true; /* for the first letter of a word */
	for (size_t i = 0; i < len;) {
		size_t at = i;
		uint32_t cp = next_cp(s, len, &i);
		if (is_space(cp)) {
			looking = true;
			continue;
		}
		if (looking && is_word_prefix(cp))
			continue;
		put_mapped(o, at, i, cp, looking ? cp_upper(cp) : cp_lower(cp));
		looking = false;
	}
	expr_emit_new(c, o, len);
	return 0;
}

static size_t skip_space(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t at = i;
		if (!is_space(next_cp(s, len, &i)))
			return at;
	}
	return len;
}

static size_t end_of_text(const char *s, size_t len)
{
	size_t end = 0;
	for (size_t i = 0; i < len;)
		if (!is_space(next_cp(s, len, &i)))
			end = i;
	return end;
}

static int fn_trim(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	size_t b = skip_space(a[0].s, a[0].len);
	size_t e = b + end_of_text(a[0].s + b, a[0].len - b);
	expr_emit_str(c, a[0].s + b, e - b);
	return 0;
}

static int fn_ltrim(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	size_t b = skip_space(a[0].s, a[0].len);
	expr_emit_str(c, a[0].s + b, a[0].len - b);
	return 0;
}

static int fn_rtrim(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	expr_emit_str(c, a[0].s, end_of_text(a[0].s, a[0].len));
	return 0;
}

/* MIM: every occurrence, left to right, not overlapping; an empty OldValue
 * changes nothing. The monikers \n \r \t are string-literal escapes. */
static int fn_replacestring(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *s = a[0].s;
	size_t len = a[0].len, ol = a[1].len, nl = a[2].len, count = 0;
	for (size_t p = find(s, len, 0, a[1].s, ol); p != SIZE_MAX; p = find(s, len, p + ol, a[1].s, ol))
		count++;
	if (count == 0) {
		expr_emit_str(c, s, len);
		return 0;
	}
	size_t total = len - count * ol + count * nl, from = 0, k = 0;
	char *o = expr_new_str(c, total);
	for (size_t p = find(s, len, 0, a[1].s, ol); p != SIZE_MAX; p = find(s, len, p + ol, a[1].s, ol)) {
		memcpy(o + k, s + from, p - from);
		k += p - from;
		if (nl)
			memcpy(o + k, a[2].s, nl);
		k += nl;
		from = p + ol;
	}
	memcpy(o + k, s + from, len - from);
	expr_emit_new(c, o, total);
	return 0;
}

static int pad(expr_ctx_t *c, const xval_t *a, bool left, const char *name)
{
	if (a[1].t == T_NONE)
		return 0;
	if (a[2].t == T_NONE)
		return expr_fail_arg(c, 2, "the pad character of %s cannot be null", name);
	if (expr_utf8_count(a[2].s, a[2].len) != 1) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote(&b, &a[2]);
		expr_fail_arg(c, 2, "the pad character of %s must be one character, got '%s'", name, loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	if (a[1].i > PAD_MAX)
		return expr_fail_arg(c, 1, "the length of %s is too large (%" PRId64 "; the limit is %d)", name, a[1].i,
		    PAD_MAX);
	size_t have = expr_utf8_count(a[0].s, a[0].len);
	if (a[1].i <= (int64_t)have) {
		expr_emit_str(c, a[0].s, a[0].len);
		return 0;
	}
	size_t k = (size_t)a[1].i - have, pl = a[2].len, total = a[0].len + k * pl;
	char *o = expr_new_str(c, total), *p = o;
	if (!left) {
		memcpy(p, a[0].s, a[0].len);
		p += a[0].len;
	}
	for (size_t i = 0; i < k; i++, p += pl)
		memcpy(p, a[2].s, pl);
	if (left && a[0].len)
		memcpy(p, a[0].s, a[0].len);
	expr_emit_new(c, o, total);
	return 0;
}

static int fn_leftpad(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return pad(c, a, true, expr_fn_name(c));
}

static int fn_rightpad(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return pad(c, a, false, expr_fn_name(c));
}

/* ---- data retrieval --------------------------------------------------------------------- */

/* MIM: 0 gives "", a negative count gives the input, so does a count past the end. */
static int fn_left(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t k = a[1].i;
	if (k == 0)
		expr_emit_str(c, "", 0);
	else if (k < 0)
		expr_emit_str(c, a[0].s, a[0].len);
	else
		expr_emit_str(c, a[0].s, expr_utf8_skip(a[0].s, a[0].len, (size_t)k));
	return 0;
}

static int fn_right(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t k = a[1].i;
	size_t have = expr_utf8_count(a[0].s, a[0].len);
	if (k == 0) {
		expr_emit_str(c, "", 0);
	} else if (k < 0 || (uint64_t)k >= have) {
		expr_emit_str(c, a[0].s, a[0].len);
	} else {
		size_t from = expr_utf8_skip(a[0].s, a[0].len, have - (size_t)k);
		expr_emit_str(c, a[0].s + from, a[0].len - from);
	}
	return 0;
}

/* MIM: pos is 1-based; a count of 0 or below gives "" (Entra gives the
 * input for a negative count); pos past the end or below 1 gives the input.
 * Without a count (VB, Entra's examples): to the end. */
static int fn_mid(expr_ctx_t *c, const xval_t *a, size_t n)
{
	int64_t pos = a[1].i, k = n > 2 ? a[2].i : INT64_MAX;
	size_t have = expr_utf8_count(a[0].s, a[0].len);
	if (k <= 0) {
		expr_emit_str(c, "", 0);
	} else if (pos < 1 || (uint64_t)pos > have) {
		expr_emit_str(c, a[0].s, a[0].len);
	} else {
		size_t from = expr_utf8_skip(a[0].s, a[0].len, (size_t)pos - 1);
		size_t to = from + expr_utf8_skip(a[0].s + from, a[0].len - from, (size_t)k);
		expr_emit_str(c, a[0].s + from, to - from);
	}
	return 0;
}

static int fn_len(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_INT, (int64_t)expr_utf8_count(a[0].s, a[0].len));
	return 0;
}

/* MIM: words are separated by any one of the delimiter characters; two
 * delimiters in a row delimit an empty word; number < 1 or past the last
 * word gives "". */
static int fn_word(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *s = a[0].s;
	size_t len = a[0].len, start = 0;
	int64_t want = a[1].i, w = 1;
	if (want < 1) {
		expr_emit_str(c, "", 0);
		return 0;
	}
	for (size_t i = 0; i < len;) {
		size_t at = i;
		if (has_cp(a[2].s, a[2].len, next_cp(s, len, &i))) {
			if (w == want) {
				expr_emit_str(c, s + start, at - start);
				return 0;
			}
			w++;
			start = i;
		}
	}
	if (w == want)
		expr_emit_str(c, s + start, len - start);
	else
		expr_emit_str(c, "", 0);
	return 0;
}

/* ---- datetimes --------------------------------------------------------------------------------
 *
 * A datetime is µs since 1970-01-01T00:00:00Z, in UTC, proleptic Gregorian.
 * CDate and the functions built on it accept the years 1 to 9999 (what .NET
 * can represent); CStr prints any datetime.
 */

#define US_SEC INT64_C(1000000)
#define US_DAY (INT64_C(86400) * US_SEC)
#define TIME_MIN (INT64_C(-62135596800) * US_SEC)          /* 0001-01-01T00:00:00Z */
#define TIME_MAX (INT64_C(253402300800) * US_SEC - 1)      /* 9999-12-31T23:59:59.999999Z */
#define FILETIME_EPOCH (INT64_C(-11644473600) * US_SEC)    /* 1601-01-01T00:00:00Z, where FILETIME counts from */

static const char *const month_names[] = {
	"January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
	"November", "December",
};
static const char *const day_names[] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*ret_y = (int64_t)yoe + era * 400 + (m <= 2);
	*ret_m = m;
	*ret_d = d;
}

/* A civil date to days since 1970-01-01 (the inverse). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : n[m - 1];
}

/* A datetime taken apart. */
typedef struct dt_parts {
	int64_t y;            /* year */
	unsigned mo;          /* month 1..12 */
	unsigned d;           /* day 1..31 */
	unsigned h, mi, s;    /* time of day */
	unsigned us;          /* microseconds 0..999999 */
	unsigned wday;        /* day of the week, 0 is Sunday */
	int64_t days;         /* days since 1970-01-01 */
	int64_t rem;          /* µs since midnight */
} dt_parts_t;

static void split_time(int64_t us, dt_parts_t *p)
{
	p->days = us / US_DAY;
	p->rem = us % US_DAY;
	if (p->rem < 0) {
		p->rem += US_DAY;
		p->days--;
	}
	civil_from_days(p->days, &p->y, &p->mo, &p->d);
	unsigned secs = (unsigned)(p->rem / US_SEC);
	p->h = secs / 3600;
	p->mi = secs / 60 % 60;
	p->s = secs % 60;
	p->us = (unsigned)(p->rem % US_SEC);
	p->wday = (unsigned)(((p->days + 4) % 7 + 7) % 7);
}

size_t expr_format_time(char *buf, size_t size, int64_t us)
{
	dt_parts_t p;
	split_time(us, &p);
	int k = snprintf(buf, size, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u", p.y, p.mo, p.d, p.h, p.mi, p.s);
	if (p.us)
		k += snprintf(buf + k, size - (size_t)k, ".%06u", p.us);
	k += snprintf(buf + k, size - (size_t)k, "Z");
	return (size_t)k;
}

/* Cursor of the datetime parser. */
typedef struct dtp {
	const char *s;        /* the text */
	size_t n;             /* its length */
	size_t i;             /* next byte */
} dtp_t;

static bool dt_at_digit(const dtp_t *p)
{
	return p->i < p->n && isdigit((unsigned char)p->s[p->i]);
}

static void dt_blanks(dtp_t *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
		p->i++;
}

static bool dt_char(dtp_t *p, char ch)
{
	if (p->i < p->n && p->s[p->i] == ch) {
		p->i++;
		return true;
	}
	return false;
}

/* Reads min to max digits; returns how many (0: fewer than min, nothing read). */
static unsigned dt_num(dtp_t *p, unsigned min, unsigned max, int64_t *ret)
{
	size_t i = p->i;
	int64_t v = 0;
	unsigned k = 0;
	while (k < max && i < p->n && isdigit((unsigned char)p->s[i])) {
		v = v * 10 + (p->s[i++] - '0');
		k++;
	}
	if (k < min || (i < p->n && isdigit((unsigned char)p->s[i])))
		return 0;
	p->i = i;
	*ret = v;
	return k;
}

/* A word of letters naming one of names[0..n) in full or by its first three
 * letters, any case; returns its index, or -1 with nothing read. */
static int dt_name(dtp_t *p, const char *const *names, int n)
{
	size_t b = p->i, e = b;
	while (e < p->n && isalpha((unsigned char)p->s[e]))
		e++;
	size_t len = e - b;
	for (int k = 0; k < n && len >= 3; k++) {
		if ((len == 3 || len == strlen(names[k])) && strncasecmp(names[k], p->s + b, len) == 0) {
			p->i = e;
			return k;
		}
	}
	return -1;
}

/* A word of letters equal to w, any case. */
static bool dt_word(dtp_t *p, const char *w)
{
	size_t b = p->i, e = b, len = strlen(w);
	while (e < p->n && isalpha((unsigned char)p->s[e]))
		e++;
	if (e - b != len || strncasecmp(w, p->s + b, len) != 0)
		return false;
	p->i = e;
	return true;
}

/* Fraction digits after '.' or ',': µs (more than 6 digits are cut). */
static bool dt_fraction(dtp_t *p, int64_t *ret_us)
{
	size_t i = p->i;
	int64_t us = 0;
	unsigned k = 0;
	while (i < p->n && isdigit((unsigned char)p->s[i])) {
		if (k < 6)
			us = us * 10 + (p->s[i] - '0');
		k++;
		i++;
	}
	if (k == 0 || k > 9)
		return false;
	for (; k < 6; k++)
		us *= 10;
	p->i = i;
	*ret_us = us;
	return true;
}

/* An optional zone: Z, UTC, GMT, +H, +HH, +HH:MM, +HHMM (or -). */
static bool dt_zone(dtp_t *p, int64_t *ret_minutes)
{
	*ret_minutes = 0;
	if (dt_char(p, 'Z') || dt_char(p, 'z') || dt_word(p, "UTC") || dt_word(p, "GMT"))
		return true;
	if (p->i >= p->n || (p->s[p->i] != '+' && p->s[p->i] != '-'))
		return true;
	bool neg = p->s[p->i++] == '-';
	int64_t h, m = 0;
	unsigned k = dt_num(p, 1, 4, &h);
	if (k == 0 || k == 3)
		return false;
	if (k == 4) {
		m = h % 100;
		h /= 100;
	} else if (dt_char(p, ':') && dt_num(p, 2, 2, &m) == 0) {
		return false;
	}
	if (h > 14 || m > 59 || h * 60 + m > 14 * 60)
		return false;
	*ret_minutes = neg ? -(h * 60 + m) : h * 60 + m;
	return true;
}

bool expr_parse_time(const char *s, size_t len, int64_t *ret_us)
{
	dtp_t p = { s, len, 0 };
	int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0, zone = 0;
	int wday = -1;
	dt_blanks(&p);
	size_t digits = 0;
	while (p.i + digits < p.n && isdigit((unsigned char)s[p.i + digits]))
		digits++;
	if (digits == 14) {
		/* LDAP generalized time: YYYYMMDDHHMMSS[.f][Z|+HHMM] */
		dt_num(&p, 14, 14, &y);
		sec = y % 100;
		mi = y / 100 % 100;
		h = y / 10000 % 100;
		d = y / 1000000 % 100;
		mo = y / 100000000 % 100;
		y /= 10000000000;
		if ((dt_char(&p, '.') || dt_char(&p, ',')) && !dt_fraction(&p, &frac))
			return false;
		if (!dt_zone(&p, &zone))
			return false;
	} else {
		int w = dt_name(&p, day_names, 7);
		if (w >= 0) {
			wday = w;
			dt_char(&p, ',');
			dt_blanks(&p);
		}
		if (dt_at_digit(&p)) {
			int64_t a;
			unsigned na = dt_num(&p, 1, 4, &a);
			char sep = p.i < p.n ? s[p.i] : '\0';
			if (na == 4 && (sep == '-' || sep == '/' || sep == '.')) {
				/* 2024-03-01 */
				p.i++;
				y = a;
				if (!dt_num(&p, 1, 2, &mo) || !dt_char(&p, sep) || !dt_num(&p, 1, 2, &d))
					return false;
			} else if (na && na <= 2 && (sep == '/' || sep == '-' || sep == '.')) {
				/* 12/25/2007 */
				p.i++;
				mo = a;
				if (!dt_num(&p, 1, 2, &d) || !dt_char(&p, sep) || !dt_num(&p, 4, 4, &y))
					return false;
			} else if (na && na <= 2) {
				/* 10 January 2013 */
				d = a;
				dt_blanks(&p);
				int m = dt_name(&p, month_names, 12);
				if (m < 0)
					return false;
				mo = m + 1;
				dt_blanks(&p);
				if (!dt_num(&p, 4, 4, &y))
					return false;
			} else {
				return false;
			}
		} else {
			/* January 10, 2013 */
			int m = dt_name(&p, month_names, 12);
			if (m < 0)
				return false;
			mo = m + 1;
			dt_blanks(&p);
			if (!dt_num(&p, 1, 2, &d))
				return false;
			dt_char(&p, ',');
			dt_blanks(&p);
			if (!dt_num(&p, 4, 4, &y))
				return false;
		}
		/* the time: T or blanks, H[:MM[:SS[.f]]] [AM|PM]; H alone needs AM or PM */
		size_t before = p.i;
		bool t = dt_char(&p, 'T') || dt_char(&p, 't');
		if (!t)
			dt_blanks(&p);
		if (dt_at_digit(&p)) {
			bool colon = false;
			if (!dt_num(&p, 1, 2, &h))
				return false;
			if (dt_char(&p, ':')) {
				colon = true;
				if (!dt_num(&p, 2, 2, &mi))
					return false;
				if (dt_char(&p, ':')) {
					if (!dt_num(&p, 2, 2, &sec))
						return false;
					if ((dt_char(&p, '.') || dt_char(&p, ',')) && !dt_fraction(&p, &frac))
						return false;
				}
			}
			size_t at = p.i;
			dt_blanks(&p);
			bool am = dt_word(&p, "AM"), pm = !am && dt_word(&p, "PM");
			if (am || pm) {
				if (h < 1 || h > 12)
					return false;
				h = h % 12 + (pm ? 12 : 0);
			} else {
				p.i = at;
				if (!colon)
					return false;
			}
		} else if (t) {
			return false;
		} else {
			p.i = before;
		}
		dt_blanks(&p);
		if (!dt_zone(&p, &zone))
			return false;
	}
	dt_blanks(&p);
	if (p.i != p.n || y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, (unsigned)mo)
	    || h > 23 || mi > 59 || sec > 59)
		return false;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	if (wday >= 0 && ((days + 4) % 7 + 7) % 7 != wday)
		return false;
	int64_t us = ((days * 86400 + h * 3600 + mi * 60 + sec) - zone * 60) * US_SEC + frac;
	if (us < TIME_MIN || us > TIME_MAX)
		return false;
	*ret_us = us;
	return true;
}

/* Writer of formatted text; with o NULL it only counts (to check a format). */
typedef struct dt_out {
	char *o;              /* where to write, or NULL */
	size_t k;             /* bytes written */
} dt_out_t;

static void out_add(dt_out_t *w, const char *s, size_t n)
{
	if (w->o && n)
		memcpy(w->o + w->k, s, n);
	w->k += n;
}

/* v in decimal, zero-padded to width digits (a format may ask for any
 * width: "yyyyyyyyyy..." pads the year, so the zeros are not formatted
 * into a fixed buffer). */
static void out_num(dt_out_t *w, int64_t v, unsigned width)
{
	static const char zeros[16] = "0000000000000000";
	char buf[24];
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	size_t n = (size_t)snprintf(buf, sizeof buf, "%" PRIu64, u);

	if (v < 0)
		out_add(w, "-", 1);
	for (size_t pad = width > n ? width - n : 0; pad > 0;) {
		size_t k = pad < sizeof zeros ? pad : sizeof zeros;
		out_add(w, zeros, k);
		pad -= k;
	}
	out_add(w, buf, n);
}

/* The standard formats of .NET's invariant culture, as custom formats. */
static const char *standard_format(char ch)
{
	switch (ch) {
	case 'd': return "MM/dd/yyyy";
	case 'D': return "dddd, dd MMMM yyyy";
	case 'f': return "dddd, dd MMMM yyyy HH:mm";
	case 'F': return "dddd, dd MMMM yyyy HH:mm:ss";
	case 'g': return "MM/dd/yyyy HH:mm";
	case 'G': return "MM/dd/yyyy HH:mm:ss";
	case 'm': case 'M': return "MMMM dd";
	case 'o': case 'O': return "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK";
	case 'r': case 'R': return "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'";
	case 's': return "yyyy'-'MM'-'dd'T'HH':'mm':'ss";
	case 't': return "HH:mm";
	case 'T': return "HH:mm:ss";
	case 'u': return "yyyy'-'MM'-'dd HH':'mm':'ss'Z'";
	case 'U': return "dddd, dd MMMM yyyy HH:mm:ss";
	case 'y': case 'Y': return "yyyy MMMM";
	default: return NULL;
	}
}

/* Formats p with a .NET custom format (one character of it when single);
 * returns NULL or why the format is not valid. */
static const char *format_custom(dt_out_t *w, const dt_parts_t *p, const char *f, size_t flen, bool single)
{
	for (size_t i = 0; i < flen;) {
		char ch = f[i];
		size_t k = 1;
		if (strchr("yMdhHmsfFtzg", ch) && !single)
			while (i + k < flen && f[i + k] == ch)
				k++;
		switch (ch) {
		case 'y':
			if (k == 1)
				out_num(w, p->y % 100, 1);
			else if (k == 2)
				out_num(w, p->y % 100, 2);
			else
				out_num(w, p->y, (unsigned)k);
			break;
		case 'M':
			if (k <= 2)
				out_num(w, p->mo, (unsigned)k);
			else
				out_add(w, month_names[p->mo - 1], k == 3 ? 3 : strlen(month_names[p->mo - 1]));
			break;
		case 'd':
			if (k <= 2)
				out_num(w, p->d, (unsigned)k);
			else
				out_add(w, day_names[p->wday], k == 3 ? 3 : strlen(day_names[p->wday]));
			break;
		case 'h':
			out_num(w, p->h % 12 ? p->h % 12 : 12, k < 2 ? 1 : 2);
			break;
		case 'H':
			out_num(w, p->h, k < 2 ? 1 : 2);
			break;
		case 'm':
			out_num(w, p->mi, k < 2 ? 1 : 2);
			break;
		case 's':
			out_num(w, p->s, k < 2 ? 1 : 2);
			break;
		case 'f':
		case 'F': {
			if (k > 7)
				return "more than 7 fraction digits";
			int64_t v = (int64_t)p->us * 10; /* 100 ns units, as .NET has */
			for (size_t j = 7; j > k; j--)
				v /= 10;
			size_t digits = k;
			if (ch == 'F') {
				while (digits > 0 && v % 10 == 0) {
					v /= 10;
					digits--;
				}
				if (digits == 0) { /* no fraction: a '.' written just before goes too */
					if (w->o && w->k > 0 && w->o[w->k - 1] == '.')
						w->k--;
					break;
				}
			}
			out_num(w, v, (unsigned)digits);
			break;
		}
		case 't':
			out_add(w, p->h < 12 ? "AM" : "PM", k == 1 ? 1 : 2);
			break;
		case 'z':
			out_add(w, k == 1 ? "+0" : k == 2 ? "+00" : "+00:00", k == 1 ? 2 : k == 2 ? 3 : 6);
			break;
		case 'K':
			out_add(w, "Z", 1);
			break;
		case 'g':
			out_add(w, "A.D.", 4);
			break;
		case '\'':
		case '"': {
			size_t j = i + 1;
			while (j < flen && f[j] != ch) {
				if (f[j] == '\\' && j + 1 < flen)
					j++;
				out_add(w, &f[j], 1);
				j++;
			}
			if (j >= flen)
				return "a quoted text is not closed";
			k = j + 1 - i;
			break;
		}
		case '%':
			if (single || i + 1 >= flen || f[i + 1] == '%')
				return "'%' must be followed by one format character";
			{
				const char *why = format_custom(w, p, f + i + 1, 1, true);
				if (why)
					return why;
			}
			k = 2;
			break;
		case '\\':
			if (i + 1 >= flen)
				return "'\\' at the end escapes nothing";
			out_add(w, &f[i + 1], 1);
			k = 2;
			break;
		default:
			out_add(w, &f[i], 1);
			break;
		}
		i += k;
	}
	return NULL;
}

/* Formats us with a .NET standard (one character) or custom format into w
 * (room for format_room(flen) bytes); returns NULL or why the format is not valid. */
static const char *format_time_as(dt_out_t *w, int64_t us, const char *f, size_t flen)
{
	dt_parts_t p;
	split_time(us, &p);
	if (flen == 0)
		f = "G", flen = 1;
	if (flen == 1) {
		const char *std = standard_format(f[0]);
		if (std == NULL)
			return "a format of one character must be a standard format (d D f F g G M o R s t T u U Y)";
		return format_custom(w, &p, std, strlen(std), false);
	}
	return format_custom(w, &p, f, flen, false);
}

/* Bytes a format of flen bytes may produce at most: every run of k format
 * characters writes at most k + 8 bytes ("MMMM": September). */
static size_t format_room(size_t flen)
{
	return 9 * flen + 64;
}

/* ---- conversion ------------------------------------------------------------------------------ */

static void emit_copy(expr_ctx_t *c, const char *s, size_t len)
{
	char *o = expr_new_str(c, len);
	memcpy(o, s, len);
	expr_emit_new(c, o, len);
}

/* Entra: numbers in decimal, booleans True/False; Loom adds datetimes in ISO 8601. */
static int fn_cstr(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	char buf[64];
	switch (a[0].t) {
	case LOOM_EXPR_INT:
		emit_copy(c, buf, (size_t)snprintf(buf, sizeof buf, "%" PRId64, a[0].i));
		break;
	case LOOM_EXPR_BOOL:
		expr_emit_str(c, a[0].i ? "True" : "False", a[0].i ? 4 : 5);
		break;
	case LOOM_EXPR_TIME:
		emit_copy(c, buf, expr_format_time(buf, sizeof buf, a[0].i));
		break;
	default:
		expr_emit_str(c, a[0].s, a[0].len);
		break;
	}
	return 0;
}

/* Parses an integer: optional white space, sign, decimal digits or &H and
 * hexadecimal digits (Entra's notation), optional white space. */
static bool parse_int(const char *s, size_t len, int64_t *ret)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	while (len > i && isspace((unsigned char)s[len - 1]))
		len--;
	bool neg = false;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	unsigned base = 10;
	if (i + 1 < len && s[i] == '&' && (s[i + 1] == 'H' || s[i + 1] == 'h')) {
		base = 16;
		i += 2;
	}
	if (i == len)
		return false;
	uint64_t v = 0;
	for (; i < len; i++) {
		int ch = (unsigned char)s[i];
		unsigned d;
		if (isdigit(ch))
			d = (unsigned)(ch - '0');
		else if (base == 16 && isxdigit(ch))
			d = (unsigned)(tolower(ch) - 'a' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (v > (uint64_t)INT64_MAX + neg)
		return false;
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

static int fn_cnum(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t v = a[0].i;
	if (a[0].t != LOOM_EXPR_INT && !parse_int(a[0].s, a[0].len, &v)) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote(&b, &a[0]);
		expr_fail(c, "CNum cannot convert '%s' to an integer", loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	expr_emit_int(c, LOOM_EXPR_INT, v);
	return 0;
}

/* Entra: non-zero is True; strings True/False (any case) or a number. */
static int fn_cbool(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t v = a[0].i;
	if (a[0].t == LOOM_EXPR_STRING) {
		size_t b = skip_space(a[0].s, a[0].len);
		size_t e = b + end_of_text(a[0].s + b, a[0].len - b);
		if (e - b == 4 && strncasecmp(a[0].s + b, "true", 4) == 0) {
			v = 1;
		} else if (e - b == 5 && strncasecmp(a[0].s + b, "false", 5) == 0) {
			v = 0;
		} else if (!parse_int(a[0].s, a[0].len, &v)) {
			loom_buf_t q = LOOM_BUF_INIT;
			quote(&q, &a[0]);
			expr_fail(c, "CBool cannot convert '%s' to a boolean", loom_buf_cstr(&q));
			loom_buf_release(&q);
			return -1;
		}
	}
	expr_emit_int(c, LOOM_EXPR_BOOL, v != 0);
	return 0;
}

/* RFC 4514 escaping of one attribute value: , + " \ < > ; anywhere, a space
 * or # at the start, a space at the end, NUL as \00. The MIM habit of
 * passing a whole RDN ("CN=" + displayName) works too: when the text starts
 * with an attribute type and '=', the value after it is what starts. */
static int fn_escape_dn(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *s = a[0].s;
	size_t len = a[0].len, vs = 0, i = 0;
	if (len && isalpha((unsigned char)s[0])) {
		while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-'))
			i++;
	} else {
		while (i < len && (isdigit((unsigned char)s[i]) || (i > 0 && s[i] == '.')))
			i++;
	}
	if (i > 0 && i < len && s[i] == '=')
		vs = i + 1;
	char *o = expr_new_str(c, 3 * len);
	size_t k = vs;
	memcpy(o, s, vs);
	for (i = vs; i < len; i++) {
		char ch = s[i];
		if (ch == '\0') {
			memcpy(o + k, "\\00", 3);
			k += 3;
			continue;
		}
		if (strchr(",+\"\\<>;", ch) || (i == vs && (ch == ' ' || ch == '#')) || (i + 1 == len && ch == ' '))
			o[k++] = '\\';
		o[k++] = ch;
	}
	o[k] = '\0';
	expr_emit_new(c, o, k);
	return 0;
}

/* ---- Base64 ------------------------------------------------------------------------------------ */

enum { ENC_UNICODE, ENC_UTF8, ENC_ASCII };
static const char *const encodings[] = { "Unicode", "UTF8", "ASCII", NULL };

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(char *out, const unsigned char *in, size_t n)
{
	size_t k = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = b64chars[v >> 18];
		out[k++] = b64chars[(v >> 12) & 63];
		out[k++] = b64chars[(v >> 6) & 63];
		out[k++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[k++] = b64chars[v >> 18];
		out[k++] = b64chars[(v >> 12) & 63];
		out[k++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		out[k++] = '=';
	}
	return k;
}

/* Decodes standard Base64 (white space ignored, padding optional); out has
 * room for n bytes. Returns false on anything else. */
static bool b64_decode(const char *in, size_t n, unsigned char *out, size_t *ret_len)
{
	uint32_t acc = 0;
	size_t bits = 0, k = 0, pads = 0, digits = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (isspace(ch))
			continue;
		if (ch == '=') {
			pads++;
			continue;
		}
		const char *p = ch ? strchr(b64chars, ch) : NULL;
		if (p == NULL || pads)
			return false;
		acc = acc << 6 | (uint32_t)(p - b64chars);
		bits += 6;
		digits++;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	if (digits % 4 == 1 || pads > 2 || (pads && (digits + pads) % 4) || (acc & ((1u << bits) - 1)))
		return false;
	*ret_len = k;
	return true;
}

static int fn_to_base64(expr_ctx_t *c, const xval_t *a, size_t n)
{
	int64_t enc = n > 1 ? a[1].i : ENC_UNICODE;
	const unsigned char *bytes = (const unsigned char *)a[0].s;
	size_t len = a[0].len;
	if (a[0].t != LOOM_EXPR_BIN && enc == ENC_UNICODE) {
		unsigned char *u = expr_scratch(c, 2 * len + 1), *p = u;
		for (size_t i = 0; i < len;) {
			uint32_t cp = next_cp(a[0].s, len, &i);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				uint32_t hi = 0xd800 | cp >> 10, lo = 0xdc00 | (cp & 0x3ff);
				*p++ = (unsigned char)hi;
				*p++ = (unsigned char)(hi >> 8);
				*p++ = (unsigned char)lo;
				*p++ = (unsigned char)(lo >> 8);
			} else {
				*p++ = (unsigned char)cp;
				*p++ = (unsigned char)(cp >> 8);
			}
		}
		bytes = u;
		len = (size_t)(p - u);
	} else if (a[0].t != LOOM_EXPR_BIN && enc == ENC_ASCII) {
		for (size_t i = 0; i < len; i++) {
			if (bytes[i] >= 0x80) {
				loom_buf_t b = LOOM_BUF_INIT;
				quote(&b, &a[0]);
				expr_fail(c, "ConvertToBase64 cannot encode '%s' in ASCII", loom_buf_cstr(&b));
				loom_buf_release(&b);
				return -1;
			}
		}
	}
	size_t olen = (len + 2) / 3 * 4;
	char *o = expr_new_str(c, olen);
	b64_encode(o, bytes, len);
	expr_emit_new(c, o, olen);
	return 0;
}

static int bad_base64(expr_ctx_t *c, const xval_t *x, const char *why)
{
	loom_buf_t b = LOOM_BUF_INIT;
	quote(&b, x);
	expr_fail(c, "ConvertFromBase64 cannot decode '%s': %s", loom_buf_cstr(&b), why);
	loom_buf_release(&b);
	return -1;
}

static int fn_from_base64(expr_ctx_t *c, const xval_t *a, size_t n)
{
	int64_t enc = n > 1 ? a[1].i : ENC_UNICODE;
	unsigned char *raw = expr_scratch(c, a[0].len + 1);
	size_t len;
	if (!b64_decode(a[0].s, a[0].len, raw, &len))
		return bad_base64(c, &a[0], "not valid Base64");
	if (enc != ENC_UNICODE && memchr(raw, 0, len))
		return bad_base64(c, &a[0], "the text holds a NUL character");
	if (enc == ENC_UNICODE) {
		if (len % 2)
			return bad_base64(c, &a[0], "not valid UTF-16");
		char *o = expr_new_str(c, len / 2 * 3), *p = o;
		for (size_t i = 0; i < len; i += 2) {
			uint32_t u = raw[i] | (uint32_t)raw[i + 1] << 8;
			if (u >= 0xd800 && u <= 0xdbff && i + 3 < len) {
				uint32_t lo = raw[i + 2] | (uint32_t)raw[i + 3] << 8;
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
					i += 2;
				}
			}
			if (u >= 0xd800 && u <= 0xdfff)
				return bad_base64(c, &a[0], "not valid UTF-16");
			if (u == 0)
				return bad_base64(c, &a[0], "the text holds a NUL character");
			p += expr_utf8_put(p, u);
		}
		*p = '\0';
		expr_emit_new(c, o, (size_t)(p - o));
		return 0;
	}
	if (enc == ENC_UTF8 && !expr_utf8_valid((const char *)raw, len))
		return bad_base64(c, &a[0], "not valid UTF-8");
	if (enc == ENC_ASCII)
		for (size_t i = 0; i < len; i++)
			if (raw[i] >= 0x80)
				return bad_base64(c, &a[0], "not ASCII");
	emit_copy(c, (const char *)raw, len);
	return 0;
}

/* ---- multi-valued ------------------------------------------------------------------------------ */

/* Entra: the delimiter is one character; pieces may be empty; with a limit,
 * the last piece holds the rest. */
static int fn_split(expr_ctx_t *c, const xval_t *a, size_t n)
{
	if (expr_utf8_count(a[1].s, a[1].len) != 1) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote(&b, &a[1]);
		expr_fail_arg(c, 1, "the delimiter of Split must be one character, got '%s'", loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	int64_t limit = n > 2 ? a[2].i : INT64_MAX;
	if (limit < 1)
		return expr_fail_arg(c, 2, "the limit of Split must be at least 1, got %" PRId64, limit);
	size_t from = 0, p;
	int64_t pieces = 1;
	while (pieces < limit && (p = find(a[0].s, a[0].len, from, a[1].s, a[1].len)) != SIZE_MAX) {
		expr_emit_str(c, a[0].s + from, p - from);
		from = p + a[1].len;
		pieces++;
	}
	expr_emit_str(c, a[0].s + from, a[0].len - from);
	return 0;
}

/* Entra: the delimiter defaults to a space; a null delimiter joins without one. */
static int fn_join(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	const char *d = " ";
	size_t dl = 1;
	if (a[0].n == 0)
		return 0;
	if (n > 1) {
		if (a[1].n > 1)
			return expr_fail_arg(c, 1, "the delimiter of Join has %zu values, expected one", a[1].n);
		d = a[1].n ? a[1].v[0].s : "";
		dl = a[1].n ? a[1].v[0].len : 0;
	}
	if (a[0].n == 1) {
		expr_emit_str(c, a[0].v[0].s, a[0].v[0].len);
		return 0;
	}
	size_t total = (a[0].n - 1) * dl;
	for (size_t i = 0; i < a[0].n; i++)
		total += a[0].v[i].len;
	char *o = expr_new_str(c, total), *p = o;
	for (size_t i = 0; i < a[0].n; i++) {
		if (i > 0 && dl) {
			memcpy(p, d, dl);
			p += dl;
		}
		if (a[0].v[i].len)
			memcpy(p, a[0].v[i].s, a[0].v[i].len);
		p += a[0].v[i].len;
	}
	expr_emit_new(c, o, total);
	return 0;
}

static int fn_count(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_INT, (int64_t)a[0].n);
	return 0;
}

/* Entra: 1-based; an index out of range is an error for Item, null for ItemOrNull. */
static int item(expr_ctx_t *c, const xspan_t *a, bool or_null)
{
	const char *name = expr_fn_name(c);
	if (a[1].n == 0)
		return 0;
	if (a[1].n > 1)
		return expr_fail_arg(c, 1, "the index of %s has %zu values, expected one", name, a[1].n);
	int64_t k = a[1].v[0].i;
	if (k < 1 || (uint64_t)k > a[0].n) {
		if (or_null)
			return 0;
		if (a[0].n == 0)
			return expr_fail_arg(c, 1, "%s index %" PRId64 " is out of range (the list is empty)", name, k);
		return expr_fail_arg(c, 1, "%s index %" PRId64 " is out of range (1 to %zu)", name, k, a[0].n);
	}
	expr_emit(c, &a[0].v[k - 1]);
	return 0;
}

static int fn_item(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return item(c, a, false);
}

static int fn_itemornull(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return item(c, a, true);
}

static bool same_value(const xval_t *x, const xval_t *y)
{
	if (x->t != y->t)
		return false;
	if (x->t == LOOM_EXPR_STRING || x->t == LOOM_EXPR_REF || x->t == LOOM_EXPR_BIN)
		return x->len == y->len && (x->len == 0 || memcmp(x->s, y->s, x->len) == 0);
	return x->i == y->i;
}

static int order_values(const void *pa, const void *pb)
{
	const xval_t *x = *(const xval_t *const *)pa, *y = *(const xval_t *const *)pb;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->t == LOOM_EXPR_STRING || x->t == LOOM_EXPR_REF || x->t == LOOM_EXPR_BIN) {
		size_t m = x->len < y->len ? x->len : y->len;
		int r = m ? memcmp(x->s, y->s, m) : 0;
		if (r || x->len != y->len)
			return r ? r : x->len < y->len ? -1 : 1;
	} else if (x->i != y->i) {
		return x->i < y->i ? -1 : 1;
	}
	return x < y ? -1 : x > y; /* equal values: first occurrence first */
}

/* Keeps the first of equal values (exact comparison), in their order. */
static int fn_remove_duplicates(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	const xspan_t *l = &a[0];
	if (l->n <= 16) {
		for (size_t i = 0; i < l->n; i++) {
			bool dup = false;
			for (size_t j = 0; j < i && !dup; j++)
				dup = same_value(&l->v[i], &l->v[j]);
			if (!dup)
				expr_emit(c, &l->v[i]);
		}
		return 0;
	}
	const xval_t **sorted = expr_scratch(c, l->n * sizeof *sorted);
	bool *dup = expr_scratch(c, l->n * sizeof *dup);
	for (size_t i = 0; i < l->n; i++) {
		sorted[i] = &l->v[i];
		dup[i] = false;
	}
	qsort(sorted, l->n, sizeof *sorted, order_values);
	for (size_t i = 1; i < l->n; i++)
		if (same_value(sorted[i], sorted[i - 1]))
			dup[sorted[i] - l->v] = true;
	for (size_t i = 0; i < l->n; i++)
		if (!dup[i])
			expr_emit(c, &l->v[i]);
	return 0;
}

/* ---- logic ------------------------------------------------------------------------------------ */

/* Not null and not only empty strings (Entra's IsPresent). */
static bool present(const xspan_t *a)
{
	for (size_t i = 0; i < a->n; i++) {
		const xval_t *v = &a->v[i];
		if (!((v->t == LOOM_EXPR_STRING || v->t == LOOM_EXPR_REF || v->t == LOOM_EXPR_BIN) && v->len == 0))
			return true;
	}
	return false;
}

static int fn_ispresent(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_BOOL, present(&a[0]));
	return 0;
}

static int fn_isnull(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_BOOL, a[0].n == 0);
	return 0;
}

static int fn_isnullorempty(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_BOOL, !present(&a[0]));
	return 0;
}

static int cannot_compare(expr_ctx_t *c, const char *name, unsigned t1, unsigned t2)
{
	return expr_fail_arg(c, 1, "%s cannot compare %s with %s", name, expr_type_name(t1), expr_type_name(t2));
}

/* Whether some value of a[0] equals some value of a[1] (LDAP filter
 * semantics for multi-valued attributes; null equals nothing). */
static int equal_any(expr_ctx_t *c, const char *name, const xspan_t *a, bool *ret)
{
	*ret = false;
	for (size_t i = 0; i < a[0].n; i++) {
		for (size_t j = 0; j < a[1].n; j++) {
			const xval_t *x = &a[0].v[i], *y = &a[1].v[j];
			if (!expr_comparable(x->t, y->t))
				return cannot_compare(c, name, x->t, y->t);
			bool eq = x->t == LOOM_EXPR_STRING || x->t == LOOM_EXPR_REF || x->t == LOOM_EXPR_BIN
			    ? x->len == y->len && (x->len == 0 || memcmp(x->s, y->s, x->len) == 0)
			    : x->i == y->i;
			if (eq) {
				*ret = true;
				return 0;
			}
		}
	}
	return 0;
}

static int fn_eq(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	bool r;
	if (equal_any(c, "Eq", a, &r) < 0)
		return -1;
	expr_emit_int(c, LOOM_EXPR_BOOL, r);
	return 0;
}

static int fn_noteq(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	bool r;
	if (equal_any(c, "NotEquals", a, &r) < 0)
		return -1;
	expr_emit_int(c, LOOM_EXPR_BOOL, !r);
	return 0;
}

/* Whether some pair of values compares as asked (sign: -1 less, 1 greater;
 * or_equal: equality counts). Null compares as nothing: false. */
static int order_any(expr_ctx_t *c, const char *name, const xspan_t *a, int sign, bool or_equal)
{
	bool r = false;
	for (size_t i = 0; i < a[0].n && !r; i++) {
		for (size_t j = 0; j < a[1].n && !r; j++) {
			const xval_t *x = &a[0].v[i], *y = &a[1].v[j];
			if (x->t != y->t)
				return cannot_compare(c, name, x->t, y->t);
			int cmp = x->i < y->i ? -1 : x->i > y->i;
			r = cmp == sign || (or_equal && cmp == 0);
		}
	}
	expr_emit_int(c, LOOM_EXPR_BOOL, r);
	return 0;
}

static int fn_lt(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return order_any(c, "LessThan", a, -1, false);
}

static int fn_gt(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return order_any(c, "GreaterThan", a, 1, false);
}

static int fn_le(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return order_any(c, "LessThanOrEquals", a, -1, true);
}

static int fn_ge(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return order_any(c, "GreaterThanOrEquals", a, 1, true);
}

/* The condition is one boolean; a null condition is false. Only the branch
 * taken is evaluated. */
static int fn_iif(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	xspan_t v;
	if (expr_eval_arg(c, call, 0, &v) < 0)
		return -1;
	if (v.n > 1)
		return expr_fail_arg(c, 0, "the condition of IIF has %zu values, expected one", v.n);
	bool yes = v.n == 1 && v.v[0].i != 0;
	expr_truncate(c, mark);
	if (expr_eval_arg(c, call, yes ? 1 : 2, &v) < 0)
		return -1;
	if (call->mode & MODE_REF_TO_STR)
		expr_refs_to_strings(c, mark);
	return 0;
}

/* The first argument that is present (not null, not only empty strings),
 * else the last one; arguments after the one chosen are not evaluated. */
static int fn_coalesce(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	for (size_t i = 0; i < call->nargs; i++) {
		xspan_t v;
		if (expr_eval_arg(c, call, i, &v) < 0)
			return -1;
		if (i + 1 == call->nargs || present(&v))
			break;
		expr_truncate(c, mark);
	}
	if (call->mode & MODE_REF_TO_STR)
		expr_refs_to_strings(c, mark);
	return 0;
}

static int fn_null(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)c;
	(void)a;
	(void)n;
	return 0;
}

static int fn_authoritative_null(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)a;
	(void)n;
	expr_set_authoritative_null(c);
	return 0;
}

static int fn_ignore_flow(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)a;
	(void)n;
	expr_set_ignore_flow(c);
	return 0;
}

static int fn_error(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	if (a[0].n == 0)
		return expr_fail(c, "Error called with a null message");
	return expr_fail(c, "%.*s", (int)a[0].v[0].len, a[0].v[0].s);
}

/* ---- dates and times ------------------------------------------------------------------------- */

static int bad_conversion(expr_ctx_t *c, const xval_t *x, const char *to)
{
	loom_buf_t b = LOOM_BUF_INIT;
	quote(&b, x);
	expr_fail(c, "%s cannot convert '%s' to %s", expr_fn_name(c), loom_buf_cstr(&b), to);
	loom_buf_release(&b);
	return -1;
}

/* The datetime of a string (parsed as CDate does) or of a datetime. */
static int time_of(expr_ctx_t *c, const xval_t *x, int64_t *ret)
{
	if (x->t == LOOM_EXPR_TIME) {
		*ret = x->i;
		return 0;
	}
	if (!expr_parse_time(x->s, x->len, ret))
		return bad_conversion(c, x, "a datetime");
	return 0;
}

static int fn_cdate(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t us;
	if (time_of(c, &a[0], &us) < 0)
		return -1;
	expr_emit_int(c, LOOM_EXPR_TIME, us);
	return 0;
}

static int out_of_range(expr_ctx_t *c)
{
	return expr_fail(c, "the result of %s is out of range (years 1 to 9999)", expr_fn_name(c));
}

/* DateTimeFormat (MIM: of a datetime written as a string) and FormatDateTime
 * (Entra: of a datetime): .NET custom or standard formats, invariant culture. */
static int fn_format_time(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t us;
	if (time_of(c, &a[0], &us) < 0)
		return -1;
	if (us < TIME_MIN || us > TIME_MAX)
		return expr_fail_arg(c, 0, "%s cannot format a datetime outside the years 1 to 9999", expr_fn_name(c));
	if (a[1].len > PAD_MAX)
		return expr_fail_arg(c, 1, "the format of %s is too long (%zu bytes; the limit is %d)", expr_fn_name(c),
		    a[1].len, PAD_MAX);
	dt_out_t w = { .o = expr_new_str(c, format_room(a[1].len)) };
	const char *why = format_time_as(&w, us, a[1].s, a[1].len);
	if (why) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote(&b, &a[1]);
		expr_fail_arg(c, 1, "%s cannot use the format '%s': %s", expr_fn_name(c), loom_buf_cstr(&b), why);
		loom_buf_release(&b);
		return -1;
	}
	w.o[w.k] = '\0';
	expr_emit_new(c, w.o, w.k);
	return 0;
}

enum { IV_YEAR, IV_QUARTER, IV_MONTH, IV_DAY_OF_YEAR, IV_DAY, IV_WEEKDAY, IV_WEEK, IV_HOUR, IV_MINUTE, IV_SECOND };
static const char *const intervals[] = { "yyyy", "q", "m", "y", "d", "w", "ww", "h", "n", "s", NULL };

/* VB's DateAdd: months, quarters and years keep the day, or take the last
 * day of a shorter month; the other intervals are fixed lengths of time. */
static int fn_dateadd(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	static const int64_t unit[] = {
		[IV_DAY_OF_YEAR] = US_DAY, [IV_DAY] = US_DAY, [IV_WEEKDAY] = US_DAY, [IV_WEEK] = 7 * US_DAY,
		[IV_HOUR] = 3600 * US_SEC, [IV_MINUTE] = 60 * US_SEC, [IV_SECOND] = US_SEC,
	};
	int64_t iv = a[0].i, k = a[1].i, t = a[2].i, r;
	if (iv == IV_YEAR || iv == IV_QUARTER || iv == IV_MONTH) {
		int64_t months, total;
		if (__builtin_mul_overflow(k, iv == IV_YEAR ? 12 : iv == IV_QUARTER ? 3 : 1, &months))
			return out_of_range(c);
		dt_parts_t p;
		split_time(t, &p);
		if (__builtin_add_overflow(p.y * 12 + (int64_t)p.mo - 1, months, &total))
			return out_of_range(c);
		int64_t y = total >= 0 ? total / 12 : (total - 11) / 12;
		unsigned m = (unsigned)(total - y * 12) + 1;
		if (y < 1 || y > 9999)
			return out_of_range(c);
		unsigned d = p.d, last = days_in_month(y, m);
		r = days_from_civil(y, m, d < last ? d : last) * US_DAY + p.rem;
	} else if (__builtin_mul_overflow(k, unit[iv], &r) || __builtin_add_overflow(t, r, &r)) {
		return out_of_range(c);
	}
	if (r < TIME_MIN || r > TIME_MAX)
		return out_of_range(c);
	expr_emit_int(c, LOOM_EXPR_TIME, r);
	return 0;
}

/* Entra: an Active Directory FILETIME (100 ns since 1601-01-01 UTC). */
static int fn_datefromnum(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t v = a[0].i, us = v / 10 + FILETIME_EPOCH;
	if (v < 0 || us > TIME_MAX)
		return expr_fail(c, "DateFromNum cannot convert %" PRId64 " to a datetime (it must be 0 to %" PRId64 ")", v,
		    (TIME_MAX - FILETIME_EPOCH) * 10 + 9);
	expr_emit_int(c, LOOM_EXPR_TIME, us);
	return 0;
}

static int fn_numfromdate(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t r;
	if (a[0].i < FILETIME_EPOCH || __builtin_sub_overflow(a[0].i, FILETIME_EPOCH, &r)
	    || __builtin_mul_overflow(r, 10, &r)) {
		char buf[EXPR_TIME_LEN];
		expr_format_time(buf, sizeof buf, a[0].i);
		return expr_fail(c, "NumFromDate cannot convert %s to a number (before 1601 or after 30827)", buf);
	}
	expr_emit_int(c, LOOM_EXPR_INT, r);
	return 0;
}

static int fn_now(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)a;
	(void)n;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	expr_emit_int(c, LOOM_EXPR_TIME, (int64_t)ts.tv_sec * US_SEC + ts.tv_nsec / 1000);
	return 0;
}

/* ---- numbers, bits and chance ------------------------------------------------------------------ */

static int fn_bitand(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_INT, a[0].i & a[1].i);
	return 0;
}

static int fn_bitor(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_INT, a[0].i | a[1].i);
	return 0;
}

/* Every bit of flag is set in value (flag is a mask, not a bit number). */
static int fn_isbitset(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	expr_emit_int(c, LOOM_EXPR_BOOL, (a[0].i & a[1].i) == a[1].i);
	return 0;
}

/* Random bytes from libsodium (the kernel's source). sodium_init() is
 * idempotent and thread-safe; a machine with no randomness cannot run Loom. */
static void random_bytes(void *buf, size_t n)
{
	static _Atomic int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	randombytes_buf(buf, n);
}

/* MIM: a number from start to end, both included, every one as likely. */
static int fn_randomnum(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t lo = a[0].i, hi = a[1].i;
	if (lo > hi)
		return expr_fail(c, "RandomNum cannot pick a number from %" PRId64 " to %" PRId64
		    " (the start is greater than the end)", lo, hi);
	uint64_t span = (uint64_t)hi - (uint64_t)lo + 1, r; /* 0: the whole range */
	uint64_t reject = span ? (0 - span) % span : 0; /* 2^64 mod span: draws below it would bias */
	do
		random_bytes(&r, sizeof r);
	while (r < reject);
	expr_emit_int(c, LOOM_EXPR_INT, (int64_t)((uint64_t)lo + (span ? r % span : r)));
	return 0;
}

/* ---- GUIDs, SIDs and hexadecimal ---------------------------------------------------------------- */

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A GUID written as .NET reads it (32 digits, with hyphens 8-4-4-4-12, in
 * braces or parentheses), to its 16 bytes in .NET's order (Guid.ToByteArray,
 * the order of Active Directory's objectGUID): the first three groups
 * little-endian. */
static bool parse_guid(const char *s, size_t len, unsigned char out[16])
{
	size_t b = 0, e = len;
	while (b < e && isspace((unsigned char)s[b]))
		b++;
	while (e > b && isspace((unsigned char)s[e - 1]))
		e--;
	if (e - b >= 2 && ((s[b] == '{' && s[e - 1] == '}') || (s[b] == '(' && s[e - 1] == ')'))) {
		b++;
		e--;
		if (e - b != 36)
			return false;
	}
	bool hyphens = e - b == 36;
	if (!hyphens && e - b != 32)
		return false;
	unsigned char raw[16];
	size_t k = 0;
	for (size_t i = b; i < e;) {
		size_t at = i - b;
		if (hyphens && (at == 8 || at == 13 || at == 18 || at == 23)) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0 || (hyphens && (at == 7 || at == 12 || at == 17 || at == 22)))
			return false;
		raw[k++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	static const unsigned char order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (size_t i = 0; i < 16; i++)
		out[i] = raw[order[i]];
	return true;
}

static void emit_bin(expr_ctx_t *c, const char *s, size_t len)
{
	xval_t v = { .s = s, .len = len, .t = LOOM_EXPR_BIN, .nul = true };
	expr_emit(c, &v);
}

/* Binary in a message: hex, at most 32 bytes. */
static void quote_bin(loom_buf_t *b, const xval_t *x)
{
	loom_buf_add_hex(b, x->s, x->len < 32 ? x->len : 32);
	if (x->len > 32)
		loom_buf_printf(b, "...(%zu bytes)", x->len);
}

/* CGuid and ConvertStringToGuid: a GUID string to its 16 bytes; 16 bytes
 * already are a GUID. */
static int fn_cguid(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	if (a[0].t == LOOM_EXPR_BIN) {
		if (a[0].len != 16) {
			loom_buf_t b = LOOM_BUF_INIT;
			quote_bin(&b, &a[0]);
			expr_fail(c, "%s cannot convert binary %s to a GUID (%zu bytes, not 16)", expr_fn_name(c),
			    loom_buf_cstr(&b), a[0].len);
			loom_buf_release(&b);
			return -1;
		}
		expr_emit(c, &a[0]);
		return 0;
	}
	char *o = expr_new_str(c, 16);
	if (!parse_guid(a[0].s, a[0].len, (unsigned char *)o))
		return bad_conversion(c, &a[0], "a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
	emit_bin(c, o, 16);
	return 0;
}

/* Entra: 16 bytes to the GUID's string, lower case (.NET's Guid.ToString()). */
static int fn_stringfromguid(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const unsigned char *g = (const unsigned char *)a[0].s;
	if (a[0].len != 16) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote_bin(&b, &a[0]);
		expr_fail(c, "%s cannot read binary %s as a GUID (%zu bytes, not 16)", expr_fn_name(c), loom_buf_cstr(&b),
		    a[0].len);
		loom_buf_release(&b);
		return -1;
	}
	char *o = expr_new_str(c, 36);
	snprintf(o, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1], g[0],
	    g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
	expr_emit_new(c, o, 36);
	return 0;
}

/* Entra: a new random (version 4) GUID, as a string. */
static int fn_guid(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)a;
	(void)n;
	unsigned char g[16];
	random_bytes(g, sizeof g);
	g[7] = (unsigned char)((g[7] & 0x0f) | 0x40); /* version 4, in .NET's byte order */
	g[8] = (unsigned char)((g[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	char *o = expr_new_str(c, 36);
	snprintf(o, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1], g[0],
	    g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
	expr_emit_new(c, o, 36);
	return 0;
}

/* A binary SID (revision 1, sub-authority count, 48-bit big-endian
 * authority, 32-bit little-endian sub-authorities) as S-1-5-21-...; an
 * authority of 2^32 or more in hexadecimal, as Windows writes it. */
static int fn_sidtostring(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const unsigned char *b = (const unsigned char *)a[0].s;
	size_t len = a[0].len;
	if (len < 8 || b[0] != 1 || b[1] > 15 || len != 8 + 4 * (size_t)b[1]) {
		loom_buf_t q = LOOM_BUF_INIT;
		quote_bin(&q, &a[0]);
		expr_fail(c, "%s cannot read binary %s as a SID", expr_fn_name(c), loom_buf_cstr(&q));
		loom_buf_release(&q);
		return -1;
	}
	uint64_t auth = 0;
	for (size_t i = 2; i < 8; i++)
		auth = auth << 8 | b[i];
	char *o = expr_new_str(c, 24 + 11 * b[1]), *p = o;
	p += auth >> 32 ? sprintf(p, "S-1-0x%012" PRIx64, auth) : sprintf(p, "S-1-%" PRIu64, auth);
	for (size_t i = 0; i < b[1]; i++) {
		const unsigned char *s = b + 8 + 4 * i;
		p += sprintf(p, "-%" PRIu32, (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);
	}
	expr_emit_new(c, o, (size_t)(p - o));
	return 0;
}

/* Entra: the UTF-8 bytes of a string in upper-case hexadecimal. */
static int fn_to_utf8hex(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	static const char digits[] = "0123456789ABCDEF";
	char *o = expr_new_str(c, 2 * a[0].len);
	for (size_t i = 0; i < a[0].len; i++) {
		unsigned char ch = (unsigned char)a[0].s[i];
		o[2 * i] = digits[ch >> 4];
		o[2 * i + 1] = digits[ch & 15];
	}
	expr_emit_new(c, o, 2 * a[0].len);
	return 0;
}

static int fn_from_utf8hex(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *why = NULL;
	size_t len = a[0].len / 2;
	char *o = expr_new_str(c, len);
	if (a[0].len % 2)
		why = "an odd number of digits";
	for (size_t i = 0; i < len && !why; i++) {
		int hi = hex_digit(a[0].s[2 * i]), lo = hex_digit(a[0].s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			why = "not hexadecimal";
		else if ((o[i] = (char)(hi << 4 | lo)) == '\0')
			why = "the text holds a NUL character";
	}
	if (why == NULL && !expr_utf8_valid(o, len))
		why = "not valid UTF-8";
	if (why) {
		loom_buf_t b = LOOM_BUF_INIT;
		quote(&b, &a[0]);
		expr_fail(c, "ConvertFromUTF8Hex cannot decode '%s': %s", loom_buf_cstr(&b), why);
		loom_buf_release(&b);
		return -1;
	}
	expr_emit_new(c, o, len);
	return 0;
}

/* Entra: a string (a DN) as a reference. */
static int fn_cref(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	xval_t v = a[0];
	v.t = LOOM_EXPR_REF;
	expr_emit(c, &v);
	return 0;
}

/* ---- searching text ------------------------------------------------------------------------------ */

/* s with every character lower-cased where that keeps its length (so byte
 * offsets stay the same), in scratch memory: for case-insensitive search. */
static const char *fold(expr_ctx_t *c, const char *s, size_t len)
{
	char *o = expr_scratch(c, len + 1);
	memcpy(o, s, len);
	for (size_t i = 0; i < len;) {
		size_t at = i;
		uint32_t cp = next_cp(s, len, &i);
		put_mapped(o, at, i, cp, cp_lower(cp));
	}
	return o;
}

/* Byte offset of the last occurrence of needle lying within hay[0..end), or SIZE_MAX. */
static size_t find_last(const char *hay, size_t end, const char *needle, size_t nlen)
{
	if (nlen == 0 || end < nlen)
		return SIZE_MAX;
	for (size_t i = end - nlen + 1; i-- > 0;)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
			return i;
	return SIZE_MAX;
}

enum { CMP_BINARY, CMP_TEXT };
static const char *const compares[] = { "vbBinaryCompare", "vbTextCompare", NULL };

/* VB's InStr: the position (in characters, from 1) of the first occurrence
 * at or after start, 0 when there is none. */
static int fn_instr(expr_ctx_t *c, const xval_t *a, size_t n)
{
	const char *s = a[0].s, *m = a[1].s;
	size_t sl = a[0].len, ml = a[1].len;
	int64_t start = n > 2 ? a[2].i : 1;
	if (start < 1)
		return expr_fail_arg(c, 2, "the start of InStr must be at least 1, got %" PRId64, start);
	size_t chars = expr_utf8_count(s, sl);
	int64_t r;
	if (sl == 0 || (uint64_t)start - 1 > chars) {
		r = 0;
	} else if (ml == 0) {
		r = start;
	} else {
		if (n > 3 && a[3].i == CMP_TEXT) {
			s = fold(c, s, sl);
			m = fold(c, m, ml);
		}
		size_t p = find(s, sl, expr_utf8_skip(s, sl, (size_t)start - 1), m, ml);
		r = p == SIZE_MAX ? 0 : (int64_t)expr_utf8_count(s, p) + 1;
	}
	expr_emit_int(c, LOOM_EXPR_INT, r);
	return 0;
}

/* VB's InStrRev: the position of the last occurrence ending at or before
 * start (-1: the end), 0 when there is none. */
static int fn_instrrev(expr_ctx_t *c, const xval_t *a, size_t n)
{
	const char *s = a[0].s, *m = a[1].s;
	size_t sl = a[0].len, ml = a[1].len;
	int64_t start = n > 2 ? a[2].i : -1;
	if (start == 0 || start < -1)
		return expr_fail_arg(c, 2, "the start of InStrRev must be -1 or at least 1, got %" PRId64, start);
	size_t chars = expr_utf8_count(s, sl);
	if (start == -1)
		start = (int64_t)chars;
	int64_t r;
	if (sl == 0 || (uint64_t)start > chars) {
		r = 0;
	} else if (ml == 0) {
		r = start;
	} else {
		if (n > 3 && a[3].i == CMP_TEXT) {
			s = fold(c, s, sl);
			m = fold(c, m, ml);
		}
		size_t p = find_last(s, expr_utf8_skip(s, sl, (size_t)start), m, ml);
		r = p == SIZE_MAX ? 0 : (int64_t)expr_utf8_count(s, p) + 1;
	}
	expr_emit_int(c, LOOM_EXPR_INT, r);
	return 0;
}

enum { CASE_SENSITIVE, CASE_INSENSITIVE };
static const char *const casetypes[] = { "CaseSensitive", "CaseInsensitive", NULL };

/* Entra: the position (from 1) of the first value that holds the search
 * string (references: that equals it), 0 when none does. */
static int fn_contains(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	if (a[1].n == 0)
		return 0;
	if (a[1].n > 1)
		return expr_fail_arg(c, 1, "the search string of Contains has %zu values, expected one", a[1].n);
	bool ci = n > 2 && a[2].n == 1 && a[2].v[0].i == CASE_INSENSITIVE;
	const char *m = a[1].v[0].s;
	size_t ml = a[1].v[0].len;
	if (ci)
		m = fold(c, m, ml);
	int64_t r = 0;
	for (size_t i = 0; i < a[0].n && r == 0; i++) {
		const xval_t *v = &a[0].v[i];
		const char *s = ci ? fold(c, v->s, v->len) : v->s;
		bool hit = v->t == LOOM_EXPR_REF ? v->len == ml && memcmp(s, m, ml) == 0
		    : ml == 0 || find(s, v->len, 0, m, ml) != SIZE_MAX;
		if (hit)
			r = (int64_t)i + 1;
	}
	expr_emit_int(c, LOOM_EXPR_INT, r);
	return 0;
}

/* ---- ReplaceChars ------------------------------------------------------------------------------ */

/* One replacement of a ReplaceChars pattern. */
typedef struct rc_pair {
	uint32_t from;        /* the character replaced */
	size_t to, to_end;    /* what replaces it: pattern bytes [to, to_end), white space left out */
} rc_pair_t;

/* Parses "{source}:{target},..." (white space ignored); stores up to cap
 * pairs in pairs (may be NULL to only check). Returns the pair count, or -1
 * with *ret_bad / *ret_bad_len locating the bad item and *ret_why saying why. */
static long parse_rc_pattern(const char *p, size_t len, rc_pair_t *pairs, const char **ret_why, size_t *ret_bad,
    size_t *ret_bad_len)
{
	long n = 0;
	for (size_t i = 0; i <= len;) {
		size_t item = i, end = i;
		while (end < len && p[end] != ',')
			end++;
		/* the item is p[item, end): source, ':', target */
		uint32_t from = 0;
		size_t chars = 0, colon = SIZE_MAX;
		for (size_t j = item; j < end && colon == SIZE_MAX;) {
			size_t at = j;
			uint32_t cp = next_cp(p, end, &j);
			if (is_space(cp))
				continue;
			if (cp == ':')
				colon = at;
			else if (chars++ == 0)
				from = cp;
		}
		bool blank = chars == 0 && colon == SIZE_MAX;
		const char *why = NULL;
		if (!blank && colon == SIZE_MAX)
			why = "expected SOURCE:TARGET";
		else if (!blank && chars != 1)
			why = "the source must be one character";
		else if (!blank && memchr(p + colon + 1, ':', end - colon - 1))
			why = "a target cannot hold ':'";
		if (why) {
			*ret_why = why;
			*ret_bad = item;
			*ret_bad_len = end - item;
			return -1;
		}
		if (!blank) {
			if (pairs)
				pairs[n] = (rc_pair_t){ .from = from, .to = colon + 1, .to_end = end };
			n++;
		}
		i = end + 1;
	}
	return n;
}

static int bad_rc_pattern(expr_ctx_t *c, expr_cc_t *cc, size_t off, const char *p, size_t bad, size_t bad_len,
    const char *why)
{
	loom_buf_t b = LOOM_BUF_INIT;
	expr_add_quoted(&b, p + bad, bad_len);
	if (cc)
		expr_cc_fail(cc, off, "the pattern of ReplaceChars is not valid at '%s': %s", loom_buf_cstr(&b), why);
	else
		expr_fail_arg(c, 1, "the pattern of ReplaceChars is not valid at '%s': %s", loom_buf_cstr(&b), why);
	loom_buf_release(&b);
	return -1;
}

/* Appends the target of a pair, white space left out; returns its length. */
static size_t rc_target(char *o, const char *p, const rc_pair_t *r)
{
	size_t k = 0;
	for (size_t j = r->to; j < r->to_end;) {
		size_t at = j;
		if (is_space(next_cp(p, r->to_end, &j)))
			continue;
		if (o)
			memcpy(o + k, p + at, j - at);
		k += j - at;
	}
	return k;
}

/* Entra: every character that has a replacement in the pattern is replaced
 * (the first that names it), case-sensitively. */
static int fn_replacechars(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *p = a[1].s, *why;
	size_t bad, bad_len;
	long np = parse_rc_pattern(p, a[1].len, NULL, &why, &bad, &bad_len);
	if (np < 0)
		return bad_rc_pattern(c, NULL, 0, p, bad, bad_len, why);
	rc_pair_t *pairs = expr_scratch(c, ((size_t)np + 1) * sizeof *pairs);
	parse_rc_pattern(p, a[1].len, pairs, &why, &bad, &bad_len);
	const char *s = a[0].s;
	size_t len = a[0].len, total = 0;
	for (int pass = 0; pass < 2; pass++) {
		char *o = pass ? expr_new_str(c, total) : NULL;
		size_t k = 0;
		for (size_t i = 0; i < len;) {
			size_t at = i;
			uint32_t cp = next_cp(s, len, &i);
			const rc_pair_t *r = NULL;
			for (long j = 0; j < np && r == NULL; j++)
				if (pairs[j].from == cp)
					r = &pairs[j];
			if (r) {
				k += rc_target(o ? o + k : NULL, p, r);
			} else {
				if (o)
					memcpy(o + k, s + at, i - at);
				k += i - at;
			}
		}
		if (pass == 0) {
			total = k;
		} else {
			expr_emit_new(c, o, total);
		}
	}
	return 0;
}

/* ---- distinguished names ------------------------------------------------------------------------ */

/* The next RDN of dn from *pos: [*ret_b, *ret_e), split at an unescaped ','
 * or ';'; false at the end. */
static bool next_rdn(const char *s, size_t len, size_t *pos, size_t *ret_b, size_t *ret_e)
{
	size_t i = *pos;
	if (i > len)
		return false;
	*ret_b = i;
	while (i < len && s[i] != ',' && s[i] != ';')
		i += s[i] == '\\' && i + 1 < len ? 2 : 1;
	*ret_e = i;
	*pos = i + 1;
	return true;
}

/* The type and the value (of the first attribute of a multi-valued RDN)
 * of rdn s[b, e), blanks around them left out; false without '='. */
static bool split_rdn(const char *s, size_t b, size_t e, size_t *ret_tb, size_t *ret_te, size_t *ret_vb,
    size_t *ret_ve)
{
	size_t eq = b;
	while (eq < e && s[eq] != '=')
		eq += s[eq] == '\\' && eq + 1 < e ? 2 : 1;
	if (eq >= e)
		return false;
	size_t tb = b, te = eq, vb = eq + 1, ve = vb;
	while (tb < te && s[tb] == ' ')
		tb++;
	while (te > tb && s[te - 1] == ' ')
		te--;
	while (ve < e && s[ve] != '+')
		ve += s[ve] == '\\' && ve + 1 < e ? 2 : 1;
	if (ve > e)
		ve = e;
	while (vb < ve && s[vb] == ' ')
		vb++;
	while (ve > vb && s[ve - 1] == ' ' && !(ve >= vb + 2 && s[ve - 2] == '\\'))
		ve--;
	if (te == tb)
		return false;
	*ret_tb = tb;
	*ret_te = te;
	*ret_vb = vb;
	*ret_ve = ve;
	return true;
}

static bool is_dc(const char *s, size_t tb, size_t te)
{
	return te - tb == 2 && strncasecmp(s + tb, "dc", 2) == 0;
}

/* The k-th RDN value (from 1; from the right when rev; dc= left out when
 * skip_dc), unescaped; null when there are fewer. */
static int dn_component(expr_ctx_t *c, const xval_t *a, int64_t k, bool rev, bool skip_dc)
{
	const char *s = a[0].s;
	size_t len = a[0].len, pos = 0, b, e, tb, te, vb, ve, total = 0;
	bool blank = true;
	for (size_t i = 0; i < len && blank; i++)
		blank = s[i] == ' ';
	if (blank)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t count = 0;
		pos = 0;
		while (next_rdn(s, len, &pos, &b, &e)) {
			if (!split_rdn(s, b, e, &tb, &te, &vb, &ve)) {
				loom_buf_t q = LOOM_BUF_INIT;
				quote(&q, &a[0]);
				expr_fail(c, "%s cannot read '%s' as a DN", expr_fn_name(c), loom_buf_cstr(&q));
				loom_buf_release(&q);
				return -1;
			}
			if (skip_dc && is_dc(s, tb, te))
				continue;
			count++;
			if (pass == 1 && (int64_t)count == (rev ? (int64_t)total - k + 1 : k))
				goto found;
		}
		total = count;
		if (k < 1 || (uint64_t)k > total)
			return 0;
	}
	return 0;
found:
	if (memchr(s + vb, '\\', ve - vb) == NULL) {
		expr_emit_str(c, s + vb, ve - vb);
		return 0;
	}
	char *o = expr_new_str(c, ve - vb);
	size_t n = 0;
	for (size_t i = vb; i < ve; i++) {
		if (s[i] == '\\' && i + 1 < ve) {
			int hi = hex_digit(s[i + 1]), lo = i + 2 < ve ? hex_digit(s[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				o[n++] = (char)(hi << 4 | lo);
				i += 2;
			} else {
				o[n++] = s[++i];
			}
		} else {
			o[n++] = s[i];
		}
	}
	o[n] = '\0';
	expr_emit_new(c, o, n);
	return 0;
}

static int fn_dncomponent(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return dn_component(c, a, a[1].i, false, false);
}

static const char *const dn_options[] = { "DC", NULL };

static int fn_dncomponentrev(expr_ctx_t *c, const xval_t *a, size_t n)
{
	return dn_component(c, a, a[1].i, true, n > 2);
}

/* ---- Entra's PCase ------------------------------------------------------------------------------- */

/* A character .NET's ToTitleCase sees between words: white space, control
 * characters, punctuation and symbols (within the ranges Loom knows). */
static bool is_title_separator(uint32_t cp)
{
	if (cp < 0x80)
		return !isalnum((int)cp) && cp != '\'';
	if (cp < 0xa0)
		return true;
	if (cp < 0x100)
		return is_space(cp) || is_word_prefix(cp);
	return is_space(cp) || (cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x20a0 && cp <= 0x20cf)
	    || (cp >= 0x2190 && cp <= 0x2bff) || (cp >= 0x3000 && cp <= 0x303f) || cp == 0x37e || cp == 0x387;
}

static bool is_letter(uint32_t cp)
{
	if (cp < 0x80)
		return isalpha((int)cp);
	return !is_title_separator(cp) && !(cp >= 0x660 && cp <= 0x669);
}

static void lower_range(char *o, const char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to;) {
		size_t at = i;
		uint32_t cp = next_cp(s, to, &i);
		put_mapped(o, at, i, cp, cp_lower(cp));
	}
}

/* Entra's PCase is .NET's TextInfo.ToTitleCase: the first letter of every
 * word upper case and the rest lower case, except in a word that has no
 * lower-case letter (an acronym, "NASA"), which stays as it is. Words are
 * separated by white space, punctuation (also '-') and symbols; digits and
 * apostrophes belong to the word ("o'neil" gives "O'neil"). */
static int fn_pcase(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	const char *s = a[0].s;
	size_t len = a[0].len;
	char *o = expr_new_str(c, len);
	memcpy(o, s, len);
	for (size_t i = 0; i < len;) {
		size_t at = i;
		uint32_t cp = next_cp(s, len, &i);
		if (!is_letter(cp))
			continue;
		put_mapped(o, at, i, cp, cp_upper(cp));
		size_t from = i;
		bool has_lower = cp_upper(cp) != cp;
		while (i < len) {
			size_t j = i;
			uint32_t d = next_cp(s, len, &j);
			if (d == '\'') {
				if (has_lower)
					lower_range(o, s, from, j);
				i = from = j;
				has_lower = true;
			} else if (is_letter(d)) {
				has_lower = has_lower || cp_upper(d) != d;
				i = j;
			} else if (!is_title_separator(d)) {
				i = j;
			} else {
				break;
			}
		}
		if (has_lower)
			lower_range(o, s, from, i);
	}
	expr_emit_new(c, o, len);
	return 0;
}

/* ---- tests of values --------------------------------------------------------------------------- */

static bool stringish(const xval_t *v)
{
	return v->t == LOOM_EXPR_STRING || v->t == LOOM_EXPR_REF;
}

static bool is_date_value(const xval_t *v)
{
	int64_t us;
	return v->t == LOOM_EXPR_TIME || (stringish(v) && expr_parse_time(v->s, v->len, &us));
}

static bool is_numeric_value(const xval_t *v)
{
	int64_t i;
	return v->t == LOOM_EXPR_INT || (stringish(v) && parse_int(v->s, v->len, &i));
}

static bool is_string_value(const xval_t *v)
{
	return v->t != LOOM_EXPR_BIN;
}

static bool is_guid_value(const xval_t *v)
{
	unsigned char g[16];
	return (v->t == LOOM_EXPR_BIN && v->len == 16) || (stringish(v) && parse_guid(v->s, v->len, g));
}

static bool is_empty_value(const xval_t *v)
{
	return (stringish(v) || v->t == LOOM_EXPR_BIN) && v->len == 0;
}

/* True when the argument has values and every one passes. */
static int all_values(expr_ctx_t *c, const xspan_t *a, bool (*test)(const xval_t *))
{
	bool r = a->n > 0;
	for (size_t i = 0; i < a->n && r; i++)
		r = test(&a->v[i]);
	expr_emit_int(c, LOOM_EXPR_BOOL, r);
	return 0;
}

static int fn_isdate(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return all_values(c, &a[0], is_date_value);
}

static int fn_isnumeric(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return all_values(c, &a[0], is_numeric_value);
}

static int fn_isstring(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return all_values(c, &a[0], is_string_value);
}

static int fn_isguid(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return all_values(c, &a[0], is_guid_value);
}

static int fn_isempty(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	return all_values(c, &a[0], is_empty_value);
}

/* Entra: the first value whose condition is true; the conditions are tried
 * in order and only the value chosen is evaluated (so a last pair
 * `true, Error("...")` is a default); null when no condition is true. */
static int fn_switch(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	for (size_t i = 0; i + 1 < call->nargs; i += 2) {
		xspan_t v;
		if (expr_eval_arg(c, call, i, &v) < 0)
			return -1;
		if (v.n > 1)
			return expr_fail_arg(c, i, "condition %zu of Switch has %zu values, expected one", i / 2 + 1, v.n);
		bool yes = v.n == 1 && v.v[0].i != 0;
		expr_truncate(c, mark);
		if (yes) {
			if (expr_eval_arg(c, call, i + 1, &v) < 0)
				return -1;
			if (call->mode & MODE_REF_TO_STR)
				expr_refs_to_strings(c, mark);
			return 0;
		}
	}
	return 0;
}

/* Entra: the function (argument 3) applied to every value of argument 2,
 * the variable of argument 1 being that value; the results in order. */
static int fn_select(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	xspan_t l, v;
	if (expr_eval_arg(c, call, 1, &l) < 0)
		return -1;
	size_t n = l.n;
	for (size_t j = 0; j < n; j++) {
		expr_bind(c, call->attr, mark + j, 1);
		if (expr_eval_arg(c, call, 2, &v) < 0)
			return -1;
	}
	expr_drop(c, mark, n);
	return 0;
}

/* Entra: the values of argument 2 for which the condition (argument 3) is
 * true, the variable of argument 1 being the value; null condition: false. */
static int fn_where(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	xspan_t l, v;
	if (expr_eval_arg(c, call, 1, &l) < 0)
		return -1;
	size_t n = l.n;
	for (size_t j = 0; j < n; j++) {
		size_t top = expr_mark(c);
		expr_bind(c, call->attr, mark + j, 1);
		if (expr_eval_arg(c, call, 2, &v) < 0)
			return -1;
		if (v.n > 1)
			return expr_fail_arg(c, 2, "the condition of Where has %zu values, expected one", v.n);
		bool yes = v.n == 1 && v.v[0].i != 0;
		expr_truncate(c, top);
		if (yes)
			expr_push_copy(c, mark + j);
	}
	expr_drop(c, mark, n);
	return 0;
}

/* Entra: argument 3 with the variable of argument 1 standing for all the
 * values of argument 2 (evaluated once). */
static int fn_with(expr_ctx_t *c, const expr_node_t *call)
{
	size_t mark = expr_mark(c);
	xspan_t l, v;
	if (expr_eval_arg(c, call, 1, &l) < 0)
		return -1;
	size_t n = l.n;
	expr_bind(c, call->attr, mark, n);
	if (expr_eval_arg(c, call, 2, &v) < 0)
		return -1;
	expr_drop(c, mark, n);
	return 0;
}

static int fn_crlf(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)a;
	(void)n;
	expr_emit_str(c, "\r\n", 2);
	return 0;
}

/* ---- compile-time checks ------------------------------------------------------------------- */

static bool concrete(unsigned t)
{
	return t != LOOM_EXPR_ANY && t != T_NONE;
}

/* The branches are arguments first, first + step, ...: they must have one type. */
static int check_branches(expr_cc_t *cc, expr_node_t *call, size_t first, size_t step, const char *what)
{
	bool retag = false;
	int t = call->args[first]->type;
	call->multi = call->args[first]->multi;
	for (size_t i = first + step; i < call->nargs; i += step) {
		const expr_node_t *a = call->args[i];
		int u = expr_unify((unsigned)t, a->type, &retag);
		if (u < 0)
			return expr_cc_fail(cc, a->off, "%s have different types: %s and %s", what, expr_type_name((unsigned)t),
			    expr_type_name(a->type));
		t = u;
		call->multi = call->multi || a->multi;
	}
	/* a reference beside a string is read as a string, also when the
	 * other branches' types are only known at evaluation */
	for (size_t i = first; i < call->nargs; i += step)
		if (call->args[i]->type == LOOM_EXPR_STRING)
			retag = true;
	call->type = (uint8_t)t;
	call->mode = retag ? MODE_REF_TO_STR : 0;
	return 0;
}

static int check_iif(expr_cc_t *cc, expr_node_t *call)
{
	return check_branches(cc, call, 1, 1, "the branches of IIF");
}

static int check_coalesce(expr_cc_t *cc, expr_node_t *call)
{
	return check_branches(cc, call, 0, 1, "the arguments of Coalesce");
}

static int check_switch(expr_cc_t *cc, expr_node_t *call)
{
	if (call->nargs % 2)
		return expr_cc_fail(cc, call->args[call->nargs - 1]->off,
		    "Switch expects pairs of a condition and a value, got %zu arguments", call->nargs);
	return check_branches(cc, call, 1, 2, "the values of Switch");
}

static int check_select(expr_cc_t *cc, expr_node_t *call)
{
	(void)cc;
	call->type = call->args[2]->type;
	call->multi = true;
	return 0;
}

static int check_where(expr_cc_t *cc, expr_node_t *call)
{
	(void)cc;
	call->type = call->args[1]->type;
	call->multi = true;
	return 0;
}

static int check_with(expr_cc_t *cc, expr_node_t *call)
{
	(void)cc;
	call->type = call->args[2]->type;
	call->multi = call->args[2]->multi;
	return 0;
}

/* A format written literally is checked at load time. */
static int check_format(expr_cc_t *cc, expr_node_t *call)
{
	const expr_node_t *f = call->args[1];
	if (f->kind != N_LIT || f->lit.t != LOOM_EXPR_STRING)
		return 0;
	dt_out_t w = { 0 };
	const char *why = format_time_as(&w, 0, f->lit.s, f->lit.len);
	if (why == NULL)
		return 0;
	loom_buf_t b = LOOM_BUF_INIT;
	expr_add_quoted(&b, f->lit.s, f->lit.len);
	expr_cc_fail(cc, f->off, "%s cannot use the format '%s': %s", call->fn->name, loom_buf_cstr(&b), why);
	loom_buf_release(&b);
	return -1;
}

static int check_replacechars(expr_cc_t *cc, expr_node_t *call)
{
	const expr_node_t *p = call->args[1];
	const char *why;
	size_t bad, bad_len;
	if (p->kind == N_LIT && p->lit.t == LOOM_EXPR_STRING
	    && parse_rc_pattern(p->lit.s, p->lit.len, NULL, &why, &bad, &bad_len) < 0)
		return bad_rc_pattern(NULL, cc, p->off, p->lit.s, bad, bad_len, why);
	return 0;
}

static int check_eq(expr_cc_t *cc, expr_node_t *call)
{
	unsigned t1 = call->args[0]->type, t2 = call->args[1]->type;
	if (concrete(t1) && concrete(t2) && !expr_comparable(t1, t2))
		return expr_cc_fail(cc, call->args[1]->off, "%s cannot compare %s with %s", call->fn->name,
		    expr_type_name(t1), expr_type_name(t2));
	return 0;
}

static int check_order(expr_cc_t *cc, expr_node_t *call)
{
	unsigned t1 = call->args[0]->type, t2 = call->args[1]->type;
	if (concrete(t1) && concrete(t2) && t1 != t2)
		return expr_cc_fail(cc, call->args[1]->off, "%s cannot compare %s with %s", call->fn->name,
		    expr_type_name(t1), expr_type_name(t2));
	return 0;
}

static int check_item(expr_cc_t *cc, expr_node_t *call)
{
	(void)cc;
	call->type = call->args[0]->type;
	call->multi = false;
	return 0;
}

static bool string_literal(const expr_node_t *a)
{
	return a->kind == N_LIT && a->lit.t == LOOM_EXPR_STRING;
}

static int bad_literal(expr_cc_t *cc, const expr_node_t *a, const char *fmt_what, const char *name)
{
	loom_buf_t b = LOOM_BUF_INIT;
	expr_add_quoted(&b, a->lit.s, a->lit.len);
	expr_cc_fail(cc, a->off, "the %s of %s must be one character, got '%s'", fmt_what, name, loom_buf_cstr(&b));
	loom_buf_release(&b);
	return -1;
}

static int check_split(expr_cc_t *cc, expr_node_t *call)
{
	const expr_node_t *d = call->args[1];
	if (string_literal(d) && expr_utf8_count(d->lit.s, d->lit.len) != 1)
		return bad_literal(cc, d, "delimiter", "Split");
	if (call->nargs > 2 && call->args[2]->kind == N_LIT && call->args[2]->lit.i < 1)
		return expr_cc_fail(cc, call->args[2]->off, "the limit of Split must be at least 1, got %" PRId64,
		    call->args[2]->lit.i);
	return 0;
}

static int check_pad(expr_cc_t *cc, expr_node_t *call)
{
	const expr_node_t *p = call->args[2];
	if (string_literal(p) && expr_utf8_count(p->lit.s, p->lit.len) != 1)
		return bad_literal(cc, p, "pad character", call->fn->name);
	return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

#define STR LOOM_EXPR_STRING
#define INT LOOM_EXPR_INT
#define BOOL LOOM_EXPR_BOOL
#define BIN LOOM_EXPR_BIN
#define TIME LOOM_EXPR_TIME
#define REF LOOM_EXPR_REF

/* Entra names of MIM functions with the same behaviour are rows of their
 * own on the same C function, so that messages name what was written. */
const expr_func_t expr_funcs[] = {
	/* data manipulation */
	{ "Concatenate", 1, ARGS_MANY, { P_STR }, STR, 0, .map = fn_concat },
	{ "UpperCase", 1, 1, { P_STR }, STR, 0, .map = fn_uppercase },
	{ "UCase", 1, 1, { P_STR }, STR, 0, .map = fn_uppercase },
	{ "LowerCase", 1, 1, { P_STR }, STR, 0, .map = fn_lowercase },
	{ "LCase", 1, 1, { P_STR }, STR, 0, .map = fn_lowercase },
	{ "ProperCase", 1, 1, { P_STR }, STR, 0, .map = fn_propercase },
	{ "PCase", 1, 1, { P_STR }, STR, 0, .map = fn_pcase },
	{ "Trim", 1, 1, { P_STR }, STR, 0, .map = fn_trim },
	{ "LTrim", 1, 1, { P_STR }, STR, 0, .map = fn_ltrim },
	{ "RTrim", 1, 1, { P_STR }, STR, 0, .map = fn_rtrim },
	{ "ReplaceString", 3, 3, { P_STR, P_STR, P_STR }, STR, 0, .map = fn_replacestring },
	{ "Replace", 3, 3, { P_STR, P_STR, P_STR }, STR, 0, .map = fn_replacestring },
	{ "ReplaceChars", 2, 2, { P_STR, P_STR }, STR, 0, .map = fn_replacechars, .check = check_replacechars },
	{ "LeftPad", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_leftpad,
	    .check = check_pad },
	{ "PadLeft", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_leftpad,
	    .check = check_pad },
	{ "RightPad", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_rightpad,
	    .check = check_pad },
	{ "PadRight", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_rightpad,
	    .check = check_pad },
	/* data retrieval */
	{ "Left", 2, 2, { P_STR, P_INT }, STR, F_NULL_EMPTY, .map = fn_left },
	{ "Right", 2, 2, { P_STR, P_INT }, STR, F_NULL_EMPTY, .map = fn_right },
	{ "Mid", 2, 3, { P_STR, P_INT, P_INT }, STR, F_NULL_EMPTY, .map = fn_mid },
	{ "Len", 1, 1, { P_STR }, INT, 0, .map = fn_len },
	{ "Word", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY, .map = fn_word },
	{ "InStr", 2, 4, { P_STR, P_STR, P_INT, P_ENUM }, INT, 0, .map = fn_instr, .enums = compares },
	{ "InStrRev", 2, 4, { P_STR, P_STR, P_INT, P_ENUM }, INT, 0, .map = fn_instrrev, .enums = compares },
	{ "DNComponent", 2, 2, { P_STR, P_INT }, STR, 0, .map = fn_dncomponent },
	{ "DNComponentRev", 2, 3, { P_STR, P_INT, P_ENUM }, STR, 0, .map = fn_dncomponentrev, .enums = dn_options },
	/* data generation */
	{ "EscapeDNComponent", 1, 1, { P_STR }, STR, 0, .map = fn_escape_dn },
	{ "CRLF", 0, 0, { 0 }, STR, F_CONST, .set = fn_crlf },
	{ "RandomNum", 2, 2, { P_INT, P_INT }, INT, 0, .map = fn_randomnum },
	{ "Guid", 0, 0, { 0 }, STR, 0, .set = fn_guid },
	{ "Now", 0, 0, { 0 }, TIME, 0, .set = fn_now },
	{ "Null", 0, 0, { 0 }, T_NONE, F_CONST, .set = fn_null },
	{ "AuthoritativeNull", 0, 0, { 0 }, T_NONE, F_CONST | F_SPECIAL, .set = fn_authoritative_null },
	{ "IgnoreThisFlow", 0, 0, { 0 }, T_NONE, F_CONST | F_SPECIAL, .set = fn_ignore_flow },
	{ "Error", 1, 1, { P_STR }, T_NONE, 0, .set = fn_error },
	/* conversion */
	{ "CStr", 1, 1, { P_STR | P_INT | P_BOOL | P_TIME | P_REF }, STR, 0, .map = fn_cstr },
	{ "CNum", 1, 1, { P_STR | P_INT }, INT, 0, .map = fn_cnum },
	{ "CBool", 1, 1, { P_STR | P_INT | P_BOOL }, BOOL, 0, .map = fn_cbool },
	{ "CDate", 1, 1, { P_STR | P_TIME }, TIME, 0, .map = fn_cdate },
	{ "CRef", 1, 1, { P_STR | P_REF }, REF, 0, .map = fn_cref },
	{ "CGuid", 1, 1, { P_STR | P_BIN }, BIN, 0, .map = fn_cguid },
	{ "ConvertStringToGuid", 1, 1, { P_STR | P_BIN }, BIN, 0, .map = fn_cguid },
	{ "StringFromGuid", 1, 1, { P_BIN }, STR, 0, .map = fn_stringfromguid },
	{ "ConvertSidToString", 1, 1, { P_BIN }, STR, 0, .map = fn_sidtostring },
	{ "StringFromSid", 1, 1, { P_BIN }, STR, 0, .map = fn_sidtostring },
	{ "ConvertToBase64", 1, 2, { P_STR | P_BIN, P_ENUM }, STR, 0, .map = fn_to_base64, .enums = encodings },
	{ "ConvertFromBase64", 1, 2, { P_STR, P_ENUM }, STR, 0, .map = fn_from_base64, .enums = encodings },
	{ "ConvertToUTF8Hex", 1, 1, { P_STR }, STR, 0, .map = fn_to_utf8hex },
	{ "ConvertFromUTF8Hex", 1, 1, { P_STR }, STR, 0, .map = fn_from_utf8hex },
	/* dates and times */
	{ "DateTimeFormat", 2, 2, { P_STR | P_TIME, P_STR }, STR, 0, .map = fn_format_time, .check = check_format },
	{ "FormatDateTime", 2, 2, { P_STR | P_TIME, P_STR }, STR, 0, .map = fn_format_time, .check = check_format },
	{ "DateAdd", 3, 3, { P_ENUM, P_INT, P_TIME }, TIME, 0, .map = fn_dateadd, .enums = intervals },
	{ "DateFromNum", 1, 1, { P_INT }, TIME, 0, .map = fn_datefromnum },
	{ "NumFromDate", 1, 1, { P_TIME }, INT, 0, .map = fn_numfromdate },
	/* numbers and bits */
	{ "BitAnd", 2, 2, { P_INT, P_INT }, INT, 0, .map = fn_bitand },
	{ "BitOr", 2, 2, { P_INT, P_INT }, INT, 0, .map = fn_bitor },
	{ "IsBitSet", 2, 2, { P_INT, P_INT }, BOOL, 0, .map = fn_isbitset },
	/* multi-valued */
	{ "Split", 2, 3, { P_STR, P_STR, P_INT }, STR, F_MULTI, .map = fn_split, .check = check_split },
	{ "Join", 1, 2, { P_STR, P_STR }, STR, 0, .set = fn_join },
	{ "Count", 1, 1, { P_ANY }, INT, 0, .set = fn_count },
	{ "Item", 2, 2, { P_ANY, P_INT }, R_CHECK, 0, .set = fn_item, .check = check_item },
	{ "ItemOrNull", 2, 2, { P_ANY, P_INT }, R_CHECK, 0, .set = fn_itemornull, .check = check_item },
	{ "Contains", 2, 3, { P_STR | P_REF, P_STR, P_ENUM }, INT, 0, .set = fn_contains, .enums = casetypes },
	{ "RemoveDuplicates", 1, 1, { P_ANY }, R_ARG0, 0, .set = fn_remove_duplicates },
	{ "Select", 3, 3, { P_VAR, P_ANY, P_ANY }, R_CHECK, F_BINDS, .lazy = fn_select, .check = check_select },
	{ "Where", 3, 3, { P_VAR, P_ANY, P_BOOL }, R_CHECK, F_BINDS, .lazy = fn_where, .check = check_where },
	{ "With", 3, 3, { P_VAR, P_ANY, P_ANY }, R_CHECK, F_BINDS_LIST, .lazy = fn_with, .check = check_with },
	/* logic */
	{ "IIF", 3, 3, { P_BOOL, P_ANY }, R_CHECK, F_BRANCHES, .lazy = fn_iif, .check = check_iif },
	{ "Switch", 2, ARGS_MANY, { P_BOOL, P_ANY }, R_CHECK, F_BRANCHES | F_PAIRS, .lazy = fn_switch,
	    .check = check_switch },
	{ "Coalesce", 1, ARGS_MANY, { P_ANY }, R_CHECK, 0, .lazy = fn_coalesce, .check = check_coalesce },
	{ "Eq", 2, 2, { P_ANY }, BOOL, 0, .set = fn_eq, .check = check_eq },
	{ "NotEquals", 2, 2, { P_ANY }, BOOL, 0, .set = fn_noteq, .check = check_eq },
	{ "LessThan", 2, 2, { P_INT | P_TIME }, BOOL, 0, .set = fn_lt, .check = check_order },
	{ "GreaterThan", 2, 2, { P_INT | P_TIME }, BOOL, 0, .set = fn_gt, .check = check_order },
	{ "LessThanOrEquals", 2, 2, { P_INT | P_TIME }, BOOL, 0, .set = fn_le, .check = check_order },
	{ "GreaterThanOrEquals", 2, 2, { P_INT | P_TIME }, BOOL, 0, .set = fn_ge, .check = check_order },
	{ "IsPresent", 1, 1, { P_ANY }, BOOL, 0, .set = fn_ispresent },
	{ "IsNull", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isnull },
	{ "IsNullOrEmpty", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isnullorempty },
	{ "IsEmpty", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isempty },
	{ "IsDate", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isdate },
	{ "IsNumeric", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isnumeric },
	{ "IsString", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isstring },
	{ "IsGuid", 1, 1, { P_ANY }, BOOL, 0, .set = fn_isguid },
};

const size_t expr_n_funcs = sizeof expr_funcs / sizeof expr_funcs[0];

const expr_func_t expr_op_concat = { "+", 2, ARGS_MANY, { P_STR }, STR, F_OPERATOR, .map = fn_concat };
const expr_func_t expr_op_add = { "+", 2, ARGS_MANY, { P_INT }, INT, F_OPERATOR, .map = fn_add };
const expr_func_t expr_op_plus = { "+", 2, ARGS_MANY, { P_STR | P_INT }, LOOM_EXPR_ANY, F_OPERATOR, .map = fn_plus };
