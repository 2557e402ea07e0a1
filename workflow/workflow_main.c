/* workflow_main.c - loom-workflow: the policy service (DESIGN.md §5,
 * docs/policy.md). Schema and MPRs come from config/policy/NAME.yaml beside
 * the deployment file; resources and requests live in STATE_DIR/workflow. */
#include "workflow.h"
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static wf_t the_wf;

/* NAME beside the deployment file: dirname(deploy_path)/NAME. The policy/
 * and sync/ directories and sspr.yaml sit there (sspr.yaml not in policy/:
 * policy/ holds only policy documents, every *.yaml there is one). */
static char *beside_deploy(const char *deploy_path, const char *name)
{
	const char *slash = strrchr(deploy_path, '/');
	if (slash == NULL)
		return loom_strdup(name);
	return loom_sprintf("%.*s/%s", (int)(slash - deploy_path), deploy_path, name);
}

static int wf_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	wf_policy_t p;
	free(msg);
	msg = NULL;
	char *dir = beside_deploy(loom_daemon_config(d)->path, "policy");
	int rc = wf_policy_load(dir, &p, &msg);
	if (rc == 0) {
		/* workflows against the files' schema (the store, with attributes
		 * requests added and the Sets, is checked when the service starts) */
		wf_defs_t defs;
		char *sd = beside_deploy(loom_daemon_config(d)->path, "sync");
		rc = wf_defs_load(dir, sd, &p, &defs, &msg);
		free(sd);
		if (rc == 0)
			wf_defs_release(&defs);
		wf_policy_release(&p);
	}
	if (rc == 0) {
		char *spath = beside_deploy(loom_daemon_config(d)->path, "sspr.yaml");
		rc = wf_sspr_check(spath, &msg);
		free(spath);
	}
	free(dir);
	if (rc < 0) {
		*error_r = msg;
		return -1;
	}
	return 0;
}

static int wf_start(loom_daemon_t *d, const char **error_r)
{
	wf_t *w = &the_wf;
	static char *msg;
	w->daemon = d;
	loom_daemon_set_user(d, w);
	const loom_deploy_t *cfg = loom_daemon_config(d);
	char *dir = beside_deploy(cfg->path, "policy");
	int rc = wf_policy_load(dir, &w->policy, &msg);
	free(dir);
	if (rc < 0) {
		*error_r = msg;
		return -1;
	}
	(void)mkdir(cfg->state_dir, 0755);
	char *path = loom_sprintf("%s/workflow", cfg->state_dir);
	rc = wf_store_open(w, path, &msg);
	free(path);
	if (rc < 0) {
		*error_r = msg;
		return -1;
	}
	wf_xpath_provider(w, &w->xp);
	if (wf_schema_open(w, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	if (wf_sets_open(w, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	/* workflows, against the live schema (the store's), then the Sets they name */
	w->defs = loom_calloc(1, sizeof *w->defs);
	char *pdir = beside_deploy(cfg->path, "policy"), *sdir = beside_deploy(cfg->path, "sync");
	rc = wf_defs_load(pdir, sdir, &w->policy, w->defs, &msg);
	free(pdir);
	free(sdir);
	if (rc < 0 || wf_defs_check_store(w, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	if (wf_run_open(w, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	char *spath = beside_deploy(cfg->path, "sspr.yaml");
	rc = wf_sspr_open(w, spath, &msg);
	free(spath);
	if (rc < 0) {
		*error_r = msg;
		return -1;
	}
	if (wf_agents_load(w, cfg->path, loom_daemon_service(d), &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	const char *crash = getenv("LOOM_WORKFLOW_CRASH_AT");
	if (crash && crash[0])
		w->crash_at = loom_strdup(crash);
	if (wf_requests_recover(w, &msg) < 0 || wf_timer_policy_update(w, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	loom_info("workflow ready types=%zu attributes=%zu mprs=%zu administrators=%zu workflows=%zu next_request=%llu",
	    w->policy.ntypes, w->policy.nattrs, w->policy.nmprs, w->policy.nadmins, w->defs->n,
	    (unsigned long long)w->next_seq);
	return 0;
}

static void wf_message(loom_daemon_t *d, Loom__Envelope *env)
{
	wf_t *w = loom_daemon_user(d);
	if (wf_agent_handle(w, env))
		return; /* agent protocol: handled and freed */
	if (wf_sspr_handle(w, env)) {
		loom_envelope_free(&env);
		return;
	}
	wf_handle(w, env);
	loom_envelope_free(&env);
}

static void wf_stop(loom_daemon_t *d)
{
	wf_t *w = loom_daemon_user(d);
	if (w == NULL)
		return;
	char *err;
	if (wf_request_flush(w, &err) < 0) {
		loom_error("%s", err);
		free(err);
	}
	free(w->held);
	wf_run_close(w);
	wf_sspr_close(w);
	if (w->defs) {
		wf_defs_release(w->defs);
		free(w->defs);
		w->defs = NULL;
	}
	wf_agents_free(w);
	wf_sets_close(w);
	wf_schema_close(w);
	wf_store_close(w);
	wf_policy_release(&w->policy);
	free(w->crash_at);
	w->crash_at = NULL;
}

static const char *const stores[] = { "workflow", NULL };

static const loom_daemon_def_t def = {
	.process = "loom-workflow",
	.summary = "The Loom policy service: resources, schema, requests and their MPRs (config/policy/NAME.yaml).",
	.default_service = "workflow",
	.bus_client = true,
	.start = wf_start,
	.on_message = wf_message,
	.stop = wf_stop,
	.check = wf_check,
	.stores = stores,
};

int main(int argc, char **argv)
{
	return loom_daemon_main(&def, argc, argv);
}
