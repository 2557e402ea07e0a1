/* ma_file_import.c - full and delta import from files (CSV and LDIF here,
 * the other formats through ma_file_fmt.c's readers), streamed to the
 * engine in batches under its credit (agent.proto). A record that cannot be
 * read is sent as an error with FILE:LINE and the reason, and the import
 * goes on; a file that cannot be opened fails the run with one line. */
#include "ma_file.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_text.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

char *fa_key(fileagent_t *fa, const char *anchor)
{
	char *k = loom_strdup(anchor);
	if (fa->dn_anchor)
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return k;
}

Loom__Value *fa_value(const char *data, size_t len)
{
	if (loom_utf8_text(data, len))
		return loom_value_str(data, len);
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	v->v_case = LOOM__VALUE__V_BIN;
	v->bin.len = len;
	v->bin.data = loom_memdup(data, len);
	return v;
}

static void attr_add(Loom__ImportObject *o, const char *name, Loom__Value **vals, size_t n)
{
	loom_attrs_set(&o->attrs, &o->n_attrs, name, vals, n);
}

Loom__ImportObject *fa_object_new(Loom__ImportObject__Change change)
{
	Loom__ImportObject *o = loom_malloc(sizeof *o);
	loom__import_object__init(o);
	o->change = change;
	return o;
}

Loom__ImportObject *fa_csv_object(fileagent_t *fa, const char *const *cols, size_t ncols,
    const loom_csv_record_t *rec, long anchor_col, long dn_col, const char **error_r)
{
	static char why[256];
	if (rec->n != ncols) {
		snprintf(why, sizeof why, "row has %zu fields, the header has %zu", rec->n, ncols);
		*error_r = why;
		return NULL;
	}
	if (rec->len[anchor_col] == 0) {
		snprintf(why, sizeof why, "row has no value in the anchor column '%s'", cols[anchor_col]);
		*error_r = why;
		return NULL;
	}
	Loom__ImportObject *o = fa_object_new(LOOM__IMPORT_OBJECT__CHANGE__FULL);
	o->anchor = loom_strndup(rec->v[anchor_col], rec->len[anchor_col]);
	o->dn = loom_sprintf("%s=%s", cols[dn_col], rec->v[dn_col]);
	o->object_type = loom_strdup(fa->cfg.object_type ? fa->cfg.object_type : "person");
	Loom__Value *stackv[64], **vals = stackv;
	size_t cap = 64;
	for (size_t c = 0; c < ncols; c++) {
		if (rec->len[c] == 0)
			continue;
		size_t n = 0;
		const char *p = rec->v[c], *end = p + rec->len[c];
		size_t most = 1; /* values in the cell at most: separators + 1 */
		for (const char *q = p; fa->sep[0] && (q = memchr(q, fa->sep[0], (size_t)(end - q))) != NULL; q++)
			most++;
		if (most > cap) {
			cap = most;
			vals = vals == stackv ? loom_malloc(cap * sizeof *vals) : loom_realloc(vals, cap * sizeof *vals);
		}
		while (p <= end) {
			const char *q = fa->sep[0] ? memchr(p, fa->sep[0], (size_t)(end - p)) : NULL;
			if (q == NULL)
				q = end;
			if (q > p)
				vals[n++] = fa_value(p, (size_t)(q - p));
			p = q + 1;
		}
		attr_add(o, cols[c], vals, n);
		for (size_t i = 0; i < n; i++)
			loom_value_free(vals[i]);
	}
	if (vals != stackv)
		free(vals);
	return o;
}

int fa_csv_columns(fileagent_t *fa, const char *path, const char *const *cols, size_t ncols, long *anchor_col,
    long *dn_col, char **ret_error)
{
	const char *dnc = fa->cfg.file.dn_attribute ? fa->cfg.file.dn_attribute : fa->cfg.anchor;
	*anchor_col = *dn_col = -1;
	for (size_t c = 0; c < ncols; c++) {
		if (strcasecmp(cols[c], fa->cfg.anchor) == 0)
			*anchor_col = (long)c;
		if (strcasecmp(cols[c], dnc) == 0)
			*dn_col = (long)c;
	}
	if (*anchor_col < 0) {
		*ret_error = loom_sprintf("%s: the anchor column '%s' is not in the header", path, fa->cfg.anchor);
		return -1;
	}
	if (*dn_col < 0) {
		*ret_error = loom_sprintf("%s: the DN column '%s' (file.dn_attribute) is not in the header", path, dnc);
		return -1;
	}
	return 0;
}

static void ldif_attrs(Loom__Attr ***attrs, size_t *nattrs, const loom_ldif_attr_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		Loom__Value **vals = loom_malloc((a[i].n ? a[i].n : 1) * sizeof *vals);
		for (size_t k = 0; k < a[i].n; k++)
			vals[k] = fa_value(a[i].v[k].data, a[i].v[k].len);
		loom_attrs_set(attrs, nattrs, a[i].name, vals, a[i].n);
		for (size_t k = 0; k < a[i].n; k++)
			loom_value_free(vals[k]);
		free(vals);
	}
}

/* An LDIF entry's object type when the agent names none: its last
 * objectClass other than top (the most specific, as LDIF writes them),
 * or "" (a change record: the engine keeps the type it knows). */
const char *fa_ldif_type(Loom__Attr *const *attrs, size_t n)
{
	const Loom__Attr *oc = loom_attr_find(attrs, n, "objectClass");
	for (size_t i = oc ? oc->n_values : 0; i > 0; i--) {
		const Loom__Value *v = oc->values[i - 1];
		if (v->v_case == LOOM__VALUE__V_STR && v->str[0] && strcasecmp(v->str, "top") != 0)
			return v->str;
	}
	return "";
}

/* The anchor of an LDIF entry: its DN, or the first value of the anchor attribute. */
static char *ldif_anchor(fileagent_t *fa, const char *dn, Loom__Attr *const *attrs, size_t n)
{
	if (fa->dn_anchor)
		return fa_key(fa, dn);
	const Loom__Attr *a = loom_attr_find(attrs, n, fa->cfg.anchor);
	if (a == NULL || a->n_values == 0 || a->values[0]->v_case != LOOM__VALUE__V_STR)
		return NULL;
	return loom_strdup(a->values[0]->str);
}

Loom__ImportObject *fa_ldif_object(fileagent_t *fa, const loom_ldif_record_t *rec, const char **error_r)
{
	static char why[256];
	Loom__ImportObject *o;
	switch (rec->kind) {
	case LOOM_LDIF_CONTENT:
	case LOOM_LDIF_ADD:
		o = fa_object_new(rec->kind == LOOM_LDIF_ADD ? LOOM__IMPORT_OBJECT__CHANGE__ADD
							  : LOOM__IMPORT_OBJECT__CHANGE__FULL);
		ldif_attrs(&o->attrs, &o->n_attrs, rec->attrs, rec->nattrs);
		o->anchor = ldif_anchor(fa, rec->dn, o->attrs, o->n_attrs);
		if (o->anchor == NULL) {
			snprintf(why, sizeof why, "entry has no value for the anchor attribute '%s'", fa->cfg.anchor);
			loom__import_object__free_unpacked(o, NULL);
			*error_r = why;
			return NULL;
		}
		break;
	case LOOM_LDIF_DELETE:
		o = fa_object_new(LOOM__IMPORT_OBJECT__CHANGE__DELETE);
		/* Without a DN anchor the engine finds the anchor from the DN. */
		o->anchor = fa->dn_anchor ? fa_key(fa, rec->dn) : loom_strdup("");
		break;
	case LOOM_LDIF_MODIFY:
		o = fa_object_new(LOOM__IMPORT_OBJECT__CHANGE__UPDATE);
		o->anchor = fa->dn_anchor ? fa_key(fa, rec->dn) : loom_strdup("");
		o->deltas = loom_calloc(rec->nmods ? rec->nmods : 1, sizeof *o->deltas);
		for (size_t i = 0; i < rec->nmods; i++) {
			const loom_ldif_mod_t *m = &rec->mods[i];
			if (m->op == LOOM_LDIF_MOD_INCREMENT) {
				snprintf(why, sizeof why, "increment of '%s' cannot be imported: the file holds no current value",
				    m->attr.name);
				loom__import_object__free_unpacked(o, NULL);
				*error_r = why;
				return NULL;
			}
			Loom__AttrDelta *d = loom_malloc(sizeof *d);
			loom__attr_delta__init(d);
			d->name = loom_strdup(m->attr.name);
			d->op = m->op == LOOM_LDIF_MOD_ADD ? LOOM__ATTR_DELTA__OP__ADD
			    : m->op == LOOM_LDIF_MOD_DELETE ? LOOM__ATTR_DELTA__OP__DELETE : LOOM__ATTR_DELTA__OP__REPLACE;
			d->values = loom_calloc(m->attr.n ? m->attr.n : 1, sizeof *d->values);
			for (size_t k = 0; k < m->attr.n; k++)
				d->values[d->n_values++] = fa_value(m->attr.v[k].data, m->attr.v[k].len);
			o->deltas[o->n_deltas++] = d;
		}
		break;
	case LOOM_LDIF_MODRDN: {
		o = fa_object_new(LOOM__IMPORT_OBJECT__CHANGE__UPDATE);
		o->anchor = fa->dn_anchor ? fa_key(fa, rec->dn) : loom_strdup("");
		const char *parent = rec->newsuperior;
		if (parent == NULL) {
			/* The old parent: what follows the first unescaped comma. */
			const char *p = rec->dn;
			while (*p && !(*p == ',' && (p == rec->dn || p[-1] != '\\')))
				p++;
			parent = *p ? p + 1 : "";
		}
		o->new_dn = parent[0] ? loom_sprintf("%s,%s", rec->newrdn, parent) : loom_strdup(rec->newrdn);
		break;
	}
	default:
		*error_r = "unknown record kind";
		return NULL;
	}
	o->dn = loom_strndup(rec->dn, rec->dn_len);
	o->object_type = loom_strdup(fa->cfg.object_type ? fa->cfg.object_type : fa_ldif_type(o->attrs, o->n_attrs));
	return o;
}

const char *fa_format_name(int format)
{
	static const char *const names[] = { "csv", "ldif", "dsml", "fixed", "avp" };
	return format >= 0 && format < 5 ? names[format] : "?";
}

bool fa_format_has_changes(int format)
{
	return format == LOOM_FILE_LDIF || format == LOOM_FILE_DSML || format == LOOM_FILE_AVP;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

bool fa_change_file(int format, const char *name)
{
	if (name[0] == '.')
		return false;
	switch (format) {
	case LOOM_FILE_LDIF: return ends_with(name, ".ldif");
	case LOOM_FILE_DSML: return ends_with(name, ".xml") || ends_with(name, ".dsml");
	case LOOM_FILE_AVP: return ends_with(name, ".avp");
	default: return false;
	}
}

static void close_reader(fa_import_t *im)
{
	loom_csv_reader_destroy(&im->csv);
	loom_ldif_reader_destroy(&im->ldif);
	fa_reader_destroy(&im->rd);
	if (im->fd >= 0)
		close(im->fd);
	im->fd = -1;
}

void fa_import_stop(fileagent_t *fa)
{
	fa_import_t *im = &fa->imp;
	close_reader(im);
	for (size_t i = 0; i < im->nfiles; i++)
		free(im->files[i]);
	free(im->files);
	free(im->path);
	free(im->engine);
	free(im->watermark);
	memset(im, 0, sizeof *im);
	im->fd = -1;
}

static int open_file(fileagent_t *fa, const char *path, char **ret_error)
{
	fa_import_t *im = &fa->imp;
	close_reader(im);
	loom_pb_str_set(&im->path, path);
	im->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (im->fd < 0) {
		*ret_error = loom_sprintf("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fa->cfg.file.format == LOOM_FILE_CSV) {
		loom_csv_opts_t o;
		loom_csv_opts_default(&o);
		o.delimiter = fa->cfg.file.csv.delimiter[0];
		o.header = true;
		if (loom_csv_reader_open_fd(im->fd, path, &o, &im->csv, ret_error) < 0)
			return -1;
		im->anchor_col = im->dn_col = -1;
	} else if (fa->cfg.file.format == LOOM_FILE_LDIF) {
		loom_ldif_opts_t o;
		memset(&o, 0, sizeof o);
		o.allow_file_urls = fa->cfg.file.allow_file_urls;
		o.url_base_dir = fa->base_dir;
		im->ldif = loom_ldif_reader_new_fd(im->fd, &o);
	} else if (fa_reader_open(fa, im->fd, path, im->delta, &im->rd, ret_error) < 0) {
		return -1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Loom__RunObjectError *fa_object_error(const char *path, unsigned line, unsigned col, const char *msg)
{
	Loom__RunObjectError *e = loom_malloc(sizeof *e);
	loom__run_object_error__init(e);
	e->code = loom_strdup("malformed-record");
	e->message = loom_strdup(msg);
	e->where = col ? loom_sprintf("%s:%u:%u", path, line, col) : loom_sprintf("%s:%u", path, line);
	return e;
}

/* Next object: 1 object, 2 error, 0 end, -1 fatal (*ret_error malloc'd). */
static int next(fileagent_t *fa, Loom__ImportObject **ret, Loom__RunObjectError **ret_err, char **ret_error)
{
	fa_import_t *im = &fa->imp;
	for (;;) {
		if (im->csv) {
			loom_csv_record_t rec;
			loom_csv_error_t ce;
			int rc = loom_csv_read(im->csv, &rec, &ce);
			const char *const *cols;
			size_t ncols = loom_csv_columns(im->csv, &cols);
			if (rc < 0) {
				if (ce.fatal) {
					*ret_error = loom_sprintf("%s:%u:%u: %s", im->path, ce.line, ce.column, ce.message);
					return -1;
				}
				*ret_err = fa_object_error(im->path, ce.line, ce.column, ce.message);
				return 2;
			}
			if (rc == 0)
				return 0;
			if (im->anchor_col < 0 &&
			    fa_csv_columns(fa, im->path, cols, ncols, &im->anchor_col, &im->dn_col, ret_error) < 0)
				return -1;
			const char *why;
			Loom__ImportObject *o = fa_csv_object(fa, cols, ncols, &rec, im->anchor_col, im->dn_col, &why);
			if (o == NULL) {
				*ret_err = fa_object_error(im->path, rec.line, 0, why);
				return 2;
			}
			*ret = o;
			return 1;
		}
		if (im->rd) {
			int rc = fa_reader_next(im->rd, ret, ret_err, ret_error);
			if (rc != 0)
				return rc;
		}
		if (im->ldif) {
			loom_ldif_record_t rec;
			loom_ldif_error_t le;
			int rc = loom_ldif_read(im->ldif, &rec, &le);
			if (rc < 0) {
				if (le.fatal) {
					*ret_error = loom_sprintf("%s:%u: %s", im->path, le.line, le.message);
					return -1;
				}
				*ret_err = fa_object_error(im->path, le.line, le.column, le.message);
				return 2;
			}
			if (rc == 1) {
				if (!im->delta && rec.kind != LOOM_LDIF_CONTENT) {
					*ret_err = fa_object_error(im->path, rec.line, 0,
					    "a change record in a full import: full imports read entries, change files go in delta_dir");
					return 2;
				}
				const char *why;
				Loom__ImportObject *o = fa_ldif_object(fa, &rec, &why);
				if (o == NULL) {
					*ret_err = fa_object_error(im->path, rec.line, 0, why);
					return 2;
				}
				if (im->delta && rec.kind == LOOM_LDIF_CONTENT)
					o->change = LOOM__IMPORT_OBJECT__CHANGE__REPLACE;
				*ret = o;
				return 1;
			}
		}
		if (im->ldif || im->rd) {
			/* End of this file. */
			if (!im->delta)
				return 0;
			free(im->watermark);
			const char *slash = strrchr(im->path, '/');
			im->watermark = loom_strdup(slash ? slash + 1 : im->path);
			close_reader(im);
		}
		if (!im->delta || im->fi >= im->nfiles)
			return 0;
		char *path = loom_sprintf("%s/%s", fa->cfg.file.delta_dir, im->files[im->fi++]);
		int rc = open_file(fa, path, ret_error);
		free(path);
		if (rc < 0)
			return -1;
	}
}

static void send_batch(fileagent_t *fa, Loom__ImportBatch *b)
{
	loom_agent_send_batch(fa->d, fa->imp.engine, b);
}

static void send_failure(fileagent_t *fa, const char *message)
{
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = fa->imp.run_id;
	b.seq = ++fa->imp.seq;
	b.last = true;
	b.failed = true;
	b.message = (char *)message;
	send_batch(fa, &b);
	loom_error("import failed run=%llu: %s", (unsigned long long)fa->imp.run_id, message);
	fa_import_stop(fa);
}

/* Sends batches while there is credit. */
static void produce(fileagent_t *fa)
{
	fa_import_t *im = &fa->imp;
	while (im->active && im->credit > 0) {
		Loom__ImportBatch *b = loom_malloc(sizeof *b);
		loom__import_batch__init(b);
		b->run_id = im->run_id;
		b->objects = loom_calloc(im->batch_size, sizeof *b->objects);
		size_t items = 0;
		int rc = 1;
		char *fatal = NULL;
		while (items < im->batch_size) {
			Loom__ImportObject *o = NULL;
			Loom__RunObjectError *er = NULL;
			rc = next(fa, &o, &er, &fatal);
			if (rc == 1) {
				b->objects[b->n_objects++] = o;
			} else if (rc == 2) {
				b->errors = loom_realloc(b->errors, (b->n_errors + 1) * sizeof *b->errors);
				b->errors[b->n_errors++] = er;
			} else {
				break;
			}
			items++;
		}
		if (rc < 0) {
			loom__import_batch__free_unpacked(b, NULL);
			send_failure(fa, fatal);
			free(fatal);
			return;
		}
		b->seq = ++im->seq;
		im->objects += b->n_objects;
		if (rc == 0) {
			b->last = true;
			const char *wm = im->delta ? (im->watermark ? im->watermark : "") : "full";
			b->watermark.len = strlen(wm);
			b->watermark.data = (uint8_t *)loom_strdup(wm);
		}
		send_batch(fa, b);
		im->credit--;
		bool last = b->last;
		loom__import_batch__free_unpacked(b, NULL);
		if (last) {
			loom_info("import sent run=%llu objects=%llu batches=%llu", (unsigned long long)im->run_id,
			    (unsigned long long)im->objects, (unsigned long long)im->seq);
			fa_import_stop(fa);
		}
	}
}

void fa_import_start(fileagent_t *fa, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	fa_import_t *im = &fa->imp;
	if (im->active)
		loom_warning("abandoning import run=%llu for run=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)rq->run_id);
	fa_import_stop(fa);
	im->active = true;
	im->run_id = rq->run_id;
	im->engine = loom_strdup(env->from);
	im->delta = rq->delta;
	im->batch_size = rq->batch_size ? rq->batch_size : 500;
	im->credit = rq->credit ? rq->credit : 1;
	loom_info("import started run=%llu mode=%s", (unsigned long long)rq->run_id, rq->delta ? "delta" : "full");
	char *err = NULL;
	if (!rq->delta) {
		if (open_file(fa, fa->cfg.file.path, &err) < 0) {
			send_failure(fa, err);
			free(err);
			return;
		}
	} else {
		if (!fa_format_has_changes(fa->cfg.file.format)) {
			err = loom_sprintf("a %s file holds no changes: run a full import (delta import reads LDIF, DSML or "
					   "AVP change files)",
			    fa->cfg.file.format == LOOM_FILE_CSV ? "CSV" : "fixed-width");
			send_failure(fa, err);
			free(err);
			return;
		}
		if (fa->cfg.file.delta_dir == NULL) {
			err = loom_sprintf("delta import needs file.delta_dir, the directory of %s change files",
			    fa_format_name(fa->cfg.file.format));
			send_failure(fa, err);
			free(err);
			return;
		}
		DIR *d = opendir(fa->cfg.file.delta_dir);
		if (d == NULL) {
			err = loom_sprintf("cannot read delta_dir '%s': %s", fa->cfg.file.delta_dir, strerror(errno));
			send_failure(fa, err);
			free(err);
			return;
		}
		char *after = rq->watermark.len ? loom_strndup((const char *)rq->watermark.data, rq->watermark.len) : loom_strdup("");
		if (strcmp(after, "full") == 0)
			after[0] = '\0';
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!fa_change_file(fa->cfg.file.format, de->d_name))
				continue;
			if (strcmp(de->d_name, after) <= 0)
				continue;
			im->files = loom_realloc(im->files, (im->nfiles + 1) * sizeof *im->files);
			im->files[im->nfiles++] = loom_strdup(de->d_name);
		}
		closedir(d);
		if (im->nfiles)
			qsort(im->files, im->nfiles, sizeof *im->files, cmp_str);
		im->watermark = after;
		im->delta = true;
	}
	produce(fa);
}

void fa_import_credit(fileagent_t *fa, const Loom__ImportCredit *c)
{
	fa_import_t *im = &fa->imp;
	if (!im->active || c->run_id != im->run_id)
		return;
	if (c->abort) {
		loom_info("import aborted by the engine run=%llu", (unsigned long long)im->run_id);
		fa_import_stop(fa);
		return;
	}
	im->credit += c->credit;
	produce(fa);
}

/* ---- schema and connection test ------------------------------------------------------- */

int fa_scan(fileagent_t *fa, loom_schema_t *s, uint64_t max, uint64_t *ret_objects, uint64_t *ret_errors,
    char **ret_error)
{
	fa_import_t *im = &fa->imp;
	if (im->active) {
		*ret_error = loom_strdup("an import run is reading the file: ask again when it has ended");
		return -1;
	}
	im->delta = false;
	uint64_t n = 0, errors = 0;
	int rc = open_file(fa, fa->cfg.file.path, ret_error);
	while (rc == 0 && n < max) {
		Loom__ImportObject *o = NULL;
		Loom__RunObjectError *e = NULL;
		int r = next(fa, &o, &e, ret_error);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 0)
			break;
		if (r == 2) {
			errors++;
			loom__run_object_error__free_unpacked(e, NULL);
			continue;
		}
		if (s != NULL)
			loom_schema_object(s, o, "person", fa->cfg.anchor);
		loom__import_object__free_unpacked(o, NULL);
		n++;
	}
	fa_import_stop(fa);
	if (rc < 0)
		return -1;
	*ret_objects = n;
	*ret_errors = errors;
	return 0;
}
