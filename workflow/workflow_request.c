/* workflow_request.c - the request pipeline and the service's answers.
 *
 * Request states and transitions (each one persisted, with a history entry,
 * before the next step starts):
 *
 *   (submitted) -> validating        wf_handle_submit: the request is stored
 *   validating  -> denied            the schema refuses a change (reason names
 *                                    the attribute and the rule)
 *   validating  -> authorizing       the changes fit the schema
 *   authorizing -> denied            no MPR grants one of the (operation,
 *                                    attribute) pairs; default deny
 *   authorizing -> failed            an MPR filter could not be evaluated
 *   authorizing -> committed         the resource change and this status in
 *                                    ONE synced WriteBatch; a change to a
 *                                    schema description makes the schema
 *                                    validation built live once it is written
 *                                    (wf_schema_commit)
 *   committed   -> completed         nothing to do after the commit yet
 *
 * authenticating, post-processing, pending-approval and canceled exist in the
 * protocol; no transition enters them until workflows come (docs/policy.md).
 *
 * Durability: every write above is synced, or, with group_commit (the bus
 * handler's mode), written unsynced and made durable by one synced write
 * (wf_request_flush) before any reply goes out: the service handles every
 * request it has in hand, then syncs once and answers them all (group
 * commit). A kill -9 loses no unsynced write (the WAL is in the page
 * cache); a power loss may lose the last group, none of which was answered.
 *
 * After a crash (wf_requests_recover): validating and authorizing requests
 * have changed no resource, so they run again from validation against the
 * resources as they are now; committed ones are completed. A request is
 * therefore never half-applied: its resource change and its committed status
 * are one write.
 */
#include "workflow.h"
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <signal.h>
#include <sodium.h>
#include <zmq.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wf_history(Loom__Request *rq, const char *who, const char *note)
{
	Loom__RequestHistory *h = loom_malloc(sizeof *h);
	loom__request_history__init(h);
	h->at = loom_now_us();
	h->who = loom_strdup(who);
	h->status = loom_strdup(wf_status_name(rq->status));
	h->note = loom_strdup(note ? note : "");
	rq->history = loom_realloc(rq->history, (rq->n_history + 1) * sizeof *rq->history);
	rq->history[rq->n_history++] = h;
}

void wf_set_reason(Loom__Request *rq, const char *reason)
{
	if (rq->reason != protobuf_c_empty_string)
		free(rq->reason);
	rq->reason = loom_strdup(reason);
}

/* A request's reply, held until the sync that makes the request durable. */
typedef struct wf_held {
	char *to;                  /* the requester's bus address */
	uint8_t *msg_id;           /* the RequestSubmit's msg_id */
	size_t id_len;             /* its bytes */
	Loom__Request *rq;         /* the request as it ended */
} wf_held_t;

int wf_store_write(wf_t *w, loom_batch_t *b, const char **error_r)
{
	if (!w->group_commit)
		return loom_store_write(w->store, b, error_r);
	int rc = loom_store_write_ex(w->store, b, false, error_r);
	if (rc == 0)
		w->unsynced = true;
	return rc;
}

static void crash_point(wf_t *w, Loom__Request__Status s)
{
	if (w->crash_at && strcmp(w->crash_at, wf_status_name(s)) == 0) {
		loom_warning("fault injection: killing myself after request status %s (LOOM_WORKFLOW_CRASH_AT)",
		    w->crash_at);
		raise(SIGKILL);
	}
}

/* Moves rq to status s with a history entry and stores it (synced).
 * Returns 0, or -1 (logged) when the store refuses. */
int wf_set_status(wf_t *w, Loom__Request *rq, Loom__Request__Status s, const char *who, const char *note)
{
	rq->status = s;
	wf_history(rq, who, note);
	loom_batch_t *b = loom_batch_new(w->store);
	wf_req_write(w, b, rq);
	const char *err;
	int rc = wf_store_write(w, b, &err);
	loom_batch_destroy(&b);
	if (rc < 0) {
		loom_error("cannot store request %s status %s: %s", rq->id, wf_status_name(s), err);
		return -1;
	}
	loom_info("request %s %s %s %s: %s", rq->id, wf_op_name(rq->operation), rq->target_type, wf_status_name(s),
	    note ? note : "");
	crash_point(w, s);
	return 0;
}

static bool ref_exists(void *arg, const char *id, char **ret_id)
{
	wf_t *w = arg;
	Loom__Resource *r;
	const char *err;
	if (wf_res_get_by_id(w, id, &r, &err) != 1)
		return false;
	*ret_id = loom_strdup(r->object_id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return true;
}

/* ---- validation ---- */

static char *validate(wf_t *w, Loom__Request *rq, Loom__Resource **ret_before, Loom__Resource **ret_after)
{
	*ret_before = *ret_after = NULL;
	if (rq->requester[0] == '\0')
		return loom_strdup("the request has no requester");
	loom_xpath_rid_t req_rid;
	if (strcmp(rq->requester, "sync") != 0 && !wf_policy_is_admin(&w->policy, rq->requester) &&
	    w->xp.resolve(w, rq->requester, strlen(rq->requester), &req_rid) != 0)
		return loom_sprintf("requester '%s' is no resource (and not the built-in requester sync)", rq->requester);
	Loom__Resource *before = NULL;
	const char *err;
	switch (rq->operation) {
	case LOOM__REQUEST__OPERATION__CREATE:
		break;
	case LOOM__REQUEST__OPERATION__DELETE:
	case LOOM__REQUEST__OPERATION__MODIFY:
	case LOOM__REQUEST__OPERATION__ADD_VALUES:
	case LOOM__REQUEST__OPERATION__REMOVE_VALUES: {
		int rc = wf_res_get_by_id(w, rq->target_id, &before, &err);
		if (rc < 0)
			return loom_sprintf("cannot read target '%s': %s", rq->target_id, err);
		if (rc == 0)
			return loom_sprintf("target '%s' is no resource", rq->target_id);
		if (rq->target_type[0] && strcmp(rq->target_type, before->object_type) != 0) {
			char *r = loom_sprintf("target '%s' is a %s, not a %s", rq->target_id, before->object_type,
			    rq->target_type);
			protobuf_c_message_free_unpacked(&before->base, NULL);
			return r;
		}
		if (rq->target_type != protobuf_c_empty_string)
			free(rq->target_type);
		rq->target_type = loom_strdup(before->object_type);
		break;
	}
	default:
		return loom_sprintf("operation %s changes nothing: read with get and search", wf_op_name(rq->operation));
	}
	const wf_type_t *t = wf_type_find(&w->policy, rq->target_type);
	if (t == NULL) {
		if (before)
			protobuf_c_message_free_unpacked(&before->base, NULL);
		return loom_sprintf("unknown object type '%s'", rq->target_type);
	}
	char *why = wf_sets_validate_changes(rq);
	if (why) {
		if (before)
			protobuf_c_message_free_unpacked(&before->base, NULL);
		return why;
	}
	if (rq->operation == LOOM__REQUEST__OPERATION__DELETE) {
		if (rq->n_changes) {
			protobuf_c_message_free_unpacked(&before->base, NULL);
			return loom_strdup("a delete request carries no attribute changes");
		}
		if ((why = wf_schema_validate(w, rq, before, NULL)) != NULL || (why = wf_defs_validate_set(w, before, NULL)) != NULL) {
			protobuf_c_message_free_unpacked(&before->base, NULL);
			return why;
		}
		*ret_before = before;
		return NULL;
	}
	if (rq->operation != LOOM__REQUEST__OPERATION__CREATE && rq->n_changes == 0) {
		protobuf_c_message_free_unpacked(&before->base, NULL);
		return loom_strdup("the request changes no attribute");
	}
	Loom__Resource *after;
	char *reason;
	if (wf_apply_changes(&w->policy, t, before, rq->changes, rq->n_changes, ref_exists, w, &after, &reason) < 0) {
		if (before)
			protobuf_c_message_free_unpacked(&before->base, NULL);
		return reason;
	}
	if (before == NULL) {
		free(after->object_id);
		free(after->object_type);
		after->object_id = loom_strdup(rq->target_id);
		after->object_type = loom_strdup(rq->target_type);
		after->rid = w->next_rid;
		after->created_at = loom_now_us();
		Loom__Value **v = loom_calloc(1, sizeof *v);
		v[0] = wf_value_i64(LOOM__VALUE__V_TIME, after->created_at);
		wf_res_set(after, "CreatedTime", v, 1);
		char *cid;
		if (ref_exists(w, rq->requester, &cid)) {
			v = loom_calloc(1, sizeof *v);
			v[0] = wf_value_str(LOOM__VALUE__V_REF, cid);
			wf_res_set(after, "Creator", v, 1);
			free(cid);
		}
	}
	if ((reason = wf_groups_validate(w, rq, before, after)) != NULL ||
	    (reason = wf_defs_validate_set(w, before, after)) != NULL ||
	    (reason = wf_sets_validate_filter(w, before, after)) != NULL ||
	    (reason = wf_schema_validate(w, rq, before, after)) != NULL) {
		if (before)
			protobuf_c_message_free_unpacked(&before->base, NULL);
		protobuf_c_message_free_unpacked(&after->base, NULL);
		return reason;
	}
	after->changed_at = loom_now_us();
	*ret_before = before;
	*ret_after = after;
	return NULL;
}

char *wf_request_preview(wf_t *w, Loom__Request *rq, Loom__Resource **ret_before, Loom__Resource **ret_after)
{
	char *why = validate(w, rq, ret_before, ret_after);
	wf_schema_abort(w);
	return why;
}

/* ---- authorization ---- */

typedef struct pair {
	unsigned op;               /* WF_OP_* */
	const char *attr;          /* NULL for create-less-attributes and delete */
	bool granted;              /* some MPR grants it */
} pair_t;

static const char *opword(unsigned op)
{
	switch (op) {
	case WF_OP_CREATE: return "create";
	case WF_OP_DELETE: return "delete";
	case WF_OP_ADD: return "add";
	case WF_OP_REMOVE: return "remove";
	default: return "modify";
	}
}

static bool holds_ref(const Loom__Resource *r, const char *attr, const char *id)
{
	if (strcmp(attr, "ObjectID") == 0)
		return strcasecmp(r->object_id, id) == 0;
	const Loom__Attr *a = wf_res_attr(r, attr);
	for (size_t i = 0; a && i < a->n_values; i++)
		if (a->values[i]->v_case == LOOM__VALUE__V_REF && strcasecmp(a->values[i]->ref, id) == 0)
			return true;
	return false;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = loom_strdup(s);
}

/* Returns 0 (granted: rq's granting_mprs and workflows filled), 1 denied
 * or -1 failed, with *ret_reason for both. */
static int authorize(wf_t *w, Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after,
    char **ret_reason)
{
	if (wf_policy_is_admin(&w->policy, rq->requester)) {
		strv_push(&rq->granting_mprs, &rq->n_granting_mprs,
		    strcmp(rq->requester, "sync") == 0 ? "(built-in: sync)"
		    : strcmp(rq->requester, "workflow") == 0 ? "(built-in: workflow)" : "(built-in: administrators)");
		return 0;
	}
	/* a person joining or leaving a static group (workflow_groups.c) */
	int g = wf_groups_authorize(w, rq, before, after, ret_reason);
	if (g != 0)
		return g > 0 ? 0 : 1;
	size_t np = 0;
	pair_t *pairs = loom_calloc(rq->n_changes + 1, sizeof *pairs);
	if (rq->operation == LOOM__REQUEST__OPERATION__DELETE)
		pairs[np++] = (pair_t){ .op = WF_OP_DELETE };
	else if (rq->operation == LOOM__REQUEST__OPERATION__CREATE && rq->n_changes == 0)
		pairs[np++] = (pair_t){ .op = WF_OP_CREATE };
	else
		for (size_t i = 0; i < rq->n_changes; i++) {
			unsigned op = rq->operation == LOOM__REQUEST__OPERATION__CREATE ? WF_OP_CREATE
			    : rq->changes[i]->op == LOOM__REQUEST_CHANGE__OP__ADD ? WF_OP_ADD
			    : rq->changes[i]->op == LOOM__REQUEST_CHANGE__OP__REMOVE ? WF_OP_REMOVE : WF_OP_MODIFY;
			pairs[np++] = (pair_t){ .op = op, .attr = rq->changes[i]->attr };
		}
	int rc = 0;
	char *reason = NULL;
	for (size_t m = 0; m < w->policy.nmprs && rc >= 0; m++) {
		const wf_mpr_t *mpr = &w->policy.mprs[m];
		bool any = false;
		for (size_t i = 0; i < np; i++)
			any = any || (mpr->ops & pairs[i].op);
		if (!any)
			continue;
		/* conditions, from the members workflow_sets.c keeps (planned for after) */
		bool ok = mpr->req_sync ? strcmp(rq->requester, "sync") == 0
		    : mpr->relative ? holds_ref(before ? before : after, mpr->relative, rq->requester)
		    : wf_sets_mpr_requester(w, m);
		ok = ok && (before == NULL || wf_sets_mpr_before(w, m));
		ok = ok && (after == NULL || wf_sets_mpr_after(w, m));
		if (!ok)
			continue;
		bool granted = false;
		for (size_t i = 0; i < np; i++) {
			if (!(mpr->ops & pairs[i].op))
				continue;
			bool covers = pairs[i].attr == NULL || mpr->all_attrs;
			for (size_t k = 0; !covers && k < mpr->nattrs; k++)
				covers = strcmp(mpr->attrs[k], pairs[i].attr) == 0;
			if (covers) {
				pairs[i].granted = true;
				granted = true;
			}
		}
		if (granted) {
			strv_push(&rq->granting_mprs, &rq->n_granting_mprs, mpr->name);
			for (size_t k = 0; k < mpr->nworkflows; k++)
				strv_push(&rq->workflows, &rq->n_workflows, mpr->workflows[k]);
		}
	}
	if (rc == 0)
		for (size_t i = 0; i < np; i++)
			if (!pairs[i].granted) {
				if (pairs[i].attr)
					reason = loom_sprintf("no management policy rule grants requester '%s' %s of attribute '%s' "
					    "on %s '%s' (default deny)", rq->requester, opword(pairs[i].op), pairs[i].attr,
					    rq->target_type, rq->target_id);
				else
					reason = loom_sprintf("no management policy rule grants requester '%s' %s of %s '%s' "
					    "(default deny)", rq->requester, opword(pairs[i].op), rq->target_type, rq->target_id);
				rc = 1;
				break;
			}
	free(pairs);
	if (rc != 0) {
		/* what did not grant everything grants nothing */
		for (size_t i = 0; i < rq->n_granting_mprs; i++)
			free(rq->granting_mprs[i]);
		for (size_t i = 0; i < rq->n_workflows; i++)
			free(rq->workflows[i]);
		rq->n_granting_mprs = rq->n_workflows = 0;
		*ret_reason = reason;
	}
	return rc;
}

/* ---- the pipeline ---- */

/* A request whose gate workflows (authn, authz) were started: resumed from
 * its instances rather than validated from scratch. */
static bool has_gate_instances(const Loom__Request *rq)
{
	for (size_t i = 0; i < rq->n_instances; i++)
		if (strcmp(rq->instances[i]->phase, "action") != 0)
			return true;
	return false;
}

/* Ends the request denied or failed, cancelling its waiting workflows. */
static void end_request(wf_t *w, Loom__Request *rq, Loom__Request__Status s, const char *reason)
{
	wf_set_reason(rq, reason);
	rq->status = s;
	wf_history(rq, "workflow", reason);
	loom_batch_t *b = loom_batch_new(w->store);
	if (w->run)
		wf_run_cancel(w, rq, b);
	if (w->run)
		wf_run_write(w, rq, b);
	else {
		wf_req_write(w, b, rq);
		const char *err;
		if (wf_store_write(w, b, &err) < 0)
			loom_error("cannot store request %s status %s: %s", rq->id, wf_status_name(s), err);
	}
	loom_batch_destroy(&b);
	loom_info("request %s %s %s %s: %s", rq->id, wf_op_name(rq->operation), rq->target_type, wf_status_name(s),
	    reason);
	crash_point(w, s);
}

/* After the commit: its action workflows, or completed. */
void wf_request_after_commit(wf_t *w, Loom__Request *rq, const char *note)
{
	size_t pending = 0, failed = 0;
	for (size_t i = 0; i < rq->n_instances; i++)
		if (strcmp(rq->instances[i]->phase, "action") == 0) {
			pending += rq->instances[i]->state == LOOM__WORKFLOW_INSTANCE__STATE__PENDING ||
			    rq->instances[i]->state == LOOM__WORKFLOW_INSTANCE__STATE__WAITING;
			failed += rq->instances[i]->state == LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
		}
	if (pending && w->run) {
		char *n = loom_sprintf("%s; %zu action workflows to run", note, pending);
		wf_set_status(w, rq, LOOM__REQUEST__STATUS__POST_PROCESSING, "workflow", n);
		free(n);
		wf_run_enqueue(w, rq->id);
	} else if (failed) {
		char *n = loom_sprintf("%s; %zu action workflows could not run", note, failed);
		wf_set_status(w, rq, LOOM__REQUEST__STATUS__POST_PROCESSING_ERROR, "workflow", n);
		free(n);
	} else {
		char *n = loom_sprintf("%s; nothing to run after the commit", note);
		wf_set_status(w, rq, LOOM__REQUEST__STATUS__COMPLETED, "workflow", n);
		free(n);
	}
}

void wf_request_run(wf_t *w, Loom__Request *rq, bool resumed)
{
	wf_request_run_ex(w, rq, resumed, resumed ? "validated again after a restart" : NULL);
}

void wf_request_run_ex(wf_t *w, Loom__Request *rq, bool resumed, const char *again)
{
	if (rq->status == LOOM__REQUEST__STATUS__COMMITTED) {
		wf_request_after_commit(w, rq, "the commit was durable before a restart");
		return;
	}
	if (resumed && (rq->status == LOOM__REQUEST__STATUS__POST_PROCESSING ||
	    ((rq->status == LOOM__REQUEST__STATUS__AUTHENTICATING || rq->status == LOOM__REQUEST__STATUS__AUTHORIZING ||
	      rq->status == LOOM__REQUEST__STATUS__PENDING_APPROVAL) && has_gate_instances(rq)))) {
		/* waiting on its workflows: they go on where they were */
		if (w->run)
			wf_run_recover(w, rq);
		return;
	}
	if (resumed && rq->origin[0]) {
		/* An export's request stopped before its commit: its result never
		 * reached the engine, which sends the change again (as a new
		 * request). Resuming it too would apply the change twice. */
		const char *why = "the service stopped before the commit; the engine sends the change again";
		wf_set_reason(rq, why);
		wf_set_status(w, rq, LOOM__REQUEST__STATUS__FAILED, "workflow", why);
		return;
	}
	if ((resumed || rq->status != LOOM__REQUEST__STATUS__VALIDATING) &&
	    wf_set_status(w, rq, LOOM__REQUEST__STATUS__VALIDATING, "workflow", again ? again : "validated again") < 0)
		return;
	/* each pass decides afresh which MPRs grant it and which workflows they name */
	for (size_t i = 0; i < rq->n_granting_mprs; i++)
		free(rq->granting_mprs[i]);
	for (size_t i = 0; i < rq->n_workflows; i++)
		free(rq->workflows[i]);
	rq->n_granting_mprs = rq->n_workflows = 0;
	Loom__Resource *before, *after;
	char *reason = validate(w, rq, &before, &after);
	if (reason) {
		wf_schema_abort(w);
		end_request(w, rq, LOOM__REQUEST__STATUS__DENIED, reason);
		free(reason);
		return;
	}
	if (wf_set_status(w, rq, LOOM__REQUEST__STATUS__AUTHORIZING, "workflow", "the changes fit the schema") < 0)
		goto out;
	/* the request's effect on set members, applied in memory (undone unless it commits) */
	int rc = wf_sets_plan(w, rq, before, after, &reason);
	if (rc < 0)
		rc = -1;
	else
		rc = authorize(w, rq, before, after, &reason);
	if (rc != 0) {
		if (w->sets)
			wf_sets_abort(w);
		wf_schema_abort(w);
		end_request(w, rq, rc > 0 ? LOOM__REQUEST__STATUS__DENIED : LOOM__REQUEST__STATUS__FAILED, reason);
		free(reason);
		goto out;
	}
	/* authentication and authorization workflows run before the commit;
	 * when they have all passed, the request comes back here, validated
	 * and authorized again against the resources as they are then */
	int phase = w->run ? wf_run_needed(w, rq) : -1;
	if (phase >= 0) {
		if (w->sets)
			wf_sets_abort(w);
		wf_schema_abort(w);
		loom_buf_t n = LOOM_BUF_INIT;
		loom_buf_printf(&n, "granted by");
		for (size_t i = 0; i < rq->n_granting_mprs; i++)
			loom_buf_printf(&n, "%s %s", i ? "," : "", rq->granting_mprs[i]);
		loom_buf_printf(&n, "; %s workflows to run:", phase == WFP_AUTHN ? "authentication" : "authorization");
		for (size_t i = 0; i < rq->n_instances; i++)
			if (strcmp(rq->instances[i]->phase, wf_phase_name(phase)) == 0 &&
			    rq->instances[i]->state == LOOM__WORKFLOW_INSTANCE__STATE__PENDING)
				loom_buf_printf(&n, " %s", rq->instances[i]->workflow);
		wf_set_status(w, rq, phase == WFP_AUTHN ? LOOM__REQUEST__STATUS__AUTHENTICATING
		    : LOOM__REQUEST__STATUS__AUTHORIZING, "workflow", loom_buf_cstr(&n));
		loom_buf_release(&n);
		wf_run_enqueue(w, rq->id);
		goto out;
	}
	loom_batch_t *b = loom_batch_new(w->store);
	wf_sets_commit_batch(w, b, rq);
	/* the commit: the resource and the request's new status in one batch */
	loom_buf_t note = LOOM_BUF_INIT;
	loom_buf_adds(&note, "granted by");
	for (size_t i = 0; i < rq->n_granting_mprs; i++)
		loom_buf_printf(&note, "%s %s", i ? "," : "", rq->granting_mprs[i]);
	for (size_t i = 0; i < rq->n_workflows; i++)
		loom_buf_printf(&note, "%s %s", i ? "," : "; workflows:", rq->workflows[i]);
	if (rq->transitions_total)
		loom_buf_printf(&note, "; %llu set transitions", (unsigned long long)rq->transitions_total);
	if (rq->n_transition_mprs)
		loom_buf_printf(&note, "; %zu set-transition MPRs matched", rq->n_transition_mprs);
	size_t nactions = w->run ? wf_run_actions(w, rq) : 0;
	if (nactions)
		loom_buf_printf(&note, "; %zu action workflows", nactions);
	rq->status = LOOM__REQUEST__STATUS__COMMITTED;
	wf_history(rq, "workflow", loom_buf_cstr(&note));
	loom_buf_release(&note);
	if (after && before == NULL)
		w->next_rid++;
	wf_res_write(w, b, before, after);
	wf_req_write(w, b, rq);
	wf_chg_write(w, b, rq, before, after);
	if (w->origin) {
		/* an export's change: the engine may send it again (it did not see
		 * the result); the origin row answers that with this request */
		loom_buf_t k = LOOM_BUF_INIT, v = LOOM_BUF_INIT;
		unsigned char h[8];
		wf_origin_key(&k, w->origin_agent, w->origin->change_id);
		loom_store_put_u64be(h, w->origin_hash);
		loom_buf_adds(&v, rq->id);
		loom_buf_addc(&v, '\0');
		loom_buf_add(&v, h, 8);
		loom_batch_put(b, w->cf_origin, k.data, k.len, v.data, v.len);
		loom_buf_release(&k);
		loom_buf_release(&v);
	}
	wf_meta_write(w, b);
	const char *err;
	rc = wf_store_write(w, b, &err);
	loom_batch_destroy(&b);
	if (rc < 0) {
		loom_error("cannot commit request %s: %s", rq->id, err);
		if (w->sets)
			wf_sets_abort(w);
		wf_schema_abort(w);
		if (after && before == NULL)
			w->next_rid--;
		/* nothing moved: the memberships the batch carried did not happen */
		for (size_t i = 0; i < rq->n_sets_before; i++)
			protobuf_c_message_free_unpacked(&rq->sets_before[i]->base, NULL);
		for (size_t i = 0; i < rq->n_sets_after; i++)
			protobuf_c_message_free_unpacked(&rq->sets_after[i]->base, NULL);
		for (size_t i = 0; i < rq->n_transitions; i++)
			protobuf_c_message_free_unpacked(&rq->transitions[i]->base, NULL);
		for (size_t i = 0; i < rq->n_transition_mprs; i++)
			protobuf_c_message_free_unpacked(&rq->transition_mprs[i]->base, NULL);
		rq->n_sets_before = rq->n_sets_after = rq->n_transitions = rq->n_transition_mprs = 0;
		rq->transitions_total = 0;
		for (; nactions; nactions--) /* the action workflows of a commit that did not happen */
			protobuf_c_message_free_unpacked(&rq->instances[--rq->n_instances]->base, NULL);
		char *r = loom_sprintf("cannot commit: %s", err);
		wf_set_reason(rq, r);
		rq->n_history--; /* the committed entry never landed */
		protobuf_c_message_free_unpacked(&rq->history[rq->n_history]->base, NULL);
		wf_set_status(w, rq, LOOM__REQUEST__STATUS__FAILED, "workflow", r);
		free(r);
		goto out;
	}
	if (w->sets)
		wf_sets_done(w);
	wf_schema_commit(w); /* a description changed: its schema is live from now on */
	loom_info("request %s %s %s committed: %s", rq->id, wf_op_name(rq->operation), rq->target_id,
	    rq->history[rq->n_history - 1]->note);
	crash_point(w, LOOM__REQUEST__STATUS__COMMITTED);
	wf_request_after_commit(w, rq, "committed");
out:
	wf_schema_abort(w); /* nothing when the commit made it live */
	if (before)
		protobuf_c_message_free_unpacked(&before->base, NULL);
	if (after)
		protobuf_c_message_free_unpacked(&after->base, NULL);
}

int wf_requests_recover(wf_t *w, char **ret_error)
{
	size_t n = 0, cap = 0;
	Loom__Request **todo = NULL;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_req);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t len;
		const void *v = loom_iter_value(it, &len);
		Loom__Request *rq = loom__request__unpack(NULL, len, v);
		if (rq == NULL) {
			loom_warning("a request record does not decode; left as it is");
			continue;
		}
		if (rq->status == LOOM__REQUEST__STATUS__VALIDATING || rq->status == LOOM__REQUEST__STATUS__AUTHORIZING ||
		    rq->status == LOOM__REQUEST__STATUS__COMMITTED || rq->status == LOOM__REQUEST__STATUS__AUTHENTICATING ||
		    rq->status == LOOM__REQUEST__STATUS__PENDING_APPROVAL ||
		    rq->status == LOOM__REQUEST__STATUS__POST_PROCESSING) {
			if (n == cap)
				todo = loom_realloc(todo, (cap = cap ? 2 * cap : 8) * sizeof *todo);
			todo[n++] = rq;
		} else {
			protobuf_c_message_free_unpacked(&rq->base, NULL);
		}
	}
	const char *err;
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	if (rc < 0)
		*ret_error = loom_sprintf("cannot read the requests: %s", err);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			loom_info("request %s was %s when the service stopped: resuming", todo[i]->id,
			    wf_status_name(todo[i]->status));
			wf_request_run(w, todo[i], true);
		}
		protobuf_c_message_free_unpacked(&todo[i]->base, NULL);
	}
	free(todo);
	if (n)
		loom_info("recovered requests=%zu", n);
	return rc;
}

/* ---- answers ---- */

void wf_reply(wf_t *w, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(w->daemon), env, m, &err) < 0)
		loom_warning("cannot reply to %s: %s", env->from, err);
}

void wf_reply_error(wf_t *w, Loom__Envelope *env, Loom__Error__Code code, const char *msg)
{
	const char *err;
	if (loom_bus_reply_error(loom_daemon_bus(w->daemon), env, code, code == LOOM__ERROR__CODE__INTERNAL, msg, &err) < 0)
		loom_warning("cannot reply to %s: %s", env->from, err);
}

Loom__Request *wf_request_submit(wf_t *w, Loom__Request *in, char **ret_error)
{
	return wf_request_submit_once(w, in, NULL, NULL, ret_error);
}

Loom__Request *wf_request_submit_once(wf_t *w, Loom__Request *in, const char *id, bool *ret_existed, char **ret_error)
{
	if (ret_existed)
		*ret_existed = false;
	if (id) {
		Loom__Request *old;
		const char *gerr;
		int g = wf_req_get(w, id, &old, &gerr);
		if (g < 0) {
			*ret_error = loom_sprintf("cannot read request %s: %s", id, gerr);
			return NULL;
		}
		if (g == 1) {
			/* the step that makes it ran before a restart and its request
			 * was stored: that request is the step's effect, made once */
			if (ret_existed)
				*ret_existed = true;
			return old;
		}
	}
	/* the service's own copy: id, seq, status and history are its to give */
	Loom__Request *rq = loom_calloc(1, sizeof *rq);
	loom__request__init(rq);
	rq->id = id ? loom_strdup(id) : wf_new_uuid();
	rq->seq = w->next_seq++;
	rq->requester = loom_strdup(in->requester);
	rq->operation = in->operation;
	rq->target_id = in->operation == LOOM__REQUEST__OPERATION__CREATE ? wf_new_uuid() : loom_strdup(in->target_id);
	rq->target_type = loom_strdup(in->target_type);
	rq->origin = loom_strdup(in->origin);
	rq->depth = in->depth;
	rq->parent = loom_strdup(in->parent);
	rq->cause = loom_strdup(in->cause);
	rq->n_changes = in->n_changes;
	rq->changes = in->changes; /* moved */
	in->changes = NULL;
	in->n_changes = 0;
	rq->created_at = loom_now_us();
	rq->status = LOOM__REQUEST__STATUS__VALIDATING;
	char *why = rq->cause[0] ? loom_strdup(rq->cause)
	    : rq->parent[0] ? loom_sprintf("made by an action workflow of request %s", rq->parent) : NULL;
	wf_history(rq, rq->requester, rq->origin[0] ? rq->origin : why ? why : "submitted");
	free(why);
	loom_batch_t *b = loom_batch_new(w->store);
	wf_req_write(w, b, rq);
	wf_meta_write(w, b);
	const char *err;
	int rc = wf_store_write(w, b, &err);
	loom_batch_destroy(&b);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot store the request: %s", err);
		loom_error("%s", *ret_error);
		protobuf_c_message_free_unpacked(&rq->base, NULL);
		return NULL;
	}
	crash_point(w, LOOM__REQUEST__STATUS__VALIDATING);
	wf_request_run(w, rq, false);
	return rq;
}

int wf_request_flush(wf_t *w, char **ret_error)
{
	int rc = 0;
	const char *err = NULL;
	if (w->unsynced) {
		/* a small synced write: the WAL before it becomes durable with it */
		loom_batch_t *b = loom_batch_new(w->store);
		wf_meta_write(w, b);
		rc = loom_store_write_ex(w->store, b, true, &err);
		loom_batch_destroy(&b);
		if (rc == 0)
			w->unsynced = false;
	}
	char *m = rc < 0 ? loom_sprintf("cannot make the requests durable: %s", err) : NULL;
	loom_bus_t *bus = w->daemon ? loom_daemon_bus(w->daemon) : NULL;
	for (size_t i = 0; i < w->nheld; i++) {
		wf_held_t *h = &w->held[i];
		Loom__Envelope env = LOOM__ENVELOPE__INIT;
		env.from = h->to;
		env.msg_id.data = h->msg_id;
		env.msg_id.len = h->id_len;
		if (bus && m)
			wf_reply_error(w, &env, LOOM__ERROR__CODE__INTERNAL, m);
		else if (bus) {
			/* workflows may have moved it on since it was held */
			Loom__Request *now = NULL;
			const char *e2;
			if (wf_req_get(w, h->rq->id, &now, &e2) != 1)
				now = NULL;
			Loom__RequestReply r = LOOM__REQUEST_REPLY__INIT;
			r.request = now ? now : h->rq;
			wf_reply(w, &env, &r.base);
			if (now)
				protobuf_c_message_free_unpacked(&now->base, NULL);
		}
		free(h->to);
		free(h->msg_id);
		protobuf_c_message_free_unpacked(&h->rq->base, NULL);
	}
	w->nheld = 0;
	if (m) {
		*ret_error = m;
		return -1;
	}
	return 0;
}

/* Whether more messages wait (then the group grows before its sync). */
static bool more_waiting(wf_t *w)
{
	loom_bus_t *bus = loom_daemon_bus(w->daemon);
	if (loom_bus_pending(bus))
		return true;
	zmq_pollitem_t it = { .socket = loom_bus_socket(bus), .events = ZMQ_POLLIN };
	return zmq_poll(&it, 1, 0) > 0;
}

static void flush_logged(wf_t *w)
{
	char *m;
	if (wf_request_flush(w, &m) < 0) {
		loom_error("%s", m);
		free(m);
	}
}

static int flush_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	wf_t *w = arg;
	w->flush_armed = false;
	flush_logged(w);
	return 0;
}

static void handle_submit(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__RequestSubmit *s = body;
	if (s->request == NULL) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__BAD_REQUEST, "RequestSubmit carries no request");
		return;
	}
	if (s->request->origin[0]) { /* only the service's own export path sets it */
		free(s->request->origin);
		s->request->origin = loom_strdup("");
	}
	if (s->request->parent[0]) { /* only the service's own workflows set it */
		free(s->request->parent);
		s->request->parent = loom_strdup("");
	}
	s->request->depth = 0;
	if (s->request->cause[0]) {
		free(s->request->cause);
		s->request->cause = loom_strdup("");
	}
	char *err = NULL;
	w->group_commit = true;
	Loom__Request *rq = wf_request_submit(w, s->request, &err);
	if (rq == NULL) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__INTERNAL, err);
		free(err);
		return;
	}
	if (w->nheld == w->capheld)
		w->held = loom_realloc(w->held, (w->capheld = w->capheld ? 2 * w->capheld : 64) * sizeof *w->held);
	wf_held_t *h = &w->held[w->nheld++];
	h->to = loom_strdup(env->from);
	h->id_len = env->msg_id.len;
	h->msg_id = loom_malloc(h->id_len + 1);
	memcpy(h->msg_id, env->msg_id.data, h->id_len);
	h->rq = rq;
	/* answer now unless more requests wait: they join this sync (a timer
	 * makes sure a group never waits long for one that was not a request) */
	if (w->run)
		wf_run_drain(w); /* workflows that need nobody run before the answer */
	if (w->nheld >= 256 || !more_waiting(w)) {
		flush_logged(w);
	} else if (!w->flush_armed) {
		w->flush_armed = true;
		loom_loop_add_timer(loom_daemon_loop(w->daemon), 2, 1, flush_tick, w);
	}
}

static void handle_get(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__RequestGet *g = body;
	Loom__Request *rq;
	const char *err;
	int rc = wf_req_get(w, g->id, &rq, &err);
	if (rc <= 0) {
		char *m = rc < 0 ? loom_sprintf("cannot read request '%s': %s", g->id, err)
		                 : loom_sprintf("no request '%s'", g->id);
		wf_reply_error(w, env, rc < 0 ? LOOM__ERROR__CODE__INTERNAL : LOOM__ERROR__CODE__BAD_REQUEST, m);
		free(m);
		return;
	}
	Loom__RequestReply r = LOOM__REQUEST_REPLY__INIT;
	r.request = rq;
	wf_reply(w, env, &r.base);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void handle_list(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__RequestList *l = body;
	Loom__Request__Status want = 0;
	if (l->status[0] && wf_status_parse(l->status, &want) < 0) {
		char *m = loom_sprintf("unknown status '%s': expected validating, authenticating, authorizing, committed, "
		    "post-processing, completed, denied, failed, canceled, pending-approval or post-processing-error", l->status);
		wf_reply_error(w, env, LOOM__ERROR__CODE__BAD_REQUEST, m);
		free(m);
		return;
	}
	size_t limit = l->limit == 0 ? 100 : l->limit > 10000 ? 10000 : l->limit;
	/* With an offset, a first pass counts the matches, so the second keeps
	 * only those before the `offset` newest: `stop` in forward order. */
	size_t stop = SIZE_MAX, total = 0;
	const char *err;
	loom_iter_t *it;
	if (l->offset > 0) {
		it = loom_iter_new(w->store, w->cf_req);
		for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
			size_t len;
			const void *v = loom_iter_value(it, &len);
			Loom__Request *rq = loom__request__unpack(NULL, len, v);
			if (rq == NULL)
				continue;
			if (!want || rq->status == want)
				total++;
			protobuf_c_message_free_unpacked(&rq->base, NULL);
		}
		loom_iter_destroy(&it);
		stop = total > l->offset ? total - l->offset : 0;
	}
	/* newest first: keep the last `limit` in a ring while walking forward */
	Loom__Request **ring = loom_calloc(limit, sizeof *ring);
	size_t seen = 0;
	it = loom_iter_new(w->store, w->cf_req);
	for (loom_iter_seek_first(it); loom_iter_valid(it) && seen < stop; loom_iter_next(it)) {
		size_t len;
		const void *v = loom_iter_value(it, &len);
		Loom__Request *rq = loom__request__unpack(NULL, len, v);
		if (rq == NULL)
			continue;
		if (want && rq->status != want) {
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			continue;
		}
		size_t slot = seen++ % limit;
		if (ring[slot])
			protobuf_c_message_free_unpacked(&ring[slot]->base, NULL);
		ring[slot] = rq;
	}
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	size_t n = seen < limit ? seen : limit;
	Loom__RequestListReply r = LOOM__REQUEST_LIST_REPLY__INIT;
	r.requests = loom_calloc(n + 1, sizeof *r.requests);
	for (size_t i = 0; i < n; i++)
		r.requests[i] = ring[(seen - 1 - i) % limit];
	r.n_requests = n;
	r.truncated = seen > limit;
	if (rc < 0) {
		char *m = loom_sprintf("cannot read the requests: %s", err);
		wf_reply_error(w, env, LOOM__ERROR__CODE__INTERNAL, m);
		free(m);
	} else {
		wf_reply(w, env, &r.base);
	}
	for (size_t i = 0; i < limit; i++)
		if (ring[i])
			protobuf_c_message_free_unpacked(&ring[i]->base, NULL);
	free(ring);
	free(r.requests);
}

static void handle_res_get(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__ResourceGet *g = body;
	Loom__Resource *res;
	const char *err;
	int rc = wf_res_get_by_id(w, g->id, &res, &err);
	if (rc == 1 && g->type[0] && strcmp(g->type, res->object_type) != 0) {
		protobuf_c_message_free_unpacked(&res->base, NULL);
		rc = 0;
	}
	if (rc <= 0) {
		char *m = rc < 0 ? loom_sprintf("cannot read resource '%s': %s", g->id, err)
		    : loom_sprintf("no %s '%s'", g->type[0] ? g->type : "resource", g->id);
		wf_reply_error(w, env, rc < 0 ? LOOM__ERROR__CODE__INTERNAL : LOOM__ERROR__CODE__BAD_REQUEST, m);
		free(m);
		return;
	}
	wf_sets_decorate(w, res);
	Loom__ResourceReply r = LOOM__RESOURCE_REPLY__INIT;
	r.resource = res;
	wf_reply(w, env, &r.base);
	protobuf_c_message_free_unpacked(&res->base, NULL);
}

static void handle_search(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__ResourceSearch *s = body;
	loom_xpath_t *x = NULL;
	loom_xpath_error_t xe = { 0 };
	if (loom_xpath_compile(s->filter, NULL, &x, &xe) < 0 || loom_xpath_check(x, &w->xp, &xe) < 0) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__BAD_REQUEST, xe.text);
		loom_xpath_error_release(&xe);
		loom_xpath_destroy(&x);
		return;
	}
	loom_xpath_result_t res;
	loom_xpath_result_init(&res);
	if (loom_xpath_eval(x, &w->xp, NULL, &res, &xe) < 0) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__BAD_REQUEST, xe.text);
		loom_xpath_error_release(&xe);
		loom_xpath_destroy(&x);
		loom_xpath_result_release(&res);
		return;
	}
	size_t limit = s->limit == 0 ? 100 : s->limit > 10000 ? 10000 : s->limit;
	Loom__ResourceSearchReply r = LOOM__RESOURCE_SEARCH_REPLY__INIT;
	r.resources = loom_calloc(limit + 1, sizeof *r.resources);
	int rc = 0;
	const char *err = NULL;
	for (size_t i = s->offset; i < res.n && r.n_resources < limit && rc >= 0; i++) {
		Loom__Resource *one;
		rc = wf_res_get(w, res.rids[i], &one, &err);
		if (rc == 1) {
			wf_sets_decorate(w, one);
			r.resources[r.n_resources++] = one;
		}
	}
	r.truncated = res.n > (size_t)s->offset + limit;
	if (rc < 0) {
		char *m = loom_sprintf("cannot read a resource: %s", err);
		wf_reply_error(w, env, LOOM__ERROR__CODE__INTERNAL, m);
		free(m);
	} else {
		wf_reply(w, env, &r.base);
	}
	for (size_t i = 0; i < r.n_resources; i++)
		protobuf_c_message_free_unpacked(&r.resources[i]->base, NULL);
	free(r.resources);
	loom_xpath_result_release(&res);
	loom_xpath_destroy(&x);
}

void wf_handle(wf_t *w, Loom__Envelope *env)
{
	static const struct {
		const ProtobufCMessageDescriptor *d;
		void (*fn)(wf_t *, Loom__Envelope *, void *);
	} h[] = {
		{ &loom__request_submit__descriptor, handle_submit },
		{ &loom__request_get__descriptor, handle_get },
		{ &loom__request_list__descriptor, handle_list },
		{ &loom__resource_get__descriptor, handle_res_get },
		{ &loom__resource_search__descriptor, handle_search },
		{ &loom__approval_list__descriptor, wf_handle_approval_list },
		{ &loom__approval_respond__descriptor, wf_handle_approval_respond },
	};
	if (!loom_envelope_is(env, &loom__request_submit__descriptor))
		flush_logged(w); /* what is read or answered next is durable */
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		if (!loom_envelope_is(env, h[i].d))
			continue;
		const char *err;
		ProtobufCMessage *m = loom_envelope_body(env, h[i].d, &err);
		if (m == NULL) {
			wf_reply_error(w, env, LOOM__ERROR__CODE__MALFORMED, err);
			return;
		}
		h[i].fn(w, env, m);
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	char *m = loom_sprintf("loom-workflow does not answer %s", env->type);
	wf_reply_error(w, env, LOOM__ERROR__CODE__UNKNOWN_TYPE, m);
	free(m);
}
