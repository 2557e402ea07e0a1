/* workflow_timer.c - what time does (docs/workflows.md, "Time"):
 *
 * - a periodic tick (200 ms) of approval deadlines, external programs and
 *   the mailer (wf_run_tick), and the queue of runnable requests;
 * - every workflow.scheduler (loom.yaml, default 1m): temporal Sets (a
 *   filter reading fn:current-dateTime()) are evaluated in full; members
 *   that joined or left are committed with a request the service makes
 *   (operation reevaluate, requester workflow) recording the transitions
 *   and the set-transition MPRs they match, whose action workflows then run
 *   as for any request; and every resource whose ExpirationTime has passed
 *   is deleted by a delete request of `workflow` (through the pipeline:
 *   its transitions fire too);
 * - at start: set-transition MPRs that are new or changed since the last
 *   start and name a workflow with run_on_policy_update run it for the
 *   current members of their set (one reevaluate request), as FIM's "Run on
 *   Policy Update" does. Each MPR's definition is remembered in meta rows
 *   `tmpr\0NAME` written with that request. */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_envelope.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int tick_id = -1;
static int64_t next_scheduler_ms;

/* Expired resources a delete was refused for: tried again an hour later. */
typedef struct refused {
	uint64_t rid;
	int64_t again_us;
} refused_t;
static refused_t *refused;
static size_t nrefused;

static void flush_logged(wf_t *w)
{
	char *m;
	if (wf_request_flush(w, &m) < 0) {
		loom_error("%s", m);
		free(m);
	}
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	wf_t *w = arg;
	w->group_commit = true;
	wf_run_tick(w);
	long long every = loom_daemon_config(w->daemon)->workflow.scheduler_ms;
	int64_t now = loom_mono_ms();
	if (now >= next_scheduler_ms) {
		next_scheduler_ms = now + every;
		wf_timer_run(w);
	}
	wf_run_drain(w);
	flush_logged(w);
	return 0;
}

int wf_timer_open(wf_t *w, char **ret_error)
{
	(void)ret_error;
	if (w->daemon == NULL)
		return 0;
	next_scheduler_ms = loom_mono_ms() + 1000; /* the first run soon after start */
	tick_id = loom_loop_add_timer(loom_daemon_loop(w->daemon), 200, 0, on_tick, w);
	return 0;
}

void wf_timer_close(wf_t *w)
{
	if (tick_id >= 0 && w->daemon)
		loom_loop_cancel_timer(loom_daemon_loop(w->daemon), tick_id);
	tick_id = -1;
	free(refused);
	refused = NULL;
	nrefused = 0;
}

/* A request the service makes for itself, committed at once. */
static Loom__Request *system_request(wf_t *w, const char *cause)
{
	Loom__Request *rq = loom_calloc(1, sizeof *rq);
	loom__request__init(rq);
	rq->id = wf_new_uuid();
	rq->seq = w->next_seq++;
	rq->requester = loom_strdup("workflow");
	rq->operation = LOOM__REQUEST__OPERATION__REEVALUATE;
	rq->target_id = loom_strdup("");
	rq->target_type = loom_strdup("Set");
	rq->created_at = loom_now_us();
	rq->cause = loom_strdup(cause);
	rq->status = LOOM__REQUEST__STATUS__COMMITTED;
	wf_history(rq, "workflow", cause);
	return rq;
}

/* ---- temporal sets ---- */

static void temporal(wf_t *w)
{
	if (w->sets == NULL)
		return;
	char *reason = NULL;
	int n = wf_sets_plan_temporal(w, loom_now_us(), &reason);
	if (n < 0) {
		loom_error("temporal sets: %s", reason);
		free(reason);
		wf_sets_abort(w);
		return;
	}
	if (n == 0) {
		wf_sets_done(w); /* MPR filter sets may have moved: kept in memory */
		return;
	}
	Loom__Request *rq = system_request(w, "time passed: temporal sets evaluated again");
	loom_batch_t *b = loom_batch_new(w->store);
	wf_sets_commit_batch(w, b, rq);
	size_t nact = wf_run_actions(w, rq);
	char *note = loom_sprintf("%llu set transitions; %zu set-transition MPRs matched; %zu action workflows",
	    (unsigned long long)rq->transitions_total, rq->n_transition_mprs, nact);
	wf_history(rq, "workflow", note);
	wf_req_write(w, b, rq);
	wf_meta_write(w, b);
	const char *err;
	if (wf_store_write(w, b, &err) < 0) {
		loom_error("temporal sets: cannot commit: %s", err);
		wf_sets_abort(w);
	} else {
		wf_sets_done(w);
		loom_info("request %s reevaluate: %s", rq->id, note);
		wf_request_after_commit(w, rq, "committed");
	}
	free(note);
	loom_batch_destroy(&b);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ---- expiration ---- */

static bool is_refused(uint64_t rid, int64_t now)
{
	for (size_t i = 0; i < nrefused; i++)
		if (refused[i].rid == rid)
			return refused[i].again_us > now;
	return false;
}

static void refuse(uint64_t rid, int64_t now)
{
	for (size_t i = 0; i < nrefused; i++)
		if (refused[i].rid == rid) {
			refused[i].again_us = now + 3600LL * 1000000;
			return;
		}
	refused = loom_realloc(refused, (nrefused + 1) * sizeof *refused);
	refused[nrefused++] = (refused_t){ rid, now + 3600LL * 1000000 };
}

static void expire(wf_t *w)
{
	int64_t now = loom_now_us();
	static const char prefix[] = "ExpirationTime\0t";
	size_t plen = sizeof prefix - 1;
	uint64_t *rids = NULL;
	size_t n = 0, cap = 0;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_res_index);
	for (loom_iter_seek(it, prefix, plen); loom_iter_valid(it); loom_iter_next(it)) {
		size_t kl;
		const unsigned char *k = loom_iter_key(it, &kl);
		if (kl < plen + 8 + 8 || memcmp(k, prefix, plen) != 0)
			break;
		int64_t at = (int64_t)(loom_store_get_u64be(k + plen) ^ 0x8000000000000000ULL);
		if (at > now)
			break;
		uint64_t rid = loom_store_get_u64be(k + kl - 8);
		if (is_refused(rid, now))
			continue;
		if (n == cap)
			rids = loom_realloc(rids, (cap = cap ? 2 * cap : 16) * sizeof *rids);
		rids[n++] = rid;
	}
	loom_iter_destroy(&it);
	for (size_t i = 0; i < n; i++) {
		Loom__Resource *r;
		const char *err;
		if (wf_res_get(w, rids[i], &r, &err) != 1)
			continue;
		const Loom__Attr *a = wf_res_attr(r, "ExpirationTime");
		char *when = a && a->n_values ? wf_value_text(a->values[0]) : loom_strdup("?");
		Loom__Request in = LOOM__REQUEST__INIT;
		in.requester = (char *)"workflow";
		in.operation = LOOM__REQUEST__OPERATION__DELETE;
		in.target_id = r->object_id;
		in.target_type = r->object_type;
		char *cause = loom_sprintf("its ExpirationTime %s has passed", when);
		in.cause = cause;
		char *e = NULL;
		Loom__Request *rq = wf_request_submit(w, &in, &e);
		if (rq == NULL || rq->status == LOOM__REQUEST__STATUS__DENIED || rq->status == LOOM__REQUEST__STATUS__FAILED) {
			loom_warning("expired %s %s not deleted: %s (tried again in an hour)", r->object_type, r->object_id,
			    rq ? rq->reason : e);
			refuse(rids[i], now);
		} else {
			loom_info("expired %s %s (ExpirationTime %s): request %s %s", r->object_type, r->object_id, when, rq->id,
			    wf_status_name(rq->status));
		}
		if (rq)
			protobuf_c_message_free_unpacked(&rq->base, NULL);
		free(e);
		free(cause);
		free(when);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	free(rids);
}

void wf_timer_run(wf_t *w)
{
	temporal(w);
	expire(w);
}

/* ---- policy update ---- */

static char *signature(const wf_tmpr_t *t)
{
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "%s|%s", t->set, t->in ? "in" : "out");
	for (size_t i = 0; i < t->nworkflows; i++)
		loom_buf_printf(&b, "|%s", t->workflows[i]);
	return loom_buf_steal(&b);
}

int wf_timer_policy_update(wf_t *w, char **ret_error)
{
	(void)ret_error;
	Loom__Request *rq = NULL;
	loom_batch_t *b = loom_batch_new(w->store);
	size_t applied = 0;
	loom_buf_t names = LOOM_BUF_INIT;
	for (size_t m = 0; m < w->policy.ntmprs; m++) {
		const wf_tmpr_t *t = &w->policy.tmprs[m];
		char *sig = signature(t);
		loom_buf_t key = LOOM_BUF_INIT;
		loom_buf_adds(&key, "tmpr");
		loom_buf_addc(&key, '\0');
		loom_buf_adds(&key, t->name);
		void *v;
		size_t len;
		const char *err;
		int have = loom_store_get(w->store, w->cf_meta, key.data, key.len, &v, &len, &err);
		bool same = have == 1 && len == strlen(sig) && memcmp(v, sig, len) == 0;
		if (have == 1)
			free(v);
		if (!same)
			loom_batch_put(b, w->cf_meta, key.data, key.len, sig, strlen(sig));
		loom_buf_release(&key);
		free(sig);
		if (same || !t->in)
			continue;
		/* the workflows that run on policy update */
		char **wfs = NULL;
		size_t nwfs = 0;
		for (size_t k = 0; k < t->nworkflows; k++) {
			const wf_def_t *d = wf_defs_find(w->defs, t->workflows[k] + 7);
			if (d && d->run_on_policy_update) {
				wfs = loom_realloc(wfs, (nwfs + 1) * sizeof *wfs);
				wfs[nwfs++] = t->workflows[k];
			}
		}
		char **ids = NULL;
		size_t nids = 0;
		Loom__SetRef *ref = NULL;
		if (nwfs && wf_sets_members_of(w, t->set, &ids, &nids) == 1 && nids && wf_sets_ref(w, t->set, &ref) == 1) {
			if (rq == NULL)
				rq = system_request(w, "policy update: set-transition MPRs new or changed since the last start "
				    "applied to the current members of their sets");
			for (size_t i = 0; i < nids; i++) {
				Loom__TransitionMatch *tm = loom_malloc(sizeof *tm);
				loom__transition_match__init(tm);
				tm->mpr = loom_strdup(t->name);
				tm->transition = loom_malloc(sizeof *tm->transition);
				loom__set_transition__init(tm->transition);
				tm->transition->set = loom_malloc(sizeof *tm->transition->set);
				loom__set_ref__init(tm->transition->set);
				tm->transition->set->id = loom_strdup(ref->id);
				tm->transition->set->name = loom_strdup(ref->name);
				tm->transition->set->type = loom_strdup(ref->type);
				tm->transition->member_id = loom_strdup(ids[i]);
				tm->transition->joined = true;
				tm->workflows = loom_calloc(nwfs + 1, sizeof *tm->workflows);
				for (size_t k = 0; k < nwfs; k++)
					tm->workflows[tm->n_workflows++] = loom_strdup(wfs[k]);
				rq->transition_mprs = loom_realloc(rq->transition_mprs,
				    (rq->n_transition_mprs + 1) * sizeof *rq->transition_mprs);
				rq->transition_mprs[rq->n_transition_mprs++] = tm;
			}
			applied += nids;
			loom_buf_printf(&names, "%s%s (%zu members)", names.len ? ", " : "", t->name, nids);
		}
		if (ref)
			protobuf_c_message_free_unpacked(&ref->base, NULL);
		for (size_t i = 0; i < nids; i++)
			free(ids[i]);
		free(ids);
		free(wfs);
	}
	int rc = 0;
	if (rq) {
		size_t nact = wf_run_actions(w, rq);
		char *note = loom_sprintf("applied %s: %zu action workflows", loom_buf_cstr(&names), nact);
		wf_history(rq, "workflow", note);
		wf_req_write(w, b, rq);
		wf_meta_write(w, b);
		free(note);
	}
	if (loom_batch_count(b)) {
		const char *err;
		if (loom_store_write(w->store, b, &err) < 0) {
			*ret_error = loom_sprintf("cannot store the policy update: %s", err);
			rc = -1;
		} else if (rq) {
			loom_info("policy update: request %s applies %s", rq->id, loom_buf_cstr(&names));
			wf_request_after_commit(w, rq, "committed");
		}
	}
	(void)applied;
	loom_buf_release(&names);
	loom_batch_destroy(&b);
	if (rq)
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	return rc;
}
