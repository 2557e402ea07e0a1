/* loomctl_schedule.c - `loomctl schedule`: the engine's schedules, when
 * each runs next and how it last ended. */
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
