/* loom_xpath_mem.c - resources in memory with hash indexes, as an XPath
 * provider, and the YAML resources file of `loomctl xpath eval`.
 *
 * Indexes:
 *   ids     lower-cased ObjectID -> rid + 1
 *   types   object type -> the rids of that type, ascending
 *   values  attribute -> (value key -> rids, ascending); built for an
 *           attribute by its first find_eq, then kept up to date by
 *           loom_xpath_mem_add. A value key is the value's text, lower-cased
 *           for strings and references (loom_value_key), so equal keys are
 *           exactly the values the evaluator calls equal.
 */
#include "loom_xpath_mem.h"
#include "loom_xpath_int.h"

#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_map.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct rids {
	loom_xpath_rid_t *v;       /* ascending */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
} rids_t;

typedef struct mres {
	char *type;                /* ObjectType */
	Loom__Attr **attrs;        /* ObjectID, ObjectType, then the others (one block with ids) */
	uint32_t *ids;             /* the number of each attribute's name (mattr_t.id) */
	size_t n;                  /* how many */
} mres_t;

typedef struct mattr {
	loom_xpath_attr_info_t info; /* its type, single or multi */
	loom_map_t *index;         /* value key -> rids_t *, or NULL until built */
	char *name;                /* the attribute's name */
	uint32_t id;               /* its number: index in loom_xpath_mem.names */
} mattr_t;

/* A Set or Group whose ComputedMember loom_xpath_mem_compute_sets makes. */
typedef struct mset {
	loom_xpath_rid_t rid;      /* the Set or Group */
	loom_xpath_t *x;           /* its Filter, or NULL: ExplicitMember only */
	char *where;               /* "FILE:LINE:COLUMN" of the filter, for messages, or NULL */
} mset_t;

/* The evaluator asks for attributes by the name strings of its compiled
 * filter, the same pointers again and again: a small cache from pointer to
 * attribute number saves hashing the name for every resource. An entry is
 * checked against the name before use (a freed filter's address may come
 * back holding another name). */
#define NAME_CACHE 16

struct loom_xpath_mem {
	mres_t *res;               /* the resources, by rid */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
	loom_map_t *ids;           /* lower-cased ObjectID -> (void *)(rid + 1) */
	loom_map_t *types;         /* object type -> rids_t * */
	loom_map_t *schema;        /* attribute name -> mattr_t * */
	mattr_t **names;           /* the same, by number */
	size_t nnames;             /* how many */
	struct { const char *p; uint32_t id; } cache[NAME_CACHE]; /* name pointer -> number */
	loom_buf_t key;            /* scratch for keys */
	mset_t *sets;              /* the sets to compute */
	size_t nsets;              /* how many */
	size_t lookups;            /* find_eq answered from an index */
};

static const char *const type_names[] = { "?", "a string", "an integer", "a boolean", "a binary value",
	"a datetime", "a reference" };

static void rids_push(rids_t *r, loom_xpath_rid_t rid)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4;
		r->v = loom_realloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = rid;
}

static void free_rids_map(loom_map_t **mp)
{
	if (*mp == NULL)
		return;
	size_t pos = 0;
	void *v;
	while (loom_map_next(*mp, &pos, NULL, NULL, &v)) {
		rids_t *r = v;
		free(r->v);
		free(r);
	}
	loom_map_destroy(mp);
}

/* Adds attribute name to the schema. */
static mattr_t *schema_add(loom_xpath_mem_t *m, const char *name, int type, bool multi)
{
	mattr_t *a = loom_calloc(1, sizeof *a);
	a->info.type = type;
	a->info.multi = multi;
	a->name = loom_strdup(name);
	a->id = (uint32_t)m->nnames;
	m->names = loom_realloc(m->names, (m->nnames + 1) * sizeof *m->names);
	m->names[m->nnames++] = a;
	loom_map_puts(m->schema, name, a);
	return a;
}

loom_xpath_mem_t *loom_xpath_mem_new(void)
{
	loom_xpath_mem_t *m = loom_calloc(1, sizeof *m);
	m->ids = loom_map_new();
	m->types = loom_map_new();
	m->schema = loom_map_new();
	if (m->ids == NULL || m->types == NULL || m->schema == NULL) {
		loom_xpath_mem_destroy(&m);
		return NULL;
	}
	schema_add(m, "ObjectID", XT_REF, false);     /* number 0 */
	schema_add(m, "ObjectType", XT_STRING, false); /* number 1 */
	return m;
}

void loom_xpath_mem_destroy(loom_xpath_mem_t **mp)
{
	loom_xpath_mem_t *m = *mp;
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		for (size_t k = 0; k < m->res[i].n; k++)
			protobuf_c_message_free_unpacked(&m->res[i].attrs[k]->base, NULL);
		free(m->res[i].attrs);
	}
	free(m->names);
	for (size_t i = 0; i < m->nsets; i++) {
		loom_xpath_destroy(&m->sets[i].x);
		free(m->sets[i].where);
	}
	free(m->sets);
	free(m->res);
	loom_map_destroy(&m->ids);
	free_rids_map(&m->types);
	if (m->schema) {
		size_t pos = 0;
		void *v;
		while (loom_map_next(m->schema, &pos, NULL, NULL, &v)) {
			mattr_t *a = v;
			free_rids_map(&a->index);
			free(a->name);
			free(a);
		}
		loom_map_destroy(&m->schema);
	}
	loom_buf_release(&m->key);
	free(m);
	*mp = NULL;
}

int loom_xpath_mem_declare(loom_xpath_mem_t *m, const char *name, int type, bool multi, char **ret_error)
{
	if (type < XT_STRING || type > XT_REF) {
		*ret_error = loom_sprintf("attribute '%s': unknown type %d", name, type);
		return -1;
	}
	mattr_t *a = loom_map_gets(m->schema, name);
	if (a) {
		if (a->info.type != type || a->info.multi != multi) {
			*ret_error = loom_sprintf("attribute '%s' is declared %s %s-valued attribute, not %s %s-valued one",
			    name, type_names[a->info.type], a->info.multi ? "multi" : "single", type_names[type],
			    multi ? "multi" : "single");
			return -1;
		}
		return 0;
	}
	schema_add(m, name, type, multi);
	return 0;
}

static int vtype(const Loom__Value *v)
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

static const char *value_key(loom_xpath_mem_t *m, const Loom__Value *v)
{
	loom_buf_reset(&m->key);
	loom_value_key(&m->key, v);
	return loom_buf_cstr(&m->key);
}

static void index_value(loom_xpath_mem_t *m, mattr_t *a, const Loom__Value *v, loom_xpath_rid_t rid)
{
	const char *k = value_key(m, v);
	rids_t *r = loom_map_get(a->index, k, m->key.len);
	if (r == NULL) {
		r = loom_calloc(1, sizeof *r);
		loom_map_put(a->index, k, m->key.len, r);
	}
	/* keep the rids ascending: a resource changed later may be older than the last one */
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->v[mid] < rid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->n && r->v[lo] == rid)
		return;
	rids_push(r, rid);
	memmove(r->v + lo + 1, r->v + lo, (r->n - 1 - lo) * sizeof *r->v);
	r->v[lo] = rid;
}

static void unindex_value(loom_xpath_mem_t *m, mattr_t *a, const Loom__Value *v, loom_xpath_rid_t rid)
{
	const char *k = value_key(m, v);
	rids_t *r = loom_map_get(a->index, k, m->key.len);
	for (size_t i = 0; r && i < r->n; i++)
		if (r->v[i] == rid) {
			memmove(r->v + i, r->v + i + 1, (r->n - i - 1) * sizeof *r->v);
			r->n--;
			return;
		}
}

static Loom__Attr *make_attr(const char *name, Loom__Value *v)
{
	Loom__Attr *a = loom_malloc(sizeof *a);
	loom__attr__init(a);
	a->name = loom_strdup(name);
	a->values = loom_malloc(sizeof *a->values);
	a->values[0] = v;
	a->n_values = 1;
	return a;
}

static void free_attrs(Loom__Attr **attrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (attrs[i])
			protobuf_c_message_free_unpacked(&attrs[i]->base, NULL);
	free(attrs);
}

static const Loom__Attr *mem_attr(void *arg, loom_xpath_rid_t rid, const char *name);
static int mem_resolve(void *arg, const char *id, size_t len, loom_xpath_rid_t *ret);

/* Checks a's values against the schema (or each other when it is new). */
static int check_values(loom_xpath_mem_t *m, const Loom__Attr *a, char **ret_error)
{
	if (a->n_values == 0)
		return 0;
	const mattr_t *s = loom_map_gets(m->schema, a->name);
	int t = s ? s->info.type : vtype(a->values[0]);
	for (size_t k = 0; k < a->n_values; k++)
		if (vtype(a->values[k]) != t) {
			*ret_error = loom_sprintf("attribute '%s' has %s value where its type is %s", a->name,
			    type_names[vtype(a->values[k])], type_names[t]);
			return -1;
		}
	if (s && !s->info.multi && a->n_values > 1) {
		*ret_error = loom_sprintf("attribute '%s' is single-valued and is given %zu values", a->name, a->n_values);
		return -1;
	}
	return 0;
}

int loom_xpath_mem_add(loom_xpath_mem_t *m, const char *type, const char *id, Loom__Attr **attrs, size_t n,
    loom_xpath_rid_t *ret_rid, char **ret_error)
{
	loom_buf_t low = LOOM_BUF_INIT;
	loom_buf_adds(&low, id);
	for (size_t i = 0; i < low.len; i++)
		low.data[i] = (char)tolower((unsigned char)low.data[i]);
	if (id[0] == '\0' || loom_map_get(m->ids, low.data, low.len)) {
		*ret_error = id[0] ? loom_sprintf("ObjectID '%s' is given to two resources", id)
		    : loom_strdup("a resource has an empty ObjectID");
		goto fail;
	}
	/* check every value against the schema before changing anything */
	for (size_t i = 0; i < n; i++) {
		const Loom__Attr *a = attrs[i];
		if (strcmp(a->name, "ObjectID") == 0 || strcmp(a->name, "ObjectType") == 0) {
			*ret_error = loom_sprintf("attribute '%s' is made from the resource's own", a->name);
			goto fail;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(attrs[k]->name, a->name) == 0) {
				*ret_error = loom_sprintf("attribute '%s' is given twice", a->name);
				goto fail;
			}
		if (check_values(m, a, ret_error) < 0)
			goto fail;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->res = loom_realloc(m->res, m->cap * sizeof *m->res);
	}
	loom_xpath_rid_t rid = m->n;
	mres_t *r = &m->res[m->n++];
	r->attrs = loom_malloc((n + 2) * (sizeof *r->attrs + sizeof *r->ids));
	r->ids = (uint32_t *)(r->attrs + n + 2);
	r->ids[0] = 0;
	r->ids[1] = 1;
	Loom__Value *idv = loom_malloc(sizeof *idv), *tv = loom_malloc(sizeof *tv);
	loom__value__init(idv);
	idv->v_case = LOOM__VALUE__V_REF;
	idv->ref = loom_strdup(id);
	loom__value__init(tv);
	tv->v_case = LOOM__VALUE__V_STR;
	tv->str = loom_strdup(type);
	r->attrs[0] = make_attr("ObjectID", idv);
	r->attrs[1] = make_attr("ObjectType", tv);
	r->type = tv->str;
	r->n = 2;
	for (size_t i = 0; i < n; i++) {
		Loom__Attr *a = attrs[i];
		if (a->n_values == 0) {
			protobuf_c_message_free_unpacked(&a->base, NULL);
			continue;
		}
		mattr_t *s = loom_map_gets(m->schema, a->name);
		if (s == NULL)
			s = schema_add(m, a->name, vtype(a->values[0]), a->n_values > 1);
		if (s->index)
			for (size_t k = 0; k < a->n_values; k++)
				index_value(m, s, a->values[k], rid);
		r->ids[r->n] = s->id;
		r->attrs[r->n++] = a;
	}
	free(attrs);
	loom_map_put(m->ids, low.data, low.len, (void *)(uintptr_t)(rid + 1));
	loom_buf_release(&low);
	rids_t *tr = loom_map_gets(m->types, type);
	if (tr == NULL) {
		tr = loom_calloc(1, sizeof *tr);
		loom_map_puts(m->types, type, tr);
	}
	rids_push(tr, rid);
	if (ret_rid)
		*ret_rid = rid;
	return 0;
fail:
	loom_buf_release(&low);
	free_attrs(attrs, n);
	return -1;
}

int loom_xpath_mem_set(loom_xpath_mem_t *m, loom_xpath_rid_t rid, Loom__Attr *a, char **ret_error)
{
	if (rid >= m->n) {
		*ret_error = loom_sprintf("there is no resource %llu", (unsigned long long)rid);
		goto fail;
	}
	if (strcmp(a->name, "ObjectID") == 0 || strcmp(a->name, "ObjectType") == 0) {
		*ret_error = loom_sprintf("attribute '%s' is made from the resource's own", a->name);
		goto fail;
	}
	if (check_values(m, a, ret_error) < 0)
		goto fail;
	mattr_t *s = loom_map_gets(m->schema, a->name);
	if (s == NULL) {
		if (a->n_values == 0) {
			protobuf_c_message_free_unpacked(&a->base, NULL);
			return 0; /* removing what no resource has */
		}
		s = schema_add(m, a->name, vtype(a->values[0]), a->n_values > 1);
	}
	mres_t *r = &m->res[rid];
	size_t at = r->n;
	for (size_t i = 0; i < r->n; i++)
		if (r->ids[i] == s->id)
			at = i;
	if (at < r->n) {
		Loom__Attr *old = r->attrs[at];
		for (size_t k = 0; s->index && k < old->n_values; k++)
			unindex_value(m, s, old->values[k], rid);
		protobuf_c_message_free_unpacked(&old->base, NULL);
		r->n--;
		memmove(r->attrs + at, r->attrs + at + 1, (r->n - at) * sizeof *r->attrs);
		memmove(r->ids + at, r->ids + at + 1, (r->n - at) * sizeof *r->ids);
	}
	if (a->n_values == 0) {
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return 0;
	}
	/* attrs and ids share one block, ids after n + 1 pointers */
	Loom__Attr **attrs = loom_malloc((r->n + 1) * (sizeof *attrs + sizeof *r->ids));
	uint32_t *ids = (uint32_t *)(attrs + r->n + 1);
	memcpy(attrs, r->attrs, r->n * sizeof *attrs);
	memcpy(ids, r->ids, r->n * sizeof *ids);
	attrs[r->n] = a;
	ids[r->n] = s->id;
	free(r->attrs);
	r->attrs = attrs;
	r->ids = ids;
	r->n++;
	for (size_t k = 0; s->index && k < a->n_values; k++)
		index_value(m, s, a->values[k], rid);
	return 0;
fail:
	protobuf_c_message_free_unpacked(&a->base, NULL);
	return -1;
}

void loom_xpath_mem_add_set(loom_xpath_mem_t *m, loom_xpath_rid_t rid, loom_xpath_t *x, const char *where)
{
	m->sets = loom_realloc(m->sets, (m->nsets + 1) * sizeof *m->sets);
	m->sets[m->nsets].rid = rid;
	m->sets[m->nsets].x = x;
	m->sets[m->nsets].where = loom_strdup(where);
	m->nsets++;
}

static int rid_cmp(const void *a, const void *b)
{
	loom_xpath_rid_t x = *(const loom_xpath_rid_t *)a, y = *(const loom_xpath_rid_t *)b;
	return x < y ? -1 : x > y;
}

/* Appends the resources the reference values of attribute name of rid point at. */
static void push_refs(loom_xpath_mem_t *m, loom_xpath_rid_t rid, const char *name, rids_t *out)
{
	const Loom__Attr *a = mem_attr(m, rid, name);
	for (size_t i = 0; a && i < a->n_values; i++) {
		loom_xpath_rid_t to;
		if (a->values[i]->v_case == LOOM__VALUE__V_REF &&
		    mem_resolve(m, a->values[i]->ref, strlen(a->values[i]->ref), &to) == 0)
			rids_push(out, to);
	}
}

static void sort_unique(rids_t *r)
{
	if (r->n < 2)
		return;
	qsort(r->v, r->n, sizeof *r->v, rid_cmp);
	size_t o = 0;
	for (size_t i = 0; i < r->n; i++)
		if (o == 0 || r->v[o - 1] != r->v[i])
			r->v[o++] = r->v[i];
	r->n = o;
}

int loom_xpath_mem_compute_sets(loom_xpath_mem_t *m, const loom_xpath_eval_opts_t *opts, char **ret_error)
{
	if (m->nsets == 0)
		return 0;
	if (loom_map_gets(m->schema, "ComputedMember") == NULL)
		schema_add(m, "ComputedMember", XT_REF, true);
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(m, &p);
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	rids_t cur = { 0 }, next = { 0 };
	int rc = -1;
	const mset_t *moving = NULL;
	/* a set's filter may read other sets' members: recompute every set until
	 * none changes; n + 1 rounds settle any order of n sets without a cycle */
	for (size_t round = 0; round <= m->nsets; round++) {
		moving = NULL;
		for (size_t i = 0; i < m->nsets; i++) {
			const mset_t *st = &m->sets[i];
			next.n = 0;
			if (st->x) {
				loom_xpath_error_t e;
				if (loom_xpath_eval(st->x, &p, opts, &r, &e) < 0) {
					*ret_error = e.text;
					goto out;
				}
				for (size_t k = 0; k < r.n; k++)
					rids_push(&next, r.rids[k]);
			}
			push_refs(m, st->rid, "ExplicitMember", &next);
			sort_unique(&next);
			cur.n = 0;
			push_refs(m, st->rid, "ComputedMember", &cur);
			sort_unique(&cur);
			if (cur.n == next.n && (cur.n == 0 || memcmp(cur.v, next.v, cur.n * sizeof *cur.v) == 0))
				continue;
			moving = st;
			Loom__Attr *a = loom_malloc(sizeof *a);
			loom__attr__init(a);
			a->name = loom_strdup("ComputedMember");
			a->values = loom_malloc((next.n ? next.n : 1) * sizeof *a->values);
			for (size_t k = 0; k < next.n; k++) {
				Loom__Value *v = loom_malloc(sizeof *v);
				loom__value__init(v);
				v->v_case = LOOM__VALUE__V_REF;
				v->ref = loom_strdup(loom_xpath_mem_object_id(m, next.v[k]));
				a->values[a->n_values++] = v;
			}
			char *err = NULL;
			if (loom_xpath_mem_set(m, st->rid, a, &err) < 0) {
				*ret_error = loom_sprintf("%s%sset '%s': %s", st->where ? st->where : "", st->where ? ": " : "",
				    loom_xpath_mem_object_id(m, st->rid), err);
				free(err);
				goto out;
			}
		}
		if (moving == NULL) {
			rc = 0;
			goto out;
		}
	}
	*ret_error = loom_sprintf("%s%sthe members of set '%s' do not settle: its filter depends on a set whose "
	    "members depend on it", moving->where ? moving->where : "", moving->where ? ": " : "",
	    loom_xpath_mem_object_id(m, moving->rid));
out:
	free(cur.v);
	free(next.v);
	loom_xpath_result_release(&r);
	return rc;
}

size_t loom_xpath_mem_count(const loom_xpath_mem_t *m)
{
	return m->n;
}

const char *loom_xpath_mem_object_id(const loom_xpath_mem_t *m, loom_xpath_rid_t rid)
{
	return rid < m->n ? m->res[rid].attrs[0]->values[0]->ref : NULL;
}

size_t loom_xpath_mem_index_lookups(const loom_xpath_mem_t *m)
{
	return m->lookups;
}

/* ---- the provider ---------------------------------------------------------------------------- */

static int mem_scan(void *arg, const char *type, loom_xpath_visit_fn *fn, void *varg, char **ret_error)
{
	(void)ret_error;
	loom_xpath_mem_t *m = arg;
	int rc;
	if (type == NULL) {
		for (size_t i = 0; i < m->n; i++)
			if ((rc = fn(varg, i)) != 0)
				return rc;
		return 0;
	}
	const rids_t *r = loom_map_gets(m->types, type);
	for (size_t i = 0; r && i < r->n; i++)
		if ((rc = fn(varg, r->v[i])) != 0)
			return rc;
	return 0;
}

static const char *mem_object_type(void *arg, loom_xpath_rid_t rid)
{
	loom_xpath_mem_t *m = arg;
	return rid < m->n ? m->res[rid].type : NULL;
}

static const Loom__Attr *mem_attr(void *arg, loom_xpath_rid_t rid, const char *name)
{
	loom_xpath_mem_t *m = arg;
	if (rid >= m->n)
		return NULL;
	size_t slot = ((uintptr_t)name >> 4) % NAME_CACHE;
	uint32_t id;
	if (m->cache[slot].p == name && strcmp(m->names[m->cache[slot].id]->name, name) == 0) {
		id = m->cache[slot].id;
	} else {
		const mattr_t *a = loom_map_gets(m->schema, name);
		if (a == NULL)
			return NULL;
		id = a->id;
		m->cache[slot].p = name;
		m->cache[slot].id = id;
	}
	const mres_t *r = &m->res[rid];
	for (size_t i = 0; i < r->n; i++)
		if (r->ids[i] == id)
			return r->attrs[i];
	return NULL;
}

static int mem_resolve(void *arg, const char *id, size_t len, loom_xpath_rid_t *ret)
{
	loom_xpath_mem_t *m = arg;
	loom_buf_reset(&m->key);
	loom_buf_add(&m->key, id, len);
	for (size_t i = 0; i < len; i++)
		m->key.data[i] = (char)tolower((unsigned char)m->key.data[i]);
	void *v = loom_map_get(m->ids, m->key.data, len);
	if (v == NULL)
		return 1;
	*ret = (loom_xpath_rid_t)((uintptr_t)v - 1);
	return 0;
}

static int mem_attr_info(void *arg, const char *name, loom_xpath_attr_info_t *ret)
{
	loom_xpath_mem_t *m = arg;
	const mattr_t *a = loom_map_gets(m->schema, name);
	if (a == NULL)
		return 1;
	*ret = a->info;
	return 0;
}

static int mem_find_eq(void *arg, const char *type, const char *attr, const Loom__Value *v, loom_xpath_visit_fn *fn,
    void *varg, char **ret_error)
{
	(void)ret_error;
	loom_xpath_mem_t *m = arg;
	mattr_t *a = loom_map_gets(m->schema, attr);
	if (a == NULL)
		return LOOM_XPATH_NO_INDEX;
	if (a->index == NULL) {
		a->index = loom_map_new();
		for (size_t i = 0; i < m->n; i++) {
			const Loom__Attr *at = mem_attr(m, i, attr);
			for (size_t k = 0; at && k < at->n_values; k++)
				index_value(m, a, at->values[k], i);
		}
	}
	m->lookups++;
	const char *k = value_key(m, v);
	const rids_t *r = loom_map_get(a->index, k, m->key.len);
	int rc;
	for (size_t i = 0; r && i < r->n; i++) {
		if (type && strcmp(m->res[r->v[i]].type, type) != 0)
			continue;
		if ((rc = fn(varg, r->v[i])) != 0)
			return rc;
	}
	return 0;
}

void loom_xpath_mem_provider(loom_xpath_mem_t *m, loom_xpath_provider_t *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->arg = m;
	ret->scan = mem_scan;
	ret->object_type = mem_object_type;
	ret->attr = mem_attr;
	ret->resolve = mem_resolve;
	ret->attr_info = mem_attr_info;
	ret->find_eq = mem_find_eq;
}

/* ---- the YAML resources file ------------------------------------------------------------------- */

/* A scalar as written, with where it is. */
typedef struct yval {
	char *text;                /* the scalar */
	size_t len;                /* its bytes */
	bool plain;                /* unquoted: typed as YAML types plain scalars */
	unsigned line;             /* where it starts (1-based) */
	unsigned col;              /* and its column */
	int type;                  /* XT_*, 0 for no value (null, ~, '') */
} yval_t;

typedef struct yattr {
	char *name;                /* the key */
	unsigned line;             /* where the key is */
	unsigned col;              /* and its column */
	bool list;                 /* written as a list */
	yval_t *v;                 /* the values */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
} yattr_t;

typedef struct yres {
	unsigned line;             /* where the map starts */
	unsigned col;              /* and its column */
	yattr_t *a;                /* its keys */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
} yres_t;

typedef struct yload {
	const char *name;          /* file name for messages */
	yres_t *r;                 /* the resources */
	size_t n;                  /* how many */
	size_t cap;                /* slots allocated */
	char *error;               /* the first error */
} yload_t;

__attribute__((format(printf, 4, 5)))
static int yfail(yload_t *y, unsigned line, unsigned col, const char *fmt, ...)
{
	if (y->error)
		return -1;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "%s:%u:%u: ", y->name, line, col);
	va_list ap;
	va_start(ap, fmt);
	loom_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	y->error = loom_buf_steal(&b);
	return -1;
}

static void yload_free(yload_t *y)
{
	for (size_t i = 0; i < y->n; i++) {
		for (size_t k = 0; k < y->r[i].n; k++) {
			yattr_t *a = &y->r[i].a[k];
			for (size_t j = 0; j < a->n; j++)
				free(a->v[j].text);
			free(a->v);
			free(a->name);
		}
		free(y->r[i].a);
	}
	free(y->r);
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Types a scalar the way YAML 1.2's core schema does (plain scalars only),
 * with ISO 8601 datetimes; reports what FIM has no type for. */
static int type_scalar(yload_t *y, yval_t *v, const char *attr)
{
	const char *s = v->text;
	size_t n = v->len;
	if (!v->plain) {
		v->type = n ? XT_STRING : 0;
		return 0;
	}
	if (n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0) {
		v->type = 0;
		return 0;
	}
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
		v->type = XT_BOOL;
		return 0;
	}
	size_t d = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (all_digits(s + d, n - d)) {
		errno = 0;
		(void)strtoll(s, NULL, 10);
		if (errno)
			return yfail(y, v->line, v->col, "attribute '%s': integer '%s' is out of range", attr, s);
		v->type = XT_INT;
		return 0;
	}
	int64_t t;
	if (n >= 10 && all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) && s[7] == '-') {
		if (loom_xpath_parse_time(s, n, &t) < 0)
			return yfail(y, v->line, v->col, "attribute '%s': '%s' is not a datetime such as 2026-01-02T03:04:05Z "
			    "or 2026-01-02 (quote it to make it a string)", attr, s);
		v->type = XT_TIME;
		return 0;
	}
	char *end;
	errno = 0;
	(void)strtod(s, &end);
	if ((size_t)(end - s) == n && n && (isdigit((unsigned char)s[d]) || s[d] == '.'))
		return yfail(y, v->line, v->col, "attribute '%s': '%s' is a decimal number, and resources have no "
		    "decimal type (quote it to make it a string)", attr, s);
	v->type = XT_STRING;
	return 0;
}

/* Reads the events of the document into y. */
static int yread(yload_t *y, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	/* where we are: 0 before the list, 1 in the list, 2 in a map (expecting
	 * a key), 3 after a key (expecting a value), 4 in a value's list */
	int state = 0, docs = 0, rc = 0;
	bool done = false;
	yres_t *res = NULL;
	yattr_t *cur = NULL;
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			if (parser.error == YAML_MEMORY_ERROR)
				abort();
			rc = yfail(y, (unsigned)parser.problem_mark.line + 1, (unsigned)parser.problem_mark.column + 1, "%s%s%s",
			    parser.problem ? parser.problem : "malformed YAML", parser.context ? " " : "",
			    parser.context ? parser.context : "");
			break;
		}
		unsigned line = (unsigned)ev.start_mark.line + 1, col = (unsigned)ev.start_mark.column + 1;
		const char *anchor = NULL, *tag = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = yfail(y, line, col, "expected one document, found a second one");
			break;
		case YAML_SEQUENCE_START_EVENT:
			anchor = (const char *)ev.data.sequence_start.anchor;
			tag = (const char *)ev.data.sequence_start.tag;
			if (state == 0) {
				state = 1;
			} else if (state == 3) {
				cur->list = true;
				state = 4;
			} else {
				rc = yfail(y, line, col, state == 4 ? "attribute '%s': expected a value, found a list inside the "
				    "list" : "expected a map of attributes (ObjectType, ObjectID, ...), found a list",
				    cur ? cur->name : "");
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
			state = state == 4 ? 2 : 5;
			break;
		case YAML_MAPPING_START_EVENT:
			anchor = (const char *)ev.data.mapping_start.anchor;
			tag = (const char *)ev.data.mapping_start.tag;
			if (state == 1) {
				if (y->n == y->cap) {
					y->cap = y->cap ? 2 * y->cap : 64;
					y->r = loom_realloc(y->r, y->cap * sizeof *y->r);
				}
				res = &y->r[y->n++];
				memset(res, 0, sizeof *res);
				res->line = line;
				res->col = col;
				state = 2;
			} else if (state == 0) {
				rc = yfail(y, line, col, "expected a list of resources (each '- ObjectType: ...'), found a map");
			} else {
				rc = yfail(y, line, col, "attribute '%s': expected a value or a list of values, found a map",
				    cur ? cur->name : "");
			}
			break;
		case YAML_MAPPING_END_EVENT:
			state = 1;
			break;
		case YAML_ALIAS_EVENT:
			rc = yfail(y, line, col, "aliases (*%s) are not allowed in a resources file",
			    (const char *)ev.data.alias.anchor);
			break;
		case YAML_SCALAR_EVENT: {
			anchor = (const char *)ev.data.scalar.anchor;
			tag = (const char *)ev.data.scalar.tag;
			const char *s = (const char *)ev.data.scalar.value;
			size_t n = ev.data.scalar.length;
			if (state == 0) {
				if (n == 0 && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
					break; /* an empty document: no resources */
				rc = yfail(y, line, col, "expected a list of resources (each '- ObjectType: ...'), found '%.*s'",
				    (int)(n > 40 ? 40 : n), s);
			} else if (state == 1) {
				rc = yfail(y, line, col, "expected a map of attributes (ObjectType, ObjectID, ...), found '%.*s'",
				    (int)(n > 40 ? 40 : n), s);
			} else if (state == 2) {
				for (size_t i = 0; i < res->n; i++)
					if (strcmp(res->a[i].name, s) == 0) {
						rc = yfail(y, line, col, "attribute '%s' is given twice (first at line %u)", s,
						    res->a[i].line);
						break;
					}
				if (rc)
					break;
				if (n == 0 || memchr(s, ' ', n)) {
					rc = yfail(y, line, col, "expected an attribute name, found '%.*s'", (int)n, s);
					break;
				}
				if (res->n == res->cap) {
					res->cap = res->cap ? 2 * res->cap : 8;
					res->a = loom_realloc(res->a, res->cap * sizeof *res->a);
				}
				cur = &res->a[res->n++];
				memset(cur, 0, sizeof *cur);
				cur->name = loom_strndup(s, n);
				cur->line = line;
				cur->col = col;
				state = 3;
			} else {
				if (cur->n == cur->cap) {
					cur->cap = cur->cap ? 2 * cur->cap : 2;
					cur->v = loom_realloc(cur->v, cur->cap * sizeof *cur->v);
				}
				yval_t *v = &cur->v[cur->n++];
				memset(v, 0, sizeof *v);
				v->text = loom_strndup(s, n);
				v->len = n;
				v->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
				v->line = line;
				v->col = col;
				if (state == 3)
					state = 2;
			}
			break;
		}
		default:
			break;
		}
		if (rc == 0 && anchor)
			rc = yfail(y, line, col, "anchors (&%s) are not allowed in a resources file", anchor);
		if (rc == 0 && tag)
			rc = yfail(y, line, col, "tags (%s) are not allowed in a resources file: values are typed by how they "
			    "are written", tag);
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	yaml_parser_delete(&parser);
	return rc;
}

typedef struct ytype {
	int type;                  /* XT_*, 0 until a value says */
	bool multi;                /* written as a list somewhere */
	unsigned line;             /* where the type was first seen */
	unsigned col;              /* and its column */
	bool is_ref;               /* a string value is an ObjectID of the file */
} ytype_t;

/* A Set or Group with a Filter or ExplicitMember and no ComputedMember:
 * compiles its filter and adds it to the sets to compute. */
static int yset(loom_xpath_mem_t *m, yload_t *y, const yres_t *r, loom_xpath_rid_t rid)
{
	const yattr_t *filter = NULL;
	bool explicit = false;
	for (size_t k = 0; k < r->n; k++) {
		if (strcmp(r->a[k].name, "ComputedMember") == 0)
			return 0; /* given: what the service computed */
		if (strcmp(r->a[k].name, "ExplicitMember") == 0)
			explicit = true;
		if (strcmp(r->a[k].name, "Filter") == 0 && r->a[k].n > 0 && r->a[k].v[0].type != 0)
			filter = &r->a[k];
	}
	if (filter == NULL && !explicit)
		return 0;
	loom_xpath_t *x = NULL;
	char where[512] = "";
	if (filter) {
		const yval_t *v = &filter->v[0];
		if (v->type != XT_STRING || filter->n != 1)
			return yfail(y, v->line, v->col, "a Filter is one string");
		loom_xpath_compile_opts_t o = { .file = y->name, .line = v->line, .column = v->col + (v->plain ? 0 : 1) };
		loom_xpath_error_t e;
		if (loom_xpath_compile(v->text, &o, &x, &e) < 0) {
			if (y->error == NULL)
				y->error = e.text;
			else
				free(e.text);
			return -1;
		}
		snprintf(where, sizeof where, "%s:%u:%u", y->name, o.line, o.column);
	}
	loom_xpath_mem_add_set(m, rid, x, filter ? where : NULL);
	return 0;
}

static int yconvert(loom_xpath_mem_t *m, yload_t *y)
{
	loom_map_t *ids = loom_map_new(), *types = loom_map_new();
	yattr_t **oid = loom_calloc(y->n ? y->n : 1, sizeof *oid), **otype = loom_calloc(y->n ? y->n : 1, sizeof *otype);
	loom_buf_t low = LOOM_BUF_INIT;
	int rc = 0;
	/* ObjectID and ObjectType of each resource; the ids */
	for (size_t i = 0; i < y->n && rc == 0; i++) {
		yres_t *r = &y->r[i];
		for (size_t k = 0; k < r->n; k++) {
			yattr_t *a = &r->a[k];
			bool is_id = strcmp(a->name, "ObjectID") == 0, is_type = strcmp(a->name, "ObjectType") == 0;
			if (!is_id && !is_type)
				continue;
			if (a->list || a->n != 1 || a->v[0].len == 0) {
				rc = yfail(y, a->line, a->col, "%s must be one non-empty value", a->name);
				break;
			}
			if (is_id)
				oid[i] = a;
			else
				otype[i] = a;
		}
		if (rc)
			break;
		if (oid[i] == NULL || otype[i] == NULL) {
			rc = yfail(y, r->line, r->col, "the resource has no %s", oid[i] ? "ObjectType" : "ObjectID");
			break;
		}
		loom_buf_reset(&low);
		loom_buf_add(&low, oid[i]->v[0].text, oid[i]->v[0].len);
		for (size_t k = 0; k < low.len; k++)
			low.data[k] = (char)tolower((unsigned char)low.data[k]);
		yval_t *prev = loom_map_get(ids, low.data, low.len);
		if (prev)
			rc = yfail(y, oid[i]->v[0].line, oid[i]->v[0].col, "ObjectID '%s' is given to two resources (first at "
			    "line %u)", oid[i]->v[0].text, prev->line);
		else
			loom_map_put(ids, low.data, low.len, &oid[i]->v[0]);
	}
	/* the type of every attribute */
	for (size_t i = 0; i < y->n && rc == 0; i++) {
		yres_t *r = &y->r[i];
		for (size_t k = 0; k < r->n && rc == 0; k++) {
			yattr_t *a = &r->a[k];
			if (a == oid[i] || a == otype[i])
				continue;
			ytype_t *t = loom_map_gets(types, a->name);
			if (t == NULL) {
				t = loom_calloc(1, sizeof *t);
				loom_map_puts(types, a->name, t);
			}
			if (a->list)
				t->multi = true;
			for (size_t j = 0; j < a->n && rc == 0; j++) {
				yval_t *v = &a->v[j];
				if ((rc = type_scalar(y, v, a->name)) < 0)
					break;
				if (v->type == 0)
					continue;
				if (t->type == 0) {
					t->type = v->type;
					t->line = v->line;
					t->col = v->col;
				} else if (t->type != v->type) {
					rc = yfail(y, v->line, v->col, "attribute '%s' holds %s here and %s at line %u, column %u "
					    "(an attribute has one type)", a->name, type_names[v->type], type_names[t->type], t->line,
					    t->col);
					break;
				}
				if (v->type == XT_STRING) {
					loom_buf_reset(&low);
					loom_buf_add(&low, v->text, v->len);
					for (size_t q = 0; q < low.len; q++)
						low.data[q] = (char)tolower((unsigned char)low.data[q]);
					if (loom_map_get(ids, low.data, low.len))
						t->is_ref = true;
				}
			}
		}
	}
	if (rc == 0) {
		size_t pos = 0;
		const void *key;
		size_t klen;
		void *val;
		char *err = NULL;
		while (rc == 0 && loom_map_next(types, &pos, &key, &klen, &val)) {
			ytype_t *t = val;
			if (t->type == 0)
				continue; /* never has a value */
			char *name = loom_strndup(key, klen);
			if (t->type == XT_STRING && t->is_ref)
				t->type = XT_REF;
			if (loom_xpath_mem_declare(m, name, t->type, t->multi, &err) < 0) {
				rc = yfail(y, t->line, t->col, "%s", err);
				free(err);
			}
			free(name);
		}
	}
	/* the resources */
	for (size_t i = 0; i < y->n && rc == 0; i++) {
		yres_t *r = &y->r[i];
		Loom__Attr **attrs = loom_calloc(r->n ? r->n : 1, sizeof *attrs);
		size_t na = 0;
		for (size_t k = 0; k < r->n; k++) {
			yattr_t *a = &r->a[k];
			if (a == oid[i] || a == otype[i])
				continue;
			const ytype_t *t = loom_map_gets(types, a->name);
			Loom__Attr *at = loom_malloc(sizeof *at);
			loom__attr__init(at);
			at->name = loom_strdup(a->name);
			at->values = loom_calloc(a->n ? a->n : 1, sizeof *at->values);
			for (size_t j = 0; j < a->n; j++) {
				yval_t *v = &a->v[j];
				if (v->type == 0)
					continue;
				Loom__Value *val = loom_malloc(sizeof *val);
				loom__value__init(val);
				switch (t->type) {
				case XT_STRING: val->v_case = LOOM__VALUE__V_STR; val->str = loom_strdup(v->text); break;
				case XT_REF: val->v_case = LOOM__VALUE__V_REF; val->ref = loom_strdup(v->text); break;
				case XT_INT: val->v_case = LOOM__VALUE__V_INT; val->int_ = strtoll(v->text, NULL, 10); break;
				case XT_BOOL: val->v_case = LOOM__VALUE__V_BOOL; val->bool_ = tolower((unsigned char)v->text[0]) == 't'; break;
				case XT_TIME:
					val->v_case = LOOM__VALUE__V_TIME;
					loom_xpath_parse_time(v->text, v->len, &val->time);
					break;
				}
				/* a value given twice is one value (attributes are sets) */
				bool dup = false;
				for (size_t q = 0; q < at->n_values && !dup; q++)
					dup = loom_value_eq(at->values[q], val);
				if (dup)
					loom_value_free(val);
				else
					at->values[at->n_values++] = val;
			}
			attrs[na++] = at;
		}
		char *err = NULL;
		loom_xpath_rid_t rid;
		if (loom_xpath_mem_add(m, otype[i]->v[0].text, oid[i]->v[0].text, attrs, na, &rid, &err) < 0) {
			rc = yfail(y, r->line, r->col, "%s", err);
			free(err);
		} else if (strcmp(otype[i]->v[0].text, "Set") == 0 || strcmp(otype[i]->v[0].text, "Group") == 0) {
			rc = yset(m, y, r, rid);
		}
	}
	size_t pos = 0;
	void *val;
	while (loom_map_next(types, &pos, NULL, NULL, &val))
		free(val);
	loom_map_destroy(&types);
	loom_map_destroy(&ids);
	loom_buf_release(&low);
	free(oid);
	free(otype);
	return rc;
}

int loom_xpath_mem_load_yaml_string(loom_xpath_mem_t *m, const char *name, const char *text, size_t len,
    char **ret_error)
{
	if (m->n) {
		*ret_error = loom_sprintf("%s: resources are loaded into an empty store only", name);
		return -1;
	}
	yload_t y = { .name = name };
	int rc = yread(&y, text, len);
	if (rc == 0)
		rc = yconvert(m, &y);
	yload_free(&y);
	if (rc < 0) {
		*ret_error = y.error ? y.error : loom_sprintf("%s: cannot load resources", name);
		/* nothing half-loaded: empty the store again */
		loom_xpath_mem_t *fresh = loom_xpath_mem_new();
		loom_xpath_mem_t tmp = *m;
		*m = *fresh;
		*fresh = tmp;
		loom_xpath_mem_destroy(&fresh);
		return -1;
	}
	return 0;
}

int loom_xpath_mem_load_yaml(loom_xpath_mem_t *m, const char *path, char **ret_error)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		loom_buf_add(&b, chunk, n);
	if (ferror(f)) {
		*ret_error = loom_sprintf("cannot read '%s': %s", path, strerror(errno));
		fclose(f);
		loom_buf_release(&b);
		return -1;
	}
	fclose(f);
	int rc = loom_xpath_mem_load_yaml_string(m, path, loom_buf_cstr(&b), b.len, ret_error);
	loom_buf_release(&b);
	return rc;
}
