/* test_engine_sync.c - synchronization of one connector-space object
 * (engine/engine_sync.c) without the bus, and the attribute helpers it rests
 * on (lib/loom_attrs.c).
 *
 * Each case builds an engine in a mkdtemp directory: agents/NAME.yaml and
 * sync/people.yaml written for the case, a real RocksDB store with the
 * engine's column families, and a run record (e->run) that collects
 * counters and errors. Connector-space objects are staged the way import
 * stages them (a CsObject with a pending import, marked for delta sync),
 * eng_sync_one() runs on them, and the case checks what the store holds
 * afterwards. e->daemon stays NULL: nothing here may need the bus.
 *
 * The configuration (write_config) is one deployment, switched per case:
 *   hr        person  -> person, projects, filter employeeType == "test",
 *                        precedence 10, flows employeeId givenName sn title
 *                        employeeType displayName uid
 *   badge     badge   -> person, join [empId=employeeId] then
 *                        [sn=sn AND givenName=givenName], precedence 5,
 *                        flows title badgeNo, projects when the case says so
 *   legacy    account -> person, join [empId=employeeId], flows title,
 *                        precedence as the case says
 *   directory person  -> inetOrgPerson, outbound, provisions at
 *                        uid=UID,ou=people,dc=example,dc=com when the case
 *                        says so; scope employeeType != "contractor"
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "engine.h"
#include "loom_alloc.h"

/* Column families in engine_main.c's order: CF_CS = 1 ... */
static const char *const cfs[] = { "cs", "cs_dn", "mv", "mv_index", "link", "export", "delta", "run", "meta",
	"mv_ref", "unresolved", "resync", "refresh", NULL };

#define ADA_DN "uid=alovelace,ou=people,dc=example,dc=com"
#define ADA "employeeId=1001;givenName=Ada;sn=Lovelace;title=Analyst"
/* The directory add that provisioning ADA gives. */
#define ADA_ADD "ADD objectClass=top|person|inetOrgPerson;uid=alovelace;cn=Ada Lovelace;sn=Lovelace;title=Analyst"
#define ABSENT "(absent)"
#define NONE "(none)"

/* ---- fixture ------------------------------------------------------------------ */

/* An empty engine store, made once: each case opens a checkpoint of it, which
 * is much faster than creating the column families every time. */
static char template_dir[64];
static loom_store_t *template_store;

typedef struct cfg {
	bool badge_project;            /* badge-in projects */
	int legacy_prec;               /* legacy-in precedence (0: 20) */
	bool directory;                /* the outbound rule to-directory */
	const char *deprov;            /* its deprovision action (NULL: delete) */
	const char *dir_anchor;        /* the directory agent's anchor (NULL: dn) */
	const char *mvdel;             /* mv_deletion when: (NULL: no rule) */
} cfg_t;

typedef struct fx {
	char dir[64];                  /* mkdtemp directory, removed in teardown */
	char deploy[128];              /* DIR/loom.yaml (never written) */
	const void *tcase;             /* the table case, from the test's initial state */
	engine_t e;                    /* the engine under test */
	loom_batch_t *b;               /* staging batch */
	ProtobufCMessage **msgs;       /* messages read back, freed in teardown */
	size_t nmsgs;
	char **strs;                   /* texts made for assertions, freed in teardown */
	size_t nstrs;
} fx_t;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(template_dir, sizeof template_dir, "/tmp/loom-engsync-tpl-XXXXXX");
	if (mkdtemp(template_dir) == NULL)
		return -1;
	char path[128];
	snprintf(path, sizeof path, "%s/engine", template_dir);
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	char *err = NULL;
	if (loom_store_open(path, cfs, &so, &template_store, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	loom_store_close(&template_store);
	return nftw(template_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	fx_t *f = calloc(1, sizeof *f);
	if (f == NULL)
		return -1;
	f->tcase = *state;
	snprintf(f->dir, sizeof f->dir, "/tmp/loom-engsync-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->deploy, sizeof f->deploy, "%s/loom.yaml", f->dir);
	*state = f;
	return 0;
}

static void run_clear(eng_run_t *r)
{
	for (size_t i = 0; i < r->ncounters; i++) {
		free(r->counters[i].name);
		eng_strv_free(r->counters[i].anchors, r->counters[i].nanchors);
	}
	free(r->counters);
	r->counters = NULL;
	r->ncounters = 0;
	for (size_t i = 0; i < r->nerrors; i++)
		loom__run_object_error__free_unpacked(r->errors[i], NULL);
	free(r->errors);
	r->errors = NULL;
	r->nerrors = 0;
	r->error_count = 0;
	r->objects = 0;
}

static int teardown(void **state)
{
	fx_t *f = *state;
	engine_t *e = &f->e;
	if (e->run) {
		run_clear(e->run);
		free(e->run->profile);
		free(e->run);
	}
	loom_batch_destroy(&f->b);
	loom_batch_destroy(&e->batch);
	loom_store_close(&e->store);
	eng_rules_free(e);
	loom_buf_release(&e->key);
	loom_buf_release(&e->val);
	loom_expr_result_release(&e->res);
	for (size_t i = 0; i < f->nmsgs; i++)
		protobuf_c_message_free_unpacked(f->msgs[i], NULL);
	free(f->msgs);
	eng_strv_free(f->strs, f->nstrs);
	int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

static void *keep(fx_t *f, ProtobufCMessage *m)
{
	if (m) {
		f->msgs = loom_realloc(f->msgs, (f->nmsgs + 1) * sizeof *f->msgs);
		f->msgs[f->nmsgs++] = m;
	}
	return m;
}

static const char *keep_str(fx_t *f, char *s)
{
	f->strs = loom_realloc(f->strs, (f->nstrs + 1) * sizeof *f->strs);
	f->strs[f->nstrs++] = s;
	return s;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	if (fp == NULL)
		fail_msg("cannot write '%s'", path);
	fputs(text, fp);
	fclose(fp);
}

static void write_config(fx_t *f, const cfg_t *c)
{
	char path[256];
	snprintf(path, sizeof path, "%s/agents", f->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/sync", f->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/agents/hr.yaml", f->dir);
	write_file(path, "type: file\nobject_type: person\nanchor: employeeId\nfile: { format: csv, path: hr.csv }\n");
	snprintf(path, sizeof path, "%s/agents/badge.yaml", f->dir);
	write_file(path, "type: file\nobject_type: badge\nanchor: badgeId\nfile: { format: csv, path: badge.csv }\n");
	snprintf(path, sizeof path, "%s/agents/legacy.yaml", f->dir);
	write_file(path, "type: file\nobject_type: account\nanchor: login\nfile: { format: csv, path: legacy.csv }\n");
	snprintf(path, sizeof path, "%s/agents/directory.yaml", f->dir);
	char *dir = loom_sprintf("type: file\nobject_type: inetOrgPerson\nanchor: %s\n"
	    "file: { format: ldif, path: directory.ldif }\n", c->dir_anchor ? c->dir_anchor : "dn");
	write_file(path, dir);
	free(dir);

	loom_buf_t y = LOOM_BUF_INIT;
	loom_buf_printf(&y,
	    "rules:\n"
	    "  - name: hr-in\n"
	    "    direction: inbound\n"
	    "    agent: hr\n"
	    "    cs_type: person\n"
	    "    mv_type: person\n"
	    "    filter: 'Eq(employeeType, \"test\")'\n"
	    "    project: true\n"
	    "    precedence: 10\n"
	    "    flows:\n"
	    "      - { mv: employeeId, expr: employeeId }\n"
	    "      - { mv: givenName, expr: givenName }\n"
	    "      - { mv: sn, expr: sn }\n"
	    "      - { mv: title, expr: title }\n"
	    "      - { mv: employeeType, expr: employeeType }\n"
	    "      - { mv: displayName, expr: 'givenName + \" \" + sn' }\n"
	    "      - { mv: uid, expr: 'LowerCase(Left(givenName, 1) + sn)' }\n"
	    "  - name: badge-in\n"
	    "    direction: inbound\n"
	    "    agent: badge\n"
	    "    cs_type: badge\n"
	    "    mv_type: person\n"
	    "    join:\n"
	    "      - match: [ { cs: empId, mv: employeeId } ]\n"
	    "      - match: [ { cs: sn, mv: sn }, { cs: givenName, mv: givenName } ]\n"
	    "    project: %s\n"
	    "    precedence: 5\n"
	    "    flows:\n"
	    "      - { mv: title, expr: title }\n"
	    "      - { mv: badgeNo, expr: badgeId }\n"
	    "  - name: legacy-in\n"
	    "    direction: inbound\n"
	    "    agent: legacy\n"
	    "    cs_type: account\n"
	    "    mv_type: person\n"
	    "    join: [ { match: [ { cs: empId, mv: employeeId } ] } ]\n"
	    "    precedence: %d\n"
	    "    flows:\n"
	    "      - { mv: title, expr: title }\n",
	    c->badge_project ? "true" : "false", c->legacy_prec ? c->legacy_prec : 20);
	if (c->directory)
		loom_buf_printf(&y,
		    "  - name: to-directory\n"
		    "    direction: outbound\n"
		    "    agent: directory\n"
		    "    cs_type: inetOrgPerson\n"
		    "    mv_type: person\n"
		    "    provision: true\n"
		    "    scope: 'NotEquals(employeeType, \"contractor\")'\n"
		    "    dn: '\"uid=\" + EscapeDNComponent(uid) + \",ou=people,dc=example,dc=com\"'\n"
		    "    deprovision: %s\n"
		    "    flows:\n"
		    "      - { cs: objectClass, expr: 'Split(\"top,person,inetOrgPerson\", \",\")', initial: true }\n"
		    "      - { cs: uid, expr: uid, initial: true }\n"
		    "      - { cs: cn, expr: displayName }\n"
		    "      - { cs: sn, expr: sn }\n"
		    "      - { cs: title, expr: title }\n",
		    c->deprov ? c->deprov : "delete");
	if (c->mvdel)
		loom_buf_printf(&y, "mv_deletion:\n  - { mv_type: person, when: %s%s }\n", c->mvdel,
		    strcmp(c->mvdel, "agent-disconnected") == 0 ? ", agent: hr" : "");
	snprintf(path, sizeof path, "%s/sync/people.yaml", f->dir);
	write_file(path, loom_buf_cstr(&y));
	loom_buf_release(&y);
}

/* Loads the rules for c, opens the store and starts a delta-sync run. */
static void fx_open(fx_t *f, const cfg_t *c)
{
	engine_t *e = &f->e;
	write_config(f, c);
	char *err = NULL;
	if (eng_rules_load(e, f->deploy, &err) < 0) {
		const char *m = keep_str(f, err);
		fail_msg("cannot load rules: %s", m);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/engine", f->dir);
	const char *cerr = NULL;
	if (loom_store_checkpoint(template_store, path, &cerr) < 0)
		fail_msg("%s", cerr);
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	so.sync = false;
	if (loom_store_open(path, cfs, &so, &e->store, &err) < 0) {
		const char *m = keep_str(f, err);
		fail_msg("cannot open store: %s", m);
	}
	e->batch = loom_batch_new(e->store);
	f->b = loom_batch_new(e->store);
	const char *ierr = NULL;
	if (eng_mvidx_check(e, &ierr) < 0)
		fail_msg("cannot build the metaverse index: %s", ierr);
	eng_run_t *r = loom_calloc(1, sizeof *r);
	r->id = 7;
	r->profile = loom_strdup("delta-sync");
	r->delta = true;
	r->agent = eng_agent_find(e, "hr");
	e->run = r;
}

/* Forgets the counters and errors so far: the next assertions see only what follows. */
static void run_reset(fx_t *f)
{
	run_clear(f->e.run);
}

static uint64_t counter(fx_t *f, const char *name)
{
	const eng_run_t *r = f->e.run;
	for (size_t i = 0; i < r->ncounters; i++)
		if (strcmp(r->counters[i].name, name) == 0)
			return r->counters[i].count;
	return 0;
}

static const Loom__RunObjectError *run_error(fx_t *f, size_t i)
{
	if (i >= f->e.run->nerrors)
		fail_msg("run has %zu errors, wanted error %zu", f->e.run->nerrors, i + 1);
	return f->e.run->errors[i];
}

/* ---- attribute specs ----------------------------------------------------------
 * "name=v1|v2;name2=v": string-valued attributes, in order. In a delta spec a
 * leading '+' is ADD, '-' DELETE, nothing REPLACE; "name=" has no values. */

static void parse_deltas(const char *spec, Loom__AttrDelta ***ret, size_t *ret_n)
{
	Loom__AttrDelta **v = NULL;
	size_t n = 0;
	char *copy = loom_strdup(spec ? spec : "");
	char *save = NULL;
	for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		Loom__AttrDelta *d = loom_malloc(sizeof *d);
		loom__attr_delta__init(d);
		d->op = LOOM__ATTR_DELTA__OP__REPLACE;
		if (*item == '+') {
			d->op = LOOM__ATTR_DELTA__OP__ADD;
			item++;
		} else if (*item == '-') {
			d->op = LOOM__ATTR_DELTA__OP__DELETE;
			item++;
		}
		char *eq = strchr(item, '=');
		if (eq)
			*eq = '\0';
		d->name = loom_strdup(item);
		for (const char *p = eq ? eq + 1 : ""; *p;) {
			const char *bar = strchr(p, '|');
			size_t len = bar ? (size_t)(bar - p) : strlen(p);
			d->values = loom_realloc(d->values, (d->n_values + 1) * sizeof *d->values);
			d->values[d->n_values++] = loom_value_str(p, len);
			p += len + (bar ? 1 : 0);
		}
		v = loom_realloc(v, (n + 1) * sizeof *v);
		v[n++] = d;
	}
	free(copy);
	*ret = v;
	*ret_n = n;
}

static void parse_attrs(const char *spec, Loom__Attr ***ret, size_t *ret_n)
{
	Loom__AttrDelta **d;
	size_t nd;
	parse_deltas(spec, &d, &nd);
	Loom__Attr **v = loom_calloc(nd ? nd : 1, sizeof *v);
	for (size_t i = 0; i < nd; i++) {
		Loom__Attr *a = loom_malloc(sizeof *a);
		loom__attr__init(a);
		a->name = loom_strdup(d[i]->name);
		a->values = loom_calloc(d[i]->n_values ? d[i]->n_values : 1, sizeof *a->values);
		for (size_t k = 0; k < d[i]->n_values; k++)
			a->values[a->n_values++] = loom_value_dup(d[i]->values[k]);
		v[i] = a;
	}
	loom_deltas_free(d, nd);
	*ret = v;
	*ret_n = nd;
}

static void values_text(loom_buf_t *b, Loom__Value *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			loom_buf_addc(b, '|');
		loom_value_text(b, v[i]);
	}
}

static char *attrs_text(Loom__Attr *const *a, size_t n)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		loom_buf_printf(&b, "%s%s=", i ? ";" : "", a[i]->name);
		values_text(&b, a[i]->values, a[i]->n_values);
	}
	return loom_buf_steal(&b);
}

static char *deltas_text(Loom__AttrDelta *const *d, size_t n)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const char *op = d[i]->op == LOOM__ATTR_DELTA__OP__ADD ? "+" : d[i]->op == LOOM__ATTR_DELTA__OP__DELETE ? "-" : "";
		loom_buf_printf(&b, "%s%s%s=", i ? ";" : "", op, d[i]->name);
		values_text(&b, d[i]->values, d[i]->n_values);
	}
	return loom_buf_steal(&b);
}

/* "ADD a=x;b=y", "UPDATE title=Chief", "DELETE", or NONE. */
static const char *export_text(fx_t *f, const Loom__PendingExport *p)
{
	if (p == NULL || p->kind == LOOM__PENDING_EXPORT__KIND__NONE)
		return NONE;
	const char *kind = p->kind == LOOM__PENDING_EXPORT__KIND__ADD ? "ADD"
	    : p->kind == LOOM__PENDING_EXPORT__KIND__UPDATE ? "UPDATE" : "DELETE";
	char *d = deltas_text(p->deltas, p->n_deltas);
	char *s = d[0] ? loom_sprintf("%s %s", kind, d) : loom_strdup(kind);
	free(d);
	return keep_str(f, s);
}

/* ---- staging (what import does) ----------------------------------------------- */

static void cs_write(fx_t *f, const char *agent, const Loom__CsObject *cs, const char *old_dn, bool delta)
{
	loom_batch_clear(f->b);
	eng_cs_put(&f->e, f->b, agent, cs, old_dn);
	if (delta)
		eng_mark(&f->e, f->b, CF_DELTA, agent, cs->anchor, true);
	const char *err = NULL;
	if (loom_store_write(f->e.store, f->b, &err) < 0)
		fail_msg("cannot stage '%s': %s", cs->anchor, err);
}

/* The object as stored, owned by the caller (NULL: absent). */
static Loom__CsObject *cs_raw(fx_t *f, const char *agent, const char *anchor)
{
	const char *err = NULL;
	Loom__CsObject *cs = eng_cs_get(&f->e, agent, anchor, &err);
	if (cs == NULL && err)
		fail_msg("cannot read '%s' of '%s': %s", anchor, agent, err);
	return cs;
}

static Loom__PendingImport *pending(Loom__PendingImport__Kind kind, const char *type, const char *spec)
{
	Loom__PendingImport *p = loom_malloc(sizeof *p);
	loom__pending_import__init(p);
	p->kind = kind;
	p->run_id = 3;
	if (type)
		p->object_type = loom_strdup(type);
	parse_deltas(spec, &p->deltas, &p->n_deltas);
	return p;
}

static char *dn_of(const char *agent, const char *anchor)
{
	return strcmp(agent, "directory") == 0 ? loom_strdup(anchor) : loom_sprintf("cn=%s,ou=%s", anchor, agent);
}

/* A new object in state with hologram (the attributes last synchronized)
 * and a pending import of kind; NULL hologram and kind ADD is a new import. */
static void stage_new(fx_t *f, const char *agent, const char *anchor, Loom__CsObject__State st,
    const char *hologram, Loom__PendingImport__Kind kind, const char *spec)
{
	const eng_agent_t *a = eng_agent_find(&f->e, agent);
	assert_non_null(a);
	Loom__CsObject *cs = loom_malloc(sizeof *cs);
	loom__cs_object__init(cs);
	cs->anchor = loom_strdup(anchor);
	cs->dn = dn_of(agent, anchor);
	cs->object_type = loom_strdup(a->cfg->object_type);
	cs->state = st;
	cs->connected_at = cs->changed_at = 1;
	if (hologram)
		parse_attrs(hologram, &cs->attrs, &cs->n_attrs);
	if (kind != LOOM__PENDING_IMPORT__KIND__NONE)
		cs->pending_import = pending(kind, kind == LOOM__PENDING_IMPORT__KIND__ADD ? a->cfg->object_type : NULL, spec);
	cs_write(f, agent, cs, NULL, kind != LOOM__PENDING_IMPORT__KIND__NONE);
	loom__cs_object__free_unpacked(cs, NULL);
}

/* A pending import of kind on a stored object. */
static void stage_change(fx_t *f, const char *agent, const char *anchor, Loom__PendingImport__Kind kind, const char *spec)
{
	Loom__CsObject *cs = cs_raw(f, agent, anchor);
	if (cs == NULL)
		fail_msg("no object '%s' in agent '%s' to change", anchor, agent);
	if (cs->pending_import)
		loom__pending_import__free_unpacked(cs->pending_import, NULL);
	cs->pending_import = pending(kind, NULL, spec);
	cs_write(f, agent, cs, cs->dn, true);
	loom__cs_object__free_unpacked(cs, NULL);
}

static void sync_obj(fx_t *f, const char *agent, const char *anchor)
{
	f->e.run->agent = eng_agent_find(&f->e, agent);
	assert_non_null(f->e.run->agent);
	const char *err = NULL;
	if (eng_sync_one(&f->e, agent, anchor, false, &err) < 0)
		fail_msg("sync of '%s' in '%s' failed: %s", anchor, agent, err ? err : "?");
}

/* Import of a new object, then its synchronization. */
static void imp(fx_t *f, const char *agent, const char *anchor, const char *spec)
{
	stage_new(f, agent, anchor, LOOM__CS_OBJECT__STATE__NORMAL, NULL, LOOM__PENDING_IMPORT__KIND__ADD, spec);
	sync_obj(f, agent, anchor);
}

static void upd(fx_t *f, const char *agent, const char *anchor, const char *spec)
{
	stage_change(f, agent, anchor, LOOM__PENDING_IMPORT__KIND__UPDATE, spec);
	sync_obj(f, agent, anchor);
}

static void del(fx_t *f, const char *agent, const char *anchor)
{
	stage_change(f, agent, anchor, LOOM__PENDING_IMPORT__KIND__DELETE, NULL);
	sync_obj(f, agent, anchor);
}

/* What export then the next import do to a provisioned object: its pending
 * export becomes its hologram and it is a plain connector. */
static void confirm_export(fx_t *f, const char *agent, const char *anchor)
{
	Loom__CsObject *cs = cs_raw(f, agent, anchor);
	if (cs == NULL || cs->pending_export == NULL)
		fail_msg("no pending export on '%s' of '%s'", anchor, agent);
	loom_attrs_apply(&cs->attrs, &cs->n_attrs, cs->pending_export->deltas, cs->pending_export->n_deltas);
	loom__pending_export__free_unpacked(cs->pending_export, NULL);
	cs->pending_export = NULL;
	cs->state = cs->mv_id.len ? LOOM__CS_OBJECT__STATE__JOINED : LOOM__CS_OBJECT__STATE__NORMAL;
	cs_write(f, agent, cs, cs->dn, false);
	loom_batch_clear(f->b);
	eng_mark(&f->e, f->b, CF_EXPORT, agent, anchor, false);
	const char *err = NULL;
	if (loom_store_write(f->e.store, f->b, &err) < 0)
		fail_msg("%s", err);
	loom__cs_object__free_unpacked(cs, NULL);
}

/* ---- reading the store back ---------------------------------------------------- */

static Loom__CsObject *cs_get(fx_t *f, const char *agent, const char *anchor)
{
	return keep(f, (ProtobufCMessage *)cs_raw(f, agent, anchor));
}

static Loom__CsObject *cs_must(fx_t *f, const char *agent, const char *anchor)
{
	Loom__CsObject *cs = cs_get(f, agent, anchor);
	if (cs == NULL)
		fail_msg("no object '%s' in agent '%s'", anchor, agent);
	return cs;
}

static Loom__MvObject *mv_of(fx_t *f, const Loom__CsObject *cs)
{
	if (cs == NULL || cs->mv_id.len != 8)
		return NULL;
	const char *err = NULL;
	Loom__MvObject *mv = eng_mv_get(&f->e, cs->mv_id.data, 8, &err);
	if (mv == NULL && err)
		fail_msg("cannot read mv object: %s", err);
	return keep(f, (ProtobufCMessage *)mv);
}

static Loom__MvObject *mv_must(fx_t *f, const Loom__CsObject *cs)
{
	Loom__MvObject *mv = mv_of(f, cs);
	if (mv == NULL)
		fail_msg("'%s' is joined to no metaverse object", cs->anchor);
	return mv;
}

static bool same_id(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return a.len == 8 && b.len == 8 && memcmp(a.data, b.data, 8) == 0;
}

static size_t count_prefix(fx_t *f, int cf, const char *prefix, size_t plen)
{
	loom_iter_t *it = loom_iter_new(f->e.store, cf);
	size_t n = 0;
	if (plen)
		loom_iter_seek(it, prefix, plen);
	else
		loom_iter_seek_first(it);
	for (; loom_iter_valid(it); loom_iter_next(it)) {
		size_t klen;
		const char *k = loom_iter_key(it, &klen);
		if (plen && (klen < plen || memcmp(k, prefix, plen) != 0))
			break;
		n++;
	}
	loom_iter_destroy(&it);
	return n;
}

static size_t count_cs(fx_t *f, const char *agent)
{
	return count_prefix(f, CF_CS, agent, strlen(agent) + 1);
}

static size_t count_cf(fx_t *f, int cf)
{
	return count_prefix(f, cf, NULL, 0);
}

static bool has_mark(fx_t *f, int cf, const char *agent, const char *anchor)
{
	loom_buf_t k = LOOM_BUF_INIT;
	eng_key_agent_anchor(&k, agent, anchor);
	void *v = NULL;
	size_t len;
	const char *err;
	int rc = loom_store_get(f->e.store, cf, k.data, k.len, &v, &len, &err);
	free(v);
	loom_buf_release(&k);
	if (rc < 0)
		fail_msg("%s", err);
	return rc == 1;
}

/* The anchor of mv's connector in agent, or NULL. */
static const char *connector(fx_t *f, const Loom__MvObject *mv, const char *agent)
{
	char **agents, **anchors;
	size_t n = eng_links(&f->e, mv->id.data, &agents, &anchors);
	const char *found = NULL;
	for (size_t i = 0; i < n && !found; i++)
		if (strcmp(agents[i], agent) == 0)
			found = keep_str(f, loom_strdup(anchors[i]));
	eng_strv_free(agents, n);
	eng_strv_free(anchors, n);
	return found;
}

static size_t nlinks(fx_t *f, const Loom__MvObject *mv)
{
	char **agents, **anchors;
	size_t n = eng_links(&f->e, mv->id.data, &agents, &anchors);
	eng_strv_free(agents, n);
	eng_strv_free(anchors, n);
	return n;
}

static const Loom__MvAttr *mv_attr(const Loom__MvObject *mv, const char *name)
{
	for (size_t i = 0; i < mv->n_attrs; i++)
		if (strcasecmp(mv->attrs[i]->name, name) == 0)
			return mv->attrs[i];
	return NULL;
}

/* "v1|v2", or ABSENT. */
static const char *mvval(fx_t *f, const Loom__MvObject *mv, const char *name)
{
	const Loom__MvAttr *a = mv_attr(mv, name);
	if (a == NULL)
		return ABSENT;
	loom_buf_t b = LOOM_BUF_INIT;
	values_text(&b, a->values, a->n_values);
	return keep_str(f, loom_buf_steal(&b));
}

static const char *csval(fx_t *f, const Loom__CsObject *cs, const char *name)
{
	const Loom__Attr *a = loom_attr_find(cs->attrs, cs->n_attrs, name);
	if (a == NULL)
		return ABSENT;
	loom_buf_t b = LOOM_BUF_INIT;
	values_text(&b, a->values, a->n_values);
	return keep_str(f, loom_buf_steal(&b));
}

#define assert_state(cs, want) assert_string_equal(eng_state_name((cs)->state), eng_state_name(want))

/* ---- join resolution ------------------------------------------------------------ */

enum { W_JOINED, W_AMBIGUOUS, W_PROJECTED, W_DISCONNECTOR };

typedef struct join_case {
	const char *label;
	const char *hr[4];             /* hr objects h1.. synced first: each projects */
	const char *taken[2];          /* badge objects t1.. synced next: each must join */
	const char *badge;             /* the object synchronized: badge b1 */
	bool project;                  /* badge-in projects */
	int want;                      /* W_* */
	int want_hr;                   /* W_JOINED: joins the mv of h<want_hr> */
} join_case_t;

static const join_case_t join_cases[] = {
	{ "join: one candidate joins",
	  { ADA, "employeeId=1002;givenName=Grace;sn=Hopper" }, { NULL }, "empId=1002", false, W_JOINED, 2 },
	{ "join: two candidates are an ambiguous join, never a guess nor a projection",
	  { ADA, "employeeId=1001;givenName=Alan;sn=Turing" }, { NULL }, "empId=1001", true, W_AMBIGUOUS, 0 },
	{ "join: an ambiguous first group does not fall to the second",
	  { ADA, "employeeId=1001;givenName=Alan;sn=Turing" }, { NULL }, "empId=1001;givenName=Ada;sn=Lovelace",
	  false, W_AMBIGUOUS, 0 },
	{ "join: a first group with no candidate falls to the second",
	  { ADA, "employeeId=1002;givenName=Grace;sn=Hopper" }, { NULL }, "empId=9999;givenName=Grace;sn=Hopper",
	  false, W_JOINED, 2 },
	{ "join: a missing join attribute gives no candidate; the next group decides",
	  { ADA }, { NULL }, "givenName=Ada;sn=Lovelace", false, W_JOINED, 1 },
	{ "join: AND inside a group intersects the candidates",
	  { "employeeId=1002;givenName=Alan;sn=Lovelace", "employeeId=1003;givenName=Ada;sn=Turing", ADA },
	  { NULL }, "givenName=Ada;sn=Lovelace", false, W_JOINED, 3 },
	{ "join: AND inside a group with no common candidate joins nothing",
	  { "employeeId=1002;givenName=Alan;sn=Lovelace", "employeeId=1003;givenName=Ada;sn=Turing" },
	  { NULL }, "givenName=Ada;sn=Lovelace", false, W_DISCONNECTOR, 0 },
	{ "join: one of several values of a join attribute matches",
	  { ADA }, { NULL }, "empId=0001|1001", false, W_JOINED, 1 },
	{ "join: string values compare case-insensitively",
	  { "employeeId=AB-1;givenName=Ada;sn=Lovelace" }, { NULL }, "empId=ab-1", false, W_JOINED, 1 },
	{ "join: an mv object joined to another object of the agent is no candidate",
	  { ADA }, { "empId=1001" }, "empId=1001", false, W_DISCONNECTOR, 0 },
	{ "join: of two candidates the taken one is left out, the other joins",
	  { ADA, "employeeId=1001;givenName=Alan;sn=Turing" }, { "givenName=Ada;sn=Lovelace" }, "empId=1001",
	  false, W_JOINED, 2 },
	{ "join: nothing joins and the rule projects: a new mv object",
	  { ADA }, { NULL }, "empId=9999", true, W_PROJECTED, 0 },
	{ "join: nothing joins and no rule projects: a disconnector",
	  { ADA }, { NULL }, "empId=9999", false, W_DISCONNECTOR, 0 },
};

static void t_join(void **state)
{
	fx_t *f = *state;
	const join_case_t *c = f->tcase;
	cfg_t cfg = { .badge_project = c->project };
	fx_open(f, &cfg);
	char anchor[16];
	size_t nhr = 0;
	for (; nhr < 4 && c->hr[nhr]; nhr++) {
		snprintf(anchor, sizeof anchor, "h%zu", nhr + 1);
		imp(f, "hr", anchor, c->hr[nhr]);
		assert_state(cs_must(f, "hr", anchor), LOOM__CS_OBJECT__STATE__JOINED);
	}
	for (size_t i = 0; i < 2 && c->taken[i]; i++) {
		snprintf(anchor, sizeof anchor, "t%zu", i + 1);
		imp(f, "badge", anchor, c->taken[i]);
		assert_state(cs_must(f, "badge", anchor), LOOM__CS_OBJECT__STATE__JOINED);
	}
	assert_int_equal(count_cf(f, CF_MV), nhr);
	run_reset(f);

	imp(f, "badge", "b1", c->badge);

	Loom__CsObject *b = cs_must(f, "badge", "b1");
	assert_false(has_mark(f, CF_DELTA, "badge", "b1"));
	switch (c->want) {
	case W_JOINED: {
		snprintf(anchor, sizeof anchor, "h%d", c->want_hr);
		Loom__CsObject *h = cs_must(f, "hr", anchor);
		assert_state(b, LOOM__CS_OBJECT__STATE__JOINED);
		assert_true(same_id(b->mv_id, h->mv_id));
		assert_int_equal(counter(f, "joined"), 1);
		assert_int_equal(counter(f, "projected"), 0);
		assert_int_equal(f->e.run->error_count, 0);
		assert_int_equal(count_cf(f, CF_MV), nhr);
		Loom__MvObject *mv = mv_must(f, b);
		assert_string_equal(connector(f, mv, "badge"), "b1");
		assert_string_equal(connector(f, mv, "hr"), anchor);
		break;
	}
	case W_AMBIGUOUS:
		assert_state(b, LOOM__CS_OBJECT__STATE__NORMAL);
		assert_int_equal(b->mv_id.len, 0);
		assert_string_equal(b->last_error, "ambiguous-join");
		assert_int_equal(counter(f, "errors"), 1);
		assert_int_equal(counter(f, "joined"), 0);
		assert_int_equal(counter(f, "projected"), 0);
		assert_string_equal(run_error(f, 0)->code, "ambiguous-join");
		assert_string_equal(run_error(f, 0)->anchor, "b1");
		assert_non_null(strstr(run_error(f, 0)->message, "matches 2 metaverse objects"));
		assert_int_equal(count_cf(f, CF_MV), nhr);
		/* The import is applied all the same: the hologram holds it. */
		assert_null(b->pending_import);
		assert_string_equal(csval(f, b, "empId"), "1001");
		break;
	case W_PROJECTED: {
		assert_state(b, LOOM__CS_OBJECT__STATE__JOINED);
		assert_int_equal(counter(f, "projected"), 1);
		assert_int_equal(counter(f, "joined"), 0);
		assert_int_equal(count_cf(f, CF_MV), nhr + 1);
		Loom__MvObject *mv = mv_must(f, b);
		assert_string_equal(mv->projected_by, "badge");
		assert_string_equal(mv->object_type, "person");
		assert_int_equal(nlinks(f, mv), 1);
		break;
	}
	case W_DISCONNECTOR:
		assert_state(b, LOOM__CS_OBJECT__STATE__NORMAL);
		assert_int_equal(b->mv_id.len, 0);
		assert_int_equal(counter(f, "disconnectors"), 1);
		assert_int_equal(counter(f, "joined"), 0);
		assert_int_equal(f->e.run->error_count, 0);
		assert_int_equal(count_cf(f, CF_MV), nhr);
		break;
	}
}

/* ---- inbound precedence ------------------------------------------------------------ */

typedef struct prec_case {
	const char *label;
	int legacy_prec;               /* hr is 10, badge 5 */
	const char *hr, *badge, *legacy; /* h1, b1, l1 synced in this order (NULL: none) */
	const char *who, *change;      /* then this agent's object is updated (NULL: no update) */
	const char *want;              /* the mv title */
	const char *want_agent;        /* and where it came from */
	const char *want_anchor;
} prec_case_t;

static const prec_case_t prec_cases[] = {
	{ "precedence: the lower number wins over the object synchronized last",
	  20, ADA, "empId=1001;title=Boss", NULL, NULL, NULL, "Boss", "badge", "b1" },
	{ "precedence: the winner keeps the value when the loser changes",
	  20, ADA, "empId=1001;title=Boss", NULL, "hr", "title=Senior Analyst", "Boss", "badge", "b1" },
	{ "precedence: a null from the winner falls through to the next source",
	  20, ADA, "empId=1001", NULL, NULL, NULL, "Analyst", "hr", "h1" },
	{ "precedence: the winner losing its value falls back to the next source",
	  20, ADA, "empId=1001;title=Boss", NULL, "badge", "title=", "Analyst", "hr", "h1" },
	{ "precedence: three ranks, the first two null",
	  20, "employeeId=1001;givenName=Ada;sn=Lovelace", "empId=1001", "empId=1001;title=Lead", NULL, NULL,
	  "Lead", "legacy", "l1" },
	{ "precedence: equal numbers, the object synchronized last wins",
	  10, ADA, NULL, "empId=1001;title=Lead", NULL, NULL, "Lead", "legacy", "l1" },
	{ "precedence: equal numbers, a later change of the other source wins back",
	  10, ADA, NULL, "empId=1001;title=Lead", "hr", "title=Chief", "Chief", "hr", "h1" },
	{ "precedence: equal numbers, a null from the object synchronized falls to the other",
	  10, ADA, NULL, "empId=1001", NULL, NULL, "Analyst", "hr", "h1" },
	{ "precedence: no source has a value, the attribute goes",
	  20, ADA, NULL, NULL, "hr", "title=", ABSENT, NULL, NULL },
};

static void t_precedence(void **state)
{
	fx_t *f = *state;
	const prec_case_t *c = f->tcase;
	cfg_t cfg = { .legacy_prec = c->legacy_prec };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", c->hr);
	if (c->badge)
		imp(f, "badge", "b1", c->badge);
	if (c->legacy)
		imp(f, "legacy", "l1", c->legacy);
	if (c->who)
		upd(f, c->who, strcmp(c->who, "hr") == 0 ? "h1" : strcmp(c->who, "badge") == 0 ? "b1" : "l1", c->change);
	Loom__CsObject *h = cs_must(f, "hr", "h1");
	if (c->badge)
		assert_true(same_id(cs_must(f, "badge", "b1")->mv_id, h->mv_id));
	if (c->legacy)
		assert_true(same_id(cs_must(f, "legacy", "l1")->mv_id, h->mv_id));
	Loom__MvObject *mv = mv_must(f, h);
	assert_string_equal(mvval(f, mv, "title"), c->want);
	if (c->want_agent) {
		const Loom__MvAttr *a = mv_attr(mv, "title");
		assert_string_equal(a->agent, c->want_agent);
		assert_string_equal(a->anchor, c->want_anchor);
	}
	/* Attributes only hr feeds are hr's whatever happened to title. */
	assert_string_equal(mvval(f, mv, "sn"), "Lovelace");
	assert_string_equal(mv_attr(mv, "sn")->agent, "hr");
	assert_int_equal(f->e.run->error_count, 0);
}

/* ---- connector filter --------------------------------------------------------------- */

static void t_filter_new_object(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA ";employeeType=test");
	Loom__CsObject *h = cs_must(f, "hr", "h1");
	assert_state(h, LOOM__CS_OBJECT__STATE__FILTERED);
	assert_int_equal(h->mv_id.len, 0);
	assert_int_equal(counter(f, "filtered"), 1);
	assert_int_equal(count_cf(f, CF_MV), 0);
	assert_int_equal(count_cs(f, "directory"), 0);
	assert_string_equal(csval(f, h, "employeeType"), "test");
}

static void t_filter_disconnects_joined(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { 0 };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	imp(f, "badge", "b1", "empId=1001;title=Boss");
	run_reset(f);
	upd(f, "hr", "h1", "employeeType=test");
	Loom__CsObject *h = cs_must(f, "hr", "h1");
	assert_state(h, LOOM__CS_OBJECT__STATE__FILTERED);
	assert_int_equal(h->mv_id.len, 0);
	assert_int_equal(counter(f, "filtered-connectors-removed"), 1);
	assert_int_equal(counter(f, "filtered"), 1);
	/* The badge still holds the mv object (last-connector); what hr gave is gone. */
	Loom__CsObject *b = cs_must(f, "badge", "b1");
	assert_state(b, LOOM__CS_OBJECT__STATE__JOINED);
	Loom__MvObject *mv = mv_must(f, b);
	assert_int_equal(nlinks(f, mv), 1);
	assert_null(connector(f, mv, "hr"));
	assert_string_equal(mvval(f, mv, "title"), "Boss");
	assert_string_equal(mvval(f, mv, "sn"), ABSENT);
	assert_string_equal(mvval(f, mv, "employeeId"), ABSENT);
}

/* ---- metaverse deletion rules ------------------------------------------------------------ */

enum { DIR_NONE, DIR_REMOVED, DIR_DELETE, DIR_NORMAL, DIR_EXPLICIT, DIR_JOINED };

typedef struct del_case {
	const char *label;
	const char *mvdel;             /* mv_deletion when: (NULL: no rule, last-connector) */
	bool directory;                /* to-directory provisions ADA_DN */
	const char *deprov;            /* its deprovision action */
	bool exported;                 /* the provisioned object was exported and confirmed */
	bool badge;                    /* badge b1 joins too */
	const char *gone;              /* "hr" (h1) or "badge" (b1) is deleted */
	bool want_mv;                  /* the mv object stays */
	const char *want_title;        /* then its title */
	const char *want_sn;           /* and its sn */
	int want_badge;                /* state of b1 afterwards (when badge stays) */
	int want_dir;                  /* DIR_*: the directory object afterwards */
} del_case_t;

static const del_case_t del_cases[] = {
	{ "mv deletion: last-connector, another connector remains: the mv stays, what the deleted gave goes",
	  "last-connector", false, NULL, false, true, "hr", true, "Boss", ABSENT, LOOM__CS_OBJECT__STATE__JOINED, DIR_NONE },
	{ "mv deletion: last-connector, the winning source of title goes: the title falls back",
	  NULL, false, NULL, false, true, "badge", true, "Analyst", "Lovelace", 0, DIR_NONE },
	{ "mv deletion: last-connector, the last connector goes: the mv goes",
	  "last-connector", false, NULL, false, false, "hr", false, NULL, NULL, 0, DIR_NONE },
	{ "mv deletion: agent-disconnected, another agent's connector goes: the mv stays",
	  "agent-disconnected", true, "delete", true, true, "badge", true, "Analyst", "Lovelace", 0, DIR_JOINED },
	{ "mv deletion: agent-disconnected, its agent goes: the mv goes, a connector without outbound rule is disconnected",
	  "agent-disconnected", false, NULL, false, true, "hr", false, NULL, NULL, LOOM__CS_OBJECT__STATE__NORMAL, DIR_NONE },
	{ "mv deletion: agent-disconnected, outbound delete: a pending export DELETE",
	  "agent-disconnected", true, "delete", true, true, "hr", false, NULL, NULL, LOOM__CS_OBJECT__STATE__NORMAL, DIR_DELETE },
	{ "mv deletion: agent-disconnected, outbound disconnect: a normal disconnector",
	  "agent-disconnected", true, "disconnect", true, false, "hr", false, NULL, NULL, 0, DIR_NORMAL },
	{ "mv deletion: agent-disconnected, outbound explicit-disconnect: an explicit disconnector",
	  "agent-disconnected", true, "explicit-disconnect", true, false, "hr", false, NULL, NULL, 0, DIR_EXPLICIT },
	{ "mv deletion: agent-disconnected, a never-exported placeholder is removed outright (delete)",
	  "agent-disconnected", true, "delete", false, false, "hr", false, NULL, NULL, 0, DIR_REMOVED },
	{ "mv deletion: agent-disconnected, a never-exported placeholder is removed outright (disconnect)",
	  "agent-disconnected", true, "disconnect", false, false, "hr", false, NULL, NULL, 0, DIR_REMOVED },
};

/* The directory object ADA_DN is as want says (after its mv object left it or went). */
static void check_dir(fx_t *f, int want, const Loom__MvObject *mv)
{
	if (want == DIR_NONE)
		return;
	Loom__CsObject *d = cs_get(f, "directory", ADA_DN);
	if (want == DIR_REMOVED) {
		assert_null(d);
		assert_false(has_mark(f, CF_EXPORT, "directory", ADA_DN));
		char *a = eng_csdn_get(&f->e, "directory", ADA_DN);
		assert_null(a);
		free(a);
		assert_int_equal(count_cs(f, "directory"), 0);
		return;
	}
	assert_non_null(d);
	if (want == DIR_JOINED) {
		assert_state(d, LOOM__CS_OBJECT__STATE__JOINED);
		assert_true(mv && same_id(d->mv_id, mv->id));
		return;
	}
	assert_int_equal(d->mv_id.len, 0);
	switch (want) {
	case DIR_DELETE:
		assert_state(d, LOOM__CS_OBJECT__STATE__NORMAL);
		assert_string_equal(export_text(f, d->pending_export), "DELETE");
		assert_true(has_mark(f, CF_EXPORT, "directory", ADA_DN));
		break;
	case DIR_NORMAL:
		assert_state(d, LOOM__CS_OBJECT__STATE__NORMAL);
		assert_string_equal(export_text(f, d->pending_export), NONE);
		assert_false(has_mark(f, CF_EXPORT, "directory", ADA_DN));
		break;
	case DIR_EXPLICIT:
		assert_state(d, LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR);
		assert_string_equal(export_text(f, d->pending_export), NONE);
		break;
	}
}

static void t_deletion(void **state)
{
	fx_t *f = *state;
	const del_case_t *c = f->tcase;
	cfg_t cfg = { .directory = c->directory, .deprov = c->deprov, .mvdel = c->mvdel };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	if (c->badge)
		imp(f, "badge", "b1", "empId=1001;title=Boss");
	if (c->directory) {
		assert_state(cs_must(f, "directory", ADA_DN), LOOM__CS_OBJECT__STATE__PLACEHOLDER);
		if (c->exported)
			confirm_export(f, "directory", ADA_DN);
	}
	const char *gone = strcmp(c->gone, "hr") == 0 ? "h1" : "b1";
	run_reset(f);

	del(f, c->gone, gone);

	assert_null(cs_get(f, c->gone, gone));
	assert_false(has_mark(f, CF_DELTA, c->gone, gone));
	assert_int_equal(counter(f, "deleted-connectors"), 1);
	assert_int_equal(f->e.run->error_count, 0);
	const char *stays = strcmp(c->gone, "hr") == 0 ? (c->badge ? "b1" : NULL) : "h1";
	const char *stays_agent = strcmp(c->gone, "hr") == 0 ? "badge" : "hr";
	Loom__MvObject *mv = NULL;
	if (c->want_mv) {
		assert_int_equal(count_cf(f, CF_MV), 1);
		assert_int_equal(counter(f, "mv-deleted"), 0);
		mv = mv_must(f, cs_must(f, stays_agent, stays));
		assert_null(connector(f, mv, c->gone));
		assert_string_equal(mvval(f, mv, "title"), c->want_title);
		assert_string_equal(mvval(f, mv, "sn"), c->want_sn);
	} else {
		assert_int_equal(count_cf(f, CF_MV), 0);
		assert_int_equal(counter(f, "mv-deleted"), 1);
		/* Its index entries and links go with it. */
		assert_int_equal(count_cf(f, CF_MVIDX), 0);
		assert_int_equal(count_cf(f, CF_LINK), 0);
	}
	if (c->badge && strcmp(c->gone, "badge") != 0) {
		Loom__CsObject *b = cs_must(f, "badge", "b1");
		assert_state(b, c->want_badge);
		if (c->want_mv)
			assert_true(same_id(b->mv_id, mv->id));
		else
			assert_int_equal(b->mv_id.len, 0);
	}
	check_dir(f, c->want_dir, mv);
	/* A deleted mv object deprovisions every other connector. */
	size_t others = (c->badge && strcmp(c->gone, "badge") != 0) + (c->directory ? 1 : 0);
	assert_int_equal(counter(f, "deprovisioned"), c->want_mv ? 0 : others);
}

/* ---- provisioning ------------------------------------------------------------------------- */

static void t_provision_placeholder(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	Loom__CsObject *h = cs_must(f, "hr", "h1");
	Loom__MvObject *mv = mv_must(f, h);
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_state(d, LOOM__CS_OBJECT__STATE__PLACEHOLDER);
	assert_string_equal(d->dn, ADA_DN);
	assert_string_equal(d->object_type, "inetOrgPerson");
	assert_string_equal(d->provisioned_by, "to-directory");
	assert_true(same_id(d->mv_id, mv->id));
	assert_string_equal(connector(f, mv, "directory"), ADA_DN);
	/* The add carries every flow, the initial ones included, in flow order. */
	assert_string_equal(export_text(f, d->pending_export), ADA_ADD);
	assert_true(d->pending_export->change_id > 0);
	assert_int_equal(d->pending_export->run_id, 7);
	assert_int_equal(d->n_attrs, 0);
	assert_true(has_mark(f, CF_EXPORT, "directory", ADA_DN));
	char *a = eng_csdn_get(&f->e, "directory", "UID=ALovelace,ou=people,dc=example,dc=com");
	assert_non_null(a);
	assert_string_equal(a, ADA_DN);
	free(a);
	assert_int_equal(counter(f, "provisioned"), 1);
	assert_int_equal(counter(f, "projected"), 1);
	/* The provisioned object is a placeholder: syncing it does nothing. */
	run_reset(f);
	sync_obj(f, "directory", ADA_DN);
	assert_int_equal(counter(f, "placeholders"), 1);
	assert_state(cs_must(f, "directory", ADA_DN), LOOM__CS_OBJECT__STATE__PLACEHOLDER);
}

static void t_provision_anchor_not_dn(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true, .dir_anchor = "uid" };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	Loom__MvObject *mv = mv_must(f, cs_must(f, "hr", "h1"));
	const char *anchor = connector(f, mv, "directory");
	assert_non_null(anchor);
	Loom__CsObject *d = cs_must(f, "directory", anchor);
	char *want = loom_sprintf("~%llu", (unsigned long long)d->pending_export->change_id);
	assert_string_equal(anchor, want);
	free(want);
	assert_string_equal(d->dn, ADA_DN);
	assert_true(has_mark(f, CF_EXPORT, "directory", anchor));
}

static void t_provision_out_of_scope(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA ";employeeType=contractor");
	Loom__MvObject *mv = mv_must(f, cs_must(f, "hr", "h1"));
	assert_string_equal(mvval(f, mv, "employeeType"), "contractor");
	assert_int_equal(count_cs(f, "directory"), 0);
	assert_int_equal(count_cf(f, CF_EXPORT), 0);
	assert_int_equal(counter(f, "provisioned"), 0);
	assert_int_equal(nlinks(f, mv), 1);
	/* Coming into scope provisions it. */
	run_reset(f);
	upd(f, "hr", "h1", "employeeType=employee");
	assert_int_equal(counter(f, "provisioned"), 1);
	assert_state(cs_must(f, "directory", ADA_DN), LOOM__CS_OBJECT__STATE__PLACEHOLDER);
}

typedef struct scope_case {
	const char *label;
	const char *deprov;            /* to-directory's deprovision */
	bool exported;                 /* the add went out and came back */
	int want_dir;                  /* DIR_*: the directory object out of scope */
	const char *want_back;         /* its pending export back in scope (NULL: not checked) */
	int want_back_state;           /* and its state */
} scope_case_t;

static const scope_case_t scope_cases[] = {
	{ "scope: leaving it with delete, after export: a pending export DELETE; back in scope: cancelled",
	  "delete", true, DIR_DELETE, NONE, LOOM__CS_OBJECT__STATE__JOINED },
	{ "scope: leaving it with disconnect, after export: a normal disconnector; back in scope: connected again",
	  "disconnect", true, DIR_NORMAL, NONE, LOOM__CS_OBJECT__STATE__JOINED },
	{ "scope: leaving it with explicit-disconnect, after export: an explicit disconnector", "explicit-disconnect",
	  true, DIR_EXPLICIT, NULL, 0 },
	{ "scope: leaving it before export removes the placeholder (delete); back in scope: a new one", "delete",
	  false, DIR_REMOVED, ADA_ADD, LOOM__CS_OBJECT__STATE__PLACEHOLDER },
	{ "scope: leaving it before export removes the placeholder (disconnect)", "disconnect", false, DIR_REMOVED,
	  ADA_ADD, LOOM__CS_OBJECT__STATE__PLACEHOLDER },
	{ "scope: leaving it before export removes the placeholder (explicit-disconnect)", "explicit-disconnect",
	  false, DIR_REMOVED, ADA_ADD, LOOM__CS_OBJECT__STATE__PLACEHOLDER },
};

static void t_scope_leave(void **state)
{
	fx_t *f = *state;
	const scope_case_t *c = f->tcase;
	cfg_t cfg = { .directory = true, .deprov = c->deprov };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	if (c->exported)
		confirm_export(f, "directory", ADA_DN);
	run_reset(f);
	upd(f, "hr", "h1", "employeeType=contractor");
	assert_int_equal(counter(f, "deprovisioned"), 1);
	assert_int_equal(f->e.run->error_count, 0);
	Loom__CsObject *h = cs_must(f, "hr", "h1");
	assert_state(h, LOOM__CS_OBJECT__STATE__JOINED);
	Loom__MvObject *mv = mv_must(f, h);
	assert_int_equal(nlinks(f, mv), 1);
	assert_null(connector(f, mv, "directory"));
	check_dir(f, c->want_dir, mv);
	if (c->want_back == NULL)
		return;
	run_reset(f);
	upd(f, "hr", "h1", "employeeType=employee");
	assert_int_equal(f->e.run->error_count, 0);
	assert_int_equal(count_cs(f, "directory"), 1);
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_state(d, c->want_back_state);
	assert_true(same_id(d->mv_id, mv->id));
	assert_string_equal(connector(f, mv, "directory"), ADA_DN);
	assert_string_equal(export_text(f, d->pending_export), c->want_back);
	assert_int_equal(has_mark(f, CF_EXPORT, "directory", ADA_DN), strcmp(c->want_back, NONE) != 0);
	assert_int_equal(counter(f, c->exported ? "provisioning-joined-existing" : "provisioned"), 1);
}

static void t_provision_connects_existing(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	/* The directory already holds Ada: imported, nothing joins it. */
	imp(f, "directory", ADA_DN, "objectClass=top|person|inetOrgPerson;uid=alovelace;cn=A. Lovelace;sn=Lovelace");
	assert_state(cs_must(f, "directory", ADA_DN), LOOM__CS_OBJECT__STATE__NORMAL);
	run_reset(f);
	imp(f, "hr", "h1", ADA);
	assert_int_equal(count_cs(f, "directory"), 1);
	assert_int_equal(counter(f, "provisioned"), 0);
	assert_int_equal(counter(f, "provisioning-joined-existing"), 1);
	Loom__MvObject *mv = mv_must(f, cs_must(f, "hr", "h1"));
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_state(d, LOOM__CS_OBJECT__STATE__JOINED);
	assert_true(same_id(d->mv_id, mv->id));
	assert_string_equal(connector(f, mv, "directory"), ADA_DN);
	/* Only what differs goes out; initial flows are not for existing objects. */
	assert_string_equal(export_text(f, d->pending_export), "UPDATE cn=Ada Lovelace;title=Analyst");
	assert_true(has_mark(f, CF_EXPORT, "directory", ADA_DN));
}

static void t_provision_dn_conflict(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	run_reset(f);
	/* Anna Lovelace gets the same uid, so the same DN. */
	imp(f, "hr", "h2", "employeeId=1002;givenName=Anna;sn=Lovelace");
	assert_int_equal(count_cs(f, "directory"), 1);
	assert_int_equal(counter(f, "errors"), 1);
	assert_string_equal(run_error(f, 0)->code, "provisioning-conflict");
	assert_string_equal(run_error(f, 0)->anchor, "h2");
	/* The rest of the object is synchronized. */
	Loom__MvObject *mv2 = mv_must(f, cs_must(f, "hr", "h2"));
	assert_string_equal(mvval(f, mv2, "givenName"), "Anna");
	assert_null(connector(f, mv2, "directory"));
	Loom__MvObject *mv1 = mv_must(f, cs_must(f, "hr", "h1"));
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_true(same_id(d->mv_id, mv1->id));
	assert_string_equal(export_text(f, d->pending_export), ADA_ADD);
}

static void t_provision_merges_into_pending_add(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA);
	run_reset(f);
	upd(f, "hr", "h1", "title=Chief");
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_state(d, LOOM__CS_OBJECT__STATE__PLACEHOLDER);
	assert_string_equal(export_text(f, d->pending_export),
	    "ADD objectClass=top|person|inetOrgPerson;uid=alovelace;cn=Ada Lovelace;sn=Lovelace;title=Chief");
	assert_int_equal(count_cs(f, "directory"), 1);
	assert_int_equal(counter(f, "provisioned"), 0);
	assert_true(has_mark(f, CF_EXPORT, "directory", ADA_DN));
}

/* A failed object writes nothing, but the ids it took stay taken: after a
 * restart (sequences read back from the store) no id is handed out twice. */
static void t_provision_dn_error(void **state)
{
	fx_t *f = *state;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", "employeeId=1001;givenName=Ada"); /* no sn: no uid, no DN */
	assert_int_equal(counter(f, "errors"), 1);
	assert_string_equal(run_error(f, 0)->code, "provisioning-error");
	assert_non_null(strstr(run_error(f, 0)->message, "to-directory"));
	Loom__CsObject *h1 = cs_must(f, "hr", "h1");
	assert_non_null(h1->pending_import);
	assert_int_equal(h1->pending_import->kind, LOOM__PENDING_IMPORT__KIND__ADD);
	assert_int_equal(h1->mv_id.len, 0);
	assert_true(has_mark(f, CF_DELTA, "hr", "h1"));
	assert_int_equal(count_cf(f, CF_MV), 0);
	assert_int_equal(count_cf(f, CF_LINK), 0);
	assert_int_equal(count_cs(f, "directory"), 0);

	imp(f, "hr", "h2", "employeeId=1002;givenName=Grace;sn=Hopper");
	imp(f, "hr", "h3", "employeeId=1003;givenName=Alan;sn=Turing");
	assert_int_equal(count_cf(f, CF_MV), 2);
	/* A restart: the sequences start from what the store says is taken. */
	f->e.seq_mv = f->e.lim_mv = eng_meta_get_u64(&f->e, "seq:mv");
	f->e.seq_change = f->e.lim_change = eng_meta_get_u64(&f->e, "seq:change");
	imp(f, "hr", "h4", "employeeId=1004;givenName=Dorothy;sn=Vaughan");
	imp(f, "hr", "h5", "employeeId=1005;givenName=Katherine;sn=Johnson");
	assert_int_equal(f->e.run->error_count, 1);
	/* Every object has its own mv object, none overwritten. */
	assert_int_equal(count_cf(f, CF_MV), 4);
	static const char *const ids[] = { "h2", "h3", "h4", "h5" };
	Loom__CsObject *h[4];
	for (size_t i = 0; i < 4; i++) {
		h[i] = cs_must(f, "hr", ids[i]);
		char want[8];
		snprintf(want, sizeof want, "100%zu", i + 2);
		assert_string_equal(mvval(f, mv_must(f, h[i]), "employeeId"), want);
		for (size_t k = 0; k < i; k++)
			assert_false(same_id(h[k]->mv_id, h[i]->mv_id));
	}
	assert_int_equal(count_cs(f, "directory"), 4);
}

/* ---- outbound flows --------------------------------------------------------------------------- */

typedef struct flow_case {
	const char *label;
	const char *changes[2];        /* hr updates of h1, synchronized one after the other */
	const char *want;              /* the directory object's pending export */
} flow_case_t;

static const flow_case_t flow_cases[] = {
	{ "outbound: a changed attribute is an UPDATE of that attribute only", { "title=Chief" }, "UPDATE title=Chief" },
	{ "outbound: initial flows are not sent again", { "sn=Byron" }, "UPDATE cn=Ada Byron;sn=Byron" },
	{ "outbound: a removed value is a REPLACE without values", { "title=" }, "UPDATE title=" },
	{ "outbound: a second change replaces the first", { "title=Chief", "title=Boss" }, "UPDATE title=Boss" },
	{ "outbound: a change back to the system's value cancels the pending change",
	  { "title=Chief", "title=Analyst" }, NONE },
	{ "outbound: a change back of one attribute keeps the others",
	  { "title=Chief;sn=Byron", "title=Analyst" }, "UPDATE cn=Ada Byron;sn=Byron" },
	{ "outbound: a change that flows nowhere exports nothing", { "employeeType=staff" }, NONE },
};

static void t_outbound(void **state)
{
	fx_t *f = *state;
	const flow_case_t *c = f->tcase;
	cfg_t cfg = { .directory = true };
	fx_open(f, &cfg);
	imp(f, "hr", "h1", ADA ";employeeType=employee");
	confirm_export(f, "directory", ADA_DN);
	run_reset(f);
	for (size_t i = 0; i < 2 && c->changes[i]; i++)
		upd(f, "hr", "h1", c->changes[i]);
	Loom__CsObject *d = cs_must(f, "directory", ADA_DN);
	assert_state(d, LOOM__CS_OBJECT__STATE__JOINED);
	assert_string_equal(export_text(f, d->pending_export), c->want);
	assert_int_equal(has_mark(f, CF_EXPORT, "directory", ADA_DN), strcmp(c->want, NONE) != 0);
	/* The hologram is what the system has until the export is confirmed. */
	assert_string_equal(csval(f, d, "title"), "Analyst");
	assert_int_equal(f->e.run->error_count, 0);
	if (strcmp(c->want, NONE) != 0 && c->changes[1] == NULL)
		assert_int_equal(counter(f, "export-flows"), 1);
}

/* ---- state transitions ------------------------------------------------------------------------ */

#define GONE (-1)

typedef struct step {
	Loom__PendingImport__Kind kind; /* NONE ends the steps */
	const char *spec;
} step_t;

typedef struct state_case {
	const char *label;
	Loom__CsObject__State from;    /* state h1 is staged in */
	const char *hologram;          /* its attributes already synchronized (NULL: a new object) */
	bool dangling;                 /* joined to an mv object that no longer exists */
	step_t steps[3];               /* imports, each synchronized */
	int want;                      /* state afterwards, or GONE */
	bool want_mv;                  /* joined to an mv object */
	const char *want_counter;      /* counted by the last step */
} state_case_t;

#define ADD_(s) { LOOM__PENDING_IMPORT__KIND__ADD, s }
#define UPD_(s) { LOOM__PENDING_IMPORT__KIND__UPDATE, s }
#define DEL_ { LOOM__PENDING_IMPORT__KIND__DELETE, NULL }

static const state_case_t state_cases[] = {
	{ "state: NORMAL -> JOINED by projection", LOOM__CS_OBJECT__STATE__NORMAL, NULL, false,
	  { ADD_(ADA) }, LOOM__CS_OBJECT__STATE__JOINED, true, "projected" },
	{ "state: NORMAL -> FILTERED when the filter is true", LOOM__CS_OBJECT__STATE__NORMAL, NULL, false,
	  { ADD_(ADA ";employeeType=test") }, LOOM__CS_OBJECT__STATE__FILTERED, false, "filtered" },
	{ "state: FILTERED stays FILTERED while the filter is true", LOOM__CS_OBJECT__STATE__FILTERED,
	  ADA ";employeeType=test", false, { UPD_("title=Chief") }, LOOM__CS_OBJECT__STATE__FILTERED, false, "filtered" },
	{ "state: FILTERED -> NORMAL -> JOINED when the filter turns false", LOOM__CS_OBJECT__STATE__FILTERED,
	  ADA ";employeeType=test", false, { UPD_("employeeType=employee") }, LOOM__CS_OBJECT__STATE__JOINED, true,
	  "projected" },
	{ "state: JOINED -> FILTERED when the filter turns true (disconnected)", LOOM__CS_OBJECT__STATE__NORMAL, NULL,
	  false, { ADD_(ADA), UPD_("employeeType=test") }, LOOM__CS_OBJECT__STATE__FILTERED, false,
	  "filtered-connectors-removed" },
	{ "state: JOINED stays JOINED on an update", LOOM__CS_OBJECT__STATE__NORMAL, NULL, false,
	  { ADD_(ADA), UPD_("title=Chief") }, LOOM__CS_OBJECT__STATE__JOINED, true, "connectors-with-flow-updates" },
	{ "state: JOINED to a vanished mv object is a disconnector again, then projects",
	  LOOM__CS_OBJECT__STATE__JOINED, ADA, true, { UPD_("title=Chief") }, LOOM__CS_OBJECT__STATE__JOINED, true,
	  "projected" },
	{ "state: EXPLICIT_DISCONNECTOR is never joined", LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR, NULL, false,
	  { ADD_(ADA) }, LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR, false, "explicit-disconnectors" },
	{ "state: EXPLICIT_CONNECTOR is not filtered", LOOM__CS_OBJECT__STATE__EXPLICIT_CONNECTOR, NULL, false,
	  { ADD_(ADA ";employeeType=test") }, LOOM__CS_OBJECT__STATE__EXPLICIT_CONNECTOR, true, "projected" },
	{ "state: PLACEHOLDER waits for its export", LOOM__CS_OBJECT__STATE__PLACEHOLDER, ADA, false,
	  { UPD_("title=Chief") }, LOOM__CS_OBJECT__STATE__PLACEHOLDER, false, "placeholders" },
	{ "state: a pending delete removes a disconnector", LOOM__CS_OBJECT__STATE__NORMAL, ADA, false,
	  { DEL_ }, GONE, false, "deleted-disconnectors" },
	{ "state: a pending delete removes a filtered disconnector", LOOM__CS_OBJECT__STATE__FILTERED,
	  ADA ";employeeType=test", false, { DEL_ }, GONE, false, "deleted-disconnectors" },
	{ "state: a pending delete removes an explicit disconnector", LOOM__CS_OBJECT__STATE__EXPLICIT_DISCONNECTOR,
	  ADA, false, { DEL_ }, GONE, false, "deleted-disconnectors" },
	{ "state: a pending delete removes a connector", LOOM__CS_OBJECT__STATE__NORMAL, NULL, false,
	  { ADD_(ADA), DEL_ }, GONE, false, "deleted-connectors" },
};

static void t_state(void **state)
{
	fx_t *f = *state;
	const state_case_t *c = f->tcase;
	cfg_t cfg = { 0 };
	fx_open(f, &cfg);
	for (size_t i = 0; i < 3 && c->steps[i].kind != LOOM__PENDING_IMPORT__KIND__NONE; i++) {
		const step_t *s = &c->steps[i];
		if (i == 0)
			stage_new(f, "hr", "h1", c->from, c->hologram, s->kind, s->spec);
		else
			stage_change(f, "hr", "h1", s->kind, s->spec);
		if (i == 0 && c->dangling) {
			Loom__CsObject *cs = cs_raw(f, "hr", "h1");
			cs->mv_id.len = 8;
			cs->mv_id.data = loom_malloc(8);
			loom_store_put_u64be(cs->mv_id.data, 4242);
			cs_write(f, "hr", cs, cs->dn, true);
			loom__cs_object__free_unpacked(cs, NULL);
		}
		run_reset(f);
		sync_obj(f, "hr", "h1");
	}
	assert_int_equal(counter(f, c->want_counter), 1);
	assert_int_equal(f->e.run->error_count, 0);
	assert_false(has_mark(f, CF_DELTA, "hr", "h1"));
	Loom__CsObject *h = cs_get(f, "hr", "h1");
	if (c->want == GONE) {
		assert_null(h);
		char *a = eng_csdn_get(&f->e, "hr", "cn=h1,ou=hr");
		assert_null(a);
		free(a);
		assert_int_equal(count_cf(f, CF_MV), 0);
		assert_int_equal(count_cf(f, CF_LINK), 0);
		return;
	}
	assert_non_null(h);
	assert_state(h, c->want);
	assert_null(h->pending_import);
	if (c->want_mv) {
		Loom__MvObject *mv = mv_must(f, h);
		assert_string_equal(connector(f, mv, "hr"), "h1");
		assert_int_equal(count_cf(f, CF_MV), 1);
		uint8_t dangling[8];
		loom_store_put_u64be(dangling, 4242);
		assert_false(memcmp(h->mv_id.data, dangling, 8) == 0);
	} else {
		assert_int_equal(h->mv_id.len, 0);
		assert_int_equal(count_cf(f, CF_MV), 0);
	}
	/* Whatever the state, the import became the hologram. */
	const step_t *last = &c->steps[0];
	for (size_t i = 1; i < 3 && c->steps[i].kind != LOOM__PENDING_IMPORT__KIND__NONE; i++)
		last = &c->steps[i];
	if (last->spec && strstr(last->spec, "title=Chief"))
		assert_string_equal(csval(f, h, "title"), "Chief");
	assert_string_equal(csval(f, h, "sn"), "Lovelace");
}

/* ---- loom_attrs_apply / loom_attrs_diff ----------------------------------------------------------- */

typedef struct apply_case {
	const char *label;
	const char *from;              /* attribute spec */
	const char *deltas;            /* delta spec */
	const char *want;              /* attribute spec text afterwards */
} apply_case_t;

static const apply_case_t apply_cases[] = {
	{ "apply: REPLACE of a new attribute appends it", "sn=Lovelace", "title=Analyst", "sn=Lovelace;title=Analyst" },
	{ "apply: REPLACE sets every value", "mail=a@x|b@x", "mail=c@x", "mail=c@x" },
	{ "apply: REPLACE drops duplicate values", "", "mail=a@x|a@x|b@x", "mail=a@x|b@x" },
	{ "apply: REPLACE without values removes the attribute", "sn=Lovelace;title=Analyst", "title=", "sn=Lovelace" },
	{ "apply: REPLACE without values of a missing attribute does nothing", "sn=Lovelace", "title=", "sn=Lovelace" },
	{ "apply: REPLACE matches the name case-insensitively and keeps its spelling", "sn=Lovelace", "SN=Byron",
	  "sn=Byron" },
	{ "apply: ADD appends values, skipping those present", "mail=a@x", "+mail=b@x|a@x|c@x", "mail=a@x|b@x|c@x" },
	{ "apply: ADD of a missing attribute creates it", "sn=Lovelace", "+mail=a@x", "sn=Lovelace;mail=a@x" },
	{ "apply: ADD without values does nothing", "sn=Lovelace", "+mail=", "sn=Lovelace" },
	{ "apply: ADD matches the name case-insensitively", "mail=a@x", "+MAIL=b@x", "mail=a@x|b@x" },
	{ "apply: DELETE of some values keeps the others in order", "mail=a@x|b@x|c@x", "-mail=b@x", "mail=a@x|c@x" },
	{ "apply: DELETE of every value removes the attribute", "mail=a@x|b@x;sn=L", "-mail=b@x|a@x", "sn=L" },
	{ "apply: DELETE without values removes the attribute", "mail=a@x|b@x;sn=L", "-mail=", "sn=L" },
	{ "apply: DELETE of an absent value does nothing", "mail=a@x", "-mail=z@x", "mail=a@x" },
	{ "apply: DELETE of a missing attribute does nothing", "sn=L", "-mail=a@x", "sn=L" },
	{ "apply: DELETE matches the name case-insensitively", "mail=a@x|b@x", "-Mail=a@x", "mail=b@x" },
	{ "apply: values are case-sensitive strings", "sn=lovelace", "-sn=Lovelace", "sn=lovelace" },
	{ "apply: deltas apply in order", "mail=a@x", "-mail=;+mail=b@x;title=T;title=", "mail=b@x" },
};

static void t_apply(void **state)
{
	fx_t *f = *state;
	const apply_case_t *c = f->tcase;
	Loom__Attr **a;
	size_t n;
	parse_attrs(c->from, &a, &n);
	Loom__AttrDelta **d;
	size_t nd;
	parse_deltas(c->deltas, &d, &nd);
	loom_attrs_apply(&a, &n, d, nd);
	char *got = attrs_text(a, n);
	keep_str(f, got);
	loom_deltas_free(d, nd);
	loom_attrs_free(a, n);
	assert_string_equal(got, c->want);
}

typedef struct diff_case {
	const char *label;
	const char *from, *to;         /* attribute specs */
	const char *want;              /* delta spec text */
} diff_case_t;

static const diff_case_t diff_cases[] = {
	{ "diff: equal lists give no delta", "sn=L;mail=a@x|b@x", "sn=L;mail=a@x|b@x", "" },
	{ "diff: values in another order are equal", "mail=a@x|b@x", "mail=b@x|a@x", "" },
	{ "diff: names compare case-insensitively", "sn=L", "SN=L", "" },
	{ "diff: attributes in another order are equal", "sn=L;cn=C", "cn=C;sn=L", "" },
	{ "diff: a changed value is a REPLACE with every value", "mail=a@x|b@x", "mail=a@x|c@x", "mail=a@x|c@x" },
	{ "diff: one value more is an ADD of it", "mail=a@x", "mail=a@x|b@x", "+mail=b@x" },
	{ "diff: one value less is a DELETE of it", "mail=a@x|b@x|c@x", "mail=a@x|c@x", "-mail=b@x" },
	{ "diff: one in, one out of three is a DELETE and an ADD", "m=a|b|c", "m=a|b|d", "-m=c;+m=d" },
	{ "diff: as many changes as new values is a REPLACE", "m=a|b", "m=c|d|e", "m=c|d|e" },
	{ "diff: string values are case-sensitive", "sn=lovelace", "sn=Lovelace", "sn=Lovelace" },
	{ "diff: a new attribute is a REPLACE", "sn=L", "sn=L;title=T", "title=T" },
	{ "diff: a missing attribute is a REPLACE without values", "sn=L;title=T", "sn=L", "title=" },
	{ "diff: from nothing", "", "sn=L;mail=a@x|b@x", "sn=L;mail=a@x|b@x" },
	{ "diff: to nothing", "sn=L;mail=a@x", "", "sn=;mail=" },
	{ "diff: changes first, then removals", "a=1;b=2;c=3", "c=4;a=1;d=5", "c=4;d=5;b=" },
};

/* Same attributes with the same values, in any order. */
static bool attrs_same(Loom__Attr *const *a, size_t na, Loom__Attr *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!loom_attr_values_eq(a[i], loom_attr_find(b, nb, a[i]->name)))
			return false;
	return true;
}

static void t_diff(void **state)
{
	fx_t *f = *state;
	const diff_case_t *c = f->tcase;
	Loom__Attr **from, **to;
	size_t nfrom, nto;
	parse_attrs(c->from, &from, &nfrom);
	parse_attrs(c->to, &to, &nto);
	Loom__AttrDelta **d;
	size_t nd;
	loom_attrs_diff(from, nfrom, to, nto, &d, &nd);
	const char *got = keep_str(f, deltas_text(d, nd));
	/* The diff applied to from gives to. */
	loom_attrs_apply(&from, &nfrom, d, nd);
	bool same = attrs_same(from, nfrom, to, nto);
	const char *after = keep_str(f, attrs_text(from, nfrom));
	loom_deltas_free(d, nd);
	loom_attrs_free(from, nfrom);
	loom_attrs_free(to, nto);
	assert_string_equal(got, c->want);
	if (!same)
		fail_msg("applying the diff gave '%s', wanted '%s'", after, c->to);
}

/* ---- main ------------------------------------------------------------------------------------------ */

#define MAX_TESTS 200

static void add_test(struct CMUnitTest *t, size_t *n, const char *label, CMUnitTestFunction fn, const void *c)
{
	if (*n == MAX_TESTS)
		abort(); /* raise MAX_TESTS */
	t[(*n)++] = (struct CMUnitTest){ label, fn, setup, teardown, (void *)c };
}

#define TABLE(v, fn)                                            \
	for (size_t i = 0; i < sizeof(v) / sizeof((v)[0]); i++)    \
		add_test(tests, &n, (v)[i].label, fn, &(v)[i])
#define SINGLE(fn, label) add_test(tests, &n, label, fn, NULL)

int main(void)
{
	struct CMUnitTest tests[MAX_TESTS];
	size_t n = 0;
	TABLE(join_cases, t_join);
	TABLE(prec_cases, t_precedence);
	SINGLE(t_filter_new_object, "filter: a new object the filter holds is a filtered disconnector");
	SINGLE(t_filter_disconnects_joined, "filter: a connector the filter holds is disconnected, its values leave the mv");
	TABLE(del_cases, t_deletion);
	SINGLE(t_provision_placeholder, "provisioning: in scope without connector: a placeholder with a pending ADD");
	SINGLE(t_provision_anchor_not_dn, "provisioning: an agent not anchored on the DN gets a temporary anchor");
	SINGLE(t_provision_out_of_scope, "provisioning: out of scope: nothing provisioned, until it comes in");
	TABLE(scope_cases, t_scope_leave);
	SINGLE(t_provision_connects_existing, "provisioning: a disconnector at the DN is connected, not duplicated");
	SINGLE(t_provision_dn_conflict, "provisioning: a DN held by another mv object's connector is a conflict");
	SINGLE(t_provision_merges_into_pending_add, "provisioning: a change before export goes into the pending ADD");
	SINGLE(t_provision_dn_error, "provisioning: no DN fails the object, which writes nothing and keeps its ids");
	TABLE(flow_cases, t_outbound);
	TABLE(state_cases, t_state);
	TABLE(apply_cases, t_apply);
	TABLE(diff_cases, t_diff);
	return _cmocka_run_group_tests("engine_sync", tests, n, group_setup, group_teardown);
}
