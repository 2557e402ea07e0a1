/* loomctl_schedule.c - `loomctl schedule`: the engine's schedules, when
 * each runs next and how it last ended; `loomctl live`: the live streams,
 * the other way the engine starts runs by itself. */
#include "loomctl.h"
#include "engine.pb-c.h"
#include "loom_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctl_schedule(ctl_t *ctl, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: loomctl schedule [NAME]\n");
		return 2;
	}
	Loom__ScheduleListRequest rq = LOOM__SCHEDULE_LIST_REQUEST__INIT;
	if (argc == 2)
		rq.name = argv[1];
	Loom__ScheduleListReply *r = (Loom__ScheduleListReply *)ctl_ask_engine(ctl, &rq.base,
	    &loom__schedule_list_reply__descriptor, "schedule");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		printf("%-16s %-12s %-28s %-20s %-20s %-20s %-22s %s\n", "NAME", "AGENT", "PROFILES", "WHEN",
		    "NEXT (UTC)", "LAST START (UTC)", "LAST STATUS", "ENABLED");
		for (size_t i = 0; i < r->n_schedules; i++) {
			const Loom__ScheduleInfo *x = r->schedules[i];
			loom_buf_t profiles = LOOM_BUF_INIT, when = LOOM_BUF_INIT;
			for (size_t k = 0; k < x->n_profiles; k++)
				loom_buf_printf(&profiles, "%s%s", k ? "," : "", x->profiles[k]);
			if (x->cron[0])
				loom_buf_printf(&when, "cron %s", x->cron);
			else
				loom_buf_printf(&when, "every %s", x->every);
			char next[32], last[32];
			ctl_fmt_time(next, sizeof next, x->next_due);
			ctl_fmt_time(last, sizeof last, x->last_start);
			const char *status = strcmp(x->state, "idle") != 0 ? x->state
			    : x->last_status[0] ? x->last_status : "-";
			printf("%-16s %-12s %-28s %-20s %-20s %-20s %-22s %s\n", x->name, x->agent, loom_buf_cstr(&profiles),
			    loom_buf_cstr(&when), next, last, status, x->enabled ? "yes" : "no");
			if (x->last_message[0])
				printf("  last: %s\n", x->last_message);
			loom_buf_release(&profiles);
			loom_buf_release(&when);
		}
	}
	loom__schedule_list_reply__free_unpacked(r, NULL);
	return 0;
}

/* "1.2s", "-" */
static void fmt_age(char *out, size_t n, int64_t now_us, int64_t us)
{
	if (us == 0)
		snprintf(out, n, "-");
	else
		snprintf(out, n, "%.1fs", (double)(now_us - us) / 1e6);
}

int ctl_live(ctl_t *ctl, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: loomctl live [AGENT]\n");
		return 2;
	}
	Loom__LiveStatusRequest rq = LOOM__LIVE_STATUS_REQUEST__INIT;
	if (argc == 2)
		rq.agent = argv[1];
	Loom__LiveStatusReply *r = (Loom__LiveStatusReply *)ctl_ask_engine(ctl, &rq.base,
	    &loom__live_status_reply__descriptor, "live");
	if (r == NULL)
		return 1;
	if (ctl->json) {
		ctl_print_json(&r->base);
		loom__live_status_reply__free_unpacked(r, NULL);
		return 0;
	}
	if (r->n_agents == 0)
		printf("no agent has live mode (live.enabled in config/agents/NAME.yaml)\n");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	for (size_t i = 0; i < r->n_agents; i++) {
		const Loom__LiveInfo *x = r->agents[i];
		char since[32], change[32], batch[32], cookie[32], retry[32];
		ctl_fmt_time(since, sizeof since, x->since);
		ctl_fmt_time(change, sizeof change, x->last_change);
		fmt_age(batch, sizeof batch, now, x->last_batch);
		fmt_age(cookie, sizeof cookie, now, x->cookie_at);
		ctl_fmt_time(retry, sizeof retry, x->retry_at);
		loom_buf_t exp = LOOM_BUF_INIT;
		for (size_t k = 0; k < x->n_export; k++)
			loom_buf_printf(&exp, "%s%s", k ? "," : "", x->export[k]);
		printf("%-16s %-8s since %s UTC, session %llu\n", x->agent, x->state, since, (unsigned long long)x->session);
		printf("  last change     %s UTC\n", change);
		printf("  last batch      %s ago\n", batch);
		printf("  cookie age      %s (since the stored watermark was written)\n", cookie);
		printf("  staged          %llu objects in %llu batches\n", (unsigned long long)x->changes,
		    (unsigned long long)x->batches);
		printf("  sequence        %s; %llu started (sync, export to %s); last %s, run %llu\n", x->sequence,
		    (unsigned long long)x->sequences, exp.len ? loom_buf_cstr(&exp) : "-",
		    x->last_status[0] ? x->last_status : "-", (unsigned long long)x->last_run_id);
		if (x->last_error[0] && strcmp(x->state, "up") != 0)
			printf("  last error      %s\n", x->last_error);
		if (strcmp(x->state, "down") == 0)
			printf("  retry at        %s UTC\n", retry);
		loom_buf_release(&exp);
	}
	loom__live_status_reply__free_unpacked(r, NULL);
	return 0;
}
