/* workflow_defs.c - workflow definitions: config/policy/workflows/NAME.yaml.
 *
 *   workflows:
 *     - name: manager-approval
 *       kind: authz                  # authn, authz or action
 *       activities:
 *         - type: approval
 *           approvers: ['//Target/Manager']
 *           timeout: 2d
 *           escalation: ['set:HR Approvers']
 *
 * Everything a definition names is checked when it loads: the activity
 * type, the attributes of lookups, expressions and values (against the
 * schema), XPath filters, the outbound sync rule of an add-to-sync-rule
 * activity, the program of an external activity; the Sets named by
 * set:NAME once the store is open (wf_defs_check_store). Every error names
 * FILE:LINE:COLUMN. docs/workflows.md describes every key. */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_synccfg.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- the YAML tables ---- */

typedef struct cfg_val {
	loom_cfg_text_t attribute;     /* the attribute written */
	loom_cfg_text_t value;         /* an expression */
	int op;                        /* replace, add, remove */
} cfg_val_t;

typedef struct cfg_act {
	loom_cfg_text_t type;          /* the activity type */
	char *name;                    /* a label for history and messages */
	loom_cfg_strlist_t approvers;  /* approval */
	loom_cfg_strlist_t escalation; /* approval */
	loom_cfg_text_t threshold;     /* approval: a number or all */
	long long timeout_ms;          /* approval, external */
	long long escalation_timeout_ms; /* approval */
	loom_cfg_text_t filter;        /* filter validation: XPath */
	loom_cfg_text_t condition;     /* filter validation: expression */
	char *reason;                  /* filter validation: what a failure says */
	loom_cfg_strlist_t to;         /* notify (and approval mail) */
	loom_cfg_text_t subject;       /* notify, approval */
	loom_cfg_text_t body;          /* notify, approval */
	loom_cfg_text_t expr;          /* function */
	loom_cfg_text_t destination;   /* function */
	loom_cfg_text_t object_type;   /* create */
	loom_cfg_array_t values;       /* create, update: cfg_val_t */
	loom_cfg_text_t target;        /* update, delete */
	loom_cfg_text_t rule;          /* sync_rule */
	loom_cfg_text_t attribute;     /* sync_rule */
	bool remove;                   /* sync_rule */
	loom_cfg_text_t on_restart;    /* external: fail or rerun */
	loom_cfg_strlist_t command;    /* external */
} cfg_act_t;

typedef struct cfg_wf {
	loom_cfg_text_t name;          /* unique name */
	int kind;                      /* authn, authz, action */
	char *description;             /* free text */
	bool run_on_policy_update;     /* action: applied to current members when its set-transition MPR is new */
	loom_cfg_array_t activities;   /* cfg_act_t */
} cfg_wf_t;

typedef struct cfg_wfile {
	char *path;                    /* the file */
	loom_cfg_array_t workflows;    /* cfg_wf_t */
} cfg_wfile_t;

static const char *const op_names[] = { "replace", "add", "remove", NULL };
static const char *const kind_names[] = { "authn", "authz", "action", NULL };

static const loom_cfg_key_t val_keys[] = {
	{ .name = "attribute", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_val_t, attribute),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the attribute written" },
	{ .name = "value", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_val_t, value),
	  .help = "an expression (docs/expressions.md) over the target's attributes; absent with op remove: every value" },
	{ .name = "op", .type = LOOM_CFG_ENUM, .offset = offsetof(cfg_val_t, op), .def = "replace", .choices = op_names,
	  .help = "replace the values, add them, or remove them" },
	{ NULL }
};
static const loom_cfg_table_t val_table = { .what = "value", .size = sizeof(cfg_val_t), .keys = val_keys };

static const loom_cfg_key_t act_keys[] = {
	{ .name = "type", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, type), .flags = LOOM_CFG_REQUIRED,
	  .help = "approval, filter, notify, function, create, update, delete, sync_rule or external" },
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_act_t, name),
	  .help = "a label for the request's history" },
	{ .name = "approvers", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_act_t, approvers),
	  .help = "approval: //Target/Manager, //Requester/Manager, //Target/Owner, set:NAME, an XPath filter, an ObjectID" },
	{ .name = "threshold", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, threshold),
	  .help = "approval: approvals needed: a number (default 1) or all" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(cfg_act_t, timeout_ms), .min = 100,
	  .max = 366LL * 86400000,
	  .help = "approval: until it escalates, or expires (default 7d); external: until the program is killed (default 1m)" },
	{ .name = "escalation", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_act_t, escalation),
	  .help = "approval: approvers asked too once the timeout passes" },
	{ .name = "escalation_timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(cfg_act_t, escalation_timeout_ms),
	  .min = 100, .max = 366LL * 86400000, .help = "approval: after escalation, until it expires (default: timeout)" },
	{ .name = "filter", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, filter),
	  .help = "filter: an XPath filter the target must match as the request would leave it" },
	{ .name = "condition", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, condition),
	  .help = "filter: or an expression over the target's attributes (as the request would leave them) that must be true" },
	{ .name = "reason", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_act_t, reason),
	  .help = "filter: what the denial says" },
	{ .name = "to", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_act_t, to),
	  .help = "notify: recipients: lookups (persons: their Email), set:NAME, an XPath filter, addresses" },
	{ .name = "subject", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, subject),
	  .help = "notify, approval: the subject, with [//Target/ATTR], [//Request/ID] ... lookups" },
	{ .name = "body", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, body),
	  .help = "notify, approval: the body, with lookups" },
	{ .name = "expr", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, expr),
	  .help = "function: the expression computing the value" },
	{ .name = "destination", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, destination),
	  .help = "function: //Target/ATTR (action workflows) or //WorkflowData/NAME" },
	{ .name = "object_type", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, object_type),
	  .help = "create: the type of the new resource" },
	{ .name = "values", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_act_t, values), .sub = &val_table,
	  .help = "create, update: attributes and their expressions" },
	{ .name = "target", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, target),
	  .help = "update, delete: whom, as a lookup (default //Target)" },
	{ .name = "rule", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, rule),
	  .help = "sync_rule: the outbound synchronization rule (config/sync) the target is added to" },
	{ .name = "attribute", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, attribute),
	  .help = "sync_rule: the multi-valued attribute holding rule names (default ExpectedRules)" },
	{ .name = "remove", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_act_t, remove), .def = "false",
	  .help = "sync_rule: take the target out of the rule" },
	{ .name = "command", .type = LOOM_CFG_STRLIST, .offset = offsetof(cfg_act_t, command),
	  .help = "external: the program (absolute, or relative to the file) and its arguments" },
	{ .name = "on_restart", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_act_t, on_restart),
	  .help = "external: when the service stopped while the program ran: fail (default: at most once) "
	          "or rerun (at least once, for a program safe to run twice)" },
	{ NULL }
};
static const loom_cfg_table_t act_table = { .what = "activity", .size = sizeof(cfg_act_t), .keys = act_keys };

static const loom_cfg_key_t wf_keys[] = {
	{ .name = "name", .type = LOOM_CFG_TEXT, .offset = offsetof(cfg_wf_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "unique workflow name (MPRs name it)" },
	{ .name = "kind", .type = LOOM_CFG_ENUM, .offset = offsetof(cfg_wf_t, kind), .flags = LOOM_CFG_REQUIRED,
	  .choices = kind_names, .help = "authn, authz or action" },
	{ .name = "description", .type = LOOM_CFG_STRING, .offset = offsetof(cfg_wf_t, description), .help = "free text" },
	{ .name = "run_on_policy_update", .type = LOOM_CFG_BOOL, .offset = offsetof(cfg_wf_t, run_on_policy_update),
	  .def = "false", .help = "action: a set-transition MPR naming it that is new (or changed) runs it for the "
	                         "current members of its set" },
	{ .name = "activities", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_wf_t, activities), .sub = &act_table,
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the activities, run in order" },
	{ NULL }
};
static const loom_cfg_table_t wf_table = { .what = "workflow", .size = sizeof(cfg_wf_t), .keys = wf_keys };

static const loom_cfg_key_t wfile_keys[] = {
	{ .name = "workflows", .type = LOOM_CFG_LIST, .offset = offsetof(cfg_wfile_t, workflows), .sub = &wf_table,
	  .help = "workflow definitions" },
	{ NULL }
};
static const loom_cfg_table_t wfile_table = { .what = "workflow file", .keys = wfile_keys };

static int load_one(const char *path, void *element, loom_cfg_diags_t *diags)
{
	cfg_wfile_t *f = element;
	f->path = loom_strdup(path);
	return loom_config_load_file(path, &wfile_table, f, diags);
}

/* ---- names ---- */

static const char *const act_names[] = { "approval", "filter", "notify", "function", "create", "update", "delete",
	"sync_rule", "external", NULL };

const char *wf_phase_name(int phase)
{
	return phase == WFP_AUTHN ? "authn" : phase == WFP_AUTHZ ? "authz" : "action";
}

const char *wf_act_type_name(int type)
{
	return type >= 0 && type <= WFA_EXTERNAL ? act_names[type] : "unknown";
}

/* ---- errors ---- */

typedef struct ld {
	loom_buf_t errs;               /* every problem, one per line */
	const wf_policy_t *p;          /* the schema */
	const char *file;              /* the file being read */
	char *text;                    /* its text (to locate list items), or NULL */
	const char *wf;                /* the workflow being read */
	char **data;                   /* //WorkflowData names written so far in this workflow */
	size_t ndata;
	char **rules;                  /* outbound sync rules, or NULL when not checked */
	size_t nrules;
	bool rules_known;              /* rules were read */
} ld_t;

static void err_at(ld_t *l, unsigned line, unsigned col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void err_at(ld_t *l, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	loom_buf_printf(&l->errs, "%s:%u:%u: ", l->file, line, col);
	if (l->wf)
		loom_buf_printf(&l->errs, "workflow '%s': ", l->wf);
	va_start(ap, fmt);
	loom_buf_vprintf(&l->errs, fmt, ap);
	va_end(ap);
	loom_buf_addc(&l->errs, '\n');
}

/* Where needle is written in the file, at or after line from (list items
 * carry no position of their own); falls back to (from, col). */
static void locate(const ld_t *l, unsigned from, unsigned col, const char *needle, unsigned *ret_line,
    unsigned *ret_col)
{
	*ret_line = from;
	*ret_col = col;
	if (l->text == NULL || needle == NULL || needle[0] == '\0')
		return;
	const char *s = l->text;
	unsigned line = 1;
	while (*s && line < from) {
		if (*s++ == '\n')
			line++;
	}
	const char *hit = strstr(s, needle);
	if (hit == NULL)
		return;
	for (; s < hit; s++)
		if (*s == '\n')
			line++;
	const char *bol = hit;
	while (bol > l->text && bol[-1] != '\n')
		bol--;
	*ret_line = line;
	*ret_col = (unsigned)(hit - bol) + 1;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	loom_buf_t b = LOOM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (16u << 20))
		loom_buf_add(&b, chunk, n);
	fclose(f);
	return loom_buf_steal(&b);
}

/* ---- lookups ---- */

static const char *const request_fields[] = { "ID", "Operation", "Status", "Requester", "Target", "TargetType",
	"Summary", "Changes", "Reason", "Workflow", "Activity", NULL };
static const char *const approval_fields[] = { "ID", "Commands", "Approvers", "Expires", "Summary", "Decision",
	"Reasons", NULL };

static bool in_list(const char *const *v, const char *s)
{
	for (; *v; v++)
		if (strcasecmp(*v, s) == 0)
			return true;
	return false;
}

static void lookup_release(wf_lookup_t *lk)
{
	for (size_t i = 0; i < lk->n; i++)
		free(lk->path[i]);
	free(lk->path);
	free(lk->text);
	memset(lk, 0, sizeof *lk);
}

enum { LK_ANY, LK_REF, LK_ADDR };  /* what the last attribute must be */

/* Parses //Root/A/B. want: LK_REF the last attribute is a reference
 * (persons), LK_ADDR a reference or a string (addresses). Returns 0, or -1
 * after reporting at (line, col). */
static int lookup_parse(ld_t *l, const char *s, unsigned line, unsigned col, int want, const char *const *roots,
    wf_lookup_t *ret)
{
	memset(ret, 0, sizeof *ret);
	if (strncmp(s, "//", 2) != 0) {
		err_at(l, line, col, "'%s' is no lookup: expected //Target/ATTR, //Requester/ATTR, //Request/FIELD, "
		    "//WorkflowData/NAME", s);
		return -1;
	}
	static const struct { const char *name; int root; } rn[] = {
		{ "Target", WFL_TARGET }, { "Requester", WFL_REQUESTER }, { "Request", WFL_REQUEST },
		{ "WorkflowData", WFL_DATA }, { "Approval", WFL_APPROVAL }, { "Recipient", WFL_RECIPIENT },
	};
	const char *p = s + 2;
	size_t len = strcspn(p, "/");
	int root = -1;
	for (size_t i = 0; i < sizeof rn / sizeof rn[0]; i++)
		if (strlen(rn[i].name) == len && strncasecmp(rn[i].name, p, len) == 0)
			root = rn[i].root;
	bool allowed = false;
	for (const char *const *r = roots; root >= 0 && *r; r++)
		allowed = allowed || strcasecmp(*r, rn[root].name) == 0;
	if (!allowed) {
		loom_buf_t b = LOOM_BUF_INIT;
		for (const char *const *r = roots; *r; r++)
			loom_buf_printf(&b, "%s//%s", r == roots ? "" : ", ", *r);
		err_at(l, line, col, "'%s': unknown root '%.*s' here: expected %s", s, (int)len, p, loom_buf_cstr(&b));
		loom_buf_release(&b);
		return -1;
	}
	ret->root = root;
	ret->text = loom_strdup(s);
	p += len;
	while (*p == '/') {
		p++;
		len = strcspn(p, "/");
		if (len == 0) {
			err_at(l, line, col, "'%s': an empty step", s);
			lookup_release(ret);
			return -1;
		}
		ret->path = loom_realloc(ret->path, (ret->n + 1) * sizeof *ret->path);
		ret->path[ret->n++] = loom_strndup(p, len);
		p += len;
	}
	switch (root) {
	case WFL_REQUEST:
	case WFL_APPROVAL: {
		const char *const *fields = root == WFL_REQUEST ? request_fields : approval_fields;
		if (ret->n != 1 || !in_list(fields, ret->path[0])) {
			loom_buf_t b = LOOM_BUF_INIT;
			for (const char *const *f = fields; *f; f++)
				loom_buf_printf(&b, "%s%s", f == fields ? "" : ", ", *f);
			err_at(l, line, col, "'%s': expected one of %s after //%s/", s, loom_buf_cstr(&b), rn[root].name);
			loom_buf_release(&b);
			lookup_release(ret);
			return -1;
		}
		return 0;
	}
	case WFL_DATA: {
		if (ret->n != 1) {
			err_at(l, line, col, "'%s': expected //WorkflowData/NAME", s);
			lookup_release(ret);
			return -1;
		}
		bool known = false;
		for (size_t i = 0; i < l->ndata; i++)
			known = known || strcmp(l->data[i], ret->path[0]) == 0;
		if (!known) {
			err_at(l, line, col, "'%s': no earlier activity of the workflow writes WorkflowData '%s'", s, ret->path[0]);
			lookup_release(ret);
			return -1;
		}
		return 0;
	}
	default:
		break;
	}
	/* a chain of attributes: every one but the last a reference */
	for (size_t i = 0; i < ret->n; i++) {
		const wf_attr_t *a = wf_attr_find(l->p, ret->path[i]);
		if (a == NULL) {
			err_at(l, line, col, "'%s': unknown attribute '%s'", s, ret->path[i]);
			lookup_release(ret);
			return -1;
		}
		bool last = i + 1 == ret->n;
		if (!last && a->type != WF_REFERENCE) {
			err_at(l, line, col, "'%s': '%s' is no reference: a lookup steps through references only", s, a->name);
			lookup_release(ret);
			return -1;
		}
		if (last && want == LK_REF && a->type != WF_REFERENCE) {
			err_at(l, line, col, "'%s': '%s' is no reference: approvers are persons", s, a->name);
			lookup_release(ret);
			return -1;
		}
		if (last && want == LK_ADDR && a->type != WF_REFERENCE && a->type != WF_STRING) {
			err_at(l, line, col, "'%s': '%s' is neither a reference (a person) nor a string (an address)", s, a->name);
			lookup_release(ret);
			return -1;
		}
	}
	return 0;
}

/* ---- approvers and recipients ---- */

static void who_release(wf_who_t *w)
{
	lookup_release(&w->lk);
	loom_xpath_destroy(&w->x);
	free(w->text);
	free(w->where);
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static const char *const person_roots[] = { "Target", "Requester", NULL };

static void who_parse(ld_t *l, const loom_cfg_strlist_t *in, unsigned line, unsigned col, bool addresses,
    const char *key, wf_who_t **ret, size_t *ret_n)
{
	*ret = loom_calloc(in->n + 1, sizeof **ret);
	*ret_n = 0;
	for (size_t i = 0; i < in->n; i++) {
		const char *s = in->v[i];
		unsigned ln, cl;
		locate(l, line, col, s, &ln, &cl);
		wf_who_t w = { .where = loom_sprintf("%s:%u:%u", l->file, ln, cl) };
		if (strncmp(s, "//", 2) == 0) {
			w.kind = WHO_LOOKUP;
			if (lookup_parse(l, s, ln, cl, addresses ? LK_ADDR : LK_REF, person_roots, &w.lk) < 0) {
				who_release(&w);
				continue;
			}
		} else if (s[0] == '/') {
			w.kind = WHO_FILTER;
			loom_xpath_compile_opts_t o = { .file = l->file, .line = ln, .column = cl };
			loom_xpath_error_t xe = { 0 };
			if (loom_xpath_compile(s, &o, &w.x, &xe) < 0) {
				loom_buf_printf(&l->errs, "%s (%s of workflow '%s')\n", xe.text, key, l->wf);
				loom_xpath_error_release(&xe);
				who_release(&w);
				continue;
			}
		} else if (strncasecmp(s, "set:", 4) == 0 || strncasecmp(s, "group:", 6) == 0) {
			w.kind = WHO_SET;
			const char *nm = strchr(s, ':') + 1;
			while (*nm == ' ')
				nm++;
			if (*nm == '\0') {
				err_at(l, ln, cl, "%s: '%s' names no Set", key, s);
				who_release(&w);
				continue;
			}
			w.text = loom_strdup(nm);
		} else if (is_uuid(s)) {
			w.kind = WHO_ID;
			w.text = loom_strdup(s);
		} else if (addresses && strchr(s, '@') && !strchr(s, ' ')) {
			w.kind = WHO_ADDRESS;
			w.text = loom_strdup(s);
		} else {
			err_at(l, ln, cl, "%s: '%s': expected a lookup (//Target/Manager), an XPath filter (/Person[...]), "
			    "set:NAME, an ObjectID%s", key, s, addresses ? " or an e-mail address" : "");
			who_release(&w);
			continue;
		}
		(*ret)[(*ret_n)++] = w;
	}
}

/* ---- templates ---- */

static void tmpl_release(wf_tmpl_t *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->p[i].lit);
		lookup_release(&t->p[i].lk);
	}
	free(t->p);
	memset(t, 0, sizeof *t);
}

static const char *const tmpl_roots[] = { "Target", "Requester", "Request", "WorkflowData", "Approval", "Recipient",
	NULL };

static void tmpl_parse(ld_t *l, const loom_cfg_text_t *t, const char *key, wf_tmpl_t *ret)
{
	memset(ret, 0, sizeof *ret);
	const char *s = t->text;
	while (*s) {
		const char *o = strstr(s, "[//");
		size_t litlen = o ? (size_t)(o - s) : strlen(s);
		if (litlen) {
			ret->p = loom_realloc(ret->p, (ret->n + 1) * sizeof *ret->p);
			ret->p[ret->n++] = (wf_tmpl_part_t){ .lit = loom_strndup(s, litlen) };
		}
		if (o == NULL)
			break;
		const char *c = strchr(o, ']');
		unsigned ln, cl;
		char *lk = loom_strndup(o + 1, c ? (size_t)(c - o - 1) : strlen(o + 1));
		locate(l, t->line, t->column, o, &ln, &cl);
		if (c == NULL) {
			err_at(l, ln, cl, "%s: '[' of '%s' is not closed by ']'", key, lk);
			free(lk);
			break;
		}
		wf_tmpl_part_t part = { 0 };
		if (lookup_parse(l, lk, ln, cl + 1, LK_ANY, tmpl_roots, &part.lk) == 0) {
			ret->p = loom_realloc(ret->p, (ret->n + 1) * sizeof *ret->p);
			ret->p[ret->n++] = part;
		}
		free(lk);
		s = c + 1;
	}
}

/* ---- expressions ---- */

static int attr_type_of(void *arg, const char *name, bool *ret_multi)
{
	ld_t *l = arg;
	const wf_attr_t *a = wf_attr_find(l->p, name);
	if (a) {
		*ret_multi = a->multi;
		return a->type; /* WF_* and LOOM_EXPR_* number the types alike */
	}
	for (size_t i = 0; i < l->ndata; i++)
		if (strcmp(l->data[i], name) == 0) {
			*ret_multi = true;
			return LOOM_EXPR_ANY;
		}
	return -1;
}

static loom_expr_t *expr_compile(ld_t *l, const loom_cfg_text_t *t, loom_expr_type_t want)
{
	loom_expr_compile_opts_t o = { .file = l->file, .line = t->line, .column = t->column, .attr_type = attr_type_of,
		.arg = l, .strict = true, .want = want };
	loom_expr_t *e = NULL;
	char *err = NULL;
	if (loom_expr_compile(t->text, &o, &e, &err) < 0) {
		loom_buf_printf(&l->errs, "%s (workflow '%s')\n", err, l->wf);
		free(err);
		return NULL;
	}
	return e;
}

/* ---- activities ---- */

static void act_release(wf_activity_t *a)
{
	free(a->label);
	free(a->where);
	for (size_t i = 0; i < a->napprovers; i++)
		who_release(&a->approvers[i]);
	free(a->approvers);
	for (size_t i = 0; i < a->nescalation; i++)
		who_release(&a->escalation[i]);
	free(a->escalation);
	loom_xpath_destroy(&a->filter);
	loom_expr_destroy(&a->cond);
	free(a->reason);
	for (size_t i = 0; i < a->nto; i++)
		who_release(&a->to[i]);
	free(a->to);
	tmpl_release(&a->subject);
	tmpl_release(&a->body);
	loom_expr_destroy(&a->expr);
	lookup_release(&a->dest);
	free(a->object_type);
	for (size_t i = 0; i < a->nvalues; i++) {
		free(a->values[i].attr);
		loom_expr_destroy(&a->values[i].e);
	}
	free(a->values);
	lookup_release(&a->target);
	free(a->rule);
	free(a->rule_attr);
	for (size_t i = 0; i < a->argc; i++)
		free(a->argv[i]);
	free(a->argv);
}

/* Which keys each type takes (besides type and name). */
static const struct {
	const char *key;
	unsigned types;            /* bits of WFA_* */
} key_use[] = {
	{ "approvers", 1u << WFA_APPROVAL }, { "escalation", 1u << WFA_APPROVAL },
	{ "threshold", 1u << WFA_APPROVAL }, { "escalation_timeout", 1u << WFA_APPROVAL },
	{ "timeout", 1u << WFA_APPROVAL | 1u << WFA_EXTERNAL },
	{ "filter", 1u << WFA_FILTER }, { "condition", 1u << WFA_FILTER }, { "reason", 1u << WFA_FILTER },
	{ "to", 1u << WFA_NOTIFY }, { "subject", 1u << WFA_NOTIFY | 1u << WFA_APPROVAL },
	{ "body", 1u << WFA_NOTIFY | 1u << WFA_APPROVAL },
	{ "expr", 1u << WFA_FUNCTION }, { "destination", 1u << WFA_FUNCTION },
	{ "object_type", 1u << WFA_CREATE }, { "values", 1u << WFA_CREATE | 1u << WFA_UPDATE },
	{ "target", 1u << WFA_UPDATE | 1u << WFA_DELETE },
	{ "rule", 1u << WFA_SYNC_RULE }, { "attribute", 1u << WFA_SYNC_RULE },
	{ "command", 1u << WFA_EXTERNAL }, { "on_restart", 1u << WFA_EXTERNAL },
};

static bool key_given(const cfg_act_t *c, const char *key)
{
	if (strcmp(key, "approvers") == 0) return c->approvers.n > 0;
	if (strcmp(key, "escalation") == 0) return c->escalation.n > 0;
	if (strcmp(key, "threshold") == 0) return c->threshold.text != NULL;
	if (strcmp(key, "escalation_timeout") == 0) return c->escalation_timeout_ms != 0;
	if (strcmp(key, "timeout") == 0) return c->timeout_ms != 0;
	if (strcmp(key, "filter") == 0) return c->filter.text != NULL;
	if (strcmp(key, "condition") == 0) return c->condition.text != NULL;
	if (strcmp(key, "reason") == 0) return c->reason != NULL;
	if (strcmp(key, "to") == 0) return c->to.n > 0;
	if (strcmp(key, "subject") == 0) return c->subject.text != NULL;
	if (strcmp(key, "body") == 0) return c->body.text != NULL;
	if (strcmp(key, "expr") == 0) return c->expr.text != NULL;
	if (strcmp(key, "destination") == 0) return c->destination.text != NULL;
	if (strcmp(key, "object_type") == 0) return c->object_type.text != NULL;
	if (strcmp(key, "values") == 0) return c->values.n > 0;
	if (strcmp(key, "target") == 0) return c->target.text != NULL;
	if (strcmp(key, "rule") == 0) return c->rule.text != NULL;
	if (strcmp(key, "attribute") == 0) return c->attribute.text != NULL;
	if (strcmp(key, "command") == 0) return c->command.n > 0;
	if (strcmp(key, "on_restart") == 0) return c->on_restart.text != NULL;
	return false;
}

static void data_add(ld_t *l, const char *name)
{
	for (size_t i = 0; i < l->ndata; i++)
		if (strcmp(l->data[i], name) == 0)
			return;
	l->data = loom_realloc(l->data, (l->ndata + 1) * sizeof *l->data);
	l->data[l->ndata++] = loom_strdup(name);
}

/* Parses a lookup naming a resource to change (update, delete): //Target,
 * //Requester or a chain of references after them. */
static int target_parse(ld_t *l, const loom_cfg_text_t *t, wf_lookup_t *ret)
{
	if (t->text == NULL) {
		memset(ret, 0, sizeof *ret);
		ret->root = WFL_TARGET;
		ret->text = loom_strdup("//Target");
		return 0;
	}
	return lookup_parse(l, t->text, t->line, t->column, LK_REF, person_roots, ret);
}

static int act_build(ld_t *l, const cfg_act_t *c, int phase, size_t index, const char *wfdir, wf_activity_t *a)
{
	memset(a, 0, sizeof *a);
	size_t before = l->errs.len;
	const loom_cfg_text_t *ty = &c->type;
	int type = -1;
	for (int i = 0; act_names[i]; i++)
		if (strcmp(ty->text, act_names[i]) == 0)
			type = i;
	if (type < 0) {
		err_at(l, ty->line, ty->column, "activity %zu: unknown activity type '%s': expected approval, filter, "
		    "notify, function, create, update, delete, sync_rule or external", index + 1, ty->text);
		return -1;
	}
	a->type = type;
	a->where = loom_sprintf("%s:%u:%u", l->file, ty->line, ty->column);
	a->label = c->name ? loom_strdup(c->name) : loom_sprintf("activity %zu (%s)", index + 1, act_names[type]);
	for (size_t k = 0; k < sizeof key_use / sizeof key_use[0]; k++)
		if (key_given(c, key_use[k].key) && !(key_use[k].types & (1u << type)))
			err_at(l, ty->line, ty->column, "%s: key '%s' does not apply to %s activities", a->label, key_use[k].key,
			    act_names[type]);
	static const unsigned phases[] = {
		[WFA_APPROVAL] = 1u << WFP_AUTHZ,
		[WFA_FILTER] = 1u << WFP_AUTHN | 1u << WFP_AUTHZ,
		[WFA_NOTIFY] = 7,
		[WFA_FUNCTION] = 7,
		[WFA_CREATE] = 1u << WFP_ACTION, [WFA_UPDATE] = 1u << WFP_ACTION, [WFA_DELETE] = 1u << WFP_ACTION,
		[WFA_SYNC_RULE] = 1u << WFP_ACTION,
		[WFA_EXTERNAL] = 7,
	};
	if (!(phases[type] & (1u << phase)))
		err_at(l, ty->line, ty->column, "%s: %s activities cannot run in %s workflows (%s)", a->label,
		    act_names[type], wf_phase_name(phase),
		    type == WFA_APPROVAL ? "approvals authorize requests: kind authz"
		    : type == WFA_FILTER ? "a filter validation decides whether a request goes on: kind authn or authz"
		    : "it changes resources, which happens after the commit: kind action");
	switch (type) {
	case WFA_APPROVAL:
		if (c->approvers.n == 0)
			err_at(l, ty->line, ty->column, "%s: an approval needs approvers", a->label);
		who_parse(l, &c->approvers, ty->line, ty->column, false, "approvers", &a->approvers, &a->napprovers);
		who_parse(l, &c->escalation, ty->line, ty->column, false, "escalation", &a->escalation, &a->nescalation);
		a->threshold = 1;
		if (c->threshold.text) {
			char *end;
			long v = strtol(c->threshold.text, &end, 10);
			if (strcasecmp(c->threshold.text, "all") == 0)
				a->threshold = 0;
			else if (*end == '\0' && v >= 1 && v <= 1000)
				a->threshold = (unsigned)v;
			else
				err_at(l, c->threshold.line, c->threshold.column, "%s: threshold '%s': expected a number of "
				    "approvals (1 to 1000) or all", a->label, c->threshold.text);
		}
		a->timeout_ms = c->timeout_ms ? c->timeout_ms : 7LL * 86400000;
		a->escalation_timeout_ms = c->escalation_timeout_ms ? c->escalation_timeout_ms : a->timeout_ms;
		if (c->escalation_timeout_ms && c->escalation.n == 0)
			err_at(l, ty->line, ty->column, "%s: escalation_timeout without escalation approvers", a->label);
		break;
	case WFA_FILTER:
		if ((c->filter.text != NULL) == (c->condition.text != NULL))
			err_at(l, ty->line, ty->column, "%s: give exactly one of filter (XPath) and condition (an expression)",
			    a->label);
		if (c->filter.text) {
			loom_xpath_compile_opts_t o = { .file = l->file, .line = c->filter.line, .column = c->filter.column };
			loom_xpath_error_t xe = { 0 };
			if (loom_xpath_compile(c->filter.text, &o, &a->filter, &xe) < 0) {
				loom_buf_printf(&l->errs, "%s (filter of workflow '%s')\n", xe.text, l->wf);
				loom_xpath_error_release(&xe);
			}
		}
		if (c->condition.text)
			a->cond = expr_compile(l, &c->condition, LOOM_EXPR_BOOL);
		a->reason = c->reason ? loom_strdup(c->reason) : NULL;
		break;
	case WFA_NOTIFY:
		if (c->to.n == 0)
			err_at(l, ty->line, ty->column, "%s: a notification needs recipients (to)", a->label);
		if (c->subject.text == NULL || c->body.text == NULL)
			err_at(l, ty->line, ty->column, "%s: a notification needs a subject and a body", a->label);
		who_parse(l, &c->to, ty->line, ty->column, true, "to", &a->to, &a->nto);
		break;
	case WFA_FUNCTION: {
		if (c->expr.text == NULL || c->destination.text == NULL) {
			err_at(l, ty->line, ty->column, "%s: a function needs expr and destination", a->label);
			break;
		}
		static const char *const roots[] = { "Target", "WorkflowData", NULL };
		const loom_cfg_text_t *d = &c->destination;
		/* the destination's WorkflowData name is written, not read */
		if (strncasecmp(d->text, "//WorkflowData/", 15) == 0 && d->text[15] && !strchr(d->text + 15, '/'))
			data_add(l, d->text + 15);
		if (lookup_parse(l, d->text, d->line, d->column, LK_ANY, roots, &a->dest) < 0)
			break;
		loom_expr_type_t want = LOOM_EXPR_ANY;
		if (a->dest.root == WFL_TARGET) {
			const wf_attr_t *at = a->dest.n == 1 ? wf_attr_find(l->p, a->dest.path[0]) : NULL;
			if (at == NULL)
				err_at(l, d->line, d->column, "%s: destination '%s': expected //Target/ATTR", a->label, d->text);
			else if (at->system)
				err_at(l, d->line, d->column, "%s: destination '%s': '%s' is set by the service", a->label, d->text,
				    at->name);
			else if (phase != WFP_ACTION)
				err_at(l, d->line, d->column, "%s: destination '%s': only action workflows change the target (the "
				    "request is not committed yet); use //WorkflowData/NAME", a->label, d->text);
			else if (at->type != WF_REFERENCE)
				want = (loom_expr_type_t)at->type;
		}
		a->expr = expr_compile(l, &c->expr, want);
		break;
	}
	case WFA_CREATE: {
		const wf_type_t *t = c->object_type.text ? wf_type_find(l->p, c->object_type.text) : NULL;
		if (c->object_type.text == NULL)
			err_at(l, ty->line, ty->column, "%s: a create needs object_type", a->label);
		else if (t == NULL)
			err_at(l, c->object_type.line, c->object_type.column, "%s: unknown object type '%s'", a->label,
			    c->object_type.text);
		a->object_type = c->object_type.text ? loom_strdup(c->object_type.text) : NULL;
	}
		__attribute__((fallthrough)); /* values */
	case WFA_UPDATE: {
		if (type == WFA_UPDATE)
			target_parse(l, &c->target, &a->target);
		if (c->values.n == 0)
			err_at(l, ty->line, ty->column, "%s: values: nothing to write", a->label);
		const wf_type_t *t = a->object_type ? wf_type_find(l->p, a->object_type) : NULL;
		const cfg_val_t *cv = c->values.v;
		a->values = loom_calloc(c->values.n + 1, sizeof *a->values);
		for (size_t i = 0; i < c->values.n; i++) {
			const loom_cfg_text_t *an = &cv[i].attribute;
			const wf_attr_t *at = wf_attr_find(l->p, an->text);
			if (at == NULL) {
				err_at(l, an->line, an->column, "%s: unknown attribute '%s'", a->label, an->text);
				continue;
			}
			if (at->system) {
				err_at(l, an->line, an->column, "%s: attribute '%s' is set by the service", a->label, an->text);
				continue;
			}
			if (t && wf_binding_find(t, an->text) == NULL) {
				err_at(l, an->line, an->column, "%s: attribute '%s' is not bound to type '%s'", a->label, an->text,
				    t->name);
				continue;
			}
			if (type == WFA_CREATE && cv[i].op != 0) {
				err_at(l, an->line, an->column, "%s: a create sets values: op does not apply", a->label);
				continue;
			}
			wf_valdef_t *v = &a->values[a->nvalues];
			if (cv[i].value.text == NULL && cv[i].op != 2) {
				err_at(l, an->line, an->column, "%s: attribute '%s' has no value (an expression)", a->label, an->text);
				continue;
			}
			v->op = cv[i].op == 0 ? LOOM__REQUEST_CHANGE__OP__REPLACE
			    : cv[i].op == 1 ? LOOM__REQUEST_CHANGE__OP__ADD : LOOM__REQUEST_CHANGE__OP__REMOVE;
			if (cv[i].value.text)
				v->e = expr_compile(l, &cv[i].value,
				    at->type == WF_REFERENCE ? LOOM_EXPR_ANY : (loom_expr_type_t)at->type);
			v->attr = loom_strdup(an->text);
			a->nvalues++;
		}
		break;
	}
	case WFA_DELETE:
		target_parse(l, &c->target, &a->target);
		break;
	case WFA_SYNC_RULE: {
		if (c->rule.text == NULL) {
			err_at(l, ty->line, ty->column, "%s: a sync_rule activity needs rule", a->label);
			break;
		}
		a->rule = loom_strdup(c->rule.text);
		if (l->rules_known) {
			bool found = false;
			for (size_t i = 0; i < l->nrules && !found; i++)
				found = strcmp(l->rules[i], a->rule) == 0;
			if (!found) {
				loom_buf_t b = LOOM_BUF_INIT;
				for (size_t i = 0; i < l->nrules; i++)
					loom_buf_printf(&b, "%s%s", i ? ", " : "", l->rules[i]);
				err_at(l, c->rule.line, c->rule.column, "%s: no outbound synchronization rule '%s' in config/sync "
				    "(outbound rules: %s)", a->label, a->rule, l->nrules ? loom_buf_cstr(&b) : "none");
				loom_buf_release(&b);
			}
		}
		a->rule_attr = loom_strdup(c->attribute.text ? c->attribute.text : "ExpectedRules");
		const wf_attr_t *at = wf_attr_find(l->p, a->rule_attr);
		unsigned ln = c->attribute.text ? c->attribute.line : c->rule.line;
		unsigned cl = c->attribute.text ? c->attribute.column : c->rule.column;
		if (at == NULL)
			err_at(l, ln, cl, "%s: attribute '%s' is not in the schema: declare it (type string, multi: true) and "
			    "bind it to the types the rule provisions", a->label, a->rule_attr);
		else if (at->type != WF_STRING || !at->multi)
			err_at(l, ln, cl, "%s: attribute '%s' must be a multi-valued string to hold rule names", a->label,
			    a->rule_attr);
		a->remove = c->remove;
		break;
	}
	case WFA_EXTERNAL: {
		if (c->command.n == 0) {
			err_at(l, ty->line, ty->column, "%s: an external activity needs command", a->label);
			break;
		}
		a->argv = loom_calloc(c->command.n + 1, sizeof *a->argv);
		for (size_t i = 0; i < c->command.n; i++)
			a->argv[a->argc++] = loom_strdup(c->command.v[i]);
		if (a->argv[0][0] != '/') {
			char *abs = loom_sprintf("%s/%s", wfdir, a->argv[0]);
			free(a->argv[0]);
			a->argv[0] = abs;
		}
		if (access(a->argv[0], X_OK) != 0) {
			unsigned ln, cl;
			locate(l, ty->line, ty->column, c->command.v[0], &ln, &cl);
			err_at(l, ln, cl, "%s: command '%s' is not an executable program", a->label, a->argv[0]);
		}
		a->timeout_ms = c->timeout_ms ? c->timeout_ms : 60000;
		if (c->on_restart.text && strcmp(c->on_restart.text, "rerun") == 0)
			a->rerun = true;
		else if (c->on_restart.text && strcmp(c->on_restart.text, "fail") != 0)
			err_at(l, c->on_restart.line, c->on_restart.column, "%s: on_restart '%s': expected fail or rerun",
			    a->label, c->on_restart.text);
		break;
	}
	}
	if (type == WFA_NOTIFY || type == WFA_APPROVAL) {
		if (c->subject.text) {
			tmpl_parse(l, &c->subject, "subject", &a->subject);
			a->has_subject = true;
		}
		if (c->body.text) {
			tmpl_parse(l, &c->body, "body", &a->body);
			a->has_body = true;
		}
	}
	return l->errs.len == before ? 0 : -1;
}

/* ---- workflows ---- */

static void def_release(wf_def_t *d)
{
	free(d->name);
	free(d->description);
	free(d->where);
	for (size_t i = 0; i < d->nacts; i++)
		act_release(&d->acts[i]);
	free(d->acts);
}

void wf_defs_release(wf_defs_t *d)
{
	for (size_t i = 0; i < d->n; i++)
		def_release(&d->v[i]);
	free(d->v);
	free(d->dir);
	memset(d, 0, sizeof *d);
}

const wf_def_t *wf_defs_find(const wf_defs_t *d, const char *name)
{
	for (size_t i = 0; d && i < d->n; i++)
		if (strcmp(d->v[i].name, name) == 0)
			return &d->v[i];
	return NULL;
}

/* The built-in owner approval of joins to static groups (workflow_groups.c),
 * unless a file defines a workflow of that name. */
static void add_builtin(wf_defs_t *d)
{
	if (wf_defs_find(d, "group-owner-approval"))
		return;
	d->v = loom_realloc(d->v, (d->n + 1) * sizeof *d->v);
	wf_def_t *w = &d->v[d->n++];
	memset(w, 0, sizeof *w);
	w->name = loom_strdup("group-owner-approval");
	w->phase = WFP_AUTHZ;
	w->builtin = true;
	w->where = loom_strdup("built-in");
	w->description = loom_strdup("one owner of the group approves a join request");
	w->acts = loom_calloc(1, sizeof *w->acts);
	w->nacts = 1;
	wf_activity_t *a = &w->acts[0];
	a->type = WFA_APPROVAL;
	a->label = loom_strdup("owner approval");
	a->where = loom_strdup("built-in");
	a->approvers = loom_calloc(1, sizeof *a->approvers);
	a->napprovers = 1;
	a->approvers[0].kind = WHO_LOOKUP;
	a->approvers[0].where = loom_strdup("built-in");
	a->approvers[0].lk.root = WFL_TARGET;
	a->approvers[0].lk.text = loom_strdup("//Target/Owner");
	a->approvers[0].lk.path = loom_calloc(1, sizeof(char *));
	a->approvers[0].lk.path[0] = loom_strdup("Owner");
	a->approvers[0].lk.n = 1;
	a->threshold = 1;
	a->timeout_ms = 7LL * 86400000;
	a->escalation_timeout_ms = a->timeout_ms;
}

/* The MPRs name workflows that exist, of the kind they name them as. */
static void check_mprs(ld_t *l, const wf_policy_t *p, const wf_defs_t *d)
{
	l->wf = NULL;
	for (size_t m = 0; m < p->nmprs; m++)
		for (size_t k = 0; k < p->mprs[m].nworkflows; k++) {
			const char *s = p->mprs[m].workflows[k];
			const char *colon = strchr(s, ':');
			const wf_def_t *def = wf_defs_find(d, colon + 1);
			const char *where = p->mprs[m].where ? p->mprs[m].where : "config/policy";
			if (def == NULL)
				loom_buf_printf(&l->errs, "%s: mpr '%s': unknown workflow '%s' (define it in %s)\n", where,
				    p->mprs[m].name, colon + 1, d->dir);
			else if (strncmp(s, wf_phase_name(def->phase), (size_t)(colon - s)) != 0)
				loom_buf_printf(&l->errs, "%s: mpr '%s': workflow '%s' is of kind %s, named here under %.*s_workflows\n",
				    where, p->mprs[m].name, def->name, wf_phase_name(def->phase), (int)(colon - s), s);
		}
	for (size_t m = 0; m < p->ntmprs; m++)
		for (size_t k = 0; k < p->tmprs[m].nworkflows; k++) {
			const char *name = strchr(p->tmprs[m].workflows[k], ':') + 1;
			const wf_def_t *def = wf_defs_find(d, name);
			const char *where = p->tmprs[m].where ? p->tmprs[m].where : "config/policy";
			if (def == NULL)
				loom_buf_printf(&l->errs, "%s: set-transition mpr '%s': unknown workflow '%s' (define it in %s)\n",
				    where, p->tmprs[m].name, name, d->dir);
			else if (def->phase != WFP_ACTION)
				loom_buf_printf(&l->errs, "%s: set-transition mpr '%s': workflow '%s' is of kind %s: set transitions "
				    "run action workflows\n", where, p->tmprs[m].name, name, wf_phase_name(def->phase));
		}
}

int wf_defs_load(const char *policy_dir, const char *sync_dir, const wf_policy_t *p, wf_defs_t *d, char **ret_error)
{
	memset(d, 0, sizeof *d);
	d->dir = loom_sprintf("%s/workflows", policy_dir);
	ld_t l = { .errs = LOOM_BUF_INIT, .p = p };
	if (sync_dir) {
		loom_synccfg_t *sc = NULL;
		size_t nsc = 0;
		loom_cfg_diags_t dg = { 0 };
		if (loom_synccfg_load_dir(sync_dir, &sc, &nsc, &dg) == 0) {
			l.rules_known = true;
			for (size_t f = 0; f < nsc; f++) {
				const loom_sync_rule_t *r = sc[f].rules.v;
				for (size_t i = 0; i < sc[f].rules.n; i++)
					if (r[i].direction == LOOM_SYNC_OUTBOUND) {
						l.rules = loom_realloc(l.rules, (l.nrules + 1) * sizeof *l.rules);
						l.rules[l.nrules++] = loom_strdup(r[i].name);
					}
			}
		}
		/* a sync directory with errors is loom-engine's to report: rules are not checked then */
		loom_cfg_diags_release(&dg);
		loom_synccfg_free_all(&sc, nsc);
	}
	loom_cfg_diags_t diags;
	void *v = NULL;
	size_t n = 0;
	int rc = loom_config_load_dir(d->dir, sizeof(cfg_wfile_t), load_one, &v, &n, &diags);
	if (rc < 0)
		for (size_t i = 0; i < diags.n; i++)
			loom_buf_printf(&l.errs, "%s\n", diags.v[i].text);
	loom_cfg_diags_release(&diags);
	cfg_wfile_t *files = v;
	for (size_t f = 0; rc == 0 && f < n; f++) {
		l.file = files[f].path;
		l.text = read_text(l.file);
		char *wfdir = loom_strdup(l.file);
		char *slash = strrchr(wfdir, '/');
		if (slash)
			*slash = '\0';
		cfg_wf_t *cw = files[f].workflows.v;
		for (size_t i = 0; i < files[f].workflows.n; i++) {
			const loom_cfg_text_t *nm = &cw[i].name;
			l.wf = NULL;
			if (wf_defs_find(d, nm->text)) {
				err_at(&l, nm->line, nm->column, "workflow '%s' is defined twice", nm->text);
				continue;
			}
			if (!wf_name_ok(nm->text)) {
				err_at(&l, nm->line, nm->column, "workflow name '%s': expected letters, digits, '_' or '-', "
				    "starting with a letter", nm->text);
				continue;
			}
			l.wf = nm->text;
			if (cw[i].run_on_policy_update && cw[i].kind != WFP_ACTION)
				err_at(&l, nm->line, nm->column, "run_on_policy_update applies to action workflows only");
			wf_def_t def = { .name = loom_strdup(nm->text), .phase = cw[i].kind,
				.description = cw[i].description ? loom_strdup(cw[i].description) : NULL,
				.run_on_policy_update = cw[i].run_on_policy_update,
				.where = loom_sprintf("%s:%u:%u", l.file, nm->line, nm->column) };
			const cfg_act_t *ca = cw[i].activities.v;
			def.acts = loom_calloc(cw[i].activities.n + 1, sizeof *def.acts);
			for (size_t k = 0; k < cw[i].activities.n; k++)
				if (act_build(&l, &ca[k], def.phase, k, wfdir, &def.acts[def.nacts]) == 0)
					def.nacts++;
				else
					act_release(&def.acts[def.nacts]);
			for (size_t k = 0; k < l.ndata; k++)
				free(l.data[k]);
			free(l.data);
			l.data = NULL;
			l.ndata = 0;
			d->v = loom_realloc(d->v, (d->n + 1) * sizeof *d->v);
			d->v[d->n++] = def;
		}
		free(wfdir);
		free(l.text);
		l.text = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		loom_config_release(&wfile_table, &files[i]);
		free(files[i].path);
	}
	free(files);
	for (size_t i = 0; i < l.nrules; i++)
		free(l.rules[i]);
	free(l.rules);
	add_builtin(d);
	check_mprs(&l, p, d);
	if (l.errs.len) {
		l.errs.len--;
		*ret_error = loom_strdup(loom_buf_cstr(&l.errs));
		loom_buf_release(&l.errs);
		wf_defs_release(d);
		return -1;
	}
	loom_buf_release(&l.errs);
	return 0;
}

/* ---- checks against the store ---- */

static int check_who(wf_t *w, const wf_def_t *def, const wf_who_t *v, size_t n, loom_buf_t *errs)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind == WHO_SET) {
			char *f = loom_sprintf("/*[DisplayName = '%s' and (ObjectType = 'Set' or ObjectType = 'Group')]",
			    v[i].text);
			loom_xpath_t *x = NULL;
			loom_xpath_error_t xe = { 0 };
			loom_xpath_result_t r;
			loom_xpath_result_init(&r);
			bool found = false;
			if (strchr(v[i].text, '\'') == NULL && loom_xpath_compile(f, NULL, &x, &xe) == 0 &&
			    loom_xpath_eval(x, &w->xp, NULL, &r, &xe) == 0)
				found = r.n > 0;
			loom_xpath_error_release(&xe);
			loom_xpath_destroy(&x);
			loom_xpath_result_release(&r);
			free(f);
			if (!found) {
				loom_xpath_rid_t rid;
				found = w->xp.resolve(w, v[i].text, strlen(v[i].text), &rid) == 0;
			}
			if (!found)
				loom_buf_printf(errs, "%s: workflow '%s': set:%s: no Set or Group has that DisplayName or ObjectID\n",
				    v[i].where, def->name, v[i].text);
		} else if (v[i].kind == WHO_FILTER) {
			loom_xpath_error_t xe = { 0 };
			if (loom_xpath_check(v[i].x, &w->xp, &xe) < 0) {
				loom_buf_printf(errs, "%s (workflow '%s')\n", xe.text, def->name);
				loom_xpath_error_release(&xe);
			}
		} else if (v[i].kind == WHO_ID) {
			loom_xpath_rid_t rid;
			if (w->xp.resolve(w, v[i].text, strlen(v[i].text), &rid) != 0)
				loom_buf_printf(errs, "%s: workflow '%s': '%s' is no resource\n", v[i].where, def->name, v[i].text);
		}
	}
	return 0;
}

int wf_defs_check_store(wf_t *w, char **ret_error)
{
	loom_buf_t errs = LOOM_BUF_INIT;
	for (size_t i = 0; w->defs && i < w->defs->n; i++) {
		const wf_def_t *def = &w->defs->v[i];
		for (size_t k = 0; k < def->nacts; k++) {
			const wf_activity_t *a = &def->acts[k];
			check_who(w, def, a->approvers, a->napprovers, &errs);
			check_who(w, def, a->escalation, a->nescalation, &errs);
			check_who(w, def, a->to, a->nto, &errs);
			loom_xpath_error_t xe = { 0 };
			if (a->filter && loom_xpath_check(a->filter, &w->xp, &xe) < 0) {
				loom_buf_printf(&errs, "%s (workflow '%s')\n", xe.text, def->name);
				loom_xpath_error_release(&xe);
			}
		}
	}
	if (errs.len) {
		errs.len--;
		*ret_error = loom_strdup(loom_buf_cstr(&errs));
		loom_buf_release(&errs);
		return -1;
	}
	loom_buf_release(&errs);
	return 0;
}

/* ---- Sets the workflows name ---- */

static const char *set_named(const wf_defs_t *d, const char *name, const char *id, const wf_def_t **ret_def)
{
	for (size_t i = 0; d && i < d->n; i++)
		for (size_t k = 0; k < d->v[i].nacts; k++) {
			const wf_activity_t *a = &d->v[i].acts[k];
			const wf_who_t *lists[3] = { a->approvers, a->escalation, a->to };
			size_t ns[3] = { a->napprovers, a->nescalation, a->nto };
			for (int l = 0; l < 3; l++)
				for (size_t j = 0; j < ns[l]; j++)
					if (lists[l][j].kind == WHO_SET &&
					    ((name && strcmp(lists[l][j].text, name) == 0) || strcasecmp(lists[l][j].text, id) == 0)) {
						*ret_def = &d->v[i];
						return lists[l][j].where;
					}
		}
	return NULL;
}

char *wf_defs_validate_set(wf_t *w, const Loom__Resource *before, const Loom__Resource *after)
{
	if (before == NULL || w->defs == NULL ||
	    (strcmp(before->object_type, "Set") != 0 && strcmp(before->object_type, "Group") != 0))
		return NULL;
	const Loom__Attr *a = wf_res_attr(before, "DisplayName");
	const char *name = a && a->n_values && a->values[0]->v_case == LOOM__VALUE__V_STR ? a->values[0]->str : NULL;
	const Loom__Attr *b = after ? wf_res_attr(after, "DisplayName") : NULL;
	const char *now = b && b->n_values && b->values[0]->v_case == LOOM__VALUE__V_STR ? b->values[0]->str : NULL;
	if (after && (name == NULL || (now && strcmp(name, now) == 0)))
		return NULL; /* not deleted, not renamed */
	const wf_def_t *def = NULL;
	const char *where = set_named(w->defs, name, before->object_id, &def);
	if (where == NULL)
		return NULL;
	return loom_sprintf("%s '%s' is named by workflow '%s' (%s): %s it would leave the workflow without it; change "
	    "the workflow first (workflow reference rule)", before->object_type, name ? name : before->object_id,
	    def->name, where, after ? "renaming" : "deleting");
}
