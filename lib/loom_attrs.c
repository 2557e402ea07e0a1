/* loom_attrs.c - typed multi-valued attributes and deltas. */
#include "loom_attrs.h"
#include "loom_alloc.h"
#include "loom_map.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

const Loom__Attr *loom_attr_find(Loom__Attr *const *attrs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(attrs[i]->name, name) == 0)
			return attrs[i];
	return NULL;
}

bool loom_value_eq(const Loom__Value *a, const Loom__Value *b)
{
	if (a->v_case != b->v_case)
		return false;
	switch (a->v_case) {
	case LOOM__VALUE__V_STR: return strcmp(a->str, b->str) == 0;
	case LOOM__VALUE__V_REF: return strcasecmp(a->ref, b->ref) == 0;
	case LOOM__VALUE__V_INT: return a->int_ == b->int_;
	case LOOM__VALUE__V_TIME: return a->time == b->time;
	case LOOM__VALUE__V_BOOL: return !a->bool_ == !b->bool_;
	case LOOM__VALUE__V_BIN:
		return a->bin.len == b->bin.len && (a->bin.len == 0 || memcmp(a->bin.data, b->bin.data, a->bin.len) == 0);
	default: return true;
	}
}

void loom_value_text(loom_buf_t *out, const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: loom_buf_adds(out, v->str); break;
	case LOOM__VALUE__V_REF: loom_buf_adds(out, v->ref); break;
	case LOOM__VALUE__V_INT: loom_buf_printf(out, "%lld", (long long)v->int_); break;
	case LOOM__VALUE__V_TIME: loom_buf_printf(out, "%lld", (long long)v->time); break;
	case LOOM__VALUE__V_BOOL: loom_buf_adds(out, v->bool_ ? "true" : "false"); break;
	case LOOM__VALUE__V_BIN: loom_buf_add_hex(out, v->bin.data, v->bin.len); break;
	default: break;
	}
}

void loom_value_key(loom_buf_t *out, const Loom__Value *v)
{
	size_t start = out->len;
	loom_value_text(out, v);
	if (v->v_case == LOOM__VALUE__V_STR || v->v_case == LOOM__VALUE__V_REF)
		for (size_t i = start; i < out->len; i++)
			out->data[i] = (char)tolower((unsigned char)out->data[i]);
}

Loom__Value *loom_value_dup(const Loom__Value *v)
{
	Loom__Value *d = loom_malloc(sizeof *d);
	loom__value__init(d);
	d->v_case = v->v_case;
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: d->str = loom_strdup(v->str); break;
	case LOOM__VALUE__V_REF: d->ref = loom_strdup(v->ref); break;
	case LOOM__VALUE__V_INT: d->int_ = v->int_; break;
	case LOOM__VALUE__V_TIME: d->time = v->time; break;
	case LOOM__VALUE__V_BOOL: d->bool_ = v->bool_; break;
	case LOOM__VALUE__V_BIN:
		d->bin.len = v->bin.len;
		d->bin.data = v->bin.len ? loom_memdup(v->bin.data, v->bin.len) : NULL;
		break;
	default: break;
	}
	return d;
}

Loom__Value *loom_value_str(const char *s, size_t len)
{
	Loom__Value *d = loom_malloc(sizeof *d);
	loom__value__init(d);
	d->v_case = LOOM__VALUE__V_STR;
	d->str = loom_strndup(s, len);
	return d;
}

void loom_value_free(Loom__Value *v)
{
	if (v)
		protobuf_c_message_free_unpacked(&v->base, NULL);
}

/* ---- value sets ---- */

/* Below this many values a linear scan beats building a hash. */
#define VSET_MIN 8

struct loom_vset {
	loom_map_t *m;                 /* identity -> (void *)1 */
	loom_buf_t k;                  /* reused identity buffer */
};

/* The value's identity: its type, then its text (references lower-cased,
 * as loom_value_eq compares them). */
static void value_ident(loom_buf_t *b, const Loom__Value *v)
{
	loom_buf_reset(b);
	loom_buf_addc(b, (char)('0' + v->v_case));
	size_t start = b->len;
	loom_value_text(b, v);
	if (v->v_case == LOOM__VALUE__V_REF)
		for (size_t i = start; i < b->len; i++)
			b->data[i] = (char)tolower((unsigned char)b->data[i]);
}

loom_vset_t *loom_vset_new(Loom__Value *const *v, size_t n)
{
	loom_vset_t *s = loom_calloc(1, sizeof *s);
	s->m = loom_map_new();
	for (size_t i = 0; i < n; i++)
		loom_vset_add(s, v[i]);
	return s;
}

bool loom_vset_has(loom_vset_t *s, const Loom__Value *v)
{
	value_ident(&s->k, v);
	return loom_map_get(s->m, s->k.data, s->k.len) != NULL;
}

bool loom_vset_add(loom_vset_t *s, const Loom__Value *v)
{
	value_ident(&s->k, v);
	return loom_map_put(s->m, s->k.data, s->k.len, (void *)1) == NULL;
}

bool loom_vset_remove(loom_vset_t *s, const Loom__Value *v)
{
	value_ident(&s->k, v);
	return loom_map_remove(s->m, s->k.data, s->k.len) != NULL;
}

size_t loom_vset_count(const loom_vset_t *s)
{
	return loom_map_count(s->m);
}

void loom_vset_free(loom_vset_t **sp)
{
	loom_vset_t *s = *sp;
	if (s == NULL)
		return;
	loom_map_destroy(&s->m);
	loom_buf_release(&s->k);
	free(s);
	*sp = NULL;
}

bool loom_values_same(Loom__Value *const *a, size_t na, Loom__Value *const *b, size_t nb)
{
	if (na != nb)
		return false;
	if (na <= VSET_MIN) {
		for (size_t i = 0; i < na; i++) {
			bool found = false;
			for (size_t k = 0; k < nb && !found; k++)
				found = loom_value_eq(a[i], b[k]);
			if (!found)
				return false;
		}
		return true;
	}
	loom_vset_t *s = loom_vset_new(b, nb);
	bool same = true;
	for (size_t i = 0; i < na && same; i++)
		same = loom_vset_has(s, a[i]);
	loom_vset_free(&s);
	return same;
}

static Loom__Attr *attr_new(const char *name)
{
	Loom__Attr *a = loom_malloc(sizeof *a);
	loom__attr__init(a);
	a->name = loom_strdup(name);
	return a;
}

static bool has_value(const Loom__Attr *a, const Loom__Value *v)
{
	for (size_t i = 0; i < a->n_values; i++)
		if (loom_value_eq(a->values[i], v))
			return true;
	return false;
}

static void attr_clear(Loom__Attr *a)
{
	for (size_t i = 0; i < a->n_values; i++)
		loom_value_free(a->values[i]);
	free(a->values);
	a->values = NULL;
	a->n_values = 0;
}

static void attr_remove_at(Loom__Attr ***attrs, size_t *n, size_t i)
{
	protobuf_c_message_free_unpacked(&(*attrs)[i]->base, NULL);
	memmove(&(*attrs)[i], &(*attrs)[i + 1], (*n - i - 1) * sizeof **attrs);
	(*n)--;
}

static ssize_t attr_index(Loom__Attr **attrs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(attrs[i]->name, name) == 0)
			return (ssize_t)i;
	return -1;
}

void loom_attrs_set(Loom__Attr ***attrs, size_t *n, const char *name, Loom__Value *const *vals, size_t nvals)
{
	ssize_t i = attr_index(*attrs, *n, name);
	if (nvals == 0) {
		if (i >= 0)
			attr_remove_at(attrs, n, (size_t)i);
		return;
	}
	Loom__Attr *a;
	if (i < 0) {
		*attrs = loom_realloc(*attrs, (*n + 1) * sizeof **attrs);
		a = (*attrs)[(*n)++] = attr_new(name);
	} else {
		a = (*attrs)[i];
		attr_clear(a);
	}
	a->values = loom_malloc(nvals * sizeof *a->values);
	loom_vset_t *seen = nvals > VSET_MIN ? loom_vset_new(NULL, 0) : NULL;
	for (size_t k = 0; k < nvals; k++)
		if (seen ? loom_vset_add(seen, vals[k]) : !has_value(a, vals[k]))
			a->values[a->n_values++] = loom_value_dup(vals[k]);
	loom_vset_free(&seen);
}

void loom_attrs_apply(Loom__Attr ***attrs, size_t *n, Loom__AttrDelta *const *deltas, size_t nd)
{
	for (size_t d = 0; d < nd; d++) {
		const Loom__AttrDelta *dl = deltas[d];
		ssize_t i = attr_index(*attrs, *n, dl->name);
		switch (dl->op) {
		case LOOM__ATTR_DELTA__OP__REPLACE:
			loom_attrs_set(attrs, n, dl->name, dl->values, dl->n_values);
			break;
		case LOOM__ATTR_DELTA__OP__ADD: {
			if (dl->n_values == 0)
				break;
			Loom__Attr *a;
			if (i < 0) {
				*attrs = loom_realloc(*attrs, (*n + 1) * sizeof **attrs);
				a = (*attrs)[(*n)++] = attr_new(dl->name);
			} else {
				a = (*attrs)[i];
			}
			loom_vset_t *have = a->n_values + dl->n_values > VSET_MIN ? loom_vset_new(a->values, a->n_values) : NULL;
			a->values = loom_realloc(a->values, (a->n_values + dl->n_values) * sizeof *a->values);
			for (size_t k = 0; k < dl->n_values; k++) {
				if (have ? !loom_vset_add(have, dl->values[k]) : has_value(a, dl->values[k]))
					continue;
				a->values[a->n_values++] = loom_value_dup(dl->values[k]);
			}
			loom_vset_free(&have);
			break;
		}
		case LOOM__ATTR_DELTA__OP__DELETE: {
			if (i < 0)
				break;
			Loom__Attr *a = (*attrs)[i];
			if (dl->n_values == 0) {
				attr_remove_at(attrs, n, (size_t)i);
				break;
			}
			size_t j = 0;
			loom_vset_t *gone = dl->n_values > VSET_MIN ? loom_vset_new(dl->values, dl->n_values) : NULL;
			for (size_t k = 0; k < a->n_values; k++) {
				bool drop = gone && loom_vset_has(gone, a->values[k]);
				for (size_t m = 0; !gone && m < dl->n_values && !drop; m++)
					drop = loom_value_eq(a->values[k], dl->values[m]);
				if (drop)
					loom_value_free(a->values[k]);
				else
					a->values[j++] = a->values[k];
			}
			loom_vset_free(&gone);
			a->n_values = j;
			if (j == 0)
				attr_remove_at(attrs, n, (size_t)i);
			break;
		}
		default:
			break;
		}
	}
}

bool loom_attr_values_eq(const Loom__Attr *a, const Loom__Attr *b)
{
	/* Order does not matter for multi-valued attributes. */
	return loom_values_same(a ? a->values : NULL, a ? a->n_values : 0, b ? b->values : NULL, b ? b->n_values : 0);
}

static Loom__AttrDelta *delta_replace(const char *name, const Loom__Attr *to)
{
	Loom__AttrDelta *d = loom_malloc(sizeof *d);
	loom__attr_delta__init(d);
	d->name = loom_strdup(name);
	d->op = LOOM__ATTR_DELTA__OP__REPLACE;
	if (to && to->n_values) {
		d->values = loom_malloc(to->n_values * sizeof *d->values);
		for (size_t i = 0; i < to->n_values; i++)
			d->values[d->n_values++] = loom_value_dup(to->values[i]);
	}
	return d;
}

/* One side's values missing from the other, as an ADD or DELETE delta (NULL when none). */
static Loom__AttrDelta *delta_missing(const char *name, Loom__AttrDelta__Op op, const Loom__Attr *a, loom_vset_t *other)
{
	Loom__AttrDelta *d = NULL;
	for (size_t i = 0; i < a->n_values; i++) {
		if (loom_vset_has(other, a->values[i]))
			continue;
		if (d == NULL) {
			d = loom_malloc(sizeof *d);
			loom__attr_delta__init(d);
			d->name = loom_strdup(name);
			d->op = op;
			d->values = loom_malloc(a->n_values * sizeof *d->values);
		}
		d->values[d->n_values++] = loom_value_dup(a->values[i]);
	}
	return d;
}

/* A change to a multi-valued attribute as the values added and removed (a
 * member joining a 50,000-member group is one value, not 50,001). Returns
 * false, appending nothing, when that is not smaller than a REPLACE. */
static bool diff_values(const Loom__Attr *from, const Loom__Attr *to, Loom__AttrDelta ***v, size_t *n)
{
	loom_vset_t *sf = loom_vset_new(from->values, from->n_values);
	loom_vset_t *st = loom_vset_new(to->values, to->n_values);
	Loom__AttrDelta *add = delta_missing(to->name, LOOM__ATTR_DELTA__OP__ADD, to, sf);
	Loom__AttrDelta *del = delta_missing(to->name, LOOM__ATTR_DELTA__OP__DELETE, from, st);
	loom_vset_free(&sf);
	loom_vset_free(&st);
	size_t changes = (add ? add->n_values : 0) + (del ? del->n_values : 0);
	if (changes >= to->n_values) {
		if (add)
			protobuf_c_message_free_unpacked(&add->base, NULL);
		if (del)
			protobuf_c_message_free_unpacked(&del->base, NULL);
		return false;
	}
	*v = loom_realloc(*v, (*n + 2) * sizeof **v);
	if (del)
		(*v)[(*n)++] = del;
	if (add)
		(*v)[(*n)++] = add;
	return true;
}

void loom_attrs_diff(Loom__Attr *const *from, size_t nfrom, Loom__Attr *const *to, size_t nto,
    Loom__AttrDelta ***ret, size_t *ret_n)
{
	Loom__AttrDelta **v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < nto; i++) {
		const Loom__Attr *old = loom_attr_find(from, nfrom, to[i]->name);
		if (loom_attr_values_eq(old, to[i]))
			continue;
		if (old && old->n_values && to[i]->n_values && old->n_values + to[i]->n_values > 2 &&
		    diff_values(old, to[i], &v, &n))
			continue;
		v = loom_realloc(v, (n + 1) * sizeof *v);
		v[n++] = delta_replace(to[i]->name, to[i]);
	}
	for (size_t i = 0; i < nfrom; i++) {
		if (from[i]->n_values && loom_attr_find(to, nto, from[i]->name) == NULL) {
			v = loom_realloc(v, (n + 1) * sizeof *v);
			v[n++] = delta_replace(from[i]->name, NULL);
		}
	}
	*ret = v;
	*ret_n = n;
}

void loom_deltas_free(Loom__AttrDelta **d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&d[i]->base, NULL);
	free(d);
}

void loom_attrs_free(Loom__Attr **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	free(v);
}

void loom_pb_str_set(char **field, const char *v)
{
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = loom_strdup(v ? v : "");
}
