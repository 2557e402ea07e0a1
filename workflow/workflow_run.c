/* workflow_run.c - workflow instances: the authentication, authorization
 * and action workflows of requests (docs/workflows.md).
 *
 * An instance lives in its request's record (Request.instances), so a step
 * of a workflow and the request's history change in one write. Its states:
 *
 *   PENDING  -> (activity passes)   PENDING, step + 1, or DONE after the last
 *            -> (activity waits)    WAITING: an approval (waiting_for its id)
 *                                   or an external program ("external")
 *            -> (activity fails)    FAILED
 *   WAITING  -> PENDING / FAILED    the approval is decided or expires
 *                                   (workflow_approval.c), the program ends
 *                                   or is killed at its timeout
 *   PENDING, WAITING -> CANCELED    the request ended another way
 *
 * A request's status follows its instances (workflow_request.c makes them):
 *
 *   authorizing (first pass) -> authenticating  authn workflows to run
 *                            -> authorizing      authz workflows to run
 *   authenticating -> authorizing / validating   every authn passed
 *   authorizing <-> pending-approval             some instance waits on an approval
 *   authorizing -> validating                    every authz passed: validated
 *                                                and authorized again, then committed
 *   authenticating, authorizing, pending-approval -> denied   one failed (the
 *                                                others are canceled)
 *   committed -> post-processing                 action workflows to run
 *   post-processing -> completed / post-processing-error   all ended
 *
 * Runnable requests wait in a queue drained outside the pipeline (a timer,
 * or the bus handler before it answers), so an activity that makes a
 * request (an update, a create) never runs inside another request's run.
 * After a restart (wf_run_recover) an instance that was in an activity runs
 * it again. Effects in the store cannot happen twice: mails, approvals and
 * WorkflowData are in the step's own write, and a request an activity makes
 * has the step's key as its id (workflow_activities.c), so the step run
 * again finds it. An external program has a durable "started" mark
 * (WAITING "external", external_started_at) written before its spawn and
 * its end written with the step's outcome; a restart that finds the mark
 * kills the program if it still runs, then fails the step (on_restart:
 * fail, at most once) or runs it again (rerun, at least once). */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_envelope.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct wf_run {
	char **queue;              /* request ids to run */
	size_t nqueue, capqueue;
	bool draining;             /* wf_run_drain is running */
	bool armed;                /* a timer will drain */
	int tick_id;               /* the periodic timer */
};

static int drain_tick(loom_loop_t *loop, void *arg);

int wf_run_open(wf_t *w, char **ret_error)
{
	w->run = loom_calloc(1, sizeof *w->run);
	if (wf_approval_open(w, ret_error) < 0 || wf_mail_open(w, ret_error) < 0 || wf_timer_open(w, ret_error) < 0)
		return -1;
	return 0;
}

void wf_run_close(wf_t *w)
{
	struct wf_run *r = w->run;
	if (r == NULL)
		return;
	wf_timer_close(w);
	wf_ext_close(w);
	wf_mail_close(w);
	wf_approval_close(w);
	for (size_t i = 0; i < r->nqueue; i++)
		free(r->queue[i]);
	free(r->queue);
	free(r);
	w->run = NULL;
}

void wf_run_enqueue(wf_t *w, const char *request_id)
{
	struct wf_run *r = w->run;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nqueue; i++)
		if (strcmp(r->queue[i], request_id) == 0)
			return;
	if (r->nqueue == r->capqueue)
		r->queue = loom_realloc(r->queue, (r->capqueue = r->capqueue ? 2 * r->capqueue : 16) * sizeof *r->queue);
	r->queue[r->nqueue++] = loom_strdup(request_id);
	if (!r->armed && !r->draining && w->daemon) {
		r->armed = true;
		loom_loop_add_timer(loom_daemon_loop(w->daemon), 1, 1, drain_tick, w);
	}
}

static void flush_logged(wf_t *w)
{
	char *m;
	if (wf_request_flush(w, &m) < 0) {
		loom_error("%s", m);
		free(m);
	}
}

static int drain_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	wf_t *w = arg;
	w->run->armed = false;
	w->group_commit = true;
	wf_run_drain(w);
	flush_logged(w);
	return 0;
}

int wf_run_write(wf_t *w, Loom__Request *rq, loom_batch_t *b)
{
	wf_req_write(w, b, rq);
	const char *err;
	if (wf_store_write(w, b, &err) < 0) {
		loom_error("cannot store request %s: %s", rq->id, err);
		wf_mail_abort(w);
		return -1;
	}
	wf_mail_commit(w);
	return 0;
}

const wf_def_t *wf_run_def(wf_t *w, const Loom__WorkflowInstance *in)
{
	return wf_defs_find(w->defs, in->workflow);
}

/* ---- making instances ---- */

static Loom__WorkflowInstance *instance_add(Loom__Request *rq, const char *name, const char *phase,
    const char *target_id, const char *target_type, const char *mpr)
{
	Loom__WorkflowInstance *in = loom_malloc(sizeof *in);
	loom__workflow_instance__init(in);
	in->workflow = loom_strdup(name);
	in->phase = loom_strdup(phase);
	in->target_id = loom_strdup(target_id);
	in->target_type = loom_strdup(target_type);
	in->mpr = loom_strdup(mpr ? mpr : "");
	in->state = LOOM__WORKFLOW_INSTANCE__STATE__PENDING;
	in->waiting_for = loom_strdup("");
	in->note = loom_strdup("");
	in->set_id = loom_strdup("");
	in->started_at = loom_now_us();
	rq->instances = loom_realloc(rq->instances, (rq->n_instances + 1) * sizeof *rq->instances);
	rq->instances[rq->n_instances++] = in;
	return in;
}

int wf_run_needed(wf_t *w, Loom__Request *rq)
{
	(void)w;
	static const int phases[] = { WFP_AUTHN, WFP_AUTHZ };
	for (size_t p = 0; p < 2; p++) {
		const char *pn = wf_phase_name(phases[p]);
		size_t plen = strlen(pn);
		bool left = false;
		for (size_t i = 0; i < rq->n_workflows; i++) {
			const char *s = rq->workflows[i];
			if (strncmp(s, pn, plen) != 0 || s[plen] != ':')
				continue;
			const char *name = s + plen + 1;
			Loom__WorkflowInstance *found = NULL;
			for (size_t k = 0; k < rq->n_instances && !found; k++)
				if (strcmp(rq->instances[k]->phase, pn) == 0 && strcmp(rq->instances[k]->workflow, name) == 0)
					found = rq->instances[k];
			if (found && found->state == LOOM__WORKFLOW_INSTANCE__STATE__DONE)
				continue;
			left = true;
			if (found == NULL)
				instance_add(rq, name, pn, rq->target_id, rq->target_type, NULL);
		}
		if (left)
			return phases[p];
	}
	return -1;
}

size_t wf_run_actions(wf_t *w, Loom__Request *rq)
{
	size_t n = 0;
	long long max_depth = w->daemon ? loom_daemon_config(w->daemon)->workflow.max_depth : 8;
	const char *too_deep = NULL;
	char *deep = NULL;
	if ((long long)rq->depth >= max_depth) {
		deep = loom_sprintf("not run: the request was made by workflows %u deep (workflow.max_depth %lld): "
		    "do action workflows feed each other?", rq->depth, max_depth);
		too_deep = deep;
	}
	for (size_t i = 0; i < rq->n_workflows; i++) {
		if (strncmp(rq->workflows[i], "action:", 7) != 0)
			continue;
		Loom__WorkflowInstance *in = instance_add(rq, rq->workflows[i] + 7, "action", rq->target_id,
		    rq->target_type, NULL);
		n++;
		if (too_deep) {
			in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
			free(in->note);
			in->note = loom_strdup(too_deep);
		}
	}
	for (size_t i = 0; i < rq->n_transition_mprs; i++) {
		const Loom__TransitionMatch *m = rq->transition_mprs[i];
		for (size_t k = 0; k < m->n_workflows; k++) {
			if (strncmp(m->workflows[k], "action:", 7) != 0)
				continue;
			/* the member's type: the target's, or read (another resource moved) */
			const char *type = "";
			Loom__Resource *r = NULL;
			const char *err;
			if (strcasecmp(m->transition->member_id, rq->target_id) == 0)
				type = rq->target_type;
			else if (wf_res_get_by_id(w, m->transition->member_id, &r, &err) == 1)
				type = r->object_type;
			Loom__WorkflowInstance *in = instance_add(rq, m->workflows[k] + 7, "action", m->transition->member_id,
			    type, m->mpr);
			if (r)
				protobuf_c_message_free_unpacked(&r->base, NULL);
			in->joined = m->transition->joined;
			free(in->set_id);
			in->set_id = loom_strdup(m->transition->set->id);
			n++;
			if (too_deep) {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
				free(in->note);
				in->note = loom_strdup(too_deep);
			}
		}
	}
	free(deep);
	return n;
}

/* ---- running ---- */

void wf_ctx_load(wf_ctx_t *c)
{
	wf_t *w = c->w;
	const char *err;
	c->target = NULL;
	c->requester = NULL;
	if (strcmp(c->in->phase, "action") == 0 || c->rq->operation == LOOM__REQUEST__OPERATION__REEVALUATE) {
		if (c->in->target_id[0] && wf_res_get_by_id(w, c->in->target_id, &c->target, &err) != 1)
			c->target = NULL;
	} else {
		/* before the commit: the target as the request would leave it */
		Loom__Resource *before = NULL, *after = NULL;
		char *why = wf_request_preview(w, c->rq, &before, &after);
		free(why);
		if (after) {
			c->target = after;
			if (before)
				protobuf_c_message_free_unpacked(&before->base, NULL);
		} else {
			c->target = before;
		}
	}
	if (wf_res_get_by_id(w, c->rq->requester, &c->requester, &err) != 1)
		c->requester = NULL;
}

void wf_ctx_release(wf_ctx_t *c)
{
	if (c->target)
		protobuf_c_message_free_unpacked(&c->target->base, NULL);
	if (c->requester)
		protobuf_c_message_free_unpacked(&c->requester->base, NULL);
	c->target = c->requester = NULL;
	free(c->note);
	c->note = NULL;
}

void wf_str_set(char **f, const char *v)
{
	if (*f != protobuf_c_empty_string)
		free(*f);
	*f = loom_strdup(v ? v : "");
}

/* Fault injection for the tests: LOOM_WORKFLOW_CRASH_AT=step:TYPE kills the
 * service after an activity of TYPE ran and before its step is written (the
 * moment a restart runs it again). */
static void step_crash_point(wf_t *w, const wf_activity_t *a)
{
	if (w->crash_at && strncmp(w->crash_at, "step:", 5) == 0 && strcmp(w->crash_at + 5, wf_act_type_name(a->type)) == 0) {
		loom_warning("fault injection: killing myself after a %s activity ran, before its step is written "
		    "(LOOM_WORKFLOW_CRASH_AT)", w->crash_at + 5);
		raise(SIGKILL);
	}
}

/* Runs instance ii's activities until it waits, ends or fails. Returns
 * -1 when the request's record could not be written. */
static int run_instance(wf_t *w, Loom__Request *rq, size_t ii)
{
	Loom__WorkflowInstance *in = rq->instances[ii];
	const wf_def_t *def = wf_run_def(w, in);
	while (in->state == LOOM__WORKFLOW_INSTANCE__STATE__PENDING) {
		loom_batch_t *b = loom_batch_new(w->store);
		char *hist;
		if (def == NULL) {
			in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
			wf_str_set(&in->note, "the workflow is no longer defined (config/policy/workflows)");
			in->ended_at = loom_now_us();
			hist = loom_sprintf("%s:%s: %s", in->phase, in->workflow, in->note);
		} else if (in->step >= def->nacts) {
			in->state = LOOM__WORKFLOW_INSTANCE__STATE__DONE;
			in->ended_at = loom_now_us();
			hist = loom_sprintf("%s:%s: done%s%s", in->phase, in->workflow,
			    in->target_id[0] && strcasecmp(in->target_id, rq->target_id) ? " for " : "",
			    in->target_id[0] && strcasecmp(in->target_id, rq->target_id) ? in->target_id : "");
		} else {
			wf_ctx_t c = { .w = w, .rq = rq, .ii = ii, .in = in, .def = def, .act = &def->acts[in->step], .b = b };
			wf_ctx_load(&c);
			in->step_started_at = loom_now_us();
			int r = wf_activity_run(&c);
			step_crash_point(w, c.act);
			const char *note = c.note ? c.note : "";
			hist = loom_sprintf("%s:%s %s: %s", in->phase, in->workflow, c.act->label, note);
			wf_str_set(&in->note, note);
			if (r == ACT_NEXT) {
				in->step++;
			} else if (r == ACT_WAIT) {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__WAITING;
			} else {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
				in->ended_at = loom_now_us();
				char *n = loom_sprintf("%s: %s", c.act->label, note);
				wf_str_set(&in->note, n);
				free(n);
			}
			wf_ctx_release(&c);
			/* the activity may have made requests: the record is ours to write */
		}
		wf_history(rq, "workflow", hist);
		loom_info("request %s %s", rq->id, hist);
		free(hist);
		int rc = wf_run_write(w, rq, b);
		loom_batch_destroy(&b);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* What the phase's instances add up to; moves the request on. */
static void settle(wf_t *w, Loom__Request *rq, const char *phase)
{
	size_t live = 0, waiting_approval = 0, failed = 0, done = 0;
	const char *failure = NULL;
	for (size_t i = 0; i < rq->n_instances; i++) {
		Loom__WorkflowInstance *in = rq->instances[i];
		if (strcmp(in->phase, phase) != 0)
			continue;
		switch (in->state) {
		case LOOM__WORKFLOW_INSTANCE__STATE__PENDING: live++; break;
		case LOOM__WORKFLOW_INSTANCE__STATE__WAITING:
			live++;
			waiting_approval += strcmp(in->waiting_for, "external") != 0;
			break;
		case LOOM__WORKFLOW_INSTANCE__STATE__FAILED:
			failed++;
			if (failure == NULL)
				failure = in->note;
			break;
		case LOOM__WORKFLOW_INSTANCE__STATE__DONE: done++; break;
		default: break;
		}
	}
	if (strcmp(phase, "action") == 0) {
		if (live)
			return;
		char *n = loom_sprintf("%zu action workflows done, %zu failed%s%s", done, failed, failure ? ": " : "",
		    failure ? failure : "");
		wf_set_status(w, rq, failed ? LOOM__REQUEST__STATUS__POST_PROCESSING_ERROR : LOOM__REQUEST__STATUS__COMPLETED,
		    "workflow", n);
		free(n);
		return;
	}
	if (failed) {
		char *reason = loom_sprintf("%s workflow failed: %s", strcmp(phase, "authn") == 0 ? "an authentication"
		    : "an authorization", failure);
		wf_set_reason(rq, reason);
		rq->status = LOOM__REQUEST__STATUS__DENIED;
		wf_history(rq, "workflow", reason);
		loom_batch_t *b = loom_batch_new(w->store);
		wf_run_cancel(w, rq, b);
		wf_run_write(w, rq, b);
		loom_batch_destroy(&b);
		loom_info("request %s %s %s denied: %s", rq->id, wf_op_name(rq->operation), rq->target_type, reason);
		free(reason);
		return;
	}
	if (live) {
		Loom__Request__Status want = waiting_approval ? LOOM__REQUEST__STATUS__PENDING_APPROVAL
		    : strcmp(phase, "authn") == 0 ? LOOM__REQUEST__STATUS__AUTHENTICATING : LOOM__REQUEST__STATUS__AUTHORIZING;
		if (rq->status != want)
			wf_set_status(w, rq, want, "workflow", waiting_approval ? "waiting for approval" : "workflows running");
		return;
	}
	/* every one passed: validated and authorized again, then committed (or
	 * the next phase's workflows start) */
	char *again = loom_sprintf("its %s workflows passed: validated again", phase);
	wf_request_run_ex(w, rq, false, again);
	free(again);
}

static void run_request(wf_t *w, const char *id)
{
	Loom__Request *rq;
	const char *err;
	int rc = wf_req_get(w, id, &rq, &err);
	if (rc != 1) {
		if (rc < 0)
			loom_error("cannot read request %s: %s", id, err);
		return;
	}
	const char *phase = NULL;
	switch (rq->status) {
	case LOOM__REQUEST__STATUS__AUTHENTICATING: phase = "authn"; break;
	case LOOM__REQUEST__STATUS__AUTHORIZING:
	case LOOM__REQUEST__STATUS__PENDING_APPROVAL: phase = "authz"; break;
	case LOOM__REQUEST__STATUS__POST_PROCESSING: phase = "action"; break;
	default: break;
	}
	if (phase) {
		bool stop = false;
		for (size_t i = 0; i < rq->n_instances && !stop; i++) {
			Loom__WorkflowInstance *in = rq->instances[i];
			if (strcmp(in->phase, phase) != 0 || in->state != LOOM__WORKFLOW_INSTANCE__STATE__PENDING)
				continue;
			if (run_instance(w, rq, i) < 0)
				stop = true;
			/* a failed gate workflow denies the request: the others need not run */
			else if (strcmp(phase, "action") != 0 && in->state == LOOM__WORKFLOW_INSTANCE__STATE__FAILED)
				break;
		}
		if (!stop)
			settle(w, rq, phase);
	}
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

void wf_run_drain(wf_t *w)
{
	struct wf_run *r = w->run;
	if (r == NULL || r->draining)
		return;
	r->draining = true;
	size_t guard = 0;
	while (r->nqueue && guard++ < 100000) {
		char *id = r->queue[0];
		memmove(&r->queue[0], &r->queue[1], (r->nqueue - 1) * sizeof *r->queue);
		r->nqueue--;
		run_request(w, id);
		free(id);
	}
	r->draining = false;
}

void wf_run_cancel(wf_t *w, Loom__Request *rq, loom_batch_t *b)
{
	bool any = false;
	for (size_t i = 0; i < rq->n_instances; i++) {
		Loom__WorkflowInstance *in = rq->instances[i];
		if (in->state != LOOM__WORKFLOW_INSTANCE__STATE__PENDING && in->state != LOOM__WORKFLOW_INSTANCE__STATE__WAITING)
			continue;
		in->state = LOOM__WORKFLOW_INSTANCE__STATE__CANCELED;
		in->ended_at = loom_now_us();
		any = true;
	}
	if (!any)
		return;
	wf_approval_cancel(w, rq, b);
	wf_ext_kill_request(w, rq->id);
}

void wf_run_recover(wf_t *w, Loom__Request *rq)
{
	bool changed = false;
	for (size_t i = 0; i < rq->n_instances; i++) {
		Loom__WorkflowInstance *in = rq->instances[i];
		if (in->state == LOOM__WORKFLOW_INSTANCE__STATE__WAITING && strcmp(in->waiting_for, "external") == 0) {
			/* Its "started" mark is stored and its end was never seen: the
			 * program may have done its work, or part of it. A program still
			 * running (it outlived the service) is killed first, so two never
			 * run side by side; then on_restart decides: rerun (at least
			 * once) or fail (at most once, the default). */
			const wf_def_t *def = wf_run_def(w, in);
			const wf_activity_t *a = def && in->step < def->nacts ? &def->acts[in->step] : NULL;
			const char *killed = wf_ext_kill_orphan(w, rq->id) ? "; it was still running: killed" : "";
			char *n;
			if (a && a->rerun) {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__PENDING;
				n = loom_sprintf("%s:%s %s: the service stopped while its program ran%s: running it again "
				    "(on_restart: rerun)", in->phase, in->workflow, a->label, killed);
			} else {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
				in->ended_at = loom_now_us();
				n = loom_sprintf("%s:%s %s: the service stopped while its program ran%s: its outcome is unknown, "
				    "not run again (on_restart: fail)", in->phase, in->workflow, a ? a->label : "external", killed);
				wf_str_set(&in->note, strchr(n, ' ') + 1);
			}
			wf_str_set(&in->waiting_for, "");
			in->external_started_at = 0;
			in->external_pid = 0;
			wf_history(rq, "workflow", n);
			loom_info("request %s %s", rq->id, n);
			free(n);
			changed = true;
		}
	}
	if (changed) {
		loom_batch_t *b = loom_batch_new(w->store);
		wf_run_write(w, rq, b);
		loom_batch_destroy(&b);
	}
	wf_run_enqueue(w, rq->id);
}

void wf_run_tick(wf_t *w)
{
	if (w->run == NULL)
		return;
	wf_approval_tick(w);
	wf_ext_poll(w);
	wf_mail_tick(w);
}
