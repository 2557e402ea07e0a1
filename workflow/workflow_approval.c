/* workflow_approval.c - approvals (docs/workflows.md, "Approvals").
 *
 * An approval activity resolves its approvers (ObjectIDs), stores an
 * Approval (family approval, key its id) in the same batch as the request's
 * record, mails each approver who has an Email (the approval id and the two
 * loomctl commands), and its instance waits. States of an Approval:
 *
 *   pending -> approved   enough approvers approved (threshold; all: every
 *                         one; after escalation, one escalation approver)
 *   pending -> rejected   one approver rejected
 *   pending -> pending    the deadline passed and the activity has
 *                         escalation approvers: they are added and mailed,
 *                         the deadline moves by escalation_timeout (once)
 *   pending -> expired    the deadline passed (after escalation, if any):
 *                         the request is denied
 *   pending -> canceled   the request ended another way
 *
 * Every change is one batch with the request's record (its instance moved
 * on, a history line), so a kill -9 leaves both in step; pending approvals
 * and their deadlines are read back at start. */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A pending approval's deadline, kept in memory. */
typedef struct pend {
	char *id;                  /* the approval */
	char *request_id;          /* its request */
	int64_t deadline;          /* µs since the epoch; 0 never */
} pend_t;

static pend_t *pends;
static size_t npends;

static void pend_add(const Loom__Approval *a)
{
	for (size_t i = 0; i < npends; i++)
		if (strcmp(pends[i].id, a->id) == 0) {
			pends[i].deadline = a->deadline;
			return;
		}
	pends = loom_realloc(pends, (npends + 1) * sizeof *pends);
	pends[npends++] = (pend_t){ .id = loom_strdup(a->id), .request_id = loom_strdup(a->request_id),
		.deadline = a->deadline };
}

static void pend_del(const char *id)
{
	for (size_t i = 0; i < npends; i++)
		if (strcmp(pends[i].id, id) == 0) {
			free(pends[i].id);
			free(pends[i].request_id);
			pends[i] = pends[--npends];
			return;
		}
}

static int approval_get(wf_t *w, const char *id, Loom__Approval **ret)
{
	void *v;
	size_t len;
	const char *err;
	int rc = loom_store_get(w->store, w->cf_approval, id, strlen(id), &v, &len, &err);
	if (rc != 1)
		return rc;
	*ret = loom__approval__unpack(NULL, len, v);
	free(v);
	return *ret ? 1 : -1;
}

static void approval_put(wf_t *w, loom_batch_t *b, const Loom__Approval *a)
{
	size_t len = loom__approval__get_packed_size(a);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__approval__pack(a, buf);
	loom_batch_put(b, w->cf_approval, a->id, strlen(a->id), buf, len);
	free(buf);
}

int wf_approval_open(wf_t *w, char **ret_error)
{
	loom_iter_t *it = loom_iter_new(w->store, w->cf_approval);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t len;
		const void *v = loom_iter_value(it, &len);
		Loom__Approval *a = loom__approval__unpack(NULL, len, v);
		if (a == NULL)
			continue;
		if (a->state == LOOM__APPROVAL__STATE__PENDING)
			pend_add(a);
		protobuf_c_message_free_unpacked(&a->base, NULL);
	}
	const char *err;
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot read the approvals: %s", err);
		return -1;
	}
	return 0;
}

void wf_approval_close(wf_t *w)
{
	(void)w;
	for (size_t i = 0; i < npends; i++) {
		free(pends[i].id);
		free(pends[i].request_id);
	}
	free(pends);
	pends = NULL;
	npends = 0;
}

static char *new_id(wf_t *w)
{
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
	for (;;) {
		char id[9];
		for (int i = 0; i < 8; i++)
			id[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
		id[8] = '\0';
		Loom__Approval *a;
		int rc = approval_get(w, id, &a);
		if (rc == 1) {
			protobuf_c_message_free_unpacked(&a->base, NULL);
			continue;
		}
		return loom_strdup(id);
	}
}

int wf_person_id(wf_t *w, const char *who, char **ret_id)
{
	Loom__Resource *r;
	const char *err;
	if (wf_res_get_by_id(w, who, &r, &err) == 1) {
		*ret_id = loom_strdup(r->object_id);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return 1;
	}
	if (strchr(who, '\'') || who[0] == '\0')
		return 0;
	char *f = loom_sprintf("/Person[AccountName = '%s']", who);
	loom_xpath_t *x = NULL;
	loom_xpath_error_t xe = { 0 };
	loom_xpath_result_t res;
	loom_xpath_result_init(&res);
	int rc = 0;
	if (loom_xpath_compile(f, NULL, &x, &xe) == 0 && loom_xpath_eval(x, &w->xp, NULL, &res, &xe) == 0 && res.n == 1) {
		const Loom__Attr *a = w->xp.attr(w, res.rids[0], "ObjectID");
		if (a && a->n_values) {
			*ret_id = loom_strdup(a->values[0]->ref);
			rc = 1;
		}
	}
	loom_xpath_error_release(&xe);
	loom_xpath_destroy(&x);
	loom_xpath_result_release(&res);
	free(f);
	return rc;
}

/* ---- mail ---- */

static const char *default_subject = "Approval needed: [//Request/Summary]";
static const char *default_body =
    "Your approval is needed.\n"
    "\n"
    "  what       [//Request/Summary]\n"
    "  requester  [//Requester/DisplayName] ([//Request/Requester])\n"
    "  request    [//Request/ID]\n"
    "  approval   [//Approval/ID]\n"
    "  expires    [//Approval/Expires]\n"
    "\n"
    "[//Approval/Commands]\n";

/* The built-in templates, parsed once (they cannot fail). */
static wf_tmpl_t *builtin_tmpl(int which)
{
	static wf_tmpl_t t[2];
	static bool done[2];
	if (!done[which]) {
		const char *s = which ? default_body : default_subject;
		while (*s) {
			const char *o = strstr(s, "[//");
			size_t n = o ? (size_t)(o - s) : strlen(s);
			if (n) {
				t[which].p = loom_realloc(t[which].p, (t[which].n + 1) * sizeof *t[which].p);
				t[which].p[t[which].n++] = (wf_tmpl_part_t){ .lit = loom_strndup(s, n) };
			}
			if (o == NULL)
				break;
			const char *c = strchr(o, ']');
			char *lk = loom_strndup(o + 3, (size_t)(c - o - 3));
			wf_tmpl_part_t p = { 0 };
			char *slash = strchr(lk, '/');
			*slash = '\0';
			p.lk.root = strcmp(lk, "Request") == 0 ? WFL_REQUEST : strcmp(lk, "Approval") == 0 ? WFL_APPROVAL
			    : WFL_REQUESTER;
			p.lk.path = loom_calloc(1, sizeof *p.lk.path);
			p.lk.path[0] = loom_strdup(slash + 1);
			p.lk.n = 1;
			p.lk.text = loom_strndup(o + 1, (size_t)(c - o - 1));
			free(lk);
			t[which].p = loom_realloc(t[which].p, (t[which].n + 1) * sizeof *t[which].p);
			t[which].p[t[which].n++] = p;
			s = c + 1;
		}
		done[which] = true;
	}
	return &t[which];
}

/* Mails each of ids (who has an Email) about a; returns a note part. */
static char *mail_approvers(wf_ctx_t *c, const Loom__Approval *a, char **ids, size_t n)
{
	loom_buf_t sent = LOOM_BUF_INIT, missing = LOOM_BUF_INIT;
	const wf_activity_t *act = c->act;
	for (size_t i = 0; i < n; i++) {
		Loom__Resource *r;
		const char *err;
		char *addr = NULL;
		if (wf_res_get_by_id(c->w, ids[i], &r, &err) == 1) {
			const Loom__Attr *e = wf_res_attr(r, "Email");
			if (e && e->n_values && e->values[0]->v_case == LOOM__VALUE__V_STR)
				addr = loom_strdup(e->values[0]->str);
			protobuf_c_message_free_unpacked(&r->base, NULL);
		}
		if (addr == NULL) {
			loom_buf_printf(&missing, "%s%s", missing.len ? ", " : "", ids[i]);
			continue;
		}
		c->approval = a;
		c->recipient = ids[i];
		char *subject = wf_tmpl_expand(c, act && act->has_subject ? &act->subject : builtin_tmpl(0));
		char *body = wf_tmpl_expand(c, act && act->has_body ? &act->body : builtin_tmpl(1));
		c->approval = NULL;
		c->recipient = NULL;
		wf_mail_queue(c->w, c->b, &addr, 1, subject, body, a->request_id);
		loom_buf_printf(&sent, "%s%s", sent.len ? ", " : "", addr);
		free(subject);
		free(body);
		free(addr);
	}
	char *s = loom_sprintf("%s%s%s%s", sent.len ? "mail to " : "no mail sent", sent.len ? loom_buf_cstr(&sent) : "",
	    missing.len ? "; without an Email: " : "", missing.len ? loom_buf_cstr(&missing) : "");
	loom_buf_release(&sent);
	loom_buf_release(&missing);
	return s;
}

static void fmt_time(char *out, size_t n, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the activity ---- */

int wf_approval_start(wf_ctx_t *c)
{
	wf_t *w = c->w;
	const wf_activity_t *act = c->act;
	char **ids = NULL;
	size_t n = 0;
	char *why = NULL;
	if (wf_who_ids(c, act->approvers, act->napprovers, &ids, &n, &why) < 0) {
		c->note = loom_sprintf("cannot find the approvers: %s", why);
		free(why);
		return ACT_FAIL;
	}
	if (n == 0) {
		loom_buf_t b = LOOM_BUF_INIT;
		for (size_t i = 0; i < act->napprovers; i++) {
			const wf_who_t *x = &act->approvers[i];
			loom_buf_printf(&b, "%s%s%s", i ? ", " : "", x->kind == WHO_SET ? "set:" : "",
			    x->kind == WHO_LOOKUP ? x->lk.text : x->kind == WHO_FILTER ? loom_xpath_text(x->x) : x->text);
		}
		c->note = loom_sprintf("no approver: %s gives nobody", loom_buf_cstr(&b));
		loom_buf_release(&b);
		free(ids);
		return ACT_FAIL;
	}
	Loom__Approval a = LOOM__APPROVAL__INIT;
	a.id = new_id(w);
	a.request_id = c->rq->id;
	a.instance = (uint32_t)c->ii;
	a.step = c->in->step;
	a.workflow = c->in->workflow;
	a.approvers = ids;
	a.n_approvers = n;
	a.threshold = act->threshold > n ? 0 : act->threshold;
	a.state = LOOM__APPROVAL__STATE__PENDING;
	a.created_at = loom_now_us();
	a.deadline = act->timeout_ms ? a.created_at + act->timeout_ms * 1000 : 0;
	a.summary = wf_request_summary(w, c->rq);
	a.requester = c->rq->requester;
	a.target_id = c->rq->target_id;
	a.target_type = c->rq->target_type;
	approval_put(w, c->b, &a);
	char *mailed = mail_approvers(c, &a, ids, n);
	wf_str_set(&c->in->waiting_for, a.id);
	pend_add(&a);
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "approval %s asked of", a.id);
	for (size_t i = 0; i < n; i++)
		loom_buf_printf(&b, "%s %s", i ? "," : "", ids[i]);
	loom_buf_printf(&b, " (%s); %s", a.threshold == 0 ? "every one must approve"
	    : a.threshold == 1 ? "one is enough" : "several must approve", mailed);
	if (a.deadline) {
		char t[40];
		fmt_time(t, sizeof t, a.deadline);
		loom_buf_printf(&b, "; %s at %s", act->nescalation ? "escalates" : "expires", t);
	}
	c->note = loom_buf_steal(&b);
	free(mailed);
	free(a.id);
	free(a.summary);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return ACT_WAIT;
}

/* ---- deciding ---- */

static bool in_ids(char **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], id) == 0)
			return true;
	return false;
}

static const char *state_name(int s)
{
	static const char *const n[] = { "none", "pending", "approved", "rejected", "expired", "canceled" };
	return s >= 0 && s <= 5 ? n[s] : "unknown";
}

/* Moves the approval's instance on: ok (approved) to its next activity,
 * else failed with note. Writes approval and request in one batch. */
static void conclude(wf_t *w, Loom__Approval *a, const char *hist, bool decided, bool ok, const char *fail_note)
{
	Loom__Request *rq;
	const char *err;
	loom_batch_t *b = loom_batch_new(w->store);
	approval_put(w, b, a);
	if (wf_req_get(w, a->request_id, &rq, &err) != 1) {
		if (wf_store_write(w, b, &err) < 0)
			loom_error("cannot store approval %s: %s", a->id, err);
		loom_batch_destroy(&b);
		return;
	}
	if (a->instance < rq->n_instances) {
		Loom__WorkflowInstance *in = rq->instances[a->instance];
		if (decided && in->state == LOOM__WORKFLOW_INSTANCE__STATE__WAITING && strcmp(in->waiting_for, a->id) == 0) {
			wf_str_set(&in->waiting_for, "");
			if (ok) {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__PENDING;
				in->step++;
				wf_str_set(&in->note, hist);
			} else {
				in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
				in->ended_at = loom_now_us();
				wf_str_set(&in->note, fail_note);
			}
		}
	}
	wf_history(rq, "workflow", hist);
	loom_info("request %s %s", rq->id, hist);
	wf_run_write(w, rq, b);
	loom_batch_destroy(&b);
	if (decided)
		wf_run_enqueue(w, rq->id);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* Finds an approval by its id or a unique prefix of it. */
static int find(wf_t *w, const char *id, Loom__Approval **ret, char **ret_error)
{
	int rc = approval_get(w, id, ret);
	if (rc != 0)
		return rc;
	size_t len = strlen(id);
	char *found = NULL;
	int n = 0;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_approval);
	for (loom_iter_seek(it, id, len); loom_iter_valid(it); loom_iter_next(it)) {
		size_t kl;
		const char *k = loom_iter_key(it, &kl);
		if (kl < len || strncmp(k, id, len) != 0)
			break;
		if (n++ == 0)
			found = loom_strndup(k, kl);
	}
	loom_iter_destroy(&it);
	if (n == 1)
		rc = approval_get(w, found, ret);
	else if (n > 1)
		*ret_error = loom_sprintf("'%s' is the start of %d approval ids: give more of it", id, n);
	free(found);
	return n > 1 ? -2 : rc;
}

int wf_approval_respond(wf_t *w, const Loom__ApprovalRespond *r, Loom__Approval **ret_a, char **ret_error,
    int *ret_code)
{
	*ret_code = LOOM__ERROR__CODE__BAD_REQUEST;
	Loom__Approval *a = NULL;
	int rc = find(w, r->id, &a, ret_error);
	if (rc == -2)
		return -1;
	if (rc != 1) {
		*ret_error = loom_sprintf("no approval '%s'", r->id);
		return -1;
	}
	char *who = NULL;
	if (r->approver[0] == '\0' || wf_person_id(w, r->approver, &who) != 1) {
		*ret_error = loom_sprintf("approver '%s' is no person (give an ObjectID or an AccountName with --as)",
		    r->approver);
		goto fail;
	}
	if (a->state != LOOM__APPROVAL__STATE__PENDING) {
		*ret_error = loom_sprintf("approval %s is %s already", a->id, state_name(a->state));
		goto fail;
	}
	bool esc = a->escalated && in_ids(a->escalation, a->n_escalation, who);
	if (!in_ids(a->approvers, a->n_approvers, who) && !esc) {
		loom_buf_t b = LOOM_BUF_INIT;
		for (size_t i = 0; i < a->n_approvers; i++)
			loom_buf_printf(&b, "%s%s", i ? ", " : "", a->approvers[i]);
		for (size_t i = 0; a->escalated && i < a->n_escalation; i++)
			loom_buf_printf(&b, ", %s", a->escalation[i]);
		*ret_error = loom_sprintf("%s is not an approver of approval %s (approvers: %s)", who, a->id,
		    loom_buf_cstr(&b));
		loom_buf_release(&b);
		goto fail;
	}
	for (size_t i = 0; i < a->n_responses; i++)
		if (strcasecmp(a->responses[i]->approver, who) == 0) {
			*ret_error = loom_sprintf("%s has %s approval %s already", who,
			    a->responses[i]->approved ? "approved" : "rejected", a->id);
			goto fail;
		}
	Loom__ApprovalResponse *resp = loom_malloc(sizeof *resp);
	loom__approval_response__init(resp);
	resp->approver = loom_strdup(who);
	resp->approved = r->approved;
	resp->reason = loom_strdup(r->reason);
	resp->at = loom_now_us();
	a->responses = loom_realloc(a->responses, (a->n_responses + 1) * sizeof *a->responses);
	a->responses[a->n_responses++] = resp;
	size_t yes = 0;
	for (size_t i = 0; i < a->n_responses; i++)
		yes += a->responses[i]->approved && in_ids(a->approvers, a->n_approvers, a->responses[i]->approver);
	bool decided = false, ok = false;
	if (!r->approved) {
		decided = true;
		a->state = LOOM__APPROVAL__STATE__REJECTED;
	} else if (esc || (a->threshold == 0 ? yes >= a->n_approvers : yes >= a->threshold)) {
		decided = ok = true;
		a->state = LOOM__APPROVAL__STATE__APPROVED;
	}
	if (decided) {
		a->decided_at = loom_now_us();
		pend_del(a->id);
	}
	char *hist;
	if (decided)
		hist = loom_sprintf("approval %s %s by %s%s%s", a->id, ok ? "approved" : "rejected", who,
		    r->reason[0] ? ": " : "", r->reason);
	else
		hist = loom_sprintf("approval %s approved by %s (%zu of %zu needed)%s%s", a->id, who, yes,
		    a->threshold ? (size_t)a->threshold : a->n_approvers, r->reason[0] ? ": " : "", r->reason);
	char *fail = loom_sprintf("rejected by %s%s%s", who, r->reason[0] ? ": " : "", r->reason);
	conclude(w, a, hist, decided, ok, fail);
	free(hist);
	free(fail);
	free(who);
	*ret_a = a;
	return 0;
fail:
	free(who);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	return -1;
}

void wf_approval_cancel(wf_t *w, const Loom__Request *rq, loom_batch_t *b)
{
	for (size_t i = 0; i < npends;) {
		if (strcmp(pends[i].request_id, rq->id) != 0) {
			i++;
			continue;
		}
		Loom__Approval *a;
		if (approval_get(w, pends[i].id, &a) == 1) {
			a->state = LOOM__APPROVAL__STATE__CANCELED;
			a->decided_at = loom_now_us();
			approval_put(w, b, a);
			protobuf_c_message_free_unpacked(&a->base, NULL);
		}
		pend_del(pends[i].id);
	}
}

/* ---- deadlines ---- */

static void escalate_or_expire(wf_t *w, const char *id)
{
	Loom__Approval *a;
	if (approval_get(w, id, &a) != 1) {
		pend_del(id);
		return;
	}
	if (a->state != LOOM__APPROVAL__STATE__PENDING) {
		pend_del(id);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return;
	}
	Loom__Request *rq = NULL;
	const char *err;
	const wf_activity_t *act = NULL;
	const wf_def_t *def = NULL;
	if (wf_req_get(w, a->request_id, &rq, &err) == 1 && a->instance < rq->n_instances) {
		def = wf_run_def(w, rq->instances[a->instance]);
		if (def && a->step < def->nacts && def->acts[a->step].type == WFA_APPROVAL)
			act = &def->acts[a->step];
	}
	if (!a->escalated && act && act->nescalation && rq) {
		wf_ctx_t c = { .w = w, .rq = rq, .ii = a->instance, .in = rq->instances[a->instance], .def = def, .act = act };
		wf_ctx_load(&c);
		char **ids = NULL;
		size_t n = 0;
		char *why = NULL;
		if (wf_who_ids(&c, act->escalation, act->nescalation, &ids, &n, &why) == 0 && n > 0) {
			loom_batch_t *b = loom_batch_new(w->store);
			c.b = b;
			a->escalated = true;
			for (size_t i = 0; i < a->n_escalation; i++)
				free(a->escalation[i]);
			free(a->escalation);
			a->escalation = ids;
			a->n_escalation = n;
			a->deadline = loom_now_us() + act->escalation_timeout_ms * 1000;
			approval_put(w, b, a);
			char *mailed = mail_approvers(&c, a, ids, n);
			char t[40];
			fmt_time(t, sizeof t, a->deadline);
			loom_buf_t h = LOOM_BUF_INIT;
			loom_buf_printf(&h, "approval %s escalated (nobody decided in time) to", a->id);
			for (size_t i = 0; i < n; i++)
				loom_buf_printf(&h, "%s %s", i ? "," : "", ids[i]);
			loom_buf_printf(&h, "; %s; expires at %s", mailed, t);
			free(mailed);
			wf_history(rq, "workflow", loom_buf_cstr(&h));
			loom_info("request %s %s", rq->id, loom_buf_cstr(&h));
			loom_buf_release(&h);
			wf_run_write(w, rq, b);
			loom_batch_destroy(&b);
			pend_add(a);
			wf_ctx_release(&c);
			protobuf_c_message_free_unpacked(&rq->base, NULL);
			protobuf_c_message_free_unpacked(&a->base, NULL);
			return;
		}
		if (why)
			loom_warning("approval %s: cannot escalate: %s", a->id, why);
		free(why);
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		wf_ctx_release(&c);
	}
	if (rq)
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	a->state = LOOM__APPROVAL__STATE__EXPIRED;
	a->decided_at = loom_now_us();
	pend_del(a->id);
	char *hist = loom_sprintf("approval %s expired: nobody decided in time%s", a->id, a->escalated ? " (after "
	    "escalation)" : "");
	conclude(w, a, hist, true, false, hist);
	free(hist);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}

void wf_approval_tick(wf_t *w)
{
	int64_t now = loom_now_us();
	for (size_t i = 0; i < npends;) {
		if (pends[i].deadline == 0 || pends[i].deadline > now) {
			i++;
			continue;
		}
		char *id = loom_strdup(pends[i].id);
		size_t before = npends;
		escalate_or_expire(w, id);
		free(id);
		if (npends == before)
			i++; /* escalated: still pending, with a later deadline */
	}
}

/* ---- listing ---- */

static int cmp_created(const void *x, const void *y)
{
	const Loom__Approval *a = *(Loom__Approval *const *)x, *b = *(Loom__Approval *const *)y;
	return a->created_at < b->created_at ? 1 : a->created_at > b->created_at ? -1 : 0;
}

int wf_approval_list(wf_t *w, const Loom__ApprovalList *l, Loom__ApprovalListReply *ret, char **ret_error)
{
	char *who = NULL;
	if (l->approver[0] && wf_person_id(w, l->approver, &who) != 1) {
		*ret_error = loom_sprintf("'%s' is no person (give an ObjectID or an AccountName)", l->approver);
		return -1;
	}
	size_t limit = l->limit == 0 ? 100 : l->limit > 10000 ? 10000 : l->limit;
	Loom__Approval **v = NULL;
	size_t n = 0, cap = 0;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_approval);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t len;
		const void *val = loom_iter_value(it, &len);
		Loom__Approval *a = loom__approval__unpack(NULL, len, val);
		if (a == NULL)
			continue;
		bool keep = l->all || a->state == LOOM__APPROVAL__STATE__PENDING;
		if (keep && who)
			keep = in_ids(a->approvers, a->n_approvers, who) ||
			    (a->escalated && in_ids(a->escalation, a->n_escalation, who));
		if (!keep) {
			protobuf_c_message_free_unpacked(&a->base, NULL);
			continue;
		}
		if (n == cap)
			v = loom_realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
		v[n++] = a;
	}
	const char *err;
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	free(who);
	if (n)
		qsort(v, n, sizeof *v, cmp_created);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot read the approvals: %s", err);
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(&v[i]->base, NULL);
		free(v);
		return -1;
	}
	for (size_t i = limit; i < n; i++)
		protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	ret->truncated = n > limit;
	ret->approvals = v;
	ret->n_approvals = n > limit ? limit : n;
	return 0;
}

/* ---- the bus ---- */

void wf_handle_approval_list(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__ApprovalListReply r = LOOM__APPROVAL_LIST_REPLY__INIT;
	char *err = NULL;
	if (wf_approval_list(w, body, &r, &err) < 0) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__BAD_REQUEST, err);
		free(err);
		return;
	}
	wf_reply(w, env, &r.base);
	for (size_t i = 0; i < r.n_approvals; i++)
		protobuf_c_message_free_unpacked(&r.approvals[i]->base, NULL);
	free(r.approvals);
}

void wf_handle_approval_respond(wf_t *w, Loom__Envelope *env, void *body)
{
	Loom__Approval *a = NULL;
	char *err = NULL;
	int code;
	w->group_commit = true;
	if (wf_approval_respond(w, body, &a, &err, &code) < 0) {
		wf_reply_error(w, env, code, err);
		free(err);
		return;
	}
	/* the request goes on (its next activity, the commit) before the answer */
	wf_run_drain(w);
	char *ferr;
	if (wf_request_flush(w, &ferr) < 0) {
		wf_reply_error(w, env, LOOM__ERROR__CODE__INTERNAL, ferr);
		free(ferr);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return;
	}
	Loom__ApprovalReply r = LOOM__APPROVAL_REPLY__INIT;
	r.approval = a;
	Loom__Request *rq = NULL;
	const char *e;
	if (wf_req_get(w, a->request_id, &rq, &e) == 1)
		r.request = rq;
	wf_reply(w, env, &r.base);
	if (rq)
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	protobuf_c_message_free_unpacked(&a->base, NULL);
}
