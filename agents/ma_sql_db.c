/* ma_sql_db.c - PostgreSQL (libpq) and SQLite behind one small interface.
 *
 * Statements take $1, $2... parameters with both drivers (SQLite binds
 * "$N" by name, so an administrator's password_statement reads the same
 * for both); values are never pasted into SQL text. Identifiers from the
 * configuration are quoted. PostgreSQL sessions run with TimeZone UTC,
 * DateStyle ISO and client_encoding UTF8, so times and text read back as
 * the parser here expects; statement_timeout is sql.timeout.
 *
 * Typed values: PostgreSQL by the column's type (bool, bytea, int2/4/8,
 * oid, date, timestamp, timestamptz; the rest text), SQLite by the value's
 * storage class, with a declared type naming BOOL as a boolean and one
 * naming DATE or TIME as a datetime when its text parses as one.
 */
#define _GNU_SOURCE
#include "ma_sql.h"
#include "loom_alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

struct sql_db {
	int driver;                    /* LOOM_SQL_* */
	PGconn *pg;                    /* postgresql */
	sqlite3 *lite;                 /* sqlite */
	unsigned next_cursor;          /* postgresql: cursor names */
	int err_class;                 /* the last error: SQL_ERR_* */
};

struct sql_stmt {
	sql_db_t *db;                  /* its connection */
	PGresult *res;                 /* postgresql: the rows at hand */
	int row;                       /* postgresql: the current row */
	char *cursor;                  /* postgresql: the cursor's name, or NULL */
	bool done;                     /* postgresql: the cursor is exhausted */
	sqlite3_stmt *st;              /* sqlite */
};

int sql_driver(const sql_db_t *db)
{
	return db->driver;
}

int sql_error_class(const sql_db_t *db)
{
	return db->err_class;
}

static void pg_class(sql_db_t *db, PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	db->err_class = st == NULL ? SQL_ERR_OTHER
	    : strncmp(st, "23", 2) == 0 ? SQL_ERR_CONSTRAINT
	    : strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strncmp(st, "08", 2) == 0 || strcmp(st, "57014") == 0
	    ? SQL_ERR_TRANSIENT
	    : SQL_ERR_OTHER;
	if (PQstatus(db->pg) != CONNECTION_OK)
		db->err_class = SQL_ERR_BROKEN;
}

static void lite_class(sql_db_t *db)
{
	int c = sqlite3_errcode(db->lite);
	db->err_class = c == SQLITE_CONSTRAINT ? SQL_ERR_CONSTRAINT
	    : c == SQLITE_BUSY || c == SQLITE_LOCKED ? SQL_ERR_TRANSIENT
						     : SQL_ERR_OTHER;
}

static char *pg_error(PGconn *c, PGresult *r)
{
	const char *m = r ? PQresultErrorMessage(r) : NULL;
	if (m == NULL || m[0] == '\0')
		m = PQerrorMessage(c);
	char *t = loom_strdup(m && m[0] ? m : "unknown error");
	size_t n = strlen(t);
	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' '))
		t[--n] = '\0';
	for (char *p = t; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return t;
}

static char *read_password(const char *path, char **ret_error)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*ret_error = loom_sprintf("cannot read password_file '%s': %s", path, strerror(errno));
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		return loom_strdup("");
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

int sql_open(const loom_agentcfg_t *cfg, sql_db_t **ret, char **ret_error)
{
	sql_db_t *db = loom_calloc(1, sizeof *db);
	db->driver = cfg->sql.driver;
	if (db->driver == LOOM_SQL_SQLITE) {
		int rc = sqlite3_open_v2(cfg->sql.database, &db->lite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
		if (rc != SQLITE_OK) {
			*ret_error = loom_sprintf("cannot open SQLite database '%s': %s", cfg->sql.database,
			    db->lite ? sqlite3_errmsg(db->lite) : sqlite3_errstr(rc));
			sql_close(&db);
			return -1;
		}
		sqlite3_busy_timeout(db->lite, (int)cfg->sql.timeout_ms);
		*ret = db;
		return 0;
	}
	char *pw = NULL;
	if (cfg->sql.password_file && (pw = read_password(cfg->sql.password_file, ret_error)) == NULL) {
		sql_close(&db);
		return -1;
	}
	char timeout[32];
	snprintf(timeout, sizeof timeout, "%lld", (cfg->sql.timeout_ms + 999) / 1000);
	const char *keys[] = { "dbname", "connect_timeout", "application_name", "client_encoding", pw ? "password" : NULL,
		NULL };
	const char *vals[] = { cfg->sql.conninfo, timeout, "loom-ma-sql", "UTF8", pw, NULL };
	db->pg = PQconnectdbParams(keys, vals, 1);
	if (pw) {
		sodium_memzero(pw, strlen(pw));
		free(pw);
	}
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK) {
		char *m = db->pg ? pg_error(db->pg, NULL) : loom_strdup("out of memory");
		*ret_error = loom_sprintf("cannot connect to PostgreSQL (%s): %s", cfg->sql.conninfo, m);
		free(m);
		sql_close(&db);
		return -1;
	}
	char *set = loom_sprintf("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET bytea_output = 'hex'; "
				 "SET statement_timeout = %lld",
	    cfg->sql.timeout_ms);
	PGresult *r = PQexec(db->pg, set);
	free(set);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char *m = pg_error(db->pg, r);
		*ret_error = loom_sprintf("cannot set up the PostgreSQL session: %s", m);
		free(m);
		PQclear(r);
		sql_close(&db);
		return -1;
	}
	PQclear(r);
	*ret = db;
	return 0;
}

void sql_close(sql_db_t **dbp)
{
	sql_db_t *db = *dbp;
	if (db == NULL)
		return;
	if (db->pg)
		PQfinish(db->pg);
	if (db->lite)
		sqlite3_close_v2(db->lite);
	free(db);
	*dbp = NULL;
}

/* ---- postgresql ------------------------------------------------------------------ */

static PGresult *pg_run(sql_db_t *db, const char *sql, const sql_param_t *p, size_t n)
{
	const char **vals = loom_calloc(n ? n : 1, sizeof *vals);
	int *lens = loom_calloc(n ? n : 1, sizeof *lens);
	int *fmts = loom_calloc(n ? n : 1, sizeof *fmts);
	for (size_t i = 0; i < n; i++) {
		vals[i] = p[i].data;
		lens[i] = (int)p[i].len;
		fmts[i] = p[i].binary ? 1 : 0;
	}
	PGresult *r = PQexecParams(db->pg, sql, (int)n, NULL, vals, lens, fmts, 0);
	free(vals);
	free(lens);
	free(fmts);
	return r;
}

/* ---- sqlite ------------------------------------------------------------------------- */

static int lite_prepare(sql_db_t *db, const char *sql, const sql_param_t *p, size_t n, sqlite3_stmt **ret,
    char **ret_error)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->lite, sql, -1, &st, NULL) != SQLITE_OK) {
		lite_class(db);
		*ret_error = loom_strdup(sqlite3_errmsg(db->lite));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "$%zu", i + 1);
		int idx = sqlite3_bind_parameter_index(st, name);
		if (idx == 0) {
			snprintf(name, sizeof name, "?%zu", i + 1);
			idx = sqlite3_bind_parameter_index(st, name);
		}
		if (idx == 0)
			idx = (int)i + 1;
		if (idx > sqlite3_bind_parameter_count(st))
			continue; /* a statement may leave a parameter unused */
		int rc;
		if (p[i].data == NULL)
			rc = sqlite3_bind_null(st, idx);
		else if (p[i].binary)
			rc = sqlite3_bind_blob64(st, idx, p[i].data, p[i].len, SQLITE_TRANSIENT);
		else
			rc = sqlite3_bind_text64(st, idx, p[i].data, p[i].len, SQLITE_TRANSIENT, SQLITE_UTF8);
		if (rc != SQLITE_OK) {
			*ret_error = loom_strdup(sqlite3_errmsg(db->lite));
			sqlite3_finalize(st);
			return -1;
		}
	}
	*ret = st;
	return 0;
}

/* ---- the interface ------------------------------------------------------------------- */

int sql_exec(sql_db_t *db, const char *sql, const sql_param_t *params, size_t n, long long *ret_changes,
    char **ret_error)
{
	if (db->driver == LOOM_SQL_POSTGRESQL) {
		PGresult *r = pg_run(db, sql, params, n);
		ExecStatusType s = PQresultStatus(r);
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
			pg_class(db, r);
			*ret_error = pg_error(db->pg, r);
			PQclear(r);
			return -1;
		}
		if (ret_changes)
			*ret_changes = atoll(PQcmdTuples(r));
		PQclear(r);
		return 0;
	}
	sqlite3_stmt *st;
	if (lite_prepare(db, sql, params, n, &st, ret_error) < 0)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		lite_class(db);
		*ret_error = loom_strdup(sqlite3_errmsg(db->lite));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (ret_changes)
		*ret_changes = sqlite3_changes(db->lite);
	return 0;
}

int sql_query(sql_db_t *db, const char *sql, const sql_param_t *params, size_t n, bool cursor, sql_stmt_t **ret,
    char **ret_error)
{
	sql_stmt_t *s = loom_calloc(1, sizeof *s);
	s->db = db;
	s->row = -1;
	if (db->driver == LOOM_SQL_SQLITE) {
		if (lite_prepare(db, sql, params, n, &s->st, ret_error) < 0) {
			free(s);
			return -1;
		}
		*ret = s;
		return 0;
	}
	if (cursor) {
		s->cursor = loom_sprintf("loom_c%u", ++db->next_cursor);
		char *decl = loom_sprintf("DECLARE %s NO SCROLL CURSOR FOR %s", s->cursor, sql);
		PGresult *r = pg_run(db, decl, params, n);
		free(decl);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_class(db, r);
			*ret_error = pg_error(db->pg, r);
			PQclear(r);
			free(s->cursor);
			free(s);
			return -1;
		}
		PQclear(r);
		*ret = s;
		return 0;
	}
	s->res = pg_run(db, sql, params, n);
	if (PQresultStatus(s->res) != PGRES_TUPLES_OK) {
		pg_class(db, s->res);
		*ret_error = pg_error(db->pg, s->res);
		PQclear(s->res);
		free(s);
		return -1;
	}
	s->done = true;
	*ret = s;
	return 0;
}

int sql_step(sql_stmt_t *s, char **ret_error)
{
	if (s->st) {
		int rc = sqlite3_step(s->st);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc == SQLITE_DONE)
			return 0;
		lite_class(s->db);
		*ret_error = loom_strdup(sqlite3_errmsg(s->db->lite));
		return -1;
	}
	for (;;) {
		if (s->res && s->row + 1 < PQntuples(s->res)) {
			s->row++;
			return 1;
		}
		if (s->done)
			return 0;
		if (s->res)
			PQclear(s->res);
		char *fetch = loom_sprintf("FETCH FORWARD 1000 FROM %s", s->cursor);
		s->res = PQexec(s->db->pg, fetch);
		free(fetch);
		s->row = -1;
		if (PQresultStatus(s->res) != PGRES_TUPLES_OK) {
			pg_class(s->db, s->res);
			*ret_error = pg_error(s->db->pg, s->res);
			PQclear(s->res);
			s->res = NULL;
			s->done = true;
			return -1;
		}
		if (PQntuples(s->res) == 0)
			s->done = true;
	}
}

size_t sql_ncols(const sql_stmt_t *s)
{
	if (s->st)
		return (size_t)sqlite3_column_count(s->st);
	return s->res ? (size_t)PQnfields(s->res) : 0;
}

const char *sql_colname(const sql_stmt_t *s, size_t i)
{
	if (s->st)
		return sqlite3_column_name(s->st, (int)i);
	return PQfname(s->res, (int)i);
}

const char *sql_text(const sql_stmt_t *s, size_t i)
{
	if (s->st) {
		if (sqlite3_column_type(s->st, (int)i) == SQLITE_NULL)
			return NULL;
		return (const char *)sqlite3_column_text(s->st, (int)i);
	}
	if (PQgetisnull(s->res, s->row, (int)i))
		return NULL;
	return PQgetvalue(s->res, s->row, (int)i);
}

bool sql_parse_time(const char *s, long long *ret)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return false;
	const char *p = s + n;
	long long frac = 0;
	long off = 0;
	if (*p == ' ' || *p == 'T') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 8)
			return false;
		p += 1 + m;
		if (*p == '.') {
			int digits = 0;
			for (p++; isdigit((unsigned char)*p); p++, digits++)
				if (digits < 6)
					frac = frac * 10 + (*p - '0');
			for (; digits < 6; digits++)
				frac *= 10;
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1;
			int hh = 0, mm = 0, k = 0;
			p++;
			if (sscanf(p, "%2d%n", &hh, &k) != 1 || k != 2)
				return false;
			p += 2;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
				mm = (p[0] - '0') * 10 + (p[1] - '0');
				p += 2;
			}
			off = sign * (hh * 3600L + mm * 60L);
		}
	}
	if (*p)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = ((long long)timegm(&tm) - off) * 1000000LL + frac;
	return true;
}

static Loom__Value *value_new(Loom__Value__VCase c)
{
	Loom__Value *v = loom_malloc(sizeof *v);
	loom__value__init(v);
	v->v_case = c;
	return v;
}

static Loom__Value *text_value(const char *t, size_t len)
{
	Loom__Value *v = value_new(LOOM__VALUE__V_STR);
	v->str = loom_strndup(t, len);
	return v;
}

Loom__Value *sql_value(const sql_stmt_t *s, size_t i, const char **why)
{
	*why = NULL;
	if (s->st) {
		int c = (int)i;
		const char *decl = sqlite3_column_decltype(s->st, c);
		bool boolish = decl && strcasestr(decl, "BOOL");
		bool timeish = decl && (strcasestr(decl, "DATE") || strcasestr(decl, "TIME"));
		switch (sqlite3_column_type(s->st, c)) {
		case SQLITE_NULL: return NULL;
		case SQLITE_INTEGER: {
			Loom__Value *v = value_new(boolish ? LOOM__VALUE__V_BOOL : LOOM__VALUE__V_INT);
			if (boolish)
				v->bool_ = sqlite3_column_int64(s->st, c) != 0;
			else
				v->int_ = sqlite3_column_int64(s->st, c);
			return v;
		}
		case SQLITE_BLOB: {
			Loom__Value *v = value_new(LOOM__VALUE__V_BIN);
			v->bin.len = (size_t)sqlite3_column_bytes(s->st, c);
			v->bin.data = loom_memdup(sqlite3_column_blob(s->st, c) ? sqlite3_column_blob(s->st, c) : "", v->bin.len);
			return v;
		}
		default: {
			const char *t = (const char *)sqlite3_column_text(s->st, c);
			size_t len = (size_t)sqlite3_column_bytes(s->st, c);
			long long us;
			if (timeish && sql_parse_time(t, &us)) {
				Loom__Value *v = value_new(LOOM__VALUE__V_TIME);
				v->time = us;
				return v;
			}
			if (boolish && (strcasecmp(t, "true") == 0 || strcasecmp(t, "false") == 0)) {
				Loom__Value *v = value_new(LOOM__VALUE__V_BOOL);
				v->bool_ = strcasecmp(t, "true") == 0;
				return v;
			}
			return text_value(t, len);
		}
		}
	}
	if (PQgetisnull(s->res, s->row, (int)i))
		return NULL;
	const char *t = PQgetvalue(s->res, s->row, (int)i);
	size_t len = (size_t)PQgetlength(s->res, s->row, (int)i);
	switch (PQftype(s->res, (int)i)) {
	case 16: {
		Loom__Value *v = value_new(LOOM__VALUE__V_BOOL);
		v->bool_ = t[0] == 't';
		return v;
	}
	case 20:
	case 21:
	case 23:
	case 26: {
		Loom__Value *v = value_new(LOOM__VALUE__V_INT);
		v->int_ = strtoll(t, NULL, 10);
		return v;
	}
	case 17: {
		/* bytea in hex: \x0102... */
		if (len < 2 || t[0] != '\\' || t[1] != 'x' || (len - 2) % 2) {
			*why = "a bytea value not in hex output";
			return NULL;
		}
		Loom__Value *v = value_new(LOOM__VALUE__V_BIN);
		v->bin.len = (len - 2) / 2;
		v->bin.data = loom_malloc(v->bin.len ? v->bin.len : 1);
		size_t got = 0;
		if (sodium_hex2bin(v->bin.data, v->bin.len, t + 2, len - 2, NULL, &got, NULL) != 0 || got != v->bin.len) {
			free(v->bin.data);
			free(v);
			*why = "a bytea value that is not hex";
			return NULL;
		}
		return v;
	}
	case 1082:
	case 1114:
	case 1184: {
		long long us;
		if (!sql_parse_time(t, &us)) {
			*why = "a date or timestamp that does not read as ISO 8601 (infinity?)";
			return NULL;
		}
		Loom__Value *v = value_new(LOOM__VALUE__V_TIME);
		v->time = us;
		return v;
	}
	default: return text_value(t, len);
	}
}

void sql_stmt_free(sql_stmt_t **sp)
{
	sql_stmt_t *s = *sp;
	if (s == NULL)
		return;
	if (s->st)
		sqlite3_finalize(s->st);
	if (s->res)
		PQclear(s->res);
	if (s->cursor) {
		if (PQtransactionStatus(s->db->pg) == PQTRANS_INTRANS) {
			char *close = loom_sprintf("CLOSE %s", s->cursor);
			PQclear(PQexec(s->db->pg, close));
			free(close);
		}
		free(s->cursor);
	}
	free(s);
	*sp = NULL;
}

void sql_ident(loom_buf_t *b, const char *name)
{
	const char *p = name;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		loom_buf_addc(b, '"');
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '"')
				loom_buf_addc(b, '"');
			loom_buf_addc(b, p[i]);
		}
		loom_buf_addc(b, '"');
		if (dot == NULL)
			break;
		loom_buf_addc(b, '.');
		p = dot + 1;
	}
}

void sql_param_of(const sql_db_t *db, const Loom__Value *v, loom_buf_t *t, sql_param_t *ret)
{
	loom_buf_reset(t);
	ret->binary = false;
	switch (v->v_case) {
	case LOOM__VALUE__V_STR: loom_buf_adds(t, v->str); break;
	case LOOM__VALUE__V_REF: loom_buf_adds(t, v->ref); break;
	case LOOM__VALUE__V_INT: loom_buf_printf(t, "%lld", (long long)v->int_); break;
	case LOOM__VALUE__V_BOOL:
		loom_buf_adds(t, db->driver == LOOM_SQL_SQLITE ? (v->bool_ ? "1" : "0") : (v->bool_ ? "true" : "false"));
		break;
	case LOOM__VALUE__V_TIME: {
		long long s = v->time / 1000000, f = v->time % 1000000;
		if (f < 0) {
			f += 1000000;
			s--;
		}
		time_t tt = (time_t)s;
		struct tm tm;
		gmtime_r(&tt, &tm);
		char b[64];
		strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", &tm);
		loom_buf_adds(t, b);
		if (f)
			loom_buf_printf(t, ".%06lld", f);
		if (db->driver == LOOM_SQL_POSTGRESQL)
			loom_buf_adds(t, "+00");
		break;
	}
	case LOOM__VALUE__V_BIN:
		ret->data = (const char *)(v->bin.data ? v->bin.data : (const uint8_t *)"");
		ret->len = v->bin.len;
		ret->binary = true;
		return;
	default: break;
	}
	ret->data = t->data ? t->data : "";
	ret->len = t->len;
}
