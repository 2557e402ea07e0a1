/* engine_schedule.c - schedules: run profiles started by the engine itself,
 * on an interval or a cron expression (config/loom.yaml `schedules`).
 *
 * States of one schedule (this block and the code change together):
 *
 *   idle --due (tick)--> queued --engine free, no other sequence--> running
 *   running --step succeeded, more steps--> running (next profile)
 *   running --last step succeeded | a step did not succeed | the run could
 *            not start--> idle (last_status, last_message set)
 *   queued|running --due again--> unchanged, `skipped` counted and logged
 *
 * sched_tick() runs every second: it marks due schedules queued and computes
 * their next due time from the wall clock (UTC), then sched_advance() starts
 * work. One sequence runs at a time (the engine runs one run at a time, and a
 * sequence holds its place between its steps), so two sequences of the same
 * agent never overlap; queued sequences start in the order they came due. A
 * run started by loomctl makes a queued sequence, or the next step of a
 * running one, wait until it ends.
 *
 * eng_run_finish() calls eng_sched_run_finished() for every run; when the run
 * is the running sequence's step, its status is kept and a zero-delay timer
 * calls sched_advance() (never from inside eng_run_finish, whose callers
 * still hold the finished run's context).
 *
 * Nothing is persisted: after a restart every schedule's next due time is
 * computed from the current time, so missed times are not caught up.
 * Intervals count from the Unix epoch (every: 1h runs on the hour, UTC).
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_bus.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 1000

typedef enum { SCHED_IDLE, SCHED_QUEUED, SCHED_RUNNING } sched_state_t;

static const char *const state_names[] = { "idle", "queued", "running" };

struct eng_sched {
	const loom_deploy_schedule_t *cfg; /* as configured (borrowed from the deployment) */
	eng_agent_t *agent;            /* whose profiles */
	sched_state_t state;           /* see the block above */
	int64_t next_us;               /* next due, wall clock; 0 when disabled */
	uint64_t queued_order;         /* when queued: position among queued schedules */
	size_t step;                   /* running: index of the profile in progress */
	uint64_t run_id;               /* running: its run (0 while it is being started) */
	bool starting;                 /* running: inside eng_run_start() for its step */
	bool step_done;                /* running: that run has finished */
	char *step_status;             /* running: its status, once done */
	char *step_message;            /* running: its message, once done */
	int64_t last_start_us;         /* when the last sequence started; 0: never */
	uint64_t last_run_id;          /* the last run started */
	char *last_status;             /* how the last sequence ended; NULL: none yet */
	char *last_message;            /* why it stopped, or NULL */
	uint64_t skipped;              /* times due again while queued or running */
};

/* The next due time after now_us, in µs. */
static int64_t next_due(const eng_sched_t *s, int64_t now_us)
{
	if (!s->cfg->enabled)
		return 0;
	if (s->cfg->every_ms) {
		int64_t every_us = s->cfg->every_ms * 1000;
		return (now_us / every_us + 1) * every_us;
	}
	int64_t next;
	if (loom_cron_next(&s->cfg->spec, now_us / 1000000, &next) < 0)
		return 0; /* cannot happen for a parsed expression */
	return next * 1000000;
}

int eng_sched_load(engine_t *e, const loom_deploy_t *cfg, char **ret_error)
{
	loom_buf_t errors = LOOM_BUF_INIT;
	const loom_deploy_schedule_t *v = cfg->schedules.v;
	e->nscheds = cfg->schedules.n;
	e->scheds = loom_calloc(e->nscheds ? e->nscheds : 1, sizeof *e->scheds);
	for (size_t i = 0; i < e->nscheds; i++) {
		const loom_deploy_schedule_t *c = &v[i];
		eng_sched_t *s = &e->scheds[i];
		s->cfg = c;
		s->agent = eng_agent_find(e, c->agent.text);
		if (s->agent == NULL)
			loom_buf_printf(&errors, "%s:%u:%u: key 'schedules[%zu].agent': schedule '%s': no agent '%s' "
			    "(agents/%s.yaml does not exist)\n", cfg->path, c->agent.line, c->agent.column, i,
			    c->name.text, c->agent.text, c->agent.text);
		for (size_t k = 0; k < c->profiles.n; k++)
			if (!eng_run_profile_known(c->profiles.v[k]))
				loom_buf_printf(&errors, "%s:%u:%u: key 'schedules[%zu].profiles': schedule '%s': "
				    "unknown run profile '%s': expected full-import, delta-import, full-sync, delta-sync "
				    "or export\n", cfg->path, c->name.line, c->name.column, i, c->name.text,
				    c->profiles.v[k]);
	}
	if (errors.len == 0) {
		loom_buf_release(&errors);
		return 0;
	}
	errors.data[--errors.len] = '\0'; /* the last newline */
	*ret_error = loom_strdup(loom_buf_cstr(&errors));
	loom_buf_release(&errors);
	eng_sched_free(e);
	return -1;
}

static void sched_clear_step(eng_sched_t *s)
{
	free(s->step_status);
	free(s->step_message);
	s->step_status = s->step_message = NULL;
	s->step_done = false;
	s->run_id = 0;
}

void eng_sched_free(engine_t *e)
{
	if (e->sched_timer && e->daemon)
		loom_loop_cancel_timer(loom_daemon_loop(e->daemon), e->sched_timer);
	e->sched_timer = 0;
	for (size_t i = 0; i < e->nscheds; i++) {
		sched_clear_step(&e->scheds[i]);
		free(e->scheds[i].last_status);
		free(e->scheds[i].last_message);
	}
	free(e->scheds);
	e->scheds = NULL;
	e->nscheds = 0;
	e->sched_active = NULL;
}

/* Ends the running sequence of s with status (and message, may be NULL). */
static void sched_end(engine_t *e, eng_sched_t *s, const char *status, const char *message)
{
	free(s->last_status);
	free(s->last_message);
	s->last_status = loom_strdup(status);
	s->last_message = message ? loom_strdup(message) : NULL;
	loom_log(strcmp(status, "success") == 0 ? LOOM_LOG_INFO : LOOM_LOG_WARNING,
	    "schedule finished schedule=%s agent=%s status=%s%s%s", s->cfg->name.text, s->cfg->agent.text, status,
	    message ? " message=" : "", message ? loom_log_kv_quote(message) : "");
	sched_clear_step(s);
	s->state = SCHED_IDLE;
	e->sched_active = NULL;
}

/* Starts step s->step of the running sequence s. */
static void sched_start_step(engine_t *e, eng_sched_t *s)
{
	const char *profile = s->cfg->profiles.v[s->step];
	sched_clear_step(s);
	uint64_t id = 0;
	const char *err;
	s->starting = true;
	int rc = eng_run_start(e, s->cfg->agent.text, profile, 0, &id, &err);
	s->starting = false;
	if (rc < 0) {
		char *m = loom_sprintf("step %zu (%s) could not start: %s", s->step + 1, profile, err);
		sched_end(e, s, "failed", m);
		free(m);
		return;
	}
	/* The run may have ended already (it failed at once): then
	 * eng_sched_run_finished() has set step_done. */
	s->run_id = id;
	s->last_run_id = id;
	loom_info("schedule step started schedule=%s step=%zu/%zu profile=%s run=%llu", s->cfg->name.text,
	    s->step + 1, s->cfg->profiles.n, profile, (unsigned long long)id);
}

/* Moves the running sequence on (a step ended: the next one, or the end),
 * starts a step that waits for the engine, or starts the oldest queued
 * sequence; repeats until something has to wait for a run. */
static void sched_advance(engine_t *e)
{
	for (;;) {
		eng_sched_t *s = e->sched_active;
		if (s && s->step_done) {
			const char *profile = s->cfg->profiles.v[s->step];
			if (strcmp(s->step_status, "success") != 0) {
				char *m = loom_sprintf("stopped at step %zu (%s), run %llu: %s%s%s", s->step + 1, profile,
				    (unsigned long long)s->run_id, s->step_status, s->step_message ? ": " : "",
				    s->step_message ? s->step_message : "");
				char *status = loom_strdup(s->step_status);
				sched_end(e, s, status, m);
				free(status);
				free(m);
			} else if (s->step + 1 == s->cfg->profiles.n) {
				sched_end(e, s, "success", NULL);
			} else {
				s->step++;
				sched_clear_step(s);
			}
			continue;
		}
		if (s) {
			if (s->run_id != 0 || e->run != NULL)
				return; /* its run goes on, or it waits for the engine */
			sched_start_step(e, s);
			continue;
		}
		if (e->run)
			return;
		eng_sched_t *first = NULL;
		for (size_t i = 0; i < e->nscheds; i++)
			if (e->scheds[i].state == SCHED_QUEUED &&
			    (first == NULL || e->scheds[i].queued_order < first->queued_order))
				first = &e->scheds[i];
		if (first == NULL)
			return;
		first->state = SCHED_RUNNING;
		first->step = 0;
		first->last_start_us = loom_now_us();
		sched_clear_step(first);
		e->sched_active = first;
	}
}

static int sched_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	int64_t now = loom_now_us();
	for (size_t i = 0; i < e->nscheds; i++) {
		eng_sched_t *s = &e->scheds[i];
		if (s->next_us == 0)
			continue;
		int64_t fresh = next_due(s, now);
		if (fresh < s->next_us) {
			/* The clock went back: due times follow it. */
			s->next_us = fresh;
			continue;
		}
		if (now < s->next_us)
			continue;
		s->next_us = fresh;
		if (s->state != SCHED_IDLE) {
			s->skipped++;
			loom_warning("schedule skipped schedule=%s agent=%s reason=%s skipped=%llu", s->cfg->name.text,
			    s->cfg->agent.text, s->state == SCHED_QUEUED ? "still-queued" : "still-running",
			    (unsigned long long)s->skipped);
			continue;
		}
		s->state = SCHED_QUEUED;
		s->queued_order = ++e->sched_order;
		loom_info("schedule due schedule=%s agent=%s profiles=%zu", s->cfg->name.text, s->cfg->agent.text,
		    s->cfg->profiles.n);
	}
	sched_advance(e);
	return 0;
}

static int sched_kick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	sched_advance(e);
	return 0;
}

void eng_sched_start(engine_t *e)
{
	int64_t now = loom_now_us();
	size_t enabled = 0;
	for (size_t i = 0; i < e->nscheds; i++) {
		e->scheds[i].next_us = next_due(&e->scheds[i], now);
		enabled += e->scheds[i].cfg->enabled;
	}
	if (e->nscheds)
		e->sched_timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), TICK_MS, 0, sched_tick, e);
	if (e->nscheds)
		loom_info("schedules loaded schedules=%zu enabled=%zu", e->nscheds, enabled);
}

void eng_sched_run_finished(engine_t *e, uint64_t id, const char *status, const char *message)
{
	eng_sched_t *s = e->sched_active;
	/* While eng_run_start() starts our step no other run can end, and the
	 * step's run id is not known yet. */
	if (s == NULL || s->step_done || !(s->starting || (s->run_id != 0 && s->run_id == id)))
		return;
	s->step_done = true;
	s->run_id = id;
	s->step_status = loom_strdup(status);
	s->step_message = message && message[0] ? loom_strdup(message) : NULL;
	loom_loop_add_timer(loom_daemon_loop(e->daemon), 0, 1, sched_kick, e);
}

/* "1h", "90s", "1500ms": the interval as a duration a config would hold. */
static char *fmt_every(long long ms)
{
	static const struct { long long ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (ms % units[i].ms == 0)
			return loom_sprintf("%lld%s", ms / units[i].ms, units[i].unit);
	return loom_sprintf("%lldms", ms);
}

void eng_sched_query(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__ScheduleListRequest *rq = (const Loom__ScheduleListRequest *)m;
	const char *err;
	Loom__ScheduleListReply rep = LOOM__SCHEDULE_LIST_REPLY__INIT;
	rep.schedules = loom_calloc(e->nscheds ? e->nscheds : 1, sizeof *rep.schedules);
	for (size_t i = 0; i < e->nscheds; i++) {
		const eng_sched_t *s = &e->scheds[i];
		if (rq->name[0] && strcmp(rq->name, s->cfg->name.text) != 0)
			continue;
		Loom__ScheduleInfo *x = loom_malloc(sizeof *x);
		loom__schedule_info__init(x);
		x->name = s->cfg->name.text;
		x->agent = s->cfg->agent.text;
		x->n_profiles = s->cfg->profiles.n;
		x->profiles = s->cfg->profiles.v;
		x->every = s->cfg->every_ms ? fmt_every(s->cfg->every_ms) : loom_strdup("");
		x->cron = s->cfg->cron.text ? s->cfg->cron.text : "";
		x->enabled = s->cfg->enabled;
		x->next_due = s->next_us;
		x->last_start = s->last_start_us;
		x->last_status = s->last_status ? s->last_status : "";
		x->last_message = s->last_message ? s->last_message : "";
		x->last_run_id = s->last_run_id;
		x->state = (char *)state_names[s->state];
		x->skipped = s->skipped;
		rep.schedules[rep.n_schedules++] = x;
	}
	if (rq->name[0] && rep.n_schedules == 0) {
		char *t = loom_sprintf("no schedule '%s' is configured", rq->name);
		if (loom_bus_reply_error(loom_daemon_bus(e->daemon), env, LOOM__ERROR__CODE__BAD_REQUEST, false, t,
		    &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(t);
	} else if (loom_bus_reply(loom_daemon_bus(e->daemon), env, &rep.base, &err) < 0) {
		loom_warning("cannot reply to from=%s type=%s: %s", env->from, rep.base.descriptor->name, err);
	}
	/* The strings are borrowed, except every. */
	for (size_t i = 0; i < rep.n_schedules; i++) {
		free(rep.schedules[i]->every);
		free(rep.schedules[i]);
	}
	free(rep.schedules);
}
