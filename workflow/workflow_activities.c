/* workflow_activities.c - the built-in activities (docs/workflows.md):
 * filter validation, notification, function evaluator, create, update and
 * delete of resources, add to a synchronization rule, external programs;
 * and what they share: lookups (//Target/Manager), templates, approvers
 * and recipients. Approvals are in workflow_approval.c.
 *
 * Activities that change resources do it through requests made by the
 * service's own identity, `workflow` (granted everything, as FIM's service
 * account is), each naming the request whose workflow made it (parent) and
 * one deeper (depth), so action workflows that feed each other stop at
 * workflow.max_depth. */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_pbfmt.h"
#include "loom_envelope.h"

#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- values ---- */

static void vals_push(Loom__Value ***v, size_t *n, Loom__Value *x)
{
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = x;
}

static void vals_free(Loom__Value **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	free(v);
}

/* The values of attribute name of r (copies), ObjectID and ObjectType included. */
static void res_values(const Loom__Resource *r, const char *name, Loom__Value ***v, size_t *n)
{
	if (strcmp(name, "ObjectID") == 0) {
		vals_push(v, n, wf_value_str(LOOM__VALUE__V_REF, r->object_id));
		return;
	}
	if (strcmp(name, "ObjectType") == 0) {
		vals_push(v, n, wf_value_str(LOOM__VALUE__V_STR, r->object_type));
		return;
	}
	const Loom__Attr *a = wf_res_attr(r, name);
	for (size_t i = 0; a && i < a->n_values; i++)
		vals_push(v, n, loom_value_dup(a->values[i]));
}

static const char *ref_of(const Loom__Value *v)
{
	return v->v_case == LOOM__VALUE__V_REF ? v->ref : v->v_case == LOOM__VALUE__V_STR ? v->str : NULL;
}

static char *changes_text(const Loom__Request *rq)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < rq->n_changes; i++) {
		const Loom__RequestChange *c = rq->changes[i];
		loom_buf_printf(&b, "%s%s%s", i ? ", " : "", c->op == LOOM__REQUEST_CHANGE__OP__ADD ? "+"
		    : c->op == LOOM__REQUEST_CHANGE__OP__REMOVE ? "-" : "", c->attr);
		for (size_t j = 0; j < c->n_values; j++) {
			char *t = wf_value_text(c->values[j]);
			loom_buf_printf(&b, "%s%s", j ? ";" : " = ", t);
			free(t);
		}
	}
	return loom_buf_steal(&b);
}

char *wf_request_summary(wf_t *w, const Loom__Request *rq)
{
	const char *name = NULL;
	Loom__Resource *r = NULL;
	const char *err;
	if (rq->operation != LOOM__REQUEST__OPERATION__CREATE && wf_res_get_by_id(w, rq->target_id, &r, &err) == 1) {
		const Loom__Attr *a = wf_res_attr(r, "DisplayName");
		if (a == NULL || a->n_values == 0)
			a = wf_res_attr(r, "AccountName");
		if (a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_STR)
			name = a->values[0]->str;
	}
	char *ch = changes_text(rq);
	char *s = loom_sprintf("%s %s %s%s%s%s%s%s", wf_op_name(rq->operation), rq->target_type, name ? "'" : "",
	    name ? name : "", name ? "' " : "", rq->target_id, ch[0] ? ": " : "", ch);
	free(ch);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	return s;
}

static void fmt_time(loom_buf_t *b, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	char t[40];
	gmtime_r(&s, &tm);
	strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S UTC", &tm);
	loom_buf_adds(b, t);
}

static const char *ctl_hint(wf_t *w)
{
	return w->daemon ? loom_daemon_config(w->daemon)->workflow.ctl_hint : "loomctl";
}

/* ---- lookups ---- */

static int field_value(wf_ctx_t *c, const wf_lookup_t *lk, Loom__Value ***v, size_t *n)
{
	const char *f = lk->path[0];
	const Loom__Request *rq = c->rq;
	loom_buf_t b = LOOM_BUF_INIT;
	if (lk->root == WFL_REQUEST) {
		if (strcasecmp(f, "ID") == 0) loom_buf_adds(&b, rq->id);
		else if (strcasecmp(f, "Operation") == 0) loom_buf_adds(&b, wf_op_name(rq->operation));
		else if (strcasecmp(f, "Status") == 0) loom_buf_adds(&b, wf_status_name(rq->status));
		else if (strcasecmp(f, "Requester") == 0) loom_buf_adds(&b, rq->requester);
		else if (strcasecmp(f, "Target") == 0) loom_buf_adds(&b, rq->target_id);
		else if (strcasecmp(f, "TargetType") == 0) loom_buf_adds(&b, rq->target_type);
		else if (strcasecmp(f, "Reason") == 0) loom_buf_adds(&b, rq->reason);
		else if (strcasecmp(f, "Workflow") == 0) loom_buf_adds(&b, c->in ? c->in->workflow : "");
		else if (strcasecmp(f, "Activity") == 0) loom_buf_adds(&b, c->act ? c->act->label : "");
		else if (strcasecmp(f, "Summary") == 0) {
			char *s = wf_request_summary(c->w, rq);
			loom_buf_adds(&b, s);
			free(s);
		} else if (strcasecmp(f, "Changes") == 0) {
			char *s = changes_text(rq);
			loom_buf_adds(&b, s);
			free(s);
		}
	} else {
		const Loom__Approval *a = c->approval;
		if (a == NULL) {
			loom_buf_release(&b);
			return 0;
		}
		if (strcasecmp(f, "ID") == 0) loom_buf_adds(&b, a->id);
		else if (strcasecmp(f, "Summary") == 0) loom_buf_adds(&b, a->summary);
		else if (strcasecmp(f, "Expires") == 0) {
			if (a->deadline)
				fmt_time(&b, a->deadline);
			else
				loom_buf_adds(&b, "never");
		} else if (strcasecmp(f, "Approvers") == 0) {
			for (size_t i = 0; i < a->n_approvers; i++)
				loom_buf_printf(&b, "%s%s", i ? ", " : "", a->approvers[i]);
		} else if (strcasecmp(f, "Decision") == 0) {
			static const char *const st[] = { "none", "pending", "approved", "rejected", "expired", "canceled" };
			loom_buf_adds(&b, (unsigned)a->state < 6 ? st[a->state] : "unknown");
		} else if (strcasecmp(f, "Reasons") == 0) {
			for (size_t i = 0; i < a->n_responses; i++)
				loom_buf_printf(&b, "%s%s: %s", i ? "; " : "", a->responses[i]->approver, a->responses[i]->reason);
		} else if (strcasecmp(f, "Commands") == 0) {
			const char *as = c->recipient ? c->recipient : "YOUR-OBJECTID";
			loom_buf_printf(&b, "  to approve:  %s approve %s --as %s --reason '...'\n"
			    "  to reject:   %s reject %s --as %s --reason '...'", ctl_hint(c->w), a->id, as, ctl_hint(c->w), a->id,
			    as);
		}
	}
	vals_push(v, n, wf_value_str(LOOM__VALUE__V_STR, loom_buf_cstr(&b)));
	loom_buf_release(&b);
	return 0;
}

int wf_lookup_values(wf_ctx_t *c, const wf_lookup_t *lk, Loom__Value ***ret, size_t *ret_n, char **ret_reason)
{
	(void)ret_reason;
	Loom__Value **v = NULL;
	size_t n = 0;
	*ret = NULL;
	*ret_n = 0;
	if (lk->root == WFL_REQUEST || lk->root == WFL_APPROVAL) {
		field_value(c, lk, &v, &n);
		*ret = v;
		*ret_n = n;
		return 0;
	}
	if (lk->root == WFL_DATA) {
		for (size_t i = 0; c->in && i < c->in->n_data; i++)
			if (strcmp(c->in->data[i]->name, lk->path[0]) == 0)
				for (size_t j = 0; j < c->in->data[i]->n_values; j++)
					vals_push(&v, &n, loom_value_dup(c->in->data[i]->values[j]));
		*ret = v;
		*ret_n = n;
		return 0;
	}
	/* resources: start, then step through references */
	Loom__Resource **cur = loom_calloc(1, sizeof *cur);
	size_t ncur = 0;
	bool borrowed = true;
	Loom__Resource *recip = NULL;
	const char *err;
	if (lk->root == WFL_TARGET && c->target)
		cur[ncur++] = c->target;
	else if (lk->root == WFL_REQUESTER && c->requester)
		cur[ncur++] = c->requester;
	else if (lk->root == WFL_RECIPIENT && c->recipient && wf_res_get_by_id(c->w, c->recipient, &recip, &err) == 1)
		cur[ncur++] = recip;
	if (lk->n == 0) {
		for (size_t i = 0; i < ncur; i++)
			vals_push(&v, &n, wf_value_str(LOOM__VALUE__V_REF, cur[i]->object_id));
	}
	for (size_t s = 0; s < lk->n; s++) {
		Loom__Value **sv = NULL;
		size_t sn = 0;
		for (size_t i = 0; i < ncur; i++)
			res_values(cur[i], lk->path[s], &sv, &sn);
		if (!borrowed)
			for (size_t i = 0; i < ncur; i++)
				protobuf_c_message_free_unpacked(&cur[i]->base, NULL);
		ncur = 0;
		if (s + 1 == lk->n) {
			v = sv;
			n = sn;
			break;
		}
		/* a reference step: read what the values name */
		cur = loom_realloc(cur, (sn + 1) * sizeof *cur);
		borrowed = false;
		for (size_t i = 0; i < sn; i++) {
			const char *id = ref_of(sv[i]);
			Loom__Resource *r;
			if (id && wf_res_get_by_id(c->w, id, &r, &err) == 1)
				cur[ncur++] = r;
		}
		vals_free(sv, sn);
	}
	if (!borrowed)
		for (size_t i = 0; i < ncur; i++)
			protobuf_c_message_free_unpacked(&cur[i]->base, NULL);
	free(cur);
	if (recip)
		protobuf_c_message_free_unpacked(&recip->base, NULL);
	*ret = v;
	*ret_n = n;
	return 0;
}

char *wf_tmpl_expand(wf_ctx_t *c, const wf_tmpl_t *t)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < t->n; i++) {
		if (t->p[i].lit) {
			loom_buf_adds(&b, t->p[i].lit);
			continue;
		}
		Loom__Value **v;
		size_t n;
		char *why = NULL;
		if (wf_lookup_values(c, &t->p[i].lk, &v, &n, &why) < 0) {
			free(why);
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			char *s = wf_value_text(v[j]);
			loom_buf_printf(&b, "%s%s", j ? ", " : "", s);
			free(s);
		}
		vals_free(v, n);
	}
	return loom_buf_steal(&b);
}

/* ---- approvers and recipients ---- */

static void ids_push(char ***v, size_t *n, const char *id)
{
	char *s = loom_strdup(id);
	for (char *p = s; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0) {
			free(s);
			return;
		}
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = s;
}

static int eval_filter_ids(wf_t *w, const loom_xpath_t *x, char ***v, size_t *n, char **ret_reason)
{
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	loom_xpath_error_t xe = { 0 };
	if (loom_xpath_eval(x, &w->xp, NULL, &r, &xe) < 0) {
		*ret_reason = loom_sprintf("filter '%s': %s", loom_xpath_text(x), xe.text ? xe.text : "cannot evaluate");
		loom_xpath_error_release(&xe);
		loom_xpath_result_release(&r);
		return -1;
	}
	for (size_t i = 0; i < r.n; i++) {
		const Loom__Attr *a = w->xp.attr(w, r.rids[i], "ObjectID");
		if (a && a->n_values)
			ids_push(v, n, a->values[0]->ref);
	}
	loom_xpath_result_release(&r);
	return 0;
}

static int set_members(wf_t *w, const char *name, char ***v, size_t *n, char **ret_reason)
{
	char q = strchr(name, '\'') ? '"' : '\'';
	char *f = loom_sprintf("/*[(ObjectType = 'Set' or ObjectType = 'Group') and (DisplayName = %c%s%c or "
	    "ObjectID = %c%s%c)]/ComputedMember", q, name, q, q, name, q);
	loom_xpath_t *x = NULL;
	loom_xpath_error_t xe = { 0 };
	int rc;
	if (loom_xpath_compile(f, NULL, &x, &xe) < 0) {
		*ret_reason = loom_sprintf("set:%s: %s", name, xe.text);
		loom_xpath_error_release(&xe);
		rc = -1;
	} else {
		rc = eval_filter_ids(w, x, v, n, ret_reason);
	}
	loom_xpath_destroy(&x);
	free(f);
	return rc;
}

int wf_who_ids(wf_ctx_t *c, const wf_who_t *who, size_t nwho, char ***ret, size_t *ret_n, char **ret_reason)
{
	char **v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nwho; i++) {
		const wf_who_t *x = &who[i];
		int rc = 0;
		switch (x->kind) {
		case WHO_LOOKUP: {
			Loom__Value **vals;
			size_t nv;
			rc = wf_lookup_values(c, &x->lk, &vals, &nv, ret_reason);
			for (size_t j = 0; rc == 0 && j < nv; j++)
				if (vals[j]->v_case == LOOM__VALUE__V_REF)
					ids_push(&v, &n, vals[j]->ref);
			if (rc == 0)
				vals_free(vals, nv);
			break;
		}
		case WHO_FILTER: rc = eval_filter_ids(c->w, x->x, &v, &n, ret_reason); break;
		case WHO_SET: rc = set_members(c->w, x->text, &v, &n, ret_reason); break;
		case WHO_ID: ids_push(&v, &n, x->text); break;
		default: break;
		}
		if (rc < 0) {
			for (size_t k = 0; k < n; k++)
				free(v[k]);
			free(v);
			return -1;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*v)[i], s) == 0)
			return;
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = loom_strdup(s);
}

/* The address of the person id: its Email, or NULL. */
static char *address_of(wf_t *w, const char *id)
{
	Loom__Resource *r;
	const char *err;
	if (wf_res_get_by_id(w, id, &r, &err) != 1)
		return NULL;
	const Loom__Attr *a = wf_res_attr(r, "Email");
	char *s = a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_STR ? loom_strdup(a->values[0]->str) : NULL;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return s;
}

int wf_who_addresses(wf_ctx_t *c, const wf_who_t *who, size_t nwho, char ***ret, size_t *ret_n, char **ret_missing,
    char **ret_reason)
{
	char **v = NULL;
	size_t n = 0;
	loom_buf_t missing = LOOM_BUF_INIT;
	for (size_t i = 0; i < nwho; i++) {
		const wf_who_t *x = &who[i];
		char **ids = NULL;
		size_t nids = 0;
		if (x->kind == WHO_ADDRESS) {
			strv_push(&v, &n, x->text);
			continue;
		}
		if (x->kind == WHO_LOOKUP) {
			Loom__Value **vals;
			size_t nv;
			if (wf_lookup_values(c, &x->lk, &vals, &nv, ret_reason) < 0)
				goto fail;
			for (size_t j = 0; j < nv; j++) {
				if (vals[j]->v_case == LOOM__VALUE__V_REF)
					ids_push(&ids, &nids, vals[j]->ref);
				else if (vals[j]->v_case == LOOM__VALUE__V_STR && strchr(vals[j]->str, '@'))
					strv_push(&v, &n, vals[j]->str);
			}
			vals_free(vals, nv);
		} else if (wf_who_ids(c, x, 1, &ids, &nids, ret_reason) < 0) {
			goto fail;
		}
		for (size_t j = 0; j < nids; j++) {
			char *a = address_of(c->w, ids[j]);
			if (a)
				strv_push(&v, &n, a);
			else
				loom_buf_printf(&missing, "%s%s", missing.len ? ", " : "", ids[j]);
			free(a);
			free(ids[j]);
		}
		free(ids);
	}
	*ret = v;
	*ret_n = n;
	if (ret_missing)
		*ret_missing = missing.len ? loom_buf_steal(&missing) : NULL;
	loom_buf_release(&missing);
	return 0;
fail:
	for (size_t k = 0; k < n; k++)
		free(v[k]);
	free(v);
	loom_buf_release(&missing);
	return -1;
}

/* ---- expressions over the target ---- */

static const Loom__Attr *expr_lookup(void *arg, const char *name)
{
	wf_ctx_t *c = arg;
	static Loom__Attr synth;
	static Loom__Value sv;
	static Loom__Value *svp;
	if (c->target) {
		if (strcasecmp(name, "ObjectID") == 0 || strcasecmp(name, "ObjectType") == 0) {
			loom__attr__init(&synth);
			loom__value__init(&sv);
			bool id = strcasecmp(name, "ObjectID") == 0;
			sv.v_case = id ? LOOM__VALUE__V_REF : LOOM__VALUE__V_STR;
			if (id)
				sv.ref = c->target->object_id;
			else
				sv.str = c->target->object_type;
			svp = &sv;
			synth.name = (char *)name;
			synth.values = &svp;
			synth.n_values = 1;
			return &synth;
		}
		for (size_t i = 0; i < c->target->n_attrs; i++)
			if (strcasecmp(c->target->attrs[i]->name, name) == 0)
				return c->target->attrs[i];
	}
	for (size_t i = 0; c->in && i < c->in->n_data; i++)
		if (strcasecmp(c->in->data[i]->name, name) == 0)
			return c->in->data[i];
	return NULL;
}

static int eval_expr(wf_ctx_t *c, const loom_expr_t *e, loom_expr_result_t *r, char **ret_reason)
{
	char *err = NULL;
	if (loom_expr_eval(e, expr_lookup, c, r, &err) < 0) {
		*ret_reason = loom_sprintf("the expression failed: %s", err ? err : "?");
		free(err);
		return -1;
	}
	return 0;
}

/* ---- requests made by activities ---- */

static Loom__RequestChange *change_new(const char *attr, int op, Loom__Value **v, size_t n)
{
	Loom__RequestChange *ch = loom_malloc(sizeof *ch);
	loom__request_change__init(ch);
	ch->attr = loom_strdup(attr);
	ch->op = op;
	ch->values = loom_calloc(n + 1, sizeof *ch->values);
	for (size_t i = 0; i < n; i++)
		ch->values[ch->n_values++] = loom_value_dup(v[i]);
	return ch;
}

/* The id of the request a step makes for key (a target's ObjectID, or
 * "create"): a name-based UUID (version 8) of the parent request, the
 * instance, the step and key. The same step run again after a restart
 * names the same request, so it finds it instead of making a second one:
 * the child's commit batch (its record under this id) is the mark that the
 * step's effect happened. */
static char *step_request_id(const wf_ctx_t *c, const char *key)
{
	loom_buf_t m = LOOM_BUF_INIT;
	loom_buf_printf(&m, "loom-step%c%s%c%u%c%u%c%s", 0, c->rq->id, 0, (unsigned)c->ii, 0, c->in->step, 0, key);
	uint8_t b[16];
	crypto_generichash(b, sizeof b, (const unsigned char *)m.data, m.len, NULL, 0);
	loom_buf_release(&m);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	return loom_sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
	    b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Submits a request by `workflow`, once per (step, key); returns 0 with
 * *ret_note, or -1 with *ret_note (denied, failed). Takes changes. */
static int submit(wf_ctx_t *c, const char *key, Loom__Request__Operation op, const char *target_id, const char *type,
    Loom__RequestChange **changes, size_t nchanges, char **ret_note, char **ret_target)
{
	Loom__Request in = LOOM__REQUEST__INIT;
	in.requester = (char *)"workflow";
	in.operation = op;
	in.target_id = (char *)(target_id ? target_id : "");
	in.target_type = (char *)(type ? type : "");
	in.changes = changes;
	in.n_changes = nchanges;
	in.parent = c->rq->id;
	in.depth = c->rq->depth + 1;
	char *err = NULL;
	char *id = step_request_id(c, key);
	bool existed = false;
	Loom__Request *rq = wf_request_submit_once(c->w, &in, id, &existed, &err);
	free(id);
	if (existed)
		loom_info("request %s: step %u of %s:%s made request %s before a restart: not made again", c->rq->id,
		    c->in->step + 1, c->in->phase, c->in->workflow, rq->id);
	for (size_t i = 0; i < in.n_changes; i++)
		protobuf_c_message_free_unpacked(&in.changes[i]->base, NULL);
	free(in.changes);
	if (rq == NULL) {
		*ret_note = err;
		return -1;
	}
	int rc = 0;
	switch (rq->status) {
	case LOOM__REQUEST__STATUS__DENIED:
	case LOOM__REQUEST__STATUS__FAILED:
	case LOOM__REQUEST__STATUS__CANCELED:
		*ret_note = loom_sprintf("request %s %s: %s%s", rq->id, wf_status_name(rq->status), rq->reason,
		    existed ? " (made before a restart)" : "");
		rc = -1;
		break;
	default:
		*ret_note = loom_sprintf("request %s %s%s", rq->id, wf_status_name(rq->status),
		    existed ? " (made before a restart)" : "");
		break;
	}
	if (ret_target)
		*ret_target = loom_strdup(rq->target_id);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	return rc;
}

/* The changes of a create or update from its value definitions, evaluated
 * over ctx's target. */
static int build_changes(wf_ctx_t *c, Loom__RequestChange ***ret, size_t *ret_n, char **ret_reason)
{
	const wf_activity_t *a = c->act;
	Loom__RequestChange **v = loom_calloc(a->nvalues + 1, sizeof *v);
	size_t n = 0;
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	for (size_t i = 0; i < a->nvalues; i++) {
		const wf_valdef_t *d = &a->values[i];
		if (d->e == NULL) {
			v[n++] = change_new(d->attr, d->op, NULL, 0);
			continue;
		}
		if (eval_expr(c, d->e, &r, ret_reason) < 0) {
			for (size_t k = 0; k < n; k++)
				protobuf_c_message_free_unpacked(&v[k]->base, NULL);
			free(v);
			loom_expr_result_release(&r);
			return -1;
		}
		if (r.n == 0 && d->op != LOOM__REQUEST_CHANGE__OP__REPLACE)
			continue; /* nothing to add or remove */
		v[n++] = change_new(d->attr, d->op, r.v, r.n);
	}
	loom_expr_result_release(&r);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- the activities ---- */

static int act_filter(wf_ctx_t *c)
{
	const wf_activity_t *a = c->act;
	wf_t *w = c->w;
	bool ok = false;
	char *why = NULL;
	if (c->target == NULL) {
		c->note = loom_strdup("the target does not exist");
		return ACT_FAIL;
	}
	if (a->filter) {
		loom_xpath_result_t r;
		loom_xpath_result_init(&r);
		loom_xpath_error_t xe = { 0 };
		w->overlay = (wf_overlay_t){ .active = true, .rid = c->target->rid, .res = c->target };
		int rc = loom_xpath_matches(a->filter, &w->xp, NULL, c->target->rid, &r, &ok, &xe);
		w->overlay.active = false;
		if (rc < 0) {
			why = loom_sprintf("filter '%s' cannot be evaluated: %s", loom_xpath_text(a->filter), xe.text);
			loom_xpath_error_release(&xe);
		}
		loom_xpath_result_release(&r);
	} else {
		loom_expr_result_t r;
		loom_expr_result_init(&r);
		if (eval_expr(c, a->cond, &r, &why) == 0)
			ok = r.n == 1 && r.v[0]->v_case == LOOM__VALUE__V_BOOL && r.v[0]->bool_;
		loom_expr_result_release(&r);
	}
	if (why) {
		c->note = why;
		return ACT_FAIL;
	}
	if (!ok) {
		c->note = a->reason ? loom_strdup(a->reason)
		    : loom_sprintf("the request does not pass %s", a->filter ? loom_xpath_text(a->filter) : "the condition");
		return ACT_FAIL;
	}
	c->note = loom_strdup("passed");
	return ACT_NEXT;
}

static int act_notify(wf_ctx_t *c)
{
	const wf_activity_t *a = c->act;
	char **to;
	size_t nto;
	char *missing = NULL, *why = NULL;
	if (wf_who_addresses(c, a->to, a->nto, &to, &nto, &missing, &why) < 0) {
		c->note = loom_sprintf("no mail sent: %s", why);
		free(why);
		return ACT_NEXT; /* a notification that cannot go does not stop the request */
	}
	loom_buf_t n = LOOM_BUF_INIT;
	if (nto) {
		char *subject = wf_tmpl_expand(c, &a->subject);
		char *body = wf_tmpl_expand(c, &a->body);
		wf_mail_queue(c->w, c->b, to, nto, subject, body, c->rq->id);
		loom_buf_printf(&n, "mail '%s' to", subject);
		for (size_t i = 0; i < nto; i++)
			loom_buf_printf(&n, "%s %s", i ? "," : "", to[i]);
		free(subject);
		free(body);
	} else {
		loom_buf_adds(&n, "no mail sent: no recipient");
	}
	if (missing)
		loom_buf_printf(&n, "; without an Email: %s", missing);
	free(missing);
	for (size_t i = 0; i < nto; i++)
		free(to[i]);
	free(to);
	c->note = loom_buf_steal(&n);
	return ACT_NEXT;
}

static void data_set(Loom__WorkflowInstance *in, const char *name, Loom__Value **v, size_t n)
{
	Loom__Attr *a = NULL;
	for (size_t i = 0; i < in->n_data; i++)
		if (strcmp(in->data[i]->name, name) == 0)
			a = in->data[i];
	if (a == NULL) {
		a = loom_malloc(sizeof *a);
		loom__attr__init(a);
		a->name = loom_strdup(name);
		in->data = loom_realloc(in->data, (in->n_data + 1) * sizeof *in->data);
		in->data[in->n_data++] = a;
	}
	for (size_t i = 0; i < a->n_values; i++)
		protobuf_c_message_free_unpacked(&a->values[i]->base, NULL);
	free(a->values);
	a->values = loom_calloc(n + 1, sizeof *a->values);
	a->n_values = 0;
	for (size_t i = 0; i < n; i++)
		a->values[a->n_values++] = loom_value_dup(v[i]);
}

static char *values_text(Loom__Value **v, size_t n)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		char *t = wf_value_text(v[i]);
		loom_buf_printf(&b, "%s%s", i ? ";" : "", t);
		free(t);
	}
	if (n == 0)
		loom_buf_adds(&b, "(none)");
	return loom_buf_steal(&b);
}

static int act_function(wf_ctx_t *c)
{
	const wf_activity_t *a = c->act;
	loom_expr_result_t r;
	loom_expr_result_init(&r);
	char *why = NULL;
	if (eval_expr(c, a->expr, &r, &why) < 0) {
		c->note = why;
		loom_expr_result_release(&r);
		return ACT_FAIL;
	}
	char *vt = values_text(r.v, r.n);
	int rc = ACT_NEXT;
	if (a->dest.root == WFL_DATA) {
		data_set(c->in, a->dest.path[0], r.v, r.n);
		c->note = loom_sprintf("WorkflowData/%s = %s", a->dest.path[0], vt);
	} else if (c->target == NULL) {
		c->note = loom_sprintf("the target %s is gone: %s not written", c->in->target_id, a->dest.path[0]);
	} else {
		Loom__RequestChange **ch = loom_calloc(2, sizeof *ch);
		ch[0] = change_new(a->dest.path[0], LOOM__REQUEST_CHANGE__OP__REPLACE, r.v, r.n);
		char *note = NULL;
		if (submit(c, c->target->object_id, LOOM__REQUEST__OPERATION__MODIFY, c->target->object_id,
		        c->target->object_type, ch, 1, &note, NULL) < 0)
			rc = ACT_FAIL;
		c->note = loom_sprintf("%s = %s: %s", a->dest.path[0], vt, note);
		free(note);
	}
	free(vt);
	loom_expr_result_release(&r);
	return rc;
}

static int act_create(wf_ctx_t *c)
{
	Loom__RequestChange **ch;
	size_t n;
	char *why = NULL;
	if (build_changes(c, &ch, &n, &why) < 0) {
		c->note = why;
		return ACT_FAIL;
	}
	char *note = NULL, *id = NULL;
	int rc = submit(c, "create", LOOM__REQUEST__OPERATION__CREATE, NULL, c->act->object_type, ch, n, &note, &id);
	c->note = loom_sprintf("%s %s: %s", c->act->object_type, id ? id : "", note);
	free(note);
	free(id);
	return rc < 0 ? ACT_FAIL : ACT_NEXT;
}

static int targets_of(wf_ctx_t *c, char ***ret, size_t *ret_n)
{
	wf_who_t who = { .kind = WHO_LOOKUP, .lk = c->act->target };
	char *why = NULL;
	if (wf_who_ids(c, &who, 1, ret, ret_n, &why) < 0) {
		c->note = why;
		return -1;
	}
	return 0;
}

static int act_update_delete(wf_ctx_t *c)
{
	char **ids;
	size_t nids;
	if (targets_of(c, &ids, &nids) < 0)
		return ACT_FAIL;
	loom_buf_t b = LOOM_BUF_INIT;
	int rc = ACT_NEXT;
	if (nids == 0)
		loom_buf_printf(&b, "%s gives nobody: nothing to do", c->act->target.text);
	for (size_t i = 0; i < nids; i++) {
		char *note = NULL;
		int r;
		if (c->act->type == WFA_DELETE) {
			r = submit(c, ids[i], LOOM__REQUEST__OPERATION__DELETE, ids[i], NULL, NULL, 0, &note, NULL);
		} else {
			Loom__RequestChange **ch;
			size_t n;
			char *why = NULL;
			if (build_changes(c, &ch, &n, &why) < 0) {
				note = why;
				r = -1;
			} else if (n == 0) {
				free(ch);
				note = loom_strdup("nothing to change");
				r = 0;
			} else {
				r = submit(c, ids[i], LOOM__REQUEST__OPERATION__MODIFY, ids[i], NULL, ch, n, &note, NULL);
			}
		}
		loom_buf_printf(&b, "%s%s %s: %s", i ? "; " : "", c->act->type == WFA_DELETE ? "delete" : "update", ids[i],
		    note);
		free(note);
		if (r < 0)
			rc = ACT_FAIL;
		free(ids[i]);
	}
	free(ids);
	c->note = loom_buf_steal(&b);
	return rc;
}

static int act_sync_rule(wf_ctx_t *c)
{
	const wf_activity_t *a = c->act;
	if (c->target == NULL) {
		c->note = loom_sprintf("the target %s is gone", c->in->target_id);
		return ACT_FAIL;
	}
	const Loom__Attr *cur = wf_res_attr(c->target, a->rule_attr);
	bool has = false;
	for (size_t i = 0; cur && i < cur->n_values; i++)
		has = has || (cur->values[i]->v_case == LOOM__VALUE__V_STR && strcmp(cur->values[i]->str, a->rule) == 0);
	if (has != a->remove) {
		c->note = loom_sprintf("%s %s in rule '%s' (%s)", a->remove ? "not" : "already", c->target->object_id, a->rule,
		    a->rule_attr);
		return ACT_NEXT;
	}
	Loom__Value *v = wf_value_str(LOOM__VALUE__V_STR, a->rule);
	Loom__RequestChange **ch = loom_calloc(2, sizeof *ch);
	ch[0] = change_new(a->rule_attr, a->remove ? LOOM__REQUEST_CHANGE__OP__REMOVE : LOOM__REQUEST_CHANGE__OP__ADD, &v, 1);
	protobuf_c_message_free_unpacked(&v->base, NULL);
	char *note = NULL;
	int rc = submit(c, c->target->object_id, a->remove ? LOOM__REQUEST__OPERATION__REMOVE_VALUES : LOOM__REQUEST__OPERATION__ADD_VALUES,
	    c->target->object_id, c->target->object_type, ch, 1, &note, NULL);
	c->note = loom_sprintf("%s %s rule '%s' (%s %s): %s", c->target->object_id, a->remove ? "taken out of" : "added to",
	    a->rule, a->remove ? "-" : "+", a->rule_attr, note);
	free(note);
	return rc < 0 ? ACT_FAIL : ACT_NEXT;
}

/* ---- external programs ---- */

typedef struct ext {
	pid_t pid;                 /* the program (leader of its process group) */
	char *request_id;          /* whose */
	uint32_t ii, step;         /* instance and activity */
	int64_t deadline_ms;       /* monotonic: killed then */
	long long timeout_ms;      /* as configured */
	char *in_path, *out_path;  /* its stdin and stdout/stderr files */
	bool killed;               /* killed at its timeout, or canceled */
	bool canceled;             /* its request ended another way */
} ext_t;

static ext_t *exts;
static size_t nexts;

static char *run_dir(wf_t *w)
{
	const char *sd = w->daemon ? loom_daemon_config(w->daemon)->state_dir : NULL;
	char *d = sd ? loom_sprintf("%s/workflow-run", sd) : loom_sprintf("%s-run", loom_store_path(w->store));
	(void)mkdir(d, 0700);
	return d;
}

/* The instance is no longer in its program. */
static void ext_unmark(Loom__WorkflowInstance *in)
{
	in->state = LOOM__WORKFLOW_INSTANCE__STATE__PENDING;
	wf_str_set(&in->waiting_for, "");
	in->external_started_at = 0;
	in->external_pid = 0;
}

static int act_external(wf_ctx_t *c)
{
	const wf_activity_t *a = c->act;
	wf_t *w = c->w;
	char *dir = run_dir(w);
	char *in_path = loom_sprintf("%s/%s.%u.%u.in", dir, c->rq->id, (unsigned)c->ii, c->in->step);
	char *out_path = loom_sprintf("%s/%s.%u.%u.out", dir, c->rq->id, (unsigned)c->ii, c->in->step);
	free(dir);
	loom_buf_t j = LOOM_BUF_INIT;
	loom_buf_adds(&j, "{\"workflow\":");
	loom_buf_add_json_str(&j, c->in->workflow, strlen(c->in->workflow));
	loom_buf_adds(&j, ",\"phase\":");
	loom_buf_add_json_str(&j, c->in->phase, strlen(c->in->phase));
	loom_buf_adds(&j, ",\"activity\":");
	loom_buf_add_json_str(&j, a->label, strlen(a->label));
	loom_buf_adds(&j, ",\"request\":");
	loom_pbfmt_json(&j, &c->rq->base);
	loom_buf_adds(&j, ",\"target\":");
	if (c->target)
		loom_pbfmt_json(&j, &c->target->base);
	else
		loom_buf_adds(&j, "null");
	loom_buf_adds(&j, ",\"requester\":");
	if (c->requester)
		loom_pbfmt_json(&j, &c->requester->base);
	else
		loom_buf_adds(&j, "null");
	loom_buf_adds(&j, "}\n");
	int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, j.data, j.len) == (ssize_t)j.len;
	if (fd >= 0)
		close(fd);
	loom_buf_release(&j);
	if (!ok) {
		c->note = loom_sprintf("cannot write '%s': %s", in_path, strerror(errno));
		free(in_path);
		free(out_path);
		return ACT_FAIL;
	}
	/* the "started" mark, durable before the program exists: a restart that
	 * finds it, with no end recorded, knows the program may have run
	 * (wf_run_recover decides by on_restart) */
	c->in->state = LOOM__WORKFLOW_INSTANCE__STATE__WAITING;
	wf_str_set(&c->in->waiting_for, "external");
	c->in->external_started_at = loom_now_us();
	c->in->external_pid = 0;
	{
		loom_batch_t *mb = loom_batch_new(w->store);
		wf_req_write(w, mb, c->rq);
		const char *werr;
		int wrc = loom_store_write(w->store, mb, &werr);
		loom_batch_destroy(&mb);
		if (wrc < 0) {
			c->note = loom_sprintf("cannot store the started mark: %s", werr);
			ext_unmark(c->in);
			unlink(in_path);
			free(in_path);
			free(out_path);
			return ACT_FAIL;
		}
	}
	if (w->crash_at && strcmp(w->crash_at, "external:marked") == 0) {
		loom_warning("fault injection: killing myself after an external activity's started mark, before its "
		    "program is spawned (LOOM_WORKFLOW_CRASH_AT)");
		raise(SIGKILL);
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	sigset_t dfl;
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	/* its environment: ours and what it is about */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **env = loom_calloc(ne + 4, sizeof *env);
	for (size_t i = 0; i < ne; i++)
		env[i] = environ[i];
	char *e1 = loom_sprintf("LOOM_REQUEST_ID=%s", c->rq->id);
	char *e2 = loom_sprintf("LOOM_WORKFLOW=%s", c->in->workflow);
	char *e3 = loom_sprintf("LOOM_TARGET_ID=%s", c->in->target_id);
	env[ne] = e1;
	env[ne + 1] = e2;
	env[ne + 2] = e3;
	pid_t pid;
	int rc = posix_spawn(&pid, a->argv[0], &fa, &at, a->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	free(e1);
	free(e2);
	free(e3);
	if (rc != 0) {
		c->note = loom_sprintf("cannot run '%s': %s", a->argv[0], strerror(rc));
		ext_unmark(c->in);
		unlink(in_path);
		free(in_path);
		free(out_path);
		return ACT_FAIL;
	}
	exts = loom_realloc(exts, (nexts + 1) * sizeof *exts);
	exts[nexts++] = (ext_t){ .pid = pid, .request_id = loom_strdup(c->rq->id), .ii = (uint32_t)c->ii,
		.step = c->in->step, .deadline_ms = loom_mono_ms() + a->timeout_ms, .timeout_ms = a->timeout_ms,
		.in_path = in_path, .out_path = out_path };
	c->in->external_pid = (int32_t)pid;
	c->note = loom_sprintf("'%s' started (pid %d, timeout %llds)", a->argv[0], (int)pid, a->timeout_ms / 1000);
	return ACT_WAIT;
}

/* The last line the program wrote (at most 300 bytes). */
static char *last_line(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return loom_strdup("");
	char line[512], last[512] = "";
	while (fgets(line, sizeof line, f)) {
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		if (l)
			snprintf(last, sizeof last, "%.300s", line);
	}
	fclose(f);
	return loom_strdup(last);
}

static void ext_done(wf_t *w, ext_t *e, int status)
{
	char *out = last_line(e->out_path);
	char *note;
	bool ok = false;
	if (e->canceled)
		note = loom_strdup("canceled");
	else if (e->killed)
		note = loom_sprintf("killed after its timeout of %lld ms%s%s", e->timeout_ms, out[0] ? ": " : "", out);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ok = true;
		note = loom_sprintf("exit 0%s%s", out[0] ? ": " : "", out);
	} else if (WIFEXITED(status))
		note = loom_sprintf("exit %d%s%s", WEXITSTATUS(status), out[0] ? ": " : "", out);
	else
		note = loom_sprintf("killed by signal %d%s%s", WTERMSIG(status), out[0] ? ": " : "", out);
	free(out);
	unlink(e->in_path);
	unlink(e->out_path);
	Loom__Request *rq;
	const char *err;
	if (!e->canceled && wf_req_get(w, e->request_id, &rq, &err) == 1) {
		if (e->ii < rq->n_instances) {
			Loom__WorkflowInstance *in = rq->instances[e->ii];
			if (in->state == LOOM__WORKFLOW_INSTANCE__STATE__WAITING && in->step == e->step &&
			    strcmp(in->waiting_for, "external") == 0) {
				const wf_def_t *def = wf_run_def(w, in);
				const char *label = def && e->step < def->nacts ? def->acts[e->step].label : "external";
				/* the "done" mark: the program's end, with the step's outcome, in one write */
				ext_unmark(in);
				if (ok) {
					in->state = LOOM__WORKFLOW_INSTANCE__STATE__PENDING;
					in->step++;
					wf_str_set(&in->note, note);
				} else {
					in->state = LOOM__WORKFLOW_INSTANCE__STATE__FAILED;
					in->ended_at = loom_now_us();
					char *n = loom_sprintf("%s: %s", label, note);
					wf_str_set(&in->note, n);
					free(n);
				}
				char *h = loom_sprintf("%s:%s %s: %s", in->phase, in->workflow, label, note);
				wf_history(rq, "workflow", h);
				loom_info("request %s %s", rq->id, h);
				free(h);
				loom_batch_t *b = loom_batch_new(w->store);
				wf_run_write(w, rq, b);
				loom_batch_destroy(&b);
				wf_run_enqueue(w, rq->id);
			}
		}
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	}
	free(note);
	free(e->request_id);
	free(e->in_path);
	free(e->out_path);
}

size_t wf_ext_poll(wf_t *w)
{
	int64_t now = loom_mono_ms();
	for (size_t i = 0; i < nexts;) {
		ext_t *e = &exts[i];
		int status = 0;
		pid_t r = waitpid(e->pid, &status, WNOHANG);
		if (r == 0 && !e->killed && now >= e->deadline_ms) {
			kill(-e->pid, SIGKILL);
			kill(e->pid, SIGKILL);
			e->killed = true;
			r = waitpid(e->pid, &status, 0);
		}
		if (r == 0) {
			i++;
			continue;
		}
		ext_t done = *e;
		exts[i] = exts[--nexts];
		ext_done(w, &done, status);
	}
	return nexts;
}

void wf_ext_kill_request(wf_t *w, const char *request_id)
{
	(void)w;
	for (size_t i = 0; i < nexts; i++)
		if (strcmp(exts[i].request_id, request_id) == 0 && !exts[i].killed) {
			kill(-exts[i].pid, SIGKILL);
			kill(exts[i].pid, SIGKILL);
			exts[i].killed = exts[i].canceled = true;
		}
}

bool wf_ext_kill_orphan(wf_t *w, const char *request_id)
{
	(void)w;
	bool any = false;
	char *want = loom_sprintf("LOOM_REQUEST_ID=%s", request_id);
	size_t wlen = strlen(want);
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == (long)getpid())
			continue;
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/environ", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone, or not ours */
		loom_buf_t env = LOOM_BUF_INIT;
		char chunk[4096];
		ssize_t n;
		while ((n = read(fd, chunk, sizeof chunk)) > 0)
			loom_buf_add(&env, chunk, (size_t)n);
		close(fd);
		bool match = false;
		for (size_t off = 0; off < env.len && !match;) { /* NUL-separated NAME=VALUE */
			const char *v = (const char *)env.data + off;
			size_t l = strnlen(v, env.len - off);
			match = l == wlen && memcmp(v, want, l) == 0;
			off += l + 1;
		}
		loom_buf_release(&env);
		if (match) {
			pid_t pg = getpgid((pid_t)pid);
			if (pg > 1 && pg != getpgrp())
				kill(-pg, SIGKILL);
			kill((pid_t)pid, SIGKILL);
			any = true;
		}
	}
	if (d)
		closedir(d);
	free(want);
	return any;
}

void wf_ext_close(wf_t *w)
{
	(void)w;
	for (size_t i = 0; i < nexts; i++) {
		/* left running: its result is not waited for; after a restart the
		 * activity runs again */
		free(exts[i].request_id);
		free(exts[i].in_path);
		free(exts[i].out_path);
	}
	free(exts);
	exts = NULL;
	nexts = 0;
}

/* ---- dispatch ---- */

int wf_activity_run(wf_ctx_t *c)
{
	switch (c->act->type) {
	case WFA_APPROVAL: return wf_approval_start(c);
	case WFA_FILTER: return act_filter(c);
	case WFA_NOTIFY: return act_notify(c);
	case WFA_FUNCTION: return act_function(c);
	case WFA_CREATE: return act_create(c);
	case WFA_UPDATE:
	case WFA_DELETE: return act_update_delete(c);
	case WFA_SYNC_RULE: return act_sync_rule(c);
	case WFA_EXTERNAL: return act_external(c);
	}
	c->note = loom_strdup("unknown activity");
	return ACT_FAIL;
}
