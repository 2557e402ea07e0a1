/* ma_file_export.c - export to a file.
 *
 * export_mode apply (the file is the connected system): the changes of a run
 * are checked as they arrive (an update of an object the file does not hold
 * fails with no-such-object; an add without its anchor fails) and collected;
 * on the run's last batch the file is rewritten once, atomically (temporary,
 * fsync, rename), with every change applied. Applying is idempotent: an add
 * of an object already there replaces it, a delete of one already gone
 * succeeds, so a batch sent twice after a crash changes nothing twice.
 * A file that cannot be parsed whole is never rewritten: the run fails and
 * the changes stay pending in the engine.
 *
 * export_mode changes (LDIF, DSML, AVP): each run's changes are written as
 * one change file in changes_dir, named NAME-RUN.ldif (.xml, .avp).
 *
 * CSV and LDIF are rewritten here; DSML, fixed width and AVP through
 * ma_file_fmt.c's reader and writer (commit_fmt).
 */
#include "ma_file.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_buf.h"
#include "loom_file.h"
#include "loom_log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A collected change, packed. */
typedef struct blob {
	size_t len;                    /* bytes in data */
	uint8_t data[];                /* the packed ExportChange */
} blob_t;

/* The change collected under key, unpacked into ex->cur (which the next call
 * replaces), or NULL. */
static Loom__ExportChange *change_get(fa_export_t *ex, const char *key)
{
	if (ex->cur)
		loom__export_change__free_unpacked(ex->cur, NULL);
	ex->cur = NULL;
	blob_t *b = loom_map_gets(ex->changes, key);
	if (b)
		ex->cur = loom__export_change__unpack(NULL, b->len, b->data);
	return ex->cur;
}

static void change_put(fa_export_t *ex, const char *key, const Loom__ExportChange *c)
{
	size_t len = loom__export_change__get_packed_size(c);
	blob_t *b = loom_malloc(sizeof *b + len);
	b->len = len;
	loom__export_change__pack(c, b->data);
	free(loom_map_puts(ex->changes, key, b));
}

void fa_export_reset(fileagent_t *fa)
{
	fa_export_t *ex = &fa->exp;
	if (ex->cur)
		loom__export_change__free_unpacked(ex->cur, NULL);
	if (ex->changes) {
		size_t pos = 0;
		void *v;
		while (loom_map_next(ex->changes, &pos, NULL, NULL, &v))
			free(v);
		loom_map_destroy(&ex->changes);
	}
	loom_map_destroy(&ex->existing);
	for (size_t i = 0; i < ex->norder; i++)
		free(ex->order[i]);
	free(ex->order);
	memset(ex, 0, sizeof *ex);
}

static Loom__ExportChange *change_dup(const Loom__ExportChange *c)
{
	size_t len = loom__export_change__get_packed_size(c);
	uint8_t *buf = loom_malloc(len);
	loom__export_change__pack(c, buf);
	Loom__ExportChange *d = loom__export_change__unpack(NULL, len, buf);
	free(buf);
	return d;
}

/* The value of attribute name in a change's REPLACE deltas as text (an
 * integer anchor of a fixed-width file too), or NULL; valid until the next call. */
static const char *delta_value(const Loom__ExportChange *c, const char *name)
{
	static loom_buf_t t;
	for (size_t i = 0; i < c->n_deltas; i++)
		if (strcasecmp(c->deltas[i]->name, name) == 0 && c->deltas[i]->n_values) {
			const Loom__Value *v = c->deltas[i]->values[0];
			if (v->v_case == LOOM__VALUE__V_STR)
				return v->str;
			if (v->v_case != LOOM__VALUE__V_INT && v->v_case != LOOM__VALUE__V_REF)
				return NULL;
			loom_buf_reset(&t);
			loom_value_text(&t, v);
			return loom_buf_cstr(&t);
		}
	return NULL;
}

/* Reads the keys of every object in the file into ex->existing. A missing
 * file is empty. Returns 0, or -1 with *ret_error (malloc'd). */
static int load_existing(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	int fd = open(fa->cfg.file.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		*ret_error = loom_sprintf("cannot read '%s': %s", fa->cfg.file.path, strerror(errno));
		return -1;
	}
	ex->existing = loom_map_new();
	if (fd < 0)
		return 0;
	int rc = 0;
	if (fa->cfg.file.format == LOOM_FILE_CSV) {
		loom_csv_opts_t o;
		loom_csv_opts_default(&o);
		o.delimiter = fa->cfg.file.csv.delimiter[0];
		loom_csv_reader_t *r = NULL;
		if (loom_csv_reader_open_fd(fd, fa->cfg.file.path, &o, &r, ret_error) < 0) {
			close(fd);
			return -1;
		}
		loom_csv_record_t rec;
		loom_csv_error_t ce;
		long acol = -1, dcol = -1;
		int got;
		while ((got = loom_csv_read(r, &rec, &ce)) != 0) {
			if (got < 0) {
				*ret_error = loom_sprintf("%s:%u:%u: %s (fix the file before exporting to it)",
				    fa->cfg.file.path, ce.line, ce.column, ce.message);
				rc = -1;
				break;
			}
			const char *const *cols;
			size_t nc = loom_csv_columns(r, &cols);
			if (acol < 0 && fa_csv_columns(fa, fa->cfg.file.path, cols, nc, &acol, &dcol, ret_error) < 0) {
				rc = -1;
				break;
			}
			if ((size_t)acol < rec.n)
				loom_map_put(ex->existing, rec.v[acol], rec.len[acol], (void *)1);
		}
		loom_csv_reader_destroy(&r);
	} else if (fa->cfg.file.format != LOOM_FILE_LDIF) {
		fa_reader_t *r = NULL;
		if (fa_reader_open(fa, fd, fa->cfg.file.path, false, &r, ret_error) < 0) {
			close(fd);
			return -1;
		}
		for (;;) {
			Loom__ImportObject *o = NULL;
			Loom__RunObjectError *er = NULL;
			char *fatal = NULL;
			int got = fa_reader_next(r, &o, &er, &fatal);
			if (got == 0)
				break;
			if (got == 1) {
				loom_map_puts(ex->existing, o->anchor, (void *)1);
				loom__import_object__free_unpacked(o, NULL);
				continue;
			}
			*ret_error = got < 0 ? loom_sprintf("%s (fix the file before exporting to it)", fatal)
					     : loom_sprintf("%s: %s (fix the file before exporting to it)", er->where, er->message);
			free(fatal);
			if (er)
				loom__run_object_error__free_unpacked(er, NULL);
			rc = -1;
			break;
		}
		fa_reader_destroy(&r);
	} else {
		loom_ldif_reader_t *r = loom_ldif_reader_new_fd(fd, NULL);
		loom_ldif_record_t rec;
		loom_ldif_error_t le;
		int got;
		while ((got = loom_ldif_read(r, &rec, &le)) != 0) {
			if (got < 0) {
				*ret_error = loom_sprintf("%s:%u: %s (fix the file before exporting to it)",
				    fa->cfg.file.path, le.line, le.message);
				rc = -1;
				break;
			}
			const char *why;
			Loom__ImportObject *o = fa_ldif_object(fa, &rec, &why);
			if (o) {
				loom_map_puts(ex->existing, o->anchor, (void *)1);
				loom__import_object__free_unpacked(o, NULL);
			}
		}
		loom_ldif_reader_destroy(&r);
	}
	close(fd);
	if (rc < 0)
		loom_map_destroy(&ex->existing); /* read again by the next run */
	return rc;
}

/* A file holds references as text: a reference value (a DN the engine
 * resolved) is compared and written as the string it is (str and ref share
 * the oneof's storage, so retagging is the conversion). */
static void refs_as_text(Loom__ExportChange *c)
{
	for (size_t i = 0; i < c->n_deltas; i++)
		for (size_t k = 0; k < c->deltas[i]->n_values; k++)
			if (c->deltas[i]->values[k]->v_case == LOOM__VALUE__V_REF)
				c->deltas[i]->values[k]->v_case = LOOM__VALUE__V_STR;
}

/* Checks and collects one change. Fills res. */
static void collect(fileagent_t *fa, const Loom__ExportChange *c, Loom__ExportChangeResult *res)
{
	fa_export_t *ex = &fa->exp;
	refs_as_text((Loom__ExportChange *)c);
	res->change_id = c->change_id;
	char *key = NULL;
	if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
		const char *a = fa->dn_anchor ? c->dn : delta_value(c, fa->cfg.anchor);
		if (a == NULL || a[0] == '\0') {
			res->code = loom_strdup("missing-anchor");
			res->message = loom_sprintf("the object has no value for the anchor attribute '%s'", fa->cfg.anchor);
			return;
		}
		key = fa_key(fa, a);
	} else {
		const char *a = c->anchor[0] ? c->anchor : (fa->dn_anchor ? c->dn : NULL);
		if (a == NULL || a[0] == '\0') {
			res->code = loom_strdup("missing-anchor");
			res->message = loom_strdup("the change names no object");
			return;
		}
		key = fa_key(fa, a);
		/* In export_mode changes the agent does not hold the system's
		 * objects (existing is NULL): the consumer of the change file is
		 * the judge of an update to an object it lacks. */
		bool known = ex->existing == NULL || loom_map_gets(ex->existing, key) != NULL ||
		    loom_map_gets(ex->changes, key) != NULL;
		if (c->op == LOOM__EXPORT_CHANGE__OP__UPDATE && !known) {
			res->code = loom_strdup("no-such-object");
			res->message = loom_sprintf("'%s' is not in %s", c->dn, fa->cfg.file.path);
			free(key);
			return;
		}
	}
	if (fa->cfg.file.format == LOOM_FILE_FIXED) {
		char *msg = NULL;
		const char *code = fa_fixed_check(fa, c, &msg);
		if (code) {
			res->code = loom_strdup(code);
			res->message = msg;
			free(key);
			return;
		}
	}
	Loom__ExportChange *prev = change_get(ex, key);
	if (prev && prev->op == LOOM__EXPORT_CHANGE__OP__ADD && c->op == LOOM__EXPORT_CHANGE__OP__UPDATE) {
		/* An update of an object added in this run: fold it into the add. */
		Loom__ExportChange *d = change_dup(c);
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		loom_attrs_apply(&attrs, &n, prev->deltas, prev->n_deltas);
		loom_attrs_apply(&attrs, &n, c->deltas, c->n_deltas);
		loom_deltas_free(d->deltas, d->n_deltas);
		Loom__Attr **none = NULL;
		loom_attrs_diff(none, 0, attrs, n, &d->deltas, &d->n_deltas);
		loom_attrs_free(attrs, n);
		d->op = LOOM__EXPORT_CHANGE__OP__ADD;
		change_put(ex, key, d);
		loom__export_change__free_unpacked(d, NULL);
	} else {
		change_put(ex, key, c);
	}
	if (prev == NULL) {
		if (ex->norder == ex->order_cap) {
			ex->order_cap = ex->order_cap ? ex->order_cap * 2 : 256;
			ex->order = loom_realloc(ex->order, ex->order_cap * sizeof *ex->order);
		}
		ex->order[ex->norder++] = loom_strdup(key);
	}
	res->ok = true;
	/* A rename of an object anchored on its DN gives it a new anchor. */
	if (fa->dn_anchor && c->op == LOOM__EXPORT_CHANGE__OP__UPDATE && c->new_dn[0]) {
		free(key);
		key = fa_key(fa, c->new_dn);
	}
	res->anchor = key;
}

/* ---- writing records -------------------------------------------------------------- */

typedef struct ldif_build {
	loom_ldif_attr_t *attrs;       /* one per Attr */
	loom_ldif_value_t *vals;       /* all values */
} ldif_build_t;

static void ldif_content(const char *dn, Loom__Attr *const *attrs, size_t n, loom_ldif_record_t *rec, ldif_build_t *bd,
    loom_buf_t *scratch)
{
	size_t nv = 0;
	for (size_t i = 0; i < n; i++)
		nv += attrs[i]->n_values;
	bd->attrs = loom_calloc(n ? n : 1, sizeof *bd->attrs);
	bd->vals = loom_calloc(nv ? nv : 1, sizeof *bd->vals);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bd->attrs[i].name = attrs[i]->name;
		bd->attrs[i].v = &bd->vals[k];
		bd->attrs[i].n = attrs[i]->n_values;
		for (size_t j = 0; j < attrs[i]->n_values; j++, k++) {
			const Loom__Value *v = attrs[i]->values[j];
			if (v->v_case == LOOM__VALUE__V_BIN) {
				bd->vals[k].data = (const char *)v->bin.data;
				bd->vals[k].len = v->bin.len;
			} else if (v->v_case == LOOM__VALUE__V_STR || v->v_case == LOOM__VALUE__V_REF) {
				const char *s = v->v_case == LOOM__VALUE__V_STR ? v->str : v->ref;
				bd->vals[k].data = s;
				bd->vals[k].len = strlen(s);
			} else {
				/* Numbers, booleans and times are written as text. */
				(void)scratch;
				loom_buf_t t = LOOM_BUF_INIT;
				loom_value_text(&t, v);
				bd->vals[k].len = t.len;
				bd->vals[k].data = loom_buf_steal(&t);
			}
		}
	}
	memset(rec, 0, sizeof *rec);
	rec->kind = LOOM_LDIF_CONTENT;
	rec->dn = dn;
	rec->dn_len = strlen(dn);
	rec->nattrs = n;
	rec->attrs = bd->attrs;
}

static void ldif_build_free(ldif_build_t *bd, Loom__Attr *const *attrs, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < attrs[i]->n_values; j++, k++) {
			Loom__Value__VCase vc = attrs[i]->values[j]->v_case;
			if (vc != LOOM__VALUE__V_BIN && vc != LOOM__VALUE__V_STR && vc != LOOM__VALUE__V_REF)
				free((char *)bd->vals[k].data);
		}
	free(bd->attrs);
	free(bd->vals);
}

/* The object a change leaves: the old attributes with the change applied. */
static void apply_change(const Loom__ExportChange *c, Loom__Attr ***attrs, size_t *n)
{
	if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
		loom_attrs_free(*attrs, *n);
		*attrs = NULL;
		*n = 0;
	}
	loom_attrs_apply(attrs, n, c->deltas, c->n_deltas);
}

static char *cell_text(fileagent_t *fa, const Loom__Attr *a)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (size_t i = 0; a && i < a->n_values; i++) {
		if (i && fa->sep[0])
			loom_buf_addc(&b, fa->sep[0]);
		else if (i)
			break; /* no separator: one value per cell */
		loom_value_text(&b, a->values[i]);
	}
	return loom_buf_steal(&b);
}

static int write_csv_row(fileagent_t *fa, loom_csv_writer_t *w, char **cols, size_t ncols, Loom__Attr *const *attrs,
    size_t n, char **ret_error)
{
	char **cells = loom_calloc(ncols, sizeof *cells);
	for (size_t c = 0; c < ncols; c++)
		cells[c] = cell_text(fa, loom_attr_find(attrs, n, cols[c]));
	int rc = loom_csv_write(w, ncols, (const char *const *)cells, NULL, ret_error);
	for (size_t c = 0; c < ncols; c++)
		free(cells[c]);
	free(cells);
	return rc;
}

/* rec's fields as they are, then empty cells up to ncols. */
static int write_csv_verbatim(loom_csv_writer_t *w, size_t ncols, const loom_csv_record_t *rec, char **ret_error)
{
	const char **cells = loom_calloc(ncols, sizeof *cells);
	size_t *lens = loom_calloc(ncols, sizeof *lens);
	for (size_t c = 0; c < ncols; c++) {
		cells[c] = c < rec->n ? rec->v[c] : "";
		lens[c] = c < rec->n ? rec->len[c] : 0;
	}
	int rc = loom_csv_write(w, ncols, cells, lens, ret_error);
	free(cells);
	free(lens);
	return rc;
}

static void add_column(char ***cols, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*cols)[i], name) == 0)
			return;
	*cols = loom_realloc(*cols, (*n + 1) * sizeof **cols);
	(*cols)[(*n)++] = loom_strdup(name);
}

/* Rewrites the CSV file with every collected change applied. */
static int commit_csv(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	loom_csv_opts_t o;
	loom_csv_opts_default(&o);
	o.delimiter = fa->cfg.file.csv.delimiter[0];
	char **cols = NULL;
	size_t ncols = 0;
	loom_csv_reader_t *r = NULL;
	int fd = open(fa->cfg.file.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) { /* only a missing file is an empty one */
		*ret_error = loom_sprintf("cannot read '%s': %s", fa->cfg.file.path, strerror(errno));
		return -1;
	}
	if (fd >= 0 && loom_csv_reader_open_fd(fd, fa->cfg.file.path, &o, &r, ret_error) < 0) {
		close(fd);
		return -1;
	}
	/* The header: the file's columns, then new attributes in arrival order. */
	loom_csv_record_t rec;
	loom_csv_error_t ce;
	int got = r ? loom_csv_read(r, &rec, &ce) : 0;
	const char *const *fcols = NULL;
	size_t nfcols = r ? loom_csv_columns(r, &fcols) : 0;
	for (size_t i = 0; i < nfcols; i++)
		add_column(&cols, &ncols, fcols[i]);
	add_column(&cols, &ncols, fa->cfg.anchor);
	for (size_t i = 0; i < ex->norder; i++) {
		Loom__ExportChange *c = change_get(ex, ex->order[i]);
		for (size_t k = 0; c && k < c->n_deltas; k++)
			if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE && c->deltas[k]->n_values)
				add_column(&cols, &ncols, c->deltas[k]->name);
	}
	loom_atomic_t af;
	int rc = -1;
	loom_map_t *done = loom_map_new();
	if (loom_atomic_open(&af, fa->cfg.file.path, 0644, ret_error) < 0)
		goto out;
	loom_csv_writer_t *w = loom_csv_writer_new_fd(af.fd, af.tmp, &o);
	if (loom_csv_write(w, ncols, (const char *const *)cols, NULL, ret_error) < 0)
		goto abort;
	long acol = -1, dcol = -1;
	if (got > 0 && fa_csv_columns(fa, fa->cfg.file.path, fcols, nfcols, &acol, &dcol, ret_error) < 0)
		goto abort;
	while (got != 0) {
		if (got < 0) {
			*ret_error = loom_sprintf("%s:%u:%u: %s (fix the file before exporting to it)", fa->cfg.file.path,
			    ce.line, ce.column, ce.message);
			goto abort;
		}
		if (rec.n == nfcols && ncols >= nfcols && rec.len[acol] > 0 &&
		    loom_map_get(ex->changes, rec.v[acol], rec.len[acol]) == NULL) {
			/* A row the export does not change is written as it was read
			 * (padded for new columns): not rebuilt through its values. */
			int wrc = write_csv_verbatim(w, ncols, &rec, ret_error);
			if (wrc < 0)
				goto abort;
			got = loom_csv_read(r, &rec, &ce);
			continue;
		}
		const char *why;
		Loom__ImportObject *obj = fa_csv_object(fa, fcols, nfcols, &rec, acol, dcol, &why);
		if (obj == NULL) {
			*ret_error = loom_sprintf("%s:%u: %s (fix the file before exporting to it)", fa->cfg.file.path,
			    rec.line, why);
			goto abort;
		}
		Loom__ExportChange *c = change_get(ex, obj->anchor);
		if (c) {
			loom_map_puts(done, obj->anchor, (void *)1);
			if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE) {
				apply_change(c, &obj->attrs, &obj->n_attrs);
				if (write_csv_row(fa, w, cols, ncols, obj->attrs, obj->n_attrs, ret_error) < 0) {
					loom__import_object__free_unpacked(obj, NULL);
					goto abort;
				}
			}
		} else if (write_csv_row(fa, w, cols, ncols, obj->attrs, obj->n_attrs, ret_error) < 0) {
			loom__import_object__free_unpacked(obj, NULL);
			goto abort;
		}
		loom__import_object__free_unpacked(obj, NULL);
		got = loom_csv_read(r, &rec, &ce);
	}
	for (size_t i = 0; i < ex->norder; i++) {
		Loom__ExportChange *c = change_get(ex, ex->order[i]);
		if (c == NULL || c->op != LOOM__EXPORT_CHANGE__OP__ADD || loom_map_gets(done, ex->order[i]))
			continue;
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		apply_change(c, &attrs, &n);
		int wrc = write_csv_row(fa, w, cols, ncols, attrs, n, ret_error);
		loom_attrs_free(attrs, n);
		if (wrc < 0)
			goto abort;
	}
	if (loom_csv_writer_flush(w, ret_error) < 0)
		goto abort;
	loom_csv_writer_destroy(&w);
	rc = loom_atomic_commit(&af, ret_error);
	goto out;
abort:
	loom_csv_writer_destroy(&w);
	loom_atomic_abort(&af);
out:
	loom_map_destroy(&done);
	loom_csv_reader_destroy(&r);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < ncols; i++)
		free(cols[i]);
	free(cols);
	return rc;
}

/* Writes what out holds to fd once it passes 64 KiB (or always when flush). */
static int spill(loom_buf_t *out, int fd, const char *tmp, bool flush, char **ret_error)
{
	if (out->len == 0 || (!flush && out->len < 65536))
		return 0;
	if (loom_write_all(fd, out->data, out->len) < 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", tmp, strerror(errno));
		return -1;
	}
	loom_buf_reset(out);
	return 0;
}

static int write_ldif_object(loom_ldif_writer_t *w, loom_buf_t *out, const loom_atomic_t *af, const char *dn,
    Loom__Attr *const *attrs, size_t n, char **ret_error)
{
	loom_ldif_record_t rec;
	ldif_build_t bd;
	ldif_content(dn, attrs, n, &rec, &bd, NULL);
	const char *err;
	int rc = loom_ldif_write(w, &rec, &err);
	ldif_build_free(&bd, attrs, n);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot write entry '%s': %s", dn, err);
		return -1;
	}
	return spill(out, af->fd, af->tmp, false, ret_error);
}

/* Rewrites the LDIF file with every collected change applied. */
static int commit_ldif(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	loom_atomic_t af;
	if (loom_atomic_open(&af, fa->cfg.file.path, 0644, ret_error) < 0)
		return -1;
	loom_buf_t out = LOOM_BUF_INIT;
	loom_ldif_writer_opts_t wo = { .version = true };
	loom_ldif_writer_t *w = loom_ldif_writer_new(&out, &wo);
	loom_map_t *done = loom_map_new();
	int rc = -1;
	loom_ldif_reader_t *r = NULL;
	int fd = open(fa->cfg.file.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) { /* only a missing file is an empty one */
		*ret_error = loom_sprintf("cannot read '%s': %s", fa->cfg.file.path, strerror(errno));
		goto out;
	}
	if (fd >= 0)
		r = loom_ldif_reader_new_fd(fd, NULL);
	loom_ldif_record_t rec;
	loom_ldif_error_t le;
	int got;
	while (r && (got = loom_ldif_read(r, &rec, &le)) != 0) {
		if (got < 0) {
			*ret_error = loom_sprintf("%s:%u: %s (fix the file before exporting to it)", fa->cfg.file.path,
			    le.line, le.message);
			goto out;
		}
		const char *why;
		Loom__ImportObject *obj = fa_ldif_object(fa, &rec, &why);
		if (obj == NULL) {
			*ret_error = loom_sprintf("%s:%u: %s (fix the file before exporting to it)", fa->cfg.file.path,
			    rec.line, why);
			goto out;
		}
		Loom__ExportChange *c = change_get(ex, obj->anchor);
		int wrc = 0;
		if (c) {
			loom_map_puts(done, obj->anchor, (void *)1);
			if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE) {
				apply_change(c, &obj->attrs, &obj->n_attrs);
				wrc = write_ldif_object(w, &out, &af, c->new_dn[0] ? c->new_dn : obj->dn, obj->attrs,
				    obj->n_attrs, ret_error);
			}
		} else {
			wrc = write_ldif_object(w, &out, &af, obj->dn, obj->attrs, obj->n_attrs, ret_error);
		}
		loom__import_object__free_unpacked(obj, NULL);
		if (wrc < 0)
			goto out;
	}
	for (size_t i = 0; i < ex->norder; i++) {
		Loom__ExportChange *c = change_get(ex, ex->order[i]);
		if (c == NULL || c->op != LOOM__EXPORT_CHANGE__OP__ADD || loom_map_gets(done, ex->order[i]))
			continue;
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		apply_change(c, &attrs, &n);
		int wrc = write_ldif_object(w, &out, &af, c->new_dn[0] ? c->new_dn : c->dn, attrs, n, ret_error);
		loom_attrs_free(attrs, n);
		if (wrc < 0)
			goto out;
	}
	if (spill(&out, af.fd, af.tmp, true, ret_error) < 0)
		goto out;
	rc = loom_atomic_commit(&af, ret_error);
out:
	if (rc < 0 && af.path)
		loom_atomic_abort(&af);
	loom_ldif_reader_destroy(&r);
	if (fd >= 0)
		close(fd);
	loom_ldif_writer_destroy(&w);
	loom_buf_release(&out);
	loom_map_destroy(&done);
	return rc;
}

/* Rewrites a DSML, fixed-width or AVP file with every collected change
 * applied (what commit_ldif does for LDIF). */
static int commit_fmt(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	loom_atomic_t af;
	memset(&af, 0, sizeof af);
	loom_buf_t out = LOOM_BUF_INIT;
	loom_map_t *done = loom_map_new();
	fa_reader_t *r = NULL;
	fa_writer_t *w = NULL;
	int rc = -1;
	int fd = open(fa->cfg.file.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) { /* only a missing file is an empty one */
		*ret_error = loom_sprintf("cannot read '%s': %s", fa->cfg.file.path, strerror(errno));
		goto out;
	}
	if (fd >= 0 && fa_reader_open(fa, fd, fa->cfg.file.path, false, &r, ret_error) < 0)
		goto out;
	if (loom_atomic_open(&af, fa->cfg.file.path, 0644, ret_error) < 0)
		goto out;
	bool started = false;
	for (;;) {
		Loom__ImportObject *obj = NULL;
		Loom__RunObjectError *er = NULL;
		char *fatal = NULL;
		int got = r ? fa_reader_next(r, &obj, &er, &fatal) : 0;
		if (!started) {
			/* The fixed layout's header lines are known once the first record is read. */
			size_t hlen;
			const char *h = fa_reader_header(r, &hlen);
			w = fa_writer_new(fa, &out, false, h, hlen);
			started = true;
		}
		if (got == 0)
			break;
		if (got != 1) {
			*ret_error = got < 0 ? loom_sprintf("%s (fix the file before exporting to it)", fatal)
					     : loom_sprintf("%s: %s (fix the file before exporting to it)", er->where, er->message);
			free(fatal);
			if (er)
				loom__run_object_error__free_unpacked(er, NULL);
			goto out;
		}
		Loom__ExportChange *c = change_get(ex, obj->anchor);
		int wrc = 0;
		if (c) {
			loom_map_puts(done, obj->anchor, (void *)1);
			if (c->op != LOOM__EXPORT_CHANGE__OP__DELETE) {
				apply_change(c, &obj->attrs, &obj->n_attrs);
				wrc = fa_writer_object(w, c->new_dn[0] ? c->new_dn : obj->dn, obj->attrs, obj->n_attrs, ret_error);
			}
		} else {
			wrc = fa_writer_object(w, obj->dn, obj->attrs, obj->n_attrs, ret_error);
		}
		loom__import_object__free_unpacked(obj, NULL);
		if (wrc < 0 || spill(&out, af.fd, af.tmp, false, ret_error) < 0)
			goto out;
	}
	for (size_t i = 0; i < ex->norder; i++) {
		Loom__ExportChange *c = change_get(ex, ex->order[i]);
		if (c == NULL || c->op != LOOM__EXPORT_CHANGE__OP__ADD || loom_map_gets(done, ex->order[i]))
			continue;
		Loom__Attr **attrs = NULL;
		size_t n = 0;
		apply_change(c, &attrs, &n);
		int wrc = fa_writer_object(w, c->new_dn[0] ? c->new_dn : c->dn, attrs, n, ret_error);
		loom_attrs_free(attrs, n);
		if (wrc < 0 || spill(&out, af.fd, af.tmp, false, ret_error) < 0)
			goto out;
	}
	fa_writer_finish(w);
	if (spill(&out, af.fd, af.tmp, true, ret_error) < 0)
		goto out;
	rc = loom_atomic_commit(&af, ret_error);
out:
	if (rc < 0 && af.path)
		loom_atomic_abort(&af);
	fa_writer_destroy(&w);
	fa_reader_destroy(&r);
	if (fd >= 0)
		close(fd);
	loom_buf_release(&out);
	loom_map_destroy(&done);
	return rc;
}

/* export_mode changes for DSML and AVP: one change file per run. */
static int commit_changes_fmt(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	loom_buf_t out = LOOM_BUF_INIT;
	fa_writer_t *w = fa_writer_new(fa, &out, true, NULL, 0);
	int rc = 0;
	for (size_t i = 0; i < ex->norder && rc == 0; i++)
		rc = fa_writer_change(w, change_get(ex, ex->order[i]), ret_error);
	fa_writer_finish(w);
	fa_writer_destroy(&w);
	if (rc == 0) {
		char *path = loom_sprintf("%s/%s-%06llu.%s", fa->cfg.file.changes_dir, fa->name,
		    (unsigned long long)ex->run_id, fa->cfg.file.format == LOOM_FILE_DSML ? "xml" : "avp");
		rc = loom_file_replace(path, out.data ? out.data : "", out.len, 0644, ret_error);
		if (rc == 0)
			loom_info("wrote change file path=%s changes=%zu", path, ex->norder);
		free(path);
	}
	loom_buf_release(&out);
	return rc;
}

/* export_mode changes: one change file per run. */
static int commit_changes(fileagent_t *fa, char **ret_error)
{
	fa_export_t *ex = &fa->exp;
	if (!fa_format_has_changes(fa->cfg.file.format) || fa->cfg.file.changes_dir == NULL) {
		*ret_error = loom_strdup("export_mode changes needs format ldif, dsml or avp and file.changes_dir");
		return -1;
	}
	if (mkdir(fa->cfg.file.changes_dir, 0755) < 0 && errno != EEXIST) {
		*ret_error = loom_sprintf("cannot create changes_dir '%s': %s", fa->cfg.file.changes_dir, strerror(errno));
		return -1;
	}
	if (fa->cfg.file.format != LOOM_FILE_LDIF)
		return commit_changes_fmt(fa, ret_error);
	loom_buf_t out = LOOM_BUF_INIT;
	loom_ldif_writer_opts_t wo = { .version = true };
	loom_ldif_writer_t *w = loom_ldif_writer_new(&out, &wo);
	int rc = 0;
	for (size_t i = 0; i < ex->norder && rc == 0; i++) {
		Loom__ExportChange *c = change_get(ex, ex->order[i]);
		loom_ldif_record_t rec;
		memset(&rec, 0, sizeof rec);
		rec.dn = c->dn;
		rec.dn_len = strlen(c->dn);
		const char *err;
		if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE) {
			rec.kind = LOOM_LDIF_DELETE;
			rc = loom_ldif_write(w, &rec, &err);
		} else if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
			Loom__Attr **attrs = NULL;
			size_t n = 0;
			apply_change(c, &attrs, &n);
			ldif_build_t bd;
			ldif_content(c->dn, attrs, n, &rec, &bd, NULL);
			rec.kind = LOOM_LDIF_ADD;
			rc = loom_ldif_write(w, &rec, &err);
			ldif_build_free(&bd, attrs, n);
			loom_attrs_free(attrs, n);
		} else {
			/* Replace per attribute, as REPLACE deltas say. */
			Loom__Attr **attrs = NULL;
			size_t n = 0;
			loom_attrs_apply(&attrs, &n, c->deltas, c->n_deltas);
			loom_ldif_mod_t *mods = loom_calloc(c->n_deltas ? c->n_deltas : 1, sizeof *mods);
			ldif_build_t bd;
			loom_ldif_record_t tmp;
			ldif_content(c->dn, attrs, n, &tmp, &bd, NULL);
			for (size_t k = 0; k < c->n_deltas; k++) {
				mods[k].op = LOOM_LDIF_MOD_REPLACE;
				mods[k].attr.name = c->deltas[k]->name;
				for (size_t j = 0; j < n; j++)
					if (strcasecmp(bd.attrs[j].name, c->deltas[k]->name) == 0)
						mods[k].attr = bd.attrs[j];
			}
			rec.kind = LOOM_LDIF_MODIFY;
			rec.nmods = c->n_deltas;
			rec.mods = mods;
			rc = loom_ldif_write(w, &rec, &err);
			ldif_build_free(&bd, attrs, n);
			loom_attrs_free(attrs, n);
			free(mods);
		}
		if (rc < 0)
			*ret_error = loom_sprintf("cannot write change for '%s': %s", c->dn, err);
	}
	if (rc == 0) {
		char *path = loom_sprintf("%s/%s-%06llu.ldif", fa->cfg.file.changes_dir, fa->name,
		    (unsigned long long)ex->run_id);
		rc = loom_file_replace(path, out.data ? out.data : "", out.len, 0644, ret_error);
		if (rc == 0)
			loom_info("wrote change file path=%s changes=%zu", path, ex->norder);
		free(path);
	}
	loom_ldif_writer_destroy(&w);
	loom_buf_release(&out);
	return rc;
}

void fa_export_batch(fileagent_t *fa, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	fa_export_t *ex = &fa->exp;
	if (!ex->active || ex->run_id != b->run_id) {
		if (ex->active)
			loom_warning("export abandoned run=%llu changes=%zu (a new run started before its last batch)",
			    (unsigned long long)ex->run_id, ex->norder);
		fa_export_reset(fa);
		ex->active = true;
		ex->run_id = b->run_id;
		ex->changes = loom_map_new();
		loom_info("export started run=%llu", (unsigned long long)b->run_id);
	}
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = b->run_id;
	rs.seq = b->seq;
	char *err = NULL;
	if (fa->cfg.file.export_mode == LOOM_EXPORT_APPLY && ex->existing == NULL && load_existing(fa, &err) < 0) {
		rs.failed = true;
		rs.message = err;
	}
	rs.results = loom_calloc(b->n_changes ? b->n_changes : 1, sizeof *rs.results);
	for (size_t i = 0; !rs.failed && i < b->n_changes; i++) {
		Loom__ExportChangeResult *res = loom_malloc(sizeof *res);
		loom__export_change_result__init(res);
		collect(fa, b->changes[i], res);
		rs.results[rs.n_results++] = res;
	}
	if (!rs.failed && b->last) {
		int rc = fa->cfg.file.export_mode == LOOM_EXPORT_CHANGES ? commit_changes(fa, &err)
		    : fa->cfg.file.format == LOOM_FILE_CSV			? commit_csv(fa, &err)
		    : fa->cfg.file.format == LOOM_FILE_LDIF		? commit_ldif(fa, &err)
									: commit_fmt(fa, &err);
		if (rc < 0) {
			rs.failed = true;
			rs.message = err;
			loom_error("export failed run=%llu: %s", (unsigned long long)b->run_id, err);
		} else {
			loom_info("export applied run=%llu changes=%zu file=%s", (unsigned long long)b->run_id, ex->norder,
			    fa->cfg.file.path);
		}
	}
	const char *serr;
	if (loom_bus_reply(loom_daemon_bus(fa->d), env, &rs.base, &serr) < 0)
		loom_warning("cannot send export results run=%llu: %s", (unsigned long long)b->run_id, serr);
	if (b->last || rs.failed)
		fa_export_reset(fa);
	for (size_t i = 0; i < rs.n_results; i++)
		loom__export_change_result__free_unpacked(rs.results[i], NULL);
	free(rs.results);
	if (rs.failed)
		free(rs.message);
}
