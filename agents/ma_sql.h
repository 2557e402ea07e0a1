/* ma_sql.h - loom-ma-sql: the management agent for SQL databases
 * (PostgreSQL through libpq, SQLite), docs/agents.md "SQL".
 *
 *   ma_sql.c     the daemon: configuration, dispatch, SetPassword
 *   ma_sql_io.c  import (full: a cursor per table in one snapshot; delta:
 *                a change table or a modified column) and export (one
 *                transaction per batch, a savepoint per change)
 *   ma_sql_db.c  the two drivers behind one small interface: statements
 *                with $N parameters, rows streamed, typed values
 */
#ifndef MA_SQL_H
#define MA_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_buf.h"
#include "loom_daemon.h"
#include "sync.pb-c.h"

/* ---- ma_sql_db.c ----------------------------------------------------------------- */

typedef struct sql_db sql_db_t;
typedef struct sql_stmt sql_stmt_t;

/* A statement parameter: text, or bytes (binary), or NULL. */
typedef struct sql_param {
	const char *data;              /* the bytes (NULL: SQL NULL); text is NUL-terminated at data[len] */
	size_t len;                    /* how many */
	bool binary;                   /* bytes, not text */
} sql_param_t;

/* Connects (cfg->sql); sessions use UTC and ISO dates. Returns 0 with *ret,
 * or -1 with *ret_error (malloc'd). */
int sql_open(const loom_agentcfg_t *cfg, sql_db_t **ret, char **ret_error);
void sql_close(sql_db_t **db);
int sql_driver(const sql_db_t *db);
/* What the last error was. */
enum { SQL_ERR_OTHER = 0, SQL_ERR_CONSTRAINT = 1, SQL_ERR_TRANSIENT = 2, SQL_ERR_BROKEN = 3 };
int sql_error_class(const sql_db_t *db);
/* A statement with no rows wanted; *ret_changes (may be NULL) gets the
 * rows it changed. Returns 0, or -1 with *ret_error (malloc'd: the
 * database's message). */
int sql_exec(sql_db_t *db, const char *sql, const sql_param_t *params, size_t n, long long *ret_changes,
    char **ret_error);
/* Runs a query. cursor: stream its rows (PostgreSQL: a cursor in the
 * current transaction, fetched 1,000 rows at a time) instead of reading
 * them all. Returns 0 with *ret, or -1 with *ret_error. */
int sql_query(sql_db_t *db, const char *sql, const sql_param_t *params, size_t n, bool cursor, sql_stmt_t **ret,
    char **ret_error);
/* The next row: 1, 0 at the end, -1 with *ret_error. */
int sql_step(sql_stmt_t *st, char **ret_error);
size_t sql_ncols(const sql_stmt_t *st);
const char *sql_colname(const sql_stmt_t *st, size_t i);
/* Column i of the row as text (NULL for SQL NULL), valid until the next step. */
const char *sql_text(const sql_stmt_t *st, size_t i);
/* Column i as a typed value (NULL for SQL NULL, or with *why when its
 * text cannot be read as its column's type). */
Loom__Value *sql_value(const sql_stmt_t *st, size_t i, const char **why);
void sql_stmt_free(sql_stmt_t **st);
/* Appends name quoted as an identifier (schema.table quoted part by part). */
void sql_ident(loom_buf_t *b, const char *name);
/* The text a value is written as in a statement parameter (booleans per
 * driver, times ISO 8601 UTC); binary values as bytes. */
void sql_param_of(const sql_db_t *db, const Loom__Value *v, loom_buf_t *text, sql_param_t *ret);
/* YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|+HH[:MM]|-HH[:MM]] or YYYY-MM-DD, as
 * microseconds since the epoch. */
bool sql_parse_time(const char *s, long long *ret_us);

/* ---- ma_sql_io.c ----------------------------------------------------------------- */

typedef struct sqlagent sqlagent_t;

void sa_import_start(sqlagent_t *sa, Loom__Envelope *env, const Loom__ImportRequest *rq);
void sa_import_credit(sqlagent_t *sa, const Loom__ImportCredit *c);
void sa_import_stop(sqlagent_t *sa);
void sa_export_batch(sqlagent_t *sa, Loom__Envelope *env, const Loom__ExportBatch *b);
/* The table config for an object type (the first table when none matches). */
const loom_agentcfg_sql_table_t *sa_table(const sqlagent_t *sa, const char *object_type);

/* ---- the agent ------------------------------------------------------------------- */

typedef struct sa_import {
	bool active;                   /* a run is being streamed */
	uint64_t run_id;               /* the engine's run */
	char *engine;                  /* the engine that asked */
	bool delta;                    /* delta import */
	uint32_t batch_size;           /* objects per batch */
	uint32_t credit;               /* batches we may still send */
	uint64_t seq;                  /* last batch sent */
	uint64_t objects;              /* objects sent */
	size_t ti;                     /* full: the table being read */
	uint64_t row;                  /* full: rows read from it (for locations) */
	sql_stmt_t *rows;              /* full: its cursor; delta: the change rows */
	char *watermark;               /* what the last batch hands back */
	char *since;                   /* delta by modified: the watermark this run reads from */
	bool in_tx;                    /* the import's read transaction is open */
} sa_import_t;

struct sqlagent {
	loom_daemon_t *d;              /* the skeleton */
	char *name;                    /* agent name (--agent) */
	loom_agentcfg_t cfg;           /* config/agents/NAME.yaml */
	sql_db_t *db;                  /* the connection (opened when first needed, again after a failure) */
	sa_import_t imp;               /* the import in progress */
};

/* The connection, opened if needed. Returns NULL with *ret_error. */
sql_db_t *sa_db(sqlagent_t *sa, char **ret_error);
/* Drops the connection after an error that may have broken it. */
void sa_db_reset(sqlagent_t *sa);

#endif
