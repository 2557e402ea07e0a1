/* loom_xpath_eval.c - evaluates a compiled FIM XPath filter against the
 * resources of a provider (loom_xpath.h). The tree is described in
 * loom_xpath_int.h, the semantics in docs/xpath.md.
 *
 * An evaluation runs in three parts:
 *
 *  1. prepare: every comparison asks the provider for its attribute's type
 *     (attr_info), checks that the operator and the literal make sense for
 *     it (the errors the data makes, located at the comparison), turns the
 *     literal into a value of that type for index look-ups and computes the
 *     datetime expressions (fn:current-dateTime() is read once, so every
 *     comparison of one evaluation sees the same instant).
 *  2. sets: a location path gives a sorted set of resources. Its first step
 *     draws candidates from an index when its predicate allows it (an
 *     equality with a literal, an ObjectID, a reference equal to a small set
 *     of resources, an 'or' of those, the intersection of the conjuncts of an
 *     'and' that can), otherwise from
 *     a scan of the type; then tests the predicate on each candidate. A
 *     later step dereferences a reference attribute of every resource in the
 *     set and tests its predicate on what it reaches. A path on the right of
 *     a comparison is computed once per evaluation (its slot remembers the
 *     evaluation number), not once per resource it is compared for.
 *  3. the union of the paths' sets.
 *
 * Null and multi-valued attributes: a comparison with a literal holds when
 * some value satisfies it, and never for a null attribute ('!=' included);
 * '!=' with a location path holds for a null attribute; not() negates its
 * whole argument, so not(mv = 1) is "no value is 1".
 */
#include "loom_xpath.h"
#include "loom_xpath_int.h"

#include "loom_alloc.h"
#include "loom_buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NARROW_ENOUGH 16 /* candidates few enough to stop intersecting an 'and''s conjuncts */
#define NARROW_MAX 4096  /* most resources on the right of 'ref = path' looked up one by one in an index */

typedef struct rvec {
	loom_xpath_rid_t *v;       /* the resources */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
} rvec_t;

/* What prepare learned about one comparison. */
typedef struct cmp_slot {
	int type;                  /* the attribute's type (XT_*), 0: no resource can have it */
	bool multi;                /* it may hold several values */
	bool key_ok;               /* key holds the literal as a value of the attribute's type */
	Loom__Value key;           /* that value (strings borrowed from the filter) */
	int64_t t;                 /* right-hand datetime expression's value */
} cmp_slot_t;

struct loom_xpath_work {
	rvec_t *sets;              /* set slots, one pair per PATH */
	uint32_t *set_gen;         /* per set slot: the evaluation it was computed in */
	size_t nsets;              /* set slots allocated */
	cmp_slot_t *cmps;          /* comparison slots */
	size_t ncmps;              /* comparison slots allocated */
	rvec_t out;                /* the union of several paths */
	uint32_t gen;              /* number of the current evaluation */
};

typedef struct ectx {
	const loom_xpath_t *x;             /* what is evaluated */
	const loom_xpath_provider_t *p;    /* where the resources are */
	struct loom_xpath_work *w;         /* scratch memory */
	int64_t now;                       /* fn:current-dateTime() */
	loom_xpath_error_t *err;           /* where the first error goes (may be NULL) */
} ectx_t;

/* ---- sets of resources -------------------------------------------------------------------- */

static void rvec_push(rvec_t *r, loom_xpath_rid_t rid)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = loom_realloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = rid;
}

static int visit_push(void *varg, loom_xpath_rid_t rid)
{
	rvec_push(varg, rid);
	return 0;
}

static int rid_cmp(const void *a, const void *b)
{
	loom_xpath_rid_t x = *(const loom_xpath_rid_t *)a, y = *(const loom_xpath_rid_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorts r ascending and drops duplicates. */
static void rvec_sort_unique(rvec_t *r)
{
	bool sorted = true;
	for (size_t i = 1; i < r->n && sorted; i++)
		if (r->v[i - 1] >= r->v[i])
			sorted = false;
	if (sorted)
		return;
	qsort(r->v, r->n, sizeof *r->v, rid_cmp);
	size_t o = 0;
	for (size_t i = 0; i < r->n; i++)
		if (o == 0 || r->v[o - 1] != r->v[i])
			r->v[o++] = r->v[i];
	r->n = o;
}

/* Keeps in a (sorted) the resources also in b (sorted). */
static void rvec_intersect(rvec_t *a, const rvec_t *b)
{
	size_t i = 0, j = 0, o = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j]) {
			i++;
		} else if (a->v[i] > b->v[j]) {
			j++;
		} else {
			a->v[o++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = o;
}

static bool rvec_has(const rvec_t *r, loom_xpath_rid_t rid)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->v[mid] < rid)
			lo = mid + 1;
		else if (r->v[mid] > rid)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* ---- results ---------------------------------------------------------------------------------- */

void loom_xpath_result_init(loom_xpath_result_t *r)
{
	memset(r, 0, sizeof *r);
}

void loom_xpath_result_release(loom_xpath_result_t *r)
{
	struct loom_xpath_work *w = r->work;
	if (w) {
		for (size_t i = 0; i < w->nsets; i++)
			free(w->sets[i].v);
		free(w->sets);
		free(w->set_gen);
		free(w->cmps);
		free(w->out.v);
		free(w);
	}
	memset(r, 0, sizeof *r);
}

/* Makes w big enough for x and starts a new evaluation number. */
static struct loom_xpath_work *work_for(loom_xpath_result_t *r, const loom_xpath_t *x)
{
	struct loom_xpath_work *w = r->work;
	if (w == NULL)
		w = r->work = loom_calloc(1, sizeof *w);
	if (w->nsets < x->n_set_slots) {
		w->sets = loom_realloc(w->sets, x->n_set_slots * sizeof *w->sets);
		w->set_gen = loom_realloc(w->set_gen, x->n_set_slots * sizeof *w->set_gen);
		memset(w->sets + w->nsets, 0, (x->n_set_slots - w->nsets) * sizeof *w->sets);
		memset(w->set_gen + w->nsets, 0, (x->n_set_slots - w->nsets) * sizeof *w->set_gen);
		w->nsets = x->n_set_slots;
	}
	if (w->ncmps < x->n_cmp_slots) {
		w->cmps = loom_realloc(w->cmps, x->n_cmp_slots * sizeof *w->cmps);
		w->ncmps = x->n_cmp_slots;
	}
	if (++w->gen == 0) {
		memset(w->set_gen, 0, w->nsets * sizeof *w->set_gen);
		w->gen = 1;
	}
	return w;
}

/* ---- messages ---------------------------------------------------------------------------------- */

static const char *plural(int t)
{
	switch (t) {
	case XT_STRING: return "strings";
	case XT_INT: return "integers";
	case XT_BOOL: return "booleans";
	case XT_BIN: return "binary values";
	case XT_TIME: return "datetimes";
	case XT_REF: return "references";
	default: return "values of an unknown type";
	}
}

static const char *op_text(xp_op_t op)
{
	static const char *const t[] = { "=", "!=", "<", "<=", ">", ">=" };
	return t[op];
}

static const char *fn_text(xp_fn_t fn)
{
	return fn == FN_CONTAINS ? "contains()" : fn == FN_STARTS ? "starts-with()" : "ends-with()";
}

static int value_type(const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: return XT_STRING;
	case LOOM__VALUE__V_INT: return XT_INT;
	case LOOM__VALUE__V_BOOL: return XT_BOOL;
	case LOOM__VALUE__V_BIN: return XT_BIN;
	case LOOM__VALUE__V_TIME: return XT_TIME;
	case LOOM__VALUE__V_REF: return XT_REF;
	default: return 0;
	}
}

/* ---- prepare ----------------------------------------------------------------------------------- */

static int time_eval(ectx_t *c, const xp_node_t *n, int64_t *ret)
{
	int64_t base;
	switch (n->tm) {
	case TM_NOW:
		*ret = c->now;
		return 0;
	case TM_LIT:
		*ret = n->lit.t;
		return 0;
	case TM_ADD:
	case TM_SUB:
		if (time_eval(c, n->kids[0], &base) < 0)
			return -1;
		if (n->tm == TM_ADD ? __builtin_add_overflow(base, n->dur, ret) : __builtin_sub_overflow(base, n->dur, ret))
			return xp_fail(c->x, c->err, n->off, "the datetime is out of range");
		return 0;
	}
	return -1;
}

/* The literal as a message shows it: 'text' (at most 40 bytes, then ...), true. */
static const char *lit_show(const xp_lit_t *l, char *buf, size_t size)
{
	if (l->kind == XT_STRING)
		snprintf(buf, size, "'%.*s%s'", (int)(l->len > 40 ? 40 : l->len), l->s, l->len > 40 ? "..." : "");
	else if (l->kind == XT_BOOL)
		snprintf(buf, size, "%s", l->b ? "true" : "false");
	else
		snprintf(buf, size, "%lld", (long long)l->i);
	return buf;
}

/* Checks a comparison against the attribute's type and fills its slot. */
static int prepare_cmp(ectx_t *c, const xp_node_t *n)
{
	char shown[64];
	cmp_slot_t *s = &c->w->cmps[n->slot];
	memset(s, 0, sizeof *s);
	loom__value__init(&s->key);
	loom_xpath_attr_info_t info;
	if (c->p->attr_info(c->p->arg, n->attr, &info) != 0)
		return 0; /* no resource can have it: null everywhere */
	s->type = info.type;
	s->multi = info.multi;
	const char *a = n->attr;
	int t = info.type;
	if (t == XT_BIN)
		return xp_fail(c->x, c->err, n->attr_off, "attribute '%s' holds binary values, which FIM filters cannot "
		    "test", a);
	if (n->kind == XN_FUNC) {
		if (t != XT_STRING)
			return xp_fail(c->x, c->err, n->off, "%s applies to strings, and attribute '%s' holds %s",
			    fn_text(n->fn), a, plural(t));
		return 0;
	}
	if (n->op == OP_NE && info.multi)
		return xp_fail(c->x, c->err, n->op_off, "'!=' is not supported on multi-valued attribute "
		    "'%s' (write not(%s = ...))", a, a);
	if (n->rhs == R_PATH) {
		if (t != XT_REF)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds %s, so it cannot be compared with "
			    "a location path (only a reference attribute points at resources)", a, plural(t));
		return 0;
	}
	if (n->op != OP_EQ && n->op != OP_NE && t == XT_REF)
		return xp_fail(c->x, c->err, n->op_off, "'%s' does not apply to references ('%s' holds "
		    "references; use = or !=)", op_text(n->op), a);
	if (n->rhs == R_TIME) {
		if (t != XT_TIME)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds %s, so it cannot be compared with a "
			    "datetime", a, plural(t));
		return time_eval(c, n->kids[0], &s->t);
	}
	const xp_lit_t *l = &n->lit;
	switch (t) {
	case XT_STRING:
		if (l->kind != XT_STRING)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds strings: write the value in quotes",
			    a);
		s->key.v_case = LOOM__VALUE__V_STR;
		s->key.str = (char *)l->s;
		break;
	case XT_REF:
		if (l->kind != XT_STRING)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds references: write an ObjectID in "
			    "quotes or a location path", a);
		if (xp_casecmp(l->s, l->len < 9 ? l->len : 9, "urn:uuid:", 9) == 0)
			return xp_fail(c->x, c->err, n->lit_off, "a reference is compared with a bare ObjectID, not "
			    "'urn:uuid:...' (write '%s')", l->s + 9);
		s->key.v_case = LOOM__VALUE__V_REF;
		s->key.ref = (char *)l->s;
		break;
	case XT_INT:
		if (!l->has_int)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds integers, and %s is not one", a,
			    lit_show(l, shown, sizeof shown));
		s->key.v_case = LOOM__VALUE__V_INT;
		s->key.int_ = l->i;
		break;
	case XT_BOOL:
		if (!l->has_bool)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds booleans: compare it with true or "
			    "false", a);
		s->key.v_case = LOOM__VALUE__V_BOOL;
		s->key.bool_ = l->b;
		break;
	case XT_TIME:
		if (!l->has_time)
			return xp_fail(c->x, c->err, n->lit_off, "attribute '%s' holds datetimes: compare it with a datetime "
			    "such as '2024-01-15T10:30:00' or fn:current-dateTime()", a);
		s->key.v_case = LOOM__VALUE__V_TIME;
		s->key.time = l->t;
		s->t = l->t;
		break;
	default:
		return xp_fail(c->x, c->err, n->attr_off, "attribute '%s' has a type the filter cannot test", a);
	}
	s->key_ok = true;
	return 0;
}

static int prepare(ectx_t *c, const xp_node_t *n)
{
	switch (n->kind) {
	case XN_UNION:
	case XN_OR:
	case XN_AND:
	case XN_NOT:
		for (size_t i = 0; i < n->nkids; i++)
			if (prepare(c, n->kids[i]) < 0)
				return -1;
		return 0;
	case XN_PATH:
		for (size_t i = 0; i < n->nsteps; i++) {
			const xp_step_t *st = &n->steps[i];
			loom_xpath_attr_info_t info;
			if (i > 0 && c->p->attr_info(c->p->arg, st->name, &info) == 0 && info.type != XT_REF)
				return xp_fail(c->x, c->err, st->off, "location step '%s' must be a reference attribute, and "
				    "'%s' holds %s", st->name, st->name, plural(info.type));
			if (st->pred && prepare(c, st->pred) < 0)
				return -1;
		}
		return 0;
	case XN_CMP:
		if (prepare_cmp(c, n) < 0)
			return -1;
		return n->rhs == R_PATH ? prepare(c, n->kids[0]) : 0;
	case XN_FUNC:
		return prepare_cmp(c, n);
	case XN_TIME:
		return 0;
	}
	return 0;
}

/* ---- testing one resource --------------------------------------------------------------------- */

static const rvec_t *eval_path(ectx_t *c, const xp_node_t *path);

/* The resource an ObjectID value names, or false when none does. */
static bool resolve_value(ectx_t *c, const Loom__Value *v, loom_xpath_rid_t *ret)
{
	const char *id = v->v_case == LOOM__VALUE__V_REF ? v->ref : v->v_case == LOOM__VALUE__V_STR ? v->str : NULL;
	return id && c->p->resolve(c->p->arg, id, strlen(id), ret) == 0;
}

static int bad_value(ectx_t *c, const xp_node_t *n, const Loom__Value *v, int want)
{
	return xp_fail(c->x, c->err, n->attr_off, "attribute '%s' has a value of another type (%s) than its type "
	    "says (%s)", n->attr, plural(value_type(v)), plural(want));
}

/* <0, 0, >0: value v against the comparison's right-hand side. */
static int compare(const cmp_slot_t *s, const xp_node_t *n, const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: return xp_casecmp(v->str, strlen(v->str), n->lit.s, n->lit.len);
	case LOOM__VALUE__V_REF: return xp_casecmp(v->ref, strlen(v->ref), n->lit.s, n->lit.len);
	case LOOM__VALUE__V_INT: return v->int_ < s->key.int_ ? -1 : v->int_ > s->key.int_;
	case LOOM__VALUE__V_BOOL: return (int)v->bool_ - (int)s->key.bool_;
	case LOOM__VALUE__V_TIME: return v->time < s->t ? -1 : v->time > s->t;
	default: return 0;
	}
}

static bool op_holds(xp_op_t op, int cmp)
{
	switch (op) {
	case OP_EQ: return cmp == 0;
	case OP_NE: return cmp != 0;
	case OP_LT: return cmp < 0;
	case OP_LE: return cmp <= 0;
	case OP_GT: return cmp > 0;
	case OP_GE: return cmp >= 0;
	}
	return false;
}

static int test(ectx_t *c, const xp_node_t *n, loom_xpath_rid_t rid);

static int test_cmp(ectx_t *c, const xp_node_t *n, loom_xpath_rid_t rid)
{
	const cmp_slot_t *s = &c->w->cmps[n->slot];
	bool path = n->rhs == R_PATH;
	if (s->type == 0)
		return path && n->op == OP_NE;
	if (path) {
		const rvec_t *set = eval_path(c, n->kids[0]);
		if (set == NULL)
			return -1;
		bool any = false;
		if (strcmp(n->attr, "ObjectID") == 0) {
			any = rvec_has(set, rid);
		} else {
			const Loom__Attr *a = c->p->attr(c->p->arg, rid, n->attr);
			if (a == NULL || a->n_values == 0)
				return n->op == OP_NE;
			for (size_t i = 0; i < a->n_values && !any; i++) {
				loom_xpath_rid_t to;
				if (a->values[i]->v_case != LOOM__VALUE__V_REF)
					return bad_value(c, n, a->values[i], XT_REF);
				if (resolve_value(c, a->values[i], &to) && rvec_has(set, to))
					any = true;
			}
		}
		return n->op == OP_EQ ? any : !any;
	}
	const Loom__Attr *a = c->p->attr(c->p->arg, rid, n->attr);
	if (a == NULL || a->n_values == 0)
		return 0;
	bool eq_any = false;
	for (size_t i = 0; i < a->n_values; i++) {
		const Loom__Value *v = a->values[i];
		if (value_type(v) != s->type)
			return bad_value(c, n, v, s->type);
		int r = compare(s, n, v);
		if (n->op == OP_NE) {
			if (r == 0)
				eq_any = true;
		} else if (op_holds(n->op, r)) {
			return 1;
		}
	}
	return n->op == OP_NE ? !eq_any : 0;
}

static int test_func(ectx_t *c, const xp_node_t *n, loom_xpath_rid_t rid)
{
	if (c->w->cmps[n->slot].type == 0)
		return 0;
	const Loom__Attr *a = c->p->attr(c->p->arg, rid, n->attr);
	if (a == NULL)
		return 0;
	for (size_t i = 0; i < a->n_values; i++) {
		const Loom__Value *v = a->values[i];
		if (v->v_case != LOOM__VALUE__V_STR)
			return bad_value(c, n, v, XT_STRING);
		size_t len = strlen(v->str);
		bool hit = n->fn == FN_CONTAINS ? xp_contains_word(v->str, len, n->lit.s, n->lit.len)
		    : xp_like(v->str, len, n->pat, n->patlen);
		if (hit)
			return 1;
	}
	return 0;
}

/* 1 when resource rid satisfies n, 0 when not, -1 on error. */
static int test(ectx_t *c, const xp_node_t *n, loom_xpath_rid_t rid)
{
	int r;
	switch (n->kind) {
	case XN_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if ((r = test(c, n->kids[i], rid)) <= 0)
				return r;
		return 1;
	case XN_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if ((r = test(c, n->kids[i], rid)) != 0)
				return r;
		return 0;
	case XN_NOT:
		r = test(c, n->kids[0], rid);
		return r < 0 ? r : !r;
	case XN_CMP:
		return test_cmp(c, n, rid);
	case XN_FUNC:
		return test_func(c, n, rid);
	default:
		return xp_fail(c->x, c->err, n->off, "internal error: node %d is no condition", (int)n->kind);
	}
}

/* Keeps the resources of r that satisfy pred. */
static int filter(ectx_t *c, rvec_t *r, const xp_node_t *pred)
{
	if (pred == NULL)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < r->n; i++) {
		int t = test(c, pred, r->v[i]);
		if (t < 0)
			return -1;
		if (t)
			r->v[o++] = r->v[i];
	}
	r->n = o;
	return 0;
}

/* ---- candidates from indexes -------------------------------------------------------------------- */

static int provider_error(ectx_t *c, const xp_node_t *n, char *perr)
{
	xp_fail(c->x, c->err, n->off, "%s", perr ? perr : "the resource provider failed");
	free(perr);
	return -1;
}

static bool type_is(ectx_t *c, loom_xpath_rid_t rid, const char *type)
{
	if (type == NULL)
		return true;
	const char *t = c->p->object_type(c->p->arg, rid);
	return t && strcmp(t, type) == 0;
}

/* Appends to r the candidates for resources of type that may satisfy
 * pred, from indexes. Returns 0 (r holds every resource that can satisfy
 * pred, maybe more), 1 when indexes cannot tell (r is as it was), -1 on
 * error. */
static int narrow(ectx_t *c, const char *type, const xp_node_t *n, rvec_t *r)
{
	size_t mark = r->n;
	int rc;
	switch (n->kind) {
	case XN_AND: {
		/* the intersection of the candidates of every conjunct an index can answer */
		rvec_t *acc = &c->w->sets[n->slot], *tmp = &c->w->sets[n->slot + 1];
		bool have = false;
		for (size_t i = 0; i < n->nkids; i++) {
			rvec_t *dst = have ? tmp : acc;
			dst->n = 0;
			if ((rc = narrow(c, type, n->kids[i], dst)) < 0)
				return -1;
			if (rc == 1)
				continue;
			rvec_sort_unique(dst);
			if (have)
				rvec_intersect(acc, tmp);
			have = true;
			if (acc->n <= NARROW_ENOUGH)
				break; /* testing the rest on so few costs less than fetching more candidates */
		}
		if (!have)
			return 1;
		for (size_t i = 0; i < acc->n; i++)
			rvec_push(r, acc->v[i]);
		return 0;
	}
	case XN_OR:
		for (size_t i = 0; i < n->nkids; i++) {
			if ((rc = narrow(c, type, n->kids[i], r)) != 0) {
				r->n = mark;
				return rc;
			}
		}
		return 0;
	case XN_CMP:
		break;
	default:
		return 1;
	}
	if (n->op != OP_EQ)
		return 1;
	const cmp_slot_t *s = &c->w->cmps[n->slot];
	if (s->type == 0)
		return 0; /* null everywhere: nothing is equal */
	bool oid = strcmp(n->attr, "ObjectID") == 0;
	char *perr = NULL;
	if (n->rhs == R_LIT) {
		if (oid) {
			loom_xpath_rid_t rid;
			if (c->p->resolve(c->p->arg, n->lit.s, n->lit.len, &rid) == 0 && type_is(c, rid, type))
				rvec_push(r, rid);
			return 0;
		}
		if (c->p->find_eq == NULL || !s->key_ok)
			return 1;
		rc = c->p->find_eq(c->p->arg, type, n->attr, &s->key, visit_push, r, &perr);
		if (rc < 0)
			return provider_error(c, n, perr);
		if (rc == LOOM_XPATH_NO_INDEX)
			r->n = mark;
		return rc;
	}
	if (n->rhs != R_PATH)
		return 1;
	const rvec_t *set = eval_path(c, n->kids[0]);
	if (set == NULL)
		return -1;
	if (oid) {
		for (size_t i = 0; i < set->n; i++)
			if (type_is(c, set->v[i], type))
				rvec_push(r, set->v[i]);
		return 0;
	}
	if (c->p->find_eq == NULL || set->n > NARROW_MAX)
		return 1;
	for (size_t i = 0; i < set->n; i++) {
		const Loom__Attr *a = c->p->attr(c->p->arg, set->v[i], "ObjectID");
		if (a == NULL || a->n_values == 0)
			continue;
		Loom__Value key;
		loom__value__init(&key);
		key.v_case = LOOM__VALUE__V_REF;
		key.ref = a->values[0]->v_case == LOOM__VALUE__V_REF ? a->values[0]->ref : a->values[0]->str;
		rc = c->p->find_eq(c->p->arg, type, n->attr, &key, visit_push, r, &perr);
		if (rc < 0)
			return provider_error(c, n, perr);
		if (rc == LOOM_XPATH_NO_INDEX) {
			r->n = mark;
			return 1;
		}
	}
	return 0;
}

/* ---- location paths ------------------------------------------------------------------------------- */

/* The sorted set of resources path selects, computed once per evaluation;
 * NULL on error. */
static const rvec_t *eval_path(ectx_t *c, const xp_node_t *path)
{
	struct loom_xpath_work *w = c->w;
	rvec_t *r = &w->sets[path->slot];
	if (w->set_gen[path->slot] == w->gen)
		return r;
	r->n = 0;
	const xp_step_t *st = &path->steps[0];
	int rc = st->pred ? narrow(c, st->name, st->pred, r) : 1;
	if (rc < 0)
		return NULL;
	if (rc == 1) {
		char *perr = NULL;
		r->n = 0;
		rc = c->p->scan(c->p->arg, st->name, visit_push, r, &perr);
		if (rc != 0) {
			provider_error(c, path, perr);
			return NULL;
		}
	}
	rvec_sort_unique(r);
	if (filter(c, r, st->pred) < 0)
		return NULL;
	for (size_t i = 1; i < path->nsteps; i++) {
		st = &path->steps[i];
		rvec_t *t = &w->sets[path->slot + 1];
		t->n = 0;
		for (size_t k = 0; k < r->n; k++) {
			const Loom__Attr *a = c->p->attr(c->p->arg, r->v[k], st->name);
			if (a == NULL)
				continue;
			for (size_t j = 0; j < a->n_values; j++) {
				loom_xpath_rid_t to;
				if (a->values[j]->v_case != LOOM__VALUE__V_REF) {
					xp_fail(c->x, c->err, st->off, "location step '%s' must be a reference attribute, and '%s' "
					    "holds %s", st->name, st->name, plural(value_type(a->values[j])));
					return NULL;
				}
				if (resolve_value(c, a->values[j], &to))
					rvec_push(t, to);
			}
		}
		rvec_sort_unique(t);
		rvec_t tmp = *r;
		*r = *t;
		*t = tmp;
		if (filter(c, r, st->pred) < 0)
			return NULL;
	}
	w->set_gen[path->slot] = w->gen;
	return r;
}

/* ---- evaluation ------------------------------------------------------------------------------------ */

static int64_t clock_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int start(ectx_t *c, const loom_xpath_t *x, const loom_xpath_provider_t *p,
    const loom_xpath_eval_opts_t *opts, loom_xpath_result_t *r, loom_xpath_error_t *err)
{
	if (err)
		memset(err, 0, sizeof *err);
	c->x = x;
	c->p = p;
	c->err = err;
	c->w = work_for(r, x);
	c->now = opts && opts->now_us ? opts->now_us : clock_now_us();
	r->rids = NULL;
	r->n = 0;
	return prepare(c, x->root);
}

int loom_xpath_eval(const loom_xpath_t *x, const loom_xpath_provider_t *p, const loom_xpath_eval_opts_t *opts,
    loom_xpath_result_t *r, loom_xpath_error_t *ret_error)
{
	ectx_t c;
	if (start(&c, x, p, opts, r, ret_error) < 0)
		return -1;
	const xp_node_t *u = x->root;
	if (u->nkids == 1) {
		const rvec_t *s = eval_path(&c, u->kids[0]);
		if (s == NULL)
			return -1;
		r->rids = s->v;
		r->n = s->n;
		return 0;
	}
	rvec_t *out = &c.w->out;
	out->n = 0;
	for (size_t i = 0; i < u->nkids; i++) {
		const rvec_t *s = eval_path(&c, u->kids[i]);
		if (s == NULL)
			return -1;
		for (size_t k = 0; k < s->n; k++)
			rvec_push(out, s->v[k]);
	}
	rvec_sort_unique(out);
	r->rids = out->v;
	r->n = out->n;
	return 0;
}

int loom_xpath_matches(const loom_xpath_t *x, const loom_xpath_provider_t *p, const loom_xpath_eval_opts_t *opts,
    loom_xpath_rid_t rid, loom_xpath_result_t *r, bool *ret_match, loom_xpath_error_t *ret_error)
{
	ectx_t c;
	if (start(&c, x, p, opts, r, ret_error) < 0)
		return -1;
	const xp_node_t *u = x->root;
	bool match = false;
	for (size_t i = 0; i < u->nkids && !match; i++) {
		const xp_node_t *path = u->kids[i];
		if (path->nsteps == 1) {
			if (!type_is(&c, rid, path->steps[0].name) || p->object_type(p->arg, rid) == NULL)
				continue;
			int t = path->steps[0].pred ? test(&c, path->steps[0].pred, rid) : 1;
			if (t < 0)
				return -1;
			match = t;
		} else {
			const rvec_t *s = eval_path(&c, path);
			if (s == NULL)
				return -1;
			match = rvec_has(s, rid);
		}
	}
	*ret_match = match;
	return 0;
}

int loom_xpath_check(const loom_xpath_t *x, const loom_xpath_provider_t *p, loom_xpath_error_t *ret_error)
{
	ectx_t c;
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	int rc = start(&c, x, p, NULL, &r, ret_error);
	loom_xpath_result_release(&r);
	return rc;
}
