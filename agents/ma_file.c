/* ma_file.c - loom-ma-file: a management agent whose connected system is a
 * file (CSV, LDIF, DSML v2, fixed width, attribute-value pairs). One process per agent: `loom-ma-file --agent hr` reads
 * config/agents/hr.yaml and registers as service "ma.hr". */
#include "ma_file.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static fileagent_t the_agent;

static int set_agent(loom_daemon_t *d, const char *v, const char **error_r)
{
	return loom_agent_name_option(d, &the_agent.name, v, error_r);
}

static int load(fileagent_t *fa, const loom_deploy_t *cfg, char **ret_error)
{
	int rc = loom_agentcfg_load_named(cfg->path, fa->name, LOOM_AGENT_FILE, &fa->cfg, ret_error);
	if (rc < 0)
		return -1;
	fa->dn_anchor = strcasecmp(fa->cfg.anchor, "dn") == 0;
	fa->sep[0] = fa->cfg.file.multi_value_separator ? fa->cfg.file.multi_value_separator[0] : '\0';
	fa->sep[1] = '\0';
	if (fa->cfg.file.format == LOOM_FILE_FIXED && fa_fixed_layout(fa, ret_error) < 0)
		return -1;
	if (fa->cfg.file.export_mode == LOOM_EXPORT_CHANGES &&
	    (!fa_format_has_changes(fa->cfg.file.format) || fa->cfg.file.changes_dir == NULL)) {
		*ret_error = loom_sprintf("%s: export_mode changes needs a format that holds changes (ldif, dsml or avp) "
					  "and file.changes_dir",
		    fa->cfg.path);
		return -1;
	}
	fa->base_dir = loom_strdup(fa->cfg.file.path);
	char *slash = strrchr(fa->base_dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(fa->base_dir, ".");
	return 0;
}

static int fa_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	fileagent_t tmp;
	memset(&tmp, 0, sizeof tmp);
	tmp.name = the_agent.name;
	free(msg);
	msg = NULL;
	int rc = load(&tmp, loom_daemon_config(d), &msg);
	loom_agentcfg_release(&tmp.cfg);
	free(tmp.base_dir);
	free(tmp.cols);
	*error_r = msg;
	return rc;
}

static int fa_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	fileagent_t *fa = &the_agent;
	fa->d = d;
	fa->imp.fd = -1;
	loom_daemon_set_user(d, fa);
	if (load(fa, loom_daemon_config(d), &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	loom_info("agent ready agent=%s format=%s file=%s", fa->name, fa_format_name(fa->cfg.file.format),
	    fa->cfg.file.path);
	return 0;
}

/* The agent protocol's three messages (lib/loom_agentproto.h). */
static void on_import_start(void *a, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	fa_import_start(a, env, rq);
}

static void on_import_credit(void *a, const Loom__ImportCredit *c)
{
	fa_import_credit(a, c);
}

static void on_export_batch(void *a, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	fa_export_batch(a, env, b);
}

/* Objects read for a schema: enough to see every column and value type of
 * a regular file, bounded so that a huge file does not hold the agent up. */
#define SCHEMA_SAMPLE 10000

static void on_schema(void *a, Loom__Envelope *env, const Loom__SchemaRequest *rq)
{
	(void)rq;
	fileagent_t *fa = a;
	loom_schema_t *s = loom_schema_new();
	uint64_t n = 0, errors = 0;
	char *err = NULL;
	if (fa_scan(fa, s, SCHEMA_SAMPLE, &n, &errors, &err) < 0) {
		loom_agent_schema_reply(fa->d, env, NULL, false, false, 0, "", err);
		free(err);
	} else {
		char *src = loom_sprintf("%s file '%s': %llu object(s) read%s%s", fa_format_name(fa->cfg.file.format),
		    fa->cfg.file.path, (unsigned long long)n, n == SCHEMA_SAMPLE ? " (the first ones)" : "",
		    errors ? ", some malformed records skipped" : "");
		loom_agent_schema_reply(fa->d, env, s, fa_format_has_changes(fa->cfg.file.format) &&
		    fa->cfg.file.delta_dir != NULL, true, n, src, NULL);
		free(src);
	}
	loom_schema_destroy(&s);
}

/* A directory the agent must write to (a file is replaced by a temporary
 * beside it): writable and searchable. */
static bool dir_writable(const char *path, bool parent, char **why)
{
	char *dir = loom_strdup(path);
	char *slash = parent ? strrchr(dir, '/') : NULL;
	if (parent && slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0'; /* a file in "/" */
	else if (slash)
		*slash = '\0';
	bool ok = access(dir, W_OK | X_OK) == 0;
	if (!ok)
		*why = loom_sprintf("cannot write in '%s': %s", dir, strerror(errno));
	free(dir);
	return ok;
}

static void on_test_connection(void *a, Loom__Envelope *env, const Loom__TestConnectionRequest *rq)
{
	(void)rq;
	fileagent_t *fa = a;
	uint64_t n = 0, errors = 0;
	char *err = NULL;
	if (fa_scan(fa, NULL, 1, &n, &errors, &err) < 0) {
		loom_agent_test_reply(fa->d, env, false, err);
		free(err);
		return;
	}
	bool changes = fa->cfg.file.export_mode == LOOM_EXPORT_CHANGES;
	if (!dir_writable(changes ? fa->cfg.file.changes_dir : fa->cfg.file.path, !changes, &err) ||
	    (fa->cfg.file.delta_dir && access(fa->cfg.file.delta_dir, R_OK | X_OK) != 0 &&
		(err = loom_sprintf("cannot read delta_dir '%s': %s", fa->cfg.file.delta_dir, strerror(errno))))) {
		loom_agent_test_reply(fa->d, env, false, err);
		free(err);
		return;
	}
	char *msg = loom_sprintf("%s file '%s' readable (%s), export %s writable%s%s",
	    fa_format_name(fa->cfg.file.format), fa->cfg.file.path, n ? "its first object parses" : "no object in it",
	    changes ? "changes_dir" : "directory", fa->cfg.file.delta_dir ? ", delta_dir readable" : "",
	    errors ? "; a malformed record comes first" : "");
	loom_agent_test_reply(fa->d, env, true, msg);
	free(msg);
}

static const loom_agent_ops_t agent_ops = { "loom-ma-file", on_import_start, on_import_credit, on_export_batch,
	NULL /* a file holds no passwords: the dispatch answers not-supported */, on_schema, on_test_connection };

static void fa_message(loom_daemon_t *d, Loom__Envelope *env)
{
	loom_agent_dispatch(d, &agent_ops, loom_daemon_user(d), env);
}

static void fa_stop(loom_daemon_t *d)
{
	fileagent_t *fa = loom_daemon_user(d);
	if (fa == NULL)
		return;
	fa_import_stop(fa);
	fa_export_reset(fa);
	loom_agentcfg_release(&fa->cfg);
	free(fa->base_dir);
	free(fa->cols);
}

static const loom_flag_t flags[] = {
	{ "agent", "NAME", "the agent to run (config/agents/NAME.yaml; service ma.NAME)", set_agent },
	{ NULL, NULL, NULL, NULL },
};

static const loom_daemon_def_t def = {
	.process = "loom-ma-file",
	.summary = "Loom management agent for files: CSV, LDIF, DSML v2, fixed-width and attribute-value pair "
		   "import (full, and delta from change files) and export.",
	.default_service = NULL,
	.no_service_hint = "--agent NAME is required (the agent's file is config/agents/NAME.yaml)",
	.bus_client = true,
	.flags = flags,
	.start = fa_start,
	.on_message = fa_message,
	.stop = fa_stop,
	.own_config = &loom_agentcfg_table,
	.own_config_what = "agent file config/agents/NAME.yaml (type: file, with its file: section)",
	.check = fa_check,
};

int main(int argc, char **argv)
{
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_agent.name);
	return rc;
}
