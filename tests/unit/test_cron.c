/* test_cron.c - cron expressions (lib/loom_cron.c) and the schedules of
 * config/loom.yaml (lib/loom_deploy.c).
 *
 * Next-time cases: a label, an expression, a start time (UTC) and the next
 * times wanted, each strictly after the one before. Must-fail cases: the
 * expression and the exact message. Schedule cases: the schedules section of
 * a loom.yaml and the exact diags wanted (@F@ stands for the file), or none.
 */
#define _GNU_SOURCE /* timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_cron.h"
#include "loom_deploy.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_NEXT 5

/* "YYYY-MM-DD HH:MM[:SS]" (UTC) in seconds since the epoch. */
static int64_t utc(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec);
	if (n < 5)
		fail_msg("bad time in test '%s'", s);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void fmt(char out[32], int64_t t)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

/* ---- next times ------------------------------------------------------------ */

typedef struct next_case {
	const char *label;
	const char *expr;
	const char *start;
	const char *want[MAX_NEXT];   /* NULL-terminated when shorter */
} next_case_t;

static const next_case_t next_cases[] = {
	{ "every minute", "* * * * *", "2024-01-01 00:00:30",
	  { "2024-01-01 00:01", "2024-01-01 00:02", "2024-01-01 00:03" } },
	{ "on a whole minute: strictly after", "* * * * *", "2024-01-01 00:00:00", { "2024-01-01 00:01" } },
	{ "brief's example over a weekend", "*/15 7-19 * * 1-5", "2024-03-01 19:50",
	  { "2024-03-04 07:00", "2024-03-04 07:15", "2024-03-04 07:30" } },
	{ "last slot of the day", "*/15 7-19 * * 1-5", "2024-03-04 19:40",
	  { "2024-03-04 19:45", "2024-03-05 07:00" } },
	{ "first of the month across February", "0 0 1 * *", "2024-01-31 12:00",
	  { "2024-02-01 00:00", "2024-03-01 00:00", "2024-04-01 00:00" } },
	{ "29 February: leap years only", "0 12 29 2 *", "2023-03-01 00:00",
	  { "2024-02-29 12:00", "2028-02-29 12:00", "2032-02-29 12:00" } },
	{ "day 31: months that have one", "30 23 31 * *", "2024-04-01 00:00",
	  { "2024-05-31 23:30", "2024-07-31 23:30", "2024-08-31 23:30", "2024-10-31 23:30" } },
	{ "Sundays as 0", "0 0 * * 0", "2024-01-01 00:00", { "2024-01-07 00:00", "2024-01-14 00:00" } },
	{ "Sundays as 7", "0 0 * * 7", "2024-01-01 00:00", { "2024-01-07 00:00", "2024-01-14 00:00" } },
	{ "day of month or day of week", "0 9 10 * 5", "2024-01-01 00:00",
	  { "2024-01-05 09:00", "2024-01-10 09:00", "2024-01-12 09:00", "2024-01-19 09:00" } },
	{ "step over days of month", "0 0 */10 * *", "2024-01-25 00:00",
	  { "2024-01-31 00:00", "2024-02-01 00:00", "2024-02-11 00:00", "2024-02-21 00:00" } },
	{ "list of a value, a range and a stepped range", "5,10-12,50-59/3 * * * *", "2024-01-01 00:00",
	  { "2024-01-01 00:05", "2024-01-01 00:10", "2024-01-01 00:11", "2024-01-01 00:12", "2024-01-01 00:50" } },
	{ "N/S runs from N to the end", "10/20 * * * *", "2024-01-01 00:00",
	  { "2024-01-01 00:10", "2024-01-01 00:30", "2024-01-01 00:50", "2024-01-01 01:10" } },
	{ "new year", "0 0 1 1 *", "2024-12-31 23:59:59", { "2025-01-01 00:00", "2026-01-01 00:00" } },
	{ "last minute of the year", "59 23 31 12 *", "2024-12-31 23:59", { "2025-12-31 23:59" } },
	{ "weekdays stepped in one month", "0 0 * 2 1-5/2", "2024-01-31 00:00",
	  { "2024-02-02 00:00", "2024-02-05 00:00", "2024-02-07 00:00", "2024-02-09 00:00" } },
	{ "30 February or a Monday", "0 6 30 2 1", "2024-01-01 00:00", { "2024-02-05 06:00", "2024-02-12 06:00" } },
	{ "hours list and month range", "0 8,20 * 11-12 *", "2024-06-15 10:00",
	  { "2024-11-01 08:00", "2024-11-01 20:00", "2024-11-02 08:00" } },
	{ "1 January on a Sunday: eleven years apart", "0 0 1 1 */7", "2023-01-02 00:00",
	  { "2034-01-01 00:00", "2040-01-01 00:00" } },
	{ "29 February on a Sunday: 28 years apart", "0 0 29 2 */7", "2032-03-01 00:00", { "2060-02-29 00:00" } },
	{ "dst does not exist in UTC", "30 2 * * *", "2024-03-31 00:00", { "2024-03-31 02:30", "2024-04-01 02:30" } },
};

static void test_next_case(void **state)
{
	const next_case_t *c = *state;
	loom_cron_t cron;
	char *err = NULL;
	if (loom_cron_parse(c->expr, &cron, &err) < 0)
		fail_msg("%s: '%s' did not parse: %s", c->label, c->expr, err);
	int64_t t = utc(c->start);
	for (size_t i = 0; i < MAX_NEXT && c->want[i]; i++) {
		int64_t next;
		if (loom_cron_next(&cron, t, &next) < 0)
			fail_msg("%s: no next time after %lld", c->label, (long long)t);
		char got[32], want[32];
		fmt(got, next);
		fmt(want, utc(c->want[i]));
		if (strcmp(got, want) != 0)
			fail_msg("%s: '%s' next #%zu: got %s, want %s", c->label, c->expr, i + 1, got, want);
		t = next;
	}
}

/* ---- must fail -------------------------------------------------------------- */

typedef struct bad_case {
	const char *expr;
	const char *want;
} bad_case_t;

static const bad_case_t bad_cases[] = {
	{ "*/0 * * * *", "expected a step of at least 1 in the minute field, found '0'" },
	{ "* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4" },
	{ "* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 6" },
	{ "", "expected 5 fields (minute hour day-of-month month day-of-week), found 0" },
	{ "60 * * * *", "expected minute values 0-59, found '60'" },
	{ "* 24 * * *", "expected hour values 0-23, found '24'" },
	{ "* * 0 * *", "expected day-of-month values 1-31, found '0'" },
	{ "* * 32 * *", "expected day-of-month values 1-31, found '32'" },
	{ "* * * 13 *", "expected month values 1-12, found '13'" },
	{ "* * * 0 *", "expected month values 1-12, found '0'" },
	{ "* * * * 8", "expected day-of-week values 0-7, found '8'" },
	{ "* 19-7 * * *", "expected a range A-B with A <= B in the hour field, found '19-7'" },
	{ "1,,2 * * * *", "expected no empty item in the minute field, found '1,,2'" },
	{ "1, * * * *", "expected no empty item in the minute field, found '1,'" },
	{ "a * * * *", "expected *, N, A-B, */N or A-B/N in the minute field, found 'a'" },
	{ "* * * JAN *", "expected *, N, A-B, */N or A-B/N in the month field, found 'JAN'" },
	{ "5- * * * *", "expected *, N, A-B, */N or A-B/N in the minute field, found '5-'" },
	{ "*-5 * * * *", "expected *, N, A-B, */N or A-B/N in the minute field, found '*-5'" },
	{ "-1 * * * *", "expected *, N, A-B, */N or A-B/N in the minute field, found '-1'" },
	{ "*/ * * * *", "expected a number after '/' in the minute field, found '*/'" },
	{ "* */2x * * *", "expected a number after '/' in the hour field, found '*/2x'" },
	{ "* * * * 1-5/0", "expected a step of at least 1 in the day-of-week field, found '0'" },
	{ "99999 * * * *", "expected *, N, A-B, */N or A-B/N in the minute field, found '99999'" },
	{ "0 0 30 2 *", "expected a day of month that occurs in the chosen months, found day '30' of month '2'" },
	{ "0 0 31 4,6,9,11 *",
	  "expected a day of month that occurs in the chosen months, found day '31' of month '4,6,9,11'" },
};

static void test_bad_case(void **state)
{
	const bad_case_t *c = *state;
	loom_cron_t cron;
	char *err = NULL;
	if (loom_cron_parse(c->expr, &cron, &err) == 0)
		fail_msg("'%s' parsed, want: %s", c->expr, c->want);
	if (strcmp(err, c->want) != 0)
		fail_msg("'%s': got '%s', want '%s'", c->expr, err, c->want);
	free(err);
}

/* ---- schedules in loom.yaml -------------------------------------------------- */

typedef struct sched_case {
	const char *label;
	const char *yaml;             /* appended after "state_dir: ." */
	const char *want[4];          /* wanted diag texts; none: it loads */
	long long every_ms;           /* loaded: schedules[0].every_ms */
	bool enabled;                 /* loaded: schedules[0].enabled */
} sched_case_t;

static const sched_case_t sched_cases[] = {
	{ "an interval", "schedules:\n  - name: hr\n    agent: hr\n    profiles: [full-import, delta-sync]\n"
	  "    every: 1h\n", { NULL }, 3600000, true },
	{ "a cron, disabled", "schedules:\n  - { name: hr, agent: hr, profiles: full-import, cron: '0 * * * *', "
	  "enabled: false }\n", { NULL }, 0, false },
	{ "a bad cron", "schedules:\n  - name: hr\n    agent: hr\n    profiles: [full-import]\n"
	  "    cron: \"*/0 * * * *\"\n",
	  { "@F@:6:12: key 'schedules[0].cron': bad value '*/0 * * * *': expected a step of at least 1 in the "
	    "minute field, found '0'" }, 0, false },
	{ "both", "schedules:\n  - name: hr\n    agent: hr\n    profiles: [full-import]\n    every: 1h\n"
	  "    cron: '0 * * * *'\n",
	  { "@F@:7:12: key 'schedules[0]': schedule 'hr' has both 'every' and 'cron': expected one of them" }, 0, false },
	{ "neither", "schedules:\n  - name: hr\n    agent: hr\n    profiles: [full-import]\n",
	  { "@F@:3:11: key 'schedules[0]': schedule 'hr' has neither 'every' nor 'cron': expected one of them" }, 0, false },
	{ "a name used twice", "schedules:\n  - { name: a, agent: hr, profiles: export, every: 1m }\n"
	  "  - { name: a, agent: hr, profiles: export, every: 2m }\n",
	  { "@F@:4:13: key 'schedules[1].name': schedule name 'a' is already used at line 3: expected a unique name" }, 0, false },
};

static void test_sched_case(void **state)
{
	const sched_case_t *c = *state;
	const char *base = getenv("TMPDIR");
	char *dir = loom_sprintf("%s/loom-test-cron.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	char *path = loom_sprintf("%s/loom.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "state_dir: .\n%s", c->yaml);
	fclose(f);
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	loom_cfg_diags_t diags;
	int rc = loom_deploy_load(path, &cfg, &diags);
	size_t nwant = 0;
	while (nwant < N_ELEMS(c->want) && c->want[nwant])
		nwant++;
	loom_buf_t got = LOOM_BUF_INIT;
	for (size_t i = 0; i < diags.n; i++)
		loom_buf_printf(&got, "%s\n", diags.v[i].text);
	loom_buf_t want = LOOM_BUF_INIT;
	for (size_t i = 0; i < nwant; i++) {
		const char *w = c->want[i];
		for (const char *at; (at = strstr(w, "@F@")); w = at + 3) {
			loom_buf_add(&want, w, (size_t)(at - w));
			loom_buf_adds(&want, path);
		}
		loom_buf_printf(&want, "%s\n", w);
	}
	if (strcmp(loom_buf_cstr(&got), loom_buf_cstr(&want)) != 0)
		fail_msg("%s: diags\n%s\nwant\n%s", c->label, loom_buf_cstr(&got), loom_buf_cstr(&want));
	assert_int_equal(rc, nwant ? -1 : 0);
	if (nwant == 0) {
		assert_int_equal(cfg.schedules.n, 1);
		const loom_deploy_schedule_t *s = cfg.schedules.v;
		assert_int_equal(s->every_ms, c->every_ms);
		assert_int_equal(s->enabled, c->enabled);
	}
	loom_buf_release(&got);
	loom_buf_release(&want);
	loom_cfg_diags_release(&diags);
	loom_deploy_release(&cfg);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

int main(void)
{
	size_t n = N_ELEMS(next_cases) + N_ELEMS(bad_cases) + N_ELEMS(sched_cases), k = 0;
	struct CMUnitTest *tests = calloc(n, sizeof *tests);
	for (size_t i = 0; i < N_ELEMS(next_cases); i++, k++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_next_case, (void *)&next_cases[i]);
		tests[k].name = next_cases[i].label;
	}
	for (size_t i = 0; i < N_ELEMS(bad_cases); i++, k++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_bad_case, (void *)&bad_cases[i]);
		tests[k].name = bad_cases[i].expr[0] ? bad_cases[i].expr : "(empty)";
	}
	for (size_t i = 0; i < N_ELEMS(sched_cases); i++, k++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_sched_case, (void *)&sched_cases[i]);
		tests[k].name = sched_cases[i].label;
	}
	int rc = _cmocka_run_group_tests("cron", tests, n, NULL, NULL);
	free(tests);
	return rc;
}
