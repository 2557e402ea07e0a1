/* ma_file_fmt.c - the file agent's DSML v2, fixed-width and attribute-value
 * pair formats, in terms of import objects and export changes (the
 * decisions are in docs/agents.md "File formats").
 *
 *   dsml   full import: a batchResponse's searchResultEntry elements (an
 *          entry is what an LDIF content record is); delta import: change
 *          files (batchRequest: addRequest, modifyRequest, delRequest,
 *          modDNRequest; entries in a searchResponse are whole objects);
 *          export: the file rewritten as a searchResponse, or change files
 *          as batchRequests. DSML records go through the LDIF record's
 *          mapping (fa_ldif_object), so anchors, types, renames and the
 *          refusal of increments are the same in both.
 *   fixed  one object per line in the configured column layout, typed
 *          values; no changes (a full import finds them, as for CSV).
 *   avp    NAME: VALUE lines, a blank line between objects, values repeated
 *          for multi-valued attributes; the names dn, changetype and newdn
 *          are the format's own. Change files use changetype add, modify
 *          (NAME replaces, +NAME adds values, -NAME deletes values or, with
 *          no value, the attribute; newdn renames), delete and replace.
 */
#include "ma_file.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_avp.h"
#include "loom_dsml.h"
#include "loom_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct fa_reader {
	fileagent_t *fa;               /* the agent */
	int format;                    /* LOOM_FILE_* */
	bool delta;                    /* a change file */
	char *path;                    /* for locations */
	loom_dsml_reader_t *dsml;      /* dsml */
	loom_avp_reader_t *avp;        /* avp */
	int fd;                        /* fixed: the file */
	char *buf;                     /* fixed: read buffer */
	size_t len, pos, cap;          /* fixed: bytes held, consumed, allocated */
	bool eof;                      /* fixed: the file is read */
	unsigned line;                 /* fixed: lines consumed */
	loom_buf_t header;             /* fixed: header lines */
	loom_fixed_cell_t *cells;      /* fixed: one per column */
};

/* ---- configuration ---------------------------------------------------------------- */

static long fixed_col(const fileagent_t *fa, const char *name)
{
	for (size_t i = 0; i < fa->ncols; i++)
		if (strcasecmp(fa->cols[i].name, name) == 0)
			return (long)i;
	return -1;
}

static const char *dn_attr(const fileagent_t *fa)
{
	return fa->cfg.file.dn_attribute ? fa->cfg.file.dn_attribute : fa->cfg.anchor;
}

int fa_fixed_layout(fileagent_t *fa, char **ret_error)
{
	const loom_agentcfg_fixed_col_t *cc = fa->cfg.file.fixed.columns.v;
	size_t n = fa->cfg.file.fixed.columns.n;
	free(fa->cols);
	fa->cols = loom_calloc(n ? n : 1, sizeof *fa->cols);
	fa->ncols = n;
	for (size_t i = 0; i < n; i++) {
		fa->cols[i].name = cc[i].name;
		fa->cols[i].start = (unsigned)cc[i].start;
		fa->cols[i].width = (unsigned)cc[i].width;
		fa->cols[i].type = (loom_fixed_type_t)cc[i].type;
		fa->cols[i].format = cc[i].format;
		fa->cols[i].align = (loom_fixed_align_t)cc[i].align;
	}
	char *why = NULL;
	if (loom_fixed_layout(fa->cols, n, &why) < 0) {
		*ret_error = loom_sprintf("%s: file.fixed.columns: %s", fa->cfg.path, why);
		free(why);
		return -1;
	}
	if (!fa->dn_anchor && fixed_col(fa, fa->cfg.anchor) < 0) {
		*ret_error = loom_sprintf("%s: the anchor '%s' is not a column of file.fixed.columns", fa->cfg.path,
		    fa->cfg.anchor);
		return -1;
	}
	if (fixed_col(fa, dn_attr(fa)) < 0) {
		*ret_error = loom_sprintf("%s: the DN attribute '%s' (file.dn_attribute, default the anchor) is not a "
					  "column of file.fixed.columns",
		    fa->cfg.path, dn_attr(fa));
		return -1;
	}
	return 0;
}

/* ---- reading ---------------------------------------------------------------------- */

int fa_reader_open(fileagent_t *fa, int fd, const char *path, bool delta, fa_reader_t **ret, char **ret_error)
{
	fa_reader_t *r = loom_calloc(1, sizeof *r);
	r->fa = fa;
	r->format = fa->cfg.file.format;
	r->delta = delta;
	r->path = loom_strdup(path);
	r->fd = fd;
	switch (r->format) {
	case LOOM_FILE_DSML:
		r->dsml = loom_dsml_reader_new_fd(fd, path);
		break;
	case LOOM_FILE_AVP:
		r->avp = loom_avp_reader_new_fd(fd, fa->cfg.file.avp.separator ? fa->cfg.file.avp.separator[0] : ':', 0);
		break;
	case LOOM_FILE_FIXED:
		r->cells = loom_calloc(fa->ncols ? fa->ncols : 1, sizeof *r->cells);
		break;
	default:
		*ret_error = loom_sprintf("format %s has no reader here", fa_format_name(r->format));
		fa_reader_destroy(&r);
		return -1;
	}
	if ((r->format == LOOM_FILE_DSML && r->dsml == NULL) || (r->format == LOOM_FILE_AVP && r->avp == NULL)) {
		*ret_error = loom_sprintf("cannot read '%s'", path);
		fa_reader_destroy(&r);
		return -1;
	}
	*ret = r;
	return 0;
}

void fa_reader_destroy(fa_reader_t **rp)
{
	fa_reader_t *r = *rp;
	if (r == NULL)
		return;
	loom_dsml_reader_destroy(&r->dsml);
	loom_avp_reader_destroy(&r->avp);
	free(r->buf);
	loom_buf_release(&r->header);
	free(r->cells);
	free(r->path);
	free(r);
	*rp = NULL;
}

const char *fa_reader_header(const fa_reader_t *r, size_t *ret_len)
{
	*ret_len = r ? r->header.len : 0;
	return r && r->header.data ? r->header.data : "";
}

/* -- dsml -- */

static Loom__ImportObject *dsml_object(fa_reader_t *r, const loom_dsml_record_t *d, const char **why)
{
	static const loom_ldif_kind_t kinds[] = { LOOM_LDIF_CONTENT, LOOM_LDIF_ADD, LOOM_LDIF_MODIFY, LOOM_LDIF_DELETE,
		LOOM_LDIF_MODRDN };
	loom_ldif_record_t rec;
	memset(&rec, 0, sizeof rec);
	rec.kind = kinds[d->kind];
	rec.dn = d->dn;
	rec.dn_len = strlen(d->dn);
	rec.line = d->line;
	rec.newrdn = d->newrdn;
	rec.deleteoldrdn = d->deleteoldrdn;
	rec.newsuperior = d->newsuperior;
	size_t nv = 0;
	for (size_t i = 0; i < d->nattrs; i++)
		nv += d->attrs[i].n;
	for (size_t i = 0; i < d->nmods; i++)
		nv += d->mods[i].attr.n;
	loom_ldif_value_t *vals = loom_calloc(nv ? nv : 1, sizeof *vals);
	loom_ldif_attr_t *attrs = loom_calloc(d->nattrs ? d->nattrs : 1, sizeof *attrs);
	loom_ldif_mod_t *mods = loom_calloc(d->nmods ? d->nmods : 1, sizeof *mods);
	size_t k = 0;
	for (size_t i = 0; i < d->nattrs; i++) {
		attrs[i].name = d->attrs[i].name;
		attrs[i].n = d->attrs[i].n;
		attrs[i].v = &vals[k];
		for (size_t j = 0; j < d->attrs[i].n; j++, k++) {
			vals[k].data = d->attrs[i].v[j].data;
			vals[k].len = d->attrs[i].v[j].len;
		}
	}
	for (size_t i = 0; i < d->nmods; i++) {
		mods[i].op = (loom_ldif_modop_t)d->mods[i].op;
		mods[i].attr.name = d->mods[i].attr.name;
		mods[i].attr.n = d->mods[i].attr.n;
		mods[i].attr.v = &vals[k];
		for (size_t j = 0; j < d->mods[i].attr.n; j++, k++) {
			vals[k].data = d->mods[i].attr.v[j].data;
			vals[k].len = d->mods[i].attr.v[j].len;
		}
	}
	rec.attrs = attrs;
	rec.nattrs = d->nattrs;
	rec.mods = mods;
	rec.nmods = d->nmods;
	Loom__ImportObject *o = fa_ldif_object(r->fa, &rec, why);
	free(vals);
	free(attrs);
	free(mods);
	return o;
}

static int dsml_next(fa_reader_t *r, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error)
{
	static char why[400];
	for (;;) {
		loom_dsml_record_t d;
		loom_dsml_error_t e;
		int rc = loom_dsml_read(r->dsml, &d, &e);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			if (e.fatal) {
				*ret_error = e.column ? loom_sprintf("%s:%u:%u: %s", r->path, e.line, e.column, e.message)
						      : loom_sprintf("%s:%u: %s", r->path, e.line, e.message);
				return -1;
			}
			*ret_err = fa_object_error(r->path, e.line, e.column, e.message);
			return 2;
		}
		const char *msg = NULL;
		switch (d.kind) {
		case LOOM_DSML_DONE:
			if (d.result_code != 0) {
				*ret_error = loom_sprintf("%s:%u: searchResultDone reports result code %d%s%s: the search "
							  "result is incomplete, and an import of it would delete what it lacks",
				    r->path, d.line, d.result_code, d.message ? ": " : "", d.message ? d.message : "");
				return -1;
			}
			continue;
		case LOOM_DSML_OTHER:
			if (strcmp(d.element, "searchResultReference") == 0)
				continue; /* a referral names another server, not an object */
			if (strcmp(d.element, "errorResponse") == 0) {
				*ret_error = loom_sprintf("%s:%u: the document holds an errorResponse%s%s: the result is "
							  "incomplete",
				    r->path, d.line, d.message ? ": " : "", d.message ? d.message : "");
				return -1;
			}
			snprintf(why, sizeof why, "<%s> is not an entry or a change: only searchResultEntry, addRequest, "
						  "modifyRequest, delRequest and modDNRequest are imported",
			    d.element);
			msg = why;
			break;
		case LOOM_DSML_ENTRY:
			break;
		default:
			if (!r->delta)
				msg = "a change in a full import: full imports read a searchResponse of entries, change files "
				      "(batchRequest) go in delta_dir";
			else if (d.critical_control) {
				snprintf(why, sizeof why, "critical control %s cannot be honoured by a file", d.critical_control);
				msg = why;
			}
			break;
		}
		Loom__ImportObject *o = NULL;
		if (msg == NULL && (o = dsml_object(r, &d, &msg)) != NULL) {
			if (r->delta && d.kind == LOOM_DSML_ENTRY)
				o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
			*ret = o;
			return 1;
		}
		*ret_err = fa_object_error(r->path, d.line, 0, msg);
		return 2;
	}
}

/* -- avp -- */

static bool avp_reserved(const char *name)
{
	return strcasecmp(name, "dn") == 0 || strcasecmp(name, "changetype") == 0 || strcasecmp(name, "newdn") == 0;
}

/* Appends a value to the delta or attribute named name in a list, creating it. */
static void avp_add(Loom__Attr ***attrs, size_t *n, const char *name, const char *v, size_t len)
{
	Loom__Attr *a = NULL;
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*attrs)[i]->name, name) == 0)
			a = (*attrs)[i];
	if (a == NULL) {
		a = loom_malloc(sizeof *a);
		loom__attr__init(a);
		a->name = loom_strdup(name);
		*attrs = loom_realloc(*attrs, (*n + 1) * sizeof **attrs);
		(*attrs)[(*n)++] = a;
	}
	if (v == NULL)
		return;
	Loom__Value *val = fa_value(v, len);
	for (size_t i = 0; i < a->n_values; i++)
		if (loom_value_eq(a->values[i], val)) {
			loom_value_free(val);
			return;
		}
	a->values = loom_realloc(a->values, (a->n_values + 1) * sizeof *a->values);
	a->values[a->n_values++] = val;
}

static Loom__AttrDelta *avp_delta(Loom__ImportObject *o, const char *name, Loom__AttrDelta__Op op)
{
	for (size_t i = 0; i < o->n_deltas; i++)
		if (o->deltas[i]->op == op && strcasecmp(o->deltas[i]->name, name) == 0)
			return o->deltas[i];
	Loom__AttrDelta *d = loom_malloc(sizeof *d);
	loom__attr_delta__init(d);
	d->name = loom_strdup(name);
	d->op = op;
	o->deltas = loom_realloc(o->deltas, (o->n_deltas + 1) * sizeof *o->deltas);
	o->deltas[o->n_deltas++] = d;
	return d;
}

static Loom__ImportObject *avp_object(fa_reader_t *r, const loom_avp_record_t *rec, const char **why)
{
	static char msg[300];
	fileagent_t *fa = r->fa;
	const char *dn = NULL, *ctype = NULL, *newdn = NULL;
	for (size_t i = 0; i < rec->n; i++) {
		const loom_avp_pair_t *p = &rec->pairs[i];
		const char **slot = strcasecmp(p->name, "dn") == 0 ? &dn
		    : strcasecmp(p->name, "changetype") == 0	 ? &ctype
		    : strcasecmp(p->name, "newdn") == 0		 ? &newdn
								 : NULL;
		if (slot == NULL)
			continue;
		if (*slot) {
			snprintf(msg, sizeof msg, "'%s' appears twice in one object", p->name);
			*why = msg;
			return NULL;
		}
		*slot = p->value;
	}
	Loom__ImportObject__Change change = LOOM__IMPORT_OBJECT__CHANGE__FULL;
	if (ctype && !r->delta) {
		*why = "a change in a full import: full imports read whole objects, change files go in delta_dir";
		return NULL;
	}
	if (r->delta) {
		change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
		if (ctype == NULL || strcasecmp(ctype, "replace") == 0)
			change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
		else if (strcasecmp(ctype, "add") == 0)
			change = LOOM__IMPORT_OBJECT__CHANGE__ADD;
		else if (strcasecmp(ctype, "modify") == 0)
			change = LOOM__IMPORT_OBJECT__CHANGE__UPDATE;
		else if (strcasecmp(ctype, "delete") == 0)
			change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
		else {
			snprintf(msg, sizeof msg, "changetype '%.48s': expected add, modify, delete or replace", ctype);
			*why = msg;
			return NULL;
		}
	}
	if (newdn && change != LOOM__IMPORT_OBJECT__CHANGE__UPDATE) {
		*why = "newdn belongs in a changetype: modify object";
		return NULL;
	}
	Loom__ImportObject *o = fa_object_new(change);
	bool mod = change == LOOM__IMPORT_OBJECT__CHANGE__UPDATE;
	for (size_t i = 0; i < rec->n; i++) {
		const loom_avp_pair_t *p = &rec->pairs[i];
		if (avp_reserved(p->name))
			continue;
		if (p->name[0] == '+' || p->name[0] == '-') {
			if (!mod || p->name[1] == '\0') {
				snprintf(msg, sizeof msg, "'%.48s': +NAME and -NAME belong in a changetype: modify object", p->name);
				*why = msg;
				loom__import_object__free_unpacked(o, NULL);
				return NULL;
			}
			Loom__AttrDelta *d = avp_delta(o, p->name + 1,
			    p->name[0] == '+' ? LOOM__ATTR_DELTA__OP__ADD : LOOM__ATTR_DELTA__OP__DELETE);
			if (p->len) {
				d->values = loom_realloc(d->values, (d->n_values + 1) * sizeof *d->values);
				d->values[d->n_values++] = fa_value(p->value, p->len);
			}
			continue;
		}
		if (mod) {
			if (!fa->dn_anchor && strcasecmp(p->name, fa->cfg.anchor) == 0)
				continue; /* names the object */
			Loom__AttrDelta *d = avp_delta(o, p->name, LOOM__ATTR_DELTA__OP__REPLACE);
			if (p->len) {
				d->values = loom_realloc(d->values, (d->n_values + 1) * sizeof *d->values);
				d->values[d->n_values++] = fa_value(p->value, p->len);
			}
			continue;
		}
		/* An empty value is no value (as an empty CSV cell). */
		avp_add(&o->attrs, &o->n_attrs, p->name, p->len ? p->value : NULL, p->len);
	}
	/* Attributes left without values are absent. */
	size_t w = 0;
	for (size_t i = 0; i < o->n_attrs; i++) {
		if (o->attrs[i]->n_values)
			o->attrs[w++] = o->attrs[i];
		else
			loom__attr__free_unpacked(o->attrs[i], NULL);
	}
	o->n_attrs = w;
	/* The anchor: the DN, or the anchor attribute's value. */
	const char *anchor = NULL;
	if (fa->dn_anchor) {
		anchor = dn;
	} else {
		for (size_t i = 0; i < rec->n && anchor == NULL; i++)
			if (strcasecmp(rec->pairs[i].name, fa->cfg.anchor) == 0 && rec->pairs[i].len)
				anchor = rec->pairs[i].value;
	}
	if (anchor == NULL && (mod || change == LOOM__IMPORT_OBJECT__CHANGE__DELETE) && dn) {
		anchor = ""; /* the engine finds the object by its DN */
	} else if (anchor == NULL) {
		snprintf(msg, sizeof msg, fa->dn_anchor ? "object has no dn" : "object has no value for the anchor attribute '%s'",
		    fa->cfg.anchor);
		*why = msg;
		loom__import_object__free_unpacked(o, NULL);
		return NULL;
	}
	o->anchor = fa->dn_anchor ? fa_key(fa, anchor) : loom_strdup(anchor);
	if (dn) {
		o->dn = loom_strdup(dn);
	} else {
		const char *da = dn_attr(fa);
		const char *v = NULL;
		for (size_t i = 0; i < rec->n && v == NULL; i++)
			if (strcasecmp(rec->pairs[i].name, da) == 0 && rec->pairs[i].len)
				v = rec->pairs[i].value;
		if (v == NULL && !mod && change != LOOM__IMPORT_OBJECT__CHANGE__DELETE) {
			snprintf(msg, sizeof msg, "object has no dn and no value for the DN attribute '%s' (file.dn_attribute)",
			    da);
			*why = msg;
			loom__import_object__free_unpacked(o, NULL);
			return NULL;
		}
		o->dn = v ? loom_sprintf("%s=%s", da, v) : loom_strdup("");
	}
	if (newdn)
		o->new_dn = loom_strdup(newdn);
	const char *type = fa->cfg.object_type ? fa->cfg.object_type : fa_ldif_type(o->attrs, o->n_attrs);
	o->object_type = loom_strdup(type[0] || mod || change == LOOM__IMPORT_OBJECT__CHANGE__DELETE ? type : "person");
	return o;
}

static int avp_next(fa_reader_t *r, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error)
{
	loom_avp_record_t rec;
	loom_avp_error_t e;
	int rc = loom_avp_read(r->avp, &rec, &e);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		if (e.fatal) {
			*ret_error = loom_sprintf("%s:%u: %s", r->path, e.line, e.message);
			return -1;
		}
		*ret_err = fa_object_error(r->path, e.line, e.column, e.message);
		return 2;
	}
	const char *why = NULL;
	Loom__ImportObject *o = avp_object(r, &rec, &why);
	if (o == NULL) {
		*ret_err = fa_object_error(r->path, rec.line, 0, why);
		return 2;
	}
	*ret = o;
	return 1;
}

/* -- fixed -- */

/* Longest fixed-width line read: a file without line ends must not make
 * the reader grow without bound (the same limit as loom_avp.c's). */
#define FIXED_MAX_LINE (16u << 20)

/* The next line: 1, 0 at the end, -1 read error, -2 a line longer than
 * FIXED_MAX_LINE. */
static int fixed_line(fa_reader_t *r, const char **ret, size_t *ret_len)
{
	for (;;) {
		if (r->len - r->pos > FIXED_MAX_LINE && memchr(r->buf + r->pos, '\n', FIXED_MAX_LINE) == NULL)
			return -2;
		char *nl = r->len > r->pos ? memchr(r->buf + r->pos, '\n', r->len - r->pos) : NULL;
		if (nl || (r->eof && r->len > r->pos)) {
			char *s = r->buf + r->pos;
			size_t n = nl ? (size_t)(nl - s) : r->len - r->pos;
			r->pos += n + (nl ? 1 : 0);
			r->line++;
			if (n && s[n - 1] == '\r')
				n--;
			*ret = s;
			*ret_len = n;
			return 1;
		}
		if (r->eof)
			return 0;
		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->cap - r->len < 65536) {
			r->cap = r->cap ? r->cap * 2 : 131072;
			r->buf = loom_realloc(r->buf, r->cap);
		}
		ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			r->eof = true;
		r->len += (size_t)got;
	}
}

static int fixed_next(fa_reader_t *r, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error)
{
	fileagent_t *fa = r->fa;
	char why[300];
	for (;;) {
		const char *s;
		size_t len;
		int rc = fixed_line(r, &s, &len);
		if (rc == -2) {
			*ret_error = loom_sprintf("%s:%u: a line longer than %u bytes (not a fixed-width file?)", r->path,
			    r->line + 1, FIXED_MAX_LINE);
			return -1;
		}
		if (rc < 0) {
			*ret_error = loom_sprintf("cannot read '%s': %s", r->path, strerror(errno));
			return -1;
		}
		if (rc == 0)
			return 0;
		if (r->line <= (unsigned)fa->cfg.file.fixed.header_lines) {
			loom_buf_add(&r->header, s, len);
			loom_buf_addc(&r->header, '\n');
			continue;
		}
		if (len == 0)
			continue; /* an empty line (the file's last line break) is no record */
		unsigned col;
		const char *err;
		if (loom_fixed_split(fa->cols, fa->ncols, s, len, r->cells, &col, &err) < 0) {
			if (err)
				snprintf(why, sizeof why, "%s", err);
			else
				snprintf(why, sizeof why, "line has %zu characters, the layout (file.fixed.columns) ends at %u",
				    loom_fixed_chars(s, len), loom_fixed_length(fa->cols, fa->ncols));
			*ret_err = fa_object_error(r->path, r->line, col, why);
			return 2;
		}
		long ac = fa->dn_anchor ? -1 : fixed_col(fa, fa->cfg.anchor);
		long dc = fixed_col(fa, dn_attr(fa));
		if ((ac >= 0 && r->cells[ac].len == 0) || r->cells[dc].len == 0) {
			long c = ac >= 0 && r->cells[ac].len == 0 ? ac : dc;
			snprintf(why, sizeof why, "no value in the %s column '%s' (characters %u-%u)",
			    c == ac ? "anchor" : "DN", fa->cols[c].name, fa->cols[c].start,
			    fa->cols[c].start + fa->cols[c].width - 1);
			*ret_err = fa_object_error(r->path, r->line, fa->cols[c].start, why);
			return 2;
		}
		Loom__ImportObject *o = fa_object_new(LOOM__IMPORT_OBJECT__CHANGE__FULL);
		bool bad = false;
		for (size_t c = 0; c < fa->ncols && !bad; c++) {
			const loom_fixed_cell_t *cell = &r->cells[c];
			if (cell->len == 0)
				continue;
			Loom__Value *vals[256];
			size_t nv = 0;
			const char *p = cell->text, *end = p + cell->len;
			bool split = fa->cols[c].type == LOOM_FIXED_STRING && fa->sep[0];
			while (p <= end && nv < 256) {
				const char *q = split ? memchr(p, fa->sep[0], (size_t)(end - p)) : NULL;
				if (q == NULL)
					q = end;
				if (q > p) {
					char vwhy[200];
					Loom__Value *v = loom_fixed_value(&fa->cols[c], p, (size_t)(q - p), vwhy, sizeof vwhy);
					if (v == NULL) {
						snprintf(why, sizeof why, "column '%s' (characters %u-%u): %s", fa->cols[c].name,
						    fa->cols[c].start, fa->cols[c].start + fa->cols[c].width - 1, vwhy);
						*ret_err = fa_object_error(r->path, r->line, fa->cols[c].start, why);
						bad = true;
						break;
					}
					vals[nv++] = v;
				}
				p = q + 1;
			}
			if (!bad)
				loom_attrs_set(&o->attrs, &o->n_attrs, fa->cols[c].name, vals, nv);
			for (size_t i = 0; i < nv; i++)
				loom_value_free(vals[i]);
		}
		if (bad) {
			loom__import_object__free_unpacked(o, NULL);
			return 2;
		}
		o->dn = loom_sprintf("%s=%.*s", fa->cols[dc].name, (int)r->cells[dc].len, r->cells[dc].text);
		o->anchor = fa->dn_anchor ? fa_key(fa, o->dn) : loom_strndup(r->cells[ac].text, r->cells[ac].len);
		o->object_type = loom_strdup(fa->cfg.object_type ? fa->cfg.object_type : "person");
		*ret = o;
		return 1;
	}
}

int fa_reader_next(fa_reader_t *r, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error)
{
	switch (r->format) {
	case LOOM_FILE_DSML: return dsml_next(r, ret, ret_err, ret_error);
	case LOOM_FILE_AVP: return avp_next(r, ret, ret_err, ret_error);
	default: return fixed_next(r, ret, ret_err, ret_error);
	}
}

/* ---- writing ---------------------------------------------------------------------- */

struct fa_writer {
	fileagent_t *fa;               /* the agent */
	int format;                    /* LOOM_FILE_* */
	bool changes;                  /* a change file */
	loom_buf_t *out;               /* where it goes (borrowed) */
	loom_dsml_writer_t *dsml;      /* dsml */
	char sep;                      /* avp separator */
};

fa_writer_t *fa_writer_new(fileagent_t *fa, loom_buf_t *out, bool changes, const char *header, size_t header_len)
{
	fa_writer_t *w = loom_calloc(1, sizeof *w);
	w->fa = fa;
	w->format = fa->cfg.file.format;
	w->changes = changes;
	w->out = out;
	w->sep = fa->cfg.file.avp.separator ? fa->cfg.file.avp.separator[0] : ':';
	if (w->format == LOOM_FILE_DSML)
		w->dsml = loom_dsml_writer_new(out, changes ? LOOM_DSML_DOC_CHANGES : LOOM_DSML_DOC_SEARCH);
	if (header && header_len)
		loom_buf_add(out, header, header_len);
	return w;
}

void fa_writer_finish(fa_writer_t *w)
{
	if (w->dsml)
		loom_dsml_writer_finish(w->dsml);
}

void fa_writer_destroy(fa_writer_t **wp)
{
	fa_writer_t *w = *wp;
	if (w == NULL)
		return;
	loom_dsml_writer_destroy(&w->dsml);
	free(w);
	*wp = NULL;
}

/* A value as the file writes it; *ret_tmp is what to free. */
static const char *value_bytes(const Loom__Value *v, size_t *len, char **ret_tmp)
{
	*ret_tmp = NULL;
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: *len = strlen(v->str); return v->str;
	case LOOM__VALUE__V_REF: *len = strlen(v->ref); return v->ref;
	case LOOM__VALUE__V_BIN: *len = v->bin.len; return (const char *)v->bin.data;
	default: {
		loom_buf_t t = LOOM_BUF_INIT;
		loom_value_text(&t, v);
		*len = t.len;
		*ret_tmp = loom_buf_steal(&t);
		return *ret_tmp;
	}
	}
}

/* dsml: attributes (or deltas) as records' arrays. */
typedef struct dsml_build {
	loom_dsml_attr_t *attrs;       /* one per attribute or modification */
	loom_dsml_mod_t *mods;         /* modifications */
	loom_dsml_value_t *vals;       /* all values */
	char **tmp;                    /* texts to free */
	size_t ntmp;
} dsml_build_t;

static void build_values(dsml_build_t *b, size_t *k, Loom__Value *const *values, size_t n, loom_dsml_attr_t *a)
{
	a->v = &b->vals[*k];
	a->n = n;
	for (size_t j = 0; j < n; j++, (*k)++) {
		char *tmp;
		b->vals[*k].data = value_bytes(values[j], &b->vals[*k].len, &tmp);
		if (tmp)
			b->tmp[b->ntmp++] = tmp;
	}
}

static void build_attrs(dsml_build_t *b, Loom__Attr *const *attrs, size_t n)
{
	size_t nv = 0;
	for (size_t i = 0; i < n; i++)
		nv += attrs[i]->n_values;
	b->attrs = loom_calloc(n ? n : 1, sizeof *b->attrs);
	b->vals = loom_calloc(nv ? nv : 1, sizeof *b->vals);
	b->tmp = loom_calloc(nv ? nv : 1, sizeof *b->tmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		b->attrs[i].name = attrs[i]->name;
		build_values(b, &k, attrs[i]->values, attrs[i]->n_values, &b->attrs[i]);
	}
}

static void build_free(dsml_build_t *b)
{
	for (size_t i = 0; i < b->ntmp; i++)
		free(b->tmp[i]);
	free(b->tmp);
	free(b->attrs);
	free(b->mods);
	free(b->vals);
	memset(b, 0, sizeof *b);
}

static int dsml_put(fa_writer_t *w, const loom_dsml_record_t *rec, char **ret_error)
{
	const char *err;
	if (loom_dsml_write(w->dsml, rec, &err) < 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", rec->dn, err);
		return -1;
	}
	return 0;
}

static int avp_values(fa_writer_t *w, const char *name, Loom__Value *const *values, size_t n, bool empty)
{
	for (size_t j = 0; j < n; j++) {
		char *tmp;
		size_t len;
		const char *b = value_bytes(values[j], &len, &tmp);
		loom_avp_write_pair(w->out, w->sep, name, b, len);
		free(tmp);
	}
	if (n == 0 && empty)
		loom_avp_write_pair(w->out, w->sep, name, "", 0);
	return 0;
}

/* An attribute name the AVP writer can write as NAME SEP. */
static int avp_name_ok(fa_writer_t *w, const char *name, char **ret_error)
{
	if (name[0] == '\0' || name[0] == '#' || name[0] == '+' || name[0] == '-' || strchr(name, w->sep) ||
	    strpbrk(name, " \t\r\n") || avp_reserved(name)) {
		*ret_error = loom_sprintf("attribute name '%s' cannot be written as an attribute-value pair", name);
		return -1;
	}
	return 0;
}

static int fixed_object(fa_writer_t *w, Loom__Attr *const *attrs, size_t n, char **ret_error)
{
	fileagent_t *fa = w->fa;
	unsigned at = 1;
	/* Columns in order of their start (the layout may list them in any order). */
	size_t *order = loom_malloc((fa->ncols ? fa->ncols : 1) * sizeof *order);
	for (size_t i = 0; i < fa->ncols; i++)
		order[i] = i;
	for (size_t i = 1; i < fa->ncols; i++)
		for (size_t k = i; k > 0 && fa->cols[order[k]].start < fa->cols[order[k - 1]].start; k--) {
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	loom_buf_t cell = LOOM_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < fa->ncols && rc == 0; i++) {
		const loom_fixed_col_t *col = &fa->cols[order[i]];
		for (; at < col->start; at++)
			loom_buf_addc(w->out, ' ');
		loom_buf_reset(&cell);
		const Loom__Attr *a = loom_attr_find(attrs, n, col->name);
		for (size_t k = 0; a && k < a->n_values; k++) {
			if (k && fa->sep[0])
				loom_buf_addc(&cell, fa->sep[0]);
			else if (k)
				break;
			loom_fixed_value_text(&cell, col, a->values[k]);
		}
		if (loom_fixed_put(w->out, col, cell.data ? cell.data : "", cell.len) < 0) {
			*ret_error = loom_sprintf("the value '%.*s' of '%s' is longer than its column (%u characters)",
			    (int)(cell.len > 48 ? 48 : cell.len), cell.data, col->name, col->width);
			rc = -1;
		}
		at = col->start + col->width;
	}
	/* Trailing blanks are part of the layout: every line is as long as it. */
	loom_buf_addc(w->out, '\n');
	loom_buf_release(&cell);
	free(order);
	return rc;
}

int fa_writer_object(fa_writer_t *w, const char *dn, Loom__Attr *const *attrs, size_t n, char **ret_error)
{
	if (w->format == LOOM_FILE_FIXED) {
		size_t mark = w->out->len;
		int rc = fixed_object(w, attrs, n, ret_error);
		if (rc < 0)
			w->out->len = mark;
		return rc;
	}
	if (w->format == LOOM_FILE_AVP) {
		for (size_t i = 0; i < n; i++)
			if (avp_name_ok(w, attrs[i]->name, ret_error) < 0)
				return -1;
		loom_avp_write_pair(w->out, w->sep, "dn", dn, strlen(dn));
		for (size_t i = 0; i < n; i++)
			avp_values(w, attrs[i]->name, attrs[i]->values, attrs[i]->n_values, false);
		loom_avp_write_end(w->out);
		return 0;
	}
	dsml_build_t b;
	memset(&b, 0, sizeof b);
	build_attrs(&b, attrs, n);
	loom_dsml_record_t rec = { .kind = LOOM_DSML_ENTRY, .dn = dn, .nattrs = n, .attrs = b.attrs };
	int rc = dsml_put(w, &rec, ret_error);
	build_free(&b);
	return rc;
}

/* The first RDN of dn and what follows it (NULL for none). */
static char *split_rdn(const char *dn, const char **parent)
{
	const char *p = dn;
	while (*p && !(*p == ',' && (p == dn || p[-1] != '\\')))
		p++;
	*parent = *p ? p + 1 : NULL;
	return loom_strndup(dn, (size_t)(p - dn));
}

int fa_writer_change(fa_writer_t *w, const Loom__ExportChange *c, char **ret_error)
{
	fileagent_t *fa = w->fa;
	if (w->format == LOOM_FILE_AVP) {
		for (size_t i = 0; i < c->n_deltas; i++)
			if (avp_name_ok(w, c->deltas[i]->name, ret_error) < 0)
				return -1;
		if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
			Loom__Attr **attrs = NULL;
			size_t n = 0;
			loom_attrs_apply(&attrs, &n, c->deltas, c->n_deltas);
			loom_avp_write_pair(w->out, w->sep, "changetype", "add", 3);
			loom_avp_write_pair(w->out, w->sep, "dn", c->dn, strlen(c->dn));
			for (size_t i = 0; i < n; i++)
				avp_values(w, attrs[i]->name, attrs[i]->values, attrs[i]->n_values, false);
			loom_attrs_free(attrs, n);
		} else {
			bool del = c->op == LOOM__EXPORT_CHANGE__OP__DELETE;
			loom_avp_write_pair(w->out, w->sep, "changetype", del ? "delete" : "modify", 6);
			loom_avp_write_pair(w->out, w->sep, "dn", c->dn, strlen(c->dn));
			if (!fa->dn_anchor && c->anchor[0])
				loom_avp_write_pair(w->out, w->sep, fa->cfg.anchor, c->anchor, strlen(c->anchor));
			if (!del && c->new_dn[0])
				loom_avp_write_pair(w->out, w->sep, "newdn", c->new_dn, strlen(c->new_dn));
			for (size_t i = 0; !del && i < c->n_deltas; i++) {
				const Loom__AttrDelta *d = c->deltas[i];
				char *name = d->op == LOOM__ATTR_DELTA__OP__REPLACE ? loom_strdup(d->name)
				    : loom_sprintf("%c%s", d->op == LOOM__ATTR_DELTA__OP__ADD ? '+' : '-', d->name);
				avp_values(w, name, d->values, d->n_values, d->op != LOOM__ATTR_DELTA__OP__ADD);
				free(name);
			}
		}
		loom_avp_write_end(w->out);
		return 0;
	}
	if (w->format != LOOM_FILE_DSML) {
		*ret_error = loom_sprintf("format %s holds no changes", fa_format_name(w->format));
		return -1;
	}
	dsml_build_t b;
	memset(&b, 0, sizeof b);
	int rc;
	if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE) {
		loom_dsml_record_t rec = { .kind = LOOM_DSML_DELETE, .dn = c->dn };
		rc = dsml_put(w, &rec, ret_error);
	} else if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		loom_attrs_apply(&attrs, &n, c->deltas, c->n_deltas);
		build_attrs(&b, attrs, n);
		loom_dsml_record_t rec = { .kind = LOOM_DSML_ADD, .dn = c->new_dn[0] ? c->new_dn : c->dn, .nattrs = n,
			.attrs = b.attrs };
		rc = dsml_put(w, &rec, ret_error);
		build_free(&b);
		loom_attrs_free(attrs, n);
	} else {
		rc = 0;
		if (c->n_deltas) {
			size_t nv = 0;
			for (size_t i = 0; i < c->n_deltas; i++)
				nv += c->deltas[i]->n_values;
			b.mods = loom_calloc(c->n_deltas, sizeof *b.mods);
			b.vals = loom_calloc(nv ? nv : 1, sizeof *b.vals);
			b.tmp = loom_calloc(nv ? nv : 1, sizeof *b.tmp);
			size_t k = 0;
			for (size_t i = 0; i < c->n_deltas; i++) {
				const Loom__AttrDelta *d = c->deltas[i];
				b.mods[i].op = d->op == LOOM__ATTR_DELTA__OP__ADD ? LOOM_DSML_MOD_ADD
				    : d->op == LOOM__ATTR_DELTA__OP__DELETE	     ? LOOM_DSML_MOD_DELETE
										     : LOOM_DSML_MOD_REPLACE;
				b.mods[i].attr.name = d->name;
				build_values(&b, &k, d->values, d->n_values, &b.mods[i].attr);
			}
			loom_dsml_record_t rec = { .kind = LOOM_DSML_MODIFY, .dn = c->dn, .nmods = c->n_deltas, .mods = b.mods };
			rc = dsml_put(w, &rec, ret_error);
			build_free(&b);
		}
		if (rc == 0 && c->new_dn[0]) {
			const char *parent;
			char *rdn = split_rdn(c->new_dn, &parent);
			loom_dsml_record_t rec = { .kind = LOOM_DSML_MODDN, .dn = c->dn, .newrdn = rdn, .deleteoldrdn = true,
				.newsuperior = parent };
			rc = dsml_put(w, &rec, ret_error);
			free(rdn);
		}
	}
	return rc;
}

const char *fa_fixed_check(fileagent_t *fa, const Loom__ExportChange *c, char **ret_message)
{
	if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE)
		return NULL;
	loom_buf_t t = LOOM_BUF_INIT;
	for (size_t i = 0; i < c->n_deltas; i++) {
		const Loom__AttrDelta *d = c->deltas[i];
		long col = fixed_col(fa, d->name);
		if (col < 0) {
			if (d->n_values == 0)
				continue; /* removing what the file cannot hold changes nothing */
			*ret_message = loom_sprintf("the layout (file.fixed.columns) has no column for attribute '%s'", d->name);
			loom_buf_release(&t);
			return "no-such-attribute";
		}
		for (size_t k = 0; k < d->n_values; k++) {
			loom_buf_reset(&t);
			loom_fixed_value_text(&t, &fa->cols[col], d->values[k]);
			if (loom_fixed_chars(t.data ? t.data : "", t.len) > fa->cols[col].width) {
				*ret_message = loom_sprintf("the value '%.*s' of '%s' is longer than its column (%u characters)",
				    (int)(t.len > 48 ? 48 : t.len), t.data, d->name, fa->cols[col].width);
				loom_buf_release(&t);
				return "value-too-long";
			}
		}
	}
	loom_buf_release(&t);
	return NULL;
}
