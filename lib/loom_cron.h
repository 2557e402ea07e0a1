/* loom_cron.h - five-field cron expressions, evaluated in UTC.
 *
 *   minute hour day-of-month month day-of-week
 *   0-59   0-23 1-31         1-12  0-7 (0 and 7 are Sunday)
 *
 * Each field is a comma-separated list of items; an item is `*`, `N` or
 * `A-B`, optionally followed by a step `/N` (every Nth value of the range;
 * `N/S` means N to the field's end), N >= 1. Names
 * (JAN, MON) and the @hourly shorthands are not accepted.
 *
 * As in Vixie cron, when both day-of-month and day-of-week are restricted
 * (neither field starts with `*`), a day matches when either does; when one
 * of them starts with `*`, only the other one decides.
 */
#ifndef LOOM_CRON_H
#define LOOM_CRON_H

#include <stdbool.h>
#include <stdint.h>

typedef struct loom_cron {
	uint64_t minute;               /* bit m set: minute m (0-59) matches */
	uint32_t hour;                 /* bit h: hour h (0-23) */
	uint32_t mday;                 /* bit d: day of month d (1-31) */
	uint16_t month;                /* bit m: month m (1-12) */
	uint8_t wday;                  /* bit w: day of week w (0-6, Sunday 0) */
	bool mday_star;                /* day-of-month field starts with '*' */
	bool wday_star;                /* day-of-week field starts with '*' */
} loom_cron_t;

/* Parses text into *ret. Returns 0, or -1 with *ret_error (the caller's to
 * free) saying what was expected, starting with "expected", e.g.
 * "expected a step of at least 1 in the minute field, found '0'". Rejects
 * an expression that can never match (day 30 in February only). */
int loom_cron_parse(const char *text, loom_cron_t *ret, char **ret_error);

/* The first minute strictly after `after` (seconds since the Unix epoch,
 * UTC) that c matches, in seconds. Returns 0, or -1 when none comes within
 * a 400-year cycle of the calendar (impossible for an expression
 * loom_cron_parse accepted). */
int loom_cron_next(const loom_cron_t *c, int64_t after, int64_t *ret_next);

#endif
