/* loom_cron.c - cron expression parsing and next-time computation (UTC). */
#include "loom_cron.h"
#include "loom_alloc.h"

#include <stdlib.h>
#include <string.h>

typedef struct field {
	const char *name;              /* as error messages call it */
	int lo;                        /* smallest value */
	int hi;                        /* largest value */
} field_t;

static const field_t fields[5] = {
	{ "minute", 0, 59 },
	{ "hour", 0, 23 },
	{ "day-of-month", 1, 31 },
	{ "month", 1, 12 },
	{ "day-of-week", 0, 7 },
};

/* Reads a decimal number of at most 4 digits at *p. */
static bool number(const char **p, int *ret)
{
	const char *s = *p;
	int v = 0, n = 0;
	while (*s >= '0' && *s <= '9' && n < 4) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (*s >= '0' && *s <= '9'))
		return false;
	*p = s;
	*ret = v;
	return true;
}

/* Parses one field (item[,item]...) of len bytes into *bits. */
static int parse_field(const field_t *f, const char *s, size_t len, uint64_t *bits, char **ret_error)
{
	char *text = loom_strndup(s, len);
	char *save = NULL;
	int rc = 0;
	*bits = 0;
	if (len == 0 || text[0] == ',' || text[len - 1] == ',' || strstr(text, ",,")) {
		*ret_error = loom_sprintf("expected no empty item in the %s field, found '%s'", f->name, text);
		rc = -1;
		goto out;
	}
	for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const char *p = item;
		int a, b, step = 1;
		bool star = false;
		if (*p == '*') {
			star = true;
			a = f->lo;
			b = f->hi;
			p++;
		} else {
			if (!number(&p, &a))
				goto bad_item;
			b = a;
			if (*p == '-') {
				p++;
				if (!number(&p, &b))
					goto bad_item;
			}
			if (a < f->lo || a > f->hi || b < f->lo || b > f->hi) {
				*ret_error = loom_sprintf("expected %s values %d-%d, found '%s'", f->name, f->lo, f->hi, item);
				rc = -1;
				goto out;
			}
			if (a > b) {
				*ret_error = loom_sprintf("expected a range A-B with A <= B in the %s field, found '%s'",
				    f->name, item);
				rc = -1;
				goto out;
			}
		}
		if (*p == '/') {
			const char *q = ++p;
			if (!number(&p, &step) || *p) {
				*ret_error = loom_sprintf("expected a number after '/' in the %s field, found '%s'",
				    f->name, item);
				rc = -1;
				goto out;
			}
			if (step < 1) {
				*ret_error = loom_sprintf("expected a step of at least 1 in the %s field, found '%s'",
				    f->name, q);
				rc = -1;
				goto out;
			}
			/* "5/10" would be 5-5/10 by the grammar; cron means 5-59/10. */
			if (!star && a == b)
				b = f->hi;
		}
		if (*p)
			goto bad_item;
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << v;
		continue;
bad_item:
		*ret_error = loom_sprintf("expected *, N, A-B, */N or A-B/N in the %s field, found '%s'", f->name, item);
		rc = -1;
		goto out;
	}
out:
	free(text);
	return rc;
}

static const int mdays[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

int loom_cron_parse(const char *text, loom_cron_t *ret, char **ret_error)
{
	loom_cron_t c;
	memset(&c, 0, sizeof c);
	const char *start[6];
	size_t len[6];
	size_t n = 0;
	for (const char *p = text; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		const char *q = p;
		while (*q && *q != ' ' && *q != '\t')
			q++;
		if (n < 6) {
			start[n] = p;
			len[n] = (size_t)(q - p);
		}
		n++;
		p = q;
	}
	if (n != 5) {
		*ret_error = loom_sprintf("expected 5 fields (minute hour day-of-month month day-of-week), found %zu", n);
		return -1;
	}
	uint64_t bits[5];
	for (size_t i = 0; i < 5; i++)
		if (parse_field(&fields[i], start[i], len[i], &bits[i], ret_error) < 0)
			return -1;
	c.minute = bits[0];
	c.hour = (uint32_t)bits[1];
	c.mday = (uint32_t)bits[2];
	c.month = (uint16_t)bits[3];
	c.wday = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
	c.mday_star = start[2][0] == '*';
	c.wday_star = start[4][0] == '*';
	/* Only the day of month decides (day-of-week is '*'): some chosen
	 * month must have one of the chosen days, or it never runs. */
	if (c.wday_star) {
		bool possible = false;
		for (int m = 1; m <= 12 && !possible; m++)
			if ((c.month >> m) & 1)
				for (int d = 1; d <= mdays[m] && !possible; d++)
					possible = (c.mday >> d) & 1;
		if (!possible) {
			char *t = loom_strndup(start[2], len[2]);
			char *u = loom_strndup(start[3], len[3]);
			*ret_error = loom_sprintf("expected a day of month that occurs in the chosen months, "
			    "found day '%s' of month '%s'", t, u);
			free(t);
			free(u);
			return -1;
		}
	}
	*ret = c;
	return 0;
}

/* The date of a day number (days since 1970-01-01, proleptic Gregorian;
 * H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m, int *ret_d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*ret_y = yoe + era * 400 + (m <= 2);
	*ret_m = m;
	*ret_d = d;
}

static bool day_matches(const loom_cron_t *c, int64_t days, int mday)
{
	int wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
	bool dm = (c->mday >> mday) & 1, dw = (c->wday >> wday) & 1;
	if (c->mday_star || c->wday_star)
		return dm && dw;
	return dm || dw;
}

int loom_cron_next(const loom_cron_t *c, int64_t after, int64_t *ret_next)
{
	int64_t t = after - ((after % 60) + 60) % 60 + 60; /* next whole minute */
	int64_t days = (t - ((t % 86400) + 86400) % 86400) / 86400;
	int minute_of_day = (int)((t - days * 86400) / 60);
	/* Day by day, then the first matching hour:minute of the day, starting
	 * at t's minute on the first day. The Gregorian calendar repeats every
	 * 400 years (146097 days), so a day that ever matches comes within one
	 * cycle: 1 January on a Sunday (minute 0 0, day 1, month 1, weekday 0) is years
	 * apart. A cycle of days is about a millisecond of work. */
	for (int i = 0; i <= 146097; i++, days++, minute_of_day = 0) {
		int64_t y;
		int m, d;
		civil_from_days(days, &y, &m, &d);
		if (!((c->month >> m) & 1) || !day_matches(c, days, d))
			continue;
		for (int mod = minute_of_day; mod < 1440; mod++) {
			if (!((c->hour >> (mod / 60)) & 1)) {
				mod = (mod / 60) * 60 + 59; /* to the next hour */
				continue;
			}
			if ((c->minute >> (mod % 60)) & 1) {
				*ret_next = days * 86400 + (int64_t)mod * 60;
				return 0;
			}
		}
	}
	return -1;
}
