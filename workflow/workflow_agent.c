/* workflow_agent.c - the policy service as a connected system (issue 6
 * item 7, docs/policy.md "The service as a connected system"): loom-workflow
 * answers agent.proto for every config/agents/NAME.yaml of type policy that
 * names it (policy.service), as the FIM service MA does.
 *
 * Import: a resource of the agent's object types is an object whose anchor
 * and DN are its ObjectID; reference values travel as ObjectIDs (strings:
 * the agent's `references:` list makes them references in the engine).
 *   full   every resource, read from one snapshot of the store
 *   delta  every resource the change log (family chg, one row per commit,
 *          written with the commit) names after the watermark, as it is now
 *          (REPLACE) or DELETE when it is gone
 * The watermark is "STORE_ID:N": N the last commit number the import
 * covered; a watermark from another store, or older than the change log
 * still holds, is refused (watermark_lost: the engine runs a full import).
 *
 * Export: each change becomes a request by the agent's requester (`sync`
 * by default), through the whole pipeline, MPRs included:
 *   ADD    -> create (object type: the change's), result anchor = ObjectID
 *   UPDATE -> modify (REPLACE/ADD/DELETE deltas -> replace/add/remove)
 *   DELETE -> delete (a resource already gone is ok)
 * completed -> ok; denied -> "denied" with the reason, not retryable;
 * failed -> "failed", retryable. A change the engine sends again (it did not
 * see the result: a crash) is answered from the request it made before, by
 * the origin row written in the commit (key: agent and change_id, with a
 * hash of the change so a reused change_id is not mistaken for it).
 */
#include "workflow.h"
#include "loom_agentcfg.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct wf_import {
	bool active;               /* a run in progress */
	uint64_t run_id;           /* the engine's run */
	char *engine;              /* who asked (replies go there) */
	const loom_agentcfg_t *agent;
	bool delta;                /* delta (change log) or full (resources) */
	uint32_t batch_size;       /* objects per batch */
	uint32_t credit;           /* batches it may still send */
	uint64_t seq;              /* batches sent */
	uint64_t objects;          /* objects sent */
	uint64_t wm;               /* the last commit number covered */
	loom_iter_t *it;           /* over res (full) or chg (delta), on a snapshot */
	loom_map_t *seen;          /* delta: ObjectIDs sent already */
} wf_import_t;

struct wf_agents {
	loom_agentcfg_t *cfgs;     /* every agent config of the deployment */
	size_t ncfgs;              /* how many */
	wf_import_t imp;           /* the import in progress (the engine runs one at a time) */
};

static bool serves(const wf_t *w, const loom_agentcfg_t *a)
{
	return a->type == LOOM_AGENT_POLICY && strcmp(a->policy.service, loom_daemon_service(w->daemon)) == 0;
}

int wf_agents_load(wf_t *w, const char *deploy_path, const char *service, char **ret_error)
{
	(void)service;
	w->agents = loom_calloc(1, sizeof *w->agents);
	char *dir = loom_agentcfg_dir(deploy_path);
	struct stat st;
	if (stat(dir, &st) < 0 && errno == ENOENT) {
		free(dir); /* no agents here: the service serves none */
		return 0;
	}
	loom_cfg_diags_t diags = { 0 };
	int rc = loom_agentcfg_load_dir(dir, &w->agents->cfgs, &w->agents->ncfgs, &diags);
	free(dir);
	if (rc < 0) {
		*ret_error = loom_cfg_diags_join(&diags, "\n");
		loom_cfg_diags_release(&diags);
		return -1;
	}
	for (size_t i = 0; i < w->agents->ncfgs; i++)
		if (serves(w, &w->agents->cfgs[i]))
			loom_info("serving policy agent '%s' types=%zu requester=%s", w->agents->cfgs[i].name,
			    w->agents->cfgs[i].policy.object_types.n, w->agents->cfgs[i].policy.requester);
	return 0;
}

static void import_stop(wf_import_t *im)
{
	loom_iter_destroy(&im->it);
	loom_map_destroy(&im->seen);
	free(im->engine);
	memset(im, 0, sizeof *im);
}

void wf_agents_free(wf_t *w)
{
	if (w->agents == NULL)
		return;
	import_stop(&w->agents->imp);
	loom_agentcfg_free_all(&w->agents->cfgs, w->agents->ncfgs);
	free(w->agents);
	w->agents = NULL;
}

static const loom_agentcfg_t *agent_find(wf_t *w, const char *name)
{
	for (size_t i = 0; w->agents && i < w->agents->ncfgs; i++)
		if (strcmp(w->agents->cfgs[i].name, name) == 0 && serves(w, &w->agents->cfgs[i]))
			return &w->agents->cfgs[i];
	return NULL;
}

static bool type_served(const loom_agentcfg_t *a, const char *type)
{
	for (size_t i = 0; i < a->policy.object_types.n; i++)
		if (strcmp(a->policy.object_types.v[i], type) == 0)
			return true;
	return false;
}

/* ---- import ---- */

static void send_batch(wf_t *w, wf_import_t *im, Loom__ImportBatch *b)
{
	const char *err;
	if (loom_bus_send(loom_daemon_bus(w->daemon), im->engine, &b->base, NULL, NULL, &err) < 0)
		loom_warning("cannot send import batch run=%llu seq=%llu: %s", (unsigned long long)b->run_id,
		    (unsigned long long)b->seq, err);
}

static void send_end(wf_t *w, wf_import_t *im, const char *failure, bool lost)
{
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = im->run_id;
	b.seq = ++im->seq;
	b.last = true;
	b.failed = failure != NULL;
	b.message = (char *)(failure ? failure : "");
	b.watermark_lost = lost;
	send_batch(w, im, &b);
	if (failure)
		loom_error("import failed run=%llu agent=%s: %s", (unsigned long long)im->run_id, im->agent->name, failure);
	else
		loom_warning("import run=%llu agent=%s: the watermark is not this store's or older than the change log "
		    "holds: a full import is needed", (unsigned long long)im->run_id, im->agent->name);
	import_stop(im);
}

/* The object of resource r (references as ObjectID strings; a Set's or
 * Group's ComputedMember, which the service keeps apart, added). */
static Loom__ImportObject *object_of(wf_t *w, Loom__Resource *r, Loom__ImportObject__Change change)
{
	if (change != LOOM__IMPORT_OBJECT__CHANGE__DELETE && w->sets)
		wf_sets_decorate(w, r);
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = change;
	o->anchor = loom_strdup(r->object_id);
	o->dn = loom_strdup(r->object_id);
	o->object_type = loom_strdup(r->object_type);
	if (change == LOOM__IMPORT_OBJECT__CHANGE__DELETE)
		return o;
	o->attrs = loom_calloc(r->n_attrs ? r->n_attrs : 1, sizeof *o->attrs);
	for (size_t i = 0; i < r->n_attrs; i++) {
		const Loom__Attr *a = r->attrs[i];
		Loom__Attr *c = loom_malloc(sizeof *c);
		loom__attr__init(c);
		c->name = loom_strdup(a->name);
		c->values = loom_calloc(a->n_values ? a->n_values : 1, sizeof *c->values);
		for (size_t k = 0; k < a->n_values; k++) {
			Loom__Value *v = loom_value_dup(a->values[k]);
			if (v->v_case == LOOM__VALUE__V_REF)
				v->v_case = LOOM__VALUE__V_STR; /* same storage: the agent's references: retags it */
			c->values[c->n_values++] = v;
		}
		o->attrs[o->n_attrs++] = c;
	}
	return o;
}

/* The next object: 1 with *ret, 0 at the end, -1 with *ret_error. */
static int next_object(wf_t *w, wf_import_t *im, Loom__ImportObject **ret, char **ret_error)
{
	for (; loom_iter_valid(im->it); loom_iter_next(im->it)) {
		size_t len;
		const void *v = loom_iter_value(im->it, &len);
		if (!im->delta) {
			Loom__Resource *r = loom__resource__unpack(NULL, len, v);
			if (r == NULL) {
				loom_warning("import: a resource record does not decode; skipped");
				continue;
			}
			Loom__ImportObject *o = type_served(im->agent, r->object_type)
			    ? object_of(w, r, LOOM__IMPORT_OBJECT__CHANGE__FULL) : NULL;
			protobuf_c_message_free_unpacked(&r->base, NULL);
			if (o) {
				loom_iter_next(im->it);
				*ret = o;
				return 1;
			}
			continue;
		}
		size_t klen;
		const unsigned char *k = loom_iter_key(im->it, &klen);
		if (klen == 8)
			im->wm = loom_store_get_u64be(k);
		Loom__ResourceChange *c = loom__resource_change__unpack(NULL, len, v);
		if (c == NULL) {
			loom_warning("import: a change-log record does not decode; skipped");
			continue;
		}
		Loom__ImportObject *o = NULL;
		if (type_served(im->agent, c->object_type) && loom_map_get(im->seen, c->object_id, strlen(c->object_id)) == NULL) {
			loom_map_put(im->seen, c->object_id, strlen(c->object_id), (void *)1);
			Loom__Resource *r = NULL;
			const char *err;
			int rc = wf_res_get_by_id(w, c->object_id, &r, &err);
			if (rc < 0) {
				*ret_error = loom_sprintf("cannot read resource %s: %s", c->object_id, err);
				protobuf_c_message_free_unpacked(&c->base, NULL);
				return -1;
			}
			if (rc == 1) {
				o = object_of(w, r, LOOM__IMPORT_OBJECT__CHANGE__REPLACE);
				protobuf_c_message_free_unpacked(&r->base, NULL);
			} else {
				Loom__Resource gone = LOOM__RESOURCE__INIT;
				gone.object_id = c->object_id;
				gone.object_type = c->object_type;
				o = object_of(w, &gone, LOOM__IMPORT_OBJECT__CHANGE__DELETE);
			}
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
		if (o) {
			loom_iter_next(im->it);
			*ret = o;
			return 1;
		}
	}
	const char *err;
	if (loom_iter_status(im->it, &err) < 0) {
		*ret_error = loom_sprintf("cannot read the store: %s", err);
		return -1;
	}
	return 0;
}

static void produce(wf_t *w)
{
	wf_import_t *im = &w->agents->imp;
	while (im->active && im->credit > 0) {
		Loom__ImportBatch *b = loom_malloc(sizeof *b);
		loom__import_batch__init(b);
		b->run_id = im->run_id;
		b->objects = loom_calloc(im->batch_size, sizeof *b->objects);
		int rc = 1;
		char *fatal = NULL;
		while (b->n_objects < im->batch_size) {
			Loom__ImportObject *o;
			if ((rc = next_object(w, im, &o, &fatal)) != 1)
				break;
			b->objects[b->n_objects++] = o;
		}
		if (rc < 0) {
			loom__import_batch__free_unpacked(b, NULL);
			send_end(w, im, fatal, false);
			free(fatal);
			return;
		}
		b->seq = ++im->seq;
		im->objects += b->n_objects;
		if (rc == 0) {
			b->last = true;
			char *wm = loom_sprintf("%s:%llu", w->store_id, (unsigned long long)im->wm);
			b->watermark.len = strlen(wm);
			b->watermark.data = (uint8_t *)wm;
		}
		send_batch(w, im, b);
		im->credit--;
		bool last = b->last;
		loom__import_batch__free_unpacked(b, NULL);
		if (last) {
			loom_info("import sent run=%llu agent=%s mode=%s objects=%llu batches=%llu watermark=%llu",
			    (unsigned long long)im->run_id, im->agent->name, im->delta ? "delta" : "full",
			    (unsigned long long)im->objects, (unsigned long long)im->seq, (unsigned long long)im->wm);
			import_stop(im);
		}
	}
}

static void import_start(void *arg, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	wf_t *w = arg;
	wf_import_t *im = &w->agents->imp;
	const loom_agentcfg_t *a = agent_find(w, rq->agent);
	if (a == NULL) {
		char *m = loom_sprintf("loom-workflow serves no policy agent '%s' (config/agents/%s.yaml with type policy "
		    "and policy.service %s)", rq->agent, rq->agent, loom_daemon_service(w->daemon));
		Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
		b.run_id = rq->run_id;
		b.seq = 1;
		b.last = b.failed = true;
		b.message = m;
		const char *err;
		if (loom_bus_send(loom_daemon_bus(w->daemon), env->from, &b.base, NULL, NULL, &err) < 0)
			loom_warning("cannot answer import run=%llu: %s", (unsigned long long)rq->run_id, err);
		loom_warning("%s", m);
		free(m);
		return;
	}
	if (im->active)
		loom_warning("abandoning import run=%llu for run=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)rq->run_id);
	import_stop(im);
	im->active = true;
	im->run_id = rq->run_id;
	im->engine = loom_strdup(env->from);
	im->agent = a;
	im->delta = rq->delta;
	im->batch_size = rq->batch_size ? rq->batch_size : 500;
	im->credit = rq->credit ? rq->credit : 1;
	loom_info("import started run=%llu agent=%s mode=%s", (unsigned long long)rq->run_id, a->name,
	    rq->delta ? "delta" : "full");
	if (!rq->delta) {
		/* single-threaded: no commit falls between these two lines */
		im->wm = w->next_chg - 1;
		im->it = loom_iter_new_ex(w->store, w->cf_res, true);
		loom_iter_seek_first(im->it);
	} else {
		char *wm = loom_strndup((const char *)rq->watermark.data, rq->watermark.len);
		char *colon = strrchr(wm, ':');
		char *end = NULL;
		unsigned long long n = 0;
		if (colon) {
			errno = 0;
			n = strtoull(colon + 1, &end, 10);
		}
		bool ok = colon && end && *end == '\0' && errno == 0 && end != colon + 1 &&
		    (size_t)(colon - wm) == strlen(w->store_id) && memcmp(wm, w->store_id, (size_t)(colon - wm)) == 0 &&
		    n + 1 >= w->chg_first && n < w->next_chg;
		free(wm);
		if (!ok) {
			send_end(w, im, NULL, true);
			return;
		}
		im->wm = n;
		im->seen = loom_map_new();
		im->it = loom_iter_new_ex(w->store, w->cf_chg, true);
		unsigned char k[8];
		loom_store_put_u64be(k, n + 1);
		loom_iter_seek(im->it, k, 8);
	}
	produce(w);
}

static void import_credit(void *arg, const Loom__ImportCredit *c)
{
	wf_t *w = arg;
	wf_import_t *im = &w->agents->imp;
	if (!im->active || c->run_id != im->run_id)
		return;
	if (c->abort) {
		loom_info("import aborted by the engine run=%llu", (unsigned long long)im->run_id);
		import_stop(im);
		return;
	}
	im->credit += c->credit;
	produce(w);
}

/* ---- export ---- */

static uint64_t change_hash(const Loom__ExportChange *c)
{
	size_t len = loom__export_change__get_packed_size(c);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__export_change__pack(c, buf);
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ buf[i]) * 1099511628211ull;
	free(buf);
	return h;
}

static Loom__ExportChangeResult *result_new(uint64_t change_id)
{
	Loom__ExportChangeResult *r = loom_malloc(sizeof *r);
	loom__export_change_result__init(r);
	r->change_id = change_id;
	return r;
}

static void result_fail(Loom__ExportChangeResult *r, const char *code, const char *message, bool retryable)
{
	r->ok = false;
	r->code = loom_strdup(code);
	r->message = loom_strdup(message);
	r->retryable = retryable;
}

/* The result a request ended with. */
static void result_of(Loom__ExportChangeResult *r, const Loom__Request *rq)
{
	switch (rq->status) {
	case LOOM__REQUEST__STATUS__COMPLETED:
	case LOOM__REQUEST__STATUS__COMMITTED:
	case LOOM__REQUEST__STATUS__POST_PROCESSING:        /* committed; its action workflows run on */
	case LOOM__REQUEST__STATUS__POST_PROCESSING_ERROR:
		r->ok = true;
		if (rq->operation == LOOM__REQUEST__OPERATION__CREATE)
			r->anchor = loom_strdup(rq->target_id);
		break;
	case LOOM__REQUEST__STATUS__AUTHENTICATING:
	case LOOM__REQUEST__STATUS__AUTHORIZING:
	case LOOM__REQUEST__STATUS__PENDING_APPROVAL: {
		/* not applied yet, not failed either: sending it again would ask
		 * again; once approved it commits, and the next import shows it */
		char *m = loom_sprintf("request %s %s: the change is applied when its workflows pass (the next import "
		    "shows it)", rq->id, wf_status_name(rq->status));
		result_fail(r, "pending", m, false);
		free(m);
		break;
	}
	case LOOM__REQUEST__STATUS__DENIED: {
		char *m = loom_sprintf("request %s denied: %s", rq->id, rq->reason);
		result_fail(r, "denied", m, false);
		free(m);
		break;
	}
	default: {
		char *m = loom_sprintf("request %s %s: %s", rq->id, wf_status_name(rq->status), rq->reason);
		result_fail(r, "failed", m, true);
		free(m);
		break;
	}
	}
}

/* The request an earlier delivery of the same change made, or NULL. */
static Loom__Request *origin_find(wf_t *w, const char *agent, const Loom__ExportChange *c, uint64_t hash)
{
	loom_buf_t k = LOOM_BUF_INIT;
	wf_origin_key(&k, agent, c->change_id);
	void *v;
	size_t len;
	const char *err;
	int rc = loom_store_get(w->store, w->cf_origin, k.data, k.len, &v, &len, &err);
	loom_buf_release(&k);
	if (rc != 1) {
		if (rc < 0)
			loom_warning("cannot read the origin of change %llu of agent %s: %s", (unsigned long long)c->change_id,
			    agent, err);
		return NULL;
	}
	Loom__Request *rq = NULL;
	const char *nul = memchr(v, '\0', len);
	if (nul && (size_t)(len - (size_t)(nul + 1 - (const char *)v)) == 8 &&
	    loom_store_get_u64be((const unsigned char *)nul + 1) == hash &&
	    wf_req_get(w, v, &rq, &err) != 1)
		rq = NULL;
	free(v);
	return rq;
}

static Loom__RequestChange *change_of(const Loom__AttrDelta *d)
{
	Loom__RequestChange *c = loom_malloc(sizeof *c);
	loom__request_change__init(c);
	c->attr = loom_strdup(d->name);
	c->op = d->op == LOOM__ATTR_DELTA__OP__ADD ? LOOM__REQUEST_CHANGE__OP__ADD
	    : d->op == LOOM__ATTR_DELTA__OP__DELETE ? LOOM__REQUEST_CHANGE__OP__REMOVE : LOOM__REQUEST_CHANGE__OP__REPLACE;
	c->values = loom_calloc(d->n_values ? d->n_values : 1, sizeof *c->values);
	for (size_t i = 0; i < d->n_values; i++)
		c->values[c->n_values++] = loom_value_dup(d->values[i]);
	return c;
}

static Loom__ExportChangeResult *export_one(wf_t *w, const loom_agentcfg_t *a, const Loom__ExportChange *c)
{
	Loom__ExportChangeResult *res = result_new(c->change_id);
	uint64_t hash = change_hash(c);
	Loom__Request *prior = origin_find(w, a->name, c, hash);
	if (prior) {
		loom_info("export change %llu of agent %s came again: answered from request %s",
		    (unsigned long long)c->change_id, a->name, prior->id);
		result_of(res, prior);
		protobuf_c_message_free_unpacked(&prior->base, NULL);
		return res;
	}
	Loom__Request in = LOOM__REQUEST__INIT;
	in.requester = a->policy.requester;
	char *origin = loom_sprintf("export %s change %llu", a->name, (unsigned long long)c->change_id);
	in.origin = origin;
	Loom__RequestChange **changes = NULL;
	switch (c->op) {
	case LOOM__EXPORT_CHANGE__OP__ADD:
		if (!type_served(a, c->object_type)) {
			char *m = loom_sprintf("object type '%s' is not among policy.object_types of agent %s (%s)",
			    c->object_type, a->name, a->path);
			result_fail(res, "object-type", m, false);
			free(m);
			goto out;
		}
		in.operation = LOOM__REQUEST__OPERATION__CREATE;
		in.target_type = c->object_type;
		break;
	case LOOM__EXPORT_CHANGE__OP__UPDATE:
	case LOOM__EXPORT_CHANGE__OP__DELETE: {
		Loom__Resource *r = NULL;
		const char *err;
		int rc = c->anchor[0] ? wf_res_get_by_id(w, c->anchor, &r, &err) : 0;
		if (rc < 0) {
			result_fail(res, "store-error", err, true);
			goto out;
		}
		if (rc == 0) {
			if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE) {
				res->ok = true; /* gone already */
			} else {
				char *m = loom_sprintf("no resource with ObjectID '%s'", c->anchor);
				result_fail(res, "no-such-object", m, false);
				free(m);
			}
			goto out;
		}
		in.operation = c->op == LOOM__EXPORT_CHANGE__OP__DELETE ? LOOM__REQUEST__OPERATION__DELETE
		    : LOOM__REQUEST__OPERATION__MODIFY;
		in.target_id = (char *)c->anchor;
		in.target_type = r->object_type; /* borrowed until r is freed below */
		if (c->op == LOOM__EXPORT_CHANGE__OP__UPDATE && c->n_deltas == 0) {
			res->ok = true; /* a rename only: resources have no DN to change */
			protobuf_c_message_free_unpacked(&r->base, NULL);
			goto out;
		}
		in.target_type = loom_strdup(r->object_type);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		break;
	}
	default:
		result_fail(res, "unknown-op", "unknown export operation", false);
		goto out;
	}
	if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE) {
		changes = loom_calloc(c->n_deltas ? c->n_deltas : 1, sizeof *changes);
		for (size_t i = 0; i < c->n_deltas; i++) {
			/* an add's empty attribute is no value at all */
			if (c->op == LOOM__EXPORT_CHANGE__OP__ADD && c->deltas[i]->n_values == 0)
				continue;
			changes[in.n_changes++] = change_of(c->deltas[i]);
		}
		in.changes = changes;
	}
	w->origin = c;
	w->origin_agent = a->name;
	w->origin_hash = hash;
	char *err = NULL;
	Loom__Request *rq = wf_request_submit(w, &in, &err);
	changes = NULL; /* moved into the request (freed with it) */
	w->origin = NULL;
	w->origin_agent = NULL;
	if (rq == NULL) {
		result_fail(res, "store-error", err, true);
		free(err);
	} else {
		result_of(res, rq);
		protobuf_c_message_free_unpacked(&rq->base, NULL);
	}
	if (c->op != LOOM__EXPORT_CHANGE__OP__ADD)
		free(in.target_type);
out:
	for (size_t i = 0; i < in.n_changes; i++)
		protobuf_c_message_free_unpacked(&in.changes[i]->base, NULL);
	free(changes);
	free(origin);
	return res;
}

static void export_batch(void *arg, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	wf_t *w = arg;
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = b->run_id;
	rs.seq = b->seq;
	const loom_agentcfg_t *a = agent_find(w, b->agent);
	if (a == NULL) {
		rs.failed = true;
		rs.message = loom_sprintf("loom-workflow serves no policy agent '%s' (config/agents/%s.yaml with type "
		    "policy and policy.service %s)", b->agent, b->agent, loom_daemon_service(w->daemon));
		loom_warning("%s", rs.message);
	} else {
		rs.results = loom_calloc(b->n_changes ? b->n_changes : 1, sizeof *rs.results);
		/* the batch's requests are written unsynced and made durable by
		 * one synced write before the results go out (group commit) */
		w->group_commit = true;
		for (size_t i = 0; i < b->n_changes; i++)
			rs.results[rs.n_results++] = export_one(w, a, b->changes[i]);
		char *ferr = NULL;
		if (wf_request_flush(w, &ferr) < 0) {
			loom_error("export batch run=%llu: %s", (unsigned long long)b->run_id, ferr);
			for (size_t i = 0; i < rs.n_results; i++) {
				Loom__ExportChangeResult *r = rs.results[i];
				if (!r->ok)
					continue;
				if (r->anchor[0]) { /* set by result_of; the empty default is not ours */
					free(r->anchor);
					r->anchor = loom_strdup("");
				}
				result_fail(r, "store-error", ferr, true);
			}
			free(ferr);
		}
	}
	size_t ok = 0;
	for (size_t i = 0; i < rs.n_results; i++)
		ok += rs.results[i]->ok;
	loom_info("export batch run=%llu seq=%llu agent=%s changes=%zu ok=%zu", (unsigned long long)b->run_id,
	    (unsigned long long)b->seq, b->agent, b->n_changes, ok);
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(w->daemon), env, &rs.base, &err) < 0)
		loom_warning("cannot send export results run=%llu: %s", (unsigned long long)b->run_id, err);
	for (size_t i = 0; i < rs.n_results; i++)
		loom__export_change_result__free_unpacked(rs.results[i], NULL);
	free(rs.results);
	if (rs.failed)
		free(rs.message);
}

/* The schema of a policy agent: its object types as the policy service's
 * schema binds them (no sampling: the service's schema is the truth). */
static void schema(void *arg, Loom__Envelope *env, const Loom__SchemaRequest *rq)
{
	wf_t *w = arg;
	const loom_agentcfg_t *a = agent_find(w, rq->agent);
	if (a == NULL) {
		char *m = loom_sprintf("loom-workflow serves no policy agent '%s'", rq->agent);
		loom_agent_schema_reply(w->daemon, env, NULL, false, false, 0, "", m);
		free(m);
		return;
	}
	static const char *const vt[] = { "string", "string", "integer", "boolean", "binary", "datetime", "reference" };
	loom_schema_t *s = loom_schema_new();
	for (size_t i = 0; i < a->policy.object_types.n; i++) {
		const char *tn = a->policy.object_types.v[i];
		const wf_type_t *t = wf_type_find(&w->policy, tn);
		loom_schema_type(s, tn, "ObjectID");
		for (size_t k = 0; t != NULL && k < t->nb; k++) {
			const wf_attr_t *at = t->b[k].attr;
			loom_schema_attr(s, tn, at->name, at->type >= 1 && at->type <= 6 ? vt[at->type] : "string", at->multi);
		}
	}
	char *src = loom_sprintf("the policy service's schema (%s)", loom_daemon_service(w->daemon));
	loom_agent_schema_reply(w->daemon, env, s, true, true, 0, src, NULL);
	free(src);
	loom_schema_destroy(&s);
}

static void test_connection(void *arg, Loom__Envelope *env, const Loom__TestConnectionRequest *rq)
{
	wf_t *w = arg;
	const loom_agentcfg_t *a = agent_find(w, rq->agent);
	char *m = a ? loom_sprintf("%s serves policy agent '%s' (object types: %zu)", loom_daemon_service(w->daemon),
			  a->name, a->policy.object_types.n)
		    : loom_sprintf("loom-workflow serves no policy agent '%s'", rq->agent);
	loom_agent_test_reply(w->daemon, env, a != NULL, m);
	free(m);
}

static const loom_agent_ops_t ops = { "loom-workflow", import_start, import_credit, export_batch,
	NULL /* resources hold no passwords: the dispatch answers not-supported */, schema, test_connection };

bool wf_agent_handle(wf_t *w, Loom__Envelope *env)
{
	if (!loom_envelope_is(env, &loom__import_request__descriptor) &&
	    !loom_envelope_is(env, &loom__import_credit__descriptor) &&
	    !loom_envelope_is(env, &loom__export_batch__descriptor) &&
	    !loom_envelope_is(env, &loom__set_password_request__descriptor) &&
	    !loom_envelope_is(env, &loom__schema_request__descriptor) &&
	    !loom_envelope_is(env, &loom__test_connection_request__descriptor))
		return false;
	loom_agent_dispatch(w->daemon, &ops, w, env);
	return true;
}
