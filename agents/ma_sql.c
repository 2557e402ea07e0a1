/* ma_sql.c - loom-ma-sql: a management agent whose connected system is a
 * PostgreSQL or SQLite database: a table or view per object type, a table
 * of multi-valued attributes, delta import from a change table or a
 * modified column, export in one transaction per batch, passwords through
 * a configured statement (docs/agents.md "SQL"). One process per agent:
 * `loom-ma-sql --agent hrdb` reads config/agents/hrdb.yaml and registers as
 * service "ma.hrdb".
 *
 * The connection is opened when first needed and kept; an error that
 * breaks it (the server went away) drops it, and the next operation
 * connects again. Every call is synchronous and bounded by sql.timeout:
 * an import reads one batch per call, between which the loop runs.
 */
#include "ma_sql.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_keys.h"
#include "loom_log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static sqlagent_t the_agent;

sql_db_t *sa_db(sqlagent_t *sa, char **ret_error)
{
	if (sa->db == NULL && sql_open(&sa->cfg, &sa->db, ret_error) < 0)
		return NULL;
	return sa->db;
}

void sa_db_reset(sqlagent_t *sa)
{
	sql_close(&sa->db);
}

/* ---- SetPassword ------------------------------------------------------------------ */

/* The anchor of the account a request names: its anchor, or the value of
 * a DN ANCHOR=VALUE, or the row whose dn_column holds the DN. NULL with
 * *ret_code and *ret_error when none. */
static char *account_anchor(sqlagent_t *sa, const Loom__SetPasswordRequest *rq, const char **ret_code,
    char **ret_error)
{
	if (rq->anchor[0])
		return loom_strdup(rq->anchor);
	const loom_agentcfg_sql_table_t *t = sa->cfg.sql.tables.v;
	for (size_t i = 0; i < sa->cfg.sql.tables.n; i++) {
		if (t[i].dn_column) {
			loom_buf_t q = LOOM_BUF_INIT;
			loom_buf_adds(&q, "SELECT ");
			sql_ident(&q, t[i].anchor);
			loom_buf_adds(&q, " FROM ");
			sql_ident(&q, t[i].table);
			loom_buf_adds(&q, " WHERE ");
			sql_ident(&q, t[i].dn_column);
			loom_buf_adds(&q, " = $1");
			sql_param_t p = { rq->dn, strlen(rq->dn), false };
			sql_stmt_t *st = NULL;
			char *a = NULL;
			if (sql_query(sa->db, q.data, &p, 1, false, &st, ret_error) == 0) {
				if (sql_step(st, ret_error) == 1 && sql_text(st, 0))
					a = loom_strdup(sql_text(st, 0));
			}
			sql_stmt_free(&st);
			loom_buf_release(&q);
			if (a)
				return a;
			if (*ret_error) {
				*ret_code = "sql-error";
				return NULL;
			}
			continue;
		}
		size_t n = strlen(t[i].anchor);
		if (strncasecmp(rq->dn, t[i].anchor, n) == 0 && rq->dn[n] == '=') {
			const char *v = rq->dn + n + 1;
			const char *end = v;
			while (*end && !(*end == ',' && end[-1] != '\\'))
				end++;
			return loom_strndup(v, (size_t)(end - v));
		}
	}
	*ret_code = "no-such-object";
	*ret_error = loom_sprintf("no table of this agent names '%s' (give the anchor, or a DN ANCHOR=VALUE)", rq->dn);
	return NULL;
}

static void on_set_password(void *a, Loom__Envelope *env, const Loom__SetPasswordRequest *rq)
{
	sqlagent_t *sa = a;
	const loom_keypair_t *kp = loom_daemon_keypair(sa->d);
	const char *svc = loom_daemon_service(sa->d);
	const char *code = NULL;
	char *msg = NULL, *anchor = NULL;
	uint8_t *pw = NULL;
	size_t len = 0;
	bool retryable = false;
	if (rq->agent[0] && strcmp(rq->agent, sa->name) != 0) {
		code = "bad-request";
		msg = loom_sprintf("the request is for agent '%s', and this is agent '%s'", rq->agent, sa->name);
	} else if (sa->cfg.sql.password_statement == NULL) {
		code = "not-supported";
		msg = loom_sprintf("agent '%s' has no sql.password_statement", sa->name);
	} else if (rq->dn[0] == '\0' && rq->anchor[0] == '\0') {
		code = "bad-request";
		msg = loom_strdup("the request names no account: give a DN or an anchor");
	} else if (rq->password == NULL || rq->password->box.len == 0) {
		code = "bad-request";
		msg = loom_strdup("the request carries no sealed password");
	} else if (kp == NULL) {
		code = "no-key";
		msg = loom_sprintf("this agent has no key pair to open sealed passwords with: create %s/%s.key (loomctl keys "
				   "gen %s) and restart it",
		    loom_daemon_config(sa->d)->bus.keys_dir, svc, svc);
	} else if (loom_unseal(kp, rq->password, &pw, &len) < 0) {
		code = "cannot-open";
		msg = loom_sprintf("the password does not open with this agent's key '%s' (sealed to '%s'): seal it to "
				   "%s.pub of this deployment",
		    svc, rq->password->key_id, svc);
	} else if (len == 0 || memchr(pw, '\0', len)) {
		code = "bad-password";
		msg = loom_strdup(len ? "the password holds a NUL" : "the password is empty");
	} else if (sa_db(sa, &msg) == NULL) {
		code = "cannot-connect";
		retryable = true;
	} else if ((anchor = account_anchor(sa, rq, &code, &msg)) != NULL) {
		/* The password goes as a parameter from guarded memory (NUL-terminated
		 * for libpq's text parameters), never into SQL text. */
		char *pz = sodium_malloc(len + 1);
		memcpy(pz, pw, len);
		pz[len] = '\0';
		sql_param_t p[2] = { { anchor, strlen(anchor), false }, { pz, len, false } };
		long long changed = 0;
		int rc = sql_exec(sa->db, sa->cfg.sql.password_statement, p, 2, &changed, &msg);
		sodium_memzero(pz, len + 1);
		sodium_free(pz);
		if (rc < 0) {
			int cls = sql_error_class(sa->db);
			code = cls == SQL_ERR_CONSTRAINT ? "constraint-violation" : "sql-error";
			retryable = cls == SQL_ERR_TRANSIENT || cls == SQL_ERR_BROKEN;
			if (cls == SQL_ERR_BROKEN)
				sa_db_reset(sa);
		} else if (changed == 0) {
			code = "no-such-object";
			msg = loom_sprintf("the password statement changed no row for anchor '%s'", anchor);
		}
	}
	loom_unsealed_free(&pw, len);
	const char *who = anchor ? anchor : rq->anchor[0] ? rq->anchor : rq->dn;
	if (code == NULL)
		loom_info("password set agent=%s anchor=%s from=%s", sa->name, who, env->from);
	else
		loom_warning("password not set agent=%s target=%s from=%s code=%s message=%s", sa->name, who, env->from, code,
		    loom_log_kv_quote(msg));
	loom_agent_password_reply(sa->d, env, rq, rq->dn[0] ? rq->dn : who, code, 0, msg, retryable);
	free(msg);
	free(anchor);
}

/* ---- the daemon ------------------------------------------------------------------------ */

static int set_agent(loom_daemon_t *d, const char *v, const char **error_r)
{
	return loom_agent_name_option(d, &the_agent.name, v, error_r);
}

static int load(sqlagent_t *sa, const loom_deploy_t *cfg, char **ret_error)
{
	return loom_agentcfg_load_named(cfg->path, sa->name, LOOM_AGENT_SQL, &sa->cfg, ret_error);
}

static int sa_check(loom_daemon_t *d, const char **error_r)
{
	return loom_agent_check_named(d, the_agent.name, LOOM_AGENT_SQL, error_r);
}

static int sa_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	sqlagent_t *sa = &the_agent;
	sa->d = d;
	loom_daemon_set_user(d, sa);
	if (load(sa, loom_daemon_config(d), &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	/* Connect now so that a wrong address shows at once; a database that
	 * is down only delays the first run (it connects then). */
	char *err = NULL;
	if (sa_db(sa, &err) == NULL) {
		loom_warning("database not reachable yet agent=%s: %s", sa->name, err);
		free(err);
	}
	loom_info("agent ready agent=%s driver=%s tables=%zu delta=%s", sa->name,
	    sa->cfg.sql.driver == LOOM_SQL_POSTGRESQL ? "postgresql" : "sqlite", sa->cfg.sql.tables.n,
	    sa->cfg.sql.delta.mode == LOOM_SQL_DELTA_CHANGES ? "changes"
	    : sa->cfg.sql.delta.mode == LOOM_SQL_DELTA_MODIFIED ? "modified"
								  : "none");
	return 0;
}

static void on_import_start(void *a, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	sa_import_start(a, env, rq);
}

static void on_import_credit(void *a, const Loom__ImportCredit *c)
{
	sa_import_credit(a, c);
}

static void on_export_batch(void *a, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	sa_export_batch(a, env, b);
}

/* Rows read per table for a schema: a column's type is its first non-NULL
 * value's (a column NULL in all of them is a string). */
#define SCHEMA_ROWS 200

/* Reads the columns of each table (and the names of its multi-valued
 * table) into s. 0 with the rows read, or -1 with *ret_error. */
static int sql_schema(sqlagent_t *sa, loom_schema_t *s, uint64_t *ret_rows, char **ret_error)
{
	sql_db_t *db = sa_db(sa, ret_error);
	if (db == NULL)
		return -1;
	const loom_agentcfg_sql_table_t *tv = sa->cfg.sql.tables.v;
	uint64_t rows = 0;
	for (size_t i = 0; i < sa->cfg.sql.tables.n; i++) {
		const loom_agentcfg_sql_table_t *t = &tv[i];
		loom_schema_type(s, t->object_type, t->anchor);
		loom_buf_t q = LOOM_BUF_INIT;
		loom_buf_adds(&q, "SELECT * FROM ");
		sql_ident(&q, t->table);
		loom_buf_printf(&q, " LIMIT %d", SCHEMA_ROWS);
		sql_stmt_t *st = NULL;
		char *err = NULL;
		int rc = sql_query(db, loom_buf_cstr(&q), NULL, 0, false, &st, &err);
		loom_buf_release(&q);
		const char **types = NULL;
		size_t nc = 0;
		int got = 0;
		while (rc == 0 && (got = sql_step(st, &err)) == 1) {
			rows++;
			if (types == NULL) {
				nc = sql_ncols(st);
				types = loom_calloc(nc ? nc : 1, sizeof *types);
			}
			for (size_t c = 0; c < nc; c++) {
				const char *why = NULL;
				Loom__Value *v = types[c] ? NULL : sql_value(st, c, &why);
				if (v != NULL) {
					types[c] = loom_schema_value_type(v);
					loom_value_free(v);
				}
			}
		}
		if (got < 0)
			rc = -1;
		if (rc == 0 && types == NULL)
			nc = sql_ncols(st);
		for (size_t c = 0; rc == 0 && c < nc; c++) {
			const char *name = sql_colname(st, c);
			if (t->dn_column && strcasecmp(name, t->dn_column) == 0)
				continue; /* it makes the DN, as in an import */
			loom_schema_attr(s, t->object_type, name, types ? types[c] : NULL, false);
		}
		free(types);
		sql_stmt_free(&st);
		if (rc < 0) {
			*ret_error = loom_sprintf("table '%s': %s", t->table, err);
			free(err);
			sa_db_reset(sa);
			return -1;
		}
		const loom_agentcfg_sql_mv_t *mv = &t->multi_valued;
		if (mv->table == NULL)
			continue;
		loom_buf_init(&q);
		loom_buf_adds(&q, "SELECT DISTINCT ");
		sql_ident(&q, mv->name_column);
		loom_buf_adds(&q, " FROM ");
		sql_ident(&q, mv->table);
		rc = sql_query(db, loom_buf_cstr(&q), NULL, 0, false, &st, &err);
		loom_buf_release(&q);
		while (rc == 0 && (got = sql_step(st, &err)) == 1)
			if (sql_text(st, 0) != NULL)
				loom_schema_attr(s, t->object_type, sql_text(st, 0), "string", true);
		if (got < 0)
			rc = -1;
		sql_stmt_free(&st);
		if (rc < 0) {
			*ret_error = loom_sprintf("multi-valued table '%s': %s", mv->table, err);
			free(err);
			sa_db_reset(sa);
			return -1;
		}
	}
	*ret_rows = rows;
	return 0;
}

static void on_schema(void *a, Loom__Envelope *env, const Loom__SchemaRequest *rq)
{
	(void)rq;
	sqlagent_t *sa = a;
	char *err = NULL;
	uint64_t rows = 0;
	loom_schema_t *s = loom_schema_new();
	if (sa->imp.active)
		err = loom_strdup("an import run is reading the database: ask again when it has ended");
	if (err != NULL || sql_schema(sa, s, &rows, &err) < 0) {
		loom_agent_schema_reply(sa->d, env, NULL, false, false, 0, "", err);
		free(err);
	} else {
		char *src = loom_sprintf("%s: the columns of %zu table(s), %llu row(s) read for the types",
		    sa->cfg.sql.driver == LOOM_SQL_POSTGRESQL ? "PostgreSQL" : "SQLite", sa->cfg.sql.tables.n,
		    (unsigned long long)rows);
		loom_agent_schema_reply(sa->d, env, s, sa->cfg.sql.delta.mode != LOOM_SQL_DELTA_NONE, true, rows, src, NULL);
		free(src);
	}
	loom_schema_destroy(&s);
}

static void on_test_connection(void *a, Loom__Envelope *env, const Loom__TestConnectionRequest *rq)
{
	(void)rq;
	sqlagent_t *sa = a;
	char *err = NULL;
	uint64_t rows = 0;
	loom_schema_t *s = loom_schema_new();
	if (sa->imp.active) {
		loom_agent_test_reply(sa->d, env, true, "an import run is reading the database now");
	} else if (sql_schema(sa, s, &rows, &err) < 0) {
		loom_agent_test_reply(sa->d, env, false, err);
		free(err);
	} else {
		char *m = loom_sprintf("connected to %s; %zu table(s) readable", sa->cfg.sql.driver == LOOM_SQL_POSTGRESQL ?
		    "PostgreSQL" : "SQLite", sa->cfg.sql.tables.n);
		loom_agent_test_reply(sa->d, env, true, m);
		free(m);
	}
	loom_schema_destroy(&s);
}

static const loom_agent_ops_t agent_ops = { "loom-ma-sql", on_import_start, on_import_credit, on_export_batch,
	on_set_password, on_schema, on_test_connection };

static void sa_message(loom_daemon_t *d, Loom__Envelope *env)
{
	loom_agent_dispatch(d, &agent_ops, loom_daemon_user(d), env);
}

static void sa_stop(loom_daemon_t *d)
{
	sqlagent_t *sa = loom_daemon_user(d);
	if (sa == NULL)
		return;
	sa_import_stop(sa);
	sql_close(&sa->db);
	loom_agentcfg_release(&sa->cfg);
}

static const loom_flag_t flags[] = {
	{ "agent", "NAME", "the agent to run (config/agents/NAME.yaml; service ma.NAME)", set_agent },
	{ NULL, NULL, NULL, NULL },
};

static const loom_daemon_def_t def = {
	.process = "loom-ma-sql",
	.summary = "Loom management agent for SQL databases (PostgreSQL, SQLite): tables per object type, "
		   "multi-valued attribute tables, delta import, transactional export, passwords.",
	.default_service = NULL,
	.no_service_hint = "--agent NAME is required (the agent's file is config/agents/NAME.yaml)",
	.bus_client = true,
	.flags = flags,
	.start = sa_start,
	.on_message = sa_message,
	.stop = sa_stop,
	.own_config = &loom_agentcfg_table,
	.own_config_what = "agent file config/agents/NAME.yaml (type: sql, with its sql: section)",
	.check = sa_check,
};

int main(int argc, char **argv)
{
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_agent.name);
	return rc;
}
