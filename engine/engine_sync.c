/* engine_sync.c - synchronization of one connector-space object, and the
 * full and delta sync runs that visit objects in slices.
 *
 * sync_one(), in order (DESIGN.md §3), all in one write batch:
 *   1. a pending delete disconnects the object (deletion rules decide the
 *      metaverse object's fate) and removes it;
 *   2. the pending import is applied to the hologram;
 *   3. connector filter: true -> filtered disconnector (disconnecting it);
 *   4. a disconnector tries join groups in order (AND inside a group; the
 *      first group with exactly one candidate wins; several candidates are an
 *      ambiguous-join error, never a guess), then projection;
 *   5. inbound flows recompute every metaverse attribute this agent feeds,
 *      by precedence: the lowest precedence number with a non-null value
 *      wins, a null falls through to the next source, equal precedence means
 *      the object being synchronized (the last writer) wins;
 *   6. outbound rules: provisioning, deprovisioning and outbound flows to
 *      every connector, which become pending exports.
 *
 * Connector-space object states (CsObject.State) and their transitions:
 *   NORMAL --filter true--> FILTERED --filter false--> NORMAL
 *   NORMAL --join or projection--> JOINED
 *   JOINED --filter true / deprovision disconnect--> FILTERED / NORMAL
 *   JOINED --deprovision explicit-disconnect--> EXPLICIT_DISCONNECTOR
 *   (none) --provisioning--> PLACEHOLDER --export of its add confirmed--> JOINED
 *   any --pending delete--> (removed); when its metaverse object stays and
 *     an outbound rule still provisions it there (the object was deleted in
 *     the system behind Loom's back), a new PLACEHOLDER takes its DN in the
 *     same batch, and the export re-creates it
 */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SLICE 500

void eng_explain(engine_t *e, const char *kind, const char *fmt, ...)
{
	if (e->trace == NULL)
		return;
	size_t start = e->trace->len;
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(e->trace, fmt, ap);
	va_end(ap);
	Loom__PreviewStep *s = loom_malloc(sizeof *s);
	loom__preview_step__init(s);
	s->kind = loom_strdup(kind);
	const char *text = e->trace->data + start;
	s->depth = strncmp(text, "  ", 2) == 0;
	s->text = loom_strdup(text + 2 * s->depth);
	loom_buf_addc(e->trace, '\n');
	e->pv_steps = loom_realloc(e->pv_steps, (e->pv_nsteps + 1) * sizeof *e->pv_steps);
	e->pv_steps[e->pv_nsteps++] = s;
}

/* During a preview: records the pending export (or removal) cs is left with. */
static void preview_export(engine_t *e, const char *agent, const Loom__CsObject *cs, bool removed)
{
	Loom__PreviewExport *x = loom_malloc(sizeof *x);
	loom__preview_export__init(x);
	x->agent = loom_strdup(agent);
	x->anchor = loom_strdup(cs->anchor);
	x->dn = loom_strdup(cs->dn);
	x->removed = removed;
	if (!removed && cs->pending_export) {
		size_t len = protobuf_c_message_get_packed_size(&cs->pending_export->base);
		uint8_t *buf = loom_malloc(len ? len : 1);
		protobuf_c_message_pack(&cs->pending_export->base, buf);
		x->export = loom__pending_export__unpack(NULL, len, buf);
		free(buf);
	}
	e->pv_exports = loom_realloc(e->pv_exports, (e->pv_nexports + 1) * sizeof *e->pv_exports);
	e->pv_exports[e->pv_nexports++] = x;
}

/* "a | b" for a preview line (static buffer: one use per call). */
static const char *vals(Loom__Value *const *v, size_t n)
{
	static loom_buf_t b;
	loom_buf_reset(&b);
	if (n == 0)
		loom_buf_adds(&b, "(no value)");
	for (size_t i = 0; i < n; i++) {
		if (i)
			loom_buf_adds(&b, " | ");
		loom_value_text(&b, v[i]);
	}
	return loom_buf_cstr(&b);
}

static const char *hexid(const uint8_t *id)
{
	static char out[17];
	eng_mvid_hex(out, id);
	return out;
}  /* objects per loop turn, so queries are answered during a run */

/* ---- expression lookups ------------------------------------------------------ */

typedef struct look {
	Loom__Attr *const *attrs;      /* cs attributes (hologram) */
	size_t n;
	const char *dn;                /* cs DN, visible as attribute "dn" */
	Loom__Attr dnattr;             /* view for "dn" */
	Loom__Value dnval;
	Loom__Value *dnvals[1];
	Loom__Attr *views;             /* mv attributes as Attr views */
	size_t nviews;
} look_t;

static const Loom__Attr *look_fn(void *arg, const char *name)
{
	look_t *l = arg;
	if (l->dn && strcasecmp(name, "dn") == 0) {
		loom__attr__init(&l->dnattr);
		loom__value__init(&l->dnval);
		l->dnval.v_case = LOOM__VALUE__V_STR;
		l->dnval.str = (char *)l->dn;
		l->dnvals[0] = &l->dnval;
		l->dnattr.name = "dn";
		l->dnattr.n_values = 1;
		l->dnattr.values = l->dnvals;
		return &l->dnattr;
	}
	if (l->views) {
		for (size_t i = 0; i < l->nviews; i++)
			if (strcasecmp(l->views[i].name, name) == 0)
				return &l->views[i];
		return NULL;
	}
	return loom_attr_find(l->attrs, l->n, name);
}

static void look_cs(look_t *l, const Loom__CsObject *cs)
{
	memset(l, 0, sizeof *l);
	l->attrs = cs->attrs;
	l->n = cs->n_attrs;
	l->dn = cs->dn;
}

static void look_mv(look_t *l, const Loom__MvObject *mv)
{
	memset(l, 0, sizeof *l);
	l->nviews = mv->n_attrs;
	l->views = loom_calloc(mv->n_attrs ? mv->n_attrs : 1, sizeof *l->views);
	for (size_t i = 0; i < mv->n_attrs; i++) {
		loom__attr__init(&l->views[i]);
		l->views[i].name = mv->attrs[i]->name;
		l->views[i].n_values = mv->attrs[i]->n_values;
		l->views[i].values = mv->attrs[i]->values;
	}
}

static void look_release(look_t *l)
{
	free(l->views);
	l->views = NULL;
}

/* Evaluates a boolean expression; errors count as false and are reported. */
static int eval_bool(engine_t *e, loom_expr_t *x, look_t *l, const Loom__CsObject *cs, bool *ret)
{
	loom_expr_result_t *res = &e->res;
	char *err = NULL;
	int rc = loom_expr_eval(x, look_fn, l, res, &err);
	if (rc < 0) {
		eng_run_error(e, cs ? cs->anchor : NULL, cs ? cs->dn : NULL, "expression-error", err, NULL, false);
		free(err);
		return -1;
	}
	*ret = res->n > 0 && res->v[0]->v_case == LOOM__VALUE__V_BOOL && res->v[0]->bool_;
	return 0;
}

/* ---- per-object work context --------------------------------------------------- */

typedef struct held {
	char *agent;                   /* the connector's agent */
	Loom__CsObject *cs;            /* loaded object, owned */
	char *old_dn;                  /* its DN as stored, NULL for one provisioned now */
	char had_export;               /* its export mark when loaded (eng_export_kind) */
	bool dirty;                    /* write it back */
	bool removed;                  /* delete it */
	bool linked_now;               /* connected to the mv object in this work */
} held_t;

/* A reference attribute of the metaverse object changed in this work: the
 * references added and removed (mv ids as ref values, owned), or "whole"
 * when it was recomputed whole (outbound flows then compare whole too). */
typedef struct refdiff {
	char *attr;
	bool whole;
	Loom__Value **add;
	size_t nadd;
	Loom__Value **del;
	size_t ndel;
} refdiff_t;

typedef struct work {
	engine_t *e;
	loom_batch_t *b;               /* the object's one write batch */
	const char *agent;             /* agent of the object being synchronized */
	Loom__CsObject *cs;            /* the object being synchronized */
	held_t *held;                  /* other connectors touched */
	size_t nheld;
	bool failed;                   /* an error means: write nothing */
	bool full;                     /* compute every flow whole (full sync, refresh, a lost export) */
	bool was_joined;               /* cs was joined to its mv object when loaded */
	Loom__PendingImport *pi;       /* the import applied to cs in this work (its deltas), or NULL */
	refdiff_t *diffs;              /* reference attributes of the mv object changed here */
	size_t ndiffs;
	const char *only_agent;        /* a refresh: only outbound rules to this agent (NULL: all) */
	bool links_loaded;             /* lagents/lanchors hold mv's connectors */
	char **lagents;                /* connectors of the object's mv: agents */
	char **lanchors;               /* ... and anchors (store plus this batch) */
	size_t nlinks;
} work_t;

/* True when agent/anchor names the object being synchronized (w->cs). */
static bool is_self(const work_t *w, const char *agent, const char *anchor)
{
	return strcmp(agent, w->agent) == 0 && strcmp(anchor, w->cs->anchor) == 0;
}

/* The object already held under agent/anchor, or NULL. */
static held_t *held_find(work_t *w, const char *agent, const char *anchor)
{
	for (size_t i = 0; i < w->nheld; i++)
		if (strcmp(w->held[i].agent, agent) == 0 && strcmp(w->held[i].cs->anchor, anchor) == 0)
			return &w->held[i];
	return NULL;
}

static held_t *hold(work_t *w, const char *agent, const char *anchor)
{
	if (is_self(w, agent, anchor))
		return NULL; /* the object itself is w->cs */
	held_t *found = held_find(w, agent, anchor);
	if (found)
		return found;
	const char *err = NULL;
	Loom__CsObject *cs = eng_cs_get(w->e, agent, anchor, &err);
	if (cs == NULL) {
		if (err)
			eng_read_failed(w->e, err);
		return NULL;
	}
	w->held = loom_realloc(w->held, (w->nheld + 1) * sizeof *w->held);
	held_t *h = &w->held[w->nheld++];
	h->agent = loom_strdup(agent);
	h->cs = cs;
	h->dirty = h->removed = h->linked_now = false;
	h->old_dn = loom_strdup(cs->dn);
	h->had_export = eng_export_kind(cs);
	return h;
}

/* True when cs is leaving its connector space in this work (its pending
 * import is a delete: the system no longer holds it). */
static bool cs_leaving(const Loom__CsObject *cs)
{
	return cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__DELETE;
}

/* The connector of mv in agent: the object itself, a held one, or NULL. */
static Loom__CsObject *connector_in(work_t *w, char **agents, char **anchors, size_t n, const char *agent,
    held_t **ret_held)
{
	*ret_held = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(agents[i], agent) != 0)
			continue;
		if (is_self(w, agent, anchors[i])) {
			if (!cs_leaving(w->cs))
				return w->cs;
			/* w->cs is leaving; under its anchor (an agent anchored on
			 * the DN) is the object provisioned again in its place. */
			held_t *h = held_find(w, agent, anchors[i]);
			if (h && !h->removed && h->cs->mv_id.len) {
				*ret_held = h;
				return h->cs;
			}
			continue;
		}
		held_t *h = hold(w, agents[i], anchors[i]);
		if (h && !h->removed && h->cs->mv_id.len) {
			*ret_held = h;
			return h->cs;
		}
	}
	return NULL;
}

static void links_forget(work_t *w);

static void values_free(Loom__Value **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		loom_value_free(v[i]);
	free(v);
}

static void work_release(work_t *w)
{
	links_forget(w);
	for (size_t i = 0; i < w->ndiffs; i++) {
		free(w->diffs[i].attr);
		values_free(w->diffs[i].add, w->diffs[i].nadd);
		values_free(w->diffs[i].del, w->diffs[i].ndel);
	}
	free(w->diffs);
	if (w->pi)
		loom__pending_import__free_unpacked(w->pi, NULL);
	for (size_t i = 0; i < w->nheld; i++) {
		free(w->held[i].agent);
		free(w->held[i].old_dn);
		loom__cs_object__free_unpacked(w->held[i].cs, NULL);
	}
	free(w->held);
}

/* The connectors of mv: the store's links plus the object being synchronized
 * when it is joined to mv in this batch (its link is not in the store yet),
 * minus that object when it left mv in this batch (deleted or filtered: its
 * link is still in the store, and it must not contribute any more). */
static size_t links_of(work_t *w, const Loom__MvObject *mv, char ***ret_agents, char ***ret_anchors)
{
	size_t n = eng_links(w->e, mv->id.data, ret_agents, ret_anchors);
	bool joined = w->cs->mv_id.len == 8 && memcmp(w->cs->mv_id.data, mv->id.data, 8) == 0;
	for (size_t i = 0; i < n; i++)
		if (is_self(w, (*ret_agents)[i], (*ret_anchors)[i])) {
			if (joined)
				return n;
			free((*ret_agents)[i]);
			free((*ret_anchors)[i]);
			memmove(&(*ret_agents)[i], &(*ret_agents)[i + 1], (n - i - 1) * sizeof **ret_agents);
			memmove(&(*ret_anchors)[i], &(*ret_anchors)[i + 1], (n - i - 1) * sizeof **ret_anchors);
			return n - 1;
		}
	if (!joined)
		return n;
	*ret_agents = loom_realloc(*ret_agents, (n + 1) * sizeof **ret_agents);
	*ret_anchors = loom_realloc(*ret_anchors, (n + 1) * sizeof **ret_anchors);
	(*ret_agents)[n] = loom_strdup(w->agent);
	(*ret_anchors)[n] = loom_strdup(w->cs->anchor);
	return n + 1;
}

/* The connectors of mv, read once per object and kept up to date as this
 * batch adds links (links added here are not in the store yet). */
static size_t links(work_t *w, const Loom__MvObject *mv, char ***ret_agents, char ***ret_anchors)
{
	if (!w->links_loaded) {
		w->nlinks = links_of(w, mv, &w->lagents, &w->lanchors);
		w->links_loaded = true;
	}
	*ret_agents = w->lagents;
	*ret_anchors = w->lanchors;
	return w->nlinks;
}

static void links_forget(work_t *w)
{
	if (w->links_loaded) {
		eng_strv_free(w->lagents, w->nlinks);
		eng_strv_free(w->lanchors, w->nlinks);
	}
	w->lagents = w->lanchors = NULL;
	w->nlinks = 0;
	w->links_loaded = false;
}

static void links_add(work_t *w, const char *agent, const char *anchor)
{
	if (!w->links_loaded)
		return; /* read from the store (and this object) when first needed */
	w->lagents = loom_realloc(w->lagents, (w->nlinks + 1) * sizeof *w->lagents);
	w->lanchors = loom_realloc(w->lanchors, (w->nlinks + 1) * sizeof *w->lanchors);
	w->lagents[w->nlinks] = loom_strdup(agent);
	w->lanchors[w->nlinks] = loom_strdup(anchor);
	w->nlinks++;
}

/* ---- metaverse helpers ------------------------------------------------------------ */

static Loom__MvAttr *mv_attr(Loom__MvObject *mv, const char *name, size_t *ret_i)
{
	for (size_t i = 0; i < mv->n_attrs; i++)
		if (strcasecmp(mv->attrs[i]->name, name) == 0) {
			if (ret_i)
				*ret_i = i;
			return mv->attrs[i];
		}
	return NULL;
}

static bool is_ref_list(Loom__Value *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i]->v_case == LOOM__VALUE__V_REF)
			return true;
	return false;
}

static refdiff_t *diff_find(work_t *w, const char *attr)
{
	for (size_t i = 0; i < w->ndiffs; i++)
		if (strcasecmp(w->diffs[i].attr, attr) == 0)
			return &w->diffs[i];
	return NULL;
}

static refdiff_t *diff_get(work_t *w, const char *attr)
{
	refdiff_t *d = diff_find(w, attr);
	if (d)
		return d;
	w->diffs = loom_realloc(w->diffs, (w->ndiffs + 1) * sizeof *w->diffs);
	d = &w->diffs[w->ndiffs++];
	memset(d, 0, sizeof *d);
	d->attr = loom_strdup(attr);
	return d;
}

static Loom__Value *ref_value(const uint8_t *id)
{
	char hex[17];
	eng_mvid_hex(hex, id);
	Loom__Value *v = loom_value_str(hex, 16);
	v->v_case = LOOM__VALUE__V_REF;
	return v;
}

static void values_push(Loom__Value ***v, size_t *n, Loom__Value *x)
{
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = x;
}

/* Sets (or removes, n == 0) an mv attribute; returns true when it changed. */
static bool mv_set(work_t *w, Loom__MvObject *mv, const char *name, Loom__Value *const *v, size_t n,
    const char *agent, const char *anchor)
{
	size_t idx = 0;
	Loom__MvAttr *old = mv_attr(mv, name, &idx);
	if (old == NULL && n == 0)
		return false;
	if (old && loom_values_same(old->values, old->n_values, v, n)) {
		if (strcmp(old->agent, agent) != 0 || strcmp(old->anchor, anchor) != 0) {
			loom_pb_str_set(&old->agent, agent);
			loom_pb_str_set(&old->anchor, anchor);
		}
		return false;
	}
	Loom__MvAttr *na = NULL;
	if (n) {
		na = loom_malloc(sizeof *na);
		loom__mv_attr__init(na);
		na->name = loom_strdup(old ? old->name : name);
		na->values = loom_malloc(n * sizeof *na->values);
		loom_vset_t *seen = loom_vset_new(NULL, 0);
		for (size_t i = 0; i < n; i++)
			if (loom_vset_add(seen, v[i]))
				na->values[na->n_values++] = loom_value_dup(v[i]);
		loom_vset_free(&seen);
		na->agent = loom_strdup(agent);
		na->anchor = loom_strdup(anchor);
		na->changed_at = loom_now_us();
	}
	eng_mvidx_update(w->e, w->b, mv->object_type, mv->id.data, name, old, na);
	eng_mvref_update(w->e, w->b, mv->id.data, name, old, na);
	if ((old && is_ref_list(old->values, old->n_values)) || (na && is_ref_list(na->values, na->n_values)))
		diff_get(w, name)->whole = true;
	if (old) {
		loom__mv_attr__free_unpacked(old, NULL);
		if (na) {
			mv->attrs[idx] = na;
		} else {
			memmove(&mv->attrs[idx], &mv->attrs[idx + 1], (mv->n_attrs - idx - 1) * sizeof *mv->attrs);
			mv->n_attrs--;
		}
	} else {
		mv->attrs = loom_realloc(mv->attrs, (mv->n_attrs + 1) * sizeof *mv->attrs);
		mv->attrs[mv->n_attrs++] = na;
	}
	return true;
}

static Loom__MvObject *mv_new(work_t *w, const char *type, const char *agent)
{
	engine_t *e = w->e;
	Loom__MvObject *mv = loom_malloc(sizeof *mv);
	loom__mv_object__init(mv);
	uint64_t id = eng_seq_next(e, w->b, &e->seq_mv, &e->lim_mv, "seq:mv", 1024);
	mv->id.len = 8;
	mv->id.data = loom_malloc(8);
	loom_store_put_u64be(mv->id.data, id);
	mv->object_type = loom_strdup(type);
	mv->created_at = loom_now_us();
	mv->projected_by = loom_strdup(agent);
	return mv;
}

/* ---- join ---------------------------------------------------------------------------- */

typedef struct idset {
	uint8_t (*v)[8];
	size_t n;
} idset_t;

static bool idset_has(const idset_t *s, const uint8_t *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->v[i], id, 8) == 0)
			return true;
	return false;
}

static void idset_add(idset_t *s, const uint8_t *id)
{
	if (idset_has(s, id))
		return;
	s->v = loom_realloc(s->v, (s->n + 1) * sizeof *s->v);
	memcpy(s->v[s->n++], id, 8);
}

/* Metaverse objects of type whose attribute mv_attr equals one of values. */
static void candidates(engine_t *e, const char *type, const char *mv_attr, const Loom__Attr *values, idset_t *out)
{
	loom_buf_t k = LOOM_BUF_INIT;
	for (size_t i = 0; values && i < values->n_values; i++) {
		eng_mvidx_key(&k, type, mv_attr, values->values[i], NULL);
		loom_iter_t *it = loom_iter_new_ex(e->store, CF_MVIDX, false);
		for (loom_iter_seek(it, k.data, k.len); loom_iter_valid(it); loom_iter_next(it)) {
			size_t klen;
			const char *key = loom_iter_key(it, &klen);
			if (klen != k.len + 8 || memcmp(key, k.data, k.len) != 0)
				break;
			idset_add(out, (const uint8_t *)key + k.len);
		}
		const char *err;
		if (loom_iter_status(it, &err) < 0)
			eng_read_failed(e, err);
		loom_iter_destroy(&it);
	}
	loom_buf_release(&k);
}

static bool has_connector_in(engine_t *e, const uint8_t *id, const char *agent)
{
	char **agents, **anchors;
	size_t n = eng_links(e, id, &agents, &anchors);
	bool found = false; /* few links per object: a listing is cheap */
	for (size_t i = 0; i < n && !found; i++)
		found = strcmp(agents[i], agent) == 0;
	eng_strv_free(agents, n);
	eng_strv_free(anchors, n);
	return found;
}

/* Tries rule's join groups. Returns 1 with *ret_id, 0 when none matched,
 * -1 for an ambiguous join (reported). */
static int try_join(work_t *w, const eng_rule_t *rule, uint8_t ret_id[8])
{
	const loom_sync_joingroup_t *groups = rule->cfg->join.v;
	for (size_t g = 0; g < rule->cfg->join.n; g++) {
		const loom_sync_match_t *m = groups[g].match.v;
		idset_t acc = { NULL, 0 };
		for (size_t k = 0; k < groups[g].match.n; k++) {
			const Loom__Attr *vals = loom_attr_find(w->cs->attrs, w->cs->n_attrs, m[k].cs);
			idset_t one = { NULL, 0 };
			if (vals)
				candidates(w->e, rule->cfg->mv_type, m[k].mv, vals, &one);
			if (k == 0) {
				acc = one;
			} else {
				idset_t both = { NULL, 0 };
				for (size_t i = 0; i < acc.n; i++)
					if (idset_has(&one, acc.v[i]))
						idset_add(&both, acc.v[i]);
				free(acc.v);
				free(one.v);
				acc = both;
			}
			if (acc.n == 0)
				break;
		}
		eng_explain(w->e, "join", "join rule '%s' group %zu: %zu candidate%s", rule->cfg->name, g + 1, acc.n,
		    acc.n == 1 ? "" : "s");
		/* An mv object already joined to another object of this agent is taken. */
		idset_t free_ids = { NULL, 0 };
		for (size_t i = 0; i < acc.n; i++)
			if (!has_connector_in(w->e, acc.v[i], w->agent))
				idset_add(&free_ids, acc.v[i]);
		free(acc.v);
		if (free_ids.n == 1) {
			memcpy(ret_id, free_ids.v[0], 8);
			free(free_ids.v);
			return 1;
		}
		if (free_ids.n > 1) {
			loom_buf_t m2 = LOOM_BUF_INIT;
			loom_buf_printf(&m2, "rule '%s' join group %zu matches %zu metaverse objects:", rule->cfg->name,
			    g + 1, free_ids.n);
			for (size_t i = 0; i < free_ids.n && i < 10; i++) {
				char hex[17];
				eng_mvid_hex(hex, free_ids.v[i]);
				loom_buf_printf(&m2, " %s", hex);
			}
			eng_run_error(w->e, w->cs->anchor, w->cs->dn, "ambiguous-join", m2.data, NULL, false);
			loom_buf_release(&m2);
			free(free_ids.v);
			return -1;
		}
		free(free_ids.v);
	}
	return 0;
}

/* ---- flows ----------------------------------------------------------------------------- */

/* Inbound rules (any agent) feeding attr of mv type, by precedence. */
static size_t contributors(engine_t *e, const char *mv_type, const char *attr, const eng_rule_t **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < e->nrules && n < max; i++) {
		const eng_rule_t *r = &e->rules[i];
		if (r->cfg->direction != LOOM_SYNC_INBOUND || strcmp(r->cfg->mv_type, mv_type) != 0)
			continue;
		for (size_t k = 0; k < r->nflows; k++)
			if (strcasecmp(r->flows[k].target, attr) == 0) {
				out[n++] = r;
				break;
			}
	}
	/* Stable insertion sort by precedence. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j - 1]->cfg->precedence > out[j]->cfg->precedence; j--) {
			const eng_rule_t *t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* Evaluates rule's flow to attr on cs. Returns 1 with values, 0 null, 2
 * authoritative null, 3 ignore, -1 error (reported). */
static int eval_flow(work_t *w, const eng_rule_t *rule, const char *attr, const Loom__CsObject *cs,
    const Loom__MvObject *mv, loom_expr_result_t *res)
{
	const eng_flow_t *fl = NULL;
	for (size_t k = 0; k < rule->nflows && !fl; k++)
		if (strcasecmp(rule->flows[k].target, attr) == 0)
			fl = &rule->flows[k];
	if (fl == NULL)
		return 0;
	look_t l;
	if (mv)
		look_mv(&l, mv);
	else
		look_cs(&l, cs);
	char *err = NULL;
	int rc = loom_expr_eval(fl->expr, look_fn, &l, res, &err);
	look_release(&l);
	if (rc < 0) {
		char *m = loom_sprintf("rule '%s' flow to '%s': %s", rule->cfg->name, attr, err);
		eng_run_error(w->e, w->cs->anchor, w->cs->dn, "flow-error", m, NULL, false);
		free(m);
		free(err);
		return -1;
	}
	if (res->ignore_flow)
		return 3;
	if (res->authoritative_null)
		return 2;
	return res->n ? 1 : 0;
}

/* The metaverse id a connector-space reference of agent names: the object
 * being synchronized itself (its link may be in this batch only), else
 * through the store. */
static int ref_in(work_t *w, const char *agent, const char *name, uint8_t id[8])
{
	const Loom__CsObject *c = w->cs;
	if (strcmp(agent, w->agent) == 0 && c->mv_id.len == 8 &&
	    (strcasecmp(name, c->dn) == 0 || strcmp(name, c->anchor) == 0)) {
		memcpy(id, c->mv_id.data, 8);
		return 1;
	}
	return eng_ref_in(w->e, agent, name, id);
}

/* Translates the connector-space references among v (objects of agent,
 * named by DN or anchor) into metaverse references. One that does not
 * resolve (its object is unknown or not joined yet) is left out and
 * recorded, so src is synchronized again when its object joins. */
static size_t refs_in(work_t *w, const char *agent, const Loom__CsObject *src, Loom__Value *const *v, size_t n,
    Loom__Value ***out, size_t *ret_unresolved)
{
	Loom__Value **o = loom_malloc((n ? n : 1) * sizeof *o);
	size_t k = 0, miss = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t id[8];
		if (v[i]->v_case != LOOM__VALUE__V_REF)
			o[k++] = loom_value_dup(v[i]);
		else if (ref_in(w, agent, v[i]->ref, id))
			o[k++] = ref_value(id);
		else {
			eng_unres_put(w->e, w->b, agent, v[i]->ref, src->anchor);
			miss++;
		}
	}
	*out = o;
	*ret_unresolved = miss;
	return k;
}

/* A delta sync of a direct flow from a reference attribute of the object
 * being synchronized, which is the attribute's current source: the
 * import's added and removed values are applied to the metaverse attribute
 * one by one, so a member joining a 50,000-member group costs one
 * resolution, not 50,000. Returns 1 when applied (changed), 0 when there is
 * nothing to do, -1 when not applicable (the caller recomputes whole). */
static int recompute_quick(work_t *w, Loom__MvObject *mv, const char *attr)
{
	if (w->full || !w->was_joined || eng_indexed(w->e, mv->object_type, attr))
		return -1;
	Loom__MvAttr *cur = mv_attr(mv, attr, NULL);
	if (cur == NULL || cur->n_values == 0 || cur->values[0]->v_case != LOOM__VALUE__V_REF ||
	    strcmp(cur->agent, w->agent) != 0 || strcmp(cur->anchor, w->cs->anchor) != 0)
		return -1;
	eng_agent_t *a = eng_agent_find(w->e, w->agent);
	const eng_rule_t *rule = NULL;
	const eng_flow_t *fl = NULL;
	for (size_t i = 0; a && i < a->nin; i++) {
		const eng_rule_t *r = a->in[i];
		if (strcmp(r->cfg->mv_type, mv->object_type) != 0 || strcmp(r->cfg->cs_type, w->cs->object_type) != 0)
			continue;
		for (size_t k = 0; k < r->nflows; k++)
			if (strcasecmp(r->flows[k].target, attr) == 0) {
				if (fl)
					return -1; /* several flows of this agent feed it */
				fl = &r->flows[k];
				rule = r;
			}
	}
	if (fl == NULL || fl->direct == NULL || !loom_agentcfg_is_ref(a->cfg, fl->direct))
		return -1;
	if (rule->cfg->scope_filter.n) {
		look_t l;
		look_cs(&l, w->cs);
		eng_member_ctx_t mc = { w->e, w->cs->mv_id.len == 8 ? w->cs->mv_id.data : NULL, w->agent };
		if (!eng_scope_match(&rule->cfg->scope_filter, look_fn, &l, &mc))
			return -1;
	}
	if (w->pi == NULL)
		return 0; /* visited without an import: the source is as it was */
	if (w->pi->kind != LOOM__PENDING_IMPORT__KIND__UPDATE)
		return -1;
	Loom__Value **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0, seen = 0;
	int rc = 1;
	for (size_t i = 0; i < w->pi->n_deltas && rc == 1; i++) {
		const Loom__AttrDelta *d = w->pi->deltas[i];
		if (strcasecmp(d->name, fl->direct) != 0)
			continue;
		seen++;
		if (d->op == LOOM__ATTR_DELTA__OP__REPLACE || (d->op == LOOM__ATTR_DELTA__OP__DELETE && d->n_values == 0)) {
			rc = -1;
			break;
		}
		for (size_t k = 0; k < d->n_values && rc == 1; k++) {
			uint8_t id[8];
			if (d->values[k]->v_case != LOOM__VALUE__V_REF) {
				rc = -1;
			} else if (ref_in(w, w->agent, d->values[k]->ref, id)) {
				values_push(d->op == LOOM__ATTR_DELTA__OP__ADD ? &add : &del,
				    d->op == LOOM__ATTR_DELTA__OP__ADD ? &nadd : &ndel, ref_value(id));
			} else if (d->op == LOOM__ATTR_DELTA__OP__ADD) {
				eng_unres_put(w->e, w->b, w->agent, d->values[k]->ref, w->cs->anchor);
			} else {
				rc = -1; /* which metaverse object left is unknown: recompute whole */
			}
		}
	}
	if (rc < 0 || seen == 0) {
		values_free(add, nadd);
		values_free(del, ndel);
		return rc < 0 ? -1 : 0;
	}
	refdiff_t *df = diff_get(w, attr);
	size_t added = 0, removed = 0;
	for (size_t i = 0; i < ndel; i++) {
		for (size_t k = 0; k < cur->n_values; k++)
			if (loom_value_eq(cur->values[k], del[i])) {
				loom_value_free(cur->values[k]);
				memmove(&cur->values[k], &cur->values[k + 1], (cur->n_values - k - 1) * sizeof *cur->values);
				cur->n_values--;
				uint8_t t[8];
				if (eng_mvid_parse(del[i]->ref, t)) {
					eng_mvref_put(w->e, w->b, t, mv->id.data, attr, true);
					if (w->e->uses_membership) /* its ISMEMBEROF scopes may have changed */
						eng_queue_refresh(w->e, w->b, t, NULL);
				}
				values_push(&df->del, &df->ndel, loom_value_dup(del[i]));
				removed++;
				break;
			}
	}
	for (size_t i = 0; i < nadd; i++) {
		bool have = false;
		for (size_t k = 0; k < cur->n_values && !have; k++)
			have = loom_value_eq(cur->values[k], add[i]);
		if (have)
			continue;
		values_push(&cur->values, &cur->n_values, loom_value_dup(add[i]));
		uint8_t t[8];
		if (eng_mvid_parse(add[i]->ref, t)) {
			eng_mvref_put(w->e, w->b, t, mv->id.data, attr, false);
			if (w->e->uses_membership)
				eng_queue_refresh(w->e, w->b, t, NULL);
		}
		values_push(&df->add, &df->nadd, loom_value_dup(add[i]));
		added++;
	}
	values_free(add, nadd);
	values_free(del, ndel);
	if (added + removed == 0)
		return 0;
	cur->changed_at = loom_now_us();
	if (cur->n_values == 0) {
		/* The last reference went: so does the attribute (mv_set would keep
		 * an empty one, which it takes for "unchanged"). */
		size_t idx = 0;
		mv_attr(mv, attr, &idx);
		loom__mv_attr__free_unpacked(mv->attrs[idx], NULL);
		memmove(&mv->attrs[idx], &mv->attrs[idx + 1], (mv->n_attrs - idx - 1) * sizeof *mv->attrs);
		mv->n_attrs--;
	}
	eng_explain(w->e, "flow", "flow %s: +%zu -%zu reference%s (rule '%s', from %s %s, applied change by change)", attr, added,
	    removed, added + removed == 1 ? "" : "s", rule->cfg->name, w->agent, w->cs->anchor);
	return 1;
}

/* Recomputes mv attribute attr from every contributing connector. */
static bool recompute_attr(work_t *w, Loom__MvObject *mv, const char *attr, char **agents, char **anchors, size_t nl)
{
	int quick = recompute_quick(w, mv, attr);
	if (quick >= 0)
		return quick == 1;
	const eng_rule_t *rules[ENG_MAX_INBOUND];
	size_t n = contributors(w->e, mv->object_type, attr, rules, ENG_MAX_INBOUND);
	for (size_t i = 0; i < n; i++) {
		/* Equal precedence: the object being synchronized writes last, so it wins. */
		size_t pick = i;
		for (size_t j = i; j < n && rules[j]->cfg->precedence == rules[i]->cfg->precedence; j++)
			if (strcmp(rules[j]->agent->cfg->name, w->agent) == 0 && j != i) {
				pick = j;
				break;
			}
		for (size_t pass = 0; pass < 2; pass++) {
			const eng_rule_t *r = rules[pass == 0 ? pick : i];
			if (pass == 1 && pick == i)
				break;
			held_t *h;
			const Loom__CsObject *src = connector_in(w, agents, anchors, nl, r->agent->cfg->name, &h);
			if (src == NULL || strcmp(src->object_type, r->cfg->cs_type) != 0)
				continue;
			if (r->cfg->scope_filter.n) {
				look_t ls;
				look_cs(&ls, src);
				eng_member_ctx_t mc = { w->e, src->mv_id.len == 8 ? src->mv_id.data : NULL, r->agent->cfg->name };
				if (!eng_scope_match(&r->cfg->scope_filter, look_fn, &ls, &mc))
					continue; /* out of this rule's scope: it contributes nothing */
			}
			loom_expr_result_t *res = &w->e->res; /* mv_set copies the values */
			int rc = eval_flow(w, r, attr, src, NULL, res);
			bool changed = false, done = false;
			if (rc < 0) {
				w->failed = true;
				done = true;
			} else if (rc == 1 || rc == 2) {
				Loom__Value **v = res->v, **tv = NULL;
				size_t nv = rc == 1 ? res->n : 0, miss = 0;
				if (is_ref_list(v, nv)) {
					nv = refs_in(w, r->agent->cfg->name, src, res->v, res->n, &tv, &miss);
					v = tv;
				}
				changed = mv_set(w, mv, attr, v, nv, r->agent->cfg->name, src->anchor);
				if (w->e->trace) {
					eng_explain(w->e, "flow", "flow %s = %s (rule '%s', precedence %lld, from %s %s)%s", attr,
					    rc == 2 ? "null (AuthoritativeNull)" : vals(v, nv), r->cfg->name,
					    (long long)r->cfg->precedence, r->agent->cfg->name, src->anchor, changed ? "" : ": unchanged");
					if (miss)
						eng_explain(w->e, "reference", "  %zu reference%s not resolved yet (the object is unknown or not joined): "
						    "resolved when it joins", miss, miss == 1 ? "" : "s");
				}
				values_free(tv, tv ? nv : 0);
				done = true;
			}
			if (done)
				return changed;
		}
	}
	/* Nobody has a value: the attribute goes. */
	bool gone = mv_set(w, mv, attr, NULL, 0, "", "");
	if (gone)
		eng_explain(w->e, "flow", "flow %s: no source has a value: removed", attr);
	return gone;
}

/* Recomputes the mv attributes fed by agent's rules (and those it contributed). */
static size_t inbound_flows(work_t *w, Loom__MvObject *mv, const char *agent, bool all_contributed)
{
	char **agents, **anchors;
	size_t nl = links(w, mv, &agents, &anchors);
	size_t changed = 0;
	eng_agent_t *a = eng_agent_find(w->e, agent);
	/* Names first: recompute_attr may reallocate mv->attrs. */
	char **names = NULL;
	size_t nn = 0;
	for (size_t i = 0; a && i < a->nin; i++) {
		const eng_rule_t *r = a->in[i];
		if (strcmp(r->cfg->mv_type, mv->object_type) != 0)
			continue;
		for (size_t k = 0; k < r->nflows; k++) {
			names = loom_realloc(names, (nn + 1) * sizeof *names);
			names[nn++] = loom_strdup(r->flows[k].target);
		}
	}
	if (all_contributed)
		for (size_t i = 0; i < mv->n_attrs; i++)
			if (strcmp(mv->attrs[i]->agent, agent) == 0) {
				names = loom_realloc(names, (nn + 1) * sizeof *names);
				names[nn++] = loom_strdup(mv->attrs[i]->name);
			}
	for (size_t i = 0; i < nn && !w->failed; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcasecmp(names[k], names[i]) == 0;
		if (!seen && recompute_attr(w, mv, names[i], agents, anchors, nl))
			changed++;
	}
	eng_strv_free(names, nn);
	return changed;
}

/* ---- outbound --------------------------------------------------------------------------- */

static Loom__PendingExport *export_new(engine_t *e, work_t *w, Loom__PendingExport__Kind kind)
{
	Loom__PendingExport *p = loom_malloc(sizeof *p);
	loom__pending_export__init(p);
	p->kind = kind;
	p->change_id = eng_seq_next(e, w->b, &e->seq_change, &e->lim_change, "seq:change", 1024);
	p->run_id = e->run ? e->run->id : 0;
	return p;
}

/* An import not synchronized yet tells what the system holds now (a
 * confirming import of an export, say, before its agent's next sync). */
static const Loom__PendingImport *pending_import_of(const Loom__CsObject *t)
{
	const Loom__PendingImport *p = t->pending_import;
	return p && (p->kind == LOOM__PENDING_IMPORT__KIND__UPDATE || p->kind == LOOM__PENDING_IMPORT__KIND__ADD ||
	    p->kind == LOOM__PENDING_IMPORT__KIND__DELETE_ADD) ? p : NULL;
}

/* The target object's attributes as they will be after what was sent: its
 * hologram, then what an import since showed, then what was exported and
 * not confirmed yet. */
static void current_target(const Loom__CsObject *t, Loom__Attr ***ret, size_t *ret_n)
{
	Loom__Attr **v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < t->n_attrs; i++)
		loom_attrs_set(&v, &n, t->attrs[i]->name, t->attrs[i]->values, t->attrs[i]->n_values);
	const Loom__PendingImport *pi = pending_import_of(t);
	if (pi)
		loom_attrs_apply(&v, &n, pi->deltas, pi->n_deltas);
	if (t->unconfirmed && t->unconfirmed->kind != LOOM__PENDING_EXPORT__KIND__DELETE)
		loom_attrs_apply(&v, &n, t->unconfirmed->deltas, t->unconfirmed->n_deltas);
	*ret = v;
	*ret_n = n;
}

/* Puts a REPLACE of name=values into pending export p (replacing an earlier
 * delta of that attribute). */
static void export_put(Loom__PendingExport *p, const char *name, Loom__Value *const *v, size_t n)
{
	Loom__AttrDelta *d = loom_malloc(sizeof *d);
	loom__attr_delta__init(d);
	d->name = loom_strdup(name);
	d->op = LOOM__ATTR_DELTA__OP__REPLACE;
	if (n) {
		d->values = loom_malloc(n * sizeof *d->values);
		for (size_t i = 0; i < n; i++)
			d->values[d->n_values++] = loom_value_dup(v[i]);
	}
	for (size_t i = 0; i < p->n_deltas; i++)
		if (strcasecmp(p->deltas[i]->name, name) == 0) {
			loom__attr_delta__free_unpacked(p->deltas[i], NULL);
			p->deltas[i] = d;
			return;
		}
	p->deltas = loom_realloc(p->deltas, (p->n_deltas + 1) * sizeof *p->deltas);
	p->deltas[p->n_deltas++] = d;
}

/* ---- pending export edits ---- */

static void pending_ensure(work_t *w, Loom__CsObject *t)
{
	if (t->pending_export == NULL || t->pending_export->kind == LOOM__PENDING_EXPORT__KIND__NONE) {
		if (t->pending_export)
			loom__pending_export__free_unpacked(t->pending_export, NULL);
		t->pending_export = export_new(w->e, w, LOOM__PENDING_EXPORT__KIND__UPDATE);
	}
}

/* Removes the pending deltas of name (all ops). */
static void pending_drop(Loom__CsObject *t, const char *name)
{
	Loom__PendingExport *p = t->pending_export;
	if (p == NULL)
		return;
	size_t j = 0;
	for (size_t i = 0; i < p->n_deltas; i++) {
		if (strcasecmp(p->deltas[i]->name, name) == 0)
			loom__attr_delta__free_unpacked(p->deltas[i], NULL);
		else
			p->deltas[j++] = p->deltas[i];
	}
	p->n_deltas = j;
}

static void pending_append(Loom__CsObject *t, Loom__AttrDelta *d)
{
	Loom__PendingExport *p = t->pending_export;
	p->deltas = loom_realloc(p->deltas, (p->n_deltas + 1) * sizeof *p->deltas);
	p->deltas[p->n_deltas++] = d;
}

/* An update left with nothing to do goes (an empty ADD or DELETE delta
 * would mean something else: it is removed first). */
static void pending_tidy(Loom__CsObject *t)
{
	Loom__PendingExport *p = t->pending_export;
	if (p == NULL)
		return;
	size_t j = 0;
	for (size_t i = 0; i < p->n_deltas; i++) {
		Loom__AttrDelta *d = p->deltas[i];
		if (d->op != LOOM__ATTR_DELTA__OP__REPLACE && d->n_values == 0)
			loom__attr_delta__free_unpacked(d, NULL);
		else
			p->deltas[j++] = d;
	}
	p->n_deltas = j;
	if (p->kind == LOOM__PENDING_EXPORT__KIND__UPDATE && p->n_deltas == 0 && p->new_dn[0] == '\0') {
		loom__pending_export__free_unpacked(p, NULL);
		t->pending_export = NULL;
	}
}

static Loom__AttrDelta *pending_find(Loom__CsObject *t, const char *name, Loom__AttrDelta__Op op)
{
	for (size_t i = 0; t->pending_export && i < t->pending_export->n_deltas; i++)
		if (t->pending_export->deltas[i]->op == op && strcasecmp(t->pending_export->deltas[i]->name, name) == 0)
			return t->pending_export->deltas[i];
	return NULL;
}

static Loom__AttrDelta *delta_new(const char *name, Loom__AttrDelta__Op op)
{
	Loom__AttrDelta *d = loom_malloc(sizeof *d);
	loom__attr_delta__init(d);
	d->name = loom_strdup(name);
	d->op = op;
	return d;
}

/* Removes v from d's values; true when it was there. */
static bool delta_take(Loom__AttrDelta *d, const Loom__Value *v)
{
	for (size_t i = 0; d && i < d->n_values; i++)
		if (loom_value_eq(d->values[i], v)) {
			loom_value_free(d->values[i]);
			memmove(&d->values[i], &d->values[i + 1], (d->n_values - i - 1) * sizeof *d->values);
			d->n_values--;
			return true;
		}
	return false;
}

/* The target holds v in name (its hologram, after what was sent). */
static bool target_has(const Loom__CsObject *t, const char *name, const Loom__Value *v)
{
	bool has = false;
	const Loom__Attr *a = loom_attr_find(t->attrs, t->n_attrs, name);
	for (size_t i = 0; a && i < a->n_values && !has; i++)
		has = loom_value_eq(a->values[i], v);
	/* Then what an import showed since, then what was sent since. */
	const Loom__PendingImport *pi = pending_import_of(t);
	const Loom__PendingExport *u = t->unconfirmed && t->unconfirmed->kind != LOOM__PENDING_EXPORT__KIND__DELETE
	    ? t->unconfirmed : NULL;
	size_t npi = pi ? pi->n_deltas : 0, nu = u ? u->n_deltas : 0;
	for (size_t i = 0; i < npi + nu; i++) {
		const Loom__AttrDelta *d = i < npi ? pi->deltas[i] : u->deltas[i - npi];
		if (strcasecmp(d->name, name) != 0)
			continue;
		bool in = false;
		for (size_t k = 0; k < d->n_values && !in; k++)
			in = loom_value_eq(d->values[k], v);
		if (d->op == LOOM__ATTR_DELTA__OP__REPLACE)
			has = in;
		else if (d->op == LOOM__ATTR_DELTA__OP__ADD && in)
			has = true;
		else if (d->op == LOOM__ATTR_DELTA__OP__DELETE && (in || d->n_values == 0))
			has = false;
	}
	return has;
}

/* The DN of the connector in agent of the metaverse object a reference
 * names: the target being written itself, else through the store. */
static char *ref_out(work_t *w, const uint8_t *id, const char *agent, const Loom__MvObject *mv, const Loom__CsObject *t)
{
	if (memcmp(id, mv->id.data, 8) == 0)
		return eng_dn_provisional(w->e, agent, t->dn) ? NULL : loom_strdup(t->dn);
	return eng_ref_out(w->e, id, agent);
}

/* Translates metaverse references among v into DNs of agent's objects
 * (as references). One whose object has no connector there yet is left
 * out: when it gets one, this object is refreshed (mv_ref). */
static size_t refs_out(work_t *w, const char *agent, const Loom__MvObject *mv, const Loom__CsObject *t,
    Loom__Value *const *v, size_t n, Loom__Value ***out, size_t *ret_missing)
{
	Loom__Value **o = loom_malloc((n ? n : 1) * sizeof *o);
	size_t k = 0, miss = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t id[8];
		char *dn;
		if (v[i]->v_case != LOOM__VALUE__V_REF) {
			o[k++] = loom_value_dup(v[i]);
		} else if (eng_mvid_parse(v[i]->ref, id) && (dn = ref_out(w, id, agent, mv, t)) != NULL) {
			Loom__Value *x = loom_value_str(dn, strlen(dn));
			x->v_case = LOOM__VALUE__V_REF;
			o[k++] = x;
			free(dn);
		} else {
			miss++;
		}
	}
	*out = o;
	*ret_missing = miss;
	return k;
}

/* The incremental side of an outbound reference flow: the references the
 * metaverse attribute gained and lost in this work, as ADD and DELETE of
 * those DNs only (merged with what is pending). Returns true when the
 * pending export changed. */
static bool export_ref_changes(work_t *w, const char *agent, const Loom__MvObject *mv, Loom__CsObject *t,
    const char *name, const refdiff_t *df)
{
	Loom__Value **add, **del;
	size_t madd, mdel;
	size_t nadd = refs_out(w, agent, mv, t, df->add, df->nadd, &add, &madd);
	size_t ndel = refs_out(w, agent, mv, t, df->del, df->ndel, &del, &mdel);
	bool changed = false;
	if (nadd + ndel) {
		pending_ensure(w, t);
		Loom__AttrDelta *rp = pending_find(t, name, LOOM__ATTR_DELTA__OP__REPLACE);
		Loom__AttrDelta *pa = pending_find(t, name, LOOM__ATTR_DELTA__OP__ADD);
		Loom__AttrDelta *pd = pending_find(t, name, LOOM__ATTR_DELTA__OP__DELETE);
		for (size_t i = 0; i < ndel; i++) {
			if (rp) {
				changed |= delta_take(rp, del[i]);
			} else if (delta_take(pa, del[i])) {
				changed = true;
			} else if (target_has(t, name, del[i])) {
				if (pd == NULL)
					pending_append(t, pd = delta_new(name, LOOM__ATTR_DELTA__OP__DELETE));
				values_push(&pd->values, &pd->n_values, loom_value_dup(del[i]));
				changed = true;
			}
		}
		for (size_t i = 0; i < nadd; i++) {
			if (rp) {
				bool have = false;
				for (size_t k = 0; k < rp->n_values && !have; k++)
					have = loom_value_eq(rp->values[k], add[i]);
				if (!have) {
					values_push(&rp->values, &rp->n_values, loom_value_dup(add[i]));
					changed = true;
				}
			} else if (delta_take(pd, add[i])) {
				changed = true;
			} else if (!target_has(t, name, add[i])) {
				if (pa == NULL)
					pending_append(t, pa = delta_new(name, LOOM__ATTR_DELTA__OP__ADD));
				values_push(&pa->values, &pa->n_values, loom_value_dup(add[i]));
				changed = true;
			}
		}
		pending_tidy(t);
	}
	if (w->e->trace)
		eng_explain(w->e, "flow", "  outbound %s: +%zu -%zu reference%s (change by change)%s", name, nadd, ndel,
		    nadd + ndel == 1 ? "" : "s", madd + mdel ? ", some objects have no connector there yet" : "");
	values_free(add, nadd);
	values_free(del, ndel);
	return changed;
}

/* Applies rule's outbound flows from mv to target t. connected: t was
 * connected to mv before this work (so its unchanged reference attributes
 * need not be compared again in a delta sync). Returns true when its
 * pending export changed. */
static bool outbound_flows(work_t *w, const eng_rule_t *rule, const Loom__MvObject *mv, Loom__CsObject *t,
    bool connected)
{
	bool adding = t->pending_export && t->pending_export->kind == LOOM__PENDING_EXPORT__KIND__ADD;
	const char *agent = rule->agent->cfg->name;
	bool quick = !w->full && !adding && connected;
	Loom__Attr **cur = NULL;
	size_t ncur = 0;
	bool have_cur = false;
	bool changed = false;
	for (size_t k = 0; k < rule->nflows && !w->failed; k++) {
		const eng_flow_t *fl = &rule->flows[k];
		if (fl->cfg->initial && !adding)
			continue;
		if (quick && fl->direct) {
			/* A reference attribute the metaverse object holds: in a delta sync,
			 * only what changed in it is sent (resolving 50,000 members to
			 * send one is what this avoids). */
			const Loom__MvAttr *src = mv_attr((Loom__MvObject *)mv, fl->direct, NULL);
			refdiff_t *df = diff_find(w, fl->direct);
			bool refs = df || (src && is_ref_list(src->values, src->n_values > 0 ? 1 : 0));
			if (refs && df == NULL)
				continue;
			if (refs && !df->whole) {
				changed |= export_ref_changes(w, agent, mv, t, fl->target, df);
				continue;
			}
		}
		loom_expr_result_t *res = &w->e->res; /* copied below */
		int rc = eval_flow(w, rule, fl->target, NULL, mv, res);
		if (rc < 0) {
			w->failed = true;
			continue;
		}
		if (rc == 3)
			continue;
		Loom__Value **v = res->v, **tv = NULL;
		size_t n = rc == 1 ? res->n : 0, miss = 0;
		if (is_ref_list(v, n)) {
			n = refs_out(w, agent, mv, t, res->v, res->n, &tv, &miss);
			v = tv;
			if (miss)
				eng_explain(w->e, "flow", "  outbound %s: %zu reference%s to objects with no connector in %s yet", fl->target,
				    miss, miss == 1 ? "" : "s", agent);
		}
		if (adding) {
			/* The ADD carries the whole object: a REPLACE per attribute. */
			const Loom__AttrDelta *p = pending_find(t, fl->target, LOOM__ATTR_DELTA__OP__REPLACE);
			bool same = p ? loom_values_same(p->values, p->n_values, v, n) : n == 0;
			if (!same) {
				export_put(t->pending_export, fl->target, v, n);
				changed = true;
			}
		} else {
			if (!have_cur) {
				current_target(t, &cur, &ncur);
				have_cur = true;
			}
			const Loom__Attr *have = loom_attr_find(cur, ncur, fl->target);
			/* What the target will hold once what is pending is sent. */
			Loom__Attr **will = NULL;
			size_t nwill = 0;
			if (have)
				loom_attrs_set(&will, &nwill, have->name, have->values, have->n_values);
			for (size_t i = 0; t->pending_export && i < t->pending_export->n_deltas; i++)
				if (strcasecmp(t->pending_export->deltas[i]->name, fl->target) == 0)
					loom_attrs_apply(&will, &nwill, &t->pending_export->deltas[i], 1);
			const Loom__Attr *wa = loom_attr_find(will, nwill, fl->target);
			if (!loom_values_same(wa ? wa->values : NULL, wa ? wa->n_values : 0, v, n)) {
				/* Replace what was pending with what turns the target into the result. */
				pending_drop(t, fl->target);
				Loom__Attr want = LOOM__ATTR__INIT;
				want.name = (char *)fl->target;
				want.values = v;
				want.n_values = n;
				Loom__Attr *wantp = &want;
				Loom__AttrDelta **d;
				size_t nd;
				loom_attrs_diff(have ? (Loom__Attr *const *)&have : NULL, have ? 1 : 0, n ? &wantp : NULL, n ? 1 : 0, &d, &nd);
				if (nd) {
					pending_ensure(w, t);
					for (size_t i = 0; i < nd; i++)
						pending_append(t, d[i]);
				}
				free(d);
				pending_tidy(t);
				changed = true;
			}
			loom_attrs_free(will, nwill);
		}
		values_free(tv, tv ? n : 0);
	}
	if (have_cur)
		loom_attrs_free(cur, ncur);
	return changed;
}

/* The rule that provisioned t owns its DN: when the DN expression now gives
 * another DN, the pending export carries a rename. Returns 1 when a rename
 * was staged, 0 when none is needed, -1 on an error (reported). Objects not
 * exported yet keep their first DN until then. */
static int outbound_rename(work_t *w, const eng_rule_t *rule, const Loom__MvObject *mv, Loom__CsObject *t)
{
	if (rule->dn == NULL || strcmp(t->provisioned_by, rule->cfg->name) != 0 ||
	    t->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER)
		return 0;
	look_t l;
	look_mv(&l, mv);
	loom_expr_result_t *res = &w->e->res;
	char *err = NULL;
	int rc = loom_expr_eval(rule->dn, look_fn, &l, res, &err);
	look_release(&l);
	int out = 0;
	if (rc < 0 || res->n == 0 || res->v[0]->v_case != LOOM__VALUE__V_STR || res->v[0]->str[0] == '\0') {
		char *m = loom_sprintf("rule '%s' cannot build the DN: %s", rule->cfg->name,
		    rc < 0 ? err : "the dn expression gave no value");
		eng_run_error(w->e, w->cs->anchor, w->cs->dn, "provisioning-error", m, NULL, false);
		free(m);
		w->failed = true;
		out = -1;
	} else {
		const char *dn = res->v[0]->str;
		const char *pending = t->pending_export ? t->pending_export->new_dn : "";
		bool same_now = strcasecmp(dn, t->dn) == 0;
		if ((!same_now && strcasecmp(dn, pending) != 0) || (same_now && pending[0])) {
			if (t->pending_export == NULL || t->pending_export->kind == LOOM__PENDING_EXPORT__KIND__NONE) {
				if (t->pending_export)
					loom__pending_export__free_unpacked(t->pending_export, NULL);
				t->pending_export = export_new(w->e, w, LOOM__PENDING_EXPORT__KIND__UPDATE);
			}
			/* Back to the current DN cancels an unsent rename. */
			loom_pb_str_set(&t->pending_export->new_dn, same_now ? "" : dn);
			out = 1;
		}
	}
	free(err);
	return out;
}

static void link_set(work_t *w, Loom__CsObject *cs, const char *agent, const Loom__MvObject *mv)
{
	if (cs == w->cs)
		links_forget(w);
	free(cs->mv_id.data);
	cs->mv_id.len = 8;
	cs->mv_id.data = loom_memdup(mv->id.data, 8);
	eng_link_put(w->e, w->b, mv->id.data, agent, cs->anchor, false);
	for (size_t i = 0; i < w->nheld; i++)
		if (w->held[i].cs == cs)
			w->held[i].linked_now = true;
	if (cs == w->cs) {
		/* References in this connector space waiting for this object resolve now. */
		size_t n = eng_unres_wake(w->e, w->b, agent, cs->dn, cs->anchor);
		if (strcasecmp(cs->anchor, cs->dn) != 0)
			n += eng_unres_wake(w->e, w->b, agent, cs->anchor, cs->anchor);
		if (n)
			eng_explain(w->e, "reference", "%zu object%s referencing this one will be synchronized again at the end of the run", n,
			    n == 1 ? "" : "s");
	}
	/* Objects referencing mv can now reach it in this system. */
	eng_queue_referrers(w->e, w->b, mv->id.data, agent, false);
}

static void link_clear(work_t *w, Loom__CsObject *cs, const char *agent)
{
	if (cs == w->cs)
		links_forget(w);
	if (cs->mv_id.len == 8) {
		eng_link_put(w->e, w->b, cs->mv_id.data, agent, cs->anchor, true);
		/* Objects referencing mv lose it in this system. */
		eng_queue_referrers(w->e, w->b, cs->mv_id.data, agent, false);
	}
	free(cs->mv_id.data);
	cs->mv_id.data = NULL;
	cs->mv_id.len = 0;
}

/* Deprovisions connector t of agent by action. */
static void deprovision(work_t *w, held_t *h, int action)
{
	Loom__CsObject *t = h->cs;
	static const char *const names[] = { "disconnect", "explicit-disconnect", "delete" };
	eng_explain(w->e, "deprovision", "deprovision %s %s (%s) by %s", h->agent, t->anchor, t->dn, names[action]);
	link_clear(w, t, h->agent);
	h->dirty = true;
	eng_run_count(w->e, "deprovisioned", t->anchor);
	bool never_exported = t->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER &&
	    t->pending_export && t->pending_export->kind == LOOM__PENDING_EXPORT__KIND__ADD;
	if (action == LOOM_DEPROV_DELETE) {
		if (never_exported) {
			h->removed = true;
			return;
		}
		if (t->pending_export)
			loom__pending_export__free_unpacked(t->pending_export, NULL);
		t->pending_export = export_new(w->e, w, LOOM__PENDING_EXPORT__KIND__DELETE);
		t->state = LOOM__CS_OBJECT__STATE__NORMAL;
		return;
	}
	t->state = action == LOOM_DEPROV_EXPLICIT ? LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR
						  : LOOM__CS_OBJECT__STATE__NORMAL;
	if (never_exported) {
		h->removed = true;
		return;
	}
	/* A disconnector receives no flows: changes waiting for it go too. */
	if (t->pending_export && t->pending_export->kind == LOOM__PENDING_EXPORT__KIND__UPDATE) {
		loom__pending_export__free_unpacked(t->pending_export, NULL);
		t->pending_export = NULL;
	}
}

static int deprov_action(engine_t *e, const char *agent, const char *mv_type, const Loom__CsObject *t)
{
	eng_agent_t *a = eng_agent_find(e, agent);
	for (size_t i = 0; a && i < a->nout; i++)
		if (strcmp(a->out[i]->cfg->mv_type, mv_type) == 0 &&
		    (t->provisioned_by[0] == '\0' || strcmp(t->provisioned_by, a->out[i]->cfg->name) == 0))
			return a->out[i]->cfg->deprovision;
	return LOOM_DEPROV_DISCONNECT;
}

/* Provisioning, deprovisioning and flows for every outbound rule of mv. */
static void outbound(work_t *w, Loom__MvObject *mv)
{
	engine_t *e = w->e;
	char **agents, **anchors;
	size_t nl = links(w, mv, &agents, &anchors);
	for (size_t i = 0; i < e->nrules && !w->failed; i++) {
		const eng_rule_t *rule = &e->rules[i];
		if (rule->cfg->direction != LOOM_SYNC_OUTBOUND || strcmp(rule->cfg->mv_type, mv->object_type) != 0)
			continue;
		const char *target = rule->agent->cfg->name;
		if (w->only_agent && strcmp(w->only_agent, target) != 0)
			continue; /* a refresh for another system's sake */
		bool in_scope = true;
		if (rule->scope || rule->cfg->scope_filter.n) {
			look_t l;
			look_mv(&l, mv);
			int rc = rule->scope ? eval_bool(e, rule->scope, &l, w->cs, &in_scope) : 0;
			if (rc == 0 && in_scope)
				in_scope = eng_scope_match(&rule->cfg->scope_filter, look_fn, &l,
				    &(eng_member_ctx_t){ e, mv->id.data, target });
			look_release(&l);
			if (rc < 0) {
				w->failed = true;
				break;
			}
		}
		/* Existence tests: the rule holds the object only while each has a value. */
		for (size_t k = 0; in_scope && k < rule->nflows; k++) {
			if (!rule->flows[k].cfg->existence)
				continue;
			int rc = eval_flow(w, rule, rule->flows[k].target, NULL, mv, &e->res);
			if (rc < 0) {
				w->failed = true;
				break;
			}
			if (rc == 0 || rc == 2) {
				in_scope = false;
				eng_explain(e, "scope", "outbound rule '%s': existence flow to '%s' has no value", rule->cfg->name,
				    rule->flows[k].target);
			}
		}
		if (w->failed)
			break;
		held_t *h;
		Loom__CsObject *t = connector_in(w, agents, anchors, nl, target, &h);
		if (t && strcmp(t->object_type, rule->cfg->cs_type) != 0)
			continue;
		eng_explain(e, "scope", "outbound rule '%s' to %s: %s%s%s", rule->cfg->name, target, in_scope ? "in scope" : "out of scope",
		    t ? ", connector " : ", no connector", t ? t->dn : "");
		if (t) {
			if (!in_scope) {
				/* provision: what it created; join: every connector it manages;
				 * sticky-join: nothing, the connector stays and its flows stop. */
				bool owns = rule->cfg->link_type == LOOM_LINK_JOIN ||
				    strcmp(t->provisioned_by, rule->cfg->name) == 0;
				if (h && owns && rule->cfg->link_type != LOOM_LINK_STICKY)
					deprovision(w, h, rule->cfg->deprovision);
				else
					eng_explain(e, "deprovision", "  kept connected (%s)", rule->cfg->link_type == LOOM_LINK_STICKY ? "sticky-join"
					    : "not provisioned by this rule");
				continue;
			}
			bool flowed = outbound_flows(w, rule, mv, t, t == w->cs ? w->was_joined : (h && !h->linked_now));
			int renamed = outbound_rename(w, rule, mv, t);
			if (renamed < 0)
				break;
			if (flowed || renamed) {
				if (h)
					h->dirty = true;
				if (flowed)
					eng_run_count(e, "export-flows", t->anchor);
				if (renamed)
					eng_run_count(e, "export-renames", t->anchor);
			}
			continue;
		}
		if (!in_scope || !rule->provision)
			continue;
		/* Provision: a new connector in the target agent. */
		look_t l;
		look_mv(&l, mv);
		loom_expr_result_t res;
		loom_expr_result_init(&res);
		char *err = NULL;
		char *dn = NULL;
		if (rule->dn == NULL) {
			/* The system names its objects (a policy agent): a provisional
			 * DN unique to the metaverse object, until the export result
			 * gives the ObjectID (which is anchor and DN from then on). */
			char hex[17];
			eng_mvid_hex(hex, mv->id.data);
			dn = loom_sprintf("new:%s", hex);
			look_release(&l);
		} else {
			int rc = loom_expr_eval(rule->dn, look_fn, &l, &res, &err);
			look_release(&l);
			if (rc < 0 || res.n == 0 || res.v[0]->v_case != LOOM__VALUE__V_STR || res.v[0]->str[0] == '\0') {
				char *m = loom_sprintf("rule '%s' cannot build the DN: %s", rule->cfg->name,
				    rc < 0 ? err : "the dn expression gave no value");
				eng_run_error(e, w->cs->anchor, w->cs->dn, "provisioning-error", m, NULL, false);
				free(m);
				free(err);
				loom_expr_result_release(&res);
				w->failed = true;
				break;
			}
			dn = loom_strdup(res.v[0]->str);
		}
		loom_expr_result_release(&res);
		char *existing = eng_csdn_get(e, target, dn);
		if (existing && is_self(w, target, existing) && cs_leaving(w->cs)) {
			/* The object at that DN is the one being synchronized, and it is
			 * leaving the connector space (its delete was imported: someone
			 * deleted it in the system behind Loom's back). Its DN index
			 * entry goes with it in this batch, so the DN is free: provision
			 * a new object there, as if it had never been. */
			free(existing);
			existing = NULL;
			eng_explain(e, "provision", "  %s %s was deleted in the system: provisioned again", target, dn);
		}
		Loom__CsObject *t2;
		held_t *h2 = NULL;
		if (existing) {
			/* The system already has an object there: connect it instead. */
			h2 = hold(w, target, existing);
			/* hold() answers NULL for the object being synchronized itself
			 * (here: one its connector filter just disconnected). */
			bool self = is_self(w, target, existing);
			free(existing);
			if (h2 == NULL || h2->cs->mv_id.len || h2->cs->state == LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR) {
				char *m = loom_sprintf("rule '%s' would provision '%s' in agent '%s', which is %s", rule->cfg->name,
				    dn, target, h2 && h2->cs->state == LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR
				    ? "an explicit disconnector (an administrator said: never connect it)"
				    : self ? "the object being synchronized, disconnected by its connector filter"
				    : "already connected to another metaverse object");
				eng_run_error(e, w->cs->anchor, w->cs->dn, "provisioning-conflict", m, NULL, false);
				free(m);
				free(dn);
				continue;
			}
			t2 = h2->cs;
			t2->state = LOOM__CS_OBJECT__STATE__JOINED;
			if (t2->pending_export && t2->pending_export->kind == LOOM__PENDING_EXPORT__KIND__DELETE) {
				/* Deprovisioned but not exported yet: it stays after all. */
				loom__pending_export__free_unpacked(t2->pending_export, NULL);
				t2->pending_export = NULL;
			}
			eng_run_count(e, "provisioning-joined-existing", t2->anchor);
		} else {
			t2 = loom_malloc(sizeof *t2);
			loom__cs_object__init(t2);
			t2->dn = loom_strdup(dn);
			t2->object_type = loom_strdup(rule->cfg->cs_type);
			t2->state = LOOM__CS_OBJECT__STATE__PLACEHOLDER;
			t2->provisioned_by = loom_strdup(rule->cfg->name);
			t2->connected_at = t2->changed_at = loom_now_us();
			t2->pending_export = export_new(e, w, LOOM__PENDING_EXPORT__KIND__ADD);
			/* The anchor is the DN where the agent anchors on it; otherwise a
			 * placeholder until the export result names the real one. */
			char *anchor = NULL;
			if (rule->anchor && strcasecmp(rule->agent->cfg->anchor, "dn") != 0) {
				look_t la;
				look_mv(&la, mv);
				loom_expr_result_t ar;
				loom_expr_result_init(&ar);
				char *aerr = NULL;
				int arc = loom_expr_eval(rule->anchor, look_fn, &la, &ar, &aerr);
				look_release(&la);
				if (arc == 0 && ar.n && ar.v[0]->v_case == LOOM__VALUE__V_STR && ar.v[0]->str[0])
					anchor = loom_strdup(ar.v[0]->str);
				if (anchor == NULL) {
					char *m = loom_sprintf("rule '%s' cannot build the anchor: %s", rule->cfg->name,
					    arc < 0 ? aerr : "the anchor expression gave no value");
					eng_run_error(e, w->cs->anchor, w->cs->dn, "provisioning-error", m, NULL, false);
					free(m);
				}
				free(aerr);
				loom_expr_result_release(&ar);
				if (anchor == NULL) {
					loom__cs_object__free_unpacked(t2, NULL);
					free(dn);
					w->failed = true;
					break;
				}
			}
			if (anchor)
				t2->anchor = anchor;
			else if (strcasecmp(rule->agent->cfg->anchor, "dn") == 0)
				t2->anchor = loom_strdup(dn);
			else
				t2->anchor = loom_sprintf("~%llu", (unsigned long long)t2->pending_export->change_id);
			w->held = loom_realloc(w->held, (w->nheld + 1) * sizeof *w->held);
			h2 = &w->held[w->nheld++];
			h2->agent = loom_strdup(target);
			h2->cs = t2;
			h2->removed = h2->linked_now = false;
			h2->old_dn = NULL;
			h2->had_export = 0;
			eng_run_count(e, "provisioned", t2->anchor);
			eng_explain(e, "provision", "  provision %s %s", target, t2->dn);
		}
		free(dn);
		h2->dirty = true;
		link_set(w, t2, target, mv);
		outbound_flows(w, rule, mv, t2, false);
		/* The new link is in the batch, not yet in the store: keep the list. */
		links_add(w, target, t2->anchor);
		nl = links(w, mv, &agents, &anchors);
	}
}

/* ---- disconnection and metaverse deletion ---------------------------------------------------- */

static const loom_sync_mvdel_t *mvdel_rule(engine_t *e, const char *mv_type)
{
	for (size_t f = 0; f < e->nsynccfgs; f++) {
		const loom_sync_mvdel_t *v = e->synccfgs[f].mv_deletion.v;
		for (size_t i = 0; i < e->synccfgs[f].mv_deletion.n; i++)
			if (strcmp(v[i].mv_type, mv_type) == 0)
				return &v[i];
	}
	return NULL;
}

/* The object w->cs leaves its metaverse object mv (deleted or filtered). */
static void disconnect(work_t *w, Loom__MvObject *mv)
{
	engine_t *e = w->e;
	link_clear(w, w->cs, w->agent);
	char **agents, **anchors;
	size_t nl = eng_links(e, mv->id.data, &agents, &anchors);
	/* The store still lists the link just cleared: leave it out. */
	size_t others = 0;
	for (size_t i = 0; i < nl; i++)
		if (!is_self(w, agents[i], anchors[i]))
			others++;
	const loom_sync_mvdel_t *rule = mvdel_rule(e, mv->object_type);
	bool del = rule && rule->when == LOOM_MVDEL_AGENT ? strcmp(rule->agent, w->agent) == 0 : others == 0;
	eng_explain(e, "deletion", "disconnected from metaverse object %s; deletion rule %s: the metaverse object %s", hexid(mv->id.data),
	    rule ? (rule->when == LOOM_MVDEL_AGENT ? "agent-disconnected" : "last-connector") : "last-connector (default)",
	    del ? "is deleted" : "stays");
	if (del) {
		for (size_t i = 0; i < nl; i++) {
			if (is_self(w, agents[i], anchors[i]))
				continue;
			held_t *h = hold(w, agents[i], anchors[i]);
			if (h)
				deprovision(w, h, deprov_action(e, agents[i], mv->object_type, h->cs));
		}
		eng_mv_delete(e, w->b, mv);
		eng_run_count(e, "mv-deleted", w->cs->anchor);
	} else {
		/* Attributes this object gave fall to the next source, then flow out. */
		inbound_flows(w, mv, w->agent, true);
		eng_mv_put(e, w->b, mv);
		outbound(w, mv);
	}
	eng_strv_free(agents, nl);
	eng_strv_free(anchors, nl);
}

/* ---- one object ------------------------------------------------------------------------------- */

/* Applies the pending import to the hologram; returns it (the caller
 * frees it), or NULL when there was none. */
static Loom__PendingImport *apply_pending(Loom__CsObject *cs)
{
	Loom__PendingImport *p = cs->pending_import;
	if (p == NULL || p->kind == LOOM__PENDING_IMPORT__KIND__NONE)
		return NULL;
	if (p->kind == LOOM__PENDING_IMPORT__KIND__ADD && p->object_type[0]) {
		loom_pb_str_set(&cs->object_type, p->object_type);
	}
	loom_attrs_apply(&cs->attrs, &cs->n_attrs, p->deltas, p->n_deltas);
	if (p->new_dn[0]) {
		loom_pb_str_set(&cs->dn, p->new_dn);
	}
	cs->pending_import = NULL;
	return p;
}

/* A preview line for an object's pending export. */
static void explain_export(engine_t *e, const char *agent, const Loom__CsObject *cs, bool removed)
{
	if (e->trace == NULL)
		return;
	if (removed) {
		eng_explain(e, "export", "result: %s %s leaves the connector space", agent, cs->dn);
		preview_export(e, agent, cs, true);
		return;
	}
	const Loom__PendingExport *p = cs->pending_export;
	if (p == NULL || p->kind == LOOM__PENDING_EXPORT__KIND__NONE)
		return;
	preview_export(e, agent, cs, false);
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "result: pending export to %s %s: %s", agent, cs->dn,
	    protobuf_c_enum_descriptor_get_value(&loom__pending_export__kind__descriptor, p->kind)->name);
	if (p->new_dn[0])
		loom_buf_printf(&b, " (rename to %s)", p->new_dn);
	for (size_t i = 0; i < p->n_deltas; i++)
		loom_buf_printf(&b, "%s %s = %s", i ? ";" : "", p->deltas[i]->name, vals(p->deltas[i]->values, p->deltas[i]->n_values));
	eng_explain(e, "export", "%s", loom_buf_cstr(&b));
	loom_buf_release(&b);
}

static int commit(work_t *w, const char **error_r)
{
	engine_t *e = w->e;
	char *rerr = eng_read_error_take(e);
	if (rerr) {
		/* A lookup failed: what was decided rests on a read that did not happen. */
		eng_run_error(e, w->cs->anchor, w->cs->dn, "store-error", rerr, NULL, true);
		w->failed = true;
		free(rerr);
	}
	if (e->trace && !w->failed) {
		explain_export(e, w->agent, w->cs, false);
		for (size_t i = 0; i < w->nheld; i++)
			if (w->held[i].dirty || w->held[i].removed)
				explain_export(e, w->held[i].agent, w->held[i].cs, w->held[i].removed);
	}
	if (e->dry_run) {
		/* A preview: decided, explained, and nothing written. */
		loom_batch_clear(w->b);
		return 0;
	}
	if (w->failed) {
		/* Nothing of this object is written (its error is in the run; id
		 * blocks it took were recorded by eng_seq_next). */
		loom_batch_clear(w->b);
		return 0;
	}
	for (size_t i = 0; i < w->nheld; i++) {
		held_t *h = &w->held[i];
		if (h->removed) {
			eng_cs_delete(e, w->b, h->agent, h->cs);
			continue;
		}
		if (!h->dirty)
			continue;
		eng_cs_put(e, w->b, h->agent, h->cs, h->old_dn);
		char pe = eng_export_kind(h->cs);
		if (pe != h->had_export || h->old_dn == NULL)
			eng_export_mark(e, w->b, h->agent, h->cs->anchor, pe);
	}
	/* Outside a run (preview --commit) the answer "committed" waits for fsync. */
	return loom_store_write_ex(e->store, w->b, e->run == NULL, error_r);
}

int eng_sync_one(engine_t *e, const char *agent, const char *anchor, bool full, const char **error_r)
{
	const char *err = NULL;
	free(eng_read_error_take(e)); /* each object's sync judges its own reads */
	Loom__CsObject *cs = eng_cs_get(e, agent, anchor, &err);
	loom_batch_t *b = e->batch;
	loom_batch_clear(b);
	/* Import marks the objects a delta sync must visit; a full sync clears
	 * the mark of those it passes (the others have none). */
	if (!full || cs == NULL || (cs->pending_import && cs->pending_import->kind != LOOM__PENDING_IMPORT__KIND__NONE))
		eng_mark(e, b, CF_DELTA, agent, anchor, false);
	if (e->resyncing)
		eng_mark(e, b, CF_RESYNC, agent, anchor, false);
	if (cs == NULL) {
		if (err) {
			*error_r = err;
			return -1;
		}
		return e->dry_run ? 0 : loom_store_write_ex(e->store, b, false, error_r);
	}
	char *old_dn = loom_strdup(cs->dn);
	char had_export = eng_export_kind(cs);
	if (e->run)
		e->run->objects++;
	/* A lost export (a change the import did not show) is sent again whole. */
	work_t w = { .e = e, .b = b, .agent = agent, .cs = cs,
		     .full = full || strcmp(cs->last_error, "exported-change-not-reimported") == 0 };
	Loom__MvObject *mv = NULL;
	if (cs->mv_id.len == 8) {
		err = NULL;
		mv = eng_mv_get(e, cs->mv_id.data, 8, &err);
		if (mv == NULL && err) {
			/* Unreadable is not gone: fail this object, change nothing. */
			eng_run_error(e, cs->anchor, cs->dn, "store-error", err, NULL, true);
			loom__cs_object__free_unpacked(cs, NULL);
			free(old_dn);
			return 0;
		}
	}
	if (cs->mv_id.len && mv == NULL) {
		/* The metaverse object is gone: this is a disconnector again. */
		free(cs->mv_id.data);
		cs->mv_id.data = NULL;
		cs->mv_id.len = 0;
		if (cs->state == LOOM__CS_OBJECT__STATE__JOINED)
			cs->state = LOOM__CS_OBJECT__STATE__NORMAL;
	}

	eng_explain(e, "object", "object %s %s (%s): %s, pending import %s", agent, cs->anchor, cs->dn,
	    eng_state_name(cs->state), cs->pending_import && cs->pending_import->kind ?
	    protobuf_c_enum_descriptor_get_value(&loom__pending_import__kind__descriptor, cs->pending_import->kind)->name : "none");
	w.was_joined = mv != NULL;
	if (mv)
		eng_explain(e, "object", "joined to metaverse object %s (%s)", hexid(mv->id.data), mv->object_type);
	/* 1. deletes */
	if (cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__DELETE) {
		if (mv) {
			disconnect(&w, mv);
			eng_run_count(e, "deleted-connectors", cs->anchor);
		} else {
			eng_run_count(e, "deleted-disconnectors", cs->anchor);
		}
		eng_cs_delete(e, b, agent, cs);
		goto done_write;
	}
	/* 2. the import becomes the hologram */
	w.pi = apply_pending(cs);
	if (cs->state == LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR || cs->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER) {
		eng_run_count(e, cs->state == LOOM__CS_OBJECT__STATE__PLACEHOLDER ? "placeholders" : "explicit-disconnectors", NULL);
		goto save_cs;
	}
	eng_agent_t *a = eng_agent_find(e, agent);
	const eng_rule_t *rules[ENG_MAX_INBOUND]; /* a->nin is at most that (load) */
	size_t nr = 0;
	look_t lcs;
	look_cs(&lcs, cs);
	for (size_t i = 0; a && i < a->nin; i++)
		if (strcmp(a->in[i]->cfg->cs_type, cs->object_type) == 0 &&
		    eng_scope_match(&a->in[i]->cfg->scope_filter, look_fn, &lcs,
		        &(eng_member_ctx_t){ e, cs->mv_id.len == 8 ? cs->mv_id.data : NULL, agent }))
			rules[nr++] = a->in[i];
	/* 3. connector filter */
	bool filtered = false;
	for (size_t i = 0; i < nr && !filtered; i++) {
		if (rules[i]->filter == NULL)
			continue;
		look_t l;
		look_cs(&l, cs);
		if (eval_bool(e, rules[i]->filter, &l, cs, &filtered) < 0) {
			w.failed = true;
			goto done;
		}
	}
	eng_explain(e, "filter", "connector filter: %s", filtered ? "filtered" : "not filtered");
	if (filtered && cs->state != LOOM__CS_OBJECT__STATE__EXPLICIT_CONNECTOR) {
		if (mv) {
			disconnect(&w, mv);
			eng_run_count(e, "filtered-connectors-removed", cs->anchor);
		}
		cs->state = LOOM__CS_OBJECT__STATE__FILTERED;
		eng_run_count(e, "filtered", cs->anchor);
		goto save_cs;
	}
	if (cs->state == LOOM__CS_OBJECT__STATE__FILTERED)
		cs->state = LOOM__CS_OBJECT__STATE__NORMAL;
	/* 4. join, then projection */
	if (mv == NULL) {
		for (size_t i = 0; i < nr && mv == NULL; i++) {
			uint8_t id[8];
			int rc = try_join(&w, rules[i], id);
			if (rc < 0) {
				loom_pb_str_set(&cs->last_error, "ambiguous-join");
				goto save_cs;
			}
			if (rc == 1) {
				err = NULL;
				mv = eng_mv_get(e, id, 8, &err);
				if (mv == NULL && err)
					eng_read_failed(e, err);
				if (mv) {
					eng_explain(e, "join", "joined to metaverse object %s by rule '%s'", hexid(id), rules[i]->cfg->name);
					eng_run_count(e, "joined", cs->anchor);
				}
			}
		}
		for (size_t i = 0; i < nr && mv == NULL; i++) {
			if (!rules[i]->cfg->project)
				continue;
			mv = mv_new(&w, rules[i]->cfg->mv_type, agent);
			eng_explain(e, "projection", "projected into a new %s object %s by rule '%s'", mv->object_type, hexid(mv->id.data),
			    rules[i]->cfg->name);
			eng_run_count(e, "projected", cs->anchor);
		}
		if (mv == NULL) {
			eng_explain(e, "projection", "no join and no projection: stays a disconnector");
			eng_run_count(e, "disconnectors", NULL);
			goto save_cs;
		}
		link_set(&w, cs, agent, mv);
		if (cs->state != LOOM__CS_OBJECT__STATE__EXPLICIT_CONNECTOR)
			cs->state = LOOM__CS_OBJECT__STATE__JOINED;
	}
	if (cs->last_error[0]) {
		loom_pb_str_set(&cs->last_error, "");
	}
	/* 5. inbound flows */
	size_t changed = inbound_flows(&w, mv, agent, false);
	if (w.failed)
		goto done;
	eng_run_count(e, changed ? "connectors-with-flow-updates" : "connectors-without-flow-updates",
	    changed ? cs->anchor : NULL);
	eng_mv_put(e, b, mv);
	/* 6. outbound: always, for an object a sync visits (a delta sync visits
	 * only objects whose import changed, or whose last export was lost). */
	outbound(&w, mv);
save_cs:
	eng_cs_put(e, b, agent, cs, old_dn);
done_write:
	if (!(cs->pending_import && cs->pending_import->kind == LOOM__PENDING_IMPORT__KIND__DELETE)) {
		char pe = eng_export_kind(cs);
		if (pe != had_export)
			eng_export_mark(e, b, agent, cs->anchor, pe);
	}
done:;
	int rc = commit(&w, error_r);
	if (mv)
		loom__mv_object__free_unpacked(mv, NULL);
	work_release(&w);
	free(old_dn);
	loom__cs_object__free_unpacked(cs, NULL);
	return rc;
}

/* ---- refresh ----------------------------------------------------------------------------------- */

int eng_mv_refresh(engine_t *e, const uint8_t *id, const char *agent, const void *key, size_t klen,
    const char **error_r)
{
	free(eng_read_error_take(e));
	loom_batch_t *b = e->batch;
	loom_batch_clear(b);
	if (agent == NULL) {
		/* A refresh to every system stands for those to one. */
		uint8_t end[8];
		memcpy(end, id, 8);
		int i = 7;
		while (i >= 0 && ++end[i] == 0)
			i--;
		if (i >= 0)
			loom_batch_delete_range(b, CF_REFRESH, id, 8, end, 8);
		else
			loom_batch_delete(b, CF_REFRESH, key, klen);
	} else {
		loom_batch_delete(b, CF_REFRESH, key, klen);
	}
	char hex[17];
	eng_mvid_hex(hex, id);
	const char *err = NULL;
	Loom__MvObject *mv = eng_mv_get(e, id, 8, &err);
	if (mv == NULL) {
		if (err) { /* unreadable is not gone: it stays queued */
			eng_run_error(e, hex, NULL, "store-error", err, NULL, true);
			return 0;
		}
		return loom_store_write_ex(e->store, b, false, error_r); /* deleted since: nothing to refresh */
	}
	char **agents, **anchors;
	size_t nl = eng_links(e, id, &agents, &anchors);
	char *rerr = eng_read_error_take(e);
	Loom__CsObject *cs = NULL;
	int rc = 0;
	if (rerr == NULL && nl > 0) {
		cs = eng_cs_get(e, agents[0], anchors[0], &err);
		if (cs == NULL && err)
			rerr = loom_strdup(err);
	}
	if (rerr) {
		eng_run_error(e, hex, NULL, "store-error", rerr, NULL, true);
		free(rerr);
	} else if (cs == NULL) {
		rc = loom_store_write_ex(e->store, b, false, error_r); /* no connector: nothing flows out */
	} else {
		/* One of its connectors stands for the object in the work context
		 * (errors name it); its pending import is left for its own sync. */
		char *old_dn = loom_strdup(cs->dn);
		char had_export = eng_export_kind(cs);
		work_t w = { .e = e, .b = b, .agent = agents[0], .cs = cs, .full = true, .was_joined = true,
			     .only_agent = agent };
		eng_explain(e, "refresh", "refresh of metaverse object %s (%s) to %s: a referenced object changed", hex, mv->object_type,
		    agent ? agent : "every system");
		outbound(&w, mv);
		eng_cs_put(e, b, w.agent, cs, old_dn);
		char pe = eng_export_kind(cs);
		if (pe != had_export)
			eng_export_mark(e, b, w.agent, cs->anchor, pe);
		rc = commit(&w, error_r);
		eng_run_count(e, "reference-refreshes", w.failed ? NULL : hex);
		work_release(&w);
		free(old_dn);
		loom__cs_object__free_unpacked(cs, NULL);
	}
	eng_strv_free(agents, nl);
	eng_strv_free(anchors, nl);
	loom__mv_object__free_unpacked(mv, NULL);
	return rc;
}

/* ---- the sync run ------------------------------------------------------------------------------ */

/* After a slice: a store write that failed fails the run, too many object
 * errors stop it. Returns true when the run was finished. */
static bool slice_stopped(engine_t *e, int rc, const char *err)
{
	if (rc < 0) {
		char *m = loom_sprintf("cannot write to the engine store: %s", err);
		eng_run_finish(e, "failed", m);
		free(m);
		return true;
	}
	if (eng_run_over_limit(e)) {
		eng_run_finish(e, "stopped-error-limit", NULL);
		return true;
	}
	return false;
}

/* Most passes over the resync and refresh queues at the end of a run; what
 * is left waits for the next sync run (a warning says so). */
#define POST_ROUNDS 10

static void post_start(engine_t *e, int phase)
{
	eng_run_t *r = e->run;
	loom_iter_destroy(&r->iter);
	r->post = phase;
	if (phase == 1) {
		r->iter = loom_iter_new(e->store, CF_RESYNC);
		loom_iter_seek(r->iter, r->prefix, r->prefix_len);
	} else {
		r->iter = loom_iter_new(e->store, CF_REFRESH);
		loom_iter_seek_first(r->iter);
	}
}

/* The end of a sync run: connectors whose references can now be resolved
 * are synchronized again, then metaverse objects whose references reach new
 * connectors are refreshed, in passes until both queues are empty. */
static int post_slice(engine_t *e)
{
	eng_run_t *r = e->run;
	const char *agent = r->agent->cfg->name;
	char *keys[SLICE];
	size_t nk = 0;
	for (; loom_iter_valid(r->iter) && nk < SLICE; loom_iter_next(r->iter)) {
		size_t klen;
		const char *k = loom_iter_key(r->iter, &klen);
		if (r->post == 1) {
			if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
				break;
			keys[nk++] = loom_strndup(k + r->prefix_len, klen - r->prefix_len);
		} else if (klen >= 8) {
			/* id (8 bytes), then the agent (none: all); kept with its length in front */
			char *x = loom_malloc(klen + 1 + sizeof(size_t));
			memcpy(x, &klen, sizeof klen);
			memcpy(x + sizeof klen, k, klen);
			x[sizeof klen + klen] = '\0';
			keys[nk++] = x;
		}
	}
	bool end = nk < SLICE;
	const char *err = NULL;
	int rc = 0;
	const char *all_id = NULL; /* the last id refreshed to every system: its other entries are done */
	for (size_t i = 0; i < nk && rc == 0 && e->run; i++) {
		if (r->post == 2) {
			size_t kl;
			memcpy(&kl, keys[i], sizeof kl);
			if (all_id && memcmp(all_id, keys[i] + sizeof kl, 8) == 0)
				continue;
			all_id = kl == 8 ? keys[i] + sizeof kl : NULL;
		}
		if (r->post == 1) {
			e->resyncing = true;
			rc = eng_sync_one(e, agent, keys[i], true, &err);
			e->resyncing = false;
			eng_run_count(e, "reference-resyncs", keys[i]);
		} else {
			size_t klen;
			memcpy(&klen, keys[i], sizeof klen);
			const char *k = keys[i] + sizeof klen;
			rc = eng_mv_refresh(e, (const uint8_t *)k, klen > 8 ? k + 8 : NULL, k, klen, &err);
		}
		r->post_done++;
	}
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	if (slice_stopped(e, rc, err))
		return 0;
	if (!end)
		return 0;
	if (loom_iter_status(r->iter, &err) < 0) {
		eng_run_finish(e, "failed", err);
		return 0;
	}
	if (r->post == 1) {
		post_start(e, 2);
		return 0;
	}
	/* A pass over both queues ended: another when it did something. */
	if (r->post_done == 0) {
		eng_run_finish(e, "success", NULL);
		return 0;
	}
	if (++r->post_rounds >= POST_ROUNDS) {
		loom_warning("run=%llu: references still changing after %u passes; the rest waits for the next sync run",
		    (unsigned long long)r->id, r->post_rounds);
		eng_run_finish(e, "success", NULL);
		return 0;
	}
	r->post_done = 0;
	post_start(e, 1);
	return 0;
}

static int on_slice(loom_loop_t *loop, void *arg)
{
	(void)loop;
	engine_t *e = arg;
	eng_run_t *r = e->run;
	if (r == NULL || r->phase != RUN_SYNC)
		return 0;
	if (r->post)
		return post_slice(e);
	const char *agent = r->agent->cfg->name;
	int done = 0;
	/* Keys are collected first: syncing writes into the families iterated. */
	char *keys[SLICE];
	size_t nk = 0;
	for (; loom_iter_valid(r->iter) && nk < SLICE; loom_iter_next(r->iter)) {
		size_t klen;
		const char *k = loom_iter_key(r->iter, &klen);
		if (klen < r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0)
			break;
		keys[nk++] = loom_strndup(k + r->prefix_len, klen - r->prefix_len);
	}
	bool end = nk < SLICE;
	const char *err = NULL;
	int rc = 0;
	for (size_t i = 0; i < nk; i++) {
		if (rc == 0 && e->run && (rc = eng_sync_one(e, agent, keys[i], !r->delta, &err)) < 0)
			break;
		free(keys[i]);
		keys[i] = NULL;
		done++;
	}
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	if (slice_stopped(e, rc, err))
		return 0;
	if (end) {
		if (loom_iter_status(r->iter, &err) < 0)
			eng_run_finish(e, "failed", err);
		else
			post_start(e, 1);
		return 0;
	}
	if (r->objects % 10000 < (uint64_t)done) {
		loom_batch_clear(e->batch);
		eng_run_save(e, e->batch);
		if (loom_store_write_ex(e->store, e->batch, false, &err) < 0) /* a restart redoes more */
			loom_warning("cannot save sync progress run=%llu: %s", (unsigned long long)r->id, err);
	}
	return 0;
}

int eng_sync_begin(engine_t *e, const char **error_r)
{
	(void)error_r;
	eng_run_t *r = e->run;
	r->phase = RUN_SYNC;
	eng_groups_forget(e); /* groups may have changed since the last run */
	loom_buf_t p = LOOM_BUF_INIT;
	loom_buf_adds(&p, r->agent->cfg->name);
	loom_buf_addc(&p, '\0');
	r->prefix_len = p.len;
	r->prefix = loom_buf_steal(&p);
	r->iter = loom_iter_new(e->store, r->delta ? CF_DELTA : CF_CS);
	loom_iter_seek(r->iter, r->prefix, r->prefix_len);
	r->timer = loom_loop_add_timer(loom_daemon_loop(e->daemon), 0, 0, on_slice, e);
	return 0;
}

/* ---- preview ---------------------------------------------------------------------------------- */

void eng_preview(engine_t *e, Loom__Envelope *env, const ProtobufCMessage *m)
{
	const Loom__PreviewRequest *rq = (const Loom__PreviewRequest *)m;
	const char *err = NULL;
	char *text = NULL;
	if (e->run) {
		text = loom_sprintf("the engine is busy with run %llu (%s %s); preview when it ends",
		    (unsigned long long)e->run->id, e->run->agent->cfg->name, e->run->profile);
	} else if (eng_agent_find(e, rq->agent) == NULL) {
		text = loom_sprintf("no agent '%s' is configured", rq->agent);
	} else {
		Loom__CsObject *cs = eng_cs_get(e, rq->agent, rq->anchor, &err);
		if (cs == NULL)
			text = err ? loom_sprintf("cannot read '%s': %s", rq->anchor, err)
				   : loom_sprintf("no object with anchor '%s' in agent '%s'", rq->anchor, rq->agent);
		else
			loom__cs_object__free_unpacked(cs, NULL);
	}
	if (text) {
		if (loom_bus_reply_error(loom_daemon_bus(e->daemon), env, LOOM__ERROR__CODE__BAD_REQUEST, false, text, &err) < 0)
			loom_warning("cannot reply to from=%s: %s", env->from, err);
		free(text);
		return;
	}
	loom_buf_t trace = LOOM_BUF_INIT;
	e->trace = &trace;
	eng_groups_forget(e);
	e->trace_failed = false;
	e->dry_run = !rq->commit;
	int rc = eng_sync_one(e, rq->agent, rq->anchor, !rq->delta, &err);
	e->trace = NULL;
	e->dry_run = false;
	Loom__PreviewReply rep = LOOM__PREVIEW_REPLY__INIT;
	rep.committed = rq->commit && rc == 0 && !e->trace_failed;
	rep.failed = rc < 0 || e->trace_failed;
	if (rc < 0)
		loom_buf_printf(&trace, "store error: %s\n", err);
	if (!rq->commit)
		loom_buf_adds(&trace, "nothing was written (preview; --commit applies it)\n");
	else if (rep.committed)
		loom_buf_adds(&trace, "committed\n");
	size_t n = 0;
	for (size_t i = 0; i < trace.len; i++)
		n += trace.data[i] == '\n';
	rep.steps = loom_calloc(n ? n : 1, sizeof *rep.steps);
	char *save = NULL;
	for (char *line = trace.len ? strtok_r(trace.data, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
		rep.steps[rep.n_steps++] = line;
	rep.decisions = e->pv_steps;
	rep.n_decisions = e->pv_nsteps;
	rep.exports = e->pv_exports;
	rep.n_exports = e->pv_nexports;
	rep.agent = rq->agent;
	rep.anchor = rq->anchor;
	if (loom_bus_reply(loom_daemon_bus(e->daemon), env, &rep.base, &err) < 0)
		loom_warning("cannot reply to from=%s: %s", env->from, err);
	free(rep.steps);
	loom_buf_release(&trace);
	for (size_t i = 0; i < e->pv_nsteps; i++)
		loom__preview_step__free_unpacked(e->pv_steps[i], NULL);
	for (size_t i = 0; i < e->pv_nexports; i++)
		loom__preview_export__free_unpacked(e->pv_exports[i], NULL);
	free(e->pv_steps);
	free(e->pv_exports);
	e->pv_steps = NULL;
	e->pv_exports = NULL;
	e->pv_nsteps = e->pv_nexports = 0;
}
