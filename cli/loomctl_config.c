/* loomctl_config.c - loomctl config export / import: moving the policy and
 * synchronization configuration between environments, dev -> test ->
 * production (docs/workflows.md, "Configuration promotion").
 *
 * An export directory holds
 *   schema/schema.yaml   the live schema of the policy service (its
 *                        AttributeTypeDescription, ObjectTypeDescription and
 *                        BindingDescription resources, built-ins left out),
 *                        in the policy file format
 *   sets/sets.yaml       its Sets: name, description, filter, and explicit
 *                        members by AccountName
 *   policy/NAME.yaml     the deployment's policy files (MPRs, set-transition
 *   policy/workflows/    MPRs, administrators, the schema's seed) and
 *   sync/NAME.yaml       workflow definitions, and its synchronization rules
 *
 * An import compares such a directory with this environment and prints the
 * differences in the order they are applied: attributes, types, bindings
 * (requests to the policy service), Sets (requests), then files (policy,
 * workflows, sync rules; written atomically, files the directory lacks
 * removed), after checking the files with loom-workflow --check-config and
 * loom-engine --check-config on a staged copy. --dry-run stops after the
 * diff. Nothing of the schema is deleted by an import (a description with
 * data behind it is a data decision): those only here are listed. The
 * services read the files at start: restart them afterwards. */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_config.h"
#include "loom_file.h"
#include "policy.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the live service ---- */

static Loom__ResourceSearchReply *search(ctl_t *ctl, const char *filter)
{
	Loom__ResourceSearch s = LOOM__RESOURCE_SEARCH__INIT;
	s.filter = (char *)filter;
	s.limit = 10000;
	return (Loom__ResourceSearchReply *)ctl_ask(ctl, "workflow", &s.base, &loom__resource_search_reply__descriptor,
	    "config");
}

static const Loom__Attr *rattr(const Loom__Resource *r, const char *name)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (strcmp(r->attrs[i]->name, name) == 0)
			return r->attrs[i];
	return NULL;
}

static const char *rstr(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = rattr(r, name);
	if (a == NULL || a->n_values == 0)
		return NULL;
	const Loom__Value *v = a->values[0];
	return v->v_case == LOOM__VALUE__V_STR ? v->str : v->v_case == LOOM__VALUE__V_REF ? v->ref : NULL;
}

static bool rbool(const Loom__Resource *r, const char *name)
{
	const Loom__Attr *a = rattr(r, name);
	return a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_BOOL && a->values[0]->bool_;
}

static const Loom__Resource *by_id(const Loom__ResourceSearchReply *r, const char *id)
{
	for (size_t i = 0; r && id && i < r->n_resources; i++)
		if (strcasecmp(r->resources[i]->object_id, id) == 0)
			return r->resources[i];
	return NULL;
}

static const Loom__Resource *by_name(const Loom__ResourceSearchReply *r, const char *attr, const char *name)
{
	for (size_t i = 0; r && i < r->n_resources; i++) {
		const char *n = rstr(r->resources[i], attr);
		if (n && strcmp(n, name) == 0)
			return r->resources[i];
	}
	return NULL;
}

static const char *const builtin_attrs[] = { "ObjectID", "ObjectType", "CreatedTime", "Creator", "ExpirationTime",
	"DisplayName", "Name", "DataType", "Multivalued", "StringRegex", "Description", "BoundObjectType",
	"BoundAttributeType", "Required", NULL };
static const char *const builtin_types[] = { "Person", "Group", "Set", "ManagementPolicyRule", "Request",
	"AttributeTypeDescription", "ObjectTypeDescription", "BindingDescription", NULL };
static const char *const schema_types[] = { "AttributeTypeDescription", "ObjectTypeDescription", "BindingDescription",
	NULL };

static bool in(const char *const *v, const char *s)
{
	for (; *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* ---- the directory's YAML ---- */

typedef struct x_attr {
	char *name;                /* attribute name */
	char *type;                /* string, integer, boolean, binary, datetime, reference */
	bool multi;                /* multi-valued */
	char *regex;               /* or NULL */
	char *description;         /* or NULL */
} x_attr_t;

typedef struct x_binding {
	char *attribute;           /* bound attribute */
	bool required;             /* must have a value */
	char *regex;               /* or NULL */
} x_binding_t;

typedef struct x_type {
	char *name;                /* object type */
	char *description;         /* or NULL */
	loom_cfg_array_t bindings; /* x_binding_t */
} x_type_t;

typedef struct x_schema {
	loom_cfg_array_t attributes; /* x_attr_t */
	loom_cfg_array_t types;      /* x_type_t */
} x_schema_t;

static const char *const type_words[] = { "string", "integer", "boolean", "binary", "datetime", "reference", NULL };
static const char *const data_types[] = { "String", "Integer", "Boolean", "Binary", "DateTime", "Reference", NULL };

static const loom_cfg_key_t x_attr_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(x_attr_t, name), .flags = LOOM_CFG_REQUIRED },
	{ .name = "type", .type = LOOM_CFG_STRING, .offset = offsetof(x_attr_t, type), .flags = LOOM_CFG_REQUIRED },
	{ .name = "multi", .type = LOOM_CFG_BOOL, .offset = offsetof(x_attr_t, multi), .def = "false" },
	{ .name = "regex", .type = LOOM_CFG_STRING, .offset = offsetof(x_attr_t, regex) },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(x_attr_t, description) },
	{ NULL }
};
static const loom_cfg_table_t x_attr_table = { .what = "attribute", .size = sizeof(x_attr_t), .keys = x_attr_keys };
static const loom_cfg_key_t x_binding_keys[] = {
	{ .name = "attribute", .type = LOOM_CFG_STRING, .offset = offsetof(x_binding_t, attribute), .flags = LOOM_CFG_REQUIRED },
	{ .name = "required", .type = LOOM_CFG_BOOL, .offset = offsetof(x_binding_t, required), .def = "false" },
	{ .name = "regex", .type = LOOM_CFG_STRING, .offset = offsetof(x_binding_t, regex) },
	{ NULL }
};
static const loom_cfg_table_t x_binding_table = { .what = "binding", .size = sizeof(x_binding_t),
	.keys = x_binding_keys };
static const loom_cfg_key_t x_type_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(x_type_t, name), .flags = LOOM_CFG_REQUIRED },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(x_type_t, description) },
	{ .name = "bindings", .type = LOOM_CFG_LIST, .offset = offsetof(x_type_t, bindings), .sub = &x_binding_table },
	{ NULL }
};
static const loom_cfg_table_t x_type_table = { .what = "type", .size = sizeof(x_type_t), .keys = x_type_keys };
static const loom_cfg_key_t x_schema_keys[] = {
	{ .name = "attributes", .type = LOOM_CFG_LIST, .offset = offsetof(x_schema_t, attributes), .sub = &x_attr_table },
	{ .name = "types", .type = LOOM_CFG_LIST, .offset = offsetof(x_schema_t, types), .sub = &x_type_table },
	{ NULL }
};
static const loom_cfg_table_t x_schema_table = { .what = "schema", .keys = x_schema_keys };

typedef struct x_set {
	char *name;                /* DisplayName */
	char *description;         /* or NULL */
	char *filter;              /* or NULL */
	loom_cfg_strlist_t members;/* explicit members by AccountName (or ObjectID) */
} x_set_t;

typedef struct x_sets {
	loom_cfg_array_t sets;     /* x_set_t */
} x_sets_t;

static const loom_cfg_key_t x_set_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(x_set_t, name), .flags = LOOM_CFG_REQUIRED },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(x_set_t, description) },
	{ .name = "filter", .type = LOOM_CFG_STRING, .offset = offsetof(x_set_t, filter) },
	{ .name = "explicit_members", .type = LOOM_CFG_STRLIST, .offset = offsetof(x_set_t, members) },
	{ NULL }
};
static const loom_cfg_table_t x_set_table = { .what = "set", .size = sizeof(x_set_t), .keys = x_set_keys };
static const loom_cfg_key_t x_sets_keys[] = {
	{ .name = "sets", .type = LOOM_CFG_LIST, .offset = offsetof(x_sets_t, sets), .sub = &x_set_table },
	{ NULL }
};
static const loom_cfg_table_t x_sets_table = { .what = "sets", .keys = x_sets_keys };

/* YAML single-quoted scalar. */
static void yq(loom_buf_t *b, const char *s)
{
	loom_buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			loom_buf_addc(b, '\'');
		loom_buf_addc(b, *s);
	}
	loom_buf_addc(b, '\'');
}

static int data_type_index(const char *dt)
{
	for (int i = 0; data_types[i]; i++)
		if (dt && strcmp(dt, data_types[i]) == 0)
			return i;
	return -1;
}

/* ---- files ---- */

static char *read_all(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		loom_buf_add(&b, chunk, n);
	fclose(f);
	if (ret_len)
		*ret_len = b.len;
	return loom_buf_steal(&b);
}

static int mkdirs(const char *path)
{
	char *p = loom_strdup(path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				free(p);
				return -1;
			}
			*s = '/';
		}
	int rc = mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
	free(p);
	return rc;
}

static char *conf_dir(ctl_t *ctl)
{
	char *c = loom_strdup(ctl->cfg.path);
	char *d = loom_strdup(dirname(c));
	free(c);
	return d;
}

/* The three file directories, relative to the configuration directory. */
static const char *const file_dirs[] = { "policy", "policy/workflows", "sync", NULL };

static char **list_yaml(const char *dir, size_t *ret_n)
{
	char **names = NULL;
	loom_cfg_diags_t d = { 0 };
	*ret_n = 0;
	if (loom_config_list_yaml(dir, &names, ret_n, &d) < 0)
		*ret_n = 0;
	loom_cfg_diags_release(&d);
	return names;
}

/* ---- export ---- */

static int write_out(const char *path, const loom_buf_t *b)
{
	char *err = NULL;
	if (loom_file_replace(path, b->data ? b->data : "", b->len, 0644, &err) < 0) {
		fprintf(stderr, "loomctl config export: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int export_schema(ctl_t *ctl, const char *to)
{
	Loom__ResourceSearchReply *ra = search(ctl, "/AttributeTypeDescription");
	Loom__ResourceSearchReply *rt = ra ? search(ctl, "/ObjectTypeDescription") : NULL;
	Loom__ResourceSearchReply *rb = rt ? search(ctl, "/BindingDescription") : NULL;
	if (rb == NULL) {
		if (ra)
			protobuf_c_message_free_unpacked(&ra->base, NULL);
		if (rt)
			protobuf_c_message_free_unpacked(&rt->base, NULL);
		return -1;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "# The policy service's schema, exported by loomctl config export: the\n"
	    "# attributes, types and bindings beyond the built-in ones.\nattributes:\n");
	size_t na = 0;
	for (size_t i = 0; i < ra->n_resources; i++) {
		const Loom__Resource *r = ra->resources[i];
		const char *name = rstr(r, "Name");
		int dt = data_type_index(rstr(r, "DataType"));
		if (name == NULL || dt < 0 || in(builtin_attrs, name))
			continue;
		loom_buf_printf(&b, "  - name: %s\n    type: %s\n", name, type_words[dt]);
		if (rbool(r, "Multivalued"))
			loom_buf_adds(&b, "    multi: true\n");
		if (rstr(r, "StringRegex")) {
			loom_buf_adds(&b, "    regex: ");
			yq(&b, rstr(r, "StringRegex"));
			loom_buf_addc(&b, '\n');
		}
		if (rstr(r, "Description")) {
			loom_buf_adds(&b, "    description: ");
			yq(&b, rstr(r, "Description"));
			loom_buf_addc(&b, '\n');
		}
		na++;
	}
	if (na == 0)
		b.len -= strlen("attributes:\n"), loom_buf_adds(&b, "attributes: []\n");
	loom_buf_adds(&b, "types:\n");
	size_t nt = 0;
	for (size_t i = 0; i < rt->n_resources; i++) {
		const Loom__Resource *t = rt->resources[i];
		const char *tn = rstr(t, "Name");
		if (tn == NULL || in(schema_types, tn))
			continue;
		loom_buf_t bb = LOOM_BUF_INIT;
		for (size_t k = 0; k < rb->n_resources; k++) {
			const Loom__Resource *bd = rb->resources[k];
			const char *ot = rstr(bd, "BoundObjectType");
			if (ot == NULL || strcasecmp(ot, t->object_id) != 0)
				continue;
			const Loom__Resource *a = by_id(ra, rstr(bd, "BoundAttributeType"));
			const char *an = a ? rstr(a, "Name") : NULL;
			if (an == NULL)
				continue;
			loom_buf_printf(&bb, "      - attribute: %s\n", an);
			if (rbool(bd, "Required"))
				loom_buf_adds(&bb, "        required: true\n");
			if (rstr(bd, "StringRegex")) {
				loom_buf_adds(&bb, "        regex: ");
				yq(&bb, rstr(bd, "StringRegex"));
				loom_buf_addc(&bb, '\n');
			}
		}
		if (in(builtin_types, tn) && bb.len == 0) {
			loom_buf_release(&bb);
			continue;
		}
		loom_buf_printf(&b, "  - name: %s\n", tn);
		if (rstr(t, "Description") && !in(builtin_types, tn)) {
			loom_buf_adds(&b, "    description: ");
			yq(&b, rstr(t, "Description"));
			loom_buf_addc(&b, '\n');
		}
		if (bb.len) {
			loom_buf_adds(&b, "    bindings:\n");
			loom_buf_add(&b, bb.data, bb.len);
		}
		loom_buf_release(&bb);
		nt++;
	}
	if (nt == 0)
		b.len -= strlen("types:\n"), loom_buf_adds(&b, "types: []\n");
	char *d = loom_sprintf("%s/schema", to);
	char *p = loom_sprintf("%s/schema.yaml", d);
	int rc = mkdirs(d) < 0 ? -1 : write_out(p, &b);
	printf("exported %s: %zu attributes, %zu types\n", p, na, nt);
	free(d);
	free(p);
	loom_buf_release(&b);
	protobuf_c_message_free_unpacked(&ra->base, NULL);
	protobuf_c_message_free_unpacked(&rt->base, NULL);
	protobuf_c_message_free_unpacked(&rb->base, NULL);
	return rc;
}

static int export_sets(ctl_t *ctl, const char *to)
{
	Loom__ResourceSearchReply *rs = search(ctl, "/Set");
	if (rs == NULL)
		return -1;
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_adds(&b, "# Sets of the policy service, exported by loomctl config export (explicit\n"
	    "# members by AccountName, matched again where they are imported).\nsets:\n");
	size_t n = 0;
	for (size_t i = 0; i < rs->n_resources; i++) {
		const Loom__Resource *s = rs->resources[i];
		const char *name = rstr(s, "DisplayName");
		if (name == NULL)
			continue;
		loom_buf_adds(&b, "  - name: ");
		yq(&b, name);
		loom_buf_addc(&b, '\n');
		if (rstr(s, "Description")) {
			loom_buf_adds(&b, "    description: ");
			yq(&b, rstr(s, "Description"));
			loom_buf_addc(&b, '\n');
		}
		if (rstr(s, "Filter")) {
			loom_buf_adds(&b, "    filter: ");
			yq(&b, rstr(s, "Filter"));
			loom_buf_addc(&b, '\n');
		}
		const Loom__Attr *em = rattr(s, "ExplicitMember");
		if (em && em->n_values) {
			loom_buf_adds(&b, "    explicit_members: [");
			for (size_t k = 0; k < em->n_values; k++) {
				const char *id = em->values[k]->v_case == LOOM__VALUE__V_REF ? em->values[k]->ref : "";
				char *f = loom_sprintf("/*[ObjectID = '%s']", id);
				Loom__ResourceSearchReply *m = search(ctl, f);
				free(f);
				const char *acct = m && m->n_resources ? rstr(m->resources[0], "AccountName") : NULL;
				if (k)
					loom_buf_adds(&b, ", ");
				yq(&b, acct ? acct : id);
				if (acct == NULL)
					fprintf(stderr, "loomctl config export: set '%s': member %s has no AccountName: exported by "
					    "ObjectID, which another environment will not know\n", name, id);
				if (m)
					protobuf_c_message_free_unpacked(&m->base, NULL);
			}
			loom_buf_adds(&b, "]\n");
		}
		n++;
	}
	if (n == 0)
		b.len -= strlen("sets:\n"), loom_buf_adds(&b, "sets: []\n");
	char *d = loom_sprintf("%s/sets", to);
	char *p = loom_sprintf("%s/sets.yaml", d);
	int rc = mkdirs(d) < 0 ? -1 : write_out(p, &b);
	printf("exported %s: %zu sets\n", p, n);
	free(d);
	free(p);
	loom_buf_release(&b);
	protobuf_c_message_free_unpacked(&rs->base, NULL);
	return rc;
}

static int export_files(ctl_t *ctl, const char *to)
{
	char *cd = conf_dir(ctl);
	int rc = 0;
	for (size_t k = 0; file_dirs[k] && rc == 0; k++) {
		char *src = loom_sprintf("%s/%s", cd, file_dirs[k]);
		char *dst = loom_sprintf("%s/%s", to, file_dirs[k]);
		size_t n;
		char **names = list_yaml(src, &n);
		if (mkdirs(dst) < 0) {
			fprintf(stderr, "loomctl config export: cannot make '%s': %s\n", dst, strerror(errno));
			rc = -1;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			char *sp = loom_sprintf("%s/%s", src, names[i]);
			char *dp = loom_sprintf("%s/%s", dst, names[i]);
			size_t len;
			char *data = read_all(sp, &len);
			char *err = NULL;
			if (data == NULL || loom_file_replace(dp, data, len, 0644, &err) < 0) {
				fprintf(stderr, "loomctl config export: %s: %s\n", data ? dp : sp, err ? err : strerror(errno));
				rc = -1;
			} else {
				printf("exported %s\n", dp);
			}
			free(err);
			free(data);
			free(sp);
			free(dp);
		}
		loom_config_names_free(names, n);
		free(src);
		free(dst);
	}
	free(cd);
	return rc;
}

static int config_export(ctl_t *ctl, const char *to)
{
	if (mkdirs(to) < 0) {
		fprintf(stderr, "loomctl config export: cannot make '%s': %s\n", to, strerror(errno));
		return 1;
	}
	if (export_schema(ctl, to) < 0 || export_sets(ctl, to) < 0 || export_files(ctl, to) < 0)
		return 1;
	return 0;
}

/* ---- import: the plan ---- */

enum { STEP_ATTR, STEP_TYPE, STEP_BINDING, STEP_SET, STEP_FILE };

typedef struct step {
	int kind;                  /* STEP_* */
	char *text;                /* the diff line */
	Loom__Request *rq;         /* the request to make (not for files) */
	char *bind_type;           /* STEP_BINDING with a type made in this import: its Name */
	char *bind_attr;           /* ... an attribute made in this import */
	char *file;                /* STEP_FILE: relative path */
	char *data;                /* ... new content, or NULL: remove */
	size_t len;
} step_t;

typedef struct plan {
	step_t *v;
	size_t n;
	char **notes;              /* what the import leaves alone */
	size_t nnotes;
} plan_t;

static step_t *plan_add(plan_t *p, int kind, char *text)
{
	p->v = loom_realloc(p->v, (p->n + 1) * sizeof *p->v);
	step_t *s = &p->v[p->n++];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->text = text;
	return s;
}

static void plan_note(plan_t *p, char *text)
{
	p->notes = loom_realloc(p->notes, (p->nnotes + 1) * sizeof *p->notes);
	p->notes[p->nnotes++] = text;
}

static Loom__Request *req_new(int op, const char *type, const char *id)
{
	Loom__Request *rq = loom_malloc(sizeof *rq);
	loom__request__init(rq);
	rq->operation = op;
	rq->target_type = loom_strdup(type ? type : "");
	rq->target_id = loom_strdup(id ? id : "");
	return rq;
}

static void req_set(Loom__Request *rq, const char *attr, const char *value)
{
	Loom__RequestChange *c = loom_malloc(sizeof *c);
	loom__request_change__init(c);
	c->attr = loom_strdup(attr);
	c->op = LOOM__REQUEST_CHANGE__OP__REPLACE;
	if (value) {
		c->values = loom_calloc(1, sizeof *c->values);
		Loom__Value *v = loom_malloc(sizeof *v);
		loom__value__init(v);
		v->v_case = LOOM__VALUE__V_STR;
		v->str = loom_strdup(value);
		c->values[c->n_values++] = v;
	}
	rq->changes = loom_realloc(rq->changes, (rq->n_changes + 1) * sizeof *rq->changes);
	rq->changes[rq->n_changes++] = c;
}

static bool same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void plan_schema(ctl_t *ctl, const x_schema_t *xs, plan_t *p, Loom__ResourceSearchReply *ra,
    Loom__ResourceSearchReply *rt, Loom__ResourceSearchReply *rb)
{
	(void)ctl;
	const x_attr_t *xa = xs->attributes.v;
	for (size_t i = 0; i < xs->attributes.n; i++) {
		const Loom__Resource *r = by_name(ra, "Name", xa[i].name);
		int ti = -1;
		for (int k = 0; type_words[k]; k++)
			if (strcmp(type_words[k], xa[i].type) == 0)
				ti = k;
		if (ti < 0) {
			plan_note(p, loom_sprintf("attribute %s: unknown type '%s' (left out)", xa[i].name, xa[i].type));
			continue;
		}
		if (r == NULL) {
			step_t *s = plan_add(p, STEP_ATTR, loom_sprintf("+ attribute %s (%s%s%s%s)", xa[i].name, type_words[ti],
			    xa[i].multi ? ", multi" : "", xa[i].regex ? ", regex " : "", xa[i].regex ? xa[i].regex : ""));
			s->rq = req_new(LOOM__REQUEST__OPERATION__CREATE, "AttributeTypeDescription", NULL);
			req_set(s->rq, "Name", xa[i].name);
			req_set(s->rq, "DataType", data_types[ti]);
			if (xa[i].multi)
				req_set(s->rq, "Multivalued", "true");
			if (xa[i].regex)
				req_set(s->rq, "StringRegex", xa[i].regex);
			if (xa[i].description)
				req_set(s->rq, "Description", xa[i].description);
			continue;
		}
		Loom__Request *rq = req_new(LOOM__REQUEST__OPERATION__MODIFY, "AttributeTypeDescription", r->object_id);
		loom_buf_t t = LOOM_BUF_INIT;
		loom_buf_printf(&t, "~ attribute %s:", xa[i].name);
		if (data_type_index(rstr(r, "DataType")) != ti) {
			req_set(rq, "DataType", data_types[ti]);
			loom_buf_printf(&t, " type %s -> %s", rstr(r, "DataType"), data_types[ti]);
		}
		if (rbool(r, "Multivalued") != xa[i].multi) {
			req_set(rq, "Multivalued", xa[i].multi ? "true" : "false");
			loom_buf_printf(&t, " multi %s -> %s", xa[i].multi ? "false" : "true", xa[i].multi ? "true" : "false");
		}
		if (!same_str(rstr(r, "StringRegex"), xa[i].regex)) {
			req_set(rq, "StringRegex", xa[i].regex);
			loom_buf_printf(&t, " regex '%s' -> '%s'", rstr(r, "StringRegex") ? rstr(r, "StringRegex") : "",
			    xa[i].regex ? xa[i].regex : "");
		}
		if (!same_str(rstr(r, "Description"), xa[i].description)) {
			req_set(rq, "Description", xa[i].description);
			loom_buf_adds(&t, " description");
		}
		if (rq->n_changes)
			plan_add(p, STEP_ATTR, loom_buf_steal(&t))->rq = rq;
		else
			protobuf_c_message_free_unpacked(&rq->base, NULL);
		loom_buf_release(&t);
	}
	for (size_t i = 0; ra && i < ra->n_resources; i++) {
		const char *n = rstr(ra->resources[i], "Name");
		bool there = false;
		for (size_t k = 0; n && k < xs->attributes.n && !there; k++)
			there = strcmp(xa[k].name, n) == 0;
		if (n && !there && !in(builtin_attrs, n))
			plan_note(p, loom_sprintf("attribute %s is only here (an import deletes no schema: delete it by a request "
			    "if it must go)", n));
	}
	const x_type_t *xt = xs->types.v;
	for (size_t i = 0; i < xs->types.n; i++) {
		const Loom__Resource *t = by_name(rt, "Name", xt[i].name);
		if (t == NULL) {
			step_t *s = plan_add(p, STEP_TYPE, loom_sprintf("+ type %s", xt[i].name));
			s->rq = req_new(LOOM__REQUEST__OPERATION__CREATE, "ObjectTypeDescription", NULL);
			req_set(s->rq, "Name", xt[i].name);
			if (xt[i].description)
				req_set(s->rq, "Description", xt[i].description);
		}
	}
	for (size_t i = 0; i < xs->types.n; i++) {
		const Loom__Resource *t = by_name(rt, "Name", xt[i].name);
		const x_binding_t *xb = xt[i].bindings.v;
		for (size_t k = 0; k < xt[i].bindings.n; k++) {
			const Loom__Resource *a = by_name(ra, "Name", xb[k].attribute);
			const Loom__Resource *bd = NULL;
			for (size_t j = 0; t && a && j < rb->n_resources && bd == NULL; j++) {
				const char *ot = rstr(rb->resources[j], "BoundObjectType");
				const char *at = rstr(rb->resources[j], "BoundAttributeType");
				if (ot && at && strcasecmp(ot, t->object_id) == 0 && strcasecmp(at, a->object_id) == 0)
					bd = rb->resources[j];
			}
			if (bd == NULL) {
				step_t *s = plan_add(p, STEP_BINDING, loom_sprintf("+ binding %s on %s%s%s%s", xb[k].attribute,
				    xt[i].name, xb[k].required ? " (required)" : "", xb[k].regex ? ", regex " : "",
				    xb[k].regex ? xb[k].regex : ""));
				s->rq = req_new(LOOM__REQUEST__OPERATION__CREATE, "BindingDescription", NULL);
				req_set(s->rq, "BoundObjectType", t ? t->object_id : "");
				req_set(s->rq, "BoundAttributeType", a ? a->object_id : "");
				if (xb[k].required)
					req_set(s->rq, "Required", "true");
				if (xb[k].regex)
					req_set(s->rq, "StringRegex", xb[k].regex);
				if (t == NULL)
					s->bind_type = loom_strdup(xt[i].name);
				if (a == NULL)
					s->bind_attr = loom_strdup(xb[k].attribute);
				continue;
			}
			Loom__Request *rq = req_new(LOOM__REQUEST__OPERATION__MODIFY, "BindingDescription", bd->object_id);
			if (rbool(bd, "Required") != xb[k].required)
				req_set(rq, "Required", xb[k].required ? "true" : "false");
			if (!same_str(rstr(bd, "StringRegex"), xb[k].regex))
				req_set(rq, "StringRegex", xb[k].regex);
			if (rq->n_changes)
				plan_add(p, STEP_BINDING, loom_sprintf("~ binding %s on %s: %s%s", xb[k].attribute, xt[i].name,
				    xb[k].required ? "required" : "optional", xb[k].regex ? ", regex changed" : ""))->rq = rq;
			else
				protobuf_c_message_free_unpacked(&rq->base, NULL);
		}
	}
}

static char *members_text(const loom_cfg_strlist_t *m)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < m->n; i++)
		loom_buf_printf(&b, "%s%s", i ? ", " : "", m->v[i]);
	return loom_buf_steal(&b);
}

/* ObjectIDs of the members (AccountName, else an ObjectID); unknown ones noted. */
static char **resolve_members(ctl_t *ctl, const x_set_t *s, size_t *ret_n, plan_t *p)
{
	char **v = loom_calloc(s->members.n + 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < s->members.n; i++) {
		const char *m = s->members.v[i];
		char *f = strchr(m, '\'') ? NULL : loom_sprintf("/*[AccountName = '%s' or ObjectID = '%s']", m, m);
		Loom__ResourceSearchReply *r = f ? search(ctl, f) : NULL;
		free(f);
		if (r && r->n_resources == 1)
			v[n++] = loom_strdup(r->resources[0]->object_id);
		else
			plan_note(p, loom_sprintf("set '%s': member '%s' is no resource here (left out)", s->name, m));
		if (r)
			protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	*ret_n = n;
	return v;
}

static void plan_sets(ctl_t *ctl, const x_sets_t *xs, plan_t *p, Loom__ResourceSearchReply *rs)
{
	const x_set_t *v = xs->sets.v;
	for (size_t i = 0; i < xs->sets.n; i++) {
		const Loom__Resource *r = by_name(rs, "DisplayName", v[i].name);
		size_t nm;
		char **ids = resolve_members(ctl, &v[i], &nm, p);
		if (r == NULL) {
			char *mt = members_text(&v[i].members);
			step_t *s = plan_add(p, STEP_SET, loom_sprintf("+ set '%s'%s%s%s%s", v[i].name, v[i].filter ? ": filter " : "",
			    v[i].filter ? v[i].filter : "", nm ? ", members " : "", nm ? mt : ""));
			free(mt);
			s->rq = req_new(LOOM__REQUEST__OPERATION__CREATE, "Set", NULL);
			req_set(s->rq, "DisplayName", v[i].name);
			if (v[i].filter)
				req_set(s->rq, "Filter", v[i].filter);
			if (v[i].description)
				req_set(s->rq, "Description", v[i].description);
			for (size_t k = 0; k < nm; k++)
				req_set(s->rq, "ExplicitMember", ids[k]);
			/* several ExplicitMember replaces: merged into one change below */
		} else {
			Loom__Request *rq = req_new(LOOM__REQUEST__OPERATION__MODIFY, "Set", r->object_id);
			loom_buf_t t = LOOM_BUF_INIT;
			loom_buf_printf(&t, "~ set '%s':", v[i].name);
			if (!same_str(rstr(r, "Filter"), v[i].filter)) {
				req_set(rq, "Filter", v[i].filter);
				loom_buf_printf(&t, " filter '%s' -> '%s'", rstr(r, "Filter") ? rstr(r, "Filter") : "",
				    v[i].filter ? v[i].filter : "");
			}
			if (!same_str(rstr(r, "Description"), v[i].description)) {
				req_set(rq, "Description", v[i].description);
				loom_buf_adds(&t, " description");
			}
			const Loom__Attr *em = rattr(r, "ExplicitMember");
			bool same = (em ? em->n_values : 0) == nm;
			for (size_t k = 0; same && k < nm; k++) {
				bool f = false;
				for (size_t j = 0; j < em->n_values && !f; j++)
					f = em->values[j]->v_case == LOOM__VALUE__V_REF && strcasecmp(em->values[j]->ref, ids[k]) == 0;
				same = f;
			}
			if (!same) {
				req_set(rq, "ExplicitMember", NULL);
				for (size_t k = 0; k < nm; k++)
					req_set(rq, "ExplicitMember", ids[k]);
				char *mt = members_text(&v[i].members);
				loom_buf_printf(&t, " explicit members -> [%s]", mt);
				free(mt);
			}
			if (rq->n_changes)
				plan_add(p, STEP_SET, loom_buf_steal(&t))->rq = rq;
			else
				protobuf_c_message_free_unpacked(&rq->base, NULL);
			loom_buf_release(&t);
		}
		for (size_t k = 0; k < nm; k++)
			free(ids[k]);
		free(ids);
	}
	for (size_t i = 0; rs && i < rs->n_resources; i++) {
		const char *n = rstr(rs->resources[i], "DisplayName");
		bool there = false;
		for (size_t k = 0; n && k < xs->sets.n && !there; k++)
			there = strcmp(v[k].name, n) == 0;
		if (n && !there)
			plan_note(p, loom_sprintf("set '%s' is only here (an import deletes no Set)", n));
	}
}

/* Several REPLACE changes of one attribute become one with every value. */
static void merge_changes(Loom__Request *rq)
{
	for (size_t i = 0; i < rq->n_changes; i++)
		for (size_t j = i + 1; j < rq->n_changes;) {
			if (strcmp(rq->changes[i]->attr, rq->changes[j]->attr) != 0) {
				j++;
				continue;
			}
			Loom__RequestChange *a = rq->changes[i], *b = rq->changes[j];
			a->values = loom_realloc(a->values, (a->n_values + b->n_values + 1) * sizeof *a->values);
			for (size_t k = 0; k < b->n_values; k++)
				a->values[a->n_values++] = b->values[k];
			b->n_values = 0;
			protobuf_c_message_free_unpacked(&b->base, NULL);
			memmove(&rq->changes[j], &rq->changes[j + 1], (rq->n_changes - j - 1) * sizeof *rq->changes);
			rq->n_changes--;
		}
}

/* Lines that differ, for the diff (at most 6 shown). */
static void line_diff(loom_buf_t *t, const char *a, const char *b)
{
	int shown = 0;
	unsigned line = 1;
	const char *pa = a, *pb = b;
	size_t differ = 0;
	while (*pa || *pb) {
		size_t la = strcspn(pa, "\n"), lb = strcspn(pb, "\n");
		if (la != lb || strncmp(pa, pb, la) != 0) {
			differ++;
			if (shown < 6) {
				if (*pa)
					loom_buf_printf(t, "\n      - %u: %.*s", line, (int)la, pa);
				if (*pb)
					loom_buf_printf(t, "\n      + %u: %.*s", line, (int)lb, pb);
				shown++;
			}
		}
		pa += la + (pa[la] == '\n');
		pb += lb + (pb[lb] == '\n');
		line++;
	}
	if (differ > (size_t)shown)
		loom_buf_printf(t, "\n      ... %zu lines differ in all", differ);
}

static void plan_files(ctl_t *ctl, const char *from, plan_t *p)
{
	char *cd = conf_dir(ctl);
	for (size_t k = 0; file_dirs[k]; k++) {
		char *src = loom_sprintf("%s/%s", from, file_dirs[k]);
		char *dst = loom_sprintf("%s/%s", cd, file_dirs[k]);
		size_t ns, nd;
		char **sn = list_yaml(src, &ns), **dn = list_yaml(dst, &nd);
		for (size_t i = 0; i < ns; i++) {
			char *sp = loom_sprintf("%s/%s", src, sn[i]), *dp = loom_sprintf("%s/%s", dst, sn[i]);
			size_t len;
			char *data = read_all(sp, &len);
			char *cur = read_all(dp, NULL);
			char *rel = loom_sprintf("%s/%s", file_dirs[k], sn[i]);
			if (data && (cur == NULL || strcmp(cur, data) != 0)) {
				loom_buf_t t = LOOM_BUF_INIT;
				loom_buf_printf(&t, "%c file %s", cur ? '~' : '+', rel);
				if (cur)
					line_diff(&t, cur, data);
				step_t *s = plan_add(p, STEP_FILE, loom_buf_steal(&t));
				loom_buf_release(&t);
				s->file = rel;
				s->data = data;
				s->len = len;
				rel = NULL;
				data = NULL;
			}
			free(rel);
			free(data);
			free(cur);
			free(sp);
			free(dp);
		}
		for (size_t i = 0; i < nd; i++) {
			bool there = false;
			for (size_t j = 0; j < ns && !there; j++)
				there = strcmp(sn[j], dn[i]) == 0;
			if (!there) {
				step_t *s = plan_add(p, STEP_FILE, loom_sprintf("- file %s/%s", file_dirs[k], dn[i]));
				s->file = loom_sprintf("%s/%s", file_dirs[k], dn[i]);
			}
		}
		loom_config_names_free(sn, ns);
		loom_config_names_free(dn, nd);
		free(src);
		free(dst);
	}
	free(cd);
}

static void plan_release(plan_t *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].text);
		if (p->v[i].rq)
			protobuf_c_message_free_unpacked(&p->v[i].rq->base, NULL);
		free(p->v[i].bind_type);
		free(p->v[i].bind_attr);
		free(p->v[i].file);
		free(p->v[i].data);
	}
	free(p->v);
	for (size_t i = 0; i < p->nnotes; i++)
		free(p->notes[i]);
	free(p->notes);
}

/* ---- import: checking the files ---- */

/* A daemon next to loomctl (the build tree or an installed bin directory). */
static char *find_binary(const char *name, const char *subdir)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *d = dirname(self);
		char *c1 = loom_sprintf("%s/../%s/%s", d, subdir, name);
		if (access(c1, X_OK) == 0)
			return c1;
		free(c1);
		char *c2 = loom_sprintf("%s/%s", d, name);
		if (access(c2, X_OK) == 0)
			return c2;
		free(c2);
	}
	return NULL;
}

static int run_check(const char *bin, const char *cfg)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", 1);
		if (null >= 0)
			dup2(null, 1);
		execl(bin, bin, "-c", cfg, "--check-config", (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Copies file src to dst for the import's check, or says why not. */
static int copy_file(const char *src, const char *dst)
{
	size_t len;
	char *data = read_all(src, &len);
	FILE *f = data ? fopen(dst, "wb") : NULL;
	bool copied = f != NULL && fwrite(data, 1, len, f) == len;
	if (f != NULL && fclose(f) != 0)
		copied = false;
	if (!copied)
		fprintf(stderr, "loomctl config import: cannot copy %s to %s: %s\n", src, dst, strerror(errno));
	free(data);
	return copied ? 0 : -1;
}

static int copy_tree_yaml(const char *src, const char *dst)
{
	size_t n;
	char **names = list_yaml(src, &n);
	int rc = mkdirs(dst);
	if (rc < 0)
		fprintf(stderr, "loomctl config import: cannot make %s: %s\n", dst, strerror(errno));
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *sp = loom_sprintf("%s/%s", src, names[i]), *dp = loom_sprintf("%s/%s", dst, names[i]);
		rc = copy_file(sp, dp);
		free(sp);
		free(dp);
	}
	loom_config_names_free(names, n);
	return rc;
}

/* The configuration as the import would leave it, checked by the daemons. */
static int check_files(ctl_t *ctl, const char *from)
{
	const char *td = getenv("TMPDIR");
	char *tmpl = loom_sprintf("%s/loomctl-config.XXXXXX", td && *td ? td : "/tmp");
	char *tmp = mkdtemp(tmpl);
	if (tmp == NULL) {
		fprintf(stderr, "loomctl config import: cannot make a directory to check the files in (%s): %s\n", tmpl,
		    strerror(errno));
		free(tmpl);
		return -1;
	}
	char *cd = conf_dir(ctl);
	int rc = 0;
	char *cfg = loom_sprintf("%s/loom.yaml", tmp);
	if (copy_file(ctl->cfg.path, cfg) < 0)
		rc = -1;
	static const char *const dirs[] = { "policy", "policy/workflows", "sync", "agents", NULL };
	for (size_t k = 0; dirs[k] && rc == 0; k++) {
		char *s = loom_sprintf("%s/%s", strcmp(dirs[k], "agents") == 0 ? cd : from, dirs[k]);
		char *d = loom_sprintf("%s/%s", tmp, dirs[k]);
		rc = copy_tree_yaml(s, d);
		free(s);
		free(d);
	}
	/* the workflows' external programs, relative to their files, are not
	 * copied: their check is the target environment's */
	static const struct { const char *name, *dir; } bins[] = { { "loom-workflow", "workflow" }, { "loom-engine", "engine" } };
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		char *b = find_binary(bins[i].name, bins[i].dir);
		if (b == NULL) {
			fprintf(stderr, "loomctl config import: %s not found beside loomctl: its check is skipped\n", bins[i].name);
			continue;
		}
		if (run_check(b, cfg) < 0) {
			fprintf(stderr, "loomctl config import: %s --check-config refuses the imported files (above)\n",
			    bins[i].name);
			rc = -1;
		}
		free(b);
	}
	char *rm = loom_sprintf("rm -rf '%s'", tmp);
	if (system(rm) != 0)
		fprintf(stderr, "loomctl config import: cannot remove %s\n", tmp);
	free(rm);
	free(cfg);
	free(cd);
	free(tmpl);
	return rc;
}

/* ---- import: applying ---- */

static int submit(ctl_t *ctl, const char *as, Loom__Request *rq, char **ret_id)
{
	if (rq->requester != protobuf_c_empty_string)
		free(rq->requester);
	rq->requester = loom_strdup(as);
	Loom__RequestSubmit s = LOOM__REQUEST_SUBMIT__INIT;
	s.request = rq;
	Loom__RequestReply *r = (Loom__RequestReply *)ctl_ask(ctl, "workflow", &s.base, &loom__request_reply__descriptor,
	    "config import");
	if (r == NULL)
		return -1;
	int st = r->request ? (int)r->request->status : 0;
	int rc = 0;
	if (st != LOOM__REQUEST__STATUS__COMPLETED && st != LOOM__REQUEST__STATUS__POST_PROCESSING) {
		fprintf(stderr, "loomctl config import: request %s %s: %s\n", r->request ? r->request->id : "?",
		    ctl_request_status(st), r->request ? r->request->reason : "");
		rc = -1;
	} else if (ret_id) {
		*ret_id = loom_strdup(r->request->target_id);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

static int apply(ctl_t *ctl, plan_t *p, const char *as)
{
	char *cd = conf_dir(ctl);
	int rc = 0;
	/* ObjectIDs of what this import made, for the bindings */
	char **made_name = NULL, **made_id = NULL;
	size_t nmade = 0;
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		step_t *s = &p->v[i];
		if (s->rq) {
			if (s->kind == STEP_BINDING) {
				for (size_t k = 0; k < s->rq->n_changes; k++) {
					Loom__RequestChange *c = s->rq->changes[k];
					const char *want = strcmp(c->attr, "BoundObjectType") == 0 ? s->bind_type
					    : strcmp(c->attr, "BoundAttributeType") == 0 ? s->bind_attr : NULL;
					for (size_t j = 0; want && j < nmade; j++)
						if (strcmp(made_name[j], want) == 0) {
							free(c->values[0]->str);
							c->values[0]->str = loom_strdup(made_id[j]);
						}
				}
			}
			merge_changes(s->rq);
			char *id = NULL;
			if (submit(ctl, as, s->rq, &id) < 0) {
				fprintf(stderr, "loomctl config import: stopped at: %s (the steps before it are applied)\n", s->text);
				rc = -1;
				break;
			}
			if ((s->kind == STEP_ATTR || s->kind == STEP_TYPE) && s->rq->operation == LOOM__REQUEST__OPERATION__CREATE) {
				made_name = loom_realloc(made_name, (nmade + 1) * sizeof *made_name);
				made_id = loom_realloc(made_id, (nmade + 1) * sizeof *made_id);
				made_name[nmade] = loom_strdup(s->rq->changes[0]->values[0]->str); /* Name, the first change */
				made_id[nmade++] = loom_strdup(id);
			}
			free(id);
			printf("applied   %s\n", s->text);
			continue;
		}
		char *path = loom_sprintf("%s/%s", cd, s->file);
		char *err = NULL;
		if (s->data) {
			char *dir = loom_strdup(path);
			mkdirs(dirname(dir));
			free(dir);
			if (loom_file_replace(path, s->data, s->len, 0644, &err) < 0) {
				fprintf(stderr, "loomctl config import: %s\n", err);
				rc = -1;
			}
		} else if (unlink(path) < 0 && errno != ENOENT) {
			fprintf(stderr, "loomctl config import: cannot remove '%s': %s\n", path, strerror(errno));
			rc = -1;
		}
		if (rc == 0)
			printf("applied   %c file %s\n", s->text[0], s->file);
		free(err);
		free(path);
	}
	for (size_t i = 0; i < nmade; i++) {
		free(made_name[i]);
		free(made_id[i]);
	}
	free(made_name);
	free(made_id);
	free(cd);
	return rc;
}

static int load_yaml(const char *path, const loom_cfg_table_t *t, void *out, bool *ret_found)
{
	*ret_found = access(path, F_OK) == 0;
	if (!*ret_found)
		return 0;
	loom_cfg_diags_t d = { 0 };
	int rc = loom_config_load_file(path, t, out, &d);
	for (size_t i = 0; rc < 0 && i < d.n; i++)
		fprintf(stderr, "%s\n", d.v[i].text);
	loom_cfg_diags_release(&d);
	return rc;
}

static int config_import(ctl_t *ctl, const char *from, bool dry, const char *as)
{
	x_schema_t xs = { 0 };
	x_sets_t xt = { 0 };
	bool have_schema, have_sets;
	char *sp = loom_sprintf("%s/schema/schema.yaml", from), *tp = loom_sprintf("%s/sets/sets.yaml", from);
	int rc = load_yaml(sp, &x_schema_table, &xs, &have_schema) < 0 || load_yaml(tp, &x_sets_table, &xt, &have_sets) < 0
	    ? 1 : 0;
	free(sp);
	free(tp);
	plan_t p = { 0 };
	if (rc == 0 && (have_schema || have_sets)) {
		Loom__ResourceSearchReply *ra = search(ctl, "/AttributeTypeDescription");
		Loom__ResourceSearchReply *rt = ra ? search(ctl, "/ObjectTypeDescription") : NULL;
		Loom__ResourceSearchReply *rb = rt ? search(ctl, "/BindingDescription") : NULL;
		Loom__ResourceSearchReply *rs = rb ? search(ctl, "/Set") : NULL;
		if (rs == NULL) {
			rc = 1;
		} else {
			if (have_schema)
				plan_schema(ctl, &xs, &p, ra, rt, rb);
			if (have_sets)
				plan_sets(ctl, &xt, &p, rs);
		}
		if (ra)
			protobuf_c_message_free_unpacked(&ra->base, NULL);
		if (rt)
			protobuf_c_message_free_unpacked(&rt->base, NULL);
		if (rb)
			protobuf_c_message_free_unpacked(&rb->base, NULL);
		if (rs)
			protobuf_c_message_free_unpacked(&rs->base, NULL);
	}
	if (rc == 0)
		plan_files(ctl, from, &p);
	if (rc == 0) {
		static const char *const heads[] = { "schema: attributes", "schema: types", "schema: bindings", "sets", "files" };
		int last = -1;
		for (size_t i = 0; i < p.n; i++) {
			if (p.v[i].kind != last)
				printf("%s\n", heads[last = p.v[i].kind]);
			printf("  %2zu. %s\n", i + 1, p.v[i].text);
		}
		for (size_t i = 0; i < p.nnotes; i++)
			printf("  note: %s\n", p.notes[i]);
		if (p.n == 0)
			printf("no changes\n");
	}
	bool files = false;
	for (size_t i = 0; i < p.n; i++)
		files = files || p.v[i].kind == STEP_FILE;
	if (rc == 0 && files && check_files(ctl, from) < 0)
		rc = 1;
	if (rc == 0 && dry && p.n)
		printf("%zu changes (dry run: nothing applied)\n", p.n);
	else if (rc == 0 && p.n) {
		rc = apply(ctl, &p, as) < 0 ? 1 : 0;
		if (rc == 0)
			printf("%zu changes applied%s\n", p.n, files ? "; restart loom-workflow and loom-engine to load the files" : "");
	}
	plan_release(&p);
	loom_config_release(&x_schema_table, &xs);
	loom_config_release(&x_sets_table, &xt);
	return rc;
}

int ctl_config(ctl_t *ctl, int argc, char **argv)
{
	const char *usage = "usage: loomctl config export --to DIR | import --from DIR [--dry-run] [--as REQUESTER]\n";
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *dir = NULL, *as = "sync";
	bool dry = false;
	bool exp = strcmp(argv[1], "export") == 0, imp = strcmp(argv[1], "import") == 0;
	for (int i = 2; i < argc; i++) {
		const char *v;
		if (exp && strncmp(argv[i], "--to", 4) == 0 && (argv[i][4] == '\0' || argv[i][4] == '=')) {
			if ((v = ctl_option_value("config export", argc, argv, &i, "--to", 4)) == NULL)
				return 2;
			dir = v;
		} else if (imp && strncmp(argv[i], "--from", 6) == 0 && (argv[i][6] == '\0' || argv[i][6] == '=')) {
			if ((v = ctl_option_value("config import", argc, argv, &i, "--from", 6)) == NULL)
				return 2;
			dir = v;
		} else if (imp && strncmp(argv[i], "--as", 4) == 0 && (argv[i][4] == '\0' || argv[i][4] == '=')) {
			if ((v = ctl_option_value("config import", argc, argv, &i, "--as", 4)) == NULL)
				return 2;
			as = v;
		} else if (imp && strcmp(argv[i], "--dry-run") == 0) {
			dry = true;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if ((!exp && !imp) || dir == NULL) {
		fputs(usage, stderr);
		return 2;
	}
	if (ctl_load_config(ctl) < 0)
		return 1;
	return exp ? config_export(ctl, dir) : config_import(ctl, dir, dry, as);
}
