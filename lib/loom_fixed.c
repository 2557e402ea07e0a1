/* loom_fixed.c - fixed-width records (see loom_fixed.h). */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "loom_fixed.h"
#include "loom_alloc.h"
#include "loom_attrs.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int loom_fixed_layout(loom_fixed_col_t *cols, size_t n, char **ret_error)
{
	unsigned next = 1;
	for (size_t i = 0; i < n; i++) {
		if (cols[i].width == 0) {
			*ret_error = loom_sprintf("column '%s': width must be at least 1", cols[i].name);
			return -1;
		}
		if (cols[i].start == 0)
			cols[i].start = next;
		next = cols[i].start + cols[i].width;
		for (size_t k = 0; k < i; k++) {
			if (strcasecmp(cols[k].name, cols[i].name) == 0) {
				*ret_error = loom_sprintf("column '%s' is in the layout twice", cols[i].name);
				return -1;
			}
			unsigned a0 = cols[k].start, a1 = cols[k].start + cols[k].width;
			unsigned b0 = cols[i].start, b1 = cols[i].start + cols[i].width;
			if (a0 < b1 && b0 < a1) {
				*ret_error = loom_sprintf("column '%s' (characters %u-%u) overlaps column '%s' (%u-%u)",
				    cols[i].name, b0, b1 - 1, cols[k].name, a0, a1 - 1);
				return -1;
			}
		}
	}
	return 0;
}

unsigned loom_fixed_length(const loom_fixed_col_t *cols, size_t n)
{
	unsigned end = 0;
	for (size_t i = 0; i < n; i++)
		if (cols[i].start + cols[i].width - 1 > end)
			end = cols[i].start + cols[i].width - 1;
	return end;
}

/* Bytes of the UTF-8 character at s[i] (1 for a bad byte). */
static size_t char_len(const unsigned char *s, size_t len, size_t i, bool *bad)
{
	unsigned char c = s[i];
	size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
	if (c == 0 || extra == 9 || i + extra >= len + (extra ? 0 : 1)) {
		*bad = true;
		return 1;
	}
	for (size_t k = 1; k <= extra; k++)
		if ((s[i + k] & 0xc0) != 0x80) {
			*bad = true;
			return 1;
		}
	return extra + 1;
}

size_t loom_fixed_chars(const char *s, size_t len)
{
	size_t n = 0;
	bool bad = false;
	for (size_t i = 0; i < len; n++)
		i += char_len((const unsigned char *)s, len, i, &bad);
	return n;
}

int loom_fixed_split(const loom_fixed_col_t *cols, size_t n, const char *line, size_t len, loom_fixed_cell_t *cells,
    unsigned *ret_col, const char **error_r)
{
	/* Byte offset of every character start, up to the layout's end + 1. */
	unsigned end = loom_fixed_length(cols, n);
	size_t *at = loom_malloc((end + 2) * sizeof *at);
	size_t i = 0;
	unsigned ch = 0;
	bool bad = false;
	while (i < len && ch <= end) {
		at[ch++] = i;
		i += char_len((const unsigned char *)line, len, i, &bad);
		if (bad) {
			*ret_col = ch;
			*error_r = "the line is not UTF-8 text (or holds a NUL)";
			free(at);
			return -1;
		}
	}
	if (ch > end) {
		*ret_col = end + 1;
		*error_r = NULL; /* the caller words it: it knows the lengths */
		free(at);
		return -1;
	}
	unsigned nchars = ch;
	for (; ch <= end + 1; ch++)
		at[ch] = len;
	for (size_t c = 0; c < n; c++) {
		unsigned s0 = cols[c].start - 1, s1 = s0 + cols[c].width;
		size_t b0 = s0 < nchars ? at[s0] : len, b1 = s1 < nchars ? at[s1] : len;
		while (b0 < b1 && (line[b0] == ' ' || line[b0] == '\t'))
			b0++;
		while (b1 > b0 && (line[b1 - 1] == ' ' || line[b1 - 1] == '\t'))
			b1--;
		cells[c].text = line + b0;
		cells[c].len = b1 - b0;
	}
	free(at);
	return 0;
}

static const char *const default_formats[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S",
	"%Y%m%d", NULL };

/* The exact shapes of the default formats (d: a digit), as documented:
 * strptime alone skips blanks and takes fewer digits, so "2 66666" was
 * 0002-06-06T06:06:06 by %Y%m%d%H%M%S and a date written back into a
 * narrower column lost its time. A trailing Z is allowed. */
static const char *const default_shapes[] = { "dddd-dd-ddTdd:dd:dd", "dddd-dd-dd dd:dd:dd", "dddd-dd-dd",
	"dddddddddddddd", "dddddddd", NULL };

static bool default_shape(const char *s, const char *shape)
{
	for (; *shape; s++, shape++)
		if (*shape == 'd' ? !isdigit((unsigned char)*s) : *s != *shape)
			return false;
	return *s == '\0' || (s[0] == 'Z' && s[1] == '\0');
}

/* The date exists: timegm did not carry an overflowing field (2024-02-30,
 * 25:00) into the next one. s has a default shape: YYYY?MM?DD at its start. */
static bool valid_date(const char *s, long long us)
{
	time_t t = (time_t)(us / 1000000LL);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		return false;
	int y = atoi(s), m, d;
	if (s[4] == '-') {
		m = (s[5] - '0') * 10 + (s[6] - '0');
		d = (s[8] - '0') * 10 + (s[9] - '0');
	} else {
		m = (s[4] - '0') * 10 + (s[5] - '0');
		d = (s[6] - '0') * 10 + (s[7] - '0');
	}
	return tm.tm_year + 1900 == y && tm.tm_mon + 1 == m && tm.tm_mday == d;
}

/* strptime that must consume all of s (a trailing Z is UTC). */
static bool parse_time(const char *s, const char *fmt, long long *ret_us)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, fmt, &tm);
	if (end == NULL)
		return false;
	if (*end == 'Z')
		end++;
	if (*end)
		return false;
	time_t t = timegm(&tm);
	*ret_us = (long long)t * 1000000LL;
	return true;
}

Loom__Value *loom_fixed_value(const loom_fixed_col_t *col, const char *text, size_t len, char *why, size_t why_len)
{
	char *s = loom_strndup(text, len);
	Loom__Value *v = NULL;
	switch (col->type) {
	case LOOM_FIXED_STRING:
		v = loom_value_str(text, len);
		break;
	case LOOM_FIXED_INTEGER: {
		const char *p = s;
		if (*p == '+' || *p == '-')
			p++;
		bool digits = *p != '\0';
		for (const char *q = p; *q; q++)
			if (!isdigit((unsigned char)*q))
				digits = false;
		if (!digits) {
			snprintf(why, why_len, "'%s' is not an integer", s);
			break;
		}
		errno = 0;
		long long x = strtoll(s, NULL, 10);
		if (errno == ERANGE) {
			snprintf(why, why_len, "'%s' is out of range for an integer", s);
			break;
		}
		v = loom_malloc(sizeof *v);
		loom__value__init(v);
		v->v_case = LOOM__VALUE__V_INT;
		v->int_ = x;
		break;
	}
	case LOOM_FIXED_BOOLEAN: {
		static const char *const yes[] = { "true", "yes", "y", "t", "1", NULL };
		static const char *const no[] = { "false", "no", "n", "f", "0", NULL };
		int b = -1;
		for (int i = 0; yes[i]; i++) {
			if (strcasecmp(s, yes[i]) == 0)
				b = 1;
			if (strcasecmp(s, no[i]) == 0)
				b = 0;
		}
		if (b < 0) {
			snprintf(why, why_len, "'%s' is not a boolean (true/false, yes/no, y/n, t/f, 1/0)", s);
			break;
		}
		v = loom_malloc(sizeof *v);
		loom__value__init(v);
		v->v_case = LOOM__VALUE__V_BOOL;
		v->bool_ = b == 1;
		break;
	}
	case LOOM_FIXED_DATETIME: {
		long long us;
		bool ok = false;
		if (col->format)
			ok = parse_time(s, col->format, &us);
		for (int i = 0; !col->format && default_formats[i] && !ok; i++)
			ok = default_shape(s, default_shapes[i]) && parse_time(s, default_formats[i], &us) &&
			     valid_date(s, us);
		if (!ok) {
			snprintf(why, why_len, "'%s' is not a date and time in the format %s", s,
			    col->format ? col->format : "YYYY-MM-DD[THH:MM:SS] or YYYYMMDD[HHMMSS]");
			break;
		}
		v = loom_malloc(sizeof *v);
		loom__value__init(v);
		v->v_case = LOOM__VALUE__V_TIME;
		v->time = us;
		break;
	}
	}
	free(s);
	return v;
}

void loom_fixed_value_text(loom_buf_t *out, const loom_fixed_col_t *col, const Loom__Value *v)
{
	if (v->v_case == LOOM__VALUE__V_BOOL) {
		loom_buf_adds(out, col->width < 5 ? (v->bool_ ? "Y" : "N") : (v->bool_ ? "true" : "false"));
	} else if (v->v_case == LOOM__VALUE__V_TIME) {
		const char *fmt = col->format ? col->format
		    : col->width >= 19		  ? "%Y-%m-%dT%H:%M:%S"
		    : col->width >= 10		  ? "%Y-%m-%d"
						  : "%Y%m%d";
		time_t t = (time_t)(v->time / 1000000LL - (v->time < 0 && v->time % 1000000LL ? 1 : 0));
		struct tm tm;
		gmtime_r(&t, &tm);
		/* strftime's %Y does not pad: year 2 came out as "20606" for
		 * 0002-06-06, which %Y%m%d reads back as another date. The year is
		 * put into the format with 4 digits at least. */
		loom_buf_t f = LOOM_BUF_INIT;
		for (const char *p = fmt; *p; p++) {
			if (p[0] == '%' && p[1] == 'Y') {
				loom_buf_printf(&f, "%04lld", (long long)tm.tm_year + 1900);
				p++;
			} else if (p[0] == '%' && p[1] != '\0') {
				loom_buf_add(&f, p, 2);
				p++;
			} else {
				loom_buf_addc(&f, *p);
			}
		}
		char b[256];
		/* The format is the administrator's (checked at configuration load). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		size_t n = strftime(b, sizeof b, loom_buf_cstr(&f), &tm);
#pragma GCC diagnostic pop
		loom_buf_release(&f);
		loom_buf_add(out, b, n);
	} else if (v->v_case == LOOM__VALUE__V_BIN) {
		loom_buf_add(out, v->bin.data, v->bin.len);
	} else {
		loom_value_text(out, v);
	}
}

int loom_fixed_put(loom_buf_t *out, const loom_fixed_col_t *col, const char *text, size_t len)
{
	size_t chars = loom_fixed_chars(text, len);
	if (chars > col->width)
		return -1;
	bool right = col->align == LOOM_FIXED_ALIGN_RIGHT ||
	    (col->align == LOOM_FIXED_ALIGN_AUTO && col->type == LOOM_FIXED_INTEGER);
	size_t pad = col->width - chars;
	if (right)
		for (size_t i = 0; i < pad; i++)
			loom_buf_addc(out, ' ');
	loom_buf_add(out, text, len);
	if (!right)
		for (size_t i = 0; i < pad; i++)
			loom_buf_addc(out, ' ');
	return 0;
}
