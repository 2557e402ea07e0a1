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
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	return pad(c, a, true, "LeftPad");
}

static int fn_rightpad(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	return pad(c, a, false, "RightPad");
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
 * input for a negative count); pos past the end or below 1 gives the input. */
static int fn_mid(expr_ctx_t *c, const xval_t *a, size_t n)
{
	(void)n;
	int64_t pos = a[1].i, k = a[2].i;
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

/* ---- conversion ------------------------------------------------------------------------------ */

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

/* ISO 8601 in UTC: 2024-03-01T12:30:00Z, with .ffffff when there are microseconds. */
static size_t format_time(char *buf, size_t size, int64_t us)
{
	const int64_t day = 86400000000;
	int64_t days = us / day, rem = us % day;
	if (rem < 0) {
		rem += day;
		days--;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	unsigned secs = (unsigned)(rem / 1000000), frac = (unsigned)(rem % 1000000);
	int k = snprintf(buf, size, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u", y, m, d, secs / 3600, secs / 60 % 60,
	    secs % 60);
	if (frac)
		k += snprintf(buf + k, size - (size_t)k, ".%06u", frac);
	k += snprintf(buf + k, size - (size_t)k, "Z");
	return (size_t)k;
}

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
		emit_copy(c, buf, format_time(buf, sizeof buf, a[0].i));
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

/* Entra: 1-based; an index out of range is an error (ItemOrNull is not). */
static int fn_item(expr_ctx_t *c, const xspan_t *a, size_t n)
{
	(void)n;
	if (a[1].n == 0)
		return 0;
	if (a[1].n > 1)
		return expr_fail_arg(c, 1, "the index of Item has %zu values, expected one", a[1].n);
	int64_t k = a[1].v[0].i;
	if (a[0].n == 0)
		return expr_fail_arg(c, 1, "Item index %" PRId64 " is out of range (the list is empty)", k);
	if (k < 1 || (uint64_t)k > a[0].n)
		return expr_fail_arg(c, 1, "Item index %" PRId64 " is out of range (1 to %zu)", k, a[0].n);
	expr_emit(c, &a[0].v[k - 1]);
	return 0;
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

/* ---- compile-time checks ------------------------------------------------------------------- */

static bool concrete(unsigned t)
{
	return t != LOOM_EXPR_ANY && t != T_NONE;
}

static int check_branches(expr_cc_t *cc, expr_node_t *call, size_t first, const char *what)
{
	bool retag = false;
	int t = call->args[first]->type;
	call->multi = call->args[first]->multi;
	for (size_t i = first + 1; i < call->nargs; i++) {
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
	for (size_t i = first; i < call->nargs; i++)
		if (call->args[i]->type == LOOM_EXPR_STRING)
			retag = true;
	call->type = (uint8_t)t;
	call->mode = retag ? MODE_REF_TO_STR : 0;
	return 0;
}

static int check_iif(expr_cc_t *cc, expr_node_t *call)
{
	return check_branches(cc, call, 1, "the branches of IIF");
}

static int check_coalesce(expr_cc_t *cc, expr_node_t *call)
{
	return check_branches(cc, call, 0, "the arguments of Coalesce");
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

const expr_func_t expr_funcs[] = {
	/* data manipulation */
	{ "Concatenate", 1, ARGS_MANY, { P_STR }, STR, 0, .map = fn_concat },
	{ "UpperCase", 1, 1, { P_STR }, STR, 0, .map = fn_uppercase },
	{ "LowerCase", 1, 1, { P_STR }, STR, 0, .map = fn_lowercase },
	{ "ProperCase", 1, 1, { P_STR }, STR, 0, .map = fn_propercase },
	{ "Trim", 1, 1, { P_STR }, STR, 0, .map = fn_trim },
	{ "LTrim", 1, 1, { P_STR }, STR, 0, .map = fn_ltrim },
	{ "RTrim", 1, 1, { P_STR }, STR, 0, .map = fn_rtrim },
	{ "ReplaceString", 3, 3, { P_STR, P_STR, P_STR }, STR, 0, .map = fn_replacestring },
	{ "LeftPad", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_leftpad,
	    .check = check_pad },
	{ "RightPad", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY | F_SEES_NULL, .map = fn_rightpad,
	    .check = check_pad },
	/* data retrieval */
	{ "Left", 2, 2, { P_STR, P_INT }, STR, F_NULL_EMPTY, .map = fn_left },
	{ "Right", 2, 2, { P_STR, P_INT }, STR, F_NULL_EMPTY, .map = fn_right },
	{ "Mid", 3, 3, { P_STR, P_INT, P_INT }, STR, F_NULL_EMPTY, .map = fn_mid },
	{ "Len", 1, 1, { P_STR }, INT, 0, .map = fn_len },
	{ "Word", 3, 3, { P_STR, P_INT, P_STR }, STR, F_NULL_EMPTY, .map = fn_word },
	/* data generation */
	{ "EscapeDNComponent", 1, 1, { P_STR }, STR, 0, .map = fn_escape_dn },
	{ "Null", 0, 0, { 0 }, T_NONE, F_CONST, .set = fn_null },
	{ "AuthoritativeNull", 0, 0, { 0 }, T_NONE, F_CONST | F_SPECIAL, .set = fn_authoritative_null },
	{ "IgnoreThisFlow", 0, 0, { 0 }, T_NONE, F_CONST | F_SPECIAL, .set = fn_ignore_flow },
	{ "Error", 1, 1, { P_STR }, T_NONE, 0, .set = fn_error },
	/* conversion */
	{ "CStr", 1, 1, { P_STR | P_INT | P_BOOL | P_TIME | P_REF }, STR, 0, .map = fn_cstr },
	{ "CNum", 1, 1, { P_STR | P_INT }, INT, 0, .map = fn_cnum },
	{ "CBool", 1, 1, { P_STR | P_INT | P_BOOL }, BOOL, 0, .map = fn_cbool },
	{ "ConvertToBase64", 1, 2, { P_STR | P_BIN, P_ENUM }, STR, 0, .map = fn_to_base64, .enums = encodings },
	{ "ConvertFromBase64", 1, 2, { P_STR, P_ENUM }, STR, 0, .map = fn_from_base64, .enums = encodings },
	/* multi-valued */
	{ "Split", 2, 3, { P_STR, P_STR, P_INT }, STR, F_MULTI, .map = fn_split, .check = check_split },
	{ "Join", 1, 2, { P_STR, P_STR }, STR, 0, .set = fn_join },
	{ "Count", 1, 1, { P_ANY }, INT, 0, .set = fn_count },
	{ "Item", 2, 2, { P_ANY, P_INT }, R_CHECK, 0, .set = fn_item, .check = check_item },
	{ "RemoveDuplicates", 1, 1, { P_ANY }, R_ARG0, 0, .set = fn_remove_duplicates },
	/* logic */
	{ "IIF", 3, 3, { P_BOOL, P_ANY }, R_CHECK, F_BRANCHES, .lazy = fn_iif, .check = check_iif },
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
};

const size_t expr_n_funcs = sizeof expr_funcs / sizeof expr_funcs[0];

const expr_func_t expr_op_concat = { "+", 2, ARGS_MANY, { P_STR }, STR, F_OPERATOR, .map = fn_concat };
const expr_func_t expr_op_add = { "+", 2, ARGS_MANY, { P_INT }, INT, F_OPERATOR, .map = fn_add };
const expr_func_t expr_op_plus = { "+", 2, ARGS_MANY, { P_STR | P_INT }, LOOM_EXPR_ANY, F_OPERATOR, .map = fn_plus };
