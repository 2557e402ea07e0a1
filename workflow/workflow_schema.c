/* workflow_schema.c - config/policy/NAME.yaml: attribute types, object types
 * and their bindings, request MPRs, administrators; and the schema check
 * every request's changes go through.
 *
 * Built-in on every type: ObjectID (reference), ObjectType (string),
 * CreatedTime (datetime), Creator (reference) - these four are set by the
 * service only - and ExpirationTime (datetime), DisplayName (string).
 * Built-in types: Person, Group, Set, ManagementPolicyRule, Request. A file
 * may add attributes, add types, and add bindings to any type. */
#include "workflow.h"
#include "loom_attrs.h"
#include "loom_alloc.h"
#include "loom_buf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the YAML tables ---- */

typedef struct cfg_attr {
	loom_cfg_text_t name;      /* attribute name */
	int type;                  /* index in type_names */
	bool multi;                /* multi-valued */
	loom_cfg_text_t regex;     /* POSIX extended regex, or absent */
	char *description;         /* free text */
} cfg_attr_t;

typedef struct cfg_binding {
	loom_cfg_text_t attribute; /* attribute bound */
	bool required;             /* must have a value */
	loom_cfg_text_t regex;     /* POSIX extended regex replacing the attribute's for this type, or absent */
} cfg_binding_t;

typedef struct cfg_type {
	loom_cfg_text_t name;      /* object type */
	loom_cfg_array_t bindings; /* cfg_binding_t */
	char *description;         /* free text */
} cfg_type_t;

typedef struct cfg_mpr {
	loom_cfg_text_t name;          /* unique name */
	bool disabled;                 /* ignored when true */
	char *description;             /* free text */
	loom_cfg_text_t requesters;    /* requester set: an XPath filter */
	loom_cfg_text_t relative;      /* or: attribute of the target holding the requester */
	loom_cfg_text_t requester_set; /* or: a Set (ObjectID or DisplayName) the requester must be in */
	loom_cfg_text_t before_set;    /* a Set the target must be in before */
	loom_cfg_text_t after_set;     /* a Set the target must be in after */
	loom_cfg_strlist_t operations; /* create, delete, read, add, remove, modify */
	loom_cfg_strlist_t attributes; /* '*' or names */
	loom_cfg_text_t before;        /* target-before filter */
	loom_cfg_text_t after;         /* target-after filter */
	loom_cfg_strlist_t authn;      /* AuthN workflow names */
	loom_cfg_strlist_t authz;      /* AuthZ workflow names */
	loom_cfg_strlist_t action;     /* Action workflow names */
} cfg_mpr_t;

typedef struct cfg_tmpr {
	loom_cfg_text_t name;              /* unique name */
	bool disabled;                     /* ignored when true */
	char *description;                 /* free text */
	loom_cfg_text_t set;               /* the transition set: ObjectID or DisplayName */
	int transition;                    /* 0 in, 1 out */
	loom_cfg_strlist_t action;         /* Action workflow names */
} cfg_tmpr_t;

typedef struct cfg_file {
	char *path;                        /* the file */
	loom_cfg_array_t tmprs;            /* cfg_tmpr_t */
	loom_cfg_array_t attributes;       /* cfg_attr_t */
	loom_cfg_array_t types;            /* cfg_type_t */
	loom_cfg_array_t mprs;             /* cfg_mpr_t */
	loom_cfg_strlist_t administrators; /* ObjectIDs granted everything */
	bool sync_unrestricted;    /* the built-in requester sync is granted everything */
} cfg_file_t;

static const char *const type_names[] = { "string", "integer", "boolean", "binary", "datetime", "reference", NULL };

static const loom_cfg_key_t attr_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_attr_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "attribute name" },
	{ .name = "type", .type = LOOM_CFG_ENUM, .offset = offsetof(cfg_attr_t, type), .flags = LOOM_CFG_REQUIRED,
	  .choices = type_names, .help = "value type" },
	{ .name = "multi", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_attr_t, multi), .def = "false",
	  .help = "multi-valued" },
	{ .name = "regex", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_attr_t, regex),
	  .help = "POSIX extended regular expression every string value must match (anchor it yourself)" },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_attr_t, description), .help = "free text" },
	{ NULL }
};
static const loom_cfg_table_t attr_table = { .what = "attribute", .size = sizeof(cfg_attr_t), .keys = attr_keys };

static const loom_cfg_key_t binding_keys[] = {
	{ .name = "attribute", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_binding_t, attribute),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "attribute bound to the type" },
	{ .name = "required", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_binding_t, required), .def = "false",
	  .help = "every resource of the type must have a value" },
	{ .name = "regex", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_binding_t, regex),
	  .help = "POSIX extended regular expression replacing the attribute's for this type (string attributes only)" },
	{ NULL }
};
static const loom_cfg_table_t binding_table = { .what = "binding", .size = sizeof(cfg_binding_t), .keys = binding_keys };

static const loom_cfg_key_t otype_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_type_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "object type (a built-in one gets more bindings)" },
	{ .name = "bindings", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_type_t, bindings), .sub = &binding_table,
	  .help = "attributes of the type" },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_type_t, description), .help = "free text" },
	{ NULL }
};
static const loom_cfg_table_t otype_table = { .what = "type", .size = sizeof(cfg_type_t), .keys = otype_keys };

static const loom_cfg_key_t mpr_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "unique MPR name" },
	{ .name = "disabled", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_mpr_t, disabled), .def = "false",
	  .help = "a disabled MPR grants nothing" },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_mpr_t, description), .help = "free text" },
	{ .name = "requesters", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, requesters),
	  .help = "requester set: an XPath filter the requester must be selected by, or sync (the built-in "
	          "requester of engine exports)" },
	{ .name = "relative_to_target", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, relative),
	  .help = "or: the requester must be a value of this attribute of the target (ObjectID: the target itself; "
	          "Manager; Owner)" },
	{ .name = "requester_set", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, requester_set),
	  .help = "or: a Set or Group (ObjectID or DisplayName) the requester must be a member of" },
	{ .name = "target_before_set", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, before_set),
	  .help = "a Set or Group the target must be a member of before the request (not for create)" },
	{ .name = "target_after_set", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, after_set),
	  .help = "a Set or Group the target must be a member of after the request (not for delete)" },
	{ .name = "operations", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_mpr_t, operations),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "create, delete, read, add, remove, modify" },
	{ .name = "attributes", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_mpr_t, attributes), .def = "'*'",
	  .help = "'*' or the attributes the MPR covers" },
	{ .name = "target_before", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, before),
	  .help = "XPath filter the target must match before the request (not for create)" },
	{ .name = "target_after", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_mpr_t, after),
	  .help = "XPath filter the target must match after the request (not for delete)" },
	{ .name = "authn_workflows", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_mpr_t, authn),
	  .help = "authentication workflows, run before the authorization workflows (docs/workflows.md)" },
	{ .name = "authz_workflows", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_mpr_t, authz),
	  .help = "authorization workflows (approvals, filter validation), run before the commit" },
	{ .name = "action_workflows", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_mpr_t, action),
	  .help = "action workflows, run after the commit" },
	{ NULL }
};
static const loom_cfg_table_t mpr_table = { .what = "mpr", .size = sizeof(cfg_mpr_t), .keys = mpr_keys };

static const char *const transition_names[] = { "in", "out", NULL };

static const loom_cfg_key_t tmpr_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_tmpr_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "unique set-transition MPR name" },
	{ .name = "disabled", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_tmpr_t, disabled), .def = "false",
	  .help = "a disabled MPR matches nothing" },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_tmpr_t, description), .help = "free text" },
	{ .name = "set", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_tmpr_t, set),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the transition set: its ObjectID or DisplayName" },
	{ .name = "transition", .type = LOOM_CFG_ENUM, .offset = offsetof(cfg_tmpr_t, transition),
	  .flags = LOOM_CFG_REQUIRED, .choices = transition_names, .help = "in (joins the set) or out (leaves it)" },
	{ .name = "action_workflows", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_tmpr_t, action),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "action workflows run for the member on the transition" },
	{ NULL }
};
static const loom_cfg_table_t tmpr_table = { .what = "set-transition mpr", .size = sizeof(cfg_tmpr_t), .keys = tmpr_keys };

static const loom_cfg_key_t file_keys[] = {
	{ .name = "attributes", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_file_t, attributes), .sub = &attr_table,
	  .help = "attribute types" },
	{ .name = "types", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_file_t, types), .sub = &otype_table,
	  .help = "object types and their bindings" },
	{ .name = "mprs", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_file_t, mprs), .sub = &mpr_table,
	  .help = "request management policy rules" },
	{ .name = "transition_mprs", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_file_t, tmprs), .sub = &tmpr_table,
	  .help = "set-transition management policy rules" },
	{ .name = "administrators", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_file_t, administrators),
	  .help = "ObjectIDs of requesters granted every request (besides the built-in requester sync)" },
	{ .name = "sync_unrestricted", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_file_t, sync_unrestricted),
	  .def = "true", .help = "the built-in requester sync (engine exports) is granted every request; false puts it "
	                         "under the MPRs (requesters: sync), as the FIM service MA's account is. A false in "
	                         "any file wins" },
	{ NULL }
};
static const loom_cfg_table_t file_table = { .what = "policy file", .keys = file_keys };

static int load_one(const char *path, void *element, loom_cfg_diags_t *diags)
{
	cfg_file_t *f = element;
	f->path = loom_strdup(path);
	return loom_config_load_file(path, &file_table, f, diags);
}

/* ---- building the schema ---- */

/* Built-in attributes: the first N_IMPLICIT are bound to every type; the
 * others are the schema types' own (a policy file may declare one again
 * with the same type and multiplicity, as the shipped schema.yaml does
 * with Description). */
static const struct {
	const char *name;          /* attribute name */
	int type;                  /* WF_* */
	bool system;               /* set by the service only */
	bool multi;                /* multi-valued */
	const char *description;   /* what it is */
} builtin_attrs[] = {
	{ "ObjectID", WF_REFERENCE, true, false, "the resource's identifier, given by the service" },
	{ "ObjectType", WF_STRING, true, false, "the resource's object type" },
	{ "CreatedTime", WF_DATETIME, true, false, "when the resource was created" },
	{ "Creator", WF_REFERENCE, true, false, "who requested the resource's creation" },
	{ "ExpirationTime", WF_DATETIME, false, false, "when the resource expires" },
	{ "DisplayName", WF_STRING, false, false, "the name shown for the resource" },
	{ "Name", WF_STRING, false, false, "the system name of an attribute or object type" },
	{ "DataType", WF_STRING, false, false, "String, Integer, Boolean, DateTime, Reference or Binary" },
	{ "Multivalued", WF_BOOLEAN, false, false, "the attribute holds several values" },
	{ "StringRegex", WF_STRING, false, false, "POSIX extended regex every string value must match" },
	{ "Description", WF_STRING, false, false, "free text" },
	{ "BoundObjectType", WF_REFERENCE, false, false, "the ObjectTypeDescription a binding binds to" },
	{ "BoundAttributeType", WF_REFERENCE, false, false, "the AttributeTypeDescription a binding binds" },
	{ "Required", WF_BOOLEAN, false, false, "every resource of the bound type must have a value" },
};
#define N_BUILTIN_ATTRS (sizeof builtin_attrs / sizeof builtin_attrs[0])
#define N_IMPLICIT 6
static const struct {
	const char *name;          /* type name */
	const char *description;   /* what it is */
} builtin_types[] = {
	{ "Person", "a person" }, { "Group", "a group of resources" }, { "Set", "a set of resources" },
	{ "ManagementPolicyRule", "a request management policy rule" }, { "Request", "a request" },
	{ "AttributeTypeDescription", "an attribute of the schema" },
	{ "ObjectTypeDescription", "an object type of the schema" },
	{ "BindingDescription", "an attribute bound to an object type" },
};
#define N_BUILTIN_TYPES (sizeof builtin_types / sizeof builtin_types[0])
static const struct {
	const char *type;          /* the schema type */
	const char *attr;          /* its attribute */
	bool required;             /* must have a value */
} builtin_bindings[] = {
	{ "AttributeTypeDescription", "Name", true }, { "AttributeTypeDescription", "DataType", true },
	{ "AttributeTypeDescription", "Multivalued", false }, { "AttributeTypeDescription", "StringRegex", false },
	{ "AttributeTypeDescription", "Description", false },
	{ "ObjectTypeDescription", "Name", true }, { "ObjectTypeDescription", "Description", false },
	{ "BindingDescription", "BoundObjectType", true }, { "BindingDescription", "BoundAttributeType", true },
	{ "BindingDescription", "Required", false }, { "BindingDescription", "StringRegex", false },
	{ "BindingDescription", "Description", false },
};

const char *const wf_data_types[] = { NULL, "String", "Integer", "Boolean", "Binary", "DateTime", "Reference", NULL };

const wf_attr_t *wf_attr_find(const wf_policy_t *p, const char *name)
{
	for (size_t i = 0; i < p->nattrs; i++)
		if (strcmp(p->attrs[i].name, name) == 0)
			return &p->attrs[i];
	return NULL;
}

const wf_type_t *wf_type_find(const wf_policy_t *p, const char *name)
{
	for (size_t i = 0; i < p->ntypes; i++)
		if (strcmp(p->types[i].name, name) == 0)
			return &p->types[i];
	return NULL;
}

const wf_binding_t *wf_binding_find(const wf_type_t *t, const char *attr)
{
	for (size_t i = 0; i < t->nb; i++)
		if (strcmp(t->b[i].attr->name, attr) == 0)
			return &t->b[i];
	return NULL;
}

bool wf_policy_is_admin(const wf_policy_t *p, const char *requester)
{
	if (strcmp(requester, "sync") == 0)
		return !p->sync_restricted;
	if (strcmp(requester, "workflow") == 0)
		return true;
	for (size_t i = 0; i < p->nadmins; i++)
		if (strcasecmp(p->admins[i], requester) == 0)
			return true;
	return false;
}

static wf_binding_t *binding_slot(wf_type_t *t, const wf_attr_t *a)
{
	for (size_t i = 0; i < t->nb; i++)
		if (t->b[i].attr == a)
			return &t->b[i];
	t->b = loom_realloc(t->b, (t->nb + 1) * sizeof *t->b);
	wf_binding_t *b = &t->b[t->nb++];
	memset(b, 0, sizeof *b);
	b->attr = a;
	return b;
}

/* A built-in binding: implicit (every type) or a schema type's own. */
static void bind_builtin(wf_type_t *t, const wf_attr_t *a, bool required, bool implicit)
{
	wf_binding_t *b = binding_slot(t, a);
	b->required = required;
	b->implicit = implicit;
	b->builtin = !implicit;
	b->where = loom_strdup("built-in");
}

int wf_schema_bind(wf_type_t *t, const wf_attr_t *a, bool required, const char *regex, const char *where,
    char **ret_reason)
{
	if (a->system && required) {
		*ret_reason = loom_sprintf("'%s' is set by the service and cannot be required", a->name);
		return -1;
	}
	regex_t re;
	if (regex) {
		if (a->type != WF_STRING) {
			*ret_reason = loom_sprintf("a regex applies to string attributes only, '%s' is %s", a->name,
			    wf_data_types[a->type]);
			return -1;
		}
		int rc = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &re, msg, sizeof msg);
			*ret_reason = loom_sprintf("bad regex '%s': %s", regex, msg);
			return -1;
		}
	}
	wf_binding_t *b = binding_slot(t, a);
	b->required = b->required || required;
	b->declared = true;
	free(b->where);
	b->where = loom_strdup(where);
	if (regex) {
		if (b->has_re) {
			regfree(&b->re);
			free(b->re_text);
		}
		b->re = re;
		b->has_re = true;
		b->re_text = loom_strdup(regex);
	}
	return 0;
}

wf_type_t *wf_schema_add_type(wf_policy_t *p, const char *name, const char *description)
{
	p->types = loom_realloc(p->types, (p->ntypes + 1) * sizeof *p->types);
	wf_type_t *t = &p->types[p->ntypes++];
	memset(t, 0, sizeof *t);
	t->name = loom_strdup(name);
	t->description = description ? loom_strdup(description) : NULL;
	for (size_t i = 0; i < N_IMPLICIT; i++)
		bind_builtin(t, &p->attrs[i], false, true);
	return t;
}

wf_attr_t *wf_schema_add_attr(wf_policy_t *p, const char *name, int type, bool multi, const char *regex,
    const char *where, const char *description, char **ret_reason)
{
	wf_attr_t *a = &p->attrs[p->nattrs];
	memset(a, 0, sizeof *a);
	if (regex) {
		int rc = regcomp(&a->re, regex, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &a->re, msg, sizeof msg);
			*ret_reason = loom_sprintf("bad regex '%s': %s", regex, msg);
			return NULL;
		}
		a->has_re = true;
		a->re_text = loom_strdup(regex);
	}
	a->name = loom_strdup(name);
	a->type = type;
	a->multi = multi;
	a->where = loom_strdup(where);
	a->description = description ? loom_strdup(description) : NULL;
	p->nattrs++;
	return a;
}

void wf_schema_builtin(wf_policy_t *p, size_t extra_attrs)
{
	p->attrs = loom_calloc(N_BUILTIN_ATTRS + extra_attrs + 1, sizeof *p->attrs);
	for (size_t i = 0; i < N_BUILTIN_ATTRS; i++) {
		wf_attr_t *a = &p->attrs[p->nattrs++];
		a->name = loom_strdup(builtin_attrs[i].name);
		a->type = builtin_attrs[i].type;
		a->system = builtin_attrs[i].system;
		a->multi = builtin_attrs[i].multi;
		a->builtin = true;
		a->where = loom_strdup("built-in");
		a->description = loom_strdup(builtin_attrs[i].description);
	}
	for (size_t i = 0; i < N_BUILTIN_TYPES; i++)
		wf_schema_add_type(p, builtin_types[i].name, builtin_types[i].description)->builtin = true;
	for (size_t i = 0; i < sizeof builtin_bindings / sizeof builtin_bindings[0]; i++)
		bind_builtin((wf_type_t *)wf_type_find(p, builtin_bindings[i].type),
		    wf_attr_find(p, builtin_bindings[i].attr), builtin_bindings[i].required, false);
}

void wf_schema_release(wf_policy_t *p)
{
	for (size_t i = 0; i < p->nattrs; i++) {
		free(p->attrs[i].name);
		free(p->attrs[i].re_text);
		free(p->attrs[i].where);
		free(p->attrs[i].description);
		if (p->attrs[i].has_re)
			regfree(&p->attrs[i].re);
	}
	free(p->attrs);
	for (size_t i = 0; i < p->ntypes; i++) {
		for (size_t j = 0; j < p->types[i].nb; j++) {
			wf_binding_t *b = &p->types[i].b[j];
			free(b->where);
			free(b->re_text);
			if (b->has_re)
				regfree(&b->re);
		}
		free(p->types[i].b);
		free(p->types[i].name);
		free(p->types[i].description);
	}
	free(p->types);
	p->attrs = NULL;
	p->types = NULL;
	p->nattrs = p->ntypes = 0;
}

static void err_at(loom_buf_t *b, const char *file, const loom_cfg_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_at(loom_buf_t *b, const char *file, const loom_cfg_text_t *t, const char *fmt, ...)
{
	va_list ap;
	loom_buf_printf(b, "%s:%u:%u: ", file, t->line, t->column);
	va_start(ap, fmt);
	loom_buf_vprintf(b, fmt, ap);
	va_end(ap);
	loom_buf_addc(b, '\n');
}

bool wf_name_ok(const char *s)
{
	if (!isalpha((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static loom_xpath_t *compile_filter(loom_buf_t *errs, const char *file, const loom_cfg_text_t *t, const char *key,
    const char *mpr)
{
	if (t->text == NULL)
		return NULL;
	loom_xpath_compile_opts_t o = { .file = file, .line = t->line, .column = t->column };
	loom_xpath_t *x = NULL;
	loom_xpath_error_t xe = { 0 };
	if (loom_xpath_compile(t->text, &o, &x, &xe) < 0) {
		loom_buf_printf(errs, "%s (key '%s' of mpr '%s')\n", xe.text, key, mpr);
		loom_xpath_error_release(&xe);
		return NULL;
	}
	return x;
}

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = loom_realloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = loom_strdup(s);
}

static void build(wf_policy_t *p, cfg_file_t *files, size_t nfiles, loom_buf_t *errs)
{
	size_t ncfg_attrs = 0;
	for (size_t f = 0; f < nfiles; f++)
		ncfg_attrs += files[f].attributes.n;
	wf_schema_builtin(p, ncfg_attrs);
	for (size_t f = 0; f < nfiles; f++) {
		const char *file = files[f].path;
		cfg_attr_t *ca = files[f].attributes.v;
		for (size_t i = 0; i < files[f].attributes.n; i++) {
			const loom_cfg_text_t *nm = &ca[i].name;
			if (!wf_name_ok(nm->text)) {
				err_at(errs, file, nm, "attribute name '%s': expected letters, digits, '_' or '-', starting with a letter",
				    nm->text);
				continue;
			}
			const wf_attr_t *old = wf_attr_find(p, nm->text);
			if (old && old->builtin && !old->system && old->type == ca[i].type + 1 && old->multi == ca[i].multi &&
			    ca[i].regex.text == NULL)
				continue; /* a built-in declared again as it is */
			if (old) {
				if (old->builtin)
					err_at(errs, file, nm, "attribute '%s' is built in (%s, %s, no regex): declare it so or "
					    "not at all", nm->text, type_names[old->type - 1], old->multi ? "multi" : "single-valued");
				else
					err_at(errs, file, nm, "attribute '%s' is defined twice", nm->text);
				continue;
			}
			if (ca[i].regex.text && ca[i].type + 1 != WF_STRING) {
				err_at(errs, file, &ca[i].regex, "attribute '%s': a regex applies to string attributes only, "
				    "this one is %s", nm->text, type_names[ca[i].type]);
				continue;
			}
			const loom_cfg_text_t *at = ca[i].regex.text ? &ca[i].regex : nm;
			char *where = loom_sprintf("%s:%u:%u", file, at->line, at->column);
			char *why = NULL;
			if (wf_schema_add_attr(p, nm->text, ca[i].type + 1, ca[i].multi, ca[i].regex.text, where,
			        ca[i].description, &why) == NULL) {
				err_at(errs, file, &ca[i].regex, "attribute '%s': %s", nm->text, why);
				free(why);
			}
			free(where);
		}
	}
	for (size_t f = 0; f < nfiles; f++) {
		const char *file = files[f].path;
		cfg_type_t *ct = files[f].types.v;
		for (size_t i = 0; i < files[f].types.n; i++) {
			if (!wf_name_ok(ct[i].name.text)) {
				err_at(errs, file, &ct[i].name, "type name '%s': expected letters, digits, '_' or '-', starting "
				    "with a letter", ct[i].name.text);
				continue;
			}
			wf_type_t *t = (wf_type_t *)wf_type_find(p, ct[i].name.text);
			if (t == NULL)
				t = wf_schema_add_type(p, ct[i].name.text, ct[i].description);
			cfg_binding_t *cb = ct[i].bindings.v;
			for (size_t j = 0; j < ct[i].bindings.n; j++) {
				const wf_attr_t *a = wf_attr_find(p, cb[j].attribute.text);
				if (a == NULL) {
					err_at(errs, file, &cb[j].attribute, "type '%s': binding of unknown attribute '%s' "
					    "(define it under attributes)", t->name, cb[j].attribute.text);
					continue;
				}
				const loom_cfg_text_t *at = cb[j].regex.text ? &cb[j].regex : &cb[j].attribute;
				char *where = loom_sprintf("%s:%u:%u", file, at->line, at->column);
				char *why = NULL;
				if (wf_schema_bind(t, a, cb[j].required, cb[j].regex.text, where, &why) < 0) {
					err_at(errs, file, at, "type '%s': binding of '%s': %s", t->name, a->name, why);
					free(why);
				}
				free(where);
			}
		}
	}
	for (size_t f = 0; f < nfiles; f++) {
		const char *file = files[f].path;
		cfg_mpr_t *cm = files[f].mprs.v;
		for (size_t i = 0; i < files[f].mprs.n; i++) {
			cfg_mpr_t *c = &cm[i];
			const char *nm = c->name.text;
			bool dup = false;
			for (size_t k = 0; k < p->nmprs; k++)
				dup = dup || strcmp(p->mprs[k].name, nm) == 0;
			if (dup) {
				err_at(errs, file, &c->name, "mpr '%s' is defined twice", nm);
				continue;
			}
			if ((c->requesters.text != NULL) + (c->relative.text != NULL) + (c->requester_set.text != NULL) != 1) {
				err_at(errs, file, &c->name, "mpr '%s': give exactly one of requesters (an XPath filter), "
				    "requester_set (a Set) and relative_to_target (an attribute of the target)", nm);
				continue;
			}
			wf_mpr_t m = { 0 };
			bool bad = false;
			if (c->relative.text) {
				const wf_attr_t *a = wf_attr_find(p, c->relative.text);
				if (a == NULL || a->type != WF_REFERENCE) {
					err_at(errs, file, &c->relative, "mpr '%s': relative_to_target '%s' is not a reference "
					    "attribute (ObjectID, Manager, Owner, ...)", nm, c->relative.text);
					bad = true;
				}
			}
			static const char *const opn[] = { "create", "delete", "read", "add", "remove", "modify" };
			for (size_t k = 0; k < c->operations.n; k++) {
				size_t o;
				for (o = 0; o < 6; o++)
					if (strcmp(c->operations.v[k], opn[o]) == 0)
						break;
				if (o == 6) {
					err_at(errs, file, &c->name, "mpr '%s': operation '%s': expected create, delete, read, add, "
					    "remove or modify", nm, c->operations.v[k]);
					bad = true;
				} else {
					m.ops |= 1u << o;
				}
			}
			for (size_t k = 0; k < c->attributes.n; k++) {
				const char *an = c->attributes.v[k];
				if (strcmp(an, "*") == 0) {
					m.all_attrs = true;
				} else if (wf_attr_find(p, an) == NULL) {
					err_at(errs, file, &c->name, "mpr '%s': unknown attribute '%s' in attributes", nm, an);
					bad = true;
				} else {
					strv_add(&m.attrs, &m.nattrs, an);
				}
			}
			size_t before = errs->len;
			if (c->requesters.text && strcmp(c->requesters.text, "sync") == 0)
				m.req_sync = true;
			else
				m.requesters = compile_filter(errs, file, &c->requesters, "requesters", nm);
			m.before = compile_filter(errs, file, &c->before, "target_before", nm);
			m.after = compile_filter(errs, file, &c->after, "target_after", nm);
			bad = bad || errs->len != before;
			for (size_t k = 0; k < c->authn.n; k++) {
				char *s = loom_sprintf("authn:%s", c->authn.v[k]);
				strv_add(&m.workflows, &m.nworkflows, s);
				free(s);
			}
			for (size_t k = 0; k < c->authz.n; k++) {
				char *s = loom_sprintf("authz:%s", c->authz.v[k]);
				strv_add(&m.workflows, &m.nworkflows, s);
				free(s);
			}
			for (size_t k = 0; k < c->action.n; k++) {
				char *s = loom_sprintf("action:%s", c->action.v[k]);
				strv_add(&m.workflows, &m.nworkflows, s);
				free(s);
			}
			m.name = loom_strdup(nm);
			m.where = loom_sprintf("%s:%u:%u", file, c->name.line, c->name.column);
			m.relative = c->relative.text ? loom_strdup(c->relative.text) : NULL;
			m.requester_set = c->requester_set.text ? loom_strdup(c->requester_set.text) : NULL;
			m.before_set = c->before_set.text ? loom_strdup(c->before_set.text) : NULL;
			m.after_set = c->after_set.text ? loom_strdup(c->after_set.text) : NULL;
			if (c->disabled)
				m.ops = 0; /* kept for its name (no duplicate), grants nothing */
			p->mprs = loom_realloc(p->mprs, (p->nmprs + 1) * sizeof *p->mprs);
			p->mprs[p->nmprs++] = m; /* a bad one too: the load fails, release frees it */
			(void)bad;
		}
		if (!files[f].sync_unrestricted)
			p->sync_restricted = true;
		cfg_tmpr_t *ct = files[f].tmprs.v;
		for (size_t i = 0; i < files[f].tmprs.n; i++) {
			const char *nm = ct[i].name.text;
			bool dup = false;
			for (size_t k = 0; k < p->ntmprs; k++)
				dup = dup || strcmp(p->tmprs[k].name, nm) == 0;
			if (dup) {
				err_at(errs, file, &ct[i].name, "set-transition mpr '%s' is defined twice", nm);
				continue;
			}
			if (ct[i].disabled)
				continue;
			wf_tmpr_t t = { .name = loom_strdup(nm), .set = loom_strdup(ct[i].set.text), .in = ct[i].transition == 0,
				.where = loom_sprintf("%s:%u:%u", file, ct[i].name.line, ct[i].name.column) };
			for (size_t k = 0; k < ct[i].action.n; k++) {
				char *s = loom_sprintf("action:%s", ct[i].action.v[k]);
				strv_add(&t.workflows, &t.nworkflows, s);
				free(s);
			}
			p->tmprs = loom_realloc(p->tmprs, (p->ntmprs + 1) * sizeof *p->tmprs);
			p->tmprs[p->ntmprs++] = t;
		}
		for (size_t k = 0; k < files[f].administrators.n; k++) {
			char *s = loom_strdup(files[f].administrators.v[k]);
			for (char *q = s; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			p->admins = loom_realloc(p->admins, (p->nadmins + 1) * sizeof *p->admins);
			p->admins[p->nadmins++] = s;
		}
	}
}

int wf_policy_load(const char *dir, wf_policy_t *p, char **ret_error)
{
	memset(p, 0, sizeof *p);
	loom_buf_t errs = LOOM_BUF_INIT;
	loom_cfg_diags_t diags;
	void *v = NULL;
	size_t n = 0;
	int rc = loom_config_load_dir(dir, sizeof(cfg_file_t), load_one, &v, &n, &diags);
	if (rc < 0)
		for (size_t i = 0; i < diags.n; i++)
			loom_buf_printf(&errs, "%s\n", diags.v[i].text);
	loom_cfg_diags_release(&diags);
	cfg_file_t *files = v;
	if (rc == 0 && n == 0)
		loom_buf_printf(&errs, "%s: no *.yaml policy file (the schema and MPRs live there)\n", dir);
	if (rc == 0)
		build(p, files, n, &errs);
	for (size_t i = 0; i < n; i++) {
		loom_config_release(&file_table, &files[i]);
		free(files[i].path);
	}
	free(files);
	if (errs.len) {
		errs.len--; /* the last newline */
		*ret_error = loom_strdup(loom_buf_cstr(&errs));
		loom_buf_release(&errs);
		wf_policy_release(p);
		return -1;
	}
	loom_buf_release(&errs);
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void wf_policy_release(wf_policy_t *p)
{
	wf_schema_release(p);
	for (size_t i = 0; i < p->nmprs; i++) {
		wf_mpr_t *m = &p->mprs[i];
		free(m->name);
		free(m->where);
		free(m->relative);
		free(m->requester_set);
		free(m->before_set);
		free(m->after_set);
		strv_free(m->attrs, m->nattrs);
		strv_free(m->workflows, m->nworkflows);
		loom_xpath_destroy(&m->requesters);
		loom_xpath_destroy(&m->before);
		loom_xpath_destroy(&m->after);
	}
	free(p->mprs);
	for (size_t i = 0; i < p->ntmprs; i++) {
		free(p->tmprs[i].name);
		free(p->tmprs[i].where);
		free(p->tmprs[i].set);
		strv_free(p->tmprs[i].workflows, p->tmprs[i].nworkflows);
	}
	free(p->tmprs);
	strv_free(p->admins, p->nadmins);
	memset(p, 0, sizeof *p);
}

/* ---- proto helpers ---- */

const Loom__Attr *wf_res_attr(const Loom__Resource *r, const char *name)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (strcmp(r->attrs[i]->name, name) == 0)
			return r->attrs[i];
	return NULL;
}

Loom__Value *wf_value_str(int case_, const char *s)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	v->v_case = case_;
	if (case_ == LOOM__VALUE__V_REF)
		v->ref = loom_strdup(s);
	else
		v->str = loom_strdup(s);
	return v;
}

Loom__Value *wf_value_i64(int case_, int64_t x)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	v->v_case = case_;
	if (case_ == LOOM__VALUE__V_INT)
		v->int_ = x;
	else if (case_ == LOOM__VALUE__V_BOOL)
		v->bool_ = x != 0;
	else
		v->time = x;
	return v;
}

char *wf_value_text(const Loom__Value *v)
{
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: return loom_strdup(v->str);
	case LOOM__VALUE__V_REF: return loom_strdup(v->ref);
	case LOOM__VALUE__V_INT: return loom_sprintf("%lld", (long long)v->int_);
	case LOOM__VALUE__V_BOOL: return loom_strdup(v->bool_ ? "true" : "false");
	case LOOM__VALUE__V_TIME: {
		time_t s = (time_t)(v->time / 1000000);
		struct tm tm;
		char b[40];
		gmtime_r(&s, &tm);
		strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return loom_strdup(b);
	}
	case LOOM__VALUE__V_BIN: {
		loom_buf_t b = LOOM_BUF_INIT;
		loom_buf_add_hex(&b, v->bin.data, v->bin.len);
		char *s = loom_strdup(loom_buf_cstr(&b));
		loom_buf_release(&b);
		return s;
	}
	default: return loom_strdup("");
	}
}

void wf_res_set(Loom__Resource *r, const char *name, Loom__Value **v, size_t n)
{
	for (size_t i = 0; i < r->n_attrs; i++) {
		if (strcmp(r->attrs[i]->name, name) != 0)
			continue;
		Loom__Attr *a = r->attrs[i];
		for (size_t j = 0; j < a->n_values; j++)
			protobuf_c_message_free_unpacked(&a->values[j]->base, NULL);
		free(a->values);
		if (n == 0) {
			free(a->name);
			free(a);
			memmove(&r->attrs[i], &r->attrs[i + 1], (r->n_attrs - i - 1) * sizeof *r->attrs);
			r->n_attrs--;
			free(v);
			return;
		}
		a->values = v;
		a->n_values = n;
		return;
	}
	if (n == 0) {
		free(v);
		return;
	}
	Loom__Attr *a = loom_malloc(sizeof *a);
	loom__attr__init(a);
	a->name = loom_strdup(name);
	a->values = v;
	a->n_values = n;
	r->attrs = loom_realloc(r->attrs, (r->n_attrs + 1) * sizeof *r->attrs);
	r->attrs[r->n_attrs++] = a;
}

static const char *const status_names[] = { "none", "validating", "authenticating", "authorizing", "committed",
	"post-processing", "completed", "denied", "failed", "canceled", "pending-approval", "post-processing-error" };

const char *wf_status_name(Loom__Request__Status s)
{
	return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "unknown";
}

int wf_status_parse(const char *s, Loom__Request__Status *ret)
{
	for (size_t i = 1; i < sizeof status_names / sizeof *status_names; i++)
		if (strcmp(s, status_names[i]) == 0) {
			*ret = (Loom__Request__Status)i;
			return 0;
		}
	return -1;
}

const char *wf_op_name(Loom__Request__Operation o)
{
	static const char *const n[] = { "none", "create", "delete", "read", "add", "remove", "modify", "reevaluate" };
	return (unsigned)o < 8 ? n[o] : "unknown";
}

/* ---- the schema check ---- */

static Loom__Value *convert(const wf_binding_t *bd, const Loom__Value *in, wf_ref_exists_fn *ref_exists, void *arg,
    char **ret_reason)
{
	const wf_attr_t *a = bd->attr;
	static const int want_case[] = { 0, LOOM__VALUE__V_STR, LOOM__VALUE__V_INT, LOOM__VALUE__V_BOOL,
		LOOM__VALUE__V_BIN, LOOM__VALUE__V_TIME, LOOM__VALUE__V_REF };
	Loom__Value *out = NULL;
	const char *tn = type_names[a->type - 1];
	if ((int)in->v_case == want_case[a->type] && a->type != WF_REFERENCE) {
		out = loom_value_dup(in);
	} else if (in->v_case == LOOM__VALUE__V_STR || in->v_case == LOOM__VALUE__V_REF) {
		const char *s = in->v_case == LOOM__VALUE__V_STR ? in->str : in->ref;
		size_t len = strlen(s);
		char *end;
		switch (a->type) {
		case WF_STRING:
			out = wf_value_str(LOOM__VALUE__V_STR, s);
			break;
		case WF_INTEGER:
			errno = 0;
			long long x = strtoll(s, &end, 10);
			if (len && *end == '\0' && errno == 0 && !isspace((unsigned char)s[0]))
				out = wf_value_i64(LOOM__VALUE__V_INT, x);
			break;
		case WF_BOOLEAN:
			if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
				out = wf_value_i64(LOOM__VALUE__V_BOOL, s[0] == 't');
			break;
		case WF_DATETIME: {
			int64_t us;
			if (loom_xpath_parse_time(s, len, &us) == 0)
				out = wf_value_i64(LOOM__VALUE__V_TIME, us);
			break;
		}
		case WF_BINARY: {
			if (len % 2)
				break;
			uint8_t *b = loom_malloc(len / 2 + 1);
			size_t k;
			for (k = 0; k < len / 2; k++) {
				unsigned hi, lo;
				if (!isxdigit((unsigned char)s[2 * k]) || !isxdigit((unsigned char)s[2 * k + 1]))
					break;
				sscanf(s + 2 * k, "%1x%1x", &hi, &lo);
				b[k] = (uint8_t)(hi << 4 | lo);
			}
			if (k < len / 2) {
				free(b);
				break;
			}
			out = loom_malloc(sizeof *out);
			loom__value__init(out);
			out->v_case = LOOM__VALUE__V_BIN;
			out->bin.data = b;
			out->bin.len = len / 2;
			break;
		}
		case WF_REFERENCE: {
			char *id = NULL;
			if (!ref_exists(arg, s, &id)) {
				*ret_reason = loom_sprintf("attribute '%s': '%s' is no resource (a reference must be the ObjectID "
				    "of an existing resource)", a->name, s);
				return NULL;
			}
			out = wf_value_str(LOOM__VALUE__V_REF, id);
			free(id);
			break;
		}
		}
	}
	if (out == NULL) {
		char *t = wf_value_text(in);
		*ret_reason = loom_sprintf("attribute '%s': '%s' is not a valid %s (type rule, %s)", a->name, t, tn, a->where);
		free(t);
		return NULL;
	}
	if (out->v_case == LOOM__VALUE__V_STR) {
		/* a binding's regex replaces the attribute's for its type */
		const regex_t *re = bd->has_re ? &bd->re : a->has_re ? &a->re : NULL;
		if (re && regexec(re, out->str, 0, NULL, 0) != 0) {
			*ret_reason = loom_sprintf("attribute '%s': '%s' does not match regex '%s' (%s)", a->name, out->str,
			    bd->has_re ? bd->re_text : a->re_text, bd->has_re ? bd->where : a->where);
			protobuf_c_message_free_unpacked(&out->base, NULL);
			return NULL;
		}
	}
	return out;
}

static Loom__Resource *res_copy(const Loom__Resource *r)
{
	Loom__Resource *c = loom_malloc(sizeof *c);
	loom__resource__init(c);
	if (r == NULL) {
		c->object_id = loom_strdup("");
		c->object_type = loom_strdup("");
		return c;
	}
	c->object_id = loom_strdup(r->object_id);
	c->object_type = loom_strdup(r->object_type);
	c->created_at = r->created_at;
	c->changed_at = r->changed_at;
	c->rid = r->rid;
	for (size_t i = 0; i < r->n_attrs; i++) {
		Loom__Value **v = loom_calloc(r->attrs[i]->n_values + 1, sizeof *v);
		for (size_t j = 0; j < r->attrs[i]->n_values; j++)
			v[j] = loom_value_dup(r->attrs[i]->values[j]);
		wf_res_set(c, r->attrs[i]->name, v, r->attrs[i]->n_values);
	}
	return c;
}

static bool has_value(Loom__Value **v, size_t n, const Loom__Value *x)
{
	for (size_t i = 0; i < n; i++)
		if (loom_value_eq(v[i], x))
			return true;
	return false;
}

int wf_apply_changes(const wf_policy_t *p, const wf_type_t *type, const Loom__Resource *before,
    Loom__RequestChange *const *changes, size_t nchanges, wf_ref_exists_fn *ref_exists, void *arg,
    Loom__Resource **ret_after, char **ret_reason)
{
	(void)p;
	Loom__Resource *after = res_copy(before);
	char *reason = NULL;
	for (size_t i = 0; i < nchanges && reason == NULL; i++) {
		const Loom__RequestChange *c = changes[i];
		const wf_binding_t *b = wf_binding_find(type, c->attr);
		if (b == NULL) {
			reason = loom_sprintf("attribute '%s' is not bound to type '%s' (binding rule)", c->attr, type->name);
			break;
		}
		const wf_attr_t *a = b->attr;
		if (a->system) {
			reason = loom_sprintf("attribute '%s' is set by the service (system attribute rule)", a->name);
			break;
		}
		const Loom__Attr *cur = wf_res_attr(after, a->name);
		size_t n = 0;
		Loom__Value **v = loom_calloc((cur ? cur->n_values : 0) + c->n_values + 1, sizeof *v);
		if (c->op != LOOM__REQUEST_CHANGE__OP__REPLACE && cur)
			for (size_t j = 0; j < cur->n_values; j++)
				v[n++] = loom_value_dup(cur->values[j]);
		for (size_t j = 0; j < c->n_values && reason == NULL; j++) {
			Loom__Value *x = convert(b, c->values[j], ref_exists, arg, &reason);
			if (x == NULL)
				break;
			if (c->op == LOOM__REQUEST_CHANGE__OP__REMOVE) {
				size_t k;
				for (k = 0; k < n; k++)
					if (loom_value_eq(v[k], x))
						break;
				if (k == n) {
					char *t = wf_value_text(x);
					reason = loom_sprintf("attribute '%s': cannot remove '%s', the resource does not have it",
					    a->name, t);
					free(t);
				} else {
					protobuf_c_message_free_unpacked(&v[k]->base, NULL);
					memmove(&v[k], &v[k + 1], (n - k - 1) * sizeof *v);
					n--;
				}
				protobuf_c_message_free_unpacked(&x->base, NULL);
			} else if (has_value(v, n, x)) {
				protobuf_c_message_free_unpacked(&x->base, NULL); /* values are a set */
			} else {
				v[n++] = x;
			}
		}
		if (c->op == LOOM__REQUEST_CHANGE__OP__REMOVE && c->n_values == 0) {
			for (size_t k = 0; k < n; k++)
				protobuf_c_message_free_unpacked(&v[k]->base, NULL);
			n = 0;
		}
		if (reason == NULL && n > 1 && !a->multi)
			reason = loom_sprintf("attribute '%s' is single-valued, the request gives it %zu values (multi rule, %s)",
			    a->name, n, a->where);
		if (reason) {
			for (size_t k = 0; k < n; k++)
				protobuf_c_message_free_unpacked(&v[k]->base, NULL);
			free(v);
			break;
		}
		wf_res_set(after, a->name, v, n);
	}
	for (size_t i = 0; i < type->nb && reason == NULL; i++)
		if (type->b[i].required && wf_res_attr(after, type->b[i].attr->name) == NULL)
			reason = loom_sprintf("attribute '%s' is required for type '%s' (required binding, %s)",
			    type->b[i].attr->name, type->name, type->b[i].where);
	if (reason) {
		protobuf_c_message_free_unpacked(&after->base, NULL);
		*ret_reason = reason;
		return -1;
	}
	*ret_after = after;
	return 0;
}
