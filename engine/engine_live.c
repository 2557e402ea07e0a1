/* engine_live.c - live mode: agents whose file sets live.enabled stream the
 * changes of their system as they happen (docs/ldap.md "Live mode"); the
 * engine stages them into the connector space at once and, as configured
 * (live.sync, live.export), runs a delta sync of the agent and exports to
 * the target agents shortly after, coalescing changes that arrive within
 * live.window.
 *
 * The stream (per live agent; this block and the code change together):
 *
 *   down --retry time reached (tick), or LiveHello from the agent-->
 *        opening: ImportRequest{live, delta, watermark, run_id = session} sent
 *   opening|up --ImportBatch{live} of the session--> up: staged, watermark
 *        stored in the same write, run record written durably, then one
 *        ImportCredit (the acknowledgement) -- only after that does the
 *        agent send its next batch, so at most one batch is unacknowledged
 *   opening|up --ImportBatch{live, failed | watermark_lost}--> down (error kept)
 *   opening|up --agent silent past its timeout (and no batch held)--> down
 *   down: retried after a backoff of 1 s doubling to 60 s (reset by a batch)
 *
 * A batch that arrives while a run is in progress is held (the engine runs
 * one run at a time) and staged as soon as the run ends. A batch with
 * objects is staged as a run of profile live-import (counters, errors,
 * history as for any import); an empty one (keepalive) only stores the
 * watermark. Nothing is acknowledged before it is durable, and the
 * watermark is written with the objects it follows: after a crash the agent
 * is sent the watermark that matches what was staged, so nothing is lost
 * and nothing is staged twice in effect (staging compares with the
 * hologram).
 *
 * The sequence (per live agent):
 *
 *   idle --live-import staged a change--> pending (window timer armed)
 *   pending --window over, engine free--> running: delta-sync of the agent
 *        (when live.sync), then export to each live.export agent, one run
 *        after another as the engine is free
 *   running --a step ends failed or stopped--> idle (last_status names it)
 *   running --last step ends--> idle, or pending again if changes arrived
 *        meanwhile (they are in the delta family: the next sync takes them)
 *
 * A step that ends completed-errors does not stop the sequence: the other
 * objects' exports still go (the errors are in the run's record). At engine
 * start a live agent's sequence is pending when its delta family or a
 * target's pending exports hold anything (what was due when the engine
 * stopped was in memory only).
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_TICK_MS 250
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

typedef enum { LIVE_DOWN, LIVE_OPENING, LIVE_UP } live_state_t;
static const char *const live_states[] = { "down", "opening", "up" };

struct eng_live {
	eng_agent_t *agent;            /* the live agent */
	eng_agent_t **targets;         /* live.export agents */
	size_t ntargets;
	live_state_t state;            /* the stream, see the block above */
	uint64_t session;              /* the stream's session id (ImportRequest.run_id) */
	int64_t since_us;              /* wall clock: state entered */
	int64_t heard_ms;              /* monotonic: last message of the session */
	int64_t retry_ms;              /* monotonic: when down, when to open again */
	long long backoff_ms;          /* the next backoff */
	int64_t last_change_us;        /* wall clock: last batch with objects */
	int64_t last_batch_us;         /* wall clock: last batch */
	int64_t cookie_us;             /* wall clock: watermark last stored */
	uint64_t changes;              /* objects staged since start */
	uint64_t batches;              /* batches staged since start */
	char *last_error;              /* why the stream last went down, or NULL */
	Loom__ImportBatch *held;       /* a batch waiting for the run in progress to end */
	char *held_from;               /* its sender */
	/* the sequence */
	bool pending;                  /* changes staged that no sequence has taken yet */
	int64_t due_ms;                /* monotonic: when pending, the window's end */
	bool running;                  /* a sequence is in progress */
	size_t step;                   /* running: 0 delta-sync (when sync), then the targets */
	uint64_t run_id;               /* running: the step's run (0: not started) */
	bool starting;                 /* inside eng_run_start() for the step */
	bool step_done;                /* the step's run has ended */
	char *step_status;             /* its status */
	uint64_t sequences;            /* sequences started */
	char *last_status;             /* how the last sequence ended, or NULL */
	uint64_t last_run_id;          /* the last run it started */
};

static void set_str(char **p, const char *v)
{
	free(*p);
	*p = v ? loom_strdup(v) : NULL;
}

int eng_live_load(engine_t *e, char **ret_error)
{
	loom_buf_t errors = LOOM_BUF_INIT;
	size_t n = 0;
	for (size_t i = 0; i < e->nagents; i++)
		n += e->agents[i].cfg->live.enabled;
	e->lives = loom_calloc(n ? n : 1, sizeof *e->lives);
	for (size_t i = 0; i < e->nagents; i++) {
		eng_agent_t *a = &e->agents[i];
		const loom_agentcfg_live_t *lc = &a->cfg->live;
		if (!lc->enabled) {
			if (lc->export.n)
				loom_buf_printf(&errors, "%s: key 'live.export': live mode is not enabled (live.enabled: true)\n",
				    a->cfg->path);
			continue;
		}
		eng_live_t *l = &e->lives[e->nlives++];
		l->agent = a;
		l->targets = loom_calloc(lc->export.n ? lc->export.n : 1, sizeof *l->targets);
		for (size_t k = 0; k < lc->export.n; k++) {
			eng_agent_t *t = eng_agent_find(e, lc->export.v[k]);
			if (t == NULL)
				loom_buf_printf(&errors, "%s: key 'live.export': no agent '%s' (agents/%s.yaml does not exist)\n",
				    a->cfg->path, lc->export.v[k], lc->export.v[k]);
			else
				l->targets[l->ntargets++] = t;
		}
	}
	if (errors.len == 0) {
		loom_buf_release(&errors);
		return 0;
	}
	errors.data[--errors.len] = '\0';
	*ret_error = loom_buf_steal(&errors);
	eng_live_free(e);
	return -1;
}

void eng_live_free(engine_t *e)
{
	if (e->live_timer && e->daemon)
		loom_loop_cancel_timer(loom_daemon_loop(e->daemon), e->live_timer);
	e->live_timer = 0;
	for (size_t i = 0; i < e->nlives; i++) {
		eng_live_t *l = &e->lives[i];
		free(l->targets);
		free(l->last_error);
		free(l->step_status);
		free(l->last_status);
		if (l->held)
			loom__import_batch__free_unpacked(l->held, NULL);
		free(l->held_from);
	}
	free(e->lives);
	e->lives = NULL;
	e->nlives = 0;
}

static eng_live_t *live_find(engine_t *e, const char *agent)
{
	for (size_t i = 0; i < e->nlives; i++)
		if (strcmp(e->lives[i].agent->cfg->name, agent) == 0)
			return &e->lives[i];
	return NULL;
}

static void set_state(eng_live_t *l, live_state_t s)
{
	if (l->state != s)
		l->since_us = loom_now_us();
	l->state = s;
}

/* The stream is down (why); opened again after the backoff. */
static void live_down(eng_live_t *l, const char *why)
{
	set_state(l, LIVE_DOWN);
	set_str(&l->last_error, why);
	if (l->backoff_ms < BACKOFF_MIN_MS)
		l->backoff_ms = BACKOFF_MIN_MS;
	l->retry_ms = loom_mono_ms() + l->backoff_ms;
	loom_warning("live stream down agent=%s retry_in_ms=%lld reason=%s", l->agent->cfg->name, l->backoff_ms,
	    loom_log_kv_quote(why));
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

/* Sends ImportRequest{live} from the stored watermark. */
static void live_open(engine_t *e, eng_live_t *l)
{
	const loom_agentcfg_t *ac = l->agent->cfg;
	char *wmkey = loom_sprintf("wm:%s", ac->name);
	void *wm = NULL;
	size_t wmlen = 0;
	const char *err = NULL;
	int rc = loom_store_get(e->store, CF_META, wmkey, strlen(wmkey), &wm, &wmlen, &err);
	free(wmkey);
	if (rc < 0) {
		char *m = loom_sprintf("cannot read the watermark: %s", err);
		live_down(l, m);
		free(m);
		return;
	}
	if (rc == 0 || wmlen == 0) {
		free(wm);
		live_down(l, "no watermark stored: run a full import of the agent first");
		return;
	}
	Loom__ImportRequest rq = LOOM__IMPORT_REQUEST__INIT;
	rq.agent = ac->name;
	/* Unique across engine restarts, so a batch of an older stream is never
	 * taken for one of this one. */
	l->session = (uint64_t)loom_now_us();
	rq.run_id = l->session;
	rq.delta = true;
	rq.live = true;
	rq.watermark.data = wm;
	rq.watermark.len = wmlen;
	rq.batch_size = (uint32_t)ac->import_batch;
	rq.credit = 1;
	rc = loom_bus_send(loom_daemon_bus(e->daemon), l->agent->service, &rq.base, NULL, NULL, &err);
	free(wm);
	if (rc < 0) {
		char *m = loom_sprintf("cannot reach agent '%s': %s", l->agent->service, err);
		live_down(l, m);
		free(m);
		return;
	}
	set_state(l, LIVE_OPENING);
	l->heard_ms = loom_mono_ms();
	loom_info("live stream opening agent=%s session=%llu", ac->name, (unsigned long long)l->session);
}

static void send_ack(engine_t *e, eng_live_t *l, const char *to)
{
	Loom__ImportCredit c = LOOM__IMPORT_CREDIT__INIT;
	c.run_id = l->session;
	c.credit = 1;
	const char *err;
	if (loom_bus_send(loom_daemon_bus(e->daemon), to, &c.base, NULL, NULL, &err) < 0)
		loom_warning("cannot acknowledge a live batch agent=%s: %s", l->agent->cfg->name, err);
}

static uint64_t counter(const eng_run_t *r, const char *name)
{
	for (size_t i = 0; i < r->ncounters; i++)
		if (strcmp(r->counters[i].name, name) == 0)
			return r->counters[i].count;
	return 0;
}

static int on_window(loom_loop_t *loop, void *arg);

/* Stages a live batch of the current session (the engine is free). */
static void live_stage(engine_t *e, eng_live_t *l, const char *from, Loom__ImportBatch *ib)
{
	const char *agent = l->agent->cfg->name;
	const char *err;
	char *wmkey = loom_sprintf("wm:%s", agent);
	l->batches++;
	l->last_batch_us = loom_now_us();
	if (ib->n_objects == 0 && ib->n_errors == 0) {
		/* Keepalive: the newest cookie only. */
		if (ib->watermark.len) {
			loom_batch_clear(e->batch);
			loom_batch_put(e->batch, CF_META, wmkey, strlen(wmkey), (const char *)ib->watermark.data,
			    ib->watermark.len);
			if (loom_store_write_ex(e->store, e->batch, false, &err) < 0) {
				char *m = loom_sprintf("cannot store the live watermark: %s", err);
				live_down(l, m);
				free(m);
				free(wmkey);
				return;
			}
			l->cookie_us = l->last_batch_us;
		}
		free(wmkey);
		send_ack(e, l, from);
		return;
	}
	uint64_t id;
	if (eng_run_open(e, l->agent, "live-import", false, &id, &err) < 0) {
		char *m = loom_sprintf("cannot stage live changes: %s", err);
		live_down(l, m);
		free(m);
		free(wmkey);
		return;
	}
	eng_run_t *r = e->run;
	r->delta = true;
	for (size_t i = 0; i < ib->n_errors; i++) {
		const Loom__RunObjectError *er = ib->errors[i];
		eng_run_error(e, er->anchor, er->dn, er->code, er->message, er->where, er->retryable);
	}
	loom_batch_clear(e->batch);
	for (size_t i = 0; i < ib->n_objects; i++)
		eng_import_stage(e, e->batch, ib->objects[i]);
	/* The watermark in the same write as the objects it follows. */
	if (ib->watermark.len)
		loom_batch_put(e->batch, CF_META, wmkey, strlen(wmkey), (const char *)ib->watermark.data,
		    ib->watermark.len);
	free(wmkey);
	bool changed = counter(r, "adds") || counter(r, "updates") || counter(r, "renames") || counter(r, "deletes") ||
	    counter(r, "delete-adds") || counter(r, "errors"); /* an export not re-imported is an error that marks the object */
	uint64_t objects = r->objects;
	if (loom_store_write_ex(e->store, e->batch, false, &err) < 0) {
		char *m = loom_sprintf("cannot write to the engine store: %s", err);
		eng_run_finish(e, "failed", m);
		live_down(l, m);
		free(m);
		return;
	}
	/* Durable (the run record is written with fsync) before the acknowledgement. */
	eng_run_finish(e, "success", NULL);
	l->changes += objects;
	l->last_change_us = l->last_batch_us;
	if (ib->watermark.len)
		l->cookie_us = l->last_batch_us;
	send_ack(e, l, from);
	if (changed && (l->agent->cfg->live.sync || l->ntargets) && !l->pending) {
		l->pending = true;
		l->due_ms = loom_mono_ms() + l->agent->cfg->live.window_ms;
		loom_loop_add_timer(loom_daemon_loop(e->daemon), l->agent->cfg->live.window_ms, 1, on_window, e);
	}
}

static void held_drop(eng_live_t *l)
{
	if (l->held)
		loom__import_batch__free_unpacked(l->held, NULL);
	l->held = NULL;
	free(l->held_from);
	l->held_from = NULL;
}

/* Takes ib (frees it, or keeps it held); from is its sender. */
static void live_batch(engine_t *e, eng_live_t *l, const char *from, Loom__ImportBatch *ib)
{
	if (ib->run_id != l->session || l->state == LIVE_DOWN) {
		loom_debug("ignored live batch agent=%s session=%llu (not the open stream)", l->agent->cfg->name,
		    (unsigned long long)ib->run_id);
		goto out;
	}
	l->heard_ms = loom_mono_ms();
	if (ib->failed || ib->watermark_lost) {
		const char *m = ib->message[0] ? ib->message : "the agent ended the live stream";
		if (ib->watermark_lost) {
			char *t = loom_sprintf("%s (watermark lost: run a full import)", m);
			live_down(l, t);
			free(t);
		} else {
			live_down(l, m);
		}
		goto out;
	}
	if (e->run) {
		/* One run at a time: staged when the run in progress ends (the
		 * agent waits for the acknowledgement meanwhile). With credit 1
		 * there is at most one; a newer session's replaces an older's. */
		held_drop(l);
		l->held = ib;
		l->held_from = loom_strdup(from);
		return;
	}
	if (l->state != LIVE_UP) {
		loom_info("live stream up agent=%s session=%llu", l->agent->cfg->name, (unsigned long long)l->session);
		set_state(l, LIVE_UP);
	}
	l->backoff_ms = BACKOFF_MIN_MS;
	live_stage(e, l, from, ib);
out:
	loom__import_batch__free_unpacked(ib, NULL);
}

void eng_live_batch(engine_t *e, Loom__Envelope *env, Loom__ImportBatch *ib)
{
	eng_live_t *l = live_find(e, ib->agent);
	if (l == NULL) {
		loom_warning("dropped a live batch of agent=%s from=%s: the agent has no live mode", ib->agent, env->from);
		loom__import_batch__free_unpacked(ib, NULL);
		return;
	}
	live_batch(e, l, env->from, ib);
}

void eng_live_hello(engine_t *e, Loom__Envelope *env)
{
	const char *err;
	Loom__LiveHello *h = (Loom__LiveHello *)loom_envelope_body(env, &loom__live_hello__descriptor, &err);
	if (h == NULL) {
		loom_warning("dropped malformed LiveHello from=%s: %s", env->from, err);
		return;
	}
	eng_live_t *l = live_find(e, h->agent);
	if (l == NULL) {
		loom_warning("live hello from an agent without live mode agent=%s from=%s", h->agent, env->from);
	} else {
		loom_info("live hello agent=%s: opening the stream", h->agent);
		l->backoff_ms = BACKOFF_MIN_MS;
		held_drop(l);
		live_open(e, l);
	}
	loom__live_hello__free_unpacked(h, NULL);
}

/* Starts or advances sequences and stages held batches, as far as the
 * engine is free. */
static void live_advance(engine_t *e)
{
	for (size_t i = 0; i < e->nlives && e->run == NULL; i++) {
		eng_live_t *l = &e->lives[i];
		if (l->held) {
			Loom__ImportBatch *ib = l->held;
			char *from = l->held_from;
			l->held = NULL;
			l->held_from = NULL;
			live_batch(e, l, from, ib);
			free(from);
		}
	}
	for (size_t i = 0; i < e->nlives; i++) {
		eng_live_t *l = &e->lives[i];
		const loom_agentcfg_live_t *lc = &l->agent->cfg->live;
		size_t nsteps = (lc->sync ? 1 : 0) + l->ntargets;
		for (;;) {
			if (l->running && l->step_done) {
				bool ok = strcmp(l->step_status, "success") == 0 ||
				    strcmp(l->step_status, "completed-errors") == 0;
				if (!ok || l->step + 1 >= nsteps) {
					set_str(&l->last_status, l->step_status);
					l->running = false;
					loom_log(ok ? LOOM_LOG_INFO : LOOM_LOG_WARNING,
					    "live sequence finished agent=%s status=%s run=%llu", l->agent->cfg->name,
					    l->step_status, (unsigned long long)l->run_id);
					free(l->step_status);
					l->step_status = NULL;
					l->step_done = false;
					continue;
				}
				l->step++;
				l->run_id = 0;
				l->step_done = false;
				free(l->step_status);
				l->step_status = NULL;
			}
			if (!l->running) {
				if (!l->pending || loom_mono_ms() < l->due_ms || e->run || nsteps == 0)
					break;
				l->pending = false;
				l->running = true;
				l->step = 0;
				l->run_id = 0;
				l->sequences++;
			}
			if (l->run_id != 0 || e->run != NULL)
				break; /* its run goes on, or it waits for the engine */
			bool sync_step = lc->sync && l->step == 0;
			eng_agent_t *a = sync_step ? l->agent : l->targets[l->step - (lc->sync ? 1 : 0)];
			const char *profile = sync_step ? "delta-sync" : "export";
			uint64_t id = 0;
			const char *err;
			l->starting = true;
			int rc = eng_run_start_ex(e, a->cfg->name, profile, 0, false, &id, &err);
			l->starting = false;
			if (rc < 0) {
				loom_warning("live sequence step could not start agent=%s step=%s/%s: %s", l->agent->cfg->name,
				    profile, a->cfg->name, err);
				set_str(&l->last_status, "failed");
				l->running = false;
				break;
			}
			l->run_id = id;
			l->last_run_id = id;
			if (!l->step_done)
				break;
		}
	}
}

static int on_window(loom_loop_t *loop, void *arg)
{
	(void)loop;
	live_advance(arg);
	return 0;
}

void eng_live_run_finished(engine_t *e, uint64_t id, const char *agent, const char *profile, const char *status)
{
	for (size_t i = 0; i < e->nlives; i++) {
		eng_live_t *l = &e->lives[i];
		/* A stream down (say, for want of a watermark) is reopened at once
		 * after an import of its agent that stored a new one. */
		if (l->state == LIVE_DOWN && strcmp(l->agent->cfg->name, agent) == 0 &&
		    (strcmp(profile, "full-import") == 0 || strcmp(profile, "delta-import") == 0) &&
		    (strcmp(status, "success") == 0 || strcmp(status, "completed-errors") == 0)) {
			l->retry_ms = 0;
			l->backoff_ms = BACKOFF_MIN_MS;
		}
		if (l->running && !l->step_done && (l->starting || (l->run_id != 0 && l->run_id == id))) {
			l->step_done = true;
			l->run_id = id;
			set_str(&l->step_status, status);
		}
	}
	if (e->nlives)
		loom_loop_add_timer(loom_daemon_loop(e->daemon), 0, 1, on_window, e);
}

static int live_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	int64_t now = loom_mono_ms();
	for (size_t i = 0; i < e->nlives; i++) {
		eng_live_t *l = &e->lives[i];
		const loom_agentcfg_t *ac = l->agent->cfg;
		long long limit = ac->timeout_ms > 3 * ac->live.keepalive_ms ? ac->timeout_ms : 3 * ac->live.keepalive_ms;
		if (l->state == LIVE_DOWN && now >= l->retry_ms) {
			live_open(e, l);
		} else if (l->state != LIVE_DOWN && l->held == NULL && now - l->heard_ms > limit) {
			char *m = loom_sprintf("agent '%s' sent nothing for %lld ms (is loom-ma-ldap --agent %s running?)",
			    l->agent->service, (long long)(now - l->heard_ms), ac->name);
			live_down(l, m);
			free(m);
		}
	}
	live_advance(e);
	return 0;
}

/* Whether family cf holds a key of agent (agent \0 ...). */
static bool has_agent_keys(engine_t *e, int cf, const char *agent)
{
	loom_buf_t p = LOOM_BUF_INIT;
	loom_buf_adds(&p, agent);
	loom_buf_addc(&p, '\0');
	loom_iter_t *it = loom_iter_new(e->store, cf);
	loom_iter_seek(it, p.data, p.len);
	bool any = false;
	if (loom_iter_valid(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		any = klen >= p.len && memcmp(k, p.data, p.len) == 0;
	}
	loom_iter_destroy(&it);
	loom_buf_release(&p);
	return any;
}

void eng_live_start(engine_t *e)
{
	if (e->nlives == 0)
		return;
	for (size_t i = 0; i < e->nlives; i++) {
		eng_live_t *l = &e->lives[i];
		l->since_us = loom_now_us();
		l->retry_ms = 0; /* open at the first tick */
		l->backoff_ms = BACKOFF_MIN_MS;
		/* A sequence due when the engine stopped was in memory only: run
		 * one at start when there is work for it, so changes staged before
		 * a crash are synchronized and exported without waiting for the
		 * next live change. */
		bool work = l->agent->cfg->live.sync && has_agent_keys(e, CF_DELTA, l->agent->cfg->name);
		for (size_t k = 0; k < l->ntargets && !work; k++)
			work = has_agent_keys(e, CF_EXPORT, l->targets[k]->cfg->name);
		l->pending = work;
		l->due_ms = loom_mono_ms();
	}
	e->live_timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), LIVE_TICK_MS, 0, live_tick, e);
	loom_info("live agents loaded live=%zu", e->nlives);
}

void eng_live_query(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__LiveStatusRequest *rq = (const Loom__LiveStatusRequest *)m;
	const char *err;
	Loom__LiveStatusReply rep = LOOM__LIVE_STATUS_REPLY__INIT;
	rep.agents = loom_calloc(e->nlives ? e->nlives : 1, sizeof *rep.agents);
	char **seqs = loom_calloc(e->nlives ? e->nlives : 1, sizeof *seqs);
	for (size_t i = 0; i < e->nlives; i++) {
		const eng_live_t *l = &e->lives[i];
		if (rq->agent[0] && strcmp(rq->agent, l->agent->cfg->name) != 0)
			continue;
		Loom__LiveInfo *x = loom_malloc(sizeof *x);
		loom__live_info__init(x);
		x->agent = l->agent->cfg->name;
		x->state = (char *)live_states[l->state];
		x->session = l->session;
		x->since = l->since_us;
		x->last_change = l->last_change_us;
		x->last_batch = l->last_batch_us;
		x->cookie_at = l->cookie_us;
		x->changes = l->changes;
		x->batches = l->batches;
		x->last_error = l->last_error ? l->last_error : "";
		x->retry_at = l->state == LIVE_DOWN ? loom_now_us() + (l->retry_ms - loom_mono_ms()) * 1000 : 0;
		x->n_export = l->agent->cfg->live.export.n;
		x->export = l->agent->cfg->live.export.v;
		const bool sync = l->agent->cfg->live.sync;
		if (l->running)
			seqs[i] = sync && l->step == 0 ? loom_strdup("delta-sync")
			    : loom_sprintf("export %s", l->targets[l->step - (sync ? 1 : 0)]->cfg->name);
		else
			seqs[i] = loom_strdup(l->pending ? "pending" : "idle");
		x->sequence = seqs[i];
		x->sequences = l->sequences;
		x->last_status = l->last_status ? l->last_status : "";
		x->last_run_id = l->last_run_id;
		rep.agents[rep.n_agents++] = x;
	}
	if (rq->agent[0] && rep.n_agents == 0) {
		char *t = loom_sprintf("no agent '%s' with live mode (live.enabled in agents/%s.yaml)", rq->agent, rq->agent);
		if (loom_bus_reply_error(loom_daemon_bus(e->daemon), env, LOOM__ERROR__CODE__BAD_REQUEST, false, t, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(t);
	} else if (loom_bus_reply(loom_daemon_bus(e->daemon), env, &rep.base, &err) < 0) {
		loom_warning("cannot reply to from=%s type=%s: %s", env->from, rep.base.descriptor->name, err);
	}
	for (size_t i = 0; i < rep.n_agents; i++)
		free(rep.agents[i]);
	for (size_t i = 0; i < e->nlives; i++)
		free(seqs[i]);
	free(seqs);
	free(rep.agents);
}
