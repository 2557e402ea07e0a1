/* workflow_schemares.c - the schema as resources, changed by requests
 * (docs/policy.md, "The schema as resources").
 *
 * As in FIM, every attribute is an AttributeTypeDescription (Name,
 * DataType, Multivalued, StringRegex, Description), every object type an
 * ObjectTypeDescription (Name, Description) and every binding a
 * BindingDescription (BoundObjectType and BoundAttributeType: references
 * to the two others; Required; StringRegex, which replaces the attribute's
 * for that type). The attributes bound to every type (ObjectID,
 * ObjectType, CreatedTime, Creator, ExpirationTime, DisplayName) are
 * implicit: no BindingDescription is needed for them (one may make such a
 * binding required, or give it a regex).
 *
 * Where the schema comes from:
 *
 *   the policy files   seed: each attribute, type and binding they declare
 *                      is made a description resource ONCE, at the first
 *                      start that sees it (a meta row "seed\0KIND\0NAME"
 *                      remembers it, in the same batch). Afterwards the
 *                      file no longer matters for it: a request may change
 *                      or delete it and a restart does not bring the
 *                      file's version back (a warning says where file and
 *                      store differ).
 *   built-ins          their descriptions are made when missing at every
 *                      start; their definitions come from the code, so
 *                      they cannot change (but for DisplayName and
 *                      Description) and cannot be deleted.
 *   the store          the truth: w->policy's attributes and types are
 *                      built from the description resources at start and
 *                      after every request that commits a change to one.
 *
 * A request on a description resource goes through the whole pipeline
 * (its MPRs: with the shipped ones only sync and the administrators may
 * change the schema). Validation (wf_schema_validate) checks the rules of
 * the change itself (built-ins, renames, in-use attributes and types), then
 * builds the schema the store would define after it: a description that
 * would not build (an unknown DataType, a regex that does not compile, a
 * taken Name, a binding to something that is not there, ...) denies the
 * request. The built schema waits in w->schema_next; when the commit batch
 * (which holds the resource) is written it becomes the live one
 * (wf_schema_commit), otherwise it is dropped (wf_schema_abort). After a
 * crash the schema is built again from the store, so it is always the one
 * the committed resources define.
 *
 * A store whose descriptions do not build (which requests cannot make)
 * starts anyway: the bad descriptions are left out with a warning each,
 * and a later request is only denied for a problem it adds.
 */
#include "workflow.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ATD "AttributeTypeDescription"
#define OTD "ObjectTypeDescription"
#define BD "BindingDescription"

/* The schema a request would make, between validation and its commit. */
struct wf_schema_next {
	wf_policy_t schema;        /* attributes and types only */
	char **problems;           /* descriptions it leaves out */
	size_t nproblems;          /* how many */
};

/* ---- description resources ---- */

typedef struct descs {
	Loom__Resource **v;        /* every ATD, OTD and BD, by type then rid */
	size_t n, cap;             /* how many, allocated */
} descs_t;

static void descs_add(descs_t *d, Loom__Resource *r)
{
	if (d->n == d->cap)
		d->v = loom_realloc(d->v, (d->cap = d->cap ? 2 * d->cap : 64) * sizeof *d->v);
	d->v[d->n++] = r;
}

static void descs_free(descs_t *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i])
			protobuf_c_message_free_unpacked(&d->v[i]->base, NULL);
	free(d->v);
	memset(d, 0, sizeof *d);
}

typedef struct rids {
	loom_xpath_rid_t *v;       /* found */
	size_t n, cap;             /* how many, allocated */
} rids_t;

static int rid_collect(void *varg, loom_xpath_rid_t rid)
{
	rids_t *c = varg;
	if (c->n == c->cap)
		c->v = loom_realloc(c->v, (c->cap = c->cap ? 2 * c->cap : 64) * sizeof *c->v);
	c->v[c->n++] = rid;
	return 0;
}

/* Reads every description resource from the store (not the overlay). */
static int descs_read(wf_t *w, descs_t *d, char **ret_error)
{
	static const char *const types[] = { ATD, OTD, BD };
	memset(d, 0, sizeof *d);
	bool overlay = w->overlay.active;
	w->overlay.active = false;
	int rc = 0;
	for (size_t k = 0; k < 3 && rc == 0; k++) {
		rids_t c = { 0 };
		rc = w->xp.scan(w, types[k], rid_collect, &c, ret_error);
		for (size_t i = 0; i < c.n && rc == 0; i++) {
			Loom__Resource *r;
			const char *err;
			int g = wf_res_get(w, c.v[i], &r, &err);
			if (g < 0) {
				*ret_error = loom_sprintf("cannot read a schema description: %s", err);
				rc = -1;
			} else if (g == 1) {
				descs_add(d, r);
			}
		}
		free(c.v);
	}
	w->overlay.active = overlay;
	if (rc < 0)
		descs_free(d);
	return rc;
}

static const char *res_str(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = wf_res_attr(r, name);
	if (a == NULL || a->n_values == 0)
		return NULL;
	const Loom__Value *v = a->values[0];
	return v->v_case == LOOM__VALUE__V_STR ? v->str : v->v_case == LOOM__VALUE__V_REF ? v->ref : NULL;
}

static bool res_bool(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = wf_res_attr(r, name);
	return a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_BOOL && a->values[0]->bool_;
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The description of type kind named name, or NULL. */
static const Loom__Resource *desc_named(const descs_t *d, const char *kind, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i] && strcmp(d->v[i]->object_type, kind) == 0 && str_eq(res_str(d->v[i], "Name"), name))
			return d->v[i];
	return NULL;
}

static const Loom__Resource *desc_by_id(const descs_t *d, const char *id)
{
	for (size_t i = 0; id && i < d->n; i++)
		if (d->v[i] && strcasecmp(d->v[i]->object_id, id) == 0)
			return d->v[i];
	return NULL;
}

/* The BindingDescription of attribute attr on type, or NULL. */
static const Loom__Resource *desc_binding(const descs_t *d, const char *type, const char *attr)
{
	for (size_t i = 0; i < d->n; i++) {
		const Loom__Resource *r = d->v[i];
		if (r == NULL || strcmp(r->object_type, BD) != 0)
			continue;
		const Loom__Resource *t = desc_by_id(d, res_str(r, "BoundObjectType"));
		const Loom__Resource *a = desc_by_id(d, res_str(r, "BoundAttributeType"));
		if (t && a && str_eq(res_str(t, "Name"), type) && str_eq(res_str(a, "Name"), attr))
			return r;
	}
	return NULL;
}

static int data_type(const char *s)
{
	for (int i = 1; s && wf_data_types[i]; i++)
		if (strcmp(s, wf_data_types[i]) == 0)
			return i;
	return 0;
}

/* A BindingDescription's label: "ATTR on TYPE" (what it binds, when it resolves). */
static char *binding_label(const descs_t *d, const Loom__Resource *r)
{
	const Loom__Resource *t = desc_by_id(d, res_str(r, "BoundObjectType"));
	const Loom__Resource *a = desc_by_id(d, res_str(r, "BoundAttributeType"));
	const char *tn = t ? res_str(t, "Name") : NULL, *an = a ? res_str(a, "Name") : NULL;
	return loom_sprintf("%s on %s", an ? an : "?", tn ? tn : "?");
}

/* ---- building the schema from the descriptions ---- */

typedef struct problems {
	char **v;                  /* texts */
	size_t n;                  /* how many */
} problems_t;

static void problem(problems_t *p, char *text)
{
	p->v = loom_realloc(p->v, (p->n + 1) * sizeof *p->v);
	p->v[p->n++] = text;
}

static void problems_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The policy files' definition of attribute a, when the store's is the same:
 * reasons then point into the file. */
static const char *attr_where(const wf_policy_t *cfg, const char *name, int type, bool multi, const char *regex)
{
	const wf_attr_t *c = cfg ? wf_attr_find(cfg, name) : NULL;
	if (c && !c->builtin && c->type == type && c->multi == multi && str_eq(c->re_text, regex))
		return c->where;
	return NULL;
}

static const char *binding_where(const wf_policy_t *cfg, const char *type, const char *attr, bool required,
    const char *regex)
{
	const wf_type_t *t = cfg ? wf_type_find(cfg, type) : NULL;
	const wf_binding_t *b = t ? wf_binding_find(t, attr) : NULL;
	if (b && b->declared && b->required == required && str_eq(b->re_text, regex))
		return b->where;
	return NULL;
}

/* Builds into an empty ret the schema the descriptions d define, on top of
 * the built-ins. A description that does not fit is left out and described
 * in *problems ("attribute 'X': ... (RULE rule, KIND 'NAME')"). */
static void schema_build(const wf_policy_t *cfg, const descs_t *d, wf_policy_t *ret, problems_t *problems)
{
	size_t natd = 0;
	for (size_t i = 0; i < d->n; i++)
		natd += d->v[i] && strcmp(d->v[i]->object_type, ATD) == 0;
	wf_schema_builtin(ret, natd);
	/* which description holds each attribute and type (ObjectIDs, borrowed) */
	const char **attr_owner = loom_calloc(ret->nattrs + natd + 1, sizeof *attr_owner);
	size_t ntypes_max = ret->ntypes + d->n + 1;
	const char **type_owner = loom_calloc(ntypes_max, sizeof *type_owner);
	for (size_t i = 0; i < d->n; i++) {
		const Loom__Resource *r = d->v[i];
		if (r == NULL || strcmp(r->object_type, ATD) != 0)
			continue;
		const char *name = res_str(r, "Name");
		if (name == NULL) {
			problem(problems, loom_sprintf("attribute 'Name' is required for type '" ATD "' (required binding, "
			    ATD " %s)", r->object_id));
			continue;
		}
		const wf_attr_t *old = wf_attr_find(ret, name);
		if (old) {
			size_t k = (size_t)(old - ret->attrs);
			if (attr_owner[k])
				problem(problems, loom_sprintf("attribute 'Name': '%s' is taken: " ATD " %s has it (unique name "
				    "rule, " ATD " %s)", name, attr_owner[k], r->object_id));
			else
				attr_owner[k] = r->object_id; /* a built-in's description: the code defines it */
			continue;
		}
		if (!wf_name_ok(name)) {
			problem(problems, loom_sprintf("attribute 'Name': '%s' is no name: expected a letter, then letters, "
			    "digits, '_' or '-' (name rule, " ATD " %s)", name, r->object_id));
			continue;
		}
		const char *dt = res_str(r, "DataType");
		int type = data_type(dt);
		if (type == 0) {
			problem(problems, loom_sprintf("attribute 'DataType': '%s' is no data type: expected String, Integer, "
			    "Boolean, DateTime, Reference or Binary (data type rule, " ATD " '%s')", dt ? dt : "", name));
			continue;
		}
		const char *regex = res_str(r, "StringRegex");
		if (regex && type != WF_STRING) {
			problem(problems, loom_sprintf("attribute 'StringRegex': a regex applies to String attributes only, "
			    "'%s' is %s (regex rule, " ATD " '%s')", name, dt, name));
			continue;
		}
		bool multi = res_bool(r, "Multivalued");
		const char *cw = attr_where(cfg, name, type, multi, regex);
		char *where = cw ? loom_strdup(cw) : loom_sprintf(ATD " '%s'", name);
		char *why = NULL;
		wf_attr_t *a = wf_schema_add_attr(ret, name, type, multi, regex, where, res_str(r, "Description"), &why);
		free(where);
		if (a == NULL) {
			problem(problems, loom_sprintf("attribute 'StringRegex': %s (regex rule, " ATD " '%s')", why, name));
			free(why);
			continue;
		}
		attr_owner[a - ret->attrs] = r->object_id;
	}
	for (size_t i = 0; i < d->n; i++) {
		const Loom__Resource *r = d->v[i];
		if (r == NULL || strcmp(r->object_type, OTD) != 0)
			continue;
		const char *name = res_str(r, "Name");
		if (name == NULL) {
			problem(problems, loom_sprintf("attribute 'Name' is required for type '" OTD "' (required binding, "
			    OTD " %s)", r->object_id));
			continue;
		}
		const wf_type_t *old = wf_type_find(ret, name);
		if (old) {
			size_t k = (size_t)(old - ret->types);
			if (type_owner[k])
				problem(problems, loom_sprintf("attribute 'Name': '%s' is taken: " OTD " %s has it (unique name "
				    "rule, " OTD " %s)", name, type_owner[k], r->object_id));
			else
				type_owner[k] = r->object_id;
			continue;
		}
		if (!wf_name_ok(name)) {
			problem(problems, loom_sprintf("attribute 'Name': '%s' is no name: expected a letter, then letters, "
			    "digits, '_' or '-' (name rule, " OTD " %s)", name, r->object_id));
			continue;
		}
		wf_type_t *t = wf_schema_add_type(ret, name, res_str(r, "Description"));
		type_owner[t - ret->types] = r->object_id;
	}
	/* bindings: (type, attribute) pairs taken, by description */
	const char **pair_owner = loom_calloc(d->n + 1, sizeof *pair_owner);
	size_t npairs = 0;
	for (size_t i = 0; i < d->n; i++) {
		const Loom__Resource *r = d->v[i];
		if (r == NULL || strcmp(r->object_type, BD) != 0)
			continue;
		char *label = binding_label(d, r);
		const char *tid = res_str(r, "BoundObjectType"), *aid = res_str(r, "BoundAttributeType");
		wf_type_t *t = NULL;
		const wf_attr_t *a = NULL;
		for (size_t k = 0; tid && k < ret->ntypes && t == NULL; k++)
			if (type_owner[k] && strcasecmp(type_owner[k], tid) == 0)
				t = &ret->types[k];
		for (size_t k = 0; aid && k < ret->nattrs && a == NULL; k++)
			if (attr_owner[k] && strcasecmp(attr_owner[k], aid) == 0)
				a = &ret->attrs[k];
		if (t == NULL || a == NULL) {
			const char *which = t == NULL ? "BoundObjectType" : "BoundAttributeType";
			const char *id = t == NULL ? tid : aid;
			problem(problems, loom_sprintf("attribute '%s': '%s' is no %s (binding rule, " BD " '%s')", which,
			    id ? id : "", t == NULL ? OTD : ATD, label));
			free(label);
			continue;
		}
		const char *dup = NULL;
		for (size_t k = 0; k < npairs && dup == NULL; k++) {
			const Loom__Resource *o = desc_by_id(d, pair_owner[k]);
			if (o && strcasecmp(res_str(o, "BoundObjectType"), tid) == 0 &&
			    strcasecmp(res_str(o, "BoundAttributeType"), aid) == 0)
				dup = pair_owner[k];
		}
		if (dup) {
			problem(problems, loom_sprintf("the binding of '%s' to '%s' is made already: " BD " %s (unique binding "
			    "rule, " BD " %s)", a->name, t->name, dup, r->object_id));
			free(label);
			continue;
		}
		pair_owner[npairs++] = r->object_id;
		const wf_binding_t *old = wf_binding_find(t, a->name);
		if (old && old->builtin) {
			free(label); /* a built-in binding's description: the code defines it */
			continue;
		}
		bool required = res_bool(r, "Required");
		const char *regex = res_str(r, "StringRegex");
		const char *cw = binding_where(cfg, t->name, a->name, required, regex);
		char *where = cw ? loom_strdup(cw) : loom_sprintf(BD " '%s'", label);
		char *why = NULL;
		if (wf_schema_bind(t, a, required, regex, where, &why) < 0) {
			problem(problems, loom_sprintf("attribute '%s': %s (binding rule, " BD " '%s')",
			    regex ? "StringRegex" : "Required", why, label));
			free(why);
		}
		free(where);
		free(label);
	}
	free(pair_owner);
	free(attr_owner);
	free(type_owner);
}

/* ---- seeding: the policy files' schema as resources ---- */

static Loom__Resource *new_desc(wf_t *w, const char *type, const char *name, const char *display,
    const char *description)
{
	Loom__Resource *r = loom_malloc(sizeof *r);
	loom__resource__init(r);
	r->object_id = wf_new_uuid();
	r->object_type = loom_strdup(type);
	r->rid = w->next_rid++;
	r->created_at = r->changed_at = loom_now_us();
	Loom__Value **v = loom_calloc(1, sizeof *v);
	v[0] = wf_value_i64(LOOM__VALUE__V_TIME, r->created_at);
	wf_res_set(r, "CreatedTime", v, 1);
	if (name) {
		v = loom_calloc(1, sizeof *v);
		v[0] = wf_value_str(LOOM__VALUE__V_STR, name);
		wf_res_set(r, "Name", v, 1);
	}
	v = loom_calloc(1, sizeof *v);
	v[0] = wf_value_str(LOOM__VALUE__V_STR, display);
	wf_res_set(r, "DisplayName", v, 1);
	if (description) {
		v = loom_calloc(1, sizeof *v);
		v[0] = wf_value_str(LOOM__VALUE__V_STR, description);
		wf_res_set(r, "Description", v, 1);
	}
	return r;
}

static void put_one(Loom__Resource *r, const char *name, Loom__Value *x)
{
	Loom__Value **v = loom_calloc(1, sizeof *v);
	v[0] = x;
	wf_res_set(r, name, v, 1);
}

typedef struct seed {
	wf_t *w;                   /* the service */
	descs_t *d;                /* the descriptions, those made here included */
	loom_batch_t *b;           /* the seeding batch */
	size_t made;               /* resources made */
	size_t marked;             /* seed rows written */
} seed_t;

static void seed_key(loom_buf_t *k, char kind, const char *a, const char *b)
{
	loom_buf_reset(k);
	loom_buf_adds(k, "seed");
	loom_buf_addc(k, '\0');
	loom_buf_addc(k, kind);
	loom_buf_addc(k, '\0');
	loom_buf_adds(k, a);
	if (b) {
		loom_buf_addc(k, '\0');
		loom_buf_adds(k, b);
	}
}

/* Whether the policy files' entry was made a resource before: 1, 0, -1. */
static int seeded(seed_t *s, const loom_buf_t *k, char **ret_error)
{
	void *v;
	size_t len;
	const char *err;
	int rc = loom_store_get(s->w->store, s->w->cf_meta, k->data, k->len, &v, &len, &err);
	if (rc < 0)
		*ret_error = loom_sprintf("cannot read the store: %s", err);
	if (rc == 1)
		free(v);
	return rc;
}

static void mark(seed_t *s, const loom_buf_t *k)
{
	loom_batch_put(s->b, s->w->cf_meta, k->data, k->len, "", 0);
	s->marked++;
}

static void make(seed_t *s, Loom__Resource *r)
{
	Loom__Request rq = LOOM__REQUEST__INIT;
	rq.id = (char *)"";
	wf_res_write(s->w, s->b, NULL, r);
	wf_chg_write(s->w, s->b, &rq, NULL, r);
	descs_add(s->d, r);
	s->made++;
}

static Loom__Resource *attr_desc(wf_t *w, const wf_attr_t *a)
{
	Loom__Resource *r = new_desc(w, ATD, a->name, a->name, a->description);
	put_one(r, "DataType", wf_value_str(LOOM__VALUE__V_STR, wf_data_types[a->type]));
	put_one(r, "Multivalued", wf_value_i64(LOOM__VALUE__V_BOOL, a->multi));
	if (a->re_text)
		put_one(r, "StringRegex", wf_value_str(LOOM__VALUE__V_STR, a->re_text));
	return r;
}

/* How the store's description differs from the file's attribute, or NULL. */
static char *attr_differs(const Loom__Resource *r, const wf_attr_t *a)
{
	const char *dt = res_str(r, "DataType"), *re = res_str(r, "StringRegex");
	if (!str_eq(dt, wf_data_types[a->type]))
		return loom_sprintf("DataType %s in the file, %s in the store", wf_data_types[a->type], dt ? dt : "none");
	if (res_bool(r, "Multivalued") != a->multi)
		return loom_sprintf("Multivalued %s in the file, %s in the store", a->multi ? "true" : "false",
		    a->multi ? "false" : "true");
	if (!str_eq(re, a->re_text))
		return loom_sprintf("StringRegex '%s' in the file, '%s' in the store", a->re_text ? a->re_text : "",
		    re ? re : "");
	return NULL;
}

static char *binding_differs(const Loom__Resource *r, const wf_binding_t *b)
{
	const char *re = res_str(r, "StringRegex");
	if (res_bool(r, "Required") != b->required)
		return loom_sprintf("Required %s in the file, %s in the store", b->required ? "true" : "false",
		    b->required ? "false" : "true");
	if (!str_eq(re, b->re_text))
		return loom_sprintf("StringRegex '%s' in the file, '%s' in the store", b->re_text ? b->re_text : "",
		    re ? re : "");
	return NULL;
}

static int seed_attrs(seed_t *s, const wf_policy_t *cfg, char **ret_error)
{
	loom_buf_t k = LOOM_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < cfg->nattrs && rc == 0; i++) {
		const wf_attr_t *a = &cfg->attrs[i];
		const Loom__Resource *r = desc_named(s->d, ATD, a->name);
		if (a->builtin) {
			if (r == NULL)
				make(s, attr_desc(s->w, a));
			continue;
		}
		seed_key(&k, 'a', a->name, NULL);
		int was = seeded(s, &k, ret_error);
		if (was < 0) {
			rc = -1;
			break;
		}
		if (r) {
			char *why = attr_differs(r, a);
			if (why)
				loom_warning("%s: attribute '%s': %s: the store's " ATD " %s is in force (a request changes it)",
				    a->where, a->name, why, r->object_id);
			free(why);
			if (!was)
				mark(s, &k);
		} else if (!was) {
			make(s, attr_desc(s->w, a));
			mark(s, &k);
		}
	}
	loom_buf_release(&k);
	return rc;
}

static int seed_types(seed_t *s, const wf_policy_t *cfg, char **ret_error)
{
	loom_buf_t k = LOOM_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < cfg->ntypes && rc == 0; i++) {
		const wf_type_t *t = &cfg->types[i];
		const Loom__Resource *r = desc_named(s->d, OTD, t->name);
		if (t->builtin) {
			if (r == NULL)
				make(s, new_desc(s->w, OTD, t->name, t->name, t->description));
			continue;
		}
		seed_key(&k, 't', t->name, NULL);
		int was = seeded(s, &k, ret_error);
		if (was < 0) {
			rc = -1;
			break;
		}
		if (r == NULL && !was)
			make(s, new_desc(s->w, OTD, t->name, t->name, t->description));
		if (!was)
			mark(s, &k);
	}
	loom_buf_release(&k);
	return rc;
}

static int seed_bindings(seed_t *s, const wf_policy_t *cfg, char **ret_error)
{
	loom_buf_t k = LOOM_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < cfg->ntypes && rc == 0; i++) {
		const wf_type_t *t = &cfg->types[i];
		for (size_t j = 0; j < t->nb && rc == 0; j++) {
			const wf_binding_t *b = &t->b[j];
			if (!b->builtin && !b->declared)
				continue; /* implicit */
			const char *an = b->attr->name;
			const Loom__Resource *r = desc_binding(s->d, t->name, an);
			int was = 0;
			if (!b->builtin) {
				seed_key(&k, 'b', t->name, an);
				if ((was = seeded(s, &k, ret_error)) < 0) {
					rc = -1;
					break;
				}
			}
			if (r) {
				char *why = b->builtin ? NULL : binding_differs(r, b);
				if (why)
					loom_warning("%s: the binding of '%s' to '%s': %s: the store's " BD " %s is in force (a "
					    "request changes it)", b->where, an, t->name, why, r->object_id);
				free(why);
				if (!b->builtin && !was)
					mark(s, &k);
				continue;
			}
			if (was)
				continue; /* made once, deleted since by a request */
			const Loom__Resource *td = desc_named(s->d, OTD, t->name), *ad = desc_named(s->d, ATD, an);
			if (td == NULL || ad == NULL) {
				loom_warning("%s: the binding of '%s' to '%s' is not made: " "%s '%s' is not in the store (a request "
				    "deleted it)", b->where, an, t->name, td == NULL ? OTD : ATD, td == NULL ? t->name : an);
				continue;
			}
			char *label = loom_sprintf("%s on %s", an, t->name);
			Loom__Resource *n = new_desc(s->w, BD, NULL, label, NULL);
			free(label);
			put_one(n, "BoundObjectType", wf_value_str(LOOM__VALUE__V_REF, td->object_id));
			put_one(n, "BoundAttributeType", wf_value_str(LOOM__VALUE__V_REF, ad->object_id));
			put_one(n, "Required", wf_value_i64(LOOM__VALUE__V_BOOL, b->required));
			if (b->re_text)
				put_one(n, "StringRegex", wf_value_str(LOOM__VALUE__V_STR, b->re_text));
			make(s, n);
			if (!b->builtin)
				mark(s, &k);
		}
	}
	loom_buf_release(&k);
	return rc;
}

static void move_schema(wf_policy_t *to, wf_policy_t *from)
{
	wf_schema_release(to);
	to->attrs = from->attrs;
	to->nattrs = from->nattrs;
	to->types = from->types;
	to->ntypes = from->ntypes;
	from->attrs = NULL;
	from->types = NULL;
	from->nattrs = from->ntypes = 0;
}

int wf_schema_open(wf_t *w, char **ret_error)
{
	move_schema(&w->cfg_schema, &w->policy);
	descs_t d;
	if (descs_read(w, &d, ret_error) < 0)
		return -1;
	seed_t s = { .w = w, .d = &d, .b = loom_batch_new(w->store) };
	uint64_t rid0 = w->next_rid, chg0 = w->next_chg, first0 = w->chg_first;
	int rc = seed_attrs(&s, &w->cfg_schema, ret_error);
	if (rc == 0)
		rc = seed_types(&s, &w->cfg_schema, ret_error);
	if (rc == 0)
		rc = seed_bindings(&s, &w->cfg_schema, ret_error);
	if (rc == 0 && s.made + s.marked) {
		if (s.made) {
			wf_meta_write(w, s.b);
			/* new resources: Sets and Groups compute their members again
			 * (workflow_sets.c does so when this row is missing) */
			loom_batch_delete(s.b, w->cf_meta, "sets_version", 12);
		}
		const char *err;
		if (loom_store_write(w->store, s.b, &err) < 0) {
			*ret_error = loom_sprintf("cannot store the schema descriptions: %s", err);
			rc = -1;
		}
	}
	loom_batch_destroy(&s.b);
	if (rc < 0) {
		w->next_rid = rid0;
		w->next_chg = chg0;
		w->chg_first = first0;
		descs_free(&d);
		return -1;
	}
	wf_policy_t live = { 0 };
	problems_t p = { 0 };
	schema_build(&w->cfg_schema, &d, &live, &p);
	descs_free(&d);
	for (size_t i = 0; i < p.n; i++)
		loom_warning("schema: left out: %s", p.v[i]);
	move_schema(&w->policy, &live);
	w->schema_problems = p.v;
	w->nschema_problems = p.n;
	/* MPRs were checked against the files' schema; a request may have
	 * deleted what they name since */
	for (size_t m = 0; m < w->policy.nmprs; m++) {
		const wf_mpr_t *mpr = &w->policy.mprs[m];
		for (size_t k = 0; k < mpr->nattrs; k++)
			if (wf_attr_find(&w->policy, mpr->attrs[k]) == NULL)
				loom_warning("mpr '%s': attribute '%s' is not in the schema (a request deleted it): the MPR grants "
				    "nothing for it", mpr->name, mpr->attrs[k]);
		if (mpr->relative && wf_attr_find(&w->policy, mpr->relative) == NULL)
			loom_warning("mpr '%s': relative_to_target '%s' is not in the schema (a request deleted it): the MPR "
			    "grants nothing", mpr->name, mpr->relative);
	}
	loom_info("schema ready attributes=%zu types=%zu made=%zu problems=%zu", w->policy.nattrs, w->policy.ntypes,
	    s.made, p.n);
	return 0;
}

void wf_schema_abort(wf_t *w)
{
	struct wf_schema_next *n = w->schema_next;
	if (n == NULL)
		return;
	wf_schema_release(&n->schema);
	problems_free(n->problems, n->nproblems);
	free(n);
	w->schema_next = NULL;
}

void wf_schema_commit(wf_t *w)
{
	struct wf_schema_next *n = w->schema_next;
	if (n == NULL)
		return;
	move_schema(&w->policy, &n->schema);
	problems_free(w->schema_problems, w->nschema_problems);
	w->schema_problems = n->problems;
	w->nschema_problems = n->nproblems;
	n->problems = NULL;
	n->nproblems = 0;
	wf_schema_abort(w);
	loom_info("schema changed attributes=%zu types=%zu", w->policy.nattrs, w->policy.ntypes);
}

void wf_schema_close(wf_t *w)
{
	wf_schema_abort(w);
	wf_schema_release(&w->cfg_schema);
	problems_free(w->schema_problems, w->nschema_problems);
	w->schema_problems = NULL;
	w->nschema_problems = 0;
}

/* ---- validating a change ---- */

static bool same_attr(const Loom__Resource *a, const Loom__Resource *b, const char *name)
{
	const Loom__Attr *x = wf_res_attr(a, name), *y = wf_res_attr(b, name);
	size_t nx = x ? x->n_values : 0, ny = y ? y->n_values : 0;
	if (nx != ny)
		return false;
	for (size_t i = 0; i < nx; i++)
		if (!loom_value_eq(x->values[i], y->values[i]))
			return false;
	return true;
}

/* The first attribute other than DisplayName and Description whose values
 * differ between before and after, or NULL. */
static const char *changed_fixed(const Loom__Resource *before, const Loom__Resource *after)
{
	const Loom__Resource *rs[2] = { before, after };
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < rs[k]->n_attrs; i++) {
			const char *n = rs[k]->attrs[i]->name;
			if (strcmp(n, "DisplayName") == 0 || strcmp(n, "Description") == 0)
				continue;
			if (!same_attr(before, after, n))
				return n;
		}
	return NULL;
}

/* Whether before describes a built-in attribute, type or binding. */
static bool is_builtin(wf_t *w, const descs_t *d, const Loom__Resource *before)
{
	const char *name = res_str(before, "Name");
	if (strcmp(before->object_type, ATD) == 0) {
		const wf_attr_t *a = name ? wf_attr_find(&w->policy, name) : NULL;
		return a && a->builtin;
	}
	if (strcmp(before->object_type, OTD) == 0) {
		const wf_type_t *t = name ? wf_type_find(&w->policy, name) : NULL;
		return t && t->builtin;
	}
	const Loom__Resource *td = desc_by_id(d, res_str(before, "BoundObjectType"));
	const Loom__Resource *ad = desc_by_id(d, res_str(before, "BoundAttributeType"));
	const wf_type_t *t = td && res_str(td, "Name") ? wf_type_find(&w->policy, res_str(td, "Name")) : NULL;
	const wf_binding_t *b = t && ad && res_str(ad, "Name") ? wf_binding_find(t, res_str(ad, "Name")) : NULL;
	return b && b->builtin;
}

static const char *kind_label(const char *type)
{
	return strcmp(type, ATD) == 0 ? "attribute" : strcmp(type, OTD) == 0 ? "object type" : "binding";
}

/* The rules a change to before (a description) must keep besides building. */
static char *change_rules(wf_t *w, const descs_t *d, const Loom__Resource *before, const Loom__Resource *after)
{
	const char *kind = before->object_type;
	const char *name = res_str(before, "Name");
	char *label = strcmp(kind, BD) == 0 ? binding_label(d, before) : loom_strdup(name ? name : before->object_id);
	char *reason = NULL;
	const char *err = NULL;
	char *id = NULL;
	int rc = 0;
	if (is_builtin(w, d, before)) {
		const char *c = after ? changed_fixed(before, after) : NULL;
		if (after == NULL)
			reason = loom_sprintf("%s '%s' is built in: it cannot be deleted (built-in rule, %s %s)",
			    kind_label(kind), label, kind, before->object_id);
		else if (c)
			reason = loom_sprintf("attribute '%s': %s '%s' is built in: only its DisplayName and Description "
			    "change (built-in rule, %s %s)", c, kind_label(kind), label, kind, before->object_id);
		goto out;
	}
	if (strcmp(kind, ATD) == 0) {
		const wf_attr_t *a = name ? wf_attr_find(&w->policy, name) : NULL;
		if (after && !same_attr(before, after, "Name")) {
			const char *to = res_str(after, "Name");
			reason = loom_sprintf("attribute 'Name': '%s' cannot become '%s': an attribute keeps its name; create "
			    "another (rename rule, " ATD " %s)", label, to ? to : "", before->object_id);
			goto out;
		}
		if (a == NULL)
			goto out; /* left out of the live schema: nothing holds it */
		bool type_changes = after && !same_attr(before, after, "DataType");
		bool to_single = after && res_bool(before, "Multivalued") && !res_bool(after, "Multivalued");
		if (after == NULL || type_changes || to_single) {
			rc = wf_attr_in_use(w, a, NULL, &id, &err);
			if (rc == 1 && after == NULL)
				reason = loom_sprintf("attribute '%s' cannot be deleted: resource %s has a value for it (in-use "
				    "rule)", label, id);
			else if (rc == 1 && type_changes)
				reason = loom_sprintf("attribute 'DataType': '%s' cannot change from %s to %s: resource %s has a "
				    "value for it (in-use rule)", label, res_str(before, "DataType"),
				    res_str(after, "DataType") ? res_str(after, "DataType") : "none", id);
			else if (rc == 1)
				reason = loom_sprintf("attribute 'Multivalued': '%s' cannot become single-valued: resource %s has "
				    "a value for it (in-use rule)", label, id);
		}
		if (rc == 0 && after == NULL)
			for (size_t i = 0; i < d->n && reason == NULL; i++)
				if (strcmp(d->v[i]->object_type, BD) == 0 &&
				    str_eq(res_str(d->v[i], "BoundAttributeType"), before->object_id)) {
					char *bl = binding_label(d, d->v[i]);
					reason = loom_sprintf("attribute '%s' cannot be deleted: " BD " %s ('%s') binds it; delete "
					    "the binding first (binding rule)", label, d->v[i]->object_id, bl);
					free(bl);
				}
	} else if (strcmp(kind, OTD) == 0) {
		if (after && !same_attr(before, after, "Name")) {
			const char *to = res_str(after, "Name");
			reason = loom_sprintf("attribute 'Name': '%s' cannot become '%s': an object type keeps its name; "
			    "create another (rename rule, " OTD " %s)", label, to ? to : "", before->object_id);
			goto out;
		}
		if (after == NULL && name) {
			rc = wf_type_in_use(w, name, &id, &err);
			if (rc == 1)
				reason = loom_sprintf("object type '%s' cannot be deleted: %s %s is one (in-use rule)", label,
				    name, id);
			for (size_t i = 0; rc == 0 && i < d->n && reason == NULL; i++)
				if (strcmp(d->v[i]->object_type, BD) == 0 &&
				    str_eq(res_str(d->v[i], "BoundObjectType"), before->object_id)) {
					char *bl = binding_label(d, d->v[i]);
					reason = loom_sprintf("object type '%s' cannot be deleted: " BD " %s ('%s') binds to it; "
					    "delete the binding first (binding rule)", label, d->v[i]->object_id, bl);
					free(bl);
				}
		}
	} else {
		const char *c = !after ? NULL : !same_attr(before, after, "BoundObjectType") ? "BoundObjectType"
		    : !same_attr(before, after, "BoundAttributeType") ? "BoundAttributeType" : NULL;
		if (c) {
			reason = loom_sprintf("attribute '%s': the binding '%s' keeps its type and attribute; delete it and "
			    "create another (binding rule, " BD " %s)", c, label, before->object_id);
			goto out;
		}
		if (after == NULL) {
			const Loom__Resource *td = desc_by_id(d, res_str(before, "BoundObjectType"));
			const Loom__Resource *ad = desc_by_id(d, res_str(before, "BoundAttributeType"));
			const wf_type_t *t = td && res_str(td, "Name") ? wf_type_find(&w->policy, res_str(td, "Name")) : NULL;
			const wf_binding_t *b = t && ad && res_str(ad, "Name") ? wf_binding_find(t, res_str(ad, "Name")) : NULL;
			/* an implicit attribute stays bound without its description */
			if (b && !b->implicit) {
				rc = wf_attr_in_use(w, b->attr, t->name, &id, &err);
				if (rc == 1)
					reason = loom_sprintf("the binding '%s' cannot be deleted: %s %s has a value for '%s' (in-use "
					    "rule, " BD " %s)", label, t->name, id, b->attr->name, before->object_id);
			}
		}
	}
out:
	if (rc < 0)
		reason = loom_sprintf("cannot check whether '%s' is in use: %s", label, err);
	free(id);
	free(label);
	return reason;
}

static bool is_desc_type(const char *t)
{
	return strcmp(t, ATD) == 0 || strcmp(t, OTD) == 0 || strcmp(t, BD) == 0;
}

char *wf_schema_validate(wf_t *w, const Loom__Request *rq, const Loom__Resource *before, const Loom__Resource *after)
{
	(void)rq;
	const Loom__Resource *r = after ? after : before;
	wf_schema_abort(w);
	if (r == NULL || !is_desc_type(r->object_type))
		return NULL;
	descs_t d;
	char *reason = NULL;
	if (descs_read(w, &d, &reason) < 0)
		return reason;
	if (before && (reason = change_rules(w, &d, before, after)) != NULL) {
		descs_free(&d);
		return reason;
	}
	/* the descriptions as the request leaves them */
	size_t i;
	for (i = 0; i < d.n; i++)
		if (d.v[i]->rid == r->rid)
			break;
	Loom__Resource *mine = after ? (Loom__Resource *)after : NULL;
	if (i < d.n) {
		protobuf_c_message_free_unpacked(&d.v[i]->base, NULL);
		d.v[i] = mine;
	} else if (mine) {
		descs_add(&d, mine);
	}
	/* compacted: after is borrowed, taken out before descs_free */
	size_t k = 0;
	for (i = 0; i < d.n; i++)
		if (d.v[i])
			d.v[k++] = d.v[i];
	d.n = k;
	struct wf_schema_next *n = loom_calloc(1, sizeof *n);
	problems_t p = { 0 };
	schema_build(&w->cfg_schema, &d, &n->schema, &p);
	for (i = 0; i < d.n; i++)
		if (d.v[i] == mine)
			d.v[i] = NULL;
	descs_free(&d);
	n->problems = p.v;
	n->nproblems = p.n;
	for (i = 0; i < p.n && reason == NULL; i++) {
		bool old = false;
		for (size_t j = 0; j < w->nschema_problems && !old; j++)
			old = strcmp(w->schema_problems[j], p.v[i]) == 0;
		if (!old)
			reason = loom_strdup(p.v[i]);
	}
	w->schema_next = n;
	if (reason)
		wf_schema_abort(w);
	return reason;
}
