/* engine_main.c - loom-engine: the synchronization service (DESIGN.md §3). */
#include "engine.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static engine_t the_engine;

static const char *const cfs[] = { "cs", "cs_dn", "mv", "mv_index", "link", "export", "delta", "run", "meta",
	"mv_ref", "unresolved", "resync", "refresh", "pwsync", "pwsync_id", NULL };

static int engine_check(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	engine_t e;
	memset(&e, 0, sizeof e);
	free(msg);
	msg = NULL;
	if (eng_rules_load(&e, loom_daemon_config(d)->path, &msg) < 0 ||
	    eng_sched_load(&e, loom_daemon_config(d), &msg) < 0 || eng_live_load(&e, &msg) < 0) {
		eng_live_free(&e);
		eng_sched_free(&e);
		eng_rules_free(&e);
		*error_r = msg;
		return -1;
	}
	eng_live_free(&e);
	eng_sched_free(&e);
	eng_rules_free(&e);
	return 0;
}

static int engine_start(loom_daemon_t *d, const char **error_r)
{
	engine_t *e = &the_engine;
	static char *msg;
	e->daemon = d;
	loom_daemon_set_user(d, e);
	const loom_deploy_t *cfg = loom_daemon_config(d);
	if (eng_rules_load(e, cfg->path, &msg) < 0 || eng_sched_load(e, cfg, &msg) < 0 || eng_live_load(e, &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	(void)mkdir(cfg->state_dir, 0755);
	char *path = loom_sprintf("%s/engine", cfg->state_dir);
	loom_store_opts_t so;
	loom_store_opts_default(&so);
	char *err = NULL;
	int rc = loom_store_open(path, cfs, &so, &e->store, &err);
	free(path);
	if (rc < 0) {
		free(msg);
		msg = err;
		*error_r = msg;
		return -1;
	}
	e->batch = loom_batch_new(e->store);
	e->seq_run = e->lim_run = eng_meta_get_u64(e, "seq:run");
	e->seq_mv = e->lim_mv = eng_meta_get_u64(e, "seq:mv");
	e->seq_change = e->lim_change = eng_meta_get_u64(e, "seq:change");
	const char *ierr;
	if (eng_mvidx_check(e, &ierr) < 0) {
		free(msg);
		msg = loom_sprintf("cannot build the metaverse index: %s", ierr);
		*error_r = msg;
		return -1;
	}
	eng_runs_recover(e);
	eng_sched_start(e);
	eng_live_start(e);
	if (eng_pwsync_start(e, error_r) < 0)
		return -1;
	size_t nin = 0, nout = 0;
	for (size_t i = 0; i < e->nrules; i++)
		if (e->rules[i].cfg->direction == LOOM_SYNC_INBOUND)
			nin++;
		else
			nout++;
	loom_info("engine ready agents=%zu inbound_rules=%zu outbound_rules=%zu runs=%llu mv_objects_created=%llu",
	    e->nagents, nin, nout, (unsigned long long)e->seq_run, (unsigned long long)e->seq_mv);
	return 0;
}

static void engine_message(loom_daemon_t *d, Loom__Envelope *env)
{
	engine_t *e = loom_daemon_user(d);
	if (loom_envelope_is(env, &loom__import_batch__descriptor))
		eng_import_batch(e, env);
	else if (loom_envelope_is(env, &loom__export_results__descriptor))
		eng_export_results(e, env);
	else if (loom_envelope_is(env, &loom__live_hello__descriptor))
		eng_live_hello(e, env);
	else if (eng_pwsync_message(e, env))
		;
	else
		eng_handle_query(e, env);
	loom_envelope_free(&env);
}

static void engine_stop(loom_daemon_t *d)
{
	engine_t *e = loom_daemon_user(d);
	if (e == NULL)
		return;
	eng_sched_free(e); /* first: a run stopped below starts no next step */
	eng_live_free(e);
	eng_pwsync_free(e);
	if (e->run)
		eng_run_finish(e, "stopped", "the engine was shut down during the run; run it again");
	loom_batch_destroy(&e->batch);
	loom_store_close(&e->store);
	eng_rules_free(e);
	loom_buf_release(&e->key);
	free(eng_read_error_take(e));
	loom_expr_result_release(&e->res);
	loom_buf_release(&e->val);
}

static const char *const stores[] = { "engine", NULL };

static const loom_daemon_def_t def = {
	.process = "loom-engine",
	.summary = "The Loom synchronization service: connector spaces, metaverse, join, projection, flows, runs.",
	.default_service = "engine",
	.bus_client = true,
	.start = engine_start,
	.on_message = engine_message,
	.stop = engine_stop,
	.check = engine_check,
	.stores = stores,
};

int main(int argc, char **argv)
{
	return loom_daemon_main(&def, argc, argv);
}
