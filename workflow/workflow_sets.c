/* workflow_sets.c - computed membership of Sets, Groups and MPR filters,
 * kept incrementally as requests change resources (docs/policy.md, "Sets").
 *
 * What is kept. Every Set and Group resource is a tracked set: its members
 * (ComputedMember) are ExplicitMember ∪ what its Filter selects. Every
 * distinct filter of an enabled request MPR (requesters, target_before,
 * target_after) is a tracked set too, without a resource, so authorizing a
 * request looks membership up instead of evaluating filters. Members live
 * in memory (a hash set of rids per set); a Set's or Group's members are
 * also rows of the member family (set rid, member rid -> ""), written in the
 * same batch as the request that changes them, so a crash never leaves
 * them out of step with the resources. MPR filter sets are computed at
 * start-up (the configuration may have changed between runs).
 *
 * A request's life, as the pipeline drives it:
 *
 *   wf_sets_plan      notes the requester's memberships (for requester
 *                     sets) and the target's (sets before), then applies
 *                     the change to the members in memory, logging every
 *                     step in an undo log:
 *                       - the target is a Set/Group: created -> a new set,
 *                         computed in full; Filter or ExplicitMember
 *                         changed -> redefined, computed in full; deleted ->
 *                         dropped;
 *                       - the target is deleted -> it leaves every set;
 *                       - each set whose filter depends on one of the
 *                         changed attributes of the target's type
 *                         (loom_xpath_depends_on; "ObjectType" for a create
 *                         or delete) is re-evaluated: a filter that reads
 *                         only the resource's own attributes re-tests the
 *                         target alone (loom_xpath_matches); one that
 *                         follows references (a location step, or a
 *                         comparison with a location path) is evaluated in
 *                         full and compared with its members; a set no
 *                         changed attribute can affect costs nothing;
 *                       - cascade: a filter that reads ComputedMember of
 *                         a set whose members changed is evaluated again,
 *                         round after round until nothing changes (at most
 *                         one round per set: more means filters feeding
 *                         each other, and the request fails).
 *                     The provider sees the target's after-state (the
 *                     overlay) during all of this.
 *   (authorization)   wf_sets_mpr_requester/_before/_after answer from the
 *                     notes and the planned members.
 *   wf_sets_commit_batch  queues the member rows of the logged changes in
 *                     the commit batch and records sets before/after,
 *                     transitions and matching set-transition MPRs.
 *   wf_sets_done      the batch was written: forget the undo log.
 *   wf_sets_abort     denied, failed or not written: undo the log.
 */
#include "workflow.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_log.h"
#include "loom_map.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- a set of rids (open addressing, linear probing; 0 is never a rid) ---- */

typedef struct rset {
	uint64_t *v;               /* slots, 0 empty */
	size_t cap;                /* slots (a power of two, or 0) */
	size_t n;                  /* rids held */
} rset_t;

static size_t rs_slot(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

static bool rs_has(const rset_t *s, uint64_t k)
{
	if (s->n == 0)
		return false;
	for (size_t i = rs_slot(k, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == k)
			return true;
		if (s->v[i] == 0)
			return false;
	}
}

static bool rs_add(rset_t *s, uint64_t k);

static void rs_grow(rset_t *s)
{
	rset_t g = { .cap = s->cap ? 2 * s->cap : 16 };
	g.v = loom_calloc(g.cap, sizeof *g.v);
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i])
			rs_add(&g, s->v[i]);
	free(s->v);
	*s = g;
}

static bool rs_add(rset_t *s, uint64_t k)
{
	if (4 * (s->n + 1) > 3 * s->cap)
		rs_grow(s);
	size_t i;
	for (i = rs_slot(k, s->cap); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == k)
			return false;
	s->v[i] = k;
	s->n++;
	return true;
}

static bool rs_del(rset_t *s, uint64_t k)
{
	if (s->n == 0)
		return false;
	size_t m = s->cap - 1, i;
	for (i = rs_slot(k, s->cap); s->v[i] != k; i = (i + 1) & m)
		if (s->v[i] == 0)
			return false;
	/* backward-shift deletion: no tombstones */
	for (size_t j = (i + 1) & m; s->v[j]; j = (j + 1) & m) {
		size_t h = rs_slot(s->v[j], s->cap);
		if (((j - h) & m) >= ((j - i) & m)) {
			s->v[i] = s->v[j];
			i = j;
		}
	}
	s->v[i] = 0;
	s->n--;
	return true;
}

static void rs_release(rset_t *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* ---- tracked sets ---- */

typedef struct tset {
	loom_xpath_rid_t rid;      /* the Set or Group resource; 0: an MPR filter */
	char *id;                  /* its ObjectID ("" for an MPR filter) */
	char *name;                /* its DisplayName, or the MPR filter's text */
	char *type;                /* "Set" or "Group"; NULL for an MPR filter */
	loom_xpath_t *x;           /* the filter, or NULL: explicit members only */
	bool traverses;            /* the filter follows references: a change elsewhere may move any resource */
	rset_t expl;               /* ExplicitMember, as rids */
	rset_t members;            /* ComputedMember */
	rset_t touched;            /* rids whose membership the current plan changed (first change logged) */
	uint64_t stamp;            /* tick of its last member change */
	uint64_t evaluated;        /* tick when it was last evaluated in full */
	uint64_t full_plan;        /* number of the plan that last evaluated it in full */
	rset_t reads;              /* Sets and Groups whose ComputedMember its last full evaluation read */
	bool reads_any;            /* it looked members up by value (find_eq): may read any set */
	bool reads_known;          /* reads and reads_any are from a full evaluation */
	uint64_t seen_plan;        /* number of the plan that last looked at it for the changed attributes */
} tset_t;

/* The sets whose filter names one attribute. */
typedef struct tlist {
	struct tset **v;           /* the sets */
	size_t n, cap;             /* how many, allocated */
} tlist_t;

enum { U_ADD, U_DEL, U_SET_NEW, U_SET_GONE, U_SET_DEF };

typedef struct undo {
	int kind;                  /* U_* */
	tset_t *t;                 /* the set */
	uint64_t rid;              /* U_ADD, U_DEL: the member */
	bool first;                /* U_ADD, U_DEL: the plan's first change of (t, rid) */
	loom_xpath_t *old_x;       /* U_SET_DEF: the definition before */
	rset_t old_expl;           /* U_SET_DEF */
	char *old_name;            /* U_SET_DEF */
	bool old_traverses;        /* U_SET_DEF */
	bool name_only;            /* U_SET_DEF: only the DisplayName changed (old_x, old_expl unused) */
} undo_t;

typedef struct mpr_sets {
	int req, before, after;    /* indexes in mpr_sets of its filters, -1: none */
	uint64_t gen;              /* the sets' generation the three below were looked up in (0: never) */
	struct tset *req_set;      /* the Set its requester_set names, or NULL */
	struct tset *before_set;   /* the Set its target_before_set names, or NULL */
	struct tset *after_set;    /* the Set its target_after_set names, or NULL */
} mpr_sets_t;

struct wf_sets {
	tset_t **res;              /* Sets and Groups */
	size_t nres;               /* how many */
	tset_t **mpr;              /* distinct MPR filters */
	size_t nmpr;               /* how many */
	mpr_sets_t *by_mpr;        /* per policy MPR */
	undo_t *log;               /* the current plan's undo log */
	size_t nlog, caplog;       /* entries, allocated */
	uint64_t tick;             /* counts member changes */
	uint64_t gen;              /* counts changes to which Sets exist and their names (named look-ups) */
	loom_map_t *by_attr;       /* attribute name -> tlist_t: the sets whose filter depends on it */
	uint64_t by_attr_gen;      /* gen + 1 when by_attr was built (0: never) */
	uint64_t plan_tick;        /* tick when the current plan started */
	uint64_t plan_no;          /* number of the current plan */
	bool *req_in;              /* per policy MPR: the requester is in its requester set */
	bool *before_in;           /* per policy MPR: the target was in its target_before set */
	loom_xpath_rid_t target;   /* the current plan's target */
	bool target_gone;          /* it is being deleted */
	Loom__SetRef **before_refs;/* the target's Sets and Groups before the plan */
	size_t nbefore;            /* how many */
	loom_xpath_result_t r;     /* evaluation scratch */
	Loom__Attr attr;           /* the last ComputedMember handed to the evaluator */
	tset_t *reading;           /* the set being evaluated (its reads are recorded), or NULL */
	size_t full, tests;        /* counters: full evaluations, one-resource tests */
};

static void by_attr_free(struct wf_sets *s);

static void tset_free(tset_t *t)
{
	if (t == NULL)
		return;
	free(t->id);
	free(t->name);
	free(t->type);
	loom_xpath_destroy(&t->x);
	rs_release(&t->expl);
	rs_release(&t->members);
	rs_release(&t->touched);
	rs_release(&t->reads);
	free(t);
}

static bool is_set_type(const char *type)
{
	return type && (strcmp(type, "Set") == 0 || strcmp(type, "Group") == 0);
}

static tset_t *res_find(struct wf_sets *s, loom_xpath_rid_t rid)
{
	for (size_t i = 0; i < s->nres; i++)
		if (s->res[i]->rid == rid)
			return s->res[i];
	return NULL;
}

static void log_push(struct wf_sets *s, undo_t u)
{
	if (s->nlog == s->caplog) {
		s->caplog = s->caplog ? 2 * s->caplog : 64;
		s->log = loom_realloc(s->log, s->caplog * sizeof *s->log);
	}
	s->log[s->nlog++] = u;
}

static void member_set(struct wf_sets *s, tset_t *t, uint64_t rid, bool in)
{
	if (in ? !rs_add(&t->members, rid) : !rs_del(&t->members, rid))
		return;
	bool first = rs_add(&t->touched, rid);
	log_push(s, (undo_t){ .kind = in ? U_ADD : U_DEL, .t = t, .rid = rid, .first = first });
	t->stamp = ++s->tick;
}

static char *set_label(const tset_t *t)
{
	if (t->rid)
		return loom_sprintf("%s '%s' (%s)", t->type, t->name, t->id);
	return loom_sprintf("MPR filter '%s'", t->name);
}

static char *eval_error(const tset_t *t, loom_xpath_error_t *xe)
{
	char *l = set_label(t);
	char *r = loom_sprintf("%s: filter: %s", l, xe->text ? xe->text : "evaluation failed");
	free(l);
	loom_xpath_error_release(xe);
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Evaluates t in full and brings its members in line. */
static int full(wf_t *w, tset_t *t, char **ret_reason)
{
	struct wf_sets *s = w->sets;
	s->full++;
	t->evaluated = s->tick;
	t->full_plan = s->plan_no;
	size_t n = 0;
	uint64_t *want = NULL;
	if (t->x) {
		loom_xpath_error_t xe = { 0 };
		if (t->reads.n)
			memset(t->reads.v, 0, t->reads.cap * sizeof *t->reads.v);
		t->reads.n = 0;
		t->reads_any = false;
		s->reading = t;
		int rc = loom_xpath_eval(t->x, &w->xp, NULL, &s->r, &xe);
		s->reading = NULL;
		t->reads_known = rc == 0;
		if (rc < 0) {
			*ret_reason = eval_error(t, &xe);
			return -1;
		}
		n = s->r.n;
	}
	want = loom_malloc((n + t->expl.n + 1) * sizeof *want);
	if (n)
		memcpy(want, s->r.rids, n * sizeof *want);
	for (size_t i = 0; i < t->expl.cap; i++)
		if (t->expl.v[i] && w->xp.object_type(w, t->expl.v[i]) != NULL)
			want[n++] = t->expl.v[i];
	qsort(want, n, sizeof *want, cmp_u64);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || want[k - 1] != want[i])
			want[k++] = want[i];
	n = k;
	/* leavers first (collected: deleting moves slots), then joiners */
	uint64_t *gone = NULL;
	size_t ngone = 0, cap = 0;
	for (size_t i = 0; i < t->members.cap; i++) {
		uint64_t m = t->members.v[i];
		if (m && bsearch(&m, want, n, sizeof *want, cmp_u64) == NULL) {
			if (ngone == cap)
				gone = loom_realloc(gone, (cap = cap ? 2 * cap : 16) * sizeof *gone);
			gone[ngone++] = m;
		}
	}
	for (size_t i = 0; i < ngone; i++)
		member_set(s, t, gone[i], false);
	for (size_t i = 0; i < n; i++)
		member_set(s, t, want[i], true);
	free(gone);
	free(want);
	return 0;
}

/* Re-tests one resource against t. */
static int test_one(wf_t *w, tset_t *t, loom_xpath_rid_t rid, char **ret_reason)
{
	struct wf_sets *s = w->sets;
	s->tests++;
	bool m = false;
	if (t->x) {
		loom_xpath_error_t xe = { 0 };
		s->reading = t;
		int rc = loom_xpath_matches(t->x, &w->xp, NULL, rid, &s->r, &m, &xe);
		s->reading = NULL;
		if (rc < 0) {
			*ret_reason = eval_error(t, &xe);
			return -1;
		}
	}
	member_set(s, t, rid, m || rs_has(&t->expl, rid));
	return 0;
}

/* ---- definitions from resources ---- */

static const char *res_str(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = wf_res_attr(r, name);
	if (a == NULL || a->n_values == 0)
		return NULL;
	const Loom__Value *v = a->values[0];
	return v->v_case == LOOM__VALUE__V_STR ? v->str : v->v_case == LOOM__VALUE__V_REF ? v->ref : NULL;
}

/* Compiles r's Filter and resolves its ExplicitMember. A filter that does
 * not compile (a store from before filters were checked) is left out, with
 * *ret_warning saying so. */
static void definition(wf_t *w, const Loom__Resource *r, loom_xpath_t **ret_x, rset_t *ret_expl, char **ret_warning)
{
	*ret_x = NULL;
	memset(ret_expl, 0, sizeof *ret_expl);
	const char *f = res_str(r, "Filter");
	if (f && f[0]) {
		loom_xpath_error_t xe = { 0 };
		if (loom_xpath_compile(f, NULL, ret_x, &xe) < 0) {
			if (ret_warning)
				*ret_warning = loom_sprintf("%s '%s': its Filter is ignored: %s", r->object_type, r->object_id, xe.text);
			loom_xpath_error_release(&xe);
		}
	}
	const Loom__Attr *a = wf_res_attr(r, "ExplicitMember");
	for (size_t i = 0; a && i < a->n_values; i++) {
		const Loom__Value *v = a->values[i];
		const char *id = v->v_case == LOOM__VALUE__V_REF ? v->ref : v->v_case == LOOM__VALUE__V_STR ? v->str : NULL;
		loom_xpath_rid_t rid;
		if (id && w->xp.resolve(w, id, strlen(id), &rid) == 0)
			rs_add(ret_expl, rid);
	}
}

static bool traverses(const loom_xpath_t *x)
{
	const loom_xpath_deps_t *d = x ? loom_xpath_deps(x) : NULL;
	return d && (d->has_step || d->has_path_compare);
}

static tset_t *tset_from(wf_t *w, const Loom__Resource *r, char **ret_warning)
{
	tset_t *t = loom_calloc(1, sizeof *t);
	t->rid = r->rid;
	t->id = loom_strdup(r->object_id);
	const char *dn = res_str(r, "DisplayName");
	t->name = loom_strdup(dn ? dn : "");
	t->type = loom_strdup(r->object_type);
	definition(w, r, &t->x, &t->expl, ret_warning);
	t->traverses = traverses(t->x);
	return t;
}

/* ---- validation ---- */

char *wf_sets_validate_changes(const Loom__Request *rq)
{
	for (size_t i = 0; i < rq->n_changes; i++)
		if (strcmp(rq->changes[i]->attr, "ComputedMember") == 0)
			return loom_strdup("attribute 'ComputedMember' is kept by the service (ExplicitMember and the members "
			    "the Filter selects): a request cannot write it (computed attribute rule)");
	return NULL;
}

char *wf_sets_validate_filter(wf_t *w, const Loom__Resource *before, const Loom__Resource *after)
{
	if (after == NULL || !is_set_type(after->object_type))
		return NULL;
	const char *f = res_str(after, "Filter");
	const char *was = before ? res_str(before, "Filter") : NULL;
	if (f == NULL || (was && strcmp(was, f) == 0))
		return NULL;
	loom_xpath_t *x = NULL;
	loom_xpath_error_t xe = { 0 };
	char *reason = NULL;
	if (loom_xpath_compile(f, NULL, &x, &xe) < 0 || loom_xpath_check(x, &w->xp, &xe) < 0)
		reason = loom_sprintf("attribute 'Filter': %s (filter rule: '%s')", xe.text, f);
	loom_xpath_error_release(&xe);
	loom_xpath_destroy(&x);
	return reason;
}

/* ---- opening ---- */

static int mpr_set_for(struct wf_sets *s, const loom_xpath_t *x)
{
	if (x == NULL)
		return -1;
	const char *text = loom_xpath_text(x);
	for (size_t i = 0; i < s->nmpr; i++)
		if (strcmp(s->mpr[i]->name, text) == 0)
			return (int)i;
	tset_t *t = loom_calloc(1, sizeof *t);
	t->id = loom_strdup("");
	t->name = loom_strdup(text);
	loom_xpath_error_t xe = { 0 };
	if (loom_xpath_compile(text, NULL, &t->x, &xe) < 0) /* it compiled once: cannot fail */
		loom_xpath_error_release(&xe);
	t->traverses = traverses(t->x);
	s->mpr = loom_realloc(s->mpr, (s->nmpr + 1) * sizeof *s->mpr);
	s->mpr[s->nmpr] = t;
	return (int)s->nmpr++;
}

typedef struct collect {
	loom_xpath_rid_t *v;       /* rids found */
	size_t n, cap;             /* how many, allocated */
} collect_t;

static int collect(void *varg, loom_xpath_rid_t rid)
{
	collect_t *c = varg;
	if (c->n == c->cap)
		c->v = loom_realloc(c->v, (c->cap = c->cap ? 2 * c->cap : 64) * sizeof *c->v);
	c->v[c->n++] = rid;
	return 0;
}

/* Evaluates every set of v in full, round after round until none changes. */
static int settle(wf_t *w, tset_t **v, size_t n, char **ret_error)
{
	for (size_t round = 0; round <= n + 1; round++) {
		uint64_t t0 = w->sets->tick;
		for (size_t i = 0; i < n; i++)
			if (full(w, v[i], ret_error) < 0)
				return -1;
		if (w->sets->tick == t0)
			return 0;
		/* a set whose filter reads no members settles in one round */
		bool reads = false;
		for (size_t i = 0; i < n && !reads; i++)
			reads = v[i]->x && (loom_xpath_depends_on(v[i]->x, "Set", "ComputedMember") ||
			    loom_xpath_depends_on(v[i]->x, "Group", "ComputedMember"));
		if (!reads)
			return 0;
	}
	*ret_error = loom_strdup("the members of the sets do not settle: their filters depend on each other's members");
	return -1;
}

static void forget_log(struct wf_sets *s)
{
	for (size_t i = 0; i < s->nlog; i++) {
		undo_t *u = &s->log[i];
		if (u->kind == U_ADD || u->kind == U_DEL)
			rs_del(&u->t->touched, u->rid);
	}
}

int wf_sets_open(wf_t *w, char **ret_error)
{
	struct wf_sets *s = loom_calloc(1, sizeof *s);
	w->sets = s;
	loom_xpath_result_init(&s->r);
	/* MPR filters */
	s->by_mpr = loom_calloc(w->policy.nmprs + 1, sizeof *s->by_mpr);
	s->req_in = loom_calloc(w->policy.nmprs + 1, sizeof *s->req_in);
	s->before_in = loom_calloc(w->policy.nmprs + 1, sizeof *s->before_in);
	for (size_t m = 0; m < w->policy.nmprs; m++) {
		const wf_mpr_t *p = &w->policy.mprs[m];
		bool on = p->ops != 0;
		s->by_mpr[m].req = on ? mpr_set_for(s, p->requesters) : -1;
		s->by_mpr[m].before = on ? mpr_set_for(s, p->before) : -1;
		s->by_mpr[m].after = on ? mpr_set_for(s, p->after) : -1;
	}
	/* Sets and Groups */
	collect_t c = { 0 };
	int rc = 0;
	char *err = NULL;
	for (int k = 0; k < 2 && rc == 0; k++)
		rc = w->xp.scan(w, k == 0 ? "Set" : "Group", collect, &c, &err);
	for (size_t i = 0; i < c.n && rc == 0; i++) {
		Loom__Resource *r;
		const char *e;
		int g = wf_res_get(w, c.v[i], &r, &e);
		if (g < 0) {
			err = loom_sprintf("cannot read set %llu: %s", (unsigned long long)c.v[i], e);
			rc = -1;
			break;
		}
		if (g == 0)
			continue;
		char *warning = NULL;
		tset_t *t = tset_from(w, r, &warning);
		if (warning) {
			loom_warning("%s", warning);
			free(warning);
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
		s->res = loom_realloc(s->res, (s->nres + 1) * sizeof *s->res);
		s->res[s->nres++] = t;
	}
	free(c.v);
	if (rc < 0) {
		*ret_error = err;
		return -1;
	}
	/* stored members */
	void *v;
	size_t len;
	const char *e;
	int have = loom_store_get(w->store, w->cf_meta, "sets_version", 12, &v, &len, &e);
	if (have < 0) {
		*ret_error = loom_sprintf("cannot read the store: %s", e);
		return -1;
	}
	if (have == 1)
		free(v);
	loom_batch_t *b = loom_batch_new(w->store);
	loom_iter_t *it = loom_iter_new(w->store, w->cf_member);
	tset_t *cur = NULL;
	size_t rows = 0;
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		const unsigned char *key = loom_iter_key(it, &len);
		if (len != 16)
			continue;
		loom_xpath_rid_t srid = loom_store_get_u64be(key), mrid = loom_store_get_u64be(key + 8);
		if (cur == NULL || cur->rid != srid)
			cur = res_find(s, srid);
		if (cur == NULL) {
			loom_batch_delete(b, w->cf_member, key, 16); /* cannot happen: a set's rows go with it */
			continue;
		}
		rs_add(&cur->members, mrid);
		rows++;
	}
	rc = loom_iter_status(it, &e);
	loom_iter_destroy(&it);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot read the set members: %s", e);
		loom_batch_destroy(&b);
		return -1;
	}
	if (have == 0) {
		/* a store from before members were kept: compute them once */
		if (settle(w, s->res, s->nres, ret_error) < 0) {
			loom_batch_destroy(&b);
			return -1;
		}
		for (size_t i = 0; i < s->nlog; i++) {
			unsigned char k[16];
			loom_store_put_u64be(k, s->log[i].t->rid);
			loom_store_put_u64be(k + 8, s->log[i].rid);
			if (s->log[i].kind == U_ADD)
				loom_batch_put(b, w->cf_member, k, 16, "", 0);
			else
				loom_batch_delete(b, w->cf_member, k, 16);
		}
		unsigned char one[8];
		loom_store_put_u64be(one, 1);
		loom_batch_put(b, w->cf_meta, "sets_version", 12, one, 8);
	}
	forget_log(s);
	s->nlog = 0;
	if (loom_batch_count(b) && loom_store_write(w->store, b, &e) < 0) {
		*ret_error = loom_sprintf("cannot store the set members: %s", e);
		loom_batch_destroy(&b);
		return -1;
	}
	loom_batch_destroy(&b);
	/* MPR filter sets: computed now */
	if (settle(w, s->mpr, s->nmpr, ret_error) < 0)
		return -1;
	forget_log(s);
	s->nlog = 0;
	loom_info("sets ready sets=%zu members=%zu (%s) mpr_filters=%zu full_evaluations=%zu", s->nres, rows,
	    have ? "stored" : "computed", s->nmpr, s->full);
	return 0;
}

void wf_sets_close(wf_t *w)
{
	struct wf_sets *s = w->sets;
	if (s == NULL)
		return;
	wf_sets_abort(w);
	for (size_t i = 0; i < s->nres; i++)
		tset_free(s->res[i]);
	for (size_t i = 0; i < s->nmpr; i++)
		tset_free(s->mpr[i]);
	free(s->res);
	free(s->mpr);
	free(s->by_mpr);
	free(s->req_in);
	free(s->before_in);
	free(s->log);
	by_attr_free(s);
	loom_xpath_result_release(&s->r);
	for (size_t i = 0; i < s->attr.n_values; i++)
		protobuf_c_message_free_unpacked(&s->attr.values[i]->base, NULL);
	free(s->attr.values);
	free(s);
	w->sets = NULL;
}

/* ---- planning ---- */

static bool same_values(const Loom__Attr *a, const Loom__Attr *b)
{
	size_t na = a ? a->n_values : 0, nb = b ? b->n_values : 0;
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t j = 0; j < nb && !found; j++)
			found = loom_value_eq(a->values[i], b->values[j]);
		if (!found)
			return false;
	}
	return true;
}

/* The names of the attributes whose values differ between before and
 * after (borrowed from them), "ObjectType" and "ObjectID" when one is NULL. */
static size_t changed_attrs(const Loom__Resource *before, const Loom__Resource *after, const char ***ret)
{
	size_t nb = before ? before->n_attrs : 0, na = after ? after->n_attrs : 0, n = 0;
	const char **v = loom_calloc(na + nb + 2, sizeof *v);
	if (before == NULL || after == NULL) {
		v[n++] = "ObjectType";
		v[n++] = "ObjectID";
	}
	for (size_t i = 0; i < na; i++) {
		const Loom__Attr *a = after->attrs[i];
		if (!same_values(a, before ? wf_res_attr(before, a->name) : NULL))
			v[n++] = a->name;
	}
	for (size_t i = 0; i < nb; i++) {
		const Loom__Attr *a = before->attrs[i];
		if ((after == NULL || wf_res_attr(after, a->name) == NULL) && a->n_values)
			v[n++] = a->name;
	}
	*ret = v;
	return n;
}

static Loom__SetRef *set_ref(const tset_t *t)
{
	Loom__SetRef *r = loom_malloc(sizeof *r);
	loom__set_ref__init(r);
	r->id = loom_strdup(t->id);
	r->name = loom_strdup(t->name);
	r->type = loom_strdup(t->type);
	return r;
}

static void free_before_refs(struct wf_sets *s)
{
	for (size_t i = 0; i < s->nbefore; i++)
		protobuf_c_message_free_unpacked(&s->before_refs[i]->base, NULL);
	free(s->before_refs);
	s->before_refs = NULL;
	s->nbefore = 0;
}

static bool dep_hit(const tset_t *t, const char *type, const char **c, size_t nc)
{
	for (size_t i = 0; i < nc; i++)
		if (loom_xpath_depends_on(t->x, type, c[i]))
			return true;
	return false;
}

static void by_attr_free(struct wf_sets *s)
{
	if (s->by_attr == NULL)
		return;
	size_t pos = 0;
	const void *k;
	size_t kl;
	void *v;
	while (loom_map_next(s->by_attr, &pos, &k, &kl, &v)) {
		tlist_t *l = v;
		free(l->v);
		free(l);
	}
	loom_map_destroy(&s->by_attr);
}

static void by_attr_add(struct wf_sets *s, tset_t *t)
{
	const loom_xpath_deps_t *d = loom_xpath_deps(t->x);
	for (size_t i = 0; i < d->n; i++) {
		tlist_t *l = loom_map_gets(s->by_attr, d->v[i].attr);
		if (l == NULL) {
			l = loom_calloc(1, sizeof *l);
			loom_map_puts(s->by_attr, d->v[i].attr, l);
		}
		if (l->n && l->v[l->n - 1] == t)
			continue;
		if (l->n == l->cap)
			l->v = loom_realloc(l->v, (l->cap = l->cap ? 2 * l->cap : 8) * sizeof *l->v);
		l->v[l->n++] = t;
	}
}

/* The index from attribute names to the sets whose filters name them,
 * built again when the Sets changed. */
static loom_map_t *by_attr(struct wf_sets *s)
{
	if (s->by_attr_gen == s->gen + 1)
		return s->by_attr;
	by_attr_free(s);
	s->by_attr = loom_map_new();
	for (size_t i = 0; i < s->nres + s->nmpr; i++) {
		tset_t *t = i < s->nres ? s->res[i] : s->mpr[i - s->nres];
		if (t->x)
			by_attr_add(s, t);
	}
	s->by_attr_gen = s->gen + 1;
	return s->by_attr;
}

/* Re-evaluates what a change of the target's attributes c can affect: the
 * target alone when no path inside the filter depends on c, else in full. */
static int affected(wf_t *w, tset_t *t, const char *type, const char **c, size_t nc, char **ret_reason)
{
	struct wf_sets *s = w->sets;
	if (t->x == NULL || t->full_plan == s->plan_no || !dep_hit(t, type, c, nc))
		return 0;
	if (t->traverses) {
		/* a path inside the filter may select other resources now: in full */
		for (size_t i = 0; i < nc; i++)
			if (loom_xpath_depends_inner(t->x, type, c[i]))
				return full(w, t, ret_reason);
	}
	if (s->target_gone)
		return 0; /* it left every set already */
	return test_one(w, t, s->target, ret_reason);
}

/* Whether t's filter reads the members of a set changed in this plan
 * since t was last evaluated: the sets its last full evaluation read, or
 * any set of a type whose ComputedMember it depends on when that is not
 * known (not evaluated since start-up, or members looked up by value). */
static bool stale(tset_t *const *changed, size_t nchanged, const tset_t *t)
{
	if (t->x == NULL)
		return false;
	for (size_t i = 0; i < nchanged; i++) {
		const tset_t *o = changed[i];
		if (o->stamp <= t->evaluated)
			continue;
		if (t->reads_known && !t->reads_any ? rs_has(&t->reads, o->rid)
		                                    : loom_xpath_depends_on(t->x, o->type, "ComputedMember"))
			return true;
	}
	return false;
}

/* The Set or Group an MPR names: by ObjectID, else by DisplayName. */
static tset_t *named(struct wf_sets *s, const char *name)
{
	for (size_t i = 0; i < s->nres; i++)
		if (strcasecmp(s->res[i]->id, name) == 0)
			return s->res[i];
	for (size_t i = 0; i < s->nres; i++)
		if (strcmp(s->res[i]->name, name) == 0)
			return s->res[i];
	return NULL;
}

int wf_sets_plan(wf_t *w, Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after,
    char **ret_reason)
{
	struct wf_sets *s = w->sets;
	const Loom__Resource *r = after ? after : before;
	s->plan_tick = s->tick;
	s->plan_no++;
	s->target = r->rid;
	s->target_gone = after == NULL;
	/* what holds before the request */
	loom_xpath_rid_t req_rid = 0;
	bool req_res = w->xp.resolve(w, rq->requester, strlen(rq->requester), &req_rid) == 0;
	for (size_t m = 0; m < w->policy.nmprs; m++) {
		mpr_sets_t *ms = &s->by_mpr[m];
		const wf_mpr_t *p = &w->policy.mprs[m];
		if (ms->gen != s->gen + 1) {
			/* the named Sets, looked up again after Sets came, went or were renamed */
			ms->req_set = p->requester_set ? named(s, p->requester_set) : NULL;
			ms->before_set = p->before_set ? named(s, p->before_set) : NULL;
			ms->after_set = p->after_set ? named(s, p->after_set) : NULL;
			ms->gen = s->gen + 1;
		}
		bool in = false;
		if (ms->req >= 0)
			in = req_res && rs_has(&s->mpr[ms->req]->members, req_rid);
		else if (p->requester_set)
			in = req_res && ms->req_set && rs_has(&ms->req_set->members, req_rid);
		s->req_in[m] = in;
		in = before != NULL;
		if (in && ms->before >= 0)
			in = rs_has(&s->mpr[ms->before]->members, before->rid);
		if (in && p->before_set)
			in = ms->before_set && rs_has(&ms->before_set->members, before->rid);
		s->before_in[m] = in;
	}
	free_before_refs(s);
	if (before)
		for (size_t i = 0; i < s->nres; i++)
			if (rs_has(&s->res[i]->members, before->rid)) {
				s->before_refs = loom_realloc(s->before_refs, (s->nbefore + 1) * sizeof *s->before_refs);
				s->before_refs[s->nbefore++] = set_ref(s->res[i]);
			}
	const char **c;
	size_t nc = changed_attrs(before, after, &c);
	if (nc == 0) {
		free(c);
		return 0;
	}
	w->overlay = (wf_overlay_t){ .active = true, .gone = after == NULL, .rid = r->rid, .res = r };
	int rc = 0;
	tset_t *redo = NULL; /* a Set or Group the request defines: evaluated in full */
	if (is_set_type(r->object_type)) {
		tset_t *t = res_find(s, r->rid);
		if (after == NULL) {
			if (t) {
				for (size_t i = 0; i < s->nres; i++)
					if (s->res[i] == t)
						s->res[i] = s->res[--s->nres];
				log_push(s, (undo_t){ .kind = U_SET_GONE, .t = t });
				s->gen++;
			}
		} else if (t == NULL) {
			t = tset_from(w, after, NULL);
			s->res = loom_realloc(s->res, (s->nres + 1) * sizeof *s->res);
			s->res[s->nres++] = t;
			log_push(s, (undo_t){ .kind = U_SET_NEW, .t = t });
			s->gen++;
			redo = t;
		} else {
			bool def = false, named = false;
			for (size_t i = 0; i < nc; i++) {
				def = def || strcmp(c[i], "Filter") == 0 || strcmp(c[i], "ExplicitMember") == 0;
				named = named || strcmp(c[i], "DisplayName") == 0;
			}
			if (def || named) {
				undo_t u = { .kind = U_SET_DEF, .t = t, .old_x = t->x, .old_expl = t->expl, .old_name = t->name,
					.old_traverses = t->traverses };
				const char *dn = res_str(after, "DisplayName");
				t->name = loom_strdup(dn ? dn : "");
				if (def) {
					definition(w, after, &t->x, &t->expl, NULL);
					t->traverses = traverses(t->x);
					redo = t;
				} else {
					u.name_only = true; /* the definition stays */
					u.old_x = NULL;
					memset(&u.old_expl, 0, sizeof u.old_expl);
				}
				log_push(s, u);
				s->gen++;
			}
		}
	}
	if (after == NULL) {
		for (size_t i = 0; i < s->nres; i++)
			member_set(s, s->res[i], r->rid, false);
		for (size_t i = 0; i < s->nmpr; i++)
			member_set(s, s->mpr[i], r->rid, false);
	}
	if (redo)
		rc = full(w, redo, ret_reason);
	/* only the sets whose filters name a changed attribute are looked at */
	loom_map_t *idx = by_attr(s);
	for (size_t k = 0; k < nc && rc == 0; k++) {
		tlist_t *l = loom_map_gets(idx, c[k]);
		for (size_t i = 0; l && i < l->n && rc == 0; i++) {
			tset_t *t = l->v[i];
			if (t->seen_plan == s->plan_no)
				continue;
			t->seen_plan = s->plan_no;
			rc = affected(w, t, r->object_type, c, nc, ret_reason);
		}
	}
	/* cascade through filters that read members (of the Sets changed so far) */
	size_t rounds = 0, nchanged = 0;
	tset_t **changed = loom_calloc(s->nres + 1, sizeof *changed);
	for (bool again = true; again && rc == 0; rounds++) {
		again = false;
		nchanged = 0;
		for (size_t i = 0; i < s->nres; i++)
			if (s->res[i]->stamp > s->plan_tick)
				changed[nchanged++] = s->res[i];
		if (nchanged == 0)
			break;
		if (rounds > s->nres + 1) {
			*ret_reason = loom_strdup("the members of the sets do not settle: their filters depend on each other's "
			    "members");
			rc = -1;
			break;
		}
		for (size_t i = 0; i < s->nres + s->nmpr && rc == 0; i++) {
			tset_t *t = i < s->nres ? s->res[i] : s->mpr[i - s->nres];
			if (stale(changed, nchanged, t)) {
				again = true;
				rc = full(w, t, ret_reason);
			}
		}
	}
	free(changed);
	w->overlay.active = false;
	free(c);
	return rc;
}

bool wf_sets_mpr_requester(wf_t *w, size_t m)
{
	return w->sets->req_in[m];
}

bool wf_sets_mpr_before(wf_t *w, size_t m)
{
	return w->sets->before_in[m];
}

bool wf_sets_mpr_after(wf_t *w, size_t m)
{
	struct wf_sets *s = w->sets;
	const wf_mpr_t *p = &w->policy.mprs[m];
	int i = s->by_mpr[m].after;
	if (s->target_gone)
		return false;
	if (i >= 0 && !rs_has(&s->mpr[i]->members, s->target))
		return false;
	if (p->after_set == NULL)
		return true;
	/* the plan may have created or renamed Sets since it looked them up */
	tset_t *t = s->by_mpr[m].gen == s->gen + 1 ? s->by_mpr[m].after_set : named(s, p->after_set);
	return t && rs_has(&t->members, s->target);
}

/* ---- commit ---- */

#define MAX_LISTED 1000

static char *member_id(wf_t *w, loom_xpath_rid_t rid, const Loom__Request *rq)
{
	if (rid == w->sets->target)
		return loom_strdup(rq->target_id);
	const Loom__Attr *a = w->xp.attr(w, rid, "ObjectID");
	return loom_strdup(a && a->n_values ? a->values[0]->ref : "");
}

void wf_sets_commit_batch(wf_t *w, loom_batch_t *b, Loom__Request *rq)
{
	struct wf_sets *s = w->sets;
	unsigned char k[16], end[16];
	size_t total = 0;
	/* rows, and the count of net transitions of Sets and Groups */
	for (size_t i = 0; i < s->nlog; i++) {
		undo_t *u = &s->log[i];
		if (u->kind == U_SET_GONE) {
			loom_store_put_u64be(k, u->t->rid);
			loom_store_put_u64be(k + 8, 0);
			loom_store_put_u64be(end, u->t->rid + 1);
			loom_store_put_u64be(end + 8, 0);
			loom_batch_delete_range(b, w->cf_member, k, 16, end, 16);
			continue;
		}
		if ((u->kind != U_ADD && u->kind != U_DEL) || u->t->rid == 0)
			continue;
		loom_store_put_u64be(k, u->t->rid);
		loom_store_put_u64be(k + 8, u->rid);
		if (u->kind == U_ADD)
			loom_batch_put(b, w->cf_member, k, 16, "", 0);
		else
			loom_batch_delete(b, w->cf_member, k, 16);
		/* a Set or Group whose members changed is a changed resource for
		 * a policy agent's delta import (once per set per request) */
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = (s->log[j].kind == U_ADD || s->log[j].kind == U_DEL) && s->log[j].t == u->t;
		if (!seen && u->t->id && u->t->type)
			wf_chg_write_id(w, b, u->t->id, u->t->type, false, rq->id);
	}
	for (size_t i = 0; i < s->nbefore; i++) {
		rq->sets_before = loom_realloc(rq->sets_before, (rq->n_sets_before + 1) * sizeof *rq->sets_before);
		rq->sets_before[rq->n_sets_before++] = s->before_refs[i];
	}
	free(s->before_refs);
	s->before_refs = NULL;
	s->nbefore = 0;
	if (!s->target_gone)
		for (size_t i = 0; i < s->nres; i++)
			if (rs_has(&s->res[i]->members, s->target)) {
				rq->sets_after = loom_realloc(rq->sets_after, (rq->n_sets_after + 1) * sizeof *rq->sets_after);
				rq->sets_after[rq->n_sets_after++] = set_ref(s->res[i]);
			}
	/* transitions, the target's first, and the set-transition MPRs they match */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < s->nlog; i++) {
			undo_t *u = &s->log[i];
			if ((u->kind != U_ADD && u->kind != U_DEL) || u->t->rid == 0 || !u->first)
				continue;
			if ((pass == 0) != (u->rid == s->target))
				continue;
			bool now = rs_has(&u->t->members, u->rid);
			if ((u->kind == U_DEL) == now)
				continue;
			/* a set this request deletes is no longer listed: its leavers are not transitions */
			if (res_find(s, u->t->rid) != u->t)
				continue;
			total++;
			if (rq->n_transitions < MAX_LISTED) {
				Loom__SetTransition *tr = loom_malloc(sizeof *tr);
				loom__set_transition__init(tr);
				tr->set = set_ref(u->t);
				tr->member_id = member_id(w, u->rid, rq);
				tr->joined = now;
				rq->transitions = loom_realloc(rq->transitions, (rq->n_transitions + 1) * sizeof *rq->transitions);
				rq->transitions[rq->n_transitions++] = tr;
			}
			for (size_t m = 0; m < w->policy.ntmprs && rq->n_transition_mprs < MAX_LISTED; m++) {
				const wf_tmpr_t *p = &w->policy.tmprs[m];
				if (p->in != now || (strcasecmp(p->set, u->t->id) != 0 && strcmp(p->set, u->t->name) != 0))
					continue;
				Loom__TransitionMatch *tm = loom_malloc(sizeof *tm);
				loom__transition_match__init(tm);
				tm->mpr = loom_strdup(p->name);
				tm->transition = loom_malloc(sizeof *tm->transition);
				loom__set_transition__init(tm->transition);
				tm->transition->set = set_ref(u->t);
				tm->transition->member_id = member_id(w, u->rid, rq);
				tm->transition->joined = now;
				tm->workflows = loom_calloc(p->nworkflows + 1, sizeof *tm->workflows);
				for (size_t k2 = 0; k2 < p->nworkflows; k2++)
					tm->workflows[tm->n_workflows++] = loom_strdup(p->workflows[k2]);
				rq->transition_mprs = loom_realloc(rq->transition_mprs,
				    (rq->n_transition_mprs + 1) * sizeof *rq->transition_mprs);
				rq->transition_mprs[rq->n_transition_mprs++] = tm;
			}
		}
	rq->transitions_total = total;
}

void wf_sets_done(wf_t *w)
{
	struct wf_sets *s = w->sets;
	forget_log(s);
	for (size_t i = 0; i < s->nlog; i++) {
		undo_t *u = &s->log[i];
		if (u->kind == U_SET_GONE)
			tset_free(u->t);
		else if (u->kind == U_SET_DEF) {
			if (!u->name_only)
				loom_xpath_destroy(&u->old_x);
			rs_release(&u->old_expl);
			free(u->old_name);
		}
	}
	s->nlog = 0;
	free_before_refs(s);
}

void wf_sets_abort(wf_t *w)
{
	struct wf_sets *s = w->sets;
	if (s == NULL)
		return;
	forget_log(s);
	if (s->nlog)
		s->gen++;
	while (s->nlog) {
		undo_t *u = &s->log[--s->nlog];
		tset_t *t = u->t;
		switch (u->kind) {
		case U_ADD:
			rs_del(&t->members, u->rid);
			break;
		case U_DEL:
			rs_add(&t->members, u->rid);
			break;
		case U_SET_NEW:
			for (size_t i = 0; i < s->nres; i++)
				if (s->res[i] == t)
					s->res[i] = s->res[--s->nres];
			tset_free(t);
			break;
		case U_SET_GONE:
			s->res = loom_realloc(s->res, (s->nres + 1) * sizeof *s->res);
			s->res[s->nres++] = t;
			break;
		case U_SET_DEF:
			free(t->name);
			t->name = u->old_name;
			if (u->name_only)
				break;
			loom_xpath_destroy(&t->x);
			rs_release(&t->expl);
			t->x = u->old_x;
			t->expl = u->old_expl;
			t->traverses = u->old_traverses;
			break;
		}
	}
	free_before_refs(s);
	w->overlay.active = false;
}

/* ---- the provider's questions ---- */

bool wf_sets_is_set(wf_t *w, loom_xpath_rid_t rid)
{
	return w->sets && res_find(w->sets, rid) != NULL;
}

const Loom__Attr *wf_sets_members_attr(wf_t *w, loom_xpath_rid_t rid)
{
	struct wf_sets *s = w->sets;
	tset_t *t = res_find(s, rid);
	if (t == NULL)
		return NULL;
	if (s->reading)
		rs_add(&s->reading->reads, rid);
	for (size_t i = 0; i < s->attr.n_values; i++)
		protobuf_c_message_free_unpacked(&s->attr.values[i]->base, NULL);
	free(s->attr.values);
	loom__attr__init(&s->attr);
	s->attr.name = (char *)"ComputedMember";
	s->attr.values = loom_calloc(t->members.n + 1, sizeof *s->attr.values);
	for (size_t i = 0; i < t->members.cap; i++) {
		uint64_t m = t->members.v[i];
		if (m == 0)
			continue;
		Loom__Resource *r;
		const char *e;
		const char *id = NULL;
		if (w->overlay.active && m == w->overlay.rid) {
			if (!w->overlay.gone)
				id = w->overlay.res->object_id;
			r = NULL;
		} else if (wf_res_get(w, m, &r, &e) == 1) {
			id = r->object_id;
		} else {
			r = NULL;
		}
		if (id)
			s->attr.values[s->attr.n_values++] = wf_value_str(LOOM__VALUE__V_REF, id);
		if (r)
			protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	return s->attr.n_values ? &s->attr : NULL;
}

int wf_sets_find_member(wf_t *w, const char *type, const Loom__Value *v, loom_xpath_visit_fn *fn, void *varg)
{
	struct wf_sets *s = w->sets;
	const char *id = v->v_case == LOOM__VALUE__V_REF ? v->ref : v->v_case == LOOM__VALUE__V_STR ? v->str : NULL;
	loom_xpath_rid_t rid;
	if (s->reading)
		s->reading->reads_any = true;
	if (id == NULL || w->xp.resolve(w, id, strlen(id), &rid) != 0)
		return 0;
	for (size_t i = 0; i < s->nres; i++) {
		tset_t *t = s->res[i];
		if ((type == NULL || strcmp(type, t->type) == 0) && rs_has(&t->members, rid)) {
			int rc = fn(varg, t->rid);
			if (rc)
				return rc;
		}
	}
	return 0;
}

void wf_sets_decorate(wf_t *w, Loom__Resource *r)
{
	if (!is_set_type(r->object_type) || !wf_sets_is_set(w, r->rid))
		return;
	const Loom__Attr *a = wf_sets_members_attr(w, r->rid);
	size_t n = a ? a->n_values : 0;
	Loom__Value **v = loom_calloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = loom_value_dup(a->values[i]);
	wf_res_set(r, "ComputedMember", v, n);
}

void wf_sets_counters(wf_t *w, size_t *ret_full, size_t *ret_tests)
{
	*ret_full = w->sets->full;
	*ret_tests = w->sets->tests;
}

/* ---- time (workflow_timer.c) ---- */

int wf_sets_plan_temporal(wf_t *w, int64_t now_us, char **ret_reason)
{
	struct wf_sets *s = w->sets;
	(void)now_us; /* the evaluator reads the clock: the sets see the same minute the scheduler does */
	s->plan_tick = s->tick;
	s->plan_no++;
	s->target = 0;
	s->target_gone = false;
	free_before_refs(s);
	int rc = 0;
	for (size_t i = 0; i < s->nres + s->nmpr && rc == 0; i++) {
		tset_t *t = i < s->nres ? s->res[i] : s->mpr[i - s->nres];
		const loom_xpath_deps_t *d = t->x ? loom_xpath_deps(t->x) : NULL;
		if (d && d->temporal)
			rc = full(w, t, ret_reason);
	}
	/* cascade through filters that read members of the Sets changed so far */
	tset_t **changed = loom_calloc(s->nres + 1, sizeof *changed);
	for (size_t rounds = 0; rc == 0; rounds++) {
		size_t nchanged = 0;
		for (size_t i = 0; i < s->nres; i++)
			if (s->res[i]->stamp > s->plan_tick)
				changed[nchanged++] = s->res[i];
		if (nchanged == 0)
			break;
		if (rounds > s->nres + 1) {
			*ret_reason = loom_strdup("the members of the sets do not settle: their filters depend on each other's "
			    "members");
			rc = -1;
			break;
		}
		bool again = false;
		for (size_t i = 0; i < s->nres + s->nmpr && rc == 0; i++) {
			tset_t *t = i < s->nres ? s->res[i] : s->mpr[i - s->nres];
			if (stale(changed, nchanged, t)) {
				again = true;
				rc = full(w, t, ret_reason);
			}
		}
		if (!again)
			break;
	}
	free(changed);
	if (rc < 0)
		return -1;
	int n = 0;
	for (size_t i = 0; i < s->nlog; i++)
		n += (s->log[i].kind == U_ADD || s->log[i].kind == U_DEL) && s->log[i].t->rid != 0;
	return n;
}

int wf_sets_members_of(wf_t *w, const char *name, char ***ret_ids, size_t *ret_n)
{
	tset_t *t = named(w->sets, name);
	*ret_ids = NULL;
	*ret_n = 0;
	if (t == NULL)
		return 0;
	char **v = loom_calloc(t->members.n + 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < t->members.cap; i++) {
		uint64_t m = t->members.v[i];
		const Loom__Attr *a = m ? w->xp.attr(w, m, "ObjectID") : NULL;
		if (a && a->n_values)
			v[n++] = loom_strdup(a->values[0]->ref);
	}
	*ret_ids = v;
	*ret_n = n;
	return 1;
}

int wf_sets_ref(wf_t *w, const char *name, Loom__SetRef **ret)
{
	tset_t *t = named(w->sets, name);
	if (t == NULL)
		return 0;
	*ret = set_ref(t);
	return 1;
}
