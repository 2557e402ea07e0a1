/* ma_sql_io.c - loom-ma-sql's import and export.
 *
 * Import runs in one read transaction (PostgreSQL: REPEATABLE READ READ
 * ONLY, so every table and the watermark come from one snapshot; SQLite: a
 * read transaction). A full import reads each table through a cursor, a
 * batch at a time under the engine's credit, and fetches the batch's
 * multi-valued attributes with one query per table segment (anchor IN
 * ...). Each row is an object: its columns are its attributes (NULL: no
 * value), the anchor column names it (a NULL anchor is an error on that
 * row, "table T row N"), the DN is the dn_column or ANCHOR=VALUE.
 *
 * The watermark is taken by the server, inside the import's snapshot:
 *   changes   PostgreSQL: the snapshot itself (pg_current_snapshot()); a
 *             delta reads the change rows whose transaction it did not see
 *             (pg_visible_in_snapshot), which is exact even for
 *             transactions that were still open. SQLite: the highest seq
 *             (writers are serialized, so seq order is commit order).
 *             Each changed (object type, anchor) is read again from its
 *             table: there, it is a replace; gone, a delete.
 *   modified  the server's clock at the start of the snapshot; a delta
 *             reads rows whose modified column is at or after the last
 *             watermark minus delta.overlap (transactions open when it was
 *             taken). Rows read twice are replaced twice, harmlessly; a
 *             deleted row is not seen (a full import finds it) unless the
 *             table has a deleted_column (soft delete, below).
 * Soft delete (deleted_column): a row whose value there is neither NULL
 * nor false (0, f, false, "") is gone: a full import skips it (the engine
 * then sees the object missing), a delta reports it as a DELETE (both
 * modes). Only the change table sees rows deleted for real.
 * A watermark of another mode or driver is refused (watermark_lost): the
 * engine then runs a full import.
 *
 * Export applies each batch in one transaction. It first runs the batch's
 * statements straight; when one fails, the batch is rolled back and
 * applied again with a savepoint per change, so that a change the
 * database refuses is rolled back alone and reported with the database's
 * message (constraint-violation, or retryable for serialization failures
 * and busy databases) while the others commit. The batch commits once; a
 * failed COMMIT fails the whole batch. An add of an
 * anchor already there updates it (a batch sent again after a crash
 * changes nothing twice); an add without its anchor lets the database make
 * one (RETURNING) and reports it.
 */
#include "ma_sql.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_log.h"
#include "loom_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const loom_agentcfg_sql_table_t *sa_table(const sqlagent_t *sa, const char *object_type)
{
	const loom_agentcfg_sql_table_t *t = sa->cfg.sql.tables.v;
	for (size_t i = 0; object_type && i < sa->cfg.sql.tables.n; i++)
		if (strcasecmp(t[i].object_type, object_type) == 0)
			return &t[i];
	return &t[0];
}

static const loom_agentcfg_sql_table_t *table_at(const sqlagent_t *sa, size_t i)
{
	return &((const loom_agentcfg_sql_table_t *)sa->cfg.sql.tables.v)[i];
}

static bool pg(const sqlagent_t *sa)
{
	return sa->cfg.sql.driver == LOOM_SQL_POSTGRESQL;
}

/* ---- import: objects from rows -------------------------------------------------- */

static const char *deleted_col(const sqlagent_t *sa, const loom_agentcfg_sql_table_t *t)
{
	return t->deleted_column ? t->deleted_column : sa->cfg.sql.delta.deleted_column;
}

/* Whether the current row of st is soft-deleted: 1 yes, 0 no, -1 when the
 * column is not in the table (*ret_err: an error on the row). */
static int row_deleted(const loom_agentcfg_sql_table_t *t, const char *col, sql_stmt_t *st, uint64_t rowno,
    Loom__RunObjectError **ret_err)
{
	if (col == NULL)
		return 0;
	for (size_t i = 0; i < sql_ncols(st); i++) {
		if (strcasecmp(sql_colname(st, i), col) != 0)
			continue;
		const char *v = sql_text(st, i);
		if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0 || strcasecmp(v, "f") == 0 ||
		    strcasecmp(v, "false") == 0)
			return 0;
		return 1;
	}
	Loom__RunObjectError *e = loom_malloc(sizeof *e);
	loom__run_object_error__init(e);
	e->anchor = loom_strdup("");
	e->code = loom_strdup("malformed-record");
	e->message = loom_sprintf("the deleted_column '%s' is not a column of '%s'", col, t->table);
	e->where = loom_sprintf("table %s row %llu", t->table, (unsigned long long)rowno);
	*ret_err = e;
	return -1;
}

/* A DELETE of the current row's anchor (soft-deleted), or NULL when the
 * row has no anchor (then it is skipped: there is nothing to delete). */
static Loom__ImportObject *row_delete(const loom_agentcfg_sql_table_t *t, sql_stmt_t *st)
{
	for (size_t i = 0; i < sql_ncols(st); i++)
		if (strcasecmp(sql_colname(st, i), t->anchor) == 0 && sql_text(st, i) && sql_text(st, i)[0]) {
			Loom__ImportObject *o = loom_malloc(sizeof *o);
			loom__import_object__init(o);
			o->change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
			o->anchor = loom_strdup(sql_text(st, i));
			o->object_type = loom_strdup(t->object_type);
			return o;
		}
	return NULL;
}

/* The object of the current row of st; NULL with *ret_err for a row that
 * makes none. */
static Loom__ImportObject *row_object(const loom_agentcfg_sql_table_t *t, sql_stmt_t *st,
    uint64_t rowno, Loom__ImportObject__Change change, Loom__RunObjectError **ret_err)
{
	size_t nc = sql_ncols(st);
	long ac = -1, dc = -1;
	for (size_t i = 0; i < nc; i++) {
		if (strcasecmp(sql_colname(st, i), t->anchor) == 0)
			ac = (long)i;
		if (t->dn_column && strcasecmp(sql_colname(st, i), t->dn_column) == 0)
			dc = (long)i;
	}
	const char *why = NULL;
	char msg[300];
	const char *anchor = ac >= 0 ? sql_text(st, (size_t)ac) : NULL;
	if (ac < 0) {
		snprintf(msg, sizeof msg, "the anchor column '%s' is not a column of '%s'", t->anchor, t->table);
		why = msg;
	} else if (anchor == NULL || anchor[0] == '\0') {
		snprintf(msg, sizeof msg, "%s in the anchor column '%s'", anchor ? "an empty value" : "NULL", t->anchor);
		why = msg;
	} else if (t->dn_column && (dc < 0 || sql_text(st, (size_t)dc) == NULL)) {
		snprintf(msg, sizeof msg, "%s in the DN column '%s'", dc < 0 ? "no such column" : "NULL", t->dn_column);
		why = msg;
	}
	Loom__ImportObject *o = NULL;
	if (why == NULL) {
		o = loom_malloc(sizeof *o);
		loom__import_object__init(o);
		o->change = change;
		o->anchor = loom_strdup(anchor);
		o->dn = dc >= 0 ? loom_strdup(sql_text(st, (size_t)dc)) : loom_sprintf("%s=%s", t->anchor, anchor);
		o->object_type = loom_strdup(t->object_type);
		for (size_t i = 0; i < nc && why == NULL; i++) {
			if ((long)i == dc)
				continue;
			const char *vwhy = NULL;
			Loom__Value *v = sql_value(st, i, &vwhy);
			if (v == NULL && vwhy) {
				snprintf(msg, sizeof msg, "column '%s': %s", sql_colname(st, i), vwhy);
				why = msg;
				break;
			}
			if (v) {
				loom_attrs_set(&o->attrs, &o->n_attrs, sql_colname(st, i), &v, 1);
				loom_value_free(v);
			}
		}
		if (why) {
			loom__import_object__free_unpacked(o, NULL);
			o = NULL;
		}
	}
	if (o == NULL) {
		Loom__RunObjectError *e = loom_malloc(sizeof *e);
		loom__run_object_error__init(e);
		e->anchor = loom_strdup(anchor ? anchor : "");
		e->code = loom_strdup("malformed-record");
		e->message = loom_strdup(why);
		e->where = loom_sprintf("table %s row %llu", t->table, (unsigned long long)rowno);
		*ret_err = e;
	}
	return o;
}

/* Adds the multi-valued attributes of objects[from..n) (all of table t). */
static int fetch_mv(sqlagent_t *sa, const loom_agentcfg_sql_table_t *t, Loom__ImportObject **objs, size_t from,
    size_t n, char **ret_error)
{
	const loom_agentcfg_sql_mv_t *mv = &t->multi_valued;
	if (mv->table == NULL || from >= n)
		return 0;
	loom_map_t *by = loom_map_new();
	for (size_t i = from; i < n; i++)
		if (objs[i]->change != LOOM__IMPORT_OBJECT__CHANGE__DELETE)
			loom_map_puts(by, objs[i]->anchor, objs[i]);
	int rc = 0;
	for (size_t at = from; at < n && rc == 0; at += 1000) {
		size_t k = n - at < 1000 ? n - at : 1000;
		loom_buf_t q = LOOM_BUF_INIT;
		loom_buf_adds(&q, "SELECT ");
		sql_ident(&q, mv->anchor_column);
		loom_buf_adds(&q, ", ");
		sql_ident(&q, mv->name_column);
		loom_buf_adds(&q, ", ");
		sql_ident(&q, mv->value_column);
		loom_buf_adds(&q, " FROM ");
		sql_ident(&q, mv->table);
		loom_buf_adds(&q, " WHERE ");
		sql_ident(&q, mv->anchor_column);
		loom_buf_adds(&q, " IN (");
		sql_param_t *p = loom_calloc(k, sizeof *p);
		for (size_t i = 0; i < k; i++) {
			loom_buf_printf(&q, "%s$%zu", i ? ", " : "", i + 1);
			p[i].data = objs[at + i]->anchor;
			p[i].len = strlen(objs[at + i]->anchor);
		}
		loom_buf_adds(&q, ")");
		sql_stmt_t *st = NULL;
		rc = sql_query(sa->db, q.data, p, k, false, &st, ret_error);
		while (rc == 0) {
			int got = sql_step(st, ret_error);
			if (got <= 0) {
				rc = got;
				break;
			}
			const char *a = sql_text(st, 0), *name = sql_text(st, 1);
			Loom__ImportObject *o = a ? loom_map_gets(by, a) : NULL;
			const char *why;
			Loom__Value *v = sql_value(st, 2, &why);
			if (o && name && v) {
				const Loom__Attr *cur = loom_attr_find(o->attrs, o->n_attrs, name);
				size_t nv = cur ? cur->n_values : 0;
				/* Copies: loom_attrs_set frees the attribute it replaces. */
				Loom__Value **vals = loom_calloc(nv + 1, sizeof *vals);
				for (size_t i = 0; i < nv; i++)
					vals[i] = loom_value_dup(cur->values[i]);
				vals[nv] = v;
				loom_attrs_set(&o->attrs, &o->n_attrs, name, vals, nv + 1);
				for (size_t i = 0; i < nv; i++)
					loom_value_free(vals[i]);
				free(vals);
			}
			loom_value_free(v);
		}
		if (rc < 0 && *ret_error) {
			char *t2 = loom_sprintf("reading the multi-valued table '%s': %s", mv->table, *ret_error);
			free(*ret_error);
			*ret_error = t2;
		}
		sql_stmt_free(&st);
		free(p);
		loom_buf_release(&q);
	}
	loom_map_destroy(&by);
	return rc < 0 ? -1 : 0;
}

/* ---- import: the run ------------------------------------------------------------------ */

/* A delta's work list: (table index, anchor) to read again. */
typedef struct change_ref {
	size_t ti;                     /* the table */
	char *anchor;                  /* the object */
} change_ref_t;

static struct {
	change_ref_t *v;               /* the changed objects, in change order */
	size_t n, at;                  /* how many, the next to read */
} changes;

static void changes_free(void)
{
	for (size_t i = 0; i < changes.n; i++)
		free(changes.v[i].anchor);
	free(changes.v);
	memset(&changes, 0, sizeof changes);
}

void sa_import_stop(sqlagent_t *sa)
{
	sa_import_t *im = &sa->imp;
	sql_stmt_free(&im->rows);
	if (im->in_tx && sa->db) {
		char *err = NULL;
		if (sql_exec(sa->db, "ROLLBACK", NULL, 0, NULL, &err) < 0) {
			free(err);
			sa_db_reset(sa);
		}
	}
	changes_free();
	free(im->engine);
	free(im->watermark);
	free(im->since);
	memset(im, 0, sizeof *im);
}

static void send_batch(sqlagent_t *sa, Loom__ImportBatch *b)
{
	loom_agent_send_batch(sa->d, sa->imp.engine, b);
}

static void fail_import(sqlagent_t *sa, const char *message, bool watermark_lost)
{
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = sa->imp.run_id;
	b.seq = ++sa->imp.seq;
	b.last = true;
	b.failed = !watermark_lost;
	b.watermark_lost = watermark_lost;
	b.message = (char *)message;
	send_batch(sa, &b);
	if (watermark_lost)
		loom_warning("delta import refused run=%llu: %s", (unsigned long long)sa->imp.run_id, message);
	else
		loom_error("import failed run=%llu: %s", (unsigned long long)sa->imp.run_id, message);
	if (sa->db && sql_error_class(sa->db) == SQL_ERR_BROKEN)
		sa_db_reset(sa);
	sa_import_stop(sa);
}

/* SELECT * FROM t [WHERE extra] */
static char *select_all(const loom_agentcfg_sql_table_t *t, const char *where_col, const char *op)
{
	loom_buf_t q = LOOM_BUF_INIT;
	loom_buf_adds(&q, "SELECT * FROM ");
	sql_ident(&q, t->table);
	if (where_col) {
		loom_buf_adds(&q, " WHERE ");
		sql_ident(&q, where_col);
		loom_buf_printf(&q, " %s $1", op);
	}
	return loom_buf_steal(&q);
}

/* Opens the next table's cursor (full import). 0, or -1 with *ret_error. */
static int open_table(sqlagent_t *sa, char **ret_error)
{
	sa_import_t *im = &sa->imp;
	const loom_agentcfg_sql_table_t *t = table_at(sa, im->ti);
	im->row = 0;
	if (im->delta) {
		/* modified: the rows changed since the watermark minus the overlap */
		const char *col = t->modified_column ? t->modified_column : sa->cfg.sql.delta.column;
		char *q = select_all(t, col, ">=");
		const char *since = im->since + 4; /* "mod:" */
		long long us = 0;
		if (!sql_parse_time(since, &us)) {
			*ret_error = loom_sprintf("the watermark '%s' is not a time", im->since);
			return -1;
		}
		us -= sa->cfg.sql.delta.overlap_ms * 1000;
		Loom__Value tv = LOOM__VALUE__INIT;
		tv.v_case = LOOM__VALUE__V_TIME;
		tv.time = us;
		loom_buf_t text = LOOM_BUF_INIT;
		sql_param_t p;
		sql_param_of(sa->db, &tv, &text, &p);
		int rc = sql_query(sa->db, q, &p, 1, true, &im->rows, ret_error);
		loom_buf_release(&text);
		free(q);
		return rc;
	}
	char *q = select_all(t, NULL, NULL);
	int rc = sql_query(sa->db, q, NULL, 0, true, &im->rows, ret_error);
	free(q);
	return rc;
}

/* Fills b with up to batch_size items. Returns 1 when more may follow,
 * 0 at the end, -1 with *ret_error. */
static int fill(sqlagent_t *sa, Loom__ImportBatch *b, char **ret_error)
{
	sa_import_t *im = &sa->imp;
	size_t items = 0;
	bool by_changes = im->delta && sa->cfg.sql.delta.mode == LOOM_SQL_DELTA_CHANGES;
	while (items < im->batch_size) {
		if (by_changes) {
			if (changes.at >= changes.n)
				return 0;
			change_ref_t *c = &changes.v[changes.at++];
			const loom_agentcfg_sql_table_t *t = table_at(sa, c->ti);
			char *q = select_all(t, t->anchor, "=");
			sql_param_t p = { c->anchor, strlen(c->anchor), false };
			sql_stmt_t *st = NULL;
			int rc = sql_query(sa->db, q, &p, 1, false, &st, ret_error);
			free(q);
			if (rc < 0)
				return -1;
			int got = sql_step(st, ret_error);
			if (got < 0) {
				sql_stmt_free(&st);
				return -1;
			}
			Loom__RunObjectError *e = NULL;
			Loom__ImportObject *o = NULL;
			int del = got ? row_deleted(t, deleted_col(sa, t), st, 0, &e) : 1;
			if (del == 1) {
				o = loom_malloc(sizeof *o);
				loom__import_object__init(o);
				o->change = LOOM__IMPORT_OBJECT__CHANGE__DELETE;
				o->anchor = loom_strdup(c->anchor);
				o->object_type = loom_strdup(t->object_type);
				got = 0; /* no multi-valued attributes for a delete */
			} else if (del == 0) {
				o = row_object(t, st, 0, LOOM__IMPORT_OBJECT__CHANGE__REPLACE, &e);
			}
			sql_stmt_free(&st);
			if (o) {
				b->objects[b->n_objects++] = o;
				if (got && fetch_mv(sa, t, b->objects, b->n_objects - 1, b->n_objects, ret_error) < 0)
					return -1;
			} else {
				b->errors = loom_realloc(b->errors, (b->n_errors + 1) * sizeof *b->errors);
				b->errors[b->n_errors++] = e;
			}
			items++;
			continue;
		}
		if (im->rows == NULL) {
			if (im->ti >= sa->cfg.sql.tables.n)
				return 0;
			if (open_table(sa, ret_error) < 0)
				return -1;
		}
		const loom_agentcfg_sql_table_t *t = table_at(sa, im->ti);
		size_t seg = b->n_objects; /* this table's objects in the batch start here */
		int got = 1;
		while (items < im->batch_size && (got = sql_step(im->rows, ret_error)) == 1) {
			im->row++;
			Loom__RunObjectError *e = NULL;
			Loom__ImportObject *o = NULL;
			int del = row_deleted(t, deleted_col(sa, t), im->rows, im->row, &e);
			if (del == 1 && !im->delta)
				continue; /* soft-deleted: not there for a full import */
			if (del == 1)
				o = row_delete(t, im->rows);
			else if (del == 0)
				o = row_object(t, im->rows, im->row,
				    im->delta ? LOOM__IMPORT_OBJECT__CHANGE__REPLACE : LOOM__IMPORT_OBJECT__CHANGE__FULL, &e);
			if (del == 1 && o == NULL)
				continue;
			if (o) {
				b->objects[b->n_objects++] = o;
			} else {
				b->errors = loom_realloc(b->errors, (b->n_errors + 1) * sizeof *b->errors);
				b->errors[b->n_errors++] = e;
			}
			items++;
		}
		if (got < 0)
			return -1;
		if (fetch_mv(sa, t, b->objects, seg, b->n_objects, ret_error) < 0)
			return -1;
		if (got == 0) {
			sql_stmt_free(&im->rows);
			im->ti++;
		}
	}
	return 1;
}

static void produce(sqlagent_t *sa)
{
	sa_import_t *im = &sa->imp;
	while (im->active && im->credit > 0) {
		Loom__ImportBatch *b = loom_malloc(sizeof *b);
		loom__import_batch__init(b);
		b->run_id = im->run_id;
		b->objects = loom_calloc(im->batch_size, sizeof *b->objects);
		char *err = NULL;
		int rc = fill(sa, b, &err);
		if (rc < 0) {
			loom__import_batch__free_unpacked(b, NULL);
			char *t = loom_sprintf("cannot read the database: %s", err);
			fail_import(sa, t, false);
			free(t);
			free(err);
			return;
		}
		b->seq = ++im->seq;
		im->objects += b->n_objects;
		if (rc == 0) {
			/* The read transaction ends: nothing was written, COMMIT only releases it. */
			if (sql_exec(sa->db, "COMMIT", NULL, 0, NULL, &err) < 0) {
				loom__import_batch__free_unpacked(b, NULL);
				fail_import(sa, err, false);
				free(err);
				return;
			}
			im->in_tx = false;
			b->last = true;
			b->watermark.len = strlen(im->watermark);
			b->watermark.data = (uint8_t *)loom_strdup(im->watermark);
		}
		send_batch(sa, b);
		im->credit--;
		bool last = b->last;
		loom__import_batch__free_unpacked(b, NULL);
		if (last) {
			loom_info("import sent run=%llu objects=%llu batches=%llu watermark=%s", (unsigned long long)im->run_id,
			    (unsigned long long)im->objects, (unsigned long long)im->seq, im->watermark);
			sa_import_stop(sa);
		}
	}
}

/* One value of a one-row query, malloc'd; NULL with *ret_error. */
static char *scalar(sqlagent_t *sa, const char *sql, char **ret_error)
{
	sql_stmt_t *st = NULL;
	if (sql_query(sa->db, sql, NULL, 0, false, &st, ret_error) < 0)
		return NULL;
	char *v = NULL;
	int got = sql_step(st, ret_error);
	if (got == 1)
		v = loom_strdup(sql_text(st, 0) ? sql_text(st, 0) : "");
	else if (got == 0)
		*ret_error = loom_strdup("no row");
	sql_stmt_free(&st);
	return v;
}

/* The watermark of this snapshot, in the delta mode's form. */
static char *take_watermark(sqlagent_t *sa, char **ret_error)
{
	const loom_agentcfg_sql_delta_t *d = &sa->cfg.sql.delta;
	char *v = NULL, *w = NULL;
	if (d->mode == LOOM_SQL_DELTA_CHANGES && pg(sa)) {
		v = scalar(sa, "SELECT pg_current_snapshot()::text", ret_error);
		w = v ? loom_sprintf("pgsnap:%s", v) : NULL;
	} else if (d->mode == LOOM_SQL_DELTA_CHANGES) {
		loom_buf_t q = LOOM_BUF_INIT;
		loom_buf_adds(&q, "SELECT coalesce(max(seq), 0) FROM ");
		sql_ident(&q, d->table);
		v = scalar(sa, q.data, ret_error);
		loom_buf_release(&q);
		w = v ? loom_sprintf("seq:%s", v) : NULL;
	} else if (d->mode == LOOM_SQL_DELTA_MODIFIED) {
		v = scalar(sa,
		    pg(sa) ? "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
			   : "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
		    ret_error);
		w = v ? loom_sprintf("mod:%s", v) : NULL;
	} else {
		w = loom_strdup("full");
	}
	free(v);
	if (w == NULL && *ret_error) {
		char *t = loom_sprintf("cannot take the watermark: %s", *ret_error);
		free(*ret_error);
		*ret_error = t;
	}
	return w;
}

/* Delta by change table: the (table, anchor) pairs changed since wm. */
static int read_changes(sqlagent_t *sa, const char *wm, char **ret_error)
{
	const loom_agentcfg_sql_delta_t *d = &sa->cfg.sql.delta;
	loom_buf_t q = LOOM_BUF_INIT;
	loom_buf_adds(&q, "SELECT object_type, anchor FROM ");
	sql_ident(&q, d->table);
	sql_param_t p = { NULL, 0, false };
	if (pg(sa)) {
		p.data = wm + 7; /* "pgsnap:" */
		loom_buf_adds(&q, " WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, "
				  "$1::pg_snapshot) ORDER BY seq");
	} else {
		p.data = wm + 4; /* "seq:" */
		loom_buf_adds(&q, " WHERE seq > CAST($1 AS INTEGER) ORDER BY seq");
	}
	p.len = strlen(p.data);
	sql_stmt_t *st = NULL;
	int rc = sql_query(sa->db, q.data, &p, 1, false, &st, ret_error);
	loom_buf_release(&q);
	if (rc < 0)
		return -1;
	loom_map_t *seen = loom_map_new();
	int got;
	while ((got = sql_step(st, ret_error)) == 1) {
		const char *type = sql_text(st, 0), *anchor = sql_text(st, 1);
		if (anchor == NULL)
			continue;
		size_t ti = 0;
		const loom_agentcfg_sql_table_t *t = sa_table(sa, type);
		ti = (size_t)(t - table_at(sa, 0));
		char *key = loom_sprintf("%zu\n%s", ti, anchor);
		if (loom_map_gets(seen, key) == NULL) {
			loom_map_puts(seen, key, (void *)1);
			changes.v = loom_realloc(changes.v, (changes.n + 1) * sizeof *changes.v);
			changes.v[changes.n].ti = ti;
			changes.v[changes.n].anchor = loom_strdup(anchor);
			changes.n++;
		}
		free(key);
	}
	loom_map_destroy(&seen);
	sql_stmt_free(&st);
	return got < 0 ? -1 : 0;
}

void sa_import_start(sqlagent_t *sa, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	sa_import_t *im = &sa->imp;
	if (im->active)
		loom_warning("abandoning import run=%llu for run=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)rq->run_id);
	sa_import_stop(sa);
	im->active = true;
	im->run_id = rq->run_id;
	im->engine = loom_strdup(env->from);
	im->delta = rq->delta;
	im->batch_size = rq->batch_size ? rq->batch_size : 500;
	im->credit = rq->credit ? rq->credit : 1;
	loom_info("import started run=%llu mode=%s", (unsigned long long)rq->run_id, rq->delta ? "delta" : "full");
	if (rq->live) {
		fail_import(sa, "a SQL agent has no live mode (live.enabled is for type ldap)", false);
		return;
	}
	const loom_agentcfg_sql_delta_t *d = &sa->cfg.sql.delta;
	char *wm = rq->watermark.len ? loom_strndup((const char *)rq->watermark.data, rq->watermark.len) : loom_strdup("");
	if (rq->delta && d->mode == LOOM_SQL_DELTA_NONE) {
		free(wm);
		fail_import(sa, "delta import needs sql.delta.mode changes (a change table) or modified (a timestamp "
				"column): run a full import",
		    false);
		return;
	}
	const char *want = d->mode == LOOM_SQL_DELTA_MODIFIED ? "mod:" : pg(sa) ? "pgsnap:" : "seq:";
	if (rq->delta && strncmp(wm, want, strlen(want)) != 0) {
		char *t = loom_sprintf("the watermark '%.40s' is not one this agent's delta mode makes (%s...): a full "
				       "import is needed",
		    wm, want);
		free(wm);
		fail_import(sa, t, true);
		free(t);
		return;
	}
	char *err = NULL;
	if (sa_db(sa, &err) == NULL) {
		free(wm);
		fail_import(sa, err, false);
		free(err);
		return;
	}
	if (sql_exec(sa->db, pg(sa) ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", NULL, 0, NULL, &err) <
	    0) {
		free(wm);
		fail_import(sa, err, false);
		free(err);
		return;
	}
	im->in_tx = true;
	char *now = take_watermark(sa, &err);
	if (now == NULL) {
		free(wm);
		fail_import(sa, err, false);
		free(err);
		return;
	}
	if (rq->delta && d->mode == LOOM_SQL_DELTA_CHANGES) {
		if (read_changes(sa, wm, &err) < 0) {
			free(wm);
			free(now);
			char *t = loom_sprintf("cannot read the change table '%s': %s", d->table, err);
			fail_import(sa, t, false);
			free(t);
			free(err);
			return;
		}
		im->watermark = now;
	} else if (rq->delta) {
		/* modified: this run reads since the old watermark; the next since now */
		im->since = wm;
		wm = NULL;
		im->watermark = now;
	} else {
		im->watermark = now;
	}
	free(wm);
	produce(sa);
}

void sa_import_credit(sqlagent_t *sa, const Loom__ImportCredit *c)
{
	sa_import_t *im = &sa->imp;
	if (!im->active || c->run_id != im->run_id)
		return;
	if (c->abort) {
		loom_info("import aborted by the engine run=%llu", (unsigned long long)im->run_id);
		sa_import_stop(sa);
		return;
	}
	im->credit += c->credit;
	produce(sa);
}

/* ---- export ----------------------------------------------------------------------------- */

/* The columns of table t (cached for the run). */
typedef struct cols {
	char **v;                      /* names as the database spells them */
	size_t n;
} cols_t;

static int table_columns(sqlagent_t *sa, const loom_agentcfg_sql_table_t *t, cols_t *ret, char **ret_error)
{
	loom_buf_t q = LOOM_BUF_INIT;
	loom_buf_adds(&q, "SELECT * FROM ");
	sql_ident(&q, t->table);
	loom_buf_adds(&q, " WHERE 1 = 0");
	sql_stmt_t *st = NULL;
	int rc = sql_query(sa->db, q.data, NULL, 0, false, &st, ret_error);
	loom_buf_release(&q);
	if (rc < 0)
		return -1;
	ret->n = sql_ncols(st);
	ret->v = loom_calloc(ret->n ? ret->n : 1, sizeof *ret->v);
	for (size_t i = 0; i < ret->n; i++)
		ret->v[i] = loom_strdup(sql_colname(st, i));
	sql_stmt_free(&st);
	return 0;
}

static void cols_free(cols_t *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	free(c->v);
	memset(c, 0, sizeof *c);
}

static const char *column_of(const cols_t *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcasecmp(c->v[i], name) == 0)
			return c->v[i];
	return NULL;
}

/* Parameters owned by a statement being built. */
typedef struct params {
	sql_param_t *p;                /* the parameters */
	loom_buf_t *text;              /* their text */
	size_t n, cap;
} params_t;

static size_t param_add(params_t *ps, const sql_db_t *db, const Loom__Value *v)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;
		ps->p = loom_realloc(ps->p, cap * sizeof *ps->p);
		ps->text = loom_realloc(ps->text, cap * sizeof *ps->text);
		for (size_t i = ps->cap; i < cap; i++)
			loom_buf_init(&ps->text[i]);
		ps->cap = cap;
	}
	if (v)
		sql_param_of(db, v, &ps->text[ps->n], &ps->p[ps->n]);
	else
		ps->p[ps->n] = (sql_param_t){ NULL, 0, false };
	return ++ps->n;
}

static size_t param_str(params_t *ps, const sql_db_t *db, const char *s)
{
	Loom__Value v = LOOM__VALUE__INIT;
	v.v_case = LOOM__VALUE__V_STR;
	v.str = (char *)s;
	return param_add(ps, db, &v);
}

static void params_release(params_t *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		loom_buf_release(&ps->text[i]);
	free(ps->p);
	free(ps->text);
	memset(ps, 0, sizeof *ps);
}

/* Why a change failed: code and message (malloc'd) into res. */
static void result_error(sqlagent_t *sa, Loom__ExportChangeResult *res, const char *code, char *message)
{
	res->ok = false;
	int cls = sa->db ? sql_error_class(sa->db) : SQL_ERR_OTHER;
	res->code = loom_strdup(code ? code : cls == SQL_ERR_CONSTRAINT ? "constraint-violation" : "sql-error");
	res->retryable = code == NULL && (cls == SQL_ERR_TRANSIENT || cls == SQL_ERR_BROKEN);
	res->message = message;
}

/* Writes the multi-valued rows of one attribute: op REPLACE replaces them,
 * ADD adds the values not there, DELETE removes the values (all when none). */
/* Appends " WHERE anchor = $pa AND name = $pn", and " AND value = $pv"
 * when pv is a parameter (not 0), over the multi-valued table's columns. */
static void mv_where(loom_buf_t *q, const loom_agentcfg_sql_mv_t *mv, size_t pa, size_t pn, size_t pv)
{
	loom_buf_adds(q, " WHERE ");
	sql_ident(q, mv->anchor_column);
	loom_buf_printf(q, " = $%zu AND ", pa);
	sql_ident(q, mv->name_column);
	loom_buf_printf(q, " = $%zu", pn);
	if (pv) {
		loom_buf_adds(q, " AND ");
		sql_ident(q, mv->value_column);
		loom_buf_printf(q, " = $%zu", pv);
	}
}

static int mv_write(sqlagent_t *sa, const loom_agentcfg_sql_table_t *t, const char *anchor, const Loom__AttrDelta *d,
    char **ret_error)
{
	const loom_agentcfg_sql_mv_t *mv = &t->multi_valued;
	loom_buf_t q = LOOM_BUF_INIT;
	params_t ps;
	memset(&ps, 0, sizeof ps);
	int rc = 0;
	if (d->op == LOOM__ATTR_DELTA__OP__REPLACE || (d->op == LOOM__ATTR_DELTA__OP__DELETE && d->n_values == 0)) {
		loom_buf_adds(&q, "DELETE FROM ");
		sql_ident(&q, mv->table);
		size_t pa = param_str(&ps, sa->db, anchor), pn = param_str(&ps, sa->db, d->name);
		mv_where(&q, mv, pa, pn, 0);
		rc = sql_exec(sa->db, q.data, ps.p, ps.n, NULL, ret_error);
	}
	for (size_t k = 0; rc == 0 && k < d->n_values; k++) {
		loom_buf_reset(&q);
		ps.n = 0;
		size_t pa = param_str(&ps, sa->db, anchor), pn = param_str(&ps, sa->db, d->name);
		size_t pv = param_add(&ps, sa->db, d->values[k]);
		if (d->op == LOOM__ATTR_DELTA__OP__DELETE) {
			loom_buf_adds(&q, "DELETE FROM ");
			sql_ident(&q, mv->table);
			mv_where(&q, mv, pa, pn, pv);
		} else {
			/* INSERT ... SELECT ... WHERE NOT EXISTS: a value is there once. */
			loom_buf_adds(&q, "INSERT INTO ");
			sql_ident(&q, mv->table);
			loom_buf_adds(&q, " (");
			sql_ident(&q, mv->anchor_column);
			loom_buf_adds(&q, ", ");
			sql_ident(&q, mv->name_column);
			loom_buf_adds(&q, ", ");
			sql_ident(&q, mv->value_column);
			loom_buf_printf(&q, ") SELECT $%zu, $%zu, $%zu WHERE NOT EXISTS (SELECT 1 FROM ", pa, pn, pv);
			sql_ident(&q, mv->table);
			mv_where(&q, mv, pa, pn, pv);
			loom_buf_adds(&q, ")");
		}
		rc = sql_exec(sa->db, q.data, ps.p, ps.n, NULL, ret_error);
	}
	params_release(&ps);
	loom_buf_release(&q);
	return rc;
}

/* Does the row exist? 1, 0, -1. */
static int row_exists(sqlagent_t *sa, const loom_agentcfg_sql_table_t *t, const char *anchor, char **ret_error)
{
	loom_buf_t q = LOOM_BUF_INIT;
	loom_buf_adds(&q, "SELECT 1 FROM ");
	sql_ident(&q, t->table);
	loom_buf_adds(&q, " WHERE ");
	sql_ident(&q, t->anchor);
	loom_buf_adds(&q, " = $1");
	sql_param_t p = { anchor, strlen(anchor), false };
	sql_stmt_t *st = NULL;
	int rc = sql_query(sa->db, q.data, &p, 1, false, &st, ret_error);
	loom_buf_release(&q);
	if (rc < 0)
		return -1;
	rc = sql_step(st, ret_error);
	sql_stmt_free(&st);
	return rc;
}

/* Applies one change. Fills res; returns 0 (applied), -1 (refused before
 * anything was written: no-such-object, no-such-attribute...) or -2 (a
 * statement failed: the change may be half written, and on PostgreSQL the
 * transaction is aborted). */
static int apply(sqlagent_t *sa, const cols_t *cols, const loom_agentcfg_sql_table_t *t, const Loom__ExportChange *c,
    Loom__ExportChangeResult *res)
{
	char *err = NULL;
	const char *anchor = c->anchor;
	loom_buf_t q = LOOM_BUF_INIT;
	params_t ps;
	memset(&ps, 0, sizeof ps);
	int rc = 0;
	Loom__Attr **attrs = NULL;
	size_t nattrs = 0;
	/* The attributes that go to columns and to the multi-valued table. */
	for (size_t i = 0; i < c->n_deltas; i++) {
		const Loom__AttrDelta *d = c->deltas[i];
		const char *col = column_of(cols, d->name);
		if (col == NULL && t->multi_valued.table == NULL && d->n_values) {
			result_error(sa, res, "no-such-attribute",
			    loom_sprintf("'%s' has no column '%s' and no multi-valued table (sql.tables[].multi_valued)", t->table,
				d->name));
			return 0;
		}
		if (col && d->op != LOOM__ATTR_DELTA__OP__DELETE && d->n_values > 1 &&
		    (c->op != LOOM__EXPORT_CHANGE__OP__UPDATE || d->op == LOOM__ATTR_DELTA__OP__REPLACE)) {
			result_error(sa, res, "constraint-violation",
			    loom_sprintf("attribute '%s' has %zu values and its column '%s' holds one", d->name, d->n_values, col));
			return 0;
		}
	}
	if (c->op == LOOM__EXPORT_CHANGE__OP__DELETE) {
		if (anchor[0] == '\0') {
			result_error(sa, res, "missing-anchor", loom_strdup("the change names no object"));
			return 0;
		}
		if (t->multi_valued.table) {
			loom_buf_adds(&q, "DELETE FROM ");
			sql_ident(&q, t->multi_valued.table);
			loom_buf_adds(&q, " WHERE ");
			sql_ident(&q, t->multi_valued.anchor_column);
			loom_buf_printf(&q, " = $%zu", param_str(&ps, sa->db, anchor));
			rc = sql_exec(sa->db, q.data, ps.p, ps.n, NULL, &err);
		}
		if (rc == 0) {
			loom_buf_reset(&q);
			ps.n = 0;
			loom_buf_adds(&q, "DELETE FROM ");
			sql_ident(&q, t->table);
			loom_buf_adds(&q, " WHERE ");
			sql_ident(&q, t->anchor);
			loom_buf_printf(&q, " = $%zu", param_str(&ps, sa->db, anchor));
			rc = sql_exec(sa->db, q.data, ps.p, ps.n, NULL, &err); /* gone already: done */
		}
		goto out;
	}
	if (c->op == LOOM__EXPORT_CHANGE__OP__ADD) {
		loom_attrs_apply(&attrs, &nattrs, c->deltas, c->n_deltas);
		const Loom__Attr *aa = loom_attr_find(attrs, nattrs, t->anchor);
		loom_buf_t atext = LOOM_BUF_INIT;
		if (aa && aa->n_values)
			loom_value_text(&atext, aa->values[0]);
		/* INSERT ... SELECT ... WHERE NOT EXISTS: one round trip, and no row
		 * back when the anchor is there already. */
		loom_buf_adds(&q, "INSERT INTO ");
		sql_ident(&q, t->table);
		loom_buf_adds(&q, " (");
		loom_buf_t vals = LOOM_BUF_INIT;
		size_t ncol = 0;
		for (size_t i = 0; i < nattrs; i++) {
			const char *col = column_of(cols, attrs[i]->name);
			if (col == NULL || attrs[i]->n_values == 0 || (t->dn_column && strcasecmp(col, t->dn_column) == 0))
				continue;
			loom_buf_adds(&q, ncol ? ", " : "");
			sql_ident(&q, col);
			loom_buf_printf(&vals, "%s$%zu", ncol++ ? ", " : "", param_add(&ps, sa->db, attrs[i]->values[0]));
		}
		if (t->dn_column && column_of(cols, t->dn_column)) {
			loom_buf_adds(&q, ncol ? ", " : "");
			sql_ident(&q, column_of(cols, t->dn_column));
			loom_buf_printf(&vals, "%s$%zu", ncol++ ? ", " : "", param_str(&ps, sa->db, c->new_dn[0] ? c->new_dn : c->dn));
		}
		if (ncol == 0) {
			loom_buf_adds(&q, ") DEFAULT VALUES");
		} else if (atext.len) {
			loom_buf_printf(&q, ") SELECT %s WHERE NOT EXISTS (SELECT 1 FROM ", vals.data);
			sql_ident(&q, t->table);
			loom_buf_adds(&q, " WHERE ");
			sql_ident(&q, t->anchor);
			loom_buf_printf(&q, " = $%zu)", param_str(&ps, sa->db, atext.data));
		} else {
			loom_buf_printf(&q, ") VALUES (%s)", vals.data);
		}
		loom_buf_adds(&q, " RETURNING ");
		loom_buf_release(&vals);
		sql_ident(&q, t->anchor);
		sql_stmt_t *st = NULL;
		bool inserted = false;
		rc = sql_query(sa->db, q.data, ps.p, ps.n, false, &st, &err);
		if (rc == 0 && (rc = sql_step(st, &err)) == 1) {
			const char *made = sql_text(st, 0);
			res->anchor = loom_strdup(made ? made : atext.data ? atext.data : "");
			inserted = true;
			rc = 0;
		}
		sql_stmt_free(&st);
		if (rc == 0 && !inserted && atext.len) {
			/* An add of an object already there replaces it: an update of every attribute. */
			Loom__ExportChange u = *c;
			u.op = LOOM__EXPORT_CHANGE__OP__UPDATE;
			u.anchor = atext.data;
			loom_attrs_free(attrs, nattrs);
			attrs = NULL;
			nattrs = 0;
			int urc = apply(sa, cols, t, &u, res);
			if (urc == 0 && res->ok)
				res->anchor = loom_strdup(atext.data);
			loom_buf_release(&atext);
			loom_attrs_free(attrs, nattrs);
			params_release(&ps);
			loom_buf_release(&q);
			return urc;
		}
		if (rc == 0 && !inserted) {
			rc = -1;
			err = loom_strdup("the INSERT returned no row");
		}
		loom_buf_release(&atext);
		if (rc < 0)
			goto out;
		anchor = res->anchor;
		for (size_t i = 0; rc == 0 && i < nattrs && t->multi_valued.table; i++) {
			if (column_of(cols, attrs[i]->name))
				continue;
			Loom__AttrDelta d = LOOM__ATTR_DELTA__INIT;
			d.name = attrs[i]->name;
			d.op = LOOM__ATTR_DELTA__OP__ADD;
			d.values = attrs[i]->values;
			d.n_values = attrs[i]->n_values;
			rc = mv_write(sa, t, anchor, &d, &err);
		}
		goto out;
	}
	/* UPDATE: the columns first, then the multi-valued rows. */
	if (anchor[0] == '\0') {
		result_error(sa, res, "missing-anchor", loom_strdup("the change names no object"));
		goto done;
	}
	loom_buf_adds(&q, "UPDATE ");
	sql_ident(&q, t->table);
	loom_buf_adds(&q, " SET ");
	size_t nset = 0;
	for (size_t i = 0; i < c->n_deltas; i++) {
		const Loom__AttrDelta *d = c->deltas[i];
		const char *col = column_of(cols, d->name);
		if (col == NULL || strcasecmp(col, t->anchor) == 0)
			continue;
		/* A column holds one value: add sets it, delete empties it. */
		const Loom__Value *v = d->op != LOOM__ATTR_DELTA__OP__DELETE && d->n_values ? d->values[d->n_values - 1] : NULL;
		loom_buf_adds(&q, nset++ ? ", " : "");
		sql_ident(&q, col);
		loom_buf_printf(&q, " = $%zu", param_add(&ps, sa->db, v));
	}
	if (c->new_dn[0] && t->dn_column && column_of(cols, t->dn_column)) {
		loom_buf_adds(&q, nset++ ? ", " : "");
		sql_ident(&q, column_of(cols, t->dn_column));
		loom_buf_printf(&q, " = $%zu", param_str(&ps, sa->db, c->new_dn));
	}
	long long changed = 0;
	if (nset) {
		loom_buf_adds(&q, " WHERE ");
		sql_ident(&q, t->anchor);
		loom_buf_printf(&q, " = $%zu", param_str(&ps, sa->db, anchor));
		rc = sql_exec(sa->db, q.data, ps.p, ps.n, &changed, &err);
	} else {
		int ex = row_exists(sa, t, anchor, &err);
		rc = ex < 0 ? -1 : 0;
		changed = ex > 0;
	}
	if (rc == 0 && changed == 0) {
		result_error(sa, res, "no-such-object", loom_sprintf("no row of '%s' has %s = '%s'", t->table, t->anchor, anchor));
		goto done;
	}
	for (size_t i = 0; rc == 0 && i < c->n_deltas && t->multi_valued.table; i++)
		if (column_of(cols, c->deltas[i]->name) == NULL)
			rc = mv_write(sa, t, anchor, c->deltas[i], &err);
out:
	if (rc < 0) {
		result_error(sa, res, NULL, loom_sprintf("%s of '%s' in '%s': %s",
						c->op == LOOM__EXPORT_CHANGE__OP__ADD	     ? "insert"
						    : c->op == LOOM__EXPORT_CHANGE__OP__UPDATE ? "update"
											       : "delete",
						c->dn, t->table, err ? err : "failed"));
	} else if (res->code == NULL || res->code[0] == '\0') {
		res->ok = true;
	}
	free(err);
done:
	loom_attrs_free(attrs, nattrs);
	params_release(&ps);
	loom_buf_release(&q);
	return res->ok ? 0 : rc < 0 ? -2 : -1;
}

void sa_export_batch(sqlagent_t *sa, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = b->run_id;
	rs.seq = b->seq;
	rs.results = loom_calloc(b->n_changes ? b->n_changes : 1, sizeof *rs.results);
	char *err = NULL;
	size_t nt = sa->cfg.sql.tables.n;
	cols_t *cols = loom_calloc(nt, sizeof *cols);
	bool *have = loom_calloc(nt, sizeof *have);
	if (b->seq <= 1)
		loom_info("export started run=%llu", (unsigned long long)b->run_id);
	/* First without savepoints (one round trip per statement); when a
	 * statement fails, the batch is rolled back and applied again with a
	 * savepoint per change, so that the change at fault fails alone. */
	size_t okn = 0;
	for (int careful = 0; careful < 2; careful++) {
		for (size_t i = 0; i < rs.n_results; i++)
			loom__export_change_result__free_unpacked(rs.results[i], NULL);
		rs.n_results = 0;
		okn = 0;
		if (sa_db(sa, &err) == NULL || sql_exec(sa->db, "BEGIN", NULL, 0, NULL, &err) < 0) {
			rs.failed = true;
			rs.message = err;
			err = NULL;
			goto reply;
		}
		bool redo = false;
		for (size_t i = 0; i < b->n_changes && !redo; i++) {
			const Loom__ExportChange *c = b->changes[i];
			Loom__ExportChangeResult *res = loom_malloc(sizeof *res);
			loom__export_change_result__init(res);
			res->change_id = c->change_id;
			rs.results[rs.n_results++] = res;
			const loom_agentcfg_sql_table_t *t = sa_table(sa, c->object_type);
			size_t ti = (size_t)(t - table_at(sa, 0));
			if (!have[ti]) {
				if (table_columns(sa, t, &cols[ti], &err) < 0) {
					result_error(sa, res, NULL, loom_sprintf("cannot read the columns of '%s': %s", t->table, err));
					free(err);
					err = NULL;
					redo = !careful; /* the failed statement aborted a PostgreSQL transaction */
					continue;
				}
				have[ti] = true;
			}
			if (careful && sql_exec(sa->db, "SAVEPOINT loom_change", NULL, 0, NULL, &err) < 0)
				break;
			int rc = apply(sa, &cols[ti], t, c, res);
			if (rc == -2 && !careful) {
				redo = true;
				break;
			}
			if (rc == -2 && sql_exec(sa->db, "ROLLBACK TO SAVEPOINT loom_change", NULL, 0, NULL, &err) < 0)
				break;
			if (careful && sql_exec(sa->db, "RELEASE SAVEPOINT loom_change", NULL, 0, NULL, &err) < 0)
				break;
			okn += res->ok;
		}
		if (!redo)
			break;
		char *e2 = NULL;
		if (sql_exec(sa->db, "ROLLBACK", NULL, 0, NULL, &e2) < 0) {
			rs.failed = true;
			rs.message = loom_sprintf("cannot roll the batch back to apply it again: %s", e2);
			free(e2);
			if (sql_error_class(sa->db) == SQL_ERR_BROKEN)
				sa_db_reset(sa);
			goto reply;
		}
	}
	if (err == NULL && sql_exec(sa->db, "COMMIT", NULL, 0, NULL, &err) == 0) {
		loom_info("export batch applied run=%llu seq=%llu changes=%zu ok=%zu", (unsigned long long)b->run_id,
		    (unsigned long long)b->seq, b->n_changes, okn);
	} else {
		char *e2 = NULL;
		if (sql_exec(sa->db, "ROLLBACK", NULL, 0, NULL, &e2) < 0)
			free(e2);
		rs.failed = true;
		rs.message = loom_sprintf("the batch's transaction did not commit: %s", err ? err : "?");
		free(err);
		err = NULL;
		if (sql_error_class(sa->db) == SQL_ERR_BROKEN)
			sa_db_reset(sa);
	}
reply:
	if (rs.failed)
		loom_error("export failed run=%llu: %s", (unsigned long long)b->run_id, rs.message);
	const char *serr;
	if (loom_bus_reply(loom_daemon_bus(sa->d), env, &rs.base, &serr) < 0)
		loom_warning("cannot send export results run=%llu: %s", (unsigned long long)b->run_id, serr);
	for (size_t i = 0; i < rs.n_results; i++)
		loom__export_change_result__free_unpacked(rs.results[i], NULL);
	free(rs.results);
	if (rs.failed)
		free(rs.message);
	for (size_t i = 0; i < nt; i++)
		cols_free(&cols[i]);
	free(cols);
	free(have);
}
